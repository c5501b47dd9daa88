//! Renderers. Each command has one report model; the files here turn models into text
//! (tables, JSON, shell, Prometheus, JUnit). Renderers read only from report models and never
//! run probes or parse input. Shared helpers live in this file.

pub mod bench;
pub mod bench_machine;
pub mod bench_stream;
pub mod configure;
pub mod junit;
pub mod lint;
pub mod lint_machine;
pub mod meta;
pub mod node;
pub mod place;
pub mod plot;
pub mod prometheus;
pub mod sarif;
pub mod table;
pub mod text;
pub mod verify;

use tabled::builder::Builder;
use tabled::settings::Style;

/// A plain table with a header row; empty when there are no rows. Every cell goes through
/// [`text::sanitize`]: cells carry captured text (host names, OFED versions, HCA names, driver
/// messages), and an escape sequence in one must be shown, not obeyed by the terminal.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut b = Builder::default();
    b.push_record(headers.iter().map(|h| h.to_string()));
    for r in rows {
        b.push_record(r.iter().map(|c| text::sanitize(c).into_owned()));
    }
    let mut t = b.build();
    t.with(Style::sharp());
    format!("{t}\n")
}

/// Pretty JSON with a final newline.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    Ok(s)
}

/// Quotes `value` for POSIX shells: single quotes, with each `'` written as `'\''`. Inside
/// single quotes nothing is expanded, so sourcing the result can never run a command.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `Some(x)` as text, `-` for `None`.
pub fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), |x| x.to_string())
}

/// The columns every findings table has.
pub const FINDING_COLUMNS: [&str; 5] = ["level", "code", "subject", "message", "fix"];

/// One row per finding, in `FINDING_COLUMNS` order.
pub fn finding_rows(findings: &[crate::finding::Finding]) -> Vec<Vec<String>> {
    findings
        .iter()
        .map(|f| {
            vec![
                f.level.to_string(),
                f.code.to_string(),
                f.subject.clone(),
                f.message.clone(),
                f.fix.clone(),
            ]
        })
        .collect()
}

/// Findings as a table, or an empty string.
pub fn findings(findings: &[crate::finding::Finding]) -> String {
    table(&FINDING_COLUMNS, finding_rows(findings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_neutralises_everything() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn tables_have_headers_and_rows() {
        let t = table(&["a", "b"], vec![vec!["1".into(), "2".into()]]);
        assert!(t.contains('a') && t.contains('2'));
        assert_eq!(table(&["a"], vec![]), "");
    }
}
