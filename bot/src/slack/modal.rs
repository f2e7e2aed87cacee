//! Modals: the new-handoff form (seam and title first, then the seam's contract with matching inputs), the
//! edit and resubmit forms (the same inputs, filled with what the handoff holds) and the short forms
//! behind the Return, Reject, Snooze and Post update buttons. Building and reading are pure.

use std::collections::BTreeMap;

use baton_core::Command;
use baton_core::config::parse_wall_duration;
use baton_core::contract::{SOURCE, TITLE_MAX, VALUE_MAX};
use baton_core::decide::Rejection;
use baton_core::handoff::Handoff;
use baton_core::model::{ArtifactType, FieldType, OperatingModel, Seam};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::blocks::truncate;
use super::payload::View;

/// `callback_id` of the new-handoff form.
pub const NEW_HANDOFF: &str = "handoff_new";
/// `callback_id` of the edit form.
pub const EDIT_HANDOFF: &str = "handoff_edit";
/// `callback_id` of the same form opened to answer a return.
pub const RESUBMIT_HANDOFF: &str = "handoff_resubmit";
/// `callback_id` of the reason forms.
pub const REASON: &str = "reason";
/// `action_id` of the seam picker (dispatches, so the form grows the seam's fields).
pub const SEAM_PICK: &str = "seam_pick";

/// Snooze lengths offered (wall-clock time, as the snooze command takes them).
pub const SNOOZE_CHOICES: [&str; 6] = ["1h", "2h", "4h", "1d", "3d", "7d"];

fn text(s: &str) -> Value {
    json!({"type": "plain_text", "text": truncate(s, 75)})
}

fn option(label: &str, value: &str) -> Value {
    json!({"text": text(label), "value": value})
}

/// `callback_id` of the form recording a recalibration's outcome (`private_metadata`:
/// `H-<n>:<playbook>`).
pub const RECORD: &str = "handoff_record";

/// Block id of a contract field's input.
pub fn field_block(name: &str) -> String {
    format!("field:{name}")
}

/// What a new-handoff form carries besides its inputs (as its private metadata): the seam picked
/// and where the work came from (the message it was handed off from).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// The seam, once picked (or the only one the person may hand off on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seam: Option<String>,
    /// A link to where the work came from, recorded as the handoff's `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The message it was handed off from (channel, ts), whose thread hears of the new handoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<(String, String)>,
}

impl Draft {
    /// Reads a form's private metadata (a bare seam id in forms opened by earlier versions).
    pub fn read(metadata: &str) -> Draft {
        match serde_json::from_str(metadata) {
            Ok(draft) => draft,
            Err(_) => Draft { seam: (!metadata.is_empty()).then(|| metadata.to_string()), ..Draft::default() },
        }
    }
}

/// The new-handoff form for `person`: the seam picker, where the work came from, the title
/// (`title` typed already, or taken from a message) and, once a seam is picked, its contract. A
/// person who may hand off on one seam only finds it picked.
pub fn new_handoff(model: &OperatingModel, person: &str, draft: &Draft, title: Option<&str>) -> Value {
    let theirs: Vec<&Seam> =
        model.seams.values().filter(|s| model.functions.get(&s.from).is_some_and(|f| f.has_member(person))).collect();
    let label = |s: &Seam| {
        let to = model.functions.get(&s.to).map_or(s.to.as_str(), |f| f.name.as_str());
        format!("{} → {to}", s.id)
    };
    let seams: Vec<Value> = theirs.iter().take(100).map(|s| option(&label(s), &s.id)).collect();
    let mut picker =
        json!({"type": "static_select", "action_id": SEAM_PICK, "placeholder": text("Pick a seam"), "options": seams});
    let only = match theirs.as_slice() {
        [one] => Some(*one),
        _ => None,
    };
    let chosen = draft.seam.as_deref().and_then(|id| model.seams.get(id)).or(only);
    if let Some(s) = chosen {
        picker["initial_option"] = option(&label(s), &s.id);
    }
    let mut blocks = vec![json!({
        "type": "input", "block_id": "seam", "dispatch_action": true, "label": text("Seam"), "element": picker,
        "hint": text("Where the work goes; the form then asks for that seam's contract."),
    })];
    if let Some(source) = &draft.source {
        let from = truncate(&format!("From: {source} (recorded as its source)"), 2000);
        blocks.push(json!({"type": "context", "elements": [{"type": "plain_text", "text": from}]}));
    }
    blocks.push(title_input(title));
    if let Some(s) = chosen {
        blocks.extend(field_inputs(model, s, None));
    }
    let draft = Draft { seam: chosen.map(|s| s.id.clone()), ..draft.clone() };
    let mut view = json!({
        "type": "modal", "callback_id": NEW_HANDOFF, "title": text("New handoff"),
        "close": text("Cancel"), "private_metadata": serde_json::to_string(&draft).unwrap_or_default(), "blocks": blocks,
    });
    if chosen.is_some() {
        view["submit"] = text("Hand off");
    }
    view
}

/// The title input, holding `initial` if given.
fn title_input(initial: Option<&str>) -> Value {
    let mut title = text_input("title", initial.filter(|t| !t.is_empty()), TITLE_MAX);
    title["placeholder"] = text("One line saying what is handed off");
    json!({"type": "input", "block_id": "title", "label": text("Title"), "element": title})
}

/// A one-line text input taking what the contract takes (`max` characters), holding `initial` if
/// given; a value stored before the limit may be longer: the input then takes all of it, up to
/// Slack's 3,000 (Slack refuses a form whose initial value is longer than its input takes).
fn text_input(action_id: &str, initial: Option<&str>, max: usize) -> Value {
    let mut input = json!({"type": "plain_text_input", "action_id": action_id, "max_length": max});
    if let Some(t) = initial {
        input["initial_value"] = json!(truncate(t, 3000));
        input["max_length"] = json!(t.chars().count().clamp(max, 3000));
    }
    input
}

/// The title and contract inputs of `seam`, holding what handoff `h` holds (a title typed as a
/// command may be longer than a form would take).
fn contract_inputs(model: &OperatingModel, seam: &Seam, h: &Handoff) -> Vec<Value> {
    let mut blocks = vec![title_input(Some(&h.title))];
    blocks.extend(field_inputs(model, seam, Some(h)));
    blocks
}

/// The contract inputs of `seam`; with `filled`, holding what that handoff holds.
fn field_inputs(model: &OperatingModel, seam: &Seam, filled: Option<&Handoff>) -> Vec<Value> {
    let mut blocks = Vec::new();
    for f in &seam.contract {
        let action_id = f.name.clone();
        let now = filled.and_then(|h| h.fields.get(&f.name)).map(String::as_str);
        let mut element = match &f.kind {
            FieldType::Text => text_input(&action_id, None, VALUE_MAX),
            FieldType::Number => json!({"type": "number_input", "action_id": action_id, "is_decimal_allowed": true}),
            FieldType::Date => json!({"type": "datepicker", "action_id": action_id}),
            FieldType::Url => json!({"type": "url_text_input", "action_id": action_id}),
            FieldType::Choice(options) => json!({"type": "static_select", "action_id": action_id,
                "options": options.iter().take(100).map(|o| option(o, o)).collect::<Vec<_>>()}),
            FieldType::Person => json!({"type": "users_select", "action_id": action_id}),
        };
        match (&f.kind, now) {
            (_, None) => {}
            (FieldType::Date, Some(v)) => element["initial_date"] = json!(v),
            // Slack refuses an initial option that is not among the options (a choice since removed).
            (FieldType::Choice(options), Some(v)) if options.iter().take(100).any(|o| o == v) => {
                element["initial_option"] = option(v, v);
            }
            (FieldType::Choice(_), Some(_)) => {}
            (FieldType::Person, Some(v)) => {
                if let Some(slack) = model.person(v).and_then(|p| p.slack.as_deref()) {
                    element["initial_user"] = json!(slack);
                }
            }
            (FieldType::Text, Some(v)) => element = text_input(&f.name, Some(v), VALUE_MAX),
            (_, Some(v)) => element["initial_value"] = json!(v),
        }
        let mut block = json!({"type": "input", "block_id": field_block(&f.name), "label": text(&f.name),
            "optional": !f.required, "element": element});
        if let Some(help) = &f.help {
            block["hint"] = text(help);
        }
        blocks.push(block);
    }
    blocks
}

/// The edit form of `h`: its title and contract, filled with what it holds, and a note to its owner.
pub fn edit_handoff(model: &OperatingModel, h: &Handoff) -> Value {
    let mut blocks = model.seams.get(&h.seam).map(|s| contract_inputs(model, s, h)).unwrap_or_default();
    blocks.push(note_input("Note to the owner", "Why it changed; the owner is told what changed either way."));
    json!({
        "type": "modal", "callback_id": EDIT_HANDOFF, "title": text(&format!("Edit {}", h.label())),
        "submit": text("Save"), "close": text("Cancel"), "private_metadata": format!("{}:{}", h.seam, h.label()),
        "blocks": blocks,
    })
}

/// The form answering a return of `h`: its contract, filled with what it holds (the title stays),
/// and what changed.
pub fn resubmit_handoff(model: &OperatingModel, h: &Handoff) -> Value {
    let mut blocks = model.seams.get(&h.seam).map(|s| contract_inputs(model, s, h)).unwrap_or_default();
    blocks.retain(|b| b["block_id"] != "title");
    let why = h.reason.as_deref().map_or_else(|| "What changed".to_string(), |r| format!("Returned because: {r}"));
    blocks.push(note_input("What changed", &why));
    json!({
        "type": "modal", "callback_id": RESUBMIT_HANDOFF, "title": text(&format!("Resubmit {}", h.label())),
        "submit": text("Resubmit"), "close": text("Cancel"), "private_metadata": format!("{}:{}", h.seam, h.label()),
        "blocks": blocks,
    })
}

/// The form recording the outcome of `h`'s open recalibration: one input per field of its
/// playbook's artifact, typed as the field is (the decisions and failure categories to pick from,
/// a person, a date, text), each with its help.
pub fn record_form(model: &OperatingModel, h: &Handoff) -> Result<Value, String> {
    let label = h.label();
    let rec = h
        .recalibration
        .as_ref()
        .ok_or_else(|| format!("✗ no recalibration is open on {label}; convene one with `/recalibrate {label}`"))?;
    let pb = model.playbooks.get(&rec.playbook).ok_or_else(|| format!("✗ playbook `{}` is gone", rec.playbook))?;
    let blocks: Vec<Value> = pb
        .artifact
        .iter()
        .map(|f| {
            let id = f.name.clone();
            let element = match &f.kind {
                ArtifactType::Choice(options) => json!({"type": "static_select", "action_id": id,
                    "options": options.iter().take(100).map(|o| option(o, o)).collect::<Vec<_>>()}),
                ArtifactType::Person => json!({"type": "users_select", "action_id": id}),
                ArtifactType::Date => json!({"type": "datepicker", "action_id": id}),
                ArtifactType::Text | ArtifactType::FollowUps => {
                    json!({"type": "plain_text_input", "action_id": id, "multiline": true, "max_length": VALUE_MAX})
                }
            };
            let mut block = json!({"type": "input", "block_id": field_block(&f.name), "label": text(&f.name.replace('_', " ")),
                "optional": !f.required, "element": element});
            if let Some(help) = &f.help {
                block["hint"] = text(help);
            }
            block
        })
        .collect();
    Ok(json!({
        "type": "modal", "callback_id": RECORD, "title": text(&format!("Record {label}")),
        "submit": text("Record"), "close": text("Cancel"), "private_metadata": format!("{label}:{}", pb.id),
        "blocks": blocks,
    }))
}

/// What a submitted record form holds, as `/handoff record` (a picked Slack user as the person
/// they are), or errors by block.
pub fn read_record(model: &OperatingModel, view: &View) -> Result<Command, BlockErrors> {
    let stale = || BTreeMap::from([(field_block("decision"), "This form is out of date; open it again.".to_string())]);
    let (label, playbook) = view.private_metadata.split_once(':').ok_or_else(stale)?;
    let id = baton_core::command::parse_id(label).ok_or_else(stale)?;
    let pb = model.playbooks.get(playbook).ok_or_else(stale)?;
    let inputs = pb.artifact.iter().map(|f| (f.name.as_str(), f.kind == ArtifactType::Person));
    let (fields, errors) = read_inputs(model, view, inputs, false);
    if errors.is_empty() { Ok(Command::Record { id, fields }) } else { Err(errors) }
}

/// A form that only says something (to someone who has no other way to be answered).
pub fn notice(title: &str, said: &str) -> Value {
    json!({"type": "modal", "title": text(title), "close": text("OK"), "blocks": [
        {"type": "section", "text": {"type": "plain_text", "text": truncate(said, 3000)}}]})
}

fn note_input(label: &str, hint: &str) -> Value {
    json!({"type": "input", "block_id": "note", "label": text(label), "optional": true,
        "element": {"type": "plain_text_input", "action_id": "note", "multiline": true, "max_length": 500},
        "hint": text(hint)})
}

/// What a submitted edit or resubmit form holds, as the command it stands for (every input: one
/// left empty removes its field), or errors by block.
pub fn read_edit(model: &OperatingModel, view: &View) -> Result<Command, BlockErrors> {
    let resubmit = view.callback_id == RESUBMIT_HANDOFF;
    let first = if resubmit { "note" } else { "title" };
    let stale = || BTreeMap::from([(first.to_string(), "This form is out of date; open it again.".to_string())]);
    let (seam, label) = view.private_metadata.rsplit_once(':').ok_or_else(stale)?;
    let id = baton_core::command::parse_id(label).ok_or_else(stale)?;
    let seam = model.seams.get(seam).ok_or_else(stale)?;
    let (fields, errors) = read_fields(model, seam, view, true);
    if !errors.is_empty() {
        return Err(errors);
    }
    let note = view.value("note");
    Ok(match resubmit {
        true => Command::Resubmit { id, fields, note },
        false => Command::Edit { id, title: Some(view.value("title").unwrap_or_default()), fields, note },
    })
}

/// The contract fields a form holds (Slack users mapped to configured people); with `empty`, the
/// inputs left empty too, as empty values.
fn read_fields(model: &OperatingModel, seam: &Seam, view: &View, empty: bool) -> (Vec<(String, String)>, BlockErrors) {
    let inputs = seam.contract.iter().map(|f| (f.name.as_str(), f.kind == FieldType::Person));
    read_inputs(model, view, inputs, empty)
}

/// What the inputs named in `inputs` (each with whether it picks a person) hold, a picked Slack
/// user read as the person they are; with `empty`, the inputs left empty too, as empty values.
fn read_inputs<'a>(
    model: &OperatingModel,
    view: &View,
    inputs: impl Iterator<Item = (&'a str, bool)>,
    empty: bool,
) -> (Vec<(String, String)>, BlockErrors) {
    let mut errors = BTreeMap::new();
    let mut fields = Vec::new();
    for (name, picks_person) in inputs {
        let block = field_block(name);
        match (view.value(&block), picks_person) {
            (None, _) if empty => fields.push((name.to_string(), String::new())),
            (None, _) => {}
            (Some(user), true) => match person_of(model, &user) {
                Ok(p) => fields.push((name.to_string(), p)),
                Err(e) => {
                    errors.insert(block, e);
                }
            },
            (Some(v), false) => fields.push((name.to_string(), v)),
        }
    }
    (fields, errors)
}

/// The configured person a Slack user picked in a form is, or what to say under the input.
fn person_of(model: &OperatingModel, slack_user: &str) -> Result<String, String> {
    model
        .by_slack(slack_user)
        .map(|p| p.id.clone())
        .ok_or_else(|| "That Slack user is not in Baton's operating model.".into())
}

/// Inline errors by block id, as `response_action: errors` takes them.
pub type BlockErrors = BTreeMap<String, String>;

/// What a submitted new-handoff form holds, as the command it stands for (person fields mapped
/// from Slack user to configured person), or errors by block.
pub fn read_new_handoff(model: &OperatingModel, view: &View) -> Result<Command, BlockErrors> {
    let draft = Draft::read(&view.private_metadata);
    let seam_id = view.value("seam").or(draft.seam);
    let Some(seam) = seam_id.as_deref().and_then(|id| model.seams.get(id)) else {
        return Err(BTreeMap::from([("seam".into(), "Pick the seam to hand off on.".into())]));
    };
    let title = view.value("title").unwrap_or_default();
    let (mut fields, errors) = read_fields(model, seam, view, false);
    if let Some(source) = draft.source.filter(|_| !fields.iter().any(|(k, _)| k == SOURCE)) {
        fields.push((SOURCE.to_string(), source));
    }
    if errors.is_empty() { Ok(Command::New { seam: seam.id.clone(), title, fields }) } else { Err(errors) }
}

/// Inline errors for a refused form (a new handoff, an edit, a recorded outcome): each field
/// problem under its input, anything else under block `other` (the seam picker, the title).
pub fn errors_for(rejection: &Rejection, other: &str) -> BlockErrors {
    let mut errors = BTreeMap::new();
    match rejection {
        Rejection::InvalidFields(list) | Rejection::InvalidArtifact(list) | Rejection::InvisibleCharacter(list) => {
            for e in list {
                let block = match e.field.as_str() {
                    "title" | "note" => e.field.clone(),
                    field => field_block(field),
                };
                errors.entry(block).or_insert_with(|| truncate(&e.message, 150));
            }
        }
        Rejection::AlreadyOpen { existing, fields, .. } => {
            let block = fields.first().map_or(other.to_string(), |f| field_block(f));
            let message = format!(
                "H-{existing} is open with this {}: add to it (`/handoff comment H-{existing} …`), or have it cancelled first.",
                fields.join(" and ")
            );
            errors.insert(block, truncate(&message, 150));
        }
        rejection => {
            errors.insert(other.into(), truncate(&rejection.to_string(), 150));
        }
    }
    errors
}

/// The form behind Return, Reject, Snooze and Post update: a reason or the progress made (and for
/// Snooze, how long).
pub fn reason(kind: &str, handoff: u64) -> Value {
    const WHY: (&str, &str) = ("Reason", "The other side sees this, so say what they should do.");
    let (title, submit, (label, hint)) = match kind {
        "return" => ("Return to requester", "Return", WHY),
        "reject" => ("Reject at the gate", "Reject", WHY),
        "update" => ("Post update", "Post", ("Progress", "The requester sees this; it restarts the update clock.")),
        _ => ("Snooze", "Snooze", WHY),
    };
    let mut blocks = Vec::new();
    if kind == "snooze" {
        blocks.push(json!({"type": "input", "block_id": "duration", "label": text("For how long"),
            "element": {"type": "static_select", "action_id": "duration",
                "options": SNOOZE_CHOICES.iter().map(|c| option(c, c)).collect::<Vec<_>>()}}));
    }
    blocks.push(json!({"type": "input", "block_id": "reason", "label": text(label),
        "element": {"type": "plain_text_input", "action_id": "reason", "multiline": true, "max_length": 500},
        "hint": text(hint)}));
    json!({"type": "modal", "callback_id": REASON, "title": text(title), "submit": text(submit), "close": text("Cancel"),
        "private_metadata": format!("{kind}:H-{handoff}"), "blocks": blocks})
}

/// The command a submitted reason form stands for, or errors by block.
pub fn read_reason(view: &View) -> Result<Command, BlockErrors> {
    let stale = || {
        BTreeMap::from([("reason".to_string(), "This form is out of date; use the card's buttons again.".to_string())])
    };
    let (kind, label) = view.private_metadata.split_once(':').ok_or_else(stale)?;
    let id = baton_core::command::parse_id(label).ok_or_else(stale)?;
    let mut errors = BTreeMap::new();
    let reason = view.value("reason").unwrap_or_default();
    if reason.is_empty() {
        let ask = if kind == "update" {
            "Say what progress was made."
        } else {
            "Give a reason, so the other side knows what to do."
        };
        errors.insert("reason".to_string(), ask.to_string());
    }
    let duration =
        view.value("duration").filter(|d| SNOOZE_CHOICES.contains(&d.as_str())).and_then(|d| parse_wall_duration(&d));
    if kind == "snooze" && duration.is_none() {
        errors.insert("duration".to_string(), "Pick how long to snooze.".to_string());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    match (kind, duration) {
        ("snooze", Some(duration)) => Ok(Command::Snooze { id, duration, reason }),
        ("return", _) => Ok(Command::Return { id, reason }),
        ("reject", _) => Ok(Command::Reject { id, reason }),
        ("update", _) => Ok(Command::Update { id, note: reason, fields: Vec::new() }),
        _ => Err(stale()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submitted(duration: &str) -> View {
        serde_json::from_value(json!({
            "id": "V1", "callback_id": REASON, "private_metadata": "snooze:H-4",
            "state": {"values": {
                "duration": {"duration": {"type": "static_select", "selected_option": {"value": duration}}},
                "reason": {"reason": {"type": "plain_text_input", "value": "on leave"}},
            }},
        }))
        .expect("a view")
    }

    #[test]
    fn the_snooze_form_offers_wall_clock_lengths_and_reads_only_those() {
        let form = reason("snooze", 4);
        let offered: Vec<&str> = form["blocks"][0]["element"]["options"]
            .as_array()
            .expect("options")
            .iter()
            .filter_map(|o| o["value"].as_str())
            .collect();
        assert_eq!(offered, SNOOZE_CHOICES);
        assert_eq!(
            read_reason(&submitted("1d")),
            Ok(Command::Snooze { id: 4, duration: chrono::Duration::hours(24), reason: "on leave".into() })
        );
        // A length the form never offered (a forged or outdated submission) is asked for again.
        let errors = read_reason(&submitted("30d")).expect_err("not offered");
        assert_eq!(errors.get("duration").map(String::as_str), Some("Pick how long to snooze."));
    }
}
