//! JUnit XML writer for CI dashboards, from its own small input types so that any report
//! (verify checks, lint findings, bench sizes) can be mapped onto it.
//!
//! The document is one `<testsuite>` root, because that is the only shape both strict schemas
//! accept: Maven Surefire's `surefire-test-report.xsd` (maven-surefire-plugin/src/site/
//! resources/xsd/, schema version 3.0.2) declares `testsuite` as its only global element and
//! requires `name`, `tests`, `errors`, `skipped`, `failures` on it and `name`, `time` (a float)
//! on every `<testcase>`; the Jenkins xUnit plugin's `junit-10.xsd` (src/main/resources/org/
//! jenkinsci/plugins/xunit/types/model/xsd/) accepts a `testsuite` root too, allows no
//! `skipped` attribute on `<testsuites>` and writes `time` as at most three decimals. Neither
//! schema has `hostname` on both, so the host goes into `<properties>`. Inside a test case the
//! order is Surefire's: `failure`, `skipped`, `error`, then `system-out`.
//!
//! Hand-written rather than `quick-junit`: that crate always writes a `<testsuites>` root, which
//! Surefire's schema rejects, and would bring an XML writer and a date crate for ~100 lines.

use std::fmt::Write;

/// One test suite: the whole document.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    pub name: String,
    /// RFC 3339 (`xs:dateTime`), e.g. `Meta::generated_at`.
    pub timestamp: String,
    /// Seconds the whole run took.
    pub time_s: f64,
    /// `name=value` pairs: host, tool version, inputs.
    pub properties: Vec<(String, String)>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Dotted group, e.g. `nccltune.verify.rdma`.
    pub classname: String,
    pub name: String,
    /// Seconds; 0 when the check has no duration of its own.
    pub time_s: f64,
    pub outcome: Outcome,
    /// Extra text shown beside a passing or skipped case (a warning, evidence).
    pub system_out: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    /// The answer is no: `kind` is a short type (`fail`, `warn`, `error`), `detail` the body.
    Failure {
        kind: String,
        message: String,
        detail: String,
    },
    /// The check could not be carried out (not a pass, not a failure of the node).
    Error {
        kind: String,
        message: String,
        detail: String,
    },
    Skipped {
        message: String,
    },
}

impl Suite {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.cases.iter().filter(|c| f(&c.outcome)).count()
    }
}

/// The document, with an XML declaration and a final newline.
pub fn render(s: &Suite) -> String {
    let failures = s.count(|o| matches!(o, Outcome::Failure { .. }));
    let errors = s.count(|o| matches!(o, Outcome::Error { .. }));
    let skipped = s.count(|o| matches!(o, Outcome::Skipped { .. }));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{}\" timestamp=\"{}\">",
        attr(&s.name),
        s.cases.len(),
        seconds(s.time_s),
        attr(&s.timestamp),
    );
    if !s.properties.is_empty() {
        out.push_str("  <properties>\n");
        for (k, v) in &s.properties {
            let _ = writeln!(out, "    <property name=\"{}\" value=\"{}\"/>", attr(k), attr(v));
        }
        out.push_str("  </properties>\n");
    }
    for c in &s.cases {
        let _ = write!(
            out,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
            attr(&c.classname),
            attr(&c.name),
            seconds(c.time_s)
        );
        let mut body = String::new();
        match &c.outcome {
            Outcome::Pass => {}
            Outcome::Failure {
                kind,
                message,
                detail,
            } => element(&mut body, "failure", kind, message, detail),
            Outcome::Skipped { message } => {
                let _ = writeln!(body, "    <skipped message=\"{}\"/>", attr(message));
            }
            Outcome::Error {
                kind,
                message,
                detail,
            } => element(&mut body, "error", kind, message, detail),
        }
        if let Some(text) = &c.system_out {
            let _ = writeln!(body, "    <system-out>{}</system-out>", text_escape(text));
        }
        if body.is_empty() {
            out.push_str("/>\n");
        } else {
            out.push_str(">\n");
            out.push_str(&body);
            out.push_str("  </testcase>\n");
        }
    }
    out.push_str("</testsuite>\n");
    out
}

fn element(out: &mut String, tag: &str, kind: &str, message: &str, detail: &str) {
    let _ = writeln!(
        out,
        "    <{tag} type=\"{}\" message=\"{}\">{}</{tag}>",
        attr(kind),
        attr(message),
        text_escape(detail)
    );
}

/// Seconds with three decimals: a valid `xs:float` (Surefire) that also matches the Jenkins
/// schema's `SUREFIRE_TIME` pattern (digits, at most three decimals). Negative, NaN or
/// infinite durations cannot be measured ones and are written as 0.
pub fn seconds(t: f64) -> String {
    if t.is_finite() && t > 0.0 {
        format!("{t:.3}")
    } else {
        "0.000".into()
    }
}

/// Escapes text content; drops the characters XML 1.0 cannot carry at all (most C0 controls,
/// U+FFFE, U+FFFF), so that hostile input cannot make the document unreadable.
pub fn text_escape(v: &str) -> String {
    escape(v, false)
}

/// Escapes an attribute value; tab, CR and LF become character references because a parser
/// would otherwise normalise them to spaces.
pub fn attr(v: &str) -> String {
    escape(v, true)
}

fn escape(v: &str, attribute: bool) -> String {
    let mut s = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            '\t' if attribute => s.push_str("&#9;"),
            '\n' if attribute => s.push_str("&#10;"),
            '\r' => s.push_str("&#13;"),
            '\t' | '\n' => s.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, outcome: Outcome) -> Case {
        Case {
            classname: "nccltune.test".into(),
            name: name.into(),
            time_s: 0.0,
            outcome,
            system_out: None,
        }
    }

    #[test]
    fn counts_and_required_attributes() {
        let s = Suite {
            name: "n".into(),
            timestamp: "2026-01-01T00:00:00Z".into(),
            time_s: 1.23456,
            properties: vec![("hostname".into(), "h\"1".into())],
            cases: vec![
                case("a", Outcome::Pass),
                case(
                    "b",
                    Outcome::Failure {
                        kind: "fail".into(),
                        message: "m".into(),
                        detail: "d".into(),
                    },
                ),
                case("c", Outcome::Skipped { message: "s".into() }),
            ],
        };
        let x = render(&s);
        assert!(x.contains(
            "tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\" time=\"1.235\" timestamp=\"2026-01-01T00:00:00Z\""
        ));
        assert!(x.contains("value=\"h&quot;1\""));
        assert_eq!(x.matches(" time=\"0.000\"").count(), 3, "{x}");
        assert!(!x.contains("<testsuites"));
    }

    #[test]
    fn hostile_text_stays_inside_its_attribute() {
        assert_eq!(attr("a\"/><x y=\"\n\u{1}"), "a&quot;/&gt;&lt;x y=&quot;&#10;");
        assert_eq!(text_escape("]]><b>\u{FFFF}\n"), "]]&gt;&lt;b&gt;\n");
        assert_eq!(seconds(f64::NAN), "0.000");
        assert_eq!(seconds(-1.0), "0.000");
        assert_eq!(seconds(12.0), "12.000");
    }
}
