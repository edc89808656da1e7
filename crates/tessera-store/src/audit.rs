//! The audit log's table (`audit_events`) for both engines: appended in
//! batches, read newest first with filters (pages) or oldest first from an
//! id (a follower's cursor), pruned by age.

use crate::{AuditEvent, AuditFilter, AuditRecord, StoreResult};
use sqlx::QueryBuilder;

const COLUMNS: &str = "id, at, event, user_id, actor_id, ip, user_agent, detail";

/// The same steps in each engine's SQL (their builders differ in type).
macro_rules! engine {
    ($name:ident, $db:ty) => {
        pub(crate) mod $name {
            use super::*;

            /// Appends `events` in one statement.
            pub(crate) async fn append<'e, E>(executor: E, events: &[AuditEvent]) -> StoreResult<()>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                if events.is_empty() {
                    return Ok(());
                }
                let mut insert = QueryBuilder::<$db>::new(
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
                insert.build().execute(executor).await?;
                Ok(())
            }

            fn filtered(select: &str, filter: &AuditFilter) -> QueryBuilder<'static, $db> {
                let mut query = QueryBuilder::<$db>::new(select);
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

            /// How many events match, and `limit` of them from `offset`,
            /// newest first.
            pub(crate) async fn page<'c, A>(
                conn: A,
                filter: &AuditFilter,
                offset: i64,
                limit: i64,
            ) -> StoreResult<(i64, Vec<AuditRecord>)>
            where
                A: sqlx::Acquire<'c, Database = $db>,
            {
                let mut conn = conn.acquire().await?;
                // fetch_all, not fetch_one: a SQLite statement left before
                // its end keeps its read transaction, and so its connection
                // an old snapshot, until the statement is next used.
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

            /// The events matching `filter` with an id above `after`, oldest
            /// first, at most `limit`.
            pub(crate) async fn after<'e, E>(
                executor: E,
                filter: &AuditFilter,
                after: i64,
                limit: i64,
            ) -> StoreResult<Vec<AuditRecord>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let mut query = filtered(&format!("SELECT {COLUMNS}"), filter);
                query
                    .push(" AND id > ")
                    .push_bind(after)
                    .push(" ORDER BY id LIMIT ")
                    .push_bind(limit.max(0));
                Ok(query.build_query_as().fetch_all(executor).await?)
            }

            /// Deletes events before `before`; how many.
            pub(crate) async fn prune<'e, E>(executor: E, before: i64) -> StoreResult<u64>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let mut query = QueryBuilder::<$db>::new("DELETE FROM audit_events WHERE at < ");
                query.push_bind(before);
                Ok(query.build().execute(executor).await?.rows_affected())
            }
        }
    };
}

engine!(sqlite, sqlx::Sqlite);
engine!(postgres, sqlx::Postgres);
