//! Node-aware checks of the settings that pick a GPUDirect level or a fabric priority, against
//! what the node has: `NCCL_NET_GDR_LEVEL`/`NCCL_NET_GDR_C2C` against NCCL's default on Grace
//! (C2C) nodes, and `NCCL_IB_TC`/`NCCL_IB_SL` against the RoCE ports' lossless (PFC) priorities.
//! On InfiniBand the priority an SL gets is set by the subnet manager, which the host cannot
//! see; that is said rather than judged.

use super::{LintFinding, f};
use crate::finding::{LintCode, Severity};
use crate::hw::LinkLayer;
use crate::lint::envfile::Assignment;
use crate::nccl;
use crate::node::NodeReport;

/// NCCL's path order (NCCL 2.30.7 `src/graph/topo.h`, `topoPathTypeStr`); a level admits every
/// path up to and including it.
const LEVELS: [&str; 10] = [
    "LOC", "NVL", "NVB", "C2C", "PIX", "PXB", "P2C", "PXN", "PHB", "SYS",
];

fn level_index(value: &str) -> Option<usize> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Legacy integers: 0 LOC, 1 PIX, 2 PXB, 3 PHB, 4 and above SYS.
        let name = ["LOC", "PIX", "PXB", "PHB", "SYS"]
            .get(usize::try_from(nccl::strtoll(value).value).unwrap_or(4))
            .copied()
            .unwrap_or("SYS");
        return LEVELS.iter().position(|l| *l == name);
    }
    LEVELS.iter().position(|l| *l == value)
}

pub(super) fn check(
    a: &Assignment,
    value: &str,
    node: &NodeReport,
    version: Option<&[u64]>,
    out: &mut Vec<LintFinding>,
) {
    if a.name.starts_with("NCCL_IB_")
        && a.name != "NCCL_IB_DISABLE"
        && let Some(p) = node.platform.as_ref().filter(|p| p.net_plugin.is_some())
    {
        out.push(f(
            LintCode::PluginTransport,
            Severity::Warn,
            a,
            format!(
                "{} on {} ({}): the {} net plugin carries inter-node traffic there, not NCCL's InfiniBand transport, so this does nothing",
                a.name,
                node.hostname.as_deref().unwrap_or("this node"),
                p.name,
                p.net_plugin.as_deref().unwrap_or("")
            ),
            "remove it; the plugin has its own settings (aws-ofi-nccl: OFI_NCCL_*, doc/efa-env-var.md; GPUDirect-TCPX/TCPXO: NCCL_GPUDIRECTTCPX_*/NCCL_FASTRAK_*)",
        ));
        return;
    }
    match a.name.as_str() {
        "NCCL_NET_GDR_LEVEL" | "NCCL_NET_GDR_C2C" => gdr(a, value, node, version, out),
        "NCCL_IB_TC" | "NCCL_IB_SL" => priority(a, value, node, out),
        _ => {}
    }
}

/// The GPUs whose nearest NIC hangs off their own Grace CPU (`NODE`/`PHB` in `topo -m`): the
/// NICs NCCL classes `P2C`.
fn p2c_nics(node: &NodeReport) -> Vec<String> {
    let mut v: Vec<String> = node
        .gpu_nic_affinity
        .iter()
        .filter(|x| {
            matches!(
                x.path,
                crate::parse::topo::Path::Node | crate::parse::topo::Path::Phb
            )
        })
        .map(|x| format!("{} at {}", x.nic, x.path.label()))
        .collect();
    v.sort();
    v.dedup();
    v
}

fn gdr(a: &Assignment, value: &str, node: &NodeReport, version: Option<&[u64]>, out: &mut Vec<LintFinding>) {
    let Some(c2c) = crate::hw::c2c_gpus(node) else {
        return;
    };
    // Before 2.27 the default was PXB (NCCL_NET_GDR_C2C off or absent).
    if version.is_some_and(|v| v < [2, 27].as_slice()) {
        return;
    }
    let nics = p2c_nics(node);
    if nics.is_empty() {
        return;
    }
    let host = node.hostname.as_deref().unwrap_or("this node");
    let src = "NCCL 2.30.7 src/graph/paths.cc, ncclTopoCheckGdr (default P2C while NCCL_NET_GDR_C2C=1) and ncclTopoComputePaths (GPU-C2C-CPU-PCIe-NIC is P2C)";
    let name = a.name.as_str();
    if name == "NCCL_NET_GDR_C2C" {
        if nccl::strtoll(value).value == 0 {
            out.push(f(
                LintCode::GdrBelowC2c,
                Severity::Warn,
                a,
                format!("NCCL_NET_GDR_C2C={value} on {host} ({c2c}): the default level drops from P2C to PXB, so GPUDirect RDMA is off for the NICs on the GPUs' Grace CPU ({})", nics.join(", ")),
                format!("remove NCCL_NET_GDR_C2C ({src})"),
            ));
        }
        return;
    }
    let (Some(set), Some(p2c)) = (level_index(value), level_index("P2C")) else {
        return;
    };
    // LOC is reported as a disabled data path already.
    if set == 0 {
        return;
    }
    if set < p2c {
        out.push(f(
            LintCode::GdrBelowC2c,
            Severity::Warn,
            a,
            format!("NCCL_NET_GDR_LEVEL={value} on {host} ({c2c}): below NCCL's default P2C, so GPUDirect RDMA is off for the NICs on the GPUs' Grace CPU ({}), which are P2C to NCCL", nics.join(", ")),
            format!("remove NCCL_NET_GDR_LEVEL to get NCCL's default P2C ({src})"),
        ));
    } else if set == p2c {
        out.push(f(
            LintCode::RedundantDefault,
            Severity::Info,
            a,
            format!("NCCL_NET_GDR_LEVEL={value} restates NCCL's default on {host} ({c2c})"),
            "remove it so that NCCL's own choice applies",
        ));
    }
}

/// `NCCL_IB_TC` (the traffic class: DSCP << 2 on RoCE v2) or `NCCL_IB_SL` against the RoCE rail
/// ports' PFC priorities; on InfiniBand, what the host cannot see.
fn priority(a: &Assignment, value: &str, node: &NodeReport, out: &mut Vec<LintFinding>) {
    let n = nccl::strtoll(value);
    if !n.trailing.is_empty() || n.value < 0 {
        return;
    }
    let name = a.name.as_str();
    let rails = crate::hw::rails(node);
    let host = node.hostname.as_deref().unwrap_or("this node");
    match rails.layer {
        Some(LinkLayer::InfiniBand) => {
            out.push(f(
                LintCode::QosUnseen,
                Severity::Info,
                a,
                format!(
                    "{name}={value} on {host}'s InfiniBand rails: {}; the SL-to-VL mapping and which VLs get priority or bandwidth live in the subnet manager and switches, which the host cannot see",
                    if name == "NCCL_IB_SL" {
                        "the service level NCCL's queue pairs use"
                    } else {
                        "the GRH traffic class, which InfiniBand switches do not use to pick a lane (the SL does)"
                    }
                ),
                "check the SM's QoS policy and `smpquery sl2vl <lid> <port>` or `ibdiagnet` on the fabric (NCCL docs, Environment Variables, NCCL_IB_SL, NCCL_IB_TC)",
            ));
        }
        Some(LinkLayer::Ethernet) => roce(a, name, value, n.value, node, &rails, out),
        _ => {}
    }
}

fn roce(
    a: &Assignment,
    name: &str,
    value: &str,
    n: i64,
    node: &NodeReport,
    rails: &crate::hw::Rails<'_>,
    out: &mut Vec<LintFinding>,
) {
    let host = node.hostname.as_deref().unwrap_or("this node");
    let fix_class = match crate::configure::facts::roce_traffic_class(node).class {
        Ok(tc) => format!(
            "NCCL_IB_TC={tc}, the lossless class `nccltune configure` sets from the node's DSCP table"
        ),
        Err(_) => "a DSCP (NCCL_IB_TC = DSCP << 2) the NIC maps to the priority with PFC and ECN on".into(),
    };
    let mut unseen: Vec<String> = Vec::new();
    let mut lossy: Vec<String> = Vec::new();
    let mut pcp: Vec<String> = Vec::new();
    for p in &rails.ports {
        let id = p.id();
        let Some(q) = node.qos.iter().find(|q| q.port == id) else {
            unseen.push(id);
            continue;
        };
        let Some(pfc) = q.pfc_priorities.as_ref() else {
            unseen.push(id);
            continue;
        };
        let trust = q.trust;
        let prio: Option<u8> = match (name, trust) {
            ("NCCL_IB_TC", Some(crate::parse::qos::Trust::Dscp)) => {
                let dscp = u8::try_from((n >> 2) & 0x3f).unwrap_or(0);
                q.dscp_by_priority
                    .iter()
                    .find(|(_, ds)| ds.contains(&dscp))
                    .map(|(p, _)| *p)
            }
            ("NCCL_IB_TC", _) => {
                pcp.push(id);
                continue;
            }
            // On RoCE the SL is the 802.1p priority of the VLAN tag: it decides under PCP trust.
            ("NCCL_IB_SL", Some(crate::parse::qos::Trust::Pcp)) => u8::try_from(n).ok().filter(|p| *p < 8),
            _ => continue,
        };
        match prio {
            Some(p) if pfc.contains(&p) => {}
            Some(p) => lossy.push(format!("{id} (priority {p}, PFC on {pfc:?})")),
            None => lossy.push(format!(
                "{id} (no priority maps DSCP {}, PFC on {pfc:?})",
                (n >> 2) & 0x3f
            )),
        }
    }
    if !lossy.is_empty() {
        let what = if name == "NCCL_IB_TC" {
            format!("{name}={value} is DSCP {}", (n >> 2) & 0x3f)
        } else {
            format!("{name}={value} is VLAN priority {value}")
        };
        out.push(f(
            LintCode::TcNotLossless,
            Severity::Warn,
            a,
            format!("{what}, which no lossless (PFC) priority carries on {host}: {}; NCCL's RDMA traffic is dropped, not paused, under congestion", lossy.join(", ")),
            format!("use {fix_class} (NCCL docs, Environment Variables, NCCL_IB_TC; MLNX_OFED docs, Quality of Service)"),
        ));
    }
    if !pcp.is_empty() {
        out.push(f(
            LintCode::QosUnseen,
            Severity::Info,
            a,
            format!("{name}={value}: {} trust the VLAN priority (PCP), not the DSCP that NCCL_IB_TC sets, so it does not choose the priority there", pcp.join(", ")),
            "under PCP trust the priority is the VLAN tag's (NCCL_IB_SL on RoCE); check `mlnx_qos -i <netdev>`",
        ));
    }
    if !unseen.is_empty() && lossy.is_empty() {
        out.push(f(
            LintCode::QosUnseen,
            Severity::Info,
            a,
            format!("{name}={value}: not checked against {}: their PFC setup was not seen (mlnx_qos not installed or not captured)", unseen.join(", ")),
            "install MLNX_OFED's mlnx_qos, or capture again with `nccltune detect --capture DIR`",
        ));
    }
}
