//! Fabric QoS facts of the RoCE ports: the ECN bits from sysfs and `mlnx_qos`'s PFC, trust
//! and DSCP tables, joined to each RoCE port through its netdev.

use super::{Nic, Outputs, PortQos};
use crate::parse::qos;
use crate::probe::names;

pub(super) fn ports(out: &Outputs, nics: &[Nic]) -> Vec<PortQos> {
    let ecn = out.ok_text(names::NET_ECN).map(|t| qos::parse_ecn(&t));
    // `mlnx_qos` exits non-zero for a netdev it cannot query; what it printed for the others is
    // still the tool's answer for them, so the text is read whatever the status.
    let mlnx = out
        .get(names::MLNX_QOS)
        .filter(|o| !o.stdout.is_empty())
        .map(|o| qos::parse_mlnx_qos(&o.text()));
    nics.iter()
        .filter(|n| n.is_roce())
        .map(|n| {
            let netdev = n.netdevs.first().cloned();
            let mut q = PortQos {
                port: n.id(),
                netdev: netdev.clone(),
                ..PortQos::default()
            };
            let Some(dev) = netdev else { return q };
            // A netdev without ECN entries (not an mlx5 driver, or an old one) is unknown.
            if let Some(e) = ecn.as_ref().and_then(|e| e.get(&dev)) {
                q.ecn_np = Some(e.np.clone());
                q.ecn_rp = Some(e.rp.clone());
                q.seen_by.push(names::NET_ECN.to_string());
            }
            if let Some(m) = mlnx.as_ref().and_then(|m| m.get(&dev)) {
                q.pfc_priorities = m.pfc.clone();
                q.trust = m.trust;
                q.dscp_by_priority = m.dscp_to_prio.clone();
                q.seen_by.push(names::MLNX_QOS.to_string());
            }
            q
        })
        .collect()
}
