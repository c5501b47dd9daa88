//! The `nccl-library` probe: the `libnccl.so*` files found, one per line, in the order a process
//! would search them (`LD_LIBRARY_PATH`, Python environments, system and container folders).
//! A line is a path, optionally followed by a tab, the version and a tab, how it was known:
//! from wheel metadata (`nvidia_nccl_cu12-X.Y.Z.dist-info` beside `nvidia/nccl/lib`) or from
//! the version string NCCL embeds in the library (`NCCL version X.Y.Z`, the text `NCCL_DEBUG=
//! VERSION` prints; NCCL 2.30.7 src/init.cc:694-695). Without either, the version is the one in the file name
//! (`libnccl.so.2.21.5`). A fourth column says where the folder came from (`LD_LIBRARY_PATH`,
//! `python`, `env`, `system`; captures older than it have three columns or one). The highest
//! version found is reported. `parse_ldconfig` reads `ldconfig -p`, the loader's cache.

use std::io::Read;

/// One library file and its version, where known.
#[derive(Debug, Clone, PartialEq)]
pub struct Library {
    pub path: String,
    pub version: Option<String>,
    /// `file name`, `link target`, `wheel metadata` or `embedded version string`.
    pub how: String,
    /// The probe's fourth column: `LD_LIBRARY_PATH`, `python`, `env` or `system`; `None` in
    /// captures that predate it.
    pub origin: Option<String>,
}

fn full(v: &str) -> bool {
    super::version_key(v).len() >= 3
}

/// Every listed library with its version.
pub fn parse_all(text: &str) -> Vec<Library> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            let path = f.next().unwrap_or("").trim().to_string();
            let given = f.next().map(str::trim).filter(|v| full(v)).map(str::to_string);
            let how = f.next().unwrap_or("").trim().to_string();
            let origin = f
                .next()
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_string);
            match given {
                Some(v) => Library {
                    path,
                    version: Some(v),
                    how: if how.is_empty() { "probe".into() } else { how },
                    origin,
                },
                None => {
                    let name = path.rsplit('/').next().unwrap_or("");
                    let v = name
                        .strip_prefix("libnccl.so.")
                        .filter(|v| full(v))
                        .map(str::to_string);
                    Library {
                        path,
                        how: if v.is_some() { "file name" } else { "unknown" }.into(),
                        version: v,
                        origin,
                    }
                }
            }
        })
        .collect()
}

/// The paths `ldconfig -p` maps `soname` to, in the cache's order (the order `ld.so` tries
/// them): lines `\tlibnccl.so.2 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnccl.so.2`.
pub fn parse_ldconfig(text: &str, soname: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let (name, path) = l.trim().split_once(" => ")?;
            let name = name.split_whitespace().next()?;
            (name == soname && path.trim().starts_with('/')).then(|| path.trim().to_string())
        })
        .collect()
}

/// The highest `X.Y.Z` version among the listed library files.
pub fn parse(text: &str) -> Option<String> {
    parse_all(text)
        .into_iter()
        .filter_map(|l| l.version)
        .max_by_key(|v| super::version_key(v))
}

/// The version of a wheel-installed NCCL from the names in its `site-packages`:
/// `nvidia_nccl_cu12-2.21.5.dist-info` (also `_cu11`, `_cu13`, and plain `nvidia_nccl`).
pub fn wheel_version<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    names
        .into_iter()
        .filter_map(|n| {
            let rest = n.strip_prefix("nvidia_nccl")?.strip_suffix(".dist-info")?;
            let (_, v) = rest.split_once('-')?;
            full(v).then(|| v.to_string())
        })
        .max_by_key(|v| super::version_key(v))
}

const MARK: &[u8] = b"NCCL version ";

/// `X.Y.Z` right after `NCCL version ` in `bytes`, if there.
pub fn embedded_version(bytes: &[u8]) -> Option<String> {
    let mut i = 0;
    while let Some(p) = bytes[i..].windows(MARK.len()).position(|w| w == MARK) {
        let start = i + p + MARK.len();
        let v: String = bytes[start..]
            .iter()
            .take(24)
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .map(|&b| b as char)
            .collect();
        let v = v.trim_end_matches('.').to_string();
        if full(&v) {
            return Some(v);
        }
        i = start;
    }
    None
}

/// Scans a library file for its embedded version in fixed-size chunks, reading at most
/// `limit` bytes: memory stays at one chunk however large the library.
pub fn embedded_version_reader(mut r: impl Read, limit: u64) -> std::io::Result<Option<String>> {
    const CHUNK: usize = 1 << 20;
    let keep = MARK.len() + 24;
    let mut buf = vec![0u8; CHUNK + keep];
    let mut have = 0usize;
    let mut read_total = 0u64;
    loop {
        let room = (CHUNK + keep - have)
            .min(usize::try_from(limit.saturating_sub(read_total)).unwrap_or(usize::MAX));
        if room == 0 {
            return Ok(embedded_version(&buf[..have]));
        }
        let n = r.read(&mut buf[have..have + room])?;
        if n == 0 {
            return Ok(embedded_version(&buf[..have]));
        }
        read_total += n as u64;
        have += n;
        if let Some(v) = embedded_version(&buf[..have]) {
            return Ok(Some(v));
        }
        // Keep the tail, where a mark may be cut in two.
        if have > keep {
            buf.copy_within(have - keep..have, 0);
            have = keep;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_full_version_wins() {
        let text = "/usr/lib/x86_64-linux-gnu/libnccl.so\n/usr/lib/x86_64-linux-gnu/libnccl.so.2\n\
/usr/lib/x86_64-linux-gnu/libnccl.so.2.18.3\n/opt/nccl/lib/libnccl.so.2.21.5\n";
        assert_eq!(parse(text).as_deref(), Some("2.21.5"));
        assert_eq!(parse("/usr/lib/libnccl.so.2\n"), None);
    }

    #[test]
    fn versions_from_the_probe_wheel_metadata_and_the_embedded_string() {
        let text = "/venv/lib/python3.11/site-packages/nvidia/nccl/lib/libnccl.so.2\t2.26.2\twheel metadata\n\
/usr/lib/libnccl.so.2.21.5\n/opt/x/libnccl.so.2\t\t\n";
        let all = parse_all(text);
        assert_eq!(all[0].version.as_deref(), Some("2.26.2"));
        assert_eq!(all[0].how, "wheel metadata");
        assert_eq!(all[1].how, "file name");
        assert_eq!(all[2].version, None);
        assert_eq!(all[2].how, "unknown");
        assert_eq!(all[0].origin, None);
        let tagged =
            parse_all("/opt/n/libnccl.so.2\t\t\tLD_LIBRARY_PATH\n/usr/lib/libnccl.so.2.21.5\t\t\tsystem\n");
        assert_eq!(tagged[0].origin.as_deref(), Some("LD_LIBRARY_PATH"));
        assert_eq!(tagged[0].version, None);
        assert_eq!(tagged[1].version.as_deref(), Some("2.21.5"));
        assert_eq!(tagged[1].how, "file name");
        let cache = "3 libs found in cache `/etc/ld.so.cache'\n\tlibnccl.so.2 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnccl.so.2\n\
\tlibnccl.so (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnccl.so\n\tlibnccl-net.so (libc6,x86-64) => /opt/x/libnccl-net.so\n";
        assert_eq!(
            parse_ldconfig(cache, "libnccl.so.2"),
            ["/usr/lib/x86_64-linux-gnu/libnccl.so.2"]
        );
        assert!(parse_ldconfig("garbage => here\n", "libnccl.so.2").is_empty());
        assert_eq!(parse(text).as_deref(), Some("2.26.2"));
        assert_eq!(
            wheel_version([
                "numpy-1.26.dist-info",
                "nvidia_nccl_cu12-2.21.5.dist-info",
                "nvidia"
            ])
            .as_deref(),
            Some("2.21.5")
        );
        assert_eq!(wheel_version(["nvidia_nccl_cu12-x.dist-info"]), None);
        let mut lib = vec![0u8; 3 << 20];
        lib.extend_from_slice(b"\0NCCL version 2.27.3+cuda12.9\0");
        lib.extend(vec![0u8; 1000]);
        assert_eq!(
            embedded_version_reader(&lib[..], u64::MAX)
                .expect("read")
                .as_deref(),
            Some("2.27.3")
        );
        // A mark split across two chunks is still found.
        let mut split = vec![0u8; (1 << 20) - 5];
        split.extend_from_slice(b"NCCL version 2.30.7\0");
        assert_eq!(
            embedded_version_reader(&split[..], u64::MAX)
                .expect("read")
                .as_deref(),
            Some("2.30.7")
        );
        assert_eq!(
            embedded_version_reader(&lib[..], 1 << 20).expect("read"),
            None,
            "bounded"
        );
        assert_eq!(embedded_version(b"NCCL version %d.%d.%d"), None);
    }
}
