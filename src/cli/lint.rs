//! `nccltune lint`: check env files, job scripts and NCCL config files, or (with no file) the
//! process environment plus the config files NCCL itself reads, in NCCL's precedence order.

use super::{NodeArgs, emit};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use nccltune::lint::{self, envfile};
use nccltune::outcome::Outcome;
use nccltune::render;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LintFormat {
    Table,
    Json,
    /// SARIF 2.1.0, for code-review tools.
    Sarif,
    /// JUnit XML; with --strict warnings are failures.
    Junit,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 clean (warnings allowed unless --strict); 1 an error finding; 2 unreadable input.\n\
With no FILE: the environment, then $NCCL_CONF_FILE (else ~/.nccl.conf), then /etc/nccl.conf, as NCCL reads them."
)]
pub struct LintArgs {
    /// Env files (`export A=b`, dotenv), job scripts (`mpirun -x A=b`), or nccl.conf files.
    pub files: Vec<PathBuf>,

    #[arg(long, value_enum, default_value_t = LintFormat::Table)]
    pub format: LintFormat,

    /// Treat warnings as errors (exit 1).
    #[arg(long)]
    pub strict: bool,

    /// NCCL version to judge against (default: the installed one, with --facts or --replay).
    #[arg(long, value_name = "X.Y.Z")]
    pub nccl_version: Option<String>,

    /// Check against this node's facts (live); implied by --replay DIR.
    #[arg(long)]
    pub facts: bool,

    #[command(flatten)]
    pub node: NodeArgs,
}

fn read(path: &std::path::Path) -> Result<Vec<envfile::Assignment>> {
    let bytes = nccltune::input::read_bytes(path, &nccltune::input::ENV).context("lint")?;
    let name = path.display().to_string();
    let text = String::from_utf8_lossy(&bytes);
    envfile::parse(&text, &name, envfile::syntax_for(&name))
}

pub fn run(args: LintArgs) -> Result<Outcome> {
    let node = if args.facts || args.node.replay.is_some() {
        Some(args.node.node_report()?)
    } else {
        None
    };
    let version = args
        .nccl_version
        .clone()
        .or_else(|| node.as_ref().and_then(|n| n.versions.nccl.clone()));
    let vkey = version.as_deref().map(nccltune::parse::version_key);
    let precedence = args.files.is_empty();
    let sources = if precedence {
        lint::process_sources()?
    } else {
        args.files.iter().map(|p| read(p)).collect::<Result<Vec<_>>>()?
    };
    let report = lint::lint(&sources, vkey.as_deref(), node.as_ref(), precedence);
    let text = match args.format {
        LintFormat::Table => render::lint::to_table(&report),
        LintFormat::Json => render::json(&report)?,
        LintFormat::Sarif => render::lint_machine::to_sarif(&report, &render::meta::Meta::now()),
        LintFormat::Junit => render::lint_machine::to_junit(&report, args.strict, &render::meta::Meta::now()),
    };
    emit(&text)?;
    Ok(Outcome::from_failed(report.failed(args.strict)))
}
