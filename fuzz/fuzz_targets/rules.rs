#![no_main]
//! Fuzz target: configure rules TOML.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = nccltune::configure::rules::parse_user(&text, "fuzz.toml");
});
