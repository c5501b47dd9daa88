//! Reading one plan's results: `results/r<round>/<test>.{json|txt}` and `.rc`, each test's
//! outcome as a value. A result that names no test of the plan is an error naming the file;
//! a test without a result is `Missing`, never a pass.

use super::plan::{Plan, Test, TestKind};
use super::verify_json::{self, Interner, NodeSummary};
use anyhow::{Result, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Largest result file read (a verify report is about 18 KB, an nccl-tests log a few KB).
const MAX_RESULT_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone)]
pub enum Output {
    /// No `.rc` and no output: the test did not report.
    Missing,
    Verify(Box<NodeSummary>),
    /// Largest-size out-of-place busbw, GB/s.
    Busbw(f64),
    /// Output present but not usable (truncated, junk, no rows); the text says why.
    Unparsable(String),
    /// `.rc` present, output absent.
    NoOutput,
}

#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub round: u32,
    /// Index into the round's tests.
    pub test: usize,
    /// Exit status from `.rc`; `None` when there is no `.rc`.
    pub rc: Option<i32>,
    pub output: Output,
    /// The files read, relative to the plan folder.
    pub files: Vec<String>,
}

impl TestOutcome {
    pub fn timed_out(&self) -> bool {
        matches!(self.rc, Some(124) | Some(137))
    }
}

/// Parses an nccl-tests log: the busbw of the largest size (out-of-place).
pub fn busbw_of(text: &str, source: &str) -> Result<f64, String> {
    let runs = crate::parse::nccl_tests::parse(text, source);
    let row = runs
        .iter()
        .flat_map(|r| r.rows.iter())
        .filter(|r| r.out_of_place.busbw_gbps.is_some())
        .max_by_key(|r| r.size_bytes);
    match row.and_then(|r| r.out_of_place.busbw_gbps) {
        Some(b) if b.is_finite() && b >= 0.0 => Ok(b),
        _ => Err(format!("{source}: no nccl-tests result rows")),
    }
}

fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    // Sized from the file so a report is read in one or two calls, not a growing series:
    // at 10,000 nodes the system calls, not the parsing, are most of merge's time.
    let len = f.metadata().map(|m| m.len()).unwrap_or(0).min(MAX_RESULT_BYTES);
    let mut buf = Vec::with_capacity(len as usize + 1);
    f.take(MAX_RESULT_BYTES + 1).read_to_end(&mut buf)?;
    Ok(buf)
}

fn read_rc(path: &Path, rel: &str) -> Result<Option<i32>> {
    match std::fs::read_to_string(path) {
        Ok(t) => match t.trim().parse::<i32>() {
            Ok(v) => Ok(Some(v)),
            // A torn `.rc` is a result we cannot read: count it as a failed run, not a pass.
            Err(_) => Ok(Some(-1)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => bail!("{rel}: {e}"),
    }
}

/// Every test outcome of every round that has a results folder. Checks that each file in a
/// results folder belongs to a test of that round.
pub fn collect(dir: &Path, plan: &Plan, interner: &mut Interner) -> Result<Vec<TestOutcome>> {
    let results = dir.join("results");
    let mut out = Vec::new();
    if results.is_dir() {
        for entry in std::fs::read_dir(&results)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let known = name
                .strip_prefix('r')
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| plan.round(n).is_some());
            if !known && entry.path().is_dir() {
                bail!(
                    "{}: no round {name:?} in {}; results folders are r1…r{} (remove it, or merge with the plan that wrote it)",
                    entry.path().display(),
                    dir.join("plan.json").display(),
                    plan.rounds.len()
                );
            }
        }
    }
    for round in &plan.rounds {
        let rdir = results.join(round.dir_name());
        let by_id: HashMap<&str, usize> = round
            .tests
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.as_str(), i))
            .collect();
        if rdir.is_dir() {
            for entry in std::fs::read_dir(&rdir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue; // temporary files of a test still writing
                }
                let stem = name.split('.').next().unwrap_or("");
                let ext_ok = [".json", ".txt", ".rc", ".err"]
                    .iter()
                    .any(|e| name.len() == stem.len() + e.len() && name.ends_with(e));
                if !ext_ok || !by_id.contains_key(stem) {
                    bail!(
                        "{}: no test {stem:?} in round {} of {} (a node or test not in the plan); remove the file or merge with the plan that wrote it",
                        entry.path().display(),
                        round.index,
                        dir.join("plan.json").display()
                    );
                }
            }
        }
        for (i, t) in round.tests.iter().enumerate() {
            out.push(read_test(dir, &rdir, round.index, i, t, interner)?);
        }
    }
    Ok(out)
}

fn read_test(
    dir: &Path,
    rdir: &Path,
    round: u32,
    index: usize,
    t: &Test,
    interner: &mut Interner,
) -> Result<TestOutcome> {
    let ext = match t.kind {
        TestKind::Verify => "json",
        TestKind::Nccl => "txt",
    };
    let rel = |p: &PathBuf| {
        p.strip_prefix(dir)
            .map(|x| x.display().to_string())
            .unwrap_or_else(|_| p.display().to_string())
    };
    let out_path = rdir.join(format!("{}.{ext}", t.id));
    let rc_path = rdir.join(format!("{}.rc", t.id));
    let rc = read_rc(&rc_path, &rel(&rc_path))?;
    let mut files = Vec::new();
    if rc.is_some() {
        files.push(rel(&rc_path));
    }
    let output = match read_capped(&out_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if rc.is_some() {
                Output::NoOutput
            } else {
                Output::Missing
            }
        }
        Err(e) => Output::Unparsable(format!("{}: {e}", rel(&out_path))),
        Ok(bytes) => {
            files.push(rel(&out_path));
            let src = rel(&out_path);
            if bytes.len() as u64 > MAX_RESULT_BYTES {
                Output::Unparsable(format!("{src}: larger than {MAX_RESULT_BYTES} bytes"))
            } else if bytes.is_empty() {
                Output::Unparsable(format!("{src}: empty"))
            } else {
                match t.kind {
                    TestKind::Verify => match verify_json::read(&bytes, &src, interner) {
                        Ok(s) => Output::Verify(Box::new(s)),
                        Err(e) => Output::Unparsable(e.to_string()),
                    },
                    TestKind::Nccl => match busbw_of(&String::from_utf8_lossy(&bytes), &src) {
                        Ok(b) => Output::Busbw(b),
                        Err(e) => Output::Unparsable(e),
                    },
                }
            }
        }
    };
    Ok(TestOutcome {
        round,
        test: index,
        rc,
        output,
        files,
    })
}
