//! GPU facts: the GPU list (from `--query-gpu`, completed by `topo -m` and `nvlink --status`),
//! NVLink links per GPU, GPU-pair paths, GPU-NIC affinity, and whether an NVSwitch is in between.

use crate::node::*;
use crate::parse::{self, topo::Path};
use crate::probe::names;

pub(super) fn gpus(
    rows: Option<&[parse::query_gpu::GpuRow]>,
    topo: Option<&parse::topo::Topology>,
    nvlink: &[parse::nvlink::GpuLinks],
) -> Vec<Gpu> {
    let mut gpus: Vec<Gpu> = Vec::new();
    for (pos, row) in rows.unwrap_or_default().iter().enumerate() {
        let num = |f: &str| row.get(f).and_then(parse::leading_number);
        gpus.push(Gpu {
            index: row
                .get("index")
                .and_then(|i| i.parse().ok())
                .unwrap_or(pos as u32),
            name: row.get("name").map(str::to_string),
            pci_bus_id: row.get("pci.bus_id").map(str::to_string),
            uuid: row.get("uuid").map(str::to_string),
            memory_total_mib: num("memory.total").map(|v| v as u64),
            mig_mode: row.get("mig.mode.current").map(str::to_string),
            pcie_gen: num("pcie.link.gen.current").map(|v| v as u32),
            pcie_width: num("pcie.link.width.current").map(|v| v as u32),
            source: names::QUERY_GPU.to_string(),
            ..Gpu::default()
        });
    }
    if let Some(t) = topo {
        for idx in t.gpu_indices() {
            if !gpus.iter().any(|g| g.index == idx) {
                gpus.push(Gpu {
                    index: idx,
                    source: names::TOPO.to_string(),
                    ..Gpu::default()
                });
            }
            let row = t.row(&format!("GPU{idx}"));
            if let Some(g) = gpus.iter_mut().find(|g| g.index == idx) {
                g.cpu_affinity = row.and_then(|r| r.cpu_affinity.clone());
                g.numa_affinity = row.and_then(|r| r.numa_affinity.clone());
            }
        }
    }
    for l in nvlink {
        if let Some(g) = gpus.iter_mut().find(|g| g.index == l.gpu)
            && g.name.is_none()
            && !l.name.is_empty()
        {
            g.name = Some(l.name.clone());
        }
    }
    gpus.sort_by_key(|g| g.index);
    gpus
}

pub(super) fn nvlink_summary(links: &[parse::nvlink::GpuLinks]) -> Vec<GpuNvlink> {
    links
        .iter()
        .map(|g| {
            let speeds: Vec<f64> = g.links.iter().filter_map(|(_, s)| *s).collect();
            let min = speeds
                .iter()
                .copied()
                .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.min(s))));
            let mixed = speeds.iter().any(|s| Some(*s) != min);
            let inactive = g.links.len() - speeds.len();
            GpuNvlink {
                gpu: g.gpu,
                active_links: speeds.len() as u32,
                inactive_links: inactive as u32,
                link_gbps: min,
                total_gbps: (speeds.iter().sum::<f64>() * 1000.0).round() / 1000.0,
                mixed_speeds: mixed,
                message: g.message.clone(),
            }
        })
        .collect()
}

pub(super) fn gpu_links(t: &parse::topo::Topology) -> Vec<GpuLink> {
    let idx = t.gpu_indices();
    let mut links = Vec::new();
    for (i, &a) in idx.iter().enumerate() {
        for &b in &idx[i + 1..] {
            if let Some(p) = t.path(&format!("GPU{a}"), &format!("GPU{b}")) {
                let nvlinks = if let Path::NvLink(n) = p { n } else { 0 };
                links.push(GpuLink {
                    a,
                    b,
                    path: p.clone(),
                    nvlinks,
                });
            }
        }
    }
    links
}

pub(super) fn affinity(t: &parse::topo::Topology) -> Vec<Affinity> {
    let nics = t.nic_columns();
    let mut out = Vec::new();
    for gpu in t.gpu_indices() {
        let label = format!("GPU{gpu}");
        let paths: Vec<(Path, &str)> = nics
            .iter()
            .filter_map(|n| Some((t.path(&label, n)?, *n)))
            .collect();
        let Some(best) = paths.iter().map(|(p, _)| p.clone()).min() else {
            continue;
        };
        for (p, n) in paths.iter().filter(|(p, _)| *p == best) {
            out.push(Affinity {
                gpu,
                nic: t.nic_name(n).to_string(),
                path: p.clone(),
            });
        }
    }
    out
}

/// Largest number of NVLinks any GPU generation has had (H100/B200: 18). A GPU pair count of
/// `k * (n - 1)` above this cannot be point-to-point links, so a switch must be in between.
const MAX_NVLINKS_PER_GPU: u32 = 18;

pub(super) fn nvswitch(r: &NodeReport) -> NvSwitch {
    let n = r.gpus.len() as u32;
    if r.gpu_links.is_empty() || n < 2 {
        return NvSwitch {
            present: None,
            evidence: "no GPU-to-GPU topology".into(),
        };
    }
    let counts: Vec<u32> = r.gpu_links.iter().map(|l| l.nvlinks).collect();
    if counts.contains(&0) {
        return NvSwitch {
            present: Some(false),
            evidence: "some GPU pairs are joined over PCIe only".into(),
        };
    }
    let k = counts.iter().copied().min().unwrap_or(0);
    let all_same = counts.iter().all(|&c| c == k);
    let per_gpu = r
        .nvlink
        .iter()
        .map(|l| l.active_links)
        .max()
        .unwrap_or(MAX_NVLINKS_PER_GPU);
    if n > 2 && all_same && k * (n - 1) > per_gpu {
        NvSwitch {
            present: Some(true),
            evidence: format!(
                "all {n} GPUs reach every peer over NV{k}; {} links each would exceed the {per_gpu} a GPU has, so they go through NVSwitch",
                k * (n - 1)
            ),
        }
    } else if n == 2 {
        NvSwitch {
            present: None,
            evidence: format!("two GPUs joined by NV{k}: direct links and a switch look the same"),
        }
    } else {
        NvSwitch {
            present: Some(false),
            evidence: "NVLink counts differ between GPU pairs: direct links (no NVSwitch)".into(),
        }
    }
}
