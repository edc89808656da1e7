//! The claims Tessera puts in its tokens (docs/API.md) and the typed view
//! of a token's claims after validation.

use crate::ids::{FamilyId, Jti, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::ids::is_token_id;

/// Which of the two kinds of token this is; carried in the `token_type` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Short-lived, presented to protected endpoints.
    Access,
    /// Longer-lived, exchanged for new access tokens.
    Refresh,
}

impl TokenType {
    /// The claim value: `"access"` or `"refresh"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
        }
    }
}

/// Every claim name Tessera writes or reads in its own tokens, and so one the
/// `user_id_claim` setting may not take (it would overwrite the claim, or be
/// overwritten by it). `type` is Flask-JWT-Extended's name for the token type,
/// kept free for it; `client_id` and `scope` are service clients' tokens'
/// ([`crate::client`]). A test mints tokens with every option on and checks
/// that this list names each of their claims.
pub const RESERVED_CLAIMS: [&str; 23] = [
    "token_type",
    "type",
    "exp",
    "iat",
    "nbf",
    "jti",
    "sub",
    "fid",
    "ver",
    "username",
    "fresh",
    "iss",
    "aud",
    "csrf",
    "email",
    "is_staff",
    "is_superuser",
    "client_id",
    "scope",
    "roles",
    "app_metadata",
    "cver",
    "amr",
];

/// How a user proved who they are, as RFC 8176 names the methods in the
/// `amr` claim: the values Tessera writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// `pwd`: a password.
    Password,
    /// `otp`: a one-time code (TOTP, or a recovery code).
    Otp,
    /// `hwk`: a proof of possession of a hardware-secured key (a passkey
    /// on a security key).
    HardwareKey,
    /// `swk`: a proof of possession of a software-secured key.
    SoftwareKey,
    /// `mfa`: more than one factor.
    MultiFactor,
}

impl AuthMethod {
    /// Every method, in RFC 8176's order.
    pub const ALL: [AuthMethod; 5] = [
        AuthMethod::Password,
        AuthMethod::Otp,
        AuthMethod::HardwareKey,
        AuthMethod::SoftwareKey,
        AuthMethod::MultiFactor,
    ];

    /// Its value in `amr`.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Password => "pwd",
            AuthMethod::Otp => "otp",
            AuthMethod::HardwareKey => "hwk",
            AuthMethod::SoftwareKey => "swk",
            AuthMethod::MultiFactor => "mfa",
        }
    }

    /// The method whose `amr` value is `name`.
    pub fn named(name: &str) -> Option<AuthMethod> {
        AuthMethod::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// The user fields that may be copied into access tokens (setting `extra_claims`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtraClaim {
    /// The user's email address.
    Email,
    /// Whether the user is staff.
    IsStaff,
    /// Whether the user is a superuser (Django keeps it apart from `is_staff`).
    IsSuperuser,
    /// The user's roles, a JSON array of names (Django's groups, when imported).
    Roles,
    /// The JSON object staff keep about the user (`app_metadata`).
    AppMetadata,
}

impl ExtraClaim {
    /// Every extra claim, in the order the setting documents them.
    pub const ALL: [ExtraClaim; 5] = [
        ExtraClaim::Email,
        ExtraClaim::IsStaff,
        ExtraClaim::IsSuperuser,
        ExtraClaim::Roles,
        ExtraClaim::AppMetadata,
    ];

    /// The claim's name, which is also its name in the setting (and its
    /// name in tokens unless `claim_names` renames it).
    pub fn name(self) -> &'static str {
        UserClaim::from(self).name()
    }
}

/// The user claims whose names in tokens may be changed (setting
/// `claim_names`): the username, and the fields `extra_claims` copies.
/// `fresh` is not among them: Flask-JWT-Extended reads it under that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserClaim {
    /// `username`, in every access token.
    Username,
    /// `email`, with `extra_claims`.
    Email,
    /// `is_staff`, with `extra_claims`.
    IsStaff,
    /// `is_superuser`, with `extra_claims`.
    IsSuperuser,
    /// `roles`, with `extra_claims`.
    Roles,
    /// `app_metadata`, with `extra_claims`.
    AppMetadata,
}

impl UserClaim {
    /// Every user claim, in the order the setting documents them.
    pub const ALL: [UserClaim; 6] = [
        UserClaim::Username,
        UserClaim::Email,
        UserClaim::IsStaff,
        UserClaim::IsSuperuser,
        UserClaim::Roles,
        UserClaim::AppMetadata,
    ];

    /// Its own name: the one tokens carry unless renamed, and its key in
    /// `claim_names`.
    pub fn name(self) -> &'static str {
        match self {
            UserClaim::Username => "username",
            UserClaim::Email => "email",
            UserClaim::IsStaff => "is_staff",
            UserClaim::IsSuperuser => "is_superuser",
            UserClaim::Roles => "roles",
            UserClaim::AppMetadata => "app_metadata",
        }
    }

    /// The claim whose own name is `name`.
    pub fn named(name: &str) -> Option<UserClaim> {
        UserClaim::ALL.into_iter().find(|c| c.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl From<ExtraClaim> for UserClaim {
    fn from(claim: ExtraClaim) -> Self {
        match claim {
            ExtraClaim::Email => UserClaim::Email,
            ExtraClaim::IsStaff => UserClaim::IsStaff,
            ExtraClaim::IsSuperuser => UserClaim::IsSuperuser,
            ExtraClaim::Roles => UserClaim::Roles,
            ExtraClaim::AppMetadata => UserClaim::AppMetadata,
        }
    }
}

/// The names the user claims carry in tokens: each its own
/// ([`UserClaim::name`]) unless renamed. Tessera writes them under these
/// names, and reads them (the username, for `sub`) under the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames([String; 6]);

impl Default for ClaimNames {
    fn default() -> Self {
        Self(UserClaim::ALL.map(|c| c.name().to_owned()))
    }
}

impl ClaimNames {
    /// The name `claim` carries in tokens.
    pub fn get(&self, claim: UserClaim) -> &str {
        &self.0[claim.index()]
    }

    /// Gives `claim` the name `name` in tokens (checked by [`check`](Self::check)).
    pub fn set(&mut self, claim: UserClaim, name: impl Into<String>) {
        self.0[claim.index()] = name.into();
    }

    /// The claims under another name than their own, with that name, in
    /// the order of [`UserClaim::ALL`].
    pub fn renamed(&self) -> impl Iterator<Item = (UserClaim, &str)> {
        UserClaim::ALL
            .into_iter()
            .map(|c| (c, self.get(c)))
            .filter(|(c, name)| c.name() != *name)
    }

    /// Refuses names that would make two claims one: an empty name, one
    /// given to two claims, a claim Tessera writes itself
    /// ([`RESERVED_CLAIMS`], the other user claims' own names included) or
    /// the user id's claim, `user_id_claim`. The error says which, in words.
    pub fn check(&self, user_id_claim: &str) -> Result<(), String> {
        let mut taken: Vec<(UserClaim, &str)> = Vec::new();
        for (claim, name) in self.renamed() {
            let own = claim.name();
            if name.is_empty() {
                return Err(format!("`{own}` is given an empty name"));
            }
            if RESERVED_CLAIMS.contains(&name) {
                return Err(format!(
                    "`{own}` cannot be renamed `{name}`, a claim Tessera writes itself \
                     (reserved: {})",
                    RESERVED_CLAIMS.join(", ")
                ));
            }
            if name == user_id_claim {
                return Err(format!(
                    "`{own}` cannot be renamed `{name}`, the claim of the user id \
                     (`user_id_claim`)"
                ));
            }
            if let Some((other, _)) = taken.iter().find(|(_, n)| *n == name) {
                return Err(format!(
                    "`{}` and `{own}` are both renamed `{name}`",
                    other.name()
                ));
            }
            taken.push((claim, name));
        }
        Ok(())
    }
}

/// What the `sub` claim carries (setting `subject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SubjectClaim {
    /// The user id as a string, `"42"` (the default).
    #[default]
    Id,
    /// The username, for services that look users up by `sub` (as the
    /// FastAPI tutorial does).
    Username,
}

impl SubjectClaim {
    /// Both choices, in the order the setting documents them.
    pub const ALL: [SubjectClaim; 2] = [SubjectClaim::Id, SubjectClaim::Username];

    /// The choice's name in the setting.
    pub fn name(self) -> &'static str {
        match self {
            SubjectClaim::Id => "id",
            SubjectClaim::Username => "username",
        }
    }
}

/// What the issuer knows about the user a token is minted for.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The user's id.
    pub user_id: UserId,
    /// The username, as stored.
    pub username: String,
    /// The user's email, `""` when absent.
    pub email: String,
    /// Whether the user is staff.
    pub is_staff: bool,
    /// Whether the user is a superuser.
    pub is_superuser: bool,
    /// The user's current token version (`ver`).
    pub token_version: i64,
    /// The user's roles, sorted, each once.
    pub roles: Vec<String>,
    /// What staff keep about the user, a JSON object (`{}` when nothing).
    pub app_metadata: Map<String, Value>,
    /// The version of the user's claims (`cver`): raised by each change of
    /// roles or metadata, so that access tokens carrying the old ones are
    /// refused as expired and clients refresh to get the new.
    pub claims_version: i64,
}

/// Claims of a token that passed signature, header and time checks.
///
/// The fields are the ones Tessera relies on; `raw` keeps every claim exactly
/// as the token carried it (for introspection and custom claims).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    /// Access or refresh.
    pub token_type: TokenType,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// The token's unique id.
    pub jti: Jti,
    /// The user's id (from the configured user id claim).
    pub user_id: UserId,
    /// The family: the login this token descends from.
    pub fid: FamilyId,
    /// The user's token version when the token was issued.
    pub ver: i64,
    /// The version of the user's claims the token carries (`cver`; 0 when
    /// absent, as in tokens minted before it existed).
    pub claims_version: i64,
    /// Whether the token comes straight from a password login (access tokens only).
    pub fresh: bool,
    /// The username claim (under its configured name), access tokens only.
    pub username: Option<String>,
    /// How the login the token descends from proved the user (`amr`, RFC
    /// 8176), in the token's order; empty when absent, as in tokens minted
    /// before it existed. Values Tessera does not write are left out here
    /// (`raw` keeps them).
    pub amr: Vec<AuthMethod>,
    /// Every claim as carried by the token.
    pub raw: Map<String, Value>,
}

/// Why a claims object is not one of Tessera's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("claim `{0}` is missing or malformed")]
pub struct ClaimError(pub &'static str);

impl VerifiedClaims {
    /// Reads Tessera's claims out of a decoded payload, refusing any that is
    /// missing or of the wrong JSON type, and any pair of claims that
    /// disagree (`sub` as `subject` says, `type` and `token_type`). The
    /// username is read from `username_claim` (setting `claim_names`).
    pub fn from_map(
        raw: Map<String, Value>,
        user_id_claim: &str,
        username_claim: &str,
        subject: SubjectClaim,
    ) -> Result<Self, ClaimError> {
        let token_type = match raw.get("token_type").and_then(Value::as_str) {
            Some("access") => TokenType::Access,
            Some("refresh") => TokenType::Refresh,
            _ => return Err(ClaimError("token_type")),
        };
        // Flask-JWT-Extended's name for the type. Tokens from before it was
        // added (still valid at an upgrade) have none.
        match raw.get("type") {
            None => {}
            Some(Value::String(t)) if t == token_type.as_str() => {}
            Some(_) => return Err(ClaimError("type")),
        }
        let int = |name: &'static str| {
            raw.get(name)
                .and_then(Value::as_i64)
                .ok_or(ClaimError(name))
        };
        let exp = int("exp")?;
        let iat = int("iat")?;
        let ver = int("ver")?;
        let claims_version = match raw.get("cver") {
            None => 0,
            Some(v) => v.as_i64().ok_or(ClaimError("cver"))?,
        };
        let user_id = raw
            .get(user_id_claim)
            .and_then(Value::as_i64)
            .map(UserId::new)
            .ok_or(ClaimError("user_id"))?;
        let jti = raw
            .get("jti")
            .and_then(Value::as_str)
            .and_then(Jti::parse)
            .ok_or(ClaimError("jti"))?;
        let fid = raw
            .get("fid")
            .and_then(Value::as_str)
            .and_then(FamilyId::parse)
            .ok_or(ClaimError("fid"))?;
        let fresh = match raw.get("fresh") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ClaimError("fresh")),
        };
        let username = match raw.get(username_claim) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ClaimError("username")),
        };
        let amr = match raw.get("amr") {
            None => Vec::new(),
            Some(Value::Array(values)) => {
                let mut methods = Vec::with_capacity(values.len());
                for value in values {
                    let name = value.as_str().ok_or(ClaimError("amr"))?;
                    methods.extend(AuthMethod::named(name));
                }
                methods
            }
            Some(_) => return Err(ClaimError("amr")),
        };
        // `sub` must agree with the claim it repeats: two claims naming two
        // users is a forgery. A refresh token has no username to compare.
        let sub = raw.get("sub").and_then(Value::as_str);
        let agrees = match (subject, sub) {
            (SubjectClaim::Id, Some(sub)) => sub.parse::<UserId>().ok() == Some(user_id),
            (SubjectClaim::Username, Some(sub)) => match &username {
                Some(name) => sub == name,
                None => !sub.is_empty() && token_type == TokenType::Refresh,
            },
            (_, None) => false,
        };
        if !agrees {
            return Err(ClaimError("sub"));
        }
        Ok(Self {
            token_type,
            exp,
            iat,
            jti,
            user_id,
            fid,
            ver,
            claims_version,
            fresh,
            username,
            amr,
            raw,
        })
    }
}

/// Whether `presented` equals `expected`, in time that does not depend on
/// where they differ (for CSRF values and other secrets compared by us).
pub fn secrets_match(presented: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// A fresh random string of 32 lowercase hex characters (CSRF values and
/// other random names; token and family ids are [`Jti::random`] and
/// [`FamilyId::random`]).
pub fn new_token_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Map<String, Value> {
        json!({
            "token_type": "access", "exp": 20, "iat": 10, "jti": "0123456789abcdef0123456789abcdef",
            "user_id": 7, "sub": "7", "fid": "fedcba9876543210fedcba9876543210", "ver": 0,
            "fresh": true, "username": "alice"
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    #[test]
    fn amr_is_read_in_order_without_values_tessera_does_not_write() {
        let read = |amr: Value| {
            let mut m = good();
            m.insert("amr".into(), amr);
            VerifiedClaims::from_map(m, "user_id", "username", SubjectClaim::Id)
                .unwrap()
                .amr
        };
        assert_eq!(
            read(json!(["pwd", "otp", "mfa"])),
            [
                AuthMethod::Password,
                AuthMethod::Otp,
                AuthMethod::MultiFactor
            ]
        );
        assert_eq!(read(json!(["face", "hwk"])), [AuthMethod::HardwareKey]);
        let absent = VerifiedClaims::from_map(good(), "user_id", "username", SubjectClaim::Id);
        assert_eq!(absent.unwrap().amr, [], "a token from before `amr`");
        for method in AuthMethod::ALL {
            assert_eq!(AuthMethod::named(method.name()), Some(method));
        }
    }

    #[test]
    fn reads_every_claim() {
        let c = VerifiedClaims::from_map(good(), "user_id", "username", SubjectClaim::Id).unwrap();
        assert_eq!(c.token_type, TokenType::Access);
        assert_eq!((c.user_id.get(), c.exp, c.iat, c.ver), (7, 20, 10, 0));
        assert_eq!(c.claims_version, 0, "absent: a token from before `cver`");
        let mut m = good();
        m.insert("cver".into(), json!(3));
        let c = VerifiedClaims::from_map(m, "user_id", "username", SubjectClaim::Id).unwrap();
        assert_eq!(c.claims_version, 3);
        assert!(c.fresh);
        assert_eq!(c.username.as_deref(), Some("alice"));
    }

    #[test]
    fn refuses_mistyped_or_missing_claims() {
        for (name, bad) in [
            ("exp", json!("20")),
            ("exp", json!(20.5)),
            ("user_id", json!("7")),
            ("sub", json!(7)),
            ("sub", json!("8")),
            ("jti", json!("ABC")),
            ("token_type", json!("id")),
            ("ver", json!(null)),
            ("fresh", json!("yes")),
            ("cver", json!("1")),
            ("cver", json!(1.5)),
            ("amr", json!("pwd")),
            ("amr", json!(["pwd", 1])),
            ("type", json!("refresh")),
            ("type", json!(1)),
        ] {
            let mut m = good();
            m.insert(name.into(), bad);
            assert!(
                VerifiedClaims::from_map(m, "user_id", "username", SubjectClaim::Id).is_err(),
                "{name}"
            );
            let mut m = good();
            if !["fresh", "type", "cver", "amr"].contains(&name) {
                m.remove(name);
                assert!(
                    VerifiedClaims::from_map(m, "user_id", "username", SubjectClaim::Id).is_err(),
                    "missing {name}"
                );
            }
        }
    }

    #[test]
    fn type_when_present_repeats_token_type() {
        let mut m = good();
        m.insert("type".into(), json!("access"));
        assert!(VerifiedClaims::from_map(m, "user_id", "username", SubjectClaim::Id).is_ok());
    }

    #[test]
    fn sub_carries_the_username_when_the_subject_setting_says_so() {
        let by_name = |sub: Value, token_type: &str, username: Option<&str>| {
            let mut m = good();
            m.insert("sub".into(), sub);
            m.insert("token_type".into(), json!(token_type));
            match username {
                Some(u) => m.insert("username".into(), json!(u)),
                None => m.remove("username"),
            };
            VerifiedClaims::from_map(m, "user_id", "username", SubjectClaim::Username).is_ok()
        };
        assert!(by_name(json!("alice"), "access", Some("alice")));
        assert!(!by_name(json!("bob"), "access", Some("alice")));
        assert!(!by_name(json!("7"), "access", Some("alice")));
        // A refresh token carries no username: any non-empty name.
        assert!(by_name(json!("alice"), "refresh", None));
        assert!(!by_name(json!(""), "refresh", None));
        assert!(!by_name(json!("alice"), "access", None));
        // And the id form is refused where the username is expected, and back.
        let mut m = good();
        m.insert("sub".into(), json!("alice"));
        assert!(VerifiedClaims::from_map(m, "user_id", "username", SubjectClaim::Id).is_err());
    }

    #[test]
    fn user_id_claim_name_is_configurable() {
        let mut m = good();
        let id = m.remove("user_id").unwrap();
        m.insert("uid".into(), id);
        assert_eq!(
            VerifiedClaims::from_map(m, "uid", "username", SubjectClaim::Id)
                .unwrap()
                .user_id,
            7
        );
    }

    #[test]
    fn the_username_is_read_under_its_configured_name() {
        let mut m = good();
        let name = m.remove("username").unwrap();
        m.insert("user_name".into(), name);
        let c = VerifiedClaims::from_map(m.clone(), "user_id", "user_name", SubjectClaim::Username);
        assert!(c.is_err(), "sub is \"7\", not the username");
        m.insert("sub".into(), json!("alice"));
        let c = VerifiedClaims::from_map(m.clone(), "user_id", "user_name", SubjectClaim::Username)
            .unwrap();
        assert_eq!(c.username.as_deref(), Some("alice"));
        // Read under the default name, the renamed claim is not there: with
        // `subject = "username"` nothing vouches for `sub`.
        assert!(
            VerifiedClaims::from_map(m, "user_id", "username", SubjectClaim::Username).is_err()
        );
    }

    #[test]
    fn claim_names_that_would_make_two_claims_one_are_refused() {
        let names = |pairs: &[(UserClaim, &str)]| {
            let mut n = ClaimNames::default();
            for (claim, name) in pairs {
                n.set(*claim, *name);
            }
            n
        };
        let tutorial = names(&[
            (UserClaim::Username, "user_name"),
            (UserClaim::IsStaff, "is_admin"),
        ]);
        assert_eq!(tutorial.check("user_id"), Ok(()));
        assert_eq!(
            tutorial.renamed().collect::<Vec<_>>(),
            vec![
                (UserClaim::Username, "user_name"),
                (UserClaim::IsStaff, "is_admin")
            ]
        );
        // A claim under its own name is not renamed.
        assert_eq!(
            names(&[(UserClaim::Email, "email")]).check("user_id"),
            Ok(())
        );
        assert_eq!(names(&[(UserClaim::Email, "email")]).renamed().count(), 0);
        let reserved = RESERVED_CLAIMS.join(", ");
        for (pairs, user_id_claim, error) in [
            (
                &[(UserClaim::Username, "")][..],
                "user_id",
                "`username` is given an empty name".to_owned(),
            ),
            (
                &[
                    (UserClaim::IsStaff, "is_admin"),
                    (UserClaim::IsSuperuser, "is_admin"),
                ],
                "user_id",
                "`is_staff` and `is_superuser` are both renamed `is_admin`".to_owned(),
            ),
            (
                &[(UserClaim::Username, "uid")],
                "uid",
                "`username` cannot be renamed `uid`, the claim of the user id (`user_id_claim`)"
                    .to_owned(),
            ),
            (
                &[(UserClaim::Username, "user_id")],
                "user_id",
                "`username` cannot be renamed `user_id`, the claim of the user id \
                 (`user_id_claim`)"
                    .to_owned(),
            ),
        ] {
            assert_eq!(names(pairs).check(user_id_claim), Err(error));
        }
        for claim in RESERVED_CLAIMS {
            // Under its own name a claim is not renamed: rename another.
            let user = if claim == "email" {
                UserClaim::Username
            } else {
                UserClaim::Email
            };
            assert_eq!(
                names(&[(user, claim)]).check("user_id"),
                Err(format!(
                    "`{}` cannot be renamed `{claim}`, a claim Tessera writes itself \
                     (reserved: {reserved})",
                    user.name()
                )),
                "{claim}"
            );
        }
    }

    #[test]
    fn token_ids_are_32_lower_hex() {
        let id = new_token_id();
        assert!(is_token_id(&id));
        assert_ne!(id, new_token_id());
    }
}
