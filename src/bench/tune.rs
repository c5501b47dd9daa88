//! `bench tune`: from sweep runs (one run per NCCL_ALGO x NCCL_PROTO), the fastest choice per
//! collective and size range, as rows of `nccl_tuner.conf` for NCCL's example tuner plugin
//! (`collective_type,min_bytes,max_bytes,algorithm,protocol,channels,nNodes,nRanks`; landscape.md §1.2).

use crate::parse::nccl_tests::Run;
use serde::Serialize;

/// The size ranges NCCL's `optimize_config.py` bins into (landscape.md §1.2).
pub const BINS: [(u64, u64); 5] = [
    (0, 1 << 10),
    (1 << 10, 64 << 10),
    (64 << 10, 1 << 20),
    (1 << 20, 16 << 20),
    (16 << 20, 4 << 30),
];

/// One sweep run and the choice it was made with.
#[derive(Debug, Clone)]
pub struct SweepRun {
    pub run: Run,
    /// `None` for the run with NCCL's defaults.
    pub algo: Option<String>,
    pub proto: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    pub collective: String,
    pub min_bytes: u64,
    pub max_bytes: u64,
    pub algorithm: String,
    pub protocol: String,
    pub nnodes: i64,
    pub nranks: i64,
    /// Mean time over the bin's sizes, microseconds.
    pub time_us: f64,
    /// The default run's mean time over the same sizes, when a default run was given.
    pub default_time_us: Option<f64>,
    /// Speed-up against the default, percent.
    pub gain_pct: Option<f64>,
}

const ALGOS: [&str; 7] = [
    "tree",
    "ring",
    "collnet_direct",
    "collnet_chain",
    "nvls",
    "nvls_tree",
    "pat",
];
const PROTOS: [&str; 3] = ["ll128", "ll", "simple"];

/// Algorithm and protocol from an environment map (JSON `env`) or a file name such as
/// `all_reduce.Ring.LL128.txt`.
pub fn choice_from(
    env_algo: Option<&str>,
    env_proto: Option<&str>,
    source: &str,
) -> (Option<String>, Option<String>) {
    let name = source.rsplit('/').next().unwrap_or(source).to_lowercase();
    let tokens: Vec<&str> = name
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .collect();
    let algo = env_algo.map(str::to_lowercase).or_else(|| {
        tokens.iter().find_map(|t| {
            ALGOS
                .iter()
                .find(|a| **a == *t || t.ends_with(&format!("_{a}")))
                .map(|a| a.to_string())
        })
    });
    let proto = env_proto.map(str::to_lowercase).or_else(|| {
        tokens
            .iter()
            .find_map(|t| PROTOS.iter().find(|p| **p == *t).map(|p| p.to_string()))
    });
    (algo, proto)
}

/// The collective name the tuner file uses (`allreduce`, not `all_reduce`).
fn tuner_name(collective: &str) -> Option<&'static str> {
    Some(match collective {
        "all_reduce" => "allreduce",
        "all_gather" => "allgather",
        "reduce_scatter" => "reducescatter",
        "broadcast" => "broadcast",
        "reduce" => "reduce",
        _ => return None,
    })
}

fn mean_time(run: &Run, lo: u64, hi: u64) -> Option<f64> {
    let t: Vec<f64> = run
        .rows
        .iter()
        .filter(|r| r.size_bytes >= lo && r.size_bytes < hi)
        .filter_map(|r| r.out_of_place.time_us)
        .collect();
    (!t.is_empty()).then(|| t.iter().sum::<f64>() / t.len() as f64)
}

/// Picks the fastest (algorithm, protocol) per collective and size bin. Runs without a known
/// choice other than the default one are ignored.
pub fn tune(runs: &[SweepRun]) -> Vec<Choice> {
    let mut out = Vec::new();
    let mut collectives: Vec<String> = runs.iter().filter_map(|r| r.run.collective.clone()).collect();
    collectives.sort();
    collectives.dedup();
    for coll in collectives {
        let Some(name) = tuner_name(&coll) else { continue };
        let of_coll: Vec<&SweepRun> = runs
            .iter()
            .filter(|r| r.run.collective.as_deref() == Some(&coll))
            .collect();
        let default = of_coll.iter().find(|r| r.algo.is_none() && r.proto.is_none());
        for (lo, hi) in BINS {
            let best = of_coll
                .iter()
                .filter(|r| r.algo.is_some() || r.proto.is_some())
                .filter_map(|r| Some((mean_time(&r.run, lo, hi)?, *r)))
                .min_by(|a, b| a.0.total_cmp(&b.0));
            let Some((time, r)) = best else { continue };
            let default_time = default.and_then(|d| mean_time(&d.run, lo, hi));
            let hosts = {
                let mut h: Vec<&str> = r.run.devices.iter().map(|d| d.host.as_str()).collect();
                h.sort_unstable();
                h.dedup();
                h.len()
            };
            out.push(Choice {
                collective: name.to_string(),
                min_bytes: lo,
                max_bytes: hi,
                algorithm: r.algo.clone().unwrap_or_else(|| "-1".into()),
                protocol: r.proto.clone().unwrap_or_else(|| "-1".into()),
                nnodes: if hosts > 0 { hosts as i64 } else { -1 },
                nranks: r.run.nranks.map_or(-1, i64::from),
                time_us: (time * 100.0).round() / 100.0,
                default_time_us: default_time.map(|d| (d * 100.0).round() / 100.0),
                gain_pct: default_time.map(|d| ((d - time) / d * 1000.0).round() / 10.0),
            });
        }
    }
    out
}

/// The `nccl_tuner.conf` text.
pub fn to_conf(choices: &[Choice]) -> String {
    let mut s = String::from(
        "# nccl_tuner.conf for NCCL's example tuner plugin, written by nccltune bench tune.\n\
         # collective_type,min_bytes,max_bytes,algorithm,protocol,channels,nNodes,nRanks\n\
         # channels -1 keeps NCCL's default. Load with:\n\
         #   export NCCL_TUNER_PLUGIN=<path to the example plugin .so>\n\
         #   export NCCL_TUNER_CONFIG_FILE=<path to this file>\n",
    );
    for c in choices {
        s.push_str(&format!(
            "{},{},{},{},{},-1,{},{}\n",
            c.collective, c.min_bytes, c.max_bytes, c.algorithm, c.protocol, c.nnodes, c.nranks
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_come_from_the_environment_or_the_file_name() {
        assert_eq!(
            choice_from(None, None, "sweep/all_reduce.Ring.LL128.txt"),
            (Some("ring".into()), Some("ll128".into()))
        );
        assert_eq!(
            choice_from(Some("Tree"), Some("Simple"), "x.json"),
            (Some("tree".into()), Some("simple".into()))
        );
        assert_eq!(choice_from(None, None, "default.txt"), (None, None));
    }
}
