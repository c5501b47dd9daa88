//! Child processes: `bench run` against a stand-in benchmark (a shell script that prints
//! nccl-tests-shaped lines and sleeps), and `detect` against hung probe wrappers. What is
//! checked is what an operator loses otherwise: a log, a measurement, or a process left
//! running after nccltune is gone.

use nccltune::bench::run::{Ended, RunOptions, run_into};
use rustix::process::{Pid, Signal};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nccltune");

/// A stand-in for all_reduce_perf. `$MARK` tags its output; `$ROWS` rows are printed with
/// `$PAUSE` seconds between them; `$JUNK` bytes follow on one line; then, with `$PIDS` set, it records its own PID and those of
/// two "ranks" (background sleeps) there and waits for them, as `mpirun` waits for its ranks;
/// `$LINGER` seconds of silence precede the footer.
const STANDIN: &str = r##"#!/bin/sh
echo "# nccl-tests version 2.19.6 nccl-headers=22105 nccl-library=22105"
echo "# mark ${MARK:-none}"
echo "# Collective test starting: all_reduce_perf"
echo "#  Rank  0 Group  0 Pid  $$ on host-a device  0 [0000:18:00] NVIDIA H100 80GB HBM3"
echo "#                                                              out-of-place                       in-place          "
echo "#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong "
echo "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)        "
s=1048576
i=1
while [ $i -le ${ROWS:-3} ]; do
  echo "  $s        262144     float     sum      -1     28.00    0.00   ${i}0.00      0     27.86    0.00    0.00      0"
  s=$((s*2)); i=$((i+1))
  [ -n "$PAUSE" ] && sleep "$PAUSE"
done
if [ -n "$JUNK" ]; then head -c "$JUNK" /dev/zero | tr '\0' x; echo; fi
if [ -n "$PIDS" ]; then
  sleep 1000 & echo $! >> "$PIDS"
  sleep 1000 & echo $! >> "$PIDS"
  echo $$ >> "$PIDS"
  wait
fi
[ -n "$LINGER" ] && sleep "$LINGER"
echo "# Out of bounds values : 0 OK"
echo "# Avg bus bandwidth    : 25.0 "
"##;

fn standin(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("all_reduce_standin.sh");
    std::fs::write(&path, STANDIN).expect("write the stand-in");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Running, as opposed to gone or a zombie waiting for its (new) parent to reap it.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn pids_in(file: &Path) -> Vec<u32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_all_gone(pids: &[u32]) {
    // Killed processes whose parent died are reaped by init: give that a moment.
    let end = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| running(p)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<u32> = pids.iter().copied().filter(|&p| running(p)).collect();
    assert!(left.is_empty(), "still running: {left:?}");
}

/// Waits for `child` (killing it after `secs`, which fails the test) and collects its output.
fn finish(mut child: Child, secs: u64) -> Output {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            if let Some(mut s) = child.stdout.take() {
                s.read_to_end(&mut stdout).expect("stdout");
            }
            if let Some(mut s) = child.stderr.take() {
                s.read_to_end(&mut stderr).expect("stderr");
            }
            return Output {
                status,
                stdout,
                stderr,
            };
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nccltune did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn bench_run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let script = standin(dir);
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .args(["bench", "run"])
        .args(args)
        .arg("--")
        .arg(&script)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("spawn nccltune")
}

fn common_fixture(name: &str) -> String {
    super::common::repo()
        .join("fixtures/nccl-tests")
        .join(name)
        .display()
        .to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn two_concurrent_runs_in_one_folder_keep_both_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = bench_run(dir.path(), &[], &[("MARK", "first"), ("PAUSE", "0.3")]);
    let b = bench_run(dir.path(), &[], &[("MARK", "second"), ("PAUSE", "0.3")]);
    let (a, b) = (finish(a, 30), finish(b, 30));
    let mut marks = Vec::new();
    for out in [&a, &b] {
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(text(&out.stdout).contains("4 MiB"), "{}", text(&out.stdout));
        // Each run names its own log, and that log holds its own output whole.
        let saved = err
            .lines()
            .find_map(|l| l.strip_prefix("nccltune: raw output saved to "))
            .and_then(|l| l.split(" (").next())
            .unwrap_or_else(|| panic!("no log named: {err}"));
        let log = std::fs::read_to_string(dir.path().join(saved)).expect("the named log");
        let mark = log
            .lines()
            .find_map(|l| l.strip_prefix("# mark "))
            .expect("a marked log")
            .to_string();
        assert_eq!(log.matches("# mark ").count(), 1, "{log}");
        assert!(log.contains("# Avg bus bandwidth"), "{log}");
        marks.push(mark);
    }
    marks.sort();
    assert_eq!(marks, ["first", "second"]);
    assert_eq!(
        files_in(dir.path()),
        ["all_reduce_standin.sh", "nccl-tests.1.log", "nccl-tests.log"]
    );
}

#[test]
fn a_taken_log_name_is_never_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("mine.log"), "keep me").expect("write");
    let out = finish(bench_run(dir.path(), &["--log", "mine.log"], &[]), 30);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mine.log")).expect("r"),
        "keep me"
    );
    let new = std::fs::read_to_string(dir.path().join("mine.1.log")).expect("r");
    assert!(new.contains("all_reduce_perf"));
    assert!(text(&out.stderr).contains("raw output saved to mine.1.log"));
}

fn interrupt(sig: Signal, code: i32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let pids_s = pids.display().to_string();
    let child = bench_run(dir.path(), &[], &[("PIDS", &pids_s)]);
    let nccltune = child.id();
    // The stand-in records its PIDs after printing its rows.
    wait_for("the stand-in's PIDs", 20, || pids_in(&pids).len() == 3);
    let partial = || files_in(dir.path()).into_iter().find(|n| n.ends_with(".partial"));
    wait_for("three rows in the partial log", 20, || {
        partial().is_some_and(|p| {
            std::fs::read_to_string(dir.path().join(p)).is_ok_and(|t| t.contains("  4194304 "))
        })
    });
    let pid = Pid::from_raw(i32::try_from(nccltune).expect("pid")).expect("pid");
    rustix::process::kill_process(pid, sig).expect("signal nccltune");
    let out = finish(child, 30);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.contains("interrupted by SIG"), "{err}");
    assert!(
        text(&out.stdout).contains("run-interrupted"),
        "{}",
        text(&out.stdout)
    );
    // The results so far are printed...
    let stdout = text(&out.stdout);
    for size in ["1 MiB", "2 MiB", "4 MiB"] {
        assert!(stdout.contains(size), "{size} missing: {stdout}");
    }
    // ...the log is finished under its final name, nothing left as .partial...
    assert_eq!(
        files_in(dir.path()),
        ["all_reduce_standin.sh", "nccl-tests.log", "pids"]
    );
    let log = std::fs::read_to_string(dir.path().join("nccl-tests.log")).expect("log");
    assert!(log.starts_with("# nccl-tests version") && log.contains("  4194304 "));
    // ...and neither the stand-in nor its ranks outlive nccltune.
    assert_all_gone(&pids_in(&pids));
}

#[test]
fn sigterm_leaves_no_orphan_benchmark_and_a_complete_log() {
    interrupt(Signal::TERM, 143);
}

#[test]
fn sigint_leaves_no_orphan_benchmark_and_a_complete_log() {
    interrupt(Signal::INT, 130);
}

#[test]
fn sighup_leaves_no_orphan_benchmark_and_a_complete_log() {
    interrupt(Signal::HUP, 129);
}

#[test]
fn the_timeout_bounds_the_whole_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let pids_s = pids.display().to_string();
    let start = Instant::now();
    let out = finish(
        bench_run(
            dir.path(),
            &["--timeout", "1.5", "--format", "json"],
            &[("PIDS", &pids_s)],
        ),
        30,
    );
    let err = text(&out.stderr);
    assert!(start.elapsed() < Duration::from_secs(12), "{:?}", start.elapsed());
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--timeout 1.5s reached"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["runs"][0]["rows"].as_array().map(Vec::len), Some(3), "{v}");
    assert_eq!(v["verdict"], "fail");
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(codes.contains(&"run-timeout"), "{codes:?}");
    assert!(dir.path().join("nccl-tests.log").exists());
    assert_all_gone(&pids_in(&pids));
    let out = finish(bench_run(dir.path(), &["--timeout", "0"], &[]), 30);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--timeout 0: expected seconds"));
}

/// Peak resident memory of `pid` so far, from `/proc/PID/status` (VmHWM), in KiB.
fn peak_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn output_without_newlines_keeps_memory_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 50 MB on one line after the rows; then a second of silence, so that the peak is read
    // while nccltune still runs.
    let child = bench_run(dir.path(), &[], &[("JUNK", "50000000"), ("LINGER", "1")]);
    let pid = child.id();
    let mut peak = 0;
    let end = Instant::now() + Duration::from_secs(30);
    while running(pid) && Instant::now() < end {
        peak = peak.max(peak_kib(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = finish(child, 30);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(peak > 0, "no memory figure read");
    assert!(peak < 40 * 1024, "peak RSS {peak} KiB for a 50 MB line");
    let log = std::fs::metadata(dir.path().join("nccl-tests.log")).expect("log");
    assert!(
        log.len() > 50_000_000,
        "the raw bytes reach the log: {}",
        log.len()
    );
    assert!(err.contains("1 line(s) longer than"), "{err}");
    assert!(text(&out.stdout).contains("4 MiB"));
}

#[test]
fn a_full_disk_stops_the_benchmark_and_keeps_the_measurements() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = standin(dir.path());
    // The header and rows arrive in one write (under PIPE_BUF, so in one read): the first
    // failed log write then happens with every row in hand, whatever the machine's load.
    let head = Command::new(&script).output().expect("stand-in");
    let head: String = text(&head.stdout)
        .lines()
        .filter(|l| !l.starts_with("# Out of bounds") && !l.starts_with("# Avg bus"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(head.len() < 4096, "{}", head.len());
    std::fs::write(dir.path().join("head.txt"), head).expect("write");
    let pids = dir.path().join("pids");
    let oneshot = format!(
        "cat {d}/head.txt; sleep 1000 & echo $! >> {p}; echo $$ >> {p}; wait",
        d = dir.path().display(),
        p = pids.display()
    );
    let mut opts = RunOptions::new(
        vec!["sh".into(), "-c".into(), oneshot],
        dir.path().join("unused.log"),
    );
    opts.grace = Duration::from_secs(5);
    let mut full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let mut sizes = Vec::new();
    let start = Instant::now();
    let r = run_into(&opts, &mut full, &mut |size, _| sizes.push(size)).expect("run");
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    assert!(
        matches!(&r.ended, Ended::LogWriteFailed(e) if e.contains("No space")),
        "{:?}",
        r.ended
    );
    assert_eq!(r.exit_code(), 2);
    assert_eq!(sizes, [1_048_576, 2_097_152, 4_194_304]);
    let report = r.report.as_ref().expect("the measured sizes are judged");
    assert_eq!(report.runs[0].sizes.len(), 3);
    assert!(r.messages().iter().any(|m| m.contains("cannot write the log")));
    assert_all_gone(&pids_in(&pids));
}

/// A full file system for real: a 64 KiB tmpfs, where the mount is allowed (root, not in a
/// restricted container); skipped with a note elsewhere.
#[test]
fn a_full_file_system_keeps_the_partial_log_and_prints_the_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("note: cannot mount a tmpfs here; skipping the full file system test");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let pids = dir.path().join("pids");
    let pids_s = pids.display().to_string();
    let log = mnt.join("nccl-tests.log").display().to_string();
    let out = finish(
        bench_run(
            dir.path(),
            &["--log", &log],
            &[("JUNK", "200000"), ("PIDS", &pids_s)],
        ),
        30,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot write the log"), "{err}");
    assert!(err.contains("the raw log is incomplete"), "{err}");
    assert!(text(&out.stdout).contains("4 MiB"), "{}", text(&out.stdout));
    let kept = files_in(&mnt);
    assert!(kept.len() == 1 && kept[0].ends_with(".partial"), "{kept:?}");
    assert_all_gone(&pids_in(&pids));
}

#[test]
fn detect_leaves_no_probe_descendant_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    let pids = dir.path().join("pids");
    // Every program a probe runs becomes a wrapper that starts children and hangs.
    let mut programs: Vec<String> = nccltune::probe::core_probes()
        .into_iter()
        .filter_map(|p| match p.source {
            nccltune::probe::Source::Command { program, .. } => Some(program),
            _ => None,
        })
        .collect();
    let runs = programs.len();
    programs.sort();
    programs.dedup();
    assert!(programs.len() >= 3, "{programs:?}");
    let wrapper = format!(
        "#!/bin/sh\nsleep 1000 & echo $! >> {p}\nsh -c 'sleep 1000' & echo $! >> {p}\necho $$ >> {p}\nwait\n",
        p = pids.display()
    );
    for prog in &programs {
        use std::os::unix::fs::PermissionsExt;
        let path = bin.join(prog);
        std::fs::write(&path, &wrapper).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let start = Instant::now();
    let out = Command::new(BIN)
        .args(["detect", "--timeout", "1"])
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let out = finish(out, 60);
    assert!(out.status.code().is_some());
    assert!(start.elapsed() < Duration::from_secs(20), "{:?}", start.elapsed());
    let all = pids_in(&pids);
    assert_eq!(all.len(), 3 * runs, "every wrapper ran: {all:?}");
    assert_all_gone(&all);
}

#[test]
fn node_flags_apply_only_where_they_mean_something() {
    let out = Command::new(BIN)
        .args(["bench", "plan", "--replay", "/nonexistent"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("--replay"), "{}", text(&out.stderr));
    // `bench` itself reads a node only for --from-node.
    let f = common_fixture("h100-2node-allreduce-ring.txt");
    let out = Command::new(BIN)
        .args(["bench", "--parse", &f, "--replay", "/nonexistent"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("--from-node"), "{}", text(&out.stderr));
    let out = Command::new(BIN)
        .args(["bench", "--parse", &f, "--from-node", "--replay", "/nonexistent"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent"));
    // Where the flag belongs, a missing folder is an error, not an ignored flag.
    let out = Command::new(BIN)
        .args(["detect", "--replay", "/nonexistent"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent"));
}

#[test]
fn a_missing_program_or_log_folder_is_an_error_that_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["bench", "run", "--", "nccltune-no-such-benchmark"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nccltune-no-such-benchmark: not found on PATH"));
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["bench", "run", "--log", "no/such/dir/x.log", "--", "true"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot create a log in no/such/dir"));
    assert!(files_in(dir.path()).is_empty(), "{:?}", files_in(dir.path()));
}

#[test]
fn a_benchmark_that_ignores_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    // Ignored dispositions survive exec, so the "ranks" ignore SIGTERM too.
    let script = format!(
        "trap '' TERM INT HUP; echo '# nccl-tests version 2.19.6'; sleep 1000 & echo $! >> {p}; echo $$ >> {p}; wait; wait",
        p = pids.display()
    );
    let mut opts = RunOptions::new(
        vec!["sh".into(), "-c".into(), script],
        dir.path().join("unused.log"),
    );
    opts.timeout = Some(Duration::from_millis(500));
    opts.grace = Duration::from_millis(300);
    let mut log = Vec::new();
    let start = Instant::now();
    let r = run_into(&opts, &mut log, &mut |_, _| {}).expect("run");
    assert!(start.elapsed() < Duration::from_secs(8), "{:?}", start.elapsed());
    assert_eq!(r.ended, Ended::TimedOut(Duration::from_millis(500)));
    assert_eq!(r.exit_code(), 1);
    assert!(text(&log).starts_with("# nccl-tests version"), "{}", text(&log));
    assert_eq!(pids_in(&pids).len(), 2);
    assert_all_gone(&pids_in(&pids));
}
