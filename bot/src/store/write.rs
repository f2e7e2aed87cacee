//! Writing decisions inside the caller's transaction: the handoff rows, their events, outbox
//! messages, stall episodes, artifacts, follow-ups, watchers and fired ladder steps.
//!
//! A batch of decisions (a sweep, a group of creations) is written with one multi-row statement
//! per table rather than one per decision: round trips, not rows, are what a transaction costs.

use baton_core::{Change, Decision, Event, Handoff, HandoffId};
use sqlx::{Any, FromRow, Transaction};

use super::history::Tallies;
use super::outbox::{self, encode};
use super::{Backend, StoreError, ms};

/// A query on either backend, with its parameters.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// Most rows in one multi-row statement. Every distinct statement text (each row count, and on
/// PostgreSQL each combination of counts in a combined [`insert`]) is prepared and kept in each
/// connection's cache of 100 statements, so the counts are kept few; a text pushed out of the
/// cache is prepared again, one round trip more.
pub(crate) const ROWS_PER_STATEMENT: usize = 32;

/// `($1, $2), ($3, $4)` for `rows` rows of `cols` columns.
pub(crate) fn placeholders(rows: usize, cols: usize) -> String {
    placeholders_from(1, rows, cols)
}

/// [`placeholders`] numbered from `$first`.
pub(crate) fn placeholders_from(first: usize, rows: usize, cols: usize) -> String {
    (0..rows).map(|r| format!("({})", params(first + r * cols, cols))).collect::<Vec<_>>().join(", ")
}

/// `$first, $first+1, …`: `n` parameters from number `first`.
pub(crate) fn params(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Binds a range of an insert's rows.
type BindRows<'q> = Box<dyn Fn(AnyQuery<'q>, std::ops::Range<usize>) -> AnyQuery<'q> + Send + Sync + 'q>;

/// The rows of one multi-row insert: `sql` with `{rows}` standing for `(…), (…)`, and how to bind
/// a row's `cols` values.
pub(crate) struct Rows<'q> {
    sql: &'static str,
    cols: usize,
    len: usize,
    bind: BindRows<'q>,
}

impl<'q> Rows<'q> {
    pub(crate) fn new<T: Sync>(
        sql: &'static str,
        cols: usize,
        rows: &'q [T],
        bind: impl Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q> + Send + Sync + 'q,
    ) -> Rows<'q> {
        Rows { sql, cols, len: rows.len(), bind: Box::new(move |q, range| rows[range].iter().fold(q, &bind)) }
    }

    /// Inserts the rows on their own, [`ROWS_PER_STATEMENT`] per statement.
    pub(crate) async fn run(&self, tx: &mut Transaction<'_, Any>) -> Result<(), sqlx::Error> {
        for start in (0..self.len).step_by(ROWS_PER_STATEMENT) {
            let end = (start + ROWS_PER_STATEMENT).min(self.len);
            let sql = self.sql.replacen("{rows}", &placeholders(end - start, self.cols), 1);
            (self.bind)(sqlx::query(sqlx::AssertSqlSafe(sql)), start..end).execute(&mut **tx).await?;
        }
        Ok(())
    }
}

/// Runs inserts in order, [`ROWS_PER_STATEMENT`] rows per statement. On PostgreSQL, inserts that
/// each fit one statement go together as one (data-modifying CTEs; the tables' foreign keys are
/// checked at its end): one round trip instead of one each. SQLite has no round trips to save.
///
/// With `check`, it also answers, for each claim, which stored open handoff (other than the
/// claimant) held its key before these inserts ([`held`]): on PostgreSQL in the same statement
/// when the inserts go together, else in a statement before them.
pub(crate) async fn insert<'q>(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    inserts: &[Rows<'q>],
    check: &[Claim<'_>],
) -> Result<Vec<Option<HandoffId>>, sqlx::Error> {
    let inserts: Vec<&Rows> = inserts.iter().filter(|r| r.len > 0).collect();
    let together = inserts.len() + usize::from(!check.is_empty()) > 1;
    if backend == Backend::Postgres && together && inserts.iter().all(|r| r.len <= ROWS_PER_STATEMENT) {
        let (mut sql, mut first) = (String::new(), 1);
        for (i, r) in inserts.iter().enumerate() {
            let statement = r.sql.replacen("{rows}", &placeholders_from(first, r.len, r.cols), 1);
            first += r.len * r.cols;
            let last = i + 1 == inserts.len() && check.is_empty();
            sql += &match i {
                _ if last => format!(" {statement}"),
                0 => format!("WITH i0 AS ({statement})"),
                _ => format!(", i{i} AS ({statement})"),
            };
        }
        if !check.is_empty() {
            // The main query reads the snapshot the statement began with: not these inserts.
            sql += &format!(" {}", held_sql(first, check.len()));
        }
        let q = inserts.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, r| (r.bind)(q, 0..r.len));
        let q = check.iter().fold(q, |q, (seam, key, _)| q.bind(*seam).bind(*key));
        let rows = q.fetch_all(&mut **tx).await?;
        let stored = rows.iter().map(FromRow::from_row).collect::<Result<Vec<_>, _>>()?;
        return Ok(held(&stored, check));
    }
    let holders = read_held(tx, check).await?;
    for r in inserts {
        r.run(tx).await?;
    }
    Ok(holders)
}

/// Inserts `rows`, [`ROWS_PER_STATEMENT`] per statement.
pub(crate) async fn insert_rows<'q, T: Sync>(
    tx: &mut Transaction<'_, Any>,
    sql: &'static str,
    cols: usize,
    rows: &'q [T],
    bind: impl Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q> + Send + Sync + 'q,
) -> Result<(), sqlx::Error> {
    Rows::new(sql, cols, rows, bind).run(tx).await
}

/// A claim on an open key ([`Decision::claims_key`]): seam, key and the claiming handoff (0 for
/// one not yet numbered).
pub(crate) type Claim<'a> = (&'a str, &'a str, HandoffId);

/// For each claim, the stored open handoff (other than the claimant) that already holds its key.
/// On PostgreSQL the keys are first locked for the transaction ([`lock_keys`]) and read afterwards
/// in a statement of their own: two transactions claiming one key are decided one after the
/// other, and the second sees the first. SQLite writes one transaction at a time.
pub(crate) async fn holders(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    claims: &[Claim<'_>],
) -> Result<Vec<Option<HandoffId>>, sqlx::Error> {
    if backend == Backend::Postgres {
        lock_keys(tx, claims).await?;
    }
    read_held(tx, claims).await
}

/// Locks the claims' keys on PostgreSQL until the transaction ends ([`LOCKS`]).
pub(crate) async fn lock_keys(tx: &mut Transaction<'_, Any>, claims: &[Claim<'_>]) -> Result<(), sqlx::Error> {
    if claims.is_empty() {
        return Ok(());
    }
    let sql = LOCKS.replace("{claims}", &format!("(VALUES {}) AS v(seam, open_key)", placeholders(claims.len(), 2)));
    let q = claims.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, (seam, key, _)| q.bind(*seam).bind(*key));
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Takes a transaction-scoped advisory lock on each distinct (seam, open key) of `{claims}` (a
/// relation with those columns), one after the other in one order, so that two transactions
/// cannot deadlock on them; one row, their count.
pub(crate) const LOCKS: &str = "SELECT count(*) FROM (SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM \
    (SELECT DISTINCT (seam || E'\\x1e' || open_key) COLLATE \"C\" AS k FROM {claims} WHERE open_key IS NOT NULL \
    ORDER BY k) AS o) AS l";

/// [`held`] read in a statement of its own.
async fn read_held(tx: &mut Transaction<'_, Any>, claims: &[Claim<'_>]) -> Result<Vec<Option<HandoffId>>, sqlx::Error> {
    if claims.is_empty() {
        return Ok(Vec::new());
    }
    let q = claims.iter().fold(sqlx::query_as(sqlx::AssertSqlSafe(held_sql(1, claims.len()))), |q, (seam, key, _)| {
        q.bind(*seam).bind(*key)
    });
    let stored: Vec<(i64, String, String)> = q.fetch_all(&mut **tx).await?;
    Ok(held(&stored, claims))
}

/// The stored handoffs holding `n` claims' keys, their parameters numbered from `$first`.
fn held_sql(first: usize, n: usize) -> String {
    let wanted: Vec<String> =
        (0..n).map(|i| format!("(seam = ${} AND open_key = ${})", first + 2 * i, first + 2 * i + 1)).collect();
    format!("SELECT id, seam, open_key FROM handoffs WHERE {} ORDER BY id", wanted.join(" OR "))
}

/// For each claim, the first of the `stored` handoffs (id, seam, open key) other than the
/// claimant holding its key.
fn held(stored: &[(i64, String, String)], claims: &[Claim<'_>]) -> Vec<Option<HandoffId>> {
    let holder = |(seam, key, id): &Claim| {
        let stored = stored.iter().find(|(other, s, k)| *other as HandoffId != *id && s == seam && k == key);
        stored.map(|(other, ..)| *other as HandoffId)
    };
    claims.iter().map(holder).collect()
}

/// A decision to write: its handoff is inserted when `expected` is `None`, else updated only if
/// still at version `expected`.
pub(crate) struct Write<'a> {
    pub(crate) d: &'a Decision,
    pub(crate) expected: Option<i64>,
}

/// Writes `writes` inside `tx` and counts their tallies; returns each handoff's new version.
/// A handoff that moved past its expected version, or a ladder step already recorded, is a
/// [`StoreError::Conflict`] for the whole transaction; an update that claims an open key another
/// open handoff holds is [`StoreError::Taken`]. Creations' claims are checked by their batch (see
/// `Store::create`), before they are numbered; `recheck` are those claims whose keys the batch
/// locked after it read them, checked again in the statement that inserts the handoffs.
pub(crate) async fn write_decisions(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    writes: &[Write<'_>],
    recheck: &[Claim<'_>],
    tallies: &mut Tallies,
) -> Result<Vec<i64>, StoreError> {
    let claims: Vec<Claim> = (writes.iter())
        .filter(|w| w.expected.is_some() && w.d.claims_key)
        .filter_map(|w| Some((w.d.handoff.seam.as_str(), w.d.open_key.as_deref()?, w.d.handoff.id)))
        .collect();
    if let Some(id) = holders(tx, backend, &claims).await?.into_iter().flatten().next() {
        return Err(StoreError::Taken(id));
    }
    let mut versions = Vec::with_capacity(writes.len());
    let mut inserts: Vec<(&Handoff, String, Option<i64>, Option<&str>)> = Vec::new();
    for w in writes {
        tallies.add(w.d);
        let h = &w.d.handoff;
        let doc = serde_json::to_string(h).map_err(encode)?;
        let next_check = w.d.next_check.map(ms);
        let Some(v) = w.expected else {
            inserts.push((h, doc, next_check, w.d.open_key.as_deref()));
            versions.push(1);
            continue;
        };
        let updated = sqlx::query(
            "UPDATE handoffs SET state = $1, owner = $2, stall_kind = $3, updated_at_ms = $4, next_check_ms = $5, version = version + 1, doc = $6, \
             accepted_at_ms = COALESCE(accepted_at_ms, $7), closed_at_ms = COALESCE(closed_at_ms, $8), open_key = $11 WHERE id = $9 AND version = $10",
        )
        .bind(h.state.name())
        .bind(h.owner.as_deref())
        .bind(h.stall.as_ref().map(|s| s.kind.name()))
        .bind(ms(h.updated_at))
        .bind(next_check)
        .bind(doc)
        .bind(h.accepted_at.map(ms))
        .bind(h.closed_at.map(ms))
        .bind(h.id as i64)
        .bind(v)
        .bind(w.d.open_key.as_deref())
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        versions.push(v + 1);
    }
    let events = writes
        .iter()
        .flat_map(|w| w.d.events.iter().map(|e| (w.d.handoff.id as i64, e)))
        .map(|(id, e)| Ok((id, e, serde_json::to_string(&e.change).map_err(encode)?)))
        .collect::<Result<Vec<(i64, &Event, String)>, StoreError>>()?;
    let messages: Vec<_> =
        writes.iter().flat_map(|w| w.d.intents.iter().map(|i| (i, w.d.handoff.updated_at))).collect();
    let messages = outbox::rows(&messages)?;
    let handoffs = Rows::new(
        "INSERT INTO handoffs (id, seam, state, requester, owner, stall_kind, created_at_ms, updated_at_ms, next_check_ms, version, doc, \
         tier, accepted_at_ms, closed_at_ms, open_key) VALUES {rows}",
        15,
        &inserts,
        |q, (h, doc, next_check, open_key)| {
            q.bind(h.id as i64)
                .bind(h.seam.as_str())
                .bind(h.state.name())
                .bind(h.requester.as_str())
                .bind(h.owner.as_deref())
                .bind(h.stall.as_ref().map(|s| s.kind.name()))
                .bind(ms(h.created_at))
                .bind(ms(h.updated_at))
                .bind(*next_check)
                .bind(1_i64)
                .bind(doc.as_str())
                .bind(h.tier.name())
                .bind(h.accepted_at.map(ms))
                .bind(h.closed_at.map(ms))
                .bind(*open_key)
        },
    );
    let events = Rows::new(
        "INSERT INTO events (handoff_id, at_ms, actor, surface, kind, state, change, via) VALUES {rows}",
        8,
        &events,
        |q, (id, e, change)| {
            q.bind(*id)
                .bind(ms(e.at))
                .bind(e.actor.as_str())
                .bind(e.surface.name())
                .bind(e.change.kind())
                .bind(e.state.name())
                .bind(change.as_str())
                .bind(e.via.as_deref())
        },
    );
    let held = insert(tx, backend, &[handoffs, events, outbox::insert(&messages)], recheck).await?;
    if let Some(id) = held.into_iter().flatten().next() {
        return Err(StoreError::Taken(id));
    }

    for w in writes {
        let (d, id) = (w.d, w.d.handoff.id as i64);
        for ep in &d.episodes {
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
        }
        for a in &d.artifacts {
            if a.corrects {
                sqlx::query("DELETE FROM artifacts WHERE handoff_id = $1 AND decision = 'postmortem'")
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
            let fields = serde_json::to_string(&a.fields).map_err(encode)?;
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
            .bind(&d.handoff.seam)
            .execute(&mut **tx)
            .await?;
        }
        for e in &d.events {
            let sql = match e.change {
                Change::Watched => "INSERT INTO watchers (handoff_id, person) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                Change::Unwatched => "DELETE FROM watchers WHERE handoff_id = $1 AND person = $2",
                _ => continue,
            };
            sqlx::query(sql).bind(id).bind(e.actor.as_str()).execute(&mut **tx).await?;
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
    }

    let fired: Vec<_> = writes.iter().flat_map(|w| w.d.fired.iter().map(|f| (w.d.handoff.id as i64, f))).collect();
    insert_rows(
        tx,
        "INSERT INTO ladder_steps (handoff_id, episode, step, action, fired_at_ms, skipped) VALUES {rows}",
        6,
        &fired,
        |q, (id, step)| {
            q.bind(*id)
                .bind(i64::from(step.episode))
                .bind(step.step as i64)
                .bind(step.action.as_str())
                .bind(ms(step.at))
                .bind(i64::from(step.skipped))
        },
    )
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Db(e),
    })?;
    Ok(versions)
}
