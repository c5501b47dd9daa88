//! Node-wide checks: probe health, GPUDirect RDMA (the chain NCCL follows: NCCL 2.30.7 src/transport/net_ib.cc, peer memory then DMA-BUF),
//! PCIe (GPU-NIC distance against NCCL's GDR level, ACS, IOMMU) and software versions.

use super::expect::path_rank;
use super::{Check, Context, Status};
use crate::finding::{GpudirectCode, NodeCode, PcieCode, SoftwareCode};
use crate::parse::version_key;
use crate::probe::names;

/// Probe health, from the node's own findings (`node::findings::probes`, the same ones
/// `detect` and `configure` report): a hung `ibstat` or `nvidia-smi` is itself a sign of a sick
/// node, and a probe whose output was not understood leaves its facts unknown. One check per
/// probe with a problem, or one pass naming how many answered.
pub fn probes(cx: &Context) -> Vec<Check> {
    let mut v: Vec<Check> = crate::node::findings::probes(cx.node)
        .into_iter()
        .filter(|f| f.code == NodeCode::Probes && f.level > Status::Info)
        .collect();
    if v.is_empty() {
        let answered = cx.node.probes.iter().filter(|p| p.status.is_ok()).count();
        let ev = cx
            .node
            .probes
            .iter()
            .map(|p| format!("{}={}", p.name, p.status))
            .collect::<Vec<_>>()
            .join(" ");
        v.push(
            Check::at(
                NodeCode::Probes,
                Status::Pass,
                "node",
                format!(
                    "{answered} of {} probes answered and were understood",
                    cx.node.probes.len()
                ),
            )
            .observed(answered)
            .expected(cx.node.probes.len())
            .evidence(ev),
        );
    }
    v
}

pub fn gpudirect(cx: &Context) -> Vec<Check> {
    let id = GpudirectCode::Path;
    let node = cx.node;
    let g = &node.gpudirect;
    let ev = format!(
        "{}; peer-memory clients [{}], nvidia_peermem module {}, lsmod [{}], open kernel module {}, kernel {}; chain per NCCL 2.30.7 src/transport/net_ib.cc (nv_peer_mem/nvidia_peermem, then DMA-BUF)",
        g.evidence,
        g.peer_memory_clients.join(" "),
        fmt_opt_bool(g.nvidia_peermem_module),
        g.peer_memory_modules_loaded.join(" "),
        fmt_opt_bool(g.open_kernel_module),
        g.kernel_release.as_deref().unwrap_or("?"),
    );
    if node.gpus.is_empty() {
        return vec![Check::at(id, Status::Skip, "node", "no GPUs seen").evidence(ev)];
    }
    if node.active_nics().next().is_none() {
        return vec![
            Check::at(
                id,
                Status::Skip,
                "node",
                format!("not applicable: no active RDMA port (path found: {})", g.path),
            )
            .evidence(ev),
        ];
    }
    let c = match g.path.as_str() {
        "peer-memory" if g.peer_memory_clients.is_empty() => Check::at(
            id,
            Status::Warn,
            "node",
            "nvidia_peermem is loaded but registered no peer-memory client (/sys/kernel/mm/memory_peers/nv_mem absent): NCCL will try GPUDirect RDMA and memory registration may fail",
        )
        .fix("use an RDMA stack with the peer-memory API (MLNX_OFED/DOCA-OFED) and reload nvidia_peermem, or switch to DMA-BUF (open kernel module)"),
        "peer-memory" => Check::at(
            id,
            Status::Pass,
            "node",
            format!("NCCL will use GPUDirect RDMA through the peer-memory client ({})", g.peer_memory_clients.join(", ")),
        ),
        "dma-buf" => {
            // NCCL_DMABUF_ENABLE appeared in NCCL 2.13 (NCCL release notes 2.13).
            match node.versions.nccl.as_deref() {
                Some(v) if version_key(v) < vec![2, 13] => Check::at(
                    id,
                    Status::Fail,
                    "node",
                    format!("no peer-memory client, and NCCL {v} predates DMA-BUF support (2.13): no GPUDirect RDMA"),
                )
                .fix("upgrade NCCL to 2.13 or newer, or load nvidia_peermem (`modprobe nvidia-peermem`)"),
                _ => Check::at(
                    id,
                    Status::Pass,
                    "node",
                    "NCCL will use GPUDirect RDMA through DMA-BUF (open kernel module, 5.12+ kernel); nvidia_peermem is not needed. The GPU's and rdma-core's DMA-BUF support is checked by NCCL at init, not here",
                ),
            }
        }
        "none" => Check::at(
            id,
            Status::Fail,
            "node",
            "no GPUDirect RDMA: no peer-memory client, and DMA-BUF needs the open NVIDIA kernel module on a 5.12+ kernel; NCCL will stage network traffic through host memory",
        )
        .fix("`modprobe nvidia-peermem` (and load it at boot), or install the open NVIDIA kernel module"),
        _ => Check::at(id, Status::Warn, "node", "cannot tell whether NCCL will find GPUDirect RDMA: the driver flavour or kernel release is unknown")
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

/// The GPUDirect RDMA distance limit a GPU-NIC path is judged against.
pub(super) struct GdrLimit {
    /// `PXB`, `P2C` or the expectation's level.
    pub label: String,
    /// The farthest `nvidia-smi topo -m` path (`hw::path_rank`) within the limit.
    pub max_rank: u8,
    /// How the limit was chosen, for the evidence; empty for the plain default.
    pub note: String,
}

/// The expectation's `max_gpu_nic_path`, else NCCL's default for this node: `P2C` on C2C
/// (Grace) nodes with NCCL 2.27 or newer (or an unknown version), where a NIC on the GPU's own
/// CPU — `NODE` or `PHB` in `nvidia-smi topo -m` — is within it; `PXB` otherwise (NCCL 2.30.7's
/// `P2C` default admits exactly what `PXB` does on a node without C2C).
pub(super) fn gdr_limit(cx: &Context) -> GdrLimit {
    if let Some(l) = cx
        .expect()
        .and_then(|e| e.thresholds.as_ref())
        .and_then(|t| t.max_gpu_nic_path.clone())
    {
        return GdrLimit {
            max_rank: path_rank(&l).unwrap_or(2),
            label: l,
            note: "limit from the expectations".into(),
        };
    }
    let g = &cx.rules.gdr;
    let plain = GdrLimit {
        label: g.default_level.clone(),
        max_rank: path_rank(&g.default_level).unwrap_or(2),
        note: String::new(),
    };
    let Some(c2c) = crate::hw::c2c_gpus(cx.node) else {
        return plain;
    };
    let key = crate::parse::version_key;
    match cx.node.versions.nccl.as_deref() {
        Some(v) if key(v) < key(&g.c2c_since) => GdrLimit {
            note: format!(
                "{c2c}, but NCCL {v} is older than {}: judged against {}",
                g.c2c_since, g.default_level
            ),
            ..plain
        },
        v => GdrLimit {
            label: g.c2c_level.clone(),
            // NODE: through the CPU within one NUMA node, the GPU's own Grace.
            max_rank: 4,
            note: format!(
                "{c2c}: NCCL {}'s default level is {} (NCCL_NET_GDR_C2C=1), which admits a NIC on the GPU's own Grace CPU (NODE or PHB here, P2C to NCCL); NCCL_NET_GDR_C2C=0 brings back {}",
                v.unwrap_or("(version unknown, 2.27+ assumed)"),
                g.c2c_level,
                g.default_level
            ),
        },
    }
}

fn distance(cx: &Context) -> Vec<Check> {
    let id = PcieCode::GpuNicDistance;
    let node = cx.node;
    let GdrLimit {
        label: limit,
        max_rank: limit_rank,
        note,
    } = gdr_limit(cx);
    if node.gpu_nic_affinity.is_empty() {
        let why = if node.nics.is_empty() {
            "not applicable: no RDMA NICs"
        } else {
            "the topology matrix shows no GPU-NIC paths"
        };
        return vec![Check::at(id, Status::Skip, "node", why)];
    }
    let src = &cx.rules.gdr.source;
    // Azure's ND VMs do not show the PCIe switches that pair each GPU with its NIC: every NIC
    // looks NODE or SYS away. Azure's topology file gives NCCL the real pairing.
    if let Some(p) = node.platform.as_ref().filter(|p| p.id.starts_with("azure-nd-")) {
        return vec![
            Check::at(
                id,
                Status::Info,
                "node",
                format!("{}: not judged from the VM's topology matrix, which hides the PCIe switches that pair each GPU with its NIC; NCCL learns the pairing from Azure's topology file (NCCL_TOPO_FILE, `nccltune configure` sets it)", p.name),
            )
            .evidence(format!("platform told from {}; Azure/azhpc-images topology/ndv5-topo.xml, ndv4-topo.xml; {src}", p.used.join("; "))),
        ];
    }
    let mut v = Vec::new();
    for gpu in &node.gpus {
        let near: Vec<&crate::node::Affinity> = node
            .gpu_nic_affinity
            .iter()
            .filter(|a| a.gpu == gpu.index)
            .collect();
        let subject = format!("GPU{}", gpu.index);
        let Some(first) = near.first() else {
            v.push(Check::at(
                id,
                Status::Skip,
                subject,
                "no NIC path for this GPU in the topology matrix",
            ));
            continue;
        };
        let names: Vec<&str> = near.iter().map(|a| a.nic.as_str()).collect();
        let ev = format!(
            "nearest NIC {} via {}; GDR limit {limit}{}; {src}",
            names.join("/"),
            first.path,
            if note.is_empty() {
                String::new()
            } else {
                format!(" ({note})")
            }
        );
        let active = near.iter().any(|a| {
            node.nics.iter().any(|n| n.device == a.nic && n.is_active())
                || !node.nics.iter().any(|n| n.device == a.nic)
        });
        let rank = crate::hw::path_rank(&first.path);
        v.push(match rank {
            _ if !active => Check::at(
                id,
                Status::Warn,
                subject,
                format!("nearest NIC {} is not active: NCCL will use a farther NIC, beyond {limit}, without GPUDirect RDMA", names.join("/")),
            )
            .evidence(ev)
            .fix("bring the port up (see rdma.port-state)"),
            Some(r) if r <= limit_rank => {
                let via = if r > 2 && limit == cx.rules.gdr.c2c_level { ", on the GPU's Grace CPU: P2C to NCCL" } else { "" };
                Check::at(id, Status::Pass, subject, format!("nearest NIC {} at {}{via} (within {limit})", names.join("/"), first.path)).evidence(ev)
            }
            Some(_) => Check::at(
                id,
                Status::Warn,
                subject,
                format!("nearest NIC {} is {} away, beyond NCCL's GDR level {limit}: GPUDirect RDMA will not be used for it", names.join("/"), first.path),
            )
            .evidence(ev)
            .fix("place a NIC under the GPU's PCIe switch; raising NCCL_NET_GDR_LEVEL sends GDR traffic through the CPU"),
            None => Check::at(id, Status::Skip, subject, format!("path {} is not a PCIe distance", first.path)).evidence(ev),
        });
    }
    v
}

/// ACS redirection on the bridges above GPUs and RDMA NICs, from `lspci -vvv` (root only).
fn acs(cx: &Context) -> Vec<Check> {
    let id = PcieCode::Acs;
    let a = &cx.node.pcie_acs;
    let src = "NCCL docs, Troubleshooting, PCI Access Control Services (https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/troubleshooting.html): ACS/IOMMU redirection can break or slow GPUDirect RDMA";
    let root_fix =
        "as root: `nccltune verify` (or `lspci -vvv | grep -i acsctl`) to read the ACS control registers";
    let skip = |why: String| {
        vec![
            Check::at(id, Status::Skip, "node", why)
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
            Check::at(
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
            Check::at(
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
    let id = PcieCode::Iommu;
    let node = cx.node;
    let params = &node.iommu_params;
    let ev = format!(
        "kernel command line: [{}]; NCCL docs, Troubleshooting, PCI Access Control Services (https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/troubleshooting.html): IOMMU redirection can break or slow GPUDirect RDMA",
        params.join(" ")
    );
    if !node.probe_ok(names::KERNEL_CMDLINE) {
        return Check::at(id, Status::Skip, "node", "kernel command line not read").evidence(ev);
    }
    if node.active_nics().next().is_none() {
        return Check::at(id, Status::Skip, "node", "not applicable: no active RDMA port").evidence(ev);
    }
    let has = |p: &str| params.iter().any(|x| x == p);
    let off = has("intel_iommu=off") || has("amd_iommu=off");
    let pt = has("iommu=pt") || has("iommu.passthrough=1");
    let on = has("intel_iommu=on") || has("amd_iommu=on") || has("iommu.passthrough=0") || has("iommu=force");
    if off {
        Check::at(id, Status::Pass, "node", "IOMMU disabled").evidence(ev)
    } else if pt {
        Check::at(
            id,
            Status::Pass,
            "node",
            "IOMMU in pass-through mode: device DMA is not translated",
        )
        .evidence(ev)
    } else if on {
        Check::at(id, Status::Warn, "node", "IOMMU enabled in translated mode: peer-to-peer DMA between NIC and GPU is remapped, which can break or slow GPUDirect RDMA")
            .evidence(ev)
            .fix("add `iommu=pt` to the kernel command line (keeps the IOMMU for VFIO, passes host devices through)")
    } else {
        Check::at(id, Status::Skip, "node", "no IOMMU parameter on the kernel command line: the mode is the kernel's build default, which /proc/cmdline does not show")
            .evidence(ev)
            .fix("check `dmesg | grep -i -e DMAR -e iommu`; add `iommu=pt` to be explicit")
    }
}

pub fn software(cx: &Context) -> Vec<Check> {
    let v = &cx.node.versions;
    let want = cx.expect().and_then(|e| e.versions.as_ref());
    // Why a version is missing: not in a replayed capture is not "not installed".
    let absent = |probes: &[&str]| {
        let st: Vec<String> = probes
            .iter()
            .map(|p| {
                let s = cx
                    .node
                    .probe_status(p)
                    .map_or("not-captured".to_string(), ToString::to_string);
                format!("{p}: {s}")
            })
            .collect();
        let all_uncaptured = probes.iter().all(|p| {
            matches!(
                cx.node.probe_status(p),
                None | Some(crate::probe::ProbeStatus::NotCaptured)
            )
        });
        (all_uncaptured, st.join(", "))
    };
    vec![
        version(
            SoftwareCode::Driver,
            "NVIDIA driver",
            v.driver.as_deref(),
            want.and_then(|w| w.driver.as_deref()),
            want.and_then(|w| w.driver_min.as_deref()),
            absent(&[names::QUERY_GPU, names::DRIVER_VERSION]),
        ),
        version(
            SoftwareCode::Ofed,
            "OFED",
            v.ofed.as_deref(),
            want.and_then(|w| w.ofed.as_deref()),
            want.and_then(|w| w.ofed_min.as_deref()),
            absent(&[names::OFED_INFO]),
        ),
        version(
            SoftwareCode::Nccl,
            "NCCL library",
            v.nccl.as_deref(),
            want.and_then(|w| w.nccl.as_deref()),
            want.and_then(|w| w.nccl_min.as_deref()),
            absent(&[names::NCCL_LIBRARY]),
        ),
    ]
}

fn version(
    id: SoftwareCode,
    what: &str,
    have: Option<&str>,
    exact: Option<&str>,
    min: Option<&str>,
    (uncaptured, probes): (bool, String),
) -> Check {
    let ev = format!(
        "found {}; expected {}{}; {probes}",
        have.unwrap_or("nothing"),
        exact.unwrap_or("-"),
        min.map(|m| format!(", at least {m}")).unwrap_or_default()
    );
    let fix = format!("install the fleet's {what} version, or update the expectations file");
    let Some(have) = have else {
        let why = if uncaptured {
            format!("{what} version unknown: its probes are absent from the capture")
        } else {
            format!("{what} not found")
        };
        return if exact.is_some() || min.is_some() {
            Check::at(
                id,
                Status::Fail,
                "node",
                format!("{why}, so the golden version was not seen"),
            )
            .evidence(ev)
            .fix(format!("check that {what} is installed where nccltune looks"))
        } else {
            Check::at(id, Status::Skip, "node", why).evidence(ev)
        };
    };
    if let Some(e) = exact
        && e != have
    {
        return Check::at(
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
        return Check::at(
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
    Check::at(id, Status::Pass, "node", format!("{what} {have}{note}")).evidence(ev)
}
