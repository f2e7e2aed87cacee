//! `baton bench serve`: the front door under load. Starts `baton serve` (this binary, as its own
//! process, so its memory is its own) on PostgreSQL with a local fake Slack and Discord configured,
//! sends genuinely signed `/handoff new` slash commands open-loop at a fixed rate and closed-loop at
//! a fixed concurrency, measures the same load against `/healthz`, and PostgreSQL's own
//! single-row-insert rate and latency with pgbench at the same concurrency. Figures are printed, not
//! asserted.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// PostgreSQL server URL with rights to create databases.
    pub admin_url: String,
    /// Open-loop request rate.
    pub rate: u64,
    /// Closed-loop concurrency (also pgbench's clients).
    pub concurrency: usize,
    /// Length of each measured run.
    pub duration: Duration,
    /// Interleaved repeats of the ratio measurements (at least 3).
    pub repeats: usize,
}

/// Latencies and outcome counts of one run.
#[derive(Clone, Debug, Default)]
struct Run {
    latencies_us: Vec<u64>,
    errors: u64,
    /// What went wrong the first time, when something did.
    first_error: Option<String>,
    elapsed: Duration,
}

impl Run {
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        if v.is_empty() {
            return 0.0;
        }
        let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1] as f64 / 1000.0
    }

    fn throughput(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{what:<28} {:>9.1}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  max {:>7.2} ms  errors {}",
            self.throughput(),
            self.pct(0.5),
            self.pct(0.99),
            self.pct(0.999),
            self.pct(1.0),
            self.errors
        ) + &self.first_error.as_ref().map(|e| format!(" (first: {e})")).unwrap_or_default()
    }
}

const SECRET: &str = "bench-signing-secret";

/// The server under test: a child process.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Served {
    fn start(db: &str, fake: &str) -> anyhow::Result<Served> {
        let exe = std::env::current_exe()?;
        // Every API client of the model it serves has a token, as in production (no warnings).
        let config = std::env::var(crate::settings::CONFIG).unwrap_or_else(|_| crate::settings::DEFAULT_CONFIG.into());
        let api_tokens: Vec<String> = crate::config::load_files(std::path::Path::new(&config), None)
            .map(|m| m.api.values().map(|c| c.token_env.clone()).collect())
            .unwrap_or_default();
        let mut child = Command::new(exe)
            .envs(api_tokens.iter().map(|var| (var, "bench-api-token-0123456789")))
            .arg("serve")
            .env("BATON_DATABASE_URL", db)
            .env("BATON_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn,baton=info")
            .env("NO_COLOR", "1")
            .env("SLACK_BOT_TOKEN", "xoxb-bench")
            .env("SLACK_SIGNING_SECRET", SECRET)
            .env("SLACK_API_BASE_URL", fake)
            .env("DISCORD_BOT_TOKEN", "bench")
            .env("DISCORD_APPLICATION_ID", "1")
            .env("DISCORD_PUBLIC_KEY", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .env("DISCORD_API_BASE_URL", fake)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting baton serve")?;
        let stderr = child.stderr.take().context("stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                } else if line.contains("WARN") || line.contains("ERROR") || line.contains("panicked") {
                    // What went wrong in the server is part of the figures.
                    eprintln!("baton serve: {line}");
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(30)).context("baton serve did not start")?;
        Ok(Served { child, url })
    }

    /// (peak, current) resident set size in MiB, from /proc.
    fn rss(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

/// One signed `/handoff new` request body, unique by its trigger id.
fn slash_body(n: u64) -> String {
    let text = format!(r#"new sales-to-cs "Bench account {n}" account=Bench{n} arr=1000 segment=smb"#);
    let trigger = format!("bench-{}-{n}", std::process::id());
    serde_urlencoded::to_string([
        ("team_id", "T1"),
        ("channel_id", "C1"),
        ("user_id", "U0RITA0001"),
        ("command", "/handoff"),
        ("text", text.as_str()),
        ("response_url", "https://hooks.slack.com/commands/1/2/3"),
        ("trigger_id", trigger.as_str()),
    ])
    .unwrap_or_default()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Handoff,
    Healthz,
}

/// Sends one request; an error says what came back instead of the expected answer.
async fn one(http: &reqwest::Client, base: &str, target: Target, n: u64) -> Result<(), String> {
    let sent = match target {
        Target::Healthz => http.get(format!("{base}/healthz")).send().await,
        Target::Handoff => {
            let body = slash_body(n);
            let ts = Utc::now().timestamp();
            http.post(format!("{base}/slack/commands"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-slack-request-timestamp", ts.to_string())
                .header("x-slack-signature", crate::slack::verify::sign(SECRET, ts, &body))
                .body(body)
                .send()
                .await
        }
    };
    let response = sent.map_err(|e| format!("{:#}", anyhow::Error::from(e)))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    match status.is_success() && (target == Target::Healthz || text.contains("handed to")) {
        true => Ok(()),
        false => Err(format!("{status}: {}", text.chars().take(200).collect::<String>())),
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Open loop: requests start on a fixed schedule whatever the answers; latency counts from the
/// scheduled start, so a slow server cannot hide its queueing.
async fn open_loop(base: &str, target: Target, rate: u64, duration: Duration) -> Run {
    let http = reqwest::Client::new();
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (http, base) = (http.clone(), base.to_string());
        tasks.spawn(async move {
            let ok = one(&http, &base, target, SEQ.fetch_add(1, Ordering::Relaxed)).await;
            (ok, due.elapsed())
        });
    }
    collect(tasks, start).await
}

/// Closed loop: `concurrency` clients, each sending its next request when the last is answered.
async fn closed_loop(base: &str, target: Target, concurrency: usize, duration: Duration) -> Run {
    let http = reqwest::Client::new();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, base) = (http.clone(), base.to_string());
        tasks.spawn(async move {
            let mut out = Vec::new();
            while start.elapsed() < duration {
                let t = Instant::now();
                let ok = one(&http, &base, target, SEQ.fetch_add(1, Ordering::Relaxed)).await;
                out.push((ok, t.elapsed()));
            }
            out
        });
    }
    let mut run = Run::default();
    while let Some(Ok(results)) = tasks.join_next().await {
        for (ok, latency) in results {
            record(&mut run, ok, latency);
        }
    }
    run.elapsed = start.elapsed();
    run
}

fn record(run: &mut Run, outcome: Result<(), String>, latency: Duration) {
    match outcome {
        Ok(()) => run.latencies_us.push(latency.as_micros() as u64),
        Err(e) => {
            run.errors += 1;
            run.first_error.get_or_insert(e);
        }
    }
}

async fn collect(mut tasks: tokio::task::JoinSet<(Result<(), String>, Duration)>, start: Instant) -> Run {
    let mut run = Run::default();
    while let Some(Ok((ok, latency))) = tasks.join_next().await {
        record(&mut run, ok, latency);
    }
    run.elapsed = start.elapsed();
    run
}

/// What pgbench measured: single-row inserts per second, and the p99 latency of one insert (ms).
struct Pgbench {
    tps: f64,
    p99_ms: f64,
}

/// pgbench's single-row inserts at `clients` over `secs`, with every transaction's latency logged.
fn pgbench(db: &str, clients: usize, secs: u64) -> anyhow::Result<Pgbench> {
    let dir = std::env::temp_dir().join(format!("baton-pgbench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("insert.sql");
    std::fs::write(&script, "INSERT INTO bench_inserts (v) VALUES (:client_id);\n")?;
    let out = Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-c", &clients.to_string(), "-j", "2", "-T", &secs.to_string(), "--log"])
        .arg(format!("--log-prefix={}", dir.join("tx").display()))
        .arg("-f")
        .arg(&script)
        .arg(db)
        .output()
        .context("running pgbench (Debian: apt install postgresql-client)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let tps = text
        .lines()
        .find_map(|l| l.strip_prefix("tps = ").and_then(|r| r.split_whitespace().next()?.parse().ok()))
        .with_context(|| format!("pgbench printed no tps: {text}{}", String::from_utf8_lossy(&out.stderr)))?;
    // Log lines: client, transaction, latency (µs), script, epoch seconds, microseconds.
    let mut run = Run::default();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("tx")) {
            for line in std::fs::read_to_string(&path)?.lines() {
                if let Some(us) = line.split_whitespace().nth(2).and_then(|v| v.parse().ok()) {
                    run.latencies_us.push(us);
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Pgbench { tps, p99_ms: run.pct(0.99) })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Waits until the outbox is delivered, for at most two minutes; returns how many messages were
/// waiting, how long it waited, and how many still wait.
async fn drain(store: &crate::store::Store) -> anyhow::Result<(i64, Duration, i64)> {
    let (waiting, started) = (store.outbox_depth().await?, Instant::now());
    let mut left = waiting;
    while left > 0 && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = store.outbox_depth().await?;
    }
    Ok((waiting, started.elapsed(), left))
}

/// Runs the whole benchmark and prints its figures.
pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let db = crate::bench::Scratch::create(&plan.admin_url, "serve").await?;
    let store = crate::store::Store::open(&db.url).await?;
    sqlx::query("CREATE TABLE bench_inserts (id BIGSERIAL PRIMARY KEY, v BIGINT)").execute(store.pool()).await?;
    let (fake, _) = crate::bench::fake_slack().await?;
    let served = Served::start(&db.url, &fake)?;
    let base = served.url.clone();
    let secs = plan.duration.as_secs().max(1);
    println!(
        "baton bench serve · {} cores · open loop {} req/s · closed loop {} clients · {secs} s per run",
        std::thread::available_parallelism()?,
        plan.rate,
        plan.concurrency
    );
    // Warm up: connections, caches, the first allocations.
    let _ = closed_loop(&base, Target::Handoff, plan.concurrency, Duration::from_secs(2)).await;

    let (_, warm_rss) = served.rss();

    let repeats = plan.repeats.max(3);
    let (mut open_p99, mut open_ratios, mut p99_ratios, mut floor_ratios, mut create_ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut steady_rss = 0.0_f64;
    println!(
        "\n{repeats} interleaved repeats: open loop at {} req/s, closed loop at {} clients",
        plan.rate, plan.concurrency
    );
    for i in 1..=repeats {
        // Each open loop measures the server at its rate, not while it still delivers the cards
        // the previous closed loop queued faster than one channel takes them.
        let (cards, took, left) = drain(&store).await?;
        let open = open_loop(&base, Target::Handoff, plan.rate, plan.duration).await;
        let open_health = open_loop(&base, Target::Healthz, plan.rate, plan.duration).await;
        steady_rss = steady_rss.max(served.rss().1);
        let handoffs = closed_loop(&base, Target::Handoff, plan.concurrency, plan.duration).await;
        // `/healthz` and pgbench are measured on a machine as quiet as the creations had it, not
        // while the server still delivers the cards the closed loop queued (which would slow them
        // and flatter both ratios).
        let (queued, queued_took, queued_left) = drain(&store).await?;
        let health = closed_loop(&base, Target::Healthz, plan.concurrency, plan.duration).await;
        let inserts = pgbench(&db.url, plan.concurrency, secs)?;
        for (when, cards, took, left) in
            [("before the open loops", cards, took, left), ("after the closed loop", queued, queued_took, queued_left)]
        {
            if cards > 0 {
                println!(
                    "[{i}] {when}: waited {:.1} s for {cards} queued cards to be delivered ({:.0}/s){}",
                    took.as_secs_f64(),
                    (cards - left) as f64 / took.as_secs_f64().max(1e-3),
                    if left > 0 { format!("; {left} still waited after two minutes") } else { String::new() }
                );
            }
        }
        println!("{}", open.line(&format!("[{i}] open   /handoff new")));
        println!("{}", open_health.line(&format!("[{i}] open   /healthz")));
        println!("{}", handoffs.line(&format!("[{i}] closed /handoff new")));
        println!("{}", health.line(&format!("[{i}] closed /healthz")));
        println!("[{i}] closed pgbench inserts {:>9.1}/s  p99 {:>7.2} ms", inserts.tps, inserts.p99_ms);
        open_p99.push(open.pct(0.99));
        open_ratios.push(open.pct(0.99) / open_health.pct(0.99).max(1e-3));
        p99_ratios.push(handoffs.pct(0.99) / health.pct(0.99).max(1e-3));
        floor_ratios.push(inserts.p99_ms / health.pct(0.99).max(1e-3));
        create_ratios.push(handoffs.throughput() / inserts.tps.max(1e-9));
    }
    let (peak, now_rss) = served.rss();
    let scrape = reqwest::get(format!("{base}/metrics")).await?.text().await?;
    let counter = |name: &str| -> f64 {
        let line = scrape.lines().find(|l| l.split_whitespace().next() == Some(name));
        line.and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0.0)
    };
    let (creations, transactions) = (counter("baton_creations_total"), counter("baton_creation_transactions_total"));
    let backlog = store.outbox_depth().await?;
    let created: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM handoffs").fetch_one(store.pool()).await?;
    let worst = open_p99.iter().copied().fold(0.0, f64::max);
    println!("\nmedians of {repeats} repeats");
    println!("open loop:   handoff p99 / healthz p99        {:>6.2}   (target at most 3)", median(open_ratios));
    println!("closed loop: handoff p99 / healthz p99        {:>6.2}   (target at most 3)", median(p99_ratios));
    println!(
        "closed loop: pgbench insert p99 / healthz p99 {:>6.2}   (a creation commits at least one insert)",
        median(floor_ratios)
    );
    println!("closed loop: creations/s / pgbench inserts/s  {:>6.2}   (target at least 0.5)", median(create_ratios));
    println!(
        "open-loop handoff p99 at {} req/s: median {:.2} ms, worst {worst:.2} ms (target at most 50 ms)",
        plan.rate,
        median(open_p99)
    );
    println!(
        "\nserver RSS (Slack and Discord configured): after warm-up {warm_rss:.1} MiB · after each open loop at most \
         {steady_rss:.1} MiB · at the end {now_rss:.1} MiB · peak {peak:.1} MiB"
    );
    println!(
        "creations per transaction (group commit, from the server's /metrics): {:.1} ({creations} in {transactions})",
        creations / transactions.max(1.0)
    );
    println!(
        "{created} handoffs created, {backlog} messages still waiting for delivery at the end \
         (the fake Slack has no rate limit; one channel's messages go out in order)"
    );
    drop(served);
    store.close().await;
    db.drop_it().await?;
    Ok(())
}
