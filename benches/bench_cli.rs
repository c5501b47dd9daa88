//! Benchmark: `nccltune bench --parse` end to end, per output format, on two inputs this
//! benchmark generates under a temporary folder:
//!
//! - (a) a 2-node all_reduce log (`fixtures/nccl-tests/h100-2node-allreduce-ring.txt`) repeated
//!   to ~100 MB: many runs, many rows;
//! - (b) a ~200 MB `mpirun --tag-output` log of a 1,440-rank job: every line prefixed
//!   `[1,r]<stdout>:`, NCCL INFO lines from every rank, and 30 result rows.
//!
//! With `--1g` (or `NCCLTUNE_BENCH_1G=1`), also (a) at ~1 GB, to show that memory does not grow
//! with the input. Each measurement runs the release binary as a child with standard output to
//! `/dev/null` (`COLUMNS=80`); it reports the child's CPU time (user + system, from `/proc/<pid>/stat` once it
//! has exited and before it is reaped) and its peak RSS (`VmHWM` of `/proc/<pid>/status`,
//! polled every millisecond while it runs). Beside each input, the limit: the same file read
//! and tokenised line by line in this process (split on `\n`, UTF-8 checked, whitespace
//! tokens counted), and the ratio of each format's throughput to it. Best of `ROUNDS` rounds,
//! formats interleaved. Run with `cargo bench --bench bench_cli [-- --1g]`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;
const FORMATS: [&str; 4] = ["table", "json", "jsonl", "csv"];

/// Clock ticks per second of `/proc/<pid>/stat` (`sysconf(_SC_CLK_TCK)`; 100 on Linux).
const TICKS: f64 = 100.0;

fn write_a(path: &Path, bytes: u64) -> std::io::Result<(u64, u64)> {
    let one = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/nccl-tests/h100-2node-allreduce-ring.txt"
    ))?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut written = 0;
    let mut runs = 0;
    while written < bytes {
        f.write_all(one.as_bytes())?;
        written += one.len() as u64;
        runs += 1;
    }
    f.flush()?;
    Ok((written, runs))
}

fn write_b(path: &Path, bytes: u64) -> std::io::Result<u64> {
    const RANKS: u32 = 1440;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let written = std::cell::Cell::new(0u64);
    let put = |f: &mut std::io::BufWriter<std::fs::File>, line: String| -> std::io::Result<()> {
        written.set(written.get() + line.len() as u64);
        f.write_all(line.as_bytes())
    };
    let host = |r: u32| format!("node-{:04}", r / 8);
    for l in [
        "# nccl-tests version 2.19.6 nccl-headers=22703 nccl-library=22703",
        "# Collective test starting: all_reduce_perf",
        "# nThread 1 nGpus 1 minBytes 8 maxBytes 8589934592 step: 2(factor) warmup iters: 5 iters: 20 agg iters: 1 validation: 1 graph: 0",
        "#",
        "# Using devices",
    ] {
        put(&mut f, format!("[1,0]<stdout>:{l}\n"))?;
    }
    for r in 0..RANKS {
        put(
            &mut f,
            format!(
                "[1,0]<stdout>:#  Rank {r:4} Group  0 Pid {:6} on {} device  {} [0000:18:00] NVIDIA H100 80GB HBM3\n",
                40000 + r,
                host(r),
                r % 8
            ),
        )?;
    }
    // NCCL INFO lines from every rank until the file is ~200 MB, less the result block.
    let mut i = 0u64;
    let kinds = [
        "Channel 00/32 : 0[0] -> 1[1] via P2P/CUMEM/read",
        "NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_1:1/IB [2]mlx5_2:1/IB [3]mlx5_3:1/IB ; OOB ib0:10.0.0.1<0>",
        "Connected all rings, use ring PXN 0 GDR 1",
        "NCCL_IB_HCA set by environment to mlx5_0,mlx5_1,mlx5_2,mlx5_3.",
        "comm 0x55d1c0a0f0 rank 17 nRanks 1440 nNodes 180 localRanks 8 localRank 1 MNNVL 0",
        "Trees [0] 18/-1/-1->17->16 [1] 18/-1/-1->17->16 [2] 18/-1/-1->17->16",
    ];
    while written.get() + 8192 < bytes {
        let r = (i % u64::from(RANKS)) as u32;
        put(
            &mut f,
            format!(
                "[1,{r}]<stderr>:{}:{}:{} [{}] NCCL INFO {}\n",
                host(r),
                40000 + r,
                41000 + r,
                r % 8,
                kinds[(i % kinds.len() as u64) as usize]
            ),
        )?;
        i += 1;
    }
    put(&mut f, "[1,0]<stdout>:#\n".into())?;
    put(&mut f, "[1,0]<stdout>:#                                                              out-of-place                       in-place\n".into())?;
    put(&mut f, "[1,0]<stdout>:#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong\n".into())?;
    put(&mut f, "[1,0]<stdout>:#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)\n".into())?;
    for e in 3..33u32 {
        let size = 1u64 << e;
        let t = 40.0 + size as f64 / 2.0e5;
        let alg = size as f64 / t / 1e3;
        let bus = alg * 2.0 * 1439.0 / 1440.0;
        put(
            &mut f,
            format!(
                "[1,0]<stdout>:{size:>12}  {:>12}     float     sum      -1  {t:7.2}  {alg:6.2}  {bus:6.2}      0  {t:7.2}  {alg:6.2}  {bus:6.2}      0\n",
                size / 4
            ),
        )?;
    }
    put(&mut f, "[1,0]<stdout>:# Out of bounds values : 0 OK\n".into())?;
    put(&mut f, "[1,0]<stdout>:# Avg bus bandwidth    : 120.5\n".into())?;
    put(&mut f, "[1,0]<stdout>:#\n".into())?;
    put(
        &mut f,
        "[1,0]<stdout>:# Collective test concluded: all_reduce_perf\n".into(),
    )?;
    f.flush()?;
    Ok(written.get())
}

/// The limit: read and tokenise every line. Returns (CPU seconds of this process, tokens).
fn line_scan(path: &Path) -> std::io::Result<(f64, u64)> {
    let cpu0 = self_cpu();
    let mut r = BufReader::with_capacity(1 << 16, std::fs::File::open(path)?);
    let mut tokens = 0u64;
    let mut carry = Vec::new();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let len = buf.len();
        let mut start = 0;
        let mut count = |line: &[u8]| {
            let s = std::str::from_utf8(line).unwrap_or("");
            tokens += s.split_ascii_whitespace().count() as u64;
        };
        while let Some(i) = memchr::memchr(b'\n', &buf[start..]) {
            if carry.is_empty() {
                count(&buf[start..start + i]);
            } else {
                carry.extend_from_slice(&buf[start..start + i]);
                count(&carry);
                carry.clear();
            }
            start += i + 1;
        }
        carry.extend_from_slice(&buf[start..]);
        r.consume(len);
    }
    Ok((self_cpu() - cpu0, tokens))
}

/// The limit as the 285 MB/s figure measured it, the simple way: `BufRead::lines` (a
/// `String` per line, UTF-8 checked) and each line's whitespace tokens collected into a `Vec`.
/// What every line costs a straightforward tokeniser; `line_scan` is the stricter bound of a
/// scan that builds nothing. Both are printed so the ratio is read against either.
fn line_tokenise(path: &Path) -> std::io::Result<(f64, u64)> {
    let cpu0 = self_cpu();
    let r = BufReader::with_capacity(1 << 16, std::fs::File::open(path)?);
    let mut tokens = 0u64;
    for line in r.lines() {
        let line = line?;
        let t: Vec<&str> = line.split_whitespace().collect();
        tokens += t.len() as u64;
    }
    Ok((self_cpu() - cpu0, tokens))
}

/// utime + stime of `/proc/<pid>/stat`, in seconds.
fn stat_cpu(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces: fields are counted after its `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS)
}

/// CPU seconds of this thread, from `/proc/thread-self/schedstat` (nanoseconds; the limit
/// passes run on this one thread), or from the 10 ms ticks of `/proc/self/stat` without it: a
/// 0.1 s pass measured in ticks is off by up to a tenth.
fn self_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| schedstat_s(&s))
        .or_else(|| {
            std::fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|s| stat_cpu(&s))
        })
        .unwrap_or(0.0)
}

/// The first field of a `schedstat` file (time on the CPU, nanoseconds), in seconds.
fn schedstat_s(s: &str) -> Option<f64> {
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

fn threads(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Measure {
    cpu_s: f64,
    wall_s: f64,
    peak_kib: u64,
}

fn run_cli(bin: &Path, input: &Path, format: &str) -> std::io::Result<Measure> {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args(["bench", "--format", format, "--parse"])
        .arg(input)
        .env("COLUMNS", "80")
        .stdout(std::fs::File::create("/dev/null")?)
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let mut peak = 0;
    let mut most_threads = 0;
    loop {
        if let Some(k) = vm_hwm_kib(pid) {
            peak = peak.max(k);
        }
        if let Some(t) = threads(pid) {
            most_threads = most_threads.max(t);
        }
        // Exited (a zombie, not yet reaped): its CPU times are final and still readable.
        let exited = rustix::process::waitid(
            rustix::process::WaitId::Pid(rustix::process::Pid::from_raw(pid as i32).expect("pid")),
            rustix::process::WaitIdOptions::EXITED
                | rustix::process::WaitIdOptions::NOWAIT
                | rustix::process::WaitIdOptions::NOHANG,
        )?
        .is_some();
        if exited {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // A child seen with one thread only: its nanosecond `schedstat` (the main thread is the
    // whole process); otherwise the ticks of `stat`, which sum every thread.
    let precise = (most_threads == 1)
        .then(|| std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok())
        .flatten()
        .and_then(|s| schedstat_s(&s));
    let cpu = precise
        .or_else(|| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| stat_cpu(&s))
        })
        .unwrap_or(0.0);
    let status = child.wait()?;
    let wall = start.elapsed().as_secs_f64();
    if status.code().is_none_or(|c| c > 1) {
        eprintln!("bench --format {format} {}: {status}", input.display());
    }
    Ok(Measure {
        cpu_s: cpu,
        wall_s: wall,
        peak_kib: peak,
    })
}

fn bench_input(bin: &Path, name: &str, input: &Path) -> std::io::Result<()> {
    let mb = std::fs::metadata(input)?.len() as f64 / 1e6;
    let mut limit = f64::INFINITY;
    let mut simple = f64::INFINITY;
    let mut best: Vec<Option<Measure>> = FORMATS.iter().map(|_| None).collect();
    for _ in 0..ROUNDS {
        limit = limit.min(line_scan(input)?.0.max(1e-3));
        simple = simple.min(line_tokenise(input)?.0.max(1e-3));
        for (i, f) in FORMATS.iter().enumerate() {
            let m = run_cli(bin, input, f)?;
            let b = &mut best[i];
            match b {
                Some(prev) => {
                    prev.cpu_s = prev.cpu_s.min(m.cpu_s);
                    prev.wall_s = prev.wall_s.min(m.wall_s);
                    prev.peak_kib = prev.peak_kib.max(m.peak_kib);
                }
                None => *b = Some(m),
            }
        }
    }
    let limit_mbs = mb / limit;
    let simple_mbs = mb / simple;
    println!(
        "\n({name}) {mb:.0} MB; line scan (read + tokenise every line, nothing built): {limit:.2} CPU s = {limit_mbs:.0} MB/s; lines() + tokens collected: {simple:.2} CPU s = {simple_mbs:.0} MB/s"
    );
    println!(
        "| format | CPU s | MB/s (CPU) | wall s | ratio to line scan | ratio to lines() + tokens | peak RSS |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (f, m) in FORMATS.iter().zip(&best) {
        let Some(m) = m else { continue };
        let mbs = mb / m.cpu_s.max(1e-3);
        println!(
            "| {f} | {:.2} | {mbs:.0} | {:.2} | {:.0}% | {:.0}% | {:.1} MiB |",
            m.cpu_s,
            m.wall_s,
            100.0 * mbs / limit_mbs,
            100.0 * mbs / simple_mbs,
            m.peak_kib as f64 / 1024.0
        );
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let big = std::env::args().any(|a| a == "--1g")
        || std::env::var_os("NCCLTUNE_BENCH_1G").is_some_and(|v| v == "1");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_nccltune"));
    let dir = tempfile::tempdir()?;
    println!("binary: {}", bin.display());
    let a = dir.path().join("a-2node-allreduce-100mb.txt");
    let (bytes, runs) = write_a(&a, 100_000_000)?;
    println!("(a) {} MB, {runs} runs", bytes / 1_000_000);
    bench_input(&bin, "a", &a)?;
    std::fs::remove_file(&a)?;
    let b = dir.path().join("b-tagged-info-200mb.txt");
    let bytes = write_b(&b, 200_000_000)?;
    println!("\n(b) {} MB, 30 result rows", bytes / 1_000_000);
    bench_input(&bin, "b", &b)?;
    std::fs::remove_file(&b)?;
    if big {
        let a = dir.path().join("a-2node-allreduce-1gb.txt");
        let (bytes, runs) = write_a(&a, 1_000_000_000)?;
        println!("\n(a, 1 GB) {} MB, {runs} runs", bytes / 1_000_000);
        bench_input(&bin, "a, 1 GB", &a)?;
    }
    Ok(())
}
