//! Every environment variable Baton reads, in one place (the README's configuration reference
//! lists the same names).

/// Path of the operating model.
pub const CONFIG: &str = "BATON_CONFIG";
/// Default operating model path.
pub const DEFAULT_CONFIG: &str = "baton.toml";
/// Folder of playbook files (default: `playbooks/` beside the operating model).
pub const PLAYBOOKS_DIR: &str = "BATON_PLAYBOOKS_DIR";
/// `postgres://…` or `sqlite://…`.
pub const DATABASE_URL: &str = "BATON_DATABASE_URL";
/// Default store: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://baton.db";
/// Log filter (`info`, `baton=debug`, …).
pub const LOG: &str = "RUST_LOG";
/// Log format: `text` or `json`.
pub const LOG_FORMAT: &str = "BATON_LOG_FORMAT";
/// Address `baton serve` binds (port 0 picks a free one and logs it).
pub const LISTEN: &str = "BATON_LISTEN";
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Longest sleep of the scheduler and delivery worker, like `5s` or `500ms`.
pub const POLL_INTERVAL: &str = "BATON_POLL_INTERVAL";
/// How long a delivery claim lasts before another replica may retry the message, like `60s`.
pub const DELIVERY_LEASE: &str = "BATON_DELIVERY_LEASE";
/// Slack bot token (`xoxb-…`); Slack is not started without it.
pub const SLACK_BOT_TOKEN: &str = "SLACK_BOT_TOKEN";
/// Slack signing secret; Slack's HTTP endpoints refuse every request without it.
pub const SLACK_SIGNING_SECRET: &str = "SLACK_SIGNING_SECRET";
/// Slack app-level token (`xapp-…`); when set, Baton also receives Slack through Socket Mode.
pub const SLACK_APP_TOKEN: &str = "SLACK_APP_TOKEN";
/// Slack Web API base.
pub const SLACK_API_BASE_URL: &str = "SLACK_API_BASE_URL";
/// Default Slack Web API base.
pub const DEFAULT_SLACK_API_BASE_URL: &str = "https://slack.com/api";
/// Discord bot token; Discord is not started without it.
pub const DISCORD_BOT_TOKEN: &str = "DISCORD_BOT_TOKEN";
/// Discord application public key (hex); verifies requests to `/discord/interactions`.
pub const DISCORD_PUBLIC_KEY: &str = "DISCORD_PUBLIC_KEY";
/// Discord application id (follow-ups, command registration).
pub const DISCORD_APPLICATION_ID: &str = "DISCORD_APPLICATION_ID";
/// `http` (default: interactions arrive at `/discord/interactions`) or `gateway`.
pub const DISCORD_TRANSPORT: &str = "BATON_DISCORD_TRANSPORT";
/// Discord REST base.
pub const DISCORD_API_BASE_URL: &str = "DISCORD_API_BASE_URL";
/// Default Discord REST base.
pub const DEFAULT_DISCORD_API_BASE_URL: &str = "https://discord.com";

/// Token that opens the read-only web dashboard at `/dashboard`; the dashboard is off without it.
pub const DASHBOARD_TOKEN: &str = "BATON_DASHBOARD_TOKEN";

/// Every variable above, for tests that check deployment files name only real ones.
pub const ALL: &[&str] = &[
    CONFIG,
    PLAYBOOKS_DIR,
    DATABASE_URL,
    LOG,
    LOG_FORMAT,
    LISTEN,
    POLL_INTERVAL,
    DELIVERY_LEASE,
    DASHBOARD_TOKEN,
    SLACK_BOT_TOKEN,
    SLACK_SIGNING_SECRET,
    SLACK_APP_TOKEN,
    SLACK_API_BASE_URL,
    DISCORD_BOT_TOKEN,
    DISCORD_PUBLIC_KEY,
    DISCORD_APPLICATION_ID,
    DISCORD_TRANSPORT,
    DISCORD_API_BASE_URL,
];

/// Whether `value` is an http(s) address, as every URL variable above must be.
pub fn is_http_address(value: &str) -> bool {
    reqwest::Url::parse(value).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// An instant given on the command line: RFC 3339, or a date for the end of that day (UTC).
pub fn parse_instant(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let s = s.trim();
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(at.to_utc());
    }
    let day = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not an instant: write 2026-11-30T12:00:00Z, or a date like 2026-11-30"))?;
    let end = day.and_hms_milli_opt(23, 59, 59, 999).ok_or_else(|| format!("`{s}` has no end of day"))?;
    Ok(end.and_utc())
}

#[cfg(test)]
mod tests {
    use super::parse_instant;

    #[test]
    fn an_instant_is_rfc_3339_or_a_date_meaning_its_end() {
        let at = |s: &str| parse_instant(s).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        assert_eq!(at("2026-11-30T12:00:00+01:00").as_deref(), Ok("2026-11-30T11:00:00.000Z"));
        assert_eq!(at(" 2026-11-30 ").as_deref(), Ok("2026-11-30T23:59:59.999Z"));
        let refused = at("yesterday").expect_err("not an instant");
        assert!(refused.contains("write 2026-11-30T12:00:00Z, or a date like 2026-11-30"), "{refused}");
        assert!(at("2026-02-30").is_err());
    }
}
