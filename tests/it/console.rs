//! The console runs the shipped demo script end to end on a real SQLite store.

use baton::console::Console;
use tokio::io::BufReader;

use crate::support::{app, repo, sqlite, t};

async fn run(script: &str) -> String {
    run_in(script, &std::env::temp_dir()).await
}

/// Runs a script with charts written to `charts`.
async fn run_in(script: &str, charts: &std::path::Path) -> String {
    let mut console = Console::new(app(sqlite().await), t("2026-11-22T09:00:00Z"), Vec::new());
    console.chart_dir = charts.to_path_buf();
    console.run(BufReader::new(script.as_bytes()), true).await.expect("script runs");
    assert_eq!(console.failures, 0);
    String::from_utf8(console.into_output()).expect("utf-8")
}

/// Asserts that `needles` appear in `haystack` in this order.
fn in_order(haystack: &str, needles: &[&str]) {
    let mut from = 0;
    for n in needles {
        match haystack[from..].find(n) {
            Some(i) => from += i + n.len(),
            None => panic!("{n:?} not found (in order) in:\n{haystack}"),
        }
    }
}

#[tokio::test]
async fn the_demo_script_walks_both_handoffs_through_their_lives() {
    let script = std::fs::read_to_string(repo().join("demo/demo.baton")).expect("demo script");
    let charts = std::env::temp_dir().join(format!("baton-demo-charts-{}", std::process::id()));
    std::fs::create_dir_all(&charts).expect("chart dir");
    let out = run_in(&script, &charts).await;
    in_order(
        &out,
        &[
            "H-1 handed to Customer Success on sales-to-cs. Due for acceptance by Mon 30 Nov 13:00 EST.",
            "• arr: `lots` is not a number",
            "⏰ Mon 30 Nov 13:00 EST",
            "→ @ana (DM) · escalation",
            "⏰ Mon 30 Nov 15:00 EST",
            "For your attention as lead of Customer Success",
            "You own H-1 now.",
            "H-1 changed: arr 120000 → 125000.",
            "H-1 \"Acme Corp renewal\" was changed by Rita Reyes: arr 120000 → 125000.\n      the contract was signed at the higher figure",
            "account: Acme Corp · arr: 125000",
            "✗ the requester cannot approve their own handoff",
            "Approved (1 of 2).",
            "Approved. H-1 is done.",
            "State: done",
            "H-2 handed to Engineering on marketing-to-eng.",
            "⏰ Tue 01 Dec 13:00 GMT",
            "For your attention as lead of Engineering",
            "→ #eng-handoffs (Slack) · escalation",
            // The periodic jobs run as the clock passes them: Engineering's lead's morning catch-up.
            "⏰ Wed 02 Dec 08:00 GMT\n    → @eve (DM) · digest\n      Good morning, Engineering.\n      1 waiting to be accepted:",
            "→ Discord channel 1100000000000000001 · escalation",
            "thread \"recalibration H-2 (unacknowledged)\"",
            "Recalibration convened for H-2 \"Spring launch landing page\" (marketing-to-eng, Unacknowledged handoff)",
            "Eve Engel convenes, with Mia Moreau. Timebox 30m.",
            "mia> /stalls",
            "Stall history · last 90 days · 2026-09-04 to 2026-12-02 · seams to or from Marketing",
            "• marketing-to-eng: stalls opened 1, closed 0",
            "• H-2 · marketing-to-eng · Spring launch landing page · not accepted in time · owner none yet",
            "Recorded the unacknowledged recalibration of H-2: Eli Ek owns it now and must accept it.",
            "in thread \"recalibration H-2\"",
            "Follow-up: Eve Engel by 2026-12-04: add a Tuesday rota for the launch queue",
            "You own H-2 now.",
            "H-2 snoozed until",
            "✗ unknown command `frobnicate`",
            "ada> /stalls",
            "· every seam",
            "all: stalls opened 2, closed 2",
            "• sales-to-cs: stalls opened 1, closed 1",
            "unblock p50 2h30m, p90 2h30m (nothing to compare in the previous 90 days)",
            "1. capacity · 1 (previous 90 days: 0) new",
            "Nothing is stalled right now.",
            "ada> /stalls health",
            "4. Is every seam explicit and owned? ✓ yes",
            "5. Are recurring failure categories declining? ✗ no",
            "failure categories recorded: 1 in the last 90 days, 0 in the 90 days before",
            "rising: capacity",
            "ada> /stalls chart window=4w",
            "· last 28 days written to",
            "eli> /away until 2026-12-11 holiday",
            "You own H-2; Eve Engel was told.",
            "→ @eve (DM) · notice\n      Eli Ek is away through Fri 11 Dec (holiday) and owns H-2",
            "1 owned by people away or gone (reassign with `/handoff reassign H-<n> <person>`):\n      • H-2 \"Spring launch \
             landing page\" (marketing-to-eng) · accepted · Due for next update by Fri 04 Dec 15:00 CET · Eli Ek away \
             through Fri 11 Dec",
            "→ @eve (DM) · escalation\n      Reminder: H-2 \"Spring launch landing page\" (marketing-to-eng) is stalled",
            "Its owner, Eli Ek, is away through Fri 11 Dec: reassign it with `/handoff reassign H-2 <person>`.\n      [Snooze] [I'm blocked]",
            "Owner: Eli Ek (away through Fri 11 Dec).",
            "Emma Eriksen covers for you as lead (they were told)",
            "→ @emma (DM) · notice\n      Eve Engel is away through Fri 11 Dec (conference) and asked you to cover as lead of Engineering",
            "You cover for Eve Engel as lead of Engineering through Fri 11 Dec.",
            "• H-2 · Spring launch landing page · Eli Ek away through Fri 11 Dec",
            "H-2 is yours once you accept it: `/handoff accept H-2`.",
            "Emma Eriksen took H-2 \"Spring launch landing page\" over; it is no longer yours.",
            "You own H-2 now.",
        ],
    );
    let png = std::fs::read(charts.join("stalls-20261202-1400.png")).expect("the chart was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    std::fs::remove_dir_all(&charts).ok();
}

#[tokio::test]
async fn console_mistakes_get_precise_answers() {
    let out = run(
        "/handoff help snooze\n/ack H-1\nas nobody\ntz Mars/Olympus\ntz\nas rita\n/handoff accept\nclock tomorrow\n\
         clock +2147483647d\nclock 2062-11-22 09:00\nclock\n/ack H-7\nevents\nevents H-7\n",
    )
    .await;
    in_order(
        &out,
        &[
            // Help needs nobody to be acting.
            "usage: /snooze H-<n>",
            "✗ say who you are first: `as <person>`",
            "✗ there is no person `nobody`",
            "✗ `Mars/Olympus` is not an IANA time zone",
            "times show in UTC",
            "✗ name the handoff, like H-12\n    /handoff accept H-<n>",
            "✗ usage: clock +4h",
            "✗ the clock stops at the end of 9999: move it less far",
            "✗ the clock moves at most 731 days at once",
            "was the year mistyped? Move it in steps\n",
            "rita> clock\n  Sun 22 Nov 09:00 UTC",
            "✗ there is no handoff H-7",
            "✗ usage: events H-<n>",
            "✗ there is no handoff H-7",
        ],
    );
}

#[tokio::test]
async fn the_clock_goes_back_only_as_far_as_the_last_recorded_change() {
    // The console starts on 22 Nov; a script may set its story earlier while nothing is recorded.
    let out = run("clock 2026-11-20 09:00\nas rita\n\
         /handoff new sales-to-cs \"Acme\" account=Acme arr=1 segment=smb\nclock +1h\n\
         clock 2026-11-20 09:30\nclock\nclock 2026-11-20 08:59\nclock\n")
    .await;
    in_order(
        &out,
        &[
            "[Fri 20 Nov 09:00 UTC] rita> /handoff new",
            "Due for acceptance by Fri 20 Nov 13:00 EST",
            "Fri 20 Nov 09:30 UTC",
            "✗ the clock cannot go back before the last recorded change (Fri 20 Nov 2026 09:00 UTC)",
            "Fri 20 Nov 09:30 UTC",
        ],
    );
}

#[tokio::test]
async fn people_shows_who_is_away() {
    let out = run("as ben\n/away until 2026-11-27 conference\npeople\n/away back\npeople\n").await;
    in_order(&out, &["ben (Ben Brooks) · away through Fri 27 Nov", "Welcome back", "ben (Ben Brooks)\n"]);
}

#[tokio::test]
async fn a_snooze_holds_the_ladder_until_it_ends() {
    let out = run("tz America/New_York\nclock 2026-11-30 09:00\nas rita\n\
         /handoff new sales-to-cs \"Acme\" account=Acme arr=1 segment=smb\n\
         as ana\n/handoff accept H-1\n/snooze H-1 4h customer on holiday\nclock +3h\nclock +2h\nevents H-1\n")
    .await;
    in_order(
        &out,
        &[
            "snoozed until Mon 30 Nov 13:00 EST",
            "⏰ Mon 30 Nov 13:00 EST",
            "Your snooze on H-1 \"Acme\" is over",
            "snooze_ended",
        ],
    );
}

#[tokio::test]
async fn a_clock_read_to_the_nanosecond_still_runs_each_check_once() {
    // `baton console` starts at the real time, nanoseconds and all; the store keeps milliseconds.
    let start = t("2026-11-30T14:00:00Z") + chrono::Duration::nanoseconds(123_456_789);
    let mut console = Console::new(app(sqlite().await), start, Vec::new());
    let script = "as rita\n/handoff new sales-to-cs \"Acme\" account=Acme arr=1 segment=smb\nclock +5h\n";
    let ran =
        tokio::time::timeout(std::time::Duration::from_secs(20), console.run(BufReader::new(script.as_bytes()), true));
    ran.await.expect("the clock settles (it spun on the first check before)").expect("script runs");
    let out = String::from_utf8(console.into_output()).expect("utf-8");
    assert_eq!(out.matches("Reminder: H-1").count(), 3, "one reminder to each of the three in the queue:\n{out}");
}

/// Help on handing off lists the seams one may hand off on and what each needs; someone who
/// sends on none is told who does; a missing seam points there.
#[tokio::test]
async fn help_on_handing_off_lists_your_seams_and_their_contracts() {
    let out = run("as rita\n/handoff help new\n/handoff new\nas ana\n/handoff help new\n").await;
    in_order(
        &out,
        &[
            "Seams you hand off on:\n  • sales-to-cs: Sales → Customer Success, high-stakes. Needs account (CRM account name), \
             arr (a number: annual recurring revenue, USD), segment (one of smb, mid-market, enterprise). May take kickoff \
             (a date, YYYY-MM-DD: first customer meeting), crm (a link: link to the CRM record), source (a link: where \
             the work came from).",
            "✗ name the seam to hand off on (`/handoff help new` lists yours and what each needs)",
            "You hand off on no seam: the members of its sending function do (Engineering on eng-to-ops, Marketing on \
             marketing-to-eng, Sales on sales-to-cs).",
        ],
    );
    assert!(!out.contains("• eng-to-ops"), "Rita sends on sales-to-cs only:\n{out}");
}

/// What people type for the model's names (a phone's capital first letter, a function's name, a
/// person's full name) is read as the id it plainly means; what matches nothing is still refused
/// as typed.
#[tokio::test]
async fn names_are_read_in_any_case_and_functions_by_their_name() {
    let out = run(concat!(
        "clock 2026-11-30 14:00\n",
        "as rita\n",
        "/handoff new Sales-to-CS \"Acme\" account=Acme arr=1 segment=enterprise\n",
        "/handoff team Sales\n",
        "as carla\n",
        "/handoff reassign H-1 Ana\n",
        "/handoff team \"customer success\"\n",
        "/recalibrate H-1 Unacknowledged\n",
        "/handoff record H-1 decision=Resume assumption_broke=\"nobody watched\" category=Capacity follow_ups=\"Ben 2026-12-02 watch the queue\"\n",
        "/stalls category=CAPACITY owner=\"Ana Alves\" tier=High-Stakes\n",
        "/away until 2026-12-03 cover=@Ben\n",
        "/handoff reassign H-1 Anna\n",
    ))
    .await;
    in_order(
        &out,
        &[
            "H-1 handed to Customer Success on sales-to-cs.",
            "Sales: 0 open handoffs received, 1 sent",
            "H-1 reassigned to Ana Alves; they must accept it.",
            "Customer Success: 1 open handoff received, 0 sent",
            "Recalibration convened for H-1 with the unacknowledged playbook.",
            "Recorded the unacknowledged recalibration of H-1: work resumes",
            "Stall history · last 90 days · category=capacity · owner=ana · tier=high-stakes",
            "1. capacity · 1",
            "Ben Brooks covers for you as lead",
            "✗ there is no person `Anna` in the operating model",
        ],
    );
}
