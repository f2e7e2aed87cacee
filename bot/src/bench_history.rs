//! `baton bench history`: how long `/stalls` takes over a large recorded history.
//!
//! Fills a database of its own (on the given PostgreSQL server, dropped afterwards) with two years
//! of history generated in SQL: `handoffs` handoffs over the shipped seams, `events` audit events,
//! a stall episode on three handoffs in ten, a recalibration artifact on one in thirty, and a few
//! hundred handoffs stalled now, and rolls it up as an upgraded database is. Then it times the
//! 90-day report a team and the whole
//! organisation would ask for, beside the bare SQL time of counting the same window's handoffs.
//! Figures are printed; nothing is asserted.

use std::time::Instant;

use baton_core::history::{Filter, Viewer};
use baton_core::{NewHandoff, OperatingModel, StallKind, Surface};
use chrono::{DateTime, Duration, Utc};

use crate::bench::Scratch;
use crate::report;
use crate::store::Store;

/// Handoffs stalled right now (they carry real documents; the rest are stubs never loaded).
const STALLED_NOW: i64 = 300;

/// What to generate and how often to ask.
#[derive(Clone, Debug)]
pub struct Plan {
    /// PostgreSQL server URL with rights to create databases.
    pub admin_url: String,
    /// Handoffs to generate.
    pub handoffs: i64,
    /// Audit events to generate.
    pub events: i64,
    /// Reports timed per query.
    pub runs: usize,
    /// Keep the generated database (its URL is printed) instead of dropping it.
    pub keep: bool,
}

/// Runs the benchmark.
pub async fn run(model: OperatingModel, plan: Plan) -> anyhow::Result<()> {
    println!(
        "baton bench history · {} cores · {} handoffs, {} events over two years · {} runs per query",
        std::thread::available_parallelism()?,
        plan.handoffs,
        plan.events,
        plan.runs
    );
    let db = Scratch::create(&plan.admin_url, "history").await?;
    let store = Store::open(&db.url).await?;
    let now = Utc::now();
    let started = Instant::now();
    fill(&store, &model, &plan, now).await?;
    println!("(generated in {:.1} s)", started.elapsed().as_secs_f64());

    println!(
        "\n{:<44} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "90-day /stalls", "p50 ms", "p99 ms", "max ms", "count ms", "p99 / count"
    );
    let ana = || Filter { owner: Some("ana".into()), ..Filter::default() };
    for (label, filter) in [
        ("team: ops (1 seam, 20% of handoffs)", Filter { function: Some("ops".into()), ..Filter::default() }),
        ("team: engineering (2 seams, 50%)", Filter { function: Some("engineering".into()), ..Filter::default() }),
        ("org-wide (every seam)", Filter::default()),
        ("one owner, org-wide (exact, from the rows)", ana()),
    ] {
        let scope = baton_core::history::scope(&model, Viewer::Operator, &filter)?;
        // One untimed run warms the caches, as a long-running server's would be.
        report::summary(&store, &model, Viewer::Operator, &filter, now).await?;
        let mut report_ms = Vec::with_capacity(plan.runs);
        let mut count_ms = Vec::with_capacity(plan.runs);
        let from = filter.from(now).timestamp_millis();
        for _ in 0..plan.runs {
            let t = Instant::now();
            report::summary(&store, &model, Viewer::Operator, &filter, now).await?;
            report_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            store.count_created(&scope.seams, from, now.timestamp_millis() + 1).await?;
            count_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let (p50, p99, max) = (pct(&mut report_ms, 0.5), pct(&mut report_ms, 0.99), pct(&mut report_ms, 1.0));
        let count = pct(&mut count_ms, 0.5);
        println!("{label:<44} {p50:>9.1} {p99:>9.1} {max:>9.1} {count:>9.1} {:>12.1}", p99 / count.max(0.001));
    }
    println!("\ntargets: team p99 ≤ 100 ms, org-wide p99 ≤ 500 ms; \"count ms\" is the p50 of a bare");
    println!("SELECT COUNT(*) of the same seams' handoffs created in the same 90 days.");
    store.close().await;
    if plan.keep {
        println!("kept the generated database: {}", db.url);
        return Ok(());
    }
    db.drop_it().await
}

/// Nearest-rank percentile of `v` (sorted in place).
fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
    v.get(rank - 1).copied().unwrap_or(0.0)
}

/// Generates the history in SQL (server-side), then a few hundred real stalled handoffs.
async fn fill(store: &Store, model: &OperatingModel, plan: &Plan, now: DateTime<Utc>) -> anyhow::Result<()> {
    let pool = store.pool();
    let end = now.timestamp_millis();
    let span = Duration::days(730).num_milliseconds();
    let n = plan.handoffs;
    // Seams by share: sales-to-cs 50%, marketing-to-eng 30%, eng-to-ops 20%. Owners and tiers
    // follow the seam; times are spread evenly over two years with pseudo-random durations.
    let step = |sql: &'static str, binds: Vec<i64>| async move {
        let t = Instant::now();
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(b);
        }
        q.execute(pool).await?;
        let what: Vec<&str> = sql.split_whitespace().take(3).collect();
        eprintln!("  {:<28} {:>6.1} s", what.join(" "), t.elapsed().as_secs_f64());
        anyhow::Ok(())
    };
    step(
        "INSERT INTO handoffs (id, seam, state, requester, owner, stall_kind, created_at_ms, updated_at_ms, next_check_ms, \
         version, doc, tier, accepted_at_ms, closed_at_ms) \
         SELECT g, s.seam, CASE WHEN g % 50 = 0 THEN 'cancelled' WHEN g > $1 - $1 / 100 THEN 'in_progress' ELSE 'done' END, \
                s.requester, s.owner, NULL, c, c, NULL, 1, '{}', s.tier, \
                c + (abs(hashint8(g * 7 + 1)::bigint) % 480) * 60000, \
                CASE WHEN g > $1 - $1 / 100 THEN NULL ELSE c + 3600000 + (abs(hashint8(g * 7 + 2)::bigint) % 240) * 3600000 END \
         FROM generate_series(1, $1::bigint) g \
         CROSS JOIN LATERAL (SELECT $2::bigint - $3::bigint + g * ($3::bigint / $1::bigint) AS c) t \
         CROSS JOIN LATERAL (SELECT CASE WHEN g % 10 < 5 THEN 'sales-to-cs' WHEN g % 10 < 8 THEN 'marketing-to-eng' ELSE 'eng-to-ops' END AS seam) k \
         CROSS JOIN LATERAL (SELECT k.seam AS seam, \
                CASE k.seam WHEN 'sales-to-cs' THEN 'rita' WHEN 'marketing-to-eng' THEN 'mia' ELSE 'eve' END AS requester, \
                CASE k.seam WHEN 'sales-to-cs' THEN (ARRAY['ana','ben','carla'])[1 + g % 3] \
                            WHEN 'marketing-to-eng' THEN (ARRAY['eve','eli','emma'])[1 + g % 3] \
                            ELSE (ARRAY['omar','olga'])[1 + g % 2] END AS owner, \
                CASE k.seam WHEN 'sales-to-cs' THEN 'high-stakes' WHEN 'marketing-to-eng' THEN 'reversible' ELSE 'irreversible' END AS tier) s",
        vec![n, end, span],
    )
    .await?;
    step(
        "INSERT INTO stall_episodes (handoff_id, episode, seam, kind, opened_at_ms, closed_at_ms) \
         SELECT id, 1, seam, 'no_progress', created_at_ms + 14400000, \
                created_at_ms + 14400000 + 1800000 + (abs(hashint8(id * 7 + 3)::bigint) % 4320) * 60000 \
         FROM handoffs WHERE id % 10 < 3",
        vec![],
    )
    .await?;
    step(
        "INSERT INTO artifacts (handoff_id, episode, playbook, category, assumption, decision, fields, recorded_by, at_ms, seam) \
         SELECT handoff_id, 1, 'unacknowledged', \
                (ARRAY['missing-information','unclear-ownership','capacity','priorities','tooling'])[1 + abs(hashint8(handoff_id * 7 + 4)::bigint) % 5], \
                'generated', 'resume', '{}', 'eve', closed_at_ms, seam \
         FROM stall_episodes WHERE handoff_id % 30 = 0",
        vec![],
    )
    .await?;
    step(
        "INSERT INTO events (handoff_id, at_ms, actor, surface, kind, state, change) \
         SELECT h.id, h.created_at_ms + k * 600000, 'rita', 'slack', 'noted', 'in_progress', '{}' \
         FROM handoffs h CROSS JOIN generate_series(1, $1::bigint) k",
        vec![(plan.events / n.max(1)).max(1)],
    )
    .await?;
    // Handoffs stalled now, with real documents (the report shows them).
    let seam = &model.seams.values().next().ok_or_else(|| anyhow::anyhow!("the model has no seam"))?.id;
    let fields = crate::bench::required_fields(model, seam);
    let requester = model.seams.get(seam).and_then(|s| model.functions.get(&s.from)).map(|f| f.lead.clone());
    let requester = requester.unwrap_or_default();
    for i in 0..STALLED_NOW {
        let id = n + 1 + i;
        let since = now - Duration::hours(1 + i);
        let new = NewHandoff { seam, title: "Benchmark handoff", fields: &fields };
        let mut h = baton_core::create(model, id as u64, new, &requester, Surface::Console, since - Duration::hours(8))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .handoff;
        h.stall = Some(baton_core::Stall {
            episode: 1,
            kind: StallKind::NoAccept,
            opened_at: since,
            fired: vec![],
            told: vec![],
        });
        sqlx::query(
            "INSERT INTO handoffs (id, seam, state, requester, owner, stall_kind, created_at_ms, updated_at_ms, next_check_ms, \
             version, doc, tier) VALUES ($1, $2, 'open', $3, NULL, 'no_accept', $4, $4, NULL, 1, $5, $6)",
        )
        .bind(id)
        .bind(seam)
        .bind(&requester)
        .bind(h.created_at.timestamp_millis())
        .bind(serde_json::to_string(&h)?)
        .bind(h.tier.name())
        .execute(pool)
        .await?;
    }
    let t = Instant::now();
    let rows = store.rebuild_rollups().await?;
    eprintln!("  {:<28} {:>6.1} s ({rows} rows)", "rolling up", t.elapsed().as_secs_f64());
    step("ANALYZE", vec![]).await
}
