#![no_main]
//! Fuzz target: verify expectations TOML.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = nccltune::verify::expect::Expectations::parse(&text, "fuzz.toml");
});
