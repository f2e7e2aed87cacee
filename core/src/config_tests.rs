//! Config mistakes are all reported at once, each with file, line and field.

use crate::config::{Source, load};

fn errors(model: &str, playbooks: &[(&str, &str)]) -> Vec<String> {
    let pbs: Vec<Source<'_>> = playbooks.iter().map(|(name, text)| Source { name, text }).collect();
    match load(Source { name: "bad.toml", text: model }, &pbs) {
        Ok(_) => panic!("config accepted"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

const BROKEN: &str = r#"
failure_categories = ["capacity"]
colour = "blue"

[functions.sales]
name = "Sales"
lead = "sam"
members = ["rita", "ghost"]
timezone = "Mars/Olympus"
hours = { mon-fri = "17:00-09:00" }

[functions.cs]
name = "CS"
lead = "carla"
timezone = "UTC"
hours = { funday = "09:00-17:00" }

[people.sam]
name = "Sam"
roles = ["rep", "wizard"]

[people.carla]
name = "Carla"

[people.bot]
name = "Bot"
agent = true

[seams.s]
from = "sales"
to = "nowhere"
tier = "high-stakes"
approvers = ["sam"]
sla = { accept = "4 hours", update = "8h" }
fields = [
  { name = "account", type = "txt" },
  { name = "segment", type = "choice" },
]
ladder = [
  { after = "0h", action = "remind-owner" },
  { after = "2h", action = "convene", playbook = "missing" },
  { after = "1h", action = "shout" },
]

[tiers.risky]
ping_outside_hours = true

[delivery]
max_attempts = 0

[jobs.digest]
kind = "stall-digest"
cron = "0 9 * * 1"
timezone = "UTC"

[jobs.morning]
kind = "coffee"
cron = "0 0 9 * * Mon-Fri"
timezone = "UTC"
functions = ["sales", "legal"]

[api.crm]
token_env = "crm token"
acts_as = ["sales", "nobody"]
webhook_env = "https://hooks.example"

[api.agent]
acts_as = []
"#;

#[test]
fn every_mistake_is_reported_with_file_line_and_field() {
    let errs = errors(BROKEN, &[]);
    let expected = [
        "bad.toml:3: colour: unknown key `colour`",
        "bad.toml:8: functions.sales.members: unknown person `ghost`",
        "bad.toml:9: functions.sales.timezone: unknown time zone `Mars/Olympus`",
        "bad.toml:10: functions.sales.hours.mon-fri: invalid hours `17:00-09:00`",
        "bad.toml:16: functions.cs.hours.funday: unknown day `funday`",
        "bad.toml:20: people.sam.roles: unknown role `wizard`",
        "people.bot.supervisor: an agent must name the human who supervises it",
        "bad.toml:31: seams.s.to: unknown function `nowhere`",
        "seams.s.approvers: tier high-stakes needs 2 distinct approvers; 1 listed",
        "bad.toml:34: seams.s.sla.accept: invalid duration `4 hours`",
        "seams.s.sla.done: missing field `done`",
        "bad.toml:36: seams.s.fields.type: unknown field type `txt`",
        "bad.toml:37: seams.s.fields.options: a choice field needs `options",
        "bad.toml:41: seams.s.ladder.playbook: unknown playbook `missing`",
        "bad.toml:42: seams.s.ladder.action: unknown action `shout`",
        "bad.toml:45: tiers.risky: unknown tier",
        "bad.toml:49: delivery.max_attempts: expected a whole number from 1 to 100",
        "bad.toml:53: jobs.digest.cron: invalid cron expression `0 9 * * 1`",
        "bad.toml:57: jobs.morning.kind: unknown job kind `coffee`",
        "bad.toml:60: jobs.morning.functions: unknown function `legal`",
        "bad.toml:63: api.crm.token_env: `crm token` is not an environment variable's name",
        "bad.toml:64: api.crm.acts_as: `nobody` is neither a person nor a function",
        "api.agent.token_env: missing field `token_env`",
        "bad.toml:65: api.crm.webhook_env: `https://hooks.example` is not an environment variable's name",
        "bad.toml:68: api.agent.acts_as: whom does this client act for?",
    ];
    for e in expected {
        assert!(errs.iter().any(|x| x.contains(e)), "missing {e:?} in:\n{}", errs.join("\n"));
    }
    assert!(errs.len() >= expected.len());
}

#[test]
fn syntax_errors_and_bad_playbooks_name_their_file_and_line() {
    let errs =
        errors("[functions\nname = 1\n", &[("playbooks/p.toml", "id = \"p\"\ntitle = 3\nagenda = []\nextra = 1\n")]);
    let joined = errs.join("\n");
    assert!(joined.contains("bad.toml:1: (syntax)"), "{joined}");
    assert!(joined.contains("playbooks/p.toml:2: title: expected a string, found integer"), "{joined}");
    assert!(joined.contains("playbooks/p.toml:1: timebox: missing field `timebox`"), "{joined}");
    assert!(joined.contains("playbooks/p.toml:4: extra: unknown key `extra`"), "{joined}");
}

#[test]
fn bad_playbooks_are_reported_with_file_line_and_field() {
    let model = include_str!("../../baton.toml");
    let bad = r#"id = "bad"
title = "Bad"
timebox = "30m"
convener = "chief"
attendees = ["owner", "janitor"]
applies = { kinds = ["sleepy"], seams = ["nowhere"] }
artifact = [
  { name = "decision", type = "decision", required = true },
  { name = "mood", type = "feeling" },
]
opening = """
Hello {{ handoff.title
"""
"#;
    let errs = errors(model, &[("playbooks/bad.toml", bad)]);
    let joined = errs.join("\n");
    for expected in [
        "playbooks/bad.toml:4: convener: unknown role `chief`",
        "playbooks/bad.toml:5: attendees: unknown role `janitor`",
        "playbooks/bad.toml:6: applies.kinds: unknown stall kind `sleepy`",
        "playbooks/bad.toml:6: applies.seams: unknown seam `nowhere`",
        "playbooks/bad.toml:9: artifact.type: unknown artifact type `feeling`",
        "artifact: missing required artifact field `assumption_broke`",
        "artifact: missing required artifact field `category`",
        "playbooks/bad.toml:12: opening: template error",
    ] {
        assert!(joined.contains(expected), "missing {expected:?} in:\n{joined}");
    }
}

#[test]
fn a_zero_target_timebox_heads_up_or_timeout_is_refused_with_what_it_would_do() {
    let model = include_str!("../../baton.toml")
        .replace(r#"sla = { accept = "4h", update = "8h", done = "40h" }"#, r#"sla = { accept = "0h", update = "8h", done = "40h", gate = "0m", warn = "0h" }"#)
        .replace("[reviewers.launch-check]", "[reviewers.qa]\nkind = \"webhook\"\nversion = \"1\"\nurl_env = \"QA_URL\"\ntimeout = \"0s\"\n\n[reviewers.launch-check]");
    assert!(model.contains(r#"accept = "0h""#) && model.contains("[reviewers.qa]"), "the shipped model changed");
    let playbook =
        include_str!("../../playbooks/unacknowledged.toml").replace(r#"timebox = "30m""#, r#"timebox = "0m""#);
    let agent = include_str!("../../playbooks/agent-stalled.toml");
    // The playbook with a mistake is still known to the ladders that name it.
    let errs = errors(&model, &[("playbooks/unacknowledged.toml", &playbook), ("playbooks/agent-stalled.toml", agent)]);
    let joined = errs.join("\n");
    for expected in [
        "seams.sales-to-cs.sla.accept: a target of 0h is breached as its clock starts: give a duration above 0, like 4h",
        "seams.sales-to-cs.sla.gate: a target of 0h is breached as its clock starts",
        "seams.sales-to-cs.sla.warn: a heads-up comes before a target is due: give a duration above 0, like 1h",
        "reviewers.qa.timeout: a timeout of 0s fails every review before it is asked: give a duration above 0, like 10s",
        "playbooks/unacknowledged.toml:6: timebox: a timebox of 0m runs out as the recalibration opens: give a duration above 0, like 30m",
    ] {
        assert!(joined.contains(expected), "missing {expected:?} in:\n{joined}");
    }
    assert_eq!(errs.len(), 5, "{joined}");
}

/// A heads-up no shorter than every target would come before each clock starts: never sent. One
/// shorter than some targets only is kept (it warns of those).
#[test]
fn a_heads_up_as_long_as_every_target_is_refused() {
    let shipped = r#"sla = { accept = "2h", update = "4h", done = "24h", warn = "30m" }"#;
    assert!(include_str!("../../baton.toml").contains(shipped), "the shipped model changed");
    let with = |sla: &str| errors(&include_str!("../../baton.toml").replace(shipped, sla), &[]).join("\n");
    let never = with(r#"sla = { accept = "2h", update = "4h", done = "24h", warn = "30h" }"#);
    assert!(
        never.contains(
            "seams.eng-to-ops.sla.warn: a heads-up 30h before a target would never come: no target is longer \
             (the longest is 24h); give less, like 30m"
        ),
        "{never}"
    );
    let some = with(r#"sla = { accept = "2h", update = "4h", done = "24h", warn = "3h" }"#);
    assert!(!some.contains(".sla."), "{some}");
}

#[test]
fn an_agent_cannot_be_an_approver() {
    let model = include_str!("../../baton.toml")
        .replace(r#"approvers = ["omar", "olga"]"#, r#"approvers = ["omar", "olga", "deploy-bot"]"#);
    assert!(model.contains("deploy-bot\"]"), "the shipped model changed");
    let pbs = [
        ("playbooks/unacknowledged.toml", include_str!("../../playbooks/unacknowledged.toml")),
        ("playbooks/agent-stalled.toml", include_str!("../../playbooks/agent-stalled.toml")),
    ];
    let errs = errors(&model, &pbs);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].ends_with("seams.eng-to-ops.approvers: `deploy-bot` is an agent: a gate's approvals come from people"),
        "{errs:?}"
    );
}

#[test]
fn durations_read_units_and_refuse_what_they_cannot_represent() {
    use crate::config::{parse_duration, parse_wall_duration};
    use chrono::Duration;
    assert_eq!(parse_duration("1h30m"), Some(Duration::minutes(90)));
    assert_eq!(parse_wall_duration("1d2h"), Some(Duration::hours(26)));
    assert_eq!(parse_duration("2d"), None, "business time has no days");
    // A unit times a count that overflows, and a sum that overflows, are refused, not a panic.
    assert_eq!(parse_wall_duration("2147483647d2147483647d2147483647d"), Some(Duration::days(3 * 2_147_483_647)));
    assert_eq!(parse_wall_duration(&"2147483647d".repeat(60)), None);
    assert_eq!(parse_duration(&"2147483647h".repeat(1300)), None);
}

#[test]
fn a_ladder_posts_to_the_seams_channel_or_its_receiving_functions() {
    let shipped = include_str!("../../baton.toml");
    let without = shipped.replace("slack_channel = \"#cs-handoffs\"\n", "");
    assert_ne!(without, shipped);
    let errs = errors(&without, &[]);
    assert!(
        errs.iter().any(|e| e.contains(
            "seams.sales-to-cs.ladder.action: `post-channel` needs `slack_channel` on the seam or on function `customer-success`"
        )),
        "{errs:?}"
    );
    let own = without.replace("[seams.sales-to-cs]\n", "[seams.sales-to-cs]\nslack_channel = \"#cs-enterprise\"\n");
    let playbooks: Vec<Source<'_>> = crate::tests::PLAYBOOKS.iter().map(|(name, text)| Source { name, text }).collect();
    let model = load(Source { name: "own.toml", text: &own }, &playbooks).expect("the seam's own channel serves");
    assert_eq!(model.seams["sales-to-cs"].slack_channel.as_deref(), Some("#cs-enterprise"));
    assert_eq!(model.functions["customer-success"].slack_channel, None);
}

#[test]
fn one_open_per_names_required_fields_of_the_contract_once_each() {
    let shipped = r#"one_open_per = ["account"]"#;
    let bad = r#"one_open_per = ["account", "crm", "acount", "account"]"#;
    assert!(include_str!("../../baton.toml").contains(shipped), "the shipped model changed");
    let model = include_str!("../../baton.toml").replace(shipped, bad);
    let line = model.lines().position(|l| l.starts_with(bad)).expect("the line") + 1;
    let mut errs: Vec<String> = errors(&model, &[]).into_iter().filter(|e| e.contains("one_open_per")).collect();
    errs.sort();
    let at = format!("bad.toml:{line}: seams.sales-to-cs.one_open_per:");
    assert_eq!(
        errs,
        [
            format!("{at} `account` is named twice"),
            format!("{at} `acount` is not a field of the seam's contract; fields: account, arr, segment, kickoff, crm"),
            format!("{at} `crm` is optional: a handoff without it could not be told apart; make it `required = true`"),
        ]
    );
}

#[test]
fn retention_keeps_messages_and_request_keys_a_day_at_least() {
    let shipped = include_str!("../../baton.toml");
    let pbs: Vec<Source<'_>> = crate::tests::PLAYBOOKS.iter().map(|(name, text)| Source { name, text }).collect();
    let load_with = |extra: &str| load(Source { name: "bad.toml", text: &format!("{shipped}{extra}") }, &pbs);
    let default = load_with("").expect("the shipped model").retention;
    assert_eq!((default.messages.num_days(), default.request_keys.num_days()), (90, 30));
    let set = load_with("\n[retention]\nmessages = \"52w\"\nrequest_keys = \"7d\"\n").expect("set").retention;
    assert_eq!((set.messages.num_days(), set.request_keys.num_days()), (364, 7));

    let errs =
        errors(&format!("{shipped}\n[retention]\nmessages = \"12h\"\nrequest_keys = \"0d\"\nlogs = \"1d\"\n"), &[]);
    let line = shipped.lines().count() + 3;
    let ours: Vec<&String> = errs.iter().filter(|e| e.contains("retention")).collect();
    assert_eq!(
        ours,
        [
            &format!(
                "bad.toml:{line}: retention.messages: `12h` is not a time to keep messages: write days or weeks, a \
                 day at least, like 90d"
            ),
            &format!(
                "bad.toml:{}: retention.request_keys: `0d` is not a time to keep request_keys: write days or weeks, \
                 a day at least, like 30d",
                line + 1
            ),
            &format!(
                "bad.toml:{}: retention.logs: unknown key `logs`; expected one of: messages, request_keys",
                line + 2
            ),
        ],
        "{errs:?}"
    );
}
