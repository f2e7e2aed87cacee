//! What is on a person's plate: the handoffs they own or requested, those in their function's
//! queue, those waiting for their approval, (for a lead or their cover) those stalled in the
//! functions they lead and those owned by people away, and those they watch. `/handoff mine`
//! shows it as text; Slack's App Home shows it with each handoff's buttons.

use chrono::{DateTime, Utc};

use crate::away::Away;
use crate::decide::{Ctx, Waiting, waiting_on};
use crate::handoff::{Action, Handoff, HandoffId, State};
use crate::model::{Function, OperatingModel};
use crate::render;

/// A person's plate, in the order shown.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Plate {
    /// Sentences about the person themselves (away; covering for a lead); shown first.
    pub notes: Vec<String>,
    /// The non-empty sections.
    pub sections: Vec<Section>,
}

/// A heading and its handoffs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Section {
    /// `Yours:`, with the command that acts on the section where there is one.
    pub heading: String,
    /// One per handoff.
    pub items: Vec<Item>,
}

/// A handoff on the plate.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Item {
    /// Which.
    pub id: HandoffId,
    /// Its line: label, title and what matters to this person.
    pub line: String,
    /// What this person may do to it with a button (none where only a typed command will do).
    pub actions: Vec<Action>,
}

/// What the store loaded for a person's plate.
#[derive(Debug)]
pub struct Loaded<'a> {
    /// Open handoffs they own or requested.
    pub own: &'a [Handoff],
    /// Open handoffs on the seams they receive on or approve for (their queue and gates).
    pub waiting: &'a [Handoff],
    /// Handoffs under way on the seams into the functions they lead or cover for (a lead is shown
    /// those stalled and those owned by people away).
    pub led: &'a [Handoff],
    /// Open handoffs they watch.
    pub watched: &'a [Handoff],
    /// Who is away, and their covers.
    pub away: &'a Away,
}

/// The buttons the owner (or requester) of `h` has on their plate.
fn own_actions(h: &Handoff, actor: &str) -> Vec<Action> {
    match (h.owner.as_deref() == Some(actor), h.state) {
        // At the gate the owner can do nothing more; the approvers decide.
        (true, State::AwaitingGate) => Vec::new(),
        (true, _) => render::actions(h),
        (false, State::Returned) if h.requester == actor => vec![Action::Resubmit],
        (false, _) => Vec::new(),
    }
}

/// `person`'s plate at `now`.
pub fn build(model: &OperatingModel, actor: &str, loaded: &Loaded<'_>, now: DateTime<Utc>) -> Plate {
    let away = loaded.away;
    let mut notes = Vec::new();
    if let Some(back) = away.through(model, actor, now) {
        notes.push(format!("You are away through {back} (`/away back` when you return)."));
    }
    for lead in away.covered_by(actor, now) {
        let (name, led) = (model.name_of(&lead), model.led_by(&lead));
        let through = away.through(model, &lead, now).unwrap_or_default();
        notes.push(format!("You cover for {name} as lead of {led} through {through}."));
    }
    let due = |h: &Handoff| Ctx::new(model, &h.seam).map(|c| render::due_line(&c, h, now)).unwrap_or_default();
    // A stalled handoff has no deadline left to show: what stalled, and since when.
    let stalled_since = |h: &Handoff| match (&h.stall, Ctx::new(model, &h.seam)) {
        (Some(s), Ok(ctx)) => format!("{} since {}", render::stalled(h), render::time(ctx.cal(), s.opened_at, now)),
        _ => String::new(),
    };
    let line = |parts: Vec<String>| parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" · ");
    let mut sections = Vec::new();
    let mut section = |heading: &str, items: Vec<Item>| {
        if !items.is_empty() {
            sections.push(Section { heading: heading.to_string(), items });
        }
    };

    let mut own: Vec<&Handoff> = loaded.own.iter().collect();
    own.sort_by_key(|h| crate::stall::urgency(model, h));
    let yours = own.into_iter().map(|h| {
        let role = if h.owner.as_deref() == Some(actor) { "you are owner" } else { "you are requester" };
        // Returned work has no clock running: say whose move it is.
        let next = match (h.state, h.requester == actor) {
            (State::Returned, true) => format!("waiting on you: `/handoff resubmit {} …`", h.label()),
            _ => due(h),
        };
        let parts = vec![h.label(), h.title.clone(), h.state.to_string(), role.into(), render::stalled(h), next];
        Item { id: h.id, line: line(parts), actions: own_actions(h, actor) }
    });
    section("Yours:", yours.collect());

    let mut others: Vec<&Handoff> =
        loaded.waiting.iter().filter(|h| !loaded.own.iter().any(|o| o.id == h.id)).collect();
    others.sort_by_key(|h| crate::stall::urgency(model, h));
    let waiting = |kind: Waiting| others.iter().copied().filter(move |h| waiting_on(model, h, actor) == Some(kind));
    let queue = waiting(Waiting::Acceptance).map(|h| {
        let team = model.seams.get(&h.seam).and_then(|s| model.functions.get(&s.to));
        let team = team.map(|f| f.name.clone()).unwrap_or_default();
        let parts = vec![h.label(), h.title.clone(), team, stalled_since(h), due(h)];
        Item { id: h.id, line: line(parts), actions: vec![Action::Accept] }
    });
    section("In your team's queue (accept with `/handoff accept H-<n>`):", queue.collect());
    let approvals = waiting(Waiting::Approval).map(|h| {
        let given = format!("{} of {} approvals", h.approvals.len(), h.tier.approvals_needed());
        let parts = vec![h.label(), h.title.clone(), given, stalled_since(h), due(h)];
        Item { id: h.id, line: line(parts), actions: vec![Action::Approve, Action::Reject] }
    });
    section("Waiting for your approval (`/approve H-<n>` or `/reject H-<n> <reason>`):", approvals.collect());

    // For a lead (or their cover): what is stalled, and what people away or gone own, in the
    // functions they lead.
    let mut led: Vec<(&Handoff, Ctx<'_>)> = (loaded.led.iter())
        .filter_map(|h| Some((h, Ctx::new(model, &h.seam).ok().filter(|c| leads(c.to, actor, away, now))?)))
        .collect();
    led.sort_by_key(|(h, _)| crate::stall::urgency(model, h));
    let left = led.iter().filter_map(|(h, _)| {
        let owner = h.owner.as_deref().filter(|o| *o != actor)?;
        let whose = away.out(model, owner, now)?;
        Some(Item { id: h.id, line: line(vec![h.label(), h.title.clone(), whose, due(h)]), actions: Vec::new() })
    });
    // What the sections above list already is not listed again.
    let listed = |h: &Handoff| {
        loaded.own.iter().any(|o| o.id == h.id)
            || others.iter().any(|o| o.id == h.id && waiting_on(model, o, actor).is_some())
    };
    let stalled = led.iter().filter(|(h, _)| h.stall.is_some() && !listed(h)).map(|(h, _)| {
        let parts = vec![h.label(), h.title.clone(), holder(model, h), stalled_since(h)];
        // At a gate only an approver's buttons work.
        let actions = match (h.state, waiting_on(model, h, actor)) {
            (State::AwaitingGate, Some(Waiting::Approval)) => vec![Action::Approve, Action::Reject],
            (State::AwaitingGate, _) => Vec::new(),
            _ => render::lead_actions(h),
        };
        Item { id: h.id, line: line(parts), actions }
    });
    section("Stalled in the functions you lead:", stalled.collect());
    section(
        "Owned by people away or gone (`/handoff reassign H-<n> <person>`, or all of someone's: `/handoff reassign-all <from> <to>`):",
        left.collect(),
    );
    let watched = loaded.watched.iter().map(|h| {
        let parts = vec![h.label(), h.title.clone(), h.state.to_string(), holder(model, h), render::stalled(h)];
        Item { id: h.id, line: line(parts), actions: vec![Action::Unwatch] }
    });
    section("You watch (`/handoff unwatch H-<n>` to stop):", watched.collect());
    Plate { notes, sections }
}

impl Plate {
    /// Whether nothing waits on the person (notes aside).
    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }

    /// The plate as `/handoff mine` answers it.
    pub fn text(&self) -> String {
        let mut out = self.notes.clone();
        if self.is_empty() {
            out.push(EMPTY.into());
        }
        for s in &self.sections {
            out.push(s.heading.clone());
            out.extend(s.items.iter().map(|i| format!("• {}", i.line)));
        }
        out.join("\n")
    }
}

/// What an empty plate says.
pub const EMPTY: &str =
    "You own or requested no open handoffs, and none waits for your team to accept it or for your approval.";

/// Whether `person` leads `f`, or covers for its lead, at `now`.
fn leads(f: &Function, person: &str, away: &Away, now: DateTime<Utc>) -> bool {
    f.lead == person || away.acting_lead(f, now) == person
}

/// `owner Ana Alves`, or `in the queue` before anyone accepts it.
fn holder(model: &OperatingModel, h: &Handoff) -> String {
    h.owner.as_deref().map_or_else(|| "in the queue".to_string(), |o| format!("owner {}", model.name_of(o)))
}

/// The functions `person` leads, or covers for the lead of, at `now`: only for them are the
/// handoffs of people away and the stalled ones worth loading for their plate.
pub fn led<'a>(
    model: &'a OperatingModel,
    person: &'a str,
    away: &'a Away,
    now: DateTime<Utc>,
) -> impl Iterator<Item = &'a Function> + 'a {
    model.functions.values().filter(move |f| leads(f, person, away, now))
}
