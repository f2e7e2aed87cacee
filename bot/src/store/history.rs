//! Stall-history queries and the daily rollups.
//!
//! The rollups (`rollups`: per metric, seam, UTC day, tier and duration bucket, a count) change
//! with every write that produces a [`baton_core::Tally`] ([`Tallies`]), so long windows are read
//! as histograms of a few thousand rows. The exact queries read the indexed facts on `handoffs`,
//! `stall_episodes` and `artifacts` (never the event log) and compute nearest-rank percentiles in
//! SQL with window functions, which PostgreSQL and SQLite both have, so only a few rows per seam
//! come back.

use std::collections::BTreeMap;

use baton_core::history::{Percentiles, bucket};
use baton_core::{Decision, Handoff, TallyMetric};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;

/// The UTC day number of an instant (days since 1970-01-01).
pub fn day(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(86_400)
}

/// Rollup increments gathered in a transaction: `(metric, seam, day, tier, bucket) -> n`, kept
/// sorted so every transaction locks rollup rows in the same order.
#[derive(Debug, Default)]
pub(crate) struct Tallies(BTreeMap<(&'static str, String, i64, String, i64), i64>);

impl Tallies {
    /// Counts a decision's tallies.
    pub(crate) fn add(&mut self, d: &Decision) {
        let h = &d.handoff;
        for t in &d.tallies {
            let b = if t.metric == TallyMetric::StallOpened { 0 } else { bucket(t.secs) };
            let key = (t.metric.name(), h.seam.clone(), day(t.at), h.tier.name().to_string(), b);
            *self.0.entry(key).or_default() += 1;
        }
    }

    /// Applies the increments.
    pub(crate) async fn flush(self, tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), sqlx::Error> {
        let rows: Vec<_> = self.0.into_iter().collect();
        super::write::insert_rows(
            tx,
            "INSERT INTO rollups (metric, seam, day, tier, bucket, n) VALUES {rows} \
             ON CONFLICT (metric, seam, day, tier, bucket) DO UPDATE SET n = rollups.n + excluded.n",
            6,
            &rows,
            |q, ((metric, seam, day, tier, b), n)| {
                q.bind(*metric).bind(seam.as_str()).bind(*day).bind(tier.as_str()).bind(*b).bind(*n)
            },
        )
        .await?;
        Ok(())
    }
}

/// `(seam, bucket group, histogram bucket, count)` rows read from the rollups.
pub type HistogramRow = (String, i64, i64, u64);

/// Which handoffs a history query covers (the seams already narrowed to what the viewer may see).
#[derive(Clone, Copy, Debug)]
pub struct Slice<'a> {
    /// Seams covered.
    pub seams: &'a [String],
    /// Current owner.
    pub owner: Option<&'a str>,
    /// Risk tier name.
    pub tier: Option<&'a str>,
    /// A failure category recorded in one of the handoff's recalibrations.
    pub category: Option<&'a str>,
}

/// Which duration to take percentiles of.
#[derive(Clone, Copy, Debug)]
pub enum Metric {
    /// Creation to first acceptance, by acceptance time.
    Accept,
    /// Breach to unblock, by unblock time.
    Unblock,
}

impl Metric {
    /// Its name in the rollups.
    pub fn rollup(self) -> &'static str {
        match self {
            Metric::Accept => "accept",
            Metric::Unblock => "unblock",
        }
    }
}

/// How rows are grouped besides the seam.
#[derive(Clone, Copy, Debug)]
pub enum Buckets {
    /// `0` for `[split, to)`, `1` for `[from, split)`; also one group `*` over all seams.
    Windows {
        /// Start of the current window.
        split: i64,
    },
    /// Week number counted from `from`.
    Weeks,
}

/// `(group, bucket, percentiles)`: group is a seam, or `*` for all seams together.
pub type PercentileRow = (String, i64, Percentiles);

/// A query under construction: SQL text and its arguments, numbered as they are pushed.
struct Sql {
    text: String,
    ints: Vec<(usize, i64)>,
    strs: Vec<(usize, String)>,
    n: usize,
}

impl Sql {
    fn new() -> Self {
        Sql { text: String::new(), ints: Vec::new(), strs: Vec::new(), n: 0 }
    }

    fn int(&mut self, v: i64) -> String {
        self.n += 1;
        self.ints.push((self.n, v));
        format!("${}", self.n)
    }

    fn str(&mut self, v: &str) -> String {
        self.n += 1;
        self.strs.push((self.n, v.to_string()));
        format!("${}", self.n)
    }

    /// `AND <seam> IN (...) AND <filters on h>`.
    /// ` AND <col> IN (...)` for the slice's seams (never true for none).
    fn seams_in(&mut self, col: &str, s: &Slice<'_>) -> String {
        let list: Vec<String> = s.seams.iter().map(|x| self.str(x)).collect();
        if list.is_empty() { " AND 1 = 0".to_string() } else { format!(" AND {col} IN ({})", list.join(", ")) }
    }

    /// `AND <seam> IN (...) AND <filters on h>`.
    fn slice(&mut self, seam_col: &str, s: &Slice<'_>) -> String {
        let mut out = self.seams_in(seam_col, s);
        if let Some(o) = s.owner {
            out += &format!(" AND h.owner = {}", self.str(o));
        }
        if let Some(t) = s.tier {
            out += &format!(" AND h.tier = {}", self.str(t));
        }
        if let Some(c) = s.category {
            out += &format!(
                " AND EXISTS (SELECT 1 FROM artifacts a WHERE a.handoff_id = h.id AND a.category = {})",
                self.str(c)
            );
        }
        out
    }

    /// `AND seam IN (...) [AND tier = ...]` on the rollups (which have no owner or category).
    fn rollup_slice(&mut self, s: &Slice<'_>) -> String {
        let mut out = self.seams_in("seam", s);
        if let Some(t) = s.tier {
            out += &format!(" AND tier = {}", self.str(t));
        }
        out
    }

    async fn fetch(self, store: &Store) -> Result<Vec<AnyRow>, StoreError> {
        let mut args: Vec<(usize, Result<i64, String>)> = self
            .ints
            .into_iter()
            .map(|(i, v)| (i, Ok(v)))
            .chain(self.strs.into_iter().map(|(i, v)| (i, Err(v))))
            .collect();
        args.sort_by_key(|(i, _)| *i);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(self.text));
        for (_, a) in args {
            q = match a {
                Ok(i) => q.bind(i),
                Err(s) => q.bind(s),
            };
        }
        Ok(q.fetch_all(store.pool()).await?)
    }
}

fn needs_handoff(s: &Slice<'_>) -> bool {
    s.owner.is_some() || s.tier.is_some() || s.category.is_some()
}

impl Store {
    /// Histogram counts of `metric` (`accept`, `unblock`) rolled up for UTC days `[from, to]`,
    /// per seam and group: with `split`, group 0 is days from `split` on and group 1 the days
    /// before; without, the group is the week counted from `from`.
    pub async fn histograms(
        &self,
        metric: &str,
        s: &Slice<'_>,
        from: i64,
        to: i64,
        split: Option<i64>,
    ) -> Result<Vec<HistogramRow>, StoreError> {
        let mut q = Sql::new();
        let group = match split {
            Some(split) => format!("CASE WHEN day >= {} THEN 0 ELSE 1 END", q.int(split)),
            None => format!("(day - {}) / 7", q.int(from)),
        };
        let (m, lo, hi) = (q.str(metric), q.int(from), q.int(to));
        let filters = q.rollup_slice(s);
        q.text = format!(
            "SELECT seam, CAST({group} AS BIGINT) AS g, bucket, CAST(SUM(n) AS BIGINT) AS n FROM rollups \
             WHERE metric = {m} AND day >= {lo} AND day <= {hi}{filters} GROUP BY seam, g, bucket"
        );
        q.fetch(self)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("seam")?, r.try_get("g")?, r.try_get("bucket")?, r.try_get::<i64, _>("n")? as u64)))
            .collect()
    }

    /// Rolled-up counts of `metric` for UTC days `[from, to]`: `(seam, day, count)`.
    pub async fn daily_counts(
        &self,
        metric: &str,
        s: &Slice<'_>,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, i64, u64)>, StoreError> {
        let mut q = Sql::new();
        let (m, lo, hi) = (q.str(metric), q.int(from), q.int(to));
        let filters = q.rollup_slice(s);
        q.text = format!(
            "SELECT seam, day, CAST(SUM(n) AS BIGINT) AS n FROM rollups \
             WHERE metric = {m} AND day >= {lo} AND day <= {hi}{filters} GROUP BY seam, day"
        );
        q.fetch(self)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("seam")?, r.try_get("day")?, r.try_get::<i64, _>("n")? as u64)))
            .collect()
    }

    /// Rolls up, from scratch, everything recorded: for a database written before the rollups
    /// existed, or filled by other means. Returns how many rollup rows were written.
    pub async fn rebuild_rollups(&self) -> Result<u64, StoreError> {
        let mut counts: BTreeMap<(&'static str, String, i64, String, i64), i64> = BTreeMap::new();
        let sources = [
            (
                "accept",
                "SELECT seam, COALESCE(tier, '') AS tier, accepted_at_ms AS at, (accepted_at_ms - created_at_ms) / 1000 AS secs \
                        FROM handoffs WHERE accepted_at_ms IS NOT NULL",
            ),
            (
                "done",
                "SELECT seam, COALESCE(tier, '') AS tier, closed_at_ms AS at, (closed_at_ms - created_at_ms) / 1000 AS secs \
                      FROM handoffs WHERE state = 'done' AND closed_at_ms IS NOT NULL",
            ),
            (
                "opened",
                "SELECT e.seam AS seam, COALESCE(h.tier, '') AS tier, e.opened_at_ms AS at, -1 AS secs \
                        FROM stall_episodes e JOIN handoffs h ON h.id = e.handoff_id",
            ),
            (
                "unblock",
                "SELECT e.seam AS seam, COALESCE(h.tier, '') AS tier, e.closed_at_ms AS at, (e.closed_at_ms - e.opened_at_ms) / 1000 AS secs \
                         FROM stall_episodes e JOIN handoffs h ON h.id = e.handoff_id WHERE e.closed_at_ms IS NOT NULL",
            ),
        ];
        for (metric, sql) in sources {
            let mut rows = sqlx::query(sql).fetch(self.pool());
            while let Some(r) = futures_util::TryStreamExt::try_next(&mut rows).await? {
                let (at, secs): (i64, i64) = (r.try_get("at")?, r.try_get("secs")?);
                let b = if secs < 0 { 0 } else { bucket(secs) };
                let key = (metric, r.try_get("seam")?, at.div_euclid(86_400_000), r.try_get("tier")?, b);
                *counts.entry(key).or_default() += 1;
            }
        }
        let written = counts.len() as u64;
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM rollups").execute(&mut *tx).await?;
        Tallies(counts).flush(&mut tx).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// p50 and p90 of `metric` for events in `[from, to)`, per seam and bucket.
    pub async fn percentiles(
        &self,
        metric: Metric,
        s: &Slice<'_>,
        from: i64,
        to: i64,
        buckets: Buckets,
    ) -> Result<Vec<PercentileRow>, StoreError> {
        let mut q = Sql::new();
        let (table, seam, at, value) = match metric {
            Metric::Accept => {
                ("handoffs h", "h.seam", "h.accepted_at_ms", "(h.accepted_at_ms - h.created_at_ms) / 1000")
            }
            Metric::Unblock if needs_handoff(s) => (
                "stall_episodes e JOIN handoffs h ON h.id = e.handoff_id",
                "e.seam",
                "e.closed_at_ms",
                "(e.closed_at_ms - e.opened_at_ms) / 1000",
            ),
            Metric::Unblock => {
                ("stall_episodes e", "e.seam", "e.closed_at_ms", "(e.closed_at_ms - e.opened_at_ms) / 1000")
            }
        };
        let (bucket, all) = match buckets {
            Buckets::Windows { split } => (format!("CASE WHEN {at} >= {} THEN 0 ELSE 1 END", q.int(split)), true),
            Buckets::Weeks => (format!("({at} - {}) / {WEEK_MS}", q.int(from)), false),
        };
        let (lo, hi) = (q.int(from), q.int(to));
        let filters = q.slice(seam, s);
        let groups =
            if all { "SELECT g, b, v FROM v UNION ALL SELECT '*', b, v FROM v" } else { "SELECT g, b, v FROM v" };
        q.text = format!(
            "WITH v AS (SELECT {seam} AS g, CAST({bucket} AS BIGINT) AS b, {value} AS v FROM {table} \
                        WHERE {at} >= {lo} AND {at} < {hi}{filters}), \
                  r AS (SELECT g, b, v, ROW_NUMBER() OVER (PARTITION BY g, b ORDER BY v) AS rn, \
                               COUNT(*) OVER (PARTITION BY g, b) AS n FROM ({groups}) x) \
             SELECT g, b, n, MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN v END) AS p50, \
                    MAX(CASE WHEN rn = (n * 90 + 99) / 100 THEN v END) AS p90 \
             FROM r GROUP BY g, b, n ORDER BY g, b"
        );
        q.fetch(self)
            .await?
            .iter()
            .map(|r| {
                let n: i64 = r.try_get("n")?;
                let p = Percentiles { count: n as u64, p50_secs: r.try_get("p50")?, p90_secs: r.try_get("p90")? };
                Ok((r.try_get("g")?, r.try_get("b")?, p))
            })
            .collect()
    }

    /// Stall episodes that began in `[from, to)`, per seam.
    pub async fn stalls_opened(&self, s: &Slice<'_>, from: i64, to: i64) -> Result<Vec<(String, u64)>, StoreError> {
        let mut q = Sql::new();
        let join = if needs_handoff(s) { " JOIN handoffs h ON h.id = e.handoff_id" } else { "" };
        let (lo, hi) = (q.int(from), q.int(to));
        let filters = q.slice("e.seam", s);
        q.text = format!(
            "SELECT e.seam AS seam, COUNT(*) AS n FROM stall_episodes e{join} \
             WHERE e.opened_at_ms >= {lo} AND e.opened_at_ms < {hi}{filters} GROUP BY e.seam"
        );
        counts(q.fetch(self).await?)
    }

    /// Handoffs done per week over the `weeks` full weeks before `to`: `(seam, weeks ago, count)`.
    pub async fn done_per_week(
        &self,
        s: &Slice<'_>,
        weeks: i64,
        to: i64,
    ) -> Result<Vec<(String, i64, u64)>, StoreError> {
        let mut q = Sql::new();
        let last = q.int(to - 1);
        let (lo, hi) = (q.int(to - weeks * WEEK_MS), q.int(to));
        let filters = q.slice("h.seam", s);
        q.text = format!(
            "SELECT h.seam AS seam, CAST(({last} - h.closed_at_ms) / {WEEK_MS} AS BIGINT) AS wk, COUNT(*) AS n \
             FROM handoffs h WHERE h.closed_at_ms >= {lo} AND h.closed_at_ms < {hi} AND h.state = 'done'{filters} \
             GROUP BY h.seam, wk"
        );
        q.fetch(self)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("seam")?, r.try_get("wk")?, r.try_get::<i64, _>("n")? as u64)))
            .collect()
    }

    /// Failure categories recorded in `[split, to)` and in `[from, split)`.
    pub async fn categories(
        &self,
        s: &Slice<'_>,
        from: i64,
        split: i64,
        to: i64,
    ) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let mut q = Sql::new();
        let (cur, prev) = (q.int(split), q.int(split));
        let (lo, hi) = (q.int(from), q.int(to));
        let filters = q.slice("a.seam", s);
        let join = if needs_handoff(s) { " JOIN handoffs h ON h.id = a.handoff_id" } else { "" };
        q.text = format!(
            "SELECT a.category AS category, CAST(SUM(CASE WHEN a.at_ms >= {cur} THEN 1 ELSE 0 END) AS BIGINT) AS cur, \
                    CAST(SUM(CASE WHEN a.at_ms < {prev} THEN 1 ELSE 0 END) AS BIGINT) AS prev \
             FROM artifacts a{join} WHERE a.at_ms >= {lo} AND a.at_ms < {hi}{filters} GROUP BY a.category"
        );
        q.fetch(self)
            .await?
            .iter()
            .map(|r| {
                Ok((r.try_get("category")?, r.try_get::<i64, _>("cur")? as u64, r.try_get::<i64, _>("prev")? as u64))
            })
            .collect()
    }

    /// Handoffs stalled now, oldest first, at most `limit`; and how many there are.
    pub async fn stalled_in(&self, s: &Slice<'_>, limit: i64) -> Result<(Vec<Handoff>, u64), StoreError> {
        let mut q = Sql::new();
        let filters = q.slice("h.seam", s);
        q.text = format!("SELECT COUNT(*) AS n FROM handoffs h WHERE h.stall_kind IS NOT NULL{filters}");
        let total = q.fetch(self).await?.first().map_or(Ok(0), |r| r.try_get::<i64, _>("n"))? as u64;
        let mut q = Sql::new();
        let filters = q.slice("h.seam", s);
        q.text = format!(
            "SELECT h.doc AS doc FROM handoffs h WHERE h.stall_kind IS NOT NULL{filters} ORDER BY h.id LIMIT {limit}"
        );
        let docs = q.fetch(self).await?.iter().map(super::decode_doc).collect::<Result<_, _>>()?;
        Ok((docs, total))
    }

    /// Owners of open handoffs on these seams, with how many each owns.
    pub async fn open_owners(&self, s: &Slice<'_>) -> Result<Vec<(String, u64)>, StoreError> {
        let mut q = Sql::new();
        let filters = q.slice("h.seam", s);
        q.text = format!(
            "SELECT h.owner AS seam, COUNT(*) AS n FROM handoffs h \
             WHERE h.closed_at_ms IS NULL AND h.owner IS NOT NULL{filters} GROUP BY h.owner"
        );
        counts(q.fetch(self).await?)
    }

    /// Requesters of handoffs returned to them and not answered, with how many each.
    pub async fn returned_requesters(&self, s: &Slice<'_>) -> Result<Vec<(String, u64)>, StoreError> {
        let mut q = Sql::new();
        let filters = q.slice("h.seam", s);
        q.text = format!(
            "SELECT h.requester AS seam, COUNT(*) AS n FROM handoffs h WHERE h.state = 'returned'{filters} GROUP BY h.requester"
        );
        counts(q.fetch(self).await?)
    }

    /// Open handoffs that share an open key (made before their seam's `one_open_per` said they may
    /// not), as `(seam, key, handoff)` ordered by seam, key and handoff.
    pub async fn shared_open_keys(&self, s: &Slice<'_>) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut q = Sql::new();
        let filters = q.slice("h.seam", s);
        q.text = format!(
            "SELECT h.seam, h.open_key, h.id FROM handoffs h WHERE h.open_key IS NOT NULL{filters} \
             AND (h.seam, h.open_key) IN (SELECT seam, open_key FROM handoffs WHERE open_key IS NOT NULL \
             GROUP BY seam, open_key HAVING COUNT(*) > 1) ORDER BY h.seam, h.open_key, h.id"
        );
        let rows = q.fetch(self).await?;
        let row = |r: &AnyRow| Ok((r.try_get("seam")?, r.try_get("open_key")?, r.try_get::<i64, _>("id")? as u64));
        rows.iter().map(row).collect()
    }

    /// Handoffs created in `[from, to)` per seam, whatever the seam (to find seams the model lacks).
    pub async fn created_per_seam(&self, from: i64, to: i64) -> Result<Vec<(String, u64)>, StoreError> {
        let mut q = Sql::new();
        let (lo, hi) = (q.int(from), q.int(to));
        q.text = format!(
            "SELECT seam, COUNT(*) AS n FROM handoffs WHERE created_at_ms >= {lo} AND created_at_ms < {hi} GROUP BY seam"
        );
        counts(q.fetch(self).await?)
    }

    /// Handoffs created in `[from, to)` on these seams: the bare count the benchmark compares with.
    pub async fn count_created(&self, seams: &[String], from: i64, to: i64) -> Result<u64, StoreError> {
        let mut q = Sql::new();
        let (lo, hi) = (q.int(from), q.int(to));
        let filters = q.slice("h.seam", &Slice { seams, owner: None, tier: None, category: None });
        q.text = format!(
            "SELECT COUNT(*) AS n FROM handoffs h WHERE h.created_at_ms >= {lo} AND h.created_at_ms < {hi}{filters}"
        );
        Ok(q.fetch(self).await?.first().map_or(Ok(0), |r| r.try_get::<i64, _>("n"))? as u64)
    }
}

fn counts(rows: Vec<AnyRow>) -> Result<Vec<(String, u64)>, StoreError> {
    rows.iter().map(|r| Ok((r.try_get("seam")?, r.try_get::<i64, _>("n")? as u64))).collect()
}
