//! `/handoff log H-3`: what happened to a handoff, from its audit trail, in words: who did what
//! and when, in the receiving function's zone, newest first.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::decide::Ctx;
use crate::handoff::{BATON, Change, Event, Handoff, Surface};
use crate::render;

/// Events shown; earlier ones are counted.
pub const SHOWN: usize = 40;

/// `arr: 150000 · kickoff removed · tech_contact: Eli Ek`.
pub(crate) fn fields(ctx: &Ctx<'_>, fields: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| match v.is_empty() {
            true => format!("{k} removed"),
            false => format!("{k}: {}", ctx.shown(k, v)),
        })
        .collect();
    parts.join(" · ")
}

/// ` (arr: 150000)` when fields changed, else nothing.
fn with_fields(ctx: &Ctx<'_>, f: &BTreeMap<String, String>) -> String {
    if f.is_empty() { String::new() } else { format!(" ({})", fields(ctx, f)) }
}

/// What one change did, as the end of a sentence whose subject is its actor.
fn what(ctx: &Ctx<'_>, e: &Event, now: DateTime<Utc>) -> String {
    let name = |id: &str| ctx.name(id).to_string();
    match &e.change {
        Change::Created { fields: f } => format!("handed it off to {}{}", ctx.to.name, with_fields(ctx, f)),
        Change::Accepted { owner } if *owner == e.actor => "accepted it".into(),
        Change::Accepted { owner } => format!("accepted it for {}", name(owner)),
        Change::Acknowledged => "acknowledged it".into(),
        Change::Updated { note, fields: f } if note.is_empty() => format!("updated its fields ({})", fields(ctx, f)),
        Change::Updated { note, fields: f } => format!("posted an update: “{note}”{}", with_fields(ctx, f)),
        Change::SubmittedForGate { tier } => format!("marked it done; it went to the {tier} gate"),
        Change::Reviewed { verdict } => {
            let reviewer = format!("the {} reviewer ({})", verdict.reviewer, verdict.version);
            match (verdict.pass, verdict.reasons.is_empty()) {
                (true, _) => format!("passed it: {reviewer}"),
                (false, true) => format!("failed it: {reviewer}"),
                (false, false) => format!("failed it: {reviewer}: {}", verdict.reasons.join("; ")),
            }
        }
        Change::ReviewAskedAgain { reviewer } => format!("asked the {reviewer} reviewer again: no verdict had come"),
        Change::Approved { count, needed } => format!("approved it ({count} of {needed})"),
        Change::Rejected { reason } => format!("rejected it at the gate: {reason}"),
        Change::Done => "closed it as done".into(),
        Change::Returned { reason } => format!("returned it to the requester: {reason}"),
        Change::Resubmitted { fields: f, note } => {
            let said = note.as_deref().map(|n| format!(": “{n}”")).unwrap_or_default();
            format!("resubmitted it{}{said}", with_fields(ctx, f))
        }
        Change::Edited { title, fields: f, note } => {
            let mut changed: Vec<String> = title.iter().map(|t| format!("title: {t}")).collect();
            changed.extend((!f.is_empty()).then(|| fields(ctx, f)));
            let said = note.as_deref().map(|n| format!(": “{n}”")).unwrap_or_default();
            format!("edited it ({}){said}", changed.join(" · "))
        }
        Change::Cancelled { reason } => format!("cancelled it: {reason}"),
        Change::Reassigned { to, .. } if *to == e.actor => "took it over".into(),
        Change::Reassigned { from: Some(from), to } => format!("gave it to {} (from {})", name(to), name(from)),
        Change::Reassigned { from: None, to } => format!("gave it to {}", name(to)),
        Change::Snoozed { until, reason } => {
            format!("snoozed it until {}: {reason}", render::time(ctx.cal(), *until, now))
        }
        Change::SnoozeEnded => "ended its snooze".into(),
        Change::OwnerLeft { owner } => {
            format!("found its owner, {owner}, no longer in the operating model, and told the receiving lead")
        }
        Change::RequesterLeft { requester } => {
            format!("found its requester, {requester}, no longer in the operating model, and told the sending lead")
        }
        Change::StallOpened { episode, kind } => format!("found it stalled (stall {episode}): {}", kind.describe()),
        Change::StallClosed { episode, unblock_secs, .. } => {
            let took = render::duration(Duration::seconds(*unblock_secs));
            format!("closed stall {episode}: it moved again {took} after the breach")
        }
        Change::RecalibrationConvened { playbook } => format!("convened a recalibration ({playbook})"),
        Change::ArtifactRecorded { playbook, fields: f } | Change::ArtifactCorrected { playbook, fields: f } => {
            // Its person fields (a new owner) name the person, as a contract's do.
            let pb = ctx.model.playbooks.get(playbook);
            let person = |k: &str| {
                pb.and_then(|p| p.artifact.iter().find(|a| a.name == k))
                    .is_some_and(|a| a.kind == crate::model::ArtifactType::Person)
            };
            let shown: BTreeMap<String, String> = (f.iter())
                .map(|(k, v)| (k.clone(), if person(k) { ctx.person_name(v).into_owned() } else { v.clone() }))
                .collect();
            let did = match e.change {
                Change::ArtifactCorrected { .. } => "corrected the post-mortem: the",
                _ => "recorded the",
            };
            format!("{did} {playbook} artifact ({})", fields(ctx, &shown))
        }
        Change::TimeboxReminded => "reminded the convener that the recalibration's timebox ran out".into(),
        Change::Commented { text } => format!("commented: “{text}”"),
        // A handoff's Discord thread holds all its messages; in Slack only a recalibration's is kept.
        Change::Discussed { text } if e.surface == Surface::Discord => format!("said in its Discord thread: “{text}”"),
        Change::Discussed { text } => format!("said in the recalibration thread: “{text}”"),
        Change::Warned { kind, due } => {
            format!("gave a heads-up: due for {} by {}", render::due_for(*kind), render::time(ctx.cal(), *due, now))
        }
        Change::Watched => "started watching it".into(),
        Change::Unwatched => "stopped watching it".into(),
        Change::LadderStep { episode, step, action, skipped } => match skipped {
            false => format!("climbed the ladder: step {} ({action}) of stall {episode}", step + 1),
            true => format!("passed over ladder step {} ({action}) of stall {episode}: a later step was due", step + 1),
        },
    }
}

/// Who did it, and through what: `Ana Alves (Slack)`.
fn who(ctx: &Ctx<'_>, e: &Event) -> String {
    match (e.actor.as_str(), e.surface, &e.via) {
        (BATON, _, _) => "Baton".to_string(),
        (actor, Surface::Baton, _) => ctx.name(actor).to_string(),
        (actor, surface, Some(client)) => format!("{} ({}: {client})", ctx.name(actor), surface_name(surface)),
        (actor, surface, None) => format!("{} ({})", ctx.name(actor), surface_name(surface)),
    }
}

/// One event as a sentence: `Ana Alves (Slack) accepted it`.
pub fn line(ctx: &Ctx<'_>, e: &Event, now: DateTime<Utc>) -> String {
    format!("{} {}", who(ctx, e), what(ctx, e, now))
}

/// One event as a short sentence, for a message edited to say what answered a stall: as [`line`],
/// but a recalibration's record by its decision alone (the thread has the rest).
pub(crate) fn brief(ctx: &Ctx<'_>, e: &Event, now: DateTime<Utc>) -> String {
    match &e.change {
        Change::ArtifactRecorded { fields, .. } => match fields.get("decision") {
            Some(decision) => format!("{} recorded the recalibration's decision: {decision}", who(ctx, e)),
            None => format!("{} recorded the recalibration's outcome", who(ctx, e)),
        },
        _ => line(ctx, e, now),
    }
}

/// The log of `h` from its `events` (oldest first), at `now`: where it stands, then the latest
/// events newest first, so that a platform cutting a long answer short cuts the oldest.
pub fn log(ctx: &Ctx<'_>, h: &Handoff, events: &[Event], now: DateTime<Utc>) -> String {
    let mut out = vec![
        format!(
            "{} · {}: what happened, newest first (times in {}'s zone, {})",
            h.label(),
            h.title,
            ctx.to.name,
            ctx.cal().tz
        ),
        format!("Now: {}. {}", h.state, render::next_move(h)),
    ];
    for e in events.iter().rev().take(SHOWN) {
        out.push(format!("• {} · {}", render::time(ctx.cal(), e.at, now), line(ctx, e, now)));
    }
    if let Some(earlier) = events.len().checked_sub(SHOWN).filter(|n| *n > 0) {
        out.push(format!("… {earlier} earlier events not shown"));
    }
    out.join("\n")
}

/// How a surface is named to people.
fn surface_name(s: Surface) -> &'static str {
    match s {
        Surface::Console => "console",
        Surface::Slack => "Slack",
        Surface::Discord => "Discord",
        Surface::Baton => "Baton",
        Surface::Api => "API",
    }
}
