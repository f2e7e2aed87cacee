//! Validates and normalises contract fields against a seam's contract.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::model::{FieldType, OperatingModel, Seam};

/// A field every seam takes besides its contract: a link to where the work came from (the Slack
/// message it was handed off from, a CRM page). A seam's own field of that name wins.
pub const SOURCE: &str = "source";

/// The longest title, in characters: one line, readable on a card, in a thread's name and a form.
pub const TITLE_MAX: usize = 200;

/// The longest field value, in characters (Slack's text inputs take 3,000 at most).
pub const VALUE_MAX: usize = 2000;

/// The problem with a title, if any: empty, or longer than [`TITLE_MAX`].
pub fn title_problem(title: &str) -> Option<FieldError> {
    let n = title.trim().chars().count();
    let message = match n {
        0 => "give the handoff a title: one line saying what is handed off".to_string(),
        n if n > TITLE_MAX => {
            format!("at most {TITLE_MAX} characters (this one has {n}): keep it to one line; details go in the fields")
        }
        _ => return None,
    };
    Some(FieldError { field: "title".into(), message })
}

/// One field's problem, addressed to the field (Slack modals show it inline).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Field name.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// One error for each field `given` more than once: a slip either way, and which value was
/// meant is not Baton's to guess.
pub(crate) fn given_twice(given: &[(String, String)]) -> Vec<FieldError> {
    let mut errors: Vec<FieldError> = Vec::new();
    for (i, (name, second)) in given.iter().enumerate() {
        let first = given[..i].iter().find(|(n, _)| n == name).map(|(_, v)| v);
        if let Some(first) = first.filter(|_| !errors.iter().any(|e| e.field == *name)) {
            let message = format!("`{name}` is given twice (`{first}`, then `{second}`): give it once");
            errors.push(FieldError { field: name.clone(), message });
        }
    }
    errors
}

/// Merges `given` into `existing`, checking names and types; with `require`, also that every
/// required field has a value. Returns every problem at once.
pub fn validate_fields(
    model: &OperatingModel,
    seam: &Seam,
    existing: &BTreeMap<String, String>,
    given: &[(String, String)],
    require: bool,
) -> Result<BTreeMap<String, String>, Vec<FieldError>> {
    let mut errors = given_twice(given);
    let mut fields = existing.clone();
    for (i, (name, raw)) in given.iter().enumerate() {
        if given[..i].iter().any(|(n, _)| n == name) {
            continue;
        }
        let kind = match seam.field(name) {
            Some(spec) => &spec.kind,
            None if name == SOURCE => &FieldType::Url,
            None => {
                let known: Vec<&str> = seam.contract.iter().map(|f| f.name.as_str()).collect();
                errors.push(FieldError {
                    field: name.clone(),
                    message: format!(
                        "{} has no field `{name}`; its fields: {} (and `{SOURCE}`, a link to where the work came from)",
                        seam.id,
                        known.join(", ")
                    ),
                });
                continue;
            }
        };
        let value = raw.trim();
        if value.is_empty() {
            fields.remove(name);
            continue;
        }
        let n = value.chars().count();
        if n > VALUE_MAX {
            let message = format!("at most {VALUE_MAX} characters (this one has {n}): link to the rest instead");
            errors.push(FieldError { field: name.clone(), message });
            continue;
        }
        match normalise(model, kind, value) {
            Ok(v) => {
                fields.insert(name.clone(), v);
            }
            Err(message) => errors.push(FieldError { field: name.clone(), message }),
        }
    }
    if require {
        for spec in seam.contract.iter().filter(|f| f.required) {
            let reported = errors.iter().any(|e| e.field == spec.name);
            if !fields.contains_key(&spec.name) && !reported {
                let help = spec.help.as_deref().map(|h| format!(" ({h})")).unwrap_or_default();
                let one_of = match &spec.kind {
                    FieldType::Choice(options) => format!(", one of {}", options.join(", ")),
                    _ => String::new(),
                };
                errors.push(FieldError {
                    field: spec.name.clone(),
                    message: format!("`{}` is required{help}: add {}=...{one_of}", spec.name, spec.name),
                });
            }
        }
    }
    if errors.is_empty() { Ok(fields) } else { Err(errors) }
}

fn normalise(model: &OperatingModel, kind: &FieldType, value: &str) -> Result<String, String> {
    match kind {
        FieldType::Text => Ok(value.to_string()),
        FieldType::Number => value
            .replace(['_', ','], "")
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(|n| n.to_string())
            .ok_or_else(|| format!("`{value}` is not a number")),
        FieldType::Date => NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(|d| d.to_string())
            .map_err(|_| format!("`{value}` is not a date: write YYYY-MM-DD, like 2026-12-01")),
        FieldType::Url => {
            let ok = (value.starts_with("https://") || value.starts_with("http://"))
                && value.len() > "https://".len()
                && !value.chars().any(char::is_whitespace);
            if ok { Ok(value.to_string()) } else { Err(format!("`{value}` is not a link: start it with https://")) }
        }
        FieldType::Choice(options) => options
            .iter()
            .find(|o| o.eq_ignore_ascii_case(value))
            .cloned()
            .ok_or_else(|| format!("`{value}` is not one of: {}", options.join(", "))),
        FieldType::Person => model.person_named(value).map(str::to_string).ok_or_else(|| {
            format!("there is no person `{}` in the operating model", value.trim().trim_start_matches('@'))
        }),
    }
}

/// The seams `actor` may hand off on (a member of the sending function), or every seam when
/// nobody is acting, each with what its contract needs and takes: `/handoff help new`.
pub fn seams_help(model: &OperatingModel, actor: Option<&str>) -> String {
    let may = |s: &&Seam| actor.is_none_or(|a| model.functions.get(&s.from).is_some_and(|f| f.has_member(a)));
    let seams: Vec<&Seam> = model.seams.values().filter(may).collect();
    if seams.is_empty() {
        let senders: Vec<String> = (model.seams.values())
            .map(|s| format!("{} on {}", model.functions.get(&s.from).map_or(s.from.as_str(), |f| &f.name), s.id))
            .collect();
        return format!("You hand off on no seam: the members of its sending function do ({}).", senders.join(", "));
    }
    let field = |f: &crate::model::FieldSpec| {
        let kind = match &f.kind {
            FieldType::Text => None,
            FieldType::Number => Some("a number".to_string()),
            FieldType::Date => Some("a date, YYYY-MM-DD".into()),
            FieldType::Url => Some("a link".into()),
            FieldType::Person => Some("a person".into()),
            FieldType::Choice(options) => Some(format!("one of {}", options.join(", "))),
        };
        let said: Vec<String> = kind.into_iter().chain(f.help.clone()).collect();
        match said.is_empty() {
            true => f.name.clone(),
            false => format!("{} ({})", f.name, said.join(": ")),
        }
    };
    let mut out = vec![match actor {
        Some(_) => "Seams you hand off on:".to_string(),
        None => "Seams:".to_string(),
    }];
    for s in seams {
        let name = |id: &str| model.functions.get(id).map_or(id.to_string(), |f| f.name.clone());
        let needs: Vec<String> = s.contract.iter().filter(|f| f.required).map(field).collect();
        let mut takes: Vec<String> = s.contract.iter().filter(|f| !f.required).map(field).collect();
        if s.field(SOURCE).is_none() {
            takes.push(format!("{SOURCE} (a link: where the work came from)"));
        }
        let mut line = format!("• {}: {} → {}, {}", s.id, name(&s.from), name(&s.to), s.tier);
        if !needs.is_empty() {
            line += &format!(". Needs {}", needs.join(", "));
        }
        line += &format!(". May take {}.", takes.join(", "));
        if !s.one_open_per.is_empty() {
            line += &format!(" One open at a time per {}.", s.one_open_per.join(" and "));
        }
        out.push(line);
    }
    out.join("\n")
}
