//! Store conformance: the same cases on SQLite and PostgreSQL.

use baton::app::AppError;
use baton::store::{Backend, Kept, StoreError};
use baton_core::{Command, State, Surface};
use chrono::Duration;

use crate::support::{Injected, app, cmd, count, inject_failure, on_each_store, t};

const ACME: &str = r#"/handoff new sales-to-cs "Acme renewal" account=Acme arr=120000 segment=enterprise"#;
const MONDAY_9: &str = "2026-11-30T09:00:00-05:00";

/// Makes every insert into the outbox fail: a real database error in the middle of a transaction.
async fn fail_outbox_inserts(store: &baton::store::Store) -> Injected {
    inject_failure(store, "fail_outbox", "INSERT", "outbox", None).await
}

#[tokio::test]
async fn a_handoff_round_trips_with_its_events_outbox_episodes_and_ladder_steps() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        app.handle("rita", Surface::Console, cmd(ACME), t(MONDAY_9), None).await.expect("create");
        let stored = store.load(1).await.expect("load").expect("exists");
        assert_eq!((stored.handoff.title.as_str(), stored.version), ("Acme renewal", 1));
        assert_eq!(store.earliest_check().await.expect("due"), Some(t("2026-11-30T13:00:00-05:00")));
        assert!(store.due(t("2026-11-30T12:59:00-05:00"), 10).await.expect("due").is_empty());
        assert_eq!(store.due(t("2026-11-30T13:00:00-05:00"), 10).await.expect("due"), [1]);
        assert_eq!(app.sweep(t("2026-11-30T13:00:00-05:00")).await.expect("sweep"), 1);
        assert_eq!(app.sweep(t("2026-11-30T15:00:00-05:00")).await.expect("sweep"), 1);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM ladder_steps WHERE skipped = 0").await, 2);
        let episodes = store.episodes_since(t("2026-11-01T00:00:00Z")).await.expect("episodes");
        assert_eq!(episodes.len(), 1);
        assert_eq!((episodes[0].opened_at, episodes[0].closed_at), (t("2026-11-30T13:00:00-05:00"), None));
        app.handle("ana", Surface::Slack, cmd("/handoff accept H-1"), t("2026-11-30T16:00:00-05:00"), None)
            .await
            .expect("accept");
        let episodes = store.episodes_since(t("2026-11-01T00:00:00Z")).await.expect("episodes");
        assert_eq!(episodes[0].closed_at, Some(t("2026-11-30T16:00:00-05:00")));
        let kinds: Vec<String> =
            store.events(1).await.expect("events").iter().map(|e| e.change.kind().to_string()).collect();
        assert_eq!(kinds, ["created", "stall_opened", "ladder_step", "ladder_step", "stall_closed", "accepted"]);
        let surfaces: Vec<Surface> = store.events(1).await.expect("events").iter().map(|e| e.surface).collect();
        assert_eq!(surfaces.last(), Some(&Surface::Slack));
        // Card, queue reminders (3), the card redrawn as it stalls, lead notice, acceptance notice,
        // new card in the channel and to the new owner, and the three reminded told it is answered.
        let pending = store.pending_outbox(t("2026-12-01T00:00:00Z"), 100).await.expect("outbox");
        assert_eq!(pending.len(), 12);
        let card = &pending[0].intent;
        assert_eq!(card.kind, baton_core::IntentKind::Card);
        store
            .mark_delivered(
                &[pending[0].id],
                t("2026-12-01T00:00:00Z"),
                Some("C1:1700000000.000100"),
                Some(Kept::Card(1, &card.to)),
            )
            .await
            .expect("mark");
        assert_eq!(store.message_ref(1, &card.to).await.expect("ref").as_deref(), Some("C1:1700000000.000100"));
        store.mark_retry(&[pending[1].id], "HTTP 500", t("2026-12-01T01:00:00Z"), true).await.expect("mark");
        assert_eq!(store.pending_outbox(t("2026-12-01T00:00:00Z"), 100).await.expect("outbox").len(), 10);
        assert_eq!(store.pending_outbox(t("2026-12-01T01:00:00Z"), 100).await.expect("outbox").len(), 11);
        assert_eq!(store.outbox_depth().await.expect("depth"), 11);
    })
    .await;
}

#[tokio::test]
async fn two_concurrent_commands_on_one_handoff_cannot_both_win() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        app.handle("rita", Surface::Console, cmd(ACME), t(MONDAY_9), None).await.expect("create");
        for round in 0..5 {
            let now = t(MONDAY_9) + Duration::minutes(round);
            let (a, b) = tokio::join!(
                app.handle("ana", Surface::Slack, cmd("/handoff accept H-1"), now, None),
                app.handle("ben", Surface::Slack, cmd("/handoff accept H-1"), now, None),
            );
            assert!(a.is_ok() != b.is_ok(), "exactly one accept wins: {a:?} / {b:?}");
            let loser = if a.is_ok() { b } else { a };
            assert!(matches!(loser, Err(AppError::Rejected(_))), "the loser is told why: {loser:?}");
            assert_eq!(count(&store, "SELECT COUNT(*) FROM events WHERE kind = 'accepted'").await, 1);
            // Give it back to the queue for the next round.
            let owner = store.load(1).await.expect("load").expect("exists").handoff.owner.expect("owner");
            let reassigned = if owner == "ana" { "ben" } else { "ana" };
            app.handle("carla", Surface::Console, cmd(&format!("/handoff reassign H-1 {reassigned}")), now, None)
                .await
                .expect("reassign");
            sqlx::query("DELETE FROM events WHERE kind = 'accepted'").execute(store.pool()).await.expect("reset");
            let mut h = store.load(1).await.expect("load").expect("exists");
            h.handoff.state = State::Open;
            h.handoff.owner = None;
            let d = baton_core::Decision {
                handoff: h.handoff,
                events: vec![],
                intents: vec![],
                episodes: vec![],
                fired: vec![],
                next_check: None,
                open_key: None,
                claims_key: false,
                review: None,
                artifacts: vec![],
                follow_ups: vec![],
                tallies: vec![],
                reply: String::new(),
            };
            store.save(&d, Some(h.version), None).await.expect("reopen");
        }
    })
    .await;
}

#[tokio::test]
async fn a_failure_in_the_middle_of_a_command_leaves_no_partial_state() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        app.handle("rita", Surface::Console, cmd(ACME), t(MONDAY_9), None).await.expect("create");
        let before = store.load(1).await.expect("load").expect("exists");
        let (events, outbox) =
            (count(&store, "SELECT COUNT(*) FROM events").await, count(&store, "SELECT COUNT(*) FROM outbox").await);
        // A real database failure after the handoff row and events are written: the outbox refuses inserts.
        fail_outbox_inserts(&store).await;
        let err = app.handle("ana", Surface::Console, cmd("/handoff accept H-1"), t(MONDAY_9), None).await;
        assert!(
            matches!(err, Err(AppError::Internal(ref e)) if format!("{e:#}").contains("injected failure")),
            "{err:?}"
        );
        let after = store.load(1).await.expect("load").expect("exists");
        assert_eq!(after.version, before.version);
        assert_eq!(after.handoff, before.handoff);
        assert_eq!(after.handoff.state, State::Open);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM events").await, events);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM outbox").await, outbox);
    })
    .await;
}

#[tokio::test]
async fn a_replayed_request_acts_once() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        app.handle("rita", Surface::Console, cmd(ACME), t(MONDAY_9), Some("create-1")).await.expect("create");
        let again = app.handle("rita", Surface::Console, cmd(ACME), t(MONDAY_9), Some("create-1")).await;
        assert!(matches!(again, Err(AppError::Duplicate)), "{again:?}");
        app.handle("ana", Surface::Slack, cmd("/handoff accept H-1"), t(MONDAY_9), Some("click-1"))
            .await
            .expect("accept");
        let again = app.handle("ana", Surface::Slack, cmd("/handoff accept H-1"), t(MONDAY_9), Some("click-1")).await;
        assert!(matches!(again, Err(AppError::Duplicate)), "{again:?}");
        assert_eq!(count(&store, "SELECT COUNT(*) FROM handoffs").await, 1);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM events WHERE kind = 'accepted'").await, 1);
    })
    .await;
}

#[tokio::test]
async fn a_ladder_step_is_saved_once_per_episode_even_from_a_stale_decision() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        let model = crate::support::model();
        app.handle("rita", Surface::Console, cmd(ACME), t(MONDAY_9), None).await.expect("create");
        let stored = store.load(1).await.expect("load").expect("exists");
        let d = baton_core::check(&model, &stored.handoff, t("2026-11-30T13:00:00-05:00")).expect("check");
        assert_eq!(d.fired.len(), 1);
        store.save(&d, Some(stored.version), None).await.expect("first save");
        // The same decision again, as a second replica would produce it: refused by version...
        assert!(matches!(store.save(&d, Some(stored.version), None).await, Err(StoreError::Conflict)));
        // ...and by the step's unique key even when the version check is passed.
        let current = store.load(1).await.expect("load").expect("exists").version;
        assert!(matches!(store.save(&d, Some(current), None).await, Err(StoreError::Conflict)));
        assert_eq!(count(&store, "SELECT COUNT(*) FROM ladder_steps").await, 1);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM events WHERE kind = 'ladder_step'").await, 1);
    })
    .await;
}

#[tokio::test]
async fn handoff_numbers_have_no_gaps_from_refused_creations_and_lists_answer_per_person() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        let bad =
            app.handle("rita", Surface::Console, cmd("/handoff new sales-to-cs x arr=1"), t(MONDAY_9), None).await;
        assert!(matches!(bad, Err(AppError::Rejected(_))));
        let reply = app.handle("rita", Surface::Console, cmd(ACME), t(MONDAY_9), None).await.expect("create");
        assert!(reply.starts_with("H-1 "), "{reply}");
        let mine = |who: &'static str| {
            let app = app.clone();
            async move { app.handle(who, Surface::Console, Command::Mine, t(MONDAY_9), None).await.expect("mine") }
        };
        // Unaccepted, it is in the queue of every member of the receiving function.
        let queue = mine("ben").await;
        assert!(queue.starts_with("In your team's queue"), "{queue}");
        assert!(queue.contains("• H-1 · Acme renewal · Customer Success · Due for acceptance by"), "{queue}");
        app.handle("ana", Surface::Console, cmd("/handoff accept H-1"), t(MONDAY_9), None).await.expect("accept");
        let own = mine("ana").await;
        assert!(own.contains("• H-1 · Acme renewal · accepted · you are owner · Due for next update"), "{own}");
        assert!(mine("rita").await.contains("you are requester"));
        assert!(mine("ben").await.contains("no open handoffs"), "accepted: out of the queue");
        // Returned, it says whose move it is.
        app.handle("ana", Surface::Console, cmd("/handoff return H-1 which contract?"), t(MONDAY_9), None)
            .await
            .expect("return");
        let theirs = mine("rita").await;
        assert!(
            theirs.contains(
                "• H-1 · Acme renewal · returned · you are requester · waiting on you: `/handoff resubmit H-1 …`"
            ),
            "{theirs}"
        );
        app.handle("rita", Surface::Console, cmd("/handoff resubmit H-1 contract attached"), t(MONDAY_9), None)
            .await
            .expect("resubmit");
        // At the gate (high-stakes: two of sam, carla and vic), it waits on each approver in turn.
        app.handle("ana", Surface::Console, cmd("/handoff done H-1"), t(MONDAY_9), None).await.expect("done");
        let approver = mine("sam").await;
        assert!(approver.starts_with("Waiting for your approval"), "{approver}");
        assert!(approver.contains("• H-1 · Acme renewal · 0 of 2 approvals"), "{approver}");
        app.handle("sam", Surface::Console, cmd("/approve H-1"), t(MONDAY_9), None).await.expect("approve");
        assert!(mine("sam").await.contains("no open handoffs"), "approved once: no longer waits on sam");
        assert!(mine("carla").await.contains("• H-1 · Acme renewal · 1 of 2 approvals"));
        assert!(!mine("ana").await.contains("Waiting for your approval"), "the owner cannot approve");
        let missing = app.handle("ben", Surface::Console, cmd("/handoff show H-9"), t(MONDAY_9), None).await;
        assert!(matches!(missing, Err(AppError::Rejected(ref r)) if r.to_string() == "there is no handoff H-9"));
    })
    .await;
}

/// Holds the database's write path: PostgreSQL's `handoffs` table, or SQLite's write lock.
async fn block_writes(store: &baton::store::Store) -> sqlx::Transaction<'static, sqlx::Any> {
    match store.backend() {
        Backend::Postgres => {
            let mut tx = store.pool().begin().await.expect("begin");
            sqlx::query("LOCK TABLE handoffs IN EXCLUSIVE MODE").execute(&mut *tx).await.expect("lock");
            tx
        }
        Backend::Sqlite => store.pool().begin_with("BEGIN IMMEDIATE").await.expect("begin immediate"),
    }
}

/// Starts `/handoff new … "<title>"` for each `(title, key)` at once, while the database's write
/// path is held, so that they queue; lets go once all have arrived, and returns the outcomes.
async fn create_together(
    app: &baton::app::App,
    requests: &[(String, Option<String>)],
) -> Vec<Result<String, AppError>> {
    let store = &app.store;
    let blocker = block_writes(store).await;
    let before = store.creation_stats();
    let tasks: Vec<_> = requests
        .iter()
        .map(|(title, key)| {
            let (app, title, key) = (app.clone(), title.clone(), key.clone());
            tokio::spawn(async move {
                let line = format!(r#"/handoff new sales-to-cs "{title}" account="{title}" arr=1 segment=smb"#);
                app.handle("rita", Surface::Slack, cmd(&line), t(MONDAY_9), key.as_deref()).await
            })
        })
        .collect();
    let all = requests.len() as u64;
    crate::support::eventually(10, "every creation queued or in flight", || async {
        let now = store.creation_stats();
        now.creations - before.creations + now.queued as u64 == all
    })
    .await;
    blocker.rollback().await.expect("release");
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("creation task"));
    }
    outcomes
}

#[tokio::test]
async fn creations_arriving_together_share_transactions_and_each_gets_its_own_number_and_answer() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        // 24 distinct requests, a second copy of two of them (a Slack retry racing the first), and
        // two without a request key (as from the console).
        let mut requests: Vec<(String, Option<String>)> =
            (1..=24).map(|i| (format!("Deal {i}"), Some(format!("key-{i}")))).collect();
        requests.push(("Deal 5".into(), Some("key-5".into())));
        requests.push(("Deal 17".into(), Some("key-17".into())));
        requests.push(("Deal 25".into(), None));
        requests.push(("Deal 26".into(), None));
        let outcomes = create_together(&app, &requests).await;

        let stats = store.creation_stats();
        assert_eq!((stats.creations, stats.queued), (28, 0), "{stats:?}");
        assert!(stats.transactions <= 6, "28 creations arriving together took {} transactions", stats.transactions);
        for i in 1..=26 {
            let title = format!("Deal {i}");
            let answers: Vec<_> =
                requests.iter().zip(&outcomes).filter(|((t, _), _)| *t == title).map(|(_, o)| o).collect();
            let created: Vec<&String> = answers.iter().filter_map(|o| o.as_ref().ok()).collect();
            assert_eq!(created.len(), 1, "{title}: {answers:?}");
            assert!(answers.iter().all(|o| o.is_ok() || matches!(o, Err(AppError::Duplicate))), "{title}: {answers:?}");
            // The answer names the number this very request's handoff got.
            let number: u64 = created[0]
                .split("H-")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no handoff number in {:?}", created[0]));
            let stored = store.load(number).await.expect("load").expect("exists");
            assert_eq!(stored.handoff.title, title, "{title} answered H-{number}");
        }
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM handoffs ORDER BY id").fetch_all(store.pool()).await.expect("ids");
        assert_eq!(ids, (1..=26).collect::<Vec<i64>>(), "numbers are taken without gaps");
        assert_eq!(count(&store, "SELECT COUNT(*) FROM processed_requests").await, 24);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM events WHERE kind = 'created'").await, 26);
        assert_eq!(count(&store, "SELECT COUNT(DISTINCT handoff_id) FROM outbox").await, 26);
        // Each handoff's messages are the same as one created alone would have.
        let alone = app.handle("rita", Surface::Slack, cmd(ACME), t(MONDAY_9), Some("alone")).await.expect("create");
        assert!(alone.contains("H-27"), "{alone}");
        let per_handoff: Vec<i64> =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox GROUP BY handoff_id ORDER BY handoff_id")
                .fetch_all(store.pool())
                .await
                .expect("outbox");
        assert!(per_handoff.iter().all(|n| *n == per_handoff[26]), "{per_handoff:?}");
    })
    .await;
}

#[tokio::test]
async fn a_failed_shared_transaction_fails_each_of_its_creations_and_leaves_their_keys_unused() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        let failing = fail_outbox_inserts(&store).await;
        let requests: Vec<(String, Option<String>)> =
            (1..=8).map(|i| (format!("Deal {i}"), Some(format!("key-{i}")))).collect();
        for outcome in create_together(&app, &requests).await {
            assert!(
                matches!(outcome, Err(AppError::Internal(ref e)) if format!("{e:#}").contains("injected failure")),
                "{outcome:?}"
            );
        }
        assert!(store.creation_stats().transactions < 8, "{:?}", store.creation_stats());
        for table in ["handoffs", "events", "outbox", "processed_requests"] {
            assert_eq!(count(&store, &format!("SELECT COUNT(*) FROM {table}")).await, 0, "{table}");
        }
        // Nothing was recorded, so the platform's retries of the same requests create them now.
        failing.heal(&store).await;
        for outcome in create_together(&app, &requests).await {
            assert!(outcome.is_ok(), "{outcome:?}");
        }
        assert_eq!(count(&store, "SELECT COUNT(*) FROM handoffs").await, 8);
    })
    .await;
}

/// On PostgreSQL a delivery record does not wait for the disk: a database crash that loses it
/// leaves the message claimed and undelivered, so it comes back in doubt and is found on the
/// platform instead of being posted again. A handoff's creation, its card included, waits, and
/// the setting never outlives the record's transaction (a pooler could carry it to other work).
#[tokio::test]
async fn on_postgres_a_delivery_record_commits_without_waiting_for_the_disk_and_a_creation_waits() {
    let Some(store) = crate::support::postgres().await else { return };
    sqlx::raw_sql(
        "CREATE TABLE commit_modes (what TEXT NOT NULL, mode TEXT NOT NULL);
         CREATE FUNCTION note_commit_mode() RETURNS trigger AS $$ BEGIN
             INSERT INTO commit_modes VALUES (TG_OP, current_setting('synchronous_commit')); RETURN NEW;
         END $$ LANGUAGE plpgsql;
         CREATE TRIGGER note_commit_mode AFTER INSERT OR UPDATE OF delivered_at_ms ON outbox
             FOR EACH ROW EXECUTE FUNCTION note_commit_mode();",
    )
    .execute(store.pool())
    .await
    .expect("trigger");
    let app = app(store.clone());
    app.handle("rita", Surface::Slack, cmd(ACME), t(MONDAY_9), None).await.expect("create");
    let card = store.pending_outbox(t(MONDAY_9), 10).await.expect("outbox").remove(0);
    store
        .mark_delivered(&[card.id], t(MONDAY_9), Some("C1:1.1"), Some(Kept::Card(1, &card.intent.to)))
        .await
        .expect("card");
    let notice = baton_core::Intent { kind: baton_core::IntentKind::Notice, ..card.intent.clone() };
    store.enqueue_once("notice-1", &notice, t(MONDAY_9)).await.expect("enqueue");
    let notice = store.pending_outbox(t(MONDAY_9), 10).await.expect("outbox").remove(0);
    store.mark_delivered(&[notice.id], t(MONDAY_9), Some("C1:1.2"), None).await.expect("notice");
    let modes: Vec<(String, String)> =
        sqlx::query_as("SELECT what, mode FROM commit_modes").fetch_all(store.pool()).await.expect("modes");
    let want = |what: &str, mode: &str| (what.to_string(), mode.to_string());
    assert_eq!(
        modes,
        [want("INSERT", "on"), want("UPDATE", "off"), want("INSERT", "on"), want("UPDATE", "off")],
        "creation and enqueueing wait for the disk; delivery records (card and not) do not"
    );
    // The setting lasts only for the record's own transaction: no pooled connection keeps it.
    let mut held = Vec::new();
    while held.len() < store.pool().size() as usize {
        held.push(store.pool().acquire().await.expect("connection"));
    }
    for conn in &mut held {
        let mode: String = sqlx::query_scalar("SELECT current_setting('synchronous_commit')")
            .fetch_one(&mut **conn)
            .await
            .expect("mode");
        assert_eq!(mode, "on", "a pooled connection kept the record's setting");
    }
}

/// Counts the outbox messages to `person` whose intent holds `like`.
fn to_person(person: &str, like: &str) -> String {
    format!("SELECT COUNT(*) FROM outbox WHERE recipient = 'person:{person}' AND intent LIKE '%{like}%'")
}

/// Rita hands Acme off on Monday 09:00 and Ana accepts it.
async fn acme_accepted_by_ana(app: &baton::app::App) {
    app.handle("rita", Surface::Console, cmd(ACME), t(MONDAY_9), None).await.expect("create");
    app.handle("ana", Surface::Console, cmd("/handoff accept H-1"), t(MONDAY_9), None).await.expect("accept");
}

#[tokio::test]
async fn someone_away_is_passed_over_by_the_sweep_and_their_lead_told_once() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        acme_accepted_by_ana(&app).await;
        let away = cmd("/away until 2026-12-04 holiday");
        let reply = app.handle("ana", Surface::Slack, away.clone(), t(MONDAY_9), Some("away-1")).await.expect("away");
        assert!(reply.contains("You own H-1; Carla Costa was told."), "{reply}");
        // Told once, in the transaction that marked her away; a replay acts no more.
        let again = app.handle("ana", Surface::Slack, away, t(MONDAY_9), Some("away-1")).await;
        assert!(matches!(again, Err(AppError::Duplicate)), "{again:?}");
        assert_eq!(count(&store, &to_person("carla", "Ana Alves is away through Fri 04 Dec (holiday) and owns H-1")).await, 1);
        // Her first update was due Monday 17:00: the reminder goes to Carla, who can reassign it.
        app.sweep(t("2026-12-01T09:00:00-05:00")).await.expect("sweep");
        assert_eq!(count(&store, &to_person("carla", "Its owner, Ana Alves, is away through Fri 04 Dec")).await, 1);
        assert_eq!(count(&store, &to_person("ana", "Reminder")).await, 0);
        let shown = app.handle("ana", Surface::Console, Command::Mine, t(MONDAY_9), None).await.expect("mine");
        assert!(shown.starts_with("You are away through Fri 04 Dec"), "{shown}");
        // Her lead's plate shows what she left behind, until it is reassigned.
        let lead = app.handle("carla", Surface::Console, Command::Mine, t(MONDAY_9), None).await.expect("mine");
        assert!(lead.contains("Owned by people away or gone (`/handoff reassign H-<n> <person>`, or all of someone's: `/handoff reassign-all <from> <to>`):\n• H-1 · Acme renewal · Ana Alves away through Fri 04 Dec"), "{lead}");
        // Stalled since Monday 17:00 (no update), it is also among what is stalled in her function.
        assert!(lead.contains("Stalled in the functions you lead:\n• H-1 · Acme renewal · owner Ana Alves · STALLED: no progress update in time since Mon 30 Nov 17:00 EST"), "{lead}");
        // The health report counts a handoff owned by someone away as only partly owned.
        let health = app.handle("ada", Surface::Console, cmd("/stalls health"), t(MONDAY_9), None).await.expect("health");
        assert!(health.contains("4. Is every seam explicit and owned? ◐ partly"), "{health}");
        assert!(
            health.contains("owned by people away, until they are back or a lead reassigns: Ana Alves, away through Fri 04 Dec (1)"),
            "{health}"
        );
        // Working while marked away, she is reminded how to say she is back.
        let update = cmd("/handoff update H-1 back early");
        let reply = app.handle("ana", Surface::Console, update, t(MONDAY_9), None).await.expect("update");
        assert!(
            reply.ends_with(
                "You are marked away through Fri 04 Dec (your stall reminders go to others): `/away back` if you are back."
            ),
            "{reply}"
        );
        let back = app.handle("ana", Surface::Console, cmd("/away back"), t(MONDAY_9), None).await.expect("back");
        assert_eq!(back, "Welcome back: stall reminders come to you again.");
        let update = cmd("/handoff update H-1 all set");
        let reply = app.handle("ana", Surface::Console, update, t(MONDAY_9), None).await.expect("update");
        assert!(!reply.contains("marked away"), "{reply}");
        assert_eq!(count(&store, "SELECT COUNT(*) FROM absences").await, 0);
    })
    .await;
}

#[tokio::test]
async fn a_lead_away_names_a_cover_who_gets_the_leads_step_and_may_act_as_lead() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        acme_accepted_by_ana(&app).await;
        app.handle("ana", Surface::Console, cmd("/ack H-1"), t(MONDAY_9), None).await.expect("ack");
        // Before Carla names him, Ben may not act as lead.
        let snooze = cmd("/snooze H-1 2h waiting on legal");
        let refused = app.handle("ben", Surface::Console, snooze.clone(), t(MONDAY_9), None).await;
        assert!(matches!(refused, Err(AppError::Rejected(_))), "{refused:?}");
        let away = cmd("/away until 2026-12-04 cover=ben holiday");
        let reply = app.handle("carla", Surface::Slack, away.clone(), t(MONDAY_9), Some("away-c")).await.expect("away");
        assert!(reply.contains("Ben Brooks covers for you as lead (they were told)"), "{reply}");
        let again = app.handle("carla", Surface::Slack, away, t(MONDAY_9), Some("away-c")).await;
        assert!(matches!(again, Err(AppError::Duplicate)), "{again:?}");
        assert_eq!(count(&store, &to_person("ben", "asked you to cover as lead of Customer Success")).await, 1);
        let shown = app.handle("carla", Surface::Console, cmd("/away"), t(MONDAY_9), None).await.expect("show");
        assert!(
            shown.ends_with("(holiday); Ben Brooks covers for you as lead. `/away back` when you return."),
            "{shown}"
        );
        // Ana's update was due Monday 17:00; the lead's step, two hours on, goes to Ben.
        app.sweep(t("2026-11-30T17:00:00-05:00")).await.expect("sweep");
        app.sweep(t("2026-12-01T11:00:00-05:00")).await.expect("sweep");
        assert_eq!(
            count(&store, &to_person("ben", "For your attention covering for Carla Costa as lead of Customer Success"))
                .await,
            1
        );
        assert_eq!(count(&store, &to_person("carla", "For your attention")).await, 0);
        let plate = app.handle("ben", Surface::Console, Command::Mine, t(MONDAY_9), None).await.expect("mine");
        assert!(
            plate.starts_with("You cover for Carla Costa as lead of Customer Success through Fri 04 Dec."),
            "{plate}"
        );
        // Ben may now do what the lead may; the audit trail names him.
        let at = t("2026-12-01T11:05:00-05:00");
        let done = app.handle("ben", Surface::Console, snooze.clone(), at, None).await.expect("snooze as cover");
        assert!(done.starts_with("H-1 snoozed until"), "{done}");
        let actor: String = sqlx::query_scalar("SELECT actor FROM events WHERE kind = 'snoozed'")
            .fetch_one(store.pool())
            .await
            .expect("event");
        assert_eq!(actor, "ben");
        // The health report counts a lead away as covered.
        let health = app.handle("ada", Surface::Console, cmd("/stalls health"), at, None).await.expect("health");
        assert!(!health.contains("leads away with nobody covering"), "{health}");
        // Once she is back, he may not.
        app.handle("carla", Surface::Console, cmd("/away back"), at, None).await.expect("back");
        assert_eq!(
            count(&store, &to_person("ben", "Carla Costa is back: you no longer cover for them as lead.")).await,
            1
        );
        let refused = app.handle("ben", Surface::Console, cmd("/handoff reassign H-1 ben"), at, None).await;
        assert!(matches!(refused, Err(AppError::Rejected(_))), "{refused:?}");
        // Away again with nobody covering: her function's ownership is only partly answered for.
        app.handle("carla", Surface::Console, cmd("/away until 2026-12-04"), at, None).await.expect("away");
        let health = app.handle("ada", Surface::Console, cmd("/stalls health"), at, None).await.expect("health");
        assert!(health.contains("4. Is every seam explicit and owned? ◐ partly"), "{health}");
        assert!(health.contains("reaches nobody present"), "{health}");
        assert!(health.contains("Carla Costa (Customer Success), away through Fri 04 Dec"), "{health}");
    })
    .await;
}

#[tokio::test]
async fn the_team_board_reads_a_functions_open_handoffs_from_the_store() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        let run = |actor: &'static str, line: &'static str| {
            let app = app.clone();
            async move { app.handle(actor, Surface::Console, cmd(line), t(MONDAY_9), None).await }
        };
        run("rita", ACME).await.expect("create");
        run("rita", r#"/handoff new sales-to-cs "Beta" account=Beta arr=1 segment=smb"#).await.expect("create");
        run("rita", r#"/handoff new sales-to-cs "Gamma" account=Gamma arr=1 segment=smb"#).await.expect("create");
        run("ana", "/handoff accept H-1").await.expect("accept");
        run("ana", "/handoff return H-3 which contract?").await.expect("return");
        run("rita", r#"/handoff new sales-to-cs "Delta" account=Delta arr=1 segment=smb"#).await.expect("create");
        run("rita", "/handoff cancel H-4 duplicate").await.expect("cancel");
        let board = run("carla", "/handoff team").await.expect("team");
        let at = |s: &str| board.find(s).unwrap_or_else(|| panic!("{s} in {board}"));
        assert!(board.starts_with("Customer Success: 3 open handoffs received, 0 sent (lead Carla Costa)."), "{board}");
        assert!(at("Waiting to be accepted (1") < at("• H-2 · Beta") && at("• H-2") < at("Under way (1):"), "{board}");
        assert!(at("Under way (1):") < at("• H-1 · Acme renewal · from Sales · Ana Alves"), "{board}");
        assert!(
            board.ends_with("Back with the requester (1):\n• H-3 · Gamma · from Sales · with Rita Reyes"),
            "{board}"
        );
        assert!(!board.contains("H-4"), "cancelled work is not on the board: {board}");
        let sent = run("rita", "/handoff team").await.expect("team");
        assert!(sent.contains("Sent by Sales, still open (3):"), "{sent}");
        let refused = run("rita", "/handoff team engineering").await;
        assert!(matches!(refused, Err(AppError::Rejected(_))), "{refused:?}");
        // Finding by the words in a title or field, among what one may see; closed work comes after.
        let found = run("carla", "/handoff find GAMMA").await.expect("find");
        assert_eq!(
            found,
            "Open handoffs holding \"GAMMA\" (1):\n• H-3 · Gamma · Sales → Customer Success · returned · with Rita Reyes"
        );
        let found = run("rita", "/handoff find a").await.expect("find");
        assert!(found.starts_with("Open handoffs holding \"a\" (3):\n• H-3 · Gamma"), "newest first: {found}");
        assert_eq!(
            run("rita", "/handoff find delta").await.expect("find"),
            "No open handoff holds \"delta\".\nClosed, newest first:\n\
             • H-4 · Delta · Sales → Customer Success · cancelled Mon 30 Nov 09:00 EST"
        );
        assert!(run("eli", "/handoff find gamma").await.expect("find").starts_with("No handoff you can see"));
    })
    .await;
}

/// `/handoff find` shows the latest closed handoffs after the open ones, found however the words
/// are written (a label, any case, letters beyond ASCII), and reads older ones page by page.
#[tokio::test]
async fn find_shows_the_latest_closed_handoffs_after_the_open_ones() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        let run = |actor: &'static str, line: String| {
            let app = app.clone();
            async move { app.handle(actor, Surface::Console, cmd(&line), t(MONDAY_9), None).await }
        };
        let hand =
            |n: u32, title: &str| format!(r#"/handoff new sales-to-cs "{title}" account=Account{n} arr=1 segment=smb"#);
        // The oldest is the only one whose title or fields hold "segment" (the others have it only
        // as a field's name), behind more closed handoffs than one page of candidates.
        run("rita", hand(0, "Segment review Müller")).await.expect("create");
        run("rita", "/handoff cancel H-1 merged".into()).await.expect("cancel");
        for n in 1..=205 {
            run("rita", hand(n, &format!("Renewal {n}"))).await.expect("create");
            run("rita", format!("/handoff cancel H-{} merged", n + 1)).await.expect("cancel");
        }
        run("rita", hand(300, "Renewal open")).await.expect("create");
        let found = run("rita", "/handoff find SEGMENT".into()).await.expect("find");
        assert_eq!(
            found,
            "No open handoff holds \"SEGMENT\".\nClosed, newest first:\n\
             • H-1 · Segment review Müller · Sales → Customer Success · cancelled Mon 30 Nov 09:00 EST"
        );
        assert!(run("rita", "/handoff find MÜLLER".into()).await.expect("find").contains("• H-1 · Segment"));
        assert!(run("rita", "/handoff find h-1".into()).await.expect("find").contains("• H-1 · Segment"));
        let renewals = run("rita", "/handoff find renewal".into()).await.expect("find");
        let lines: Vec<&str> = renewals.lines().collect();
        assert_eq!(
            lines[..3],
            [
                "Open handoffs holding \"renewal\" (1):",
                "• H-207 · Renewal open · Sales → Customer Success · open · queue of Customer Success",
                "Closed, newest first:"
            ]
        );
        let closed: Vec<&str> = lines[3..8].iter().map(|l| l.split(" · ").next().unwrap_or_default()).collect();
        assert_eq!(closed, ["• H-206", "• H-205", "• H-204", "• H-203", "• H-202"], "{renewals}");
        assert_eq!(lines[8..], ["… and older ones: add a word to narrow it"]);
        // Wildcards typed are letters: nothing holds "renewal_%".
        assert!(
            run("rita", "/handoff find renewal_%".into()).await.expect("find").starts_with("No handoff you can see")
        );
    })
    .await;
}

#[tokio::test]
async fn a_watcher_sees_what_they_watch_on_their_plate_and_is_told_as_it_moves() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        let run = |who: &'static str, line: &'static str| {
            let app = app.clone();
            async move { app.handle(who, Surface::Slack, cmd(line), t(MONDAY_9), Some(&format!("{who}:{line}"))).await }
        };
        run("rita", ACME).await.expect("create");
        run("sam", "/handoff watch H-1").await.expect("watch");
        // Replayed, the request acts once.
        assert!(matches!(run("sam", "/handoff watch H-1").await, Err(AppError::Duplicate)));
        assert_eq!(count(&store, "SELECT COUNT(*) FROM watchers WHERE person = 'sam'").await, 1);
        let plate = run("sam", "/handoff mine").await.expect("mine");
        assert!(
            plate.contains("You watch (`/handoff unwatch H-<n>` to stop):\n• H-1 · Acme renewal · open · in the queue"),
            "{plate}"
        );
        run("ana", "/handoff accept H-1").await.expect("accept");
        assert_eq!(count(&store, &to_person("sam", "which you watch: Ana Alves (Slack) accepted it")).await, 1);
        let plate = run("sam", "/handoff mine").await.expect("mine");
        assert!(plate.contains("• H-1 · Acme renewal · accepted · owner Ana Alves"), "{plate}");
        run("sam", "/handoff unwatch H-1").await.expect("unwatch");
        assert_eq!(count(&store, "SELECT COUNT(*) FROM watchers").await, 0);
        assert!(!run("sam", "/handoff mine").await.expect("mine").contains("You watch"));
        run("ana", "/handoff update H-1 kickoff-booked").await.expect("update");
        assert_eq!(count(&store, &to_person("sam", "which you watch")).await, 1, "no longer told");
    })
    .await;
}

#[tokio::test]
async fn a_lead_gives_everything_one_person_owns_to_another_once_even_when_replayed() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        let run = |who: &'static str, line: &'static str, key: &'static str| {
            let app = app.clone();
            async move { app.handle(who, Surface::Slack, cmd(line), t(MONDAY_9), Some(key)).await }
        };
        for n in 1..=2 {
            let globex = r#"/handoff new sales-to-cs "Globex renewal" account=Globex arr=90000 segment=smb"#;
            let (line, key) = if n == 1 { (ACME, "new-1") } else { (globex, "new-2") };
            run("rita", line, key).await.expect("create");
            let accept = if n == 1 { "/handoff accept H-1" } else { "/handoff accept H-2" };
            run("ana", accept, if n == 1 { "acc-1" } else { "acc-2" }).await.expect("accept");
        }
        // Only a lead (or the owner) may: Rita moves nothing, and is told why for each.
        let Err(AppError::Rejected(refused)) = run("rita", "/handoff reassign-all ana ben", "rita-all").await else {
            panic!("refused");
        };
        assert_eq!(
            refused.to_string(),
            "nothing to change: none of Ana Alves's handoffs moved (H-1, H-2: only its owner, Ana Alves, or Carla \
             Costa (lead of Customer Success) can reassign it)",
        );
        // Carla's request, delivered twice at once (a retry racing the first): each handoff moves once.
        let (a, b) = tokio::join!(
            run("carla", "/handoff reassign-all @ana @ben", "carla-all"),
            run("carla", "/handoff reassign-all @ana @ben", "carla-all")
        );
        let all = "Gave Ben Brooks the 2 handoffs Ana Alves owned: H-1, H-2; each waits for Ben Brooks to accept it.";
        assert!([&a, &b].iter().any(|r| r.as_deref().ok() == Some(all)), "{a:?} {b:?}");
        for id in [1, 2] {
            let h = store.load(id).await.expect("load").expect("exists").handoff;
            assert_eq!((h.owner.as_deref(), h.state), (Some("ben"), State::Reassigned));
        }
        assert_eq!(count(&store, "SELECT COUNT(*) FROM events WHERE kind = 'reassigned'").await, 2);
        assert_eq!(count(&store, &to_person("ana", "it is no longer yours")).await, 2);
        let Err(AppError::Rejected(none)) = run("carla", "/handoff reassign-all ana ben", "carla-again").await else {
            panic!("nothing left");
        };
        assert_eq!(none.to_string(), "nothing to change: Ana Alves owns no open handoffs");
        let one = run("carla", "/handoff reassign-all ben ana", "carla-back").await.expect("moved back");
        assert!(one.starts_with("Gave Ana Alves the 2 handoffs Ben Brooks owned"), "{one}");
        run("carla", "/handoff reassign H-2 carla", "carla-h2").await.expect("reassign");
        let one = run("carla", "/handoff reassign-all ana ben", "carla-one").await.expect("moved");
        assert_eq!(one, "Gave Ben Brooks the handoff Ana Alves owned: H-1; it waits for Ben Brooks to accept it.");
        let Err(AppError::Rejected(typo)) = run("carla", "/handoff reassign-all anna ben", "carla-typo").await else {
            panic!("refused");
        };
        assert_eq!(
            typo.to_string(),
            "nothing to change: `anna`, who is not in the operating model, owns no open handoffs"
        );
    })
    .await;
}

#[tokio::test]
async fn a_thread_is_found_by_its_parent_message_under_its_kind_of_key() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        app.handle("rita", Surface::Console, cmd(ACME), t(MONDAY_9), None).await.expect("create");
        store.set_ref(1, "slack-thread:#cs-handoffs", "1700000000.000100", t(MONDAY_9)).await.expect("ref");
        store.set_ref(1, "person:ana", "D1:1700000000.000200", t(MONDAY_9)).await.expect("ref");
        assert_eq!(store.handoff_by_ref("slack-thread:", "1700000000.000100").await.expect("find"), Some(1));
        assert_eq!(store.handoff_by_ref("slack-thread:", "D1:1700000000.000200").await.expect("find"), None);
        assert_eq!(store.handoff_by_ref("slack-thread:", "1700000000.999999").await.expect("find"), None);
    })
    .await;
}

/// `/metrics`' overdue figure counts only messages whose time has come: one held for its
/// recipient's working hours is waiting, not late, however old; one due and not sent is late from
/// when it fell due, and stops counting once sent.
#[tokio::test]
async fn the_outbox_is_overdue_only_by_messages_whose_time_has_come() {
    on_each_store(|store| async move {
        let to = baton_core::Recipient::Person("ana".into());
        let night = baton_core::Intent {
            not_before: Some(t("2026-12-01T09:00:00-05:00")),
            ..baton_core::Intent::message(to.clone(), baton_core::IntentKind::Notice, "tomorrow".into())
        };
        store.enqueue_once("night", &night, t("2026-11-30T20:00:00-05:00")).await.expect("enqueue");
        let snap = store.metrics_snapshot(t("2026-11-30T23:00:00-05:00")).await.expect("snapshot");
        assert_eq!(snap.oldest_pending, Some(t("2026-11-30T20:00:00-05:00")), "it waits, so it is the oldest");
        assert_eq!(snap.overdue_since, None, "waiting for working hours is not late");

        let now = baton_core::Intent::message(to, baton_core::IntentKind::Notice, "now".into());
        store.enqueue_once("now", &now, t("2026-11-30T22:00:00-05:00")).await.expect("enqueue");
        let snap = store.metrics_snapshot(t("2026-11-30T23:00:00-05:00")).await.expect("snapshot");
        assert_eq!(snap.overdue_since, Some(t("2026-11-30T22:00:00-05:00")), "due at 22:00, not sent");
        let due = store.pending_outbox(t("2026-11-30T23:00:00-05:00"), 10).await.expect("outbox");
        assert_eq!(due.len(), 1, "the night message is not due yet");
        store.mark_delivered(&[due[0].id], t("2026-11-30T23:00:00-05:00"), None, None).await.expect("sent");
        let snap = store.metrics_snapshot(t("2026-12-01T10:00:00-05:00")).await.expect("snapshot");
        assert_eq!(snap.overdue_since, Some(t("2026-12-01T09:00:00-05:00")), "the night message is due from 09:00");
    })
    .await;
}

/// Retention forgets messages delivered before its window, request keys older than theirs and
/// job runs superseded by a later one, and keeps what is still owed: a message not yet delivered,
/// a dead letter, each job's latest run, and every handoff and event.
#[tokio::test]
async fn pruning_forgets_old_deliveries_keys_and_job_runs_and_keeps_what_is_owed() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        let now = t("2027-06-01T12:00:00Z");
        let (old, recent) = (now - Duration::days(100), now - Duration::days(10));
        for (i, at) in [(1, old), (2, old), (3, recent)] {
            let line = ACME.replace("account=Acme", &format!("account=Acme{i}"));
            app.handle("rita", Surface::Slack, cmd(&line), at, Some(&format!("trigger-{i}"))).await.expect("create");
        }
        // Everything was delivered as it was queued, but for H-1's card, given up on, and H-2's,
        // still pending.
        let pool = store.pool();
        sqlx::query("UPDATE outbox SET delivered_at_ms = created_at_ms").execute(pool).await.expect("delivered");
        let card = |h: i64| async move {
            let sql = "SELECT MIN(id) FROM outbox WHERE handoff_id = $1";
            sqlx::query_scalar::<_, i64>(sql).bind(h).fetch_one(pool).await.expect("card")
        };
        let (dead, pending) = (card(1).await, card(2).await);
        sqlx::query("UPDATE outbox SET delivered_at_ms = NULL WHERE id = $1")
            .bind(pending)
            .execute(pool)
            .await
            .expect("pending");
        sqlx::query("UPDATE outbox SET delivered_at_ms = NULL, dead_at_ms = created_at_ms WHERE id = $1")
            .bind(dead)
            .execute(pool)
            .await
            .expect("dead");
        for (job, at) in [("digest", old - Duration::days(7)), ("digest", old), ("nudge", old - Duration::days(7))] {
            store.record_job_run(job, at, at, &[]).await.expect("job run");
        }
        let recent_ms = recent.timestamp_millis();
        let kept_messages =
            count(&store, &format!("SELECT COUNT(*) FROM outbox WHERE created_at_ms >= {recent_ms}")).await;
        let (handoffs, events) =
            (count(&store, "SELECT COUNT(*) FROM handoffs").await, count(&store, "SELECT COUNT(*) FROM events").await);
        let old_delivered =
            count(&store, &format!("SELECT COUNT(*) FROM outbox WHERE created_at_ms < {recent_ms}")).await - 2;

        let pruned = store.prune(&app.model.retention, now).await.expect("prune");
        assert_eq!(
            (pruned.messages, pruned.request_keys, pruned.job_runs),
            (old_delivered as u64, 2, 1),
            "H-1's and H-2's delivered messages, their keys, digest's older run"
        );
        let left: Vec<i64> = sqlx::query_scalar("SELECT id FROM outbox WHERE created_at_ms < $1 ORDER BY id")
            .bind(recent_ms)
            .fetch_all(pool)
            .await
            .expect("left");
        assert_eq!(left, [dead, pending], "the dead letter and the pending message stay");
        assert_eq!(
            count(&store, &format!("SELECT COUNT(*) FROM outbox WHERE created_at_ms >= {recent_ms}")).await,
            kept_messages
        );
        assert!(!store.processed("trigger-1").await.expect("key") && store.processed("trigger-3").await.expect("key"));
        assert_eq!(store.last_job_run("digest").await.expect("run"), Some(old), "each job's latest run stays");
        assert_eq!(store.last_job_run("nudge").await.expect("run"), Some(old - Duration::days(7)));
        assert_eq!(count(&store, "SELECT COUNT(*) FROM handoffs").await, handoffs);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM events").await, events);
        assert_eq!(store.dead_letters(10).await.expect("dead").len(), 1);
        assert!(store.prune(&app.model.retention, now).await.expect("again").is_empty(), "nothing more to forget");
    })
    .await;
}
