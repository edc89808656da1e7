//! The audit log (`audit_events`): appended in batches, read newest first
//! with filters (pages) or oldest first from an id (a follower's cursor),
//! pruned by age. Event ids commit in id order on both engines (SQLite has
//! one writer; PostgreSQL appends take [`AUDIT_LOG_LOCK`]), so a follower
//! skips none.

use crate::engine::for_each_engine;
use crate::{AUDIT_LOG_LOCK, AuditEvent, AuditFilter, AuditRecord, StoreResult};
use async_trait::async_trait;
use sqlx::QueryBuilder;

const COLUMNS: &str = "id, at, event, user_id, actor_id, ip, user_agent, detail";

/// The audit log, with the promises of [`Store`](crate::Store): each
/// method atomic, and durable once it returns.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends `events` to the audit log, in one transaction.
    async fn append_audit(&self, events: &[AuditEvent]) -> StoreResult<()>;

    /// How many audit events match `filter`, and `limit` of them from
    /// `offset`, newest first.
    async fn audit_page(
        &self,
        filter: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(i64, Vec<AuditRecord>)>;

    /// The audit events matching `filter` with an id above `after`, oldest
    /// first, at most `limit`: what a follower reads from its cursor (the
    /// last id it read), page after page. Ids are given in commit order (on
    /// PostgreSQL appends take [`AUDIT_LOG_LOCK`]; SQLite has one writer),
    /// so an event committed after a read never has an id below the ids that
    /// read returned, and a follower misses none.
    async fn audit_after(
        &self,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>>;

    /// Deletes audit events older than `before` (Unix seconds); how many.
    async fn prune_audit(&self, before: i64) -> StoreResult<u64>;
}

for_each_engine! {
    /// `select` from the events matching `filter`.
    fn filtered(select: &str, filter: &AuditFilter) -> QueryBuilder<'static, Db> {
        let mut query = QueryBuilder::<Db>::new(select);
        query.push(" FROM audit_events WHERE 1 = 1");
        if let Some(user_id) = filter.user_id {
            query.push(" AND user_id = ").push_bind(user_id);
        }
        if let Some(event) = &filter.event {
            query.push(" AND event = ").push_bind(event.clone());
        }
        if let Some(since) = filter.since {
            query.push(" AND at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            query.push(" AND at <= ").push_bind(until);
        }
        query
    }

    #[async_trait]
    impl AuditStore for Engine {
        async fn append_audit(&self, events: &[AuditEvent]) -> StoreResult<()> {
            if events.is_empty() {
                return Ok(());
            }
            // Under the audit lock on PostgreSQL, as the change log is under
            // its own: ids are drawn and committed one append at a time, so
            // they commit in id order, and a follower reading `id > cursor`
            // skips none.
            let mut tx = self.pool.begin().await?;
            Db::lock(&mut tx, AUDIT_LOG_LOCK).await?;
            let mut insert = QueryBuilder::<Db>::new(
                "INSERT INTO audit_events (at, event, user_id, actor_id, ip, user_agent, detail) ",
            );
            insert.push_values(events, |mut row, e| {
                row.push_bind(e.at)
                    .push_bind(&e.event)
                    .push_bind(e.user_id)
                    .push_bind(e.actor_id)
                    .push_bind(&e.ip)
                    .push_bind(&e.user_agent)
                    .push_bind(&e.detail);
            });
            insert.build().execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        }

        async fn audit_page(
            &self,
            filter: &AuditFilter,
            offset: i64,
            limit: i64,
        ) -> StoreResult<(i64, Vec<AuditRecord>)> {
            let mut conn = self.pool.acquire().await?;
            // fetch_all, not fetch_one: a SQLite statement left before its
            // end keeps its read transaction, and so its connection an old
            // snapshot, until the statement is next used.
            let counts: Vec<i64> = filtered("SELECT COUNT(*)", filter)
                .build_query_scalar()
                .fetch_all(&mut *conn)
                .await?;
            let count = counts.first().copied().unwrap_or(0);
            let mut query = filtered(&format!("SELECT {COLUMNS}"), filter);
            query
                .push(" ORDER BY id DESC LIMIT ")
                .push_bind(limit)
                .push(" OFFSET ")
                .push_bind(offset);
            let rows = query.build_query_as().fetch_all(&mut *conn).await?;
            Ok((count, rows))
        }

        async fn audit_after(
            &self,
            filter: &AuditFilter,
            after: i64,
            limit: i64,
        ) -> StoreResult<Vec<AuditRecord>> {
            let mut query = filtered(&format!("SELECT {COLUMNS}"), filter);
            query
                .push(" AND id > ")
                .push_bind(after)
                .push(" ORDER BY id LIMIT ")
                .push_bind(limit.max(0));
            Ok(query.build_query_as().fetch_all(&self.pool).await?)
        }

        async fn prune_audit(&self, before: i64) -> StoreResult<u64> {
            Ok(sqlx::query("DELETE FROM audit_events WHERE at < $1")
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected())
        }
    }
}
