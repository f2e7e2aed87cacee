//! The `baton` bot: everything that does IO around the pure `baton-core`.
//!
//! - [`store`]: PostgreSQL or SQLite, one transaction per decision.
//! - [`app`]: loads, decides through the core, saves; runs stall sweeps.
//! - [`console`]: the chat commands in a terminal on a simulated clock.
//! - [`config`]: reads the operating model and playbooks from disk.
//! - [`reviewer`]: calls webhook reviewers.
//! - [`settings`]: every environment variable Baton reads.

pub mod app;
pub mod config;
pub mod console;
pub mod reviewer;
pub mod settings;
pub mod store;
