//! Discord's HTTP endpoint, `/discord/interactions`: signature and freshness first (401 with the
//! reason, which is also what Discord's own probes with bad signatures expect), then parsing.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;

use super::handler::Discord;
use super::payload;
use super::verify::Keys;

/// Largest interaction body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the endpoint needs.
#[derive(Debug, Default)]
pub struct Endpoint {
    /// Processing, when Discord is configured.
    pub discord: Option<Discord>,
    /// `DISCORD_PUBLIC_KEY`, parsed.
    pub keys: Option<Keys>,
}

/// The Discord route.
pub fn routes(endpoint: Arc<Endpoint>) -> Router {
    Router::new()
        .route("/discord/interactions", post(interactions))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(endpoint)
}

async fn interactions(State(e): State<Arc<Endpoint>>, headers: HeaderMap, body: Bytes) -> Response {
    let received = Utc::now();
    let (Some(keys), Some(discord)) = (&e.keys, &e.discord) else {
        let why = "the Discord endpoint is not configured: set DISCORD_PUBLIC_KEY, DISCORD_BOT_TOKEN and DISCORD_APPLICATION_ID";
        return (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    };
    if let Err(why) = keys.verify(&headers, &body, received) {
        tracing::debug!("refused a Discord request: {why}");
        return (StatusCode::UNAUTHORIZED, why).into_response();
    }
    match payload::parse(&body) {
        Ok(i) => axum::Json(discord.interaction(i, received).await).into_response(),
        Err(why) => (StatusCode::BAD_REQUEST, why).into_response(),
    }
}
