//! `baton bench escalation`: what a sweep costs as the number of open handoffs grows, and how
//! long ten thousand handoffs falling due at once take to reach a (local, fake) Slack.
//!
//! Each measurement runs in a database of its own, created on the given PostgreSQL server and
//! dropped afterwards. Figures are printed; nothing is asserted (tests check behaviour).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use baton_core::{NewHandoff, OperatingModel, Surface};
use chrono::{DateTime, Duration, Utc};
use sqlx::Connection as _;

use crate::app::{App, SWEEP_BATCH};
use crate::deliver::{Limits, Outbound};
use crate::discord::DiscordApi;
use crate::serve::{self, Server};
use crate::slack::SlackApi;
use crate::store::Store;

/// Rows per multi-row INSERT when loading due handoffs.
const INSERT_CHUNK: usize = 1000;

/// Runs the escalation benchmark against the PostgreSQL server at `admin_url`.
pub async fn escalation(model: OperatingModel, admin_url: &str, opens: &[u64], due: u64) -> anyhow::Result<()> {
    println!("baton bench escalation · {} cores · due per run: {due}", std::thread::available_parallelism()?);
    println!("\n1. Sweep cost against open handoffs (batches of {SWEEP_BATCH}, all {due} due at once)");
    println!("{:>12} {:>10} {:>14} {:>14} {:>14}", "open", "batches", "mean ms/batch", "p99 ms/batch", "µs/handoff");
    let mut means = Vec::new();
    for &open in opens {
        let db = Scratch::create(admin_url, &format!("sweep_{open}")).await?;
        let store = Store::open(&db.url).await?;
        let now = Utc::now();
        fill_idle(&store, open, now).await?;
        load_due(&store, &model, open, due, now).await?;
        sqlx::query("ANALYZE handoffs").execute(store.pool()).await?;
        let app = App::new(store, model.clone());
        let mut times = Vec::new();
        loop {
            let started = Instant::now();
            let swept = app.store.sweep_batch(now, SWEEP_BATCH, |h| baton_core::check(&app.model, h, now)).await?;
            if swept.claimed == 0 {
                break;
            }
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
        times.sort_by(f64::total_cmp);
        let p99 = times.get(((times.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
        println!(
            "{open:>12} {:>10} {mean:>14.2} {p99:>14.2} {:>14.1}",
            times.len(),
            mean * 1000.0 / SWEEP_BATCH as f64
        );
        means.push(mean);
        app.store.close().await;
        db.drop_it().await?;
    }
    if let (Some(first), Some(last)) = (means.first(), means.last())
        && means.len() > 1
    {
        println!("ratio of mean batch time, largest / smallest open count: {:.2}", last / first);
    }

    println!(
        "\n2. Due to delivered: {due} handoffs due at once, one `baton serve` in process, local fake Slack and Discord"
    );
    let db = Scratch::create(admin_url, "deliver").await?;
    let store = Store::open(&db.url).await?;
    let now = Utc::now();
    load_due(&store, &model, 0, due, now).await?;
    let (slack_url, posts) = fake_slack().await?;
    let (discord_url, discord_calls) = fake_discord().await?;
    let app = App::new(store.clone(), model);
    let out = Outbound {
        slack: Some(SlackApi::new(&slack_url, "xoxb-bench", Limits::default())),
        discord: Some(DiscordApi::new(&discord_url, "bench", Limits::default())),
        ..Outbound::default()
    };
    let server = Server { poll: std::time::Duration::from_millis(50), ..Server::new(app, out) };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let running = tokio::spawn(serve::run(server, listener, async {
        let _ = stopped.await;
    }));
    let mut swept_at = None;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let fired: i64 =
            sqlx::query_scalar("SELECT COUNT(DISTINCT handoff_id) FROM ladder_steps").fetch_one(store.pool()).await?;
        if swept_at.is_none() && fired as u64 == due {
            swept_at = Some(started.elapsed());
        }
        if swept_at.is_some() && store.outbox_depth().await? == 0 {
            break;
        }
        anyhow::ensure!(started.elapsed().as_secs() < 600, "not delivered within 10 minutes");
    }
    let total = started.elapsed();
    let _ = stop.send(());
    running.await??;
    let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(store.pool()).await?;
    let dead: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE dead_at_ms IS NOT NULL").fetch_one(store.pool()).await?;
    println!(
        "all swept after {:.2} s; all {messages} messages done after {:.2} s ({:.0} messages/s): {} Slack posts, \
         {} Discord calls, {dead} given up",
        swept_at.unwrap_or_default().as_secs_f64(),
        total.as_secs_f64(),
        messages as f64 / total.as_secs_f64(),
        posts.load(Ordering::Relaxed),
        discord_calls.load(Ordering::Relaxed)
    );
    store.close().await;
    db.drop_it().await?;
    Ok(())
}

/// A database of the benchmark's own.
pub(crate) struct Scratch {
    admin: String,
    name: String,
    pub(crate) url: String,
}

impl Scratch {
    pub(crate) async fn create(admin: &str, label: &str) -> anyhow::Result<Scratch> {
        sqlx::any::install_default_drivers();
        let name = format!("baton_bench_{}_{label}", std::process::id());
        let mut conn = sqlx::AnyConnection::connect(admin).await.with_context(|| format!("connecting to {admin}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut conn).await?;
        let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
        Ok(Scratch { admin: admin.to_string(), url: format!("{base}/{name}"), name })
    }

    pub(crate) async fn drop_it(self) -> anyhow::Result<()> {
        let mut conn = sqlx::AnyConnection::connect(&self.admin).await?;
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await?;
        Ok(())
    }
}

/// `count` open handoffs whose next check is a year away (they are never loaded, so their
/// document is a stub).
async fn fill_idle(store: &Store, count: u64, now: DateTime<Utc>) -> anyhow::Result<()> {
    let started = Instant::now();
    let later = (now + Duration::days(365)).timestamp_millis();
    sqlx::query(
        "INSERT INTO handoffs (id, seam, state, requester, owner, stall_kind, created_at_ms, updated_at_ms, next_check_ms, version, doc) \
         SELECT g, 'sales-to-cs', 'accepted', 'rita', 'ana', NULL, $1, $1, $1 + g, 1, '{}' FROM generate_series(1, $2::bigint) g",
    )
    .bind(now.timestamp_millis())
    .bind(count as i64)
    .bind(later)
    .execute(store.pool())
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT setval('handoff_numbers', {})", count.max(1))))
        .execute(store.pool())
        .await?;
    eprintln!("  (loaded {count} idle open handoffs in {:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// `count` real handoffs, numbered after `after`, created 30 days ago round-robin over the seams,
/// all due a minute ago.
async fn load_due(
    store: &Store,
    model: &OperatingModel,
    after: u64,
    count: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let then = now - Duration::days(30);
    let templates: Vec<_> = model
        .seams
        .values()
        .map(|seam| {
            let fields = required_fields(model, &seam.id);
            let requester = model.functions.get(&seam.from).map(|f| f.lead.clone()).unwrap_or_default();
            let new = NewHandoff { seam: &seam.id, title: "Benchmark handoff", fields: &fields };
            baton_core::create(model, 0, new, &requester, Surface::Console, then)
                .map(|d| d.handoff)
                .map_err(|e| anyhow::anyhow!("seam {}: {e}", seam.id))
        })
        .collect::<Result<_, _>>()?;
    let due_ms = (now - Duration::minutes(1)).timestamp_millis();
    let ids: Vec<u64> = (after + 1..=after + count).collect();
    for chunk in ids.chunks(INSERT_CHUNK) {
        let mut sql = String::from(
            "INSERT INTO handoffs (id, seam, state, requester, owner, stall_kind, created_at_ms, updated_at_ms, next_check_ms, version, doc) VALUES ",
        );
        let mut docs = Vec::with_capacity(chunk.len());
        for (i, id) in chunk.iter().enumerate() {
            let mut h = templates[(*id as usize) % templates.len()].clone();
            h.id = *id;
            if i > 0 {
                sql.push(',');
            }
            let (p, created) = (i * 3, then.timestamp_millis());
            sql.push_str(&format!(
                "({id}, ${}, 'open', ${}, NULL, NULL, {created}, {created}, {due_ms}, 1, ${})",
                p + 1,
                p + 2,
                p + 3
            ));
            docs.push(h);
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for h in &docs {
            q = q.bind(h.seam.clone()).bind(h.requester.clone()).bind(serde_json::to_string(h)?);
        }
        q.execute(store.pool()).await?;
    }
    Ok(())
}

/// Valid values for the required contract fields of `seam`.
pub(crate) fn required_fields(model: &OperatingModel, seam: &str) -> Vec<(String, String)> {
    let Some(seam) = model.seams.get(seam) else { return Vec::new() };
    seam.contract
        .iter()
        .filter(|f| f.required)
        .map(|f| {
            let v = match &f.kind {
                baton_core::model::FieldType::Number => "1000".to_string(),
                baton_core::model::FieldType::Date => "2027-01-15".to_string(),
                baton_core::model::FieldType::Url => "https://example.com/x".to_string(),
                baton_core::model::FieldType::Choice(o) => o.first().cloned().unwrap_or_default(),
                baton_core::model::FieldType::Person => seam.approvers.first().cloned().unwrap_or_default(),
                baton_core::model::FieldType::Text => "bench".to_string(),
            };
            (f.name.clone(), v)
        })
        .collect()
}

/// A local Discord API that accepts every call (messages, threads, edits) and counts them.
async fn fake_discord() -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().fallback(move || {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        async move { axum::Json(serde_json::json!({"id": format!("{}", 1_000_000 + n), "channel_id": "1"})) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, calls))
}

/// A local Slack Web API that accepts everything and counts posts.
pub(crate) async fn fake_slack() -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let posts = Arc::new(AtomicUsize::new(0));
    let counter = posts.clone();
    let app = axum::Router::new().route(
        "/{method}",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                axum::Json(serde_json::json!({"ok": true, "channel": "C1", "ts": format!("1.{n}")}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, posts))
}
