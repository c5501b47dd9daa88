//! The `nccl-library` probe: paths of `libnccl.so*` files, one per line. The version is in
//! the file name (`libnccl.so.2.21.5`); the highest one found is reported.

/// The highest `X.Y.Z` version among the listed library files.
pub fn parse(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| {
            let name = l.trim().rsplit('/').next()?;
            let v = name.strip_prefix("libnccl.so.")?;
            (super::version_key(v).len() >= 3).then(|| v.to_string())
        })
        .max_by_key(|v| super::version_key(v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn highest_full_version_wins() {
        let text = "/usr/lib/x86_64-linux-gnu/libnccl.so\n/usr/lib/x86_64-linux-gnu/libnccl.so.2\n\
/usr/lib/x86_64-linux-gnu/libnccl.so.2.18.3\n/opt/nccl/lib/libnccl.so.2.21.5\n";
        assert_eq!(super::parse(text).as_deref(), Some("2.21.5"));
        assert_eq!(super::parse("/usr/lib/libnccl.so.2\n"), None);
    }
}
