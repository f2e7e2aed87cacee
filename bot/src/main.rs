//! The `baton` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use baton::app::App;
use baton::console::Console;
use baton::deliver::{Limits, Outbound};
use baton::discord::routes::Endpoint as DiscordEndpoint;
use baton::discord::verify::Keys;
use baton::discord::{Discord, DiscordApi};
use baton::serve::{self, Server};
use baton::slack::routes::Endpoints;
use baton::slack::{Slack, SlackApi};
use baton::store::Store;
use baton::{config, settings};
use clap::{Parser, Subcommand};

/// Baton keeps cross-function handoffs from being dropped.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The operating model.
    #[arg(long, global = true, env = settings::CONFIG, default_value = settings::DEFAULT_CONFIG)]
    config: PathBuf,
    /// Folder of playbooks (default: `playbooks/` beside the operating model).
    #[arg(long, global = true, env = settings::PLAYBOOKS_DIR)]
    playbooks: Option<PathBuf>,
    /// Database: `postgres://…` or `sqlite://…` (default: sqlite://baton.db; the console uses a
    /// temporary database unless this is given).
    #[arg(long, global = true, env = settings::DATABASE_URL)]
    database_url: Option<String>,
    /// Log format: `text` for people, `json` (one object per line) for log shippers.
    #[arg(long, global = true, env = settings::LOG_FORMAT, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Type chat commands as any configured person, with a simulated clock.
    Console {
        /// Run the commands in FILE instead of reading the terminal.
        #[arg(long)]
        script: Option<PathBuf>,
    },
    /// Check the operating model and playbooks; report every mistake with file and line.
    Check,
    /// Apply database migrations.
    Migrate,
    /// Measure Baton (prints figures; needs a PostgreSQL server it may create databases on).
    Bench {
        #[command(subcommand)]
        which: BenchCmd,
    },
    /// Write the operating model (functions, seams, contracts, SLAs, gates, ladders, playbooks)
    /// as Markdown.
    Docs {
        /// Where to write it (`-` for standard output).
        #[arg(long, default_value = "docs/operating-model.md")]
        out: PathBuf,
    },
    /// Stall history from the database, as `/stalls` gives it to an architect: the report, the
    /// operating-model health report, or the weekly chart.
    Report {
        /// `health` or `chart` (default: the report), then filters: seam=<id> function=<id>
        /// category=<category> owner=<person> tier=<tier> window=<90d|12w>.
        query: Vec<String>,
        /// Output: `table`, `csv` or `json`.
        #[arg(long, default_value = "table", value_parser = ["table", "csv", "json"])]
        format: String,
        /// Health: a checked-in copy of `baton docs` to compare with the live operating model.
        #[arg(long)]
        docs: Option<PathBuf>,
        /// Chart: where to write it (`.png` or `.svg`).
        #[arg(long, default_value = "stalls.png")]
        out: PathBuf,
        /// Report as of this instant (RFC 3339, like 2026-11-30T12:00:00Z; a date alone is the end
        /// of that day, UTC) instead of now.
        #[arg(long, value_parser = settings::parse_instant)]
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Discord set-up.
    Discord {
        #[command(subcommand)]
        which: DiscordCmd,
    },
    /// HTTP API set-up.
    Api {
        #[command(subcommand)]
        which: ApiCmd,
    },
    /// Messages Baton gave up on: list them, and return them to the queue once the cause is fixed.
    Outbox {
        #[command(subcommand)]
        which: OutboxCmd,
    },
    /// Run the bot: HTTP endpoints, the stall scheduler and the delivery worker.
    Serve {
        /// Address to bind (port 0 picks a free one and logs it).
        #[arg(long, env = settings::LISTEN, default_value = settings::DEFAULT_LISTEN)]
        listen: String,
        /// Longest sleep between scheduler and delivery passes (other replicas' work is seen
        /// within this), like `5s` or `500ms`.
        #[arg(long, env = settings::POLL_INTERVAL, default_value = "5s", value_parser = parse_interval)]
        poll_interval: std::time::Duration,
        /// How long a delivery claim lasts before another replica retries the message.
        #[arg(long, env = settings::DELIVERY_LEASE, default_value = "60s", value_parser = parse_interval)]
        delivery_lease: std::time::Duration,
    },
}

#[derive(Debug, Subcommand)]
enum DiscordCmd {
    /// Register Baton's slash commands: in one guild (instant, for testing) or globally.
    Register {
        /// Guild (server) id; without it the commands are global.
        #[arg(long)]
        guild: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ApiCmd {
    /// Send an API client's webhook a signed test delivery (as Baton signs every delivery), to
    /// check that its receiver verifies it and answers 2xx.
    Ping {
        /// The client, as named in `[api.<name>]`.
        client: String,
    },
}

#[derive(Debug, Subcommand)]
enum OutboxCmd {
    /// The dead letters, newest first: to whom, why, and how each began.
    Dead {
        /// How many to list at most.
        #[arg(long, default_value_t = baton::dead::LIMIT)]
        limit: i64,
    },
    /// Return dead letters to the queue (a running `baton serve` delivers them).
    Retry {
        /// Their ids, as `baton outbox dead` lists them (`#42` or `42`).
        #[arg(value_parser = parse_outbox_id, required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<i64>,
        /// Every dead letter.
        #[arg(long)]
        all: bool,
    },
}

/// An outbox id as `baton outbox dead` prints it (`#42`) or bare.
fn parse_outbox_id(s: &str) -> Result<i64, String> {
    s.trim_start_matches('#').parse().map_err(|_| format!("`{s}` is not a message id: give one as listed, like #42"))
}

#[derive(Debug, Subcommand)]
enum BenchCmd {
    /// The front door under load: signed `/handoff new` against `baton serve`, beside `/healthz`
    /// and pgbench's single-row inserts at the same concurrency.
    Serve {
        /// PostgreSQL server URL with rights to create databases (each run uses its own).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        admin_url: String,
        /// Open-loop requests per second.
        #[arg(long, default_value_t = 300)]
        rate: u64,
        /// Closed-loop clients (and pgbench clients).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Length of each run, like `10s`.
        #[arg(long, default_value = "10s", value_parser = parse_interval)]
        duration: std::time::Duration,
        /// Interleaved repeats for the ratios (at least 3).
        #[arg(long, default_value_t = 3)]
        repeats: usize,
    },
    /// `/stalls` over a large history: a team's and the organisation's 90-day report beside a bare
    /// SQL count of the same window.
    History {
        /// PostgreSQL server URL with rights to create databases (the run uses its own).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        admin_url: String,
        /// Handoffs to generate.
        #[arg(long, default_value_t = 1_000_000)]
        handoffs: i64,
        /// Audit events to generate.
        #[arg(long, default_value_t = 10_000_000)]
        events: i64,
        /// Reports timed per query.
        #[arg(long, default_value_t = 200)]
        runs: usize,
        /// Keep the generated database (its URL is printed) instead of dropping it.
        #[arg(long)]
        keep: bool,
    },
    /// Sweep cost against the number of open handoffs, and due-to-delivered time for many due at once.
    Escalation {
        /// PostgreSQL server URL with rights to create databases (each run uses its own).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        admin_url: String,
        /// Open handoff counts to compare, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1000000,4000000")]
        open: Vec<u64>,
        /// Handoffs due at once.
        #[arg(long, default_value_t = 10_000)]
        due: u64,
    },
}

/// `5s`, `500ms`, `2m`: above zero, at most a day.
fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let trimmed = s.trim();
    let (digits, unit) = trimmed.split_at(trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len()));
    let n: u64 = digits.parse().map_err(|_| format!("`{s}`: write a number and a unit, like 5s or 500ms"))?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        _ => return Err(format!("`{s}`: the unit must be ms, s or m")),
    };
    match millis {
        Some(0) => Err(format!("`{s}`: give a duration above 0")),
        Some(ms) if ms <= 86_400_000 => Ok(std::time::Duration::from_millis(ms)),
        _ => Err(format!("`{s}`: give at most a day (1440m)")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The console's output is the conversation: its own progress logs (jobs run, …) would
    // interleave with it, so it logs warnings only unless asked.
    let default = if matches!(cli.command, Cmd::Console { .. }) { "warn" } else { "warn,baton=info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env(settings::LOG).unwrap_or_else(|_| default.into());
    // Colours only for a terminal: log files and collectors get plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(colour).with_writer(std::io::stderr);
    if cli.log_format == "json" {
        // One JSON object per line, with the span (handoff id, interaction) it was logged in.
        logs.json().with_current_span(true).init();
    } else {
        logs.init();
    }
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("baton: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let load = || config::load_files(&cli.config, cli.playbooks.as_deref());
    let load_model = || {
        load().map_err(|errors| {
            for e in &errors {
                eprintln!("{e}");
            }
            anyhow::anyhow!("the operating model has {} problem(s); `baton check` lists them", errors.len())
        })
    };
    match cli.command {
        Cmd::Check => match load() {
            Ok(model) => {
                println!(
                    "{}: ok ({} functions, {} people, {} seams, {} playbooks)",
                    cli.config.display(),
                    model.functions.len(),
                    model.people.len(),
                    model.seams.len(),
                    model.playbooks.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(errors) => {
                for e in &errors {
                    eprintln!("{e}");
                }
                eprintln!("{} problem(s) found", errors.len());
                Ok(ExitCode::FAILURE)
            }
        },
        Cmd::Migrate => {
            let url = cli.database_url.as_deref().unwrap_or(settings::DEFAULT_DATABASE_URL);
            Store::open(url).await?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Report { query, format, docs, out, at } => {
            let model = load_model()?;
            let url = cli.database_url.as_deref().unwrap_or(settings::DEFAULT_DATABASE_URL);
            require_existing(url)?;
            let store = Store::open(url).await?;
            let request = baton::report::Request { query, format, docs, out };
            match baton::report::run(&store, &model, request, at.unwrap_or_else(chrono::Utc::now)).await {
                Ok(text) => {
                    print!("{text}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("baton report: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Cmd::Docs { out } => {
            let text = baton_core::docs::markdown(&load_model()?);
            if out.as_os_str() == "-" {
                print!("{text}");
            } else {
                std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
                println!("wrote {}", out.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Discord { which: DiscordCmd::Register { guild } } => {
            let model = load_model()?;
            let out = outbound_from_env(&model)?;
            let api = out.discord.context("DISCORD_BOT_TOKEN is not set")?;
            let app_id = std::env::var(settings::DISCORD_APPLICATION_ID)
                .ok()
                .filter(|v| !v.is_empty())
                .context("DISCORD_APPLICATION_ID is not set")?;
            let defs = baton::discord::commands::definitions(&model);
            let answer = api.register(&app_id, guild.as_deref(), &defs).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let n = answer.as_array().map_or(0, Vec::len);
            let scope =
                guild.map_or("globally (may take up to an hour to appear)".to_string(), |g| format!("in guild {g}"));
            println!("registered {n} commands {scope}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Outbox { which } => {
            let url = cli.database_url.as_deref().unwrap_or(settings::DEFAULT_DATABASE_URL);
            require_existing(url)?;
            let store = Store::open(url).await?;
            let text = match which {
                OutboxCmd::Dead { limit } => baton::dead::list(&store, limit).await?,
                OutboxCmd::Retry { ids, all } => {
                    let which = if all { baton::dead::Which::All } else { baton::dead::Which::Ids(ids) };
                    baton::dead::retry(&store, which, chrono::Utc::now()).await?
                }
            };
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Api { which: ApiCmd::Ping { client } } => {
            let model = load_model()?;
            let Some(config) = model.api.get(&client) else {
                let known: Vec<&str> = model.api.keys().map(String::as_str).collect();
                anyhow::bail!("no API client `{client}` in the operating model; clients: {}", known.join(", "));
            };
            let Some(url_env) = &config.webhook_env else {
                anyhow::bail!(
                    "API client `{client}` has no webhook: add `webhook_env = \"<VARIABLE>\"` to [api.{client}]"
                );
            };
            let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
            let hooks = baton::webhook::Hooks::new(&model, var)?;
            if !hooks.has(&client) {
                anyhow::bail!(
                    "{url_env} (the webhook's URL) and {} (its signing token) must both be set",
                    config.token_env
                );
            }
            let text = format!("A test delivery from `baton api ping {client}`: your receiver verified its signature.");
            let intent = baton_core::Intent::message(
                baton_core::Recipient::Client(client.clone()),
                baton_core::IntentKind::Notice,
                text,
            );
            let now = chrono::Utc::now();
            match hooks.send(&client, None, &intent, 0, None, now).await {
                Ok(_) => {
                    println!("{client}'s webhook took the test delivery (signed, X-Baton-Delivery: 0)");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{client}'s webhook did not take the test delivery: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Cmd::Bench { which: BenchCmd::Serve { admin_url, rate, concurrency, duration, repeats } } => {
            let plan = baton::bench_serve::Plan { admin_url, rate, concurrency, duration, repeats };
            baton::bench_serve::run(plan).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench { which: BenchCmd::History { admin_url, handoffs, events, runs, keep } } => {
            let plan = baton::bench_history::Plan { admin_url, handoffs, events, runs, keep };
            baton::bench_history::run(load_model()?, plan).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench { which: BenchCmd::Escalation { admin_url, open, due } } => {
            baton::bench::escalation(load_model()?, &admin_url, &open, due).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve { listen, poll_interval, delivery_lease } => {
            // Take over SIGHUP and SIGTERM before anything can send them: their default action
            // would end the process instead of reloading or stopping gracefully.
            let signals = std::sync::Arc::new(tokio::sync::Mutex::new(serve::Signals::install()?));
            let mut model = load_model()?;
            let url = cli.database_url.as_deref().unwrap_or(settings::DEFAULT_DATABASE_URL);
            let store = Store::open(url).await?;
            let lease = chrono::Duration::from_std(delivery_lease).context("delivery lease too long")?;
            // One socket for the process: a reload restarts the server on it without a gap in binding.
            let socket = std::net::TcpListener::bind(&listen).with_context(|| {
                format!("binding {listen} (--listen or {}: host:port, like 0.0.0.0:8080)", settings::LISTEN)
            })?;
            socket.set_nonblocking(true)?;
            let (config_path, playbooks_dir) = (cli.config.clone(), cli.playbooks.clone());
            loop {
                let (config_path, playbooks_dir) = (config_path.clone(), playbooks_dir.clone());
                let reload = move || config::load_files(&config_path, playbooks_dir.as_deref());
                let app = App::new(store.clone(), model);
                let server = build_server(app.clone(), poll_interval, lease)?;
                let listener = tokio::net::TcpListener::from_std(socket.try_clone()?)?;
                let next = std::sync::Arc::new(std::sync::Mutex::new(None));
                let slot = next.clone();
                let signals = signals.clone();
                let shutdown = async move {
                    let reloaded = signals.lock().await.next(&app, reload).await;
                    if let Ok(mut s) = slot.lock() {
                        *s = reloaded;
                    }
                };
                serve::run(server, listener, shutdown).await?;
                let reloaded = next.lock().ok().and_then(|mut s| s.take());
                match reloaded {
                    Some(m) => {
                        tracing::info!("operating model reloaded");
                        model = m;
                    }
                    None => return Ok(ExitCode::SUCCESS),
                }
            }
        }
        Cmd::Console { script } => {
            let model = load_model()?;
            let (url, temp) = match &cli.database_url {
                Some(url) => (url.clone(), None),
                None => {
                    let path = std::env::temp_dir().join(format!("baton-console-{}.db", std::process::id()));
                    (format!("sqlite://{}", path.display()), Some(path))
                }
            };
            let store = Store::open(&url).await?;
            store.rekey_open(&model).await?;
            let app = App::new(store, model);
            eprintln!(
                "baton console · store: {} · type `help`",
                if temp.is_some() {
                    "temporary SQLite (discarded at exit; set BATON_DATABASE_URL to keep it)"
                } else {
                    url.as_str()
                }
            );
            let mut console = Console::new(app, chrono::Utc::now(), std::io::stdout().lock());
            let result = match script {
                Some(path) => {
                    let file =
                        tokio::fs::File::open(&path).await.with_context(|| format!("opening {}", path.display()))?;
                    console.run(tokio::io::BufReader::new(file), true).await
                }
                None => console.run(tokio::io::BufReader::new(tokio::io::stdin()), false).await,
            };
            let failures = console.failures;
            if let Some(path) = temp {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            result?;
            Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

/// The platforms whose credentials are set; the log says which are not started. A base URL
/// that is not one is refused, naming its variable.
fn outbound_from_env(model: &baton_core::OperatingModel) -> anyhow::Result<Outbound> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let base = |name: &str, default: &str| {
        let base = var(name).unwrap_or_else(|| default.into());
        match settings::is_http_address(&base) {
            true => Ok(base),
            false => Err(anyhow::anyhow!("{name} must be an http(s) address like {default}, not `{base}`")),
        }
    };
    let limits = Limits::default();
    let slack = match var(settings::SLACK_BOT_TOKEN) {
        Some(token) => {
            let base = base(settings::SLACK_API_BASE_URL, settings::DEFAULT_SLACK_API_BASE_URL)?;
            Some(SlackApi::new(&base, &token, limits.clone()))
        }
        None => {
            tracing::warn!("{} is not set: Slack is not started", settings::SLACK_BOT_TOKEN);
            None
        }
    };
    let discord = match var(settings::DISCORD_BOT_TOKEN) {
        Some(token) => {
            let base = base(settings::DISCORD_API_BASE_URL, settings::DEFAULT_DISCORD_API_BASE_URL)?;
            Some(DiscordApi::new(&base, &token, limits))
        }
        None => {
            tracing::warn!("{} is not set: Discord is not started", settings::DISCORD_BOT_TOKEN);
            None
        }
    };
    let hooks = baton::webhook::Hooks::new(model, var)?;
    Ok(Outbound { slack, discord, hooks })
}

/// `baton serve`'s server for one operating model, from the environment.
fn build_server(app: App, poll: std::time::Duration, lease: chrono::Duration) -> anyhow::Result<Server> {
    let out = outbound_from_env(&app.model)?;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let slack = out.slack.clone().map(|api| Slack {
        app: app.clone(),
        api,
        ack_budget: baton::slack::handler::ACK_BUDGET,
        homes: Default::default(),
    });
    let signing_secret = var(settings::SLACK_SIGNING_SECRET);
    if slack.is_some() && signing_secret.is_none() {
        tracing::warn!("{} is not set: /slack/* answers 503", settings::SLACK_SIGNING_SECRET);
    }
    let socket_mode = var(settings::SLACK_APP_TOKEN).map(|token| {
        let base = var(settings::SLACK_API_BASE_URL).unwrap_or_else(|| settings::DEFAULT_SLACK_API_BASE_URL.into());
        (base, token)
    });
    let discord_keys = match var(settings::DISCORD_PUBLIC_KEY) {
        Some(k) => Some(Keys::new(&k).map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    let discord = match (out.discord.clone(), var(settings::DISCORD_APPLICATION_ID)) {
        (Some(api), Some(application_id)) => {
            Some(Discord { app: app.clone(), api, application_id, ack_budget: baton::discord::handler::ACK_BUDGET })
        }
        (Some(_), None) => {
            tracing::warn!("{} is not set: Discord interactions are not served", settings::DISCORD_APPLICATION_ID);
            None
        }
        _ => None,
    };
    let dashboard_token = var(settings::DASHBOARD_TOKEN);
    if dashboard_token.is_none() {
        tracing::info!("{} is not set: /dashboard is off", settings::DASHBOARD_TOKEN);
    }
    let api_tokens = app.model.api.values().filter_map(|c| Some((c.token_env.clone(), var(&c.token_env)?))).collect();
    let discord_gateway = match var(settings::DISCORD_TRANSPORT).as_deref() {
        None | Some("http") => false,
        Some("gateway") => true,
        Some(other) => {
            anyhow::bail!("{} must be `http` or `gateway`, not `{other}`", settings::DISCORD_TRANSPORT)
        }
    };
    let server = Server {
        discord: std::sync::Arc::new(DiscordEndpoint { discord, keys: discord_keys }),
        discord_gateway,
        app,
        out,
        poll,
        lease,
        slack: Endpoints { slack, signing_secret },
        socket_mode,
        dashboard_token,
        api_tokens,
    };
    Ok(server)
}

/// A report reads Baton's database: on SQLite, a missing file is a wrong path to say so, not an empty
/// database to create and report zeros from.
fn require_existing(url: &str) -> anyhow::Result<()> {
    let Some(rest) = url.strip_prefix("sqlite://") else { return Ok(()) };
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" || std::path::Path::new(path).exists() {
        return Ok(());
    }
    anyhow::bail!(
        "there is no database at {path}: give the one `baton serve` uses with --database-url (or BATON_DATABASE_URL)"
    )
}
