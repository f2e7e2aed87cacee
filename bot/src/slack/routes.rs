//! Slack's HTTP endpoints: `/slack/commands`, `/slack/interactions`, `/slack/events`.
//! Size is capped first (413), then the signature is checked (401), and only then is anything
//! parsed (400 with the reason when malformed).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

use super::handler::Slack;
use super::payload;
use super::verify::verify;

/// Largest request body accepted (Slack's are a few kilobytes; a view submission can be tens).
pub const BODY_LIMIT: usize = 256 * 1024;

/// What the endpoints need.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// Processing, when Slack is configured.
    pub slack: Option<Slack>,
    /// `SLACK_SIGNING_SECRET`.
    pub signing_secret: Option<String>,
}

/// The Slack routes.
pub fn routes(endpoints: Endpoints) -> Router {
    Router::new()
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interactions))
        .route("/slack/events", post(events))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(Arc::new(endpoints))
}

/// Checks the request; on success, the processor to use.
fn admit<'a>(e: &'a Endpoints, headers: &HeaderMap, body: &[u8]) -> Result<&'a Slack, (StatusCode, String)> {
    let (Some(secret), Some(slack)) = (&e.signing_secret, &e.slack) else {
        let why = "Slack's HTTP endpoints are not configured: set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN";
        return Err((StatusCode::SERVICE_UNAVAILABLE, why.to_string()));
    };
    verify(secret, headers, body).map_err(|why| {
        tracing::warn!("refused a Slack request: {why}");
        (StatusCode::UNAUTHORIZED, why)
    })?;
    Ok(slack)
}

fn answer(v: Value) -> Response {
    if v.is_null() { StatusCode::OK.into_response() } else { axum::Json(v).into_response() }
}

fn bad(why: String) -> Response {
    (StatusCode::BAD_REQUEST, why).into_response()
}

async fn commands(State(e): State<Arc<Endpoints>>, headers: HeaderMap, body: Bytes) -> Response {
    let slack = match admit(&e, &headers, &body) {
        Ok(s) => s,
        Err(refusal) => return refusal.into_response(),
    };
    match payload::parse_command_form(&body) {
        Ok(cmd) => answer(slack.command(cmd).await),
        Err(why) => bad(why),
    }
}

async fn interactions(State(e): State<Arc<Endpoints>>, headers: HeaderMap, body: Bytes) -> Response {
    let slack = match admit(&e, &headers, &body) {
        Ok(s) => s,
        Err(refusal) => return refusal.into_response(),
    };
    match payload::parse_interaction_form(&body) {
        Ok(i) => answer(slack.interaction(i).await),
        Err(why) => bad(why),
    }
}

async fn events(State(e): State<Arc<Endpoints>>, headers: HeaderMap, body: Bytes) -> Response {
    let slack = match admit(&e, &headers, &body) {
        Ok(s) => s,
        Err(refusal) => return refusal.into_response(),
    };
    if let Some(n) = headers.get("x-slack-retry-num").and_then(|v| v.to_str().ok()) {
        tracing::info!(retry = n, "Slack is retrying an event (its id makes it act once)");
    }
    match payload::parse_event(&body) {
        Ok(ev) => answer(slack.event(ev).await),
        Err(why) => bad(why),
    }
}
