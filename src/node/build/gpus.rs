//! GPU facts: the GPU list (from `--query-gpu`, completed by `topo -m` and `nvlink --status`),
//! NVLink links per GPU, GPU-pair paths, GPU-NIC affinity, and whether an NVSwitch is in between.

use crate::node::*;
use crate::parse::{self, topo::Path};
use crate::probe::names;

/// The GPU list, merged from every probe that sees GPUs: `--query-gpu` first (richest), then
/// `topo -m`, `nvlink --status` and `nvidia-smi -q` (matched by PCI bus id, else by index), so
/// a node whose `--query-gpu` failed still lists the GPUs the other probes saw.
pub(super) fn gpus(
    rows: Option<&[parse::query_gpu::GpuRow]>,
    topo: Option<&parse::topo::Topology>,
    nvlink: &[parse::nvlink::GpuLinks],
    smi_q: &[parse::nvidia_smi_q::GpuQuery],
) -> Vec<Gpu> {
    let mut gpus: Vec<Gpu> = Vec::new();
    let seen = |gpus: &mut Vec<Gpu>, index: u32, probe: &str| -> usize {
        let pos = match gpus.iter().position(|g| g.index == index) {
            Some(p) => p,
            None => {
                gpus.push(Gpu {
                    index,
                    source: probe.to_string(),
                    ..Gpu::default()
                });
                gpus.len() - 1
            }
        };
        if !gpus[pos].seen_by.iter().any(|p| p == probe) {
            gpus[pos].seen_by.push(probe.to_string());
        }
        pos
    };
    for (pos, row) in rows.unwrap_or_default().iter().enumerate() {
        let num = |f: &str| row.get(f).and_then(parse::leading_number);
        let index = row
            .get("index")
            .and_then(|i| i.parse().ok())
            .unwrap_or(pos as u32);
        let i = seen(&mut gpus, index, names::QUERY_GPU);
        let g = &mut gpus[i];
        g.name = row.get("name").map(str::to_string);
        g.pci_bus_id = row.get("pci.bus_id").map(str::to_string);
        g.uuid = row.get("uuid").map(str::to_string);
        g.memory_total_mib = num("memory.total").map(|v| v as u64);
        g.mig_mode = row.get("mig.mode.current").map(str::to_string);
        g.pcie_gen = num("pcie.link.gen.current").map(|v| v as u32);
        g.pcie_width = num("pcie.link.width.current").map(|v| v as u32);
    }
    if let Some(t) = topo {
        for idx in t.gpu_indices() {
            let i = seen(&mut gpus, idx, names::TOPO);
            let row = t.row(&format!("GPU{idx}"));
            gpus[i].cpu_affinity = row.and_then(|r| r.cpu_affinity.clone());
            gpus[i].numa_affinity = row.and_then(|r| r.numa_affinity.clone());
        }
    }
    for l in nvlink {
        let i = seen(&mut gpus, l.gpu, names::NVLINK);
        if gpus[i].name.is_none() && !l.name.is_empty() {
            gpus[i].name = Some(l.name.clone());
        }
    }
    // `nvidia-smi -q` names GPUs by PCI bus id, in index order.
    for (pos, q) in smi_q.iter().enumerate() {
        let by_bus = gpus.iter().position(|g| {
            g.pci_bus_id
                .as_deref()
                .is_some_and(|id| id.eq_ignore_ascii_case(&q.pci_bus_id))
        });
        let i = match by_bus {
            Some(i) => {
                let index = gpus[i].index;
                seen(&mut gpus, index, names::SMI_Q)
            }
            None => seen(&mut gpus, pos as u32, names::SMI_Q),
        };
        let g = &mut gpus[i];
        if g.pci_bus_id.is_none() {
            g.pci_bus_id = Some(q.pci_bus_id.clone());
        }
        if g.name.is_none() {
            g.name = q.product_name.clone();
        }
        g.architecture = q.architecture.as_deref().map(Arch::parse);
        g.fabric_state = q.fabric_state.clone();
        g.fabric_status = q.fabric_status.clone();
        if g.mig_mode.is_none() {
            g.mig_mode = q
                .mig_mode
                .clone()
                .filter(|m| matches!(m.as_str(), "Enabled" | "Disabled"));
        }
        g.mig_devices = q.mig_devices.clone();
        g.nvlink_domain = q
            .fabric_cluster_uuid
            .as_ref()
            .filter(|u| u.chars().any(|c| c.is_ascii_hexdigit() && c != '0'))
            .map(|u| NvlinkDomain {
                cluster_uuid: u.clone(),
                clique_id: q.fabric_clique_id,
            });
    }
    gpus.sort_by_key(|g| g.index);
    gpus
}

pub(super) fn nvlink_summary(links: &[parse::nvlink::GpuLinks], gpus: &[Gpu]) -> Vec<GpuNvlink> {
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
            let mig = g.message.as_deref().is_some_and(|m| m.contains("MIG"))
                || gpus
                    .iter()
                    .any(|x| x.index == g.gpu && x.mig_mode.as_deref() == Some("Enabled"));
            GpuNvlink {
                expected_links: gpus
                    .iter()
                    .find(|x| x.index == g.gpu)
                    .and_then(crate::hw::expected_nvlinks),
                mig,
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

/// Largest number of NVLinks any GPU generation has had (H100/B200: 18), for GPUs whose own
/// count is unknown. A GPU pair count of `k * (n - 1)` above a GPU's links cannot be
/// point-to-point links, so a switch must be in between.
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
    // The links a GPU has: its architecture's (V100: 6), else the most any GPU shows active.
    let per_gpu = r
        .gpus
        .iter()
        .filter_map(crate::hw::expected_nvlinks)
        .max()
        .or_else(|| r.nvlink.iter().map(|l| l.active_links).max())
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
