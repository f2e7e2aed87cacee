//! The HTTP API (`/api/v1`): a CRM hands off for the sales reps, an agent works what it owns,
//! and every bad request gets a status with a reason.

use baton::deliver::Outbound;
use baton::serve::Server;
use baton::store::Store;
use baton_core::{Command, State, Surface, parse};
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Running, app, on_each_store};

const CRM: &str = "crm-token-7f3a9c2e51d04b8a";
const AGENT: &str = "agent-token-0b6e4d1c9a8f7e25";

async fn serve(store: Store) -> Running {
    let tokens = [("BATON_API_TOKEN_CRM", CRM), ("BATON_API_TOKEN_DEPLOY_AGENT", AGENT)];
    let server = Server {
        api_tokens: tokens.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Server::new(app(store), Outbound { slack: None, discord: None })
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

fn acme() -> Value {
    json!({
        "as": "rita",
        "seam": "sales-to-cs",
        "title": "Acme renewal",
        "fields": {"account": "Acme", "arr": 120000, "segment": "Enterprise", "kickoff": null},
        "source": "https://crm.example/deals/42",
    })
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
        let (a, b) = tokio::join!(
            call(new().header("idempotency-key", "deal-43").json(&acme())),
            call(new().header("idempotency-key", "deal-43").json(&acme())),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED]);
        assert_eq!(a.1["handoff"]["id"], b.1["handoff"]["id"]);
        assert_eq!(a.1["handoff"]["id"], "H-2");
        assert!(store.load(3).await.expect("load").is_none(), "no third handoff");

        // Recorded as done through the API, for the audit trail; read back by id.
        let events = store.events(1).await.expect("events");
        assert_eq!((events[0].actor.as_str(), events[0].surface), ("rita", Surface::Api));
        let (status, shown) = call(http.get(format!("{}/api/v1/handoffs/H-1", server.url)).bearer_auth(AGENT)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(shown["title"], "Acme renewal");
        assert!(shown["text"].as_str().expect("card").contains("Acme renewal"), "{shown}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_agent_works_the_handoff_it_owns_through_commands() {
    on_each_store(|store| async move {
        let server = serve(store.clone()).await;
        let line = r#"/handoff new eng-to-ops "Rotate certs" service=edge runbook=https://runbooks.example/certs"#;
        let Ok(new @ Command::New { .. }) = parse(line) else { panic!("parse") };
        app(store.clone()).handle("eve", Surface::Console, new, Utc::now(), None).await.expect("handed off");

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
        let (status, log) = run("/handoff log H-1", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(log["reply"].as_str().expect("log").contains("Deploy Agent (API)"), "{log}");
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
        let expect = |(status, body): (StatusCode, Value), want: StatusCode, says: &str| {
            assert_eq!(status, want, "{body}");
            let error = body["error"].as_str().unwrap_or_else(|| panic!("no error in {body}"));
            assert!(error.contains(says), "{error:?} should say {says:?}");
        };

        let resp = http.post(url("/api/v1/handoffs")).json(&acme()).send().await.expect("send");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        expect(call(new("guess-guess-guess-guess", acme())).await, StatusCode::UNAUTHORIZED, "no API client's");
        expect(
            call(new(CRM, with(&|b| b["as"] = json!("ana")))).await,
            StatusCode::FORBIDDEN,
            "client `crm` may not act for ana: it acts for sales",
        );
        expect(
            call(new(CRM, with(&|b| b["as"] = Value::Null))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "say whom this request acts for with `as`",
        );
        expect(call(new(CRM, with(&|b| b["as"] = json!("ghost")))).await, StatusCode::UNPROCESSABLE_ENTITY, "`ghost`");
        expect(
            call(new(CRM, with(&|b| b["fields"]["account"] = Value::Null))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "account",
        );
        expect(
            call(new(CRM, with(&|b| b["fields"]["arr"] = json!([1, 2])))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "`fields.arr` must be a string, a number or true/false",
        );
        expect(
            call(new(CRM, with(&|b| b["fields"]["source"] = json!("https://x.example")))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "`source` is given twice",
        );
        expect(
            call(new(CRM, with(&|b| b["seam"] = json!("sales-to-moon")))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "sales-to-moon",
        );
        expect(
            call(new(CRM, with(&|b| b["colour"] = json!("blue")))).await,
            StatusCode::BAD_REQUEST,
            "unknown field `colour`",
        );
        let garbled = http.post(url("/api/v1/handoffs")).bearer_auth(CRM).body("{\"as\": ");
        expect(call(garbled).await, StatusCode::BAD_REQUEST, "send for example");
        let long_key = "k".repeat(201);
        expect(
            call(new(CRM, acme()).header("idempotency-key", long_key)).await,
            StatusCode::BAD_REQUEST,
            "Idempotency-Key must be 1 to 200",
        );
        expect(call(http.get(url("/api/v1/handoffs/H-99")).bearer_auth(CRM)).await, StatusCode::NOT_FOUND, "H-99");
        expect(call(http.get(url("/api/v1/handoffs/acme")).bearer_auth(CRM)).await, StatusCode::NOT_FOUND, "like H-12");
        let command = |body: Value| http.post(url("/api/v1/commands")).bearer_auth(AGENT).json(&body);
        expect(
            call(command(json!({"command": "/handoff frobnicate"}))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "frobnicate",
        );
        expect(
            call(command(json!({"command": "/handoff new eng-to-ops \"x\""}))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "POST /api/v1/handoffs",
        );
        expect(
            call(command(json!({"as": "omar", "command": "/handoff mine"}))).await,
            StatusCode::FORBIDDEN,
            "deploy-bot",
        );
        assert!(store.load(1).await.expect("load").is_none(), "nothing was handed off");
        server.stop().await;

        // A model without clients has the API off, and says how to turn it on.
        let mut model = crate::support::model();
        model.api.clear();
        let off =
            Running::start(Server::new(baton::app::App::new(store, model), Outbound { slack: None, discord: None }))
                .await;
        expect(
            call(http.get(format!("{}/api/v1/plate", off.url)).bearer_auth(CRM)).await,
            StatusCode::NOT_FOUND,
            "[api.<name>]",
        );
        off.stop().await;
    })
    .await;
}
