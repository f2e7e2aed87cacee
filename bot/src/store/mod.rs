//! The durable store: handoffs, audit events, outbox, stall episodes, fired ladder steps.
//!
//! One `Store` serves PostgreSQL (production) and SQLite (the embedded default) through sqlx's
//! `Any` driver: the DML is shared and checked by one conformance suite on both; what differs per
//! backend (migrations, number allocation) is chosen by [`Backend`]. Every decision is saved in one
//! transaction guarded by the handoff's version, so two concurrent commands cannot both win.

use anyhow::Context as _;
use baton_core::{Decision, Event, Handoff, HandoffId, OperatingModel, Rejection};
use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

mod absences;
mod create;
mod history;
mod links;
mod outbox;
mod prune;
mod write;

pub use absences::Absence;
pub use create::CreationStats;
use history::Tallies;
pub use history::{Buckets, HistogramRow, Metric, PercentileRow, Slice, day};
pub use links::{LinkOutcome, LinkRequest};
pub use outbox::{Ask, AskRef, Asked, Claimed, DeadLetter, Kept, MetricsSnapshot, recipient_key};
pub use prune::Pruned;
pub(crate) use write::params;
use write::{Write, write_decisions};

/// Which database a store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://…`
    Postgres,
    /// `sqlite://…`
    Sqlite,
}

/// Why a save did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The handoff changed since it was loaded; reload and decide again.
    #[error("the handoff changed concurrently")]
    Conflict,
    /// This request key was already acted on.
    #[error("this request was already handled")]
    Duplicate,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The transaction this creation shared with others failed (see [`Store::create`]).
    #[error(transparent)]
    Batch(std::sync::Arc<StoreError>),
    /// Another open handoff on its seam holds what this one keys on (`one_open_per`).
    #[error("H-{0} is open with the same values")]
    Taken(baton_core::HandoffId),
    /// The task saving this creation stopped before saying whether it was saved.
    #[error("the creation was abandoned before it was known to be saved; try again")]
    Abandoned,
}

/// A handoff as stored, with the version that guards its next save.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The handoff.
    pub handoff: Handoff,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// A closed or open stall episode, for statistics.
#[derive(Clone, Debug)]
pub struct EpisodeRow {
    /// Seam.
    pub seam: String,
    /// Breach kind.
    pub kind: String,
    /// Breach instant.
    pub opened_at: DateTime<Utc>,
    /// Unblock instant, if closed.
    pub closed_at: Option<DateTime<Utc>>,
}

/// The database, PostgreSQL or SQLite.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    creations: std::sync::Arc<create::Creations>,
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

/// What [`Store::list`] keeps: each given field must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// The seam.
    pub seam: Option<String>,
    /// The state (`open`, `in_progress`, `awaiting_gate`, …).
    pub state: Option<String>,
    /// The owner.
    pub owner: Option<String>,
    /// The requester.
    pub requester: Option<String>,
    /// Only those not done or cancelled.
    pub open: bool,
    /// Only those numbered below this (the next page).
    pub before: Option<HandoffId>,
}

/// How long a pooled connection may sit idle before it is checked when next taken.
const CHECK_IDLE_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// Records request `key` (about `handoff`, at `at`) inside `tx`: `false` when it was already
/// recorded, so the request is a replay and must change nothing.
pub(crate) async fn record_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: &str,
    handoff: Option<HandoffId>,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO processed_requests (key, handoff_id, at_ms) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(handoff.map(|h| h as i64))
    .bind(ms(at))
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() > 0)
}

/// The states of a handoff not yet closed, as an SQL list. Listing them lets the (seam, state)
/// index find them: `NOT IN ('done', 'cancelled')` read every row of a seam (on PostgreSQL, 100 open
/// handoffs among a million on one seam took 498 ms to list; with `IN`, 1.3 ms).
const UNCLOSED: &str = "('open', 'accepted', 'reassigned', 'in_progress', 'awaiting_gate', 'returned')";
/// Most closed handoffs [`Store::closed_holding`] reads that could hold the words.
pub const CLOSED_SEARCHED: usize = 2000;
/// [`UNCLOSED`] without `returned`: the states in which the receiving side has the work.
const MOVING: &str = "('open', 'accepted', 'reassigned', 'in_progress', 'awaiting_gate')";

/// What one sweep batch did.
#[derive(Debug, Default)]
pub struct Swept {
    /// Handoffs claimed (fewer than asked: nothing more is due).
    pub claimed: usize,
    /// Handoffs whose check recorded a change.
    pub changed: usize,
    /// Ladder steps sent.
    pub fired: usize,
    /// Webhook reviewers to ask again, by handoff: the caller calls them (after the batch is saved).
    pub reviews: Vec<(HandoffId, String)>,
}

impl Store {
    /// Connects to `url` (`postgres://…` or `sqlite://…`) and applies pending migrations.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else if let Some(rest) = url.strip_prefix("sqlite://") {
            // Create the file when missing, as users expect of an embedded database.
            let url = if rest.contains('?') { url.to_string() } else { format!("{url}?mode=rwc") };
            (Backend::Sqlite, url)
        } else {
            anyhow::bail!("BATON_DATABASE_URL must start with postgres:// or sqlite:// (got `{url}`)");
        };
        // One connection on its own first: the pool retries a refused connection until its acquire
        // timeout and then says only that it timed out; a lone connection says what is wrong at once.
        let probe = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await;
        let probe = probe.map_err(|e| anyhow::anyhow!("connecting to {}: {}", redact(&url), explain(&e)))?;
        let _ = sqlx::Connection::close(probe).await;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 20 })
            // Fail fast while the database is away: the background loops retry on their own.
            .acquire_timeout(std::time::Duration::from_secs(5))
            // A connection is checked (a round trip) only when it sat idle long enough for the
            // server to have gone away meanwhile, not on every use as by default: that check was
            // one round trip in five of a creation. One broken while in use fails its query, and
            // the pool drops it.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(
                    async move { Ok(meta.idle_for < CHECK_IDLE_AFTER || sqlx::Connection::ping(conn).await.is_ok()) },
                )
            })
            .connect(&url)
            .await
            .with_context(|| format!("connecting to {}", redact(&url)))?;
        let store = Store { pool, backend, creations: Default::default() };
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&store.pool).await?;
        }
        store.migrate().await?;
        Ok(store)
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so
    /// that a transaction which reads before it writes waits its turn instead of failing with
    /// "database is locked" when another connection wrote in between.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Postgres => self.pool.begin().await,
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
        }
    }

    /// Closes the store's connections, waiting for those in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for backend-specific queries and tests.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies the embedded migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Postgres => sqlx::migrate!("../migrations/postgres").run(&self.pool).await,
            Backend::Sqlite => sqlx::migrate!("../migrations/sqlite").run(&self.pool).await,
        }
        .context("applying database migrations")?;
        // A database with history but no rollups predates them (migration 0006): roll it up once.
        let rolled: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM rollups LIMIT 1").fetch_optional(&self.pool).await?;
        let history: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM handoffs WHERE accepted_at_ms IS NOT NULL OR closed_at_ms IS NOT NULL LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        if rolled.is_none() && history.is_some() {
            let started = std::time::Instant::now();
            let rows = self.rebuild_rollups().await?;
            tracing::info!("rolled up the recorded history: {rows} rows in {:.1} s", started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// Ok when the database answers and every migration this binary embeds is applied.
    pub async fn ready(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Postgres => sqlx::migrate!("../migrations/postgres"),
            Backend::Sqlite => sqlx::migrate!("../migrations/sqlite"),
        };
        let expected = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .context("the database does not answer")?;
        anyhow::ensure!(
            applied.unwrap_or(0) >= expected,
            "migrations applied up to {}, this binary needs {expected}: run `baton migrate`",
            applied.unwrap_or(0)
        );
        Ok(())
    }

    /// Saves a decision in one transaction: the handoff (inserted when `expected` is `None`, else
    /// updated only if still at version `expected`), its events, outbox messages, stall episodes
    /// and fired ladder steps, and the request key when given. Returns the new version.
    pub async fn save(
        &self,
        d: &Decision,
        expected: Option<i64>,
        request_key: Option<&str>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        if let Some(key) = request_key
            && !record_key(&mut tx, key, Some(d.handoff.id), d.handoff.updated_at).await?
        {
            return Err(StoreError::Duplicate);
        }
        let mut tallies = Tallies::default();
        let versions = write_decisions(&mut tx, self.backend, &[Write { d, expected }], &[], &mut tallies).await?;
        tallies.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(versions[0])
    }

    /// Claims up to `limit` handoffs due at `now` and saves `decide`'s decision for each, all in
    /// one transaction. On PostgreSQL the rows are locked with `FOR UPDATE SKIP LOCKED`, so
    /// replicas sweeping together take disjoint batches; SQLite serves one process. A handoff
    /// the core refuses (its seam left the config) is parked for an hour and logged.
    pub async fn sweep_batch(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        decide: impl Fn(&Handoff) -> Result<Decision, Rejection>,
    ) -> Result<Swept, StoreError> {
        let (mut tx, lock) = match self.backend {
            Backend::Postgres => (self.write().await?, " FOR UPDATE SKIP LOCKED"),
            Backend::Sqlite => (self.write().await?, ""),
        };
        let sql = format!(
            "SELECT id, doc, version FROM handoffs WHERE next_check_ms <= $1 ORDER BY next_check_ms LIMIT $2{lock}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(now)).bind(limit).fetch_all(&mut *tx).await?;
        let mut swept = Swept { claimed: rows.len(), ..Swept::default() };
        let mut writes = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let doc: String = row.try_get("doc")?;
            let decided = serde_json::from_str::<Handoff>(&doc)
                .map_err(|e| format!("stored document does not decode: {e}"))
                .and_then(|h| decide(&h).map_err(|r| r.to_string()));
            match decided {
                Ok(d) => {
                    if !d.events.is_empty() {
                        swept.changed += 1;
                    }
                    swept.fired += d.fired.iter().filter(|f| !f.skipped).count();
                    swept.reviews.extend(d.review.clone().map(|r| (d.handoff.id, r)));
                    writes.push((d, row.try_get("version")?));
                }
                Err(why) => {
                    tracing::error!(handoff = id, "stall check refused, parked for an hour: {why}");
                    sqlx::query("UPDATE handoffs SET next_check_ms = $1 WHERE id = $2")
                        .bind(ms(now + chrono::Duration::hours(1)))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        let writes: Vec<Write> = writes.iter().map(|(d, v)| Write { d, expected: Some(*v) }).collect();
        // Rollup increments are applied once, in key order, at the end of the batch: concurrent
        // transactions then lock rollup rows in the same order and cannot deadlock on them.
        let mut tallies = Tallies::default();
        write_decisions(&mut tx, self.backend, &writes, &[], &mut tallies).await?;
        tallies.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(swept)
    }

    /// Whether a request with this key was already acted on.
    pub async fn processed(&self, key: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM processed_requests WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// The handoff a creation with request `key` made, when the key was created remembering it.
    pub async fn created_by(&self, key: &str) -> Result<Option<HandoffId>, StoreError> {
        let id: Option<Option<i64>> = sqlx::query_scalar("SELECT handoff_id FROM processed_requests WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(id.flatten().map(|id| id as HandoffId))
    }

    /// Loads a handoff with its version.
    pub async fn load(&self, id: HandoffId) -> Result<Option<Stored>, StoreError> {
        let row = sqlx::query("SELECT doc, version FROM handoffs WHERE id = $1")
            .bind(id as i64)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let doc: String = r.try_get("doc")?;
            let handoff = serde_json::from_str(&doc).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            Ok(Stored { handoff, version: r.try_get("version")? })
        })
        .transpose()
    }

    /// Handoffs whose next check is at or before `now`, earliest first.
    pub async fn due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<HandoffId>, StoreError> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM handoffs WHERE next_check_ms <= $1 ORDER BY next_check_ms LIMIT $2")
                .bind(ms(now))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(ids.into_iter().map(|i| i as HandoffId).collect())
    }

    /// When the latest recorded change happened (`None` before the first).
    pub async fn latest_event(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(at_ms) FROM events").fetch_one(&self.pool).await?;
        Ok(v.map(from_ms))
    }

    /// The earliest pending check, if any.
    pub async fn earliest_check(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MIN(next_check_ms) FROM handoffs").fetch_one(&self.pool).await?;
        Ok(v.map(from_ms))
    }

    /// Brings forward to `now` the next check of every open handoff that waits on someone no
    /// longer in `model` (they left, or a reload dropped them): its owner, or the requester it was
    /// returned to. The scheduler then tells a lead (once: the core records that it did) and routes
    /// the reminders there. Returns the people who left and are still waited on.
    pub async fn recheck_departed(
        &self,
        model: &OperatingModel,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        // Seam by seam, so that the (seam, state) index finds the open ones among all.
        let sql = format!(
            "SELECT owner FROM handoffs WHERE seam = $1 AND state IN {UNCLOSED} AND owner IS NOT NULL \
             UNION SELECT requester FROM handoffs WHERE seam = $1 AND state = 'returned'"
        );
        let mut departed = std::collections::BTreeSet::new();
        for seam in model.seams.keys() {
            let q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.clone())).bind(seam);
            departed.extend(q.fetch_all(&self.pool).await?.into_iter().filter(|p| model.person(p).is_none()));
        }
        let sql = format!(
            "UPDATE handoffs SET next_check_ms = $1 WHERE (owner = $2 AND state IN {UNCLOSED} \
             OR requester = $2 AND state = 'returned') AND (next_check_ms IS NULL OR next_check_ms > $1)"
        );
        for person in &departed {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(ms(now)).bind(person).execute(&self.pool).await?;
        }
        Ok(departed.into_iter().collect())
    }

    /// Makes every open handoff's open key what `model` says it is (its seam may key on other
    /// fields than when the handoff was last saved, or on none); returns how many changed. Seam
    /// by seam: a seam keyed on nothing clears its keys through their index, a keyed one reads
    /// its open handoffs.
    pub async fn rekey_open(&self, model: &OperatingModel) -> Result<u64, StoreError> {
        let mut changed = 0;
        for seam in model.seams.values() {
            if seam.one_open_per.is_empty() {
                let cleared =
                    sqlx::query("UPDATE handoffs SET open_key = NULL WHERE seam = $1 AND open_key IS NOT NULL")
                        .bind(&seam.id)
                        .execute(&self.pool)
                        .await?;
                changed += cleared.rows_affected();
                continue;
            }
            let sql = format!("SELECT doc, open_key FROM handoffs WHERE seam = $1 AND state IN {UNCLOSED}");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&seam.id).fetch_all(&self.pool).await?;
            for row in &rows {
                let h = decode_doc(row)?;
                let stored: Option<String> = row.try_get("open_key")?;
                let key = seam.open_key(&h.fields);
                if key != stored {
                    sqlx::query("UPDATE handoffs SET open_key = $1 WHERE id = $2")
                        .bind(key)
                        .bind(h.id as i64)
                        .execute(&self.pool)
                        .await?;
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }

    async fn docs(&self, sql: &str, bind: Option<&str>) -> Result<Vec<Handoff>, StoreError> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
        if let Some(b) = bind {
            q = q.bind(b.to_string());
        }
        let rows: Vec<AnyRow> = q.fetch_all(&self.pool).await?;
        rows.iter().map(decode_doc).collect()
    }

    /// Open handoffs a person owns or requested.
    pub async fn open_for(&self, person: &str) -> Result<Vec<Handoff>, StoreError> {
        self.docs(
            &format!(
                "SELECT doc FROM handoffs WHERE (owner = $1 OR requester = $1) AND state IN {UNCLOSED} ORDER BY id"
            ),
            Some(person),
        )
        .await
    }

    /// Handoffs matching `filter`, newest first, at most `limit`, numbered below `before` when given
    /// (the API's listing; each filter reads through an index or the primary key).
    pub async fn list(&self, filter: &Listing, limit: i64) -> Result<Vec<Handoff>, StoreError> {
        let mut clauses = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        for (column, value) in [
            ("seam", &filter.seam),
            ("state", &filter.state),
            ("owner", &filter.owner),
            ("requester", &filter.requester),
        ] {
            if let Some(v) = value {
                binds.push(v.clone());
                clauses.push(format!("{column} = ${}", binds.len()));
            }
        }
        if filter.open {
            clauses.push(format!("state IN {UNCLOSED}"));
        }
        if let Some(before) = filter.before {
            clauses.push(format!("id < {}", before as i64));
        }
        let wher = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let sql = format!("SELECT doc FROM handoffs {wher} ORDER BY id DESC LIMIT {}", limit.max(1));
        let q = binds.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, b| q.bind(b.clone()));
        let rows: Vec<AnyRow> = q.fetch_all(&self.pool).await?;
        rows.iter().map(decode_doc).collect()
    }

    /// Open handoffs `person` watches (`/handoff watch`).
    pub async fn watched_by(&self, person: &str) -> Result<Vec<Handoff>, StoreError> {
        self.docs(
            &format!(
                "SELECT h.doc FROM watchers w JOIN handoffs h ON h.id = w.handoff_id \
                 WHERE w.person = $1 AND h.state IN {UNCLOSED} ORDER BY h.id"
            ),
            Some(person),
        )
        .await
    }

    /// Handoffs that may wait on someone of the given seams' receiving side: unaccepted ones
    /// (`open`, no owner) and those at the gate. Read through the (seam, state) index.
    pub async fn waiting_in_seams(&self, seams: &[String]) -> Result<Vec<Handoff>, StoreError> {
        self.docs_per_seam(
            "SELECT doc FROM handoffs WHERE seam = $1 AND state IN ('open', 'awaiting_gate') \
             AND (owner IS NULL OR state = 'awaiting_gate') ORDER BY id",
            seams,
        )
        .await
    }

    /// Handoffs still moving (not done, cancelled or returned) on the given seams.
    pub async fn open_in_seams(&self, seams: &[String]) -> Result<Vec<Handoff>, StoreError> {
        self.docs_per_seam(
            &format!("SELECT doc FROM handoffs WHERE seam = $1 AND state IN {MOVING} ORDER BY id"),
            seams,
        )
        .await
    }

    /// Handoffs not yet done or cancelled on the given seams (returned ones included).
    pub async fn unclosed_in_seams(&self, seams: &[String]) -> Result<Vec<Handoff>, StoreError> {
        self.docs_per_seam(
            &format!("SELECT doc FROM handoffs WHERE seam = $1 AND state IN {UNCLOSED} ORDER BY id"),
            seams,
        )
        .await
    }

    /// Closed (done or cancelled) handoffs on `seams` whose title or fields hold every one of
    /// `words` ([`baton_core::team::matches`]), newest first: at most `most`, and whether there
    /// may be older ones (more matched, or the search stopped after the latest
    /// [`CLOSED_SEARCHED`] that could match). The database narrows the candidates by their stored
    /// text (each word that is plain ASCII, in any case); the core decides.
    pub async fn closed_holding(
        &self,
        seams: &[String],
        words: &[String],
        most: usize,
    ) -> Result<(Vec<Handoff>, bool), StoreError> {
        const PAGE: usize = 200;
        if seams.is_empty() {
            return Ok((Vec::new(), false));
        }
        // A word found in a title or field value is in the stored JSON as typed, unless JSON
        // escapes it or it is a handoff's label (stored as its number).
        let narrowing: Vec<String> = (words.iter())
            .map(|w| w.to_ascii_lowercase())
            .filter(|w| w.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\') && !w.starts_with("h-"))
            .map(|w| format!("%{}%", w.replace('%', "\\%").replace('_', "\\_")))
            .collect();
        let mut sql = format!(
            "SELECT doc FROM handoffs WHERE seam IN ({}) AND state IN ('done', 'cancelled')",
            params(1, seams.len())
        );
        for i in 0..narrowing.len() {
            sql += &format!(" AND lower(doc) LIKE ${} ESCAPE '\\'", seams.len() + i + 1);
        }
        sql += &format!(" AND id < ${} ORDER BY id DESC LIMIT {PAGE}", seams.len() + narrowing.len() + 1);
        let (mut found, mut before) = (Vec::new(), i64::MAX);
        for _ in 0..CLOSED_SEARCHED / PAGE {
            let q =
                seams.iter().chain(&narrowing).fold(sqlx::query(sqlx::AssertSqlSafe(sql.clone())), |q, v| q.bind(v));
            let page = q.bind(before).fetch_all(&self.pool).await?;
            for h in page.iter().map(decode_doc) {
                let h = h?;
                before = h.id as i64;
                if baton_core::team::matches(&h, words) {
                    found.push(h);
                }
            }
            if found.len() > most {
                found.truncate(most);
                return Ok((found, true));
            }
            if page.len() < PAGE {
                return Ok((found, false));
            }
        }
        Ok((found, true))
    }

    /// [`Store::docs`] for each seam in turn (`$1` is the seam), one indexed query each.
    async fn docs_per_seam(&self, sql: &str, seams: &[String]) -> Result<Vec<Handoff>, StoreError> {
        let mut out = Vec::new();
        for seam in seams {
            out.extend(self.docs(sql, Some(seam)).await?);
        }
        Ok(out)
    }

    /// Handoffs stalled right now.
    pub async fn stalled(&self) -> Result<Vec<Handoff>, StoreError> {
        self.docs("SELECT doc FROM handoffs WHERE stall_kind IS NOT NULL ORDER BY id", None).await
    }

    /// A handoff's audit trail, oldest first.
    pub async fn events(&self, id: HandoffId) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, actor, surface, state, change, via FROM events WHERE handoff_id = $1 ORDER BY id",
        )
        .bind(id as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let decode = |e: serde_json::Error| StoreError::Db(sqlx::Error::Decode(Box::new(e)));
                let change: String = r.try_get("change")?;
                let surface: String = r.try_get("surface")?;
                let state: String = r.try_get("state")?;
                Ok(Event {
                    at: from_ms(r.try_get("at_ms")?),
                    actor: r.try_get("actor")?,
                    surface: serde_json::from_value(serde_json::Value::String(surface)).map_err(decode)?,
                    state: serde_json::from_value(serde_json::Value::String(state)).map_err(decode)?,
                    change: serde_json::from_str(&change).map_err(decode)?,
                    via: r.try_get("via")?,
                })
            })
            .collect()
    }

    /// Stall episodes opened since `since`.
    pub async fn episodes_since(&self, since: DateTime<Utc>) -> Result<Vec<EpisodeRow>, StoreError> {
        let rows = sqlx::query("SELECT seam, kind, opened_at_ms, closed_at_ms FROM stall_episodes WHERE opened_at_ms >= $1 ORDER BY opened_at_ms")
            .bind(ms(since))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(EpisodeRow {
                    seam: r.try_get("seam")?,
                    kind: r.try_get("kind")?,
                    opened_at: from_ms(r.try_get("opened_at_ms")?),
                    closed_at: r.try_get::<Option<i64>, _>("closed_at_ms")?.map(from_ms),
                })
            })
            .collect()
    }
}

/// The handoff in a row's `doc` column.
fn decode_doc(r: &AnyRow) -> Result<Handoff, StoreError> {
    let doc: String = r.try_get("doc")?;
    serde_json::from_str(&doc).map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))
}

/// Why a connection failed, said once (sqlx's text for a database error repeats its source's).
fn explain(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) if db.message() == "unable to open database file" => {
            format!("{} (does its folder exist, and may Baton write there?)", db.message())
        }
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Io(io) => format!("{io} (is the database server running, and is this its address?)"),
        e => e.to_string(),
    }
}

/// Hides a password in a database URL for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use baton_core::State;

    use super::{MOVING, UNCLOSED};

    #[test]
    fn the_state_lists_name_every_state_not_closed() {
        let all = [
            State::Open,
            State::Accepted,
            State::Reassigned,
            State::InProgress,
            State::AwaitingGate,
            State::Done,
            State::Returned,
            State::Cancelled,
        ];
        // A new state fails to compile here until it is placed in the lists above.
        for s in all {
            match s {
                State::Open | State::Accepted | State::Reassigned | State::InProgress | State::AwaitingGate => {}
                State::Done | State::Returned | State::Cancelled => {}
            }
        }
        let list = |keep: &dyn Fn(State) -> bool| {
            let names: Vec<String> = all.iter().filter(|s| keep(**s)).map(|s| format!("'{}'", s.name())).collect();
            format!("({})", names.join(", "))
        };
        assert_eq!(UNCLOSED, list(&|s| !s.is_terminal()));
        assert_eq!(MOVING, list(&|s| !s.is_terminal() && s != State::Returned));
    }
}
