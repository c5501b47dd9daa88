#![no_main]
//! Fuzz target: env files, job scripts and nccl.conf.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = nccltune::lint::envfile::parse(&text, "fuzz", nccltune::lint::envfile::Syntax::Shell); let _ = nccltune::lint::envfile::parse(&text, "fuzz", nccltune::lint::envfile::Syntax::NcclConf);
});
