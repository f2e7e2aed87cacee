//! Calls webhook reviewers: POSTs the handoff as JSON, reads `{ "pass": bool, "reasons": [...] }`.
//!
//! URLs come from the environment variables the operating model names (`url_env`), read once at
//! start. A reviewer that cannot be reached, times out or answers nonsense yields a failing verdict
//! whose reason says so, so the owner hears about it at once and can mark the work done again.

use std::collections::BTreeMap;

use baton_core::model::ReviewerKind;
use baton_core::review::{WebhookRequest, WebhookVerdict};
use baton_core::{Handoff, OperatingModel, Verdict};
use chrono::{DateTime, Utc};

/// Webhook reviewers' URLs and the HTTP client that calls them.
#[derive(Clone, Debug, Default)]
pub struct Webhooks {
    /// Reviewer id to URL.
    pub urls: BTreeMap<String, String>,
    client: reqwest::Client,
}

impl Webhooks {
    /// Reads each webhook reviewer's URL from the variable it names; also returns what is wrong
    /// with the others (a variable not set, or holding no http(s) address).
    pub fn from_env(model: &OperatingModel) -> (Webhooks, Vec<String>) {
        Webhooks::from_vars(model, |name| std::env::var(name).ok())
    }

    /// As [`Webhooks::from_env`], with the variables `var` finds.
    pub fn from_vars(model: &OperatingModel, var: impl Fn(&str) -> Option<String>) -> (Webhooks, Vec<String>) {
        let mut urls = BTreeMap::new();
        let mut problems = Vec::new();
        for r in model.reviewers.values() {
            if let ReviewerKind::Webhook { url_env, .. } = &r.kind {
                match var(url_env) {
                    Some(url) if crate::settings::is_http_address(&url) => {
                        urls.insert(r.id.clone(), url);
                    }
                    Some(url) => problems.push(format!("{url_env} holds `{url}`, which is no http(s) address")),
                    None => problems.push(format!("{url_env} is not set")),
                }
            }
        }
        (Webhooks::with_urls(urls), problems)
    }

    /// Webhooks with the given URLs.
    pub fn with_urls(urls: BTreeMap<String, String>) -> Webhooks {
        Webhooks { urls, client: reqwest::Client::new() }
    }

    /// Runs webhook reviewer `id` on `h`.
    pub async fn review(&self, model: &OperatingModel, h: &Handoff, id: &str, now: DateTime<Utc>) -> Verdict {
        let (version, outcome) = match model.reviewers.get(id) {
            Some(r) => (r.version.clone(), self.request(r, h).await),
            None => (String::new(), Err(format!("reviewer `{id}` is not configured"))),
        };
        match outcome {
            Ok(v) => Verdict { reviewer: id.to_string(), version, pass: v.pass, reasons: v.reasons, at: now },
            Err(problem) => {
                tracing::warn!(reviewer = id, handoff = h.id, problem, "webhook reviewer failed");
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

    async fn request(&self, r: &baton_core::model::Reviewer, h: &Handoff) -> Result<WebhookVerdict, String> {
        let ReviewerKind::Webhook { url_env, timeout } = &r.kind else {
            return Err("not a webhook reviewer".into());
        };
        let url = self.urls.get(&r.id).ok_or_else(|| format!("environment variable {url_env} is not set"))?;
        let body = WebhookRequest { reviewer: &r.id, version: &r.version, handoff: h };
        let response = self
            .client
            .post(url)
            .timeout(timeout.to_std().unwrap_or(std::time::Duration::from_secs(10)))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("it answered HTTP {status}"));
        }
        response.json::<WebhookVerdict>().await.map_err(|e| format!("unreadable verdict: {e}"))
    }
}
