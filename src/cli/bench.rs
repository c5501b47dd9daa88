//! `nccltune bench`: parse and judge nccl-tests output; `bench plan` writes the runs; `bench
//! tune` turns a sweep into a tuner-plugin file.

use super::{NodeArgs, emit};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use nccltune::bench::{self, Options, plan, targets, tune};
use nccltune::outcome::Outcome;
use nccltune::parse::nccl_tests::{self, Run};
use nccltune::{output, render};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BenchFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
// The node flags only mean something with --from-node: refused without it, not ignored.
#[command(group(clap::ArgGroup::new("node_flags").args(["replay", "timeout"]).multiple(true).requires("from_node")))]
#[command(
    after_help = "Exit codes: 0 every judged size passed; 1 a size failed, data was wrong, a run failed or was cut \
off, or a size regressed beyond --tolerance; 2 the input is not nccl-tests output, or bad arguments."
)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub action: Option<BenchAction>,

    /// nccl-tests output files (text or `-J` JSON); `-` reads standard input.
    #[arg(long, value_name = "FILE", num_args = 1.., required = false)]
    pub parse: Vec<PathBuf>,

    #[arg(long, value_enum, default_value_t = BenchFormat::Table)]
    pub format: BenchFormat,

    /// The collective, when the output does not name it (e.g. all_reduce).
    #[arg(long)]
    pub collective: Option<String>,

    /// Built-in targets: h100x8-nvswitch, h100x8-ndr400, a100x8-hdr200.
    #[arg(long, conflicts_with_all = ["targets", "from_node"])]
    pub profile: Option<String>,

    /// Targets file (TOML: min_bytes, acceptable_fraction, [[target]] collective/busbw_gbps/source).
    #[arg(long, value_name = "FILE", conflicts_with = "from_node")]
    pub targets: Option<PathBuf>,

    /// Derive targets from this node (live, or --replay DIR): NICs x line rate across nodes,
    /// NVLink inside one.
    #[arg(long)]
    pub from_node: bool,

    #[command(flatten)]
    pub node: NodeArgs,

    /// Baseline run to compare against, size by size.
    #[arg(long, value_name = "FILE")]
    pub compare: Option<PathBuf>,

    /// Regression tolerance for --compare, in percent.
    #[arg(long, default_value_t = 5.0, value_name = "PCT")]
    pub tolerance: f64,

    /// Also draw busbw against size (one line per run, the target band) into FILE.svg.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BenchAction {
    /// Write a bash script of nccl-tests runs (sizes sweep, one large size, rails, optional sweep).
    Plan(PlanArgs),
    /// Turn sweep results into nccl_tuner.conf for NCCL's example tuner plugin.
    Tune(TuneArgs),
    /// Run an nccl-tests command (no shell), save its raw output, show progress per size, then
    /// judge it: `nccltune bench run --profile h100x8-ndr400 -- mpirun ... all_reduce_perf ...`.
    /// Ctrl-C, SIGTERM and SIGHUP are passed on to the command's process group; the sizes
    /// measured so far are still saved and judged (exit 128 + the signal).
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where to save the raw output (kept even when the run fails or is interrupted). A taken
    /// name is never replaced: the log becomes FILE's stem.1.log, .2.log, ... instead.
    #[arg(long, value_name = "FILE", default_value = "nccl-tests.log")]
    pub log: PathBuf,
    /// Wall-clock limit for the whole run, in seconds: then the command is stopped (SIGTERM,
    /// SIGKILL 10 s later) and the sizes measured so far are judged (exit 1).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Built-in targets to judge against.
    #[arg(long)]
    pub profile: Option<String>,
    #[arg(long, value_enum, default_value_t = BenchFormat::Table)]
    pub format: BenchFormat,
    /// The command and its arguments, after `--`.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LauncherArg {
    Local,
    Mpirun,
    Srun,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
    #[arg(long, default_value_t = 8)]
    pub gpus_per_node: u32,
    #[arg(long, value_enum, default_value_t = LauncherArg::Local)]
    pub launcher: LauncherArg,
    /// Comma-separated collectives.
    #[arg(long, value_delimiter = ',', default_value = "all_reduce")]
    pub collectives: Vec<String>,
    /// Folder with the nccl-tests binaries.
    #[arg(long, default_value = "./build")]
    pub bin_dir: String,
    /// Add one run per NCCL_ALGO x NCCL_PROTO for `bench tune`.
    #[arg(long)]
    pub sweep: bool,
    /// nccl-tests -T timeout per test, seconds.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub test_timeout: u32,
    /// Write the script to FILE (atomically) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Sweep results: text named `<coll>.<Algo>.<Proto>.txt` (as `bench plan --sweep` writes) or -J JSON.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write nccl_tuner.conf to FILE (atomically) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the choices and gains as JSON instead of the conf file.
    #[arg(long)]
    pub json: bool,
}

/// Reads one input: JSON when it starts with `{`, else streamed text.
fn read_runs(path: &Path) -> Result<(Vec<Run>, Option<serde_json::Value>)> {
    let name = path.display().to_string();
    let reader: Box<dyn Read> = if name == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("cannot read {name}"))?)
    };
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let starts_json = reader
        .fill_buf()
        .with_context(|| format!("reading {name}"))?
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        == Some(&b'{');
    if starts_json {
        let mut text = String::new();
        reader
            .read_to_string(&mut text)
            .with_context(|| format!("{name}: not UTF-8 JSON"))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{name}: invalid JSON"))?;
        let run = nccl_tests::parse_json(&text, &name)?;
        return Ok((vec![run], Some(value)));
    }
    Ok((
        nccl_tests::parse_reader(reader, &name).with_context(|| format!("reading {name}"))?,
        None,
    ))
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    for p in paths {
        let (r, _) = read_runs(p)?;
        if r.is_empty() {
            bail!(
                "{}: no nccl-tests output found (no `#  size count type ...` header, no data rows): pass the stdout of all_reduce_perf or its -J JSON",
                p.display()
            );
        }
        runs.extend(r);
    }
    Ok(runs)
}

pub fn run(args: BenchArgs) -> Result<Outcome> {
    match args.action {
        Some(BenchAction::Plan(p)) => return plan_cmd(p),
        Some(BenchAction::Tune(t)) => return tune_cmd(t),
        Some(BenchAction::Run(r)) => return run_cmd(r),
        None => {}
    }
    if args.parse.is_empty() {
        bail!("nothing to do: give --parse FILE... (nccl-tests output), or `bench plan` / `bench tune`");
    }
    if !(args.tolerance.is_finite() && args.tolerance >= 0.0 && args.tolerance < 100.0) {
        bail!(
            "--tolerance {}: expected a percentage between 0 and 100, e.g. 5",
            args.tolerance
        );
    }
    let runs = read_all(&args.parse)?;
    let targets = if let Some(name) = &args.profile {
        Some(targets::profile(name)?)
    } else if let Some(path) = &args.targets {
        let text = nccltune::input::read_text(path, &nccltune::input::TOML).context("--targets")?;
        Some(targets::parse_file(&text, &path.display().to_string())?)
    } else if args.from_node {
        let node = args.node.node_report()?;
        let multi = runs.iter().any(|r| {
            let mut h: Vec<&str> = r.devices.iter().map(|d| d.host.as_str()).collect();
            h.sort_unstable();
            h.dedup();
            h.len() > 1 || r.nranks.is_some_and(|n| n as usize > node.gpus.len().max(1))
        });
        Some(targets::from_node(&node, multi)?)
    } else {
        None
    };
    let baseline = args
        .compare
        .as_ref()
        .map(|p| read_all(std::slice::from_ref(p)))
        .transpose()?;
    let opts = Options {
        targets,
        collective: args.collective,
        baseline,
        tolerance: args.tolerance / 100.0,
    };
    let report = bench::judge(runs, &opts);
    let text = match args.format {
        BenchFormat::Table => render::bench::to_table(&report),
        BenchFormat::Json => render::json(&report)?,
        BenchFormat::Csv => render::bench::to_csv(&report),
    };
    emit(&text)?;
    if let Some(path) = &args.plot {
        output::write_atomic(path, render::plot::svg(&report).as_bytes())?;
        eprintln!("nccltune: wrote {}", path.display());
    }
    if report.verdict == "unknown" && opts.targets.is_none() && opts.baseline.is_none() {
        eprintln!("nccltune: no targets given: pass --profile, --targets or --from-node to judge bandwidth");
    }
    Ok(Outcome::from_failed(report.verdict == "fail"))
}

fn write_or_emit(path: Option<&Path>, text: &str) -> Result<()> {
    match path {
        Some(p) => {
            output::write_atomic(p, text.as_bytes())?;
            eprintln!("nccltune: wrote {}", p.display());
            Ok(())
        }
        None => emit(text),
    }
}

fn plan_cmd(p: PlanArgs) -> Result<Outcome> {
    if p.nodes == 0 || p.gpus_per_node == 0 {
        bail!("--nodes and --gpus-per-node must be at least 1");
    }
    for c in &p.collectives {
        if bench::busbw_factor(c, 2).is_none() {
            bail!(
                "--collectives {c}: unknown collective; expected e.g. all_reduce,all_gather,reduce_scatter,alltoall,broadcast,reduce,sendrecv"
            );
        }
    }
    let o = plan::PlanOptions {
        nodes: p.nodes,
        gpus_per_node: p.gpus_per_node,
        launcher: match p.launcher {
            LauncherArg::Local => plan::Launcher::Local,
            LauncherArg::Mpirun => plan::Launcher::Mpirun,
            LauncherArg::Srun => plan::Launcher::Srun,
        },
        collectives: p.collectives,
        bin_dir: p.bin_dir,
        sweep: p.sweep,
        timeout_s: p.test_timeout,
    };
    if o.launcher == plan::Launcher::Local && o.nodes > 1 {
        bail!(
            "--launcher local runs on one node; use mpirun or srun for --nodes {}",
            o.nodes
        );
    }
    write_or_emit(p.output.as_deref(), &plan::script(&o))?;
    Ok(Outcome::Ok)
}

fn tune_cmd(t: TuneArgs) -> Result<Outcome> {
    let mut sweep = Vec::new();
    for path in &t.files {
        let (runs, json) = read_runs(path)?;
        if runs.is_empty() {
            bail!("{}: no nccl-tests output found", path.display());
        }
        let env = |k: &str| {
            json.as_ref()
                .and_then(|v| v.pointer(&format!("/env/{k}")))
                .and_then(|x| x.as_str())
                .map(str::to_string)
        };
        let (algo, proto) = tune::choice_from(
            env("NCCL_ALGO").as_deref(),
            env("NCCL_PROTO").as_deref(),
            &path.display().to_string(),
        );
        for mut run in runs {
            if run.collective.is_none() {
                run.collective = bench::judge(vec![run.clone()], &Options::default())
                    .runs
                    .first()
                    .and_then(|r| r.run.collective.clone());
            }
            sweep.push(tune::SweepRun {
                run,
                algo: algo.clone(),
                proto: proto.clone(),
            });
        }
    }
    let choices = tune::tune(&sweep);
    if choices.is_empty() {
        bail!(
            "no run with a known NCCL_ALGO/NCCL_PROTO choice: name files <coll>.<Algo>.<Proto>.txt (as `bench plan --sweep` does) or pass -J JSON with the env recorded"
        );
    }
    for c in &choices {
        if let Some(g) = c.gain_pct {
            eprintln!(
                "{} {}..{} B: {}/{} {:+.1}% against the default",
                c.collective, c.min_bytes, c.max_bytes, c.algorithm, c.protocol, g
            );
        }
    }
    let text = if t.json {
        render::json(&choices)?
    } else {
        tune::to_conf(&choices)
    };
    write_or_emit(t.output.as_deref(), &text)?;
    Ok(Outcome::Ok)
}

fn run_cmd(r: RunArgs) -> Result<Outcome> {
    let mut opts = bench::run::RunOptions::new(r.command, r.log);
    opts.targets = r.profile.as_deref().map(targets::profile).transpose()?;
    if let Some(t) = r.timeout {
        if !(t.is_finite() && t > 0.0 && t <= 30.0 * 86_400.0) {
            bail!("--timeout {t}: expected seconds between 0 and 2592000 (30 days), e.g. --timeout 3600");
        }
        opts.timeout = Some(std::time::Duration::from_secs_f64(t));
    }
    // Progress and notes go to stderr without panicking: after SIGHUP the terminal is gone,
    // and the log and the report still have to be finished.
    let note = |line: &str| {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "nccltune: {line}");
    };
    let result = bench::run::run(&opts, &mut |size, busbw| {
        note(&format!(
            "size {size:>12} B  busbw {:>8} GB/s",
            busbw.map_or("-".into(), |b| format!("{b:.2}"))
        ))
    })
    .context("bench run")?;
    if let Some(report) = &result.report {
        let text = match r.format {
            BenchFormat::Table => render::bench::to_table(report),
            BenchFormat::Json => render::json(report)?,
            BenchFormat::Csv => render::bench::to_csv(report),
        };
        // An interrupted run's results matter more than a closed stdout.
        let _ = emit(&text);
    }
    for m in result.messages() {
        note(&m);
    }
    match result.exit_code() {
        0 => Ok(Outcome::Ok),
        1 => Ok(Outcome::No),
        2 => Ok(Outcome::Error),
        // Interrupted: 128 + the signal, which `Outcome` has no word for.
        code => std::process::exit(i32::from(code)),
    }
}
