#![no_main]
//! Fuzz target: NCCL_DEBUG=INFO logs.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = nccltune::parse::nccl_log::parse(&text);
});
