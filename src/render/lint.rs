//! The lint report as a table. JSON goes through `render::json`.

use crate::lint::LintReport;
use std::fmt::Write;

pub fn to_table(r: &LintReport) -> String {
    let mut s = super::table(
        &["severity", "code", "variable", "where", "message", "fix"],
        r.findings
            .iter()
            .map(|f| {
                vec![
                    f.level.to_string(),
                    f.code.to_string(),
                    f.subject.clone(),
                    f.location(),
                    f.message.clone(),
                    f.fix.clone(),
                ]
            })
            .collect(),
    );
    if !r.effective.is_empty() {
        s.push_str(&super::table(
            &["variable", "value NCCL will see", "from"],
            r.effective
                .iter()
                .map(|e| {
                    vec![
                        e.name.clone(),
                        e.value
                            .clone()
                            .unwrap_or_else(|| "(from the launcher's environment)".into()),
                        e.from.clone(),
                    ]
                })
                .collect(),
        ));
    }
    if r.not_listed > 0 {
        let _ = writeln!(
            s,
            "... and {} more finding(s), counted below but not listed",
            r.not_listed
        );
    }
    let _ = writeln!(
        s,
        "{} error(s), {} warning(s), {} note(s) in {}",
        r.summary.error,
        r.summary.warn,
        r.summary.info,
        if r.sources.is_empty() {
            "nothing".into()
        } else if !r.read_as.is_empty() {
            r.read_as
                .iter()
                .map(|x| format!("{} ({})", x.source, x.format))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            r.sources.join(", ")
        }
    );
    s
}
