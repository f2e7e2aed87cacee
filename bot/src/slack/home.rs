//! Baton's App Home tab: a person's plate (what `/handoff mine` answers), each handoff with the
//! buttons this person may press, and a button that opens the new-handoff form. It is published
//! whenever the person opens the tab, again after they act from it, and, for [`WATCH`] after they
//! opened it, whenever what it shows changes ([`Watched`]).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::sync::{Arc, Mutex};

use baton_core::plate::{EMPTY, Plate};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::blocks::{SECTION_MAX, buttons, escape, truncate};

/// The button that opens the new-handoff form.
pub const NEW: &str = "home_new";
/// The button that publishes the tab again.
pub const REFRESH: &str = "home_refresh";
/// Slack's limit on blocks in a Home tab.
const BLOCKS_MAX: usize = 100;

/// A section block of escaped mrkdwn, cut to Slack's limit.
fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&escape(text), SECTION_MAX)}})
}

/// The tab's first blocks: title, buttons, and when it was drawn (shown in the reader's own zone).
fn top(now: DateTime<Utc>) -> Vec<Value> {
    let when = format!(
        "<!date^{}^Updated {{date_short_pretty}} at {{time}}|Updated {} UTC>",
        now.timestamp(),
        now.format("%Y-%m-%d %H:%M")
    );
    vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": "Your handoffs"}}),
        json!({"type": "actions", "block_id": "home", "elements": [
            {"type": "button", "action_id": NEW, "style": "primary", "text": {"type": "plain_text", "text": "Hand off work"}},
            {"type": "button", "action_id": REFRESH, "text": {"type": "plain_text", "text": "Refresh"}},
        ]}),
        json!({"type": "context", "elements": [{"type": "mrkdwn",
            "text": format!("{when} · `/handoff help` lists every command")}]}),
    ]
}

/// The Home tab for `plate` at `now`. Past Slack's 100 blocks, the handoffs left out are counted
/// and `/handoff mine` named, which lists them all.
pub fn view(plate: &Plate, now: DateTime<Utc>) -> Value {
    let mut blocks = top(now);
    blocks.extend(plate.notes.iter().map(|n| section(n)));
    if plate.is_empty() {
        blocks.push(section(EMPTY));
    }
    let mut left_out = 0;
    for s in &plate.sections {
        for (n, item) in s.items.iter().enumerate() {
            // The item, its buttons, the section's heading before its first, and room for the
            // closing count.
            let needs = 1 + usize::from(!item.actions.is_empty()) + usize::from(n == 0) + 1;
            if left_out > 0 || blocks.len() + needs > BLOCKS_MAX {
                left_out += 1;
                continue;
            }
            if n == 0 {
                blocks.push(json!({"type": "divider"}));
                blocks.push(section(&format!("*{}*", s.heading)));
            }
            blocks.push(section(&item.line));
            if !item.actions.is_empty() {
                blocks.push(buttons(item.id, &item.actions, &format!("home:{}", item.id)));
            }
        }
    }
    if left_out > 0 {
        let more = format!("… {left_out} more not shown: `/handoff mine` lists them all.");
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(&more)}]}));
    }
    json!({"type": "home", "blocks": blocks})
}

/// How long after someone opens their Home tab it is drawn again as what it shows changes.
pub const WATCH: chrono::Duration = chrono::Duration::hours(8);
/// How often `baton serve` checks the tabs it watches for change.
pub const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Home tabs opened lately, by Slack user, with what each last showed: `baton serve` draws a
/// watched tab again when its plate changes (another person took a handoff, a stall opened), so
/// that an open tab does not offer buttons that no longer apply.
#[derive(Clone, Debug, Default)]
pub struct Watched(Arc<Mutex<HashMap<String, Seen>>>);

#[derive(Clone, Copy, Debug)]
struct Seen {
    opened: DateTime<Utc>,
    drawn: Option<u64>,
}

impl Watched {
    /// `user` opened their tab (or asked for it again) at `now`.
    pub fn opened(&self, user: &str, now: DateTime<Utc>) {
        if let Ok(mut seen) = self.0.lock() {
            seen.entry(user.to_string()).and_modify(|s| s.opened = now).or_insert(Seen { opened: now, drawn: None });
        }
    }

    /// `user`'s tab was published showing what `fingerprint` says.
    pub fn drawn(&self, user: &str, fingerprint: u64) {
        if let Ok(mut seen) = self.0.lock()
            && let Some(s) = seen.get_mut(user)
        {
            s.drawn = Some(fingerprint);
        }
    }

    /// The tabs watched at `now`, each with what it last showed; those opened longer than
    /// [`WATCH`] ago are forgotten.
    pub fn watched(&self, now: DateTime<Utc>) -> Vec<(String, Option<u64>)> {
        let Ok(mut seen) = self.0.lock() else { return Vec::new() };
        seen.retain(|_, s| now - s.opened < WATCH);
        seen.iter().map(|(user, s)| (user.clone(), s.drawn)).collect()
    }
}

/// What a plate's tab shows, whenever it is drawn: equal for plates that would look the same.
pub fn fingerprint(plate: &Plate) -> u64 {
    let mut hasher = DefaultHasher::new();
    view(plate, DateTime::UNIX_EPOCH).to_string().hash(&mut hasher);
    hasher.finish()
}

/// The Home tab for someone Baton cannot act for (not in the model), saying why.
pub fn notice(text: &str, now: DateTime<Utc>) -> Value {
    let mut blocks = top(now);
    blocks.truncate(1);
    blocks.push(section(text));
    json!({"type": "home", "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use baton_core::Action;
    use baton_core::plate::{Item, Section};

    use super::*;

    fn plate(items: usize) -> Plate {
        let item = |id| Item { id, line: format!("H-{id} · <!channel> title"), actions: vec![Action::Accept] };
        Plate {
            notes: vec!["You are away through Fri 04 Dec (`/away back` when you return).".into()],
            sections: vec![Section {
                heading: "In your team's queue:".into(),
                items: (1..=items as u64).map(item).collect(),
            }],
        }
    }

    #[test]
    fn the_home_tab_holds_each_handoff_with_its_buttons_and_counts_what_does_not_fit() {
        let now = Utc::now();
        let small = view(&plate(2), now);
        let body = small.to_string();
        assert_eq!(small["type"], "home");
        assert!(body.contains("/handoff away back"), "commands as Slack users type them: {body}");
        assert!(!body.contains("<!channel>"), "text is escaped: {body}");
        let accepts: Vec<&Value> = small["blocks"]
            .as_array()
            .expect("blocks")
            .iter()
            .filter_map(|b| b["elements"].as_array())
            .flatten()
            .filter(|e| e["action_id"] == "accept")
            .collect();
        assert_eq!(accepts.iter().map(|e| e["value"].clone()).collect::<Vec<_>>(), [json!("H-1"), json!("H-2")]);

        let big = view(&plate(80), now);
        let blocks = big["blocks"].as_array().expect("blocks");
        assert!(blocks.len() <= BLOCKS_MAX, "{}", blocks.len());
        let shown = blocks.iter().filter(|b| b["block_id"].as_str().is_some_and(|id| id.starts_with("home:"))).count();
        let last = blocks.last().expect("a last block")["elements"][0]["text"].as_str().expect("the count");
        assert_eq!(last, format!("… {} more not shown: `/handoff mine` lists them all.", 80 - shown));
        assert!(shown > 40, "{shown}");
    }
}
