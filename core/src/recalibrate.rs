//! Recalibrations: convening one from a playbook (participants resolved per handoff, opening
//! text from the playbook's template), the timebox reminder, and recording the artifact, whose
//! decision applies in the same decision as the record.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use serde_json::json;

use crate::calendar::Clock;
use crate::contract::FieldError;
use crate::decide::{Draft, Rejection};
use crate::handoff::*;
use crate::model::{ArtifactType, OperatingModel, Participant, Playbook, Role};
use crate::render;

/// The people a playbook role stands for on this handoff (a requester or owner who left the
/// operating model stands for nobody).
fn resolve(d: &Draft<'_>, p: Participant) -> Vec<String> {
    let ctx = &d.ctx;
    let here = |p: &String| ctx.model.person(p).is_some();
    match p {
        Participant::Requester => Some(d.h.requester.clone()).into_iter().filter(here).collect(),
        Participant::Owner => d.h.owner.clone().into_iter().filter(here).collect(),
        Participant::FromLead => vec![ctx.from.lead.clone()],
        Participant::ToLead | Participant::Reviewer => vec![ctx.to.lead.clone()],
        Participant::Architect => {
            ctx.model.people.values().filter(|x| x.has_role(Role::Architect)).map(|x| x.id.clone()).collect()
        }
        Participant::Approvers => ctx.seam.approvers.clone(),
    }
}

/// Who convenes: the playbook's role, else the receiving lead when nobody holds it.
fn convener(d: &Draft<'_>, pb: &Playbook) -> String {
    resolve(d, pb.convener).into_iter().next().unwrap_or_else(|| d.ctx.to.lead.clone())
}

/// Everyone called in, convener first, each once.
fn participants(d: &Draft<'_>, pb: &Playbook) -> Vec<String> {
    let mut out = vec![convener(d, pb)];
    for p in &pb.attendees {
        for person in resolve(d, *p) {
            if !out.contains(&person) {
                out.push(person);
            }
        }
    }
    out
}

/// Renders one of the playbook's templates over the handoff; `None` when the playbook has none
/// or it fails at run time (the standard text is used then).
fn render_template(d: &Draft<'_>, pb: &Playbook, template: Option<&str>, reason: &str) -> Option<String> {
    let template = template?;
    let names = |ids: &[String]| ids.iter().map(|i| d.ctx.name(i).to_string()).collect::<Vec<_>>().join(", ");
    let ctx = json!({
        "handoff": {
            "id": d.h.id, "label": d.h.label(), "title": d.h.title, "seam": d.h.seam, "state": d.h.state.name(),
            "owner": d.h.owner.as_deref().map(|o| d.ctx.name(o)), "requester": d.ctx.name(&d.h.requester),
            "fields": d.h.fields,
        },
        "playbook": {"id": pb.id, "title": pb.title},
        "reason": reason,
        "convener": d.ctx.name(&convener(d, pb)),
        "attendees": names(&participants(d, pb)[1..]),
        "timebox": render::duration(pb.timebox),
        "agenda": pb.agenda,
    });
    let env = minijinja::Environment::new();
    env.render_str(template, minijinja::Value::from(minijinja::value::Serde(&ctx))).ok()
}

/// Convenes a recalibration with playbook `id`: opens its thread at `to`, mentioning the
/// participants, with the agenda and timebox; the convener is reminded when the timebox runs out.
pub(crate) fn convene(d: &mut Draft<'_>, id: &str, reason: &str, to: Recipient) {
    let Some(pb) = d.ctx.model.playbooks.get(id).cloned() else {
        return;
    };
    let people = participants(d, &pb);
    let text = match render_template(d, &pb, pb.opening.as_deref(), reason) {
        Some(t) => format!("{t}\n{}", agenda(&pb)),
        None => render::recalibration(&d.ctx, &d.h, &pb, reason, &people),
    };
    d.h.recalibration = Some(Recalibration {
        playbook: pb.id.clone(),
        convener: people[0].clone(),
        convened_at: d.now,
        timebox_ends: d.now + pb.timebox,
        reminded: false,
        thread: to.clone(),
    });
    d.tell(to, IntentKind::Recalibration { playbook: pb.id.clone() }, text, vec![Action::Record]);
    if let Some(last) = d.intents.last_mut() {
        last.mentions = people;
    }
}

fn agenda(pb: &Playbook) -> String {
    let lines: Vec<String> = pb.agenda.iter().enumerate().map(|(i, q)| format!("{}. {q}", i + 1)).collect();
    lines.join("\n")
}

/// Tells an open recalibration's thread that the ladder reached its convene step meanwhile.
pub(crate) fn still_stalled(d: &mut Draft<'_>, stalled: &str) {
    let Some(r) = d.h.recalibration.clone() else { return };
    let label = d.h.label();
    let text = format!(
        "{stalled} The escalation ladder reached its convene step; this recalibration is still open. Record \
         the outcome with `/handoff record {label} decision=... assumption_broke=\"...\" category=...`."
    );
    d.tell(r.thread.clone(), IntentKind::Thread, text, vec![Action::Record]);
    if let Some(last) = d.intents.last_mut() {
        last.mentions = vec![r.convener.clone()];
    }
}

/// Reminds the convener in the thread when the timebox has run out (once).
pub(crate) fn remind(d: &mut Draft<'_>) {
    let Some(r) = d.h.recalibration.clone() else { return };
    if r.reminded || r.timebox_ends > d.now {
        return;
    }
    let Some(pb) = d.ctx.model.playbooks.get(&r.playbook).cloned() else { return };
    let label = d.h.label();
    let text = render_template(d, &pb, pb.reminder.as_deref(), "").unwrap_or_else(|| {
        format!(
            "{}: the {} timebox for the recalibration of {label} ran out. Record the outcome with \
             `/handoff record {label} decision=... assumption_broke=\"...\" category=...`.",
            d.ctx.name(&r.convener),
            render::duration(pb.timebox)
        )
    });
    if let Some(rec) = d.h.recalibration.as_mut() {
        rec.reminded = true;
    }
    d.record(Change::TimeboxReminded);
    d.tell(r.thread.clone(), IntentKind::Thread, text, vec![Action::Record]);
    if let Some(last) = d.intents.last_mut() {
        last.mentions = vec![r.convener.clone()];
    }
}

/// Checks an artifact against the playbook's template: unknown fields, missing required ones,
/// wrong types, and what the decision needs. A post-mortem records no decision.
pub(crate) fn validate(
    d: &Draft<'_>,
    pb: &Playbook,
    given: &[(String, String)],
    postmortem: bool,
) -> Result<BTreeMap<String, String>, Vec<FieldError>> {
    let mut errors = crate::contract::given_twice(given);
    let mut fields = BTreeMap::new();
    let err = |field: &str, message: String| FieldError { field: field.to_string(), message };
    for (i, (name, value)) in given.iter().enumerate() {
        if given[..i].iter().any(|(n, _)| n == name) {
            continue;
        }
        let Some(spec) = pb.field(name) else {
            let known: Vec<&str> = pb.artifact.iter().map(|f| f.name.as_str()).collect();
            errors.push(err(
                name,
                format!("the {} artifact has no field `{name}`; its fields: {}", pb.id, known.join(", ")),
            ));
            continue;
        };
        let value = value.trim();
        // A choice or person in any case (`Capacity`, `@Ana`) is recorded as the model writes it.
        let (value, ok) = match &spec.kind {
            ArtifactType::Text | ArtifactType::FollowUps => (value, Ok(())),
            ArtifactType::Choice(options) => match options.iter().find(|o| o.eq_ignore_ascii_case(value)) {
                Some(o) => (o.as_str(), Ok(())),
                None => (value, Err(format!("`{value}` is not one of: {}", options.join(", ")))),
            },
            ArtifactType::Person => match d.ctx.model.person_named(value) {
                Some(id) => (id, Ok(())),
                None => (value, Err(format!("there is no person `{}`", value.trim_start_matches('@')))),
            },
            ArtifactType::Date => (
                value,
                NaiveDate::parse_from_str(value, "%Y-%m-%d")
                    .map(drop)
                    .map_err(|_| format!("`{value}` is not a date like 2026-12-01")),
            ),
        };
        match ok {
            Ok(()) if spec.kind == ArtifactType::FollowUps => match follow_ups(d, value) {
                Ok(_) => {
                    fields.insert(name.clone(), value.to_string());
                }
                Err(e) => errors.push(err(name, e)),
            },
            Ok(()) => {
                fields.insert(name.clone(), value.to_string());
            }
            Err(e) => errors.push(err(name, e)),
        }
    }
    for f in pb.artifact.iter().filter(|f| f.required && !fields.contains_key(&f.name)) {
        if postmortem && f.name == "decision" {
            continue;
        }
        if !errors.iter().any(|e| e.field == f.name) {
            let help = f.help.as_deref().map(|h| format!(" ({h})")).unwrap_or_default();
            let one_of = match &f.kind {
                ArtifactType::Choice(options) => format!(", one of {}", options.join(", ")),
                _ => String::new(),
            };
            // Worded as the contract's required fields are.
            errors.push(err(&f.name, format!("`{}` is required{help}: add {}=...{one_of}", f.name, f.name)));
        }
    }
    // What the decision needs, unless that field was given and is already named as wrong.
    let needed = match fields.get("decision").map(String::as_str) {
        Some("new-owner") => Some(("new_owner", "decision=new-owner needs new_owner=<person>")),
        Some("new-date") => Some(("new_date", "decision=new-date needs new_date=YYYY-MM-DD")),
        _ => None,
    };
    if let Some((field, message)) = needed
        && !fields.contains_key(field)
        && !errors.iter().any(|e| e.field == field)
    {
        errors.push(err(field, message.into()));
    }
    // A new owner comes from the receiving function, named with the rest of what needs fixing.
    if let Some(("new_owner", _)) = needed
        && let Some(to) = fields.get("new_owner")
        && !d.ctx.to.has_member(to)
    {
        let message = format!("{} is not a member of {}, so cannot own it", d.ctx.name(to), d.ctx.to.name);
        errors.push(err("new_owner", message));
    }
    // A new date is when it will be done: not one already gone.
    if let Some(("new_date", _)) = needed
        && let Some(date) = fields.get("new_date").and_then(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
        && date < today(d)
    {
        errors.push(err("new_date", format!("{date} has passed; give a date from today ({}) on", today(d))));
    }
    if errors.is_empty() { Ok(fields) } else { Err(errors) }
}

/// Parses `person YYYY-MM-DD what; …`.
fn follow_ups(d: &Draft<'_>, text: &str) -> Result<Vec<FollowUp>, String> {
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let mut words = item.splitn(3, char::is_whitespace);
            let (owner, due, what) = (
                words.next().unwrap_or("").trim_start_matches('@'),
                words.next().unwrap_or(""),
                words.next().unwrap_or(""),
            );
            let Some(owner) = d.ctx.model.person_named(owner) else {
                return Err(format!(
                    "follow-up `{item}`: there is no person `{owner}`; write `person YYYY-MM-DD what`"
                ));
            };
            let due = NaiveDate::parse_from_str(due, "%Y-%m-%d")
                .map_err(|_| format!("follow-up `{item}`: `{due}` is not a date like 2026-12-01"))?;
            let today = today(d);
            if due < today {
                return Err(format!("follow-up `{item}`: {due} has passed; give a date from today ({today}) on"));
            }
            if what.trim().is_empty() {
                return Err(format!("follow-up `{item}`: say what is to be done"));
            }
            Ok(FollowUp { handoff: d.h.id, owner: owner.to_string(), due, what: what.trim().to_string() })
        })
        .collect()
}

/// Today in the receiving function's zone, which dates in a record are read in.
fn today(d: &Draft<'_>) -> NaiveDate {
    d.now.with_timezone(&d.ctx.to.calendar.tz).date_naive()
}

/// Records a recalibration's artifact and applies its decision; returns the reply.
pub(crate) fn record(d: &mut Draft<'_>, given: &[(String, String)]) -> Result<String, Rejection> {
    let label = d.h.label();
    let Some(rec) = d.h.recalibration.clone() else {
        return Err(Rejection::WrongState {
            id: d.h.id,
            state: d.h.state,
            hint: format!("no recalibration is open on it; convene one with `/recalibrate {label}`"),
        });
    };
    let pb = d.ctx.model.playbooks.get(&rec.playbook).cloned().ok_or_else(|| Rejection::UnknownPlaybook {
        given: rec.playbook.clone(),
        known: d.ctx.model.playbooks.keys().cloned().collect::<Vec<_>>().join(", "),
    })?;
    let fields = validate(d, &pb, given, false).map_err(Rejection::InvalidArtifact)?;
    let decision = fields.get("decision").cloned().unwrap_or_default();
    let episode = d.h.stall.as_ref().map(|s| s.episode);
    // The recalibration reviewed the handoff as it stands, lateness included: a time-to-done
    // target already past gets a fresh window (a new date, below, replaces it), or the next check
    // would open an overdue stall and convene another recalibration at once.
    let late = crate::stall::overdue_at(&d.ctx, &d.h).is_some_and(|at| at <= d.now);
    d.close_stall();
    // Closed before the decision applies: a card it draws (a previous owner's) no longer shows it.
    d.h.recalibration = None;
    d.concluded = Some(rec.thread.clone());
    if late {
        d.h.total_clock = Clock::started(d.now);
        d.h.due_date = None;
    }
    let outcome = match decision.as_str() {
        "new-owner" => {
            // A member of the receiving function (checked with the fields).
            let to = fields.get("new_owner").cloned().unwrap_or_default();
            if let Some(person) = d.ctx.model.person(&to) {
                crate::decide::require_may_own(&d.ctx, person)?;
            }
            let why = format!(
                " after a recalibration (what broke: {})",
                fields.get("assumption_broke").map_or("", String::as_str)
            );
            d.reassign(&to, &why);
            format!("{} owns it now and must accept it", d.ctx.name(&to))
        }
        "new-date" => {
            let date = fields.get("new_date").and_then(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok());
            d.h.due_date = date;
            // The agreed date replaces the time-to-done target: the total clock is set to reach
            // the seam's target at the end of that date's working hours, so that snoozes and
            // returns pause it, and the ladder is measured on it, as for any target.
            if let Some(end) = date.and_then(|date| d.ctx.cal().end_of(date)) {
                let left = d.ctx.cal().between(d.now, end);
                let banked_secs = (d.ctx.seam.sla.done - left).num_seconds();
                d.h.total_clock = Clock { banked_secs, running_since: Some(d.now) };
            }
            d.moved();
            format!("new due date {}", fields.get("new_date").cloned().unwrap_or_default())
        }
        "return" => {
            // Also from the gate (approvals deadlocked on what it holds): once resubmitted, its
            // owner works it again and submits it anew.
            if d.h.state != State::Returned {
                d.return_to_requester(&fields.get("assumption_broke").cloned().unwrap_or_default());
            }
            format!("returned to {}", d.ctx.name(&d.h.requester))
        }
        "cancel" => {
            d.h.state = State::Cancelled;
            d.h.closed_at = Some(d.now);
            d.h.reason = fields.get("assumption_broke").cloned();
            d.moved();
            // Its requester and owner hear it, as of any cancellation, unless they recorded it.
            let (by, why) = (d.ctx.name(&d.actor).to_string(), d.h.reason.clone().unwrap_or_default());
            let text = format!("{label} \"{}\" was cancelled by {by} after a recalibration: {why}", d.h.title);
            let told = [Some(d.h.requester.clone()), d.h.owner.clone()];
            let told: Vec<String> = told.into_iter().flatten().filter(|p| *p != d.actor).collect();
            for person in told {
                d.tell_person(&person, text.clone(), vec![]);
            }
            "cancelled".to_string()
        }
        _ => {
            d.moved();
            "work resumes; its clocks restart now".to_string()
        }
    };
    let ups = fields
        .get("follow_ups")
        .map(|t| follow_ups(d, t))
        .transpose()
        .map_err(|e| Rejection::InvalidArtifact(vec![FieldError { field: "follow_ups".into(), message: e }]))?;
    d.record(Change::ArtifactRecorded { playbook: pb.id.clone(), fields: fields.clone() });
    d.artifacts.push(ArtifactRecord {
        handoff: d.h.id,
        episode,
        playbook: pb.id.clone(),
        category: fields.get("category").cloned().unwrap_or_default(),
        assumption: fields.get("assumption_broke").cloned().unwrap_or_default(),
        decision: decision.clone(),
        fields: fields.clone(),
        by: d.actor.clone(),
        at: d.now,
        corrects: false,
    });
    let mut summary = format!(
        "Recalibration of {label} recorded by {}: {outcome}.\nAssumption that broke: {}\nCategory: {}",
        d.ctx.name(&d.actor),
        fields.get("assumption_broke").cloned().unwrap_or_default(),
        fields.get("category").cloned().unwrap_or_default()
    );
    for f in ups.unwrap_or_default() {
        summary.push_str(&format!("\nFollow-up: {} by {}: {}", d.ctx.name(&f.owner), f.due, f.what));
        remind_follow_up(d, &f);
        d.follow_ups.push(f);
    }
    d.tell(rec.thread.clone(), IntentKind::Thread, summary, vec![]);
    d.post_card();
    Ok(format!("Recorded the {} recalibration of {label}: {outcome}.", pb.id))
}

/// Queues the follow-up's reminder for the start of its due day in its owner's working hours.
fn remind_follow_up(d: &mut Draft<'_>, f: &FollowUp) {
    let cal = d.ctx.model.home_function(&f.owner).map_or_else(|| d.ctx.cal().clone(), |func| func.calendar.clone());
    let midnight = f.due.and_hms_opt(0, 0, 0).and_then(|t| t.and_local_timezone(cal.tz).earliest());
    let at = midnight.map(|m| cal.add(m.with_timezone(&chrono::Utc), Duration::zero()));
    let text = format!("Follow-up due today from the recalibration of {}: {}", d.h.label(), f.what);
    d.intents.push(Intent {
        to: Recipient::Person(f.owner.clone()),
        handoff: Some(d.h.id),
        kind: IntentKind::FollowUp,
        text,
        actions: vec![],
        not_before: at.filter(|a| *a > d.now),
        mentions: Vec::new(),
        image: None,
    });
}

/// Records a post-mortem on a finished handoff: the same artifact, no decision to apply.
pub(crate) fn postmortem(d: &mut Draft<'_>, given: &[(String, String)]) -> Result<String, Rejection> {
    let label = d.h.label();
    if !d.h.state.is_terminal() {
        return Err(Rejection::WrongState {
            id: d.h.id,
            state: d.h.state,
            hint: format!("post-mortems are for done or cancelled handoffs; for live ones use `/recalibrate {label}`"),
        });
    }
    // A second post-mortem corrects the first, from whoever recorded it or an architect; it
    // replaces it, so that its failure category counts once.
    let architect = d.ctx.model.person(&d.actor).is_some_and(|p| p.has_role(Role::Architect));
    let corrects = match &d.h.postmortem {
        Some((by, at)) if *by == d.actor || architect => Some((by.clone(), *at)),
        Some((by, at)) => {
            return Err(Rejection::WrongState {
                id: d.h.id,
                state: d.h.state,
                hint: format!(
                    "its post-mortem was recorded by {} on {}; they or an architect may correct it (`/handoff log \
                     {label}` shows it)",
                    d.ctx.name(by),
                    render::time(d.ctx.cal(), *at, d.now)
                ),
            });
        }
        None => None,
    };
    let mut given = given.to_vec();
    let chosen = given.iter().position(|(k, _)| k == "playbook").map(|i| given.remove(i).1).map(|typed| {
        // In any case, as `/recalibrate` takes it.
        d.ctx.model.playbook_named(&typed).map_or(typed.clone(), str::to_string)
    });
    let pb_id = chosen.clone().or_else(|| default_playbook(d)).unwrap_or_default();
    let pb = d.ctx.model.playbooks.get(&pb_id).cloned().ok_or_else(|| Rejection::UnknownPlaybook {
        given: pb_id.clone(),
        known: d.ctx.model.playbooks.keys().cloned().collect::<Vec<_>>().join(", "),
    })?;
    let fields = validate(d, &pb, &given, true).map_err(Rejection::InvalidArtifact)?;
    d.record(match corrects {
        Some(_) => Change::ArtifactCorrected { playbook: pb.id.clone(), fields: fields.clone() },
        None => Change::ArtifactRecorded { playbook: pb.id.clone(), fields: fields.clone() },
    });
    // A correction keeps the first one's time, so that it counts in the same window.
    let at = corrects.as_ref().map_or(d.now, |(_, at)| *at);
    d.h.postmortem = Some((d.actor.clone(), at));
    d.artifacts.push(ArtifactRecord {
        handoff: d.h.id,
        episode: None,
        playbook: pb.id.clone(),
        category: fields.get("category").cloned().unwrap_or_default(),
        assumption: fields.get("assumption_broke").cloned().unwrap_or_default(),
        decision: "postmortem".into(),
        fields: fields.clone(),
        by: d.actor.clone(),
        at,
        corrects: corrects.is_some(),
    });
    if let Some(text) = fields.get("follow_ups") {
        for f in follow_ups(d, text)
            .map_err(|e| Rejection::InvalidArtifact(vec![FieldError { field: "follow_ups".into(), message: e }]))?
        {
            remind_follow_up(d, &f);
            d.follow_ups.push(f);
        }
    }
    Ok(match corrects {
        Some((by, at)) => format!(
            "Post-mortem of {label} corrected ({}): it replaces the one {} recorded on {}.",
            pb.title,
            d.ctx.name(&by),
            render::time(d.ctx.cal(), at, d.now)
        ),
        None => format!("Post-mortem of {label} recorded ({}).", pb.title),
    })
}

/// The playbook for a handoff stalled with `kind`: `named` (a ladder's choice) when it applies to
/// the stall (its kinds, seams and tiers), else the most specific one that applies (one naming this
/// seam before one for any seam, then the fewest kinds), else `named`. One ladder serves every kind
/// of stall; a playbook says which ones it is for.
pub(crate) fn playbook_for(model: &OperatingModel, h: &Handoff, kind: Option<StallKind>, named: &str) -> String {
    let kind = kind.map(StallKind::name);
    let applies = |p: &Playbook| p.applies(&h.seam, h.tier, kind);
    if model.playbooks.get(named).is_some_and(applies) {
        return named.to_string();
    }
    (model.playbooks.values().filter(|p| applies(p)))
        .min_by_key(|p| (p.seams.is_empty(), p.kinds.len(), p.id.clone()))
        .map_or_else(|| named.to_string(), |p| p.id.clone())
}

/// The playbook `/recalibrate` convenes when none is named: the one the seam's ladder convenes if it
/// applies to the handoff's stall (or, not stalled, to the stall its state would have), else the most
/// specific that applies, else the ladder's, else the first.
pub(crate) fn default_playbook(d: &Draft<'_>) -> Option<String> {
    let model = d.ctx.model;
    // Not stalled (someone says they are blocked): the kind of stall its state would have.
    let kind = d.h.stall.as_ref().map(|s| s.kind).or_else(|| crate::stall::phase_kind(d.h.state));
    let ladder = d.ctx.seam.ladder.iter().find_map(|s| match &s.action {
        crate::model::LadderAction::Convene(p) => Some(p.clone()),
        _ => None,
    });
    let chosen = playbook_for(model, &d.h, kind, &ladder.unwrap_or_default());
    Some(chosen).filter(|c| !c.is_empty()).or_else(|| model.playbooks.keys().next().cloned())
}
