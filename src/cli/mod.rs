//! The command line: clap definitions and the glue that turns arguments into plain options,
//! calls the library, and writes the rendered report. The only module that knows clap.

mod bench;
mod configure;
mod detect;
mod docs;
mod lint;
mod place;
mod verify;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use nccltune::outcome::Outcome;
use nccltune::probe::{ReplayRunner, Runner, SystemRunner};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "nccltune", version, about = "Get NCCL and InfiniBand/RoCE right on GPU nodes", long_about = None)]
#[command(
    after_help = "Exit codes: 0 ok; 1 the answer is no (a failed check, a slow size, a bad env, no placement); 2 could not run."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe this node (or replay a capture) and report GPUs, NVLink, RDMA ports, topology,
    /// GPUDirect RDMA prerequisites and versions.
    Detect(detect::DetectArgs),
    /// Emit the NCCL environment that fits this node (or a capture), from rules kept as data.
    Configure(configure::ConfigureArgs),
    /// Check env files, job scripts and nccl.conf files (or the environment NCCL will see) for
    /// names and values NCCL would ignore or misread. Exit 1 on an error finding.
    Lint(lint::LintArgs),
    /// Place tensor- and pipeline-parallel groups on a cluster's nodes and racks, with the
    /// estimated all-reduce cost of each group.
    Place(place::PlaceArgs),
    /// Parse nccl-tests output and judge it against bandwidth targets; `plan` writes the runs,
    /// `tune` turns a sweep into nccl_tuner.conf.
    Bench(bench::BenchArgs),
    /// Health-check this node (or a capture): GPUs, NVLink, RDMA ports, GPUDirect RDMA, PCIe,
    /// versions, and optionally what an NCCL debug log says NCCL did. Exit 1 when a check fails.
    Verify(verify::VerifyArgs),
    /// Print a shell completion script (bash, zsh or fish) to standard output.
    Completions {
        #[arg(value_enum)]
        shell: docs::Shell,
    },
    /// Print the man pages (roff) to standard output, or write one file per command to DIR.
    Man {
        /// Write `nccltune.1`, `nccltune-detect.1`, `nccltune-bench-plan.1`, ... into DIR.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Options of every command that reads a node.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// Read a capture directory (written by `detect --capture`) instead of probing this node.
    #[arg(long, value_name = "DIR", global = true)]
    pub replay: Option<PathBuf>,

    /// Deadline for each probe, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, global = true)]
    pub timeout: f64,
}

impl NodeArgs {
    /// The runner these options ask for, with the source label and the capture's host name.
    pub fn runner(&self) -> Result<(Box<dyn Runner>, String, Option<String>)> {
        match &self.replay {
            Some(dir) => {
                let r = ReplayRunner::open(dir)?;
                let host = r.manifest().and_then(|m| m.hostname.clone());
                Ok((Box::new(r), dir.display().to_string(), host))
            }
            None => {
                if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 86_400.0) {
                    anyhow::bail!(
                        "--timeout {}: expected seconds between 0 and 86400, e.g. --timeout 10",
                        self.timeout
                    );
                }
                Ok((
                    Box::new(SystemRunner::new(Duration::from_secs_f64(self.timeout))),
                    "live".into(),
                    None,
                ))
            }
        }
    }

    /// Probes the node (or replays the capture) and builds its report.
    pub fn node_report(&self) -> Result<nccltune::node::NodeReport> {
        let (runner, source, host) = self.runner()?;
        let outputs = nccltune::node::collect(runner.as_ref());
        Ok(nccltune::node::build(&outputs, &source, host))
    }
}

pub fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Detect(args) => detect::run(args),
        Command::Place(args) => place::run(args),
        Command::Configure(args) => configure::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { dir } => docs::man(dir.as_deref()),
    }
}

/// Writes to standard output. A closed pipe (`nccltune ... | head`) is not an error.
pub fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
