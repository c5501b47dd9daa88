//! `SystemRunner`: runs probes on the live node. Programs are resolved on PATH with `which`
//! and spawned directly (never through a shell), with stdout and stderr drained on their own
//! threads so that a chatty child cannot fill a pipe and deadlock. Each probe leads its own
//! process group (`process::GroupChild`): when it exits, or at the deadline, the whole group is
//! killed and the probe reaped, so a wrapper's children never outlive the run. Output beyond a
//! cap is drained and dropped, so memory stays bounded.

use super::process::{GroupChild, Waited};
use super::{ProbeOutput, ProbeSpec, ProbeStatus, Runner, Source};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most bytes kept per stream of one probe.
pub const OUTPUT_CAP_BYTES: usize = 16 * 1024 * 1024;

/// How long to wait for the pipe readers after the probe's group is gone: a descendant that
/// left the group (`setsid`) and inherited the pipe could otherwise keep us waiting forever.
const READER_GRACE: Duration = Duration::from_millis(300);

/// Runs probes against the live system.
#[derive(Debug, Clone)]
pub struct SystemRunner {
    /// Deadline per probe.
    pub timeout: Duration,
    /// Bytes kept per stream.
    pub cap: usize,
}

impl SystemRunner {
    pub fn new(timeout: Duration) -> Self {
        SystemRunner {
            timeout,
            cap: OUTPUT_CAP_BYTES,
        }
    }
}

impl Runner for SystemRunner {
    fn run(&self, spec: &ProbeSpec) -> ProbeOutput {
        let start = Instant::now();
        let mut out = match &spec.source {
            Source::Command { program, args } => self.run_command(program, args),
            Source::File(path) => read_file(path, self.cap),
            Source::RdmaPorts(root) => read_rdma_ports(root),
            Source::NetInterfaces(root) => read_net_interfaces(root),
            Source::LibrarySearch { prefix, dirs } => search_libraries(prefix, dirs),
            Source::NetEcn(root) => read_net_ecn(root),
            Source::PerRdmaNetdev {
                program,
                args,
                rdma_root,
            } => self.run_per_rdma_netdev(program, args, rdma_root),
        };
        out.name = spec.name.to_string();
        out.command = spec.describe();
        out.duration = start.elapsed();
        out
    }
}

fn output(status: ProbeStatus, stdout: Vec<u8>, stderr: Vec<u8>) -> ProbeOutput {
    ProbeOutput {
        name: String::new(),
        command: String::new(),
        status,
        stdout,
        stderr,
        duration: Duration::ZERO,
        truncated: false,
    }
}

/// A stream buffer shared between a reader thread and the runner.
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    truncated: bool,
}

fn spawn_reader(
    mut stream: impl Read + Send + 'static,
    cap: usize,
    done: mpsc::Sender<()>,
) -> Arc<Mutex<Capped>> {
    let buf = Arc::new(Mutex::new(Capped::default()));
    let shared = Arc::clone(&buf);
    std::thread::spawn(move || {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    let Ok(mut b) = shared.lock() else { break };
                    let room = cap.saturating_sub(b.bytes.len());
                    let keep = n.min(room);
                    b.bytes.extend_from_slice(&chunk[..keep]);
                    if keep < n {
                        b.truncated = true;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = done.send(());
    });
    buf
}

fn take(buf: &Arc<Mutex<Capped>>) -> (Vec<u8>, bool) {
    match buf.lock() {
        Ok(mut b) => (std::mem::take(&mut b.bytes), b.truncated),
        Err(_) => (Vec::new(), true),
    }
}

impl SystemRunner {
    fn run_command(&self, program: &str, args: &[String]) -> ProbeOutput {
        let Ok(path) = which::which(program) else {
            return output(
                ProbeStatus::NotFound,
                Vec::new(),
                format!("{program}: not found on PATH").into_bytes(),
            );
        };
        let spawned = GroupChild::spawn(
            Command::new(&path)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                // Tools print numbers and messages in the locale; the parsers expect C.
                .env("LC_ALL", "C"),
        );
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let status = if e.kind() == std::io::ErrorKind::NotFound {
                    ProbeStatus::NotFound
                } else {
                    ProbeStatus::Exit(126)
                };
                let msg = format!("{}: cannot run: {e}", path.display());
                return output(status, Vec::new(), msg.into_bytes());
            }
        };
        let (done_tx, done_rx) = mpsc::channel();
        let mut readers = Vec::new();
        if let Some(s) = child.child_mut().stdout.take() {
            readers.push(spawn_reader(s, self.cap, done_tx.clone()));
        }
        if let Some(s) = child.child_mut().stderr.take() {
            readers.push(spawn_reader(s, self.cap, done_tx.clone()));
        }
        drop(done_tx);

        // The probe's whole process group is killed when the leader exits or at the deadline,
        // whichever comes first: a hung wrapper's children must not outlive `detect`.
        let status = match child.wait_until(Instant::now() + self.timeout) {
            Ok(Waited::Exited(exit)) => exit_status(exit),
            Ok(Waited::Deadline(_)) => ProbeStatus::Timeout,
            Err(e) => {
                drop(child);
                return output(ProbeStatus::Exit(-1), Vec::new(), e.to_string().into_bytes());
            }
        };
        let grace_end = Instant::now() + READER_GRACE;
        for _ in 0..readers.len() {
            let left = grace_end.saturating_duration_since(Instant::now());
            if done_rx.recv_timeout(left).is_err() {
                break;
            }
        }
        let (stdout, t1) = readers.first().map(take).unwrap_or_default();
        let (stderr, t2) = readers.get(1).map(take).unwrap_or_default();
        let mut out = output(status, stdout, stderr);
        out.truncated = t1 || t2;
        out
    }
}

fn exit_status(exit: std::process::ExitStatus) -> ProbeStatus {
    if let Some(0) = exit.code() {
        return ProbeStatus::Ok;
    }
    if let Some(code) = exit.code() {
        return ProbeStatus::Exit(code);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = exit.signal() {
            return ProbeStatus::Exit(128 + sig);
        }
    }
    ProbeStatus::Exit(-1)
}

fn read_file(path: &Path, cap: usize) -> ProbeOutput {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return output(ProbeStatus::NotFound, Vec::new(), Vec::new());
        }
        Err(e) => {
            let msg = format!("{}: {e}", path.display());
            return output(ProbeStatus::Exit(1), Vec::new(), msg.into_bytes());
        }
    };
    let mut bytes = Vec::new();
    // Read one byte past the cap to learn whether anything was cut.
    match file.take(cap as u64 + 1).read_to_end(&mut bytes) {
        Ok(_) => {
            let truncated = bytes.len() > cap;
            bytes.truncate(cap);
            let mut out = output(ProbeStatus::Ok, bytes, Vec::new());
            out.truncated = truncated;
            out
        }
        Err(e) => {
            let msg = format!("{}: {e}", path.display());
            output(ProbeStatus::Exit(1), Vec::new(), msg.into_bytes())
        }
    }
}

fn sorted_entries(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // Natural order, so mlx5_10 sorts after mlx5_9 and port 10 after port 9.
    names.sort_by_key(|n| natural_key(n));
    Ok(names)
}

fn natural_key(s: &str) -> (String, u64, String) {
    let digits_at = s.rfind(|c: char| !c.is_ascii_digit()).map_or(0, |i| i + 1);
    let (head, tail) = s.split_at(digits_at);
    (head.to_string(), tail.parse().unwrap_or(0), s.to_string())
}

const PORT_ATTRS: [&str; 4] = ["state", "phys_state", "rate", "link_layer"];

/// GID table entries read per RoCE port: enough for the default and one address per family.
const GID_ENTRIES: u32 = 16;

fn read_net_interfaces(root: &Path) -> ProbeOutput {
    let names = match list_root(root) {
        Ok(v) => v,
        Err(out) => return *out,
    };
    let mut text = String::new();
    for name in names {
        let dir = root.join(&name);
        for attr in ["operstate", "speed", "type"] {
            // `speed` fails to read on interfaces that are down; skip what cannot be read.
            if let Ok(v) = std::fs::read_to_string(dir.join(attr)) {
                text.push_str(&format!("{}:{}\n", dir.join(attr).display(), v.trim()));
            }
        }
        if dir.join("device").exists() {
            text.push_str(&format!("{}:present\n", dir.join("device").display()));
        }
        if let Some(d) = driver_name(&dir.join("device")) {
            text.push_str(&format!("{}:{d}\n", dir.join("device").join("driver").display()));
        }
    }
    output(ProbeStatus::Ok, text.into_bytes(), Vec::new())
}

/// The kernel driver bound to a device (`<device>/driver` links to `.../drivers/<name>`):
/// `gve` (Google's virtual NIC), `efa`, `mlx5_core`.
fn driver_name(device: &Path) -> Option<String> {
    let target = std::fs::read_link(device.join("driver")).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// The entries of a sysfs root a probe walks: an absent root is `not-found` (no such device on
/// the node, which is a fact); an unreadable one is a failure naming the path.
fn list_root(root: &Path) -> Result<Vec<String>, Box<ProbeOutput>> {
    match sorted_entries(root) {
        Ok(v) => Ok(v),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Box::new(output(ProbeStatus::NotFound, Vec::new(), Vec::new())))
        }
        Err(e) => {
            let msg = format!("{}: {e}", root.display());
            Err(Box::new(output(
                ProbeStatus::Exit(1),
                Vec::new(),
                msg.into_bytes(),
            )))
        }
    }
}

fn read_rdma_ports(root: &Path) -> ProbeOutput {
    let devices = match list_root(root) {
        Ok(v) => v,
        Err(out) => return *out,
    };
    let mut text = String::new();
    let mut errors = String::new();
    for dev in devices {
        let ports_dir = root.join(&dev).join("ports");
        for port in sorted_entries(&ports_dir).unwrap_or_default() {
            for attr in PORT_ATTRS {
                let path = ports_dir.join(&port).join(attr);
                match std::fs::read_to_string(&path) {
                    Ok(v) => {
                        let v = v.lines().next().unwrap_or("").trim_end();
                        text.push_str(&format!("{}:{v}\n", path.display()));
                    }
                    Err(e) => errors.push_str(&format!("{}: {e}\n", path.display())),
                }
            }
        }
        // RoCE ports: the first GID entries with their types, from which the RoCE v2 IPv4 GID
        // index is found (NCCL before 2.21 does not pick it itself; NCCL docs, Environment Variables, NCCL_IB_GID_INDEX).
        for port in sorted_entries(&ports_dir).unwrap_or_default() {
            let p = ports_dir.join(&port);
            let ethernet =
                std::fs::read_to_string(p.join("link_layer")).is_ok_and(|l| l.trim() == "Ethernet");
            if !ethernet {
                continue;
            }
            for idx in 0..GID_ENTRIES {
                let ty = p.join("gid_attrs").join("types").join(idx.to_string());
                let gid = p.join("gids").join(idx.to_string());
                // Unused entries fail to read (EINVAL); that is expected, not an error.
                if let (Ok(t), Ok(g)) = (std::fs::read_to_string(&ty), std::fs::read_to_string(&gid)) {
                    text.push_str(&format!("{}:{}\n", ty.display(), t.trim()));
                    text.push_str(&format!("{}:{}\n", gid.display(), g.trim()));
                }
            }
        }
        if let Some(d) = driver_name(&root.join(&dev).join("device")) {
            text.push_str(&format!(
                "{}:{d}\n",
                root.join(&dev).join("device").join("driver").display()
            ));
        }
        let net_dir = root.join(&dev).join("device").join("net");
        for netdev in sorted_entries(&net_dir).unwrap_or_default() {
            text.push_str(&format!("{}:{netdev}\n", net_dir.display()));
        }
    }
    output(ProbeStatus::Ok, text.into_bytes(), errors.into_bytes())
}

/// The library folders of the Python environments a job may run in: `$VIRTUAL_ENV`,
/// `$CONDA_PREFIX`, the prefix of every `PATH` entry ending in `bin`, and the system
/// interpreters' (`/usr/local`, `/usr`): their `lib` and, per `python3.*`, the NCCL wheel's
/// `nvidia/nccl/lib` and PyTorch's `torch/lib` in `site-packages` or `dist-packages`.
fn python_library_dirs() -> Vec<(PathBuf, bool)> {
    let mut prefixes: Vec<PathBuf> = ["VIRTUAL_ENV", "CONDA_PREFIX"]
        .iter()
        .filter_map(std::env::var_os)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        prefixes.extend(
            std::env::split_paths(&path)
                .filter(|p| p.ends_with("bin"))
                .filter_map(|p| p.parent().map(Path::to_path_buf)),
        );
    }
    prefixes.extend([PathBuf::from("/usr/local"), PathBuf::from("/usr")]);
    let mut dirs: Vec<(PathBuf, bool)> = Vec::new();
    for prefix in prefixes {
        let env_lib = prefix != Path::new("/usr") && prefix != Path::new("/usr/local");
        let lib = prefix.join("lib");
        for py in sorted_entries(&lib).unwrap_or_default() {
            if !py.starts_with("python3") {
                continue;
            }
            for pkgs in ["site-packages", "dist-packages"] {
                let base = lib.join(&py).join(pkgs);
                dirs.push((base.join("nvidia/nccl/lib"), false));
                dirs.push((base.join("torch/lib"), false));
            }
        }
        dirs.push((lib, env_lib));
    }
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|(d, _)| seen.insert(d.clone()));
    dirs
}

/// The version of a library whose file name does not carry one: from the wheel metadata beside
/// `site-packages/nvidia/nccl/lib`, else from the version string NCCL embeds (read in chunks,
/// at most 2 GiB, each file once).
fn library_version(
    path: &Path,
    scanned: &mut Vec<(PathBuf, Option<String>)>,
) -> Option<(String, &'static str)> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    if crate::parse::nccl_library::parse(&name).is_some() {
        return None;
    }
    let lib_dir = path.parent()?;
    if lib_dir.ends_with("nvidia/nccl/lib")
        && let Some(pkgs) = lib_dir.parent().and_then(Path::parent).and_then(Path::parent)
    {
        let names = sorted_entries(pkgs).unwrap_or_default();
        if let Some(v) = crate::parse::nccl_library::wheel_version(names.iter().map(String::as_str)) {
            return Some((v, "wheel metadata"));
        }
    }
    let real = std::fs::canonicalize(path).ok()?;
    // A link to `libnccl.so.X.Y.Z` says it by its target's name: no need to read the library.
    let real_name = real.file_name()?.to_string_lossy().into_owned();
    if let Some(v) = crate::parse::nccl_library::parse(&real_name) {
        return Some((v, "link target"));
    }
    if let Some((_, v)) = scanned.iter().find(|(p, _)| *p == real) {
        return v.clone().map(|v| (v, "embedded version string"));
    }
    let v = std::fs::File::open(&real)
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))
        .and_then(|f| {
            crate::parse::nccl_library::embedded_version_reader(f, 2 << 30)
                .ok()
                .flatten()
        });
    scanned.push((real, v.clone()));
    v.map(|v| (v, "embedded version string"))
}

/// Most netdevs `PerRdmaNetdev` runs its program for: a node has at most a few dozen RDMA
/// ports; a larger count is not a node we understand, and the list is cut (and flagged).
const MAX_NETDEVS: usize = 64;

impl SystemRunner {
    /// Runs `program args <netdev>` for each RDMA netdev under one deadline for them all.
    fn run_per_rdma_netdev(&self, program: &str, args: &[String], rdma_root: &Path) -> ProbeOutput {
        if which::which(program).is_err() {
            return output(
                ProbeStatus::NotFound,
                Vec::new(),
                format!("{program}: not found on PATH").into_bytes(),
            );
        }
        let mut netdevs: Vec<String> = Vec::new();
        for dev in sorted_entries(rdma_root).unwrap_or_default() {
            for n in sorted_entries(&rdma_root.join(&dev).join("device").join("net")).unwrap_or_default() {
                if !netdevs.contains(&n) {
                    netdevs.push(n);
                }
            }
        }
        let truncated = netdevs.len() > MAX_NETDEVS;
        netdevs.truncate(MAX_NETDEVS);
        let deadline = Instant::now() + self.timeout;
        let mut status = ProbeStatus::Ok;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        for n in netdevs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                status = ProbeStatus::Timeout;
                break;
            }
            let one = SystemRunner {
                timeout: left,
                cap: self.cap.saturating_sub(stdout.len()),
            };
            let mut a = args.to_vec();
            a.push(n.clone());
            let out = one.run_command(program, &a);
            stdout.extend_from_slice(format!("==> {n} <==\n").as_bytes());
            stdout.extend_from_slice(&out.stdout);
            if !out.stdout.ends_with(b"\n") && !out.stdout.is_empty() {
                stdout.push(b'\n');
            }
            if !out.stderr.is_empty() && stderr.len() < self.cap {
                stderr.extend_from_slice(format!("{n}: ").as_bytes());
                stderr.extend_from_slice(&out.stderr);
            }
            if status.is_ok() && !out.status.is_ok() {
                status = out.status.clone();
            }
            if out.status == ProbeStatus::Timeout {
                break;
            }
        }
        let mut out = output(status, stdout, stderr);
        out.truncated = truncated;
        out
    }
}

fn read_net_ecn(root: &Path) -> ProbeOutput {
    let names = match list_root(root) {
        Ok(v) => v,
        Err(out) => return *out,
    };
    let mut text = String::new();
    for name in names {
        for side in ["roce_np", "roce_rp"] {
            for prio in 0..8 {
                let path = root
                    .join(&name)
                    .join("ecn")
                    .join(side)
                    .join("enable")
                    .join(prio.to_string());
                if let Ok(v) = std::fs::read_to_string(&path) {
                    text.push_str(&format!("{}:{}\n", path.display(), v.trim()));
                }
            }
        }
    }
    output(ProbeStatus::Ok, text.into_bytes(), Vec::new())
}

/// Where a library folder came from, the probe's fourth column: `LD_LIBRARY_PATH`, `python`
/// (a `site-packages`/`dist-packages` folder: reached through a library's RPATH, never by
/// the loader's own search), `env` (the `lib` folder of a Python environment other than
/// `/usr` and `/usr/local`: searched only through `LD_LIBRARY_PATH` or an RPATH) or `system`.
fn library_origin(dir: &Path, from_ld_path: bool) -> &'static str {
    if from_ld_path {
        return "LD_LIBRARY_PATH";
    }
    let s = dir.to_string_lossy();
    if s.contains("/site-packages/") || s.contains("/dist-packages/") {
        "python"
    } else {
        "system"
    }
}

fn search_libraries(prefix: &str, dirs: &[PathBuf]) -> ProbeOutput {
    // (folder, origin)
    let mut all: Vec<(PathBuf, &'static str)> = Vec::new();
    if let Some(ld) = std::env::var_os("LD_LIBRARY_PATH") {
        all.extend(
            std::env::split_paths(&ld)
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| (p, "LD_LIBRARY_PATH")),
        );
    }
    let system: Vec<&PathBuf> = dirs.iter().collect();
    for (dir, env_lib) in python_library_dirs() {
        let origin = if env_lib && !system.contains(&&dir) {
            "env"
        } else {
            library_origin(&dir, false)
        };
        all.push((dir, origin));
    }
    all.extend(dirs.iter().map(|d| (d.clone(), library_origin(d, false))));
    let mut found: Vec<(String, &'static str)> = Vec::new();
    for (dir, origin) in all {
        for name in sorted_entries(&dir).unwrap_or_default() {
            if name.starts_with(prefix) {
                let path = dir.join(&name).display().to_string();
                if !found.iter().any(|(p, _)| *p == path) {
                    found.push((path, origin));
                }
            }
        }
    }
    if found.is_empty() {
        return output(ProbeStatus::NotFound, Vec::new(), Vec::new());
    }
    // Only NCCL itself carries a version to look for; plugins are listed by path.
    let versioned = prefix == "libnccl.so";
    let mut scanned: Vec<(PathBuf, Option<String>)> = Vec::new();
    let text: String = found
        .iter()
        .map(|(p, origin)| {
            let v = if versioned {
                library_version(Path::new(p), &mut scanned)
            } else {
                None
            };
            match v {
                Some((v, how)) => format!("{p}\t{v}\t{how}\t{origin}\n"),
                None => format!("{p}\t\t\t{origin}\n"),
            }
        })
        .collect();
    output(ProbeStatus::Ok, text.into_bytes(), Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(program: &str, args: &[&str]) -> ProbeSpec {
        ProbeSpec::command("t", program, args, "test")
    }

    #[test]
    fn a_missing_program_is_not_found_without_spawning() {
        let r = SystemRunner::new(Duration::from_secs(5));
        let out = r.run(&cmd("nccltune-no-such-program-xyz", &[]));
        assert_eq!(out.status, ProbeStatus::NotFound);
        assert!(out.stderr_text().contains("not found on PATH"));
    }

    #[test]
    fn a_non_zero_exit_keeps_its_code_and_stderr() {
        let r = SystemRunner::new(Duration::from_secs(5));
        let out = r.run(&cmd("sh", &["-c", "echo partial; echo broken >&2; exit 3"]));
        assert_eq!(out.status, ProbeStatus::Exit(3));
        assert_eq!(out.text(), "partial\n");
        assert_eq!(out.stderr_text(), "broken\n");
    }

    #[test]
    fn a_hung_program_is_killed_at_the_deadline() {
        let r = SystemRunner::new(Duration::from_millis(200));
        let start = Instant::now();
        let out = r.run(&cmd("sleep", &["30"]));
        assert_eq!(out.status, ProbeStatus::Timeout);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
    }

    fn running(pid: u32) -> bool {
        // A zombie (state Z) no longer runs; only its new parent's reaping is missing.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }

    #[test]
    fn a_hung_wrapper_leaves_no_descendant_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = dir.path().join("pids");
        // A wrapper that starts two children and hangs waiting for them, holding the pipes.
        let script = format!(
            "sleep 1000 & echo $! >> {p}; sh -c 'sleep 1000' & echo $! >> {p}; echo $$ >> {p}; wait",
            p = pids.display()
        );
        let r = SystemRunner::new(Duration::from_millis(500));
        let start = Instant::now();
        let out = r.run(&cmd("sh", &["-c", &script]));
        assert_eq!(out.status, ProbeStatus::Timeout);
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
        let text = std::fs::read_to_string(&pids).expect("pids");
        let all: Vec<u32> = text.lines().filter_map(|l| l.parse().ok()).collect();
        assert_eq!(all.len(), 3, "{text}");
        let end = Instant::now() + Duration::from_secs(5);
        while all.iter().any(|&p| running(p)) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left: Vec<u32> = all.into_iter().filter(|&p| running(p)).collect();
        assert!(
            left.is_empty(),
            "still running after the probe returned: {left:?}"
        );
    }

    #[test]
    fn a_probe_that_exits_leaving_a_child_on_the_pipe_returns_promptly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("pid");
        let script = format!("sleep 1000 & echo $! > {}; echo done", pid_file.display());
        let r = SystemRunner::new(Duration::from_secs(20));
        let start = Instant::now();
        let out = r.run(&cmd("sh", &["-c", &script]));
        assert_eq!(
            (out.status.clone(), out.text()),
            (ProbeStatus::Ok, "done\n".to_string())
        );
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .expect("pid")
            .trim()
            .parse()
            .expect("pid");
        let end = Instant::now() + Duration::from_secs(5);
        while running(pid) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!running(pid), "sleep {pid} outlived its probe");
    }

    #[test]
    fn output_past_the_cap_is_dropped_and_flagged() {
        let r = SystemRunner {
            timeout: Duration::from_secs(20),
            cap: 1000,
        };
        // 1 MB of output: the child must not block on a full pipe, and we keep only 1000 bytes.
        let out = r.run(&cmd("head", &["-c", "1000000", "/dev/zero"]));
        assert_eq!(out.status, ProbeStatus::Ok);
        assert_eq!(out.stdout.len(), 1000);
        assert!(out.truncated);
    }

    #[test]
    fn a_chatty_stderr_does_not_deadlock() {
        let r = SystemRunner::new(Duration::from_secs(20));
        let out = r.run(&cmd("sh", &["-c", "head -c 500000 /dev/zero >&2; echo done"]));
        assert_eq!(out.status, ProbeStatus::Ok);
        assert_eq!(out.text(), "done\n");
        assert_eq!(out.stderr.len(), 500_000);
    }

    #[test]
    fn files_read_and_missing_files_are_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("version");
        std::fs::write(&path, "2.21.5\n").expect("write");
        let r = SystemRunner::new(Duration::from_secs(1));
        let spec = ProbeSpec {
            name: "v",
            source: Source::File(path),
            purpose: "",
        };
        let out = r.run(&spec);
        assert_eq!(
            (out.status.clone(), out.text()),
            (ProbeStatus::Ok, "2.21.5\n".to_string())
        );
        let spec = ProbeSpec {
            name: "v",
            source: Source::File(dir.path().join("nope")),
            purpose: "",
        };
        assert_eq!(r.run(&spec).status, ProbeStatus::NotFound);
    }

    #[test]
    fn ecn_bits_are_listed_in_grep_form() {
        let dir = tempfile::tempdir().expect("tempdir");
        let en = dir.path().join("ens1np0/ecn/roce_np/enable");
        std::fs::create_dir_all(&en).expect("mkdir");
        std::fs::write(en.join("3"), "1\n").expect("w");
        std::fs::create_dir_all(dir.path().join("lo")).expect("mkdir");
        let text = read_net_ecn(dir.path()).text();
        assert!(text.ends_with("ens1np0/ecn/roce_np/enable/3:1\n"), "{text}");
        assert_eq!(text.lines().count(), 1);
        assert_eq!(
            read_net_ecn(&dir.path().join("none")).status,
            ProbeStatus::NotFound
        );
    }

    #[test]
    fn a_program_runs_once_per_rdma_netdev_with_separators() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (dev, net) in [
            ("mlx5_0", "ens1np0"),
            ("mlx5_1", "ens2np0"),
            ("mlx5_bond_0", "ens1np0"),
        ] {
            std::fs::create_dir_all(dir.path().join(dev).join("device/net").join(net)).expect("mkdir");
        }
        let r = SystemRunner::new(Duration::from_secs(10));
        let out = r.run_per_rdma_netdev("echo", &["-i".to_string()], dir.path());
        assert_eq!(out.status, ProbeStatus::Ok);
        assert_eq!(
            out.text(),
            "==> ens1np0 <==\n-i ens1np0\n==> ens2np0 <==\n-i ens2np0\n"
        );
        let out = r.run_per_rdma_netdev("nccltune-no-such-xyz", &[], dir.path());
        assert_eq!(out.status, ProbeStatus::NotFound);
    }

    #[test]
    fn per_netdev_runs_share_one_deadline() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (dev, net) in [("mlx5_0", "a0"), ("mlx5_1", "a1"), ("mlx5_2", "a2")] {
            std::fs::create_dir_all(dir.path().join(dev).join("device/net").join(net)).expect("mkdir");
        }
        let r = SystemRunner::new(Duration::from_millis(600));
        let start = Instant::now();
        // `sleep 0.4 a0` would fail on the argument; `sh -c 'sleep 0.4' a0` takes it as $0.
        let out = r.run_per_rdma_netdev("sh", &["-c".to_string(), "sleep 0.4".to_string()], dir.path());
        assert_eq!(out.status, ProbeStatus::Timeout);
        assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    }

    #[test]
    fn rdma_ports_are_listed_in_grep_form_in_natural_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        for dev in ["mlx5_10", "mlx5_9"] {
            let port = dir.path().join(dev).join("ports").join("1");
            std::fs::create_dir_all(&port).expect("mkdir");
            std::fs::write(port.join("state"), "4: ACTIVE\n").expect("w");
            std::fs::write(port.join("phys_state"), "5: LinkUp\n").expect("w");
            std::fs::write(port.join("rate"), "400 Gb/sec (4X NDR)\n").expect("w");
            std::fs::write(port.join("link_layer"), "InfiniBand\n").expect("w");
        }
        std::fs::create_dir_all(dir.path().join("mlx5_9/device/net/ibp1s0")).expect("mkdir");
        // `device/driver` is a link to the driver's folder; its name is the driver.
        std::fs::create_dir_all(dir.path().join("drivers/mlx5_core")).expect("mkdir");
        std::os::unix::fs::symlink(
            dir.path().join("drivers/mlx5_core"),
            dir.path().join("mlx5_9/device/driver"),
        )
        .expect("link");
        let out = read_rdma_ports(dir.path());
        let text = out.text();
        let first = text.lines().next().unwrap_or_default();
        assert!(first.ends_with("mlx5_9/ports/1/state:4: ACTIVE"), "{first}");
        assert!(text.contains("mlx5_9/device/net:ibp1s0\n"));
        assert!(text.contains("mlx5_9/device/driver:mlx5_core\n"), "{text}");
        assert!(text.contains("mlx5_10/ports/1/rate:400 Gb/sec (4X NDR)\n"));
        assert_eq!(
            read_rdma_ports(&dir.path().join("none")).status,
            ProbeStatus::NotFound
        );
    }
}
