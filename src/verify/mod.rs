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

use crate::node::NodeReport;
use crate::parse::nccl_log::NcclLog;
use serde::{Deserialize, Serialize};

/// Version of the JSON document `verify --format json` writes.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check result. `id` is stable (documented in the README); `subject` names what was
/// checked (`mlx5_3:1`, `GPU5`, `node`), so `(id, subject)` is unique within a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub id: String,
    pub group: String,
    pub status: Status,
    pub subject: String,
    pub message: String,
    /// What the check looked at (values, probe names, log lines).
    pub evidence: String,
    /// One line on how to fix it; empty for a pass.
    pub fix: String,
}

impl Check {
    pub fn new(id: &str, status: Status, subject: impl Into<String>, message: impl Into<String>) -> Check {
        Check {
            id: id.to_string(),
            group: id.split('.').next().unwrap_or(id).to_string(),
            status,
            subject: subject.into(),
            message: message.into(),
            evidence: String::new(),
            fix: String::new(),
        }
    }
    pub fn evidence(mut self, e: impl Into<String>) -> Check {
        self.evidence = e.into();
        self
    }
    pub fn fix(mut self, f: impl Into<String>) -> Check {
        self.fix = f.into();
        self
    }
}

/// Counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
}

impl Summary {
    pub fn of(checks: &[Check]) -> Summary {
        let mut s = Summary::default();
        for c in checks {
            match c.status {
                Status::Pass => s.pass += 1,
                Status::Warn => s.warn += 1,
                Status::Fail => s.fail += 1,
                Status::Skip => s.skip += 1,
            }
        }
        s
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    pub schema: u32,
    pub hostname: Option<String>,
    /// `live` or the replayed capture directory.
    pub source: String,
    /// The NCCL log that was judged, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nccl_log: Option<String>,
    pub strict: bool,
    pub checks: Vec<Check>,
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
            .filter(|c| c.status == Status::Fail || (self.strict && c.status == Status::Warn))
            .map(|c| format!("{} {}", c.id, c.subject))
            .collect();
        format!(
            "nccltune verify: {} on {}: {} pass, {} warn, {} fail, {} skip{}",
            if self.ok { "OK" } else { "FAIL" },
            self.hostname.as_deref().unwrap_or("unknown host"),
            s.pass,
            s.warn,
            s.fail,
            s.skip,
            if failed.is_empty() {
                String::new()
            } else {
                format!(" ({})", failed.join(", "))
            }
        )
    }
}

/// Everything `run` needs besides the node.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// `--expect-gpus N` (overrides the expectations file's count).
    pub expect_gpus: Option<u32>,
    pub expectations: Option<Expectations>,
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

/// The `lint` findings for the NCCL environment and config files, as checks: errors fail,
/// warnings warn; notes are left out.
fn lint_checks(lint: Option<&crate::lint::LintReport>) -> Vec<Check> {
    use crate::finding::Severity;
    // On a replay the captured node's environment is not in the capture: no group at all, rather
    // than judging the environment of the machine doing the replay.
    let Some(r) = lint else { return Vec::new() };
    let mut out: Vec<Check> = r
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .map(|f| {
            let status = if f.severity == Severity::Error {
                Status::Fail
            } else {
                Status::Warn
            };
            Check::new(
                "software.nccl-env",
                status,
                format!("{} {}", f.variable, f.location),
                f.message.clone(),
            )
            .evidence(format!("lint code {}", f.code))
            .fix(f.fix.clone())
        })
        .collect();
    if out.is_empty() {
        let n = r.effective.len();
        out.push(
            Check::new(
                "software.nccl-env",
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
    Ok(finish(node, opts, checks))
}

/// Builds the report from a finished list of checks.
pub fn finish(node: &NodeReport, opts: &VerifyOptions, checks: Vec<Check>) -> VerifyReport {
    let summary = Summary::of(&checks);
    let ok = summary.fail == 0 && !(opts.strict && summary.warn > 0);
    VerifyReport {
        schema: SCHEMA,
        hostname: node.hostname.clone(),
        source: node.source.clone(),
        nccl_log: opts.nccl_log.as_ref().map(|(name, _)| name.clone()),
        strict: opts.strict,
        checks,
        summary,
        ok,
    }
}
