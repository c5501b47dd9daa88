//! nccl-tests output (`all_reduce_perf` and friends), every version: streamed line by line, so
//! memory grows only with the rows kept. Handles the old per-collective headers whose last group
//! column is `error` (a maximum deviation, not a count), the unified header with `#wrong`, `N/A`
//! cells, exponent numbers, per-iteration and timestamp columns, launcher prefixes, NCCL INFO/WARN
//! lines interleaved (also inside a row), duplicated headers from several processes, several runs
//! in one file, runs cut off, and failure lines. Format: nccl-tests `src/util.cu` (v2.17.3+) and `src/common.cu` / `src/<coll>.cu` before.
//! The `-J` JSON output is parsed by `parse_json`.

use memchr::memmem::Finder;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::LazyLock;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Average time per operation, microseconds.
    pub time_us: Option<f64>,
    pub algbw_gbps: Option<f64>,
    pub busbw_gbps: Option<f64>,
    /// `#wrong` count (unified header); `None` when `N/A` or in the old format.
    pub wrong: Option<u64>,
    /// The old format's `error` column: the largest deviation found by validation.
    pub max_error: Option<f64>,
    /// busbw was printed but is not a number (`nan`, `inf`; JSON writes NaN as the string
    /// `"nan"`): a measurement that went wrong, not a missing one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub busbw_not_finite: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    pub size_bytes: u64,
    pub count: u64,
    /// The data type and reduction: nccl-tests' own names are static strings (no allocation
    /// per row); anything else is kept as written.
    #[serde(rename = "type")]
    pub dtype: Label,
    pub redop: Label,
    pub root: i64,
    pub out_of_place: Metrics,
    pub in_place: Option<Metrics>,
}

/// A short name from a row (`float`, `sum`): borrowed from a static list when it is one of
/// nccl-tests' names, owned otherwise.
pub type Label = std::borrow::Cow<'static, str>;

/// nccl-tests' reduction names (`src/common.cu` `test_opNames`), and `none` for collectives
/// that reduce nothing.
const REDOPS: [&str; 7] = ["sum", "prod", "max", "min", "avg", "mulsum", "none"];

/// `name` as a [`Label`]: static when nccl-tests prints it.
pub fn label(name: &str) -> Label {
    // The common ones first, without a scan.
    match name {
        "float" => return Label::Borrowed("float"),
        "sum" => return Label::Borrowed("sum"),
        "" => return Label::Borrowed(""),
        _ => {}
    }
    match TYPES.iter().chain(REDOPS.iter()).find(|t| **t == name) {
        Some(t) => Label::Borrowed(t),
        None => Label::Owned(name.to_string()),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Device {
    pub rank: u32,
    /// Host and GPU names repeat down a device list (eight or more ranks per host, one GPU
    /// model): the parser shares one allocation among the devices that name the same.
    pub host: Shared,
    pub device: u32,
    pub name: Shared,
}

/// A string shared, not copied, by the devices of a run that name the same host or GPU.
pub type Shared = std::sync::Arc<str>;

/// `s` as a [`Shared`]: the one in `last` when it names the same (device lines repeat the host
/// and GPU of the line before), else a new one, kept in `last` for the next line.
fn shared(last: &mut Shared, s: &str) -> Shared {
    if **last != *s {
        *last = Shared::from(s);
    }
    last.clone()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Run {
    pub source: String,
    pub collective: Option<String>,
    pub collective_inferred: bool,
    pub nranks: Option<u32>,
    pub nccl_version: Option<String>,
    pub nccl_tests_version: Option<String>,
    pub devices: Vec<Device>,
    /// `unified` (`#wrong`), `old` (`error` column), `v1` (time in ms, `res` column).
    pub format: String,
    pub rows: Vec<Row>,
    pub avg_busbw_gbps: Option<f64>,
    /// nccl-tests' own `NCCL_TESTS_MIN_BW` verdict on the average (`Avg bus bandwidth : X OK|FAILED`,
    /// JSON `average_bus_bandwidth.okay`); `None` when the variable was not set (`"unchecked"`).
    pub min_bw_ok: Option<bool>,
    pub out_of_bounds: Option<u64>,
    /// Failure lines (`Test NCCL failure ...`, `Test CUDA failure ...`, `Test timeout ...`, `# error: ...`).
    pub errors: Vec<String>,
    /// The column header was seen but the run ended before its footer.
    pub truncated: bool,
    /// Lines that looked like data rows but could not be read (line number, reason).
    pub skipped_lines: Vec<(usize, String)>,
    /// `NCCL_*` variables the run recorded: the JSON `env` list (only `NCCL_` names are kept:
    /// the full environment may hold secrets), or NCCL's `NCCL_X set by environment to Y` lines.
    pub nccl_env: BTreeMap<String, String>,
    /// `-t` and `-g` of the run (`# nThread T nGpus G`, JSON `config.nthreads`/`ngpus`).
    pub threads_per_process: Option<u32>,
    pub gpus_per_thread: Option<u32>,
    /// MPI processes: distinct pids in the text's device list; JSON `config.devices` entries.
    pub processes: Option<u32>,
    /// JSON file-format version (`version`: 1 in nccl-tests 2.17.3-2.19.1, 2 in 2.19.2-2.19.5,
    /// 3 from 2.19.6; nccl-tests `src/util.cu` JSON_FILE_VERSION). Not the nccl-tests version.
    pub json_version: Option<u32>,
    /// The network NCCL reported in its INFO lines, when the log has them.
    pub net: NetSeen,
    /// NCCL's own algorithm/protocol per size, from its TUNING lines (`NCCL_DEBUG_SUBSYS=TUNING`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nccl_choices: Vec<NcclChoice>,
}

/// One NCCL TUNING line: `AllReduce: 1048576 Bytes -> Algo Ring proto LL128 channel{Lo..Hi}={0..31}`
/// (rank 0 only, NCCL `src/enqueue.cc`, recent releases) or the older
/// `1048576 Bytes -> Algo 1 proto 2 time 11038.5` (indices). Names are lowercased as NCCL's tuner
/// plugin spells them (`ring`, `nvls_tree`, `ll128`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NcclChoice {
    /// `allreduce`, `allgather`, ... (lowercase NCCL function name); `None` in the old format.
    pub func: Option<String>,
    /// Bytes as NCCL prints them: count x type size (per rank for allgather/reducescatter).
    pub bytes: u64,
    pub algo: String,
    pub proto: String,
}

/// NCCL's algorithm names (`ncclAlgoStr`) and indices (`NCCL_ALGO_*` in `src/include/device.h`)
/// as the example tuner plugin spells them.
pub fn plugin_algo_name(nccl: &str) -> Option<&'static str> {
    Some(match nccl.to_ascii_lowercase().as_str() {
        "0" | "tree" => "tree",
        "1" | "ring" => "ring",
        "2" | "collnetdirect" | "collnet_direct" => "collnet_direct",
        "3" | "collnetchain" | "collnet_chain" => "collnet_chain",
        "4" | "nvls" => "nvls",
        "5" | "nvlstree" | "nvls_tree" => "nvls_tree",
        "6" | "pat" => "pat",
        _ => return None,
    })
}

/// NCCL's protocol names (`ncclProtoStr`) and indices as the plugin spells them.
pub fn plugin_proto_name(nccl: &str) -> Option<&'static str> {
    Some(match nccl.to_ascii_lowercase().as_str() {
        "0" | "ll" => "ll",
        "1" | "ll128" => "ll128",
        "2" | "simple" => "simple",
        _ => return None,
    })
}

fn tuning_line(msg: &str) -> Option<NcclChoice> {
    let (head, rest) = msg.split_once(" Bytes -> Algo ")?;
    let (func, bytes) = match head.split_once(": ") {
        Some((f, b)) => (Some(f.trim().to_ascii_lowercase()), b.trim()),
        None => (None, head.trim()),
    };
    let bytes = bytes.parse::<u64>().ok()?;
    let mut t = rest.split_whitespace();
    let algo = plugin_algo_name(t.next()?)?;
    if t.next()? != "proto" {
        return None;
    }
    let proto = plugin_proto_name(t.next()?)?;
    Some(NcclChoice {
        func,
        bytes,
        algo: algo.into(),
        proto: proto.into(),
    })
}

/// What NCCL's INFO lines say about the network (NCCL `src/transport/net_ib.cc`,
/// `net_socket.cc`, `src/init.cc` `Using network X`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NetSeen {
    /// `IB`, `Socket`, or a plugin's name (`AWS Libfabric`), from `Using network X`.
    pub network: Option<String>,
    /// NICs from `NET/IB : Using [0]mlx5_0:1/IB [1]...` (per host; names deduplicated).
    pub ib_nics: Vec<String>,
    /// `RoCE` when any listed NIC is RoCE, `IB` otherwise.
    pub ib_link: Option<String>,
    /// Per NIC name, the rate in Gb/s from `NET/IB: [d] name:uverbsN:port/IB ... speed=<Mb/s>`.
    pub nic_gbps: BTreeMap<String, f64>,
    /// A network plugin NCCL loaded (`NET/Plugin: Loaded net plugin X`, `NET/OFI Using aws-ofi-nccl V`).
    pub plugin: Option<String>,
    /// Interfaces from `NET/Socket : Using [0]eth0:10.0.0.1<0>`.
    pub socket_ifs: Vec<String>,
}

/// Where each column group sits, learnt from the column header.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Layout {
    has_redop: bool,
    has_root: bool,
    /// Columns per out-of-place / in-place group (4, or 8 with per-iteration columns).
    group: usize,
    /// Last column is `error`/`res` (old format) instead of `#wrong`.
    old_error: bool,
    /// v1: time in milliseconds.
    time_ms: bool,
    timestamp: bool,
}

/// Streaming parser: feed lines; take each run as it completes with [`Parser::take_finished`]
/// (so memory holds one run, not the file), then `finish` for the last.
#[derive(Debug, Default)]
pub struct Parser {
    source: String,
    runs: Vec<Run>,
    cur: Run,
    layout: Option<Layout>,
    line_no: usize,
    /// First part of a row that an interleaved NCCL line cut in two.
    pending: Option<String>,
    /// A footer was seen for the current run.
    concluded: bool,
    /// A run header (`nThread ...` or `Collective test starting`) was seen for the current run.
    started: bool,
    versions: (Option<String>, Option<String>),
    /// The network and NCCL_* settings of the previous run: NCCL prints them once per process,
    /// so a later run in the same file without its own INFO lines ran on the same network.
    seen_net: NetSeen,
    seen_env: BTreeMap<String, String>,
    /// (host, pid) and ranks of the current run's device lines.
    pids: Vec<(Shared, u32)>,
    ranks_seen: RankSet,
    /// The host and GPU names of the previous device line, shared by the next one that repeats
    /// them.
    last_names: (Shared, Shared),
}

/// The ranks of a run's device list: a bit per rank below `RankSet::BITS` (a job's ranks are
/// 0..n), a hash set for the odd larger number a damaged log may hold.
#[derive(Debug, Default)]
struct RankSet {
    bits: Vec<u64>,
    large: std::collections::HashSet<u32>,
}

impl RankSet {
    /// Ranks below this take a bit (at most 512 KiB of them).
    const BITS: u32 = 1 << 22;

    /// `true` when `rank` was not in the set.
    fn insert(&mut self, rank: u32) -> bool {
        if rank >= Self::BITS {
            return self.large.insert(rank);
        }
        let (word, bit) = ((rank / 64) as usize, rank % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let fresh = self.bits[word] & (1 << bit) == 0;
        self.bits[word] |= 1 << bit;
        fresh
    }

    fn clear(&mut self) {
        self.bits.clear();
        self.large.clear();
    }
}

/// Substring searchers built once: `str::contains`/`find` build a new searcher on every call,
/// which dominated the time on logs full of NCCL INFO lines.
struct Markers {
    nccl: Finder<'static>,
    nccl_info: Finder<'static>,
    nccl_warn: Finder<'static>,
    test: Finder<'static>,
    bytes_algo: Finder<'static>,
    set_by_env: Finder<'static>,
}

static MARKERS: LazyLock<Markers> = LazyLock::new(|| Markers {
    nccl: Finder::new(" NCCL "),
    nccl_info: Finder::new(" NCCL INFO"),
    nccl_warn: Finder::new(" NCCL WARN"),
    test: Finder::new("Test "),
    bytes_algo: Finder::new(" Bytes -> Algo "),
    set_by_env: Finder::new(" set by environment to "),
});

const TYPES: [&str; 13] = [
    "int8", "uint8", "int32", "uint32", "int64", "uint64", "half", "float", "double", "bfloat16", "f8e4m3",
    "f8e5m2", "char",
];

/// `s` without its leading white space (Unicode's, as `str::trim_start`), by bytes unless what
/// the ASCII pass stops at may be white space of another kind (a vertical tab, non-ASCII).
fn trim_lead(s: &str) -> &str {
    let t = s.trim_ascii_start();
    match t.as_bytes().first() {
        Some(&b) if b == 0x0b || b >= 0x80 => t.trim_start(),
        _ => t,
    }
}

/// `s` without its trailing white space, as `str::trim_end`, by bytes as [`trim_lead`].
fn trim_tail(s: &str) -> &str {
    let t = s.trim_ascii_end();
    match t.as_bytes().last() {
        Some(&b) if b == 0x0b || b >= 0x80 => t.trim_end(),
        _ => t,
    }
}

/// The tokens of `s` between ASCII white space, exactly as `str::split_ascii_whitespace`
/// yields them, by a plain byte loop (the std iterator, a split then a filter, was most of a
/// data row's time).
fn ascii_tokens(s: &str) -> impl Iterator<Item = &str> {
    let b = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() {
            return None;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        // ASCII white space never sits inside a UTF-8 sequence: both ends are char boundaries.
        s.get(start..i)
    })
}

/// Strips launcher prefixes: `[1,0]<stdout>:` (Open MPI), `0: ` (srun --label), `[0] `.
/// Looks only at the head of the line (a prefix is digits and commas in brackets, or up to six
/// digits and `: `), never through the rest of it.
fn strip_prefix(line: &str) -> &str {
    let mut s = line;
    loop {
        let t = s;
        let b = s.as_bytes();
        if b.first() == Some(&b'[') {
            let close = 1 + b[1..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == b',')
                .count();
            if close > 1 && b.get(close) == Some(&b']') {
                s = &s[close + 1..];
                if let Some(r) = s
                    .strip_prefix("<stdout>:")
                    .or_else(|| s.strip_prefix("<stderr>:"))
                {
                    s = r;
                }
            }
        } else {
            let n = b.iter().take(7).take_while(|c| c.is_ascii_digit()).count();
            if (1..=6).contains(&n) && b[n..].starts_with(b": ") {
                s = &s[n + 2..];
            }
        }
        if s.len() == t.len() {
            return s;
        }
    }
}

/// An interleaved NCCL log line (`host:pid:tid [dev] NCCL INFO msg`) in `line`: where it
/// starts, and its message when it is an INFO line.
fn nccl_marker(line: &str) -> Option<(usize, Option<&str>)> {
    let m = &*MARKERS;
    let (at, msg) = match m.nccl_info.find(line.as_bytes()) {
        Some(at) => (at, line[at + 10..].strip_prefix(' ').map(str::trim)),
        None => (m.nccl_warn.find(line.as_bytes())?, None),
    };
    // Walk back over "[dev]" and "host:pid:tid" (and a launcher's "[0]" glued in front).
    let head = &line[..at];
    let dev_start = memchr::memrchr(b'[', head.as_bytes())?;
    let before = head[..dev_start].trim_end();
    let host_start = match before.bytes().rposition(|b| b.is_ascii_whitespace()) {
        Some(i) => i + 1,
        // A host name with other (Unicode) white space in front of it.
        None => before
            .rfind(char::is_whitespace)
            .map_or(0, |i| i + before[i..].chars().next().map_or(1, char::len_utf8)),
    };
    // A launcher prefix such as "[0] " in front of the host, glued to the row fragment before
    // it ("... -1[0] host:pid:tid [0] NCCL INFO"): it belongs to the NCCL line, not the row.
    let lead = before[..host_start].trim_end();
    let start = if lead.ends_with(']')
        && let Some(open) = memchr::memrchr(b'[', lead.as_bytes())
        && lead[open + 1..lead.len() - 1].bytes().all(|c| c.is_ascii_digit())
    {
        open
    } else {
        host_start
    };
    Some((start, msg))
}

/// Reads the network and `NCCL_*` settings from one NCCL INFO message (the text after
/// `NCCL INFO `). Formats: NCCL `src/transport/net_ib.cc` (`NET/IB : Using [0]mlx5_0:1/IB ...`,
/// `NET/IB: [0] mlx5_0:uverbs0:1/IB provider=Mlx5 speed=400000 ...`, speed in Mb/s),
/// `net_socket.cc` (`NET/Socket : Using [0]eth0:10.0.0.1<0>`), `src/init.cc` (`Using network IB`),
/// `src/misc/param.cc` (`NCCL_X set by environment to Y.`).
fn nccl_info(net: &mut NetSeen, env: &mut BTreeMap<String, String>, msg: &str) {
    // Every message read here starts with `U` (Using network) or `N` (NET/..., NCCL_...):
    // the others (channels, rings, trees, ...) are passed over at the first byte.
    if !matches!(msg.as_bytes().first(), Some(b'U' | b'N')) {
        return;
    }
    if let Some(rest) = msg.strip_prefix("Using network ") {
        net.network.get_or_insert_with(|| rest.trim().to_string());
    } else if let Some(rest) = msg
        .strip_prefix("NET/IB : Using")
        .or_else(|| msg.strip_prefix("NET/IB: Using"))
    {
        let list = rest.split(';').next().unwrap_or("");
        for tok in list.split_whitespace() {
            let Some(body) = tok.strip_prefix('[') else {
                continue;
            };
            let Some((idx, dev)) = body.split_once(']') else {
                continue;
            };
            if idx.is_empty() || !idx.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let name = dev.split(':').next().unwrap_or("").to_string();
            if dev.contains("/RoCE") {
                net.ib_link = Some("RoCE".into());
            } else if net.ib_link.is_none() {
                net.ib_link = Some("IB".into());
            }
            if !name.is_empty() && !net.ib_nics.contains(&name) && net.ib_nics.len() < 64 {
                net.ib_nics.push(name);
            }
        }
    } else if let Some(rest) = msg.strip_prefix("NET/IB: [") {
        let Some((_, dev)) = rest.split_once("] ") else {
            return;
        };
        let name = dev.split(':').next().unwrap_or("").trim();
        let speed = dev
            .split_whitespace()
            .find_map(|t| t.strip_prefix("speed="))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0);
        if let Some(mbps) = speed
            && !name.is_empty()
            && net.nic_gbps.len() < 64
        {
            net.nic_gbps.insert(name.to_string(), mbps / 1000.0);
        }
    } else if let Some(rest) = msg
        .strip_prefix("NET/Socket : Using")
        .or_else(|| msg.strip_prefix("NET/Socket: Using"))
    {
        for tok in rest.split_whitespace() {
            if let Some((_, ifc)) = tok.strip_prefix('[').and_then(|b| b.split_once(']')) {
                let name = ifc.split(':').next().unwrap_or("").to_string();
                if !name.is_empty() && !net.socket_ifs.contains(&name) && net.socket_ifs.len() < 64 {
                    net.socket_ifs.push(name);
                }
            }
        }
    } else if let Some(rest) = msg.strip_prefix("NET/Plugin: Loaded net plugin ") {
        net.plugin.get_or_insert_with(|| rest.trim().to_string());
    } else if let Some(rest) = msg.strip_prefix("NET/OFI Using ") {
        net.plugin.get_or_insert_with(|| rest.trim().to_string());
    } else if msg.starts_with("NCCL_")
        && let Some(at) = MARKERS.set_by_env.find(msg.as_bytes())
        && let (name, value) = (&msg[..at], &msg[at + 23..])
        && name.starts_with("NCCL_")
        && name.len() < 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && env.len() < 256
    {
        let v = value.trim().strip_suffix('.').unwrap_or(value.trim());
        env.entry(name.to_string()).or_insert_with(|| v.to_string());
    }
}

fn num(tok: &str) -> Option<f64> {
    if let Some(v) = simple_decimal(tok) {
        return Some(v);
    }
    if tok == "N/A" {
        return None;
    }
    tok.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Powers of ten that are exact doubles.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// `123.45`-style numbers (what nccl-tests prints with `%.2f`) without the general parser:
/// with at most 15 digits the digits are an exact integer below 2^53 and the power of ten is
/// exact, so one division rounds correctly and gives the very value `str::parse` gives
/// (Clinger's fast path). `None` for anything else (exponents, signs, `N/A`), which then goes
/// through `str::parse`.
fn simple_decimal(tok: &str) -> Option<f64> {
    let b = tok.as_bytes();
    if b.is_empty() || b.len() > 16 {
        return None;
    }
    let mut m: u64 = 0;
    let mut digits = 0usize;
    let mut frac: Option<usize> = None;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                m = m * 10 + u64::from(c - b'0');
                digits += 1;
                if let Some(f) = &mut frac {
                    *f += 1;
                }
            }
            b'.' if frac.is_none() => frac = Some(0),
            _ => return None,
        }
    }
    if digits == 0 || digits > 15 {
        return None;
    }
    Some(m as f64 / POW10[frac.unwrap_or(0)])
}

/// One of nccl-tests' data type names (`TYPES`).
fn is_type(t: &str) -> bool {
    matches!(
        t,
        "int8"
            | "uint8"
            | "int32"
            | "uint32"
            | "int64"
            | "uint64"
            | "half"
            | "float"
            | "double"
            | "bfloat16"
            | "f8e4m3"
            | "f8e5m2"
            | "char"
    )
}

impl Parser {
    pub fn new(source: &str) -> Parser {
        Parser {
            source: source.to_string(),
            cur: Run {
                source: source.to_string(),
                ..Run::default()
            },
            ..Parser::default()
        }
    }

    fn start_run(&mut self) {
        let rows = self.cur.rows.len().clamp(8, 4096);
        let done = std::mem::replace(
            &mut self.cur,
            Run {
                source: self.source.clone(),
                // Runs of one log usually have as many sizes as the one before.
                rows: Vec::with_capacity(rows),
                ..Run::default()
            },
        );
        self.push(done);
        self.layout = None;
        self.pending = None;
        self.concluded = false;
        self.started = false;
        self.pids.clear();
        self.ranks_seen.clear();
    }

    fn push(&mut self, mut run: Run) {
        if run.rows.is_empty()
            && run.errors.is_empty()
            && run.devices.is_empty()
            && self.layout.is_none()
            && !self.started
        {
            return;
        }
        if (self.layout.is_some() || self.started) && !self.concluded {
            run.truncated = true;
        }
        if run.processes.is_none() && !self.pids.is_empty() {
            let mut p = std::mem::take(&mut self.pids);
            p.sort_unstable();
            p.dedup();
            run.processes = Some(p.len() as u32);
        }
        if run.net == NetSeen::default() {
            run.net = self.seen_net.clone();
        } else {
            self.seen_net = run.net.clone();
        }
        for (k, v) in &self.seen_env {
            run.nccl_env.entry(k.clone()).or_insert_with(|| v.clone());
        }
        self.seen_env
            .extend(run.nccl_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        run.nccl_tests_version = run.nccl_tests_version.or(self.versions.0.clone());
        run.nccl_version = run.nccl_version.or(self.versions.1.clone());
        self.runs.push(run);
    }

    pub fn feed(&mut self, raw: &str) {
        self.line_no += 1;
        let mut end = raw.len();
        while end > 0 && matches!(raw.as_bytes()[end - 1], b'\r' | b'\n') {
            end -= 1;
        }
        let line = strip_prefix(&raw[..end]);
        // Fast path for the common case, a data row with nothing interleaved.
        let lead = trim_lead(line);
        let m = &*MARKERS;
        // A row holds neither `N` nor `T` (but for `N/A` cells): one scan for both rules
        // out " NCCL " and "Test ".
        if lead.starts_with(|c: char| c.is_ascii_digit())
            && (memchr::memchr2(b'N', b'T', line.as_bytes()).is_none()
                || (m.nccl.find(line.as_bytes()).is_none() && m.test.find(line.as_bytes()).is_none()))
        {
            self.data_line(trim_tail(lead));
            return;
        }
        if let Some((at, msg)) = nccl_marker(line) {
            if let Some(msg) = msg {
                // TUNING lines: `AllReduce: 1048576 Bytes -> Algo ...` or `1048576 Bytes -> ...`.
                let first_word = &msg[..memchr::memchr(b' ', msg.as_bytes()).unwrap_or(msg.len())];
                let maybe_tuning =
                    first_word.ends_with(':') || first_word.starts_with(|c: char| c.is_ascii_digit());
                if maybe_tuning && m.bytes_algo.find(msg.as_bytes()).is_some() {
                    if let Some(c) = tuning_line(msg)
                        && self.cur.nccl_choices.len() < 4096
                        && !self.cur.nccl_choices.contains(&c)
                    {
                        self.cur.nccl_choices.push(c);
                    }
                } else if let Some(rest) = msg.strip_prefix("NCCL version ") {
                    let v = rest.split_whitespace().next().unwrap_or("");
                    if v.starts_with(|c: char| c.is_ascii_digit()) {
                        self.cur.nccl_version.get_or_insert_with(|| v.to_string());
                    }
                } else {
                    nccl_info(&mut self.cur.net, &mut self.cur.nccl_env, msg);
                }
            }
            let fragment = line[..at].trim();
            if !fragment.is_empty() && fragment.starts_with(|c: char| c.is_ascii_digit()) {
                self.pending = Some(fragment.to_string());
            }
            return;
        }
        let t = line.trim();
        if t.is_empty() {
            return;
        }
        // Every failure marker holds "Test ": one search rules them all out on other lines.
        if m.test.find(t.as_bytes()).is_some()
            && (t.contains("Test NCCL failure")
                || t.contains("Test CUDA failure")
                || t.contains("Test timeout")
                || (t.contains(": Test failure ") && !t.starts_with("..")))
        {
            self.cur.errors.push(t.to_string());
            return;
        }
        if let Some(v) = t.strip_prefix("NCCL version ") {
            self.cur
                .nccl_version
                .get_or_insert_with(|| v.split_whitespace().next().unwrap_or("").to_string());
            return;
        }
        let body = t.strip_prefix('#').map(str::trim);
        let hashless = body.unwrap_or(t);
        if hashless.starts_with("nThread ") {
            if self.layout.is_some() || !self.cur.rows.is_empty() {
                self.start_run();
            }
            self.started = true;
            let toks: Vec<&str> = hashless.split_whitespace().collect();
            let after = |k: &str| {
                toks.iter()
                    .position(|t| *t == k)
                    .and_then(|i| toks.get(i + 1))
                    .and_then(|v| v.parse::<u32>().ok())
            };
            self.cur.threads_per_process = after("nThread");
            self.cur.gpus_per_thread = after("nGpus");
            return;
        }
        if let Some(rest) = hashless.strip_prefix("Out of bounds values") {
            let n = rest
                .trim_start_matches([' ', ':'])
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok());
            self.cur.out_of_bounds = n;
            self.concluded = true;
            return;
        }
        if let Some(rest) = hashless.strip_prefix("Avg bus bandwidth") {
            let mut words = rest.trim_start_matches([' ', ':']).split_whitespace();
            self.cur.avg_busbw_gbps = words.next().and_then(num);
            self.cur.min_bw_ok = match words.next() {
                Some("OK") => Some(true),
                Some("FAILED") => Some(false),
                _ => None,
            };
            self.concluded = true;
            return;
        }
        let Some(body) = body else {
            if let Some(bin) = t
                .split_whitespace()
                .find(|w| w.ends_with("_perf") || w.ends_with("_perf_mpi"))
                && !t.starts_with(|c: char| c.is_ascii_digit())
            {
                // The command line of the next test (a shell transcript): a new run.
                self.start_run();
                let name = bin.rsplit('/').next().unwrap_or(bin);
                self.cur.collective = Some(
                    name.trim_end_matches("_mpi")
                        .trim_end_matches("_perf")
                        .to_string(),
                );
                return;
            }
            self.data_line(t);
            return;
        };
        if let Some(rest) = body.strip_prefix("nccl-tests version ") {
            self.versions.0 = rest.split_whitespace().next().map(str::to_string);
            if let Some(code) = rest
                .split("nccl-library=")
                .nth(1)
                .and_then(|c| c.split_whitespace().next())
                .and_then(|c| c.parse::<u64>().ok())
            {
                self.versions.1 = Some(nccl_version_from_code(code));
            }
        } else if let Some(rest) = body.strip_prefix("Collective test starting:") {
            if self.layout.is_some() || !self.cur.rows.is_empty() {
                self.start_run();
            }
            let name = rest.trim().trim_end_matches("_mpi").trim_end_matches("_perf");
            self.cur.collective = Some(name.to_string());
            self.started = true;
        } else if body.starts_with("Collective test concluded") {
            self.concluded = true;
        } else if let Some(rest) = body.strip_prefix("error:") {
            if !rest.trim().is_empty() {
                self.cur.errors.push(format!("error: {}", rest.trim()));
            }
        } else if body.starts_with("Rank ") {
            self.device_line(body);
        } else if matches!(body.split_ascii_whitespace().next(), Some("size" | "bytes")) {
            let toks: Vec<&str> = body.split_whitespace().collect();
            if toks.contains(&"busbw") {
                let layout = layout_from(&toks);
                if self
                    .layout
                    .as_ref()
                    .is_some_and(|l| !self.cur.rows.is_empty() && *l == layout)
                {
                    // The same header again from another process: one run.
                    return;
                }
                if !self.cur.rows.is_empty() {
                    self.start_run();
                }
                self.cur.format = if layout.time_ms {
                    "v1"
                } else if layout.old_error {
                    "old"
                } else {
                    "unified"
                }
                .to_string();
                self.layout = Some(layout);
            }
        }
    }

    fn device_line(&mut self, body: &str) {
        // "Rank  0 Group  0 Pid 1234 on host device  0 [0000:18:00] NVIDIA H100 80GB HBM3"
        // One pass over the tokens: the word after the first `on`, `device` and `Pid`.
        let (mut rank, mut host, mut device, mut pid) = (None, None, None, None);
        let mut prev = "";
        for (i, tok) in body.split_ascii_whitespace().enumerate() {
            if i == 1 {
                rank = tok.parse::<u32>().ok();
                if rank.is_none() {
                    return;
                }
            }
            match prev {
                "on" if host.is_none() => host = Some(tok),
                "device" if device.is_none() => device = Some(tok),
                "Pid" if pid.is_none() => pid = Some(tok),
                _ => {}
            }
            prev = tok;
        }
        let Some(rank) = rank else { return };
        let host = shared(&mut self.last_names.0, host.unwrap_or(""));
        let device = device.and_then(|d| d.parse().ok()).unwrap_or(0);
        let name = memchr::memchr(b']', body.as_bytes()).map_or("", |i| body[i + 1..].trim());
        let name = shared(&mut self.last_names.1, name);
        let pid = pid.and_then(|d| d.parse::<u32>().ok());
        // A set, not a scan of the list: logs of large jobs list tens of thousands of ranks.
        if self.ranks_seen.insert(rank) {
            if let Some(pid) = pid {
                self.pids.push((host.clone(), pid));
            }
            self.cur.devices.push(Device {
                rank,
                host,
                device,
                name,
            });
        }
        // The text lists every rank (rank 0 gathers each process's lines).
        self.cur.nranks = Some(self.cur.devices.len() as u32);
    }

    fn data_line(&mut self, t: &str) {
        // The tokens of a row, on the stack: a row has at most 25 columns (per-iteration
        // columns and a timestamp); a longer line spills into a Vec.
        let mut stack: [&str; 32] = [""; 32];
        let mut n = 0;
        let mut heap: Vec<&str> = Vec::new();
        for tok in ascii_tokens(t) {
            if n < stack.len() {
                stack[n] = tok;
                n += 1;
            } else {
                if heap.is_empty() {
                    heap.extend_from_slice(&stack);
                }
                heap.push(tok);
            }
        }
        let mut toks: &[&str] = if heap.is_empty() { &stack[..n] } else { &heap };
        if self.layout.is_none() && toks.len() >= 11 && is_type(toks[2]) {
            // An excerpt that starts below the column header: infer the layout from the row.
            let layout = guess_layout(toks);
            self.cur.format = if layout.old_error { "old" } else { "unified" }.to_string();
            self.layout = Some(layout);
        }
        let Some(layout) = self.layout else { return };
        let joined;
        let joined_toks: Vec<&str>;
        if toks.len() < 3 || !is_type(toks[2]) {
            // The rest of a row that an NCCL line interrupted.
            match self.pending.take() {
                Some(first) => {
                    joined = format!("{first} {t}");
                    joined_toks = joined.split_whitespace().collect();
                    toks = &joined_toks;
                }
                None => {
                    if t.starts_with(|c: char| c.is_ascii_digit()) {
                        self.cur
                            .skipped_lines
                            .push((self.line_no, "numbers without a size/count/type preamble".into()));
                    }
                    return;
                }
            }
        }
        self.pending = None;
        match parse_row(toks, &layout) {
            Ok(row) => self.cur.rows.push(row),
            Err(why) => self.cur.skipped_lines.push((self.line_no, why)),
        }
    }

    /// Rows parsed so far in the current run (for progress while streaming).
    pub fn rows_so_far(&self) -> usize {
        self.runs.iter().map(|r| r.rows.len()).sum::<usize>() + self.cur.rows.len()
    }

    /// Size and out-of-place busbw of the last row parsed.
    pub fn last_row(&self) -> Option<(u64, Option<f64>)> {
        self.cur
            .rows
            .last()
            .map(|r| (r.size_bytes, r.out_of_place.busbw_gbps))
    }

    /// The runs that have ended so far (a new run's header, or a shell command line, ends the
    /// one before), oldest first; each is handed out once.
    pub fn take_finished(&mut self) -> std::vec::Drain<'_, Run> {
        self.runs.drain(..)
    }

    /// Feeds one line as bytes: strict UTF-8 first (no copy); the lossy path only for lines
    /// that need it.
    pub fn feed_bytes(&mut self, line: &[u8]) {
        match std::str::from_utf8(line) {
            Ok(l) => self.feed(l),
            Err(_) => self.feed(&String::from_utf8_lossy(line)),
        }
    }

    pub fn finish(mut self) -> Vec<Run> {
        let last = std::mem::take(&mut self.cur);
        self.push(last);
        self.runs
    }
}

fn layout_from(toks: &[&str]) -> Layout {
    let v1 = toks.first() == Some(&"bytes");
    let per_iter = toks.contains(&"i_min");
    Layout {
        has_redop: toks.contains(&"redop") || toks.contains(&"op"),
        has_root: toks.contains(&"root"),
        group: if per_iter { 8 } else { 4 },
        old_error: toks.contains(&"error") || toks.contains(&"res"),
        time_ms: v1,
        timestamp: toks.contains(&"timestamp"),
    }
}

/// A layout from a data row alone: two groups of four value columns at the end, the preamble
/// before them; an `error` column prints deviations like `0e+00`, a `#wrong` column integers.
fn guess_layout(toks: &[&str]) -> Layout {
    let rest = &toks[3..];
    let preamble = rest.len().saturating_sub(8);
    let last = rest.last().copied().unwrap_or("");
    Layout {
        has_redop: preamble >= 1,
        has_root: preamble >= 2
            || rest
                .first()
                .is_some_and(|t| t.parse::<i64>().is_ok() && preamble == 1),
        group: 4,
        old_error: last.contains('e') || last.contains('.'),
        time_ms: false,
        timestamp: false,
    }
}

fn metrics(g: &[&str], layout: &Layout) -> Metrics {
    let scale = if layout.time_ms { 1000.0 } else { 1.0 };
    let last = g.get(3).copied().unwrap_or("N/A");
    let busbw = g.get(2).and_then(|v| num(v));
    Metrics {
        time_us: g.first().and_then(|v| num(v)).map(|v| v * scale),
        algbw_gbps: g.get(1).and_then(|v| num(v)),
        busbw_gbps: busbw,
        wrong: if layout.old_error {
            None
        } else {
            num(last).map(|v| v as u64)
        },
        max_error: if layout.old_error { num(last) } else { None },
        // Parsed again only when it was not a finite number: `nan`, `inf`.
        busbw_not_finite: busbw.is_none()
            && g.get(2)
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| !v.is_finite()),
    }
}

fn parse_row(toks: &[&str], layout: &Layout) -> Result<Row, String> {
    let size = toks
        .first()
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or("size is not a whole number")?;
    let count = toks
        .get(1)
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or("count is not a whole number")?;
    let dtype = label(toks.get(2).ok_or("no type")?);
    let mut rest = &toks[3..];
    if layout.timestamp && rest.len() >= 2 && rest[rest.len() - 2].contains('-') {
        rest = &rest[..rest.len() - 2];
    }
    let metric_cols = 2 * layout.group;
    let (preamble, metric) = if rest.len() >= metric_cols {
        rest.split_at(rest.len() - metric_cols)
    } else if rest.len() >= layout.group {
        // Only the out-of-place group (a cut line).
        let p = rest.len() - layout.group;
        rest.split_at(p)
    } else {
        return Err(format!(
            "{} value columns where {metric_cols} are expected",
            rest.len()
        ));
    };
    let (mut redop, mut root) = (Label::Borrowed(""), -1);
    for tok in preamble {
        match tok.parse::<i64>() {
            Ok(r) if layout.has_root => root = r,
            _ => redop = label(tok),
        }
    }
    let out_of_place = metrics(&metric[..layout.group.min(metric.len())], layout);
    let in_place = (metric.len() >= 2 * layout.group).then(|| metrics(&metric[layout.group..], layout));
    Ok(Row {
        size_bytes: size,
        count,
        dtype,
        redop,
        root,
        out_of_place,
        in_place,
    })
}

/// Parses a whole text stream.
pub fn parse_reader(reader: impl BufRead, source: &str) -> std::io::Result<Vec<Run>> {
    let mut runs = Vec::new();
    stream_reader(reader, source, |r| {
        runs.push(r);
        Ok(())
    })?;
    Ok(runs)
}

/// The longest line kept whole; the rest of a longer one is dropped (no nccl-tests or NCCL
/// line comes near it, and a file without line breaks must not be held in memory).
pub const MAX_LINE: usize = 1 << 20;

/// Parses a text stream and hands each run to `on_run` as soon as it ends, so memory holds one
/// run at a time. Lines are split in the reader's own buffer (copied only when one spans two
/// reads). Returns the number of runs; an error from `on_run` stops the parse and is returned.
pub fn stream_reader(
    mut reader: impl BufRead,
    source: &str,
    mut on_run: impl FnMut(Run) -> std::io::Result<()>,
) -> std::io::Result<usize> {
    let mut p = Parser::new(source);
    let mut carry: Vec<u8> = Vec::new();
    let mut n = 0;
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        let len = buf.len();
        let mut start = 0;
        while let Some(i) = memchr::memchr(b'\n', &buf[start..]) {
            let end = start + i + 1;
            if carry.is_empty() {
                p.feed_bytes(&buf[start..end]);
            } else {
                let room = MAX_LINE.saturating_sub(carry.len());
                carry.extend_from_slice(&buf[start..end.min(start + room)]);
                p.feed_bytes(&carry);
                carry.clear();
            }
            start = end;
            if !p.runs.is_empty() {
                for run in p.take_finished() {
                    n += 1;
                    on_run(run)?;
                }
            }
        }
        let room = MAX_LINE.saturating_sub(carry.len());
        carry.extend_from_slice(&buf[start..len.min(start + room)]);
        reader.consume(len);
    }
    if !carry.is_empty() {
        p.feed_bytes(&carry);
    }
    for run in p.finish() {
        n += 1;
        on_run(run)?;
    }
    Ok(n)
}

pub fn parse(text: &str, source: &str) -> Vec<Run> {
    let mut p = Parser::new(source);
    for line in text.lines() {
        p.feed(line);
    }
    p.finish()
}

/// A JSON number as nccl-tests writes it: `%lf` doubles, NaN as the string `"nan"` (nccl-tests
/// `src/util.cu` `jsonDouble`). `Err(())` for a value that is present but not a finite number.
fn json_f64(v: Option<&serde_json::Value>) -> Result<Option<f64>, ()> {
    use serde_json::Value;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().filter(|x| x.is_finite()).map(Some).ok_or(()),
        Some(Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(()),
        },
        Some(_) => Err(()),
    }
}

/// A whole number written as an integer, a `%lf` double (`nwrong`: `3.000000`) or a string
/// (`root`: `"%6i"`, so `"    -1"`).
fn json_i64(v: Option<&serde_json::Value>) -> Option<i64> {
    use serde_json::Value;
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|x| x.fract() == 0.0 && x.abs() < 9e15)
                .map(|x| x as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// Booleans are the strings `"true"`/`"false"` (`jsonBool`); real JSON booleans are accepted too.
fn json_bool(v: Option<&serde_json::Value>) -> Option<bool> {
    use serde_json::Value;
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        Value::Number(n) => n.as_i64().map(|x| x != 0),
        _ => None,
    }
}

/// NCCL's version code: `major*10000 + minor*100 + patch` since 2.9, `major*1000 + minor*100 +
/// patch` before (NCCL `src/nccl.h.in` NCCL_VERSION macro).
pub fn nccl_version_from_code(code: u64) -> String {
    if code >= 10000 {
        format!("{}.{}.{}", code / 10000, (code / 100) % 100, code % 100)
    } else {
        format!("{}.{}.{}", code / 1000, (code / 100) % 10, code % 100)
    }
}

/// The `-J` JSON output, file versions 1 to 3, as nccl-tests 2.17.3 to 2.19.6 write it
/// (`src/util.cu`): `env` a list of `"K=V"` strings, `nccl_version` an integer, doubles with six
/// decimals or `"nan"`, booleans as strings, `root` a `%6i` string, `nwrong` a double or null
/// (`-c 0`), `errors` `[""]` on a clean run, and `config.devices` one entry per *process* (the
/// first `# Rank` line of each), so ranks = nthreads x ngpus x entries. Versions 2.17.3 to 2.17.8
/// spell the average `average_bus_bandwidith`/`bandwidith`.
pub fn parse_json(text: &str, source: &str) -> anyhow::Result<Run> {
    use serde_json::Value;
    // Only the fields read here are kept: the per-iteration arrays of `-I 1`
    // (`times_us`, `per_process_max_times_us`) are skipped while parsing, never built.
    #[derive(serde::Deserialize)]
    struct SlimRow {
        size: Option<Value>,
        count: Option<Value>,
        #[serde(rename = "type")]
        dtype: Option<Value>,
        redop: Option<Value>,
        root: Option<Value>,
        out_of_place: Option<Value>,
        in_place: Option<Value>,
    }
    #[derive(serde::Deserialize)]
    struct Slim {
        version: Option<Value>,
        args: Option<Value>,
        env: Option<Value>,
        nccl_version: Option<Value>,
        config: Option<Value>,
        results: Option<Vec<SlimRow>>,
        out_of_bounds: Option<Value>,
        average_bus_bandwidth: Option<Value>,
        average_bus_bandwidith: Option<Value>,
        errors: Option<Value>,
        end_time: Option<Value>,
    }
    let doc: Slim = serde_json::from_str(text).map_err(|e| {
        let cut = e.is_eof();
        anyhow::anyhow!(
            "{source}: {} JSON at line {}, column {}: {e}{}",
            if cut { "cut-off" } else { "invalid" },
            e.line(),
            e.column(),
            if cut {
                " (nccl-tests closes the file when it exits: the run was killed or is still running)"
            } else {
                ""
            }
        )
    })?;
    let results = doc
        .results
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("{source}: no `results` array: not nccl-tests -J output"))?;
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let metrics = |m: Option<&Value>| -> Option<Metrics> {
        let m = m.filter(|m| m.is_object())?;
        let busbw = json_f64(m.get("bus_bw"));
        Some(Metrics {
            time_us: json_f64(m.get("time"))
                .ok()
                .flatten()
                .or_else(|| json_f64(m.get("cpu_time")).ok().flatten()),
            algbw_gbps: json_f64(m.get("alg_bw")).ok().flatten(),
            busbw_gbps: busbw.ok().flatten(),
            wrong: json_i64(m.get("nwrong")).and_then(|w| u64::try_from(w).ok()),
            max_error: None,
            busbw_not_finite: busbw.is_err(),
        })
    };
    for (i, r) in results.iter().enumerate() {
        let Some(size) = json_i64(r.size.as_ref()).and_then(|s| u64::try_from(s).ok()) else {
            skipped.push((i, format!("results[{i}].size is missing or not a whole number")));
            continue;
        };
        rows.push(Row {
            size_bytes: size,
            count: json_i64(r.count.as_ref())
                .and_then(|c| u64::try_from(c).ok())
                .unwrap_or(0),
            dtype: r
                .dtype
                .as_ref()
                .and_then(Value::as_str)
                .map_or(Label::Borrowed(""), label),
            redop: r
                .redop
                .as_ref()
                .and_then(Value::as_str)
                .map_or(Label::Borrowed(""), label),
            root: json_i64(r.root.as_ref()).unwrap_or(-1),
            out_of_place: metrics(r.out_of_place.as_ref()).unwrap_or_default(),
            in_place: metrics(r.in_place.as_ref()),
        });
    }
    // The small top-level fields, as one object for the lookups below.
    let mut top = serde_json::Map::new();
    for (k, val) in [
        ("version", doc.version),
        ("args", doc.args),
        ("env", doc.env),
        ("nccl_version", doc.nccl_version),
        ("config", doc.config),
        ("out_of_bounds", doc.out_of_bounds),
        ("average_bus_bandwidth", doc.average_bus_bandwidth),
        ("average_bus_bandwidith", doc.average_bus_bandwidith),
        ("errors", doc.errors),
        ("end_time", doc.end_time),
    ] {
        if let Some(val) = val {
            top.insert(k.to_string(), val);
        }
    }
    let v = Value::Object(top);
    let config = v.get("config");
    let cfg_u32 = |k: &str| {
        json_i64(config.and_then(|c| c.get(k)))
            .and_then(|x| u32::try_from(x).ok())
            .filter(|x| *x > 0)
    };
    let threads = cfg_u32("nthreads");
    let gpus = cfg_u32("ngpus");
    let devices: Vec<Device> = config
        .and_then(|c| c.get("devices"))
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .map(|x| Device {
                    rank: json_i64(x.get("rank"))
                        .and_then(|r| u32::try_from(r).ok())
                        .unwrap_or(0),
                    host: x
                        .get("hostname")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .trim()
                        .into(),
                    device: json_i64(x.get("device"))
                        .and_then(|r| u32::try_from(r).ok())
                        .unwrap_or(0),
                    name: x
                        .get("device_info")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .trim()
                        .into(),
                })
                .collect()
        })
        .unwrap_or_default();
    let processes = (!devices.is_empty()).then_some(devices.len() as u32);
    let nranks = processes.map(|p| {
        p.saturating_mul(threads.unwrap_or(1))
            .saturating_mul(gpus.unwrap_or(1))
    });
    let binary = v
        .get("args")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .unwrap_or("");
    let collective = binary
        .rsplit('/')
        .next()
        .map(|b| b.trim_end_matches("_mpi").trim_end_matches("_perf").to_string())
        .filter(|c| !c.is_empty());
    let mut nccl_env = BTreeMap::new();
    match v.get("env") {
        Some(Value::Array(list)) => {
            for kv in list.iter().filter_map(Value::as_str) {
                if let Some((k, val)) = kv.split_once('=')
                    && k.starts_with("NCCL_")
                {
                    nccl_env.insert(k.to_string(), val.to_string());
                }
            }
        }
        // Not what nccl-tests writes, but a hand-made file may use an object.
        Some(Value::Object(map)) => {
            for (k, val) in map.iter().filter(|(k, _)| k.starts_with("NCCL_")) {
                if let Some(val) = val.as_str() {
                    nccl_env.insert(k.clone(), val.to_string());
                }
            }
        }
        _ => {}
    }
    let nccl_version = match v.get("nccl_version") {
        Some(Value::Number(n)) => n.as_u64().filter(|c| *c > 0).map(nccl_version_from_code),
        Some(Value::String(s)) => Some(match s.trim().parse::<u64>() {
            Ok(code) => nccl_version_from_code(code),
            Err(_) => s.trim().to_string(),
        }),
        _ => None,
    };
    let avg = v
        .get("average_bus_bandwidth")
        .or_else(|| v.get("average_bus_bandwidith"));
    let avg_bw = avg.and_then(|a| a.get("bandwidth").or_else(|| a.get("bandwidith")));
    let errors = v
        .get("errors")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                // A clean run stores ncclGetLastError(), which is "" (nccl-tests `writeErrors`).
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let out_of_bounds = json_i64(v.pointer("/out_of_bounds/count"))
        .and_then(|c| u64::try_from(c).ok())
        .or_else(|| json_bool(v.pointer("/out_of_bounds/okay")).and_then(|ok| ok.then_some(0)));
    Ok(Run {
        source: source.to_string(),
        collective,
        nranks,
        nccl_version,
        nccl_tests_version: None,
        devices,
        format: "json".into(),
        rows,
        avg_busbw_gbps: json_f64(avg_bw).ok().flatten(),
        min_bw_ok: json_bool(avg.and_then(|a| a.get("okay"))),
        out_of_bounds,
        errors,
        // `end_time` is written last, when nccl-tests finishes normally.
        truncated: v.get("end_time").is_none(),
        skipped_lines: skipped,
        nccl_env,
        threads_per_process: threads,
        gpus_per_thread: gpus,
        processes,
        json_version: json_i64(v.get("version")).and_then(|x| u32::try_from(x).ok()),
        net: NetSeen::default(),
        collective_inferred: false,
        nccl_choices: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-level trims and tokeniser give what `str`'s own do, on every kind of white
    /// space around and between tokens.
    #[test]
    fn byte_trims_and_tokens_match_the_std_ones() {
        let spaces = [
            "", " ", "\t", "\n", "\r", "\x0b", "\x0c", "\u{a0}", "\u{85}", "\u{2003}", "\u{3000}", " \u{a0} ",
        ];
        let words = ["", "8", "float", "ü", "1.5e3", "N/A", "a\u{a0}b"];
        for a in spaces {
            for w in words {
                for b in spaces {
                    for w2 in words {
                        let s = format!("{a}{w}{b}{w2}{a}");
                        assert_eq!(trim_lead(&s), s.trim_start(), "{s:?}");
                        assert_eq!(trim_tail(&s), s.trim_end(), "{s:?}");
                        assert_eq!(s.trim(), trim_tail(trim_lead(&s)), "{s:?}");
                        let ours: Vec<&str> = ascii_tokens(&s).collect();
                        let std: Vec<&str> = s.split_ascii_whitespace().collect();
                        assert_eq!(ours, std, "{s:?}");
                    }
                }
            }
        }
    }

    const UNIFIED: &str = "\
# nccl-tests version 2.17.6 nccl-headers=22105 nccl-library=22105
# Collective test starting: all_reduce_perf
# nThread 1 nGpus 1 minBytes 8 maxBytes 134217728 step: 2(factor) warmup iters: 1 iters: 20 agg iters: 1 validation: 1 graph: 0
#
# Using devices
#  Rank  0 Group  0 Pid  41001 on gpu-h100-017 device  0 [0000:18:00] NVIDIA H100 80GB HBM3
#  Rank  1 Group  0 Pid  41002 on gpu-h100-018 device  0 [0000:18:00] NVIDIA H100 80GB HBM3
#
#                                                              out-of-place                       in-place
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
           8             2     float     sum      -1    28.51    0.00    0.00      0    27.90    0.00    0.00      0
   134217728      33554432     float     sum      -1   1520.3   88.28   88.28      0   1.5e+03   88.40   88.40    N/A
# Out of bounds values : 0 OK
# Avg bus bandwidth    : 44.17
#
# Collective test concluded: all_reduce_perf
";

    #[test]
    fn unified_header_rows_devices_and_footer() {
        let runs = parse(UNIFIED, "x");
        assert_eq!(runs.len(), 1);
        let r = &runs[0];
        assert_eq!(r.collective.as_deref(), Some("all_reduce"));
        assert_eq!((r.nranks, r.nccl_version.as_deref()), (Some(2), Some("2.21.5")));
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[1].size_bytes, 134_217_728);
        assert_eq!(r.rows[1].out_of_place.busbw_gbps, Some(88.28));
        let ip = r.rows[1].in_place.clone().expect("in-place");
        assert_eq!((ip.time_us, ip.wrong), (Some(1500.0), None));
        assert_eq!(
            (r.avg_busbw_gbps, r.out_of_bounds, r.truncated),
            (Some(44.17), Some(0), false)
        );
    }

    #[test]
    fn prefixes_and_rows_split_by_nccl_lines() {
        let text = "[0] #       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong\n\
[0]   1073741824     268435456     float     sum      -1[0] host-1:4978:4978 [0] NCCL INFO 1073741824 Bytes -> Algo 1 proto 2 time 11038.5\n\
[0] host-1:4978:4978 [0] NCCL INFO 1073741824 Bytes -> Algo 1 proto 2 time 11038.5\n\
[0]    189960    5.65    9.89      0    189000    5.68    9.94      0\n";
        let runs = parse(text, "x");
        assert_eq!(runs[0].rows.len(), 1, "{:?}", runs[0].skipped_lines);
        assert_eq!(runs[0].rows[0].out_of_place.time_us, Some(189960.0));
        assert_eq!(
            runs[0].rows[0].root, -1,
            "the launcher's [0] is not part of the root column"
        );
        assert!(runs[0].truncated);
        assert_eq!(strip_prefix("[1,0]<stdout>:#  Rank"), "#  Rank");
        assert_eq!(strip_prefix("0: #  Rank"), "#  Rank");
    }

    #[test]
    fn old_error_column_and_missing_redop() {
        let text = "#       size         count    type     time   algbw   busbw  error     time   algbw   busbw  error\n\
        1024           32   float    35.4    0.03    0.03  2e-07    35.1    0.03    0.03  0e+00\n";
        let runs = parse(text, "x");
        let m = &runs[0].rows[0].out_of_place;
        assert_eq!((m.wrong, m.max_error), (None, Some(2e-7)));
        assert_eq!(runs[0].format, "old");
    }

    #[test]
    fn version_codes_of_both_encodings() {
        assert_eq!(nccl_version_from_code(22703), "2.27.3");
        assert_eq!(nccl_version_from_code(21003), "2.10.3");
        assert_eq!(nccl_version_from_code(2804), "2.8.4");
    }

    #[test]
    fn json_as_the_writer_writes_it() {
        let text = r#"{"version":1,"start_time":"x","args":[".\/build\/all_gather_perf","-g","4"],"env":["HOME=\/root","NCCL_PROTO=Simple"],"nccl_version":22105,"config":{"nthreads":2,"ngpus":4,"blocking_collectives":"false","devices":[{"rank":0,"group":0,"pid":1,"hostname":"a","device":0,"device_hex":"0000:18:00","device_info":"NVIDIA H100 80GB HBM3"}]},"results":[{"size":1024,"count":32,"type":"float","redop":"none","root":"    -1","out_of_place":{"time":10.000000,"alg_bw":"nan","bus_bw":"nan","nwrong":3.000000},"in_place":{"time":10.000000,"alg_bw":0.100000,"bus_bw":0.090000,"nwrong":null},"actual_iterations":20,"experiment_name":""}],"out_of_bounds":{"count":1,"okay":"false"},"average_bus_bandwidith":{"bandwidith":0.090000,"okay":"unchecked"},"errors":[""],"end_time":"y"}"#;
        let r = parse_json(text, "x.json").expect("json");
        assert_eq!(r.collective.as_deref(), Some("all_gather"));
        assert_eq!(
            (r.nranks, r.processes, r.json_version),
            (Some(8), Some(1), Some(1))
        );
        assert_eq!(r.nccl_version.as_deref(), Some("2.21.5"));
        assert_eq!(r.nccl_env.get("NCCL_PROTO").map(String::as_str), Some("Simple"));
        assert!(!r.nccl_env.contains_key("HOME"));
        let row = &r.rows[0];
        assert_eq!(
            (
                row.root,
                row.out_of_place.wrong,
                row.out_of_place.busbw_not_finite
            ),
            (-1, Some(3), true)
        );
        assert_eq!(row.in_place.as_ref().map(|m| m.wrong), Some(None));
        assert_eq!(
            (r.avg_busbw_gbps, r.out_of_bounds, r.min_bw_ok),
            (Some(0.09), Some(1), None)
        );
        assert!(r.errors.is_empty() && !r.truncated);
    }

    #[test]
    fn net_and_env_from_nccl_info_lines() {
        let text = "# nThread 1 nGpus 8 minBytes 8 maxBytes 8 step: 2(factor) warmup iters: 1 iters: 1 agg iters: 1 validation: 1 graph: 0\n\
h:1:2 [0] NCCL INFO NCCL_ALGO set by environment to Ring.\n\
h:1:2 [0] NCCL INFO NET/IB: [0] mlx5_0:uverbs0:1/IB provider=Mlx5 speed=400000 context=0x1 pciPath=/x ar=1\n\
h:1:2 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_1:1/RoCE [RO]; OOB eth0:10.0.0.1<0>\n\
h:1:2 [0] NCCL INFO Using network IB\n\
h:1:2 [0] NCCL INFO AllReduce: 1048576 Bytes -> Algo NVLSTree proto Simple channel{Lo..Hi}={0..15}\n\
h:1:2 [0] NCCL INFO 8 Bytes -> Algo 1 proto 0 time 11.5\n";
        let r = &parse(text, "x")[0];
        assert_eq!(r.nccl_env.get("NCCL_ALGO").map(String::as_str), Some("Ring"));
        assert_eq!(r.net.ib_nics, ["mlx5_0", "mlx5_1"]);
        assert_eq!(r.net.ib_link.as_deref(), Some("RoCE"));
        assert_eq!(r.net.nic_gbps.get("mlx5_0"), Some(&400.0));
        assert_eq!(r.net.network.as_deref(), Some("IB"));
        assert_eq!((r.threads_per_process, r.gpus_per_thread), (Some(1), Some(8)));
        assert_eq!(r.nccl_choices.len(), 2);
        assert_eq!(
            (r.nccl_choices[0].algo.as_str(), r.nccl_choices[0].proto.as_str()),
            ("nvls_tree", "simple")
        );
        assert_eq!(
            (r.nccl_choices[1].func.as_deref(), r.nccl_choices[1].algo.as_str()),
            (None, "ring")
        );
    }

    #[test]
    fn the_decimal_fast_path_reads_what_the_general_parser_reads() {
        let mut toks: Vec<String> = [
            "0",
            "0.00",
            "88.28",
            "1520.3",
            ".5",
            "5.",
            "123456789012345",
            "0.000001",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        toks.extend((0..100_000).map(|i| format!("{:.2}", f64::from(i) * 0.37)));
        toks.extend((0..10_000).map(|i| format!("{:.6}", f64::from(i) / 7.0)));
        for t in &toks {
            assert_eq!(simple_decimal(t), t.parse::<f64>().ok(), "{t}");
        }
        for t in ["-1", "1e3", "N/A", "", ".", "1.2.3", "1234567890123456"] {
            assert_eq!(simple_decimal(t), None, "{t}");
        }
        assert_eq!(num("1.5e+03"), Some(1500.0));
        assert_eq!(num("N/A"), None);
    }

    #[test]
    fn rank_sets_hold_small_and_huge_ranks() {
        let mut r = RankSet::default();
        assert!(r.insert(0) && r.insert(63) && r.insert(64) && r.insert(u32::MAX));
        assert!(!r.insert(0) && !r.insert(64) && !r.insert(u32::MAX));
        assert!(r.bits.len() == 2 && r.large.len() == 1);
        r.clear();
        assert!(r.insert(0));
    }

    #[test]
    fn failures_are_kept() {
        let runs = parse(
            "node1: Test NCCL failure common.cu:1204 'unhandled cuda error / '\n .. node1 pid 5: Test failure common.cu:915\n",
            "x",
        );
        assert_eq!(runs[0].errors.len(), 1);
    }
}
