//! The `sysfs-rdma-ports` probe: `grep -H .` style lines over
//! `/sys/class/infiniband/<dev>/ports/<n>/{state,phys_state,rate,link_layer}` plus
//! `/sys/class/infiniband/<dev>/device/net:<netdev>` and `.../device/driver:<driver>` lines.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SysfsPort {
    pub device: String,
    pub port: u32,
    /// Normalised to ibstat's words: `Active`, `Down`, `Initializing`, `Armed`.
    pub state: Option<String>,
    /// Normalised: `LinkUp`, `Disabled`, `Polling`, ...
    pub physical_state: Option<String>,
    pub rate_gbps: Option<f64>,
    pub link_layer: Option<String>,
    /// RoCE: (GID index, type such as `RoCE v2`, GID) for the entries read.
    pub gids: Vec<(u32, String, String)>,
}

impl SysfsPort {
    /// The first GID index of type RoCE v2 holding an IPv4-mapped address (`::ffff:a.b.c.d`),
    /// the entry NCCL 2.21+ would pick by default (`NCCL_IB_ROCE_VERSION_NUM=2`,
    /// `NCCL_IB_ADDR_FAMILY=AF_INET`; NCCL docs, Environment Variables, NCCL_IB_ADDR_FAMILY).
    pub fn roce_v2_ipv4_gid_index(&self) -> Option<u32> {
        let mut g: Vec<&(u32, String, String)> = self.gids.iter().collect();
        g.sort_by_key(|e| e.0);
        g.into_iter()
            .find(|(_, ty, gid)| ty == "RoCE v2" && gid.starts_with("0000:0000:0000:0000:0000:ffff:"))
            .map(|e| e.0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RdmaSysfs {
    pub ports: Vec<SysfsPort>,
    /// (device, netdev)
    pub netdevs: Vec<(String, String)>,
    /// (device, kernel driver): `efa`, `mlx5_core`, ...
    pub drivers: Vec<(String, String)>,
}

fn normalise_state(v: &str) -> String {
    // sysfs prints "4: ACTIVE"; ibstat prints "Active".
    let word = v.split_once(':').map_or(v, |(_, w)| w).trim();
    match word {
        "ACTIVE" => "Active".into(),
        "DOWN" => "Down".into(),
        "INIT" => "Initializing".into(),
        "ARMED" => "Armed".into(),
        "ACTIVE_DEFER" => "ActiveDefer".into(),
        other => other.to_string(),
    }
}

pub fn parse(text: &str) -> RdmaSysfs {
    let mut out = RdmaSysfs::default();
    for line in text.lines() {
        if let Some((path, driver)) = line.split_once("/device/driver:") {
            let dev = path.rsplit('/').next().unwrap_or("").to_string();
            if !dev.is_empty() && !driver.trim().is_empty() {
                out.drivers.push((dev, driver.trim().to_string()));
            }
            continue;
        }
        if let Some((path, netdev)) = line.split_once("/device/net:") {
            let dev = path.rsplit('/').next().unwrap_or("").to_string();
            if !dev.is_empty() && !netdev.trim().is_empty() {
                out.netdevs.push((dev, netdev.trim().to_string()));
            }
            continue;
        }
        // GID lines: `.../ports/1/gid_attrs/types/3:RoCE v2`, `.../ports/1/gids/3:0000:...`.
        if let Some((head, rest)) = line.split_once("/ports/")
            && let Some((port, tail)) = rest.split_once('/')
            && (tail.starts_with("gid_attrs/types/") || tail.starts_with("gids/"))
        {
            let device = head.rsplit('/').next().unwrap_or("").to_string();
            let is_type = tail.starts_with("gid_attrs/");
            let tail = tail
                .trim_start_matches("gid_attrs/types/")
                .trim_start_matches("gids/");
            let (Some((idx, value)), Ok(port)) = (tail.split_once(':'), port.parse::<u32>()) else {
                continue;
            };
            let Ok(idx) = idx.parse::<u32>() else { continue };
            let p = match out
                .ports
                .iter()
                .position(|p| p.device == device && p.port == port)
            {
                Some(i) => &mut out.ports[i],
                None => {
                    out.ports.push(SysfsPort {
                        device: device.clone(),
                        port,
                        ..SysfsPort::default()
                    });
                    let last = out.ports.len() - 1;
                    &mut out.ports[last]
                }
            };
            match p.gids.iter_mut().find(|g| g.0 == idx) {
                Some(g) if is_type => g.1 = value.trim().to_string(),
                Some(g) => g.2 = value.trim().to_string(),
                None if is_type => p.gids.push((idx, value.trim().to_string(), String::new())),
                None => p.gids.push((idx, String::new(), value.trim().to_string())),
            }
            continue;
        }
        let Some((path, value)) = line.split_once(":") else {
            continue;
        };
        // The value itself may contain ':' ("4: ACTIVE"); the path never does.
        let parts: Vec<&str> = path.rsplit('/').take(4).collect();
        let [attr, port, ports, device] = parts[..] else {
            continue;
        };
        if ports != "ports" {
            continue;
        }
        let Ok(port) = port.parse::<u32>() else { continue };
        let idx = match out
            .ports
            .iter()
            .position(|p| p.device == device && p.port == port)
        {
            Some(i) => i,
            None => {
                out.ports.push(SysfsPort {
                    device: device.to_string(),
                    port,
                    ..SysfsPort::default()
                });
                out.ports.len() - 1
            }
        };
        let p = &mut out.ports[idx];
        let value = value.trim();
        match attr {
            "state" => p.state = Some(normalise_state(value)),
            "phys_state" => p.physical_state = Some(normalise_state(value)),
            "rate" => p.rate_gbps = super::leading_number(value),
            "link_layer" => p.link_layer = Some(value.to_string()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_lines_are_kept_per_device() {
        let s = parse(
            "/sys/class/infiniband/rdmap79s0/ports/1/state:4: ACTIVE\n/sys/class/infiniband/rdmap79s0/ports/1/link_layer:Unknown\n/sys/class/infiniband/rdmap79s0/device/driver:efa\n",
        );
        assert_eq!(s.drivers, [("rdmap79s0".to_string(), "efa".to_string())]);
        assert_eq!(s.ports.len(), 1);
        assert_eq!(s.ports[0].state.as_deref(), Some("Active"));
    }

    #[test]
    fn ports_and_netdevs() {
        let text = "/sys/class/infiniband/mlx5_0/ports/1/state:4: ACTIVE\n\
/sys/class/infiniband/mlx5_0/ports/1/phys_state:5: LinkUp\n\
/sys/class/infiniband/mlx5_0/ports/1/rate:400 Gb/sec (4X NDR)\n\
/sys/class/infiniband/mlx5_0/ports/1/link_layer:InfiniBand\n\
/sys/class/infiniband/mlx5_1/ports/1/state:1: DOWN\n\
/sys/class/infiniband/mlx5_0/device/net:ibp24s0\n";
        let s = parse(text);
        assert_eq!(s.ports.len(), 2);
        assert_eq!(s.ports[0].state.as_deref(), Some("Active"));
        assert_eq!(s.ports[0].physical_state.as_deref(), Some("LinkUp"));
        assert_eq!(s.ports[0].rate_gbps, Some(400.0));
        assert_eq!(s.ports[1].state.as_deref(), Some("Down"));
        assert_eq!(s.netdevs, [("mlx5_0".to_string(), "ibp24s0".to_string())]);
    }

    #[test]
    fn roce_gid_tables() {
        let text = "/sys/class/infiniband/mlx5_2/ports/1/link_layer:Ethernet\n\
/sys/class/infiniband/mlx5_2/ports/1/gid_attrs/types/0:IB/RoCE v1\n\
/sys/class/infiniband/mlx5_2/ports/1/gids/0:fe80:0000:0000:0000:0e42:a1ff:fe65:f1e2\n\
/sys/class/infiniband/mlx5_2/ports/1/gid_attrs/types/1:RoCE v2\n\
/sys/class/infiniband/mlx5_2/ports/1/gids/1:fe80:0000:0000:0000:0e42:a1ff:fe65:f1e2\n\
/sys/class/infiniband/mlx5_2/ports/1/gid_attrs/types/3:RoCE v2\n\
/sys/class/infiniband/mlx5_2/ports/1/gids/3:0000:0000:0000:0000:0000:ffff:0a01:0a02\n";
        let s = parse(text);
        assert_eq!(s.ports.len(), 1);
        assert_eq!(s.ports[0].gids.len(), 3);
        assert_eq!(s.ports[0].roce_v2_ipv4_gid_index(), Some(3));
    }
}
