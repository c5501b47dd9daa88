#![no_main]
//! Fuzz target: `nvidia-smi topo -m` output.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(t) = nccltune::parse::topo::parse(&text) { let _ = t.gpu_indices(); for c in t.nic_columns() { let _ = t.path("GPU0", c); } }
});
