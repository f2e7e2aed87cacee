//! The chat command language shared by the console, Slack and Discord.
//!
//! `/handoff new sales-to-cs "Acme renewal" account=Acme arr=120000`, `/ack H-3`,
//! `/snooze H-3 2h waiting on legal`, … parse into a [`Command`].

use chrono::{Duration, NaiveDate};
use thiserror::Error;

use crate::config::parse_wall_duration;
use crate::contract::FieldError;
use crate::decide::Rejection;
use crate::handoff::HandoffId;
use crate::history::StallsQuery;
use crate::model::{OperatingModel, PersonId};

/// What a person asked Baton to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Hand work off on a seam.
    New {
        /// Seam id.
        seam: String,
        /// One-line title.
        title: String,
        /// `key=value` contract fields (and `tier=`).
        fields: Vec<(String, String)>,
    },
    /// Take ownership.
    Accept(HandoffId),
    /// Owner acknowledges.
    Ack(HandoffId),
    /// Progress note, optional field changes.
    Update {
        /// Handoff.
        id: HandoffId,
        /// The note.
        note: String,
        /// Field changes.
        fields: Vec<(String, String)>,
    },
    /// Submit for the gate.
    Done(HandoffId),
    /// Send back to the requester.
    Return {
        /// Handoff.
        id: HandoffId,
        /// Why.
        reason: String,
    },
    /// Requester sends it back in after a return.
    Resubmit {
        /// Handoff.
        id: HandoffId,
        /// Field changes.
        fields: Vec<(String, String)>,
        /// Optional note.
        note: Option<String>,
    },
    /// The requester corrects what was handed off: its title or contract fields.
    Edit {
        /// Handoff.
        id: HandoffId,
        /// New title.
        title: Option<String>,
        /// Field changes (an empty value removes an optional field).
        fields: Vec<(String, String)>,
        /// Optional note to the owner.
        note: Option<String>,
    },
    /// Call it off.
    Cancel {
        /// Handoff.
        id: HandoffId,
        /// Why.
        reason: String,
    },
    /// Give it to someone else in the receiving function.
    Reassign {
        /// Handoff.
        id: HandoffId,
        /// New owner (person id).
        to: String,
    },
    /// Give everything one person owns to another (someone leaving, or away for long).
    ReassignAll {
        /// The present owner (person id; they may have left the model).
        from: String,
        /// The new owner (person id).
        to: String,
    },
    /// Approve at the gate.
    Approve(HandoffId),
    /// Reject at the gate.
    Reject {
        /// Handoff.
        id: HandoffId,
        /// Why.
        reason: String,
    },
    /// Pause the clocks.
    Snooze {
        /// Handoff.
        id: HandoffId,
        /// For how long.
        duration: Duration,
        /// Why.
        reason: String,
    },
    /// Show a handoff's card.
    Show(HandoffId),
    /// What happened to a handoff, from its audit trail.
    Log(HandoffId),
    /// Say something about a handoff to those it concerns, without moving it.
    Comment {
        /// Handoff.
        id: HandoffId,
        /// What is said.
        text: String,
    },
    /// Be told as a handoff moves (`on`), or no longer.
    Watch {
        /// Handoff.
        id: HandoffId,
        /// Start (`true`) or stop watching.
        on: bool,
    },
    /// List what I own or requested.
    Mine,
    /// A function's open handoffs, received and sent (default: one's own function).
    Team(Option<String>),
    /// Handoffs whose title or fields hold every word: the open ones, then the latest closed.
    Find(Vec<String>),
    /// Stall history, the health report or the chart.
    Stalls(StallsQuery),
    /// Record the open recalibration's artifact (and apply its decision).
    Record {
        /// Handoff.
        id: HandoffId,
        /// Artifact fields.
        fields: Vec<(String, String)>,
    },
    /// Record a post-mortem on a done or cancelled handoff.
    Postmortem {
        /// Handoff.
        id: HandoffId,
        /// Artifact fields (and optionally `playbook=`).
        fields: Vec<(String, String)>,
    },
    /// Convene a recalibration now (someone is blocked), with a playbook or the seam's default.
    Recalibrate {
        /// Handoff.
        id: HandoffId,
        /// Playbook id (`None`: the one the seam's ladder convenes, else the first).
        playbook: Option<String>,
    },
    /// Say one is away, back, or ask which.
    Away(AwayCommand),
    /// Usage.
    Help(Option<String>),
}

/// What `/away` asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AwayCommand {
    /// Away through this date (in one's own zone), for a reason.
    Until {
        /// The last day away.
        last: NaiveDate,
        /// Why (may be empty).
        reason: String,
        /// Who stands in as lead meanwhile.
        cover: Option<PersonId>,
    },
    /// Back before the end of the absence.
    Back,
    /// Whether one is marked away.
    Show,
}

impl Command {
    /// The handoff this command targets, if any.
    pub fn target(&self) -> Option<HandoffId> {
        match self {
            Command::Accept(id)
            | Command::Ack(id)
            | Command::Done(id)
            | Command::Approve(id)
            | Command::Show(id)
            | Command::Log(id)
            | Command::Watch { id, .. }
            | Command::Comment { id, .. }
            | Command::Update { id, .. }
            | Command::Return { id, .. }
            | Command::Resubmit { id, .. }
            | Command::Edit { id, .. }
            | Command::Cancel { id, .. }
            | Command::Reassign { id, .. }
            | Command::Reject { id, .. }
            | Command::Snooze { id, .. }
            | Command::Recalibrate { id, .. }
            | Command::Record { id, .. }
            | Command::Postmortem { id, .. } => Some(*id),
            Command::New { .. }
            | Command::ReassignAll { .. }
            | Command::Mine
            | Command::Team(_)
            | Command::Find(_)
            | Command::Stalls(_)
            | Command::Away(_)
            | Command::Help(_) => None,
        }
    }

    /// The command with what it names written as the operating model's ids: a person, seam,
    /// function or playbook typed in another case (`Ana`, `Sales-to-CS`), a person by full name, a
    /// function by its name (`/handoff team Sales`). What matches nothing, or more than one, stays
    /// as typed, for the refusal to name.
    pub fn resolved(self, model: &OperatingModel) -> Command {
        let as_id = |typed: String, found: Option<&str>| found.map_or(typed, str::to_string);
        let person = |typed: String| as_id(typed.clone(), model.person_named(&typed));
        match self {
            Command::New { seam, title, fields } => {
                Command::New { seam: as_id(seam.clone(), model.seam_named(&seam)), title, fields }
            }
            Command::Reassign { id, to } => Command::Reassign { id, to: person(to) },
            Command::ReassignAll { from, to } => Command::ReassignAll { from: person(from), to: person(to) },
            Command::Team(Some(f)) => Command::Team(Some(as_id(f.clone(), model.function_named(&f)))),
            Command::Recalibrate { id, playbook: Some(p) } => {
                Command::Recalibrate { id, playbook: Some(as_id(p.clone(), model.playbook_named(&p))) }
            }
            Command::Stalls(q) => Command::Stalls(StallsQuery { filter: q.filter.resolved(model), ..q }),
            Command::Away(AwayCommand::Until { last, reason, cover }) => {
                Command::Away(AwayCommand::Until { last, reason, cover: cover.map(person) })
            }
            other => other,
        }
    }

    /// Refuses text holding an invisible control character, naming where: it reads right but
    /// stores wrong (PostgreSQL refuses NUL). A typed line is checked as it is parsed; this checks
    /// what arrives from a form's inputs, which are not.
    pub fn check_text(&self) -> Result<(), Rejection> {
        let one = |name: &'static str, text: &String| (name.to_string(), text.clone());
        let mut texts: Vec<(String, String)> = Vec::new();
        match self {
            Command::New { title, fields, .. } => {
                texts.push(one("title", title));
                texts.extend(fields.iter().cloned());
            }
            Command::Edit { title, fields, note, .. } => {
                texts.extend(title.iter().map(|t| one("title", t)));
                texts.extend(fields.iter().cloned());
                texts.extend(note.iter().map(|n| one("note", n)));
            }
            Command::Update { note, fields, .. } => {
                texts.push(one("note", note));
                texts.extend(fields.iter().cloned());
            }
            Command::Resubmit { fields, note, .. } => {
                texts.extend(fields.iter().cloned());
                texts.extend(note.iter().map(|n| one("note", n)));
            }
            Command::Comment { text, .. } => texts.push(one("comment", text)),
            Command::Return { reason, .. }
            | Command::Reject { reason, .. }
            | Command::Cancel { reason, .. }
            | Command::Snooze { reason, .. }
            | Command::Away(AwayCommand::Until { reason, .. }) => texts.push(one("reason", reason)),
            Command::Record { fields, .. } | Command::Postmortem { fields, .. } => texts.extend(fields.iter().cloned()),
            _ => {}
        }
        let errors: Vec<FieldError> = texts
            .into_iter()
            .filter_map(|(field, text)| {
                let c = invisible(&text)?;
                let message = format!(
                    "`{field}` holds an invisible control character (U+{:04X}); type it again without it",
                    c as u32
                );
                Some(FieldError { field, message })
            })
            .collect();
        if errors.is_empty() { Ok(()) } else { Err(Rejection::InvisibleCharacter(errors)) }
    }
}

/// A command that could not be parsed; the message says how to write it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{message}\nusage: {usage}")]
pub struct ParseError {
    /// What was wrong.
    pub message: String,
    /// The usage line of the command meant.
    pub usage: &'static str,
}

/// One usage line per sub-command.
pub const USAGE: &[(&str, &str)] = &[
    ("new", "/handoff new <seam> \"<title>\" field=value ... [tier=<tier>] [source=<link>]"),
    ("accept", "/handoff accept H-<n>"),
    ("ack", "/ack H-<n>"),
    ("update", "/handoff update H-<n> <note> [field=value ...]"),
    ("done", "/handoff done H-<n>"),
    ("return", "/handoff return H-<n> <reason>"),
    ("resubmit", "/handoff resubmit H-<n> field=value ... [note]"),
    ("edit", "/handoff edit H-<n> field=value ... [title=\"...\"] [note]"),
    ("cancel", "/handoff cancel H-<n> <reason>"),
    ("reassign", "/handoff reassign H-<n> <person>"),
    ("reassign-all", "/handoff reassign-all <from person> <to person>"),
    ("approve", "/approve H-<n>"),
    ("reject", "/reject H-<n> <reason>"),
    ("snooze", "/snooze H-<n> <duration like 2h, 30m or 1d> <reason>"),
    ("show", "/handoff show H-<n>"),
    ("log", "/handoff log H-<n>"),
    ("watch", "/handoff watch H-<n>"),
    ("unwatch", "/handoff unwatch H-<n>"),
    ("comment", "/handoff comment H-<n> <text>"),
    ("mine", "/handoff mine"),
    ("team", "/handoff team [function]"),
    ("find", "/handoff find <words>"),
    ("stalls", crate::history::USAGE),
    ("recalibrate", "/recalibrate H-<n> [playbook]"),
    (
        "record",
        "/handoff record H-<n> decision=<resume|new-owner|new-date|return|cancel> assumption_broke=\"...\" category=<category> [new_owner=..] [new_date=..] [follow_ups=\"person YYYY-MM-DD what; ...\"]",
    ),
    ("postmortem", "/postmortem H-<n> [playbook=<id>] assumption_broke=\"...\" category=<category> [field=value ...]"),
    ("away", "/away until YYYY-MM-DD [cover=<person>] [reason] · /away back · /away"),
    ("help", "/handoff help [command]"),
];

/// The usage line of a sub-command (`new`, `return`, …); the general help for an unknown one.
pub fn usage(sub: &str) -> &'static str {
    USAGE.iter().find(|(name, _)| *name == sub).map_or("/handoff help", |(_, u)| u)
}

/// The first invisible control character in `text` (tabs and line breaks are text): it makes text
/// that reads right but stores wrong (PostgreSQL refuses NUL).
fn invisible(text: &str) -> Option<char> {
    text.chars().find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// Parses a command line as typed in chat (leading `/` optional, `/handoff` prefix optional).
pub fn parse(line: &str) -> Result<Command, ParseError> {
    // A line that cannot be read still names its command in its first words, which hold no quotes.
    let refuse = |message: String| {
        let (sub, _) = sub_command(line.split_whitespace().map(str::to_string));
        Err(ParseError { message, usage: usage(&sub) })
    };
    if let Some(c) = invisible(line) {
        let message = "the command holds an invisible control character";
        return refuse(format!("{message} (U+{:04X}); type it again without it", c as u32));
    }
    let Some(words) = split_words(line) else {
        return refuse("a quotation mark is not closed".into());
    };
    let (sub, rest) = sub_command(words.into_iter());
    parse_sub(&sub, rest.collect())
}

/// The sub-command (`/handoff new` and `new` both give `new`) and the words after it.
fn sub_command<I: Iterator<Item = String>>(mut words: I) -> (String, I) {
    let mut sub = words.next().unwrap_or_default().trim_start_matches('/').to_ascii_lowercase();
    if sub == "handoff" {
        sub = words.next().unwrap_or_else(|| "help".into()).to_ascii_lowercase();
    }
    (sub, words)
}

/// Parses the words after a sub-command.
pub fn parse_sub(sub: &str, rest: Vec<String>) -> Result<Command, ParseError> {
    let u = usage(sub);
    let err = |message: String| ParseError { message, usage: u };
    let mut args = rest.into_iter();
    let mut id = || -> Result<HandoffId, ParseError> {
        let word = args.next().ok_or_else(|| err("name the handoff, like H-12".into()))?;
        parse_id(&word).ok_or_else(|| err(format!("`{word}` is not a handoff reference: write it like H-12")))
    };
    let cmd = match sub {
        "new" => {
            let seam = args.next().ok_or_else(|| {
                err("name the seam to hand off on (`/handoff help new` lists yours and what each needs)".into())
            })?;
            let (fields, words) = split_fields(args.by_ref());
            let title = words.join(" ");
            Command::New { seam, title, fields }
        }
        "accept" | "claim" => Command::Accept(id()?),
        "ack" | "acknowledge" => Command::Ack(id()?),
        "done" => Command::Done(id()?),
        "approve" => Command::Approve(id()?),
        "show" => Command::Show(id()?),
        "log" | "activity" => Command::Log(id()?),
        "watch" | "follow" => Command::Watch { id: id()?, on: true },
        "unwatch" | "unfollow" => Command::Watch { id: id()?, on: false },
        "comment" => {
            let id = id()?;
            let text = args.by_ref().collect::<Vec<_>>().join(" ");
            if text.trim().is_empty() {
                return Err(err("say what you want to tell them".into()));
            }
            Command::Comment { id, text }
        }
        "update" => {
            let id = id()?;
            let (fields, words) = split_fields(args.by_ref());
            let note = words.join(" ");
            if note.is_empty() && fields.is_empty() {
                return Err(err("say what progress was made".into()));
            }
            Command::Update { id, note, fields }
        }
        "resubmit" => {
            let id = id()?;
            let (fields, words) = split_fields(args.by_ref());
            Command::Resubmit { id, fields, note: (!words.is_empty()).then(|| words.join(" ")) }
        }
        "edit" => {
            let id = id()?;
            let (mut fields, words) = split_fields(args.by_ref());
            if fields.iter().filter(|(k, _)| k == "title").count() > 1 {
                return Err(err("`title` is given twice: give it once".into()));
            }
            let title = fields.iter().position(|(k, _)| k == "title").map(|i| fields.remove(i).1);
            if title.is_none() && fields.is_empty() {
                return Err(err("say what to change: field=value, or title=\"...\"".into()));
            }
            Command::Edit { id, title, fields, note: (!words.is_empty()).then(|| words.join(" ")) }
        }
        "return" | "reject" | "cancel" => {
            let id = id()?;
            let reason = args.by_ref().collect::<Vec<_>>().join(" ");
            if reason.trim().is_empty() {
                return Err(err("give a reason, so the other side knows what to do".into()));
            }
            match sub {
                "return" => Command::Return { id, reason },
                "reject" => Command::Reject { id, reason },
                _ => Command::Cancel { id, reason },
            }
        }
        "reassign" => {
            let id = id()?;
            let to = args.next().ok_or_else(|| err("name the new owner".into()))?;
            Command::Reassign { id, to: to.trim_start_matches('@').to_string() }
        }
        "reassign-all" => {
            let mut person = |what: &str| {
                let word = args.next().ok_or_else(|| err(format!("name {what}")))?;
                Ok::<_, ParseError>(word.trim_start_matches('@').to_string())
            };
            let from = person("whose handoffs move")?;
            let to = person("who takes them")?;
            Command::ReassignAll { from, to }
        }
        "snooze" => {
            let id = id()?;
            let word = args.next().ok_or_else(|| err("say for how long, like 2h".into()))?;
            // Wall-clock time, like the snooze's end: `1d` is 24 hours, whatever the calendar.
            let duration = parse_wall_duration(&word)
                .ok_or_else(|| err(format!("`{word}` is not a duration: write 2h, 30m, 1h30m or 1d")))?;
            let reason = args.by_ref().collect::<Vec<_>>().join(" ");
            if reason.trim().is_empty() {
                return Err(err("give a reason for the snooze".into()));
            }
            Command::Snooze { id, duration, reason }
        }
        "mine" => Command::Mine,
        "team" => Command::Team(args.next()),
        "find" | "search" => {
            let words: Vec<String> = args.by_ref().collect();
            if words.is_empty() {
                return Err(err("say what to look for, like `/handoff find acme`".into()));
            }
            Command::Find(words)
        }
        "stalls" => Command::Stalls(crate::history::parse_query(&args.by_ref().collect::<Vec<_>>()).map_err(err)?),
        "record" | "postmortem" => {
            let id = id()?;
            let (fields, words) = split_fields(args.by_ref());
            if !words.is_empty() {
                return Err(err(format!("write every part as field=value; `{}` is not", words.join(" "))));
            }
            if sub == "record" { Command::Record { id, fields } } else { Command::Postmortem { id, fields } }
        }
        "recalibrate" => {
            let id = id()?;
            let playbook = args.next();
            let more: Vec<String> = args.by_ref().collect();
            if !more.is_empty() {
                let said = playbook.into_iter().chain(more).collect::<Vec<_>>().join(" ");
                return Err(err(format!(
                    "after the handoff comes at most a playbook's name, not `{said}`; to say why, \
                     `/handoff comment H-{id} {said}`"
                )));
            }
            Command::Recalibrate { id, playbook }
        }
        "away" => {
            let words: Vec<String> = args.by_ref().collect();
            let date = |word: &str| NaiveDate::parse_from_str(word, "%Y-%m-%d").ok();
            match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                [] => Command::Away(AwayCommand::Show),
                ["back" | "off"] => Command::Away(AwayCommand::Back),
                ["until", day, rest @ ..] | [day, rest @ ..] if date(day).is_some() => {
                    let last = date(day).unwrap_or_default();
                    let (mut cover, mut reason) = (None, Vec::new());
                    for word in rest {
                        match word.split_once('=') {
                            Some(("cover", "")) => return Err(err("name who covers for you, like cover=dana".into())),
                            Some(("cover", who)) => cover = Some(who.trim_start_matches('@').to_string()),
                            _ => reason.push(*word),
                        }
                    }
                    Command::Away(AwayCommand::Until { last, reason: reason.join(" "), cover })
                }
                ["until", day, ..] => return Err(err(format!("`{day}` is not a date like 2026-12-04"))),
                ["until"] => return Err(err("name your last day away, like 2026-12-04".into())),
                [other, ..] => return Err(err(format!("`{other}` is not a date like 2026-12-04, nor `back`"))),
            }
        }
        "help" | "" => Command::Help(args.next()),
        other => {
            return Err(ParseError {
                message: format!("unknown command `{other}`"),
                usage: "/handoff help lists the commands",
            });
        }
    };
    // Words after a command that takes no more would be lost: refused, with where they belong.
    let left: Vec<String> = args.collect();
    if !left.is_empty() && !matches!(cmd, Command::Help(_)) {
        let left = left.join(" ");
        let mut message = format!("`{left}` would be lost: this command takes nothing more");
        if let Some(id) = cmd.target() {
            message.push_str(&format!("; to say something with it, `/handoff comment H-{id} {left}`"));
        }
        return Err(err(message));
    }
    Ok(cmd)
}

/// Splits chat text into words. Double quotes (straight or curly, as chat clients type them)
/// group words, also inside `key="a value"`; apostrophes are ordinary letters. Inside straight
/// quotes curly ones are text, and the other way round, and curly ones nest (`“the “new” plan”`),
/// so quotes in a title survive; a line that only closes read as any quote closing any other
/// (`“Big deal"`, from mixed keyboards) is read so. `None` when a quote is left open.
pub fn split_words(line: &str) -> Option<Vec<String>> {
    nested_words(line).or_else(|| any_quote_words(line))
}

/// [`split_words`] with each kind of quote closing only its own.
fn nested_words(line: &str) -> Option<Vec<String>> {
    /// The quote a word is inside: straight, or curly this many deep.
    #[derive(PartialEq)]
    enum Quote {
        None,
        Straight,
        Curly(usize),
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = Quote::None;
    let mut in_word = false;
    for c in line.chars() {
        quote = match (c, quote) {
            ('"', Quote::None) => {
                in_word = true;
                Quote::Straight
            }
            // Some clients open with a closing curly quote too.
            ('\u{201c}' | '\u{201d}', Quote::None) => {
                in_word = true;
                Quote::Curly(1)
            }
            ('"', Quote::Straight) | ('\u{201d}', Quote::Curly(1)) => Quote::None,
            ('\u{201c}', Quote::Curly(depth)) => {
                word.push(c);
                Quote::Curly(depth + 1)
            }
            ('\u{201d}', Quote::Curly(depth)) => {
                word.push(c);
                Quote::Curly(depth - 1)
            }
            (c, Quote::None) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                Quote::None
            }
            (c, quote) => {
                word.push(c);
                in_word = true;
                quote
            }
        };
    }
    if quote != Quote::None {
        return None;
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// [`split_words`] with any quote opening or closing.
fn any_quote_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut in_word) = (false, false);
    for c in line.chars() {
        match c {
            '"' | '\u{201c}' | '\u{201d}' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if std::mem::take(&mut in_word) {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    (!quoted).then_some(words)
}

/// `field=value …` typed on their own (a platform's one box for a contract): the pairs, or what
/// is not one.
pub fn parse_fields(text: &str) -> Result<Vec<(String, String)>, String> {
    let words = split_words(text).ok_or("a quote is not closed: put values with spaces in \"double quotes\"")?;
    let (fields, rest) = split_fields(words.into_iter());
    match rest.first() {
        Some(word) => Err(format!("`{word}` is not field=value: write each field like account=Acme")),
        None => Ok(fields),
    }
}

/// `H-12`, `h-12`, `H12`, `#12` or `12`.
pub fn parse_id(word: &str) -> Option<HandoffId> {
    let digits = match word.strip_prefix(['H', 'h']) {
        Some(rest) => rest.strip_prefix('-').unwrap_or(rest),
        None => word.strip_prefix('#').unwrap_or(word),
    };
    // Digits only: `parse` alone would take `+12`.
    match !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        true => digits.parse().ok().filter(|n| *n > 0),
        false => None,
    }
}

/// Splits `key=value` words from the rest.
fn split_fields(args: impl Iterator<Item = String>) -> (Vec<(String, String)>, Vec<String>) {
    let mut fields = Vec::new();
    let mut words = Vec::new();
    for word in args {
        match word.split_once('=') {
            Some((k, v)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') => {
                fields.push((k.to_string(), v.to_string()));
            }
            _ => words.push(word),
        }
    }
    (fields, words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn err(line: &str) -> String {
        match parse(line) {
            Ok(c) => panic!("{line} parsed as {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn fields_typed_on_their_own_are_pairs_or_named() {
        let pairs = parse_fields(r#"account="Acme Corp" arr=120000"#).expect("pairs");
        assert_eq!(pairs, [("account".to_string(), "Acme Corp".to_string()), ("arr".into(), "120000".into())]);
        assert_eq!(parse_fields(""), Ok(vec![]));
        assert_eq!(
            parse_fields("account=Acme big").expect_err("a word"),
            "`big` is not field=value: write each field like account=Acme"
        );
        assert!(parse_fields(r#"account="Acme"#).expect_err("open quote").starts_with("a quote is not closed"));
    }

    #[test]
    fn commands_parse_with_or_without_the_handoff_prefix() {
        assert_eq!(ok("/handoff accept H-3"), Command::Accept(3));
        assert_eq!(ok("/ack h-3"), Command::Ack(3));
        assert_eq!(ok("approve #7"), Command::Approve(7));
        assert_eq!(ok("/handoff show H12"), Command::Show(12), "the dash is easily left out");
        assert_eq!(ok("/handoff show 12"), Command::Show(12));
        assert_eq!(
            ok(r#"/handoff new sales-to-cs "Acme renewal" account=Acme arr="120 000""#),
            Command::New {
                seam: "sales-to-cs".into(),
                title: "Acme renewal".into(),
                fields: vec![("account".into(), "Acme".into()), ("arr".into(), "120 000".into())],
            }
        );
        assert_eq!(
            ok("/snooze H-2 1h30m waiting on legal"),
            Command::Snooze { id: 2, duration: Duration::minutes(90), reason: "waiting on legal".into() }
        );
        // A snooze is wall-clock time, so days may be given (the core bounds it to 14 of them).
        assert_eq!(
            ok("/snooze H-2 1d2h out sick"),
            Command::Snooze { id: 2, duration: Duration::hours(26), reason: "out sick".into() }
        );
    }

    #[test]
    fn text_from_a_form_is_checked_for_invisible_characters_by_input() {
        let new = Command::New {
            seam: "sales-to-cs".into(),
            title: "Acme\u{1b}[31m".into(),
            fields: vec![("account".into(), "Ac\u{0}me".into()), ("segment".into(), "smb".into())],
        };
        let Err(Rejection::InvisibleCharacter(errors)) = new.check_text() else { panic!("refused") };
        let named: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
        assert_eq!(
            named,
            [
                ("title", "`title` holds an invisible control character (U+001B); type it again without it"),
                ("account", "`account` holds an invisible control character (U+0000); type it again without it"),
            ]
        );
        let reason = Command::Return { id: 1, reason: "see\u{7f}".into() };
        assert!(reason.check_text().is_err_and(|e| e.to_string().starts_with("`reason` holds")));
        let lines = Command::Update { id: 1, note: "one\ntwo\tthree\r\n".into(), fields: vec![] };
        assert_eq!(lines.check_text(), Ok(()), "line breaks and tabs are text");
    }

    #[test]
    fn bad_arguments_say_what_is_wrong_and_show_usage() {
        assert!(err("/handoff accept").contains("name the handoff"));
        assert!(err("/handoff accept X-1").contains("not a handoff reference"));
        for word in ["+3", "H-+3", "H-", "#", "H-0", "H 3"] {
            assert!(err(&format!("/handoff accept {word}")).contains("not a handoff reference"), "{word}");
        }
        assert!(err("/handoff return H-1").contains("give a reason"));
        assert!(err("/snooze H-1 soon because").contains("not a duration"));
        assert!(err("/handoff frobnicate").contains("unknown command `frobnicate`"));
        assert!(err("/handoff new x \"open quote").contains("quotation mark"));
        assert!(err("/handoff record H-1 assumption_broke=\"a\u{0}b\"").contains("control character (U+0000)"));
        assert!(err("/reject H-1 bad\u{1b}[31m").contains("control character (U+001B)"));
        assert!(parse("/handoff update H-1 line one\nline two\tand a tab").is_ok(), "newlines and tabs are text");
        // The usage shown is the command's own, though its words could not be split.
        assert!(err("/handoff new x \"open quote").contains("/handoff new <seam>"));
        assert!(err("/reject H-1 \"why").contains("/reject H-<n> <reason>"));
        assert!(err("/handoff update H-1").contains("usage: /handoff update"));
    }

    #[test]
    fn words_a_command_would_drop_are_refused_with_where_they_belong() {
        assert_eq!(
            err("/ack H-3 on it, ETA Friday"),
            "`on it, ETA Friday` would be lost: this command takes nothing more; to say something with it, \
             `/handoff comment H-3 on it, ETA Friday`\nusage: /ack H-<n>"
        );
        for line in ["/handoff accept H-1 now", "/handoff done H-1 shipped", "/approve H-1 lgtm", "/handoff show H-1 x"]
        {
            assert!(err(line).contains("would be lost"), "{line}");
        }
        assert!(err("/handoff reassign H-1 ben he knows them").contains("`he knows them` would be lost"));
        assert!(
            err("/handoff reassign-all ana ben now").contains("`now` would be lost: this command takes nothing more\n")
        );
        assert!(err("/handoff mine please").contains("`please` would be lost"));
        assert!(err(r#"/handoff edit H-1 title="a" title="b""#).contains("`title` is given twice"));
        assert_eq!(
            err("/recalibrate H-2 vendor has not replied"),
            "after the handoff comes at most a playbook's name, not `vendor has not replied`; to say why, \
             `/handoff comment H-2 vendor has not replied`\nusage: /recalibrate H-<n> [playbook]"
        );
        assert_eq!(
            ok("/recalibrate H-2 unacknowledged"),
            Command::Recalibrate { id: 2, playbook: Some("unacknowledged".into()) }
        );
        // Commands whose last part is free text keep every word.
        assert_eq!(ok("/handoff comment H-1 call me"), Command::Comment { id: 1, text: "call me".into() });
        assert_eq!(ok("/handoff help new extra"), Command::Help(Some("new".into())));
    }

    #[test]
    fn chat_text_keeps_apostrophes_and_understands_curly_quotes() {
        assert_eq!(
            ok("/handoff return H-4 the customer's contract isn't attached"),
            Command::Return { id: 4, reason: "the customer's contract isn't attached".into() }
        );
        assert_eq!(
            ok("/handoff new s \u{201c}Big deal\u{201d} note=\"a b\""),
            Command::New { seam: "s".into(), title: "Big deal".into(), fields: vec![("note".into(), "a b".into())] }
        );
        assert_eq!(split_words("a \"\" b"), Some(vec!["a".into(), "".into(), "b".into()]));
    }

    /// Quotes inside a quoted title are kept: curly in straight, straight in curly, curly in curly.
    #[test]
    fn quotes_inside_quotes_are_text() {
        let words = |line: &str| split_words(line).expect("closed");
        assert_eq!(words("x \"the \u{201c}new\u{201d} plan\" y"), ["x", "the \u{201c}new\u{201d} plan", "y"]);
        assert_eq!(words("\u{201c}say \"hi\" now\u{201d}"), ["say \"hi\" now"]);
        assert_eq!(words("\u{201c}the \u{201c}new\u{201d} plan\u{201d} y"), ["the \u{201c}new\u{201d} plan", "y"]);
        // A client that opens with a closing curly quote.
        assert_eq!(words("\u{201d}Big deal\u{201d}"), ["Big deal"]);
        assert_eq!(split_words("\u{201c}the \u{201c}new\u{201d} plan"), None);
        // Mixed keyboards: a curly quote closed by a straight one, and the other way round.
        assert_eq!(words("/handoff new s \u{201c}Big deal\" a=b"), ["/handoff", "new", "s", "Big deal", "a=b"]);
        assert_eq!(words("\"Big deal\u{201d} a=b"), ["Big deal", "a=b"]);
        assert_eq!(split_words("\u{201c}open"), None);
    }

    proptest::proptest! {
        /// Any words without a straight quote, each in straight quotes, come back as they were:
        /// spaces, curly quotes and all.
        #[test]
        fn straight_quoted_words_come_back_whole(words in proptest::collection::vec("[^\"]{0,12}", 0..6)) {
            let line = words.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(" ");
            proptest::prop_assert_eq!(split_words(&line), Some(words));
        }

        /// Whatever is typed is split or refused as an open quote, never a panic.
        #[test]
        fn any_line_is_split_or_refused(line in "[a \"\u{201c}\u{201d}]{0,24}") {
            let _ = split_words(&line);
        }
    }
}
