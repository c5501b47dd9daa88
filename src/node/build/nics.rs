//! RDMA port facts: ibstat and sysfs merged per port (ibstat first; sysfs fills what ibstat
//! lacks and adds the RoCE GID index and the net devices). What ibstat printed before an
//! `ibpanic:` is kept, and the probe record says it stopped part-way.

use super::Outputs;
use crate::node::*;
use crate::parse;
use crate::probe::{ProbeOutput, ProbeStatus, names};

pub(super) fn nics(out: &Outputs, probes: &mut [ProbeSummary]) -> Vec<Nic> {
    let mut nics: Vec<Nic> = Vec::new();
    if let Some(text) = out.ok_text(names::IBSTAT).or_else(|| {
        // ibstat exits non-zero after an `ibpanic:`; what it printed before is still good.
        out.get(names::IBSTAT)
            .filter(|o| matches!(o.status, ProbeStatus::Exit(_)))
            .map(ProbeOutput::text)
    }) {
        let s = parse::ibstat::parse(&text);
        let failed = out
            .get(names::IBSTAT)
            .is_some_and(|o| matches!(o.status, ProbeStatus::Exit(_)));
        let ports: usize = s.cas.iter().map(|c| c.ports.len()).sum();
        if let Some(rec) = probes.iter_mut().find(|r| r.name == names::IBSTAT) {
            if let Some(p) = &s.panic {
                rec.partial = Some(format!("ibstat stopped early: {p}"));
            } else if failed && ports > 0 {
                // `ibpanic:` goes to stderr; the exit status says the same.
                rec.partial = Some(format!(
                    "ibstat exited part-way after printing {ports} port(s){}",
                    rec.stderr
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ));
            }
        }
        for w in &s.warnings {
            if let Some(rec) = probes.iter_mut().find(|r| r.name == names::IBSTAT) {
                rec.warnings.push(w.clone());
            }
        }
        for ca in s.cas {
            for p in ca.ports {
                nics.push(Nic {
                    device: ca.name.clone(),
                    port: p.number,
                    state: p.state.as_deref().map(PortState::parse),
                    physical_state: p.physical_state,
                    rate_gbps: p.rate_gbps,
                    link_layer: p.link_layer.as_deref().map(LinkLayer::parse),
                    ca_type: ca.ca_type.clone(),
                    firmware: ca.firmware.clone(),
                    netdevs: Vec::new(),
                    roce_v2_ipv4_gid_index: None,
                    source: "ibstat".into(),
                    link_layer_inferred: false,
                    driver: None,
                });
            }
        }
    }
    if let Some(text) = out.ok_text(names::RDMA_PORTS) {
        let s = parse::rdma_sysfs::parse(&text);
        for p in s.ports {
            match nics.iter_mut().find(|n| n.device == p.device && n.port == p.port) {
                Some(n) => {
                    n.source = "ibstat+sysfs".into();
                    n.roce_v2_ipv4_gid_index = p.roce_v2_ipv4_gid_index();
                    n.state = n.state.take().or(p.state.as_deref().map(PortState::parse));
                    n.physical_state = n.physical_state.take().or(p.physical_state);
                    n.rate_gbps = n.rate_gbps.or(p.rate_gbps);
                    n.link_layer = n
                        .link_layer
                        .take()
                        .or(p.link_layer.as_deref().map(LinkLayer::parse));
                }
                None => nics.push(Nic {
                    roce_v2_ipv4_gid_index: p.roce_v2_ipv4_gid_index(),
                    device: p.device,
                    port: p.port,
                    state: p.state.as_deref().map(PortState::parse),
                    physical_state: p.physical_state,
                    rate_gbps: p.rate_gbps,
                    link_layer: p.link_layer.as_deref().map(LinkLayer::parse),
                    source: "sysfs".into(),
                    ..Nic::default()
                }),
            }
        }
        for (dev, driver) in s.drivers {
            for n in nics.iter_mut().filter(|n| n.device == dev) {
                n.driver = Some(driver.clone());
            }
        }
        for (dev, netdev) in s.netdevs {
            for n in nics.iter_mut().filter(|n| n.device == dev) {
                n.netdevs.push(netdev.clone());
            }
        }
    }
    // A port ibstat listed without a `Link layer` line, that sysfs did not describe either, is
    // InfiniBand: the line was added to ibstat with RoCE, so older versions print IB ports only.
    for n in nics
        .iter_mut()
        .filter(|n| n.link_layer.is_none() && n.source == "ibstat")
    {
        n.link_layer = Some(LinkLayer::InfiniBand);
        n.link_layer_inferred = true;
    }
    nics
}
