//! Loads the operating model (`baton.toml`) and playbooks (`playbooks/*.toml`) from text.
//!
//! Every mistake is collected rather than thrown: unknown keys, missing fields, wrong types, bad
//! time zones, durations or hours, and references to unknown functions, people, reviewers or
//! playbooks each become a [`ConfigError`] naming file, line and field.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::{Range, RangeInclusive};

use chrono::{Duration, NaiveDate, NaiveTime};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::calendar::{Window, WorkCalendar};
use crate::model::*;

/// One mistake in a config file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigError {
    /// Path of the file, as given by the caller.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// Dotted path of the field (`seams.sales-to-cs.sla.accept`).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: {}", self.file, self.line, self.field, self.message)
    }
}

/// A config file's name and text.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    /// Shown in errors.
    pub name: &'a str,
    /// The TOML text.
    pub text: &'a str,
}

/// Parses the operating model and its playbooks, reporting all mistakes at once.
pub fn load(model: Source<'_>, playbooks: &[Source<'_>]) -> Result<OperatingModel, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut parsed = BTreeMap::new();
    let mut seam_refs = Vec::new();
    // Ladders may name any playbook whose id reads, also one with mistakes of its own (those are
    // reported where they are, not again as an unknown playbook).
    let mut playbook_ids = BTreeMap::new();
    for src in playbooks {
        if let Some(p) = parse_playbook(*src, &mut errors, &mut seam_refs, &mut playbook_ids) {
            if parsed.contains_key(&p.id) {
                errors.push(ConfigError {
                    file: src.name.to_string(),
                    line: 1,
                    field: "id".into(),
                    message: format!("playbook id `{}` is used by another file", p.id),
                });
            }
            parsed.insert(p.id.clone(), p);
        }
    }
    // Playbooks may name any seam the model declares, also one with mistakes of its own (those are
    // reported where they are, not again as an unknown seam).
    let mut seam_ids = BTreeMap::new();
    let mut model = parse_model(model, &playbook_ids, &mut seam_ids, &mut errors).unwrap_or_default();
    for r in &seam_refs {
        let mut d = Diag { file: r.src.name, text: r.src.text, errors: &mut errors };
        for seam in &r.seams {
            d.reference(seam, &seam_ids, "seam", "applies.seams");
        }
    }
    // A `category` artifact field offers the operating model's failure taxonomy.
    for p in parsed.values_mut() {
        if let Some(f) = p.artifact.iter_mut().find(|f| f.name == "category") {
            f.kind = ArtifactType::Choice(model.categories.clone());
        }
    }
    model.playbooks = parsed;
    if errors.is_empty() {
        Ok(model)
    } else {
        errors.sort();
        Err(errors)
    }
}

type Value<'i> = Spanned<DeValue<'i>>;

/// Error sink for one file.
struct Diag<'s> {
    file: &'s str,
    text: &'s str,
    errors: &'s mut Vec<ConfigError>,
}

impl Diag<'_> {
    fn err(&mut self, span: Range<usize>, field: &str, message: impl Into<String>) {
        let line = 1 + self.text[..span.start.min(self.text.len())].bytes().filter(|b| *b == b'\n').count();
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line,
            field: field.to_string(),
            message: message.into(),
        });
    }

    fn str(&mut self, v: &Value<'_>, field: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.err(v.span(), field, format!("expected a string, found {}", other.type_str()));
                None
            }
        }
    }

    fn bool(&mut self, v: &Value<'_>, field: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.err(v.span(), field, format!("expected true or false, found {}", other.type_str()));
                None
            }
        }
    }

    fn str_list(&mut self, v: &Value<'_>, field: &str) -> Vec<Spanned<String>> {
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| {
                    let s = self.str(item, field)?;
                    Some(Spanned::new(item.span(), s))
                })
                .collect(),
            other => {
                self.err(v.span(), field, format!("expected a list of strings, found {}", other.type_str()));
                Vec::new()
            }
        }
    }

    fn duration(&mut self, v: &Value<'_>, field: &str) -> Option<Duration> {
        let s = self.str(v, field)?;
        match parse_duration(&s) {
            Some(d) => Some(d),
            None => {
                self.err(
                    v.span(),
                    field,
                    format!("invalid duration `{s}`: write hours and minutes, like `4h`, `30m` or `1h30m`"),
                );
                None
            }
        }
    }

    /// Checks that `id` is a key of `known`, reporting `what` otherwise.
    fn reference<T>(&mut self, id: &Spanned<String>, known: &BTreeMap<String, T>, what: &str, field: &str) -> bool {
        if known.contains_key(id.get_ref()) {
            return true;
        }
        let list: Vec<&str> = known.keys().map(String::as_str).collect();
        self.err(id.span(), field, format!("unknown {what} `{}`; known: {}", id.get_ref(), or_none(&list)));
        false
    }
}

/// An example duration for `key`'s error messages.
fn example(key: &str) -> &'static str {
    match key {
        "warn" => "1h",
        "timebox" => "30m",
        "timeout" => "10s",
        _ => "4h",
    }
}

fn or_none(list: &[&str]) -> String {
    if list.is_empty() { "(none)".into() } else { list.join(", ") }
}

/// Parses a business-time duration: `4h`, `30m`, `1h30m`, `0h` (no days: a "day" of business time
/// is ambiguous).
pub fn parse_duration(s: &str) -> Option<Duration> {
    parse_units(s, &[('h', Duration::hours(1)), ('m', Duration::minutes(1)), ('s', Duration::seconds(1))])
}

/// Parses a wall-clock duration, days allowed: `1d2h30m`.
pub fn parse_wall_duration(s: &str) -> Option<Duration> {
    parse_units(s, &[('d', Duration::days(1)), ('h', Duration::hours(1)), ('m', Duration::minutes(1))])
}

fn parse_units(s: &str, units: &[(char, Duration)]) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = Duration::zero();
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i32 = digits.parse().ok()?;
        digits.clear();
        let (_, unit) = units.iter().find(|(u, _)| *u == c)?;
        // Too long to represent is as unreadable as a typo.
        total = total.checked_add(&unit.checked_mul(n)?)?;
    }
    digits.is_empty().then_some(total)
}

/// A table being read: remembers which keys the reader asked for, so the rest can be reported.
struct Table<'t, 'i> {
    table: &'t DeTable<'i>,
    span: Range<usize>,
    path: String,
    known: Vec<&'static str>,
}

impl<'t, 'i> Table<'t, 'i> {
    fn new(d: &mut Diag<'_>, v: &'t Value<'i>, path: &str) -> Option<Self> {
        match v.get_ref() {
            DeValue::Table(table) => Some(Table { table, span: v.span(), path: path.to_string(), known: Vec::new() }),
            other => {
                d.err(v.span(), path, format!("expected a table, found {}", other.type_str()));
                None
            }
        }
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }

    fn opt(&mut self, key: &'static str) -> Option<&'t Value<'i>> {
        self.known.push(key);
        self.table.get(key)
    }

    fn req(&mut self, d: &mut Diag<'_>, key: &'static str) -> Option<&'t Value<'i>> {
        let v = self.opt(key);
        if v.is_none() {
            d.err(self.span.clone(), &self.field(key), format!("missing field `{key}`"));
        }
        v
    }

    fn req_str(&mut self, d: &mut Diag<'_>, key: &'static str) -> Option<Spanned<String>> {
        let v = self.req(d, key)?;
        let field = self.field(key);
        d.str(v, &field).map(|s| Spanned::new(v.span(), s))
    }

    fn opt_str(&mut self, d: &mut Diag<'_>, key: &'static str) -> Option<Spanned<String>> {
        let v = self.opt(key)?;
        let field = self.field(key);
        d.str(v, &field).map(|s| Spanned::new(v.span(), s))
    }

    fn str_list(&mut self, d: &mut Diag<'_>, key: &'static str) -> Vec<Spanned<String>> {
        let field = self.field(key);
        self.opt(key).map(|v| d.str_list(v, &field)).unwrap_or_default()
    }

    fn duration(&mut self, d: &mut Diag<'_>, key: &'static str, required: bool) -> Option<Duration> {
        let field = self.field(key);
        let v = if required { self.req(d, key)? } else { self.opt(key)? };
        d.duration(v, &field)
    }

    /// A duration that must be above zero; `zero` says what a zero one would do, for the error.
    fn positive(&mut self, d: &mut Diag<'_>, key: &'static str, required: bool, zero: &str) -> Option<Duration> {
        let field = self.field(key);
        let v = if required { self.req(d, key)? } else { self.opt(key)? };
        let value = d.duration(v, &field)?;
        if value <= Duration::zero() {
            d.err(v.span(), &field, format!("{zero}: give a duration above 0, like {}", example(key)));
            return None;
        }
        Some(value)
    }

    /// The required `timezone` key, an IANA zone name.
    fn timezone(&mut self, d: &mut Diag<'_>) -> Option<chrono_tz::Tz> {
        let tz = self.req_str(d, "timezone")?;
        let zone = tz.get_ref().parse::<chrono_tz::Tz>().ok();
        if zone.is_none() {
            let message = format!("unknown time zone `{}`: use an IANA name like `Europe/Berlin`", tz.get_ref());
            d.err(tz.span(), &self.field("timezone"), message);
        }
        zone
    }

    /// An optional whole number within `range`.
    fn int(&mut self, d: &mut Diag<'_>, key: &'static str, range: RangeInclusive<i64>) -> Option<i64> {
        let v = self.opt(key)?;
        let field = self.field(key);
        match v.get_ref() {
            DeValue::Integer(i) => match i.as_str().parse::<i64>() {
                Ok(n) if range.contains(&n) => Some(n),
                _ => {
                    let (lo, hi) = (range.start(), range.end());
                    d.err(v.span(), &field, format!("expected a whole number from {lo} to {hi}"));
                    None
                }
            },
            other => {
                d.err(v.span(), &field, format!("expected a whole number, found {}", other.type_str()));
                None
            }
        }
    }

    /// Entries of a sub-table of named items (`[functions.sales]`).
    fn entries(&mut self, d: &mut Diag<'_>, key: &'static str) -> Vec<(Spanned<String>, &'t Value<'i>)> {
        let Some(v) = self.opt(key) else {
            return Vec::new();
        };
        let field = self.field(key);
        match v.get_ref() {
            DeValue::Table(t) => t.iter().map(|(k, v)| (Spanned::new(k.span(), k.get_ref().to_string()), v)).collect(),
            other => {
                d.err(v.span(), &field, format!("expected a table, found {}", other.type_str()));
                Vec::new()
            }
        }
    }

    /// Items of an array of tables (`[[seams.x.fields]]`).
    fn array(&mut self, d: &mut Diag<'_>, key: &'static str) -> Vec<&'t Value<'i>> {
        let Some(v) = self.opt(key) else {
            return Vec::new();
        };
        match v.get_ref() {
            DeValue::Array(items) => items.iter().collect(),
            other => {
                let field = self.field(key);
                d.err(v.span(), &field, format!("expected a list of tables, found {}", other.type_str()));
                Vec::new()
            }
        }
    }

    /// Reports every key the reader did not ask for.
    fn finish(self, d: &mut Diag<'_>) {
        for (k, _) in self.table.iter() {
            if !self.known.contains(&k.get_ref().as_ref()) {
                d.err(
                    k.span(),
                    &self.field(k.get_ref()),
                    format!("unknown key `{}`; expected one of: {}", k.get_ref(), self.known.join(", ")),
                );
            }
        }
    }
}

fn parse_root<'i>(src: Source<'i>, d: &mut Diag<'_>) -> Option<Value<'i>> {
    match DeTable::parse(src.text) {
        Ok(t) => {
            let span = t.span();
            Some(Spanned::new(span, DeValue::Table(t.into_inner())))
        }
        Err(e) => {
            d.err(e.span().unwrap_or(0..0), "(syntax)", e.message().to_string());
            None
        }
    }
}

/// Stall kinds a playbook may name in `applies.kinds`.
const STALL_KINDS: [&str; 4] = ["no_accept", "no_progress", "gate_waiting", "overdue"];

/// Artifact fields every playbook must declare, required: what was decided, which workflow
/// assumption broke, and the failure category.
const REQUIRED_ARTIFACT: [(&str, &str); 3] =
    [("decision", "decision"), ("assumption_broke", "text"), ("category", "category")];

/// A playbook's references to seams, checked once the model is read.
struct SeamRefs<'s> {
    src: Source<'s>,
    seams: Vec<Spanned<String>>,
}

fn parse_playbook<'s>(
    src: Source<'s>,
    errors: &mut Vec<ConfigError>,
    refs: &mut Vec<SeamRefs<'s>>,
    ids: &mut BTreeMap<String, ()>,
) -> Option<Playbook> {
    let mut d = Diag { file: src.name, text: src.text, errors };
    let root = parse_root(src, &mut d)?;
    let mut t = Table::new(&mut d, &root, "")?;
    let id = t.req_str(&mut d, "id");
    if let Some(id) = &id {
        ids.insert(id.get_ref().clone(), ());
    }
    let title = t.req_str(&mut d, "title");
    let timebox = t.positive(&mut d, "timebox", true, "a timebox of 0m runs out as the recalibration opens");
    let agenda = t.str_list(&mut d, "agenda");
    let (mut kinds, mut seams, mut tiers) = (Vec::new(), Vec::new(), Vec::new());
    if let Some(v) = t.opt("applies")
        && let Some(mut a) = Table::new(&mut d, v, "applies")
    {
        for k in a.str_list(&mut d, "kinds") {
            if STALL_KINDS.contains(&k.get_ref().as_str()) {
                kinds.push(k.into_inner());
            } else {
                let message = format!("unknown stall kind `{}`; kinds are {}", k.get_ref(), STALL_KINDS.join(", "));
                d.err(k.span(), "applies.kinds", message);
            }
        }
        for tier in a.str_list(&mut d, "tiers") {
            match RiskTier::parse(tier.get_ref()) {
                Some(parsed) => tiers.push(parsed),
                None => d.err(
                    tier.span(),
                    "applies.tiers",
                    format!("unknown tier `{}`; tiers are reversible, irreversible, high-stakes", tier.get_ref()),
                ),
            }
        }
        seams = a.str_list(&mut d, "seams");
        a.finish(&mut d);
    }
    let role = |d: &mut Diag<'_>, r: &Spanned<String>, field: &str| {
        let found = Participant::ALL.iter().find(|(n, _)| *n == r.get_ref()).map(|(_, p)| *p);
        if found.is_none() {
            let names: Vec<&str> = Participant::ALL.iter().map(|(n, _)| *n).collect();
            d.err(r.span(), field, format!("unknown role `{}`; roles are {}", r.get_ref(), names.join(", ")));
        }
        found
    };
    let convener = t.req_str(&mut d, "convener").and_then(|r| role(&mut d, &r, "convener"));
    let attendees: Vec<Participant> =
        t.str_list(&mut d, "attendees").iter().filter_map(|r| role(&mut d, r, "attendees")).collect();
    let mut artifact: Vec<ArtifactField> = Vec::new();
    for item in t.array(&mut d, "artifact") {
        if let Some(f) = parse_artifact_field(&mut d, item) {
            artifact.push(f);
        }
    }
    for (name, kind) in REQUIRED_ARTIFACT {
        match artifact.iter().find(|f| f.name == name) {
            Some(f) if f.required => {}
            Some(_) => d.err(t.span.clone(), "artifact", format!("artifact field `{name}` must be required")),
            None => d.err(
                t.span.clone(),
                "artifact",
                format!(
                    "missing required artifact field `{name}`: add {{ name = \"{name}\", type = \"{kind}\", required = true }}"
                ),
            ),
        }
    }
    let opening = template(&mut d, &mut t, "opening");
    let reminder = template(&mut d, &mut t, "reminder");
    t.finish(&mut d);
    refs.push(SeamRefs { src, seams: seams.clone() });
    Some(Playbook {
        id: id?.into_inner(),
        title: title?.into_inner(),
        timebox: timebox?,
        agenda: agenda.into_iter().map(Spanned::into_inner).collect(),
        kinds,
        seams: seams.into_iter().map(Spanned::into_inner).collect(),
        tiers,
        convener: convener?,
        attendees,
        artifact,
        opening: opening?,
        reminder: reminder?,
    })
}

/// An optional message template, compiled to report syntax errors on the file's own line.
/// `Some(None)` when absent; `None` when invalid.
fn template(d: &mut Diag<'_>, t: &mut Table<'_, '_>, key: &'static str) -> Option<Option<String>> {
    let Some(v) = t.opt(key) else { return Some(None) };
    let text = d.str(v, key)?;
    let env = minijinja::Environment::new();
    match env.template_from_str(&text) {
        Ok(_) => Some(Some(text)),
        Err(e) => {
            // The template's first line is the string's own line; a `"""` string starts on the next.
            let start = v.span().start.min(d.text.len());
            let rest = &d.text[start..];
            let opens_block = rest.starts_with("\"\"\"\n") || rest.starts_with("'''\n");
            let first = d.text[..start].bytes().filter(|b| *b == b'\n').count() + 1 + usize::from(opens_block);
            let line = first + e.line().unwrap_or(1).saturating_sub(1);
            d.errors.push(ConfigError {
                file: d.file.to_string(),
                line,
                field: key.to_string(),
                message: format!("template error: {}", e.detail().unwrap_or("invalid syntax")),
            });
            None
        }
    }
}

fn parse_artifact_field(d: &mut Diag<'_>, v: &Value<'_>) -> Option<ArtifactField> {
    let mut t = Table::new(d, v, "artifact")?;
    let name = t.req_str(d, "name");
    let kind = t.req_str(d, "type");
    let required = match t.opt("required") {
        Some(v) => d.bool(v, "artifact.required").unwrap_or(false),
        None => false,
    };
    let help = t.opt_str(d, "help").map(Spanned::into_inner);
    let options = t.str_list(d, "options");
    let kind = kind.and_then(|k| match k.get_ref().as_str() {
        "text" => Some(ArtifactType::Text),
        "person" => Some(ArtifactType::Person),
        "date" => Some(ArtifactType::Date),
        "follow-ups" => Some(ArtifactType::FollowUps),
        // Filled with the operating model's failure categories once it is read.
        "category" => Some(ArtifactType::Choice(Vec::new())),
        "decision" => Some(ArtifactType::Choice(DECISIONS.iter().map(|s| s.to_string()).collect())),
        "choice" if !options.is_empty() => {
            Some(ArtifactType::Choice(options.iter().map(|o| o.get_ref().clone()).collect()))
        }
        "choice" => {
            d.err(k.span(), "artifact.options", "a choice field needs `options = [...]`");
            None
        }
        other => {
            let message = format!(
                "unknown artifact type `{other}`; types are text, choice, person, date, follow-ups, category, decision"
            );
            d.err(k.span(), "artifact.type", message);
            None
        }
    });
    t.finish(d);
    Some(ArtifactField { name: name?.into_inner(), kind: kind?, required, help })
}

fn parse_model(
    src: Source<'_>,
    playbook_ids: &BTreeMap<String, ()>,
    declared_seams: &mut BTreeMap<String, ()>,
    errors: &mut Vec<ConfigError>,
) -> Option<OperatingModel> {
    let mut d = Diag { file: src.name, text: src.text, errors };
    let root = parse_root(src, &mut d)?;
    let mut top = Table::new(&mut d, &root, "")?;
    let mut model = OperatingModel {
        architects_channel: top.opt_str(&mut d, "architects_channel").map(Spanned::into_inner),
        categories: top.str_list(&mut d, "failure_categories").into_iter().map(Spanned::into_inner).collect(),
        ..OperatingModel::default()
    };

    // Keys first, so that references can be checked in any order.
    let people = top.entries(&mut d, "people");
    let functions = top.entries(&mut d, "functions");
    let reviewers = top.entries(&mut d, "reviewers");
    let seams = top.entries(&mut d, "seams");
    declared_seams.extend(seams.iter().map(|(k, _)| (k.get_ref().clone(), ())));
    let person_ids: BTreeMap<String, ()> = people.iter().map(|(k, _)| (k.get_ref().clone(), ())).collect();

    for (id, v) in &people {
        if let Some(p) = parse_person(&mut d, id, v, &person_ids) {
            model.people.insert(p.id.clone(), p);
        }
    }
    check_unique_platform_ids(&mut d, &people, &model);
    for (id, v) in &functions {
        if let Some(f) = parse_function(&mut d, id, v, &person_ids) {
            model.functions.insert(f.id.clone(), f);
        }
    }
    for (id, v) in &reviewers {
        if let Some(r) = parse_reviewer(&mut d, id, v) {
            model.reviewers.insert(r.id.clone(), r);
        }
    }
    let function_names: BTreeMap<String, ()> = functions.iter().map(|(k, _)| (k.get_ref().clone(), ())).collect();
    let agents: BTreeSet<String> = model.people.values().filter(|p| p.is_agent()).map(|p| p.id.clone()).collect();
    let refs = Refs {
        people: &person_ids,
        agents: &agents,
        functions: &function_names,
        reviewers: &model.reviewers.keys().map(|k| (k.clone(), ())).collect(),
        playbooks: playbook_ids,
    };
    for (id, v) in &seams {
        if let Some(s) = parse_seam(&mut d, id, v, &refs, &model.functions) {
            model.seams.insert(s.id.clone(), s);
        }
    }
    for (tier, v) in top.entries(&mut d, "tiers") {
        let path = format!("tiers.{}", tier.get_ref());
        let Some(parsed) = RiskTier::parse(tier.get_ref()) else {
            d.err(tier.span(), &path, "unknown tier; tiers are reversible, irreversible, high-stakes");
            continue;
        };
        let Some(mut t) = Table::new(&mut d, v, &path) else { continue };
        if let Some(loud) = t.opt("ping_outside_hours")
            && d.bool(loud, &t.field("ping_outside_hours")) == Some(true)
        {
            model.loud_tiers.push(parsed);
        }
        t.finish(&mut d);
    }
    if let Some(v) = top.opt("delivery")
        && let Some(mut t) = Table::new(&mut d, v, "delivery")
    {
        let defaults = Delivery::default();
        model.delivery = Delivery {
            max_attempts: t.int(&mut d, "max_attempts", 1..=100).map_or(defaults.max_attempts, |n| n as u32),
            digest_threshold: t
                .int(&mut d, "digest_threshold", 1..=100)
                .map_or(defaults.digest_threshold, |n| n as usize),
        };
        t.finish(&mut d);
    }
    if let Some(v) = top.opt("retention")
        && let Some(mut t) = Table::new(&mut d, v, "retention")
    {
        let defaults = Retention::default();
        let mut kept = |key: &'static str, default: Duration| {
            let v = t.opt(key)?;
            let field = t.field(key);
            let text = d.str(v, &field)?;
            let days = crate::history::days(&text).filter(|n| (1..=36_500).contains(n));
            if days.is_none() {
                let message = format!(
                    "`{text}` is not a time to keep {key}: write days or weeks, a day at least, like {}d",
                    default.num_days()
                );
                d.err(v.span(), &field, message);
            }
            days.map(|n| Duration::days(n.into()))
        };
        model.retention = Retention {
            messages: kept("messages", defaults.messages).unwrap_or(defaults.messages),
            request_keys: kept("request_keys", defaults.request_keys).unwrap_or(defaults.request_keys),
        };
        t.finish(&mut d);
    }
    for (name, v) in top.entries(&mut d, "jobs") {
        if let Some(job) = parse_job(&mut d, &name, v, &function_names) {
            model.jobs.push(job);
        }
    }
    for (name, v) in top.entries(&mut d, "api") {
        if let Some(client) = parse_api_client(&mut d, &name, v, &refs) {
            model.api.insert(client.name.clone(), client);
        }
    }
    if seams.is_empty() {
        d.err(top.span.clone(), "seams", "no seams defined: add at least one `[seams.<id>]` table");
    }
    top.finish(&mut d);
    Some(model)
}

fn parse_job(d: &mut Diag<'_>, name: &Spanned<String>, v: &Value<'_>, functions: &BTreeMap<String, ()>) -> Option<Job> {
    let path = format!("jobs.{}", name.get_ref());
    let mut t = Table::new(d, v, &path)?;
    let kind = t.req_str(d, "kind").and_then(|k| {
        let found = JobKind::ALL.iter().find(|(n, _)| *n == k.get_ref()).map(|(_, kind)| *kind);
        if found.is_none() {
            let message = format!("unknown job kind `{}`; kinds are stall-digest, still-open, catch-up", k.get_ref());
            d.err(k.span(), &t.field("kind"), message);
        }
        found
    });
    let schedule = t.req_str(d, "cron").and_then(|c| match c.get_ref().parse::<cron::Schedule>() {
        Ok(s) => Some(s),
        Err(e) => {
            let message = format!(
                "invalid cron expression `{}` ({e}): write six fields, seconds first, with day names, \
                 like `0 30 9 * * Mon-Fri`",
                c.get_ref()
            );
            d.err(c.span(), &t.field("cron"), message);
            None
        }
    });
    let tz = t.timezone(d);
    let fs = t.str_list(d, "functions");
    for f in &fs {
        d.reference(f, functions, "function", &t.field("functions"));
    }
    t.finish(d);
    Some(Job {
        name: name.get_ref().clone(),
        kind: kind?,
        schedule: schedule?,
        tz: tz?,
        functions: fs.into_iter().map(Spanned::into_inner).collect(),
    })
}

/// `var` when it can name an environment variable; otherwise an error at `key` with `example`.
fn variable_name(
    d: &mut Diag<'_>,
    t: &Table<'_, '_>,
    key: &str,
    var: Spanned<String>,
    example: &str,
) -> Option<String> {
    let name = var.get_ref();
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
        return Some(var.into_inner());
    }
    let message = format!(
        "`{name}` is not an environment variable's name: name the variable that holds it, like `{example}` \
         (secrets and URLs never live in this file)"
    );
    d.err(var.span(), &t.field(key), message);
    None
}

fn parse_api_client(d: &mut Diag<'_>, name: &Spanned<String>, v: &Value<'_>, refs: &Refs<'_>) -> Option<ApiClient> {
    let path = format!("api.{}", name.get_ref());
    let mut t = Table::new(d, v, &path)?;
    let token_env = t.req_str(d, "token_env").and_then(|v| variable_name(d, &t, "token_env", v, "BATON_API_TOKEN_CRM"));
    let webhook_env =
        t.opt_str(d, "webhook_env").and_then(|v| variable_name(d, &t, "webhook_env", v, "BATON_WEBHOOK_DEPLOY_AGENT"));
    let field = t.field("acts_as");
    let acts_as = match t.req(d, "acts_as") {
        Some(v) => {
            let list = d.str_list(v, &field);
            if list.is_empty() {
                d.err(v.span(), &field, "whom does this client act for? list people or functions");
            }
            list
        }
        None => Vec::new(),
    };
    let mut known = true;
    for who in &acts_as {
        if !refs.people.contains_key(who.get_ref()) && !refs.functions.contains_key(who.get_ref()) {
            let message =
                format!("`{}` is neither a person nor a function: list whom this client acts for", who.get_ref());
            d.err(who.span(), &field, message);
            known = false;
        }
    }
    t.finish(d);
    Some(ApiClient {
        name: name.get_ref().clone(),
        token_env: token_env?,
        acts_as: acts_as.into_iter().map(Spanned::into_inner).collect(),
        webhook_env,
    })
    .filter(|c| known && !c.acts_as.is_empty())
}

struct Refs<'a> {
    people: &'a BTreeMap<String, ()>,
    /// People who are agents: they may not approve (gates take human approvals).
    agents: &'a BTreeSet<String>,
    functions: &'a BTreeMap<String, ()>,
    reviewers: &'a BTreeMap<String, ()>,
    playbooks: &'a BTreeMap<String, ()>,
}

fn parse_person(
    d: &mut Diag<'_>,
    id: &Spanned<String>,
    v: &Value<'_>,
    people: &BTreeMap<String, ()>,
) -> Option<Person> {
    let path = format!("people.{}", id.get_ref());
    let mut t = Table::new(d, v, &path)?;
    let name = t.req_str(d, "name");
    let mut roles = Vec::new();
    for r in t.str_list(d, "roles") {
        match Role::ALL.iter().find(|(n, _)| *n == r.get_ref()) {
            Some((_, role)) => roles.push(*role),
            None => d.err(
                r.span(),
                &t.field("roles"),
                format!("unknown role `{}`; roles are rep, engineer, lead, architect", r.get_ref()),
            ),
        }
    }
    let slack = t.opt_str(d, "slack").map(Spanned::into_inner);
    let discord = t.opt_str(d, "discord").map(Spanned::into_inner);
    let agent = match t.opt("agent") {
        Some(v) => d.bool(v, &t.field("agent")).unwrap_or(false),
        None => false,
    };
    let supervisor = t.opt_str(d, "supervisor");
    match (&supervisor, agent) {
        (None, true) => d.err(
            t.span.clone(),
            &t.field("supervisor"),
            "an agent must name the human who supervises it: add `supervisor = \"<person>\"`",
        ),
        (Some(s), false) => d.err(
            s.span(),
            &t.field("supervisor"),
            "only agents have a supervisor: add `agent = true` or remove `supervisor`",
        ),
        (Some(s), true) => {
            if d.reference(s, people, "person", &t.field("supervisor")) && s.get_ref() == id.get_ref() {
                d.err(s.span(), &t.field("supervisor"), "an agent cannot supervise itself");
            }
        }
        (None, false) => {}
    }
    t.finish(d);
    Some(Person {
        id: id.get_ref().clone(),
        name: name?.into_inner(),
        roles,
        slack,
        discord,
        supervisor: supervisor.filter(|_| agent).map(Spanned::into_inner),
    })
}

fn check_unique_platform_ids(d: &mut Diag<'_>, people: &[(Spanned<String>, &Value<'_>)], model: &OperatingModel) {
    let mut seen: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for (id, _) in people {
        let Some(p) = model.people.get(id.get_ref()) else {
            continue;
        };
        for (platform, value) in [("slack", &p.slack), ("discord", &p.discord)] {
            let Some(value) = value else { continue };
            if let Some(other) = seen.insert((platform, value), &p.id) {
                d.err(
                    id.span(),
                    &format!("people.{}.{platform}", p.id),
                    format!("{platform} id `{value}` is also given to `{other}`: one account maps to one person"),
                );
            }
        }
    }
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn parse_function(
    d: &mut Diag<'_>,
    id: &Spanned<String>,
    v: &Value<'_>,
    people: &BTreeMap<String, ()>,
) -> Option<Function> {
    let path = format!("functions.{}", id.get_ref());
    let mut t = Table::new(d, v, &path)?;
    let name = t.req_str(d, "name");
    let lead = t.req_str(d, "lead");
    if let Some(lead) = &lead {
        d.reference(lead, people, "person", &t.field("lead"));
    }
    let members = t.str_list(d, "members");
    for m in &members {
        d.reference(m, people, "person", &t.field("members"));
    }
    let slack_channel = t.opt_str(d, "slack_channel").map(Spanned::into_inner);
    let discord_channel = t.opt_str(d, "discord_channel").map(Spanned::into_inner);
    let tz = t.timezone(d);
    let week = t.req(d, "hours").and_then(|h| parse_hours(d, h, &t.field("hours")));
    let mut holidays = BTreeSet::new();
    if let Some(v) = t.opt("holidays") {
        let field = t.field("holidays");
        match v.get_ref() {
            DeValue::Array(items) => {
                for item in items {
                    match parse_date(item.get_ref()) {
                        Some(date) => {
                            holidays.insert(date);
                        }
                        None => d.err(item.span(), &field, "expected a date like 2026-12-25"),
                    }
                }
            }
            other => d.err(v.span(), &field, format!("expected a list of dates, found {}", other.type_str())),
        }
    }
    t.finish(d);
    Some(Function {
        id: id.get_ref().clone(),
        name: name?.into_inner(),
        lead: lead?.into_inner(),
        members: members.into_iter().map(Spanned::into_inner).collect(),
        slack_channel,
        discord_channel,
        calendar: WorkCalendar { tz: tz?, week: week?, holidays },
    })
}

fn parse_date(v: &DeValue<'_>) -> Option<NaiveDate> {
    match v {
        DeValue::Datetime(dt) => {
            let date = dt.date?;
            if dt.time.is_some() {
                return None;
            }
            NaiveDate::from_ymd_opt(i32::from(date.year), u32::from(date.month), u32::from(date.day))
        }
        DeValue::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `hours = { mon-fri = "09:00-12:00, 13:00-17:00", sat = "10:00-14:00" }`.
fn parse_hours(d: &mut Diag<'_>, v: &Value<'_>, field: &str) -> Option<[Vec<Window>; 7]> {
    let DeValue::Table(table) = v.get_ref() else {
        d.err(v.span(), field, "expected a table like { mon-fri = \"09:00-17:00\" }");
        return None;
    };
    let mut week: [Vec<Window>; 7] = Default::default();
    let mut ok = true;
    for (k, val) in table.iter() {
        let key_field = format!("{field}.{}", k.get_ref());
        let days = match weekday_range(k.get_ref()) {
            Some(days) => days,
            None => {
                d.err(
                    k.span(),
                    &key_field,
                    format!("unknown day `{}`: use mon..sun or a range like mon-fri", k.get_ref()),
                );
                ok = false;
                continue;
            }
        };
        let Some(text) = d.str(val, &key_field) else {
            ok = false;
            continue;
        };
        match parse_windows(&text) {
            Some(windows) => days.for_each(|i| week[i] = windows.clone()),
            None => {
                d.err(
                    val.span(),
                    &key_field,
                    format!(
                        "invalid hours `{text}`: write each window's start before its end, windows in order and \
                         apart, like \"09:00-17:30\" or \"09:00-12:00, 13:00-17:00\" (\"00:00-24:00\" for the whole day)"
                    ),
                );
                ok = false;
            }
        }
    }
    if ok && week.iter().all(Vec::is_empty) {
        d.err(v.span(), field, "no working day: SLA clocks would never run; give at least one day hours");
        return None;
    }
    ok.then_some(week)
}

fn weekday_range(key: &str) -> Option<std::ops::RangeInclusive<usize>> {
    let index = |s: &str| WEEKDAYS.iter().position(|d| *d == s);
    match key.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (index(a)?, index(b)?);
            (a <= b).then_some(a..=b)
        }
        None => index(key).map(|i| i..=i),
    }
}

/// `09:00-12:00, 13:00-17:00`: windows in order, each ending before the next starts.
fn parse_windows(s: &str) -> Option<Vec<Window>> {
    let windows = s.split(',').map(parse_window).collect::<Option<Vec<_>>>()?;
    let apart = windows.windows(2).all(|pair| !pair[0].to_midnight() && pair[0].end <= pair[1].start);
    apart.then_some(windows)
}

/// `09:00-17:30`; `24:00` ends a window at midnight (`00:00-24:00` is the whole day).
fn parse_window(s: &str) -> Option<Window> {
    let (a, b) = s.split_once('-')?;
    let start = NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?;
    let end = match b.trim() {
        "24:00" => NaiveTime::MIN,
        b => NaiveTime::parse_from_str(b, "%H:%M").ok()?,
    };
    let window = Window { start, end };
    (start < end || window.to_midnight()).then_some(window)
}

fn parse_reviewer(d: &mut Diag<'_>, id: &Spanned<String>, v: &Value<'_>) -> Option<Reviewer> {
    let path = format!("reviewers.{}", id.get_ref());
    let mut t = Table::new(d, v, &path)?;
    let version = t.req_str(d, "version");
    let kind_name = t.req_str(d, "kind");
    let kind = match kind_name.as_ref().map(|k| k.get_ref().as_str()) {
        Some("rules") => {
            let required = t.str_list(d, "required").into_iter().map(Spanned::into_inner).collect();
            let mut patterns = Vec::new();
            for item in t.array(d, "patterns") {
                let Some(mut p) = Table::new(d, item, &t.field("patterns")) else {
                    continue;
                };
                let field = p.req_str(d, "field");
                let pattern = p.req_str(d, "pattern").and_then(|pat| match regex_lite::Regex::new(pat.get_ref()) {
                    Ok(re) => Some(re),
                    Err(e) => {
                        d.err(pat.span(), &p.field("pattern"), format!("invalid pattern: {e}"));
                        None
                    }
                });
                let message = p.opt_str(d, "message").map(Spanned::into_inner);
                p.finish(d);
                if let (Some(field), Some(pattern)) = (field, pattern) {
                    let message =
                        message.unwrap_or_else(|| format!("`{}` must match {}", field.get_ref(), pattern.as_str()));
                    patterns.push(PatternRule { field: field.into_inner(), pattern, message });
                }
            }
            Some(ReviewerKind::Rules { required, patterns })
        }
        Some("webhook") => {
            let url_env = t.req_str(d, "url_env").map(Spanned::into_inner);
            let timeout = t.positive(d, "timeout", false, "a timeout of 0s fails every review before it is asked");
            let timeout = timeout.unwrap_or(Duration::seconds(10));
            url_env.map(|url_env| ReviewerKind::Webhook { url_env, timeout })
        }
        Some(other) => {
            if let Some(k) = &kind_name {
                d.err(k.span(), &t.field("kind"), format!("unknown reviewer kind `{other}`: use `rules` or `webhook`"));
            }
            None
        }
        None => None,
    };
    t.finish(d);
    Some(Reviewer { id: id.get_ref().clone(), version: version?.into_inner(), kind: kind? })
}

const RESERVED_FIELDS: [&str; 3] = ["title", "tier", "owner"];

fn parse_seam(
    d: &mut Diag<'_>,
    id: &Spanned<String>,
    v: &Value<'_>,
    refs: &Refs<'_>,
    functions: &BTreeMap<FunctionId, Function>,
) -> Option<Seam> {
    let path = format!("seams.{}", id.get_ref());
    let mut t = Table::new(d, v, &path)?;
    let from = t.req_str(d, "from");
    let to = t.req_str(d, "to");
    if let Some(f) = &from {
        d.reference(f, refs.functions, "function", &t.field("from"));
    }
    if let Some(to) = &to {
        d.reference(to, refs.functions, "function", &t.field("to"));
        if from.as_ref().is_some_and(|f| f.get_ref() == to.get_ref()) {
            d.err(to.span(), &t.field("to"), "a seam joins two different functions");
        }
    }
    let mode = t.opt_str(d, "mode").and_then(|m| match m.get_ref().as_str() {
        "human-only" => Some(ExecutionMode::HumanOnly),
        "agent-augmented" => Some(ExecutionMode::AgentAugmented),
        "agent-ready" => Some(ExecutionMode::AgentReady),
        other => {
            d.err(
                m.span(),
                &t.field("mode"),
                format!("unknown mode `{other}`: use human-only, agent-augmented or agent-ready"),
            );
            None
        }
    });
    let tier = t.req_str(d, "tier").and_then(|s| {
        let tier = RiskTier::parse(s.get_ref());
        if tier.is_none() {
            d.err(
                s.span(),
                &t.field("tier"),
                format!("unknown tier `{}`: use reversible, irreversible or high-stakes", s.get_ref()),
            );
        }
        tier
    });
    let approvers = t.str_list(d, "approvers");
    for a in &approvers {
        if d.reference(a, refs.people, "person", &t.field("approvers")) && refs.agents.contains(a.get_ref()) {
            let message = format!("`{}` is an agent: a gate's approvals come from people", a.get_ref());
            d.err(a.span(), &t.field("approvers"), message);
        }
    }
    if let Some(tier) = tier {
        let distinct: BTreeSet<&String> = approvers.iter().map(Spanned::get_ref).collect();
        if distinct.len() < tier.approvals_needed() {
            d.err(
                t.span.clone(),
                &t.field("approvers"),
                format!("tier {tier} needs {} distinct approvers; {} listed", tier.approvals_needed(), distinct.len()),
            );
        }
    }
    let reviewer = t.opt_str(d, "reviewer");
    if let Some(r) = &reviewer {
        d.reference(r, refs.reviewers, "reviewer", &t.field("reviewer"));
    }
    let sla = t.req(d, "sla").and_then(|v| {
        let mut s = Table::new(d, v, &t.field("sla"))?;
        let breached = "a target of 0h is breached as its clock starts";
        let accept = s.positive(d, "accept", true, breached);
        let update = s.positive(d, "update", true, breached);
        let done = s.positive(d, "done", true, breached);
        let gate = s.positive(d, "gate", false, breached);
        let warn = s.positive(d, "warn", false, "a heads-up comes before a target is due");
        // A heads-up as long as every target would fall before each clock starts: never sent.
        if let (Some(w), Some(a), Some(u), Some(done)) = (warn, accept, update, done) {
            let longest = [a, u, done, gate.unwrap_or(u)].into_iter().max().unwrap_or(done);
            if let Some(v) = s.opt("warn").filter(|_| w >= longest) {
                let message = format!(
                    "a heads-up {} before a target would never come: no target is longer (the longest is {}); \
                     give less, like 30m",
                    crate::render::duration(w),
                    crate::render::duration(longest)
                );
                d.err(v.span(), &s.field("warn"), message);
            }
        }
        s.finish(d);
        let update = update?;
        Some(Sla { accept: accept?, update, done: done?, gate: gate.unwrap_or(update), warn })
    });
    let contract = parse_contract(d, &mut t);
    let slack_channel = t.opt_str(d, "slack_channel").map(Spanned::into_inner);
    let discord_channel = t.opt_str(d, "discord_channel").map(Spanned::into_inner);
    let to_function = to.as_ref().and_then(|to| functions.get(to.get_ref()));
    let channels = to_function.map(|f| Channels {
        function: &f.id,
        slack: slack_channel.is_some() || f.slack_channel.is_some(),
        discord: discord_channel.is_some() || f.discord_channel.is_some(),
    });
    let ladder = parse_ladder(d, &mut t, refs, channels);
    let one_open_per = parse_one_open_per(d, &mut t, contract.as_deref());
    t.finish(d);
    Some(Seam {
        id: id.get_ref().clone(),
        from: from?.into_inner(),
        to: to?.into_inner(),
        contract: contract?,
        mode: mode.unwrap_or(ExecutionMode::HumanOnly),
        tier: tier?,
        sla: sla?,
        ladder: ladder?,
        approvers: approvers.into_iter().map(Spanned::into_inner).collect(),
        reviewer: reviewer.map(Spanned::into_inner),
        slack_channel,
        discord_channel,
        one_open_per,
    })
}

/// A seam's `one_open_per`: required contract fields, each named once.
fn parse_one_open_per(d: &mut Diag<'_>, seam: &mut Table<'_, '_>, contract: Option<&[FieldSpec]>) -> Vec<String> {
    let names = seam.str_list(d, "one_open_per");
    let field = seam.field("one_open_per");
    let mut seen = BTreeSet::new();
    for name in &names {
        let spec = contract.and_then(|c| c.iter().find(|f| &f.name == name.get_ref()));
        let problem = match spec {
            _ if !seen.insert(name.get_ref()) => Some(format!("`{}` is named twice", name.get_ref())),
            None if contract.is_some() => {
                let known: Vec<&str> = contract.unwrap_or_default().iter().map(|f| f.name.as_str()).collect();
                Some(format!(
                    "`{}` is not a field of the seam's contract; fields: {}",
                    name.get_ref(),
                    known.join(", ")
                ))
            }
            Some(f) if !f.required => Some(format!(
                "`{}` is optional: a handoff without it could not be told apart; make it `required = true`",
                f.name
            )),
            _ => None,
        };
        if let Some(message) = problem {
            d.err(name.span(), &field, message);
        }
    }
    names.into_iter().map(Spanned::into_inner).collect()
}

/// Which channels a seam's ladder can post to (its own, or its receiving function's).
struct Channels<'a> {
    function: &'a str,
    slack: bool,
    discord: bool,
}

fn parse_contract(d: &mut Diag<'_>, seam: &mut Table<'_, '_>) -> Option<Vec<FieldSpec>> {
    let mut ok = true;
    let mut fields: Vec<FieldSpec> = Vec::new();
    let path = seam.field("fields");
    for item in seam.array(d, "fields") {
        let Some(mut f) = Table::new(d, item, &path) else {
            ok = false;
            continue;
        };
        let name = f.req_str(d, "name");
        if let Some(n) = &name {
            let valid = !n.get_ref().is_empty()
                && n.get_ref().chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                d.err(
                    n.span(),
                    &f.field("name"),
                    format!("field name `{}` must be letters, digits, `_` or `-`", n.get_ref()),
                );
                ok = false;
            } else if RESERVED_FIELDS.contains(&n.get_ref().as_str()) {
                d.err(n.span(), &f.field("name"), format!("`{}` is reserved by Baton; pick another name", n.get_ref()));
                ok = false;
            } else if fields.iter().any(|x| &x.name == n.get_ref()) {
                d.err(n.span(), &f.field("name"), format!("field `{}` is declared twice", n.get_ref()));
                ok = false;
            }
        }
        let options = f.str_list(d, "options");
        let kind = f.req_str(d, "type").and_then(|k| match k.get_ref().as_str() {
            "text" => Some(FieldType::Text),
            "number" => Some(FieldType::Number),
            "date" => Some(FieldType::Date),
            "url" => Some(FieldType::Url),
            "person" => Some(FieldType::Person),
            "choice" if options.is_empty() => {
                d.err(k.span(), &f.field("options"), "a choice field needs `options = [\"a\", \"b\"]`");
                None
            }
            "choice" => Some(FieldType::Choice(options.iter().map(|o| o.get_ref().clone()).collect())),
            other => {
                d.err(
                    k.span(),
                    &f.field("type"),
                    format!("unknown field type `{other}`: use text, number, date, url, choice or person"),
                );
                None
            }
        });
        let required = f.opt("required").map(|v| d.bool(v, "required"));
        let help = f.opt_str(d, "help").map(Spanned::into_inner);
        f.finish(d);
        match (name, kind, required) {
            (Some(name), Some(kind), None | Some(Some(_))) => fields.push(FieldSpec {
                name: name.into_inner(),
                kind,
                required: required.flatten().unwrap_or(false),
                help,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(fields)
}

fn parse_ladder(
    d: &mut Diag<'_>,
    seam: &mut Table<'_, '_>,
    refs: &Refs<'_>,
    channels: Option<Channels<'_>>,
) -> Option<Vec<LadderStep>> {
    let mut ok = true;
    let mut steps: Vec<LadderStep> = Vec::new();
    let path = seam.field("ladder");
    for item in seam.array(d, "ladder") {
        let Some(mut s) = Table::new(d, item, &path) else {
            ok = false;
            continue;
        };
        let after = s.duration(d, "after", true);
        let playbook = s.opt_str(d, "playbook");
        let action = s.req_str(d, "action").and_then(|a| {
            let action = match a.get_ref().as_str() {
                "remind-owner" => LadderAction::RemindOwner,
                "notify-lead" => LadderAction::NotifyLead,
                "post-channel" => LadderAction::PostChannel,
                "escalate-discord" => LadderAction::EscalateDiscord,
                "convene" => match &playbook {
                    Some(p) if d.reference(p, refs.playbooks, "playbook", &s.field("playbook")) => {
                        LadderAction::Convene(p.get_ref().clone())
                    }
                    Some(_) => return None,
                    None => {
                        d.err(a.span(), &s.field("playbook"), "a `convene` step names its playbook: add `playbook = \"<id>\"`");
                        return None;
                    }
                },
                other => {
                    d.err(
                        a.span(),
                        &s.field("action"),
                        format!("unknown action `{other}`: use remind-owner, notify-lead, post-channel, escalate-discord or convene"),
                    );
                    return None;
                }
            };
            let needs = match (&action, &channels) {
                (LadderAction::PostChannel, Some(c)) => Some((!c.slack, "slack_channel", c.function)),
                (LadderAction::EscalateDiscord, Some(c)) => Some((!c.discord, "discord_channel", c.function)),
                _ => None,
            };
            if let Some((true, key, function)) = needs {
                let message = format!("`{}` needs `{key}` on the seam or on function `{function}`", action.name());
                d.err(a.span(), &s.field("action"), message);
            }
            Some(action)
        });
        let after_field = s.field("after");
        s.finish(d);
        match (after, action) {
            (Some(after), Some(action)) => {
                if let Some(prev) = steps.last()
                    && prev.after > after
                {
                    d.err(item.span(), &after_field, "ladder steps must be in order of `after`");
                    ok = false;
                }
                steps.push(LadderStep { after, action });
            }
            _ => ok = false,
        }
    }
    ok.then_some(steps)
}
