//! Any operating-model text either loads or is refused with errors: never a panic.
#![no_main]

use baton_core::config::{Source, load};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The first half is the model, the rest a playbook, split at a line of `---`.
    let (model, playbook) = text.split_once("\n---\n").unwrap_or((text, ""));
    let playbooks = [Source { name: "playbooks/p.toml", text: playbook }];
    let _ = load(Source { name: "baton.toml", text: model }, &playbooks[..usize::from(!playbook.is_empty())]);
});
