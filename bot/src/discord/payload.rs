//! Discord interaction payloads, reduced to what Baton uses. Parsed into Baton's own types:
//! serenity's models refuse payloads that lack fields Discord does not always send (`locale`,
//! `entitlements`, …). Every parser returns a clear refusal and never panics (property-tested).

use serde::Deserialize;
use serde_json::Value;

/// An interaction, as far as Baton reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Interaction {
    /// Interaction id (for the callback URL).
    pub id: String,
    /// Continuation token (15 minutes).
    pub token: String,
    /// What happened.
    pub kind: Kind,
    /// The Discord user, from `member.user` (guild) or `user` (DM); `None` for a PING.
    pub user: Option<String>,
    /// Where.
    pub channel_id: Option<String>,
    /// For a button: the message it is on, as the user saw it (id and last edit), so a double
    /// click acts once.
    pub message_stamp: Option<String>,
}

/// What kind of interaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// Discord checking the endpoint.
    Ping,
    /// A slash command: its name and its options flattened (`show` subcommand → `("sub", "show")`).
    Command {
        /// `ack`, `handoff`, `baton`, …
        name: String,
        /// Option name → value, subcommand as `sub`.
        options: Vec<(String, String)>,
    },
    /// A button: its `custom_id` (`ack:H-12`).
    Component {
        /// `action:H-<n>`.
        custom_id: String,
    },
    /// A modal was submitted: its `custom_id` and text inputs.
    ModalSubmit {
        /// `snooze:H-12`.
        custom_id: String,
        /// Input id → value.
        values: Vec<(String, String)>,
    },
    /// Anything else (autocomplete, …): answered with a refusal.
    Other(u64),
}

#[derive(Deserialize)]
struct Raw {
    id: String,
    token: String,
    #[serde(rename = "type")]
    kind: u64,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    member: Option<Value>,
    #[serde(default)]
    user: Option<Value>,
    #[serde(default)]
    channel_id: Option<String>,
    #[serde(default)]
    message: Option<Value>,
}

/// Parses an interaction body.
pub fn parse(body: &[u8]) -> Result<Interaction, String> {
    let raw: Raw = serde_json::from_slice(body).map_err(|e| format!("not a Discord interaction: {e}"))?;
    let user = raw
        .member
        .as_ref()
        .and_then(|m| m["user"]["id"].as_str())
        .or_else(|| raw.user.as_ref().and_then(|u| u["id"].as_str()))
        .map(str::to_string);
    let data = raw.data.unwrap_or(Value::Null);
    let kind = match raw.kind {
        1 => Kind::Ping,
        2 => {
            let name = data["name"].as_str().ok_or("the command has no name")?.to_string();
            let mut options = Vec::new();
            flatten(&data["options"], &mut options);
            Kind::Command { name, options }
        }
        3 => Kind::Component { custom_id: data["custom_id"].as_str().ok_or("the component has no custom_id")?.into() },
        5 => {
            let custom_id = data["custom_id"].as_str().ok_or("the modal has no custom_id")?.to_string();
            let values = data["components"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|row| row["components"].as_array())
                .flatten()
                .filter_map(|c| Some((c["custom_id"].as_str()?.to_string(), c["value"].as_str()?.to_string())))
                .collect();
            Kind::ModalSubmit { custom_id, values }
        }
        other => Kind::Other(other),
    };
    if kind != Kind::Ping && user.is_none() {
        return Err("the interaction names no user".into());
    }
    let message_stamp = raw.message.as_ref().and_then(|m| {
        let id = m["id"].as_str()?;
        let edited = m["edited_timestamp"].as_str().or(m["timestamp"].as_str()).unwrap_or("");
        Some(format!("{id}@{edited}"))
    });
    Ok(Interaction { id: raw.id, token: raw.token, kind, user, channel_id: raw.channel_id, message_stamp })
}

/// Options as (name, value); a subcommand becomes `("sub", name)` followed by its own options.
fn flatten(options: &Value, out: &mut Vec<(String, String)>) {
    for o in options.as_array().into_iter().flatten() {
        let Some(name) = o["name"].as_str() else { continue };
        match o["type"].as_u64() {
            Some(1 | 2) => {
                out.push(("sub".into(), name.into()));
                flatten(&o["options"], out);
            }
            _ => {
                let value = match &o["value"] {
                    // A user picked in a user option reads as a mention of them.
                    Value::String(s) if o["type"].as_u64() == Some(6) => format!("<@{s}>"),
                    Value::String(s) => s.clone(),
                    Value::Null => continue,
                    other => other.to_string(),
                };
                out.push((name.into(), value));
            }
        }
    }
}

/// The users a text mentions: Discord writes a person picked from its list as `<@id>` (`<@!id>`
/// from older clients).
pub fn mentioned_users(text: &str) -> Vec<&str> {
    let mut ids = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("<@") {
        rest = &rest[at + 2..];
        let id = rest.strip_prefix('!').unwrap_or(rest);
        let digits = id.find(|c: char| !c.is_ascii_digit()).unwrap_or(id.len());
        if digits > 0 && id[digits..].starts_with('>') {
            ids.push(&id[..digits]);
        }
    }
    ids
}

/// `text` with each mentioned user written as `@` and their Baton id when `person` knows them
/// (else `@` and the Discord id), so `new_owner=@Eli` works however it was typed.
pub fn typed_text(text: &str, person: impl Fn(&str) -> Option<String>) -> String {
    let mut out = text.to_string();
    for id in mentioned_users(text) {
        let who = format!("@{}", person(id).unwrap_or_else(|| id.to_string()));
        for written in [format!("<@{id}>"), format!("<@!{id}>")] {
            out = out.replace(&written, &who);
        }
    }
    out
}

/// A message someone wrote in a guild channel (a Gateway `MESSAGE_CREATE`), as far as Baton keeps
/// it: the channel is a handoff's thread or nothing is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadMessage {
    /// Message id (each is kept once).
    pub id: String,
    /// Channel (a thread is a channel).
    pub channel: String,
    /// The Discord user who wrote it.
    pub author: String,
    /// What they wrote.
    pub content: String,
}

impl ThreadMessage {
    /// A person's ordinary message or reply with text; `None` for a bot's (Baton's own among
    /// them), a webhook's, a system message, or one whose text Discord did not send.
    pub fn from_gateway(d: &Value) -> Option<ThreadMessage> {
        let text = |v: &Value| v.as_str().filter(|s| !s.trim().is_empty()).map(str::to_string);
        let by_person = d["author"]["bot"] != true && d["webhook_id"].is_null();
        // 0: an ordinary message; 19: a reply.
        let ordinary = matches!(d["type"].as_u64(), Some(0 | 19));
        if !(by_person && ordinary) {
            return None;
        }
        Some(ThreadMessage {
            id: text(&d["id"])?,
            channel: text(&d["channel_id"])?,
            author: text(&d["author"]["id"])?,
            content: text(&d["content"])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/discord").join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn mentions_read_as_the_people_they_name() {
        let person = |id: &str| (id == "200000000000000002").then(|| "eli".to_string());
        for (sent, typed) in [
            ("owner=<@200000000000000002>", "owner=@eli"),
            ("new_owner=<@!200000000000000002> x", "new_owner=@eli x"),
            ("<@999> and <@&123> <#456> <@x> <@", "@999 and <@&123> <#456> <@x> <@"),
            ("no mentions", "no mentions"),
        ] {
            assert_eq!(typed_text(sent, person), typed, "{sent}");
        }
    }

    #[test]
    fn real_payloads_parse() {
        assert_eq!(parse(&fixture("ping.json")).expect("ping").kind, Kind::Ping);
        let cmd = parse(&fixture("application_command.json")).expect("command");
        assert_eq!(
            cmd.kind,
            Kind::Command {
                name: "cardsearch".into(),
                options: vec![("cardname".into(), "The Gitrog Monster".into())]
            }
        );
        assert_eq!(cmd.user.as_deref(), Some("53908232506183680"));
        let click = parse(&fixture("message_component.json")).expect("component");
        assert_eq!(click.kind, Kind::Component { custom_id: "click_one".into() });
        assert!(parse(&fixture("application_command_user_command.json")).is_ok());
    }

    /// Only a person's ordinary message or reply with text is kept.
    #[test]
    fn a_thread_message_is_a_persons_text() {
        let m = |patch: Value| {
            let mut d = serde_json::json!({"id": "m1", "channel_id": "t1", "type": 0,
                "author": {"id": "u1", "username": "eli"}, "content": "on it"});
            for (k, v) in patch.as_object().expect("object") {
                d[k] = v.clone();
            }
            ThreadMessage::from_gateway(&d)
        };
        let kept =
            ThreadMessage { id: "m1".into(), channel: "t1".into(), author: "u1".into(), content: "on it".into() };
        assert_eq!(m(serde_json::json!({})), Some(kept));
        assert!(m(serde_json::json!({"type": 19})).is_some(), "a reply");
        assert_eq!(m(serde_json::json!({"author": {"id": "b1", "bot": true}})), None, "a bot, Baton among them");
        assert_eq!(m(serde_json::json!({"webhook_id": "w1"})), None, "a webhook");
        assert_eq!(m(serde_json::json!({"type": 7})), None, "a member joined");
        assert_eq!(m(serde_json::json!({"content": ""})), None, "no text: no message-content intent");
        assert_eq!(m(serde_json::json!({"channel_id": null})), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_are_refused_or_parsed(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&body);
        }

        #[test]
        fn arbitrary_json_shaped_like_interactions_is_refused_or_parsed(
            kind in 0u64..8, name in ".{0,8}", custom in ".{0,12}", nested in any::<bool>(), user in prop::option::of("[0-9]{1,20}"),
            value in prop_oneof![Just(Value::Null), any::<i64>().prop_map(Value::from), ".{0,10}".prop_map(Value::String)],
        ) {
            let option = if nested {
                serde_json::json!([{"type": 1, "name": name, "options": [{"type": 3, "name": "h", "value": value}]}])
            } else {
                serde_json::json!([{"type": 3, "name": name, "value": value}])
            };
            let body = serde_json::json!({"id": "1", "token": "t", "type": kind,
                "data": {"name": name, "options": option, "custom_id": custom, "components": [{"components": [{"custom_id": "x", "value": custom}]}]},
                "member": {"user": {"id": user}}});
            let _ = parse(body.to_string().as_bytes());
        }
    }
}
