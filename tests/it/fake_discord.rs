//! A local stand-in for Discord's REST API: checks the bot token and request bodies the way
//! Discord does (content length, nonce, `allowed_mentions`, command shapes), keeps channel
//! histories and threads, honours `enforce_nonce`, can be scripted to answer 429, records calls.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};

/// The bot token the fake accepts.
pub const TOKEN: &str = "discord-test-token";

/// A recorded call.
#[derive(Clone, Debug)]
pub struct Call {
    /// HTTP method.
    pub method: String,
    /// Path after `/api/v10/`.
    pub route: String,
    /// JSON body.
    pub body: Value,
    /// Status answered.
    pub status: u16,
}

/// A scripted answer.
#[derive(Clone, Debug)]
pub enum Scripted {
    /// 429 with `retry_after` seconds, global or not.
    RateLimited(f64, bool),
    /// 200 as normal, but announcing the route's bucket is exhausted for this many seconds.
    BucketEmpty(f64),
    /// An error as Discord answers one: status, JSON error code and message.
    Error(u16, u64, &'static str),
}

#[derive(Debug, Default)]
struct Inner {
    calls: Vec<Call>,
    script: VecDeque<Scripted>,
    next_id: u64,
    messages: HashMap<String, Vec<Value>>,
    nonces: HashMap<String, Value>,
    gateway: Option<String>,
    /// The first file of each message with files, by message id.
    files: HashMap<String, Vec<u8>>,
}

/// A running fake.
#[derive(Clone, Debug)]
pub struct FakeDiscord {
    /// Base URL to give Baton as `DISCORD_API_BASE_URL`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeDiscord {
    /// Starts the fake on a free port.
    pub async fn start() -> FakeDiscord {
        let inner = Arc::new(Mutex::new(Inner { next_id: 900_000_000_000_000_000, ..Inner::default() }));
        let app = axum::Router::new().route("/api/v10/{*route}", any(handle)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeDiscord { url: format!("http://{addr}"), inner }
    }

    /// Answers the next calls with these, in order.
    pub fn script(&self, answers: Vec<Scripted>) {
        self.inner.lock().expect("lock").script.extend(answers);
    }

    /// The Gateway URL `gateway/bot` hands out.
    pub fn set_gateway(&self, url: &str) {
        self.inner.lock().expect("lock").gateway = Some(url.into());
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().expect("lock").calls.clone()
    }

    /// Messages posted in a channel or thread, oldest first.
    pub fn messages(&self, channel: &str) -> Vec<Value> {
        self.inner.lock().expect("lock").messages.get(channel).cloned().unwrap_or_default()
    }
}

impl FakeDiscord {
    /// The first file attached to message `id`.
    pub fn file(&self, id: &str) -> Option<Vec<u8>> {
        self.inner.lock().expect("lock").files.get(id).cloned()
    }
}

/// The parts of a multipart/form-data body: `(name, filename, content type, bytes)`.
fn multipart(body: &[u8], boundary: &str) -> Vec<(String, Option<String>, String, Vec<u8>)> {
    let delimiter = format!("--{}", boundary.trim_matches('"'));
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
    };
    let mut parts = Vec::new();
    let mut at = match find(body, delimiter.as_bytes(), 0) {
        Some(i) => i + delimiter.len(),
        None => return parts,
    };
    while let Some(end) = find(body, delimiter.as_bytes(), at) {
        let part = &body[at..end];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        if let Some(split) = find(part, b"\r\n\r\n", 0) {
            let head = String::from_utf8_lossy(&part[..split]).to_string();
            let field = |key: &str| {
                let start = head.find(&format!("{key}=\""))? + key.len() + 2;
                head[start..].split('"').next().map(str::to_string)
            };
            let kind = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_string()))
                .unwrap_or_default();
            parts.push((field("name").unwrap_or_default(), field("filename"), kind, part[split + 4..].to_vec()));
        }
        at = end + delimiter.len();
    }
    parts
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"message": message, "code": 50035}))).into_response()
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    Path(route): Path<String>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Response {
    let mut s = inner.lock().expect("lock");
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    // A message with files comes as multipart/form-data: `payload_json` plus `files[n]`.
    let mut files: Vec<(String, String, Vec<u8>)> = Vec::new();
    let json_body: Value = if let Some(boundary) = content_type.strip_prefix("multipart/form-data; boundary=") {
        let mut payload = Value::Null;
        for (name, filename, part_type, bytes) in multipart(&raw, boundary) {
            match (name.as_str(), filename) {
                ("payload_json", None) => payload = serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                (n, Some(f)) if n.starts_with("files[") => files.push((f, part_type, bytes)),
                _ => {}
            }
        }
        payload
    } else if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw).unwrap_or(Value::Null)
    };
    let call = |status: u16| Call { method: method.to_string(), route: route.clone(), body: json_body.clone(), status };
    let webhook = route.starts_with("webhooks/") || route.starts_with("interactions/");
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if !webhook && auth != Some(&format!("Bot {TOKEN}")) {
        s.calls.push(call(401));
        return error(StatusCode::UNAUTHORIZED, "401: Unauthorized");
    }
    let mut bucket_empty = None;
    match s.script.pop_front() {
        Some(Scripted::RateLimited(after, global)) => {
            s.calls.push(call(429));
            let mut resp = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"message": "You are being rate limited.", "retry_after": after, "global": global})),
            )
                .into_response();
            resp.headers_mut().insert("retry-after", format!("{}", after.ceil()).parse().expect("header"));
            if global {
                resp.headers_mut().insert("x-ratelimit-global", "true".parse().expect("header"));
            }
            return resp;
        }
        Some(Scripted::BucketEmpty(after)) => bucket_empty = Some(after),
        Some(Scripted::Error(status, code, message)) => {
            s.calls.push(call(status));
            let status = StatusCode::from_u16(status).expect("status");
            return (status, axum::Json(json!({"message": message, "code": code}))).into_response();
        }
        None => {}
    }
    let parts: Vec<&str> = route.split('/').collect();
    let answer: Result<Value, &str> = match (method.as_str(), parts.as_slice()) {
        ("POST", ["channels", channel, "messages"]) => {
            let content = json_body["content"].as_str().unwrap_or("");
            let has_components = json_body["components"].as_array().is_some_and(|c| !c.is_empty());
            let described = json_body["attachments"].as_array().cloned().unwrap_or_default();
            if content.is_empty() && !has_components && files.is_empty() {
                Err("Cannot send an empty message")
            } else if described.len() != files.len()
                || described.iter().zip(&files).any(|(a, f)| a["filename"].as_str() != Some(f.0.as_str()))
            {
                Err("attachments: every file needs an attachment entry with its filename, in order")
            } else if content.chars().count() > 2000 {
                Err("content: Must be 2000 or fewer in length.")
            } else if !components_fit(&json_body["components"]) {
                Err("components: Must be 5 or fewer action rows of 5 or fewer buttons.")
            } else if !json_body["allowed_mentions"].is_object() {
                Err("Baton always sets allowed_mentions")
            } else if json_body["nonce"].as_str().is_some_and(|n| n.len() > 25) {
                Err("nonce: Must be 25 or fewer in length.")
            } else if let Some(existing) = json_body["nonce"].as_str().and_then(|n| s.nonces.get(n)).cloned()
                && json_body["enforce_nonce"] == true
            {
                Ok(existing)
            } else {
                s.next_id += 1;
                let attachments: Vec<Value> = files
                    .iter()
                    .map(|(name, kind, bytes)| json!({"filename": name, "content_type": kind, "size": bytes.len()}))
                    .collect();
                let msg = json!({"id": s.next_id.to_string(), "channel_id": channel, "content": content,
                    "components": json_body["components"], "allowed_mentions": json_body["allowed_mentions"],
                    "attachments": attachments});
                if let Some((_, _, bytes)) = files.first() {
                    let id = s.next_id.to_string();
                    s.files.insert(id, bytes.clone());
                }
                if let Some(n) = json_body["nonce"].as_str() {
                    s.nonces.insert(n.to_string(), msg.clone());
                }
                s.messages.entry(channel.to_string()).or_default().push(msg.clone());
                Ok(msg)
            }
        }
        ("POST", ["channels", channel, "messages", message, "threads"]) => {
            let name = json_body["name"].as_str().unwrap_or("");
            if name.is_empty() || name.chars().count() > 100 {
                Err("name: Must be between 1 and 100 in length.")
            } else if !s.messages.get(*channel).is_some_and(|m| m.iter().any(|x| x["id"] == *message)) {
                Err("Unknown Message")
            } else {
                Ok(json!({"id": format!("thread-{message}"), "type": 11, "parent_id": channel, "name": name}))
            }
        }
        ("PATCH", ["channels", _, "messages", _]) if !components_fit(&json_body["components"]) => {
            Err("components: Must be 5 or fewer action rows of 5 or fewer buttons.")
        }
        ("PATCH", ["channels", channel, "messages", message]) => {
            // The message is edited in place: what was sent replaces its content and buttons.
            let stored = s.messages.get_mut(*channel).and_then(|m| m.iter_mut().find(|x| x["id"] == *message));
            match stored {
                Some(msg) => {
                    for field in ["content", "components"] {
                        if !json_body[field].is_null() {
                            msg[field] = json_body[field].clone();
                        }
                    }
                    Ok(msg.clone())
                }
                None => Err("Unknown Message"),
            }
        }
        ("POST", ["users", "@me", "channels"]) => match json_body["recipient_id"].as_str() {
            Some(user) => Ok(json!({"id": format!("dm-{user}"), "type": 1})),
            None => Err("recipient_id: This field is required"),
        },
        ("PATCH", ["webhooks", _, _, "messages", "@original"]) => {
            Ok(json!({"id": "1", "content": json_body["content"]}))
        }
        ("POST", ["interactions", _, _, "callback"]) => Ok(Value::Null),
        ("PUT", ["applications", _, "commands"]) | ("PUT", ["applications", _, "guilds", _, "commands"]) => {
            // Also at most 8,000 characters of names, descriptions and choices in one command.
            let valid = json_body
                .as_array()
                .is_some_and(|cmds| cmds.iter().all(|c| command_valid(c) && command_chars(c) <= 8000));
            if valid { Ok(json_body.clone()) } else { Err("Invalid Form Body") }
        }
        ("GET", ["gateway", "bot"]) => match &s.gateway {
            Some(url) => Ok(json!({"url": url, "shards": 1})),
            None => Err("no gateway"),
        },
        _ => Err("404: Not Found"),
    };
    match answer {
        Ok(v) => {
            s.calls.push(call(200));
            let mut resp =
                if v.is_null() { StatusCode::NO_CONTENT.into_response() } else { axum::Json(v).into_response() };
            if let Some(after) = bucket_empty {
                let h = resp.headers_mut();
                h.insert("x-ratelimit-bucket", "fake-bucket".parse().expect("header"));
                h.insert("x-ratelimit-remaining", "0".parse().expect("header"));
                h.insert("x-ratelimit-reset-after", format!("{after}").parse().expect("header"));
            }
            resp
        }
        Err(why) => {
            s.calls.push(call(400));
            error(StatusCode::BAD_REQUEST, why)
        }
    }
}

/// Discord's rules for a command or option, at every level: a lower-case name of 1 to 32
/// characters, a description of 1 to 100, at most 25 options with the required ones first, at
/// most 25 choices.
fn command_valid(c: &Value) -> bool {
    let name = c["name"].as_str().unwrap_or("");
    let desc = c["description"].as_str().unwrap_or("");
    let options = c["options"].as_array().map_or(&[][..], Vec::as_slice);
    let required: Vec<bool> = options.iter().map(|o| o["required"].as_bool().unwrap_or(false)).collect();
    (1..=32).contains(&name.len())
        && name.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-' || ch == '_')
        && (1..=100).contains(&desc.chars().count())
        && options.len() <= 25
        && required.windows(2).all(|w| w[0] || !w[1])
        && c["choices"].as_array().is_none_or(|ch| ch.len() <= 25)
        && options.iter().all(command_valid)
}

/// The characters Discord counts towards a command's 8,000: every name, description and choice.
fn command_chars(c: &Value) -> usize {
    let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let choices: usize =
        c["choices"].as_array().into_iter().flatten().map(|ch| len(&ch["name"]) + len(&ch["value"])).sum();
    let options: usize = c["options"].as_array().into_iter().flatten().map(command_chars).sum();
    len(&c["name"]) + len(&c["description"]) + choices + options
}

/// Discord's limits on a message's components: at most five action rows of at most five buttons.
fn components_fit(components: &Value) -> bool {
    let rows = components.as_array().map_or(&[][..], Vec::as_slice);
    rows.len() <= 5 && rows.iter().all(|row| row["components"].as_array().is_none_or(|b| b.len() <= 5))
}
