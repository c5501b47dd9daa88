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
pub const KNOWN: [(&str, &str); 23] = [
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
        "roce_lossless_priority",
        "the one priority with PFC and ECN (np and rp) on every RoCE rail port",
    ),
    (
        "roce_traffic_class",
        "NCCL_IB_TC for that priority: DSCP << 2, under DSCP trust on every RoCE rail port",
    ),
    (
        "socket_ifname",
        "`=if,...`: the fastest physical IP interfaces that are up",
    ),
    (
        "gdr_path",
        "GPUDirect RDMA path: peer-memory, dma-buf, none, unknown",
    ),
    (
        "platform",
        "the cloud platform `src/hw/platforms.toml` detected (`azure-nd-h100-v5`, `aws-efa`, `gcp-a3-mega`, ...)",
    ),
    (
        "net_plugin",
        "owner of the NCCL net plugin that carries inter-node traffic (`aws-ofi-nccl`, `gpudirect-tcpxo`, `gpudirect-tcpx`); absent without one",
    ),
    ("efa_devices", "EFA devices (driver `efa`)"),
    (
        "gcp_ctrl_dev",
        "Google Cloud: the primary gVNIC interface (the first gve interface in name order)",
    ),
    (
        "gcp_gpu_ifnames",
        "Google Cloud: the other gve interfaces, comma-separated (the GPU NICs)",
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
            let tc = roce_traffic_class(node);
            if let Some(p) = tc.priority {
                f.insert("roce_lossless_priority".into(), Fact::Int(i64::from(p)));
            }
            if let Ok(tc) = tc.class {
                f.insert("roce_traffic_class".into(), Fact::Int(i64::from(tc)));
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
    if let Some(p) = &node.platform {
        f.insert("platform".into(), Fact::Str(p.id.clone()));
        if let Some(n) = &p.net_plugin {
            f.insert("net_plugin".into(), Fact::Str(n.clone()));
        }
    }
    if crate::hw::port_facts_known(node) {
        let efa = crate::hw::platform::efa_devices(node).len();
        f.insert("efa_devices".into(), Fact::Int(efa as i64));
    }
    let gve = crate::hw::platform::gve_interfaces(node);
    if let [ctrl, gpu @ ..] = gve.as_slice()
        && !gpu.is_empty()
    {
        f.insert("gcp_ctrl_dev".into(), Fact::Str(ctrl.clone()));
        f.insert("gcp_gpu_ifnames".into(), Fact::Str(gpu.join(",")));
    }
    f
}

/// Orders two versions.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    version_key(a).cmp(&version_key(b))
}

/// The lossless class of the RoCE rails, or why it cannot be told.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficClass {
    /// The one priority with PFC and ECN on every RoCE rail port.
    pub priority: Option<u8>,
    /// `NCCL_IB_TC`: the IP header's traffic class byte (DSCP in the upper six bits, the two
    /// ECN bits 0), or the reason it is not known.
    pub class: Result<u8, String>,
}

/// DSCP 26 (AF31) is the value NVIDIA's RoCE guides use for the lossless class; when several
/// DSCPs map to the lossless priority and 26 is one of them, it is the one chosen.
const CONVENTIONAL_DSCP: u8 = 26;

/// What `NCCL_IB_TC` makes RoCE traffic land on the lossless priority. NCCL puts the value in
/// the GRH traffic class of its queue pairs (NCCL docs, Environment Variables, NCCL_IB_TC,
/// https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html#nccl-ib-tc); on RoCE v2
/// that byte is the IP header's DSCP (upper six bits) and ECN (lower two), so the class is
/// DSCP << 2. Under DSCP trust the NIC maps the DSCP to a priority with its dscp2prio table,
/// read here from `mlnx_qos`. Under PCP trust the priority comes from the VLAN header, which
/// NCCL_IB_TC does not set: no class is given. The ECN bits are left 0: ECN-capable marking
/// of RoCE packets is the NIC's when ECN is enabled (guides that write 106 for DSCP 26 set
/// ECT(0) by hand; it is the same DSCP).
pub fn roce_traffic_class(node: &NodeReport) -> TrafficClass {
    let rails = crate::hw::rails(node);
    let none = |why: String| TrafficClass {
        priority: None,
        class: Err(why),
    };
    if rails.layer != Some(crate::hw::LinkLayer::Ethernet) || rails.ports.is_empty() {
        return none("no RoCE rails".into());
    }
    let qos: Vec<_> = rails
        .ports
        .iter()
        .map(|n| (n.id(), node.qos.iter().find(|q| q.port == n.id())))
        .collect();
    let mut common: Option<Vec<u8>> = None;
    for (id, q) in &qos {
        let Some(l) = q.and_then(|q| q.lossless_priorities()) else {
            return none(format!(
                "{id}: PFC or ECN not seen (mlnx_qos not installed or not captured, or no ECN entries in sysfs)"
            ));
        };
        common = Some(match common {
            None => l,
            Some(c) => c.into_iter().filter(|p| l.contains(p)).collect(),
        });
    }
    let common = common.unwrap_or_default();
    let [prio] = common.as_slice() else {
        return none(if common.is_empty() {
            "no priority has PFC and ECN on every RoCE rail port".into()
        } else {
            format!(
                "priorities {common:?} all have PFC and ECN on every rail port: which one the fabric gives NCCL is not known"
            )
        });
    };
    let prio = *prio;
    let mut dscp: Option<Vec<u8>> = None;
    for (id, q) in &qos {
        let Some(q) = q else { continue };
        if q.trust != Some(crate::parse::qos::Trust::Dscp) {
            return TrafficClass {
                priority: Some(prio),
                class: Err(format!(
                    "{id}: trust mode {} (not dscp): the priority comes from the VLAN header, which NCCL_IB_TC does not set",
                    q.trust.map_or("unknown", |t| t.as_str())
                )),
            };
        }
        let d = q.dscp_by_priority.get(&prio).cloned().unwrap_or_default();
        dscp = Some(match dscp {
            None => d,
            Some(c) => c.into_iter().filter(|x| d.contains(x)).collect(),
        });
    }
    let dscp = dscp.unwrap_or_default();
    let chosen = if dscp.contains(&CONVENTIONAL_DSCP) {
        Some(CONVENTIONAL_DSCP)
    } else if let [one] = dscp.as_slice() {
        Some(*one)
    } else {
        None
    };
    TrafficClass {
        priority: Some(prio),
        class: chosen.map(|d| d << 2).ok_or_else(|| {
            format!("no single DSCP maps to priority {prio} on every rail port (DSCPs {dscp:?})")
        }),
    }
}
