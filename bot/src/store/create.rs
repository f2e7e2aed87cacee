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
use super::write::{Claim, ROWS_PER_STATEMENT, Write, holders, placeholders, write_decisions};
use super::{Backend, Store, StoreError, ms};

/// Transactions of creations in flight at once on PostgreSQL. More than one lets commits overlap
/// (PostgreSQL flushes their WAL together) while the next batch gathers; in `baton bench serve`
/// two gave the most creations per second, and more added contention, not throughput. SQLite
/// has one writer at a time, so there it is one.
const POSTGRES_COMMITTERS: usize = 2;

/// Most creations in one transaction: as many as one multi-row statement takes, so that a
/// batch's keys and handoffs each go in one statement.
const MOST_PER_TRANSACTION: usize = ROWS_PER_STATEMENT;

/// Builds the decision for a handoff number; `None` when the core refuses after all.
type Build = Box<dyn FnOnce(HandoffId) -> Option<Decision> + Send>;

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
    /// before it takes a key or a number (but for one made earlier in the same transaction).
    pub async fn create(
        &self,
        request_key: Option<&str>,
        remember: bool,
        open_key: Option<(String, String)>,
        now: DateTime<Utc>,
        build: impl FnOnce(HandoffId) -> Option<Decision> + Send + 'static,
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
            match self.create_batch(requests).await {
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
    async fn create_batch(&self, requests: Vec<Request>) -> Result<Vec<Result<Decision, StoreError>>, StoreError> {
        let mut tx = self.write().await?;
        // Creations whose open key an open handoff holds are refused first: they take no key and
        // no number.
        let claims: Vec<Claim> =
            (requests.iter()).filter_map(|r| r.open_key.as_ref().map(|(s, k)| (s.as_str(), k.as_str(), 0))).collect();
        let mut held = holders(&mut tx, self.backend, &claims).await?.into_iter();
        let holders: Vec<Option<HandoffId>> =
            requests.iter().map(|r| r.open_key.as_ref().and_then(|_| held.next().flatten())).collect();
        let admitted: Vec<(Option<&str>, i64)> = (requests.iter().zip(&holders))
            .filter(|(_, h)| h.is_none())
            .map(|(r, _)| (r.key.as_deref(), ms(r.now)))
            .collect();
        // Keys in sorted order, so that two replicas' batches cannot deadlock on them.
        let mut keys: Vec<(&str, i64)> = admitted.iter().filter_map(|(k, at)| Some(((*k)?, *at))).collect();
        keys.sort_unstable();
        let keyless = admitted.iter().filter(|(k, _)| k.is_none()).count();
        let (mut fresh, numbers) = self.keys_and_numbers(&mut tx, &keys, keyless).await?;
        // The first request with a fresh key takes it; a copy (also one in this batch) is a replay.
        let takes: Vec<bool> = (requests.iter().zip(&holders))
            .map(|(r, h)| h.is_none() && r.key.as_ref().is_none_or(|k| fresh.remove(k)))
            .collect();
        let mut numbers = numbers.into_iter();

        let request_keys: Vec<Option<String>> = requests.iter().map(|r| r.key.clone()).collect();
        let mut outcomes = Vec::with_capacity(requests.len());
        let mut refused = Vec::new();
        let mut remembered = Vec::new();
        for ((Request { key, remember, build, .. }, take), holder) in requests.into_iter().zip(takes).zip(holders) {
            if let Some(holder) = holder {
                outcomes.push(Err(StoreError::Taken(holder)));
                continue;
            }
            if !take {
                outcomes.push(Err(StoreError::Duplicate));
                continue;
            }
            let id = numbers.next().ok_or(StoreError::Db(sqlx::Error::RowNotFound))?;
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(id))) {
                Ok(Some(d)) => {
                    remembered.extend(key.filter(|_| remember).map(|k| (k, id)));
                    outcomes.push(Ok(d));
                }
                refusal => {
                    if refusal.is_err() {
                        tracing::error!(handoff = id, "building a new handoff panicked; it was not created");
                    }
                    refused.extend(key);
                    outcomes.push(Err(StoreError::Conflict));
                }
            }
        }
        // A creation whose open key one made earlier in this transaction claims is refused,
        // naming it (its number is spent).
        let mut claimed: HashMap<(String, String), HandoffId> = HashMap::new();
        for (outcome, key) in outcomes.iter_mut().zip(&request_keys) {
            let Ok(d) = outcome else { continue };
            let Some(open_key) = d.open_key.clone().filter(|_| d.claims_key) else { continue };
            match claimed.entry((d.handoff.seam.clone(), open_key)) {
                Entry::Vacant(v) => {
                    v.insert(d.handoff.id);
                }
                Entry::Occupied(first) => {
                    *outcome = Err(StoreError::Taken(*first.get()));
                    refused.extend(key.clone());
                    remembered.retain(|(k, _)| Some(k) != key.as_ref());
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
        let writes: Vec<Write> =
            outcomes.iter().filter_map(|o| o.as_ref().ok()).map(|d| Write { d, expected: None }).collect();
        let mut tallies = Tallies::default();
        write_decisions(&mut tx, self.backend, &writes, &mut tallies).await?;
        tallies.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Records the request `keys` that are new (each at its instant) and takes a handoff number
    /// for each of them and for `keyless` requests more. Returns the new keys and the numbers, in
    /// ascending order. On PostgreSQL this is one statement.
    async fn keys_and_numbers(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        keys: &[(&str, i64)],
        keyless: usize,
    ) -> Result<(HashSet<String>, Vec<HandoffId>), sqlx::Error> {
        const RECORD: &str = "INSERT INTO processed_requests (key, handoff_id, at_ms) VALUES {rows} \
            ON CONFLICT (key) DO NOTHING RETURNING key";
        if self.backend == Backend::Postgres && !keys.is_empty() && keys.len() <= ROWS_PER_STATEMENT {
            // Numbers for keyless requests only when there are some: PostgreSQL takes a
            // `generate_series` of a parameter for 1,000 rows, so with that part in it the statement
            // was planned afresh on every call (its cached plan looked dearer); more time went into
            // planning than into running it.
            let keyless_part = match keyless {
                0 => String::new(),
                _ => format!(
                    " UNION ALL SELECT NULL, nextval('handoff_numbers') FROM generate_series(1, ${})",
                    keys.len() * 3 + 1
                ),
            };
            let sql = format!(
                "WITH fresh AS ({}) SELECT key, nextval('handoff_numbers') AS n FROM fresh{keyless_part} ORDER BY n",
                RECORD.replace("{rows}", &placeholders(keys.len(), 3)),
            );
            let q = keys.iter().fold(sqlx::query_as(sqlx::AssertSqlSafe(sql)), |q, (key, at)| {
                q.bind(*key).bind(None::<i64>).bind(*at)
            });
            let q = if keyless > 0 { q.bind(keyless as i64) } else { q };
            let rows: Vec<(Option<String>, i64)> = q.fetch_all(&mut **tx).await?;
            let numbers = rows.iter().map(|(_, n)| *n as HandoffId).collect();
            return Ok((rows.into_iter().filter_map(|(key, _)| key).collect(), numbers));
        }
        let mut fresh = HashSet::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let sql = RECORD.replace("{rows}", &placeholders(chunk.len(), 3));
            let q = chunk.iter().fold(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), |q, (key, at)| {
                q.bind(*key).bind(None::<i64>).bind(*at)
            });
            fresh.extend(q.fetch_all(&mut **tx).await?.into_iter().map(|k: String| k));
        }
        let numbers = self.next_numbers(tx, fresh.len() + keyless).await?;
        Ok((fresh, numbers))
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
