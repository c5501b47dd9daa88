//! Reads one node's `nccltune verify --format json` report, schema 1 or 2, into a compact
//! summary: the level of every check keyed by (code, subject), the typed observed value where
//! the report has one (schema 2), and the text of the checks that did not pass. A fleet of
//! 10,000 nodes is held as these summaries, not as the reports.
//!
//! Schema 1: `checks[] = {id, group, status: pass|warn|fail|skip, subject, message, evidence,
//! fix}`. Schema 2: `checks[] = {code, level: pass|skip|info|warn|fail, subject, message,
//! observed, expected, evidence[], fix}` plus `identity` and `nccltune_version`.

use anyhow::{Result, bail};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::borrow::Cow;
use std::collections::HashMap;

/// The newest verify report schema this reader knows.
pub const NEWEST_SCHEMA: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Pass,
    Skip,
    Info,
    Warn,
    Fail,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "pass" => Level::Pass,
            "skip" => Level::Skip,
            "info" => Level::Info,
            "warn" => Level::Warn,
            "fail" => Level::Fail,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Pass => "pass",
            Level::Skip => "skip",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// Interns strings shared by many nodes (check codes, subjects, observed values), so memory
/// grows with the distinct values, not with nodes × checks.
#[derive(Debug, Default)]
pub struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    pub fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.to_string());
        self.ids.insert(s.to_string(), i);
        i
    }
    pub fn get(&self, id: u32) -> &str {
        self.names.get(id as usize).map(String::as_str).unwrap_or("")
    }
}

/// One check of one node, compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckCell {
    /// Interned `code\u{1f}subject`.
    pub key: u32,
    pub level: Level,
    /// Interned canonical JSON of `observed` (schema 2), or `None`.
    pub observed: Option<u32>,
}

/// A check that did not pass, with its text for the fleet's reasons.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Problem {
    pub code: String,
    pub level: Level,
    pub subject: String,
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub hostname: Option<String>,
    pub machine_id: Option<String>,
    pub dmi_product_serial: Option<String>,
    pub dmi_product_uuid: Option<String>,
    pub boot_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NodeSummary {
    pub schema: u32,
    pub ok: bool,
    pub identity: Identity,
    pub nccltune_version: Option<String>,
    pub cells: Vec<CheckCell>,
    /// Checks at warn or fail.
    pub problems: Vec<Problem>,
    /// A check that could not see (skip) is not a pass; counted so the report can say so.
    pub skipped: u32,
}

#[derive(Deserialize)]
struct RawReport<'a> {
    schema: Option<u64>,
    #[serde(borrow, default)]
    hostname: Option<Cow<'a, str>>,
    #[serde(default)]
    identity: Option<RawIdentity>,
    #[serde(default)]
    nccltune_version: Option<String>,
    #[serde(borrow)]
    checks: Option<Vec<RawCheck<'a>>>,
    ok: Option<bool>,
}

#[derive(Deserialize)]
struct RawIdentity {
    hostname: Option<String>,
    machine_id: Option<String>,
    dmi_product_serial: Option<String>,
    dmi_product_uuid: Option<String>,
    boot_id: Option<String>,
}

#[derive(Deserialize)]
struct RawCheck<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    level: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    subject: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(default)]
    observed: Option<serde_json::Value>,
    #[serde(borrow, default)]
    fix: Option<FixText<'a>>,
    #[serde(default)]
    #[allow(dead_code)]
    evidence: Option<IgnoredAny>,
}

/// `fix` is a string in schema 1 and a string or null in schema 2; anything else is ignored.
#[derive(Deserialize)]
#[serde(untagged)]
enum FixText<'a> {
    #[serde(borrow)]
    Text(Cow<'a, str>),
    #[allow(dead_code)]
    Other(IgnoredAny),
}

/// Parses one report. `source` names the file in errors.
pub fn read(bytes: &[u8], source: &str, interner: &mut Interner) -> Result<NodeSummary> {
    let raw: RawReport = match serde_json::from_slice(bytes) {
        Ok(r) => r,
        Err(e) => {
            let what = if e.is_eof() {
                "truncated JSON"
            } else {
                "not a verify JSON report"
            };
            bail!(
                "{source}: {what} ({e}); expected the output of `nccltune verify --format json` (rerun the node's test)"
            )
        }
    };
    let schema = match raw.schema {
        Some(s @ 1..=2) => s as u32,
        Some(s) if s > NEWEST_SCHEMA as u64 => bail!(
            "{source}: verify report schema {s} is newer than this nccltune reads (1..={NEWEST_SCHEMA}); upgrade nccltune on the machine that merges"
        ),
        Some(s) => bail!("{source}: verify report schema {s} is not known (expected 1 or 2)"),
        None => {
            bail!("{source}: no \"schema\" field; expected the output of `nccltune verify --format json`")
        }
    };
    let Some(checks) = raw.checks else {
        bail!("{source}: no \"checks\" array (schema {schema})");
    };
    let Some(ok) = raw.ok else {
        bail!("{source}: no \"ok\" field (schema {schema}): the report is incomplete");
    };
    let mut cells = Vec::with_capacity(checks.len());
    let mut problems = Vec::new();
    let mut skipped = 0;
    let mut key = String::new();
    for (i, c) in checks.into_iter().enumerate() {
        let (code, level) = if schema == 1 {
            (c.id, c.status)
        } else {
            (c.code, c.level)
        };
        let field = if schema == 1 {
            ("id", "status")
        } else {
            ("code", "level")
        };
        let Some(code) = code else {
            bail!("{source}: checks[{i}] has no \"{}\" (schema {schema})", field.0);
        };
        let lv = level.as_deref().and_then(Level::parse);
        let Some(level) = lv else {
            bail!(
                "{source}: checks[{i}] ({code}): \"{}\" is {:?}; expected pass, skip, info, warn or fail",
                field.1,
                level.as_deref().unwrap_or("missing")
            );
        };
        let subject = c.subject.unwrap_or(Cow::Borrowed("node"));
        key.clear();
        key.push_str(&code);
        key.push('\u{1f}');
        key.push_str(&subject);
        let observed = match c.observed {
            Some(serde_json::Value::Null) | None => None,
            Some(v) => Some(interner.id(&v.to_string())),
        };
        cells.push(CheckCell {
            key: interner.id(&key),
            level,
            observed,
        });
        if level == Level::Skip {
            skipped += 1;
        }
        if level >= Level::Warn {
            problems.push(Problem {
                code: code.into_owned(),
                level,
                subject: subject.into_owned(),
                message: c.message.map(Cow::into_owned).unwrap_or_default(),
                fix: match c.fix {
                    Some(FixText::Text(t)) => t.into_owned(),
                    _ => String::new(),
                },
            });
        }
    }
    let mut identity = match raw.identity {
        Some(r) => Identity {
            hostname: r.hostname,
            machine_id: r.machine_id,
            dmi_product_serial: r.dmi_product_serial,
            dmi_product_uuid: r.dmi_product_uuid,
            boot_id: r.boot_id,
        },
        None => Identity::default(),
    };
    if identity.hostname.is_none() {
        identity.hostname = raw.hostname.map(Cow::into_owned);
    }
    Ok(NodeSummary {
        schema,
        ok,
        identity,
        nccltune_version: raw.nccltune_version,
        cells,
        problems,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"schema":1,"hostname":"h1","source":"x","strict":false,"checks":[
      {"id":"rdma.port-rate","group":"rdma","status":"fail","subject":"mlx5_0:1","message":"200 Gb/s","evidence":"e","fix":"reseat"},
      {"id":"gpu.count","group":"gpu","status":"pass","subject":"node","message":"8","evidence":"","fix":""}],
      "summary":{"pass":1,"warn":0,"fail":1,"skip":0},"ok":false}"#;
    const V2: &str = r#"{"schema":2,"nccltune_version":"0.2.0","generated_at":"t",
      "identity":{"hostname":"h2","machine_id":"m","dmi_product_serial":null,"dmi_product_uuid":null,"boot_id":"b"},
      "checks":[{"code":"software.driver","level":"pass","subject":"node","message":"550","observed":{"version":"550.90.07"},"expected":null,"evidence":["a"],"fix":null}],
      "ok":true}"#;

    #[test]
    fn reads_both_schemas() {
        let mut i = Interner::default();
        let a = read(V1.as_bytes(), "a.json", &mut i).expect("test value");
        assert_eq!((a.schema, a.ok, a.cells.len()), (1, false, 2));
        assert_eq!(a.problems[0].code, "rdma.port-rate");
        assert_eq!(a.problems[0].fix, "reseat");
        assert_eq!(a.identity.hostname.as_deref(), Some("h1"));
        assert!(a.cells[0].observed.is_none());
        let b = read(V2.as_bytes(), "b.json", &mut i).expect("test value");
        assert_eq!((b.schema, b.ok), (2, true));
        assert_eq!(
            i.get(b.cells[0].observed.expect("test value")),
            r#"{"version":"550.90.07"}"#
        );
        assert_eq!(b.identity.machine_id.as_deref(), Some("m"));
    }

    #[test]
    fn refuses_newer_truncated_and_junk() {
        let mut i = Interner::default();
        let e = read(br#"{"schema":3,"checks":[],"ok":true}"#, "n.json", &mut i).expect_err("must fail");
        assert!(e.to_string().contains("newer"), "{e}");
        let e = read(&V1.as_bytes()[..60], "t.json", &mut i)
            .expect_err("must fail")
            .to_string();
        assert!(e.starts_with("t.json: truncated JSON"), "{e}");
        assert!(read(b"\x00\xff junk", "j", &mut i).is_err());
        let e = read(
            br#"{"schema":1,"checks":[{"id":"x","status":"great"}],"ok":true}"#,
            "s",
            &mut i,
        )
        .expect_err("must fail")
        .to_string();
        assert!(e.contains("\"great\""), "{e}");
        assert!(read(br#"{"schema":1,"checks":[]}"#, "s", &mut i).is_err());
    }

    /// Every truncation and a sweep of byte corruptions give an error or a summary, never a
    /// panic; a cut report is never read as complete.
    #[test]
    fn cut_and_corrupted_reports_never_panic() {
        let mut i = Interner::default();
        for cut in 0..V1.len() {
            let r = read(&V1.as_bytes()[..cut], "c", &mut i);
            assert!(r.is_err(), "cut at {cut} accepted");
        }
        let mut bytes = V2.as_bytes().to_vec();
        for k in 0..bytes.len() {
            let old = bytes[k];
            for b in [0u8, b'"', b'}', 0xff] {
                bytes[k] = b;
                let _ = read(&bytes, "x", &mut i);
            }
            bytes[k] = old;
        }
    }
}
