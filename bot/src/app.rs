//! The service: turns a person's command into a persisted decision, and runs stall sweeps.
//!
//! Adapters (console, Slack, Discord) call [`App::handle`] with a verified actor; the scheduler calls
//! [`App::sweep`]. Both load the handoff, ask the core, and save the decision in one transaction,
//! reloading and deciding again when another command won the race.

use std::sync::Arc;

use baton_core::command::USAGE;
use baton_core::handoff::ReviewRequest;
use baton_core::{
    Command, Ctx, Decision, Handoff, HandoffId, NewHandoff, OperatingModel, Rejection, Surface, render, review,
};
use chrono::{DateTime, Duration, Utc};
use tokio::sync::Notify;

use crate::reviewer::Webhooks;
use crate::store::{Store, StoreError};

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
        let (webhooks, missing) = Webhooks::from_env(&model);
        for var in missing {
            tracing::warn!("{var} is not set: its webhook reviewer will fail every review");
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
        if self.model.person(actor).is_none() {
            return Err(Rejection::UnknownActor.into());
        }
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
            Command::Help(topic) => Ok(help(topic.as_deref())),
            Command::Show(id) => {
                let h = self.get(id).await?;
                let ctx = Ctx::new(&self.model, &h.seam)?;
                Ok(render::card(&ctx, &h, now))
            }
            Command::Mine => self.mine(actor).await,
            Command::Stalls => Ok(self.stall_report(now, Duration::days(90)).await?),
            Command::New { seam, title, fields } => {
                let new = NewHandoff { seam: &seam, title: &title, fields: &fields };
                // Validate before taking a number, so refusals leave no gaps in the numbering.
                baton_core::create(&self.model, 0, new, actor, surface, now)?;
                let d = self
                    .store
                    .create(key, now, |id| baton_core::create(&self.model, id, new, actor, surface, now).ok())
                    .await?;
                self.wake.after_command();
                Ok(d.reply)
            }
            command => {
                let id = command.target().ok_or(Rejection::NotAChange("command"))?;
                let decided =
                    self.apply(id, key, |h| baton_core::decide(&self.model, h, &command, actor, surface, now)).await;
                let d = match (decided, key) {
                    // A copy of this request won the race while it was being decided: it is a replay,
                    // not a fresh command that no longer applies.
                    (Err(AppError::Rejected(_)), Some(key)) if self.store.processed(key).await? => {
                        return Err(AppError::Duplicate);
                    }
                    (decided, _) => decided?,
                };
                if let Some(req) = d.review.clone() {
                    self.review(id, req, now).await?;
                }
                self.wake.after_command();
                Ok(d.reply)
            }
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
                Err(e) => return Err(e.into()),
            }
        }
        Err(anyhow::anyhow!("H-{id} kept changing under {MAX_ATTEMPTS} attempts").into())
    }

    /// Runs the automated reviewer a decision asked for and records its verdict.
    async fn review(&self, id: HandoffId, req: ReviewRequest, now: DateTime<Utc>) -> Result<(), AppError> {
        let h = self.get(id).await?;
        let verdict = match &req {
            ReviewRequest::Rules(reviewer) => review::rules(&self.model, &h, reviewer.as_deref(), now),
            ReviewRequest::Webhook(reviewer) => self.webhooks.review(&self.model, &h, reviewer, now).await,
        };
        self.apply(id, None, |h| baton_core::record_verdict(&self.model, h, verdict.clone(), now)).await?;
        Ok(())
    }

    /// Runs stall checks on every handoff due at `now`, in claimed batches of `SWEEP_BATCH`;
    /// returns how many handoffs changed. Its cost follows the number due, not the number open.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<usize, AppError> {
        let mut changed = 0;
        loop {
            let (claimed, n, fired) =
                self.store.sweep_batch(now, SWEEP_BATCH, |h| baton_core::check(&self.model, h, now)).await?;
            changed += n;
            metrics::counter!("baton_ladder_steps_fired_total").increment(fired as u64);
            if claimed < SWEEP_BATCH as usize {
                return Ok(changed);
            }
        }
    }

    async fn mine(&self, actor: &str) -> Result<String, AppError> {
        let list = self.store.open_for(actor).await?;
        if list.is_empty() {
            return Ok("You own or requested no open handoffs.".into());
        }
        let lines: Vec<String> = list
            .iter()
            .map(|h| {
                let role = if h.owner.as_deref() == Some(actor) { "owner" } else { "requester" };
                let stalled =
                    h.stall.as_ref().map(|s| format!(" · STALLED: {}", s.kind.describe())).unwrap_or_default();
                let due = Ctx::new(&self.model, &h.seam).map(|c| render::due_line(&c, h)).unwrap_or_default();
                format!("{} · {} · {} · you are {role}{stalled} {due}", h.label(), h.title, h.state)
            })
            .collect();
        Ok(lines.join("\n"))
    }

    /// Stall history over the `window` before `now`, and what is stalled now.
    pub async fn stall_report(&self, now: DateTime<Utc>, window: Duration) -> Result<String, StoreError> {
        let episodes = self.store.episodes_since(now - window).await?;
        let stalled = self.store.stalled().await?;
        let mut out = vec![format!("Stall history, last {} days ({} episodes):", window.num_days(), episodes.len())];
        let mut seams: Vec<&str> = episodes.iter().map(|e| e.seam.as_str()).collect();
        seams.sort_unstable();
        seams.dedup();
        for seam in seams {
            let mine: Vec<_> = episodes.iter().filter(|e| e.seam == seam).collect();
            let mut unblock: Vec<i64> =
                mine.iter().filter_map(|e| e.closed_at.map(|c| (c - e.opened_at).num_seconds())).collect();
            unblock.sort_unstable();
            let pct = |p: f64| percentile(&unblock, p).map_or("-".into(), |s| render::duration(Duration::seconds(s)));
            out.push(format!(
                "• {seam}: {} opened, {} closed · time to unblock p50 {} · p90 {}",
                mine.len(),
                unblock.len(),
                pct(0.5),
                pct(0.9)
            ));
        }
        if stalled.is_empty() {
            out.push("Nothing is stalled right now.".into());
        } else {
            out.push("Stalled now:".into());
            for h in &stalled {
                if let Some(s) = &h.stall {
                    out.push(format!("• {} · {} · {} · {}", h.label(), h.seam, h.title, s.kind.describe()));
                }
            }
        }
        Ok(out.join("\n"))
    }
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

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Usage of one command, or all of them.
pub fn help(topic: Option<&str>) -> String {
    match topic.and_then(|t| USAGE.iter().find(|(name, _)| *name == t.trim_start_matches('/'))) {
        Some((_, usage)) => format!("usage: {usage}"),
        None => {
            let lines: Vec<&str> = USAGE.iter().map(|(_, u)| *u).collect();
            format!("Baton commands:\n{}", lines.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
        assert_eq!(super::percentile(&v, 0.5), Some(50));
        assert_eq!(super::percentile(&v, 0.9), Some(90));
        assert_eq!(super::percentile(&[7], 0.9), Some(7));
        assert_eq!(super::percentile(&[], 0.5), None);
    }
}
