//! Feeds arbitrary text to the pipeline's YAML reader.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = ci_doctor::pipeline::yaml::parse(text, 0);
});
