//! Stall history: what a report asks for ([`StallsQuery`]), who may see which seams ([`scope`]),
//! and the arithmetic and wording of the answer ([`Report`], [`Health`]). The `baton` crate
//! gathers the numbers from the store; nothing here does IO or reads the clock.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::decide::Rejection;
use crate::model::{LadderAction, OperatingModel, RiskTier, Role, SeamId};

/// Days a report covers unless `window=` says otherwise.
pub const DEFAULT_DAYS: u32 = 90;
/// The longest window a report may cover.
pub const MAX_DAYS: u32 = 730;
/// Weekly throughput whose coefficient of variation is at most this counts as stable.
pub const STABLE_CV: f64 = 0.5;
/// Throughput stability is judged over at least this many weeks (and one done a week on average).
pub const JUDGE_WEEKS: usize = 4;

/// How `/stalls` is written.
pub const USAGE: &str = "/stalls [health|chart] [seam=<id>] [function=<id>] [category=<category>] [owner=<person>] \
                         [tier=<reversible|irreversible|high-stakes>] [window=<90d|12w>]";

/// Which answer `/stalls` gives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum View {
    /// Numbers per seam, categories, what is stalled now.
    #[default]
    Summary,
    /// The five questions an operating model is judged on.
    Health,
    /// Weekly time to unblock as a picture.
    Chart,
}

/// What part of the history a report covers. The window ends at the moment of asking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// One seam.
    pub seam: Option<String>,
    /// Seams from or to one function.
    pub function: Option<String>,
    /// Handoffs whose recalibration recorded this failure category.
    pub category: Option<String>,
    /// Handoffs owned by this person.
    pub owner: Option<String>,
    /// Handoffs of this risk tier.
    pub tier: Option<RiskTier>,
    /// Length of the window in days; the trend compares with the equal window before it.
    pub days: u32,
}

impl Default for Filter {
    fn default() -> Self {
        Filter { seam: None, function: None, category: None, owner: None, tier: None, days: DEFAULT_DAYS }
    }
}

/// A number of days in words: "1 day", "90 days".
struct Days(u32);

impl std::fmt::Display for Days {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            1 => f.write_str("1 day"),
            n => write!(f, "{n} days"),
        }
    }
}

impl Filter {
    /// The filter with what it names written as the operating model's ids (see
    /// [`crate::Command::resolved`]): `function=Sales`, `owner=Ana`, `category=Capacity`.
    pub fn resolved(mut self, model: &OperatingModel) -> Filter {
        type Find = for<'m> fn(&'m OperatingModel, &str) -> Option<&'m str>;
        let as_id = |typed: &mut Option<String>, find: Find| {
            if let Some(id) = typed.as_deref().and_then(|t| find(model, t)) {
                *typed = Some(id.to_string());
            }
        };
        as_id(&mut self.seam, OperatingModel::seam_named);
        as_id(&mut self.function, OperatingModel::function_named);
        as_id(&mut self.category, OperatingModel::category_named);
        as_id(&mut self.owner, OperatingModel::person_named);
        self
    }

    /// The filter in the words it was written with (`seam=x window=30d`), for headings.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("last {}", Days(self.days))];
        for (key, value) in [
            ("seam", self.seam.as_deref()),
            ("function", self.function.as_deref()),
            ("category", self.category.as_deref()),
            ("owner", self.owner.as_deref()),
            ("tier", self.tier.map(RiskTier::name)),
        ] {
            if let Some(v) = value {
                parts.push(format!("{key}={v}"));
            }
        }
        parts.join(" · ")
    }

    /// Start of the window ending at `now`: midnight UTC `days - 1` days before today, so the
    /// window is today so far plus whole days (which the store keeps rolled up).
    pub fn from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
        today - Duration::days(i64::from(self.days) - 1)
    }

    /// Start of the equal window before it (the trend's baseline).
    pub fn previous_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.from(now) - Duration::days(self.days.into())
    }
}

/// A parsed `/stalls` request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StallsQuery {
    /// Which answer.
    pub view: View,
    /// Over what.
    pub filter: Filter,
}

/// Parses the words after `/stalls` (or `baton report`): an optional view and `key=value` filters.
pub fn parse_query(words: &[String]) -> Result<StallsQuery, String> {
    let mut q = StallsQuery::default();
    let mut seen: Vec<String> = Vec::new();
    for word in words {
        let key = word.split_once('=').map_or("view", |(k, _)| k).to_ascii_lowercase();
        if seen.contains(&key) {
            return Err(match key.as_str() {
                "view" => format!("`{word}` is a second view: give one"),
                _ => format!("`{word}` repeats `{key}=`: give each filter once"),
            });
        }
        seen.push(key);
        let Some((key, value)) = word.split_once('=') else {
            q.view = match word.to_ascii_lowercase().as_str() {
                "health" => View::Health,
                "chart" => View::Chart,
                "summary" => View::Summary,
                _ => return Err(format!("`{word}` is not a view or a filter; views are health and chart")),
            };
            continue;
        };
        let value = value.trim().trim_start_matches('@').to_string();
        if value.is_empty() {
            return Err(format!("`{key}=` needs a value"));
        }
        let f = &mut q.filter;
        match key.to_ascii_lowercase().as_str() {
            "seam" => f.seam = Some(value),
            "function" => f.function = Some(value),
            "category" => f.category = Some(value),
            "owner" => f.owner = Some(value),
            "tier" => {
                f.tier = Some(RiskTier::parse(&value).ok_or_else(|| {
                    format!("there is no tier `{value}`; tiers are reversible, irreversible and high-stakes")
                })?)
            }
            "window" => f.days = parse_window(&value)?,
            other => {
                return Err(format!(
                    "there is no filter `{other}`; filters are seam, function, category, owner, tier and window"
                ));
            }
        }
    }
    Ok(q)
}

/// `90d`, `12w` or `90` (days).
fn parse_window(value: &str) -> Result<u32, String> {
    match days(value) {
        Some(d) if (1..=MAX_DAYS).contains(&d) => Ok(d),
        _ => Err(format!("`window={value}` is not a window of 1 to {MAX_DAYS} days: write 90d or 12w")),
    }
}

/// A number of days written as days or weeks (`90d`, `12w`; a bare number is days), as
/// `window=` and `[retention]` take them.
pub(crate) fn days(value: &str) -> Option<u32> {
    let (digits, unit) = match value.strip_suffix(['d', 'D']) {
        Some(d) => (d, 1),
        None => value.strip_suffix(['w', 'W']).map_or((value, 1), |w| (w, 7)),
    };
    digits.parse::<u32>().ok().and_then(|n| n.checked_mul(unit))
}

/// The seams a report covers, after the filter and the viewer's access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scope {
    /// Seams covered.
    pub seams: Vec<SeamId>,
    /// Whether the viewer sees the whole organisation (an architect, or the command line).
    pub everything: bool,
    /// Who sees what, in words ("every seam", "seams to or from Sales").
    pub described: String,
}

/// Who asks for a report.
#[derive(Clone, Copy, Debug)]
pub enum Viewer<'a> {
    /// A configured person: architects see every seam, others the seams of their own functions.
    Person(&'a str),
    /// The command line and the dashboard (whoever holds the database or the token).
    Operator,
}

/// Checks the filter against the model and narrows it to what `viewer` may see. Refusals say what
/// was wrong, or what the viewer may see instead.
pub fn scope(model: &OperatingModel, viewer: Viewer<'_>, f: &Filter) -> Result<Scope, Rejection> {
    let refuse = |m: String| Err(Rejection::History(m));
    let known = |names: Vec<&String>| names.into_iter().map(String::as_str).collect::<Vec<_>>().join(", ");
    if let Some(s) = &f.seam
        && !model.seams.contains_key(s)
    {
        return Err(Rejection::UnknownSeam { given: s.clone(), known: known(model.seams.keys().collect()) });
    }
    if let Some(func) = &f.function
        && !model.functions.contains_key(func)
    {
        return refuse(format!(
            "there is no function `{func}`; functions: {}",
            known(model.functions.keys().collect())
        ));
    }
    if let Some(c) = &f.category
        && !model.categories.contains(c)
    {
        return refuse(format!("there is no failure category `{c}`; categories: {}", model.categories.join(", ")));
    }
    if let Some(o) = &f.owner
        && model.person(o).is_none()
    {
        return Err(Rejection::UnknownPerson(o.clone()));
    }
    let mine: Option<Vec<&str>> = match viewer {
        Viewer::Operator => None,
        Viewer::Person(p) => match model.person(p) {
            None => return Err(Rejection::UnknownActor),
            Some(person) if person.has_role(Role::Architect) => None,
            Some(_) => Some(model.functions.values().filter(|x| x.has_member(p)).map(|x| x.id.as_str()).collect()),
        },
    };
    let names = |ids: &[&str]| -> Vec<String> {
        ids.iter().map(|id| model.functions.get(*id).map_or_else(|| id.to_string(), |x| x.name.clone())).collect()
    };
    if let Some(mine) = &mine {
        if mine.is_empty() {
            return refuse(
                "stall history is shown to architects and to the members of the functions a seam joins; you are in \
                 no function, so ask a workflow architect"
                    .into(),
            );
        }
        let yours = names(mine).join(" and ");
        let outside = |what: String| {
            refuse(format!(
                "you can see the stall history of seams to or from {yours} only (architects see every seam); {what}"
            ))
        };
        if let Some(s) = f.seam.as_ref().and_then(|s| model.seams.get(s))
            && !mine.contains(&s.from.as_str())
            && !mine.contains(&s.to.as_str())
        {
            return outside(format!("{} joins {}", s.id, names(&[&s.from, &s.to]).join(" and ")));
        }
        if let Some(func) = &f.function
            && !mine.contains(&func.as_str())
        {
            return outside(format!("you are not in {}", names(&[func]).join("")));
        }
    }
    let seams = model
        .seams
        .values()
        .filter(|s| f.seam.as_ref().is_none_or(|x| *x == s.id))
        .filter(|s| f.function.as_ref().is_none_or(|x| *x == s.from || *x == s.to))
        .filter(|s| mine.as_ref().is_none_or(|m| m.contains(&s.from.as_str()) || m.contains(&s.to.as_str())))
        .map(|s| s.id.clone())
        .collect();
    let described = match &mine {
        None => "every seam".to_string(),
        Some(m) => format!("seams to or from {}", names(m).join(" and ")),
    };
    Ok(Scope { seams, everything: mine.is_none(), described })
}

/// Nearest-rank p50 and p90 of some durations, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// How many durations.
    pub count: u64,
    /// Median.
    pub p50_secs: Option<i64>,
    /// 90th percentile.
    pub p90_secs: Option<i64>,
}

impl Percentiles {
    /// From sorted values (the store computes them in SQL; this is the same rule for small sets).
    pub fn of_sorted(sorted: &[i64]) -> Self {
        Percentiles { count: sorted.len() as u64, p50_secs: percentile(sorted, 0.5), p90_secs: percentile(sorted, 0.9) }
    }
}

/// Durations are rolled up in buckets this much wider than the one before (bucket `b ≥ 1` holds
/// `[g^(b-1), g^b)` seconds), so a percentile read from a histogram is within 2.5% of the truth.
pub const BUCKET_GROWTH: f64 = 1.05;

/// The histogram bucket of a duration in seconds (`0` for under a second).
pub fn bucket(secs: i64) -> i64 {
    if secs < 1 { 0 } else { ((secs as f64).ln() / BUCKET_GROWTH.ln()).floor() as i64 + 1 }
}

/// The duration a bucket stands for: the geometric middle of its bounds.
pub fn bucket_value(b: i64) -> i64 {
    if b < 1 { 0 } else { BUCKET_GROWTH.powf(b as f64 - 0.5).round() as i64 }
}

impl Percentiles {
    /// Nearest-rank p50 and p90 of a histogram (`bucket -> count`), each its bucket's value.
    pub fn of_histogram(h: &std::collections::BTreeMap<i64, u64>) -> Self {
        let count: u64 = h.values().sum();
        let at = |p: f64| {
            let rank = ((p * count as f64).ceil() as u64).clamp(1, count.max(1));
            let mut seen = 0;
            h.iter()
                .find(|(_, n)| {
                    seen += **n;
                    seen >= rank
                })
                .map(|(b, _)| bucket_value(*b))
        };
        if count == 0 {
            return Percentiles::default();
        }
        Percentiles { count, p50_secs: at(0.5), p90_secs: at(0.9) }
    }
}

/// Nearest-rank percentile of sorted values: the value at rank ⌈p·n⌉.
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// A duration measured in this window and the one before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Measure {
    /// This window.
    pub current: Percentiles,
    /// The equal window before.
    pub previous: Percentiles,
    /// Change of the p50 against the previous window, in percent (negative: shorter).
    pub p50_change_pct: Option<i64>,
}

impl Measure {
    /// Pairs the two windows and works out the trend.
    pub fn new(current: Percentiles, previous: Percentiles) -> Self {
        let p50_change_pct = match (current.p50_secs, previous.p50_secs) {
            (Some(c), Some(p)) if p > 0 => Some(((c - p) as f64 * 100.0 / p as f64).round() as i64),
            _ => None,
        };
        Measure { current, previous, p50_change_pct }
    }

    /// "p50 2h, p90 6h (12% shorter than the previous 90 days: 2h20m)".
    fn brief(&self, days: u32) -> String {
        let Some(p50) = self.current.p50_secs else {
            return "none".into();
        };
        let p90 = self.current.p90_secs.unwrap_or(p50);
        let trend = match (self.p50_change_pct, self.previous.p50_secs) {
            (Some(0), _) => format!("as in the previous {}", Days(days)),
            (Some(c), Some(p)) => format!(
                "{}% {} than the previous {}: {}",
                c.abs(),
                if c < 0 { "shorter" } else { "longer" },
                Days(days),
                span(p)
            ),
            _ => format!("nothing to compare in the previous {}", Days(days)),
        };
        format!("p50 {}, p90 {} ({trend})", span(p50), span(p90))
    }
}

/// Handoffs done per full week of the window, and how steady that is.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Throughput {
    /// Done per week, oldest week first.
    pub weekly_done: Vec<u64>,
    /// Mean per week.
    pub mean: f64,
    /// Coefficient of variation (standard deviation / mean); `None` with no weeks or nothing done.
    pub cv: Option<f64>,
}

impl Throughput {
    /// From weekly counts, oldest first.
    pub fn new(weekly_done: Vec<u64>) -> Self {
        let n = weekly_done.len() as f64;
        let mean = if weekly_done.is_empty() { 0.0 } else { weekly_done.iter().sum::<u64>() as f64 / n };
        let cv = (mean > 0.0).then(|| {
            let var = weekly_done.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
            var.sqrt() / mean
        });
        Throughput { weekly_done, mean, cv }
    }

    /// Stable when the CV is at most [`STABLE_CV`]; `None` when there is too little to judge
    /// (under [`JUDGE_WEEKS`] weeks, or under one handoff done per week on average).
    pub fn stable(&self) -> Option<bool> {
        let enough = self.weekly_done.len() >= JUDGE_WEEKS && self.mean >= 1.0;
        self.cv.filter(|_| enough).map(|cv| cv <= STABLE_CV)
    }

    fn describe(&self) -> String {
        let weeks = self.weekly_done.len();
        match (self.cv, self.stable()) {
            (None, _) if weeks == 0 => "throughput needs a window of a week or more".into(),
            (None, _) => format!("nothing done in {weeks} week{}", if weeks == 1 { "" } else { "s" }),
            (Some(cv), None) => format!(
                "done/week {:.1}, CV {cv:.2} (too few {} to judge stability)",
                self.mean,
                if weeks < JUDGE_WEEKS { "weeks" } else { "done" }
            ),
            (Some(cv), Some(stable)) => {
                format!("done/week {:.1}, CV {cv:.2} ({})", self.mean, if stable { "stable" } else { "unsteady" })
            }
        }
    }
}

/// One seam's numbers (or all covered seams together, as seam `all`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SeamHistory {
    /// Seam id, or `all`.
    pub seam: String,
    /// Stall episodes that began in the window.
    pub stalls_opened: u64,
    /// Stall episodes that ended in the window.
    pub stalls_closed: u64,
    /// From creation to first acceptance, for handoffs accepted in the window.
    pub time_to_accept: Measure,
    /// From breach to unblock, for episodes closed in the window.
    pub time_to_unblock: Measure,
    /// Done per week.
    pub throughput: Throughput,
}

/// How often a failure category was recorded, now and before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CategoryTrend {
    /// Category.
    pub category: String,
    /// Recorded in this window.
    pub current: u64,
    /// Recorded in the equal window before.
    pub previous: u64,
    /// Rising, falling, steady, new or gone.
    pub direction: Direction,
}

/// Which way a count moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// More than before.
    Rising,
    /// Fewer than before.
    Falling,
    /// As before.
    Steady,
    /// Not seen before.
    New,
    /// Not seen now.
    Gone,
}

impl Direction {
    /// Compares two counts.
    pub fn of(current: u64, previous: u64) -> Self {
        match (current, previous) {
            (c, 0) if c > 0 => Direction::New,
            (0, p) if p > 0 => Direction::Gone,
            (c, p) if c > p => Direction::Rising,
            (c, p) if c < p => Direction::Falling,
            _ => Direction::Steady,
        }
    }

    fn arrow(self) -> &'static str {
        match self {
            Direction::Rising => "↑ rising",
            Direction::Falling => "↓ falling",
            Direction::Steady => "→ steady",
            Direction::New => "new",
            Direction::Gone => "gone",
        }
    }
}

/// Ranks categories: most recorded now first, then by name.
pub fn rank_categories(counts: impl IntoIterator<Item = (String, u64, u64)>) -> Vec<CategoryTrend> {
    let mut out: Vec<CategoryTrend> = counts
        .into_iter()
        .map(|(category, current, previous)| CategoryTrend {
            direction: Direction::of(current, previous),
            category,
            current,
            previous,
        })
        .collect();
    out.sort_by(|a, b| b.current.cmp(&a.current).then(b.previous.cmp(&a.previous)).then(a.category.cmp(&b.category)));
    out
}

/// A handoff stalled right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StalledNow {
    /// `H-12`.
    pub handoff: String,
    /// Seam.
    pub seam: String,
    /// Title.
    pub title: String,
    /// Owner, if accepted.
    pub owner: Option<String>,
    /// What breached, in words.
    pub stall: String,
    /// Breach instant.
    pub since: DateTime<Utc>,
}

/// A stall-history report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// What was asked.
    pub filter: Filter,
    /// Who sees what.
    pub scope: String,
    /// Window start.
    pub from: DateTime<Utc>,
    /// Window end (when asked).
    pub to: DateTime<Utc>,
    /// All covered seams together.
    pub all: SeamHistory,
    /// Per seam, by id.
    pub seams: Vec<SeamHistory>,
    /// Recurring failure categories, ranked.
    pub categories: Vec<CategoryTrend>,
    /// What is stalled now.
    pub stalled_now: Vec<StalledNow>,
}

impl Report {
    /// ` · every seam`, ` · seams to or from Sales`, or nothing when a seam or function filter
    /// says which seams ("seam=x · every seam" read as a contradiction).
    fn scope_suffix(&self) -> String {
        match self.filter.seam.is_some() || self.filter.function.is_some() {
            true => String::new(),
            false => format!(" · {}", self.scope),
        }
    }

    /// The chat answer.
    pub fn text(&self) -> String {
        let days = self.filter.days;
        let mut out = format!(
            "Stall history · {} · {} to {}{}",
            self.filter.describe(),
            self.from.format("%Y-%m-%d"),
            self.to.format("%Y-%m-%d"),
            self.scope_suffix()
        );
        let line = |s: &SeamHistory| {
            format!(
                "{}: stalls opened {}, closed {} · accept {} · unblock {} · {}",
                s.seam,
                s.stalls_opened,
                s.stalls_closed,
                s.time_to_accept.brief(days),
                s.time_to_unblock.brief(days),
                s.throughput.describe()
            )
        };
        let _ = write!(out, "\n{}", line(&self.all));
        for s in &self.seams {
            let _ = write!(out, "\n• {}", line(s));
        }
        if self.categories.is_empty() {
            out.push_str("\nNo failure categories recorded in this window or the one before.");
        } else {
            out.push_str("\nRecurring failure categories:");
            for (i, c) in self.categories.iter().enumerate() {
                let _ = write!(
                    out,
                    "\n{}. {} · {} (previous {}: {}) {}",
                    i + 1,
                    c.category,
                    c.current,
                    Days(days),
                    c.previous,
                    c.direction.arrow()
                );
            }
        }
        out.push_str(&self.stalled_text());
        out
    }

    fn stalled_text(&self) -> String {
        if self.stalled_now.is_empty() {
            return "\nNothing is stalled right now.".into();
        }
        let mut out = String::from("\nStalled now:");
        for s in &self.stalled_now {
            let _ = write!(
                out,
                "\n• {} · {} · {} · {} · owner {} · since {}",
                s.handoff,
                s.seam,
                s.title,
                s.stall,
                s.owner.as_deref().unwrap_or("none yet"),
                s.since.format("%Y-%m-%d %H:%M UTC")
            );
        }
        out
    }

    /// A fixed-width table for the terminal.
    pub fn table(&self) -> String {
        let mut out = format!("Stall history · {}{}\n", self.filter.describe(), self.scope_suffix());
        let _ = writeln!(
            out,
            "{:<28} {:>6} {:>6} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7} {:>9} {:>5}",
            "seam",
            "opened",
            "closed",
            "accept p50",
            "accept p90",
            "trend",
            "unblk p50",
            "unblk p90",
            "trend",
            "done/week",
            "CV"
        );
        for s in std::iter::once(&self.all).chain(&self.seams) {
            let p = |v: Option<i64>| v.map_or("-".into(), span);
            let pct = |v: Option<i64>| v.map_or("-".into(), |v| format!("{v:+}%"));
            let cv = s.throughput.cv.map_or("-".into(), |c| format!("{c:.2}"));
            let _ = writeln!(
                out,
                "{:<28} {:>6} {:>6} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7} {:>9.1} {:>5}",
                s.seam,
                s.stalls_opened,
                s.stalls_closed,
                p(s.time_to_accept.current.p50_secs),
                p(s.time_to_accept.current.p90_secs),
                pct(s.time_to_accept.p50_change_pct),
                p(s.time_to_unblock.current.p50_secs),
                p(s.time_to_unblock.current.p90_secs),
                pct(s.time_to_unblock.p50_change_pct),
                s.throughput.mean,
                cv
            );
        }
        if !self.categories.is_empty() {
            let _ = writeln!(out, "\n{:<28} {:>7} {:>8}  direction", "category", "now", "before");
            for c in &self.categories {
                let _ = writeln!(out, "{:<28} {:>7} {:>8}  {}", c.category, c.current, c.previous, c.direction.arrow());
            }
        }
        out.push_str(&self.stalled_text());
        out.push('\n');
        out
    }

    /// One row per seam (and `all`), seconds for durations.
    pub fn csv_rows(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let header = vec![
            "seam",
            "stalls_opened",
            "stalls_closed",
            "accept_count",
            "accept_p50_secs",
            "accept_p90_secs",
            "accept_previous_p50_secs",
            "accept_p50_change_pct",
            "unblock_count",
            "unblock_p50_secs",
            "unblock_p90_secs",
            "unblock_previous_p50_secs",
            "unblock_p50_change_pct",
            "done_per_week",
            "throughput_cv",
        ];
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let rows = std::iter::once(&self.all)
            .chain(&self.seams)
            .map(|s| {
                let (a, u) = (&s.time_to_accept, &s.time_to_unblock);
                vec![
                    s.seam.clone(),
                    s.stalls_opened.to_string(),
                    s.stalls_closed.to_string(),
                    a.current.count.to_string(),
                    opt(a.current.p50_secs),
                    opt(a.current.p90_secs),
                    opt(a.previous.p50_secs),
                    opt(a.p50_change_pct),
                    u.current.count.to_string(),
                    opt(u.current.p50_secs),
                    opt(u.current.p90_secs),
                    opt(u.previous.p50_secs),
                    opt(u.p50_change_pct),
                    format!("{:.2}", s.throughput.mean),
                    s.throughput.cv.map(|c| format!("{c:.3}")).unwrap_or_default(),
                ]
            })
            .collect();
        (header, rows)
    }
}

/// Weekly time-to-unblock percentiles of one seam, for charts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Series {
    /// Seam.
    pub seam: String,
    /// `(week start, percentiles of episodes closed that week)`, oldest first; weeks with none are left out.
    pub weeks: Vec<(DateTime<Utc>, Percentiles)>,
}

/// Facts about ownership the health report needs from the store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ownership {
    /// Open handoffs past their time to accept with nobody accountable: `(handoff, seam)`.
    pub unowned: Vec<(String, String)>,
    /// Owners of open handoffs who are no longer in the operating model: `(person, handoffs)`.
    pub unknown_owners: Vec<(String, u64)>,
    /// Requesters no longer in the operating model whom handoffs were returned to: `(person, handoffs)`.
    #[serde(default)]
    pub unknown_requesters: Vec<(String, u64)>,
    /// Owners of open handoffs who are away: `(name, last day away, handoffs)`.
    #[serde(default)]
    pub away_owners: Vec<(String, String, u64)>,
    /// Handoffs in the window on seams the operating model does not have: `(seam, handoffs)`.
    pub off_model_seams: Vec<(String, u64)>,
    /// Leads of receiving functions who are away with nobody covering: `(lead, function, last day away)`.
    #[serde(default)]
    pub leads_away: Vec<(String, String, String)>,
    /// Open handoffs that share what their seam takes one open handoff per (made before it said
    /// so): `(seam, values as read, handoffs)`.
    #[serde(default)]
    pub shared: Vec<(String, String, Vec<String>)>,
}

/// Facts about the operating model's documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Documentation {
    /// Version (hash) of the configuration in force.
    pub config_version: String,
    /// Where the generated reference is served or written.
    pub reference: String,
    /// A checked-in copy of the reference and whether it matches the live configuration.
    pub checked_copy: Option<(String, bool)>,
}

/// Answer to one health question.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// The question.
    pub question: &'static str,
    /// Yes, partly, no, or not enough data.
    pub verdict: Verdict,
    /// The recorded facts behind the verdict.
    pub evidence: Vec<String>,
}

/// A health verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Yes.
    Yes,
    /// In part.
    Partly,
    /// No.
    No,
    /// Not enough recorded data to say.
    Unknown,
}

impl Verdict {
    fn mark(self) -> &'static str {
        match self {
            Verdict::Yes => "✓ yes",
            Verdict::Partly => "◐ partly",
            Verdict::No => "✗ no",
            Verdict::Unknown => "? not enough data",
        }
    }
}

/// The operating-model health report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Scope and window, in words.
    pub covers: String,
    /// The five answers.
    pub answers: Vec<Answer>,
}

impl Health {
    /// The chat and terminal answer.
    pub fn text(&self) -> String {
        let mut out = format!("Operating-model health · {}", self.covers);
        for (i, a) in self.answers.iter().enumerate() {
            let _ = write!(out, "\n{}. {} {}", i + 1, a.question, a.verdict.mark());
            for e in &a.evidence {
                let _ = write!(out, "\n    {e}");
            }
        }
        out
    }
}

/// Answers the five questions from a report and the facts the store and config give.
pub fn health(model: &OperatingModel, report: &Report, own: &Ownership, docs: &Documentation) -> Health {
    let covers = format!("{}{}", report.filter.describe(), report.scope_suffix());
    Health {
        covers,
        answers: vec![
            throughput_answer(report),
            recovery_answer(report),
            docs_answer(model, report, docs),
            ownership_answer(own),
            categories_answer(report),
        ],
    }
}

fn throughput_answer(r: &Report) -> Answer {
    let measured: Vec<&SeamHistory> = r.seams.iter().filter(|s| s.throughput.stable().is_some()).collect();
    let unsteady: Vec<&&SeamHistory> = measured.iter().filter(|s| s.throughput.stable() == Some(false)).collect();
    let verdict = match (measured.len(), unsteady.len()) {
        (0, _) => Verdict::Unknown,
        (_, 0) => Verdict::Yes,
        (m, u) if u < m => Verdict::Partly,
        _ => Verdict::No,
    };
    let mut evidence: Vec<String> =
        r.seams.iter().map(|s| format!("{}: {}", s.seam, s.throughput.describe())).collect();
    evidence.push(format!(
        "stable means a weekly coefficient of variation of at most {STABLE_CV}, judged over {JUDGE_WEEKS} weeks or more \
         with at least one handoff done a week"
    ));
    Answer { question: "Is throughput stable per seam?", verdict, evidence }
}

fn recovery_answer(r: &Report) -> Answer {
    let u = &r.all.time_to_unblock;
    let p90 = |p: &Percentiles| p.p90_secs;
    let verdict = match (u.current.p50_secs, u.previous.p50_secs) {
        (None, _) => Verdict::Unknown,
        (Some(_), None) => Verdict::Unknown,
        (Some(c), Some(p)) => match (c <= p, p90(&u.current) <= p90(&u.previous)) {
            (true, true) => Verdict::Yes,
            (false, false) => Verdict::No,
            _ => Verdict::Partly,
        },
    };
    let mut evidence = vec![format!("all seams: time to unblock {}", u.brief(r.filter.days))];
    evidence.extend(
        r.seams
            .iter()
            .filter(|s| s.time_to_unblock.current.count > 0)
            .map(|s| format!("{}: {}", s.seam, s.time_to_unblock.brief(r.filter.days))),
    );
    Answer { question: "Is recovery time short and getting shorter?", verdict, evidence }
}

fn docs_answer(model: &OperatingModel, r: &Report, docs: &Documentation) -> Answer {
    let covered: BTreeSet<&str> = r.seams.iter().map(|s| s.seam.as_str()).collect();
    let no_playbook: Vec<&str> = model
        .seams
        .values()
        .filter(|s| covered.contains(s.id.as_str()))
        .filter(|s| !s.ladder.iter().any(|step| matches!(step.action, LadderAction::Convene(_))))
        .map(|s| s.id.as_str())
        .collect();
    let mut evidence = vec![format!(
        "the reference is generated from the configuration in force (version {}): {}",
        docs.config_version, docs.reference
    )];
    let mut verdict = Verdict::Yes;
    if let Some((path, current)) = &docs.checked_copy {
        if *current {
            evidence.push(format!("{path} matches the configuration in force"));
        } else {
            evidence.push(format!("{path} is out of date: regenerate it with `baton docs > {path}`"));
            verdict = Verdict::No;
        }
    }
    if !no_playbook.is_empty() {
        evidence.push(format!("no recalibration playbook on the ladder of: {}", no_playbook.join(", ")));
        if verdict == Verdict::Yes {
            verdict = Verdict::Partly;
        }
    }
    Answer { question: "Is the operating model documented and current?", verdict, evidence }
}

fn ownership_answer(own: &Ownership) -> Answer {
    let mut evidence = Vec::new();
    if !own.unowned.is_empty() {
        let list: Vec<String> = own.unowned.iter().map(|(h, s)| format!("{h} ({s})")).collect();
        evidence.push(format!("past their time to accept with nobody accountable: {}", list.join(", ")));
    }
    if !own.unknown_owners.is_empty() {
        let list: Vec<String> = own.unknown_owners.iter().map(|(p, n)| format!("{p} ({n})")).collect();
        evidence.push(format!("owned by people no longer in the operating model: {}", list.join(", ")));
    }
    if !own.unknown_requesters.is_empty() {
        let list: Vec<String> = own.unknown_requesters.iter().map(|(p, n)| format!("{p} ({n})")).collect();
        evidence.push(format!(
            "returned to people no longer in the operating model (their sending lead may answer in their place): {}",
            list.join(", ")
        ));
    }
    if !own.off_model_seams.is_empty() {
        let list: Vec<String> = own.off_model_seams.iter().map(|(s, n)| format!("{s} ({n})")).collect();
        evidence.push(format!("handed off on seams the operating model does not define: {}", list.join(", ")));
    }
    let verdict =
        match (evidence.is_empty(), own.away_owners.is_empty() && own.leads_away.is_empty() && own.shared.is_empty()) {
            (true, true) => Verdict::Yes,
            // Owned, but by someone away until they return or a lead reassigns it; or escalated to a
            // lead who is away with nobody covering.
            (true, false) => Verdict::Partly,
            (false, _) => Verdict::No,
        };
    if !own.shared.is_empty() {
        let list: Vec<String> =
            own.shared.iter().map(|(seam, values, ids)| format!("{} ({seam}, {values})", ids.join(" and "))).collect();
        evidence.push(format!(
            "open together though their seam takes one at a time (made before it said so; cancel or merge the \
             extra): {}",
            list.join("; ")
        ));
    }
    if !own.away_owners.is_empty() {
        let list: Vec<String> =
            own.away_owners.iter().map(|(p, last, n)| format!("{p}, away through {last} ({n})")).collect();
        evidence.push(format!("owned by people away, until they are back or a lead reassigns: {}", list.join("; ")));
    }
    if !own.leads_away.is_empty() {
        let list: Vec<String> =
            own.leads_away.iter().map(|(lead, f, last)| format!("{lead} ({f}), away through {last}")).collect();
        evidence.push(format!(
            "leads away with nobody covering, so the ladder's lead step reaches nobody present (a lead names a cover \
             with `/away until <date> cover=<person>`): {}",
            list.join("; ")
        ));
    }
    if evidence.is_empty() {
        evidence.push(
            "every open handoff has an accountable owner or is within its time to accept, on a defined seam".into(),
        );
    }
    Answer { question: "Is every seam explicit and owned?", verdict, evidence }
}

fn categories_answer(r: &Report) -> Answer {
    let now: u64 = r.categories.iter().map(|c| c.current).sum();
    let before: u64 = r.categories.iter().map(|c| c.previous).sum();
    let rising: Vec<&str> = r
        .categories
        .iter()
        .filter(|c| matches!(c.direction, Direction::Rising | Direction::New))
        .map(|c| c.category.as_str())
        .collect();
    let verdict = match (now, before) {
        (0, 0) => Verdict::Unknown,
        (n, b) if n < b && rising.is_empty() => Verdict::Yes,
        (n, b) if n < b => Verdict::Partly,
        _ => Verdict::No,
    };
    let mut evidence = vec![format!(
        "failure categories recorded: {now} in the last {}, {before} in the {} before",
        Days(r.filter.days),
        Days(r.filter.days)
    )];
    if !rising.is_empty() {
        evidence.push(format!("rising: {}", rising.join(", ")));
    }
    Answer { question: "Are recurring failure categories declining?", verdict, evidence }
}

/// A duration in seconds, short: `45m`, `6h30m`, `2d 4h`.
pub fn span(secs: i64) -> String {
    let minutes = secs.max(0) / 60;
    match (minutes / 1440, minutes % 1440 / 60, minutes % 60) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn queries_parse_views_filters_and_windows() {
        let q =
            parse_query(&words("health seam=sales-to-cs tier=high-stakes window=12w owner=@ana")).expect("accepted");
        assert_eq!(q.view, View::Health);
        assert_eq!(q.filter.seam.as_deref(), Some("sales-to-cs"));
        assert_eq!(q.filter.tier, Some(RiskTier::HighStakes));
        assert_eq!(q.filter.days, 84);
        assert_eq!(q.filter.owner.as_deref(), Some("ana"));
        assert_eq!(parse_query(&[]).expect("accepted"), StallsQuery::default());
        assert_eq!(parse_query(&words("window=30")).expect("accepted").filter.days, 30);
        for (bad, says) in [
            ("window=0d", "1 to 730 days"),
            ("window=soon", "write 90d or 12w"),
            ("tier=urgent", "no tier `urgent`"),
            ("colour=red", "no filter `colour`"),
            ("graph", "not a view or a filter"),
            ("seam=", "needs a value"),
            ("seam=a Seam=b", "`Seam=b` repeats `seam=`: give each filter once"),
            ("chart health", "`health` is a second view: give one"),
        ] {
            let e = parse_query(&words(bad)).expect_err("refused");
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.9), Some(90));
        assert_eq!(percentile(&[7], 0.9), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn trends_compare_p50_with_the_previous_window() {
        let p = |p50| Percentiles { count: 3, p50_secs: Some(p50), p90_secs: Some(p50 * 2) };
        let m = Measure::new(p(3600), p(4800));
        assert_eq!(m.p50_change_pct, Some(-25));
        assert_eq!(m.brief(30), "p50 1h, p90 2h (25% shorter than the previous 30 days: 1h20m)");
        assert_eq!(Measure::new(p(7200), p(3600)).p50_change_pct, Some(100));
        assert!(Measure::new(p(60), Percentiles::default()).brief(7).contains("nothing to compare"));
        assert_eq!(Measure::new(p(60), p(60)).brief(1), "p50 1m, p90 2m (as in the previous 1 day)");
        assert_eq!(Filter { days: 1, ..Filter::default() }.describe(), "last 1 day");
    }

    #[test]
    fn throughput_stability_is_the_coefficient_of_variation() {
        let t = Throughput::new(vec![4, 4, 4, 4]);
        assert_eq!((t.mean, t.cv, t.stable()), (4.0, Some(0.0), Some(true)));
        let t = Throughput::new(vec![0, 8, 0, 8]);
        assert_eq!((t.mean, t.cv, t.stable()), (4.0, Some(1.0), Some(false)));
        assert_eq!(Throughput::new(vec![0, 0]).cv, None);
        // Too little to judge: too few weeks, or under one done a week.
        assert_eq!(Throughput::new(vec![5, 5, 5]).stable(), None);
        assert_eq!(Throughput::new(vec![0, 1, 0, 0, 1, 0]).stable(), None);
    }

    #[test]
    fn categories_rank_by_recent_count_with_direction() {
        let ranked = rank_categories([
            ("capacity".to_string(), 2, 5),
            ("unclear-scope".to_string(), 6, 1),
            ("tooling".to_string(), 0, 3),
            ("priorities".to_string(), 2, 0),
        ]);
        let got: Vec<(&str, Direction)> = ranked.iter().map(|c| (c.category.as_str(), c.direction)).collect();
        assert_eq!(
            got,
            [
                ("unclear-scope", Direction::Rising),
                ("capacity", Direction::Falling),
                ("priorities", Direction::New),
                ("tooling", Direction::Gone)
            ]
        );
    }

    #[test]
    fn histogram_percentiles_are_within_the_bucket_width() {
        // 1..=1000 minutes: exact p50 500m, p90 900m.
        let mut h = std::collections::BTreeMap::new();
        for m in 1..=1000i64 {
            *h.entry(bucket(m * 60)).or_insert(0u64) += 1;
        }
        let p = Percentiles::of_histogram(&h);
        assert_eq!(p.count, 1000);
        for (got, exact) in [(p.p50_secs, 500 * 60), (p.p90_secs, 900 * 60)] {
            let got = got.expect("a value") as f64;
            assert!((got / exact as f64 - 1.0).abs() <= 0.025, "{got} vs {exact}");
        }
        assert_eq!((bucket(0), bucket(1), bucket(2)), (0, 1, 15));
        assert_eq!(Percentiles::of_histogram(&std::collections::BTreeMap::new()), Percentiles::default());
    }

    #[test]
    fn windows_are_today_plus_whole_days_before() {
        let f = Filter { days: 7, ..Filter::default() };
        let now = DateTime::parse_from_rfc3339("2026-11-30T15:20:00Z").expect("time").with_timezone(&Utc);
        assert_eq!(f.from(now).to_rfc3339(), "2026-11-24T00:00:00+00:00");
        assert_eq!(f.previous_from(now).to_rfc3339(), "2026-11-17T00:00:00+00:00");
    }

    #[test]
    fn spans_read_as_days_hours_minutes() {
        assert_eq!(span(45 * 60), "45m");
        assert_eq!(span(6 * 3600 + 1800), "6h30m");
        assert_eq!(span(2 * 86400 + 4 * 3600 + 59), "2d 4h");
        assert_eq!(span(86400), "1d");
    }
}
