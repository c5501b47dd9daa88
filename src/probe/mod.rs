//! Probes: named specs of what to read from a node (a program with arguments, or a file
//! under /sys or /proc), the `Runner` trait that executes them, and `run_all`, which runs a
//! set of probes concurrently. A probe's failure is a status, never an error: deciding what a
//! missing fact means belongs to the commands that use it.

mod catalog;
pub mod process;
mod replay;
mod system;

pub use catalog::{ProbeSpec, QUERY_GPU_FIELDS, Source, core_probes, find, names};
pub use replay::{ReplayRunner, write_capture};
pub use system::{OUTPUT_CAP_BYTES, SystemRunner};

use std::fmt;
use std::time::Duration;

/// How a probe ended. The text form is the `<name>.status` file format of a capture.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(into = "String")]
pub enum ProbeStatus {
    /// Ran and exited 0 (or the file was read).
    Ok,
    /// Exited with this non-zero code (a signal N is reported as 128 + N, as shells do).
    Exit(i32),
    /// Killed at its deadline.
    Timeout,
    /// The program is not installed, or the file does not exist.
    NotFound,
    /// Replay only: the capture has neither `<name>.txt` nor `<name>.status`.
    NotCaptured,
}

impl ProbeStatus {
    /// Parses one line of a `<name>.status` file.
    pub fn parse(line: &str) -> Option<ProbeStatus> {
        let line = line.trim();
        match line {
            "ok" => Some(ProbeStatus::Ok),
            "timeout" => Some(ProbeStatus::Timeout),
            "not-found" => Some(ProbeStatus::NotFound),
            "not-captured" => Some(ProbeStatus::NotCaptured),
            _ => {
                let code = line.strip_prefix("exit ")?.trim().parse().ok()?;
                Some(ProbeStatus::Exit(code))
            }
        }
    }

    pub fn is_ok(&self) -> bool {
        *self == ProbeStatus::Ok
    }
}

impl fmt::Display for ProbeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeStatus::Ok => f.write_str("ok"),
            ProbeStatus::Exit(code) => write!(f, "exit {code}"),
            ProbeStatus::Timeout => f.write_str("timeout"),
            ProbeStatus::NotFound => f.write_str("not-found"),
            ProbeStatus::NotCaptured => f.write_str("not-captured"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for ProbeStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ProbeStatus, D::Error> {
        let s = String::deserialize(d)?;
        ProbeStatus::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown probe status `{s}`")))
    }
}

impl From<ProbeStatus> for String {
    fn from(s: ProbeStatus) -> String {
        s.to_string()
    }
}

/// What one probe produced.
#[derive(Debug, Clone)]
pub struct ProbeOutput {
    pub name: String,
    /// The command line or file path, for the manifest and the report.
    pub command: String,
    pub status: ProbeStatus,
    /// Standard output (or the file's content), verbatim bytes, at most `OUTPUT_CAP_BYTES`.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub duration: Duration,
    /// True when output past the cap was dropped.
    pub truncated: bool,
}

impl ProbeOutput {
    /// Standard output as text; invalid UTF-8 is replaced rather than rejected, since tool
    /// output can carry stray bytes and the parsers only need the ASCII structure.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The text when the probe ran successfully and printed something, else `None`.
    pub fn ok_text(&self) -> Option<String> {
        self.status.is_ok().then(|| self.text())
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs one probe. Implementations never panic and never return an error: every failure
/// becomes a `ProbeStatus`.
pub trait Runner: Sync {
    fn run(&self, spec: &ProbeSpec) -> ProbeOutput;
}

/// Runs every probe concurrently, one thread each, and returns the outputs in input order.
/// Each probe enforces its own deadline, so the wall time is that of the slowest probe.
pub fn run_all(runner: &dyn Runner, specs: &[ProbeSpec]) -> Vec<ProbeOutput> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = specs
            .iter()
            .map(|spec| scope.spawn(move || runner.run(spec)))
            .collect();
        handles
            .into_iter()
            .zip(specs)
            .map(|(handle, spec)| {
                handle.join().unwrap_or_else(|_| ProbeOutput {
                    name: spec.name.to_string(),
                    command: spec.describe(),
                    status: ProbeStatus::Exit(-1),
                    stdout: Vec::new(),
                    stderr: b"nccltune: internal error: probe thread panicked".to_vec(),
                    duration: Duration::ZERO,
                    truncated: false,
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_run_concurrently() {
        let specs: Vec<ProbeSpec> = ["a", "b", "c", "d"]
            .into_iter()
            .map(|n| ProbeSpec::command(n, "sleep", &["0.4"], "test"))
            .collect();
        let runner = SystemRunner::new(Duration::from_secs(10));
        let start = std::time::Instant::now();
        let outs = run_all(&runner, &specs);
        // Four 0.4 s probes one after another would take 1.6 s.
        assert!(
            start.elapsed() < Duration::from_millis(1200),
            "took {:?}",
            start.elapsed()
        );
        let names: Vec<&str> = outs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"], "results keep input order");
        assert!(outs.iter().all(|o| o.status.is_ok()));
    }

    #[test]
    fn status_lines_round_trip() {
        for s in [
            ProbeStatus::Ok,
            ProbeStatus::Exit(3),
            ProbeStatus::Exit(137),
            ProbeStatus::Timeout,
            ProbeStatus::NotFound,
        ] {
            assert_eq!(ProbeStatus::parse(&s.to_string()), Some(s));
        }
        assert_eq!(ProbeStatus::parse("exit 2\n"), Some(ProbeStatus::Exit(2)));
        assert_eq!(ProbeStatus::parse("exit two"), None);
        assert_eq!(ProbeStatus::parse("fine"), None);
    }
}
