//! `verify`: a node health check. Checks are plain functions over the node report (and, when
//! given, an NCCL debug log and an expectations file); each yields `Check`s with a stable id,
//! a status, the evidence looked at and a one-line fix. The report model here is rendered as
//! table, JSON, Prometheus text or JUnit XML by `render::verify`.

mod checks;
pub mod expect;
mod nccl_log;

pub use expect::Expectations;

use crate::node::NodeReport;
use crate::parse::nccl_log::NcclLog;
use serde::{Deserialize, Serialize};

/// Version of the JSON document `verify --format json` writes.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable id, `group.name` (documented in the README).
    pub id: String,
    pub group: String,
    pub status: Status,
    /// What the check is about: a GPU, a port (`mlx5_3:1`), a channel; empty for the node.
    pub subject: String,
    pub message: String,
    /// The facts the verdict rests on.
    pub evidence: String,
    /// One line on how to fix a warning or failure (empty on pass).
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    pub schema: u32,
    pub hostname: Option<String>,
    pub source: String,
    pub checks: Vec<Check>,
    pub summary: Summary,
}

impl VerifyReport {
    /// True when a check failed, or (with `strict`) warned.
    pub fn failed(&self, strict: bool) -> bool {
        self.summary.fail > 0 || (strict && self.summary.warn > 0)
    }

    /// The one-line summary for NHC-style callers.
    pub fn one_line(&self, strict: bool) -> String {
        let verdict = if self.failed(strict) { "FAIL" } else { "OK" };
        let s = &self.summary;
        let mut line = format!(
            "nccltune verify: {verdict} ({} pass, {} warn, {} fail, {} skip)",
            s.pass, s.warn, s.fail, s.skip
        );
        let bad: Vec<String> = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail || (strict && c.status == Status::Warn))
            .map(|c| {
                if c.subject.is_empty() {
                    c.id.clone()
                } else {
                    format!("{} {}", c.id, c.subject)
                }
            })
            .collect();
        if !bad.is_empty() {
            line.push_str(": ");
            line.push_str(&bad.join(", "));
        }
        line
    }
}

/// What verify checks against, beyond the node itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub expect: Option<Expectations>,
    /// `--expect-gpus N` (overrides the expectations file's count).
    pub expect_gpus: Option<u32>,
    /// A parsed `NCCL_DEBUG=INFO` log with its file name.
    pub nccl_log: Option<(String, NcclLog)>,
}

/// Runs every check group. A new group is one more `extend` here.
pub fn run(node: &NodeReport, opts: &Options) -> VerifyReport {
    let mut all = Vec::new();
    all.extend(checks::gpu(node, opts));
    all.extend(checks::rdma(node, opts));
    all.extend(checks::gpudirect(node));
    all.extend(checks::pcie(node));
    all.extend(checks::software(node, opts));
    if let Some((file, log)) = &opts.nccl_log {
        all.extend(nccl_log::checks(file, log, node));
    }
    let mut summary = Summary::default();
    for c in &all {
        match c.status {
            Status::Pass => summary.pass += 1,
            Status::Warn => summary.warn += 1,
            Status::Fail => summary.fail += 1,
            Status::Skip => summary.skip += 1,
        }
    }
    VerifyReport {
        schema: SCHEMA,
        hostname: node.hostname.clone(),
        source: node.source.clone(),
        checks: all,
        summary,
    }
}
