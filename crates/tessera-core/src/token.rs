//! Issuing tokens and validating them: the one implementation of docs/API.md's
//! rules, shared by the server and the verification library.
//!
//! Validation here covers everything a token proves by itself (shape, header,
//! signature, times, issuer, audience, type). Whether it has since been revoked
//! is the job of [`crate::revocation`], which needs state the token cannot carry.

use crate::claims::{
    AuthMethod, ClaimNames, ExtraClaim, Subject, SubjectClaim, TokenType, UserClaim, VerifiedClaims,
};
use crate::ids::{FamilyId, Jti};
use crate::keys::{KeyRing, algorithm_name};
use crate::refusal::Refusal;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Header;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Tokens longer than this are refused before any decoding work.
pub const MAX_TOKEN_LEN: usize = 8192;

/// The token rules in force: what the settings (docs/CONFIGURATION.md) say about tokens.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// Lifetime of access tokens, seconds.
    pub access_lifetime: i64,
    /// Lifetime of refresh tokens, seconds.
    pub refresh_lifetime: i64,
    /// `iss` to set and require.
    pub issuer: Option<String>,
    /// `aud` to set and require.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, seconds.
    pub leeway: i64,
    /// The claim that carries the user id.
    pub user_id_claim: String,
    /// User fields copied into access tokens.
    pub extra_claims: Vec<ExtraClaim>,
    /// What `sub` carries.
    pub subject: SubjectClaim,
    /// The names the user claims carry (written and read under them).
    pub claim_names: ClaimNames,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenPolicy {
    /// The policy of a default configuration.
    pub fn new() -> Self {
        Self {
            access_lifetime: 300,
            refresh_lifetime: 86_400,
            issuer: None,
            audience: None,
            leeway: 0,
            user_id_claim: "user_id".to_owned(),
            extra_claims: Vec::new(),
            subject: SubjectClaim::Id,
            claim_names: ClaimNames::default(),
        }
    }

    /// The longest any token may still be accepted after it was issued:
    /// the longer lifetime plus the leeway. A marker or a key kept this long
    /// outlives every token it concerns.
    pub fn longest_validity(&self) -> i64 {
        self.access_lifetime.max(self.refresh_lifetime) + self.leeway
    }

    /// The lifetime of tokens of this type, seconds.
    pub fn lifetime(&self, token_type: TokenType) -> i64 {
        match token_type {
            TokenType::Access => self.access_lifetime,
            TokenType::Refresh => self.refresh_lifetime,
        }
    }
}

/// A freshly minted token with the claims Tessera needs to record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    /// The compact JWS.
    pub token: String,
    /// Its `jti`.
    pub jti: Jti,
    /// Its family.
    pub fid: FamilyId,
    /// Issue time.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
    /// The `csrf` claim, for tokens that travel in cookies.
    pub csrf: Option<String>,
}

/// What to mint: the kind of token and its place in a login's family.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    /// Access or refresh.
    pub token_type: TokenType,
    /// The family (login) the token belongs to.
    pub fid: &'a FamilyId,
    /// Whether this comes straight from a password login (access tokens).
    pub fresh: bool,
    /// Further claims to add; never overrides the standard ones.
    pub extra: Option<&'a Map<String, Value>>,
    /// A `csrf` claim, for tokens that travel in cookies (double-submit CSRF).
    pub csrf: Option<&'a str>,
    /// How the login proved the user (`amr`, RFC 8176), in tokens of both
    /// types so that a refresh carries it on; none written when empty.
    pub amr: &'a [AuthMethod],
}

/// Mints a signed token for `subject` with the ring's signing key.
pub fn issue(
    policy: &TokenPolicy,
    ring: &KeyRing,
    subject: &Subject,
    grant: &Grant<'_>,
    now: i64,
) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
    let jti = Jti::random();
    let exp = now + policy.lifetime(grant.token_type);
    let mut claims = Map::new();
    if let Some(extra) = grant.extra {
        claims.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    claims.insert("token_type".into(), json!(grant.token_type.as_str()));
    // Flask-JWT-Extended reads the type from `type` and takes a token
    // without one for an access token: a refresh token must say what it is.
    claims.insert("type".into(), json!(grant.token_type.as_str()));
    claims.insert("exp".into(), json!(exp));
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert("jti".into(), json!(jti));
    claims.insert(policy.user_id_claim.clone(), json!(subject.user_id));
    let sub = match policy.subject {
        SubjectClaim::Id => json!(subject.user_id.to_string()),
        SubjectClaim::Username => json!(subject.username),
    };
    claims.insert("sub".into(), sub);
    claims.insert("fid".into(), json!(grant.fid));
    claims.insert("ver".into(), json!(subject.token_version));
    if grant.token_type == TokenType::Access {
        let names = &policy.claim_names;
        claims.insert(
            names.get(UserClaim::Username).into(),
            json!(subject.username),
        );
        claims.insert("fresh".into(), json!(grant.fresh));
        // Only access tokens carry the user's claims, so only they go stale
        // when roles or metadata change; a refresh token stays good.
        claims.insert("cver".into(), json!(subject.claims_version));
        for extra in &policy.extra_claims {
            let value = match extra {
                ExtraClaim::Email => json!(subject.email),
                ExtraClaim::IsStaff => json!(subject.is_staff),
                ExtraClaim::IsSuperuser => json!(subject.is_superuser),
                ExtraClaim::Roles => json!(subject.roles),
                ExtraClaim::AppMetadata => Value::Object(subject.app_metadata.clone()),
            };
            claims.insert(names.get((*extra).into()).into(), value);
        }
    }
    if let Some(csrf) = grant.csrf {
        claims.insert("csrf".into(), json!(csrf));
    }
    if !grant.amr.is_empty() {
        let names: Vec<&str> = grant.amr.iter().map(|m| m.name()).collect();
        claims.insert("amr".into(), json!(names));
    }
    if let Some(iss) = &policy.issuer {
        claims.insert("iss".into(), json!(iss));
    }
    if let Some(aud) = &policy.audience {
        claims.insert("aud".into(), json!(aud));
    }
    let token = sign(ring, &claims, now)?;
    Ok(IssuedToken {
        token,
        jti,
        fid: *grant.fid,
        iat: now,
        exp,
        csrf: grant.csrf.map(str::to_owned),
    })
}

/// The only header members a Tessera token may carry. Anything else
/// (`jku`, `x5u`, `x5c`, `jwk`, `crit`, ...) makes the token invalid: those
/// members exist to make a verifier trust keys it did not choose.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
}

/// The `kid` a well-formed token names, read without trusting anything else
/// in it (to decide whether a key set must be fetched again).
pub fn peek_kid(token: &str) -> Option<String> {
    if !is_well_formed(token) {
        return None;
    }
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    serde_json::from_slice::<StrictHeader>(&header).ok()?.kid
}

/// Checks the shape of a compact JWS: three non-empty base64url segments,
/// no padding, no whitespace, at most [`MAX_TOKEN_LEN`] characters.
pub fn is_well_formed(token: &str) -> bool {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return false;
    }
    let mut segments = 0;
    for segment in token.split('.') {
        segments += 1;
        if segment.is_empty()
            || !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
    }
    segments == 3
}

/// Validates everything `token` proves by itself and returns its claims.
///
/// `expected` names the type the caller needs; `None` accepts either (as
/// simplejwt's verify endpoint does).
pub fn validate(
    policy: &TokenPolicy,
    ring: &KeyRing,
    token: &str,
    expected: Option<TokenType>,
    now: i64,
) -> Result<VerifiedClaims, Refusal> {
    let raw = verify_signed(policy, ring, token, now)?;
    let claims = VerifiedClaims::from_map(
        raw,
        &policy.user_id_claim,
        policy.claim_names.get(UserClaim::Username),
        policy.subject,
    )
    .map_err(|_| Refusal::Invalid)?;
    check_moment(&claims, policy, expected, now)?;
    Ok(claims)
}

/// The checks every Tessera token passes whoever it names (a user or a
/// service client): shape, header, the signature by a key of `ring`,
/// `nbf`, issuer and audience. Returns the payload; what its claims must
/// say is the caller's ([`validate`], [`crate::client::validate_client`]).
pub(crate) fn verify_signed(
    policy: &TokenPolicy,
    ring: &KeyRing,
    token: &str,
    now: i64,
) -> Result<Map<String, Value>, Refusal> {
    if !is_well_formed(token) {
        return Err(Refusal::Invalid);
    }
    let header_b64 = token.split('.').next().ok_or(Refusal::Invalid)?;
    let header_json = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| Refusal::Invalid)?;
    let header: StrictHeader =
        serde_json::from_slice(&header_json).map_err(|_| Refusal::Invalid)?;
    if header.typ.as_deref() != Some("JWT") {
        return Err(Refusal::Invalid);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| ring.get(kid, now))
        .ok_or(Refusal::Invalid)?;
    // The algorithm comes from our key, never from the token: a header naming
    // any other (`none`, `HS256` against an ES256 key, ...) is refused.
    if header.alg != algorithm_name(key.algorithm()) {
        return Err(Refusal::Invalid);
    }

    // jsonwebtoken checks the signature; parsing the payload once and the
    // time and audience rules are ours, with our clock.
    let (signing_input, signature) = token.rsplit_once('.').ok_or(Refusal::Invalid)?;
    let verified = jsonwebtoken::crypto::verify(
        signature,
        signing_input.as_bytes(),
        key.decoding(),
        key.algorithm(),
    )
    .unwrap_or(false);
    if !verified {
        return Err(Refusal::Invalid);
    }
    let payload_b64 = signing_input.split('.').nth(1).ok_or(Refusal::Invalid)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| Refusal::Invalid)?;
    let raw: Map<String, Value> = serde_json::from_slice(&payload).map_err(|_| Refusal::Invalid)?;

    if let Some(nbf) = raw.get("nbf") {
        match nbf.as_i64() {
            Some(nbf) if nbf <= now + policy.leeway => {}
            _ => return Err(Refusal::Invalid),
        }
    }
    if let Some(iss) = &policy.issuer
        && raw.get("iss").and_then(Value::as_str) != Some(iss.as_str())
    {
        return Err(Refusal::Invalid);
    }
    if let Some(aud) = &policy.audience {
        let ok = match raw.get("aud") {
            Some(Value::String(s)) => s == aud,
            Some(Value::Array(list)) => list.iter().any(|v| v.as_str() == Some(aud.as_str())),
            _ => false,
        };
        if !ok {
            return Err(Refusal::Invalid);
        }
    }
    Ok(raw)
}

/// Signs `claims` with the ring's signing key at `now`, naming it by `kid`.
pub(crate) fn sign(
    ring: &KeyRing,
    claims: &Map<String, Value>,
    now: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let (key, encoding) = ring
        .signing_key(now)
        .and_then(|key| Some((key, key.encoding()?)))
        .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    let mut header = Header::new(key.algorithm());
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, encoding)
}

/// The checks of [`validate`] that depend on the moment and the caller: not
/// expired at `now` (with the leeway), and of the `expected` type.
pub fn check_moment(
    claims: &VerifiedClaims,
    policy: &TokenPolicy,
    expected: Option<TokenType>,
    now: i64,
) -> Result<(), Refusal> {
    if now >= claims.exp.saturating_add(policy.leeway) {
        return Err(Refusal::Expired);
    }
    if let Some(expected) = expected
        && claims.token_type != expected
    {
        return Err(Refusal::WrongType);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
