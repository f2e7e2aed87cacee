//! Linked platform accounts and the one-time codes that prove them.

use baton_core::Intent;
use chrono::{DateTime, Utc};

use super::{Store, StoreError, ms, outbox};

/// Wrong codes tolerated per account before its pending codes are withdrawn.
const MAX_CODE_ATTEMPTS: i64 = 5;

/// A request to link a platform account to a person.
#[derive(Clone, Copy, Debug)]
pub struct LinkRequest<'a> {
    /// `discord`.
    pub platform: &'a str,
    /// The platform's user id.
    pub user: &'a str,
    /// The configured person.
    pub person: &'a str,
    /// The one-time code sent to the person.
    pub code: &'a str,
}

/// How finishing a link went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Linked to this person.
    Linked(String),
    /// The code is wrong or expired (and how many tries remain).
    Refused(String),
}

impl Store {
    /// The person a platform account is linked to.
    pub async fn linked_person(&self, platform: &str, user: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT person FROM identity_links WHERE platform = $1 AND platform_user = $2")
            .bind(platform)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The platform accounts linked to a person.
    pub async fn linked_accounts(&self, platform: &str, person: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT platform_user FROM identity_links WHERE platform = $1 AND person = $2")
            .bind(platform)
            .bind(person)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Records a one-time code for linking an account to a person and queues the message that
    /// sends it to the person (on the platform they already use), in one transaction.
    pub async fn start_link(
        &self,
        link: LinkRequest<'_>,
        expires: DateTime<Utc>,
        message: &Intent,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let LinkRequest { platform, user, person, code } = link;
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM link_codes WHERE platform = $1 AND platform_user = $2 AND expires_at_ms < $3")
            .bind(platform)
            .bind(user)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO link_codes (code, platform, platform_user, person, expires_at_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(code)
        .bind(platform)
        .bind(user)
        .bind(person)
        .bind(ms(expires))
        .execute(&mut *tx)
        .await?;
        outbox::enqueue(&mut tx, message, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Completes a link with the code the person received. A wrong code counts against the
    /// account; after a few, its pending codes are withdrawn.
    pub async fn finish_link(
        &self,
        platform: &str,
        user: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<LinkOutcome, StoreError> {
        let mut tx = self.write().await?;
        let person: Option<String> = sqlx::query_scalar(
            "SELECT person FROM link_codes WHERE code = $1 AND platform = $2 AND platform_user = $3 AND expires_at_ms >= $4",
        )
        .bind(code)
        .bind(platform)
        .bind(user)
        .bind(ms(now))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(person) = person else {
            sqlx::query("UPDATE link_codes SET attempts = attempts + 1 WHERE platform = $1 AND platform_user = $2")
                .bind(platform)
                .bind(user)
                .execute(&mut *tx)
                .await?;
            let deleted =
                sqlx::query("DELETE FROM link_codes WHERE platform = $1 AND platform_user = $2 AND attempts >= $3")
                    .bind(platform)
                    .bind(user)
                    .bind(MAX_CODE_ATTEMPTS)
                    .execute(&mut *tx)
                    .await?;
            tx.commit().await?;
            let why = if deleted.rows_affected() > 0 {
                "That code is wrong, and too many were tried: start again with `/baton link person:<your id>`."
            } else {
                "That code is wrong or has expired (codes last 10 minutes). Check the Slack message from Baton."
            };
            return Ok(LinkOutcome::Refused(why.into()));
        };
        sqlx::query(
            "INSERT INTO identity_links (platform, platform_user, person, linked_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (platform, platform_user) DO UPDATE SET person = excluded.person, linked_at_ms = excluded.linked_at_ms",
        )
        .bind(platform)
        .bind(user)
        .bind(&person)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM link_codes WHERE platform = $1 AND platform_user = $2")
            .bind(platform)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(LinkOutcome::Linked(person))
    }

    /// Remembers another platform message for a handoff and recipient key (a Discord thread).
    pub async fn set_ref(
        &self,
        handoff: u64,
        key: &str,
        platform_ref: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO message_refs (handoff_id, recipient, platform_ref, updated_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (handoff_id, recipient) DO UPDATE SET platform_ref = excluded.platform_ref, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(handoff as i64)
        .bind(key)
        .bind(platform_ref)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A platform message remembered under a recipient key.
    pub async fn get_ref(&self, handoff: u64, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT platform_ref FROM message_refs WHERE handoff_id = $1 AND recipient = $2")
            .bind(handoff as i64)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The handoff whose reference under a key starting `prefix` is `platform_ref` (which
    /// handoff's thread a reply is in), if any.
    pub async fn handoff_by_ref(&self, prefix: &str, platform_ref: &str) -> Result<Option<u64>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT handoff_id FROM message_refs WHERE platform_ref = $1 AND recipient LIKE $2 ORDER BY handoff_id LIMIT 1",
        )
        .bind(platform_ref)
        .bind(format!("{prefix}%"))
        .fetch_optional(&self.pool)
        .await?;
        Ok(id.map(|id| id as u64))
    }
}
