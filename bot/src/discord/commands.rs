//! The slash commands `baton discord register` installs.

use baton_core::OperatingModel;
use serde_json::{Value, json};

/// `/stalls`: the view, then the same filters as `/stalls` in Slack.
fn stalls_options(model: &OperatingModel) -> Value {
    let choices = |names: Vec<&String>| -> Vec<Value> {
        names.into_iter().take(25).map(|n| json!({"name": n, "value": n})).collect()
    };
    let text =
        |name: &str, description: &str| json!({"type": 3, "name": name, "description": description, "required": false});
    json!([
        {"type": 3, "name": "view", "description": "What to show (default: summary)", "required": false, "choices": [
            {"name": "summary", "value": "summary"}, {"name": "health", "value": "health"}, {"name": "chart", "value": "chart"}]},
        {"type": 3, "name": "seam", "description": "One seam", "required": false, "choices": choices(model.seams.keys().collect())},
        {"type": 3, "name": "function", "description": "Seams from or to one function", "required": false,
         "choices": choices(model.functions.keys().collect())},
        {"type": 3, "name": "category", "description": "Failure category recorded", "required": false,
         "choices": choices(model.categories.iter().collect())},
        text("owner", "Owner: a Baton id or an @mention"),
        {"type": 3, "name": "tier", "description": "Risk tier", "required": false, "choices": [
            {"name": "reversible", "value": "reversible"}, {"name": "irreversible", "value": "irreversible"},
            {"name": "high-stakes", "value": "high-stakes"}]},
        text("window", "Window, like 90d or 12w (default 90d)"),
    ])
}

/// Command definitions for Discord's bulk-overwrite endpoint.
pub fn definitions(model: &OperatingModel) -> Value {
    let handoff = |required: bool| {
        json!({"type": 3, "name": "handoff", "description": "The handoff, like H-12", "required": required,
               "min_length": 3, "max_length": 20})
    };
    let functions: Vec<Value> = model.functions.keys().take(25).map(|f| json!({"name": f, "value": f})).collect();
    // Discord lists at most 25 choices; with more seams, the seam is typed.
    let mut seam = json!({"type": 3, "name": "seam", "description": "The seam, from your function to another",
                          "required": true});
    match model.seams.len() {
        ..=25 => seam["choices"] = model.seams.keys().map(|s| json!({"name": s, "value": s})).collect(),
        _ => seam["max_length"] = json!(100),
    }
    let playbooks: Vec<Value> =
        model.playbooks.values().take(25).map(|p| json!({"name": p.title, "value": p.id})).collect();
    json!([
        {"name": "ack", "type": 1, "description": "Acknowledge an escalated handoff", "options": [handoff(true)]},
        {"name": "escalations", "type": 1, "description": "What is escalated to you or your functions"},
        {"name": "handoff", "type": 1, "description": "Handoffs", "options": [
            {"type": 1, "name": "show", "description": "Show a handoff's card", "options": [handoff(true)]},
            {"type": 1, "name": "log", "description": "What happened to a handoff: who did what, and when",
             "options": [handoff(true)]},
            {"type": 1, "name": "mine", "description": "What is on your plate: yours, your team's queue, your approvals"},
            {"type": 1, "name": "new", "description": "Hand work off on a seam; its contract is checked", "options": [
                seam,
                {"type": 3, "name": "title", "description": "One line saying what is handed off", "required": true,
                 "max_length": 200},
                {"type": 3, "name": "fields", "description": "The contract, like service=edge runbook=https://…",
                 "required": false, "max_length": 4000}]},
            {"type": 1, "name": "accept", "description": "Take ownership of a handoff", "options": [handoff(true)]},
            {"type": 1, "name": "reassign", "description": "Give a handoff to another member, who must accept it",
             "options": [handoff(true), {"type": 6, "name": "to", "description": "The new owner", "required": true}]},
            {"type": 1, "name": "edit", "description": "Correct a handoff you handed off (its owner is told)",
             "options": [handoff(true), {"type": 3, "name": "text", "required": true, "max_length": 4000,
                                         "description": "Changes, like arr=125000 title=\"Acme 2027\", then why"}]},
            {"type": 1, "name": "cancel", "description": "Call off a handoff you handed off",
             "options": [handoff(true), {"type": 3, "name": "text", "required": true, "max_length": 1000,
                                         "description": "Why it is no longer needed"}]},
            {"type": 1, "name": "update", "description": "Post progress on a handoff you own (restarts its update clock)",
             "options": [handoff(true), {"type": 3, "name": "text", "required": true, "max_length": 2000,
                                         "description": "The progress made; field=value words change its fields"}]},
            {"type": 1, "name": "done", "description": "Submit a handoff you own as done: it goes to its gate",
             "options": [handoff(true)]},
            {"type": 1, "name": "return", "description": "Send a handoff back to its requester",
             "options": [handoff(true), {"type": 3, "name": "text", "required": true, "max_length": 1000,
                                         "description": "What is missing or wrong, so they can fix it"}]},
            {"type": 1, "name": "snooze", "description": "Pause a handoff's clocks and ladder for a while",
             "options": [handoff(true),
                {"type": 3, "name": "for", "description": "How long, like 2h, 30m or 1d", "required": true,
                 "max_length": 10},
                {"type": 3, "name": "reason", "description": "Why it can wait", "required": true, "max_length": 500}]},
            {"type": 1, "name": "watch", "description": "Be told as a handoff moves", "options": [handoff(true)]},
            {"type": 1, "name": "comment", "description": "Tell its requester, owner and watchers something",
             "options": [handoff(true), {"type": 3, "name": "text", "description": "What to tell them",
                                         "required": true, "max_length": 2000}]},
            {"type": 1, "name": "unwatch", "description": "No longer be told as a handoff moves",
             "options": [handoff(true)]},
            {"type": 1, "name": "find", "description": "Handoffs by words in their title or fields, open then closed", "options": [
                {"type": 3, "name": "words", "description": "Words to look for, like acme renewal", "required": true,
                 "max_length": 200}]},
            {"type": 1, "name": "team", "description": "A function's open handoffs, received and sent", "options": [
                {"type": 3, "name": "function", "description": "The function (default: yours)", "required": false,
                 "choices": functions}]},
            {"type": 1, "name": "record", "description": "Record a recalibration's outcome", "options": [handoff(true),
                {"type": 3, "name": "artifact", "required": true, "max_length": 2000,
                 "description": "decision=... assumption_broke=\"...\" category=... [field=value ...]"}]}]},
        {"name": "away", "type": 1, "description": "Say you are away (stall reminders for you go to your lead) or back",
         "options": [
            {"type": 3, "name": "until", "description": "Your last day away, like 2026-12-04; or `back`", "required": false,
             "max_length": 10},
            {"type": 3, "name": "reason", "description": "Why (holiday, leave)", "required": false, "max_length": 200},
            {"type": 6, "name": "cover", "description": "For a lead: who stands in as lead meanwhile",
             "required": false}]},
        {"name": "stalls", "type": 1, "description": "Stall history, the operating-model health report, or a chart",
         "options": stalls_options(model)},
        {"name": "recalibrate", "type": 1, "description": "Convene a recalibration on a handoff", "options": [
            handoff(true),
            {"type": 3, "name": "playbook", "description": "Playbook (default: the seam's)", "required": false,
             "choices": playbooks}]},
        {"name": "baton", "type": 1, "description": "Baton account settings", "options": [
            {"type": 1, "name": "link", "description": "Link this Discord account to your Baton identity", "options": [
                {"type": 3, "name": "person", "description": "Your Baton id (step 1)", "required": false},
                {"type": 3, "name": "code", "description": "The code Baton sent you in Slack (step 2)", "required": false}]}]},
    ])
}
