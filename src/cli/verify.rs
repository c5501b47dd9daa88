//! `nccltune verify`: judge this node (or a capture) and optionally an NCCL debug log; print
//! the checks as a table, JSON, Prometheus text or JUnit XML; exit 0/1/2.

use super::{NodeArgs, emit};
use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use nccltune::outcome::Outcome;
use nccltune::render;
use nccltune::verify::{self, Expectations, VerifyOptions};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum VerifyFormat {
    Table,
    Json,
    /// Text exposition for node_exporter's textfile collector.
    Prometheus,
    /// JUnit XML, one test case per check.
    Junit,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes:\n  0  no check failed (warnings allowed unless --strict)\n  1  a check failed (or, with --strict, warned), or required evidence was not seen\n  2  verify could not run (bad flag, unreadable --expect/--nccl-log file, bad capture)\n\nA one-line summary goes to stderr; stdout carries only the report."
)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub node: NodeArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = VerifyFormat::Table)]
    pub format: VerifyFormat,

    /// Expected GPU count (overrides the expectations file).
    #[arg(long, value_name = "N")]
    pub expect_gpus: Option<u32>,

    /// Expectations file (TOML): GPU count and NVLink, RDMA ports with rate and link layer,
    /// golden versions, thresholds [default: `expect` of `nccltune config`].
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,

    /// Write expectations from this node to FILE (atomically), then verify against them.
    #[arg(long, value_name = "FILE", conflicts_with = "expect")]
    pub write_expect: Option<PathBuf>,

    /// Output of an NCCL run with NCCL_DEBUG=INFO (any launcher prefix): adds the "NCCL run
    /// evidence" checks.
    #[arg(long, value_name = "FILE")]
    pub nccl_log: Option<PathBuf>,

    /// Evidence groups that must be seen: a check of these groups that could not see fails
    /// (exit 1) instead of being skipped. Comma-separated: gpu, nvlink, rdma, gpudirect, pcie,
    /// software. `--expect-gpus` implies gpu; expected ports imply rdma.
    #[arg(long, value_name = "GROUPS", value_delimiter = ',', value_parser = parse_group)]
    pub require: Vec<verify::Group>,

    /// Warnings fail too (exit 1).
    #[arg(long)]
    pub strict: bool,

    /// Write the report to FILE atomically instead of stdout (for the textfile collector).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: VerifyArgs) -> Result<Outcome> {
    // Read the inputs first: a bad file is exit 2 before any probe runs.
    // --expect, else the configured default (`nccltune config`); --write-expect replaces both.
    let expect = match (&args.expect, &args.write_expect) {
        (Some(p), _) => Some((p.clone(), "--expect".to_string())),
        (None, None) => {
            let e = &super::settings()?.expect;
            e.value
                .clone()
                .map(|p| (p, super::config::label("expect", &e.from)))
        }
        (None, Some(_)) => None,
    };
    let mut expectations = match &expect {
        Some((p, flag)) => {
            let text =
                nccltune::input::read_text(p, &nccltune::input::CONFIG.named("a TOML expectations file"))
                    .with_context(|| flag.clone())?;
            Some(Expectations::parse(&text, &p.display().to_string())?)
        }
        None => None,
    };
    let nccl_log = match &args.nccl_log {
        Some(p) => {
            let text =
                nccltune::input::read_text_lossy(p, &nccltune::input::LOG.named("an NCCL_DEBUG=INFO log"))
                    .context("--nccl-log")?;
            Some((p.display().to_string(), nccltune::parse::nccl_log::parse(&text)))
        }
        None => None,
    };
    let node = args.node.node_report()?;
    if let Some(path) = &args.write_expect {
        let e = Expectations::from_node(&node);
        let origin = format!(
            "{} ({}) at {}",
            node.hostname.as_deref().unwrap_or("unknown host"),
            node.source,
            nccltune::output::utc_now_rfc3339()
        );
        nccltune::output::write_atomic(path, e.to_toml(&origin)?.as_bytes())?;
        eprintln!("nccltune: wrote expectations to {}", path.display());
        expectations = Some(e);
    }
    // The environment NCCL would see here: only meaningful when verifying this node live.
    let lint = if args.node.replay.is_none() {
        let sources = nccltune::lint::process_sources()?;
        let version = node.versions.nccl.as_deref().map(nccltune::parse::version_key);
        Some(nccltune::lint::lint(
            &sources,
            version.as_deref(),
            Some(&node),
            true,
        ))
    } else {
        None
    };
    let opts = VerifyOptions {
        expect_gpus: args.expect_gpus,
        expectations,
        require: args.require,
        nccl_log,
        strict: args.strict,
        lint,
    };
    let report = verify::run(&node, &opts)?;
    let text = match args.format {
        VerifyFormat::Table => render::verify::to_table(&report),
        VerifyFormat::Json => render::json(&report)?,
        VerifyFormat::Prometheus => render::verify::to_prometheus(&report),
        VerifyFormat::Junit => render::verify::to_junit(&report),
    };
    match &args.output {
        Some(p) => nccltune::output::write_atomic(p, text.as_bytes())?,
        None => emit(&text)?,
    }
    let line = report.summary_line();
    match line.strip_prefix("nccltune verify: ") {
        Some(rest) => super::note("nccltune verify: ", rest),
        None => super::note("", &line),
    }
    Ok(report.outcome())
}

fn parse_group(s: &str) -> Result<verify::Group, String> {
    verify::Group::parse(s).ok_or_else(|| {
        format!("unknown group `{s}`: expected gpu, nvlink, rdma, gpudirect, pcie or software")
    })
}
