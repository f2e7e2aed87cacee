//! What Baton does with a verified Slack request, whichever transport brought it (signed HTTP or
//! Socket Mode). Every function returns the acknowledgement body at once (Slack allows 3
//! seconds); Slack API calls and slow work happen after it, in spawned tasks.

use std::time::Duration;

use baton_core::command::{parse_id, usage};
use baton_core::decide::may;
use baton_core::{Command, Ctx, Intent, IntentKind, Recipient, Surface, parse, render};
use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::api::SlackApi;
use super::blocks::escape;
use super::modal::Draft;
use super::payload::{Event, EventRequest, Interaction, SlashCommand, View, typed_text};
use super::{home, modal};
use crate::app::{App, AppError, outcome};
use crate::deliver::SendError;

/// By default, how long a command may run before the acknowledgement goes out without it; the answer then
/// follows through `response_url`.
pub const ACK_BUDGET: Duration = Duration::from_millis(2000);

/// Slack inbound processing.
#[derive(Clone, Debug)]
pub struct Slack {
    /// The service.
    pub app: App,
    /// For modals and `response_url` answers (never on the acknowledgement path).
    pub api: SlackApi,
    /// How long to wait for a command before acknowledging without its answer (Slack allows 3 s;
    /// zero: always acknowledge first).
    pub ack_budget: Duration,
    /// Home tabs opened lately, drawn again as what they show changes.
    pub homes: home::Watched,
}

/// `callback_id` of the global shortcut that opens the new-handoff form (see the manifest).
pub const SHORTCUT_NEW: &str = "handoff_new";
/// `callback_id` of the message shortcut that hands off the work a message asks for.
pub const SHORTCUT_MESSAGE: &str = "handoff_message";

/// A message's first line that holds words, cut to a title's 150 characters.
fn first_line(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    super::blocks::truncate(line, 150)
}

/// Runs `send` (a Slack call made after the acknowledgement) up to three times while it fails in
/// a way worth retrying, waiting as Slack asks (at most 5 s) or a little longer each time; says
/// whether it went through.
async fn retried<F: std::future::Future<Output = Result<(), SendError>>>(what: &str, send: impl Fn() -> F) -> bool {
    for attempt in 1..=3u32 {
        let wait = match send().await {
            Ok(()) => return true,
            Err(SendError::Permanent(e)) => {
                tracing::warn!("{what} failed: {e}");
                return false;
            }
            Err(e) if attempt == 3 => {
                tracing::error!("{what} failed: {e}");
                return false;
            }
            Err(
                SendError::Retry { after: Some(after), .. }
                | SendError::RateLimited { after, .. }
                | SendError::Held(after),
            ) => after.to_std().unwrap_or_default(),
            Err(_) => Duration::from_millis(500 * u64::from(attempt)),
        };
        tracing::warn!("{what} failed (attempt {attempt}); trying again");
        tokio::time::sleep(wait.min(Duration::from_secs(5))).await;
    }
    false
}

/// Where an answer given after the acknowledgement goes.
#[derive(Clone, Debug)]
enum Reply {
    /// The `response_url` of the command or message (none: nowhere, as for a modal's own buttons).
    Url(Option<String>),
    /// The person's direct messages, once per key: the App Home has no `response_url`.
    Dm {
        /// Who.
        person: String,
        /// The replay key of what is answered.
        key: String,
    },
}

fn ephemeral(text: &str) -> Value {
    json!({"response_type": "ephemeral", "text": escape(text)})
}

/// What an unknown Slack user is told.
pub fn unknown_user(user: &str) -> String {
    format!(
        "Baton does not know your Slack account ({user}) yet. Ask a workflow architect to add \
         `slack = \"{user}\"` to your entry under [people] in baton.toml."
    )
}

impl Slack {
    fn person(&self, slack_user: &str) -> Option<String> {
        self.app.model.by_slack(slack_user).map(|p| p.id.clone())
    }

    /// Opens the form behind Return, Reject, Snooze or Post update for handoff `id`.
    fn open_reason_form(&self, kind: &str, id: u64, trigger_id: String, reply: Reply) {
        let instead = usage(kind).replace("H-<n>", &format!("H-{id}"));
        self.open_modal(trigger_id, modal::reason(kind, id), reply, &instead);
    }

    /// Opens the form that edits handoff `id` (or, with `resubmit`, answers its return), filled
    /// with what it holds, if `person` may submit it; otherwise the refusal, for the person.
    async fn open_contract_form(
        &self,
        person: &str,
        id: u64,
        resubmit: bool,
        trigger_id: String,
        reply: Reply,
    ) -> Result<(), String> {
        let h = self.app.get(id).await.map_err(|e| outcome(Err(e)))?;
        let now = Utc::now();
        let away = self.app.store.absences(&self.app.model, now).await.map_err(|e| outcome(Err(e.into())))?;
        let (probe, form, sub) = match resubmit {
            true => (
                Command::Resubmit { id, fields: Vec::new(), note: None },
                modal::resubmit_handoff(&self.app.model, &h),
                "resubmit",
            ),
            false => (
                Command::Edit { id, title: None, fields: Vec::new(), note: None },
                modal::edit_handoff(&self.app.model, &h),
                "edit",
            ),
        };
        may(&self.app.model, &h, &probe, person, &away.covered_by(person, now), now).map_err(|r| format!("✗ {r}"))?;
        let instead = usage(sub).replace("H-<n>", &h.label());
        self.open_modal(trigger_id, form, reply, &instead);
        Ok(())
    }

    /// Opens the form recording the outcome of `id`'s open recalibration, for someone who may
    /// record it (what they would be refused is said instead).
    async fn open_record_form(&self, person: &str, id: u64, trigger_id: String, reply: Reply) -> Result<(), String> {
        let h = self.app.get(id).await.map_err(|e| outcome(Err(e)))?;
        let now = Utc::now();
        let away = self.app.store.absences(&self.app.model, now).await.map_err(|e| outcome(Err(e.into())))?;
        let probe = Command::Record { id, fields: Vec::new() };
        match may(&self.app.model, &h, &probe, person, &away.covered_by(person, now), now) {
            // The probe records nothing, so the artifact's fields are missing: the form asks for them.
            Ok(()) | Err(baton_core::Rejection::InvalidArtifact(_)) => {}
            Err(r) => return Err(format!("✗ {r}")),
        }
        let form = modal::record_form(&self.app.model, &h)?;
        let instead = usage("record").replace("H-<n>", &h.label());
        self.open_modal(trigger_id, form, reply, &instead);
        Ok(())
    }

    /// Opens a modal after the acknowledgement. When Slack refuses (an expired trigger, an
    /// outage), the person is told (through `response_url`, or by DM from the App Home) and given
    /// the command to type instead.
    fn open_modal(&self, trigger_id: String, view: Value, reply: Reply, instead: &str) {
        let me = self.clone();
        let instead = instead.to_string();
        tokio::spawn(async move {
            if let Err(e) = me.api.views_open(&trigger_id, &view, Utc::now()).await {
                tracing::error!("views.open failed: {e}");
                let text = format!("Baton could not open the form ({e}). Type it instead: {instead}");
                me.respond_later(reply, text);
            }
        });
    }

    /// Answers after the acknowledgement: through `response_url`, or by DM.
    fn respond_later(&self, reply: Reply, text: String) {
        let url = match reply {
            Reply::Url(Some(url)) => url,
            Reply::Url(None) => return,
            Reply::Dm { person, key } => {
                let app = self.app.clone();
                tokio::spawn(async move {
                    let dm = Intent::message(Recipient::Person(person), IntentKind::Notice, text);
                    if let Err(e) = app.reply_once(&format!("{key}:reply"), &dm, Utc::now()).await {
                        tracing::error!("queueing an answer by DM failed: {e}");
                    }
                });
                return;
            }
        };
        let api = self.api.clone();
        let text = escape(&text);
        tokio::spawn(async move { retried("response_url", || api.respond(&url, &text)).await });
    }

    /// Runs a command; returns its outcome if it finished within the budget, else `None`
    /// (and the outcome goes to `late` when it finishes).
    async fn run(
        &self,
        person: String,
        command: Command,
        key: String,
        late: Reply,
        place: Option<Recipient>,
    ) -> Option<String> {
        let span = tracing::info_span!("slack_interaction", person = %person, handoff = command.target());
        let app = self.app.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let text =
                    outcome(app.handle_in(&person, Surface::Slack, command, Utc::now(), Some(&key), place).await);
                if let Err(text) = tx.send(text) {
                    me.respond_later(late, text);
                }
            },
            span,
        ));
        if self.ack_budget.is_zero() {
            return None;
        }
        tokio::time::timeout(self.ack_budget, rx).await.ok().and_then(Result::ok)
    }

    /// A slash command: the acknowledgement body (`Value::Null` for an empty 200).
    pub async fn command(&self, cmd: SlashCommand) -> Value {
        let Some(person) = self.person(&cmd.user_id) else {
            return ephemeral(&unknown_user(&cmd.user_id));
        };
        let text = typed_text(&cmd.text, |slack_user| self.person(slack_user));
        let text = text.trim();
        if cmd.command == "/handoff" && (text.is_empty() || text.eq_ignore_ascii_case("new")) {
            let form = modal::new_handoff(&self.app.model, &person, &Draft::default(), None);
            self.open_modal(cmd.trigger_id.clone(), form, Reply::Url(Some(cmd.response_url.clone())), usage("new"));
            return Value::Null;
        }
        // A command that needs words the person did not give asks for them in a form.
        let words: Vec<&str> = text.split_whitespace().collect();
        let (sub, rest) = match (cmd.command.as_str(), words.split_first()) {
            ("/handoff", Some((sub, rest))) => (sub.to_ascii_lowercase(), rest),
            (own, _) => (own.trim_start_matches('/').to_string(), words.as_slice()),
        };
        if let ("return" | "reject" | "snooze" | "update", [word]) = (sub.as_str(), rest)
            && let Some(id) = parse_id(word)
        {
            self.open_reason_form(&sub, id, cmd.trigger_id.clone(), Reply::Url(Some(cmd.response_url.clone())));
            return Value::Null;
        }
        if let ("edit", [word]) = (sub.as_str(), rest)
            && let Some(id) = parse_id(word)
        {
            let url = Reply::Url(Some(cmd.response_url.clone()));
            return match self.open_contract_form(&person, id, false, cmd.trigger_id.clone(), url).await {
                Ok(()) => Value::Null,
                Err(refused) => ephemeral(&refused),
            };
        }
        let line = format!("{} {text}", cmd.command);
        let command = match parse(&line) {
            Ok(c) => c,
            Err(e) => return ephemeral(&format!("✗ {}\nusage: {}", e.message, e.usage)),
        };
        let key = format!("slack:command:{}", cmd.trigger_id);
        let place = Some(Recipient::SlackChannel(cmd.channel_id.clone()));
        match self.run(person, command, key, Reply::Url(Some(cmd.response_url.clone())), place).await {
            Some(reply) => ephemeral(&reply),
            None => ephemeral("Working on it; the answer will follow here."),
        }
    }

    /// An interaction: the acknowledgement body (`Value::Null` for an empty 200).
    pub async fn interaction(&self, i: Interaction) -> Value {
        match i {
            Interaction::BlockActions { user, actions, trigger_id, response_url, message, view } => {
                let Some(person) = self.person(&user) else {
                    self.respond_later(Reply::Url(response_url), unknown_user(&user));
                    return Value::Null;
                };
                let Some(action) = actions.first() else { return Value::Null };
                let handoff = action.value.as_deref().and_then(parse_id);
                // The App Home has no message to answer under: its answers go by DM, and a
                // click's replay key is of the tab as it was drawn.
                let home = view.as_ref().filter(|v| v.kind == "home").map(|v| json!({"ts": v.id, "text": v.hash}));
                let key =
                    click_key(&user, &action.action_id, action.value.as_deref(), message.as_ref().or(home.as_ref()));
                let reply = match home {
                    Some(_) => Reply::Dm { person: person.clone(), key: key.clone() },
                    None => Reply::Url(response_url),
                };
                match (action.action_id.as_str(), handoff) {
                    (home::NEW, _) => {
                        let form = modal::new_handoff(&self.app.model, &person, &Draft::default(), None);
                        self.open_modal(trigger_id, form, reply, usage("new"));
                    }
                    (home::REFRESH, _) => {
                        self.homes.opened(&user, Utc::now());
                        self.publish_home(user)
                    }
                    (modal::SEAM_PICK, _) => {
                        if let (Some(view), Some(seam)) = (view, action.selected_option.as_ref()) {
                            // The form grows the seam's contract and keeps what it carried.
                            let draft = Draft { seam: Some(seam.value.clone()), ..Draft::read(&view.private_metadata) };
                            let title = view.value("title");
                            let form = modal::new_handoff(&self.app.model, &person, &draft, title.as_deref());
                            let api = self.api.clone();
                            tokio::spawn(async move {
                                if let Err(e) = api.views_update(&view.id, &view.hash, &form, Utc::now()).await {
                                    tracing::error!("views.update failed: {e}");
                                }
                            });
                        }
                    }
                    (kind @ ("return" | "reject" | "snooze" | "update"), Some(id)) => {
                        self.open_reason_form(kind, id, trigger_id, reply);
                    }
                    ("record", Some(id)) => {
                        let me = self.clone();
                        tokio::spawn(async move {
                            if let Err(refused) = me.open_record_form(&person, id, trigger_id, reply.clone()).await {
                                me.respond_later(reply, refused);
                            }
                        });
                    }
                    ("resubmit", Some(id)) => {
                        let me = self.clone();
                        tokio::spawn(async move {
                            let opened = me.open_contract_form(&person, id, true, trigger_id, reply.clone());
                            if let Err(refused) = opened.await {
                                me.respond_later(reply, refused);
                            }
                        });
                    }
                    (kind @ ("accept" | "ack" | "done" | "approve" | "blocked" | "watch" | "unwatch"), Some(id)) => {
                        let command = match kind {
                            "accept" => Command::Accept(id),
                            "ack" => Command::Ack(id),
                            "done" => Command::Done(id),
                            "blocked" => Command::Recalibrate { id, playbook: None },
                            "watch" => Command::Watch { id, on: true },
                            "unwatch" => Command::Watch { id, on: false },
                            _ => Command::Approve(id),
                        };
                        let me = self.clone();
                        let from_home = matches!(reply, Reply::Dm { .. });
                        tokio::spawn(async move {
                            // The answer always goes after the acknowledgement: a block action's
                            // acknowledgement body is not shown.
                            if let Some(text) = me.run(person, command, key, reply.clone(), None).await {
                                me.respond_later(reply, text);
                            }
                            if from_home {
                                me.publish_home(user);
                            }
                        });
                    }
                    // A button from an older Baton, or one whose handoff reference was lost: said
                    // so where it was pressed (inputs inside a form have nowhere to answer).
                    (other, _) => {
                        tracing::debug!("unknown block action `{other}`");
                        let text = "✗ This button is out of date: `/handoff mine` lists what you can do now.";
                        self.respond_later(reply, text.to_string());
                    }
                }
                Value::Null
            }
            Interaction::ViewSubmission { user, view } => self.submission(&user, view).await,
            Interaction::Shortcut { user, callback_id, trigger_id } if callback_id == SHORTCUT_NEW => {
                // A global shortcut has no response_url: a form that cannot open is told by DM,
                // and someone Baton does not know is told in a form.
                match self.person(&user) {
                    Some(person) => {
                        let form = modal::new_handoff(&self.app.model, &person, &Draft::default(), None);
                        let reply = Reply::Dm { person, key: format!("slack:shortcut:{trigger_id}") };
                        self.open_modal(trigger_id, form, reply, usage("new"));
                    }
                    None => {
                        self.open_modal(trigger_id, modal::notice("Baton", &unknown_user(&user)), Reply::Url(None), "")
                    }
                }
                Value::Null
            }
            Interaction::MessageShortcut { user, callback_id, trigger_id, response_url, channel, message_ts, text }
                if callback_id == SHORTCUT_MESSAGE =>
            {
                self.hand_off_message(user, trigger_id, response_url, channel, message_ts, text);
                Value::Null
            }
            Interaction::Shortcut { callback_id, .. } | Interaction::MessageShortcut { callback_id, .. } => {
                tracing::debug!("ignored shortcut `{callback_id}`");
                Value::Null
            }
            Interaction::Other(kind) => {
                tracing::debug!("ignored interaction `{kind}`");
                Value::Null
            }
        }
    }

    /// *Hand off this message*: the new-handoff form, its title the message's first line, its
    /// source the message's link (Slack gets one of the three seconds the form has to open).
    fn hand_off_message(
        &self,
        user: String,
        trigger_id: String,
        response_url: Option<String>,
        channel: String,
        message_ts: String,
        text: String,
    ) {
        let Some(person) = self.person(&user) else {
            return self.respond_later(Reply::Url(response_url), unknown_user(&user));
        };
        let me = self.clone();
        tokio::spawn(async move {
            let asked = me.api.permalink(&channel, &message_ts, Utc::now());
            let source = match tokio::time::timeout(Duration::from_secs(1), asked).await {
                Ok(Ok(link)) => Some(link),
                Ok(Err(e)) => {
                    tracing::warn!("chat.getPermalink failed: {e}");
                    None
                }
                Err(_) => None,
            };
            let title = first_line(&typed_text(&text, |u| me.person(u)));
            let draft = Draft { seam: None, source, message: Some((channel, message_ts)) };
            let form = modal::new_handoff(&me.app.model, &person, &draft, Some(&title));
            me.open_modal(trigger_id, form, Reply::Url(response_url), usage("new"));
        });
    }

    async fn submission(&self, user: &str, view: View) -> Value {
        let errors =
            |map: std::collections::BTreeMap<String, String>| json!({"response_action": "errors", "errors": map});
        // Where a refusal that belongs to no input is shown: the form's first block.
        let first = match view.callback_id.as_str() {
            modal::NEW_HANDOFF => "seam",
            modal::EDIT_HANDOFF => "title",
            modal::RESUBMIT_HANDOFF => "note",
            modal::RECORD => "field:decision",
            _ => "reason",
        };
        let Some(person) = self.person(user) else {
            return errors([(first.to_string(), unknown_user(user))].into());
        };
        let command = match view.callback_id.as_str() {
            modal::NEW_HANDOFF => match modal::read_new_handoff(&self.app.model, &view) {
                Ok(c) => c,
                Err(e) => return errors(e),
            },
            modal::EDIT_HANDOFF | modal::RESUBMIT_HANDOFF => match modal::read_edit(&self.app.model, &view) {
                Ok(c) => c,
                Err(e) => return errors(e),
            },
            modal::RECORD => match modal::read_record(&self.app.model, &view) {
                Ok(c) => c,
                Err(e) => return errors(e),
            },
            modal::REASON => match modal::read_reason(&view) {
                Ok(c) => c,
                Err(e) => return errors(e),
            },
            other => {
                tracing::debug!("ignored submission of `{other}`");
                return Value::Null;
            }
        };
        let contract = matches!(
            command,
            Command::New { .. } | Command::Edit { .. } | Command::Resubmit { .. } | Command::Record { .. }
        );
        let key = format!("slack:view:{}:{}", view.id, view.hash);
        let now = Utc::now();
        match self.app.handle(&person, Surface::Slack, command, now, Some(&key)).await {
            Ok(reply) => {
                // A modal has no response_url: the confirmation goes to the person by DM.
                let dm = Intent::message(Recipient::Person(person.clone()), IntentKind::Notice, reply.clone());
                if let Err(e) = self.app.reply_once(&format!("{key}:reply"), &dm, now).await {
                    tracing::error!("queueing the confirmation failed: {e}");
                }
                // The form may have been opened from the App Home, which should show the change.
                self.publish_home(user.to_string());
                // Handed off from a message: its thread hears of the handoff.
                if view.callback_id == modal::NEW_HANDOFF
                    && let Some((channel, ts)) = Draft::read(&view.private_metadata).message
                {
                    let said = reply.split(". ").next().unwrap_or(&reply).trim_end_matches('.');
                    let text = format!("{} handed this off: {said}.", self.app.model.name_of(&person));
                    let api = self.api.clone();
                    tokio::spawn(async move {
                        let tell = || api.reply_in_thread(&channel, &ts, &text, Utc::now());
                        retried("the reply in the message's thread", tell).await;
                    });
                }
                json!({"response_action": "clear"})
            }
            Err(AppError::Duplicate) => json!({"response_action": "clear"}),
            Err(AppError::Rejected(r)) if contract => errors(modal::errors_for(&r, first)),
            Err(AppError::Rejected(r)) => errors([(first.to_string(), format!("✗ {r}"))].into()),
            Err(AppError::Internal(e)) => {
                tracing::error!("submission failed: {e:#}");
                errors(
                    [(first.to_string(), "Something went wrong on Baton's side; please submit again.".into())].into(),
                )
            }
        }
    }

    /// An Events API request: the acknowledgement body.
    pub async fn event(&self, e: EventRequest) -> Value {
        match e {
            EventRequest::UrlVerification { challenge } => json!({"challenge": challenge}),
            EventRequest::Callback { event_id, event: Event::AppMention { user, text, channel } } => {
                let me = self.clone();
                tokio::spawn(async move {
                    let reply = me.mention_reply(&user, &text).await;
                    let intent = Intent::message(Recipient::SlackChannel(channel), IntentKind::Notice, reply);
                    // Slack retries an event it thinks was missed; its id makes the reply once.
                    if let Err(e) = me.app.reply_once(&format!("slack:event:{event_id}"), &intent, Utc::now()).await {
                        tracing::error!("answering a mention failed: {e}");
                    }
                });
                Value::Null
            }
            EventRequest::Callback { event: Event::AppHomeOpened { user, tab }, .. } => {
                // Drawn afresh at every visit (publishing again is harmless, so Slack's retries
                // need no key).
                if tab == "home" {
                    self.homes.opened(&user, Utc::now());
                    self.publish_home(user);
                }
                Value::Null
            }
            EventRequest::Callback { event_id, event: Event::ThreadReply { user, thread_ts, text } } => {
                // Kept with the handoff when the thread is one of its recalibrations, said by
                // someone Baton knows; once however often Slack delivers the event.
                let me = self.clone();
                tokio::spawn(async move {
                    let Some(person) = me.person(&user) else { return };
                    let text = typed_text(&text, |u| me.person(u));
                    let key = format!("slack:event:{event_id}");
                    match me
                        .app
                        .thread_reply(
                            crate::deliver::SLACK_THREAD,
                            &thread_ts,
                            &person,
                            &text,
                            Surface::Slack,
                            Utc::now(),
                            &key,
                        )
                        .await
                    {
                        Ok(_) | Err(AppError::Duplicate) => {}
                        Err(e) => tracing::warn!("keeping a thread reply failed: {e:#}"),
                    }
                });
                Value::Null
            }
            EventRequest::Callback { event: Event::Other(kind), .. } => {
                tracing::debug!("ignored event `{kind}`");
                Value::Null
            }
        }
    }

    /// Publishes the App Home tab of Slack user `user` (after the acknowledgement): their plate,
    /// or why Baton cannot show one. Retried a few times when Slack is busy.
    fn publish_home(&self, user: String) {
        let me = self.clone();
        tokio::spawn(async move {
            let now = Utc::now();
            let view = match me.person(&user) {
                None => home::notice(&unknown_user(&user), now),
                Some(person) => match me.app.plate(&person, now).await {
                    Ok(plate) => {
                        me.draw_home(&user, &plate, now).await;
                        return;
                    }
                    Err(e) => home::notice(&outcome(Err(e)), now),
                },
            };
            retried("views.publish", || me.api.views_publish(&user, &view, Utc::now())).await;
        });
    }

    /// Publishes `user`'s Home tab showing `plate` and remembers what it showed; says whether it
    /// went through.
    async fn draw_home(&self, user: &str, plate: &baton_core::plate::Plate, now: chrono::DateTime<Utc>) -> bool {
        let view = home::view(plate, now);
        let drawn = retried("views.publish", || self.api.views_publish(user, &view, Utc::now())).await;
        if drawn {
            self.homes.drawn(user, home::fingerprint(plate));
        }
        drawn
    }

    /// Draws again each watched Home tab whose plate changed since it was last drawn (another
    /// person took a handoff on it, a stall opened); returns how many it drew.
    pub async fn refresh_homes(&self, now: chrono::DateTime<Utc>) -> usize {
        let mut drawn = 0;
        for (user, shown) in self.homes.watched(now) {
            let Some(person) = self.person(&user) else { continue };
            let plate = match self.app.plate(&person, now).await {
                Ok(plate) => plate,
                Err(e) => {
                    tracing::warn!("reading {user}'s handoffs for their Home tab failed: {e}");
                    continue;
                }
            };
            if shown != Some(home::fingerprint(&plate)) && self.draw_home(&user, &plate, now).await {
                drawn += 1;
            }
        }
        drawn
    }

    /// Every [`home::REFRESH_EVERY`] until `stop`, draws again the watched Home tabs whose plates
    /// changed.
    pub async fn watch_homes(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(home::REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.refresh_homes(Utc::now()).await;
                }
                _ = stop.changed() => return,
            }
        }
    }

    /// `@baton H-12` answers with the card.
    async fn mention_reply(&self, user: &str, text: &str) -> String {
        if self.person(user).is_none() {
            return unknown_user(user);
        }
        let Some(id) = text.split_whitespace().find_map(parse_id) else {
            return "Mention me with a handoff to see its card, like `@baton H-12`; `/handoff help` lists the commands."
                .into();
        };
        match self.app.get(id).await {
            Ok(h) => match Ctx::new(&self.app.model, &h.seam) {
                Ok(ctx) => render::card(&ctx, &h, Utc::now()),
                Err(r) => format!("✗ {r}"),
            },
            Err(e) => outcome(Err(e)),
        }
    }
}

/// The replay key of a button click: the same person pressing the same button on the same
/// rendering of a message (a double click, or a replayed request) acts once; once the card has
/// changed, the button works again.
pub fn click_key(user: &str, action: &str, value: Option<&str>, message: Option<&Value>) -> String {
    let mut h = Sha256::new();
    for part in [user, action, value.unwrap_or("")] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    if let Some(m) = message {
        h.update(m["ts"].as_str().unwrap_or("").as_bytes());
        h.update(m["text"].as_str().unwrap_or("").as_bytes());
        h.update(m["blocks"].to_string().as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("slack:click:{hex}")
}
