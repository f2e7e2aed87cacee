//! The read-only web dashboard at `/dashboard`: stall history, the chart (inline SVG) and the
//! health report, rendered on the server from a minijinja template (HTML auto-escaped), with no
//! front-end build. `/dashboard/model` shows the operating-model reference generated from the
//! configuration in force.
//!
//! Access takes the token in `BATON_DASHBOARD_TOKEN`: `Authorization: Bearer <token>`, or
//! `/dashboard?token=<token>` once, which sets an HttpOnly cookie and redirects to the page
//! without the token in its address.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use baton_core::history::{self, Measure, Viewer, span};
use chrono::Utc;
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use sha2::{Digest, Sha256};

use crate::app::{App, AppError};
use crate::report;

const COOKIE: &str = "baton_dashboard";
const TEMPLATE: &str = include_str!("../templates/dashboard.html");
/// The operating-model reference page (the Markdown shown as preformatted, escaped text).
const MODEL_TEMPLATE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
    <title>Baton · operating model</title></head><body><p><a href=\"/dashboard\">← stall history</a> · \
    generated from the configuration in force (version {{ version }})</p>\
    <pre style=\"white-space: pre-wrap\">{{ reference }}</pre></body></html>";

/// The page templates, parsed once (a test renders it, so a broken template fails the build's tests).
fn templates() -> &'static Environment<'static> {
    static ENV: std::sync::LazyLock<Environment<'static>> = std::sync::LazyLock::new(|| {
        let mut env = Environment::new();
        for (name, text) in [("dashboard.html", TEMPLATE), ("model.html", MODEL_TEMPLATE)] {
            if let Err(e) = env.add_template(name, text) {
                tracing::error!("the dashboard template {name} does not parse: {e}");
            }
        }
        env
    });
    &ENV
}

/// What the dashboard routes share.
#[derive(Clone, Debug)]
pub struct Dashboard {
    /// The service.
    pub app: App,
    /// The access token; `None` turns the dashboard off.
    pub token: Option<String>,
}

/// `/dashboard` and `/dashboard/model`.
pub fn routes(dashboard: Dashboard) -> Router {
    Router::new().route("/dashboard", get(page)).route("/dashboard/model", get(model)).with_state(Arc::new(dashboard))
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// `None` when the request may see the dashboard; otherwise the answer to give instead.
fn refusal(d: &Dashboard, headers: &HeaderMap, query: &HashMap<String, String>, path: &str) -> Option<Response> {
    let Some(token) = &d.token else {
        return Some(
            (
                StatusCode::NOT_FOUND,
                "The dashboard is off: set BATON_DASHBOARD_TOKEN to a long random secret, then open \
             /dashboard?token=<that secret>.",
            )
                .into_response(),
        );
    };
    // Compared as digests, so the comparison takes the same time whatever was presented.
    let expected = digest(token);
    let matches = |given: &str| digest(given) == expected;
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE).and_then(|c| c.strip_prefix('=')))
        .any(matches);
    if bearer.is_some_and(matches) || cookie {
        return None;
    }
    if let Some(given) = query.get("token") {
        if matches(given) {
            // Keep the token out of the address bar, history and logs from here on.
            let rest: Vec<(&String, &String)> = query.iter().filter(|(k, _)| *k != "token").collect();
            let target = match serde_urlencoded::to_string(&rest) {
                Ok(q) if !q.is_empty() => format!("{path}?{q}"),
                _ => path.to_string(),
            };
            let cookie = format!("{COOKIE}={given}; HttpOnly; SameSite=Strict; Path=/dashboard");
            return Some(([(header::SET_COOKIE, cookie)], Redirect::to(&target)).into_response());
        }
        return Some(
            (StatusCode::UNAUTHORIZED, "That dashboard token is wrong: use the value of BATON_DASHBOARD_TOKEN.")
                .into_response(),
        );
    }
    Some(
        (
            StatusCode::UNAUTHORIZED,
            "The dashboard needs its token: open /dashboard?token=<BATON_DASHBOARD_TOKEN> or send \
         `Authorization: Bearer <token>`.",
        )
            .into_response(),
    )
}

async fn page(
    State(d): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = refusal(&d, &headers, &query, "/dashboard") {
        return answer;
    }
    let words: Vec<String> = ["seam", "function", "category", "owner", "tier", "window"]
        .iter()
        .filter_map(|k| query.get(*k).filter(|v| !v.trim().is_empty()).map(|v| format!("{k}={}", v.trim())))
        .collect();
    let q = match history::parse_query(&words) {
        Ok(q) => q,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\nFilters: {}", history::USAGE)).into_response(),
    };
    match render(&d.app, &q.filter.resolved(&d.app.model), &query).await {
        Ok(html) => Html(html).into_response(),
        Err(AppError::Rejected(r)) => (StatusCode::BAD_REQUEST, r.to_string()).into_response(),
        Err(e) => {
            tracing::error!("dashboard failed: {e:#}");
            (StatusCode::INTERNAL_SERVER_ERROR, "The dashboard could not be drawn; the cause is in Baton's log.")
                .into_response()
        }
    }
}

/// One table row, formatted.
fn row(s: &history::SeamHistory) -> Value {
    let p = |v: Option<i64>| v.map_or("–".to_string(), span);
    let u: &Measure = &s.time_to_unblock;
    let (trend, class) = match u.p50_change_pct {
        Some(c) if c < 0 => (format!("{}% shorter", -c), "better"),
        Some(c) if c > 0 => (format!("{c}% longer"), "worse"),
        Some(_) => ("same".into(), ""),
        None => ("–".into(), ""),
    };
    context! {
        seam => s.seam.clone(), opened => s.stalls_opened, closed => s.stalls_closed,
        accept_p50 => p(s.time_to_accept.current.p50_secs), accept_p90 => p(s.time_to_accept.current.p90_secs),
        unblock_p50 => p(u.current.p50_secs), unblock_p90 => p(u.current.p90_secs),
        trend => trend, trend_class => class,
        done_per_week => format!("{:.1}", s.throughput.mean),
        cv => s.throughput.cv.map_or("–".into(), |c| format!("{c:.2}")),
    }
}

async fn render(app: &App, filter: &history::Filter, query: &HashMap<String, String>) -> Result<String, AppError> {
    let now = Utc::now();
    let model = &app.model;
    let r = report::summary(&app.store, model, Viewer::Operator, filter, now).await?;
    let (health, series) = tokio::try_join!(
        report::health_of(&app.store, model, Viewer::Operator, &r, now, None),
        report::series(&app.store, model, Viewer::Operator, filter, now),
    )?;
    let svg = report::svg(&report::chart_title(filter), &series, filter.from(now), now)?;
    let rows: Vec<Value> = std::iter::once(&r.all).chain(&r.seams).map(row).collect();
    let ctx = context! {
        report => context! {
            filter_text => filter.describe(), scope => r.scope,
            from => r.from.format("%Y-%m-%d").to_string(), to => r.to.format("%Y-%m-%d %H:%M UTC").to_string(),
            categories => Value::from(Serde(&r.categories)), stalled_now => Value::from(Serde(&r.stalled_now)),
        },
        rows, health => Value::from(Serde(&health)),
        chart => Value::from_safe_string(svg),
        version => report::version(&baton_core::docs::markdown(model)),
        choices => context! {
            seams => model.seams.keys().cloned().collect::<Vec<_>>(),
            functions => model.functions.keys().cloned().collect::<Vec<_>>(),
            categories => model.categories.clone(),
        },
        // What the filter resolved to, so that `seam=Sales-to-CS` selects sales-to-cs.
        chosen => context! {
            seam => filter.seam.clone().unwrap_or_default(),
            function => filter.function.clone().unwrap_or_default(),
            category => filter.category.clone().unwrap_or_default(),
            owner => filter.owner.clone().unwrap_or_default(), tier => filter.tier.map(baton_core::model::RiskTier::name).unwrap_or_default(),
            window => query.get("window").cloned().unwrap_or_else(|| format!("{}d", filter.days)),
        },
    };
    let html = templates().get_template("dashboard.html").and_then(|t| t.render(ctx)).map_err(anyhow::Error::from)?;
    Ok(html)
}

async fn model(
    State(d): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = refusal(&d, &headers, &query, "/dashboard/model") {
        return answer;
    }
    let reference = baton_core::docs::markdown(&d.app.model);
    let ctx = context! { version => report::version(&reference), reference };
    match templates().get_template("model.html").and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("the operating-model page failed: {e:#}");
            (StatusCode::INTERNAL_SERVER_ERROR, "The page could not be drawn; the cause is in Baton's log.")
                .into_response()
        }
    }
}
