//! `nccltune fleet`: argument translation only; the work is in `nccltune::fleet`.

use super::emit;
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use nccltune::fleet::{self, merge::MergeOptions, model::Status, plan, render, rounds, simulate};
use nccltune::outcome::Outcome;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(
    after_help = "The round trip: `fleet plan ... -o DIR` writes DIR/plan.json and DIR/run.sh; `bash DIR/run.sh` runs the round \
through the engine and writes DIR/results/; `fleet next DIR` writes the next round (or removes run.sh when nothing is left); \
`fleet merge DIR` prints the fleet result.\n\nExit codes: 0 ok (merge: every node ok); 1 merge found nodes that are not ok; 2 could not run."
)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Plan the first round for a set of nodes and write DIR/plan.json and DIR/run.sh.
    Plan(Box<PlanArgs>),
    /// Read DIR's results and write the next round as DIR/run.sh (removed when nothing is left).
    Next(NextArgs),
    /// Merge DIR's results into the fleet result (fleet.json with --format json).
    Merge(MergeArgs),
    /// Print a readable summary of a fleet.json.
    Report(ReportArgs),
    /// Run the isolation model without a cluster: tests and rounds needed, nodes found.
    Simulate(SimulateArgs),
    /// Turn NCCLTUNE-RESULT lines of a combined log (Kubernetes pods, launchers without shared
    /// storage) into DIR's result files.
    Unpack(UnpackArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckArg {
    Verify,
    Pairs,
    Groups,
    Rails,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LauncherArg {
    Srun,
    Sbatch,
    Mpirun,
    Pdsh,
    Clush,
    Kubernetes,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Nodes in Slurm/ClusterShell node-set syntax, e.g. gpu[001-512,600].
    #[arg(long, value_name = "SET", conflicts_with_all = ["nodes_file", "from_slurm"])]
    pub nodes: Option<String>,
    /// File with one node set per line (# comments).
    #[arg(long, value_name = "FILE", conflicts_with = "from_slurm")]
    pub nodes_file: Option<PathBuf>,
    /// Read the nodes from Slurm (`sinfo -h -N -o %N`).
    #[arg(long)]
    pub from_slurm: bool,
    /// Slurm partition: for --from-slurm and the srun/sbatch lines.
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// Checks, comma-separated: verify, and one of pairs, groups or rails.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "verify")]
    pub check: Vec<CheckArg>,
    #[arg(long, value_enum, default_value_t = LauncherArg::Srun)]
    pub launcher: LauncherArg,
    /// Words appended to each verify command; {node} becomes the node's name
    /// (e.g. '--expect golden.toml' or '--replay caps/{node}').
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub check_args: Option<String>,
    /// The nccltune binary as the nodes see it.
    #[arg(long, value_name = "PATH", default_value = "nccltune")]
    pub nccltune: String,
    /// Folder with nccl-tests' all_reduce_perf on the nodes.
    #[arg(long, value_name = "DIR", default_value = "/usr/local/bin")]
    pub nccl_tests_bin: String,
    /// Built-in target profile for the multi-node tests (see `bench --help`).
    #[arg(long, value_name = "NAME", conflicts_with = "targets")]
    pub profile: Option<String>,
    /// Targets file (TOML, as for `bench --targets`).
    #[arg(long, value_name = "FILE")]
    pub targets: Option<PathBuf>,
    /// Deadline of each test, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
    /// Seed of the pairing and grouping.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Processes (GPUs) per node in the multi-node tests.
    #[arg(long, default_value_t = 8)]
    pub gpus_per_node: u32,
    /// Message size of the multi-node tests, bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 30)]
    pub size: u64,
    /// Failed confirmation tests with known-good partners that make a node bad.
    #[arg(long, default_value_t = 2)]
    pub confirm: u32,
    /// Rounds in all (default: 3 multi-node rounds for pairs, more for groups, plus verify).
    #[arg(long)]
    pub rounds: Option<u32>,
    /// HCAs for --check rails, comma-separated (mlx5_0 or mlx5_0:1): one pair test per rail,
    /// each pinned to that HCA with NCCL_IB_HCA==<rail>.
    #[arg(long, value_name = "HCA,...", value_delimiter = ',')]
    pub rails: Vec<String>,
    /// Target busbw of a one-rail test, GB/s (default: the pair target / number of rails).
    #[arg(long, value_name = "GBPS")]
    pub rail_target: Option<f64>,
    /// Nodes per screening group for --check groups (default about the square root of N).
    #[arg(long, default_value_t = 0)]
    pub group_size: usize,
    /// Topology for group screening: Slurm topology.conf, or a CSV of node,group (leaf/rack).
    #[arg(long, value_name = "FILE")]
    pub topology: Option<PathBuf>,
    /// Outlier rule k: a test fails below the target and below median - k*MAD of the fleet.
    #[arg(long, default_value_t = 4.0)]
    pub mad_k: f64,
    /// pdsh/clush remote command: ssh, or exec (runs locally with %h: for tests).
    #[arg(long, default_value = "ssh")]
    pub rcmd: String,
    /// Tests at once (and pdsh/clush fan-out).
    #[arg(long, default_value_t = 64)]
    pub parallel: u32,
    /// --launcher sbatch, multi-node rounds: tests per job (default: each wave shared by
    /// --sbatch-throttle jobs). One job per chunk, with exactly the chunk's nodes.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub sbatch_chunk: usize,
    /// --launcher sbatch, multi-node rounds: jobs at once (the `%` of a job array).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub sbatch_throttle: u32,
    /// Container image with nccltune, for --launcher kubernetes.
    #[arg(long, default_value = "nccltune:latest")]
    pub image: String,
    /// Output folder (plan.json, run.sh, results/).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: PathBuf,
    /// `json`: print what was written (files, nodes, tests of round 1) as JSON on stdout.
    #[arg(long, value_enum, default_value_t = StepFormat::Table)]
    pub format: StepFormat,
    /// Replace an existing plan in DIR even when it has results.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct NextArgs {
    pub dir: PathBuf,
    /// Plan the next round even if the current one has no results (its nodes count as missing).
    #[arg(long)]
    pub force: bool,
    /// Leave nodes that miss these expectations out of the next round's tests (as `merge
    /// --expect` judges them).
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
    /// `json`: the step taken (the new round and its tests, or done with the fleet summary).
    #[arg(long, value_enum, default_value_t = StepFormat::Table)]
    pub format: StepFormat,
    /// Write that report to FILE atomically instead of stdout (the plan folder is written
    /// either way).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FleetFormat {
    Table,
    Json,
    Prometheus,
    Junit,
    SlurmDrain,
    K8sTaint,
}

/// What the steps that write files (plan, next, unpack) and simulate print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StepFormat {
    /// A line for people (plan, next and unpack print it on stderr).
    Table,
    /// One JSON object on stdout, for scripts.
    Json,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value_t = FleetFormat::Table)]
    pub format: FleetFormat,
    /// Nodes whose check values differ from the fleet majority become suspect.
    #[arg(long)]
    pub consensus: bool,
    /// Judge every node's typed check values against written expectations (the TOML of
    /// `verify --expect`; `verify --write-expect FILE` writes one from a known-good node).
    /// Version drift is still listed.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
    /// Combined logs with NCCLTUNE-RESULT lines (launchers without shared storage): unpacked
    /// into DIR's result files first, as `fleet unpack` does.
    #[arg(long, value_name = "FILE")]
    pub log: Vec<PathBuf>,
    /// Write to FILE atomically instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    pub fleet_json: PathBuf,
    /// Only nodes that are not ok (table).
    #[arg(long)]
    pub only_bad: bool,
    /// Any of merge's formats, from the saved fleet.json.
    #[arg(long, value_enum, default_value_t = FleetFormat::Table)]
    pub format: FleetFormat,
    /// Write to FILE atomically instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[arg(long, default_value_t = 10_000)]
    pub nodes: usize,
    #[arg(long, default_value_t = 10)]
    pub bad: usize,
    /// Relative standard deviation of a test's busbw.
    #[arg(long, default_value_t = 0.03)]
    pub noise: f64,
    /// Probability that a test fails outright, whatever its nodes.
    #[arg(long, default_value_t = 0.01)]
    pub transient: f64,
    #[arg(long, value_enum, default_value_t = CheckArg::Pairs)]
    pub strategy: CheckArg,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 2)]
    pub confirm: u32,
    /// Multi-node rounds at most (default 3 for pairs, 12 for groups).
    #[arg(long)]
    pub rounds: Option<u32>,
    #[arg(long, default_value_t = 0)]
    pub group_size: usize,
    #[arg(long, value_enum, default_value_t = StepFormat::Table)]
    pub format: StepFormat,
    /// Same as --format json.
    #[arg(long, hide = true)]
    pub json: bool,
    /// Write to FILE atomically instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UnpackArgs {
    pub dir: PathBuf,
    pub log: PathBuf,
    /// `json`: the number of results written and where.
    #[arg(long, value_enum, default_value_t = StepFormat::Table)]
    pub format: StepFormat,
    /// Write that report to FILE atomically instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn check(c: CheckArg) -> plan::Check {
    match c {
        CheckArg::Verify => plan::Check::Verify,
        CheckArg::Pairs => plan::Check::Pairs,
        CheckArg::Groups => plan::Check::Groups,
        CheckArg::Rails => plan::Check::Rails,
    }
}

fn launcher(l: LauncherArg) -> plan::Launcher {
    match l {
        LauncherArg::Srun => plan::Launcher::Srun,
        LauncherArg::Sbatch => plan::Launcher::Sbatch,
        LauncherArg::Mpirun => plan::Launcher::Mpirun,
        LauncherArg::Pdsh => plan::Launcher::Pdsh,
        LauncherArg::Clush => plan::Launcher::Clush,
        LauncherArg::Kubernetes => plan::Launcher::Kubernetes,
    }
}

pub fn run(args: FleetArgs) -> Result<Outcome> {
    match args.command {
        FleetCommand::Plan(a) => plan_cmd(*a),
        FleetCommand::Next(a) => next_cmd(a),
        FleetCommand::Merge(a) => merge_cmd(a),
        FleetCommand::Report(a) => report_cmd(a),
        FleetCommand::Simulate(a) => simulate_cmd(a),
        FleetCommand::Unpack(a) => {
            let text = std::fs::read(&a.log).with_context(|| format!("cannot read {}", a.log.display()))?;
            let n = fleet::unpack(
                &a.dir,
                &String::from_utf8_lossy(&text),
                &a.log.display().to_string(),
            )?;
            let results = a.dir.join("results");
            let line = format!(
                "nccltune fleet unpack: {n} results written under {}",
                results.display()
            );
            // As `next` does: the line for people on stderr, and in -o FILE when one is named
            // (a named file left unwritten would read as a stale answer).
            match a.format {
                StepFormat::Table => {
                    eprintln!("{line}");
                    if let Some(o) = &a.output {
                        deliver(Some(o), &format!("{line}\n"))?;
                    }
                }
                StepFormat::Json => deliver(
                    a.output.as_deref(),
                    &json_line(&serde_json::json!({
                        "written": n,
                        "results": results.display().to_string(),
                    })),
                )?,
            }
            Ok(Outcome::Ok)
        }
    }
}

/// Writes a report to `-o FILE` through `nccltune::output` (atomic, keeps the file's mode,
/// through symlinks), or to stdout.
fn deliver(path: Option<&std::path::Path>, text: &str) -> Result<()> {
    match path {
        Some(p) => nccltune::output::write_atomic(p, text.as_bytes()),
        None => emit(text),
    }
}

fn render_as(f: FleetFormat, r: &fleet::model::FleetResult, only_bad: bool) -> String {
    match f {
        FleetFormat::Table => render::table(r, only_bad),
        FleetFormat::Json => render::json(r),
        FleetFormat::Prometheus => render::prometheus(r),
        FleetFormat::Junit => render::junit(r),
        FleetFormat::SlurmDrain => render::slurm_drain(r),
        FleetFormat::K8sTaint => render::k8s_taint(r),
    }
}

fn json_line(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

fn slurm_nodes(partition: Option<&str>) -> Result<Vec<String>> {
    use std::io::Read;
    let mut cmd = std::process::Command::new("sinfo");
    cmd.args(["-h", "-N", "-o", "%N"]);
    if let Some(p) = partition {
        cmd.arg(format!("--partition={p}"));
    }
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("--from-slurm: cannot run sinfo (is Slurm's client installed and SLURM_CONF set?)")?;
    let mut out = child.stdout.take().context("sinfo stdout")?;
    let mut err = child.stderr.take().context("sinfo stderr")?;
    // Bounded reads in threads, so a hung or chatty sinfo can neither block nor fill memory.
    let reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = (&mut out).take(64 << 20).read_to_end(&mut b);
        b
    });
    let ereader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = (&mut err).take(64 << 10).read_to_end(&mut b);
        b
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("--from-slurm: sinfo did not answer within 60 s (is slurmctld up?)");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let stdout = reader.join().unwrap_or_default();
    let stderr = ereader.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "--from-slurm: sinfo failed: {}",
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    fleet::nodeset::parse_list(&String::from_utf8_lossy(&stdout), "sinfo -h -N -o %N")
}

fn plan_cmd(a: PlanArgs) -> Result<Outcome> {
    let nodes = if let Some(set) = &a.nodes {
        fleet::nodeset::expand(set).context("--nodes")?
    } else if let Some(f) = &a.nodes_file {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        fleet::nodeset::parse_list(&text, &f.display().to_string())?
    } else if a.from_slurm {
        slurm_nodes(a.partition.as_deref())?
    } else {
        bail!("no nodes: give --nodes 'gpu[001-512]', --nodes-file FILE or --from-slurm");
    };
    if !(1..=7 * 86_400).contains(&a.timeout) {
        bail!("--timeout {}: expected 1..=604800 seconds", a.timeout);
    }
    if !(a.mad_k.is_finite() && a.mad_k >= 0.0) {
        bail!("--mad-k {}: expected a number >= 0, e.g. 4", a.mad_k);
    }
    if a.rcmd != "exec" && a.rcmd != "ssh" && a.rcmd != "rsh" {
        bail!("--rcmd {:?}: expected ssh, rsh or exec", a.rcmd);
    }
    if let Some(p) = &a.partition {
        fleet::nodeset::validate_name(p).context("--partition")?;
    }
    let check_args = match &a.check_args {
        Some(s) => fleet::quote::split_words(s).map_err(|e| anyhow::anyhow!("--check-args: {e}"))?,
        None => Vec::new(),
    };
    let mut settings = plan::Settings {
        nccltune: a.nccltune.clone(),
        check_args,
        nccl_tests_bin: a.nccl_tests_bin.clone(),
        gpus_per_node: a.gpus_per_node.max(1),
        size_bytes: a.size,
        timeout_s: a.timeout,
        confirm: a.confirm.max(1),
        group_size: a.group_size,
        mad_k: a.mad_k,
        partition: a.partition.clone(),
        rcmd: a.rcmd.clone(),
        parallel: a.parallel.max(1),
        image: a.image.clone(),
        rails: a.rails.clone(),
        sbatch_chunk: a.sbatch_chunk,
        sbatch_throttle: a.sbatch_throttle.max(1),
        rail_target_busbw_gbps: a.rail_target,
        ..Default::default()
    };
    if let Some(t) = a.rail_target
        && !(t.is_finite() && t > 0.0)
    {
        bail!("--rail-target {t}: expected a positive busbw in GB/s, e.g. 45");
    }
    let targets = match (&a.profile, &a.targets) {
        (Some(p), _) => Some(nccltune::bench::targets::profile(p)?),
        (None, Some(f)) => {
            let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
            Some(nccltune::bench::targets::parse_file(
                &text,
                &f.display().to_string(),
            )?)
        }
        _ => None,
    };
    if let Some(t) = targets {
        let Some(ar) = t.for_collective("all_reduce") else {
            bail!(
                "{}: no all_reduce target; the multi-node tests are all-reduce",
                t.from
            );
        };
        settings.target_busbw_gbps = Some(ar.busbw_gbps);
        settings.acceptable_fraction = t.acceptable_fraction;
        settings.target_source = t.from.clone();
    }
    let topology = match &a.topology {
        Some(f) => {
            let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
            fleet::topology::parse(&text, &f.display().to_string())?
        }
        None => Default::default(),
    };
    let checks: Vec<plan::Check> = a.check.iter().map(|c| check(*c)).collect();
    let has_target = if checks.contains(&plan::Check::Rails) {
        rounds::rail_target(&settings).is_some()
    } else {
        settings.target_busbw_gbps.is_some()
    };
    if checks.iter().any(|c| *c != plan::Check::Verify) && !has_target {
        eprintln!(
            "nccltune fleet plan: no --profile or --targets: multi-node tests are judged against the fleet only (median - {}*MAD)",
            a.mad_k
        );
    }
    if checks.contains(&plan::Check::Rails) {
        eprintln!(
            "nccltune fleet plan: rails: one pair test per rail, pinned with NCCL_IB_HCA==<hca>, one rail at a time; not NCCL_TESTS_SPLIT_MASK, whose groups nccl-tests runs at once but reports as one time averaged over every rank (src/common.cu), which hides one slow rail"
        );
    }
    let dir = &a.output;
    if dir.join("results").exists() && !a.force {
        bail!(
            "{} already has results of an earlier plan; choose another -o folder, or pass --force to start over (old results are then ignored only if you remove {})",
            dir.display(),
            dir.join("results").display()
        );
    }
    let p = rounds::new_plan(rounds::PlanOptions {
        nodes,
        checks,
        launcher: launcher(a.launcher),
        seed: a.seed,
        settings,
        rounds: a.rounds,
        topology,
    })?;
    fleet::write_plan_dir(dir, &p)?;
    let r = &p.rounds[0];
    eprintln!(
        "nccltune fleet plan: {} nodes, round 1 has {} tests; run: bash {}",
        p.nodes.len(),
        r.tests.len(),
        dir.join("run.sh").display()
    );
    if a.format == StepFormat::Json {
        emit(&json_line(&serde_json::json!({
            "plan": dir.join("plan.json").display().to_string(),
            "run": dir.join("run.sh").display().to_string(),
            "nodes": p.nodes.len(),
            "round": r.index,
            "max_rounds": p.settings.max_rounds,
            "tests": r.tests.len(),
        })))?;
    }
    Ok(Outcome::Ok)
}

fn next_cmd(a: NextArgs) -> Result<Outcome> {
    let (step, merged) = fleet::next_dir(&a.dir, a.force, golden(a.expect.as_deref())?)?;
    let run = a.dir.join("run.sh").display().to_string();
    let (line, json) = match step {
        fleet::NextStep::Round { index, tests } => (
            format!("nccltune fleet next: round {index} has {tests} tests; run: bash {run}"),
            serde_json::json!({"step": "round", "round": index, "tests": tests, "run": run}),
        ),
        fleet::NextStep::Done => (
            format!(
                "nccltune fleet next: nothing left to test; run.sh removed. {}",
                render::summary_line(&merged.result)
            ),
            serde_json::json!({"step": "done", "summary": merged.result.summary}),
        ),
    };
    eprintln!("{line}");
    match (a.format, &a.output) {
        (StepFormat::Json, o) => deliver(o.as_deref(), &json_line(&json))?,
        (StepFormat::Table, Some(o)) => deliver(Some(o), &format!("{line}\n"))?,
        (StepFormat::Table, None) => {}
    }
    Ok(Outcome::Ok)
}

/// `--expect FILE`: the expectations verify reads (`verify --write-expect` writes them).
fn golden(path: Option<&std::path::Path>) -> Result<Option<fleet::expect::Golden>> {
    let Some(p) = path else { return Ok(None) };
    let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    Ok(Some(fleet::expect::Golden::parse(
        &text,
        &p.display().to_string(),
    )?))
}

fn merge_cmd(a: MergeArgs) -> Result<Outcome> {
    for log in &a.log {
        let text = std::fs::read(log).with_context(|| format!("cannot read {}", log.display()))?;
        fleet::unpack(
            &a.dir,
            &String::from_utf8_lossy(&text),
            &log.display().to_string(),
        )?;
    }
    let opts = MergeOptions {
        consensus: a.consensus,
        plan_label: a.dir.display().to_string(),
        expect: golden(a.expect.as_deref())?,
    };
    let (_, merged) = fleet::merge_dir(&a.dir, &opts)?;
    let r = &merged.result;
    let text = render_as(a.format, r, false);
    deliver(a.output.as_deref(), &text)?;
    eprintln!("nccltune fleet merge: {}", render::summary_line(r));
    Ok(Outcome::from_failed(
        r.nodes.values().any(|n| n.status != Status::Ok),
    ))
}

fn report_cmd(a: ReportArgs) -> Result<Outcome> {
    let text = std::fs::read_to_string(&a.fleet_json)
        .with_context(|| format!("cannot read {}", a.fleet_json.display()))?;
    let r: fleet::model::FleetResult = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a fleet.json ({e}); write one with `nccltune fleet merge DIR --format json -o fleet.json`",
            a.fleet_json.display()
        )
    })?;
    if r.schema > fleet::model::FLEET_SCHEMA {
        bail!(
            "{}: fleet.json schema {} is newer than this nccltune reads ({}); upgrade nccltune",
            a.fleet_json.display(),
            r.schema,
            fleet::model::FLEET_SCHEMA
        );
    }
    let text = render_as(a.format, &r, a.only_bad);
    deliver(a.output.as_deref(), &text)?;
    Ok(Outcome::from_failed(
        r.nodes.values().any(|n| n.status != Status::Ok),
    ))
}

fn simulate_cmd(a: SimulateArgs) -> Result<Outcome> {
    if a.nodes < 2 || a.nodes > fleet::nodeset::MAX_NODES {
        bail!("--nodes {}: expected 2..={}", a.nodes, fleet::nodeset::MAX_NODES);
    }
    for (name, v) in [("--noise", a.noise), ("--transient", a.transient)] {
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            bail!("{name} {v}: expected a fraction between 0 and 1");
        }
    }
    let strategy = match a.strategy {
        CheckArg::Groups => plan::Check::Groups,
        CheckArg::Pairs => plan::Check::Pairs,
        CheckArg::Verify | CheckArg::Rails => bail!("--strategy: expected pairs or groups"),
    };
    let r = simulate::run(&simulate::SimOptions {
        nodes: a.nodes,
        bad: a.bad.min(a.nodes),
        noise: a.noise,
        transient: a.transient,
        strategy,
        seed: a.seed,
        confirm: a.confirm.max(1),
        max_rounds: a
            .rounds
            .unwrap_or(if strategy == plan::Check::Pairs { 3 } else { 12 }),
        group_size: a.group_size,
    });
    if a.json || a.format == StepFormat::Json {
        deliver(
            a.output.as_deref(),
            &format!("{}\n", serde_json::to_string_pretty(&r)?),
        )?;
    } else {
        deliver(
            a.output.as_deref(),
            &format!(
                "{} nodes, {} bad, strategy {}: {} rounds, {} tests ({} node-tests); found {} of {} bad (recall {:.2}), {} healthy nodes called bad, {} left suspect\n",
                r.nodes,
                r.bad,
                r.strategy,
                r.rounds,
                r.tests,
                r.node_tests,
                r.found,
                r.bad,
                r.recall,
                r.false_positives,
                r.suspects
            ),
        )?;
    }
    Ok(Outcome::Ok)
}
