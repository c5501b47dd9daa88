#![no_main]
//! Fuzz target: `place` cluster files (TOML or JSON).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = nccltune::place::cluster::parse(&text, "fuzz.toml");
    let _ = nccltune::place::cluster::parse(&text, "fuzz.json");
});
