//! `configure`: the NCCL environment that fits a node. Facts from the node report and flags go
//! through rules kept as data (`rules.toml`, plus `--rules FILE`); every emitted setting is
//! validated against the NCCL variable catalogue and keeps the rule id, why and source.

pub mod facts;
pub mod rules;

use crate::finding::Severity;
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
    pub hostname: Option<String>,
    pub source: String,
    pub mode: String,
    pub nodes: Option<u32>,
    pub nccl_version: Option<String>,
    pub settings: Vec<Setting>,
    pub rules: Vec<RuleOutcome>,
    /// Things the user should know (go to standard error with the shell formats).
    pub notes: Vec<String>,
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
                warnings.push(format!("rule `{}`: {}", rule.id, p.message));
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
    let mut notes = warnings;
    // A port list built from partial facts must say so beside the list it shaped.
    if settings.iter().any(|s| s.name == "NCCL_IB_HCA") {
        let down: Vec<String> = node
            .nics
            .iter()
            .filter(|n| !n.is_active())
            .map(|n| format!("{} ({})", n.id(), n.state.as_deref().unwrap_or("state unknown")))
            .collect();
        if !down.is_empty() {
            notes.push(format!(
                "NCCL_IB_HCA leaves out the RDMA port(s) that are not Active: {}; if a rail is down, fix it or expect fewer rails",
                down.join(", ")
            ));
        }
        if node.findings.iter().any(|f| f.code == "ibstat-panic") {
            notes.push("ibstat stopped part way: NCCL_IB_HCA lists only the ports it printed before it failed; check the rest with `ibstat` or /sys/class/infiniband".into());
        }
    }
    let unknown_layer: Vec<String> = node
        .active_nics()
        .filter(|n| n.link_layer.is_none())
        .map(|n| n.id())
        .collect();
    if !unknown_layer.is_empty() {
        notes.push(format!(
            "Active RDMA port(s) {} show no link layer (an ibstat older than RoCE support prints none): treated as InfiniBand; check /sys/class/infiniband/<dev>/ports/<port>/link_layer",
            unknown_layer.join(", ")
        ));
    }
    if version.is_none() {
        notes.push("NCCL version unknown (no libnccl found): version-dependent rules were skipped; pass --nccl-version X.Y.Z".into());
    }
    if !facts.contains_key("rdma_active_ports") {
        notes.push("RDMA ports unknown (ibstat and sysfs both failed): network rules were skipped".into());
    }
    if settings.is_empty() {
        notes.push("nothing to set: NCCL's defaults fit this node for this mode".into());
    }
    Ok(ConfigureReport {
        schema: SCHEMA,
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
                .any(|n| n.contains("mlx4_0:2") && n.contains("InfiniBand")),
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
