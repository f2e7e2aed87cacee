//! Slack end to end: genuinely signed requests in Slack's wire format through `baton serve`'s
//! real routes, a fake Slack Web API that checks token and bodies, and the database behind.

use std::time::Duration as StdDuration;

use baton::app::App;
use baton::deliver::{Limits, Outbound};
use baton::serve::Server;
use baton::slack::routes::Endpoints;
use baton::slack::{Slack, SlackApi};
use baton_core::{State, Surface};
use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::fake_slack::{APP_TOKEN, FakeSlack, Scripted, TOKEN};
use crate::support::{Running, app, eventually, postgres, repo, sqlite};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const RITA: &str = "U0RITA0001";
const ANA: &str = "U0ANA00001";
const CARLA: &str = "U0CARLA001";
const BEN: &str = "U0BEN00001";

/// `baton serve` with Slack configured against a fake.
struct Bot {
    slack: FakeSlack,
    app: App,
    running: Running,
    http: reqwest::Client,
    /// The server's Slack handler (its watched Home tabs are the server's).
    handler: Slack,
}

async fn bot_with(socket: bool) -> Bot {
    bot_on(sqlite().await, socket).await
}

async fn bot_on(store: baton::store::Store, socket: bool) -> Bot {
    let slack = FakeSlack::start().await;
    let app = app(store);
    let api = SlackApi::new(&slack.url, TOKEN, Limits::default());
    let ack_budget = baton::slack::handler::ACK_BUDGET;
    let handler = Slack { app: app.clone(), api: api.clone(), ack_budget, homes: Default::default() };
    let server = Server {
        poll: StdDuration::from_millis(50),
        lease: Duration::seconds(30),
        slack: Endpoints { slack: Some(handler.clone()), signing_secret: Some(SECRET.into()) },
        socket_mode: socket.then(|| (slack.url.clone(), APP_TOKEN.to_string())),
        ..Server::new(app.clone(), Outbound { slack: Some(api), ..Outbound::default() })
    };
    let running = Running::start(server).await;
    Bot { slack, app, running, http: reqwest::Client::new(), handler }
}

async fn bot() -> Bot {
    bot_with(false).await
}

use baton::slack::verify::sign as signature;

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("form")
}

impl Bot {
    async fn post(&self, path: &str, content_type: &str, body: String, headers: &[(&str, String)]) -> (u16, String) {
        let mut req =
            self.http.post(format!("{}{path}", self.running.url)).header("content-type", content_type).body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.expect("request");
        (resp.status().as_u16(), resp.text().await.unwrap_or_default())
    }

    async fn signed(&self, path: &str, content_type: &str, body: String) -> (u16, String) {
        let ts = Utc::now().timestamp();
        let sig = signature(SECRET, ts, &body);
        self.post(
            path,
            content_type,
            body,
            &[("x-slack-request-timestamp", ts.to_string()), ("x-slack-signature", sig)],
        )
        .await
    }

    fn command_body(&self, user: &str, text: &str, trigger: &str) -> String {
        self.slash_body("/handoff", user, text, trigger)
    }

    fn slash_body(&self, command: &str, user: &str, text: &str, trigger: &str) -> String {
        form(&[
            ("token", "legacy"),
            ("team_id", "T0001"),
            ("enterprise_id", "E0001"),
            ("channel_id", "C0001"),
            ("user_id", user),
            ("command", command),
            ("text", text),
            ("response_url", &format!("{}/hooks/commands/1", self.slack.url)),
            ("trigger_id", trigger),
        ])
    }

    async fn command(&self, user: &str, text: &str, trigger: &str) -> (u16, Value) {
        let (status, body) = self
            .signed("/slack/commands", "application/x-www-form-urlencoded", self.command_body(user, text, trigger))
            .await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// A slash command other than `/handoff` (`/ack`, `/approve`, …).
    async fn slash(&self, command: &str, user: &str, text: &str, trigger: &str) -> Value {
        let body = self.slash_body(command, user, text, trigger);
        let (_, body) = self.signed("/slack/commands", "application/x-www-form-urlencoded", body).await;
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    async fn interact(&self, payload: &Value) -> (u16, Value) {
        let body = form(&[("payload", &payload.to_string())]);
        let (status, body) = self.signed("/slack/interactions", "application/x-www-form-urlencoded", body).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(self.app.store.pool()).await.expect(sql)
    }

    async fn delivered(&self) {
        eventually(10, "the outbox drains", || async { self.app.store.outbox_depth().await.unwrap_or(1) == 0 }).await;
    }

    /// Rita hands Acme off by command and Ana accepts it from the channel's card; her own card is
    /// delivered.
    async fn acme_accepted_by_ana(&self) {
        self.command(RITA, ACME, "trig-1").await;
        self.delivered().await;
        self.interact(&self.click(ANA, "accept", "#cs-handoffs")).await;
        eventually(10, "Ana's card", || async { !self.slack.history(ANA).is_empty() }).await;
        self.delivered().await;
    }

    /// A signed Events API callback carrying `event`.
    async fn event(&self, id: &str, event: Value) -> u16 {
        let body = json!({"token": "legacy", "team_id": "T0001", "api_app_id": "A1", "type": "event_callback",
            "event_id": id, "event_time": 1, "event": event});
        self.signed("/slack/events", "application/json", body.to_string()).await.0
    }

    /// `user` opening Baton's App Home on `tab` (`home` or `messages`).
    async fn open_home(&self, user: &str, tab: &str, id: &str) -> u16 {
        let event = json!({"type": "app_home_opened", "user": user, "channel": format!("D_{user}"), "tab": tab,
            "event_ts": "1.1"});
        self.event(id, event).await
    }

    /// A click on button `action` (of handoff `value`, if given) in `user`'s App Home as it now
    /// stands: no message and no `response_url`, the tab's view instead.
    fn home_click(&self, user: &str, action: &str, value: Option<&str>) -> Value {
        let home = self.slack.home(user).expect("a published home");
        let found = buttons(&home).any(|e| e["action_id"] == action && value.is_none_or(|v| e["value"] == v));
        assert!(found, "no `{action}` button for {value:?} in {user}'s home: {home}");
        let mut click = json!({"action_id": action, "block_id": "b", "type": "button",
                               "action_ts": format!("{}", Utc::now().timestamp_micros())});
        if let Some(v) = value {
            click["value"] = json!(v);
        }
        json!({
            "type": "block_actions", "team": {"id": "T0001", "domain": "example"}, "user": {"id": user},
            "api_app_id": "A1", "token": "legacy", "trigger_id": format!("trig-home-{action}-{user}"),
            "container": {"type": "view", "view_id": home["id"]},
            "view": {"id": home["id"], "hash": home["hash"], "type": "home", "callback_id": "",
                     "private_metadata": "", "blocks": home["blocks"], "state": {"values": {}}},
            "actions": [click],
        })
    }

    /// A click on a button of the card as it now stands in `channel`.
    fn click(&self, user: &str, action: &str, channel: &str) -> Value {
        let message = self.slack.history(channel).last().cloned().expect("a card");
        let value = buttons(&message)
            .find(|e| e["action_id"] == action)
            .map(|e| e["value"].clone())
            .unwrap_or_else(|| panic!("no `{action}` button on {message}"));
        json!({
            "type": "block_actions", "team": {"id": "T0001", "domain": "example"}, "user": {"id": user},
            "api_app_id": "A1", "token": "legacy", "trigger_id": format!("trig-{action}-{user}"),
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel},
            "channel": {"id": channel}, "message": message,
            "response_url": format!("{}/hooks/actions/1", self.slack.url),
            "actions": [{"action_id": action, "block_id": "b", "value": value, "type": "button",
                         "action_ts": format!("{}", Utc::now().timestamp_micros())}],
        })
    }
}

/// The elements of a message's or a view's actions blocks.
fn buttons(v: &Value) -> impl Iterator<Item = &Value> {
    v["blocks"].as_array().into_iter().flatten().filter_map(|b| b["elements"].as_array()).flatten()
}

const ACME: &str = r#"new sales-to-cs "Acme renewal" account=Acme arr=120000 segment=enterprise"#;

#[tokio::test]
async fn a_rep_hands_off_by_slash_command_and_the_card_moves_in_place_as_it_is_accepted() {
    let bot = bot().await;
    let (status, reply) = bot.command(RITA, ACME, "trig-1").await;
    assert_eq!(status, 200);
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(reply["text"].as_str().expect("text").contains("H-1"), "{reply}");
    bot.delivered().await;
    let channel = bot.slack.history("#cs-handoffs");
    assert_eq!(channel.len(), 1);
    let ids: Vec<&str> = buttons(&channel[0]).filter_map(|e| e["action_id"].as_str()).collect();
    assert_eq!(ids, ["accept", "return", "watch"]);

    // Ana presses Accept; the answer arrives through response_url, the card is edited in place
    // and Ana gets her own card by DM.
    let (status, _) = bot.interact(&bot.click(ANA, "accept", "#cs-handoffs")).await;
    assert_eq!(status, 200);
    eventually(10, "the answer", || async { !bot.slack.responses().is_empty() }).await;
    let answer = bot.slack.responses()[0]["text"].as_str().expect("text").to_string();
    assert!(answer.contains("You own H-1 now"), "{answer}");
    bot.delivered().await;
    let channel = bot.slack.history("#cs-handoffs");
    assert_eq!(channel.len(), 1, "edited, not reposted");
    assert!(channel[0]["text"].as_str().expect("text").contains("Ana Alves"));
    let dm = bot.slack.history(ANA);
    assert!(dm.iter().any(|m| m["blocks"].to_string().contains("\"ack\"")), "Ana's card offers Acknowledge: {dm:?}");
    // Mark done asks first: the gate cannot be taken back.
    let done = dm.iter().flat_map(buttons).find(|b| b["action_id"] == "done").expect("Mark done on Ana's card");
    assert_eq!(done["confirm"]["title"]["text"], "Mark H-1 done?", "{done}");

    // Carla gives it to Ben: Ana is told, and her card, edited in place, offers her nothing more.
    bot.command(CARLA, "reassign H-1 ben", "trig-reassign").await;
    bot.delivered().await;
    let dm = bot.slack.history(ANA);
    assert_eq!(dm.len(), 2, "the card edited, one notice: {dm:?}");
    assert!(dm[0]["text"].as_str().expect("card").contains("Owner: Ben Brooks"), "{}", dm[0]);
    assert!(!dm[0]["blocks"].to_string().contains("\"action_id\""), "no buttons: {}", dm[0]["blocks"]);
    assert!(dm[1]["text"].as_str().expect("notice").ends_with("to Ben Brooks; it is no longer yours."), "{}", dm[1]);

    // A button Baton no longer knows (an older release's) is answered, not ignored.
    let mut old = bot.click("U0SAM00001", "watch", "#cs-handoffs");
    old["actions"][0]["action_id"] = json!("escalate-to-cfo");
    bot.interact(&old).await;
    eventually(10, "the answer", || async {
        bot.slack
            .responses()
            .iter()
            .any(|r| r["text"].as_str().unwrap_or("").starts_with("✗ This button is out of date"))
    })
    .await;

    // Sam follows it from the channel's card: he is answered there, and told when it moves.
    bot.interact(&bot.click("U0SAM00001", "watch", "#cs-handoffs")).await;
    eventually(10, "the answer", || async {
        bot.slack.responses().iter().any(|r| r["text"].as_str().unwrap_or("").starts_with("You watch H-1 now"))
    })
    .await;
    bot.command(BEN, "accept H-1", "trig-ben").await;
    bot.delivered().await;
    let sams = bot.slack.history("U0SAM00001");
    assert!(
        sams.iter()
            .any(|m| m["text"].as_str().unwrap_or("").contains("which you watch: Ben Brooks (Slack) accepted it")),
        "{sams:?}"
    );
    // Stop watching, from the notice itself.
    bot.interact(&bot.click("U0SAM00001", "unwatch", "U0SAM00001")).await;
    eventually(10, "no longer watching", || async { bot.app.get(1).await.is_ok_and(|h| h.watchers.is_empty()) }).await;
    running_stop(bot).await;
}

async fn running_stop(bot: Bot) {
    bot.running.stop().await;
}

#[tokio::test]
async fn a_double_clicked_or_replayed_button_acts_once() {
    let bot = bot().await;
    bot.command(RITA, ACME, "trig-1").await;
    bot.delivered().await;
    let click = bot.click(ANA, "accept", "#cs-handoffs");
    let (a, b) = tokio::join!(bot.interact(&click), bot.interact(&click));
    assert_eq!((a.0, b.0), (200, 200));
    eventually(10, "both answers", || async { bot.slack.responses().len() == 2 }).await;
    assert_eq!(bot.count("SELECT COUNT(*) FROM events WHERE kind = 'accepted'").await, 1);
    let texts: Vec<String> =
        bot.slack.responses().iter().map(|r| r["text"].as_str().unwrap_or("").to_string()).collect();
    assert!(texts.iter().any(|t| t.contains("already handled")), "{texts:?}");
    running_stop(bot).await;
}

#[tokio::test]
async fn a_form_slack_will_not_open_is_answered_with_the_command_to_type_instead() {
    let bot = bot().await;
    // Slack refuses a trigger older than three seconds.
    bot.slack.script("views.open", vec![Scripted::Error("expired_trigger_id")]);
    let (status, body) = bot.command(RITA, "", "trig-late").await;
    assert_eq!((status, body), (200, Value::Null), "an empty acknowledgement");
    eventually(10, "the answer", || async { !bot.slack.responses().is_empty() }).await;
    let answer = bot.slack.responses()[0]["text"].as_str().expect("text").to_string();
    assert!(answer.contains("could not open the form") && answer.contains("expired_trigger_id"), "{answer}");
    assert!(answer.contains("/handoff new &lt;seam&gt;"), "the command to type, escaped for Slack: {answer}");
    running_stop(bot).await;
}

#[tokio::test]
async fn the_new_handoff_modal_asks_for_the_seams_contract_and_reports_errors_inline() {
    let bot = bot().await;
    let (status, body) = bot.command(RITA, "", "trig-modal").await;
    assert_eq!((status, body), (200, Value::Null), "an empty acknowledgement");
    eventually(10, "views.open", || async { !bot.slack.ok_calls("views.open").is_empty() }).await;
    let opened = &bot.slack.ok_calls("views.open")[0].body;
    assert_eq!(opened["trigger_id"], "trig-modal");
    assert_eq!(opened["view"]["callback_id"], "handoff_new");

    // Picking the seam grows the form with its contract.
    let view = json!({"id": "V1", "hash": "h1", "callback_id": "handoff_new", "private_metadata": "",
                      "state": {"values": {}}});
    let pick = json!({"type": "block_actions", "team": null, "enterprise": {"id": "E0001"}, "user": {"id": RITA},
        "trigger_id": "trig-pick", "view": view,
        "actions": [{"action_id": "seam_pick", "block_id": "seam", "type": "static_select",
                     "selected_option": {"value": "sales-to-cs"}}]});
    assert_eq!(bot.interact(&pick).await.0, 200);
    eventually(10, "views.update", || async { !bot.slack.ok_calls("views.update").is_empty() }).await;
    let form = bot.slack.ok_calls("views.update")[0].body["view"].clone();
    let block = |id: &str| {
        form["blocks"].as_array().expect("blocks").iter().find(|b| b["block_id"] == id).cloned().unwrap_or(Value::Null)
    };
    assert_eq!(block("field:account")["element"]["type"], "plain_text_input");
    assert_eq!(block("field:arr")["element"]["type"], "number_input");
    assert_eq!(block("field:segment")["element"]["type"], "static_select");
    assert_eq!(block("field:kickoff")["element"]["type"], "datepicker");
    assert_eq!(block("field:crm")["element"]["type"], "url_text_input");
    assert_eq!(block("field:account")["optional"], false);
    assert_eq!(block("field:kickoff")["optional"], true);
    assert_eq!(block("field:account")["hint"]["text"], "CRM account name");

    // Submitted without the required fields: inline errors, nothing created.
    let submit = |values: Value| {
        json!({"type": "view_submission", "team": {"id": "T0001"}, "user": {"id": RITA},
               "view": {"id": "V1", "hash": format!("h-{}", values.to_string().len()), "callback_id": "handoff_new",
                        "private_metadata": "sales-to-cs", "state": {"values": values}}})
    };
    let input = |v: &str| json!({"a": {"type": "plain_text_input", "value": v}});
    let partial = json!({"title": input("Acme renewal"), "field:account": input("Acme"),
                         "field:arr": {"arr": {"type": "number_input", "value": "lots"}}});
    let (status, answer) = bot.interact(&submit(partial)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["response_action"], "errors", "{answer}");
    assert!(answer["errors"]["field:arr"].as_str().expect("arr error").contains("number"), "{answer}");
    assert!(answer["errors"]["field:segment"].is_string(), "{answer}");
    assert_eq!(bot.count("SELECT COUNT(*) FROM handoffs").await, 0);

    // What the form's inputs hold is checked as a typed line is: invisible characters are named
    // under their input (PostgreSQL would refuse a NUL).
    let hidden = json!({"title": input("Acme\u{1b}[31m renewal"), "field:account": input("Ac\u{0}me"),
                        "field:arr": {"arr": {"type": "number_input", "value": "120000"}},
                        "field:segment": {"segment": {"type": "static_select", "selected_option": {"value": "smb"}}}});
    let (_, answer) = bot.interact(&submit(hidden)).await;
    assert_eq!(
        answer["errors"]["title"], "`title` holds an invisible control character (U+001B); type it again without it",
        "{answer}"
    );
    assert!(answer["errors"]["field:account"].as_str().is_some_and(|e| e.contains("(U+0000)")), "{answer}");
    assert_eq!(bot.count("SELECT COUNT(*) FROM handoffs").await, 0);

    let full = json!({"title": input("Acme renewal"), "field:account": input("Acme"),
                      "field:arr": {"arr": {"type": "number_input", "value": "120000"}},
                      "field:segment": {"segment": {"type": "static_select", "selected_option": {"value": "enterprise"}}},
                      "field:kickoff": {"kickoff": {"type": "datepicker", "selected_date": "2026-12-07"}}});
    let (status, answer) = bot.interact(&submit(full.clone())).await;
    assert_eq!((status, answer), (200, json!({"response_action": "clear"})));
    assert_eq!(bot.count("SELECT COUNT(*) FROM handoffs").await, 1);
    // The same account handed off again in another form: the seam takes one open handoff per
    // account, and the account's input says which is open.
    let mut again = full;
    again["title"] = input("Acme upsell");
    let (_, answer) = bot.interact(&submit(again)).await;
    assert_eq!(
        answer["errors"]["field:account"],
        "H-1 is open with this account: add to it (`/handoff comment H-1 …`), or have it cancelled first.",
        "{answer}"
    );
    assert_eq!(bot.count("SELECT COUNT(*) FROM handoffs").await, 1);
    bot.delivered().await;
    assert!(
        bot.slack.history(RITA).iter().any(|m| m["text"].as_str().unwrap_or("").contains("H-1")),
        "confirmation DM"
    );
    // The form may have come from the App Home: Rita's is drawn again with what she handed off.
    eventually(10, "Rita's home", || async { bot.slack.home(RITA).is_some_and(|h| h.to_string().contains("H-1")) })
        .await;
    running_stop(bot).await;
}

#[tokio::test]
async fn the_requester_edits_a_handoff_in_a_form_filled_with_what_it_holds() {
    let bot = bot().await;
    bot.acme_accepted_by_ana().await;
    // Only the requester (or the sending lead) gets the form; anyone else is told who can.
    let (_, said) = bot.command(ANA, "edit H-1", "trig-ana-edit").await;
    assert_eq!(said["text"], "✗ only the requester of H-1, Rita Reyes, can edit it");
    let (_, said) = bot.command(RITA, "edit H-9", "trig-edit-9").await;
    assert_eq!(said["text"], "✗ there is no handoff H-9");
    let (status, said) = bot.command(RITA, "edit H-1", "trig-edit").await;
    assert_eq!((status, said), (200, Value::Null), "no answer but the form");
    eventually(10, "views.open", || async { !bot.slack.ok_calls("views.open").is_empty() }).await;
    let view = bot.slack.ok_calls("views.open")[0].body["view"].clone();
    assert_eq!(
        (view["callback_id"].as_str(), view["private_metadata"].as_str()),
        (Some("handoff_edit"), Some("sales-to-cs:H-1"))
    );
    let block = |id: &str| {
        view["blocks"].as_array().expect("blocks").iter().find(|b| b["block_id"] == id).cloned().unwrap_or(Value::Null)
    };
    assert_eq!(block("title")["element"]["initial_value"], "Acme renewal");
    assert_eq!(block("field:arr")["element"]["initial_value"], "120000");
    assert_eq!(block("field:segment")["element"]["initial_option"]["value"], "enterprise");
    assert!(block("field:kickoff")["element"]["initial_date"].is_null());

    let submit = |values: Value| {
        json!({"type": "view_submission", "team": {"id": "T0001"}, "user": {"id": RITA},
               "view": {"id": "V-edit", "hash": format!("h-{}", values.to_string().len()), "callback_id": "handoff_edit",
                        "private_metadata": "sales-to-cs:H-1", "state": {"values": values}}})
    };
    let input = |v: &str| json!({"a": {"type": "plain_text_input", "value": v}});
    let form = |arr: &str, account: &str, kickoff: Option<&str>| {
        json!({"title": input("Acme renewal"), "field:account": input(account),
               "field:arr": {"arr": {"type": "number_input", "value": arr}},
               "field:segment": {"segment": {"type": "static_select", "selected_option": {"value": "enterprise"}}},
               "field:kickoff": {"kickoff": {"type": "datepicker", "selected_date": kickoff}},
               "field:crm": {"crm": {"type": "url_text_input", "value": null}},
               "note": input("the signed figure")})
    };
    // Saved as it was, or with a required field emptied: said under the form's inputs.
    let (_, answer) = bot.interact(&submit(form("120000", "Acme", None))).await;
    assert_eq!(answer["errors"]["title"], "nothing to change: H-1 already holds that", "{answer}");
    let (_, answer) = bot.interact(&submit(form("150000", "", None))).await;
    assert!(
        answer["errors"]["field:account"].as_str().is_some_and(|e| e.contains("`account` is required")),
        "{answer}"
    );
    let changed = submit(form("150000", "Acme", Some("2026-12-07")));
    let (_, answer) = bot.interact(&changed).await;
    assert_eq!(answer, json!({"response_action": "clear"}));
    // Slack sending the same submission again changes nothing more.
    assert_eq!(bot.interact(&changed).await.1, json!({"response_action": "clear"}));
    assert_eq!(bot.count("SELECT COUNT(*) FROM events WHERE kind = 'edited'").await, 1);
    let h = bot.app.get(1).await.expect("H-1");
    assert_eq!((h.fields["arr"].as_str(), h.fields.get("kickoff").map(String::as_str)), ("150000", Some("2026-12-07")));
    bot.delivered().await;
    let told = bot.slack.history(ANA).iter().filter_map(|m| m["text"].as_str().map(String::from)).collect::<Vec<_>>();
    let notice = "H-1 \"Acme renewal\" was changed by Rita Reyes: arr 120000 → 150000; kickoff 2026-12-07 (added).\nthe signed figure";
    assert!(told.iter().any(|t| t == notice), "{told:?}");
    let channel = bot.slack.history("#cs-handoffs");
    assert_eq!(channel.len(), 1, "the card is edited in place");
    assert!(channel[0]["text"].as_str().is_some_and(|t| t.contains("arr: 150000")), "{}", channel[0]["text"]);
    // Typed with its changes, the command needs no form.
    let (_, said) = bot.command(RITA, r#"edit H-1 title="Acme renewal 2027""#, "trig-typed").await;
    assert_eq!(said["text"], r#"H-1 changed: title "Acme renewal" → "Acme renewal 2027"."#);
    assert_eq!(bot.slack.ok_calls("views.open").len(), 1);
    // A title over 200 characters is refused, saying so; the longest title and value a command
    // takes open in the form whole.
    let long = "Acme renewal, ".repeat(15);
    let new = |title: &str, account: &str| format!(r#"new sales-to-cs "{title}" account={account} arr=1 segment=smb"#);
    let (_, refused) = bot.command(RITA, &new(&long, "Acme"), "trig-too-long").await;
    assert!(
        refused["text"].as_str().expect("text").contains("title: at most 200 characters (this one has 209)"),
        "{refused}"
    );
    let (title, account) = ("t".repeat(200), "a".repeat(2000));
    bot.command(RITA, &new(&title, &account), "trig-long").await;
    assert_eq!(bot.command(RITA, "edit H-2", "trig-edit-long").await.1, Value::Null);
    eventually(10, "the long form", || async { bot.slack.ok_calls("views.open").len() == 2 }).await;
    let blocks = bot.slack.ok_calls("views.open")[1].body["view"]["blocks"].clone();
    assert_eq!(blocks[0]["element"]["initial_value"].as_str(), Some(title.as_str()), "{}", blocks[0]);
    let input =
        blocks.as_array().expect("blocks").iter().find(|b| b["element"]["action_id"] == "account").expect("account");
    assert_eq!(input["element"]["initial_value"].as_str(), Some(account.as_str()));
    assert_eq!(input["element"]["max_length"], 2000);
    running_stop(bot).await;
}

#[tokio::test]
async fn a_recalibrations_outcome_is_recorded_in_a_form_built_from_its_playbook() {
    let bot = bot().await;
    bot.acme_accepted_by_ana().await;
    bot.command(ANA, "recalibrate H-1 ownership-dispute", "trig-recal").await;
    bot.delivered().await;
    let opening = (bot.slack.history("#cs-handoffs").into_iter())
        .find(|m| m["text"].as_str().is_some_and(|t| t.contains("Recalibration convened")))
        .expect("the recalibration's opening post");
    let record = buttons(&opening).find(|b| b["action_id"] == "record").expect("Record outcome");
    assert_eq!(record["text"]["text"], "Record outcome");

    // What is said in its thread is kept with the handoff's log, once however often Slack sends it;
    // a bot's post, an edit, a stranger's reply and a reply in another thread are not.
    let thread = opening["ts"].as_str().expect("ts").to_string();
    let reply = |user: &str, ts: &str, text: &str, parent: &str| {
        json!({"type": "message", "channel": "C0CS", "user": user, "text": text, "ts": ts, "thread_ts": parent,
               "event_ts": ts, "channel_type": "channel"})
    };
    let said = reply(ANA, "1800000000.000100", "the renewal terms are with <@U0CARLA001>", &thread);
    assert_eq!(bot.event("Ev-r1", said.clone()).await, 200);
    assert_eq!(bot.event("Ev-r1", said).await, 200, "Slack's retry");
    let mut edit = reply(ANA, "1800000000.000200", "edited", &thread);
    edit["subtype"] = json!("message_changed");
    bot.event("Ev-r2", edit).await;
    let mut bots = reply(ANA, "1800000000.000300", "a bot", &thread);
    bots["bot_id"] = json!("B0BATON");
    bot.event("Ev-r3", bots).await;
    bot.event("Ev-r4", reply("U0NOBODY01", "1800000000.000400", "who am I", &thread)).await;
    bot.event("Ev-r5", reply(ANA, "1800000000.000500", "elsewhere", "1700000000.999999")).await;
    eventually(10, "the reply kept", || async {
        bot.count("SELECT COUNT(*) FROM events WHERE kind = 'discussed'").await == 1
    })
    .await;
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(bot.count("SELECT COUNT(*) FROM events WHERE kind = 'discussed'").await, 1);
    let (_, log) = bot.command(CARLA, "log H-1", "trig-log").await;
    let log = log["text"].as_str().expect("log");
    assert!(
        log.contains("Ana Alves (Slack) said in the recalibration thread: “the renewal terms are with @carla”"),
        "{log}"
    );

    // Rita, the requester, may not record it: she is told, and no form opens.
    bot.interact(&bot.click(RITA, "record", "#cs-handoffs")).await;
    eventually(10, "Rita's refusal", || async {
        bot.slack.responses().iter().any(|r| r["text"].as_str().unwrap_or("").starts_with("✗"))
    })
    .await;
    assert!(bot.slack.ok_calls("views.open").is_empty());
    // Carla, the lead, gets the form: one input per field of the playbook's artifact, typed.
    bot.interact(&bot.click(CARLA, "record", "#cs-handoffs")).await;
    eventually(10, "the form", || async { !bot.slack.ok_calls("views.open").is_empty() }).await;
    let view = bot.slack.ok_calls("views.open")[0].body["view"].clone();
    assert_eq!(
        (view["callback_id"].as_str(), view["private_metadata"].as_str()),
        (Some("handoff_record"), Some("H-1:ownership-dispute"))
    );
    let blocks = view["blocks"].as_array().expect("blocks");
    let kinds: Vec<(&str, &str)> = blocks
        .iter()
        .map(|b| (b["block_id"].as_str().unwrap_or(""), b["element"]["type"].as_str().unwrap_or("")))
        .collect();
    assert!(kinds.contains(&("field:decision", "static_select")), "{kinds:?}");
    assert!(kinds.contains(&("field:new_owner", "users_select")), "{kinds:?}");
    assert!(kinds.contains(&("field:new_date", "datepicker")), "{kinds:?}");
    assert!(kinds.contains(&("field:assumption_broke", "plain_text_input")), "{kinds:?}");
    let categories = blocks.iter().find(|b| b["block_id"] == "field:category").expect("category");
    let offered: Vec<&str> = categories["element"]["options"]
        .as_array()
        .expect("options")
        .iter()
        .filter_map(|o| o["value"].as_str())
        .collect();
    assert_eq!(offered, bot.app.model.categories, "the taxonomy, in order");

    let submit = |values: Value| {
        json!({"type": "view_submission", "team": {"id": "T0001"}, "user": {"id": CARLA},
               "view": {"id": "V-record", "hash": format!("h-{}", values.to_string().len()), "callback_id": "handoff_record",
                        "private_metadata": "H-1:ownership-dispute", "state": {"values": values}}})
    };
    let pick = |v: &str| json!({"a": {"type": "static_select", "selected_option": {"value": v}}});
    let text = |v: &str| json!({"a": {"type": "plain_text_input", "value": v}});
    // A new owner decided but not named: said under that input.
    let (_, answer) = bot
        .interact(&submit(json!({"field:decision": pick("new-owner"), "field:category": pick("unclear-ownership"),
                                 "field:assumption_broke": text("two teams thought the other owned renewals")})))
        .await;
    assert!(answer["errors"]["field:new_owner"].as_str().is_some_and(|e| !e.is_empty()), "{answer}");
    let person = |u: &str| json!({"a": {"type": "users_select", "selected_user": u}});
    let (_, answer) = bot
        .interact(&submit(json!({"field:decision": pick("new-owner"), "field:category": pick("unclear-ownership"),
                                 "field:new_owner": person(BEN),
                                 "field:assumption_broke": text("two teams thought the other owned renewals")})))
        .await;
    assert_eq!(answer, json!({"response_action": "clear"}));
    let h = bot.app.get(1).await.expect("H-1");
    assert_eq!((h.recalibration.is_none(), h.owner.as_deref(), h.state), (true, Some("ben"), State::Reassigned));
    let broke: String =
        sqlx::query_scalar("SELECT assumption FROM artifacts").fetch_one(bot.app.store.pool()).await.expect("artifact");
    assert_eq!(broke, "two teams thought the other owned renewals");
    running_stop(bot).await;
}

/// A submitted reason form (`return:H-1`, `update:H-1`, …) with its one text; each text is a new
/// version of the view, as Slack sends it.
fn reason_form(user: &str, metadata: &str, text: &str) -> Value {
    json!({"type": "view_submission", "user": {"id": user}, "team": {"id": "T0001"},
           "view": {"id": format!("V-{metadata}"), "hash": format!("h{}", text.len()), "callback_id": "reason",
                    "private_metadata": metadata,
                    "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": text}}}}}})
}

#[tokio::test]
async fn return_asks_for_a_reason_in_a_modal() {
    let bot = bot().await;
    bot.command(RITA, ACME, "trig-1").await;
    bot.delivered().await;
    bot.interact(&bot.click(ANA, "return", "#cs-handoffs")).await;
    eventually(10, "views.open", || async { !bot.slack.ok_calls("views.open").is_empty() }).await;
    let view = bot.slack.ok_calls("views.open")[0].body["view"].clone();
    assert_eq!(view["private_metadata"], "return:H-1");
    let submit = |reason: &str| reason_form(ANA, "return:H-1", reason);
    let (_, answer) = bot.interact(&submit("")).await;
    assert!(answer["errors"]["reason"].as_str().expect("error").contains("Give a reason"));
    let (_, answer) = bot.interact(&submit("the ARR\u{0}")).await;
    assert_eq!(
        answer["errors"]["reason"],
        "✗ `reason` holds an invisible control character (U+0000); type it again without it"
    );
    let (_, answer) = bot.interact(&submit("the ARR is missing a currency")).await;
    assert_eq!(answer["response_action"], "clear", "{answer}");
    assert_eq!(bot.count("SELECT COUNT(*) FROM handoffs WHERE state = 'returned'").await, 1);

    // Rita's notice offers Resubmit: a form with the contract as it stands and the reason for the return.
    bot.delivered().await;
    bot.interact(&bot.click(RITA, "resubmit", RITA)).await;
    eventually(10, "the resubmit form", || async { bot.slack.ok_calls("views.open").len() == 2 }).await;
    let view = bot.slack.ok_calls("views.open")[1].body["view"].clone();
    assert_eq!(
        (view["callback_id"].as_str(), view["private_metadata"].as_str()),
        (Some("handoff_resubmit"), Some("sales-to-cs:H-1"))
    );
    let blocks = view["blocks"].as_array().expect("blocks");
    assert!(blocks.iter().all(|b| b["block_id"] != "title"), "the title is not asked again");
    let note = blocks.iter().find(|b| b["block_id"] == "note").expect("note");
    assert_eq!(note["hint"]["text"], "Returned because: the ARR is missing a currency");
    // Anyone else pressing it is told who can.
    bot.interact(&bot.click(ANA, "resubmit", RITA)).await;
    eventually(10, "the refusal", || async {
        bot.slack
            .responses()
            .iter()
            .any(|r| r["text"].as_str().is_some_and(|t| t.contains("only the requester of H-1")))
    })
    .await;
    let input = |v: &str| json!({"a": {"type": "plain_text_input", "value": v}});
    let values = json!({"field:account": input("Acme"), "field:arr": {"arr": {"type": "number_input", "value": "120000"}},
        "field:segment": {"segment": {"type": "static_select", "selected_option": {"value": "enterprise"}}},
        "field:crm": {"crm": {"type": "url_text_input", "value": "https://crm.example/acme"}},
        "note": input("ARR is in USD; CRM record linked")});
    let form = json!({"type": "view_submission", "team": {"id": "T0001"}, "user": {"id": RITA},
        "view": {"id": "V-resubmit", "hash": "h1", "callback_id": "handoff_resubmit",
                 "private_metadata": "sales-to-cs:H-1", "state": {"values": values}}});
    assert_eq!(bot.interact(&form).await.1, json!({"response_action": "clear"}));
    let h = bot.app.get(1).await.expect("H-1");
    assert_eq!((h.state, h.fields.get("crm").map(String::as_str)), (State::Open, Some("https://crm.example/acme")));
    running_stop(bot).await;
}

#[tokio::test]
async fn the_owners_card_posts_an_update_through_a_form() {
    let bot = bot().await;
    bot.acme_accepted_by_ana().await;
    // Ana's card offers Post update; the form asks for the progress made.
    bot.interact(&bot.click(ANA, "update", ANA)).await;
    eventually(10, "views.open", || async { !bot.slack.ok_calls("views.open").is_empty() }).await;
    let view = bot.slack.ok_calls("views.open")[0].body["view"].clone();
    assert_eq!(view["private_metadata"], "update:H-1");
    assert_eq!(view["blocks"][0]["label"]["text"], "Progress");
    let submit = |note: &str| reason_form(ANA, "update:H-1", note);
    // Typed without its note, the command asks for it in the same form.
    let (status, said) = bot.command(ANA, "update H-1", "trig-typed-update").await;
    assert_eq!((status, said), (200, Value::Null), "no answer but the form");
    let said = bot.slash("/reject", ANA, "H-1", "trig-typed-reject").await;
    assert_eq!(said, Value::Null);
    eventually(10, "two more forms", || async { bot.slack.ok_calls("views.open").len() == 3 }).await;
    let mut forms: Vec<String> =
        bot.slack.ok_calls("views.open").iter().map(|c| c.body["view"]["private_metadata"].to_string()).collect();
    forms.sort();
    assert_eq!(forms, [r#""reject:H-1""#, r#""update:H-1""#, r#""update:H-1""#]);
    let (_, answer) = bot.interact(&submit("")).await;
    assert_eq!(answer["errors"]["reason"], "Say what progress was made.");
    let (_, answer) = bot.interact(&submit("kickoff booked")).await;
    assert_eq!(answer["response_action"], "clear", "{answer}");
    let h = bot.app.get(1).await.expect("H-1");
    assert_eq!(h.last_note.as_deref(), Some("kickoff booked"));
    running_stop(bot).await;
}

#[tokio::test]
async fn a_stall_escalation_in_slack_offers_im_blocked_which_convenes_a_recalibration() {
    let bot = bot().await;
    // Created so that the ladder's channel post is due now (channel posts wait for no one's hours).
    let now = Utc::now();
    let model = crate::support::model();
    let fields = [("account", "Acme"), ("arr", "1"), ("segment", "smb")].map(|(k, v)| (k.to_string(), v.to_string()));
    let new = baton_core::NewHandoff { seam: "sales-to-cs", title: "Acme renewal", fields: &fields };
    let mut created = now - Duration::hours(4);
    while baton_core::check(
        &model,
        &baton_core::create(&model, 1, new, "rita", Surface::Slack, created).expect("create").handoff,
        now,
    )
    .expect("check")
    .fired
    .iter()
    .filter(|f| !f.skipped)
    .map(|f| f.action.as_str())
    .ne(["post-channel"])
    {
        created -= Duration::minutes(10);
        assert!(now - created < Duration::days(8), "no creation time puts the channel post due now");
    }
    let line = baton_core::parse(ACME).expect("command");
    bot.app.handle("rita", Surface::Slack, line, created, None).await.expect("create");
    bot.app.sweep(now).await.expect("sweep");
    bot.delivered().await;
    let posted = bot.slack.history("#cs-handoffs").last().cloned().expect("the escalation");
    assert!(posted["text"].as_str().expect("text").starts_with("Escalation: H-1"), "{posted}");
    let (_, _) = bot.interact(&bot.click(ANA, "blocked", "#cs-handoffs")).await;
    eventually(10, "the answer", || async { !bot.slack.responses().is_empty() }).await;
    let answer = bot.slack.responses()[0]["text"].as_str().expect("text").to_string();
    assert!(answer.contains("Recalibration convened"), "{answer}");
    assert!(bot.app.get(1).await.expect("H-1").recalibration.is_some());
    running_stop(bot).await;
}

#[tokio::test]
async fn the_commands_replies_name_are_slack_commands_of_their_own() {
    let bot = bot().await;
    bot.command(RITA, ACME, "trig-1").await;
    bot.command(ANA, "accept H-1", "trig-2").await;
    // Replies tell people to `/ack H-1`: in Slack that is a command of the app's own.
    let said = bot.slash("/ack", ANA, "H-1", "trig-3").await;
    assert!(said["text"].as_str().expect("text").starts_with("Acknowledged H-1."), "{said}");
    let said = bot.slash("/snooze", ANA, "H-1 2h waiting on legal", "trig-4").await;
    assert!(said["text"].as_str().expect("text").contains("H-1 snoozed until"), "{said}");
    // `/away` is Slack's own: Baton's answers spell it `/handoff away`, which is what works.
    let said = bot.command(ANA, "away", "trig-5").await.1;
    assert_eq!(said["text"], "You are not marked away. Going away? `/handoff away until YYYY-MM-DD [reason]`.");
    running_stop(bot).await;
}

#[tokio::test]
async fn people_slack_does_not_know_are_told_how_to_be_added() {
    let bot = bot().await;
    let (status, reply) = bot.command("U0NOBODY01", ACME, "trig-x").await;
    assert_eq!(status, 200);
    let text = reply["text"].as_str().expect("text");
    assert!(text.contains("does not know your Slack account (U0NOBODY01)") && text.contains("slack = \"U0NOBODY01\""));
    assert_eq!(bot.count("SELECT COUNT(*) FROM handoffs").await, 0);
    let (_, reply) = bot.command(RITA, "frobnicate H-1", "trig-y").await;
    assert!(reply["text"].as_str().expect("text").contains("unknown command `frobnicate`"));
    running_stop(bot).await;
}

#[tokio::test]
async fn unsigned_stale_or_tampered_requests_are_refused_and_change_nothing() {
    let bot = bot().await;
    let body = bot.command_body(RITA, ACME, "trig-sig");
    let ct = "application/x-www-form-urlencoded";
    let hdrs = |ts: i64, sig: String| vec![("x-slack-request-timestamp", ts.to_string()), ("x-slack-signature", sig)];
    // Each request is signed when it is sent: a slow run must not carry a timestamp into the window.
    type Case<'a> = (&'a str, String, Box<dyn Fn(i64) -> Vec<(&'a str, String)> + 'a>);
    let cases: Vec<Case> = vec![
        ("wrong secret", body.clone(), Box::new(|now| hdrs(now, signature("not-the-secret", now, &body)))),
        ("no signature", body.clone(), Box::new(|now| vec![("x-slack-request-timestamp", now.to_string())])),
        ("no timestamp", body.clone(), Box::new(|now| vec![("x-slack-signature", signature(SECRET, now, &body))])),
        ("stale by 301 s", body.clone(), Box::new(|now| hdrs(now - 301, signature(SECRET, now - 301, &body)))),
        ("future by 301 s", body.clone(), Box::new(|now| hdrs(now + 301, signature(SECRET, now + 301, &body)))),
        ("re-serialised body", body.replace("%2F", "/"), Box::new(|now| hdrs(now, signature(SECRET, now, &body)))),
    ];
    for (what, body, headers) in &cases {
        for path in ["/slack/commands", "/slack/interactions", "/slack/events"] {
            let (status, reason) = bot.post(path, ct, body.clone(), &headers(Utc::now().timestamp())).await;
            assert_eq!(status, 401, "{what} on {path}: {reason}");
            assert!(!reason.is_empty(), "{what}: a refusal says why");
        }
    }
    let now = Utc::now().timestamp();
    let huge = "x".repeat(300 * 1024);
    let (status, _) = bot.post("/slack/commands", ct, huge.clone(), &hdrs(now, signature(SECRET, now, &huge))).await;
    assert_eq!(status, 413);
    for table in ["handoffs", "events", "outbox", "processed_requests"] {
        assert_eq!(bot.count(&format!("SELECT COUNT(*) FROM {table}")).await, 0, "{table} untouched");
    }
    // The same request, correctly signed, works.
    drop(cases);
    assert_eq!(bot.signed("/slack/commands", ct, body).await.0, 200);
    assert_eq!(bot.count("SELECT COUNT(*) FROM handoffs").await, 1);
    running_stop(bot).await;
}

#[tokio::test]
async fn a_request_delivered_four_times_even_at_once_makes_one_handoff_and_one_card() {
    retried_four_times(bot().await).await;
    if let Some(pg) = postgres().await {
        retried_four_times(bot_on(pg, false).await).await;
    }
}

async fn retried_four_times(bot: Bot) {
    let body = bot.command_body(RITA, ACME, "trig-retry");
    let ct = "application/x-www-form-urlencoded";
    let sends = (0..4).map(|_| bot.signed("/slack/commands", ct, body.clone()));
    let answers = futures_util::future::join_all(sends).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    bot.delivered().await;
    assert_eq!(bot.count("SELECT COUNT(*) FROM handoffs").await, 1);
    assert_eq!(bot.slack.history("#cs-handoffs").len(), 1, "one card");

    // An app mention retried by Slack (x-slack-retry-num), also concurrently: one answer.
    let event = json!({"token": "legacy", "team_id": "T0001", "api_app_id": "A1", "type": "event_callback",
        "event_id": "Ev0001", "event_time": 1, "event": {"type": "app_mention", "user": ANA,
        "text": "<@U0BATON> H-1", "ts": "1.1", "channel": "C0CHAT", "event_ts": "1.1"}});
    let bot_ref = &bot;
    let sends = (0..4).map(|n| {
        let body = event.to_string();
        let ts = Utc::now().timestamp();
        let mut headers =
            vec![("x-slack-request-timestamp", ts.to_string()), ("x-slack-signature", signature(SECRET, ts, &body))];
        if n > 0 {
            headers.push(("x-slack-retry-num", n.to_string()));
            headers.push(("x-slack-retry-reason", "http_timeout".to_string()));
        }
        async move { bot_ref.post("/slack/events", "application/json", body, &headers).await }
    });
    let answers = futures_util::future::join_all(sends).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    eventually(10, "the mention answered", || async { !bot.slack.history("C0CHAT").is_empty() }).await;
    bot.delivered().await;
    let replies = bot.slack.history("C0CHAT");
    assert_eq!(replies.len(), 1, "one answer to four deliveries");
    assert!(replies[0]["text"].as_str().expect("text").contains("Acme renewal"), "{replies:?}");
    running_stop(bot).await;
}

#[tokio::test]
async fn url_verification_echoes_the_challenge() {
    let bot = bot().await;
    let body = std::fs::read_to_string(repo().join("tests/fixtures/slack/url_verification.json")).expect("fixture");
    let challenge = serde_json::from_str::<Value>(&body).expect("json")["challenge"].clone();
    let (status, answer) = bot.signed("/slack/events", "application/json", body).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&answer).expect("json")["challenge"], challenge);
    running_stop(bot).await;
}

#[tokio::test]
async fn handoff_text_cannot_mention_channels_people_or_groups() {
    let bot = bot().await;
    // Markup typed as text reaches Baton escaped, as Slack sends it; it must leave escaped too.
    let text = r#"new sales-to-cs "&lt;!channel&gt; urgent &lt;@U0SAM00001&gt; &lt;!subteam^S0001|@cs&gt;" account="&lt;!here&gt; &amp;co &lt;https://evil.example|click&gt;" arr=1 segment=smb"#;
    let (status, reply) = bot.command(RITA, text, "trig-inject").await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["text"].as_str().expect("text").contains("H-1"), "{reply}");
    bot.interact(&{
        bot.delivered().await;
        bot.click(ANA, "accept", "#cs-handoffs")
    })
    .await;
    eventually(10, "the answer", || async { !bot.slack.responses().is_empty() }).await;
    bot.delivered().await;
    let mut seen = 0;
    for call in bot.slack.calls() {
        let sent = call.body.to_string();
        for bad in ["<!channel>", "<!here", "<@U0SAM00001>", "<!subteam", "<https://evil"] {
            assert!(!sent.contains(bad), "{bad} reached Slack in {}: {sent}", call.method);
        }
        seen += 1;
    }
    assert!(seen >= 4, "card, edit, DM card, answer");
    assert!(bot.slack.history("#cs-handoffs")[0]["text"].as_str().expect("text").contains("&lt;!channel&gt;"));
    assert!(!reply.to_string().contains("<!"), "the ephemeral reply is escaped too: {reply}");
    running_stop(bot).await;
}

#[tokio::test]
async fn people_picked_from_slacks_list_and_escaped_text_read_as_they_were_typed() {
    let bot = bot().await;
    // What Slack sends for `new sales-to-cs "R&D <renewal>" account=acme.example …` with
    // escaping on: `&`, `<` and `>` escaped, the bare domain made a link.
    let text =
        r#"new sales-to-cs "R&amp;D &lt;renewal&gt;" account=<http://acme.example|acme.example> arr=1 segment=smb"#;
    let (_, reply) = bot.command(RITA, text, "trig-typed-1").await;
    assert!(reply["text"].as_str().expect("text").contains("H-1"), "{reply}");
    let h = bot.app.get(1).await.expect("H-1");
    assert_eq!(h.title, "R&D <renewal>");
    assert_eq!(h.fields.get("account").map(String::as_str), Some("acme.example"));
    // The card escapes it once for Slack: no double escaping.
    bot.delivered().await;
    let card = bot.slack.history("#cs-handoffs")[0]["text"].as_str().expect("text").to_string();
    assert!(card.contains("R&amp;D &lt;renewal&gt;"), "{card}");

    bot.command(ANA, "accept H-1", "trig-typed-2").await;
    // Ana picks Ben from Slack's list: Slack sends his user id, which the model maps to `ben`.
    let (_, reply) = bot.command(ANA, "reassign H-1 <@U0BEN00001|Ben Brooks>", "trig-typed-3").await;
    assert!(reply["text"].as_str().expect("text").contains("Ben Brooks"), "{reply}");
    assert_eq!(bot.app.get(1).await.expect("H-1").owner.as_deref(), Some("ben"));
    // Someone Slack knows and the model does not is named as Slack named them.
    let (_, reply) = bot.command(CARLA, "reassign H-1 <@U0ZED00001|zed>", "trig-typed-4").await;
    assert!(reply["text"].as_str().expect("text").contains("`zed`"), "{reply}");
    // `/handoff away` from Slack: Ben owns H-1, so his lead hears of it.
    let last = (Utc::now() + Duration::days(3)).date_naive();
    let (_, reply) = bot.command(BEN, &format!("away until {last} offsite"), "trig-typed-5").await;
    assert!(reply["text"].as_str().expect("text").contains("You own H-1; Carla Costa was told."), "{reply}");
    // Carla names her cover by picking Ana from Slack's list.
    let typed = format!("away until {last} cover=<@U0ANA00001|Ana Alves> offsite");
    let (_, reply) = bot.command(CARLA, &typed, "trig-typed-6").await;
    assert!(reply["text"].as_str().expect("text").contains("Ana Alves covers for you as lead"), "{reply}");
    running_stop(bot).await;
}

#[tokio::test]
async fn response_url_is_only_called_on_slacks_hooks_host() {
    let api = SlackApi::new("http://127.0.0.1:9/api", TOKEN, Limits::default());
    for url in ["https://hooks.slack.com/commands/T1/2/x", "http://127.0.0.1:9/hooks/commands/1"] {
        assert!(api.response_url_allowed(url), "{url}");
    }
    for url in [
        "http://hooks.slack.com/commands/1",
        "https://hooks.slack.com.evil.example/commands/1",
        "https://evil.example/hooks.slack.com/commands/1",
        "https://hooks.slack.com@evil.example/commands/1",
        "https://user:pw@hooks.slack.com/commands/1",
        "https://hooks.slack.com:8443/commands/1",
        "https://xhooks.slack.com/commands/1",
        "http://127.0.0.1:10/hooks/commands/1",
        "not a url",
    ] {
        assert!(!api.response_url_allowed(url), "{url}");
    }

    // End to end: a click whose response_url points elsewhere gets no call there.
    let bot = bot().await;
    let trap = FakeSlack::start().await;
    bot.command(RITA, ACME, "trig-1").await;
    bot.delivered().await;
    let mut click = bot.click(ANA, "accept", "#cs-handoffs");
    click["response_url"] = json!(format!("{}/hooks/actions/1", trap.url));
    bot.interact(&click).await;
    eventually(10, "the click acted", || async {
        bot.count("SELECT COUNT(*) FROM events WHERE kind = 'accepted'").await == 1
    })
    .await;
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert!(trap.calls().is_empty(), "no call to a foreign response_url");
    running_stop(bot).await;
}

#[tokio::test]
async fn socket_mode_delivers_a_slash_command_and_the_bot_acknowledges_its_envelope() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ws_url = format!("ws://{}/link", listener.local_addr().expect("addr"));
    let (acks_tx, mut acks) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let bot = bot_with(false).await;
    bot.slack.set_socket_url(&ws_url);
    let command = json!({"token": "legacy", "team_id": "T0001", "channel_id": "C0001", "user_id": RITA,
        "command": "/handoff", "text": ACME, "response_url": format!("{}/hooks/commands/9", bot.slack.url),
        "trigger_id": "trig-socket", "api_app_id": "A1"});
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp).await.expect("handshake");
        ws.send(Message::Text(json!({"type": "hello", "num_connections": 1}).to_string().into())).await.expect("hello");
        let envelope = json!({"envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": true,
                              "payload": command});
        ws.send(Message::Text(envelope.to_string().into())).await.expect("send");
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg {
                let _ = acks_tx.send(serde_json::from_str(&t).unwrap_or(Value::Null));
            }
        }
    });
    // A second server with Socket Mode on, sharing nothing with the first but the fake Slack.
    let app = app(sqlite().await);
    let api = SlackApi::new(&bot.slack.url, TOKEN, Limits::default());
    let server = Server {
        poll: StdDuration::from_millis(50),
        slack: Endpoints {
            slack: Some(Slack {
                app: app.clone(),
                api: api.clone(),
                ack_budget: baton::slack::handler::ACK_BUDGET,
                homes: Default::default(),
            }),
            signing_secret: None,
        },
        socket_mode: Some((bot.slack.url.clone(), APP_TOKEN.into())),
        ..Server::new(app.clone(), Outbound { slack: Some(api), ..Outbound::default() })
    };
    let running = Running::start(server).await;
    let ack = tokio::time::timeout(StdDuration::from_secs(10), acks.recv()).await.expect("ack in time").expect("ack");
    assert_eq!(ack["envelope_id"], "env-1");
    assert!(ack["payload"]["text"].as_str().expect("answer").contains("H-1"), "{ack}");
    let made: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM handoffs").fetch_one(app.store.pool()).await.expect("count");
    assert_eq!(made, 1);
    running.stop().await;
    running_stop(bot).await;
}

#[tokio::test]
async fn the_manifest_declares_every_route_command_and_scope_baton_uses() {
    let manifest = std::fs::read_to_string(repo().join("deploy/slack/manifest.yaml")).expect("manifest");
    for needle in [
        "/slack/commands",
        "/slack/interactions",
        "/slack/events",
        "command: /handoff",
        "chat:write",
        "files:write",
        "command: /stalls",
        "command: /ack",
        "command: /approve",
        "command: /reject",
        "command: /snooze",
        "command: /recalibrate",
        "command: /postmortem",
        "should_escape: true",
        "commands",
        "im:write",
        "app_mentions:read",
        "channels:history",
        "channels:read",
        "groups:read",
        "app_mention",
        "app_home_opened",
        "message.channels",
        "message.groups",
        "home_tab_enabled: true",
        "callback_id: handoff_new",
        "callback_id: handoff_message",
        "interactivity:",
    ] {
        assert!(manifest.contains(needle), "the manifest lacks {needle}");
    }
}

#[tokio::test]
async fn slow_work_is_acknowledged_first_and_answered_through_response_url() {
    let slack = FakeSlack::start().await;
    let app = app(sqlite().await);
    let api = SlackApi::new(&slack.url, TOKEN, Limits::default());
    let handler =
        Slack { app: app.clone(), api: api.clone(), ack_budget: StdDuration::ZERO, homes: Default::default() };
    let server = Server {
        poll: StdDuration::from_millis(50),
        slack: Endpoints { slack: Some(handler.clone()), signing_secret: Some(SECRET.into()) },
        ..Server::new(app.clone(), Outbound { slack: Some(api), ..Outbound::default() })
    };
    let running = Running::start(server).await;
    let bot = Bot { slack, app, running, http: reqwest::Client::new(), handler };
    let (status, ack) = bot.command(RITA, ACME, "trig-slow").await;
    assert_eq!(status, 200);
    assert!(ack["text"].as_str().expect("text").contains("Working on it"), "{ack}");
    eventually(10, "the late answer", || async { !bot.slack.responses().is_empty() }).await;
    assert!(bot.slack.responses()[0]["text"].as_str().expect("text").contains("H-1"));
    assert_eq!(bot.slack.responses()[0]["response_type"], "ephemeral");
    running_stop(bot).await;
}

#[tokio::test]
async fn stalls_answers_by_access_and_a_chart_is_uploaded_to_the_channel_it_was_asked_in() {
    const ADA: &str = "U0ADA00001";
    let bot = bot().await;
    bot.command(RITA, ACME, "trig-h1").await;
    let b = &bot;
    let stalls = |user: &'static str, text: &'static str, trigger: &'static str| {
        let body = form(&[
            ("team_id", "T0001"),
            ("channel_id", "C0STATS"),
            ("user_id", user),
            ("command", "/stalls"),
            ("text", text),
            ("response_url", &format!("{}/hooks/commands/2", b.slack.url)),
            ("trigger_id", trigger),
        ]);
        async move {
            let (status, body) = b.signed("/slack/commands", "application/x-www-form-urlencoded", body).await;
            assert_eq!(status, 200);
            serde_json::from_str::<Value>(&body).expect("json")["text"].as_str().unwrap_or_default().to_string()
        }
    };
    let mine = stalls(RITA, "", "trig-s1").await;
    assert!(mine.contains("seams to or from Sales") && mine.contains("sales-to-cs"), "{mine}");
    let refused = stalls(RITA, "seam=eng-to-ops", "trig-s2").await;
    assert!(refused.contains("✗ you can see the stall history of seams to or from Sales only"), "{refused}");
    let bad = stalls(ADA, "window=forever", "trig-s3").await;
    assert!(bad.contains("write 90d or 12w") && bad.contains("usage: /stalls [health|chart]"), "{bad}");

    // Nothing unblocked yet: nothing to draw, and said so.
    let empty = stalls(ADA, "chart window=4w", "trig-empty").await;
    assert!(empty.starts_with("Nothing to chart (last 28 days): no stall was unblocked"), "{empty}");
    crate::support::unblocked_stall(&bot.app, Utc::now()).await;
    let said = stalls(ADA, "chart window=4w", "trig-chart").await;
    assert!(said.contains("it will be posted here"), "{said}");
    // Slack retries the same command: still one chart.
    stalls(ADA, "chart window=4w", "trig-chart").await;
    bot.delivered().await;
    let posted = bot.slack.history("C0STATS");
    assert_eq!(posted.len(), 1, "{posted:?}");
    let image = posted[0]["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .find(|b| b["type"] == "image")
        .cloned()
        .expect("an image block");
    let file = bot.slack.file(image["slack_file"]["id"].as_str().expect("file id")).expect("uploaded and completed");
    assert_eq!(&file[..8], b"\x89PNG\r\n\x1a\n");
    assert!(image["alt_text"].as_str().expect("alt").contains("Time to unblock per week"));
    running_stop(bot).await;
}

/// A message posted before a crash is found again by its outbox id: in a channel known only by
/// its name (looked up page by page among the channels), by id, and in a DM; a message never
/// posted, or a channel that does not exist, finds nothing (it is then posted).
#[tokio::test]
async fn a_message_a_crashed_delivery_posted_is_found_by_channel_name_id_or_user() {
    let slack = FakeSlack::start().await;
    let api = SlackApi::new(&slack.url, TOKEN, Limits::default());
    let now = Utc::now();
    let body = json!({"text": "card"});
    for (n, channel) in ["#alpha", "#bravo", "#charlie", "#delta", "#ops", RITA].into_iter().enumerate() {
        api.post(channel, &body, 100 + n as i64, now).await.expect("post");
    }
    let ops = api.find_posted("#ops", 104, now).await.expect("find");
    assert_eq!(ops, Some("C_ops:1800000000.000005".to_string()));
    let pages = slack.ok_calls("conversations.list").len();
    assert!(pages >= 3, "five channels at two a page: {pages} pages read");
    assert_eq!(api.find_posted("C_ops", 104, now).await.expect("find").as_deref(), Some("C_ops:1800000000.000005"));
    assert_eq!(api.find_posted(RITA, 105, now).await.expect("find"), Some(format!("D_{RITA}:1800000000.000006")));
    assert_eq!(api.find_posted("#ops", 999, now).await.expect("find"), None, "never posted");
    assert_eq!(api.find_posted("#nowhere", 104, now).await.expect("find"), None, "no such channel");
    // History is read with form arguments, as Slack requires of read methods.
    let history = slack.ok_calls("conversations.history");
    assert!(history.iter().all(|c| c.body["include_all_metadata"] == "true"), "{history:?}");
}

#[tokio::test]
async fn the_app_home_shows_a_persons_plate_and_its_buttons_act_and_answer_by_dm() {
    let bot = bot().await;
    bot.command(RITA, ACME, "trig-1").await;
    bot.delivered().await;
    let home_of = |user: &'static str| bot.slack.home(user).map(|h| h.to_string()).unwrap_or_default();
    let told = |user: &str, text: &str| {
        bot.slack.history(user).iter().filter(|m| m["text"].as_str().unwrap_or("").contains(text)).count()
    };

    // Ben and Ana open the tab: H-1 is in their team's queue, with Accept. The messages tab
    // draws nothing.
    assert_eq!(bot.open_home(BEN, "messages", "Ev-m").await, 200);
    assert_eq!(bot.open_home(BEN, "home", "Ev-1").await, 200);
    bot.open_home(ANA, "home", "Ev-2").await;
    eventually(10, "both homes", || async { bot.slack.home(BEN).is_some() && bot.slack.home(ANA).is_some() }).await;
    assert_eq!(bot.slack.ok_calls("views.publish").len(), 2, "the messages tab publishes nothing");
    assert!(home_of(BEN).contains("In your team's queue") && home_of(BEN).contains("Acme renewal"), "{}", home_of(BEN));
    let anas_accept = bot.home_click(ANA, "accept", Some("H-1"));

    // Accept from the tab: Ben owns H-1, is told so by DM, and his tab is drawn again with the
    // owner's buttons.
    let accept = bot.home_click(BEN, "accept", Some("H-1"));
    assert_eq!(bot.interact(&accept).await, (200, Value::Null));
    eventually(10, "Ben's tab redrawn", || async { home_of(BEN).contains("you are owner") }).await;
    let h = bot.app.get(1).await.expect("H-1");
    assert_eq!((h.state, h.owner.as_deref()), (State::Accepted, Some("ben")));
    bot.delivered().await;
    assert_eq!(told(BEN, "You own H-1 now"), 1, "{:?}", bot.slack.history(BEN));
    bot.home_click(BEN, "ack", Some("H-1"));

    // The same click replayed (Slack retrying, a double click): acts once, answers once.
    assert_eq!(bot.interact(&accept).await.0, 200);
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    bot.delivered().await;
    assert_eq!(told(BEN, "You own H-1 now"), 1, "{:?}", bot.slack.history(BEN));
    assert_eq!(bot.count("SELECT COUNT(*) FROM events WHERE kind = 'accepted'").await, 1);

    // A refusal from the tab is told by DM too: Ana presses Accept on a tab drawn before Ben
    // took H-1; her tab is drawn again without it.
    bot.interact(&anas_accept).await;
    eventually(10, "the refusal by DM", || async {
        bot.app.store.outbox_depth().await.unwrap_or(1) == 0 && told(ANA, "✗") == 1
    })
    .await;
    assert_eq!(bot.app.get(1).await.expect("H-1").owner.as_deref(), Some("ben"));
    eventually(10, "Ana's tab redrawn", || async { home_of(ANA).contains("no open handoffs") }).await;

    // Mark done from the tab. At the gate: the approvers' tabs offer Approve; the requester's does not.
    bot.interact(&bot.home_click(BEN, "done", Some("H-1"))).await;
    eventually(10, "H-1 at the gate", || async { bot.app.get(1).await.is_ok_and(|h| h.state == State::AwaitingGate) })
        .await;
    bot.open_home(RITA, "home", "Ev-3").await;
    eventually(10, "Rita's home", || async { home_of(RITA).contains("awaiting gate") }).await;
    assert!(!home_of(RITA).contains("\"approve\""), "no Approve for the requester: {}", home_of(RITA));
    bot.open_home(CARLA, "home", "Ev-4").await;
    eventually(10, "Carla's home", || async { home_of(CARLA).contains("Waiting for your approval") }).await;
    bot.interact(&bot.home_click(CARLA, "approve", Some("H-1"))).await;
    eventually(10, "Carla's approval", || async {
        bot.app.get(1).await.is_ok_and(|h| h.approvals.iter().any(|a| a.by == "carla"))
    })
    .await;
    eventually(10, "Carla's tab redrawn", || async { home_of(CARLA).contains("no open handoffs") }).await;
    // Her request by DM was edited in place: it says what she did, and its buttons are gone.
    bot.delivered().await;
    let requests: Vec<Value> = (bot.slack.history(CARLA).into_iter())
        .filter(|m| m["text"].as_str().is_some_and(|t| t.contains("approv")))
        .collect();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert!(requests[0]["text"].as_str().expect("text").starts_with("You approved H-1"), "{}", requests[0]);
    assert_eq!(buttons(&requests[0]).count(), 0, "{}", requests[0]);

    // Hand off work: the new-handoff form opens.
    bot.interact(&bot.home_click(RITA, "home_new", None)).await;
    eventually(10, "the form", || async { !bot.slack.ok_calls("views.open").is_empty() }).await;
    assert_eq!(bot.slack.ok_calls("views.open")[0].body["view"]["callback_id"], "handoff_new");

    // Slack busy: the tab is published on a later attempt.
    const SAM: &str = "U0SAM00001";
    bot.slack.script("views.publish", vec![Scripted::Error("internal_error")]);
    bot.open_home(SAM, "home", "Ev-5").await;
    eventually(10, "Sam's home after a retry", || async { bot.slack.home(SAM).is_some() }).await;
    assert!(home_of(SAM).contains("Waiting for your approval"), "{}", home_of(SAM));
    let refused = bot.slack.calls().into_iter().filter(|c| c.method == "views.publish" && c.error.is_some()).count();
    assert_eq!(refused, 1, "the first attempt was refused");

    // Someone Baton does not know is told how to be added, in the tab.
    bot.open_home("U0NOBODY01", "home", "Ev-6").await;
    eventually(10, "a stranger's home", || async { bot.slack.home("U0NOBODY01").is_some() }).await;
    assert!(home_of("U0NOBODY01").contains("slack = \\\"U0NOBODY01\\\""), "{}", home_of("U0NOBODY01"));
    running_stop(bot).await;
}

#[tokio::test]
async fn a_message_is_handed_off_from_its_shortcut_and_the_handoff_links_back_to_it() {
    let bot = bot().await;
    let shortcut = |user: &str, trigger: &str| {
        json!({"type": "message_action", "token": "legacy", "action_ts": "1.2", "team": {"id": "T0001", "domain": "example"},
            "user": {"id": user, "name": "x"}, "channel": {"id": "C0SALES", "name": "sales"},
            "callback_id": "handoff_message", "trigger_id": trigger, "message_ts": "1700000000.000100",
            "message": {"type": "message", "user": RITA, "ts": "1700000000.000100",
                        "text": "\n  <@U0ANA00001> can CS take over Acme &amp; Co? renewal is due\nsecond line"},
            "response_url": format!("{}/hooks/actions/9", bot.slack.url)})
    };
    assert_eq!(bot.interact(&shortcut(RITA, "trig-msg")).await, (200, Value::Null));
    eventually(10, "the form", || async { !bot.slack.ok_calls("views.open").is_empty() }).await;
    let view = bot.slack.ok_calls("views.open")[0].body["view"].clone();
    assert_eq!(view["callback_id"], "handoff_new");
    let block = |id: &str| view["blocks"].as_array().expect("blocks").iter().find(|b| b["block_id"] == id).cloned();
    // The message's first line is the title, as typed (Ana picked from the list reads as @ana).
    let title = block("title").expect("title")["element"]["initial_value"].clone();
    assert_eq!(title, "@ana can CS take over Acme & Co? renewal is due");
    // Rita hands off on one seam only: it is picked, and its contract asked for at once.
    assert!(block("field:account").is_some(), "{view}");
    let link = "https://example.slack.com/archives/C0SALES/p1700000000000100";
    assert!(view.to_string().contains(&format!("From: {link}")), "{view}");
    // Picking the seam again redraws the form: what it carried and the title typed so far stay.
    let typed = json!({"title": {"title": {"type": "plain_text_input", "value": "Acme renewal, typed"}}});
    let pick = json!({"type": "block_actions", "user": {"id": RITA}, "trigger_id": "trig-pick",
        "view": {"id": "V9", "hash": "h8", "type": "modal", "callback_id": "handoff_new",
                 "private_metadata": view["private_metadata"], "state": {"values": typed}},
        "actions": [{"action_id": "seam_pick", "block_id": "seam", "type": "static_select",
                     "selected_option": {"value": "sales-to-cs"}}]});
    bot.interact(&pick).await;
    eventually(10, "views.update", || async { !bot.slack.ok_calls("views.update").is_empty() }).await;
    let redrawn = bot.slack.ok_calls("views.update")[0].body["view"].clone();
    assert_eq!(redrawn["private_metadata"], view["private_metadata"]);
    assert!(redrawn.to_string().contains(&format!("From: {link}")), "{redrawn}");
    assert!(redrawn.to_string().contains("Acme renewal, typed"), "{redrawn}");

    // Submitted: the handoff records where it came from, and its card shows it.
    let input = |v: &str| json!({"a": {"type": "plain_text_input", "value": v}});
    let values = json!({"seam": {"seam_pick": {"type": "static_select", "selected_option": {"value": "sales-to-cs"}}},
        "title": input("Acme & Co renewal"), "field:account": input("Acme"),
        "field:arr": {"arr": {"type": "number_input", "value": "120000"}},
        "field:segment": {"segment": {"type": "static_select", "selected_option": {"value": "smb"}}}});
    let submit = json!({"type": "view_submission", "team": {"id": "T0001"}, "user": {"id": RITA},
        "view": {"id": "V9", "hash": "h9", "callback_id": "handoff_new", "private_metadata": view["private_metadata"],
                 "state": {"values": values}}});
    assert_eq!(bot.interact(&submit).await, (200, json!({"response_action": "clear"})));
    assert_eq!(bot.app.get(1).await.expect("H-1").fields.get("source").map(String::as_str), Some(link));
    bot.delivered().await;
    let card = bot.slack.history("#cs-handoffs")[0]["text"].as_str().expect("card").to_string();
    assert!(card.contains(&format!("source: {link}")), "{card}");
    // The message's thread hears of it.
    eventually(10, "the thread reply", || async { !bot.slack.history("C0SALES").is_empty() }).await;
    let told = &bot.slack.history("C0SALES")[0];
    assert_eq!(told["thread_ts"], "1700000000.000100");
    assert_eq!(told["text"], "Rita Reyes handed this off: H-1 handed to Customer Success on sales-to-cs.");

    // Slack cannot give the link: the form opens all the same, without it.
    bot.slack.script("chat.getPermalink", vec![Scripted::Error("internal_error")]);
    bot.interact(&shortcut(RITA, "trig-msg-2")).await;
    eventually(10, "the second form", || async { bot.slack.ok_calls("views.open").len() == 2 }).await;
    let second = bot.slack.ok_calls("views.open")[1].body["view"].clone();
    assert!(!second.to_string().contains("From: "), "{second}");

    // The global shortcut opens the same form, empty.
    let global = json!({"type": "shortcut", "token": "legacy", "action_ts": "1.3", "team": {"id": "T0001"},
        "user": {"id": RITA}, "callback_id": "handoff_new", "trigger_id": "trig-global"});
    bot.interact(&global).await;
    eventually(10, "the third form", || async { bot.slack.ok_calls("views.open").len() == 3 }).await;
    let third = &bot.slack.ok_calls("views.open")[2].body;
    assert_eq!(
        (third["trigger_id"].as_str(), third["view"]["callback_id"].as_str()),
        (Some("trig-global"), Some("handoff_new"))
    );

    // Someone Baton does not know is told how to be added: in a form from the global shortcut,
    // which has nowhere else to answer, and in the channel from a message's.
    let mut stranger = global.clone();
    stranger["user"]["id"] = json!("U0NOBODY01");
    bot.interact(&stranger).await;
    eventually(10, "the notice", || async { bot.slack.ok_calls("views.open").len() == 4 }).await;
    let notice = bot.slack.ok_calls("views.open")[3].body["view"].to_string();
    assert!(notice.contains("does not know your Slack account (U0NOBODY01)"), "{notice}");
    bot.interact(&shortcut("U0NOBODY01", "trig-x")).await;
    eventually(10, "the answer", || async {
        bot.slack.responses().iter().any(|r| r["text"].as_str().unwrap_or("").contains("slack = \"U0NOBODY01\""))
    })
    .await;
    running_stop(bot).await;
}

/// An open Home tab is drawn again when what it shows changes (another took the handoff it
/// offered), not when nothing did, and is watched for hours after it was opened, not for ever.
#[tokio::test]
async fn an_open_home_tab_is_drawn_again_when_its_handoffs_change() {
    let bot = bot().await;
    bot.command(RITA, ACME, "trig-1").await;
    bot.delivered().await;
    bot.open_home(ANA, "home", "Ev-1").await;
    eventually(10, "Ana's home", || async { bot.slack.home(ANA).is_some() }).await;
    let home = || bot.slack.home(ANA).map(|h| h.to_string()).unwrap_or_default();
    assert!(home().contains("In your team's queue") && home().contains("\"accept\""), "{}", home());
    let now = Utc::now();
    // The published tab is known: nothing changed, nothing is drawn.
    eventually(10, "the first drawing recorded", || async { bot.handler.refresh_homes(now).await == 0 }).await;
    let published = bot.slack.ok_calls("views.publish").len();
    // Ben takes H-1 elsewhere: Ana's tab no longer offers Accept.
    bot.app
        .handle("ben", Surface::Slack, baton_core::parse("/handoff accept H-1").expect("accept"), now, None)
        .await
        .expect("accept");
    assert_eq!(bot.handler.refresh_homes(now).await, 1);
    assert_eq!(bot.slack.ok_calls("views.publish").len(), published + 1);
    assert!(home().contains("no open handoffs") && !home().contains("\"accept\""), "{}", home());
    assert_eq!(bot.handler.refresh_homes(now).await, 0, "drawn once per change");
    // Nine hours on, the tab is no longer watched.
    bot.app
        .handle("ben", Surface::Slack, baton_core::parse("/handoff return H-1 wrong team").expect("return"), now, None)
        .await
        .expect("return");
    assert_eq!(bot.handler.refresh_homes(now + Duration::hours(9)).await, 0);
    assert_eq!(bot.handler.homes.watched(now + Duration::hours(9)), Vec::new());
    running_stop(bot).await;
}
