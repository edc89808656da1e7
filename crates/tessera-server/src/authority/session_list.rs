//! The sessions a user sees (SPEC: sessions): listing them, and ending one
//! or all others, each exactly as a logout ends its family.

use super::*;
use tessera_core::claims::is_token_id;

impl Authority {
    /// The user's sessions not ended and not expired, most recently used
    /// first.
    pub async fn sessions_of(&self, user_id: i64) -> Result<Vec<SessionRecord>, AuthError> {
        Ok(self.store.live_sessions(user_id, self.now()).await?)
    }

    /// Ends session `fid` of user `user_id` as a logout would; false (and
    /// nothing done) when it is not a live session of that user: another
    /// user's, an ended one, an unknown or malformed id. `actor` is the
    /// staff user who ends it (a superuser's session: a superuser only),
    /// `None` for the user.
    pub async fn end_session(
        &self,
        user_id: i64,
        fid: &str,
        actor: Option<i64>,
        origin: &SessionOrigin,
    ) -> Result<bool, AuthError> {
        if !is_token_id(fid) {
            return Ok(false);
        }
        self.only_superusers_touch_superusers(user_id, actor)
            .await?;
        let live = self.sessions_of(user_id).await?;
        if !live.iter().any(|s| s.family_id == fid) {
            return Ok(false);
        }
        self.revoke_family(fid, user_id, self.now()).await?;
        let detail = serde_json::json!({"session": fid});
        self.audit("session_ended", Some(user_id), actor, Some(origin), detail);
        Ok(true)
    }

    /// Ends every live session of user `user_id` but `keep` (the caller's
    /// own); returns how many it ended.
    pub async fn end_other_sessions(
        &self,
        user_id: i64,
        keep: &str,
        origin: &SessionOrigin,
    ) -> Result<usize, AuthError> {
        let now = self.now();
        let mut ended = 0;
        for session in self.sessions_of(user_id).await? {
            if session.family_id != keep {
                self.revoke_family(&session.family_id, user_id, now).await?;
                let detail = serde_json::json!({"session": session.family_id});
                self.audit("session_ended", Some(user_id), None, Some(origin), detail);
                ended += 1;
            }
        }
        Ok(ended)
    }
}
