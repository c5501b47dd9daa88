//! The node check groups: GPU, RDMA ports, GPUDirect RDMA, PCIe, software. Each function reads
//! the node report (and expectations) and returns checks; none of them probes anything.

use super::{Check, Options, Status};
use crate::node::{Nic, NodeReport};
use crate::probe::names;

fn probe_status(node: &NodeReport, name: &str) -> String {
    node.probes
        .iter()
        .find(|p| p.name == name)
        .map_or_else(|| "not run".to_string(), |p| p.status.clone())
}

pub fn gpu(node: &NodeReport, opts: &Options) -> Vec<Check> {
    let mut out = Vec::new();
    let found = node.gpus.len() as u32;
    let expected = opts.expect_gpus.or(opts.expect.as_ref().and_then(|e| e.gpus));
    let query = probe_status(node, names::QUERY_GPU);
    let evidence = format!("{found} GPUs listed; nvidia-smi-query-gpu: {query}");
    out.push(match expected {
        Some(n) if n == found => Check::new("gpu.count", Status::Pass, "", format!("{found} GPUs, as expected")).evidence(evidence),
        Some(n) => Check::new("gpu.count", Status::Fail, "", format!("{found} GPUs found, {n} expected"))
            .evidence(evidence)
            .fix("a GPU fell off the bus or the driver did not load it: check `dmesg` for Xid errors and `nvidia-smi -q`; reboot or reseat"),
        None if found == 0 => Check::new("gpu.count", Status::Fail, "", "no GPU found")
            .evidence(evidence)
            .fix("check that the NVIDIA driver is loaded (`nvidia-smi`), or pass --expect-gpus 0 on a node without GPUs"),
        None => Check::new("gpu.count", Status::Pass, "", format!("{found} GPUs (no expected count given)")).evidence(evidence),
    });

    let with_links: Vec<_> = node
        .nvlink
        .iter()
        .filter(|l| l.active_links + l.inactive_links > 0)
        .collect();
    if with_links.is_empty() {
        let why = node
            .nvlink
            .iter()
            .find_map(|l| l.message.clone())
            .unwrap_or_else(|| "no NVLink reported".into());
        out.push(Check::new(
            "gpu.nvlink-active",
            Status::Skip,
            "",
            format!("no NVLinks to check: {why}"),
        ));
    } else {
        for l in &with_links {
            let subject = format!("GPU{}", l.gpu);
            let ev = format!("{} active, {} inactive", l.active_links, l.inactive_links);
            out.push(if l.inactive_links == 0 {
                Check::new("gpu.nvlink-active", Status::Pass, subject, format!("all {} NVLinks active", l.active_links)).evidence(ev)
            } else {
                Check::new("gpu.nvlink-active", Status::Fail, subject, format!("{} of {} NVLinks inactive", l.inactive_links, l.active_links + l.inactive_links))
                    .evidence(ev)
                    .fix("an inactive NVLink lowers intra-node bandwidth: check `nvidia-smi nvlink -e` error counters, reset the GPU, then escalate as a hardware fault")
            });
        }
        let speeds: Vec<f64> = with_links.iter().filter_map(|l| l.link_gbps).collect();
        let max = speeds.iter().copied().fold(0.0_f64, f64::max);
        let slow: Vec<String> = with_links
            .iter()
            .filter(|l| l.mixed_speeds || l.link_gbps.is_some_and(|s| s < max))
            .map(|l| format!("GPU{} ({} GB/s)", l.gpu, l.link_gbps.unwrap_or(0.0)))
            .collect();
        out.push(
            if slow.is_empty() {
                Check::new(
                    "gpu.nvlink-speed",
                    Status::Pass,
                    "",
                    format!("every active NVLink runs at {max} GB/s"),
                )
            } else {
                Check::new(
                    "gpu.nvlink-speed",
                    Status::Fail,
                    "",
                    format!("NVLinks slower than {max} GB/s: {}", slow.join(", ")),
                )
                .fix("a link trained at a lower speed: reset the GPU; if it persists, a hardware fault")
            }
            .evidence(format!("per-link speeds of {} GPUs", with_links.len())),
        );
    }

    out.push(nvls(node));
    out
}

/// NVLS needs Hopper or newer GPUs on third-generation NVSwitch, CUDA multicast support and,
/// on HGX/DGX, Fabric Manager (article-factcheck.md (i)).
fn nvls(node: &NodeReport) -> Check {
    const HOPPER_OR_NEWER: [&str; 8] = ["H100", "H200", "H800", "H20", "GH200", "B100", "B200", "B300"];
    if node.nvswitch.present != Some(true) {
        return Check::new(
            "gpu.nvls-prerequisites",
            Status::Skip,
            "",
            "no NVSwitch: NVLS (NVLink SHARP) does not apply",
        )
        .evidence(node.nvswitch.evidence.clone());
    }
    let names: Vec<&str> = node.gpus.iter().filter_map(|g| g.name.as_deref()).collect();
    let hopper = !names.is_empty()
        && names
            .iter()
            .all(|n| HOPPER_OR_NEWER.iter().any(|h| n.contains(h)));
    if hopper {
        Check::new("gpu.nvls-prerequisites", Status::Pass, "", "Hopper-or-newer GPUs on NVSwitch: NCCL can use NVLS (default NCCL_NVLS_ENABLE=2 enables it when supported)")
            .evidence(format!("{}; not checkable from these probes: Fabric Manager state and CUDA multicast support (NCCL logs `NVLS multicast support is (not) available`)", node.nvswitch.evidence))
    } else {
        Check::new(
            "gpu.nvls-prerequisites",
            Status::Skip,
            "",
            "NVLS needs Hopper or newer GPUs (compute capability 9.0+); these GPUs use ring/tree over NVLink",
        )
        .evidence(
            names
                .first()
                .map_or("GPU names unknown".to_string(), |n| n.to_string()),
        )
    }
}

fn rate_text(n: &Nic) -> String {
    n.rate_gbps.map_or("unknown rate".into(), |r| format!("{r} Gb/s"))
}

pub fn rdma(node: &NodeReport, opts: &Options) -> Vec<Check> {
    let mut out = Vec::new();
    let expected_ports = opts
        .expect
        .as_ref()
        .map(|e| e.ports.as_slice())
        .unwrap_or_default();
    if node.nics.is_empty() && expected_ports.is_empty() {
        let why = if node.probe_ok(names::IBSTAT) || node.probe_ok(names::RDMA_PORTS) {
            "no RDMA ports on this node".to_string()
        } else {
            format!(
                "no RDMA port information (ibstat: {}, sysfs: {})",
                probe_status(node, names::IBSTAT),
                probe_status(node, names::RDMA_PORTS)
            )
        };
        out.push(Check::new("rdma.port-state", Status::Skip, "", why));
        return out;
    }
    for want in expected_ports {
        let id = format!("{}:{}", want.device, want.port.unwrap_or(1));
        if !node.nics.iter().any(|n| n.id() == id) {
            out.push(
                Check::new("rdma.port-present", Status::Fail, &id, "expected port not found")
                    .evidence(format!("ports found: {}", node.nics.iter().map(Nic::id).collect::<Vec<_>>().join(", ")))
                    .fix("check that the adapter is seen (`lspci | grep -i mellanox`) and its driver (mlx5_core, mlx5_ib) is loaded"),
            );
        }
    }
    for n in &node.nics {
        let id = n.id();
        let state = n.state.as_deref().unwrap_or("unknown");
        let phys = n.physical_state.as_deref().unwrap_or("unknown");
        let ev = format!(
            "state {state}, physical state {phys}, {}, {}",
            rate_text(n),
            n.link_layer.as_deref().unwrap_or("link layer unknown")
        );
        out.push(
            match state {
                "Active" => Check::new("rdma.port-state", Status::Pass, &id, "Active"),
                "Initializing" => Check::new(
                    "rdma.port-state",
                    Status::Fail,
                    &id,
                    "Initializing: the link is up but no subnet manager has configured the port",
                )
                .fix(
                    "start or fix the subnet manager (opensm / UFM) on the fabric, then check `ibstat` again",
                ),
                "Armed" => Check::new(
                    "rdma.port-state",
                    Status::Warn,
                    &id,
                    "Armed: configured but not yet Active",
                )
                .fix("usually transient; if it stays, check the subnet manager"),
                "Down" | "Polling" | "Disabled" => Check::new(
                    "rdma.port-state",
                    Status::Fail,
                    &id,
                    format!("{state} (physical state {phys})"),
                )
                .fix("check the cable and transceiver, the switch port, and `mlxlink -d <dev>`"),
                _ => Check::new("rdma.port-state", Status::Warn, &id, format!("state {state}"))
                    .fix("check the port with `ibstat`"),
            }
            .evidence(ev.clone()),
        );

        if let Some(want) = expected_ports
            .iter()
            .find(|w| format!("{}:{}", w.device, w.port.unwrap_or(1)) == id)
        {
            if let Some(rate) = want.rate_gbps {
                out.push(if n.rate_gbps == Some(rate) {
                    Check::new("rdma.port-rate", Status::Pass, &id, format!("{rate} Gb/s, as expected"))
                } else {
                    Check::new("rdma.port-rate", Status::Fail, &id, format!("{} where {rate} Gb/s is expected", rate_text(n)))
                        .fix("the link trained at a lower speed: reseat or replace the cable, check the switch port speed")
                }.evidence(ev.clone()));
            }
            if let Some(ll) = &want.link_layer {
                out.push(if n.link_layer.as_deref() == Some(ll) {
                    Check::new("rdma.link-layer", Status::Pass, &id, ll.clone())
                } else {
                    Check::new("rdma.link-layer", Status::Fail, &id, format!("{} where {ll} is expected", n.link_layer.as_deref().unwrap_or("unknown")))
                        .fix("the port runs the wrong protocol: set its link type with `mlxconfig -d <dev> set LINK_TYPE_P1=...` and reboot")
                }.evidence(ev.clone()));
            }
        } else if n.is_active() {
            // Without expectations, compare with peers of the same adapter model and link layer:
            // one 200 Gb/s port among 400 Gb/s peers is a failure.
            let peers: Vec<&Nic> = node
                .nics
                .iter()
                .filter(|p| p.is_active() && p.link_layer == n.link_layer && p.ca_type == n.ca_type)
                .collect();
            let best = peers.iter().filter_map(|p| p.rate_gbps).fold(0.0_f64, f64::max);
            if let Some(rate) = n.rate_gbps {
                out.push(if rate >= best {
                    Check::new("rdma.port-rate", Status::Pass, &id, format!("{rate} Gb/s, like its {} peer(s)", peers.len() - 1))
                } else {
                    Check::new("rdma.port-rate", Status::Fail, &id, format!("{rate} Gb/s while peer ports of the same model run at {best} Gb/s"))
                        .fix("the link trained at a lower speed: reseat or replace the cable, check the switch port speed")
                }.evidence(ev.clone()));
            }
        }
    }
    out
}

pub fn gpudirect(node: &NodeReport) -> Vec<Check> {
    let g = &node.gpudirect;
    let has_rdma = node.active_nics().next().is_some();
    let ev = format!(
        "peer-memory clients: [{}]; nvidia_peermem module: {}; open kernel module: {}; kernel {}",
        g.peer_memory_clients.join(", "),
        g.nvidia_peermem_module
            .map_or("unknown", |b| if b { "loaded" } else { "absent" }),
        g.open_kernel_module
            .map_or("unknown", |b| if b { "yes" } else { "no" }),
        g.kernel_release.as_deref().unwrap_or("unknown")
    );
    let check = match g.path.as_str() {
        _ if !has_rdma => Check::new("gpudirect.path", Status::Skip, "", "no active RDMA port: GPUDirect RDMA does not apply"),
        "peer-memory" => Check::new("gpudirect.path", Status::Pass, "", "NCCL will use GPUDirect RDMA through the peer-memory client"),
        "dma-buf" => Check::new("gpudirect.path", Status::Pass, "", "NCCL will use GPUDirect RDMA through DMA-BUF (no nvidia_peermem needed)"),
        "none" => Check::new("gpudirect.path", Status::Fail, "", "neither a peer-memory client nor DMA-BUF: NCCL will copy network traffic through host memory")
            .fix("load nvidia_peermem (`modprobe nvidia-peermem`), or use the open NVIDIA kernel module on a 5.12+ kernel for DMA-BUF"),
        _ => Check::new("gpudirect.path", Status::Warn, "", "cannot tell which GPUDirect RDMA path NCCL will use")
            .fix("run detect as a user that can read /proc/driver/nvidia/version and /sys/kernel/mm/memory_peers"),
    };
    vec![check.evidence(format!("{ev}. {}", g.evidence))]
}

/// NCCL's default `NCCL_NET_GDR_LEVEL` is PXB: GPUDirect RDMA is used only when GPU and NIC
/// share a PCIe switch (nccl-env.md §5).
pub fn pcie(node: &NodeReport) -> Vec<Check> {
    let mut out = Vec::new();
    if node.gpu_nic_affinity.is_empty() {
        out.push(Check::new(
            "pcie.gpu-nic-distance",
            Status::Skip,
            "",
            "no GPU-NIC pairs in the topology matrix",
        ));
    }
    for gpu in &node.gpus {
        let near: Vec<_> = node
            .gpu_nic_affinity
            .iter()
            .filter(|a| a.gpu == gpu.index)
            .collect();
        let Some(first) = near.first() else { continue };
        let nics = near.iter().map(|a| a.nic.as_str()).collect::<Vec<_>>().join(", ");
        let subject = format!("GPU{}", gpu.index);
        let ev = format!("nearest NIC(s) {nics} over {}", first.path);
        out.push(match first.path.as_str() {
            "PIX" | "PXB" => Check::new("pcie.gpu-nic-distance", Status::Pass, subject, format!("{} to {nics}: within NCCL's default GPUDirect RDMA level (PXB)", first.path)),
            p => Check::new("pcie.gpu-nic-distance", Status::Warn, subject, format!("nearest NIC {nics} is {p}: beyond NCCL's default GDR level PXB, so this GPU's network traffic goes through host memory"))
                .fix("use a GPU-NIC pairing behind one PCIe switch; raising NCCL_NET_GDR_LEVEL past PXB trades safety for speed and should be measured"),
        }.evidence(ev));
    }
    out.push(if node.probe_ok(names::KERNEL_CMDLINE) {
        iommu(node)
    } else {
        Check::new("pcie.iommu", Status::Skip, "", "kernel command line not read")
    });
    out.push(
        Check::new(
            "pcie.acs-redirect",
            Status::Skip,
            "",
            "ACS state not read: it needs `lspci -vvv` as root, which detect does not run",
        )
        .evidence("PCIe ACS redirection can break or slow GPUDirect RDMA (nccl-env.md §5)"),
    );
    out
}

fn iommu(node: &NodeReport) -> Check {
    let p = &node.iommu_params;
    let on = p
        .iter()
        .any(|t| t == "intel_iommu=on" || t == "amd_iommu=on" || t == "iommu=on");
    let pt = p.iter().any(|t| t == "iommu=pt" || t == "iommu.passthrough=1");
    let ev = if p.is_empty() {
        "no IOMMU parameters on the kernel command line".to_string()
    } else {
        p.join(" ")
    };
    if on && !pt {
        Check::new("pcie.iommu", Status::Warn, "", "IOMMU translation on without passthrough: DMA between GPU and NIC is remapped, which can break or slow GPUDirect RDMA")
            .evidence(ev)
            .fix("add iommu=pt to the kernel command line (or disable the IOMMU) on bare-metal GPU nodes")
    } else {
        Check::new(
            "pcie.iommu",
            Status::Pass,
            "",
            if pt {
                "IOMMU in passthrough mode"
            } else {
                "IOMMU not enabled on the kernel command line"
            },
        )
        .evidence(ev)
    }
}

pub fn software(node: &NodeReport, opts: &Options) -> Vec<Check> {
    let v = &node.versions;
    let want = opts.expect.as_ref().map(|e| &e.versions);
    let mut out = Vec::new();
    for (id, what, have, expected) in [
        (
            "software.driver",
            "NVIDIA driver",
            &v.driver,
            want.and_then(|w| w.driver.as_ref()),
        ),
        (
            "software.ofed",
            "OFED",
            &v.ofed,
            want.and_then(|w| w.ofed.as_ref()),
        ),
        (
            "software.nccl",
            "NCCL",
            &v.nccl,
            want.and_then(|w| w.nccl.as_ref()),
        ),
    ] {
        out.push(match (have, expected) {
            (Some(h), Some(e)) if h == e => {
                Check::new(id, Status::Pass, "", format!("{what} {h}, as expected"))
            }
            (h, Some(e)) => Check::new(
                id,
                Status::Fail,
                "",
                format!(
                    "{what} {} where {e} is expected",
                    h.as_deref().unwrap_or("not found")
                ),
            )
            .fix(format!("install {what} {e}, or update the expectations file")),
            (Some(h), None) => Check::new(
                id,
                Status::Pass,
                "",
                format!("{what} {h} (no expected version given)"),
            ),
            (None, None) => Check::new(
                id,
                Status::Skip,
                "",
                format!("{what} version not found and none expected"),
            ),
        });
    }
    let hung: Vec<&str> = node
        .probes
        .iter()
        .filter(|p| p.status == "timeout")
        .map(|p| p.name.as_str())
        .collect();
    out.push(if hung.is_empty() {
        Check::new(
            "software.probes-responsive",
            Status::Pass,
            "",
            "every probe answered before its deadline",
        )
    } else {
        Check::new(
            "software.probes-responsive",
            Status::Warn,
            "",
            format!("did not answer before the deadline: {}", hung.join(", ")),
        )
        .fix("a hung nvidia-smi or ibstat often means a sick driver or fabric: check dmesg")
    });
    out
}
