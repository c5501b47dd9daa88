//! PCIe facts: ACS control on the bridges between GPUs and RDMA NICs (`lspci -vvv`).

use super::Outputs;
use crate::node::*;
use crate::parse;
use crate::probe::names;

/// ACS redirection that matters to GPUDirect RDMA: on the bridges a GPU-to-NIC transfer
/// crosses below the pair's nearest common bridge (a PCIe switch). A redirecting port there
/// sends the transfer up to the root complex instead of across the switch. Pairs under
/// different root ports cross the root complex anyway and are not considered.
pub(super) fn pcie_acs(out: &Outputs) -> PcieAcs {
    let Some(text) = out.ok_text(names::LSPCI) else {
        return PcieAcs {
            status: out
                .status(names::LSPCI)
                .map_or("not-captured".to_string(), ToString::to_string),
            ..PcieAcs::default()
        };
    };
    let l = parse::lspci::parse(&text);
    let bus_of = |pred: fn(&parse::lspci::PciDevice) -> bool, kind: &str| -> Vec<(u32, String)> {
        l.devices
            .iter()
            .filter(|d| pred(d))
            .filter_map(|d| Some((d.bus()?, format!("{kind} {}", d.address))))
            .collect()
    };
    let gpus = bus_of(parse::lspci::PciDevice::is_nvidia_gpu, "GPU");
    let nics = bus_of(parse::lspci::PciDevice::is_rdma_nic, "NIC");
    let bridges: Vec<&parse::lspci::PciDevice> = l
        .devices
        .iter()
        .filter(|d| d.is_bridge() && d.secondary.is_some() && d.subordinate.is_some())
        .collect();
    let span = |b: &parse::lspci::PciDevice| {
        b.subordinate
            .unwrap_or(0)
            .saturating_sub(b.secondary.unwrap_or(0))
    };
    // Bridge index -> the devices behind it that a GPU-NIC transfer would carry past it.
    let mut relevant: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for (gbus, gname) in &gpus {
        for (nbus, nname) in &nics {
            let Some(ancestor) = bridges
                .iter()
                .filter(|b| b.covers(*gbus) && b.covers(*nbus))
                .min_by_key(|b| span(b))
            else {
                continue;
            };
            // Root ports do not forward peer traffic between their own children upward, so
            // only a common bridge that is itself below another bridge (a switch port) counts.
            if !bridges
                .iter()
                .any(|b| b.address != ancestor.address && ancestor.bus().is_some_and(|bus| b.covers(bus)))
            {
                continue;
            }
            for (i, b) in bridges.iter().enumerate() {
                let below = ancestor.covers(b.secondary.unwrap_or(0)) && b.address != ancestor.address;
                if below && (b.covers(*gbus) != b.covers(*nbus)) {
                    let e = relevant.entry(i).or_default();
                    let who = if b.covers(*gbus) { gname } else { nname };
                    if !e.contains(who) {
                        e.push(who.clone());
                    }
                }
            }
        }
    }
    let mut acs = PcieAcs {
        status: "read".into(),
        ..PcieAcs::default()
    };
    let mut denied = false;
    for (i, above) in relevant {
        let b = bridges[i];
        match &b.acs_ctl_on {
            Some(flags) => {
                acs.bridges_checked += 1;
                if b.acs_redirects() {
                    acs.redirecting.push(AcsBridge {
                        address: b.address.clone(),
                        flags: flags.clone(),
                        above,
                    });
                }
            }
            None => denied |= l.access_denied,
        }
    }
    if l.access_denied && acs.bridges_checked == 0 && (denied || gpus.is_empty() || nics.is_empty()) {
        acs.status = "access-denied".into();
    }
    acs
}
