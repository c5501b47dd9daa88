//! `bench` in the machine formats dashboards and CI read: Prometheus (`render::prometheus`:
//! busbw per collective and size, the state of each size, the verdict) and JUnit
//! (`render::junit`: one case per size, with nccl-tests' own time). Only the mapping lives
//! here; the writers own the formats and `render::bench` owns the table and CSV.

use super::junit::{self, Case, Outcome, Suite};
use super::meta::Meta;
use super::prometheus::{Family, build_info, render};
use crate::bench::BenchReport;
use crate::finding::Severity;

/// Every status `SizeVerdict::status` takes (see `bench::SizeVerdict`).
const SIZE_STATES: [&str; 5] = ["pass", "fail", "small", "wrong", "unjudged"];
/// Every value `BenchReport::verdict` takes.
const VERDICTS: [&str; 3] = ["pass", "fail", "unknown"];
/// nccl-tests reports GB/s with GB = 10^9 bytes (nccl-tests src/common.cu: `/ 1.0E9`);
/// Prometheus wants base units.
const GB: f64 = 1.0e9;

fn collective(c: &Option<String>) -> String {
    c.clone().unwrap_or_else(|| "unknown".into())
}

/// Prometheus text: `nccltune_bench_busbw_bytes_per_second` and
/// `nccltune_bench_expected_busbw_bytes_per_second` per run, collective and size (out of
/// place, as judged), `nccltune_bench_size{…,status}` one series per state,
/// `nccltune_bench_verdict{status}`, and `nccltune_build_info`.
pub fn to_prometheus(r: &BenchReport) -> String {
    let mut busbw = Family::gauge(
        "nccltune_bench_busbw_bytes_per_second",
        "Bus bandwidth nccl-tests measured (out of place), per run, collective and size.",
    );
    let mut expected = Family::gauge(
        "nccltune_bench_expected_busbw_bytes_per_second",
        "Bus bandwidth the targets expect, per run, collective and size.",
    );
    let mut state = Family::gauge(
        "nccltune_bench_size",
        "Verdict on one size of one run: 1 for the current status, 0 for the others.",
    );
    for run in &r.runs {
        let coll = collective(&run.run.collective);
        for v in &run.sizes {
            let size = v.size_bytes.to_string();
            let labels = [
                ("run", run.run.source.as_str()),
                ("collective", coll.as_str()),
                ("size_bytes", size.as_str()),
            ];
            if let Some(b) = v.busbw_gbps {
                busbw.push(&labels, b * GB);
            }
            if let Some(e) = v.expected_gbps {
                expected.push(&labels, e * GB);
            }
            state.push_state(&labels, &SIZE_STATES, v.status.as_str());
        }
    }
    let mut verdict = Family::gauge(
        "nccltune_bench_verdict",
        "Verdict of nccltune bench: 1 for the current one (pass, fail, unknown), 0 for the others.",
    );
    verdict.push_state(&[], &VERDICTS, &r.verdict);
    render(&[
        busbw,
        expected,
        state,
        verdict,
        build_info(env!("CARGO_PKG_VERSION")),
    ])
}

/// JUnit: one case per run and size (`fail` and `wrong` fail; `small` and `unjudged` are
/// skipped: not judged on bandwidth), timed with nccl-tests' out-of-place time; one case per
/// finding (errors fail: a failed or cut run; others pass with their text).
pub fn to_junit(r: &BenchReport, meta: &Meta) -> String {
    let mut cases = Vec::new();
    for run in &r.runs {
        let coll = collective(&run.run.collective);
        for (i, v) in run.sizes.iter().enumerate() {
            let time_us = run
                .run
                .rows
                .get(i)
                .filter(|row| row.size_bytes == v.size_bytes)
                .and_then(|row| row.out_of_place.time_us);
            let o = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.2}"));
            let detail = format!(
                "busbw {} GB/s, expected {} GB/s, minimum {} GB/s{}",
                o(v.busbw_gbps),
                o(v.expected_gbps),
                o(v.minimum_gbps),
                if v.causes.is_empty() {
                    String::new()
                } else {
                    format!("\nusual causes: {}", v.causes.join("; "))
                }
            );
            let outcome = match v.status.as_str() {
                "fail" | "wrong" => Outcome::Failure {
                    kind: v.status.to_string(),
                    message: format!(
                        "{coll} {} B: {}",
                        v.size_bytes,
                        detail.lines().next().unwrap_or("")
                    ),
                    detail: detail.clone(),
                },
                "small" | "unjudged" => Outcome::Skipped {
                    message: format!("{}: {detail}", v.status),
                },
                _ => Outcome::Pass,
            };
            cases.push(Case {
                classname: format!("nccltune.bench.{coll}"),
                name: format!("{} B {}", v.size_bytes, run.run.source),
                time_s: time_us.map_or(0.0, |t| t / 1.0e6),
                system_out: matches!(outcome, Outcome::Pass).then_some(detail),
                outcome,
            });
        }
    }
    for f in &r.findings {
        let failed = f.level == Severity::Error;
        let text = if f.fix.is_empty() {
            f.message.clone()
        } else {
            format!("{} Fix: {}", f.message, f.fix)
        };
        cases.push(Case {
            classname: format!("nccltune.bench.finding.{}", f.code),
            name: if f.subject.is_empty() {
                f.code.to_string()
            } else {
                f.subject.clone()
            },
            time_s: 0.0,
            outcome: if failed {
                Outcome::Failure {
                    kind: f.level.to_string(),
                    message: f.message.clone(),
                    detail: text.clone(),
                }
            } else {
                Outcome::Pass
            },
            system_out: (!failed).then(|| format!("{}: {text}", f.level)),
        });
    }
    junit::render(&Suite {
        name: "nccltune bench".into(),
        timestamp: meta.generated_at.clone(),
        time_s: 0.0,
        properties: vec![
            ("nccltune_version".into(), meta.nccltune_version.clone()),
            ("verdict".into(), r.verdict.clone()),
        ],
        cases,
    })
}
