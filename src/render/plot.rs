//! `bench --plot FILE.svg`: busbw against message size (log axis): one solid line per run, its
//! `--compare` baseline dashed in the same colour, the target band (minimum to expected) where
//! targets apply, y ticks at even steps, and the legend inside the picture. Plain SVG, no
//! dependency; every text is escaped.

use crate::bench::BenchReport;
use std::fmt::Write;

const W: f64 = 860.0;
const H: f64 = 500.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 52.0;
const COLOURS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

fn esc(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A tick step of 1, 2, 2.5 or 5 x 10^k that gives about five ticks up to `max`.
pub fn tick_step(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

fn size_label(e: i64) -> String {
    match e {
        e if e >= 30 => format!("{}G", 1u64 << (e - 30)),
        e if e >= 20 => format!("{}M", 1u64 << (e - 20)),
        e if e >= 10 => format!("{}K", 1u64 << (e - 10)),
        e => format!("{}", 1u64 << e.max(0)),
    }
}

/// One curve: label, colour, dashed, points as (log2 size, busbw).
type Series = (String, &'static str, bool, Vec<(f64, f64)>);

fn short(source: &str) -> &str {
    source.rsplit('/').next().unwrap_or(source)
}

pub fn svg(r: &BenchReport) -> String {
    let mut series: Vec<Series> = Vec::new();
    for (i, run) in r
        .runs
        .iter()
        .enumerate()
        .filter(|(_, run)| run.input_error.is_none())
    {
        let colour = COLOURS[i % COLOURS.len()];
        let pts = run
            .sizes
            .iter()
            .filter(|s| s.size_bytes > 0)
            .filter_map(|s| Some(((s.size_bytes as f64).log2(), s.busbw_gbps?)))
            .collect();
        series.push((short(&run.run.source).to_string(), colour, false, pts));
        if let Some(b) = &run.baseline {
            let pts = b
                .busbw
                .iter()
                .filter(|(s, _)| *s > 0)
                .map(|(s, v)| ((*s as f64).log2(), *v))
                .collect();
            series.push((format!("baseline {}", short(&b.source)), colour, true, pts));
        }
    }
    let all = || series.iter().flat_map(|s| s.3.iter());
    let xmin = all().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let xmin = if xmin.is_finite() { xmin.floor() } else { 3.0 };
    let xmax = all()
        .map(|p| p.0)
        .fold(f64::NEG_INFINITY, f64::max)
        .ceil()
        .max(xmin + 1.0);
    let expected = r
        .runs
        .iter()
        .flat_map(|run| run.sizes.iter().filter_map(|s| s.expected_gbps))
        .fold(0.0_f64, f64::max);
    let top_value = all().map(|p| p.1).fold(expected, f64::max).max(1.0);
    let step = tick_step(top_value);
    let ymax = (top_value / step).ceil() * step;
    let x = |v: f64| LEFT + (v - xmin) / (xmax - xmin) * (W - LEFT - RIGHT);
    let y = |v: f64| H - BOTTOM - v / ymax * (H - BOTTOM - TOP);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    );
    let _ = writeln!(s, "<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>");
    let title = r
        .runs
        .iter()
        .find_map(|run| run.run.collective.clone())
        .map_or("nccl-tests busbw".to_string(), |c| {
            format!("nccl-tests {c}: bus bandwidth by message size")
        });
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>",
        (LEFT + W - RIGHT) / 2.0,
        esc(&title)
    );
    // Even y ticks with grid lines.
    let mut v = 0.0;
    while v <= ymax + step / 1e6 {
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#e0e0e0\"/>\n<text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{4}</text>",
            y(v),
            W - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            if step.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        );
        v += step;
    }
    // Target band: minimum to expected, over the judged sizes of the first run with targets.
    let mut band = None;
    for run in &r.runs {
        let judged: Vec<_> = run
            .sizes
            .iter()
            .filter(|v| v.expected_gbps.is_some() && v.size_bytes > 0)
            .collect();
        if let (Some(first), Some(last)) = (judged.first(), judged.last())
            && let (Some(e), Some(m)) = (first.expected_gbps, first.minimum_gbps)
        {
            let x0 = x((first.size_bytes as f64).log2());
            let x1 = x((last.size_bytes as f64).log2()).max(x0 + 4.0);
            let _ = writeln!(
                s,
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2ca02c\" fill-opacity=\"0.15\"><title>target {m:.0}-{e:.0} GB/s</title></rect>",
                y(e),
                x1 - x0,
                (y(m) - y(e)).max(1.0)
            );
            band = Some((m, e));
            break;
        }
    }
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"black\"/>\n<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{0}\" stroke=\"black\"/>",
        H - BOTTOM,
        W - RIGHT
    );
    let span = xmax - xmin;
    let every = if span <= 12.0 {
        1
    } else if span <= 24.0 {
        2
    } else {
        4
    };
    let mut e = xmin as i64;
    while (e as f64) <= xmax {
        if e % every == 0 {
            let _ = writeln!(
                s,
                "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"black\"/>\n<text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>",
                x(e as f64),
                H - BOTTOM,
                H - BOTTOM + 4.0,
                H - BOTTOM + 18.0,
                size_label(e)
            );
        }
        e += 1;
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">message size (bytes, log scale)</text>",
        (LEFT + W - RIGHT) / 2.0,
        H - 12.0
    );
    let _ = writeln!(
        s,
        "<text x=\"18\" y=\"{0:.1}\" transform=\"rotate(-90 18 {0:.1})\" text-anchor=\"middle\">busbw (GB/s)</text>",
        (TOP + H - BOTTOM) / 2.0
    );
    for (_, colour, dashed, pts) in &series {
        let p: Vec<String> = pts
            .iter()
            .map(|(a, b)| format!("{:.1},{:.1}", x(*a), y(*b)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{} points=\"{}\"/>",
            if *dashed {
                " stroke-dasharray=\"6 4\" stroke-opacity=\"0.8\""
            } else {
                ""
            },
            p.join(" ")
        );
    }
    // The legend, inside the plot area at the top left (bandwidth curves rise to the right).
    let mut entries: Vec<(String, &str, bool, bool)> = series
        .iter()
        .map(|(l, c, d, _)| (l.clone(), *c, *d, false))
        .collect();
    if let Some((m, e)) = band {
        entries.push((format!("target {m:.0}-{e:.0} GB/s"), "#2ca02c", false, true));
    }
    let longest = entries
        .iter()
        .map(|e| e.0.chars().count().min(48))
        .max()
        .unwrap_or(0) as f64;
    let (lx, ly) = (LEFT + 12.0, TOP + 10.0);
    let lw = (longest * 7.0 + 44.0).min(W - LEFT - RIGHT - 24.0);
    let _ = writeln!(
        s,
        "<rect x=\"{lx}\" y=\"{ly}\" width=\"{lw:.1}\" height=\"{:.1}\" fill=\"white\" fill-opacity=\"0.9\" stroke=\"#999\"/>",
        16.0 * entries.len() as f64 + 8.0
    );
    for (i, (label, colour, dashed, is_band)) in entries.iter().enumerate() {
        let yy = ly + 16.0 * (i as f64 + 1.0);
        if *is_band {
            let _ = writeln!(
                s,
                "<rect x=\"{}\" y=\"{:.1}\" width=\"24\" height=\"8\" fill=\"{colour}\" fill-opacity=\"0.3\"/>",
                lx + 8.0,
                yy - 8.0
            );
        } else {
            let _ = writeln!(
                s,
                "<line x1=\"{}\" y1=\"{yy:.1}\" x2=\"{}\" y2=\"{yy:.1}\" stroke=\"{colour}\" stroke-width=\"2\"{}/>",
                lx + 8.0,
                lx + 32.0,
                if *dashed { " stroke-dasharray=\"6 4\"" } else { "" }
            );
        }
        let text: String = label.chars().take(48).collect();
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{:.1}\">{}</text>",
            lx + 38.0,
            yy + 4.0,
            esc(&text)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_even_steps() {
        assert_eq!(tick_step(480.0), 100.0);
        assert_eq!(tick_step(384.0), 100.0);
        assert_eq!(tick_step(120.0), 25.0);
        assert_eq!(tick_step(9.0), 2.0);
        assert_eq!(tick_step(0.0), 1.0);
    }
}
