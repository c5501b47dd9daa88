//! The configure report as a shell file, dotenv / nccl.conf, JSON, `mpirun -x` arguments or a
//! Kubernetes `env:` list, and the `--explain` text. Shell values are single-quoted so that
//! sourcing the file can never run a command; formats without quoting refuse values they cannot
//! carry verbatim.

use crate::configure::ConfigureReport;
use anyhow::{Result, bail};
use std::fmt::Write;

fn header(r: &ConfigureReport) -> String {
    format!(
        "# nccltune configure --mode {} for {} (NCCL {}{})\n",
        r.mode,
        r.hostname.as_deref().unwrap_or("this node"),
        r.nccl_version.as_deref().unwrap_or("version unknown"),
        r.nodes.map_or(String::new(), |n| format!(", {n} node(s)"))
    )
}

/// One line of a comment: newlines in a why would end the comment early.
fn comment(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

pub fn shell(r: &ConfigureReport) -> String {
    let mut s = header(r);
    if r.settings.is_empty() {
        s.push_str("# nothing to set: NCCL's defaults fit this node\n");
    }
    for set in &r.settings {
        let _ = writeln!(s, "# {}: {}", set.rule, comment(&set.why));
        let _ = writeln!(s, "export {}={}", set.name, super::shell_quote(&set.value));
    }
    s
}

/// `NAME=value` as NCCL reads `/etc/nccl.conf` and `~/.nccl.conf`: split at the first `=`, no
/// trimming, no quoting; and as dotenv files are read.
pub fn conf(r: &ConfigureReport) -> Result<String> {
    // NCCL before 2.26 reads `#` lines as settings (src/misc/param.cc at 2.25.1): comments only
    // for a target known to be 2.26 or newer.
    let comments = r
        .nccl_version
        .as_deref()
        .is_some_and(|v| crate::parse::version_key(v).as_slice() >= [2, 26].as_slice());
    let mut s = if comments { header(r) } else { String::new() };
    for set in &r.settings {
        let v = &set.value;
        if v.contains(['\n', '\r', '\0', '"', '\'']) || v != v.trim() {
            bail!(
                "rule `{}`: {}={v:?} cannot be written without quoting (NCCL keeps quotes and spaces as part of the value); use --format shell",
                set.rule,
                set.name
            );
        }
        if comments {
            let _ = writeln!(s, "# {}: {}", set.rule, comment(&set.why));
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

pub fn k8s(r: &ConfigureReport) -> Result<String> {
    let mut s = String::from("env:\n");
    for set in &r.settings {
        // A JSON string is a valid YAML double-quoted scalar.
        let _ = writeln!(
            s,
            "  - name: {}\n    value: {}",
            set.name,
            serde_json::to_string(&set.value)?
        );
    }
    if r.settings.is_empty() {
        s = "env: []\n".into();
    }
    Ok(s)
}

pub fn explain(r: &ConfigureReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "facts:");
    for (k, v) in &r.facts {
        let _ = writeln!(s, "  {k} = {}", v.text());
    }
    s.push_str(&super::table(
        &["setting", "value", "rule", "why", "source"],
        r.settings
            .iter()
            .map(|x| {
                vec![
                    x.name.clone(),
                    x.value.clone(),
                    x.rule.clone(),
                    x.why.clone(),
                    x.source.clone(),
                ]
            })
            .collect(),
    ));
    s.push_str(&super::table(
        &["rule", "applied", "reason", "from"],
        r.rules
            .iter()
            .map(|o| {
                vec![
                    o.id.clone(),
                    if o.applied { "yes".into() } else { "no".into() },
                    o.reason.clone(),
                    o.origin.clone(),
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

    #[test]
    fn each_format() {
        let r = report("=mlx5_0:1");
        assert!(shell(&r).contains("export NCCL_IB_HCA='=mlx5_0:1'\n"));
        assert!(
            shell(&r).contains("# r: w x\n"),
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
