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
}
