//! The escalation engine in one process: delivery through a fake Slack (retries, rate limits,
//! dead letters, cards edited in place, quiet hours), restarts, once-only periodic jobs.

use std::time::Duration as StdDuration;

use baton::app::App;
use baton::deliver::{Deliverer, Limits, Outbound};
use baton::jobs::JobClock;
use baton::serve::Server;
use baton::slack::SlackApi;
use baton_core::{Recipient, Surface};
use chrono::{Duration, Utc};

use crate::fake_slack::{FakeSlack, Scripted, TOKEN};
use crate::support::{Running, app, cmd, eventually, inject_failure, model, model_without, on_each_store, sqlite, t};

const ACME: &str = r#"/handoff new sales-to-cs "Acme renewal" account=Acme arr=120000 segment=enterprise"#;
const LAUNCH: &str =
    r#"/handoff new marketing-to-eng "Spring launch" launch_date=2027-03-01 brief=https://docs.example/brief"#;

fn outbound(slack: &FakeSlack) -> Outbound {
    Outbound { slack: Some(SlackApi::new(&slack.url, TOKEN, Limits::default())), ..Outbound::default() }
}

fn deliverer(app: &App, slack: &FakeSlack) -> Deliverer {
    Deliverer {
        store: app.store.clone(),
        model: app.model.clone(),
        out: outbound(slack),
        lease: Duration::seconds(60),
        batch: 100,
        concurrency: 8,
        lines: Default::default(),
    }
}

/// Creates handoffs H-1 to H-`n` ("Renewal 1", …) on sales-to-cs, whose cards go to #cs-handoffs.
async fn renewals(app: &App, n: usize, now: chrono::DateTime<Utc>) {
    for n in 1..=n {
        let line = format!(r#"/handoff new sales-to-cs "Renewal {n}" account=A{n} arr=1000 segment=smb"#);
        app.handle("rita", Surface::Slack, cmd(&line), now, None).await.expect("create");
    }
}

/// A fake Slack, the app on `store` and its deliverer, with Rita's Acme renewal handed off on
/// Monday 30 November at 09:00 in New York (returned) and its card not yet delivered.
async fn acme(store: baton::store::Store) -> (FakeSlack, App, Deliverer, chrono::DateTime<Utc>) {
    let slack = FakeSlack::start().await;
    let app = app(store);
    let d = deliverer(&app, &slack);
    let monday = t("2026-11-30T09:00:00-05:00");
    app.handle("rita", Surface::Slack, cmd(ACME), monday, None).await.expect("create");
    (slack, app, d, monday)
}

async fn outbox_row(app: &App, sql: &str) -> (i64, Option<String>, Option<i64>) {
    sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(app.store.pool()).await.expect(sql)
}

#[tokio::test]
async fn a_message_answered_429_then_500_is_delivered_once_and_not_before_retry_after() {
    let slack = FakeSlack::start().await;
    slack.script("chat.postMessage", vec![Scripted::Status(429, Some(2)), Scripted::Status(500, None)]);
    let app = app(sqlite().await);
    let server = Server {
        poll: StdDuration::from_millis(100),
        lease: Duration::seconds(30),
        ..Server::new(app.clone(), outbound(&slack))
    };
    let running = Running::start(server).await;
    // The card goes to the receiving channel at once.
    app.handle("rita", Surface::Slack, cmd(ACME), Utc::now(), None).await.expect("create");
    eventually(20, "the card is delivered", || async { !slack.ok_calls("chat.postMessage").is_empty() }).await;
    let posts: Vec<_> = slack.calls().into_iter().filter(|c| c.method == "chat.postMessage").collect();
    let statuses: Vec<u16> = posts.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 500, 200]);
    assert!(
        posts[1].at - posts[0].at >= StdDuration::from_secs(2),
        "retried before Retry-After: {:?}",
        posts[1].at - posts[0].at
    );
    assert!(posts[2].at > posts[1].at);
    assert_eq!(slack.history("#cs-handoffs").len(), 1, "posted exactly once");
    eventually(10, "the delivery is recorded", || async { app.store.outbox_depth().await.unwrap_or(1) == 0 }).await;
    let (attempts, platform_ref, delivered) = outbox_row(
        &app,
        "SELECT attempts, platform_ref, delivered_at_ms FROM outbox WHERE recipient = 'slack:#cs-handoffs'",
    )
    .await;
    assert_eq!(attempts, 1, "one failed attempt recorded (the 500); the 429 only asked to wait");
    assert_eq!(platform_ref.as_deref(), Some("C_cs-handoffs:1800000000.000001"));
    assert!(delivered.is_some());
    running.stop().await;
}

/// The outbox's row count by PostgreSQL's statistics (-1 before any analysis).
async fn outbox_reltuples(app: &App) -> f32 {
    sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = 'outbox'")
        .fetch_one(app.store.pool())
        .await
        .expect("reltuples")
}

/// PostgreSQL plans the claim query from the outbox's statistics; taken while few rows were
/// pending, they make a backlog look like a handful of rows and the claim quadratic in it (the
/// front-door bench saw one claim take minutes). The worker refreshes them when a backlog shows.
#[tokio::test]
async fn a_delivery_backlog_refreshes_the_outbox_statistics_on_postgres() {
    let Some(store) = crate::support::postgres().await else { return };
    let slack = FakeSlack::start().await;
    let app = app(store);
    let reltuples = || outbox_reltuples(&app);
    assert_eq!(reltuples().await, -1.0, "a new table has never been analyzed");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let d = Deliverer { batch: 2, ..deliverer(&app, &slack) };
    // After its first pass the worker sleeps until woken (the poll is an hour), so all five cards
    // are waiting when it next claims: a full batch of two.
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let worker = tokio::spawn(d.run(wake.clone(), stopped, StdDuration::from_secs(3600)));
    eventually(10, "the worker analyzes the empty outbox at start", || async { reltuples().await == 0.0 }).await;
    let now = Utc::now();
    renewals(&app, 5, now).await;
    wake.notify_one();
    eventually(20, "every card is delivered", || async { app.store.outbox_depth().await.unwrap_or(1) == 0 }).await;
    // Five rows are far below autovacuum's threshold (50 changed rows, checked once a minute):
    // only the worker's refresh, on its first full batch of two, can have counted them.
    assert!(reltuples().await >= 2.0, "the backlog was analyzed: reltuples {}", reltuples().await);
    assert_eq!(slack.history("#cs-handoffs").len(), 5);
    stop.send(true).expect("stop");
    worker.await.expect("worker stops");
}

/// The same statistics age as the outbox grows without a backlog: plans a connection made while
/// it was small read all of it for every claim until they change. Where autovacuum is off (as on
/// this project's machines) or behind, the worker refreshes them once it has claimed as many
/// messages as autovacuum's own rule asks.
#[tokio::test]
async fn a_growing_outbox_has_its_statistics_refreshed_without_a_backlog_on_postgres() {
    let Some(store) = crate::support::postgres().await else { return };
    let slack = FakeSlack::start().await;
    let app = app(store);
    let reltuples = || outbox_reltuples(&app);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let worker = tokio::spawn(deliverer(&app, &slack).run(wake.clone(), stopped, StdDuration::from_secs(3600)));
    eventually(10, "the worker analyzes the empty outbox at start", || async { reltuples().await == 0.0 }).await;
    // Three waves of twenty cards, each claimed by one pass: no backlog (a hundred), no full batch.
    let now = Utc::now();
    for wave in 0..3 {
        for n in 1..=20 {
            let line =
                format!(r#"/handoff new sales-to-cs "Renewal {wave}-{n}" account=A{wave}-{n} arr=1000 segment=smb"#);
            app.handle("rita", Surface::Slack, cmd(&line), now, None).await.expect("create");
        }
        wake.notify_one();
        eventually(20, "the wave is delivered", || async { app.store.outbox_depth().await.unwrap_or(1) == 0 }).await;
    }
    assert_eq!(slack.history("#cs-handoffs").len(), 60);
    // Sixty claims since the analysis of the empty outbox pass autovacuum's threshold (50 and a
    // tenth of the rows); the worker refreshes before its next pass, a second after the last.
    eventually(20, "the grown outbox is analyzed", || async {
        wake.notify_one();
        reltuples().await >= 60.0
    })
    .await;
    stop.send(true).expect("stop");
    worker.await.expect("worker stops");
}

#[tokio::test]
async fn cards_are_edited_in_place_as_the_handoff_moves() {
    on_each_store(|store| async move {
        let (slack, app, d, now) = acme(store).await;
        d.drain(now).await.expect("deliver");
        app.handle("ana", Surface::Slack, cmd("/handoff accept H-1"), now + Duration::minutes(5), None)
            .await
            .expect("accept");
        d.drain(now + Duration::minutes(5)).await.expect("deliver");
        let channel = slack.history("#cs-handoffs");
        assert_eq!(channel.len(), 1, "one card in the channel, updated: {channel:?}");
        let text = channel[0]["text"].as_str().expect("text");
        assert!(text.contains("Ana Alves"), "the card shows the new owner: {text}");
        assert_eq!(slack.ok_calls("chat.update").len(), 1);
        assert_eq!(slack.ok_calls("chat.update")[0].body["ts"], "1800000000.000001");
        // Rita heard about the acceptance by DM.
        assert!(slack.history("U0RITA0001").iter().any(|m| m["text"].as_str().is_some_and(|t| t.contains("accepted"))));
    })
    .await;
}

/// What retention forgets (the card's delivered outbox row, its request key) is not what edits the
/// card: a handoff moving months later still edits its card in place.
#[tokio::test]
async fn a_card_is_edited_in_place_after_its_delivery_was_forgotten() {
    on_each_store(|store| async move {
        let (slack, app, d, now) = acme(store).await;
        d.drain(now).await.expect("deliver");
        let later = now + Duration::days(120);
        let pruned = app.store.prune(&app.model.retention, later).await.expect("prune");
        assert!(pruned.messages >= 1, "the card's delivery is forgotten: {pruned:?}");
        let (rows, _, _) = outbox_row(&app, "SELECT COUNT(*), NULL, NULL FROM outbox").await;
        assert_eq!(rows, 0);
        app.handle("ana", Surface::Slack, cmd("/handoff accept H-1"), later, None).await.expect("accept");
        d.drain(later).await.expect("deliver");
        assert_eq!(slack.history("#cs-handoffs").len(), 1, "one card in the channel");
        assert_eq!(slack.ok_calls("chat.update")[0].body["ts"], "1800000000.000001", "edited in place");
    })
    .await;
}

/// When a channel's first message is rate limited, the channel's other messages wait behind it
/// (without counting an attempt: they were not tried), paced a second apart from when the limit
/// lifts, so that each later pass claims only what may go out, not the whole backlog again.
#[tokio::test]
async fn a_rate_limited_channel_holds_its_other_messages_and_paces_them_after_the_limit_lifts() {
    on_each_store(|store| async move {
        let (slack, app) = (FakeSlack::start().await, app(store));
        let (d, now, rows) = four_cards_first_answered(&app, &slack, Scripted::Status(429, Some(30))).await;
        assert_eq!(slack.ok_calls("chat.postMessage").len(), 0);
        let (tried, waiting) = (&rows[0], &rows[1..]);
        let lifted = (now + Duration::seconds(30)).timestamp_millis();
        assert!(tried.3 >= lifted, "the tried one waits for the limit: {rows:?}");
        assert_eq!(tried.1, 0, "one was tried, and asked to wait: no failed attempt: {rows:?}");
        assert!(tried.2.as_deref().is_some_and(|e| e.contains("rate limited")), "{rows:?}");
        for (k, row) in (1..).zip(waiting) {
            assert_eq!(row.1, 0, "the others were not tried: {rows:?}");
            assert_eq!(row.2.as_deref(), Some("waiting behind an earlier message"), "{rows:?}");
            assert_eq!(row.3, tried.3 + k * 1000, "paced a second apart behind it, in order: {rows:?}");
        }
        let handoffs: Vec<i64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(handoffs, [1, 2, 3, 4], "in the order they were handed off");

        // When the limit lifts, a pass takes the one message that may go, not the backlog.
        let lift = chrono::DateTime::from_timestamp_millis(tried.3).expect("instant");
        assert_eq!(d.pass(lift).await.expect("deliver"), 1, "one claimed when the limit lifts");
        assert_eq!(slack.history("#cs-handoffs").len(), 1);
        assert_eq!(d.pass(lift + Duration::milliseconds(999)).await.expect("deliver"), 0, "nothing more is due yet");
        for k in 1..=3 {
            assert_eq!(d.pass(lift + Duration::seconds(k)).await.expect("deliver"), 1, "the next, a second later");
        }
        assert_eq!(slack.history("#cs-handoffs").len(), 4, "all four, once each");
        assert_eq!(app.store.outbox_depth().await.expect("depth"), 0);
    })
    .await;
}

/// Messages for a rate-limited channel that arrive while its line waits join the end of the
/// line, rather than being put back among it to be claimed again at every lift of the limit.
#[tokio::test]
async fn messages_arriving_for_a_waiting_channel_join_the_end_of_its_line() {
    on_each_store(|store| async move {
        let (slack, app) = (FakeSlack::start().await, app(store));
        let (d, now, rows) = four_cards_first_answered(&app, &slack, Scripted::Status(429, Some(30))).await;
        let end = rows.iter().map(|r| r.3).max().expect("the line");
        // Three more renewals while the channel waits: the first is held (the limit still holds),
        // the other two queue a second apart behind the four.
        for n in 5..=7 {
            let line = format!(r#"/handoff new sales-to-cs "Renewal {n}" account=A{n} arr=1000 segment=smb"#);
            app.handle("rita", Surface::Slack, cmd(&line), now, None).await.expect("create");
        }
        d.pass(now + Duration::seconds(1)).await.expect("deliver");
        let later: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT handoff_id, next_attempt_ms FROM outbox WHERE recipient = 'slack:#cs-handoffs' \
             AND handoff_id > 4 ORDER BY handoff_id",
        )
        .fetch_all(app.store.pool())
        .await
        .expect("outbox");
        assert_eq!(later.len(), 3, "{later:?}");
        assert_eq!(later[1].1, end + 1000, "behind the line's last: {later:?} (line ends at {end})");
        assert_eq!(later[2].1, end + 2000, "{later:?}");
        assert_eq!(slack.calls().len(), 1, "nothing was sent into the limit");
    })
    .await;
}

/// While a channel fails (a 5xx), only its first message is tried: the others wait behind it,
/// untried, until the same instant, rather than each being tried against a failing platform.
#[tokio::test]
async fn a_failing_channel_tries_only_its_first_message_and_the_rest_wait_untried() {
    on_each_store(|store| async move {
        let (slack, app) = (FakeSlack::start().await, app(store));
        let (d, now, rows) = four_cards_first_answered(&app, &slack, Scripted::Status(500, None)).await;
        let (tried, waiting) = (&rows[0], &rows[1..]);
        assert_eq!((tried.0, tried.1), (1, 1), "H-1's card was tried once: {rows:?}");
        assert!(tried.3 > now.timestamp_millis(), "and backs off: {rows:?}");
        for row in waiting {
            assert_eq!(row.1, 0, "the others were not tried: {rows:?}");
            assert_eq!(row.3, tried.3, "they wait until it is tried again: {rows:?}");
        }

        let retry = chrono::DateTime::from_timestamp_millis(tried.3).expect("instant");
        d.drain(retry).await.expect("deliver");
        assert_eq!(slack.history("#cs-handoffs").len(), 4, "all four once the platform answers");
    })
    .await;
}

/// A card waiting for delivery: `(handoff, attempts, last error, next attempt in ms)`.
type WaitingCard = (i64, i64, Option<String>, i64);

/// Hands off H-1 to H-4, whose cards go to #cs-handoffs, has Slack answer the first post `first`,
/// and delivers what is due: the deliverer, the instant, and the cards left waiting (all four),
/// in the order they are due.
async fn four_cards_first_answered(
    app: &App,
    slack: &FakeSlack,
    first: Scripted,
) -> (Deliverer, chrono::DateTime<Utc>, Vec<WaitingCard>) {
    slack.script("chat.postMessage", vec![first]);
    let d = deliverer(app, slack);
    let now = t("2026-11-30T09:00:00-05:00");
    renewals(app, 4, now).await;
    d.drain(now).await.expect("deliver");
    let rows: Vec<WaitingCard> = sqlx::query_as(
        "SELECT handoff_id, attempts, last_error, next_attempt_ms FROM outbox \
         WHERE recipient = 'slack:#cs-handoffs' AND delivered_at_ms IS NULL ORDER BY next_attempt_ms, handoff_id",
    )
    .fetch_all(app.store.pool())
    .await
    .expect("outbox");
    assert_eq!(rows.len(), 4, "no card went out: {rows:?}");
    (d, now, rows)
}

/// A delivery that cannot be recorded stops the recipient's sending; once the lease is over the
/// messages come back in doubt, and the one already posted is found in the channel (known only
/// by its name: nothing was ever recorded there) instead of being posted again.
#[tokio::test]
async fn a_failure_to_record_deliveries_stops_the_sending_and_nothing_is_posted_twice() {
    on_each_store(|store| async move {
        let slack = FakeSlack::start().await;
        let app = app(store);
        let d = deliverer(&app, &slack);
        let now = t("2026-11-30T09:00:00-05:00");
        renewals(&app, 12, now).await;
        let failing = inject_failure(
            &app.store,
            "fail_delivered",
            "UPDATE OF delivered_at_ms",
            "outbox",
            Some("NEW.delivered_at_ms IS NOT NULL"),
        )
        .await;
        d.drain(now).await.expect("a failed record is logged, not returned");
        assert_eq!(slack.ok_calls("chat.postMessage").len(), 1, "the sending stopped at the first failed record");
        assert_eq!(app.store.outbox_depth().await.expect("depth"), 12, "nothing was recorded as delivered");

        failing.heal(&app.store).await;
        // Once the lease is over, the rows come back in doubt: each is looked for first.
        d.drain(now + Duration::minutes(2)).await.expect("deliver");
        assert_eq!(app.store.outbox_depth().await.expect("depth"), 0);
        let channel = slack.history("#cs-handoffs");
        assert_eq!(channel.len(), 12, "each card posted once: {channel:?}");
        for n in 1..=12u64 {
            let mine: Vec<&serde_json::Value> = channel
                .iter()
                .filter(|m| m["text"].as_str().is_some_and(|t| t.starts_with(&format!("H-{n} · Renewal {n} ·"))))
                .collect();
            assert_eq!(mine.len(), 1, "H-{n}'s card: {channel:?}");
            let recorded =
                app.store.message_ref(n, &Recipient::SlackChannel("#cs-handoffs".into())).await.expect("ref");
            let ts = mine[0]["ts"].as_str().expect("ts");
            assert_eq!(recorded, Some(format!("C_cs-handoffs:{ts}")), "H-{n} remembers its own card");
        }
    })
    .await;
}

/// A service on SQLite whose messages are dead-lettered after two failed attempts, and its worker.
async fn with_two_attempts(slack: &FakeSlack) -> (App, Deliverer) {
    let mut m = model();
    m.delivery.max_attempts = 2;
    let app = App::new(sqlite().await, m);
    let d = deliverer(&app, slack);
    (app, d)
}

#[tokio::test]
async fn undeliverable_messages_are_dead_lettered_and_the_seams_lead_is_told() {
    let slack = FakeSlack::start().await;
    let (app, d) = with_two_attempts(&slack).await;
    let now = t("2026-11-30T09:00:00-05:00");
    // A permanent error: the card's channel does not exist.
    slack.script("chat.postMessage", vec![Scripted::Error("channel_not_found")]);
    app.handle("rita", Surface::Slack, cmd(ACME), now, None).await.expect("create");
    d.pass(now).await.expect("deliver");
    let (_, _, dead) =
        outbox_row(&app, "SELECT attempts, last_error, dead_at_ms FROM outbox WHERE recipient = 'slack:#cs-handoffs'")
            .await;
    assert!(dead.is_some(), "a 4xx-class error is not retried");
    d.pass(now + Duration::seconds(1)).await.expect("deliver the lead's notice");
    let carla = slack.history("U0CARLA001");
    assert_eq!(carla.len(), 1);
    let text = carla[0]["text"].as_str().expect("text");
    assert!(
        text.contains(
            "could not deliver a message about H-1 to Slack channel #cs-handoffs: chat.postMessage: channel_not_found \
             (Slack knows no such channel, or it is private and Baton is not in it: check the channel in baton.toml, \
             or invite Baton)"
        ),
        "{text}"
    );

    // Retryable errors until the attempts run out (the new card, Ana's card and Rita's notice each
    // fail twice).
    let failures = [500, 500, 500, 503, 503, 503].map(|code| Scripted::Status(code, None));
    slack.script("chat.postMessage", failures.to_vec());
    app.handle("ana", Surface::Slack, cmd("/handoff accept H-1"), now + Duration::minutes(1), None)
        .await
        .expect("accept");
    let later = now + Duration::minutes(1);
    d.pass(later).await.expect("first attempt");
    let (attempts, error, dead) =
        outbox_row(&app, "SELECT attempts, last_error, dead_at_ms FROM outbox WHERE recipient = 'person:rita'").await;
    assert_eq!((attempts, dead), (1, None), "{error:?}");
    d.pass(later + Duration::hours(1)).await.expect("second attempt");
    let (attempts, error, dead) =
        outbox_row(&app, "SELECT attempts, last_error, dead_at_ms FROM outbox WHERE recipient = 'person:rita'").await;
    assert_eq!(attempts, 2);
    assert!(dead.is_some());
    assert!(error.expect("error").contains("after 2 attempts"));
}

/// A platform asking to wait, however often, is not a failure: the message waits and goes out,
/// where as many failures would have dead-lettered it.
#[tokio::test]
async fn a_message_rate_limited_more_often_than_its_attempts_still_goes_out() {
    let slack = FakeSlack::start().await;
    let (app, d) = with_two_attempts(&slack).await;
    let mut now = t("2026-11-30T09:00:00-05:00");
    slack.script("chat.postMessage", vec![Scripted::Status(429, Some(1)); 5]);
    app.handle("rita", Surface::Slack, cmd(ACME), now, None).await.expect("create");
    for _ in 0..6 {
        d.pass(now).await.expect("deliver");
        now += Duration::seconds(2);
    }
    let (attempts, _, delivered) = outbox_row(
        &app,
        "SELECT attempts, platform_ref, delivered_at_ms FROM outbox WHERE recipient = 'slack:#cs-handoffs'",
    )
    .await;
    assert_eq!(slack.calls().iter().filter(|c| c.status == 429).count(), 5);
    assert_eq!(attempts, 0, "no attempt counted for being asked to wait");
    assert!(delivered.is_some(), "delivered after the fifth 429, not dead-lettered after the second");
    assert!(slack.history("U0CARLA001").is_empty(), "no dead letter reached the lead");
}

/// Slack limits `chat.update` per workspace, not per channel: one 429 holds every card edit
/// until it lifts, rather than each channel's edit being refused in turn.
#[tokio::test]
async fn a_rate_limited_card_edit_holds_the_edits_to_every_channel() {
    let slack = FakeSlack::start().await;
    let app = App::new(sqlite().await, model());
    // One send at a time, so that the second edit is tried after the first is refused.
    let d = Deliverer { concurrency: 1, ..deliverer(&app, &slack) };
    let now = t("2026-11-30T09:00:00-05:00");
    app.handle("rita", Surface::Slack, cmd(ACME), now, None).await.expect("create");
    d.drain(now).await.expect("deliver the channel's card");
    app.handle("ana", Surface::Slack, cmd("/handoff accept H-1"), now, None).await.expect("accept");
    d.drain(now).await.expect("deliver Ana's card and Rita's notice");
    // Ana acknowledges: the channel's card and Ana's are both edited, and the first edit is refused.
    slack.script("chat.update", vec![Scripted::Status(429, Some(20))]);
    let later = now + Duration::minutes(1);
    let before = slack.calls().len();
    app.handle("ana", Surface::Slack, cmd("/ack H-1"), later, None).await.expect("ack");
    d.pass(later).await.expect("deliver");
    let calls = slack.calls().split_off(before);
    let updates: Vec<u16> = calls.iter().filter(|c| c.method == "chat.update").map(|c| c.status).collect();
    assert_eq!(updates, [429], "the other edit was held, not sent into the limit");
    let waiting: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT attempts, last_error FROM outbox WHERE delivered_at_ms IS NULL ORDER BY next_attempt_ms",
    )
    .fetch_all(app.store.pool())
    .await
    .expect("outbox");
    assert_eq!(waiting.len(), 2, "both edits wait: {waiting:?}");
    assert!(waiting.iter().all(|(attempts, _)| *attempts == 0), "{waiting:?}");
    d.drain(later + Duration::seconds(21)).await.expect("deliver once it lifts");
    assert_eq!(slack.ok_calls("chat.update").len(), 3, "both edits went out once the limit lifted (and the accept's)");
}

#[tokio::test]
async fn direct_messages_outside_working_hours_wait_for_the_morning() {
    on_each_store(|store| async move {
        let slack = FakeSlack::start().await;
        let app = app(store);
        let d = deliverer(&app, &slack);
        app.handle("mia", Surface::Slack, cmd(LAUNCH), t("2026-11-30T10:00:00Z"), None).await.expect("create");
        // Eli accepts at 09:05 Berlin, 08:05 in London: Mia's notice waits for her 09:00.
        let accepted = t("2026-12-01T09:05:00+01:00");
        app.handle("eli", Surface::Slack, cmd("/handoff accept H-1"), accepted, None).await.expect("accept");
        d.drain(accepted).await.expect("deliver");
        assert!(slack.history("U0MIA00001").is_empty(), "held outside her hours");
        assert_eq!(app.store.earliest_outbox().await.expect("earliest"), Some(t("2026-12-01T09:00:00Z")));
        d.drain(t("2026-12-01T09:00:00Z")).await.expect("deliver");
        assert_eq!(slack.history("U0MIA00001").len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_snoozed_ladder_resumes_after_a_restart() {
    on_each_store(|store| async move {
        let monday = t("2026-11-30T09:00:00-05:00");
        {
            let before = app(store.clone());
            before.handle("rita", Surface::Slack, cmd(ACME), monday, None).await.expect("create");
            before
                .handle("ana", Surface::Slack, cmd("/handoff accept H-1"), monday + Duration::hours(1), None)
                .await
                .expect("accept");
            before
                .handle("ana", Surface::Slack, cmd("/snooze H-1 3h legal review"), monday + Duration::hours(2), None)
                .await
                .expect("snooze");
        }
        // A new process on the same database: the snooze still ends on time.
        let after = app(store.clone());
        assert_eq!(after.store.earliest_check().await.expect("next"), Some(monday + Duration::hours(5)));
        after.sweep(monday + Duration::hours(5)).await.expect("sweep");
        let kinds: Vec<String> =
            after.store.events(1).await.expect("events").iter().map(|e| e.change.kind().into()).collect();
        assert_eq!(kinds.last().map(String::as_str), Some("snooze_ended"));
        // The update clock runs again: 8h target, 1h used before the snooze, 7h from 14:00 is
        // Tuesday 13:00.
        assert_eq!(after.store.earliest_check().await.expect("next"), Some(t("2026-12-01T13:00:00-05:00")));
    })
    .await;
}

#[tokio::test]
async fn each_scheduled_job_instant_runs_once_however_many_replicas_tick() {
    on_each_store(|store| async move {
        let (a, b) = (app(store.clone()), app(store.clone()));
        let friday = t("2026-11-27T10:00:00-05:00");
        a.handle("rita", Surface::Slack, cmd(ACME), friday, None).await.expect("create");
        // A stall unblocked the week before, for the digest's chart to draw.
        crate::support::unblocked_stall(&a, t("2026-11-27T10:00:00-05:00")).await;
        let (mut clock_a, mut clock_b) = (JobClock::default(), JobClock::default());
        // Both replicas start on Sunday (no run yet: a new job starts from now).
        let sunday = t("2026-11-29T12:00:00Z");
        assert_eq!(clock_a.tick(&a, sunday).await.expect("tick"), 0);
        assert_eq!(clock_b.tick(&b, sunday).await.expect("tick"), 0);
        // Monday 09:00 New York passes: the Americas catch-up runs once across both.
        let monday = t("2026-11-30T09:00:30-05:00");
        let ran = clock_a.tick(&a, monday).await.expect("tick") + clock_b.tick(&b, monday).await.expect("tick");
        assert!(ran >= 1);
        let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_runs WHERE job = 'catch-up-americas'")
            .fetch_one(store.pool())
            .await
            .expect("count");
        assert_eq!(runs, 1);
        let to_carla: Vec<String> = sqlx::query_scalar("SELECT intent FROM outbox WHERE recipient = 'person:carla'")
            .fetch_all(store.pool())
            .await
            .expect("outbox");
        let mornings: Vec<&String> = to_carla.iter().filter(|i| i.contains("Good morning, Customer Success")).collect();
        assert_eq!(mornings.len(), 1, "{to_carla:?}");
        assert!(mornings[0].contains("1 waiting to be accepted") && mornings[0].contains("H-1"));
        // Monday 09:00 London passed too: the weekly digest goes to the architects' channel, with
        // the chart of the last 12 weeks.
        let digest: Vec<String> =
            sqlx::query_scalar("SELECT intent FROM outbox WHERE recipient = 'slack:#ops-architecture' ORDER BY id")
                .fetch_all(store.pool())
                .await
                .expect("outbox");
        assert_eq!(digest.len(), 2, "{digest:?}");
        let text: baton_core::Intent = serde_json::from_str(&digest[0]).expect("intent");
        assert!(text.text.starts_with("Weekly stall digest\nStall history · last 7 days"), "{}", text.text);
        assert!(text.text.contains("• sales-to-cs:"), "{}", text.text);
        let chart: baton_core::Intent = serde_json::from_str(&digest[1]).expect("intent");
        let image = chart.image.expect("the chart");
        assert!(image.title.contains("last 84 days"), "{}", image.title);
        assert!(image.png_base64.starts_with("iVBORw0KGgo"), "a base64 PNG");
    })
    .await;
}

/// A quiet quarter's weekly digest says there is nothing to chart instead of posting empty axes;
/// once a stall was unblocked, the chart follows the text.
#[tokio::test]
async fn the_weekly_digest_charts_only_what_was_unblocked() {
    let app = app(crate::support::sqlite().await);
    let digest = app.model.jobs.iter().find(|j| j.name == "weekly-stall-digest").cloned().expect("a shipped job");
    let monday = t("2026-11-30T09:00:00Z");
    let quiet = baton::jobs::messages(&app, &digest, monday).await.expect("job");
    assert_eq!(quiet.len(), 1, "the text alone: {quiet:?}");
    assert!(quiet[0].text.ends_with("No stall was unblocked in the last 12 weeks, so no chart this week."));
    crate::support::unblocked_stall(&app, monday).await;
    let charted = baton::jobs::messages(&app, &digest, monday).await.expect("job");
    assert_eq!(charted.len(), 2, "{charted:?}");
    assert!(!charted[0].text.contains("no chart") && charted[1].image.is_some(), "{charted:?}");
}

#[tokio::test]
async fn the_morning_jobs_leave_people_away_alone_and_show_their_leads_what_they_own() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        let friday = t("2026-11-27T10:00:00-05:00");
        app.handle("rita", Surface::Slack, cmd(ACME), friday, None).await.expect("create");
        app.handle("ana", Surface::Slack, cmd("/handoff accept H-1"), friday, None).await.expect("accept");
        let beta = r#"/handoff new sales-to-cs "Beta" account=Beta arr=1 segment=smb"#;
        app.handle("rita", Surface::Slack, cmd(beta), friday, None).await.expect("create");
        app.handle("ana", Surface::Slack, cmd("/handoff return H-2 which contract?"), friday, None).await.expect("return");
        let job = |name: &str| app.model.jobs.iter().find(|j| j.name == name).cloned().expect("a shipped job");
        let texts = |intents: Vec<baton_core::Intent>| -> Vec<(Recipient, String)> {
            intents.into_iter().map(|i| (i.to, i.text)).collect()
        };
        // Monday 10:00: no change since Friday, so Ana is asked whether it is still open...
        let monday = t("2026-11-30T10:00:00-05:00");
        let nudges = texts(baton::jobs::messages(&app, &job("still-open-americas"), monday).await.expect("job"));
        let ana = nudges.iter().find(|(to, _)| *to == Recipient::Person("ana".into())).expect("Ana is asked");
        assert!(
            ana.1.starts_with(
                "Still open? No change for a day on:\n• H-1 \"Acme renewal\" (sales-to-cs) · accepted · No progress update in time since Mon 30 Nov 10:00 EST\n"
            ),
            "{}",
            ana.1
        );
        // Work returned to its requester on Friday and not answered: the ball is in Rita's court.
        let rita = nudges.iter().find(|(to, _)| *to == Recipient::Person("rita".into())).expect("Rita is asked");
        assert!(rita.1.starts_with("Waiting on you: returned to you and not resubmitted:\n• H-2 \"Beta\" (sales-to-cs) · returned Fri 27 Nov 10:00 EST: which contract?"), "{}", rita.1);
        // Had they left the model, neither would be asked (their leads are told of what waits on them).
        let gone = App::new(app.store.clone(), model_without(&["ana", "rita"]));
        let nudges = texts(baton::jobs::messages(&gone, &job("still-open-americas"), monday).await.expect("job"));
        let asked = |who: &str| nudges.iter().any(|(to, _)| *to == Recipient::Person(who.into()));
        assert!(!asked("ana") && !asked("rita"), "{nudges:?}");
        let morning = texts(baton::jobs::messages(&app, &job("catch-up-americas"), monday).await.expect("job"));
        let (_, sam) = morning.iter().find(|(to, _)| *to == Recipient::Person("sam".into())).expect("Sam's");
        assert!(sam.contains("1 sent by Sales and returned, waiting on its requester:\n• H-2"), "{sam}");
        // ...unless she is away; then her lead's morning catch-up lists it, with how to reassign.
        app.handle("ana", Surface::Slack, cmd("/away until 2026-12-04 holiday"), monday, None).await.expect("away");
        let nudges = texts(baton::jobs::messages(&app, &job("still-open-americas"), monday).await.expect("job"));
        assert!(nudges.iter().all(|(to, _)| *to != Recipient::Person("ana".into())), "{nudges:?}");
        let morning = texts(baton::jobs::messages(&app, &job("catch-up-americas"), monday).await.expect("job"));
        let (_, text) = morning.iter().find(|(to, _)| *to == Recipient::Person("carla".into())).expect("Carla's");
        assert!(text.contains("1 owned by people away or gone (reassign with `/handoff reassign H-<n> <person>`):"), "{text}");
        assert!(
            text.contains("H-1 \"Acme renewal\" (sales-to-cs)") && text.ends_with("Ana Alves away through Fri 04 Dec"),
            "{text}"
        );
        // Stalled, each is still listed once: the queue's and the away owner's say they are stalled.
        let gamma = r#"/handoff new sales-to-cs "Gamma" account=Gamma arr=1 segment=smb"#;
        app.handle("rita", Surface::Slack, cmd(gamma), friday, None).await.expect("create");
        app.sweep(monday).await.expect("sweep");
        let morning = texts(baton::jobs::messages(&app, &job("catch-up-americas"), monday).await.expect("job"));
        let (_, text) = morning.iter().find(|(to, _)| *to == Recipient::Person("carla".into())).expect("Carla's");
        assert_eq!((text.matches("H-1 ").count(), text.matches("H-3 ").count()), (1, 1), "{text}");
        assert!(text.contains("1 waiting to be accepted:\n• H-3 \"Gamma\" (sales-to-cs) · open · STALLED"), "{text}");
        assert!(!text.contains("stalled:"), "nothing stalled is left to list apart: {text}");
        // With Carla away too, the catch-up goes to the cover she named.
        let away = cmd("/away until 2026-12-04 cover=ben");
        app.handle("carla", Surface::Slack, away, monday, None).await.expect("away");
        let morning = texts(baton::jobs::messages(&app, &job("catch-up-americas"), monday).await.expect("job"));
        let theirs = |who: &str| morning.iter().filter(|(to, _)| *to == Recipient::Person(who.into())).count();
        assert_eq!((theirs("ben"), theirs("carla")), (1, 0), "{morning:?}");
        // Ben leaves the model: a cover who left stands in for nobody, and Carla has it again.
        let after = App::new(app.store.clone(), model_without(&["ben"]));
        let morning = texts(baton::jobs::messages(&after, &job("catch-up-americas"), monday).await.expect("job"));
        let theirs = |who: &str| morning.iter().filter(|(to, _)| *to == Recipient::Person(who.into())).count();
        assert_eq!((theirs("ben"), theirs("carla")), (0, 1), "{morning:?}");
        // Ana leaves it too: what she owns is listed as owned by someone gone.
        let after = App::new(app.store.clone(), model_without(&["ben", "ana"]));
        let morning = texts(baton::jobs::messages(&after, &job("catch-up-americas"), monday).await.expect("job"));
        let (_, text) = morning.iter().find(|(to, _)| *to == Recipient::Person("carla".into())).expect("Carla's");
        assert!(text.contains("1 owned by people away or gone"), "{text}");
        let gone = App::new(app.store.clone(), model_without(&["ben", "ana", "rita"]));
        let morning = texts(baton::jobs::messages(&gone, &job("catch-up-americas"), monday).await.expect("job"));
        let (_, sam) = morning.iter().find(|(to, _)| *to == Recipient::Person("sam".into())).expect("Sam's");
        assert!(sam.ends_with("returned Fri 27 Nov 10:00 EST: which contract? · rita, no longer in the operating model"), "{sam}");
        assert!(text.contains("\n• H-1 \"Acme renewal\" (sales-to-cs) · accepted · STALLED: no progress update in time · ana, no longer in the operating model"), "{text}");
    })
    .await;
}

#[tokio::test]
async fn messages_wait_while_a_platform_refuses_the_token_and_go_out_once_it_is_fixed() {
    let slack = FakeSlack::start().await;
    let app = app(sqlite().await);
    let revoked =
        Outbound { slack: Some(SlackApi::new(&slack.url, "xoxb-revoked", Limits::default())), ..Outbound::default() };
    let refused = Deliverer { out: revoked, ..deliverer(&app, &slack) };
    let now = t("2026-11-30T09:00:00-05:00");
    app.handle("rita", Surface::Slack, cmd(ACME), now, None).await.expect("create");
    let card = "SELECT attempts, last_error, dead_at_ms FROM outbox WHERE recipient = 'slack:#cs-handoffs'";
    let tried = || slack.calls().iter().filter(|c| c.error == Some("invalid_auth")).count();
    refused.pass(now).await.expect("deliver");
    assert_eq!(tried(), 1);
    let (attempts, error, dead) = outbox_row(&app, card).await;
    assert_eq!((attempts, dead), (0, None), "kept, not dead-lettered, and not counted as an attempt");
    assert!(error.expect("why").contains("refusing Baton's token"));
    // Meanwhile nothing is sent to Slack at all; after the hold one message tries again.
    refused.pass(now + Duration::seconds(30)).await.expect("deliver");
    assert_eq!(tried(), 1, "held: no request");
    refused.pass(now + Duration::seconds(61)).await.expect("deliver");
    assert_eq!(tried(), 2);
    assert_eq!(outbox_row(&app, card).await.0, 0);
    // The token fixed (Baton restarted with the right one): the card goes out when it is next due.
    deliverer(&app, &slack).pass(now + Duration::seconds(130)).await.expect("deliver");
    assert_eq!(slack.history("#cs-handoffs").len(), 1);
    assert_eq!(app.store.outbox_depth().await.expect("depth"), 0);
}

#[tokio::test]
async fn a_heads_up_is_given_once_per_deadline_across_commands_and_sweeps() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        let monday = t("2026-11-30T08:00:00Z");
        let line = r#"/handoff new eng-to-ops "Rotate certs" service=edge runbook=https://runbooks.example/certs"#;
        app.handle("eve", Surface::Slack, cmd(line), monday, None).await.expect("new");
        // eng-to-ops warns 30 working minutes before its 2h acceptance target.
        assert_eq!(store.earliest_check().await.expect("next"), Some(t("2026-11-30T09:30:00Z")));
        app.sweep(t("2026-11-30T09:30:00Z")).await.expect("sweep");
        // A comment moves nothing: the heads-up, recorded, is not given again before the breach.
        app.handle(
            "eve",
            Surface::Slack,
            cmd("/handoff comment H-1 window is tonight"),
            t("2026-11-30T09:40:00Z"),
            None,
        )
        .await
        .expect("comment");
        assert_eq!(store.earliest_check().await.expect("next"), Some(t("2026-11-30T10:00:00Z")));
        app.sweep(t("2026-11-30T09:50:00Z")).await.expect("sweep");
        let kinds: Vec<String> =
            store.events(1).await.expect("events").iter().map(|e| e.change.kind().into()).collect();
        assert_eq!(kinds, ["created", "warned", "commented"]);
        let told: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE intent LIKE '%Heads-up: H-1%'")
            .fetch_one(store.pool())
            .await
            .expect("count");
        assert_eq!(told, 3, "Omar, Olga and the deploy agent, once each");
    })
    .await;
}

/// The buttons of a Slack message's actions blocks.
fn buttons(message: &serde_json::Value) -> usize {
    let blocks = message["blocks"].as_array().into_iter().flatten();
    blocks.filter(|b| b["type"] == "actions").map(|b| b["elements"].as_array().map_or(0, Vec::len)).sum()
}

/// A stall's escalations (the queue's reminders, the lead's notice, the channel's post) are
/// edited when it ends to say who answered it, without their buttons, so that nobody takes up
/// what another already took; nothing new is posted, and one deleted meanwhile is passed over
/// (no dead letter for the lead to read).
#[tokio::test]
async fn a_stalls_escalations_are_edited_to_say_it_was_answered_when_it_ends() {
    on_each_store(|store| async move {
        let (slack, app, d, monday) = acme(store).await;
        // Nobody accepts: the queue is reminded at 13:00, Carla as lead at 15:00, the channel at 17:00.
        for hour in [4, 6, 8] {
            app.sweep(monday + Duration::hours(hour)).await.expect("sweep");
            d.drain(monday + Duration::hours(hour)).await.expect("deliver");
        }
        let escalations = |who: &str| -> Vec<serde_json::Value> {
            let stalled = |m: &serde_json::Value| m["text"].as_str().is_some_and(|t| t.contains("is stalled"));
            slack.history(who).into_iter().filter(stalled).collect()
        };
        let people = ["U0ANA00001", "U0BEN00001", "U0CARLA001"];
        let counts: Vec<usize> = people.iter().map(|p| escalations(p).len()).collect();
        assert_eq!(counts, [1, 1, 2], "Carla is reminded with the queue and told as lead");
        assert_eq!(escalations("#cs-handoffs").len(), 1);
        assert!(escalations("U0BEN00001").iter().all(|m| buttons(m) > 0), "an open reminder has its buttons");
        let before: Vec<usize> = people.iter().map(|p| slack.history(p).len()).collect();
        let texts = |ms: Vec<serde_json::Value>| -> Vec<String> {
            ms.iter().map(|m| m["text"].as_str().expect("text").to_string()).collect()
        };
        let sent: Vec<Vec<String>> =
            ["U0ANA00001", "U0CARLA001", "#cs-handoffs"].iter().map(|who| texts(escalations(who))).collect();
        // Ben deletes his reminder.
        let ts = escalations("U0BEN00001")[0]["ts"].as_str().expect("ts").to_string();
        slack.delete("U0BEN00001", &ts);
        let tuesday = t("2026-12-01T09:30:00-05:00");
        app.handle("ana", Surface::Slack, cmd("/handoff accept H-1"), tuesday, None).await.expect("accept");
        d.drain(tuesday).await.expect("deliver");
        // Each keeps what it said, followed by who answered it.
        let answered = "✓ No longer stalled: Ana Alves (Slack) accepted it (Tue 01 Dec 09:30 EST). Now: accepted.";
        for (who, sent) in ["U0ANA00001", "U0CARLA001", "#cs-handoffs"].into_iter().zip(sent) {
            let edited = escalations(who);
            let expected: Vec<String> = sent.iter().map(|t| format!("{t}\n{answered}")).collect();
            assert_eq!(texts(edited.clone()), expected, "{who}'s escalations say who answered");
            assert!(edited.iter().all(|m| buttons(m) == 0), "{who}'s escalations lost their buttons");
        }
        // Nothing new was posted for the answer (Ana's own card is new: she owns it now).
        let after: Vec<usize> = people.iter().map(|p| slack.history(p).len()).collect();
        assert_eq!(after, [before[0] + 1, before[1] - 1, before[2]]);
        assert_eq!(app.store.outbox_depth().await.expect("depth"), 0);
        let (dead, refs): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM outbox WHERE dead_at_ms IS NOT NULL), (SELECT COUNT(*) FROM ask_refs)",
        )
        .fetch_one(app.store.pool())
        .await
        .expect("counts");
        assert_eq!((dead, refs), (0, 0), "the deleted reminder is passed over, and every answered one forgotten");
        // Acknowledging it ends no stall: nothing more is edited but the cards.
        let edits = slack.ok_calls("chat.update").len();
        app.handle("ana", Surface::Slack, cmd("/ack H-1"), tuesday + Duration::minutes(1), None).await.expect("ack");
        d.drain(tuesday + Duration::minutes(1)).await.expect("deliver");
        assert_eq!(slack.ok_calls("chat.update").len(), edits + 2, "the channel's card and Ana's");
    })
    .await;
}

/// An escalation that could not go out before its stall was answered (Slack down, or the
/// recipient's working hours not begun) is not sent when it can: it would ask for what is done.
#[tokio::test]
async fn an_escalation_answered_before_it_could_go_out_is_not_sent() {
    on_each_store(|store| async move {
        let (slack, app, d, monday) = acme(store).await;
        d.drain(monday).await.expect("deliver");
        // At 13:00 the queue is reminded, while Slack answers nothing but errors.
        let one = monday + Duration::hours(4);
        app.sweep(one).await.expect("sweep");
        let reminders = |rows: &[baton::store::Claimed]| {
            rows.iter().filter(|r| r.intent.kind == baton_core::IntentKind::Escalation).count()
        };
        assert_eq!(reminders(&app.store.pending_outbox(one, 100).await.expect("outbox")), 3);
        slack.script("chat.postMessage", vec![Scripted::Status(503, None); 3]);
        d.drain(one).await.expect("deliver");
        assert_eq!(reminders(&app.store.pending_outbox(one + Duration::minutes(10), 100).await.expect("outbox")), 3);
        // Ana takes it before they are tried again.
        let taken = one + Duration::minutes(5);
        app.handle("ana", Surface::Slack, cmd("/handoff accept H-1"), taken, None).await.expect("accept");
        d.drain(one + Duration::minutes(10)).await.expect("deliver");
        for who in ["U0ANA00001", "U0BEN00001", "U0CARLA001"] {
            let texts: Vec<String> = slack.texts(who);
            assert!(
                texts.iter().all(|t| !t.contains("is stalled") && !t.contains("No longer stalled")),
                "{who}: {texts:?}"
            );
        }
        assert_eq!(app.store.outbox_depth().await.expect("depth"), 0, "the reminders are done with");
        let dead: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE dead_at_ms IS NOT NULL")
            .fetch_one(app.store.pool())
            .await
            .expect("dead");
        assert_eq!(dead, 0);
    })
    .await;
}

/// A recalibration thread's requests for its record (the opening post, the timebox reminder)
/// keep what they said and lose their *Record outcome* buttons once it is recorded.
#[tokio::test]
async fn a_recorded_recalibrations_requests_for_its_record_lose_their_buttons() {
    on_each_store(|store| async move {
        let (slack, app, d, monday) = acme(store).await;
        // The ladder climbs to its recalibration on Tuesday at 13:00; its timebox runs out at 13:30.
        for minutes in [4 * 60, 6 * 60, 8 * 60, 28 * 60, 28 * 60 + 30] {
            let at = monday + Duration::minutes(minutes);
            app.sweep(at).await.expect("sweep");
            d.drain(at).await.expect("deliver");
        }
        let asking = |m: &serde_json::Value| {
            m["blocks"].to_string().contains("\"action_id\":\"record\"")
                && m["text"].as_str().is_some_and(|t| t.contains("Record the outcome"))
        };
        let requests: Vec<serde_json::Value> = slack.history("#cs-handoffs").into_iter().filter(asking).collect();
        assert_eq!(requests.len(), 2, "the opening and the timebox reminder: {:#?}", slack.history("#cs-handoffs"));
        let tuesday = monday + Duration::hours(28) + Duration::minutes(40);
        let record = r#"/handoff record H-1 decision=new-owner new_owner=ben assumption_broke="x" category=capacity"#;
        app.handle("carla", Surface::Slack, cmd(record), tuesday, None).await.expect("record");
        d.drain(tuesday).await.expect("deliver");
        let now: Vec<serde_json::Value> = slack.history("#cs-handoffs");
        let recorded = "✓ Recorded by Carla Costa: new-owner (Tue 01 Dec 13:40 EST).";
        for request in &requests {
            let edited = now.iter().find(|m| m["ts"] == request["ts"]).expect("still there");
            let text = edited["text"].as_str().expect("text");
            assert!(text.ends_with(&format!("\n{recorded}")), "{text}");
            assert!(!asking(edited) && buttons(edited) == 0, "{edited}");
        }
        let opening = now.iter().find(|m| m["ts"] == requests[0]["ts"]).expect("opening");
        assert_eq!(opening["blocks"][0]["type"], "header", "the opening keeps its header: {opening}");
    })
    .await;
}

/// `baton outbox` as an operator runs it against `url`: (success, stdout, stderr).
fn outbox_cli(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("outbox")
        .args(args)
        .current_dir(crate::support::repo())
        .env("BATON_DATABASE_URL", url)
        .env_remove("BATON_CONFIG")
        .env_remove("BATON_PLAYBOOKS_DIR")
        .output()
        .expect("run baton outbox");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// An operator lists the dead letters with why each died and, the cause fixed, returns them to the
/// queue: each goes out once (looked for on the platform first). A card that a later card of its
/// handoff replaces is left, and an id that is no dead letter is named.
#[tokio::test]
async fn an_operator_lists_dead_letters_and_returns_them_to_the_queue() {
    let dir = std::env::temp_dir().join("baton-tests");
    std::fs::create_dir_all(&dir).expect("dir");
    let sqlite = format!("sqlite://{}?mode=rwc", dir.join(format!("outbox-{}.db", std::process::id())).display());
    dead_letters_returned(sqlite).await;
    if let Some(postgres) = crate::support::postgres_url().await {
        dead_letters_returned(postgres).await;
    }
}

async fn dead_letters_returned(url: String) {
    let slack = FakeSlack::start().await;
    let app = App::new(baton::store::Store::open(&url).await.expect("store"), model());
    let d = deliverer(&app, &slack);
    let now = t("2026-11-30T09:00:00-05:00");
    // Baton is not in #cs-handoffs: both cards are dead-lettered at once.
    for (n, account) in [(1, "Acme"), (2, "Beta")] {
        slack.script("chat.postMessage", vec![Scripted::Error("not_in_channel")]);
        let line = format!(r#"/handoff new sales-to-cs "{account} renewal" account={account} arr=1 segment=smb"#);
        let at = now + Duration::minutes(n);
        app.handle("rita", Surface::Slack, cmd(&line), at, None).await.expect("create");
        d.pass(at).await.expect("deliver");
        assert_eq!(app.store.dead_letters(10).await.expect("dead").len(), n as usize);
        d.drain(at + Duration::seconds(1)).await.expect("the lead is told");
    }
    assert_eq!(slack.history("U0CARLA001").len(), 2, "Carla was told of each");
    let (ok, listed, err) = outbox_cli(&url, &["dead"]);
    assert!(ok, "{err}");
    assert!(listed.starts_with("2 dead letter(s), newest first:\n#3  2026-11-30 14:02 UTC  H-2 "), "{listed}");
    assert!(listed.contains("H-1 → slack:#cs-handoffs  card  1 attempt(s)"), "{listed}");
    assert!(listed.contains("why: chat.postMessage: not_in_channel (Baton is not in that channel: invite it there"));
    assert!(listed.contains("it began: H-1 · Acme renewal · Sales → Customer Success"), "{listed}");
    // Ben takes H-2: its new card goes out, and replaces the dead one.
    let at = now + Duration::minutes(3);
    app.handle("ben", Surface::Slack, cmd("/handoff accept H-2"), at, None).await.expect("accept");
    d.drain(at).await.expect("deliver");
    assert_eq!(slack.history("#cs-handoffs").len(), 1, "H-2's new card");
    // Baton is invited; the operator returns them all.
    let (ok, said, err) = outbox_cli(&url, &["retry", "--all"]);
    assert!(ok, "{err}");
    assert!(said.starts_with("Returned 1 message(s) to the queue: #1."), "{said}");
    assert!(said.contains("Left #3: a later card of the same handoff replaces each."), "{said}");
    let later = Utc::now();
    d.drain(later).await.expect("deliver");
    let cards = slack.history("#cs-handoffs");
    assert_eq!(cards.len(), 2, "H-1's card went out once: {cards:#?}");
    assert!(cards[1]["text"].as_str().is_some_and(|t| t.starts_with("H-1 · Acme renewal")), "{cards:#?}");
    // It was looked for first, as a message whose attempt may have posted it.
    assert!(slack.calls().iter().any(|c| c.method == "conversations.history"), "looked for before posting");
    let (_, again, _) = outbox_cli(&url, &["retry", "#1", "99"]);
    assert_eq!(
        again,
        "Returned nothing to the queue.\nNot dead letters (delivered, waiting, or no such message): #1, #99.\n"
    );
    let (ok, _, err) = outbox_cli(&url, &["retry", "forty-two"]);
    assert!(!ok && err.contains("`forty-two` is not a message id: give one as listed, like #42"), "{err}");
}

/// A heads-up asks for what is about to fall due: once it is done, the heads-up keeps what it
/// said and loses its buttons, whoever did it.
#[tokio::test]
async fn a_heads_up_is_edited_when_its_target_is_met() {
    on_each_store(|store| async move {
        let slack = FakeSlack::start().await;
        let app = app(store);
        let d = deliverer(&app, &slack);
        let line = r#"/handoff new eng-to-ops "Rotate certs" service=edge runbook=https://runbooks.example/certs"#;
        app.handle("eve", Surface::Slack, cmd(line), t("2026-11-30T08:00:00Z"), None).await.expect("new");
        let warned = t("2026-11-30T09:30:00Z");
        app.sweep(warned).await.expect("sweep");
        d.drain(warned).await.expect("deliver");
        let heads_up = |who: &str| -> Vec<serde_json::Value> {
            let told = |m: &serde_json::Value| m["text"].as_str().is_some_and(|t| t.starts_with("Heads-up: H-1"));
            slack.history(who).into_iter().filter(told).collect()
        };
        assert!(heads_up("U0OMAR0001").iter().all(|m| buttons(m) == 2), "Accept and Return");
        let taken = t("2026-11-30T09:40:00Z");
        app.handle("olga", Surface::Slack, cmd("/handoff accept H-1"), taken, None).await.expect("accept");
        d.drain(taken).await.expect("deliver");
        // Omar's, in Slack (Olga is on Discord alone, which this test has not configured).
        let edited = heads_up("U0OMAR0001");
        assert_eq!(edited.len(), 1, "{:#?}", slack.history("U0OMAR0001"));
        let text = edited[0]["text"].as_str().expect("text");
        let answer = "\n✓ Answered: Olga Orlova (Slack) accepted it (Mon 30 Nov 09:40 UTC). Now: accepted.";
        assert!(text.ends_with(answer), "{text}");
        assert_eq!(buttons(&edited[0]), 0);
    })
    .await;
}

/// A notice that asks someone to act (a return's *Resubmit*) is answered once the handoff moves
/// on: it keeps what it said and loses its buttons; a watcher's *Stop watching* stays.
#[tokio::test]
async fn a_notice_that_asks_is_edited_when_the_handoff_moves_on() {
    on_each_store(|store| async move {
        let (slack, app, d, monday) = acme(store).await;
        app.handle("sam", Surface::Slack, cmd("/handoff watch H-1"), monday, None).await.expect("watch");
        app.handle("ben", Surface::Slack, cmd("/handoff return H-1 which segment?"), monday, None).await.expect("return");
        d.drain(monday).await.expect("deliver");
        let returned = |m: &serde_json::Value| m["text"].as_str().is_some_and(|t| t.contains("was returned to you by"));
        let notice = slack.history("U0RITA0001").into_iter().find(returned).expect("Rita is told");
        assert_eq!(buttons(&notice), 1, "Resubmit");
        let later = monday + Duration::minutes(10);
        let resubmit = "/handoff resubmit H-1 segment=mid-market it is mid-market";
        app.handle("rita", Surface::Slack, cmd(resubmit), later, None).await.expect("resubmit");
        d.drain(later).await.expect("deliver");
        let edited = slack.history("U0RITA0001").into_iter().find(returned).expect("still there");
        let text = edited["text"].as_str().expect("text");
        assert!(text.starts_with(notice["text"].as_str().expect("text")), "{text}");
        assert!(text.ends_with("\n✓ Answered: Rita Reyes (Slack) resubmitted it (segment: mid-market): “it is mid-market” (Mon 30 Nov 09:10 EST). Now: open."), "{text}");
        assert_eq!(buttons(&edited), 0);
        // Sam's watcher notices keep their *Stop watching*.
        let sam = slack.history("U0SAM00001");
        assert!(!sam.is_empty() && sam.iter().all(|m| buttons(m) == 1), "{sam:#?}");
    })
    .await;
}

/// A notice that asks someone to act, held for their working hours and answered meanwhile (by
/// them, before their day began), is not sent when their day begins.
#[tokio::test]
async fn a_held_request_answered_before_it_went_out_is_not_sent() {
    on_each_store(|store| async move {
        let slack = FakeSlack::start().await;
        let app = app(store);
        let d = deliverer(&app, &slack);
        app.handle("mia", Surface::Slack, cmd(LAUNCH), t("2026-11-30T10:00:00Z"), None).await.expect("create");
        // Eli sends it back at 09:05 in Berlin, 08:05 in London: Mia's notice waits for her 09:00.
        let returned = t("2026-12-01T08:05:00Z");
        app.handle("eli", Surface::Slack, cmd("/handoff return H-1 which channel?"), returned, None)
            .await
            .expect("return");
        d.drain(returned).await.expect("deliver");
        let asked = |rows: &[baton::store::Claimed]| rows.iter().any(|r| r.intent.text.contains("was returned to you"));
        assert!(asked(&app.store.pending_outbox(t("2026-12-01T09:00:00Z"), 100).await.expect("outbox")));
        // She answers from her phone at 08:30.
        let answered = t("2026-12-01T08:30:00Z");
        app.handle("mia", Surface::Slack, cmd("/handoff resubmit H-1 channel=web"), answered, None)
            .await
            .expect("resubmit");
        d.drain(t("2026-12-01T09:00:00Z")).await.expect("deliver");
        let mia: Vec<String> = slack.texts("U0MIA00001");
        assert!(mia.iter().all(|t| !t.contains("was returned to you")), "{mia:#?}");
        assert_eq!(app.store.outbox_depth().await.expect("depth"), 0);
    })
    .await;
}

/// A follow-up's reminder waits for its due day, and nothing else waits behind it: what its owner
/// is told about the same handoff meanwhile goes out at once.
#[tokio::test]
async fn a_follow_up_reminder_held_for_its_day_holds_back_nothing_else() {
    on_each_store(|store| async move {
        let (slack, app, d, monday) = acme(store).await;
        app.handle("carla", Surface::Slack, cmd("/handoff watch H-1"), monday, None).await.expect("watch");
        app.handle("carla", Surface::Slack, cmd("/recalibrate H-1"), monday, None).await.expect("convene");
        let record = r#"/handoff record H-1 decision=new-owner new_owner=ben assumption_broke="x" category=capacity follow_ups="carla 2026-12-04 add a Monday rota""#;
        app.handle("carla", Surface::Slack, cmd(record), monday, None).await.expect("record");
        d.drain(monday).await.expect("deliver");
        let later = monday + Duration::hours(1);
        app.handle("ben", Surface::Slack, cmd("/handoff accept H-1"), later, None).await.expect("accept");
        d.drain(later).await.expect("deliver");
        let carla: Vec<String> = slack.texts("U0CARLA001");
        assert!(carla.iter().any(|t| t.contains("which you watch: Ben Brooks (Slack) accepted it")), "{carla:#?}");
        assert!(carla.iter().all(|t| !t.starts_with("Follow-up due today")), "the reminder waits for its day");
        let due = t("2026-12-04T09:00:00-05:00");
        d.drain(due).await.expect("deliver");
        let reminded = slack.history("U0CARLA001").iter().any(|m| m["text"].as_str().is_some_and(|t| t.starts_with("Follow-up due today")));
        assert!(reminded, "and comes on it");
    })
    .await;
}

/// Ana and Rita leave the operating model (a reload without them): Ana owns H-1, and H-2 was
/// returned to Rita. Each handoff's lead (the receiving lead for an owner, the sending lead for a
/// requester) is told once, however often Baton restarts; nothing is addressed to those who left;
/// the lead's message is answered when they act.
#[tokio::test]
async fn a_lead_hears_once_of_handoffs_that_wait_on_someone_who_left_the_model() {
    on_each_store(|store| async move {
        let (slack, before, _, monday) = acme(store.clone()).await;
        before.handle("ana", Surface::Slack, cmd("/handoff accept H-1"), monday, None).await.expect("accept");
        renewals(&before, 1, monday).await;
        before.handle("ben", Surface::Slack, cmd("/handoff accept H-2"), monday, None).await.expect("accept");
        before
            .handle("ben", Surface::Slack, cmd("/handoff return H-2 no contract"), monday, None)
            .await
            .expect("return");
        // A recalibration gave Ana a follow-up, due on Wednesday.
        before.handle("carla", Surface::Slack, cmd("/recalibrate H-1"), monday, None).await.expect("convene");
        let record = r#"/handoff record H-1 decision=resume assumption_broke="x" category=capacity missing="the contract" follow_ups="ana 2026-12-02 call Acme""#;
        before.handle("carla", Surface::Slack, cmd(record), monday, None).await.expect("record");

        let after = App::new(store.clone(), model_without(&["ana", "rita"]));
        let d = deliverer(&after, &slack);
        let now = monday + Duration::hours(1);
        assert_eq!(store.recheck_departed(&after.model, now).await.expect("recheck"), ["ana", "rita"]);
        after.sweep(now).await.expect("sweep");
        d.drain(now).await.expect("deliver");
        let told = slack.texts("U0CARLA001");
        let about = |t: &&String| t.contains("is owned by ana, who is no longer in the operating model");
        assert_eq!(told.iter().filter(about).count(), 1, "{told:?}");
        assert!(told.iter().find(about).expect("told").starts_with(r#"H-1 "Acme renewal" (sales-to-cs)"#), "{told:?}");
        let returned =
            |t: &&String| t.starts_with(r#"H-2 "Renewal 1" (sales-to-cs) was returned to rita, who is no longer"#);
        assert_eq!(slack.texts("U0SAM00001").iter().filter(returned).count(), 1, "{:?}", slack.texts("U0SAM00001"));

        // Another start (a replica, a restart): checked again, not told again.
        assert_eq!(store.recheck_departed(&after.model, now).await.expect("recheck"), ["ana", "rita"]);
        after.sweep(now + Duration::minutes(1)).await.expect("sweep");
        d.drain(now + Duration::minutes(1)).await.expect("deliver");
        assert_eq!(slack.texts("U0CARLA001").iter().filter(about).count(), 1);
        assert_eq!(slack.texts("U0SAM00001").iter().filter(returned).count(), 1);
        let kinds: Vec<String> =
            after.store.events(1).await.expect("events").iter().map(|e| e.change.kind().to_string()).collect();
        assert_eq!(kinds.iter().filter(|k| *k == "owner_left").count(), 1, "{kinds:?}");

        // The lead gives it to Ben: the message that asked them says so; the one who left hears nothing.
        let later = now + Duration::minutes(5);
        after.handle("carla", Surface::Slack, cmd("/handoff reassign H-1 ben"), later, None).await.expect("reassign");
        d.drain(later).await.expect("deliver");
        let edited = slack.texts("U0CARLA001");
        let answered = edited.iter().find(about).expect("still there, edited");
        assert!(answered.contains("✓ Answered: Carla Costa (Slack) gave it to Ben Brooks"), "{answered}");
        // What was queued for Ana before she left is given up on without troubling the lead...
        assert!(slack.history("U0ANA00001").is_empty());
        let sql = "SELECT COUNT(*), MAX(last_error), MIN(dead_at_ms) FROM outbox WHERE recipient = 'person:ana' AND delivered_at_ms IS NULL";
        let (waiting, why, dead_at) = outbox_row(&after, &sql.replace("delivered_at_ms IS NULL", "dead_at_ms IS NULL")).await;
        assert_eq!((waiting, why, dead_at), (1, None, None), "only her follow-up's reminder waits, for its day");
        let (rows, why, dead_at) = outbox_row(&after, sql).await;
        assert!(rows > 1 && dead_at.is_some(), "her card and notices are dead letters");
        assert_eq!(why.as_deref(), Some("`ana` is not in the operating model (they left it, or it was mistyped)"));
        assert!(!edited.iter().any(|t| t.contains("could not deliver")), "{edited:?}");
        // ...but for the follow-up she was given: on its day her lead hears that nobody will do it.
        d.drain(t("2026-12-02T09:00:00-05:00")).await.expect("deliver");
        d.drain(t("2026-12-02T09:00:01-05:00")).await.expect("deliver the lead's notice");
        let undone: Vec<String> =
            slack.texts("U0CARLA001").into_iter().filter(|t| t.contains("could not deliver")).collect();
        assert_eq!(undone.len(), 1, "{undone:?}");
        assert!(undone[0].contains("to ana: `ana` is not in the operating model"), "{}", undone[0]);
        assert!(undone[0].ends_with("Follow-up due today from the recalibration of H-1: call Acme"), "{}", undone[0]);
        // Sam answers the return in Rita's place: nobody who left is waited on any more.
        after
            .handle("sam", Surface::Slack, cmd("/handoff resubmit H-2 signed copy attached"), later, None)
            .await
            .expect("resubmit");
        assert!(store.recheck_departed(&after.model, later).await.expect("recheck").is_empty());
    })
    .await;
}
