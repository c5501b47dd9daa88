//! Facts: the flat name → value map that rules are written against, built from the node report
//! and the flags a node cannot tell (`--mode`, `--nodes`, `--nccl-version`). This map is the only
//! seam between what was detected and the rules.

use crate::node::NodeReport;
use crate::parse::version_key;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Fact {
    Bool(bool),
    Int(i64),
    Str(String),
    /// A dotted version, kept with its text.
    Version(String),
}

impl Fact {
    pub fn text(&self) -> String {
        match self {
            Fact::Bool(b) => b.to_string(),
            Fact::Int(i) => i.to_string(),
            Fact::Str(s) | Fact::Version(s) => s.clone(),
        }
    }
}

pub type Facts = BTreeMap<String, Fact>;

/// Every fact name a rule may use, with what it means (documented in `--explain` and tests).
pub const KNOWN: [(&str, &str); 16] = [
    ("mode", "`inference` or `training` (--mode)"),
    ("nodes", "nodes in the job (--nodes); absent when not given"),
    (
        "nccl_version",
        "NCCL version (--nccl-version, else the installed library)",
    ),
    ("gpu_count", "GPUs on the node"),
    ("gpu_model", "name of the first GPU"),
    (
        "gpu_architecture",
        "`Product Architecture` of nvidia-smi -q (`Hopper`, `Blackwell`, ...) when every GPU shares it",
    ),
    ("hopper_or_newer", "every GPU is Hopper or newer"),
    ("nvswitch", "GPUs joined through NVSwitch"),
    ("ib_active_ports", "active InfiniBand ports"),
    ("roce_active_ports", "active RoCE (Ethernet link layer) ports"),
    ("rdma_active_ports", "active RDMA ports of either kind"),
    (
        "rdma_link_layer",
        "`InfiniBand` when any IB port is active, else `Ethernet` when RoCE is, else `none`",
    ),
    (
        "rdma_hca_list",
        "`=dev:port,...`: the active rail ports of that link layer at their highest rate",
    ),
    (
        "roce_gid_index",
        "RoCE v2 IPv4 GID index shared by the RoCE rail ports",
    ),
    (
        "socket_ifname",
        "`=if,...`: the fastest physical IP interfaces that are up",
    ),
    (
        "gdr_path",
        "GPUDirect RDMA path: peer-memory, dma-buf, none, unknown",
    ),
];

pub fn from_node(node: &NodeReport, mode: &str, nodes: Option<u32>, nccl_version: Option<&str>) -> Facts {
    let mut f = Facts::new();
    f.insert("mode".into(), Fact::Str(mode.to_string()));
    if let Some(n) = nodes {
        f.insert("nodes".into(), Fact::Int(i64::from(n)));
    }
    if let Some(v) = nccl_version
        .map(str::to_string)
        .or_else(|| node.versions.nccl.clone())
    {
        f.insert("nccl_version".into(), Fact::Version(v));
    }
    f.insert("gpu_count".into(), Fact::Int(node.gpus.len() as i64));
    if let Some(name) = node.gpus.iter().find_map(|g| g.name.clone()) {
        f.insert("gpu_model".into(), Fact::Str(name));
    }
    // Architecture-dependent rules (NVLS channel counts differ by sm) need one for the node:
    // `hw`'s notion (what the driver printed, else the product name).
    let mut arch = node.gpus.iter().map(crate::hw::gpu_arch);
    if let Some(Some(first)) = arch.next()
        && arch.all(|a| a.as_ref() == Some(&first))
    {
        f.insert("gpu_architecture".into(), Fact::Str(first.to_string()));
    }
    // One notion of "Hopper or newer" for the whole tool: `hw`'s.
    if node
        .gpus
        .iter()
        .any(|g| g.name.is_some() || g.architecture.is_some())
    {
        let all = node.gpus.iter().all(crate::hw::is_hopper_or_newer);
        f.insert("hopper_or_newer".into(), Fact::Bool(all));
    }
    if let Some(p) = node.nvswitch.present {
        f.insert("nvswitch".into(), Fact::Bool(p));
    }
    // Port facts only when some source of port information worked; otherwise "no ports" would
    // be a guess. The rail list is `hw::rails`, the same one verify's rail checks use.
    if crate::hw::port_facts_known(node) {
        let ib = node
            .active_nics()
            .filter(|n| n.is_infiniband() || n.link_layer.is_none())
            .count();
        let roce = node.active_nics().filter(|n| n.is_roce()).count();
        f.insert("ib_active_ports".into(), Fact::Int(ib as i64));
        f.insert("roce_active_ports".into(), Fact::Int(roce as i64));
        f.insert("rdma_active_ports".into(), Fact::Int((ib + roce) as i64));
        let rails = crate::hw::rails(node);
        let layer = rails.layer.as_ref().map_or("none", |l| l.as_str());
        f.insert("rdma_link_layer".into(), Fact::Str(layer.into()));
        if !rails.ports.is_empty() {
            let list: Vec<String> = rails.ports.iter().map(|n| n.id()).collect();
            f.insert("rdma_hca_list".into(), Fact::Str(format!("={}", list.join(","))));
        }
        if rails.layer == Some(crate::hw::LinkLayer::Ethernet) {
            let idx: Vec<Option<u32>> = rails.ports.iter().map(|n| n.roce_v2_ipv4_gid_index).collect();
            if let Some(Some(first)) = idx.first()
                && idx.iter().all(|i| *i == Some(*first))
            {
                f.insert("roce_gid_index".into(), Fact::Int(i64::from(*first)));
            }
        }
    }
    let up: Vec<_> = node
        .interfaces
        .iter()
        .filter(|i| i.physical && i.operstate.as_deref() == Some("up") && !i.name.starts_with("wl"))
        .collect();
    let best = up.iter().filter_map(|i| i.speed_mbps).max();
    let chosen: Vec<&str> = up
        .iter()
        .filter(|i| i.speed_mbps == best)
        .map(|i| i.name.as_str())
        .collect();
    if !chosen.is_empty() {
        f.insert(
            "socket_ifname".into(),
            Fact::Str(format!("={}", chosen.join(","))),
        );
    }
    f.insert("gdr_path".into(), Fact::Str(node.gpudirect.path.to_string()));
    f
}

/// Orders two versions.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    version_key(a).cmp(&version_key(b))
}
