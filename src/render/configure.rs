//! The configure report as a shell file, dotenv / nccl.conf, JSON, `mpirun -x` arguments or a
//! Kubernetes `env:` list, and the `--explain` text. Shell values are single-quoted so that
//! sourcing the file can never run a command; formats without quoting refuse values they cannot
//! carry verbatim.

use super::text::{is_unsafe, one_line, sanitize};
use crate::configure::{ConfigureReport, Setting};
use anyhow::{Result, bail};
use std::fmt::Write;

/// The first line of every env-file format. Host name and NCCL version come from a capture or
/// `--nccl-version`: `one_line` escapes every control character, so neither can end the
/// comment and start a line of its own (`evil\ntouch pwn;#` stays one comment line).
fn header(r: &ConfigureReport) -> String {
    format!(
        "# nccltune configure --mode {} for {} (NCCL {}{})\n",
        one_line(&r.mode),
        one_line(r.hostname.as_deref().unwrap_or("this node")),
        one_line(r.nccl_version.as_deref().unwrap_or("version unknown")),
        r.nodes.map_or(String::new(), |n| format!(", {n} node(s)"))
    )
}

/// One line of a comment: a newline or other control character in a rule id or a why would
/// end the comment early.
fn comment(s: &str) -> String {
    one_line(s).into_owned()
}

/// Refuses a setting whose name is not a plain variable name: every format writes the name
/// unquoted (`export NAME=`, `NAME=`, `- name: NAME`).
fn check_name(set: &Setting) -> Result<()> {
    let mut chars = set.name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        bail!(
            "rule `{}`: \"{}\" is not a variable name (letters, digits and `_`); nothing was written",
            comment(&set.rule),
            super::text::excerpt(&set.name, crate::input::EXCERPT_CHARS)
        );
    }
    Ok(())
}

/// Refuses a value with a NUL byte: no shell variable, environment or file line can hold one
/// (bash drops it with a warning), so the value read back would not be the value written.
fn check_no_nul(set: &Setting) -> Result<()> {
    if set.value.contains('\0') {
        bail!(
            "rule `{}`: the value of {} holds a NUL byte, which no environment variable can carry; nothing was written",
            comment(&set.rule),
            set.name
        );
    }
    Ok(())
}

pub fn shell(r: &ConfigureReport) -> Result<String> {
    let mut s = header(r);
    if r.settings.is_empty() {
        s.push_str("# nothing to set: NCCL's defaults fit this node\n");
    }
    for set in &r.settings {
        check_name(set)?;
        check_no_nul(set)?;
        let _ = writeln!(s, "# {}: {}", comment(&set.rule), comment(&set.why));
        let _ = writeln!(s, "export {}={}", set.name, super::shell_quote(&set.value));
    }
    Ok(s)
}

/// `NAME=value` as NCCL reads `/etc/nccl.conf` and `~/.nccl.conf`: split at the first `=`, no
/// trimming, no quoting, lines starting with `#` skipped (`setEnvFile` in src/misc/param.cc of
/// NCCL); and as dotenv files are read. Without quoting, a value must be its own text: any
/// control character (a newline would start a line of its own), a quote or surrounding space
/// is refused.
pub fn conf(r: &ConfigureReport) -> Result<String> {
    // NCCL before 2.26 reads `#` lines as settings (src/misc/param.cc at 2.25.1): comments only
    // for a target known to be 2.26 or newer.
    let comments = r
        .nccl_version
        .as_deref()
        .is_some_and(|v| crate::parse::version_key(v).as_slice() >= [2, 26].as_slice());
    let mut s = if comments { header(r) } else { String::new() };
    for set in &r.settings {
        check_name(set)?;
        let v = &set.value;
        if v.chars().any(is_unsafe) || v.contains(['"', '\'']) || v != v.trim() {
            bail!(
                "rule `{}`: {}=\"{}\" cannot be written without quoting (NCCL keeps quotes and spaces as part of the value, and a control character would break the line); use --format shell",
                comment(&set.rule),
                set.name,
                super::text::excerpt(v, crate::input::EXCERPT_CHARS)
            );
        }
        if comments {
            let _ = writeln!(s, "# {}: {}", comment(&set.rule), comment(&set.why));
        }
        let _ = writeln!(s, "{}={v}", set.name);
    }
    Ok(s)
}

/// `-x NAME=value` words for `mpirun $(nccltune configure --format mpirun)`: an unquoted `$(…)`
/// is split at blanks and globbed but never unquoted, so quotes would reach NCCL as part of the
/// name. Values are written bare, and a value that is not safe bare is refused.
pub fn mpirun(r: &ConfigureReport) -> Result<String> {
    let mut args = Vec::new();
    for set in &r.settings {
        check_name(set)?;
        let bare = |x: &str| {
            !x.is_empty()
                && x.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_=,.:/^+@%-".contains(c))
        };
        if !bare(&set.value) {
            bail!(
                "rule `{}`: {}={:?} cannot be passed unquoted through `mpirun $(…)`; use --format shell and `mpirun -x {}`",
                set.rule,
                set.name,
                set.value,
                set.name
            );
        }
        args.push(format!("-x {}={}", set.name, set.value));
    }
    Ok(format!("{}\n", args.join(" ")))
}

/// `value` as a YAML double-quoted scalar that reads back as exactly `value` (YAML 1.2, section
/// 5.7 "Escaped Characters" and 7.3.1 "Double-Quoted Style"). A JSON string is not enough: JSON
/// leaves DEL and the C1 controls raw, which YAML does not allow unescaped, and a raw U+0085,
/// U+2028 or U+2029 is a line break that YAML folds into a space. Everything outside the
/// printable ASCII range that is a control, a line break, a format character or not in YAML's
/// printable set is escaped.
pub fn yaml_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            ' '..='~' => out.push(c),
            c if is_unsafe(c) || !yaml_printable(c) => {
                let cp = c as u32;
                let _ = if cp < 0x100 {
                    write!(out, "\\x{cp:02X}")
                } else if cp < 0x10000 {
                    write!(out, "\\u{cp:04X}")
                } else {
                    write!(out, "\\U{cp:08X}")
                };
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// YAML 1.2's `c-printable` above ASCII, less U+0085 and the byte order mark.
fn yaml_printable(c: char) -> bool {
    matches!(c as u32, 0xA0..=0xD7FF | 0xE000..=0xFEFE | 0xFF00..=0xFFFD | 0x10000..=0x10FFFF)
}

pub fn k8s(r: &ConfigureReport) -> Result<String> {
    if r.settings.is_empty() {
        return Ok("env: []\n".into());
    }
    let mut s = String::from("env:\n");
    for set in &r.settings {
        check_name(set)?;
        check_no_nul(set)?;
        let _ = writeln!(s, "  - name: {}\n    value: {}", set.name, yaml_quote(&set.value));
    }
    Ok(s)
}

pub fn explain(r: &ConfigureReport) -> String {
    // Captured text is escaped on the way in (`\x1b` shown, not obeyed), so that the table's
    // own colour escapes, added after, stay escapes.
    let safe = |t: &str| sanitize(t).into_owned();
    let mut s = String::new();
    let _ = writeln!(s, "facts:");
    let layout = super::table::Layout::for_stream(super::table::Stream::Stderr);
    for (k, v) in &r.facts {
        s.push_str(&super::table::fold(
            &safe(&format!("  {k} = ")),
            &one_line(&v.text()),
            layout,
        ));
    }
    s.push_str(&super::table::table_stderr(
        &["setting", "value", "rule", "why", "source"],
        r.settings
            .iter()
            .map(|x| {
                vec![
                    safe(&x.name),
                    safe(&x.value),
                    safe(&x.rule),
                    safe(&x.why),
                    safe(&x.source),
                ]
            })
            .collect(),
    ));
    s.push_str(&super::table::table_stderr(
        &["rule", "applied", "reason", "from"],
        r.rules
            .iter()
            .map(|o| {
                vec![
                    safe(&o.id),
                    if o.applied { "yes".into() } else { "no".into() },
                    safe(&o.reason),
                    safe(&o.origin),
                ]
            })
            .collect(),
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configure::Setting;

    fn report(value: &str) -> ConfigureReport {
        ConfigureReport {
            schema: 1,
            meta: crate::render::meta::Meta::default(),
            hostname: Some("n1".into()),
            source: "test".into(),
            mode: "training".into(),
            nodes: None,
            nccl_version: Some("2.21.5".into()),
            settings: vec![Setting {
                name: "NCCL_IB_HCA".into(),
                value: value.into(),
                rule: "r".into(),
                why: "w\nx".into(),
                source: "s".into(),
            }],
            rules: vec![],
            notes: vec![],
            facts: Default::default(),
        }
    }

    /// A small deterministic generator: the test must be reproducible without a crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn random_value(rng: &mut Rng) -> String {
        const SPECIAL: &[char] = &[
            '\u{7f}', '\u{85}', '\u{a0}', '\u{2028}', '\u{2029}', '\u{feff}', '\u{fffe}', '\u{ffff}',
            '\u{202e}', '"', '\\', '\'', ':', '#', '-', '{', '[', '&', '*', '!', '|', '>', '%', '@', '`',
            ' ',
        ];
        let len = (rng.next() % 24) as usize;
        (0..len)
            .map(|_| match rng.next() % 4 {
                0 => char::from_u32((rng.next() % 0xa0) as u32).unwrap_or('x'),
                1 => SPECIAL[(rng.next() % SPECIAL.len() as u64) as usize],
                2 => char::from_u32((rng.next() % 0x11_0000) as u32).unwrap_or('\u{10ffff}'),
                _ => char::from_u32(0x20 + (rng.next() % 0x5f) as u32).unwrap_or('y'),
            })
            .collect()
    }

    /// Reads a `k8s` document back with libyaml's grammar (serde_yaml_ng is built on a port of
    /// libyaml, the parser behind PyYAML's and many tools' loaders): the values, or the error.
    fn yaml_values(text: &str) -> Result<Vec<String>, String> {
        #[derive(serde::Deserialize)]
        struct Doc {
            env: Vec<Entry>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            value: String,
        }
        let doc: Doc = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        Ok(doc.env.into_iter().map(|e| e.value).collect())
    }

    #[test]
    fn k8s_yaml_reads_back_exactly_for_every_value() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut values: Vec<String> = (0u32..0x100)
            .filter_map(char::from_u32)
            .chain(['\u{2028}', '\u{2029}', '\u{feff}', '\u{fffe}', '\u{10ffff}'])
            .map(|c| format!("a{c}b"))
            .collect();
        values.extend((0..5000).map(|_| random_value(&mut rng)));
        values.extend(
            [
                "", " lead", "trail ", "- x", "#", "null", "~", "true", "0x1f", "'", "\"\"",
            ]
            .map(String::from),
        );
        for v in values {
            let mut r = report(&v);
            r.settings[0].value = v.clone();
            match k8s(&r) {
                Ok(text) => assert_eq!(yaml_values(&text), Ok(vec![v.clone()]), "{v:?} as {text}"),
                Err(e) => assert!(v.contains('\0'), "only NUL is refused: {v:?}: {e}"),
            }
        }
    }

    #[test]
    fn hostile_names_and_headers_are_refused_or_kept_on_one_line() {
        let mut r = report("x");
        r.hostname = Some("evil\ntouch pwn;#".into());
        r.nccl_version = Some("2.27.3\r\nNCCL_NET=Socket\u{85}\u{2028}".into());
        r.settings[0].rule = "r\nNCCL_P2P_DISABLE=1".into();
        for text in [shell(&r).expect("shell"), conf(&r).expect("conf")] {
            let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
            assert_eq!(lines.len(), 3, "{text}");
            assert!(lines[0].starts_with("# ") && lines[1].starts_with("# "), "{text}");
            assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
            assert!(!text.contains(['\u{85}', '\u{2028}']), "{text:?}");
        }
        r.settings[0].name = "X;touch pwn".into();
        assert!(shell(&r).is_err() && conf(&r).is_err() && mpirun(&r).is_err() && k8s(&r).is_err());
        let r = report("a\0b");
        assert!(shell(&r).is_err() && mpirun(&r).is_err() && k8s(&r).is_err() && conf(&r).is_err());
        for bad in ["a\u{1b}[2J", "a\u{7f}", "a\u{85}b", "a\tb"] {
            assert!(conf(&report(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_format() {
        let r = report("=mlx5_0:1");
        let sh = shell(&r).expect("shell");
        assert!(sh.contains("export NCCL_IB_HCA='=mlx5_0:1'\n"));
        assert!(
            sh.contains("# r: w\\x0ax\n"),
            "a newline in a why stays inside the comment"
        );
        assert_eq!(
            conf(&r).expect("conf"),
            "NCCL_IB_HCA==mlx5_0:1\n",
            "no comments before 2.26"
        );
        assert_eq!(mpirun(&r).expect("mpirun"), "-x NCCL_IB_HCA==mlx5_0:1\n");
        assert!(mpirun(&report("a b")).is_err());
        assert_eq!(
            k8s(&r).expect("k8s"),
            "env:\n  - name: NCCL_IB_HCA\n    value: \"=mlx5_0:1\"\n"
        );
        assert!(conf(&report("a'b")).is_err());
        assert!(conf(&report(" x")).is_err());
    }
}
