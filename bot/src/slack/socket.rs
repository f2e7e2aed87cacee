//! Socket Mode: for workspaces that cannot expose a public URL. Baton opens a WebSocket with the
//! app-level token (`apps.connections.open`), receives the same payloads as over HTTP in
//! envelopes, and acknowledges each with its `envelope_id` (carrying the answer, where Slack
//! takes one). It reconnects when Slack asks it to or the connection drops.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::handler::Slack;
use super::payload;

/// Runs until `shutdown`, reconnecting with backoff.
pub async fn run(slack: Slack, api_base: String, app_token: String, shutdown: watch::Receiver<bool>) {
    let http = reqwest::Client::new();
    crate::reconnect::forever("Socket Mode", Duration::from_secs(30), shutdown, |mut stop| {
        let (slack, http, api_base, app_token) = (slack.clone(), http.clone(), api_base.clone(), app_token.clone());
        async move { session(&slack, &http, &api_base, &app_token, &mut stop).await }
    })
    .await;
}

/// One connection, until Slack says to reconnect, it drops, or shutdown.
async fn session(
    slack: &Slack,
    http: &reqwest::Client,
    api_base: &str,
    app_token: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let opened: Value = http
        .post(format!("{}/apps.connections.open", api_base.trim_end_matches('/')))
        .bearer_auth(app_token)
        .send()
        .await?
        .json()
        .await?;
    let url = match (opened["ok"].as_bool(), opened["url"].as_str()) {
        (Some(true), Some(url)) => url.to_string(),
        _ => anyhow::bail!("apps.connections.open refused: {}", opened["error"].as_str().unwrap_or("no url")),
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    tracing::info!("Socket Mode connected");
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = shutdown.changed() => {
                let _ = ws.close(None).await;
                return Ok(());
            }
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Ping(p))) => {
                ws.send(Message::Pong(p)).await?;
                continue;
            }
            Some(Ok(Message::Close(_))) | None => return Ok(()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        };
        let envelope: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("ignored a Socket Mode frame that is not JSON: {e}");
                continue;
            }
        };
        let id = envelope["envelope_id"].as_str().map(str::to_string);
        let answer = match envelope["type"].as_str() {
            Some("hello") => continue,
            Some("disconnect") => {
                tracing::info!("Slack asked to reconnect ({})", envelope["reason"].as_str().unwrap_or("no reason"));
                return Ok(());
            }
            Some("slash_commands") => match payload::parse_command_json(&envelope["payload"]) {
                Ok(cmd) => slack.command(cmd).await,
                Err(why) => ephemeral_refusal(&why),
            },
            Some("interactive") => match payload::parse_interaction_json(&envelope["payload"]) {
                Ok(i) => slack.interaction(i).await,
                Err(why) => {
                    tracing::warn!("refused an interaction: {why}");
                    Value::Null
                }
            },
            Some("events_api") => match payload::parse_event_json(&envelope["payload"]) {
                Ok(e) => slack.event(e).await,
                Err(why) => {
                    tracing::warn!("refused an event: {why}");
                    Value::Null
                }
            },
            other => {
                tracing::debug!("ignored Socket Mode envelope {other:?}");
                Value::Null
            }
        };
        if let Some(id) = id {
            let mut ack = json!({"envelope_id": id});
            if !answer.is_null() {
                ack["payload"] = answer;
            }
            ws.send(Message::Text(ack.to_string().into())).await?;
        }
    }
}

fn ephemeral_refusal(why: &str) -> Value {
    json!({"response_type": "ephemeral", "text": format!("✗ {why}")})
}
