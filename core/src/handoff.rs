//! A handoff and what happens to it: its state, audit events and outgoing message intents.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::Clock;
use crate::model::{PersonId, RiskTier, SeamId};

/// Handoff number, shown to people as `H-<n>`.
pub type HandoffId = u64;

/// An owned ticket on a seam.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    /// Number, unique across the installation.
    pub id: HandoffId,
    /// The seam it travels on.
    pub seam: SeamId,
    /// One line saying what is handed off.
    pub title: String,
    /// Contract fields, validated and normalised.
    pub fields: BTreeMap<String, String>,
    /// Who handed it off.
    pub requester: PersonId,
    /// The one accountable person once accepted; before that the receiving queue (lead accountable).
    pub owner: Option<PersonId>,
    /// Risk tier deciding the gate (the seam's default, or higher).
    pub tier: RiskTier,
    /// Where it is in its life.
    pub state: State,
    /// State before it was returned to the requester, restored on resubmission.
    pub returned_from: Option<State>,
    /// Created (time to done counts from here).
    pub created_at: DateTime<Utc>,
    /// Last change of any kind.
    pub updated_at: DateTime<Utc>,
    /// Business time in the current phase (to accept, since last update, at the gate).
    pub phase_clock: Clock,
    /// Business time since creation, for the time-to-done target.
    pub total_clock: Clock,
    /// Active snooze, if any.
    pub snooze: Option<Snooze>,
    /// Why it was last returned or cancelled.
    pub reason: Option<String>,
    /// Human approvals collected at the current gate.
    pub approvals: Vec<Approval>,
    /// Automated review verdicts, newest last.
    pub verdicts: Vec<Verdict>,
    /// The open stall episode, if stalled.
    pub stall: Option<Stall>,
    /// Number of stall episodes so far (the next one is `episodes + 1`).
    pub episodes: u32,
    /// The owner's latest progress note.
    pub last_note: Option<String>,
    /// The recalibration under way, if one was convened and not yet recorded.
    #[serde(default)]
    pub recalibration: Option<Recalibration>,
    /// A due date agreed in a recalibration (shown on the card).
    #[serde(default)]
    pub due_date: Option<chrono::NaiveDate>,
    /// First accepted (time to accept counts to here; wall-clock, for stall history).
    #[serde(default)]
    pub accepted_at: Option<DateTime<Utc>>,
    /// Done or cancelled.
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    /// People who asked to be told as it moves (`/handoff watch`), besides its requester and owner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watchers: Vec<PersonId>,
    /// The deadline (breach instant) whose heads-up went out, so that it goes out once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warned: Option<DateTime<Utc>>,
    /// The latest heads-up still unanswered: answered when the handoff moves past its target, or
    /// with the stall it became.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads_up: Option<HeadsUp>,
    /// Who was sent a notice asking them to act on the handoff as it stands (a return's
    /// *Resubmit*, a reassignment's *Accept*, a rejection's *Acknowledge*): answered when it next
    /// moves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub asked: Vec<Recipient>,
    /// The API client it was handed off through (a CRM), which follows it at its webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// When a webhook reviewer was asked for the verdict it has not given yet. The stall check
    /// asks again once its timeout and a minute have passed: a crash, or a failed save, between
    /// the asking and the verdict would otherwise leave the handoff at the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_asked: Option<DateTime<Utc>>,
    /// Who recorded its post-mortem, and when: one per handoff, so that its failure category
    /// counts once in the stall history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postmortem: Option<(PersonId, DateTime<Utc>)>,
    /// People no longer in the operating model (they left, or a reload dropped them) whose leaving
    /// a lead was told of: its owner's, to the receiving lead; that of the requester it was
    /// returned to, to the sending lead. Once each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left: Vec<PersonId>,
}

/// A recalibration under way on a handoff.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recalibration {
    /// Playbook followed.
    pub playbook: String,
    /// Who convenes and answers for the artifact.
    pub convener: PersonId,
    /// When it was convened.
    pub convened_at: DateTime<Utc>,
    /// When its timebox runs out (the convener is reminded then).
    pub timebox_ends: DateTime<Utc>,
    /// Whether the reminder went out.
    pub reminded: bool,
    /// Where its thread is.
    pub thread: Recipient,
}

/// A recorded recalibration (or post-mortem) artifact, for history queries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// Handoff.
    pub handoff: HandoffId,
    /// The stall episode it closed, if any.
    pub episode: Option<u32>,
    /// Playbook followed.
    pub playbook: String,
    /// Failure category (from the taxonomy).
    pub category: String,
    /// Which workflow assumption broke.
    pub assumption: String,
    /// What was decided (`resume`, `new-owner`, …; `postmortem` for a post-mortem).
    pub decision: String,
    /// Every field as recorded.
    pub fields: BTreeMap<String, String>,
    /// Who recorded it.
    pub by: PersonId,
    /// When.
    pub at: DateTime<Utc>,
    /// A post-mortem correcting the handoff's earlier one, which it replaces (so that its failure
    /// category counts once, as corrected).
    #[serde(default)]
    pub corrects: bool,
}

/// A follow-up agreed in a recalibration: tracked, and its owner reminded on its due date.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FollowUp {
    /// Handoff it came from.
    pub handoff: HandoffId,
    /// Who does it.
    pub owner: PersonId,
    /// By when.
    pub due: chrono::NaiveDate,
    /// What.
    pub what: String,
}

impl Handoff {
    /// `H-12`.
    pub fn label(&self) -> String {
        label(self.id)
    }
}

/// `H-12`.
pub fn label(id: HandoffId) -> String {
    format!("H-{id}")
}

/// Life-cycle states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// In the receiving function's queue, waiting to be accepted.
    Open,
    /// Accepted by an owner who has not started yet.
    Accepted,
    /// Handed to a new owner who must accept it.
    Reassigned,
    /// Work is under way.
    InProgress,
    /// Waiting at the validation gate.
    AwaitingGate,
    /// Finished and validated.
    Done,
    /// Sent back to the requester, waiting on them.
    Returned,
    /// Called off.
    Cancelled,
}

impl State {
    /// Lower-case name used in storage and replies.
    pub fn name(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Accepted => "accepted",
            State::Reassigned => "reassigned",
            State::InProgress => "in_progress",
            State::AwaitingGate => "awaiting_gate",
            State::Done => "done",
            State::Returned => "returned",
            State::Cancelled => "cancelled",
        }
    }

    /// Done or cancelled: nothing more happens.
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Done | State::Cancelled)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name().replace('_', " "))
    }
}

/// A pause asked for by the owner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snooze {
    /// When the clocks run again.
    pub until: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// Who snoozed.
    pub by: PersonId,
}

/// A human approval at the gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Approver.
    pub by: PersonId,
    /// When.
    pub at: DateTime<Utc>,
}

/// An automated reviewer's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Reviewer id (`builtin` for the built-in contract check).
    pub reviewer: String,
    /// The reviewer configuration's version that gave this verdict.
    pub version: String,
    /// Whether the work passes.
    pub pass: bool,
    /// Why not (or notes).
    pub reasons: Vec<String>,
    /// When it was given.
    pub at: DateTime<Utc>,
}

/// Why a handoff is stalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StallKind {
    /// Not accepted within the accept target.
    NoAccept,
    /// No update within the update target.
    NoProgress,
    /// Waiting at the gate longer than the gate target.
    GateWaiting,
    /// Not done within the time-to-done target.
    Overdue,
}

impl StallKind {
    /// Storage name.
    pub fn name(self) -> &'static str {
        match self {
            StallKind::NoAccept => "no_accept",
            StallKind::NoProgress => "no_progress",
            StallKind::GateWaiting => "gate_waiting",
            StallKind::Overdue => "overdue",
        }
    }

    /// Words for people.
    pub fn describe(self) -> &'static str {
        match self {
            StallKind::NoAccept => "not accepted in time",
            StallKind::NoProgress => "no progress update in time",
            StallKind::GateWaiting => "waiting at the gate too long",
            StallKind::Overdue => "past its time-to-done target",
        }
    }
}

/// A heads-up that asks for something before a target falls due.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadsUp {
    /// The target it warned of.
    pub kind: StallKind,
    /// Who was told.
    pub told: Vec<Recipient>,
}

/// An open stall episode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stall {
    /// Episode number within this handoff, from 1.
    pub episode: u32,
    /// What was breached.
    pub kind: StallKind,
    /// The instant the target was breached.
    pub opened_at: DateTime<Utc>,
    /// Indexes of ladder steps already fired in this episode.
    pub fired: Vec<usize>,
    /// Who was sent this episode's escalations (with their buttons): when it ends, each is told
    /// it was answered, which platforms show by editing those messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub told: Vec<Recipient>,
}

/// Through which surface a change came.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    /// The local console.
    Console,
    /// Slack.
    Slack,
    /// Discord.
    Discord,
    /// Baton itself (scheduler, reviewers).
    Baton,
    /// Baton's HTTP API (`/api/v1`): an integration or an agent acting for a person.
    Api,
}

impl Surface {
    /// Storage name.
    pub fn name(self) -> &'static str {
        match self {
            Surface::Console => "console",
            Surface::Slack => "slack",
            Surface::Discord => "discord",
            Surface::Baton => "baton",
            Surface::Api => "api",
        }
    }
}

/// The actor recorded for changes Baton makes on its own.
pub const BATON: &str = "baton";

/// One audit record: who, when, through which surface, what changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When.
    pub at: DateTime<Utc>,
    /// Person id, or [`BATON`].
    pub actor: String,
    /// Where the change came from.
    pub surface: Surface,
    /// State after the change.
    pub state: State,
    /// What changed.
    pub change: Change,
    /// The API client it came through, for a change made through the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// What an event changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// Handed off.
    Created {
        /// Contract fields as given.
        fields: BTreeMap<String, String>,
    },
    /// Taken by an owner.
    Accepted {
        /// The new owner.
        owner: PersonId,
    },
    /// Owner acknowledged (starts work, or answers an escalation).
    Acknowledged,
    /// Progress note, possibly with field changes.
    Updated {
        /// The note.
        note: String,
        /// Fields changed.
        fields: BTreeMap<String, String>,
    },
    /// Owner says it is done; now at the gate.
    SubmittedForGate {
        /// Tier deciding the gate.
        tier: RiskTier,
    },
    /// A webhook reviewer asked again: no verdict came after it was asked.
    ReviewAskedAgain {
        /// The reviewer's id.
        reviewer: String,
    },
    /// Automated review.
    Reviewed {
        /// The verdict.
        verdict: Verdict,
    },
    /// A human approval.
    Approved {
        /// Approvals collected so far, including this one.
        count: usize,
        /// Approvals the tier needs.
        needed: usize,
    },
    /// Sent back from the gate.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Finished.
    Done,
    /// Sent back to the requester.
    Returned {
        /// Why.
        reason: String,
    },
    /// The requester answered and sent it back in.
    Resubmitted {
        /// Fields changed.
        fields: BTreeMap<String, String>,
        /// What the requester said with it (the answer to the return).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The requester corrected what was handed off.
    Edited {
        /// The new title, if it changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// Fields changed, with their new values (empty: removed).
        fields: BTreeMap<String, String>,
        /// Why, as the requester said it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Called off.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// Given to another owner.
    Reassigned {
        /// Previous owner.
        from: Option<PersonId>,
        /// New owner.
        to: PersonId,
    },
    /// Clocks paused until a time.
    Snoozed {
        /// End of the snooze.
        until: DateTime<Utc>,
        /// Why.
        reason: String,
    },
    /// A snooze ran out.
    SnoozeEnded,
    /// Its owner was found no longer in the operating model; the receiving lead was told.
    OwnerLeft {
        /// The owner who left.
        owner: PersonId,
    },
    /// The requester it was returned to was found no longer in the operating model; the sending
    /// lead was told, and may answer the return in their place.
    RequesterLeft {
        /// The requester who left.
        requester: PersonId,
    },
    /// A target was breached.
    StallOpened {
        /// Episode number.
        episode: u32,
        /// What was breached.
        kind: StallKind,
    },
    /// The handoff moved again.
    StallClosed {
        /// Episode number.
        episode: u32,
        /// What had been breached.
        kind: StallKind,
        /// Seconds from breach to unblock.
        unblock_secs: i64,
    },
    /// Someone convened a recalibration by hand.
    RecalibrationConvened {
        /// Playbook used.
        playbook: String,
    },
    /// A recalibration's (or post-mortem's) artifact was recorded.
    ArtifactRecorded {
        /// Playbook followed.
        playbook: String,
        /// The fields as recorded.
        fields: BTreeMap<String, String>,
    },
    /// A post-mortem was corrected: these fields replace the ones recorded before.
    ArtifactCorrected {
        /// Playbook followed.
        playbook: String,
        /// The fields as corrected.
        fields: BTreeMap<String, String>,
    },
    /// The convener was reminded that the timebox ran out.
    TimeboxReminded,
    /// Whoever must act was told a target falls due soon (`due`).
    Warned {
        /// Which target.
        kind: StallKind,
        /// When it falls due.
        due: DateTime<Utc>,
    },
    /// The actor said something about it, without moving it.
    Commented {
        /// What was said.
        text: String,
    },
    /// The actor replied in its recalibration thread (kept with the handoff for the post-mortem).
    Discussed {
        /// What was said.
        text: String,
    },
    /// The actor asked to be told as it moves.
    Watched,
    /// The actor no longer watches it.
    Unwatched,
    /// A ladder step fired.
    LadderStep {
        /// Episode number.
        episode: u32,
        /// Index in the seam's ladder.
        step: usize,
        /// Action name.
        action: String,
        /// Passed over because a later step was also due (a check that ran late after downtime
        /// sends only the highest step, not the whole ladder at once).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        skipped: bool,
    },
}

impl Change {
    /// Storage name of the change kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Created { .. } => "created",
            Change::Accepted { .. } => "accepted",
            Change::Acknowledged => "acknowledged",
            Change::Updated { .. } => "updated",
            Change::SubmittedForGate { .. } => "submitted_for_gate",
            Change::Reviewed { .. } => "reviewed",
            Change::ReviewAskedAgain { .. } => "review_asked_again",
            Change::Approved { .. } => "approved",
            Change::Rejected { .. } => "rejected",
            Change::Done => "done",
            Change::Returned { .. } => "returned",
            Change::Resubmitted { .. } => "resubmitted",
            Change::Edited { .. } => "edited",
            Change::Cancelled { .. } => "cancelled",
            Change::Reassigned { .. } => "reassigned",
            Change::Snoozed { .. } => "snoozed",
            Change::SnoozeEnded => "snooze_ended",
            Change::OwnerLeft { .. } => "owner_left",
            Change::RequesterLeft { .. } => "requester_left",
            Change::StallOpened { .. } => "stall_opened",
            Change::StallClosed { .. } => "stall_closed",
            Change::LadderStep { .. } => "ladder_step",
            Change::RecalibrationConvened { .. } => "recalibration_convened",
            Change::ArtifactRecorded { .. } => "artifact_recorded",
            Change::ArtifactCorrected { .. } => "artifact_corrected",
            Change::TimeboxReminded => "timebox_reminded",
            Change::Warned { .. } => "warned",
            Change::Commented { .. } => "commented",
            Change::Discussed { .. } => "discussed",
            Change::Watched => "watched",
            Change::Unwatched => "unwatched",
        }
    }
}

/// Where an outgoing message goes, independent of platform ids.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Recipient {
    /// A person, directly (Slack DM or Discord DM, whichever they use).
    Person(PersonId),
    /// A function's Slack channel.
    SlackChannel(String),
    /// A function's Discord channel.
    DiscordChannel(String),
    /// An API client's webhook: an integration following the handoffs handed off through it.
    Client(String),
}

/// What kind of message an intent is, so adapters can render it fittingly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentKind {
    /// The handoff's card (updated in place where the platform allows).
    Card,
    /// An informational notice about a change.
    Notice,
    /// A ladder reminder or notification.
    Escalation,
    /// A heads-up before a target falls due (a seam's `sla.warn`).
    HeadsUp,
    /// A recalibration's follow-up, reminded on its due day: held for days, it waits in no line
    /// (what its owner is told about the handoff meanwhile goes out at once).
    FollowUp,
    /// A scheduled summary (stall digest, morning catch-up, still-open nudge) or several
    /// messages to one recipient folded into one.
    Digest,
    /// A message in the handoff's recalibration thread (timebox reminder, recorded outcome).
    Thread,
    /// What the recipient was asked is answered (the stall an escalation was about has ended, the
    /// handoff moved past a heads-up's target or a notice's request): those messages are edited to
    /// add this text, without their buttons (nothing new is posted).
    Settled,
    /// The recalibration a thread was convened for is recorded (or its handoff closed): the
    /// thread's messages that ask for the record are edited to add this text, without their
    /// buttons (nothing new is posted).
    Concluded,
    /// A recalibration thread is convened.
    Recalibration {
        /// Playbook used.
        playbook: String,
    },
}

/// A button offered with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Take ownership.
    Accept,
    /// Acknowledge.
    Ack,
    /// Post a progress note.
    Update,
    /// Submit the work as done: it goes to its validation gate.
    Done,
    /// Pause the clocks.
    Snooze,
    /// Send back to the requester.
    Return,
    /// Approve at the gate.
    Approve,
    /// Reject at the gate.
    Reject,
    /// Say the work is blocked: convenes a recalibration now.
    Blocked,
    /// Answer a return: send it back in, changed.
    Resubmit,
    /// Be told as it moves (on the card in the receiving function's channel).
    Watch,
    /// No longer be told (on what a watcher is told).
    Unwatch,
    /// Record the outcome of the open recalibration (its artifact).
    Record,
}

/// A message to a person or channel, before any platform renders it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// Who receives it.
    pub to: Recipient,
    /// The handoff it concerns (`None` for scheduled digests about many).
    pub handoff: Option<HandoffId>,
    /// How to render it.
    pub kind: IntentKind,
    /// Plain text (adapters escape it for their platform).
    pub text: String,
    /// Buttons offered.
    pub actions: Vec<Action>,
    /// Held until this instant: the recipient's quiet hours (`None`: send now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// People to mention (ping) in a channel message: a recalibration's participants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<PersonId>,
    /// A picture sent with the text (a stall-history chart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
}

/// A PNG picture attached to a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// File name, like `stalls.png`.
    pub name: String,
    /// Alternative text and title.
    pub title: String,
    /// The PNG, base64-encoded (it travels inside the outbox row).
    pub png_base64: String,
}

impl IntentKind {
    /// Lower-case name, for logs and the console.
    pub fn name(&self) -> &'static str {
        match self {
            IntentKind::Card => "card",
            IntentKind::Notice => "notice",
            IntentKind::Escalation => "escalation",
            IntentKind::HeadsUp => "heads-up",
            IntentKind::FollowUp => "follow-up",
            IntentKind::Settled => "settled",
            IntentKind::Concluded => "concluded",
            IntentKind::Digest => "digest",
            IntentKind::Thread => "thread",
            IntentKind::Recalibration { .. } => "recalibration",
        }
    }
}

impl Intent {
    /// A message about no handoff in particular (a reply, a report, a digest), sent at once.
    pub fn message(to: Recipient, kind: IntentKind, text: String) -> Intent {
        Intent {
            to,
            handoff: None,
            kind,
            text,
            actions: Vec::new(),
            not_before: None,
            mentions: Vec::new(),
            image: None,
        }
    }

    /// Whether the delivery worker may fold this message into a digest with others to the same
    /// recipient (cards are edited in place and recalibrations open threads, so they stay apart).
    pub fn digestible(&self) -> bool {
        self.image.is_none()
            && matches!(
                self.kind,
                IntentKind::Notice
                    | IntentKind::Escalation
                    | IntentKind::HeadsUp
                    | IntentKind::FollowUp
                    | IntentKind::Digest
            )
    }
}

/// A stall episode as recorded for history queries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRecord {
    /// Handoff.
    pub handoff: HandoffId,
    /// Episode number within it.
    pub episode: u32,
    /// Seam, for per-seam statistics.
    pub seam: SeamId,
    /// What was breached.
    pub kind: StallKind,
    /// Breach instant.
    pub opened_at: DateTime<Utc>,
    /// When it moved again (`None` while open).
    pub closed_at: Option<DateTime<Utc>>,
}

/// A ladder step that fired, recorded once per (handoff, episode, step).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FiredStep {
    /// Handoff.
    pub handoff: HandoffId,
    /// Episode.
    pub episode: u32,
    /// Index in the ladder.
    pub step: usize,
    /// Action name.
    pub action: String,
    /// When it fired.
    pub at: DateTime<Utc>,
    /// Passed over by a late check (recorded so it never fires later).
    pub skipped: bool,
}

/// Everything one accepted command or check produces, to be persisted in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The handoff's new state.
    pub handoff: Handoff,
    /// Audit events, in order.
    pub events: Vec<Event>,
    /// Outgoing messages.
    pub intents: Vec<Intent>,
    /// Stall episodes opened or closed.
    pub episodes: Vec<EpisodeRecord>,
    /// Ladder steps fired.
    pub fired: Vec<FiredStep>,
    /// When the handoff next needs a stall check (`None`: never).
    pub next_check: Option<DateTime<Utc>>,
    /// What no other open handoff on its seam may hold while it is open ([`crate::model::Seam::open_key`]);
    /// `None` once it is closed, or when its seam keys on nothing.
    pub open_key: Option<String>,
    /// Whether this decision gives the handoff that key (it is made, or a field of the key
    /// changed): the store then refuses it if another open handoff holds the key.
    pub claims_key: bool,
    /// The webhook reviewer the bot must call now, if the handoff entered a gate it reviews
    /// (a rules reviewer's verdict is already in the decision).
    pub review: Option<String>,
    /// Recalibration and post-mortem artifacts recorded.
    pub artifacts: Vec<ArtifactRecord>,
    /// Follow-ups agreed.
    pub follow_ups: Vec<FollowUp>,
    /// Facts for the stall-history rollups, each produced once, when it happens.
    pub tallies: Vec<Tally>,
    /// What to tell the person who acted.
    pub reply: String,
}

/// A fact the stall-history rollups count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    /// What happened.
    pub metric: TallyMetric,
    /// When (the day it is counted on).
    pub at: DateTime<Utc>,
    /// The duration it ends, in seconds (creation to acceptance or done, breach to unblock).
    pub secs: i64,
}

/// What a [`Tally`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TallyMetric {
    /// First acceptance (time to accept).
    Accepted,
    /// A stall episode began.
    StallOpened,
    /// A stall episode ended (time to unblock).
    Unblocked,
    /// Done (throughput).
    Done,
}

impl TallyMetric {
    /// Storage name.
    pub fn name(self) -> &'static str {
        match self {
            TallyMetric::Accepted => "accept",
            TallyMetric::StallOpened => "opened",
            TallyMetric::Unblocked => "unblock",
            TallyMetric::Done => "done",
        }
    }
}
