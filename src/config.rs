//! Default settings, so that a fleet health check need not repeat `--expect` on every call.
//!
//! Precedence, lowest first: built-in defaults, `/etc/nccltune/config.toml`, the user's
//! `$XDG_CONFIG_HOME/nccltune/config.toml` (`~/.config/...` when `XDG_CONFIG_HOME` is unset or
//! not absolute, as the XDG Base Directory specification says), `NCCLTUNE_*` variables, then
//! the flags of the command. `NCCLTUNE_CONFIG=FILE` reads that one file instead of both
//! (`/dev/null`: none), for scripts and tests that must not depend on the machine's files.
//!
//! Pure: `resolve` takes the files' text and the environment as values; `load` reads them.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Built-in probe deadline, seconds (the `--timeout` default).
pub const DEFAULT_TIMEOUT_S: f64 = 10.0;

/// Where a value in force came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Env(v) => write!(f, "${v}"),
        }
    }
}

/// One setting: its value (if any) and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Value<T> {
    pub value: Option<T>,
    pub from: Origin,
}

impl<T> Value<T> {
    fn unset() -> Value<T> {
        Value {
            value: None,
            from: Origin::Default,
        }
    }
}

/// The settings in force before the command's own flags.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Default `verify --expect` file.
    pub expect: Value<PathBuf>,
    /// Default `bench --profile`.
    pub bench_profile: Value<String>,
    /// Default `--timeout` of the commands that probe a node, seconds.
    pub timeout: Value<f64>,
    /// Default `--format`, for the commands that offer it.
    pub format: Value<String>,
    /// The configuration files looked at, in order, and whether each was there.
    pub files: Vec<(PathBuf, bool)>,
    /// `NCCLTUNE_*` variables that are not settings: most likely misspelt.
    pub unknown_env: Vec<String>,
}

/// The keys of a configuration file; anything else is an error naming the key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    expect: Option<PathBuf>,
    bench_profile: Option<String>,
    timeout: Option<f64>,
    format: Option<String>,
}

/// The variables, with the setting each one sets.
pub const ENV: [(&str, &str); 4] = [
    ("NCCLTUNE_EXPECT", "expect"),
    ("NCCLTUNE_BENCH_PROFILE", "bench_profile"),
    ("NCCLTUNE_TIMEOUT", "timeout"),
    ("NCCLTUNE_FORMAT", "format"),
];

/// Variables the tool reads that are not settings (so not "unknown").
const OTHER_ENV: [&str; 1] = ["NCCLTUNE_CONFIG"];

fn check_timeout(t: f64, from: &str) -> Result<f64> {
    if t.is_finite() && t > 0.0 && t <= 86_400.0 {
        Ok(t)
    } else {
        bail!("{from}: timeout {t}: expected seconds between 0 and 86400, e.g. timeout = 10")
    }
}

fn check_word(v: &str, key: &str, from: &str) -> Result<String> {
    let v = v.trim();
    if v.is_empty()
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        bail!("{from}: {key} {v:?}: expected a name such as \"json\" or \"h100x8-ndr400\"");
    }
    Ok(v.to_string())
}

/// The configuration files, in precedence order (lowest first), for this environment.
pub fn locations(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    if let Some(one) = env("NCCLTUNE_CONFIG").filter(|v| !v.is_empty()) {
        return vec![PathBuf::from(one)];
    }
    let mut v = vec![PathBuf::from("/etc/nccltune/config.toml")];
    let xdg = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let user = xdg.or_else(|| {
        env("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| Path::new(&h).join(".config"))
    });
    if let Some(dir) = user {
        v.push(dir.join("nccltune/config.toml"));
    }
    v
}

/// Merges `files` (path and text, lowest precedence first; `None` = not there) and the
/// `NCCLTUNE_*` variables of `env` (name, value).
pub fn resolve(files: &[(PathBuf, Option<String>)], env: &[(String, String)]) -> Result<Settings> {
    let mut s = Settings {
        expect: Value::unset(),
        bench_profile: Value::unset(),
        timeout: Value {
            value: Some(DEFAULT_TIMEOUT_S),
            from: Origin::Default,
        },
        format: Value::unset(),
        files: files.iter().map(|(p, t)| (p.clone(), t.is_some())).collect(),
        unknown_env: Vec::new(),
    };
    for (path, text) in files {
        let Some(text) = text else { continue };
        let name = path.display().to_string();
        let f: File = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{name}: {}\nexpected keys: expect, bench_profile, timeout, format",
                e.to_string().trim_end()
            )
        })?;
        let from = Origin::File(path.clone());
        if let Some(p) = f.expect {
            // A relative path means relative to the file that names it, not to wherever the
            // command happens to run.
            let p = match path.parent() {
                Some(dir) if p.is_relative() => dir.join(p),
                _ => p,
            };
            s.expect = Value {
                value: Some(p),
                from: from.clone(),
            };
        }
        if let Some(v) = f.bench_profile {
            s.bench_profile = Value {
                value: Some(check_word(&v, "bench_profile", &name)?),
                from: from.clone(),
            };
        }
        if let Some(t) = f.timeout {
            s.timeout = Value {
                value: Some(check_timeout(t, &name)?),
                from: from.clone(),
            };
        }
        if let Some(v) = f.format {
            s.format = Value {
                value: Some(check_word(&v, "format", &name)?),
                from,
            };
        }
    }
    for (k, v) in env {
        if !k.starts_with("NCCLTUNE_") || v.is_empty() {
            continue;
        }
        let from = Origin::Env(k.clone());
        match k.as_str() {
            "NCCLTUNE_EXPECT" => {
                s.expect = Value {
                    value: Some(PathBuf::from(v)),
                    from,
                }
            }
            "NCCLTUNE_BENCH_PROFILE" => {
                s.bench_profile = Value {
                    value: Some(check_word(v, "bench_profile", &format!("${k}"))?),
                    from,
                }
            }
            "NCCLTUNE_TIMEOUT" => {
                let t: f64 = v
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("${k}={v:?}: expected seconds, e.g. {k}=10"))?;
                s.timeout = Value {
                    value: Some(check_timeout(t, &format!("${k}"))?),
                    from,
                }
            }
            "NCCLTUNE_FORMAT" => {
                s.format = Value {
                    value: Some(check_word(v, "format", &format!("${k}"))?),
                    from,
                }
            }
            other if OTHER_ENV.contains(&other) => {}
            other => s.unknown_env.push(other.to_string()),
        }
    }
    s.unknown_env.sort();
    Ok(s)
}

/// Reads the files and variables of this process and resolves them. A file that is there but
/// cannot be read is an error naming it: a health check must not run on defaults silently.
pub fn load() -> Result<Settings> {
    let env = |k: &str| std::env::var(k).ok();
    let mut files = Vec::new();
    for p in locations(&env) {
        let text = match std::fs::read(&p) {
            Ok(b) => Some(
                String::from_utf8(b)
                    .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text; expected a TOML file", p.display()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
        };
        files.push((p, text));
    }
    let vars: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("NCCLTUNE_"))
        .collect();
    resolve(&files, &vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str, t: &str) -> (PathBuf, Option<String>) {
        (PathBuf::from(p), Some(t.to_string()))
    }

    #[test]
    fn later_layers_win_and_say_where_they_come_from() {
        let files = [
            file(
                "/etc/nccltune/config.toml",
                "expect = \"golden.toml\"\ntimeout = 30\nformat = \"json\"\n",
            ),
            file("/home/u/.config/nccltune/config.toml", "timeout = 20\n"),
        ];
        let env = [("NCCLTUNE_FORMAT".to_string(), "prometheus".to_string())];
        let s = resolve(&files, &env).expect("ok");
        assert_eq!(s.expect.value, Some(PathBuf::from("/etc/nccltune/golden.toml")));
        assert_eq!(s.expect.from, Origin::File("/etc/nccltune/config.toml".into()));
        assert_eq!(s.timeout.value, Some(20.0));
        assert_eq!(s.timeout.from.to_string(), "/home/u/.config/nccltune/config.toml");
        assert_eq!(s.format.value.as_deref(), Some("prometheus"));
        assert_eq!(s.format.from.to_string(), "$NCCLTUNE_FORMAT");
        assert_eq!(s.bench_profile.value, None);
        assert_eq!(s.bench_profile.from, Origin::Default);
    }

    #[test]
    fn nothing_set_is_the_built_in_defaults() {
        let s = resolve(&[(PathBuf::from("/etc/nccltune/config.toml"), None)], &[]).expect("ok");
        assert_eq!(s.timeout.value, Some(DEFAULT_TIMEOUT_S));
        assert_eq!(s.expect.value, None);
        assert_eq!(s.files, vec![(PathBuf::from("/etc/nccltune/config.toml"), false)]);
    }

    #[test]
    fn bad_values_name_the_file_the_line_and_the_fix() {
        let e = resolve(&[file("/etc/x.toml", "timout = 3\n")], &[]).expect_err("unknown key");
        let m = format!("{e:#}");
        assert!(
            m.contains("/etc/x.toml") && m.contains("timout") && m.contains("line 1"),
            "{m}"
        );
        let e = resolve(&[file("/etc/x.toml", "\ntimeout = -1\n")], &[]).expect_err("negative");
        assert!(format!("{e:#}").contains("between 0 and 86400"));
        let env = [("NCCLTUNE_TIMEOUT".to_string(), "soon".to_string())];
        let e = resolve(&[], &env).expect_err("not a number");
        assert!(format!("{e:#}").contains("$NCCLTUNE_TIMEOUT"));
        let env = [("NCCLTUNE_FORMAT".to_string(), "json; rm -rf /".to_string())];
        assert!(resolve(&[], &env).is_err());
    }

    #[test]
    fn misspelt_variables_are_reported_and_empty_ones_ignored() {
        let env = [
            ("NCCLTUNE_EXPCT".to_string(), "x".to_string()),
            ("NCCLTUNE_EXPECT".to_string(), String::new()),
            ("NCCLTUNE_CONFIG".to_string(), "/dev/null".to_string()),
        ];
        let s = resolve(&[], &env).expect("ok");
        assert_eq!(s.unknown_env, vec!["NCCLTUNE_EXPCT".to_string()]);
        assert_eq!(s.expect.value, None);
    }

    #[test]
    fn locations_follow_xdg_and_the_override() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(
            locations(&env(&[("HOME", "/home/u")])),
            vec![
                PathBuf::from("/etc/nccltune/config.toml"),
                PathBuf::from("/home/u/.config/nccltune/config.toml")
            ]
        );
        assert_eq!(
            locations(&env(&[("HOME", "/home/u"), ("XDG_CONFIG_HOME", "/cfg")]))[1],
            PathBuf::from("/cfg/nccltune/config.toml")
        );
        // A relative XDG_CONFIG_HOME is invalid per the spec and ignored.
        assert_eq!(
            locations(&env(&[("HOME", "/home/u"), ("XDG_CONFIG_HOME", "rel")]))[1],
            PathBuf::from("/home/u/.config/nccltune/config.toml")
        );
        assert_eq!(
            locations(&env(&[("NCCLTUNE_CONFIG", "/dev/null")])),
            vec![PathBuf::from("/dev/null")]
        );
    }
}
