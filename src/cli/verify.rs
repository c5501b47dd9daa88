//! `nccltune verify`: the node health check, for Slurm/NHC, Kubernetes probes, cron and dashboards.

use super::{NodeArgs, emit};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use nccltune::outcome::Outcome;
use nccltune::verify::{self, Options, expect};
use nccltune::{output, render};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum VerifyFormat {
    Table,
    Json,
    Prometheus,
    Junit,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 nothing failed (warnings allowed unless --strict); 1 a check failed; \
2 verify could not run (bad arguments, unreadable --expect, --nccl-log or --replay input).\n\
A one-line summary always goes to standard error."
)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub node: NodeArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = VerifyFormat::Table)]
    pub format: VerifyFormat,

    /// Expected number of GPUs (overrides the expectations file).
    #[arg(long, value_name = "N")]
    pub expect_gpus: Option<u32>,

    /// Expectations file (TOML): GPU count, RDMA ports with rate and link layer, versions.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,

    /// Write the expectations this node meets to FILE (for checking a fleet against it), then verify.
    #[arg(long, value_name = "FILE")]
    pub write_expect: Option<PathBuf>,

    /// Output of a run with NCCL_DEBUG=INFO: checks what NCCL actually used.
    #[arg(long, value_name = "FILE")]
    pub nccl_log: Option<PathBuf>,

    /// Treat warnings as failures (exit 1).
    #[arg(long)]
    pub strict: bool,
}

pub fn run(args: VerifyArgs) -> Result<Outcome> {
    let expect = args.expect.as_deref().map(expect::load).transpose()?;
    let nccl_log = match &args.nccl_log {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read --nccl-log {}", path.display()))?;
            let text = String::from_utf8_lossy(&bytes);
            Some((
                path.display().to_string(),
                nccltune::parse::nccl_log::parse(&text),
            ))
        }
        None => None,
    };
    let node = args.node.node_report()?;
    if let Some(path) = &args.write_expect {
        let text = expect::to_toml(&expect::from_node(&node))?;
        output::write_atomic(path, text.as_bytes())?;
        eprintln!("nccltune: wrote expectations to {}", path.display());
    }
    let opts = Options {
        expect,
        expect_gpus: args.expect_gpus,
        nccl_log,
    };
    let report = verify::run(&node, &opts);
    let text = match args.format {
        VerifyFormat::Table => render::verify::to_table(&report),
        VerifyFormat::Json => render::json(&report)?,
        VerifyFormat::Prometheus => render::verify::to_prometheus(&report),
        VerifyFormat::Junit => render::verify::to_junit(&report, args.strict),
    };
    emit(&text)?;
    eprintln!("{}", report.one_line(args.strict));
    Ok(Outcome::from_failed(report.failed(args.strict)))
}
