//! The `baton` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use baton::app::App;
use baton::console::Console;
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
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env(settings::LOG).unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
        Cmd::Console { script } => {
            let model = match load() {
                Ok(m) => m,
                Err(errors) => {
                    for e in &errors {
                        eprintln!("{e}");
                    }
                    anyhow::bail!("the operating model has {} problem(s); `baton check` lists them", errors.len());
                }
            };
            let (url, temp) = match &cli.database_url {
                Some(url) => (url.clone(), None),
                None => {
                    let path = std::env::temp_dir().join(format!("baton-console-{}.db", std::process::id()));
                    (format!("sqlite://{}", path.display()), Some(path))
                }
            };
            let store = Store::open(&url).await?;
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
