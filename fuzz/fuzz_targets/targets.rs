#![no_main]
//! Fuzz target: bench targets TOML.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = nccltune::bench::targets::parse_file(&text, "fuzz.toml");
});
