//! The node report: what a node has, built from probe outputs. This is the one model every
//! node-reading command (detect, configure, lint, verify, bench targets) works from. `build`
//! turns probe outputs into facts only (typed: port state, link layer, PCI path, GPUDirect
//! path, architecture, probe status are enums), records which probes each group of facts
//! came from and whether it was observed at all, and `findings` judges the facts once, with
//! the codes `verify` uses, so every command says the same thing about the same fault.

mod build;
pub mod findings;

pub use build::{build, collect};

use crate::finding::Finding;
pub use crate::hw::{Arch, GdrPath, LinkLayer, PortState};
use crate::parse::topo::Path;
use crate::probe::ProbeStatus;
use serde::{Deserialize, Serialize};

/// Version of the JSON document `detect --format json` writes. 2: findings in the shared
/// model (`code`, `level`, `subject`, `observed`, `expected`, `evidence`, `fix`), the
/// `identity` and `observed` blocks, and per-probe parse problems.
pub const SCHEMA: u32 = 2;

/// Who the node is. Host names are reused (cloud instances, reimaged nodes), so the machine id,
/// the DMI serial and UUID (readable by root only) and the boot id travel with every report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub hostname: Option<String>,
    /// `/etc/machine-id`.
    pub machine_id: Option<String>,
    /// `/sys/class/dmi/id/product_serial`.
    pub dmi_product_serial: Option<String>,
    /// `/sys/class/dmi/id/product_uuid`.
    pub dmi_product_uuid: Option<String>,
    /// `/proc/sys/kernel/random/boot_id`: changes at every boot.
    pub boot_id: Option<String>,
}

/// Whether a group of facts was observed, and from which probes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub observed: bool,
    pub probes: Vec<String>,
}

/// The evidence behind each group of facts. A group that was not observed holds defaults
/// (an empty list, `None`), which must never be read as "the node has none".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub gpus: Seen,
    pub nvlink: Seen,
    pub topology: Seen,
    pub rdma: Seen,
    pub gpudirect: Seen,
    pub pcie: Seen,
    pub software: Seen,
    /// Fabric QoS of the RoCE ports (`sysfs-net-ecn`, `mlnx_qos`).
    #[serde(default)]
    pub qos: Seen,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeReport {
    pub schema: u32,
    /// `nccltune_version` and `generated_at`.
    #[serde(flatten)]
    pub meta: crate::render::meta::Meta,
    pub hostname: Option<String>,
    #[serde(default)]
    pub identity: Identity,
    /// `live`, or the replayed capture directory.
    pub source: String,
    pub gpus: Vec<Gpu>,
    pub nvlink: Vec<GpuNvlink>,
    /// One entry per GPU pair (a < b) from the topology matrix.
    pub gpu_links: Vec<GpuLink>,
    pub nvswitch: NvSwitch,
    pub nics: Vec<Nic>,
    /// For each GPU, its closest NIC port(s) in the topology matrix.
    pub gpu_nic_affinity: Vec<Affinity>,
    /// From `topo -m`'s banner: (NICs found, NICs displayed) when it cut the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topo_nics_truncated: Option<(u32, u32)>,
    pub gpudirect: GpuDirect,
    pub versions: Versions,
    /// Every NCCL library file found (`nccl-library`), in the probe's search order. An
    /// addition to schema 2.
    #[serde(default)]
    pub nccl_libraries: Vec<NcclLibrary>,
    /// Which of them a process would load, per kind of process, with the loader rule applied.
    /// An addition to schema 2.
    #[serde(default)]
    pub nccl_loads: Vec<NcclLoad>,
    /// DMI system facts (`/sys/class/dmi/id`). An addition to schema 2.
    #[serde(default)]
    pub dmi: Dmi,
    /// NCCL net and tuner plugins found (`nccl-plugins`). An addition to schema 2.
    #[serde(default)]
    pub nccl_plugins: Vec<NcclPlugin>,
    /// The cloud platform, when `src/hw/platforms.toml` knows it, with the facts used to tell
    /// it. An addition to schema 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// IOMMU-related kernel parameters (`intel_iommu=on`, `iommu=pt`, ...).
    pub iommu_params: Vec<String>,
    /// PCIe ACS on the bridges above GPUs and RDMA NICs (`lspci -vvv`, root only).
    #[serde(default)]
    pub pcie_acs: PcieAcs,
    /// IP interfaces (for the socket transport and bootstrap).
    #[serde(default)]
    pub interfaces: Vec<crate::parse::net_sysfs::NetInterface>,
    /// Lossless setup of each RoCE port (PFC, ECN, trust mode); empty without RoCE ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub qos: Vec<PortQos>,
    pub probes: Vec<ProbeSummary>,
    #[serde(default)]
    pub observed: Observed,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    pub index: u32,
    pub name: Option<String>,
    pub pci_bus_id: Option<String>,
    pub uuid: Option<String>,
    pub memory_total_mib: Option<u64>,
    /// `Enabled` / `Disabled`; `None` where the GPU has no MIG.
    pub mig_mode: Option<String>,
    pub pcie_gen: Option<u32>,
    pub pcie_width: Option<u32>,
    pub cpu_affinity: Option<String>,
    pub numa_affinity: Option<String>,
    /// The first probe the GPU is known from (`nvidia-smi-query-gpu`, `nvidia-smi-topo`,
    /// `nvidia-smi-nvlink` or `nvidia-smi-q`).
    pub source: String,
    /// Every probe that saw the GPU, merged by PCI bus id or index.
    #[serde(default)]
    pub seen_by: Vec<String>,
    /// MIG instances (GPU instance id, compute instance id) from `nvidia-smi -q`. MIG devices
    /// are not NVLink peers: CUDA IPC between MIG instances is not supported (NVIDIA MIG User
    /// Guide, "Application Considerations"), so NCCL between them goes through host memory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mig_devices: Vec<(Option<u32>, Option<u32>)>,
    /// The multi-node NVLink domain (`nvidia-smi -q` Fabric `ClusterUUID` + `CliqueId`), where the
    /// GPU is in one (an all-zero cluster UUID is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink_domain: Option<NvlinkDomain>,
    /// `Hopper`, `Ampere`, ... from `nvidia-smi -q`.
    #[serde(default)]
    pub architecture: Option<Arch>,
    /// NVLink fabric registration from `nvidia-smi -q` (`Completed`, `In Progress`,
    /// `Not Started`, `N/A`) and its status (`Success`, ...).
    #[serde(default)]
    pub fabric_state: Option<String>,
    #[serde(default)]
    pub fabric_status: Option<String>,
}

/// A multi-node NVLink domain as the fabric reports it: GPUs with the same cluster UUID and
/// clique id reach each other over NVLink across trays (NVIDIA GB200 NVL72; NCCL's
/// `NCCL_MNNVL_ENABLE`, NCCL docs, Environment Variables).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NvlinkDomain {
    pub cluster_uuid: String,
    pub clique_id: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuNvlink {
    pub gpu: u32,
    pub active_links: u32,
    pub inactive_links: u32,
    /// Per-link speed in GB/s (per direction) when all active links agree; the lowest otherwise.
    pub link_gbps: Option<f64>,
    /// Sum over active links, GB/s per direction.
    pub total_gbps: f64,
    /// True when active links run at different speeds.
    pub mixed_speeds: bool,
    /// The driver's message, where it printed one instead of links.
    pub message: Option<String>,
    /// Links a GPU of this architecture has (`hw::nvlink_spec`), where the architecture and
    /// form factor are known: the yardstick for "inactive".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_links: Option<u32>,
    /// The driver says NVLink cannot be queried because the GPU is in MIG mode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mig: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuLink {
    pub a: u32,
    pub b: u32,
    /// The matrix cell: `NV18`, `PIX`, `PXB`, `PHB`, `NODE`, `SYS`.
    pub path: Path,
    /// Number of bonded NVLinks, 0 for a PCIe path.
    pub nvlinks: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NvSwitch {
    /// `Some(true)` when the topology shows every GPU pair joined by all of its NVLinks, which
    /// only an NVSwitch fabric gives with more than two GPUs; `None` when it cannot be told.
    pub present: Option<bool>,
    pub evidence: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Nic {
    pub device: String,
    pub port: u32,
    /// `Active`, `Down`, `Initializing`, `Armed`...
    pub state: Option<PortState>,
    pub physical_state: Option<String>,
    pub rate_gbps: Option<f64>,
    /// `InfiniBand` or `Ethernet` (RoCE).
    pub link_layer: Option<LinkLayer>,
    pub ca_type: Option<String>,
    pub firmware: Option<String>,
    pub netdevs: Vec<String>,
    /// RoCE ports: the first RoCE v2 GID index holding an IPv4 address (from sysfs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roce_v2_ipv4_gid_index: Option<u32>,
    /// `ibstat`, `sysfs` or `ibstat+sysfs`.
    pub source: String,
    /// The link layer was not printed by any probe and is inferred: ibstat before the
    /// `Link layer` line existed (it was added with RoCE support) printed InfiniBand ports only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub link_layer_inferred: bool,
    /// The device's kernel driver from sysfs (`mlx5_core`, `efa`), where captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
}

impl Nic {
    pub fn is_active(&self) -> bool {
        self.state == Some(PortState::Active)
    }
    pub fn is_infiniband(&self) -> bool {
        self.link_layer == Some(LinkLayer::InfiniBand)
    }
    pub fn is_roce(&self) -> bool {
        self.link_layer == Some(LinkLayer::Ethernet)
    }
    /// `mlx5_0:1`, the syntax of `NCCL_IB_HCA`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.device, self.port)
    }
}

/// The lossless (PFC + ECN) setup of one RoCE port, as its netdev reports it. `None` fields
/// were not seen (probe absent, not installed, or no entry for this netdev): unknown, not off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PortQos {
    /// `mlx5_0:1`.
    pub port: String,
    pub netdev: Option<String>,
    /// Priorities with PFC enabled (`mlnx_qos`).
    pub pfc_priorities: Option<Vec<u8>>,
    /// Priorities whose ECN notification point is on (`sysfs-net-ecn`, `roce_np`).
    pub ecn_np: Option<Vec<u8>>,
    /// Priorities whose ECN reaction point (DCQCN rate control) is on (`roce_rp`).
    pub ecn_rp: Option<Vec<u8>>,
    /// How received packets are given a priority (`mlnx_qos`).
    pub trust: Option<crate::parse::qos::Trust>,
    /// Priority -> the DSCP values the NIC maps to it (`mlnx_qos`, dscp2prio).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub dscp_by_priority: std::collections::BTreeMap<u8, Vec<u8>>,
    /// The probes that gave these facts.
    pub seen_by: Vec<String>,
}

impl PortQos {
    /// Priorities with PFC and ECN both on (notification and reaction point); `None` when
    /// PFC or ECN was not seen.
    pub fn lossless_priorities(&self) -> Option<Vec<u8>> {
        let (pfc, np, rp) = (
            self.pfc_priorities.as_ref()?,
            self.ecn_np.as_ref()?,
            self.ecn_rp.as_ref()?,
        );
        Some(
            pfc.iter()
                .copied()
                .filter(|p| np.contains(p) && rp.contains(p))
                .collect(),
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Affinity {
    pub gpu: u32,
    pub nic: String,
    pub path: Path,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuDirect {
    /// Peer-memory clients registered with the RDMA core (`/sys/kernel/mm/memory_peers/*/version`
    /// found): `nv_mem`, `nv_mem_nc`.
    pub peer_memory_clients: Vec<String>,
    /// `/sys/module/nvidia_peermem/version` found (the module is loaded).
    pub nvidia_peermem_module: Option<bool>,
    /// Modules seen in `lsmod`: `nvidia_peermem`, `nv_peer_mem`.
    pub peer_memory_modules_loaded: Vec<String>,
    /// NVIDIA open kernel module (needed for DMA-BUF).
    pub open_kernel_module: Option<bool>,
    pub kernel_release: Option<String>,
    /// Kernel at least 5.12 (`None` when the release is unknown).
    pub kernel_supports_dmabuf: Option<bool>,
    /// The path NCCL will find: `peer-memory`, `dma-buf`, `none`, or `unknown`.
    pub path: GdrPath,
    pub evidence: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PcieAcs {
    /// `read`; `access-denied` (lspci not run as root); or the probe's status (`not-found`,
    /// `not-captured`, `timeout`, ...).
    pub status: String,
    /// Bridges above a GPU or an RDMA NIC whose ACS control register was read.
    pub bridges_checked: u32,
    /// Those of them whose ACS control redirects peer-to-peer requests or completions.
    pub redirecting: Vec<AcsBridge>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AcsBridge {
    pub address: String,
    /// `ACSCtl` flags that are on.
    pub flags: Vec<String>,
    /// The GPUs and NICs behind it, by PCI address.
    pub above: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub driver: Option<String>,
    pub ofed: Option<String>,
    /// `MLNX_OFED` or `DOCA-OFED`.
    pub ofed_flavor: Option<String>,
    pub nccl: Option<String>,
    pub kernel: Option<String>,
}

/// DMI system facts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dmi {
    pub sys_vendor: Option<String>,
    pub product_name: Option<String>,
    pub board_vendor: Option<String>,
}

/// An NCCL plugin library.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NcclPlugin {
    pub path: String,
    /// `net`, `tuner` or `other`.
    pub kind: String,
    /// `aws-ofi-nccl`, `gpudirect-tcpxo`, `gpudirect-tcpx`, `sharp`, `gib` or `unknown`.
    pub owner: String,
    /// Whether the loader finds it by name (`LD_LIBRARY_PATH`, its cache, a default folder).
    pub on_loader_path: bool,
}

/// A cloud platform.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    /// `azure-nd-h100-v5`, `aws-efa`, `gcp-a3-mega`, ...
    pub id: String,
    pub name: String,
    /// The machine type, where the node names it (AWS's DMI product name).
    pub machine: Option<String>,
    /// The facts the platform was told from.
    pub used: Vec<String>,
    /// The owner of the net plugin that carries inter-node traffic, if one was found.
    pub net_plugin: Option<String>,
    pub source: String,
}

/// One NCCL library file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NcclLibrary {
    pub path: String,
    pub version: Option<String>,
    /// How the version was known: `wheel metadata`, `embedded version string`, `file name`,
    /// `link target`, `same folder` (a `libnccl.so.2` beside one `libnccl.so.2.X.Y`, its usual
    /// link target, in captures that do not say) or `unknown`.
    pub how: String,
    /// Where the folder came from: `LD_LIBRARY_PATH`, `python` (site-packages), `env` (a
    /// Python environment's `lib`), `system`; `unknown` in older captures.
    pub origin: String,
}

/// The NCCL a kind of process would load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NcclLoad {
    /// `program` (linked against `libnccl.so.2` without an RPATH: nccl-tests, MPI jobs) or
    /// `pytorch <site-packages folder>`.
    pub process: String,
    /// `None` when no file fits the rule.
    pub path: Option<String>,
    pub version: Option<String>,
    /// The loader rule applied and what it rests on.
    pub rule: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeSummary {
    pub name: String,
    pub command: String,
    pub status: ProbeStatus,
    pub duration_ms: u64,
    /// Output past the size cap was dropped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The probe ran but its output was not understood (or only in part): the parser's
    /// message, naming the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The probe failed part-way, and what it printed before was kept (ibstat's `ibpanic:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
    /// Warnings the tool printed in its output (ibstat's `ibwarn:` lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The first non-empty line the probe wrote to stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

// The enum comes from a macro (or another module), so `#[default]` cannot be used.
#[allow(clippy::derivable_impls)]
impl Default for ProbeStatus {
    fn default() -> ProbeStatus {
        ProbeStatus::NotCaptured
    }
}

impl NodeReport {
    /// RDMA ports that are up.
    pub fn active_nics(&self) -> impl Iterator<Item = &Nic> {
        self.nics.iter().filter(|n| n.is_active())
    }

    /// Whether the named probe ran successfully and was understood (facts from it can be
    /// trusted to be complete).
    pub fn probe_ok(&self, name: &str) -> bool {
        self.probes
            .iter()
            .any(|p| p.name == name && p.status.is_ok() && p.problem.is_none())
    }

    /// How the named probe ended; `None` when it is not in the report at all.
    pub fn probe_status(&self, name: &str) -> Option<&ProbeStatus> {
        self.probes.iter().find(|p| p.name == name).map(|p| &p.status)
    }

    /// The named probe's record.
    pub fn probe(&self, name: &str) -> Option<&ProbeSummary> {
        self.probes.iter().find(|p| p.name == name)
    }

    /// Whether the report comes from a replayed capture (rather than this machine).
    pub fn is_replay(&self) -> bool {
        self.source != "live"
    }
}
