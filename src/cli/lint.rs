//! `nccltune lint`: check env files, job scripts and NCCL config files, or (with no file) the
//! process environment plus the config files NCCL itself reads, in NCCL's precedence order.

use super::{NodeArgs, emit};
use anyhow::Result;
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

/// How to read a file, overriding detection from its content and name.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReadAs {
    Shell,
    Dotenv,
    NcclConf,
    Yaml,
    Dockerfile,
}

impl From<ReadAs> for envfile::Syntax {
    fn from(r: ReadAs) -> Self {
        match r {
            ReadAs::Shell => envfile::Syntax::Shell,
            ReadAs::Dotenv => envfile::Syntax::Dotenv,
            ReadAs::NcclConf => envfile::Syntax::NcclConf,
            ReadAs::Yaml => envfile::Syntax::Yaml,
            ReadAs::Dockerfile => envfile::Syntax::Dockerfile,
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 clean (warnings allowed unless --strict); 1 an error finding; 2 unreadable input.\n\
With no FILE: the environment, then $NCCL_CONF_FILE (else ~/.nccl.conf), then /etc/nccl.conf, as NCCL reads them."
)]
pub struct LintArgs {
    /// Env files (`export A=b`, dotenv), job scripts (`mpirun -x A=b`, `srun --export=`),
    /// Dockerfiles, Kubernetes YAML, or nccl.conf files. The format is read from the content.
    pub files: Vec<PathBuf>,

    /// Read every FILE in this format instead of detecting it.
    #[arg(long = "as", value_enum, value_name = "FORMAT")]
    pub read_as: Option<ReadAs>,

    #[arg(long, value_enum, default_value_t = LintFormat::Table)]
    pub format: LintFormat,

    /// Treat warnings as errors (exit 1).
    #[arg(long)]
    pub strict: bool,

    /// Write the report to FILE atomically instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,

    /// NCCL version to judge against (default: the installed one, with --facts or --replay).
    #[arg(long, value_name = "X.Y.Z")]
    pub nccl_version: Option<String>,

    /// Check against this node's facts (live); implied by --replay DIR.
    #[arg(long)]
    pub facts: bool,

    #[command(flatten)]
    pub node: NodeArgs,
}

/// Reads one file (bounded) in the given or detected format; returns the settings and the label
/// naming the file and how it was read.
fn read(path: &std::path::Path, read_as: Option<ReadAs>) -> Result<(Vec<envfile::Assignment>, lint::ReadAs)> {
    let text = lint::read_bounded(path)?;
    let name = path.display().to_string();
    let syntax = read_as.map_or_else(|| envfile::detect(&text, &name), envfile::Syntax::from);
    let set = envfile::parse(&text, &name, syntax)?;
    Ok((
        set,
        lint::ReadAs {
            source: name,
            format: syntax.label().to_string(),
        },
    ))
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
    let (sources, labels, problems) = if precedence {
        let s = lint::process_sources_checked()?;
        (s.sets, None, s.problems)
    } else {
        let mut sets = Vec::new();
        let mut labels = Vec::new();
        for p in &args.files {
            let (set, label) = read(p, args.read_as)?;
            sets.push(set);
            labels.push(label);
        }
        (sets, Some(labels), Vec::new())
    };
    let mut report = lint::lint(&sources, vkey.as_deref(), node.as_ref(), precedence);
    report.add(problems);
    if let Some(labels) = labels {
        // Every file given, even one without a setting, is a source that was checked.
        report.sources = labels.iter().map(|l| l.source.clone()).collect();
        report.read_as = labels;
    }
    let text = match args.format {
        LintFormat::Table => render::lint::to_table(&report),
        LintFormat::Json => render::json(&report)?,
        LintFormat::Sarif => render::lint_machine::to_sarif(&report, &render::meta::Meta::now()),
        LintFormat::Junit => render::lint_machine::to_junit(&report, args.strict, &render::meta::Meta::now()),
    };
    match &args.output {
        Some(p) => nccltune::output::write_atomic(p, text.as_bytes())?,
        None => emit(&text)?,
    }
    // When the report is not on standard output (--quiet, -o FILE), the summary line is on
    // standard error, as verify's always is: a script keeps the exit code and this line.
    if super::quiet() || args.output.is_some() {
        super::note("nccltune lint: ", &render::lint::summary(&report));
    }
    Ok(Outcome::from_failed(report.failed(args.strict)))
}
