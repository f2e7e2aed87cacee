//! Slack's inbound payloads, reduced to the fields Baton uses.
//!
//! Baton parses into its own small types rather than slack-morphism's models: those require a
//! `team` object, which is `null` in payloads from Enterprise Grid org-wide installs. Every parser
//! here returns a clear refusal on anything malformed and never panics (property-tested).

use serde::Deserialize;
use serde_json::Value;

/// A slash command (form-encoded over HTTP, JSON inside a Socket Mode envelope).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SlashCommand {
    /// `/handoff`.
    pub command: String,
    /// Everything after the command.
    #[serde(default)]
    pub text: String,
    /// Who typed it.
    pub user_id: String,
    /// Where.
    #[serde(default)]
    pub channel_id: String,
    /// Workspace (absent or empty in some org-wide contexts).
    #[serde(default)]
    pub team_id: Option<String>,
    /// Enterprise Grid organisation, when there is one.
    #[serde(default)]
    pub enterprise_id: Option<String>,
    /// Where late answers go (valid 30 minutes).
    #[serde(default)]
    pub response_url: String,
    /// Opens a modal within 3 seconds; unique per invocation, so also the replay key.
    pub trigger_id: String,
}

/// Parses a slash command's form body.
pub fn parse_command_form(body: &[u8]) -> Result<SlashCommand, String> {
    let cmd: SlashCommand =
        serde_urlencoded::from_bytes(body).map_err(|e| format!("not a Slack slash command form: {e}"))?;
    check_command(cmd)
}

/// Parses a slash command delivered as JSON (Socket Mode).
pub fn parse_command_json(v: &Value) -> Result<SlashCommand, String> {
    let cmd: SlashCommand =
        serde_json::from_value(v.clone()).map_err(|e| format!("not a Slack slash command payload: {e}"))?;
    check_command(cmd)
}

fn check_command(cmd: SlashCommand) -> Result<SlashCommand, String> {
    if cmd.user_id.is_empty() || cmd.trigger_id.is_empty() || !cmd.command.starts_with('/') {
        return Err("the slash command payload lacks user_id, trigger_id or command".into());
    }
    Ok(cmd)
}

/// What the person typed, from the text of a slash command or a message as Slack sends it.
///
/// Slack marks up what it recognises (`<@U123|ana>` for a person picked from its list,
/// `<#C123|cs>`, `<!here>`, `<https://acme.example>` or `<http://acme.example|acme.example>` for a
/// link) and escapes `&`, `<` and `>` as `&amp;`, `&lt;` and `&gt;`. A person becomes `@` and their
/// Baton id when `person` knows their Slack id (else `@` and the name Slack gave), so
/// `/handoff reassign H-3 @Ana` works however it was typed; a link becomes its address, or the text
/// it was typed as when that is the address without its scheme; channels and special mentions
/// become plain text. The result is text to read, never markup: Baton escapes whatever it shows.
pub fn typed_text(text: &str, person: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&unescape(&rest[..open]));
        let Some(close) = rest[open..].find('>') else {
            // Slack escapes a typed `<`; an unmatched one is kept as it came.
            rest = &rest[open..];
            break;
        };
        let inner = &rest[open + 1..open + close];
        let (target, label) = match inner.split_once('|') {
            Some((target, label)) => (target, Some(unescape(label))),
            None => (inner, None),
        };
        match target.chars().next() {
            Some('@') => {
                let id = &target[1..];
                out.push('@');
                out.push_str(&person(id).or(label).unwrap_or_else(|| id.to_string()));
            }
            Some('#') => {
                out.push('#');
                out.push_str(&label.unwrap_or_else(|| target[1..].to_string()));
            }
            // `<!here>`, `<!subteam^S123|@cs>`, `<!date^…|fallback>`: what it reads as.
            Some('!') => match label {
                Some(label) => out.push_str(&label),
                None => {
                    out.push('@');
                    out.push_str(&target[1..]);
                }
            },
            _ => {
                let address = unescape(target);
                match label {
                    Some(label)
                        if address.split_once(':').is_some_and(|(_, rest)| rest.trim_start_matches('/') == label) =>
                    {
                        out.push_str(&label)
                    }
                    _ => out.push_str(&address),
                }
            }
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(&unescape(rest));
    out
}

/// Undoes Slack's escaping of `&`, `<` and `>`.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The user who acted, from an interaction or event.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct User {
    /// Slack user id.
    pub id: String,
}

/// A button or select in a message or modal.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ActionInfo {
    /// What it is (`accept`, `seam_pick`, …).
    pub action_id: String,
    /// Button value (`H-12`).
    #[serde(default)]
    pub value: Option<String>,
    /// A select's choice.
    #[serde(default)]
    pub selected_option: Option<SelectedOption>,
    /// Unique per click.
    #[serde(default)]
    pub action_ts: Option<String>,
}

/// A chosen option.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SelectedOption {
    /// Its value.
    pub value: String,
}

/// A modal (or the App Home) as Slack sends it back.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct View {
    /// View id.
    pub id: String,
    /// `modal` or `home`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Changes on every update; with `id`, identifies one submission.
    #[serde(default)]
    pub hash: String,
    /// Which of Baton's modals.
    #[serde(default)]
    pub callback_id: String,
    /// What Baton stored in it (a seam id, `return:H-12`).
    #[serde(default)]
    pub private_metadata: String,
    /// Input values: block id → action id → value object.
    #[serde(default)]
    pub state: ViewState,
}

/// A modal's input values.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct ViewState {
    /// block id → action id → element value.
    #[serde(default)]
    pub values: serde_json::Map<String, Value>,
}

impl View {
    /// The value entered in block `block` (any element type), if any.
    pub fn value(&self, block: &str) -> Option<String> {
        let element = self.state.values.get(block)?.as_object()?.values().next()?;
        let v = match element["type"].as_str()? {
            "datepicker" => element["selected_date"].as_str(),
            "static_select" | "radio_buttons" => element["selected_option"]["value"].as_str(),
            "users_select" => element["selected_user"].as_str(),
            _ => element["value"].as_str(),
        }?;
        (!v.trim().is_empty()).then(|| v.trim().to_string())
    }
}

/// An interactive payload (`payload=` form field over HTTP).
#[derive(Clone, Debug, PartialEq)]
pub enum Interaction {
    /// A button or select was used.
    BlockActions {
        /// Who.
        user: String,
        /// What (normally one).
        actions: Vec<ActionInfo>,
        /// For modals.
        trigger_id: String,
        /// For an ephemeral answer.
        response_url: Option<String>,
        /// The message it was on, as the user saw it (for the double-click key).
        message: Option<Value>,
        /// The modal it was in.
        view: Option<View>,
    },
    /// A modal was submitted.
    ViewSubmission {
        /// Who.
        user: String,
        /// The modal with its values.
        view: View,
    },
    /// A global shortcut (`callback_id` as in the manifest).
    Shortcut {
        /// Who.
        user: String,
        /// Which shortcut.
        callback_id: String,
        /// To open a form with.
        trigger_id: String,
    },
    /// A message shortcut: someone acting on a message.
    MessageShortcut {
        /// Who.
        user: String,
        /// Which shortcut.
        callback_id: String,
        /// To open a form with.
        trigger_id: String,
        /// To answer in the channel, for the person only.
        response_url: Option<String>,
        /// The message's channel.
        channel: String,
        /// The message's timestamp (its id in the channel).
        message_ts: String,
        /// The message's text, in Slack's markup (empty for a message of blocks only).
        text: String,
    },
    /// Something Baton does not handle (answered 200, ignored).
    Other(String),
}

#[derive(Deserialize)]
struct RawInteraction {
    #[serde(rename = "type")]
    kind: String,
    user: Option<User>,
    #[serde(default)]
    actions: Vec<ActionInfo>,
    #[serde(default)]
    trigger_id: String,
    response_url: Option<String>,
    message: Option<Value>,
    view: Option<View>,
    #[serde(default)]
    callback_id: String,
    channel: Option<IdOnly>,
    #[serde(default)]
    message_ts: String,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// Parses an interactivity request body (`payload=<json>`).
pub fn parse_interaction_form(body: &[u8]) -> Result<Interaction, String> {
    let form: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| format!("not a Slack interaction form: {e}"))?;
    let payload = form
        .into_iter()
        .find_map(|(k, v)| (k == "payload").then_some(v))
        .ok_or("the interaction form has no `payload` field")?;
    let v: Value = serde_json::from_str(&payload).map_err(|e| format!("the interaction payload is not JSON: {e}"))?;
    parse_interaction_json(&v)
}

/// Parses an interaction payload's JSON (also Socket Mode's).
pub fn parse_interaction_json(v: &Value) -> Result<Interaction, String> {
    let raw: RawInteraction =
        serde_json::from_value(v.clone()).map_err(|e| format!("not a Slack interaction payload: {e}"))?;
    let user = || raw.user.clone().map(|u| u.id).ok_or("the interaction payload has no user");
    match raw.kind.as_str() {
        "block_actions" => Ok(Interaction::BlockActions {
            user: user()?,
            actions: raw.actions,
            trigger_id: raw.trigger_id,
            response_url: raw.response_url,
            message: raw.message,
            view: raw.view,
        }),
        "view_submission" => {
            Ok(Interaction::ViewSubmission { user: user()?, view: raw.view.ok_or("a view submission without a view")? })
        }
        "shortcut" => {
            Ok(Interaction::Shortcut { user: user()?, callback_id: raw.callback_id, trigger_id: raw.trigger_id })
        }
        "message_action" => {
            let channel = raw.channel.ok_or("a message shortcut without a channel")?.id;
            let ts = raw.message.as_ref().and_then(|m| m["ts"].as_str()).unwrap_or(&raw.message_ts);
            if ts.is_empty() {
                return Err("a message shortcut without the message's ts".into());
            }
            Ok(Interaction::MessageShortcut {
                user: user()?,
                callback_id: raw.callback_id,
                trigger_id: raw.trigger_id,
                response_url: raw.response_url,
                channel,
                message_ts: ts.to_string(),
                text: raw.message.as_ref().and_then(|m| m["text"].as_str()).unwrap_or("").to_string(),
            })
        }
        other => Ok(Interaction::Other(other.to_string())),
    }
}

/// An Events API request.
#[derive(Clone, Debug, PartialEq)]
pub enum EventRequest {
    /// Slack checking the URL when it is configured.
    UrlVerification {
        /// To echo back.
        challenge: String,
    },
    /// An event.
    Callback {
        /// Unique per event; retries carry the same one.
        event_id: String,
        /// The event.
        event: Event,
    },
}

/// An event Baton may act on.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// `@baton …` in a channel.
    AppMention {
        /// Who.
        user: String,
        /// What they wrote.
        text: String,
        /// Where.
        channel: String,
    },
    /// Someone opened Baton's App Home (`tab`: `home` or `messages`).
    AppHomeOpened {
        /// Who.
        user: String,
        /// Which tab.
        tab: String,
    },
    /// A person's reply in a thread (Baton keeps those in its recalibration threads).
    ThreadReply {
        /// Who.
        user: String,
        /// The thread's parent message (its `ts`).
        thread_ts: String,
        /// What they wrote (Slack's markup).
        text: String,
    },
    /// Anything else (acknowledged, ignored).
    Other(String),
}

/// Parses an Events API body.
pub fn parse_event(body: &[u8]) -> Result<EventRequest, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("the event body is not JSON: {e}"))?;
    parse_event_json(&v)
}

/// Parses an Events API payload's JSON (also Socket Mode's).
pub fn parse_event_json(v: &Value) -> Result<EventRequest, String> {
    let text = |v: &Value, what: &str| v.as_str().map(str::to_string).ok_or(format!("the event has no {what}"));
    match v["type"].as_str() {
        Some("url_verification") => {
            Ok(EventRequest::UrlVerification { challenge: text(&v["challenge"], "challenge")? })
        }
        Some("event_callback") => {
            let e = &v["event"];
            let event = match e["type"].as_str() {
                Some("app_mention") => Event::AppMention {
                    user: text(&e["user"], "user")?,
                    text: e["text"].as_str().unwrap_or("").to_string(),
                    channel: text(&e["channel"], "channel")?,
                },
                // A person's reply in a thread: not the parent itself, not an edit or a deletion
                // (they have a subtype), not a bot's (Baton's own posts among them).
                Some("message")
                    if e["thread_ts"].is_string()
                        && e["thread_ts"] != e["ts"]
                        && e["subtype"].is_null()
                        && e["bot_id"].is_null()
                        && e["user"].is_string() =>
                {
                    Event::ThreadReply {
                        user: text(&e["user"], "user")?,
                        thread_ts: text(&e["thread_ts"], "thread_ts")?,
                        text: e["text"].as_str().unwrap_or("").to_string(),
                    }
                }
                Some("app_home_opened") => Event::AppHomeOpened {
                    user: text(&e["user"], "user")?,
                    tab: e["tab"].as_str().unwrap_or("home").to_string(),
                },
                Some(other) => Event::Other(other.to_string()),
                None => return Err("the event callback has no event type".into()),
            };
            Ok(EventRequest::Callback { event_id: text(&v["event_id"], "event_id")?, event })
        }
        Some(other) => Err(format!("unsupported event request type `{other}`")),
        None => Err("the event body has no `type`".into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use proptest::prelude::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/slack").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn shortcuts_parse_and_a_message_shortcut_needs_its_channel_and_message() {
        let global = json!({"type": "shortcut", "callback_id": "handoff_new", "trigger_id": "t1", "user": {"id": "U1"},
                            "team": null});
        let parsed = parse_interaction_json(&global).expect("shortcut");
        let expected =
            Interaction::Shortcut { user: "U1".into(), callback_id: "handoff_new".into(), trigger_id: "t1".into() };
        assert_eq!(parsed, expected);
        let mut message = json!({"type": "message_action", "callback_id": "handoff_message", "trigger_id": "t2",
            "user": {"id": "U1"}, "channel": {"id": "C1", "name": "x"}, "message_ts": "1.2",
            "message": {"type": "message", "ts": "1.2", "text": "hi"}, "response_url": "https://hooks.slack.com/x"});
        let Ok(Interaction::MessageShortcut { channel, message_ts, text, .. }) = parse_interaction_json(&message)
        else {
            panic!("a message shortcut");
        };
        assert_eq!((channel.as_str(), message_ts.as_str(), text.as_str()), ("C1", "1.2", "hi"));
        message["channel"] = Value::Null;
        assert_eq!(parse_interaction_json(&message), Err("a message shortcut without a channel".to_string()));
    }

    #[test]
    fn real_payloads_parse() {
        let cmd = parse_command_form(fixture("slash_command.form").trim().as_bytes()).expect("command");
        assert_eq!(
            (cmd.command.as_str(), cmd.text.as_str(), cmd.user_id.as_str()),
            ("/weather", "94070", "U2147483697")
        );
        assert_eq!(cmd.enterprise_id.as_deref(), Some("E0001"));
        let v: Value = serde_json::from_str(&fixture("block_actions.json")).expect("json");
        assert!(matches!(parse_interaction_json(&v), Ok(Interaction::BlockActions { .. })));
        let v: Value = serde_json::from_str(&fixture("view_submission.json")).expect("json");
        assert!(matches!(parse_interaction_json(&v), Ok(Interaction::ViewSubmission { .. })));
        let e = parse_event(fixture("event_app_mention.json").as_bytes()).expect("event");
        assert!(matches!(e, EventRequest::Callback { event: Event::AppMention { .. }, .. }));
        // The app_home_opened example of Slack's event reference (its `blocks` emptied).
        let e = parse_event(fixture("event_app_home_opened.json").as_bytes()).expect("event");
        let opened = Event::AppHomeOpened { user: "U123ABC456".into(), tab: "home".into() };
        assert_eq!(e, EventRequest::Callback { event_id: "Ev123ABC457".into(), event: opened });
        let e = parse_event(fixture("url_verification.json").as_bytes()).expect("event");
        assert!(matches!(e, EventRequest::UrlVerification { .. }));
        // Slack's message.channels example: a message that is no thread reply is no concern.
        let fixture: Value = serde_json::from_str(&fixture("event_message_channels.json")).expect("json");
        let e = parse_event_json(&fixture).expect("event");
        assert_eq!(e, EventRequest::Callback { event_id: "Ev123ABC456".into(), event: Event::Other("message".into()) });
        // The same as a reply in a thread is; an edit of one, a bot's or the parent itself is not.
        let mut reply = fixture.clone();
        reply["event"]["thread_ts"] = json!("1355517500.000001");
        let said = Event::ThreadReply {
            user: "U123ABC456".into(),
            thread_ts: "1355517500.000001".into(),
            text: "Live long and prospect.".into(),
        };
        assert_eq!(
            parse_event_json(&reply),
            Ok(EventRequest::Callback { event_id: "Ev123ABC456".into(), event: said })
        );
        for (field, value) in
            [("subtype", json!("message_changed")), ("bot_id", json!("B1")), ("thread_ts", json!("1355517523.000005"))]
        {
            let mut other = reply.clone();
            other["event"][field] = value;
            let e = parse_event_json(&other).expect("event");
            assert!(matches!(e, EventRequest::Callback { event: Event::Other(_), .. }), "{field}: {e:?}");
        }
    }

    #[test]
    fn typed_text_reads_slacks_markup_back_into_what_was_typed() {
        let person = |id: &str| (id == "U0ANA00001").then(|| "ana".to_string());
        for (sent, typed) in [
            ("reassign H-3 <@U0ANA00001|Ana Alves>", "reassign H-3 @ana"),
            ("reassign H-3 <@U0ANA00001>", "reassign H-3 @ana"),
            ("reassign H-3 <@U0NOBODY01|zed>", "reassign H-3 @zed"),
            ("reassign H-3 <@W0NOBODY01>", "reassign H-3 @W0NOBODY01"),
            ("new x \"R&amp;D &lt;launch&gt;\" a=1", "new x \"R&D <launch>\" a=1"),
            ("&amp;lt; stays &amp;lt;", "&lt; stays &lt;"),
            ("doc=<https://acme.example/a?b=1&amp;c=2>", "doc=https://acme.example/a?b=1&c=2"),
            ("site=<http://acme.example|acme.example>", "site=acme.example"),
            ("mail=<mailto:ana@acme.example|ana@acme.example>", "mail=ana@acme.example"),
            ("doc=<https://evil.example|click>", "doc=https://evil.example"),
            (
                "<!channel> <!here> <!subteam^S0001|@cs> in <#C0001|cs-handoffs> <#C0002>",
                "@channel @here @cs in #cs-handoffs #C0002",
            ),
            ("a < b", "a < b"),
            ("unclosed <@U0ANA00001", "unclosed <@U0ANA00001"),
            ("<>", ""),
            ("", ""),
        ] {
            assert_eq!(typed_text(sent, person), typed, "{sent}");
        }
    }

    #[test]
    fn an_org_wide_install_without_a_team_is_understood() {
        let mut v: Value = serde_json::from_str(&fixture("block_actions.json")).expect("json");
        v["team"] = Value::Null;
        v["enterprise"] = serde_json::json!({"id": "E0001", "name": "Globular"});
        v["is_enterprise_install"] = Value::Bool(true);
        assert!(matches!(parse_interaction_json(&v), Ok(Interaction::BlockActions { .. })));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_are_refused_or_parsed_never_a_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_command_form(&body);
            let _ = parse_interaction_form(&body);
            let _ = parse_event(&body);
        }

        #[test]
        fn typed_text_reads_any_text_without_a_panic(text in "\\PC{0,80}") {
            // With ids read as themselves, reading markup only ever takes characters away.
            let typed = typed_text(&text, |id| Some(id.to_string()));
            prop_assert!(typed.len() <= text.len(), "{text:?} became {typed:?}");
        }

        #[test]
        fn arbitrary_forms_are_refused_or_parsed(pairs in proptest::collection::vec((".{0,12}", ".{0,40}"), 0..8)) {
            let body = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            let _ = parse_command_form(body.as_bytes());
            let _ = parse_interaction_form(body.as_bytes());
        }

        #[test]
        fn the_slash_command_argument_parser_refuses_or_parses_any_text(text in "\\PC{0,80}", sub in prop_oneof![
            Just("new"), Just("accept"), Just("update"), Just("snooze"), Just("return"), Just("reassign"), Just("")]) {
            let _ = baton_core::parse(&format!("/handoff {sub} {text}"));
            let _ = baton_core::parse(&text);
        }

        #[test]
        fn arbitrary_json_is_refused_or_parsed(v in arb_json()) {
            let _ = parse_interaction_json(&v);
            let _ = parse_event_json(&v);
            let _ = parse_command_json(&v);
            let body = format!("payload={}", serde_urlencoded::to_string([("", v.to_string())]).unwrap_or_default());
            let _ = parse_interaction_form(body.as_bytes());
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            prop_oneof![
                Just("type".to_string()),
                Just("block_actions".to_string()),
                Just("view_submission".to_string()),
                Just("event_callback".to_string()),
                Just("app_mention".to_string()),
                ".{0,10}"
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(
                    (
                        prop_oneof![
                            Just("type".to_string()),
                            Just("user".to_string()),
                            Just("event".to_string()),
                            Just("view".to_string()),
                            Just("actions".to_string()),
                            Just("id".to_string()),
                            ".{0,6}"
                        ],
                        inner
                    ),
                    0..5
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }
}
