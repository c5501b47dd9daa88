#![no_main]
//! Fuzz target: `ibstat` output.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = nccltune::parse::ibstat::parse(&text);
});
