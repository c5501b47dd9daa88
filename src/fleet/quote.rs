//! The one place where values become text for a consumer that interprets it: POSIX shell
//! (run.sh, the per-node command) and YAML (Kubernetes manifests). Every value from the user or
//! from a plan goes through one of these, so nothing we write can run code or add lines.

/// Quotes `s` as one POSIX shell word: single quotes, with `'` written as `'\''`. Inside single
/// quotes the shell interprets nothing, not even newlines or `$`.
pub fn sh(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/=:,+@%".contains(&b))
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quotes words for a shell command line.
pub fn sh_words<S: AsRef<str>>(words: &[S]) -> String {
    words.iter().map(|w| sh(w.as_ref())).collect::<Vec<_>>().join(" ")
}

/// Quotes `s` as a YAML scalar: a JSON string, which YAML 1.2 reads as a double-quoted scalar
/// (every control character escaped, so no value can start a new key or document).
pub fn yaml(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Splits a `--check-args` string into words the way a shell would for plain words and
/// quotes ('…', "…", backslash), without expansion of any kind. Refuses what a shell would
/// expand, so the words we later quote are what the user meant.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\n' | '\r' => return Err("newline in arguments".into()),
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some('\n') | Some('\r') => return Err("newline in arguments".into()),
                        Some(c) => cur.push(c),
                        None => return Err("unclosed ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => cur.push(c),
                            None => return Err("trailing backslash".into()),
                        },
                        Some('$') | Some('`') => {
                            return Err("'$' or '`' inside double quotes: use single quotes".into());
                        }
                        Some('\n') | Some('\r') => return Err("newline in arguments".into()),
                        Some(c) => cur.push(c),
                        None => return Err("unclosed \" quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) if c != '\n' => {
                    in_word = true;
                    cur.push(c)
                }
                _ => return Err("trailing backslash".into()),
            },
            '$' | '`' | ';' | '&' | '|' | '<' | '>' | '(' | ')' | '*' | '?' | '~' | '#' => {
                return Err(format!(
                    "{c:?} outside quotes: arguments are passed as plain words, not a shell line"
                ));
            }
            c if c.is_control() => return Err(format!("control character {c:?}")),
            c => {
                in_word = true;
                cur.push(c)
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `printf '%s\n' <quoted>` in a real shell and returns what it printed.
    fn through_sh(word: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s' {}", sh(word)))
            .output()
            .expect("sh runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn shell_quoting_survives_a_real_shell() {
        for w in [
            "plain",
            "",
            "a b",
            "it's",
            "$(touch /tmp/x)",
            "`id`",
            "a\nb",
            "'",
            "\\",
            "*",
            "-n",
        ] {
            assert_eq!(through_sh(w), w, "{w:?} quoted as {}", sh(w));
        }
    }

    #[test]
    fn yaml_quoting_escapes_controls() {
        assert_eq!(yaml("a\nb: c"), "\"a\\nb: c\"");
        assert_eq!(yaml("x"), "\"x\"");
    }

    #[test]
    fn splits_words_without_expansion() {
        assert_eq!(
            split_words("--replay caps/{node} --expect 'golden file.toml'").expect("test value"),
            vec!["--replay", "caps/{node}", "--expect", "golden file.toml"]
        );
        assert_eq!(
            split_words(r#"a "b c" d\ e"#).expect("test value"),
            vec!["a", "b c", "d e"]
        );
        for bad in ["$(id)", "a;b", "a|b", "'x", "a\nb", "\"$HOME\"", "a`b`"] {
            assert!(split_words(bad).is_err(), "{bad:?} accepted");
        }
    }
}
