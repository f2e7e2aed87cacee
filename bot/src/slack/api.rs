//! The Slack Web API calls the delivery worker makes: `chat.postMessage`, `chat.update`, file
//! uploads for charts, and the history lookup that finds a message a crashed worker may already
//! have posted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use baton_core::Image;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::deliver::{Limits, SendError};

/// Slack error codes worth retrying; every other `ok: false` is permanent.
const TRANSIENT: [&str; 5] = ["ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"];

/// Slack errors that say the token itself is refused: every call would fail alike until it is fixed.
const TOKEN_REFUSED: [&str; 5] = ["invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"];

/// The hold every Slack call checks, set while Slack refuses the token.
const TOKEN_KEY: &str = "slack:token";

/// What to do about a Slack error that will not go away by itself, for whoever reads the dead
/// letter (the seam's lead) or the log.
fn hint(error: &str) -> Option<&'static str> {
    Some(match error {
        "not_in_channel" => "Baton is not in that channel: invite it there with `/invite @Baton`",
        "channel_not_found" => {
            "Slack knows no such channel, or it is private and Baton is not in it: check the channel in baton.toml, \
             or invite Baton"
        }
        "is_archived" => "the channel is archived: unarchive it, or name another in baton.toml",
        "user_not_found" | "user_disabled" | "user_not_visible" => {
            "that Slack account is gone, deactivated or out of Baton's sight: fix the person's `slack` id in baton.toml"
        }
        "cannot_dm_bot" => "that Slack id is a bot's: fix the person's `slack` id in baton.toml",
        "missing_scope" => {
            "the Slack app lacks a permission this needs: update it from deploy/slack/manifest.yaml and reinstall it"
        }
        e if e.starts_with("restricted_action") => {
            "the workspace or channel does not let apps post there: ask a Slack admin, or name another channel"
        }
        _ => return None,
    })
}

/// Metadata event type carrying the outbox row id, for finding a message after a crash.
const METADATA_EVENT: &str = "baton_outbox";

/// A Slack Web API client for one bot token.
#[derive(Clone, Debug)]
pub struct SlackApi {
    http: reqwest::Client,
    /// `https://slack.com/api`, or a test server.
    base: String,
    token: String,
    limits: Limits,
}

impl SlackApi {
    /// A client for `base` (no trailing slash) with a bot token, sharing rate-limit state.
    pub fn new(base: &str, token: &str, limits: Limits) -> SlackApi {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap_or_default();
        SlackApi { http, base: base.trim_end_matches('/').to_string(), token: token.to_string(), limits }
    }

    /// Calls `method` with a JSON body. `channel` keys `chat.postMessage`'s limit, which Slack
    /// keeps per channel; every other method's limit is the workspace's (Slack's tiers).
    async fn call(&self, method: &str, channel: &str, body: &Value, now: DateTime<Utc>) -> Result<Value, SendError> {
        self.call_with(method, channel, Args::Json(body), now).await
    }

    /// Calls `method` with JSON or form-encoded arguments (some methods take only the latter).
    async fn call_with(
        &self,
        method: &str,
        channel: &str,
        args: Args<'_>,
        now: DateTime<Utc>,
    ) -> Result<Value, SendError> {
        let key = match method {
            "chat.postMessage" => format!("slack:{method}:{channel}"),
            _ => format!("slack:{method}"),
        };
        self.limits.check(&[&key, TOKEN_KEY], now)?;
        let started = std::time::Instant::now();
        let req = self.http.post(format!("{}/{method}", self.base)).bearer_auth(&self.token);
        let req = match args {
            Args::Json(body) => req.json(body),
            Args::Form(form) => req.form(form),
        };
        let resp = req.send().await.map_err(|e| SendError::retry(format!("{method}: {e}")))?;
        let status = resp.status();
        // Limits count from when the answer came, not from when the pass began.
        let answered = now + Duration::from_std(started.elapsed()).unwrap_or_default();
        if status.as_u16() == 429 {
            let after = retry_after(resp.headers()).unwrap_or(Duration::seconds(30));
            self.limits.hold(&key, answered + after);
            return Err(SendError::RateLimited { reason: format!("{method}: rate limited (429)"), after });
        }
        if status.is_server_error() {
            return Err(SendError::retry(format!("{method}: Slack answered {status}")));
        }
        if !status.is_success() {
            return Err(SendError::Permanent(format!("{method}: Slack answered {status}")));
        }
        let value: Value =
            resp.json().await.map_err(|e| SendError::retry(format!("{method}: unreadable answer: {e}")))?;
        if value["ok"].as_bool() == Some(true) {
            return Ok(value);
        }
        let error = value["error"].as_str().unwrap_or("unknown_error").to_string();
        if TOKEN_REFUSED.contains(&error.as_str()) {
            let why = format!("{method}: {error}");
            return Err(crate::deliver::token_refused(&self.limits, TOKEN_KEY, "slack", &why, answered));
        }
        if TRANSIENT.contains(&error.as_str()) {
            Err(SendError::retry(format!("{method}: {error}")))
        } else {
            Err(SendError::Permanent(match hint(&error) {
                Some(hint) => format!("{method}: {error} ({hint})"),
                None => format!("{method}: {error}"),
            }))
        }
    }

    /// Posts a message (see [`super::blocks::message`]) to a channel or user id; returns the
    /// platform reference `channel:ts`. `nonce` is recorded in the message's metadata.
    pub async fn post(
        &self,
        channel: &str,
        message: &Value,
        nonce: i64,
        now: DateTime<Utc>,
    ) -> Result<String, SendError> {
        let mut body = message.clone();
        body["channel"] = json!(channel);
        body["metadata"] = json!({"event_type": METADATA_EVENT, "event_payload": {"outbox_id": nonce}});
        let v = self.call("chat.postMessage", channel, &body, now).await?;
        reference(&v)
    }

    /// Uploads a PNG with Slack's external-upload flow (`files.getUploadURLExternal`, the bytes,
    /// `files.completeUploadExternal` without a channel) and returns the file id, which an
    /// `image` block then shows in a message posted the usual way (so the message carries the
    /// outbox id in its metadata like any other).
    pub async fn upload(&self, image: &Image, now: DateTime<Utc>) -> Result<String, SendError> {
        let png = BASE64
            .decode(&image.png_base64)
            .map_err(|e| SendError::Permanent(format!("the queued image is not base64: {e}")))?;
        let form =
            [("filename", image.name.clone()), ("length", png.len().to_string()), ("alt_txt", image.title.clone())];
        let v = self.call_with("files.getUploadURLExternal", "files", Args::Form(&form), now).await?;
        let (Some(url), Some(id)) = (v["upload_url"].as_str(), v["file_id"].as_str()) else {
            return Err(SendError::Permanent(
                "files.getUploadURLExternal answered without upload_url and file_id".into(),
            ));
        };
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/octet-stream")
            .body(png)
            .send()
            .await
            .map_err(|e| SendError::retry(format!("file upload: {e}")))?;
        match resp.status() {
            s if s.is_success() => {}
            s if s.is_server_error() || s.as_u16() == 429 => return Err(SendError::retry(format!("file upload: {s}"))),
            s => return Err(SendError::Permanent(format!("file upload: {s}"))),
        }
        let files = json!([{"id": id, "title": image.title}]).to_string();
        self.call_with("files.completeUploadExternal", "files", Args::Form(&[("files", files)]), now).await?;
        Ok(id.to_string())
    }

    /// Replaces the message `reference` (`channel:ts`) in place.
    pub async fn update(&self, reference: &str, message: &Value, now: DateTime<Utc>) -> Result<String, SendError> {
        let (channel, ts) = reference
            .split_once(':')
            .ok_or_else(|| SendError::Permanent(format!("malformed Slack message reference `{reference}`")))?;
        let mut body = message.clone();
        body["channel"] = json!(channel);
        body["ts"] = json!(ts);
        let v = self.call("chat.update", channel, &body, now).await?;
        reference_or(&v, reference)
    }

    /// Opens a modal (within 3 seconds of the trigger).
    pub async fn views_open(&self, trigger_id: &str, view: &Value, now: DateTime<Utc>) -> Result<(), SendError> {
        self.call("views.open", "views", &json!({"trigger_id": trigger_id, "view": view}), now).await.map(drop)
    }

    /// Replies `text` (escaped) in the thread of message `ts` in `channel`.
    pub async fn reply_in_thread(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(), SendError> {
        let body = json!({"channel": channel, "thread_ts": ts, "text": super::blocks::escape(text),
                          "unfurl_links": false, "unfurl_media": false});
        self.call("chat.postMessage", channel, &body, now).await.map(drop)
    }

    /// The link to message `ts` in `channel` (`chat.getPermalink`, which takes its arguments as a
    /// form).
    pub async fn permalink(&self, channel: &str, ts: &str, now: DateTime<Utc>) -> Result<String, SendError> {
        let form = [("channel", channel.to_string()), ("message_ts", ts.to_string())];
        let v = self.call_with("chat.getPermalink", channel, Args::Form(&form), now).await?;
        match v["permalink"].as_str() {
            Some(link) => Ok(link.to_string()),
            None => Err(SendError::Permanent("chat.getPermalink answered without a permalink".into())),
        }
    }

    /// Publishes `user`'s App Home tab.
    pub async fn views_publish(&self, user: &str, view: &Value, now: DateTime<Utc>) -> Result<(), SendError> {
        self.call("views.publish", "views.publish", &json!({"user_id": user, "view": view}), now).await.map(drop)
    }

    /// Replaces an open modal; `hash` guards against a concurrent update.
    pub async fn views_update(
        &self,
        view_id: &str,
        hash: &str,
        view: &Value,
        now: DateTime<Utc>,
    ) -> Result<(), SendError> {
        let body = json!({"view_id": view_id, "hash": hash, "view": view});
        self.call("views.update", "views", &body, now).await.map(drop)
    }

    /// Whether `url` may receive a `response_url` answer: exactly `https://hooks.slack.com/…`
    /// (no user info, no other port), or the same origin as this client's API base (a test
    /// server).
    pub fn response_url_allowed(&self, url: &str) -> bool {
        let Ok(u) = reqwest::Url::parse(url) else { return false };
        if !u.username().is_empty() || u.password().is_some() {
            return false;
        }
        let slack = u.scheme() == "https" && u.host_str() == Some("hooks.slack.com") && u.port().is_none();
        let configured = reqwest::Url::parse(&self.base).is_ok_and(|b| b.origin() == u.origin());
        slack || configured
    }

    /// Posts an ephemeral answer to an interaction's `response_url`, refusing any other host.
    pub async fn respond(&self, url: &str, text: &str) -> Result<(), SendError> {
        if !self.response_url_allowed(url) {
            return Err(SendError::Permanent(format!("refused to call response_url on an unexpected host: {url}")));
        }
        let body = json!({"response_type": "ephemeral", "replace_original": false, "text": super::blocks::fit_lines(text, 3000)});
        let resp =
            self.http.post(url).json(&body).send().await.map_err(|e| SendError::retry(format!("response_url: {e}")))?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s if s.is_server_error() || s.as_u16() == 429 => Err(SendError::retry(format!("response_url: {s}"))),
            s => Err(SendError::Permanent(format!("response_url: {s}"))),
        }
    }

    /// Looks for a message this bot already posted for outbox row `nonce` in `channel` (a
    /// channel id, a `#name`, which is looked up among the channels the bot can see, or a user
    /// id, whose DM is opened first). History is read like every Slack read method, from a form:
    /// read methods do not take JSON arguments.
    pub async fn find_posted(
        &self,
        channel: &str,
        nonce: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, SendError> {
        let channel_id = if channel.starts_with('U') || channel.starts_with('W') {
            let v = self.call("conversations.open", channel, &json!({"users": channel}), now).await?;
            match v["channel"]["id"].as_str() {
                Some(id) => id.to_string(),
                None => return Ok(None),
            }
        } else if let Some(name) = channel.strip_prefix('#') {
            match self.channel_id(name, now).await? {
                Some(id) => id,
                None => return Ok(None),
            }
        } else {
            channel.to_string()
        };
        let form = [
            ("channel", channel_id.clone()),
            ("limit", "100".to_string()),
            ("include_all_metadata", "true".to_string()),
        ];
        let v = self.call_with("conversations.history", &channel_id, Args::Form(&form), now).await?;
        let found = v["messages"].as_array().into_iter().flatten().find(|m| {
            m["metadata"]["event_type"] == METADATA_EVENT && m["metadata"]["event_payload"]["outbox_id"] == nonce
        });
        Ok(found.and_then(|m| m["ts"].as_str()).map(|ts| format!("{channel_id}:{ts}")))
    }

    /// The id of the channel called `name`, among the public channels and the private ones the
    /// bot is in (`conversations.list`, a page at a time); `None` when there is none.
    async fn channel_id(&self, name: &str, now: DateTime<Utc>) -> Result<Option<String>, SendError> {
        let mut cursor = String::new();
        for _ in 0..CHANNEL_PAGES {
            let mut form = vec![
                ("types", "public_channel,private_channel".to_string()),
                ("exclude_archived", "true".to_string()),
                ("limit", "1000".to_string()),
            ];
            if !cursor.is_empty() {
                form.push(("cursor", cursor));
            }
            let v = self.call_with("conversations.list", "list", Args::Form(&form), now).await?;
            let channels = v["channels"].as_array().into_iter().flatten();
            if let Some(id) = channels.filter(|c| c["name"] == name).find_map(|c| c["id"].as_str()) {
                return Ok(Some(id.to_string()));
            }
            cursor = v["response_metadata"]["next_cursor"].as_str().unwrap_or_default().to_string();
            if cursor.is_empty() {
                break;
            }
        }
        Ok(None)
    }
}

/// Most pages of `conversations.list` read looking for a channel by name (a thousand channels
/// each).
const CHANNEL_PAGES: usize = 20;

/// Arguments of a Web API call.
enum Args<'a> {
    Json(&'a Value),
    Form(&'a [(&'a str, String)]),
}

fn reference(v: &Value) -> Result<String, SendError> {
    match (v["channel"].as_str(), v["ts"].as_str()) {
        (Some(c), Some(ts)) => Ok(format!("{c}:{ts}")),
        _ => Err(SendError::Permanent("Slack's answer had no channel and ts".into())),
    }
}

fn reference_or(v: &Value, fallback: &str) -> Result<String, SendError> {
    reference(v).or_else(|_| Ok(fallback.to_string()))
}

/// The `Retry-After` header, in seconds.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: f64 = headers.get("retry-after")?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::milliseconds((secs * 1000.0).ceil() as i64))
}
