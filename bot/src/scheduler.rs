//! The scheduler inside `baton serve`: sweeps due handoffs and runs periodic jobs.
//!
//! It wakes at the earliest pending check or job instant, when a command in this process asks
//! (a new handoff may be due sooner), and after a short poll at the latest, because other
//! replicas change the database too. Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL, so any
//! number of replicas sweep together without a ladder step firing twice.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{Notify, watch};

use crate::app::App;
use crate::jobs::JobClock;

/// Runs until `shutdown` turns true. The first pass is the start-up catch-up: every check missed
/// during downtime is due at once, and the core sends only the highest due ladder step of each.
pub async fn run(
    app: App,
    wake: Arc<Notify>,
    delivered: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
    poll: std::time::Duration,
) {
    let mut jobs = JobClock::default();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now = Utc::now();
        let span = tracing::info_span!("sweep", at = %now);
        let result = async {
            let changed = app.sweep(now).await?;
            let ran = jobs.tick(&app, now).await?;
            anyhow::Ok(changed + ran)
        };
        match tracing::Instrument::instrument(result, span).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(changed = n, "sweep queued messages");
                delivered.notify_one();
            }
            Err(e) => tracing::error!("sweep failed (will retry): {e:#}"),
        }
        let next = [app.store.earliest_check().await.ok().flatten(), jobs.next_due(&app, Utc::now())]
            .into_iter()
            .flatten()
            .min();
        let wait = next.map_or(poll, |at| (at - Utc::now()).to_std().unwrap_or_default().min(poll));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// How often a replica forgets what `[retention]` no longer keeps.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Prunes the store at start and then every [`PRUNE_EVERY`] until `shutdown` turns true (see
/// `Store::prune`; replicas may prune together).
pub async fn prune(app: App, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        match app.store.prune(&app.model.retention, Utc::now()).await {
            Ok(pruned) if pruned.is_empty() => {}
            Ok(pruned) => {
                for (what, n) in [
                    ("messages", pruned.messages),
                    ("request_keys", pruned.request_keys),
                    ("job_runs", pruned.job_runs),
                ] {
                    metrics::counter!("baton_pruned_total", "what" => what).increment(n);
                }
                tracing::info!(
                    messages = pruned.messages,
                    request_keys = pruned.request_keys,
                    job_runs = pruned.job_runs,
                    "forgot what the retention policy no longer keeps"
                );
            }
            Err(e) => tracing::error!("pruning failed (will retry): {e:#}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}
