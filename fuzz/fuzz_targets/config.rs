//! Feeds arbitrary bytes to the config parser and the fix planner's text handling.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = ci_doctor::facts::config::ParsedConfig::parse(text) {
        for entry in &parsed.entries {
            let _ = entry.label();
        }
    }
    let normalized = ci_doctor::fix::text::normalize(text);
    assert_eq!(ci_doctor::fix::text::reconstruct(text, &normalized), text);
});
