//! Stall detection and the escalation ladder: pure functions of (handoff, seam policy, now).
//!
//! A stall episode opens at the instant a target is breached (not when it is noticed) and closes
//! when the handoff moves again. Ladder steps are measured in business time after the breach on the
//! same clock that was breached, so snoozes pause the ladder too.

use chrono::{DateTime, Duration, Utc};

use crate::away::Away;
use crate::calendar::{Clock, whole_ms};
use crate::decide::{Ctx, Draft, Rejection, Waiting};
use crate::handoff::*;
use crate::model::{LadderAction, OperatingModel, PersonId, Reviewer, ReviewerKind};
use crate::render;

/// What is stalled about a handoff at an instant, and which ladder steps are now due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StallStatus {
    /// The breached target, if any.
    pub kind: Option<StallKind>,
    /// When it was breached.
    pub since: Option<DateTime<Utc>>,
    /// Ladder steps due now and not yet fired, in order, with the instant each fell due.
    pub due_steps: Vec<(usize, DateTime<Utc>)>,
}

/// The clock and target a stall kind is measured on.
fn measure<'h>(ctx: &Ctx<'_>, h: &'h Handoff, kind: StallKind) -> (&'h Clock, Duration) {
    let sla = &ctx.seam.sla;
    match kind {
        StallKind::NoAccept => (&h.phase_clock, sla.accept),
        StallKind::NoProgress => (&h.phase_clock, sla.update),
        StallKind::GateWaiting => (&h.phase_clock, sla.gate),
        StallKind::Overdue => (&h.total_clock, sla.done),
    }
}

/// The phase target that applies in the handoff's state.
pub(crate) fn phase_kind(state: State) -> Option<StallKind> {
    match state {
        State::Open | State::Reassigned => Some(StallKind::NoAccept),
        State::Accepted | State::InProgress => Some(StallKind::NoProgress),
        State::AwaitingGate => Some(StallKind::GateWaiting),
        State::Done | State::Returned | State::Cancelled => None,
    }
}

/// When `kind`'s target is (or was) breached on its clock; `None` while that clock is paused.
fn breach(ctx: &Ctx<'_>, h: &Handoff, kind: StallKind) -> Option<DateTime<Utc>> {
    let (clock, target) = measure(ctx, h, kind);
    clock.reaches(ctx.cal(), target)
}

/// When the handoff is (or was) past its time-to-done target.
pub(crate) fn overdue_at(ctx: &Ctx<'_>, h: &Handoff) -> Option<DateTime<Utc>> {
    breach(ctx, h, StallKind::Overdue)
}

/// The earliest breach the handoff is heading for (kind and instant), ignoring any open episode.
pub fn next_breach(ctx: &Ctx<'_>, h: &Handoff) -> Option<(StallKind, DateTime<Utc>)> {
    let phase = phase_kind(h.state)?;
    [phase, StallKind::Overdue]
        .into_iter()
        .filter_map(|kind| Some((kind, breach(ctx, h, kind)?)))
        .min_by_key(|(_, at)| *at)
}

/// The heads-up due before the next breach: the breach's kind and instant, and when whoever must
/// act is told (the seam's `warn` before it, in business time). `None` with no `warn`, while a
/// stall is open, when the target is no longer than `warn`, or once told of this breach.
fn heads_up(ctx: &Ctx<'_>, h: &Handoff) -> Option<(StallKind, DateTime<Utc>, DateTime<Utc>)> {
    let warn = ctx.seam.sla.warn?;
    if h.stall.is_some() || h.state.is_terminal() || h.state == State::Returned {
        return None;
    }
    let (kind, due) = next_breach(ctx, h)?;
    let (clock, target) = measure(ctx, h, kind);
    let at = clock.reaches(ctx.cal(), target - warn).filter(|_| target > warn)?;
    Some((kind, due, at)).filter(|_| h.warned != Some(due))
}

/// A sort key putting the most urgent first: stalled (longest first), then by the next deadline
/// (soonest first), then those with no clock running (returned work), by number. Plates and
/// boards list in this order, so that what is cut from a long list is what can wait.
pub fn urgency(model: &OperatingModel, h: &Handoff) -> (u8, i64, HandoffId) {
    if let Some(stall) = &h.stall {
        return (0, stall.opened_at.timestamp_millis(), h.id);
    }
    match Ctx::new(model, &h.seam).ok().and_then(|ctx| next_breach(&ctx, h)) {
        Some((_, at)) => (1, at.timestamp_millis(), h.id),
        None => (2, 0, h.id),
    }
}

/// When ladder step `step` of the open episode is due.
fn step_due(ctx: &Ctx<'_>, h: &Handoff, stall: &Stall, step: usize) -> Option<DateTime<Utc>> {
    let (clock, target) = measure(ctx, h, stall.kind);
    let after = ctx.seam.ladder.get(step)?.after;
    clock.reaches(ctx.cal(), target + after)
}

/// What is stalled at `now` and which ladder steps are due (pure; changes nothing).
pub fn status(ctx: &Ctx<'_>, h: &Handoff, now: DateTime<Utc>) -> StallStatus {
    let opened;
    let stall = match &h.stall {
        Some(s) => s,
        None => match next_breach(ctx, h) {
            Some((kind, at)) if at <= now => {
                opened = Stall { episode: h.episodes + 1, kind, opened_at: at, fired: Vec::new(), told: Vec::new() };
                &opened
            }
            _ => {
                return StallStatus { kind: None, since: None, due_steps: Vec::new() };
            }
        },
    };
    let due_steps = (0..ctx.seam.ladder.len())
        .filter(|i| !stall.fired.contains(i))
        .filter_map(|i| step_due(ctx, h, stall, i).filter(|at| *at <= now).map(|at| (i, at)))
        .collect();
    StallStatus { kind: Some(stall.kind), since: Some(stall.opened_at), due_steps }
}

/// When the handoff next needs a check (`None`: nothing can happen until someone acts).
pub fn next_check(ctx: &Ctx<'_>, h: &Handoff) -> Option<DateTime<Utc>> {
    let snooze_end = h.snooze.as_ref().map(|s| s.until);
    let timebox = h.recalibration.as_ref().filter(|r| !r.reminded).map(|r| r.timebox_ends);
    let clocks = if h.state.is_terminal() || h.state == State::Returned {
        None
    } else {
        match &h.stall {
            Some(stall) => (0..ctx.seam.ladder.len())
                .filter(|i| !stall.fired.contains(i))
                .filter_map(|i| step_due(ctx, h, stall, i))
                .min(),
            None => next_breach(ctx, h).map(|(_, at)| at),
        }
    };
    let warn = heads_up(ctx, h).map(|(_, _, at)| at);
    // Someone it waits on who left is reported to a lead at once.
    let left = unreported_departure(ctx, h).map(|_| h.updated_at);
    [snooze_end, clocks, timebox, warn, review_again(ctx, h), left].into_iter().flatten().min()
}

/// The owner of an open handoff when they are no longer in the operating model (they left the
/// organisation, or a reload dropped them): nobody can act as its owner.
fn departed<'h>(ctx: &Ctx<'_>, h: &'h Handoff) -> Option<&'h PersonId> {
    h.owner.as_ref().filter(|o| !h.state.is_terminal() && ctx.model.person(o).is_none())
}

/// What a lead is asked in a reminder or heads-up meant for an owner who left.
fn reassign_hint(owner: &str, label: &str) -> String {
    format!(
        "Its owner, {owner}, is no longer in the operating model: reassign it with `/handoff reassign {label} <person>`."
    )
}

/// Whom a handoff waits on, of those who can leave it waiting.
#[derive(Clone, Copy)]
enum WaitsOn {
    /// Its owner, to work on it.
    Owner,
    /// Its requester, to answer its return.
    Requester,
}

/// Someone an open handoff waits on who is no longer in the operating model and whose leaving no
/// lead was told of yet: its owner, or the requester it was returned to.
fn unreported_departure<'h>(ctx: &Ctx<'_>, h: &'h Handoff) -> Option<(WaitsOn, &'h PersonId)> {
    let unreported = |p: &&PersonId| !h.left.contains(p);
    let owner = departed(ctx, h).filter(unreported).map(|o| (WaitsOn::Owner, o));
    let gone = |p: &&PersonId| h.state == State::Returned && ctx.model.person(p).is_none();
    owner.or_else(|| Some(&h.requester).filter(gone).filter(unreported).map(|r| (WaitsOn::Requester, r)))
}

/// Tells a lead (or their cover) once that someone the handoff waits on is no longer in the
/// operating model: the receiving lead of its owner, so that they reassign it (its reminders go to
/// them meanwhile); the sending lead of the requester it was returned to, so that they answer the
/// return in their place or cancel it. Answered when it moves.
fn report_departure(d: &mut Draft<'_>, role: WaitsOn, person: PersonId, away: &Away) {
    let (ctx, label) = (d.ctx, d.h.label());
    let what = format!("{label} \"{}\" ({})", d.h.title, ctx.seam.id);
    let (lead, text, actions) = match role {
        WaitsOn::Owner => {
            d.record(Change::OwnerLeft { owner: person.clone() });
            let text = format!(
                "{what} is owned by {person}, who is no longer in the operating model, so nobody is working on it. \
                 Reassign it with `/handoff reassign {label} <person>` (or all {person} owned with \
                 `/handoff reassign-all {person} <person>`); until then its reminders come to you. Now: {}.",
                d.h.state
            );
            (away.acting_lead(ctx.to, d.now), text, render::lead_actions(&d.h))
        }
        WaitsOn::Requester => {
            d.record(Change::RequesterLeft { requester: person.clone() });
            let text = format!(
                "{what} was returned to {person}, who is no longer in the operating model, so nobody will answer it. \
                 Answer it in their place with `/handoff resubmit {label} [field=value ...] <what changed>`, or \
                 cancel it with `/handoff cancel {label} <reason>`."
            );
            (away.acting_lead(ctx.from, d.now), text, vec![Action::Resubmit])
        }
    };
    d.h.left.push(person);
    let to = Recipient::Person(lead.to_string());
    if !d.h.asked.contains(&to) {
        d.h.asked.push(to.clone());
    }
    d.tell(to, IntentKind::Escalation, text, actions);
}

/// When to ask again for a webhook reviewer's verdict that has not come: its timeout and a
/// minute after it was asked (the bot's own call has ended by then, with a verdict or a failure).
fn review_again(ctx: &Ctx<'_>, h: &Handoff) -> Option<DateTime<Utc>> {
    let asked = h.review_asked.filter(|_| h.state == State::AwaitingGate)?;
    let timeout = match ctx.seam.reviewer.as_ref().and_then(|r| ctx.model.reviewers.get(r)) {
        Some(Reviewer { kind: ReviewerKind::Webhook { timeout, .. }, .. }) => *timeout,
        // The seam no longer has a webhook reviewer (a reload): its rules judge it at once.
        _ => Duration::zero(),
    };
    Some(asked + timeout + Duration::minutes(1))
}

/// Asks the seam's webhook reviewer again for a verdict that has not come (the bot calls it
/// after saving this decision), or, when the seam has none any more, lets its rules judge.
fn review_pending(d: &mut Draft<'_>) {
    if crate::decide::ask_reviewer(d).is_none()
        && let Some(reviewer) = d.review.clone()
    {
        d.record(Change::ReviewAskedAgain { reviewer });
    }
}

/// Runs the stall check at `now`: ends a finished snooze, opens an episode at a breach, fires the
/// ladder steps now due. The decision has no events when nothing was due.
///
/// A check that runs late (after downtime) can find several steps due. Only the steps that fell
/// due last are sent; the earlier ones are recorded as skipped, so nobody receives the whole
/// ladder at once and no step fires later.
pub fn check(model: &OperatingModel, h: &Handoff, now: DateTime<Utc>) -> Result<Decision, Rejection> {
    check_with(model, h, now, &Away::default())
}

/// [`check`], with reminders meant for people who are `away` sent to whoever can act instead: an
/// absent owner's to the receiving lead, a queue's and a gate's to those present.
pub fn check_with(model: &OperatingModel, h: &Handoff, now: DateTime<Utc>, away: &Away) -> Result<Decision, Rejection> {
    let now = whole_ms(now);
    let ctx = Ctx::new(model, &h.seam)?;
    let mut d = Draft::new(ctx, h.clone(), BATON, Surface::Baton, now);
    if let Some(snooze) = &h.snooze
        && snooze.until <= now
    {
        d.h.snooze = None;
        d.record(Change::SnoozeEnded);
        // The owner hears it, and a lead (or cover) who snoozed it; nobody away.
        let owner = h.owner.clone().filter(|o| !away.is_away(o, now));
        let what = format!("{} \"{}\"", h.label(), h.title);
        if let Some(owner) = &owner {
            let whose = match snooze.by == *owner {
                true => "Your snooze".to_string(),
                false => format!("The snooze {} set", ctx.model.name_of(&snooze.by)),
            };
            let text = format!("{whose} on {what} is over; its clocks are running again.");
            d.tell_person(owner, text, render::actions(h));
        }
        if Some(&snooze.by) != h.owner.as_ref() && !away.is_away(&snooze.by, now) {
            let text = format!("The snooze you set on {what} is over; its clocks are running again.");
            d.tell_person(&snooze.by, text, render::lead_actions(h));
        }
    }
    crate::recalibrate::remind(&mut d);
    while let Some((role, person)) = unreported_departure(&ctx, &d.h) {
        let person = person.clone();
        report_departure(&mut d, role, person, away);
    }
    if review_again(&ctx, &d.h).is_some_and(|at| at <= now) {
        review_pending(&mut d);
    }
    if let Some((kind, due, at)) = heads_up(&ctx, &d.h)
        && at <= now
        && now < due
    {
        warn(&mut d, kind, due, away);
    }
    let status = status(&ctx, &d.h, now);
    if let (Some(kind), Some(since), None) = (status.kind, status.since, &d.h.stall) {
        d.h.episodes += 1;
        let episode = d.h.episodes;
        // A heads-up of this target is answered with the stall it became.
        let told = d.h.heads_up.take_if(|w| w.kind == kind).map(|w| w.told).unwrap_or_default();
        d.h.stall = Some(Stall { episode, kind, opened_at: since, fired: Vec::new(), told });
        d.record(Change::StallOpened { episode, kind });
        d.episodes.push(EpisodeRecord {
            handoff: h.id,
            episode,
            seam: h.seam.clone(),
            kind,
            opened_at: since,
            closed_at: None,
        });
    }
    let latest = status.due_steps.iter().map(|(_, at)| *at).max();
    for (step, at) in status.due_steps {
        fire(&mut d, step, Some(at) < latest, away);
    }
    // The cards say when it stalled, whether it is snoozed and whether a recalibration is under
    // way: redrawn when any of these changes.
    let shown = |c: &Change| {
        matches!(c, Change::StallOpened { .. } | Change::SnoozeEnded | Change::RecalibrationConvened { .. })
    };
    if d.events.iter().any(|e| shown(&e.change)) {
        d.post_card();
    }
    let reply = format!("{} checked: {} change(s)", h.label(), d.events.len());
    Ok(d.finish(reply))
}

/// Tells whoever must act that `kind`'s target falls due at `due`: the owner, the approvers who
/// may still approve at a gate, or before acceptance those who may take it (and the lead); none
/// who are away (their stall, if it comes, goes to whoever can act).
fn warn(d: &mut Draft<'_>, kind: StallKind, due: DateTime<Utc>, away: &Away) {
    let (ctx, now) = (d.ctx, d.now);
    d.h.warned = Some(due);
    d.record(Change::Warned { kind, due });
    let label = d.h.label();
    let (recipients, hint): (Vec<String>, String) = match (&d.h.owner, d.h.state) {
        (_, State::AwaitingGate) => (
            waiting_on_them(&ctx, &d.h, Waiting::Approval),
            format!("`/approve {label}` or `/reject {label} <reason>`."),
        ),
        // An owner who left: their lead, who was told and may reassign it.
        (Some(owner), _) if ctx.model.person(owner).is_none() => {
            (vec![away.acting_lead(ctx.to, now).to_string()], reassign_hint(owner, &label))
        }
        (Some(owner), _) => (vec![owner.clone()], render::next_move(&d.h)),
        (None, _) => {
            let mut r = waiting_on_them(&ctx, &d.h, Waiting::Acceptance);
            if !r.contains(&ctx.to.lead) {
                r.push(ctx.to.lead.clone());
            }
            (r, format!("Accept it with `/handoff accept {label}`."))
        }
    };
    let left = render::duration(ctx.cal().between(now, due));
    let text = format!(
        "Heads-up: {label} \"{}\" is due for {} by {} (in {left} of working time). {hint}",
        d.h.title,
        render::due_for(kind),
        render::time(ctx.cal(), due, now)
    );
    let actions = match d.h.state {
        State::AwaitingGate => vec![Action::Approve, Action::Reject],
        _ if departed(&ctx, &d.h).is_some() => render::lead_actions(&d.h),
        _ => render::actions(&d.h),
    };
    let mut told = d.h.heads_up.take().map(|w| w.told).unwrap_or_default();
    for person in recipients.into_iter().filter(|p| !away.is_away(p, now)) {
        let to = Recipient::Person(person);
        d.tell(to.clone(), IntentKind::HeadsUp, text.clone(), actions.clone());
        if !told.contains(&to) {
            told.push(to);
        }
    }
    d.h.heads_up = Some(HeadsUp { kind, told });
}

/// Those `h` waits on for `what`: the receiving members who may take it (not an agent, on a seam
/// agents may not own), or the approvers who may still approve.
fn waiting_on_them(ctx: &Ctx<'_>, h: &Handoff, what: Waiting) -> Vec<String> {
    let people = match what {
        Waiting::Acceptance => &ctx.to.members,
        Waiting::Approval => &ctx.seam.approvers,
    };
    people.iter().filter(|p| crate::decide::waiting_on(ctx.model, h, p) == Some(what)).cloned().collect()
}

fn fire(d: &mut Draft<'_>, step: usize, skipped: bool, away: &Away) {
    let Some(stall) = d.h.stall.as_mut() else {
        return;
    };
    stall.fired.push(step);
    let (episode, kind, since) = (stall.episode, stall.kind, stall.opened_at);
    let ctx = d.ctx;
    let action = ctx.seam.ladder[step].action.clone();
    let name = action.name().to_string();
    d.record(Change::LadderStep { episode, step, action: name.clone(), skipped });
    d.fired.push(FiredStep { handoff: d.h.id, episode, step, action: name, at: d.now, skipped });
    if skipped {
        return;
    }
    let label = d.h.label();
    let stalled = format!(
        "{label} \"{}\" ({}) is stalled: {} since {}.",
        d.h.title,
        ctx.seam.id,
        render::why_stalled(&d.h, kind),
        render::time(ctx.cal(), since, d.now)
    );
    let actions = render::reminder_actions(&d.h);
    let before = d.intents.len();
    match action {
        LadderAction::RemindOwner => {
            let now = d.now;
            // At a gate the owner can do nothing more: the approvers who may still approve are reminded.
            let approvers = waiting_on_them(&ctx, &d.h, Waiting::Approval);
            let gate = format!("It waits for your approval: `/approve {label}` or `/reject {label} <reason>`.");
            let owner_away = d.h.owner.as_deref().and_then(|o| Some((o, away.through(ctx.model, o, now)?)));
            // The lead, or whoever covers for them while they are away.
            let lead = away.acting_lead(ctx.to, now).to_string();
            let (recipients, hint, actions) = match &d.h.owner {
                // Those away are passed over while someone else can act.
                _ if !approvers.is_empty() => (away.present(approvers, now), gate, actions),
                // An owner who left: the lead, who can reassign it.
                Some(owner) if ctx.model.person(owner).is_none() => {
                    (vec![lead], reassign_hint(owner, &label), render::lead_actions(&d.h))
                }
                // An absent owner's reminder goes to the lead, who can reassign it.
                Some(_)
                    if let Some((owner, back)) = owner_away
                        && lead != owner =>
                {
                    let hint = format!(
                        "Its owner, {}, is away through {back}: reassign it with `/handoff reassign {label} <person>`.",
                        ctx.model.name_of(owner)
                    );
                    (vec![lead], hint, render::lead_actions(&d.h))
                }
                Some(owner) => {
                    let mut r = vec![owner.clone()];
                    if let Some(sup) = ctx.model.person(owner).and_then(|p| p.supervisor.clone()) {
                        // An agent's supervisor away: the receiving lead watches the agent instead.
                        r.push(if away.is_away(&sup, now) { lead } else { sup });
                    }
                    r.dedup();
                    (r, render::next_move(&d.h), actions)
                }
                None => {
                    let mut r = waiting_on_them(&ctx, &d.h, Waiting::Acceptance);
                    for l in [&ctx.to.lead, &lead] {
                        if !r.contains(l) {
                            r.push(l.clone());
                        }
                    }
                    (away.present(r, now), format!("Accept it with `/handoff accept {label}`."), actions)
                }
            };
            for person in recipients {
                let text = format!("Reminder: {stalled} {hint}");
                d.tell(Recipient::Person(person), IntentKind::Escalation, text, actions.clone());
            }
        }
        LadderAction::NotifyLead => {
            let owner = match d.h.owner.as_deref() {
                None => "nobody yet (in your queue)".to_string(),
                Some(o) => away.name(ctx.model, o, d.now),
            };
            let lead = away.acting_lead(ctx.to, d.now).to_string();
            let role = match lead == ctx.to.lead {
                true => format!("as lead of {}", ctx.to.name),
                false => format!("covering for {} as lead of {}", ctx.model.name_of(&ctx.to.lead), ctx.to.name),
            };
            // At a gate it waits on its approvers, not its owner: the lead hears on whom.
            let approvers = waiting_on_them(&ctx, &d.h, Waiting::Approval);
            let waits = match approvers.is_empty() {
                true => String::new(),
                false => {
                    let name = |a: &String| if *a == lead { "you".to_string() } else { away.name(ctx.model, a, d.now) };
                    let names: Vec<String> = approvers.iter().map(name).collect();
                    format!(" It waits for approval from {}.", names.join(", "))
                }
            };
            let text = format!("For your attention {role}: {stalled} Owner: {owner}.{waits}");
            d.tell(Recipient::Person(lead), IntentKind::Escalation, text, render::lead_actions(&d.h));
        }
        LadderAction::PostChannel => {
            if let Some(channel) = ctx.slack_channel().cloned() {
                let text = format!("Escalation: {stalled}\n{}", render::card(&ctx, &d.h, d.now));
                d.tell(Recipient::SlackChannel(channel), IntentKind::Escalation, text, actions);
            }
        }
        LadderAction::EscalateDiscord => {
            if let Some(channel) = ctx.discord_channel().cloned() {
                let text = format!("Escalation: {stalled}\n{}", render::card(&ctx, &d.h, d.now));
                let actions = render::escalation_actions(&d.h);
                d.tell(Recipient::DiscordChannel(channel), IntentKind::Escalation, text, actions);
            }
        }
        LadderAction::Convene(_) if d.h.recalibration.is_some() => {
            // Already convened (by someone blocked, or an earlier episode's step): the open thread
            // is told, not a second one started.
            crate::recalibrate::still_stalled(d, &stalled);
        }
        LadderAction::Convene(named) => {
            let to = convene_to(&ctx);
            let playbook = crate::recalibrate::playbook_for(ctx.model, &d.h, Some(kind), &named);
            crate::recalibrate::convene(d, &playbook, &stalled, to);
        }
    }
    // Whoever an escalation reaches may say the work is blocked, which convenes a recalibration,
    // and is told when the stall is answered (`Stall::told`).
    let mut told = Vec::new();
    for intent in &mut d.intents[before..] {
        if intent.kind == IntentKind::Escalation {
            intent.actions.push(Action::Blocked);
            told.push(intent.to.clone());
        }
    }
    if let Some(stall) = d.h.stall.as_mut() {
        for to in told {
            if !stall.told.contains(&to) {
                stall.told.push(to);
            }
        }
    }
}

/// Where a recalibration thread opens: for a seam that escalates to Discord (into engineering),
/// a Discord thread in its channel; otherwise a Slack thread in its channel; else the receiving
/// lead by DM.
pub fn convene_to(ctx: &Ctx<'_>) -> Recipient {
    match (ctx.discord_channel(), ctx.slack_channel()) {
        (Some(c), _) => Recipient::DiscordChannel(c.clone()),
        (None, Some(c)) => Recipient::SlackChannel(c.clone()),
        (None, None) => Recipient::Person(ctx.to.lead.clone()),
    }
}
