//! The cluster description `place` works on: nodes with their rack (and optional pod), GPU
//! count, GPUs already in use and NICs. Read from a TOML or JSON file (`[[node]]` tables, the
//! same shape in JSON) or built synthetically; validated here so that the algorithm can trust
//! every value. Errors name the file, the line (TOML) or the node, and the field.
//!
//! Names (node, rack, pod, NVLink domain) end up in host files, rank files and terminals, so
//! they are held to what a host name may contain (letters, digits, `-`, `.`, `_`; not starting
//! with `-`, which a launcher would read as a flag): a newline would add a host, `#` would
//! comment out the rest of a line.

use anyhow::{Context, Result, bail};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// The most GPUs one node may have: free GPUs are kept in a 128-bit mask.
pub const MAX_GPUS_PER_NODE: u32 = 128;
/// The most GPUs one NVLink domain may have (NVLink switch systems reach 576).
pub const MAX_DOMAIN_GPUS: u32 = 1024;

/// One validated node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub name: String,
    /// Index into [`Cluster::racks`].
    pub rack: usize,
    pub gpus: u32,
    /// Bit `i` set = GPU `i` is free.
    #[serde(skip)]
    pub free: u128,
    /// NIC count and per-NIC line rate in Gb/s; `None` = the links file's default.
    pub nics: Option<u32>,
    pub nic_gbps: Option<f64>,
    /// Index into [`Cluster::domains`]: the multi-node NVLink domain (e.g. a GB200 NVL72 rack)
    /// this node (tray) belongs to.
    pub domain: Option<usize>,
    /// The GPUs' NVLink generation; `None` = the links file's default.
    pub nvlink: Option<NvlinkGen>,
    /// PCIe-only nodes: the GPUs' PCIe generation and lane width.
    pub pcie: Option<Pcie>,
}

/// The NVLink generation of a node's GPUs (what decides links per GPU and bandwidth per link),
/// or none for GPUs that talk over PCIe only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NvlinkGen {
    V100,
    A100,
    H100,
    H200,
    B200,
    Gb200,
    /// No NVLink: PCIe only (give `pcie_gen` and `pcie_width`).
    None,
}

impl NvlinkGen {
    pub const ALL: [NvlinkGen; 7] = [
        NvlinkGen::V100,
        NvlinkGen::A100,
        NvlinkGen::H100,
        NvlinkGen::H200,
        NvlinkGen::B200,
        NvlinkGen::Gb200,
        NvlinkGen::None,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            NvlinkGen::V100 => "v100",
            NvlinkGen::A100 => "a100",
            NvlinkGen::H100 => "h100",
            NvlinkGen::H200 => "h200",
            NvlinkGen::B200 => "b200",
            NvlinkGen::Gb200 => "gb200",
            NvlinkGen::None => "none",
        }
    }
    fn parse(s: &str) -> Option<NvlinkGen> {
        NvlinkGen::ALL
            .into_iter()
            .find(|g| g.as_str() == s.to_ascii_lowercase())
    }
}

/// A PCIe link: generation 1 to 6, width in lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pcie {
    pub gen_: u32,
    pub width: u32,
}

/// A multi-node NVLink domain (an NVL72 rack: 72 GPUs in 18 trays of 4).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Domain {
    pub name: String,
    /// Index into [`Cluster::racks`]: every tray of a domain sits in one rack.
    pub rack: usize,
    /// Declared size, when the file has an `[[nvlink_domain]]` table for it.
    pub gpus: Option<u32>,
    pub trays: Option<u32>,
}

impl Node {
    pub fn free_count(&self) -> u32 {
        self.free.count_ones()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rack {
    pub name: String,
    /// The higher level (pod, spine group) the rack belongs to, when the file names one.
    pub pod: Option<String>,
}

/// A validated cluster: nodes in file order, racks in order of first appearance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    pub source: String,
    pub nodes: Vec<Node>,
    pub racks: Vec<Rack>,
    /// NVLink domains in order of first appearance (empty on clusters without them).
    pub domains: Vec<Domain>,
}

impl Cluster {
    pub fn total_gpus(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.gpus)).sum()
    }
    pub fn free_gpus(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.free_count())).sum()
    }
}

/// `used = [0, 1]` or `used = 2`.
#[derive(Debug, Clone, PartialEq)]
pub enum Used {
    Indices(Vec<i64>),
    Count(i64),
}

impl<'de> Deserialize<'de> for Used {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Used;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a count of used GPUs (e.g. 2) or a list of used GPU indices (e.g. [0, 1])")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Used, E> {
                Ok(Used::Count(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Used, E> {
                Ok(Used::Count(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Used, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element::<i64>()? {
                    v.push(x);
                }
                Ok(Used::Indices(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// One `[[node]]` table as written. Integers are signed so that `-1` gets our message, not
/// the deserializer's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: String,
    rack: String,
    #[serde(default, alias = "spine")]
    pod: Option<String>,
    gpus: Option<i64>,
    used: Option<Used>,
    nics: Option<i64>,
    nic_gbps: Option<f64>,
    nvlink_domain: Option<String>,
    nvlink: Option<String>,
    pcie_gen: Option<i64>,
    pcie_width: Option<i64>,
}

/// Values every node inherits unless it sets its own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    gpus: Option<i64>,
    nics: Option<i64>,
    nic_gbps: Option<f64>,
    nvlink: Option<String>,
    pcie_gen: Option<i64>,
    pcie_width: Option<i64>,
}

/// An `[[nvlink_domain]]` table: the declared size of a domain that nodes name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    name: String,
    gpus: Option<i64>,
    trays: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster<N> {
    #[serde(default)]
    defaults: Option<RawDefaults>,
    #[serde(default = "Vec::new")]
    node: Vec<N>,
    #[serde(default = "Vec::new")]
    nvlink_domain: Vec<RawDomain>,
}

/// The largest cluster file read: about 64 bytes a node, so room for millions of nodes, and
/// `/dev/zero` or a runaway generator stops here instead of filling memory.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Reads at most `limit` bytes of `path`; more is an error naming the file and the limit.
pub fn read_capped(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!(
            "{}: {what} is larger than {} MiB; nccltune reads at most that much",
            path.display(),
            limit >> 20
        );
    }
    Ok(bytes)
}

/// Reads and validates a cluster file; JSON when the name ends in `.json` or the text starts
/// with `{`, TOML otherwise.
pub fn load(path: &Path) -> Result<Cluster> {
    // The path as shown in messages and reports: control bytes escaped, so that a file name
    // cannot drive the terminal.
    let shown: String = path
        .display()
        .to_string()
        .chars()
        .flat_map(|c| {
            let v: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            v
        })
        .collect();
    let bytes = read_capped(path, MAX_FILE_BYTES, "cluster file").map_err(|e| {
        anyhow::anyhow!(
            "{}",
            format!("{e:#}").replace(&path.display().to_string(), &shown)
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{shown}: not UTF-8 text (invalid byte at offset {}); expected a TOML or JSON cluster file",
            e.utf8_error().valid_up_to()
        )
    })?;
    parse(&text, &shown)
}

/// A parsed file before validation: defaults, nodes with their TOML line, domain tables.
type Raw = (RawDefaults, Vec<(RawNode, Option<usize>)>, Vec<RawDomain>);

/// Parses cluster text; `source` names it in errors.
pub fn parse(text: &str, source: &str) -> Result<Cluster> {
    let is_json = source.ends_with(".json") || text.trim_start().starts_with('{');
    let (defaults, nodes, domains): Raw = if is_json {
        let raw: RawCluster<RawNode> = serde_json::from_str(text).map_err(|e| {
            // serde_json appends " at line L column C"; put the place first, like TOML's.
            let msg = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            anyhow::anyhow!(
                "{source}: line {} column {}: {}; expected {{\"node\": [{{\"name\": \"n0\", \"rack\": \"r0\", \"gpus\": 8}}]}}",
                e.line(),
                e.column(),
                msg.strip_suffix(&suffix).unwrap_or(&msg)
            )
        })?;
        (
            raw.defaults.unwrap_or_default(),
            raw.node.into_iter().map(|n| (n, None)).collect(),
            raw.nvlink_domain,
        )
    } else {
        let raw: RawCluster<toml::Spanned<RawNode>> = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| format!(" line {}:", line_of(text, s.start))).unwrap_or_default();
            anyhow::anyhow!(
                "{source}:{at} {}; expected [[node]] tables with name, rack, gpus (and optional used, pod, nics, nic_gbps)",
                e.message().trim_end()
            )
        })?;
        let nodes = raw
            .node
            .into_iter()
            .map(|s| {
                let line = line_of(text, s.span().start);
                (s.into_inner(), Some(line))
            })
            .collect();
        (raw.defaults.unwrap_or_default(), nodes, raw.nvlink_domain)
    };
    build(source, &defaults, nodes, domains)
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes().iter().take(at).filter(|&&b| b == b'\n').count() + 1
}

/// The longest name accepted (a DNS name's limit).
pub const MAX_NAME_LEN: usize = 253;

/// Checks that `name` (the value of `field`) is something a host file, a rank file and a
/// terminal take as one plain word: letters, digits, `-`, `.`, `_`, not starting with `-`.
/// The error shows the name escaped, so that a control byte in it never reaches the terminal.
pub fn check_name(name: &str, field: &str) -> Result<()> {
    let shown: String = name.chars().take(64).flat_map(char::escape_default).collect();
    let more = if name.chars().count() > 64 { "..." } else { "" };
    if name.is_empty() {
        bail!("{field} is empty; give a name such as gpu-a01");
    }
    if name.len() > MAX_NAME_LEN {
        bail!(
            "{field} '{shown}{more}' is {} bytes long; names may have at most {MAX_NAME_LEN}",
            name.len()
        );
    }
    if let Some((i, c)) = name
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        let what = match c {
            '\n' | '\r' => "a line break".to_string(),
            '#' => "'#' (a comment in host files)".to_string(),
            ' ' | '\t' => "white space".to_string(),
            c if c.is_control() => format!("the control byte 0x{:02x}", c as u32),
            c => format!("'{}'", c.escape_default()),
        };
        bail!(
            "{field} '{shown}{more}' contains {what} at byte {i}; names may contain only letters, digits, '-', '.' and '_'"
        );
    }
    if name.starts_with('-') {
        bail!("{field} '{shown}' starts with '-', which launchers read as an option; rename it");
    }
    Ok(())
}

fn parse_gen(v: &str, at: &str) -> Result<NvlinkGen> {
    NvlinkGen::parse(v).ok_or_else(|| {
        let names: Vec<&str> = NvlinkGen::ALL.iter().map(|g| g.as_str()).collect();
        anyhow::anyhow!(
            "{at}: nvlink = '{}': expected one of {}",
            v.chars()
                .take(32)
                .flat_map(char::escape_default)
                .collect::<String>(),
            names.join(", ")
        )
    })
}

fn pcie_of(at: &str, gen_: Option<i64>, width: Option<i64>) -> Result<Option<Pcie>> {
    match (gen_, width) {
        (None, None) => Ok(None),
        (Some(g), w) => {
            if !(1..=6).contains(&g) {
                bail!("{at}: pcie_gen = {g}: expected 1 to 6");
            }
            let w = w.unwrap_or(16);
            if ![1, 2, 4, 8, 16, 32].contains(&w) {
                bail!("{at}: pcie_width = {w}: expected 1, 2, 4, 8, 16 or 32 lanes");
            }
            Ok(Some(Pcie {
                gen_: g as u32,
                width: w as u32,
            }))
        }
        (None, Some(_)) => {
            bail!("{at}: pcie_width without pcie_gen; give both, e.g. pcie_gen = 4, pcie_width = 16")
        }
    }
}

fn build(
    source: &str,
    defaults: &RawDefaults,
    raw: Vec<(RawNode, Option<usize>)>,
    raw_domains: Vec<RawDomain>,
) -> Result<Cluster> {
    if raw.is_empty() {
        bail!(
            "{source}: no nodes; add [[node]] tables (name, rack, gpus), or use --nodes for a synthetic cluster"
        );
    }
    check_defaults(source, defaults)?;
    let default_gen = match &defaults.nvlink {
        Some(v) => Some(parse_gen(v, &format!("{source}: [defaults]"))?),
        None => None,
    };
    let default_pcie = pcie_of(
        &format!("{source}: [defaults]"),
        defaults.pcie_gen,
        defaults.pcie_width,
    )?;
    // Declared domain sizes.
    let mut declared: HashMap<String, (Option<u32>, Option<u32>)> = HashMap::new();
    for (i, d) in raw_domains.iter().enumerate() {
        let at = format!("{source}: [[nvlink_domain]] #{}", i + 1);
        check_name(&d.name, "name").map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
        let gpus = match d.gpus {
            Some(g) if !(1..=i64::from(MAX_DOMAIN_GPUS)).contains(&g) => {
                bail!("{at} '{}': gpus = {g}: expected 1 to {MAX_DOMAIN_GPUS}", d.name)
            }
            g => g.map(|g| g as u32),
        };
        let trays = match d.trays {
            Some(t) if !(1..=i64::from(MAX_DOMAIN_GPUS)).contains(&t) => {
                bail!("{at} '{}': trays = {t}: expected 1 to {MAX_DOMAIN_GPUS}", d.name)
            }
            t => t.map(|t| t as u32),
        };
        if let (Some(g), Some(t)) = (gpus, trays)
            && g % t != 0
        {
            bail!(
                "{at} '{}': gpus = {g} is not a multiple of trays = {t}; an NVL72 domain is gpus = 72, trays = 18",
                d.name
            );
        }
        if declared.insert(d.name.clone(), (gpus, trays)).is_some() {
            bail!("{at}: domain '{}' is declared twice", d.name);
        }
    }
    let mut domains: Vec<Domain> = Vec::new();
    let mut domain_index: HashMap<String, usize> = HashMap::new();
    // Per domain: trays seen, GPUs seen, first node's GPU count.
    let mut domain_seen: Vec<(u32, u32, u32)> = Vec::new();
    let mut nodes = Vec::with_capacity(raw.len());
    let mut racks: Vec<Rack> = Vec::new();
    let mut rack_index: HashMap<String, usize> = HashMap::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for (i, (n, line)) in raw.into_iter().enumerate() {
        // The name is checked before it is quoted in any message.
        let place = match line {
            Some(l) => format!("{source}: line {l}: node #{}", i + 1),
            None => format!("{source}: node #{}", i + 1),
        };
        if n.name.trim().is_empty() {
            bail!("{place}: name is empty; give every node a unique host name");
        }
        check_name(&n.name, "name").map_err(|e| anyhow::anyhow!("{place}: {e}"))?;
        let at = match line {
            Some(l) => format!("{source}: line {l}: node '{}'", n.name),
            None => format!("{source}: node #{} '{}'", i + 1, n.name),
        };
        if n.rack.trim().is_empty() {
            bail!("{at}: rack is empty; give the rack (switch) the node hangs off");
        }
        check_name(&n.rack, "rack").map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
        if let Some(p) = &n.pod
            && !p.trim().is_empty()
        {
            check_name(p, "pod").map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
        }
        let here = line.map_or_else(|| format!("node #{}", i + 1), |l| format!("line {l}"));
        if let Some(first) = seen.insert(n.name.clone(), here) {
            bail!("{at}: duplicate node name (first defined at {first}); node names must be unique");
        }
        let gpus = match n.gpus.or(defaults.gpus) {
            Some(g) => g,
            None => bail!("{at}: gpus is missing; set gpus = 8 (or [defaults] gpus = 8)"),
        };
        if gpus < 1 || gpus > i64::from(MAX_GPUS_PER_NODE) {
            bail!("{at}: gpus = {gpus}: expected 1 to {MAX_GPUS_PER_NODE}");
        }
        let gpus = gpus as u32; // in 1..=128, checked above
        let all: u128 = if gpus == 128 {
            u128::MAX
        } else {
            (1u128 << gpus) - 1
        };
        let free = match &n.used {
            None => all,
            Some(Used::Count(c)) => {
                if *c < 0 || *c > i64::from(gpus) {
                    bail!("{at}: used = {c}: expected a count from 0 to gpus ({gpus})");
                }
                // A count says how many, not which: the highest indices are taken as used, so
                // that the free ones are 0.. (what a scheduler hands out first is unknown).
                let c = *c as u32;
                if c == gpus {
                    0
                } else {
                    all & ((1u128 << (gpus - c)) - 1)
                }
            }
            Some(Used::Indices(v)) => {
                let mut mask = all;
                for &g in v {
                    if g < 0 || g >= i64::from(gpus) {
                        bail!(
                            "{at}: used contains {g}: GPU indices run from 0 to {} (gpus = {gpus})",
                            gpus - 1
                        );
                    }
                    let bit = 1u128 << g;
                    if mask & bit == 0 {
                        bail!("{at}: used lists GPU {g} twice");
                    }
                    mask &= !bit;
                }
                mask
            }
        };
        let nics = match n.nics.or(defaults.nics) {
            Some(x) if !(0..=1024).contains(&x) => bail!("{at}: nics = {x}: expected 0 to 1024"),
            Some(x) => Some(x as u32),
            None => None,
        };
        let nic_gbps = match n.nic_gbps.or(defaults.nic_gbps) {
            Some(x) if !(x.is_finite() && x > 0.0 && x <= 100_000.0) => {
                bail!("{at}: nic_gbps = {x}: expected a line rate in Gb/s such as 400")
            }
            other => other,
        };
        let pod = n.pod.filter(|p| !p.trim().is_empty());
        let rack = match rack_index.get(&n.rack) {
            Some(&r) => {
                if racks[r].pod != pod {
                    bail!(
                        "{at}: rack '{}' is in pod {} here but in pod {} on an earlier node; a rack belongs to one pod",
                        n.rack,
                        pod.as_deref().unwrap_or("(none)"),
                        racks[r].pod.as_deref().unwrap_or("(none)")
                    );
                }
                r
            }
            None => {
                racks.push(Rack {
                    name: n.rack.clone(),
                    pod,
                });
                rack_index.insert(n.rack.clone(), racks.len() - 1);
                racks.len() - 1
            }
        };
        let nvlink = match &n.nvlink {
            Some(v) => Some(parse_gen(v, &at)?),
            None => default_gen,
        };
        let pcie = match (n.pcie_gen, n.pcie_width) {
            (None, None) => default_pcie,
            (g, w) => pcie_of(&at, g, w)?,
        };
        if nvlink == Some(NvlinkGen::None) && pcie.is_none() {
            bail!(
                "{at}: nvlink = \"none\" (PCIe only) needs pcie_gen (and pcie_width, default 16), e.g. pcie_gen = 4; the cost model reads the PCIe link from them"
            );
        }
        let domain = match n.nvlink_domain.as_deref().filter(|d| !d.trim().is_empty()) {
            None => None,
            Some(d) => {
                check_name(d, "nvlink_domain").map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
                if nvlink == Some(NvlinkGen::None) {
                    bail!(
                        "{at}: nvlink_domain '{d}' on a node with nvlink = \"none\"; a PCIe-only node has no NVLink domain"
                    );
                }
                let k = match domain_index.get(d) {
                    Some(&k) => {
                        if domains[k].rack != rack {
                            bail!(
                                "{at}: nvlink_domain '{d}' is in rack {} here but in rack {} on an earlier node; give every tray of a domain the same rack",
                                n.rack,
                                racks[domains[k].rack].name
                            );
                        }
                        if domain_seen[k].2 != gpus {
                            bail!(
                                "{at}: gpus = {gpus}, but other trays of nvlink_domain '{d}' have {}; the trays of a domain are alike",
                                domain_seen[k].2
                            );
                        }
                        k
                    }
                    None => {
                        let (dg, dt) = declared.get(d).copied().unwrap_or((None, None));
                        domains.push(Domain {
                            name: d.to_string(),
                            rack,
                            gpus: dg,
                            trays: dt,
                        });
                        domain_seen.push((0, 0, gpus));
                        domain_index.insert(d.to_string(), domains.len() - 1);
                        domains.len() - 1
                    }
                };
                let seen = &mut domain_seen[k];
                seen.0 += 1;
                seen.1 += gpus;
                let dom = &domains[k];
                if let (Some(dg), Some(dt)) = (dom.gpus, dom.trays)
                    && gpus != dg / dt
                {
                    bail!(
                        "{at}: gpus = {gpus}, but nvlink_domain '{d}' is declared as {dg} GPUs in {dt} trays ({} per tray)",
                        dg / dt
                    );
                }
                if let Some(dt) = dom.trays
                    && seen.0 > dt
                {
                    bail!(
                        "{at}: nvlink_domain '{d}' is declared with {dt} trays; this is tray {}",
                        seen.0
                    );
                }
                if let Some(dg) = dom.gpus
                    && seen.1 > dg
                {
                    bail!(
                        "{at}: nvlink_domain '{d}' is declared with {dg} GPUs; its trays so far have {}",
                        seen.1
                    );
                }
                Some(k)
            }
        };
        nodes.push(Node {
            name: n.name,
            rack,
            gpus,
            free,
            nics,
            nic_gbps,
            domain,
            nvlink,
            pcie,
        });
    }
    if let Some(name) = declared.keys().find(|d| !domain_index.contains_key(*d)) {
        bail!(
            "{source}: [[nvlink_domain]] '{name}' is declared but no node names it (nvlink_domain = \"{name}\")"
        );
    }
    Ok(Cluster {
        source: source.to_string(),
        nodes,
        racks,
        domains,
    })
}

fn check_defaults(source: &str, d: &RawDefaults) -> Result<()> {
    if let Some(g) = d.gpus
        && (g < 1 || g > i64::from(MAX_GPUS_PER_NODE))
    {
        bail!("{source}: [defaults] gpus = {g}: expected 1 to {MAX_GPUS_PER_NODE}");
    }
    if let Some(x) = d.nics
        && !(0..=1024).contains(&x)
    {
        bail!("{source}: [defaults] nics = {x}: expected 0 to 1024");
    }
    if let Some(x) = d.nic_gbps
        && !(x.is_finite() && x > 0.0 && x <= 100_000.0)
    {
        bail!("{source}: [defaults] nic_gbps = {x}: expected a line rate in Gb/s such as 400");
    }
    Ok(())
}

/// A synthetic cluster: `nodes` nodes of `gpus_per_node` free GPUs, `nodes_per_rack` to a rack
/// (the last rack may be short), optionally `racks_per_pod` racks to a pod. Names are `n0…`,
/// `r0…`, `p0…`.
pub fn synthetic(
    nodes: usize,
    gpus_per_node: u32,
    nodes_per_rack: usize,
    racks_per_pod: Option<usize>,
) -> Result<Cluster> {
    if nodes == 0 || nodes > 10_000_000 {
        bail!("--nodes {nodes}: expected 1 to 10000000");
    }
    if gpus_per_node == 0 || gpus_per_node > MAX_GPUS_PER_NODE {
        bail!("--gpus-per-node {gpus_per_node}: expected 1 to {MAX_GPUS_PER_NODE}");
    }
    if nodes_per_rack == 0 {
        bail!("--nodes-per-rack 0: expected at least 1");
    }
    if racks_per_pod == Some(0) {
        bail!("--racks-per-pod 0: expected at least 1");
    }
    let all: u128 = if gpus_per_node == 128 {
        u128::MAX
    } else {
        (1u128 << gpus_per_node) - 1
    };
    let nracks = nodes.div_ceil(nodes_per_rack);
    let racks = (0..nracks)
        .map(|r| Rack {
            name: format!("r{r}"),
            pod: racks_per_pod.map(|k| format!("p{}", r / k)),
        })
        .collect();
    let source = format!("synthetic: {nodes} nodes × {gpus_per_node} GPUs, {nodes_per_rack} nodes per rack");
    let nodes = (0..nodes)
        .map(|i| Node {
            name: format!("n{i}"),
            rack: i / nodes_per_rack,
            gpus: gpus_per_node,
            free: all,
            nics: None,
            nic_gbps: None,
            domain: None,
            nvlink: None,
            pcie: None,
        })
        .collect();
    Ok(Cluster {
        source,
        nodes,
        racks,
        domains: Vec::new(),
    })
}

/// A synthetic cluster of multi-node NVLink domains (e.g. GB200 NVL72: 18 trays of 4 GPUs),
/// one domain per rack, all GPUs free. Names are `d<k>-t<i>` for trays, `d<k>` for domains
/// and racks.
pub fn synthetic_domains(
    domains: usize,
    trays: u32,
    gpus_per_tray: u32,
    nvlink: NvlinkGen,
) -> Result<Cluster> {
    if domains == 0 || domains > 1_000_000 {
        bail!("domains {domains}: expected 1 to 1000000");
    }
    if gpus_per_tray == 0 || gpus_per_tray > MAX_GPUS_PER_NODE || trays == 0 {
        bail!(
            "trays {trays} x {gpus_per_tray} GPUs: expected at least 1 tray of 1 to {MAX_GPUS_PER_NODE} GPUs"
        );
    }
    if u64::from(trays) * u64::from(gpus_per_tray) > u64::from(MAX_DOMAIN_GPUS) {
        bail!("a domain of {trays} x {gpus_per_tray} GPUs exceeds {MAX_DOMAIN_GPUS}");
    }
    let all: u128 = if gpus_per_tray == 128 {
        u128::MAX
    } else {
        (1u128 << gpus_per_tray) - 1
    };
    let mut nodes = Vec::with_capacity(domains * trays as usize);
    for d in 0..domains {
        for t in 0..trays {
            nodes.push(Node {
                name: format!("d{d}-t{t}"),
                rack: d,
                gpus: gpus_per_tray,
                free: all,
                nics: None,
                nic_gbps: None,
                domain: Some(d),
                nvlink: Some(nvlink),
                pcie: None,
            });
        }
    }
    Ok(Cluster {
        source: format!(
            "synthetic: {domains} NVLink domains of {trays} trays x {gpus_per_tray} GPUs ({})",
            nvlink.as_str()
        ),
        nodes,
        racks: (0..domains)
            .map(|d| Rack {
                name: format!("d{d}"),
                pod: None,
            })
            .collect(),
        domains: (0..domains)
            .map(|d| Domain {
                name: format!("d{d}"),
                rack: d,
                gpus: Some(trays * gpus_per_tray),
                trays: Some(trays),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str, source: &str) -> String {
        format!("{:#}", parse(text, source).expect_err("must fail"))
    }

    #[test]
    fn a_toml_cluster_with_defaults_used_lists_and_counts() {
        let c = parse(
            r#"
[defaults]
gpus = 8
nics = 4
nic_gbps = 200

[[node]]
name = "n0"
rack = "r0"
pod = "p0"
used = [0, 1]

[[node]]
name = "n1"
rack = "r0"
pod = "p0"
gpus = 4
used = 3
nic_gbps = 400
"#,
            "c.toml",
        )
        .expect("parses");
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(
            c.racks,
            [Rack {
                name: "r0".into(),
                pod: Some("p0".into())
            }]
        );
        assert_eq!(c.nodes[0].free, 0b1111_1100);
        assert_eq!((c.nodes[0].nics, c.nodes[0].nic_gbps), (Some(4), Some(200.0)));
        // A count marks the highest indices used: GPU 0 stays free.
        assert_eq!(c.nodes[1].free, 0b0001);
        assert_eq!(c.nodes[1].nic_gbps, Some(400.0));
        assert_eq!(c.free_gpus(), 7);
    }

    #[test]
    fn the_same_shape_in_json() {
        let c = parse(
            r#"{"node": [{"name": "a", "rack": "r", "gpus": 8, "used": 8}, {"name": "b", "rack": "s", "gpus": 2}]}"#,
            "c.json",
        )
        .expect("parses");
        assert_eq!(c.free_gpus(), 2);
        assert_eq!(c.racks.len(), 2);
        let e = err(r#"{"node": [{"name": "a", "rack": "r", "gpus": -8}]}"#, "c.json");
        assert!(
            e.contains("c.json: node #1 'a': gpus = -8: expected 1 to 128"),
            "{e}"
        );
        let e = err("{\"node\": [\n{\"name\": \"a\", \"rack\": 3}]}", "c.json");
        assert!(e.starts_with("c.json: line 2 column"), "{e}");
    }

    #[test]
    fn errors_name_the_file_line_node_and_field() {
        let dup = "[[node]]\nname = \"n0\"\nrack = \"r0\"\ngpus = 8\n\n[[node]]\nname = \"n0\"\nrack = \"r1\"\ngpus = 8\n";
        let e = err(dup, "c.toml");
        assert!(
            e.contains("c.toml: line 6: node 'n0': duplicate node name (first defined at line 1)"),
            "{e}"
        );

        let e = err(
            "[[node]]\nname = \"n0\"\nrack = \"r0\"\ngpus = 8\nused = [1, 8]\n",
            "c.toml",
        );
        assert!(
            e.contains("line 1: node 'n0': used contains 8: GPU indices run from 0 to 7"),
            "{e}"
        );

        let e = err(
            "[[node]]\nname = \"n0\"\nrack = \"r0\"\ngpus = 8\nused = 9\n",
            "c.toml",
        );
        assert!(e.contains("used = 9: expected a count from 0 to gpus (8)"), "{e}");

        let e = err("[[node]]\nname = \"n0\"\nrack = \"r0\"\ngpus = -1\n", "c.toml");
        assert!(e.contains("gpus = -1: expected 1 to 128"), "{e}");

        let e = err(
            "[[node]]\nname = \"n0\"\nrack = \"r0\"\ngpus = 8\nused = [2, 2]\n",
            "c.toml",
        );
        assert!(e.contains("used lists GPU 2 twice"), "{e}");

        let e = err("[[node]]\nname = \"n0\"\nrack = \"r0\"\n", "c.toml");
        assert!(e.contains("gpus is missing"), "{e}");

        // A typo is not silently ignored: `use` would leave the GPUs looking free.
        let e = err(
            "[[node]]\nname = \"n0\"\nrack = \"r0\"\ngpus = 8\nuse = [0]\n",
            "c.toml",
        );
        assert!(
            e.contains("c.toml: line 5:") && e.contains("unknown field `use`"),
            "{e}"
        );

        let e = err(
            "[[node]]\nname = \"n0\"\nrack = \"r0\"\ngpus = 8\nused = \"all\"\n",
            "c.toml",
        );
        assert!(e.contains("a count of used GPUs"), "{e}");

        let e = err(
            "[[node]]\nname = \"n0\"\nrack = \"r0\"\ngpus = 8\nnic_gbps = -400\n",
            "c.toml",
        );
        assert!(e.contains("nic_gbps = -400"), "{e}");

        let e = err("title = 'x'\n", "c.toml");
        assert!(e.contains("unknown field `title`"), "{e}");
        assert!(err("", "c.toml").contains("no nodes"));
        let e = err("[[node]\nname = ", "c.toml");
        assert!(e.starts_with("c.toml: line 1:"), "{e}");
    }

    #[test]
    fn spine_is_another_name_for_the_higher_level() {
        let c = parse(
            "[[node]]\nname = \"a\"\nrack = \"r\"\nspine = \"s0\"\ngpus = 8\n",
            "c.toml",
        )
        .expect("ok");
        assert_eq!(c.racks[0].pod.as_deref(), Some("s0"));
    }

    #[test]
    fn a_rack_sits_in_one_pod() {
        let t = "[[node]]\nname = \"a\"\nrack = \"r\"\npod = \"p0\"\ngpus = 8\n[[node]]\nname = \"b\"\nrack = \"r\"\npod = \"p1\"\ngpus = 8\n";
        assert!(err(t, "c.toml").contains("rack 'r' is in pod p1 here but in pod p0"));
    }

    #[test]
    fn binary_junk_is_refused_with_the_file_name() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("junk.toml");
        std::fs::write(&p, [0xff, 0xfe, 0x00, 0x13]).expect("write");
        let e = format!("{:#}", load(&p).expect_err("must fail"));
        assert!(e.contains("junk.toml: not UTF-8"), "{e}");
        assert!(load(&dir.path().join("missing.toml")).is_err());
        // An endless input stops at the cap with a clear error.
        let e = format!(
            "{:#}",
            read_capped(Path::new("/dev/zero"), 1 << 20, "cluster file").expect_err("capped")
        );
        assert!(e.contains("/dev/zero: cluster file is larger than 1 MiB"), "{e}");
        // A control byte in the file name never reaches the message.
        let p = dir.path().join("bad\u{1b}]0;x\u{7}.toml");
        std::fs::write(&p, "title = 1\n").expect("write");
        let e = format!("{:#}", load(&p).expect_err("must fail"));
        assert!(
            !e.chars().any(char::is_control) && e.contains("bad\\u{1b}]0;x\\u{7}.toml"),
            "{e:?}"
        );
    }

    #[test]
    fn synthetic_clusters_fill_racks_in_order() {
        let c = synthetic(10, 8, 4, Some(2)).expect("ok");
        assert_eq!(c.racks.len(), 3);
        assert_eq!(c.nodes[9].rack, 2);
        assert_eq!(c.racks[2].pod.as_deref(), Some("p1"));
        assert_eq!(c.free_gpus(), 80);
        assert!(synthetic(0, 8, 4, None).is_err());
        assert!(synthetic(4, 0, 4, None).is_err());
        assert!(synthetic(4, 8, 0, None).is_err());
    }

    #[test]
    fn hostile_names_are_refused_naming_the_file_node_and_field() {
        let node = |name: &str| format!("[[node]]\nname = {name}\nrack = \"r0\"\ngpus = 8\n");
        for (name, what) in [
            (r#""evil\nhost slots=999""#, "a line break"),
            (r##""#c""##, "'#'"),
            (r#""a b""#, "white space"),
            (r#""x\u001b]0;pwn\u0007""#, "control byte 0x1b"),
            (r#""x\u0000""#, "control byte 0x00"),
            (r#""-np""#, "starts with '-'"),
            (r#""n$(id)""#, "'$'"),
            (r#""né""#, "'\\u{e9}'"),
        ] {
            let e = err(&node(name), "c.toml");
            assert!(e.starts_with("c.toml: line 1: node #1: name '"), "{e}");
            assert!(e.contains(what), "{name}: {e}");
            // The message itself carries no control byte or line break.
            assert!(!e.chars().any(|c| c.is_control()), "{e:?}");
        }
        let e = err("[[node]]\nname = \"n0\"\nrack = \"r 0\"\ngpus = 8\n", "c.toml");
        assert!(e.contains("node 'n0': rack 'r 0' contains white space"), "{e}");
        let e = err(
            "[[node]]\nname = \"n0\"\nrack = \"r0\"\npod = \"p#\"\ngpus = 8\n",
            "c.toml",
        );
        assert!(e.contains("pod 'p#'"), "{e}");
        let e = err(
            "[[node]]\nname = \"n0\"\nrack = \"r0\"\nnvlink_domain = \"d\\n0\"\ngpus = 4\n",
            "c.toml",
        );
        assert!(e.contains("nvlink_domain 'd\\n0' contains a line break"), "{e}");
        let long = "a".repeat(300);
        let e = err(&node(&format!("\"{long}\"")), "c.toml");
        assert!(e.contains("300 bytes long") && e.len() < 300, "{e}");
        // JSON too.
        let e = err(
            r#"{"node": [{"name": "ok\rbad", "rack": "r", "gpus": 8}]}"#,
            "c.json",
        );
        assert!(
            e.contains("c.json: node #1: name 'ok\\rbad' contains a line break"),
            "{e}"
        );
        // Ordinary host names pass.
        for ok in ["gpu-a01", "node_7.cluster.local", "A100x8"] {
            assert!(check_name(ok, "name").is_ok(), "{ok}");
        }
    }

    #[test]
    fn nvlink_domains_are_read_and_checked_against_their_declared_size() {
        let mut t = String::from(
            "[defaults]\ngpus = 4\nnvlink = \"gb200\"\n[[nvlink_domain]]\nname = \"d0\"\ngpus = 8\ntrays = 2\n",
        );
        for i in 0..2 {
            t += &format!("[[node]]\nname = \"t{i}\"\nrack = \"r0\"\nnvlink_domain = \"d0\"\n");
        }
        let c = parse(&t, "c.toml").expect("parses");
        assert_eq!(c.domains.len(), 1);
        assert_eq!((c.domains[0].gpus, c.domains[0].trays), (Some(8), Some(2)));
        assert!(
            c.nodes
                .iter()
                .all(|n| n.domain == Some(0) && n.nvlink == Some(NvlinkGen::Gb200))
        );
        let three = t.clone() + "[[node]]\nname = \"t2\"\nrack = \"r0\"\nnvlink_domain = \"d0\"\n";
        assert!(err(&three, "c.toml").contains("declared with 2 trays; this is tray 3"));
        let other_rack = t.replace("name = \"t1\"\nrack = \"r0\"", "name = \"t1\"\nrack = \"r1\"");
        assert!(err(&other_rack, "c.toml").contains("give every tray of a domain the same rack"));
        let wrong_tray = t.replace("name = \"t0\"\n", "name = \"t0\"\ngpus = 8\n");
        assert!(err(&wrong_tray, "c.toml").contains("declared as 8 GPUs in 2 trays (4 per tray)"));
        let unlike = t.replace("name = \"t1\"\n", "name = \"t1\"\ngpus = 8\n");
        assert!(err(&unlike, "c.toml").contains("the trays of a domain are alike"));
        let unused = t.clone() + "[[nvlink_domain]]\nname = \"d9\"\n";
        assert!(err(&unused, "c.toml").contains("'d9' is declared but no node names it"));
        assert!(
            err(
                "[[node]]\nname = \"a\"\nrack = \"r\"\ngpus = 8\nnvlink = \"h900\"\n",
                "c.toml"
            )
            .contains("expected one of v100, a100, h100")
        );
        assert!(
            err(
                "[[node]]\nname = \"a\"\nrack = \"r\"\ngpus = 8\nnvlink = \"none\"\n",
                "c.toml"
            )
            .contains("needs pcie_gen")
        );
        assert!(
            err(
                "[[node]]\nname = \"a\"\nrack = \"r\"\ngpus = 8\nnvlink = \"none\"\npcie_gen = 9\n",
                "c.toml"
            )
            .contains("pcie_gen = 9")
        );
        let c = synthetic_domains(2, 18, 4, NvlinkGen::Gb200).expect("ok");
        assert_eq!((c.nodes.len(), c.domains.len(), c.free_gpus()), (36, 2, 144));
    }
}
