//! `bench --parse` written while it is parsed: each judged run goes to the writer as soon as it
//! is written (gathered up to `WRITE_AT` bytes, so a write passes the output buffer by), so
//! memory holds about one run, whatever the length of the log. The output is byte for byte what the
//! whole-report renderers (`render::json`, `render::bench`) write for the same runs.
//!
//! - JSON: one document, written in order: the runs array run by run, then the verdict, the
//!   rule and the findings. Findings are spooled as they come (serialized bytes; in memory up to
//!   `SPOOL_IN_MEMORY`, then in an unnamed temporary file), since they follow the runs.
//! - JSON Lines: a run per line, then the summary line (findings spooled the same way).
//! - CSV: a line per size.
//! - Table: up to `SUMMARY_MIN_RUNS - 1` runs are held and printed one table each at the end;
//!   from `SUMMARY_MIN_RUNS` on, the runs are folded into a `render::bench::Summary` (per group
//!   and size a few numbers) and dropped. `--runs` prints each run's table as it ends.

use super::bench::{self as text, RepeatedFindings, SUMMARY_MIN_RUNS, Summary};
use super::table::Layout;
use crate::bench::Judged;
use crate::finding::Finding;
use std::io::{self, Write};

/// The formats that stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// The table; `every_run` prints each run's table (`--runs`) instead of a summary of many.
    Table {
        every_run: bool,
    },
    Json,
    Jsonl,
    Csv,
}

/// Runs are gathered up to this many bytes before they are written: as much as the standard
/// output and `-o` writers buffer (64 KiB), so they write it straight through.
const WRITE_AT: usize = 1 << 16;

/// Spooled findings beyond this many bytes go to a temporary file.
const SPOOL_IN_MEMORY: usize = 1 << 20;

/// Serialized findings, kept until the runs are written.
#[derive(Default)]
struct Spool {
    mem: Vec<u8>,
    file: Option<std::fs::File>,
}

impl Spool {
    fn spill_if_large(&mut self) -> io::Result<()> {
        if self.mem.len() < SPOOL_IN_MEMORY {
            return Ok(());
        }
        if self.file.is_none() {
            self.file = Some(tempfile::tempfile()?);
        }
        if let Some(f) = &mut self.file {
            f.write_all(&self.mem)?;
        }
        self.mem.clear();
        Ok(())
    }

    fn copy_to(&mut self, out: &mut impl Write) -> io::Result<()> {
        if let Some(mut f) = self.file.take() {
            use std::io::Seek;
            f.seek(io::SeekFrom::Start(0))?;
            io::copy(&mut f, out)?;
        }
        out.write_all(&self.mem)
    }
}

/// `serde_json`'s pretty printer (two-space indent) starting `depth` levels in, so that a value
/// written on its own lands exactly where the whole document's printer would put it.
struct Indented {
    depth: usize,
    has_value: bool,
}

/// A line break and enough indentation for any depth the report reaches, written as one slice.
const NEWLINE_INDENT: &[u8; 129] = b"\n                                                                                                                                ";

impl Indented {
    /// A line break, then the indentation of the current depth.
    fn newline(&self, w: &mut (impl ?Sized + Write)) -> io::Result<()> {
        let n = 1 + 2 * self.depth;
        if n <= NEWLINE_INDENT.len() {
            return w.write_all(&NEWLINE_INDENT[..n]);
        }
        w.write_all(b"\n")?;
        for _ in 0..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Indented {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        w.write_all(b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline(w)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        w.write_all(b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline(w)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// `value` pretty-printed as an element of an array two levels into the document.
fn write_element(out: &mut (impl Write + ?Sized), value: &impl serde::Serialize) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(
        out,
        Indented {
            depth: 2,
            has_value: false,
        },
    );
    value.serialize(&mut ser).map_err(io::Error::other)
}

/// Where a run's `devices`, `rows` and `sizes` sit when they are empty: keys at depth 3 of the
/// pretty document, or anywhere in a compact line (the run's own keys come first: no nested
/// object before them has such a key, and a string cannot hold an unescaped `"`).
const MARKS_PRETTY: [&[u8]; 3] = [
    b"\n      \"devices\": []",
    b"\n      \"rows\": []",
    b"\n      \"sizes\": []",
];
const MARKS_COMPACT: [&[u8]; 3] = [b"\"devices\":[]", b"\"rows\":[]", b"\"sizes\":[]"];

/// One run as `serde_json` writes it (pretty as an element of the runs array, or compact on
/// one line), appended to `out`. Its devices, rows and size verdicts (nearly all of the bytes)
/// are written here, keys as constants and numbers by fast paths, straight into the buffer:
/// the rest of the run is serialized by `serde_json` (into `head`) with those three lists
/// empty, and the lists are written where it put the empty ones. Every scalar is written as
/// `serde_json` writes it (a test compares the stream with the whole-report renderers over
/// every fixture and sample; the fast paths are tested against `serde_json` on their own).
/// One buffer per run, written out once: a write call per token was a fifth of the time.
fn write_run(
    out: &mut Vec<u8>,
    head: &mut Vec<u8>,
    report: &mut crate::bench::RunReport,
    pretty: bool,
) -> io::Result<()> {
    let marks = if pretty { MARKS_PRETTY } else { MARKS_COMPACT };
    let devices = std::mem::take(&mut report.run.devices);
    let rows = std::mem::take(&mut report.run.rows);
    let sizes = std::mem::take(&mut report.sizes);
    head.clear();
    let serialized = whole(&mut *head, report, pretty);
    report.run.devices = devices;
    report.run.rows = rows;
    report.sizes = sizes;
    serialized?;
    let mut at = [0usize; 3];
    let mut from = 0;
    for (slot, mark) in at.iter_mut().zip(marks) {
        match memchr::memmem::find(&head[from..], mark) {
            Some(i) => *slot = from + i,
            // Not where expected (cannot happen with today's field order): the generic path.
            None => return whole(out, report, pretty),
        }
        from = *slot + mark.len();
    }
    if pretty {
        splice(out, head, &at, &marks, report, Style::<true>)
    } else {
        splice(out, head, &at, &marks, report, Style::<false>)
    }
}

/// `head` with the three lists written at their marks (found at `at`).
fn splice<const P: bool>(
    out: &mut Vec<u8>,
    head: &[u8],
    at: &[usize; 3],
    marks: &[&[u8]; 3],
    report: &crate::bench::RunReport,
    st: Style<P>,
) -> io::Result<()> {
    let mut from = 0;
    for (i, (&a, mark)) in at.iter().zip(marks).enumerate() {
        // Up to and including the `[` of the empty list; its `]` comes after the elements.
        out.extend_from_slice(&head[from..a + mark.len() - 1]);
        from = a + mark.len();
        match i {
            0 => write_devices(out, &report.run.devices, st)?,
            1 => write_rows(out, &report.run.rows, st)?,
            _ => write_sizes(out, &report.sizes, st)?,
        }
    }
    out.extend_from_slice(&head[from..]);
    Ok(())
}

/// The run through `serde_json` alone (generic over the writer: a `dyn Write` here would cost a
/// virtual call per token).
fn whole<W: Write + ?Sized>(out: &mut W, report: &crate::bench::RunReport, pretty: bool) -> io::Result<()> {
    if pretty {
        write_element(out, report)
    } else {
        serde_json::to_writer(out, report).map_err(io::Error::other)
    }
}

/// Pretty (`true`) or compact: a type parameter, so that each key and line break is a
/// constant of known length (copied inline, not by a `memcpy` call).
#[derive(Clone, Copy)]
struct Style<const PRETTY: bool>;

/// Line breaks and indentation of the pretty document, by depth of what follows.
const ELEMENT: &[u8] = b"\n        ";
const FIELD: &[u8] = b"\n          ";
const LIST_END: &[u8] = b"\n      ";

/// `"name": ` (compact `"name":`), after a comma unless it is the first, on a new line at the
/// field's depth when pretty: one constant, one copy.
macro_rules! key {
    ($st:expr, $out:expr, METRIC, $first:tt, $name:literal) => {
        key!(@ $st, $out, "\n            ", $first, $name)
    };
    ($st:expr, $out:expr, FIELD, $first:tt, $name:literal) => {
        key!(@ $st, $out, "\n          ", $first, $name)
    };
    (@ $st:expr, $out:expr, $indent:literal, true, $name:literal) => {
        if $st.pretty() {
            $out.extend_from_slice(concat!($indent, "\"", $name, "\": ").as_bytes())
        } else {
            $out.extend_from_slice(concat!("\"", $name, "\":").as_bytes())
        }
    };
    (@ $st:expr, $out:expr, $indent:literal, false, $name:literal) => {
        if $st.pretty() {
            $out.extend_from_slice(concat!(",", $indent, "\"", $name, "\": ").as_bytes())
        } else {
            $out.extend_from_slice(concat!(",\"", $name, "\":").as_bytes())
        }
    };
}

impl<const PRETTY: bool> Style<PRETTY> {
    #[inline(always)]
    fn pretty(self) -> bool {
        PRETTY
    }

    /// A line break and `indent` when pretty.
    #[inline(always)]
    fn brk(self, out: &mut Vec<u8>, indent: &[u8]) {
        if PRETTY {
            out.extend_from_slice(indent);
        }
    }

    /// The start of element `i` of a list.
    #[inline(always)]
    fn element(self, out: &mut Vec<u8>, i: usize) {
        if i > 0 {
            out.push(b',');
        }
        self.brk(out, ELEMENT);
        out.push(b'{');
    }

    /// The end of an element.
    #[inline(always)]
    fn element_end(self, out: &mut Vec<u8>) {
        self.brk(out, ELEMENT);
        out.push(b'}');
    }

    /// The end of a list that had elements.
    #[inline(always)]
    fn list_end(self, out: &mut Vec<u8>) {
        self.brk(out, LIST_END);
        out.push(b']');
    }
}

/// A number, string or null exactly as `serde_json` writes it.
fn scalar(out: &mut Vec<u8>, v: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, v).map_err(io::Error::other)
}

/// An integer, as `serde_json` writes it (both use `itoa`).
fn int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A string exactly as `serde_json` writes it: as it is between quotes when it holds nothing
/// that JSON escapes (`"`, `\` and control characters below U+0020; `serde_json` writes the
/// rest, non-ASCII included, unescaped), else through `serde_json`. Host, GPU and type names
/// (several per row and device) nearly always take the first path.
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a `&str` to a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// `serde_json`'s shortest round-trip text of `v` for the values nccl-tests prints (`%.2f`,
/// under 10^13): the number of hundredths, with the point put back and trailing zeros of the
/// fraction dropped (`1.5`, `2.0`, `123.45`), which is what the shortest representation is when
/// `v` is exactly the double nearest to a two-decimal number (`r / 100.0` is that double, as
/// parsing the text is: both round correctly). Any other value goes through `serde_json`.
/// Formatting floats was a tenth of `--format jsonl`'s time.
fn decimal(out: &mut Vec<u8>, v: Option<f64>) {
    let Some(v) = v else {
        out.extend_from_slice(b"null");
        return;
    };
    // Zero is common (the bandwidth of small sizes), and positive zero is written `0.0`.
    if v == 0.0 && v.is_sign_positive() {
        out.extend_from_slice(b"0.0");
        return;
    }
    // `+ 0.5` then truncation rounds a positive value as `round` does, without its call.
    let r = (v * 100.0 + 0.5) as u64;
    if !(v > 0.0 && v < 1e13) || r as f64 / 100.0 != v {
        // Writing an `f64` to a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, &v);
        return;
    }
    let (int, frac) = (r / 100, r % 100);
    // Written in place, right to left, into room reserved by a copy of constant length (no
    // `memcpy` call for a handful of bytes): the integer's digits, the point, one or two
    // fraction digits.
    let frac_digits = if frac % 10 == 0 { 1 } else { 2 };
    let len = int.checked_ilog10().unwrap_or(0) as usize + 2 + frac_digits;
    let start = out.len();
    out.extend_from_slice(&[0u8; 24]);
    let buf = &mut out[start..start + len];
    let mut at = len;
    let mut push = |b: u8| {
        at -= 1;
        buf[at] = b;
    };
    if frac_digits == 1 {
        push(b'0' + (frac / 10) as u8);
    } else {
        push(b'0' + (frac % 10) as u8);
        push(b'0' + (frac / 10) as u8);
    }
    push(b'.');
    let mut n = int;
    loop {
        push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.truncate(start + len);
}

fn metrics<const P: bool>(out: &mut Vec<u8>, m: &crate::parse::nccl_tests::Metrics, st: Style<P>) {
    out.push(b'{');
    key!(st, out, METRIC, true, "time_us");
    decimal(out, m.time_us);
    key!(st, out, METRIC, false, "algbw_gbps");
    decimal(out, m.algbw_gbps);
    key!(st, out, METRIC, false, "busbw_gbps");
    decimal(out, m.busbw_gbps);
    key!(st, out, METRIC, false, "wrong");
    match m.wrong {
        Some(w) => int(out, w),
        None => out.extend_from_slice(b"null"),
    }
    key!(st, out, METRIC, false, "max_error");
    decimal(out, m.max_error);
    if m.busbw_not_finite {
        key!(st, out, METRIC, false, "busbw_not_finite");
        out.extend_from_slice(b"true");
    }
    st.brk(out, FIELD);
    out.push(b'}');
}

/// The elements of the run's `devices` list and its `]`.
fn write_devices<const P: bool>(
    out: &mut Vec<u8>,
    devices: &[crate::parse::nccl_tests::Device],
    st: Style<P>,
) -> io::Result<()> {
    list(out, devices, st, |out, d| {
        key!(st, out, FIELD, true, "rank");
        int(out, d.rank);
        key!(st, out, FIELD, false, "host");
        string(out, &d.host);
        key!(st, out, FIELD, false, "device");
        int(out, d.device);
        key!(st, out, FIELD, false, "name");
        string(out, &d.name);
        Ok(())
    })
}

/// The elements of a list, each an object whose fields `each` writes, and the list's `]` (on
/// its own line when pretty and the list had elements).
fn list<T, const P: bool>(
    out: &mut Vec<u8>,
    items: &[T],
    st: Style<P>,
    mut each: impl FnMut(&mut Vec<u8>, &T) -> io::Result<()>,
) -> io::Result<()> {
    for (i, item) in items.iter().enumerate() {
        st.element(out, i);
        each(out, item)?;
        st.element_end(out);
    }
    if items.is_empty() {
        out.push(b']');
    } else {
        st.list_end(out);
    }
    Ok(())
}

/// The elements of the run's `rows` list and its `]`.
fn write_rows<const P: bool>(
    out: &mut Vec<u8>,
    rows: &[crate::parse::nccl_tests::Row],
    st: Style<P>,
) -> io::Result<()> {
    list(out, rows, st, |out, row| {
        key!(st, out, FIELD, true, "size_bytes");
        int(out, row.size_bytes);
        key!(st, out, FIELD, false, "count");
        int(out, row.count);
        key!(st, out, FIELD, false, "type");
        string(out, &row.dtype);
        key!(st, out, FIELD, false, "redop");
        string(out, &row.redop);
        key!(st, out, FIELD, false, "root");
        int(out, row.root);
        key!(st, out, FIELD, false, "out_of_place");
        metrics(out, &row.out_of_place, st);
        key!(st, out, FIELD, false, "in_place");
        match &row.in_place {
            Some(m) => metrics(out, m, st),
            None => out.extend_from_slice(b"null"),
        }
        Ok(())
    })
}

/// The elements of the run's `sizes` list and its `]`.
fn write_sizes<const P: bool>(
    out: &mut Vec<u8>,
    sizes: &[crate::bench::SizeVerdict],
    st: Style<P>,
) -> io::Result<()> {
    list(out, sizes, st, |out, v| {
        key!(st, out, FIELD, true, "size_bytes");
        int(out, v.size_bytes);
        key!(st, out, FIELD, false, "busbw_gbps");
        decimal(out, v.busbw_gbps);
        key!(st, out, FIELD, false, "expected_gbps");
        decimal(out, v.expected_gbps);
        key!(st, out, FIELD, false, "minimum_gbps");
        decimal(out, v.minimum_gbps);
        key!(st, out, FIELD, false, "efficiency");
        decimal(out, v.efficiency);
        key!(st, out, FIELD, false, "status");
        scalar(out, &v.status)?;
        if !v.causes.is_empty() {
            key!(st, out, FIELD, false, "causes");
            if st.pretty() {
                let mut ser = serde_json::Serializer::with_formatter(
                    &mut *out,
                    Indented {
                        depth: 5,
                        has_value: false,
                    },
                );
                serde::Serialize::serialize(&v.causes, &mut ser).map_err(io::Error::other)?;
            } else {
                scalar(out, &v.causes)?;
            }
        }
        Ok(())
    })
}

/// A finding with its keys in sorted order, as the whole-report line writes it (through a
/// `serde_json::Value`, whose map sorts them), without building the `Value`: the keys are
/// listed here in order, and only the nested values that may hold maps of their own (the
/// evidence, when there is any; `observed` and `expected` are `Value`s already) go through
/// one. A test holds this to the `Value` path for findings of every shape.
struct SortedKeys<'a>(&'a Finding);

impl serde::Serialize for SortedKeys<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeMap};
        let f = self.0;
        // Every field, by name: a field added to `Finding` breaks this destructuring, and so
        // cannot be left out of the order below.
        let Finding {
            code,
            group,
            level,
            subject,
            message,
            observed,
            expected,
            evidence,
            fix,
        } = f;
        let mut m = s.serialize_map(Some(9))?;
        m.serialize_entry("code", code)?;
        if evidence.is_empty() {
            m.serialize_entry("evidence", evidence)?;
        } else {
            let v = serde_json::to_value(evidence).map_err(S::Error::custom)?;
            m.serialize_entry("evidence", &v)?;
        }
        m.serialize_entry("expected", expected)?;
        m.serialize_entry("fix", fix)?;
        m.serialize_entry("group", group)?;
        m.serialize_entry("level", level)?;
        m.serialize_entry("message", message)?;
        m.serialize_entry("observed", observed)?;
        m.serialize_entry("subject", subject)?;
        m.end()
    }
}

/// The streaming writer. Feed each judged run with [`BenchStream::run`], then
/// [`BenchStream::finish`] with the verdict.
pub struct BenchStream<W: Write> {
    format: StreamFormat,
    out: W,
    layout: Layout,
    runs: usize,
    started: bool,
    findings: usize,
    spool: Spool,
    /// The runs being written (one write per `WRITE_AT` bytes), and `serde_json`'s part of a run.
    scratch: Vec<u8>,
    head: Vec<u8>,
    /// Table: runs held until it is known whether the log has many.
    held: Vec<Judged>,
    summary: Option<Summary>,
    /// Table with `--runs`: every finding while the runs are few, repeated ones folded.
    every_findings: Vec<Finding>,
    repeated: RepeatedFindings,
}

impl<W: Write> BenchStream<W> {
    pub fn new(format: StreamFormat, out: W, layout: Layout) -> BenchStream<W> {
        BenchStream {
            format,
            out,
            layout,
            runs: 0,
            started: false,
            findings: 0,
            spool: Spool::default(),
            scratch: Vec::with_capacity(WRITE_AT + (1 << 15)),
            head: Vec::with_capacity(1 << 12),
            held: Vec::new(),
            summary: None,
            every_findings: Vec::new(),
            repeated: RepeatedFindings::default(),
        }
    }

    /// Hands the runs gathered in `scratch` to the writer once they fill `WRITE_AT`: a write
    /// that large passes the writer's own buffer by (no copy), where a run at a time was copied.
    fn write_if_full(&mut self) -> io::Result<()> {
        if self.scratch.len() >= WRITE_AT {
            self.out.write_all(&self.scratch)?;
            self.scratch.clear();
        }
        Ok(())
    }

    /// Runs written (or held) so far.
    pub fn runs(&self) -> usize {
        self.runs
    }

    fn start(&mut self) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        match self.format {
            StreamFormat::Json => self.out.write_all(b"{\n  \"schema\": 1,\n  \"runs\": ["),
            StreamFormat::Csv => self.out.write_all(text::CSV_HEADER.as_bytes()),
            _ => Ok(()),
        }
    }

    /// Writes (or, for a table of few runs, holds) one judged run.
    pub fn run(&mut self, d: Judged) -> io::Result<()> {
        self.start()?;
        self.runs += 1;
        match self.format {
            StreamFormat::Json => {
                self.scratch
                    .extend_from_slice(if self.runs == 1 { b"\n    " } else { b",\n    " });
                let mut d = d;
                write_run(&mut self.scratch, &mut self.head, &mut d.report, true)?;
                self.write_if_full()?;
                for f in &d.findings {
                    self.findings += 1;
                    self.spool
                        .mem
                        .extend_from_slice(if self.findings == 1 { b"\n    " } else { b",\n    " });
                    write_element(&mut self.spool.mem, f)?;
                    self.spool.spill_if_large()?;
                }
            }
            StreamFormat::Jsonl => {
                let mut d = d;
                write_run(&mut self.scratch, &mut self.head, &mut d.report, false)?;
                self.scratch.push(b'\n');
                self.write_if_full()?;
                for f in &d.findings {
                    self.findings += 1;
                    if self.findings > 1 {
                        self.spool.mem.push(b',');
                    }
                    serde_json::to_writer(&mut self.spool.mem, &SortedKeys(f)).map_err(io::Error::other)?;
                    self.spool.spill_if_large()?;
                }
            }
            StreamFormat::Csv => {
                text::write_csv_run(&d.report, &mut self.scratch);
                self.write_if_full()?;
            }
            StreamFormat::Table { every_run: true } => {
                self.out
                    .write_all(text::run_table(&d.report, self.layout).as_bytes())?;
                for f in &d.findings {
                    self.repeated.add(f, self.runs);
                }
                if self.runs < SUMMARY_MIN_RUNS {
                    self.every_findings.extend(d.findings);
                } else {
                    self.every_findings = Vec::new();
                }
            }
            StreamFormat::Table { every_run: false } => {
                if let Some(sum) = &mut self.summary {
                    sum.add(&d.report, &d.findings);
                } else {
                    self.held.push(d);
                    if self.held.len() >= SUMMARY_MIN_RUNS {
                        let mut sum = Summary::default();
                        for h in self.held.drain(..) {
                            sum.add(&h.report, &h.findings);
                        }
                        self.summary = Some(sum);
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the end (the verdict, rule and findings; or the held tables, or the summary) and
    /// flushes. Returns the writer.
    pub fn finish(mut self, verdict: &str) -> io::Result<W> {
        self.start()?;
        self.out.write_all(&self.scratch)?;
        self.scratch.clear();
        let rule = crate::bench::RULE;
        let json_str = |s: &str| serde_json::to_string(s).map_err(io::Error::other);
        match self.format {
            StreamFormat::Json => {
                if self.runs > 0 {
                    self.out.write_all(b"\n  ")?;
                }
                write!(
                    self.out,
                    "],\n  \"verdict\": {},\n  \"rule\": {},\n  \"findings\": [",
                    json_str(verdict)?,
                    json_str(rule)?
                )?;
                self.spool.copy_to(&mut self.out)?;
                if self.findings > 0 {
                    self.out.write_all(b"\n  ")?;
                }
                self.out.write_all(b"]\n}\n")?;
            }
            StreamFormat::Jsonl => {
                self.out.write_all(b"{\"findings\":[")?;
                self.spool.copy_to(&mut self.out)?;
                writeln!(
                    self.out,
                    "],\"rule\":{}{},\"verdict\":{}}}",
                    json_str(rule)?,
                    text::jsonl_summary_head(self.runs),
                    json_str(verdict)?
                )?;
            }
            StreamFormat::Csv => {}
            StreamFormat::Table { every_run: true } => {
                let tail = if self.runs < SUMMARY_MIN_RUNS {
                    text::footer(&self.every_findings, verdict, self.layout)
                } else {
                    let mut s = self.repeated.table(self.layout);
                    s.push_str(&text::footer(&[], verdict, self.layout));
                    s
                };
                self.out.write_all(tail.as_bytes())?;
            }
            StreamFormat::Table { every_run: false } => {
                let s = match &self.summary {
                    Some(sum) => sum.render(verdict, self.layout),
                    None => {
                        let mut s = String::new();
                        let mut findings = Vec::new();
                        for h in &self.held {
                            s.push_str(&text::run_table(&h.report, self.layout));
                            findings.extend(h.findings.iter().cloned());
                        }
                        s.push_str(&text::footer(&findings, verdict, self.layout));
                        s
                    }
                };
                self.out.write_all(s.as_bytes())?;
            }
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::decimal;

    fn ours(v: Option<f64>) -> String {
        let mut out = Vec::new();
        decimal(&mut out, v);
        String::from_utf8(out).expect("utf8")
    }

    /// The fast path writes exactly what `serde_json` writes, on every two-decimal value a log
    /// holds and on the values that must take the general path.
    #[test]
    fn decimals_are_written_as_serde_json_writes_them() {
        let mut values: Vec<f64> = Vec::new();
        for hundredths in 0..200_000u64 {
            values.push(
                format!("{}.{:02}", hundredths / 100, hundredths % 100)
                    .parse()
                    .expect("f64"),
            );
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            // xorshift: wide two-decimal values up to 10^14, and arbitrary doubles.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let h = x % 10_000_000_000_000_000;
            values.push(format!("{}.{:02}", h / 100, h % 100).parse().expect("f64"));
            values.push(f64::from_bits(x));
        }
        values.extend([
            -0.0,
            -1.5,
            1e-7,
            2e-7,
            1e13,
            1e13 - 0.01,
            9.999_999_999_999e12,
            1e16,
            1e300,
            0.1 + 0.2,
        ]);
        for v in values {
            if !v.is_finite() {
                continue;
            }
            assert_eq!(ours(Some(v)), serde_json::to_string(&v).expect("json"), "{v:e}");
        }
        assert_eq!(ours(None), "null");
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let mut cases: Vec<String> = [
            "float",
            "sum",
            "NVIDIA H100 80GB HBM3",
            "gpu-h100-017",
            "",
            "a\"b",
            "x\\y",
            "tab\there",
            "ü",
            "\u{1b}[2J",
            "\u{7f}",
            "\u{2028}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every single character below U+0100, alone and inside text.
        for c in (0u32..0x100).filter_map(char::from_u32) {
            cases.push(c.to_string());
            cases.push(format!("host{c}name"));
        }
        for s in &cases {
            let mut out = Vec::new();
            super::string(&mut out, s);
            assert_eq!(
                String::from_utf8(out).expect("utf8"),
                serde_json::to_string(s).expect("json"),
                "{s:?}"
            );
        }
    }

    /// Findings written with their keys in order match the `Value` path (which sorts them),
    /// with and without evidence of each kind and with nested observed and expected values.
    #[test]
    fn sorted_findings_match_the_value_path() {
        use crate::finding::{Code, Finding, Level};
        let mut fs = vec![Finding::new(
            Code::parse("two-node-tree").expect("code"),
            Level::Info,
            "m",
        )];
        let mut f = Finding::at(
            Code::parse("no-figure").expect("code"),
            Level::Warn,
            "a \"b\"\n",
            "x",
        );
        f.observed = Some(serde_json::json!({"z": 1, "a": [1, {"y": 2, "b": null}]}));
        f.expected = Some(serde_json::json!(4.5));
        f.fix = "do \\ this".into();
        f.evidence.push(crate::finding::Evidence::Probe("lspci".into()));
        f.evidence.push(crate::finding::Evidence::File {
            path: "/tmp/x".into(),
            line: Some(3),
        });
        f.evidence.push(crate::finding::Evidence::Text("t".into()));
        fs.push(f);
        for f in &fs {
            let ours = serde_json::to_string(&super::SortedKeys(f)).expect("json");
            let want = serde_json::to_string(&serde_json::to_value(f).expect("value")).expect("json");
            assert_eq!(ours, want);
        }
    }

    #[test]
    fn integers_are_written_as_serde_json_writes_them() {
        for v in [0i64, 1, -1, 9, 10, 99, 100, i64::MAX, i64::MIN, -1_000_000] {
            let mut out = Vec::new();
            super::int(&mut out, v);
            assert_eq!(out, serde_json::to_vec(&v).expect("json"), "{v}");
        }
        for v in [0u64, 7, 1 << 40, u64::MAX] {
            let mut out = Vec::new();
            super::int(&mut out, v);
            assert_eq!(out, serde_json::to_vec(&v).expect("json"), "{v}");
        }
    }
}
