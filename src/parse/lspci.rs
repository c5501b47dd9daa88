//! `lspci -vvv`: PCI devices with their bridge bus ranges and the ACS control register
//! (`ACSCtl:`), which only root can read (others see `Capabilities: <access denied>`).
//! Used to find ACS redirection on bridges above GPUs and RDMA NICs (NCCL docs, Troubleshooting, PCI Access Control Services: PCIe
//! ACS/IOMMU redirection can break or slow GPUDirect RDMA).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lspci {
    pub devices: Vec<PciDevice>,
    /// Some capability lists read `<access denied>`: lspci did not run as root.
    pub access_denied: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PciDevice {
    /// As printed: `17:00.0` or `0000:17:00.0`.
    pub address: String,
    /// `PCI bridge: Broadcom / LSI PEX890xx ...`.
    pub description: String,
    /// Bridges: the bus range behind them.
    pub secondary: Option<u32>,
    pub subordinate: Option<u32>,
    /// `ACSCtl:` flags that are on (`SrcValid`, `ReqRedir`, `CmpltRedir`, ...).
    pub acs_ctl_on: Option<Vec<String>>,
}

impl PciDevice {
    /// The bus number (the part before the device number).
    pub fn bus(&self) -> Option<u32> {
        let mut parts = self.address.rsplit(':');
        parts.next()?;
        u32::from_str_radix(parts.next()?, 16).ok()
    }
    pub fn is_bridge(&self) -> bool {
        self.description.starts_with("PCI bridge")
    }
    pub fn is_nvidia_gpu(&self) -> bool {
        (self.description.starts_with("3D controller")
            || self.description.starts_with("VGA compatible controller"))
            && self.description.contains("NVIDIA")
    }
    pub fn is_rdma_nic(&self) -> bool {
        self.description.starts_with("Infiniband controller")
            || (self.description.starts_with("Ethernet controller") && self.description.contains("Mellanox"))
    }
    /// Whether `bus` lies behind this bridge.
    pub fn covers(&self, bus: u32) -> bool {
        matches!((self.secondary, self.subordinate), (Some(s), Some(e)) if s <= bus && bus <= e)
    }
    /// ACS redirects peer-to-peer requests or completions up to the root complex.
    pub fn acs_redirects(&self) -> bool {
        self.acs_ctl_on
            .as_ref()
            .is_some_and(|f| f.iter().any(|x| x == "ReqRedir" || x == "CmpltRedir"))
    }
}

fn hex(v: &str) -> Option<u32> {
    u32::from_str_radix(v.trim(), 16).ok()
}

/// Parses `lspci -vvv`. Never fails; unknown lines are skipped.
pub fn parse(text: &str) -> Lspci {
    let mut out = Lspci::default();
    for line in text.lines() {
        let l = line.trim_end();
        if l.is_empty() {
            continue;
        }
        if !l.starts_with(char::is_whitespace) {
            // `17:00.0 PCI bridge: ...`: a new device.
            if let Some((addr, desc)) = l.split_once(' ')
                && addr.contains(':')
                && addr.contains('.')
            {
                out.devices.push(PciDevice {
                    address: addr.to_string(),
                    description: desc.trim().to_string(),
                    ..PciDevice::default()
                });
            }
            continue;
        }
        let Some(dev) = out.devices.last_mut() else {
            continue;
        };
        let t = l.trim();
        if t.contains("<access denied>") {
            out.access_denied = true;
        } else if let Some(bus) = t.strip_prefix("Bus:") {
            for kv in bus.split(',') {
                match kv.trim().split_once('=') {
                    Some(("secondary", v)) => dev.secondary = hex(v),
                    Some(("subordinate", v)) => dev.subordinate = hex(v),
                    _ => {}
                }
            }
        } else if let Some(flags) = t.strip_prefix("ACSCtl:") {
            dev.acs_ctl_on = Some(
                flags
                    .split_whitespace()
                    .filter_map(|f| f.strip_suffix('+'))
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str =
        "17:00.0 PCI bridge: Broadcom / LSI PEX890xx PCIe Gen 5 Switch (rev b0) (prog-if 00 [Normal decode])
\tBus: primary=16, secondary=18, subordinate=18, sec-latency=0
\tCapabilities: [f24 v1] Access Control Services
\t\tACSCap:\tSrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl+ DirectTrans+
\t\tACSCtl:\tSrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-
18:00.0 3D controller: NVIDIA Corporation GH100 [H100 SXM5 80GB] (rev a1)
\tCapabilities: <access denied>
";

    #[test]
    fn bridges_acs_and_access() {
        let l = parse(TEXT);
        assert_eq!(l.devices.len(), 2);
        let b = &l.devices[0];
        assert!(b.is_bridge() && b.covers(0x18) && !b.covers(0x19));
        assert!(b.acs_redirects());
        assert_eq!(l.devices[1].bus(), Some(0x18));
        assert!(l.devices[1].is_nvidia_gpu());
        assert!(l.access_denied);
        assert_eq!(parse("\u{0}junk\n\tBus: primary=zz\n"), Lspci::default());
    }
}
