//! The outbox: messages committed in the same transaction as the decision that caused them, then
//! claimed and delivered by workers, at least once, across any number of replicas.
//!
//! A claim is a lease: the row's `next_attempt_ms` moves to the end of the lease and
//! `claimed_at_ms` is set. A worker that dies mid-send leaves the row to reappear when the lease
//! ends, still marked as claimed, so the next worker knows the first attempt's outcome is unknown
//! and can look for the message on the platform before posting again.

use baton_core::{HandoffId, Intent, IntentKind, Recipient};
use chrono::{DateTime, Duration, Utc};
use sqlx::Row;

use super::write::{self, AnyQuery};
use super::{Backend, Store, StoreError, from_ms, ms, params};

/// A compact recipient key (`person:ana`, `slack:#ops`), for per-recipient grouping and refs.
pub fn recipient_key(r: &Recipient) -> String {
    match r {
        Recipient::Person(p) => format!("person:{p}"),
        Recipient::SlackChannel(c) => format!("slack:{c}"),
        Recipient::DiscordChannel(c) => format!("discord:{c}"),
        Recipient::Client(c) => format!("client:{c}"),
    }
}

/// What a delivered platform message is kept for, besides the delivery itself.
#[derive(Clone, Copy, Debug)]
pub enum Kept<'a> {
    /// The handoff's card for the recipient: later cards edit it in place.
    Card(HandoffId, &'a Recipient),
    /// A message that asks for something about the handoff, sent alone (not folded into a
    /// digest), with its text: edited when it is answered.
    Ask(Ask<'a>),
    /// The answer to the recipient's asks about the handoff: the messages `edited` (all it found,
    /// those that could no longer be edited included) are forgotten.
    Answered(HandoffId, &'a Recipient, &'a [String]),
}

/// A message that asks for something about its handoff (see [`Kept::Ask`]).
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    /// What it asks about: [`Asked::Act`] or [`Asked::Recalibration`]'s record.
    pub about: Asked,
    /// The message as sent.
    pub intent: &'a Intent,
}

/// What an ask is about, which decides what answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// A request to act on the handoff as it stands: a stall episode's escalation, a heads-up
    /// before a target, a notice with buttons (a return's *Resubmit*). Answered when the stall
    /// ends or the handoff moves on.
    Act,
    /// A recalibration thread's request for its record: answered when it is recorded or its
    /// handoff closes.
    Recalibration,
}

impl Asked {
    fn name(self) -> &'static str {
        match self {
            Asked::Act => "act",
            Asked::Recalibration => "recalibration",
        }
    }
}

/// An ask as kept: the platform message and what it said.
#[derive(Clone, Debug, PartialEq)]
pub struct AskRef {
    /// The platform message.
    pub platform_ref: String,
    /// The message as sent.
    pub intent: Intent,
}

/// Database figures for `/metrics`.
#[derive(Clone, Debug)]
pub struct MetricsSnapshot {
    /// Handoffs per state.
    pub by_state: Vec<(String, i64)>,
    /// Open stalls per seam.
    pub stalls_by_seam: Vec<(String, i64)>,
    /// Messages waiting to be delivered.
    pub outbox_depth: i64,
    /// When the oldest waiting message was queued (one held for its recipient's working hours
    /// included).
    pub oldest_pending: Option<DateTime<Utc>>,
    /// Since when the most overdue message has been due and not sent: `None` when every waiting
    /// message waits for a later instant (working hours, a retry, a platform's rate limit).
    pub overdue_since: Option<DateTime<Utc>>,
    /// Messages given up on.
    pub dead: i64,
}

/// An outgoing message taken for delivery.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// Row id (also the idempotency nonce sent to platforms that accept one).
    pub id: i64,
    /// The message.
    pub intent: Intent,
    /// Failed attempts so far.
    pub attempts: i64,
    /// A previous worker claimed it and vanished: it may already have been posted.
    pub in_doubt: bool,
    /// The platform message holding this handoff's card for this recipient, when one was posted
    /// (read with the claim: the earlier card's delivery, which records it, is done by then).
    pub card_ref: Option<String>,
}

/// A message given up on, for operators (`baton outbox dead`).
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// Row id.
    pub id: i64,
    /// The message.
    pub intent: Intent,
    /// Attempts made.
    pub attempts: i64,
    /// Why it was given up on.
    pub error: String,
    /// When.
    pub dead_at: DateTime<Utc>,
}

/// A queued message as stored (JSON).
fn decode_intent(body: &str) -> Result<Intent, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))
}

fn decode_dead(r: &sqlx::any::AnyRow) -> Result<DeadLetter, StoreError> {
    let body: String = r.try_get("intent")?;
    Ok(DeadLetter {
        id: r.try_get("id")?,
        intent: decode_intent(&body)?,
        attempts: r.try_get("attempts")?,
        error: r.try_get::<Option<String>, _>("last_error")?.unwrap_or_default(),
        dead_at: from_ms(r.try_get("dead_at_ms")?),
    })
}

/// A value that would not serialize, as the database error it becomes.
pub(crate) fn encode(e: serde_json::Error) -> sqlx::Error {
    sqlx::Error::Encode(Box::new(e))
}

/// Adds a message to the outbox inside `tx`; it is due at `now`, or when the recipient's quiet
/// hours end.
pub(crate) async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    intent: &Intent,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    insert(&rows(&[(intent, now)])?).run(tx).await
}

/// An outbox row: handoff, created, recipient key, intent, due.
pub(crate) type OutboxRow = (Option<i64>, i64, String, String, i64);

/// The outbox rows of messages queued each at its `now`; a message's id will follow its place.
/// The row's handoff is its place in line (see [`Store::claim_outbox`]): a follow-up's reminder,
/// held for days, has none, so that it holds nothing back (its message still names its handoff).
pub(crate) fn rows(messages: &[(&Intent, DateTime<Utc>)]) -> Result<Vec<OutboxRow>, sqlx::Error> {
    messages
        .iter()
        .map(|(intent, now)| {
            let due = intent.not_before.unwrap_or(*now).max(*now);
            let body = serde_json::to_string(intent).map_err(encode)?;
            let line = intent.handoff.filter(|_| intent.kind != IntentKind::FollowUp);
            Ok((line.map(|h| h as i64), ms(*now), recipient_key(&intent.to), body, ms(due)))
        })
        .collect()
}

/// The insert of `rows`, for [`write::insert`].
pub(crate) fn insert(rows: &[OutboxRow]) -> write::Rows<'_> {
    write::Rows::new(
        "INSERT INTO outbox (handoff_id, created_at_ms, recipient, intent, next_attempt_ms) VALUES {rows}",
        5,
        rows,
        |q, (handoff, created, to, body, due)| {
            q.bind(*handoff).bind(*created).bind(to.as_str()).bind(body.as_str()).bind(*due)
        },
    )
}

fn decode_claimed(r: &sqlx::any::AnyRow) -> Result<Claimed, StoreError> {
    let body: String = r.try_get("intent")?;
    Ok(Claimed {
        id: r.try_get("id")?,
        intent: decode_intent(&body)?,
        attempts: r.try_get("attempts")?,
        in_doubt: r.try_get::<Option<i64>, _>("claimed_at_ms")?.is_some(),
        card_ref: r.try_get("card_ref")?,
    })
}

/// Binds `ids` in order, after the statement's other parameters (its `IN (…)` list is
/// [`params`]). The ids are parameters rather than literals so that each statement's text depends
/// only on how many there are: the connections' prepared-statement caches then serve every
/// delivery instead of preparing (and caching) a new statement for each one.
fn bind_ids<'q>(q: AnyQuery<'q>, ids: &[i64]) -> AnyQuery<'q> {
    ids.iter().fold(q, |q, id| q.bind(*id))
}

impl Store {
    /// Claims up to `limit` messages due at `now` for `lease`, oldest first, each only once the
    /// messages before it to the same recipient about the same handoff are done. On PostgreSQL,
    /// `FOR UPDATE SKIP LOCKED` gives concurrent workers disjoint sets.
    pub async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let (mut tx, lock) = match self.backend {
            Backend::Postgres => (self.write().await?, " FOR UPDATE SKIP LOCKED"),
            Backend::Sqlite => (self.write().await?, ""),
        };
        // A message waits while an earlier one to the same recipient about the same handoff is
        // pending (perhaps in flight on another replica): a card's edit must follow its post.
        // Each claimed row's card reference is looked up by key after the limit: a join let the
        // planner hash every reference ever recorded for each claim.
        let sql = format!(
            "SELECT c.id, c.intent, c.attempts, c.claimed_at_ms, (SELECT platform_ref FROM message_refs AS refs \
             WHERE refs.handoff_id = c.handoff_id AND refs.recipient = c.recipient) AS card_ref FROM \
             (SELECT id, handoff_id, recipient, intent, attempts, claimed_at_ms, next_attempt_ms FROM outbox \
              WHERE delivered_at_ms IS NULL AND dead_at_ms IS NULL AND next_attempt_ms <= $1 \
              AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE earlier.recipient = outbox.recipient \
                  AND earlier.handoff_id = outbox.handoff_id AND earlier.id < outbox.id \
                  AND earlier.delivered_at_ms IS NULL AND earlier.dead_at_ms IS NULL) \
              ORDER BY next_attempt_ms, id LIMIT $2{lock}) AS c ORDER BY c.next_attempt_ms, c.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(now)).bind(limit).fetch_all(&mut *tx).await?;
        let claimed: Vec<Claimed> = rows.iter().map(decode_claimed).collect::<Result<_, _>>()?;
        if !claimed.is_empty() {
            let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
            let sql = format!(
                "UPDATE outbox SET next_attempt_ms = $1, claimed_at_ms = $2 WHERE id IN ({})",
                params(3, ids.len())
            );
            let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(now + lease)).bind(ms(now));
            bind_ids(q, &ids).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Messages due at `now`, without claiming them (the console delivers in-process).
    pub async fn pending_outbox(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Claimed>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, intent, attempts, claimed_at_ms, NULL AS card_ref FROM outbox \
             WHERE delivered_at_ms IS NULL AND dead_at_ms IS NULL AND next_attempt_ms <= $1 ORDER BY next_attempt_ms, id LIMIT $2",
        )
        .bind(ms(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_claimed).collect()
    }

    /// When the next undelivered message falls due (quiet hours, backoff), if any.
    pub async fn earliest_outbox(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_ms) FROM outbox WHERE delivered_at_ms IS NULL AND dead_at_ms IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(v.map(from_ms))
    }

    /// Refreshes PostgreSQL's statistics of the outbox. Its claim query reads pending rows
    /// (`delivered_at_ms IS NULL`) through partial indexes; with statistics from when few rows
    /// were pending (a new database, or the quiet hour before an outage), the planner takes a
    /// backlog for a handful of rows and picks a plan quadratic in it (seconds per claim at a few
    /// thousand rows, minutes at tens of thousands). Autovacuum analyzes a minute or more later;
    /// the delivery worker calls this as soon as it sees a backlog. Statistics also age as the
    /// outbox grows: each pooled connection keeps the plans it made, and plans made while the
    /// outbox was small read all of it for every claim (40 ms at 50,000 rows, against 0.1 ms),
    /// until statistics change; where autovacuum is off or behind, the worker also refreshes them
    /// as the outbox grows. Returns how many rows the outbox holds by the new statistics (0 on
    /// SQLite, which needs nothing).
    pub async fn analyze_outbox(&self) -> Result<i64, StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(0);
        }
        sqlx::query("ANALYZE outbox").execute(&self.pool).await?;
        // `reltuples` is a float (-1 before any analysis).
        let rows: f64 = sqlx::query_scalar("SELECT reltuples::float8 FROM pg_class WHERE oid = 'outbox'::regclass")
            .fetch_one(&self.pool)
            .await?;
        Ok(rows.max(0.0) as i64)
    }

    /// Records that the messages `ids` were delivered as one platform message `platform_ref`
    /// (several when folded into a digest), and what the platform message is kept for
    /// ([`Kept`]). A card's record is one statement on PostgreSQL (a round trip instead of
    /// four), one transaction on SQLite; an escalation's or an answer's, one transaction.
    ///
    /// On PostgreSQL the record does not wait for the disk: a database crash may lose the last
    /// fraction of a second of records, and each message so lost stays claimed and undelivered,
    /// comes back in doubt when its lease ends, and is found on the platform instead of being
    /// posted again. Any later commit that waits for the disk makes the earlier ones durable too
    /// (the log is written in order).
    pub async fn mark_delivered(
        &self,
        ids: &[i64],
        at: DateTime<Utc>,
        platform_ref: Option<&str>,
        kept: Option<Kept<'_>>,
    ) -> Result<(), StoreError> {
        const REMEMBER: &str = "INSERT INTO message_refs (handoff_id, recipient, platform_ref, updated_at_ms) \
            VALUES ($1, $2, $3, $4) ON CONFLICT (handoff_id, recipient) \
            DO UPDATE SET platform_ref = excluded.platform_ref, updated_at_ms = excluded.updated_at_ms";
        // `relax` turns off `synchronous_commit` for the statement's own transaction only (a
        // session setting could be carried by a transaction pooler to other work, creations
        // included); the update refers to it so that it runs.
        const RELAX: &str = "relax AS (SELECT set_config('synchronous_commit', 'off', true) AS mode)";
        let pg = self.backend == Backend::Postgres;
        let delivered = |first: usize| {
            format!(
                "UPDATE outbox SET delivered_at_ms = ${first}, platform_ref = ${}, claimed_at_ms = NULL WHERE id IN ({}){}",
                first + 1,
                params(first + 2, ids.len()),
                if pg { " AND (SELECT mode FROM relax) = 'off'" } else { "" }
            )
        };
        let relaxed = |sql: String| if pg { format!("WITH {RELAX} {sql}") } else { sql };
        match (kept, platform_ref) {
            (Some(Kept::Card(handoff, to)), Some(platform_ref)) => {
                let (handoff, to) = (handoff as i64, recipient_key(to));
                match self.backend {
                    Backend::Postgres => {
                        let sql = format!("WITH {RELAX}, delivered AS ({}) {REMEMBER}", delivered(5));
                        let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(handoff).bind(to).bind(platform_ref);
                        let q = q.bind(ms(at)).bind(ms(at)).bind(platform_ref);
                        bind_ids(q, ids).execute(&self.pool).await?;
                    }
                    Backend::Sqlite => {
                        let mut tx = self.write().await?;
                        let q = sqlx::query(sqlx::AssertSqlSafe(delivered(1))).bind(ms(at)).bind(platform_ref);
                        bind_ids(q, ids).execute(&mut *tx).await?;
                        sqlx::query(REMEMBER)
                            .bind(handoff)
                            .bind(to)
                            .bind(platform_ref)
                            .bind(ms(at))
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                    }
                }
            }
            (Some(Kept::Ask(ask)), Some(platform_ref)) if let Some(handoff) = ask.intent.handoff => {
                let body = serde_json::to_string(ask.intent).map_err(encode)?;
                let mut tx = self.write().await?;
                let q = sqlx::query(sqlx::AssertSqlSafe(relaxed(delivered(1)))).bind(ms(at)).bind(platform_ref);
                bind_ids(q, ids).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO ask_refs (handoff_id, recipient, platform_ref, about, intent, delivered_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(handoff as i64)
                .bind(recipient_key(&ask.intent.to))
                .bind(platform_ref)
                .bind(ask.about.name())
                .bind(body)
                .bind(ms(at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
            (Some(Kept::Answered(handoff, to, edited)), _) => {
                let mut tx = self.write().await?;
                let q = sqlx::query(sqlx::AssertSqlSafe(relaxed(delivered(1)))).bind(ms(at)).bind(platform_ref);
                bind_ids(q, ids).execute(&mut *tx).await?;
                if !edited.is_empty() {
                    let sql = format!(
                        "DELETE FROM ask_refs WHERE handoff_id = $1 AND recipient = $2 AND platform_ref IN ({})",
                        params(3, edited.len())
                    );
                    let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(handoff as i64).bind(recipient_key(to));
                    edited.iter().fold(q, |q, r| q.bind(r.as_str())).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            _ => {
                let q = sqlx::query(sqlx::AssertSqlSafe(relaxed(delivered(1)))).bind(ms(at)).bind(platform_ref);
                bind_ids(q, ids).execute(&self.pool).await?;
            }
        }
        Ok(())
    }

    /// Which of `messages` (outbox id and message) are followed by a later one of kind `kind` to
    /// the same recipient about the same handoff, dead letters aside; `pending`: one not yet
    /// delivered. One query however many.
    pub async fn followed_by(
        &self,
        messages: &[(i64, &Intent)],
        kind: &IntentKind,
        pending: bool,
    ) -> Result<Vec<i64>, StoreError> {
        let mut handoffs: Vec<i64> = messages.iter().filter_map(|(_, i)| i.handoff).map(|h| h as i64).collect();
        handoffs.sort_unstable();
        handoffs.dedup();
        if handoffs.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, intent FROM outbox WHERE dead_at_ms IS NULL{} AND handoff_id IN ({})",
            if pending { " AND delivered_at_ms IS NULL" } else { "" },
            params(1, handoffs.len())
        );
        let q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        let rows: Vec<(i64, String)> = handoffs.iter().fold(q, |q, h| q.bind(*h)).fetch_all(&self.pool).await?;
        let later: Vec<(i64, Intent)> = rows
            .into_iter()
            .filter_map(|(id, body)| Some((id, decode_intent(&body).ok()?)))
            .filter(|(_, i)| i.kind == *kind)
            .collect();
        let followed =
            |(id, m): &&(i64, &Intent)| later.iter().any(|(l, i)| l > id && i.handoff == m.handoff && i.to == m.to);
        Ok(messages.iter().filter(followed).map(|(id, _)| *id).collect())
    }

    /// The messages that asked `to` about `handoff` what `about` says and were not answered yet,
    /// oldest first.
    pub async fn asks(&self, handoff: HandoffId, to: &Recipient, about: Asked) -> Result<Vec<AskRef>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT platform_ref, intent FROM ask_refs WHERE handoff_id = $1 AND recipient = $2 AND about = $3 \
             ORDER BY delivered_at_ms, platform_ref",
        )
        .bind(handoff as i64)
        .bind(recipient_key(to))
        .bind(about.name())
        .fetch_all(&self.pool)
        .await?;
        let decode = |(platform_ref, body): (String, String)| {
            let intent = decode_intent(&body)?;
            Ok(AskRef { platform_ref, intent })
        };
        rows.into_iter().map(decode).collect()
    }

    /// Puts messages back for a later attempt at `retry_at`. `failed` counts an attempt (a
    /// platform or network error); a hold for a known rate limit does not.
    pub async fn mark_retry(
        &self,
        ids: &[i64],
        error: &str,
        retry_at: DateTime<Utc>,
        failed: bool,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE outbox SET attempts = attempts + $1, last_error = $2, next_attempt_ms = $3, claimed_at_ms = NULL \
             WHERE id IN ({})",
            params(4, ids.len())
        );
        let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64::from(failed)).bind(error).bind(ms(retry_at));
        bind_ids(q, ids).execute(&self.pool).await?;
        Ok(())
    }

    /// Puts untried messages back, each for its own instant (`(id, at)`), saying why they wait;
    /// no attempt is counted. One statement however many.
    pub async fn put_back(&self, schedule: &[(i64, DateTime<Utc>)], reason: &str) -> Result<(), StoreError> {
        if schedule.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE outbox SET last_error = $1, next_attempt_ms = v.column2, claimed_at_ms = NULL \
             FROM (VALUES {}) AS v WHERE outbox.id = v.column1",
            write::placeholders_from(2, schedule.len(), 2)
        );
        let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(reason);
        let q = schedule.iter().fold(q, |q, (id, at)| q.bind(*id).bind(ms(*at)));
        q.execute(&self.pool).await?;
        Ok(())
    }

    /// Gives up on messages: they are dead-lettered with the reason, and `notice` (telling the
    /// seam's lead) is queued in the same transaction.
    pub async fn mark_dead(
        &self,
        ids: &[i64],
        error: &str,
        at: DateTime<Utc>,
        notice: Option<&Intent>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let sql = format!(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, dead_at_ms = $2, claimed_at_ms = NULL WHERE id IN ({})",
            params(3, ids.len())
        );
        let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(error).bind(ms(at));
        bind_ids(q, ids).execute(&mut *tx).await?;
        if let Some(notice) = notice {
            enqueue(&mut tx, notice, at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The platform message holding a handoff's card for a recipient, if one was posted.
    pub async fn message_ref(&self, handoff: HandoffId, to: &Recipient) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT platform_ref FROM message_refs WHERE handoff_id = $1 AND recipient = $2")
            .bind(handoff as i64)
            .bind(recipient_key(to))
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Dead-lettered messages, newest first, at most `limit`.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, intent, attempts, last_error, dead_at_ms FROM outbox WHERE dead_at_ms IS NOT NULL \
             ORDER BY dead_at_ms DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_dead).collect()
    }

    /// The dead letters among `ids`, oldest first.
    pub async fn dead_letters_among(&self, ids: &[i64]) -> Result<Vec<DeadLetter>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, intent, attempts, last_error, dead_at_ms FROM outbox WHERE dead_at_ms IS NOT NULL \
             AND id IN ({}) ORDER BY id",
            params(1, ids.len())
        );
        let rows = bind_ids(sqlx::query(sqlx::AssertSqlSafe(sql)), ids).fetch_all(&self.pool).await?;
        rows.iter().map(decode_dead).collect()
    }

    /// Returns dead letters `ids` to the queue, due at `now`, with their attempts counted afresh;
    /// each is first looked for on the platform, as after a crash, in case an attempt that timed
    /// out had posted it. Returns the ids it returned (those still dead-lettered).
    pub async fn requeue(&self, ids: &[i64], now: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "UPDATE outbox SET dead_at_ms = NULL, attempts = 0, next_attempt_ms = $1, claimed_at_ms = $1, \
             last_error = 'returned to the queue by an operator; dead-lettered for: ' || COALESCE(last_error, '') \
             WHERE dead_at_ms IS NOT NULL AND id IN ({}) RETURNING id",
            params(2, ids.len())
        );
        let q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(ms(now));
        let mut done: Vec<i64> = ids.iter().fold(q, |q, id| q.bind(*id)).fetch_all(&self.pool).await?;
        done.sort_unstable();
        Ok(done)
    }

    /// The platform's id for a recipient's conversation, learnt from an earlier delivery to it
    /// (references are `conversation:message`), so a channel configured by name can be searched.
    pub async fn known_conversation(&self, to: &Recipient) -> Result<Option<String>, StoreError> {
        let r: Option<String> = sqlx::query_scalar(
            "SELECT platform_ref FROM outbox WHERE recipient = $1 AND platform_ref IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(recipient_key(to))
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.and_then(|r| r.split_once(':').map(|(c, _)| c.to_string())))
    }

    /// The figures `/metrics` reports from the database.
    pub async fn metrics_snapshot(&self, now: DateTime<Utc>) -> Result<MetricsSnapshot, StoreError> {
        let by_state: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM handoffs GROUP BY state").fetch_all(&self.pool).await?;
        let stalls_by_seam: Vec<(String, i64)> =
            sqlx::query_as("SELECT seam, COUNT(*) FROM handoffs WHERE stall_kind IS NOT NULL GROUP BY seam")
                .fetch_all(&self.pool)
                .await?;
        let (outbox_depth, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at_ms) FROM outbox WHERE delivered_at_ms IS NULL AND dead_at_ms IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        let overdue: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_ms) FROM outbox \
             WHERE delivered_at_ms IS NULL AND dead_at_ms IS NULL AND next_attempt_ms <= $1",
        )
        .bind(now.timestamp_millis())
        .fetch_one(&self.pool)
        .await?;
        let dead: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE dead_at_ms IS NOT NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(MetricsSnapshot {
            by_state,
            stalls_by_seam,
            outbox_depth,
            oldest_pending: oldest.map(from_ms),
            overdue_since: overdue.map(from_ms),
            dead,
        })
    }

    /// Number of undelivered, not dead-lettered messages.
    pub async fn outbox_depth(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE delivered_at_ms IS NULL AND dead_at_ms IS NULL")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Records a periodic job's run for its scheduled instant and queues its messages, in one
    /// transaction. Returns `false` (and queues nothing) when that run already happened, on this
    /// replica or another.
    pub async fn record_job_run(
        &self,
        job: &str,
        scheduled: DateTime<Utc>,
        now: DateTime<Utc>,
        intents: &[Intent],
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let inserted = sqlx::query(
            "INSERT INTO job_runs (job, scheduled_at_ms, ran_at_ms) VALUES ($1, $2, $3) ON CONFLICT (job, scheduled_at_ms) DO NOTHING",
        )
        .bind(job)
        .bind(ms(scheduled))
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(false);
        }
        for intent in intents {
            enqueue(&mut tx, intent, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Queues a reply once per request `key` (a platform event id): `false` when the key was
    /// already used, and nothing is queued.
    pub async fn enqueue_once(&self, key: &str, intent: &Intent, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        if !super::record_key(&mut tx, key, intent.handoff, now).await? {
            return Ok(false);
        }
        enqueue(&mut tx, intent, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The latest scheduled instant a job ran for, if it ever ran.
    pub async fn last_job_run(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(scheduled_at_ms) FROM job_runs WHERE job = $1")
            .bind(job)
            .fetch_one(&self.pool)
            .await?;
        Ok(v.map(from_ms))
    }
}
