//! Discord end to end: interactions signed with a test Ed25519 key through the real route, a fake
//! Discord API on loopback, and a handoff that travels from Slack to Discord and back.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use baton::app::App;
use baton::deliver::{Limits, Outbound, SendError};
use baton::discord::routes::Endpoint;
use baton::discord::verify::Keys;
use baton::discord::{Discord, DiscordApi};
use baton::serve::Server;
use baton::slack::routes::Endpoints;
use baton::slack::{Slack, SlackApi};
use baton_core::{NewHandoff, OperatingModel, Surface};
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use crate::fake_discord::{FakeDiscord, Scripted, TOKEN as DISCORD_TOKEN};
use crate::fake_slack::{FakeSlack, TOKEN as SLACK_TOKEN};
use crate::support::{Running, eventually, model, model_without, repo, sqlite};

const APP_ID: &str = "1200000000000000000";
const ENG_CHANNEL: &str = "1100000000000000001";
const ELI_NEW_DISCORD: &str = "300000000000000009";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn public_hex() -> String {
    key().verifying_key().to_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn sign(ts: i64, body: &str) -> String {
    let sig = key().sign(format!("{ts}{body}").as_bytes());
    sig.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

struct Bot {
    discord: FakeDiscord,
    slack: FakeSlack,
    app: App,
    running: Running,
    http: reqwest::Client,
}

async fn bot(model: OperatingModel) -> Bot {
    bot_with_budget(model, baton::discord::handler::ACK_BUDGET).await
}

async fn bot_with_budget(model: OperatingModel, ack_budget: StdDuration) -> Bot {
    let discord = FakeDiscord::start().await;
    let slack = FakeSlack::start().await;
    let app = App::new(sqlite().await, model);
    let limits = Limits::default();
    let dapi = DiscordApi::new(&discord.url, DISCORD_TOKEN, limits.clone());
    let sapi = SlackApi::new(&slack.url, SLACK_TOKEN, limits);
    let endpoint = Endpoint {
        discord: Some(Discord { app: app.clone(), api: dapi.clone(), application_id: APP_ID.into(), ack_budget }),
        keys: Some(Keys::new(&public_hex()).expect("key")),
    };
    let server = Server {
        poll: StdDuration::from_millis(50),
        slack: Endpoints {
            slack: Some(Slack {
                app: app.clone(),
                api: sapi.clone(),
                ack_budget: baton::slack::handler::ACK_BUDGET,
                homes: Default::default(),
            }),
            signing_secret: Some("s".into()),
        },
        discord: Arc::new(endpoint),
        ..Server::new(app.clone(), Outbound { slack: Some(sapi), discord: Some(dapi), ..Outbound::default() })
    };
    let running = Running::start(server).await;
    Bot { discord, slack, app, running, http: reqwest::Client::new() }
}

impl Bot {
    async fn post(&self, body: &str, headers: &[(&str, String)]) -> (u16, String) {
        let mut req = self
            .http
            .post(format!("{}/discord/interactions", self.running.url))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.expect("request");
        (resp.status().as_u16(), resp.text().await.unwrap_or_default())
    }

    async fn signed(&self, body: &Value) -> (u16, Value) {
        let body = body.to_string();
        let ts = Utc::now().timestamp();
        let (status, text) = self
            .post(&body, &[("x-signature-ed25519", sign(ts, &body)), ("x-signature-timestamp", ts.to_string())])
            .await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(self.app.store.pool()).await.expect(sql)
    }
}

fn command(id: &str, user: &str, name: &str, options: Value) -> Value {
    json!({"id": id, "application_id": APP_ID, "type": 2, "token": format!("tok-{id}"), "version": 1,
        "channel_id": ENG_CHANNEL, "guild_id": "1", "member": {"user": {"id": user, "username": "x"}},
        "data": {"id": "5", "name": name, "type": 1, "options": options}})
}

fn click(id: &str, user: &str, message: &Value, custom_id: &str) -> Value {
    json!({"id": id, "application_id": APP_ID, "type": 3, "token": format!("tok-{id}"), "version": 1,
        "channel_id": message["channel_id"], "guild_id": "1", "member": {"user": {"id": user}},
        "message": message, "data": {"custom_id": custom_id, "component_type": 2}})
}

/// One property (`label`, `custom_id`) of each button of a message, row after row.
fn buttons<'a>(message: &'a Value, property: &str) -> Vec<&'a str> {
    let rows = message["components"].as_array().map_or(&[][..], Vec::as_slice);
    rows.iter()
        .flat_map(|row| row["components"].as_array().into_iter().flatten())
        .filter_map(|b| b[property].as_str())
        .collect()
}

#[tokio::test]
async fn pings_are_answered_and_bad_signatures_refused() {
    let bot = bot(model()).await;
    let ping = std::fs::read_to_string(repo().join("tests/fixtures/discord/ping.json")).expect("fixture");
    let (status, answer) = bot.signed(&serde_json::from_str(&ping).expect("json")).await;
    assert_eq!((status, answer), (200, json!({"type": 1})));

    let now = Utc::now().timestamp();
    let other = SigningKey::from_bytes(&[9u8; 32]);
    let other_sig: String =
        other.sign(format!("{now}{ping}").as_bytes()).to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    type Case<'a> = (&'a str, String, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        (
            "another key",
            ping.clone(),
            vec![("x-signature-ed25519", other_sig), ("x-signature-timestamp", now.to_string())],
        ),
        ("no signature", ping.clone(), vec![("x-signature-timestamp", now.to_string())]),
        ("no timestamp", ping.clone(), vec![("x-signature-ed25519", sign(now, &ping))]),
        (
            "tampered body",
            ping.replace("\"type\":1", "\"type\":2"),
            vec![("x-signature-ed25519", sign(now, &ping)), ("x-signature-timestamp", now.to_string())],
        ),
        (
            "signature not hex",
            ping.clone(),
            vec![("x-signature-ed25519", "zz".repeat(64)), ("x-signature-timestamp", now.to_string())],
        ),
        (
            "stale by 301 s",
            ping.clone(),
            vec![("x-signature-ed25519", sign(now - 301, &ping)), ("x-signature-timestamp", (now - 301).to_string())],
        ),
        ("empty", String::new(), vec![]),
    ];
    for (what, body, headers) in cases {
        let (status, why) = bot.post(&body, &headers).await;
        assert_eq!(status, 401, "{what}: {why}");
        assert!(!why.is_empty(), "{what}: a refusal says why");
    }
    for table in ["handoffs", "events", "outbox", "processed_requests", "link_codes"] {
        assert_eq!(bot.count(&format!("SELECT COUNT(*) FROM {table}")).await, 0, "{table} untouched");
    }
    bot.running.stop().await;
}

#[tokio::test]
async fn real_payloads_from_strangers_get_told_how_to_link() {
    let bot = bot(model()).await;
    for fixture in ["application_command.json", "message_component.json", "application_command_user_command.json"] {
        let body: Value = serde_json::from_str(
            &std::fs::read_to_string(repo().join("tests/fixtures/discord").join(fixture)).expect("fixture"),
        )
        .expect("json");
        let (status, answer) = bot.signed(&body).await;
        assert_eq!(status, 200, "{fixture}");
        assert_eq!(answer["type"], 4, "{fixture}: {answer}");
        assert_eq!(answer["data"]["flags"], 64, "ephemeral");
        let text = answer["data"]["content"].as_str().expect("content");
        assert!(text.contains("does not know your Discord account") && text.contains("/baton link"), "{text}");
    }
    bot.running.stop().await;
}

/// The creation instant that, at `now`, leaves a marketing-to-eng handoff accepted by Eli with
/// its ladder's Discord escalation as the highest step due (found with the core itself, so the
/// test holds whatever day it runs).
fn creation_for_discord_step(model: &OperatingModel, now: DateTime<Utc>) -> DateTime<Utc> {
    let fields = vec![
        ("launch_date".to_string(), "2027-03-01".to_string()),
        ("brief".to_string(), "https://docs.example/b".to_string()),
    ];
    let new = NewHandoff { seam: "marketing-to-eng", title: "Spring launch", fields: &fields };
    let accept = baton_core::parse("/handoff accept H-1").expect("command");
    let mut t = now - Duration::hours(1);
    for _ in 0..(60 * 24 * 6) {
        let created = baton_core::create(model, 1, new, "mia", Surface::Slack, t).expect("create");
        let accepted =
            baton_core::decide(model, &created.handoff, &accept, "eli", Surface::Slack, t + Duration::minutes(5))
                .expect("accept");
        let checked = baton_core::check(model, &accepted.handoff, now).expect("check");
        let sent: Vec<&str> = checked.fired.iter().filter(|f| !f.skipped).map(|f| f.action.as_str()).collect();
        if sent == ["escalate-discord"] {
            return t;
        }
        t -= Duration::minutes(10);
    }
    panic!("no creation time puts the Discord escalation due now");
}

/// Mia's launch handed off at `created` and accepted by Eli five minutes later, as `model` has it,
/// saved as one transaction (so that a running scheduler cannot check it in between).
async fn launch_accepted_by_eli(app: &App, model: OperatingModel, created: DateTime<Utc>) {
    let launch = baton_core::parse(
        r#"/handoff new marketing-to-eng "Spring launch" launch_date=2027-03-01 brief=https://docs.example/b"#,
    )
    .expect("command");
    let accept = baton_core::parse("/handoff accept H-1").expect("command");
    app.store
        .create(None, false, None, created, move |id| {
            let baton_core::Command::New { seam, title, fields } = &launch else { return None };
            let new = NewHandoff { seam, title, fields };
            let d1 = baton_core::create(&model, id, new, "mia", Surface::Slack, created).ok()?;
            let mut d2 =
                baton_core::decide(&model, &d1.handoff, &accept, "eli", Surface::Slack, created + Duration::minutes(5))
                    .ok()?;
            d2.events.splice(0..0, d1.events);
            d2.intents.splice(0..0, d1.intents);
            Some(d2)
        })
        .await
        .expect("seed");
}

/// Eli, who owns the launch, left the operating model; a Discord account he had linked stays in
/// the database. The Discord escalation pings the receiving lead, not him.
#[tokio::test]
async fn a_discord_escalation_pings_the_lead_not_an_owner_who_left() {
    // The test runs at any hour: the lead's direct message about the launch goes out at once.
    let loud = |mut m: OperatingModel| {
        m.loud_tiers.push(baton_core::model::RiskTier::Reversible);
        m
    };
    let full = loud(model());
    let now = Utc::now();
    let created = creation_for_discord_step(&full, now);
    let bot = bot(loud(model_without(&["eli"]))).await;
    sqlx::query(
        "INSERT INTO identity_links (platform, platform_user, person, linked_at_ms) VALUES ('discord', $1, 'eli', 0)",
    )
    .bind(ELI_NEW_DISCORD)
    .execute(bot.app.store.pool())
    .await
    .expect("link");
    launch_accepted_by_eli(&bot.app, full, created).await;
    bot.app.wake.scheduler.notify_one();
    eventually(10, "the Discord escalation", || async { !bot.discord.messages(ENG_CHANNEL).is_empty() }).await;
    let msg = &bot.discord.messages(ENG_CHANNEL)[0];
    const EVE: &str = "200000000000000001";
    assert!(msg["content"].as_str().expect("content").starts_with(&format!("<@{EVE}>")), "{msg}");
    assert_eq!(msg["allowed_mentions"], json!({"parse": [], "users": [EVE]}), "only Eve, the lead, is pinged");
    // She heard in Slack that the launch has nobody working on it.
    let left = "H-1 \"Spring launch\" (marketing-to-eng) is owned by eli, who is no longer in the operating model";
    eventually(10, "the lead told", || async { bot.slack.texts("U0EVE00001").iter().any(|t| t.starts_with(left)) })
        .await;
}

#[tokio::test]
async fn a_handoff_from_slack_escalates_to_discord_where_the_linked_engineer_acknowledges_it() {
    let mut m = model();
    // Eli's Discord account is not in the config: he links it himself.
    if let Some(eli) = m.people.get_mut("eli") {
        eli.discord = None;
    }
    let now = Utc::now();
    let created = creation_for_discord_step(&m, now);
    let bot = bot(m).await;

    // Eli links his Discord account: the code reaches him in Slack.
    let (_, answer) = bot
        .signed(&command(
            "i1",
            ELI_NEW_DISCORD,
            "baton",
            json!([{"type": 1, "name": "link",
        "options": [{"type": 3, "name": "person", "value": "eli"}]}]),
        ))
        .await;
    assert!(answer["data"]["content"].as_str().expect("content").contains("A code is on its way"), "{answer}");
    eventually(10, "the code in Slack", || async { !bot.slack.history("U0ELI00001").is_empty() }).await;
    let dm = bot.slack.history("U0ELI00001")[0]["text"].as_str().expect("text").to_string();
    let code: String = dm.split("code is ").nth(1).expect("code").chars().take(6).collect();
    let (_, wrong) = bot
        .signed(&command(
            "i2",
            ELI_NEW_DISCORD,
            "baton",
            json!([{"type": 1, "name": "link",
        "options": [{"type": 3, "name": "code", "value": "000000x"}]}]),
        ))
        .await;
    assert!(wrong["data"]["content"].as_str().expect("content").contains("wrong"), "{wrong}");
    let (_, linked) = bot
        .signed(&command(
            "i3",
            ELI_NEW_DISCORD,
            "baton",
            json!([{"type": 1, "name": "link",
        "options": [{"type": 3, "name": "code", "value": code}]}]),
        ))
        .await;
    assert!(linked["data"]["content"].as_str().expect("content").contains("acts as Eli Ek"), "{linked}");

    // Mia handed the launch off in Slack and Eli accepted it there, earlier.
    launch_accepted_by_eli(&bot.app, (*bot.app.model).clone(), created).await;
    bot.app.wake.scheduler.notify_one();
    // The update target is long breached: the scheduler sends the Discord escalation.
    eventually(10, "the Discord escalation", || async { !bot.discord.messages(ENG_CHANNEL).is_empty() }).await;
    let escalations = bot.discord.messages(ENG_CHANNEL);
    assert_eq!(escalations.len(), 1, "{escalations:#?}");
    let msg = &escalations[0];
    assert!(msg["content"].as_str().expect("content").starts_with(&format!("<@{ELI_NEW_DISCORD}>")), "{msg}");
    assert_eq!(msg["allowed_mentions"], json!({"parse": [], "users": [ELI_NEW_DISCORD]}), "only Eli is pinged");
    assert_eq!(buttons(msg, "label"), ["Acknowledge", "Snooze", "I'm blocked"]);
    let thread = format!("thread-{}", msg["id"].as_str().expect("id"));
    // The thread is opened on the message once it is posted.
    eventually(10, "a thread per escalated handoff", || async {
        bot.discord.calls().iter().any(|c| c.route.ends_with("/threads"))
    })
    .await;
    eventually(10, "the card in Slack", || async { !bot.slack.history("#eng-handoffs").is_empty() }).await;
    let card_before = bot.slack.history("#eng-handoffs")[0]["text"].as_str().expect("card").to_string();

    let (_, esc) = bot.signed(&command("i7", ELI_NEW_DISCORD, "escalations", json!([]))).await;
    assert!(esc["data"]["content"].as_str().expect("content").contains("H-1 \"Spring launch\""), "{esc}");

    // Eli acknowledges in Discord, from his linked account; a double click acts once.
    let ack = click("i4", ELI_NEW_DISCORD, msg, "ack:H-1");
    let (status, answer) = bot.signed(&ack).await;
    assert_eq!(status, 200);
    assert!(answer["data"]["content"].as_str().expect("content").contains("Acknowledged H-1"), "{answer}");
    let (_, again) = bot.signed(&click("i5", ELI_NEW_DISCORD, msg, "ack:H-1")).await;
    assert!(again["data"]["content"].as_str().expect("content").contains("already handled"), "{again}");
    assert_eq!(bot.count("SELECT COUNT(*) FROM events WHERE kind = 'acknowledged'").await, 1);
    let ack_event: String = sqlx::query_scalar("SELECT surface FROM events WHERE kind = 'acknowledged'")
        .fetch_one(bot.app.store.pool())
        .await
        .expect("event");
    assert_eq!(ack_event, "discord");
    // The escalation is edited to say who answered it, without its buttons: nobody else takes it up.
    eventually(10, "the escalation says it was answered", || async {
        let now = bot.discord.messages(ENG_CHANNEL);
        now[0]["content"]
            .as_str()
            .is_some_and(|c| c.contains("\n✓ No longer stalled: Eli Ek (Discord) acknowledged it"))
    })
    .await;
    let answered = bot.discord.messages(ENG_CHANNEL);
    assert_eq!(answered.len(), 1, "edited, not posted again: {answered:#?}");
    assert_eq!(answered[0]["components"], json!([]), "{answered:#?}");

    // The Slack card is edited in place to show it.
    eventually(10, "the Slack card updates", || async {
        bot.slack.history("#eng-handoffs").first().and_then(|m| m["text"].as_str()).is_some_and(|t| t != card_before)
    })
    .await;
    assert_eq!(
        bot.slack.history("#eng-handoffs").len(),
        1,
        "{:#?}",
        bot.slack
            .calls()
            .iter()
            .map(|c| (
                c.method.clone(),
                c.body["channel"].clone(),
                c.body["ts"].clone(),
                c.body["text"].as_str().unwrap_or("").chars().take(60).collect::<String>()
            ))
            .collect::<Vec<_>>()
    );
    assert!(!bot.slack.ok_calls("chat.update").is_empty());

    // "I'm blocked" convenes a recalibration, which goes to the handoff's thread.
    let (_, blocked) = bot.signed(&click("i6", ELI_NEW_DISCORD, msg, "blocked:H-1")).await;
    assert!(blocked["data"]["content"].as_str().expect("content").contains("Recalibration convened"), "{blocked}");
    eventually(10, "the recalibration in the thread", || async { !bot.discord.messages(&thread).is_empty() }).await;
    let opening = bot.discord.messages(&thread)[0].clone();
    assert!(opening["content"].as_str().expect("content").contains("Recalibration convened for H-1"));
    // Its Record outcome button asks for the artifact in a modal.
    assert_eq!(opening["components"][0]["components"][0]["custom_id"], "record:H-1", "{opening}");
    let (_, form) = bot.signed(&click("i6b", ELI_NEW_DISCORD, &opening, "record:H-1")).await;
    assert_eq!((form["type"].as_u64(), form["data"]["custom_id"].as_str()), (Some(9), Some("record:H-1")), "{form}");

    // Slash commands answer too.
    let on_h1 =
        |sub: &str| json!([{"type": 1, "name": sub, "options": [{"type": 3, "name": "handoff", "value": "H-1"}]}]);
    let (_, show) = bot.signed(&command("i8", ELI_NEW_DISCORD, "handoff", on_h1("show"))).await;
    assert!(show["data"]["content"].as_str().expect("content").contains("Spring launch"), "{show}");
    // What happened to it, from the audit trail, in words.
    let (_, log) = bot.signed(&command("i8b", ELI_NEW_DISCORD, "handoff", on_h1("log"))).await;
    let log = log["data"]["content"].as_str().expect("content");
    assert!(log.starts_with("H-1 · Spring launch"), "{log}");
    assert!(log.contains("Mia Moreau (Slack) handed it off to Engineering"), "{log}");
    assert!(log.contains("(Discord) convened a recalibration"), "{log}");
    let (_, mine) = bot.signed(&command("i8c", ELI_NEW_DISCORD, "handoff", json!([{"type": 1, "name": "mine"}]))).await;
    let mine = mine["data"]["content"].as_str().expect("content");
    assert!(mine.starts_with("Yours:") && mine.contains("H-1 · Spring launch"), "{mine}");
    let (_, watch) = bot.signed(&command("i8d", ELI_NEW_DISCORD, "handoff", on_h1("watch"))).await;
    let watch = watch["data"]["content"].as_str().expect("content");
    assert_eq!(watch, "✗ nothing to change: you hear of H-1's changes already, as its owner");
    let text = json!({"type": 3, "name": "text", "value": "the brief's link is dead"});
    let comment =
        json!([{"type": 1, "name": "comment", "options": [{"type": 3, "name": "handoff", "value": "H-1"}, text]}]);
    let (_, said) = bot.signed(&command("i8e", ELI_NEW_DISCORD, "handoff", comment)).await;
    assert_eq!(said["data"]["content"], "Comment recorded on H-1; told Mia Moreau.", "{said}");
    let (_, snooze) = bot.signed(&click("i9", ELI_NEW_DISCORD, msg, "snooze:H-1")).await;
    assert_eq!(snooze["type"], 9, "Snooze asks how long and why in a modal: {snooze}");
    bot.running.stop().await;
}

#[tokio::test]
async fn an_engineer_with_only_discord_takes_works_and_finishes_a_handoff_there() {
    const OLGA: &str = "200000000000000005";
    let mut m = model();
    // The test runs at any hour: Operations' direct messages go out at once.
    m.loud_tiers.push(baton_core::model::RiskTier::Irreversible);
    // Operations is on Discord alone: its cards go to its Discord channel.
    const OPS_CHANNEL: &str = "1100000000000000002";
    m.functions.get_mut("ops").expect("ops").slack_channel = None;
    let bot = bot(m).await;
    let said = |answer: &Value| answer["data"]["content"].as_str().expect("content").to_string();
    let on_h = |id: &str, sub: &str, more: &[(&str, &str)]| {
        let mut options = vec![json!({"type": 3, "name": "handoff", "value": id})];
        options.extend(more.iter().map(|(n, v)| json!({"type": 3, "name": n, "value": v})));
        json!([{"type": 1, "name": sub, "options": options}])
    };
    let on = |sub: &str, more: &[(&str, &str)]| on_h("H-1", sub, more);
    // Emma, an engineer with only Discord too, hands the work to Operations there; the contract
    // is checked as anywhere, every problem named.
    const EMMA: &str = "200000000000000003";
    let new = |title: &str, fields: &str| {
        let option = |n: &str, v: &str| json!({"type": 3, "name": n, "value": v});
        let options = [option("seam", "eng-to-ops"), option("title", title), option("fields", fields)];
        json!([{"type": 1, "name": "new", "options": options}])
    };
    let (_, wrong) =
        bot.signed(&command("e1", EMMA, "handoff", new("Rotate certs", "service=edge runbook=soon now"))).await;
    assert_eq!(said(&wrong), "✗ `now` is not field=value: write each field like account=Acme",);
    let (_, wrong) =
        bot.signed(&command("e2", EMMA, "handoff", new("Rotate certs", "service=edge runbook=soon"))).await;
    assert!(said(&wrong).contains("runbook: `soon` is not a link"), "{wrong}");
    let fields = r#"service="edge proxies" runbook=https://runbooks.example/certs"#;
    let (_, made) = bot.signed(&command("e3", EMMA, "handoff", new("Rotate \"edge\" certs", fields))).await;
    assert!(said(&made).starts_with("H-1 handed to Operations on eng-to-ops."), "{made}");
    let h = bot.app.get(1).await.expect("H-1");
    assert_eq!(
        (h.requester.as_str(), h.title.as_str(), h.fields["service"].as_str()),
        ("emma", "Rotate \"edge\" certs", "edge proxies")
    );
    eventually(10, "the card in Operations' channel", || async { !bot.discord.messages(OPS_CHANNEL).is_empty() }).await;
    let queued = &bot.discord.messages(OPS_CHANNEL)[0];
    assert_eq!(buttons(queued, "custom_id"), ["accept:H-1", "return:H-1", "watch:H-1"]);
    // The card opens the handoff's thread, named by its first line.
    eventually(10, "the handoff's thread", || async {
        bot.discord.calls().iter().any(|c| c.route.ends_with("/threads"))
    })
    .await;
    let threads: Vec<Value> = bot
        .discord
        .calls()
        .into_iter()
        .filter(|c| c.route.ends_with("/threads"))
        .map(|c| c.body["name"].clone())
        .collect();
    assert_eq!(threads, [json!("H-1 · Rotate \"edge\" certs · Engineering → Operations · irreversible")]);

    // Olga takes it from her queue by command; her card comes by DM with the owner's buttons.
    let (_, accepted) = bot.signed(&command("o1", OLGA, "handoff", on("accept", &[]))).await;
    assert!(said(&accepted).starts_with("You own H-1 now."), "{accepted}");
    let dm = format!("dm-{OLGA}");
    eventually(10, "Olga's card", || async { !bot.discord.messages(&dm).is_empty() }).await;
    let card = bot.discord.messages(&dm)[0].clone();
    let labels = buttons(&card, "label");
    assert_eq!(labels, ["Acknowledge", "Post update", "Mark done", "Snooze", "Return to requester"]);

    // Progress, with a field, and a snooze, typed; a duration that is not one is named.
    let (_, updated) = bot
        .signed(&command("o2", OLGA, "handoff", on("update", &[("text", "staged on canary window=2026-12-02")])))
        .await;
    assert!(said(&updated).starts_with("Update recorded on H-1."), "{updated}");
    let h = bot.app.get(1).await.expect("H-1");
    assert_eq!(
        (h.last_note.as_deref(), h.fields.get("window").map(String::as_str)),
        (Some("staged on canary"), Some("2026-12-02"))
    );
    let (_, wrong) =
        bot.signed(&command("o3", OLGA, "handoff", on("snooze", &[("for", "soon"), ("reason", "window")]))).await;
    assert!(said(&wrong).starts_with("✗ "), "{wrong}");
    assert!(said(&wrong).contains("soon"), "{wrong}");
    let (_, snoozed) =
        bot.signed(&command("o4", OLGA, "handoff", on("snooze", &[("for", "2h"), ("reason", "change window")]))).await;
    assert!(said(&snoozed).starts_with("H-1 snoozed until"), "{snoozed}");

    // Done from her card's button: it waits for the approvers, the owner cannot approve her own.
    let (_, done) = bot.signed(&click("o5", OLGA, &card, "done:H-1")).await;
    assert_eq!(said(&done), "H-1 is waiting for approval: Omar Osei.", "{done}");
    assert_eq!(bot.app.get(1).await.expect("H-1").state, baton_core::State::AwaitingGate);
    let (_, again) = bot.signed(&command("o6", OLGA, "handoff", on("done", &[]))).await;
    assert_eq!(said(&again), "✗ H-1 is awaiting gate: only work under way can be submitted as done");
    let approve = baton_core::parse("/approve H-1").expect("command");
    bot.app.handle("omar", Surface::Slack, approve, Utc::now(), None).await.expect("approved");
    assert_eq!(bot.app.get(1).await.expect("H-1").state, baton_core::State::Done);
    // Her card was edited in place as it moved (no stale buttons left behind), beside the notice.
    eventually(10, "the outbox drains", || async { bot.app.store.outbox_depth().await.unwrap_or(1) == 0 }).await;
    // The channel's card too: one message, edited as it moved.
    let channel = bot.discord.messages(OPS_CHANNEL);
    assert_eq!(channel.len(), 1, "{channel:#?}");
    let text = channel[0]["content"].as_str().expect("card");
    assert!(text.contains("State: done") && text.contains("Owner: Olga Orlova"), "{text}");
    let dms = bot.discord.messages(&dm);
    let contents: Vec<&str> = dms.iter().filter_map(|m| m["content"].as_str()).collect();
    assert_eq!(contents.len(), 2, "{contents:#?}");
    assert!(contents[0].contains("State: done") && dms[0]["components"] == json!([]), "{:?}", dms[0]);
    assert_eq!(contents[1], "H-1 \"Rotate \"edge\" certs\" is done.");
    let surfaces: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, surface FROM events WHERE actor = 'olga' ORDER BY id")
            .fetch_all(bot.app.store.pool())
            .await
            .expect("events");
    let kinds: Vec<&str> = surfaces.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["accepted", "updated", "snoozed", "submitted_for_gate"]);
    assert!(surfaces.iter().all(|(_, s)| s == "discord"), "{surfaces:?}");

    // A second one, corrected by its requester, given to someone else by its lead, and called off.
    let (_, made) = bot.signed(&command("e4", EMMA, "handoff", new("Rotate keys", fields))).await;
    assert!(said(&made).starts_with("H-2 handed to Operations"), "{made}");
    let (_, edited) = bot
        .signed(&command(
            "e4b",
            EMMA,
            "handoff",
            on_h("H-2", "edit", &[("text", "service=api the keys are the API's")]),
        ))
        .await;
    assert!(said(&edited).starts_with("H-2 changed: service edge proxies → api."), "{edited}");
    const OMAR: &str = "200000000000000004";
    let to = json!([{"type": 1, "name": "reassign", "options": [
        {"type": 3, "name": "handoff", "value": "H-2"}, {"type": 6, "name": "to", "value": OLGA}]}]);
    let (_, given) = bot.signed(&command("e5", OMAR, "handoff", to)).await;
    assert!(said(&given).starts_with("H-2 reassigned to Olga Orlova; they must accept it."), "{given}");
    let (_, cancelled) =
        bot.signed(&command("e6", EMMA, "handoff", on_h("H-2", "cancel", &[("text", "merged into H-1")]))).await;
    assert_eq!(said(&cancelled), "H-2 cancelled.");
    assert_eq!(bot.app.get(2).await.expect("H-2").state, baton_core::State::Cancelled);
    bot.running.stop().await;
}

#[tokio::test]
async fn discord_rate_limits_are_honoured_per_bucket_and_globally() {
    let fake = FakeDiscord::start().await;
    let api = DiscordApi::new(&fake.url, DISCORD_TOKEN, Limits::default());
    let t0 = Utc::now();
    let body = json!({"content": "hi", "allowed_mentions": {"parse": []}});
    // A global 429: nothing is sent anywhere until it lifts.
    fake.script(vec![Scripted::RateLimited(1.5, true)]);
    let err = api.post("1", &body, t0).await.expect_err("429");
    assert!(matches!(err, SendError::RateLimited { after: a, .. } if a == Duration::milliseconds(1500)), "{err:?}");
    let sent = fake.calls().len();
    assert!(matches!(api.post("2", &body, t0 + Duration::seconds(1)).await, Err(SendError::Held(_))));
    assert_eq!(fake.calls().len(), sent, "held without a request");
    api.post("2", &body, t0 + Duration::seconds(2)).await.expect("after the hold");
    // A route's bucket emptied: that route waits, another does not.
    fake.script(vec![Scripted::BucketEmpty(1.0)]);
    api.post("3", &body, t0 + Duration::seconds(3)).await.expect("sent, bucket now empty");
    assert!(matches!(api.post("3", &body, t0 + Duration::milliseconds(3500)).await, Err(SendError::Held(_))));
    api.post("4", &body, t0 + Duration::milliseconds(3500)).await.expect("another bucket");
    api.post("3", &body, t0 + Duration::seconds(5)).await.expect("bucket reset");
}

/// An error that will not go away says what to do about it, for the lead who reads the dead letter.
#[tokio::test]
async fn a_permanent_discord_error_says_how_to_fix_it() {
    let fake = FakeDiscord::start().await;
    let api = DiscordApi::new(&fake.url, DISCORD_TOKEN, Limits::default());
    let body = json!({"content": "hi", "allowed_mentions": {"parse": []}});
    fake.script(vec![Scripted::Error(403, 50013, "Missing Permissions")]);
    let Err(SendError::Permanent(why)) = api.post("1", &body, Utc::now()).await else { panic!("a permanent error") };
    assert!(why.contains("Missing Permissions"), "{why}");
    assert!(why.ends_with("(Baton's role lacks a permission there: grant it Send Messages, Create Public Threads and Send Messages in Threads)"), "{why}");
    // One Baton has no advice for is passed on as Discord said it.
    fake.script(vec![Scripted::Error(400, 50035, "Invalid Form Body")]);
    let Err(SendError::Permanent(why)) = api.post("1", &body, Utc::now()).await else { panic!("a permanent error") };
    assert!(why.ends_with(r#"{"code":50035,"message":"Invalid Form Body"}"#), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baton_discord_register_installs_the_commands() {
    let fake = FakeDiscord::start().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .current_dir(repo())
        .args(["discord", "register", "--guild", "42"])
        .env("DISCORD_BOT_TOKEN", DISCORD_TOKEN)
        .env("DISCORD_APPLICATION_ID", APP_ID)
        .env("DISCORD_API_BASE_URL", &fake.url)
        .env("RUST_LOG", "error")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("registered 7 commands in guild 42"), "{stdout}");
    let call = fake.calls().into_iter().find(|c| c.method == "PUT").expect("PUT");
    assert_eq!(call.route, format!("applications/{APP_ID}/guilds/42/commands"));
    let names: Vec<&str> = call.body.as_array().expect("array").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["ack", "escalations", "handoff", "away", "stalls", "recalibrate", "baton"]);
}

/// What a scripted Gateway does when a session identifies: the `n`th session (from 0) is sent
/// these frames, then closed with the code, if any.
type GatewayScript = fn(usize) -> (Vec<Value>, Option<u16>);

/// A fake Discord Gateway on loopback that `fake` hands out; returns the identify payloads it
/// receives, session by session.
async fn gateway(fake: &FakeDiscord, script: GatewayScript) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    fake.set_gateway(&format!("ws://{}", listener.local_addr().expect("addr")));
    let (identified_tx, identified) = tokio::sync::mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let mut ws = tokio_tungstenite::accept_async(tcp).await.expect("handshake");
            let hello = json!({"op": 10, "d": {"heartbeat_interval": 45000}});
            ws.send(Message::Text(hello.to_string().into())).await.expect("hello");
            while let Some(Ok(Message::Text(t))) = ws.next().await {
                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                if v["op"] != 2 {
                    continue;
                }
                let _ = identified_tx.send(v);
                let (frames, close) = script(n);
                let ready = json!({"op": 0, "s": 1, "t": "READY", "d": {"session_id": "s"}});
                for (s, frame) in std::iter::once(ready).chain(frames).enumerate() {
                    let mut frame = frame;
                    frame["s"] = json!(s + 1);
                    ws.send(Message::Text(frame.to_string().into())).await.expect("dispatch");
                }
                if let Some(code) = close {
                    let frame = CloseFrame { code: code.into(), reason: "closed by the script".into() };
                    let _ = ws.send(Message::Close(Some(frame))).await;
                }
            }
        }
    });
    identified
}

/// A server that speaks to Discord over the Gateway only.
async fn over_gateway(fake: &FakeDiscord, app: &App) -> Running {
    let api = DiscordApi::new(&fake.url, DISCORD_TOKEN, Limits::default());
    let endpoint = Endpoint {
        discord: Some(Discord {
            app: app.clone(),
            api: api.clone(),
            application_id: APP_ID.into(),
            ack_budget: baton::discord::handler::ACK_BUDGET,
        }),
        keys: None,
    };
    let server = Server {
        discord: Arc::new(endpoint),
        discord_gateway: true,
        ..Server::new(app.clone(), Outbound { discord: Some(api), ..Outbound::default() })
    };
    Running::start(server).await
}

async fn next(identified: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(StdDuration::from_secs(10), identified.recv()).await.expect("identify").expect("sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_gateway_interactions_reach_the_same_handlers_and_are_answered_by_callback() {
    let fake = FakeDiscord::start().await;
    let mut identified = gateway(&fake, |_| {
        let interaction = command("g1", "200000000000000002", "stalls", json!([]));
        (vec![json!({"op": 0, "t": "INTERACTION_CREATE", "d": interaction})], None)
    })
    .await;
    let app = App::new(sqlite().await, model());
    let running = over_gateway(&fake, &app).await;
    let identify = next(&mut identified).await;
    assert_eq!(identify["d"]["token"], DISCORD_TOKEN);
    eventually(10, "the callback", || async {
        fake.calls().iter().any(|c| c.route == "interactions/g1/tok-g1/callback")
    })
    .await;
    let callback = fake.calls().into_iter().find(|c| c.route == "interactions/g1/tok-g1/callback").expect("callback");
    assert_eq!(callback.status, 200);
    assert_eq!(callback.body["type"], 4);
    assert!(callback.body["data"]["content"].as_str().expect("content").contains("Stall history"), "{}", callback.body);
    running.stop().await;
}

/// What engineers write in a handoff's Discord thread is kept with its log, once per message,
/// with mentions read as names; bots, webhooks, strangers and other channels are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_people_write_in_a_handoffs_discord_thread_is_kept_with_its_log() {
    const THREAD: &str = "1300000000000000001";
    const ELI: &str = "200000000000000002";
    let fake = FakeDiscord::start().await;
    let mut identified = gateway(&fake, |_| {
        let message = |id: &str, channel: &str, author: Value, content: &str| {
            json!({"op": 0, "t": "MESSAGE_CREATE", "d": {"id": id, "channel_id": channel, "guild_id": "1",
                "type": 0, "author": author, "content": content}})
        };
        let eli = json!({"id": ELI, "username": "eli"});
        let frames = vec![
            message("m1", THREAD, eli.clone(), "the runbook is fine, <@200000000000000001> can you check the window?"),
            // The Gateway may send an event again after a resume: kept once.
            message("m1", THREAD, eli.clone(), "the runbook is fine, <@200000000000000001> can you check the window?"),
            message("m2", THREAD, json!({"id": "999", "username": "baton", "bot": true}), "H-1 escalated"),
            message("m3", THREAD, json!({"id": "998", "username": "stranger"}), "who is this?"),
            message("m4", ENG_CHANNEL, eli.clone(), "lunch?"),
            message("m5", THREAD, eli, "   "),
        ];
        (frames, None)
    })
    .await;
    let app = App::new(sqlite().await, model());
    let new = NewHandoff {
        seam: "eng-to-ops",
        title: "Deploy edge",
        fields: &[("service".into(), "edge".into()), ("runbook".into(), "https://r.example/edge".into())],
    };
    app.create(new, "eli", Surface::Discord, Utc::now(), None, None).await.expect("create");
    app.store.set_ref(1, &format!("discord-thread:{ENG_CHANNEL}"), THREAD, Utc::now()).await.expect("thread");
    let running = over_gateway(&fake, &app).await;
    let identify = next(&mut identified).await;
    assert_eq!(identify["d"]["intents"], (1 << 9) | (1 << 15), "guild messages with their content");
    eventually(10, "the message kept", || async {
        app.store.events(1).await.expect("events").iter().any(|e| e.change.kind() == "discussed")
    })
    .await;
    // Give the copies and the rest their chance to be (wrongly) kept.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    let events = app.store.events(1).await.expect("events");
    let kept: Vec<_> = events.iter().filter(|e| e.change.kind() == "discussed").collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!((kept[0].actor.as_str(), kept[0].surface), ("eli", Surface::Discord));
    let log =
        app.handle("eli", Surface::Discord, baton_core::parse("/handoff log H-1").expect("log"), Utc::now(), None);
    let log = log.await.expect("log");
    assert!(
        log.contains(
            "Eli Ek (Discord) said in its Discord thread: “the runbook is fine, @eve can you check the window?”"
        ),
        "{log}"
    );
    running.stop().await;
}

/// An app without the message-content intent is closed with 4014 when it asks for it: Baton
/// identifies again without it and goes on answering interactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_message_content_intent_the_gateway_goes_on_without_it() {
    let fake = FakeDiscord::start().await;
    let mut identified = gateway(&fake, |n| match n {
        0 => (Vec::new(), Some(4014)),
        _ => {
            let interaction = command("g2", "200000000000000002", "stalls", json!([]));
            (vec![json!({"op": 0, "t": "INTERACTION_CREATE", "d": interaction})], None)
        }
    })
    .await;
    let app = App::new(sqlite().await, model());
    let running = over_gateway(&fake, &app).await;
    assert_eq!(next(&mut identified).await["d"]["intents"], (1 << 9) | (1 << 15));
    assert_eq!(next(&mut identified).await["d"]["intents"], 0, "asked again without message content");
    eventually(10, "the callback", || async {
        fake.calls().iter().any(|c| c.route == "interactions/g2/tok-g2/callback")
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn work_slower_than_the_budget_is_deferred_and_its_answer_edited_in() {
    // A zero budget stands in for a slow command: the response is deferred at once.
    let bot = bot_with_budget(model(), StdDuration::ZERO).await;
    let (status, answer) = bot.signed(&command("d1", "200000000000000002", "stalls", json!([]))).await;
    assert_eq!(status, 200);
    assert_eq!(answer, json!({"type": 5, "data": {"flags": 64}}));
    eventually(10, "the follow-up", || async {
        bot.discord.calls().iter().any(|c| c.route == format!("webhooks/{APP_ID}/tok-d1/messages/@original"))
    })
    .await;
    let edit = bot.discord.calls().into_iter().find(|c| c.method == "PATCH").expect("edit");
    assert!(edit.body["content"].as_str().expect("content").contains("Stall history"), "{}", edit.body);
    assert_eq!(edit.body["allowed_mentions"], json!({"parse": []}));
    bot.running.stop().await;
}

#[tokio::test]
async fn engineers_say_they_are_away_and_back_in_discord() {
    const ELI: &str = "200000000000000002";
    let bot = bot(model()).await;
    let option = |name: &str, value: &str| json!({"name": name, "type": 3, "value": value});
    let last = (Utc::now() + Duration::days(7)).date_naive().to_string();
    let said = |answer: Value| answer["data"]["content"].as_str().expect("content").to_string();
    let (_, away) =
        bot.signed(&command("a1", ELI, "away", json!([option("until", &last), option("reason", "conference")]))).await;
    assert!(said(away).starts_with("You are away through"), "away");
    assert!(bot.app.store.absences(&bot.app.model, Utc::now()).await.expect("absences").is_away("eli", Utc::now()));
    let (_, shown) = bot.signed(&command("a2", ELI, "away", json!([]))).await;
    assert!(said(shown).contains("(conference)"));
    let (_, wrong) = bot.signed(&command("a3", ELI, "away", json!([option("until", "soon")]))).await;
    assert!(said(wrong).starts_with("✗ `soon` is not a date like 2026-12-04, nor `back`\nusage: /away until"));
    let (_, back) = bot.signed(&command("a4", ELI, "away", json!([option("until", "back")]))).await;
    assert_eq!(said(back), "Welcome back: stall reminders come to you again.");
    assert!(!bot.app.store.absences(&bot.app.model, Utc::now()).await.expect("absences").is_away("eli", Utc::now()));
    // A lead names her cover from Discord's user picker.
    const EVE: &str = "200000000000000001";
    let cover = json!({"name": "cover", "type": 6, "value": ELI});
    let (_, away) = bot.signed(&command("a5", EVE, "away", json!([option("until", &last), cover]))).await;
    assert!(said(away).contains("Eli Ek covers for you as lead (they were told)"), "away");
    assert_eq!(
        bot.app.store.absences(&bot.app.model, Utc::now()).await.expect("absences").cover("eve", Utc::now()),
        Some("eli")
    );
    // The team board, where Eli now stands in as lead.
    let team =
        json!([{"type": 1, "name": "team", "options": [{"type": 3, "name": "function", "value": "engineering"}]}]);
    let (_, board) = bot.signed(&command("a6", ELI, "handoff", team)).await;
    let board = said(board);
    assert!(
        board.starts_with("Engineering: 0 open handoffs received, 0 sent (lead Eve Engel, away through "),
        "{board}"
    );
    assert!(board.contains(": Eli Ek covers)."), "{board}");
    let find = json!([{"type": 1, "name": "find", "options": [{"type": 3, "name": "words", "value": "launch"}]}]);
    let (_, found) = bot.signed(&command("a7", ELI, "handoff", find)).await;
    assert!(said(found).starts_with("No handoff you can see holds \"launch\""), "find");
    bot.running.stop().await;
}

#[tokio::test]
async fn stalls_in_discord_checks_access_and_posts_the_chart_as_an_attachment() {
    const ADA: &str = "200000000000000006";
    const EVE: &str = "200000000000000001";
    let bot = bot(model()).await;
    let option = |name: &str, value: &str| json!({"name": name, "type": 3, "value": value});
    let (_, mine) = bot.signed(&command("901", EVE, "stalls", json!([]))).await;
    let text = mine["data"]["content"].as_str().expect("content");
    assert!(text.contains("seams to or from Engineering") && text.contains("marketing-to-eng"), "{text}");
    let (_, refused) = bot.signed(&command("902", EVE, "stalls", json!([option("seam", "sales-to-cs")]))).await;
    let text = refused["data"]["content"].as_str().expect("content");
    assert!(text.starts_with("✗ you can see the stall history of seams to or from Engineering only"), "{text}");
    // A handoff option that is not a reference is named, as in Slack and the console.
    for (id, options, expected) in [
        ("905", json!([option("handoff", "H-0")]), "✗ `H-0` is not a handoff reference: write it like H-12"),
        ("906", json!([]), "✗ name the handoff, like H-12"),
    ] {
        let (_, said) = bot.signed(&command(id, EVE, "ack", options)).await;
        assert_eq!(said["data"]["content"], expected);
    }
    // An owner picked from Discord's list arrives as a mention and reads as the person.
    let (_, eli) = bot.signed(&command("907", ADA, "stalls", json!([option("owner", "<@200000000000000002>")]))).await;
    let text = eli["data"]["content"].as_str().expect("content");
    assert!(text.contains("owner=eli"), "{text}");
    let (_, health) = bot.signed(&command("903", ADA, "stalls", json!([option("view", "health")]))).await;
    assert!(health["data"]["content"].as_str().expect("content").contains("1. Is throughput stable per seam?"));

    let chart = command("904", ADA, "stalls", json!([option("view", "chart"), option("window", "4w")]));
    crate::support::unblocked_stall(&bot.app, chrono::Utc::now()).await;
    let (_, said) = bot.signed(&chart).await;
    assert!(said["data"]["content"].as_str().expect("content").contains("it will be posted here"), "{said}");
    bot.signed(&chart).await; // Discord's retry of the same interaction.
    eventually(10, "the chart", || async { !bot.discord.messages(ENG_CHANNEL).is_empty() }).await;
    eventually(10, "the outbox drains", || async { bot.app.store.outbox_depth().await.unwrap_or(1) == 0 }).await;
    let posted = bot.discord.messages(ENG_CHANNEL);
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0]["attachments"][0]["filename"], "stalls.png");
    let png = bot.discord.file(posted[0]["id"].as_str().expect("id")).expect("the file");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    bot.running.stop().await;
}

#[tokio::test]
async fn a_refused_token_holds_every_discord_send_without_counting_attempts() {
    let fake = FakeDiscord::start().await;
    let api = DiscordApi::new(&fake.url, "revoked-token", Limits::default());
    let t0 = Utc::now();
    let body = json!({"content": "hi", "allowed_mentions": {"parse": []}});
    let err = api.post("1", &body, t0).await.expect_err("401");
    assert_eq!(err, SendError::Held(baton::deliver::token_hold()));
    let sent = fake.calls().len();
    // Every route waits, without a request, until the hold ends; then one is tried again.
    assert!(matches!(api.post("2", &body, t0 + Duration::seconds(30)).await, Err(SendError::Held(_))));
    assert_eq!(fake.calls().len(), sent);
    assert!(matches!(api.post("2", &body, t0 + Duration::seconds(61)).await, Err(SendError::Held(_))));
    assert_eq!(fake.calls().len(), sent + 1);
}

/// Someone the model gives no chat account, who linked a Discord account, is reminded by Discord
/// DM through it, and sees the reminder answered there too.
#[tokio::test]
async fn a_reminder_by_a_linked_discord_account_is_answered_there() {
    const OLGA: &str = "300000000000000042";
    let fake = FakeDiscord::start().await;
    let mut m = model();
    if let Some(olga) = m.people.get_mut("olga") {
        olga.discord = None;
    }
    let app = App::new(sqlite().await, m);
    let start = "2026-11-30T08:00:00Z".parse::<DateTime<Utc>>().expect("time");
    let link = baton::store::LinkRequest { platform: "discord", user: OLGA, person: "olga", code: "123456" };
    let code = baton_core::Intent::message(
        baton_core::Recipient::Person("omar".into()),
        baton_core::IntentKind::Notice,
        "a code".into(),
    );
    app.store.start_link(link, start + Duration::minutes(10), &code, start).await.expect("code");
    let linked = app.store.finish_link("discord", OLGA, "123456", start).await.expect("link");
    assert!(matches!(linked, baton::store::LinkOutcome::Linked(ref p) if p == "olga"), "{linked:?}");
    let out =
        Outbound { discord: Some(DiscordApi::new(&fake.url, DISCORD_TOKEN, Limits::default())), ..Outbound::default() };
    let d = baton::deliver::Deliverer {
        store: app.store.clone(),
        model: app.model.clone(),
        out,
        lease: Duration::seconds(60),
        batch: 100,
        concurrency: 4,
        lines: Default::default(),
    };
    let line = r#"/handoff new eng-to-ops "Rotate certs" service=edge runbook=https://runbooks.example/certs"#;
    app.handle("eve", Surface::Slack, baton_core::parse(line).expect("new"), start, None).await.expect("new");
    // The heads-up, 30 working minutes before acceptance is due, reaches Olga in her Discord DMs.
    let warned = start + Duration::minutes(90);
    app.sweep(warned).await.expect("sweep");
    d.drain(warned).await.expect("deliver");
    let dm = format!("dm-{OLGA}");
    let heads_up = fake.messages(&dm);
    assert_eq!(heads_up.len(), 1, "{heads_up:#?}");
    assert_eq!(buttons(&heads_up[0], "label"), ["Accept", "Return to requester"]);
    let taken = start + Duration::minutes(100);
    app.handle("omar", Surface::Slack, baton_core::parse("/handoff accept H-1").expect("accept"), taken, None)
        .await
        .expect("accept");
    d.drain(taken).await.expect("deliver");
    let answered = fake.messages(&dm);
    assert_eq!(answered.len(), 1, "edited, not posted: {answered:#?}");
    let content = answered[0]["content"].as_str().expect("content");
    assert!(
        content.ends_with("\n✓ Answered: Omar Osei (Slack) accepted it (Mon 30 Nov 09:40 UTC). Now: accepted."),
        "{content}"
    );
    assert_eq!(answered[0]["components"], json!([]));
}
