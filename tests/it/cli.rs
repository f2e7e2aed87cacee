//! The `baton` binary as an operator runs it.

use std::process::Command;

use crate::support::repo;

fn baton(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .current_dir(repo())
        .env_remove("BATON_CONFIG")
        .env_remove("BATON_DATABASE_URL")
        .env_remove("BATON_PLAYBOOKS_DIR")
        .output()
        .expect("run baton");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn check_accepts_the_shipped_operating_model() {
    let (ok, stdout, stderr) = baton(&["check"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("baton.toml: ok (5 functions, 15 people, 3 seams, 5 playbooks)"), "{stdout}");
}

#[test]
fn check_reports_every_mistake_with_file_and_line_and_fails() {
    let dir = std::env::temp_dir().join(format!("baton-check-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("playbooks")).expect("dir");
    for entry in std::fs::read_dir(repo().join("playbooks")).expect("playbooks") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.join("playbooks").join(path.file_name().expect("name"))).expect("copy");
    }
    let shipped = std::fs::read_to_string(repo().join("baton.toml")).expect("model");
    let broken = shipped
        .replace("timezone = \"Europe/Berlin\"", "timezone = \"Europe/Atlantis\"")
        .replace("lead = \"carla\"", "lead = \"carl\"")
        .replace("accept = \"2h\"", "accept = \"2 hours\"")
        .replace("playbook = \"agent-stalled\"", "playbook = \"agent-stuck\"");
    std::fs::write(dir.join("baton.toml"), broken).expect("write");
    let bad = std::fs::read_to_string(repo().join("playbooks/agent-stalled.toml")).expect("playbook");
    let bad = bad.replace("id = \"agent-stalled\"", "id = \"bad\"").replace("timebox = \"30m\"", "timebox = \"soon\"");
    std::fs::write(dir.join("playbooks/bad.toml"), &bad).expect("write");
    let config = dir.join("baton.toml");
    let (ok, _, stderr) = baton(&["check", "--config", config.to_str().expect("path")]);
    assert!(!ok, "check must fail");
    let file = config.display().to_string();
    // Each mistake is reported on the line it was made, found here in the shipped file.
    let line = |needle: &str, nth: usize| {
        1 + shipped.lines().enumerate().filter(|(_, l)| l.contains(needle)).nth(nth).expect(needle).0
    };
    let zones = shipped.matches("timezone = \"Europe/Berlin\"").count();
    for expected in [
        format!("{file}:{}: functions.customer-success.lead: unknown person `carl`", line("lead = \"carla\"", 0)),
        format!(
            "{file}:{}: functions.engineering.timezone: unknown time zone `Europe/Atlantis`",
            line("timezone = \"Europe/Berlin\"", 0)
        ),
        format!("{file}:{}: seams.eng-to-ops.sla.accept: invalid duration `2 hours`", line("accept = \"2h\"", 0)),
        format!(
            "{file}:{}: seams.eng-to-ops.ladder.playbook: unknown playbook `agent-stuck`",
            line("playbook = \"agent-stalled\"", 0)
        ),
        format!(
            "playbooks/bad.toml:{}: timebox: invalid duration `soon`",
            1 + bad.lines().position(|l| l.contains("soon")).expect("timebox line")
        ),
        format!("{} problem(s) found", 4 + zones),
    ] {
        assert!(stderr.contains(&expected), "{expected:?} missing from:\n{stderr}");
    }
    // A seam with mistakes of its own is still a seam: the playbook naming it is not blamed too.
    assert!(!stderr.contains("unknown seam"), "{stderr}");
}

#[test]
fn the_readme_quick_start_runs_the_demo() {
    let (ok, stdout, stderr) = baton(&["console", "--script", "demo/demo.baton"]);
    assert!(ok, "{stderr}");
    // The demo sets its own Monday morning, whenever it is run (the console starts at the real time).
    assert!(stdout.contains("Due for acceptance by Mon 30 Nov 13:00 EST."), "{stdout}");
    assert!(stdout.contains("Approved. H-1 is done."), "{stdout}");
    assert!(!stdout.contains("✗ the clock"), "{stdout}");
    assert!(stderr.contains("temporary SQLite"), "{stderr}");
}

/// The front-door bench end to end at a gentle load: it starts `baton serve` on a scratch
/// PostgreSQL database, loads it open- and closed-loop beside `/healthz` and pgbench, and prints
/// every figure the issue asks for, with no request failing. Speed itself is not asserted.
#[tokio::test]
async fn bench_serve_prints_every_figure_with_no_failed_request() {
    if crate::support::postgres_url().await.is_none() {
        return;
    }
    let admin = crate::support::admin_url();
    let args = ["bench", "serve", "--admin-url", &admin, "--rate", "40", "--concurrency", "4", "--duration", "1s"];
    let (ok, stdout, stderr) = baton(&args);
    assert!(ok, "{stdout}\n{stderr}");
    let runs: Vec<&str> = stdout.lines().filter(|l| l.contains(" p99 ") && l.contains("errors")).collect();
    // Three repeats of: open loop handoff and healthz, closed loop handoff and healthz.
    assert_eq!(runs.len(), 12, "{stdout}");
    for line in &runs {
        assert!(line.ends_with("errors 0"), "a request failed: {line}\n{stderr}");
        for figure in ["/s", "p50", "p99", "p99.9", "max"] {
            assert!(line.contains(figure), "{figure} missing: {line}");
        }
    }
    assert_eq!(stdout.lines().filter(|l| l.contains("closed pgbench inserts")).count(), 3, "{stdout}");
    let ratio = |label: &str| -> f64 {
        let line = stdout.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("{label}: {stdout}"));
        line[label.len()..].split_whitespace().next().and_then(|v| v.parse().ok()).expect(line)
    };
    for label in [
        "open loop:   handoff p99 / healthz p99",
        "closed loop: handoff p99 / healthz p99",
        "closed loop: creations/s / pgbench inserts/s",
    ] {
        assert!(ratio(label) > 0.0, "{label}: {stdout}");
    }
    let grouped = stdout.lines().find(|l| l.starts_with("creations per transaction")).expect("group commit line");
    let per: f64 = grouped.split(": ").nth(1).and_then(|v| v.split_whitespace().next()?.parse().ok()).expect(grouped);
    assert!(per >= 1.0, "{grouped}");
    let rss = stdout.lines().find(|l| l.starts_with("server RSS")).expect("RSS line");
    assert!(rss.contains("Slack and Discord configured") && rss.contains("peak"), "{rss}");
    let created: u64 = stdout
        .lines()
        .find_map(|l| l.split_once(" handoffs created").and_then(|(n, _)| n.parse().ok()))
        .unwrap_or_else(|| panic!("no count of created handoffs: {stdout}"));
    assert!(created >= 3 * 40, "at least the open loops' handoffs exist: {created}");
    // Configured as in production, the server has nothing to warn about.
    assert!(!stderr.contains("baton serve:"), "the server warned:\n{stderr}");
}

/// A database Baton cannot open is named (its password hidden) with the reason, said once: not the
/// pool's "timed out" after a wait, nor the database's message twice.
#[test]
fn a_database_that_cannot_be_opened_is_named_with_the_reason() {
    let (ok, _, stderr) = baton(&["--database-url", "postgres://baton:secret@127.0.0.1:1/baton", "migrate"]);
    assert!(!ok);
    assert!(stderr.contains("connecting to postgres://baton:***@127.0.0.1:1/baton: "), "{stderr}");
    assert!(stderr.contains("Connection refused") && stderr.contains("is the database server running"), "{stderr}");
    assert!(!stderr.contains("secret") && !stderr.contains("timed out"), "{stderr}");

    let missing = std::env::temp_dir().join(format!("baton-no-such-folder-{}", std::process::id())).join("baton.db");
    let url = format!("sqlite://{}", missing.display());
    let (ok, _, stderr) = baton(&["--database-url", &url, "migrate"]);
    assert!(!ok);
    assert_eq!(stderr.matches("unable to open database file").count(), 1, "{stderr}");
    assert!(stderr.contains(&url) && stderr.contains("does its folder exist"), "{stderr}");
}

/// A report on a database that is not there says so, and leaves no empty database behind.
#[test]
fn a_report_on_a_missing_database_names_the_path_and_creates_nothing() {
    let missing = std::env::temp_dir().join(format!("baton-report-missing-{}.db", std::process::id()));
    let (ok, stdout, stderr) = baton(&["--database-url", &format!("sqlite://{}", missing.display()), "report"]);
    assert!(!ok, "{stdout}");
    assert!(stderr.contains(&format!("there is no database at {}", missing.display())), "{stderr}");
    assert!(!missing.exists(), "the report created the database it was asked to read");
}

/// A model whose ladders name playbooks, checked where there is no playbook folder, says where the
/// playbooks were looked for.
#[test]
fn check_names_the_playbook_folder_it_could_not_find() {
    let dir = std::env::temp_dir().join(format!("baton-no-playbooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let model = dir.join("baton.toml");
    std::fs::copy(repo().join("baton.toml"), &model).expect("copy");
    let (ok, _, stderr) = baton(&["check", "--config", &model.display().to_string()]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(!ok);
    let folder = dir.join("playbooks").display().to_string();
    assert!(stderr.contains(&format!("{folder}:0: (folder): no such folder, so no playbooks were read")), "{stderr}");
    assert!(stderr.contains("unknown playbook `unacknowledged`"), "{stderr}");
}

/// An address that cannot be bound names the setting to fix.
#[test]
fn serve_on_a_bad_address_names_the_setting() {
    let db = std::env::temp_dir().join(format!("baton-listen-{}.db", std::process::id()));
    let url = format!("sqlite://{}", db.display());
    let (ok, _, stderr) = baton(&["--database-url", &url, "serve", "--listen", "nonsense"]);
    for f in ["", "-shm", "-wal"] {
        std::fs::remove_file(format!("{}{f}", db.display())).ok();
    }
    assert!(!ok);
    assert!(stderr.contains("binding nonsense (--listen or BATON_LISTEN: host:port"), "{stderr}");
}

/// Intervals that would spin, overflow or panic are refused with what to give instead.
#[test]
fn serve_refuses_an_interval_it_cannot_use_with_the_reason() {
    for (given, says) in [
        ("0s", "give a duration above 0"),
        (" 5", "the unit must be ms, s or m"),
        ("99999999999999999999m", "write a number and a unit"),
        ("999999999999999999m", "give at most a day (1440m)"),
        ("5h", "the unit must be ms, s or m"),
    ] {
        let (ok, _, stderr) = baton(&["serve", "--poll-interval", given]);
        assert!(!ok, "{given}");
        assert!(stderr.contains(&format!("invalid value '{given}' for '--poll-interval")), "{given}: {stderr}");
        assert!(stderr.contains(says), "{given}: {stderr}");
        assert!(!stderr.contains("panicked"), "{given}: {stderr}");
    }
    let (ok, _, stderr) = baton(&["serve", "--delivery-lease", "0ms"]);
    assert!(!ok && stderr.contains("give a duration above 0"), "{stderr}");
}

/// A platform's or a webhook's address that is not one stops `serve` before it starts, naming
/// the variable (every message would otherwise fail until dead-lettered).
#[test]
fn serve_refuses_an_address_variable_that_is_no_address() {
    let db = std::env::temp_dir().join(format!("baton-address-{}.db", std::process::id()));
    let url = format!("sqlite://{}", db.display());
    let run = |vars: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["--database-url", &url, "serve", "--listen", "127.0.0.1:0"])
            .current_dir(repo())
            .env_remove("BATON_CONFIG")
            .env_remove("BATON_PLAYBOOKS_DIR")
            .envs(vars.iter().copied())
            .output()
            .expect("run baton");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (ok, stderr) = run(&[("SLACK_BOT_TOKEN", "xoxb-1"), ("SLACK_API_BASE_URL", "slack.internal/api")]);
    assert!(!ok);
    assert!(
        stderr.contains(
            "SLACK_API_BASE_URL must be an http(s) address like https://slack.com/api, not `slack.internal/api`"
        ),
        "{stderr}"
    );
    let (ok, stderr) = run(&[("DISCORD_BOT_TOKEN", "abc"), ("DISCORD_API_BASE_URL", "ftp://discord")]);
    assert!(!ok && stderr.contains("DISCORD_API_BASE_URL must be an http(s) address"), "{stderr}");
    let (ok, stderr) =
        run(&[("BATON_API_TOKEN_CRM", "crm-token-0123456789abcdef"), ("BATON_WEBHOOK_CRM", "hooks.crm.example/baton")]);
    assert!(!ok);
    assert!(
        stderr.contains(
            "BATON_WEBHOOK_CRM (API client `crm`'s webhook) must be an http(s) address, not `hooks.crm.example/baton`"
        ),
        "{stderr}"
    );
    for f in ["", "-shm", "-wal"] {
        std::fs::remove_file(format!("{}{f}", db.display())).ok();
    }
}
