#![no_main]
//! Fuzz target: nccl-tests text output, whole and streamed.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = nccltune::parse::nccl_tests::parse(&text, "fuzz"); let _ = nccltune::parse::nccl_tests::parse_reader(data, "fuzz");
});
