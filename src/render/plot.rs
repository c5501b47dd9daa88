//! `bench --plot FILE.svg`: busbw against message size (log axis), one line per run, and the
//! target band (minimum to expected) where targets apply. Plain SVG, no dependency.

use crate::bench::BenchReport;
use std::fmt::Write;

const W: f64 = 800.0;
const H: f64 = 480.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 50.0;
const TOP: f64 = 30.0;
const RIGHT: f64 = 160.0;
const COLOURS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn svg(r: &BenchReport) -> String {
    let points: Vec<(f64, f64)> = r
        .runs
        .iter()
        .flat_map(|run| {
            run.sizes
                .iter()
                .filter(|s| s.size_bytes > 0)
                .filter_map(|s| Some(((s.size_bytes as f64).log2(), s.busbw_gbps?)))
        })
        .collect();
    let xmin = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min).min(3.0);
    let xmax = points
        .iter()
        .map(|p| p.0)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(xmin + 1.0);
    let expected = r
        .runs
        .iter()
        .flat_map(|run| run.sizes.iter().filter_map(|s| s.expected_gbps))
        .fold(0.0_f64, f64::max);
    let ymax = points.iter().map(|p| p.1).fold(expected, f64::max).max(1.0) * 1.1;
    let x = |v: f64| LEFT + (v - xmin) / (xmax - xmin) * (W - LEFT - RIGHT);
    let y = |v: f64| H - BOTTOM - v / ymax * (H - BOTTOM - TOP);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    );
    let _ = writeln!(s, "<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>");
    // Target band: minimum to expected, over the judged sizes.
    for run in r.runs.iter().take(1) {
        let judged: Vec<_> = run
            .sizes
            .iter()
            .filter(|v| v.expected_gbps.is_some() && v.size_bytes > 0)
            .collect();
        if let (Some(first), Some(last)) = (judged.first(), judged.last())
            && let (Some(e), Some(m)) = (first.expected_gbps, first.minimum_gbps)
        {
            let (x0, x1) = (
                x((first.size_bytes as f64).log2()),
                x((last.size_bytes as f64).log2()).max(x((first.size_bytes as f64).log2()) + 4.0),
            );
            let _ = writeln!(
                s,
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2ca02c\" fill-opacity=\"0.15\"><title>target {m:.0}-{e:.0} GB/s</title></rect>",
                y(e),
                x1 - x0,
                y(m) - y(e)
            );
        }
    }
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
        H - BOTTOM,
        W - RIGHT,
        H - BOTTOM
    );
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"black\"/>",
        H - BOTTOM
    );
    let mut e = xmin.ceil() as i64;
    while (e as f64) <= xmax {
        if e % 4 == 0 || xmax - xmin < 12.0 {
            let label = match e {
                e if e >= 30 => format!("{}G", 1u64 << (e - 30)),
                e if e >= 20 => format!("{}M", 1u64 << (e - 20)),
                e if e >= 10 => format!("{}K", 1u64 << (e - 10)),
                e => format!("{}", 1u64 << e.max(0)),
            };
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
                x(e as f64),
                H - BOTTOM + 18.0
            );
        }
        e += 1;
    }
    for i in 0..=4 {
        let v = ymax / 1.1 * f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.0}</text>",
            LEFT - 6.0,
            y(v) + 4.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">message size (bytes, log scale)</text>",
        (LEFT + W - RIGHT) / 2.0,
        H - 10.0
    );
    let _ = writeln!(
        s,
        "<text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" text-anchor=\"middle\">busbw (GB/s)</text>",
        H / 2.0,
        H / 2.0
    );
    for (i, run) in r.runs.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let pts: Vec<String> = run
            .sizes
            .iter()
            .filter(|v| v.size_bytes > 0)
            .filter_map(|v| {
                Some(format!(
                    "{:.1},{:.1}",
                    x((v.size_bytes as f64).log2()),
                    y(v.busbw_gbps?)
                ))
            })
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        );
        let name = run.run.source.rsplit('/').next().unwrap_or(&run.run.source);
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{}</text>",
            W - RIGHT + 8.0,
            TOP + 16.0 * (i as f64 + 1.0),
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}
