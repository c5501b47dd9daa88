//! The bench report as a table (with a compact busbw bar per size) and CSV. JSON goes through
//! `render::json`.

use crate::bench::BenchReport;
use std::fmt::Write;

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.2}"))
}

pub fn to_table(r: &BenchReport) -> String {
    let mut s = String::new();
    for run in &r.runs {
        let rr = &run.run;
        if let Some(e) = &run.input_error {
            let _ = writeln!(s, "not read: {e}\n");
            continue;
        }
        let _ = writeln!(
            s,
            "{}: {}{}, {} ranks, NCCL {}, format {}{}",
            rr.source,
            rr.collective.as_deref().unwrap_or("unknown collective"),
            if rr.collective_inferred { " (inferred)" } else { "" },
            rr.nranks.map_or("?".into(), |n| n.to_string()),
            rr.nccl_version.as_deref().unwrap_or("?"),
            rr.format,
            run.targets_from
                .as_ref()
                .map_or(String::new(), |t| format!("; targets: {t}"))
        );
        for a in &run.hardware.assumptions {
            let _ = writeln!(s, "  assumed: {a}");
        }
        if let Some(nf) = &run.no_figure {
            let _ = writeln!(
                s,
                "  no figure: {}; measured peak {} GB/s{}; for a verdict pass {}",
                nf.why,
                num(run.peak_busbw_gbps),
                nf.usual
                    .as_ref()
                    .map_or(String::new(), |u| format!(" (usual: {u})")),
                nf.flag
            );
        }
        let max = run
            .sizes
            .iter()
            .filter_map(|v| v.busbw_gbps)
            .fold(0.0_f64, f64::max);
        let rows = rr
            .rows
            .iter()
            .zip(&run.sizes)
            .map(|(row, v)| {
                let bar_len = match v.busbw_gbps {
                    Some(b) if max > 0.0 => ((b / max) * 20.0).round() as usize,
                    _ => 0,
                };
                vec![
                    human(row.size_bytes),
                    row.dtype.clone(),
                    num(row.out_of_place.time_us),
                    num(row.out_of_place.algbw_gbps),
                    num(v.busbw_gbps),
                    num(v.expected_gbps),
                    v.efficiency.map_or("-".into(), |e| format!("{:.0}%", e * 100.0)),
                    v.status.clone(),
                    "#".repeat(bar_len),
                ]
            })
            .collect();
        s.push_str(&super::table(
            &[
                "size", "type", "time us", "algbw", "busbw", "expected", "eff", "status", "busbw",
            ],
            rows,
        ));
        for v in run.sizes.iter().filter(|v| v.status == "fail").take(1) {
            let _ = writeln!(s, "Usual causes of a shortfall at {}:", human(v.size_bytes));
            for c in &v.causes {
                let _ = writeln!(s, "  - {c}");
            }
        }
        if !run.comparison.is_empty() {
            let rows = run
                .comparison
                .iter()
                .map(|c| {
                    vec![
                        human(c.size_bytes),
                        c.metric.clone(),
                        format!("{:.2}", c.base),
                        format!("{:.2}", c.now),
                        format!("{:+.1}%", c.change_pct),
                        if c.regression {
                            "REGRESSION".into()
                        } else {
                            "ok".into()
                        },
                    ]
                })
                .collect();
            s.push_str(&super::table(
                &["size", "metric", "baseline", "now", "change", ""],
                rows,
            ));
        }
        s.push('\n');
    }
    s.push_str(&super::findings(&r.findings));
    let _ = writeln!(s, "rule: {}", r.rule);
    let _ = writeln!(s, "verdict: {}", r.verdict);
    terminal_safe(&s)
}

/// Host names, device names and settings come from the log: no control character (an escape
/// sequence would drive the terminal) reaches the output.
fn terminal_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// One CSV field: quoted when it holds a separator, quote or line break; text that a spreadsheet
/// would run as a formula (`=`, `+`, `-`, `@` first) is prefixed with `'`.
fn csv_text(v: &str) -> String {
    let v = terminal_safe(v);
    let v = if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

pub fn to_csv(r: &BenchReport) -> String {
    let mut s = String::from(
        "source,collective,size_bytes,type,redop,root,time_us,algbw_gbps,busbw_gbps,wrong,expected_gbps,efficiency,status\n",
    );
    for run in &r.runs {
        for (row, v) in run.run.rows.iter().zip(&run.sizes) {
            let o = |x: Option<f64>| x.map_or(String::new(), |v| v.to_string());
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_text(&run.run.source),
                csv_text(run.run.collective.as_deref().unwrap_or("")),
                row.size_bytes,
                csv_text(&row.dtype),
                csv_text(&row.redop),
                row.root,
                o(row.out_of_place.time_us),
                o(row.out_of_place.algbw_gbps),
                o(row.out_of_place.busbw_gbps),
                row.out_of_place.wrong.map_or(String::new(), |w| w.to_string()),
                o(v.expected_gbps),
                o(v.efficiency),
                csv_text(&v.status)
            );
        }
    }
    s
}

/// From this many runs on, the default table summarises (one table per group of runs).
pub const SUMMARY_MIN_RUNS: usize = 8;

/// One size of a group: (size, type), busbw values, expected figure, runs per status.
type SizeAgg = ((u64, String), Vec<f64>, Option<f64>, Vec<(String, usize)>);

/// Run numbers as compact ranges: `1-5, 9`.
fn ranges(ids: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        let mut end = start;
        while i + 1 < ids.len() && ids[i + 1] == end + 1 {
            i += 1;
            end = ids[i];
        }
        out.push(if end == start {
            format!("#{start}")
        } else {
            format!("#{start}-#{end}")
        });
        i += 1;
    }
    out.join(", ")
}

/// The table for a log of many runs: one table per (collective, ranks, hosts) group with
/// per-size min/median/max busbw and the group's verdict, then each repeated finding once
/// with a count and the runs it concerns. Runs are numbered from 1 in report order.
pub fn to_summary_table(r: &BenchReport) -> String {
    type Key = (String, Option<u32>, Option<u32>);
    let mut s = String::new();
    let mut groups: Vec<(Key, Vec<usize>)> = Vec::new();
    for (i, run) in r.runs.iter().enumerate() {
        if let Some(e) = &run.input_error {
            let _ = writeln!(s, "not read (#{}): {e}\n", i + 1);
            continue;
        }
        let key = (
            run.run
                .collective
                .clone()
                .unwrap_or_else(|| "unknown collective".into()),
            run.run.nranks,
            run.hardware.hosts,
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ids)) => ids.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    let _ = writeln!(
        s,
        "{} runs in {} group(s) of (collective, ranks, hosts); --runs prints every run's table",
        r.runs.len(),
        groups.len()
    );
    for ((coll, ranks, hosts), ids) in &groups {
        let numbers: Vec<usize> = ids.iter().map(|i| i + 1).collect();
        // (size, type) in first-seen order -> busbw values, expected, status counts.
        let mut sizes: Vec<SizeAgg> = Vec::new();
        let mut failed = false;
        let mut judged = false;
        for &i in ids {
            let run = &r.runs[i];
            failed |= !run.run.errors.is_empty() || run.run.truncated;
            for (row, v) in run.run.rows.iter().zip(&run.sizes) {
                let key = (row.size_bytes, row.dtype.clone());
                let idx = match sizes.iter().position(|e| e.0 == key) {
                    Some(p) => p,
                    None => {
                        sizes.push((key, Vec::new(), None, Vec::new()));
                        sizes.len() - 1
                    }
                };
                let e = &mut sizes[idx];
                if let Some(b) = v.busbw_gbps {
                    e.1.push(b);
                }
                if e.2.is_none() {
                    e.2 = v.expected_gbps;
                }
                match v.status.as_str() {
                    "fail" | "wrong" => failed = true,
                    "pass" => judged = true,
                    _ => {}
                }
                match e.3.iter_mut().find(|(st, _)| *st == v.status) {
                    Some((_, n)) => *n += 1,
                    None => e.3.push((v.status.clone(), 1)),
                }
            }
        }
        let verdict = if failed {
            "fail"
        } else if judged {
            "pass"
        } else {
            "unknown"
        };
        let _ = writeln!(
            s,
            "\n{coll}, {} ranks, {} hosts: {} run(s) ({}); verdict {verdict}",
            ranks.map_or("?".into(), |n| n.to_string()),
            hosts.map_or("?".into(), |n| n.to_string()),
            ids.len(),
            ranges(&numbers)
        );
        let rows = sizes
            .into_iter()
            .map(|((size, dtype), mut bw, expected, statuses)| {
                bw.sort_by(f64::total_cmp);
                let median = if bw.is_empty() {
                    None
                } else if bw.len() % 2 == 1 {
                    Some(bw[bw.len() / 2])
                } else {
                    Some((bw[bw.len() / 2 - 1] + bw[bw.len() / 2]) / 2.0)
                };
                vec![
                    human(size),
                    dtype,
                    num(bw.first().copied()),
                    num(median),
                    num(bw.last().copied()),
                    num(expected),
                    statuses
                        .iter()
                        .map(|(st, n)| format!("{st} {n}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect();
        s.push_str(&super::table(
            &[
                "size",
                "type",
                "busbw min",
                "median",
                "max",
                "expected",
                "status (runs)",
            ],
            rows,
        ));
    }
    s.push('\n');
    // Findings that repeat: same code, level, message (without its run prefix) and fix.
    let mut agg: Vec<(usize, Vec<usize>)> = Vec::new();
    let strip = |f: &crate::finding::Finding| -> String {
        let p = format!("{}: ", f.subject);
        f.message.strip_prefix(&p).unwrap_or(&f.message).to_string()
    };
    for (fi, f) in r.findings.iter().enumerate() {
        let run_no = r.finding_runs.get(fi).map_or(0, |i| i + 1);
        let m = strip(f);
        match agg.iter_mut().find(|(first, _)| {
            let g = &r.findings[*first];
            g.code == f.code && g.level == f.level && g.fix == f.fix && strip(g) == m
        }) {
            Some((_, runs)) => runs.push(run_no),
            None => agg.push((fi, vec![run_no])),
        }
    }
    let rows = agg
        .into_iter()
        .map(|(first, mut runs)| {
            let f = &r.findings[first];
            runs.retain(|&n| n > 0);
            runs.dedup();
            vec![
                f.level.to_string(),
                f.code.to_string(),
                runs.len().max(1).to_string(),
                ranges(&runs),
                strip(f),
                f.fix.clone(),
            ]
        })
        .collect();
    s.push_str(&super::table(
        &["level", "code", "count", "runs", "message", "fix"],
        rows,
    ));
    let _ = writeln!(s, "rule: {}", r.rule);
    let _ = writeln!(s, "verdict: {}", r.verdict);
    terminal_safe(&s)
}

/// JSON Lines: one run per line as it is written, then one summary line (schema, verdict,
/// rule, findings), so a consumer can read run by run.
pub fn write_jsonl(r: &BenchReport, out: &mut impl std::io::Write) -> std::io::Result<()> {
    for run in &r.runs {
        serde_json::to_writer(&mut *out, run)?;
        out.write_all(b"\n")?;
    }
    let summary = serde_json::json!({
        "schema": r.schema,
        "summary": true,
        "runs": r.runs.len(),
        "verdict": r.verdict,
        "rule": r.rule,
        "findings": r.findings,
    });
    serde_json::to_writer(&mut *out, &summary)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_cannot_drive_the_terminal_or_a_spreadsheet() {
        assert_eq!(terminal_safe("a\u{1b}[2Jb\n"), "a\u{FFFD}[2Jb\n");
        assert_eq!(csv_text("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_text("a,b"), "\"a,b\"");
        assert_eq!(csv_text("sum"), "sum");
    }

    #[test]
    fn run_numbers_collapse_into_ranges() {
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "#1-#3, #5, #7-#8");
        assert_eq!(ranges(&[]), "");
    }
}
