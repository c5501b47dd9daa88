//! RDMA port checks: state (telling `Initializing`, no subnet manager, from `Down`), rate
//! against expectations or against the other GPU-rail ports, link layer, and the fabric QoS of
//! the rails: lossless RoCE (PFC and ECN on one priority), and for InfiniBand what the host
//! cannot see.

use super::{Check, Context, Status};
use crate::finding::RdmaCode;
use crate::node::Nic;
use crate::probe::names;
use std::collections::BTreeSet;

pub fn checks(cx: &Context) -> Vec<Check> {
    let node = cx.node;
    let expected = cx.expect().map(|e| e.ports.as_slice()).unwrap_or_default();
    // Port facts are complete when a port probe ran, or sysfs says there is no RDMA device.
    let reliable = crate::hw::port_facts_known(node)
        && (node.nics.is_empty()
            || node.probe_ok(names::RDMA_PORTS)
            || node.probe_ok(names::IBSTAT)
            || crate::hw::no_rdma_devices(node));
    if node.nics.is_empty() && expected.is_empty() {
        let why = if reliable {
            "not applicable: no RDMA ports on this node (/sys/class/infiniband is empty or absent)"
        } else {
            "RDMA ports unknown: neither ibstat nor the sysfs probe succeeded"
        };
        return vec![Check::at(RdmaCode::PortState, Status::Skip, "node", why).evidence(probe_evidence(cx))];
    }
    let rails = rail_devices(cx);
    let mut v = Vec::new();
    for e in expected {
        if !node.nics.iter().any(|n| n.id() == e.port) {
            let (status, msg) = if reliable {
                (Status::Fail, format!("expected port {} is missing", e.port))
            } else {
                (
                    Status::Skip,
                    format!(
                        "expected port {} cannot be checked: the port probes failed",
                        e.port
                    ),
                )
            };
            v.push(
                Check::at(RdmaCode::PortState, status, e.port.clone(), msg)
                    .evidence(probe_evidence(cx))
                    .fix("check that the adapter is seen on PCIe (`lspci | grep -i mellanox`) and that mlx5_core/mlx5_ib are loaded"),
            );
        }
    }
    // Without GPU-NIC topology, a down port is only known to matter when it leaves the node
    // with no usable RDMA port at all.
    let none_active = node.active_nics().next().is_none();
    for n in &node.nics {
        let role = if rails.contains(n.device.as_str()) || expected.iter().any(|e| e.port == n.id()) {
            Role::Needed
        } else if rails.is_empty() && none_active {
            Role::Only
        } else if rails.is_empty() {
            Role::Unknown
        } else {
            Role::Spare
        };
        v.push(state(n, role));
    }
    for n in node.active_nics() {
        v.push(rate(cx, n, &rails));
    }
    v.extend(link_layer(cx, &rails));
    v.extend(lossless(cx));
    v
}

/// RoCE rails: each active rail port should have one priority with PFC (no drops) and ECN on
/// both sides (DCQCN: the notification point answers congestion marks with CNPs, the reaction
/// point slows the sender), which is what RoCE's congestion control is built on (NVIDIA
/// MLNX_OFED docs, "RDMA over Converged Ethernet (RoCE)" and "Explicit Congestion Notification
/// (ECN)"). InfiniBand rails: what only the fabric can tell is in `link_layer`'s evidence.
fn lossless(cx: &Context) -> Vec<Check> {
    let id = RdmaCode::Lossless;
    let r = crate::hw::rails(cx.node);
    let unseen = |n: &&Nic| {
        cx.node
            .qos
            .iter()
            .find(|q| q.port == n.id())
            .is_none_or(|q| q.seen_by.is_empty())
    };
    match r.layer {
        // No QoS fact on any rail: one skip, not one per port.
        Some(crate::hw::LinkLayer::Ethernet) if !r.ports.is_empty() && r.ports.iter().all(unseen) => vec![
            Check::at(
                id,
                Status::Skip,
                "node",
                "lossless RoCE setup not checked: neither mlnx_qos nor the ECN sysfs entries were seen for the rail ports",
            )
            .evidence(
                cx.node
                    .probes
                    .iter()
                    .filter(|p| names::QOS.contains(&p.name.as_str()))
                    .map(|p| format!("{}: {}", p.name, p.status))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .fix("install MLNX_OFED's mlnx_qos on the node and run again (or capture again with a current `nccltune detect --capture DIR`)"),
        ],
        Some(crate::hw::LinkLayer::Ethernet) => r
            .ports
            .iter()
            .map(|n| {
                let q = cx.node.qos.iter().find(|q| q.port == n.id());
                let netdev = q.and_then(|q| q.netdev.as_deref()).unwrap_or("<netdev>");
                let ev = q.map_or_else(
                    || "no QoS facts for this port".to_string(),
                    |q| {
                        format!(
                            "netdev {netdev}; PFC on {}; ECN np {}; ECN rp {}; trust {}; seen by {}",
                            prios(q.pfc_priorities.as_deref()),
                            prios(q.ecn_np.as_deref()),
                            prios(q.ecn_rp.as_deref()),
                            q.trust.map_or("unknown", |t| t.as_str()),
                            if q.seen_by.is_empty() { "none".to_string() } else { q.seen_by.join(", ") }
                        )
                    },
                );
                match q.and_then(|q| q.lossless_priorities()) {
                    None => {
                        let missing = match q {
                            Some(q) if q.pfc_priorities.is_none() && q.ecn_np.is_none() => "PFC and ECN",
                            Some(q) if q.pfc_priorities.is_none() => "PFC",
                            Some(_) => "ECN",
                            None => "PFC and ECN",
                        };
                        Check::at(
                            id,
                            Status::Skip,
                            n.id(),
                            format!("lossless setup not checked: {missing} not seen (mlnx_qos -i {netdev}, /sys/class/net/{netdev}/ecn)"),
                        )
                        .evidence(ev)
                    }
                    Some(p) if p.is_empty() => Check::at(
                        id,
                        Status::Warn,
                        n.id(),
                        format!("no priority carries both PFC and ECN on {netdev}: RoCE traffic is lossy or without congestion control, and NCCL's throughput collapses under congestion"),
                    )
                    .observed("none")
                    .evidence(ev)
                    .fix(format!(
                        "set the priority the switches treat as lossless (often 3): `mlnx_qos -i {netdev} --trust dscp --pfc 0,0,0,1,0,0,0,0`, `echo 1 > /sys/class/net/{netdev}/ecn/roce_np/enable/3` and the same for roce_rp; match the switch configuration"
                    )),
                    Some(p) => Check::at(
                        id,
                        Status::Pass,
                        n.id(),
                        format!("priority {} carries PFC and ECN on {netdev}", prios(Some(&p))),
                    )
                    .observed(prios(Some(&p)))
                    .evidence(ev),
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// InfiniBand rails: what only the fabric can tell, with the commands that show it.
const IB_FABRIC_UNSEEN: &str = "not visible from the host: adaptive routing and the SL-to-VL mapping are set in the subnet manager and the switches (`sminfo` names the master SM, `smpquery sl2vl <lid> <port>` shows a port's SL-to-VL table, `ibdiagnet` reports the fabric); NCCL_IB_ADAPTIVE_ROUTING defaults to 1 on InfiniBand and 0 on RoCE, and adaptive routing needs an AR-enabled service level chosen with NCCL_IB_SL (NCCL docs, Environment Variables, NCCL_IB_ADAPTIVE_ROUTING, https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html#nccl-ib-adaptive-routing)";

fn prios(p: Option<&[u8]>) -> String {
    match p {
        None => "unknown".into(),
        Some([]) => "none".into(),
        Some(p) => p.iter().map(u8::to_string).collect::<Vec<_>>().join(","),
    }
}

fn probe_evidence(cx: &Context) -> String {
    cx.node
        .probes
        .iter()
        .filter(|p| p.name == names::IBSTAT || p.name == names::RDMA_PORTS)
        .map(|p| format!("{}: {}", p.name, p.status))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rail devices, from `hw::rails` (the same function configure's `NCCL_IB_HCA` list comes
/// from); empty when the GPU-NIC topology is unknown, so that callers judge without roles.
fn rail_devices<'a>(cx: &'a Context) -> BTreeSet<&'a str> {
    let r = crate::hw::rails(cx.node);
    if !r.from_topology {
        return BTreeSet::new();
    }
    r.ports
        .iter()
        .chain(&r.slower)
        .chain(&r.inactive)
        .map(|n| n.device.as_str())
        .collect()
}

fn nic_evidence(n: &Nic) -> String {
    format!(
        "{} ({}): state {}, physical {}, rate {}, link layer {}",
        n.id(),
        n.source,
        n.state.as_ref().map(|s| s.as_str()).unwrap_or("?"),
        n.physical_state.as_deref().unwrap_or("?"),
        n.rate_gbps.map_or("?".into(), |r| format!("{r} Gb/s")),
        n.link_layer.as_ref().map(|s| s.as_str()).unwrap_or("?"),
    )
}

/// Why a port matters to NCCL.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    /// Some GPU's nearest NIC, or listed in the expectations.
    Needed,
    /// Topology unknown, and no port on the node is Active.
    Only,
    /// Topology unknown; other ports are Active.
    Unknown,
    /// Not a GPU's nearest NIC.
    Spare,
}

fn state(n: &Nic, role: Role) -> Check {
    let id = RdmaCode::PortState;
    let st = n.state.as_ref().map(|s| s.as_str()).unwrap_or("unknown");
    if n.is_active() {
        return Check::at(id, Status::Pass, n.id(), "Active").evidence(nic_evidence(n));
    }
    let (msg, fix) = match st {
        "Initializing" => (
            format!(
                "Initializing: the link is up (physical {}) but no subnet manager has configured the port",
                n.physical_state.as_deref().unwrap_or("?")
            ),
            "start or fix the subnet manager (opensm / UFM / the switch's SM) for this fabric; `sminfo` shows whether one answers",
        ),
        "Armed" => (
            "Armed: the subnet manager configured the port but has not activated it".to_string(),
            "check the subnet manager's log; re-sweep the fabric",
        ),
        "Down" => (
            format!(
                "Down (physical {}): no link",
                n.physical_state.as_deref().unwrap_or("?")
            ),
            "check the cable and the switch port; `ibstat`/`mlxlink -d <dev>` shows the physical state",
        ),
        _ => (
            format!("{st}: not Active"),
            "check the port with `ibstat` and the cable/switch port",
        ),
    };
    let (status, msg) = match role {
        Role::Needed => (Status::Fail, msg),
        Role::Only => (
            Status::Fail,
            format!("{msg}; no RDMA port on this node is Active"),
        ),
        Role::Unknown => (
            Status::Warn,
            format!("{msg} (GPU-NIC topology unknown, other ports are Active)"),
        ),
        Role::Spare => (
            Status::Warn,
            format!("{msg} (not a GPU's nearest NIC, so NCCL rails may not need it)"),
        ),
    };
    Check::at(id, status, n.id(), msg)
        .evidence(nic_evidence(n))
        .fix(fix)
}

fn rate(cx: &Context, n: &Nic, rails: &BTreeSet<&str>) -> Check {
    let id = RdmaCode::PortRate;
    let ev = nic_evidence(n);
    let Some(r) = n.rate_gbps else {
        return Check::at(id, Status::Skip, n.id(), "rate not reported").evidence(ev);
    };
    let fix = "a port that trained below its peers points at a cable, transceiver or switch-port fault: check `mlxlink -d <dev>` and reseat or replace the cable";
    if let Some(e) = cx
        .expect()
        .and_then(|e| e.ports.iter().find(|p| p.port == n.id()))
        .and_then(|p| p.rate_gbps)
    {
        return if r < e {
            Check::at(id, Status::Fail, n.id(), format!("{r} Gb/s, {e} Gb/s expected"))
                .evidence(ev)
                .fix(fix)
        } else if r > e {
            Check::at(
                id,
                Status::Warn,
                n.id(),
                format!("{r} Gb/s, above the {e} Gb/s expected"),
            )
            .evidence(ev)
            .fix("update the expectations file if the fabric was upgraded")
        } else {
            Check::at(id, Status::Pass, n.id(), format!("{r} Gb/s, as expected")).evidence(ev)
        };
    }
    let same_layer = |p: &&Nic| p.link_layer == n.link_layer;
    let (peers, confident): (Vec<&Nic>, bool) = if rails.is_empty() {
        (cx.node.active_nics().filter(same_layer).collect(), false)
    } else if rails.contains(n.device.as_str()) {
        (
            cx.node
                .active_nics()
                .filter(|p| rails.contains(p.device.as_str()))
                .filter(same_layer)
                .collect(),
            true,
        )
    } else {
        return Check::at(
            id,
            Status::Pass,
            n.id(),
            format!("{r} Gb/s (not a GPU's nearest NIC: not compared with the rail ports)"),
        )
        .evidence(ev);
    };
    let best = peers.iter().filter_map(|p| p.rate_gbps).fold(r, f64::max);
    let peer_ev = format!(
        "{ev}; peers: {}",
        peers
            .iter()
            .map(|p| format!("{}={}", p.id(), p.rate_gbps.map_or("?".into(), |x| x.to_string())))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if r < best {
        let status = if confident { Status::Fail } else { Status::Warn };
        let note = if confident {
            ""
        } else {
            " (GPU-NIC topology unknown, so rail and management ports cannot be told apart)"
        };
        Check::at(
            id,
            status,
            n.id(),
            format!("{r} Gb/s while peer ports run at {best} Gb/s{note}"),
        )
        .evidence(peer_ev)
        .fix(fix)
    } else {
        Check::at(id, Status::Pass, n.id(), format!("{r} Gb/s, same as its peers")).evidence(peer_ev)
    }
}

fn link_layer(cx: &Context, rails: &BTreeSet<&str>) -> Vec<Check> {
    let id = RdmaCode::LinkLayer;
    let mut v = Vec::new();
    if let Some(e) = cx.expect() {
        for p in &e.ports {
            let (Some(want), Some(n)) = (&p.link_layer, cx.node.nics.iter().find(|n| n.id() == p.port))
            else {
                continue;
            };
            let have = n.link_layer.as_ref().map(|s| s.as_str()).unwrap_or("unknown");
            v.push(if have == want {
                Check::at(id, Status::Pass, n.id(), format!("{have}, as expected")).evidence(nic_evidence(n))
            } else {
                Check::at(id, Status::Fail, n.id(), format!("link layer {have}, {want} expected"))
                    .evidence(nic_evidence(n))
                    .fix("set the port type with `mlxconfig -d <dev> set LINK_TYPE_P1=1` (IB) or `=2` (Ethernet) and reboot, or fix the expectations")
            });
        }
    }
    let rail_nics: Vec<&Nic> = cx
        .node
        .nics
        .iter()
        .filter(|n| rails.contains(n.device.as_str()))
        .collect();
    if rail_nics.is_empty() {
        return v;
    }
    let layers: BTreeSet<&str> = rail_nics
        .iter()
        .map(|n| n.link_layer.as_ref().map(|s| s.as_str()).unwrap_or("unknown"))
        .collect();
    let ev = rail_nics
        .iter()
        .map(|n| {
            format!(
                "{}={}",
                n.id(),
                n.link_layer.as_ref().map(|s| s.as_str()).unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let names: Vec<&str> = layers.iter().copied().collect();
    v.push(if layers.len() == 1 {
        let l = names[0];
        let kind = match l {
            "InfiniBand" => "InfiniBand",
            "Ethernet" => "RoCE (Ethernet)",
            other => other,
        };
        let check = Check::at(id, Status::Pass, "node", format!("every GPU-rail port is {kind}"));
        if l == "InfiniBand" {
            // What the host cannot see is said beside the pass, not as a row of its own.
            check.evidence(format!("{ev}; {IB_FABRIC_UNSEEN}"))
        } else {
            check.evidence(ev)
        }
    } else {
        Check::at(
            id,
            Status::Warn,
            "node",
            format!("GPU-rail ports mix link layers: {}", names.join(", ")),
        )
        .evidence(format!(
            "{ev}; NCCL will not merge IB and RoCE ports into one NIC (NCCL docs, Environment Variables, NCCL_IB_HCA)"
        ))
        .fix("give every rail port the same link layer, or restrict NCCL_IB_HCA to one kind")
    });
    v
}
