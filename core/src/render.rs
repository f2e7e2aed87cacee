//! Platform-neutral text for cards, reminders and replies. Adapters escape it for their platform.

use chrono::{DateTime, Datelike as _, Duration, Utc};

use crate::calendar::WorkCalendar;
use crate::contract::FieldError;
use crate::decide::Ctx;
use crate::handoff::{Action, Handoff, StallKind, State};
use crate::model::Playbook;
use crate::stall;

/// An instant in the receiving function's zone, `Tue 24 Nov 13:00 EST`, with its year when that is
/// not the year it is `now` (a stall months old, a deadline after New Year).
pub fn time(cal: &WorkCalendar, at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let local = at.with_timezone(&cal.tz);
    match local.year() == now.with_timezone(&cal.tz).year() {
        true => local.format("%a %d %b %H:%M %Z").to_string(),
        false => local.format("%a %d %b %Y %H:%M %Z").to_string(),
    }
}

/// `2h`, `1h30m`, `45m`.
pub fn duration(d: Duration) -> String {
    let minutes = d.num_minutes();
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// A wall-clock duration as typed (`15d`, `1d2h`, `2h30m`): days of 24 hours, unlike [`duration`]'s
/// business hours.
pub fn wall_duration(d: Duration) -> String {
    let (days, rest) = (d.num_days(), d - Duration::days(d.num_days()));
    match (days, rest.is_zero()) {
        (0, _) => duration(rest),
        (n, true) => format!("{n}d"),
        (n, false) => format!("{n}d{}", duration(rest)),
    }
}

/// Field errors as one reply under `heading`, one line each.
pub fn field_errors(heading: &str, errors: &[FieldError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| format!("• {}: {}", e.field, e.message)).collect();
    format!("{heading}:\n{}", lines.join("\n"))
}

/// The buttons that make sense in the handoff's state.
pub fn actions(h: &Handoff) -> Vec<Action> {
    match h.state {
        State::Open => vec![Action::Accept, Action::Return],
        State::Reassigned => vec![Action::Accept, Action::Return],
        State::Accepted => vec![Action::Ack, Action::Update, Action::Done, Action::Snooze, Action::Return],
        // Acknowledged already: Acknowledge again would only restart the update clock unseen.
        State::InProgress => vec![Action::Update, Action::Done, Action::Snooze, Action::Return],
        State::AwaitingGate if h.tier.approvals_needed() > 0 => {
            vec![Action::Approve, Action::Reject]
        }
        State::AwaitingGate | State::Done | State::Returned | State::Cancelled => vec![],
    }
}

/// An approver's request at a gate, as drawn now: what is asked of them (with the buttons) while
/// they may approve; what they did, or that nothing more is needed, once not; then the card.
pub fn approval_request(ctx: &Ctx<'_>, h: &Handoff, approver: &str, now: DateTime<Utc>) -> (String, Vec<Action>) {
    let (label, title) = (h.label(), &h.title);
    let needed = h.tier.approvals_needed();
    let (head, actions) = match h.state {
        State::AwaitingGate if h.approvals.iter().any(|a| a.by == approver) => {
            let more = match needed.saturating_sub(h.approvals.len()) {
                1 => "one more approval".to_string(),
                n => format!("{n} more approvals"),
            };
            (format!("You approved {label} \"{title}\"; it waits for {more}."), vec![])
        }
        State::AwaitingGate => {
            let owner = h.owner.as_deref().map_or("its owner", |o| ctx.model.name_of(o));
            let plural = if needed > 1 { "s" } else { "" };
            let given = match h.approvals.len() {
                0 => String::new(),
                n => format!("; {n} given"),
            };
            let head = format!(
                "{label} \"{title}\" is done by {owner} and needs your approval ({} tier, {needed} approval{plural} needed{given}).",
                h.tier
            );
            (head, vec![Action::Approve, Action::Reject])
        }
        State::Done => {
            (format!("{label} \"{title}\" passed its gate and is done: nothing more is needed from you."), vec![])
        }
        state => (
            format!("{label} \"{title}\" no longer waits for approval (now {state}): nothing is needed from you."),
            vec![],
        ),
    };
    (format!("{head}\n{}", card(ctx, h, now)), actions)
}

/// The buttons on a stall reminder: the card's, and for work under way Acknowledge too, which
/// answers the reminder ("on it") without a progress note.
pub fn reminder_actions(h: &Handoff) -> Vec<Action> {
    match h.state {
        State::InProgress => [vec![Action::Ack], actions(h)].concat(),
        _ => actions(h),
    }
}

/// The buttons on an escalation to a Discord channel, where whoever answers should move it on:
/// take it while nobody owns it, acknowledge or snooze work under way, decide at a gate.
pub fn escalation_actions(h: &Handoff) -> Vec<Action> {
    match h.state {
        State::Open | State::Reassigned => vec![Action::Accept],
        State::Accepted | State::InProgress => vec![Action::Ack, Action::Snooze],
        _ => actions(h),
    }
}

/// The buttons on a stall notice to the receiving lead: an owned handoff's are the owner's but
/// for its snooze, which the lead may also use.
pub fn lead_actions(h: &Handoff) -> Vec<Action> {
    match h.state {
        State::Accepted | State::InProgress => vec![Action::Snooze],
        _ => actions(h),
    }
}

/// What a stall of `kind` on `h` means, in words: `not accepted in time`, or for an overdue handoff
/// with an agreed due date, `past its agreed due date, Fri 18 Dec`.
pub fn why_stalled(h: &Handoff, kind: StallKind) -> String {
    match (kind, h.due_date) {
        (StallKind::Overdue, Some(date)) => format!("past its agreed due date, {}", date.format("%a %d %b")),
        _ => kind.describe().to_string(),
    }
}

/// `STALLED: not accepted in time` for a stalled handoff, else nothing (a list line's part).
pub fn stalled(h: &Handoff) -> String {
    h.stall.as_ref().map(|s| format!("STALLED: {}", why_stalled(h, s.kind))).unwrap_or_default()
}

/// What the owner should do next, as a sentence.
pub fn next_move(h: &Handoff) -> String {
    let label = h.label();
    match h.state {
        State::Open | State::Reassigned => format!("Accept it with `/handoff accept {label}`."),
        State::Accepted => format!("Start with `/ack {label}` or post progress with `/handoff update {label} <note>`."),
        State::InProgress => {
            format!("Post progress with `/handoff update {label} <note>`, or `/snooze {label} <duration> <reason>`.")
        }
        State::AwaitingGate => "It waits for its approvers.".into(),
        State::Returned => "It waits on the requester.".into(),
        State::Done | State::Cancelled => "Nothing: it is closed.".into(),
    }
}

/// The handoff's next deadline on its clocks, said for people: what is due by when, or, once a
/// deadline has passed with no stall opened yet, that it has. Empty when stalled (the stall is
/// shown instead) or when no clock runs.
pub fn due_line(ctx: &Ctx<'_>, h: &Handoff, now: DateTime<Utc>) -> String {
    if h.stall.is_some() {
        return String::new();
    }
    let Some((kind, at)) = stall::next_breach(ctx, h) else { return String::new() };
    if at <= now {
        let describe = why_stalled(h, kind);
        let mut chars = describe.chars();
        let first = chars.next().map(|c| c.to_uppercase().collect::<String>()).unwrap_or_default();
        return format!("{first}{} since {}.", chars.as_str(), time(ctx.cal(), at, now));
    }
    if let (StallKind::Overdue, Some(date)) = (kind, h.due_date) {
        return format!("Due by the agreed date, {}.", date.format("%a %d %b %Y"));
    }
    format!("Due for {} by {}.", due_for(kind), time(ctx.cal(), at, now))
}

/// What a target is due for: `Due for acceptance`, `due for next update`.
pub fn due_for(kind: StallKind) -> &'static str {
    match kind {
        StallKind::NoAccept => "acceptance",
        StallKind::NoProgress => "next update",
        StallKind::GateWaiting => "gate decision",
        StallKind::Overdue => "completion",
    }
}

/// The handoff card: what it is, where it is, who has it, what it needs.
pub fn card(ctx: &Ctx<'_>, h: &Handoff, now: DateTime<Utc>) -> String {
    let name = |id: &str| ctx.model.name_or_gone(id);
    let owner =
        h.owner.as_deref().map_or_else(|| format!("queue of {} (lead {})", ctx.to.name, name(&ctx.to.lead)), name);
    let mut lines = vec![
        format!("{} · {} · {} → {} · {}", h.label(), h.title, ctx.from.name, ctx.to.name, h.tier),
        format!("State: {} · Requester: {} · Owner: {owner}", h.state, name(&h.requester)),
    ];
    if !h.fields.is_empty() {
        let fields: Vec<String> = h.fields.iter().map(|(k, v)| format!("{k}: {}", ctx.shown(k, v))).collect();
        lines.push(fields.join(" · "));
    }
    if let Some(stall) = &h.stall {
        lines.push(format!("Stalled: {} since {}", why_stalled(h, stall.kind), time(ctx.cal(), stall.opened_at, now)));
    }
    if let Some(snooze) = h.snooze.as_ref().filter(|s| s.until > now) {
        lines.push(format!("Snoozed until {}: {}", time(ctx.cal(), snooze.until, now), snooze.reason));
    }
    if let Some(reason) = &h.reason
        && matches!(h.state, State::Returned | State::Cancelled | State::InProgress)
    {
        lines.push(format!("Reason: {reason}"));
    }
    if h.state == State::AwaitingGate && h.tier.approvals_needed() > 0 {
        let by: Vec<String> = h.approvals.iter().map(|a| name(&a.by)).collect();
        let by = if by.is_empty() { String::new() } else { format!(" ({})", by.join(", ")) };
        lines.push(format!("Approvals: {} of {}{by}", h.approvals.len(), h.tier.approvals_needed()));
    }
    if let Some(note) = &h.last_note {
        lines.push(format!("Latest update: {note}"));
    }
    if let Some(date) = h.due_date {
        lines.push(format!("Agreed due date: {date}"));
    }
    // A watcher who came to own it keeps the subscription (for when it moves on), but the card
    // already names them; one who left the model watches no more.
    let watching: Vec<String> = (h.watchers.iter())
        .filter(|w| h.owner.as_ref() != Some(*w) && **w != h.requester && ctx.model.person(w).is_some())
        .map(|w| name(w))
        .collect();
    if !watching.is_empty() {
        lines.push(format!("Watched by: {}", watching.join(", ")));
    }
    if let Some(r) = &h.recalibration {
        lines.push(format!("Recalibration under way ({}), convened by {}", r.playbook, ctx.model.name_of(&r.convener)));
    }
    let due = due_line(ctx, h, now);
    if !due.is_empty() {
        lines.push(due);
    }
    lines.join("\n")
}

/// The standard opening post of a recalibration thread (a playbook may template its own).
pub fn recalibration(ctx: &Ctx<'_>, h: &Handoff, pb: &Playbook, reason: &str, people: &[String]) -> String {
    let names: Vec<&str> = people.iter().map(|a| ctx.model.name_of(a)).collect();
    let convener = names.first().copied().unwrap_or("");
    let mut text = format!(
        "Recalibration convened for {}: {reason}\nPlaybook: {} · timebox {} · convener {convener}\nAttendees: {}",
        h.label(),
        pb.title,
        duration(pb.timebox),
        names.join(", ")
    );
    for (i, q) in pb.agenda.iter().enumerate() {
        text.push_str(&format!("\n{}. {q}", i + 1));
    }
    let required: Vec<&str> = pb.artifact.iter().filter(|f| f.required).map(|f| f.name.as_str()).collect();
    text.push_str(&format!(
        "\nRecord the outcome: `/handoff record {} {}`",
        h.label(),
        required.iter().map(|f| format!("{f}=...")).collect::<Vec<_>>().join(" ")
    ));
    text
}

/// Several messages to one recipient folded into one, in the order they were raised; `personal`
/// for a person (a channel's are not "for you").
pub fn digest<'a>(texts: impl IntoIterator<Item = &'a str>, personal: bool) -> String {
    let items: Vec<String> = texts.into_iter().map(|t| format!("• {}", t.replace('\n', "\n  "))).collect();
    let whose = if personal { " for you" } else { "" };
    format!("{} updates{whose}:\n{}", items.len(), items.join("\n"))
}
