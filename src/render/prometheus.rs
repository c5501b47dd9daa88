//! Prometheus text exposition (format 0.0.4) writer, for node_exporter's textfile collector
//! and anything that scrapes a file. Its own input types, so every report maps onto it.
//!
//! Rules it keeps (Prometheus docs, "Exposition formats" and "Metric and label naming"):
//! metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*` and label names `[a-zA-Z_][a-zA-Z0-9_]*`
//! without a leading `__`, and anything else is rewritten with `_`; label values escape `\`,
//! `"` and line feed; each family has one `# HELP` and one `# TYPE` line before its samples;
//! no two samples of a family share a label set (a repeat gets `#2`, `#3`, ... on its last
//! label value rather than being dropped, so no measurement is lost). A state is written the
//! way an enum is usually exposed: one series per possible state, 1 for the current one and 0
//! for the others, so that `nccltune_check{status="fail"} == 1` selects failures and a check
//! that disappears is visible as a missing series.

use std::collections::BTreeSet;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Family {
    pub fn gauge(name: &str, help: &str) -> Family {
        Family {
            name: name.into(),
            help: help.into(),
            kind: Kind::Gauge,
            samples: Vec::new(),
        }
    }

    /// Adds one sample; labels are `(name, value)` pairs.
    pub fn push(&mut self, labels: &[(&str, &str)], value: f64) {
        self.samples.push(Sample {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        });
    }

    /// One series per state of `states` for the thing named by `labels`: 1 for `current`,
    /// 0 for the others, each with a `status` label.
    /// A thing named twice (two checks with one id and subject) gets `#2`, `#3`, ... on its
    /// last identifying label, so its states stay apart from the first one's.
    pub fn push_state(&mut self, labels: &[(&str, &str)], states: &[&str], current: &str) {
        let mut ident: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let taken = |ident: &[(String, String)], samples: &[Sample]| {
            samples.iter().any(|s| {
                s.labels.len() == ident.len() + 1
                    && s.labels[..ident.len()] == *ident
                    && s.labels[ident.len()].0 == "status"
            })
        };
        if let Some(base) = ident.last().map(|(_, v)| v.clone()) {
            let mut n = 1;
            while taken(&ident, &self.samples) {
                n += 1;
                if let Some(last) = ident.last_mut() {
                    last.1 = format!("{base}#{n}");
                }
            }
        }
        for s in states {
            let mut l = ident.clone();
            l.push(("status".to_string(), s.to_string()));
            self.samples.push(Sample {
                labels: l,
                value: f64::from(u8::from(*s == current)),
            });
        }
    }
}

/// `nccltune_build_info{version="…"} 1`: the usual way to expose a build's version.
pub fn build_info(version: &str) -> Family {
    let mut f = Family::gauge(
        "nccltune_build_info",
        "Version of the nccltune that wrote this file; always 1.",
    );
    f.push(&[("version", version)], 1.0);
    f
}

/// The exposition text of `families`, each family once (a repeated name is merged into the
/// first so the file stays valid).
pub fn render(families: &[Family]) -> String {
    let mut merged: Vec<Family> = Vec::new();
    for f in families {
        let name = metric_name(&f.name);
        match merged.iter_mut().find(|m| m.name == name) {
            Some(m) => m.samples.extend(f.samples.iter().cloned()),
            None => merged.push(Family { name, ..f.clone() }),
        }
    }
    let mut out = String::new();
    for f in &merged {
        let _ = writeln!(out, "# HELP {} {}", f.name, help_escape(&f.help));
        let _ = writeln!(
            out,
            "# TYPE {} {}",
            f.name,
            match f.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
            }
        );
        let mut seen: BTreeSet<Vec<(String, String)>> = BTreeSet::new();
        for s in &f.samples {
            let mut labels: Vec<(String, String)> =
                s.labels.iter().map(|(k, v)| (label_name(k), v.clone())).collect();
            let base = labels.last().map(|(_, v)| v.clone());
            let mut n = 1;
            while !seen.insert(labels.clone()) {
                n += 1;
                match (labels.last_mut(), &base) {
                    (Some(last), Some(b)) => last.1 = format!("{b}#{n}"),
                    _ => break, // a repeated sample with no labels: keep the first only
                }
            }
            if n > 1 && labels.is_empty() {
                continue;
            }
            out.push_str(&f.name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", label_escape(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", value(s.value));
        }
    }
    out
}

fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// A valid metric name: invalid characters become `_`, a leading digit gets a `_` before it.
pub fn metric_name(n: &str) -> String {
    sanitise(n, true)
}

/// A valid label name; a reserved leading `__` is reduced to one `_`.
pub fn label_name(n: &str) -> String {
    let s = sanitise(n, false);
    match s.strip_prefix("__") {
        Some(rest) => format!("_{rest}"),
        None => s,
    }
}

fn sanitise(n: &str, colon: bool) -> String {
    let mut s: String = n
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Label values: `\` → `\\`, `"` → `\"`, line feed → `\n`.
pub fn label_escape(v: &str) -> String {
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

/// HELP text: `\` → `\\`, line feed → `\n` (quotes are allowed there).
fn help_escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_one_series_each() {
        let mut f = Family::gauge("nccltune_check", "h");
        f.push_state(
            &[("check", "gpu.count"), ("subject", "node")],
            &["pass", "fail"],
            "fail",
        );
        let t = render(&[f]);
        assert!(t.contains("nccltune_check{check=\"gpu.count\",subject=\"node\",status=\"pass\"} 0\n"));
        assert!(t.contains("nccltune_check{check=\"gpu.count\",subject=\"node\",status=\"fail\"} 1\n"));
        assert_eq!(t.matches("# TYPE").count(), 1);
    }

    #[test]
    fn a_repeated_thing_keeps_its_states_apart() {
        let mut f = Family::gauge("nccltune_check", "h");
        for cur in ["pass", "fail"] {
            f.push_state(&[("check", "c"), ("subject", "s")], &["pass", "fail"], cur);
        }
        let t = render(&[f]);
        assert!(t.contains("nccltune_check{check=\"c\",subject=\"s\",status=\"pass\"} 1\n"));
        assert!(t.contains("nccltune_check{check=\"c\",subject=\"s#2\",status=\"fail\"} 1\n"));
        assert!(!t.contains("status=\"pass#2\""), "{t}");
    }

    #[test]
    fn hostile_names_and_values_cannot_break_lines() {
        let mut f = Family::gauge("9bad name", "multi\nline \\ help");
        f.push(&[("__x-y", "a\"b\\c\nnccltune_fake 1")], f64::INFINITY);
        f.push(&[("__x-y", "a\"b\\c\nnccltune_fake 1")], 2.5);
        let t = render(&[f]);
        assert_eq!(t.lines().count(), 4, "{t}");
        assert!(t.contains("# HELP _9bad_name multi\\nline \\\\ help\n"));
        assert!(t.contains("_9bad_name{_x_y=\"a\\\"b\\\\c\\nnccltune_fake 1\"} +Inf\n"));
        assert!(t.contains("_9bad_name{_x_y=\"a\\\"b\\\\c\\nnccltune_fake 1#2\"} 2.5\n"));
    }

    #[test]
    fn families_with_one_name_are_merged() {
        let t = render(&[build_info("1.0"), build_info("1.0")]);
        assert_eq!(t.matches("# HELP").count(), 1);
        assert!(t.contains("nccltune_build_info{version=\"1.0\"} 1\n"));
        assert!(t.contains("nccltune_build_info{version=\"1.0#2\"} 1\n"));
    }
}
