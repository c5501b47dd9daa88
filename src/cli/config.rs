//! `nccltune config`: the default settings in force (configuration files, then `NCCLTUNE_*`
//! variables) and where each value came from; a command's own flags override all of them.

use super::emit;
use anyhow::Result;
use clap::{Args, ValueEnum};
use nccltune::config::{Origin, Settings, Value};
use nccltune::outcome::Outcome;
use nccltune::render;
use serde::Serialize;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ConfigFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Precedence, lowest first: built-in defaults, /etc/nccltune/config.toml, \
$XDG_CONFIG_HOME/nccltune/config.toml (else ~/.config/nccltune/config.toml), NCCLTUNE_EXPECT, \
NCCLTUNE_BENCH_PROFILE, NCCLTUNE_TIMEOUT, NCCLTUNE_FORMAT, then the command's flags. \
NCCLTUNE_CONFIG=FILE reads only FILE.\n\
Exit codes: 0 printed; 2 a configuration file or variable is malformed (the message names it)."
)]
pub struct ConfigArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ConfigFormat::Table)]
    pub format: ConfigFormat,
}

/// Which command flag each setting is the default of.
const USED_BY: [(&str, &str); 4] = [
    ("expect", "verify --expect"),
    ("bench_profile", "bench --profile and bench run --profile"),
    (
        "timeout",
        "--timeout of detect, configure, lint, verify, bench (live probes)",
    ),
    ("format", "--format (not read by the commands yet)"),
];

#[derive(Serialize)]
struct Doc<'a> {
    schema: u32,
    #[serde(flatten)]
    meta: render::meta::Meta,
    #[serde(flatten)]
    settings: &'a Settings,
}

fn row<T: std::fmt::Display>(name: &str, v: &Value<T>) -> Vec<String> {
    vec![
        name.to_string(),
        v.value
            .as_ref()
            .map_or_else(|| "(unset)".into(), |x| x.to_string()),
        v.from.to_string(),
        USED_BY
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(String::new(), |(_, u)| u.to_string()),
    ]
}

pub fn to_table(s: &Settings) -> String {
    let path = |v: &Value<std::path::PathBuf>| Value {
        value: v.value.as_ref().map(|p| p.display().to_string()),
        from: v.from.clone(),
    };
    let mut out = render::table::table(
        &["setting", "value", "from", "default of"],
        vec![
            row("expect", &path(&s.expect)),
            row("bench_profile", &s.bench_profile),
            row("timeout", &s.timeout),
            row("format", &s.format),
        ],
    );
    // Paths of any length (a deep XDG_CONFIG_HOME) fold to the width like the table.
    let layout = render::table::Layout::from_env();
    out.push_str("files, lowest precedence first:\n");
    for (p, present) in &s.files {
        let state = if *present { "read" } else { "not present" };
        out.push_str(&render::table::fold(
            "  ",
            &format!("{} ({state})", p.display()),
            layout,
        ));
    }
    out.push_str("then the NCCLTUNE_* variables, then the command's own flags.\n");
    for v in &s.unknown_env {
        let known = nccltune::config::ENV
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&render::table::fold(
            "warning: ",
            &format!("{v} is not a setting nccltune reads (known: {known})"),
            layout,
        ));
    }
    out
}

pub fn run(args: ConfigArgs) -> Result<Outcome> {
    let s = super::settings()?;
    let text = match args.format {
        ConfigFormat::Table => to_table(s),
        ConfigFormat::Json => render::json(&Doc {
            schema: 1,
            meta: render::meta::Meta::now(),
            settings: s,
        })?,
    };
    emit(&text)?;
    Ok(Outcome::Ok)
}

/// The origin in the words an error message uses: `--expect` or `expect (from FILE)`.
pub fn label(flag: &str, from: &Origin) -> String {
    match from {
        Origin::Default => flag.to_string(),
        other => format!("{flag} (from {other})"),
    }
}
