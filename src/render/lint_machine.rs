//! `lint` in the machine formats code-review and CI tools read: SARIF 2.1.0 (`render::sarif`)
//! and JUnit (`render::junit`). Only the mapping lives here; the writers own the formats.

use super::junit::{self, Case, Outcome, Suite};
use super::meta::Meta;
use super::sarif::{self, Level};
use crate::finding::Severity;
use crate::lint::{LintFinding, LintReport};

/// `file:line` → (`file`, `line`); `environment` (the process environment) → no file.
fn split_location(loc: &str) -> (Option<String>, Option<u64>) {
    if loc == "environment" || loc.is_empty() {
        return (None, None);
    }
    match loc.rsplit_once(':') {
        Some((file, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => {
            (Some(file.to_string()), line.parse().ok())
        }
        _ => (Some(loc.to_string()), None),
    }
}

fn text(f: &LintFinding) -> String {
    if f.fix.is_empty() {
        f.message.clone()
    } else {
        format!("{} Fix: {}", f.message, f.fix)
    }
}

/// SARIF: one rule per finding code, one result per finding, at its file and line.
pub fn to_sarif(r: &LintReport, meta: &Meta) -> String {
    let results = r
        .findings
        .iter()
        .map(|f| {
            let (file, line) = split_location(&f.location());
            sarif::Finding {
                rule_id: f.code.to_string(),
                level: match f.level {
                    Severity::Error => Level::Error,
                    Severity::Warn => Level::Warning,
                    Severity::Info | Severity::Pass | Severity::Skip => Level::Note,
                },
                message: text(f),
                file,
                line,
                logical: (!f.subject.is_empty()).then(|| f.subject.clone()),
            }
        })
        .collect();
    sarif::render(&sarif::Log {
        tool_version: meta.nccltune_version.clone(),
        rules: Vec::new(),
        results,
        end_time_utc: meta.generated_at.clone(),
        successful: true,
    })
}

/// JUnit: one case per finding (errors, and with `strict` warnings, fail), plus one passing
/// case per source with no finding, so a clean file still shows up as a test.
pub fn to_junit(r: &LintReport, strict: bool, meta: &Meta) -> String {
    let mut cases: Vec<Case> = r
        .findings
        .iter()
        .map(|f| {
            let failed = f.level == Severity::Error || (strict && f.level == Severity::Warn);
            Case {
                classname: format!("nccltune.lint.{}", f.code),
                name: format!("{} {}", f.subject, f.location()),
                time_s: 0.0,
                outcome: if failed {
                    Outcome::Failure {
                        kind: f.level.to_string(),
                        message: f.message.clone(),
                        detail: text(f),
                    }
                } else {
                    Outcome::Pass
                },
                system_out: (!failed).then(|| format!("{}: {}", f.level, text(f))),
            }
        })
        .collect();
    for src in &r.sources {
        let mentioned = r
            .findings
            .iter()
            .any(|f| f.location() == *src || f.location().rsplit_once(':').is_some_and(|(a, _)| a == src));
        if !mentioned {
            cases.push(Case {
                classname: "nccltune.lint.source".into(),
                name: src.clone(),
                time_s: 0.0,
                outcome: Outcome::Pass,
                system_out: None,
            });
        }
    }
    junit::render(&Suite {
        name: "nccltune lint".into(),
        timestamp: meta.generated_at.clone(),
        time_s: 0.0,
        properties: vec![("nccltune_version".into(), meta.nccltune_version.clone())],
        cases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_split_at_the_last_colon_only_before_digits() {
        assert_eq!(
            split_location("a:b/job.sh:12"),
            (Some("a:b/job.sh".into()), Some(12))
        );
        assert_eq!(
            split_location("/etc/nccl.conf"),
            (Some("/etc/nccl.conf".into()), None)
        );
        assert_eq!(split_location("x:"), (Some("x:".into()), None));
        assert_eq!(split_location("environment"), (None, None));
    }
}
