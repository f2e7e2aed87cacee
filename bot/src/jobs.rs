//! Periodic jobs from the operating model's cron schedules: the weekly stall digest, daily
//! "still open?" nudges (to owners, and to requesters of work returned to them), start-of-business
//! catch-up.
//!
//! Each scheduled instant runs once across replicas: its messages are queued in the same
//! transaction that records (job, instant), whose key refuses a second run. After downtime only
//! the latest missed instant runs, so a restart does not replay a week of digests.

use std::collections::{BTreeMap, HashMap};

use baton_core::history::{Filter, Viewer};
use baton_core::model::{Job, JobKind, RiskTier};
use baton_core::{Ctx, Handoff, Intent, IntentKind, Recipient, State, render};
use chrono::{DateTime, Duration, Utc};

use crate::app::App;
use crate::report;

/// How long without a change before an owner is asked "still open?".
const STILL_OPEN_AFTER: Duration = Duration::days(1);

/// Upper bound on schedule instants walked in one tick (a per-second cron after a long outage).
const MAX_INSTANTS: usize = 100_000;

/// Remembers, per job, the instant up to which it has been considered.
#[derive(Debug, Default)]
pub struct JobClock {
    seen: HashMap<String, DateTime<Utc>>,
}

impl JobClock {
    /// Runs every job whose schedule passed since the last tick; returns how many ran here.
    pub async fn tick(&mut self, app: &App, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut ran = 0;
        for job in &app.model.jobs {
            let since = match self.seen.get(&job.name) {
                Some(t) => *t,
                // First tick: resume after the last recorded run; a new job starts from now.
                None => app.store.last_job_run(&job.name).await?.unwrap_or(now),
            };
            if let Some(at) = latest_due(job, since, now) {
                let intents = messages(app, job, now).await?;
                if app.store.record_job_run(&job.name, at, now, &intents).await? {
                    tracing::info!(job = %job.name, scheduled = %at, messages = intents.len(), "periodic job ran");
                    ran += 1;
                }
            }
            self.seen.insert(job.name.clone(), now);
        }
        Ok(ran)
    }

    /// The next instant any job falls due after `now`.
    pub fn next_due(&self, app: &App, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        app.model.jobs.iter().filter_map(|j| j.next_after(now)).min()
    }
}

/// The latest scheduled instant in `(since, now]`, skipping older missed ones.
pub fn latest_due(job: &Job, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut latest = None;
    let mut t = since;
    for _ in 0..MAX_INSTANTS {
        match job.next_after(t) {
            Some(next) if next <= now => {
                latest = Some(next);
                t = next;
            }
            _ => break,
        }
    }
    latest
}

/// The messages a job sends at `now`.
pub async fn messages(app: &App, job: &Job, now: DateTime<Utc>) -> anyhow::Result<Vec<Intent>> {
    let model = &app.model;
    let to_person = |person: &str, text: String| Intent {
        not_before: model.quiet_until(person, RiskTier::Reversible, now),
        ..Intent::message(Recipient::Person(person.to_string()), IntentKind::Digest, text)
    };
    // What the function sent that was returned to its requester more than a day ago and waits on them.
    let waiting_on_requester = |function: &str| {
        let sent = model.seams_out_of(function);
        async move {
            let mut returned = app.store.unclosed_in_seams(&sent).await?;
            returned.retain(|h| h.state == State::Returned && h.updated_at <= now - STILL_OPEN_AFTER);
            anyhow::Ok(returned)
        }
    };
    let returned_line = |h: &Handoff| {
        let reason = h.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        let when = Ctx::new(model, &h.seam).map(|c| render::time(c.cal(), h.updated_at, now)).unwrap_or_default();
        // Its requester gone, the lead answers it (`/handoff resubmit`).
        let gone = match model.person(&h.requester) {
            None => format!(" · {}, no longer in the operating model", h.requester),
            Some(_) => String::new(),
        };
        format!("• {} \"{}\" ({}) · returned {when}{reason}{gone}", h.label(), h.title, h.seam)
    };
    let line = |h: &Handoff| {
        let due = Ctx::new(model, &h.seam).map(|c| render::due_line(&c, h, now)).unwrap_or_default();
        let stalled = h.stall.as_ref().map(|s| format!(" · STALLED: {}", s.kind.describe())).unwrap_or_default();
        // A part of a line, which may go on (` · Eli Ek away through …`): no full stop.
        let due = match due.trim_end_matches('.') {
            "" => String::new(),
            due => format!(" · {due}"),
        };
        format!("{} \"{}\" ({}) · {}{stalled}{due}", h.label(), h.title, h.seam, h.state)
    };
    let mut out = Vec::new();
    match job.kind {
        JobKind::StallDigest => {
            // The last week's numbers against the week before, and the chart of the last 12 weeks.
            let week = Filter { days: 7, ..Filter::default() };
            let report = report::summary(&app.store, model, Viewer::Operator, &week, now).await?;
            let quarter = Filter { days: 84, ..Filter::default() };
            let png = app.chart_png(Viewer::Operator, &quarter, now).await?;
            let text = match png {
                Some(_) => format!("Weekly stall digest\n{}", report.text()),
                None => format!(
                    "Weekly stall digest\n{}\nNo stall was unblocked in the last 12 weeks, so no chart this week.",
                    report.text()
                ),
            };
            let recipients: Vec<Recipient> = match &model.architects_channel {
                Some(c) => vec![Recipient::SlackChannel(c.clone())],
                None => model
                    .people
                    .values()
                    .filter(|p| p.has_role(baton_core::model::Role::Architect))
                    .map(|p| Recipient::Person(p.id.clone()))
                    .collect(),
            };
            for to in recipients {
                let chart = png.as_deref().map(|png| crate::app::chart_message(&quarter, png, to.clone()));
                match &to {
                    Recipient::Person(p) => {
                        out.push(to_person(p, text.clone()));
                        let quiet = model.quiet_until(p, RiskTier::Reversible, now);
                        out.extend(chart.map(|chart| Intent { not_before: quiet, ..chart }));
                    }
                    _ => {
                        out.push(Intent::message(to, IntentKind::Digest, text.clone()));
                        out.extend(chart);
                    }
                }
            }
        }
        JobKind::StillOpen => {
            // Nobody away is nudged; their leads see those handoffs in the morning catch-up.
            let away = app.store.absences(&app.model, now).await?;
            let mut by_owner: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for f in model.functions.values().filter(|f| job.covers(&f.id)) {
                for h in app.store.open_in_seams(&model.seams_into(&f.id)).await? {
                    if let Some(owner) = &h.owner
                        && h.updated_at <= now - STILL_OPEN_AFTER
                        && h.snooze.is_none()
                        && !away.is_away(owner, now)
                    {
                        by_owner.entry(owner.clone()).or_default().push(format!("• {}", line(&h)));
                    }
                }
            }
            for (owner, lines) in by_owner {
                let text = format!(
                    "Still open? No change for a day on:\n{}\nPost progress with `/handoff update H-<n> <note>`, \
                     finish with `/handoff done H-<n>`, or hand it back with `/handoff return H-<n> <reason>`.",
                    lines.join("\n")
                );
                out.push(to_person(&owner, text));
            }
            // The ball is in the requester's court: returned work is asked about too.
            let mut by_requester: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for f in model.functions.values().filter(|f| job.covers(&f.id)) {
                for h in waiting_on_requester(&f.id).await? {
                    if !away.is_away(&h.requester, now) {
                        by_requester.entry(h.requester.clone()).or_default().push(returned_line(&h));
                    }
                }
            }
            for (requester, lines) in by_requester {
                let text = format!(
                    "Waiting on you: returned to you and not resubmitted:\n{}\nAnswer with `/handoff resubmit H-<n> \
                     field=value ... [note]`, or call it off with `/handoff cancel H-<n> <reason>`.",
                    lines.join("\n")
                );
                out.push(to_person(&requester, text));
            }
        }
        JobKind::CatchUp => {
            let away = app.store.absences(&app.model, now).await?;
            for f in model.functions.values().filter(|f| job.covers(&f.id)) {
                let open = app.store.open_in_seams(&model.seams_into(&f.id)).await?;
                // Each handoff once (its line says whether it is stalled): what people away or gone
                // own (given to someone away to accept, too), the queue, then the rest that is stalled.
                let owner_out = |h: &Handoff| away.out(model, h.owner.as_deref()?, now);
                let to_accept = |h: &Handoff| matches!(h.state, State::Open | State::Reassigned);
                let queue: Vec<String> = (open.iter())
                    .filter(|h| to_accept(h) && owner_out(h).is_none())
                    .map(|h| format!("• {}", line(h)))
                    .collect();
                let left: Vec<String> =
                    (open.iter()).filter_map(|h| Some(format!("• {} · {}", line(h), owner_out(h)?))).collect();
                let stalled: Vec<String> = (open.iter())
                    .filter(|h| h.stall.is_some() && !to_accept(h) && owner_out(h).is_none())
                    .map(|h| format!("• {}", line(h)))
                    .collect();
                let returned: Vec<String> = waiting_on_requester(&f.id).await?.iter().map(returned_line).collect();
                if queue.is_empty() && stalled.is_empty() && left.is_empty() && returned.is_empty() {
                    continue;
                }
                let mut text = format!("Good morning, {}.", f.name);
                if !queue.is_empty() {
                    text.push_str(&format!("\n{} waiting to be accepted:\n{}", queue.len(), queue.join("\n")));
                }
                if !stalled.is_empty() {
                    text.push_str(&format!("\n{} stalled:\n{}", stalled.len(), stalled.join("\n")));
                }
                if !left.is_empty() {
                    let reassign = "reassign with `/handoff reassign H-<n> <person>`";
                    let n = left.len();
                    text.push_str(&format!("\n{n} owned by people away or gone ({reassign}):\n{}", left.join("\n")));
                }
                if !returned.is_empty() {
                    let n = returned.len();
                    text.push_str(&format!(
                        "\n{n} sent by {} and returned, waiting on its requester:\n{}",
                        f.name,
                        returned.join("\n")
                    ));
                }
                // A lead away who named a cover: the catch-up goes to the cover.
                out.push(to_person(away.acting_lead(f, now), text));
            }
        }
    }
    // No one who left the model is nudged: their leads are told of what waits on them.
    out.retain(|i| model.reaches(&i.to));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::model::JobKind;

    fn job(expr: &str, tz: chrono_tz::Tz) -> Job {
        Job {
            name: "j".into(),
            kind: JobKind::CatchUp,
            schedule: expr.parse().expect("cron"),
            tz,
            functions: Vec::new(),
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn after_downtime_only_the_latest_missed_instant_runs() {
        let j = job("0 0 9 * * Mon-Fri", chrono_tz::America::New_York);
        // Down from Friday 08:00 to Tuesday 10:00 New York: Friday, Monday and Tuesday 09:00 were
        // missed; only Tuesday's runs.
        let since = t("2026-11-27T08:00:00-05:00");
        assert_eq!(latest_due(&j, since, t("2026-12-01T10:00:00-05:00")), Some(t("2026-12-01T09:00:00-05:00")));
        assert_eq!(latest_due(&j, since, t("2026-11-27T08:59:59-05:00")), None);
        // Read in the job's zone across the DST change: 09:00 New York is 14:00 UTC in winter,
        // 13:00 UTC in summer.
        assert_eq!(j.next_after(t("2027-03-12T15:00:00Z")), Some(t("2027-03-15T13:00:00Z")));
    }
}
