//! `/handoff team`: a function's handoffs still open, received (by stage: queue, under way, at the
//! gate, back with the requester) and sent, for its members, its lead (or the lead's cover) and
//! architects. A lead's board, and what a cover reads first. `/handoff find`: handoffs by the
//! words in their title and fields, the open ones and then the latest closed.

use chrono::{DateTime, Utc};

use crate::away::Away;
use crate::decide::{Ctx, Rejection};
use crate::handoff::{Handoff, State};
use crate::model::{Function, OperatingModel, Role};
use crate::render;

/// Lines shown per section; the rest are counted.
const SHOWN: usize = 25;

/// The stages of received work, as (title, hint), in the order shown.
const STAGES: [(&str, &str); 4] = [
    ("Waiting to be accepted", ", `/handoff accept H-<n>`"),
    ("Under way", ""),
    ("At the gate", ""),
    ("Back with the requester", ""),
];

/// The stage (index into [`STAGES`]) of received work in `state`; none once closed.
fn stage(state: State) -> Option<usize> {
    match state {
        State::Open => Some(0),
        State::Accepted | State::Reassigned | State::InProgress => Some(1),
        State::AwaitingGate => Some(2),
        State::Returned => Some(3),
        State::Done | State::Cancelled => None,
    }
}

/// The function `actor` asks about (`asked`, else their own), if they may see it: members, its
/// lead or the lead's cover, and architects.
pub fn function_for<'a>(
    model: &'a OperatingModel,
    actor: &str,
    asked: Option<&str>,
    away: &Away,
    now: DateTime<Utc>,
) -> Result<&'a Function, Rejection> {
    let person = model.person(actor).ok_or(Rejection::UnknownActor)?;
    let sees =
        |f: &Function| f.has_member(actor) || away.acting_lead(f, now) == actor || person.has_role(Role::Architect);
    let mine: Vec<&Function> = model.functions.values().filter(|f| sees(f)).collect();
    let ids = |fs: &[&Function]| fs.iter().map(|f| f.id.as_str()).collect::<Vec<_>>().join(", ");
    match asked {
        Some(id) => match model.functions.get(id) {
            Some(f) if sees(f) => Ok(f),
            Some(f) => Err(Rejection::NotYourFunction(format!(
                "you can see the handoffs of {} only, not {}'s; architects see every function's",
                match mine.is_empty() {
                    true => "your own functions".to_string(),
                    false => mine.iter().map(|f| format!("{} (`{}`)", f.name, f.id)).collect::<Vec<_>>().join(", "),
                },
                f.name
            ))),
            None => Err(Rejection::NotYourFunction(format!(
                "there is no function `{id}`; functions: {}",
                model.functions.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        },
        // Someone in no function sees the one they cover for; an architect, who sees them all,
        // names one.
        None => {
            let only = (mine.len() == 1).then(|| mine[0]);
            model.home_function(actor).or(only).ok_or_else(|| {
                Rejection::NotYourFunction(format!(
                    "you belong to no function; name one: `/handoff team <function>` ({})",
                    ids(&model.functions.values().collect::<Vec<_>>())
                ))
            })
        }
    }
}

/// Who has `h` now, in words: the requester of returned work ("with Rita Reyes"), else its owner
/// (each saying whether they are away, or gone from the model); `None` while nobody owns it.
fn holder(model: &OperatingModel, h: &Handoff, away: &Away, now: DateTime<Utc>) -> Option<String> {
    match h.owner.as_deref() {
        _ if h.state == State::Returned => Some(format!("with {}", away.name(model, &h.requester, now))),
        owner => owner.map(|o| away.name(model, o, now)),
    }
}

/// Whether `h`'s title, label or field values hold every one of `words` (any case).
pub fn matches(h: &Handoff, words: &[String]) -> bool {
    let text =
        std::iter::once(h.title.as_str()).chain(h.fields.values().map(String::as_str)).collect::<Vec<_>>().join(" ");
    let text = text.to_lowercase();
    let label = h.label().to_lowercase();
    words.iter().map(|w| w.to_lowercase()).all(|w| text.contains(&w) || label == w)
}

/// Closed handoffs `/handoff find` shows, after the open ones.
pub const SHOWN_CLOSED: usize = 5;

/// What `/handoff find` answers: the `open` handoffs found (newest first), at most [`SHOWN`] of
/// them, then the `closed` ones (the latest, newest first), saying whether there are `older`.
pub fn found(
    model: &OperatingModel,
    words: &[String],
    open: &[Handoff],
    closed: &[Handoff],
    older: bool,
    away: &Away,
    now: DateTime<Utc>,
) -> String {
    let asked = words.join(" ");
    if open.is_empty() && closed.is_empty() {
        return format!(
            "No handoff you can see holds \"{asked}\" in its title or fields. `/handoff mine` and \
             `/handoff team` list what is open."
        );
    }
    let line = |h: &Handoff| {
        let ctx = Ctx::new(model, &h.seam).ok()?;
        let route = format!("{} → {}", ctx.from.name, ctx.to.name);
        let parts = match h.closed_at {
            Some(at) => {
                let owner = h.owner.as_deref().map(|o| away.name(model, o, now)).unwrap_or_default();
                vec![
                    h.label(),
                    h.title.clone(),
                    route,
                    format!("{} {}", h.state, render::time(ctx.cal(), at, now)),
                    owner,
                ]
            }
            None => {
                let owner = holder(model, h, away, now).unwrap_or_else(|| format!("queue of {}", ctx.to.name));
                vec![h.label(), h.title.clone(), route, h.state.to_string(), owner, render::stalled(h)]
            }
        };
        Some(format!("• {}", parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" · ")))
    };
    let mut out = match open.len() {
        0 => vec![format!("No open handoff holds \"{asked}\".")],
        n => vec![format!("Open handoffs holding \"{asked}\" ({n}):")],
    };
    out.extend(open.iter().take(SHOWN).filter_map(line));
    if open.len() > SHOWN {
        out.push(format!("… and {} more: add a word to narrow it", open.len() - SHOWN));
    }
    if !closed.is_empty() {
        out.push("Closed, newest first:".into());
        out.extend(closed.iter().filter_map(line));
        if older {
            out.push("… and older ones: add a word to narrow it".into());
        }
    }
    out.join("\n")
}

/// The board of `f`: `received` are the open handoffs on seams into it, `sent` those on seams out
/// of it.
pub fn board(
    model: &OperatingModel,
    f: &Function,
    received: &[Handoff],
    sent: &[Handoff],
    away: &Away,
    now: DateTime<Utc>,
) -> String {
    let line = |h: &Handoff, other: String| {
        let Ok(ctx) = Ctx::new(model, &h.seam) else { return format!("• {} · {}", h.label(), h.title) };
        let owner = holder(model, h, away, now).unwrap_or_else(|| "nobody yet".to_string());
        let parts = [h.label(), h.title.clone(), other, owner, render::stalled(h), render::due_line(&ctx, h, now)];
        format!("• {}", parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" · "))
    };
    let from = |h: &Handoff| Ctx::new(model, &h.seam).map(|c| format!("from {}", c.from.name)).unwrap_or_default();
    let to =
        |h: &Handoff| Ctx::new(model, &h.seam).map(|c| format!("to {} · {}", c.to.name, h.state)).unwrap_or_default();
    // The lead as the team knows them, and who stands in while they are away.
    let lead = match (away.acting_lead(f, now), away.through(model, &f.lead, now)) {
        (cover, Some(back)) if cover != f.lead => {
            format!("{}, away through {back}: {} covers", model.name_of(&f.lead), model.name_of(cover))
        }
        (_, Some(back)) => format!("{}, away through {back}", model.name_of(&f.lead)),
        (_, None) => model.name_of(&f.lead).to_string(),
    };
    let mut out = vec![format!(
        "{}: {} open handoff{} received, {} sent (lead {lead}).",
        f.name,
        received.len(),
        if received.len() == 1 { "" } else { "s" },
        sent.len(),
    )];
    let mut section = |title: &str, hint: &str, lines: Vec<String>| {
        if lines.is_empty() {
            return;
        }
        out.push(format!("{title} ({}{hint}):", lines.len()));
        let more = lines.len().saturating_sub(SHOWN);
        out.extend(lines.into_iter().take(SHOWN));
        if more > 0 {
            out.push(format!("… and {more} more"));
        }
    };
    // Most urgent first in each list, so that what a long one cuts is what can wait.
    let (mut received, mut sent): (Vec<&Handoff>, Vec<&Handoff>) = (received.iter().collect(), sent.iter().collect());
    received.sort_by_key(|h| crate::stall::urgency(model, h));
    sent.sort_by_key(|h| crate::stall::urgency(model, h));
    for (i, (title, hint)) in STAGES.iter().enumerate() {
        let lines = received.iter().filter(|h| stage(h.state) == Some(i)).map(|h| line(h, from(h))).collect();
        section(title, hint, lines);
    }
    section(&format!("Sent by {}, still open", f.name), "", sent.iter().map(|h| line(h, to(h))).collect());
    out.join("\n")
}
