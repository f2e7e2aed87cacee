//! People away (holiday, sick leave): `/away until 2026-12-04 holiday`. Stall checks route the
//! reminders meant for someone away to whoever can act instead, and when someone leaves owning
//! handoffs, the leads of the functions those handoffs are received by are told, so nothing waits
//! on a person who is not there.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;

use crate::decide::{Ctx, Rejection};
use crate::handoff::{Handoff, Intent, IntentKind, Recipient};
use crate::model::{OperatingModel, PersonId};

/// The furthest ahead an absence may be set.
const LONGEST: Duration = Duration::days(366);

/// Who is away, and until when (exclusive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Away(BTreeMap<PersonId, DateTime<Utc>>);

impl Away {
    /// From `(person, until)` pairs.
    pub fn new(entries: impl IntoIterator<Item = (PersonId, DateTime<Utc>)>) -> Away {
        Away(entries.into_iter().collect())
    }

    /// Until when `person` is away at `now`, if they are.
    pub fn until(&self, person: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.get(person).copied().filter(|until| *until > now)
    }

    /// The last day `person` is away at `now`, in words (`Fri 04 Dec`), if they are away.
    pub fn through(&self, model: &OperatingModel, person: &str, now: DateTime<Utc>) -> Option<String> {
        self.until(person, now).map(|until| last_day(model, person, until))
    }

    /// Everyone away at `now`, with the end of their absence.
    pub fn people(&self, now: DateTime<Utc>) -> impl Iterator<Item = (&str, DateTime<Utc>)> {
        self.0.iter().filter(move |(_, until)| **until > now).map(|(p, until)| (p.as_str(), *until))
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

/// `person` is away through `last` (a date in their zone) for `reason`; `owned` are the open
/// handoffs they own.
pub fn leave(
    model: &OperatingModel,
    person: &str,
    last: NaiveDate,
    reason: &str,
    owned: &[Handoff],
    now: DateTime<Utc>,
) -> Result<Leaving, Rejection> {
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
    // One notice per lead, listing that lead's handoffs.
    let mut by_lead: BTreeMap<&str, Vec<&Handoff>> = BTreeMap::new();
    for h in owned {
        if let Ok(ctx) = Ctx::new(model, &h.seam)
            && ctx.to.lead != person
        {
            by_lead.entry(ctx.to.lead.as_str()).or_default().push(h);
        }
    }
    let leads: Vec<&str> = by_lead.keys().map(|lead| model.name_of(lead)).collect();
    let intents = by_lead
        .into_iter()
        .map(|(lead, handoffs)| {
            let list: Vec<String> = handoffs.iter().map(|h| format!("{} \"{}\"", h.label(), h.title)).collect();
            let which = match handoffs.as_slice() {
                [one] => one.label(),
                _ => "H-<n>".to_string(),
            };
            let text = format!(
                "{} is away through {through}{because} and owns {}. Reassign with `/handoff reassign {which} <person>`; \
                 meanwhile their stall reminders come to you.",
                who.name,
                list.join(", ")
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
    let reply = format!(
        "You are away through {through}{because}. Meanwhile stall reminders meant for you go to your lead or teammates.{owned_list} \
         `/away back` when you return."
    );
    Ok(Leaving { until, reply, intents })
}
