//! `/metrics` in Prometheus' text format: request latency histograms and counters recorded as
//! things happen, and gauges read from the database at each scrape (handoffs by state, open
//! stalls by seam, outbox depth and oldest age), so every replica reports the same totals.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::store::Store;

/// Request latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The process's recorder (one per process: metrics are process-wide).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder =
            PrometheusBuilder::new().set_buckets(&LATENCY_BUCKETS).unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed");
        }
        handle
    })
}

/// Folds the latency samples recorded since the last pass into the histograms, every five
/// seconds until `stop`. The recorder keeps each sample until then (or until a scrape renders
/// them): without this, a replica nobody scrapes would hold 8 bytes for every request it served.
pub async fn upkeep(mut stop: tokio::sync::watch::Receiver<bool>) {
    let handle = handle();
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    while !*stop.borrow() {
        tokio::select! {
            _ = every.tick() => handle.run_upkeep(),
            changed = stop.changed() => if changed.is_err() { return },
        }
    }
}

/// Renders every metric, refreshing the database gauges first.
pub async fn render(store: &Store) -> anyhow::Result<String> {
    let handle = handle();
    let now = Utc::now();
    let snapshot = store.metrics_snapshot(now).await?;
    for state in ["open", "accepted", "reassigned", "in_progress", "awaiting_gate", "done", "returned", "cancelled"] {
        let n = snapshot.by_state.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
        metrics::gauge!("baton_handoffs", "state" => state).set(n as f64);
    }
    for (seam, n) in &snapshot.stalls_by_seam {
        metrics::gauge!("baton_open_stalls", "seam" => seam.clone()).set(*n as f64);
    }
    metrics::gauge!("baton_outbox_depth").set(snapshot.outbox_depth as f64);
    let age = |since: Option<chrono::DateTime<Utc>>| {
        since.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
    };
    metrics::gauge!("baton_outbox_oldest_age_seconds").set(age(snapshot.oldest_pending));
    metrics::gauge!("baton_outbox_overdue_seconds").set(age(snapshot.overdue_since));
    metrics::gauge!("baton_outbox_dead_letters").set(snapshot.dead as f64);
    Ok(handle.render())
}

/// Records each request's latency by route and status.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("baton_http_request_duration_seconds", "route" => route, "status" => status)
        .record(started.elapsed().as_secs_f64());
    response
}
