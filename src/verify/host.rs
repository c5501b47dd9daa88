//! Node-wide checks: probe health, GPUDirect RDMA (the chain NCCL follows, nccl-env.md §5),
//! PCIe (GPU-NIC distance against NCCL's GDR level, ACS, IOMMU) and software versions.

use super::expect::path_rank;
use super::{Check, Context, Status};
use crate::parse::version_key;
use crate::probe::names;

/// Probes that hung or failed: a hung `ibstat` or `nvidia-smi` is itself a sign of a sick node.
pub fn probes(cx: &Context) -> Vec<Check> {
    let id = "node.probes";
    let bad: Vec<String> = cx
        .node
        .probes
        .iter()
        .filter(|p| p.status == "timeout" || p.status.starts_with("exit"))
        .map(|p| format!("{} ({})", p.name, p.status))
        .collect();
    let ev = cx
        .node
        .probes
        .iter()
        .map(|p| format!("{}={}", p.name, p.status))
        .collect::<Vec<_>>()
        .join(" ");
    let c = if bad.is_empty() {
        Check::new(
            id,
            Status::Pass,
            "node",
            format!("{} probes answered", cx.node.probes.len()),
        )
    } else {
        Check::new(id, Status::Warn, "node", format!("probes hung or failed: {}", bad.join(", ")))
            .fix("a driver or fabric query that hangs often means a sick node: check `dmesg`; raise --timeout only if the node is just slow")
    };
    vec![c.evidence(ev)]
}

pub fn gpudirect(cx: &Context) -> Vec<Check> {
    let id = "gpudirect.path";
    let node = cx.node;
    let g = &node.gpudirect;
    let ev = format!(
        "{}; peer-memory clients [{}], nvidia_peermem module {}, lsmod [{}], open kernel module {}, kernel {}; chain per nccl-env.md §5",
        g.evidence,
        g.peer_memory_clients.join(" "),
        fmt_opt_bool(g.nvidia_peermem_module),
        g.peer_memory_modules_loaded.join(" "),
        fmt_opt_bool(g.open_kernel_module),
        g.kernel_release.as_deref().unwrap_or("?"),
    );
    if node.gpus.is_empty() {
        return vec![Check::new(id, Status::Skip, "node", "no GPUs seen").evidence(ev)];
    }
    if node.active_nics().next().is_none() {
        return vec![
            Check::new(
                id,
                Status::Skip,
                "node",
                format!("not applicable: no active RDMA port (path found: {})", g.path),
            )
            .evidence(ev),
        ];
    }
    let c = match g.path.as_str() {
        "peer-memory" if g.peer_memory_clients.is_empty() => Check::new(
            id,
            Status::Warn,
            "node",
            "nvidia_peermem is loaded but registered no peer-memory client (/sys/kernel/mm/memory_peers/nv_mem absent): NCCL will try GPUDirect RDMA and memory registration may fail",
        )
        .fix("use an RDMA stack with the peer-memory API (MLNX_OFED/DOCA-OFED) and reload nvidia_peermem, or switch to DMA-BUF (open kernel module)"),
        "peer-memory" => Check::new(
            id,
            Status::Pass,
            "node",
            format!("NCCL will use GPUDirect RDMA through the peer-memory client ({})", g.peer_memory_clients.join(", ")),
        ),
        "dma-buf" => {
            // NCCL_DMABUF_ENABLE appeared in NCCL 2.13 (nccl-env.md §5).
            match node.versions.nccl.as_deref() {
                Some(v) if version_key(v) < vec![2, 13] => Check::new(
                    id,
                    Status::Fail,
                    "node",
                    format!("no peer-memory client, and NCCL {v} predates DMA-BUF support (2.13): no GPUDirect RDMA"),
                )
                .fix("upgrade NCCL to 2.13 or newer, or load nvidia_peermem (`modprobe nvidia-peermem`)"),
                _ => Check::new(
                    id,
                    Status::Pass,
                    "node",
                    "NCCL will use GPUDirect RDMA through DMA-BUF (open kernel module, 5.12+ kernel); nvidia_peermem is not needed. The GPU's and rdma-core's DMA-BUF support is checked by NCCL at init, not here",
                ),
            }
        }
        "none" => Check::new(
            id,
            Status::Fail,
            "node",
            "no GPUDirect RDMA: no peer-memory client, and DMA-BUF needs the open NVIDIA kernel module on a 5.12+ kernel; NCCL will stage network traffic through host memory",
        )
        .fix("`modprobe nvidia-peermem` (and load it at boot), or install the open NVIDIA kernel module"),
        _ => Check::new(id, Status::Warn, "node", "cannot tell whether NCCL will find GPUDirect RDMA: the driver flavour or kernel release is unknown")
            .fix("run where /proc/driver/nvidia/version and /proc/sys/kernel/osrelease are readable"),
    };
    vec![c.evidence(ev)]
}

fn fmt_opt_bool(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    }
}

pub fn pcie(cx: &Context) -> Vec<Check> {
    let mut v = distance(cx);
    v.extend(acs(cx));
    v.push(iommu(cx));
    v
}

fn distance(cx: &Context) -> Vec<Check> {
    let id = "pcie.gpu-nic-distance";
    let node = cx.node;
    let limit = cx
        .expect()
        .and_then(|e| e.thresholds.as_ref())
        .and_then(|t| t.max_gpu_nic_path.clone())
        .unwrap_or_else(|| cx.rules.gdr.default_level.clone());
    let limit_rank = path_rank(&limit).unwrap_or(2);
    if node.gpu_nic_affinity.is_empty() {
        let why = if node.nics.is_empty() {
            "not applicable: no RDMA NICs"
        } else {
            "the topology matrix shows no GPU-NIC paths"
        };
        return vec![Check::new(id, Status::Skip, "node", why)];
    }
    let src = &cx.rules.gdr.source;
    let mut v = Vec::new();
    for gpu in &node.gpus {
        let near: Vec<&crate::node::Affinity> = node
            .gpu_nic_affinity
            .iter()
            .filter(|a| a.gpu == gpu.index)
            .collect();
        let subject = format!("GPU{}", gpu.index);
        let Some(first) = near.first() else {
            v.push(Check::new(
                id,
                Status::Skip,
                subject,
                "no NIC path for this GPU in the topology matrix",
            ));
            continue;
        };
        let names: Vec<&str> = near.iter().map(|a| a.nic.as_str()).collect();
        let ev = format!(
            "nearest NIC {} via {}; GDR limit {limit}; {src}",
            names.join("/"),
            first.path
        );
        let active = near.iter().any(|a| {
            node.nics.iter().any(|n| n.device == a.nic && n.is_active())
                || !node.nics.iter().any(|n| n.device == a.nic)
        });
        let rank = path_rank(&first.path);
        v.push(match rank {
            _ if !active => Check::new(
                id,
                Status::Warn,
                subject,
                format!("nearest NIC {} is not active: NCCL will use a farther NIC, beyond {limit}, without GPUDirect RDMA", names.join("/")),
            )
            .evidence(ev)
            .fix("bring the port up (see rdma.port-state)"),
            Some(r) if r <= limit_rank => {
                Check::new(id, Status::Pass, subject, format!("nearest NIC {} at {} (within {limit})", names.join("/"), first.path)).evidence(ev)
            }
            Some(_) => Check::new(
                id,
                Status::Warn,
                subject,
                format!("nearest NIC {} is {} away, beyond NCCL's GDR level {limit}: GPUDirect RDMA will not be used for it", names.join("/"), first.path),
            )
            .evidence(ev)
            .fix("place a NIC under the GPU's PCIe switch; raising NCCL_NET_GDR_LEVEL sends GDR traffic through the CPU"),
            None => Check::new(id, Status::Skip, subject, format!("path {} is not a PCIe distance", first.path)).evidence(ev),
        });
    }
    v
}

/// ACS redirection on the bridges above GPUs and RDMA NICs, from `lspci -vvv` (root only).
fn acs(cx: &Context) -> Vec<Check> {
    let id = "pcie.acs";
    let a = &cx.node.pcie_acs;
    let src = "nccl-env.md §5 ([GPU-DOC]): PCIe ACS/IOMMU redirection can break or slow GPUDirect RDMA";
    let root_fix =
        "as root: `nccltune verify` (or `lspci -vvv | grep -i acsctl`) to read the ACS control registers";
    let skip = |why: String| {
        vec![
            Check::new(id, Status::Skip, "node", why)
                .evidence(src)
                .fix(root_fix),
        ]
    };
    match a.status.as_str() {
        "read" => {}
        "access-denied" => return skip("ACS control unreadable: lspci did not run as root".into()),
        "not-captured" => return skip("not captured: this capture has no `lspci -vvv` output".into()),
        "not-found" => return skip("lspci is not installed (pciutils)".into()),
        other => return skip(format!("`lspci -vvv` did not succeed ({other})")),
    }
    if a.redirecting.is_empty() {
        return vec![
            Check::new(
                id,
                Status::Pass,
                "node",
                format!(
                    "no ACS redirection on the {} bridge(s) above GPUs and RDMA NICs",
                    a.bridges_checked
                ),
            )
            .evidence(src),
        ];
    }
    a.redirecting
        .iter()
        .map(|b| {
            Check::new(
                id,
                Status::Warn,
                b.address.clone(),
                format!("ACS redirect on the switch port above {}: GPU-NIC transfers through this switch detour through the root complex", b.above.join(", ")),
            )
            .evidence(format!("ACSCtl on: {}; {src}", b.flags.join(" ")))
            .fix("on bare metal, disable ACS redirect on PCIe switch ports (BIOS option, or `setpci -s <bridge> ECAP_ACS+0x6.w=0000` at boot); in VMs with passthrough it is needed")
        })
        .collect()
}

fn iommu(cx: &Context) -> Check {
    let id = "pcie.iommu";
    let node = cx.node;
    let params = &node.iommu_params;
    let ev = format!(
        "kernel command line: [{}]; nccl-env.md §5 ([GPU-DOC]): IOMMU redirection can break or slow GPUDirect RDMA",
        params.join(" ")
    );
    if !node.probe_ok(names::KERNEL_CMDLINE) {
        return Check::new(id, Status::Skip, "node", "kernel command line not read").evidence(ev);
    }
    if node.active_nics().next().is_none() {
        return Check::new(id, Status::Skip, "node", "not applicable: no active RDMA port").evidence(ev);
    }
    let has = |p: &str| params.iter().any(|x| x == p);
    let off = has("intel_iommu=off") || has("amd_iommu=off");
    let pt = has("iommu=pt") || has("iommu.passthrough=1");
    let on = has("intel_iommu=on") || has("amd_iommu=on") || has("iommu.passthrough=0") || has("iommu=force");
    if off {
        Check::new(id, Status::Pass, "node", "IOMMU disabled").evidence(ev)
    } else if pt {
        Check::new(
            id,
            Status::Pass,
            "node",
            "IOMMU in pass-through mode: device DMA is not translated",
        )
        .evidence(ev)
    } else if on {
        Check::new(id, Status::Warn, "node", "IOMMU enabled in translated mode: peer-to-peer DMA between NIC and GPU is remapped, which can break or slow GPUDirect RDMA")
            .evidence(ev)
            .fix("add `iommu=pt` to the kernel command line (keeps the IOMMU for VFIO, passes host devices through)")
    } else {
        Check::new(id, Status::Skip, "node", "no IOMMU parameter on the kernel command line: the mode is the kernel's build default, which /proc/cmdline does not show")
            .evidence(ev)
            .fix("check `dmesg | grep -i -e DMAR -e iommu`; add `iommu=pt` to be explicit")
    }
}

pub fn software(cx: &Context) -> Vec<Check> {
    let v = &cx.node.versions;
    let want = cx.expect().and_then(|e| e.versions.as_ref());
    vec![
        version(
            "software.driver",
            "NVIDIA driver",
            v.driver.as_deref(),
            want.and_then(|w| w.driver.as_deref()),
            want.and_then(|w| w.driver_min.as_deref()),
        ),
        version(
            "software.ofed",
            "OFED",
            v.ofed.as_deref(),
            want.and_then(|w| w.ofed.as_deref()),
            want.and_then(|w| w.ofed_min.as_deref()),
        ),
        version(
            "software.nccl",
            "NCCL library",
            v.nccl.as_deref(),
            want.and_then(|w| w.nccl.as_deref()),
            want.and_then(|w| w.nccl_min.as_deref()),
        ),
    ]
}

fn version(id: &str, what: &str, have: Option<&str>, exact: Option<&str>, min: Option<&str>) -> Check {
    let ev = format!(
        "found {}; expected {}{}",
        have.unwrap_or("nothing"),
        exact.unwrap_or("-"),
        min.map(|m| format!(", at least {m}")).unwrap_or_default()
    );
    let fix = format!("install the fleet's {what} version, or update the expectations file");
    let Some(have) = have else {
        return if exact.is_some() || min.is_some() {
            Check::new(
                id,
                Status::Warn,
                "node",
                format!("{what} version not found, so the golden version cannot be confirmed"),
            )
            .evidence(ev)
            .fix(format!("check that {what} is installed where nccltune looks"))
        } else {
            Check::new(id, Status::Skip, "node", format!("{what} not found")).evidence(ev)
        };
    };
    if let Some(e) = exact
        && e != have
    {
        return Check::new(
            id,
            Status::Fail,
            "node",
            format!("{what} {have}, golden version {e}"),
        )
        .evidence(ev)
        .fix(fix);
    }
    if let Some(m) = min
        && version_key(have) < version_key(m)
    {
        return Check::new(
            id,
            Status::Fail,
            "node",
            format!("{what} {have} is older than {m}"),
        )
        .evidence(ev)
        .fix(fix);
    }
    let note = if exact.is_some() || min.is_some() {
        ", as expected"
    } else {
        " (no golden version given)"
    };
    Check::new(id, Status::Pass, "node", format!("{what} {have}{note}")).evidence(ev)
}
