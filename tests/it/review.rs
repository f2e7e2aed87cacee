//! Webhook reviewers are called over real HTTP and their verdicts recorded with their version.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::routing::post;
use baton::app::App;
use baton::reviewer::Webhooks;
use baton_core::model::{Reviewer, ReviewerKind, RiskTier};
use baton_core::{State, Surface};

use crate::support::{model, sqlite, t};

/// A reviewer endpoint that fails the first review and passes the second, recording requests.
async fn fake_reviewer(seen: Arc<Mutex<Vec<serde_json::Value>>>) -> String {
    let app = axum::Router::new().route(
        "/review",
        post(move |Json(body): Json<serde_json::Value>| {
            let seen = seen.clone();
            async move {
                let mut seen = seen.lock().expect("lock");
                seen.push(body);
                if seen.len() == 1 {
                    Json(serde_json::json!({ "pass": false, "reasons": ["no rollback plan"] }))
                } else {
                    Json(serde_json::json!({ "pass": true }))
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/review")
}

/// A service whose marketing-to-eng seam is reviewed by webhook reviewer `qa-bot` (version 7) at `url`.
async fn app_with_webhook_reviewer(url: String) -> App {
    let mut model = model();
    model.reviewers.insert(
        "qa-bot".into(),
        Reviewer {
            id: "qa-bot".into(),
            version: "7".into(),
            kind: ReviewerKind::Webhook { url_env: "QA_BOT_URL".into(), timeout: chrono::Duration::seconds(2) },
        },
    );
    let seam = model.seams.get_mut("marketing-to-eng").expect("seam");
    assert_eq!(seam.tier, RiskTier::Reversible);
    seam.reviewer = Some("qa-bot".into());
    let mut app = App::new(sqlite().await, model);
    app.webhooks = Webhooks::with_urls(BTreeMap::from([("qa-bot".to_string(), url)]));
    app
}

/// Runs a command; returns the reply.
async fn run(app: &App, actor: &str, line: &str) -> String {
    let now = t("2026-11-30T10:00:00Z");
    app.handle(actor, Surface::Console, baton_core::parse(line).expect(line), now, None).await.expect(line)
}

const LAUNCH: &str = "/handoff new marketing-to-eng Launch launch_date=2027-03-01 brief=https://docs.example/b";

#[tokio::test]
async fn a_webhook_reviewer_decides_reversible_work_and_its_version_is_recorded() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = app_with_webhook_reviewer(fake_reviewer(seen.clone()).await).await;
    run(&app, "mia", LAUNCH).await;
    run(&app, "eli", "/handoff accept H-1").await;
    // The reply is the verdict, not that a review is pending.
    let reply = run(&app, "eli", "/handoff done H-1").await;
    assert_eq!(reply, "H-1 did not pass automated review: no rollback plan. Fix it and mark it done again.");
    let h = app.store.load(1).await.expect("load").expect("exists").handoff;
    assert_eq!(h.state, State::InProgress, "the failing verdict sent it back");
    assert_eq!(h.verdicts[0].reasons, ["no rollback plan"]);
    assert_eq!((h.verdicts[0].reviewer.as_str(), h.verdicts[0].version.as_str()), ("qa-bot", "7"));
    assert_eq!(run(&app, "eli", "/handoff done H-1").await, "H-1 passed automated review and is done.");
    let h = app.store.load(1).await.expect("load").expect("exists").handoff;
    assert_eq!(h.state, State::Done);
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["reviewer"], "qa-bot");
    assert_eq!(seen[0]["version"], "7");
    assert_eq!(seen[0]["handoff"]["fields"]["brief"], "https://docs.example/b");
}

#[tokio::test]
async fn an_unreachable_webhook_reviewer_fails_the_review_with_a_clear_reason() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/review", listener.local_addr().expect("addr"));
    drop(listener);
    let app = app_with_webhook_reviewer(url).await;
    run(&app, "mia", LAUNCH).await;
    run(&app, "eli", "/handoff accept H-1").await;
    run(&app, "eli", "/handoff done H-1").await;
    let h = app.store.load(1).await.expect("load").expect("exists").handoff;
    assert_eq!(h.state, State::InProgress);
    assert!(h.verdicts[0].reasons[0].contains("could not review it (request failed"), "{:?}", h.verdicts);
}

/// The process stops after a handoff is marked done at a webhook reviewer's gate and before the
/// verdict is saved: the stall sweep asks the reviewer again once its timeout and a minute have
/// passed, and records the verdict, so nothing is left waiting at the gate for a call nobody makes.
#[tokio::test]
async fn a_verdict_that_never_came_is_asked_for_again_by_the_sweep() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = app_with_webhook_reviewer(fake_reviewer(seen.clone()).await).await;
    run(&app, "mia", LAUNCH).await;
    run(&app, "eli", "/handoff accept H-1").await;
    // The Done decision is saved as the service saves it, but its reviewer is never called.
    let done_at = t("2026-11-30T10:00:00Z");
    let stored = app.store.load(1).await.expect("load").expect("exists");
    let cmd = baton_core::parse("/handoff done H-1").expect("parse");
    let d = baton_core::decide(&app.model, &stored.handoff, &cmd, "eli", Surface::Console, done_at).expect("done");
    assert_eq!(d.review.as_deref(), Some("qa-bot"));
    app.store.save(&d, Some(stored.version), None).await.expect("save");

    // Within the reviewer's timeout (2 s) and a minute, nothing is asked: its call may be under way.
    app.sweep(done_at + chrono::Duration::seconds(61)).await.expect("sweep");
    assert!(seen.lock().expect("lock").is_empty());
    assert_eq!(app.store.earliest_check().await.expect("next"), Some(done_at + chrono::Duration::seconds(62)));
    app.sweep(done_at + chrono::Duration::seconds(62)).await.expect("sweep");
    assert_eq!(seen.lock().expect("lock").len(), 1, "asked again");
    let h = app.store.load(1).await.expect("load").expect("exists").handoff;
    assert_eq!(h.state, State::InProgress, "the verdict (a failing one) is recorded: {:?}", h.verdicts);
    assert_eq!(h.verdicts[0].reasons, ["no rollback plan"]);
    let kinds: Vec<&str> =
        app.store.events(1).await.expect("events").iter().map(|e| e.change.kind()).rev().take(2).collect();
    assert_eq!(kinds, ["reviewed", "review_asked_again"]);
    // Once answered, it is not asked again.
    app.sweep(done_at + chrono::Duration::hours(1)).await.expect("sweep");
    assert_eq!(seen.lock().expect("lock").len(), 1);
}

/// A webhook reviewer's variable unset, or holding no address, is named at start (each review
/// would fail); a good one is taken.
#[test]
fn a_webhook_reviewers_address_is_checked_when_read() {
    let mut model = model();
    for (id, var) in [("qa-bot", "QA_BOT_URL"), ("lint-bot", "LINT_BOT_URL"), ("style-bot", "STYLE_BOT_URL")] {
        let kind = ReviewerKind::Webhook { url_env: var.into(), timeout: chrono::Duration::seconds(2) };
        model.reviewers.insert(id.into(), Reviewer { id: id.into(), version: "1".into(), kind });
    }
    let vars = BTreeMap::from([("QA_BOT_URL", "https://qa.example/review"), ("LINT_BOT_URL", "qa.example")]);
    let (hooks, problems) = Webhooks::from_vars(&model, |v| vars.get(v).map(|s| s.to_string()));
    assert_eq!(hooks.urls.keys().collect::<Vec<_>>(), ["qa-bot"]);
    assert_eq!(problems, ["LINT_BOT_URL holds `qa.example`, which is no http(s) address", "STYLE_BOT_URL is not set"]);
}
