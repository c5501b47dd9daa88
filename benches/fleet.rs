//! `cargo bench --bench fleet`: `fleet plan` and `fleet merge` at 10,000 nodes, one core.
//! Target (issue 14): merging 10,000 nodes' verify JSON (about 17 KB each) in under 2 s, with
//! memory bounded by the per-node summaries. Each scenario runs a few times; the fastest and
//! the median are reported, and peak resident memory (VmHWM) where /proc is present.

use nccltune::fleet::{self, merge::MergeOptions, plan, rounds};
use std::time::{Duration, Instant};

const NODES: usize = 10_000;

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User and system CPU seconds of this process so far (/proc/self/stat, 100 ticks a second
/// on Linux), so that a busy shared machine's waiting is not counted as our time.
fn cpu_s() -> Option<(f64, f64)> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((
        f.get(11)?.parse::<f64>().ok()? / 100.0,
        f.get(12)?.parse::<f64>().ok()? / 100.0,
    ))
}

fn timed<T>(name: &str, runs: usize, mut f: impl FnMut() -> T) -> T {
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut last = None;
    let before = cpu_s();
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        times.push(t.elapsed());
        last = Some(std::hint::black_box(r));
    }
    let cpu = match (before, cpu_s()) {
        (Some(a), Some(b)) => format!(
            "; CPU per run {:.2} s user + {:.2} s system",
            (b.0 - a.0) / runs as f64,
            (b.1 - a.1) / runs as f64
        ),
        _ => String::new(),
    };
    times.sort();
    println!(
        "{name}: fastest {:.1} ms, median {:.1} ms over {runs} runs{cpu}",
        times[0].as_secs_f64() * 1e3,
        times[runs / 2].as_secs_f64() * 1e3
    );
    last.expect("at least one run")
}

fn options(check: Vec<plan::Check>) -> rounds::PlanOptions {
    rounds::PlanOptions {
        nodes: fleet::nodeset::expand(&format!("gpu[00001-{NODES:05}]")).expect("node set"),
        checks: check,
        launcher: plan::Launcher::Srun,
        seed: 1,
        settings: plan::Settings {
            target_busbw_gbps: Some(384.0),
            ..Default::default()
        },
        rounds: None,
        topology: Default::default(),
    }
}

fn main() {
    let report = std::process::Command::new(env!("CARGO_BIN_EXE_nccltune"))
        .args(["verify", "--format", "json", "--replay"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/nodes/h100-8gpu-ndr400"
        ))
        .output()
        .expect("nccltune verify runs")
        .stdout;
    assert!(report.starts_with(b"{"), "verify printed a report");

    timed("plan: verify on 10,000 nodes (plan.json + run.sh)", 5, || {
        let p = rounds::new_plan(options(vec![plan::Check::Verify])).expect("plan");
        let (script, _) = fleet::script::render(&p, &p.rounds[0]);
        (p.to_json().len(), script.len())
    });
    timed("plan: pairs screening on 10,000 nodes", 5, || {
        let p = rounds::new_plan(options(vec![plan::Check::Pairs])).expect("plan");
        let (script, _) = fleet::script::render(&p, &p.rounds[0]);
        (p.rounds[0].tests.len(), script.len())
    });

    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let p = rounds::new_plan(options(vec![plan::Check::Verify])).expect("plan");
    fleet::write_plan_dir(dir, &p).expect("write plan");
    let rdir = dir.join("results/r1");
    std::fs::create_dir_all(&rdir).expect("results dir");
    for (i, n) in p.nodes.iter().enumerate() {
        std::fs::write(rdir.join(format!("{n}.json")), own_report(&report, i)).expect("write result");
        std::fs::write(rdir.join(format!("{n}.rc")), "0\n").expect("write rc");
    }
    println!(
        "merge input: {NODES} verify reports of {} bytes ({:.0} MB)",
        report.len(),
        (report.len() * NODES) as f64 / 1e6
    );
    let before = vm_hwm_kib();
    let opts = MergeOptions {
        consensus: true,
        plan_label: "bench".into(),
        ..Default::default()
    };
    let r = timed("merge: 10,000 verify reports (read, parse, consensus)", 3, || {
        let (_, m) = fleet::merge_dir(dir, &opts).expect("merge");
        m.result.summary.clone()
    });
    assert_eq!(r.ok, NODES, "every node ok");
    // The same reports judged against written expectations (the node's own, so all pass).
    let golden_path = dir.join("golden.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nccltune"))
        .args(["verify", "--replay"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/nodes/h100-8gpu-ndr400"
        ))
        .arg("--write-expect")
        .arg(&golden_path)
        .output()
        .expect("nccltune verify runs");
    assert!(out.status.success(), "expectations written");
    let text = std::fs::read_to_string(&golden_path).expect("golden");
    let golden = fleet::expect::Golden::parse(&text, "golden.toml").expect("golden parses");
    let opts = MergeOptions {
        consensus: true,
        plan_label: "bench".into(),
        expect: Some(golden),
    };
    let r = timed(
        "merge --expect: 10,000 verify reports against golden.toml",
        3,
        || {
            let (_, m) = fleet::merge_dir(dir, &opts).expect("merge");
            m.result.summary.clone()
        },
    );
    assert_eq!(r.ok, NODES, "every node meets its own expectations");
    if let (Some(b), Some(a)) = (before, vm_hwm_kib()) {
        println!(
            "peak resident memory: {} MiB before merge, {} MiB after",
            b / 1024,
            a / 1024
        );
    }
    pairs_round(&report);
}

/// A 2-node nccl-tests log with one large row at `busbw`.
fn nccl_log(busbw: f64) -> String {
    let s: u64 = 8 << 30;
    let alg = busbw / 2.0;
    let t = s as f64 / (alg * 1e3);
    format!(
        "# nccl-tests version 2.13.8 nccl-headers=22105 nccl-library=22105\n# Collective test starting: all_reduce_perf\n#\n\
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong\n\
{s:>12}  {:>12}     float     sum      -1  {t:>8.2}  {alg:>6.2}  {busbw:>6.2}      0  {t:>8.2}  {alg:>6.2}  {busbw:>6.2}      0\n\
# Avg bus bandwidth    : {busbw}\n",
        s / 4
    )
}

/// `verify,pairs` at 10,000 nodes: the screening round's 5,000 logs merged, and the
/// confirmation round planned from them (10 slow nodes).
/// The report with an identity of node `i`'s own: one machine under 10,000 names would make
/// every node suspect (fleet merge flags reused machine ids and DMI serials).
fn own_report(report: &[u8], i: usize) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(report).expect("verify report is JSON");
    for k in ["machine_id", "dmi_product_serial", "dmi_product_uuid"] {
        if let Some(id) = v["identity"][k].as_str() {
            v["identity"][k] = serde_json::Value::String(format!("{id}-{i:05}"));
        }
    }
    serde_json::to_vec_pretty(&v).expect("serializes")
}

fn pairs_round(report: &[u8]) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let p = rounds::new_plan(options(vec![plan::Check::Verify, plan::Check::Pairs])).expect("plan");
    fleet::write_plan_dir(dir, &p).expect("write plan");
    let r1 = dir.join("results/r1");
    std::fs::create_dir_all(&r1).expect("results dir");
    for (i, n) in p.nodes.iter().enumerate() {
        std::fs::write(r1.join(format!("{n}.json")), own_report(report, i)).expect("write result");
        std::fs::write(r1.join(format!("{n}.rc")), "0\n").expect("write rc");
    }
    fleet::next_dir(dir, false, None).expect("screening round");
    let p = plan::load(dir).expect("plan");
    let r2 = dir.join("results/r2");
    std::fs::create_dir_all(&r2).expect("results dir");
    let (good, slow) = (nccl_log(370.0), nccl_log(150.0));
    for t in &p.rounds[1].tests {
        let is_slow = t.nodes.iter().any(|n| n.ends_with("000"));
        std::fs::write(
            r2.join(format!("{}.txt", t.id)),
            if is_slow { &slow } else { &good },
        )
        .expect("write log");
        std::fs::write(r2.join(format!("{}.rc", t.id)), "0\n").expect("write rc");
    }
    println!(
        "pairs: {} screening tests at {NODES} nodes",
        p.rounds[1].tests.len()
    );
    let opts = MergeOptions {
        consensus: false,
        plan_label: "bench".into(),
        ..Default::default()
    };
    let r = timed("merge: verify + 5,000 pair logs", 3, || {
        let (_, m) = fleet::merge_dir(dir, &opts).expect("merge");
        m.result.summary.clone()
    });
    assert_eq!(r.suspect, 20, "10 slow nodes and their partners are suspects");
    timed("next: plan the confirmation round from them", 1, || {
        let (step, _) = fleet::next_dir(dir, false, None).expect("next");
        matches!(step, fleet::NextStep::Round { .. })
    });
}
