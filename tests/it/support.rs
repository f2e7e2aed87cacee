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
    let dir = std::env::temp_dir().join("baton-tests");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{}.db", unique("t")));
    Store::open(&format!("sqlite://{}", path.display())).await.expect("sqlite store")
}

/// Where the test PostgreSQL server is (trust auth).
fn admin_url() -> String {
    std::env::var("BATON_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

static PG_READY: OnceCell<bool> = OnceCell::const_new();

/// A fresh PostgreSQL database, or `None` (with a loud notice) when no server is reachable and
/// `BATON_REQUIRE_POSTGRES=1` is not set; with it, an unreachable server fails the test.
pub async fn postgres() -> Option<Store> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let ready = *PG_READY
        .get_or_init(|| async {
            match sqlx::AnyConnection::connect(&admin_url()).await {
                Ok(mut c) => {
                    // Drop databases left by earlier runs.
                    let old: Vec<String> = sqlx::query_scalar(
                        "SELECT datname FROM pg_database WHERE datname LIKE 'baton_test_%'",
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
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .expect("create database");
    let base = admin_url();
    let url = match base.rfind('/') {
        Some(i) => format!("{}/{name}", &base[..i]),
        None => panic!("unexpected postgres url {base}"),
    };
    Some(Store::open(&url).await.expect("postgres store"))
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

/// A service on `store` with the shipped model.
pub fn app(store: Store) -> App {
    App::new(store, model())
}
