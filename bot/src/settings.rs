//! Every environment variable Baton reads, in one place (the README's configuration reference
//! lists the same names).

/// Path of the operating model.
pub const CONFIG: &str = "BATON_CONFIG";
/// Default operating model path.
pub const DEFAULT_CONFIG: &str = "baton.toml";
/// Folder of playbook files (default: `playbooks/` beside the operating model).
pub const PLAYBOOKS_DIR: &str = "BATON_PLAYBOOKS_DIR";
/// `postgres://…` or `sqlite://…`.
pub const DATABASE_URL: &str = "BATON_DATABASE_URL";
/// Default store: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://baton.db";
/// Log filter (`info`, `baton=debug`, …).
pub const LOG: &str = "RUST_LOG";
