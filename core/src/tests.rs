//! Scripted tests of the state machine, authorization, clocks and ladder on the shipped model.

use chrono::{DateTime, Utc};

use crate::away::{Away, Going, Leaving, leave};
use crate::config::{Source, load};
use crate::handoff::*;
use crate::model::{OperatingModel, RiskTier};
use crate::{
    AwayCommand, Command, Ctx, NewHandoff, Rejection, check_with, create, decide, decide_covering, parse,
    record_verdict, render, review,
};

const MODEL: &str = include_str!("../../baton.toml");
pub(crate) const PLAYBOOKS: &[(&str, &str)] = &[
    ("unacknowledged.toml", include_str!("../../playbooks/unacknowledged.toml")),
    ("agent-stalled.toml", include_str!("../../playbooks/agent-stalled.toml")),
    ("ownership-dispute.toml", include_str!("../../playbooks/ownership-dispute.toml")),
    ("missing-information.toml", include_str!("../../playbooks/missing-information.toml")),
    ("approvals-deadlocked.toml", include_str!("../../playbooks/approvals-deadlocked.toml")),
];

fn model() -> OperatingModel {
    let pbs: Vec<Source<'_>> = PLAYBOOKS.iter().map(|(name, text)| Source { name, text }).collect();
    load(Source { name: "baton.toml", text: MODEL }, &pbs).unwrap_or_else(|e| panic!("sample config: {e:?}"))
}

/// `person` goes away through `last`, naming no cover, with nobody else away.
fn going(
    model: &OperatingModel,
    person: &str,
    last: chrono::NaiveDate,
    reason: &str,
    owned: &[Handoff],
    now: DateTime<Utc>,
) -> Result<Leaving, Rejection> {
    leave(model, Going { person, last, reason, cover: None }, owned, &Away::default(), now)
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("test time").with_timezone(&Utc)
}

/// One handoff driven by a script of commands and checks at given times.
struct World {
    model: OperatingModel,
    h: Handoff,
    now: DateTime<Utc>,
    /// Everything produced so far, for assertions.
    log: Vec<Decision>,
    /// Who is away, for the stall checks.
    away: Away,
}

impl World {
    fn new(at: &str, actor: &str, line: &str) -> World {
        let model = model();
        let now = t(at);
        let Ok(Command::New { seam, title, fields }) = parse(line) else { panic!("not a new command: {line}") };
        let d =
            create(&model, 1, NewHandoff { seam: &seam, title: &title, fields: &fields }, actor, Surface::Console, now)
                .unwrap_or_else(|e| panic!("{line}: {e}"));
        World { model, h: d.handoff.clone(), now, log: vec![d], away: Away::default() }
    }

    /// The handoff's seam reviewed by webhook reviewer `qa-bot`, which the bot calls.
    fn webhook_reviewed(mut self) -> World {
        let kind =
            crate::model::ReviewerKind::Webhook { url_env: "QA_BOT_URL".into(), timeout: chrono::Duration::seconds(5) };
        let reviewer = crate::model::Reviewer { id: "qa-bot".into(), version: "7".into(), kind };
        self.model.reviewers.insert("qa-bot".into(), reviewer);
        self.model.seams.get_mut(&self.h.seam).expect("seam").reviewer = Some("qa-bot".into());
        self
    }

    fn at(&mut self, when: &str) -> &mut Self {
        self.now = t(when);
        self
    }

    fn try_run(&mut self, actor: &str, line: &str) -> Result<&Decision, Rejection> {
        let cmd = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let d = decide(&self.model, &self.h, &cmd, actor, Surface::Console, self.now)?;
        self.h = d.handoff.clone();
        self.log.push(d);
        Ok(self.log.last().expect("just pushed"))
    }

    fn run(&mut self, actor: &str, line: &str) -> &Decision {
        match self.try_run(actor, line) {
            Ok(_) => self.log.last().expect("just pushed"),
            Err(e) => panic!("{actor}: {line}: {e}"),
        }
    }

    fn refused(&mut self, actor: &str, line: &str) -> String {
        let before = self.h.clone();
        match self.try_run(actor, line) {
            Ok(d) => panic!("{actor}: {line} was accepted: {}", d.reply),
            Err(e) => {
                assert_eq!(self.h, before, "a refusal changes nothing");
                e.to_string()
            }
        }
    }

    /// Runs the stall check and returns the kinds of the changes it recorded.
    fn check(&mut self) -> Vec<&'static str> {
        let d = check_with(&self.model, &self.h, self.now, &self.away).expect("check");
        self.h = d.handoff.clone();
        let kinds = d.events.iter().map(|e| e.change.kind()).collect();
        self.log.push(d);
        kinds
    }

    /// Runs the stall checks at each of `times`, in order (as the scheduler would).
    fn checks_at(&mut self, times: &[&str]) {
        for at in times {
            self.at(at).check();
        }
    }

    fn last(&self) -> &Decision {
        self.log.last().expect("a decision")
    }

    /// When the stall checks next need to run on the handoff.
    fn next_check(&self) -> Option<DateTime<Utc>> {
        crate::stall::next_check(&Ctx::new(&self.model, &self.h.seam).expect("seam"), &self.h)
    }

    /// Who the last decision told something (cards redrawn aside).
    fn recipients(&self) -> Vec<String> {
        self.last().intents.iter().filter(|i| i.kind != IntentKind::Card).map(|i| format!("{:?}", i.to)).collect()
    }
}

const ACME: &str = r#"/handoff new sales-to-cs "Acme renewal" account=Acme arr=120000 segment=enterprise"#;
const LAUNCH: &str =
    r#"/handoff new marketing-to-eng "Spring launch" launch_date=2027-03-01 brief=https://docs.example/brief"#;

#[test]
fn a_high_stakes_handoff_needs_two_distinct_approvers_who_are_neither_requester_nor_owner() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    assert_eq!(w.h.state, State::Open);
    assert_eq!(w.h.tier, crate::model::RiskTier::HighStakes);
    w.run("ana", "/handoff accept H-1");
    w.run("ana", "/ack H-1");
    let d = w.run("ana", "/handoff update H-1 kickoff booked kickoff=2026-12-03");
    let card = d.intents.iter().find(|i| i.kind == IntentKind::Card && i.to == Recipient::Person("ana".into()));
    assert!(card.expect("the card is redrawn").text.contains("Latest update: kickoff booked"));
    assert_eq!(w.h.fields["kickoff"], "2026-12-03");
    let d = w.run("ana", "/handoff done H-1");
    // The owner can do nothing at the gate: her card has no buttons; the channel's has the approvers'.
    let owners = d.intents.iter().find(|i| i.kind == IntentKind::Card && i.to == Recipient::Person("ana".into()));
    assert_eq!(owners.expect("owner's card").actions, []);
    let channel = d.intents.iter().find(|i| matches!(i.to, Recipient::SlackChannel(_))).expect("channel card");
    assert_eq!(channel.actions, [Action::Approve, Action::Reject, Action::Watch]);
    assert_eq!(w.h.state, State::AwaitingGate);
    assert!(w.refused("rita", "/approve H-1").contains("requester cannot approve"));
    assert!(w.refused("ana", "/approve H-1").contains("owner cannot approve"));
    assert!(w.refused("ben", "/approve H-1").contains("not an approver"));
    let d = w.run("sam", "/approve H-1");
    let channel = d.intents.iter().find(|i| matches!(i.to, Recipient::SlackChannel(_))).expect("the card is redrawn");
    assert!(channel.text.contains("Approvals: 1 of 2 (Sam Sato)"), "{}", channel.text);
    assert_eq!(w.h.state, State::AwaitingGate, "one approval is not enough");
    assert!(w.refused("sam", "/approve H-1").contains("already approved"));
    w.run("carla", "/approve H-1");
    assert_eq!(w.h.state, State::Done);
    assert!(w.refused("vic", "/approve H-1").ends_with("is closed: nothing waits for approval"));
    let kinds: Vec<&str> = w.log.iter().flat_map(|d| d.events.iter().map(|e| e.change.kind())).collect();
    assert_eq!(
        kinds,
        ["created", "accepted", "acknowledged", "updated", "submitted_for_gate", "approved", "approved", "done"]
    );
}

#[test]
fn only_the_right_people_may_act_and_refusals_say_who_can() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    assert!(w.refused("max", "/handoff accept H-1").contains("only members of Customer Success (lead: Carla Costa)"));
    assert!(w.refused("ana", "/ack H-1").contains("nobody owns it yet"));
    w.run("ana", "/handoff accept H-1");
    assert!(w.refused("ben", "/handoff update H-1 hi").contains("only the owner of H-1, Ana Alves"));
    assert!(w.refused("ben", "/handoff accept H-1").contains("Ana Alves owns it"));
    assert!(w.refused("ana", "/approve H-1").contains("waiting at the gate"));
    assert!(w.refused("ana", "/handoff resubmit H-1 arr=1").contains("only the requester"));
    assert!(w.refused("nobody", "/ack H-1").contains("not in Baton's operating model"));
    // The lead may reassign within the function; the new owner must accept.
    w.run("carla", "/handoff reassign H-1 ben");
    assert_eq!((w.h.state, w.h.owner.as_deref()), (State::Reassigned, Some("ben")));
    assert!(w.refused("carla", "/handoff reassign H-1 max").contains("only members of Customer Success"));
    w.run("ben", "/handoff accept H-1");
    assert_eq!(w.h.state, State::Accepted);
}

#[test]
fn creation_checks_the_contract_and_reports_every_field_problem() {
    let model = model();
    let now = t("2026-11-30T09:00:00-05:00");
    let new_acme = |actor: &str, pairs: &[(&str, &str)]| {
        let fields: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let new = NewHandoff { seam: "sales-to-cs", title: "x", fields: &fields };
        create(&model, 1, new, actor, Surface::Console, now).expect_err("refused")
    };
    let err = new_acme("rita", &[("arr", "lots"), ("segment", "huge"), ("colour", "red")]).to_string();
    for expected in [
        "`lots` is not a number",
        "`huge` is not one of: smb, mid-market, enterprise",
        "no field `colour`",
        "`account` is required (CRM account name)",
    ] {
        assert!(err.contains(expected), "{expected:?} missing from {err}");
    }
    // A missing choice says what to choose from.
    let err = new_acme("rita", &[("account", "A"), ("arr", "1")]).to_string();
    assert!(err.contains("`segment` is required: add segment=..., one of smb, mid-market, enterprise"), "{err}");
    let err = new_acme("ana", &[("account", "A"), ("arr", "1"), ("segment", "smb")]);
    assert!(err.to_string().contains("come from Sales"));
    // Lowering the tier is named with the contract's other problems.
    let err = new_acme("rita", &[("arr", "x"), ("segment", "smb"), ("tier", "reversible")]).to_string();
    assert!(
        err.contains("• tier: sales-to-cs handoffs are at least high-stakes; `tier=reversible` would lower the gate: leave tier out, or raise it"),
        "{err}"
    );
    assert!(err.contains("• arr: `x` is not a number") && err.contains("• account: `account` is required"), "{err}");
    let err = create(&model, 1, NewHandoff { seam: "nope", title: "x", fields: &[] }, "rita", Surface::Console, now)
        .expect_err("unknown seam");
    assert!(err.to_string().contains("seams: eng-to-ops, marketing-to-eng, sales-to-cs"));

    // Every seam also takes a link to where the work came from, checked as a link.
    let err = new_acme("rita", &[("account", "A"), ("arr", "1"), ("segment", "smb"), ("source", "the thread")]);
    assert!(err.to_string().contains("`the thread` is not a link"), "{err}");
    let fields = [("account", "A"), ("arr", "1"), ("segment", "smb"), ("source", "https://x.slack.com/archives/C1/p1")]
        .map(|(k, v)| (k.to_string(), v.to_string()));
    let new = NewHandoff { seam: "sales-to-cs", title: "x", fields: &fields };
    let d = create(&model, 1, new, "rita", Surface::Console, now).expect("created");
    assert_eq!(d.handoff.fields["source"], "https://x.slack.com/archives/C1/p1");
    let ctx = Ctx::new(&model, "sales-to-cs").expect("seam");
    assert!(render::card(&ctx, &d.handoff, now).contains("source: https://x.slack.com/archives/C1/p1"));

    // A title is one line of at most 200 characters, a value at most 2,000: cards, threads and
    // forms stay readable (Slack's inputs take 3,000 at most).
    let long = "a".repeat(201);
    let fields = [("account", "b".repeat(2001)), ("arr", "1".into()), ("segment", "smb".into())]
        .map(|(k, v)| (k.to_string(), v));
    let err = create(
        &model,
        1,
        NewHandoff { seam: "sales-to-cs", title: &long, fields: &fields },
        "rita",
        Surface::Console,
        now,
    )
    .expect_err("too long")
    .to_string();
    assert!(err.contains("title: at most 200 characters (this one has 201)"), "{err}");
    assert!(err.contains("account: at most 2000 characters (this one has 2001)"), "{err}");
    let ok = "a".repeat(200);
    let d = create(
        &model,
        1,
        NewHandoff { seam: "sales-to-cs", title: &ok, fields: &fields[1..] },
        "rita",
        Surface::Console,
        now,
    );
    assert!(d.is_err(), "account is still required");
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    let refused = w.refused("rita", &format!("/handoff edit H-1 title=\"{long}\""));
    assert!(refused.contains("at most 200 characters"), "{refused}");
    let refused = w.refused("rita", &format!("/handoff edit H-1 account={}", "c".repeat(2001)));
    assert!(refused.contains("at most 2000 characters"), "{refused}");
}

#[test]
fn the_ladder_climbs_in_business_hours_and_closes_with_time_to_unblock() {
    // Monday 09:00 New York; accept target 4h; ladder 0h remind, 2h lead, 4h channel, 8h convene.
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    assert_eq!(w.last().next_check, Some(t("2026-11-30T13:00:00-05:00")));
    assert!(w.at("2026-11-30T12:59:00-05:00").check().is_empty());
    assert_eq!(w.at("2026-11-30T13:00:00-05:00").check(), ["stall_opened", "ladder_step"]);
    // Before acceptance the reminder goes to the whole receiving queue.
    assert_eq!(w.recipients(), [r#"Person("ana")"#, r#"Person("ben")"#, r#"Person("carla")"#]);
    assert_eq!(w.last().next_check, Some(t("2026-11-30T15:00:00-05:00")));
    assert_eq!(w.at("2026-11-30T15:00:00-05:00").check(), ["ladder_step"]);
    assert_eq!(w.recipients(), [r#"Person("carla")"#]);
    assert_eq!(w.at("2026-11-30T17:00:00-05:00").check(), ["ladder_step"]);
    assert_eq!(w.recipients(), [r##"SlackChannel("#cs-handoffs")"##]);
    // 8h of business time after Monday 13:00 is Tuesday 13:00 (the night does not count).
    assert_eq!(w.last().next_check, Some(t("2026-12-01T13:00:00-05:00")));
    assert!(w.at("2026-12-01T12:00:00-05:00").check().is_empty());
    assert_eq!(w.at("2026-12-01T13:00:00-05:00").check(), ["ladder_step"]);
    assert!(matches!(w.last().intents[0].kind, IntentKind::Recalibration { .. }));
    // The playbook's own opening template, then its agenda; participants are mentioned.
    let opening = &w.last().intents[0];
    assert!(
        opening
            .text
            .starts_with("Recalibration convened for H-1 \"Acme renewal\" (sales-to-cs, Unacknowledged handoff)"),
        "{}",
        opening.text
    );
    assert!(opening.text.contains("Carla Costa convenes, with Rita Reyes, Sam Sato. Timebox 30m."), "{}", opening.text);
    assert!(opening.text.contains("1. Did the receiving function see the handoff?"));
    assert_eq!(opening.mentions, ["carla", "rita", "sam"]);
    // The convener is reminded in the thread when the 30-minute timebox runs out, once.
    assert_eq!(w.last().next_check, Some(t("2026-12-01T13:30:00-05:00")));
    assert_eq!(w.at("2026-12-01T13:30:00-05:00").check(), ["timebox_reminded"]);
    assert_eq!(w.last().intents[0].kind, IntentKind::Thread);
    assert_eq!(w.last().intents[0].mentions, ["carla"]);
    assert!(w.last().intents[0].text.contains("timebox for the recalibration of H-1"));
    assert!(w.at("2026-12-01T16:00:00-05:00").check().is_empty(), "each step fires once");
    w.run("ana", "/handoff accept H-1");
    let closed = w.last().events.iter().find_map(|e| match e.change {
        Change::StallClosed { unblock_secs, .. } => Some(unblock_secs),
        _ => None,
    });
    assert_eq!(closed, Some(27 * 3600), "Monday 13:00 to Tuesday 16:00 wall time");
    assert_eq!(w.last().episodes[0].closed_at, Some(t("2026-12-01T16:00:00-05:00")));
    assert!(w.h.stall.is_none());
}

#[test]
fn a_late_check_dates_the_episode_at_the_breach_and_sends_only_the_highest_due_step() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    // Baton was down from 12:00 to 16:00: the reminder (13:00) and the lead's step (15:00) are both due.
    assert_eq!(w.at("2026-11-30T16:00:00-05:00").check(), ["stall_opened", "ladder_step", "ladder_step"]);
    assert_eq!(w.h.stall.as_ref().map(|s| s.opened_at), Some(t("2026-11-30T13:00:00-05:00")));
    let steps: Vec<_> = w.last().fired.iter().map(|f| (f.step, f.skipped)).collect();
    assert_eq!(steps, [(0, true), (1, false)], "the reminder is recorded as skipped, never sent later");
    assert_eq!(w.recipients(), [r#"Person("carla")"#], "only the lead hears, once");
    assert!(w.at("2026-11-30T16:30:00-05:00").check().is_empty());
    // The next step is still measured from the breach: 4h after 13:00 is 17:00.
    assert_eq!(w.last().next_check, Some(t("2026-11-30T17:00:00-05:00")));
}

#[test]
fn direct_messages_wait_for_the_recipients_working_hours_unless_the_tier_is_loud() {
    // Mia (marketing, London 09:00-17:30) hands a launch to engineering (Berlin 09:00-18:00).
    let mut w = World::new("2026-11-30T10:00:00+00:00", "mia", LAUNCH);
    // Eli accepts at 09:05 Berlin, which is 08:05 in London: Mia's notice waits for 09:00 London.
    w.at("2026-12-01T09:05:00+01:00").run("eli", "/handoff accept H-1");
    let held: Vec<_> = w.last().intents.iter().filter(|i| i.to == Recipient::Person("mia".into())).collect();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].not_before, Some(t("2026-12-01T09:00:00+00:00")));
    // Channel cards are not held.
    assert!(
        w.last().intents.iter().filter(|i| matches!(i.to, Recipient::SlackChannel(_))).all(|i| i.not_before.is_none())
    );
    // Inside her hours, nothing waits.
    w.at("2026-12-01T11:00:00+01:00").run("eli", "/handoff update H-1 spec read, starting");
    assert!(w.last().intents.iter().all(|i| i.not_before.is_none()));
    // A tier configured to ping at any hour is never held.
    w.model.loud_tiers.push(crate::model::RiskTier::Reversible);
    w.at("2026-12-01T20:00:00+01:00").run("eli", "/handoff update H-1 half way");
    assert!(w.last().intents.iter().any(|i| i.to == Recipient::Person("mia".into())));
    assert!(w.last().intents.iter().all(|i| i.not_before.is_none()));
}

#[test]
fn holidays_and_weekends_do_not_count_towards_targets() {
    // Wednesday before Thanksgiving 16:00: 1h Wednesday, Thursday is a holiday, 3h on Friday.
    let w = World::new("2026-11-25T16:00:00-05:00", "rita", ACME);
    assert_eq!(w.last().next_check, Some(t("2026-11-27T12:00:00-05:00")));
    // Engineering in Berlin across the spring DST change (2027-03-28): Friday 16:00 CET + 4h
    // is Monday 11:00 CEST.
    let w = World::new("2027-03-26T16:00:00+01:00", "mia", LAUNCH);
    assert_eq!(w.last().next_check, Some(t("2027-03-29T11:00:00+02:00")));
}

#[test]
fn a_snooze_pauses_clocks_and_ladder_and_ends_on_time() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.at("2026-11-30T10:00:00-05:00").run("ana", "/handoff accept H-1");
    // Update target 8h: due Tuesday 10:00. Snooze for 3h at 11:00 (one business hour used).
    w.at("2026-11-30T11:00:00-05:00").run("ana", "/snooze H-1 3h waiting for the customer's legal team");
    assert!(!w.last().intents.iter().any(|i| i.kind == IntentKind::Notice), "the owner snoozing is told nothing");
    assert_eq!(w.last().next_check, Some(t("2026-11-30T14:00:00-05:00")), "the snooze end is checked");
    assert_eq!(w.at("2026-11-30T14:00:00-05:00").check(), ["snooze_ended"]);
    assert_eq!(w.recipients(), [r#"Person("ana")"#]);
    assert_eq!(w.last().intents[0].text, r#"Your snooze on H-1 "Acme renewal" is over; its clocks are running again."#);
    assert!(w.h.snooze.is_none());
    // 1h banked + 7h from 14:00: Monday 14-17 (3h) and Tuesday 9-13 (4h).
    assert_eq!(w.last().next_check, Some(t("2026-12-01T13:00:00-05:00")));
    assert!(w.refused("ben", "/snooze H-1 1h x").contains("only its owner, Ana Alves, or Carla Costa"));
    assert!(w.refused("ana", "/snooze H-1 20000h x").contains("between 1 minute and 14 days"));
    assert!(w.refused("ana", "/snooze H-1 15d x").ends_with("`15d` is outside that"), "said as typed, not as 360h");
    assert!(w.refused("ana", "/snooze H-1 14d1m x").ends_with("`14d1m` is outside that"));
    // The lead who snoozes it hears when it ends too; an owner away does not.
    w.at("2026-11-30T15:00:00-05:00").run("carla", "/snooze H-1 1h waiting on legal");
    let told: Vec<&str> = (w.last().intents.iter())
        .filter(|i| i.to == Recipient::Person("ana".into()) && i.kind == IntentKind::Notice)
        .map(|i| i.text.as_str())
        .collect();
    assert_eq!(told, [r#"H-1 "Acme renewal" was snoozed by Carla Costa until Mon 30 Nov 16:00 EST: waiting on legal"#]);
    let friday = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).expect("date");
    w.away = Away::new([("ana".to_string(), going(&w.model, "ana", friday, "", &[], w.now).expect("away").until)]);
    assert_eq!(w.at("2026-11-30T16:00:00-05:00").check(), ["snooze_ended"]);
    assert_eq!(w.recipients(), [r#"Person("carla")"#]);
    assert_eq!(
        w.last().intents[0].text,
        r#"The snooze you set on H-1 "Acme renewal" is over; its clocks are running again."#
    );
}

#[test]
fn the_end_of_a_snooze_set_by_the_lead_tells_the_owner_whose_it_was() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("carla", "/snooze H-1 1h waiting on legal");
    assert_eq!(w.at("2026-11-30T10:00:00-05:00").check(), ["snooze_ended"]);
    let notices = w.last().intents.iter().filter(|i| i.kind == IntentKind::Notice);
    let texts: Vec<(&Recipient, &str)> = notices.map(|i| (&i.to, i.text.as_str())).collect();
    assert_eq!(
        texts,
        [
            (
                &Recipient::Person("ana".into()),
                r#"The snooze Carla Costa set on H-1 "Acme renewal" is over; its clocks are running again."#
            ),
            (
                &Recipient::Person("carla".into()),
                r#"The snooze you set on H-1 "Acme renewal" is over; its clocks are running again."#
            ),
        ]
    );
}

#[test]
fn returning_to_the_requester_pauses_clocks_until_resubmission() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.at("2026-11-30T10:00:00-05:00").run("ana", "/handoff return H-1 which contract is this?");
    assert_eq!(w.h.state, State::Returned);
    assert_eq!(w.last().next_check, None, "nothing is due while it waits on the requester");
    // The receiving side is told where it is, not to accept what cannot be accepted now.
    let refusal = w.refused("ana", "/ack H-1");
    assert_eq!(refusal, "H-1 is returned: it is back with its requester, Rita Reyes, until they resubmit it");
    assert!(
        w.last().intents.iter().any(|i| i.to == Recipient::Person("rita".into()) && i.text.contains("which contract"))
    );
    // Two days later the requester answers: the accept clock restarts, time to done resumes.
    w.at("2026-12-02T10:00:00-05:00")
        .run("rita", "/handoff resubmit H-1 crm=https://crm.example/acme contract attached");
    assert_eq!(w.h.state, State::Open);
    assert_eq!(w.h.fields["crm"], "https://crm.example/acme");
    assert_eq!(w.last().next_check, Some(t("2026-12-02T14:00:00-05:00")));
}

#[test]
fn the_requester_corrects_a_handoff_and_its_owner_is_told_what_changed() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.at("2026-11-30T10:00:00-05:00").run("ana", "/handoff accept H-1");
    let clocks = (w.h.phase_clock.clone(), w.h.total_clock.clone());
    let d = w
        .at("2026-11-30T11:00:00-05:00")
        .run("rita", r#"/handoff edit H-1 arr=150,000 kickoff=2026-12-07 title="Acme renewal 2027" the signed figure"#);
    assert_eq!(
        d.reply,
        r#"H-1 changed: title "Acme renewal" → "Acme renewal 2027"; arr 120000 → 150000; kickoff 2026-12-07 (added)."#
    );
    let owner = d.intents.iter().find(|i| i.to == Recipient::Person("ana".into()) && i.kind == IntentKind::Notice);
    let owner = owner.expect("the owner is told");
    assert!(owner.text.starts_with(r#"H-1 "Acme renewal 2027" was changed by Rita Reyes: title"#), "{}", owner.text);
    assert!(owner.text.ends_with("\nthe signed figure"), "{}", owner.text);
    assert!(d.intents.iter().any(|i| i.kind == IntentKind::Card), "the card is redrawn");
    assert!(!d.intents.iter().any(|i| i.to == Recipient::Person("rita".into())), "not the one who edited");
    assert_eq!(d.events.iter().map(|e| e.change.kind()).collect::<Vec<_>>(), ["edited"]);
    assert_eq!((w.h.title.as_str(), w.h.fields["arr"].as_str()), ("Acme renewal 2027", "150000"));
    assert_eq!((w.h.state, w.h.phase_clock.clone(), w.h.total_clock.clone()), (State::Accepted, clocks.0, clocks.1));
    // Removing an optional field; the sending lead may edit too, and the requester is told.
    let d = w.run("sam", "/handoff edit H-1 kickoff=");
    assert_eq!(d.reply, "H-1 changed: kickoff 2026-12-07 (removed).");
    assert!(d.intents.iter().any(|i| i.to == Recipient::Person("rita".into())));
    assert!(!w.h.fields.contains_key("kickoff"));
    // Every problem gets an answer that says what to do.
    assert_eq!(w.refused("ana", "/handoff edit H-1 arr=1"), "only the requester of H-1, Rita Reyes, can edit it");
    assert!(w.refused("rita", "/handoff edit H-1 arr=lots").contains("`lots` is not a number"));
    assert!(w.refused("rita", "/handoff edit H-1 account=").contains("`account` is required"));
    assert!(w.refused("rita", "/handoff edit H-1 colour=red").contains("has no field `colour`"));
    let twice = r#"/handoff new sales-to-cs "B" account=B arr=1 segment=smb tier=high-stakes tier=high-stakes"#;
    let Ok(Command::New { seam, title, fields }) = parse(twice) else { panic!("parsed") };
    let refused = crate::admit(
        &w.model,
        NewHandoff { seam: &seam, title: &title, fields: &fields },
        "rita",
        Surface::Console,
        w.now,
    );
    assert!(refused.is_err_and(|e| e.to_string().contains("`tier` is given twice")));
    assert_eq!(
        w.refused("rita", "/handoff edit H-1 arr=5 segment=smb arr=6 arr=7"),
        "the handoff's fields need fixing:\n• arr: `arr` is given twice (`5`, then `6`): give it once"
    );
    assert!(w.refused("rita", r#"/handoff edit H-1 title="""#).contains("give the handoff a title"));
    assert_eq!(w.refused("rita", "/handoff edit H-1 arr=150000"), "nothing to change: H-1 already holds that");
    assert!(parse("/handoff edit H-1 just words").is_err_and(|e| e.message.contains("say what to change")));
    // A returned handoff is changed by resubmitting it; one at the gate is judged as it stands.
    w.run("ana", "/handoff return H-1 which contract?");
    assert!(w.refused("rita", "/handoff edit H-1 arr=1").contains("`/handoff resubmit H-1 field=value ...`"));
    // Resubmitted with nothing changed and nothing said, it would only come back: refused.
    assert_eq!(
        w.refused("rita", "/handoff resubmit H-1"),
        "nothing to change: it was returned because: which contract?; answer with the fields that change or a note \
         saying what changed: `/handoff resubmit H-1 [field=value ...] <what changed>`"
    );
    w.run("rita", "/handoff resubmit H-1 contract attached");
    w.run("ana", "/ack H-1");
    w.run("ana", "/handoff done H-1");
    assert!(w.refused("rita", "/handoff edit H-1 arr=1").contains("the gate judges it as it stands"));
    let mut w = World::new("2026-12-01T09:00:00+01:00", "mia", LAUNCH).webhook_reviewed();
    w.run("eli", "/handoff accept H-1");
    assert_eq!(w.run("eli", "/handoff done H-1").review.as_deref(), Some("qa-bot"));
    let refused = w.refused("mia", "/handoff edit H-1 channel=web");
    assert!(
        refused.ends_with("the automated reviewer judges it as it stands; if it fails, you can edit it then"),
        "{refused}"
    );
}

#[test]
fn a_reassigned_owner_is_told_and_their_card_loses_the_owners_buttons() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    let d = w.run("carla", "/handoff reassign H-1 ben");
    let to_ana: Vec<(&IntentKind, &str, &[Action])> = (d.intents.iter())
        .filter(|i| i.to == Recipient::Person("ana".into()))
        .map(|i| (&i.kind, i.text.as_str(), i.actions.as_slice()))
        .collect();
    assert_eq!(to_ana.len(), 2, "{to_ana:?}");
    assert_eq!(
        to_ana[0],
        (&IntentKind::Notice, "Carla Costa gave H-1 \"Acme renewal\" to Ben Brooks; it is no longer yours.", &[][..])
    );
    assert_eq!((to_ana[1].0, to_ana[1].2), (&IntentKind::Card, &[][..]));
    assert!(to_ana[1].1.contains("Owner: Ben Brooks"), "{}", to_ana[1].1);
    // Handing one's own work on tells nobody it is no longer theirs.
    w.run("ben", "/handoff accept H-1");
    let d = w.run("ben", "/handoff reassign H-1 ana");
    assert!(!d.intents.iter().any(|i| i.to == Recipient::Person("ben".into())), "{:?}", d.intents);
    // The lead taking it over herself.
    let d = w.run("carla", "/handoff reassign H-1 carla");
    assert!(d.reply.starts_with("H-1 is yours once you accept it: `/handoff accept H-1`."), "{}", d.reply);
    let to_ana =
        |kind: IntentKind| d.intents.iter().find(|i| i.to == Recipient::Person("ana".into()) && i.kind == kind);
    let told = to_ana(IntentKind::Notice).expect("Ana is told");
    assert_eq!(told.text, "Carla Costa took H-1 \"Acme renewal\" over; it is no longer yours.");
    // The notice that asked her to accept it is answered first, and loses its buttons.
    let answered = to_ana(IntentKind::Settled).expect("answered");
    assert_eq!(
        answered.text,
        "✓ Answered: Carla Costa (console) took it over (Mon 30 Nov 09:00 EST). Now: reassigned."
    );
    assert!(d.intents.iter().position(|i| i == answered) < d.intents.iter().position(|i| i == told));
    // Giving it to whoever has it already changes nothing (it would have to be accepted again).
    assert_eq!(
        w.refused("carla", "/handoff reassign H-1 carla"),
        "nothing to change: H-1 is already given to you, to accept"
    );
    w.run("carla", "/handoff accept H-1");
    assert_eq!(w.refused("carla", "/handoff reassign H-1 carla"), "nothing to change: you own H-1 already");
    w.run("carla", "/handoff reassign H-1 ben");
    w.run("ben", "/handoff accept H-1");
    assert_eq!(w.refused("carla", "/handoff reassign H-1 ben"), "nothing to change: Ben Brooks owns H-1 already");
}

#[test]
fn work_returned_before_anyone_took_it_is_answered_to_the_receiving_lead() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ben", "/handoff return H-1 which segment?");
    let d = w.run("rita", "/handoff resubmit H-1 segment=mid-market it is mid-market").clone();
    let told = d.intents.iter().find(|i| i.kind == IntentKind::Notice).expect("someone is told");
    assert_eq!(told.to, Recipient::Person("carla".into()), "the lead, accountable for the queue");
    assert_eq!(told.text, "H-1 \"Acme renewal\" was resubmitted by Rita Reyes: it is mid-market");
    // The return notice that asked Rita to resubmit is answered, and loses its *Resubmit*.
    assert_eq!(
        settled(&w),
        [(
            r#"Person("rita")"#.to_string(),
            "✓ Answered: Rita Reyes (console) resubmitted it (segment: mid-market): “it is mid-market” (Mon 30 Nov \
             09:00 EST). Now: open."
                .to_string()
        )]
    );
    assert_eq!(told.actions, [Action::Accept]);
}

#[test]
fn a_person_field_is_shown_by_the_persons_name_and_kept_by_id() {
    let mut w = World::new("2026-11-30T09:00:00+00:00", "mia", &format!("{LAUNCH} tech_contact=@eli"));
    assert_eq!(w.h.fields.get("tech_contact").map(String::as_str), Some("eli"), "stored as the person's id");
    let card = w.last().intents.iter().find(|i| i.kind == IntentKind::Card).expect("card");
    assert!(card.text.contains("launch_date: 2027-03-01 · tech_contact: Eli Ek"), "{}", card.text);
    let model = w.model.clone();
    let ctx = Ctx::new(&model, "marketing-to-eng").expect("ctx");
    let created = crate::activity::line(&ctx, &w.last().events[0], w.now);
    assert!(created.ends_with("tech_contact: Eli Ek)"), "{created}");
    let d = w.run("mia", "/handoff edit H-1 tech_contact=\"Emma Eriksen\"").clone();
    assert_eq!(d.reply, "H-1 changed: tech_contact Eli Ek → Emma Eriksen.");
    assert_eq!(w.h.fields.get("tech_contact").map(String::as_str), Some("emma"), "a full name finds the id");
    let edited = crate::activity::line(&ctx, &d.events[0], w.now);
    assert!(edited.contains("tech_contact: Emma Eriksen"), "{edited}");
}

#[test]
fn a_recorded_new_owner_is_named_in_the_log() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("carla", "/recalibrate H-1");
    let record =
        r#"/handoff record H-1 decision=new-owner new_owner=ben assumption_broke="x" category=capacity missing=y"#;
    let d = w.run("carla", record).clone();
    let model = w.model.clone();
    let ctx = Ctx::new(&model, "sales-to-cs").expect("ctx");
    let artifact = d.events.iter().find(|e| e.change.kind() == "artifact_recorded").expect("the artifact");
    let line = crate::activity::line(&ctx, artifact, w.now);
    assert!(line.contains("new_owner: Ben Brooks"), "{line}");
}

#[test]
fn an_update_says_what_changed_when_it_carries_fields_only_and_an_empty_one_is_refused() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("ana", "/handoff update H-1 kickoff booked");
    let d = w.run("ana", "/handoff update H-1 kickoff=2026-12-03").clone();
    let told = d.intents.iter().find(|i| i.to == Recipient::Person("rita".into())).expect("Rita is told");
    assert_eq!(told.text, "H-1 \"Acme renewal\" update from Ana Alves: kickoff: 2026-12-03");
    assert_eq!(w.h.last_note.as_deref(), Some("kickoff booked"), "the card keeps the latest thing said");
    let ctx = Ctx::new(&w.model, "sales-to-cs").expect("ctx");
    assert!(crate::activity::line(&ctx, &d.events[0], w.now).ends_with("updated its fields (kickoff: 2026-12-03)"));
    let d = w.run("ana", "/handoff update H-1 call moved kickoff=2026-12-04").clone();
    let told = d.intents.iter().find(|i| i.to == Recipient::Person("rita".into())).expect("Rita is told");
    assert_eq!(told.text, "H-1 \"Acme renewal\" update from Ana Alves: call moved (kickoff: 2026-12-04)");
    assert_eq!(
        w.refused("ana", "/handoff update H-1 kickoff=2026-12-04"),
        "nothing to change: H-1 already holds that; say what progress was made: `/handoff update H-1 <note>`"
    );
}

#[test]
fn reversible_work_passes_or_fails_the_versioned_rules_reviewer_in_the_same_decision() {
    let mut w = World::new("2026-11-30T09:00:00+00:00", "mia", LAUNCH);
    w.run("eli", "/handoff accept H-1");
    w.run("eli", "/handoff update H-1 brief moved brief=http://intranet/brief");
    w.run("max", "/handoff watch H-1");
    // The rules are checked as it is marked done: one decision, saved at once, with the verdict.
    let d = w.run("eli", "/handoff done H-1").clone();
    assert_eq!(d.review, None, "nothing left for the bot to call");
    assert_eq!(
        d.reply,
        "H-1 did not pass automated review: the brief must be an https:// link. Fix it and mark it done again."
    );
    assert_eq!(d.handoff.state, State::InProgress);
    let verdict = &d.handoff.verdicts[0];
    assert_eq!(
        (verdict.reviewer.as_str(), verdict.version.as_str(), verdict.pass),
        ("launch-check", "2026-11-01", false)
    );
    let by: Vec<(&str, &str)> = d.events.iter().map(|e| (e.actor.as_str(), e.change.kind())).collect();
    assert_eq!(by, [("eli", "submitted_for_gate"), (BATON, "reviewed")], "the verdict is Baton's");
    let cards: Vec<&Intent> = d.intents.iter().filter(|i| i.kind == IntentKind::Card).collect();
    assert_eq!(cards.len(), 2, "the channel's card and the owner's, each once: {cards:?}");
    assert!(cards.iter().all(|c| c.text.contains("State: in progress")));
    w.run("eli", "/handoff update H-1 fixed brief=https://docs.example/brief");
    let d = w.run("eli", "/handoff done H-1").clone();
    assert_eq!(d.reply, "H-1 passed automated review and is done.");
    assert_eq!(d.handoff.state, State::Done);
    assert_eq!(d.handoff.verdicts.len(), 2);
    let watcher: Vec<&Intent> = d.intents.iter().filter(|i| i.to == Recipient::Person("max".into())).collect();
    assert_eq!(watcher.len(), 1, "a watcher hears the whole of it at once: {watcher:?}");
    assert!(
        watcher[0].text.contains("Eli Ek (console) marked it done")
            && watcher[0].text.contains("Baton closed it as done")
    );
    assert_eq!(d.tallies.iter().filter(|t| t.metric == TallyMetric::Done).count(), 1);

    // A webhook reviewer is called by the bot; its verdict is recorded when it answers.
    let mut w = World::new("2026-11-30T09:00:00+00:00", "mia", LAUNCH).webhook_reviewed();
    w.run("eli", "/handoff accept H-1");
    let d = w.run("eli", "/handoff done H-1").clone();
    assert_eq!((d.review.as_deref(), d.handoff.state), (Some("qa-bot"), State::AwaitingGate));
    let verdict = review::rules(&w.model, &w.h, Some("qa-bot"), w.now);
    let d = record_verdict(
        &w.model,
        &w.h,
        Verdict { pass: false, reasons: vec!["no rollback plan".into()], ..verdict },
        w.now,
    )
    .expect("verdict");
    assert_eq!(d.handoff.state, State::InProgress);
    assert_eq!(d.events.iter().map(|e| e.actor.as_str()).collect::<Vec<_>>(), [BATON]);
    let told = d.intents.iter().find(|i| i.to == Recipient::Person("eli".into()) && i.kind == IntentKind::Notice);
    assert!(told.is_some_and(|i| i.text.contains("no rollback plan")), "{:?}", d.intents);
}

#[test]
fn a_webhook_verdict_that_never_came_is_asked_for_again_and_a_removed_reviewer_gives_way_to_the_rules() {
    let mut w = World::new("2026-11-30T09:00:00+00:00", "mia", LAUNCH).webhook_reviewed();
    w.run("eli", "/handoff accept H-1");
    w.at("2026-11-30T10:00:00Z").run("eli", "/handoff done H-1");
    // Its timeout (5 s) and a minute after the asking, the check asks again.
    let again = t("2026-11-30T10:01:05Z");
    assert_eq!(crate::stall::next_check(&Ctx::new(&w.model, "marketing-to-eng").expect("ctx"), &w.h), Some(again));
    assert!(w.at("2026-11-30T10:01:04Z").check().is_empty());
    assert_eq!(w.at("2026-11-30T10:01:05Z").check(), ["review_asked_again"]);
    assert_eq!(w.last().review.as_deref(), Some("qa-bot"));
    assert_eq!(w.h.review_asked, Some(again), "asked again from now");
    // A reload takes the webhook reviewer off the seam: its rules judge what waits, at once.
    w.model.seams.get_mut("marketing-to-eng").expect("seam").reviewer = Some("launch-check".into());
    assert_eq!(w.at("2026-11-30T10:02:05Z").check(), ["reviewed", "done"]);
    assert_eq!((w.h.state, w.h.review_asked), (State::Done, None));
    assert_eq!(w.h.verdicts[0].reviewer, "launch-check");
}

#[test]
fn an_overdue_stall_is_not_closed_by_a_mere_update() {
    // eng-to-ops: done target 24h of ops time (08:00-20:00 UTC weekdays): Monday 08:00 + 24h = Tuesday 20:00.
    let line = r#"/handoff new eng-to-ops "DB failover" service=db runbook=https://runbooks.example/db"#;
    let mut w = World::new("2026-11-30T08:00:00Z", "eve", line);
    w.run("omar", "/handoff accept H-1");
    for hour in ["T11:00", "T14:00", "T17:00", "T19:59"] {
        w.at(&format!("2026-11-30{hour}:00Z")).run("omar", "/handoff update H-1 still going");
    }
    for hour in ["T09:00", "T12:00", "T15:00", "T18:00"] {
        w.at(&format!("2026-12-01{hour}:00Z")).run("omar", "/handoff update H-1 still going");
    }
    assert_eq!(w.at("2026-12-01T20:00:00Z").check()[0], "stall_opened");
    assert_eq!(w.h.stall.as_ref().map(|s| s.kind), Some(StallKind::Overdue));
    w.at("2026-12-02T09:00:00Z").run("omar", "/handoff update H-1 nearly there");
    assert!(w.h.stall.is_some(), "an update does not make overdue work on time");
    w.run("omar", "/handoff done H-1");
    assert!(w.h.stall.is_some(), "it is still not done until the gate passes");
    w.run("olga", "/approve H-1");
    assert_eq!(w.h.state, State::Done);
    assert!(w.h.stall.is_none());
}

#[test]
fn agents_own_only_agent_ready_work_and_their_reminders_reach_their_supervisor() {
    let mut w = World::new("2026-11-30T09:00:00+00:00", "mia", LAUNCH);
    assert!(w.refused("eve", "/handoff reassign H-1 deploy-bot").contains("only members of Engineering"));
    let line = r#"/handoff new eng-to-ops "Rotate certs" service=edge runbook=https://runbooks.example/certs"#;
    let mut w = World::new("2026-11-30T08:00:00Z", "eve", line);
    w.run("deploy-bot", "/handoff accept H-1");
    w.run("deploy-bot", "/ack H-1");
    // Update target 4h: at 12:00 the stall opens and the reminder goes to the agent and to Omar.
    assert_eq!(w.at("2026-11-30T12:00:00Z").check(), ["stall_opened", "ladder_step"]);
    assert_eq!(w.recipients(), [r#"Person("deploy-bot")"#, r#"Person("omar")"#]);
}

#[test]
fn an_agents_reminder_goes_to_the_receiving_lead_while_its_supervisor_is_away() {
    let text = MODEL.replace(r#"supervisor = "omar""#, r#"supervisor = "olga""#);
    let pbs: Vec<Source<'_>> = PLAYBOOKS.iter().map(|(name, text)| Source { name, text }).collect();
    let line = r#"/handoff new eng-to-ops "Rotate certs" service=edge runbook=https://runbooks.example/certs"#;
    let mut w = World::new("2026-11-30T08:00:00Z", "eve", line);
    w.model = load(Source { name: "baton.toml", text: &text }, &pbs).expect("olga supervises the agent");
    w.run("deploy-bot", "/handoff accept H-1");
    w.run("deploy-bot", "/ack H-1");
    let last = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).expect("date");
    w.away = Away::new([("olga".to_string(), going(&w.model, "olga", last, "", &[], w.now).expect("away").until)]);
    assert_eq!(w.at("2026-11-30T12:00:00Z").check(), ["stall_opened", "ladder_step"]);
    assert_eq!(w.recipients(), [r#"Person("deploy-bot")"#, r#"Person("omar")"#]);
}

#[test]
fn a_seam_that_is_not_agent_ready_refuses_an_agent_owner() {
    let mut model = model();
    if let Some(seam) = model.seams.get_mut("eng-to-ops") {
        seam.mode = crate::model::ExecutionMode::HumanOnly;
    }
    let line = r#"/handoff new eng-to-ops "Rotate certs" service=edge runbook=https://runbooks.example/certs"#;
    let Ok(Command::New { seam, title, fields }) = parse(line) else { panic!("parse") };
    let now = t("2026-11-30T08:00:00Z");
    let d = create(&model, 1, NewHandoff { seam: &seam, title: &title, fields: &fields }, "eve", Surface::Console, now)
        .expect("create");
    let err = decide(&model, &d.handoff, &Command::Accept(1), "deploy-bot", Surface::Console, now).expect_err("agent");
    assert!(err.to_string().contains("agents cannot own"));
    // So the agent's plate does not offer it; Olga's does.
    assert_eq!(crate::decide::waiting_on(&model, &d.handoff, "deploy-bot"), None);
    assert_eq!(crate::decide::waiting_on(&model, &d.handoff, "olga"), Some(crate::decide::Waiting::Acceptance));
    // Nor do the queue's reminders ask it to accept.
    let mut queue =
        World { model: model.clone(), h: d.handoff.clone(), now, log: vec![d.clone()], away: Away::default() };
    queue.at("2026-11-30T10:00:00Z").check();
    assert_eq!(queue.recipients(), [r#"Person("omar")"#, r#"Person("olga")"#]);
    // Nor can a recalibration give it to an agent.
    let mut w = World { model, h: d.handoff.clone(), now, log: vec![d], away: Away::default() };
    w.run("omar", "/recalibrate H-1");
    // The lead is not the one blocked: he asked for it.
    let thread = w.last().intents.iter().find(|i| matches!(i.kind, IntentKind::Recalibration { .. }));
    assert!(thread.is_some_and(|i| i.text.contains("Omar Osei asked for a recalibration of H-1")), "{thread:?}");
    let record =
        r#"/handoff record H-1 decision=new-owner new_owner=deploy-bot assumption_broke="x" category=capacity"#;
    assert!(w.refused("omar", record).contains("agents cannot own"), "{}", w.refused("omar", record));
    assert_eq!(w.h.owner, None);
}

#[test]
fn a_seam_with_its_own_channels_posts_there_instead_of_the_receiving_functions() {
    let mut model = model();
    if let Some(seam) = model.seams.get_mut("sales-to-cs") {
        seam.slack_channel = Some("#cs-enterprise".into());
        seam.discord_channel = Some("1100000000000000009".into());
    }
    let now = t("2026-11-30T09:00:00-05:00");
    let Ok(Command::New { seam, title, fields }) = parse(ACME) else { panic!("parse") };
    let d =
        create(&model, 1, NewHandoff { seam: &seam, title: &title, fields: &fields }, "rita", Surface::Console, now)
            .expect("create");
    let channels: Vec<&Recipient> =
        d.intents.iter().filter(|i| !matches!(i.to, Recipient::Person(_))).map(|i| &i.to).collect();
    assert_eq!(channels, [&Recipient::SlackChannel("#cs-enterprise".into())], "the card, in the seam's channel");
    let mut w = World { model, h: d.handoff.clone(), now, log: vec![d], away: Away::default() };
    // Nobody accepts: the ladder posts in the seam's channel, then convenes in its Discord channel.
    w.checks_at(&["2026-11-30T13:00:00-05:00", "2026-11-30T15:00:00-05:00", "2026-11-30T17:00:00-05:00"]);
    assert_eq!(w.recipients(), [r##"SlackChannel("#cs-enterprise")"##]);
    w.at("2026-12-01T13:00:00-05:00").check();
    assert!(w.recipients().contains(&r#"DiscordChannel("1100000000000000009")"#.to_string()), "{:?}", w.recipients());
    assert!(!w.log.iter().flat_map(|d| &d.intents).any(|i| i.to == Recipient::SlackChannel("#cs-handoffs".into())));
}

#[test]
fn acknowledge_is_offered_until_the_owner_acknowledges_and_again_when_reminded() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    let card = |w: &World| {
        let i = w.last().intents.iter().find(|i| i.kind == IntentKind::Card && i.to == Recipient::Person("ana".into()));
        i.expect("Ana's card").actions.clone()
    };
    w.run("ana", "/handoff accept H-1");
    assert_eq!(card(&w), [Action::Ack, Action::Update, Action::Done, Action::Snooze, Action::Return]);
    w.run("ana", "/ack H-1");
    assert_eq!(card(&w), [Action::Update, Action::Done, Action::Snooze, Action::Return]);
    // Eight working hours without an update: the reminder may be answered with Acknowledge.
    assert_eq!(w.at("2026-12-01T09:00:00-05:00").check(), ["stall_opened", "ladder_step"]);
    let reminder = &w.last().intents[0];
    assert_eq!(reminder.to, Recipient::Person("ana".into()));
    assert_eq!(
        reminder.actions,
        [Action::Ack, Action::Update, Action::Done, Action::Snooze, Action::Return, Action::Blocked]
    );
}

#[test]
fn an_approval_request_is_redrawn_as_the_gate_moves_and_closed_when_it_is_decided() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    // Each approver's request, as last drawn in this decision: its first line and its buttons.
    let request = |w: &World, who: &str| {
        let i = w.last().intents.iter().find(|i| i.kind == IntentKind::Card && i.to == Recipient::Person(who.into()));
        i.map(|i| (i.text.lines().next().unwrap_or("").to_string(), i.actions.clone()))
    };
    w.run("ana", "/handoff accept H-1");
    w.run("ana", "/handoff done H-1");
    let asked =
        "H-1 \"Acme renewal\" is done by Ana Alves and needs your approval (high-stakes tier, 2 approvals needed).";
    for who in ["sam", "carla", "vic"] {
        assert_eq!(request(&w, who), Some((asked.to_string(), vec![Action::Approve, Action::Reject])), "{who}");
    }
    assert!(
        w.last()
            .intents
            .iter()
            .find(|i| i.to == Recipient::Person("sam".into()))
            .expect("sam")
            .text
            .contains("State: awaiting gate")
    );
    // Sam approves: his request says so, without buttons; the others' show who approved.
    w.run("sam", "/approve H-1");
    assert_eq!(
        request(&w, "sam"),
        Some(("You approved H-1 \"Acme renewal\"; it waits for one more approval.".into(), vec![]))
    );
    let more = "H-1 \"Acme renewal\" is done by Ana Alves and needs your approval (high-stakes tier, 2 approvals needed; 1 given).";
    assert_eq!(request(&w, "vic"), Some((more.to_string(), vec![Action::Approve, Action::Reject])));
    assert!(
        w.last()
            .intents
            .iter()
            .any(|i| i.to == Recipient::Person("vic".into()) && i.text.contains("Approvals: 1 of 2 (Sam Sato)"))
    );
    // Carla's approval closes the gate: nobody is left with live buttons.
    w.run("carla", "/approve H-1");
    let done = "H-1 \"Acme renewal\" passed its gate and is done: nothing more is needed from you.";
    assert_eq!(request(&w, "vic"), Some((done.to_string(), vec![])));
    assert_eq!(request(&w, "sam"), Some((done.to_string(), vec![])));
    assert_eq!(request(&w, "carla"), Some((done.to_string(), vec![])));

    // A rejection sends it back to the owner: the requests close too, and come again at the next submission.
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("ana", "/handoff done H-1");
    w.run("vic", "/reject H-1 the ARR is wrong");
    let owner =
        w.last().intents.iter().find(|i| i.to == Recipient::Person("ana".into()) && i.kind == IntentKind::Notice);
    let told = "H-1 \"Acme renewal\" was rejected at the gate by Vic Varga: the ARR is wrong";
    assert_eq!(owner.map(|i| i.text.as_str()), Some(told));
    let back = "H-1 \"Acme renewal\" no longer waits for approval (now in progress): nothing is needed from you.";
    assert_eq!(request(&w, "sam"), Some((back.to_string(), vec![])));
    w.run("ana", "/handoff done H-1");
    assert_eq!(request(&w, "sam"), Some((asked.to_string(), vec![Action::Approve, Action::Reject])));
}

#[test]
fn cards_are_redrawn_when_a_stall_opens_a_snooze_starts_or_ends_and_at_the_reviewers_gate() {
    // The channel's card, as last drawn in this decision, if it was.
    let channel_card = |w: &World| {
        let i = w
            .last()
            .intents
            .iter()
            .find(|i| i.kind == IntentKind::Card && i.to == Recipient::SlackChannel("#cs-handoffs".into()));
        i.map(|i| i.text.clone())
    };
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    // Nobody accepts in time: the card says it is stalled.
    assert_eq!(w.at("2026-11-30T13:00:00-05:00").check(), ["stall_opened", "ladder_step"]);
    let card = channel_card(&w).expect("the card redrawn as the stall opens");
    assert!(card.contains("Stalled: not accepted in time since Mon 30 Nov 13:00 EST"), "{card}");
    // A ladder step alone changes nothing the card shows.
    assert_eq!(w.at("2026-11-30T15:00:00-05:00").check(), ["ladder_step"]);
    assert_eq!(channel_card(&w), None);
    w.run("ana", "/handoff accept H-1");
    w.at("2026-11-30T15:10:00-05:00").run("ana", "/snooze H-1 2h waiting for the signed contract");
    let card = channel_card(&w).expect("the card redrawn with the snooze");
    assert!(card.contains("Snoozed until Mon 30 Nov 17:10 EST: waiting for the signed contract"), "{card}");
    assert!(w.last().intents.iter().any(|i| i.kind == IntentKind::Card && i.to == Recipient::Person("ana".into())));
    // The snooze ends: the card no longer says it is snoozed.
    w.at("2026-11-30T17:10:00-05:00").check();
    let card = channel_card(&w).expect("the card redrawn as the snooze ends");
    assert!(!card.contains("Snoozed"), "{card}");

    // Someone blocked convenes a recalibration: the card says one is under way.
    w.at("2026-11-30T17:20:00-05:00").run("ana", "/recalibrate H-1");
    let card = channel_card(&w).expect("the card redrawn as a recalibration is convened");
    assert!(card.contains("Recalibration under way (missing-information), convened by"), "{card}");

    // At a webhook reviewer's gate the cards say so, and the owner's loses its buttons.
    let mut w = World::new("2026-11-30T09:00:00-05:00", "mia", LAUNCH).webhook_reviewed();
    w.run("eli", "/handoff accept H-1");
    w.run("eli", "/handoff done H-1");
    let owners =
        w.last().intents.iter().find(|i| i.kind == IntentKind::Card && i.to == Recipient::Person("eli".into()));
    let owners = owners.expect("the owner's card redrawn");
    assert!(owners.text.contains("State: awaiting gate") && owners.actions.is_empty(), "{owners:?}");
}

#[test]
fn a_reply_in_the_recalibration_thread_is_kept_with_the_log_and_moves_nothing() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("ana", "/recalibrate H-1");
    let before = w.h.clone();
    let d = crate::discussed(&w.model, &w.h, "rita", " the contract is in the shared drive ", Surface::Slack, w.now)
        .expect("kept");
    assert_eq!(d.events.iter().map(|e| e.change.kind()).collect::<Vec<_>>(), ["discussed"]);
    assert!(d.intents.is_empty(), "nobody is told: they were in the thread");
    assert_eq!(
        (d.handoff.state, &d.handoff.recalibration, &d.handoff.stall),
        (before.state, &before.recalibration, &before.stall)
    );
    let ctx = Ctx::new(&w.model, "sales-to-cs").expect("seam");
    let line = crate::activity::line(&ctx, &d.events[0], w.now);
    assert_eq!(line, "Rita Reyes (Slack) said in the recalibration thread: “the contract is in the shared drive”");
    // Kept after the handoff closes too; a very long reply is cut.
    w.run("rita", "/handoff cancel H-1 lost the deal");
    let long = "x".repeat(crate::decide::DISCUSSED_MAX + 10);
    let d = crate::discussed(&w.model, &w.h, "carla", &long, Surface::Slack, w.now).expect("kept after closing");
    let crate::handoff::Change::Discussed { text } = &d.events[0].change else { panic!("discussed") };
    assert_eq!(text.chars().count(), crate::decide::DISCUSSED_MAX + 1);
    assert!(crate::discussed(&w.model, &w.h, "nobody", "hi", Surface::Slack, w.now).is_err());
}

#[test]
fn a_function_on_discord_alone_gets_its_cards_in_its_discord_channel() {
    let mut w = World::new("2026-11-30T08:00:00Z", "eve", CERTS);
    w.model.functions.get_mut("ops").expect("ops").slack_channel = None;
    let d = create(
        &w.model,
        2,
        NewHandoff {
            seam: "eng-to-ops",
            title: "Rotate keys",
            fields: &[("service".into(), "edge".into()), ("runbook".into(), "https://runbooks.example/keys".into())],
        },
        "eve",
        Surface::Console,
        w.now,
    )
    .expect("create");
    let card = d.intents.iter().find(|i| i.kind == IntentKind::Card).expect("a card");
    assert_eq!(card.to, Recipient::DiscordChannel("1100000000000000002".into()));
    assert_eq!(card.actions, [Action::Accept, Action::Return, Action::Watch]);
    // It moves there as it moves.
    w.h = d.handoff;
    w.run("olga", "/handoff accept H-2");
    let channel = Recipient::DiscordChannel("1100000000000000002".into());
    assert!(w.last().intents.iter().any(|i| i.kind == IntentKind::Card && i.to == channel), "{:?}", w.last().intents);
}

#[test]
fn the_shipped_model_loads_with_every_seam_and_playbook() {
    let m = model();
    assert_eq!(m.seams.len(), 3);
    assert_eq!(m.playbooks.len(), 5);
    assert_eq!(m.by_slack("U0ANA00001").map(|p| p.id.as_str()), Some("ana"));
}

#[test]
fn a_recalibration_records_its_artifact_and_applies_the_decision_in_one_step() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    // Nobody accepts; the ladder convenes the unacknowledged playbook on Tuesday at 13:00.
    w.checks_at(&[
        "2026-11-30T13:00:00-05:00",
        "2026-11-30T15:00:00-05:00",
        "2026-11-30T17:00:00-05:00",
        "2026-12-01T13:00:00-05:00",
    ]);
    assert_eq!(w.h.recalibration.as_ref().map(|r| r.convener.as_str()), Some("carla"));
    // The opening post offers to record the outcome (a form where the platform has forms).
    let opening = w.last().intents.iter().find(|i| matches!(i.kind, IntentKind::Recalibration { .. }));
    assert_eq!(opening.expect("the opening post").actions, [Action::Record]);
    w.at("2026-12-01T13:20:00-05:00");
    // Missing and wrong fields are all named.
    let err = w.refused("carla", r#"/handoff record H-1 decision=new-owner category=weather colour=red"#);
    for expected in
        ["colour", "category: `weather` is not one of", "assumption_broke: `assumption_broke` is required", "new_owner"]
    {
        assert!(err.contains(expected), "{expected} missing in: {err}");
    }
    // A missing choice says what to choose from.
    let err = w.refused("carla", r#"/handoff record H-1 decision=resume assumption_broke="x""#);
    assert!(
        err.starts_with("the record needs fixing:\n• category: `category` is required (The failure category, from the taxonomy): add category=..., one of missing-information, unclear-ownership, capacity"),
        "{err}"
    );
    // A wrong value is named once, not a second time as missing.
    let err = w.refused(
        "carla",
        r#"/handoff record H-1 decision=new-date new_date=2026-13-45 assumption_broke="x" category=capacity"#,
    );
    assert_eq!(err.matches("new_date").count(), 1, "{err}");
    assert!(err.contains("`2026-13-45` is not a date like 2026-12-01"), "{err}");
    assert!(w.refused("carla", "/handoff record H-1 decision=new-date").contains("needs new_date=YYYY-MM-DD"));
    let err = w.refused(
        "carla",
        r#"/handoff record H-1 decision=resume decision=cancel assumption_broke="x" category=capacity"#,
    );
    assert!(err.contains("`decision` is given twice (`resume`, then `cancel`): give it once"), "{err}");
    // Dates already gone (in the receiving function's zone) are named.
    let err = w.refused(
        "carla",
        r#"/handoff record H-1 decision=new-date new_date=2026-11-30 assumption_broke="x" category=capacity follow_ups="ana 2026-11-30 call them""#,
    );
    assert!(err.contains("new_date: 2026-11-30 has passed; give a date from today (2026-12-01) on"), "{err}");
    assert!(err.contains("follow-up `ana 2026-11-30 call them`: 2026-11-30 has passed"), "{err}");
    // Someone unrelated may not record it.
    assert!(w.refused("mia", "/handoff record H-1 decision=resume").contains("recorded by its convener, Carla Costa"));
    w.run(
        "carla",
        // People written as chat clients write them (`@ben`) or as bare ids.
        r#"/handoff record H-1 decision=new-owner new_owner=@ben assumption_broke="the CS queue had no owner on Mondays" category=capacity follow_ups="@carla 2026-12-04 add a Monday rota; ana 2026-12-07 review the queue alerts""#,
    );
    let d = w.last();
    assert_eq!((d.handoff.owner.as_deref(), d.handoff.state), (Some("ben"), State::Reassigned));
    assert!(d.handoff.recalibration.is_none() && d.handoff.stall.is_none());
    assert_eq!(
        d.episodes[0].closed_at,
        Some(t("2026-12-01T13:20:00-05:00")),
        "the episode closes with its time to unblock"
    );
    assert_eq!(d.artifacts.len(), 1);
    assert_eq!((d.artifacts[0].category.as_str(), d.artifacts[0].decision.as_str()), ("capacity", "new-owner"));
    assert_eq!(d.artifacts[0].episode, Some(1));
    assert_eq!(d.follow_ups.len(), 2);
    assert_eq!((d.follow_ups[0].owner.as_str(), d.follow_ups[1].owner.as_str()), ("carla", "ana"));
    // The outcome goes to the thread; each follow-up's reminder waits for its due morning.
    let thread = d.intents.iter().find(|i| i.kind == IntentKind::Thread).expect("thread message");
    assert!(thread.text.contains("Assumption that broke: the CS queue had no owner on Mondays"));
    let reminder =
        d.intents.iter().find(|i| i.text.starts_with("Follow-up due today") && i.to == Recipient::Person("ana".into()));
    assert_eq!(reminder.and_then(|r| r.not_before), Some(t("2026-12-07T09:00:00-05:00")));
    assert_eq!(reminder.map(|r| &r.kind), Some(&IntentKind::FollowUp), "held for days, it waits in no line");
    // The stall's escalations are answered in a line: the record's decision, not all its fields.
    let answered = settled(&w);
    assert!(!answered.is_empty());
    assert_eq!(
        answered[0].1,
        "✓ No longer stalled: Carla Costa (console) gave it to Ben Brooks; Carla Costa (console) recorded the \
         recalibration's decision: new-owner (Tue 01 Dec 13:20 EST). Now: reassigned."
    );
    // Its thread's messages that ask for the record are told it is recorded, once.
    let concluded: Vec<&Intent> = d.intents.iter().filter(|i| i.kind == IntentKind::Concluded).collect();
    assert_eq!(concluded.len(), 1);
    assert_eq!((&concluded[0].to, concluded[0].actions.is_empty()), (&thread.to, true));
    assert_eq!(concluded[0].text, "✓ Recorded by Carla Costa: new-owner (Tue 01 Dec 13:20 EST).");
    assert!(w.refused("carla", "/handoff record H-1 decision=resume").contains("no recalibration is open"));
}

#[test]
fn post_mortems_record_the_same_artifact_on_finished_handoffs_only() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    let err = w.refused("rita", r#"/postmortem H-1 assumption_broke="x" category=capacity"#);
    assert!(err.contains("post-mortems are for done or cancelled handoffs"), "{err}");
    w.run("rita", "/handoff cancel H-1 the customer churned");
    let err = w.refused("rita", "/postmortem H-1 playbook=ownership-dispute category=capacity");
    assert!(err.contains("assumption_broke: `assumption_broke` is required"), "{err}");
    w.run("rita", r#"/postmortem H-1 playbook=Ownership-Dispute assumption_broke="renewals had no seam" category=unclear-ownership"#);
    assert_eq!(w.last().artifacts[0].decision, "postmortem");
    assert_eq!(w.last().artifacts[0].playbook, "ownership-dispute");
    // One per handoff, so that its category counts once: a second corrects the first, from
    // whoever recorded it or an architect, and keeps its time.
    let err = w.refused("sam", r#"/postmortem H-1 assumption_broke="y" category=capacity"#);
    assert!(err.ends_with("its post-mortem was recorded by Rita Reyes on Mon 30 Nov 09:00 EST; they or an architect may correct it (`/handoff log H-1` shows it)"), "{err}");
    w.at("2026-12-01T10:00:00-05:00");
    let d = w
        .run(
            "rita",
            r#"/postmortem H-1 playbook=ownership-dispute assumption_broke="renewals had no seam" category=capacity"#,
        )
        .clone();
    assert_eq!(
        d.reply,
        "Post-mortem of H-1 corrected (Ownership dispute): it replaces the one Rita Reyes recorded on Mon 30 Nov 09:00 EST."
    );
    let a = &d.artifacts[0];
    assert_eq!((a.category.as_str(), a.corrects, a.at), ("capacity", true, t("2026-11-30T09:00:00-05:00")));
    assert_eq!(d.events[0].change.kind(), "artifact_corrected");
    let line = crate::activity::line(&Ctx::new(&w.model, "sales-to-cs").expect("seam"), &d.events[0], w.now);
    assert!(
        line.contains(
            "Rita Reyes (console) corrected the post-mortem: the ownership-dispute artifact (assumption_broke"
        ),
        "{line}"
    );
    let d = w.run("ada", r#"/postmortem H-1 playbook=ownership-dispute assumption_broke="renewals had no seam" category=unclear-ownership"#);
    assert!(d.artifacts[0].corrects && d.reply.contains("it replaces the one Rita Reyes recorded"), "{}", d.reply);
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("rita", "/handoff cancel H-1 the customer churned");
    let err = w.refused("mia", r#"/postmortem H-1 assumption_broke="x" category=capacity"#);
    assert_eq!(
        err,
        "only its requester, its owner, a lead of either function or an architect can record the post-mortem of H-1"
    );
    w.run("ada", r#"/postmortem H-1 assumption_broke="x" category=capacity"#);
}

#[test]
fn stall_history_is_scoped_to_the_viewers_functions_and_architects_see_everything() {
    use crate::history::{Filter, Viewer, scope};
    let model = model();
    let all = Filter::default();
    let architect = scope(&model, Viewer::Person("ada"), &all).expect("accepted");
    assert!(architect.everything);
    assert_eq!(architect.seams, model.seams.keys().cloned().collect::<Vec<_>>());

    // An engineer sees the seams to and from engineering, and says so.
    let eve = scope(&model, Viewer::Person("eve"), &all).expect("accepted");
    assert_eq!(eve.seams, ["eng-to-ops", "marketing-to-eng"]);
    assert_eq!(eve.described, "seams to or from Engineering");

    // Asking for someone else's seam or function is refused with what may be seen instead.
    let other = Filter { seam: Some("sales-to-cs".into()), ..Filter::default() };
    let refusal = scope(&model, Viewer::Person("eve"), &other).expect_err("refused").to_string();
    assert!(refusal.contains("seams to or from Engineering only (architects see every seam)"), "{refusal}");
    assert!(refusal.contains("sales-to-cs joins Sales and Customer Success"), "{refusal}");
    let func = Filter { function: Some("sales".into()), ..Filter::default() };
    assert!(
        scope(&model, Viewer::Person("eve"), &func).expect_err("refused").to_string().contains("you are not in Sales")
    );
    assert_eq!(scope(&model, Viewer::Person("rita"), &func).expect("accepted").seams, ["sales-to-cs"]);

    // Unknown names are refused with the known ones.
    for (f, says) in [
        (Filter { seam: Some("nope".into()), ..Filter::default() }, "seams: eng-to-ops"),
        (Filter { function: Some("legal".into()), ..Filter::default() }, "functions: customer-success"),
        (Filter { category: Some("luck".into()), ..Filter::default() }, "categories:"),
        (Filter { owner: Some("zed".into()), ..Filter::default() }, "no person `zed`"),
    ] {
        let e = scope(&model, Viewer::Operator, &f).expect_err("refused").to_string();
        assert!(e.contains(says), "{e}");
    }
}

#[test]
fn history_tallies_count_first_acceptance_stalls_and_completion_once_each() {
    use crate::handoff::TallyMetric::*;
    let metrics = |d: &Decision| d.tallies.iter().map(|t| (t.metric, t.secs)).collect::<Vec<_>>();
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    assert!(w.last().tallies.is_empty());
    // Not accepted by 13:00 (4 business hours): a stall opens, dated at the breach.
    w.at("2026-11-30T13:30:00-05:00");
    w.check();
    assert_eq!(metrics(w.last()), [(StallOpened, 0)]);
    assert_eq!(w.last().tallies[0].at, t("2026-11-30T13:00:00-05:00"));
    // Accepting ends the stall (30 minutes after the breach) and is the first acceptance.
    w.run("ana", "/handoff accept H-1");
    assert_eq!(metrics(w.last()), [(Accepted, 4 * 3600 + 1800), (Unblocked, 1800)]);
    // Handed on and accepted again: no second acceptance.
    w.run("carla", "/handoff reassign H-1 ben");
    w.run("ben", "/handoff accept H-1");
    assert!(w.last().tallies.is_empty(), "{:?}", w.last().tallies);
    w.run("ben", "/handoff done H-1");
    w.run("sam", "/approve H-1");
    assert!(w.last().tallies.is_empty());
    w.run("carla", "/approve H-1");
    assert_eq!(w.h.state, State::Done);
    assert_eq!(metrics(w.last()), [(Done, 4 * 3600 + 1800)]);
}

#[test]
fn replies_name_the_deadline_that_comes_next_and_one_already_passed() {
    // sales-to-cs: accept within 4h, update every 8h, done within 40h, all in business hours.
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    assert!(w.last().reply.ends_with("Due for acceptance by Mon 30 Nov 13:00 EST."), "{}", w.last().reply);
    // Accepted on Friday morning: the next update would be due on Monday, the whole handoff is
    // due before that, on Friday at 17:00 (40 business hours after Monday 09:00).
    w.at("2026-12-04T10:00:00-05:00");
    let reply = &w.run("ana", "/handoff accept H-1").reply;
    assert_eq!(reply, "You own H-1 now. Due for completion by Fri 04 Dec 17:00 EST.");
    // Once that has passed, before the scheduler has opened the stall, it says so.
    w.at("2026-12-07T10:00:00-05:00");
    let reply = &w.run("ana", "/ack H-1").reply;
    assert_eq!(reply, "Acknowledged H-1. Past its time-to-done target since Fri 04 Dec 17:00 EST.");
    // With the stall open, the stall is what the card shows, and replies add nothing after it.
    w.check();
    assert!(w.h.stall.is_some());
    assert_eq!(w.run("ana", "/ack H-1").reply, "Acknowledged H-1.");
}

#[test]
fn times_carry_their_year_when_it_is_not_this_one() {
    let m = model();
    let ctx = Ctx::new(&m, "sales-to-cs").expect("seam");
    let at = t("2027-01-04T14:00:00Z");
    assert_eq!(render::time(ctx.cal(), at, t("2027-01-01T12:00:00Z")), "Mon 04 Jan 09:00 EST");
    assert_eq!(render::time(ctx.cal(), at, t("2026-12-30T12:00:00Z")), "Mon 04 Jan 2027 09:00 EST");
    assert_eq!(render::time(ctx.cal(), t("2026-12-04T22:00:00Z"), at), "Fri 04 Dec 2026 17:00 EST");
}

#[test]
fn a_check_at_the_instant_the_store_keeps_finds_what_fell_due_there() {
    // A clock read with nanoseconds (as `Utc::now()` gives it); the store keeps milliseconds.
    let mut w = World::new("2026-11-30T09:00:00.123456789-05:00", "rita", ACME);
    let ctx = Ctx::new(&w.model, "sales-to-cs").expect("seam");
    let due = crate::stall::next_check(&ctx, &w.h).expect("a breach ahead");
    assert_eq!(due, t("2026-11-30T13:00:00.123-05:00"), "whole milliseconds");
    // The scheduler runs the check at the stored instant: the breach is there, not a hair later.
    w.now = due;
    assert_eq!(w.check(), ["stall_opened", "ladder_step"]);
}

#[test]
fn what_the_owner_or_the_lead_may_do_names_both_to_everyone_else() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    // Unowned: the lead of Customer Success may reassign it; a member may not.
    assert_eq!(
        w.refused("ben", "/handoff reassign H-1 ana"),
        "only Carla Costa (lead of Customer Success) can reassign H-1 while nobody owns it"
    );
    w.run("ana", "/handoff accept H-1");
    assert_eq!(
        w.refused("ben", "/snooze H-1 2h lunch"),
        "only its owner, Ana Alves, or Carla Costa (lead of Customer Success) can snooze H-1"
    );
    w.run("carla", "/snooze H-1 2h customer away");
}

#[test]
fn a_stall_at_the_gate_reminds_the_approvers_and_convenes_the_playbook_for_gates() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("ana", "/handoff done H-1");
    w.run("sam", "/approve H-1");
    // Eight business hours at the gate: the reminder goes to those who may still approve, with the
    // buttons they can use; the owner, who can do nothing more, is not asked.
    assert_eq!(w.at("2026-11-30T17:00:00-05:00").check(), ["stall_opened", "ladder_step"]);
    assert_eq!(w.recipients(), [r#"Person("carla")"#, r#"Person("vic")"#]);
    let reminder = &w.last().intents[0];
    assert!(reminder.text.ends_with("It waits for your approval: `/approve H-1` or `/reject H-1 <reason>`."));
    assert_eq!(reminder.actions, [Action::Approve, Action::Reject, Action::Blocked]);
    // The lead hears on whom it waits (herself among them), Vic being away.
    let friday = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).expect("date");
    w.away = Away::new([("vic".to_string(), going(&w.model, "vic", friday, "", &[], w.now).expect("away").until)]);
    assert_eq!(w.at("2026-12-01T11:00:00-05:00").check(), ["ladder_step"]);
    let lead = &w.last().intents[0];
    assert_eq!(lead.to, Recipient::Person("carla".into()));
    assert!(
        lead.text.ends_with("Owner: Ana Alves. It waits for approval from you, Vic Varga (away through Fri 04 Dec)."),
        "{}",
        lead.text
    );
    // The seam's ladder names `unacknowledged` (for handoffs nobody accepted); a gate stall convenes
    // the playbook that applies to gates instead.
    w.checks_at(&["2026-12-01T13:00:00-05:00", "2026-12-01T17:00:00-05:00"]);
    assert_eq!(w.h.recalibration.as_ref().map(|r| r.playbook.as_str()), Some("approvals-deadlocked"));
}

#[test]
fn a_person_behind_on_updates_gets_the_playbook_for_missing_information_not_the_agents_one() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    // No update for eight business hours, then the ladder climbs to its convene step (8h later).
    w.checks_at(&[
        "2026-11-30T17:00:00-05:00",
        "2026-12-01T11:00:00-05:00",
        "2026-12-01T13:00:00-05:00",
        "2026-12-01T17:00:00-05:00",
    ]);
    // `agent-stalled` is for the seam where agents own work; of those left, the most specific wins.
    assert_eq!(w.h.recalibration.as_ref().map(|r| r.playbook.as_str()), Some("missing-information"));
}

#[test]
fn an_owner_who_says_they_are_blocked_gets_the_playbook_for_work_under_way() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    // Not stalled: the playbook is chosen for the stall its state would have (no progress), not the
    // ladder's `unacknowledged`, which is about nobody accepting it.
    let reply = w.run("ana", "/recalibrate H-1").reply.clone();
    assert_eq!(reply, "Recalibration convened for H-1 with the missing-information playbook.");
    let opening = |w: &World| {
        let thread = w.last().intents.iter().find(|i| matches!(i.kind, IntentKind::Recalibration { .. }));
        thread.map(|i| i.text.clone()).unwrap_or_default()
    };
    assert!(opening(&w).contains(r#"Ana Alves is blocked on H-1 "Acme renewal" and convened a recalibration."#));
    // One recalibration at a time: a second is refused with what to do instead...
    let again = w.refused("carla", "/recalibrate H-1");
    assert!(again.contains("a recalibration is already under way (missing-information, convened by Ana Alves)"));
    assert!(again.contains("record its outcome with `/handoff record H-1"), "{again}");
    // ...and when the ladder reaches its convene step, the open thread is told; no second one opens.
    let convened = w.h.recalibration.clone().expect("open");
    w.checks_at(&[
        "2026-11-30T17:00:00-05:00",
        "2026-12-01T11:00:00-05:00",
        "2026-12-01T13:00:00-05:00",
        "2026-12-01T17:00:00-05:00",
    ]);
    assert_eq!(w.h.recalibration.as_ref().map(|r| r.convened_at), Some(convened.convened_at));
    let told = w.last().intents.iter().find(|i| i.kind == IntentKind::Thread).expect("a thread message");
    assert_eq!(told.to, convened.thread);
    assert!(told.text.contains("reached its convene step; this recalibration is still open"), "{}", told.text);
    assert!(!w.last().intents.iter().any(|i| matches!(i.kind, IntentKind::Recalibration { .. })));
}

#[test]
fn working_hours_may_break_for_lunch_but_not_overlap() {
    let hours = r#"hours = { mon-fri = "08:00-20:00", sat = "10:00-14:00" }"#;
    let pbs: Vec<Source<'_>> = PLAYBOOKS.iter().map(|(name, text)| Source { name, text }).collect();
    let with = |h: &str| load(Source { name: "baton.toml", text: &MODEL.replace(hours, h) }, &pbs);
    let model = with(r#"hours = { mon-fri = "08:00-12:00, 13:00-20:00" }"#).expect("a lunch break");
    assert_eq!(model.functions["ops"].calendar.describe_week(), "Mon-Fri 08:00-12:00 and 13:00-20:00");
    for bad in ["08:00-13:00, 12:00-20:00", "13:00-20:00, 08:00-12:00", "08:00-24:00, 23:00-23:30", "08:00-12:00,"] {
        let errs = with(&format!(r#"hours = {{ mon-fri = "{bad}" }}"#)).expect_err(bad);
        let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            errs.iter().any(|e| e.contains(&format!("functions.ops.hours.mon-fri: invalid hours `{bad}`"))),
            "{errs:?}"
        );
    }
}

#[test]
fn a_function_can_work_round_the_clock() {
    let text = MODEL.replace(
        r#"hours = { mon-fri = "08:00-20:00", sat = "10:00-14:00" }"#,
        r#"hours = { mon-sun = "00:00-24:00" }"#,
    );
    assert_ne!(text, MODEL, "the ops function's hours are in the sample");
    let pbs: Vec<Source<'_>> = PLAYBOOKS.iter().map(|(name, text)| Source { name, text }).collect();
    let model = load(Source { name: "baton.toml", text: &text }, &pbs).expect("00:00-24:00 is a whole day");
    let cal = &model.functions["ops"].calendar;
    // Sunday at 03:00 works, and four hours from Saturday 22:00 end at Sunday 02:00.
    assert!(cal.is_working(t("2026-11-29T03:00:00Z")));
    assert_eq!(cal.add(t("2026-11-28T22:00:00Z"), chrono::Duration::hours(4)), t("2026-11-29T02:00:00Z"));
}

#[test]
fn reminders_meant_for_people_away_go_to_those_who_can_act() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    let friday = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).expect("date");
    let away = |w: &World, who: &str| going(&w.model, who, friday, "holiday", &[], w.now).expect("away").until;
    // Away through Friday in New York: until Saturday's midnight there.
    assert_eq!(away(&w, "ana"), t("2026-12-05T00:00:00-05:00"));
    w.away = Away::new([("ana".to_string(), away(&w, "ana"))]);
    // The queue's reminder passes Ana over.
    assert_eq!(w.at("2026-11-30T13:00:00-05:00").check(), ["stall_opened", "ladder_step"]);
    assert_eq!(w.recipients(), [r#"Person("ben")"#, r#"Person("carla")"#]);
    // Ben takes it, then goes away too: the reminder for his update goes to Carla, who can reassign it.
    w.run("ben", "/handoff accept H-1");
    w.run("ben", "/ack H-1");
    w.away = Away::new([("ana".to_string(), away(&w, "ana")), ("ben".to_string(), away(&w, "ben"))]);
    assert_eq!(w.at("2026-12-01T13:00:00-05:00").check(), ["stall_opened", "ladder_step"]);
    assert_eq!(w.recipients(), [r#"Person("carla")"#]);
    assert!(
        w.last().intents[0].text.ends_with(
            "Its owner, Ben Brooks, is away through Fri 04 Dec: reassign it with `/handoff reassign H-1 <person>`."
        ),
        "{}",
        w.last().intents[0].text
    );
    // The lead gets the buttons a lead can use (not the owner's Acknowledge), and her own step says who is away.
    assert_eq!(w.last().intents[0].actions, [Action::Snooze, Action::Blocked]);
    assert_eq!(w.at("2026-12-01T15:00:00-05:00").check(), ["ladder_step"]);
    assert!(
        w.last().intents[0].text.ends_with("Owner: Ben Brooks (away through Fri 04 Dec)."),
        "{}",
        w.last().intents[0].text
    );
    assert_eq!(w.last().intents[0].actions, [Action::Snooze, Action::Blocked]);
    // At the gate, an approver away is passed over while another may approve.
    w.run("carla", "/handoff reassign H-1 ana");
    w.away = Away::new([("vic".to_string(), away(&w, "vic"))]);
    w.run("ana", "/handoff accept H-1");
    w.run("ana", "/handoff done H-1");
    w.run("sam", "/approve H-1");
    assert_eq!(w.at("2026-12-02T15:00:00-05:00").check(), ["stall_opened", "ladder_step"]);
    assert_eq!(w.recipients(), [r#"Person("carla")"#]);
}

#[test]
fn a_lead_away_names_a_cover_who_gets_the_leads_reminders_and_may_act_as_lead() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("ana", "/ack H-1");
    let friday = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).expect("date");
    fn cover(who: &str) -> Going<'_> {
        let friday = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).expect("date");
        Going { person: "carla", last: friday, reason: "holiday", cover: Some(who) }
    }
    let leaving = leave(&w.model, cover("@ben"), &[], &Away::default(), w.now).expect("away");
    assert_eq!(
        leaving.reply,
        "You are away through Fri 04 Dec (holiday). Ben Brooks covers for you as lead (they were told): what Baton \
         would send you as lead goes to them. `/away back` when you return."
    );
    assert_eq!(leaving.intents.len(), 1);
    assert_eq!(leaving.intents[0].to, Recipient::Person("ben".into()));
    assert!(leaving.intents[0].text.starts_with(
        "Carla Costa is away through Fri 04 Dec (holiday) and asked you to cover as lead of Customer Success"
    ));
    w.away = Away::new([("carla".to_string(), leaving.until)]).with_cover("carla", "ben");
    // Said again, it changes nothing and tells Ben nothing more; with another cover, it does.
    let again = leave(&w.model, cover("ben"), &[], &w.away, w.now).expect("again");
    assert_eq!(
        (again.reply.as_str(), again.intents.len()),
        (
            "You are already away through Fri 04 Dec; Ben Brooks covers for you as lead. `/away back` when you return.",
            0
        )
    );
    let other = leave(&w.model, cover("ana"), &[], &w.away, w.now).expect("another cover");
    let told: Vec<(&Recipient, &str)> = other.intents.iter().map(|i| (&i.to, i.text.as_str())).collect();
    assert_eq!(told.len(), 2, "{told:?}");
    assert_eq!(told[0].0, &Recipient::Person("ana".into()));
    assert_eq!(
        told[1],
        (
            &Recipient::Person("ben".into()),
            "Carla Costa no longer needs you to cover as lead of Customer Success: Ana Alves does."
        )
    );
    let alone = Going { cover: None, ..cover("ben") };
    let alone = leave(&w.model, alone, &[], &w.away, w.now).expect("no cover");
    assert!(alone.intents.iter().any(|i| i.text.ends_with("Customer Success: nobody covers now.")), "{alone:?}");
    let longer = Going { last: friday + chrono::Duration::days(1), ..cover("ben") };
    assert_eq!(leave(&w.model, longer, &[], &w.away, w.now).expect("longer").intents.len(), 1);

    // The lead's step of the ladder goes to Ben, saying for whom.
    assert_eq!(w.at("2026-11-30T17:00:00-05:00").check(), ["stall_opened", "ladder_step"]);
    assert_eq!(w.recipients(), [r#"Person("ana")"#]);
    assert_eq!(w.at("2026-12-01T11:00:00-05:00").check(), ["ladder_step"]);
    assert_eq!(w.recipients(), [r#"Person("ben")"#]);
    let text = &w.last().intents[0].text;
    assert!(text.starts_with("For your attention covering for Carla Costa as lead of Customer Success: H-1"), "{text}");
    // Ben may do what the lead may (snooze, reassign) while she is away; not otherwise.
    let snooze = parse("/snooze H-1 2h waiting on legal").expect("parse");
    let refused = decide(&w.model, &w.h, &snooze, "ben", Surface::Console, w.now).expect_err("not the lead");
    assert!(refused.to_string().starts_with("only its owner, Ana Alves, or Carla Costa"), "{refused}");
    let covering = w.away.covered_by("ben", w.now);
    assert_eq!(covering, ["carla"]);
    let d = decide_covering(&w.model, &w.h, &snooze, "ben", &covering, Surface::Console, w.now).expect("as lead");
    assert!(d.reply.starts_with("H-1 snoozed until"), "{}", d.reply);
    assert_eq!(d.events[0].actor, "ben", "the audit trail names who acted");
    // With the owner away too, her reminder goes to the cover, who can reassign it.
    let owner_away = going(&w.model, "ana", friday, "", &[], w.now).expect("away").until;
    w.away =
        Away::new([("carla".to_string(), leaving.until), ("ana".to_string(), owner_away)]).with_cover("carla", "ben");
    w.run("ana", "/handoff update H-1 kickoff booked");
    assert_eq!(w.at("2026-12-02T11:00:00-05:00").check(), ["stall_opened", "ladder_step"]);
    assert_eq!(w.recipients(), [r#"Person("ben")"#]);
    assert!(w.last().intents[0].text.contains("Its owner, Ana Alves, is away through Fri 04 Dec"));
    // A cover who goes away too stands in for nobody: the lead's own reminders resume.
    let ben_away = going(&w.model, "ben", friday, "", &[], w.now).expect("away").until;
    let both =
        Away::new([("carla".to_string(), leaving.until), ("ben".to_string(), ben_away)]).with_cover("carla", "ben");
    assert_eq!(both.cover("carla", w.now), None);
    assert!(both.covered_by("ben", w.now).is_empty());
    // Only a lead names a cover, someone else, someone configured, someone here.
    let member = Going { person: "ana", last: friday, reason: "", cover: Some("ben") };
    let err = leave(&w.model, member, &[], &Away::default(), w.now).expect_err("not a lead");
    assert_eq!(
        err.to_string(),
        "only a lead names a cover; while you are away Carla Costa hears about your handoffs and can reassign them"
    );
    let err = leave(&w.model, cover("carla"), &[], &Away::default(), w.now).expect_err("herself");
    assert_eq!(err.to_string(), "name someone else to cover for you");
    let err = leave(&w.model, cover("deploy-bot"), &[], &Away::default(), w.now).expect_err("an agent");
    assert_eq!(err.to_string(), "Deploy Agent is an agent; name a person to cover for you");
    let err = leave(&w.model, cover("zed"), &[], &Away::default(), w.now).expect_err("unknown");
    assert_eq!(err.to_string(), "there is no person `zed` in the operating model");
    let ben_gone = Away::new([("ben".to_string(), ben_away)]);
    let err = leave(&w.model, cover("ben"), &[], &ben_gone, w.now).expect_err("away");
    assert_eq!(err.to_string(), "Ben Brooks is away through Fri 04 Dec; name someone who is here");
    // How it is typed.
    assert_eq!(
        parse("/away until 2026-12-04 cover=@ben on holiday"),
        Ok(Command::Away(AwayCommand::Until { last: friday, reason: "on holiday".into(), cover: Some("ben".into()) }))
    );
    assert!(parse("/away until 2026-12-04 cover=").expect_err("nobody").message.contains("cover=dana"));
}

#[test]
fn a_team_board_shows_what_a_function_carries_to_those_who_may_see_it() {
    use crate::team::{board, function_for};
    let model = model();
    let monday = t("2026-11-30T09:00:00-05:00");
    let fields = [("account", "A"), ("arr", "1"), ("segment", "smb")].map(|(k, v)| (k.to_string(), v.to_string()));
    let new = |id: u64, title: &str| {
        let new = NewHandoff { seam: "sales-to-cs", title, fields: &fields };
        create(&model, id, new, "rita", Surface::Console, monday).expect("create").handoff
    };
    let act = |h: Handoff, actor: &str, line: &str| {
        decide(&model, &h, &parse(line).expect("parse"), actor, Surface::Console, monday).expect(line).handoff
    };
    let queue = new(1, "Acme renewal");
    let under_way = act(new(2, "Beta onboarding"), "ana", "/handoff accept H-2");
    let returned = act(new(3, "Gamma"), "ana", "/handoff return H-3 which contract?");
    let now = t("2026-11-30T15:00:00-05:00");
    let friday = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).expect("date");
    let until = |who: &str| going(&model, who, friday, "", &[], now).expect("away").until;
    let away = Away::new([("ana".to_string(), until("ana")), ("carla".to_string(), until("carla"))])
        .with_cover("carla", "sam");

    // Members see their own function by default; others are told what they may see; architects see all.
    assert_eq!(function_for(&model, "ben", None, &away, now).map(|f| f.id.as_str()), Ok("customer-success"));
    let err = function_for(&model, "rita", Some("customer-success"), &away, now).expect_err("not hers");
    assert_eq!(
        err.to_string(),
        "you can see the handoffs of Sales (`sales`) only, not Customer Success's; architects see every function's"
    );
    assert!(
        function_for(&model, "sam", Some("customer-success"), &away, now).is_ok(),
        "Carla's cover sees her function"
    );
    assert!(function_for(&model, "sam", Some("customer-success"), &Away::default(), now).is_err(), "not otherwise");
    assert!(function_for(&model, "ada", Some("engineering"), &away, now).is_ok());
    let err = function_for(&model, "ada", Some("nowhere"), &away, now).expect_err("unknown");
    assert!(err.to_string().starts_with("there is no function `nowhere`; functions: customer-success, engineering"));
    // An architect in no function names one (it showed the first function in the file).
    let err = function_for(&model, "ada", None, &away, now).expect_err("which one?");
    assert!(
        err.to_string()
            .starts_with("you belong to no function; name one: `/handoff team <function>` (customer-success,")
    );

    let cs = &model.functions["customer-success"];
    let text = board(&model, cs, &[queue.clone(), under_way.clone(), returned.clone()], &[], &away, now);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "Customer Success: 3 open handoffs received, 0 sent (lead Carla Costa, away through Fri 04 Dec: Sam Sato covers).",
            "Waiting to be accepted (1, `/handoff accept H-<n>`):",
            "• H-1 · Acme renewal · from Sales · nobody yet · Not accepted in time since Mon 30 Nov 13:00 EST.",
            "Under way (1):",
        ]
    );
    assert!(lines[4].starts_with(
        "• H-2 · Beta onboarding · from Sales · Ana Alves (away through Fri 04 Dec) · Due for next update by"
    ));
    assert_eq!(lines[5..], ["Back with the requester (1):", "• H-3 · Gamma · from Sales · with Rita Reyes"]);
    // Gone from the model, the owner and the requester are named as such.
    let mut reloaded = model.clone();
    leaves(&mut reloaded, "ana");
    leaves(&mut reloaded, "rita");
    let cs = &reloaded.functions["customer-success"];
    let text = board(&reloaded, cs, &[under_way.clone(), returned.clone()], &[], &Away::default(), now);
    assert!(
        text.contains("• H-2 · Beta onboarding · from Sales · ana (no longer in the operating model) · "),
        "{text}"
    );
    assert!(text.ends_with("• H-3 · Gamma · from Sales · with rita (no longer in the operating model)"), "{text}");
    let sales = board(&model, &model.functions["sales"], &[], &[queue.clone(), returned], &Away::default(), now);
    assert!(
        sales
            .contains("Sent by Sales, still open (2):\n• H-1 · Acme renewal · to Customer Success · open · nobody yet"),
        "{sales}"
    );
    // A long board shows the first 25 of a section and counts the rest.
    let many: Vec<Handoff> = (1..=30).map(|id| Handoff { id, ..queue.clone() }).collect();
    let text = board(&model, cs, &many, &[], &Away::default(), now);
    assert!(
        text.contains("Waiting to be accepted (30, ") && text.contains("• H-25 ") && !text.contains("• H-26 "),
        "{text}"
    );
    assert!(text.ends_with("\n… and 5 more"), "{text}");
    // What is cut is what can wait: a stalled one, however late its number, is listed first.
    let mut stalled = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    stalled.at("2026-11-30T13:00:00-05:00").check();
    let mut many = many;
    many.push(Handoff { id: 31, ..stalled.h.clone() });
    let text = board(&model, cs, &many, &[], &Away::default(), now);
    let first = text.lines().find(|l| l.starts_with("• ")).unwrap_or_default();
    assert!(first.starts_with("• H-31 "), "{text}");
}

#[test]
fn find_matches_every_word_in_the_title_or_fields_in_any_case() {
    use crate::team::matches;
    let w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert!(matches(&w.h, &words("acme")));
    assert!(matches(&w.h, &words("RENEWAL enterprise")), "title and a field value together");
    assert!(matches(&w.h, &words("120000")));
    assert!(matches(&w.h, &words("h-1")), "its label");
    assert!(!matches(&w.h, &words("acme smb")), "every word must be there");
    assert!(!matches(&w.h, &words("account")), "field names are not searched");
}

#[test]
fn going_away_tells_the_leads_of_what_one_owns_and_refuses_impossible_dates() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("date");
    let leaving =
        going(&w.model, "ana", day("2026-12-04"), "holiday", std::slice::from_ref(&w.h), w.now).expect("away");
    assert_eq!(
        leaving.reply,
        "You are away through Fri 04 Dec (holiday). Meanwhile stall reminders meant for you go to your lead or teammates. You own \
         H-1; Carla Costa was told. `/away back` when you return."
    );
    assert_eq!(leaving.intents.len(), 1);
    assert_eq!(leaving.intents[0].to, Recipient::Person("carla".into()));
    assert_eq!(
        leaving.intents[0].text,
        "Ana Alves is away through Fri 04 Dec (holiday) and owns H-1 \"Acme renewal\". Reassign with \
         `/handoff reassign H-1 <person>`; meanwhile their stall reminders come to you."
    );
    // The lead going away is not told about herself.
    let lead = going(&w.model, "carla", day("2026-12-04"), "", &[], w.now).expect("away");
    assert!(lead.intents.is_empty());
    // A lead naming no cover is told what that means and how to name one.
    assert!(
        lead.reply.contains(
            "Nobody covers for you as lead of Customer Success, so its ladder's lead step still comes to you; name a \
             cover with `/away until 2026-12-04 cover=<person>`."
        ),
        "{}",
        lead.reply
    );
    let err = going(&w.model, "ana", day("2026-11-29"), "", &[], w.now).expect_err("past");
    assert_eq!(err.to_string(), "2026-11-29 has passed; name your last day away, today (2026-11-30) or later");
    assert!(
        going(&w.model, "ana", day("2028-01-01"), "", &[], w.now)
            .expect_err("far")
            .to_string()
            .contains("more than a year")
    );
    // How it is typed.
    assert_eq!(
        parse("/away until 2026-12-04 on holiday"),
        Ok(Command::Away(AwayCommand::Until { last: day("2026-12-04"), reason: "on holiday".into(), cover: None }))
    );
    assert_eq!(
        parse("/handoff away 2026-12-04"),
        Ok(Command::Away(AwayCommand::Until { last: day("2026-12-04"), reason: String::new(), cover: None }))
    );
    assert_eq!(parse("/away back"), Ok(Command::Away(AwayCommand::Back)));
    assert_eq!(parse("/away"), Ok(Command::Away(AwayCommand::Show)));
    assert!(
        parse("/away until friday").expect_err("no date").message.contains("`friday` is not a date like 2026-12-04")
    );
    assert!(parse("/away soon").expect_err("no date").message.contains("nor `back`"));
}

#[test]
fn a_plate_offers_each_person_the_buttons_they_may_use() {
    use crate::plate::{Loaded, Plate, build};
    // The store loads what is under way in the functions one leads (here: while Ana is away), and
    // what one watches.
    let plate = |w: &World, own: &[Handoff], waiting: &[Handoff], away: &Away, who: &str| -> Plate {
        let led = if away.is_away("ana", w.now) { waiting } else { &[] };
        let watched: Vec<Handoff> = waiting.iter().filter(|h| h.watchers.iter().any(|p| p == who)).cloned().collect();
        build(&w.model, who, &Loaded { own, waiting, led, watched: &watched, away }, w.now)
    };
    let buttons = |p: &Plate, heading: &str| -> Vec<Vec<Action>> {
        let s = p.sections.iter().find(|s| s.heading.starts_with(heading));
        s.map(|s| s.items.iter().map(|i| i.actions.clone()).collect()).unwrap_or_default()
    };
    let none = Away::default();
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    let h = [w.h.clone()];
    // Unaccepted: a member of the receiving function may accept it; the requester has no button.
    assert_eq!(buttons(&plate(&w, &[], &h, &none, "ben"), "In your team's queue"), [vec![Action::Accept]]);
    assert_eq!(buttons(&plate(&w, &h, &[], &none, "rita"), "Yours"), [Vec::<Action>::new()]);
    assert!(plate(&w, &[], &h, &none, "sam").is_empty(), "not a member, nothing waits on sam");
    // Stalled in the queue: its receiving lead sees it, with the buttons a lead may press.
    w.at("2026-11-30T13:00:00-05:00").check();
    let stalled = [w.h.clone()];
    let lead =
        build(&w.model, "carla", &Loaded { own: &[], waiting: &[], led: &stalled, watched: &[], away: &none }, w.now);
    assert_eq!(buttons(&lead, "Stalled in the functions you lead"), [vec![Action::Accept, Action::Return]]);
    assert!(
        lead.text()
            .contains("• H-1 · Acme renewal · in the queue · STALLED: not accepted in time since Mon 30 Nov 13:00 EST"),
        "{}",
        lead.text()
    );
    let member =
        build(&w.model, "ben", &Loaded { own: &[], waiting: &[], led: &stalled, watched: &[], away: &none }, w.now);
    assert!(member.is_empty(), "ben leads nothing");
    // In her queue already (she is a member too), it is listed once.
    let loaded = Loaded { own: &[], waiting: &stalled, led: &stalled, watched: &[], away: &none };
    let both = build(&w.model, "carla", &loaded, w.now);
    assert_eq!(both.sections.iter().map(|s| s.items.len()).sum::<usize>(), 1, "{}", both.text());
    assert!(both.text().starts_with("In your team's queue"), "{}", both.text());
    assert!(
        both.text().contains(
            "• H-1 · Acme renewal · Customer Success · STALLED: not accepted in time since Mon 30 Nov 13:00 EST"
        ),
        "listed in the queue, it still says it stalled: {}",
        both.text()
    );
    w.run("sam", "/handoff watch H-1");
    let watching = plate(&w, &[], &[w.h.clone()], &none, "sam");
    assert_eq!(buttons(&watching, "You watch"), [vec![Action::Unwatch]]);
    assert!(watching.text().contains("• H-1 · Acme renewal · open · in the queue"), "{}", watching.text());
    w.run("ana", "/handoff accept H-1");
    let h = [w.h.clone()];
    let owner = [vec![Action::Ack, Action::Update, Action::Done, Action::Snooze, Action::Return]];
    assert_eq!(buttons(&plate(&w, &h, &[], &none, "ana"), "Yours"), owner);
    w.run("ana", "/handoff return H-1 which contract?");
    let h = [w.h.clone()];
    assert_eq!(buttons(&plate(&w, &h, &[], &none, "rita"), "Yours"), [vec![Action::Resubmit]]);
    assert_eq!(buttons(&plate(&w, &h, &[], &none, "ana"), "Yours"), [Vec::<Action>::new()], "the owner waits");
    w.run("rita", "/handoff resubmit H-1 contract attached");
    w.run("ana", "/handoff done H-1");
    let h = [w.h.clone()];
    // At the gate: approvers decide, the owner has nothing left to press.
    let sam = plate(&w, &[], &h, &none, "sam");
    assert_eq!(buttons(&sam, "Waiting for your approval"), [vec![Action::Approve, Action::Reject]]);
    assert!(sam.text().contains("• H-1 · Acme renewal · 0 of 2 approvals"), "{}", sam.text());
    assert_eq!(buttons(&plate(&w, &h, &[], &none, "ana"), "Yours"), [Vec::<Action>::new()]);
    // Ana away: her lead (carla) sees what she owns, with no button (reassigning is typed).
    let away = Away::new([("ana".to_string(), t("2026-12-05T00:00:00-05:00"))]);
    let lead = plate(&w, &[], &h, &away, "carla");
    assert!(lead.text().contains("Owned by people away"), "{}", lead.text());
    assert!(lead.text().contains("Ana"), "{}", lead.text());
    assert_eq!(buttons(&lead, "Owned by people away"), [Vec::<Action>::new()]);
    assert!(!plate(&w, &[], &h, &away, "ben").text().contains("Owned by people away"), "ben leads nothing");
    assert!(plate(&w, &h, &[], &away, "ana").notes[0].starts_with("You are away through"));
    // Ana gone from the model: her lead sees it among what people gone own.
    leaves(&mut w.model, "ana");
    let lead = build(&w.model, "carla", &Loaded { own: &[], waiting: &[], led: &h, watched: &[], away: &none }, w.now);
    assert!(lead.text().contains("• H-1 · Acme renewal · ana, no longer in the operating model"), "{}", lead.text());
}

#[test]
fn a_handoffs_log_tells_who_did_what_and_when_in_the_receiving_zone() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.checks_at(&["2026-11-30T13:00:00-05:00", "2026-11-30T15:00:00-05:00"]);
    w.at("2026-11-30T15:30:00-05:00");
    w.run("ana", "/handoff accept H-1");
    w.run("ana", "/handoff update H-1 \"Kickoff booked\" kickoff=2026-12-03");
    w.run("rita", "/handoff edit H-1 arr=125000 kickoff= signed higher");
    w.run("ana", "/handoff return H-1 which contract?");
    w.run("rita", "/handoff resubmit H-1 contract attached");
    w.run("carla", "/handoff reassign H-1 ben");
    w.run("ben", "/handoff accept H-1");
    w.run("ben", "/snooze H-1 2h waiting on legal");
    w.run("ben", "/handoff done H-1");
    w.run("sam", "/approve H-1");
    let events: Vec<Event> = w.log.iter().flat_map(|d| d.events.clone()).collect();
    assert_eq!(parse("/handoff log H-1"), Ok(Command::Log(1)));
    assert_eq!(
        parse("/handoff reassign-all @ana ben"),
        Ok(Command::ReassignAll { from: "ana".into(), to: "ben".into() })
    );
    let missing = parse("/handoff reassign-all ana").expect_err("who takes them");
    assert_eq!(
        (missing.message.as_str(), missing.usage),
        ("name who takes them", "/handoff reassign-all <from person> <to person>")
    );
    assert_eq!(parse("activity h-1"), Ok(Command::Log(1)));
    let ctx = Ctx::new(&w.model, &w.h.seam).expect("seam");
    let log = crate::activity::log(&ctx, &w.h, &events, w.now);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "H-1 · Acme renewal: what happened, newest first (times in Customer Success's zone, America/New_York)",
            "Now: awaiting gate. It waits for its approvers."
        ]
    );
    let at = |line: &str| lines.iter().position(|l| *l == line);
    assert!(at("• Mon 30 Nov 15:30 EST · Sam Sato (console) approved it (1 of 2)") == Some(2), "newest first:\n{log}");
    for expected in [
        "• Mon 30 Nov 09:00 EST · Rita Reyes (console) handed it off to Customer Success (account: Acme · arr: 120000 · segment: enterprise)",
        "• Mon 30 Nov 13:00 EST · Baton found it stalled (stall 1): not accepted in time",
        "• Mon 30 Nov 15:00 EST · Baton climbed the ladder: step 2 (notify-lead) of stall 1",
        "• Mon 30 Nov 15:30 EST · Ana Alves (console) closed stall 1: it moved again 2h30m after the breach",
        "• Mon 30 Nov 15:30 EST · Ana Alves (console) posted an update: “Kickoff booked” (kickoff: 2026-12-03)",
        "• Mon 30 Nov 15:30 EST · Rita Reyes (console) edited it (arr: 125000 · kickoff removed): “signed higher”",
        "• Mon 30 Nov 15:30 EST · Ana Alves (console) returned it to the requester: which contract?",
        "• Mon 30 Nov 15:30 EST · Rita Reyes (console) resubmitted it: “contract attached”",
        "• Mon 30 Nov 15:30 EST · Carla Costa (console) gave it to Ben Brooks (from Ana Alves)",
        "• Mon 30 Nov 15:30 EST · Ben Brooks (console) snoozed it until Mon 30 Nov 17:30 EST: waiting on legal",
        "• Mon 30 Nov 15:30 EST · Ben Brooks (console) marked it done; it went to the high-stakes gate",
        "• Mon 30 Nov 15:30 EST · Sam Sato (console) approved it (1 of 2)",
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in\n{log}");
    }
    assert_eq!(lines.len(), events.len() + 2, "a line per event, the heading and what now:\n{log}");
    assert!(lines.last().expect("last").contains("handed it off"), "the oldest last:\n{log}");

    // A long history shows its latest events and counts the rest.
    let many: Vec<Event> = events.iter().cycle().take(crate::activity::SHOWN + 7).cloned().collect();
    let long = crate::activity::log(&ctx, &w.h, &many, w.now);
    assert_eq!(long.lines().last(), Some("… 7 earlier events not shown"));
    assert_eq!(long.lines().count(), crate::activity::SHOWN + 3);
}

#[test]
fn watchers_are_told_as_a_handoff_moves_in_the_words_of_its_log() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    assert!(w.run("sam", "/handoff watch H-1").reply.starts_with("You watch H-1 now"));
    assert_eq!(w.h.watchers, ["sam"]);
    let card = w.last().intents.iter().find(|i| i.kind == IntentKind::Card).expect("the card is redrawn");
    assert!(card.text.contains("Watched by: Sam Sato"), "{}", card.text);
    assert_eq!(w.refused("sam", "/handoff watch H-1"), "nothing to change: you watch H-1 already");
    assert_eq!(
        w.refused("rita", "/handoff watch H-1"),
        "nothing to change: you hear of H-1's changes already, as its requester"
    );
    w.run("ben", "/handoff watch H-1");
    // Accepted: both watchers are told, in the log's words, but not the one who acted.
    w.run("ana", "/handoff accept H-1");
    let told = |w: &World, who: &str| -> Vec<String> {
        let to = Recipient::Person(who.to_string());
        let notices = w.last().intents.iter().filter(|i| i.to == to && i.kind == IntentKind::Notice);
        notices.map(|i| i.text.clone()).collect()
    };
    assert_eq!(
        told(&w, "sam"),
        ["H-1 \"Acme renewal\", which you watch: Ana Alves (console) accepted it. Now: accepted."]
    );
    let to_sam = w.last().intents.iter().find(|i| i.to == Recipient::Person("sam".into())).expect("told");
    assert_eq!(to_sam.actions, [Action::Unwatch], "a button to stop");
    assert_eq!(told(&w, "ben").len(), 1);
    // Acknowledging is not worth a message; an update is.
    w.run("ana", "/ack H-1");
    assert!(told(&w, "sam").is_empty());
    w.run("ana", "/handoff update H-1 \"Kickoff booked\"");
    assert!(
        told(&w, "sam")[0].contains("Ana Alves (console) posted an update: “Kickoff booked”"),
        "{:?}",
        told(&w, "sam")
    );
    // A watcher who becomes the owner hears of it as the owner only; the actor is never told.
    w.run("carla", "/handoff reassign H-1 ben");
    assert!(told(&w, "sam")[0].contains("gave it to Ben Brooks (from Ana Alves)"));
    w.run("ben", "/handoff accept H-1");
    assert!(told(&w, "ben").is_empty(), "the actor is not told: {:?}", told(&w, "ben"));
    w.run("rita", "/handoff edit H-1 arr=130000");
    assert_eq!(told(&w, "ben").len(), 1, "the owner's notice only: {:?}", told(&w, "ben"));
    assert!(!told(&w, "ben")[0].contains("which you watch"), "{:?}", told(&w, "ben"));
    assert!(told(&w, "sam")[0].contains("Rita Reyes (console) edited it (arr: 130000)"), "{:?}", told(&w, "sam"));
    // The card names its owner once: not again among the watchers.
    let card = w.last().intents.iter().find(|i| i.kind == IntentKind::Card).expect("the card is redrawn");
    assert!(card.text.contains("Watched by: Sam Sato\n") && !card.text.contains("Ben Brooks, "), "{}", card.text);
    assert_eq!(w.h.watchers, ["sam", "ben"], "Ben keeps his subscription, for when it moves on");
    // Stalls found by the sweep are told too.
    w.at("2026-12-03T09:00:00-05:00");
    assert!(w.check().contains(&"stall_opened"));
    assert!(told(&w, "sam").iter().any(|t| t.contains("Baton found it stalled (stall 1): no progress update in time")));
    assert_eq!(w.run("sam", "/handoff unwatch H-1").reply, "You no longer watch H-1.");
    assert_eq!(w.refused("sam", "/handoff unwatch H-1"), "nothing to change: you do not watch H-1");
    w.run("ben", "/handoff update H-1 \"Signed\"");
    assert!(told(&w, "sam").is_empty());
    let kinds: Vec<&str> = w.log.iter().flat_map(|d| d.events.iter().map(|e| e.change.kind())).collect();
    assert!(kinds.contains(&"watched") && kinds.contains(&"unwatched"));
}

#[test]
fn a_due_date_agreed_in_a_recalibration_replaces_the_time_to_done_target() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    // Progress twice a day, so only the 40-hour time-to-done target is breached.
    let mut days = vec!["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04", "2026-12-07", "2026-12-08"];
    let progress = |w: &mut World, days: &[&str]| {
        for day in days {
            for hour in ["09:30", "15:30"] {
                w.at(&format!("{day}T{hour}:00-05:00"));
                w.check();
                w.run("ana", "/handoff update H-1 going");
            }
        }
    };
    progress(&mut w, &days);
    assert_eq!(w.h.stall.as_ref().map(|s| s.kind), Some(StallKind::Overdue));
    assert!(w.h.recalibration.is_some(), "the ladder convened a recalibration");
    w.run(
        "carla",
        "/handoff record H-1 decision=new-date new_date=2026-12-18 assumption_broke=\"x\" category=capacity",
    );
    assert_eq!(w.h.due_date, chrono::NaiveDate::from_ymd_opt(2026, 12, 18));
    // Before, the next check opened the overdue stall again at once, dated at the old breach, and
    // climbed the ladder to a second recalibration: the agreed date was ignored.
    days = vec![
        "2026-12-09",
        "2026-12-10",
        "2026-12-11",
        "2026-12-14",
        "2026-12-15",
        "2026-12-16",
        "2026-12-17",
        "2026-12-18",
    ];
    progress(&mut w, &days);
    assert_eq!(w.h.stall, None, "not overdue before the agreed date is over");
    assert_eq!(
        render::due_line(&Ctx::new(&w.model, &w.h.seam).expect("seam"), &w.h, w.now),
        "Due by the agreed date, Fri 18 Dec 2026."
    );
    // The date's working day over, it is overdue from then, and the ladder climbs on the same
    // business clock as for any target.
    w.at("2026-12-21T09:00:00-05:00");
    let kinds = w.check();
    assert_eq!(kinds, ["stall_opened", "ladder_step"], "the first step at the first working instant");
    let stall = w.h.stall.clone().expect("stalled");
    assert_eq!((stall.kind, stall.opened_at), (StallKind::Overdue, t("2026-12-18T17:00:00-05:00")));
    let reminder = w.last().intents.iter().find(|i| i.kind == IntentKind::Escalation).expect("the owner reminded");
    assert!(reminder.text.contains("is stalled: past its agreed due date, Fri 18 Dec since"), "{}", reminder.text);
    w.at("2026-12-21T10:59:00-05:00");
    assert!(w.check().is_empty(), "the lead's step is two business hours after");
    w.at("2026-12-21T11:00:00-05:00");
    assert_eq!(w.check(), ["ladder_step"]);
}

#[test]
fn a_recalibration_of_an_overdue_handoff_gives_it_a_fresh_time_to_done_window() {
    // Before, after any decision but a new date, the next check opened the overdue stall again at
    // its old breach and climbed the whole ladder to another recalibration, at every record.
    for decision in ["resume", "new-owner new_owner=ben", "return"] {
        let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
        w.run("ana", "/handoff accept H-1");
        let owner = if decision.starts_with("new-owner") { "ben" } else { "ana" };
        let progress = |w: &mut World, days: &[&str], who: &str| {
            for day in days {
                for hour in ["09:30", "15:30"] {
                    w.at(&format!("{day}T{hour}:00-05:00"));
                    w.check();
                    w.run(who, "/handoff update H-1 going");
                }
            }
        };
        progress(&mut w, &["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04", "2026-12-07", "2026-12-08"], "ana");
        assert!(w.h.recalibration.is_some(), "{decision}: the overdue ladder convened a recalibration");
        let record = format!("/handoff record H-1 decision={decision} assumption_broke=\"x\" category=capacity");
        w.run("carla", &record);
        if decision == "return" {
            w.run("rita", "/handoff resubmit H-1 the contract");
        }
        if decision.starts_with("new-owner") {
            w.run("ben", "/handoff accept H-1");
        }
        w.at("2026-12-08T16:00:00-05:00");
        assert_eq!(w.check(), Vec::<&str>::new(), "{decision}: nothing reopens");
        assert!(w.h.stall.is_none() && w.h.recalibration.is_none(), "{decision}");
        // Still unfinished a whole time-to-done window (40 business hours) later: overdue again.
        let week = ["2026-12-09", "2026-12-10", "2026-12-11", "2026-12-14"];
        progress(&mut w, &week, owner);
        assert!(w.h.stall.is_none(), "{decision}: {:?}", w.h.stall);
        w.at("2026-12-15T09:30:00-05:00").check();
        w.run(owner, "/handoff update H-1 going");
        w.at("2026-12-15T16:00:00-05:00");
        assert!(w.check().contains(&"stall_opened"), "{decision}");
        assert_eq!(w.h.stall.as_ref().map(|s| s.kind), Some(StallKind::Overdue), "{decision}");
    }
}

#[test]
fn a_recalibration_recorded_past_the_time_to_done_target_is_not_followed_by_another_at_once() {
    // Nobody accepts for a week: the queue's ladder convenes a recalibration, and meanwhile the
    // 40-hour time-to-done target passes under the open stall.
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    let week = ["2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04", "2026-12-07", "2026-12-08"];
    for day in week {
        w.at(&format!("{day}T16:00:00-05:00")).check();
    }
    assert_eq!(w.h.stall.as_ref().map(|s| s.kind), Some(StallKind::NoAccept));
    assert!(w.h.recalibration.is_some());
    let record = "/handoff record H-1 decision=new-owner new_owner=ben assumption_broke=\"x\" category=capacity";
    w.run("carla", record);
    // Before, this check opened an overdue stall dated at the old breach, climbed the whole ladder
    // and convened a second recalibration.
    assert_eq!(w.check(), Vec::<&str>::new());
    assert!(w.h.stall.is_none() && w.h.recalibration.is_none());
    w.run("ben", "/handoff accept H-1");
    assert_eq!(w.check(), Vec::<&str>::new());
}

#[test]
fn a_handoff_that_went_overdue_under_another_stall_climbs_the_overdue_ladder_from_its_first_step() {
    // Nobody accepts for a week: the queue's ladder climbs (to a recalibration) while the 40-hour
    // time-to-done target passes under that stall.
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    for day in ["2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04", "2026-12-07"] {
        w.at(&format!("{day}T10:00:00-05:00")).check();
    }
    assert_eq!(w.h.stall.as_ref().map(|s| s.kind), Some(StallKind::NoAccept));
    // Accepted a week late, long past the 40-hour target. Before, the next check opened the
    // overdue stall at the old breach and fired only its highest step at once (the convene).
    w.at("2026-12-07T11:00:00-05:00");
    w.run("ana", "/handoff accept H-1");
    assert_eq!(w.check(), ["stall_opened", "ladder_step"]);
    let stall = w.h.stall.clone().expect("overdue");
    assert_eq!((stall.kind, stall.opened_at, stall.fired.clone()), (StallKind::Overdue, w.now, vec![0]));
    w.at("2026-12-07T13:00:00-05:00");
    assert_eq!(w.check(), ["ladder_step"], "the lead two business hours later");
}

#[test]
fn a_recalibration_recorded_after_hours_past_the_target_gives_the_fresh_window_too() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    for day in ["2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04", "2026-12-07", "2026-12-08"] {
        w.at(&format!("{day}T16:00:00-05:00")).check();
    }
    // Recorded at 20:00, outside the receiving function's hours.
    w.at("2026-12-08T20:00:00-05:00");
    w.run("carla", "/handoff record H-1 decision=new-owner new_owner=ben assumption_broke=\"x\" category=capacity");
    w.at("2026-12-09T09:00:00-05:00");
    assert_eq!(w.check(), Vec::<&str>::new(), "not overdue the next morning");
}

/// H-1 on sales-to-cs at the gate with Sam's approval, stalled there until the ladder convened
/// `approvals-deadlocked`.
fn deadlocked_at_the_gate() -> World {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("ana", "/handoff done H-1");
    w.run("sam", "/approve H-1");
    w.checks_at(&[
        "2026-11-30T17:00:00-05:00",
        "2026-12-01T11:00:00-05:00",
        "2026-12-01T13:00:00-05:00",
        "2026-12-01T17:00:00-05:00",
    ]);
    assert_eq!(w.h.recalibration.as_ref().map(|r| r.playbook.as_str()), Some("approvals-deadlocked"));
    w
}

#[test]
fn a_recalibration_at_the_gate_sends_it_back_to_the_requester_as_it_says() {
    let mut w = deadlocked_at_the_gate();
    let record = r#"/handoff record H-1 decision=return assumption_broke="the renewal terms were never attached" category=missing-information"#;
    let d = w.run("carla", record).clone();
    assert!(d.reply.ends_with("returned to Rita Reyes."), "{}", d.reply);
    assert_eq!((w.h.state, w.h.approvals.len()), (State::Returned, 0));
    let told = d.intents.iter().find(|i| i.to == Recipient::Person("rita".into()) && i.kind == IntentKind::Notice);
    let told = told.expect("the requester is told");
    assert!(
        told.text.contains("returned to you by Carla Costa: the renewal terms were never attached"),
        "{}",
        told.text
    );
    assert_eq!(told.actions, [Action::Resubmit]);
    assert!(d.events.iter().any(|e| e.change.kind() == "returned"), "in the audit trail");
    // Resubmitted, it is the owner's work again, and the gate starts afresh: two approvals.
    w.run("rita", "/handoff resubmit H-1 crm=https://crm.example/acme terms attached");
    assert_eq!(w.h.state, State::InProgress);
    w.run("ana", "/handoff done H-1");
    w.run("sam", "/approve H-1");
    assert_eq!(w.h.state, State::AwaitingGate, "Sam's earlier approval was for what it held before");
}

#[test]
fn a_cancellation_by_the_sending_lead_tells_the_requester_and_owner() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("sam", "/handoff cancel H-1 a duplicate of H-7");
    let text = r#"H-1 "Acme renewal" was cancelled by Sam Sato: a duplicate of H-7"#;
    let told: Vec<(String, &str)> = (w.last().intents.iter())
        .filter(|i| i.kind == IntentKind::Notice)
        .map(|i| (format!("{:?}", i.to), i.text.as_str()))
        .collect();
    assert_eq!(told, [(r#"Person("ana")"#.to_string(), text), (r#"Person("rita")"#.to_string(), text)]);
    // The requester who cancels is not told what she did.
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("rita", "/handoff cancel H-1 lost the deal");
    assert!(!w.last().intents.iter().any(|i| i.kind == IntentKind::Notice), "{:?}", w.last().intents);
}

#[test]
fn a_recalibration_that_cancels_tells_the_requester_and_owner_who_did_not_record_it() {
    let told = |w: &World| -> Vec<(String, String)> {
        let notices = w.last().intents.iter().filter(|i| i.kind == IntentKind::Notice);
        notices.map(|i| (format!("{:?}", i.to), i.text.clone())).collect()
    };
    // Convened without a stall on accepted work, the missing-information playbook applies.
    let record =
        r#"/handoff record H-1 decision=cancel assumption_broke="the deal was lost" category=capacity missing=x"#;
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("carla", "/recalibrate H-1");
    w.run("carla", record);
    assert_eq!(w.h.state, State::Cancelled);
    let text = r#"H-1 "Acme renewal" was cancelled by Carla Costa after a recalibration: the deal was lost"#;
    assert_eq!(
        told(&w),
        [(r#"Person("rita")"#.to_string(), text.to_string()), (r#"Person("ana")"#.to_string(), text.to_string())]
    );
    // The owner who records it is not told what she did.
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("ana", "/recalibrate H-1");
    w.run("ana", record);
    let to: Vec<String> = told(&w).into_iter().map(|(to, _)| to).collect();
    assert_eq!(to, [r#"Person("rita")"#]);
}

#[test]
fn a_recalibration_at_the_gate_gives_it_to_a_new_owner_who_submits_it_anew() {
    let mut w = deadlocked_at_the_gate();
    let record = r#"/handoff record H-1 decision=new-owner new_owner=ben assumption_broke="Ana left the account" category=capacity"#;
    let d = w.run("carla", record).clone();
    assert_eq!((w.h.state, w.h.approvals.len()), (State::Reassigned, 0));
    // Told, as a reassignment is, and recorded as one.
    let told = d.intents.iter().find(|i| i.to == Recipient::Person("ben".into()) && i.kind == IntentKind::Notice);
    let told = told.expect("the new owner is told why");
    assert_eq!(
        told.text,
        "Carla Costa gave you H-1 \"Acme renewal\" after a recalibration (what broke: Ana left the account). \
         Accept it with `/handoff accept H-1`."
    );
    assert_eq!(told.actions, [Action::Accept, Action::Return]);
    assert!(d.events.iter().any(|e| e.change.kind() == "reassigned"));
    // Every card drawn shows the recalibration over, the previous owner's too.
    let cards: Vec<&Intent> = d.intents.iter().filter(|i| i.kind == IntentKind::Card).collect();
    assert!(cards.iter().any(|c| c.to == Recipient::Person("ana".into())), "{cards:?}");
    assert!(cards.iter().all(|c| !c.text.contains("Recalibration under way")), "{cards:?}");
    w.run("ben", "/handoff accept H-1");
    w.run("ben", "/handoff done H-1");
    w.run("sam", "/approve H-1");
    assert_eq!(w.h.state, State::AwaitingGate);
    w.run("vic", "/approve H-1");
    assert_eq!(w.h.state, State::Done);
}

#[test]
fn a_comment_tells_the_requester_owner_and_watchers_and_moves_nothing() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    // Nobody owns it yet: the receiving lead, accountable for the queue, hears it.
    let d = w.run("rita", "/handoff comment H-1 renewal date is firm").clone();
    assert_eq!(d.reply, "Comment recorded on H-1; told Carla Costa.");
    w.run("ana", "/handoff accept H-1");
    w.run("vic", "/handoff watch H-1");
    let before = w.h.clone();
    let d = w.at("2026-11-30T10:00:00-05:00").run("rita", "/handoff comment H-1 the customer prefers Tuesdays").clone();
    assert_eq!(d.reply, "Comment recorded on H-1; told Ana Alves and its watcher.");
    let said: Vec<(String, &str)> = d.intents.iter().map(|i| (format!("{:?}", i.to), i.text.as_str())).collect();
    assert_eq!(said.len(), 2, "{said:?}");
    assert_eq!(
        said[0],
        (r#"Person("ana")"#.into(), "Rita Reyes commented on H-1 \"Acme renewal\": the customer prefers Tuesdays")
    );
    assert_eq!(said[1].0, r#"Person("vic")"#);
    assert!(said[1].1.contains("Rita Reyes (console) commented: “the customer prefers Tuesdays”"), "{}", said[1].1);
    assert_eq!(d.events.iter().map(|e| e.change.kind()).collect::<Vec<_>>(), ["commented"]);
    // Not progress: the clocks and state are as they were.
    assert_eq!(
        (w.h.state, &w.h.phase_clock, &w.h.total_clock),
        (before.state, &before.phase_clock, &before.total_clock)
    );
    // The owner commenting tells the requester.
    let d = w.run("ana", "/handoff comment H-1 booked for Tuesday").clone();
    assert_eq!(d.reply, "Comment recorded on H-1; told Rita Reyes and its watcher.");
    assert!(parse("/handoff comment H-1    ").expect_err("typed empty").message.contains("say what you want to tell"));
    let blank = Command::Comment { id: 1, text: "  ".into() };
    let err = decide(&w.model, &w.h, &blank, "rita", Surface::Discord, w.now).expect_err("a blank form field");
    assert!(err.to_string().contains("say what you want to tell them"), "{err}");
    w.run("rita", "/handoff cancel H-1 deal lost");
    // Closed, a comment or a recalibration points to a post-mortem, a watch to its log.
    let comment = w.refused("rita", "/handoff comment H-1 one more thing");
    assert!(comment.contains("H-1 is cancelled: it is closed") && comment.contains("`/postmortem H-1 "), "{comment}");
    assert!(w.refused("carla", "/recalibrate H-1").contains("record a post-mortem"));
    let watch = w.refused("sam", "/handoff watch H-1");
    assert!(watch.contains("nothing more will happen to it (`/handoff log H-1` shows what did)"), "{watch}");
    assert!(w.refused("ana", "/ack H-1").ends_with("it is closed; hand off a new one with `/handoff new`"));
}

#[test]
fn a_handoff_that_closes_with_a_recalibration_open_points_its_thread_to_a_post_mortem() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("ana", "/recalibrate H-1");
    w.run("ana", "/handoff done H-1");
    w.run("sam", "/approve H-1");
    let d = w.run("vic", "/approve H-1").clone();
    assert_eq!((w.h.state, w.h.recalibration.is_some(), d.next_check), (State::Done, false, None));
    let thread = d.intents.iter().find(|i| i.kind == IntentKind::Thread).expect("the thread is told");
    assert_eq!(thread.to, Recipient::SlackChannel("#cs-handoffs".into()));
    assert!(thread.text.contains("is done with this recalibration open"), "{}", thread.text);
    assert!(
        thread
            .text
            .ends_with("`/postmortem H-1 playbook=missing-information assumption_broke=... category=... missing=...`."),
        "{}",
        thread.text
    );
    // Its messages that ask for a record are told there is none to make.
    let concluded: Vec<&Intent> = d.intents.iter().filter(|i| i.kind == IntentKind::Concluded).collect();
    assert_eq!(concluded.len(), 1);
    assert_eq!(concluded[0].to, thread.to);
    assert_eq!(concluded[0].text, "✓ Closed without a record: H-1 is done (Mon 30 Nov 09:00 EST).");
    // No timebox reminder asks for a record that would be refused; the post-mortem is taken.
    assert_eq!(w.at("2026-12-01T09:00:00-05:00").check(), Vec::<&str>::new());
    w.run(
        "carla",
        r#"/postmortem H-1 playbook=missing-information missing=terms assumption_broke="x" category=capacity"#,
    );
}

const CERTS: &str = r#"/handoff new eng-to-ops "Rotate certs" service=edge runbook=https://runbooks.example/certs"#;

#[test]
fn whoever_must_act_gets_a_heads_up_before_each_target_once() {
    // eng-to-ops warns 30 working minutes ahead; Operations works 08:00-20:00 UTC.
    let mut w = World::new("2026-11-30T08:00:00Z", "eve", CERTS);
    let next = |w: &World| crate::stall::next_check(&Ctx::new(&w.model, "eng-to-ops").expect("seam"), &w.h);
    assert_eq!(next(&w), Some(t("2026-11-30T09:30:00Z")), "the heads-up comes first");
    // Nobody has taken it: those who may, and the lead.
    assert_eq!(w.at("2026-11-30T09:30:00Z").check(), ["warned"]);
    assert_eq!(w.recipients(), [r#"Person("omar")"#, r#"Person("olga")"#, r#"Person("deploy-bot")"#]);
    let text = &w.last().intents[0].text;
    assert_eq!(
        text,
        "Heads-up: H-1 \"Rotate certs\" is due for acceptance by Mon 30 Nov 10:00 UTC (in 30m of working time). \
         Accept it with `/handoff accept H-1`."
    );
    assert_eq!(w.last().intents[0].actions, [Action::Accept, Action::Return]);
    // Once: the next check is the breach, where the ladder starts as before.
    assert_eq!(next(&w), Some(t("2026-11-30T10:00:00Z")));
    assert_eq!(w.at("2026-11-30T10:00:00Z").check(), ["stall_opened", "ladder_step"]);

    // Taken: the heads-up is answered with the stall it became, each of its recipients once.
    w.at("2026-11-30T10:10:00Z").run("olga", "/handoff accept H-1");
    let answered: Vec<String> = settled(&w).into_iter().map(|(to, _)| to).collect();
    assert_eq!(answered, [r#"Person("omar")"#, r#"Person("olga")"#, r#"Person("deploy-bot")"#]);
    // The owner hears before the next update is due, and again for the deadline after it.
    assert_eq!(w.at("2026-11-30T13:40:00Z").check(), ["warned"]);
    assert_eq!(w.recipients(), [r#"Person("olga")"#]);
    assert_eq!(w.last().intents[0].kind, IntentKind::HeadsUp);
    assert!(
        w.last().intents[0].text.contains("due for next update by Mon 30 Nov 14:10 UTC"),
        "{}",
        w.last().intents[0].text
    );
    // The update answers it (it never stalled), and its buttons go.
    w.at("2026-11-30T13:50:00Z").run("olga", "/handoff update H-1 staged on 3 of 5 edges");
    assert_eq!(
        settled(&w),
        [(
            r#"Person("olga")"#.to_string(),
            "✓ Answered: Olga Orlova (console) posted an update: “staged on 3 of 5 edges” (Mon 30 Nov 13:50 UTC). \
             Now: in progress."
                .to_string()
        )]
    );
    assert_eq!(next(&w), Some(t("2026-11-30T17:20:00Z")));

    // At the gate: the approvers who may still approve.
    w.at("2026-11-30T14:00:00Z").run("olga", "/handoff done H-1");
    assert_eq!(w.at("2026-11-30T17:30:00Z").check(), ["warned"]);
    assert_eq!(w.recipients(), [r#"Person("omar")"#]);
    assert_eq!(w.last().intents[0].actions, [Action::Approve, Action::Reject]);
    let log = crate::activity::line(
        &Ctx::new(&w.model, "eng-to-ops").expect("seam"),
        w.last().events.first().expect("event"),
        w.now,
    );
    assert_eq!(log, "Baton gave a heads-up: due for gate decision by Mon 30 Nov 18:00 UTC");
}

#[test]
fn a_seam_without_warn_gives_no_heads_up() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    assert_eq!(w.at("2026-11-30T12:59:00-05:00").check(), Vec::<&str>::new());
    assert_eq!(w.at("2026-11-30T13:00:00-05:00").check(), ["stall_opened", "ladder_step"]);
}

#[test]
fn a_plate_lists_the_most_urgent_first() {
    use crate::plate::{Loaded, build};
    let none = Away::default();
    // Ana owns three: H-1 accepted first (its update is due first), H-2 stalled (unaccepted, then
    // taken late: its stall is oldest), H-3 returned (no clock runs).
    let mut one = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    one.run("ana", "/handoff accept H-1");
    let mut two = World::new("2026-11-30T09:00:00-05:00", "rita", &ACME.replace("Acme", "Beta"));
    two.h.id = 2;
    two.at("2026-11-30T13:00:00-05:00").check();
    let mut three = World::new("2026-11-30T09:00:00-05:00", "rita", &ACME.replace("Acme", "Gamma"));
    three.h.id = 3;
    three.run("ana", "/handoff accept H-3");
    three.run("ana", "/handoff return H-3 no contract attached");
    let own = [one.h.clone(), two.h.clone(), three.h.clone()];
    let now = t("2026-11-30T14:00:00-05:00");
    let plate =
        build(&one.model, "rita", &Loaded { own: &own, waiting: &[], led: &[], watched: &[], away: &none }, now);
    let order: Vec<u64> = plate.sections[0].items.iter().map(|i| i.id).collect();
    assert_eq!(order, [2, 1, 3], "stalled, then by deadline, then returned: {}", plate.text());
}

#[test]
fn a_discord_escalation_offers_what_the_handoff_waits_for() {
    // eng-to-ops escalates to Operations' Discord channel two working hours into a stall.
    let discord = |w: &World| {
        let i = w.last().intents.iter().find(|i| matches!(i.to, Recipient::DiscordChannel(_)));
        i.expect("a Discord escalation").actions.clone()
    };
    let mut w = World::new("2026-11-30T08:00:00Z", "eve", CERTS);
    w.checks_at(&["2026-11-30T09:30:00Z", "2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z", "2026-11-30T12:00:00Z"]);
    // Nobody owns it: whoever answers takes it (Acknowledge would refuse them).
    assert_eq!(discord(&w), [Action::Accept, Action::Blocked]);
    w.at("2026-11-30T12:10:00Z").run("olga", "/handoff accept H-1");
    w.run("olga", "/ack H-1");
    w.checks_at(&["2026-11-30T16:10:00Z", "2026-11-30T17:10:00Z", "2026-11-30T18:10:00Z"]);
    assert_eq!(discord(&w), [Action::Ack, Action::Snooze, Action::Blocked]);
    // At a gate that waits for approvals, the approvers' buttons.
    w.model.seams.get_mut("eng-to-ops").expect("seam").sla.gate = chrono::Duration::hours(1);
    w.at("2026-11-30T18:20:00Z").run("olga", "/handoff done H-1");
    w.checks_at(&["2026-11-30T19:20:00Z", "2026-12-01T08:20:00Z", "2026-12-01T09:20:00Z"]);
    assert_eq!(discord(&w), [Action::Approve, Action::Reject, Action::Blocked]);
}

/// A name is read as the id it is, else the one id or name it is but for case; ambiguous or
/// unknown names are left for the refusal.
#[test]
fn typed_names_find_the_one_thing_they_mean() {
    let mut model = model();
    assert_eq!(model.person_named("Ana"), Some("ana"));
    assert_eq!(model.person_named("@ANA"), Some("ana"));
    assert_eq!(model.person_named("ana alves"), Some("ana"));
    assert_eq!(model.person_named("Anna"), None);
    assert_eq!(model.function_named("Customer Success"), Some("customer-success"));
    assert_eq!(model.function_named("SALES"), Some("sales"));
    assert_eq!(model.seam_named("Sales-To-CS"), Some("sales-to-cs"));
    assert_eq!(model.category_named("Capacity"), Some("capacity"));
    assert_eq!(model.playbook_named("Unacknowledged"), Some("unacknowledged"));
    assert_eq!(RiskTier::parse("High-Stakes"), Some(RiskTier::HighStakes));
    // Two people whose ids differ only in case: the exact one is meant, the other case neither.
    let mut twin = model.people["ana"].clone();
    twin.id = "Ana".into();
    twin.name = "Ana Twin".into();
    model.people.insert("Ana".into(), twin);
    assert_eq!(model.person_named("Ana"), Some("Ana"));
    assert_eq!(model.person_named("ana"), Some("ana"));
    assert_eq!(model.person_named("ANA"), None);
}

/// A record that needs fixing names everything at once: a missing field and a new owner from
/// outside the receiving function together, not one after the other.
#[test]
fn a_record_names_a_new_owner_outside_the_function_with_the_rest() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("ana", "/recalibrate H-1 missing-information");
    let err = w.refused(
        "ana",
        r#"/handoff record H-1 decision=new-owner new_owner=rita assumption_broke="x" category=capacity"#,
    );
    assert!(err.contains("• missing: `missing` is required"), "{err}");
    assert!(err.contains("• new_owner: Rita Reyes is not a member of Customer Success, so cannot own it"), "{err}");
    let d = w.run("ana", r#"/handoff record H-1 decision=new-owner new_owner=ben assumption_broke="x" category=capacity missing="the contract""#);
    assert!(d.reply.ends_with("Ben Brooks owns it now and must accept it."), "{}", d.reply);
}

/// The answered-escalation messages of the last decision: (recipient, text), in order.
fn settled(w: &World) -> Vec<(String, String)> {
    let settled = w.last().intents.iter().filter(|i| i.kind == IntentKind::Settled);
    settled
        .map(|i| {
            assert!(i.actions.is_empty(), "an answered escalation keeps no buttons");
            assert_eq!(i.handoff, Some(w.h.id));
            (format!("{:?}", i.to), i.text.clone())
        })
        .collect()
}

#[test]
fn when_a_stall_ends_everyone_its_escalations_reached_is_told_it_was_answered_once() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.checks_at(&["2026-11-30T13:00:00-05:00", "2026-11-30T15:00:00-05:00", "2026-11-30T17:00:00-05:00"]);
    assert!(settled(&w).is_empty(), "climbing the ladder answers nothing");
    w.at("2026-12-01T09:30:00-05:00").run("ana", "/handoff accept H-1");
    let told: Vec<String> = settled(&w).into_iter().map(|(to, _)| to).collect();
    // Carla, reminded with the queue and then told as lead, is told once.
    assert_eq!(
        told,
        [r#"Person("ana")"#, r#"Person("ben")"#, r#"Person("carla")"#, r##"SlackChannel("#cs-handoffs")"##]
    );
    assert_eq!(
        settled(&w)[0].1,
        "✓ No longer stalled: Ana Alves (console) accepted it (Tue 01 Dec 09:30 EST). Now: accepted."
    );
    w.run("ana", "/ack H-1");
    assert!(settled(&w).is_empty(), "each episode's escalations are answered once");
    // The next episode (no update for 8 working hours) reminds the owner alone, and only the
    // owner is told when it ends.
    w.at("2026-12-01T17:30:00-05:00").check();
    w.at("2026-12-02T09:00:00-05:00").check();
    w.at("2026-12-02T10:00:00-05:00").check();
    assert!(w.h.stall.is_some(), "stalled for want of an update");
    w.run("ana", "/handoff update H-1 kickoff booked");
    let told: Vec<String> = settled(&w).into_iter().map(|(to, _)| to).collect();
    assert_eq!(told, [r#"Person("ana")"#]);
}

#[test]
fn an_answered_escalation_is_edited_at_any_hour_and_a_stall_ended_by_baton_says_so_plainly() {
    // Engineering (Berlin) is reminded at 14:00; Eli takes it at 19:00, after everyone's hours.
    let mut w = World::new("2026-11-30T09:00:00+00:00", "mia", LAUNCH);
    w.at("2026-11-30T14:00:00+01:00").check();
    w.at("2026-11-30T19:00:00+01:00").run("eli", "/handoff accept H-1");
    let answered: Vec<&Intent> = w.last().intents.iter().filter(|i| i.kind == IntentKind::Settled).collect();
    assert_eq!(answered.len(), 3, "eve, eli and emma were reminded");
    assert!(answered.iter().all(|i| i.not_before.is_none()), "an edit notifies nobody: it waits for no one");
    let held =
        w.last().intents.iter().find(|i| i.kind == IntentKind::Notice && i.to == Recipient::Person("mia".into()));
    assert!(held.is_some_and(|i| i.not_before.is_some()), "a notice still waits for its recipient's hours");
}

/// `person` leaves the operating model (a reload without them).
fn leaves(model: &mut OperatingModel, person: &str) {
    model.people.remove(person);
    for f in model.functions.values_mut() {
        f.members.retain(|m| m != person);
    }
}

/// Someone who leaves the model with handoffs of theirs open: the receiving lead hears at once,
/// once, and gets the reminders meant for the owner, with the way to reassign; nothing is sent to
/// the person who left; the lead's request is answered when it is reassigned.
#[test]
fn an_owner_who_left_the_model_is_reported_to_the_lead_and_reminders_go_there() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("ada", "/handoff watch H-1");
    leaves(&mut w.model, "ana");
    leaves(&mut w.model, "ada");
    assert_eq!(w.next_check(), Some(w.h.updated_at), "checked at once");
    assert_eq!(w.at("2026-11-30T09:05:00-05:00").check(), ["owner_left"]);
    assert_eq!(w.recipients(), [r#"Person("carla")"#]);
    let told = &w.last().intents[0];
    assert_eq!(told.kind, IntentKind::Escalation);
    assert!(
        told.text.starts_with(
            r#"H-1 "Acme renewal" (sales-to-cs) is owned by ana, who is no longer in the operating model"#
        ),
        "{}",
        told.text
    );
    assert!(
        told.text.contains("Reassign it with `/handoff reassign H-1 <person>` (or all ana owned with `/handoff reassign-all ana <person>`)"),
        "{}",
        told.text
    );
    assert_eq!(w.check(), Vec::<&str>::new(), "told once");
    assert!(w.next_check() > Some(w.now), "then checked when a target falls due");

    // The update target passes: the reminder meant for the owner goes to the lead, then the lead's own step.
    let (start, mut all) = (w.now, Vec::new());
    for hour in 1..=40 {
        w.now = start + chrono::Duration::hours(hour);
        w.check();
        all.extend(w.last().intents.iter().map(|i| (i.to.clone(), i.kind.clone(), i.text.clone())));
    }
    let escalations: Vec<&String> = all
        .iter()
        .filter(|(to, kind, _)| *kind == IntentKind::Escalation && *to == Recipient::Person("carla".into()))
        .map(|(.., t)| t)
        .collect();
    assert!(escalations[0].starts_with("Reminder: H-1"), "{escalations:?}");
    assert!(
        escalations[0].ends_with(
            "Its owner, ana, is no longer in the operating model: reassign it with `/handoff reassign H-1 <person>`."
        ),
        "{escalations:?}"
    );
    assert!(escalations[1].contains("Owner: ana (no longer in the operating model)."), "{escalations:?}");
    let card = all
        .iter()
        .find(|(to, kind, _)| *kind == IntentKind::Card && *to == Recipient::SlackChannel("#cs-handoffs".into()));
    let card = &card.expect("the channel's card redrawn as it stalls").2;
    assert!(card.contains("Owner: ana (no longer in the operating model)"), "{card}");
    assert!(!card.contains("Watched by"), "a watcher who left watches no more: {card}");
    let gone = |to: &Recipient| matches!(to, Recipient::Person(p) if p == "ana" || p == "ada");
    assert!(all.iter().all(|(to, ..)| !gone(to)), "nothing for those who left: {all:?}");
    // Its playbook has the owner convene: the lead does instead.
    assert_eq!(w.h.recalibration.as_ref().map(|r| r.convener.as_str()), Some("carla"));

    // The lead reassigns it: what asked them is answered; the one who left hears nothing.
    w.run("carla", "/handoff reassign H-1 ben");
    let answered = settled(&w);
    assert_eq!(answered.iter().filter(|(to, _)| to == r#"Person("carla")"#).count(), 1, "{answered:?}");
    assert!(w.last().intents.iter().all(|i| i.to != Recipient::Person("ana".into())));
    assert!(w.last().intents.iter().any(|i| i.to == Recipient::Person("ben".into())));
}

/// A heads-up meant for an owner who left goes to the receiving lead, with the way to reassign.
#[test]
fn a_heads_up_for_an_owner_who_left_goes_to_the_lead() {
    let mut w = World::new("2026-11-30T08:00:00Z", "eve", CERTS);
    w.at("2026-11-30T08:10:00Z").run("olga", "/handoff accept H-1");
    leaves(&mut w.model, "olga");
    assert_eq!(w.check(), ["owner_left"]);
    assert_eq!(w.recipients(), [r#"Person("omar")"#]);
    // The update falls due at 12:10; the heads-up half an hour before.
    assert_eq!(w.at("2026-11-30T11:40:00Z").check(), ["warned"]);
    assert_eq!(w.recipients(), [r#"Person("omar")"#]);
    let text = &w.last().intents[0].text;
    assert!(
        text.starts_with(r#"Heads-up: H-1 "Rotate certs" is due for next update by Mon 30 Nov 12:10 UTC"#),
        "{text}"
    );
    assert!(
        text.ends_with(
            "Its owner, olga, is no longer in the operating model: reassign it with `/handoff reassign H-1 <person>`."
        ),
        "{text}"
    );
    assert_eq!(w.last().intents[0].actions, render::lead_actions(&w.h), "the lead's buttons, not the owner's");
}

/// Work returned to a requester who then left waits on nobody: the sending lead hears once, and
/// may answer the return in their place (nobody else may).
#[test]
fn a_return_to_a_requester_who_left_goes_to_the_sending_lead() {
    let mut w = World::new("2026-11-30T09:00:00-05:00", "rita", ACME);
    w.run("ana", "/handoff accept H-1");
    w.run("ana", "/handoff return H-1 which contract?");
    leaves(&mut w.model, "rita");
    assert_eq!(w.next_check(), Some(w.h.updated_at), "checked at once");
    assert_eq!(w.at("2026-11-30T09:05:00-05:00").check(), ["requester_left"]);
    assert_eq!(w.recipients(), [r#"Person("sam")"#]);
    let told = &w.last().intents[0];
    assert_eq!(
        told.text,
        "H-1 \"Acme renewal\" (sales-to-cs) was returned to rita, who is no longer in the operating model, so nobody \
         will answer it. Answer it in their place with `/handoff resubmit H-1 [field=value ...] <what changed>`, or \
         cancel it with `/handoff cancel H-1 <reason>`."
    );
    assert_eq!(told.actions, [Action::Resubmit]);
    assert_eq!(w.check(), Vec::<&str>::new(), "told once");
    assert_eq!(w.next_check(), None, "then nothing is due until someone acts");

    assert_eq!(
        w.refused("ana", "/handoff resubmit H-1 the signed one"),
        "only the requester of H-1, rita (no longer in the operating model; in their place the lead of Sales, \
         Sam Sato), can resubmit it"
    );
    w.run("sam", "/handoff resubmit H-1 the signed one, in the CRM");
    assert_eq!(w.h.state, State::Accepted);
    assert_eq!(settled(&w).into_iter().map(|(to, _)| to).collect::<Vec<_>>(), [r#"Person("sam")"#]);
    assert!(w.last().intents.iter().all(|i| i.to != Recipient::Person("rita".into())), "nothing for rita");
}

/// A seam's `one_open_per` keys its open handoffs on those fields' values as people read them;
/// a decision claims the key when it makes the handoff or changes a keyed field (the store then
/// refuses it if another open handoff holds it), and a closed handoff holds none.
#[test]
fn an_open_handoff_holds_its_seams_one_open_per_values_until_it_closes() {
    let mut w =
        World::new("2026-11-30T10:00:00-05:00", "rita", &ACME.replace("account=Acme", r#"account="Acme  Corp""#));
    let seam = w.model.seams["sales-to-cs"].clone();
    let key =
        |fields: &[(&str, &str)]| seam.open_key(&fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    assert_eq!(key(&[("account", " acme corp ")]), key(&[("account", "ACME\tCorp")]));
    assert_ne!(key(&[("account", "Acme Corp")]), key(&[("account", "Acme Corporation")]));
    assert_eq!(key(&[("arr", "1")]), None, "a handoff without the field holds nothing");
    let created = w.last();
    assert!(created.claims_key, "a new handoff claims its key");
    assert_eq!(created.open_key, key(&[("account", "acme corp")]));
    assert_eq!(seam.open_key_words(&created.handoff.fields), "account Acme  Corp");

    w.at("2026-11-30T11:00:00-05:00").run("rita", "/handoff edit H-1 arr=125000 bigger deal");
    assert!(!w.last().claims_key, "an edit that keeps the account claims nothing");
    assert_eq!(w.last().open_key, key(&[("account", "acme corp")]));
    w.run("rita", "/handoff edit H-1 account=Globex it was Globex");
    assert!(w.last().claims_key, "a new account is claimed");
    assert_eq!(w.last().open_key, key(&[("account", "globex")]));
    w.check();
    assert!(!w.last().claims_key, "a stall check claims nothing");
    w.run("rita", "/handoff cancel H-1 duplicate of H-7");
    assert_eq!((w.last().open_key.as_deref(), w.last().claims_key), (None, false), "a closed handoff holds nothing");

    // A seam keyed on nothing keys nothing.
    let mut launch = World::new("2026-11-30T10:00:00-05:00", "mia", LAUNCH);
    assert_eq!((launch.last().open_key.as_deref(), launch.last().claims_key), (None, false));
    launch.check();
    assert_eq!(launch.last().open_key, None);
}

/// The refusal names the open handoff, where it stands, and how to add to it or replace it.
#[test]
fn a_handoff_already_open_is_named_with_where_it_stands_and_what_to_do() {
    let mut w = World::new("2026-11-30T10:00:00-05:00", "rita", ACME);
    let text = |w: &World| crate::already_open(&w.model, &w.h).to_string();
    let tail = "and the seam takes one open handoff per account. Add to it with `/handoff comment H-1 <text>`; if \
                this should replace it, its requester (Rita Reyes) or the sending lead (Sam Sato) cancels it first \
                with `/handoff cancel H-1 <reason>`.";
    let said = text(&w);
    assert_eq!(
        said,
        format!(
            "H-1 \"Acme renewal\" is already open on sales-to-cs for account Acme (in Customer Success's queue), {tail}"
        )
    );
    w.run("ana", "/handoff accept H-1");
    let said = text(&w);
    assert!(said.contains("for account Acme (accepted, owned by Ana Alves), and"), "{said}");
    w.run("ana", "/handoff return H-1 which account?");
    let said = text(&w);
    assert!(said.contains("(back with its requester, Rita Reyes)"), "{said}");
    let Rejection::AlreadyOpen { existing, fields, .. } = crate::already_open(&w.model, &w.h) else { panic!() };
    assert_eq!((existing, fields), (1, vec!["account".to_string()]));
}
