//! Parsers: pure functions from a tool's text output to typed values. No I/O, no panics on any
//! input; what cannot be understood is either skipped with a note or reported as an error that
//! names the line. Tested against our fixtures and, in `tests/conformance.rs`, against the real
//! real captures (the conformance tests).

pub mod driver;
pub mod ibstat;
pub mod lsmod;
pub mod lspci;
pub mod nccl_library;
pub mod nccl_log;
pub mod nccl_tests;
pub mod net_sysfs;
pub mod nvidia_smi_q;
pub mod nvlink;
pub mod ofed_info;
pub mod qos;
pub mod query_gpu;
pub mod rdma_sysfs;
pub mod topo;

/// Removes ANSI escape sequences (`ESC [ ... letter`), which `nvidia-smi topo -m` prints
/// around its header when attached to a terminal.
pub fn strip_ansi(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\u{1b}') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

/// The leading number of a value such as `81559 MiB`, `400`, `26.562 GB/s`.
pub fn leading_number(value: &str) -> Option<f64> {
    let v = value.trim();
    let end = v
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || c == '.'))
        .map_or(v.len(), |(i, _)| i);
    v[..end].parse().ok()
}

/// A dotted version such as `2.21.5` or `535.161.08` as numbers, for ordering.
pub fn version_key(v: &str) -> Vec<u64> {
    v.split(['.', '-', '+'])
        .map_while(|p| p.parse::<u64>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_sequences_are_removed() {
        assert_eq!(strip_ansi("\u{1b}[4mGPU0\tCPU\u{1b}[0m"), "GPU0\tCPU");
        assert_eq!(strip_ansi("plain"), "plain");
        assert_eq!(strip_ansi("\u{1b}"), "");
    }

    #[test]
    fn leading_numbers_ignore_units() {
        assert_eq!(leading_number("81559 MiB"), Some(81559.0));
        assert_eq!(leading_number(" 26.562 GB/s"), Some(26.562));
        assert_eq!(leading_number("[N/A]"), None);
    }

    #[test]
    fn versions_order_numerically() {
        assert!(version_key("2.21.5") > version_key("2.3.7"));
        assert_eq!(version_key("2.26.5+cuda12.9"), vec![2, 26, 5]);
    }
}
