//! A local stand-in for Slack's Web API that checks requests the way Slack does (bot token, JSON
//! body, required arguments, Block Kit limits), keeps channel histories with message metadata,
//! can be scripted to fail, and records every call.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The bot token the fake accepts.
pub const TOKEN: &str = "xoxb-test-token";
/// The app-level token the fake accepts for Socket Mode.
pub const APP_TOKEN: &str = "xapp-test-token";

/// A recorded call.
#[derive(Clone, Debug)]
pub struct Call {
    /// `chat.postMessage`, …
    pub method: String,
    /// The JSON body as sent.
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// The HTTP status answered.
    pub status: u16,
    /// The Slack error answered (`ok: false`), if any.
    pub error: Option<&'static str>,
}

/// A scripted answer for the next matching call.
#[derive(Clone, Debug)]
pub enum Scripted {
    /// An HTTP status with an optional `Retry-After` (seconds).
    Status(u16, Option<u64>),
    /// `200 {"ok": false, "error": …}`.
    Error(&'static str),
}

#[derive(Debug, Default)]
struct Inner {
    calls: Vec<Call>,
    script: HashMap<String, VecDeque<Scripted>>,
    delay: Duration,
    next_ts: u64,
    /// Messages per resolved channel id, oldest first.
    history: HashMap<String, Vec<Value>>,
    /// What `apps.connections.open` hands out.
    socket_url: Option<String>,
    /// This fake's base URL (upload URLs point back at it).
    base: String,
    /// Files by id: `(declared length, bytes once uploaded, completed)`.
    files: HashMap<String, (usize, Option<Vec<u8>>, bool)>,
    /// Each user's App Home tab as last published, with its hash.
    homes: HashMap<String, Value>,
}

/// A running fake.
#[derive(Clone, Debug)]
pub struct FakeSlack {
    /// Base URL to give Baton as `SLACK_API_BASE_URL`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

/// Channel id a name or user id resolves to (`#ops` → `C_ops`, `U1` → `D_U1`).
pub fn resolve(channel: &str) -> String {
    match channel.strip_prefix('#') {
        Some(name) => format!("C_{name}"),
        None if channel.starts_with('U') => format!("D_{channel}"),
        None => channel.to_string(),
    }
}

impl FakeSlack {
    /// Starts the fake on a free port.
    pub async fn start() -> FakeSlack {
        let inner = Arc::new(Mutex::new(Inner { next_ts: 1, ..Inner::default() }));
        let app = axum::Router::new()
            .route("/{method}", post(handle))
            .route("/hooks/{*path}", post(hook))
            .route("/upload/{id}", post(upload))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        inner.lock().expect("lock").base = format!("http://{addr}");
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeSlack { url: format!("http://{addr}"), inner }
    }

    /// Answers the next calls of `method` with `answers`, in order, then normally.
    pub fn script(&self, method: &str, answers: Vec<Scripted>) {
        self.inner.lock().expect("lock").script.entry(method.into()).or_default().extend(answers);
    }

    /// Waits this long before answering each call (a slow Slack).
    pub fn set_delay(&self, delay: Duration) {
        self.inner.lock().expect("lock").delay = delay;
    }

    /// The WebSocket URL `apps.connections.open` answers with.
    pub fn set_socket_url(&self, url: &str) {
        self.inner.lock().expect("lock").socket_url = Some(url.into());
    }

    /// Answers posted to `response_url`s (`{base}/hooks/…`).
    pub fn responses(&self) -> Vec<Value> {
        self.calls().into_iter().filter(|c| c.method == "hooks").map(|c| c.body).collect()
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().expect("lock").calls.clone()
    }

    /// Successful calls of `method` (answered 200 with `ok: true`).
    pub fn ok_calls(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.method == method && c.status == 200 && c.error.is_none()).collect()
    }

    /// Messages now in a channel (after edits), oldest first.
    pub fn history(&self, channel: &str) -> Vec<Value> {
        self.inner.lock().expect("lock").history.get(&resolve(channel)).cloned().unwrap_or_default()
    }

    /// The texts of the messages now in a channel (after edits), oldest first.
    pub fn texts(&self, channel: &str) -> Vec<String> {
        self.history(channel).iter().filter_map(|m| m["text"].as_str().map(str::to_string)).collect()
    }

    /// Deletes a message, as someone in Slack can: editing it is then `message_not_found`.
    pub fn delete(&self, channel: &str, ts: &str) {
        if let Some(h) = self.inner.lock().expect("lock").history.get_mut(&resolve(channel)) {
            h.retain(|m| m["ts"] != ts);
        }
    }
}

fn slack_error(error: &str) -> Value {
    json!({"ok": false, "error": error})
}

impl FakeSlack {
    /// `user`'s App Home tab as last published (with the `id` and `hash` Slack gives it).
    pub fn home(&self, user: &str) -> Option<Value> {
        self.inner.lock().expect("lock").homes.get(user).cloned()
    }

    /// The bytes of an uploaded file whose upload was completed.
    pub fn file(&self, id: &str) -> Option<Vec<u8>> {
        let s = self.inner.lock().expect("lock");
        s.files.get(id).filter(|f| f.2).and_then(|f| f.1.clone())
    }
}

/// A file's bytes, posted to the URL `files.getUploadURLExternal` handed out.
async fn upload(State(inner): State<Arc<Mutex<Inner>>>, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    let mut s = inner.lock().expect("lock");
    match s.files.get_mut(&id) {
        Some(file) if file.1.is_none() => {
            file.1 = Some(body.to_vec());
            (StatusCode::OK, format!("OK - {}", body.len())).into_response()
        }
        _ => (StatusCode::NOT_FOUND, "unknown upload").into_response(),
    }
}

/// What Slack would say about a request's arguments, if anything is wrong.
fn validate(method: &str, body: &Value) -> Option<&'static str> {
    let channel = body["channel"].as_str().unwrap_or("");
    match method {
        "chat.postMessage" | "chat.update" => {
            if channel.is_empty() {
                return Some("channel_not_found");
            }
            if body["text"].as_str().is_none_or(str::is_empty) && body["blocks"].as_array().is_none_or(Vec::is_empty) {
                return Some("no_text");
            }
            let blocks = body["blocks"].as_array().cloned().unwrap_or_default();
            if blocks.len() > 50 || body["text"].as_str().is_some_and(|t| t.chars().count() > 40_000) {
                return Some("msg_too_long");
            }
            for b in &blocks {
                if b["type"] == "section" && b["text"]["text"].as_str().is_some_and(|t| t.chars().count() > 3000) {
                    return Some("invalid_blocks");
                }
                if b["type"] == "actions" && b["elements"].as_array().is_some_and(|e| e.iter().any(bad_button)) {
                    return Some("invalid_blocks");
                }
            }
            if method == "chat.update" && body["ts"].as_str().is_none() {
                return Some("message_not_found");
            }
            None
        }
        "conversations.open" => body["users"].as_str().is_none().then_some("user_not_found"),
        "views.open" => (body["trigger_id"].as_str().is_none_or(str::is_empty) || invalid_view(&body["view"]))
            .then_some("invalid_arguments"),
        "views.update" => (body["view_id"].as_str().is_none_or(str::is_empty) || invalid_view(&body["view"]))
            .then_some("invalid_arguments"),
        "views.publish" => (body["user_id"].as_str().is_none_or(str::is_empty) || invalid_home(&body["view"]))
            .then_some("invalid_arguments"),
        "conversations.history" => channel.is_empty().then_some("channel_not_found"),
        "chat.getPermalink" => {
            let ts = body["message_ts"].as_str().unwrap_or("");
            let ts_ok = ts
                .split_once('.')
                .is_some_and(|(s, us)| !s.is_empty() && s.chars().chain(us.chars()).all(|c| c.is_ascii_digit()));
            if channel.is_empty() {
                Some("channel_not_found")
            } else if !ts_ok {
                Some("message_not_found")
            } else {
                None
            }
        }
        "conversations.list" => None,
        "files.getUploadURLExternal" => {
            let length = body["length"].as_str().and_then(|l| l.parse::<usize>().ok());
            (body["filename"].as_str().is_none_or(str::is_empty) || length.is_none_or(|l| l == 0))
                .then_some("invalid_arguments")
        }
        "files.completeUploadExternal" => body["files"].as_str().is_none().then_some("invalid_arguments"),
        _ => Some("unknown_method"),
    }
}

/// Whether Slack would refuse a modal: its documented limits (title, submit and close 24
/// characters, 100 blocks, private metadata 3000), and inputs whose initial value they cannot show
/// (an initial option not among the options, a text longer than the input takes).
fn invalid_view(view: &Value) -> bool {
    let longer = |v: &Value, max: usize| v.as_str().is_some_and(|t| t.chars().count() > max);
    let blocks = view["blocks"].as_array().cloned().unwrap_or_default();
    let bad_element = |e: &Value| match e["type"].as_str() {
        Some("static_select") if !e["initial_option"].is_null() => {
            !e["options"].as_array().into_iter().flatten().any(|o| o["value"] == e["initial_option"]["value"])
        }
        Some("plain_text_input") => {
            e["max_length"].as_u64().is_some_and(|max| longer(&e["initial_value"], max as usize))
        }
        Some("number_input") => e["initial_value"].as_str().is_some_and(|v| v.parse::<f64>().is_err()),
        Some("datepicker") => {
            e["initial_date"].as_str().is_some_and(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err())
        }
        _ => false,
    };
    view["type"] != "modal"
        || ["title", "submit", "close"].iter().any(|k| longer(&view[*k]["text"], 24))
        || blocks.len() > 100
        || longer(&view["private_metadata"], 3000)
        || blocks.iter().any(|b| bad_element(&b["element"]))
}

/// Whether Slack would refuse a button: no action id or text, a value over 2000 characters, or a
/// confirmation dialog without its plain-text title (at most 100), text (300), confirm and deny
/// labels (30 each).
fn bad_button(e: &Value) -> bool {
    let longer = |v: &Value, max: usize| v.as_str().is_some_and(|t| t.chars().count() > max);
    let plain = |v: &Value, max: usize| {
        v["type"] == "plain_text" && v["text"].as_str().is_some_and(|t| !t.is_empty() && t.chars().count() <= max)
    };
    let confirm = &e["confirm"];
    e["type"] == "button"
        && (e["action_id"].as_str().is_none_or(str::is_empty)
            || e["text"]["text"].as_str().is_none_or(str::is_empty)
            || longer(&e["value"], 2000)
            || !(confirm.is_null()
                || plain(&confirm["title"], 100)
                    && plain(&confirm["text"], 300)
                    && plain(&confirm["confirm"], 30)
                    && plain(&confirm["deny"], 30)))
}

/// Whether Slack would refuse an App Home tab: not of type `home`, a modal's title, submit or close,
/// more than 100 blocks, a section's text over 3000 characters, a header's over 150, an actions
/// block with more than 25 elements or a button without an action id, text or a value over 2000.
fn invalid_home(view: &Value) -> bool {
    let longer = |v: &Value, max: usize| v.as_str().is_some_and(|t| t.chars().count() > max);
    let blocks = view["blocks"].as_array().cloned().unwrap_or_default();
    let bad_block = |b: &Value| match b["type"].as_str() {
        Some("section") => longer(&b["text"]["text"], 3000),
        Some("header") => b["text"]["type"] != "plain_text" || longer(&b["text"]["text"], 150),
        Some("actions") => {
            let elements = b["elements"].as_array().cloned().unwrap_or_default();
            elements.is_empty() || elements.len() > 25 || elements.iter().any(bad_button)
        }
        Some("context") => b["elements"].as_array().is_none_or(|e| e.is_empty() || e.len() > 10),
        Some("divider") => false,
        _ => true,
    };
    view["type"] != "home"
        || ["title", "submit", "close"].iter().any(|k| !view[*k].is_null())
        || blocks.is_empty()
        || blocks.len() > 100
        || blocks.iter().any(bad_block)
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let delay = inner.lock().expect("lock").delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut s = inner.lock().expect("lock");
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    // Slack takes form-encoded arguments for every method (and JSON for most); the upload methods
    // are called with a form.
    let form = content_type.starts_with("application/x-www-form-urlencoded");
    let json_body: Value = if form {
        serde_urlencoded::from_str::<HashMap<String, String>>(&body).map_or(Value::Null, |m| json!(m))
    } else if READ_METHODS.contains(&method.as_str()) {
        // Slack reads a read method's arguments from the query string or a form only: a JSON
        // body's are not seen at all.
        serde_json::from_str::<Value>(&body).map_or(Value::Null, |_| json!({}))
    } else {
        serde_json::from_str(&body).unwrap_or(Value::Null)
    };
    let call =
        |status: u16| Call { method: method.clone(), body: json_body.clone(), at: Instant::now(), status, error: None };
    let refused = |error: &'static str| Call { error: Some(error), ..call(200) };
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if method == "apps.connections.open" {
        let ok = auth == Some(&format!("Bearer {APP_TOKEN}"));
        s.calls.push(call(200));
        return match (&s.socket_url, ok) {
            (Some(url), true) => axum::Json(json!({"ok": true, "url": url})).into_response(),
            (_, false) => axum::Json(slack_error("invalid_auth")).into_response(),
            (None, true) => axum::Json(slack_error("internal_error")).into_response(),
        };
    }
    if auth != Some(&format!("Bearer {TOKEN}")) {
        s.calls.push(refused("invalid_auth"));
        return axum::Json(slack_error("invalid_auth")).into_response();
    }
    if !(content_type.starts_with("application/json") || form) || json_body.is_null() {
        s.calls.push(refused("invalid_form_data"));
        return axum::Json(slack_error("invalid_form_data")).into_response();
    }
    let scripted = s.script.get_mut(&method).and_then(VecDeque::pop_front);
    match scripted {
        Some(Scripted::Status(code, retry)) => {
            s.calls.push(call(code));
            let mut resp =
                (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), "scripted").into_response();
            if let Some(secs) = retry {
                resp.headers_mut().insert("retry-after", secs.to_string().parse().expect("header"));
            }
            return resp;
        }
        Some(Scripted::Error(e)) => {
            s.calls.push(refused(e));
            return axum::Json(slack_error(e)).into_response();
        }
        None => {}
    }
    if let Some(e) = validate(&method, &json_body) {
        s.calls.push(refused(e));
        return axum::Json(slack_error(e)).into_response();
    }
    // An image block may show only a file whose upload was completed.
    let shown = json_body["blocks"].as_array().into_iter().flatten().filter(|b| b["type"] == "image");
    for block in shown {
        let id = block["slack_file"]["id"].as_str().unwrap_or("");
        if block["alt_text"].as_str().is_none_or(str::is_empty) || !s.files.get(id).is_some_and(|f| f.2) {
            s.calls.push(refused("invalid_blocks"));
            return axum::Json(slack_error("invalid_blocks")).into_response();
        }
    }
    s.calls.push(call(200));
    let channel = resolve(json_body["channel"].as_str().unwrap_or(""));
    match method.as_str() {
        "files.getUploadURLExternal" => {
            let length = json_body["length"].as_str().and_then(|l| l.parse::<usize>().ok()).unwrap_or(0);
            let id = format!("F{:08}", s.files.len() + 1);
            s.files.insert(id.clone(), (length, None, false));
            let url = format!("{}/upload/{id}", s.base);
            axum::Json(json!({"ok": true, "upload_url": url, "file_id": id})).into_response()
        }
        "files.completeUploadExternal" => {
            let files: Value = serde_json::from_str(json_body["files"].as_str().unwrap_or("")).unwrap_or(Value::Null);
            let ids: Vec<String> =
                files.as_array().into_iter().flatten().filter_map(|f| f["id"].as_str().map(String::from)).collect();
            let ready = |f: &(usize, Option<Vec<u8>>, bool)| f.1.as_ref().is_some_and(|b| b.len() == f.0);
            if ids.is_empty() || !ids.iter().all(|id| s.files.get(id).is_some_and(ready)) {
                return axum::Json(slack_error("invalid_arguments")).into_response();
            }
            for id in &ids {
                if let Some(f) = s.files.get_mut(id) {
                    f.2 = true;
                }
            }
            axum::Json(json!({"ok": true, "files": files})).into_response()
        }
        "chat.postMessage" => {
            let ts = format!("1800000000.{:06}", s.next_ts);
            s.next_ts += 1;
            let mut msg = json!({"ts": ts, "text": json_body["text"], "blocks": json_body["blocks"]});
            if json_body["thread_ts"].is_string() {
                msg["thread_ts"] = json_body["thread_ts"].clone();
            }
            if json_body["metadata"].is_object() {
                msg["metadata"] = json_body["metadata"].clone();
            }
            s.history.entry(channel.clone()).or_default().push(msg);
            axum::Json(json!({"ok": true, "channel": channel, "ts": ts})).into_response()
        }
        "chat.update" => {
            let ts = json_body["ts"].as_str().unwrap_or("").to_string();
            let found = s.history.get_mut(&channel).and_then(|h| h.iter_mut().find(|m| m["ts"] == ts.as_str()));
            match found {
                Some(m) => {
                    m["text"] = json_body["text"].clone();
                    m["blocks"] = json_body["blocks"].clone();
                    axum::Json(json!({"ok": true, "channel": channel, "ts": ts})).into_response()
                }
                None => axum::Json(slack_error("message_not_found")).into_response(),
            }
        }
        "views.open" | "views.update" => axum::Json(json!({"ok": true, "view": json_body["view"]})).into_response(),
        "chat.getPermalink" => {
            let ts = json_body["message_ts"].as_str().unwrap_or("").replace('.', "");
            let link = format!("https://example.slack.com/archives/{channel}/p{ts}");
            axum::Json(json!({"ok": true, "channel": channel, "permalink": link})).into_response()
        }
        "views.publish" => {
            let user = json_body["user_id"].as_str().unwrap_or("").to_string();
            let mut view = json_body["view"].clone();
            view["id"] = json!(format!("V_home_{user}"));
            view["hash"] = json!(format!("{}.{}", s.next_ts, user));
            s.next_ts += 1;
            s.homes.insert(user, view.clone());
            axum::Json(json!({"ok": true, "view": view})).into_response()
        }
        "conversations.open" => {
            let user = json_body["users"].as_str().unwrap_or("");
            axum::Json(json!({"ok": true, "channel": {"id": resolve(user)}})).into_response()
        }
        "conversations.list" => {
            // The channels this fake has seen a message in. Slack may answer fewer than `limit`
            // before the end; this fake answers at most two a page, so that callers must page.
            // The cursor is the next page's offset.
            let mut ids: Vec<&String> = s.history.keys().filter(|id| id.starts_with("C_")).collect();
            ids.sort();
            let limit = json_body["limit"].as_str().and_then(|l| l.parse::<usize>().ok()).unwrap_or(100).clamp(1, 2);
            let from = match json_body["cursor"].as_str() {
                None | Some("") => 0,
                Some(c) => match c.strip_prefix("offset:").and_then(|n| n.parse::<usize>().ok()) {
                    Some(n) => n,
                    None => return axum::Json(slack_error("invalid_cursor")).into_response(),
                },
            };
            let page: Vec<Value> = ids
                .iter()
                .skip(from)
                .take(limit)
                .map(|id| json!({"id": id, "name": id.trim_start_matches("C_"), "is_private": false}))
                .collect();
            let next = if from + limit < ids.len() { format!("offset:{}", from + limit) } else { String::new() };
            axum::Json(json!({"ok": true, "channels": page, "response_metadata": {"next_cursor": next}}))
                .into_response()
        }
        _ => {
            let mut messages = s.history.get(&channel).cloned().unwrap_or_default();
            messages.reverse();
            // Metadata comes back only when asked for.
            if !matches!(json_body["include_all_metadata"].as_str(), Some("true" | "1")) {
                for m in &mut messages {
                    if let Some(m) = m.as_object_mut() {
                        m.remove("metadata");
                    }
                }
            }
            axum::Json(json!({"ok": true, "messages": messages})).into_response()
        }
    }
}

/// Methods whose arguments Slack takes only from the query string or a form.
const READ_METHODS: [&str; 3] = ["conversations.history", "conversations.list", "chat.getPermalink"];

/// A `response_url` answer: no token, JSON body.
async fn hook(State(inner): State<Arc<Mutex<Inner>>>, body: String) -> Response {
    let json_body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let status = if json_body.is_object() { 200 } else { 400 };
    inner.lock().expect("lock").calls.push(Call {
        method: "hooks".into(),
        body: json_body,
        at: Instant::now(),
        status,
        error: None,
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK).into_response()
}
