//! Bandwidth targets: a `--targets FILE`, a built-in `--profile` (profiles.toml, every number
//! with its source), or derived from a node report.

use crate::node::NodeReport;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub collective: String,
    pub busbw_gbps: f64,
    /// NVLS/SHARP: busbw is not wire bandwidth.
    #[serde(default)]
    pub in_switch_reduction: bool,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `intra-node` or `multi-node`.
    #[serde(default)]
    pub scope: String,
    #[serde(default = "default_min_bytes")]
    pub min_bytes: u64,
    #[serde(default = "default_fraction")]
    pub acceptable_fraction: f64,
    #[serde(default, rename = "target")]
    pub targets: Vec<Target>,
    /// The GPU model these targets are for (a key of gpus.toml: `H100`, `A100`, ...); a run on
    /// other GPUs does not fit them.
    #[serde(default)]
    pub gpu: Option<String>,
    /// GPUs per node these targets assume; a run with another rank count per host does not fit.
    #[serde(default)]
    pub gpus_per_node: Option<u32>,
    /// Where these targets came from (filled in when loaded).
    #[serde(skip)]
    pub from: String,
    #[serde(skip)]
    pub multi_node: bool,
}

fn default_min_bytes() -> u64 {
    super::DEFAULT_MIN_BYTES
}
fn default_fraction() -> f64 {
    0.9
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    profile: Vec<Targets>,
}

const PROFILES: &str = include_str!("profiles.toml");

impl Targets {
    pub fn for_collective(&self, collective: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.collective == collective)
    }

    fn validate(mut self, from: String) -> Result<Targets> {
        if !matches!(self.scope.as_str(), "" | "intra-node" | "multi-node") {
            bail!(
                "{from}: scope {:?}: expected \"intra-node\" (NVLink, one node) or \"multi-node\" (network)",
                self.scope
            );
        }
        if let Some(g) = &self.gpu {
            let models = super::infer::models()?;
            match models.iter().find(|m| m.key.eq_ignore_ascii_case(g)) {
                Some(m) => self.gpu = Some(m.key.clone()),
                None => bail!(
                    "{from}: gpu {g:?}: expected one of {}",
                    models
                        .iter()
                        .map(|m| m.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        if self.gpus_per_node == Some(0) {
            bail!("{from}: gpus_per_node must be at least 1");
        }
        if !(self.acceptable_fraction > 0.0 && self.acceptable_fraction <= 1.0) {
            bail!(
                "{from}: acceptable_fraction {} must be in (0, 1], e.g. 0.9",
                self.acceptable_fraction
            );
        }
        for t in &self.targets {
            if super::busbw_factor(&t.collective, 2).is_none() {
                bail!(
                    "{from}: target collective {:?}: expected one of all_reduce, all_gather, reduce_scatter, alltoall, broadcast, reduce, sendrecv, gather, scatter",
                    t.collective
                );
            }
            if !(t.busbw_gbps.is_finite() && t.busbw_gbps > 0.0) {
                bail!(
                    "{from}: target {}: busbw_gbps must be a positive number of GB/s",
                    t.collective
                );
            }
        }
        self.multi_node = self.scope == "multi-node";
        self.from = from;
        Ok(self)
    }
}

/// Names of the built-in profiles.
pub fn profile_names() -> Vec<String> {
    builtin()
        .map(|p| p.into_iter().map(|t| t.name).collect())
        .unwrap_or_default()
}

fn builtin() -> Result<Vec<Targets>> {
    let f: ProfileFile = toml::from_str(PROFILES).context("built-in profiles.toml")?;
    Ok(f.profile)
}

pub fn profile(name: &str) -> Result<Targets> {
    let all = builtin()?;
    let names: Vec<String> = all.iter().map(|p| p.name.clone()).collect();
    let p = all.into_iter().find(|p| p.name == name).with_context(|| {
        format!(
            "--profile {name}: unknown profile; built-in profiles: {}",
            names.join(", ")
        )
    })?;
    p.validate(format!("profile {name}"))
}

pub fn parse_file(text: &str, source: &str) -> Result<Targets> {
    let t: Targets = toml::from_str(text).map_err(|e| {
        anyhow::anyhow!("{source}: {}\nexpected: min_bytes, acceptable_fraction, optional scope (intra-node/multi-node), gpu, gpus_per_node, and [[target]] tables with collective, busbw_gbps, source", crate::input::toml_error(text, &e))
    })?;
    t.validate(source.to_string())
}

/// Achievable share of the NIC line rate through NCCL: ~48 GB/s of 50 per NDR NIC
/// (AddyLaddy, NVIDIA/nccl-tests #319, #290).
const NIC_EFFICIENCY: f64 = 0.96;
/// NVLink line rate minus ~20 % protocol overhead (sjeaugey, NVIDIA/nccl-tests #212).
const NVLINK_EFFICIENCY: f64 = 0.8;

/// One busbw target for all_reduce, all_gather and reduce_scatter: with point-to-point
/// algorithms their busbw is bounded by the same links (nccl-tests doc/PERFORMANCE.md).
fn same_for_ring_collectives(busbw: f64, source: &str) -> Vec<Target> {
    ["all_reduce", "all_gather", "reduce_scatter"]
        .into_iter()
        .map(|c| Target {
            collective: c.into(),
            busbw_gbps: busbw,
            in_switch_reduction: false,
            source: source.to_string(),
        })
        .collect()
}

/// The NICs that carry NCCL traffic on a node: active InfiniBand ports (else RoCE) at the
/// fastest rate among them (slower ports are front-end or storage). (count, Gb/s).
pub fn rails_of(node: &NodeReport) -> Option<(u32, f64)> {
    let ib: Vec<_> = node.active_nics().filter(|n| n.is_infiniband()).collect();
    let nics = if ib.is_empty() {
        node.active_nics().filter(|n| n.is_roce()).collect()
    } else {
        ib
    };
    let best = nics.iter().filter_map(|n| n.rate_gbps).fold(0.0_f64, f64::max);
    let count = nics.iter().filter(|n| n.rate_gbps == Some(best)).count();
    (count > 0 && best > 0.0).then_some((count as u32, best))
}

/// Targets derived from what a node has. `multi_node` selects the network (NICs) or NVLink.
pub fn from_node(node: &NodeReport, multi_node: bool) -> Result<Targets> {
    let mut t = Targets {
        name: "derived".into(),
        description: String::new(),
        scope: if multi_node { "multi-node" } else { "intra-node" }.into(),
        min_bytes: super::DEFAULT_MIN_BYTES,
        acceptable_fraction: 0.9,
        targets: Vec::new(),
        from: format!("derived from the node report ({})", node.source),
        multi_node,
        gpu: None,
        gpus_per_node: None,
    };
    if multi_node {
        let ib: Vec<_> = node.active_nics().filter(|n| n.is_infiniband()).collect();
        let nics = if ib.is_empty() {
            node.active_nics().filter(|n| n.is_roce()).collect()
        } else {
            ib
        };
        // Only the fastest ports carry NCCL traffic; slower ones are front-end or storage.
        let best = nics.iter().filter_map(|n| n.rate_gbps).fold(0.0_f64, f64::max);
        let rails: Vec<_> = nics.iter().filter(|n| n.rate_gbps == Some(best)).collect();
        if rails.is_empty() || best <= 0.0 {
            bail!(
                "cannot derive network targets: the node report has no active RDMA port with a known rate; use --profile or --targets"
            );
        }
        let per_nic = best / 8.0 * NIC_EFFICIENCY;
        let busbw = (per_nic * rails.len() as f64 * 10.0).round() / 10.0;
        let source = format!(
            "{} x {best} Gb/s ports = {} x {:.1} GB/s line rate x {NIC_EFFICIENCY} achievable through NCCL (AddyLaddy, NVIDIA/nccl-tests #319, #290); valid for NCCL_ALGO=Ring",
            rails.len(),
            rails.len(),
            best / 8.0
        );
        t.description = format!("{} rails of {best} Gb/s", rails.len());
        t.targets = same_for_ring_collectives(busbw, &source);
    } else {
        let h100 = node
            .gpus
            .iter()
            .all(|g| g.name.as_deref().is_some_and(|n| n.contains("H100")));
        if node.nvswitch.present == Some(true) && h100 && node.gpus.len() == 8 {
            t = profile("h100x8-nvswitch")?;
            t.from = format!(
                "profile h100x8-nvswitch, chosen from the node report ({})",
                node.source
            );
            return Ok(t);
        }
        let per_gpu = node
            .nvlink
            .iter()
            .map(|l| l.total_gbps)
            .fold(f64::INFINITY, f64::min);
        if !per_gpu.is_finite() || per_gpu <= 0.0 {
            bail!(
                "cannot derive intra-node targets: no NVLink on this node, and the references give no figure for PCIe-only nodes; use --targets"
            );
        }
        let busbw = (per_gpu * NVLINK_EFFICIENCY * 10.0).round() / 10.0;
        let source = format!(
            "NVLink {per_gpu} GB/s per GPU x {NVLINK_EFFICIENCY} (the protocol overhead quoted for H100 in nccl-tests #212); no published figure for this GPU, so this is an estimate"
        );
        t.description = format!("NVLink {per_gpu} GB/s per GPU");
        t.targets = same_for_ring_collectives(busbw, &source);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_load_and_every_target_has_a_source() {
        let names = profile_names();
        assert!(names.len() >= 3, "{names:?}");
        for n in names {
            let p = profile(&n).expect("profile");
            assert!(!p.targets.is_empty());
            assert!(
                p.targets
                    .iter()
                    .all(|t| t.source.contains('#') && !t.source.contains(".md")),
                "{n}"
            );
        }
        assert!(profile("nope").is_err());
    }

    #[test]
    fn target_files_are_validated() {
        let t = parse_file("min_bytes = 1048576\n[[target]]\ncollective = \"all_reduce\"\nbusbw_gbps = 100.0\nsource = \"our golden cluster\"\n", "t.toml").expect("ok");
        assert_eq!(t.for_collective("all_reduce").map(|x| x.busbw_gbps), Some(100.0));
        let err = parse_file(
            "[[target]]\ncollective = \"allreduce\"\nbusbw_gbps = 1.0\nsource = \"x\"\n",
            "t.toml",
        )
        .expect_err("bad");
        assert!(format!("{err:#}").contains("allreduce"));
        assert!(parse_file("[[targets]]\n", "t.toml").is_err());
        let t = parse_file("gpu = \"h100\"\nscope = \"intra-node\"\n", "t.toml").expect("ok");
        assert_eq!(t.gpu.as_deref(), Some("H100"));
        let err = parse_file("gpu = \"H1000\"\n", "t.toml").expect_err("unknown gpu");
        assert!(format!("{err:#}").contains("A100, H100"));
        assert!(parse_file("scope = \"rack\"\n", "t.toml").is_err());
    }
}
