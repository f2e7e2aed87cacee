//! People away (`/away`): one row per person, read by every stall sweep.

use baton_core::Intent;
use baton_core::away::Away;
use chrono::{DateTime, Utc};

use super::outbox::enqueue;
use super::{Store, StoreError, from_ms, ms, record_key};

impl Store {
    /// Who is away at `now`.
    pub async fn absences(&self, now: DateTime<Utc>) -> Result<Away, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT person, until_ms FROM absences WHERE until_ms > $1")
            .bind(ms(now))
            .fetch_all(&self.pool)
            .await?;
        Ok(Away::new(rows.into_iter().map(|(person, until)| (person, from_ms(until)))))
    }

    /// Until when `person` is away at `now`, and why, if they are.
    pub async fn absence(
        &self,
        person: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT until_ms, reason FROM absences WHERE person = $1 AND until_ms > $2")
                .bind(person)
                .bind(ms(now))
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(until, reason)| (from_ms(until), reason)))
    }

    /// Marks `person` away until `until` and queues the notices about it, in one transaction.
    /// A replayed request (`key` already recorded) changes nothing and returns `false`.
    pub async fn set_absence(
        &self,
        key: Option<&str>,
        person: &str,
        until: DateTime<Utc>,
        reason: &str,
        notices: &[Intent],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        if let Some(key) = key
            && !record_key(&mut tx, key, None, now).await?
        {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO absences (person, until_ms, reason, set_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (person) DO UPDATE SET until_ms = excluded.until_ms, reason = excluded.reason, set_at_ms = excluded.set_at_ms",
        )
        .bind(person)
        .bind(ms(until))
        .bind(reason)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        for notice in notices {
            enqueue(&mut tx, notice, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Ends `person`'s absence; `false` when they were not away.
    pub async fn clear_absence(&self, person: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let ended = sqlx::query("DELETE FROM absences WHERE person = $1 AND until_ms > $2")
            .bind(person)
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        Ok(ended.rows_affected() > 0)
    }
}
