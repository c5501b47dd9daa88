//! The `sysfs-net-interfaces` probe: `grep -H .` style lines over
//! `/sys/class/net/<if>/{operstate,speed,type}`, `/sys/class/net/<if>/device:present` and
//! `/sys/class/net/<if>/device/driver:<driver>`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetInterface {
    pub name: String,
    /// `up`, `down`, `unknown`, ...
    pub operstate: Option<String>,
    pub speed_mbps: Option<i64>,
    /// ARP hardware type: 1 Ethernet, 32 InfiniBand (IPoIB), 772 loopback.
    pub arp_type: Option<u32>,
    /// Backed by a device (not a bridge, veth, bond-less virtual or loopback interface).
    pub physical: bool,
    /// The device's kernel driver (`gve`: Google's virtual NIC; `ena`: AWS's), where captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
}

pub fn parse(text: &str) -> Vec<NetInterface> {
    let mut out: Vec<NetInterface> = Vec::new();
    for line in text.lines() {
        let Some((path, value)) = line.split_once(':') else {
            continue;
        };
        // `<root>/<if>/device/driver:<driver>`
        let (path, driver_line) = match path.strip_suffix("/device/driver") {
            Some(p) => (p, true),
            None => (path, false),
        };
        let mut parts = path.rsplit('/');
        if driver_line {
            let Some(name) = parts.next().filter(|n| !n.is_empty()) else {
                continue;
            };
            match out.iter_mut().find(|i| i.name == name) {
                Some(i) => i.driver = Some(value.trim().to_string()),
                None => out.push(NetInterface {
                    name: name.to_string(),
                    driver: Some(value.trim().to_string()),
                    ..NetInterface::default()
                }),
            }
            continue;
        }
        let (Some(attr), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let idx = match out.iter().position(|i| i.name == name) {
            Some(i) => i,
            None => {
                out.push(NetInterface {
                    name: name.to_string(),
                    ..NetInterface::default()
                });
                out.len() - 1
            }
        };
        let i = &mut out[idx];
        let value = value.trim();
        match attr {
            "operstate" => i.operstate = Some(value.to_string()),
            "speed" => i.speed_mbps = value.parse().ok().filter(|s: &i64| *s > 0),
            "type" => i.arp_type = value.parse().ok(),
            "device" => i.physical = true,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn interfaces_with_state_speed_and_kind() {
        let text = "/sys/class/net/enp5s0/operstate:up\n/sys/class/net/enp5s0/speed:25000\n/sys/class/net/enp5s0/type:1\n\
/sys/class/net/enp5s0/device:present\n/sys/class/net/lo/operstate:unknown\n/sys/class/net/lo/type:772\n/sys/class/net/docker0/speed:-1\n";
        let n = super::parse(text);
        assert_eq!(n.len(), 3);
        assert_eq!(
            (n[0].name.as_str(), n[0].speed_mbps, n[0].physical),
            ("enp5s0", Some(25000), true)
        );
        assert_eq!(n[2].speed_mbps, None);
    }

    #[test]
    fn the_device_driver_line_names_the_interface_not_device() {
        let n = super::parse(
            "/sys/class/net/enp6s0/operstate:up\n/sys/class/net/enp6s0/device:present\n/sys/class/net/enp6s0/device/driver:gve\n",
        );
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].name, "enp6s0");
        assert_eq!(n[0].driver.as_deref(), Some("gve"));
        assert!(n[0].physical);
    }
}
