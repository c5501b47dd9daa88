//! The node report (`detect`) as readable tables that fit the terminal (`render::table`).
//! JSON goes through `render::json`.

use super::opt;
use super::table::table;
use crate::node::NodeReport;

pub fn to_table(r: &NodeReport) -> String {
    let mut s = String::new();
    let v = &r.versions;
    s.push_str(&table(
        &["node", ""],
        vec![
            vec!["host".into(), opt(&r.hostname)],
            vec!["source".into(), r.source.clone()],
            vec!["driver".into(), opt(&v.driver)],
            vec![
                "OFED".into(),
                match (&v.ofed_flavor, &v.ofed) {
                    (Some(f), Some(o)) => format!("{f} {o}"),
                    _ => "-".into(),
                },
            ],
            vec!["NCCL".into(), opt(&v.nccl)],
            vec!["kernel".into(), opt(&v.kernel)],
            vec![
                "platform".into(),
                match &r.platform {
                    Some(p) => format!(
                        "{}{} (from {})",
                        p.name,
                        p.machine.as_deref().map(|m| format!(", {m}")).unwrap_or_default(),
                        p.used.join("; ")
                    ),
                    None => r
                        .dmi
                        .sys_vendor
                        .as_deref()
                        .map_or("-".into(), |v| format!("not one nccltune knows ({v})")),
                },
            ],
            vec![
                "NCCL plugins".into(),
                if r.nccl_plugins.is_empty() {
                    "-".into()
                } else {
                    r.nccl_plugins
                        .iter()
                        .map(|p| {
                            format!(
                                "{} ({} {}{})",
                                p.path,
                                p.owner,
                                p.kind,
                                if p.on_loader_path {
                                    ""
                                } else {
                                    ", not on the loader's path"
                                }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ],
            vec!["GPU links".into(), gpu_link_summary(r)],
            vec![
                "NVSwitch".into(),
                format!(
                    "{} ({})",
                    r.nvswitch
                        .present
                        .map_or("unknown", |p| if p { "yes" } else { "no" }),
                    r.nvswitch.evidence
                ),
            ],
            vec![
                "GPUDirect RDMA".into(),
                format!("{} ({})", r.gpudirect.path, r.gpudirect.evidence),
            ],
            vec![
                "IOMMU params".into(),
                if r.iommu_params.is_empty() {
                    "-".into()
                } else {
                    r.iommu_params.join(" ")
                },
            ],
        ],
    ));
    s.push_str(&table(
        &[
            "GPU",
            "name",
            "PCI bus",
            "memory MiB",
            "MIG",
            "PCIe",
            "NUMA",
            "NVLink",
            "closest NIC",
        ],
        r.gpus
            .iter()
            .map(|g| {
                let nv = r.nvlink.iter().find(|l| l.gpu == g.index);
                let nics: Vec<String> = r
                    .gpu_nic_affinity
                    .iter()
                    .filter(|a| a.gpu == g.index)
                    .map(|a| format!("{} ({})", a.nic, a.path))
                    .collect();
                vec![
                    g.index.to_string(),
                    opt(&g.name),
                    g.pci_bus_id.as_deref().map_or("-".into(), short_bus_id),
                    opt(&g.memory_total_mib),
                    opt(&g.mig_mode),
                    match (g.pcie_gen, g.pcie_width) {
                        (Some(gen_), Some(w)) => format!("Gen{gen_} x{w}"),
                        _ => "-".into(),
                    },
                    opt(&g.numa_affinity),
                    nv.map_or("-".into(), |l| match l.link_gbps {
                        Some(s) => {
                            format!("{} x {s} GB/s", l.active_links)
                                + &if l.inactive_links > 0 {
                                    format!(", {} inactive", l.inactive_links)
                                } else {
                                    String::new()
                                }
                        }
                        None => l.message.clone().unwrap_or_else(|| "none".into()),
                    }),
                    if nics.is_empty() {
                        "-".into()
                    } else {
                        nics.join(", ")
                    },
                ]
            })
            .collect(),
    ));
    s.push_str(&table(
        &[
            "RDMA port",
            "state",
            "physical",
            "rate Gb/s",
            "link layer",
            "adapter",
            "firmware",
            "netdev",
            "from",
        ],
        r.nics
            .iter()
            .map(|n| {
                vec![
                    n.id(),
                    opt(&n.state),
                    opt(&n.physical_state),
                    opt(&n.rate_gbps),
                    opt(&n.link_layer),
                    opt(&n.ca_type),
                    opt(&n.firmware),
                    if n.netdevs.is_empty() {
                        "-".into()
                    } else {
                        n.netdevs.join(",")
                    },
                    n.source.clone(),
                ]
            })
            .collect(),
    ));
    if !r.nccl_libraries.is_empty() {
        s.push_str(&table(
            &["NCCL library", "version", "known from", "folder from"],
            r.nccl_libraries
                .iter()
                .map(|l| vec![l.path.clone(), opt(&l.version), l.how.clone(), l.origin.clone()])
                .collect(),
        ));
        s.push_str(&table(
            &[
                "process",
                "loads",
                "version",
                "rule (dynamic loader search order, ld.so(8))",
            ],
            r.nccl_loads
                .iter()
                .map(|l| {
                    vec![
                        l.process.clone(),
                        l.path.clone().unwrap_or_else(|| "none".into()),
                        opt(&l.version),
                        l.rule.clone(),
                    ]
                })
                .collect(),
        ));
    }
    s.push_str(&table(
        &["probe", "status", "ms"],
        r.probes
            .iter()
            .map(|p| vec![p.name.clone(), p.status.to_string(), p.duration_ms.to_string()])
            .collect(),
    ));
    s.push_str(&findings(&r.findings));
    s
}

/// The findings, as `render::findings` lists them, in a fitted table.
fn findings(findings: &[crate::finding::Finding]) -> String {
    table(&super::FINDING_COLUMNS, super::finding_rows(findings))
}

/// A PCI address without a zero domain, as `lspci` writes it (`00000000:18:00.0` → `18:00.0`);
/// a non-zero domain is kept, since there it tells devices apart.
fn short_bus_id(id: &str) -> String {
    match id.split_once(':') {
        Some((domain, rest))
            if !domain.is_empty() && domain.bytes().all(|b| b == b'0') && rest.contains(':') =>
        {
            rest.to_string()
        }
        _ => id.to_string(),
    }
}

/// "28 pairs NV18" or "1 pair PHB, ...": how the GPUs are joined, by kind.
fn gpu_link_summary(r: &NodeReport) -> String {
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for l in &r.gpu_links {
        match kinds.iter_mut().find(|(k, _)| *k == l.path.label()) {
            Some((_, n)) => *n += 1,
            None => kinds.push((l.path.label(), 1)),
        }
    }
    if kinds.is_empty() {
        return "-".into();
    }
    kinds
        .iter()
        .map(|(k, n)| format!("{n} pair{} {k}", if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn bus_ids_lose_only_a_zero_domain() {
        assert_eq!(super::short_bus_id("00000000:18:00.0"), "18:00.0");
        assert_eq!(super::short_bus_id("0001:18:00.0"), "0001:18:00.0");
        assert_eq!(super::short_bus_id("18:00.0"), "18:00.0");
    }
}
