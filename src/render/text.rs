//! Text that came from outside (captures, probe output, user files) on its way to a terminal
//! or into a one-line field of a file. A host name, an OFED version or an HCA name is
//! whatever a probe printed; printed verbatim, `ESC ]0;…` retitles the window and `ESC [2J`
//! clears the screen, and a newline inside a `# comment` starts a new line of the file. The
//! functions here are the one place that decides what such text may contain.

use std::borrow::Cow;

/// True for characters a terminal or a line-based reader may act on instead of showing: C0
/// controls (`\n` and `\t` included), DEL, C1 controls (U+0080–U+009F, where U+009B is an 8-bit
/// CSI), the Unicode line and paragraph separators, and the bidirectional overrides and
/// isolates that reorder what is shown (U+202A–U+202E, U+2066–U+2069).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        || c == '\u{feff}'
}

fn escape_into(out: &mut String, c: char) {
    use std::fmt::Write;
    let cp = c as u32;
    let _ = if cp < 0x100 {
        write!(out, "\\x{cp:02x}")
    } else {
        write!(out, "\\u{{{cp:x}}}")
    };
}

/// Text for a terminal: every unsafe character except `\n` and `\t` written as a visible
/// escape (`\x1b`, `\u{202e}`), so escape sequences from captured text are shown, not obeyed.
/// Line feeds stay: table cells and reports are multi-line by design.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && c != '\n' && c != '\t') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) && c != '\n' && c != '\t' {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text for one line of a file (a `# comment`, a header field, a table cell): every unsafe
/// character, line feeds included, written as a visible escape. The result never contains a
/// control character, so it can neither end a comment nor start a new line in any reader.
pub fn one_line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// At most `max` characters of `s` on one line (see [`one_line`]), with `…` when cut: how error
/// messages quote an offending line without echoing megabytes of it.
pub fn excerpt(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    for c in chars.by_ref().take(max) {
        out.push(c);
    }
    let cut = chars.next().is_some();
    let mut out = one_line(&out).into_owned();
    if cut {
        out.push('…');
    }
    out
}

/// Whether `s` may be a host name: 1–253 bytes of dot-separated labels of 1–63 ASCII letters,
/// digits, `-` and `_` (RFC 1123 host names, plus the `_` some clusters use), not starting or
/// ending with `-` or `.`. Anything else (a newline, `#`, a space, `/`) is not a host name and
/// must not become one in a host file, a comment or an identifier.
pub fn valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Whether `s` may be a device name (an RDMA device such as `mlx5_0`, a network interface such
/// as `enp1s0f0` or `bond0.100`, a PCI address): 1–64 bytes of ASCII letters, digits, `_`, `-`,
/// `.` and `:` (the kernel limits RDMA device names to 64 bytes, IB_DEVICE_NAME_MAX in
/// include/rdma/ib_verbs.h). Commas, `=`, `^`, spaces and control characters, which NCCL's
/// NCCL_IB_HCA / NCCL_SOCKET_IFNAME lists treat as syntax, are not allowed.
pub fn valid_device_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// `s` when it is a valid host name, otherwise an error that quotes a short, escaped excerpt.
pub fn check_hostname(s: &str, origin: &str) -> Result<(), String> {
    if valid_hostname(s) {
        Ok(())
    } else {
        Err(format!(
            "{origin}: \"{}\" is not a host name (letters, digits, `-`, `_` and `.`, at most 253 bytes): fix the capture or the host's name",
            excerpt(s, 80)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        let hostile = "node\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}x";
        let s = sanitize(hostile);
        assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{s}");
        assert_eq!(s, "node\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u{202e}x");
        assert_eq!(sanitize("a\nb\tc"), "a\nb\tc", "layout characters stay");
        assert!(matches!(sanitize("mlx5_0"), Cow::Borrowed(_)));
    }

    #[test]
    fn one_line_removes_every_line_break() {
        for brk in ["\n", "\r", "\u{85}", "\u{2028}", "\u{2029}", "\u{b}", "\u{c}"] {
            let s = one_line(&format!("evil{brk}touch pwn;#")).into_owned();
            assert_eq!(s.lines().count(), 1, "{s:?}");
            assert!(!s.chars().any(is_unsafe), "{s:?}");
        }
    }

    #[test]
    fn excerpts_are_short_and_marked_when_cut() {
        assert_eq!(excerpt("short", 80), "short");
        let long = "x".repeat(10_000);
        let e = excerpt(&long, 80);
        assert_eq!(e.chars().count(), 81);
        assert!(e.ends_with('…'));
        assert_eq!(excerpt("é\u{1b}", 1), "é…");
    }

    #[test]
    fn host_and_device_names() {
        for ok in ["n1", "gpu-node-001.cluster.local", "node_7", "a"] {
            assert!(valid_hostname(ok), "{ok}");
        }
        for bad in [
            "",
            "evil\ntouch pwn;#",
            "#c",
            "a b",
            "-x",
            "a..b",
            "x/y",
            &"a".repeat(64),
            "é",
        ] {
            assert!(!valid_hostname(bad), "{bad:?}");
        }
        for ok in ["mlx5_0", "enp1s0f0", "bond0.100", "0000:17:00.0"] {
            assert!(valid_device_name(ok), "{ok}");
        }
        for bad in [
            "",
            "mlx5_0,mlx5_1",
            "=mlx5_0",
            "^eth0",
            "a b",
            "x\n",
            &"a".repeat(65),
        ] {
            assert!(!valid_device_name(bad), "{bad:?}");
        }
        let err = check_hostname("evil\ntouch pwn;#", "capture x").expect_err("refused");
        assert!(err.contains("evil\\x0atouch pwn;#"), "{err}");
    }
}
