//! The Discord REST calls the delivery worker makes, with Discord's rate limits: per route
//! bucket (`X-RateLimit-Remaining` / `-Reset-After`) and global (a 429 with `global: true`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use baton_core::{Action, Intent};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::deliver::{Limits, SendError};

/// Discord's limit on message content.
const CONTENT_MAX: usize = 2000;
/// The key of Discord's global limit.
const GLOBAL: &str = "discord:global";

/// A Discord REST client for one bot token.
#[derive(Clone, Debug)]
pub struct DiscordApi {
    http: reqwest::Client,
    /// `https://discord.com`, or a test server.
    base: String,
    token: String,
    limits: Limits,
    /// DM channel ids by user id (opening a DM is idempotent; this saves the call).
    dms: Arc<Mutex<HashMap<String, String>>>,
}

/// The message body for an intent: content cut to Discord's limit, buttons, and no mentions
/// parsed from text (escalations ping through the explicit `allowed_mentions` only).
pub fn message(intent: &Intent, nonce: i64) -> Value {
    let content = crate::slack::blocks::truncate(&intent.text, CONTENT_MAX);
    let buttons: Vec<Value> = match intent.handoff {
        Some(h) => intent
            .actions
            .iter()
            .map(|a| {
                let (label, id) = crate::slack::blocks::button(*a);
                let style = match a {
                    Action::Accept | Action::Approve => 3,
                    Action::Reject => 4,
                    _ => 2,
                };
                json!({"type": 2, "style": style, "label": label, "custom_id": format!("{id}:H-{h}")})
            })
            .collect(),
        None => Vec::new(),
    };
    let components = if buttons.is_empty() { json!([]) } else { json!([{"type": 1, "components": buttons}]) };
    json!({
        "content": content,
        "components": components,
        "allowed_mentions": {"parse": []},
        "nonce": format!("baton-{nonce}"),
        "enforce_nonce": true,
    })
}

impl DiscordApi {
    /// A client for `base` (no trailing slash, no `/api`) with a bot token.
    pub fn new(base: &str, token: &str, limits: Limits) -> DiscordApi {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap_or_default();
        DiscordApi {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            limits,
            dms: Arc::default(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        route: &str,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<Value, SendError> {
        let key = format!("discord:{route}");
        self.limits.check(&[GLOBAL, &key], now)?;
        let started = std::time::Instant::now();
        let resp = self
            .http
            .request(method, format!("{}/api/v10/{route}", self.base))
            .header("Authorization", format!("Bot {}", self.token))
            .json(body)
            .send()
            .await
            .map_err(|e| SendError::retry(format!("{route}: {e}")))?;
        let status = resp.status();
        // Limits count from when the answer came, not from when the pass began.
        let now = now + Duration::from_std(started.elapsed()).unwrap_or_default();
        let headers = resp.headers().clone();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        if header("x-ratelimit-remaining").as_deref() == Some("0")
            && let Some(reset) = header("x-ratelimit-reset-after").and_then(|s| s.parse::<f64>().ok())
        {
            self.limits.hold(&key, now + Duration::milliseconds((reset * 1000.0).ceil() as i64));
        }
        if status.as_u16() == 429 {
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            let secs = v["retry_after"].as_f64().unwrap_or(5.0);
            let after = Duration::milliseconds((secs * 1000.0).ceil() as i64);
            let global = v["global"].as_bool() == Some(true) || header("x-ratelimit-global").is_some();
            self.limits.hold(if global { GLOBAL } else { &key }, now + after);
            return Err(SendError::Retry { reason: format!("{route}: rate limited (429)"), after: Some(after) });
        }
        if status.is_server_error() {
            return Err(SendError::retry(format!("{route}: Discord answered {status}")));
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(SendError::Permanent(format!("{route}: Discord answered {status}: {text}")));
        }
        resp.json().await.map_err(|e| SendError::retry(format!("{route}: unreadable answer: {e}")))
    }

    /// The DM channel with a user.
    pub async fn dm_channel(&self, user: &str, now: DateTime<Utc>) -> Result<String, SendError> {
        if let Some(id) = self.dms.lock().ok().and_then(|m| m.get(user).cloned()) {
            return Ok(id);
        }
        let v = self.call(reqwest::Method::POST, "users/@me/channels", &json!({"recipient_id": user}), now).await?;
        let id = v["id"].as_str().ok_or_else(|| SendError::Permanent("DM channel answer had no id".into()))?;
        if let Ok(mut m) = self.dms.lock() {
            m.insert(user.to_string(), id.to_string());
        }
        Ok(id.to_string())
    }

    /// Posts a message; returns `channel:message`. Discord drops a second post with the same
    /// nonce (`enforce_nonce`), so a retry after a crash does not post twice.
    pub async fn post(&self, channel: &str, body: &Value, now: DateTime<Utc>) -> Result<String, SendError> {
        let v = self.call(reqwest::Method::POST, &format!("channels/{channel}/messages"), body, now).await?;
        match v["id"].as_str() {
            Some(id) => Ok(format!("{channel}:{id}")),
            None => Err(SendError::Permanent("Discord's answer had no message id".into())),
        }
    }

    /// Edits the message `reference` (`channel:message`) in place.
    pub async fn edit(&self, reference: &str, body: &Value, now: DateTime<Utc>) -> Result<String, SendError> {
        let (channel, id) = reference
            .split_once(':')
            .ok_or_else(|| SendError::Permanent(format!("malformed Discord message reference `{reference}`")))?;
        let mut body = body.clone();
        if let Some(o) = body.as_object_mut() {
            o.remove("nonce");
            o.remove("enforce_nonce");
        }
        self.call(reqwest::Method::PATCH, &format!("channels/{channel}/messages/{id}"), &body, now).await?;
        Ok(reference.to_string())
    }
}
