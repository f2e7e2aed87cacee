//! Calls webhook reviewers: POSTs the handoff as JSON, reads `{ "pass": bool, "reasons": [...] }`.
//!
//! A reviewer that cannot be reached, times out or answers nonsense yields a failing verdict whose
//! reason says so, so the owner hears about it at once and can mark the work done again.

use baton_core::model::ReviewerKind;
use baton_core::review::{WebhookRequest, WebhookVerdict};
use baton_core::{Handoff, OperatingModel, Verdict};
use chrono::{DateTime, Utc};

/// Runs webhook reviewer `id` on `h`.
pub async fn call_webhook(
    model: &OperatingModel,
    h: &Handoff,
    id: &str,
    now: DateTime<Utc>,
) -> Verdict {
    let (version, outcome) = match model.reviewers.get(id) {
        Some(r) => (r.version.clone(), request(r, h).await),
        None => (
            String::new(),
            Err(format!("reviewer `{id}` is not configured")),
        ),
    };
    match outcome {
        Ok(v) => Verdict {
            reviewer: id.to_string(),
            version,
            pass: v.pass,
            reasons: v.reasons,
            at: now,
        },
        Err(problem) => {
            tracing::warn!(
                reviewer = id,
                handoff = h.id,
                problem,
                "webhook reviewer failed"
            );
            Verdict {
                reviewer: id.to_string(),
                version,
                pass: false,
                reasons: vec![format!(
                    "reviewer {id} could not review it ({problem}); mark it done again to retry"
                )],
                at: now,
            }
        }
    }
}

async fn request(r: &baton_core::model::Reviewer, h: &Handoff) -> Result<WebhookVerdict, String> {
    let ReviewerKind::Webhook { url_env, timeout } = &r.kind else {
        return Err("not a webhook reviewer".into());
    };
    let url =
        std::env::var(url_env).map_err(|_| format!("environment variable {url_env} is not set"))?;
    let client = reqwest::Client::builder()
        .timeout(
            timeout
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(10)),
        )
        .build()
        .map_err(|e| e.to_string())?;
    let body = WebhookRequest {
        reviewer: &r.id,
        version: &r.version,
        handoff: h,
    };
    let response = client
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("it answered HTTP {status}"));
    }
    response
        .json::<WebhookVerdict>()
        .await
        .map_err(|e| format!("unreadable verdict: {e}"))
}
