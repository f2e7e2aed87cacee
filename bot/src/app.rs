//! The service: turns a person's command into a persisted decision, and runs stall sweeps.
//!
//! Adapters (console, Slack, Discord) call [`App::handle`] with a verified actor; the scheduler calls
//! [`App::sweep`]. Both load the handoff, ask the core, and save the decision in one transaction,
//! reloading and deciding again when another command won the race.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use baton_core::away::Going;
use baton_core::command::USAGE;
use baton_core::history::{StallsQuery, View, Viewer};
use baton_core::plate::Plate;
use baton_core::{
    AwayCommand, Command, Ctx, Decision, Handoff, HandoffId, NewHandoff, OperatingModel, Rejection, Surface, render,
};
use baton_core::{Image, Intent, IntentKind, Recipient};
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::report;
use crate::reviewer::Webhooks;
use crate::store::{Absence, Store, StoreError};

/// How often a command is re-decided after losing a race before giving up.
const MAX_ATTEMPTS: usize = 5;

/// Handoffs claimed and checked per sweep transaction.
pub const SWEEP_BATCH: i64 = 200;

/// What went wrong handling a command.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The core refused; the message is for the person.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// This exact request was already handled (a retry or replay).
    #[error("already handled")]
    Duplicate,
    /// Something failed on our side; logged with its cause, a short apology for the person.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate => AppError::Duplicate,
            other => AppError::Internal(other.into()),
        }
    }
}

/// The Baton service: operating model plus store.
#[derive(Clone, Debug)]
pub struct App {
    /// The durable store.
    pub store: Store,
    /// The operating model in force.
    pub model: Arc<OperatingModel>,
    /// Webhook reviewers.
    pub webhooks: Webhooks,
    /// Wakes the background tasks after a command saved something.
    pub wake: Wake,
}

/// Wakes the scheduler (a new check may be due sooner) and the delivery worker (messages queued).
#[derive(Clone, Debug, Default)]
pub struct Wake {
    /// The scheduler's wake-up.
    pub scheduler: Arc<Notify>,
    /// The delivery worker's wake-up.
    pub delivery: Arc<Notify>,
}

impl Wake {
    /// After a command: its messages are queued now. The scheduler is not woken: a command's
    /// next check lies at least a business minute ahead, and its poll comes sooner than that.
    fn after_command(&self) {
        self.delivery.notify_one();
    }
}

impl App {
    /// A service over `store` with `model`, reading webhook reviewer URLs from the environment.
    pub fn new(store: Store, model: OperatingModel) -> App {
        let (webhooks, problems) = Webhooks::from_env(&model);
        for problem in problems {
            tracing::warn!("{problem}: its webhook reviewer will fail every review");
        }
        App { store, model: Arc::new(model), webhooks, wake: Wake::default() }
    }

    /// Handles one command from a verified person. `key` identifies the request so a retry or
    /// replay acts at most once. Returns the reply for the person.
    pub async fn handle(
        &self,
        actor: &str,
        surface: Surface,
        command: Command,
        now: DateTime<Utc>,
        key: Option<&str>,
    ) -> Result<String, AppError> {
        self.handle_in(actor, surface, command, now, key, None).await
    }

    /// [`App::handle`] for a command typed in a channel (`place`), where a chart is posted.
    pub async fn handle_in(
        &self,
        actor: &str,
        surface: Surface,
        command: Command,
        now: DateTime<Utc>,
        key: Option<&str>,
        place: Option<Recipient>,
    ) -> Result<String, AppError> {
        self.handle_full(actor, surface, command, now, key, place, None).await
    }

    /// [`App::handle`] for a command sent through the API by `client` (named in the audit trail).
    pub async fn handle_through(
        &self,
        client: &str,
        actor: &str,
        command: Command,
        now: DateTime<Utc>,
        key: Option<&str>,
    ) -> Result<String, AppError> {
        self.handle_full(actor, Surface::Api, command, now, key, None, Some(client)).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn handle_full(
        &self,
        actor: &str,
        surface: Surface,
        command: Command,
        now: DateTime<Utc>,
        key: Option<&str>,
        place: Option<Recipient>,
        via: Option<&str>,
    ) -> Result<String, AppError> {
        if self.model.person(actor).is_none() {
            return Err(Rejection::UnknownActor.into());
        }
        command.check_text()?;
        let command = command.resolved(&self.model);
        // A replay is recognised before deciding, so it is not answered as a fresh, refused command;
        // two copies racing past this check still meet the key's unique index when saving. A new
        // handoff records its key first thing in its own transaction, so it needs no lookup.
        if let Some(key) = key
            && !matches!(command, Command::New { .. })
            && self.store.processed(key).await?
        {
            return Err(AppError::Duplicate);
        }
        match command {
            Command::Help(topic) => Ok(help(&self.model, Some(actor), topic.as_deref())),
            Command::Show(id) => {
                let h = self.get(id).await?;
                let ctx = Ctx::new(&self.model, &h.seam)?;
                Ok(render::card(&ctx, &h, now))
            }
            Command::Log(id) => {
                let h = self.get(id).await?;
                let ctx = Ctx::new(&self.model, &h.seam)?;
                Ok(baton_core::activity::log(&ctx, &h, &self.store.events(id).await?, now))
            }
            Command::Mine => Ok(self.plate(actor, now).await?.text()),
            Command::ReassignAll { from, to } => self.reassign_all(actor, &from, &to, surface, now, key, via).await,
            Command::Away(asked) => self.away(actor, asked, now, key).await,
            Command::Team(asked) => self.team(actor, asked.as_deref(), now).await,
            Command::Find(words) => self.find(actor, &words, now).await,
            Command::Stalls(q) => self.stalls(actor, &q, now, key, place).await,
            Command::New { seam, title, fields } => {
                let new = NewHandoff { seam: &seam, title: &title, fields: &fields };
                Ok(self.create(new, actor, surface, now, key, via).await?.reply)
            }
            command => {
                let id = command.target().ok_or(Rejection::NotAChange("command"))?;
                // Someone covering for a lead who is away may do what that lead may.
                let away = self.store.absences(&self.model, now).await?;
                let covering = away.covered_by(actor, now);
                let decided = self
                    .apply(id, key, |h| {
                        baton_core::decide_covering(&self.model, h, &command, actor, &covering, surface, now)
                            .map(|d| through_api(&self.model, actor, surface, via, now, d))
                    })
                    .await;
                let d = match (decided, key) {
                    // A copy of this request won the race while it was being decided: it is a replay,
                    // not a fresh command that no longer applies.
                    (Err(AppError::Rejected(_)), Some(key)) if self.store.processed(key).await? => {
                        return Err(AppError::Duplicate);
                    }
                    (decided, _) => decided?,
                };
                // The reviewer runs now, so the person hears its verdict, not that it is pending.
                let mut reply = match &d.review {
                    Some(reviewer) => self.review(id, reviewer, now).await?,
                    None => d.reply,
                };
                if let Command::Reassign { to, .. } = &command
                    && let Some(back) = away.through(&self.model, to, now)
                {
                    reply += &format!(" Note: {} is away through {back}.", self.model.name_of(to));
                }
                // Someone marked away who works is likely back, while their reminders still go to others.
                if let Some(back) = away.through(&self.model, actor, now) {
                    reply += &format!(
                        " You are marked away through {back} (your stall reminders go to others): `/away back` if you are back."
                    );
                }
                self.wake.after_command();
                Ok(reply)
            }
        }
    }

    /// Keeps what `person` wrote in a thread whose parent is `parent` (a message reference under a
    /// key starting `prefix`: a Slack recalibration thread, a handoff's Discord thread) with the
    /// handoff whose thread it is; `Ok(None)` when it is no handoff's. Acts once per `key`.
    #[allow(clippy::too_many_arguments)]
    pub async fn thread_reply(
        &self,
        prefix: &str,
        parent: &str,
        person: &str,
        text: &str,
        surface: Surface,
        now: DateTime<Utc>,
        key: &str,
    ) -> Result<Option<HandoffId>, AppError> {
        let Some(id) = self.store.handoff_by_ref(prefix, parent).await? else { return Ok(None) };
        let decided =
            self.apply(id, Some(key), |h| baton_core::discussed(&self.model, h, person, text, surface, now)).await;
        match decided {
            Ok(_) => Ok(Some(id)),
            Err(AppError::Rejected(_)) if self.store.processed(key).await? => Err(AppError::Duplicate),
            Err(e) => Err(e),
        }
    }

    /// Hands work off: `/handoff new` for a person already known to be configured and whose text
    /// is checked. Through the API (`via` names the client), the request key also records the
    /// handoff's number, so that a replay can be told which handoff it made
    /// ([`Store::created_by`]), and the client follows the handoff at its webhook.
    pub async fn create(
        &self,
        new: NewHandoff<'_>,
        actor: &str,
        surface: Surface,
        now: DateTime<Utc>,
        key: Option<&str>,
        via: Option<&str>,
    ) -> Result<Decision, AppError> {
        // Checked before it takes a number, so refusals leave no gaps in the numbering.
        let admitted = baton_core::admit(&self.model, new, actor, surface, now)?;
        let open_key = admitted.open_key(&self.model);
        let model = self.model.clone();
        let remember = via.is_some();
        let (actor, via) = (actor.to_string(), via.map(str::to_string));
        let build = move |id| {
            let mut d = admitted.clone().number(&model, id).ok()?;
            d.handoff.via = via.clone();
            Some(through_api(&model, &actor, surface, via.as_deref(), now, d))
        };
        let d = match self.store.create(key, remember, open_key, now, build).await {
            Err(StoreError::Taken(holder)) => {
                // A replay finds the handoff its first copy made holding the key.
                if let Some(key) = key
                    && self.store.processed(key).await?
                {
                    return Err(AppError::Duplicate);
                }
                return Err(self.already_open(holder).await);
            }
            made => made?,
        };
        self.wake.after_command();
        Ok(d)
    }

    /// The refusal of a handoff whose `one_open_per` values `holder` holds open, naming it.
    async fn already_open(&self, holder: HandoffId) -> AppError {
        match self.get(holder).await {
            Ok(h) => baton_core::already_open(&self.model, &h).into(),
            Err(e) => e,
        }
    }

    /// Queues a message once per request `key` (a reply to a platform event); `false` when the
    /// key was already used.
    pub async fn reply_once(
        &self,
        key: &str,
        intent: &baton_core::Intent,
        now: DateTime<Utc>,
    ) -> Result<bool, AppError> {
        let queued = self.store.enqueue_once(key, intent, now).await?;
        if queued {
            self.wake.delivery.notify_one();
        }
        Ok(queued)
    }

    /// A handoff, or a refusal naming it.
    pub async fn get(&self, id: HandoffId) -> Result<Handoff, AppError> {
        match self.store.load(id).await? {
            Some(s) => Ok(s.handoff),
            None => Err(Rejection::NoSuchHandoff(id).into()),
        }
    }

    /// Loads, decides and saves, deciding again on a lost race.
    async fn apply(
        &self,
        id: HandoffId,
        key: Option<&str>,
        decide: impl Fn(&Handoff) -> Result<Decision, Rejection>,
    ) -> Result<Decision, AppError> {
        for _ in 0..MAX_ATTEMPTS {
            let stored = self.store.load(id).await?.ok_or(Rejection::NoSuchHandoff(id))?;
            let d = decide(&stored.handoff)?;
            match self.store.save(&d, Some(stored.version), key).await {
                Ok(_) => return Ok(d),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::Taken(holder)) => return Err(self.already_open(holder).await),
                Err(e) => return Err(e.into()),
            }
        }
        Err(anyhow::anyhow!("H-{id} kept changing under {MAX_ATTEMPTS} attempts").into())
    }

    /// Calls the webhook reviewer a decision asked for and records its verdict; returns the
    /// verdict's reply.
    async fn review(&self, id: HandoffId, reviewer: &str, now: DateTime<Utc>) -> Result<String, AppError> {
        let h = self.get(id).await?;
        let verdict = self.webhooks.review(&self.model, &h, reviewer, now).await;
        let d = self.apply(id, None, |h| baton_core::record_verdict(&self.model, h, verdict.clone(), now)).await?;
        Ok(d.reply)
    }

    /// Runs stall checks on every handoff due at `now`, in claimed batches of `SWEEP_BATCH`;
    /// returns how many handoffs changed. Its cost follows the number due, not the number open.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<usize, AppError> {
        let mut changed = 0;
        let away = self.store.absences(&self.model, now).await?;
        loop {
            let swept = self
                .store
                .sweep_batch(now, SWEEP_BATCH, |h| baton_core::check_with(&self.model, h, now, &away))
                .await?;
            changed += swept.changed;
            metrics::counter!("baton_ladder_steps_fired_total").increment(swept.fired as u64);
            // A verdict that never came (the process stopped while waiting, or its save failed)
            // is asked for again; a failed call is a failing verdict, as at the first asking.
            for (id, reviewer) in &swept.reviews {
                tracing::warn!(handoff = id, "no verdict came from reviewer {reviewer}: asking again");
                if let Err(e) = self.review(*id, reviewer, now).await {
                    tracing::error!(handoff = id, "recording reviewer {reviewer}'s verdict failed: {e}");
                }
            }
            if swept.claimed < SWEEP_BATCH as usize {
                return Ok(changed);
            }
        }
    }

    /// `/away`: says whether the person is away, marks them back, or marks them away and tells the
    /// leads of what they own.
    async fn away(
        &self,
        actor: &str,
        asked: AwayCommand,
        now: DateTime<Utc>,
        key: Option<&str>,
    ) -> Result<String, AppError> {
        match asked {
            AwayCommand::Show => Ok(match self.store.absence(actor, now).await? {
                Some(Absence { until, reason, cover }) => format!(
                    "You are away through {}{}{}. `/away back` when you return.",
                    baton_core::away::last_day(&self.model, actor, until),
                    if reason.is_empty() { String::new() } else { format!(" ({reason})") },
                    cover.map(|c| format!("; {} covers for you as lead", self.model.name_of(&c))).unwrap_or_default()
                ),
                None => "You are not marked away. Going away? `/away until YYYY-MM-DD [reason]`.".into(),
            }),
            AwayCommand::Back => {
                let name = self.model.name_of(actor);
                let told = |cover: &str| {
                    let text = format!("{name} is back: you no longer cover for them as lead.");
                    Intent {
                        not_before: self.model.quiet_until(cover, baton_core::model::RiskTier::Reversible, now),
                        ..Intent::message(Recipient::Person(cover.to_string()), IntentKind::Notice, text)
                    }
                };
                let back = self.store.clear_absence(actor, now, told).await?;
                self.wake.delivery.notify_one();
                Ok(match back {
                    true => "Welcome back: stall reminders come to you again.".into(),
                    false => "You were not marked away.".into(),
                })
            }
            AwayCommand::Until { last, reason, cover } => {
                let mut owned = self.store.open_for(actor).await?;
                owned.retain(|h| h.owner.as_deref() == Some(actor));
                let away = self.store.absences(&self.model, now).await?;
                let going = Going { person: actor, last, reason: &reason, cover: cover.as_deref() };
                let leaving = baton_core::away::leave(&self.model, going, &owned, &away, now)?;
                let cover = cover.map(|c| c.trim_start_matches('@').to_string());
                let absence = Absence { until: leaving.until, reason: reason.trim().to_string(), cover };
                if !self.store.set_absence(key, actor, &absence, &leaving.intents, now).await? {
                    return Err(AppError::Duplicate);
                }
                self.wake.delivery.notify_one();
                Ok(leaving.reply)
            }
        }
    }

    /// `/handoff team`: the board of the function `asked` (else the actor's own), if they may see it.
    async fn team(&self, actor: &str, asked: Option<&str>, now: DateTime<Utc>) -> Result<String, AppError> {
        let away = self.store.absences(&self.model, now).await?;
        let f = baton_core::team::function_for(&self.model, actor, asked, &away, now)?;
        // The board orders each list itself (most urgent first).
        let received = self.store.unclosed_in_seams(&self.model.seams_into(&f.id)).await?;
        let sent = self.store.unclosed_in_seams(&self.model.seams_out_of(&f.id)).await?;
        Ok(baton_core::team::board(&self.model, f, &received, &sent, &away, now))
    }

    /// `/handoff find`: the handoffs on the seams the actor may see (those of their functions;
    /// every seam for architects) whose title or fields hold every word, newest first: the open
    /// ones, then the latest closed.
    async fn find(&self, actor: &str, words: &[String], now: DateTime<Utc>) -> Result<String, AppError> {
        let scope = baton_core::history::scope(&self.model, Viewer::Person(actor), &Default::default())?;
        let mut open = self.store.unclosed_in_seams(&scope.seams).await?;
        open.retain(|h| baton_core::team::matches(h, words));
        open.sort_by_key(|h| std::cmp::Reverse(h.id));
        let (closed, older) = self.store.closed_holding(&scope.seams, words, baton_core::team::SHOWN_CLOSED).await?;
        let away = self.store.absences(&self.model, now).await?;
        Ok(baton_core::team::found(&self.model, words, &open, &closed, older, &away, now))
    }

    /// `/handoff reassign-all`: gives every open handoff `from` owns to `to`, one handoff at a time,
    /// each as `/handoff reassign` would (so each is refused where the actor may not reassign it).
    /// Each records its own key (`key:H-n`): a replayed or retried request moves what is left and
    /// moves nothing twice. Through the API each move names its client and is told to the actor as
    /// any other command is (several at once reach them as one digest).
    #[allow(clippy::too_many_arguments)]
    async fn reassign_all(
        &self,
        actor: &str,
        from: &str,
        to: &str,
        surface: Surface,
        now: DateTime<Utc>,
        key: Option<&str>,
        via: Option<&str>,
    ) -> Result<String, AppError> {
        let (from_name, to_name) = (self.model.name_of(from), self.model.name_of(to));
        if from == to {
            return Err(Rejection::Unchanged(format!("{from_name} would give their handoffs to themselves")).into());
        }
        let mut owned = self.store.open_for(from).await?;
        owned.retain(|h| h.owner.as_deref() == Some(from));
        if owned.is_empty() {
            let who = match self.model.person(from) {
                Some(_) => from_name.to_string(),
                None => format!("`{from}`, who is not in the operating model,"),
            };
            return Err(Rejection::Unchanged(format!("{who} owns no open handoffs")).into());
        }
        let away = self.store.absences(&self.model, now).await?;
        let covering = away.covered_by(actor, now);
        let (mut moved, mut refused) = (Vec::new(), Vec::new());
        for h in &owned {
            let command = Command::Reassign { id: h.id, to: to.to_string() };
            let key = key.map(|k| format!("{k}:{}", h.label()));
            let decided = self
                .apply(h.id, key.as_deref(), |h| {
                    baton_core::decide_covering(&self.model, h, &command, actor, &covering, surface, now)
                        .map(|d| through_api(&self.model, actor, surface, via, now, d))
                })
                .await;
            match decided {
                Ok(_) | Err(AppError::Duplicate) => moved.push(h.label()),
                // A copy of this request that moved it first makes this one a replay, not a refusal.
                Err(AppError::Rejected(r)) => match &key {
                    Some(key) if self.store.processed(key).await? => moved.push(h.label()),
                    _ => refused.push((h.label(), r.to_string().replace(&h.label(), "it"))),
                },
                Err(e) => return Err(e),
            }
        }
        self.wake.after_command();
        // Handoffs refused for the same reason are named together.
        let mut reasons: Vec<(Vec<String>, String)> = Vec::new();
        for (label, reason) in refused {
            match reasons.iter_mut().find(|(_, r)| *r == reason) {
                Some((labels, _)) => labels.push(label),
                None => reasons.push((vec![label], reason)),
            }
        }
        let refused: Vec<String> =
            reasons.into_iter().map(|(labels, r)| format!("{}: {r}", labels.join(", "))).collect();
        if moved.is_empty() {
            let why = format!("none of {from_name}'s handoffs moved ({})", refused.join("; "));
            return Err(Rejection::Unchanged(why).into());
        }
        let (what, waits) = match moved.len() {
            1 => ("the handoff".to_string(), "it waits"),
            n => (format!("the {n} handoffs"), "each waits"),
        };
        let mut reply = format!(
            "Gave {to_name} {what} {from_name} owned: {}; {waits} for {to_name} to accept it.",
            moved.join(", ")
        );
        if let Some(back) = away.through(&self.model, to, now) {
            reply += &format!(" Note: {to_name} is away through {back}.");
        }
        if !refused.is_empty() {
            reply += &format!(" Not moved: {}.", refused.join("; "));
        }
        Ok(reply)
    }

    /// What is on a person's plate: handoffs they own or requested, those in their function's queue,
    /// those waiting for their approval, and (for a lead) those owned by people away.
    pub async fn plate(&self, actor: &str, now: DateTime<Utc>) -> Result<Plate, AppError> {
        let own = self.store.open_for(actor).await?;
        let seams: Vec<String> = self
            .model
            .seams
            .values()
            .filter(|s| {
                s.approvers.iter().any(|a| a == actor)
                    || self.model.functions.get(&s.to).is_some_and(|f| f.has_member(actor))
            })
            .map(|s| s.id.clone())
            .collect();
        let waiting = self.store.waiting_in_seams(&seams).await?;
        let away = self.store.absences(&self.model, now).await?;
        // For a lead (or cover): what is under way in the functions they lead.
        let seams: Vec<String> =
            baton_core::plate::led(&self.model, actor, &away, now).flat_map(|f| self.model.seams_into(&f.id)).collect();
        let led = if seams.is_empty() { Vec::new() } else { self.store.open_in_seams(&seams).await? };
        let watched = self.store.watched_by(actor).await?;
        let loaded =
            baton_core::plate::Loaded { own: &own, waiting: &waiting, led: &led, watched: &watched, away: &away };
        Ok(baton_core::plate::build(&self.model, actor, &loaded, now))
    }

    /// Stall history over the `window` before `now`, and what is stalled now.
    /// Answers `/stalls`: the report, the health report, or (when asked in a channel, `place`)
    /// the chart, queued for that channel once per request `key`.
    pub async fn stalls(
        &self,
        actor: &str,
        q: &StallsQuery,
        now: DateTime<Utc>,
        key: Option<&str>,
        place: Option<Recipient>,
    ) -> Result<String, AppError> {
        let viewer = Viewer::Person(actor);
        match q.view {
            View::Summary => Ok(report::summary(&self.store, &self.model, viewer, &q.filter, now).await?.text()),
            View::Health => Ok(report::health(&self.store, &self.model, viewer, &q.filter, now, None).await?.text()),
            View::Chart => {
                let Some(place) = place else {
                    return Err(Rejection::History(
                        "charts are posted to the Slack or Discord channel you ask in; the console writes them to a file"
                            .into(),
                    )
                    .into());
                };
                let Some(png) = self.chart_png(viewer, &q.filter, now).await? else {
                    return Ok(nothing_to_chart(&q.filter));
                };
                let intent = chart_message(&q.filter, &png, place);
                let key = key.map_or_else(|| format!("chart:{}", now.timestamp_millis()), |k| format!("{k}:chart"));
                self.reply_once(&key, &intent, now).await?;
                Ok(format!("Drawing the chart of time to unblock ({}); it will be posted here.", q.filter.describe()))
            }
        }
    }

    /// The weekly time-to-unblock chart for `filter` as a PNG; `None` when no stall in it was
    /// unblocked (an empty chart says nothing).
    pub async fn chart_png(
        &self,
        viewer: Viewer<'_>,
        filter: &baton_core::history::Filter,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>, AppError> {
        let series = report::series(&self.store, &self.model, viewer, filter, now).await?;
        if series.iter().all(|s| s.weeks.is_empty()) {
            return Ok(None);
        }
        Ok(Some(report::png(&report::chart_title(filter), &series, filter.from(now), now)?))
    }
}

/// A message to `to` carrying the chart `png` drew for `filter`.
pub fn chart_message(filter: &baton_core::history::Filter, png: &[u8], to: Recipient) -> Intent {
    let title = report::chart_title(filter);
    let image = Image { name: "stalls.png".into(), title: title.clone(), png_base64: BASE64.encode(png) };
    Intent { image: Some(image), ..Intent::message(to, IntentKind::Digest, title) }
}

/// The answer to a chart with nothing to draw.
pub fn nothing_to_chart(filter: &baton_core::history::Filter) -> String {
    format!(
        "Nothing to chart ({}): no stall was unblocked in that window. `/stalls` gives the figures.",
        filter.describe()
    )
}

/// A change made through the API names its client (`via`) in its events, and is told to the
/// person it was made for (they did not see the reply), in the same transaction; an agent, which
/// made the call itself, is not told.
fn through_api(
    model: &OperatingModel,
    actor: &str,
    surface: Surface,
    via: Option<&str>,
    now: DateTime<Utc>,
    mut d: Decision,
) -> Decision {
    if surface != Surface::Api {
        return d;
    }
    for e in d.events.iter_mut().filter(|e| e.surface == Surface::Api) {
        e.via = via.map(str::to_string);
    }
    if model.person(actor).is_some_and(|p| !p.is_agent()) {
        let text = format!("Done in your name through Baton's API: {}", d.reply);
        d.intents.push(Intent {
            handoff: Some(d.handoff.id),
            not_before: model.quiet_until(actor, d.handoff.tier, now),
            ..Intent::message(Recipient::Person(actor.to_string()), IntentKind::Notice, text)
        });
    }
    d
}

/// The text a chat platform answers with for a command's outcome: the reply, the refusal, or a
/// short apology (the cause goes to the log).
pub fn outcome(result: Result<String, AppError>) -> String {
    match result {
        Ok(reply) => reply,
        Err(AppError::Rejected(r)) => format!("✗ {r}"),
        Err(AppError::Duplicate) => "This request was already handled.".into(),
        Err(AppError::Internal(e)) => {
            tracing::error!("command failed: {e:#}");
            "Something went wrong on Baton's side; it has been logged. Please try again in a minute.".into()
        }
    }
}

/// Usage of one command, or all of them.
pub fn help(model: &OperatingModel, actor: Option<&str>, topic: Option<&str>) -> String {
    match topic.and_then(|t| USAGE.iter().find(|(name, _)| *name == t.trim_start_matches('/'))) {
        // How to hand off is mostly which seams, and what each needs.
        Some((name, usage)) if *name == "new" => {
            format!("usage: {usage}\n{}", baton_core::contract::seams_help(model, actor))
        }
        Some((_, usage)) => format!("usage: {usage}"),
        None => {
            let lines: Vec<&str> = USAGE.iter().map(|(_, u)| *u).collect();
            format!("Baton commands:\n{}", lines.join("\n"))
        }
    }
}
