//! Re-readers for what `configure` writes, each following its consumer's grammar strictly, so
//! that a fuzz target can check "written, then read back, gives exactly the values and nothing
//! more" thousands of times a second (sourcing with bash would manage a few hundred).
#![allow(dead_code)]

/// One POSIX shell word made only of single-quoted strings and `\'` (XCU 2.2.2 and 2.2.1):
/// inside single quotes every byte is literal up to the next `'`; outside, only `\'` (a
/// literal quote) may appear. Returns the word's value and the rest of the input, or `None`
/// when anything else (an unquoted `$`, `;`, space, newline) appears outside the quotes.
pub fn single_quoted_word(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut rest = s;
    if !rest.starts_with('\'') {
        return None;
    }
    loop {
        if let Some(r) = rest.strip_prefix('\'') {
            let end = r.find('\'')?;
            out.push_str(&r[..end]);
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix("\\'") {
            out.push('\'');
            rest = r;
        } else {
            return Some((out, rest));
        }
    }
}

/// A comment line as every reader here sees it: starts with `#`, and holds no character that
/// a shell, NCCL's reader, a YAML parser or a terminal would treat as a line break or control.
pub fn is_clean_comment(line: &str) -> bool {
    line.starts_with('#') && !line.chars().any(|c| nccltune::render::text::is_unsafe(c))
}

/// The `--format shell` file read as a POSIX shell would: comment lines (`#` to the end of the
/// line) and `export NAME='…'` commands, each ended by a newline; a quoted value may span
/// lines. `None` when anything else appears.
pub fn shell_file(text: &str) -> Option<Vec<(String, String)>> {
    let mut vars = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if rest.starts_with('#') {
            let end = rest.find('\n')?;
            if !is_clean_comment(&rest[..end]) {
                return None;
            }
            rest = &rest[end + 1..];
            continue;
        }
        let r = rest.strip_prefix("export ")?;
        let (name, value) = r.split_once('=')?;
        if !is_name(name) {
            return None;
        }
        let (v, tail) = single_quoted_word(value)?;
        rest = tail.strip_prefix('\n')?;
        vars.push((name.to_string(), v));
    }
    Some(vars)
}

/// `mpirun` arguments: `-x 'NAME=value'` words separated by single spaces, then a newline.
pub fn mpirun_args(text: &str) -> Option<Vec<(String, String)>> {
    let mut rest = text.strip_suffix('\n')?;
    let mut vars = Vec::new();
    while !rest.is_empty() {
        rest = rest.strip_prefix("-x ")?;
        let (word, tail) = single_quoted_word(rest)?;
        let (name, value) = word.split_once('=')?;
        if !is_name(name) {
            return None;
        }
        vars.push((name.to_string(), value.to_string()));
        rest = tail.strip_prefix(' ').unwrap_or(tail);
        if !tail.is_empty() && !tail.starts_with(' ') {
            return None;
        }
    }
    Some(vars)
}

/// A nccl.conf / dotenv file as NCCL's `setEnvFile` (src/misc/param.cc) reads it: lines split at
/// `\n`, lines starting with `#` skipped, lines without `=` skipped, the rest split at the first
/// `=`, no trimming, no quoting. Also checks that every comment is clean and every other line is
/// a setting, since a line NCCL skips silently would still be an injected line.
pub fn nccl_conf(text: &str) -> Option<Vec<(String, String)>> {
    let mut vars = Vec::new();
    let body = text.strip_suffix('\n')?;
    for line in body.split('\n') {
        if line.starts_with('#') {
            if !is_clean_comment(line) {
                return None;
            }
            continue;
        }
        let (name, value) = line.split_once('=')?;
        if !is_name(name) || value.chars().any(|c| nccltune::render::text::is_unsafe(c)) {
            return None;
        }
        vars.push((name.to_string(), value.to_string()));
    }
    Some(vars)
}

/// The k8s `env:` list read back with libyaml's grammar.
pub fn k8s_env(text: &str) -> Option<Vec<(String, String)>> {
    #[derive(serde::Deserialize)]
    struct Doc {
        env: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        name: String,
        value: String,
    }
    let doc: Doc = serde_yaml_ng::from_str(text).ok()?;
    Some(doc.env.into_iter().map(|e| (e.name, e.value)).collect())
}

pub fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}
