//! The durable store: handoffs, audit events, outbox, stall episodes, fired ladder steps.
//!
//! One `Store` serves PostgreSQL (production) and SQLite (the embedded default) through sqlx's
//! `Any` driver: the DML is shared and checked by one conformance suite on both; what differs per
//! backend (migrations, number allocation) is chosen by [`Backend`]. Every decision is saved in one
//! transaction guarded by the handoff's version, so two concurrent commands cannot both win.

use anyhow::Context as _;
use baton_core::{Decision, EpisodeRecord, Event, Handoff, HandoffId, Rejection};
use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

mod history;
mod links;
mod outbox;

use history::Tallies;
pub use history::{Buckets, HistogramRow, Metric, PercentileRow, Slice, day};
pub use links::{LinkOutcome, LinkRequest};
pub use outbox::{Claimed, MetricsSnapshot, recipient_key};

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
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
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
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 20 })
            // Fail fast while the database is away: the background loops retry on their own.
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&url)
            .await
            .with_context(|| format!("connecting to {}", redact(&url)))?;
        let store = Store { pool, backend };
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

    /// Creates a handoff in one transaction: records the request key first (a replay, even a
    /// concurrent one, stops there as `Duplicate` without taking a number), then takes the next
    /// handoff number, and saves the decision `build` makes for it. Returns that decision.
    pub async fn create(
        &self,
        request_key: Option<&str>,
        now: DateTime<Utc>,
        build: impl FnOnce(HandoffId) -> Option<Decision>,
    ) -> Result<Decision, StoreError> {
        let mut tx = self.write().await?;
        if let Some(key) = request_key {
            let inserted = sqlx::query(
                "INSERT INTO processed_requests (key, handoff_id, at_ms) VALUES ($1, NULL, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::Duplicate);
            }
        }
        let sql = match self.backend {
            Backend::Postgres => "SELECT nextval('handoff_numbers')",
            Backend::Sqlite => "UPDATE counters SET value = value + 1 WHERE name = 'handoff' RETURNING value",
        };
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await?;
        let d = build(n as HandoffId).ok_or(StoreError::Conflict)?;
        let mut tallies = Tallies::default();
        write_decision(&mut tx, &d, None, None, &mut tallies).await?;
        tallies.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(d)
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
        let mut tallies = Tallies::default();
        let version = write_decision(&mut tx, d, expected, request_key, &mut tallies).await?;
        tallies.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Claims up to `limit` handoffs due at `now` and saves `decide`'s decision for each, all in
    /// one transaction. On PostgreSQL the rows are locked with `FOR UPDATE SKIP LOCKED`, so
    /// replicas sweeping together take disjoint batches; SQLite serves one process. A handoff
    /// the core refuses (its seam left the config) is parked for an hour and logged. Returns how
    /// many handoffs were claimed, how many changed, and how many ladder steps were sent.
    pub async fn sweep_batch(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        decide: impl Fn(&Handoff) -> Result<Decision, Rejection>,
    ) -> Result<(usize, usize, usize), StoreError> {
        let (mut tx, lock) = match self.backend {
            Backend::Postgres => (self.write().await?, " FOR UPDATE SKIP LOCKED"),
            Backend::Sqlite => (self.write().await?, ""),
        };
        let sql = format!(
            "SELECT id, doc, version FROM handoffs WHERE next_check_ms <= $1 ORDER BY next_check_ms LIMIT $2{lock}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(now)).bind(limit).fetch_all(&mut *tx).await?;
        let (mut changed, mut fired) = (0, 0);
        // Rollup increments are applied once, in key order, at the end of the batch: concurrent
        // transactions then lock rollup rows in the same order and cannot deadlock on them.
        let mut tallies = Tallies::default();
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let doc: String = row.try_get("doc")?;
            let decided = serde_json::from_str::<Handoff>(&doc)
                .map_err(|e| format!("stored document does not decode: {e}"))
                .and_then(|h| decide(&h).map_err(|r| r.to_string()));
            match decided {
                Ok(d) => {
                    if !d.events.is_empty() {
                        changed += 1;
                    }
                    fired += d.fired.iter().filter(|f| !f.skipped).count();
                    write_decision(&mut tx, &d, Some(row.try_get("version")?), None, &mut tallies).await?;
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
        tallies.flush(&mut tx).await?;
        tx.commit().await?;
        Ok((rows.len(), changed, fired))
    }

    /// Whether a request with this key was already acted on.
    pub async fn processed(&self, key: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM processed_requests WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
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

    /// The earliest pending check, if any.
    pub async fn earliest_check(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MIN(next_check_ms) FROM handoffs").fetch_one(&self.pool).await?;
        Ok(v.map(from_ms))
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
            "SELECT doc FROM handoffs WHERE (owner = $1 OR requester = $1) AND state NOT IN ('done', 'cancelled') ORDER BY id",
            Some(person),
        )
        .await
    }

    /// Handoffs still moving (not done, cancelled or returned) on the given seams.
    pub async fn open_in_seams(&self, seams: &[String]) -> Result<Vec<Handoff>, StoreError> {
        let mut out = Vec::new();
        for seam in seams {
            out.extend(
                self.docs(
                    "SELECT doc FROM handoffs WHERE seam = $1 AND state NOT IN ('done', 'cancelled', 'returned') ORDER BY id",
                    Some(seam),
                )
                .await?,
            );
        }
        Ok(out)
    }

    /// Handoffs stalled right now.
    pub async fn stalled(&self) -> Result<Vec<Handoff>, StoreError> {
        self.docs("SELECT doc FROM handoffs WHERE stall_kind IS NOT NULL ORDER BY id", None).await
    }

    /// A handoff's audit trail, oldest first.
    pub async fn events(&self, id: HandoffId) -> Result<Vec<Event>, StoreError> {
        let rows =
            sqlx::query("SELECT at_ms, actor, surface, state, change FROM events WHERE handoff_id = $1 ORDER BY id")
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

/// Writes a decision inside `tx` (see [`Store::save`]).
async fn write_decision(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    d: &Decision,
    expected: Option<i64>,
    request_key: Option<&str>,
    tallies: &mut Tallies,
) -> Result<i64, StoreError> {
    let h = &d.handoff;
    tallies.add(d);
    let id = h.id as i64;
    let doc = serde_json::to_string(h).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let now = ms(h.updated_at);
    if let Some(key) = request_key {
        let inserted = sqlx::query(
            "INSERT INTO processed_requests (key, handoff_id, at_ms) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Duplicate);
        }
    }
    let stall_kind = h.stall.as_ref().map(|s| s.kind.name());
    let next_check = d.next_check.map(ms);
    let version = match expected {
        None => {
            sqlx::query(
                "INSERT INTO handoffs (id, seam, state, requester, owner, stall_kind, created_at_ms, updated_at_ms, next_check_ms, version, doc, \
                 tier, accepted_at_ms, closed_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11, $12, $13)",
            )
            .bind(id)
            .bind(&h.seam)
            .bind(h.state.name())
            .bind(&h.requester)
            .bind(h.owner.as_deref())
            .bind(stall_kind)
            .bind(ms(h.created_at))
            .bind(now)
            .bind(next_check)
            .bind(&doc)
            .bind(h.tier.name())
            .bind(h.accepted_at.map(ms))
            .bind(h.closed_at.map(ms))
            .execute(&mut **tx)
            .await?;
            1
        }
        Some(v) => {
            let updated = sqlx::query(
                "UPDATE handoffs SET state = $1, owner = $2, stall_kind = $3, updated_at_ms = $4, next_check_ms = $5, version = version + 1, doc = $6, \
                 accepted_at_ms = COALESCE(accepted_at_ms, $7), closed_at_ms = COALESCE(closed_at_ms, $8) WHERE id = $9 AND version = $10",
            )
            .bind(h.state.name())
            .bind(h.owner.as_deref())
            .bind(stall_kind)
            .bind(now)
            .bind(next_check)
            .bind(&doc)
            .bind(h.accepted_at.map(ms))
            .bind(h.closed_at.map(ms))
            .bind(id)
            .bind(v)
            .execute(&mut **tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::Conflict);
            }
            v + 1
        }
    };
    // One statement for all events, and one for all fired steps: round trips dominate a sweep.
    if !d.events.is_empty() {
        let sql = format!(
            "INSERT INTO events (handoff_id, at_ms, actor, surface, kind, state, change) VALUES {}",
            placeholders(d.events.len(), 7)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for e in &d.events {
            let change = serde_json::to_string(&e.change).map_err(|err| sqlx::Error::Encode(Box::new(err)))?;
            q = q
                .bind(id)
                .bind(ms(e.at))
                .bind(e.actor.clone())
                .bind(e.surface.name())
                .bind(e.change.kind())
                .bind(e.state.name())
                .bind(change);
        }
        q.execute(&mut **tx).await?;
    }
    for intent in &d.intents {
        outbox::enqueue(tx, intent, h.updated_at).await?;
    }
    for ep in &d.episodes {
        save_episode(tx, ep).await?;
    }
    for a in &d.artifacts {
        let fields = serde_json::to_string(&a.fields).map_err(|err| sqlx::Error::Encode(Box::new(err)))?;
        sqlx::query(
            "INSERT INTO artifacts (handoff_id, episode, playbook, category, assumption, decision, fields, recorded_by, at_ms, seam) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(a.episode.map(i64::from))
        .bind(&a.playbook)
        .bind(&a.category)
        .bind(&a.assumption)
        .bind(&a.decision)
        .bind(fields)
        .bind(&a.by)
        .bind(ms(a.at))
        .bind(&h.seam)
        .execute(&mut **tx)
        .await?;
    }
    for f in &d.follow_ups {
        sqlx::query("INSERT INTO follow_ups (handoff_id, owner, due, what) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(&f.owner)
            .bind(f.due.to_string())
            .bind(&f.what)
            .execute(&mut **tx)
            .await?;
    }
    if !d.fired.is_empty() {
        let sql = format!(
            "INSERT INTO ladder_steps (handoff_id, episode, step, action, fired_at_ms, skipped) VALUES {}",
            placeholders(d.fired.len(), 6)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for step in &d.fired {
            q = q
                .bind(id)
                .bind(i64::from(step.episode))
                .bind(step.step as i64)
                .bind(step.action.clone())
                .bind(ms(step.at))
                .bind(i64::from(step.skipped));
        }
        q.execute(&mut **tx).await.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Db(e),
        })?;
    }
    Ok(version)
}

/// `($1, $2), ($3, $4)` for `rows` rows of `cols` columns.
pub(crate) fn placeholders(rows: usize, cols: usize) -> String {
    (0..rows).map(|r| format!("({})", params(r * cols + 1, cols))).collect::<Vec<_>>().join(", ")
}

/// `$first, $first+1, …`: `n` parameters from number `first`.
pub(crate) fn params(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

async fn save_episode(tx: &mut sqlx::Transaction<'_, sqlx::Any>, ep: &EpisodeRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO stall_episodes (handoff_id, episode, seam, kind, opened_at_ms, closed_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (handoff_id, episode) DO UPDATE SET closed_at_ms = excluded.closed_at_ms",
    )
    .bind(ep.handoff as i64)
    .bind(i64::from(ep.episode))
    .bind(&ep.seam)
    .bind(ep.kind.name())
    .bind(ms(ep.opened_at))
    .bind(ep.closed_at.map(ms))
    .execute(&mut **tx)
    .await?;
    Ok(())
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
