//! Findings: the one model of "something to say about what was looked at", shared by every
//! command. A finding has a registered code (`codes`), a level on one scale (pass, skip, info,
//! warn, fail), a subject, the observed and expected values where they exist (typed: numbers as
//! numbers), the evidence it rests on (probe names, file:line) and a fix. `verify`'s checks,
//! `lint`'s findings, `detect`'s findings, `configure`'s notes and `bench`'s and `place`'s
//! warnings are all this type, and `outcome` is the one mapping from findings to the exit code.

pub mod codes;

pub use codes::{
    BenchCode, Code, ConfigureCode, FleetCode, GpuCode, GpudirectCode, LintCode, NcclRunCode, NodeCode,
    PcieCode, PlaceCode, RdmaCode, SoftwareCode,
};

use crate::outcome::Outcome;
use serde::{Deserialize, Serialize};

/// One scale for every command. `Skip` means the check could not see what it needed; it is
/// never counted as a pass, and the evidence policy (`verify --require`) turns a required skip
/// into a fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Pass,
    Skip,
    Info,
    Warn,
    /// Serialised `fail`; `error` is read as the same level (older lint and detect documents).
    #[serde(alias = "error")]
    Fail,
}

#[allow(non_upper_case_globals)]
impl Level {
    /// The name lint and bench used for the top level before the scales were unified.
    pub const Error: Level = Level::Fail;

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Pass => "pass",
            Level::Skip => "skip",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// The name the problem-only commands use for the level.
pub type Severity = Level;

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a finding rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    /// A probe of the node report, by name.
    Probe(String),
    /// A place in a file (`line` counts from 1).
    File { path: String, line: Option<usize> },
    /// Anything else, in words: values read, counts, the source of a threshold.
    Text(String),
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Evidence::Probe(p) => write!(f, "probe {p}"),
            Evidence::File { path, line: Some(l) } => write!(f, "{path}:{l}"),
            Evidence::File { path, line: None } => f.write_str(path),
            Evidence::Text(t) => f.write_str(t),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub code: Code,
    /// The code's area (`gpu`, `rdma`, `lint`, ...), for grouping without parsing the code.
    #[serde(default)]
    pub group: String,
    pub level: Level,
    /// What the finding is about: `node`, a probe, a port (`mlx5_3:1`), a GPU, a variable.
    #[serde(default)]
    pub subject: String,
    pub message: String,
    /// The value seen, typed (a number, a string, a list), or null when nothing was seen.
    #[serde(default)]
    pub observed: Option<serde_json::Value>,
    /// The value wanted, typed, or null when there is no expectation.
    #[serde(default)]
    pub expected: Option<serde_json::Value>,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// One line on how to fix it; empty for a pass.
    #[serde(default)]
    pub fix: String,
}

impl Finding {
    /// A finding about `subject` "node" (set another with `subject`).
    pub fn new(code: impl Into<Code>, level: Level, message: impl Into<String>) -> Self {
        Finding::at(code, level, "node", message)
    }

    /// A finding about `subject`.
    pub fn at(
        code: impl Into<Code>,
        level: Level,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let code = code.into();
        Finding {
            code,
            group: code.area().to_string(),
            level,
            subject: subject.into(),
            message: message.into(),
            observed: None,
            expected: None,
            evidence: Vec::new(),
            fix: String::new(),
        }
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = fix.into();
        self
    }

    /// Adds evidence in words (empty text adds nothing).
    pub fn evidence(mut self, text: impl Into<String>) -> Self {
        let t = text.into();
        if !t.is_empty() {
            self.evidence.push(Evidence::Text(t));
        }
        self
    }

    /// Adds a probe the finding rests on.
    pub fn probe(mut self, name: impl Into<String>) -> Self {
        self.evidence.push(Evidence::Probe(name.into()));
        self
    }

    /// Adds a file location the finding rests on.
    pub fn file(mut self, path: impl Into<String>, line: Option<usize>) -> Self {
        self.evidence.push(Evidence::File {
            path: path.into(),
            line,
        });
        self
    }

    pub fn observed(mut self, v: impl Serialize) -> Self {
        self.observed = serde_json::to_value(v).ok().filter(|v| !v.is_null());
        self
    }

    pub fn expected(mut self, v: impl Serialize) -> Self {
        self.expected = serde_json::to_value(v).ok().filter(|v| !v.is_null());
        self
    }

    /// Where the finding is, as `file:line` (or the path alone, e.g. `environment`): the first
    /// file evidence; empty when it rests on none.
    pub fn location(&self) -> String {
        self.evidence
            .iter()
            .find_map(|e| match e {
                Evidence::File { path, line: Some(l) } => Some(format!("{path}:{l}")),
                Evidence::File { path, line: None } => Some(path.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The evidence as one line, for tables.
    pub fn evidence_text(&self) -> String {
        self.evidence
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Whether this finding says "no" (a fail, or a warning under `--strict`).
    pub fn is_no(&self, strict: bool) -> bool {
        self.level == Level::Fail || (strict && self.level == Level::Warn)
    }
}

/// Counts by level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub pass: usize,
    pub skip: usize,
    pub info: usize,
    pub warn: usize,
    pub fail: usize,
}

impl Summary {
    pub fn of(findings: &[Finding]) -> Summary {
        let mut s = Summary::default();
        for f in findings {
            match f.level {
                Level::Pass => s.pass += 1,
                Level::Skip => s.skip += 1,
                Level::Info => s.info += 1,
                Level::Warn => s.warn += 1,
                Level::Fail => s.fail += 1,
            }
        }
        s
    }
}

/// The highest level among `findings`, if any.
pub fn worst(findings: &[Finding]) -> Option<Level> {
    findings.iter().map(|f| f.level).max()
}

/// The one mapping from findings to the exit code, for every command: any fail (or, with
/// `strict`, any warning) is "no" (1); otherwise "ok" (0). Commands that could not run at all
/// return `Outcome::Error` (2) before they have findings.
pub fn outcome(findings: &[Finding], strict: bool) -> Outcome {
    Outcome::from_failed(findings.iter().any(|f| f.is_no(strict)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_serialise_as_today_and_read_error_as_fail() {
        assert_eq!(
            serde_json::to_string(&Level::Fail).ok().as_deref(),
            Some("\"fail\"")
        );
        let l: Level = serde_json::from_str("\"error\"").unwrap_or(Level::Pass);
        assert_eq!(l, Level::Fail);
        assert_eq!(Level::Error, Level::Fail);
    }

    #[test]
    fn outcome_maps_levels_to_exit_codes() {
        let warn = Finding::new(RdmaCode::PortState, Level::Warn, "down");
        let fail = Finding::new(RdmaCode::PortState, Level::Fail, "down");
        let skip = Finding::new(GpuCode::Count, Level::Skip, "unseen");
        assert_eq!(outcome(std::slice::from_ref(&warn), false), Outcome::Ok);
        assert_eq!(outcome(std::slice::from_ref(&warn), true), Outcome::No);
        assert_eq!(outcome(&[skip.clone(), fail], false), Outcome::No);
        assert_eq!(outcome(&[skip], true), Outcome::Ok);
    }

    #[test]
    fn typed_values_stay_typed_in_json() {
        let f = Finding::at(RdmaCode::PortRate, Level::Fail, "mlx5_0:1", "slow")
            .observed(200.0)
            .expected(400.0)
            .probe("ibstat");
        let v = serde_json::to_value(&f).unwrap_or_default();
        assert_eq!(v["observed"], serde_json::json!(200.0));
        assert_eq!(v["code"], "rdma.port-rate");
        assert_eq!(v["group"], "rdma");
        assert_eq!(v["evidence"][0]["probe"], "ibstat");
        let back: Finding =
            serde_json::from_value(v).unwrap_or_else(|_| Finding::new(GpuCode::Count, Level::Pass, ""));
        assert_eq!(back, f);
    }
}
