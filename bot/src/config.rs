//! Reads the operating model and playbooks from disk and hands the text to the core's loader.

use std::path::{Path, PathBuf};

use baton_core::OperatingModel;
use baton_core::config::{ConfigError, Source, load};

/// Loads `config` and the playbooks in `playbooks` (default: `playbooks/` beside `config`).
/// Every problem is returned, each naming file, line and field.
pub fn load_files(config: &Path, playbooks: Option<&Path>) -> Result<OperatingModel, Vec<ConfigError>> {
    let unreadable = |path: &Path, e: std::io::Error| ConfigError {
        file: path.display().to_string(),
        line: 0,
        field: "(file)".into(),
        message: format!("cannot read it: {e}"),
    };
    let text = std::fs::read_to_string(config).map_err(|e| vec![unreadable(config, e)])?;
    let dir =
        playbooks.map(Path::to_path_buf).unwrap_or_else(|| config.parent().unwrap_or(Path::new(".")).join("playbooks"));
    let missing = !dir.exists();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        // No playbook folder is fine unless a ladder names a playbook; the loader says so then.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(vec![unreadable(&dir, e)]),
    };
    files.sort();
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for f in &files {
        match std::fs::read_to_string(f) {
            Ok(t) => texts.push((f.display().to_string(), t)),
            Err(e) => errors.push(unreadable(f, e)),
        }
    }
    let name = config.display().to_string();
    let sources: Vec<Source<'_>> = texts.iter().map(|(n, t)| Source { name: n, text: t }).collect();
    match load(Source { name: &name, text: &text }, &sources) {
        Ok(model) if errors.is_empty() => Ok(model),
        Ok(_) => Err(errors),
        Err(mut e) => {
            // Unknown playbooks because their folder is not there: say where they were looked for.
            if missing && e.iter().any(|e| e.message.starts_with("unknown playbook")) {
                errors.push(ConfigError {
                    file: dir.display().to_string(),
                    line: 0,
                    field: "(folder)".into(),
                    message: "no such folder, so no playbooks were read; playbooks are read from `playbooks/` \
                              beside the operating model, or from --playbooks (BATON_PLAYBOOKS_DIR)"
                        .into(),
                });
            }
            errors.append(&mut e);
            Err(errors)
        }
    }
}
