//! `baton serve` processes on one PostgreSQL database: replicas share the sweep without a
//! duplicate ping, a replica killed with `kill -9` loses nothing, and a PostgreSQL restart is
//! ridden out without restarting the bot.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command as Process;
use std::time::Duration as StdDuration;

use baton::store::Store;
use baton_core::Surface;
use chrono::{Duration, Utc};

use crate::fake_slack::{FakeSlack, TOKEN};
use crate::support::{Replica, app, eventually, postgres_url, spawn_serve};

const ACME: &str = r#"/handoff new sales-to-cs "Acme renewal" account=Acme arr=120000 segment=enterprise"#;

/// Creates `n` sales-to-cs handoffs dated 30 days ago: each is long past its whole ladder, so
/// the first sweep is a catch-up that sends only its highest step (a recalibration) besides the
/// card queued at creation.
async fn seed(store: &Store, n: usize) {
    let app = app(store.clone());
    let then = Utc::now() - Duration::days(30);
    for i in 0..n {
        let line = ACME.replace("account=Acme", &format!("account=Acme{i}"));
        app.handle("rita", Surface::Slack, baton_core::parse(&line).expect("command"), then, None)
            .await
            .expect("create");
    }
}

fn serve_env(slack: &FakeSlack, lease: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SLACK_BOT_TOKEN", TOKEN.to_string()),
        ("SLACK_API_BASE_URL", slack.url.clone()),
        ("BATON_POLL_INTERVAL", "100ms".to_string()),
        ("BATON_DELIVERY_LEASE", lease.to_string()),
    ]
}

fn spawn(db: &str, env: &[(&'static str, String)]) -> Replica {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_serve(db, &env)
}

/// How many times each (kind, handoff) message reached `#cs-handoffs`.
fn channel_tally(slack: &FakeSlack) -> BTreeMap<(String, String), usize> {
    let mut tally = BTreeMap::new();
    for call in slack.ok_calls("chat.postMessage") {
        if call.body["channel"] != "#cs-handoffs" {
            continue;
        }
        let text = call.body["text"].as_str().unwrap_or("");
        let kind = if text.contains("Recalibration") || text.contains("convene") || text.contains("Convening") {
            "recalibration"
        } else {
            "card"
        };
        let label = text.split_whitespace().find(|w| w.starts_with("H-")).unwrap_or("?");
        let label = label.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-').to_string();
        *tally.entry((kind.to_string(), label)).or_insert(0) += 1;
    }
    tally
}

async fn depth(store: &Store) -> i64 {
    store.outbox_depth().await.unwrap_or(i64::MAX)
}

async fn replicas_share_the_work(count: usize) {
    let Some(db) = postgres_url().await else { return };
    let store = Store::open(&db).await.expect("store");
    let slack = FakeSlack::start().await;
    let env = serve_env(&slack, "30s");
    let replicas: Vec<Replica> = (0..count).map(|_| spawn(&db, &env)).collect();
    // Seeded while the replicas poll, so they contend for the same due handoffs.
    seed(&store, 300).await;
    eventually(60, "every handoff swept and every message delivered", || async {
        let fired: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ladder_steps WHERE skipped = 0")
            .fetch_one(store.pool())
            .await
            .unwrap_or(0);
        fired == 300 && depth(&store).await == 0
    })
    .await;
    let tally = channel_tally(&slack);
    let dupes: Vec<_> = tally.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dupes.is_empty(), "duplicates: {dupes:?}");
    assert_eq!(tally.len(), 600, "a card and a recalibration for each of 300 handoffs");
    for r in replicas {
        let log = r.logged();
        assert!(r.terminate(), "SIGTERM ends a replica cleanly:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_sweep_without_a_duplicate_ping() {
    replicas_share_the_work(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_the_sweep_without_a_duplicate_ping() {
    replicas_share_the_work(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_delivery_loses_nothing_and_posts_nothing_twice() {
    let Some(db) = postgres_url().await else { return };
    let store = Store::open(&db).await.expect("store");
    seed(&store, 100).await;
    let slack = FakeSlack::start().await;
    slack.set_delay(StdDuration::from_millis(20));
    let env = serve_env(&slack, "1s");
    let first = spawn(&db, &env);
    eventually(30, "the first replica is delivering", || async { slack.ok_calls("chat.postMessage").len() >= 20 })
        .await;
    first.kill();
    let before = slack.ok_calls("chat.postMessage").len();
    assert!(before < 200, "killed mid-delivery");
    let second = spawn(&db, &env);
    eventually(60, "every message delivered", || async { depth(&store).await == 0 }).await;
    let tally = channel_tally(&slack);
    assert_eq!(tally.len(), 200, "every card and recalibration arrived");
    let dupes: Vec<_> = tally.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dupes.is_empty(), "posted twice after the crash: {dupes:?}");
    assert!(second.terminate());
}

/// A PostgreSQL cluster of the test's own, on its own port, that the test can stop and start.
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl Cluster {
    fn as_postgres(&self, args: &[&str]) -> bool {
        let exe = |name: &str| self.bin.join(name).display().to_string();
        let line =
            args.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.to_string() }).collect::<Vec<_>>();
        let (prog, rest) = line.split_first().expect("command");
        let cmd = format!("{} {}", exe(prog), rest.join(" "));
        let root = Process::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
        let mut process = if root {
            let mut p = Process::new("su");
            p.args(["postgres", "-c", &cmd]);
            p
        } else {
            let mut p = Process::new("sh");
            p.args(["-c", &cmd]);
            p
        };
        let status = process.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status();
        status.map(|s| s.success()).unwrap_or(false)
    }

    fn start() -> Option<Cluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let dir = std::env::temp_dir().join(format!("baton-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let _ = Process::new("chown").args(["postgres:postgres", &dir.display().to_string()]).status();
        let c = Cluster { dir, bin, port };
        let data = c.dir.display().to_string();
        if !c.as_postgres(&["initdb", "-D", &data, "-U", "postgres", "--auth=trust", "-N"]) {
            return None;
        }
        c.up().then_some(c)
    }

    fn up(&self) -> bool {
        let data = self.dir.display().to_string();
        let opts = format!("-p {} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", self.port);
        self.as_postgres(&["pg_ctl", "-D", &data, "-o", &opts, "-l", &format!("{data}/log"), "-w", "start"])
    }

    fn crash(&self) -> bool {
        let data = self.dir.display().to_string();
        self.as_postgres(&["pg_ctl", "-D", &data, "-m", "immediate", "-w", "stop"])
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.display().to_string();
        self.as_postgres(&["pg_ctl", "-D", &data, "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_rides_out_a_postgres_restart_without_losing_a_message() {
    // Only where the shared test server is required (CI) or present: the throwaway cluster
    // needs the same PostgreSQL binaries.
    if postgres_url().await.is_none() {
        return;
    }
    let cluster = Cluster::start().expect("a throwaway PostgreSQL cluster (initdb, pg_ctl) could not start");
    let store = Store::open(&cluster.url()).await.expect("store");
    seed(&store, 60).await;
    let slack = FakeSlack::start().await;
    slack.set_delay(StdDuration::from_millis(40));
    let bot = spawn(&cluster.url(), &serve_env(&slack, "1s"));
    let http = reqwest::Client::new();
    let ready = |url: String| {
        let http = http.clone();
        async move { http.get(format!("{url}/readyz")).send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
    };
    assert_eq!(ready(bot.url.clone()).await, 200);
    eventually(30, "delivery under way", || async { slack.ok_calls("chat.postMessage").len() >= 10 }).await;
    assert!(cluster.crash(), "stop PostgreSQL");
    eventually(10, "readiness reports the database down", || async { ready(bot.url.clone()).await == 503 }).await;
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    assert!(cluster.up(), "start PostgreSQL again");
    eventually(60, "every message delivered after the restart", || async { depth(&store).await == 0 }).await;
    assert_eq!(ready(bot.url.clone()).await, 200, "ready again without a restart");
    let tally = channel_tally(&slack);
    assert_eq!(tally.len(), 120, "every card and recalibration arrived: {tally:?}");
    let dupes: Vec<_> = tally.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dupes.is_empty(), "posted twice across the outage: {dupes:?}\n{}", bot.logged());
    assert!(bot.terminate());
}
