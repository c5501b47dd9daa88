//! Which cloud platform a node is, from DMI and its devices (`platforms.toml`), and which NCCL
//! plugins it has. Pure: everything is read from the node report.

use crate::node::{NcclPlugin, NodeReport, Platform};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    id: String,
    name: String,
    sys_vendor: String,
    gpu: Option<String>,
    gpus: Option<usize>,
    ib_ports: Option<usize>,
    ib_gbps: Option<f64>,
    efa_min: Option<usize>,
    gve: Option<usize>,
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    platform: Vec<Spec>,
}

fn specs() -> &'static [Spec] {
    static SPECS: std::sync::OnceLock<Vec<Spec>> = std::sync::OnceLock::new();
    SPECS.get_or_init(|| {
        toml::from_str::<File>(include_str!("platforms.toml"))
            .map(|f| f.platform)
            .unwrap_or_default()
    })
}

/// The node's EFA devices: RDMA devices bound to the `efa` driver, or, where the driver was not
/// captured, named as the EFA driver names them (`rdmap<bus>s<slot>`, `efa_<n>`).
pub fn efa_devices(node: &NodeReport) -> Vec<String> {
    let mut v: Vec<String> = node
        .nics
        .iter()
        .filter(|n| match &n.driver {
            Some(d) => d == "efa",
            None => n.device.starts_with("rdmap") || n.device.starts_with("efa_"),
        })
        .map(|n| n.device.clone())
        .collect();
    v.dedup();
    v
}

/// Interfaces bound to Google's virtual NIC driver (`gve`), in name order.
pub fn gve_interfaces(node: &NodeReport) -> Vec<String> {
    let mut v: Vec<String> = node
        .interfaces
        .iter()
        .filter(|i| i.driver.as_deref() == Some("gve"))
        .map(|i| i.name.clone())
        .collect();
    v.sort_by_key(|n| natural(n));
    v
}

fn natural(s: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut num: Option<u64> = None;
    for c in s.chars() {
        match c.to_digit(10) {
            Some(d) => num = Some(num.unwrap_or(0).saturating_mul(10).saturating_add(u64::from(d))),
            None => {
                if let Some(n) = num.take() {
                    out.push((std::mem::take(&mut text), n));
                }
                text.push(c);
            }
        }
    }
    out.push((text, num.unwrap_or(0)));
    out
}

/// Who ships a plugin, from its path: `aws-ofi-nccl`, `gpudirect-tcpxo`, `gpudirect-tcpx`,
/// `sharp` (nccl-rdma-sharp-plugins, HPC-X), `gib` (Google's RoCE plugin) or `unknown`.
pub fn plugin_owner(path: &str) -> &'static str {
    let p = path.to_ascii_lowercase();
    if p.contains("ofi") || p.contains("/amazon/") {
        "aws-ofi-nccl"
    } else if p.contains("tcpxo") || p.contains("fastrak") {
        "gpudirect-tcpxo"
    } else if p.contains("tcpx") {
        "gpudirect-tcpx"
    } else if p.contains("sharp") {
        "sharp"
    } else if p.contains("gib") {
        "gib"
    } else {
        "unknown"
    }
}

/// The plugins of the `nccl-plugins` probe, each with whether the loader finds it by name
/// (NCCL `dlopen`s `libnccl-net.so` or `libnccl-net-<NCCL_NET_PLUGIN>.so`, so the loader's
/// search order applies, `ld.so(8)`): a folder from `LD_LIBRARY_PATH`, the loader's cache, or
/// a default folder.
pub fn plugins(listing: &str, ldcache: Option<&str>) -> Vec<NcclPlugin> {
    crate::parse::nccl_library::parse_all(listing)
        .into_iter()
        .filter_map(|l| {
            let file = l.path.rsplit('/').next().unwrap_or("").to_string();
            let kind = if file.starts_with("libnccl-net") {
                "net"
            } else if file.starts_with("libnccl-tuner") {
                "tuner"
            } else if file.starts_with("libnccl-") {
                "other"
            } else {
                return None;
            };
            let dir = l.path.rsplit_once('/').map_or("", |(d, _)| d);
            let cached = ldcache
                .is_some_and(|c| crate::parse::nccl_library::parse_ldconfig(c, &file).contains(&l.path));
            let on_path = l.origin.as_deref() == Some("LD_LIBRARY_PATH")
                || cached
                || ["/lib", "/usr/lib", "/lib64", "/usr/lib64"].contains(&dir);
            Some(NcclPlugin {
                owner: plugin_owner(&l.path).into(),
                path: l.path,
                kind: kind.into(),
                on_loader_path: on_path,
            })
        })
        .collect()
}

/// The platform whose every condition holds, with the facts used to tell it.
pub fn detect(node: &NodeReport) -> Option<Platform> {
    let vendor = node.dmi.sys_vendor.as_deref()?.trim().to_string();
    let efa = efa_devices(node);
    let gve = gve_interfaces(node);
    'spec: for s in specs() {
        if vendor != s.sys_vendor {
            continue;
        }
        let mut used = vec![format!("DMI sys_vendor {vendor:?}")];
        if let Some(word) = &s.gpu {
            let names: Vec<&str> = node.gpus.iter().filter_map(|g| g.name.as_deref()).collect();
            let all = !names.is_empty()
                && names.len() == node.gpus.len()
                && names
                    .iter()
                    .all(|n| n.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == word));
            if !all {
                continue;
            }
            if s.gpus.is_some_and(|n| n != node.gpus.len()) {
                continue;
            }
            used.push(format!("{} x {}", node.gpus.len(), names[0]));
        }
        if let Some(n) = s.ib_ports {
            let ib: Vec<_> = node
                .active_nics()
                .filter(|p| p.is_infiniband())
                .filter(|p| {
                    s.ib_gbps
                        .is_none_or(|g| p.rate_gbps.is_some_and(|r| (r - g).abs() < 1.0))
                })
                .collect();
            if ib.len() != n {
                continue 'spec;
            }
            used.push(format!(
                "{n} active InfiniBand ports{}",
                s.ib_gbps.map(|g| format!(" at {g} Gb/s")).unwrap_or_default()
            ));
        }
        if let Some(min) = s.efa_min {
            if efa.len() < min {
                continue;
            }
            let shown = match efa.as_slice() {
                [a, .., b] if efa.len() > 3 => format!("{a} ... {b}"),
                all => all.join(", "),
            };
            used.push(format!("{} EFA device(s) ({shown})", efa.len()));
        }
        if let Some(n) = s.gve {
            if gve.len() != n {
                continue;
            }
            used.push(format!("{n} gVNIC (gve) interfaces"));
        }
        // AWS names the instance type in the DMI product name (`p5.48xlarge`); others give one
        // name for every size, which then says nothing.
        let machine = node
            .dmi
            .product_name
            .as_deref()
            .map(str::trim)
            .filter(|p| p.contains('.') && !p.contains(' ') && vendor == "Amazon EC2")
            .map(str::to_string);
        if let Some(m) = &machine {
            used.push(format!("DMI product_name {m:?}"));
        }
        let net_plugin = node
            .nccl_plugins
            .iter()
            .find(|p| p.kind == "net" && !["unknown", "sharp"].contains(&p.owner.as_str()))
            .map(|p| p.owner.clone());
        return Some(Platform {
            id: s.id.clone(),
            name: s.name.clone(),
            machine,
            used,
            net_plugin,
            source: s.source.clone(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_table_parses_and_plugins_are_told_apart() {
        assert!(specs().len() >= 5);
        assert_eq!(
            plugin_owner("/opt/amazon/ofi-nccl/lib/libnccl-net.so"),
            "aws-ofi-nccl"
        );
        assert_eq!(
            plugin_owner("/var/lib/tcpxo/lib64/libnccl-net.so"),
            "gpudirect-tcpxo"
        );
        assert_eq!(
            plugin_owner("/usr/local/tcpx/lib64/libnccl-net.so"),
            "gpudirect-tcpx"
        );
        assert_eq!(
            plugin_owner("/opt/hpcx/nccl_rdma_sharp_plugin/lib/libnccl-net.so"),
            "sharp"
        );
        let p = plugins(
            "/opt/amazon/ofi-nccl/lib/libnccl-net.so\t\t\tsystem\n/opt/amazon/ofi-nccl/lib/libnccl-tuner-ofi.so\t\t\tsystem\n/x/libnccl.so.2\n",
            Some("\tlibnccl-net.so (libc6,x86-64) => /opt/amazon/ofi-nccl/lib/libnccl-net.so\n"),
        );
        assert_eq!(p.len(), 2);
        assert!(p[0].on_loader_path, "in the loader's cache");
        assert_eq!(p[1].kind, "tuner");
        assert!(!p[1].on_loader_path);
        assert!(natural("enp14s0") > natural("enp6s0"));
    }
}
