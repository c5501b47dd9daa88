//! Writing results: atomic file writes and UTC timestamps.
//!
//! `-o FILE` is often run as root in a folder others can write to, and its target may be a
//! device, a FIFO or a symlink. So a write (1) refuses a target that is not a regular file or
//! absent (`-o /dev/null` must not turn `/dev/null` into a file); (2) writes a symlinked target
//! through to the file the link points to, atomically there, and leaves the link alone;
//! (3) creates the temporary file beside the target with an unpredictable name, exclusively
//! (`O_CREAT|O_EXCL`, which never follows a symlink planted at that name); (4) gives it the
//! existing file's mode and owner; (5) flushes it and renames it over the target. On any error
//! the temporary file is removed and the target is untouched.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where a write to `path` must land: `path` itself, or the file a symlink at `path` points to
/// (followed to the end). Refuses anything that exists and is not a regular file.
fn resolve_target(path: &Path) -> Result<(PathBuf, Option<std::fs::Metadata>)> {
    let name = path.display();
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((path.to_path_buf(), None)),
        Err(e) => Err(e).with_context(|| format!("cannot write {name}")),
        Ok(lm) => {
            let meta = if lm.file_type().is_symlink() {
                std::fs::metadata(path).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot write {name}: it is a symlink that leads nowhere ({e}); remove it or give the path of a regular file"
                    )
                })?
            } else {
                lm.clone()
            };
            if !meta.file_type().is_file() {
                bail!(
                    "cannot write {name}: it is {}, not a regular file; nccltune writes only regular files (give a file path, or leave out -o to write to standard output)",
                    kind_of(&meta)
                );
            }
            let target = if lm.file_type().is_symlink() {
                std::fs::canonicalize(path)
                    .with_context(|| format!("cannot write {name}: cannot resolve the symlink"))?
            } else {
                path.to_path_buf()
            };
            Ok((target, Some(meta)))
        }
    }
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Writes `bytes` to `path` atomically (see the module header). On any error the temporary file
/// is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut w = AtomicFile::create(path)?;
    w.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    w.commit()
}

/// A file written atomically as a stream (for reports too large to hold in memory): the
/// temporary file of `write_atomic`, written through a buffer, renamed over the target by
/// [`AtomicFile::commit`]. Dropped without `commit` (an error on the way), the temporary file
/// is removed and the target is untouched.
pub struct AtomicFile {
    out: std::io::BufWriter<tempfile::NamedTempFile>,
    target: PathBuf,
    name: String,
}

impl AtomicFile {
    /// Creates the temporary file beside `path`'s target, with the existing file's mode and owner.
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let (target, existing) = resolve_target(path)?;
        let name = path.display().to_string();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let file_name = target
            .file_name()
            .with_context(|| format!("{name}: not a file path"))?
            .to_string_lossy();
        // A new file gets the mode `File::create` would give it (0666 less the umask); the
        // temporary file's own 0600 applies only while it is being written.
        let prefix = format!(".{file_name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".nccltune.tmp").rand_bytes(12);
        if existing.is_none() {
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let tmp = builder.tempfile_in(dir).with_context(|| {
            format!(
                "cannot write {name}: cannot create a temporary file in {}",
                dir.display()
            )
        })?;
        if let Some(meta) = &existing {
            let f = tmp.as_file();
            // Owner first: chown clears set-id bits, which the mode then restores. As a user
            // that does not own the file the owner cannot be kept; the file becomes ours, as
            // with any editor that saves by rename.
            let mine = f.metadata().with_context(|| format!("cannot write {name}"))?;
            if mine.uid() != meta.uid() || mine.gid() != meta.gid() {
                let _ = std::os::unix::fs::fchown(f, Some(meta.uid()), Some(meta.gid()));
            }
            f.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                .with_context(|| format!("cannot write {name}"))?;
        }
        Ok(AtomicFile {
            out: std::io::BufWriter::with_capacity(1 << 16, tmp),
            target,
            name,
        })
    }

    /// Flushes, syncs and renames the temporary file over the target.
    pub fn commit(self) -> Result<()> {
        let name = self.name;
        let tmp = self
            .out
            .into_inner()
            .map_err(|e| anyhow::Error::new(e.into_error()).context(format!("cannot write {name}")))?;
        tmp.as_file()
            .sync_all()
            .with_context(|| format!("cannot write {name}"))?;
        tmp.persist(&self.target)
            .map_err(|e| anyhow::Error::new(e.error).context(format!("cannot write {name}")))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.out.write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The current time as RFC 3339 UTC (`2026-11-24T21:33:22Z`): `render::meta`'s clock, so every
/// document and capture is stamped the same way (and honours `SOURCE_DATE_EPOCH`).
pub fn utc_now_rfc3339() -> String {
    crate::render::meta::rfc3339(crate::render::meta::now())
}

/// `secs` since the epoch as RFC 3339 UTC.
pub fn rfc3339_from_unix(secs: u64) -> String {
    crate::render::meta::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_format_as_rfc3339() {
        assert_eq!(rfc3339_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_from_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_from_unix(1_795_988_002), "2026-11-29T21:33:22Z");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nccl.env");
        std::fs::write(&path, "old").expect("write");
        write_atomic(&path, b"new").expect("atomic");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    fn mkfifo(p: &Path) {
        let ok = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .expect("mkfifo runs");
        assert!(ok.success());
    }

    #[test]
    fn special_files_and_directories_are_refused_untouched() {
        let err = write_atomic(Path::new("/dev/null"), b"x").expect_err("refused");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("/dev/null: it is a character device, not a regular file"),
            "{msg}"
        );
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::metadata("/dev/null")
                .expect("stat")
                .file_type()
                .is_char_device()
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let err = write_atomic(&fifo, b"x").expect_err("refused");
        assert!(format!("{err:#}").contains("a FIFO"), "{err:#}");
        assert!(
            std::fs::symlink_metadata(&fifo)
                .expect("stat")
                .file_type()
                .is_fifo()
        );

        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        let err = write_atomic(&sub, b"x").expect_err("refused");
        assert!(format!("{err:#}").contains("a directory"), "{err:#}");
        let link = dir.path().join("to-null");
        std::os::unix::fs::symlink("/dev/null", &link).expect("symlink");
        let err = write_atomic(&link, b"x").expect_err("refused");
        assert!(format!("{err:#}").contains("character device"), "{err:#}");
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).expect("symlink");
        let err = write_atomic(&dangling, b"x").expect_err("refused");
        assert!(format!("{err:#}").contains("leads nowhere"), "{err:#}");
        assert!(!dir.path().join("nowhere").exists());
        // Nothing was left behind in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 4);
    }

    #[test]
    fn a_symlink_planted_at_a_guessable_temp_name_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").expect("write");
        // The names earlier versions used, and a few neighbours of this process's id.
        for pid in std::process::id().saturating_sub(5)..std::process::id() + 5 {
            let planted = dir.path().join(format!(".nccl.env.nccltune-{pid}.tmp"));
            std::os::unix::fs::symlink(&victim, planted).expect("plant");
        }
        std::os::unix::fs::symlink(&victim, dir.path().join(".nccl.env.nccltune.tmp")).expect("plant");
        let target = dir.path().join("nccl.env");
        write_atomic(&target, b"report").expect("write");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "precious");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "report");
        assert!(
            !std::fs::symlink_metadata(&target)
                .expect("stat")
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn the_mode_of_an_existing_file_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("secret.env");
        std::fs::write(&p, "old").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        write_atomic(&p, b"new").expect("write");
        assert_eq!(std::fs::metadata(&p).expect("stat").mode() & 0o7777, 0o600);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        write_atomic(&p, b"newer").expect("write");
        assert_eq!(std::fs::metadata(&p).expect("stat").mode() & 0o7777, 0o640);
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "newer");
        // A new file is readable like any created file (0666 less the umask), not 0600.
        let fresh = dir.path().join("fresh.env");
        write_atomic(&fresh, b"x").expect("write");
        let mode = std::fs::metadata(&fresh).expect("stat").mode() & 0o777;
        let umask = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Umask:"))?.to_string();
            u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).ok()
        });
        if let Some(umask) = umask {
            assert_eq!(
                mode,
                0o666 & !umask,
                "the temporary file's 0600 must not leak: {mode:o}"
            );
        }
    }

    #[test]
    fn the_owner_of_an_existing_file_is_kept_when_we_may_set_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("owned.env");
        std::fs::write(&p, "old").expect("write");
        // Only root may give a file away; as anyone else there is nothing to test.
        if std::os::unix::fs::chown(&p, Some(12_345), Some(23_456)).is_err() {
            eprintln!("note: not root; the owner-keeping path is not exercised");
            return;
        }
        write_atomic(&p, b"new").expect("write");
        let m = std::fs::metadata(&p).expect("stat");
        assert_eq!((m.uid(), m.gid()), (12_345, 23_456));
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "new");
    }

    #[test]
    fn a_symlinked_target_is_updated_through_the_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real_dir = dir.path().join("real");
        std::fs::create_dir(&real_dir).expect("mkdir");
        let real = real_dir.join("nccl.conf");
        std::fs::write(&real, "old").expect("write");
        let link = dir.path().join("nccl.conf");
        std::os::unix::fs::symlink("real/nccl.conf", &link).expect("symlink");
        write_atomic(&link, b"new").expect("write");
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("stat")
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).expect("read"), "new");
        assert_eq!(
            std::fs::read_dir(&real_dir).expect("ls").count(),
            1,
            "no temp file left"
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 2);
    }

    #[test]
    fn a_failed_atomic_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = write_atomic(&dir.path().join("missing-dir/x.env"), b"new");
        assert!(err.is_err());
    }
}
