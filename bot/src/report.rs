//! Stall history from the store: the `/stalls` report, the health report and the weekly chart.
//!
//! The core says what a report covers and how it reads ([`baton_core::history`]); this module
//! runs the queries concurrently, from the daily rollups where they can answer (see [`EXACT_LIMIT`])
//! and from the rows otherwise, and draws charts with plotters.

use std::collections::BTreeMap;

use baton_core::history::{
    self, Documentation, Filter, Health, Measure, Ownership, Percentiles, Report, Scope, SeamHistory, Series,
    StalledNow, Throughput, Viewer,
};
use baton_core::model::RiskTier;
use baton_core::{OperatingModel, StallKind};
use chrono::{DateTime, Duration, Utc};
use sha2::Digest as _;

use crate::app::AppError;
use crate::store::{Buckets, HistogramRow, Metric, PercentileRow, Slice, Store, StoreError, day};

/// Handoffs listed under "stalled now" (the count says how many more there are).
const STALLED_SHOWN: i64 = 50;

/// What a report covers: the checked scope plus the filter.
struct Covered {
    scope: Scope,
    filter: Filter,
}

impl Covered {
    fn new(model: &OperatingModel, viewer: Viewer<'_>, filter: &Filter) -> Result<Covered, AppError> {
        let filter = filter.clone().resolved(model);
        let scope = history::scope(model, viewer, &filter)?;
        Ok(Covered { scope, filter })
    }

    /// Whether the rollups hold what the filter asks (they keep seam and tier, not owner or category).
    fn rolled(&self) -> bool {
        self.filter.owner.is_none() && self.filter.category.is_none()
    }

    fn slice(&self) -> Slice<'_> {
        Slice {
            seams: &self.scope.seams,
            owner: self.filter.owner.as_deref(),
            tier: self.filter.tier.map(RiskTier::name),
            category: self.filter.category.as_deref(),
        }
    }
}

/// The functions receiving on `seams`, each once.
fn receiving<'a>(model: &'a OperatingModel, seams: &[String]) -> impl Iterator<Item = &'a baton_core::model::Function> {
    let ids: std::collections::BTreeSet<&String> =
        seams.iter().filter_map(|s| model.seams.get(s)).map(|s| &s.to).collect();
    ids.into_iter().filter_map(|id| model.functions.get(id))
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Above this many durations in a window, percentiles come from the daily rollups (within 2.5%)
/// instead of sorting every row.
pub const EXACT_LIMIT: u64 = 20_000;

/// A report's window and the one before it, in milliseconds and in UTC days.
#[derive(Clone, Copy, Debug)]
struct Window {
    /// Whether the rollups can answer (no owner or category filter).
    rolled: bool,
    /// Above this many durations, percentiles come from the rollups.
    exact_limit: u64,
    from_ms: i64,
    split_ms: i64,
    /// End of today: the window covers today so far.
    to_ms: i64,
    from_day: i64,
    split_day: i64,
    to_day: i64,
    /// Whole weeks, ending today, for throughput.
    weeks: i64,
}

impl Window {
    fn new(filter: &Filter, now: DateTime<Utc>, rolled: bool, exact_limit: u64) -> Window {
        let (from, split) = (filter.previous_from(now), filter.from(now));
        let to_day = day(now);
        Window {
            rolled,
            exact_limit,
            from_ms: ms(from),
            split_ms: ms(split),
            to_ms: (to_day + 1) * 86_400_000,
            from_day: day(from),
            split_day: day(split),
            to_day,
            weeks: i64::from(filter.days / 7),
        }
    }
}

/// Percentile rows of `metric` per seam: for both windows (groups 0 and 1, plus `*` over all
/// seams), or `weekly` over the current window (group = week). From the rollups when they can
/// answer and the window is large, else exact from the rows.
async fn percentile_rows(
    store: &Store,
    metric: Metric,
    s: &Slice<'_>,
    w: &Window,
    weekly: bool,
) -> Result<Vec<PercentileRow>, StoreError> {
    let (from_day, from_ms, split_day, buckets) = match weekly {
        true => (w.split_day, w.split_ms, None, Buckets::Weeks),
        false => (w.from_day, w.from_ms, Some(w.split_day), Buckets::Windows { split: w.split_ms }),
    };
    if w.rolled {
        let rows = store.histograms(metric.rollup(), s, from_day, w.to_day, split_day).await?;
        if rows.iter().map(|r| r.3).sum::<u64>() > w.exact_limit {
            return Ok(from_histograms(rows, !weekly));
        }
    }
    store.percentiles(metric, s, from_ms, w.to_ms, buckets).await
}

/// Percentile rows from histogram rows, with `*` over all seams when `all`.
fn from_histograms(rows: Vec<HistogramRow>, all: bool) -> Vec<PercentileRow> {
    let mut hists: BTreeMap<(String, i64), BTreeMap<i64, u64>> = BTreeMap::new();
    for (seam, group, bucket, n) in rows {
        if all {
            *hists.entry(("*".into(), group)).or_default().entry(bucket).or_default() += n;
        }
        *hists.entry((seam, group)).or_default().entry(bucket).or_default() += n;
    }
    hists.into_iter().map(|((seam, group), h)| (seam, group, Percentiles::of_histogram(&h))).collect()
}

/// Stall episodes opened in the current window, per seam.
async fn opened(store: &Store, s: &Slice<'_>, w: &Window) -> Result<Vec<(String, u64)>, StoreError> {
    if !w.rolled {
        return store.stalls_opened(s, w.split_ms, w.to_ms).await;
    }
    let mut per: BTreeMap<String, u64> = BTreeMap::new();
    for (seam, _, n) in store.daily_counts("opened", s, w.split_day, w.to_day).await? {
        *per.entry(seam).or_default() += n;
    }
    Ok(per.into_iter().collect())
}

/// Handoffs done per week for the whole weeks ending today: `(seam, weeks ago, count)`.
async fn done_weekly(store: &Store, s: &Slice<'_>, w: &Window) -> Result<Vec<(String, i64, u64)>, StoreError> {
    if !w.rolled {
        return store.done_per_week(s, w.weeks, w.to_ms).await;
    }
    let first = w.to_day - w.weeks * 7 + 1;
    let days = store.daily_counts("done", s, first, w.to_day).await?;
    Ok(days.into_iter().map(|(seam, d, n)| (seam, (w.to_day - d) / 7, n)).collect())
}

/// The `/stalls` report for `viewer`, over the window ending at `now`.
pub async fn summary(
    store: &Store,
    model: &OperatingModel,
    viewer: Viewer<'_>,
    filter: &Filter,
    now: DateTime<Utc>,
) -> Result<Report, AppError> {
    summary_with(store, model, viewer, filter, now, EXACT_LIMIT).await
}

/// [`summary`], reading percentiles from the rollups above `exact_limit` durations.
pub async fn summary_with(
    store: &Store,
    model: &OperatingModel,
    viewer: Viewer<'_>,
    filter: &Filter,
    now: DateTime<Utc>,
    exact_limit: u64,
) -> Result<Report, AppError> {
    let c = Covered::new(model, viewer, filter)?;
    let s = c.slice();
    let w = Window::new(filter, now, c.rolled(), exact_limit);
    let (accept, unblock, opened, done, categories, (stalled, stalled_total)) = tokio::try_join!(
        percentile_rows(store, Metric::Accept, &s, &w, false),
        percentile_rows(store, Metric::Unblock, &s, &w, false),
        opened(store, &s, &w),
        done_weekly(store, &s, &w),
        store.categories(&s, w.from_ms, w.split_ms, w.to_ms),
        store.stalled_in(&s, STALLED_SHOWN),
    )?;
    let weeks = w.weeks;

    let measure = |rows: &[(String, i64, Percentiles)], seam: &str| {
        let get = |b| rows.iter().find(|(g, bucket, _)| g == seam && *bucket == b).map(|r| r.2).unwrap_or_default();
        Measure::new(get(0), get(1))
    };
    // Weekly done counts, oldest week first; a seam with nothing done in a week has a zero there.
    let mut weekly: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for seam in c.scope.seams.iter().map(String::as_str).chain(["*"]) {
        weekly.insert(seam, vec![0; weeks as usize]);
    }
    for (seam, ago, n) in &done {
        let Some(i) = usize::try_from(weeks - 1 - ago).ok().filter(|i| *i < weeks as usize) else { continue };
        for key in [seam.as_str(), "*"] {
            if let Some(w) = weekly.get_mut(key) {
                w[i] += n;
            }
        }
    }
    let seam_history = |seam: &str, name: &str| {
        let u = measure(&unblock, seam);
        SeamHistory {
            seam: name.to_string(),
            stalls_opened: if seam == "*" {
                opened.iter().map(|(_, n)| n).sum()
            } else {
                opened.iter().find(|(s, _)| s == seam).map_or(0, |(_, n)| *n)
            },
            stalls_closed: u.current.count,
            time_to_accept: measure(&accept, seam),
            time_to_unblock: u,
            throughput: Throughput::new(weekly.get(seam).cloned().unwrap_or_default()),
        }
    };
    let mut stalled_now: Vec<StalledNow> = stalled
        .iter()
        .filter_map(|h| {
            let st = h.stall.as_ref()?;
            Some(StalledNow {
                handoff: h.label(),
                seam: h.seam.clone(),
                title: h.title.clone(),
                owner: h.owner.as_ref().map(|o| model.name_of(o).to_string()),
                stall: st.kind.describe().to_string(),
                since: st.opened_at,
            })
        })
        .collect();
    if stalled_total > stalled_now.len() as u64 {
        let more = stalled_total - stalled_now.len() as u64;
        stalled_now.push(StalledNow {
            handoff: format!("…and {more} more"),
            seam: String::new(),
            title: "narrow the report with seam= or owner= to list them".into(),
            owner: None,
            stall: String::new(),
            since: now,
        });
    }
    Ok(Report {
        filter: c.filter.clone(),
        scope: c.scope.described.clone(),
        from: filter.from(now),
        to: now,
        all: seam_history("*", "all"),
        seams: c.scope.seams.iter().map(|s| seam_history(s, s)).collect(),
        categories: history::rank_categories(categories),
        stalled_now,
    })
}

/// The operating-model health report. `checked_copy` is a checked-in copy of the generated
/// reference to compare with the live model (path and contents).
pub async fn health(
    store: &Store,
    model: &OperatingModel,
    viewer: Viewer<'_>,
    filter: &Filter,
    now: DateTime<Utc>,
    checked_copy: Option<(String, String)>,
) -> Result<Health, AppError> {
    let report = summary(store, model, viewer, filter, now).await?;
    health_of(store, model, viewer, &report, now, checked_copy).await
}

/// [`health`] when the report is already at hand.
pub async fn health_of(
    store: &Store,
    model: &OperatingModel,
    viewer: Viewer<'_>,
    report: &Report,
    now: DateTime<Utc>,
    checked_copy: Option<(String, String)>,
) -> Result<Health, AppError> {
    let filter = &report.filter;
    let c = Covered::new(model, viewer, filter)?;
    let s = c.slice();
    let everyone = Slice { owner: None, ..s };
    let (owners, requesters, shared, unowned, per_seam, away) = tokio::try_join!(
        store.open_owners(&s),
        store.returned_requesters(&everyone),
        store.shared_open_keys(&everyone),
        store.stalled_in(&everyone, 1000),
        store.created_per_seam(ms(filter.from(now)), ms(now) + 1),
        store.absences(model, now),
    )?;
    let away_owners = (owners.iter())
        .filter_map(|(p, n)| {
            let last = away.through(model, p, now)?;
            Some((model.name_of(p).to_string(), last, *n))
        })
        .collect();
    // Open handoffs sharing a key, grouped: "H-1 and H-2 (sales-to-cs, account acme)".
    let mut groups: Vec<(String, String, Vec<String>)> = Vec::new();
    for (seam, key, id) in shared {
        let values = baton_core::model::Seam::open_key_read(&key);
        match groups.last_mut() {
            Some((s, v, ids)) if *s == seam && *v == values => ids.push(format!("H-{id}")),
            _ => groups.push((seam, values, vec![format!("H-{id}")])),
        }
    }
    let own = Ownership {
        shared: groups,
        away_owners,
        unowned: unowned
            .0
            .iter()
            .filter(|h| h.owner.is_none() && h.stall.as_ref().is_some_and(|st| st.kind == StallKind::NoAccept))
            .map(|h| (h.label(), h.seam.clone()))
            .collect(),
        unknown_owners: owners.into_iter().filter(|(p, _)| model.person(p).is_none()).collect(),
        unknown_requesters: requesters.into_iter().filter(|(p, _)| model.person(p).is_none()).collect(),
        leads_away: receiving(model, &c.scope.seams)
            .filter(|f| away.cover(&f.lead, now).is_none())
            .filter_map(|f| {
                Some((model.name_of(&f.lead).to_string(), f.name.clone(), away.through(model, &f.lead, now)?))
            })
            .collect(),
        // Seams outside the model are only the whole organisation's business.
        off_model_seams: if c.scope.everything {
            per_seam.into_iter().filter(|(seam, _)| !model.seams.contains_key(seam)).collect()
        } else {
            Vec::new()
        },
    };
    let reference = baton_core::docs::markdown(model);
    let docs = Documentation {
        config_version: version(&reference),
        reference: "`baton docs` writes it, and `baton serve` shows it at /dashboard/model".into(),
        checked_copy: checked_copy.map(|(path, text)| (path, text == reference)),
    };
    Ok(history::health(model, report, &own, &docs))
}

/// A short, stable version of the operating model: a hash of its generated reference.
pub fn version(reference: &str) -> String {
    let digest = sha2::Sha256::digest(reference.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Weekly time-to-unblock percentiles per covered seam.
pub async fn series(
    store: &Store,
    model: &OperatingModel,
    viewer: Viewer<'_>,
    filter: &Filter,
    now: DateTime<Utc>,
) -> Result<Vec<Series>, AppError> {
    let c = Covered::new(model, viewer, filter)?;
    let from = filter.from(now);
    let w = Window::new(filter, now, c.rolled(), EXACT_LIMIT);
    let rows = percentile_rows(store, Metric::Unblock, &c.slice(), &w, true).await?;
    Ok(c.scope
        .seams
        .iter()
        .map(|seam| Series {
            seam: seam.clone(),
            weeks: rows
                .iter()
                .filter(|(g, _, _)| g == seam)
                .map(|(_, week, p)| (from + Duration::weeks(*week), *p))
                .collect(),
        })
        .collect())
}

/// `baton report`: what to show and how.
#[derive(Clone, Debug)]
pub struct Request {
    /// The words after `baton report`, as after `/stalls`.
    pub query: Vec<String>,
    /// `table`, `csv` or `json`.
    pub format: String,
    /// A checked-in copy of the generated reference (health).
    pub docs: Option<std::path::PathBuf>,
    /// Where a chart goes (`.png` or `.svg`).
    pub out: std::path::PathBuf,
}

/// Runs `baton report` for whoever holds the database (every seam). The error is for the
/// terminal: what was wrong and how to write it.
pub async fn run(store: &Store, model: &OperatingModel, r: Request, now: DateTime<Utc>) -> anyhow::Result<String> {
    let q = history::parse_query(&r.query)
        .map_err(|e| anyhow::anyhow!("{e}\nusage: baton report {}", history::USAGE.trim_start_matches("/stalls ")))?;
    let f = &q.filter.resolved(model);
    let fail = |e: AppError| match e {
        AppError::Rejected(r) => anyhow::anyhow!("{r}"),
        other => anyhow::anyhow!(other),
    };
    match q.view {
        history::View::Summary => {
            let report = summary(store, model, Viewer::Operator, f, now).await.map_err(fail)?;
            match r.format.as_str() {
                "json" => Ok(serde_json::to_string_pretty(&report)? + "\n"),
                "csv" => {
                    let (header, rows) = report.csv_rows();
                    csv_text(&header, rows)
                }
                _ => Ok(report.table()),
            }
        }
        history::View::Health => {
            let copy = match &r.docs {
                Some(path) => Some((
                    path.display().to_string(),
                    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?,
                )),
                None => None,
            };
            let health = health(store, model, Viewer::Operator, f, now, copy).await.map_err(fail)?;
            match r.format.as_str() {
                "json" => Ok(serde_json::to_string_pretty(&health)? + "\n"),
                "csv" => {
                    let rows = health
                        .answers
                        .iter()
                        .map(|a| {
                            let verdict =
                                serde_json::to_value(a.verdict).ok().and_then(|v| v.as_str().map(String::from));
                            vec![a.question.to_string(), verdict.unwrap_or_default(), a.evidence.join("; ")]
                        })
                        .collect();
                    csv_text(&["question", "verdict", "evidence"], rows)
                }
                _ => Ok(health.text() + "\n"),
            }
        }
        history::View::Chart => {
            let series = series(store, model, Viewer::Operator, f, now).await.map_err(fail)?;
            let title = chart_title(f);
            let svg_out = r.out.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg"));
            let bytes = if svg_out {
                svg(&title, &series, f.from(now), now)?.into_bytes()
            } else {
                png(&title, &series, f.from(now), now)?
            };
            std::fs::write(&r.out, &bytes).map_err(|e| anyhow::anyhow!("writing {}: {e}", r.out.display()))?;
            Ok(format!("{title}: wrote {} ({} bytes)\n", r.out.display(), bytes.len()))
        }
    }
}

fn csv_text(header: &[&str], rows: Vec<Vec<String>>) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for row in rows {
        w.write_record(&row)?;
    }
    Ok(String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?)
}

/// The chart's title for a filter.
pub fn chart_title(filter: &Filter) -> String {
    format!("Time to unblock per week, p50 and p90 (hours) · {}", filter.describe())
}

pub use chart::{png, svg};

/// Drawing with plotters: one colour per seam, p50 solid, p90 dashed.
mod chart {
    use baton_core::history::Series;
    use chrono::{DateTime, Utc};
    use plotters::prelude::*;

    const W: u32 = 960;
    const H: u32 = 480;
    /// DejaVu Sans (Bitstream Vera licence), so PNGs need no system fonts.
    const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

    fn register_font() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
                tracing::error!("the chart font could not be loaded");
            }
        });
    }

    /// Tableau 10: distinct on white, readable by most colour-blind viewers.
    const COLOURS: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];

    fn hours(secs: Option<i64>) -> f64 {
        secs.unwrap_or(0) as f64 / 3600.0
    }

    fn draw<DB: DrawingBackend>(
        root: DrawingArea<DB, plotters::coord::Shift>,
        title: &str,
        series: &[Series],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let top =
            series.iter().flat_map(|s| s.weeks.iter().map(|(_, p)| hours(p.p90_secs))).fold(1.0_f64, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(from..to, 0.0..top)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|t| t.format("%d %b").to_string())
            .y_desc("hours")
            .label_style(("sans-serif", 13))
            .draw()?;
        for (i, s) in series.iter().enumerate().filter(|(_, s)| !s.weeks.is_empty()) {
            let colour = COLOURS[i % COLOURS.len()].to_rgba();
            let p50 = s.weeks.iter().map(|(t, p)| (*t, hours(p.p50_secs)));
            let p90: Vec<_> = s.weeks.iter().map(|(t, p)| (*t, hours(p.p90_secs))).collect();
            chart
                .draw_series(LineSeries::new(p50, colour.stroke_width(2)).point_size(3))?
                .label(format!("{} p50", s.seam))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
            chart
                .draw_series(DashedLineSeries::new(p90, 6, 4, colour.stroke_width(1)))?
                .label(format!("{} p90", s.seam))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(1)));
        }
        if series.iter().all(|s| s.weeks.is_empty()) {
            root.draw(&Text::new(
                "No stall was unblocked in this window.",
                (W as i32 / 3, H as i32 / 2),
                ("sans-serif", 16),
            ))?;
        } else {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .label_font(("sans-serif", 12))
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
        }
        root.present()
    }

    /// The chart as a PNG image.
    pub fn png(title: &str, series: &[Series], from: DateTime<Utc>, to: DateTime<Utc>) -> anyhow::Result<Vec<u8>> {
        register_font();
        let mut pixels = vec![0u8; (W * H * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (W, H)).into_drawing_area();
            draw(root, title, series, from, to).map_err(|e| anyhow::anyhow!("drawing the chart: {e}"))?;
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, W, H);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header()?.write_image_data(&pixels)?;
        Ok(out)
    }

    /// The chart as an SVG document (for the dashboard).
    pub fn svg(title: &str, series: &[Series], from: DateTime<Utc>, to: DateTime<Utc>) -> anyhow::Result<String> {
        register_font();
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, (W, H)).into_drawing_area();
            draw(root, title, series, from, to).map_err(|e| anyhow::anyhow!("drawing the chart: {e}"))?;
        }
        Ok(out)
    }
}
