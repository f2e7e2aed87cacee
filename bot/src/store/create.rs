//! Creating handoffs, with group commit.
//!
//! A creation is a transaction of a handful of statements (its request key, its number, the
//! handoff, its events, its card), each a round trip. When creations arrive together, the ones
//! that queue while a transaction is in flight are saved together by the next one, with one
//! multi-row statement per table: a burst costs a few transactions instead of one per creation,
//! and the database does a fraction of the work. A lone creation waits for nothing.
//!
//! Committing tasks take batches from the queue until it is empty: a creation that finds fewer
//! than the most allowed at work (two on PostgreSQL, one on SQLite) starts one. Callers wait
//! for their own outcome; a caller that goes away (its client hung up) abandons nobody, itself
//! included: its creation is saved or not like the others in its batch.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use baton_core::{Decision, HandoffId};
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::history::Tallies;
use super::write::{Claim, LOCKS, ROWS_PER_STATEMENT, Write, holders, lock_keys, placeholders, write_decisions};
use super::{Backend, Store, StoreError, ms};

/// Transactions of creations in flight at once on PostgreSQL. More than one lets commits overlap
/// (PostgreSQL flushes their WAL together) while the next batch gathers; in `baton bench serve`
/// two gave the most creations per second, and more added contention, not throughput. SQLite
/// has one writer at a time, so there it is one.
const POSTGRES_COMMITTERS: usize = 2;

/// Most creations in one transaction: as many as one multi-row statement takes, so that a
/// batch's keys and handoffs each go in one statement.
const MOST_PER_TRANSACTION: usize = ROWS_PER_STATEMENT;

/// Builds the decision for a handoff number; `None` when the core refuses after all. It may be
/// called again, with another number, when its batch is decided again (see `create_batch`).
type Build = Box<dyn Fn(HandoffId) -> Option<Decision> + Send + Sync>;

/// How a creation transaction locks its open keys on PostgreSQL (see `create_batch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lock {
    /// In its first statement, which reads their holders too: no round trip of its own.
    InFirstStatement,
    /// In a statement before the first.
    First,
}

/// What a creation transaction's first step found ([`Store::open_batch`]).
struct Opening {
    /// The request keys recorded, new.
    fresh: HashSet<String>,
    /// The handoff numbers taken, in ascending order.
    numbers: Vec<HandoffId>,
    /// For each request, the open handoff holding its open key, if one does.
    held: Vec<Option<HandoffId>>,
}

/// Records request keys, `{rows}` of (key, handoff id, instant); returns the new ones.
const RECORD: &str = "INSERT INTO processed_requests (key, handoff_id, at_ms) VALUES {rows} \
    ON CONFLICT (key) DO NOTHING RETURNING key";

/// A creation, as asked.
struct Request {
    key: Option<String>,
    /// Whether the key records the handoff it created (for a replay to be told which).
    remember: bool,
    /// The seam and the open key the handoff will hold ([`Decision::open_key`]), if any.
    open_key: Option<(String, String)>,
    now: DateTime<Utc>,
    build: Build,
}

/// A creation waiting for its transaction, and where its outcome goes.
struct Pending {
    request: Request,
    done: oneshot::Sender<Result<Decision, StoreError>>,
}

/// The creations waiting for a transaction, and how many tasks are committing them.
#[derive(Default)]
pub(crate) struct Creations(Mutex<Queue>);

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    /// Tasks committing batches.
    committers: usize,
    stats: CreationStats,
}

/// How creations have been committed since the store opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreationStats {
    /// Creations waiting for a transaction now.
    pub queued: usize,
    /// Transactions of creations begun.
    pub transactions: u64,
    /// Creations taken into those transactions.
    pub creations: u64,
}

impl std::fmt::Debug for Creations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creations").field("pending", &self.lock().pending.len()).finish()
    }
}

impl Creations {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue is consistent whenever the lock is released, even by a panic.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Gives up a committing task's place if it panics, so that the next creation starts another.
struct ReleaseIfPanicking<'a>(&'a Creations);

impl Drop for ReleaseIfPanicking<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().committers -= 1;
        }
    }
}

impl Store {
    /// Creates a handoff: records the request key first (a replay, even a concurrent one, stops
    /// there as `Duplicate` without taking a number), then takes the next handoff number, and
    /// saves the decision `build` makes for it, all in one transaction, which it may share with
    /// other creations (see the module). Returns that decision. With `remember`, the key also
    /// records the handoff's number, which [`Store::created_by`] then tells a replay. A handoff
    /// whose `open_key` (its seam and [`Decision::open_key`]) another open handoff holds, even one
    /// made at the same moment elsewhere, is refused as [`StoreError::Taken`], naming that one,
    /// before it takes a key or a number (but for one made earlier in the same transaction, and on
    /// PostgreSQL one committed by another transaction while this one was taking its numbers:
    /// see `create_batch`).
    pub async fn create(
        &self,
        request_key: Option<&str>,
        remember: bool,
        open_key: Option<(String, String)>,
        now: DateTime<Utc>,
        build: impl Fn(HandoffId) -> Option<Decision> + Send + Sync + 'static,
    ) -> Result<Decision, StoreError> {
        let (done, outcome) = oneshot::channel();
        let request = Request { key: request_key.map(str::to_owned), remember, open_key, now, build: Box::new(build) };
        let pending = Pending { request, done };
        let start = {
            let mut queue = self.creations.lock();
            queue.pending.push(pending);
            let most = match self.backend {
                Backend::Postgres => POSTGRES_COMMITTERS,
                Backend::Sqlite => 1,
            };
            let start = queue.committers < most;
            queue.committers += usize::from(start);
            start
        };
        if start {
            tokio::spawn(self.clone().commit_creations());
        }
        outcome.await.unwrap_or(Err(StoreError::Abandoned))
    }

    /// How creations have been committed (see the module).
    pub fn creation_stats(&self) -> CreationStats {
        let queue = self.creations.lock();
        CreationStats { queued: queue.pending.len(), ..queue.stats }
    }

    /// Commits the queued creations, a batch per transaction, until none are left.
    async fn commit_creations(self) {
        let _release_if_panicking = ReleaseIfPanicking(&self.creations);
        loop {
            let batch: Vec<Pending> = {
                let mut queue = self.creations.lock();
                if queue.pending.is_empty() {
                    queue.committers -= 1;
                    return;
                }
                let n = queue.pending.len().min(MOST_PER_TRANSACTION);
                queue.stats.transactions += 1;
                queue.stats.creations += n as u64;
                queue.pending.drain(..n).collect()
            };
            metrics::counter!("baton_creation_transactions_total").increment(1);
            metrics::counter!("baton_creations_total").increment(batch.len() as u64);
            let (requests, dones): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.request, p.done)).unzip();
            let outcomes = match self.create_batch(&requests, Lock::InFirstStatement).await {
                // Another transaction claimed one of the batch's open keys between reading and
                // locking it: the batch is decided again, its keys locked before they are read
                // (the numbers it took are spent).
                Err(StoreError::Taken(_)) => {
                    tracing::debug!(
                        creations = requests.len(),
                        "an open key was claimed at the same moment; deciding again"
                    );
                    self.create_batch(&requests, Lock::First).await
                }
                outcomes => outcomes,
            };
            match outcomes {
                Ok(outcomes) => {
                    for (done, outcome) in dones.into_iter().zip(outcomes) {
                        // A caller that went away needs no answer.
                        let _ = done.send(outcome);
                    }
                }
                Err(e) => {
                    let e = Arc::new(e);
                    for done in dones {
                        let _ = done.send(Err(StoreError::Batch(e.clone())));
                    }
                }
            }
        }
    }

    /// Saves a batch of creations in one transaction; each gets its own outcome.
    ///
    /// Creations whose open key an open handoff holds are refused first: they take no key and no
    /// number. On PostgreSQL the batch's open keys are locked for the transaction, so that two
    /// transactions claiming one key are decided one after the other. With
    /// [`Lock::InFirstStatement`] (no round trip of its own) the holders are read in the same
    /// statement, from a snapshot that may predate a claim committed while it waited for the lock,
    /// so they are read again in the statement that inserts the handoffs; one found there is
    /// [`StoreError::Taken`] for the whole batch, to be decided again with [`Lock::First`].
    async fn create_batch(
        &self,
        requests: &[Request],
        lock: Lock,
    ) -> Result<Vec<Result<Decision, StoreError>>, StoreError> {
        let mut tx = self.write().await?;
        let postgres = self.backend == Backend::Postgres;
        if postgres && lock == Lock::First {
            lock_keys(&mut tx, &claims(requests)).await?;
        }
        let optimistic = postgres && lock == Lock::InFirstStatement;
        let Opening { mut fresh, numbers, held } = self.open_batch(&mut tx, requests, optimistic).await?;
        // The first request with a fresh key takes it; a copy (also one in this batch) is a replay.
        let takes: Vec<bool> = (requests.iter().zip(&held))
            .map(|(r, h)| h.is_none() && r.key.as_ref().is_none_or(|k| fresh.remove(k)))
            .collect();
        let mut numbers = numbers.into_iter();

        let mut outcomes = Vec::with_capacity(requests.len());
        let mut refused = Vec::new();
        let mut remembered = Vec::new();
        for ((r, take), holder) in requests.iter().zip(takes).zip(held) {
            if let Some(holder) = holder {
                outcomes.push(Err(StoreError::Taken(holder)));
                continue;
            }
            if !take {
                outcomes.push(Err(StoreError::Duplicate));
                continue;
            }
            let id = numbers.next().ok_or(StoreError::Db(sqlx::Error::RowNotFound))?;
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (r.build)(id))) {
                Ok(Some(d)) => {
                    remembered.extend(r.key.as_ref().filter(|_| r.remember).map(|k| (k, id)));
                    outcomes.push(Ok(d));
                }
                refusal => {
                    if refusal.is_err() {
                        tracing::error!(handoff = id, "building a new handoff panicked; it was not created");
                    }
                    refused.extend(&r.key);
                    outcomes.push(Err(StoreError::Conflict));
                }
            }
        }
        // A creation whose open key one made earlier in this transaction claims is refused,
        // naming it (its number is spent).
        let mut claimed: HashMap<(String, String), HandoffId> = HashMap::new();
        for (outcome, r) in outcomes.iter_mut().zip(requests) {
            let Ok(d) = outcome else { continue };
            let Some(open_key) = d.open_key.clone().filter(|_| d.claims_key) else { continue };
            match claimed.entry((d.handoff.seam.clone(), open_key)) {
                Entry::Vacant(v) => {
                    v.insert(d.handoff.id);
                }
                Entry::Occupied(first) => {
                    *outcome = Err(StoreError::Taken(*first.get()));
                    refused.extend(&r.key);
                    remembered.retain(|(k, _)| Some(*k) != r.key.as_ref());
                }
            }
        }
        // A refused creation leaves no trace: its key may be used again.
        for key in &refused {
            sqlx::query("DELETE FROM processed_requests WHERE key = $1").bind(key).execute(&mut *tx).await?;
        }
        for (key, id) in &remembered {
            sqlx::query("UPDATE processed_requests SET handoff_id = $1 WHERE key = $2")
                .bind(*id as i64)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        let made = || outcomes.iter().filter_map(|o| o.as_ref().ok());
        let writes: Vec<Write> = made().map(|d| Write { d, expected: None }).collect();
        let recheck: Vec<Claim> = (made().filter(|d| optimistic && d.claims_key))
            .filter_map(|d| Some((d.handoff.seam.as_str(), d.open_key.as_deref()?, d.handoff.id)))
            .collect();
        let mut tallies = Tallies::default();
        write_decisions(&mut tx, self.backend, &writes, &recheck, &mut tallies).await?;
        tallies.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    /// A creation transaction's first step: for each request, the open handoff holding its open
    /// key, if one does; then, for the others, records their request keys that are new and takes a
    /// handoff number for each of those and each keyless one. On PostgreSQL this is one
    /// statement, which with `lock` also locks the batch's open keys ([`lock_keys`]'s locks, in
    /// its order) before it records a key. On SQLite, which writes one transaction at a time, it
    /// is a few.
    async fn open_batch(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        requests: &[Request],
        lock: bool,
    ) -> Result<Opening, sqlx::Error> {
        if self.backend == Backend::Postgres {
            return open_batch_postgres(tx, requests, lock).await;
        }
        let mut found = holders(tx, self.backend, &claims(requests)).await?.into_iter();
        let held: Vec<Option<HandoffId>> =
            requests.iter().map(|r| r.open_key.as_ref().and_then(|_| found.next().flatten())).collect();
        let asked = || requests.iter().zip(&held).filter(|(_, h)| h.is_none()).map(|(r, _)| r);
        let mut keys: Vec<(&str, i64)> = asked().filter_map(|r| Some((r.key.as_deref()?, ms(r.now)))).collect();
        keys.sort_unstable();
        let mut fresh = HashSet::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let sql = RECORD.replace("{rows}", &placeholders(chunk.len(), 3));
            let q = chunk.iter().fold(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), |q, (key, at)| {
                q.bind(*key).bind(None::<i64>).bind(*at)
            });
            fresh.extend(q.fetch_all(&mut **tx).await?.into_iter().map(|k: String| k));
        }
        let keyless = asked().filter(|r| r.key.is_none()).count();
        let numbers = self.next_numbers(tx, fresh.len() + keyless).await?;
        Ok(Opening { fresh, numbers, held })
    }

    /// Takes `n` handoff numbers, in ascending order.
    async fn next_numbers(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        n: usize,
    ) -> Result<Vec<HandoffId>, sqlx::Error> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let numbers: Vec<i64> = match self.backend {
            Backend::Postgres => {
                sqlx::query_scalar("SELECT nextval('handoff_numbers') AS n FROM generate_series(1, $1) ORDER BY n")
                    .bind(n as i64)
                    .fetch_all(&mut **tx)
                    .await?
            }
            Backend::Sqlite => {
                let last: i64 =
                    sqlx::query_scalar("UPDATE counters SET value = value + $1 WHERE name = 'handoff' RETURNING value")
                        .bind(n as i64)
                        .fetch_one(&mut **tx)
                        .await?;
                (last - n as i64 + 1..=last).collect()
            }
        };
        Ok(numbers.into_iter().map(|n| n as HandoffId).collect())
    }
}

/// The open keys `requests` claim, not yet numbered.
fn claims(requests: &[Request]) -> Vec<Claim<'_>> {
    (requests.iter()).filter_map(|r| r.open_key.as_ref().map(|(seam, key)| (seam.as_str(), key.as_str(), 0))).collect()
}

/// [`Store::open_batch`] on PostgreSQL: one statement. Its main query reads the snapshot the
/// statement began with, so holders found there may miss a claim committed while it waited for a
/// lock (see `create_batch`).
async fn open_batch_postgres(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    requests: &[Request],
    lock: bool,
) -> Result<Opening, sqlx::Error> {
    let claims = requests.iter().any(|r| r.open_key.is_some());
    let mut sql = format!("WITH asked (i, key, at_ms, seam, open_key) AS (VALUES {})", placeholders(requests.len(), 5));
    let mut taking = String::from("SELECT a.* FROM asked a");
    if claims && lock {
        sql += &format!(", locked AS ({})", LOCKS.replace("{claims}", "asked"));
        taking += " CROSS JOIN locked";
    }
    if claims {
        sql += ", held AS (SELECT a.i, h.holder FROM asked a, LATERAL (SELECT min(id) AS holder FROM handoffs \
            WHERE seam = a.seam AND open_key = a.open_key) AS h WHERE h.holder IS NOT NULL)";
        taking += " WHERE a.i NOT IN (SELECT i FROM held)";
    }
    // Keys in sorted order, so that two transactions cannot deadlock on them.
    sql += &format!(
        ", taking AS ({taking}), fresh AS (INSERT INTO processed_requests (key, handoff_id, at_ms) \
         SELECT key, NULL::int8, at_ms FROM taking WHERE key IS NOT NULL ORDER BY key ON CONFLICT (key) DO NOTHING RETURNING key) \
         SELECT key, nextval('handoff_numbers') AS n, NULL::int8 AS i, NULL::int8 AS holder FROM fresh \
         UNION ALL SELECT NULL, nextval('handoff_numbers'), NULL, NULL FROM taking WHERE key IS NULL{} ORDER BY n",
        if claims { " UNION ALL SELECT NULL, NULL, i, holder FROM held" } else { "" }
    );
    let q = requests.iter().enumerate().fold(sqlx::query_as(sqlx::AssertSqlSafe(sql)), |q, (i, r)| {
        let (seam, open_key) = r.open_key.as_ref().map(|(s, k)| (s.as_str(), k.as_str())).unzip();
        q.bind(i as i64).bind(r.key.as_deref()).bind(ms(r.now)).bind(seam).bind(open_key)
    });
    // (key, number) for a request key recorded; (-, number) for a keyless request; (-, -, request,
    // holder) for a held open key.
    type Row = (Option<String>, Option<i64>, Option<i64>, Option<i64>);
    let rows: Vec<Row> = q.fetch_all(&mut **tx).await?;
    let mut opening = Opening { fresh: HashSet::new(), numbers: Vec::new(), held: vec![None; requests.len()] };
    for (key, n, i, holder) in rows {
        match (n, i, holder) {
            (Some(n), ..) => {
                opening.numbers.push(n as HandoffId);
                opening.fresh.extend(key);
            }
            (None, Some(i), Some(holder)) if (i as usize) < requests.len() => {
                opening.held[i as usize] = Some(holder as HandoffId);
            }
            _ => return Err(sqlx::Error::RowNotFound),
        }
    }
    Ok(opening)
}
