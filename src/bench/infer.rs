//! What a run ran on, read from the log itself: GPU model and count (`# Using devices`), hosts
//! and ranks per host, NCCL version, and the network from NCCL's INFO lines; then the figure it is
//! judged against when no targets were given, and whether given targets fit the run. Every
//! inference is returned as a sentence, so the output can say what it assumed.

use super::targets::{Target, Targets};
use crate::parse::nccl_tests::Run;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

const GPUS: &str = include_str!("gpus.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuModel {
    pub key: String,
    #[serde(rename = "match")]
    pub matches: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub gpus_per_node: u32,
    /// GPUs that share one NVLink domain across hosts (GB200 NVL72: 72).
    #[serde(default)]
    pub nvlink_domain_gpus: Option<u32>,
    pub nvlink_gbps: f64,
    pub nvlink_source: String,
    pub usual_network: String,
    pub usual_network_gbps: f64,
    pub intra: Vec<Target>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GpuFile {
    gpu: Vec<GpuModel>,
}

pub fn models() -> Result<Vec<GpuModel>> {
    let f: GpuFile = toml::from_str(GPUS).context("built-in gpus.toml")?;
    Ok(f.gpu)
}

/// The model a CUDA device name belongs to.
pub fn model_of<'a>(models: &'a [GpuModel], name: &str) -> Option<&'a GpuModel> {
    models.iter().find(|m| {
        m.matches.iter().any(|p| name.contains(p.as_str()))
            && !m.exclude.iter().any(|x| name.contains(x.as_str()))
    })
}

/// NICs given on the command line or read from a node report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NicsGiven {
    pub count: u32,
    pub gbps: f64,
    pub from: String,
}

/// Overrides for what the log lacks.
#[derive(Debug, Clone, Default)]
pub struct InferOptions {
    pub nodes: Option<u32>,
    pub ranks_per_node: Option<u32>,
    pub nics: Option<NicsGiven>,
}

/// The hardware of one run, as far as it can be told.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Hardware {
    /// The CUDA device name, when every rank reports the same one.
    pub gpu_name: Option<String>,
    /// The model key in gpus.toml (`H100`), when the name is a known NVSwitch model.
    pub gpu_model: Option<String>,
    pub ranks: Option<u32>,
    pub hosts: Option<u32>,
    pub ranks_per_host: Option<u32>,
    pub nccl_version: Option<String>,
    /// `IB`, `RoCE`, `Socket`, a plugin's name.
    pub network: Option<String>,
    /// NICs per host and their rate, with where that came from.
    pub nics: Option<u32>,
    pub nic_gbps: Option<f64>,
    pub nics_from: Option<String>,
    /// Every inference and assumption, as sentences.
    pub assumptions: Vec<String>,
}

pub fn infer(run: &Run, o: &InferOptions) -> Hardware {
    let mut hw = Hardware {
        nccl_version: run.nccl_version.clone(),
        ..Hardware::default()
    };
    let a = &mut hw.assumptions;
    let mut names: Vec<&str> = run
        .devices
        .iter()
        .map(|d| &*d.name)
        .filter(|n| !n.is_empty())
        .collect();
    names.sort_unstable();
    names.dedup();
    match names.as_slice() {
        [one] => {
            hw.gpu_name = Some(one.to_string());
            a.push(format!("GPU model {one} (from `# Using devices`)"));
        }
        [] => a.push("GPU model unknown: the log has no `# Using devices` block".into()),
        many => a.push(format!(
            "mixed GPU models ({}): no single figure applies",
            many.join(", ")
        )),
    }
    let mut hosts: Vec<&str> = run.devices.iter().map(|d| &*d.host).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let log_hosts = (!hosts.is_empty()).then_some(hosts.len() as u32);
    hw.ranks = run.nranks;
    if run.format == "json"
        && let (Some(p), Some(r)) = (run.processes, run.nranks)
    {
        a.push(format!(
            "{r} ranks = {} thread(s) x {} GPU(s) x {p} process(es) (JSON config; its devices list one entry per process)",
            run.threads_per_process.unwrap_or(1),
            run.gpus_per_thread.unwrap_or(1)
        ));
    }
    hw.hosts = match (o.nodes, log_hosts) {
        (Some(n), Some(h)) if n != h => {
            a.push(format!("--nodes {n} overrides the {h} host(s) the log names"));
            Some(n)
        }
        (Some(n), None) => {
            a.push(format!("{n} node(s) from --nodes (the log names no hosts)"));
            Some(n)
        }
        (_, Some(h)) => {
            a.push(format!("{h} host(s) from `# Using devices`"));
            Some(h)
        }
        (None, None) => None,
    };
    hw.ranks_per_host = match (o.ranks_per_node, hw.ranks, hw.hosts) {
        (Some(r), _, _) => {
            a.push(format!("{r} rank(s) per node from --ranks-per-node"));
            if hw.ranks.is_none() {
                hw.ranks = hw.hosts.map(|h| h.saturating_mul(r));
            }
            Some(r)
        }
        (None, Some(r), Some(h)) if h > 0 && r % h == 0 => Some(r / h),
        (None, Some(r), Some(h)) => {
            a.push(format!("{r} ranks do not divide evenly over {h} hosts"));
            None
        }
        _ => None,
    };
    if let Some(v) = &run.nccl_version {
        a.push(format!("NCCL {v} (from the log)"));
    }
    let net = &run.net;
    hw.network = net
        .ib_link
        .clone()
        .filter(|_| !net.ib_nics.is_empty())
        .or_else(|| net.network.clone());
    if let Some(p) = &net.plugin {
        a.push(format!("network plugin {p} (NCCL INFO)"));
    }
    if !net.ib_nics.is_empty() {
        a.push(format!(
            "{} {} NIC(s) per host from NCCL's `NET/IB : Using` line: {}",
            net.ib_nics.len(),
            net.ib_link.as_deref().unwrap_or("IB"),
            net.ib_nics.join(" ")
        ));
    } else if !net.socket_ifs.is_empty() && net.network.as_deref() != Some("IB") {
        a.push(format!(
            "NCCL uses sockets (NET/Socket: {}), not RDMA",
            net.socket_ifs.join(" ")
        ));
    }
    if let Some(n) = &o.nics {
        hw.nics = Some(n.count);
        hw.nic_gbps = Some(n.gbps);
        hw.nics_from = Some(n.from.clone());
        a.push(format!(
            "{} NIC(s) x {} Gb/s per node from {}",
            n.count, n.gbps, n.from
        ));
    } else if !net.ib_nics.is_empty() {
        let rates: Vec<f64> = net
            .ib_nics
            .iter()
            .filter_map(|n| net.nic_gbps.get(n).copied())
            .collect();
        if rates.len() == net.ib_nics.len() {
            let best = rates.iter().copied().fold(0.0_f64, f64::max);
            // Only the fastest ports carry the collective traffic at full rate.
            let count = rates.iter().filter(|r| **r == best).count() as u32;
            hw.nics = Some(count);
            hw.nic_gbps = Some(best);
            hw.nics_from = Some("NCCL's `NET/IB: [n] ... speed=` lines (Mb/s)".into());
            a.push(format!(
                "{count} NIC(s) x {best} Gb/s from NCCL's `NET/IB ... speed=` lines"
            ));
        } else {
            hw.nics = Some(net.ib_nics.len() as u32);
            a.push("NIC rate unknown: NCCL's `NET/IB : Using` line does not print it and the log has no `speed=` lines (NCCL_DEBUG_SUBSYS=NET prints them)".into());
        }
    }
    hw
}

/// NCCL moves ~48 GB/s of a 50 GB/s (400 Gb/s) NIC (AddyLaddy, NVIDIA/nccl-tests #319, #290).
pub const NIC_EFFICIENCY: f64 = 0.96;

/// Why no figure applies, and what would give one.
#[derive(Debug, Clone, Serialize)]
pub struct NoFigure {
    pub why: String,
    /// The figure for the usual configuration of this GPU, to show beside the measured peak.
    pub usual: Option<String>,
    pub usual_gbps: Option<f64>,
    /// The flag that turns it into a verdict.
    pub flag: String,
}

/// Targets for a run from what it ran on, or why there are none.
pub fn auto_targets(hw: &Hardware, models: &[GpuModel]) -> Result<Targets, NoFigure> {
    let model = hw.gpu_name.as_deref().and_then(|n| model_of(models, n));
    let Some(hosts) = hw.hosts else {
        return Err(NoFigure {
            why: "the log names no hosts (no `# Using devices` block)".into(),
            usual: None,
            usual_gbps: None,
            flag: "--nodes N (and --ranks-per-node R), or --profile/--targets".into(),
        });
    };
    let in_one_domain = match (model.and_then(|m| m.nvlink_domain_gpus), hw.ranks) {
        (Some(d), Some(r)) => r <= d,
        _ => false,
    };
    if hosts == 1 || in_one_domain {
        let Some(m) = model else {
            return Err(NoFigure {
                why: match &hw.gpu_name {
                    Some(n) => format!("no NVLink/NVSwitch figure for {n} (a PCIe or unlisted model)"),
                    None => "the GPU model is not known".into(),
                },
                usual: None,
                usual_gbps: None,
                flag: "--targets FILE (your own measured figures)".into(),
            });
        };
        let per_host = hw.ranks_per_host.unwrap_or(0);
        if !in_one_domain && per_host != m.gpus_per_node {
            return Err(NoFigure {
                why: format!(
                    "the {} figure is for {} GPUs per node on NVSwitch; this run used {}",
                    m.key,
                    m.gpus_per_node,
                    if per_host == 0 {
                        "an unknown number".to_string()
                    } else {
                        per_host.to_string()
                    }
                ),
                usual: Some(format!("{} x {} NVSwitch node", m.gpus_per_node, m.key)),
                usual_gbps: m
                    .intra
                    .iter()
                    .find(|t| t.collective == "all_reduce")
                    .map(|t| t.busbw_gbps),
                flag: "--targets FILE".into(),
            });
        }
        let scope = if in_one_domain && hosts > 1 {
            format!(
                "one {}-GPU NVLink domain across {hosts} hosts",
                m.nvlink_domain_gpus.unwrap_or(0)
            )
        } else {
            format!("one {} x {} NVSwitch node", m.gpus_per_node, m.key)
        };
        return Ok(Targets {
            name: format!("{}-nvlink", m.key.to_lowercase()),
            description: scope.clone(),
            scope: "intra-node".into(),
            min_bytes: super::DEFAULT_MIN_BYTES,
            acceptable_fraction: 0.9,
            targets: m.intra.clone(),
            from: format!(
                "inferred: {scope}; NVLink {} GB/s per GPU ({})",
                m.nvlink_gbps, m.nvlink_source
            ),
            multi_node: false,
            gpu: Some(m.key.clone()),
            gpus_per_node: Some(m.gpus_per_node),
        });
    }
    match (hw.nics, hw.nic_gbps) {
        (Some(n), Some(g)) if n > 0 && g > 0.0 => {
            let busbw = (f64::from(n) * g / 8.0 * NIC_EFFICIENCY * 10.0).round() / 10.0;
            let source = format!(
                "{n} NIC(s) x {g} Gb/s = {:.1} GB/s line rate x {NIC_EFFICIENCY} achievable through NCCL (AddyLaddy, NVIDIA/nccl-tests #319, #290); valid for NCCL_ALGO=Ring",
                f64::from(n) * g / 8.0
            );
            Ok(Targets {
                name: "network".into(),
                description: format!("{n} x {g} Gb/s per node"),
                scope: "multi-node".into(),
                min_bytes: super::DEFAULT_MIN_BYTES,
                acceptable_fraction: 0.9,
                targets: ["all_reduce", "all_gather", "reduce_scatter"]
                    .into_iter()
                    .map(|c| Target {
                        collective: c.into(),
                        busbw_gbps: busbw,
                        in_switch_reduction: false,
                        source: source.clone(),
                    })
                    .collect(),
                from: format!(
                    "inferred: {hosts} nodes, {n} x {g} Gb/s NICs per node ({})",
                    hw.nics_from.as_deref().unwrap_or("?")
                ),
                multi_node: true,
                gpu: model.map(|m| m.key.clone()),
                gpus_per_node: None,
            })
        }
        _ => Err(NoFigure {
            why: format!(
                "{hosts} nodes: the verdict needs the NIC count and rate per node, and {}",
                if hw.nics.is_some() {
                    "the log names the NICs but not their rate"
                } else {
                    "the log does not name them (NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,NET prints them)"
                }
            ),
            usual: model.map(|m| m.usual_network.clone()),
            usual_gbps: model.map(|m| m.usual_network_gbps),
            flag: "--nics N --nic-gbps G (or --replay DIR of a node, or --from-node)".into(),
        }),
    }
}

/// Why `t` does not fit this run (GPU model, node count, ranks per node), if it does not.
pub fn misfit(t: &Targets, hw: &Hardware, models: &[GpuModel]) -> Option<String> {
    let mut why = Vec::new();
    match hw.hosts {
        Some(1) if t.multi_node => why.push(format!(
            "{} is a multi-node target (network bandwidth) but the run used one host",
            t.from
        )),
        Some(h) if h > 1 && t.scope == "intra-node" => {
            // A GB200 rack is one NVLink domain across its hosts.
            let domain = hw
                .gpu_name
                .as_deref()
                .and_then(|n| model_of(models, n))
                .and_then(|m| m.nvlink_domain_gpus);
            if domain.is_none_or(|d| hw.ranks.is_none_or(|r| r > d)) {
                why.push(format!(
                    "{} is an intra-node (NVLink) target but the run spans {h} hosts",
                    t.from
                ));
            }
        }
        None if !t.scope.is_empty() => why.push(format!(
            "{} is a {} target but the log does not say how many hosts ran (pass --nodes)",
            t.from, t.scope
        )),
        _ => {}
    }
    if let Some(g) = &t.gpu {
        match hw.gpu_name.as_deref() {
            Some(name) => {
                let model = model_of(models, name).map(|m| m.key.as_str());
                if model != Some(g.as_str()) {
                    why.push(format!("{} is for {g} GPUs but the run used {name}", t.from));
                }
            }
            None => why.push(format!(
                "{} is for {g} GPUs but the log does not name the GPUs",
                t.from
            )),
        }
    }
    if let (Some(want), Some(got)) = (t.gpus_per_node, hw.ranks_per_host)
        && want != got
    {
        why.push(format!(
            "{} is for {want} GPUs per node but the run used {got} ranks per host",
            t.from
        ));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_models_and_pcie_variants_do_not() {
        let m = models().expect("gpus.toml");
        assert!(m.iter().all(|g| g.intra.iter().all(|t| !t.source.is_empty())));
        assert!(
            m.iter()
                .all(|g| g.nvlink_source.contains("https://www.nvidia.com/"))
        );
        let key = |n: &str| model_of(&m, n).map(|g| g.key.as_str());
        assert_eq!(key("NVIDIA H100 80GB HBM3"), Some("H100"));
        assert_eq!(key("NVIDIA H100 PCIe"), None);
        assert_eq!(key("NVIDIA H100 NVL"), None);
        assert_eq!(key("NVIDIA A100-SXM4-80GB"), Some("A100"));
        assert_eq!(key("NVIDIA A100 80GB PCIe"), None);
        assert_eq!(key("NVIDIA B200"), Some("B200"));
        assert_eq!(key("NVIDIA GB200"), Some("GB200"));
        assert_eq!(key("NVIDIA H200"), Some("H200"));
    }
}
