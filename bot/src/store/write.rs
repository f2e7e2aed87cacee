//! Writing decisions inside the caller's transaction: the handoff rows, their events, outbox
//! messages, stall episodes, artifacts, follow-ups and fired ladder steps.
//!
//! A batch of decisions (a sweep, a group of creations) is written with one multi-row statement
//! per table rather than one per decision: round trips, not rows, are what a transaction costs.

use baton_core::{Decision, Event, Handoff};
use sqlx::{Any, Transaction};

use super::history::Tallies;
use super::{StoreError, ms, outbox};

/// A query on either backend, with its parameters.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// Most rows in one multi-row statement. Every distinct row count is a statement of its own in
/// each connection's prepared-statement cache (100 statements), so the counts are kept few.
pub(crate) const ROWS_PER_STATEMENT: usize = 32;

/// `($1, $2), ($3, $4)` for `rows` rows of `cols` columns.
pub(crate) fn placeholders(rows: usize, cols: usize) -> String {
    (0..rows).map(|r| format!("({})", params(r * cols + 1, cols))).collect::<Vec<_>>().join(", ")
}

/// `$first, $first+1, …`: `n` parameters from number `first`.
pub(crate) fn params(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Inserts `rows` with `sql`, its `{rows}` standing for `(…), (…)`: [`ROWS_PER_STATEMENT`] rows
/// per statement, `bind` binding one row's `cols` values. Returns how many rows were inserted.
pub(crate) async fn insert_rows<'q, T>(
    tx: &mut Transaction<'_, Any>,
    sql: &str,
    cols: usize,
    rows: &'q [T],
    bind: impl Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
) -> Result<u64, sqlx::Error> {
    let mut inserted = 0;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = sql.replacen("{rows}", &placeholders(chunk.len(), cols), 1);
        let q = chunk.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), &bind);
        inserted += q.execute(&mut **tx).await?.rows_affected();
    }
    Ok(inserted)
}

/// A decision to write: its handoff is inserted when `expected` is `None`, else updated only if
/// still at version `expected`.
pub(crate) struct Write<'a> {
    pub(crate) d: &'a Decision,
    pub(crate) expected: Option<i64>,
}

fn encode(e: serde_json::Error) -> StoreError {
    StoreError::Db(sqlx::Error::Encode(Box::new(e)))
}

/// Writes `writes` inside `tx` and counts their tallies; returns each handoff's new version.
/// A handoff that moved past its expected version, or a ladder step already recorded, is a
/// [`StoreError::Conflict`] for the whole transaction.
pub(crate) async fn write_decisions(
    tx: &mut Transaction<'_, Any>,
    writes: &[Write<'_>],
    tallies: &mut Tallies,
) -> Result<Vec<i64>, StoreError> {
    let mut versions = Vec::with_capacity(writes.len());
    let mut inserts: Vec<(&Handoff, String, Option<i64>)> = Vec::new();
    for w in writes {
        tallies.add(w.d);
        let h = &w.d.handoff;
        let doc = serde_json::to_string(h).map_err(encode)?;
        let next_check = w.d.next_check.map(ms);
        let Some(v) = w.expected else {
            inserts.push((h, doc, next_check));
            versions.push(1);
            continue;
        };
        let updated = sqlx::query(
            "UPDATE handoffs SET state = $1, owner = $2, stall_kind = $3, updated_at_ms = $4, next_check_ms = $5, version = version + 1, doc = $6, \
             accepted_at_ms = COALESCE(accepted_at_ms, $7), closed_at_ms = COALESCE(closed_at_ms, $8) WHERE id = $9 AND version = $10",
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
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        versions.push(v + 1);
    }
    insert_rows(
        tx,
        "INSERT INTO handoffs (id, seam, state, requester, owner, stall_kind, created_at_ms, updated_at_ms, next_check_ms, version, doc, \
         tier, accepted_at_ms, closed_at_ms) VALUES {rows}",
        14,
        &inserts,
        |q, (h, doc, next_check)| {
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
        },
    )
    .await?;

    let events = writes
        .iter()
        .flat_map(|w| w.d.events.iter().map(|e| (w.d.handoff.id as i64, e)))
        .map(|(id, e)| Ok((id, e, serde_json::to_string(&e.change).map_err(encode)?)))
        .collect::<Result<Vec<(i64, &Event, String)>, StoreError>>()?;
    insert_rows(
        tx,
        "INSERT INTO events (handoff_id, at_ms, actor, surface, kind, state, change) VALUES {rows}",
        7,
        &events,
        |q, (id, e, change)| {
            q.bind(*id)
                .bind(ms(e.at))
                .bind(e.actor.as_str())
                .bind(e.surface.name())
                .bind(e.change.kind())
                .bind(e.state.name())
                .bind(change.as_str())
        },
    )
    .await?;

    let messages: Vec<_> =
        writes.iter().flat_map(|w| w.d.intents.iter().map(|i| (i, w.d.handoff.updated_at))).collect();
    outbox::enqueue_all(tx, &messages).await?;

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
