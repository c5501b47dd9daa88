//! `ibstat`: channel adapters and their ports. Read by keys, not by indentation, so tab or space
//! indents and pasted output that lost its indentation parse the same. `ibwarn:` lines are kept
//! as warnings; a trailing `ibpanic:` line (ibstat gave up part way, e.g. on an Ethernet-only
//! device) is kept and the adapters printed before it remain valid.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IbStat {
    pub cas: Vec<Ca>,
    pub warnings: Vec<String>,
    pub panic: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ca {
    pub name: String,
    pub ca_type: Option<String>,
    pub firmware: Option<String>,
    pub hardware_version: Option<String>,
    pub node_guid: Option<String>,
    pub ports: Vec<Port>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Port {
    pub number: u32,
    /// `Active`, `Down`, `Initializing`, `Armed`, ...
    pub state: Option<String>,
    /// `LinkUp`, `Disabled`, `Polling`, ...
    pub physical_state: Option<String>,
    /// Gb/s as printed (`Rate: 400`).
    pub rate_gbps: Option<f64>,
    pub base_lid: Option<u32>,
    pub sm_lid: Option<u32>,
    pub port_guid: Option<String>,
    /// `InfiniBand` or `Ethernet` (RoCE).
    pub link_layer: Option<String>,
}

pub fn parse(text: &str) -> IbStat {
    let mut out = IbStat::default();
    let mut in_port = false;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ibwarn:") {
            out.warnings.push(rest.trim().to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("ibpanic:") {
            out.panic = Some(rest.trim().to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("CA '") {
            let name = rest.trim_end_matches('\'').to_string();
            out.cas.push(Ca {
                name,
                ..Ca::default()
            });
            in_port = false;
            continue;
        }
        let Some(ca) = out.cas.last_mut() else { continue };
        if let Some(rest) = line.strip_prefix("Port ")
            && let Some(n) = rest.strip_suffix(':')
            && let Ok(number) = n.trim().parse()
        {
            ca.ports.push(Port {
                number,
                ..Port::default()
            });
            in_port = true;
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match (in_port, key.trim()) {
            (_, "CA type") => ca.ca_type = Some(value),
            (_, "Firmware version") => ca.firmware = Some(value),
            (_, "Hardware version") => ca.hardware_version = Some(value),
            (_, "Node GUID") => ca.node_guid = Some(value),
            (true, k) => {
                let Some(port) = ca.ports.last_mut() else { continue };
                match k {
                    "State" => port.state = Some(value),
                    "Physical state" => port.physical_state = Some(value),
                    "Rate" => port.rate_gbps = super::leading_number(&value),
                    "Base lid" => port.base_lid = value.parse().ok(),
                    "SM lid" => port.sm_lid = value.parse().ok(),
                    "Port GUID" => port.port_guid = Some(value),
                    "Link layer" => port.link_layer = Some(value),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapters_ports_and_link_layers() {
        let text = "CA 'mlx5_0'\n\tCA type: MT4129\n\tFirmware version: 28.41.1000\n\tPort 1:\n\t\tState: Active\n\
\t\tPhysical state: LinkUp\n\t\tRate: 400\n\t\tBase lid: 12\n\t\tLink layer: InfiniBand\n\
CA 'mlx5_1'\n        CA type: MT4125\n        Port 1:\n                State: Down\n                Physical state: Disabled\n\
                Rate: 10\n                Base lid: 65535\n                Link layer: Ethernet\n";
        let s = parse(text);
        assert_eq!(s.cas.len(), 2);
        assert_eq!(s.cas[0].ca_type.as_deref(), Some("MT4129"));
        let p = &s.cas[0].ports[0];
        assert_eq!(
            (p.number, p.state.as_deref(), p.rate_gbps),
            (1, Some("Active"), Some(400.0))
        );
        assert_eq!(s.cas[1].ports[0].link_layer.as_deref(), Some("Ethernet"));
        assert_eq!(s.cas[1].ports[0].base_lid, Some(65535));
    }

    #[test]
    fn flattened_indent_warnings_and_panic() {
        let text = "ibwarn: [1] something odd\nCA 'mlx5_ib0'\nCA type: MT4124\nPort 1:\nState: Initializing\nRate: 200\n\
ibpanic: [8371] main: stat of IB device 'mlx5_an0' failed: No such file or directory\n";
        let s = parse(text);
        assert_eq!(s.cas[0].ports[0].state.as_deref(), Some("Initializing"));
        assert_eq!(s.warnings, ["[1] something odd"]);
        assert!(s.panic.as_deref().is_some_and(|p| p.contains("mlx5_an0")));
        assert_eq!(parse("\u{0}\u{1}garbage: x"), IbStat::default());
    }
}
