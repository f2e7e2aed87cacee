//! The Discord Gateway: the alternative to the HTTP endpoint for bots without a public URL.
//! Baton heartbeats and hands each `INTERACTION_CREATE` to the same handler as the HTTP endpoint,
//! answering through the REST callback. It also asks for guild messages with their content, to
//! keep what people say in a handoff's thread with its log; when the app may not have message
//! content (a privileged intent, off until enabled in the Developer Portal), Discord closes with
//! 4014 and Baton identifies again without it (interactions arrive regardless). It reconnects when
//! Discord asks it to or the connection drops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::handler::Discord;
use super::payload;

/// Runs until `shutdown`, reconnecting with backoff.
pub async fn run(discord: Discord, shutdown: watch::Receiver<bool>) {
    // Cleared for good once Discord refuses the message-content intent.
    let content = Arc::new(AtomicBool::new(true));
    crate::reconnect::forever("Discord Gateway", Duration::from_secs(60), shutdown, |mut stop| {
        let (discord, content) = (discord.clone(), content.clone());
        async move { session(&discord, &mut stop, &content).await }
    })
    .await;
}

/// Guild messages (`GUILD_MESSAGES`) and their text (`MESSAGE_CONTENT`, privileged).
const MESSAGE_INTENTS: u64 = (1 << 9) | (1 << 15);

/// The close code of a Gateway session that asked for an intent the app may not have.
const DISALLOWED_INTENTS: u16 = 4014;

async fn session(discord: &Discord, shutdown: &mut watch::Receiver<bool>, content: &AtomicBool) -> anyhow::Result<()> {
    let base = discord.api.gateway_url().await.map_err(|e| anyhow::anyhow!("gateway/bot: {e}"))?;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{base}/?v=10&encoding=json")).await?;
    let mut seq: Option<u64> = None;
    let mut heartbeat = tokio::time::interval(Duration::from_secs(3600));
    loop {
        let frame = tokio::select! {
            m = ws.next() => m,
            _ = heartbeat.tick() => {
                ws.send(Message::Text(json!({"op": 1, "d": seq}).to_string().into())).await?;
                continue;
            }
            _ = shutdown.changed() => {
                let _ = ws.close(None).await;
                return Ok(());
            }
        };
        let text = match frame {
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Close(Some(frame)))) if u16::from(frame.code) == DISALLOWED_INTENTS => {
                content.store(false, Ordering::Relaxed);
                tracing::warn!(
                    "Discord refused message content: what people say in handoff threads is not kept. Enable \
                     Message Content Intent (Developer Portal, Bot, Privileged Gateway Intents) to keep it"
                );
                return Ok(());
            }
            Some(Ok(Message::Close(_))) | None => return Ok(()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        };
        let v: Value = serde_json::from_str(&text)?;
        if let Some(s) = v["s"].as_u64() {
            seq = Some(s);
        }
        match v["op"].as_u64() {
            Some(10) => {
                let every = v["d"]["heartbeat_interval"].as_u64().unwrap_or(41_250);
                heartbeat = tokio::time::interval(Duration::from_millis(every));
                heartbeat.tick().await;
                let intents = if content.load(Ordering::Relaxed) { MESSAGE_INTENTS } else { 0 };
                let identify = json!({"op": 2, "d": {"token": discord.api.token(), "intents": intents,
                    "properties": {"os": std::env::consts::OS, "browser": "baton", "device": "baton"}}});
                ws.send(Message::Text(identify.to_string().into())).await?;
            }
            Some(1) => ws.send(Message::Text(json!({"op": 1, "d": seq}).to_string().into())).await?,
            Some(7 | 9) => return Ok(()),
            Some(0) if v["t"] == "INTERACTION_CREATE" => {
                let body = v["d"].to_string();
                match payload::parse(body.as_bytes()) {
                    Ok(i) => {
                        let (id, token) = (i.id.clone(), i.token.clone());
                        let response = discord.interaction(i, Utc::now()).await;
                        if let Err(e) = discord.api.callback(&id, &token, &response).await {
                            tracing::warn!("answering an interaction over REST failed: {e}");
                        }
                    }
                    Err(why) => tracing::warn!("ignored a Gateway interaction: {why}"),
                }
            }
            Some(0) if v["t"] == "MESSAGE_CREATE" => {
                if let Some(m) = payload::ThreadMessage::from_gateway(&v["d"]) {
                    let discord = discord.clone();
                    // The Gateway reads on while the store is written.
                    tokio::spawn(async move {
                        if let Err(e) = discord.thread_message(m).await {
                            tracing::warn!("keeping a Discord thread message failed: {e:#}");
                        }
                    });
                }
            }
            _ => {}
        }
    }
}
