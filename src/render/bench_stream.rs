//! `bench --parse` written while it is parsed: each judged run goes straight to the writer, so
//! memory holds one run, whatever the length of the log. The output is byte for byte what the
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

/// Where a run's `rows` and `sizes` sit when they are empty: keys at depth 3 of the pretty
/// document, or anywhere in a compact line (the run's own keys come first: no nested object
/// before them has such a key, and a string cannot hold an unescaped `"`).
const ROWS_EMPTY: &[u8] = b"\n      \"rows\": []";
const SIZES_EMPTY: &[u8] = b"\n      \"sizes\": []";
const ROWS_EMPTY_COMPACT: &[u8] = b"\"rows\":[]";
const SIZES_EMPTY_COMPACT: &[u8] = b"\"sizes\":[]";

/// One run as `serde_json` writes it (pretty as an element of the runs array, or compact on
/// one line), with its rows and size verdicts (nearly all of the bytes) written here with
/// their keys as constants: the rest of the run is serialized with both lists empty, and the
/// lists are written where `serde_json` put the empty ones. Strings and numbers still go
/// through `serde_json`, so the bytes are the same (a test compares the stream with the
/// whole-report renderers over every fixture and sample).
fn write_run(
    out: &mut impl Write,
    report: &mut crate::bench::RunReport,
    scratch: &mut Vec<u8>,
    pretty: bool,
) -> io::Result<()> {
    let (rows_mark, sizes_mark) = if pretty {
        (ROWS_EMPTY, SIZES_EMPTY)
    } else {
        (ROWS_EMPTY_COMPACT, SIZES_EMPTY_COMPACT)
    };
    let rows = std::mem::take(&mut report.run.rows);
    let sizes = std::mem::take(&mut report.sizes);
    scratch.clear();
    whole(&mut *scratch, report, pretty)?;
    let find =
        |hay: &[u8], from: usize, needle: &[u8]| memchr::memmem::find(&hay[from..], needle).map(|i| i + from);
    let at_rows = find(scratch, 0, rows_mark);
    let at_sizes = at_rows.and_then(|r| find(scratch, r + rows_mark.len(), sizes_mark));
    let (Some(r), Some(z)) = (at_rows, at_sizes) else {
        // Not where expected (cannot happen with today's field order): the generic path.
        report.run.rows = rows;
        report.sizes = sizes;
        return whole(out, report, pretty);
    };
    let st = Style { pretty };
    out.write_all(&scratch[..r + rows_mark.len() - 2])?;
    write_rows(out, &rows, st)?;
    out.write_all(&scratch[r + rows_mark.len()..z + sizes_mark.len() - 2])?;
    write_sizes(out, &sizes, st)?;
    out.write_all(&scratch[z + sizes_mark.len()..])?;
    report.run.rows = rows;
    report.sizes = sizes;
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

#[derive(Clone, Copy)]
struct Style {
    pretty: bool,
}

/// Line breaks and indentation of the pretty document, by depth of what follows.
const ELEMENT: &[u8] = b"\n        ";
const FIELD: &[u8] = b"\n          ";
const LIST_END: &[u8] = b"\n      ";

/// `"name": ` (compact `"name":`), after a comma unless it is the first, on a new line at the
/// field's depth when pretty: one constant, one write.
macro_rules! key {
    ($st:expr, $out:expr, METRIC, $first:tt, $name:literal) => {
        key!(@ $st, $out, "\n            ", $first, $name)
    };
    ($st:expr, $out:expr, FIELD, $first:tt, $name:literal) => {
        key!(@ $st, $out, "\n          ", $first, $name)
    };
    (@ $st:expr, $out:expr, $indent:literal, true, $name:literal) => {
        $out.write_all(if $st.pretty {
            concat!($indent, "\"", $name, "\": ").as_bytes()
        } else {
            concat!("\"", $name, "\":").as_bytes()
        })
    };
    (@ $st:expr, $out:expr, $indent:literal, false, $name:literal) => {
        $out.write_all(if $st.pretty {
            concat!(",", $indent, "\"", $name, "\": ").as_bytes()
        } else {
            concat!(",\"", $name, "\":").as_bytes()
        })
    };
}

impl Style {
    /// A line break and `indent` when pretty.
    fn brk(self, out: &mut impl Write, indent: &[u8]) -> io::Result<()> {
        if self.pretty {
            out.write_all(indent)
        } else {
            Ok(())
        }
    }
}

/// A number, string or null exactly as `serde_json` writes it.
fn scalar(out: &mut impl Write, v: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, v).map_err(io::Error::other)
}

/// A row's type or reduction name (`float`, `sum`, …) as a JSON string: quoted as it is when it
/// holds only letters, digits and `_` (nothing to escape), else through `serde_json`. Two per
/// row, they were a twentieth of `--format jsonl`'s time through the general string writer.
fn label(out: &mut impl Write, s: &str) -> io::Result<()> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        out.write_all(b"\"")?;
        out.write_all(s.as_bytes())?;
        out.write_all(b"\"")
    } else {
        scalar(out, &s)
    }
}

/// `serde_json`'s shortest round-trip text of `v` for the values nccl-tests prints (`%.2f`,
/// under 10^13): the number of hundredths, with the point put back and trailing zeros of the
/// fraction dropped (`1.5`, `2.0`, `123.45`), which is what the shortest representation is when
/// `v` is exactly the double nearest to a two-decimal number (`r / 100.0` is that double, as
/// parsing the text is: both round correctly). Any other value goes through `serde_json`.
/// Formatting floats was a tenth of `--format jsonl`'s time.
fn decimal(out: &mut impl Write, v: Option<f64>) -> io::Result<()> {
    let Some(v) = v else {
        return out.write_all(b"null");
    };
    // `+ 0.5` then truncation rounds a positive value as `round` does, without its call.
    if !(v > 0.0 && v < 1e13) {
        return scalar(out, &v);
    }
    let r = (v * 100.0 + 0.5) as u64;
    if r as f64 / 100.0 != v {
        return scalar(out, &v);
    }
    let (int, frac) = (r / 100, r % 100);
    let mut buf = [0u8; 24];
    let mut at = buf.len();
    let mut push = |b: u8| {
        at -= 1;
        buf[at] = b;
    };
    match frac {
        f if f % 10 == 0 => push(b'0' + (f / 10) as u8),
        f => {
            push(b'0' + (f % 10) as u8);
            push(b'0' + (f / 10) as u8);
        }
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
    out.write_all(&buf[at..])
}

fn metrics(out: &mut impl Write, m: &crate::parse::nccl_tests::Metrics, st: Style) -> io::Result<()> {
    out.write_all(b"{")?;
    key!(st, out, METRIC, true, "time_us")?;
    decimal(out, m.time_us)?;
    key!(st, out, METRIC, false, "algbw_gbps")?;
    decimal(out, m.algbw_gbps)?;
    key!(st, out, METRIC, false, "busbw_gbps")?;
    decimal(out, m.busbw_gbps)?;
    key!(st, out, METRIC, false, "wrong")?;
    scalar(out, &m.wrong)?;
    key!(st, out, METRIC, false, "max_error")?;
    decimal(out, m.max_error)?;
    if m.busbw_not_finite {
        key!(st, out, METRIC, false, "busbw_not_finite")?;
        out.write_all(b"true")?;
    }
    st.brk(out, FIELD)?;
    out.write_all(b"}")
}

/// `rows` as the value of the run's `rows` key.
fn write_rows(out: &mut impl Write, rows: &[crate::parse::nccl_tests::Row], st: Style) -> io::Result<()> {
    if rows.is_empty() {
        return out.write_all(b"[]");
    }
    out.write_all(b"[")?;
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        st.brk(out, ELEMENT)?;
        out.write_all(b"{")?;
        key!(st, out, FIELD, true, "size_bytes")?;
        scalar(out, &row.size_bytes)?;
        key!(st, out, FIELD, false, "count")?;
        scalar(out, &row.count)?;
        key!(st, out, FIELD, false, "type")?;
        label(out, &row.dtype)?;
        key!(st, out, FIELD, false, "redop")?;
        label(out, &row.redop)?;
        key!(st, out, FIELD, false, "root")?;
        scalar(out, &row.root)?;
        key!(st, out, FIELD, false, "out_of_place")?;
        metrics(out, &row.out_of_place, st)?;
        key!(st, out, FIELD, false, "in_place")?;
        match &row.in_place {
            Some(m) => metrics(out, m, st)?,
            None => out.write_all(b"null")?,
        }
        st.brk(out, ELEMENT)?;
        out.write_all(b"}")?;
    }
    st.brk(out, LIST_END)?;
    out.write_all(b"]")
}

/// `sizes` as the value of the run's `sizes` key.
fn write_sizes(out: &mut impl Write, sizes: &[crate::bench::SizeVerdict], st: Style) -> io::Result<()> {
    if sizes.is_empty() {
        return out.write_all(b"[]");
    }
    out.write_all(b"[")?;
    for (i, v) in sizes.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        st.brk(out, ELEMENT)?;
        out.write_all(b"{")?;
        key!(st, out, FIELD, true, "size_bytes")?;
        scalar(out, &v.size_bytes)?;
        key!(st, out, FIELD, false, "busbw_gbps")?;
        scalar(out, &v.busbw_gbps)?;
        key!(st, out, FIELD, false, "expected_gbps")?;
        scalar(out, &v.expected_gbps)?;
        key!(st, out, FIELD, false, "minimum_gbps")?;
        scalar(out, &v.minimum_gbps)?;
        key!(st, out, FIELD, false, "efficiency")?;
        scalar(out, &v.efficiency)?;
        key!(st, out, FIELD, false, "status")?;
        scalar(out, &v.status)?;
        if !v.causes.is_empty() {
            key!(st, out, FIELD, false, "causes")?;
            if st.pretty {
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
        st.brk(out, ELEMENT)?;
        out.write_all(b"}")?;
    }
    st.brk(out, LIST_END)?;
    out.write_all(b"]")
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
    scratch: Vec<u8>,
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
            scratch: Vec::with_capacity(1 << 14),
            held: Vec::new(),
            summary: None,
            every_findings: Vec::new(),
            repeated: RepeatedFindings::default(),
        }
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
                self.out
                    .write_all(if self.runs == 1 { b"\n    " } else { b",\n    " })?;
                let mut d = d;
                write_run(&mut self.out, &mut d.report, &mut self.scratch, true)?;
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
                write_run(&mut self.out, &mut d.report, &mut self.scratch, false)?;
                self.out.write_all(b"\n")?;
                for f in &d.findings {
                    self.findings += 1;
                    if self.findings > 1 {
                        self.spool.mem.push(b',');
                    }
                    // Through a `Value`, whose map sorts the keys, as the whole-report line does.
                    let v = serde_json::to_value(f).map_err(io::Error::other)?;
                    serde_json::to_writer(&mut self.spool.mem, &v).map_err(io::Error::other)?;
                    self.spool.spill_if_large()?;
                }
            }
            StreamFormat::Csv => {
                self.scratch.clear();
                text::write_csv_run(&d.report, &mut self.scratch);
                self.out.write_all(&self.scratch)?;
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
        decimal(&mut out, v).expect("write");
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
    fn labels_are_written_as_serde_json_writes_them() {
        for s in [
            "float",
            "sum",
            "none",
            "bfloat16",
            "f8e4m3",
            "",
            "a\"b",
            "x\\y",
            "tab\there",
            "ü",
            "\u{1b}[2J",
        ] {
            let mut out = Vec::new();
            super::label(&mut out, s).expect("write");
            assert_eq!(
                String::from_utf8(out).expect("utf8"),
                serde_json::to_string(s).expect("json"),
                "{s:?}"
            );
        }
    }
}
