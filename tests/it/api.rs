//! The HTTP API (`/api/v1`): a CRM hands off for the sales reps, an agent works what it owns,
//! and every bad request gets a status with a reason.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use baton::deliver::{Deliverer, Outbound};
use baton::serve::Server;
use baton::store::Store;
use baton::webhook::Hooks;
use baton_core::{Recipient, State, Surface, parse};
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Running, app, on_each_store, t};

const CRM: &str = "crm-token-7f3a9c2e51d04b8a";
const AGENT: &str = "agent-token-0b6e4d1c9a8f7e25";
/// The architects' reporting tool.
const REPORTS: &str = "reports-token-4e9d2a7c1b8f3065";
/// The CRM's next token, while its token is rotated: both are taken.
const CRM_NEXT: &str = "crm-token-next-5c1d8e7f20a94b36";

async fn serve(store: Store) -> Running {
    let tokens = [
        ("BATON_API_TOKEN_CRM", format!("{CRM_NEXT}, {CRM}")),
        ("BATON_API_TOKEN_DEPLOY_AGENT", AGENT.into()),
        ("BATON_API_TOKEN_REPORTS", REPORTS.into()),
    ];
    let server = Server {
        api_tokens: tokens.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        ..Server::new(app(store), Outbound::default())
    };
    Running::start(server).await
}

/// A request's status and JSON body.
async fn call(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("send");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
}

const ACME_LINE: &str = r#"/handoff new sales-to-cs "Acme renewal" account=Acme arr=120000 segment=enterprise"#;

/// A refusal: `want`, with an error that says `says`.
fn refused((status, body): (StatusCode, Value), want: StatusCode, says: &str) {
    assert_eq!(status, want, "{body}");
    let error = body["error"].as_str().unwrap_or_else(|| panic!("no error in {body}"));
    assert!(error.contains(says), "{error:?} should say {says:?}");
}

fn acme() -> Value {
    json!({
        "as": "rita",
        "seam": "sales-to-cs",
        "title": "Acme renewal",
        "fields": {"account": "Acme", "arr": 120000, "segment": "Enterprise", "kickoff": null},
        "source": "https://crm.example/deals/42",
    })
}

/// Eve hands H-1, "Rotate certs", to Operations, where the deploy agent may own it.
async fn rotate_certs(app: &baton::app::App, at: chrono::DateTime<Utc>) {
    let line = r#"/handoff new eng-to-ops "Rotate certs" service=edge runbook=https://runbooks.example/certs"#;
    app.handle("eve", Surface::Console, parse(line).expect("new"), at, None).await.expect("handed off");
}

#[tokio::test]
async fn a_crm_hands_off_for_a_rep_and_a_retry_makes_nothing_twice() {
    on_each_store(|store| async move {
        let server = serve(store.clone()).await;
        let http = reqwest::Client::new();
        let new = || http.post(format!("{}/api/v1/handoffs", server.url)).bearer_auth(CRM);

        let resp = new().header("idempotency-key", "deal-42").json(&acme()).send().await.expect("send");
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(resp.headers()["location"], "/api/v1/handoffs/H-1");
        let made: Value = resp.json().await.expect("json");
        let h = &made["handoff"];
        assert_eq!(h["id"], "H-1");
        assert_eq!(h["state"], "open");
        assert_eq!(h["requester"], "rita");
        assert_eq!(h["owner"], Value::Null);
        assert_eq!(h["fields"]["segment"], "enterprise", "normalised as typed commands are");
        assert_eq!(h["fields"]["arr"], "120000");
        assert_eq!(h["fields"]["source"], "https://crm.example/deals/42");
        assert_eq!(h["next_deadline"]["kind"], "no_accept");
        assert!(made["reply"].as_str().expect("reply").contains("H-1"), "{made}");

        // The same request again (a retry after a timeout), and two more copies at once: H-1 each
        // time, and nothing new was made.
        let (status, again) = call(new().header("idempotency-key", "deal-42").json(&acme())).await;
        assert_eq!(
            (status, &again["handoff"]["id"], &again["replayed"]),
            (StatusCode::OK, &json!("H-1"), &json!(true))
        );
        let mut globex = acme();
        globex["fields"]["account"] = json!("Globex");
        let (a, b) = tokio::join!(
            call(new().header("idempotency-key", "deal-43").json(&globex)),
            call(new().header("idempotency-key", "deal-43").json(&globex)),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED]);
        assert_eq!(a.1["handoff"]["id"], b.1["handoff"]["id"]);
        assert_eq!(a.1["handoff"]["id"], "H-2");
        assert!(store.load(3).await.expect("load").is_none(), "no third handoff");
        // The same deal sent again under another key (a second sync of the CRM) is not a replay:
        // the seam takes one open handoff per account, so it is refused, naming the open one.
        let (status, refused) = call(new().header("idempotency-key", "deal-42-resync").json(&acme())).await;
        assert_eq!((status, &refused["handoff"]), (StatusCode::CONFLICT, &json!("H-1")), "{refused}");
        let error = refused["error"].as_str().expect("error");
        assert!(error.starts_with("H-1 \"Acme renewal\" is already open on sales-to-cs for account Acme"), "{error}");
        assert!(store.load(3).await.expect("load").is_none(), "still no third handoff");

        // Rita is told what was done in her name, once per handoff however often it was asked.
        let told: Vec<String> =
            sqlx::query_scalar("SELECT intent FROM outbox WHERE recipient = 'person:rita' ORDER BY id")
                .fetch_all(store.pool())
                .await
                .expect("outbox");
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(told[0].contains("Done in your name through Baton's API: H-1 handed to Customer Success"), "{told:?}");

        // Recorded as done through the API, for the audit trail; read back by id.
        let events = store.events(1).await.expect("events");
        assert_eq!((events[0].actor.as_str(), events[0].surface), ("rita", Surface::Api));
        let (status, shown) = call(http.get(format!("{}/api/v1/handoffs/H-1", server.url)).bearer_auth(AGENT)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, same) = call(http.get(format!("{}/api/v1/handoffs/H-1", server.url)).bearer_auth(CRM_NEXT)).await;
        assert_eq!((status, &same["title"]), (StatusCode::OK, &shown["title"]), "the rotated-in token is taken too");
        assert_eq!(shown["title"], "Acme renewal");
        assert!(shown["text"].as_str().expect("card").contains("Acme renewal"), "{shown}");
        // Its audit trail, oldest first, as stored and in words.
        let (status, trail) =
            call(http.get(format!("{}/api/v1/handoffs/H-1/events", server.url)).bearer_auth(CRM)).await;
        assert_eq!(status, StatusCode::OK);
        let first = &trail["events"][0];
        assert_eq!(
            (&first["kind"], &first["actor"], &first["surface"]),
            (&json!("created"), &json!("rita"), &json!("api"))
        );
        assert_eq!(first["change"]["fields"]["account"], "Acme");
        assert_eq!(first["via"], "crm", "which client, for the audit trail");
        assert!(first["text"].as_str().expect("text").starts_with("Rita Reyes (API: crm) handed it off"), "{trail}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn reassign_all_through_the_api_names_its_client_and_tells_the_person_as_other_commands_do() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        let now = Utc::now();
        let run = |who: &'static str, line: String| {
            let app = app.clone();
            async move { app.handle(who, Surface::Slack, parse(&line).expect("command"), now, None).await.expect(&line) }
        };
        for n in 1..=2 {
            run("rita", ACME_LINE.replace("Acme renewal", &format!("Acme renewal {n}")).replace("=Acme", &format!("=Acme{n}")))
                .await;
            run("ana", format!("/handoff accept H-{n}")).await;
        }
        let command = parse("/handoff reassign-all ana ben").expect("command");
        let reply = app.handle_through("crm", "carla", command, now, Some("api:crm:command:move-1")).await.expect("moved");
        assert!(reply.starts_with("Gave Ben Brooks the 2 handoffs Ana Alves owned: H-1, H-2"), "{reply}");
        for id in [1, 2] {
            let events = store.events(id).await.expect("events");
            let moved = events.last().expect("the move");
            assert_eq!((moved.change.kind(), moved.via.as_deref()), ("reassigned", Some("crm")), "H-{id}");
        }
        let told: Vec<String> =
            sqlx::query_scalar("SELECT intent FROM outbox WHERE recipient = 'person:carla' ORDER BY id")
                .fetch_all(store.pool())
                .await
                .expect("outbox");
        let told: Vec<&String> = told.iter().filter(|t| t.contains("Done in your name")).collect();
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(told[0].contains("Done in your name through Baton's API: H-1 reassigned to Ben Brooks"), "{told:?}");
    })
    .await;
}

#[tokio::test]
async fn an_agent_works_the_handoff_it_owns_through_commands() {
    on_each_store(|store| async move {
        let server = serve(store.clone()).await;
        rotate_certs(&app(store.clone()), Utc::now()).await;

        let http = reqwest::Client::new();
        let run = |command: &str, key: Option<&str>| {
            let req = http.post(format!("{}/api/v1/commands", server.url)).bearer_auth(AGENT);
            let req = match key {
                Some(k) => req.header("idempotency-key", k),
                None => req,
            };
            call(req.json(&json!({ "command": command })))
        };
        // What waits for the agent: Operations' queue, with the button it may press.
        let plate = || call(http.get(format!("{}/api/v1/plate", server.url)).bearer_auth(AGENT));
        let (status, mine) = plate().await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(mine["as"], "deploy-bot", "the one person this client acts for");
        let item = &mine["sections"][0]["items"][0];
        assert_eq!((&item["id"], &item["actions"]), (&json!(1), &json!(["accept"])), "{mine}");

        let (status, accepted) = run("/handoff accept H-1", Some("a-1")).await;
        assert_eq!(status, StatusCode::OK, "{accepted}");
        assert_eq!(accepted["handoff"]["owner"], "deploy-bot");
        // The same request replayed acts once, and says so.
        let (status, replay) = run("/handoff accept H-1", Some("a-1")).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(replay["error"].as_str().expect("error").contains("handled once"), "{replay}");
        // A fresh accept is refused as not applying any more.
        let (status, twice) = run("/handoff accept H-1", None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{twice}");

        for command in ["/ack H-1", "/handoff update H-1 certificates staged on 3 of 5 edges", "/handoff done H-1"] {
            let (status, answer) = run(command, None).await;
            assert_eq!(status, StatusCode::OK, "{command}: {answer}");
        }
        let h = store.load(1).await.expect("load").expect("H-1").handoff;
        assert_eq!(h.state, State::AwaitingGate);
        assert_eq!(h.last_note.as_deref(), Some("certificates staged on 3 of 5 edges"));
        // Not the agent's to call off; its approval is not its own to give.
        let (status, refused) = run("/handoff cancel H-1 not needed", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
        let echoed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE intent LIKE '%Done in your name%'")
            .fetch_one(store.pool())
            .await
            .expect("outbox");
        assert_eq!(echoed, 0, "an agent made the calls itself: nothing to tell it");
        let (status, log) = run("/handoff log H-1", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(log["reply"].as_str().expect("log").contains("Deploy Agent (API: deploy-agent)"), "{log}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bad_api_requests_get_a_status_and_a_reason() {
    on_each_store(|store| async move {
        let server = serve(store.clone()).await;
        let http = reqwest::Client::new();
        let url = |path: &str| format!("{}{path}", server.url);
        let new = |token: &str, body: Value| http.post(url("/api/v1/handoffs")).bearer_auth(token).json(&body);
        let with = |change: &dyn Fn(&mut Value)| {
            let mut body = acme();
            change(&mut body);
            body
        };

        let resp = http.post(url("/api/v1/handoffs")).json(&acme()).send().await.expect("send");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        refused(call(new("guess-guess-guess-guess", acme())).await, StatusCode::UNAUTHORIZED, "no API client's");
        refused(
            call(new(CRM, with(&|b| b["as"] = json!("ana")))).await,
            StatusCode::FORBIDDEN,
            "client `crm` may not act for ana: it acts for sales",
        );
        refused(
            call(new(CRM, with(&|b| b["as"] = Value::Null))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "say whom this request acts for with `as`",
        );
        refused(call(new(CRM, with(&|b| b["as"] = json!("ghost")))).await, StatusCode::UNPROCESSABLE_ENTITY, "`ghost`");
        let no_account = with(&|b| b["fields"]["account"] = Value::Null);
        refused(
            call(new(CRM, no_account).header("idempotency-key", "deal-77")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "account",
        );
        refused(
            call(new(CRM, with(&|b| b["fields"]["arr"] = json!([1, 2])))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "`fields.arr` must be a string, a number or true/false",
        );
        refused(
            call(new(CRM, with(&|b| b["fields"]["source"] = json!("https://x.example")))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "`source` is given twice",
        );
        refused(
            call(new(CRM, with(&|b| b["seam"] = json!("sales-to-moon")))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "sales-to-moon",
        );
        refused(
            call(new(CRM, with(&|b| b["title"] = json!("Acme\u{0}renewal")))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invisible control character",
        );
        refused(
            call(new(CRM, with(&|b| b["colour"] = json!("blue")))).await,
            StatusCode::BAD_REQUEST,
            "unknown field `colour`",
        );
        let garbled = http.post(url("/api/v1/handoffs")).bearer_auth(CRM).body("{\"as\": ");
        refused(call(garbled).await, StatusCode::BAD_REQUEST, "send for example");
        let long_key = "k".repeat(201);
        refused(
            call(new(CRM, acme()).header("idempotency-key", long_key)).await,
            StatusCode::BAD_REQUEST,
            "Idempotency-Key must be 1 to 200",
        );
        refused(call(http.get(url("/api/v1/handoffs/H-99")).bearer_auth(CRM)).await, StatusCode::NOT_FOUND, "H-99");
        refused(
            call(http.get(url("/api/v1/handoffs/acme")).bearer_auth(CRM)).await,
            StatusCode::NOT_FOUND,
            "like H-12",
        );
        let command = |body: Value| http.post(url("/api/v1/commands")).bearer_auth(AGENT).json(&body);
        refused(
            call(command(json!({"command": "/handoff frobnicate"}))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "frobnicate",
        );
        refused(
            call(command(json!({"command": "/handoff new eng-to-ops \"x\""}))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "POST /api/v1/handoffs",
        );
        refused(
            call(command(json!({"as": "omar", "command": "/handoff mine"}))).await,
            StatusCode::FORBIDDEN,
            "deploy-bot",
        );
        // A runaway client is slowed, with when to try again; another is not.
        let mut limited = None;
        for _ in 0..60 {
            let resp = http.get(url("/api/v1/plate")).bearer_auth(AGENT).send().await.expect("send");
            if resp.status() == StatusCode::TOO_MANY_REQUESTS {
                limited = Some(resp);
                break;
            }
        }
        let limited = limited.expect("a flood of requests is refused at some point");
        let after: u64 = limited.headers()["retry-after"].to_str().expect("header").parse().expect("seconds");
        assert!(after >= 1);
        let body: Value = limited.json().await.expect("json");
        assert!(body["error"].as_str().expect("error").contains("client `deploy-agent` sent more than"), "{body}");
        let (status, _) = call(http.get(url("/api/v1/handoffs")).bearer_auth(CRM)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(store.load(1).await.expect("load").is_none(), "nothing was handed off");
        // A refused creation leaves its key unused: fixed, the same request goes through.
        let (status, fixed) = call(new(CRM, acme()).header("idempotency-key", "deal-77")).await;
        assert_eq!((status, &fixed["handoff"]["id"]), (StatusCode::CREATED, &json!("H-1")), "{fixed}");
        server.stop().await;

        // A model without clients has the API off, and says how to turn it on.
        let mut model = crate::support::model();
        model.api.clear();
        let off = Running::start(Server::new(baton::app::App::new(store, model), Outbound::default())).await;
        refused(
            call(http.get(format!("{}/api/v1/plate", off.url)).bearer_auth(CRM)).await,
            StatusCode::NOT_FOUND,
            "[api.<name>]",
        );
        off.stop().await;
    })
    .await;
}

/// A client's webhook (an agent's, a CRM's): answers each call with the next scripted status (then 200) and keeps what
/// it was sent.
struct Webhook {
    url: String,
    calls: Arc<Mutex<Vec<(axum::http::HeaderMap, String, u16)>>>,
}

impl Webhook {
    async fn start(script: Vec<u16>) -> Webhook {
        let calls: Arc<Mutex<Vec<(axum::http::HeaderMap, String, u16)>>> = Arc::default();
        let script = Arc::new(Mutex::new(script.into_iter()));
        let kept = calls.clone();
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| async move {
                let status = script.lock().expect("script").next().unwrap_or(200);
                kept.lock().expect("calls").push((headers, body, status));
                axum::http::StatusCode::from_u16(status).expect("status")
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Webhook { url, calls }
    }

    fn calls(&self) -> Vec<(axum::http::HeaderMap, String, u16)> {
        self.calls.lock().expect("calls").clone()
    }
}

/// A delivery worker whose only platform is the API clients' webhooks, found in `vars`.
fn webhook_deliverer(app: &baton::app::App, vars: &BTreeMap<&str, String>) -> Deliverer {
    Deliverer {
        store: app.store.clone(),
        model: app.model.clone(),
        out: Outbound {
            hooks: Hooks::new(&app.model, |v| vars.get(v).cloned()).expect("hooks"),
            ..Outbound::default()
        },
        lease: chrono::Duration::seconds(60),
        batch: 100,
        concurrency: 4,
        lines: Default::default(),
    }
}

/// What a receiver checks: Slack's signing scheme, keyed with the client's token.
fn signed_by(token: &str, headers: &axum::http::HeaderMap, body: &str) -> bool {
    use hmac::Mac as _;
    let ts = headers["x-baton-request-timestamp"].to_str().expect("timestamp");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes()).expect("key");
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let given = headers["x-baton-signature"].to_str().expect("signature");
    let hex = given.strip_prefix("v0=").expect("v0=");
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect();
    mac.verify_slice(&bytes).is_ok()
}

#[tokio::test]
async fn an_agent_hears_its_reminders_at_its_clients_webhook_signed_once_and_retried() {
    on_each_store(|store| async move {
        // The first attempt meets an outage; the next is taken.
        let hook = Webhook::start(vec![503]).await;
        let app = app(store.clone());
        let monday = t("2026-11-30T08:00:00Z");
        rotate_certs(&app, monday).await;
        for command in ["/handoff accept H-1", "/ack H-1"] {
            app.handle("deploy-bot", Surface::Api, parse(command).expect(command), monday, None).await.expect(command);
        }
        let vars: BTreeMap<&str, String> =
            [("BATON_API_TOKEN_DEPLOY_AGENT", AGENT.to_string()), ("BATON_WEBHOOK_DEPLOY_AGENT", hook.url.clone())]
                .into();
        let deliverer = webhook_deliverer(&app, &vars);
        // Its card, as owner, meets the outage and goes out on the next attempt, once.
        // The agent takes no digests (it reads one message at a time); its supervisor would.
        assert!(deliverer.out.by_webhook(&app.model, &Recipient::Person("deploy-bot".into())));
        assert!(!deliverer.out.by_webhook(&app.model, &Recipient::Person("omar".into())));
        deliverer.drain(monday).await.expect("deliver");
        deliverer.drain(monday + chrono::Duration::minutes(5)).await.expect("deliver again");
        let calls = hook.calls();
        let statuses: Vec<u16> = calls.iter().map(|(_, _, s)| *s).collect();
        assert_eq!(statuses, [503, 200, 200], "tried again after the outage, then not again: {calls:?}");
        let (headers, body, _) = &calls[1];
        assert!(signed_by(AGENT, headers, body), "signed with the client's token");
        assert!(!signed_by("another-token-entirely", headers, body));
        assert_eq!(headers["x-baton-delivery"], calls[0].0["x-baton-delivery"], "one delivery id across attempts");
        let card: Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(
            (&card["to"], &card["handoff"], &card["kind"]),
            (&json!("deploy-bot"), &json!("H-1"), &json!("card"))
        );
        assert!(card["text"].as_str().expect("text").contains("Owner: Deploy Agent"), "{card}");
        // Acknowledged since: the card comes again, redrawn, saying which it replaces.
        let redrawn: Value = serde_json::from_str(&calls[2].1).expect("JSON");
        assert_eq!((&redrawn["kind"], &redrawn["replaces"]), (&json!("card"), &card["delivery"]));
        assert!(redrawn["text"].as_str().expect("text").contains("State: in progress"), "{redrawn}");

        // No update for 4 working hours: the reminder goes to the agent (and to Omar, its supervisor).
        let noon = monday + chrono::Duration::hours(4);
        app.sweep(noon).await.expect("sweep");
        deliverer.drain(noon).await.expect("deliver");
        // Its card is redrawn too, saying since when it is stalled.
        let calls = hook.calls();
        assert_eq!(calls.len(), 5, "{calls:?}");
        let stalled: Value = serde_json::from_str(&calls[4].1).expect("JSON");
        assert_eq!((&stalled["kind"], &stalled["replaces"]), (&json!("card"), &redrawn["delivery"]));
        assert!(
            stalled["text"].as_str().expect("text").contains("Stalled: no progress update in time since"),
            "{stalled}"
        );
        let (headers, body, status) = &calls[3];
        assert!(signed_by(AGENT, headers, body) && *status == 200);
        let reminder: Value = serde_json::from_str(body).expect("JSON");
        assert!(reminder["text"].as_str().expect("text").contains("Rotate certs"), "{reminder}");
        assert!(reminder["actions"].as_array().expect("actions").contains(&json!("update")), "{reminder}");
        let delivered: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE recipient = 'person:deploy-bot' AND delivered_at_ms IS NOT NULL",
        )
        .fetch_one(store.pool())
        .await
        .expect("count");
        assert_eq!(delivered, 4, "the card three times (drawn, acknowledged, stalled) and the reminder, each once");
    })
    .await;
}

#[tokio::test]
async fn a_crm_follows_the_handoffs_it_made_at_its_webhook() {
    on_each_store(|store| async move {
        let hook = Webhook::start(vec![]).await;
        let app = app(store.clone());
        let monday = t("2026-11-30T14:00:00Z");
        let Ok(baton_core::Command::New { seam, title, fields }) = parse(ACME_LINE) else { panic!("parse") };
        let new = baton_core::NewHandoff { seam: &seam, title: &title, fields: &fields };
        let made = app.create(new, "rita", Surface::Api, monday, Some("api:crm:new:deal-42"), Some("crm")).await;
        assert_eq!(made.expect("handed off").handoff.via.as_deref(), Some("crm"));
        // A handoff typed in Slack is no client's to follow.
        app.handle("rita", Surface::Slack, parse(&ACME_LINE.replace("Acme", "Beta")).expect("new"), monday, None)
            .await
            .expect("typed");
        for (who, command) in [
            ("ana", "/handoff accept H-1"),
            ("ana", "/handoff accept H-2"),
            ("ana", "/handoff comment H-1 kickoff Tuesday"),
        ] {
            app.handle(who, Surface::Slack, parse(command).expect(command), monday, None).await.expect(command);
        }
        let vars: BTreeMap<&str, String> =
            [("BATON_API_TOKEN_CRM", CRM.to_string()), ("BATON_WEBHOOK_CRM", hook.url.clone())].into();
        let deliverer = webhook_deliverer(&app, &vars);
        deliverer.drain(monday).await.expect("deliver");
        let calls = hook.calls();
        let sent: Vec<Value> = calls.iter().map(|(_, body, _)| serde_json::from_str(body).expect("JSON")).collect();
        // What the reps are told goes to them, not to the client that acts for them.
        assert!(sent.iter().all(|s| s["to"].is_null()), "{sent:?}");
        let texts: Vec<&str> = sent.iter().map(|s| s["text"].as_str().expect("text")).collect();
        assert_eq!(
            texts,
            [
                "H-1 \"Acme renewal\": Ana Alves (Slack) accepted it. Now: accepted.",
                "H-1 \"Acme renewal\": Ana Alves (Slack) commented: “kickoff Tuesday”. Now: accepted.",
            ],
            "H-2 was not made through the CRM"
        );
        assert!(sent.iter().all(|s| s["handoff"] == "H-1"), "{sent:?}");
        assert!(calls.iter().all(|(headers, body, _)| signed_by(CRM, headers, body)));
        // Rita is on Slack, which this deliverer does not reach: said so, not that nobody acts for her.
        let why: Option<String> =
            sqlx::query_scalar("SELECT last_error FROM outbox WHERE recipient = 'person:rita' ORDER BY id LIMIT 1")
                .fetch_one(store.pool())
                .await
                .expect("Rita's message");
        assert_eq!(
            why.as_deref(),
            Some("Rita Reyes is on a platform Baton is not configured for (its bot token is not set)")
        );

        // Without its webhook set, what the CRM misses is logged, not put to the lead.
        let update = parse("/handoff update H-1 kickoff booked").expect("update");
        app.handle("ana", Surface::Slack, update, monday, None).await.expect("update");
        let unset = Deliverer { out: Outbound::default(), ..deliverer };
        unset.drain(monday).await.expect("deliver");
        let to_lead: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE recipient = 'person:carla' AND intent LIKE '%API client crm%'",
        )
        .fetch_one(store.pool())
        .await
        .expect("count");
        assert_eq!(to_lead, 0);
        let dead: Option<String> =
            sqlx::query_scalar("SELECT last_error FROM outbox WHERE recipient = 'client:crm' ORDER BY id DESC LIMIT 1")
                .fetch_one(store.pool())
                .await
                .expect("the missed one");
        assert!(dead.unwrap_or_default().contains("has no webhook"));
    })
    .await;
}

#[tokio::test]
async fn handoffs_are_listed_by_filter_newest_first_a_page_at_a_time() {
    on_each_store(|store| async move {
        let server = serve(store.clone()).await;
        let app = app(store.clone());
        let now = Utc::now();
        for n in 1..=5 {
            let line =
                ACME_LINE.replace("Acme renewal", &format!("Renewal {n}")).replace("=Acme", &format!("=Acme{n}"));
            app.handle("rita", Surface::Slack, parse(&line).expect("new"), now, None).await.expect("new");
        }
        rotate_certs(&app, now).await;
        for command in ["/handoff accept H-2", "/handoff accept H-4"] {
            app.handle("ana", Surface::Slack, parse(command).expect(command), now, None).await.expect(command);
        }
        app.handle("rita", Surface::Slack, parse("/handoff cancel H-5 lost").expect("cancel"), now, None)
            .await
            .expect("cancel");
        let http = reqwest::Client::new();
        let list = |query: &str| call(http.get(format!("{}/api/v1/handoffs?{query}", server.url)).bearer_auth(CRM));
        let ids = |page: &Value| -> Vec<String> {
            page["handoffs"]
                .as_array()
                .expect("handoffs")
                .iter()
                .map(|h| h["id"].as_str().expect("id").into())
                .collect()
        };
        let (status, all) = list("").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ids(&all), ["H-6", "H-5", "H-4", "H-3", "H-2", "H-1"]);
        assert_eq!(ids(&list("seam=sales-to-cs&open=true").await.1), ["H-4", "H-3", "H-2", "H-1"]);
        assert_eq!(ids(&list("owner=Ana").await.1), ["H-4", "H-2"]);
        assert_eq!(ids(&list("state=open&requester=rita").await.1), ["H-3", "H-1"]);
        // A page at a time: `next` goes on from where the page ended.
        let (_, first) = list("seam=sales-to-cs&limit=2").await;
        assert_eq!(ids(&first), ["H-5", "H-4"]);
        let next = first["next"].as_str().expect("a next page");
        let (_, second) = call(http.get(format!("{}{next}", server.url)).bearer_auth(CRM)).await;
        assert_eq!(ids(&second), ["H-3", "H-2"]);
        let (_, last) =
            call(http.get(format!("{}{}", server.url, second["next"].as_str().expect("next"))).bearer_auth(CRM)).await;
        assert_eq!((ids(&last), &last["next"]), (vec!["H-1".to_string()], &Value::Null));
        for (query, says) in [
            ("seam=sales-to-moon", "no seam `sales-to-moon`; seams: eng-to-ops"),
            ("state=stuck", "no state `stuck`; states: open, accepted"),
            ("owner=ghost", "`owner`: nobody called `ghost`"),
            ("limit=500", "`limit` is a whole number from 1 to 200"),
            ("colour=blue", "unknown filter `colour`"),
            ("before=soon", "`before` is a handoff like H-40, not `soon`"),
        ] {
            refused(list(query).await, StatusCode::UNPROCESSABLE_ENTITY, says);
        }
        server.stop().await;
    })
    .await;
}

/// `baton api ping <client>` with `env`: success, standard output and error.
async fn ping(client: &str, env: Vec<(&'static str, String)>) -> (bool, String, String) {
    let client = client.to_string();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["api", "ping", &client])
            .current_dir(crate::support::repo())
            .env_remove("BATON_CONFIG")
            .envs(env)
            .output()
            .expect("run baton");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baton_api_ping_sends_a_signed_test_delivery_and_says_how_it_went() {
    let hook = Webhook::start(vec![200, 401]).await;
    let env = || vec![("BATON_API_TOKEN_CRM", CRM.to_string()), ("BATON_WEBHOOK_CRM", hook.url.clone())];
    let (ok, stdout, stderr) = ping("crm", env()).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("crm's webhook took the test delivery"), "{stdout}");
    let calls = hook.calls();
    assert!(signed_by(CRM, &calls[0].0, &calls[0].1), "signed as every delivery is");
    assert!(calls[0].1.contains("baton api ping crm"), "{}", calls[0].1);
    // A receiver that refuses it: said so, and the command fails.
    let (ok, _, stderr) = ping("crm", env()).await;
    assert!(!ok);
    assert!(stderr.contains("answered 401 Unauthorized"), "{stderr}");
    // What is missing is named.
    let (ok, _, stderr) = ping("crm", vec![]).await;
    assert!(!ok && stderr.contains("BATON_WEBHOOK_CRM (the webhook's URL) and BATON_API_TOKEN_CRM"), "{stderr}");
    let (ok, _, stderr) = ping("erp", vec![]).await;
    assert!(
        !ok && stderr.contains("no API client `erp` in the operating model; clients: crm, deploy-agent"),
        "{stderr}"
    );
}

#[tokio::test]
async fn stall_history_is_read_as_the_person_may_see_it() {
    on_each_store(|store| async move {
        let server = serve(store.clone()).await;
        let app = app(store.clone());
        let now = Utc::now() - chrono::Duration::days(3);
        app.handle("rita", Surface::Slack, parse(ACME_LINE).expect("new"), now, None).await.expect("new");
        rotate_certs(&app, now).await;
        app.sweep(Utc::now()).await.expect("sweep");
        let http = reqwest::Client::new();
        let stalls = |query: &str| call(http.get(format!("{}/api/v1/stalls?{query}", server.url)).bearer_auth(CRM));
        let (status, report) = stalls("as=rita").await;
        assert_eq!(status, StatusCode::OK, "{report}");
        let text = report.to_string();
        assert!(text.contains("sales-to-cs") && !text.contains("eng-to-ops"), "Rita sees her functions' seams: {text}");
        // The architects' tool, acting for Ada, sees every seam.
        let all = http.get(format!("{}/api/v1/stalls", server.url)).bearer_auth(REPORTS);
        let (status, every) = call(all).await;
        assert_eq!(status, StatusCode::OK, "{every}");
        assert!(every.to_string().contains("eng-to-ops") && every.to_string().contains("sales-to-cs"), "{every}");
        let (status, health) = stalls("as=sam&view=health&window=30d").await;
        assert_eq!(status, StatusCode::OK, "{health}");
        assert!(health.to_string().contains("throughput"), "{health}");
        for (query, says) in [
            ("as=rita&seam=eng-to-ops", "eng-to-ops"),
            ("as=rita&view=chart", "charts are drawn in chat"),
            ("as=rita&window=forever", "forever"),
        ] {
            refused(stalls(query).await, StatusCode::UNPROCESSABLE_ENTITY, says);
        }
        server.stop().await;
    })
    .await;
}
