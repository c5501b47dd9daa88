//! Bounded reading of the files users point nccltune at (rules, expectations, targets, cluster
//! files, env files, nccl.conf, NCCL logs). Every read has a size cap and a line-length cap,
//! checked while reading, so `/dev/zero`, a 2 GB one-line file or a huge nccl.conf end in a
//! clear error after at most the cap is held in memory, not after memory is gone. Errors name
//! the file, the line and the fix, and quote at most [`EXCERPT_CHARS`] characters of the line.

use crate::render::text::{excerpt, one_line};
use anyhow::{Result, bail};
use std::io::Read;
use std::path::Path;

/// How much of an offending line an error message quotes.
pub const EXCERPT_CHARS: usize = 80;

/// Caps for one kind of input file.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Longest line accepted, in bytes (without the line feed).
    pub max_line: usize,
    /// What the file is expected to be, for the error's fix (`a TOML rules file`).
    pub kind: &'static str,
}

/// Configuration written by people: TOML (rules, expectations, targets, cluster and link
/// files), env files, job scripts, nccl.conf. Real ones are kilobytes; 8 MiB and 64 KiB lines
/// leave room for generated files (a 10,000-node cluster file is about 1 MiB).
pub const CONFIG: Limits = Limits {
    max_bytes: 8 << 20,
    max_line: 64 << 10,
    kind: "a text configuration file",
};

/// Logs written by programs (an NCCL_DEBUG=INFO run): larger, still line-oriented.
pub const LOG: Limits = Limits {
    max_bytes: 64 << 20,
    max_line: 64 << 10,
    kind: "a text log",
};

/// TOML files: rules, expectations, targets, links.
pub const TOML: Limits = CONFIG.named("a TOML file");

/// NCCL config files and env files (`KEY=VALUE` lines).
pub const ENV: Limits = CONFIG.named("an env or NCCL config file (KEY=VALUE lines)");

/// Cluster files: TOML, or JSON that a tool may write on one line.
pub const CLUSTER: Limits = CONFIG.named("a TOML or JSON cluster file").with_line(8 << 20);

impl Limits {
    /// The same caps, described as `kind` in errors.
    pub const fn named(self, kind: &'static str) -> Limits {
        Limits { kind, ..self }
    }

    /// The same caps with another line-length cap.
    pub const fn with_line(self, max_line: usize) -> Limits {
        Limits { max_line, ..self }
    }
}

fn mib(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// Reads `path` whole, refusing it as soon as it passes `limits`. Directories are refused
/// before reading; pipes and devices are read as streams under the same caps.
pub fn read_bytes(path: &Path, limits: &Limits) -> Result<Vec<u8>> {
    let name = path.display();
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{name}: cannot open: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| anyhow::anyhow!("{name}: cannot read: {e}"))?;
    if meta.is_dir() {
        bail!("{name}: is a directory; expected {}", limits.kind);
    }
    if meta.is_file() && meta.len() > limits.max_bytes {
        bail!(
            "{name}: {} bytes, more than the {} nccltune reads from {}: check that this is the right file",
            meta.len(),
            mib(limits.max_bytes),
            limits.kind
        );
    }
    let hint = if meta.is_file() { meta.len() } else { 0 };
    read_capped(file, &name.to_string(), limits, hint)
}

/// [`read_bytes`] from any reader (standard input, a pipe); `name` labels errors.
pub fn read_capped(mut r: impl Read, name: &str, limits: &Limits, size_hint: u64) -> Result<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(size_hint.min(limits.max_bytes) as usize);
    let mut buf = vec![0u8; 64 << 10];
    let mut line = 1usize;
    let mut line_start = 0usize;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => bail!("{name}: read failed after {} bytes: {e}", out.len()),
        };
        if (out.len() + n) as u64 > limits.max_bytes {
            bail!(
                "{name}: more than the {} nccltune reads from {}: check that this is the right file",
                mib(limits.max_bytes),
                limits.kind
            );
        }
        let base = out.len();
        out.extend_from_slice(&buf[..n]);
        let mut pos = base;
        while pos < out.len() {
            match out[pos..].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if pos + i - line_start > limits.max_line {
                        return Err(too_long(name, limits, line, &out[line_start..]));
                    }
                    pos += i + 1;
                    line += 1;
                    line_start = pos;
                }
                None => {
                    if out.len() - line_start > limits.max_line {
                        return Err(too_long(name, limits, line, &out[line_start..]));
                    }
                    pos = out.len();
                }
            }
        }
    }
    Ok(out)
}

fn too_long(name: &str, limits: &Limits, line: usize, rest: &[u8]) -> anyhow::Error {
    let head = &rest[..rest.len().min(4 * EXCERPT_CHARS)];
    anyhow::anyhow!(
        "{name}: line {line}: longer than {} (starts \"{}\"); expected {}: check that this is the right file",
        mib(limits.max_line as u64),
        excerpt(&String::from_utf8_lossy(head), EXCERPT_CHARS),
        limits.kind
    )
}

/// [`read_bytes`] as UTF-8 text; invalid UTF-8 is an error naming the line.
pub fn read_text(path: &Path, limits: &Limits) -> Result<String> {
    let bytes = read_bytes(path, limits)?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        anyhow::anyhow!(
            "{}: line {line}: not UTF-8 text (invalid byte at offset {at}); expected {}",
            path.display(),
            limits.kind
        )
    })
}

/// [`read_bytes`] as text, with invalid UTF-8 replaced by U+FFFD (logs and env files, where one
/// bad byte should not hide the rest).
pub fn read_text_lossy(path: &Path, limits: &Limits) -> Result<String> {
    let bytes = read_bytes(path, limits)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// A TOML error as `line L column C: message` with at most [`EXCERPT_CHARS`] characters of
/// the offending line and a caret under the column, instead of the whole line and a caret line
/// as long as it (an 8 MB line would print 16 MB).
pub fn toml_error(text: &str, err: &toml::de::Error) -> String {
    let msg = err.message().trim_end();
    let Some(span) = err.span() else {
        return msg.to_string();
    };
    let start = floor_char_boundary(text, span.start.min(text.len()));
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_no = text[..line_start].bytes().filter(|&b| b == b'\n').count() + 1;
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = &text[line_start..line_end];
    let col = text[line_start..start].chars().count();
    // Show a window of the line that holds the column.
    let skip = col.saturating_sub(EXCERPT_CHARS / 2);
    let window: String = line.chars().skip(skip).collect();
    let shown = excerpt(&window, EXCERPT_CHARS);
    let lead = if skip > 0 { "…" } else { "" };
    let before: String = window.chars().take(col - skip).collect();
    let caret_at = lead.chars().count() + one_line(&before).chars().count();
    format!(
        "line {line_no} column {}: {msg}\n  | {lead}{shown}\n  | {}^",
        col + 1,
        " ".repeat(caret_at)
    )
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limits = Limits {
        max_bytes: 1000,
        max_line: 100,
        kind: "a test file",
    };

    #[test]
    fn a_file_within_the_caps_is_read_whole() {
        let text = "a=1\n".repeat(200);
        let got = read_capped(text.as_bytes(), "t", &SMALL.named("x"), 0).expect("read");
        assert_eq!(got, text.as_bytes());
        let line = "x".repeat(100);
        assert!(
            read_capped(line.as_bytes(), "t", &SMALL, 0).is_ok(),
            "exactly the cap is fine"
        );
    }

    #[test]
    fn an_endless_stream_stops_at_the_line_cap() {
        let zeros = std::io::repeat(0).take(1 << 30);
        let limits = Limits {
            max_bytes: 1 << 20,
            ..SMALL
        };
        let err = read_capped(zeros, "/dev/zero", &limits, 0).expect_err("refused");
        let msg = format!("{err:#}");
        assert!(
            msg.starts_with("/dev/zero: line 1: longer than 100 bytes"),
            "{msg}"
        );
        assert!(msg.len() < 600, "the excerpt is short: {msg}");
        assert!(!msg.contains('\0'), "control bytes are escaped");
    }

    #[test]
    fn a_long_line_is_named_with_a_short_excerpt() {
        let text = format!("ok\nok\n{}\n", "y".repeat(5000));
        let err =
            read_capped(text.as_bytes(), "f.conf", &LOG.named("x").with_line(200), 0).expect_err("refused");
        let msg = format!("{err:#}");
        assert!(msg.contains("f.conf: line 3: longer than 200 bytes"), "{msg}");
        assert!(msg.contains(&format!("\"{}…\"", "y".repeat(80))), "{msg}");
    }

    #[test]
    fn too_many_bytes_are_refused() {
        let text = "a\n".repeat(600);
        let err = read_capped(text.as_bytes(), "big", &SMALL, 0).expect_err("refused");
        assert!(format!("{err:#}").contains("more than the 1000 bytes"), "{err:#}");
    }

    #[test]
    fn files_over_the_cap_are_refused_before_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("big.conf");
        let f = std::fs::File::create(&p).expect("create");
        f.set_len(10 << 30).expect("sparse file");
        let err = read_bytes(&p, &CONFIG).expect_err("refused");
        assert!(
            format!("{err:#}").contains("10737418240 bytes, more than the 8 MiB"),
            "{err:#}"
        );
        let err = read_bytes(dir.path(), &CONFIG).expect_err("refused");
        assert!(format!("{err:#}").contains("is a directory"), "{err:#}");
        std::fs::write(&p, b"a\n\xff\n").expect("write");
        let err = read_text(&p, &CONFIG).expect_err("not UTF-8");
        assert!(format!("{err:#}").contains("line 2: not UTF-8"), "{err:#}");
        assert_eq!(read_text_lossy(&p, &CONFIG).expect("lossy"), "a\n\u{fffd}\n");
    }

    #[test]
    fn toml_errors_quote_a_short_window_with_a_caret() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        let text = format!("a = 1\nb = \"{}\" x\n", "z".repeat(100_000));
        let err = toml::from_str::<T>(&text).expect_err("bad");
        let msg = toml_error(&text, &err);
        assert!(msg.starts_with("line 2 column "), "{msg}");
        assert!(msg.len() < 600, "{}", msg.len());
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines.len(), 3, "{msg}");
        let short = "a = [\n";
        let err = toml::from_str::<T>(short).expect_err("bad");
        assert!(
            toml_error(short, &err).contains("line "),
            "{}",
            toml_error(short, &err)
        );
    }
}
