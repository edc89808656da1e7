//! The ids a token names: the user ([`UserId`]), the token itself ([`Jti`])
//! and the login it descends from ([`FamilyId`]).
//!
//! Each is built where input enters (a token's claims, a request's path, a
//! store row) and carried typed from there, so a user id is never mistaken
//! for another integer nor a family id for a token id. On the wire each is
//! exactly what it wraps: a JSON integer, or a string of 32 lowercase hex
//! characters.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A user's id: the integer the store gave the account, and the value of
/// the user id claim. Serialises as that integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(i64);

impl UserId {
    /// The id of the account the store numbered `id`.
    pub const fn new(id: i64) -> Self {
        Self(id)
    }

    /// The integer, as the store and the claim carry it.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<UserId> for i64 {
    fn from(id: UserId) -> i64 {
        id.0
    }
}

impl PartialEq<i64> for UserId {
    fn eq(&self, other: &i64) -> bool {
        self.0 == *other
    }
}

/// Why text is not an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an id: {0}")]
pub struct IdError(&'static str);

impl FromStr for UserId {
    type Err = IdError;

    /// A decimal integer, as a path segment or a `sub` claim spells it.
    fn from_str(s: &str) -> Result<Self, IdError> {
        s.parse()
            .map(Self)
            .map_err(|_| IdError("a user id is an integer"))
    }
}

/// Whether `s` has the shape of a token or family id: 32 lowercase hex characters.
pub fn is_token_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// 32 lowercase hex characters, held inline (no heap, `Copy`): the shape
/// of both token and family ids.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct HexId([u8; 32]);

impl HexId {
    fn parse(s: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        if !is_token_id(s) {
            return None;
        }
        bytes.copy_from_slice(s.as_bytes());
        Some(Self(bytes))
    }

    fn random() -> Self {
        let raw: [u8; 16] = rand::random();
        let mut bytes = [0u8; 32];
        // 16 bytes always fit 32 hex digits: this never fails.
        let _ = hex::encode_to_slice(raw, &mut bytes);
        Self(bytes)
    }

    fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored, so this is always the text.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    fn number(&self) -> u128 {
        u128::from_str_radix(self.as_str(), 16).unwrap_or_default()
    }
}

/// Defines a 32-hex-character id type around [`HexId`].
macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(HexId);

        impl $name {
            /// The id `s` spells, if it is 32 lowercase hex characters
            /// (uppercase is refused: two spellings would be two ids).
            pub fn parse(s: &str) -> Option<Self> {
                HexId::parse(s).map(Self)
            }

            /// A fresh random id (128 bits from the system's generator).
            pub fn random() -> Self {
                Self(HexId::random())
            }

            /// The id as its 32 lowercase hex characters.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            /// The 128-bit number the hex digits spell (for compact storage).
            pub fn to_u128(&self) -> u128 {
                self.0.number()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.as_str()).finish()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.as_str().to_owned()
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s).ok_or(IdError(concat!($what, " is 32 lowercase hex characters")))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&text).ok_or_else(|| {
                    de::Error::invalid_value(
                        de::Unexpected::Str(&text),
                        &concat!($what, " of 32 lowercase hex characters"),
                    )
                })
            }
        }
    };
}

hex_id!(
    /// A token's id, its `jti` claim: 32 lowercase hex characters.
    /// Serialises as that string.
    Jti,
    "a token id"
);

hex_id!(
    /// A family's id, the `fid` claim: the login every token refreshed from
    /// it carries, 32 lowercase hex characters. Serialises as that string.
    FamilyId,
    "a family id"
);

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn token_ids_are_32_lower_hex() {
        assert_eq!(Jti::parse(HEX).map(|j| j.to_string()), Some(HEX.into()));
        for bad in [
            "",
            "0123",
            &HEX.to_uppercase(),
            &format!("{HEX}0"),
            "+123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(Jti::parse(bad), None, "{bad}");
            assert!(bad.parse::<FamilyId>().is_err(), "{bad}");
        }
        let id = Jti::random();
        assert!(is_token_id(id.as_str()));
        assert_ne!(id, Jti::random());
        assert_eq!(
            Jti::parse(HEX).map(|j| j.to_u128()),
            Some(0x0123456789abcdef0123456789abcdef)
        );
    }

    #[test]
    fn the_wire_format_is_what_the_ids_wrap() {
        let fid = FamilyId::parse(HEX);
        assert_eq!(serde_json::to_string(&fid).ok(), Some(format!("\"{HEX}\"")));
        assert_eq!(
            serde_json::from_str::<FamilyId>(&format!("\"{HEX}\"")).ok(),
            fid
        );
        assert!(serde_json::from_str::<Jti>("\"ABC\"").is_err());
        assert!(serde_json::from_str::<Jti>("7").is_err());
        assert_eq!(
            serde_json::to_string(&UserId::new(42)).ok().as_deref(),
            Some("42")
        );
        assert_eq!(
            serde_json::from_str::<UserId>("42").ok(),
            Some(UserId::new(42))
        );
        assert!(serde_json::from_str::<UserId>("\"42\"").is_err());
        assert_eq!("42".parse::<UserId>(), Ok(UserId::new(42)));
        assert!("4x".parse::<UserId>().is_err());
        assert_eq!(UserId::new(-3).to_string(), "-3");
        assert_eq!(
            format!("{:?}", Jti::parse(HEX)),
            format!("Some(Jti(\"{HEX}\"))")
        );
    }
}
