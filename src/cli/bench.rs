//! `nccltune bench`: parse and judge nccl-tests output; `bench plan` writes the runs; `bench
//! tune` turns a sweep into a tuner-plugin file.

use super::{NodeArgs, emit};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use nccltune::bench::{self, Options, plan, targets, tune};
use nccltune::outcome::Outcome;
use nccltune::parse::nccl_tests::{self, Run};
use nccltune::render::bench_stream::{BenchStream, StreamFormat};
use nccltune::{output, render};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BenchFormat {
    Table,
    Json,
    Csv,
    /// JSON Lines: one run per line, then a summary line.
    Jsonl,
    /// Prometheus text (node_exporter textfile): busbw per run, collective and size, the
    /// state of each size, the verdict. Built from the whole report (not streamed).
    Prometheus,
    /// JUnit XML: a case per run and size, a case per finding. Built from the whole report.
    Junit,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TuneFormat {
    /// nccl_tuner.conf for NCCL's example tuner plugin.
    Conf,
    /// The choices and gains as JSON.
    Json,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
// The node flags only mean something with --from-node: refused without it, not ignored.
#[command(group(clap::ArgGroup::new("node_flags").args(["replay", "timeout"]).multiple(true).requires("from_node")))]
#[command(
    after_help = "Exit codes: 0 every judged size passed (or nothing could be judged: verdict unknown); 1 a size \
failed, data was wrong, a run failed or was cut off, the targets do not fit the run, a size regressed beyond \
--tolerance, or an input file could not be read (the others are still judged); 2 no input could be read, or bad \
arguments."
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

    /// Targets file (TOML: min_bytes, acceptable_fraction, [[target]] collective/busbw_gbps/source;
    /// optional scope intra-node/multi-node, gpu (A100, H100, ...) and gpus_per_node, which a run
    /// must fit or it is a targets-mismatch error).
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

    /// Nodes the run used, when the log does not say (or to override it).
    #[arg(long, value_name = "N")]
    pub nodes: Option<u32>,

    /// Ranks (GPUs) per node, when the log does not say.
    #[arg(long, value_name = "R")]
    pub ranks_per_node: Option<u32>,

    /// NICs per node that carry NCCL traffic, for judging multi-node runs (with --nic-gbps).
    #[arg(long, value_name = "N", requires = "nic_gbps")]
    pub nics: Option<u32>,

    /// Line rate of each of those NICs in Gb/s (400 for NDR, 200 for HDR).
    #[arg(long, value_name = "G", requires = "nics")]
    pub nic_gbps: Option<f64>,

    /// Print every run's table; by default a log of many runs is summarised per
    /// (collective, ranks, hosts) group, with each repeated finding once and its count.
    #[arg(long)]
    pub runs: bool,

    /// Also draw busbw against size (one line per run, the target band) into FILE.svg.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// Write the report to FILE (atomically: complete or not at all) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
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
    /// Write the report to FILE (atomically) instead of standard output; the raw log still
    /// goes to --log.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
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
    /// The nodes have NVSwitch and Hopper or newer GPUs (`nccltune verify` shows it): the sweep
    /// also tries NVLS, and NVLSTree across nodes.
    #[arg(long, requires = "sweep")]
    pub nvls: bool,
    /// The fabric has in-network reduction (SHARP) and NCCL's CollNet plugin: the sweep also
    /// tries CollnetDirect and CollnetChain.
    #[arg(long, requires = "sweep")]
    pub collnet: bool,
    /// Decide --nvls from this node (or --replay DIR): NVSwitch present and Hopper or newer GPUs.
    #[arg(long, requires = "sweep")]
    pub from_node: bool,
    /// The node --from-node reads (`--replay DIR`, `--timeout`); refused without --from-node.
    #[command(flatten)]
    pub node: NodeArgs,
    /// nccl-tests -T timeout per test, seconds.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub test_timeout: u32,
    /// Write the script to FILE (atomically) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 every swept size range has a line; 1 some range has none (listed as UNCOVERED: \
NCCL's example plugin runs those calls on one channel); 2 unreadable input or no usable sweep."
)]
pub struct TuneArgs {
    /// Sweep results: text named `<coll>.<Algo>.<Proto>.txt` (as `bench plan --sweep` writes) or -J JSON.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write nccl_tuner.conf to FILE (atomically) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = TuneFormat::Conf)]
    pub format: TuneFormat,
    /// The same as --format json (kept for scripts written before --format).
    #[arg(long, hide = true, conflicts_with = "format")]
    pub json: bool,
    /// Write -1 for nNodes and nRanks, so the lines also apply to other communicator shapes
    /// (by default they match only the node and rank count that was measured).
    #[arg(long)]
    pub any_shape: bool,
}

/// The largest `-J` file read (a sweep of every size, type and op is a few MiB).
const MAX_JSON_BYTES: u64 = 256 << 20;

/// Reads one input whole: its runs from `stream_runs`.
fn read_runs(path: &Path) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    stream_runs(path, &mut |r| {
        runs.push(r);
        Ok(())
    })?;
    Ok(runs)
}

/// A `-J` file, whole (at most `MAX_JSON_BYTES`).
fn read_json(reader: impl Read, name: &str) -> Result<Run> {
    {
        let mut bytes = Vec::new();
        reader
            .take(MAX_JSON_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {name}"))?;
        if bytes.len() as u64 > MAX_JSON_BYTES {
            bail!(
                "{name}: larger than {} MiB: not an nccl-tests -J file",
                MAX_JSON_BYTES >> 20
            );
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{name}: not UTF-8 at byte {}: not an nccl-tests -J file",
                e.utf8_error().valid_up_to()
            )
        })?;
        nccl_tests::parse_json(&text, name)
    }
}

/// Reads every input on its own: a file that cannot be read, is empty or holds no nccl-tests
/// output is an error for that file, and the others are still judged. Fails only when no
/// file could be read at all.
/// Inputs that could not be read: (source, why).
type InputErrors = Vec<(String, String)>;

fn read_each(paths: &[PathBuf]) -> Result<(Vec<Run>, InputErrors)> {
    let mut runs = Vec::new();
    let mut bad = Vec::new();
    for p in paths {
        let name = p.display().to_string();
        match read_runs(p) {
            Ok(r) if r.is_empty() => bad.push((
                name.clone(),
                format!(
                    "{name}: no nccl-tests output found (empty, or no `#  size count type ...` header and no data rows): pass the stdout of all_reduce_perf or its -J JSON"
                ),
            )),
            Ok(r) => runs.extend(r),
            Err(e) => bad.push((name, format!("{e:#}"))),
        }
    }
    if runs.is_empty() {
        bail!(
            "{}",
            bad.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>().join("\n")
        );
    }
    Ok((runs, bad))
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<Run>> {
    let (runs, bad) = read_each(paths)?;
    if let Some((_, e)) = bad.first() {
        bail!("{e}");
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
    for (flag, v) in [
        ("--nodes", args.nodes),
        ("--ranks-per-node", args.ranks_per_node),
        ("--nics", args.nics),
    ] {
        if v.is_some_and(|v| v == 0 || v > 1_000_000) {
            bail!(
                "{flag} {}: expected a count between 1 and 1000000",
                v.unwrap_or(0)
            );
        }
    }
    if args
        .nic_gbps
        .is_some_and(|g| !(g.is_finite() && g > 0.0 && g <= 100_000.0))
    {
        bail!(
            "--nic-gbps {}: expected a line rate in Gb/s, e.g. 400 for NDR",
            args.nic_gbps.unwrap_or(0.0)
        );
    }
    let mut overrides = bench::infer::InferOptions {
        nodes: args.nodes,
        ranks_per_node: args.ranks_per_node,
        nics: match (args.nics, args.nic_gbps) {
            (Some(count), Some(gbps)) => Some(bench::infer::NicsGiven {
                count,
                gbps,
                from: "--nics/--nic-gbps".into(),
            }),
            _ => None,
        },
    };
    if overrides.nics.is_none() && args.node.replay.is_some() && !args.from_node {
        let node = args.node.node_report()?;
        if let Some((count, gbps)) = targets::rails_of(&node) {
            overrides.nics = Some(bench::infer::NicsGiven {
                count,
                gbps,
                from: format!("the node report ({})", node.source),
            });
        }
    }
    let stream_format = match args.format {
        BenchFormat::Table => Some(StreamFormat::Table { every_run: args.runs }),
        BenchFormat::Json => Some(StreamFormat::Json),
        BenchFormat::Jsonl => Some(StreamFormat::Jsonl),
        BenchFormat::Csv => Some(StreamFormat::Csv),
        BenchFormat::Prometheus | BenchFormat::Junit => None,
    };
    // Streamed unless something needs every run at once: the plot, the machine formats (their
    // families and totals come first), or --from-node deciding single/multi-node from all runs.
    let needs_all =
        stream_format.is_none() || args.plot.is_some() || (args.from_node && args.nodes.is_none());
    let early_runs = if needs_all {
        Some(read_each(&args.parse)?)
    } else {
        None
    };
    let targets = if let Some(name) = &args.profile {
        Some(targets::profile(name)?)
    } else if let Some(t) = configured_profile(
        args.targets.is_some() || args.from_node || args.nics.is_some() || args.node.replay.is_some(),
    )? {
        Some(t)
    } else if let Some(path) = &args.targets {
        let text = nccltune::input::read_text(path, &nccltune::input::TOML).context("--targets")?;
        Some(targets::parse_file(&text, &path.display().to_string())?)
    } else if args.from_node {
        let node = args.node.node_report()?;
        let multi = args.nodes.map_or_else(
            || {
                early_runs.as_ref().is_some_and(|(runs, _)| {
                    runs.iter().any(|r| {
                        let mut h: Vec<&str> = r.devices.iter().map(|d| &*d.host).collect();
                        h.sort_unstable();
                        h.dedup();
                        h.len() > 1 || r.nranks.is_some_and(|n| n as usize > node.gpus.len().max(1))
                    })
                })
            },
            |n| n > 1,
        );
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
    if let (Some(format), None) = (stream_format, &early_runs) {
        return stream_parse(&args.parse, format, args.output.as_deref(), &opts, &overrides);
    }
    let (runs, input_errors) = early_runs.unwrap_or_default();
    let report = bench::judge_inputs(runs, &input_errors, &opts, &overrides);
    let text = report_text(&report, args.format, args.runs)?;
    write_or_emit(args.output.as_deref(), &text)?;
    if let Some(path) = &args.plot {
        output::write_atomic(path, render::plot::svg(&report).as_bytes())?;
        eprintln!("nccltune: wrote {}", path.display());
    }
    Ok(Outcome::from_failed(report.verdict == "fail"))
}

/// A whole report in `format`.
fn report_text(report: &bench::BenchReport, format: BenchFormat, every_run: bool) -> Result<String> {
    Ok(match format {
        BenchFormat::Table if !every_run && report.runs.len() >= render::bench::SUMMARY_MIN_RUNS => {
            render::bench::to_summary_table(report)
        }
        BenchFormat::Table => render::bench::to_table(report),
        BenchFormat::Json => render::json(report)?,
        BenchFormat::Csv => render::bench::to_csv(report),
        BenchFormat::Jsonl => {
            let mut v = Vec::new();
            render::bench::write_jsonl(report, &mut v)?;
            String::from_utf8_lossy(&v).into_owned()
        }
        BenchFormat::Prometheus => render::bench_machine::to_prometheus(report),
        BenchFormat::Junit => render::bench_machine::to_junit(report, &render::meta::Meta::now()),
    })
}

/// Where a streamed report goes: standard output (buffered), nowhere (`--quiet`), or the
/// temporary file of `-o`, renamed over FILE once the report is complete.
enum Sink {
    Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>),
    Null,
    File(output::AtomicFile),
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Stdout(w) => w.write(buf),
            Sink::Null => Ok(buf.len()),
            Sink::File(f) => f.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout(w) => w.write_all(buf),
            Sink::Null => Ok(()),
            Sink::File(f) => f.write_all(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::Null => Ok(()),
            Sink::File(f) => f.flush(),
        }
    }
}

fn write_context(output_path: Option<&Path>) -> String {
    match output_path {
        Some(p) => format!("cannot write {}", p.display()),
        None => "cannot write the report to standard output".into(),
    }
}

/// `bench --parse` as a stream: each run is judged and written as soon as the parser ends
/// it, so memory stays flat whatever the length of the logs (see `render::bench_stream`).
/// Unreadable inputs are judged after the runs, as in the whole report. Nothing is written
/// when no input could be read (exit 2). A closed pipe ends the parse quietly.
fn stream_parse(
    paths: &[PathBuf],
    format: StreamFormat,
    output_path: Option<&Path>,
    opts: &Options,
    overrides: &bench::infer::InferOptions,
) -> Result<Outcome> {
    let sink = match output_path {
        Some(p) => Sink::File(output::AtomicFile::create(p)?),
        None if super::QUIET.load(std::sync::atomic::Ordering::Relaxed) => Sink::Null,
        None => Sink::Stdout(std::io::BufWriter::with_capacity(
            1 << 16,
            std::io::stdout().lock(),
        )),
    };
    let mut stream = BenchStream::new(format, sink, render::table::Layout::from_env());
    let mut judge = bench::Judge::new(opts, overrides);
    let mut bad: InputErrors = Vec::new();
    let mut write_error: Option<std::io::Error> = None;
    for p in paths {
        let name = p.display().to_string();
        let result = stream_runs(p, &mut |run| {
            let judged = judge.run(run);
            stream.run(judged).map_err(|e| {
                write_error = Some(e);
                std::io::Error::other("the report could not be written")
            })
        });
        if write_error.is_some() {
            break;
        }
        match result {
            Ok(0) => bad.push((
                name.clone(),
                format!(
                    "{name}: no nccl-tests output found (empty, or no `#  size count type ...` header and no data rows): pass the stdout of all_reduce_perf or its -J JSON"
                ),
            )),
            Ok(_) => {}
            Err(e) => bad.push((name, format!("{e:#}"))),
        }
    }
    let outcome = |judge: &bench::Judge| Outcome::from_failed(judge.verdict() == "fail");
    if let Some(e) = write_error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(outcome(&judge));
        }
        return Err(e).context(write_context(output_path));
    }
    if judge.count() == 0 {
        bail!(
            "{}",
            bad.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>().join("\n")
        );
    }
    let mut result = Ok(());
    for (source, why) in &bad {
        let judged = judge.input_error(source, why);
        result = stream.run(judged);
        if result.is_err() {
            break;
        }
    }
    match result.and_then(|_| stream.finish(judge.verdict())) {
        Ok(Sink::File(f)) => {
            f.commit()?;
            if let Some(p) = output_path {
                eprintln!("nccltune: wrote {}", p.display());
            }
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context(write_context(output_path)),
    }
    Ok(outcome(&judge))
}

/// Streams one input's runs to `on_run`: `-J` JSON (one run) when it starts with `{`, else
/// text, run by run. Returns the number of runs.
fn stream_runs(path: &Path, on_run: &mut dyn FnMut(Run) -> std::io::Result<()>) -> Result<usize> {
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
        let run = read_json(reader, &name)?;
        on_run(run)?;
        return Ok(1);
    }
    nccl_tests::stream_reader(reader, &name, on_run).with_context(|| format!("reading {name}"))
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
    if !p.from_node && (p.node.replay.is_some() || p.node.timeout.is_some()) {
        anyhow::bail!(
            "bench plan: --replay and --timeout apply to --from-node; add --from-node or drop them"
        );
    }
    let node_args = &p.node;
    for c in &p.collectives {
        if bench::busbw_factor(c, 2).is_none() {
            bail!(
                "--collectives {c}: unknown collective; expected e.g. all_reduce,all_gather,reduce_scatter,alltoall,broadcast,reduce,sendrecv"
            );
        }
    }
    // Absolute, because the script changes into its output folder and remote ranks start in
    // other folders: a relative ./build would point nowhere there.
    let bin_dir = std::path::absolute(&p.bin_dir)
        .with_context(|| format!("--bin-dir {}: cannot make it absolute", p.bin_dir))?;
    if !bin_dir.is_dir() {
        eprintln!(
            "nccltune: warning: --bin-dir {} does not exist here; the script checks again where it runs",
            bin_dir.display()
        );
    }
    let bin_dir = bin_dir
        .to_str()
        .with_context(|| format!("--bin-dir {}: not UTF-8", bin_dir.display()))?
        .to_string();
    let mut nvls = p.nvls;
    if p.from_node {
        // NVLS needs NVSwitch and Hopper or newer GPUs (verify's rules, NCCL docs NCCL_NVLS_ENABLE).
        let node = node_args.node_report()?;
        let hopper = !node.gpus.is_empty() && node.gpus.iter().all(nccltune::hw::is_hopper_or_newer);
        let detected = nccltune::hw::nvls_capable(&node);
        eprintln!(
            "nccltune: {}: NVSwitch {}, GPUs {}Hopper or newer: NVLS {}in the sweep",
            node.source,
            match node.nvswitch.present {
                Some(true) => "present",
                Some(false) => "absent",
                None => "unknown",
            },
            if hopper { "" } else { "not " },
            if detected || nvls { "" } else { "not " }
        );
        nvls |= detected;
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
        bin_dir,
        sweep: p.sweep,
        nvls,
        collnet: p.collnet,
        timeout_s: p.test_timeout,
    };
    plan::validate(&o).map_err(anyhow::Error::msg)?;
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
        let runs = read_runs(path)?;
        if runs.is_empty() {
            bail!("{}: no nccl-tests output found", path.display());
        }
        for mut run in runs {
            if run.collective.is_none() {
                run.collective = bench::judge(vec![run.clone()], &Options::default())
                    .runs
                    .first()
                    .and_then(|r| r.run.collective.clone());
            }
            match tune::choice_of(&run) {
                Ok((algo, proto)) => sweep.push(tune::SweepRun { run, algo, proto }),
                Err(e) => eprintln!("nccltune: warning: {}: {e}; the run is left out", run.source),
            }
        }
    }
    if !sweep.iter().any(|r| r.algo.is_some() && r.proto.is_some()) {
        bail!(
            "no run with a known NCCL_ALGO and NCCL_PROTO: name text files <coll>.<Algo>.<Proto>.txt (as `bench plan --sweep` does) or pass -J JSON, whose env records them"
        );
    }
    let result = tune::tune(
        &sweep,
        &tune::TuneOptions {
            any_shape: t.any_shape,
        },
    )
    .map_err(anyhow::Error::msg)?;
    eprintln!("nccltune: {}", result.noise_method);
    for l in &result.lines {
        match l.gain_pct {
            Some(g) => eprintln!(
                "nccltune: {} {}..{} B: {}/{} {:+.1}% against the default (noise {:.1}%)",
                l.collective, l.min_bytes, l.max_bytes, l.algorithm, l.protocol, g, l.noise_pct
            ),
            None => eprintln!(
                "nccltune: {} {}..{} B: {}/{} is NCCL's own choice (no choice beat it beyond the noise)",
                l.collective, l.min_bytes, l.max_bytes, l.algorithm, l.protocol
            ),
        }
    }
    for w in &result.warnings {
        eprintln!("nccltune: warning: {w}");
    }
    for u in &result.uncovered {
        eprintln!(
            "nccltune: WARNING: {} {}..{} B has no line, so NCCL's example plugin runs it on ONE channel (it sets nChannels=1 for unmatched calls): {}",
            u.collective, u.min_bytes, u.max_bytes, u.why
        );
    }
    let text = if t.json || matches!(t.format, TuneFormat::Json) {
        render::json(&result)?
    } else {
        tune::to_conf(&result)
    };
    write_or_emit(t.output.as_deref(), &text)?;
    Ok(Outcome::from_failed(!result.uncovered.is_empty()))
}

/// The configured `bench_profile` (`nccltune config`), when no flag chose the targets
/// (`overridden`: `--targets`, `--from-node`, `--nics` or `--replay` was given: a flag beats the
/// configuration). A bad name says where it was set.
fn configured_profile(overridden: bool) -> Result<Option<targets::Targets>> {
    if overridden {
        return Ok(None);
    }
    let p = &super::settings()?.bench_profile;
    match &p.value {
        Some(name) => targets::profile(name)
            .map(Some)
            .with_context(|| super::config::label("bench_profile", &p.from)),
        None => Ok(None),
    }
}

fn run_cmd(r: RunArgs) -> Result<Outcome> {
    let mut opts = bench::run::RunOptions::new(r.command, r.log);
    opts.targets = match r.profile.as_deref() {
        Some(name) => Some(targets::profile(name)?),
        None => configured_profile(false)?,
    };
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
        let text = report_text(report, r.format, true)?;
        match &r.output {
            Some(p) => match output::write_atomic(p, text.as_bytes()) {
                Ok(()) => note(&format!("wrote {}", p.display())),
                // The run is over and its log saved: say so, and still give its exit code.
                Err(e) => note(&format!("error: {e:#}")),
            },
            // An interrupted run's results matter more than a closed stdout.
            None => {
                let _ = emit(&text);
            }
        }
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
