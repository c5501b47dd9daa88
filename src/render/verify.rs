//! Renderers for `verify`: table (people), Prometheus text exposition (node_exporter's
//! textfile collector), JUnit XML (CI dashboards). JSON is `render::json` of the model.

use crate::verify::{Check, Status, VerifyReport};

pub fn to_table(r: &VerifyReport) -> String {
    // Captured text (host name, subjects, messages) is escaped on the way in (`\x1b` shown,
    // not obeyed); the table's own colour escapes come after, so they are not escaped too.
    let safe = |t: &str| super::text::sanitize(t).into_owned();
    let rows = r
        .checks
        .iter()
        .map(|c| {
            vec![
                c.level.as_str().to_uppercase(),
                c.code.to_string(),
                safe(&c.subject),
                safe(&c.message),
            ]
        })
        .collect();
    let layout = super::table::Layout::from_env();
    // Folded like the summary: the source is a path of any length, and the header must
    // keep to the terminal's width like every other line.
    let mut out = super::table::fold(
        "nccltune verify: ",
        &safe(&format!(
            "{} ({})",
            r.hostname.as_deref().unwrap_or("unknown host"),
            r.source
        )),
        layout,
    );
    out.push_str(&result_table(rows));
    let fixes: Vec<&Check> = r
        .checks
        .iter()
        .filter(|c| matches!(c.level, Status::Fail | Status::Warn) && !c.fix.is_empty())
        .collect();
    if !fixes.is_empty() {
        out.push_str("\nFixes:\n");
        for c in fixes {
            let head = safe(&format!("  {} {} {}: ", c.level, c.code, c.subject));
            out.push_str(&super::table::fold(&head, &safe(&c.fix), layout));
        }
    }
    let s = &r.summary;
    let summary = format!(
        "{}: {} pass, {} warn, {} fail, {} skipped ({} could not see){}{}",
        if r.ok { "OK" } else { "FAIL" },
        s.pass,
        s.warn,
        s.fail,
        s.skip,
        r.evidence.not_run,
        if r.evidence.unseen.is_empty() {
            String::new()
        } else {
            let g: Vec<&str> = r.evidence.unseen.iter().map(|g| g.as_str()).collect();
            format!("; saw nothing for {}", g.join(", "))
        },
        if r.strict { " (strict: warnings fail)" } else { "" }
    );
    out.push('\n');
    out.push_str(&super::table::fold("", &summary, layout));
    out
}

/// The checks table, with the result column wrapped so that it fits a terminal.
fn result_table(rows: Vec<Vec<String>>) -> String {
    // Width-aware (`$COLUMNS` or the terminal), ASCII borders outside UTF-8 locales.
    super::table::table(&["status", "check", "subject", "result"], rows)
}

/// The five states in the order a dashboard lists them.
const STATES: [&str; 5] = ["pass", "info", "warn", "fail", "skip"];

/// Prometheus text through `render::prometheus`: one series per check and state
/// (`nccltune_check{check,subject,status}` 1 for the current state, 0 for the others), the
/// counts by status, `nccltune_verify_ok` and `nccltune_build_info`.
pub fn to_prometheus(r: &VerifyReport) -> String {
    use super::prometheus::{Family, build_info, render};
    let mut checks = Family::gauge(
        "nccltune_check",
        "State of one nccltune verify check: 1 for the current status, 0 for the others.",
    );
    for c in &r.checks {
        checks.push_state(
            &[("check", c.code.as_str()), ("subject", &c.subject)],
            &STATES,
            c.level.as_str(),
        );
    }
    let mut counts = Family::gauge(
        "nccltune_verify_checks",
        "Number of nccltune verify checks by status.",
    );
    let s = &r.summary;
    for (name, n) in STATES.iter().zip([s.pass, s.info, s.warn, s.fail, s.skip]) {
        counts.push(&[("status", name)], n as f64);
    }
    let mut ok = Family::gauge(
        "nccltune_verify_ok",
        "1 when no check failed (with --strict: and none warned), else 0.",
    );
    ok.push(&[], f64::from(u8::from(r.ok)));
    render(&[checks, counts, ok, build_info(env!("CARGO_PKG_VERSION"))])
}

/// JUnit through `render::junit`, timestamped now.
pub fn to_junit(r: &VerifyReport) -> String {
    to_junit_at(r, &super::meta::Meta::now())
}

/// JUnit through `render::junit`: one case per check; a failure (or, with `strict`, a
/// warning) is a `<failure>`, a skip `<skipped>`, a tolerated warning a pass with its text.
pub fn to_junit_at(r: &VerifyReport, meta: &super::meta::Meta) -> String {
    use super::junit::{Case, Outcome, Suite, render};
    let host = r.hostname.as_deref().unwrap_or("unknown host");
    let cases = r
        .checks
        .iter()
        .map(|c| {
            let body = format!("{}\nevidence: {}\nfix: {}", c.message, c.evidence_text(), c.fix);
            let failed = c.is_no(r.strict);
            let (outcome, system_out) = match c.level {
                _ if failed => (
                    Outcome::Failure {
                        kind: c.level.to_string(),
                        message: c.message.clone(),
                        detail: body,
                    },
                    None,
                ),
                Status::Skip => (
                    Outcome::Skipped {
                        message: c.message.clone(),
                    },
                    None,
                ),
                Status::Warn => (Outcome::Pass, Some(format!("warn: {body}"))),
                _ => (Outcome::Pass, None),
            };
            Case {
                classname: format!("nccltune.verify.{}", c.group),
                name: format!("{} {}", c.code, c.subject),
                time_s: 0.0,
                outcome,
                system_out,
            }
        })
        .collect();
    render(&Suite {
        name: format!("nccltune verify {host}"),
        timestamp: meta.generated_at.clone(),
        time_s: 0.0,
        properties: vec![
            ("hostname".into(), host.into()),
            ("source".into(), r.source.clone()),
            ("nccltune_version".into(), meta.nccltune_version.clone()),
        ],
        cases,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn escaping() {
        assert_eq!(
            super::super::prometheus::label_escape("a\"b\\c\nd"),
            "a\\\"b\\\\c\\nd"
        );
        assert_eq!(
            super::super::junit::attr("<a & 'b'>\u{1}"),
            "&lt;a &amp; &apos;b&apos;&gt;"
        );
    }
}
