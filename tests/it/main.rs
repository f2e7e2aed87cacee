//! Baton's integration tests: one binary, a module per area (see matklad, "How to Test").

mod api;
mod cli;
mod console;
mod dashboard;
mod deploy;
mod discord;
mod engine;
mod fake_discord;
mod fake_slack;
mod history;
mod one_open;
mod playbooks;
mod replicas;
mod review;
mod slack;
mod store;
mod support;
