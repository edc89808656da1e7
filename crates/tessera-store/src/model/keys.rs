//! The record of a signing key (its private part never logged).

/// A stored signing key. `private_key` is secret: never logged.
#[derive(Clone, sqlx::FromRow)]
pub struct KeyRecord {
    /// Key id.
    pub kid: String,
    /// Algorithm name as in the settings.
    pub algorithm: String,
    /// HMAC secret or PKCS#8 PEM.
    pub private_key: Vec<u8>,
    /// Unix seconds, on the clock of the process that stored it.
    pub created_at: i64,
    /// When it starts signing, on the database's clock (Unix seconds): it is
    /// published from when it is stored, and every instance switches to it
    /// at this moment. `None`: from when it was stored (a first key, and the
    /// keys stored before keys were published ahead).
    pub signs_from: Option<i64>,
    /// When it stops signing (a newer key takes over then), possibly still
    /// ahead; on the database's clock, except for keys retired before keys
    /// were published ahead (the clock of the process that rotated).
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}
