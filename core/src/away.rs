//! People away (holiday, sick leave): `/away until 2026-12-04 holiday`. Stall checks route the
//! reminders meant for someone away to whoever can act instead, and when someone leaves owning
//! handoffs, the leads of the functions those handoffs are received by are told, so nothing waits
//! on a person who is not there. A lead going away may name a cover (`cover=dana`), who stands in
//! as lead meanwhile: gets what the lead would, and may do what the lead may.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;

use crate::decide::{Ctx, Rejection};
use crate::handoff::{Handoff, Intent, IntentKind, Recipient};
use crate::model::{Function, OperatingModel, PersonId};

/// The furthest ahead an absence may be set.
const LONGEST: Duration = Duration::days(366);

/// Who is away, until when (exclusive), and who covers for the leads among them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Away {
    until: BTreeMap<PersonId, DateTime<Utc>>,
    covers: BTreeMap<PersonId, PersonId>,
}

impl Away {
    /// From `(person, until)` pairs.
    pub fn new(entries: impl IntoIterator<Item = (PersonId, DateTime<Utc>)>) -> Away {
        Away { until: entries.into_iter().collect(), covers: BTreeMap::new() }
    }

    /// With `cover` standing in for `person` while they are away.
    pub fn with_cover(mut self, person: &str, cover: &str) -> Away {
        self.covers.insert(person.to_string(), cover.to_string());
        self
    }

    /// Until when `person` is away at `now`, if they are.
    pub fn until(&self, person: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.until.get(person).copied().filter(|until| *until > now)
    }

    /// Who stands in for `person` at `now`: their cover, while they are away and the cover is not.
    pub fn cover(&self, person: &str, now: DateTime<Utc>) -> Option<&str> {
        let cover = self.covers.get(person).filter(|_| self.is_away(person, now))?;
        (!self.is_away(cover, now)).then_some(cover.as_str())
    }

    /// Who acts as lead of `f` at `now`: its lead, or the cover they named while they are away.
    pub fn acting_lead<'a>(&'a self, f: &'a Function, now: DateTime<Utc>) -> &'a str {
        self.cover(&f.lead, now).unwrap_or(&f.lead)
    }

    /// The people away at `now` whom `person` covers for.
    pub fn covered_by(&self, person: &str, now: DateTime<Utc>) -> Vec<PersonId> {
        (self.covers.iter())
            .filter(|(away, cover)| *cover == person && self.cover(away, now) == Some(person))
            .map(|(away, _)| away.clone())
            .collect()
    }

    /// The last day `person` is away at `now`, in words (`Fri 04 Dec`), if they are away.
    pub fn through(&self, model: &OperatingModel, person: &str, now: DateTime<Utc>) -> Option<String> {
        self.until(person, now).map(|until| last_day(model, person, until))
    }

    /// `person`'s name, with `(away through Fri 04 Dec)` while they are away at `now`, or their
    /// id with `(no longer in the operating model)` once they left it.
    pub fn name(&self, model: &OperatingModel, person: &str, now: DateTime<Utc>) -> String {
        match self.through(model, person, now) {
            Some(back) if model.person(person).is_some() => format!("{} (away through {back})", model.name_of(person)),
            _ => model.name_or_gone(person),
        }
    }

    /// Why `person` cannot act at `now`, if they cannot: `Ana Alves away through Fri 04 Dec`, or
    /// `ana, no longer in the operating model` once they left it.
    pub fn out(&self, model: &OperatingModel, person: &str, now: DateTime<Utc>) -> Option<String> {
        match model.person(person) {
            None => Some(format!("{person}, no longer in the operating model")),
            Some(p) => Some(format!("{} away through {}", p.name, self.through(model, person, now)?)),
        }
    }

    /// Everyone away at `now`, with the end of their absence.
    pub fn people(&self, now: DateTime<Utc>) -> impl Iterator<Item = (&str, DateTime<Utc>)> {
        self.until.iter().filter(move |(_, until)| **until > now).map(|(p, until)| (p.as_str(), *until))
    }

    /// Those of `people` not away at `now`; all of them when everyone is away.
    pub fn present(&self, people: Vec<PersonId>, now: DateTime<Utc>) -> Vec<PersonId> {
        let here: Vec<PersonId> = people.iter().filter(|p| !self.is_away(p, now)).cloned().collect();
        if here.is_empty() { people } else { here }
    }

    /// Whether `person` is away at `now`.
    pub fn is_away(&self, person: &str, now: DateTime<Utc>) -> bool {
        self.until(person, now).is_some()
    }
}

/// The zone a person's dates are read in: their home function's (UTC for someone in none).
fn zone(model: &OperatingModel, person: &str) -> Tz {
    model.home_function(person).map_or(Tz::UTC, |f| f.calendar.tz)
}

/// The last day of an absence ending at `until`, in words: `Fri 04 Dec`.
pub fn last_day(model: &OperatingModel, person: &str, until: DateTime<Utc>) -> String {
    (until - Duration::milliseconds(1)).with_timezone(&zone(model, person)).format("%a %d %b").to_string()
}

/// Someone going away: until when, what they are told, and what their handoffs' leads are told.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaving {
    /// The end of the absence: midnight after its last day, in the person's zone.
    pub until: DateTime<Utc>,
    /// The answer to the person.
    pub reply: String,
    /// Notices to the leads of the functions whose handoffs the person owns.
    pub intents: Vec<Intent>,
}

/// What someone going away said: `/away until 2026-12-04 cover=dana holiday`.
#[derive(Clone, Copy, Debug)]
pub struct Going<'a> {
    /// Who.
    pub person: &'a str,
    /// Their last day away, in their zone.
    pub last: NaiveDate,
    /// Why (may be empty).
    pub reason: &'a str,
    /// Who stands in for them as lead.
    pub cover: Option<&'a str>,
}

/// Someone is going away; `owned` are the open handoffs they own, `away` who else is away now.
pub fn leave(
    model: &OperatingModel,
    going: Going<'_>,
    owned: &[Handoff],
    away: &Away,
    now: DateTime<Utc>,
) -> Result<Leaving, Rejection> {
    let Going { person, last, reason, cover } = going;
    let now = crate::calendar::whole_ms(now);
    let who = model.person(person).ok_or(Rejection::UnknownActor)?;
    let tz = zone(model, person);
    let today = now.with_timezone(&tz).date_naive();
    if last < today {
        return Err(Rejection::BadAbsence(format!(
            "{last} has passed; name your last day away, today ({today}) or later"
        )));
    }
    let midnight = last.succ_opt().map(|day| day.and_time(NaiveTime::MIN));
    let until = midnight.and_then(|m| tz.from_local_datetime(&m).earliest()).map(|t| t.with_timezone(&Utc));
    let Some(until) = until.filter(|u| *u - now <= LONGEST) else {
        return Err(Rejection::BadAbsence(format!("{last} is more than a year away; name a nearer last day")));
    };
    let through = last_day(model, person, until);
    let because = match reason.trim() {
        "" => String::new(),
        r => format!(" ({r})"),
    };
    let led = model.led_by(person);
    let cover = match cover.map(|c| c.trim_start_matches('@')) {
        None => None,
        Some(c) if c == person => return Err(Rejection::BadAbsence("name someone else to cover for you".into())),
        Some(c) => {
            let covering = model.person(c).ok_or_else(|| Rejection::UnknownPerson(c.to_string()))?;
            if led.is_empty() {
                let lead = model.home_function(person).map(|f| model.name_of(away.acting_lead(f, now)));
                let lead = lead.unwrap_or("your lead");
                return Err(Rejection::BadAbsence(format!(
                    "only a lead names a cover; while you are away {lead} hears about your handoffs and can reassign them"
                )));
            }
            if covering.is_agent() {
                return Err(Rejection::BadAbsence(format!(
                    "{} is an agent; name a person to cover for you",
                    covering.name
                )));
            }
            if let Some(back) = away.through(model, c, now) {
                return Err(Rejection::BadAbsence(format!(
                    "{} is away through {back}; name someone who is here",
                    covering.name
                )));
            }
            Some(covering)
        }
    };
    // Said again (a retyped command, a second click): nobody is told twice.
    let previous = away.covers.get(person).filter(|_| away.is_away(person, now));
    let same_cover = previous.map(String::as_str) == cover.map(|c| c.id.as_str());
    if away.until(person, now) == Some(until) && same_cover {
        let covering = cover.map(|c| format!("; {} covers for you as lead", c.name)).unwrap_or_default();
        let reply = format!("You are already away through {through}{covering}. `/away back` when you return.");
        return Ok(Leaving { until, reply, intents: Vec::new() });
    }
    // One notice per lead (or the cover standing in for one), listing that lead's handoffs; what
    // a lead owns in their own function is for their cover.
    let mut by_lead: BTreeMap<&str, Vec<&Handoff>> = BTreeMap::new();
    let mut own_led = Vec::new();
    for h in owned {
        let Ok(ctx) = Ctx::new(model, &h.seam) else { continue };
        if ctx.to.lead == person {
            own_led.push(h);
        } else {
            by_lead.entry(away.acting_lead(ctx.to, now)).or_default().push(h);
        }
    }
    let list = |handoffs: &[&Handoff]| {
        let list: Vec<String> = handoffs.iter().map(|h| format!("{} \"{}\"", h.label(), h.title)).collect();
        let which = match handoffs {
            [one] => one.label(),
            _ => "H-<n>".to_string(),
        };
        (list.join(", "), which)
    };
    let leads: Vec<&str> = by_lead.keys().map(|lead| model.name_of(lead)).collect();
    let mut intents = by_lead
        .into_iter()
        .map(|(lead, handoffs)| {
            let (list, which) = list(&handoffs);
            let text = format!(
                "{} is away through {through}{because} and owns {list}. Reassign with `/handoff reassign {which} <person>`; \
                 meanwhile their stall reminders come to you.",
                who.name,
            );
            let mut notice = Intent::message(Recipient::Person(lead.to_string()), IntentKind::Notice, text);
            let tier = handoffs.iter().map(|h| h.tier).max();
            notice.not_before = tier.and_then(|tier| model.quiet_until(lead, tier, now));
            notice
        })
        .collect::<Vec<_>>();
    let owned_list = match owned {
        [] => String::new(),
        hs => {
            let labels: Vec<String> = hs.iter().map(Handoff::label).collect();
            let told = match leads.as_slice() {
                [] => String::new(),
                [lead] => format!("; {lead} was told"),
                leads => format!("; {} were told", leads.join(" and ")),
            };
            format!(" You own {}{told}.", labels.join(", "))
        }
    };
    let meanwhile = match cover {
        Some(c) => {
            let mut text = format!(
                "{} is away through {through}{because} and asked you to cover as lead of {led}: the lead's stall \
                 reminders come to you, and you may do what the lead may on its handoffs (reassign, snooze, return, \
                 record a recalibration).",
                who.name,
            );
            if !own_led.is_empty() {
                let (list, which) = list(&own_led);
                text +=
                    &format!(" They own {list}: reassign with `/handoff reassign {which} <person>` if it cannot wait.");
            }
            let mut notice = Intent::message(Recipient::Person(c.id.clone()), IntentKind::Notice, text);
            notice.not_before = model.quiet_until(&c.id, crate::model::RiskTier::Reversible, now);
            intents.push(notice);
            format!(
                "{} covers for you as lead (they were told): what Baton would send you as lead goes to them.",
                c.name
            )
        }
        None if !led.is_empty() => format!(
            "Nobody covers for you as lead of {led}, so its ladder's lead step still comes to you; name a cover \
             with `/away until {last} cover=<person>`.",
        ),
        None => "Meanwhile stall reminders meant for you go to your lead or teammates.".to_string(),
    };
    // A cover named earlier and no longer needed hears that it is over.
    if let Some(previous) = previous.filter(|_| !same_cover) {
        let now_covers = cover.map_or_else(|| "nobody covers now".to_string(), |c| format!("{} does", c.name));
        let text = format!("{} no longer needs you to cover as lead of {led}: {now_covers}.", who.name);
        intents.push(Intent::message(Recipient::Person(previous.clone()), IntentKind::Notice, text));
    }
    let reply =
        format!("You are away through {through}{because}. {meanwhile}{owned_list} `/away back` when you return.");
    Ok(Leaving { until, reply, intents })
}
