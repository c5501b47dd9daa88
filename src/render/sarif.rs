//! SARIF 2.1.0 writer (OASIS Static Analysis Results Interchange Format), the log code-review
//! tools read: one run of one tool, rules from finding codes, results with a file and line
//! where the finding has one, a logical location (the variable) otherwise.
//!
//! Shape and required properties follow the published schema, sarif-2.1/schema/
//! sarif-schema-2.1.0.json in the oasis-tcs/sarif-spec repository: a log needs `version` and
//! `runs`; a run needs `tool.driver.name`; a result needs `message` (`text`); `level` is one of
//! `none`, `note`, `warning`, `error`; `region.startLine` is at least 1; `artifactLocation.uri`
//! is a URI reference (so paths are percent-encoded); an invocation needs
//! `executionSuccessful`.

use serde_json::{Value, json};

/// The schema URI the OASIS standard gives for 2.1.0 (errata 01).
pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Note,
    Warning,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule_id: String,
    pub level: Level,
    pub message: String,
    /// A file path as the user named it.
    pub file: Option<String>,
    /// 1-based line.
    pub line: Option<u64>,
    /// What the finding is about when there is no file (an environment variable).
    pub logical: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    pub tool_version: String,
    /// Rules with descriptions; a result whose rule is not listed gets a rule named by its id.
    pub rules: Vec<Rule>,
    pub results: Vec<Finding>,
    /// RFC 3339 UTC time of the run, e.g. `Meta::generated_at`.
    pub end_time_utc: String,
    /// False when the tool could not do its work (not when it found problems).
    pub successful: bool,
}

/// The log as pretty JSON with a final newline.
pub fn render(log: &Log) -> String {
    let mut rules = log.rules.clone();
    for r in &log.results {
        if !rules.iter().any(|x| x.id == r.rule_id) {
            rules.push(Rule {
                id: r.rule_id.clone(),
                description: r.rule_id.clone(),
            });
        }
    }
    let results: Vec<Value> = log
        .results
        .iter()
        .map(|r| {
            let mut v = json!({
                "ruleId": r.rule_id,
                "ruleIndex": rules.iter().position(|x| x.id == r.rule_id).unwrap_or(0),
                "level": r.level.as_str(),
                "message": { "text": r.message },
            });
            let mut loc = serde_json::Map::new();
            if let Some(file) = &r.file {
                let mut phys = json!({ "artifactLocation": { "uri": file_uri(file) } });
                if let Some(line) = r.line.filter(|l| *l >= 1) {
                    phys["region"] = json!({ "startLine": line });
                }
                loc.insert("physicalLocation".into(), phys);
            }
            if let Some(name) = &r.logical {
                loc.insert(
                    "logicalLocations".into(),
                    json!([{ "name": name, "kind": "variable" }]),
                );
            }
            if !loc.is_empty() {
                v["locations"] = json!([Value::Object(loc)]);
            }
            v
        })
        .collect();
    let doc = json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "nccltune",
                "version": log.tool_version,
                "rules": rules.iter().map(|r| json!({
                    "id": r.id,
                    "shortDescription": { "text": r.description },
                })).collect::<Vec<_>>(),
            }},
            "invocations": [{
                "executionSuccessful": log.successful,
                "endTimeUtc": log.end_time_utc,
            }],
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// A path as a URI reference: relative paths stay relative (SARIF resolves them against the
/// checkout), absolute ones become `file:///…`; every byte outside RFC 3986's unreserved set
/// and `/` is percent-encoded, so spaces, `#`, `?` and `%` survive.
pub fn file_uri(path: &str) -> String {
    let mut s = String::new();
    if path.starts_with('/') {
        s.push_str("file://");
    }
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> Log {
        Log {
            tool_version: "0.1.0".into(),
            rules: vec![Rule {
                id: "unknown-variable".into(),
                description: "NCCL does not know this name".into(),
            }],
            results: vec![
                Finding {
                    rule_id: "unknown-variable".into(),
                    level: Level::Warning,
                    message: "NCCL_FOO is not a variable".into(),
                    file: Some("job dir/run#1.sh".into()),
                    line: Some(3),
                    logical: Some("NCCL_FOO".into()),
                },
                Finding {
                    rule_id: "removed".into(),
                    level: Level::Error,
                    message: "m".into(),
                    file: None,
                    line: None,
                    logical: Some("NCCL_X".into()),
                },
            ],
            end_time_utc: "2026-01-01T00:00:00Z".into(),
            successful: true,
        }
    }

    #[test]
    fn required_properties_and_rule_indices() {
        let v: Value = serde_json::from_str(&render(&log())).expect("json");
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "nccltune");
        let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
        assert_eq!(rules.len(), 2, "a rule is added for an unlisted code");
        let r0 = &run["results"][0];
        assert_eq!(r0["ruleIndex"], 0);
        assert_eq!(r0["level"], "warning");
        let phys = &r0["locations"][0]["physicalLocation"];
        assert_eq!(phys["artifactLocation"]["uri"], "job%20dir/run%231.sh");
        assert_eq!(phys["region"]["startLine"], 3);
        let r1 = &run["results"][1];
        assert_eq!(r1["ruleIndex"], 1);
        assert!(r1["locations"][0].get("physicalLocation").is_none());
        assert_eq!(r1["locations"][0]["logicalLocations"][0]["name"], "NCCL_X");
        assert_eq!(run["invocations"][0]["executionSuccessful"], true);
    }

    #[test]
    fn absolute_paths_are_file_uris() {
        assert_eq!(file_uri("/etc/nccl.conf"), "file:///etc/nccl.conf");
        assert_eq!(file_uri("a%b?c"), "a%25b%3Fc");
        assert_eq!(file_uri("é"), "%C3%A9");
    }
}
