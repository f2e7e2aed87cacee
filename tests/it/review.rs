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

#[tokio::test]
async fn a_webhook_reviewer_decides_reversible_work_and_its_version_is_recorded() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = fake_reviewer(seen.clone()).await;
    let mut model = model();
    model.reviewers.insert(
        "qa-bot".into(),
        Reviewer {
            id: "qa-bot".into(),
            version: "7".into(),
            kind: ReviewerKind::Webhook { url_env: "QA_BOT_URL".into(), timeout: chrono::Duration::seconds(5) },
        },
    );
    let seam = model.seams.get_mut("marketing-to-eng").expect("seam");
    seam.reviewer = Some("qa-bot".into());
    assert_eq!(seam.tier, RiskTier::Reversible);
    let store = sqlite().await;
    let mut app = App::new(store.clone(), model);
    app.webhooks = Webhooks::with_urls(BTreeMap::from([("qa-bot".to_string(), url)]));
    let now = t("2026-11-30T10:00:00Z");
    let run = |actor: &'static str, line: &'static str| {
        let app = app.clone();
        async move {
            app.handle(actor, Surface::Console, baton_core::parse(line).expect(line), now, None).await.expect(line)
        }
    };
    run("mia", "/handoff new marketing-to-eng Launch launch_date=2027-03-01 brief=https://docs.example/b").await;
    run("eli", "/handoff accept H-1").await;
    run("eli", "/handoff done H-1").await;
    let h = store.load(1).await.expect("load").expect("exists").handoff;
    assert_eq!(h.state, State::InProgress, "the failing verdict sent it back");
    assert_eq!(h.verdicts[0].reasons, ["no rollback plan"]);
    assert_eq!((h.verdicts[0].reviewer.as_str(), h.verdicts[0].version.as_str()), ("qa-bot", "7"));
    run("eli", "/handoff done H-1").await;
    let h = store.load(1).await.expect("load").expect("exists").handoff;
    assert_eq!(h.state, State::Done);
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["reviewer"], "qa-bot");
    assert_eq!(seen[0]["version"], "7");
    assert_eq!(seen[0]["handoff"]["fields"]["brief"], "https://docs.example/b");
}

#[tokio::test]
async fn an_unreachable_webhook_reviewer_fails_the_review_with_a_clear_reason() {
    let mut model = model();
    model.reviewers.insert(
        "qa-bot".into(),
        Reviewer {
            id: "qa-bot".into(),
            version: "7".into(),
            kind: ReviewerKind::Webhook { url_env: "QA_BOT_URL".into(), timeout: chrono::Duration::seconds(2) },
        },
    );
    model.seams.get_mut("marketing-to-eng").expect("seam").reviewer = Some("qa-bot".into());
    let store = sqlite().await;
    let mut app = App::new(store.clone(), model);
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/review", listener.local_addr().expect("addr"));
    drop(listener);
    app.webhooks = Webhooks::with_urls(BTreeMap::from([("qa-bot".to_string(), url)]));
    let now = t("2026-11-30T10:00:00Z");
    for (actor, line) in [
        ("mia", "/handoff new marketing-to-eng Launch launch_date=2027-03-01 brief=https://docs.example/b"),
        ("eli", "/handoff accept H-1"),
        ("eli", "/handoff done H-1"),
    ] {
        app.handle(actor, Surface::Console, baton_core::parse(line).expect(line), now, None).await.expect(line);
    }
    let h = store.load(1).await.expect("load").expect("exists").handoff;
    assert_eq!(h.state, State::InProgress);
    assert!(h.verdicts[0].reasons[0].contains("could not review it (request failed"), "{:?}", h.verdicts);
}
