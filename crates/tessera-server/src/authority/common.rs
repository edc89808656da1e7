//! What every part of the authority works with: the settings and the token
//! policy they give, the store, the clock, the audit log, and the
//! announcement of writes that other instances must learn of. It decides
//! nothing about a token or a user; the parts do, each with its own state.

use super::SessionOrigin;
use super::audit_trail::AuditKind;
use crate::audit::AuditLog;
use crate::config::Settings;
use std::sync::Arc;
use tessera_core::clock::Clock;
use tessera_core::ids::UserId;
use tessera_core::token::TokenPolicy;
use tessera_store::Store;
use tokio::sync::Notify;

/// The services the parts share (one per authority, behind an `Arc`).
pub(super) struct Common {
    settings: Settings,
    policy: TokenPolicy,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Where security events go.
    audit: AuditLog,
    /// Woken after each write of this process that other instances must
    /// learn of (see [`Common::writes`]).
    written: Arc<Notify>,
}

impl Common {
    /// The services of an authority of `settings` over `store`, its audit
    /// writer started on the current runtime.
    pub(super) fn new(settings: Settings, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let policy = settings.token_policy();
        let audit = AuditLog::start(store.clone());
        Self {
            settings,
            policy,
            store,
            clock,
            audit,
            written: Arc::default(),
        }
    }

    /// The settings in force.
    pub(super) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The token policy the settings give.
    pub(super) fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// The store.
    pub(super) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock.
    pub(super) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The current time, seconds.
    pub(super) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The current time, milliseconds.
    pub(super) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Appends a security event to the audit log, without waiting.
    /// `detail` must hold no password, hash or token.
    pub(super) fn audit(
        &self,
        kind: AuditKind,
        user_id: Option<UserId>,
        actor_id: Option<UserId>,
        origin: Option<&SessionOrigin>,
        detail: serde_json::Value,
    ) {
        self.audit.record(tessera_store::AuditEvent {
            at: self.now(),
            event: kind.as_str().to_owned(),
            user_id: user_id.map(UserId::get),
            actor_id: actor_id.map(UserId::get),
            ip: origin.map(|o| o.ip.to_string()).unwrap_or_default(),
            user_agent: origin.map(|o| o.user_agent.clone()).unwrap_or_default(),
            detail: detail.to_string(),
        });
    }

    /// The audit log's writer (to flush it).
    pub(super) fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// Woken (one stored wake-up, so bursts fold into one) after every
    /// write of this process that changes whether some token is accepted.
    pub(super) fn writes(&self) -> Arc<Notify> {
        self.written.clone()
    }

    /// Tells [`Common::writes`] that the change log grew.
    pub(super) fn announce(&self) {
        self.written.notify_one();
    }
}
