//! Property-style robustness: no parser panics on arbitrary bytes, on truncations of real-format
//! fixtures, or on fixtures with random bytes flipped. A small deterministic PRNG keeps the cases
//! reproducible without a property-testing crate; a failure prints the seed and case.

use super::common::repo;
use nccltune::parse::{
    driver, ibstat, lsmod, nccl_library, nccl_log, nccl_tests, net_sysfs, nvlink, ofed_info, query_gpu,
    rdma_sysfs, topo,
};

/// xorshift64*: deterministic, good enough to spread bytes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn all_node_parsers(text: &str) {
    let _ = ibstat::parse(text);
    let _ = topo::parse(text).map(|t| (t.gpu_indices(), t.nic_columns().len()));
    let _ = nvlink::parse(text);
    let _ = query_gpu::parse(text);
    let _ = lsmod::parse(text);
    let _ = ofed_info::parse(text);
    let _ = rdma_sysfs::parse(text);
    let _ = driver::parse(text);
    let _ = nccl_library::parse(text);
    let _ = net_sysfs::parse(text);
    let _ = nccltune::parse::lspci::parse(text);
    let _ = nccltune::parse::nvidia_smi_q::parse(text);
    let _ = nccl_log::parse(text);
    let _ = nccl_tests::parse(text, "fuzz");
    let _ = nccl_tests::parse_json(text, "fuzz");
    let _ = nccltune::lint::envfile::parse(text, "fuzz", nccltune::lint::envfile::Syntax::Shell);
    let _ = nccltune::lint::envfile::parse(text, "fuzz", nccltune::lint::envfile::Syntax::NcclConf);
    let _ = nccltune::configure::rules::parse_user(text, "fuzz.toml");
    let _ = nccltune::place::cluster::parse(text, "fuzz.toml");
    let _ = nccltune::bench::targets::parse_file(text, "fuzz.toml");
}

/// Text-shaped noise: mostly the characters these formats are made of.
fn noise(rng: &mut Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"GPUNIC0123456789 \t\n:,.-_/[]()'XNVPIXSYSmlx5_ActiveDownLink: GB/s#\x1b\xff";
    let bytes: Vec<u8> = (0..len).map(|_| ALPHABET[rng.below(ALPHABET.len())]).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn node_parsers_survive_noise() {
    let mut rng = Rng::new(0x5eed);
    for case in 0..400 {
        let len = rng.below(600);
        let text = noise(&mut rng, len);
        let result = std::panic::catch_unwind(|| all_node_parsers(&text));
        assert!(result.is_ok(), "case {case} panicked on {text:?}");
    }
}

#[test]
fn node_parsers_survive_cut_and_mutated_fixtures() {
    let mut rng = Rng::new(42);
    let nodes = repo().join("fixtures/nodes");
    for node in std::fs::read_dir(&nodes)
        .expect("fixtures")
        .filter_map(|e| e.ok())
    {
        for file in std::fs::read_dir(node.path())
            .expect("node")
            .filter_map(|e| e.ok())
        {
            let bytes = std::fs::read(file.path()).expect("read");
            for _ in 0..8 {
                let mut b = bytes.clone();
                b.truncate(rng.below(bytes.len() + 1));
                for _ in 0..rng.below(4) {
                    if !b.is_empty() {
                        let i = rng.below(b.len());
                        b[i] = (rng.next() & 0xff) as u8;
                    }
                }
                let text = String::from_utf8_lossy(&b).into_owned();
                let result = std::panic::catch_unwind(|| all_node_parsers(&text));
                assert!(result.is_ok(), "{} mutated to {text:?}", file.path().display());
            }
        }
    }
}
