//! Automated review at the gate of reversible work.
//!
//! Rules reviewers are evaluated here; webhook reviewers are called by the bot, which posts
//! [`WebhookRequest`] and reads a [`WebhookVerdict`]. Every verdict carries the configuration version
//! that gave it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::handoff::{Handoff, Verdict};
use crate::model::{OperatingModel, ReviewerKind};

/// Id and version recorded for the built-in contract check.
pub const BUILTIN: (&str, &str) = ("builtin", "1");

/// Evaluates the built-in contract check (`reviewer = None`) or a rules reviewer.
pub fn rules(model: &OperatingModel, h: &Handoff, reviewer: Option<&str>, now: DateTime<Utc>) -> Verdict {
    let mut reasons = Vec::new();
    let missing = |field: &str| h.fields.get(field).is_none_or(|v| v.trim().is_empty());
    if let Some(seam) = model.seams.get(&h.seam) {
        for f in seam.contract.iter().filter(|f| f.required && missing(&f.name)) {
            reasons.push(format!("`{}` is required", f.name));
        }
    }
    let (id, version) = match reviewer.and_then(|r| model.reviewers.get(r)) {
        Some(r) => {
            if let ReviewerKind::Rules { required, patterns } = &r.kind {
                for f in required.iter().filter(|f| missing(f)) {
                    reasons.push(format!("`{f}` is required by reviewer {}", r.id));
                }
                for p in patterns {
                    if let Some(v) = h.fields.get(&p.field)
                        && !p.pattern.is_match(v)
                    {
                        reasons.push(p.message.clone());
                    }
                }
            }
            (r.id.clone(), r.version.clone())
        }
        None => (BUILTIN.0.to_string(), BUILTIN.1.to_string()),
    };
    Verdict { reviewer: id, version, pass: reasons.is_empty(), reasons, at: now }
}

/// What a webhook reviewer receives.
#[derive(Debug, Serialize)]
pub struct WebhookRequest<'a> {
    /// Reviewer id, so one endpoint can serve several.
    pub reviewer: &'a str,
    /// Reviewer configuration version.
    pub version: &'a str,
    /// The handoff under review.
    pub handoff: &'a Handoff,
}

/// What a webhook reviewer answers.
#[derive(Debug, Deserialize)]
pub struct WebhookVerdict {
    /// Whether the work passes.
    pub pass: bool,
    /// Why not (or notes).
    #[serde(default)]
    pub reasons: Vec<String>,
}
