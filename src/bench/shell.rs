//! Shell text for the scripts `bench` writes (`bench plan`): one quoting helper, so that no value
//! (a path, an NCCL setting with commas, a hostile name) can run a command or split into several
//! words in the script or in the tasks a launcher starts.

/// Quotes `value` for bash: single quotes, each `'` written as `'\''`. Inside single quotes
/// nothing is expanded. NUL cannot be passed to a program at all, so callers refuse it first
/// ([`check_value`]).
pub fn quote(value: &str) -> String {
    if !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:=,+%@".contains(&b))
    {
        // Nothing the shell would expand or split: keep it readable.
        return value.to_string();
    }
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// An environment variable name the shell and launchers accept (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn valid_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A value that a script can carry: no NUL byte.
pub fn check_value(what: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!(
            "{what}: contains a NUL byte, which no program argument can hold"
        ));
    }
    Ok(())
}

/// `NAME=value` for `env`, quoted.
pub fn assignment(name: &str, value: &str) -> String {
    debug_assert!(valid_name(name));
    format!("{name}={}", quote(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_never_lets_the_shell_expand_or_split() {
        assert_eq!(quote("INIT,NET"), "INIT,NET");
        assert_eq!(quote("/opt/nccl tests/build"), "'/opt/nccl tests/build'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(quote("a\nb"), "'a\nb'");
        assert_eq!(quote(""), "''");
        assert!(valid_name("NCCL_DEBUG") && !valid_name("1X") && !valid_name("A-B") && !valid_name(""));
        assert!(check_value("x", "a\0b").is_err());
    }
}
