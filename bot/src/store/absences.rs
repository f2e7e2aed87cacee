//! People away (`/away`): one row per person (with the cover a lead named), read by every stall
//! sweep and by every command on a handoff (a cover may act as the lead).

use baton_core::away::Away;
use baton_core::{Intent, OperatingModel};
use chrono::{DateTime, Utc};

use super::outbox::enqueue;
use super::{Store, StoreError, from_ms, ms, record_key};

/// One person's absence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Absence {
    /// When it ends (exclusive).
    pub until: DateTime<Utc>,
    /// Why (may be empty).
    pub reason: String,
    /// Who stands in as lead meanwhile.
    pub cover: Option<String>,
}

impl Store {
    /// Who is away at `now`, and who covers for them: a cover no longer in `model` (they left)
    /// stands in for nobody, so that what the lead would get goes to the lead again.
    pub async fn absences(&self, model: &OperatingModel, now: DateTime<Utc>) -> Result<Away, StoreError> {
        let rows: Vec<(String, i64, Option<String>)> =
            sqlx::query_as("SELECT person, until_ms, cover FROM absences WHERE until_ms > $1")
                .bind(ms(now))
                .fetch_all(&self.pool)
                .await?;
        let away = Away::new(rows.iter().map(|(person, until, _)| (person.clone(), from_ms(*until))));
        Ok(rows.iter().fold(away, |away, (person, _, cover)| match cover {
            Some(cover) if model.person(cover).is_some() => away.with_cover(person, cover),
            _ => away,
        }))
    }

    /// Until when `person` is away at `now`, why, and who covers, if they are away.
    pub async fn absence(&self, person: &str, now: DateTime<Utc>) -> Result<Option<Absence>, StoreError> {
        let row: Option<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT until_ms, reason, cover FROM absences WHERE person = $1 AND until_ms > $2")
                .bind(person)
                .bind(ms(now))
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(until, reason, cover)| Absence { until: from_ms(until), reason, cover }))
    }

    /// Marks `person` away as `absence` says and queues the notices about it, in one transaction.
    /// A replayed request (`key` already recorded) changes nothing and returns `false`.
    pub async fn set_absence(
        &self,
        key: Option<&str>,
        person: &str,
        absence: &Absence,
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
            "INSERT INTO absences (person, until_ms, reason, cover, set_at_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (person) DO UPDATE SET until_ms = excluded.until_ms, reason = excluded.reason, \
             cover = excluded.cover, set_at_ms = excluded.set_at_ms",
        )
        .bind(person)
        .bind(ms(absence.until))
        .bind(&absence.reason)
        .bind(absence.cover.as_deref())
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        for notice in notices {
            enqueue(&mut tx, notice, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Ends `person`'s absence and queues `told(cover)` for the cover they had named, in one
    /// transaction; `false` when they were not away.
    pub async fn clear_absence(
        &self,
        person: &str,
        now: DateTime<Utc>,
        told: impl FnOnce(&str) -> Intent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let ended: Option<(Option<String>,)> =
            sqlx::query_as("DELETE FROM absences WHERE person = $1 AND until_ms > $2 RETURNING cover")
                .bind(person)
                .bind(ms(now))
                .fetch_optional(&mut *tx)
                .await?;
        let Some((cover,)) = ended else { return Ok(false) };
        if let Some(cover) = cover {
            enqueue(&mut tx, &told(&cover), now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
