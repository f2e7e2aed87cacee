//! Test helpers: the shipped operating model and fresh stores on both backends.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use baton::app::App;
use baton::store::Store;
use baton_core::OperatingModel;
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The operating model shipped in the repository.
pub fn model() -> OperatingModel {
    baton::config::load_files(&repo().join("baton.toml"), None).unwrap_or_else(|e| panic!("sample config: {e:?}"))
}

/// The shipped operating model as a reload without `gone` (they left) makes it.
pub fn model_without(gone: &[&str]) -> OperatingModel {
    let mut model = model();
    model.people.retain(|p, _| !gone.contains(&p.as_str()));
    for f in model.functions.values_mut() {
        f.members.retain(|m| !gone.contains(&m.as_str()));
    }
    model
}

/// A chat command as typed, parsed.
pub fn cmd(line: &str) -> baton_core::Command {
    baton_core::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// A count the SQL `sql` reads from `store`.
pub async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(store.pool()).await.expect(sql)
}

/// An RFC 3339 instant.
pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("test time").with_timezone(&Utc)
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A fresh SQLite database file.
pub async fn sqlite() -> Store {
    Store::open(&sqlite_url()).await.expect("sqlite store")
}

/// The URL of a fresh SQLite database file (made when first opened).
pub fn sqlite_url() -> String {
    let dir = std::env::temp_dir().join("baton-tests");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{}.db", unique("t")));
    // An earlier run whose process had the same id (ids are reused) may have left one behind.
    for leftover in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{leftover}", path.display()));
    }
    format!("sqlite://{}", path.display())
}

/// Where the test PostgreSQL server is (trust auth).
pub fn admin_url() -> String {
    std::env::var("BATON_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

static PG_READY: OnceCell<bool> = OnceCell::const_new();

/// A fresh PostgreSQL database, or `None` (with a loud notice) when no server is reachable and
/// `BATON_REQUIRE_POSTGRES=1` is not set; with it, an unreachable server fails the test.
pub async fn postgres() -> Option<Store> {
    let url = postgres_url().await?;
    Some(Store::open(&url).await.expect("postgres store"))
}

/// The URL of a fresh, empty PostgreSQL database (see [`postgres`]).
pub async fn postgres_url() -> Option<String> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let ready = *PG_READY
        .get_or_init(|| async {
            match sqlx::AnyConnection::connect(&admin_url()).await {
                Ok(mut c) => {
                    // Drop databases left by earlier runs (`name` cast to text: the Any driver
                    // cannot decode `name`, and the listing then came back empty).
                    let old: Vec<String> = sqlx::query_scalar(
                        "SELECT datname::text FROM pg_database WHERE datname LIKE 'baton_test_%'",
                    )
                    .fetch_all(&mut c)
                    .await
                    .unwrap_or_default();
                    let mine = format!("baton_test_{}_", std::process::id());
                    for db in old.iter().filter(|d| !d.starts_with(&mine)) {
                        let sql = format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                    }
                    true
                }
                Err(e) => {
                    if std::env::var("BATON_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                        panic!("BATON_REQUIRE_POSTGRES=1 but PostgreSQL at {} is unreachable: {e}", admin_url());
                    }
                    eprintln!(
                        "\n!!!!!!!!\n!!! PostgreSQL at {} is unreachable ({e}):\n!!! the PostgreSQL half of the store tests is SKIPPED.\n!!!!!!!!\n",
                        admin_url()
                    );
                    false
                }
            }
        })
        .await;
    if !ready {
        return None;
    }
    let name = unique("baton_test");
    let mut admin = sqlx::AnyConnection::connect(&admin_url()).await.expect("postgres admin connection");
    // One an earlier run whose process had the same id left behind looks like this process's own.
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .expect("drop a leftover database");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .expect("create database");
    let base = admin_url();
    match base.rfind('/') {
        Some(i) => Some(format!("{}/{name}", &base[..i])),
        None => panic!("unexpected postgres url {base}"),
    }
}

/// Runs `case` once per available backend, each on a fresh database.
pub async fn on_each_store<F, Fut>(case: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    case(sqlite().await).await;
    if let Some(pg) = postgres().await {
        case(pg).await;
    }
}

/// [`on_each_store`] for a case that opens the database itself (as replicas do): a fresh SQLite
/// file's URL, then a fresh PostgreSQL database's.
pub async fn on_each_database<F, Fut>(case: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()>,
{
    case(sqlite_url()).await;
    if let Some(pg) = postgres_url().await {
        case(pg).await;
    }
}

/// A handoff nobody accepted in time, then accepted, about ten days before `now`: stall history
/// holding one unblocked stall, for a chart to draw.
pub async fn unblocked_stall(app: &App, now: DateTime<Utc>) {
    use baton_core::{Surface, parse};
    let start = now - chrono::Duration::days(10);
    let new = parse(r#"/handoff new sales-to-cs "Charted" account=Chart arr=1 segment=smb"#).expect("command");
    let reply = app.handle("rita", Surface::Console, new, start, None).await.expect("create");
    let label = reply.split_whitespace().next().expect("the new handoff's label").to_string();
    // Four days on, past the four working hours to accept it whatever the weekday.
    let late = start + chrono::Duration::days(4);
    app.sweep(late).await.expect("sweep");
    let accept = parse(&format!("/handoff accept {label}")).expect("command");
    app.handle("ana", Surface::Console, accept, late + chrono::Duration::hours(1), None).await.expect("accept");
}

/// A service on `store` with the shipped model.
pub fn app(store: Store) -> App {
    App::new(store, model())
}

/// A `baton serve` process.
#[derive(Debug)]
pub struct Replica {
    child: std::process::Child,
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// Everything it logged, for failure messages.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Starts `baton serve` on a free port against `database`, with extra environment variables.
pub fn spawn_serve(database: &str, env: &[(&str, &str)]) -> Replica {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_baton"));
    cmd.current_dir(repo())
        .args(["serve"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BATON_DATABASE_URL", database)
        .env("BATON_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn,baton=info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn baton serve");
    let stderr = child.stderr.take().expect("stderr");
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
            sink.lock().expect("log").push(line);
        }
    });
    match rx.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(url) => Replica { child, url, log },
        Err(_) => {
            let _ = child.kill();
            panic!("baton serve did not start:\n{}", log.lock().expect("log").join("\n"));
        }
    }
}

impl Replica {
    /// Sends SIGTERM and waits; returns whether it exited cleanly.
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
        let status = self.child.wait().expect("wait");
        status.success()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no chance to finish anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its log so far.
    pub fn logged(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `probe` every 50 ms until it returns true, failing with `what` after `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if probe().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out after {secs}s waiting for: {what}");
}

/// `baton serve` running inside the test process, on a free port.
#[derive(Debug)]
pub struct Running {
    /// `http://127.0.0.1:port`.
    pub url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Starts `server`.
    pub async fn start(server: baton::serve::Server) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(baton::serve::run(server, listener, async {
            let _ = stopped.await;
        }));
        Running { url, stop, task }
    }

    /// Shuts it down and checks it stopped cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("join").expect("clean shutdown");
    }
}

/// A write that fails with "injected failure" (a real database error, raised by a trigger) until
/// [`Injected::heal`].
pub struct Injected {
    name: &'static str,
    table: &'static str,
}

/// Makes `event` (`INSERT`, `UPDATE OF column`) on `table` fail, for the rows matching `when` (a
/// condition on `NEW`) or all of them.
pub async fn inject_failure(
    store: &Store,
    name: &'static str,
    event: &str,
    table: &'static str,
    when: Option<&str>,
) -> Injected {
    let ddl = match store.backend() {
        baton::store::Backend::Postgres => vec![
            format!(
                "CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql"
            ),
            format!(
                "CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW {} EXECUTE FUNCTION {name}()",
                when.map(|w| format!("WHEN ({w})")).unwrap_or_default()
            ),
        ],
        baton::store::Backend::Sqlite => vec![format!(
            "CREATE TRIGGER {name} BEFORE {event} ON {table} {} BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            when.map(|w| format!("WHEN {w}")).unwrap_or_default()
        )],
    };
    for sql in ddl {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(store.pool()).await.expect(&sql);
    }
    Injected { name, table }
}

impl Injected {
    /// Lets the writes through again.
    pub async fn heal(self, store: &Store) {
        let sql = match store.backend() {
            baton::store::Backend::Postgres => format!("DROP TRIGGER {} ON {}", self.name, self.table),
            baton::store::Backend::Sqlite => format!("DROP TRIGGER {}", self.name),
        };
        sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(store.pool()).await.expect(&sql);
    }
}
