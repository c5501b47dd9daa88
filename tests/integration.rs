//! Integration tests: the real binary on bundled fixtures, and every parser on the real
//! captures in `../shared/samples` (skipped with a note when that folder is absent).

mod integration {
    mod bench;
    mod bench_run;
    mod cli;
    pub mod common;
    mod configure;
    mod conformance;
    mod conformance_verify;
    mod conventions;
    mod detect;
    mod evidence;
    mod fleet;
    mod gpus;
    mod hostile;
    mod lint;
    mod place;
    mod qos;
    pub mod robustness;
    mod verify;
}
