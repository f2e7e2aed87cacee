//! The Discord REST calls the delivery worker makes, with Discord's rate limits: per route
//! bucket (`X-RateLimit-Remaining` / `-Reset-After`) and global (a 429 with `global: true`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use baton_core::{Action, Image, Intent};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::deliver::{Limits, SendError};

/// Discord's limit on message content.
const CONTENT_MAX: usize = 2000;
/// The key of Discord's global limit.
const GLOBAL: &str = "discord:global";
/// The hold every Discord call checks, set while Discord refuses the token.
const TOKEN_KEY: &str = "discord:token";

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

/// What to do about a Discord error (its JSON `code`) that will not go away by itself, for whoever
/// reads the dead letter (the seam's lead) or the log.
fn hint(code: u64) -> Option<&'static str> {
    Some(match code {
        10003 => "Discord knows no such channel: check `discord_channel` in baton.toml",
        10013 => "Discord knows no such user: fix the person's `discord` id in baton.toml, or have them link again",
        50001 => "Baton cannot see that channel: give its role View Channel there",
        50013 => {
            "Baton's role lacks a permission there: grant it Send Messages, Create Public Threads and Send \
             Messages in Threads"
        }
        50007 => "that person does not take direct messages from Baton: ask them to allow them, or to use Slack",
        _ => return None,
    })
}

/// Discord's limit on buttons in one action row.
const BUTTONS_PER_ROW: usize = 5;

/// The message body for an intent: content cut to Discord's limit, buttons, and pings for exactly the users in `ping`: `allowed_mentions` parses
/// nothing from the text, so no `@everyone` or mention typed into a handoff can ping anyone.
pub fn message(intent: &Intent, nonce: i64, ping: &[String]) -> Value {
    let mentions: String = ping.iter().map(|u| format!("<@{u}> ")).collect();
    let content = crate::slack::blocks::truncate(&format!("{mentions}{}", intent.text), CONTENT_MAX);
    let buttons: Vec<Value> = match intent.handoff {
        Some(h) => intent
            .actions
            .iter()
            .map(|a| {
                let (label, id) = crate::slack::blocks::button(*a);
                let style = match a {
                    Action::Accept | Action::Approve | Action::Done => 3,
                    Action::Reject | Action::Blocked => 4,
                    _ => 2,
                };
                json!({"type": 2, "style": style, "label": label, "custom_id": format!("{id}:H-{h}")})
            })
            .collect(),
        None => Vec::new(),
    };
    // Discord takes at most five buttons per action row (an owner's reminder has five).
    let components: Vec<Value> =
        buttons.chunks(BUTTONS_PER_ROW).map(|row| json!({"type": 1, "components": row})).collect();
    json!({
        "content": content,
        "components": components,
        "allowed_mentions": {"parse": [], "users": ping},
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
        self.call_with(method, route, body, None, now).await
    }

    /// [`Self::call`], sending `body` as `payload_json` beside a file when one is given.
    async fn call_with(
        &self,
        method: reqwest::Method,
        route: &str,
        body: &Value,
        file: Option<(String, Vec<u8>)>,
        now: DateTime<Utc>,
    ) -> Result<Value, SendError> {
        let key = format!("discord:{route}");
        self.limits.check(&[GLOBAL, &key, TOKEN_KEY], now)?;
        let started = std::time::Instant::now();
        let mut req = self
            .http
            .request(method, format!("{}/api/v10/{route}", self.base))
            .header("Authorization", format!("Bot {}", self.token));
        if let Some((name, bytes)) = file {
            let part = reqwest::multipart::Part::bytes(bytes)
                .file_name(name)
                .mime_str("image/png")
                .map_err(|e| SendError::Permanent(format!("{route}: {e}")))?;
            req = req.multipart(
                reqwest::multipart::Form::new().text("payload_json", body.to_string()).part("files[0]", part),
            );
        } else if !body.is_null() {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| SendError::retry(format!("{route}: {e}")))?;
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
            return Err(SendError::RateLimited { reason: format!("{route}: rate limited (429)"), after });
        }
        if status.is_server_error() {
            return Err(SendError::retry(format!("{route}: Discord answered {status}")));
        }
        if status.as_u16() == 401 {
            let why = format!("{route}: 401");
            return Err(crate::deliver::token_refused(&self.limits, TOKEN_KEY, "discord", &why, now));
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            let code = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["code"].as_u64());
            return Err(SendError::Permanent(match code.and_then(hint) {
                Some(hint) => format!("{route}: Discord answered {status}: {text} ({hint})"),
                None => format!("{route}: Discord answered {status}: {text}"),
            }));
        }
        let text = resp.text().await.map_err(|e| SendError::retry(format!("{route}: unreadable answer: {e}")))?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| SendError::retry(format!("{route}: unreadable answer: {e}")))
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

    /// Posts a message with a PNG attached (multipart: `payload_json` and `files[0]`).
    pub async fn post_image(
        &self,
        channel: &str,
        body: &Value,
        image: &Image,
        now: DateTime<Utc>,
    ) -> Result<String, SendError> {
        let png = BASE64
            .decode(&image.png_base64)
            .map_err(|e| SendError::Permanent(format!("the queued image is not base64: {e}")))?;
        let mut body = body.clone();
        body["attachments"] = json!([{"id": 0, "filename": image.name, "description": image.title}]);
        let route = format!("channels/{channel}/messages");
        let v = self.call_with(reqwest::Method::POST, &route, &body, Some((image.name.clone(), png)), now).await?;
        match v["id"].as_str() {
            Some(id) => Ok(format!("{channel}:{id}")),
            None => Err(SendError::Permanent("Discord's answer had no message id".into())),
        }
    }

    /// Opens a thread on a message (`channel:message`); returns the thread's channel id.
    pub async fn start_thread(&self, reference: &str, name: &str, now: DateTime<Utc>) -> Result<String, SendError> {
        let (channel, id) = reference
            .split_once(':')
            .ok_or_else(|| SendError::Permanent(format!("malformed Discord message reference `{reference}`")))?;
        let name = crate::slack::blocks::truncate(name, 100);
        let body = json!({"name": name, "auto_archive_duration": 10080});
        let v =
            self.call(reqwest::Method::POST, &format!("channels/{channel}/messages/{id}/threads"), &body, now).await?;
        v["id"].as_str().map(str::to_string).ok_or_else(|| SendError::Permanent("the thread answer had no id".into()))
    }

    /// Replaces the answer to an interaction (deferred earlier) while its token is valid.
    pub async fn edit_original(&self, application_id: &str, token: &str, content: &str) -> Result<(), SendError> {
        let body = json!({"content": crate::slack::blocks::fit_lines(content, CONTENT_MAX), "allowed_mentions": {"parse": []}});
        let route = format!("webhooks/{application_id}/{token}/messages/@original");
        self.call(reqwest::Method::PATCH, &route, &body, Utc::now()).await.map(drop)
    }

    /// Replaces the application's slash commands, in one guild (for testing) or globally.
    pub async fn register(
        &self,
        application_id: &str,
        guild: Option<&str>,
        commands: &Value,
    ) -> Result<Value, SendError> {
        let route = match guild {
            Some(g) => format!("applications/{application_id}/guilds/{g}/commands"),
            None => format!("applications/{application_id}/commands"),
        };
        self.call(reqwest::Method::PUT, &route, commands, Utc::now()).await
    }

    /// Answers an interaction received over the Gateway (HTTP interactions answer in the response).
    pub async fn callback(&self, id: &str, token: &str, response: &Value) -> Result<(), SendError> {
        self.call(reqwest::Method::POST, &format!("interactions/{id}/{token}/callback"), response, Utc::now())
            .await
            .map(drop)
    }

    /// The Gateway URL for this bot.
    pub async fn gateway_url(&self) -> Result<String, SendError> {
        let v = self.call(reqwest::Method::GET, "gateway/bot", &Value::Null, Utc::now()).await?;
        v["url"].as_str().map(str::to_string).ok_or_else(|| SendError::Permanent("gateway/bot had no url".into()))
    }

    /// The bot token (the Gateway identifies with it).
    pub fn token(&self) -> &str {
        &self.token
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

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::{IntentKind, Recipient};

    #[test]
    fn buttons_go_five_to_an_action_row() {
        let mut intent = Intent::message(Recipient::DiscordChannel("1".into()), IntentKind::Escalation, "x".into());
        intent.handoff = Some(3);
        let rows = |intent: &Intent| {
            let body = message(intent, 1, &[]);
            body["components"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|r| r["components"].as_array().map_or(0, Vec::len))
                .collect::<Vec<_>>()
        };
        assert_eq!(rows(&intent), Vec::<usize>::new(), "no buttons, no rows");
        intent.actions = vec![Action::Ack, Action::Update, Action::Snooze, Action::Return, Action::Blocked];
        assert_eq!(rows(&intent), [5]);
        intent.actions.push(Action::Approve);
        assert_eq!(rows(&intent), [5, 1]);
    }
}
