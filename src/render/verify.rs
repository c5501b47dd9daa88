//! The verify report as a table, Prometheus text exposition (for node_exporter's textfile
//! collector) and JUnit XML (one test case per check). JSON goes through `render::json`.

use crate::verify::{Status, VerifyReport};
use std::fmt::Write;

pub fn to_table(r: &VerifyReport) -> String {
    let rows = r
        .checks
        .iter()
        .map(|c| {
            vec![
                c.status.as_str().to_uppercase(),
                c.id.clone(),
                c.subject.clone(),
                c.message.clone(),
                c.fix.clone(),
            ]
        })
        .collect();
    let mut s = super::table(&["status", "check", "subject", "result", "fix"], rows);
    let m = &r.summary;
    let _ = writeln!(
        s,
        "{} pass, {} warn, {} fail, {} skip",
        m.pass, m.warn, m.fail, m.skip
    );
    s
}

/// Escapes a Prometheus label value: backslash, double quote and newline.
fn label(v: &str) -> String {
    v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn to_prometheus(r: &VerifyReport) -> String {
    let mut s = String::new();
    s.push_str(
        "# HELP nccltune_verify_check Result of one nccltune verify check: 0 pass, 1 warn, 2 fail, 3 skip.\n",
    );
    s.push_str("# TYPE nccltune_verify_check gauge\n");
    for c in &r.checks {
        let code = match c.status {
            Status::Pass => 0,
            Status::Warn => 1,
            Status::Fail => 2,
            Status::Skip => 3,
        };
        let _ = writeln!(
            s,
            "nccltune_verify_check{{id=\"{}\",group=\"{}\",subject=\"{}\"}} {code}",
            label(&c.id),
            label(&c.group),
            label(&c.subject)
        );
    }
    s.push_str("# HELP nccltune_verify_checks Number of nccltune verify checks by status.\n");
    s.push_str("# TYPE nccltune_verify_checks gauge\n");
    let m = &r.summary;
    for (status, n) in [
        ("pass", m.pass),
        ("warn", m.warn),
        ("fail", m.fail),
        ("skip", m.skip),
    ] {
        let _ = writeln!(s, "nccltune_verify_checks{{status=\"{status}\"}} {n}");
    }
    s
}

fn xml(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 forbids are dropped rather than written.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: warnings pass (their text goes to system-out) unless `strict`, where they fail.
pub fn to_junit(r: &VerifyReport, strict: bool) -> String {
    let failures = r
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail || (strict && c.status == Status::Warn))
        .count();
    let skipped = r.summary.skip;
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let host = r.hostname.as_deref().unwrap_or("node");
    let _ = writeln!(
        s,
        "<testsuites name=\"nccltune verify\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">",
        r.checks.len()
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">",
        xml(host),
        r.checks.len()
    );
    for c in &r.checks {
        let name = if c.subject.is_empty() {
            c.id.clone()
        } else {
            format!("{} {}", c.id, c.subject)
        };
        let _ = write!(
            s,
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml(&c.group),
            xml(&name)
        );
        let detail = format!("{}\nevidence: {}\nfix: {}", c.message, c.evidence, c.fix);
        match c.status {
            Status::Pass => s.push_str("/>\n"),
            Status::Skip => {
                let _ = writeln!(
                    s,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    xml(&c.message)
                );
            }
            Status::Warn if !strict => {
                let _ = writeln!(
                    s,
                    ">\n      <system-out>warn: {}</system-out>\n    </testcase>",
                    xml(&detail)
                );
            }
            Status::Warn | Status::Fail => {
                let _ = writeln!(
                    s,
                    ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                    xml(&c.message),
                    c.status.as_str(),
                    xml(&detail)
                );
            }
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{Check, Summary};

    fn report() -> VerifyReport {
        VerifyReport {
            schema: 1,
            hostname: Some("n<1>".into()),
            source: "test".into(),
            checks: vec![
                Check::new("rdma.port-state", Status::Fail, "mlx5_\"3\":1", "Down & out").fix("a\nb"),
                Check::new("gpu.count", Status::Pass, "", "8 GPUs"),
                Check::new("pcie.acs-redirect", Status::Skip, "", "not read"),
            ],
            summary: Summary {
                pass: 1,
                warn: 0,
                fail: 1,
                skip: 1,
            },
        }
    }

    #[test]
    fn prometheus_labels_are_escaped_and_every_sample_line_is_well_formed() {
        let text = to_prometheus(&report());
        assert!(text.contains(r#"subject="mlx5_\"3\":1""#), "{text}");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').expect("value");
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(
                series.starts_with("nccltune_verify_check") && series.ends_with('}'),
                "{line}"
            );
        }
        assert!(text.contains("nccltune_verify_checks{status=\"fail\"} 1"));
    }

    #[test]
    fn junit_escapes_and_counts() {
        let x = to_junit(&report(), false);
        assert!(x.contains("failures=\"1\"") && x.contains("skipped=\"1\""));
        assert!(x.contains("Down &amp; out") && x.contains("n&lt;1&gt;"));
        assert_eq!(x.matches("<testcase").count(), 3);
    }
}
