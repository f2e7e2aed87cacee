//! Baton's HTTP API, for integrations and agents: `/api/v1`.
//!
//! A client is configured in the operating model (`[api.<name>]`: the environment variable
//! holding its bearer token, and whom it acts for). Each request says whom it acts for (`"as"`,
//! which may be left out when the client acts for one person only) and goes through
//! [`App::handle`] like a chat command: the same rules, replies, audit trail (surface `api`) and
//! messages. A request with an `Idempotency-Key` header acts at most once; a creation retried with
//! its key answers with the handoff it made.
//!
//! - `POST /api/v1/handoffs`: hand work off (`seam`, `title`, `fields`, optional `tier`, `source`);
//!   `GET`: handoffs by seam, state, owner or requester, newest first, a page at a time.
//! - `GET /api/v1/handoffs/H-<n>`: a handoff as JSON; `…/events`: its audit trail.
//! - `POST /api/v1/commands`: any chat command as typed (`{"as": "deploy-bot", "command": "/ack H-3"}`).
//! - `GET /api/v1/plate?as=<person>`: what `/handoff mine` says, as JSON.
//! - `GET /api/v1/stalls?as=<person>&view=health&seam=…&window=…`: stall history (`/stalls`) as
//!   JSON, seen as that person may see it.
//!
//! Every refusal is JSON, `{"error": "…"}`, with a status saying what kind: 400 the request cannot
//! be read, 401 no or a wrong token, 403 not allowed, 404 no such handoff, 409 not in a state for
//! it (or already handled), 422 the command or its fields are wrong, 429 too many requests from
//! one client (a token bucket per client and replica; `Retry-After` says when).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use baton_core::command::parse_id;
use baton_core::decide::NewHandoff;
use baton_core::model::ApiClient;
use baton_core::{Command, Ctx, Handoff, Rejection, Surface, render};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::app::{App, AppError};
use crate::store::Listing;

/// Largest request body read.
const MAX_BODY: usize = 64 * 1024;
/// Longest `Idempotency-Key` taken.
const MAX_KEY: usize = 200;

/// The API's state: the service and the clients whose tokens are set.
#[derive(Clone, Debug)]
pub struct Api {
    app: App,
    clients: Vec<Client>,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

#[derive(Clone, Debug)]
struct Client {
    config: ApiClient,
    /// Its tokens' digests (more than one while a token is rotated): tokens are compared as
    /// digests, in time independent of the token given.
    tokens: Vec<[u8; 32]>,
}

/// The tokens a client's variable holds: one, or several separated by commas or spaces while a
/// token is rotated (the new one first: it signs what the client's webhook receives).
pub fn tokens(value: &str) -> Vec<&str> {
    value.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()).collect()
}

impl Api {
    /// The API over `app`, each configured client's token looked up with `token` (the
    /// environment, in `baton serve`). A client whose token is not set, or shorter than 16
    /// characters, is left out, with a warning: every request with it is refused.
    pub fn new(app: App, token: impl Fn(&str) -> Option<String>) -> Api {
        let mut clients = Vec::new();
        for config in app.model.api.values() {
            let value = token(&config.token_env).unwrap_or_default();
            let given = tokens(&value);
            if given.is_empty() {
                tracing::warn!("{} is not set: API client `{}` is off", config.token_env, config.name);
            } else if given.iter().any(|t| t.len() < 16) {
                tracing::warn!(
                    "{} holds a token shorter than 16 characters: API client `{}` is off until it holds long random tokens",
                    config.token_env,
                    config.name
                );
            } else {
                clients.push(Client { config: config.clone(), tokens: given.into_iter().map(digest).collect() });
            }
        }
        Api { app, clients, buckets: Arc::default() }
    }
}

/// The API's routes.
pub fn routes(api: Api) -> Router {
    Router::new()
        .route("/api/v1/handoffs", post(create).get(list))
        .route("/api/v1/handoffs/{id}", get(show))
        .route("/api/v1/handoffs/{id}/events", get(events))
        .route("/api/v1/commands", post(command))
        .route("/api/v1/plate", get(plate))
        .route("/api/v1/stalls", get(stalls))
        .with_state(Arc::new(api))
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// A refusal: a status and a sentence saying what was wrong and what to do; how long to wait
/// before trying again, for a 429; the handoff it is about, for one already open.
#[derive(Debug)]
struct Problem(StatusCode, String, Option<u64>, Option<baton_core::HandoffId>);

impl Problem {
    fn new(status: StatusCode, message: impl Into<String>) -> Problem {
        Problem(status, message.into(), None, None)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = match self.3 {
            Some(id) => json!({ "error": self.1, "handoff": format!("H-{id}") }),
            None => json!({ "error": self.1 }),
        };
        let mut response = (self.0, axum::Json(body)).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.2 {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Requests a client may make at once, and per second after that, in each replica: a runaway
/// integration is slowed before it floods the receiving channels.
const BURST: f64 = 40.0;
const PER_SECOND: f64 = 20.0;

/// A client's token bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(at: Instant) -> Bucket {
        Bucket { tokens: BURST, at }
    }

    /// Takes one request at `now`, or says how long until one may be taken.
    fn take(&mut self, now: Instant) -> Result<(), StdDuration> {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * PER_SECOND;
        self.tokens = (self.tokens + refill).min(BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(StdDuration::from_secs_f64((1.0 - self.tokens) / PER_SECOND))
    }
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Problem {
        match e {
            AppError::Rejected(Rejection::AlreadyOpen { existing, text, .. }) => {
                Problem(StatusCode::CONFLICT, text, None, Some(existing))
            }
            AppError::Rejected(r) => Problem::new(status_of(&r), r.to_string()),
            AppError::Duplicate => Problem::new(
                StatusCode::CONFLICT,
                "this Idempotency-Key was already used: the request that came with it was handled once, \
                 and this copy changed nothing",
            ),
            AppError::Internal(e) => {
                tracing::error!("API request failed: {e:#}");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Baton failed on our side (now in its log); nothing was changed. Try again later.",
                )
            }
        }
    }
}

/// The status that says what kind of refusal the core gave.
fn status_of(r: &Rejection) -> StatusCode {
    match r {
        Rejection::NoSuchHandoff(_) => StatusCode::NOT_FOUND,
        Rejection::UnknownActor
        | Rejection::NotConvener { .. }
        | Rejection::NotInvolved { .. }
        | Rejection::NotOwner { .. }
        | Rejection::NotOwnerOrLead { .. }
        | Rejection::NotReceiver { .. }
        | Rejection::NotSender { .. }
        | Rejection::NotRequester { .. }
        | Rejection::CannotApprove { .. }
        | Rejection::AgentNotAllowed { .. }
        | Rejection::NotYourFunction(_) => StatusCode::FORBIDDEN,
        Rejection::WrongState { .. } | Rejection::Unchanged(_) | Rejection::AlreadyOpen { .. } => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl Api {
    /// The client whose bearer token the request carries.
    fn client(&self, headers: &HeaderMap) -> Result<&Client, Problem> {
        if self.app.model.api.is_empty() {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "the API is off: add an `[api.<name>]` client to the operating model, with its token in \
                 the environment variable its `token_env` names",
            ));
        }
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(given) = given else {
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "send `Authorization: Bearer <token>` with the token of an API client (the value of the \
                 variable its `token_env` names)",
            ));
        };
        let given = digest(given);
        let client = self.clients.iter().find(|c| c.tokens.contains(&given)).ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "that token is no API client's: check the client's `token_env` variable",
            )
        })?;
        let now = Instant::now();
        let taken = {
            let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            buckets.entry(client.config.name.clone()).or_insert_with(|| Bucket::full(now)).take(now)
        };
        if let Err(wait) = taken {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let message = format!(
                "client `{}` sent more than {BURST} requests at once or {PER_SECOND} a second: try again in {secs}s",
                client.config.name
            );
            return Err(Problem(StatusCode::TOO_MANY_REQUESTS, message, Some(secs), None));
        }
        Ok(client)
    }

    /// Whom a read acts for: the client's, by `as` in the query (or its one person).
    fn acting(&self, headers: &HeaderMap, query: &BTreeMap<String, String>) -> Result<String, Problem> {
        let client = self.client(headers)?;
        self.actor(client, query.get("as").map(String::as_str))
    }

    /// Whom the request acts for: `asked`, which the client must be allowed to act as, or the one
    /// person the client acts for.
    fn actor(&self, client: &Client, asked: Option<&str>) -> Result<String, Problem> {
        let model = &self.app.model;
        let name = &client.config.name;
        let Some(asked) = asked.map(str::trim).filter(|a| !a.is_empty()) else {
            return match client.config.acts_as.as_slice() {
                [one] if model.person(one).is_some() => Ok(one.clone()),
                many => Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("say whom this request acts for with `as`: client `{name}` acts for {}", many.join(", ")),
                )),
            };
        };
        if model.person(asked).is_none() {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("`as`: nobody called `{asked}` is in the operating model; use a person's id, like `rita`"),
            ));
        }
        if !client.config.may_act_as(model, asked) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                format!(
                    "client `{name}` may not act for {asked}: it acts for {} (`acts_as` in its `[api.{name}]`)",
                    client.config.acts_as.join(", ")
                ),
            ));
        }
        Ok(asked.to_string())
    }

    /// The handoff as JSON, at `now`.
    fn view(&self, h: &Handoff, now: chrono::DateTime<Utc>) -> Value {
        let ctx = Ctx::new(&self.app.model, &h.seam).ok();
        let next = ctx.as_ref().filter(|_| h.stall.is_none()).and_then(|ctx| baton_core::stall::next_breach(ctx, h));
        json!({
            "id": h.label(),
            "number": h.id,
            "seam": h.seam,
            "title": h.title,
            "state": h.state,
            "tier": h.tier,
            "requester": h.requester,
            "owner": h.owner,
            "fields": h.fields,
            "created_at": h.created_at,
            "updated_at": h.updated_at,
            "due_date": h.due_date,
            "next_deadline": next.map(|(kind, at)| json!({ "kind": kind, "at": at })),
            "stalled": h.stall.as_ref().map(|s| json!({ "kind": s.kind, "since": s.opened_at, "episode": s.episode })),
            "watchers": h.watchers,
            "via": h.via,
            "text": ctx.map(|ctx| render::card(&ctx, h, now)),
        })
    }
}

/// The request key of an `Idempotency-Key` header, in this client's own space (`kind` keeps a
/// creation's keys apart from other commands').
fn request_key(headers: &HeaderMap, client: &Client, kind: &str) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    match value.to_str() {
        Ok(k) if !k.trim().is_empty() && k.len() <= MAX_KEY => {
            Ok(Some(format!("api:{}:{kind}:{k}", client.config.name)))
        }
        _ => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters, like a UUID"),
        )),
    }
}

/// Reads a JSON body into `T`, saying what is wrong with it otherwise.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8], example: &str) -> Result<T, Problem> {
    if bytes.len() > MAX_BODY {
        return Err(Problem::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over {MAX_BODY} bytes")));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not the JSON expected ({e}); send for example {example}"),
        )
    })
}

const NEW_EXAMPLE: &str =
    r#"{"as": "rita", "seam": "sales-to-cs", "title": "Acme renewal", "fields": {"account": "Acme", "arr": 120000}}"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBody {
    #[serde(rename = "as")]
    actor: Option<String>,
    seam: String,
    title: String,
    #[serde(default)]
    fields: BTreeMap<String, Value>,
    tier: Option<String>,
    source: Option<String>,
}

/// `POST /api/v1/handoffs`: `201` with the handoff made; `200` with it again for a replay of the
/// same `Idempotency-Key`.
async fn create(State(api): State<Arc<Api>>, headers: HeaderMap, bytes: Bytes) -> Result<Response, Problem> {
    let now = Utc::now();
    let client = api.client(&headers)?;
    let key = request_key(&headers, client, "new")?;
    let b: NewBody = body(&bytes, NEW_EXAMPLE)?;
    let actor = api.actor(client, b.actor.as_deref())?;
    let mut fields = Vec::new();
    for (name, value) in b.fields {
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("`fields.{name}` must be a string, a number or true/false"),
                ));
            }
        };
        fields.push((name, text));
    }
    for (name, value) in [("tier", b.tier), ("source", b.source)] {
        if let Some(value) = value {
            if fields.iter().any(|(n, _)| n == name) {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("`{name}` is given twice, at the top and in `fields`: give it once"),
                ));
            }
            fields.push((name.to_string(), value));
        }
    }
    let (seam, title) = (b.seam, b.title);
    let typed = Command::New { seam: seam.clone(), title: title.clone(), fields: fields.clone() };
    typed.check_text().map_err(|r| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, r.to_string()))?;
    let new = NewHandoff { seam: &seam, title: &title, fields: &fields };
    tracing::info!(client = client.config.name, actor, "API: new handoff on {seam}");
    match api.app.create(new, &actor, Surface::Api, now, key.as_deref(), Some(&client.config.name)).await {
        Ok(d) => {
            let location = format!("/api/v1/handoffs/{}", d.handoff.label());
            let answer = json!({ "reply": d.reply, "handoff": api.view(&d.handoff, now) });
            Ok((StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(answer)).into_response())
        }
        Err(AppError::Duplicate) => {
            let made = match &key {
                Some(key) => api.app.store.created_by(key).await.map_err(|e| AppError::Internal(e.into()))?,
                None => None,
            };
            let Some(id) = made else { return Err(AppError::Duplicate.into()) };
            let h = api.app.get(id).await?;
            let reply = format!("Already handed off as {} with this Idempotency-Key; nothing new was made.", h.label());
            let answer = json!({ "reply": reply, "replayed": true, "handoff": api.view(&h, now) });
            Ok((StatusCode::OK, axum::Json(answer)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /api/v1/handoffs/H-<n>` (or `/<n>`).
async fn show(State(api): State<Arc<Api>>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, Problem> {
    api.client(&headers)?;
    let h = api.app.get(handoff_id(&id)?).await?;
    Ok(axum::Json(api.view(&h, Utc::now())).into_response())
}

/// `GET /api/v1/handoffs/H-<n>/events`: its audit trail, oldest first: each change with when, who,
/// through which surface, the state after it, what changed (as stored) and the log's sentence.
async fn events(State(api): State<Arc<Api>>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, Problem> {
    api.client(&headers)?;
    let h = api.app.get(handoff_id(&id)?).await?;
    let ctx = Ctx::new(&api.app.model, &h.seam).map_err(AppError::from)?;
    let now = Utc::now();
    let trail = api.app.store.events(h.id).await.map_err(|e| AppError::Internal(e.into()))?;
    let events: Vec<Value> = trail
        .iter()
        .map(|e| {
            json!({
                "at": e.at,
                "actor": e.actor,
                "surface": e.surface,
                "via": e.via,
                "state": e.state,
                "kind": e.change.kind(),
                "change": e.change,
                "text": baton_core::activity::line(&ctx, e, now),
            })
        })
        .collect();
    Ok(axum::Json(json!({ "id": h.label(), "events": events })).into_response())
}

/// `GET /api/v1/stalls?as=<person>&view=summary|health&<filter>=…`: the stall history report or the
/// health report as JSON (as `baton report --format json` gives them), over what `as` may see.
async fn stalls(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, Problem> {
    let now = Utc::now();
    let actor = api.acting(&headers, &query)?;
    let words: Vec<String> = (query.iter())
        .filter(|(k, _)| *k != "as")
        .map(|(k, v)| if k == "view" { v.clone() } else { format!("{k}={v}") })
        .collect();
    let bad = |message: String| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, message);
    let q = baton_core::history::parse_query(&words).map_err(|e| bad(e.to_string()))?;
    let (store, model, viewer) = (&api.app.store, &api.app.model, baton_core::history::Viewer::Person(&actor));
    let answer = match q.view {
        baton_core::history::View::Summary => {
            serde_json::to_value(crate::report::summary(store, model, viewer, &q.filter, now).await?)
        }
        baton_core::history::View::Health => {
            serde_json::to_value(crate::report::health(store, model, viewer, &q.filter, now, None).await?)
        }
        baton_core::history::View::Chart => {
            return Err(bad(
                "charts are drawn in chat (`/stalls chart`) or by `baton report chart`; here, view=summary or health"
                    .into(),
            ));
        }
    };
    let answer = answer.map_err(|e| AppError::Internal(e.into()))?;
    Ok(axum::Json(answer).into_response())
}

/// Most handoffs on one page of `GET /api/v1/handoffs`.
const MOST_LISTED: i64 = 200;

/// `GET /api/v1/handoffs?seam=…&state=…&owner=…&requester=…&open=true&limit=50&before=H-40`:
/// handoffs matching every filter given, newest first; `next` is the address of the next page.
async fn list(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, Problem> {
    api.client(&headers)?;
    let model = &api.app.model;
    let bad = |message: String| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, message);
    let mut filter = Listing::default();
    let mut limit = 50;
    for (key, value) in &query {
        match key.as_str() {
            "seam" => match model.seam_named(value) {
                Some(seam) => filter.seam = Some(seam.to_string()),
                None => return Err(bad(format!("no seam `{value}`; seams: {}", join(model.seams.keys())))),
            },
            "state" if STATES.contains(&value.as_str()) => filter.state = Some(value.clone()),
            "state" => return Err(bad(format!("no state `{value}`; states: {}", STATES.join(", ")))),
            "owner" | "requester" => {
                let Some(person) = model.person_named(value) else {
                    return Err(bad(format!("`{key}`: nobody called `{value}` is in the operating model")));
                };
                match key.as_str() {
                    "owner" => filter.owner = Some(person.to_string()),
                    _ => filter.requester = Some(person.to_string()),
                }
            }
            "open" => {
                filter.open = value.parse().map_err(|_| bad(format!("`open` is true or false, not `{value}`")))?;
            }
            "limit" => {
                limit =
                    value.parse().ok().filter(|n| (1..=MOST_LISTED).contains(n)).ok_or_else(|| {
                        bad(format!("`limit` is a whole number from 1 to {MOST_LISTED}, not `{value}`"))
                    })?;
            }
            "before" => {
                let id =
                    parse_id(value).ok_or_else(|| bad(format!("`before` is a handoff like H-40, not `{value}`")))?;
                filter.before = Some(id);
            }
            other => {
                return Err(bad(format!(
                    "unknown filter `{other}`: filter by seam, state, owner, requester or open, page with limit and before"
                )));
            }
        }
    }
    let found = api.app.store.list(&filter, limit).await.map_err(|e| AppError::Internal(e.into()))?;
    let now = Utc::now();
    let next = match found.last() {
        Some(last) if found.len() as i64 == limit => {
            let mut rest: Vec<(&str, String)> =
                query.iter().filter(|(k, _)| *k != "before").map(|(k, v)| (k.as_str(), v.clone())).collect();
            rest.push(("before", last.label()));
            Some(format!("/api/v1/handoffs?{}", serde_urlencoded::to_string(&rest).unwrap_or_default()))
        }
        _ => None,
    };
    let handoffs: Vec<Value> = found.iter().map(|h| api.view(h, now)).collect();
    Ok(axum::Json(json!({ "handoffs": handoffs, "next": next })).into_response())
}

/// The states a handoff can be in, as the API names them.
const STATES: [&str; 8] =
    ["open", "accepted", "reassigned", "in_progress", "awaiting_gate", "done", "returned", "cancelled"];

fn join<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// A handoff named in a path (`H-12` or `12`), or a `404` saying how to name one.
fn handoff_id(given: &str) -> Result<baton_core::HandoffId, Problem> {
    parse_id(given).ok_or_else(|| {
        Problem::new(StatusCode::NOT_FOUND, format!("`{given}` is not a handoff: use its label, like H-12"))
    })
}

const COMMAND_EXAMPLE: &str = r#"{"as": "deploy-bot", "command": "/ack H-3"}"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandBody {
    #[serde(rename = "as")]
    actor: Option<String>,
    command: String,
}

/// `POST /api/v1/commands`: a chat command as typed; `200` with Baton's reply, and the handoff
/// it concerns as it now stands.
async fn command(State(api): State<Arc<Api>>, headers: HeaderMap, bytes: Bytes) -> Result<Response, Problem> {
    let now = Utc::now();
    let client = api.client(&headers)?;
    let key = request_key(&headers, client, "command")?;
    let b: CommandBody = body(&bytes, COMMAND_EXAMPLE)?;
    let actor = api.actor(client, b.actor.as_deref())?;
    let command =
        baton_core::parse(&b.command).map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    if matches!(command, Command::New { .. }) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("hand work off with `POST /api/v1/handoffs`, for example {NEW_EXAMPLE}"),
        ));
    }
    let target = command.target();
    tracing::info!(client = client.config.name, actor, "API: {}", b.command.trim());
    let reply = api.app.handle_through(&client.config.name, &actor, command, now, key.as_deref()).await?;
    let handoff = match target {
        Some(id) => Some(api.view(&api.app.get(id).await?, now)),
        None => None,
    };
    Ok(axum::Json(json!({ "reply": reply, "handoff": handoff })).into_response())
}

/// `GET /api/v1/plate?as=<person>`: the person's plate, each handoff with the actions they may take.
async fn plate(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, Problem> {
    let now = Utc::now();
    let actor = api.acting(&headers, &query)?;
    let plate = api.app.plate(&actor, now).await?;
    Ok(axum::Json(json!({ "as": actor, "text": plate.text(), "notes": plate.notes, "sections": plate.sections }))
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_may_burst_then_goes_at_the_steady_rate() {
        let t0 = Instant::now();
        let mut bucket = Bucket::full(t0);
        for _ in 0..BURST as usize {
            assert!(bucket.take(t0).is_ok());
        }
        let wait = bucket.take(t0).expect_err("the burst is spent");
        assert!((wait.as_secs_f64() - 1.0 / PER_SECOND).abs() < 1e-9, "{wait:?}");
        // Half a second later, half a second's worth.
        let later = t0 + StdDuration::from_millis(500);
        let taken = (0..100).take_while(|_| bucket.take(later).is_ok()).count();
        assert_eq!(taken, (PER_SECOND / 2.0) as usize);
        // Idle long enough, it is full again, and no fuller.
        let rested = later + StdDuration::from_secs(60);
        let taken = (0..1000).take_while(|_| bucket.take(rested).is_ok()).count();
        assert_eq!(taken, BURST as usize);
    }
}
