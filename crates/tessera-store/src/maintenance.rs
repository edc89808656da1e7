//! Keeping the database itself: its schema brought up to date, whether it
//! answers, and the pruning of what no longer matters in every table (each
//! table's module gives its pruning statements).

use crate::StoreResult;
use crate::engine::for_each_engine;
use async_trait::async_trait;

/// The database as a whole, with the promises of [`Store`](crate::Store).
#[async_trait]
pub trait Maintenance: Send + Sync {
    /// Brings the schema up to date.
    async fn migrate(&self) -> StoreResult<()>;

    /// Succeeds when the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Deletes what no longer matters at `now`: refresh tokens, revoked
    /// families and mailed links past their expiry, sealed successors past
    /// their grace period, removed clients whose tokens have all expired,
    /// second-factor challenges past their expiry, mail requests and sent
    /// or abandoned mail older than a week, and the change-log entries below
    /// the oldest one written at or after `changes_before` (every process
    /// has long applied them; one that was away longer reloads its whole
    /// state), keeping the newest entry whatever its age. Returns rows deleted.
    async fn prune(&self, now: i64, changes_before: i64) -> StoreResult<u64>;

    /// The task that commits refresh-token writes in batches, for a
    /// supervisor to run (and run again should it fail); `None` for a store
    /// without one. Until a supervisor runs it, writes are committed by a
    /// task started on demand, so a store works without one.
    fn batched_writer(&self) -> Option<crate::BatchedWriter> {
        None
    }
}

/// Every pruning statement, each with its one bound, in the order they run.
fn prune_statements(now: i64, changes_before: i64) -> Vec<(&'static str, i64)> {
    crate::tokens::PRUNE
        .into_iter()
        .map(|sql| (sql, now))
        .chain([crate::changes::prune_statement(changes_before)])
        .chain(crate::mail::prune_statements(now))
        .chain([crate::successors::prune_statement(now)])
        .chain([(crate::clients::PRUNE, now)])
        .chain([(crate::mfa::PRUNE, now)])
        .chain([(crate::passkeys::PRUNE, now)])
        .collect()
}

for_each_engine! {
    /// Runs `statements` on `conn`; how many rows they deleted.
    async fn delete_all(
        conn: &mut <Db as sqlx::Database>::Connection,
        statements: &[(&'static str, i64)],
    ) -> StoreResult<u64> {
        let mut deleted = 0;
        for &(sql, bound) in statements {
            deleted += sqlx::query(sql)
                .bind(bound)
                .execute(&mut *conn)
                .await?
                .rows_affected();
        }
        Ok(deleted)
    }

    #[async_trait]
    impl Maintenance for Engine {
        async fn migrate(&self) -> StoreResult<()> {
            self.run_migrations().await
        }

        async fn ping(&self) -> StoreResult<()> {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        }

        async fn prune(&self, now: i64, changes_before: i64) -> StoreResult<u64> {
            let statements = prune_statements(now, changes_before);
            if !Db::PRUNE_IN_ONE_TRANSACTION {
                let mut conn = self.pool.acquire().await?;
                return delete_all(&mut conn, &statements).await;
            }
            let mut tx = self.pool.begin().await?;
            let deleted = delete_all(&mut tx, &statements).await?;
            tx.commit().await?;
            Ok(deleted)
        }

        fn batched_writer(&self) -> Option<crate::BatchedWriter> {
            Some(self.writer.task())
        }
    }
}
