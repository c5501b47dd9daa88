//! `bench`: judges nccl-tests runs against bandwidth targets (a targets file, a built-in
//! profile, or targets derived from a node report), per size, with the usual causes of a
//! shortfall; compares runs against a baseline. Pure functions over parsed runs.

pub mod infer;
pub mod plan;
pub mod run;
pub mod shell;
pub mod targets;
pub mod tune;

use crate::finding::BenchCode;
use crate::finding::{Finding, Severity};
use crate::parse::nccl_tests::{Metrics, Row, Run};
use serde::Serialize;
pub use targets::{Target, Targets};

pub const SCHEMA: u32 = 1;

/// The verdict on one size of one run.
#[derive(Debug, Clone, Serialize)]
pub struct SizeVerdict {
    pub size_bytes: u64,
    pub busbw_gbps: Option<f64>,
    pub expected_gbps: Option<f64>,
    pub minimum_gbps: Option<f64>,
    /// busbw / expected.
    pub efficiency: Option<f64>,
    pub status: SizeStatus,
    /// For a shortfall: what usually causes one at this size.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<&'static str>,
}

/// The verdict on one size: `pass`, `fail`, `small` (below the targets' `min_bytes`: not judged
/// on bandwidth, tiny sizes measure latency), `wrong` (bad data), `unjudged` (no target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SizeStatus {
    Pass,
    Fail,
    Small,
    Wrong,
    Unjudged,
}

impl SizeStatus {
    /// Every status, in the order machine formats list them.
    pub const ALL: [SizeStatus; 5] = [
        SizeStatus::Pass,
        SizeStatus::Fail,
        SizeStatus::Small,
        SizeStatus::Wrong,
        SizeStatus::Unjudged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SizeStatus::Pass => "pass",
            SizeStatus::Fail => "fail",
            SizeStatus::Small => "small",
            SizeStatus::Wrong => "wrong",
            SizeStatus::Unjudged => "unjudged",
        }
    }
}

impl std::fmt::Display for SizeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    #[serde(flatten)]
    pub run: Run,
    pub sizes: Vec<SizeVerdict>,
    /// Where the targets came from.
    pub targets_from: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub comparison: Vec<SizeChange>,
    /// Why this input could not be read (empty, cut off, not nccl-tests output); the run is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_error: Option<String>,
    /// The baseline run this one was compared with (`--compare`): its busbw per size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// What the run ran on, as inferred from the log (and the overrides), with every assumption.
    pub hardware: infer::Hardware,
    /// Why no figure applied, the usual figure and the flag that gives a verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_figure: Option<infer::NoFigure>,
    /// The largest out-of-place busbw of the run.
    pub peak_busbw_gbps: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub source: String,
    /// (size, out-of-place busbw GB/s).
    pub busbw: Vec<(u64, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SizeChange {
    pub size_bytes: u64,
    /// `busbw` for sizes that move data, `time` for latency-bound sizes.
    pub metric: String,
    pub base: f64,
    pub now: f64,
    /// Relative change in the good direction: positive is better.
    pub change_pct: f64,
    pub regression: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub schema: u32,
    pub runs: Vec<RunReport>,
    /// `pass`, `fail` or `unknown` (nothing to judge against).
    pub verdict: String,
    /// How sizes are judged, beside nccl-tests' own rule.
    pub rule: String,
    pub findings: Vec<Finding>,
    /// For each finding, the index in `runs` of the run it concerns (for aggregating findings
    /// that repeat across the runs of a long log). Not part of the JSON contract.
    #[serde(skip)]
    pub finding_runs: Vec<usize>,
}

/// Options of a judgement.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub targets: Option<Targets>,
    /// Collective to assume when the output does not say (`--collective`).
    pub collective: Option<String>,
    pub baseline: Option<Vec<Run>>,
    /// Regression tolerance for `--compare`, as a fraction (0.05 = 5 %).
    pub tolerance: f64,
}

/// How a size is judged, and how that differs from nccl-tests' own `NCCL_TESTS_MIN_BW`.
pub const RULE: &str = "each judged size (>= min_bytes) passes at busbw >= 0.9 x its expected figure; nccl-tests' own NCCL_TESTS_MIN_BW rule applies 0.9 to the average busbw over all sizes instead (src/util.cu writeResultFooter), so small sizes pull its average down";

/// Sizes below this measure latency, not bandwidth, unless the targets say otherwise.
pub const DEFAULT_MIN_BYTES: u64 = 1 << 30;

/// busbw/algbw factor per collective for n ranks (nccl-tests doc/PERFORMANCE.md).
pub fn busbw_factor(collective: &str, n: u32) -> Option<f64> {
    let n = f64::from(n.max(1));
    Some(match collective {
        "all_reduce" => 2.0 * (n - 1.0) / n,
        "all_gather" | "reduce_scatter" | "alltoall" | "alltoallv" | "gather" | "scatter" => (n - 1.0) / n,
        "broadcast" | "reduce" | "sendrecv" | "hypercube" => 1.0,
        _ => return None,
    })
}

/// The collective from the file name (`all_reduce_perf.log`, `results-allgather.txt`).
fn collective_from_name(source: &str) -> Option<String> {
    let name = source
        .rsplit('/')
        .next()
        .unwrap_or(source)
        .to_lowercase()
        .replace('-', "_");
    let flat = name.replace('_', "");
    [
        ("reducescatter", "reduce_scatter"),
        ("allreduce", "all_reduce"),
        ("allgather", "all_gather"),
        ("alltoallv", "alltoallv"),
        ("alltoall", "alltoall"),
        ("broadcast", "broadcast"),
        ("sendrecv", "sendrecv"),
        ("hypercube", "hypercube"),
        ("scatter", "scatter"),
        ("gather", "gather"),
        ("reduce", "reduce"),
    ]
    .iter()
    .find(|(k, _)| flat.contains(k))
    .map(|(_, v)| v.to_string())
}

/// Infers the collective from busbw/algbw, the rank count and the columns.
fn infer_collective(run: &Run) -> Option<String> {
    let row = run
        .rows
        .iter()
        .rev()
        .find(|r| r.out_of_place.algbw_gbps.is_some_and(|a| a > 0.5))?;
    let ratio = row.out_of_place.busbw_gbps? / row.out_of_place.algbw_gbps?;
    let reducing = !matches!(&*row.redop, "" | "none");
    if row.root >= 0 {
        return Some(if reducing { "reduce" } else { "broadcast" }.into());
    }
    if ratio > 1.02 {
        return Some("all_reduce".into());
    }
    if ratio < 0.98 {
        // all_reduce and reduce_scatter both print `sum -1`; the ratio tells them apart.
        return Some(if reducing { "reduce_scatter" } else { "all_gather" }.into());
    }
    // Factor 1 with no root: sendrecv (it prints its op name although it reduces nothing).
    Some("sendrecv".into())
}

/// Largest deviation nccl-tests tolerated before v2.13 (nccl-tests src/common.cu `deltaMaxValue`, v2.0-v2.12).
fn tolerance(dtype: &str, copy: bool) -> f64 {
    if copy {
        return 1e-200;
    }
    match dtype {
        "half" | "bfloat16" => 1e-2,
        "float" => 1e-5,
        "double" => 1e-12,
        _ => 1e-200,
    }
}

fn bad_data(m: &Metrics, row: &Row, collective: &str) -> bool {
    let copy = matches!(
        collective,
        "all_gather" | "broadcast" | "sendrecv" | "alltoall" | "alltoallv" | "gather" | "scatter"
    );
    m.wrong.is_some_and(|w| w > 0) || m.max_error.is_some_and(|e| e > tolerance(&row.dtype, copy))
}

/// What usually causes a shortfall at this size (each with the NCCL documentation that covers it).
fn causes(size: u64, multi_node: bool) -> Vec<&'static str> {
    let mut c = Vec::new();
    if size < 256 << 20 {
        c.push("algorithm/protocol forced (NCCL_ALGO/NCCL_PROTO set): NCCL's tuner picks per size; forcing belongs to measured tuning (NCCL docs: NCCL_ALGO, NCCL_PROTO)");
        c.push("too few channels/CTAs (NCCL_MAX_CTAS or legacy NCCL_MAX_NCHANNELS capped, NCCL_NTHREADS lowered; NCCL docs: NCCL_MAX_CTAS, NCCL_NTHREADS)");
    }
    if multi_node {
        c.push("GPUDirect RDMA not used for some NICs (run `nccltune verify --nccl-log`; GPU-NIC distance beyond PXB, nvidia_peermem/DMA-BUF missing; NCCL docs: NCCL_NET_GDR_LEVEL, NCCL_DMABUF_ENABLE)");
        c.push("a NIC down, slower than its peers, or left out of NCCL_IB_HCA (`nccltune verify`)");
        c.push("PCIe ACS redirection or IOMMU translation on the GPU-NIC path");
    } else {
        c.push("inactive NVLinks or a missing NVSwitch fabric (Fabric Manager) (`nccltune verify`)");
        c.push("NVLS disabled or unavailable on NVSwitch Hopper nodes (NCCL docs: NCCL_NVLS_ENABLE)");
    }
    c
}

/// Judges every run.
pub fn judge(runs: Vec<Run>, opts: &Options) -> BenchReport {
    judge_inputs(runs, &[], opts, &infer::InferOptions::default())
}

/// Judges every run, plus inputs that could not be read (source, why): each of those is an
/// error result of its own, so one bad file never hides the others. `overrides` supplies what
/// the logs lack (`--nodes`, `--ranks-per-node`, `--nics`/`--nic-gbps`).
pub fn judge_inputs(
    runs: Vec<Run>,
    input_errors: &[(String, String)],
    opts: &Options,
    overrides: &infer::InferOptions,
) -> BenchReport {
    let mut j = Judge::new(opts, overrides);
    let mut reports = Vec::new();
    let mut findings = Vec::new();
    let mut finding_runs = Vec::new();
    let mut add = |d: Judged| {
        findings.extend(d.findings);
        reports.push(d.report);
        finding_runs.resize(findings.len(), reports.len() - 1);
    };
    for run in runs {
        add(j.run(run));
    }
    for (source, why) in input_errors {
        add(j.input_error(source, why));
    }
    BenchReport {
        schema: SCHEMA,
        runs: reports,
        verdict: j.verdict().to_string(),
        rule: RULE.into(),
        findings,
        finding_runs,
    }
}

/// One judged run and the findings about it.
#[derive(Debug, Clone)]
pub struct Judged {
    pub report: RunReport,
    pub findings: Vec<Finding>,
}

/// Judges runs one at a time, as a stream delivers them, keeping only the verdict so far:
/// `judge_inputs` over a whole file and a streaming renderer give the same reports.
pub struct Judge<'a> {
    opts: &'a Options,
    overrides: &'a infer::InferOptions,
    models: Vec<infer::GpuModel>,
    failed: bool,
    judged_any: bool,
    runs: usize,
}

impl<'a> Judge<'a> {
    pub fn new(opts: &'a Options, overrides: &'a infer::InferOptions) -> Judge<'a> {
        Judge {
            opts,
            overrides,
            models: infer::models().unwrap_or_default(),
            failed: false,
            judged_any: false,
            runs: 0,
        }
    }

    /// Runs (and unreadable inputs) judged so far.
    pub fn count(&self) -> usize {
        self.runs
    }

    /// `pass`, `fail` or `unknown` (nothing judged) over everything judged so far.
    pub fn verdict(&self) -> &'static str {
        if self.failed {
            "fail"
        } else if self.judged_any {
            "pass"
        } else {
            "unknown"
        }
    }

    /// An input that could not be read: an error result of its own.
    pub fn input_error(&mut self, source: &str, why: &str) -> Judged {
        self.failed = true;
        self.runs += 1;
        Judged {
            findings: vec![
                Finding::new(BenchCode::InputError, Severity::Error, why.to_string())
                    .subject(source)
                    .fix(
                        "rerun the test and keep its whole stdout (or the -J file nccl-tests closed on exit)",
                    ),
            ],
            report: RunReport {
                run: Run {
                    source: source.to_string(),
                    format: "none".into(),
                    ..Run::default()
                },
                sizes: Vec::new(),
                targets_from: None,
                comparison: Vec::new(),
                input_error: Some(why.to_string()),
                baseline: None,
                hardware: infer::Hardware::default(),
                no_figure: None,
                peak_busbw_gbps: None,
            },
        }
    }

    /// Judges one run.
    pub fn run(&mut self, mut run: Run) -> Judged {
        let mut findings = Vec::new();
        if run.collective.is_none() {
            if let Some(c) = self
                .opts
                .collective
                .clone()
                .or_else(|| collective_from_name(&run.source))
            {
                run.collective = Some(c);
            } else if let Some(c) = infer_collective(&run) {
                run.collective = Some(c);
                run.collective_inferred = true;
            }
        }
        let collective = run.collective.clone().unwrap_or_default();
        let hardware = infer::infer(&run, self.overrides);
        let hosts = hardware.hosts.unwrap_or(0) as usize;
        // The targets for this run: given ones only when they fit it, else what the log tells.
        let mut no_figure = None;
        let run_targets: Option<Targets> = match &self.opts.targets {
            Some(t) => match infer::misfit(t, &hardware, &self.models) {
                Some(why) => {
                    self.failed = true;
                    findings.push(
                    Finding::new(BenchCode::TargetsMismatch, Severity::Error, format!("{}: {why}", run.source))
                        .subject(&run.source)
                        .fix("pick the profile or targets file for this hardware and shape, or leave it out to judge against what the log shows"),
                );
                    None
                }
                None => Some(t.clone()),
            },
            None => match infer::auto_targets(&hardware, &self.models) {
                Ok(t) => Some(t),
                Err(nf) => {
                    no_figure = Some(nf);
                    None
                }
            },
        };
        let target = run_targets.as_ref().and_then(|t| t.for_collective(&collective));
        let multi_node = run_targets
            .as_ref()
            .map_or(hosts > 1, |t| t.multi_node || hosts > 1);
        if !run.errors.is_empty() {
            self.failed = true;
            findings.push(
                Finding::new(
                    BenchCode::RunFailed,
                    Severity::Error,
                    format!("{}: {}", run.source, run.errors[0]),
                )
                .subject(&run.source),
            );
        }
        if run.truncated {
            self.failed = true;
            findings.push(
                Finding::new(
                    BenchCode::RunTruncated,
                    Severity::Error,
                    format!(
                        "{}: the run ended before its footer (`Out of bounds values` / `Avg bus bandwidth`)",
                        run.source
                    ),
                )
                .subject(&run.source)
                .fix("the job was killed, timed out or the log was cut: rerun and keep the whole output"),
            );
        }
        if run.out_of_bounds.is_some_and(|n| n > 0) {
            self.failed = true;
            findings.push(
                Finding::new(
                    BenchCode::WrongData,
                    Severity::Error,
                    format!(
                        "{}: nccl-tests reported {} out-of-bounds values",
                        run.source,
                        run.out_of_bounds.unwrap_or(0)
                    ),
                )
                .subject(&run.source),
            );
        }
        if run.min_bw_ok == Some(false) {
            findings.push(
            Finding::new(
                BenchCode::MinBwFailed,
                Severity::Warn,
                format!(
                    "{}: nccl-tests' own NCCL_TESTS_MIN_BW check failed: its average busbw over all sizes{} is below 0.9 x NCCL_TESTS_MIN_BW (and nccl-tests exits 7); this tool judges each size of at least min_bytes instead",
                    run.source,
                    run.avg_busbw_gbps.map_or(String::new(), |a| format!(" ({a} GB/s)"))
                ),
            )
            .subject(&run.source)
            .fix("small sizes pull the average down: set NCCL_TESTS_MIN_BW for a sweep of large sizes only, or judge per size here"),
        );
        }
        if hosts == 2 && collective == "all_reduce" && tree_possible(&run) {
            findings.push(Finding::new(BenchCode::TwoNodeTree, Severity::Info, "on exactly 2 nodes the default Tree/NVLSTree busbw can exceed the NIC limit and is not wire bandwidth; test the network with NCCL_ALGO=Ring (NVIDIA/nccl-tests #196, NVIDIA/nccl #812)").subject(&run.source));
        }
        if let Some(t) = target
            && t.in_switch_reduction
        {
            findings.push(Finding::new(BenchCode::InSwitchReduction, Severity::Info, format!("{collective} on NVSwitch uses NVLS by default: its busbw does not correspond to bandwidth on the wire (sjeaugey, NVIDIA/nccl-tests #212)")).subject(&run.source));
        }
        let min_bytes = run_targets.as_ref().map_or(DEFAULT_MIN_BYTES, |t| t.min_bytes);
        let fraction = run_targets.as_ref().map_or(0.9, |t| t.acceptable_fraction);
        let mut sizes = Vec::with_capacity(run.rows.len());
        for row in &run.rows {
            let m = &row.out_of_place;
            let busbw = m.busbw_gbps;
            let wrong = bad_data(m, row, &collective)
                || row
                    .in_place
                    .as_ref()
                    .is_some_and(|ip| bad_data(ip, row, &collective));
            let expected = target.map(|t| t.busbw_gbps);
            let minimum = expected.map(|e| e * fraction);
            let efficiency = match (busbw, expected) {
                (Some(b), Some(e)) if e > 0.0 => Some((b / e * 1000.0).round() / 1000.0),
                _ => None,
            };
            let status = if wrong {
                self.failed = true;
                SizeStatus::Wrong
            } else if row.size_bytes < min_bytes {
                SizeStatus::Small
            } else if m.busbw_not_finite {
                // `nan`/`inf` where a bandwidth belongs: the measurement broke (a zero time).
                self.failed = true;
                SizeStatus::Fail
            } else if let (Some(b), Some(min)) = (busbw, minimum) {
                self.judged_any = true;
                if b >= min {
                    SizeStatus::Pass
                } else {
                    self.failed = true;
                    SizeStatus::Fail
                }
            } else {
                SizeStatus::Unjudged
            };
            sizes.push(SizeVerdict {
                size_bytes: row.size_bytes,
                busbw_gbps: busbw,
                expected_gbps: if row.size_bytes >= min_bytes {
                    expected
                } else {
                    None
                },
                minimum_gbps: if row.size_bytes >= min_bytes {
                    minimum
                } else {
                    None
                },
                efficiency: if row.size_bytes >= min_bytes {
                    efficiency
                } else {
                    None
                },
                status,
                causes: if status == SizeStatus::Fail {
                    causes(row.size_bytes, multi_node)
                } else {
                    Vec::new()
                },
            });
        }
        if wrong_rows(&sizes) > 0 {
            findings.push(Finding::new(BenchCode::WrongData, Severity::Error, format!("{}: {} size(s) with wrong data (#wrong > 0, or a deviation beyond the type's tolerance)", run.source, wrong_rows(&sizes))).subject(&run.source));
        }
        let peak = sizes
            .iter()
            .filter_map(|v| v.busbw_gbps)
            .fold(None, |m: Option<f64>, b| Some(m.map_or(b, |m| m.max(b))));
        if let Some(nf) = &no_figure {
            findings.push(
                Finding::new(
                    BenchCode::NoFigure,
                    Severity::Info,
                    format!(
                        "{}: not judged on bandwidth: {}. Measured peak busbw {}{}",
                        run.source,
                        nf.why,
                        peak.map_or("-".into(), |p| format!("{p:.1} GB/s")),
                        nf.usual
                            .as_ref()
                            .map_or(String::new(), |u| format!("; the usual configuration: {u}"))
                    ),
                )
                .subject(&run.source)
                .fix(format!("for a verdict pass {}", nf.flag)),
            );
        }
        if target.is_none() && run_targets.is_some() {
            findings.push(
                Finding::new(
                    BenchCode::NoTarget,
                    Severity::Info,
                    format!(
                        "{}: no target for {}",
                        run.source,
                        if collective.is_empty() {
                            "an unknown collective"
                        } else {
                            &collective
                        }
                    ),
                )
                .subject(&run.source),
            );
        }
        let base_run = self
            .opts
            .baseline
            .as_ref()
            .and_then(|b| b.iter().find(|r| r.collective == run.collective || b.len() == 1));
        let comparison = base_run
            .map(|base| compare(base, &run, self.opts.tolerance))
            .unwrap_or_default();
        let baseline = base_run.map(|b| Baseline {
            source: b.source.clone(),
            busbw: b
                .rows
                .iter()
                .filter_map(|r| Some((r.size_bytes, r.out_of_place.busbw_gbps?)))
                .collect(),
        });
        let regressions = comparison.iter().filter(|c| c.regression).count();
        if regressions > 0 {
            self.failed = true;
            self.judged_any = true;
            findings.push(
                Finding::new(
                    BenchCode::Regression,
                    Severity::Error,
                    format!(
                        "{}: {regressions} size(s) regressed beyond {:.1}% against the baseline",
                        run.source,
                        self.opts.tolerance * 100.0
                    ),
                )
                .subject(&run.source),
            );
        } else if !comparison.is_empty() {
            self.judged_any = true;
        }
        let report = RunReport {
            targets_from: run_targets.as_ref().map(|t| t.from.clone()),
            run,
            sizes,
            comparison,
            input_error: None,
            baseline,
            hardware,
            no_figure,
            peak_busbw_gbps: peak,
        };
        self.runs += 1;
        Judged { report, findings }
    }
}

/// Whether NCCL could have used Tree/NVLSTree: `NCCL_ALGO` unset, naming a tree, or an exclusion
/// list (`^...`) that leaves one (NCCL docs, NCCL_ALGO).
fn tree_possible(run: &Run) -> bool {
    let Some(algo) = run.nccl_env.get("NCCL_ALGO") else {
        return true;
    };
    let a = algo.to_ascii_lowercase();
    match a.trim().strip_prefix('^') {
        Some(excluded) => {
            !excluded.split(',').any(|x| x.trim() == "tree")
                || !excluded.split(',').any(|x| x.trim() == "nvlstree")
        }
        None => a.trim().is_empty() || a.split(',').any(|x| matches!(x.trim(), "tree" | "nvlstree")),
    }
}

fn wrong_rows(sizes: &[SizeVerdict]) -> usize {
    sizes.iter().filter(|s| s.status == SizeStatus::Wrong).count()
}

/// Busbw below this is noise (tiny sizes print 0.00): compare time there instead.
const BANDWIDTH_FLOOR_GBPS: f64 = 1.0;

/// Per size: the change against the baseline. Regressions: busbw lower, or latency higher,
/// by more than `tolerance`.
pub fn compare(base: &Run, now: &Run, tolerance: f64) -> Vec<SizeChange> {
    let mut out = Vec::new();
    for row in &now.rows {
        let Some(b) = base
            .rows
            .iter()
            .find(|r| r.size_bytes == row.size_bytes && r.dtype == row.dtype)
        else {
            continue;
        };
        let (bm, nm) = (&b.out_of_place, &row.out_of_place);
        let change = match (bm.busbw_gbps, nm.busbw_gbps, bm.time_us, nm.time_us) {
            (Some(x), Some(y), _, _) if x >= BANDWIDTH_FLOOR_GBPS => Some(("busbw", x, y, (y - x) / x)),
            (_, _, Some(x), Some(y)) if x > 0.0 => Some(("time", x, y, (x - y) / x)),
            _ => None,
        };
        if let Some((metric, base, now, rel)) = change {
            out.push(SizeChange {
                size_bytes: row.size_bytes,
                metric: metric.into(),
                base,
                now,
                change_pct: (rel * 1000.0).round() / 10.0,
                regression: rel < -tolerance,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busbw_factors_follow_the_reference() {
        assert_eq!(busbw_factor("all_reduce", 8), Some(1.75));
        assert_eq!(busbw_factor("all_gather", 4), Some(0.75));
        assert_eq!(busbw_factor("broadcast", 8), Some(1.0));
        assert_eq!(busbw_factor("nope", 8), None);
    }

    #[test]
    fn old_error_column_is_judged_against_the_type_tolerance() {
        let row = Row {
            dtype: "float".into(),
            redop: "sum".into(),
            ..Row::default()
        };
        let ok = Metrics {
            max_error: Some(7e-7),
            ..Metrics::default()
        };
        let bad = Metrics {
            max_error: Some(3e2),
            ..Metrics::default()
        };
        assert!(!bad_data(&ok, &row, "all_reduce"));
        assert!(bad_data(&bad, &row, "all_reduce"));
        let copy = Metrics {
            max_error: Some(1e-7),
            ..Metrics::default()
        };
        assert!(
            bad_data(&copy, &row, "all_gather"),
            "copies tolerate no deviation"
        );
    }

    #[test]
    fn names_give_the_collective() {
        assert_eq!(
            collective_from_name("out/all_reduce_perf.log").as_deref(),
            Some("all_reduce")
        );
        assert_eq!(
            collective_from_name("rs-reduce-scatter.txt").as_deref(),
            Some("reduce_scatter")
        );
        assert_eq!(collective_from_name("results.txt"), None);
    }
}
