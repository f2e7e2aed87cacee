//! The handoff state machine: who may do what, in which state, with which fields.
//!
//! [`create`] and [`decide`] take the current state, a command, the actor and `now`, and return a
//! [`Decision`] (new state, audit events, outgoing intents) or a [`Rejection`] that says why and
//! who can act instead. Nothing here reads the clock or does IO.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use thiserror::Error;

use crate::calendar::{Clock, WorkCalendar, whole_ms};
use crate::command::Command;
use crate::contract::{FieldError, validate_fields};
use crate::handoff::*;
use crate::model::*;
use crate::render;
use crate::stall;

/// Why a command was refused, in words for the person who sent it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Rejection {
    /// The seam does not exist.
    #[error("there is no seam `{given}`; seams: {known}")]
    UnknownSeam {
        /// What was typed.
        given: String,
        /// Configured seams.
        known: String,
    },
    /// Only those answering for a recalibration may record it.
    #[error("the recalibration of H-{id} is recorded by its convener, {convener}, the owner, or a lead")]
    NotConvener {
        /// Handoff.
        id: HandoffId,
        /// Convener's name.
        convener: String,
    },
    /// Only those a handoff involves may record its post-mortem.
    #[error("only its requester, its owner, a lead of either function or an architect can {action} H-{id}")]
    NotInvolved {
        /// Handoff.
        id: HandoffId,
        /// What was attempted.
        action: &'static str,
    },
    /// No such playbook.
    #[error("there is no playbook `{given}`; playbooks: {known}")]
    UnknownPlaybook {
        /// What was typed.
        given: String,
        /// Configured playbooks.
        known: String,
    },
    /// The sender is not a configured person.
    #[error("you are not in Baton's operating model yet: ask a workflow architect to add you to baton.toml")]
    UnknownActor,
    /// A named person does not exist.
    #[error("there is no person `{0}` in the operating model")]
    UnknownPerson(String),
    /// No such handoff.
    #[error("there is no handoff H-{0}")]
    NoSuchHandoff(HandoffId),
    /// Contract fields are missing or invalid.
    #[error("{}", render::field_errors("the handoff's fields need fixing", .0))]
    InvalidFields(Vec<FieldError>),
    /// A recalibration's or post-mortem's artifact has fields missing or invalid.
    #[error("{}", render::field_errors("the record needs fixing", .0))]
    InvalidArtifact(Vec<FieldError>),
    /// The command does not apply in the handoff's state.
    #[error("H-{id} is {state}: {hint}")]
    WrongState {
        /// Handoff.
        id: HandoffId,
        /// Its state.
        state: State,
        /// What can be done instead.
        hint: String,
    },
    /// Only the owner may do this.
    #[error("only the owner of H-{id}, {owner}, can {action} it")]
    NotOwner {
        /// Handoff.
        id: HandoffId,
        /// Owner's name.
        owner: String,
        /// What was attempted.
        action: &'static str,
    },
    /// Only the owner or the receiving function's lead may do this.
    #[error("only {who} can {action} H-{id}{}", if *.unowned { " while nobody owns it" } else { "" })]
    NotOwnerOrLead {
        /// Handoff.
        id: HandoffId,
        /// Who may: its owner and the lead, by name.
        who: String,
        /// Nobody owns it yet (so only the lead may).
        unowned: bool,
        /// What was attempted.
        action: &'static str,
    },
    /// Only the receiving function may do this.
    #[error("only members of {function} (lead: {lead}) can {action} H-{id}")]
    NotReceiver {
        /// Handoff.
        id: HandoffId,
        /// Receiving function's name.
        function: String,
        /// Its lead's name.
        lead: String,
        /// What was attempted.
        action: &'static str,
    },
    /// Only the sending function may hand off on this seam.
    #[error("handoffs on {seam} come from {function}; ask {lead} (its lead) to hand it off")]
    NotSender {
        /// Seam id.
        seam: String,
        /// Sending function's name.
        function: String,
        /// Its lead's name.
        lead: String,
    },
    /// Only the requester (or the sending lead) may do this.
    #[error("only the requester of H-{id}, {requester}, can {action} it")]
    NotRequester {
        /// Handoff.
        id: HandoffId,
        /// Requester's name.
        requester: String,
        /// What was attempted.
        action: &'static str,
    },
    /// The actor may not approve here.
    #[error("{reason}; approvers for H-{id}: {approvers}")]
    CannotApprove {
        /// Handoff.
        id: HandoffId,
        /// Why not.
        reason: String,
        /// Who may.
        approvers: String,
    },
    /// An agent may not own work on this seam.
    #[error("{seam} is {mode}: agents cannot own its handoffs; a human must take it")]
    AgentNotAllowed {
        /// Seam id.
        seam: String,
        /// Its execution mode.
        mode: &'static str,
    },
    /// A snooze must end in the future and within a bound.
    #[error("a snooze lasts between 1 minute and 14 days; `{0}` is outside that")]
    BadSnooze(String),
    /// An absence that cannot be set as asked.
    #[error("{0}")]
    BadAbsence(String),
    /// Text holding an invisible control character, by input.
    #[error("{}", .0.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; "))]
    InvisibleCharacter(Vec<FieldError>),
    /// A function the asker may not see, or that does not exist.
    #[error("{0}")]
    NotYourFunction(String),
    /// An edit that changes nothing.
    #[error("nothing to change: {0}")]
    Unchanged(String),
    /// The command is read-only and does not change a handoff.
    #[error("`{0}` does not change a handoff")]
    NotAChange(&'static str),
    /// A stall-history request that names something unknown or outside what the asker may see.
    #[error("{0}")]
    History(String),
    /// Another open handoff on the seam holds the values its `one_open_per` fields key on.
    #[error("{text}")]
    AlreadyOpen {
        /// The open handoff.
        existing: HandoffId,
        /// The seam's `one_open_per` fields.
        fields: Vec<String>,
        /// What to say ([`already_open`]).
        text: String,
    },
}

/// The refusal of a handoff, new or edited, whose `one_open_per` values `existing` already holds
/// open: it names that handoff and where it stands, and how to add to it or replace it.
pub fn already_open(model: &OperatingModel, existing: &Handoff) -> Rejection {
    let fields = model.seams.get(&existing.seam).map(|s| s.one_open_per.clone()).unwrap_or_default();
    let text = match Ctx::new(model, &existing.seam) {
        Ok(ctx) => {
            let standing = match &existing.owner {
                _ if existing.state == State::Returned => {
                    format!("back with its requester, {}", model.name_or_gone(&existing.requester))
                }
                Some(owner) => format!("{}, owned by {}", existing.state, model.name_or_gone(owner)),
                None => format!("in {}'s queue", ctx.to.name),
            };
            format!(
                "{} \"{}\" is already open on {} for {} ({standing}), and the seam takes one open handoff per {}. \
                 Add to it with `/handoff comment {} <text>`; if this should replace it, its requester ({}) or the \
                 sending lead ({}) cancels it first with `/handoff cancel {} <reason>`.",
                existing.label(),
                existing.title,
                ctx.seam.id,
                ctx.seam.open_key_words(&existing.fields),
                ctx.seam.one_open_per.join(" and "),
                existing.label(),
                model.name_or_gone(&existing.requester),
                ctx.name(&ctx.from.lead),
                existing.label(),
            )
        }
        Err(_) => format!("{} is already open with the same values; add to it instead", existing.label()),
    };
    Rejection::AlreadyOpen { existing: existing.id, fields, text }
}

/// The seam a handoff travels on, with both functions resolved.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// The whole model (people, reviewers, playbooks).
    pub model: &'a OperatingModel,
    /// The seam.
    pub seam: &'a Seam,
    /// Sending function.
    pub from: &'a Function,
    /// Receiving function (its calendar drives the clocks).
    pub to: &'a Function,
}

impl<'a> Ctx<'a> {
    /// Resolves a seam id against the model.
    pub fn new(model: &'a OperatingModel, seam: &str) -> Result<Ctx<'a>, Rejection> {
        let unknown = || Rejection::UnknownSeam {
            given: seam.to_string(),
            known: model.seams.keys().cloned().collect::<Vec<_>>().join(", "),
        };
        let s = model.seams.get(seam).ok_or_else(unknown)?;
        let from = model.functions.get(&s.from).ok_or_else(unknown)?;
        let to = model.functions.get(&s.to).ok_or_else(unknown)?;
        Ok(Ctx { model, seam: s, from, to })
    }

    /// The calendar SLA clocks run on.
    pub fn cal(&self) -> &'a WorkCalendar {
        &self.to.calendar
    }

    /// The seam's Slack channel: its own, else the receiving function's.
    pub fn slack_channel(&self) -> Option<&'a String> {
        self.seam.slack_channel.as_ref().or(self.to.slack_channel.as_ref())
    }

    /// The seam's Discord channel: its own, else the receiving function's.
    pub fn discord_channel(&self) -> Option<&'a String> {
        self.seam.discord_channel.as_ref().or(self.to.discord_channel.as_ref())
    }

    /// Where the seam's card goes for all to see: its Slack channel, or for a function on Discord
    /// alone, its Discord channel.
    pub fn card_channel(&self) -> Option<Recipient> {
        match (self.slack_channel(), self.discord_channel()) {
            (Some(c), _) => Some(Recipient::SlackChannel(c.clone())),
            (None, Some(c)) => Some(Recipient::DiscordChannel(c.clone())),
            (None, None) => None,
        }
    }

    pub(crate) fn name(&self, id: &'a str) -> &'a str {
        self.model.name_of(id)
    }

    /// A contract field's value as people read it: a person field names the person.
    pub(crate) fn shown<'v>(&self, field: &str, value: &'v str) -> std::borrow::Cow<'v, str> {
        let spec = self.seam.contract.iter().find(|f| f.name == field);
        match spec.map(|f| &f.kind) {
            Some(crate::model::FieldType::Person) => self.person_name(value),
            _ => value.into(),
        }
    }

    /// A person field's value as people read it: the person's name, when it names one.
    pub(crate) fn person_name<'v>(&self, value: &'v str) -> std::borrow::Cow<'v, str> {
        self.model.person(value).map_or(value.into(), |p| p.name.clone().into())
    }
}

/// Builds a decision step by step: the handoff being changed plus what the change produces.
pub(crate) struct Draft<'a> {
    pub ctx: Ctx<'a>,
    pub h: Handoff,
    pub actor: String,
    pub surface: Surface,
    pub now: DateTime<Utc>,
    pub events: Vec<Event>,
    pub intents: Vec<Intent>,
    pub episodes: Vec<EpisodeRecord>,
    pub fired: Vec<FiredStep>,
    pub review: Option<String>,
    pub artifacts: Vec<ArtifactRecord>,
    pub follow_ups: Vec<FollowUp>,
    /// Whether the handoff had been accepted, and was done, before this decision (for tallies).
    was: (bool, bool),
    /// The approvers asked at the gate the handoff waited at before this decision (their
    /// requests are drawn once more if it leaves the gate).
    gate_asked: Vec<PersonId>,
    /// Who was asked something this decision answered: escalations of a stall episode it closed,
    /// a heads-up whose target it passed, a notice's request.
    answered: Vec<Recipient>,
    /// Where a recalibration this decision ended was held (its thread's recipient).
    pub concluded: Option<Recipient>,
    /// How many of `h.asked` were asked before this decision (the rest, asked by it, stand).
    asked_before: usize,
    /// The handoff's open key before this decision.
    key_before: Option<String>,
}

/// What no other open handoff on the seam may hold while `h` is open.
fn open_key(ctx: &Ctx<'_>, h: &Handoff) -> Option<String> {
    if h.state.is_terminal() { None } else { ctx.seam.open_key(&h.fields) }
}

impl<'a> Draft<'a> {
    /// A reply followed by the handoff's next deadline, when it has one.
    fn with_due(&self, reply: String) -> String {
        match render::due_line(&self.ctx, &self.h, self.now) {
            due if due.is_empty() => reply,
            due => format!("{reply} {due}"),
        }
    }

    pub(crate) fn new(ctx: Ctx<'a>, h: Handoff, actor: &str, surface: Surface, now: DateTime<Utc>) -> Self {
        Draft {
            ctx,
            was: (h.accepted_at.is_some(), h.state == State::Done),
            gate_asked: asked_approvers(&ctx, &h),
            asked_before: h.asked.len(),
            key_before: open_key(&ctx, &h),
            h,
            actor: actor.to_string(),
            surface,
            now,
            events: Vec::new(),
            intents: Vec::new(),
            episodes: Vec::new(),
            fired: Vec::new(),
            review: None,
            artifacts: Vec::new(),
            follow_ups: Vec::new(),
            answered: Vec::new(),
            concluded: None,
        }
    }

    pub(crate) fn record(&mut self, change: Change) {
        self.h.updated_at = self.now;
        self.events.push(Event {
            at: self.now,
            actor: self.actor.clone(),
            surface: self.surface,
            state: self.h.state,
            change,
            via: None,
        });
    }

    pub(crate) fn tell(&mut self, to: Recipient, kind: IntentKind, text: String, actions: Vec<Action>) {
        // Someone no longer in the model cannot be reached (their lead hears instead).
        if !self.ctx.model.reaches(&to) {
            return;
        }
        // Direct messages wait for the recipient's working hours; channel posts go out at once.
        let not_before = match &to {
            Recipient::Person(p) => self.ctx.model.quiet_until(p, self.h.tier, self.now),
            _ => None,
        };
        self.intents.push(Intent {
            to,
            handoff: Some(self.h.id),
            kind,
            text,
            actions,
            not_before,
            mentions: Vec::new(),
            image: None,
        });
    }

    /// Tells `person` (not the actor). A notice with buttons asks them to act on the handoff as it
    /// stands, and is answered when it next moves (`Handoff::asked`).
    pub(crate) fn tell_person(&mut self, person: &str, text: String, actions: Vec<Action>) {
        let to = Recipient::Person(person.to_string());
        if person == self.actor || !self.ctx.model.reaches(&to) {
            return;
        }
        // Asked again before this decision moves the handoff, they stand asked after it too.
        let fresh = &self.h.asked[self.asked_before.min(self.h.asked.len())..];
        if !actions.is_empty() && !fresh.contains(&to) {
            self.h.asked.push(to.clone());
        }
        self.tell(to, IntentKind::Notice, text, actions);
    }

    /// Posts the current card to the seam's channel and to the owner by DM (platforms edit an
    /// earlier card of the same handoff and recipient in place).
    pub(crate) fn post_card(&mut self) {
        let text = render::card(&self.ctx, &self.h, self.now);
        let actions = render::actions(&self.h);
        if let Some(channel) = self.ctx.card_channel() {
            // Anyone in the channel may follow it from there.
            let mut everyone = actions.clone();
            if !self.h.state.is_terminal() {
                everyone.push(Action::Watch);
            }
            self.tell(channel, IntentKind::Card, text.clone(), everyone);
        }
        if let Some(owner) = self.h.owner.clone() {
            // At the gate the owner can do nothing more, so their card has no buttons (the
            // approvers' would refuse them).
            let actions = if self.h.state == State::AwaitingGate { Vec::new() } else { actions };
            self.tell(Recipient::Person(owner), IntentKind::Card, text, actions);
        }
        // Each approver asked at a gate has the request as a card of their own, redrawn as the
        // gate moves (the one who acted included) and once more, without buttons, when it
        // leaves the gate: no live Approve is left behind.
        let asked = match asked_approvers(&self.ctx, &self.h) {
            now if now.is_empty() => self.gate_asked.clone(),
            now => now,
        };
        for approver in asked {
            let (text, actions) = render::approval_request(&self.ctx, &self.h, &approver, self.now);
            self.tell(Recipient::Person(approver), IntentKind::Card, text, actions);
        }
    }

    /// Sends the handoff back to its requester (`reason`), who is told, with a *Resubmit* button;
    /// its clocks pause until they resubmit. Sent back from the gate (by a recalibration), it
    /// returns to its owner's work when resubmitted: the approvals given were for what it held.
    pub(crate) fn return_to_requester(&mut self, reason: &str) {
        let from = match self.h.state {
            State::AwaitingGate => State::InProgress,
            state => state,
        };
        self.h.returned_from = Some(from);
        self.h.state = State::Returned;
        self.h.approvals.clear();
        self.h.reason = Some(reason.to_string());
        self.moved();
        pause_clocks(self, None);
        self.record(Change::Returned { reason: reason.to_string() });
        let (label, title, by) = (self.h.label(), self.h.title.clone(), self.ctx.name(&self.actor).to_string());
        let requester = self.h.requester.clone();
        let text = format!(
            "{label} \"{title}\" was returned to you by {by}: {reason}\nFix it with `/handoff resubmit {label} field=value ...`."
        );
        self.tell_person(&requester, text, vec![Action::Resubmit]);
    }

    /// Reassigns the handoff to `to`, recorded, who is told (`why`, when said, ends the sentence)
    /// and must accept it.
    pub(crate) fn reassign(&mut self, to: &str, why: &str) {
        let from = self.h.owner.clone();
        self.hand_over(to);
        self.record(Change::Reassigned { from, to: to.to_string() });
        let (label, by) = (self.h.label(), self.ctx.name(&self.actor).to_string());
        let text =
            format!("{by} gave you {label} \"{}\"{why}. Accept it with `/handoff accept {label}`.", self.h.title);
        self.tell_person(to, text, vec![Action::Accept, Action::Return]);
    }

    /// Gives the handoff to `to`, who must accept it (and, taken from the gate, submit it again:
    /// the approvals given were for the previous owner's work). A previous owner (not the actor)
    /// is told it is no longer theirs, and their card is redrawn without the owner's buttons,
    /// which would now refuse them.
    pub(crate) fn hand_over(&mut self, to: &str) {
        let previous = self.h.owner.replace(to.to_string()).filter(|p| p != to);
        self.h.state = State::Reassigned;
        self.h.approvals.clear();
        self.moved();
        if let Some(previous) = previous.filter(|p| *p != self.actor) {
            let (label, title) = (self.h.label(), self.h.title.clone());
            let (by, new) = (self.ctx.name(&self.actor).to_string(), self.ctx.name(to).to_string());
            let text = match to == self.actor {
                true => format!("{by} took {label} \"{title}\" over; it is no longer yours."),
                false => format!("{by} gave {label} \"{title}\" to {new}; it is no longer yours."),
            };
            self.tell_person(&previous, text, vec![]);
            let card = render::card(&self.ctx, &self.h, self.now);
            self.tell(Recipient::Person(previous), IntentKind::Card, card, vec![]);
        }
    }

    /// The handoff moved: close a movement-closable stall, answer such a heads-up, and restart
    /// the phase clock.
    pub(crate) fn moved(&mut self) {
        let state = self.h.state;
        let closes =
            move |kind: StallKind| kind != StallKind::Overdue || state.is_terminal() || state == State::Returned;
        if self.h.stall.as_ref().is_some_and(|s| closes(s.kind)) {
            self.close_stall();
        }
        if let Some(heads_up) = self.h.heads_up.take_if(|w| closes(w.kind)) {
            self.answered.extend(heads_up.told);
        }
        let before = std::mem::take(&mut self.asked_before).min(self.h.asked.len());
        self.answered.extend(self.h.asked.drain(..before));
        self.h.phase_clock = Clock::started(self.now);
        if let Some(snooze) = &self.h.snooze
            && snooze.until > self.now
        {
            // Moving the handoff ends a snooze early: the owner is active again.
            self.h.snooze = None;
            self.h.total_clock.resume(self.now);
        }
    }

    /// Closes the open stall episode. An overdue handoff that stays open gets a fresh
    /// time-to-done window from now: its old breach is past, so otherwise the next check would
    /// open the same stall again at once and climb the whole ladder to another recalibration. A
    /// handoff whose time-to-done target passed under another stall is overdue from now.
    pub(crate) fn close_stall(&mut self) {
        let Some(stall) = self.h.stall.take() else {
            return;
        };
        if !self.h.state.is_terminal() {
            if stall.kind == StallKind::Overdue {
                self.h.total_clock = Clock::started(self.now);
                // A date agreed earlier is past too: the fresh window replaces it.
                self.h.due_date = None;
            } else if crate::stall::overdue_at(&self.ctx, &self.h).is_some_and(|at| at < self.now) {
                // The time-to-done target passed while this stall was open: the handoff is
                // overdue from now, and that ladder starts at its first step (a catch-up to its
                // highest step is for checks that ran late, not for a stall that was masked).
                let target = self.ctx.seam.sla.done.num_seconds();
                self.h.total_clock = Clock { banked_secs: target, running_since: Some(self.now) };
            }
        }
        self.answered.extend(stall.told);
        let unblock_secs = (self.now - stall.opened_at).num_seconds().max(0);
        self.record(Change::StallClosed { episode: stall.episode, kind: stall.kind, unblock_secs });
        self.episodes.push(EpisodeRecord {
            handoff: self.h.id,
            episode: stall.episode,
            seam: self.h.seam.clone(),
            kind: stall.kind,
            opened_at: stall.opened_at,
            closed_at: Some(self.now),
        });
    }

    /// A recalibration still open when the handoff closes (done, cancelled) has no decision left
    /// to record: its thread is told so, and where what was learned goes (`/postmortem`, with its
    /// playbook), and no timebox reminder asks for a record that would be refused.
    fn close_recalibration(&mut self) {
        if !self.h.state.is_terminal() {
            return;
        }
        let Some(rec) = self.h.recalibration.take() else { return };
        self.concluded = Some(rec.thread.clone());
        let label = self.h.label();
        let artifact = self.ctx.model.playbooks.get(&rec.playbook).map(|p| p.artifact.as_slice()).unwrap_or_default();
        let fields: Vec<String> =
            artifact.iter().filter(|f| f.required && f.name != "decision").map(|f| format!("{}=...", f.name)).collect();
        let text = format!(
            "{label} \"{}\" is {} with this recalibration open, so there is no decision left to record. \
             Record what was learned with `/postmortem {label} playbook={} {}`.",
            self.h.title,
            self.h.state,
            rec.playbook,
            fields.join(" ")
        );
        self.tell(rec.thread, IntentKind::Thread, text, vec![]);
    }

    /// Tells the watchers (but the actor and the owner, who hear of it otherwise) what this
    /// decision did, in the words of the handoff's log, when it did something they watch for.
    fn tell_watchers(&mut self) {
        let watched = |c: &Change| {
            matches!(
                c,
                Change::Accepted { .. }
                    | Change::Updated { .. }
                    | Change::Commented { .. }
                    | Change::SubmittedForGate { .. }
                    | Change::Rejected { .. }
                    | Change::Done
                    | Change::Returned { .. }
                    | Change::Resubmitted { .. }
                    | Change::Edited { .. }
                    | Change::Cancelled { .. }
                    | Change::Reassigned { .. }
                    | Change::Snoozed { .. }
                    | Change::StallOpened { .. }
                    | Change::RecalibrationConvened { .. }
                    | Change::ArtifactRecorded { .. }
                    | Change::ArtifactCorrected { .. }
            )
        };
        let what: Vec<String> = (self.events.iter())
            .filter(|e| watched(&e.change))
            .map(|e| crate::activity::line(&self.ctx, e, self.now))
            .collect();
        if what.is_empty() {
            return;
        }
        let (label, title) = (self.h.label(), self.h.title.clone());
        let text = format!("{label} \"{title}\", which you watch: {}. Now: {}.", what.join("; "), self.h.state);
        let owner = self.h.owner.clone();
        let watchers: Vec<String> = (self.h.watchers.iter())
            .filter(|w| **w != self.actor && Some(*w) != owner.as_ref() && self.ctx.model.person(w).is_some())
            .cloned()
            .collect();
        for w in watchers {
            self.tell(Recipient::Person(w), IntentKind::Notice, text.clone(), vec![Action::Unwatch]);
        }
        // The client it was handed off through follows it, when it has a webhook to be told at.
        let follows = |c: &String| self.ctx.model.api.get(c).is_some_and(|c| c.webhook_env.is_some());
        if let Some(client) = self.h.via.clone().filter(follows) {
            let text = format!("{label} \"{title}\": {}. Now: {}.", what.join("; "), self.h.state);
            self.tell(Recipient::Client(client), IntentKind::Notice, text, vec![]);
        }
    }

    /// Tells whoever was asked something this decision answered (a stall's escalations, a
    /// heads-up, a notice's request) that it is answered, and by what: platforms edit those
    /// messages (their buttons would only be refused now, and another would take up what is taken).
    fn answer_asks(&mut self) {
        if self.answered.is_empty() {
            return;
        }
        let bookkeeping = |c: &Change| {
            matches!(
                c,
                Change::StallOpened { .. }
                    | Change::StallClosed { .. }
                    | Change::LadderStep { .. }
                    | Change::Warned { .. }
                    | Change::SnoozeEnded
                    | Change::OwnerLeft { .. }
                    | Change::RequesterLeft { .. }
                    | Change::TimeboxReminded
                    | Change::Watched
                    | Change::Unwatched
            )
        };
        let what: Vec<String> = (self.events.iter())
            .filter(|e| !bookkeeping(&e.change))
            .map(|e| crate::activity::brief(&self.ctx, e, self.now))
            .collect();
        let what = match what.is_empty() {
            true => String::new(),
            false => format!(": {}", what.join("; ")),
        };
        let when = render::time(self.ctx.cal(), self.now, self.now);
        let stalled = self.events.iter().any(|e| matches!(e.change, Change::StallClosed { .. }));
        let answered = if stalled { "No longer stalled" } else { "Answered" };
        let text = format!("✓ {answered}{what} ({when}). Now: {}.", self.h.state);
        let told = std::mem::take(&mut self.answered);
        for (i, to) in told.iter().enumerate() {
            if !told[..i].contains(to) {
                self.edit_asks(to.clone(), IntentKind::Settled, text.clone());
            }
        }
    }

    /// Tells the thread of a recalibration this decision recorded (or closed with its handoff)
    /// that it is over: platforms edit its messages that ask for the record.
    fn conclude_recalibration(&mut self) {
        let Some(thread) = self.concluded.take() else { return };
        let when = render::time(self.ctx.cal(), self.now, self.now);
        let recorded = self.events.iter().find_map(|e| match &e.change {
            Change::ArtifactRecorded { fields, .. } => Some((e, fields.get("decision").cloned().unwrap_or_default())),
            _ => None,
        });
        let text = match recorded {
            Some((e, decision)) => format!("✓ Recorded by {}: {decision} ({when}).", self.ctx.name(&e.actor)),
            None => format!("✓ Closed without a record: {} is {} ({when}).", self.h.label(), self.h.state),
        };
        self.edit_asks(thread, IntentKind::Concluded, text);
    }

    /// Queues the edit of what `to` was asked about the handoff (`kind`: a stall's escalations, a
    /// recalibration's thread). An edit notifies nobody, so it waits for no one's working hours.
    fn edit_asks(&mut self, to: Recipient, kind: IntentKind, text: String) {
        if !self.ctx.model.reaches(&to) {
            return;
        }
        let handoff = Some(self.h.id);
        self.intents.push(Intent { handoff, ..Intent::message(to, kind, text) });
    }

    pub(crate) fn finish(mut self, reply: String) -> Decision {
        self.close_recalibration();
        // Answers go first: a message this decision sends asking the same person again (a second
        // rejection's *Acknowledge*) is delivered after the edit of the one it replaces, not edited too.
        let start = self.intents.len();
        self.answer_asks();
        self.conclude_recalibration();
        let answers: Vec<Intent> = self.intents.drain(start..).collect();
        self.intents.splice(0..0, answers);
        self.tell_watchers();
        let next_check = stall::next_check(&self.ctx, &self.h);
        let open_key = open_key(&self.ctx, &self.h);
        let created = self.events.iter().any(|e| matches!(e.change, Change::Created { .. }));
        let claims_key = open_key.is_some() && (created || open_key != self.key_before);
        let h = &self.h;
        let mut tallies = Vec::new();
        let secs = |from: DateTime<Utc>, to: DateTime<Utc>| (to - from).num_seconds().max(0);
        if let (false, Some(at)) = (self.was.0, h.accepted_at) {
            tallies.push(Tally { metric: TallyMetric::Accepted, at, secs: secs(h.created_at, at) });
        }
        for ep in &self.episodes {
            tallies.push(match ep.closed_at {
                None => Tally { metric: TallyMetric::StallOpened, at: ep.opened_at, secs: 0 },
                Some(at) => Tally { metric: TallyMetric::Unblocked, at, secs: secs(ep.opened_at, at) },
            });
        }
        if let (false, State::Done, Some(at)) = (self.was.1, h.state, h.closed_at) {
            tallies.push(Tally { metric: TallyMetric::Done, at, secs: secs(h.created_at, at) });
        }
        Decision {
            tallies,
            handoff: self.h,
            events: self.events,
            intents: self.intents,
            episodes: self.episodes,
            fired: self.fired,
            next_check,
            open_key,
            claims_key,
            review: self.review,
            artifacts: self.artifacts,
            follow_ups: self.follow_ups,
            reply,
        }
    }
}

/// What a `/handoff new` command asks for.
#[derive(Clone, Copy, Debug)]
pub struct NewHandoff<'a> {
    /// Seam id.
    pub seam: &'a str,
    /// One-line title.
    pub title: &'a str,
    /// `key=value` contract fields (and `tier=`).
    pub fields: &'a [(String, String)],
}

/// A `/handoff new` command the core has accepted: all it needs is its number.
#[derive(Clone, Debug)]
pub struct Admitted {
    seam: String,
    title: String,
    fields: BTreeMap<String, String>,
    tier: RiskTier,
    actor: String,
    surface: Surface,
    now: DateTime<Utc>,
}

/// Creates handoff `id` from a `/handoff new` command: [`admit`], then [`Admitted::number`].
pub fn create(
    model: &OperatingModel,
    id: HandoffId,
    new: NewHandoff<'_>,
    actor: &str,
    surface: Surface,
    now: DateTime<Utc>,
) -> Result<Decision, Rejection> {
    admit(model, new, actor, surface, now)?.number(model, id)
}

/// Checks a `/handoff new` command (the seam, who sends it, its title, tier and contract) without
/// giving it a number, so that a refusal leaves no gap in the numbering.
pub fn admit(
    model: &OperatingModel,
    new: NewHandoff<'_>,
    actor: &str,
    surface: Surface,
    now: DateTime<Utc>,
) -> Result<Admitted, Rejection> {
    let now = whole_ms(now);
    let NewHandoff { seam, title, fields: given } = new;
    let ctx = Ctx::new(model, seam)?;
    if model.person(actor).is_none() {
        return Err(Rejection::UnknownActor);
    }
    if !ctx.from.has_member(actor) {
        return Err(Rejection::NotSender {
            seam: ctx.seam.id.clone(),
            function: ctx.from.name.clone(),
            lead: ctx.name(&ctx.from.lead).to_string(),
        });
    }
    let mut tier = ctx.seam.tier;
    let mut fields = Vec::new();
    let tiers: Vec<(String, String)> = given.iter().filter(|(k, _)| k == "tier").cloned().collect();
    let mut errors = crate::contract::given_twice(&tiers);
    for (k, v) in given {
        if k == "tier" {
            match RiskTier::parse(v) {
                // A handoff may raise its tier, never lower it; named with the rest.
                Some(t) if t < ctx.seam.tier => errors.push(FieldError {
                    field: "tier".into(),
                    message: format!(
                        "{} handoffs are at least {}; `tier={t}` would lower the gate: leave tier out, or raise it",
                        ctx.seam.id, ctx.seam.tier
                    ),
                }),
                Some(t) => tier = t,
                None => errors.push(FieldError {
                    field: "tier".into(),
                    message: format!("`{v}` is not a tier: use reversible, irreversible or high-stakes"),
                }),
            }
        } else {
            fields.push((k.clone(), v.clone()));
        }
    }
    errors.extend(crate::contract::title_problem(title));
    let fields = match validate_fields(model, ctx.seam, &BTreeMap::new(), &fields, true) {
        Ok(f) if errors.is_empty() => f,
        Ok(_) => return Err(Rejection::InvalidFields(errors)),
        Err(mut e) => {
            errors.append(&mut e);
            return Err(Rejection::InvalidFields(errors));
        }
    };
    Ok(Admitted {
        seam: ctx.seam.id.clone(),
        title: title.trim().to_string(),
        fields,
        tier,
        actor: actor.to_string(),
        surface,
        now,
    })
}

impl Admitted {
    /// Its seam and what no other open handoff on it may hold ([`crate::model::Seam::open_key`]).
    pub fn open_key(&self, model: &OperatingModel) -> Option<(String, String)> {
        Some((self.seam.clone(), model.seams.get(&self.seam)?.open_key(&self.fields)?))
    }

    /// Creates the handoff as number `id`. Refused only when `model` no longer has its seam
    /// (a reload between admitting and numbering).
    pub fn number(self, model: &OperatingModel, id: HandoffId) -> Result<Decision, Rejection> {
        let Admitted { seam, title, fields, tier, actor, surface, now } = self;
        let ctx = Ctx::new(model, &seam)?;
        let h = Handoff {
            id,
            seam,
            title,
            fields: fields.clone(),
            requester: actor.clone(),
            owner: None,
            tier,
            state: State::Open,
            returned_from: None,
            created_at: now,
            updated_at: now,
            phase_clock: Clock::started(now),
            total_clock: Clock::started(now),
            snooze: None,
            reason: None,
            approvals: Vec::new(),
            verdicts: Vec::new(),
            stall: None,
            episodes: 0,
            last_note: None,
            recalibration: None,
            due_date: None,
            accepted_at: None,
            closed_at: None,
            watchers: Vec::new(),
            warned: None,
            heads_up: None,
            asked: Vec::new(),
            via: None,
            review_asked: None,
            postmortem: None,
            left: Vec::new(),
        };
        let mut d = Draft::new(ctx, h, &actor, surface, now);
        d.record(Change::Created { fields });
        d.post_card();
        let reply = d.with_due(format!("{} handed to {} on {}.", d.h.label(), ctx.to.name, ctx.seam.id));
        Ok(d.finish(reply))
    }
}

/// Applies a person's command to a handoff.
pub fn decide(
    model: &OperatingModel,
    h: &Handoff,
    command: &Command,
    actor: &str,
    surface: Surface,
    now: DateTime<Utc>,
) -> Result<Decision, Rejection> {
    decide_covering(model, h, command, actor, &[], surface, now)
}

/// [`decide`] for an actor who covers for the leads in `covering` while they are away
/// ([`crate::away::Away::covered_by`]): they may do what those leads may.
pub fn decide_covering(
    model: &OperatingModel,
    h: &Handoff,
    command: &Command,
    actor: &str,
    covering: &[PersonId],
    surface: Surface,
    now: DateTime<Utc>,
) -> Result<Decision, Rejection> {
    let now = whole_ms(now);
    let ctx = Ctx::new(model, &h.seam)?;
    let person = model.person(actor).ok_or(Rejection::UnknownActor)?;
    // Whether the actor leads the receiving (sending) function, or covers for its lead.
    let leads = |f: &Function| f.lead == actor || covering.contains(&f.lead);
    let (lead_to, lead_from) = (leads(ctx.to), leads(ctx.from));
    let mut d = Draft::new(ctx, h.clone(), actor, surface, now);
    let id = h.id;
    let label = h.label();
    let wrong = |hint: &str| Rejection::WrongState { id, state: h.state, hint: hint.to_string() };
    if h.state.is_terminal() && !matches!(command, Command::Show(_) | Command::Postmortem { .. }) {
        return Err(wrong(&match command {
            Command::Watch { .. } => {
                format!("it is closed: nothing more will happen to it (`/handoff log {label}` shows what did)")
            }
            Command::Comment { .. } | Command::Recalibrate { .. } | Command::Record { .. } => format!(
                "it is closed, so nobody works it any more: to say what went wrong, record a post-mortem \
                 (`/postmortem {label} assumption_broke=\"...\" category=...`); for more work, `/handoff new`"
            ),
            Command::Approve(_) | Command::Reject { .. } => "it is closed: nothing waits for approval".to_string(),
            _ => "it is closed; hand off a new one with `/handoff new`".to_string(),
        }));
    }
    let reply = match command {
        Command::Accept(_) => {
            let reassigned_to_me = h.state == State::Reassigned && h.owner.as_deref() == Some(actor);
            if h.state != State::Open && !reassigned_to_me {
                return Err(wrong(&format!("only open handoffs can be accepted; {} owns it", owner_name(&ctx, h))));
            }
            require_receiver(&ctx, h, actor, "accept")?;
            require_may_own(&ctx, person)?;
            d.h.owner = Some(actor.to_string());
            d.h.state = State::Accepted;
            d.h.accepted_at.get_or_insert(now);
            d.moved();
            d.record(Change::Accepted { owner: actor.to_string() });
            d.tell_person(&h.requester, format!("{label} \"{}\" was accepted by {}.", h.title, person.name), vec![]);
            d.post_card();
            d.with_due(format!("You own {label} now."))
        }
        Command::Ack(_) => {
            require_owner(&ctx, h, actor, "acknowledge")?;
            match h.state {
                State::Accepted | State::Reassigned => d.h.state = State::InProgress,
                State::InProgress | State::AwaitingGate => {}
                _ => return Err(wrong("there is nothing to acknowledge")),
            }
            d.moved();
            d.record(Change::Acknowledged);
            d.post_card();
            d.with_due(format!("Acknowledged {label}."))
        }
        Command::Update { note, fields, .. } => {
            require_owner(&ctx, h, actor, "update")?;
            if !matches!(h.state, State::Accepted | State::Reassigned | State::InProgress) {
                return Err(wrong("updates are for work under way"));
            }
            let changed =
                validate_fields(model, ctx.seam, &h.fields, fields, false).map_err(Rejection::InvalidFields)?;
            d.h.fields = changed.clone();
            let diff: BTreeMap<String, String> =
                changed.into_iter().filter(|(k, v)| h.fields.get(k) != Some(v)).collect();
            let note = note.trim();
            if note.is_empty() && diff.is_empty() {
                return Err(Rejection::Unchanged(format!(
                    "{label} already holds that; say what progress was made: `/handoff update {label} <note>`"
                )));
            }
            d.h.state = State::InProgress;
            // Fields alone change the fields; the card keeps the latest thing said.
            if !note.is_empty() {
                d.h.last_note = Some(note.to_string());
            }
            let said = match note {
                "" => crate::activity::fields(&ctx, &diff),
                note if diff.is_empty() => note.to_string(),
                note => format!("{note} ({})", crate::activity::fields(&ctx, &diff)),
            };
            d.moved();
            d.record(Change::Updated { note: note.to_string(), fields: diff });
            let text = format!("{label} \"{}\" update from {}: {said}", h.title, person.name);
            d.tell_person(&h.requester, text, vec![]);
            // The card shows the latest update and the next deadline.
            d.post_card();
            d.with_due(format!("Update recorded on {label}."))
        }
        Command::Done(_) => {
            require_owner(&ctx, h, actor, "finish")?;
            if !matches!(h.state, State::Accepted | State::InProgress) {
                return Err(wrong("only work under way can be submitted as done"));
            }
            d.h.state = State::AwaitingGate;
            d.h.approvals.clear();
            d.moved();
            d.record(Change::SubmittedForGate { tier: h.tier });
            if h.tier.approvals_needed() == 0 {
                match ask_reviewer(&mut d) {
                    Some(verdict) => verdict,
                    None => {
                        // The cards show it at the gate while the webhook reviewer is called.
                        d.post_card();
                        format!("{label} is with the automated reviewer.")
                    }
                }
            } else {
                // The card goes to each approver too, as their request.
                d.post_card();
                format!("{label} is waiting for approval: {}.", approvers_line(&ctx, &d.h))
            }
        }
        Command::Approve(_) | Command::Reject { .. } => {
            if h.state != State::AwaitingGate {
                return Err(wrong("only handoffs waiting at the gate can be approved or rejected"));
            }
            check_approver(&ctx, h, actor)?;
            if let Command::Reject { reason, .. } = command {
                d.h.state = State::InProgress;
                d.h.approvals.clear();
                d.h.reason = Some(reason.clone());
                d.moved();
                d.record(Change::Rejected { reason: reason.clone() });
                if let Some(owner) = &h.owner {
                    d.tell_person(
                        owner,
                        format!("{label} \"{}\" was rejected at the gate by {}: {reason}", h.title, person.name),
                        vec![Action::Ack],
                    );
                }
                d.post_card();
                format!("Rejected {label}; it is back with {}.", owner_name(&ctx, h))
            } else {
                d.h.approvals.push(Approval { by: actor.to_string(), at: now });
                let (count, needed) = (d.h.approvals.len(), h.tier.approvals_needed());
                d.record(Change::Approved { count, needed });
                if count >= needed {
                    complete(&mut d);
                    format!("Approved. {label} is done.")
                } else {
                    // The card shows who has approved so far.
                    d.post_card();
                    format!("Approved ({count} of {needed}). Still needed from: {}.", approvers_line(&ctx, &d.h))
                }
            }
        }
        Command::Return { reason, .. } => {
            let allowed = match &h.owner {
                Some(owner) => owner == actor || lead_to,
                None => ctx.to.has_member(actor) || lead_to,
            };
            if !allowed {
                return Err(match &h.owner {
                    Some(owner) => Rejection::NotOwner { id, owner: ctx.name(owner).to_string(), action: "return" },
                    None => not_receiver(&ctx, h, "return"),
                });
            }
            if !matches!(h.state, State::Open | State::Accepted | State::Reassigned | State::InProgress) {
                return Err(wrong("only work not yet at the gate can be returned"));
            }
            d.return_to_requester(reason);
            d.post_card();
            format!("{label} returned to {}. Its clocks are paused until they resubmit.", ctx.name(&h.requester))
        }
        Command::Resubmit { fields, note, .. } => {
            // A requester who left the model is answered for by the sending lead.
            let left = model.person(&h.requester).is_none();
            if h.requester != actor && !(lead_from && left) {
                let requester = match left {
                    true => format!(
                        "{} (no longer in the operating model; in their place the lead of {}, {})",
                        h.requester,
                        ctx.from.name,
                        ctx.name(&ctx.from.lead)
                    ),
                    false => ctx.name(&h.requester).to_string(),
                };
                return Err(Rejection::NotRequester { id, requester, action: "resubmit" });
            }
            if h.state != State::Returned {
                return Err(wrong("only returned handoffs can be resubmitted"));
            }
            let merged = validate_fields(model, ctx.seam, &h.fields, fields, true).map_err(Rejection::InvalidFields)?;
            let diff: BTreeMap<String, String> = merged
                .iter()
                .filter(|(k, v)| h.fields.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let note = note.as_deref().map(str::trim).filter(|n| !n.is_empty());
            if diff.is_empty() && note.is_none() {
                // Sent back with a question: resubmitting it unanswered would only send it back again.
                let why = h.reason.as_deref().map(|r| format!("it was returned because: {r}; ")).unwrap_or_default();
                return Err(Rejection::Unchanged(format!(
                    "{why}answer with the fields that change or a note saying what changed: \
                     `/handoff resubmit {label} [field=value ...] <what changed>`"
                )));
            }
            d.h.fields = merged;
            d.h.state = h.returned_from.unwrap_or(State::Open);
            d.h.returned_from = None;
            d.h.reason = None;
            d.h.total_clock.resume(now);
            d.moved();
            d.record(Change::Resubmitted { fields: diff, note: note.map(str::to_string) });
            let said = note.map(|n| format!(": {n}")).unwrap_or_default();
            let text = format!("{label} \"{}\" was resubmitted by {}{said}", h.title, person.name);
            match &h.owner {
                Some(owner) => d.tell_person(owner, text, vec![Action::Ack]),
                // Returned before anyone took it: the receiving lead, accountable for the queue,
                // hears the answer (it is back in the queue, to accept).
                None => d.tell_person(&ctx.to.lead, text, vec![Action::Accept]),
            }
            d.post_card();
            d.with_due(format!("{label} resubmitted."))
        }
        Command::Edit { title, fields, note, .. } => {
            edit(&mut d, lead_from, title.as_deref(), fields, note.as_deref())?
        }
        Command::Cancel { reason, .. } => {
            if h.requester != actor && !lead_from {
                return Err(Rejection::NotRequester {
                    id,
                    requester: ctx.name(&h.requester).to_string(),
                    action: "cancel",
                });
            }
            d.h.state = State::Cancelled;
            d.h.closed_at = Some(now);
            d.h.reason = Some(reason.clone());
            d.moved();
            d.record(Change::Cancelled { reason: reason.clone() });
            // Its owner, and its requester when their lead cancelled it, hear why.
            let text = format!("{label} \"{}\" was cancelled by {}: {reason}", h.title, person.name);
            for told in [h.owner.as_deref(), Some(h.requester.as_str())].into_iter().flatten().filter(|p| *p != actor) {
                d.tell_person(told, text.clone(), vec![]);
            }
            d.post_card();
            format!("{label} cancelled.")
        }
        Command::Reassign { to, .. } => {
            require_owner_or_lead(&ctx, h, actor, lead_to, "reassign")?;
            if !matches!(h.state, State::Open | State::Accepted | State::Reassigned | State::InProgress) {
                return Err(wrong("only work not yet at the gate can be reassigned"));
            }
            let target = model.person(to).ok_or_else(|| Rejection::UnknownPerson(to.clone()))?;
            if !ctx.to.has_member(to) {
                return Err(not_receiver(&ctx, h, "own"));
            }
            require_may_own(&ctx, target)?;
            if h.owner.as_deref() == Some(to.as_str()) {
                let who = if to == actor { "you".to_string() } else { target.name.clone() };
                return Err(Rejection::Unchanged(match h.state {
                    State::Reassigned => format!("{label} is already given to {who}, to accept"),
                    _ => format!("{who} own{} {label} already", if to == actor { "" } else { "s" }),
                }));
            }
            d.reassign(to, "");
            d.post_card();
            let reply = match to == actor {
                true => format!("{label} is yours once you accept it: `/handoff accept {label}`."),
                false => format!("{label} reassigned to {}; they must accept it.", target.name),
            };
            d.with_due(reply)
        }
        Command::Snooze { duration, reason, .. } => {
            require_owner_or_lead(&ctx, h, actor, lead_to, "snooze")?;
            if matches!(h.state, State::Returned) {
                return Err(wrong("its clocks are already paused while it waits on the requester"));
            }
            if *duration < Duration::minutes(1) || *duration > Duration::days(14) {
                return Err(Rejection::BadSnooze(render::wall_duration(*duration)));
            }
            let until = now + *duration;
            pause_clocks(&mut d, Some(until));
            d.h.snooze = Some(Snooze { until, reason: reason.clone(), by: actor.to_string() });
            d.record(Change::Snoozed { until, reason: reason.clone() });
            let until = render::time(ctx.cal(), until, now);
            // An owner whose lead snoozed their work hears it from Baton, not from a redrawn card.
            if let Some(owner) = h.owner.as_deref().filter(|o| *o != actor) {
                let text = format!("{label} \"{}\" was snoozed by {} until {until}: {reason}", h.title, person.name);
                d.tell_person(owner, text, vec![]);
            }
            // The cards show the snooze and the deadline it moves.
            d.post_card();
            format!("{label} snoozed until {until}. Its clocks and ladder resume then.")
        }
        Command::Recalibrate { playbook, .. } => {
            let involved = h.owner.as_deref() == Some(actor)
                || h.requester == actor
                || ctx.to.has_member(actor)
                || lead_to
                || lead_from
                || person.has_role(Role::Architect);
            if !involved {
                return Err(not_receiver(&ctx, h, "convene a recalibration on"));
            }
            if let Some(r) = &h.recalibration {
                return Err(wrong(&format!(
                    "a recalibration is already under way ({}, convened by {}); record its outcome with \
                     `/handoff record {label} decision=... assumption_broke=\"...\" category=...`",
                    r.playbook,
                    ctx.name(&r.convener)
                )));
            }
            let chosen = playbook.clone().or_else(|| crate::recalibrate::default_playbook(&d));
            let Some(chosen) = chosen.filter(|p| model.playbooks.contains_key(p)) else {
                let known: Vec<&str> = model.playbooks.keys().map(String::as_str).collect();
                return Err(Rejection::UnknownPlaybook {
                    given: playbook.clone().unwrap_or_default(),
                    known: known.join(", "),
                });
            };
            d.record(Change::RecalibrationConvened { playbook: chosen.clone() });
            // Only its owner is blocked on it; anyone else asks for the recalibration.
            let why = match h.owner.as_deref() == Some(actor) {
                true => format!("{} is blocked on {label} \"{}\" and convened a recalibration.", person.name, h.title),
                false => format!("{} asked for a recalibration of {label} \"{}\".", person.name, h.title),
            };
            let to = crate::stall::convene_to(&ctx);
            crate::recalibrate::convene(&mut d, &chosen, &why, to);
            d.post_card();
            format!("Recalibration convened for {label} with the {chosen} playbook.")
        }
        Command::Record { fields, .. } => {
            let involved = h.recalibration.as_ref().is_some_and(|r| r.convener == actor)
                || h.owner.as_deref() == Some(actor)
                || lead_to
                || lead_from
                || person.has_role(Role::Architect);
            if !involved {
                let convener = h.recalibration.as_ref().map_or(ctx.to.lead.as_str(), |r| r.convener.as_str());
                return Err(Rejection::NotConvener { id, convener: ctx.name(convener).to_string() });
            }
            crate::recalibrate::record(&mut d, fields)?
        }
        Command::Postmortem { fields, .. } => {
            // One post-mortem per handoff: written by someone it involved.
            let involved = h.owner.as_deref() == Some(actor)
                || h.requester == actor
                || lead_to
                || lead_from
                || person.has_role(Role::Architect);
            if !involved {
                return Err(Rejection::NotInvolved { id, action: "record the post-mortem of" });
            }
            crate::recalibrate::postmortem(&mut d, fields)?
        }
        Command::New { .. } => return Err(Rejection::NotAChange("new")),
        Command::Show(_) => return Err(Rejection::NotAChange("show")),
        Command::Log(_) => return Err(Rejection::NotAChange("log")),
        Command::ReassignAll { .. } => return Err(Rejection::NotAChange("reassign-all")),
        Command::Comment { text, .. } => {
            if text.trim().is_empty() {
                let message = "say what you want to tell them".to_string();
                return Err(Rejection::InvalidFields(vec![FieldError { field: "comment".into(), message }]));
            }
            // Said to its requester and owner, or while nobody owns it the receiving lead, who is
            // accountable for the queue (watchers hear it in the log's words); it does not move
            // the handoff, so no clock restarts and no stall closes.
            d.record(Change::Commented { text: text.clone() });
            let said = format!("{} commented on {label} \"{}\": {text}", person.name, h.title);
            let mut told = Vec::new();
            for who in [&h.requester, h.owner.as_ref().unwrap_or(&ctx.to.lead)] {
                if who != actor && !told.contains(&ctx.name(who)) {
                    d.tell_person(who, said.clone(), vec![]);
                    told.push(ctx.name(who));
                }
            }
            // Its watchers (but the commenter and the owner) hear it too, from `tell_watchers`.
            let watching = h.watchers.iter().filter(|w| *w != actor && Some(*w) != h.owner.as_ref()).count();
            match watching {
                0 => {}
                1 => told.push("its watcher"),
                _ => told.push("its watchers"),
            }
            match told.as_slice() {
                [] => format!("Comment recorded on {label}."),
                [one] => format!("Comment recorded on {label}; told {one}."),
                [rest @ .., last] => format!("Comment recorded on {label}; told {} and {last}.", rest.join(", ")),
            }
        }
        Command::Watch { on, .. } => {
            let watching = h.watchers.iter().any(|w| w == actor);
            let told = match (h.requester == actor, h.owner.as_deref() == Some(actor)) {
                (true, _) => Some("requester"),
                (_, true) => Some("owner"),
                _ => None,
            };
            match (on, watching, told) {
                (true, _, Some(role)) => {
                    return Err(Rejection::Unchanged(format!("you hear of {label}'s changes already, as its {role}")));
                }
                (true, true, _) => return Err(Rejection::Unchanged(format!("you watch {label} already"))),
                (false, false, _) => return Err(Rejection::Unchanged(format!("you do not watch {label}"))),
                (true, false, _) => {
                    d.h.watchers.push(actor.to_string());
                    d.record(Change::Watched);
                    d.post_card();
                    format!(
                        "You watch {label} now: you will be told when it is accepted, updated, returned, \
                         stalled, reassigned or closed (`/handoff unwatch {label}` to stop)."
                    )
                }
                (false, true, _) => {
                    d.h.watchers.retain(|w| w != actor);
                    d.record(Change::Unwatched);
                    d.post_card();
                    format!("You no longer watch {label}.")
                }
            }
        }
        Command::Mine => return Err(Rejection::NotAChange("mine")),
        Command::Team(_) => return Err(Rejection::NotAChange("team")),
        Command::Find(_) => return Err(Rejection::NotAChange("find")),
        Command::Away(_) => return Err(Rejection::NotAChange("away")),
        Command::Stalls(_) => return Err(Rejection::NotAChange("stalls")),
        Command::Help(_) => return Err(Rejection::NotAChange("help")),
    };
    Ok(d.finish(reply))
}

/// The longest reply from a recalibration thread kept in the log, in characters (the rest is cut).
pub const DISCUSSED_MAX: usize = 4000;

/// Keeps `actor`'s reply in the handoff's recalibration thread with its audit trail, in any
/// state (a thread goes on after the handoff closes): it moves nothing and tells nobody (they
/// were in the thread).
pub fn discussed(
    model: &OperatingModel,
    h: &Handoff,
    actor: &str,
    text: &str,
    surface: Surface,
    now: DateTime<Utc>,
) -> Result<Decision, Rejection> {
    let now = whole_ms(now);
    let ctx = Ctx::new(model, &h.seam)?;
    model.person(actor).ok_or(Rejection::UnknownActor)?;
    let text = text.trim();
    let kept: String = match text.chars().count() > DISCUSSED_MAX {
        true => text.chars().take(DISCUSSED_MAX).chain(['…']).collect(),
        false => text.to_string(),
    };
    let mut d = Draft::new(ctx, h.clone(), actor, surface, now);
    d.record(Change::Discussed { text: kept });
    Ok(d.finish(format!("Kept with {}'s log.", h.label())))
}

/// Records an automated reviewer's verdict on a handoff at a reviewed gate.
pub fn record_verdict(
    model: &OperatingModel,
    h: &Handoff,
    verdict: Verdict,
    now: DateTime<Utc>,
) -> Result<Decision, Rejection> {
    let now = whole_ms(now);
    let ctx = Ctx::new(model, &h.seam)?;
    if h.state != State::AwaitingGate || h.tier.approvals_needed() > 0 {
        return Err(Rejection::WrongState { id: h.id, state: h.state, hint: "no automated review is pending".into() });
    }
    let mut d = Draft::new(ctx, h.clone(), BATON, Surface::Baton, now);
    let reply = apply_verdict(&mut d, verdict);
    Ok(d.finish(reply))
}

/// Puts a handoff at a reviewed gate before the seam's reviewer. A webhook reviewer is asked:
/// the bot calls it once the decision is saved (`Decision::review`), and `None` is returned.
/// Rules (a rules reviewer, or the built-in contract check) judge it here, in the same decision,
/// so that it never waits at the gate for them; the verdict's reply is returned.
pub(crate) fn ask_reviewer(d: &mut Draft<'_>) -> Option<String> {
    match d.ctx.seam.reviewer.as_ref().and_then(|r| d.ctx.model.reviewers.get(r)) {
        Some(Reviewer { id, kind: ReviewerKind::Webhook { .. }, .. }) => {
            d.review = Some(id.clone());
            d.h.review_asked = Some(d.now);
            None
        }
        rules => {
            let verdict = crate::review::rules(d.ctx.model, &d.h, rules.map(|r| r.id.as_str()), d.now);
            Some(apply_verdict(d, verdict))
        }
    }
}

/// Applies an automated review's verdict to a handoff at its gate, as Baton (whoever's decision
/// it joins): done when it passes, back to its owner's work when it fails. Returns the reply.
fn apply_verdict(d: &mut Draft<'_>, verdict: Verdict) -> String {
    let actor = std::mem::replace(&mut d.actor, BATON.to_string());
    let surface = std::mem::replace(&mut d.surface, Surface::Baton);
    d.h.review_asked = None;
    let pass = verdict.pass;
    let reasons = verdict.reasons.join("; ");
    d.h.verdicts.push(verdict.clone());
    d.record(Change::Reviewed { verdict });
    let label = d.h.label();
    let reply = if pass {
        complete(d);
        format!("{label} passed automated review and is done.")
    } else {
        d.h.state = State::InProgress;
        d.moved();
        let text = format!("{label} did not pass automated review: {reasons}. Fix it and mark it done again.");
        if let Some(owner) = d.h.owner.clone() {
            d.tell_person(&owner, text.clone(), vec![Action::Ack]);
        }
        d.post_card();
        text
    };
    (d.actor, d.surface) = (actor, surface);
    reply
}

/// Marks the draft done: stops clocks, closes any stall, tells requester and owner.
fn complete(d: &mut Draft<'_>) {
    d.h.state = State::Done;
    d.h.closed_at = Some(d.now);
    d.moved();
    d.h.phase_clock.pause(d.ctx.cal(), d.now, None);
    d.h.total_clock.pause(d.ctx.cal(), d.now, None);
    d.h.snooze = None;
    d.record(Change::Done);
    let label = d.h.label();
    let text = format!("{label} \"{}\" is done.", d.h.title);
    let requester = d.h.requester.clone();
    d.tell_person(&requester, text.clone(), vec![]);
    if let Some(owner) = d.h.owner.clone() {
        d.tell_person(&owner, text, vec![]);
    }
    d.post_card();
}

fn pause_clocks(d: &mut Draft<'_>, until: Option<DateTime<Utc>>) {
    let cal = d.ctx.cal();
    d.h.phase_clock.pause(cal, d.now, until);
    d.h.total_clock.pause(cal, d.now, until);
}

fn owner_name(ctx: &Ctx<'_>, h: &Handoff) -> String {
    match &h.owner {
        Some(o) => ctx.name(o).to_string(),
        None => format!("the {} queue (lead {})", ctx.to.name, ctx.name(&ctx.to.lead)),
    }
}

/// Whether `actor` (covering for the leads in `covering`) may give `probe` on `h` at `now` (what it
/// refuses before reading any change: an edit that changes nothing passes), so that a form opens
/// only for someone who can submit it.
pub fn may(
    model: &OperatingModel,
    h: &Handoff,
    probe: &Command,
    actor: &str,
    covering: &[PersonId],
    now: DateTime<Utc>,
) -> Result<(), Rejection> {
    match decide_covering(model, h, probe, actor, covering, Surface::Baton, now) {
        Ok(_) | Err(Rejection::Unchanged(_)) => Ok(()),
        Err(r) => Err(r),
    }
}

/// `/handoff edit`: the requester (or the sending lead) corrects the title or contract fields of
/// work not yet at the gate. The owner is told what changed; the clocks run on as they were.
fn edit(
    d: &mut Draft<'_>,
    lead_from: bool,
    title: Option<&str>,
    given: &[(String, String)],
    note: Option<&str>,
) -> Result<String, Rejection> {
    let (ctx, h) = (d.ctx, d.h.clone());
    let (id, label) = (h.id, h.label());
    if h.requester != d.actor && !lead_from {
        return Err(Rejection::NotRequester { id, requester: ctx.name(&h.requester).to_string(), action: "edit" });
    }
    let wrong = |hint: String| Err(Rejection::WrongState { id, state: h.state, hint });
    match h.state {
        State::Returned => {
            return wrong(format!("send the changes with it: `/handoff resubmit {label} field=value ...`"));
        }
        State::AwaitingGate if h.tier.approvals_needed() == 0 => {
            return wrong("the automated reviewer judges it as it stands; if it fails, you can edit it then".into());
        }
        State::AwaitingGate => {
            return wrong(format!(
                "the gate judges it as it stands; if it must change, the gate can reject it (`/reject {label} <reason>`) and you edit it then"
            ));
        }
        _ => {}
    }
    if let Some(problem) = title.and_then(crate::contract::title_problem) {
        return Err(Rejection::InvalidFields(vec![problem]));
    }
    let title = title.map(str::trim).filter(|t| *t != h.title).map(String::from);
    let fields = validate_fields(ctx.model, ctx.seam, &h.fields, given, true).map_err(Rejection::InvalidFields)?;
    let mut changes: Vec<String> = title.iter().map(|t| format!("title \"{}\" → \"{t}\"", h.title)).collect();
    let mut diff = BTreeMap::new();
    let names: std::collections::BTreeSet<&String> = h.fields.keys().chain(fields.keys()).collect();
    for name in names {
        let (before, after) = (h.fields.get(name), fields.get(name));
        let shown = |v: &String| ctx.shown(name, v).into_owned();
        changes.push(match (before, after) {
            (Some(b), Some(a)) if a != b => format!("{name} {} → {}", shown(b), shown(a)),
            (None, Some(a)) => format!("{name} {} (added)", shown(a)),
            (Some(b), None) => format!("{name} {} (removed)", shown(b)),
            _ => continue,
        });
        diff.insert(name.clone(), after.cloned().unwrap_or_default());
    }
    if changes.is_empty() {
        return Err(Rejection::Unchanged(format!("{label} already holds that")));
    }
    let what = changes.join("; ");
    if let Some(t) = &title {
        d.h.title = t.clone();
    }
    d.h.fields = fields;
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    d.record(Change::Edited { title, fields: diff, note: note.map(str::to_string) });
    let note = note.map(|n| format!("\n{n}")).unwrap_or_default();
    let text = format!("{label} \"{}\" was changed by {}: {what}.{note}", d.h.title, ctx.name(&d.actor));
    let mut told = vec![h.requester.clone()];
    told.extend(h.owner.clone());
    told.dedup();
    for person in told {
        d.tell_person(&person, text.clone(), vec![]);
    }
    d.post_card();
    Ok(format!("{label} changed: {what}."))
}

/// Refuses `actor` unless they own the handoff or lead its receiving function (`lead`).
fn require_owner_or_lead(
    ctx: &Ctx<'_>,
    h: &Handoff,
    actor: &str,
    lead: bool,
    action: &'static str,
) -> Result<(), Rejection> {
    if h.owner.as_deref() == Some(actor) || lead {
        return Ok(());
    }
    let lead = format!("{} (lead of {})", ctx.name(&ctx.to.lead), ctx.to.name);
    let who = match &h.owner {
        Some(owner) => format!("its owner, {}, or {lead}", ctx.name(owner)),
        None => lead,
    };
    Err(Rejection::NotOwnerOrLead { id: h.id, who, unowned: h.owner.is_none(), action })
}

fn not_receiver(ctx: &Ctx<'_>, h: &Handoff, action: &'static str) -> Rejection {
    Rejection::NotReceiver { id: h.id, function: ctx.to.name.clone(), lead: ctx.name(&ctx.to.lead).to_string(), action }
}

fn require_receiver(ctx: &Ctx<'_>, h: &Handoff, actor: &str, action: &'static str) -> Result<(), Rejection> {
    if ctx.to.has_member(actor) { Ok(()) } else { Err(not_receiver(ctx, h, action)) }
}

fn require_owner(ctx: &Ctx<'_>, h: &Handoff, actor: &str, action: &'static str) -> Result<(), Rejection> {
    match &h.owner {
        Some(owner) if owner == actor => Ok(()),
        Some(owner) => Err(Rejection::NotOwner { id: h.id, owner: ctx.name(owner).to_string(), action }),
        // Returned before anyone accepted it: nothing can be accepted until the requester resubmits.
        None if h.state == State::Returned => Err(Rejection::WrongState {
            id: h.id,
            state: h.state,
            hint: format!("it is back with its requester, {}, until they resubmit it", ctx.name(&h.requester)),
        }),
        None => Err(Rejection::WrongState {
            id: h.id,
            state: h.state,
            hint: format!(
                "nobody owns it yet; a member of {} accepts it first with `/handoff accept {}`",
                ctx.to.name,
                h.label()
            ),
        }),
    }
}

pub(crate) fn require_may_own(ctx: &Ctx<'_>, person: &Person) -> Result<(), Rejection> {
    if person.is_agent() && ctx.seam.mode != ExecutionMode::AgentReady {
        return Err(Rejection::AgentNotAllowed {
            seam: ctx.seam.id.clone(),
            mode: match ctx.seam.mode {
                ExecutionMode::HumanOnly => "human-only",
                _ => "agent-augmented",
            },
        });
    }
    Ok(())
}

/// The seam's approvers who may judge `h`: configured, not its requester, not its owner.
fn impartial_approvers<'a>(ctx: &Ctx<'a>, h: &'a Handoff) -> impl Iterator<Item = &'a PersonId> {
    ctx.seam.approvers.iter().filter(|a| **a != h.requester && h.owner.as_ref() != Some(*a))
}

/// The approvers asked while `h` waits at a gate for approvals (none when it is not at one).
fn asked_approvers(ctx: &Ctx<'_>, h: &Handoff) -> Vec<PersonId> {
    match h.state == State::AwaitingGate && h.tier.approvals_needed() > 0 {
        true => impartial_approvers(ctx, h).cloned().collect(),
        false => Vec::new(),
    }
}

/// Approvers who may still approve: impartial, and not yet approved.
fn eligible_approvers(ctx: &Ctx<'_>, h: &Handoff) -> Vec<PersonId> {
    impartial_approvers(ctx, h).filter(|a| !h.approvals.iter().any(|x| &x.by == *a)).cloned().collect()
}

fn approvers_line(ctx: &Ctx<'_>, h: &Handoff) -> String {
    let eligible = eligible_approvers(ctx, h);
    let names: Vec<&str> = eligible.iter().map(|a| ctx.model.name_of(a)).collect();
    if names.is_empty() {
        "nobody eligible is left: ask a workflow architect to add approvers to the seam".into()
    } else {
        names.join(", ")
    }
}

/// What a handoff waits on from one person (for their `/handoff mine`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// It is in the queue of a function they belong to: one of them accepts it.
    Acceptance,
    /// It waits at the gate, and they may approve it.
    Approval,
}

/// Whether `h` waits on `person`: unaccepted in their function's queue (an agent's, on a seam
/// whose work agents may own), or at a gate they may approve (not its requester or owner, an
/// approver on its seam, not yet approved by them).
pub fn waiting_on(model: &OperatingModel, h: &Handoff, person: &str) -> Option<Waiting> {
    let ctx = Ctx::new(model, &h.seam).ok()?;
    let may_own = || model.person(person).is_some_and(|p| require_may_own(&ctx, p).is_ok());
    match h.state {
        State::Open if h.owner.is_none() && ctx.to.has_member(person) && may_own() => Some(Waiting::Acceptance),
        State::AwaitingGate if check_approver(&ctx, h, person).is_ok() => Some(Waiting::Approval),
        _ => None,
    }
}

fn check_approver(ctx: &Ctx<'_>, h: &Handoff, actor: &str) -> Result<(), Rejection> {
    let deny = |reason: &str| {
        Err(Rejection::CannotApprove { id: h.id, reason: reason.to_string(), approvers: approvers_line(ctx, h) })
    };
    if h.tier.approvals_needed() == 0 {
        return Err(Rejection::WrongState {
            id: h.id,
            state: h.state,
            hint: "its tier is reversible: the automated reviewer decides".into(),
        });
    }
    if actor == h.requester {
        return deny("the requester cannot approve their own handoff");
    }
    if h.owner.as_deref() == Some(actor) {
        return deny("the owner cannot approve their own work");
    }
    if !ctx.seam.approvers.iter().any(|a| a == actor) {
        return deny("you are not an approver on this seam");
    }
    if h.approvals.iter().any(|a| a.by == actor) {
        return deny("you have already approved it; a second approval must come from someone else");
    }
    Ok(())
}
