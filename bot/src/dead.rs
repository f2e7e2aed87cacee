//! `baton outbox`: the dead letters an operator reads, and returns to the queue once the cause is
//! fixed (Baton invited to the channel, a person's account corrected, a token renewed).

use baton_core::IntentKind;
use chrono::{DateTime, Utc};

use crate::store::{DeadLetter, Store, StoreError, recipient_key};

/// Dead letters listed at most by default.
pub const LIMIT: i64 = 50;

/// The dead letters, newest first: when, about which handoff, to whom, what kind of message, after
/// how many attempts, why, and how the message began.
pub async fn list(store: &Store, limit: i64) -> Result<String, StoreError> {
    let letters = store.dead_letters(limit).await?;
    if letters.is_empty() {
        return Ok("No dead letters: every message was delivered or is still on its way.\n".into());
    }
    let mut out = format!("{} dead letter(s), newest first:\n", letters.len());
    for l in &letters {
        out.push_str(&describe(l));
    }
    out.push_str("Return them to the queue with `baton outbox retry <id>...` or `--all` once the cause is fixed.\n");
    Ok(out)
}

fn describe(l: &DeadLetter) -> String {
    let about = l.intent.handoff.map_or_else(|| "no handoff".to_string(), |h| format!("H-{h}"));
    let first = l.intent.text.lines().next().unwrap_or_default();
    format!(
        "#{}  {}  {about} → {}  {}  {} attempt(s)\n    why: {}\n    it began: {first}\n",
        l.id,
        l.dead_at.format("%Y-%m-%d %H:%M UTC"),
        recipient_key(&l.intent.to),
        l.intent.kind.name(),
        l.attempts,
        l.error
    )
}

/// Which dead letters to return to the queue.
#[derive(Clone, Debug)]
pub enum Which {
    /// Every one (up to a generous limit).
    All,
    /// These outbox ids.
    Ids(Vec<i64>),
}

/// Returns dead letters to the queue, due now, except a card a later card of its handoff replaces
/// (sent now, it would show an older state). Says what it returned, what it left and why.
pub async fn retry(store: &Store, which: Which, now: DateTime<Utc>) -> Result<String, StoreError> {
    let (letters, unknown) = match which {
        Which::All => (store.dead_letters(10_000).await?, Vec::new()),
        Which::Ids(ids) => {
            let letters = store.dead_letters_among(&ids).await?;
            let unknown: Vec<i64> = ids.into_iter().filter(|id| !letters.iter().any(|l| l.id == *id)).collect();
            (letters, unknown)
        }
    };
    let cards: Vec<(i64, &baton_core::Intent)> =
        letters.iter().filter(|l| l.intent.kind == IntentKind::Card).map(|l| (l.id, &l.intent)).collect();
    let replaced = store.followed_by(&cards, &IntentKind::Card, false).await?;
    let back: Vec<i64> = letters.iter().map(|l| l.id).filter(|id| !replaced.contains(id)).collect();
    let back = store.requeue(&back, now).await?;
    let ids = |ids: &[i64]| ids.iter().map(|id| format!("#{id}")).collect::<Vec<_>>().join(", ");
    let mut out = match back.len() {
        0 => "Returned nothing to the queue.\n".to_string(),
        n => format!(
            "Returned {n} message(s) to the queue: {}. A running `baton serve` delivers them within its poll \
             interval (each is first looked for on its platform, in case an attempt that timed out had posted it).\n",
            ids(&back)
        ),
    };
    if !replaced.is_empty() {
        out.push_str(&format!("Left {}: a later card of the same handoff replaces each.\n", ids(&replaced)));
    }
    if !unknown.is_empty() {
        out.push_str(&format!("Not dead letters (delivered, waiting, or no such message): {}.\n", ids(&unknown)));
    }
    Ok(out)
}
