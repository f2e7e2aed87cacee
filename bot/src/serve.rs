//! `baton serve`: the HTTP server, the scheduler and the delivery worker, shut down together.
//!
//! Following mini-redis, [`run`] takes its listener and a shutdown future, so tests start it on
//! port 0 and stop it when they like. On shutdown the server stops accepting, the scheduler
//! stops claiming, and the delivery worker finishes the pass in flight before returning.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::deliver::{Deliverer, Outbound};

/// What `baton serve` runs with.
#[derive(Clone, Debug)]
pub struct Server {
    /// The service.
    pub app: App,
    /// The chat platforms configured for sending.
    pub out: Outbound,
    /// Longest sleep of the scheduler and delivery worker (other replicas' changes are seen
    /// within this).
    pub poll: std::time::Duration,
    /// How long a delivery claim lasts before another replica may retry the message.
    pub lease: chrono::Duration,
    /// Slack's inbound endpoints (refuse with 503 when Slack is not configured).
    pub slack: crate::slack::routes::Endpoints,
    /// Socket Mode instead of (besides) HTTP: the API base and the app-level token.
    pub socket_mode: Option<(String, String)>,
    /// Discord's interactions endpoint (refuses with 503 when Discord is not configured).
    pub discord: Arc<crate::discord::routes::Endpoint>,
    /// Receive Discord interactions over the Gateway instead of the HTTP endpoint.
    pub discord_gateway: bool,
    /// The token that opens `/dashboard` (`None`: the dashboard is off).
    pub dashboard_token: Option<String>,
    /// The API clients' tokens, by the name of the variable each client's `token_env` names.
    pub api_tokens: std::collections::BTreeMap<String, String>,
}

impl Server {
    /// A server with no chat inbound configured, the default poll (5 s) and lease (60 s).
    pub fn new(app: App, out: Outbound) -> Server {
        Server {
            app,
            out,
            poll: std::time::Duration::from_secs(5),
            lease: chrono::Duration::seconds(60),
            slack: crate::slack::routes::Endpoints { slack: None, signing_secret: None },
            socket_mode: None,
            discord: Arc::default(),
            discord_gateway: false,
            dashboard_token: None,
            api_tokens: Default::default(),
        }
    }
}

/// Serves on `listener` until `shutdown` completes, then stops every task in order.
pub async fn run(
    server: Server,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // The metrics recorder is installed before any task counts: a count made before is lost.
    crate::metrics::handle();
    let (stop_tx, stop_rx) = watch::channel(false);
    let app = server.app.clone();
    // At start and after each reload: open handoffs that wait on someone no longer in the model
    // (their owner, or the requester they were returned to) are checked at once, so that their
    // leads hear of them.
    match app.store.recheck_departed(&app.model, chrono::Utc::now()).await {
        Ok(left) if !left.is_empty() => tracing::warn!(
            "open handoffs wait on people no longer in the operating model ({}): their leads are told",
            left.join(", ")
        ),
        Ok(_) => {}
        Err(e) => tracing::error!("could not look for handoffs that wait on people no longer in the model: {e}"),
    }
    // The model may key a seam's open handoffs (`one_open_per`) on other fields than before.
    match app.store.rekey_open(&app.model).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("{n} open handoffs keyed anew on their seams' `one_open_per` fields"),
        Err(e) => tracing::error!("could not key open handoffs on their seams' `one_open_per` fields: {e}"),
    }
    let deliverer = Deliverer {
        store: app.store.clone(),
        model: app.model.clone(),
        out: server.out.clone(),
        lease: server.lease,
        batch: 500,
        concurrency: 32,
        lines: Default::default(),
    };
    let delivery = tokio::spawn(deliverer.run(app.wake.delivery.clone(), stop_rx.clone(), server.poll));
    let scheduler = tokio::spawn(crate::scheduler::run(
        app.clone(),
        app.wake.scheduler.clone(),
        app.wake.delivery.clone(),
        stop_rx.clone(),
        server.poll,
    ));
    let prune = tokio::spawn(crate::scheduler::prune(app.clone(), stop_rx.clone()));
    let socket = match (&server.socket_mode, &server.slack.slack) {
        (Some((base, token)), Some(slack)) => {
            Some(tokio::spawn(crate::slack::socket::run(slack.clone(), base.clone(), token.clone(), stop_rx.clone())))
        }
        _ => None,
    };
    let homes = server.slack.slack.clone().map(|slack| tokio::spawn(slack.watch_homes(stop_rx.clone())));
    let gateway = match (&server.discord.discord, server.discord_gateway) {
        (Some(d), true) => Some(tokio::spawn(crate::discord::gateway::run(d.clone(), stop_rx.clone()))),
        _ => None,
    };
    let dashboard = crate::dashboard::Dashboard { app: app.clone(), token: server.dashboard_token.clone() };
    let api = crate::api::Api::new(app.clone(), |var| server.api_tokens.get(var).cloned());
    let router = routes(app)
        .merge(crate::dashboard::routes(dashboard))
        .merge(crate::api::routes(api))
        .merge(crate::slack::routes::routes(server.slack.clone()))
        .merge(crate::discord::routes::routes(server.discord.clone()));
    let router = harden(router);
    let upkeep = tokio::spawn(crate::metrics::upkeep(stop_rx.clone()));
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new requests or claims; finishing deliveries in flight");
        })
        .await;
    let _ = stop_tx.send(true);
    let (d, s) = tokio::join!(delivery, scheduler);
    if let Err(e) = d.and(s) {
        tracing::error!("a background task ended abnormally: {e}");
    }
    let _ = upkeep.await;
    let _ = prune.await;
    for task in [socket, gateway, homes].into_iter().flatten() {
        if let Err(e) = task.await {
            tracing::error!("a chat connection ended abnormally: {e}");
        }
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// What every request passes through: its latency is recorded, and a panic in its handler is
/// logged and answered `500` with a reason instead of dropping the connection (which a platform
/// reports to the user as a silent failure).
pub fn harden(router: Router) -> Router {
    // The recorder is installed before the first request, not by the first task that asks.
    crate::metrics::handle();
    // The panic is caught inside the latency layer, so the request is counted, with its 500.
    router
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(answer_panic))
        .layer(axum::middleware::from_fn(crate::metrics::track))
}

fn answer_panic(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("no message");
    tracing::error!("a request handler panicked: {what}");
    let why = "Baton failed on this request (a bug, now in its log); nothing was changed unless a reply says so. Try again or tell the operators.";
    axum::response::IntoResponse::into_response((StatusCode::INTERNAL_SERVER_ERROR, why))
}

/// The HTTP routes.
pub fn routes(app: App) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(app))
}

/// Prometheus metrics.
async fn metrics(State(app): State<Arc<App>>) -> (StatusCode, [(axum::http::HeaderName, &'static str); 1], String) {
    let content_type = (axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4");
    match crate::metrics::render(&app.store).await {
        Ok(text) => (StatusCode::OK, [content_type], text),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, [content_type], format!("# metrics unavailable: {e:#}\n")),
    }
}

/// Ready when the database answers and every migration this binary knows is applied.
async fn ready(State(app): State<Arc<App>>) -> (StatusCode, String) {
    match app.store.ready().await {
        Ok(()) => (StatusCode::OK, "ready".into()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e:#}")),
    }
}

/// The process's SIGHUP and SIGTERM streams, registered once at start so that no signal is missed
/// or, arriving early, takes its default (fatal) action.
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers the handlers.
    pub fn install() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals { hup: signal(SignalKind::hangup())?, term: signal(SignalKind::terminate())? })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for SIGTERM or Ctrl-C (`None`: stop) or for a SIGHUP whose configuration `reload`
    /// accepts (`Some(model)`: restart with it). A refused configuration keeps the running one;
    /// the log and the architects' channel say why.
    pub async fn next(
        &mut self,
        app: &App,
        reload: impl Fn() -> Result<baton_core::OperatingModel, Vec<baton_core::config::ConfigError>>,
    ) -> Option<baton_core::OperatingModel> {
        loop {
            #[cfg(unix)]
            let (hangup, term) = (self.hup.recv(), self.term.recv());
            #[cfg(not(unix))]
            let (hangup, term) = (std::future::pending::<Option<()>>(), std::future::pending::<Option<()>>());
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return None,
                _ = term => return None,
                _ = hangup => match reload() {
                    Ok(model) => return Some(model),
                    Err(errors) => refuse_reload(app, &errors).await,
                },
            }
        }
    }
}

/// Logs why a new configuration was refused and tells the architects' channel.
async fn refuse_reload(app: &App, errors: &[baton_core::config::ConfigError]) {
    for e in errors {
        tracing::error!("reload refused: {e}");
    }
    let lines: Vec<String> = errors.iter().map(|e| format!("• {e}")).collect();
    let text = format!(
        "The new operating model was refused ({} problem(s)); Baton keeps running on the last good one.\n{}",
        errors.len(),
        lines.join("\n")
    );
    let to = match &app.model.architects_channel {
        Some(c) => baton_core::Recipient::SlackChannel(c.clone()),
        None => {
            tracing::warn!("no architects_channel is configured to report the refused reload to");
            return;
        }
    };
    let now = chrono::Utc::now();
    let intent = baton_core::Intent::message(to, baton_core::IntentKind::Notice, text);
    if let Err(e) = app.reply_once(&format!("config-reload:{}", now.timestamp_millis()), &intent, now).await {
        tracing::error!("could not queue the reload report: {e}");
    }
}
