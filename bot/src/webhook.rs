//! Messages for people with no chat account, delivered to the API client that acts for them.
//!
//! An agent has no Slack or Discord account; it works through the HTTP API ([`crate::api`]). When
//! its client names a `webhook_env`, the messages Baton would send the agent (its reminders, what
//! it is told as it owns work) are POSTed there as JSON, signed as Slack signs its requests (an
//! HMAC-SHA256 of `v0:{timestamp}:{body}` keyed with the client's API token, in
//! `X-Baton-Signature`, the timestamp in `X-Baton-Request-Timestamp`), with the outbox row's id in
//! `X-Baton-Delivery`, the same for every attempt, so the receiver can drop a repeat (a card
//! redrawn as the handoff moves comes again, saying which delivery it `replaces`). They go
//! through the outbox like any message: a 2xx delivers, a 429, a 5xx or no answer is tried again
//! with backoff, another 4xx dead-letters it (and the seam's lead is told).

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use baton_core::{Intent, OperatingModel};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::deliver::SendError;

/// How long a webhook may take to answer.
const TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// The API clients' webhooks, by client name.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    hooks: BTreeMap<String, Hook>,
    http: reqwest::Client,
}

#[derive(Clone, Debug)]
struct Hook {
    url: String,
    /// The client's API token, which signs what is sent.
    token: String,
}

impl Hooks {
    /// The webhooks of `model`'s API clients whose URL and token `var` finds (the environment, in
    /// `baton serve`); one whose URL is set without its token is left out, with a warning. A URL
    /// that is not an http(s) address is refused, naming its variable.
    pub fn new(model: &OperatingModel, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Hooks> {
        let mut hooks = BTreeMap::new();
        for client in model.api.values() {
            let Some((name, url)) = client.webhook_env.as_deref().and_then(|n| Some((n, var(n)?))) else { continue };
            if !crate::settings::is_http_address(&url) {
                anyhow::bail!(
                    "{name} (API client `{}`'s webhook) must be an http(s) address, not `{url}`",
                    client.name
                );
            }
            match var(&client.token_env).as_deref().and_then(|v| crate::api::tokens(v).first().map(|t| t.to_string())) {
                Some(token) => {
                    hooks.insert(client.name.clone(), Hook { url, token });
                }
                None => tracing::warn!(
                    "{} is not set: API client `{}`'s webhook is off (its token signs what is sent)",
                    client.token_env,
                    client.name
                ),
            }
        }
        Ok(Hooks { hooks, http: reqwest::Client::builder().timeout(TIMEOUT).build().unwrap_or_default() })
    }

    /// Whether `client`'s webhook is set (its URL and token).
    pub fn has(&self, client: &str) -> bool {
        self.hooks.contains_key(client)
    }

    /// The client whose webhook receives `person`'s messages: the first (by name) that acts for
    /// them and has one.
    pub fn client_for<'m>(&self, model: &'m OperatingModel, person: &str) -> Option<&'m str> {
        model
            .api
            .values()
            .find(|c| c.may_act_as(model, person) && self.hooks.contains_key(&c.name))
            .map(|c| c.name.as_str())
    }

    /// Sends `intent`, for `person` (`None`: for the client itself, following a handoff made
    /// through it), to `client`'s webhook; `delivery` names it across attempts.
    /// A card sent before under `existing` (an earlier delivery's reference) is replaced: the new
    /// one says which delivery it replaces.
    pub async fn send(
        &self,
        client: &str,
        person: Option<&str>,
        intent: &Intent,
        delivery: i64,
        existing: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<String, SendError> {
        let hook = self
            .hooks
            .get(client)
            .ok_or_else(|| SendError::Permanent(format!("API client `{client}` has no webhook")))?;
        let body = json!({
            "delivery": delivery,
            "to": person,
            "handoff": intent.handoff.map(|h| format!("H-{h}")),
            "kind": intent.kind,
            "text": intent.text,
            "actions": intent.actions,
            "replaces": existing.and_then(|r| r.rsplit(':').next()?.parse::<i64>().ok()),
            "sent_at": now,
        })
        .to_string();
        let timestamp = now.timestamp();
        let signature = crate::slack::verify::sign(&hook.token, timestamp, &body);
        let sent = self
            .http
            .post(&hook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("x-baton-signature", signature)
            .header("x-baton-request-timestamp", timestamp)
            .header("x-baton-delivery", delivery)
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => return Err(SendError::retry(format!("API client `{client}`'s webhook did not answer: {e}"))),
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(format!("webhook:{client}:{delivery}"));
        }
        let after = crate::slack::api::retry_after(resp.headers());
        let text: String = resp.text().await.unwrap_or_default().chars().take(200).collect();
        let reason = format!("API client `{client}`'s webhook answered {status}: {text}");
        if status.as_u16() == 429 {
            // The receiver's own rate limit: it waits, however long, as for a platform's.
            Err(SendError::RateLimited { reason, after: after.unwrap_or_else(|| chrono::Duration::seconds(30)) })
        } else if status.is_server_error() {
            Err(SendError::Retry { reason, after })
        } else {
            Err(SendError::Permanent(reason))
        }
    }
}
