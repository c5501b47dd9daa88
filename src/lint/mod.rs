//! `lint`: checks NCCL settings in env files, job scripts, NCCL config files or the process
//! environment, the way NCCL will read them: unknown or misspelled names, removed and renamed
//! variables, values NCCL misreads, contradictions, debugging-only variables, duplicates, and,
//! with node facts, `NCCL_IB_HCA` entries that match no active port.

pub mod envfile;
mod fabric;
pub mod yaml;

use crate::finding::LintCode;
use crate::finding::Severity;
use crate::nccl;
use crate::node::NodeReport;
use envfile::{Assignment, Syntax};
use serde::Serialize;
use std::collections::HashMap;

pub const SCHEMA: u32 = 1;

/// A lint finding is a finding of the shared model: the variable is its subject, the file and
/// line its evidence (`Finding::location`).
pub type LintFinding = crate::finding::Finding;

#[derive(Debug, Clone, Serialize)]
pub struct Effective {
    pub name: String,
    pub value: Option<String>,
    /// Where the winning value comes from.
    pub from: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReadAs {
    pub source: String,
    pub format: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub error: usize,
    pub warn: usize,
    pub info: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct LintReport {
    pub schema: u32,
    pub sources: Vec<String>,
    pub findings: Vec<LintFinding>,
    /// With no files given: what NCCL will see, after its precedence rules.
    pub effective: Vec<Effective>,
    /// How each file was read (`shell`, `nccl.conf`, ...), when files were given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read_as: Vec<ReadAs>,
    /// Findings counted in the summary but not listed, beyond `MAX_LISTED`.
    #[serde(skip_serializing_if = "is_zero")]
    pub not_listed: usize,
    #[serde(skip)]
    dropped: Summary,
    pub summary: Summary,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Most findings a report lists; the rest are counted. Keeps memory bounded on huge inputs
/// whose every line is a finding.
pub const MAX_LISTED: usize = 10_000;

/// Moves the findings beyond `MAX_LISTED` into the counts.
fn spill(findings: &mut Vec<LintFinding>, dropped: &mut Summary) {
    if findings.len() <= MAX_LISTED {
        return;
    }
    for x in findings.drain(MAX_LISTED..) {
        match x.level {
            Severity::Error => dropped.error += 1,
            Severity::Warn => dropped.warn += 1,
            Severity::Info => dropped.info += 1,
            Severity::Pass | Severity::Skip => {}
        }
    }
}

impl LintReport {
    /// Adds findings made outside `lint` (unreadable config files) and recounts.
    pub fn add(&mut self, more: Vec<LintFinding>) {
        self.findings.extend(more);
        self.recount();
    }

    fn recount(&mut self) {
        let mut summary = self.dropped.clone();
        for x in &self.findings {
            match x.level {
                Severity::Error => summary.error += 1,
                Severity::Warn => summary.warn += 1,
                Severity::Info => summary.info += 1,
                Severity::Pass | Severity::Skip => {}
            }
        }
        self.summary = summary;
    }

    pub fn failed(&self, strict: bool) -> bool {
        self.summary.error > 0 || (strict && self.summary.warn > 0)
    }
}

fn f(
    code: LintCode,
    sev: Severity,
    a: &Assignment,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> LintFinding {
    crate::finding::Finding::at(code, sev, &a.name, message)
        .fix(fix)
        .file(a.source.clone(), (a.line > 0).then_some(a.line))
}

/// Settings that switch a transport or a data path off: a cost in performance, so a warning
/// even where NCCL's docs file the variable under Debugging.
fn disables_transport(name: &str, value: &str) -> Option<&'static str> {
    let n = nccl::strtoll(value);
    let one = n.trailing.is_empty() && n.value == 1;
    let zero = n.trailing.is_empty() && n.value == 0;
    match name {
        "NCCL_P2P_DISABLE" if one => Some("CUDA P2P between GPUs (NVLink and PCIe)"),
        "NCCL_SHM_DISABLE" if one => Some("the shared-memory transport"),
        "NCCL_P2P_LEVEL" if value == "LOC" => Some("CUDA P2P between GPUs"),
        "NCCL_NET_GDR_LEVEL" if value == "LOC" => Some("GPUDirect RDMA"),
        "NCCL_NVLS_ENABLE" if zero => Some("NVLink SHARP"),
        "NCCL_PXN_DISABLE" if one => Some("PXN (sending through a peer GPU's NIC over NVLink)"),
        "NCCL_NVB_DISABLE" if one => Some("NVLink relaying through a peer GPU"),
        "NCCL_DMABUF_ENABLE" if zero => {
            Some("dma-buf registration, GPUDirect RDMA's path without nvidia-peermem")
        }
        _ => None,
    }
}

/// Defaults that restate NCCL's own (NCCL docs, Environment Variables; 2.30.7 src/init.cc, src/graph/search.cc:16).
const REDUNDANT: [(&str, &str, &str); 4] = [
    ("NCCL_BUFFSIZE", "4194304", "the default Simple buffer is 4 MiB"),
    ("NCCL_NTHREADS", "512", "512 is the default on most systems"),
    ("NCCL_CROSS_NIC", "2", "2 is the default"),
    ("NCCL_NVLS_ENABLE", "2", "2 is the default since 2.18"),
];

fn check_one(
    a: &Assignment,
    version: Option<&[u64]>,
    node: Option<&NodeReport>,
    hints: &mut HashMap<String, Option<&'static str>>,
    out: &mut Vec<LintFinding>,
) {
    let name = a.name.as_str();
    if a.syntax == Syntax::NcclConf && name != name.trim() {
        out.push(f(
            LintCode::ConfWhitespace,
            Severity::Error,
            a,
            format!("{name:?}: NCCL does not trim names in config files, so this sets a different variable"),
            "remove the spaces around the name",
        ));
        return;
    }
    if a.syntax == Syntax::NcclConf && name.starts_with('#') {
        let old = match version {
            Some(v) => v < [2, 26].as_slice(),
            None => true,
        };
        if old {
            out.push(f(
                LintCode::ConfCommentRead,
                if version.is_some() { Severity::Warn } else { Severity::Info },
                a,
                format!("{}: NCCL before 2.26 does not skip `#` lines; this one contains `=`, so it sets a variable named {name:?}", if version.is_some() { "this NCCL is older than 2.26" } else { "with the NCCL version unknown" }),
                "remove the comment, or keep comments free of `=` (NCCL 2.26 src/misc/param.cc skips `#` lines)",
            ));
        }
        return;
    }
    if !name.starts_with("NCCL_") {
        return;
    }
    if let Some((owner, source)) = nccl::owner_of(name) {
        // Read by a plugin or framework: not ours to judge, and never a typo of NCCL's names.
        let var = nccl::lookup(name);
        let instead = var.and_then(|v| v.replaced_by.as_deref());
        out.push(f(
            LintCode::PluginVariable,
            Severity::Info,
            a,
            match instead {
                Some(r) => format!("{name} is read by {owner}, not by NCCL; {owner} now reads it as {r} and warns about the old name ({source})"),
                None => format!("{name} is read by {owner}, not by NCCL; it does nothing unless that is loaded ({source})"),
            },
            instead.map_or("keep it only where that plugin or framework is used".to_string(), |r| format!("rename it to {r}")),
        ));
        return;
    }
    let Some(var) = nccl::lookup(name) else {
        // The did-you-mean search is the costly part of an unknown name: once per name.
        let hint = *hints
            .entry(name.to_string())
            .or_insert_with(|| nccl::suggest(name, version));
        out.push(f(
            LintCode::UnknownVariable,
            Severity::Warn,
            a,
            format!(
                "{name} is not a variable NCCL reads (as of 2.30.7) nor one of a known plugin: NCCL ignores it without a word{}",
                hint.map_or(String::new(), |h| format!("; did you mean {h}?"))
            ),
            hint.map_or(
                "remove it, or check the name in NCCL's environment-variable docs (https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)".into(),
                |h| format!("rename it to {h}"),
            ),
        ));
        return;
    };
    if a.value.is_none() {
        // `mpirun -x NAME` passes on a value set elsewhere, where it is checked.
        return;
    }
    for p in nccl::lifecycle(var, version) {
        out.push(f(p.code, p.severity, a, p.message, p.fix));
    }
    if !a.exported {
        out.push(f(
            LintCode::NotExported,
            Severity::Warn,
            a,
            format!("{name} is set without `export`: it stays a shell variable, so the tasks this script launches (srun, mpirun, python) never see it"),
            format!("write `export {name}=...`"),
        ));
    }
    if let Some(note) = &a.note {
        out.push(f(
            LintCode::AssumedDefault,
            Severity::Info,
            a,
            format!("{name}: {note}"),
            "check the value where the job really runs",
        ));
    }
    if a.dynamic {
        // Computed when the script runs: nothing to check here.
        return;
    }
    let Some(value) = a.value.as_deref() else { return };
    if a.syntax == Syntax::NcclConf
        && value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')))
    {
        out.push(f(
            LintCode::ConfQuoted,
            Severity::Error,
            a,
            format!("{name}={value}: NCCL config files have no quoting, so the quotes are part of the value"),
            "remove the quotes",
        ));
    }
    let problems = nccl::validate(var, value, version);
    let misread = problems.iter().any(|p| p.severity == Severity::Error);
    for p in problems {
        out.push(f(p.code, p.severity, a, p.message, p.fix));
    }
    match var.kind {
        nccl::Kind::IfaceList => iface_checks(a, value, node, out),
        nccl::Kind::HcaList => hca_duplicates(a, value, out),
        _ => {}
    }
    if let Some(what) = disables_transport(name, value) {
        out.push(f(
            LintCode::DisablesTransport,
            Severity::Warn,
            a,
            format!(
                "{name}={value} turns off {what}{}",
                if var.category == "debug" { "; NCCL's docs file it under Debugging, not for production" } else { "" }
            ),
            format!("remove {name} unless it works around a known problem (NCCL docs, Environment Variables, Debugging: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)"),
        ));
    } else if var.category == "debug" && !matches!(name, "NCCL_ALGO" | "NCCL_PROTO") {
        // NCCL_ALGO/NCCL_PROTO get their own, more telling finding below.
        out.push(f(
            LintCode::DebugVariable,
            Severity::Info,
            a,
            format!("{name} is in NCCL's Debugging group, which NCCL's docs advise against in production"),
            format!("keep {name} only where a measurement or a known problem calls for it (NCCL docs, Environment Variables, Debugging: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)"),
        ));
    }
    match (name, value) {
        // A value NCCL misreads has its error; advice on the setting itself would be noise.
        _ if misread => {}
        ("NCCL_ALGO", _) => out.push(f(LintCode::ForcedAlgorithm, Severity::Warn, a, "forcing NCCL_ALGO turns off NCCL's per-size choice (NVLS on H100 NVSwitch, Tree at scale); there are no fixed Ring/Tree size thresholds", "leave NCCL_ALGO unset; make measured choices permanent with `nccltune bench tune` and a tuner plugin (NCCL docs, Environment Variables, NCCL_ALGO: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)")),
        ("NCCL_PROTO", _) => out.push(f(LintCode::ForcedProtocol, Severity::Warn, a, "forcing NCCL_PROTO removes LL/LL128, which win for the small and medium messages of inference", "leave NCCL_PROTO unset (NCCL docs, Environment Variables, NCCL_PROTO: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)")),
        ("NCCL_NTHREADS", _) => out.push(f(LintCode::NthreadsNotSms, Severity::Info, a, "NCCL_NTHREADS sets threads per CTA; it does not free SMs (one CTA per channel) and does not apply to LL128 or NVLS kernels", "to leave SMs to compute, cap NCCL_MAX_CTAS (2.17+) instead (NCCL docs, NCCL_NTHREADS and NCCL_MAX_CTAS; NCCL 2.30.7 src/graph/tuning.cc)")),
        ("NCCL_CROSS_NIC", "1") => out.push(f(LintCode::CrossNic1, Severity::Warn, a, "NCCL_CROSS_NIC=1 lets rings use different NICs on different nodes, which congests rail-optimised fabrics; the default 2 already crosses rails only when faster", "remove it (NCCL docs, Environment Variables, NCCL_CROSS_NIC: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)")),
        ("NCCL_NVLS_ENABLE", "1") => out.push(f(LintCode::NvlsEnable1, Severity::Warn, a, "NCCL_NVLS_ENABLE=1 skips the multicast-support check and makes init fail where NVLS resources cannot be had; the default 2 enables NVLS wherever it is supported", "remove it (NCCL docs, NCCL_NVLS_ENABLE; NCCL 2.30.7 src/transport/nvls.cc)")),
        ("NCCL_IB_GID_INDEX", _) => {
            // With any active InfiniBand port, NCCL's rails here are InfiniBand (configure
            // leaves Ethernet ports out of NCCL_IB_HCA), where the GID index is ignored.
            let ib_rails = node.is_some_and(|n| n.active_nics().any(|x| x.is_infiniband()));
            if ib_rails {
                out.push(f(LintCode::GidIndexOnIb, Severity::Warn, a, "NCCL_IB_GID_INDEX is ignored on InfiniBand ports, and this node's RDMA rails are InfiniBand", "remove it (NCCL 2.30.7 src/transport/net_ib/connect.cc: the GID index is used for RoCE ports only)"));
            } else if version.is_some_and(|v| v >= [2, 21].as_slice()) {
                out.push(f(LintCode::GidIndex221, Severity::Warn, a, "with NCCL 2.21+ NCCL picks the RoCE GID itself; NVIDIA's troubleshooting guide says not to set this", "remove it (NCCL docs, Troubleshooting, Networking: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/troubleshooting.html)"));
            } else {
                out.push(f(LintCode::GidIndexSet, Severity::Info, a, "NCCL_IB_GID_INDEX matters only on RoCE with NCCL before 2.21, and index 3 is the RoCE v2 IPv4 entry only in the common case", "check the GID table (`nccltune configure` reads it) or leave it unset on 2.21+ (NCCL docs, Environment Variables, NCCL_IB_GID_INDEX: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)"));
            }
        }
        ("NCCL_IB_HCA", v) if !v.trim_start_matches('^').starts_with('=') => {
            // Prefix matching only costs where a prefix catches more than it names; without
            // the node's device list that is a possibility, not a fact.
            let extra: Vec<String> = node.map_or(Vec::new(), |n| {
                let mut devs: Vec<&str> = n.nics.iter().map(|x| x.device.as_str()).collect();
                devs.sort_unstable();
                devs.dedup();
                v.trim_start_matches('^')
                    .split(',')
                    .filter_map(|e| e.split(':').next())
                    .filter(|d| !d.is_empty())
                    .flat_map(|d| devs.iter().filter(move |x| x.starts_with(d) && **x != d).map(|x| x.to_string()))
                    .collect()
            });
            let (sev, msg) = if extra.is_empty() {
                (Severity::Info, format!("NCCL_IB_HCA={v} matches by prefix: `mlx5` selects every mlx5_* device, `mlx5_1` also mlx5_10..19"))
            } else {
                (Severity::Warn, format!("NCCL_IB_HCA={v} matches by prefix, so on this node it also selects {}", extra.join(", ")))
            };
            out.push(f(
                LintCode::HcaPrefix,
                sev,
                a,
                msg,
                "write an exact list with a leading `=`, e.g. =mlx5_0:1,mlx5_3:1 (`nccltune configure` writes one; NCCL docs, Environment Variables, NCCL_IB_HCA: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)",
            ));
        }
        _ => {}
    }
    let numeric_default = matches!(var.kind, nccl::Kind::Int | nccl::Kind::Bool)
        && !var.default.is_empty()
        && var.default.parse::<i64>().is_ok_and(|d| {
            let n = nccl::strtoll(value);
            n.trailing.is_empty() && !n.octal && n.value == d && d >= 0
        });
    if numeric_default && !REDUNDANT.iter().any(|(n, _, _)| *n == name) {
        out.push(f(
            LintCode::RedundantDefault,
            Severity::Info,
            a,
            format!(
                "{name}={value} restates NCCL's default ({})",
                var.source.split(';').next().unwrap_or("")
            ),
            "remove it so that NCCL's own choice applies",
        ));
    }
    for (n, v, why) in REDUNDANT {
        if name == n && value == v {
            out.push(f(
                LintCode::RedundantDefault,
                Severity::Info,
                a,
                format!("{name}={value} restates NCCL's default: {why}"),
                "remove it so that NCCL's own choice applies",
            ));
        }
    }
    if name == "NCCL_IB_HCA"
        && let Some(node) = node
    {
        hca_against_node(a, value, node, out);
    }
    if let Some(node) = node {
        fabric::check(a, value, node, version, out);
    }
}

/// `NCCL_IB_HCA` entries against the node's ports: an entry matching no active port, or one
/// that includes a port that is not up.
fn hca_against_node(a: &Assignment, value: &str, node: &NodeReport, out: &mut Vec<LintFinding>) {
    if value.starts_with('^') || node.nics.is_empty() {
        return;
    }
    let exact = value.starts_with('=');
    for entry in value.trim_start_matches('=').split(',').filter(|e| !e.is_empty()) {
        let mut parts = entry.split(':');
        let dev = parts.next().unwrap_or("");
        let port: Option<u32> = parts.next().and_then(|p| p.parse().ok());
        let matches: Vec<_> = node
            .nics
            .iter()
            .filter(|n| {
                if exact {
                    n.device == dev
                } else {
                    n.device.starts_with(dev)
                }
            })
            .filter(|n| port.is_none_or(|p| p == n.port))
            .collect();
        if !matches.iter().any(|n| n.is_active()) {
            out.push(f(
                LintCode::HcaNoMatch,
                Severity::Error,
                a,
                format!(
                    "NCCL_IB_HCA entry {entry} matches no active RDMA port on {}",
                    node.hostname.as_deref().unwrap_or("this node")
                ),
                "list the active ports from `nccltune detect` (or let `nccltune configure` write the list)",
            ));
        }
        for n in matches.iter().filter(|n| !n.is_active()) {
            out.push(f(
                LintCode::HcaDownPort,
                Severity::Error,
                a,
                format!(
                    "NCCL_IB_HCA entry {entry} includes {} which is {}",
                    n.id(),
                    n.state.as_ref().map_or("not active", |s| s.as_str())
                ),
                "remove the port or bring it up",
            ));
        }
    }
}

/// Set-level checks: contradictions, duplicates and settings made dead by others, inside one
/// source. One pass with maps, so lint stays linear in the number of assignments.
fn check_set(all: &[Assignment], node: Option<&NodeReport>, out: &mut Vec<LintFinding>) {
    let mut start = 0;
    while start < all.len() {
        let src = &all[start].source;
        let end = all[start..]
            .iter()
            .position(|a| &a.source != src)
            .map_or(all.len(), |n| start + n);
        check_source(&all[start..end], node, out);
        start = end;
    }
}

fn check_source(here: &[Assignment], node: Option<&NodeReport>, out: &mut Vec<LintFinding>) {
    let here: Vec<&Assignment> = here.iter().filter(|a| a.name.starts_with("NCCL_")).collect();
    // Duplicates: each assignment against the previous one of its name.
    let mut prev: HashMap<&str, &Assignment> = HashMap::new();
    // `mpirun -x NAME` passes the value already set: not an assignment of its own.
    for b in here.iter().filter(|b| b.value.is_some()) {
        // An override inside an `if` (`if debug; then export NCCL_DEBUG=INFO; fi`) is meant:
        // only two settings on the same branch path are a duplicate.
        if let Some(a) = prev.get(b.name.as_str())
            && a.value != b.value
            && a.branch == b.branch
            && !a.dynamic
            && !b.dynamic
        {
            // NCCL applies config files with setenv(..., 0): the first line wins there; in a
            // shell the last assignment wins.
            let winner = if a.syntax == Syntax::NcclConf { a } else { b };
            out.push(f(
                LintCode::DuplicateVariable,
                Severity::Warn,
                b,
                format!(
                    "{} is set twice with different values (lines {} and {}); line {} wins",
                    a.name, a.line, b.line, winner.line
                ),
                "keep one assignment",
            ));
        }
        // In a config file the first stays the winner.
        if !(b.syntax == Syntax::NcclConf && prev.contains_key(b.name.as_str())) {
            prev.insert(&b.name, b);
        }
    }
    let last = |n: &str| {
        prev.get(n)
            .and_then(|a| a.value.as_deref().filter(|_| !a.dynamic).map(|v| (v, *a)))
    };
    for (min, max) in [
        ("NCCL_MIN_CTAS", "NCCL_MAX_CTAS"),
        ("NCCL_MIN_NCHANNELS", "NCCL_MAX_NCHANNELS"),
    ] {
        if let (Some((lo, a)), Some((hi, b))) = (last(min), last(max))
            && a.can_coexist(b)
        {
            let (lo_n, hi_n) = (nccl::strtoll(lo).value, nccl::strtoll(hi).value);
            if lo_n > hi_n {
                out.push(f(
                    LintCode::MinAboveMax,
                    Severity::Error,
                    a,
                    format!("{min}={lo} is above {max}={hi}"),
                    format!("make {min} at most {max}"),
                ));
            }
        }
    }
    if let Some((_, tuner)) = last("NCCL_TUNER_PLUGIN") {
        for forced in ["NCCL_ALGO", "NCCL_PROTO"] {
            if let Some((_, a)) = last(forced)
                && a.can_coexist(tuner)
            {
                // This says more than the plain forced-algorithm/-protocol finding it replaces.
                let loc = a.location();
                out.retain(|x| {
                    !(x.location() == loc && x.subject == forced && x.code.as_str().starts_with("forced-"))
                });
                out.push(f(LintCode::AlgoWithTuner, Severity::Warn, a, format!("{forced} is set while a tuner plugin is configured ({}): NCCL only lets the plugin choose among what {forced} leaves enabled, so the plugin's choices are cut", tuner.location()), format!("drop {forced} and let the tuner plugin decide")));
            }
        }
    }
    // NCCL_IB_DISABLE=1 makes the IB/RoCE transport return before reading any other NCCL_IB_*
    // (NCCL 2.30.7 src/transport/net_ib/init.cc:291).
    if let Some((v, dis)) = last("NCCL_IB_DISABLE")
        && nccl::strtoll(v).value != 0
    {
        // Each dead variable once, at its first line.
        let mut named = std::collections::HashSet::new();
        let dead: Vec<String> = here
            .iter()
            .filter(|a| a.name.starts_with("NCCL_IB_") && a.name != "NCCL_IB_DISABLE" && a.can_coexist(dis))
            .filter(|a| named.insert(a.name.as_str()))
            .map(|a| format!("{} (line {})", a.name, a.line))
            .collect();
        if !dead.is_empty() {
            out.push(f(
                LintCode::IbSettingsDead,
                Severity::Warn,
                dis,
                format!("NCCL_IB_DISABLE={v} turns NCCL's InfiniBand/RoCE transport off, so {} do nothing", dead.join(", ")),
                "remove NCCL_IB_DISABLE to use RDMA, or remove the NCCL_IB_* settings (NCCL 2.30.7 src/transport/net_ib/init.cc:291)",
            ));
        }
        if let Some(n) = node {
            let rails: Vec<String> = n.active_nics().map(|x| x.id()).collect();
            if !rails.is_empty() {
                out.push(f(
                    LintCode::IbDisabledWithRails,
                    Severity::Warn,
                    dis,
                    format!(
                        "NCCL_IB_DISABLE={v} on {}, which has {} Active RDMA port(s) ({}): NCCL falls back to TCP sockets",
                        n.hostname.as_deref().unwrap_or("this node"),
                        rails.len(),
                        rails.join(", ")
                    ),
                    "remove NCCL_IB_DISABLE (or set it to 0) so that NCCL uses the RDMA rails",
                ));
            }
        }
    }
    // The socket transport uses at most 64 sockets per connection; above, NCCL lowers
    // NCCL_NSOCKS_PERTHREAD (NCCL 2.30.7 src/transport/net_socket.cc:192, 389-396).
    if let (Some((t, ta)), Some((s, sa))) = (last("NCCL_SOCKET_NTHREADS"), last("NCCL_NSOCKS_PERTHREAD"))
        && ta.can_coexist(sa)
    {
        let threads = nccl::strtoll(t).value.min(16);
        let socks = nccl::strtoll(s).value;
        if threads > 0 && socks > 0 && threads.saturating_mul(socks) > 64 {
            out.push(f(
                LintCode::TooManySockets,
                Severity::Warn,
                sa,
                format!(
                    "NCCL_SOCKET_NTHREADS={t} x NCCL_NSOCKS_PERTHREAD={s} = {} sockets, above NCCL's limit of 64: NCCL lowers NCCL_NSOCKS_PERTHREAD to {}",
                    threads * socks,
                    64 / threads
                ),
                "keep the product at most 64 (NCCL docs, NCCL_SOCKET_NTHREADS; NCCL 2.30.7 src/transport/net_socket.cc:389-396)",
            ));
        }
    }
}

/// `NCCL_SOCKET_IFNAME`-style lists: NCCL matches by prefix (or exactly after `=`), with `^` to
/// exclude, and has no wildcards (NCCL 2.30.7 src/misc/utils.cc:218-240).
fn iface_checks(a: &Assignment, value: &str, node: Option<&NodeReport>, out: &mut Vec<LintFinding>) {
    let exclude = value.starts_with('^');
    let body = value.trim_start_matches('^');
    let exact = body.starts_with('=');
    let body = body.trim_start_matches('=');
    let name = &a.name;
    for e in body.split(',').filter(|e| !e.is_empty()) {
        let prefix = e.split(':').next().unwrap_or(e);
        if prefix.contains(['*', '?', '[']) {
            let plain = prefix.split(['*', '?', '[']).next().unwrap_or("");
            out.push(f(
                LintCode::IfaceWildcard,
                if exclude { Severity::Warn } else { Severity::Error },
                a,
                format!("{name}: {e:?} is not a pattern to NCCL, which has no wildcards: it {} only interfaces whose name starts with the literal text {prefix:?}", if exclude { "excludes" } else { "selects" }),
                format!("write the prefix without wildcards ({plain:?} already matches every name that starts with it; NCCL docs, NCCL_SOCKET_IFNAME)"),
            ));
            continue;
        }
        if exclude {
            continue;
        }
        if let Some(n) = node
            && !n.interfaces.is_empty()
        {
            let found = n.interfaces.iter().any(|i| {
                if exact {
                    i.name == prefix
                } else {
                    i.name.starts_with(prefix)
                }
            });
            if !found {
                let names: Vec<&str> = n.interfaces.iter().map(|i| i.name.as_str()).collect();
                out.push(f(
                    LintCode::IfaceMissing,
                    Severity::Error,
                    a,
                    format!(
                        "{name}: {e:?} matches no network interface on {} (it has {})",
                        n.hostname.as_deref().unwrap_or("this node"),
                        names.join(", ")
                    ),
                    "name an interface this node has, or leave the variable unset to let NCCL choose",
                ));
            }
        }
    }
}

/// `NCCL_IB_HCA` entries that repeat: NCCL selects a port once however often it is listed, so a
/// repeat usually stands for another port that was meant.
fn hca_duplicates(a: &Assignment, value: &str, out: &mut Vec<LintFinding>) {
    let body = value.trim_start_matches('^').trim_start_matches('=');
    let mut seen: HashMap<(&str, Option<&str>), &str> = HashMap::new();
    // The first entry of each device, for a whole-device entry beside a port entry.
    let mut by_dev: HashMap<&str, &str> = HashMap::new();
    for e in body.split(',').filter(|e| !e.is_empty()) {
        let mut it = e.split(':');
        let dev = it.next().unwrap_or("");
        let port = it.next().filter(|p| !p.is_empty());
        let clash = seen
            .get(&(dev, port))
            .or_else(|| seen.get(&(dev, None)))
            .or_else(|| if port.is_none() { by_dev.get(dev) } else { None })
            .copied();
        if let Some(first) = clash {
            out.push(f(
                LintCode::HcaDuplicate,
                Severity::Warn,
                a,
                format!(
                    "NCCL_IB_HCA lists {e}, which overlaps the earlier {first}: NCCL selects each port once"
                ),
                "list each port once; check whether another device or port was meant",
            ));
        } else {
            seen.insert((dev, port), e);
            by_dev.entry(dev).or_insert(e);
        }
    }
}

/// A problem with a config file NCCL would read, found without reading it as settings.
fn unreadable(path: &std::path::Path, sev: Severity, message: String, fix: &str) -> LintFinding {
    crate::finding::Finding::at(LintCode::UnreadableConfig, sev, "", message)
        .fix(fix)
        .file(path.display().to_string(), None)
}

/// Reads at most `MAX_FILE_BYTES` of a file that is not a directory: devices and FIFOs are read
/// with the same bound, so `/dev/zero` ends in a clear error, not in an exhausted memory.
pub fn read_bounded(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    use std::io::Read;
    let name = path.display();
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {name}"))?;
    let meta = file.metadata().with_context(|| format!("cannot read {name}"))?;
    if meta.is_dir() {
        anyhow::bail!("{name} is a directory, not a file of settings");
    }
    let mut bytes = Vec::new();
    file.take(envfile::MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {name}"))?;
    if bytes.len() as u64 > envfile::MAX_FILE_BYTES {
        anyhow::bail!(
            "{name}: more than the {} MiB lint reads; split the file",
            envfile::MAX_FILE_BYTES >> 20
        );
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The settings NCCL reads, and the config files it would try but cannot read.
pub struct Sources {
    pub sets: Vec<Vec<Assignment>>,
    pub problems: Vec<LintFinding>,
}

/// What NCCL itself reads, highest precedence first (NCCL 2.30.7 src/misc/param.cc:27-70): the
/// `NCCL_*` variables of `env`, then `$NCCL_CONF_FILE` if set and non-empty, else
/// `$HOME/.nccl.conf`, then `etc_conf` (normally `/etc/nccl.conf`). Missing files are skipped as
/// NCCL skips them; a directory, a FIFO (NCCL's `fopen` waits for a writer: init hangs), a
/// symlink loop or a file this user cannot read is reported.
pub fn nccl_sources_checked(
    env: impl IntoIterator<Item = (String, String)>,
    home: Option<&std::path::Path>,
    etc_conf: &std::path::Path,
) -> anyhow::Result<Sources> {
    use std::os::unix::fs::FileTypeExt;
    let mut vars: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with("NCCL_")).collect();
    vars.sort();
    let user_conf = match vars.iter().find(|(k, _)| k == "NCCL_CONF_FILE") {
        Some((_, p)) if !p.is_empty() => Some(std::path::PathBuf::from(p)),
        _ => home.map(|h| h.join(".nccl.conf")),
    };
    let env: Vec<Assignment> = vars
        .into_iter()
        .map(|(name, value)| Assignment::new(&name, Some(&value), "environment", 0, Syntax::Environment))
        .collect();
    let mut sets = vec![env];
    let mut problems = Vec::new();
    for path in user_conf.into_iter().chain([etc_conf.to_path_buf()]) {
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(&path).is_ok() {
                    problems.push(unreadable(
                        &path,
                        Severity::Warn,
                        format!(
                            "{} is a dangling symlink: NCCL skips it without a word",
                            path.display()
                        ),
                        "point the link at the file meant, or remove it",
                    ));
                }
                continue;
            }
            Err(e) => {
                let why = if e.raw_os_error() == Some(40) {
                    "a symlink loop".to_string()
                } else {
                    format!("unreadable ({e})")
                };
                problems.push(unreadable(
                    &path,
                    Severity::Warn,
                    format!(
                        "{} is {why}: NCCL cannot open it and skips its settings without a word",
                        path.display()
                    ),
                    "fix or remove the file",
                ));
                continue;
            }
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            problems.push(unreadable(
                &path,
                Severity::Warn,
                format!(
                    "{} is a directory: NCCL reads no settings from it",
                    path.display()
                ),
                "remove it, or put the settings in a file of that name",
            ));
            continue;
        }
        if ft.is_fifo() || ft.is_socket() || ft.is_char_device() || ft.is_block_device() {
            problems.push(unreadable(&path, Severity::Error, format!("{} is not a regular file: NCCL opens it at init, and a FIFO blocks there until a writer comes (the job hangs); lint did not read it", path.display()), "replace it with a regular file"));
            continue;
        }
        match read_bounded(&path) {
            Ok(text) => {
                let name = path.display().to_string();
                match envfile::parse(&text, &name, Syntax::NcclConf) {
                    Ok(set) => sets.push(set),
                    Err(e) => {
                        problems.push(unreadable(&path, Severity::Error, format!("{e}"), "fix the file"))
                    }
                }
            }
            Err(e) => problems.push(unreadable(
                &path,
                Severity::Warn,
                format!("{e:#}: NCCL skips a file it cannot read without a word"),
                "make it readable, or remove it",
            )),
        }
    }
    Ok(Sources { sets, problems })
}

/// `nccl_sources_checked` without the problems, for callers that only want the settings.
pub fn nccl_sources(
    env: impl IntoIterator<Item = (String, String)>,
    home: Option<&std::path::Path>,
    etc_conf: &std::path::Path,
) -> anyhow::Result<Vec<Vec<Assignment>>> {
    nccl_sources_checked(env, home, etc_conf).map(|s| s.sets)
}

fn process_env() -> (Vec<(String, String)>, Option<std::path::PathBuf>) {
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
        .collect();
    (env, std::env::var_os("HOME").map(std::path::PathBuf::from))
}

/// `nccl_sources` for this process: its environment, `$HOME`, and `/etc/nccl.conf`.
pub fn process_sources() -> anyhow::Result<Vec<Vec<Assignment>>> {
    process_sources_checked().map(|s| s.sets)
}

/// `nccl_sources_checked` for this process.
pub fn process_sources_checked() -> anyhow::Result<Sources> {
    let (env, home) = process_env();
    nccl_sources_checked(env, home.as_deref(), std::path::Path::new("/etc/nccl.conf"))
}

/// Lints `sources` (in NCCL's precedence order, highest first: environment, user config file,
/// /etc/nccl.conf) and reports which value wins when several set a variable.
pub fn lint(
    sources: &[Vec<Assignment>],
    version: Option<&[u64]>,
    node: Option<&NodeReport>,
    precedence: bool,
) -> LintReport {
    let all: Vec<&Assignment> = sources.iter().flatten().collect();
    let mut findings = Vec::new();
    let mut hints = HashMap::new();
    let mut dropped = Summary::default();
    for a in &all {
        check_one(a, version, node, &mut hints, &mut findings);
        if findings.len() > 2 * MAX_LISTED {
            spill(&mut findings, &mut dropped);
        }
    }
    for set in sources {
        check_set(set, node, &mut findings);
        spill(&mut findings, &mut dropped);
    }
    let mut effective: Vec<Effective> = Vec::new();
    if precedence {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for a in all.iter().filter(|a| a.name.starts_with("NCCL_")) {
            match seen.get(a.name.as_str()).map(|&i| &effective[i]) {
                Some(winner) if winner.value != a.value => findings.push(f(
                    LintCode::Shadowed,
                    Severity::Info,
                    a,
                    format!(
                        "{}={} here is not used: {} sets it to {}",
                        a.name,
                        a.value.as_deref().unwrap_or(""),
                        winner.from,
                        winner.value.as_deref().unwrap_or("")
                    ),
                    "remove the unused setting to avoid confusion",
                )),
                Some(_) => {}
                None => {
                    seen.insert(&a.name, effective.len());
                    effective.push(Effective {
                        name: a.name.clone(),
                        value: a.value.clone(),
                        from: a.location(),
                    });
                }
            }
        }
    }
    let mut names: Vec<String> = all.iter().map(|a| a.source.clone()).collect();
    names.dedup();
    // In file order: per-variable and set-level findings interleaved by line.
    let order: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let key = |x: &LintFinding| {
        let loc = x.location();
        let (src, line) = loc
            .rsplit_once(':')
            .and_then(|(s, l)| Some((s.to_string(), l.parse::<usize>().ok()?)))
            .unwrap_or((loc.clone(), 0));
        (order.get(src.as_str()).copied().unwrap_or(usize::MAX), line)
    };
    findings.sort_by_cached_key(key);
    spill(&mut findings, &mut dropped);
    let not_listed = dropped.error + dropped.warn + dropped.info;
    let mut r = LintReport {
        schema: SCHEMA,
        sources: names,
        findings,
        effective,
        read_as: Vec::new(),
        not_listed,
        dropped,
        summary: Summary::default(),
    };
    r.recount();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Vec<String> {
        let a = envfile::parse(text, "t.env", Syntax::Shell).expect("parse");
        lint(&[a], None, None, false)
            .findings
            .into_iter()
            .map(|f| f.code.to_string())
            .collect()
    }

    #[test]
    fn typical_mistakes() {
        assert!(run("NCCL_IB_HCAS==mlx5_0\n").contains(&"unknown-variable".to_string()));
        assert!(run("NCCL_BUFFSIZE=4MB\n").contains(&"misread-value".to_string()));
        assert!(run("NCCL_MIN_CTAS=8\nNCCL_MAX_CTAS=4\n").contains(&"min-above-max".to_string()));
        assert!(
            run("NCCL_TUNER_PLUGIN=libnccl-tuner-example.so\nNCCL_ALGO=Ring\n")
                .contains(&"algo-with-tuner".to_string())
        );
        assert!(run("NCCL_DEBUG=INFO\nNCCL_DEBUG=WARN\n").contains(&"duplicate-variable".to_string()));
        assert!(run("NCCL_IB_HCA==mlx5_0:1\nNCCL_DEBUG=WARN\nNCCL_SOCKET_IFNAME==eth0\n").is_empty());
    }

    #[test]
    fn repeated_hca_entries_and_dead_ib_settings() {
        let dup = |v: &str| {
            run(&format!("export NCCL_IB_HCA={v}\n"))
                .iter()
                .filter(|c| *c == "hca-duplicate")
                .count()
        };
        assert_eq!(dup("=mlx5_0:1,mlx5_3:1,mlx5_0:1"), 1);
        assert_eq!(dup("=mlx5_0,mlx5_0:1"), 1);
        assert_eq!(dup("=mlx5_0:1,mlx5_0"), 1);
        assert_eq!(dup("=mlx5_0:1,mlx5_0:2,mlx5_1"), 0);
        let codes = run("export NCCL_IB_DISABLE=1\nexport NCCL_IB_HCA==mlx5_0:1\n");
        assert!(codes.contains(&"ib-settings-dead".to_string()), "{codes:?}");
        // In another arm of an `if`, the IB setting is not dead.
        let codes = run("if x; then export NCCL_IB_DISABLE=1; else export NCCL_IB_HCA==mlx5_0:1; fi\n");
        assert!(!codes.contains(&"ib-settings-dead".to_string()), "{codes:?}");
        let codes = run("export NCCL_SOCKET_NTHREADS=16 NCCL_NSOCKS_PERTHREAD=8\n");
        assert!(codes.contains(&"too-many-sockets".to_string()), "{codes:?}");
        assert!(
            !run("export NCCL_SOCKET_NTHREADS=8 NCCL_NSOCKS_PERTHREAD=8\n")
                .contains(&"too-many-sockets".to_string())
        );
    }

    #[test]
    fn huge_inputs_list_a_bounded_number_of_findings_and_count_all() {
        let text = "export NCCL_NO_SUCH_THING=1\n".repeat(MAX_LISTED * 3);
        let a = envfile::parse(&text, "big.sh", Syntax::Shell).expect("parse");
        let r = lint(&[a], None, None, false);
        assert_eq!(r.findings.len(), MAX_LISTED);
        assert_eq!(r.summary.warn, MAX_LISTED * 3);
        assert_eq!(r.not_listed, MAX_LISTED * 2);
        assert!(
            r.findings[0].location().ends_with(":1"),
            "the first lines are the ones listed"
        );
    }

    #[test]
    fn conf_files_win_first_and_keep_quotes() {
        let a = envfile::parse(
            "NCCL_DEBUG=INFO\nNCCL_DEBUG=WARN\nNCCL_IB_HCA=\"=mlx5_0\"\n",
            "/etc/nccl.conf",
            Syntax::NcclConf,
        )
        .expect("parse");
        let r = lint(&[a], None, None, false);
        let dup = r
            .findings
            .iter()
            .find(|f| f.code == "duplicate-variable")
            .expect("dup");
        assert!(dup.message.contains("line 1 wins"), "{}", dup.message);
        assert!(r.findings.iter().any(|f| f.code == "conf-quoted"));
    }

    #[test]
    fn precedence_reports_the_winner() {
        let env = vec![Assignment::new(
            "NCCL_DEBUG",
            Some("WARN"),
            "environment",
            0,
            Syntax::Environment,
        )];
        let etc = envfile::parse("NCCL_DEBUG=INFO\n", "/etc/nccl.conf", Syntax::NcclConf).expect("parse");
        let r = lint(&[env, etc], None, None, true);
        assert_eq!(r.effective.len(), 1);
        assert_eq!(r.effective[0].from, "environment");
        assert!(
            r.findings
                .iter()
                .any(|f| f.code == "shadowed" && f.location() == "/etc/nccl.conf:1")
        );
    }
}
