//! Stall history on both stores: percentiles, trends, filters, throughput, categories, access,
//! the health report and the chart, over a history written straight into the tables with known
//! answers.

use baton::report;
use baton::store::Store;
use baton_core::history::{Direction, Filter, Verdict, View, Viewer, parse_query};
use baton_core::model::RiskTier;
use chrono::{DateTime, Duration, Utc};

use crate::support::{model, on_each_store, t};

const NOW: &str = "2026-11-30T12:00:00Z";
const HOUR: i64 = 3_600_000;

/// Writes rows the way the store does, with ids chosen by the test.
struct History<'a> {
    store: &'a Store,
    next: i64,
}

impl History<'_> {
    async fn exec(&self, sql: String) {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(self.store.pool()).await.expect(&sql);
    }

    /// A handoff created at `created`, accepted `accept_ms` later, done at `done` if given.
    async fn handoff(
        &mut self,
        seam: &str,
        owner: &str,
        tier: &str,
        created: DateTime<Utc>,
        accept_ms: Option<i64>,
        done: Option<DateTime<Utc>>,
    ) -> i64 {
        self.next += 1;
        let id = self.next;
        let c = created.timestamp_millis();
        let accepted = accept_ms.map_or("NULL".into(), |a| (c + a).to_string());
        let (state, closed) = match done {
            Some(d) => ("done", d.timestamp_millis().to_string()),
            None => ("in_progress", "NULL".into()),
        };
        self.exec(format!(
            "INSERT INTO handoffs (id, seam, state, requester, owner, stall_kind, created_at_ms, updated_at_ms, next_check_ms, \
             version, doc, tier, accepted_at_ms, closed_at_ms) \
             VALUES ({id}, '{seam}', '{state}', 'rita', '{owner}', NULL, {c}, {c}, NULL, 1, '{{}}', '{tier}', {accepted}, {closed})"
        ))
        .await;
        id
    }

    /// A stall episode of `hours` that ended at `closed`.
    async fn episode(&self, handoff: i64, seam: &str, closed: DateTime<Utc>, hours: i64) {
        let end = closed.timestamp_millis();
        self.exec(format!(
            "INSERT INTO stall_episodes (handoff_id, episode, seam, kind, opened_at_ms, closed_at_ms) \
             VALUES ({handoff}, 1, '{seam}', 'no_progress', {}, {end})",
            end - hours * HOUR
        ))
        .await;
    }

    async fn artifact(&self, handoff: i64, category: &str, at: DateTime<Utc>) {
        self.exec(format!(
            "INSERT INTO artifacts (handoff_id, episode, playbook, category, assumption, decision, fields, recorded_by, at_ms, seam) \
             SELECT {handoff}, 1, 'unacknowledged', '{category}', 'x', 'resume', '{{}}', 'eve', {}, seam FROM handoffs WHERE id = {handoff}",
            at.timestamp_millis()
        ))
        .await;
    }
}

/// 28-day window ending at NOW (from 2 Nov), the previous one from 5 Oct.
///
/// sales-to-cs (ana, high-stakes): unblocked in 1h..10h now and 2h..20h before; accepted after
/// 10..100 minutes; 3 done in each of the last 4 weeks; `capacity` recorded 3 times now, once before.
/// marketing-to-eng (eli, reversible): unblocked in 1h, 1h, 4h now; 6 done in alternate weeks;
/// `missing-information` recorded twice before, never now.
async fn seed(store: &Store) {
    seed_at(store, t(NOW)).await;
}

/// [`seed`] with its window ending at `now`.
pub async fn seed_at(store: &Store, now: DateTime<Utc>) {
    let mut h = History { store, next: 0 };
    for k in 1..=10 {
        let at = now - Duration::days(k);
        let id =
            h.handoff("sales-to-cs", "ana", "high-stakes", at - Duration::hours(1), Some(k * 10 * 60_000), None).await;
        h.episode(id, "sales-to-cs", at, k).await;
        let before = now - Duration::days(30 + k);
        let id = h.handoff("sales-to-cs", "ana", "high-stakes", before - Duration::hours(1), None, None).await;
        h.episode(id, "sales-to-cs", before, 2 * k).await;
    }
    for (k, hours) in [(2, 1), (3, 1), (4, 4)] {
        let at = now - Duration::days(k);
        let id = h.handoff("marketing-to-eng", "eli", "reversible", at - Duration::days(1), None, None).await;
        h.episode(id, "marketing-to-eng", at, hours).await;
    }
    for week in 0..4 {
        let end = now - Duration::weeks(week) - Duration::hours(2);
        for _ in 0..3 {
            h.handoff("sales-to-cs", "ana", "high-stakes", end - Duration::days(2), None, Some(end)).await;
        }
        if week % 2 == 1 {
            for _ in 0..6 {
                h.handoff("marketing-to-eng", "eli", "reversible", end - Duration::days(2), None, Some(end)).await;
            }
        }
    }
    for k in 1..=3 {
        h.artifact(k * 2 - 1, "capacity", now - Duration::days(k)).await;
    }
    h.artifact(2, "capacity", now - Duration::days(31)).await;
    h.artifact(4, "missing-information", now - Duration::days(32)).await;
    h.artifact(6, "missing-information", now - Duration::days(33)).await;
    // Written behind the store's back, so rolled up the way an upgraded database is.
    store.rebuild_rollups().await.expect("rollups");
}

fn filter(words: &str) -> Filter {
    let words: Vec<String> = words.split_whitespace().map(String::from).collect();
    parse_query(&words).expect("filter").filter
}

#[tokio::test]
async fn reports_give_percentiles_trends_throughput_and_categories() {
    on_each_store(|store| async move {
        seed(&store).await;
        let model = model();
        let now = t(NOW);
        let r =
            report::summary(&store, &model, Viewer::Person("ada"), &filter("window=28d"), now).await.expect("report");
        let sales = r.seams.iter().find(|s| s.seam == "sales-to-cs").expect("sales");
        let marketing = r.seams.iter().find(|s| s.seam == "marketing-to-eng").expect("marketing");
        let h = |n: i64| Some(n * 3600);

        assert_eq!((sales.stalls_closed, sales.time_to_unblock.current.p50_secs), (10, h(5)));
        assert_eq!(sales.time_to_unblock.current.p90_secs, h(9));
        assert_eq!((sales.time_to_unblock.previous.count, sales.time_to_unblock.previous.p50_secs), (10, h(10)));
        assert_eq!(sales.time_to_unblock.p50_change_pct, Some(-50));
        assert_eq!(sales.time_to_accept.current.p50_secs, Some(50 * 60));
        assert_eq!(sales.time_to_accept.current.p90_secs, Some(90 * 60));
        assert_eq!(sales.stalls_opened, 10);
        assert_eq!(sales.throughput.weekly_done, [3, 3, 3, 3]);
        assert_eq!((sales.throughput.mean, sales.throughput.stable()), (3.0, Some(true)));

        assert_eq!(marketing.time_to_unblock.current.p50_secs, h(1));
        assert_eq!(marketing.time_to_unblock.current.p90_secs, h(4));
        assert_eq!(marketing.throughput.weekly_done, [6, 0, 6, 0]);
        assert_eq!(marketing.throughput.stable(), Some(false));

        // All seams: 1,1,1,2,3,4,4,5,6,7,8,9,10 hours → p50 (rank 7) 4h, p90 (rank 12) 9h.
        assert_eq!(r.all.time_to_unblock.current.count, 13);
        assert_eq!((r.all.time_to_unblock.current.p50_secs, r.all.time_to_unblock.current.p90_secs), (h(4), h(9)));
        assert_eq!(r.all.throughput.weekly_done, [9, 3, 9, 3]);

        let cats: Vec<(&str, u64, u64, Direction)> =
            r.categories.iter().map(|c| (c.category.as_str(), c.current, c.previous, c.direction)).collect();
        assert_eq!(cats, [("capacity", 3, 1, Direction::Rising), ("missing-information", 0, 2, Direction::Gone)]);
        let text = r.text();
        assert!(text.contains("unblock p50 5h, p90 9h (50% shorter than the previous 28 days: 10h)"), "{text}");

        // Filters: owner, tier and category each narrow to the matching handoffs.
        let by_owner = report::summary(&store, &model, Viewer::Operator, &filter("window=28d owner=eli"), now)
            .await
            .expect("owner");
        assert_eq!(by_owner.all.time_to_unblock.current.count, 3);
        assert_eq!(by_owner.all.throughput.weekly_done, [6, 0, 6, 0]);
        let by_tier = report::summary(&store, &model, Viewer::Operator, &filter("window=28d tier=high-stakes"), now)
            .await
            .expect("tier");
        assert_eq!(by_tier.all.time_to_unblock.current.count, 10);
        assert_eq!(by_tier.filter.tier, Some(RiskTier::HighStakes));
        let by_category =
            report::summary(&store, &model, Viewer::Operator, &filter("window=28d category=capacity"), now)
                .await
                .expect("cat");
        assert_eq!(by_category.all.time_to_unblock.current.count, 3);
        assert_eq!(by_category.all.time_to_unblock.current.p50_secs, h(2));
        let by_function =
            report::summary(&store, &model, Viewer::Operator, &filter("window=28d function=engineering"), now)
                .await
                .expect("function");
        assert_eq!(
            by_function.seams.iter().map(|s| s.seam.as_str()).collect::<Vec<_>>(),
            ["eng-to-ops", "marketing-to-eng"]
        );
        assert_eq!(by_function.all.time_to_unblock.current.count, 3);

        // A shorter window (today and the six days before: from 24 Nov) compares with the equal
        // window before it (17 to 23 Nov).
        let week = report::summary(&store, &model, Viewer::Operator, &filter("seam=sales-to-cs window=7d"), now)
            .await
            .expect("week");
        assert_eq!((week.all.time_to_unblock.current.count, week.all.time_to_unblock.previous.count), (6, 4));
    })
    .await;
}

#[tokio::test]
async fn others_see_their_own_functions_and_a_refusal_says_so() {
    on_each_store(|store| async move {
        seed(&store).await;
        let app = crate::support::app(store.clone());
        let now = t(NOW);
        let eli = app
            .stalls("eli", &parse_query(&[]).expect("q"), now, None, None)
            .await
            .expect("eli sees engineering's seams");
        assert!(eli.contains("seams to or from Engineering"), "{eli}");
        assert!(eli.contains("• marketing-to-eng:") && !eli.contains("sales-to-cs"), "{eli}");
        let q = parse_query(&["seam=sales-to-cs".to_string()]).expect("q");
        let refused = baton::app::outcome(app.stalls("eli", &q, now, None, None).await);
        assert!(
            refused.starts_with("✗ you can see the stall history of seams to or from Engineering only"),
            "{refused}"
        );
        // Narrowed to a seam, the header says the seam, not also whose seams these are.
        let q = parse_query(&["seam=marketing-to-eng".to_string()]).expect("q");
        let one = app.stalls("ada", &q, now, None, None).await.expect("ada sees it");
        let header = one.lines().next().unwrap_or_default();
        assert!(header.contains("seam=marketing-to-eng") && !header.contains("every seam"), "{header}");
        let chart = parse_query(&["chart".to_string()]).expect("q");
        assert_eq!(chart.view, View::Chart);
    })
    .await;
}

#[tokio::test]
async fn the_health_report_answers_the_five_questions_from_recorded_data() {
    on_each_store(|store| async move {
        seed(&store).await;
        // A handoff on a seam the model no longer has, and one owned by someone who left.
        let now = t(NOW);
        let mut h = History { store: &store, next: 1000 };
        h.handoff("legal-to-sales", "ana", "reversible", now - Duration::days(3), None, None).await;
        h.handoff("sales-to-cs", "gone-guy", "reversible", now - Duration::days(3), None, None).await;
        // And one returned to a requester who left.
        let returned = h.handoff("sales-to-cs", "ana", "reversible", now - Duration::days(3), None, None).await;
        h.exec(format!("UPDATE handoffs SET state = 'returned', requester = 'gone-rep' WHERE id = {returned}")).await;
        let model = model();
        let docs = baton_core::docs::markdown(&model);
        let health = report::health(
            &store,
            &model,
            Viewer::Operator,
            &filter("window=28d"),
            now,
            Some(("docs/operating-model.md".into(), docs)),
        )
        .await
        .expect("health");
        let verdicts: Vec<Verdict> = health.answers.iter().map(|a| a.verdict).collect();
        // Throughput: sales steady, marketing alternating. Recovery: p50 10h→4h, p90 18h→9h.
        // Docs current. Ownership broken twice. Categories: 3 now as before, capacity rising.
        assert_eq!(
            verdicts,
            [Verdict::Partly, Verdict::Yes, Verdict::Yes, Verdict::No, Verdict::No],
            "{}",
            health.text()
        );
        let text = health.text();
        assert!(text.contains("owned by people no longer in the operating model: gone-guy (1)"), "{text}");
        assert!(
            text.contains(
                "returned to people no longer in the operating model (their sending lead may answer in their place): gone-rep (1)"
            ),
            "{text}"
        );
        assert!(text.contains("handed off on seams the operating model does not define: legal-to-sales (1)"), "{text}");
        assert!(text.contains("docs/operating-model.md matches the configuration in force"), "{text}");

        let stale = report::health(
            &store,
            &model,
            Viewer::Operator,
            &filter("window=28d"),
            now,
            Some(("docs/operating-model.md".into(), "old".into())),
        )
        .await
        .expect("health");
        assert_eq!(stale.answers[2].verdict, Verdict::No);
        assert!(stale.text().contains("regenerate it with `baton docs > docs/operating-model.md`"));
    })
    .await;
}

#[tokio::test]
async fn the_chart_plots_each_seams_weekly_percentiles() {
    on_each_store(|store| async move {
        seed(&store).await;
        let model = model();
        let now = t(NOW);
        let f = filter("window=28d");
        let series = report::series(&store, &model, Viewer::Operator, &f, now).await.expect("series");
        let sales = series.iter().find(|s| s.seam == "sales-to-cs").expect("sales");
        // Weeks run from 3 Nov: episodes closed 20 to 23 Nov fall in the third, 24 to 29 Nov in
        // the fourth.
        let counts: Vec<u64> = sales.weeks.iter().map(|(_, p)| p.count).collect();
        assert_eq!(counts, [4, 6]);
        assert_eq!(sales.weeks[1].1.p50_secs, Some(3 * 3600));
        let png = report::png(&report::chart_title(&f), &series, f.from(now), now).expect("png");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let info = decoder.read_info().expect("a valid PNG").info().clone();
        assert_eq!((info.width, info.height), (960, 480));
        let svg = report::svg(&report::chart_title(&f), &series, f.from(now), now).expect("svg");
        assert!(svg.starts_with("<svg") && svg.contains("sales-to-cs p50"), "{}", &svg[..200.min(svg.len())]);
    })
    .await;
}

#[tokio::test]
async fn baton_report_prints_tables_csv_json_health_and_charts() {
    let dir = std::env::temp_dir().join(format!("baton-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let url = format!("sqlite://{}?mode=rwc", dir.join("baton.db").display());
    let store = Store::open(&url).await.expect("store");
    seed(&store).await;
    store.pool().close().await;
    let report = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_baton"))
            .arg("report")
            .args(["--at", NOW])
            .args(args)
            .current_dir(crate::support::repo())
            .env("BATON_DATABASE_URL", &url)
            .env_remove("BATON_CONFIG")
            .env_remove("BATON_PLAYBOOKS_DIR")
            .output()
            .expect("run baton report");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };

    let (code, table, err) = report(&["window=28d"]);
    assert_eq!(code, Some(0), "{err}");
    let line = table.lines().find(|l| l.starts_with("sales-to-cs")).expect("a sales-to-cs row");
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells, ["sales-to-cs", "10", "10", "50m", "1h30m", "-", "5h", "9h", "-50%", "3.0", "0.00"], "{table}");

    let (_, csv, _) = report(&["window=28d", "--format", "csv"]);
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().expect("header").clone();
    let all = rows.records().next().expect("all row").expect("csv");
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    assert_eq!((&all[col("seam")], &all[col("unblock_count")], &all[col("unblock_p50_secs")]), ("all", "13", "14400"));

    let (_, json, _) = report(&["window=28d", "seam=marketing-to-eng", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["all"]["throughput"]["weekly_done"], serde_json::json!([6, 0, 6, 0]));
    assert_eq!(v["scope"], "every seam");

    let (code, health, _) = report(&["health", "window=28d", "--docs", "docs/operating-model.md"]);
    assert_eq!(code, Some(0));
    assert!(health.contains("2. Is recovery time short and getting shorter? ✓ yes"), "{health}");
    assert!(health.contains("docs/operating-model.md matches the configuration in force"), "{health}");

    let chart = dir.join("chart.svg");
    let (code, said, _) = report(&["chart", "window=28d", "--out", chart.to_str().expect("path")]);
    assert_eq!(code, Some(0));
    assert!(said.contains("wrote"), "{said}");
    assert!(std::fs::read_to_string(&chart).expect("svg").contains("marketing-to-eng p90"));

    let (code, _, err) = report(&["tier=urgent"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("there is no tier `urgent`") && err.contains("usage: baton report [health|chart]"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

async fn rollup_rows(store: &Store) -> Vec<(String, String, i64, String, i64, i64)> {
    sqlx::query_as("SELECT metric, seam, day, tier, bucket, n FROM rollups ORDER BY metric, seam, day, tier, bucket")
        .fetch_all(store.pool())
        .await
        .expect("rollups")
}

#[tokio::test]
async fn rollups_kept_with_each_change_equal_a_rebuild_from_the_rows() {
    on_each_store(|store| async move {
        // The demo drives real commands and sweeps: accepts (one re-accepted after a reassign),
        // stalls opened and unblocked, a handoff done through its gate.
        let script = std::fs::read_to_string(crate::support::repo().join("demo/demo.baton")).expect("demo");
        let mut console = baton::console::Console::new(crate::support::app(store.clone()), t(NOW), Vec::new());
        console.chart_dir = std::env::temp_dir();
        console.run(tokio::io::BufReader::new(script.as_bytes()), true).await.expect("demo runs");
        let kept = rollup_rows(&store).await;
        let metrics: Vec<&str> = kept.iter().map(|r| r.0.as_str()).collect();
        for m in ["accept", "done", "opened", "unblock"] {
            assert!(metrics.contains(&m), "no `{m}` rollup in {kept:?}");
        }
        assert_eq!(kept.iter().filter(|r| r.0 == "accept").map(|r| r.5).sum::<i64>(), 2, "one per handoff: {kept:?}");
        store.rebuild_rollups().await.expect("rebuild");
        assert_eq!(rollup_rows(&store).await, kept);
    })
    .await;
}

#[tokio::test]
async fn rolled_up_percentiles_agree_with_exact_ones_within_the_bucket_width() {
    on_each_store(|store| async move {
        seed(&store).await;
        let (model, now) = (model(), t(NOW));
        for words in ["window=28d", "window=28d seam=marketing-to-eng", "window=14d tier=high-stakes"] {
            let f = filter(words);
            let exact = report::summary_with(&store, &model, Viewer::Operator, &f, now, u64::MAX).await.expect("exact");
            let rolled = report::summary_with(&store, &model, Viewer::Operator, &f, now, 0).await.expect("rolled");
            for (e, r) in std::iter::once((&exact.all, &rolled.all)).chain(exact.seams.iter().zip(&rolled.seams)) {
                assert_eq!(
                    (e.stalls_opened, e.stalls_closed),
                    (r.stalls_opened, r.stalls_closed),
                    "{words}: {}",
                    e.seam
                );
                assert_eq!(e.throughput, r.throughput, "{words}: {}", e.seam);
                for (x, y) in [
                    (&e.time_to_unblock.current, &r.time_to_unblock.current),
                    (&e.time_to_unblock.previous, &r.time_to_unblock.previous),
                    (&e.time_to_accept.current, &r.time_to_accept.current),
                ] {
                    assert_eq!(x.count, y.count, "{words}: {}", e.seam);
                    for (a, b) in [(x.p50_secs, y.p50_secs), (x.p90_secs, y.p90_secs)] {
                        let (a, b) = (a.unwrap_or(0) as f64, b.unwrap_or(0) as f64);
                        assert!((a - b).abs() <= a * 0.025 + 1.0, "{words}: {}: exact {a} vs rolled {b}", e.seam);
                    }
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_database_from_before_the_rollups_is_rolled_up_when_opened() {
    let path = std::env::temp_dir().join(format!("baton-upgrade-{}.db", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = Store::open(&url).await.expect("store");
    seed(&store).await;
    let rolled = rollup_rows(&store).await;
    assert!(!rolled.is_empty());
    // As if written by a version without rollups.
    sqlx::query("DELETE FROM rollups").execute(store.pool()).await.expect("delete");
    store.pool().close().await;
    let reopened = Store::open(&url).await.expect("reopen");
    assert_eq!(rollup_rows(&reopened).await, rolled);
    reopened.pool().close().await;
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", path.display())).ok();
    }
}

/// A corrected post-mortem replaces the first: its failure category counts once, as corrected,
/// in the window of the first.
#[tokio::test]
async fn a_corrected_post_mortem_counts_once_under_its_corrected_category() {
    on_each_store(|store| async move {
        let app = crate::support::app(store.clone());
        let at = t("2026-11-30T09:00:00-05:00");
        let run = |who: &'static str, line: &'static str, when: DateTime<Utc>| {
            let app = app.clone();
            async move {
                let cmd = baton_core::parse(line).expect("command");
                app.handle(who, baton_core::Surface::Console, cmd, when, None).await.expect(line)
            }
        };
        run("rita", r#"/handoff new sales-to-cs "Acme" account=Acme arr=1 segment=smb"#, at).await;
        run("rita", "/handoff cancel H-1 churned", at).await;
        run("rita", r#"/postmortem H-1 assumption_broke="no seam for renewals" category=capacity"#, at).await;
        let later = at + Duration::days(2);
        let said =
            run("ada", r#"/postmortem H-1 assumption_broke="no seam for renewals" category=unclear-ownership"#, later);
        assert!(said.await.starts_with("Post-mortem of H-1 corrected"));
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT category, at_ms FROM artifacts WHERE handoff_id = 1")
            .fetch_all(store.pool())
            .await
            .expect("artifacts");
        assert_eq!(rows, [("unclear-ownership".to_string(), at.timestamp_millis())]);
        let report =
            report::summary(&store, &model(), Viewer::Operator, &Filter::default(), later).await.expect("report");
        let categories: Vec<(&str, u64)> = report.categories.iter().map(|c| (c.category.as_str(), c.current)).collect();
        assert_eq!(categories, [("unclear-ownership", 1)]);
    })
    .await;
}
