//! Block Kit rendering of platform-neutral intents, with Slack's escaping and size limits.

use baton_core::{Action, HandoffId, Intent, IntentKind};
use serde_json::{Value, json};

/// Slack's limit on a section block's text.
pub const SECTION_MAX: usize = 3000;
/// Slack's limit on a message's fallback `text`.
const TEXT_MAX: usize = 4000;
/// Slack's limit on blocks per message.
const BLOCKS_MAX: usize = 50;
/// Appended where text was cut to fit a limit.
const TRUNCATED: &str = "… (truncated)";

/// Escapes text for mrkdwn: `&`, `<` and `>` become entities, so no `<!channel>`, `<!here>`,
/// `<@U…>` or `<!subteam^…>` can be formed from handoff fields. Commands are written as Slack
/// users type them (see [`slack_spelling`]).
pub fn escape(text: &str) -> String {
    slack_spelling(text).replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Baton's commands as typed in Slack. `/away` is one of Slack's own commands, which an app cannot
/// take, so there it is `/handoff away`; the others are the app's own (see the manifest).
fn slack_spelling(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("/away") {
        let before = rest[..at].chars().next_back();
        let after = rest[at + "/away".len()..].chars().next();
        let starts = before.is_none_or(|c| c.is_whitespace() || c == '`');
        let ends = after.is_none_or(|c| c.is_whitespace() || c == '`');
        out.push_str(&rest[..at]);
        out.push_str(if starts && ends { "/handoff away" } else { "/away" });
        rest = &rest[at + "/away".len()..];
    }
    out.push_str(rest);
    out
}

/// Cuts `text` to at most `max` characters, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(TRUNCATED.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(TRUNCATED);
    out
}

/// Cuts a multi-line answer to at most `max` characters at a line boundary, and says how many
/// lines were left out (a line longer than the room left is cut as [`truncate`] does).
pub fn fit_lines(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = String::new();
    for (i, line) in lines.iter().enumerate() {
        let note = format!("\n… {} more lines not shown (a narrower request shows them)", lines.len() - i);
        if kept.chars().count() + line.chars().count() + 1 + note.chars().count() > max {
            if kept.is_empty() {
                return truncate(text, max);
            }
            kept.push_str(&note);
            return kept;
        }
        if !kept.is_empty() {
            kept.push('\n');
        }
        kept.push_str(line);
    }
    kept
}

/// Button label and `action_id`.
pub fn button(a: Action) -> (&'static str, &'static str) {
    match a {
        Action::Accept => ("Accept", "accept"),
        Action::Ack => ("Acknowledge", "ack"),
        Action::Update => ("Post update", "update"),
        Action::Done => ("Mark done", "done"),
        Action::Snooze => ("Snooze", "snooze"),
        Action::Return => ("Return to requester", "return"),
        Action::Approve => ("Approve", "approve"),
        Action::Reject => ("Reject", "reject"),
        Action::Blocked => ("I'm blocked", "blocked"),
        Action::Resubmit => ("Resubmit", "resubmit"),
        Action::Watch => ("Watch", "watch"),
        Action::Unwatch => ("Stop watching", "unwatch"),
        Action::Record => ("Record outcome", "record"),
    }
}

/// An actions block `block_id` with a button for each of `actions` on handoff `h`.
pub fn buttons(h: HandoffId, actions: &[Action], block_id: &str) -> Value {
    let elements: Vec<Value> = actions
        .iter()
        .map(|a| {
            let (label, id) = button(*a);
            let mut b = json!({"type": "button", "action_id": id, "value": format!("H-{h}"),
                "text": {"type": "plain_text", "text": label}});
            match a {
                Action::Accept | Action::Approve => b["style"] = json!("primary"),
                Action::Reject | Action::Blocked => b["style"] = json!("danger"),
                // Handing work to the gate cannot be taken back: Slack asks first.
                Action::Done => {
                    b["confirm"] = json!({
                        "title": {"type": "plain_text", "text": format!("Mark H-{h} done?")},
                        "text": {"type": "plain_text", "text": "It goes to its validation gate (the automated \
                            reviewer or its approvers) and can no longer be updated there."},
                        "confirm": {"type": "plain_text", "text": "Mark done"},
                        "deny": {"type": "plain_text", "text": "Not yet"}})
                }
                _ => {}
            }
            b
        })
        .collect();
    json!({"type": "actions", "block_id": block_id, "elements": elements})
}

/// The `chat.postMessage` / `chat.update` body (without `channel`) for an intent. `mentions`
/// are Slack user ids to ping (a recalibration's participants): only Baton adds mention tokens;
/// anything in the text is escaped.
pub fn message(intent: &Intent, mentions: &[String]) -> Value {
    let ping: String =
        mentions.iter().filter(|u| u.chars().all(|c| c.is_ascii_alphanumeric())).map(|u| format!("<@{u}> ")).collect();
    let text = format!("{ping}{}", escape(&intent.text));
    let mut blocks = Vec::new();
    if let IntentKind::Recalibration { playbook } = &intent.kind {
        let title = format!("Recalibration: {}", escape(playbook));
        blocks.push(json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&title, 150)}}));
    }
    // Long text is split over several sections rather than lost.
    let chars: Vec<char> = text.chars().collect();
    for chunk in chars.chunks(SECTION_MAX - TRUNCATED.len()) {
        if blocks.len() + 2 >= BLOCKS_MAX {
            blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": TRUNCATED}]}));
            break;
        }
        let s: String = chunk.iter().collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": s}}));
    }
    if !intent.actions.is_empty()
        && let Some(h) = intent.handoff
    {
        blocks.push(buttons(h, &intent.actions, &format!("handoff:{h}")));
    }
    json!({"text": truncate(&text, TEXT_MAX), "blocks": blocks, "unfurl_links": false, "unfurl_media": false})
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::Recipient;

    #[test]
    fn away_is_written_as_slack_users_type_it() {
        assert_eq!(
            escape("Going away? `/away until YYYY-MM-DD [reason]`. /away back · /away"),
            "Going away? `/handoff away until YYYY-MM-DD [reason]`. /handoff away back · /handoff away"
        );
        assert_eq!(escape("see https://x.example/away /awayday a/away"), "see https://x.example/away /awayday a/away");
    }

    #[test]
    fn long_answers_are_cut_at_a_line_and_say_what_was_left_out() {
        let text: String = (1..=100).map(|i| format!("line {i:03} of the report\n")).collect();
        let fitted = super::fit_lines(&text, 500);
        assert!(fitted.chars().count() <= 500, "{}", fitted.len());
        assert!(fitted.starts_with("line 001 of the report\nline 002"));
        let last = fitted.lines().last().expect("a note");
        assert!(last.starts_with("… ") && last.contains("more lines not shown"), "{last}");
        let shown = fitted.lines().count() - 1;
        assert!(last.starts_with(&format!("… {} more lines", 100 - shown)), "{last}");
        assert_eq!(super::fit_lines("short", 500), "short");
    }

    fn intent(text: &str) -> Intent {
        Intent {
            to: Recipient::SlackChannel("#x".into()),
            handoff: Some(7),
            kind: IntentKind::Card,
            text: text.into(),
            actions: vec![Action::Accept],
            not_before: None,
            mentions: Vec::new(),
            image: None,
        }
    }

    #[test]
    fn user_text_cannot_form_mentions_or_links() {
        let m = message(&intent("<!channel> <!here|here> <@U123> <!subteam^S1> a & b"), &[]);
        let body = m.to_string();
        for bad in ["<!channel>", "<!here", "<@U123>", "<!subteam^"] {
            assert!(!body.contains(bad), "{bad} survived: {body}");
        }
        assert!(body.contains("&lt;!channel&gt;"));
        assert!(body.contains("a &amp; b"));
    }

    #[test]
    fn long_text_is_split_and_limits_are_respected() {
        let m = message(&intent(&"x".repeat(200_000)), &[]);
        let blocks = m["blocks"].as_array().expect("blocks");
        assert!(blocks.len() <= BLOCKS_MAX);
        assert!(m["text"].as_str().expect("text").chars().count() <= TEXT_MAX);
        assert!(m["text"].as_str().expect("text").ends_with(TRUNCATED));
        for b in blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.chars().count() <= SECTION_MAX);
            }
        }
        assert_eq!(blocks.last().expect("last")["type"], "actions", "buttons survive truncation");
    }
}
