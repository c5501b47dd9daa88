//! Hostile and broken input through the real binary: captures whose host name, versions and
//! device names carry newlines, shell syntax and terminal escape sequences; `-o` pointed at
//! devices, FIFOs and directories; capture folders with symlinks and FIFOs; endless and
//! oversized input files. Each case asserts what the consumer (bash, NCCL's nccl.conf reader,
//! a terminal) would see.

use super::common::{fixture, nccltune};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A copy of a bundled capture in a fresh folder, with `edits` (file name, content) applied.
fn capture_with(edits: &[(&str, &[u8])]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("cap");
    std::fs::create_dir(&dir).expect("mkdir");
    for e in std::fs::read_dir(fixture("h100-8gpu-ndr400")).expect("fixture") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), dir.join(e.file_name())).expect("copy");
    }
    for (name, content) in edits {
        std::fs::write(dir.join(name), content).expect("edit");
    }
    (tmp, dir)
}

fn mkfifo(p: &Path) {
    assert!(Command::new("mkfifo").arg(p).status().expect("mkfifo").success());
}

const EVIL_HOST: &[u8] = b"evil\ntouch pwn;#";
const EVIL_VERSION: &str = "2.21.5\ntouch x;#";

/// The settings (name → value) of a configure run, from its JSON report.
fn settings_json(dir: &Path, extra: &[&str]) -> BTreeMap<String, String> {
    let out = nccltune()
        .args(["configure", "--nodes", "2", "--format", "json", "--replay"])
        .arg(dir)
        .args(extra)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["settings"]
        .as_array()
        .expect("settings")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").to_string(),
                s["value"].as_str().expect("value").to_string(),
            )
        })
        .collect()
}

#[test]
fn sourcing_configure_output_from_a_hostile_capture_runs_nothing_and_yields_the_values() {
    // A CA name with shell syntax flows into NCCL_IB_HCA; the host name and version into the
    // header comment.
    let ibstat = std::fs::read_to_string(fixture("h100-8gpu-ndr400").join("ibstat.txt")).expect("ibstat");
    let ibstat = ibstat.replacen(
        "CA 'mlx5_0'",
        "CA 'mlx5_0'$(touch${IFS}ca)';touch${IFS}cb;'\u{1b}]0;t\u{7}'",
        1,
    );
    let (tmp, dir) = capture_with(&[
        ("proc-hostname.txt", EVIL_HOST),
        ("ibstat.txt", ibstat.as_bytes()),
    ]);
    let version = ["--nccl-version", EVIL_VERSION];
    let want = settings_json(&dir, &version);
    assert!(!want.is_empty());
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).expect("mkdir");
    let env_file = work.join("nccl.env");
    nccltune()
        .args(["configure", "--nodes", "2", "--replay"])
        .arg(&dir)
        .args(version)
        .arg("-o")
        .arg(&env_file)
        .assert()
        .success();
    let text = std::fs::read_to_string(&env_file).expect("read");
    // The host name is not a host name: it is kept out of the node report (the probe's problem
    // says why), so it never reaches the header; the version is escaped onto one line.
    let header = text.lines().next().expect("header");
    assert!(
        !header.contains("evil") && !header.contains("touch pwn"),
        "{text}"
    );
    assert!(
        text.lines()
            .all(|l| l.is_empty() || l.starts_with('#') || l.starts_with("export ")),
        "{text}"
    );
    // Source it and print every variable NUL-separated, exactly as bash holds it.
    let names: Vec<&String> = want.keys().collect();
    let script = format!(
        "set -e; . ./nccl.env; for n in {}; do printf '%s=%s\\0' \"$n\" \"${{!n}}\"; done",
        names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" ")
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&work)
        .output()
        .expect("bash");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: BTreeMap<String, String> = String::from_utf8(out.stdout)
        .expect("utf8")
        .split_terminator('\0')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("k=v");
            (k.to_string(), v.to_string())
        })
        .collect();
    assert_eq!(got, want);
    let left: Vec<_> = std::fs::read_dir(&work)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("nccl.env")],
        "sourcing ran a command"
    );
}

#[test]
fn nccl_conf_output_gains_no_injected_lines() {
    let (_tmp, dir) = capture_with(&[("proc-hostname.txt", b"evil\nNCCL_NET=Socket\n#")]);
    let version = ["--nccl-version", "2.21.5\nNCCL_IB_DISABLE=1"];
    let want = settings_json(&dir, &version);
    for format in ["nccl-conf", "dotenv"] {
        let out = nccltune()
            .args(["configure", "--nodes", "2", "--format", format, "--replay"])
            .arg(&dir)
            .args(version)
            .output()
            .expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("utf8");
        // NCCL's reader: lines starting with `#` skipped, the rest split at the first `=`.
        let got: BTreeMap<String, String> = text
            .split('\n')
            .filter(|l| !l.starts_with('#') && l.contains('='))
            .map(|l| {
                let (k, v) = l.split_once('=').expect("=");
                (k.to_string(), v.to_string())
            })
            .collect();
        assert_eq!(got, want, "{format}:\n{text}");
        assert!(!text.contains('\r'));
    }
}

#[test]
fn escape_sequences_in_captured_text_do_not_reach_the_terminal() {
    let ofed = std::fs::read_to_string(fixture("h100-8gpu-ndr400").join("ofed_info.txt")).expect("ofed");
    let ofed = ofed.replacen(
        "MLNX_OFED_LINUX-23.10-2.1.3.1",
        "MLNX_OFED_LINUX-23.10\u{1b}[2J-2.1",
        1,
    );
    let ibstat = std::fs::read_to_string(fixture("h100-8gpu-ndr400").join("ibstat.txt")).expect("ibstat");
    let ibstat = ibstat.replacen(
        "Firmware version: 28.41.1000",
        "Firmware version: 28\u{1b}]0;pwned\u{7}",
        1,
    );
    let (_tmp, dir) = capture_with(&[
        ("proc-hostname.txt", b"node\x1b]0;owned\x07\x1b[2J\n"),
        ("ofed_info.txt", ofed.as_bytes()),
        ("ibstat.txt", ibstat.as_bytes()),
    ]);
    for args in [
        vec!["detect"],
        vec!["verify"],
        vec!["configure", "--explain", "--nodes", "2"],
    ] {
        let out = nccltune()
            .args(&args)
            .arg("--replay")
            .arg(&dir)
            .output()
            .expect("run");
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
                "{args:?} {stream}: {text}"
            );
        }
        let all = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        if args[0] == "detect" {
            assert!(
                all.contains("node\\x1b]0;owned\\x07\\x1b[2J"),
                "shown escaped: {all}"
            );
        }
    }
}

#[test]
fn dash_o_refuses_devices_fifos_and_directories() {
    let (tmp, dir) = capture_with(&[]);
    let fifo = tmp.path().join("fifo");
    mkfifo(&fifo);
    let sub = tmp.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    for (target, kind) in [
        (PathBuf::from("/dev/null"), "character device"),
        (fifo.clone(), "FIFO"),
        (sub.clone(), "directory"),
    ] {
        let out = nccltune()
            .args(["configure", "--replay"])
            .arg(&dir)
            .arg("-o")
            .arg(&target)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(kind) && err.contains("not a regular file"), "{err}");
    }
    // /dev/stdout is a link to the process's standard output, here a pipe: refused, and the
    // link itself is never replaced.
    let out = nccltune()
        .args(["configure", "--replay"])
        .arg(&dir)
        .args(["-o", "/dev/stdout"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("a FIFO, not a regular file"));
    assert!(out.stdout.is_empty());
    assert!(
        std::fs::symlink_metadata("/dev/stdout")
            .expect("stat")
            .file_type()
            .is_symlink()
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata("/dev/null")
            .expect("stat")
            .file_type()
            .is_char_device()
    );
    assert!(
        std::fs::symlink_metadata(&fifo)
            .expect("stat")
            .file_type()
            .is_fifo()
    );
    assert_eq!(std::fs::read_dir(&sub).expect("ls").count(), 0);
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("ls").count(),
        3,
        "no temp file left"
    );
}

#[test]
fn replay_refuses_symlinks_and_fifos_in_the_capture() {
    let (_tmp, dir) = capture_with(&[]);
    std::fs::remove_file(dir.join("proc-hostname.txt")).expect("rm");
    std::os::unix::fs::symlink("/etc/passwd", dir.join("proc-hostname.txt")).expect("symlink");
    let out = nccltune()
        .args(["detect", "--replay"])
        .arg(&dir)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("proc-hostname.txt: is a symlink"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("root"));

    let (_tmp, dir) = capture_with(&[]);
    std::fs::remove_file(dir.join("manifest.json")).expect("rm");
    mkfifo(&dir.join("manifest.json"));
    // A reader that opened the FIFO would block here forever.
    let out = nccltune()
        .args(["detect", "--replay"])
        .arg(&dir)
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifest.json: not a regular file"));
}

#[test]
fn endless_and_oversized_inputs_end_in_a_short_clear_error() {
    let (tmp, dir) = capture_with(&[]);
    // /dev/zero: one endless line.
    let out = nccltune()
        .args(["configure", "--rules", "/dev/zero", "--replay"])
        .arg(&dir)
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/dev/zero: line 1: longer than 64 KiB"), "{err}");
    assert!(err.len() < 1000, "{} bytes on stderr", err.len());

    // A file larger than the cap is refused before it is read (sparse: no disk used).
    let big = tmp.path().join("big.toml");
    std::fs::File::create(&big)
        .expect("create")
        .set_len(3 << 30)
        .expect("sparse");
    let out = nccltune()
        .args(["verify", "--expect"])
        .arg(&big)
        .args(["--replay"])
        .arg(&dir)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("more than the 8 MiB"), "{err}");

    // A TOML error on a long line quotes a short window of it, not the line and a caret line.
    let rules = tmp.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!("[[rule]]\nid = \"x\"\nwhy = \"{}\" junk\n", "w".repeat(60_000)),
    )
    .expect("write");
    let out = nccltune()
        .args(["configure", "--rules"])
        .arg(&rules)
        .args(["--replay"])
        .arg(&dir)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3 column"), "{err}");
    assert!(err.len() < 1000, "{} bytes on stderr: {err}", err.len());
}

#[test]
fn a_hostile_host_name_is_kept_out_of_the_node_report_and_said() {
    let (_tmp, dir) = capture_with(&[("proc-hostname.txt", EVIL_HOST)]);
    let out = nccltune()
        .args(["detect", "--format", "json", "--replay"])
        .arg(&dir)
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["hostname"].is_null() && v["identity"]["hostname"].is_null(),
        "{}",
        v["hostname"]
    );
    let f = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == "node.probes" && f["subject"] == "proc-hostname")
        .expect("the probe's problem is a finding");
    assert!(
        f["message"]
            .as_str()
            .is_some_and(|m| m.contains("is not a host name") && !m.contains('\n'))
    );
}
