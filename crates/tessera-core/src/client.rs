//! Service clients' tokens (the OAuth2 `client_credentials` grant): what
//! they carry, how they are minted, and how they are validated. The same
//! signature, time, issuer and audience rules as users' tokens
//! ([`crate::token`]); the claims name a client instead of a user, so a
//! user endpoint refuses a client's token as invalid (it has no user id,
//! `fid` or `ver`) and a client endpoint refuses a user's (no `client_id`).

use crate::claims::TokenType;
use crate::ids::Jti;
use crate::keys::KeyRing;
use crate::refusal::Refusal;
use crate::token::{TokenPolicy, sign, verify_signed};
use serde_json::{Map, Value, json};

/// Scope to read the revocation feed.
pub const SCOPE_REVOCATIONS: &str = "revocations";
/// Scope to call the introspection endpoint.
pub const SCOPE_INTROSPECT: &str = "introspect";
/// Every scope a client may hold, in the order the documentation lists them.
pub const SCOPES: [&str; 2] = [SCOPE_REVOCATIONS, SCOPE_INTROSPECT];

/// The claims of a valid client token.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientClaims {
    /// The client's id (also `sub`).
    pub client_id: String,
    /// The scopes granted, in the order the token lists them.
    pub scopes: Vec<String>,
    /// The token's id.
    pub jti: Jti,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

impl ClientClaims {
    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Reads a client token's claims out of a decoded payload: an access
    /// token whose `client_id` is a client id and equals `sub`, with a
    /// token-id `jti`, integer `iat` and `exp`, and a string `scope`.
    fn from_map(raw: &Map<String, Value>) -> Option<Self> {
        let text = |name: &str| raw.get(name).and_then(Value::as_str);
        let int = |name: &str| raw.get(name).and_then(Value::as_i64);
        if text("token_type") != Some(TokenType::Access.as_str()) {
            return None;
        }
        let client_id = text("client_id").filter(|id| is_client_id(id))?;
        if text("sub") != Some(client_id) {
            return None;
        }
        let jti = text("jti").and_then(Jti::parse)?;
        Some(Self {
            client_id: client_id.to_owned(),
            scopes: parse_scope(text("scope")?)?,
            jti,
            iat: int("iat")?,
            exp: int("exp")?,
        })
    }
}

/// A freshly minted client token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedClientToken {
    /// The compact JWS.
    pub token: String,
    /// Its `jti`.
    pub jti: Jti,
    /// Issue time.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
}

/// Mints a token for client `client_id` granting `scopes`, valid for
/// `lifetime` seconds from `now`, with `iss` and `aud` as `policy` sets them.
pub fn issue_client(
    policy: &TokenPolicy,
    ring: &KeyRing,
    client_id: &str,
    scopes: &[String],
    lifetime: i64,
    now: i64,
) -> Result<IssuedClientToken, jsonwebtoken::errors::Error> {
    let jti = Jti::random();
    let exp = now + lifetime;
    let mut claims = Map::new();
    claims.insert("token_type".into(), json!(TokenType::Access.as_str()));
    claims.insert("exp".into(), json!(exp));
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert("jti".into(), json!(jti));
    claims.insert("sub".into(), json!(client_id));
    claims.insert("client_id".into(), json!(client_id));
    claims.insert("scope".into(), json!(scopes.join(" ")));
    if let Some(iss) = &policy.issuer {
        claims.insert("iss".into(), json!(iss));
    }
    if let Some(aud) = &policy.audience {
        claims.insert("aud".into(), json!(aud));
    }
    Ok(IssuedClientToken {
        token: sign(ring, &claims, now)?,
        jti,
        iat: now,
        exp,
    })
}

/// Validates everything a client token proves by itself (as
/// [`crate::token::validate`] does for users' tokens) and returns its
/// claims. Whether the client was removed since, or the token revoked, is
/// [`crate::revocation::RevocationSet::check_client`]'s.
pub fn validate_client(
    policy: &TokenPolicy,
    ring: &KeyRing,
    token: &str,
    now: i64,
) -> Result<ClientClaims, Refusal> {
    let raw = verify_signed(policy, ring, token, now)?;
    let claims = ClientClaims::from_map(&raw).ok_or(Refusal::Invalid)?;
    if now >= claims.exp.saturating_add(policy.leeway) {
        return Err(Refusal::Expired);
    }
    Ok(claims)
}

/// Whether `id` has the shape of a client id: `tc_` and 24 lowercase hex
/// characters ([`new_client_id`]). Never a number, so a client's `sub` can
/// never be read as a user id.
pub fn is_client_id(id: &str) -> bool {
    id.len() == 27
        && id.starts_with("tc_")
        && id[3..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A fresh random client id (see [`is_client_id`]).
pub fn new_client_id() -> String {
    let bytes: [u8; 12] = rand::random();
    format!("tc_{}", hex::encode(bytes))
}

/// A fresh client secret: 256 random bits, base64url without padding (43
/// characters). With that much entropy a fast hash of it is as good as a
/// slow one ([`secret_digest`]).
pub fn new_client_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a client secret: its SHA-256, lowercase hex.
/// Compare a presented secret's digest with the stored one by
/// [`crate::claims::secrets_match`].
pub fn secret_digest(secret: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// Splits an OAuth2 `scope` value (space-separated, RFC 6749 3.3) into its
/// scopes, refusing an empty one or a character outside `%x21 / %x23-5B /
/// %x5D-7E`. An empty value is no scope at all.
pub fn parse_scope(scope: &str) -> Option<Vec<String>> {
    if scope.is_empty() {
        return Some(Vec::new());
    }
    scope
        .split(' ')
        .map(|s| {
            let ok = !s.is_empty()
                && s.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            ok.then(|| s.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Subject;
    use crate::ids::{FamilyId, UserId};
    use crate::token::{Grant, issue, validate};
    use jsonwebtoken::Algorithm;

    const NOW: i64 = 1_800_000_000;

    fn setup() -> (TokenPolicy, KeyRing) {
        let key = crate::keys::testing::test_material(Algorithm::ES256)
            .into_key()
            .unwrap();
        (TokenPolicy::new(), KeyRing::single(key))
    }

    #[test]
    fn a_client_token_validates_as_a_client_and_never_as_a_user() {
        let (policy, ring) = setup();
        let id = new_client_id();
        assert!(is_client_id(&id) && id.parse::<i64>().is_err());
        let scopes = vec![SCOPE_REVOCATIONS.to_owned()];
        let t = issue_client(&policy, &ring, &id, &scopes, 3600, NOW).unwrap();
        let claims = validate_client(&policy, &ring, &t.token, NOW).unwrap();
        assert_eq!(claims.client_id, id);
        assert_eq!(claims.jti, t.jti);
        assert_eq!((claims.iat, claims.exp), (NOW, NOW + 3600));
        assert!(claims.has_scope(SCOPE_REVOCATIONS) && !claims.has_scope(SCOPE_INTROSPECT));
        assert_eq!(
            validate(&policy, &ring, &t.token, None, NOW),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            validate_client(&policy, &ring, &t.token, NOW + 3600),
            Err(Refusal::Expired)
        );
        // A user's token is not a client's.
        let fid = FamilyId::random();
        let subject = Subject {
            user_id: UserId::new(7),
            username: "alice".into(),
            email: String::new(),
            is_staff: false,
            is_superuser: false,
            token_version: 0,
            roles: Vec::new(),
            app_metadata: Default::default(),
            claims_version: 0,
        };
        let grant = Grant {
            token_type: TokenType::Access,
            fid: &fid,
            fresh: false,
            extra: None,
            csrf: None,
            amr: &[],
        };
        let user = issue(&policy, &ring, &subject, &grant, NOW).unwrap();
        assert_eq!(
            validate_client(&policy, &ring, &user.token, NOW),
            Err(Refusal::Invalid)
        );
    }

    #[test]
    fn scopes_follow_rfc_6749() {
        assert_eq!(parse_scope(""), Some(vec![]));
        assert_eq!(
            parse_scope("revocations introspect"),
            Some(vec!["revocations".into(), "introspect".into()])
        );
        for bad in [" revocations", "a  b", "a\"b", "a\\b", "é", "a\tb", "a "] {
            assert_eq!(parse_scope(bad), None, "{bad:?}");
        }
        assert!(!is_client_id("tc_0123456789abcdef0123456"));
        assert!(!is_client_id("tc_0123456789ABCDEF01234567"));
        assert!(is_client_id("tc_0123456789abcdef01234567"));
        let secret = new_client_secret();
        assert_eq!(secret.len(), 43);
        assert_eq!(secret_digest(&secret).len(), 64);
        assert_ne!(secret_digest(&secret), secret_digest(&new_client_secret()));
    }
}
