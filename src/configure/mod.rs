//! `configure`: the NCCL environment that fits a node. Facts from the node report and flags go
//! through rules kept as data (`rules.toml`, plus `--rules FILE`); every emitted setting is
//! validated against the NCCL variable catalogue and keeps the rule id, why and source.

pub mod facts;
pub mod rules;

use crate::finding::{ConfigureCode, Finding, Level, Severity};
use crate::node::NodeReport;
use anyhow::{Result, bail};
use facts::Facts;
use rules::Rule;
use serde::Serialize;

pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone)]
pub struct Options {
    /// `inference` or `training`.
    pub mode: String,
    pub nodes: Option<u32>,
    /// Overrides the detected NCCL version.
    pub nccl_version: Option<String>,
    /// Rules from `--rules FILE`, already parsed.
    pub user_rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    pub name: String,
    pub value: String,
    pub rule: String,
    pub why: String,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleOutcome {
    pub id: String,
    pub applied: bool,
    /// Why it did not apply, or which later rule overrode a setting.
    pub reason: String,
    pub origin: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigureReport {
    pub schema: u32,
    /// `nccltune_version` and `generated_at`.
    #[serde(flatten)]
    pub meta: crate::render::meta::Meta,
    pub hostname: Option<String>,
    pub source: String,
    pub mode: String,
    pub nodes: Option<u32>,
    pub nccl_version: Option<String>,
    pub settings: Vec<Setting>,
    pub rules: Vec<RuleOutcome>,
    /// Things the user should know, in the shared finding model (they go to standard error
    /// with the shell formats): the node's own findings next to the settings they affect, and
    /// what configure could not decide.
    pub notes: Vec<Finding>,
    #[serde(skip)]
    pub facts: Facts,
}

pub fn run(node: &NodeReport, opts: &Options) -> Result<ConfigureReport> {
    if !matches!(opts.mode.as_str(), "inference" | "training") {
        bail!("--mode {}: expected inference or training", opts.mode);
    }
    if let Some(v) = &opts.nccl_version
        && crate::parse::version_key(v).len() < 2
    {
        bail!("--nccl-version {v}: expected a version such as 2.21.5");
    }
    let facts = facts::from_node(node, &opts.mode, opts.nodes, opts.nccl_version.as_deref());
    let version = facts.get("nccl_version").map(facts::Fact::text);
    let vkey = version.as_deref().map(crate::parse::version_key);
    let all = rules::merge(rules::builtin()?, opts.user_rules.clone());
    let mut settings: Vec<Setting> = Vec::new();
    let mut outcomes = Vec::new();
    let mut warnings = Vec::new();
    for rule in &all {
        if !rule.enabled {
            outcomes.push(RuleOutcome {
                id: rule.id.clone(),
                applied: false,
                reason: "disabled (enabled = false)".into(),
                origin: rule.origin.clone(),
            });
            continue;
        }
        let failed: Vec<String> = rule
            .when
            .iter()
            .filter_map(|(k, c)| rules::check(k, c, facts.get(k)))
            .collect();
        if !failed.is_empty() {
            outcomes.push(RuleOutcome {
                id: rule.id.clone(),
                applied: false,
                reason: failed.join("; "),
                origin: rule.origin.clone(),
            });
            continue;
        }
        let mut filled = Vec::new();
        let mut missing = None;
        for (name, template) in &rule.set {
            match rules::fill(template, &facts) {
                Ok(v) => filled.push((name.clone(), v)),
                Err(e) => missing = Some(e),
            }
        }
        if let Some(e) = missing {
            outcomes.push(RuleOutcome {
                id: rule.id.clone(),
                applied: false,
                reason: e,
                origin: rule.origin.clone(),
            });
            continue;
        }
        for (name, value) in filled {
            // A plugin's variable (`NCCL_FASTRAK_*`): the plugin parses it, not NCCL, so there is
            // no NCCL grammar to check it against.
            let plugin_var = crate::nccl::lookup(&name).is_none() && crate::nccl::owner_of(&name).is_some();
            if !plugin_var {
                let Some(var) = crate::nccl::lookup(&name) else {
                    bail!(
                        "rule `{}` ({}): {name} is not a variable NCCL knows",
                        rule.id,
                        rule.origin
                    );
                };
                let mut problems = crate::nccl::validate(var, &value, vkey.as_deref());
                problems.extend(crate::nccl::lifecycle(var, vkey.as_deref()));
                if let Some(p) = problems.iter().find(|p| p.severity == Severity::Error) {
                    bail!(
                        "rule `{}` ({}): refusing {name}={value}: {} ({})",
                        rule.id,
                        rule.origin,
                        p.message,
                        p.fix
                    );
                }
                for p in problems {
                    warnings.push(
                        Finding::at(
                            ConfigureCode::RuleSkipped,
                            Level::Warn,
                            &name,
                            format!("rule `{}`: {}", rule.id, p.message),
                        )
                        .fix(p.fix.clone()),
                    );
                }
            }
            if let Some(prev) = settings.iter().position(|s| s.name == name) {
                let old = settings.remove(prev);
                outcomes.iter_mut().filter(|o| o.id == old.rule).for_each(|o| {
                    o.reason = format!("{name} overridden by rule `{}`", rule.id);
                });
            }
            settings.push(Setting {
                name,
                value,
                rule: rule.id.clone(),
                why: rule.why.clone(),
                source: rule.source.clone(),
            });
        }
        outcomes.push(RuleOutcome {
            id: rule.id.clone(),
            applied: true,
            reason: String::new(),
            origin: rule.origin.clone(),
        });
    }
    let mut notes = node_notes(node);
    notes.extend(warnings);
    if version.is_none() {
        notes.push(
            Finding::new(
                ConfigureCode::VersionUnknown,
                Level::Warn,
                "NCCL version unknown (no libnccl found): version-dependent rules were skipped",
            )
            .subject("nccl_version")
            .fix("pass --nccl-version X.Y.Z (the NCCL your job loads)"),
        );
    }
    if !facts.contains_key("rdma_active_ports") {
        notes.push(
            Finding::new(
                ConfigureCode::PortsUnknown,
                Level::Warn,
                "RDMA ports unknown (ibstat and sysfs both failed): network rules were skipped",
            )
            .subject("NCCL_IB_HCA")
            .probe(crate::probe::names::IBSTAT)
            .probe(crate::probe::names::RDMA_PORTS),
        );
    }
    // RoCE rails whose lossless class is unknown: said beside the setting it would have been.
    if facts.get("rdma_link_layer").map(|f| f.text()).as_deref() == Some("Ethernet")
        && opts.nodes != Some(1)
        && let Err(why) = facts::roce_traffic_class(node).class
    {
        notes.push(
            Finding::new(
                ConfigureCode::TrafficClass,
                Level::Info,
                format!("NCCL_IB_TC not set: the RoCE rails' lossless traffic class is not known ({why}); NCCL uses traffic class 0"),
            )
            .subject("NCCL_IB_TC")
            .probe(crate::probe::names::MLNX_QOS)
            .probe(crate::probe::names::NET_ECN)
            .fix("set NCCL_IB_TC to the DSCP of the fabric's lossless class times 4 (ask the network team), or install mlnx_qos and capture again"),
        );
    }
    notes.extend(platform_notes(node, opts));
    // Several NCCLs: say which one the version-dependent rules read, beside who loads which.
    let mut loaded: Vec<String> = node
        .nccl_loads
        .iter()
        .filter_map(|l| l.version.as_ref().map(|v| format!("{} loads {v}", l.process)))
        .collect();
    loaded.dedup();
    let distinct: std::collections::BTreeSet<&str> = node
        .nccl_loads
        .iter()
        .filter_map(|l| l.version.as_deref())
        .collect();
    if opts.nccl_version.is_none() && distinct.len() > 1 {
        notes.push(
            Finding::new(
                ConfigureCode::NcclVersions,
                Level::Info,
                format!(
                    "NCCL versions differ by process ({}): the version-dependent rules used {} (the highest found)",
                    loaded.join("; "),
                    version.as_deref().unwrap_or("none")
                ),
            )
            .subject("nccl_version")
            .probe(crate::probe::names::NCCL_LIBRARY)
            .fix("pass --nccl-version X.Y.Z of the NCCL your job loads (`nccltune detect` lists who loads which)"),
        );
    }
    if settings.is_empty() {
        notes.push(Finding::new(
            ConfigureCode::NothingToSet,
            Level::Info,
            "nothing to set: NCCL's defaults fit this node for this mode",
        ));
    }
    Ok(ConfigureReport {
        schema: SCHEMA,
        meta: crate::render::meta::Meta::now(),
        hostname: node.hostname.clone(),
        source: node.source.clone(),
        mode: opts.mode.clone(),
        nodes: opts.nodes,
        nccl_version: version,
        settings,
        rules: outcomes,
        notes,
        facts,
    })
}

/// What the detected platform's provider documents, beside what configure wrote for it, and the
/// plugins that change what NCCL does.
fn platform_notes(node: &NodeReport, opts: &Options) -> Vec<Finding> {
    let mut v = Vec::new();
    let note = |level: Level, subject: &str, msg: String| {
        Finding::new(ConfigureCode::Platform, level, msg).subject(subject)
    };
    let multi = opts.nodes != Some(1);
    if let Some(p) = &node.platform {
        v.push(note(
            Level::Info,
            "platform",
            format!(
                "platform {}{}, told from {} ({})",
                p.name,
                p.machine
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default(),
                p.used.join("; "),
                p.source
            ),
        ));
        let plugin = |owner: &str| {
            node.nccl_plugins
                .iter()
                .find(|x| x.kind == "net" && x.owner == owner)
        };
        match p.id.as_str() {
            "aws-efa" if multi => match plugin("aws-ofi-nccl") {
                Some(x) => v.push(note(Level::Info, "NCCL_IB_HCA", format!(
                    "AWS EFA: NCCL reaches EFA through the aws-ofi-nccl net plugin ({}), not its own InfiniBand transport, so no NCCL_IB_* or socket settings are written. With aws-ofi-nccl 1.7.0+ and libfabric 1.18.0+ nothing needs setting; aws-ofi-nccl 1.6.x needs FI_EFA_USE_DEVICE_RDMA=1 on p4/p5, and 1.5.0 and older also FI_PROVIDER=efa and NCCL_PROTO=simple; the plugin's own settings are OFI_NCCL_* (aws-ofi-nccl doc/efa-env-var.md, EFA Cheatsheet)",
                    x.path
                ))),
                None => v.push(note(Level::Warn, "NCCL_NET_PLUGIN", "AWS EFA devices but no aws-ofi-nccl plugin (libnccl-net*.so) found: NCCL cannot use EFA and falls back to TCP sockets over ENA".into())
                    .fix("install aws-ofi-nccl (the EFA installer or the AWS Deep Learning AMI ship it) and put its lib folder on LD_LIBRARY_PATH")),
            },
            "gcp-a3-mega" if multi => match plugin("gpudirect-tcpxo") {
                Some(x) => {
                    let dir = x.path.rsplit_once('/').map_or("", |(d, _)| d);
                    v.push(note(Level::Info, "NCCL_FASTRAK_IFNAME", format!(
                        "GPUDirect-TCPXO: source {dir}/nccl-env-profile.sh before these settings (`NCCL_LIB_DIR={dir} source {dir}/nccl-env-profile.sh`): Google's profile sets the plugin's tuning (NCCL_ALGO, NCCL_PROTO, its tuner, chunk and buffer sizes), which nccltune does not restate; the control NIC was taken as the first gVNIC interface in name order: check it is the one with the default route (`ip route`)"
                    )));
                }
                None => v.push(note(Level::Warn, "NCCL_NET_PLUGIN", "Google Cloud A3 Mega without the GPUDirect-TCPXO plugin (libnccl-net.so under /var/lib/tcpxo/lib64 or /usr/local/nvidia/lib64): NCCL falls back to plain TCP sockets".into())
                    .fix("install the TCPXO plugin as Google Cloud docs, Maximize GPU network bandwidth with GPUDirect-TCPXO, describe")),
            },
            "gcp-a3-high" if multi => {
                let gve = crate::hw::platform::gve_interfaces(node);
                let names = match gve.split_first() {
                    Some((ctrl, gpu)) => format!(" (here the control NIC would be {ctrl} and the GPU NICs {}: the first gVNIC interface in name order taken as the primary)", gpu.join(",")),
                    None => String::new(),
                };
                v.push(note(Level::Info, "NCCL_GPUDIRECTTCPX_SOCKET_IFNAME", format!(
                    "GPUDirect-TCPX (A3 High): nccltune does not write the TCPX plugin's variables (NCCL_GPUDIRECTTCPX_CTRL_DEV, _SOCKET_IFNAME, and the TX/RX CPU bindings, which depend on the image){names}; set them as Google Cloud docs, Maximize GPU network bandwidth with GPUDirect-TCPX, and GoogleCloudPlatform/cluster-toolkit's a3-highgpu-8g examples give them"
                )));
            }
            "azure-nd-h100-v5" | "azure-nd-a100-v4" if multi => v.push(note(Level::Info, "NCCL_TOPO_FILE",
                "Azure: NCCL_TOPO_FILE names the file Azure's HPC images install; on another image take it from Azure/azhpc-images (topology/ndv5-topo.xml or ndv4-topo.xml) and point NCCL_TOPO_FILE at it".into())),
            _ => {}
        }
    }
    for x in node.nccl_plugins.iter().filter(|x| x.kind == "net") {
        if x.owner == "sharp" && multi {
            v.push(note(Level::Info, "NCCL_COLLNET_ENABLE", format!(
                "the SHARP plugin (nccl-rdma-sharp-plugins) is installed ({}): CollNet in-network reductions need NCCL_COLLNET_ENABLE=1 and a SHARP aggregation manager on the InfiniBand fabric, which the host cannot see; nccltune leaves CollNet off (NCCL's default) — measure it with `nccltune bench plan --collnet` (NCCL docs, Environment Variables, NCCL_COLLNET_ENABLE)",
                x.path
            )));
        }
        if !x.on_loader_path {
            v.push(note(Level::Info, "NCCL_NET_PLUGIN", format!(
                "{} ({}) is not on the loader's search path (LD_LIBRARY_PATH, the loader's cache, /lib, /usr/lib): NCCL opens net plugins by name (libnccl-net.so) through that search (ld.so(8)), so it will not load this one unless its folder is added to LD_LIBRARY_PATH",
                x.path, x.owner
            )));
        }
    }
    v
}

/// The node's own findings (the ones `detect` shows and `verify` judges) that bear on what
/// configure writes, each naming the settings it affects. Information-only findings stay out.
fn node_notes(node: &NodeReport) -> Vec<Finding> {
    use crate::finding::{Code, GpuCode, NodeCode, RdmaCode};
    use crate::probe::names;
    let affects = |f: &Finding| -> Option<&'static str> {
        let by_probe = |p: &str| match p {
            names::IBSTAT | names::RDMA_PORTS => {
                Some("the RDMA settings (NCCL_IB_HCA, NCCL_IB_GID_INDEX, NCCL_IB_DISABLE)")
            }
            names::QUERY_GPU | names::TOPO | names::NVLINK | names::SMI_Q => {
                Some("the GPU facts the rules read (gpu_count, hopper_or_newer, nvswitch) and the rail list")
            }
            names::NCCL_LIBRARY => Some("the NCCL version the version-dependent rules read"),
            names::NET_INTERFACES => Some("NCCL_SOCKET_IFNAME"),
            _ => None,
        };
        match f.code {
            Code::Node(NodeCode::Probes) => by_probe(&f.subject),
            Code::Rdma(RdmaCode::PortState) => Some(
                "NCCL_IB_HCA: the list holds only active ports; a rail down leaves its GPUs on a farther NIC",
            ),
            Code::Gpu(GpuCode::NvlinkLinks) => {
                Some("nothing configure sets, but NCCL's intra-node bandwidth")
            }
            Code::Rdma(RdmaCode::LinkLayer) => Some("NCCL_IB_HCA: the port is counted as an InfiniBand rail"),
            _ => None,
        }
    };
    // Judged afresh from the facts (a report built by hand or read from JSON may carry none).
    crate::node::findings::node(node)
        .iter()
        .filter(|f| f.level >= Level::Warn || f.code == RdmaCode::LinkLayer)
        .filter_map(|f| {
            let what = affects(f)?;
            let mut n = f.clone();
            n.message = format!("{} (affects {what})", f.message);
            Some(n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inference_ctas(arch: &str) -> Option<String> {
        let mut node = NodeReport::default();
        for index in 0..8 {
            node.gpus.push(crate::node::Gpu {
                index,
                name: Some("NVIDIA test GPU".into()),
                architecture: Some(arch.into()),
                ..Default::default()
            });
        }
        let opts = Options {
            mode: "inference".into(),
            nodes: Some(2),
            nccl_version: Some("2.30.7".into()),
            user_rules: Vec::new(),
        };
        let r = run(&node, &opts).expect("configure");
        r.settings
            .into_iter()
            .find(|s| s.name == "NCCL_MAX_CTAS")
            .map(|s| s.value)
    }

    /// A node whose only Active port is `mlx4_0:2` from an old ibstat (no `Link layer` line).
    #[test]
    fn an_active_port_without_link_layer_never_turns_rdma_off() {
        let mut node = NodeReport::default();
        node.nics.push(crate::node::Nic {
            device: "mlx4_0".into(),
            port: 2,
            state: Some("Active".into()),
            rate_gbps: Some(56.0),
            ..Default::default()
        });
        let opts = Options {
            mode: "training".into(),
            nodes: None,
            nccl_version: Some("2.21.5".into()),
            user_rules: Vec::new(),
        };
        let r = run(&node, &opts).expect("configure");
        assert!(
            !r.settings.iter().any(|s| s.name == "NCCL_IB_DISABLE"),
            "{:?}",
            r.settings
        );
        assert!(
            r.notes
                .iter()
                .any(|n| n.subject == "mlx4_0:2" && n.message.contains("InfiniBand")),
            "{:?}",
            r.notes
        );
    }

    /// NVLS channels: 16 on sm90, 24/32 on sm100, clamped to maxCTAs (NCCL 2.30.7
    /// src/transport/nvls.cc:155-157, 235): the inference cap must not cut them.
    #[test]
    fn the_inference_cta_cap_follows_the_nvls_channels_of_the_architecture() {
        assert_eq!(inference_ctas("Hopper").as_deref(), Some("16"));
        assert_eq!(inference_ctas("Blackwell").as_deref(), Some("32"));
    }
}
