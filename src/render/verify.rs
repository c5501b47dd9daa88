//! Renderers for `verify`: table (people), Prometheus text exposition (node_exporter's
//! textfile collector), JUnit XML (CI dashboards). JSON is `render::json` of the model.

use crate::verify::{Check, Status, VerifyReport};
use std::collections::BTreeMap;
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
            ]
        })
        .collect();
    let mut out = format!(
        "nccltune verify: {} ({})\n",
        r.hostname.as_deref().unwrap_or("unknown host"),
        r.source
    );
    out.push_str(&result_table(rows));
    let fixes: Vec<&Check> = r
        .checks
        .iter()
        .filter(|c| matches!(c.status, Status::Fail | Status::Warn) && !c.fix.is_empty())
        .collect();
    if !fixes.is_empty() {
        out.push_str("\nFixes:\n");
        for c in fixes {
            let _ = writeln!(out, "  {} {} {}: {}", c.status, c.id, c.subject, c.fix);
        }
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "\n{}: {} pass, {} warn, {} fail, {} skip{}",
        if r.ok { "OK" } else { "FAIL" },
        s.pass,
        s.warn,
        s.fail,
        s.skip,
        if r.strict { " (strict: warnings fail)" } else { "" }
    );
    // The header and the fixes carry captured text too (host name, subjects).
    super::text::sanitize(&out).into_owned()
}

/// The checks table, with the result column wrapped so that it fits a terminal.
fn result_table(rows: Vec<Vec<String>>) -> String {
    use tabled::builder::Builder;
    use tabled::settings::object::Columns;
    use tabled::settings::{Modify, Style, Width};
    let mut b = Builder::default();
    b.push_record(["status", "check", "subject", "result"].map(String::from));
    for r in rows {
        b.push_record(r.iter().map(|c| super::text::sanitize(c).into_owned()));
    }
    let mut t = b.build();
    t.with(Style::sharp())
        .with(Modify::new(Columns::one(3)).with(Width::wrap(90).keep_words(true)));
    format!("{t}\n")
}

/// Escapes a label value for the Prometheus text exposition format: backslash, double quote
/// and line feed are the three characters that must be escaped.
pub fn prom_escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn status_value(s: Status) -> u8 {
    match s {
        Status::Pass => 0,
        Status::Warn => 1,
        Status::Fail => 2,
        Status::Skip => 3,
    }
}

/// Makes `(id, subject)` unique so that no two samples share a label set (which Prometheus
/// rejects): a repeated subject gets `#2`, `#3`, ...
fn unique_subjects(checks: &[Check]) -> Vec<String> {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    checks
        .iter()
        .map(|c| {
            let n = seen.entry((c.id.clone(), c.subject.clone())).or_insert(0);
            *n += 1;
            if *n == 1 {
                c.subject.clone()
            } else {
                format!("{}#{n}", c.subject)
            }
        })
        .collect()
}

pub fn to_prometheus(r: &VerifyReport) -> String {
    let mut out = String::new();
    out.push_str(
        "# HELP nccltune_verify_check Result of one nccltune verify check: 0 pass, 1 warn, 2 fail, 3 skip.\n",
    );
    out.push_str("# TYPE nccltune_verify_check gauge\n");
    for (c, subject) in r.checks.iter().zip(unique_subjects(&r.checks)) {
        let _ = writeln!(
            out,
            "nccltune_verify_check{{id=\"{}\",group=\"{}\",subject=\"{}\"}} {}",
            prom_escape(&c.id),
            prom_escape(&c.group),
            prom_escape(&subject),
            status_value(c.status)
        );
    }
    out.push_str("# HELP nccltune_verify_checks Number of nccltune verify checks by status.\n");
    out.push_str("# TYPE nccltune_verify_checks gauge\n");
    let s = &r.summary;
    for (name, n) in [
        ("pass", s.pass),
        ("warn", s.warn),
        ("fail", s.fail),
        ("skip", s.skip),
    ] {
        let _ = writeln!(out, "nccltune_verify_checks{{status=\"{name}\"}} {n}");
    }
    out.push_str(
        "# HELP nccltune_verify_ok 1 when no check failed (with --strict: and none warned), else 0.\n",
    );
    out.push_str("# TYPE nccltune_verify_ok gauge\n");
    let _ = writeln!(out, "nccltune_verify_ok {}", u8::from(r.ok));
    out
}

/// Escapes text for XML 1.0 content and attribute values; drops the control characters XML
/// 1.0 cannot carry at all.
pub fn xml_escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            '\t' | '\n' | '\r' => s.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => s.push(c),
        }
    }
    s
}

pub fn to_junit(r: &VerifyReport) -> String {
    let failed = |c: &Check| c.status == Status::Fail || (r.strict && c.status == Status::Warn);
    let failures = r.checks.iter().filter(|c| failed(c)).count();
    let skipped = r.summary.skip;
    let tests = r.checks.len();
    let host = r.hostname.as_deref().unwrap_or("unknown host");
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"nccltune verify\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"nccltune verify {}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">",
        xml_escape(host)
    );
    for c in &r.checks {
        let _ = write!(
            out,
            "    <testcase classname=\"nccltune.verify.{}\" name=\"{} {}\"",
            xml_escape(&c.group),
            xml_escape(&c.id),
            xml_escape(&c.subject)
        );
        let body = format!("{}\nevidence: {}\nfix: {}", c.message, c.evidence, c.fix);
        if failed(c) {
            let _ = writeln!(
                out,
                ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                c.status,
                xml_escape(&c.message),
                xml_escape(&body)
            );
        } else if c.status == Status::Skip {
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                xml_escape(&c.message)
            );
        } else if c.status == Status::Warn {
            let _ = writeln!(
                out,
                ">\n      <system-out>warn: {}</system-out>\n    </testcase>",
                xml_escape(&body)
            );
        } else {
            out.push_str("/>\n");
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(prom_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(xml_escape("<a & 'b'>\u{1}"), "&lt;a &amp; &apos;b&apos;&gt;");
    }
}
