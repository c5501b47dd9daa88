//! `nccltune configure`: emit the NCCL environment that fits this node (or a capture).

use super::{NodeArgs, emit};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use nccltune::configure::{self, Options, rules};
use nccltune::outcome::Outcome;
use nccltune::{output, render};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    Inference,
    Training,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ConfigureFormat {
    /// `export NAME='value'` lines with `# rule-id: why` comments.
    Shell,
    /// `NAME=value` lines (docker --env-file and similar).
    Dotenv,
    /// `NAME=value` lines for /etc/nccl.conf or ~/.nccl.conf.
    NcclConf,
    Json,
    /// `-x NAME=value` arguments for mpirun.
    Mpirun,
    /// A container `env:` list in YAML.
    K8s,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Standard output carries only the file; notes go to standard error. Prefer -o FILE over \
`> FILE`: -o writes atomically and leaves an existing file untouched on any error.\n\
Exit codes: 0 written; 2 could not run (bad flags, bad rules file, unreadable capture)."
)]
pub struct ConfigureArgs {
    #[command(flatten)]
    pub node: NodeArgs,

    /// What the job is: inference (latency-sensitive, shares the GPU with compute) or training.
    #[arg(long, value_enum, default_value_t = Mode::Training)]
    pub mode: Mode,

    /// Nodes in the job (1 = single node: network settings are left out).
    #[arg(long, value_name = "N")]
    pub nodes: Option<u32>,

    /// NCCL version to configure for, when it is not installed where detect looks.
    #[arg(long, value_name = "X.Y.Z")]
    pub nccl_version: Option<String>,

    /// Extra rules (TOML): a rule with a built-in id replaces it; `enabled = false` turns it off.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,

    /// Also print, on standard error, the facts, each setting's rule, why and source, and the
    /// rules that did not apply and why.
    #[arg(long)]
    pub explain: bool,

    #[arg(long, value_enum, default_value_t = ConfigureFormat::Shell)]
    pub format: ConfigureFormat,

    /// Write to FILE atomically instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: ConfigureArgs) -> Result<Outcome> {
    if args.nodes == Some(0) {
        anyhow::bail!("--nodes 0: a job has at least one node");
    }
    let user_rules = match &args.rules {
        Some(path) => {
            let text = nccltune::input::read_text(path, &nccltune::input::CONFIG.named("a TOML rules file"))
                .context("--rules")?;
            rules::parse_user(&text, &path.display().to_string())?
        }
        None => Vec::new(),
    };
    let node = args.node.node_report()?;
    let mode = match args.mode {
        Mode::Inference => "inference",
        Mode::Training => "training",
    };
    let opts = Options {
        mode: mode.into(),
        nodes: args.nodes,
        nccl_version: args.nccl_version.clone(),
        user_rules,
    };
    let report = configure::run(&node, &opts)?;
    let text = match args.format {
        ConfigureFormat::Shell => render::configure::shell(&report)?,
        ConfigureFormat::Dotenv | ConfigureFormat::NcclConf => render::configure::conf(&report)?,
        ConfigureFormat::Json => render::json(&report)?,
        ConfigureFormat::Mpirun => render::configure::mpirun(&report)?,
        ConfigureFormat::K8s => render::configure::k8s(&report)?,
    };
    for note in &report.notes {
        super::note(
            &format!("nccltune: {}: ", note.level),
            &format!("{} [{}]", note.message, note.code),
        );
    }
    if args.explain {
        eprint!("{}", render::configure::explain(&report));
    }
    match &args.output {
        Some(path) => {
            output::write_atomic(path, text.as_bytes())?;
            eprintln!(
                "nccltune: wrote {} setting(s) to {}",
                report.settings.len(),
                path.display()
            );
        }
        // On a terminal the file is for reading: a control character from a capture (an HCA
        // name) is shown escaped rather than obeyed. Redirected, the bytes are exact.
        None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => emit(&render::text::sanitize(&text))?,
        None => emit(&text)?,
    }
    Ok(Outcome::Ok)
}
