//! Arbitrary bytes through the whole config loader (YAML parse, serde,
//! validation): it may reject anything, but must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(loaded) = casewatch::config::from_yaml_str(&text, "fuzz.yaml") {
        // A config that loads must also describe itself without panicking.
        let _ = format!("{:?}", loaded.config);
    }
});
