//! Why a token is refused: the one answer the token rules give, shared by the
//! server and the verification library, and sent to clients as `reason`.

/// Why a token was refused. The server and the library answer a refused
/// token with a 401 whose `reason` is [`Refusal::as_str`], so that a client
/// knows whether to refresh (`expired`) or to log in again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Refusal {
    /// Malformed, forged, of an unexpected algorithm or key, with bad claims,
    /// or naming no user.
    #[error("token is invalid")]
    Invalid,
    /// Validly signed, but past its `exp` beyond the leeway.
    #[error("token is expired")]
    Expired,
    /// An access token where a refresh token is expected, or the reverse.
    #[error("token has the wrong type")]
    WrongType,
    /// Blacklisted, of an older token version, of an ended family, or of an
    /// inactive user: something revoked it after it was issued.
    #[error("token has been revoked")]
    Revoked,
}

impl Refusal {
    /// The `reason` value: `invalid`, `expired`, `wrong_type` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Invalid => "invalid",
            Refusal::Expired => "expired",
            Refusal::WrongType => "wrong_type",
            Refusal::Revoked => "revoked",
        }
    }
}
