//! The catalogue of NCCL environment variables (`vars.toml`: every variable NCCL 2.30.7's core
//! reads, each with the source lines that read it, plus older NCCL's and the plugins' and
//! PyTorch's own) and the validator that knows how NCCL reads each value: integers through
//! `strtoll` (so `4MB` is 4, `010` is 8 and `auto` is 0, an empty value keeps the default), 2.30.7's
//! bool parser (`1/T/TRUE/0/F/FALSE`), bitsets where one unknown name makes 2.30.7 keep the
//! default, path-level names compared case-sensitively, `NCCL_ALGO`/`NCCL_PROTO` token lists that
//! fail initialisation on unknown tokens since 2.24, HCA and interface lists with their `^`/`=`
//! prefixes. `configure` refuses what this rejects; `lint` reports it.

use crate::finding::LintCode;
use crate::finding::Severity;
use crate::parse::version_key;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An `NCCL_PARAM` read with `strtoll`, meaningful as 0/1.
    Bool,
    /// A `DEFINE_NCCL_PARAM(bool)`: `1`, `T`, `TRUE`, `0`, `F`, `FALSE` in any case; anything
    /// else keeps the default (src/include/param/parser_default.h:39-66 at 2.30.7).
    Flag,
    /// A comma list of names, any case, `^` first inverts; an unknown name makes the whole value
    /// invalid, so NCCL keeps the default (src/include/param/parser_bitset.h:27-56 at 2.30.7).
    Bitset,
    Int,
    Enum,
    EnumCi,
    Level,
    AlgoList,
    ProtoList,
    HcaList,
    IfaceList,
    String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Var {
    pub name: String,
    pub kind: Kind,
    /// `system`, `debug`, `undocumented`, `removed` or `plugin`.
    pub category: String,
    /// Who reads it when that is not core NCCL (a plugin, PyTorch).
    #[serde(default)]
    pub owner: Option<String>,
    /// The version whose parser `kind` describes; before it the value was read as `Bool`/`Int`
    /// (flags) or leniently, skipping unknown names (bitsets).
    #[serde(default)]
    pub parser_since: Option<String>,
    /// Level names that NCCL accepts only from a version on.
    #[serde(default)]
    pub value_added: BTreeMap<String, String>,
    #[serde(default)]
    pub default: String,
    #[serde(default)]
    pub added: Option<String>,
    #[serde(default)]
    pub deprecated: Option<String>,
    #[serde(default)]
    pub removed: Option<String>,
    #[serde(default)]
    pub replaced_by: Option<String>,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    #[serde(default)]
    pub multiple_of: Option<i64>,
    #[serde(default)]
    pub values: Vec<String>,
    pub source: String,
}

/// A name prefix whose variables one plugin or framework reads (`NCCL_GPUDIRECTTCPX_*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Family {
    pub prefix: String,
    pub owner: String,
    pub source: String,
}

#[derive(Debug, Default, Deserialize)]
struct File {
    var: Vec<Var>,
    #[serde(default)]
    family: Vec<Family>,
}

const VARS: &str = include_str!("vars.toml");

struct Catalogue {
    file: File,
    by_name: HashMap<String, usize>,
}

fn cat() -> &'static Catalogue {
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| {
        let file = toml::from_str::<File>(VARS).unwrap_or_default();
        let by_name = file
            .var
            .iter()
            .enumerate()
            .map(|(i, v)| (v.name.clone(), i))
            .collect();
        Catalogue { file, by_name }
    })
}

/// Every variable in the catalogue. A parse failure of the embedded file is a bug, caught by tests.
pub fn catalogue() -> &'static [Var] {
    &cat().file.var
}

/// The name families read by plugins and frameworks.
pub fn families() -> &'static [Family] {
    &cat().file.family
}

pub fn lookup(name: &str) -> Option<&'static Var> {
    let c = cat();
    c.by_name.get(name).map(|&i| &c.file.var[i])
}

impl Var {
    /// Read by core NCCL (at some version), not by a plugin or framework.
    pub fn is_core(&self) -> bool {
        self.owner.is_none() && self.category != "plugin"
    }

    /// Whether NCCL `version` reads it: false once removed (unknown version: as of 2.30.7).
    pub fn read_by(&self, version: Option<&[u64]>) -> bool {
        match &self.removed {
            None => at_least(version, self.added.as_deref().unwrap_or("0")) != Some(false),
            Some(r) => version.is_some_and(|v| v < version_key(r).as_slice()),
        }
    }
}

/// Who reads `name` when it is not core NCCL: a catalogued plugin variable or a family prefix.
/// Returns the owner and the public source.
pub fn owner_of(name: &str) -> Option<(&'static str, &'static str)> {
    if let Some(v) = lookup(name) {
        return v
            .owner
            .as_deref()
            .filter(|_| !v.is_core())
            .map(|o| (o, v.source.as_str()));
    }
    families()
        .iter()
        .find(|f| name.starts_with(&f.prefix))
        .map(|f| (f.owner.as_str(), f.source.as_str()))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest name core NCCL `version` reads, for a did-you-mean. Never a name of another owner
/// (a plugin's variable is not a typo of NCCL's), never one NCCL no longer reads, and nothing for
/// a name that belongs to a plugin's family.
pub fn suggest(name: &str, version: Option<&[u64]>) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    if owner_of(&upper).is_some() {
        return None;
    }
    catalogue()
        .iter()
        .filter(|v| v.is_core() && v.read_by(version) && v.removed.is_none())
        .map(|v| (edit_distance(&upper, &v.name), v.name.as_str()))
        .filter(|(d, n)| *d <= 3.max(n.len() / 6))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// A problem NCCL would have with a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub code: crate::finding::LintCode,
    pub severity: Severity,
    pub message: String,
    pub fix: String,
}

fn problem(
    code: crate::finding::LintCode,
    severity: Severity,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> Problem {
    Problem {
        code,
        severity,
        message: message.into(),
        fix: fix.into(),
    }
}

/// How `strtoll(value, NULL, 0)` reads a value: the number, and what it ignored or reinterpreted.
#[derive(Debug, Clone, PartialEq)]
pub struct CInt {
    pub value: i64,
    /// Characters after the number that strtoll ignored.
    pub trailing: String,
    /// A leading 0 made the number octal.
    pub octal: bool,
}

pub fn strtoll(s: &str) -> CInt {
    let t = s.trim_start();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits, octal) = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X"))
    {
        (16, h, false)
    } else if body.len() > 1 && body.starts_with('0') && body.as_bytes()[1].is_ascii_digit() {
        (8, &body[1..], true)
    } else {
        (10, body, false)
    };
    let end = digits.find(|c: char| !c.is_digit(radix)).unwrap_or(digits.len());
    let value = i64::from_str_radix(&digits[..end], radix).unwrap_or(0);
    CInt {
        value: if neg { -value } else { value },
        trailing: digits[end..].to_string(),
        octal: octal && end > 0,
    }
}

const ALGOS: [&str; 7] = [
    "ring",
    "tree",
    "collnetdirect",
    "collnetchain",
    "nvls",
    "nvlstree",
    "pat",
];
const PROTOS: [&str; 3] = ["ll", "ll128", "simple"];
const FUNCS: [&str; 5] = ["broadcast", "reduce", "allgather", "reducescatter", "allreduce"];

fn at_least(version: Option<&[u64]>, v: &str) -> Option<bool> {
    version.map(|have| have >= version_key(v).as_slice())
}

/// Validates `value` for `var` as NCCL `version` (when known) would read it.
pub fn validate(var: &Var, value: &str, version: Option<&[u64]>) -> Vec<Problem> {
    // Before the version of its parser, a flag was an strtoll integer and a bitset skipped
    // unknown names (src/debug.cc at 2.30.4).
    let legacy = var
        .parser_since
        .as_deref()
        .is_some_and(|p| at_least(version, p) == Some(false));
    let kind = match var.kind {
        Kind::Flag if legacy => Kind::Bool,
        k => k,
    };
    let mut out = Vec::new();
    let name = &var.name;
    if value.trim().eq_ignore_ascii_case("auto") {
        let reads = match kind {
            Kind::Int | Kind::Bool => "strtoll reads it as 0".to_string(),
            Kind::Flag => "2.30.7's bool parser rejects it, so NCCL keeps the default".to_string(),
            Kind::AlgoList | Kind::ProtoList => {
                "since 2.24 communicator init fails (unrecognized token); before, the token was dropped, disabling every choice".to_string()
            }
            _ => "NCCL has no `auto` keyword".to_string(),
        };
        out.push(problem(
            LintCode::AutoValue,
            Severity::Error,
            format!("{name}=auto: {reads}"),
            format!("leave {name} unset to let NCCL decide"),
        ));
        return out;
    }
    if value != value.trim() {
        out.push(problem(
            LintCode::WhitespaceValue,
            Severity::Error,
            format!("{name}: the value has leading or trailing whitespace, which NCCL does not trim"),
            "remove the spaces",
        ));
    }
    if value.is_empty() {
        // NCCL_PARAM and the 2.30 parsers use the default for an empty value
        // (src/misc/param.cc:91, src/include/param/param.h:166).
        out.push(problem(
            LintCode::EmptyValue,
            Severity::Warn,
            format!("{name} is set but empty: NCCL keeps its default"),
            format!("give a value or unset {name}"),
        ));
        return out;
    }
    match kind {
        Kind::Flag => {
            let ok = ["1", "0"].contains(&value)
                || ["T", "TRUE", "F", "FALSE"]
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(value));
            if !ok {
                out.push(problem(
                    LintCode::BadValue,
                    Severity::Warn,
                    format!("{name}={value}: NCCL's bool parser takes 1/T/TRUE or 0/F/FALSE (any case); it rejects this and keeps the default {}", var.default),
                    "use 1 or 0",
                ));
            }
        }
        Kind::Bitset => {
            let body = value.strip_prefix('^').unwrap_or(value);
            for tok in body.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if var.values.iter().any(|v| v.eq_ignore_ascii_case(tok)) {
                    continue;
                }
                let (sev, effect) = if legacy {
                    (
                        Severity::Info,
                        "this NCCL skips the name and applies the others".to_string(),
                    )
                } else {
                    (
                        Severity::Warn,
                        format!(
                            "NCCL 2.30.7 rejects the whole value and keeps the default {}",
                            var.default
                        ),
                    )
                };
                out.push(problem(
                    LintCode::UnknownToken,
                    sev,
                    format!(
                        "{name}: {tok:?} is not one of {}: {effect}",
                        var.values.join(", ")
                    ),
                    format!("remove {tok:?}"),
                ));
            }
        }
        Kind::Int | Kind::Bool => {
            let n = strtoll(value);
            if !n.trailing.is_empty() {
                out.push(problem(
                    LintCode::MisreadValue,
                    Severity::Error,
                    format!(
                        "{name}={value}: strtoll stops at {:?}, so NCCL reads {}",
                        n.trailing, n.value
                    ),
                    "write a plain integer in bytes/units, e.g. 4194304 rather than 4MB",
                ));
            } else if n.octal {
                out.push(problem(
                    LintCode::OctalValue,
                    Severity::Error,
                    format!(
                        "{name}={value}: a leading 0 makes it octal, so NCCL reads {}",
                        n.value
                    ),
                    "drop the leading zero",
                ));
            }
            if kind == Kind::Bool && n.trailing.is_empty() && !matches!(n.value, 0 | 1) {
                out.push(problem(
                    LintCode::BadValue,
                    Severity::Warn,
                    format!("{name}={value}: expected 0 or 1"),
                    "use 0 or 1",
                ));
            }
            if let Some(min) = var.min
                && n.value < min
            {
                out.push(problem(
                    LintCode::OutOfRange,
                    Severity::Warn,
                    format!("{name}={value}: below the minimum {min}"),
                    format!("use at least {min}"),
                ));
            }
            if let Some(max) = var.max
                && n.value > max
            {
                out.push(problem(
                    LintCode::OutOfRange,
                    Severity::Warn,
                    format!("{name}={value}: above the maximum {max}"),
                    format!("use at most {max}"),
                ));
            }
            if let Some(m) = var.multiple_of
                && n.value % m != 0
            {
                out.push(problem(
                    LintCode::OutOfRange,
                    Severity::Warn,
                    format!("{name}={value}: not a multiple of {m}; NCCL replaces it"),
                    format!("use a multiple of {m}"),
                ));
            }
        }
        Kind::Enum | Kind::EnumCi => {
            let ok = var.values.iter().any(|v| {
                if kind == Kind::EnumCi {
                    v.eq_ignore_ascii_case(value)
                } else {
                    v == value
                }
            });
            if !ok {
                out.push(problem(
                    LintCode::BadValue,
                    Severity::Error,
                    format!("{name}={value}: not one of {}", var.values.join(", ")),
                    format!("use one of {}", var.values.join(", ")),
                ));
            }
        }
        Kind::Level => {
            if var.values.iter().any(|v| v == value) {
                if let Some(since) = var.value_added.get(value)
                    && at_least(version, since) == Some(false)
                {
                    out.push(problem(
                        LintCode::NotInVersion,
                        Severity::Error,
                        format!("{name}={value}: the level name {value} exists since NCCL {since}; this NCCL ignores it and keeps the default"),
                        "use LOC, PIX, PXB, PHB or SYS",
                    ));
                }
            } else if var.values.iter().any(|v| v.eq_ignore_ascii_case(value)) {
                out.push(problem(
                    LintCode::LevelCase,
                    Severity::Error,
                    format!("{name}={value}: level names are compared case-sensitively, so NCCL ignores it and keeps the default"),
                    format!("write {}", value.to_ascii_uppercase()),
                ));
            } else if value.chars().all(|c| c.is_ascii_digit()) && !value.is_empty() {
                let n = strtoll(value).value;
                let level = ["LOC", "PIX", "PXB", "PHB", "SYS"]
                    .get(n as usize)
                    .copied()
                    .unwrap_or("SYS");
                out.push(problem(
                    LintCode::LegacyIntLevel,
                    Severity::Info,
                    format!("{name}={value}: a legacy integer, read as {level} (the GPU-NIC or GPU-GPU PCIe distance; values above 4 mean SYS)"),
                    format!("write the name: {name}={level}"),
                ));
            } else {
                out.push(problem(
                    LintCode::BadValue,
                    Severity::Error,
                    format!("{name}={value}: not a level ({})", var.values.join(", ")),
                    "use a level name",
                ));
            }
        }
        Kind::AlgoList | Kind::ProtoList => {
            let known: &[&str] = if kind == Kind::AlgoList { &ALGOS } else { &PROTOS };
            let new_syntax = at_least(version, "2.24");
            for part in value.split(';') {
                let list = match part.split_once(':') {
                    Some((func, list)) => {
                        if !FUNCS.contains(&func.trim().to_ascii_lowercase().as_str()) {
                            out.push(problem(LintCode::UnknownToken, Severity::Error, format!("{name}: unknown function {func:?} (expected Broadcast, Reduce, AllGather, ReduceScatter, AllReduce)"), "fix the function name"));
                        }
                        if new_syntax == Some(false) {
                            out.push(problem(
                                LintCode::NotInVersion,
                                Severity::Error,
                                format!("{name}: the `func:list` form needs NCCL 2.24"),
                                "use a plain comma list",
                            ));
                        }
                        list
                    }
                    None => part,
                };
                for tok in list.trim_start_matches('^').split(',') {
                    let t = tok.trim().to_ascii_lowercase();
                    let legacy_collnet = t == "collnet" && at_least(version, "2.14") == Some(false);
                    if !known.contains(&t.as_str()) && !legacy_collnet {
                        let effect = match new_syntax {
                            Some(false) => {
                                "NCCL before 2.24 drops it silently, which can leave no choice enabled"
                            }
                            _ => "NCCL 2.24+ fails communicator init (ncclInvalidUsage)",
                        };
                        out.push(problem(
                            LintCode::UnknownToken,
                            Severity::Error,
                            format!("{name}: unknown token {tok:?}: {effect}"),
                            format!("use only {}", known.join(", ")),
                        ));
                    }
                }
            }
        }
        Kind::HcaList | Kind::IfaceList => {
            let body = value.trim_start_matches('^').trim_start_matches('=');
            if value.contains(' ') {
                out.push(problem(
                    LintCode::BadValue,
                    Severity::Error,
                    format!("{name}={value}: spaces are not trimmed; they become part of a name"),
                    "remove the spaces",
                ));
            }
            let entries: Vec<&str> = body.split(',').collect();
            if entries.iter().any(|e| e.is_empty()) {
                out.push(problem(
                    LintCode::BadValue,
                    Severity::Error,
                    format!("{name}={value}: an empty entry"),
                    "remove the stray comma",
                ));
            }
            if kind == Kind::HcaList {
                if entries.len() > 32 {
                    out.push(problem(
                        LintCode::OutOfRange,
                        Severity::Warn,
                        format!("{name}: {} devices; NCCL uses at most 32", entries.len()),
                        "list fewer devices",
                    ));
                }
                for e in &entries {
                    let fields: Vec<&str> = e.split(':').collect();
                    if fields.len() > 2 && at_least(version, "2.30.7") == Some(false) {
                        out.push(problem(
                            LintCode::NotInVersion,
                            Severity::Error,
                            format!("{name}: {e}: rail/plane fields need NCCL 2.30.7"),
                            "use device[:port]",
                        ));
                    }
                    if let Some(port) = fields.get(1)
                        && !port.is_empty()
                        && !port.chars().all(|c| c.is_ascii_digit())
                    {
                        out.push(problem(
                            LintCode::BadValue,
                            Severity::Error,
                            format!("{name}: {e}: port {port:?} is not a number"),
                            "write device:port, e.g. mlx5_0:1",
                        ));
                    }
                }
            }
        }
        Kind::String => {}
    }
    out
}

/// Problems with the variable itself for a version: not yet added, deprecated, removed.
pub fn lifecycle(var: &Var, version: Option<&[u64]>) -> Vec<Problem> {
    let mut out = Vec::new();
    let name = &var.name;
    let instead = var
        .replaced_by
        .as_ref()
        .map_or(String::new(), |r| format!("; use {r}"));
    if let Some(r) = &var.removed
        && !var.read_by(version)
    {
        out.push(problem(
            LintCode::RemovedVariable,
            Severity::Warn,
            format!("{name} was removed in NCCL {r}: it is silently ignored{instead}"),
            format!("delete {name}{instead}"),
        ));
    } else if let Some(d) = &var.deprecated
        && at_least(version, d) != Some(false)
    {
        out.push(problem(
            LintCode::DeprecatedVariable,
            Severity::Info,
            format!("{name} is deprecated since NCCL {d} (still read){instead}"),
            format!("replace it{instead}"),
        ));
    }
    if let Some(a) = &var.added
        && at_least(version, a) == Some(false)
    {
        out.push(problem(
            LintCode::NotInVersion,
            Severity::Warn,
            format!("{name} needs NCCL {a}; this NCCL ignores it"),
            format!("upgrade NCCL or drop {name}"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str) -> &'static Var {
        lookup(name).unwrap_or_else(|| panic!("{name} in catalogue"))
    }

    #[test]
    fn the_catalogue_loads_with_unique_names_and_sources() {
        let cat = catalogue();
        assert!(cat.len() > 100);
        let mut names: Vec<&str> = cat.iter().map(|v| v.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), cat.len());
        assert!(
            cat.iter()
                .all(|v| v.name.starts_with("NCCL_") && !v.source.contains(".md"))
        );
    }

    /// The names NCCL 2.30.7 reads (src/nccl/core-2.30.7.txt, extracted from its source).
    #[test]
    fn every_variable_nccl_2_30_7_reads_is_known() {
        let list = include_str!("core-2.30.7.txt");
        let names: Vec<&str> = list
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        assert!(names.len() > 240, "{}", names.len());
        let v2307 = version_key("2.30.7");
        for n in names {
            let v = lookup(n).unwrap_or_else(|| panic!("{n} missing from vars.toml"));
            assert!(v.read_by(Some(&v2307)), "{n} marked as not read by 2.30.7");
            assert!(
                v.source.contains("src/"),
                "{n}: source {:?} names no source file",
                v.source
            );
        }
    }

    #[test]
    fn the_five_false_errors_are_gone() {
        let v = Some(&[2u64, 30, 7][..]);
        for (n, val) in [
            ("NCCL_NET_GDR_LEVEL", "P2C"),
            ("NCCL_PARAM_DUMP_ALL", "1"),
            ("NCCL_SET_THREAD_NAME", "true"),
            ("NCCL_IB_FIFO_TC", "-1"),
            ("NCCL_SOCKET_NTHREADS", "0"),
        ] {
            assert_eq!(validate(var(n), val, v), [], "{n}={val}");
        }
        // P2C is a level name since 2.27 only; before, NCCL ignores it.
        assert_eq!(
            validate(var("NCCL_NET_GDR_LEVEL"), "P2C", Some(&[2, 26, 5]))
                .iter()
                .map(|p| p.code)
                .collect::<Vec<_>>(),
            ["not-in-version"]
        );
        // Before 2.30.7 NCCL_SET_THREAD_NAME went through strtoll: `true` read as 0.
        assert_eq!(
            validate(var("NCCL_SET_THREAD_NAME"), "true", Some(&[2, 29, 7]))
                .iter()
                .map(|p| p.code)
                .collect::<Vec<_>>(),
            ["misread-value"]
        );
    }

    #[test]
    fn debug_subsys_unknown_token_keeps_the_default_in_2_30_7() {
        let p = validate(var("NCCL_DEBUG_SUBSYS"), "INIT,NET,VERSION", Some(&[2, 30, 7]));
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].code.as_str(), p[0].severity),
            ("unknown-token", Severity::Warn)
        );
        assert!(p[0].message.contains("VERSION") && p[0].message.contains("INIT,BOOTSTRAP,ENV"));
        assert!(validate(var("NCCL_DEBUG_SUBSYS"), "^init, coll", None).is_empty());
        let old = validate(var("NCCL_DEBUG_SUBSYS"), "INIT,VERSION", Some(&[2, 29, 7]));
        assert_eq!(old[0].severity, Severity::Info);
    }

    #[test]
    fn no_did_you_mean_across_owners_or_to_removed_names() {
        assert_eq!(suggest("NCCL_SHARP_DISABLE", None), None);
        assert_eq!(suggest("NCCL_CHECK_DISABLE", None), None);
        assert_ne!(suggest("NCCL_CHECK_DISABLE", None), Some("NCCL_CHECKS_DISABLE"));
        assert!(owner_of("NCCL_GPUDIRECTTCPX_SOCKET_IFNAME").is_some_and(|(o, _)| o.contains("TCPX")));
        assert!(owner_of("NCCL_FASTRAK_IFNAME").is_some());
        assert!(owner_of("NCCL_IBEXT_DISABLE").is_some());
        assert!(owner_of("NCCL_ASYNC_ERROR_HANDLING").is_some_and(|(o, _)| o.contains("PyTorch")));
        assert_eq!(owner_of("NCCL_IB_HCA"), None);
        assert_eq!(owner_of("NCCL_SHM_DISABLE"), None);
    }

    #[test]
    fn strtoll_pitfalls() {
        assert_eq!(
            strtoll("4MB"),
            CInt {
                value: 4,
                trailing: "MB".into(),
                octal: false
            }
        );
        assert_eq!(strtoll("010").value, 8);
        assert!(strtoll("010").octal);
        assert_eq!(strtoll("0x10").value, 16);
        assert_eq!(strtoll("auto").value, 0);
        assert_eq!(strtoll("-1").value, -1);
    }

    #[test]
    fn misread_values_are_errors() {
        let codes = |n: &str, v: &str| {
            validate(var(n), v, Some(&[2, 21, 5]))
                .into_iter()
                .map(|p| p.code)
                .collect::<Vec<_>>()
        };
        assert_eq!(codes("NCCL_BUFFSIZE", "4MB"), ["misread-value"]);
        assert_eq!(codes("NCCL_BUFFSIZE", "010"), ["octal-value"]);
        assert_eq!(codes("NCCL_ALGO", "auto"), ["auto-value"]);
        assert_eq!(codes("NCCL_NET_GDR_LEVEL", "sys"), ["level-case"]);
        assert_eq!(codes("NCCL_NET_GDR_LEVEL", "5"), ["legacy-int-level"]);
        assert_eq!(codes("NCCL_ALGO", "Ring,Treee"), ["unknown-token"]);
        assert_eq!(
            codes("NCCL_ALGO", "ring;allreduce:tree,ring"),
            ["not-in-version"],
            "2.24 syntax on 2.21"
        );
        assert!(validate(var("NCCL_ALGO"), "ring;allreduce:tree,ring", Some(&[2, 24, 3])).is_empty());
        assert!(codes("NCCL_PROTO", "^LL128").is_empty());
        assert!(codes("NCCL_IB_HCA", "=mlx5_0:1,mlx5_3:1").is_empty());
        assert_eq!(codes("NCCL_IB_HCA", "=mlx5_0::0:0"), ["not-in-version"]);
        assert_eq!(codes("NCCL_CROSS_NIC", "3"), ["bad-value"]);
        assert!(codes("NCCL_DEBUG", "info").is_empty());
        assert_eq!(codes("NCCL_NTHREADS", "300"), ["out-of-range"]);
    }

    #[test]
    fn lifecycle_by_version() {
        let codes = |n: &str, v: Option<&[u64]>| {
            lifecycle(var(n), v)
                .into_iter()
                .map(|p| p.code)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            codes("NCCL_MAX_NCHANNELS", Some(&[2, 21, 5])),
            ["deprecated-variable"]
        );
        assert!(codes("NCCL_MAX_NCHANNELS", Some(&[2, 16, 2])).is_empty());
        assert_eq!(codes("NCCL_MAX_CTAS", Some(&[2, 16, 2])), ["not-in-version"]);
        assert_eq!(codes("NCCL_LL_THRESHOLD", None), ["removed-variable"]);
        assert_eq!(suggest("NCCL_IB_HCAS", None), Some("NCCL_IB_HCA"));
        assert_eq!(suggest("NCCL_NET_GDR_LVL", None), Some("NCCL_NET_GDR_LEVEL"));
        assert_eq!(suggest("NCCL_COMPLETELY_DIFFERENT_THING", None), None);
    }
}
