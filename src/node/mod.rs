//! The node report: what a node has, built from probe outputs. This is the one model every
//! node-reading command (detect, configure, lint, verify, bench targets) works from, so it
//! holds facts only; judging them is the job of the commands.

mod build;

pub use build::{build, collect};

use crate::finding::Finding;
use serde::{Deserialize, Serialize};

/// Version of the JSON document `detect --format json` writes.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeReport {
    pub schema: u32,
    pub hostname: Option<String>,
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
    pub gpudirect: GpuDirect,
    pub versions: Versions,
    /// IOMMU-related kernel parameters (`intel_iommu=on`, `iommu=pt`, ...).
    pub iommu_params: Vec<String>,
    /// PCIe ACS on the bridges above GPUs and RDMA NICs (`lspci -vvv`, root only).
    #[serde(default)]
    pub pcie_acs: PcieAcs,
    /// IP interfaces (for the socket transport and bootstrap).
    #[serde(default)]
    pub interfaces: Vec<crate::parse::net_sysfs::NetInterface>,
    pub probes: Vec<ProbeSummary>,
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
    /// Which probe the GPU is known from: `nvidia-smi-query-gpu` or `nvidia-smi-topo`.
    pub source: String,
    /// `Hopper`, `Ampere`, ... from `nvidia-smi -q`.
    #[serde(default)]
    pub architecture: Option<String>,
    /// NVLink fabric registration from `nvidia-smi -q` (`Completed`, `In Progress`,
    /// `Not Started`, `N/A`) and its status (`Success`, ...).
    #[serde(default)]
    pub fabric_state: Option<String>,
    #[serde(default)]
    pub fabric_status: Option<String>,
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
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuLink {
    pub a: u32,
    pub b: u32,
    /// The matrix cell: `NV18`, `PIX`, `PXB`, `PHB`, `NODE`, `SYS`.
    pub path: String,
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
    /// `Active`, `Down`, `Initializing`, `Armed`, `Polling`...
    pub state: Option<String>,
    pub physical_state: Option<String>,
    pub rate_gbps: Option<f64>,
    /// `InfiniBand` or `Ethernet` (RoCE).
    pub link_layer: Option<String>,
    pub ca_type: Option<String>,
    pub firmware: Option<String>,
    pub netdevs: Vec<String>,
    /// RoCE ports: the first RoCE v2 GID index holding an IPv4 address (from sysfs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roce_v2_ipv4_gid_index: Option<u32>,
    /// `ibstat`, `sysfs` or `ibstat+sysfs`.
    pub source: String,
}

impl Nic {
    pub fn is_active(&self) -> bool {
        self.state.as_deref() == Some("Active")
    }
    pub fn is_infiniband(&self) -> bool {
        self.link_layer.as_deref() == Some("InfiniBand")
    }
    pub fn is_roce(&self) -> bool {
        self.link_layer.as_deref() == Some("Ethernet")
    }
    /// `mlx5_0:1`, the syntax of `NCCL_IB_HCA`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.device, self.port)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Affinity {
    pub gpu: u32,
    pub nic: String,
    pub path: String,
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
    pub path: String,
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeSummary {
    pub name: String,
    pub command: String,
    pub status: String,
    pub duration_ms: u64,
}

impl NodeReport {
    /// RDMA ports that are up.
    pub fn active_nics(&self) -> impl Iterator<Item = &Nic> {
        self.nics.iter().filter(|n| n.is_active())
    }

    /// Whether the named probe ran successfully (facts from it can be trusted to be complete).
    pub fn probe_ok(&self, name: &str) -> bool {
        self.probes.iter().any(|p| p.name == name && p.status == "ok")
    }
}
