//! `lint`: checks NCCL settings in env files, job scripts, NCCL config files or the process
//! environment, the way NCCL will read them: unknown or misspelled names, removed and renamed
//! variables, values NCCL misreads, contradictions, debugging-only variables, duplicates, and,
//! with node facts, `NCCL_IB_HCA` entries that match no active port.

pub mod envfile;

use crate::finding::Severity;
use crate::nccl;
use crate::node::NodeReport;
use envfile::{Assignment, Syntax};
use serde::Serialize;

pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LintFinding {
    pub code: String,
    pub severity: Severity,
    pub variable: String,
    /// `file:line`, or `environment`.
    pub location: String,
    pub message: String,
    pub fix: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Effective {
    pub name: String,
    pub value: Option<String>,
    /// Where the winning value comes from.
    pub from: String,
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
    pub summary: Summary,
}

impl LintReport {
    pub fn failed(&self, strict: bool) -> bool {
        self.summary.error > 0 || (strict && self.summary.warn > 0)
    }
}

fn f(
    code: &str,
    sev: Severity,
    a: &Assignment,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> LintFinding {
    LintFinding {
        code: code.into(),
        severity: sev,
        variable: a.name.clone(),
        location: a.location(),
        message: message.into(),
        fix: fix.into(),
    }
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

fn check_one(a: &Assignment, version: Option<&[u64]>, node: Option<&NodeReport>, out: &mut Vec<LintFinding>) {
    let name = a.name.as_str();
    if a.syntax == Syntax::NcclConf && name != name.trim() {
        out.push(f(
            "conf-whitespace",
            Severity::Error,
            a,
            format!("{name:?}: NCCL does not trim names in config files, so this sets a different variable"),
            "remove the spaces around the name",
        ));
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
            "plugin-variable",
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
        let hint = nccl::suggest(name, version);
        out.push(f(
            "unknown-variable",
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
    for p in nccl::lifecycle(var, version) {
        out.push(f(p.code, p.severity, a, p.message, p.fix));
    }
    let Some(value) = a.value.as_deref() else { return };
    if a.syntax == Syntax::NcclConf
        && value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')))
    {
        out.push(f(
            "conf-quoted",
            Severity::Error,
            a,
            format!("{name}={value}: NCCL config files have no quoting, so the quotes are part of the value"),
            "remove the quotes",
        ));
    }
    for p in nccl::validate(var, value, version) {
        out.push(f(p.code, p.severity, a, p.message, p.fix));
    }
    if let Some(what) = disables_transport(name, value) {
        out.push(f(
            "disables-transport",
            Severity::Warn,
            a,
            format!("{name}={value} turns off {what}; NCCL's docs list it under Debugging (not for production)"),
            format!("remove {name} unless it works around a known problem (NCCL docs, Environment Variables, Debugging: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)"),
        ));
    } else if var.category == "debug" {
        out.push(f(
            "debug-variable",
            Severity::Info,
            a,
            format!("{name} is in NCCL's Debugging group, which NCCL's docs advise against in production"),
            format!("keep {name} only where a measurement or a known problem calls for it (NCCL docs, Environment Variables, Debugging: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)"),
        ));
    }
    match (name, value) {
        ("NCCL_ALGO", _) => out.push(f("forced-algorithm", Severity::Warn, a, "forcing NCCL_ALGO turns off NCCL's per-size choice (NVLS on H100 NVSwitch, Tree at scale); there are no fixed Ring/Tree size thresholds", "leave NCCL_ALGO unset; make measured choices permanent with `nccltune bench tune` and a tuner plugin (NCCL docs, Environment Variables, NCCL_ALGO: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)")),
        ("NCCL_PROTO", _) => out.push(f("forced-protocol", Severity::Warn, a, "forcing NCCL_PROTO removes LL/LL128, which win for the small and medium messages of inference", "leave NCCL_PROTO unset (NCCL docs, Environment Variables, NCCL_PROTO: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)")),
        ("NCCL_NTHREADS", _) => out.push(f("nthreads-not-sms", Severity::Info, a, "NCCL_NTHREADS sets threads per CTA; it does not free SMs (one CTA per channel) and does not apply to LL128 or NVLS kernels", "to leave SMs to compute, cap NCCL_MAX_CTAS (2.17+) instead (NCCL docs, NCCL_NTHREADS and NCCL_MAX_CTAS; NCCL 2.30.7 src/graph/tuning.cc)")),
        ("NCCL_CROSS_NIC", "1") => out.push(f("cross-nic-1", Severity::Warn, a, "NCCL_CROSS_NIC=1 lets rings use different NICs on different nodes, which congests rail-optimised fabrics; the default 2 already crosses rails only when faster", "remove it (NCCL docs, Environment Variables, NCCL_CROSS_NIC: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)")),
        ("NCCL_NVLS_ENABLE", "1") => out.push(f("nvls-enable-1", Severity::Warn, a, "NCCL_NVLS_ENABLE=1 skips the multicast-support check and makes init fail where NVLS resources cannot be had; the default 2 enables NVLS wherever it is supported", "remove it (NCCL docs, NCCL_NVLS_ENABLE; NCCL 2.30.7 src/transport/nvls.cc)")),
        ("NCCL_IB_GID_INDEX", _) => {
            // With any active InfiniBand port, NCCL's rails here are InfiniBand (configure
            // leaves Ethernet ports out of NCCL_IB_HCA), where the GID index is ignored.
            let ib_rails = node.is_some_and(|n| n.active_nics().any(|x| x.is_infiniband()));
            if ib_rails {
                out.push(f("gid-index-on-ib", Severity::Warn, a, "NCCL_IB_GID_INDEX is ignored on InfiniBand ports, and this node's RDMA rails are InfiniBand", "remove it (NCCL 2.30.7 src/transport/net_ib/connect.cc: the GID index is used for RoCE ports only)"));
            } else if version.is_some_and(|v| v >= [2, 21].as_slice()) {
                out.push(f("gid-index-2.21", Severity::Warn, a, "with NCCL 2.21+ NCCL picks the RoCE GID itself; NVIDIA's troubleshooting guide says not to set this", "remove it (NCCL docs, Troubleshooting, Networking: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/troubleshooting.html)"));
            } else {
                out.push(f("gid-index-set", Severity::Info, a, "NCCL_IB_GID_INDEX matters only on RoCE with NCCL before 2.21, and index 3 is the RoCE v2 IPv4 entry only in the common case", "check the GID table (`nccltune configure` reads it) or leave it unset on 2.21+ (NCCL docs, Environment Variables, NCCL_IB_GID_INDEX: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)"));
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
                "hca-prefix",
                sev,
                a,
                msg,
                "write an exact list with a leading `=`, e.g. =mlx5_0:1,mlx5_3:1 (`nccltune configure` writes one; NCCL docs, Environment Variables, NCCL_IB_HCA: https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)",
            ));
        }
        _ => {}
    }
    for (n, v, why) in REDUNDANT {
        if name == n && value == v {
            out.push(f(
                "redundant-default",
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
                "hca-no-match",
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
                "hca-down-port",
                Severity::Error,
                a,
                format!(
                    "NCCL_IB_HCA entry {entry} includes {} which is {}",
                    n.id(),
                    n.state.as_deref().unwrap_or("not active")
                ),
                "remove the port or bring it up",
            ));
        }
    }
}

/// Set-level checks: contradictions and duplicates inside one source.
fn check_set(all: &[Assignment], out: &mut Vec<LintFinding>) {
    let mut sources: Vec<&str> = all.iter().map(|a| a.source.as_str()).collect();
    sources.dedup();
    for src in sources {
        let here: Vec<&Assignment> = all
            .iter()
            .filter(|a| a.source == src && a.name.starts_with("NCCL_"))
            .collect();
        for (i, a) in here.iter().enumerate() {
            if let Some(b) = here[i + 1..]
                .iter()
                .find(|b| b.name == a.name && b.value != a.value)
            {
                // NCCL applies config files with setenv(..., 0): the first line wins there; in a
                // shell the last assignment wins.
                let winner = if a.syntax == Syntax::NcclConf { a } else { b };
                out.push(f(
                    "duplicate-variable",
                    Severity::Warn,
                    b,
                    format!(
                        "{} is set twice with different values (lines {} and {}); line {} wins",
                        a.name, a.line, b.line, winner.line
                    ),
                    "keep one assignment",
                ));
            }
        }
        let last = |n: &str| {
            here.iter()
                .rev()
                .find(|a| a.name == n)
                .and_then(|a| a.value.as_deref().map(|v| (v, *a)))
        };
        for (min, max) in [
            ("NCCL_MIN_CTAS", "NCCL_MAX_CTAS"),
            ("NCCL_MIN_NCHANNELS", "NCCL_MAX_NCHANNELS"),
        ] {
            if let (Some((lo, a)), Some((hi, _))) = (last(min), last(max)) {
                let (lo_n, hi_n) = (nccl::strtoll(lo).value, nccl::strtoll(hi).value);
                if lo_n > hi_n {
                    out.push(f(
                        "min-above-max",
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
                if let Some((_, a)) = last(forced) {
                    out.push(f("algo-with-tuner", Severity::Warn, a, format!("{forced} is set while a tuner plugin is configured ({}): the forced value and the plugin's choices contradict", tuner.location()), format!("drop {forced} and let the tuner plugin decide")));
                }
            }
        }
    }
}

/// What NCCL itself reads, highest precedence first (NCCL 2.30.7 src/misc/param.cc:27-70): the `NCCL_*` variables of
/// `env`, then `$NCCL_CONF_FILE` if set and non-empty, else `$HOME/.nccl.conf`, then `etc_conf`
/// (normally `/etc/nccl.conf`). Missing files are skipped; unreadable ones are errors.
pub fn nccl_sources(
    env: impl IntoIterator<Item = (String, String)>,
    home: Option<&std::path::Path>,
    etc_conf: &std::path::Path,
) -> anyhow::Result<Vec<Vec<Assignment>>> {
    use anyhow::Context;
    let mut vars: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with("NCCL_")).collect();
    vars.sort();
    let user_conf = match vars.iter().find(|(k, _)| k == "NCCL_CONF_FILE") {
        Some((_, p)) if !p.is_empty() => Some(std::path::PathBuf::from(p)),
        _ => home.map(|h| h.join(".nccl.conf")),
    };
    let env: Vec<Assignment> = vars
        .into_iter()
        .map(|(name, value)| Assignment {
            name,
            value: Some(value),
            source: "environment".into(),
            line: 0,
            syntax: Syntax::Environment,
        })
        .collect();
    let mut sources = vec![env];
    for path in user_conf.into_iter().chain([etc_conf.to_path_buf()]) {
        if path.is_file() {
            let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let name = path.display().to_string();
            sources.push(envfile::parse(
                &String::from_utf8_lossy(&bytes),
                &name,
                Syntax::NcclConf,
            )?);
        }
    }
    Ok(sources)
}

/// `nccl_sources` for this process: its environment, `$HOME`, and `/etc/nccl.conf`.
pub fn process_sources() -> anyhow::Result<Vec<Vec<Assignment>>> {
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())));
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    nccl_sources(env, home.as_deref(), std::path::Path::new("/etc/nccl.conf"))
}

/// Lints `sources` (in NCCL's precedence order, highest first: environment, user config file,
/// /etc/nccl.conf) and reports which value wins when several set a variable.
pub fn lint(
    sources: &[Vec<Assignment>],
    version: Option<&[u64]>,
    node: Option<&NodeReport>,
    precedence: bool,
) -> LintReport {
    let all: Vec<Assignment> = sources.iter().flatten().cloned().collect();
    let mut findings = Vec::new();
    for a in &all {
        check_one(a, version, node, &mut findings);
    }
    check_set(&all, &mut findings);
    let mut effective: Vec<Effective> = Vec::new();
    if precedence {
        for a in all.iter().filter(|a| a.name.starts_with("NCCL_")) {
            match effective.iter().find(|e| e.name == a.name) {
                Some(winner) if winner.value != a.value => findings.push(f(
                    "shadowed",
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
                None => effective.push(Effective {
                    name: a.name.clone(),
                    value: a.value.clone(),
                    from: a.location(),
                }),
            }
        }
    }
    let mut summary = Summary::default();
    for x in &findings {
        match x.severity {
            Severity::Error => summary.error += 1,
            Severity::Warn => summary.warn += 1,
            Severity::Info => summary.info += 1,
        }
    }
    let mut names: Vec<String> = all.iter().map(|a| a.source.clone()).collect();
    names.dedup();
    LintReport {
        schema: SCHEMA,
        sources: names,
        findings,
        effective,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Vec<String> {
        let a = envfile::parse(text, "t.env", Syntax::Shell).expect("parse");
        lint(&[a], None, None, false)
            .findings
            .into_iter()
            .map(|f| f.code)
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
        let env = vec![Assignment {
            name: "NCCL_DEBUG".into(),
            value: Some("WARN".into()),
            source: "environment".into(),
            line: 0,
            syntax: Syntax::Environment,
        }];
        let etc = envfile::parse("NCCL_DEBUG=INFO\n", "/etc/nccl.conf", Syntax::NcclConf).expect("parse");
        let r = lint(&[env, etc], None, None, true);
        assert_eq!(r.effective.len(), 1);
        assert_eq!(r.effective[0].from, "environment");
        assert!(
            r.findings
                .iter()
                .any(|f| f.code == "shadowed" && f.location == "/etc/nccl.conf:1")
        );
    }
}
