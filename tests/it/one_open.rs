//! One open handoff per account: a seam's `one_open_per` refuses a second open handoff holding
//! the same values, however it arrives (a command, an edit, two replicas at once, the API).

use baton::app::{App, AppError};
use baton::store::{Backend, Store};
use baton_core::{Rejection, Surface};

use crate::support::{app, cmd, count, model, on_each_database, on_each_store, t};

const MONDAY_9: &str = "2026-11-30T09:00:00-05:00";

/// The open handoff a refusal names, or a panic saying what came instead.
fn holder(outcome: &Result<String, AppError>) -> u64 {
    match outcome {
        Err(AppError::Rejected(Rejection::AlreadyOpen { existing, .. })) => *existing,
        other => panic!("not refused as already open: {other:?}"),
    }
}

#[tokio::test]
async fn a_second_open_handoff_of_one_account_is_refused_naming_the_first_until_it_closes() {
    on_each_store(|store| async move {
        let app = app(store.clone());
        let run = |who: &'static str, line: &str| {
            let (app, line) = (app.clone(), line.to_string());
            async move { app.handle(who, Surface::Slack, cmd(&line), t(MONDAY_9), None).await }
        };
        run("rita", r#"/handoff new sales-to-cs "Acme renewal" account="Acme Corp" arr=120000 segment=enterprise"#)
            .await
            .expect("first");
        run("ana", "/handoff accept H-1").await.expect("accept");
        // Sam, the sales lead, hands off the same account as typed differently.
        let again =
            run("sam", r#"/handoff new sales-to-cs "Acme upsell" account="acme  CORP" arr=5000 segment=smb"#).await;
        assert_eq!(holder(&again), 1);
        assert_eq!(
            again.expect_err("refused").to_string(),
            "H-1 \"Acme renewal\" is already open on sales-to-cs for account Acme Corp (accepted, owned by Ana Alves), \
             and the seam takes one open handoff per account. Add to it with `/handoff comment H-1 <text>`; if this \
             should replace it, its requester (Rita Reyes) or the sending lead (Sam Sato) cancels it first with \
             `/handoff cancel H-1 <reason>`."
        );
        // The refusal spent no number, and other accounts, and other seams, are not held back.
        let globex = run("sam", r#"/handoff new sales-to-cs "Globex" account=Globex arr=9000 segment=smb"#).await;
        assert!(globex.expect("globex").starts_with("H-2 "), "numbered on");
        // An edit may not take an account another open handoff holds; one that keeps it may change the rest.
        let taken = run("sam", r#"/handoff edit H-2 account="ACME corp" it was Acme"#).await;
        assert_eq!(holder(&taken), 1);
        let h2 = store.load(2).await.expect("load").expect("H-2").handoff;
        assert_eq!(h2.fields["account"], "Globex", "the refused edit changed nothing");
        run("sam", "/handoff edit H-2 arr=9500 the signed figure").await.expect("an edit keeping the account");
        assert_eq!(count(&store, "SELECT COUNT(*) FROM events WHERE handoff_id = 2").await, 2, "created, edited");
        // Once H-1 closes, the account is free again.
        run("rita", "/handoff cancel H-1 replaced by the upsell").await.expect("cancel");
        let upsell = run("sam", r#"/handoff new sales-to-cs "Acme upsell" account="acme  CORP" arr=5000 segment=smb"#);
        assert!(upsell.await.expect("free again").starts_with("H-3 "));
        assert_eq!(count(&store, "SELECT COUNT(*) FROM handoffs WHERE open_key IS NOT NULL").await, 2, "H-2, H-3");
    })
    .await;
}

/// Two replicas receive the same account's handoff several times at once (a double submit, a CRM
/// and a rep): one is made, every other is refused naming it, and none leaves a trace.
#[tokio::test]
async fn one_accounts_handoffs_arriving_at_once_on_two_replicas_make_one() {
    on_each_database(|url| async move {
        let (a, b) = (app(Store::open(&url).await.expect("a")), app(Store::open(&url).await.expect("b")));
        // Writes are held until every creation has arrived, so that they meet in batches and
        // across the replicas' transactions.
        let blocker = match a.store.backend() {
            Backend::Postgres => {
                let mut tx = a.store.pool().begin().await.expect("begin");
                sqlx::query("LOCK TABLE handoffs IN EXCLUSIVE MODE").execute(&mut *tx).await.expect("lock");
                tx
            }
            Backend::Sqlite => a.store.pool().begin_with("BEGIN IMMEDIATE").await.expect("begin immediate"),
        };
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let app: App = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    let line = format!(r#"/handoff new sales-to-cs "Acme {i}" account=Acme arr=1 segment=smb"#);
                    app.handle("rita", Surface::Slack, cmd(&line), t(MONDAY_9), Some(&format!("key-{i}"))).await
                })
            })
            .collect();
        crate::support::eventually(10, "every creation queued or in flight", || async {
            let stats = [a.store.creation_stats(), b.store.creation_stats()];
            stats.iter().map(|s| s.creations as usize + s.queued).sum::<usize>() == 12
        })
        .await;
        blocker.rollback().await.expect("let go");
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("task"));
        }
        let made: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(made.len(), 1, "{outcomes:?}");
        let id: u64 =
            made[0].trim_start_matches("H-").split_whitespace().next().and_then(|n| n.parse().ok()).expect("id");
        for refused in outcomes.iter().filter(|o| o.is_err()) {
            assert_eq!(holder(refused), id, "{refused:?}");
        }
        assert_eq!(count(&a.store, "SELECT COUNT(*) FROM handoffs").await, 1);
        assert_eq!(
            count(&a.store, "SELECT COUNT(*) FROM processed_requests").await,
            1,
            "refused keys may be used again"
        );
    })
    .await;
}

/// A reload that keys a seam keys the handoffs already open on it (two open for one account stay,
/// and the next is refused, naming the first); one that keys it no more frees them.
#[tokio::test]
async fn a_reload_that_keys_a_seam_keys_what_is_open_on_it() {
    on_each_store(|store| async move {
        let mut unkeyed = model();
        unkeyed.seams.get_mut("sales-to-cs").expect("seam").one_open_per.clear();
        let before = App::new(store.clone(), unkeyed.clone());
        for title in ["Acme renewal", "Acme upsell"] {
            let line = format!(r#"/handoff new sales-to-cs "{title}" account=Acme arr=1 segment=smb"#);
            before.handle("rita", Surface::Slack, cmd(&line), t(MONDAY_9), None).await.expect("unkeyed: made");
        }
        let keyed = app(store.clone());
        assert_eq!(store.rekey_open(&keyed.model).await.expect("rekey"), 2);
        assert_eq!(store.rekey_open(&keyed.model).await.expect("rekey"), 0, "nothing left to key");
        let line = r#"/handoff new sales-to-cs "Acme services" account=ACME arr=1 segment=smb"#;
        assert_eq!(holder(&keyed.handle("rita", Surface::Slack, cmd(line), t(MONDAY_9), None).await), 1);
        // The health report names the two, for someone to cancel or merge the extra.
        let health = || async {
            keyed.handle("ada", Surface::Slack, cmd("/stalls health"), t(MONDAY_9), None).await.expect("health")
        };
        let shared = "open together though their seam takes one at a time (made before it said so; cancel or merge \
                      the extra): H-1 and H-2 (sales-to-cs, account acme)";
        let said = health().await;
        assert!(said.contains(shared) && said.contains("4. Is every seam explicit and owned? ◐ partly"), "{said}");
        // Both stay open and may move on; closing one leaves the other holding the account.
        keyed.handle("rita", Surface::Slack, cmd("/handoff cancel H-1 dup"), t(MONDAY_9), None).await.expect("cancel");
        assert!(!health().await.contains("open together"), "{}", health().await);
        assert_eq!(holder(&keyed.handle("rita", Surface::Slack, cmd(line), t(MONDAY_9), None).await), 2);

        assert_eq!(store.rekey_open(&unkeyed).await.expect("rekey"), 1, "H-2's key cleared");
        let after = App::new(store.clone(), unkeyed);
        after.handle("rita", Surface::Slack, cmd(line), t(MONDAY_9), None).await.expect("unkeyed again: made");
    })
    .await;
}
