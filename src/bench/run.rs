//! `bench run`: runs an nccl-tests command (never through a shell), writes its raw output to
//! a log as it arrives, parses it while it streams, and judges what was measured. Owns the
//! guarantees that no measurement is lost:
//!
//! - the log is created exclusively under an unpredictable name beside its final name
//!   (`NAME.XXXXXX.partial`) and renamed at the end without replacing anything: a taken name
//!   becomes `STEM.1.EXT`, `STEM.2.EXT`, ..., so concurrent runs in one folder keep both logs;
//! - output is handled in chunks and lines are held up to `MAX_LINE_BYTES`: a benchmark that
//!   prints without newlines cannot grow memory, and its raw bytes still reach the log;
//! - SIGINT, SIGTERM and SIGHUP are forwarded to the benchmark's process group (it runs in its
//!   own, so a Ctrl-C at the terminal reaches it only through us); after a grace period, or at a
//!   second signal, the group is killed. The log is then finished and renamed, the sizes parsed
//!   so far are judged, and the exit code is 128 + the signal, as shells report it;
//! - an optional wall-clock limit for the whole run stops the benchmark the same way;
//! - a failed log write (a full disk) stops the benchmark, keeps what was written under the
//!   partial name, and still judges every size that was read.

use super::{BenchReport, Options, Targets, judge};
use crate::finding::BenchCode;
use crate::finding::{Finding, Severity};
use crate::parse::nccl_tests::{Parser, Run};
use crate::probe::process::{GroupChild, Signal};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Longest line kept for parsing. nccl-tests lines are under 200 bytes; anything longer is not
/// a result row, so it is dropped from parsing (the log keeps its bytes).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Bytes read from the benchmark at a time.
const CHUNK_BYTES: usize = 64 * 1024;

/// Chunks in flight between the reader thread and the writer: with `CHUNK_BYTES`, 1 MiB.
const CHUNKS_IN_FLIGHT: usize = 16;

/// Time the benchmark gets to stop after a forwarded signal before its group is killed:
/// `mpirun` passes the signal on to its ranks and needs a moment to tear them down.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// How long to keep reading after the benchmark's group is gone: a process that left the group
/// (`setsid`) can hold the pipe open forever.
const EOF_GRACE: Duration = Duration::from_secs(2);

/// Largest suffix tried for a free log name.
const MAX_LOG_SUFFIX: u32 = 999;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The program and its arguments. The program is looked up on PATH.
    pub command: Vec<String>,
    /// The log's wanted name; taken names get a numeric suffix, never replaced.
    pub log: PathBuf,
    /// Wall-clock limit for the whole run.
    pub timeout: Option<Duration>,
    /// Time between a forwarded signal (or the timeout's SIGTERM) and SIGKILL.
    pub grace: Duration,
    /// Longest line kept for parsing.
    pub max_line: usize,
    /// Targets to judge against.
    pub targets: Option<Targets>,
}

impl RunOptions {
    pub fn new(command: Vec<String>, log: PathBuf) -> RunOptions {
        RunOptions {
            command,
            log,
            timeout: None,
            grace: STOP_GRACE,
            max_line: MAX_LINE_BYTES,
            targets: None,
        }
    }
}

/// Why the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The benchmark exited by itself.
    Exited,
    /// nccltune received this signal (forwarded to the benchmark's group).
    Interrupted(i32),
    /// The wall-clock limit passed.
    TimedOut(Duration),
    /// Writing the log failed; the benchmark was stopped.
    LogWriteFailed(String),
    /// Reading the benchmark's output failed; the benchmark was stopped.
    ReadFailed(String),
}

/// Where the raw output is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogState {
    /// Complete, under its final name.
    Saved(PathBuf),
    /// Incomplete (a write failed, or the rename did): kept under this name.
    Incomplete { path: PathBuf, why: String },
    /// The caller's own sink (`run_into`).
    External,
}

/// Everything a run produced.
#[derive(Debug)]
pub struct RunResult {
    /// The program as found on PATH.
    pub program: PathBuf,
    pub ended: Ended,
    /// The benchmark's exit status (killed by a signal after a stop).
    pub status: Option<ExitStatus>,
    pub log: LogState,
    /// Bytes read from the benchmark.
    pub bytes: u64,
    /// Lines longer than `max_line`, skipped by the parser.
    pub overlong_lines: usize,
    /// The parsed runs, judged; `None` when the output held no nccl-tests run.
    pub report: Option<BenchReport>,
}

impl RunResult {
    /// The exit code: 128 + N after signal N; 2 when the log could not be written or nothing
    /// could be read; 1 when the run timed out, the benchmark failed or a size failed.
    pub fn exit_code(&self) -> u8 {
        match &self.ended {
            Ended::Interrupted(sig) => u8::try_from(128 + sig).unwrap_or(255),
            Ended::LogWriteFailed(_) | Ended::ReadFailed(_) => 2,
            Ended::TimedOut(_) => 1,
            Ended::Exited => match &self.report {
                None => 2,
                Some(r) => {
                    let ok = self.status.is_some_and(|s| s.success());
                    u8::from(!ok || r.verdict == "fail")
                }
            },
        }
    }

    /// What to tell the user besides the report, one line each.
    pub fn messages(&self) -> Vec<String> {
        let mut m = Vec::new();
        let prog = self.program.display();
        match &self.ended {
            Ended::Exited => {}
            Ended::Interrupted(sig) => m.push(format!(
                "interrupted by {}: forwarded to {prog} and its process group; judging the sizes measured so far",
                signal_name(*sig)
            )),
            Ended::TimedOut(d) => m.push(format!(
                "--timeout {}s reached: {prog} and its process group were stopped; judging the sizes measured so far",
                d.as_secs_f64()
            )),
            Ended::LogWriteFailed(e) => m.push(format!(
                "cannot write the log ({e}): {prog} was stopped; judging the sizes measured so far"
            )),
            Ended::ReadFailed(e) => m.push(format!(
                "cannot read the output of {prog} ({e}): it was stopped"
            )),
        }
        match &self.log {
            LogState::Saved(p) => m.push(format!(
                "raw output saved to {} ({} bytes)",
                p.display(),
                self.bytes
            )),
            LogState::Incomplete { path, why } => m.push(format!(
                "the raw log is incomplete ({why}); what was written is in {}",
                path.display()
            )),
            LogState::External => {}
        }
        if self.overlong_lines > 0 {
            m.push(format!(
                "{} line(s) longer than {} bytes were not parsed (they are in the log)",
                self.overlong_lines, MAX_LINE_BYTES
            ));
        }
        if let Some(s) = self.status.filter(|s| !s.success()) {
            m.push(format!("{prog} ended with {s}"));
        }
        if self.report.is_none() {
            m.push(format!("{prog} printed no nccl-tests output"));
        }
        m
    }
}

/// "SIGINT" for 2, and so on.
pub fn signal_name(sig: i32) -> String {
    signal_hook::low_level::signal_name(sig).map_or_else(|| format!("signal {sig}"), String::from)
}

/// Runs the benchmark into a fresh log beside `opts.log` and renames it into place at the
/// end. `on_row` is called with each new row's size and out-of-place busbw, for progress.
/// Errors are the cases where nothing ran: no program, no log could be created.
pub fn run(opts: &RunOptions, on_row: &mut dyn FnMut(u64, Option<f64>)) -> io::Result<RunResult> {
    // A missing program is found out before any file is made.
    resolve(opts)?;
    let (mut file, partial) = create_partial(&opts.log)?;
    // Held until the log is in place: a signal during the rename must not cut it short.
    let mut fwd = Forwarding::new()?;
    let mut result = match run_inner(opts, &mut file, on_row, &mut fwd) {
        Ok(r) => r,
        Err(e) => {
            // Nothing ran, or nothing was read: an empty partial log holds nothing to keep.
            if file.metadata().is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(&partial);
            }
            return Err(e);
        }
    };
    result.log = match (&result.ended, file.sync_all()) {
        (Ended::LogWriteFailed(e), _) => LogState::Incomplete {
            path: partial,
            why: e.clone(),
        },
        (_, Err(e)) => LogState::Incomplete {
            path: partial,
            why: e.to_string(),
        },
        (_, Ok(())) => {
            drop(file);
            match persist(&partial, &opts.log) {
                Ok(p) => LogState::Saved(p),
                Err(e) => LogState::Incomplete {
                    path: partial,
                    why: format!("cannot rename it: {e}"),
                },
            }
        }
    };
    Ok(result)
}

/// Creates `NAME.XXXXXX.partial` beside `log`, exclusively (`O_EXCL`, no symlink followed),
/// and keeps it whatever happens: it holds measurements.
fn create_partial(log: &Path) -> io::Result<(File, PathBuf)> {
    let dir = match log.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = log
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{}: not a file name", log.display())))?;
    let mut prefix = name.to_os_string();
    prefix.push(".");
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".partial")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .disable_cleanup(true)
        .tempfile_in(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create a log in {}: {e}", dir.display())))?;
    let (file, path) = tmp
        .keep()
        .map_err(|e| io::Error::other(format!("cannot keep the log: {e}")))?;
    Ok((file, path))
}

/// Renames `partial` to `wanted`, or to the first free `STEM.N.EXT`, never replacing a file.
fn persist(partial: &Path, wanted: &Path) -> io::Result<PathBuf> {
    for n in 0..=MAX_LOG_SUFFIX {
        let target = if n == 0 {
            wanted.to_path_buf()
        } else {
            numbered(wanted, n)
        };
        match rename_noreplace(partial, &target) {
            Ok(()) => return Ok(target),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{} and {MAX_LOG_SUFFIX} numbered names beside it are taken",
        wanted.display()
    )))
}

/// Renames without ever replacing `to`: `renameat2(RENAME_NOREPLACE)`, or, on a file system
/// without it, a hard link (which fails on a taken name) and an unlink.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::NOTSUP) => {
            std::fs::hard_link(from, to)?;
            std::fs::remove_file(from)
        }
        Err(e) => Err(e.into()),
    }
}

/// `nccl-tests.log` → `nccl-tests.N.log`; `out` → `out.N`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{n}"),
    };
    path.with_file_name(name)
}

/// Splits a byte stream into lines, holding at most `cap` bytes of one line.
struct Lines {
    buf: Vec<u8>,
    cap: usize,
    overlong: bool,
    overlong_lines: usize,
}

impl Lines {
    fn new(cap: usize) -> Lines {
        Lines {
            buf: Vec::new(),
            cap,
            overlong: false,
            overlong_lines: 0,
        }
    }

    fn push(&mut self, mut chunk: &[u8], line: &mut dyn FnMut(&[u8])) {
        while !chunk.is_empty() {
            let (piece, end) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], true),
                None => (chunk, false),
            };
            let room = self.cap.saturating_sub(self.buf.len());
            if piece.len() > room {
                self.overlong = true;
            }
            if !self.overlong {
                self.buf.extend_from_slice(piece);
            }
            if end {
                self.end_line(line);
                chunk = &chunk[piece.len() + 1..];
            } else {
                chunk = &[];
            }
        }
    }

    fn end_line(&mut self, line: &mut dyn FnMut(&[u8])) {
        if self.overlong {
            // An empty line keeps the parser's line numbers in step with the log's.
            self.overlong_lines += 1;
            line(b"");
        } else {
            line(&self.buf);
        }
        self.buf.clear();
        self.overlong = false;
    }

    fn finish(&mut self, line: &mut dyn FnMut(&[u8])) {
        if !self.buf.is_empty() || self.overlong {
            self.end_line(line);
        }
    }
}

/// A stop in progress: why, and when the group gets SIGKILL.
struct Stopping {
    kill_at: Instant,
}

/// SIGINT, SIGTERM and SIGHUP caught for the length of a run. Dropping it restores their
/// default action (terminate): signal-hook never uninstalls a handler, so a flag arms its
/// emulation of the default instead, and a later Ctrl-C still ends the process.
struct Forwarding {
    signals: signal_hook::iterator::Signals,
    default: Arc<AtomicBool>,
}

impl Forwarding {
    fn new() -> io::Result<Forwarding> {
        let default = Arc::new(AtomicBool::new(false));
        // The conditional default goes first, so that once armed it acts before anything else.
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal_hook::flag::register_conditional_default(sig, Arc::clone(&default))?;
        }
        let signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        Ok(Forwarding { signals, default })
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        self.signals.handle().close();
        self.default.store(true, Ordering::SeqCst);
    }
}

/// Runs the benchmark, writing its raw output to `log`. The log stays the caller's: a full
/// disk can be tested with `/dev/full`.
pub fn run_into(
    opts: &RunOptions,
    log: &mut dyn Write,
    on_row: &mut dyn FnMut(u64, Option<f64>),
) -> io::Result<RunResult> {
    let mut fwd = Forwarding::new()?;
    run_inner(opts, log, on_row, &mut fwd)
}

/// The program, looked up on PATH, and its arguments.
fn resolve(opts: &RunOptions) -> io::Result<(PathBuf, &[String])> {
    let (program, args) = opts
        .command
        .split_first()
        .ok_or_else(|| io::Error::other("no command given after --"))?;
    let path = which::which(program)
        .map_err(|_| io::Error::new(io::ErrorKind::NotFound, format!("{program}: not found on PATH")))?;
    Ok((path, args))
}

fn run_inner(
    opts: &RunOptions,
    log: &mut dyn Write,
    on_row: &mut dyn FnMut(u64, Option<f64>),
    fwd: &mut Forwarding,
) -> io::Result<RunResult> {
    let (path, args) = resolve(opts)?;
    // Caught before the spawn (by `Forwarding`), so a signal that arrives meanwhile is
    // forwarded too.
    let signals = &mut fwd.signals;
    let mut child = GroupChild::spawn(
        Command::new(&path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    )
    .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", path.display())))?;
    let stdout = child
        .child_mut()
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no pipe from the benchmark"))?;
    let chunks = spawn_reader(stdout);

    let start = Instant::now();
    let deadline = opts.timeout.map(|t| start + t);
    let mut parser = Parser::new(&opts.log.display().to_string());
    let mut lines = Lines::new(opts.max_line.max(1));
    let mut rows = 0usize;
    let mut bytes = 0u64;
    let mut ended = Ended::Exited;
    let mut stopping: Option<Stopping> = None;
    let mut log_ok = true;
    let mut eof = false;
    let mut eof_by: Option<Instant> = None;

    let mut feed = |parser: &mut Parser, line: &[u8], rows: &mut usize| {
        parser.feed(&String::from_utf8_lossy(line));
        let now = parser.rows_so_far();
        if now > *rows {
            *rows = now;
            if let Some((size, busbw)) = parser.last_row() {
                on_row(size, busbw);
            }
        }
    };

    loop {
        // Signals first: forward the first, kill at the second.
        for sig in signals.pending() {
            if stopping.is_some() {
                let _ = child.signal(Signal::KILL);
            } else {
                if ended == Ended::Exited {
                    ended = Ended::Interrupted(sig);
                }
                stop(&child, forwarded(sig), opts.grace, &mut stopping);
            }
        }
        if let Some(d) = deadline
            && stopping.is_none()
            && Instant::now() >= d
        {
            ended = Ended::TimedOut(opts.timeout.unwrap_or_default());
            stop(&child, Signal::TERM, opts.grace, &mut stopping);
        }
        if let Some(s) = &stopping
            && Instant::now() >= s.kill_at
        {
            let _ = child.signal(Signal::KILL);
        }
        if child.leader_exited()? {
            // Reaping also kills what is left of the group, which closes the pipe.
            child.finish()?;
            if eof {
                break;
            }
            let by = *eof_by.get_or_insert_with(|| Instant::now() + EOF_GRACE);
            if Instant::now() >= by {
                break;
            }
        }
        if eof {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match chunks.recv_timeout(Duration::from_millis(50)) {
            Ok(Ok(chunk)) => {
                bytes += chunk.len() as u64;
                if log_ok && let Err(e) = log.write_all(&chunk) {
                    log_ok = false;
                    if stopping.is_none() {
                        ended = Ended::LogWriteFailed(e.to_string());
                        stop(&child, Signal::TERM, opts.grace, &mut stopping);
                    }
                }
                lines.push(&chunk, &mut |l| feed(&mut parser, l, &mut rows));
            }
            Ok(Err(e)) => {
                eof = true;
                if stopping.is_none() {
                    ended = Ended::ReadFailed(e.to_string());
                    stop(&child, Signal::TERM, opts.grace, &mut stopping);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => eof = true,
        }
    }
    let status = child.finish()?;
    lines.finish(&mut |l| feed(&mut parser, l, &mut rows));
    if log_ok
        && let Err(e) = log.flush()
        && matches!(ended, Ended::Exited)
    {
        ended = Ended::LogWriteFailed(e.to_string());
    }
    let runs: Vec<Run> = parser.finish();
    let report = (!runs.is_empty()).then(|| {
        let mut report = judge(
            runs,
            &Options {
                targets: opts.targets.clone(),
                collective: None,
                baseline: None,
                tolerance: 0.05,
            },
        );
        // The report says why the run is short, so a JSON consumer need not read stderr.
        if let Some(f) = stop_finding(&ended, &path) {
            report.findings.push(f);
            report.verdict = "fail".into();
        }
        report
    });
    Ok(RunResult {
        program: path,
        ended,
        status: Some(status),
        log: LogState::External,
        bytes,
        overlong_lines: lines.overlong_lines,
        report,
    })
}

/// The finding for a run that nccltune stopped, if it did.
fn stop_finding(ended: &Ended, program: &Path) -> Option<Finding> {
    let subject = program.display().to_string();
    let f = match ended {
        Ended::Exited => return None,
        Ended::Interrupted(sig) => Finding::new(
            BenchCode::RunInterrupted,
            Severity::Error,
            format!(
                "{} stopped the run: the sizes measured before it are judged",
                signal_name(*sig)
            ),
        )
        .fix("rerun to completion for a full sweep"),
        Ended::TimedOut(d) => Finding::new(
            BenchCode::RunTimeout,
            Severity::Error,
            format!("the run did not finish within --timeout {}s", d.as_secs_f64()),
        )
        .fix("raise --timeout, or narrow the sweep (-b/-e) or the iterations (-n)"),
        Ended::LogWriteFailed(e) => Finding::new(
            BenchCode::LogWriteFailed,
            Severity::Error,
            format!("the raw log could not be written ({e}); the run was stopped"),
        )
        .fix("free space where --log points, or point --log elsewhere"),
        Ended::ReadFailed(e) => Finding::new(
            BenchCode::RunFailed,
            Severity::Error,
            format!("the benchmark's output could not be read ({e}); the run was stopped"),
        ),
    };
    Some(f.subject(subject))
}

fn stop(child: &GroupChild, sig: Signal, grace: Duration, stopping: &mut Option<Stopping>) {
    let _ = child.signal(sig);
    *stopping = Some(Stopping {
        kill_at: Instant::now() + grace,
    });
}

/// The signal to pass on for one we received.
fn forwarded(sig: i32) -> Signal {
    match sig {
        SIGINT => Signal::INT,
        SIGHUP => Signal::HUP,
        _ => Signal::TERM,
    }
}

/// Reads the pipe on its own thread into a bounded channel, so the main loop can watch
/// signals and deadlines while the benchmark is silent.
fn spawn_reader(mut stream: impl Read + Send + 'static) -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(Ok(buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], cap: usize) -> (Vec<String>, usize) {
        let mut l = Lines::new(cap);
        let mut out = Vec::new();
        for c in chunks {
            l.push(c, &mut |x| out.push(String::from_utf8_lossy(x).into_owned()));
        }
        l.finish(&mut |x| out.push(String::from_utf8_lossy(x).into_owned()));
        (out, l.overlong_lines)
    }

    #[test]
    fn lines_are_joined_across_chunks_and_overlong_ones_blanked() {
        let (out, long) = split(&[b"ab", b"c\nde", b"\n\nxyz"], 10);
        assert_eq!(
            (out, long),
            (vec!["abc".into(), "de".into(), String::new(), "xyz".into()], 0)
        );
        let (out, long) = split(&[b"0123456789", b"ABC\nok\n"], 10);
        assert_eq!((out, long), (vec![String::new(), "ok".into()], 1));
        let (out, long) = split(&[&[b'x'; 100], &[b'x'; 100]], 10);
        assert_eq!((out, long), (vec![String::new()], 1));
    }

    #[test]
    fn the_line_buffer_never_grows_past_its_cap() {
        let mut l = Lines::new(1000);
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..100 {
            l.push(&chunk, &mut |_| {});
        }
        assert!(l.buf.capacity() <= 64 * 1024, "{}", l.buf.capacity());
        assert!(l.buf.len() <= 1000);
    }

    #[test]
    fn numbered_names_keep_the_extension() {
        assert_eq!(
            numbered(Path::new("dir/nccl-tests.log"), 2),
            PathBuf::from("dir/nccl-tests.2.log")
        );
        assert_eq!(numbered(Path::new("out"), 1), PathBuf::from("out.1"));
    }

    #[test]
    fn persisting_never_replaces_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wanted = dir.path().join("r.log");
        std::fs::write(&wanted, "old").expect("w");
        let (mut f, partial) = create_partial(&wanted).expect("partial");
        f.write_all(b"new").expect("w");
        let got = persist(&partial, &wanted).expect("persist");
        assert_eq!(got, dir.path().join("r.1.log"));
        assert_eq!(std::fs::read_to_string(&wanted).expect("r"), "old");
        assert_eq!(std::fs::read_to_string(&got).expect("r"), "new");
        assert!(!partial.exists());
    }
}
