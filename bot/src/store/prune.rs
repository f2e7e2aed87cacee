//! Forgetting what is kept only for a while (`[retention]` in the operating model): messages
//! delivered long ago, request keys no retry will bring back, job runs superseded by later ones.
//! Handoffs, their events, stall history and dead letters are kept.
//!
//! Each table is pruned in batches of [`BATCH`] rows, one short transaction each, so that pruning
//! a backlog holds no lock for long; pruning is idempotent, so replicas may prune together.

use baton_core::model::Retention;
use chrono::{DateTime, Utc};

use super::{Store, StoreError, ms};

/// Rows deleted per statement.
const BATCH: i64 = 5_000;

/// How many rows one pruning deleted, by what they were.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Messages delivered before the retention window.
    pub messages: u64,
    /// Request keys older than theirs.
    pub request_keys: u64,
    /// Periodic jobs' runs older than the messages', but each job's latest.
    pub job_runs: u64,
}

impl Pruned {
    /// Whether nothing was deleted.
    pub fn is_empty(&self) -> bool {
        *self == Pruned::default()
    }
}

impl Store {
    /// Deletes what `retention` no longer keeps at `now`.
    pub async fn prune(&self, retention: &Retention, now: DateTime<Utc>) -> Result<Pruned, StoreError> {
        let messages_before = ms(now - retention.messages);
        // Outbox ids grow with time: the first message made within the window bounds the ids to
        // look at, through the primary key (the rows before it are the ones to delete, and the
        // pending or dead ones among them, which stay).
        let first_kept: Option<i64> =
            sqlx::query_scalar("SELECT id FROM outbox WHERE created_at_ms >= $1 ORDER BY id LIMIT 1")
                .bind(messages_before)
                .fetch_optional(&self.pool)
                .await?;
        let messages = self
            .delete_in_batches(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE id < $2 AND delivered_at_ms < $3 \
                 ORDER BY id LIMIT $1)",
                &[first_kept.unwrap_or(i64::MAX), messages_before],
            )
            .await?;
        let request_keys = self
            .delete_in_batches(
                "DELETE FROM processed_requests WHERE key IN (SELECT key FROM processed_requests WHERE at_ms < $2 LIMIT $1)",
                &[ms(now - retention.request_keys)],
            )
            .await?;
        let job_runs = sqlx::query(
            "DELETE FROM job_runs WHERE ran_at_ms < $1 \
             AND scheduled_at_ms < (SELECT MAX(latest.scheduled_at_ms) FROM job_runs latest WHERE latest.job = job_runs.job)",
        )
        .bind(messages_before)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(Pruned { messages, request_keys, job_runs })
    }

    /// Runs `sql` (a delete of at most `$1` rows, `$2`… bound to `binds`) until it deletes fewer.
    async fn delete_in_batches(&self, sql: &'static str, binds: &[i64]) -> Result<u64, StoreError> {
        let mut deleted = 0;
        loop {
            let q = binds.iter().fold(sqlx::query(sql).bind(BATCH), |q, b| q.bind(*b));
            let n = q.execute(&self.pool).await?.rows_affected();
            deleted += n;
            if n < BATCH as u64 {
                return Ok(deleted);
            }
        }
    }
}
