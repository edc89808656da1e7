//! Password work off the runtime: hashing, verifying, and the policy's
//! verdict on a new password. Owns the hashing permits (so that a login
//! storm queues here instead of taking every blocking thread and all the
//! CPU), Argon2's pooled working memory and the password policy. Promises:
//! at most one hash per permit at a time, and an unknown user costs one
//! hash like a known one.

use super::hash_pool::HashPool;
use super::{AuthError, FieldErrors};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tessera_core::password::{self, HashMemory, PasswordPolicy};
use tokio::sync::Semaphore;

/// The hashing permits, the pooled memory and the password policy.
pub(super) struct Hashing {
    /// Bounds how many password hashes run at once.
    permits: Arc<Semaphore>,
    /// Argon2's working memory, reused while hashes come.
    memory: Arc<HashPool>,
    /// Password checks waiting for a permit (the queue a login storm builds).
    queued: AtomicUsize,
    policy: PasswordPolicy,
}

/// What a login's password check found.
pub(super) enum PasswordCheck {
    /// The password does not match, or there is no such user.
    Mismatch,
    /// It matches, and the stored hash stays (it is current, or a new one
    /// could not be made: the old one serves the next login).
    Matches,
    /// It matches, and the stored hash (`old`, not Tessera's current kind:
    /// an imported user's first login) is to be replaced by `new`.
    Rehash {
        /// The hash stored now.
        old: String,
        /// Its replacement.
        new: String,
    },
}

/// The password policy's verdict on a new password.
pub(super) enum Strength {
    /// It may be used.
    Acceptable,
    /// It breaks these rules (messages as Django reports them).
    Weak(Vec<String>),
}

impl Hashing {
    /// As many permits as the machine has cores, and `policy`.
    pub(super) fn new(policy: PasswordPolicy) -> Self {
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new(parallel)),
            memory: Arc::default(),
            queued: AtomicUsize::new(0),
            policy,
        }
    }

    /// How many password checks wait for a permit now.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// The permits themselves (tests hold them to make logins queue).
    #[cfg(test)]
    pub(super) fn permits(&self) -> &Arc<Semaphore> {
        &self.permits
    }

    /// Runs `work` off the runtime under a permit. The permit is held by
    /// the work itself: a request that goes away does not free it while its
    /// hash still runs.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        self.queued.fetch_add(1, Ordering::AcqRel);
        let permit = self.permits.clone().acquire_owned().await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        let permit = permit.map_err(|_| AuthError::Internal("hashing pool closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| AuthError::Internal("hashing task failed".into()))
    }

    /// [`Self::blocking`] for a password hash, with working memory from the
    /// pool ([`HashPool`]).
    async fn with_memory<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let pool = self.memory.clone();
        let (result, memory) = self
            .blocking(move || {
                let mut memory = pool.take();
                let result = work(&mut memory);
                (result, memory)
            })
            .await?;
        self.memory.give_back(memory);
        Ok(result)
    }

    /// Tessera's hash of `password`.
    pub(super) async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let clear = password.to_owned();
        self.with_memory(move |memory| password::hash_with(&clear, memory))
            .await?
            .map_err(|e| AuthError::Internal(format!("hashing failed: {e}")))
    }

    /// Whether `password` matches the stored hash `stored`.
    pub(super) async fn verify(&self, password: &str, stored: &str) -> Result<bool, AuthError> {
        let (clear, stored) = (password.to_owned(), stored.to_owned());
        self.with_memory(move |memory| password::verify_stored(&clear, &stored, memory))
            .await
    }

    /// A password login's hashing step: whether `password` matches `stored`
    /// (the user's hash; `None` for an unknown user, which costs one hash
    /// too, so that timing does not tell them apart), and the replacement
    /// of a hash that is not Tessera's current kind, computed under the
    /// same permit.
    pub(super) async fn check_login(
        &self,
        password: &str,
        stored: Option<String>,
    ) -> Result<PasswordCheck, AuthError> {
        let clear = password.to_owned();
        self.with_memory(move |memory| check_login(&clear, stored, memory))
            .await
    }

    /// The policy's verdict on `password` for the user `username` with
    /// address `email`. Estimating strength (zxcvbn) takes milliseconds of
    /// CPU, so it runs like the hashing, off the runtime.
    pub(super) async fn strength(
        &self,
        password: &str,
        username: &str,
        email: &str,
    ) -> Result<Strength, AuthError> {
        let policy = self.policy.clone();
        let (password, username, email) =
            (password.to_owned(), username.to_owned(), email.to_owned());
        let verdict = self
            .blocking(move || policy.check(&password, &username, &email))
            .await?;
        Ok(match verdict {
            Ok(()) => Strength::Acceptable,
            Err(messages) => Strength::Weak(messages),
        })
    }

    /// [`Self::strength`], a weak password refused as [`AuthError::Fields`]
    /// under `field`.
    pub(super) async fn require_strong(
        &self,
        password: &str,
        username: &str,
        email: &str,
        field: &str,
    ) -> Result<(), AuthError> {
        match self.strength(password, username, email).await? {
            Strength::Acceptable => Ok(()),
            Strength::Weak(messages) => {
                let mut errors = FieldErrors::new();
                errors.insert(field.into(), messages);
                Err(AuthError::Fields(errors))
            }
        }
    }
}

fn check_login(password: &str, stored: Option<String>, memory: &mut HashMemory) -> PasswordCheck {
    let Some(stored) = stored else {
        password::verify_dummy(password, memory);
        return PasswordCheck::Mismatch;
    };
    if !password::verify_stored(password, &stored, memory) {
        return PasswordCheck::Mismatch;
    }
    if password::is_current(&stored) {
        return PasswordCheck::Matches;
    }
    // Should hashing fail, the old hash stays and serves the next login.
    match password::hash_with(password, memory) {
        Ok(new) => PasswordCheck::Rehash { old: stored, new },
        Err(_) => PasswordCheck::Matches,
    }
}
