//! What Baton does with a verified Discord interaction, whichever transport brought it (HTTP
//! endpoint or Gateway). Each call returns the interaction response at once: the answer when the
//! work finished within the budget, else a deferred response followed by an edit of the original
//! answer, or, once the 15-minute token has expired, a plain message in the channel.

use std::time::Duration;

use baton_core::{
    Command, HandoffId, Intent, IntentKind, Recipient, Surface, command::parse_id, config::parse_wall_duration,
};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::api::DiscordApi;
use super::payload::{Interaction, Kind, mentioned_users, typed_text};
use crate::app::{App, AppError, outcome};
use crate::store::LinkOutcome;

/// By default, how long a command may run before a deferred response goes out instead.
pub const ACK_BUDGET: Duration = Duration::from_millis(2000);
/// How long an interaction token allows follow-ups.
const TOKEN_LIFETIME: chrono::Duration = chrono::Duration::minutes(15);
/// How long a link code is valid.
const CODE_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);
/// Ephemeral message flag.
const EPHEMERAL: u64 = 64;

/// Discord interaction processing.
#[derive(Clone, Debug)]
pub struct Discord {
    /// The service.
    pub app: App,
    /// For follow-ups.
    pub api: DiscordApi,
    /// `DISCORD_APPLICATION_ID`, for follow-up URLs.
    pub application_id: String,
    /// How long to wait for a command before deferring (Discord allows 3 seconds; zero: always defer).
    pub ack_budget: Duration,
}

/// An ephemeral answer that pings nobody.
pub fn reply(text: &str) -> Value {
    json!({"type": 4, "data": {"content": crate::slack::blocks::fit_lines(text, 2000), "flags": EPHEMERAL,
        "allowed_mentions": {"parse": []}}})
}

fn option<'a>(options: &'a [(String, String)], name: &str) -> Option<&'a str> {
    options.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

impl Discord {
    /// The configured person behind a Discord account (configured id, or linked).
    pub async fn person(&self, user: &str) -> Result<Option<String>, AppError> {
        if let Some(p) = self.app.model.by_discord(user) {
            return Ok(Some(p.id.clone()));
        }
        Ok(self.app.store.linked_person("discord", user).await?)
    }

    /// Keeps what someone Baton knows writes in a handoff's thread with the handoff's log, once
    /// per message; anything else (another channel, someone unknown) is left alone.
    pub async fn thread_message(&self, m: super::payload::ThreadMessage) -> Result<(), AppError> {
        let Some(person) = self.person(&m.author).await? else { return Ok(()) };
        let text = self.typed(&[(String::new(), m.content)]).await.remove(0).1;
        let key = format!("discord:message:{}", m.id);
        let prefix = crate::deliver::DISCORD_THREAD;
        match self.app.thread_reply(prefix, &m.channel, &person, &text, Surface::Discord, Utc::now(), &key).await {
            Ok(_) | Err(AppError::Duplicate) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Command options with mentioned users read as the people they name.
    async fn typed(&self, options: &[(String, String)]) -> Vec<(String, String)> {
        let mut known = std::collections::HashMap::new();
        for (_, value) in options {
            for id in mentioned_users(value) {
                if let Ok(Some(person)) = self.person(id).await {
                    known.insert(id.to_string(), person);
                }
            }
        }
        options.iter().map(|(n, v)| (n.clone(), typed_text(v, |id| known.get(id).cloned()))).collect()
    }

    /// Answers one interaction.
    pub async fn interaction(&self, i: Interaction, received: DateTime<Utc>) -> Value {
        if i.kind == Kind::Ping {
            return json!({"type": 1});
        }
        let user = i.user.clone().unwrap_or_default();
        if let Kind::Command { name, options } = &i.kind
            && name == "baton"
        {
            return reply(&self.link(&user, options, received).await);
        }
        let person = match self.person(&user).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                return reply(&format!(
                    "Baton does not know your Discord account ({user}) yet. If you use Baton in Slack, link this \
                     account with `/baton link person:<your Baton id>`; otherwise ask a workflow architect to add \
                     `discord = \"{user}\"` to your entry under [people] in baton.toml."
                ));
            }
            Err(e) => return reply(&outcome(Err(e))),
        };
        let key = format!("discord:interaction:{}", i.id);
        let command = match &i.kind {
            Kind::Command { name, options } => {
                let options = &self.typed(options).await;
                let given = option(options, "handoff");
                let id = given.and_then(parse_id);
                let need_id = |id: Option<HandoffId>| match given {
                    None => Err("name the handoff, like H-12".to_string()),
                    Some(word) => id.ok_or(format!("`{word}` is not a handoff reference: write it like H-12")),
                };
                // A command whose options read as a typed line, parsed as in Slack and the console.
                let typed_line = |parts: &[&str]| {
                    baton_core::parse(&parts.join(" ")).map_err(|e| format!("{}\nusage: {}", e.message, e.usage))
                };
                let c = match name.as_str() {
                    "ack" => need_id(id).map(Command::Ack),
                    "stalls" => {
                        let words: Vec<String> = options
                            .iter()
                            .map(|(n, v)| if n == "view" { v.clone() } else { format!("{n}={v}") })
                            .collect();
                        match baton_core::history::parse_query(&words) {
                            Ok(q) => Ok(Command::Stalls(q)),
                            Err(e) => return reply(&format!("✗ {e}\nusage: {}", baton_core::history::USAGE)),
                        }
                    }
                    "handoff" => {
                        match option(options, "sub") {
                            Some("record") => typed_line(&[
                                "/handoff record",
                                given.unwrap_or(""),
                                option(options, "artifact").unwrap_or(""),
                            ]),
                            Some("find") => typed_line(&["/handoff find", option(options, "words").unwrap_or("")]),
                            Some("team") => Ok(Command::Team(option(options, "function").map(String::from))),
                            Some("mine") => Ok(Command::Mine),
                            Some("log") => need_id(id).map(Command::Log),
                            Some("new") => baton_core::command::parse_fields(option(options, "fields").unwrap_or(""))
                                .map(|fields| Command::New {
                                    seam: option(options, "seam").unwrap_or_default().to_string(),
                                    title: option(options, "title").unwrap_or_default().to_string(),
                                    fields,
                                }),
                            Some("accept") => need_id(id).map(Command::Accept),
                            Some("done") => need_id(id).map(Command::Done),
                            Some(sub @ ("watch" | "unwatch")) => {
                                need_id(id).map(|id| Command::Watch { id, on: sub == "watch" })
                            }
                            Some("comment") => need_id(id).map(|id| Command::Comment {
                                id,
                                text: option(options, "text").unwrap_or_default().trim().to_string(),
                            }),
                            // Moves that say something (or name someone) read as typed: an update's
                            // `field=value` words change fields, as in Slack; a picked user is a person.
                            Some(sub @ ("update" | "return" | "cancel" | "reassign" | "edit")) => {
                                need_id(id).and_then(|_| {
                                    typed_line(&[
                                        &format!("/handoff {sub}"),
                                        given.unwrap_or(""),
                                        option(options, if sub == "reassign" { "to" } else { "text" }).unwrap_or(""),
                                    ])
                                })
                            }
                            Some("snooze") => need_id(id).and_then(|_| {
                                typed_line(&[
                                    "/snooze",
                                    given.unwrap_or(""),
                                    option(options, "for").unwrap_or(""),
                                    option(options, "reason").unwrap_or(""),
                                ])
                            }),
                            _ => need_id(id).map(Command::Show),
                        }
                    }
                    "away" => typed_line(&[
                        "/away",
                        option(options, "until").unwrap_or(""),
                        &option(options, "cover").map(|c| format!("cover={c}")).unwrap_or_default(),
                        option(options, "reason").unwrap_or(""),
                    ]),
                    "recalibrate" => need_id(id)
                        .map(|id| Command::Recalibrate { id, playbook: option(options, "playbook").map(String::from) }),
                    "escalations" => return reply(&self.escalations(&person).await),
                    other => {
                        return reply(&format!("✗ Baton has no command `/{other}`; try /ack, /escalations, /stalls"));
                    }
                };
                match c {
                    Ok(c) => c,
                    Err(why) => return reply(&format!("✗ {why}")),
                }
            }
            Kind::Component { custom_id } => {
                let Some((action, id)) = custom_id.split_once(':').and_then(|(a, h)| Some((a, parse_id(h)?))) else {
                    return reply("✗ This button is out of date.");
                };
                match action {
                    "ack" => Command::Ack(id),
                    "accept" => Command::Accept(id),
                    "done" => Command::Done(id),
                    "approve" => Command::Approve(id),
                    "blocked" => Command::Recalibrate { id, playbook: None },
                    "watch" => Command::Watch { id, on: true },
                    "unwatch" => Command::Watch { id, on: false },
                    "snooze" | "return" | "reject" | "update" | "resubmit" | "record" => {
                        return reason_modal(action, id);
                    }
                    _ => return reply("✗ This button is out of date."),
                }
            }
            Kind::ModalSubmit { custom_id, values } => match modal_command(custom_id, values) {
                Ok(c) => c,
                Err(why) => return reply(&format!("✗ {why}")),
            },
            Kind::Ping => return json!({"type": 1}),
            Kind::Other(t) => return reply(&format!("✗ Baton does not handle interactions of type {t}.")),
        };
        // A double click is two interactions: key clicks by the button and the message as seen.
        let key = match (&i.kind, &i.message_stamp) {
            (Kind::Component { custom_id }, Some(stamp)) => click_key(&user, custom_id, stamp),
            _ => key,
        };
        self.run(person, command, key, i, received).await
    }

    /// Runs a command within the budget, else defers and follows up.
    async fn run(
        &self,
        person: String,
        command: Command,
        key: String,
        i: Interaction,
        received: DateTime<Utc>,
    ) -> Value {
        let span = tracing::info_span!("discord_interaction", id = %i.id, person = %person, handoff = command.target());
        let app = self.app.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let place = i.channel_id.clone().map(Recipient::DiscordChannel);
                let text =
                    outcome(app.handle_in(&person, Surface::Discord, command, Utc::now(), Some(&key), place).await);
                if let Err(text) = tx.send(text) {
                    me.follow_up(&i, &text, received).await;
                }
            },
            span,
        ));
        if self.ack_budget.is_zero() {
            drop(rx);
            return json!({"type": 5, "data": {"flags": EPHEMERAL}});
        }
        match tokio::time::timeout(self.ack_budget, rx).await {
            Ok(Ok(text)) => reply(&text),
            _ => json!({"type": 5, "data": {"flags": EPHEMERAL}}),
        }
    }

    /// Delivers a late answer: edits the deferred response while the token lives, else posts a
    /// plain message in the channel through the outbox.
    async fn follow_up(&self, i: &Interaction, text: &str, received: DateTime<Utc>) {
        if Utc::now() - received < TOKEN_LIFETIME {
            match self.api.edit_original(&self.application_id, &i.token, text).await {
                Ok(()) => return,
                Err(e) => tracing::warn!("follow-up failed, posting in the channel instead: {e}"),
            }
        }
        let Some(channel) = i.channel_id.clone() else { return };
        let intent = Intent::message(Recipient::DiscordChannel(channel), IntentKind::Notice, text.to_string());
        if let Err(e) = self.app.reply_once(&format!("discord:late:{}", i.id), &intent, Utc::now()).await {
            tracing::error!("queueing a late answer failed: {e}");
        }
    }

    /// `/escalations`: what is stalled for me or my functions.
    async fn escalations(&self, person: &str) -> String {
        let stalled = match self.app.store.stalled().await {
            Ok(s) => s,
            Err(e) => return outcome(Err(e.into())),
        };
        let model = &self.app.model;
        let mine: Vec<String> = stalled
            .iter()
            .filter(|h| {
                h.owner.as_deref() == Some(person)
                    || model
                        .seams
                        .get(&h.seam)
                        .and_then(|s| model.functions.get(&s.to))
                        .is_some_and(|f| f.has_member(person))
            })
            .map(|h| {
                let kind = h.stall.as_ref().map_or("", |s| s.kind.describe());
                let owner = h.owner.as_deref().map_or("nobody yet", |o| model.name_of(o));
                format!("• {} \"{}\" ({}) · {kind} · owner: {owner}", h.label(), h.title, h.seam)
            })
            .collect();
        if mine.is_empty() {
            "Nothing is escalated to you or your functions.".into()
        } else {
            format!("Escalated to you or your functions:\n{}", mine.join("\n"))
        }
    }

    /// `/baton link person:<id>` sends a code to the person in Slack; `/baton link code:<code>`
    /// proves it and links this Discord account to them.
    async fn link(&self, user: &str, options: &[(String, String)], now: DateTime<Utc>) -> String {
        let model = &self.app.model;
        if let Some(code) = option(options, "code") {
            return match self.app.store.finish_link("discord", user, code.trim(), now).await {
                Ok(LinkOutcome::Linked(p)) => {
                    format!("Linked: this Discord account acts as {} in Baton.", model.name_of(&p))
                }
                Ok(LinkOutcome::Refused(why)) => format!("✗ {why}"),
                Err(e) => outcome(Err(e.into())),
            };
        }
        let Some(id) = option(options, "person") else {
            return "Link this Discord account to your Baton identity: `/baton link person:<your Baton id>`, then \
                    `/baton link code:<code>` with the code Baton sends you in Slack."
                .into();
        };
        let Some(person) = model.person(id.trim()) else {
            return format!("✗ There is no person `{id}` in Baton's operating model.");
        };
        if person.slack.is_none() {
            return format!(
                "✗ {} has no Slack account in Baton, so no code can be sent; ask an architect to add \
                            `discord = \"{user}\"` to their entry instead.",
                person.name
            );
        }
        if let Some(configured) = &person.discord
            && configured != user
        {
            return format!("✗ {} already has another Discord account in Baton's operating model.", person.name);
        }
        let code = format!("{:06}", fastrand::u32(0..1_000_000));
        let message = Intent::message(
            Recipient::Person(person.id.clone()),
            IntentKind::Notice,
            format!(
                "Your Baton link code is {code}. In Discord, run `/baton link code:{code}` within 10 minutes to link \
                 Discord account {user} to you. If you did not ask for this, ignore this message."
            ),
        );
        let link = crate::store::LinkRequest { platform: "discord", user, person: &person.id, code: &code };
        match self.app.store.start_link(link, now + CODE_LIFETIME, &message, now).await {
            Ok(()) => {
                self.app.wake.delivery.notify_one();
                format!(
                    "A code is on its way to {} in Slack. Run `/baton link code:<code>` here within 10 minutes.",
                    person.name
                )
            }
            Err(e) => outcome(Err(e.into())),
        }
    }
}

/// The modal behind Snooze, Return, Reject, Post update and Resubmit.
fn reason_modal(action: &str, id: HandoffId) -> Value {
    let title = match action {
        "snooze" => format!("Snooze H-{id}"),
        "return" => format!("Return H-{id} to requester"),
        "update" => format!("Post an update on H-{id}"),
        "resubmit" => format!("Resubmit H-{id}"),
        "record" => format!("Record the outcome of H-{id}"),
        _ => format!("Reject H-{id}"),
    };
    // Resubmitting needs no words.
    let required = action != "resubmit";
    let input = |custom_id: &str, label: &str, style: u8, placeholder: &str| {
        json!({"type": 1, "components": [{"type": 4, "custom_id": custom_id, "label": label, "style": style,
            "required": required, "max_length": 500, "placeholder": placeholder}]})
    };
    let mut rows = Vec::new();
    if action == "snooze" {
        rows.push(input("duration", "For how long (at most 14 days)", 1, "2h, 30m or 1d"));
    }
    match action {
        // The artifact as `/handoff record` takes it (a modal holds five inputs; a playbook may ask more).
        "record" => rows.push(json!({"type": 1, "components": [{"type": 4, "custom_id": "artifact",
            "label": "Outcome, as /handoff record takes it", "style": 2, "required": true, "max_length": 2000,
            "placeholder": "decision=resume assumption_broke=\"...\" category=... follow_ups=\"...\""}]})),
        "update" => rows.push(input("reason", "Progress", 2, "The requester sees this")),
        "resubmit" => {
            // The contract's fields are changed here too: someone with only Discord has no other form.
            rows.push(json!({"type": 1, "components": [{"type": 4, "custom_id": "fields",
                "label": "Fields to change (field=value ...)", "style": 2, "required": false, "max_length": 4000,
                "placeholder": "account=\"Acme Corp\" arr=125000"}]}));
            rows.push(input("reason", "What changed", 2, "The owner sees this"));
        }
        _ => rows.push(input("reason", "Reason", 2, "The other side sees this")),
    }
    json!({"type": 9, "data": {"custom_id": format!("{action}:H-{id}"), "title": title, "components": rows}})
}

/// The command a submitted modal stands for.
fn modal_command(custom_id: &str, values: &[(String, String)]) -> Result<Command, String> {
    let (action, id) = custom_id
        .split_once(':')
        .and_then(|(a, h)| Some((a, parse_id(h)?)))
        .ok_or("this form is out of date; use the buttons again")?;
    let value = |name: &str| option(values, name).map(str::trim).filter(|v| !v.is_empty()).map(String::from);
    if action == "resubmit" {
        let fields = baton_core::command::parse_fields(&value("fields").unwrap_or_default())?;
        return Ok(Command::Resubmit { id, fields, note: value("reason") });
    }
    if action == "record" {
        let artifact =
            value("artifact").ok_or("write the outcome: decision=... assumption_broke=\"...\" category=...")?;
        return baton_core::parse(&format!("/handoff record H-{id} {artifact}"))
            .map_err(|e| format!("{}\nusage: {}", e.message, e.usage));
    }
    let missing = match action {
        "update" => "say what progress was made",
        _ => "give a reason, so the other side knows what to do",
    };
    let reason = value("reason").ok_or(missing)?;
    match action {
        "snooze" => {
            let raw = value("duration").unwrap_or_default();
            let duration =
                parse_wall_duration(&raw).ok_or(format!("`{raw}` is not a duration: write 2h, 30m, 1h30m or 1d"))?;
            Ok(Command::Snooze { id, duration, reason })
        }
        "return" => Ok(Command::Return { id, reason }),
        "reject" => Ok(Command::Reject { id, reason }),
        "update" => Ok(Command::Update { id, note: reason, fields: Vec::new() }),
        _ => Err("this form is out of date; use the buttons again".into()),
    }
}

/// The replay key of a button click on one rendering of a message.
fn click_key(user: &str, custom_id: &str, stamp: &str) -> String {
    let mut h = Sha256::new();
    for part in [user, custom_id, stamp] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let hex: String = h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("discord:click:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_outcome_asks_for_the_artifact_as_the_command_takes_it() {
        let modal = reason_modal("record", 7);
        assert_eq!(modal["data"]["title"], "Record the outcome of H-7");
        assert_eq!(modal["data"]["components"][0]["components"][0]["custom_id"], "artifact");
        let typed =
            [("artifact".to_string(), r#"decision=resume assumption_broke="no brief" category=capacity"#.into())];
        let Ok(Command::Record { id, fields }) = modal_command("record:H-7", &typed) else { panic!("a record") };
        assert_eq!(id, 7);
        assert_eq!(fields[1], ("assumption_broke".to_string(), "no brief".to_string()));
        let typed = [("artifact".to_string(), r#"decision="resume"#.into())];
        assert!(modal_command("record:H-7", &typed).is_err_and(|e| e.contains("usage: /handoff record")));
        assert!(modal_command("record:H-7", &[]).is_err_and(|e| e.starts_with("write the outcome")));
    }

    #[test]
    fn the_update_button_asks_for_the_progress_made_and_posts_it() {
        let modal = reason_modal("update", 3);
        assert_eq!(modal["type"], 9);
        assert_eq!(modal["data"]["title"], "Post an update on H-3");
        assert_eq!(modal["data"]["components"][0]["components"][0]["label"], "Progress");
        let typed = [("reason".to_string(), " kickoff booked ".to_string())];
        assert_eq!(
            modal_command("update:H-3", &typed),
            Ok(Command::Update { id: 3, note: "kickoff booked".into(), fields: Vec::new() })
        );
        assert_eq!(modal_command("update:H-3", &[]), Err("say what progress was made".to_string()));
    }

    #[test]
    fn the_resubmit_button_sends_it_back_in_with_changed_fields_and_an_optional_note() {
        let modal = reason_modal("resubmit", 4);
        assert_eq!(modal["data"]["title"], "Resubmit H-4");
        let input = |row: usize| modal["data"]["components"][row]["components"][0].clone();
        assert_eq!((input(0)["custom_id"].as_str(), input(0)["required"].as_bool()), (Some("fields"), Some(false)));
        assert_eq!((input(1)["label"].as_str(), input(1)["required"].as_bool()), (Some("What changed"), Some(false)));
        assert_eq!(modal_command("resubmit:H-4", &[]), Ok(Command::Resubmit { id: 4, fields: Vec::new(), note: None }));
        let typed = [("reason".to_string(), "contract attached".to_string())];
        assert_eq!(
            modal_command("resubmit:H-4", &typed),
            Ok(Command::Resubmit { id: 4, fields: Vec::new(), note: Some("contract attached".into()) })
        );
        let typed = [("fields".to_string(), r#"account="Acme Corp" arr=125000"#.to_string())];
        let fields = vec![("account".to_string(), "Acme Corp".to_string()), ("arr".into(), "125000".into())];
        assert_eq!(modal_command("resubmit:H-4", &typed), Ok(Command::Resubmit { id: 4, fields, note: None }));
        let typed = [("fields".to_string(), "account".to_string())];
        assert!(modal_command("resubmit:H-4", &typed).is_err_and(|e| e.contains("is not field=value")));
    }
}
