//! Rules as data: the built-in `rules.toml` plus an optional user file. A rule applies when all
//! of its conditions hold; its settings fill `{fact}` placeholders. Every setting keeps the id,
//! why and source of the rule that made it.

use super::facts::{Fact, Facts, KNOWN, version_cmp};
use anyhow::{Result, bail};
use serde::Deserialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Str(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Cond {
    Test(Test),
    Equals(Value),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Test {
    pub min: Option<Value>,
    pub max: Option<Value>,
    pub below: Option<Value>,
    pub any_of: Option<Vec<Value>>,
    pub not: Option<Value>,
    pub exists: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    #[serde(default)]
    pub why: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub when: BTreeMap<String, Cond>,
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where the rule came from: `built-in` or `FILE:LINE`.
    #[serde(skip)]
    pub origin: String,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<Rule>,
}

const BUILTIN: &str = include_str!("rules.toml");

pub fn builtin() -> Result<Vec<Rule>> {
    let f: RuleFile = toml::from_str(BUILTIN).map_err(|e| anyhow::anyhow!("built-in rules.toml: {e}"))?;
    Ok(f.rule
        .into_iter()
        .map(|mut r| {
            r.origin = "built-in".into();
            r
        })
        .collect())
}

/// Parses a user rules file; errors name the file, the line and the rule id.
pub fn parse_user(text: &str, file: &str) -> Result<Vec<Rule>> {
    let parsed: RuleFile = toml::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "{file}: {}\nexpected [[rule]] tables with id, why, source, [rule.when] and [rule.set]",
            crate::input::toml_error(text, &e)
        )
    })?;
    let mut rules = parsed.rule;
    for r in &mut rules {
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with("id") && l.contains(&format!("\"{}\"", r.id)))
            .map_or(0, |i| i + 1);
        r.origin = format!("{file}:{line}");
        let at = format!("{file}:{line}: rule `{}`", r.id);
        if r.id.trim().is_empty() {
            bail!("{file}:{line}: a rule without an id: give every [[rule]] an id");
        }
        for key in r.when.keys() {
            if !KNOWN.iter().any(|(k, _)| k == key) {
                let known: Vec<&str> = KNOWN.iter().map(|(k, _)| *k).collect();
                bail!(
                    "{at}: unknown fact `{key}` in [rule.when]; known facts: {}",
                    known.join(", ")
                );
            }
        }
        for (name, value) in &r.set {
            if crate::nccl::lookup(name).is_none() && crate::nccl::owner_of(name).is_some() {
                continue;
            }
            let Some(var) = crate::nccl::lookup(name) else {
                let hint = crate::nccl::suggest(name, None)
                    .map_or(String::new(), |s| format!(" (did you mean {s}?)"));
                bail!("{at}: {name} is not a variable NCCL knows{hint}; NCCL would ignore it silently");
            };
            if value.contains('\n') || value.contains('\0') {
                bail!("{at}: {name}: a value with a newline or NUL byte cannot be written to an env file");
            }
            // Placeholders are checked once filled in; literal values are checked now.
            let has_placeholder = KNOWN.iter().any(|(k, _)| value.contains(&format!("{{{k}}}")));
            if !has_placeholder {
                let errs: Vec<String> = crate::nccl::validate(var, value, None)
                    .into_iter()
                    .filter(|p| p.severity == crate::finding::Severity::Error)
                    .map(|p| p.message)
                    .collect();
                if !errs.is_empty() {
                    bail!("{at}: {}", errs.join("; "));
                }
            }
        }
    }
    Ok(rules)
}

/// Built-in rules with user rules applied: same id replaces, new ids are appended.
pub fn merge(mut rules: Vec<Rule>, user: Vec<Rule>) -> Vec<Rule> {
    for u in user {
        match rules.iter_mut().find(|r| r.id == u.id) {
            Some(r) => *r = u,
            None => rules.push(u),
        }
    }
    rules
}

fn compare(fact: &Fact, v: &Value) -> Option<Ordering> {
    match (fact, v) {
        (Fact::Version(a), b) => Some(version_cmp(a, &b.text())),
        (Fact::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Fact::Int(a), Value::Str(b)) => b.parse::<i64>().ok().map(|b| a.cmp(&b)),
        (Fact::Str(a), b) => Some(a.as_str().cmp(b.text().as_str())),
        (Fact::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn equal(fact: &Fact, v: &Value) -> bool {
    compare(fact, v) == Some(Ordering::Equal)
}

/// Why a condition fails, or `None` when it holds.
pub fn check(name: &str, cond: &Cond, fact: Option<&Fact>) -> Option<String> {
    let shown = fact.map_or("unknown".to_string(), Fact::text);
    match cond {
        Cond::Equals(v) => match fact {
            Some(f) if equal(f, v) => None,
            None => Some(format!("{name} is unknown (needs {})", v.text())),
            Some(_) => Some(format!("{name} is {shown}, not {}", v.text())),
        },
        Cond::Test(t) => {
            if let Some(want) = t.exists
                && fact.is_some() != want
            {
                return Some(format!("{name} is {}", if want { "unknown" } else { "set" }));
            }
            if let Some(v) = &t.not {
                // `not` holds for an unknown fact: "not single-node" is true when nodes is not given.
                if fact.is_some_and(|f| equal(f, v)) {
                    return Some(format!("{name} is {}", v.text()));
                }
            }
            let needs_value = t.min.is_some() || t.max.is_some() || t.below.is_some() || t.any_of.is_some();
            let Some(f) = fact else {
                return needs_value.then(|| format!("{name} is unknown"));
            };
            if let Some(v) = &t.min
                && compare(f, v) == Some(Ordering::Less)
            {
                return Some(format!("{name} is {shown}, below {}", v.text()));
            }
            if let Some(v) = &t.max
                && compare(f, v) == Some(Ordering::Greater)
            {
                return Some(format!("{name} is {shown}, above {}", v.text()));
            }
            if let Some(v) = &t.below
                && compare(f, v) != Some(Ordering::Less)
            {
                return Some(format!("{name} is {shown}, not below {}", v.text()));
            }
            if let Some(list) = &t.any_of
                && !list.iter().any(|v| equal(f, v))
            {
                let l: Vec<String> = list.iter().map(Value::text).collect();
                return Some(format!("{name} is {shown}, not one of {}", l.join(", ")));
            }
            None
        }
    }
}

/// Fills `{fact}` placeholders, where `fact` is a known fact name; any other brace is literal
/// text. `Err` names a fact that is unknown on this node.
pub fn fill(template: &str, facts: &Facts) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let key = after.find('}').map(|close| &after[..close]);
        match key.filter(|k| KNOWN.iter().any(|(name, _)| name == k)) {
            Some(k) => {
                match facts.get(k) {
                    Some(f) => out.push_str(&f.text()),
                    None => return Err(format!("placeholder {{{k}}}: fact unknown on this node")),
                }
                rest = &after[k.len() + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_are_sound() {
        let rules = builtin().expect("built-in rules parse");
        let mut ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), rules.len(), "unique ids");
        for r in &rules {
            assert!(!r.why.is_empty() && !r.source.is_empty(), "{}", r.id);
            for k in r.when.keys() {
                assert!(KNOWN.iter().any(|(f, _)| f == k), "{}: unknown fact {k}", r.id);
            }
            for (name, value) in &r.set {
                assert!(
                    crate::nccl::lookup(name).is_some() || crate::nccl::owner_of(name).is_some(),
                    "{}: {name}",
                    r.id
                );
                // The brief's hard lines: no `auto`, no forced algorithm or protocol, no CROSS_NIC=1.
                assert!(!value.eq_ignore_ascii_case("auto"), "{}", r.id);
                assert!(name != "NCCL_ALGO" && name != "NCCL_PROTO", "{}", r.id);
                assert!(!(name == "NCCL_CROSS_NIC" && value == "1"), "{}", r.id);
                let mut rest = value.as_str();
                while let Some(open) = rest.find('{') {
                    let close = rest[open..].find('}').expect("closed placeholder");
                    let key = &rest[open + 1..open + close];
                    assert!(
                        KNOWN.iter().any(|(f, _)| *f == key),
                        "{}: placeholder {key}",
                        r.id
                    );
                    rest = &rest[open + close + 1..];
                }
            }
        }
    }

    #[test]
    fn conditions() {
        let v = Fact::Version("2.19.3".into());
        let below = Cond::Test(Test {
            below: Some(Value::Str("2.21".into())),
            min: None,
            max: None,
            any_of: None,
            not: None,
            exists: None,
        });
        assert_eq!(check("nccl_version", &below, Some(&v)), None);
        assert!(check("nccl_version", &below, Some(&Fact::Version("2.21.5".into()))).is_some());
        assert!(check("nccl_version", &below, None).is_some());
        let not1 = Cond::Test(Test {
            not: Some(Value::Int(1)),
            min: None,
            max: None,
            below: None,
            any_of: None,
            exists: None,
        });
        assert_eq!(check("nodes", &not1, None), None);
        assert!(check("nodes", &not1, Some(&Fact::Int(1))).is_some());
        assert_eq!(
            check(
                "mode",
                &Cond::Equals(Value::Str("inference".into())),
                Some(&Fact::Str("inference".into()))
            ),
            None
        );
    }

    #[test]
    fn placeholders_and_literal_braces() {
        let mut f = Facts::new();
        f.insert("socket_ifname".into(), Fact::Str("=eth0".into()));
        assert_eq!(fill("{socket_ifname}", &f), Ok("=eth0".into()));
        assert_eq!(fill("a{b}c{", &f), Ok("a{b}c{".into()));
        assert!(fill("{rdma_hca_list}", &f).is_err());
    }

    #[test]
    fn user_rules_are_checked_with_file_line_and_id() {
        let text = "[[rule]]\nid = \"mine\"\nwhy = \"x\"\n[rule.set]\nNCCL_IB_HCAS = \"=mlx5_0\"\n";
        let err = parse_user(text, "r.toml").expect_err("unknown var");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("r.toml:2: rule `mine`") && msg.contains("did you mean NCCL_IB_HCA"),
            "{msg}"
        );
        let err = parse_user(
            "[[rule]]\nid = \"b\"\n[rule.set]\nNCCL_BUFFSIZE = \"4MB\"\n",
            "r.toml",
        )
        .expect_err("misread");
        assert!(format!("{err:#}").contains("reads 4"));
        let err =
            parse_user("[[rule]]\nid = \"c\"\n[rule.when]\nnode_count = 2\n", "r.toml").expect_err("fact");
        assert!(format!("{err:#}").contains("unknown fact `node_count`"));
        assert!(parse_user("[[rules]]\n", "r.toml").is_err());
    }
}
