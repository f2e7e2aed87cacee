//! A script of commands run through the core against the shipped operating model: every parse,
//! decision, stall check, review and rendering must answer, never panic.
//!
//! Each line is `actor|minutes|command`: the person acting (an index into the configured
//! people, or an id), how far the clock moves first, and the command as typed; the command
//! `!leave` takes the actor out of the model (a reload without them), unless the model's leads or
//! approvers name them.
#![no_main]

use baton_core::away::{Away, Going, leave};
use baton_core::config::{Source, load};
use baton_core::history::{Viewer, scope};
use baton_core::{
    AwayCommand, Command, Ctx, Decision, Event, Handoff, IntentKind, NewHandoff, OperatingModel, Recipient, State,
    Surface, check_with, create, decide_covering, parse,
};
use baton_core::{record_verdict, render, review};
use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static MODEL: LazyLock<OperatingModel> = LazyLock::new(|| {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = std::fs::read_to_string(root.join("baton.toml")).expect("baton.toml");
    let files: Vec<(String, String)> = std::fs::read_dir(root.join("playbooks"))
        .expect("playbooks/")
        .map(|e| e.expect("entry").path())
        .map(|p| (p.display().to_string(), std::fs::read_to_string(&p).expect("playbook")))
        .collect();
    let playbooks: Vec<Source> = files.iter().map(|(n, t)| Source { name: n, text: t }).collect();
    load(Source { name: "baton.toml", text: &model }, &playbooks).expect("the shipped config loads")
});

/// `BATON_FUZZ_TRACE=1` prints each line's outcome (to see what a seed exercises).
static TRACE: LazyLock<bool> = LazyLock::new(|| std::env::var_os("BATON_FUZZ_TRACE").is_some());

fn trace(line: &str, outcome: &dyn std::fmt::Debug) {
    if *TRACE {
        eprintln!("{line}\n  -> {outcome:?}");
    }
}

/// What every reply must be: said, and without stray whitespace.
fn well_formed(reply: &str) {
    assert!(!reply.is_empty() && reply.trim() == reply, "reply {reply:?}");
}

/// No approver is left with a live request: a decision that takes a handoff away from a gate that
/// waits for approvals redraws the request of each approver it asked, without buttons.
fn no_live_requests(model: &OperatingModel, before: &Handoff, d: &Decision) {
    let gate = |h: &Handoff| h.state == State::AwaitingGate && h.tier.approvals_needed() > 0;
    if !gate(before) || gate(&d.handoff) {
        return;
    }
    let Some(seam) = model.seams.get(&before.seam) else { return };
    let asked = seam.approvers.iter().filter(|a| **a != before.requester && before.owner.as_ref() != Some(*a));
    for a in asked {
        let closed = d.intents.iter().any(|i| {
            i.kind == IntentKind::Card && i.to == Recipient::Person(a.clone()) && i.actions.is_empty()
        });
        assert!(closed, "{a}'s request was left live when H-{} left the gate ({})", before.id, d.handoff.state);
    }
}

/// No escalation is left live once its stall ends: whoever an episode's escalations reached is
/// told it was answered, without buttons, in the decision that ends it (and only then); nor a
/// recalibration's request for its record once it ends. Those no longer in the model are not told.
fn escalations_answered(model: &OperatingModel, before: &Handoff, d: &Decision) {
    let told = before.stall.as_ref().map_or(&[][..], |s| s.told.as_slice());
    let answered: Vec<&Recipient> =
        d.intents.iter().filter(|i| i.kind == IntentKind::Settled).map(|i| &i.to).collect();
    let episode = |h: &Handoff| h.stall.as_ref().map(|s| s.episode);
    let ended = episode(before).is_some() && episode(&d.handoff) != episode(before);
    // Heads-ups and notices that ask are answered too: when the handoff moves past their target.
    let warned = before.heads_up.as_ref().map_or(&[][..], |w| w.told.as_slice());
    let here = |to: &&Recipient| model.reaches(to);
    if ended {
        assert!(told.iter().filter(here).all(|t| answered.contains(&t)), "H-{}'s escalations answered", before.id);
    }
    for (i, to) in answered.iter().enumerate() {
        assert!(!answered[..i].contains(to), "H-{}: {to:?} answered twice", before.id);
        let asked = (ended && told.contains(to)) || warned.contains(to) || before.asked.contains(to);
        assert!(asked, "H-{}: {to:?} answered, but nothing asked of them was", before.id);
    }
    let live = d.intents.iter().any(|i| i.kind == IntentKind::Settled && !i.actions.is_empty());
    assert!(!live, "an answered escalation keeps no buttons");
    // A recalibration that ends (recorded, or its handoff closed) tells its thread so, once.
    let concluded: Vec<&Recipient> =
        d.intents.iter().filter(|i| i.kind == IntentKind::Concluded).map(|i| &i.to).collect();
    match (&before.recalibration, &d.handoff.recalibration) {
        (Some(rec), None) => assert_eq!(concluded, [&rec.thread], "H-{}'s recalibration concluded", before.id),
        _ => assert!(concluded.is_empty(), "H-{}: concluded with no recalibration ending", before.id),
    }
}

/// Nothing is addressed to someone not in the model: they cannot be reached (their lead hears).
fn reachable(model: &OperatingModel, d: &Decision) {
    for i in &d.intents {
        if let Recipient::Person(p) = &i.to {
            assert!(model.person(p).is_some(), "H-{}: {:?} addressed to {p}, who is not in the model", d.handoff.id, i.kind);
        }
    }
}

/// A decision keys the handoff on its seam's `one_open_per` values while it is open, and claims
/// the key (for the store to refuse when another open handoff holds it) only when it makes the
/// handoff or changes the key: never from a stall check, never once closed.
fn keyed(model: &OperatingModel, before: Option<&Handoff>, d: &Decision) {
    let key = |h: &Handoff| {
        let seam = model.seams.get(&h.seam)?;
        if h.state.is_terminal() { None } else { seam.open_key(&h.fields) }
    };
    let id = d.handoff.id;
    assert_eq!(d.open_key, key(&d.handoff), "H-{id}'s open key");
    let claims = d.open_key.is_some() && before.is_none_or(|b| key(b) != d.open_key);
    assert_eq!(d.claims_key, claims, "H-{id} claims its key only when it is new");
}

fn step(model: &OperatingModel, handoffs: &mut [Handoff], logs: &mut [Vec<Event>], now: DateTime<Utc>, away: &Away) {
    for (h, log) in handoffs.iter_mut().zip(logs.iter_mut()) {
        // Stall checks due by now, each at its own instant, as the scheduler runs them.
        for _ in 0..20 {
            let Ok(ctx) = Ctx::new(model, &h.seam) else { break };
            let Some(at) = baton_core::stall::next_check(&ctx, h) else { break };
            // As the store keeps it: whole milliseconds.
            let at = at.trunc_subsecs(3);
            if at > now {
                break;
            }
            match check_with(model, h, at, away) {
                Ok(d) => {
                    escalations_answered(model, h, &d);
                    reachable(model, &d);
                    keyed(model, Some(h), &d);
                    assert!(!d.claims_key, "H-{}: a stall check changes no field", h.id);
                    // A check at its own due instant acts, or the scheduler would spin on it.
                    assert!(!d.events.is_empty() || d.next_check != Some(at), "a check at {at} did nothing");
                    trace(&format!("  stall check at {at}"), &(d.handoff.state, &d.handoff.stall));
                    log.extend(d.events);
                    *h = d.handoff;
                }
                Err(_) => break,
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut reloaded = std::borrow::Cow::Borrowed(&*MODEL);
    let people: Vec<&String> = MODEL.people.keys().collect();
    // Read to the nanosecond, as `Utc::now()` gives it.
    let mut now: DateTime<Utc> = "2026-11-30T14:00:00.123456789Z".parse().unwrap();
    let mut handoffs: Vec<Handoff> = Vec::new();
    // Each handoff's audit trail, for its log.
    let mut logs: Vec<Vec<Event>> = Vec::new();
    let mut absent = std::collections::BTreeMap::new();
    let mut covers = std::collections::BTreeMap::new();
    // As the store reads them: a cover who left the model stands in for nobody.
    let away_now = |model: &OperatingModel,
                    absent: &std::collections::BTreeMap<String, DateTime<Utc>>,
                    covers: &std::collections::BTreeMap<String, String>| {
        let here = covers.iter().filter(|(_, c)| model.person(c).is_some());
        here.fold(Away::new(absent.clone()), |away, (p, c): (&String, &String)| away.with_cover(p, c))
    };
    for line in text.lines().take(64) {
        let mut parts = line.splitn(3, '|');
        let (who, minutes, typed) = match (parts.next(), parts.next(), parts.next()) {
            (Some(w), Some(m), Some(c)) => (w, m, c),
            _ => ("0", "0", line),
        };
        let actor = match who.parse::<usize>() {
            Ok(i) => people[i % people.len()].as_str(),
            Err(_) => who,
        };
        now += Duration::minutes(minutes.parse::<i64>().unwrap_or(0).clamp(0, 60 * 24 * 400));
        let named = |m: &OperatingModel| {
            m.functions.values().any(|f| f.lead == actor) || m.seams.values().any(|s| s.approvers.iter().any(|a| a == actor))
        };
        if typed == "!leave" && !named(&reloaded) {
            let m = reloaded.to_mut();
            m.people.remove(actor);
            for f in m.functions.values_mut() {
                f.members.retain(|p| p != actor);
            }
            continue;
        }
        let model = &*reloaded;
        let away = away_now(model, &absent, &covers);
        step(model, &mut handoffs, &mut logs, now, &away);
        let surface = [Surface::Console, Surface::Slack, Surface::Discord, Surface::Api][line.len() % 4];
        // As the app reads it: names in any case written as the model's ids.
        let Ok(command) = parse(typed).map(|c| c.resolved(model)) else { continue };
        match &command {
            Command::New { seam, title, fields } => {
                let id = handoffs.len() as u64 + 1;
                let new = NewHandoff { seam, title, fields };
                match create(model, id, new, actor, surface, now) {
                    Ok(d) => {
                        trace(line, &d.reply);
                        well_formed(&d.reply);
                        keyed(model, None, &d);
                        handoffs.push(d.handoff);
                        logs.push(d.events);
                    }
                    Err(e) => trace(line, &e),
                }
            }
            Command::Away(AwayCommand::Until { last, reason, cover }) => {
                let owned: Vec<Handoff> =
                    handoffs.iter().filter(|h| h.owner.as_deref() == Some(actor)).cloned().collect();
                let going = Going { person: actor, last: *last, reason, cover: cover.as_deref() };
                let left = leave(model, going, &owned, &away, now);
                trace(line, &left.as_ref().map(|l| &l.reply));
                if let Ok(l) = left {
                    well_formed(&l.reply);
                    absent.insert(actor.to_string(), l.until);
                    match cover {
                        Some(c) => covers.insert(actor.to_string(), c.clone()),
                        None => covers.remove(actor),
                    };
                }
            }
            Command::Away(_) => {
                absent.remove(actor);
                covers.remove(actor);
            }
            Command::Team(asked) => {
                if let Ok(f) = baton_core::team::function_for(model, actor, asked.as_deref(), &away, now) {
                    let side = |to: bool| -> Vec<Handoff> {
                        let on = |h: &&Handoff| {
                            model.seams.get(&h.seam).is_some_and(|s| if to { s.to == f.id } else { s.from == f.id })
                        };
                        handoffs.iter().filter(on).filter(|h| !h.state.is_terminal()).cloned().collect()
                    };
                    well_formed(&baton_core::team::board(model, f, &side(true), &side(false), &away, now));
                }
            }
            Command::Stalls(q) => {
                let _ = scope(model, Viewer::Person(actor), &q.filter);
            }
            Command::Log(id) => {
                let i = (*id as usize).wrapping_sub(1);
                if let (Some(h), Some(events)) = (handoffs.get(i), logs.get(i))
                    && let Ok(ctx) = Ctx::new(model, &h.seam)
                {
                    well_formed(&baton_core::activity::log(&ctx, h, events, now));
                }
            }
            Command::Mine => {
                let open: Vec<Handoff> = handoffs.iter().filter(|h| !h.state.is_terminal()).cloned().collect();
                let mine = |h: &&Handoff| h.requester == actor || h.owner.as_deref() == Some(actor);
                let own: Vec<Handoff> = open.iter().filter(mine).cloned().collect();
                let watched: Vec<Handoff> =
                    open.iter().filter(|h| h.watchers.iter().any(|w| w == actor)).cloned().collect();
                let loaded = baton_core::plate::Loaded {
                    own: &own,
                    waiting: &open,
                    led: &open,
                    watched: &watched,
                    away: &away,
                };
                well_formed(&baton_core::plate::build(model, actor, &loaded, now).text());
            }
            Command::Show(id) => {
                if let Some(h) = (*id as usize).checked_sub(1).and_then(|i| handoffs.get(i))
                    && let Ok(ctx) = Ctx::new(model, &h.seam)
                {
                    let _ = render::card(&ctx, h, now);
                }
            }
            c => {
                let Some(id) = c.target() else { continue };
                let Some(i) = (id as usize).checked_sub(1).filter(|i| *i < handoffs.len()) else { continue };
                let (h, log) = (&mut handoffs[i], &mut logs[i]);
                let covering = away.covered_by(actor, now);
                let decided = decide_covering(model, h, c, actor, &covering, surface, now);
                trace(line, &decided.as_ref().map(|d| &d.reply));
                if let Ok(d) = decided {
                    well_formed(&d.reply);
                    reachable(model, &d);
                    keyed(model, Some(h), &d);
                    no_live_requests(model, h, &d);
                    escalations_answered(model, h, &d);
                    *h = d.handoff;
                    log.extend(d.events);
                    // A recalibration just recorded is not convened again by the next check.
                    if matches!(c, Command::Record { .. })
                        && let Ok(again) = check_with(model, h, now, &away)
                    {
                        let convened = again.fired.iter().any(|f| f.action == "convene" && !f.skipped);
                        assert!(!convened, "{line}: recorded, then convened again at once");
                    }
                    // A webhook reviewer's verdict, as the rules would give it.
                    if let Some(reviewer) = d.review {
                        let verdict = review::rules(model, h, Some(&reviewer), now);
                        if let Ok(d) = record_verdict(model, h, verdict, now) {
                            *h = d.handoff;
                            log.extend(d.events);
                        }
                    }
                }
            }
        }
    }
});
