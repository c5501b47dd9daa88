//! The bench report as a table (with a compact busbw bar per size), a summary of many runs,
//! CSV and JSON Lines. Each works one run at a time ([`run_table`], [`write_csv_run`],
//! [`Summary::add`]), so `render::bench_stream` can write a log of any length as it is parsed;
//! the whole-report functions here are built from the same pieces. JSON goes through
//! `render::json` (whole report) or `render::bench_stream` (streamed, byte-identical).
//!
//! Headline sentences are folded to the terminal width and tables drawn by `render::table`, so
//! every line fits `$COLUMNS`.

use super::table::{Layout, fold};
use crate::bench::{BenchReport, RunReport, SizeStatus};
use crate::finding::Finding;
use crate::parse::nccl_tests::Label;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.2}"))
}

/// The table of one run (its headline, assumptions, sizes, causes and comparison), or the
/// `not read` line of an input that could not be read.
pub fn run_table(run: &RunReport, layout: Layout) -> String {
    let mut s = String::new();
    let rr = &run.run;
    if let Some(e) = &run.input_error {
        s.push_str(&fold("not read: ", e, layout));
        s.push('\n');
        return terminal_safe(&s);
    }
    let head = format!("{}: ", rr.source);
    let line = format!(
        "{}{}, {} ranks, NCCL {}, format {}{}",
        rr.collective.as_deref().unwrap_or("unknown collective"),
        if rr.collective_inferred { " (inferred)" } else { "" },
        rr.nranks.map_or("?".into(), |n| n.to_string()),
        rr.nccl_version.as_deref().unwrap_or("?"),
        rr.format,
        run.targets_from
            .as_ref()
            .map_or(String::new(), |t| format!("; targets: {t}"))
    );
    // A long path takes a line of its own rather than squeezing the sentence.
    if layout.width.is_some_and(|w| super::table::width(&head) > w / 2) {
        s.push_str(&fold("", head.trim_end(), layout));
        s.push_str(&fold("  ", &line, layout));
    } else {
        s.push_str(&fold(&head, &line, layout));
    }
    for a in &run.hardware.assumptions {
        s.push_str(&fold("  assumed: ", a, layout));
    }
    if let Some(nf) = &run.no_figure {
        let text = format!(
            "{}; measured peak {} GB/s{}; for a verdict pass {}",
            nf.why,
            num(run.peak_busbw_gbps),
            nf.usual
                .as_ref()
                .map_or(String::new(), |u| format!(" (usual: {u})")),
            nf.flag
        );
        s.push_str(&fold("  no figure: ", &text, layout));
    }
    let max = run
        .sizes
        .iter()
        .filter_map(|v| v.busbw_gbps)
        .fold(0.0_f64, f64::max);
    let mut rows: Vec<Vec<String>> = rr
        .rows
        .iter()
        .zip(&run.sizes)
        .map(|(row, v)| {
            vec![
                human(row.size_bytes),
                row.dtype.to_string(),
                num(row.out_of_place.time_us),
                num(row.out_of_place.algbw_gbps),
                num(v.busbw_gbps),
                num(v.expected_gbps),
                v.efficiency.map_or("-".into(), |e| format!("{:.0}%", e * 100.0)),
                v.status.to_string(),
            ]
        })
        .collect();
    let mut headers = vec![
        "size", "type", "time us", "algbw", "busbw", "expected", "eff", "status",
    ];
    // The bar takes what the other columns leave of the width (20 at most); none below 4.
    let natural: usize = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| super::table::width(&r[i]))
                .chain([super::table::width(h)])
                .max()
                .unwrap_or(0)
        })
        .sum();
    let bar_width = layout.width.map_or(20, |w| {
        w.saturating_sub(natural + 3 * (headers.len() + 1) + 1).min(20)
    });
    if bar_width >= 4 {
        headers.push("busbw");
        for (r, v) in rows.iter_mut().zip(&run.sizes) {
            let bar_len = match v.busbw_gbps {
                Some(b) if max > 0.0 => ((b / max) * bar_width as f64).round() as usize,
                _ => 0,
            };
            r.push("#".repeat(bar_len));
        }
    }
    s.push_str(&super::table::render(&headers, &rows, layout));
    for v in run.sizes.iter().filter(|v| v.status == SizeStatus::Fail).take(1) {
        let _ = writeln!(s, "Usual causes of a shortfall at {}:", human(v.size_bytes));
        for c in &v.causes {
            s.push_str(&fold("  - ", c, layout));
        }
    }
    if !run.comparison.is_empty() {
        let rows: Vec<Vec<String>> = run
            .comparison
            .iter()
            .map(|c| {
                vec![
                    human(c.size_bytes),
                    c.metric.clone(),
                    format!("{:.2}", c.base),
                    format!("{:.2}", c.now),
                    format!("{:+.1}%", c.change_pct),
                    if c.regression {
                        "REGRESSION".into()
                    } else {
                        "ok".into()
                    },
                ]
            })
            .collect();
        s.push_str(&super::table::render(
            &["size", "metric", "baseline", "now", "change", ""],
            &rows,
            layout,
        ));
    }
    s.push('\n');
    terminal_safe(&s)
}

/// The end of a report: its findings (each on its own), the rule and the verdict.
pub fn footer(findings: &[Finding], verdict: &str, layout: Layout) -> String {
    let mut s = super::table::render(&super::FINDING_COLUMNS, &super::finding_rows(findings), layout);
    s.push_str(&rule_and_verdict(verdict, layout));
    terminal_safe(&s)
}

fn rule_and_verdict(verdict: &str, layout: Layout) -> String {
    let mut s = fold("rule: ", crate::bench::RULE, layout);
    let _ = writeln!(s, "verdict: {verdict}");
    s
}

pub fn to_table(r: &BenchReport) -> String {
    to_table_in(r, Layout::from_env())
}

pub fn to_table_in(r: &BenchReport, layout: Layout) -> String {
    let mut s = String::new();
    for run in &r.runs {
        s.push_str(&run_table(run, layout));
    }
    s.push_str(&footer(&r.findings, &r.verdict, layout));
    s
}

/// Host names, device names and settings come from the log: no control character (an escape
/// sequence would drive the terminal) reaches the output.
fn terminal_safe(s: &str) -> String {
    if !s.chars().any(|c| c.is_control() && c != '\n') {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// One CSV field's text, made safe for a spreadsheet before the `csv` writer quotes it (RFC
/// 4180: a field holding a separator, quote or line break goes in quotes, quotes doubled):
/// text that a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) is prefixed with
/// `'`, and control characters but the line break are replaced.
fn csv_safe(v: &str) -> std::borrow::Cow<'_, str> {
    let plain =
        !v.starts_with(['=', '+', '-', '@']) && !v.bytes().any(|b| b < 0x20 || b == 0x7f || b >= 0x80);
    if plain {
        return v.into();
    }
    let mut t: String = v
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect();
    if t.starts_with(['=', '+', '-', '@']) {
        t.insert(0, '\'');
    }
    t.into()
}

/// One CSV record written through `csv-core`'s writer (the core of the `csv` crate: RFC 4180
/// quoting, a field in quotes when it holds a separator, quote or line break, quotes doubled;
/// records end in `\n`) straight into `out`, with no buffer of its own between.
struct CsvRecord<'a> {
    w: csv_core::Writer,
    out: &'a mut Vec<u8>,
    /// Fields since the record (or its lead) began: a separator goes before all but the first.
    fields: usize,
    /// The last field went through the writer (which may have to close its quotes).
    after_text: bool,
}

impl<'a> CsvRecord<'a> {
    fn new(out: &'a mut Vec<u8>) -> CsvRecord<'a> {
        CsvRecord {
            w: csv_core::Writer::new(),
            out,
            fields: 0,
            after_text: false,
        }
    }

    /// Runs `step` on room at the end of `out` (enough for any field: every byte a doubled
    /// quote, plus the quotes around and a separator), keeping what it wrote.
    fn put(&mut self, room: usize, step: impl FnOnce(&mut csv_core::Writer, &mut [u8]) -> usize) {
        let start = self.out.len();
        self.out.resize(start + room, 0);
        let n = step(&mut self.w, &mut self.out[start..]);
        self.out.truncate(start + n);
    }

    /// The separator before any field but the first (closing the quotes of the one before).
    fn separate(&mut self) {
        if self.fields > 0 {
            if self.after_text {
                let mut buf = [0u8; 2];
                let n = self.w.delimiter(&mut buf).1;
                self.out.extend_from_slice(&buf[..n]);
            } else {
                self.out.push(b',');
            }
        }
        self.fields += 1;
    }

    /// Fields already written as a whole (closed, each followed by its separator), in front
    /// of the rest of the record: the next field needs no separator of its own.
    fn lead(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        self.fields = 0;
        self.after_text = false;
    }

    /// A text field, quoted by the writer when it needs to be.
    fn field(&mut self, v: &[u8]) {
        self.separate();
        self.put(2 * v.len() + 2, |w, o| w.field(v, o).2);
        self.after_text = true;
    }

    /// A number as written by `csv_int` or `csv_num` (digits, `-`, `.`, `e`, `inf`, `NaN`):
    /// nothing the writer would quote, so it is appended as it is.
    fn number(&mut self, v: &[u8]) {
        debug_assert!(v.iter().all(|b| !matches!(b, b',' | b'"' | b'\r' | b'\n')));
        self.separate();
        self.out.extend_from_slice(v);
        self.after_text = false;
    }

    /// Ends the record (and with it a quoted last field).
    fn end(&mut self) {
        if self.after_text {
            self.put(2, |w, o| w.terminator(o).1);
        } else {
            self.out.push(b'\n');
        }
        self.fields = 0;
        self.after_text = false;
    }
}

/// The CSV header line.
pub const CSV_HEADER: &str = "source,collective,size_bytes,type,redop,root,time_us,algbw_gbps,busbw_gbps,wrong,expected_gbps,efficiency,status\n";

/// A number as Rust's `Display` writes it (shortest round trip, never an exponent), or nothing.
fn csv_num(x: Option<f64>, out: &mut Vec<u8>) {
    if let Some(v) = x
        && !short_decimal(v, out)
    {
        let _ = std::io::Write::write_fmt(out, format_args!("{v}"));
    }
}

/// Writes `v` as `Display` would when it is a decimal of at most six places (what logs hold:
/// nccl-tests prints two), without the general shortest-digits algorithm: the fewest places
/// `k` whose nearest decimal reads back as exactly `v` is the shortest representation, and
/// that nearest decimal is the one `Display` picks. `false` (nothing written) otherwise.
fn short_decimal(v: f64, out: &mut Vec<u8>) -> bool {
    const POW10: [f64; 7] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6];
    if !(v > 0.0 && v < 1e9) {
        return false;
    }
    for (k, p) in POW10.iter().enumerate() {
        let m = (v * p).round();
        if m / p == v {
            // Digits from the right: k of them after the point, then the integer part.
            let mut m = m as u64;
            let mut buf = [0u8; 24];
            let mut i = buf.len();
            for _ in 0..k {
                i -= 1;
                buf[i] = b'0' + (m % 10) as u8;
                m /= 10;
            }
            if k > 0 {
                i -= 1;
                buf[i] = b'.';
            }
            loop {
                i -= 1;
                buf[i] = b'0' + (m % 10) as u8;
                m /= 10;
                if m == 0 {
                    break;
                }
            }
            out.extend_from_slice(&buf[i..]);
            return true;
        }
    }
    false
}

/// An integer in decimal (as `Display` writes it), without the formatting machinery.
fn csv_int(v: impl Into<i128>, out: &mut Vec<u8>) {
    let v: i128 = v.into();
    let mut m = v.unsigned_abs();
    let mut buf = [0u8; 40];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    out.extend_from_slice(&buf[i..]);
}

/// The CSV lines of one run (one per size), appended to `out` through `csv-core`'s writer.
/// Text goes through [`csv_safe`] first; numbers are formatted here.
pub fn write_csv_run(run: &RunReport, out: &mut Vec<u8>) {
    // The run's source and collective, the same on every line: written once, closed, with
    // the separator after them.
    let mut lead = Vec::new();
    let mut head = CsvRecord::new(&mut lead);
    head.field(csv_safe(&run.run.source).as_bytes());
    head.field(csv_safe(run.run.collective.as_deref().unwrap_or("")).as_bytes());
    head.separate();
    let mut num = Vec::with_capacity(32);
    let mut rec = CsvRecord::new(out);
    // A number formatted into `num`, written as the next field.
    let number = |rec: &mut CsvRecord, num: &mut Vec<u8>| {
        rec.number(num);
        num.clear();
    };
    for (row, v) in run.run.rows.iter().zip(&run.sizes) {
        rec.lead(&lead);
        csv_int(row.size_bytes, &mut num);
        number(&mut rec, &mut num);
        rec.field(csv_safe(&row.dtype).as_bytes());
        rec.field(csv_safe(&row.redop).as_bytes());
        csv_int(row.root, &mut num);
        number(&mut rec, &mut num);
        csv_num(row.out_of_place.time_us, &mut num);
        number(&mut rec, &mut num);
        csv_num(row.out_of_place.algbw_gbps, &mut num);
        number(&mut rec, &mut num);
        csv_num(row.out_of_place.busbw_gbps, &mut num);
        number(&mut rec, &mut num);
        if let Some(x) = row.out_of_place.wrong {
            csv_int(x, &mut num);
        }
        number(&mut rec, &mut num);
        csv_num(v.expected_gbps, &mut num);
        number(&mut rec, &mut num);
        csv_num(v.efficiency, &mut num);
        number(&mut rec, &mut num);
        rec.field(v.status.as_str().as_bytes());
        rec.end();
    }
}

pub fn to_csv(r: &BenchReport) -> String {
    let mut out = CSV_HEADER.as_bytes().to_vec();
    for run in &r.runs {
        write_csv_run(run, &mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// From this many runs on, the default table summarises (one table per group of runs).
pub const SUMMARY_MIN_RUNS: usize = 8;

/// Run numbers as compact ranges (`#1-#5, #9`), built as runs arrive: memory grows with the
/// number of breaks, not of runs.
#[derive(Debug, Clone, Default)]
pub struct Ranges(Vec<(usize, usize)>);

impl Ranges {
    pub fn push(&mut self, n: usize) {
        match self.0.last_mut() {
            Some((_, end)) if *end == n => {}
            Some((_, end)) if *end + 1 == n => *end = n,
            _ => self.0.push((n, n)),
        }
    }

    /// Numbers held (each range counted whole).
    pub fn count(&self) -> usize {
        self.0.iter().map(|(a, b)| b - a + 1).sum()
    }
}

impl std::fmt::Display for Ranges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (a, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if a == b {
                write!(f, "#{a}")?;
            } else {
                write!(f, "#{a}-#{b}")?;
            }
        }
        Ok(())
    }
}

/// Run numbers as compact ranges: `#1-#5, #9`.
#[cfg(test)]
fn ranges(ids: &[usize]) -> String {
    let mut r = Ranges::default();
    for &i in ids {
        r.push(i);
    }
    r.to_string()
}

/// busbw values of one size of one group, for min/median/max in bounded memory: a count per
/// value at 0.01 GB/s (the precision nccl-tests prints, so exact for text logs; within 0.005
/// GB/s for `-J` values), so memory grows with the distinct values seen, never with the runs.
#[derive(Debug, Clone, Default)]
struct Busbw {
    n: u64,
    min: f64,
    max: f64,
    centi: BTreeMap<i64, u64>,
}

impl Busbw {
    fn add(&mut self, b: f64) {
        if self.n == 0 {
            (self.min, self.max) = (b, b);
        } else {
            self.min = self.min.min(b);
            self.max = self.max.max(b);
        }
        self.n += 1;
        *self.centi.entry((b * 100.0).round() as i64).or_insert(0) += 1;
    }

    /// The `k`-th smallest value (from 0).
    fn nth(&self, k: u64) -> f64 {
        let mut seen = 0;
        for (&v, &c) in &self.centi {
            seen += c;
            if seen > k {
                return v as f64 / 100.0;
            }
        }
        self.max
    }

    fn median(&self) -> Option<f64> {
        match self.n {
            0 => None,
            1 => Some(self.min),
            n if n % 2 == 1 => Some(self.nth(n / 2)),
            n => Some((self.nth(n / 2 - 1) + self.nth(n / 2)) / 2.0),
        }
    }
}

/// One size of a group.
#[derive(Debug, Clone)]
struct SizeAgg {
    size: u64,
    dtype: Label,
    busbw: Busbw,
    expected: Option<f64>,
    /// Runs per status, in first-seen order.
    statuses: Vec<(SizeStatus, usize)>,
}

type GroupKey = (String, Option<u32>, Option<u32>);

#[derive(Debug, Clone)]
struct Group {
    key: GroupKey,
    runs: Ranges,
    count: usize,
    sizes: Vec<SizeAgg>,
    failed: bool,
    judged: bool,
}

/// A finding that repeats: same code, level, message (without its run prefix) and fix.
#[derive(Debug, Clone)]
struct RepeatedFinding {
    level: String,
    code: String,
    message: String,
    fix: String,
    runs: Ranges,
    count: usize,
}

/// Findings that repeat across runs, each once with a count and the runs it concerns.
#[derive(Debug, Clone, Default)]
pub struct RepeatedFindings {
    list: Vec<RepeatedFinding>,
    index: HashMap<(String, String, String, String), usize>,
}

impl RepeatedFindings {
    /// Adds `f`, about run number `run_no` (from 1).
    pub fn add(&mut self, f: &Finding, run_no: usize) {
        let p = format!("{}: ", f.subject);
        let message = f.message.strip_prefix(&p).unwrap_or(&f.message);
        let key = (
            f.code.to_string(),
            f.level.to_string(),
            f.fix.clone(),
            message.to_string(),
        );
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.list.push(RepeatedFinding {
                    level: key.1.clone(),
                    code: key.0.clone(),
                    message: key.3.clone(),
                    fix: key.2.clone(),
                    runs: Ranges::default(),
                    count: 0,
                });
                self.index.insert(key, self.list.len() - 1);
                self.list.len() - 1
            }
        };
        let e = &mut self.list[i];
        e.count += 1;
        e.runs.push(run_no);
    }

    /// The table: level, code, count, runs, message, fix.
    pub fn table(&self, layout: Layout) -> String {
        let rows: Vec<Vec<String>> = self
            .list
            .iter()
            .map(|f| {
                vec![
                    f.level.clone(),
                    f.code.clone(),
                    f.runs.count().max(1).to_string(),
                    f.runs.to_string(),
                    f.message.clone(),
                    f.fix.clone(),
                ]
            })
            .collect();
        super::table::render(
            &["level", "code", "count", "runs", "message", "fix"],
            &rows,
            layout,
        )
    }
}

/// The summary of a log of many runs, built one run at a time: one table per (collective,
/// ranks, hosts) group with per-size min/median/max busbw and the group's verdict, then each
/// repeated finding once with a count and the runs it concerns. Runs are numbered from 1 in
/// report order. Memory: per group and size a few numbers and the distinct busbw values (see
/// `Busbw`); per group and finding the breaks in its run numbers.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    runs: usize,
    not_read: Vec<(usize, String)>,
    groups: Vec<Group>,
    group_index: HashMap<GroupKey, usize>,
    findings: RepeatedFindings,
}

impl Summary {
    /// Adds the next run and the findings about it.
    pub fn add(&mut self, run: &RunReport, findings: &[Finding]) {
        self.runs += 1;
        let no = self.runs;
        for f in findings {
            self.findings.add(f, no);
        }
        if let Some(e) = &run.input_error {
            self.not_read.push((no, e.clone()));
            return;
        }
        let key = (
            run.run
                .collective
                .clone()
                .unwrap_or_else(|| "unknown collective".into()),
            run.run.nranks,
            run.hardware.hosts,
        );
        let gi = match self.group_index.get(&key) {
            Some(&i) => i,
            None => {
                self.groups.push(Group {
                    key: key.clone(),
                    runs: Ranges::default(),
                    count: 0,
                    sizes: Vec::new(),
                    failed: false,
                    judged: false,
                });
                self.group_index.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[gi];
        g.count += 1;
        g.runs.push(no);
        g.failed |= !run.run.errors.is_empty() || run.run.truncated;
        for (i, (row, v)) in run.run.rows.iter().zip(&run.sizes).enumerate() {
            // Runs of one group list their sizes in the same order: try the same place first.
            let found = match g.sizes.get(i) {
                Some(e) if e.size == row.size_bytes && e.dtype == row.dtype => Some(i),
                _ => g
                    .sizes
                    .iter()
                    .position(|e| e.size == row.size_bytes && e.dtype == row.dtype),
            };
            let idx = found.unwrap_or_else(|| {
                g.sizes.push(SizeAgg {
                    size: row.size_bytes,
                    dtype: row.dtype.clone(),
                    busbw: Busbw::default(),
                    expected: None,
                    statuses: Vec::new(),
                });
                g.sizes.len() - 1
            });
            let e = &mut g.sizes[idx];
            if let Some(b) = v.busbw_gbps {
                e.busbw.add(b);
            }
            if e.expected.is_none() {
                e.expected = v.expected_gbps;
            }
            match v.status {
                SizeStatus::Fail | SizeStatus::Wrong => g.failed = true,
                SizeStatus::Pass => g.judged = true,
                _ => {}
            }
            match e.statuses.iter_mut().find(|(st, _)| *st == v.status) {
                Some((_, n)) => *n += 1,
                None => e.statuses.push((v.status, 1)),
            }
        }
    }

    /// Runs added so far.
    pub fn runs(&self) -> usize {
        self.runs
    }

    pub fn render(&self, verdict: &str, layout: Layout) -> String {
        let mut s = String::new();
        for (no, e) in &self.not_read {
            s.push_str(&fold(&format!("not read (#{no}): "), e, layout));
            s.push('\n');
        }
        s.push_str(&fold(
            "",
            &format!(
                "{} runs in {} group(s) of (collective, ranks, hosts); --runs prints every run's table",
                self.runs,
                self.groups.len()
            ),
            layout,
        ));
        for g in &self.groups {
            let (coll, ranks, hosts) = &g.key;
            let verdict = if g.failed {
                "fail"
            } else if g.judged {
                "pass"
            } else {
                "unknown"
            };
            s.push('\n');
            s.push_str(&fold(
                "",
                &format!(
                    "{coll}, {} ranks, {} hosts: {} run(s) ({}); verdict {verdict}",
                    ranks.map_or("?".into(), |n| n.to_string()),
                    hosts.map_or("?".into(), |n| n.to_string()),
                    g.count,
                    g.runs
                ),
                layout,
            ));
            let rows: Vec<Vec<String>> = g
                .sizes
                .iter()
                .map(|e| {
                    vec![
                        human(e.size),
                        e.dtype.to_string(),
                        num((e.busbw.n > 0).then_some(e.busbw.min)),
                        num(e.busbw.median()),
                        num((e.busbw.n > 0).then_some(e.busbw.max)),
                        num(e.expected),
                        e.statuses
                            .iter()
                            .map(|(st, n)| format!("{st} {n}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ]
                })
                .collect();
            s.push_str(&super::table::render(
                &[
                    "size",
                    "type",
                    "busbw min",
                    "median",
                    "max",
                    "expected",
                    "status (runs)",
                ],
                &rows,
                layout,
            ));
        }
        s.push('\n');
        s.push_str(&self.findings.table(layout));
        s.push_str(&rule_and_verdict(verdict, layout));
        terminal_safe(&s)
    }
}

/// The table for a log of many runs (see [`Summary`]).
pub fn to_summary_table(r: &BenchReport) -> String {
    to_summary_table_in(r, Layout::from_env())
}

pub fn to_summary_table_in(r: &BenchReport, layout: Layout) -> String {
    let mut sum = Summary::default();
    let mut next = 0;
    for (i, run) in r.runs.iter().enumerate() {
        let mut end = next;
        while end < r.findings.len() && r.finding_runs.get(end).is_some_and(|&fi| fi == i) {
            end += 1;
        }
        sum.add(run, &r.findings[next..end]);
        next = end;
    }
    sum.render(&r.verdict, layout)
}

/// The JSON Lines summary line's fields besides the findings, in the order `serde_json`'s map
/// writes them (sorted), so the streamed and the whole-report lines are byte-identical.
pub fn jsonl_summary_head(runs: usize) -> String {
    format!(
        ",\"runs\":{runs},\"schema\":{},\"summary\":true",
        crate::bench::SCHEMA
    )
}

/// JSON Lines: one run per line as it is written, then one summary line (schema, verdict,
/// rule, findings), so a consumer can read run by run.
pub fn write_jsonl(r: &BenchReport, out: &mut impl std::io::Write) -> std::io::Result<()> {
    for run in &r.runs {
        serde_json::to_writer(&mut *out, run)?;
        out.write_all(b"\n")?;
    }
    let summary = serde_json::json!({
        "schema": r.schema,
        "summary": true,
        "runs": r.runs.len(),
        "verdict": r.verdict,
        "rule": r.rule,
        "findings": r.findings,
    });
    serde_json::to_writer(&mut *out, &summary)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `v` as one field of a record written by the CSV writer (without the record's end).
    fn csv(v: &str) -> String {
        let mut out = Vec::new();
        let mut rec = CsvRecord::new(&mut out);
        rec.field(b"x");
        rec.field(csv_safe(v).as_bytes());
        rec.end();
        let s = String::from_utf8(out).expect("utf8");
        s.strip_prefix("x,")
            .and_then(|s| s.strip_suffix('\n'))
            .expect("record")
            .to_string()
    }

    #[test]
    fn log_text_cannot_drive_the_terminal_or_a_spreadsheet() {
        assert_eq!(terminal_safe("a\u{1b}[2Jb\n"), "a\u{FFFD}[2Jb\n");
        assert_eq!(csv("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("sum"), "sum");
        assert_eq!(csv("a\u{1b}b"), "a\u{FFFD}b");
        assert_eq!(csv("-x,\"y\""), "\"'-x,\"\"y\"\"\"");
    }

    #[test]
    fn short_decimals_are_written_as_display_writes_them() {
        let mut vals = vec![
            0.01,
            0.1,
            0.3,
            1.0,
            88.28,
            1520.3,
            1e-6,
            1.5e-6,
            123456.789,
            0.07,
            999999999.5,
            2e-7,
            1e9,
            0.000_123,
            44.17,
            384.0,
            0.65,
            0.651,
            16072.96,
        ];
        // Every two-decimal value nccl-tests prints up to 2000.00, and some that are not short.
        vals.extend((0..200_000).map(|i| f64::from(i) / 100.0));
        vals.extend((1..2000).map(|i| f64::from(i) / 3.0));
        for v in vals {
            let mut out = Vec::new();
            let fast = short_decimal(v, &mut out);
            if fast {
                assert_eq!(String::from_utf8(out).expect("utf8"), v.to_string(), "{v:e}");
            }
        }
        let mut out = Vec::new();
        assert!(short_decimal(88.28, &mut out) && out == b"88.28");
        assert!(!short_decimal(1.0 / 3.0, &mut Vec::new()));
        assert!(!short_decimal(0.0, &mut Vec::new()) && !short_decimal(-1.5, &mut Vec::new()));
    }

    #[test]
    fn integers_are_written_as_display_writes_them() {
        for v in [0i64, 1, -1, 9, 10, -10, 1234567890, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            csv_int(v, &mut out);
            assert_eq!(String::from_utf8(out).expect("utf8"), v.to_string());
        }
        let mut out = Vec::new();
        csv_int(u64::MAX, &mut out);
        assert_eq!(String::from_utf8(out).expect("utf8"), u64::MAX.to_string());
    }

    #[test]
    fn run_numbers_collapse_into_ranges() {
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "#1-#3, #5, #7-#8");
        assert_eq!(ranges(&[1, 1, 2]), "#1-#2");
        assert_eq!(ranges(&[]), "");
    }

    #[test]
    fn the_median_in_bounded_memory_is_the_exact_one_for_printed_values() {
        let mut b = Busbw::default();
        for v in [3.0, 88.28, 1.5, 88.28, 40.01, 7.77] {
            b.add(v);
        }
        // Sorted: 1.5 3 7.77 40.01 88.28 88.28: the middle two are 7.77 and 40.01.
        assert_eq!(b.median(), Some((7.77 + 40.01) / 2.0));
        assert_eq!((b.min, b.max, b.centi.len()), (1.5, 88.28, 5));
        b.add(0.5);
        assert_eq!(b.median(), Some(7.77));
    }
}
