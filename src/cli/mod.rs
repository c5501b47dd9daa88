//! The command line: clap definitions and the glue that turns arguments into plain options,
//! calls the library, and writes the rendered report. The only module that knows clap.

mod bench;
mod config;
mod configure;
mod detect;
mod docs;
mod fleet;
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

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Flags every subcommand takes, with one meaning everywhere.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// When to colour status words: auto (a terminal, unless NO_COLOR is set; CLICOLOR_FORCE
    /// forces it), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,

    /// Write nothing to standard output: the exit code, the summary on standard error and any
    /// -o FILE carry the answer.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// The default settings (`nccltune::config`), read once, on first use: only commands that
/// need one read the files, and a malformed file is an error of those commands (exit 2).
pub fn settings() -> Result<&'static nccltune::config::Settings> {
    static CELL: std::sync::OnceLock<std::result::Result<nccltune::config::Settings, String>> =
        std::sync::OnceLock::new();
    CELL.get_or_init(|| nccltune::config::load().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Set by `--quiet`; `emit` then writes nothing.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Applies the global flags to this process: the colour choice every stream (clap's, anstream's,
/// the table renderer's) reads, and quiet mode.
fn apply_global(g: &GlobalArgs) {
    let choice = match g.color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
    QUIET.store(g.quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Parses the command line. A usage error is printed in the one error style of every nccltune
/// message (`nccltune: error: …`, clap's text after it) and exits 2; `--help` and `--version`
/// print and exit 0.
pub fn parse_args() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version (exit 0), and the help clap shows for a missing subcommand (exit
        // 2), are not error messages.
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Err(e) => {
            let text = e.render().to_string();
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            let mut err = anstream::stderr();
            let _ = write!(err, "{} {text}", error_prefix());
            std::process::exit(2)
        }
    }
}

/// `nccltune: error:`, red and bold when standard error takes colour.
pub fn error_prefix() -> String {
    let style = anstyle::Style::new()
        .fg_color(Some(anstyle::AnsiColor::Red.into()))
        .bold();
    format!("{style}nccltune: error:{style:#}")
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
    /// Plan node checks and multi-node tests for a fleet (Slurm, pdsh/clush, mpirun,
    /// Kubernetes), merge the results, isolate bad nodes and links, plan the next round.
    Fleet(fleet::FleetArgs),
    /// Print the default settings in force (configuration files, NCCLTUNE_* variables) and
    /// where each came from.
    Config(config::ConfigArgs),
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
    #[arg(long, value_name = "DIR")]
    pub replay: Option<PathBuf>,

    /// Deadline for each probe, in seconds [default: 10, or `timeout` of `nccltune config`].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
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
                let timeout = match self.timeout {
                    Some(t) => t,
                    None => settings()?
                        .timeout
                        .value
                        .unwrap_or(nccltune::config::DEFAULT_TIMEOUT_S),
                };
                if !(timeout.is_finite() && timeout > 0.0 && timeout <= 86_400.0) {
                    anyhow::bail!(
                        "--timeout {timeout}: expected seconds between 0 and 86400, e.g. --timeout 10"
                    );
                }
                Ok((
                    Box::new(SystemRunner::new(Duration::from_secs_f64(timeout))),
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
    apply_global(&cli.global);
    match cli.command {
        Command::Detect(args) => detect::run(args),
        Command::Place(args) => place::run(args),
        Command::Configure(args) => configure::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Fleet(args) => fleet::run(args),
        Command::Config(args) => config::run(args),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { dir } => docs::man(dir.as_deref()),
    }
}

/// A message on standard error (`prefix` then `text`), with captured text escaped: one line for
/// scripts and logs, folded to the width when standard error is a terminal (continuation lines
/// indented under the text).
pub fn note(prefix: &str, text: &str) {
    use nccltune::render::table;
    use std::io::IsTerminal;
    let text = nccltune::render::text::sanitize(text);
    let line = if std::io::stderr().is_terminal() {
        table::fold(prefix, &text, table::Layout::for_stream(table::Stream::Stderr))
    } else {
        format!("{prefix}{text}\n")
    };
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Whether `--quiet` was given: standard output stays empty.
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Writes to standard output. A closed pipe (`nccltune ... | head`) is not an error.
pub fn emit(text: &str) -> Result<()> {
    if QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
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

    /// Where a flag of the common vocabulary makes no sense, and why.
    const NOT_APPLICABLE: &[(&str, &str, &str)] = &[
        ("nccltune", "format", "the top level only dispatches"),
        ("nccltune", "output", "the top level only dispatches"),
        ("nccltune bench plan", "format", "writes one thing, a bash script"),
        (
            "nccltune completions",
            "format",
            "the shell argument is the format",
        ),
        (
            "nccltune completions",
            "output",
            "a script for the shell to source from stdout",
        ),
        ("nccltune man", "format", "roff is the only format"),
        ("nccltune fleet", "format", "only dispatches to its subcommands"),
        ("nccltune fleet", "output", "only dispatches to its subcommands"),
        ("nccltune man", "output", "--dir DIR writes one file per page"),
        (
            "nccltune config",
            "output",
            "shows what is in force; nothing to keep",
        ),
    ];

    /// Flags of the vocabulary a subcommand still lacks (issue 16). Kept exact: the test
    /// fails when one is added, so that this list never claims a gap that is gone.
    const MISSING: &[(&str, &str)] = &[];

    fn walk(cmd: &clap::Command, out: &mut Vec<clap::Command>) {
        out.push(cmd.clone());
        for s in cmd.get_subcommands() {
            walk(s, out);
        }
    }

    #[test]
    fn every_subcommand_speaks_the_same_flags() {
        let mut top = Cli::command().disable_help_subcommand(true);
        top.build();
        let mut all = Vec::new();
        walk(&top, &mut all);
        assert!(all.len() >= 11, "{}", all.len());
        let mut missing_seen = Vec::new();
        for cmd in &all {
            let name = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string();
            for flag in ["format", "output", "quiet", "color"] {
                let arg = cmd.get_arguments().find(|a| a.get_long() == Some(flag));
                let na = NOT_APPLICABLE.iter().any(|(c, f, _)| *c == name && *f == flag);
                let missing = MISSING.iter().any(|(c, f)| *c == name && *f == flag);
                match arg {
                    Some(_) if na => panic!("{name} has --{flag}: drop it from NOT_APPLICABLE"),
                    Some(_) if missing => panic!("{name} has --{flag} now: drop it from MISSING"),
                    None if missing => missing_seen.push((name.clone(), flag)),
                    None if na => {}
                    None => panic!("{name} lacks --{flag}"),
                    Some(a) => {
                        if flag == "output" {
                            assert_eq!(a.get_short(), Some('o'), "{name}: --output is -o");
                            // A file; or a folder for the commands that write several files
                            // (`fleet plan -o DIR`: plan.json, run.sh, results/).
                            assert!(
                                matches!(a.get_value_names().map(|v| v[0].as_str()), Some("FILE" | "DIR")),
                                "{name}: -o FILE"
                            );
                        }
                        if flag == "quiet" {
                            assert_eq!(a.get_short(), Some('q'), "{name}: --quiet is -q");
                        }
                    }
                }
            }
        }
        assert_eq!(
            missing_seen.len(),
            MISSING.len(),
            "every MISSING entry names a real command"
        );
    }
}
