//! The operating model: functions, people, seams, reviewers, playbooks, as loaded from config.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::WorkCalendar;

/// What someone typed for one of `known` (id, name): the id it is exactly, else the one id or
/// name it is but for case. Ambiguous or unknown: `None`, so the refusal names what was typed.
fn named<'a>(typed: &str, known: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Option<&'a str> {
    if let Some((id, _)) = known.clone().find(|(id, _)| *id == typed) {
        return Some(id);
    }
    let typed = typed.to_lowercase();
    let mut hits = known.filter(|(id, name)| id.to_lowercase() == typed || name.to_lowercase() == typed);
    match (hits.next(), hits.next()) {
        (Some((id, _)), None) => Some(id),
        _ => None,
    }
}

/// A configured person's id (`dana`).
pub type PersonId = String;
/// A configured function's id (`customer-success`).
pub type FunctionId = String;
/// A configured seam's id (`sales-to-cs`).
pub type SeamId = String;

/// Everything Baton knows about how the organisation hands work across functions.
#[derive(Clone, Debug, Default)]
pub struct OperatingModel {
    /// Teams, by id.
    pub functions: BTreeMap<FunctionId, Function>,
    /// People and agents, by id.
    pub people: BTreeMap<PersonId, Person>,
    /// Seams, by id.
    pub seams: BTreeMap<SeamId, Seam>,
    /// Automated reviewers, by id.
    pub reviewers: BTreeMap<String, Reviewer>,
    /// Recalibration playbooks, by id.
    pub playbooks: BTreeMap<String, Playbook>,
    /// The failure-category taxonomy recalibrations classify into.
    pub categories: Vec<String>,
    /// Where stall digests and config alarms go (a Slack channel).
    pub architects_channel: Option<String>,
    /// Tiers whose pings go out at any hour; others wait for the recipient's working hours.
    pub loud_tiers: Vec<RiskTier>,
    /// Outbox delivery policy.
    pub delivery: Delivery,
    /// How long what is kept only for a while is kept.
    pub retention: Retention,
    /// Periodic jobs (digests, nudges, morning catch-up).
    pub jobs: Vec<Job>,
    /// Clients of the HTTP API (integrations, agents), by name.
    pub api: BTreeMap<String, ApiClient>,
}

impl OperatingModel {
    /// The person with this id.
    pub fn person(&self, id: &str) -> Option<&Person> {
        self.people.get(id)
    }

    /// The person's name, or their id with `(no longer in the operating model)` once they left it.
    pub fn name_or_gone(&self, id: &str) -> String {
        match self.person(id) {
            Some(p) => p.name.clone(),
            None => format!("{id} (no longer in the operating model)"),
        }
    }

    /// Whether a message to `to` can reach anyone: not when `to` is a person no longer in the
    /// model (they left, or a reload dropped them); a channel or an API client always.
    pub fn reaches(&self, to: &crate::handoff::Recipient) -> bool {
        !matches!(to, crate::handoff::Recipient::Person(p) if self.person(p).is_none())
    }

    /// The id of the person someone typed: their id in any case (phones capitalise the first
    /// letter), `@id`, or their full name.
    pub fn person_named(&self, typed: &str) -> Option<&str> {
        let typed = typed.trim().trim_start_matches('@');
        named(typed, self.people.values().map(|p| (p.id.as_str(), p.name.as_str())))
    }

    /// The id of the seam someone typed, in any case.
    pub fn seam_named(&self, typed: &str) -> Option<&str> {
        named(typed.trim(), self.seams.keys().map(|id| (id.as_str(), id.as_str())))
    }

    /// The id of the function someone typed: its id or its name (`Sales`), in any case.
    pub fn function_named(&self, typed: &str) -> Option<&str> {
        named(typed.trim(), self.functions.values().map(|f| (f.id.as_str(), f.name.as_str())))
    }

    /// The id of the playbook someone typed, in any case.
    pub fn playbook_named(&self, typed: &str) -> Option<&str> {
        named(typed.trim(), self.playbooks.keys().map(|id| (id.as_str(), id.as_str())))
    }

    /// The failure category someone typed, in any case.
    pub fn category_named(&self, typed: &str) -> Option<&str> {
        named(typed.trim(), self.categories.iter().map(|c| (c.as_str(), c.as_str())))
    }

    /// Display name for a person id, falling back to the id itself.
    pub fn name_of<'a>(&'a self, id: &'a str) -> &'a str {
        self.people.get(id).map_or(id, |p| p.name.as_str())
    }

    /// The person whose Slack user id this is.
    pub fn by_slack(&self, slack_user: &str) -> Option<&Person> {
        self.people.values().find(|p| p.slack.as_deref() == Some(slack_user))
    }

    /// The person whose Discord user id this is.
    pub fn by_discord(&self, discord_user: &str) -> Option<&Person> {
        self.people.values().find(|p| p.discord.as_deref() == Some(discord_user))
    }

    /// The seams into `function` (what it receives).
    pub fn seams_into(&self, function: &str) -> Vec<SeamId> {
        self.seams.values().filter(|s| s.to == function).map(|s| s.id.clone()).collect()
    }

    /// The seams out of `function` (what it sends).
    pub fn seams_out_of(&self, function: &str) -> Vec<SeamId> {
        self.seams.values().filter(|s| s.from == function).map(|s| s.id.clone()).collect()
    }

    /// The names of the functions `person` leads, joined for a sentence: `Sales and Marketing`.
    pub fn led_by(&self, person: &str) -> String {
        let names: Vec<&str> = self.functions.values().filter(|f| f.lead == person).map(|f| f.name.as_str()).collect();
        names.join(" and ")
    }

    /// The function a person works in (where they lead, else where they are a member).
    pub fn home_function(&self, person: &str) -> Option<&Function> {
        let mut funcs = self.functions.values();
        funcs.clone().find(|f| f.lead == person).or_else(|| funcs.find(|f| f.members.iter().any(|m| m == person)))
    }

    /// Until when a ping to `person` about work of `tier` waits for their working hours: `None`
    /// sends now (inside their hours, a loud tier, an agent, or nobody knows their hours).
    pub fn quiet_until(&self, person: &str, tier: RiskTier, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.loud_tiers.contains(&tier) || self.person(person).is_some_and(Person::is_agent) {
            return None;
        }
        let cal = &self.home_function(person)?.calendar;
        // A window's closing instant still counts: a ping due exactly at 17:00 goes out then.
        if cal.is_working(now) || cal.is_working(now - Duration::seconds(1)) {
            return None;
        }
        Some(cal.add(now, Duration::zero()))
    }
}

/// How the outbox is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Attempts before a message is dead-lettered and the seam's lead told.
    pub max_attempts: u32,
    /// More than this many foldable messages due together for one recipient become one digest.
    pub digest_threshold: usize,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery { max_attempts: 8, digest_threshold: 3 }
    }
}

/// How long Baton keeps what it needs only for a while (`[retention]`); handoffs, their audit
/// trails, stall history and dead letters are kept for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Messages delivered (the outbox rows behind them), counted from delivery.
    pub messages: Duration,
    /// Request keys, which make a retried or replayed request act once (an API client's
    /// `Idempotency-Key` among them), counted from the request.
    pub request_keys: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { messages: Duration::days(90), request_keys: Duration::days(30) }
    }
}

/// What a periodic job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Stall history of the last week to the architects' channel.
    StallDigest,
    /// "Still open?" nudge to owners of handoffs with no change for a day.
    StillOpen,
    /// Start-of-business summary to each function's lead: queue waiting, stalls open.
    CatchUp,
}

impl JobKind {
    /// All kinds, with their config spelling.
    pub const ALL: [(&'static str, JobKind); 3] =
        [("stall-digest", JobKind::StallDigest), ("still-open", JobKind::StillOpen), ("catch-up", JobKind::CatchUp)];

    /// Config spelling.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, k)| *k == self).map_or("?", |(n, _)| n)
    }
}

/// A periodic job: runs at each instant of its cron schedule, read in its time zone.
#[derive(Clone, Debug)]
pub struct Job {
    /// Config key; with the scheduled instant, it makes each run happen once across replicas.
    pub name: String,
    /// What it does.
    pub kind: JobKind,
    /// When (six or seven cron fields, seconds first).
    pub schedule: cron::Schedule,
    /// The zone the schedule is read in.
    pub tz: Tz,
    /// Functions it covers (empty: all).
    pub functions: Vec<FunctionId>,
}

impl Job {
    /// The first scheduled instant strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&after.with_timezone(&self.tz)).next().map(|t| t.with_timezone(&Utc))
    }

    /// Whether it covers `function`.
    pub fn covers(&self, function: &str) -> bool {
        self.functions.is_empty() || self.functions.iter().any(|f| f == function)
    }
}

/// A team that sends or receives handoffs.
#[derive(Clone, Debug)]
pub struct Function {
    /// Stable id used in config and commands.
    pub id: FunctionId,
    /// Human name.
    pub name: String,
    /// Accountable for the function's unaccepted queue.
    pub lead: PersonId,
    /// Who may accept work arriving at this function.
    pub members: Vec<PersonId>,
    /// Slack channel for cards and escalations.
    pub slack_channel: Option<String>,
    /// Discord channel for escalations (engineering).
    pub discord_channel: Option<String>,
    /// Working hours; SLA clocks of handoffs received here run on it.
    pub calendar: WorkCalendar,
}

impl Function {
    /// Whether `person` may accept work here (a member or the lead).
    pub fn has_member(&self, person: &str) -> bool {
        self.lead == person || self.members.iter().any(|m| m == person)
    }
}

/// Roles a person may hold (several allowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Hands work off (sales, marketing, ops reps).
    Rep,
    /// Receives engineering escalations.
    Engineer,
    /// Leads a function.
    Lead,
    /// Designs and audits the operating model; sees all stall history.
    Architect,
}

impl Role {
    /// All roles, with their config spelling.
    pub const ALL: [(&'static str, Role); 4] =
        [("rep", Role::Rep), ("engineer", Role::Engineer), ("lead", Role::Lead), ("architect", Role::Architect)];
}

/// A human, or an agent acting through a bot identity.
#[derive(Clone, Debug)]
pub struct Person {
    /// Stable id used in config and commands.
    pub id: PersonId,
    /// Display name.
    pub name: String,
    /// What they do.
    pub roles: Vec<Role>,
    /// Slack user id (`U…`), if they use Slack.
    pub slack: Option<String>,
    /// Discord user id (snowflake), if they use Discord.
    pub discord: Option<String>,
    /// For an agent: the human who supervises it and receives its escalations.
    pub supervisor: Option<PersonId>,
}

/// A client of Baton's HTTP API (`[api.<name>]`): a CRM that hands off for the sales reps, an
/// agent that works the handoffs it owns. Its bearer token lives in the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiClient {
    /// Its name (the table's key), named in the log.
    pub name: String,
    /// Environment variable holding its bearer token (secrets never live in the config file).
    pub token_env: String,
    /// Whom it may act for: person ids, and function ids meaning their members and lead.
    pub acts_as: Vec<String>,
    /// Environment variable holding the URL that receives, as signed JSON, the messages meant for
    /// the people it acts for who have no Slack or Discord account (an agent's reminders).
    pub webhook_env: Option<String>,
}

impl ApiClient {
    /// Whether this client may act for `person`.
    pub fn may_act_as(&self, model: &OperatingModel, person: &str) -> bool {
        self.acts_as.iter().any(|who| who == person || model.functions.get(who).is_some_and(|f| f.has_member(person)))
    }
}

impl Person {
    /// Whether this person holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether this is an agent rather than a human.
    pub fn is_agent(&self) -> bool {
        self.supervisor.is_some()
    }
}

/// The kinds of value a contract field takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// Free text.
    Text,
    /// A decimal number.
    Number,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An `http(s)://` link.
    Url,
    /// One of a fixed list.
    Choice(Vec<String>),
    /// A configured person.
    Person,
}

impl FieldType {
    /// Config spelling.
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Number => "number",
            FieldType::Date => "date",
            FieldType::Url => "url",
            FieldType::Choice(_) => "choice",
            FieldType::Person => "person",
        }
    }
}

/// One field of a seam's contract.
#[derive(Clone, Debug)]
pub struct FieldSpec {
    /// Key used in commands (`account=Acme`).
    pub name: String,
    /// Its type, which decides validation and the input widget.
    pub kind: FieldType,
    /// Whether a handoff may be created without it.
    pub required: bool,
    /// Shown next to the input and in errors.
    pub help: Option<String>,
}

/// How much of a seam's work agents may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionMode {
    /// Only humans own handoffs here.
    HumanOnly,
    /// Humans own; agents assist.
    AgentAugmented,
    /// Agents may own handoffs, supervised.
    AgentReady,
}

/// Risk tier: picks the validation gate a handoff must pass before it is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RiskTier {
    /// Automated reviewer.
    Reversible,
    /// One human approval.
    Irreversible,
    /// Two distinct human approvals.
    HighStakes,
}

impl RiskTier {
    /// Config and command spelling.
    pub fn name(self) -> &'static str {
        match self {
            RiskTier::Reversible => "reversible",
            RiskTier::Irreversible => "irreversible",
            RiskTier::HighStakes => "high-stakes",
        }
    }

    /// Parses the config and command spelling.
    pub fn parse(s: &str) -> Option<RiskTier> {
        [RiskTier::Reversible, RiskTier::Irreversible, RiskTier::HighStakes]
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Human approvals needed (0 means the automated reviewer decides).
    pub fn approvals_needed(self) -> usize {
        match self {
            RiskTier::Reversible => 0,
            RiskTier::Irreversible => 1,
            RiskTier::HighStakes => 2,
        }
    }
}

impl fmt::Display for RiskTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// SLA targets, in business hours of the receiving function.
#[derive(Clone, Copy, Debug)]
pub struct Sla {
    /// From creation (or reassignment) to acceptance.
    pub accept: Duration,
    /// Longest silence allowed between updates while work is under way.
    pub update: Duration,
    /// From creation to done.
    pub done: Duration,
    /// Longest wait at the validation gate.
    pub gate: Duration,
    /// How long (business time) before each target is due whoever must act gets a heads-up
    /// (`None`: no heads-up; a target no longer than this gets none).
    pub warn: Option<Duration>,
}

/// What a ladder step does when it fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LadderAction {
    /// Remind the owner (or the receiving queue before acceptance; an agent's supervisor too).
    RemindOwner,
    /// Tell the receiving function's lead.
    NotifyLead,
    /// Post in the receiving function's Slack channel.
    PostChannel,
    /// Escalate to the receiving function's Discord channel.
    EscalateDiscord,
    /// Convene a recalibration with this playbook.
    Convene(String),
}

impl LadderAction {
    /// Config spelling.
    pub fn name(&self) -> &'static str {
        match self {
            LadderAction::RemindOwner => "remind-owner",
            LadderAction::NotifyLead => "notify-lead",
            LadderAction::PostChannel => "post-channel",
            LadderAction::EscalateDiscord => "escalate-discord",
            LadderAction::Convene(_) => "convene",
        }
    }
}

/// One rung of an escalation ladder.
#[derive(Clone, Debug)]
pub struct LadderStep {
    /// Business time after the breach at which this step fires.
    pub after: Duration,
    /// What it does.
    pub action: LadderAction,
}

/// A from-function -> to-function handoff path with its contract and policy.
#[derive(Clone, Debug)]
pub struct Seam {
    /// Stable id used in commands.
    pub id: SeamId,
    /// Function handing work off.
    pub from: FunctionId,
    /// Function receiving it; its calendar drives the clocks.
    pub to: FunctionId,
    /// What the sender must provide.
    pub contract: Vec<FieldSpec>,
    /// How much agents may carry.
    pub mode: ExecutionMode,
    /// Default risk tier (a handoff may raise it, never lower it).
    pub tier: RiskTier,
    /// Clock targets.
    pub sla: Sla,
    /// Escalation steps, ordered by `after`.
    pub ladder: Vec<LadderStep>,
    /// Who may approve at the gate.
    pub approvers: Vec<PersonId>,
    /// Automated reviewer for reversible work (`None`: the built-in contract check).
    pub reviewer: Option<String>,
    /// The seam's own Slack channel for cards, escalations and recalibrations (`None`: the
    /// receiving function's).
    pub slack_channel: Option<String>,
    /// The seam's own Discord channel for escalations and recalibrations (`None`: the receiving
    /// function's).
    pub discord_channel: Option<String>,
    /// Required contract fields whose values at most one open handoff on the seam may hold at a
    /// time (`one_open_per = ["account"]`): a second is refused, naming the first.
    pub one_open_per: Vec<String>,
}

/// What separates the fields of an open key ([`Seam::open_key`]): no contract value holds it.
const OPEN_KEY_SEPARATOR: char = '\u{1f}';

impl Seam {
    /// The contract field with this name.
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.contract.iter().find(|f| f.name == name)
    }

    /// What no two open handoffs on the seam may share: the values of its `one_open_per` fields,
    /// each named, compared as people would (text in any case and spacing, a link without its
    /// trailing slash). `None` when the seam keys on nothing, or a field is missing (only a model
    /// changed since the handoff was made lacks one).
    pub fn open_key(&self, fields: &BTreeMap<String, String>) -> Option<String> {
        if self.one_open_per.is_empty() {
            return None;
        }
        let mut key = String::new();
        for name in &self.one_open_per {
            let value = fields.get(name)?;
            let value = match self.field(name).map(|f| &f.kind) {
                Some(FieldType::Url) => value.trim_end_matches('/').to_lowercase(),
                _ => value.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase(),
            };
            if !key.is_empty() {
                key.push(OPEN_KEY_SEPARATOR);
            }
            key += &format!("{name}={value}");
        }
        Some(key)
    }

    /// An open key as people read it: `account=acme` is "account acme".
    pub fn open_key_read(key: &str) -> String {
        let fields: Vec<String> = key.split(OPEN_KEY_SEPARATOR).map(|kv| kv.replacen('=', " ", 1)).collect();
        fields.join(", ")
    }

    /// The `one_open_per` fields' values as people read them: "account Acme".
    pub fn open_key_words(&self, fields: &BTreeMap<String, String>) -> String {
        let words: Vec<String> =
            self.one_open_per.iter().map(|n| format!("{n} {}", fields.get(n).map_or("", String::as_str))).collect();
        words.join(", ")
    }
}

/// An automated reviewer's configuration.
#[derive(Clone, Debug)]
pub struct Reviewer {
    /// Stable id.
    pub id: String,
    /// Configuration version, recorded with every verdict it gives.
    pub version: String,
    /// What it checks.
    pub kind: ReviewerKind,
}

/// How an automated reviewer decides.
#[derive(Clone, Debug)]
pub enum ReviewerKind {
    /// Built-in rules evaluated in the core.
    Rules {
        /// Fields that must be present and non-empty.
        required: Vec<String>,
        /// Fields whose value must match a pattern.
        patterns: Vec<PatternRule>,
    },
    /// An HTTP endpoint that receives the handoff as JSON and returns a verdict.
    Webhook {
        /// Environment variable holding the URL (URLs never live in the config file).
        url_env: String,
        /// How long to wait for an answer.
        timeout: Duration,
    },
}

/// A field-must-match rule.
#[derive(Clone, Debug)]
pub struct PatternRule {
    /// Field checked.
    pub field: String,
    /// The compiled pattern.
    pub pattern: regex_lite::Regex,
    /// Said to the owner when it does not match.
    pub message: String,
}

/// A recalibration playbook: when it applies, who convenes and attends, the agenda and timebox,
/// and the artifact the thread must record.
#[derive(Clone, Debug)]
pub struct Playbook {
    /// Stable id referenced by ladders and `/recalibrate`.
    pub id: String,
    /// Human title.
    pub title: String,
    /// How long the recalibration may take; the convener is reminded when it runs out.
    pub timebox: Duration,
    /// Questions the thread must answer.
    pub agenda: Vec<String>,
    /// Stall kinds it is meant for (empty: any).
    pub kinds: Vec<String>,
    /// Seams it is meant for (empty: any).
    pub seams: Vec<SeamId>,
    /// Tiers it is meant for (empty: any).
    pub tiers: Vec<RiskTier>,
    /// Who convenes and answers for the artifact.
    pub convener: Participant,
    /// Who is called in.
    pub attendees: Vec<Participant>,
    /// The artifact's fields, in order; always includes `decision`, `assumption_broke` and `category`.
    pub artifact: Vec<ArtifactField>,
    /// Opening post (a minijinja template; `None`: the standard text).
    pub opening: Option<String>,
    /// Timebox reminder to the convener (a minijinja template; `None`: the standard text).
    pub reminder: Option<String>,
}

impl Playbook {
    /// Whether it is meant for this seam, tier and stall kind.
    pub fn applies(&self, seam: &str, tier: RiskTier, kind: Option<&str>) -> bool {
        (self.seams.is_empty() || self.seams.iter().any(|s| s == seam))
            && (self.tiers.is_empty() || self.tiers.contains(&tier))
            && (self.kinds.is_empty() || kind.is_some_and(|k| self.kinds.iter().any(|x| x == k)))
    }

    /// The artifact field with this name.
    pub fn field(&self, name: &str) -> Option<&ArtifactField> {
        self.artifact.iter().find(|f| f.name == name)
    }
}

/// A role in a recalibration, resolved to people per handoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Participant {
    /// Who handed it off.
    Requester,
    /// Its owner (before acceptance: nobody).
    Owner,
    /// The sending function's lead.
    FromLead,
    /// The receiving function's lead.
    ToLead,
    /// Every architect.
    Architect,
    /// The seam's approvers.
    Approvers,
    /// The seam's automated reviewer's owner: the receiving lead answers for it.
    Reviewer,
}

impl Participant {
    /// All roles with their config spelling.
    pub const ALL: [(&'static str, Participant); 7] = [
        ("requester", Participant::Requester),
        ("owner", Participant::Owner),
        ("from-lead", Participant::FromLead),
        ("to-lead", Participant::ToLead),
        ("architect", Participant::Architect),
        ("approvers", Participant::Approvers),
        ("reviewer", Participant::Reviewer),
    ];
}

/// What an artifact field holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArtifactType {
    /// Free text.
    Text,
    /// One of a list.
    Choice(Vec<String>),
    /// A configured person.
    Person,
    /// A calendar date.
    Date,
    /// Follow-ups: `person YYYY-MM-DD what; …`.
    FollowUps,
}

/// One field of a recalibration artifact.
#[derive(Clone, Debug)]
pub struct ArtifactField {
    /// Key used when recording (`assumption_broke=...`).
    pub name: String,
    /// Its type.
    pub kind: ArtifactType,
    /// Whether the artifact may be recorded without it.
    pub required: bool,
    /// What to write there.
    pub help: Option<String>,
}

/// The decisions a recalibration can take.
pub const DECISIONS: [&str; 5] = ["resume", "new-owner", "new-date", "return", "cancel"];
