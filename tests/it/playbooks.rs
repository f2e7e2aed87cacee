//! Playbooks end to end: each shipped playbook convened and closed in the console, in Slack and
//! in Discord; the generated operating-model docs are current.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use baton::console::Console;
use baton::deliver::{Limits, Outbound};
use baton::discord::routes::Endpoint;
use baton::discord::{Discord, DiscordApi};
use baton::serve::Server;
use baton::slack::routes::Endpoints;
use baton::slack::{Slack, SlackApi};
use baton_core::Surface;
use chrono::Utc;
use serde_json::{Value, json};
use tokio::io::BufReader;

use crate::fake_discord::{FakeDiscord, TOKEN as DISCORD_TOKEN};
use crate::fake_slack::{FakeSlack, TOKEN as SLACK_TOKEN};
use crate::support::{Running, app, eventually, model, repo, sqlite, t};

/// Every shipped playbook, with a seam to try it on.
const PLAYBOOKS: [(&str, &str); 5] = [
    ("unacknowledged", "sales-to-cs"),
    ("ownership-dispute", "sales-to-cs"),
    ("missing-information", "marketing-to-eng"),
    ("agent-stalled", "eng-to-ops"),
    ("approvals-deadlocked", "eng-to-ops"),
];

fn new_handoff(seam: &str) -> (&'static str, String) {
    match seam {
        "sales-to-cs" => {
            ("rita", r#"/handoff new sales-to-cs "Acme renewal" account=Acme arr=120000 segment=enterprise"#.into())
        }
        "marketing-to-eng" => (
            "mia",
            r#"/handoff new marketing-to-eng "Spring launch" launch_date=2027-03-01 brief=https://docs.example/b"#
                .into(),
        ),
        _ => (
            "eve",
            r#"/handoff new eng-to-ops "Deploy billing" service=billing runbook=https://runbooks.example/b"#.into(),
        ),
    }
}

/// The artifact line each playbook is closed with (its own required extras included).
fn artifact(playbook: &str) -> String {
    let extra = match playbook {
        "missing-information" => r#" missing="the launch brief had no audience""#,
        _ => "",
    };
    format!(
        r#"decision=resume assumption_broke="the seam assumed the queue is watched daily" category=capacity{extra}"#
    )
}

#[tokio::test]
async fn every_shipped_playbook_is_convened_and_closed_in_the_console() {
    for (i, (playbook, seam)) in PLAYBOOKS.iter().enumerate() {
        let id = i + 1;
        let (requester, line) = new_handoff(seam);
        let lead = match *seam {
            "sales-to-cs" => "carla",
            "marketing-to-eng" => "eve",
            _ => "omar",
        };
        let script = format!(
            "as {requester}\n{line}\nas {lead}\n/recalibrate H-{id} {playbook}\nclock +1h\n/handoff record H-{id} decision=resume\n/handoff record H-{id} {}\n",
            artifact(playbook)
        );
        let mut console = Console::new(app(sqlite().await), t("2026-11-30T14:00:00Z"), Vec::new());
        // Each run starts a fresh database, so the handoff is H-1.
        let script = script.replace(&format!("H-{id}"), "H-1");
        console.run(BufReader::new(script.as_bytes()), true).await.expect("script runs");
        assert_eq!(console.failures, 0);
        let out = String::from_utf8(console.into_output()).expect("utf-8");
        let title = model().playbooks[*playbook].title.clone();
        for needle in [
            format!("Recalibration convened for H-1 with the {playbook} playbook."),
            format!("thread \"recalibration H-1 ({playbook})\""),
            "in thread \"recalibration H-1\"".to_string(),
            "assumption_broke: `assumption_broke` is required".to_string(),
            format!("Recorded the {playbook} recalibration of H-1: work resumes"),
            "Assumption that broke: the seam assumed the queue is watched daily".to_string(),
        ] {
            assert!(out.contains(&needle), "{playbook}: {needle:?} missing from:\n{out}");
        }
        assert!(
            out.contains(&title) || out.contains("was not acknowledged"),
            "{playbook}: opening names the playbook:\n{out}"
        );
    }
}

const SECRET: &str = "slack-secret";
const APP_ID: &str = "1200000000000000000";

fn slack_sig(ts: i64, body: &str) -> String {
    baton::slack::verify::sign(SECRET, ts, body)
}

fn discord_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
}

struct Both {
    slack: FakeSlack,
    discord: FakeDiscord,
    app: baton::app::App,
    running: Running,
    http: reqwest::Client,
}

async fn both() -> Both {
    use ed25519_dalek::Signer as _;
    let _ = discord_key().sign(b"warm");
    let slack = FakeSlack::start().await;
    let discord = FakeDiscord::start().await;
    let app = app(sqlite().await);
    let sapi = SlackApi::new(&slack.url, SLACK_TOKEN, Limits::default());
    let dapi = DiscordApi::new(&discord.url, DISCORD_TOKEN, Limits::default());
    let public: String = discord_key().verifying_key().to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let server = Server {
        poll: StdDuration::from_millis(50),
        slack: Endpoints {
            slack: Some(Slack {
                app: app.clone(),
                api: sapi.clone(),
                ack_budget: baton::slack::handler::ACK_BUDGET,
                homes: Default::default(),
            }),
            signing_secret: Some(SECRET.into()),
        },
        discord: Arc::new(Endpoint {
            discord: Some(Discord {
                app: app.clone(),
                api: dapi.clone(),
                application_id: APP_ID.into(),
                ack_budget: baton::discord::handler::ACK_BUDGET,
            }),
            keys: Some(baton::discord::verify::Keys::new(&public).expect("key")),
        }),
        ..Server::new(app.clone(), Outbound { slack: Some(sapi), discord: Some(dapi), ..Outbound::default() })
    };
    let running = Running::start(server).await;
    Both { slack, discord, app, running, http: reqwest::Client::new() }
}

impl Both {
    async fn slash(&self, user: &str, command: &str, text: &str, trigger: &str) -> Value {
        let body = serde_urlencoded::to_string([
            ("team_id", "T1"),
            ("channel_id", "C1"),
            ("user_id", user),
            ("command", command),
            ("text", text),
            ("response_url", &format!("{}/hooks/c/1", self.slack.url)),
            ("trigger_id", trigger),
        ])
        .expect("form");
        let ts = Utc::now().timestamp();
        let resp = self
            .http
            .post(format!("{}/slack/commands", self.running.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", slack_sig(ts, &body))
            .body(body)
            .send()
            .await
            .expect("send");
        resp.json().await.unwrap_or(Value::Null)
    }

    async fn discord_command(&self, id: &str, user: &str, name: &str, options: Value) -> Value {
        use ed25519_dalek::Signer as _;
        let body = json!({"id": id, "application_id": APP_ID, "type": 2, "token": format!("tok-{id}"), "version": 1,
            "channel_id": "1100000000000000001", "member": {"user": {"id": user}},
            "data": {"id": "1", "name": name, "type": 1, "options": options}})
        .to_string();
        let ts = Utc::now().timestamp();
        let sig: String = discord_key()
            .sign(format!("{ts}{body}").as_bytes())
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let resp = self
            .http
            .post(format!("{}/discord/interactions", self.running.url))
            .header("content-type", "application/json")
            .header("x-signature-ed25519", sig)
            .header("x-signature-timestamp", ts.to_string())
            .body(body)
            .send()
            .await
            .expect("send");
        resp.json().await.unwrap_or(Value::Null)
    }

    async fn drained(&self) {
        eventually(10, "the outbox drains", || async { self.app.store.outbox_depth().await.unwrap_or(1) == 0 }).await;
    }
}

#[tokio::test]
async fn every_shipped_playbook_opens_a_slack_thread_and_closes_in_it() {
    let b = both().await;
    // Customer Success works in Slack only, so its recalibrations open Slack threads.
    let seam = &"sales-to-cs";
    for (i, (playbook, _)) in PLAYBOOKS.iter().enumerate() {
        let label = format!("H-{}", i + 1);
        let (requester, line) = new_handoff(seam);
        // One open handoff per account on sales-to-cs: each its own.
        let line = line.replace("account=Acme", &format!("account=Acme{i}"));
        b.app
            .handle(requester, Surface::Slack, baton_core::parse(&line).expect("new"), Utc::now(), None)
            .await
            .expect("create");
        // The receiving lead convenes from Slack.
        let lead = "U0CARLA001";
        let answer = b.slash(lead, "/recalibrate", &format!("{label} {playbook}"), &format!("t-{i}-a")).await;
        assert!(answer["text"].as_str().unwrap_or("").contains("Recalibration convened"), "{playbook}: {answer}");
        b.drained().await;
        let channel = b.app.model.seams[*seam].to.clone();
        let channel = b.app.model.functions[&channel].slack_channel.clone().expect("channel");
        let opening = b
            .slack
            .history(&channel)
            .into_iter()
            .find(|m| {
                m["text"].as_str().unwrap_or("").contains(&format!("for {label}"))
                    || m["text"].as_str().unwrap_or("").contains(&format!("{label} \""))
                        && m["blocks"].to_string().contains("Recalibration: ")
            })
            .unwrap_or_else(|| panic!("{playbook}: no opening post in {channel}: {:?}", b.slack.history(&channel)));
        let text = opening["text"].as_str().expect("text");
        assert!(text.starts_with("<@U"), "{playbook}: participants are mentioned first: {text}");
        let answer =
            b.slash(lead, "/handoff", &format!("record {label} {}", artifact(playbook)), &format!("t-{i}-b")).await;
        assert!(
            answer["text"].as_str().unwrap_or("").contains(&format!("Recorded the {playbook} recalibration")),
            "{playbook}: {answer}"
        );
        b.drained().await;
        let reply = b
            .slack
            .calls()
            .into_iter()
            .find(|c| {
                c.method == "chat.postMessage"
                    && c.body["text"].as_str().unwrap_or("").contains(&format!("Recalibration of {label} recorded"))
            })
            .unwrap_or_else(|| panic!("{playbook}: no outcome posted"));
        assert_eq!(reply.body["thread_ts"], opening["ts"], "{playbook}: the outcome is a reply in the thread");
    }
    let recorded: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM artifacts").fetch_one(b.app.store.pool()).await.expect("count");
    assert_eq!(recorded, 5);
    b.running.stop().await;
}

#[tokio::test]
async fn every_shipped_playbook_opens_a_discord_thread_for_engineering_and_closes_in_it() {
    let b = both().await;
    for (i, (playbook, _)) in PLAYBOOKS.iter().enumerate() {
        let label = format!("H-{}", i + 1);
        let (requester, line) = new_handoff("marketing-to-eng");
        b.app
            .handle(requester, Surface::Slack, baton_core::parse(&line).expect("new"), Utc::now(), None)
            .await
            .expect("create");
        // Eve (engineering lead, Discord 200000000000000001) convenes from Discord.
        let eve = "200000000000000001";
        let answer = b
            .discord_command(
                &format!("c{i}"),
                eve,
                "recalibrate",
                json!([
                {"type": 3, "name": "handoff", "value": label}, {"type": 3, "name": "playbook", "value": playbook}]),
            )
            .await;
        assert!(
            answer["data"]["content"].as_str().unwrap_or("").contains("Recalibration convened"),
            "{playbook}: {answer}"
        );
        b.drained().await;
        let opening = b
            .discord
            .messages("1100000000000000001")
            .into_iter()
            .find(|m| {
                m["content"].as_str().unwrap_or("").contains(&format!("for {label}"))
                    || m["content"].as_str().unwrap_or("").contains(&format!("{label} \""))
            })
            .unwrap_or_else(|| panic!("{playbook}: no opening post"));
        assert!(
            !opening["allowed_mentions"]["users"].as_array().expect("users").is_empty(),
            "{playbook}: participants pinged"
        );
        assert_eq!(opening["allowed_mentions"]["parse"], json!([]));
        let thread = format!("thread-{}", opening["id"].as_str().expect("id"));
        let artifact = artifact(playbook);
        let answer = b
            .discord_command(
                &format!("r{i}"),
                eve,
                "handoff",
                json!([{"type": 1, "name": "record", "options": [
                {"type": 3, "name": "handoff", "value": label}, {"type": 3, "name": "artifact", "value": artifact}]}]),
            )
            .await;
        assert!(answer["data"]["content"].as_str().unwrap_or("").contains("Recorded"), "{playbook}: {answer}");
        b.drained().await;
        assert!(
            b.discord
                .messages(&thread)
                .iter()
                .any(|m| m["content"].as_str().unwrap_or("").contains(&format!("Recalibration of {label} recorded"))),
            "{playbook}: the outcome is posted in the handoff's thread"
        );
    }
    b.running.stop().await;
}

#[test]
fn the_operating_model_docs_are_generated_from_the_live_config() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .current_dir(repo())
        .args(["docs", "--out", "-"])
        .output()
        .expect("baton docs");
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).expect("utf-8");
    let committed = std::fs::read_to_string(repo().join("docs/operating-model.md")).expect("docs/operating-model.md");
    assert!(generated == committed, "docs/operating-model.md is stale: run `baton docs`");
    for needle in [
        "### `sales-to-cs`: Sales → Customer Success",
        "### `agent-stalled`: Agent stalled",
        "| `assumption_broke` | text | yes |",
        "| `source` | url | no | where the work came from (every seam takes it) |",
    ] {
        assert!(generated.contains(needle), "{needle}");
    }
}
