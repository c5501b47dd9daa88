#![no_main]
//! Fuzz target: `lspci -vvv` output.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = nccltune::parse::lspci::parse(&text);
});
