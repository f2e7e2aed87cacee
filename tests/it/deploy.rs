//! Operating Baton: metrics scraped from a running server, the deployment files checked against
//! the binary, and a SIGHUP reload of a good and a bad operating model.

use std::time::Duration as StdDuration;

use baton::deliver::{Limits, Outbound};
use baton::serve::Server;
use baton::settings;
use baton::slack::SlackApi;
use baton_core::Surface;
use chrono::Utc;
use yaml_rust2::{Yaml, YamlLoader};

use crate::fake_slack::{FakeSlack, TOKEN};
use crate::support::{Running, app, eventually, repo, spawn_serve, sqlite, t};

/// `baton serve` forgets what the retention policy no longer keeps as it starts (and hourly),
/// however long it was down: here a message delivered 200 days ago and the key of its request.
#[tokio::test]
async fn serve_forgets_deliveries_and_request_keys_past_their_retention() {
    let app = app(sqlite().await);
    let long_ago = Utc::now() - chrono::Duration::days(200);
    let acme =
        baton_core::parse(r#"/handoff new sales-to-cs "Acme renewal" account=Acme arr=120000 segment=enterprise"#)
            .expect("command");
    app.handle("rita", Surface::Slack, acme, long_ago, Some("slack:trigger:1")).await.expect("create");
    let pool = app.store.pool();
    sqlx::query("UPDATE outbox SET delivered_at_ms = created_at_ms").execute(pool).await.expect("delivered");
    let rows = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql).bind(long_ago.timestamp_millis()).fetch_one(pool).await.expect("count")
    };
    // (The handoff's stall, caught up at start, queues messages of its own, now.)
    let old_messages = "SELECT COUNT(*) FROM outbox WHERE created_at_ms <= $1";
    let old_keys = "SELECT COUNT(*) FROM processed_requests WHERE at_ms <= $1";
    assert!(rows(old_messages).await > 0 && rows(old_keys).await == 1);
    let running = Running::start(Server::new(app.clone(), Outbound::default())).await;
    eventually(10, "old deliveries and keys forgotten", || async {
        rows(old_messages).await == 0 && rows(old_keys).await == 0
    })
    .await;
    assert_eq!(rows("SELECT COUNT(*) FROM handoffs WHERE created_at_ms <= $1").await, 1, "the handoff stays");
    assert!(rows("SELECT COUNT(*) FROM events WHERE at_ms <= $1").await >= 1, "its audit trail stays");
    running.stop().await;
}

#[tokio::test]
async fn metrics_report_handoffs_stalls_outbox_ladder_and_request_latency() {
    let slack = FakeSlack::start().await;
    let app = app(sqlite().await);
    let api = SlackApi::new(&slack.url, TOKEN, Limits::default());
    let server = Server {
        poll: StdDuration::from_millis(50),
        ..Server::new(app.clone(), Outbound { slack: Some(api), ..Outbound::default() })
    };
    let running = Running::start(server).await;
    let acme =
        baton_core::parse(r#"/handoff new sales-to-cs "Acme renewal" account=Acme arr=120000 segment=enterprise"#)
            .expect("command");
    app.handle("rita", Surface::Slack, acme, Utc::now() - chrono::Duration::days(30), None).await.expect("create");
    app.sweep(Utc::now()).await.expect("sweep");
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{}/healthz", running.url)).send().await.expect("healthz").status(), 200);
    let scrape = || async {
        http.get(format!("{}/metrics", running.url)).send().await.expect("scrape").text().await.expect("text")
    };
    let text = scrape().await;
    for line in [
        r#"baton_handoffs{state="open"} 1"#,
        r#"baton_open_stalls{seam="sales-to-cs"} 1"#,
        "baton_outbox_depth ",
        "baton_outbox_oldest_age_seconds ",
        "baton_outbox_overdue_seconds ",
        "baton_ladder_steps_fired_total ",
        "baton_creations_total ",
        "baton_creation_transactions_total ",
        r#"baton_http_request_duration_seconds_bucket{route="/healthz",status="200",le="0.005"}"#,
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    eventually(10, "delivery", || async { scrape().await.contains("baton_outbox_depth 0") }).await;
    assert!(scrape().await.contains("baton_outbox_overdue_seconds 0\n"), "delivered, nothing is late");
    running.stop().await;
}

/// A handler that panics answers 500 with a reason, and the server goes on serving: a dropped
/// connection would reach the user as silence.
#[tokio::test]
async fn a_panicking_handler_answers_500_with_a_reason_and_the_server_keeps_serving() {
    async fn boom() -> &'static str {
        panic!("on purpose")
    }
    let router = axum::Router::new()
        .route("/boom", axum::routing::get(boom))
        .route("/fine", axum::routing::get(|| async { "fine" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, baton::serve::harden(router)).await });
    let http = reqwest::Client::new();
    let boom = http.get(format!("{url}/boom")).send().await.expect("an answer, not a dropped connection");
    assert_eq!(boom.status(), 500);
    let text = boom.text().await.expect("body");
    assert!(text.contains("Baton failed on this request"), "{text}");
    // The same connection (the client keeps it alive) and a new one both still work.
    let fine = http.get(format!("{url}/fine")).send().await.expect("still serving");
    assert_eq!(fine.text().await.expect("body"), "fine");
    let again = reqwest::get(format!("{url}/fine")).await.expect("a new connection");
    assert_eq!(again.status(), 200);
    server.abort();
}

fn yaml(path: &str) -> Vec<Yaml> {
    let text = std::fs::read_to_string(repo().join(path)).expect(path);
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path} does not parse: {e}"))
}

fn str_of(y: &Yaml) -> String {
    match y {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn deployment_files_parse_and_name_only_variables_and_ports_the_binary_uses() {
    // Fixed names, and those the shipped model names for its API clients and webhook reviewers.
    let model = crate::support::model();
    let named: Vec<String> = (model.api.values())
        .flat_map(|c| [Some(c.token_env.clone()), c.webhook_env.clone()])
        .chain(model.reviewers.values().map(|r| match &r.kind {
            baton_core::model::ReviewerKind::Webhook { url_env, .. } => Some(url_env.clone()),
            _ => None,
        }))
        .flatten()
        .collect();
    let known = |name: &str, file: &str| {
        assert!(
            settings::ALL.contains(&name) || named.iter().any(|n| n == name),
            "{file} sets `{name}`, which baton does not read"
        )
    };
    let port = settings::DEFAULT_LISTEN.rsplit(':').next().expect("port").to_string();
    // Kubernetes: every document parses; env names, Secret keys and the container port.
    let docs = yaml("deploy/kubernetes/baton.yaml");
    let kinds: Vec<String> = docs.iter().map(|d| str_of(&d["kind"])).collect();
    for kind in ["Secret", "Deployment", "PodDisruptionBudget", "Service"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
    for d in &docs {
        match str_of(&d["kind"]).as_str() {
            "Secret" => {
                for (k, _) in d["stringData"].as_hash().expect("stringData") {
                    known(&str_of(k), "the Secret");
                }
            }
            "Deployment" => {
                assert!(d["spec"]["replicas"].as_i64().expect("replicas") >= 2);
                let c = &d["spec"]["template"]["spec"]["containers"][0];
                for e in c["env"].as_vec().expect("env") {
                    known(&str_of(&e["name"]), "the Deployment");
                    if str_of(&e["name"]) == settings::LISTEN {
                        assert!(str_of(&e["value"]).ends_with(&format!(":{port}")));
                    }
                }
                assert_eq!(str_of(&c["ports"][0]["containerPort"]), port);
                assert_eq!(str_of(&c["readinessProbe"]["httpGet"]["path"]), "/readyz");
                assert_eq!(str_of(&c["livenessProbe"]["httpGet"]["path"]), "/healthz");
            }
            _ => {}
        }
    }
    // Compose.
    let compose = &yaml("deploy/docker-compose.yml")[0];
    for (k, _) in compose["services"]["baton"]["environment"].as_hash().expect("environment") {
        known(&str_of(k), "docker-compose.yml");
    }
    assert_eq!(str_of(&compose["services"]["baton"]["ports"][0]), format!("{port}:{port}"));
    assert!(!compose["services"]["postgres"]["healthcheck"].is_badvalue());
    // Dockerfile and systemd unit.
    let dockerfile = std::fs::read_to_string(repo().join("deploy/Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.contains(&format!("EXPOSE {port}")) && dockerfile.contains("USER 10001"));
    for line in dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("ENV "))
        .take_while(|l| l.starts_with("ENV ") || l.starts_with("    "))
    {
        let name = line.trim_start_matches("ENV ").trim().split('=').next().expect("name");
        known(name, "Dockerfile");
    }
    // The build context leaves out build output and git, and keeps everything the build copies.
    let ignored = std::fs::read_to_string(repo().join(".dockerignore")).expect(".dockerignore");
    let ignored: Vec<&str> = ignored.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    for needed in ["**/target", ".git"] {
        assert!(ignored.contains(&needed), ".dockerignore should leave out {needed}");
    }
    for kept in ["Cargo.toml", "Cargo.lock", "core", "bot", "migrations", "baton.toml", "playbooks"] {
        assert!(repo().join(kept).exists() && !ignored.contains(&kept), "the image build needs {kept}");
    }
    // Alerting rules: each names only metrics the binary records (an alert on a name it does not
    // export would never fire).
    let rules = &yaml("deploy/prometheus/alerts.yaml")[0]["groups"][0]["rules"];
    let source: String = ["bot/src/metrics.rs", "bot/src/deliver.rs", "bot/src/app.rs", "bot/src/store/create.rs"]
        .iter()
        .map(|f| std::fs::read_to_string(repo().join(f)).expect(f))
        .collect();
    let metrics = |expr: &str| -> Vec<String> {
        let name = |rest: &str| rest.split(|c: char| !(c.is_ascii_lowercase() || c == '_')).next().map(str::to_string);
        expr.match_indices("baton_").filter_map(|(i, _)| name(&expr[i..])).collect()
    };
    let rules = rules.as_vec().expect("rules");
    assert!(rules.len() >= 4, "{rules:?}");
    for rule in rules {
        let (name, expr) = (str_of(&rule["alert"]), str_of(&rule["expr"]));
        assert!(!str_of(&rule["annotations"]["summary"]).is_empty(), "{name} has no summary");
        let names = metrics(&expr);
        assert!(!names.is_empty(), "{name}: {expr}");
        for n in names {
            let recorded = n.strip_suffix("_bucket").unwrap_or(&n);
            assert!(source.contains(&format!("\"{recorded}\"")), "{name} uses {n}, which baton does not record");
        }
    }
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/baton.service")).expect("unit");
    for line in unit.lines().filter_map(|l| l.strip_prefix("Environment=")) {
        known(line.split('=').next().expect("name"), "baton.service");
    }
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    let _ = t("2026-01-01T00:00:00Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_good_model_and_keeps_the_last_good_one_when_the_new_one_is_bad() {
    let slack = FakeSlack::start().await;
    let dir = std::env::temp_dir().join(format!("baton-reload-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("playbooks")).expect("dir");
    for entry in std::fs::read_dir(repo().join("playbooks")).expect("playbooks") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.join("playbooks").join(path.file_name().expect("name"))).expect("copy");
    }
    let shipped = std::fs::read_to_string(repo().join("baton.toml")).expect("model");
    let config = dir.join("baton.toml");
    std::fs::write(&config, &shipped).expect("write");
    let db = format!("sqlite://{}", dir.join("baton.db").display());
    let config_arg = config.display().to_string();
    let bot = spawn_serve(
        &db,
        &[
            ("BATON_CONFIG", config_arg.as_str()),
            ("SLACK_BOT_TOKEN", TOKEN),
            ("SLACK_API_BASE_URL", slack.url.as_str()),
            ("BATON_POLL_INTERVAL", "100ms"),
            ("SLACK_SIGNING_SECRET", "reload-secret"),
        ],
    );
    let hup = |pid: String| std::process::Command::new("kill").args(["-HUP", &pid]).status().expect("kill");
    let pid = bot.pid().to_string();
    let http = reqwest::Client::new();
    // Slack's trigger id is a request's key: each command has its own.
    let command = |user: &str, text: &str| {
        let trigger = format!("trig-{user}-{text}");
        let body = serde_urlencoded::to_string([
            ("user_id", user),
            ("command", "/handoff"),
            ("text", text),
            ("channel_id", "C1"),
            ("response_url", &format!("{}/hooks/x", slack.url)),
            ("trigger_id", &trigger),
        ])
        .expect("form");
        let ts = Utc::now().timestamp();
        let sig = baton::slack::verify::sign("reload-secret", ts, &body);
        let request = http
            .post(format!("{}/slack/commands", bot.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", sig)
            .body(body);
        async move { request.send().await.expect("command").json::<serde_json::Value>().await.expect("json") }
    };
    // Ana owns a handoff before she leaves.
    command("U0RITA0001", r#"new sales-to-cs "Beta renewal" account=Beta arr=1 segment=smb"#).await;
    let taken = command("U0ANA00001", "accept H-1").await;
    assert!(taken["text"].as_str().expect("text").starts_with("You own H-1 now"), "{taken}");

    // A broken model is refused: the log and the architects' channel say why; Baton keeps serving.
    std::fs::write(&config, shipped.replace("timezone = \"Europe/London\"", "timezone = \"Europe/Narnia\""))
        .expect("write");
    hup(pid.clone());
    eventually(10, "the refusal reaches the architects", || async { !slack.history("#ops-architecture").is_empty() })
        .await;
    let report = slack.history("#ops-architecture")[0]["text"].as_str().expect("text").to_string();
    assert!(
        report.contains("keeps running on the last good one") && report.contains("unknown time zone `Europe/Narnia`"),
        "{report}"
    );
    assert!(bot.logged().contains("reload refused"), "{}", bot.logged());
    assert_eq!(http.get(format!("{}/readyz", bot.url)).send().await.expect("readyz").status(), 200);

    // A good model is taken: the server restarts in place on the same address. Ana has left it.
    let good = shipped
        .replace("name = \"Customer Success\"", "name = \"Customer Success & Renewals\"")
        .replace("members = [\"ana\", \"ben\", \"carla\"]", "members = [\"ben\", \"carla\"]")
        .replace("[people.ana]\nname = \"Ana Alves\"\nroles = [\"rep\"]\nslack = \"U0ANA00001\"\n", "");
    assert!(!good.contains("\"ana\"") && !good.contains("people.ana"), "Ana is out of the model");
    std::fs::write(&config, good).expect("write");
    hup(pid);
    eventually(10, "the reload", || async { bot.logged().contains("operating model reloaded") }).await;
    eventually(10, "serving again", || async {
        http.get(format!("{}/readyz", bot.url)).send().await.map(|r| r.status().as_u16()).unwrap_or(0) == 200
    })
    .await;
    // The running bot answers with the new model.
    let answer = command("U0RITA0001", r#"new sales-to-cs "Acme renewal" account=Acme arr=1 segment=smb"#).await;
    assert!(answer["text"].as_str().expect("text").contains("handed to Customer Success &amp; Renewals"), "{answer}");
    // Ana's lead hears that what she owned has nobody working on it.
    let left = "H-1 \"Beta renewal\" (sales-to-cs) is owned by ana, who is no longer in the operating model";
    eventually(10, "the lead told", || async { slack.texts("U0CARLA001").iter().any(|t| t.starts_with(left)) }).await;
    assert!(bot.terminate(), "SIGTERM after reloads still ends cleanly");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_logs_are_one_object_per_line() {
    use std::io::BufRead as _;
    let dir = std::env::temp_dir().join(format!("baton-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .current_dir(repo())
        .args(["serve", "--log-format", "json"])
        .env("BATON_DATABASE_URL", format!("sqlite://{}", dir.join("b.db").display()))
        .env("BATON_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"]["message"].is_string(), "{line}");
        let listening = v["fields"]["message"].as_str().is_some_and(|m| m.starts_with("listening on"));
        seen.push(line);
        if listening {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(seen.iter().any(|l| l.contains("SLACK_BOT_TOKEN is not set")), "{seen:?}");
}
