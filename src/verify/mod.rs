//! `verify`: judges a node (and optionally the log of an NCCL run) and returns a list of
//! checks, each `pass`, `warn`, `fail` or `skip` with the evidence it looked at and a fix.
//! Plain values in (`NodeReport`, `VerifyOptions`), one serde model out (`VerifyReport`);
//! rendering lives in `render::verify`, argument parsing in `cli::verify`.
//!
//! Adding a check group is one line in `run`: a function `fn(&Context) -> Vec<Check>`.

pub mod expect;
mod gpu;
mod host;
mod nccl_run;
mod rdma;
pub mod rules;
#[cfg(test)]
mod tests;

pub use expect::Expectations;

use crate::finding::{Code, Finding, Level, NodeCode, SoftwareCode, Summary};
use crate::node::NodeReport;
use crate::parse::nccl_log::NcclLog;
use serde::{Deserialize, Serialize};

/// Version of the JSON document `verify --format json` writes.
/// 2: checks are findings (`code`, `level`, `observed`, `expected`, typed `evidence`), with the
/// `identity` and `evidence` blocks and `nccltune_version`/`generated_at`.
pub const SCHEMA: u32 = 2;

/// A check result is a finding (`crate::finding::Finding`): code, level, subject, message,
/// observed and expected values, evidence and fix. `(code, subject)` is unique within a report.
pub type Check = Finding;
/// Checks use the shared level scale.
pub type Status = Level;

/// The evidence groups `--require` (and `[require]` in the expectations file) can make
/// mandatory. A required group whose checks could not see is a fail, never a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Gpu,
    Nvlink,
    Rdma,
    Gpudirect,
    Pcie,
    Software,
}

impl Group {
    pub const ALL: [Group; 6] = [
        Group::Gpu,
        Group::Nvlink,
        Group::Rdma,
        Group::Gpudirect,
        Group::Pcie,
        Group::Software,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Group::Gpu => "gpu",
            Group::Nvlink => "nvlink",
            Group::Rdma => "rdma",
            Group::Gpudirect => "gpudirect",
            Group::Pcie => "pcie",
            Group::Software => "software",
        }
    }

    pub fn parse(s: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.as_str() == s.trim())
    }

    /// The evidence group a check belongs to; `None` for checks outside the policy (probes,
    /// the NCCL log, the lint of the environment).
    pub fn of(code: Code) -> Option<Group> {
        use crate::finding::GpuCode;
        Some(match code {
            Code::Gpu(GpuCode::NvlinkLinks | GpuCode::NvlinkSpeed) => Group::Nvlink,
            Code::Gpu(_) => Group::Gpu,
            Code::Rdma(_) => Group::Rdma,
            Code::Gpudirect(_) => Group::Gpudirect,
            Code::Pcie(_) => Group::Pcie,
            Code::Software(crate::finding::SoftwareCode::NcclEnv) => return None,
            Code::Software(_) => Group::Software,
            _ => return None,
        })
    }
}

/// What the checks saw, per evidence group: the groups with at least one check that could
/// see (not a skip), and those whose every check was skipped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Groups required by `--require`, `[require]` or implied by expectations.
    pub required: Vec<Group>,
    /// Groups where no check could see anything.
    pub unseen: Vec<Group>,
    /// Skipped checks that could not see (not counting "not applicable" on seen facts).
    pub not_run: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    pub schema: u32,
    /// `nccltune_version` and `generated_at`.
    #[serde(flatten)]
    pub meta: crate::render::meta::Meta,
    pub hostname: Option<String>,
    /// Who the node is: host name, machine id, DMI serial and UUID, boot id.
    pub identity: crate::node::Identity,
    /// `live` or the replayed capture directory.
    pub source: String,
    /// The NCCL log that was judged, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nccl_log: Option<String>,
    pub strict: bool,
    pub checks: Vec<Check>,
    pub evidence: Evidence,
    pub summary: Summary,
    /// `true` when no check failed (and, with `strict`, none warned): the exit code is 0.
    pub ok: bool,
}

impl VerifyReport {
    /// The one-line summary for NHC-style callers (stderr).
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        let failed: Vec<String> = self
            .checks
            .iter()
            .filter(|c| c.is_no(self.strict))
            .map(|c| format!("{} {}", c.code, c.subject))
            .collect();
        let unseen = if self.evidence.unseen.is_empty() {
            String::new()
        } else {
            let g: Vec<&str> = self.evidence.unseen.iter().map(|g| g.as_str()).collect();
            format!("; saw nothing for {}", g.join(", "))
        };
        format!(
            "nccltune verify: {} on {}: {} pass, {} warn, {} fail, {} skipped ({} could not see){unseen}{}",
            if self.ok { "OK" } else { "FAIL" },
            self.hostname.as_deref().unwrap_or("unknown host"),
            s.pass,
            s.warn,
            s.fail,
            s.skip,
            self.evidence.not_run,
            if failed.is_empty() {
                String::new()
            } else {
                format!(" ({})", failed.join(", "))
            }
        )
    }

    /// The outcome, through the one mapping every command uses.
    pub fn outcome(&self) -> crate::outcome::Outcome {
        crate::finding::outcome(&self.checks, self.strict)
    }
}

/// Everything `run` needs besides the node.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// `--expect-gpus N` (overrides the expectations file's count).
    pub expect_gpus: Option<u32>,
    pub expectations: Option<Expectations>,
    /// `--require`: evidence groups that must be seen.
    pub require: Vec<Group>,
    /// A parsed `NCCL_DEBUG=INFO` log and the name it is reported under.
    pub nccl_log: Option<(String, NcclLog)>,
    /// Warnings make the run fail too.
    pub strict: bool,
    /// `lint` over the NCCL environment and config files of the node verify runs on; `None`
    /// on a replay, whose environment was not captured.
    pub lint: Option<crate::lint::LintReport>,
}

/// What each check function sees.
pub struct Context<'a> {
    pub node: &'a NodeReport,
    pub opts: &'a VerifyOptions,
    pub rules: &'a rules::Rules,
}

impl Context<'_> {
    pub fn expect(&self) -> Option<&Expectations> {
        self.opts.expectations.as_ref()
    }
}

/// The `lint` findings for the NCCL environment and config files, as checks: their level is
/// kept (errors fail, warnings warn); notes are left out.
fn lint_checks(lint: Option<&crate::lint::LintReport>) -> Vec<Check> {
    // On a replay the captured node's environment is not in the capture: no group at all, rather
    // than judging the environment of the machine doing the replay.
    let Some(r) = lint else { return Vec::new() };
    let mut out: Vec<Check> = r
        .findings
        .iter()
        .filter(|f| f.level > Level::Info)
        .map(|f| {
            Check::at(
                SoftwareCode::NcclEnv,
                f.level,
                format!("{} {}", f.subject, f.location()),
                f.message.clone(),
            )
            .evidence(format!("lint code {}", f.code))
            .fix(f.fix.clone())
        })
        .collect();
    if out.is_empty() {
        let n = r.effective.len();
        out.push(
            Check::at(
                SoftwareCode::NcclEnv,
                Status::Pass,
                "node",
                format!("{n} NCCL variable(s) set; none that NCCL would ignore or misread"),
            )
            .evidence(if r.sources.is_empty() {
                "no NCCL variable or config file".into()
            } else {
                r.sources.join(", ")
            }),
        );
    }
    out
}

/// Runs every check group over `node`.
pub fn run(node: &NodeReport, opts: &VerifyOptions) -> anyhow::Result<VerifyReport> {
    let rules = rules::Rules::load()?;
    let cx = Context {
        node,
        opts,
        rules: &rules,
    };
    let mut checks = Vec::new();
    // One line per group; a new group (e.g. `lint`) is one more `extend`.
    checks.extend(host::probes(&cx));
    checks.extend(gpu::checks(&cx));
    checks.extend(rdma::checks(&cx));
    checks.extend(host::gpudirect(&cx));
    checks.extend(host::pcie(&cx));
    checks.extend(host::software(&cx));
    checks.extend(nccl_run::checks(&cx));
    checks.extend(lint_checks(opts.lint.as_ref()));
    annotate(&cx, &mut checks);
    Ok(finish(node, opts, checks))
}

/// Fills in the typed `observed` and `expected` values of the checks that judge one fact, from
/// the facts themselves, so that two nodes' reports compare without reading prose. A check
/// that set its own values keeps them.
fn annotate(cx: &Context, checks: &mut [Check]) {
    use crate::finding::{GpuCode, GpudirectCode, PcieCode, RdmaCode};
    use serde_json::{Value, json};
    let node = cx.node;
    let expect = cx.expect();
    let port = |id: &str| node.nics.iter().find(|n| n.id() == id);
    let port_expect = |id: &str| expect.and_then(|e| e.ports.iter().find(|p| p.port == id));
    let rails = crate::hw::rails(node);
    let best_rail = rails
        .ports
        .iter()
        .filter_map(|n| n.rate_gbps)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    let gpu = |subject: &str| -> Option<u32> { subject.strip_prefix("GPU")?.parse().ok() };
    let gexp = expect.and_then(|e| e.gpus.as_ref());
    let versions = expect.and_then(|e| e.versions.as_ref());
    for c in checks.iter_mut() {
        let (obs, exp): (Option<Value>, Option<Value>) = match c.code {
            Code::Gpu(GpuCode::Count) if node.observed.gpus.observed => (
                Some(json!(node.gpus.len())),
                cx.opts
                    .expect_gpus
                    .or_else(|| gexp.and_then(|g| g.count))
                    .map(|n| json!(n)),
            ),
            Code::Gpu(GpuCode::Count) => (
                None,
                cx.opts
                    .expect_gpus
                    .or_else(|| gexp.and_then(|g| g.count))
                    .map(|n| json!(n)),
            ),
            Code::Gpu(GpuCode::NvlinkLinks) => {
                let l = gpu(&c.subject).and_then(|g| node.nvlink.iter().find(|l| l.gpu == g));
                (
                    l.map(|l| json!(l.active_links)),
                    gexp.and_then(|g| g.nvlink_links)
                        .map(|n| json!(n))
                        .or_else(|| l.map(|l| json!(l.active_links + l.inactive_links))),
                )
            }
            Code::Gpu(GpuCode::NvlinkSpeed) => {
                let l = gpu(&c.subject).and_then(|g| node.nvlink.iter().find(|l| l.gpu == g));
                (
                    l.and_then(|l| l.link_gbps).map(|v| json!(v)),
                    gexp.and_then(|g| g.nvlink_gbps).map(|v| json!(v)),
                )
            }
            Code::Rdma(RdmaCode::PortState) => (
                port(&c.subject)
                    .and_then(|n| n.state.as_ref())
                    .map(|s| json!(s.as_str())),
                port(&c.subject).map(|_| json!("Active")),
            ),
            Code::Rdma(RdmaCode::PortRate) => {
                let n = port(&c.subject);
                let e = port_expect(&c.subject)
                    .and_then(|p| p.rate_gbps)
                    .or_else(|| n.filter(|n| rails.contains(n)).and(best_rail));
                (n.and_then(|n| n.rate_gbps).map(|r| json!(r)), e.map(|r| json!(r)))
            }
            Code::Rdma(RdmaCode::LinkLayer) => (
                port(&c.subject)
                    .and_then(|n| n.link_layer.as_ref())
                    .map(|l| json!(l.as_str())),
                port_expect(&c.subject)
                    .and_then(|p| p.link_layer.clone())
                    .map(Value::String),
            ),
            Code::Gpudirect(GpudirectCode::Path) => (Some(json!(node.gpudirect.path.as_str())), None),
            Code::Pcie(PcieCode::GpuNicDistance) => {
                let near = gpu(&c.subject).and_then(|g| {
                    node.gpu_nic_affinity
                        .iter()
                        .filter(|a| a.gpu == g)
                        .map(|a| a.path.clone())
                        .min()
                });
                let limit = host::gdr_limit(cx).label;
                (near.map(|p| json!(p.label())), Some(json!(limit)))
            }
            Code::Software(s) => {
                use crate::finding::SoftwareCode as S;
                let v = &node.versions;
                let (have, want) = match s {
                    S::Driver => (
                        &v.driver,
                        versions.and_then(|w| w.driver.clone().or(w.driver_min.clone())),
                    ),
                    S::Ofed => (
                        &v.ofed,
                        versions.and_then(|w| w.ofed.clone().or(w.ofed_min.clone())),
                    ),
                    S::Nccl => (
                        &v.nccl,
                        versions.and_then(|w| w.nccl.clone().or(w.nccl_min.clone())),
                    ),
                    S::NcclEnv => (&None, None),
                };
                (have.clone().map(Value::String), want.map(Value::String))
            }
            _ => (None, None),
        };
        if c.observed.is_none() {
            c.observed = obs;
        }
        if c.expected.is_none() {
            c.expected = exp;
        }
    }
}

/// The groups that must be seen: `--require`, `[require]` in the expectations file, and those
/// implied by what is expected (a GPU count, ports, an NVLink count, versions).
pub fn required_groups(opts: &VerifyOptions) -> Vec<Group> {
    let mut g: Vec<Group> = opts.require.clone();
    if opts.expect_gpus.is_some() {
        g.push(Group::Gpu);
    }
    if let Some(e) = &opts.expectations {
        g.extend(e.require.iter().filter_map(|r| Group::parse(r)));
        if let Some(gpus) = &e.gpus {
            if gpus.count.is_some() {
                g.push(Group::Gpu);
            }
            if gpus.nvlink_links.is_some() || gpus.nvlink_gbps.is_some() {
                g.push(Group::Nvlink);
            }
        }
        if !e.ports.is_empty() {
            g.push(Group::Rdma);
        }
        if let Some(v) = &e.versions
            && (v.driver.is_some()
                || v.driver_min.is_some()
                || v.ofed.is_some()
                || v.nccl.is_some()
                || v.nccl_min.is_some())
        {
            g.push(Group::Software);
        }
    }
    g.sort();
    g.dedup();
    g
}

/// Builds the report from a finished list of checks, applying the evidence policy: a skipped
/// check in a required group fails, and a required group with no check that could see adds a
/// fail naming what was not seen.
pub fn finish(node: &NodeReport, opts: &VerifyOptions, mut checks: Vec<Check>) -> VerifyReport {
    let required = required_groups(opts);
    let seen = |g: Group| {
        let o = &node.observed;
        match g {
            Group::Gpu => o.gpus.observed,
            Group::Nvlink => o.nvlink.observed,
            Group::Rdma => o.rdma.observed,
            Group::Gpudirect => o.gpudirect.observed,
            Group::Pcie => o.pcie.observed,
            Group::Software => o.software.observed,
        }
    };
    // "Not applicable" is an answer only when the group's facts were seen: without GPU
    // topology, "no NVSwitch" is a guess.
    let could_not_see = |c: &Check| {
        c.level == Level::Skip
            && Group::of(c.code).is_some_and(|g| !seen(g) || !c.message.starts_with("not applicable"))
    };
    for c in checks.iter_mut() {
        if could_not_see(c) && Group::of(c.code).is_some_and(|g| required.contains(&g)) {
            c.level = Level::Fail;
            c.message = format!("required evidence not seen: {}", c.message);
            if c.fix.is_empty() {
                c.fix = "run where the tools can see this (as root, with the driver and RDMA tools installed), or drop the group from --require".into();
            }
        }
    }
    let mut unseen = Vec::new();
    for g in Group::ALL {
        let mut of_group = checks.iter().filter(|c| Group::of(c.code) == Some(g)).peekable();
        let none = of_group.peek().is_none();
        let saw = seen(g)
            && checks.iter().any(|c| {
                Group::of(c.code) == Some(g)
                    && !could_not_see(c)
                    && !c.message.starts_with("required evidence not seen")
            });
        if none || !saw {
            unseen.push(g);
            if none && required.contains(&g) {
                checks.push(
                    Check::at(
                        NodeCode::Evidence,
                        Level::Fail,
                        g.as_str(),
                        format!("required evidence not seen: no {} check could run", g.as_str()),
                    )
                    .fix("run where the tools can see this, or drop the group from --require"),
                );
            }
        }
    }
    let not_run = checks.iter().filter(|c| could_not_see(c)).count();
    let summary = Summary::of(&checks);
    let ok = crate::finding::outcome(&checks, opts.strict) == crate::outcome::Outcome::Ok;
    VerifyReport {
        schema: SCHEMA,
        meta: crate::render::meta::Meta::now(),
        hostname: node.hostname.clone(),
        identity: node.identity.clone(),
        source: node.source.clone(),
        nccl_log: opts.nccl_log.as_ref().map(|(name, _)| name.clone()),
        strict: opts.strict,
        checks,
        evidence: Evidence {
            required,
            unseen,
            not_run,
        },
        summary,
        ok,
    }
}
