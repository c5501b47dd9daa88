#![no_main]
//! Fuzz target: the sysfs network interface listing.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = nccltune::parse::net_sysfs::parse(&text);
});
