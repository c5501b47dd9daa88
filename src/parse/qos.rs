//! Fabric QoS of RoCE ports, from two probes:
//!
//! - `sysfs-net-ecn`: `grep -H .` style lines over
//!   `/sys/class/net/<netdev>/ecn/roce_{np,rp}/enable/<0-7>` (mlx5: the notification point,
//!   which answers congestion-marked packets with CNPs, and the reaction point, DCQCN's rate
//!   limiter, per priority; NVIDIA MLNX_OFED docs, "Explicit Congestion Notification (ECN)").
//! - `mlnx_qos`: `mlnx_qos -i <netdev>` once per RDMA netdev, each output after a
//!   `==> <netdev> <==` line: PFC per priority (`PFC configuration:` / `enabled 0 0 0 1 0 0 0 0`),
//!   `Priority trust state: pcp|dscp`, the `dscp2prio mapping:` table, and the `tc: N` blocks
//!   with their `priority:` lines (NVIDIA MLNX_OFED docs, "Quality of Service", mlnx_qos).
//!
//! Pure `&str -> T`; lines that are not understood are skipped (the tool's output grew
//! sections over the years: DCBX mode, buffers, cable length), never an error.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// 802.1Qbb has eight priorities.
pub const PRIORITIES: u8 = 8;

/// Most netdevs kept from one probe's output: a node has a few dozen RDMA netdevs at most, and
/// a hostile capture must not turn 16 MiB of separator lines into millions of entries.
pub const MAX_NETDEVS: usize = 1024;

/// ECN enable bits of one netdev, per priority.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ecn {
    /// Priorities with `roce_np/enable/<p>` = 1.
    pub np: Vec<u8>,
    /// Priorities with `roce_rp/enable/<p>` = 1.
    pub rp: Vec<u8>,
    /// Entries read (of 16: np and rp for 8 priorities).
    pub entries: u32,
}

/// Parses the `sysfs-net-ecn` probe: netdev → its ECN state.
pub fn parse_ecn(text: &str) -> BTreeMap<String, Ecn> {
    let mut out: BTreeMap<String, Ecn> = BTreeMap::new();
    for line in text.lines() {
        let Some((path, value)) = line.rsplit_once(':') else {
            continue;
        };
        let parts: Vec<&str> = path.rsplit('/').take(5).collect();
        // [prio, "enable", "roce_np"|"roce_rp", "ecn", netdev]
        let [prio, enable, side, ecn, netdev] = parts.as_slice() else {
            continue;
        };
        if *enable != "enable" || *ecn != "ecn" || netdev.is_empty() {
            continue;
        }
        let Ok(p) = prio.parse::<u8>() else { continue };
        if p >= PRIORITIES {
            continue;
        }
        let on = match value.trim() {
            "1" => true,
            "0" => false,
            _ => continue,
        };
        if out.len() >= MAX_NETDEVS && !out.contains_key(*netdev) {
            continue;
        }
        let e = out.entry(netdev.to_string()).or_default();
        e.entries += 1;
        let list = match *side {
            "roce_np" => &mut e.np,
            "roce_rp" => &mut e.rp,
            _ => continue,
        };
        if on && !list.contains(&p) {
            list.push(p);
            list.sort_unstable();
        }
    }
    out
}

/// How the NIC assigns a received packet to a priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trust {
    /// By the VLAN header's PCP bits.
    Pcp,
    /// By the IP header's DSCP.
    Dscp,
}

impl Trust {
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Pcp => "pcp",
            Trust::Dscp => "dscp",
        }
    }
}

/// What `mlnx_qos -i <netdev>` printed for one netdev.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlnxQos {
    pub trust: Option<Trust>,
    /// Priorities with PFC enabled; `None` when the output had no PFC table.
    pub pfc: Option<Vec<u8>>,
    /// Priority → the DSCP values that map to it (`dscp2prio mapping:`).
    pub dscp_to_prio: BTreeMap<u8, Vec<u8>>,
    /// Priority → traffic class (from the `tc: N` blocks).
    pub prio_to_tc: BTreeMap<u8, u8>,
}

/// Parses the `mlnx_qos` probe: netdev → what it printed. Output without any `==> netdev <==`
/// line is filed under the empty name.
pub fn parse_mlnx_qos(text: &str) -> BTreeMap<String, MlnxQos> {
    let mut out: BTreeMap<String, MlnxQos> = BTreeMap::new();
    let mut current = String::new();
    let mut pfc_header = false;
    let mut tc: Option<u8> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(name) = line.strip_prefix("==> ").and_then(|l| l.strip_suffix(" <==")) {
            current = name.trim().to_string();
            pfc_header = false;
            tc = None;
            if out.len() >= MAX_NETDEVS {
                break;
            }
            out.entry(current.clone()).or_default();
            continue;
        }
        let q = out.entry(current.clone()).or_default();
        if let Some(v) = line.strip_prefix("Priority trust state:") {
            q.trust = match v.trim() {
                "pcp" => Some(Trust::Pcp),
                "dscp" => Some(Trust::Dscp),
                _ => None,
            };
        } else if line.starts_with("PFC configuration") {
            pfc_header = true;
        } else if pfc_header && line.starts_with("enabled") {
            let bits: Vec<&str> = line.split_whitespace().skip(1).collect();
            if bits.len() == usize::from(PRIORITIES) && bits.iter().all(|b| *b == "0" || *b == "1") {
                q.pfc = Some(
                    bits.iter()
                        .enumerate()
                        .filter(|(_, b)| **b == "1")
                        .map(|(i, _)| i as u8)
                        .collect(),
                );
            }
            pfc_header = false;
        } else if let Some(rest) = line.strip_prefix("prio:") {
            // `prio:3 dscp:31,30,29,28,27,26,25,24,`
            let mut it = rest.split_whitespace();
            let (Some(p), Some(d)) = (it.next(), it.next()) else {
                continue;
            };
            let (Ok(p), Some(d)) = (p.parse::<u8>(), d.strip_prefix("dscp:")) else {
                continue;
            };
            if p >= PRIORITIES {
                continue;
            }
            let mut dscps: Vec<u8> = d
                .split(',')
                .filter_map(|x| x.trim().parse::<u8>().ok())
                .filter(|x| *x < 64)
                .collect();
            dscps.sort_unstable();
            q.dscp_to_prio.entry(p).or_default().extend(dscps);
        } else if let Some(rest) = line.strip_prefix("tc:") {
            // `tc: 3 ratelimit: unlimited, tsa: ets, bw: 10%`
            tc = rest
                .split_whitespace()
                .next()
                .and_then(|t| t.parse::<u8>().ok())
                .filter(|t| *t < PRIORITIES);
        } else if let (Some(t), Some(rest)) = (tc, line.strip_prefix("priority:")) {
            for p in rest.split([' ', ',']).filter_map(|p| p.trim().parse::<u8>().ok()) {
                if p < PRIORITIES {
                    q.prio_to_tc.insert(p, t);
                }
            }
        } else if !line.is_empty() {
            // A line that is neither `tc:` nor `priority:` ends the current tc block.
            tc = None;
        }
    }
    out.retain(|name, q| !(name.is_empty() && *q == MlnxQos::default()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // In the format of `mlnx_qos -i` from MLNX_OFED 4.x-5.x (written for this test).
    const QOS: &str = "==> ens1np0 <==
DCBX mode: OS controlled
Priority trust state: dscp
dscp2prio mapping:
\tprio:0 dscp:07,06,05,04,03,02,01,00,
\tprio:1 dscp:15,14,13,12,11,10,09,08,
\tprio:2 dscp:23,22,21,20,19,18,17,16,
\tprio:3 dscp:31,30,29,28,27,26,25,24,
\tprio:4 dscp:39,38,37,36,35,34,33,32,
\tprio:5 dscp:47,46,45,44,43,42,41,40,
\tprio:6 dscp:55,54,53,52,51,50,49,48,
\tprio:7 dscp:63,62,61,60,59,58,57,56,
Receive buffer size (bytes): 130944,130944,0,0,0,0,0,0,
Cable len: 7
PFC configuration:
\tpriority    0   1   2   3   4   5   6   7
\tenabled     0   0   0   1   0   0   0   0
\tbuffer      0   0   0   1   0   0   0   0
tc: 0 ratelimit: unlimited, tsa: vendor
\t priority:  1
tc: 1 ratelimit: unlimited, tsa: vendor
\t priority:  0
tc: 3 ratelimit: unlimited, tsa: ets, bw: 50%
\t priority:  3
==> ens2np0 <==
Priority trust state: pcp
PFC configuration:
\tpriority    0   1   2   3   4   5   6   7
\tenabled     0   0   0   0   0   0   0   0
";

    #[test]
    fn mlnx_qos_gives_trust_pfc_dscp_and_tc_per_netdev() {
        let q = parse_mlnx_qos(QOS);
        let a = &q["ens1np0"];
        assert_eq!(a.trust, Some(Trust::Dscp));
        assert_eq!(a.pfc, Some(vec![3]));
        assert_eq!(a.dscp_to_prio[&3], vec![24, 25, 26, 27, 28, 29, 30, 31]);
        assert_eq!(a.prio_to_tc.get(&3), Some(&3));
        assert_eq!(a.prio_to_tc.get(&1), Some(&0));
        let b = &q["ens2np0"];
        assert_eq!((b.trust, b.pfc.clone()), (Some(Trust::Pcp), Some(vec![])));
        assert!(b.dscp_to_prio.is_empty());
    }

    #[test]
    fn a_cut_pfc_table_is_unknown_not_off() {
        let q = parse_mlnx_qos("==> e <==\nPFC configuration:\n priority 0 1 2 3\n enabled 0 0 0 1\n");
        assert_eq!(q["e"].pfc, None);
        assert!(parse_mlnx_qos("").is_empty());
        assert!(
            parse_mlnx_qos("\u{0}\u{ff}junk\n==> <==\n")
                .values()
                .all(|v| v.pfc.is_none())
        );
    }

    #[test]
    fn netdev_count_is_capped() {
        let many: String = (0..5000).map(|i| format!("==> e{i} <==\n")).collect();
        assert_eq!(parse_mlnx_qos(&many).len(), MAX_NETDEVS);
        let many: String = (0..5000)
            .map(|i| format!("/sys/class/net/e{i}/ecn/roce_np/enable/3:1\n"))
            .collect();
        assert_eq!(parse_ecn(&many).len(), MAX_NETDEVS);
    }

    #[test]
    fn ecn_lines_give_priorities_per_side() {
        let text = "/sys/class/net/ens1np0/ecn/roce_np/enable/3:1
/sys/class/net/ens1np0/ecn/roce_np/enable/4:0
/sys/class/net/ens1np0/ecn/roce_rp/enable/3:1
/sys/class/net/ens2np0/ecn/roce_rp/enable/9:1
/sys/class/net/ens2np0/ecn/roce_np/enable/0:x
garbage
";
        let e = parse_ecn(text);
        assert_eq!(e["ens1np0"].np, vec![3]);
        assert_eq!(e["ens1np0"].rp, vec![3]);
        assert_eq!(e["ens1np0"].entries, 3);
        assert!(!e.contains_key("ens2np0"));
    }
}
