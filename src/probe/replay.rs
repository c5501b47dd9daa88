//! Capture and replay. `write_capture` stores probe outputs as `<name>.txt` (stdout verbatim),
//! `<name>.stderr` (when non-empty), `<name>.status` (`ok`, `exit N`, `timeout`, `not-found`)
//! and `manifest.json`; `ReplayRunner` reads the same layout back instead of running anything.
//! Both sides live here so the format cannot drift: a capture from the field is a fixture as is.

use super::{ProbeOutput, ProbeSpec, ProbeStatus, Runner};
use crate::output::write_atomic;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `manifest.json` of a capture.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub nccltune_version: String,
    /// UTC time of the capture, RFC 3339.
    pub captured_at: String,
    pub hostname: Option<String>,
    pub probes: Vec<ManifestProbe>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestProbe {
    pub name: String,
    pub command: String,
    pub status: String,
    pub duration_ms: u64,
    #[serde(default)]
    pub truncated: bool,
}

/// One probe as found in a capture directory.
#[derive(Debug, Clone, Default)]
struct Captured {
    stdout: Option<Vec<u8>>,
    stderr: Vec<u8>,
    status: Option<ProbeStatus>,
}

/// Replays a capture directory. Everything is read and validated when it is opened, so a
/// malformed file is reported once, by path, before any command does work.
#[derive(Debug)]
pub struct ReplayRunner {
    dir: PathBuf,
    probes: BTreeMap<String, Captured>,
    manifest: Option<Manifest>,
}

/// Largest `manifest.json` replay reads: a real one is a few kilobytes.
pub const MANIFEST_CAP_BYTES: u64 = 1 << 20;
/// Largest `<probe>.status` replay reads: one word and a number.
pub const STATUS_CAP_BYTES: u64 = 4 << 10;

/// Reads one file of a capture: not through a symlink (`O_NOFOLLOW`), without blocking on a
/// FIFO (`O_NONBLOCK`; the type is checked on the open descriptor before any read), regular
/// files only, at most `cap` bytes. A capture comes from another machine, often another
/// person; nothing in it may lead the reader elsewhere, hang it or exhaust its memory.
fn read_capture_file(path: &Path, cap: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                anyhow::anyhow!(
                    "{name}: is a symlink; a capture holds only regular files (replace the link with a copy of the file, or capture again)"
                )
            } else {
                anyhow::anyhow!("{name}: cannot open: {e}")
            }
        })?;
    let meta = file.metadata().with_context(|| format!("{name}: cannot read"))?;
    if !meta.is_file() {
        bail!("{name}: not a regular file; a capture holds only regular files (remove it, or capture again)");
    }
    if meta.len() > cap {
        bail!(
            "{name}: {} bytes, more than the {cap} bytes a capture file may hold; this is not a capture written by `nccltune detect --capture`",
            meta.len()
        );
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{name}: cannot read"))?;
    if bytes.len() as u64 > cap {
        bail!("{name}: grew past the {cap} bytes a capture file may hold while it was read");
    }
    Ok(bytes)
}

impl ReplayRunner {
    /// Opens a capture directory. Files are read under the rules of `read_capture_file`, with
    /// a cap per file: `OUTPUT_CAP_BYTES` (the live probes' cap) for `<probe>.txt` and
    /// `<probe>.stderr`, `STATUS_CAP_BYTES` for `<probe>.status`, `MANIFEST_CAP_BYTES` for
    /// `manifest.json`. Files of probes this version does not know are left unread, so the
    /// memory a capture can take is bounded by the catalog.
    pub fn open(dir: &Path) -> Result<ReplayRunner> {
        let entries = std::fs::read_dir(dir).with_context(|| {
            format!(
                "cannot read replay directory {}: pass a directory written by `nccltune detect --capture`",
                dir.display()
            )
        })?;
        let mut probes: BTreeMap<String, Captured> = BTreeMap::new();
        let mut manifest = None;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let path = entry.path();
            let Some(file_name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            if file_name == "manifest.json" {
                let bytes = read_capture_file(&path, MANIFEST_CAP_BYTES)?;
                let m: Manifest = serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "{}: not a capture manifest (fix or delete the file)",
                        path.display()
                    )
                })?;
                if let Some(h) = &m.hostname {
                    crate::render::text::check_hostname(h, &format!("{}: field hostname", path.display()))
                        .map_err(anyhow::Error::msg)?;
                }
                manifest = Some(m);
                continue;
            }
            let Some((name, ext)) = file_name.rsplit_once('.') else {
                continue;
            };
            if !matches!(ext, "txt" | "stderr" | "status") || super::find(name).is_none() {
                continue;
            }
            let cap = if ext == "status" {
                STATUS_CAP_BYTES
            } else {
                super::OUTPUT_CAP_BYTES as u64
            };
            let bytes = read_capture_file(&path, cap)?;
            let slot = probes.entry(name.to_string()).or_default();
            match ext {
                "txt" => slot.stdout = Some(bytes),
                "stderr" => slot.stderr = bytes,
                _ => {
                    let text = String::from_utf8_lossy(&bytes);
                    let line = text.lines().next().unwrap_or("");
                    let status = ProbeStatus::parse(line).with_context(|| {
                        format!(
                            "{}: line 1: expected `ok`, `exit N`, `timeout` or `not-found`, found \"{}\"",
                            path.display(),
                            crate::render::text::excerpt(line, crate::input::EXCERPT_CHARS)
                        )
                    })?;
                    slot.status = Some(status);
                }
            }
        }
        if probes.is_empty() && manifest.is_none() {
            bail!(
                "{} holds no capture (no <probe>.txt, <probe>.status or manifest.json): \
                 write one with `nccltune detect --capture DIR`",
                dir.display()
            );
        }
        Ok(ReplayRunner {
            dir: dir.to_path_buf(),
            probes,
            manifest,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }
}

impl Runner for ReplayRunner {
    fn run(&self, spec: &ProbeSpec) -> ProbeOutput {
        let from_manifest = self
            .manifest
            .as_ref()
            .and_then(|m| m.probes.iter().find(|p| p.name == spec.name));
        let captured = self.probes.get(spec.name).cloned().unwrap_or_default();
        let status = match (&captured.status, &captured.stdout) {
            (Some(s), _) => s.clone(),
            (None, Some(_)) => ProbeStatus::Ok,
            (None, None) => ProbeStatus::NotCaptured,
        };
        ProbeOutput {
            name: spec.name.to_string(),
            command: from_manifest.map_or_else(|| spec.describe(), |m| m.command.clone()),
            status,
            stdout: captured.stdout.unwrap_or_default(),
            stderr: captured.stderr,
            duration: Duration::from_millis(from_manifest.map_or(0, |m| m.duration_ms)),
            truncated: from_manifest.is_some_and(|m| m.truncated),
        }
    }
}

/// Writes a capture of `outputs` into `dir`, which must not exist or be empty (an earlier
/// capture is never overwritten). Each file is written atomically.
pub fn write_capture(dir: &Path, outputs: &[ProbeOutput], hostname: Option<String>) -> Result<Manifest> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("--capture {}: exists and cannot be read", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "--capture {}: directory is not empty; choose a new directory so that no earlier capture is overwritten",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--capture {}: cannot create directory", dir.display()))?;
    let mut probes = Vec::new();
    for out in outputs {
        if out.status == ProbeStatus::NotCaptured {
            continue;
        }
        if !out.stdout.is_empty() || out.status.is_ok() {
            write_atomic(&dir.join(format!("{}.txt", out.name)), &out.stdout)?;
        }
        if !out.stderr.is_empty() {
            write_atomic(&dir.join(format!("{}.stderr", out.name)), &out.stderr)?;
        }
        write_atomic(
            &dir.join(format!("{}.status", out.name)),
            format!("{}\n", out.status).as_bytes(),
        )?;
        probes.push(ManifestProbe {
            name: out.name.clone(),
            command: out.command.clone(),
            status: out.status.to_string(),
            duration_ms: out.duration.as_millis() as u64,
            truncated: out.truncated,
        });
    }
    let manifest = Manifest {
        nccltune_version: env!("CARGO_PKG_VERSION").to_string(),
        captured_at: crate::output::utc_now_rfc3339(),
        // Replay refuses a manifest whose host name is not one; leave it out rather than write
        // a capture that cannot be read back (proc-hostname.txt still holds what the node said).
        hostname: hostname.filter(|h| crate::render::text::valid_hostname(h)),
        probes,
    };
    let json = serde_json::to_vec_pretty(&manifest).context("serialising manifest")?;
    write_atomic(&dir.join("manifest.json"), &json)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::find;

    fn out(name: &str, status: ProbeStatus, stdout: &str, stderr: &str) -> ProbeOutput {
        ProbeOutput {
            name: name.into(),
            command: format!("cmd {name}"),
            status,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            duration: Duration::from_millis(7),
            truncated: false,
        }
    }

    #[test]
    fn capture_then_replay_gives_back_every_byte_and_status() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cap = dir.path().join("cap");
        let outputs = vec![
            out("ibstat", ProbeStatus::Ok, "CA 'mlx5_0'\n\tno newline at end", ""),
            out("lsmod", ProbeStatus::Timeout, "", "killed"),
            out("ofed_info", ProbeStatus::NotFound, "", ""),
            out("nvidia-smi-topo", ProbeStatus::Exit(9), "half", "NVML error"),
        ];
        write_capture(&cap, &outputs, Some("node1".into())).expect("capture");
        let replay = ReplayRunner::open(&cap).expect("open");
        for o in &outputs {
            let spec = find(&o.name).expect("known probe");
            let back = replay.run(&spec);
            assert_eq!(back.status, o.status, "{}", o.name);
            assert_eq!(back.stdout, o.stdout, "{}", o.name);
            assert_eq!(back.stderr, o.stderr, "{}", o.name);
            assert_eq!(back.command, o.command);
            assert_eq!(back.duration, Duration::from_millis(7));
        }
        let never = replay.run(&find("nvidia-smi-nvlink").expect("known"));
        assert_eq!(never.status, ProbeStatus::NotCaptured);
        assert_eq!(
            replay.manifest().and_then(|m| m.hostname.clone()),
            Some("node1".into())
        );
    }

    #[test]
    fn capture_refuses_a_non_empty_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("keep.txt"), "precious").expect("write");
        let err = write_capture(dir.path(), &[], None).expect_err("must refuse");
        assert!(format!("{err:#}").contains("not empty"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep.txt")).expect("read"),
            "precious"
        );
    }

    #[test]
    fn a_bad_status_file_is_named_with_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ibstat.status"), "exploded\n").expect("write");
        let err = ReplayRunner::open(dir.path()).expect_err("must fail");
        let msg = format!("{err:#}");
        assert!(msg.contains("ibstat.status: line 1"), "{msg}");
        assert!(msg.contains("`exit N`"), "{msg}");
    }

    #[test]
    fn an_empty_or_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(ReplayRunner::open(dir.path()).is_err());
        assert!(ReplayRunner::open(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn a_fifo_manifest_is_refused_without_hanging() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = std::process::Command::new("mkfifo")
            .arg(dir.path().join("manifest.json"))
            .status()
            .expect("mkfifo");
        assert!(ok.success());
        let err = ReplayRunner::open(dir.path()).expect_err("refused");
        let msg = format!("{err:#}");
        assert!(msg.contains("manifest.json: not a regular file"), "{msg}");
    }

    #[test]
    fn symlinks_out_of_the_capture_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("proc-hostname.txt")).expect("symlink");
        let err = ReplayRunner::open(dir.path()).expect_err("refused");
        let msg = format!("{err:#}");
        assert!(msg.contains("proc-hostname.txt: is a symlink"), "{msg}");
        assert!(!msg.contains("root:"), "{msg}");
        // Even a link to a file inside the capture.
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("lsmod.txt"), "x").expect("write");
        std::os::unix::fs::symlink("lsmod.txt", dir.path().join("ibstat.txt")).expect("symlink");
        assert!(ReplayRunner::open(dir.path()).is_err());
    }

    #[test]
    fn oversized_files_and_hostile_manifest_host_names_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = std::fs::File::create(dir.path().join("ibstat.status")).expect("create");
        f.set_len(STATUS_CAP_BYTES + 1).expect("grow");
        let err = ReplayRunner::open(dir.path()).expect_err("refused");
        assert!(
            format!("{err:#}").contains("ibstat.status: 4097 bytes, more than"),
            "{err:#}"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let m = write_capture(&dir.path().join("c"), &[], Some("evil\ntouch pwn;#".into())).expect("capture");
        assert_eq!(m.hostname, None, "a capture is never written unreadable");
        let manifest = dir.path().join("c/manifest.json");
        let text = std::fs::read_to_string(&manifest).expect("read");
        let text = text.replace("\"hostname\": null", "\"hostname\": \"evil\\ntouch pwn;#\"");
        std::fs::write(&manifest, text).expect("plant");
        let err = ReplayRunner::open(&dir.path().join("c")).expect_err("refused");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("field hostname: \"evil\\x0atouch pwn;#\" is not a host name"),
            "{msg}"
        );
    }

    #[test]
    fn files_of_unknown_probes_are_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ibstat.status"), "ok\n").expect("write");
        // A FIFO would hang a reader; an unknown name is never opened.
        let ok = std::process::Command::new("mkfifo")
            .arg(dir.path().join("not-a-probe.txt"))
            .status()
            .expect("mkfifo");
        assert!(ok.success());
        assert!(ReplayRunner::open(dir.path()).is_ok());
    }

    #[test]
    fn a_status_file_without_txt_is_fine() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ibstat.status"), "not-found").expect("write");
        let replay = ReplayRunner::open(dir.path()).expect("open");
        let o = replay.run(&find("ibstat").expect("known"));
        assert_eq!(o.status, ProbeStatus::NotFound);
        assert!(o.stdout.is_empty());
    }
}
