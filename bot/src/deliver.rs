//! The delivery worker: claims due outbox messages, folds floods into digests, renders each for
//! its platform, sends it, and records the outcome: delivered (with the platform's message id),
//! retried later (exponential backoff with jitter, or exactly when a rate limit lifts), or
//! dead-lettered after the configured attempts, with the seam's lead told.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use baton_core::{Action, HandoffId, Intent, IntentKind, OperatingModel, Recipient, render};
use chrono::{DateTime, Duration, Utc};
use tokio::sync::{Notify, watch};
use tracing::Instrument as _;

use crate::discord::DiscordApi;
use crate::slack::SlackApi;
use crate::store::{Ask, Asked, Claimed, Kept, Store, recipient_key};

/// Why a send did not go through.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again: a network error, a 5xx, a rate limit (then `after` says when).
    #[error("{reason}")]
    Retry {
        /// What happened.
        reason: String,
        /// Not before this long (`Retry-After`); `None`: exponential backoff.
        after: Option<Duration>,
    },
    /// The platform's rate limit answered (a 429): not sent, and worth sending again after
    /// `after`. Not a failed attempt: however often a platform asks to wait, the message waits,
    /// it is not dead-lettered for it.
    #[error("{reason}")]
    RateLimited {
        /// What answered, and where.
        reason: String,
        /// The platform's `Retry-After`.
        after: Duration,
    },
    /// Not sent: a rate limit learnt earlier, or the platform refusing Baton's token, holds
    /// sends for this long (not an attempt).
    #[error("held back: the platform's rate limit, or the platform refusing Baton's token (see the log)")]
    Held(Duration),
    /// Will not work by trying again (a 4xx, an unknown channel, no account on any platform).
    #[error("{0}")]
    Permanent(String),
}

impl SendError {
    /// A retryable error with backoff.
    pub fn retry(reason: String) -> SendError {
        SendError::Retry { reason, after: None }
    }
}

/// How long every send to a platform waits after it refused Baton's token (revoked, expired, or
/// mistyped): messages are kept, not dead-lettered, and one is tried again after this long, so
/// that they go out once the token is fixed.
pub fn token_hold() -> Duration {
    Duration::seconds(60)
}

/// A platform refused the bot token (`why`, answered at `at`): not the message's fault, so every
/// send to that platform is held under `key` (none dead-lettered, no attempt counted), the log
/// names the variable to fix, and `baton_token_refused_total` counts it.
pub fn token_refused(limits: &Limits, key: &str, platform: &'static str, why: &str, at: DateTime<Utc>) -> SendError {
    let hold = token_hold();
    let variable = format!("{}_BOT_TOKEN", platform.to_ascii_uppercase());
    tracing::error!(
        "{why}: {platform} refused Baton's token; {platform} messages wait, tried again every {}s, until {variable} is fixed",
        hold.num_seconds()
    );
    metrics::counter!("baton_token_refused_total", "platform" => platform).increment(1);
    limits.hold(key, at + hold);
    SendError::Held(hold)
}

/// Rate-limit holds shared by all sends of a process: key (`slack:chat.postMessage:C1`, `slack:chat.update`,
/// `discord:channels/1/messages`, `discord:global`) to the instant it lifts.
#[derive(Clone, Debug, Default)]
pub struct Limits(Arc<Mutex<HashMap<String, DateTime<Utc>>>>);

impl Limits {
    /// Refuses, without calling the platform, while any of `keys` is held.
    pub fn check(&self, keys: &[&str], now: DateTime<Utc>) -> Result<(), SendError> {
        let held = self.0.lock().map(|m| keys.iter().filter_map(|k| m.get(*k).copied()).max()).unwrap_or(None);
        match held {
            Some(until) if until > now => Err(SendError::Held(until - now)),
            _ => Ok(()),
        }
    }

    /// Holds `key` until `until`, to the millisecond: the outbox keeps the instant a message put
    /// back waits for in whole milliseconds, so a hold kept finer would outlast it by a fraction and
    /// find that message still held when it falls due.
    pub fn hold(&self, key: &str, until: DateTime<Utc>) {
        let until = DateTime::from_timestamp_millis(until.timestamp_millis()).unwrap_or(until);
        if let Ok(mut m) = self.0.lock() {
            let slot = m.entry(key.to_string()).or_insert(until);
            *slot = (*slot).max(until);
        }
    }
}

/// The chat platforms configured for sending.
#[derive(Clone, Debug, Default)]
pub struct Outbound {
    /// Slack, when `SLACK_BOT_TOKEN` is set.
    pub slack: Option<SlackApi>,
    /// Discord, when `DISCORD_BOT_TOKEN` is set.
    pub discord: Option<DiscordApi>,
    /// API clients' webhooks, for people with no chat account (agents).
    pub hooks: crate::webhook::Hooks,
}

/// What a channel message needs besides the intent.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// The handoff's thread in this channel, once one was opened: later messages go there
    /// (a Discord thread id; for Slack, the `ts` of the recalibration's opening post).
    pub thread: Option<String>,
    /// Users to ping, as platform user ids (and only they can be).
    pub ping: Vec<String>,
}

/// What a send produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Sent {
    /// The platform's reference to the message (`conversation:message`).
    pub reference: String,
    /// A Discord thread opened on it for the handoff.
    pub thread: Option<String>,
}

impl Sent {
    fn plain(reference: String) -> Sent {
        Sent { reference, thread: None }
    }
}

impl Outbound {
    /// Whether messages to `to` go to an API client's webhook: the client itself, or a person
    /// with no chat account (an agent) for whom a client with a webhook acts.
    pub fn by_webhook(&self, model: &OperatingModel, to: &Recipient) -> bool {
        let p = match to {
            Recipient::Client(_) => return true,
            Recipient::Person(p) => p,
            _ => return false,
        };
        let Some(person) = model.person(p) else { return false };
        person.slack.is_none() && person.discord.is_none() && self.hooks.client_for(model, p).is_some()
    }

    /// Sends one message: edits the earlier message `existing` when given (cards), otherwise
    /// posts. `in_doubt` carries, when an earlier attempt's outcome is unknown, the platform id
    /// of the conversation if known: the message is first looked for there (Slack message
    /// metadata; Discord drops a repeated nonce by itself). A handoff's first message in a
    /// Discord channel opens a thread for it, where its later messages go.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        model: &OperatingModel,
        intent: &Intent,
        nonce: i64,
        existing: Option<&str>,
        in_doubt: Option<Option<String>>,
        extras: &Extras,
        now: DateTime<Utc>,
    ) -> Result<Sent, SendError> {
        let slack = || self.slack.as_ref().ok_or_else(|| SendError::Permanent("Slack is not configured".into()));
        let discord = || self.discord.as_ref().ok_or_else(|| SendError::Permanent("Discord is not configured".into()));
        let slack_send = |channel: String| async move {
            let api = slack()?;
            let mut body = crate::slack::blocks::message(intent, &extras.ping);
            if let Some(ts) = &extras.thread {
                body["thread_ts"] = serde_json::json!(ts);
            }
            if let Some(r) = existing {
                return api.update(r, &body, now).await;
            }
            if let Some(known) = in_doubt {
                let search = known.unwrap_or_else(|| channel.clone());
                if let Ok(Some(found)) = api.find_posted(&search, nonce, now).await {
                    tracing::info!(outbox = nonce, "found the message a previous attempt posted; not posting again");
                    return Ok(found);
                }
            }
            if let Some(image) = &intent.image {
                let file = api.upload(image, now).await?;
                let block = serde_json::json!({"type": "image", "slack_file": {"id": file}, "alt_text": image.title});
                if let Some(blocks) = body["blocks"].as_array_mut() {
                    blocks.push(block);
                }
            }
            api.post(&channel, &body, nonce, now).await
        };
        match &intent.to {
            Recipient::Client(client) => {
                self.hooks.send(client, None, intent, nonce, existing, now).await.map(Sent::plain)
            }
            Recipient::SlackChannel(c) => slack_send(c.clone()).await.map(Sent::plain),
            Recipient::DiscordChannel(c) => {
                let api = discord()?;
                let body = crate::discord::api::message(intent, nonce, &extras.ping);
                if let Some(r) = existing {
                    return api.edit(r, &body, now).await.map(Sent::plain);
                }
                let target = extras.thread.as_deref().unwrap_or(c);
                let reference = match &intent.image {
                    Some(image) => api.post_image(target, &body, image, now).await?,
                    None => api.post(target, &body, now).await?,
                };
                let thread = match (intent.handoff, &extras.thread) {
                    (Some(h), None) => {
                        // Named by the handoff, once: a card's first line starts with its label.
                        let first = intent.text.lines().next().unwrap_or("");
                        let name = match first.starts_with(&format!("H-{h} ")) {
                            true => first.to_string(),
                            false => format!("H-{h} {first}"),
                        };
                        match api.start_thread(&reference, &name, now).await {
                            Ok(t) => Some(t),
                            Err(e) => {
                                tracing::warn!("could not open a thread for H-{h}: {e}");
                                None
                            }
                        }
                    }
                    _ => None,
                };
                Ok(Sent { reference, thread })
            }
            Recipient::Person(p) => {
                let person = model.person(p).ok_or_else(|| {
                    SendError::Permanent(format!(
                        "`{p}` is not in the operating model (they left it, or it was mistyped)"
                    ))
                })?;
                let discord_id = person.discord.clone().or_else(|| extras.ping.first().cloned());
                match (&person.slack, discord_id) {
                    (Some(u), _) if self.slack.is_some() => slack_send(u.clone()).await.map(Sent::plain),
                    (_, Some(u)) if self.discord.is_some() => {
                        let api = discord()?;
                        let channel = api.dm_channel(&u, now).await?;
                        let body = crate::discord::api::message(intent, nonce, &[]);
                        // A card drawn again is edited in place, as in Slack, when the earlier one
                        // is in this DM (not a Slack message from before the person's platform changed).
                        if let Some(r) = existing.filter(|r| r.split_once(':').is_some_and(|(c, _)| c == channel)) {
                            return api.edit(r, &body, now).await.map(Sent::plain);
                        }
                        match &intent.image {
                            Some(image) => api.post_image(&channel, &body, image, now).await.map(Sent::plain),
                            None => api.post(&channel, &body, now).await.map(Sent::plain),
                        }
                    }
                    // Someone with no chat account at all (an agent) hears it at the webhook of a
                    // client acting for them.
                    (None, None) if let Some(client) = self.hooks.client_for(model, p) => {
                        self.hooks.send(client, Some(p), intent, nonce, existing, now).await.map(Sent::plain)
                    }
                    (None, None) => Err(SendError::Permanent(format!(
                        "{} has no Slack or Discord account, and no API client with a webhook acts for them",
                        person.name
                    ))),
                    _ => Err(SendError::Permanent(format!(
                        "{} is on a platform Baton is not configured for (its bot token is not set)",
                        person.name
                    ))),
                }
            }
        }
    }
}

/// Whether a message asks its recipient to act on the handoff as it stands, and is answered
/// (`IntentKind::Settled`) when that is done: an escalation, a heads-up, a notice with buttons
/// (a watcher's *Stop watching* asks nothing).
fn asks_to_act(intent: &Intent) -> bool {
    match intent.kind {
        IntentKind::Escalation | IntentKind::HeadsUp => true,
        IntentKind::Notice => intent.actions.iter().any(|a| *a != Action::Unwatch),
        _ => false,
    }
}

/// What a message says in a digest: all of it, but a Slack channel's escalation only its first
/// line (the rest is the handoff's card, which that channel has already, kept up to date; a Discord
/// channel may have only the escalations).
fn folded(intent: &Intent) -> &str {
    match (&intent.kind, &intent.to) {
        (IntentKind::Escalation, Recipient::SlackChannel(_)) => intent.text.lines().next().unwrap_or_default(),
        _ => &intent.text,
    }
}

/// One platform message: a single outbox row, or several folded into a digest.
#[derive(Clone, Debug)]
pub struct Piece {
    /// The rows it delivers, oldest first.
    pub rows: Vec<Claimed>,
}

impl Piece {
    /// The message to send.
    pub fn intent(&self) -> Intent {
        match self.rows.as_slice() {
            [one] => one.intent.clone(),
            rows => Intent {
                to: rows[0].intent.to.clone(),
                handoff: None,
                kind: IntentKind::Digest,
                text: render::digest(
                    rows.iter().map(|r| folded(&r.intent)),
                    matches!(rows[0].intent.to, Recipient::Person(_)),
                ),
                actions: Vec::new(),
                not_before: None,
                mentions: Vec::new(),
                image: None,
            },
        }
    }

    /// Row ids.
    pub fn ids(&self) -> Vec<i64> {
        self.rows.iter().map(|r| r.id).collect()
    }
}

/// Groups claimed rows by recipient, keeping each recipient's order. When more than `threshold`
/// foldable messages (notices, escalations) wait for one recipient, they become one digest sent
/// after that recipient's other messages; cards and recalibrations always go alone.
/// `folds` says whether a recipient takes digests: a program at a webhook reads one message at
/// a time, with its handoff and actions, which a digest would lose.
pub fn plan(rows: Vec<Claimed>, threshold: usize, folds: impl Fn(&Recipient) -> bool) -> Vec<Vec<Piece>> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<Claimed>> = HashMap::new();
    for row in rows {
        let key = recipient_key(&row.intent.to);
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(row);
    }
    order
        .into_iter()
        .filter_map(|key| groups.remove(&key))
        .map(|rows| {
            let foldable = rows.iter().filter(|r| r.intent.digestible()).count();
            if foldable <= threshold || !folds(&rows[0].intent.to) {
                return rows.into_iter().map(|r| Piece { rows: vec![r] }).collect();
            }
            let (fold, alone): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.intent.digestible());
            let mut pieces: Vec<Piece> = alone.into_iter().map(|r| Piece { rows: vec![r] }).collect();
            pieces.push(Piece { rows: fold });
            pieces
        })
        .collect()
}

/// Backoff before attempt `attempts + 1`: 2 s doubling to at most 15 minutes, with full jitter
/// over the upper half so that many failures do not retry in step.
pub fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(0, 20) as u32;
    let ceiling = (2_000i64.saturating_mul(1 << exp.min(19))).min(15 * 60 * 1000);
    Duration::milliseconds(fastrand::i64(ceiling / 2..=ceiling))
}

/// The pass's time: the instant it began (real or simulated) plus the real time elapsed since,
/// so that a retry is scheduled from when the platform answered.
#[derive(Clone, Copy, Debug)]
struct PassClock {
    start: DateTime<Utc>,
    started: std::time::Instant,
}

impl PassClock {
    fn now(&self) -> DateTime<Utc> {
        self.start + Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }
}

/// How far apart a recipient's messages are put back behind one held by a rate limit: about the
/// pace one channel takes (Slack about one message a second per channel, Discord five in five
/// seconds). Each later pass then claims what may go out, instead of the whole backlog again to
/// send one message and put the rest back.
pub const PACE_AFTER_WAIT: Duration = Duration::seconds(1);

/// A piece that must wait: until when, and how far apart the recipient's later messages follow it.
#[derive(Clone, Copy, Debug)]
struct Wait {
    until: DateTime<Utc>,
    /// [`PACE_AFTER_WAIT`] after a rate limit; none after a failure, so that while a platform
    /// fails only the first message is tried and the rest wait untried.
    pace: Duration,
}

/// Delivers the outbox.
#[derive(Clone, Debug)]
pub struct Deliverer {
    /// The outbox lives here.
    pub store: Store,
    /// Who people are on each platform, the seam leads to tell of dead letters, the policy.
    pub model: Arc<OperatingModel>,
    /// Where messages go.
    pub out: Outbound,
    /// How long a claim lasts before another worker may take the message over.
    pub lease: Duration,
    /// Messages claimed per pass.
    pub batch: i64,
    /// Sends in flight at once (across recipients; one recipient's messages go in order).
    pub concurrency: usize,
    /// Where each paced recipient's line of waiting messages ends (see [`Lines`]).
    pub lines: Lines,
}

/// For each recipient whose messages this process put back behind a rate limit, the instant the
/// last of them waits for: messages put back later queue behind it, so that a recipient whose
/// backlog grows faster than its platform takes it (one Slack channel, a message a second) has
/// each message claimed again about once, not at every lift of the limit.
#[derive(Clone, Debug, Default)]
pub struct Lines(Arc<Mutex<HashMap<String, DateTime<Utc>>>>);

impl Lines {
    /// Where `n` messages to `recipient`, paced `pace` apart, start waiting behind one held until
    /// `until`: after the recipient's line, when it ends later. Records the new end.
    fn join(&self, recipient: &str, until: DateTime<Utc>, pace: Duration, n: usize) -> DateTime<Utc> {
        let Ok(mut lines) = self.0.lock() else { return until };
        if lines.len() > LINES_KEPT {
            lines.retain(|_, end| *end > until);
        }
        let start = lines.get(recipient).copied().filter(|end| *end > until).unwrap_or(until);
        lines.insert(recipient.to_string(), start + pace * i32::try_from(n).unwrap_or(i32::MAX));
        start
    }
}

/// Recipients' lines kept before those already over are forgotten.
const LINES_KEPT: usize = 10_000;

impl Deliverer {
    /// Claims and delivers what is due at `now`; returns how many messages were claimed.
    pub async fn pass(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let clock = PassClock { start: now, started: std::time::Instant::now() };
        let rows = self.store.claim_outbox(now, self.lease, self.batch).await?;
        let claimed = rows.len();
        let rows = self.drop_answered(rows, now).await?;
        let gate = Arc::new(tokio::sync::Semaphore::new(self.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        let folds = |to: &Recipient| !self.out.by_webhook(&self.model, to);
        for pieces in plan(rows, self.model.delivery.digest_threshold, folds) {
            let me = self.clone();
            let gate = gate.clone();
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                me.deliver_in_order(pieces, clock).await
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("recording a delivery failed: {e:#}"),
                Err(e) => tracing::error!("a delivery task failed: {e}"),
            }
        }
        Ok(claimed)
    }

    /// Messages that ask someone to act, answered before they could go out (held for the
    /// recipient's working hours, or waiting out a platform's outage: an answer waits behind them),
    /// are not sent: they would ask for what is done. They are recorded as delivered without a
    /// platform message; the rest is returned.
    async fn drop_answered(&self, rows: Vec<Claimed>, now: DateTime<Utc>) -> anyhow::Result<Vec<Claimed>> {
        let asks: Vec<(i64, &Intent)> =
            rows.iter().filter(|r| asks_to_act(&r.intent)).map(|r| (r.id, &r.intent)).collect();
        let answered = self.store.followed_by(&asks, &IntentKind::Settled, true).await?;
        if answered.is_empty() {
            return Ok(rows);
        }
        tracing::info!(outbox = ?answered, "not sent: answered before they could go out");
        self.store.mark_delivered(&answered, now, None, None).await?;
        Ok(rows.into_iter().filter(|r| !answered.contains(&r.id)).collect())
    }

    /// Passes at `now` until nothing more is due (a message held behind an earlier one to the
    /// same recipient goes in a later pass); returns how many messages were claimed.
    pub async fn drain(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut total = 0;
        for _ in 0..1000 {
            match self.pass(now).await? {
                0 => break,
                n => total += n,
            }
        }
        Ok(total)
    }

    /// One recipient's messages, in order; once one must wait, the rest wait behind it (put back
    /// with one statement), paced apart after a rate limit (see [`Wait`]).
    async fn deliver_in_order(&self, pieces: Vec<Piece>, clock: PassClock) -> anyhow::Result<()> {
        let mut pieces = pieces.into_iter();
        for piece in pieces.by_ref() {
            if let Some(Wait { until, pace }) = self.deliver(&piece, clock).await? {
                let rest: Vec<Piece> = pieces.collect();
                // Paced after a rate limit, they join the end of the recipient's line.
                let start = match pace.is_zero() {
                    true => until,
                    false => self.lines.join(&recipient_key(&piece.rows[0].intent.to), until, pace, rest.len()),
                };
                let rest: Vec<(i64, DateTime<Utc>)> = rest
                    .iter()
                    .zip(1..)
                    .flat_map(|(p, k)| p.ids().into_iter().map(move |id| (id, start + pace * k)))
                    .collect();
                self.store.put_back(&rest, "waiting behind an earlier message").await?;
                break;
            }
        }
        Ok(())
    }

    /// Sends one piece and records the outcome; returns when to try again if it must wait.
    async fn deliver(&self, piece: &Piece, clock: PassClock) -> anyhow::Result<Option<Wait>> {
        let intent = piece.intent();
        let first = &piece.rows[0];
        let answers = match intent.kind {
            IntentKind::Settled => Some(Asked::Act),
            IntentKind::Concluded => Some(Asked::Recalibration),
            _ => None,
        };
        if let (Some(about), Some(h)) = (answers, intent.handoff) {
            return self.answer(piece, &intent, h, about, clock).await;
        }
        let card = match (&intent.kind, intent.handoff) {
            (IntentKind::Card, Some(h)) => Some(h),
            _ => None,
        };
        let existing = card.and(first.card_ref.clone());
        // Only a lone message can be matched to what an earlier attempt posted; a digest's
        // composition may differ from the one a crashed worker sent.
        let in_doubt = match piece.rows.len() == 1 && first.in_doubt {
            true => Some(self.store.known_conversation(&intent.to).await?),
            false => None,
        };
        // The span goes with the future (`instrument`), never as an entered guard held across an
        // await: a task that yields inside `span.enter()` leaves the span entered on a worker thread
        // other tasks then run on, which corrupted the registry and panicked HTTP handlers.
        let span = tracing::info_span!("deliver", outbox = first.id, handoff = intent.handoff, to = %recipient_key(&intent.to));
        let extras = self.extras(&intent).instrument(span.clone()).await?;
        let result = self
            .out
            .send(&self.model, &intent, first.id, existing.as_deref(), in_doubt, &extras, clock.now())
            .instrument(span)
            .await;
        // Retry times count from when the answer came, not from when the pass began.
        let now = clock.now();
        let ids = piece.ids();
        match result {
            Ok(sent) => {
                metrics::counter!("baton_messages_delivered_total").increment(ids.len() as u64);
                if let (Some(thread), Some(h), Recipient::DiscordChannel(c)) =
                    (&sent.thread, intent.handoff, &intent.to)
                {
                    self.store.set_ref(h, &thread_key(c), thread, now).await?;
                }
                // A recalibration's opening post in Slack is its thread: later thread messages reply to it.
                if let (IntentKind::Recalibration { .. }, Some(h), Recipient::SlackChannel(c)) =
                    (&intent.kind, intent.handoff, &intent.to)
                    && let Some((_, ts)) = sent.reference.split_once(':')
                {
                    self.store.set_ref(h, &slack_thread_key(c), ts, now).await?;
                }
                // What asks for something is edited when it is answered, when sent alone (a
                // webhook's receiver is a program: it acts on what it is sent, and is told nothing more).
                let asks = piece.rows.len() == 1 && !self.out.by_webhook(&self.model, &intent.to);
                let about = match &intent.kind {
                    _ if asks_to_act(&intent) => Some(Asked::Act),
                    IntentKind::Recalibration { .. } => Some(Asked::Recalibration),
                    IntentKind::Thread if !intent.actions.is_empty() => Some(Asked::Recalibration),
                    _ => None,
                };
                let kept = match (&intent.kind, intent.handoff, about) {
                    (IntentKind::Card, Some(h), _) => Some(Kept::Card(h, &intent.to)),
                    (_, Some(_), Some(about)) if asks => Some(Kept::Ask(Ask { about, intent: &intent })),
                    _ => None,
                };
                self.store.mark_delivered(&ids, now, Some(&sent.reference), kept).await?;
                Ok(None)
            }
            Err(e) => self.failed(piece, &intent, e, now).await,
        }
    }

    /// Edits the messages that asked `intent`'s recipient about handoff `h` what it answers (a
    /// stall's escalations, a recalibration's requests for its record): each keeps what it said,
    /// followed by the answer's text, and loses its buttons. A message that can no longer be edited
    /// (deleted, or on a platform the person left) is passed over: the answer posts nothing new.
    async fn answer(
        &self,
        piece: &Piece,
        intent: &Intent,
        h: HandoffId,
        about: Asked,
        clock: PassClock,
    ) -> anyhow::Result<Option<Wait>> {
        let asks = self.store.asks(h, &intent.to, about).await?;
        // A person reached through a linked Discord account is found through it again; nobody is
        // pinged by an edit.
        let extras = match &intent.to {
            Recipient::Person(_) => self.extras(intent).await?,
            _ => Extras::default(),
        };
        let id = piece.rows[0].id;
        for ask in &asks {
            let r = &ask.platform_ref;
            let text = format!("{}\n{}", ask.intent.text, intent.text);
            let edit = Intent { text, actions: Vec::new(), mentions: Vec::new(), ..ask.intent.clone() };
            let span = tracing::info_span!("answer", outbox = id, handoff = h, to = %recipient_key(&intent.to));
            let sent = self.out.send(&self.model, &edit, id, Some(r), None, &extras, clock.now());
            match sent.instrument(span).await {
                Ok(_) => {}
                Err(SendError::Permanent(reason)) => {
                    tracing::warn!(outbox = id, handoff = h, "an answered message ({r}) could not be edited: {reason}");
                }
                Err(e) => return self.failed(piece, intent, e, clock.now()).await,
            }
        }
        metrics::counter!("baton_messages_delivered_total").increment(1);
        let edited: Vec<String> = asks.into_iter().map(|a| a.platform_ref).collect();
        let kept = Kept::Answered(h, &intent.to, &edited);
        self.store.mark_delivered(&piece.ids(), clock.now(), edited.last().map(String::as_str), Some(kept)).await?;
        Ok(None)
    }

    /// Records a failed send: tried again later, held, or given up on.
    async fn failed(
        &self,
        piece: &Piece,
        intent: &Intent,
        e: SendError,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<Wait>> {
        let ids = piece.ids();
        let first = &piece.rows[0];
        match e {
            SendError::Retry { reason, after } => {
                let attempts = piece.rows.iter().map(|r| r.attempts).max().unwrap_or(0) + 1;
                if attempts >= i64::from(self.model.delivery.max_attempts) {
                    self.dead(piece, intent, &format!("{reason} (after {attempts} attempts)"), now).await?;
                    return Ok(None);
                }
                metrics::counter!("baton_delivery_failures_total", "outcome" => "retry").increment(1);
                let at = now + after.unwrap_or_else(|| backoff(attempts - 1));
                tracing::warn!(outbox = first.id, "delivery will be retried at {at}: {reason}");
                self.store.mark_retry(&ids, &reason, at, true).await?;
                Ok(Some(Wait { until: at, pace: Duration::zero() }))
            }
            SendError::RateLimited { reason, after } => {
                metrics::counter!("baton_delivery_failures_total", "outcome" => "rate_limited").increment(1);
                let at = now + after;
                tracing::info!(outbox = first.id, "rate limited; sent again at {at}: {reason}");
                self.store.mark_retry(&ids, &reason, at, false).await?;
                Ok(Some(Wait { until: at, pace: PACE_AFTER_WAIT }))
            }
            SendError::Held(wait) => {
                let at = now + wait;
                self.store.mark_retry(&ids, &SendError::Held(wait).to_string(), at, false).await?;
                Ok(Some(Wait { until: at, pace: PACE_AFTER_WAIT }))
            }
            SendError::Permanent(reason) => {
                self.dead(piece, intent, &reason, now).await?;
                Ok(None)
            }
        }
    }

    /// What a message needs besides its intent: in a Slack channel, the recalibration thread to
    /// reply in and the participants to mention; in a Discord channel, the handoff's thread and who
    /// to ping (the mentioned people, or for an escalation the owner (if still in the model), else the receiving lead,
    /// by their configured or linked accounts); for a DM to someone with no configured account,
    /// their linked Discord account.
    async fn extras(&self, intent: &Intent) -> anyhow::Result<Extras> {
        let discord_ids = |person: String| async move {
            let mut ids: Vec<String> = self.model.person(&person).and_then(|p| p.discord.clone()).into_iter().collect();
            ids.extend(self.store.linked_accounts("discord", &person).await?);
            anyhow::Ok(ids)
        };
        match (&intent.to, intent.handoff) {
            (Recipient::SlackChannel(c), Some(h)) => {
                let thread = match intent.kind {
                    IntentKind::Thread => self.store.get_ref(h, &slack_thread_key(c)).await?,
                    _ => None,
                };
                let ping = intent.mentions.iter().filter_map(|p| self.model.person(p)?.slack.clone()).collect();
                Ok(Extras { thread, ping })
            }
            (Recipient::DiscordChannel(c), Some(h)) => {
                let thread = self.store.get_ref(h, &thread_key(c)).await?;
                let mut ping = Vec::new();
                if !intent.mentions.is_empty() {
                    for p in &intent.mentions {
                        ping.extend(discord_ids(p.clone()).await?);
                    }
                } else if let (IntentKind::Escalation, Some(s)) = (&intent.kind, self.store.load(h).await?) {
                    // An owner who left the model is not pinged (a linked account outlives them).
                    let owner = s.handoff.owner.clone().filter(|o| self.model.person(o).is_some());
                    let person = owner.or_else(|| {
                        let seam = self.model.seams.get(&s.handoff.seam)?;
                        Some(self.model.functions.get(&seam.to)?.lead.clone())
                    });
                    if let Some(p) = person {
                        ping = discord_ids(p).await?;
                    }
                }
                Ok(Extras { thread, ping })
            }
            (Recipient::Person(p), _)
                if self.model.person(p).is_some_and(|x| x.slack.is_none() && x.discord.is_none()) =>
            {
                Ok(Extras { thread: None, ping: discord_ids(p.clone()).await? })
            }
            _ => Ok(Extras::default()),
        }
    }

    /// Dead-letters a piece and tells the seam's lead (unless the lead is who we failed to reach).
    async fn dead(&self, piece: &Piece, intent: &Intent, reason: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
        tracing::error!(outbox = piece.rows[0].id, "delivery abandoned: {reason}");
        metrics::counter!("baton_delivery_failures_total", "outcome" => "dead").increment(piece.rows.len() as u64);
        let handoff = piece.rows.iter().find_map(|r| r.intent.handoff);
        let lead = match handoff {
            Some(id) => self.store.load(id).await?.and_then(|s| {
                let seam = self.model.seams.get(&s.handoff.seam)?;
                Some((id, self.model.functions.get(&seam.to)?.lead.clone()))
            }),
            None => None,
        };
        // What an API client missed is the operators' to fix (the log says it), not the lead's; what
        // someone who left the model was sent, the lead need not hear of (they are told what such
        // a person still owns), but for a follow-up given to them, which nobody else would do.
        let gone = !self.model.reaches(&intent.to) && intent.kind != IntentKind::FollowUp;
        let lead = lead.filter(|_| !matches!(intent.to, Recipient::Client(_)) && !gone);
        let notice = lead.filter(|(_, lead)| intent.to != Recipient::Person(lead.clone())).map(|(id, lead)| Intent {
            to: Recipient::Person(lead),
            handoff: Some(id),
            kind: IntentKind::Notice,
            text: format!(
                "Baton could not deliver a message about H-{id} to {}: {reason}. The message was:\n{}",
                describe(&self.model, &intent.to),
                intent.text
            ),
            actions: Vec::new(),
            not_before: None,
            mentions: Vec::new(),
            image: None,
        });
        self.store.mark_dead(&piece.ids(), reason, now, notice.as_ref()).await?;
        Ok(())
    }

    /// Refreshes the outbox's statistics (for a `backlog` or not) and notes it in `stats` (a
    /// failure is logged).
    async fn analyze(&self, stats: &mut Statistics, backlog: bool) {
        let started = std::time::Instant::now();
        let rows = self.store.analyze_outbox().await;
        if let Err(e) = &rows {
            tracing::warn!("refreshing the outbox's statistics failed: {e:#}");
        }
        stats.refreshed(started, started.elapsed(), rows.ok(), backlog);
    }

    /// Delivers until `shutdown`: wakes when `wake` is notified, when the earliest pending
    /// message falls due, or after `poll` at the latest (other replicas enqueue too). A pass in
    /// progress finishes before it stops.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>, poll: std::time::Duration) {
        // The outbox's statistics are refreshed before the first pass, then when a backlog shows
        // or the outbox has grown (see `Statistics` and `Store::analyze_outbox`).
        let (mut stats, mut backlog) = (Statistics::default(), false);
        loop {
            if *shutdown.borrow() {
                return;
            }
            if stats.due(backlog, std::time::Instant::now()) {
                self.analyze(&mut stats, backlog).await;
            }
            let claimed = match self.pass(Utc::now()).await {
                Ok(n) => n as i64,
                Err(e) => {
                    tracing::error!("delivery pass failed (will retry): {e:#}");
                    0
                }
            };
            stats.claimed += claimed;
            let busy = claimed >= self.batch;
            backlog = claimed >= self.batch.min(BACKLOG);
            if busy {
                continue;
            }
            let wait = match self.store.earliest_outbox().await {
                Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or_default().min(poll),
                _ => poll,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Messages claimed by one pass that make a backlog, for refreshing the outbox's statistics.
const BACKLOG: i64 = 100;

/// The least time between two refreshes of the outbox's statistics for a backlog, by one worker.
const BACKLOG_ANALYZE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// When a delivery worker last refreshed the outbox's statistics, and what it claimed since.
#[derive(Clone, Copy, Debug, Default)]
struct Statistics {
    /// When the last refresh started (`None` before the first).
    at: Option<std::time::Instant>,
    /// How long it took.
    took: std::time::Duration,
    /// The rows the outbox held by it.
    rows: i64,
    /// Messages claimed since (each a row added since, or about to be).
    claimed: i64,
    /// When the last refresh for a backlog started.
    backlog_at: Option<std::time::Instant>,
}

impl Statistics {
    /// Whether to refresh the statistics at `now`: before the first pass; when a pass claimed a
    /// backlog (`backlog`), at most once a minute; and once the worker has claimed as many
    /// messages as autovacuum's own rule asks (50 and a tenth of the outbox), resting a hundred
    /// times as long as the last refresh took (a refresh of 70 ms, at 60,000 rows, every 7 s at
    /// most).
    fn due(&self, backlog: bool, now: std::time::Instant) -> bool {
        let Some(at) = self.at else { return true };
        let since = |at: std::time::Instant| now.saturating_duration_since(at);
        let for_backlog = backlog && self.backlog_at.is_none_or(|at| since(at) >= BACKLOG_ANALYZE_EVERY);
        let grown = self.claimed >= 50 + self.rows / 10 && since(at) >= self.took * 100;
        for_backlog || grown
    }

    /// Notes a refresh (for a `backlog` or not) that started `at` and took `took`, and the rows
    /// it counted; `None` when it failed, which leaves it as due as it was, once rested.
    fn refreshed(&mut self, at: std::time::Instant, took: std::time::Duration, rows: Option<i64>, backlog: bool) {
        let (rows, claimed) = rows.map_or((self.rows, self.claimed), |rows| (rows, 0));
        let backlog_at = if backlog { Some(at) } else { self.backlog_at };
        *self = Statistics { at: Some(at), took, rows, claimed, backlog_at };
    }
}

/// The message-reference key of a handoff's recalibration thread in a Slack channel.
fn slack_thread_key(channel: &str) -> String {
    format!("{SLACK_THREAD}{channel}")
}

/// How the message-reference keys of Slack recalibration threads begin.
pub const SLACK_THREAD: &str = "slack-thread:";

/// The message-reference key of a handoff's thread in a Discord channel.
fn thread_key(channel: &str) -> String {
    format!("{DISCORD_THREAD}{channel}")
}

/// How the message-reference keys of handoffs' Discord threads begin.
pub const DISCORD_THREAD: &str = "discord-thread:";

/// A recipient as people say it.
fn describe(model: &OperatingModel, to: &Recipient) -> String {
    match to {
        Recipient::Person(p) => model.name_of(p).to_string(),
        Recipient::SlackChannel(c) => format!("Slack channel {c}"),
        Recipient::DiscordChannel(c) => format!("Discord channel {c}"),
        Recipient::Client(c) => format!("API client {c}'s webhook"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_statistics_are_refreshed_first_then_for_a_backlog_or_growth() {
        let start = std::time::Instant::now();
        let at = |ms: u64| start + std::time::Duration::from_millis(ms);
        let took = std::time::Duration::from_millis;
        let mut stats = Statistics::default();
        assert!(stats.due(false, start), "before the first pass");
        stats.refreshed(start, took(5), Some(10_000), false);
        assert!(!stats.due(false, at(1)), "nothing claimed since");
        assert!(stats.due(true, at(1)), "a first backlog, however soon");
        stats.refreshed(at(1), took(5), Some(10_000), true);
        assert!(!stats.due(true, at(60_000)), "the next backlog a minute after the first");
        assert!(stats.due(true, at(60_001)));
        stats.claimed = 1_049;
        assert!(!stats.due(false, at(2_000)), "short of 50 and a tenth of 10,000 rows");
        stats.claimed = 1_050;
        assert!(stats.due(false, at(2_000)), "grown by 50 and a tenth");
        // Growth rests a hundred times as long as the last refresh took.
        stats.refreshed(at(2_000), took(70), Some(60_000), false);
        assert_eq!(stats.claimed, 0);
        stats.claimed = 100_000;
        assert!(!stats.due(false, at(8_999)));
        assert!(stats.due(false, at(9_000)));
        // A failed refresh changes nothing but when it may be tried again.
        stats.refreshed(at(9_000), took(5), None, false);
        assert_eq!((stats.rows, stats.claimed), (60_000, 100_000));
        assert!(!stats.due(false, at(9_499)));
        assert!(stats.due(false, at(9_500)), "still grown");
    }

    fn row(id: i64, to: &str, kind: IntentKind) -> Claimed {
        Claimed {
            id,
            intent: Intent {
                to: Recipient::Person(to.into()),
                handoff: Some(id as u64),
                kind,
                text: format!("message {id}"),
                actions: vec![Action::Ack],
                not_before: None,
                mentions: Vec::new(),
                image: None,
            },
            attempts: 0,
            in_doubt: false,
            card_ref: None,
        }
    }

    #[test]
    fn a_flood_to_one_recipient_becomes_one_digest_while_others_are_untouched() {
        let mut rows: Vec<Claimed> = (1..=5).map(|i| row(i, "ana", IntentKind::Escalation)).collect();
        rows.push(row(6, "ana", IntentKind::Card));
        rows.push(row(7, "ben", IntentKind::Notice));
        rows.push(row(8, "ben", IntentKind::Notice));
        let plan = plan(rows, 3, |_| true);
        assert_eq!(plan.len(), 2);
        let ana: Vec<Vec<i64>> = plan[0].iter().map(Piece::ids).collect();
        assert_eq!(ana, [vec![6], vec![1, 2, 3, 4, 5]], "the card alone, the five escalations folded");
        let digest = plan[0][1].intent();
        assert_eq!(digest.kind, IntentKind::Digest);
        assert!(digest.text.starts_with("5 updates for you:"));
        assert!(digest.text.contains("• message 1") && digest.text.contains("• message 5"));
        assert!(digest.actions.is_empty());
        let ben: Vec<Vec<i64>> = plan[1].iter().map(Piece::ids).collect();
        assert_eq!(ben, [vec![7], vec![8]], "at or under the threshold each goes alone");
        // A channel's digest is not addressed to "you".
        let channel: Vec<Claimed> = (1..=4)
            .map(|i| {
                let mut r = row(i, "x", IntentKind::Escalation);
                r.intent.to = Recipient::SlackChannel("#cs-handoffs".into());
                r.intent.text = format!("Escalation: H-{i} is stalled\nH-{i} · its card\nState: open");
                r
            })
            .collect();
        let text = super::plan(channel, 3, |_| true)[0][0].intent().text;
        // Its escalations say what stalled; their cards are in the channel already.
        assert_eq!(
            text,
            "4 updates:\n• Escalation: H-1 is stalled\n• Escalation: H-2 is stalled\n• Escalation: H-3 is stalled\n\
             • Escalation: H-4 is stalled"
        );
    }

    #[test]
    fn a_recipient_that_takes_no_digests_gets_each_message_alone() {
        let rows: Vec<Claimed> = (1..=5).map(|i| row(i, "deploy-bot", IntentKind::Escalation)).collect();
        let plan = plan(rows, 3, |to| *to != Recipient::Person("deploy-bot".into()));
        let ids: Vec<Vec<i64>> = plan[0].iter().map(Piece::ids).collect();
        assert_eq!(ids, [vec![1], vec![2], vec![3], vec![4], vec![5]]);
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for attempts in 0..30 {
            let ceiling = (2_000i64 << attempts.min(19)).min(900_000);
            let b = backoff(attempts).num_milliseconds();
            assert!(b >= ceiling / 2 && b <= ceiling, "attempt {attempts}: {b} ms");
        }
    }

    #[test]
    fn limits_refuse_until_the_hold_lifts() {
        let limits = Limits::default();
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        limits.hold("k", t0 + Duration::seconds(5));
        let err = limits.check(&["other", "k"], t0).expect_err("held");
        assert_eq!(err, SendError::Held(Duration::seconds(5)));
        assert!(limits.check(&["k"], t0 + Duration::seconds(5)).is_ok());
        // A hold ending within a millisecond lifts at that millisecond, when a message put back
        // until it (kept to the millisecond) falls due.
        limits.hold("fine", t0 + Duration::microseconds(30_000_400));
        assert!(limits.check(&["fine"], t0 + Duration::milliseconds(30_000)).is_ok());
        assert!(limits.check(&["fine"], t0 + Duration::microseconds(29_999_900)).is_err());
    }
}
