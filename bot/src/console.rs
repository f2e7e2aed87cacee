//! `baton console`: the chat commands in a terminal, as any configured person, on a simulated clock.
//!
//! Moving the clock runs the stall sweeps at each instant something falls due, so reminders and
//! ladder steps appear when they would have. Outgoing messages travel through the same outbox as
//! the chat platforms' and are printed as delivered.

use std::io::Write;

use anyhow::Context as _;
use baton_core::config::parse_wall_duration;
use baton_core::history::{Filter, View, Viewer};
use baton_core::{Command, IntentKind, Recipient, parse};
use chrono::{DateTime, Datelike as _, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::app::{App, AppError};
use crate::deliver::plan;
use crate::jobs::JobClock;
use crate::report;

/// The simulated clock's last year: the core's clocks search a few years past any instant, and
/// every such instant must stay within what a time can hold.
const LAST_YEAR: i32 = 9999;

/// How far one `clock` moves forward (two years, stall history's longest window).
const FARTHEST_DAYS: i64 = 731;

/// Console-only commands, shown by `help`.
const CONSOLE_HELP: &str = "Console commands:
as <person>                 act as a configured person (e.g. `as rita`)
clock                       show the simulated time
clock +<n>d<n>h<n>m         move the clock forward (runs the stall checks and periodic jobs on the way)
clock YYYY-MM-DD HH:MM      move the clock to a time in the display zone (back too, until
                            something is recorded)
tz <IANA zone>              show times in a zone (e.g. `tz America/New_York`)
events H-<n>                the handoff's audit trail
people                      who you can act as (and who is away)
quit                        leave";

/// A console session.
#[derive(Debug)]
pub struct Console<W: Write> {
    app: App,
    now: DateTime<Utc>,
    tz: Tz,
    actor: Option<String>,
    out: W,
    /// Internal errors seen (a script run fails when any occurred).
    pub failures: usize,
    /// Where `/stalls chart` writes its PNG (the current directory unless set).
    pub chart_dir: std::path::PathBuf,
    /// The periodic jobs (digests, nudges, catch-ups), run as the clock passes their instants.
    jobs: JobClock,
}

impl<W: Write> Console<W> {
    /// A session starting at `now`, printing to `out`.
    pub fn new(app: App, now: DateTime<Utc>, out: W) -> Self {
        Console {
            app,
            now,
            tz: Tz::UTC,
            actor: None,
            out,
            failures: 0,
            chart_dir: ".".into(),
            jobs: JobClock::default(),
        }
    }

    /// The output, for tests.
    pub fn into_output(self) -> W {
        self.out
    }

    fn stamp(&self) -> String {
        self.now.with_timezone(&self.tz).format("%a %d %b %H:%M %Z").to_string()
    }

    /// Reads lines until end of input or `quit`. With `echo`, each line is printed as a transcript.
    pub async fn run<R: AsyncBufRead + Unpin>(&mut self, input: R, echo: bool) -> anyhow::Result<()> {
        let mut lines = input.lines();
        let mut after_comment = false;
        loop {
            if !echo {
                write!(self.out, "{}> ", self.actor.as_deref().unwrap_or("(nobody)"))?;
                self.out.flush()?;
            }
            let Some(line) = lines.next_line().await? else {
                break;
            };
            let line = line.trim();
            if echo && !line.is_empty() {
                if line.starts_with('#') {
                    writeln!(self.out, "{}{line}", if after_comment { "" } else { "\n" })?;
                    after_comment = true;
                    continue;
                }
                after_comment = false;
                writeln!(self.out, "[{}] {}> {line}", self.stamp(), self.actor.as_deref().unwrap_or("(nobody)"))?;
            }
            if matches!(line, "quit" | "exit") {
                break;
            }
            self.line(line).await?;
        }
        Ok(())
    }

    /// Runs one line.
    pub async fn line(&mut self, line: &str) -> anyhow::Result<()> {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        match first {
            "" => {}
            _ if first.starts_with('#') => {}
            "help" | "/help" if rest.is_empty() => {
                writeln!(self.out, "{CONSOLE_HELP}\n\n{}", crate::app::help(&self.app.model, None, None))?;
            }
            "as" => self.set_actor(&rest)?,
            "people" => {
                let away = self.app.store.absences(&self.app.model, self.now).await?;
                for p in self.app.model.people.values() {
                    let absent = away.through(&self.app.model, &p.id, self.now).map(|last| {
                        let cover = away.cover(&p.id, self.now).map(|c| self.app.model.name_of(c));
                        format!(" · away through {last}{}", cover.map(|c| format!(", {c} covers")).unwrap_or_default())
                    });
                    writeln!(self.out, "  {} ({}){}", p.id, p.name, absent.unwrap_or_default())?;
                }
            }
            "tz" => match rest.first().map(|z| (z, z.parse::<Tz>())) {
                Some((_, Ok(tz))) => self.tz = tz,
                Some((z, Err(_))) => {
                    writeln!(self.out, "  ✗ `{z}` is not an IANA time zone; name one like `tz Europe/Berlin`")?
                }
                None => writeln!(self.out, "  times show in {}; change with `tz Europe/Berlin`", self.tz)?,
            },
            "clock" => self.clock(&rest).await?,
            "events" => self.events(rest.first().copied()).await?,
            _ => self.command(line).await?,
        }
        Ok(())
    }

    fn set_actor(&mut self, rest: &[&str]) -> anyhow::Result<()> {
        match rest.first().map(|p| p.trim_start_matches('@')) {
            Some(id) if self.app.model.person(id).is_some() => self.actor = Some(id.to_string()),
            Some(id) => writeln!(self.out, "  ✗ there is no person `{id}`; `people` lists them")?,
            None => writeln!(self.out, "  ✗ usage: as <person>")?,
        }
        Ok(())
    }

    async fn clock(&mut self, rest: &[&str]) -> anyhow::Result<()> {
        if rest.is_empty() {
            writeln!(self.out, "  {}", self.stamp())?;
            return Ok(());
        }
        let joined = rest.join(" ");
        let target = if let Some(step) = joined.strip_prefix('+') {
            // Past what a time can hold is past the last year, refused below.
            parse_wall_duration(step)
                .filter(|d| *d > Duration::zero())
                .map(|d| self.now.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC))
        } else {
            NaiveDateTime::parse_from_str(&joined, "%Y-%m-%d %H:%M")
                .ok()
                .and_then(|n| self.tz.from_local_datetime(&n).earliest())
                .map(|t| t.with_timezone(&Utc))
        };
        match target {
            Some(t) if t < self.now => self.rewind(t).await,
            Some(t) if t.year() > LAST_YEAR => {
                Ok(writeln!(self.out, "  ✗ the clock stops at the end of {LAST_YEAR}: move it less far")?)
            }
            // Every job and check due on the way runs: a mistyped year would grind for hours.
            Some(t) if t - self.now > Duration::days(FARTHEST_DAYS) => Ok(writeln!(
                self.out,
                "  ✗ the clock moves at most {FARTHEST_DAYS} days at once (everything due on the way runs, each \
                 morning's catch-up and each week's digest): was the year mistyped? Move it in steps"
            )?),
            Some(t) => self.advance(t).await,
            None => Ok(writeln!(self.out, "  ✗ usage: clock +4h, clock +1d2h30m or clock 2026-12-01 09:00")?),
        }
    }

    /// Moves the clock back to `to`, which may not come before anything recorded: a script can
    /// start its story at a set time (the demo's Monday morning) whenever it is run.
    async fn rewind(&mut self, to: DateTime<Utc>) -> anyhow::Result<()> {
        match self.app.store.latest_event().await? {
            Some(last) if to < last => {
                let last = last.with_timezone(&self.tz).format("%a %d %b %Y %H:%M %Z");
                writeln!(
                    self.out,
                    "  ✗ the clock cannot go back before the last recorded change ({last}); move it forward, \
                     or start a new console"
                )?;
            }
            _ => self.now = to,
        }
        Ok(())
    }

    /// Moves the clock to `to`, sweeping at every instant something falls due on the way
    /// (a stall check, a message held for its recipient's working hours, a periodic job).
    async fn advance(&mut self, to: DateTime<Utc>) -> anyhow::Result<()> {
        // The jobs start from here (the clock may have been set back before anything happened).
        self.jobs.tick(&self.app, self.now).await?;
        for _ in 0..100_000 {
            let check = self.app.store.earliest_check().await?;
            let held = self.app.store.earliest_outbox().await?;
            let job = self.jobs.next_due(&self.app, self.now);
            match [check, held, job].into_iter().flatten().min() {
                Some(due) if due <= to => {
                    self.now = self.now.max(due);
                    self.app.sweep(self.now).await?;
                    self.jobs.tick(&self.app, self.now).await?;
                    if !self.app.store.pending_outbox(self.now, 1).await?.is_empty() {
                        writeln!(self.out, "  ⏰ {}", self.stamp())?;
                    }
                    self.deliver().await?;
                }
                _ => {
                    self.now = to;
                    return Ok(());
                }
            }
        }
        anyhow::bail!("stall checks did not settle before {to}")
    }

    async fn events(&mut self, id: Option<&str>) -> anyhow::Result<()> {
        let Some(id) = id.and_then(baton_core::command::parse_id) else {
            writeln!(self.out, "  ✗ usage: events H-<n>")?;
            return Ok(());
        };
        let events = self.app.store.events(id).await?;
        if events.is_empty() {
            writeln!(self.out, "  ✗ there is no handoff H-{id}")?;
        }
        for e in events {
            let when = e.at.with_timezone(&self.tz).format("%a %d %b %H:%M");
            let change = serde_json::to_string(&e.change)?;
            writeln!(self.out, "  {when} · {} via {} · {} · {change}", e.actor, e.surface.name(), e.state)?;
        }
        Ok(())
    }

    async fn command(&mut self, line: &str) -> anyhow::Result<()> {
        let command = match parse(line) {
            Ok(c) => c,
            Err(e) => {
                writeln!(self.out, "  ✗ {}\n    {} (type `help` for all commands)", e.message, e.usage)?;
                return Ok(());
            }
        };
        // Help needs nobody to be acting.
        if let Command::Help(topic) = &command {
            let help = crate::app::help(&self.app.model, self.actor.as_deref(), topic.as_deref());
            writeln!(self.out, "{}", indent(&help, "  "))?;
            return Ok(());
        }
        let Some(actor) = self.actor.clone() else {
            writeln!(self.out, "  ✗ say who you are first: `as <person>` (`people` lists them)")?;
            return Ok(());
        };
        let result = match &command {
            Command::Stalls(q) if q.view == View::Chart => self.chart(&actor, &q.filter).await,
            _ => self.app.handle(&actor, baton_core::Surface::Console, command, self.now, None).await,
        };
        match result {
            Ok(reply) => writeln!(self.out, "{}", indent(&reply, "  "))?,
            Err(AppError::Rejected(r)) => writeln!(self.out, "{}", indent(&format!("✗ {r}"), "  "))?,
            Err(AppError::Duplicate) => writeln!(self.out, "  ✗ already handled")?,
            Err(AppError::Internal(e)) => {
                self.failures += 1;
                tracing::error!("console command failed: {e:#}");
                writeln!(self.out, "  ✗ something went wrong on our side: {e:#}")?;
            }
        }
        self.deliver().await
    }

    /// `/stalls chart`: the chart a channel would get, written to a PNG file.
    async fn chart(&self, actor: &str, filter: &Filter) -> Result<String, AppError> {
        let Some(png) = self.app.chart_png(Viewer::Person(actor), filter, self.now).await? else {
            return Ok(crate::app::nothing_to_chart(filter));
        };
        let path = self.chart_dir.join(format!("stalls-{}.png", self.now.format("%Y%m%d-%H%M")));
        std::fs::write(&path, &png).with_context(|| format!("writing {}", path.display()))?;
        Ok(format!("{} written to {} ({} bytes)", report::chart_title(filter), path.display(), png.len()))
    }

    /// Prints every pending outbox message as delivered (folding floods into digests, as the
    /// delivery worker does) and records the delivery.
    async fn deliver(&mut self) -> anyhow::Result<()> {
        loop {
            let rows = self.app.store.pending_outbox(self.now, 100).await?;
            if rows.is_empty() {
                return Ok(());
            }
            for piece in plan(rows, self.app.model.delivery.digest_threshold, |_| true).into_iter().flatten() {
                let i = piece.intent();
                let to = match &i.to {
                    Recipient::Person(p) => format!("@{p} (DM)"),
                    Recipient::SlackChannel(c) => format!("{c} (Slack)"),
                    Recipient::DiscordChannel(c) => format!("Discord channel {c}"),
                    Recipient::Client(c) => format!("API client {c}'s webhook"),
                };
                let label = match (&i.kind, i.handoff) {
                    (IntentKind::Recalibration { playbook }, Some(h)) => {
                        format!("thread \"recalibration H-{h} ({playbook})\"")
                    }
                    (IntentKind::Thread, Some(h)) => format!("in thread \"recalibration H-{h}\""),
                    (IntentKind::Settled, _) => "earlier reminders edited (answered)".to_string(),
                    (IntentKind::Concluded, _) => "requests for the record edited (concluded)".to_string(),
                    (kind, _) => kind.name().to_string(),
                };
                let buttons: Vec<String> =
                    i.actions.iter().map(|a| format!("[{}]", crate::slack::blocks::button(*a).0)).collect();
                writeln!(self.out, "    → {to} · {label}")?;
                if !i.mentions.is_empty() {
                    let names: Vec<String> = i.mentions.iter().map(|p| format!("@{p}")).collect();
                    writeln!(self.out, "      {}", names.join(" "))?;
                }
                writeln!(self.out, "{}", indent(&i.text, "      "))?;
                if !buttons.is_empty() {
                    writeln!(self.out, "      {}", buttons.join(" "))?;
                }
                self.app.store.mark_delivered(&piece.ids(), self.now, None, None).await?;
            }
        }
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}")).collect::<Vec<_>>().join("\n")
}
