//! `nccltune detect`: probe or replay a node, print its report, optionally capture it.

use super::{NodeArgs, emit};
use anyhow::Result;
use clap::{Args, ValueEnum};
use nccltune::outcome::Outcome;
use nccltune::render;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DetectFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    #[command(flatten)]
    pub node: NodeArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = DetectFormat::Table)]
    pub format: DetectFormat,

    /// Also write every probe's raw output to DIR (a new or empty directory): a support bundle
    /// that `--replay DIR` reads back.
    #[arg(long, value_name = "DIR", conflicts_with = "replay")]
    pub capture: Option<PathBuf>,

    /// Write the report to FILE atomically instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: DetectArgs) -> Result<Outcome> {
    if let Some(dir) = &args.capture {
        // Refuse a used directory before spending time on probes.
        if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
            anyhow::bail!(
                "--capture {}: directory is not empty; choose a new directory so that no earlier capture is overwritten",
                dir.display()
            );
        }
    }
    let (runner, source, host) = args.node.runner()?;
    let outputs = nccltune::node::collect(runner.as_ref());
    let report = nccltune::node::build(&outputs, &source, host);
    if let Some(dir) = &args.capture {
        nccltune::probe::write_capture(dir, &outputs, report.hostname.clone())?;
        eprintln!(
            "nccltune: captured {} probes into {}",
            outputs.len(),
            dir.display()
        );
    }
    let text = match args.format {
        DetectFormat::Table => render::node::to_table(&report),
        DetectFormat::Json => render::json(&report)?,
    };
    match &args.output {
        Some(p) => nccltune::output::write_atomic(p, text.as_bytes())?,
        None => emit(&text)?,
    }
    // Failed probes are reported in the output, not in the exit code: detect answers "what is
    // here", and a missing tool is part of the answer.
    Ok(Outcome::Ok)
}
