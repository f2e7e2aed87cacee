//! The `baton` bot: everything that does IO around the pure `baton-core`.
//!
//! - [`store`]: PostgreSQL or SQLite, one transaction per decision.
//! - [`app`]: loads, decides through the core, saves; runs stall sweeps.
//! - [`console`]: the chat commands in a terminal on a simulated clock.
//! - [`config`]: reads the operating model and playbooks from disk.
//! - [`scheduler`], [`jobs`]: stall sweeps and periodic jobs inside `baton serve`.
//! - [`deliver`]: the outbox worker (digests, retries, rate limits, dead letters).
//! - [`slack`], [`discord`]: the platforms' wire formats; nothing else knows them.
//! - [`serve`]: `baton serve` (HTTP routes, background tasks, graceful shutdown).
//! - [`api`]: the HTTP API for integrations and agents (`/api/v1`); [`webhook`] delivers their
//!   people's messages to them.
//! - [`reviewer`]: calls webhook reviewers.
//! - [`settings`]: every environment variable Baton reads.

pub mod api;
pub mod app;
pub mod bench;
pub mod bench_history;
pub mod bench_serve;
pub mod config;
pub mod console;
pub mod dashboard;
pub mod dead;
pub mod deliver;
pub mod discord;
pub mod jobs;
pub mod metrics;
pub mod reconnect;
pub mod report;
pub mod reviewer;
pub mod scheduler;
pub mod serve;
pub mod settings;
pub mod slack;
pub mod store;
pub mod webhook;
