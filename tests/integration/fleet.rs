//! `nccltune fleet` end to end: the round trip plan → run.sh → next/merge on real engines
//! (a local Slurm with fake nodes started by tests/slurm/start.sh, pdsh and clush in exec
//! mode), each fake node replaying a capture derived from the fixtures with planted faults;
//! and the bad-input contract. Engine tests skip with a note when the engine is not
//! installed, but fail under CI=true, where .ci/run installs them.

use super::common::{nccltune, repo};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nccltune"))
}

/// `true` when every tool is on PATH; otherwise skip (or fail under CI).
fn have(tools: &[&str]) -> bool {
    let missing: Vec<&&str> = tools.iter().filter(|t| which::which(t).is_err()).collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{missing:?} not installed: .ci/run installs them (apt-get); CI must run this test");
    }
    eprintln!(
        "note: skipped, {missing:?} not installed (apt-get install slurm-wlm slurmd slurmctld slurm-client munge pdsh clustershell)"
    );
    false
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("test setup");
    for e in std::fs::read_dir(from).expect("test setup") {
        let e = e.expect("test setup");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("test setup");
    }
}

/// Gives a derived capture an identity of its own: fleet merge flags two names that report
/// one machine id (a result filed under the wrong node, or a reused host name).
fn own_identity(dir: &Path, name: &str) {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    std::fs::write(dir.join("etc-machine-id.txt"), format!("{h:016x}{h:016x}\n")).expect("test setup");
    std::fs::write(
        dir.join("proc-boot-id.txt"),
        format!("{:08x}-0000-4000-8000-{h:012x}\n", h as u32),
    )
    .expect("test setup");
    for f in ["dmi-product-serial", "dmi-product-uuid"] {
        let _ = std::fs::remove_file(dir.join(format!("{f}.txt")));
        std::fs::write(dir.join(format!("{f}.status")), "exit 1\n").expect("test setup");
    }
}

fn edit(path: &Path, from: &str, to: &str, all: bool) {
    let t = std::fs::read_to_string(path).expect("test setup");
    assert!(t.contains(from), "{} lacks {from:?}", path.display());
    let t = if all {
        t.replace(from, to)
    } else {
        t.replacen(from, to, 1)
    };
    std::fs::write(path, t).expect("test setup");
}

/// The planted faults, by fake node.
struct Planted {
    port200: String,
    old_driver: String,
    broken: String,
    deleted: String,
    hung: String,
}

/// Captures fn1..fnN: healthy H100 nodes, with one port at 200 among 400s, one old driver,
/// one broken node, one whose verify hangs; plus the golden expectations and a wrapper that
/// hangs for the capture marked HANG.
fn make_caps(work: &Path, n: usize) -> (PathBuf, PathBuf, PathBuf, Planted) {
    let caps = work.join("caps");
    let good = repo().join("fixtures/nodes/h100-8gpu-ndr400");
    for i in 1..=n {
        copy_dir(&good, &caps.join(format!("fn{i}")));
        own_identity(&caps.join(format!("fn{i}")), &format!("fn{i}"));
    }
    let p = Planted {
        port200: "fn5".into(),
        old_driver: "fn9".into(),
        broken: "fn13".into(),
        deleted: "fn17".into(),
        hung: "fn21".into(),
    };
    let c = caps.join(&p.port200);
    edit(&c.join("ibstat.txt"), "Rate: 400", "Rate: 200", false);
    edit(
        &c.join("sysfs-rdma-ports.txt"),
        "mlx5_0/ports/1/rate:400 Gb/sec (4X NDR)",
        "mlx5_0/ports/1/rate:200 Gb/sec (4X HDR)",
        false,
    );
    let c = caps.join(&p.old_driver);
    for f in [
        "nvidia-smi-q.txt",
        "nvidia-smi-query-gpu.txt",
        "proc-driver-nvidia-version.txt",
    ] {
        edit(&c.join(f), "550.90.07", "535.54.03", true);
    }
    let c = caps.join(&p.broken);
    std::fs::remove_dir_all(&c).expect("test setup");
    copy_dir(&repo().join("fixtures/nodes/broken-h100"), &c);
    own_identity(&c, &p.broken);
    std::fs::write(caps.join(&p.hung).join("HANG"), "").expect("test setup");
    let golden = work.join("golden.toml");
    let out = Command::new(bin())
        .args(["verify", "--replay"])
        .arg(&good)
        .arg("--write-expect")
        .arg(&golden)
        .output()
        .expect("test setup");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let wrap = work.join("nccltune-node");
    std::fs::write(
        &wrap,
        format!(
            "#!/usr/bin/env bash\nfor a in \"$@\"; do [ -e \"$a/HANG\" ] && exec sleep 3600; done\nexec {} \"$@\"\n",
            bin().display()
        ),
    )
    .expect("test setup");
    Command::new("chmod")
        .arg("+x")
        .arg(&wrap)
        .status()
        .expect("test setup");
    (caps, golden, wrap, p)
}

fn sh(dir: &Path, script: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new("bash");
    c.arg(dir.join(script));
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("test setup")
}

fn merge_json(dir: &Path) -> Value {
    let out = nccltune()
        .args(["fleet", "merge", "--format", "json"])
        .arg(dir)
        .output()
        .expect("test setup");
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("test setup")
}

fn with_status(fleet: &Value, status: &str) -> BTreeSet<String> {
    fleet["nodes"]
        .as_object()
        .expect("test setup")
        .iter()
        .filter(|(_, v)| v["status"] == status)
        .map(|(k, _)| k.clone())
        .collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn plan(dir: &Path, args: &[&str]) {
    let out = nccltune()
        .args(["fleet", "plan"])
        .args(args)
        .arg("-o")
        .arg(dir)
        .output()
        .expect("test setup");
    assert!(
        out.status.success(),
        "plan: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stops the test cluster by PID file when the test ends, passed or not.
struct Cluster(PathBuf);
impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("tests/slurm/stop.sh"))
            .arg(&self.0)
            .status();
    }
}

const NODES: usize = 64;

#[test]
fn slurm_round_trip_finds_exactly_the_planted_nodes_and_link() {
    if !have(&["slurmctld", "slurmd", "munged", "srun", "scontrol", "sinfo"]) {
        return;
    }
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if uid.as_deref().ok() != Some("0") {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs as root and must run the Slurm test"
        );
        eprintln!("note: skipped, the local Slurm (munged, slurmd) needs root");
        return;
    }
    let tmp = tempfile::tempdir().expect("test setup");
    let work = tmp.path();
    let sdir = work.join("slurm");
    let cluster = Cluster(sdir.clone());
    let st = Command::new("bash")
        .arg(repo().join("tests/slurm/start.sh"))
        .arg(NODES.to_string())
        .arg(&sdir)
        .output()
        .expect("test setup");
    assert!(
        st.status.success(),
        "start.sh: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let conf = sdir.join("slurm.conf").display().to_string();
    // The node list straight from Slurm.
    let from = work.join("from-slurm");
    let out = nccltune()
        .args(["fleet", "plan", "--from-slurm", "-o"])
        .arg(&from)
        .env("SLURM_CONF", &conf)
        .output()
        .expect("plan");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pj: Value =
        serde_json::from_str(&std::fs::read_to_string(from.join("plan.json")).expect("plan.json"))
            .expect("json");
    assert_eq!(pj["nodes"].as_array().expect("nodes").len(), NODES);
    let (caps, golden, wrap, p) = make_caps(work, NODES);
    // Multi-node faults, known only to the stand-in all_reduce_perf.
    let (slow, hang_pair) = ("fn25", "fn29");
    let capacity = work.join("capacity.txt");
    std::fs::write(&capacity, format!("{slow} 150\n{hang_pair} hang\n")).expect("test setup");
    let cap_s = capacity.display().to_string();
    let env = [("SLURM_CONF", conf.as_str()), ("FLEET_CAPACITY", cap_s.as_str())];

    let dir = work.join("plan");
    let check_args = format!(
        "--replay {}/{{node}} --expect {}",
        caps.display(),
        golden.display()
    );
    plan(
        &dir,
        &[
            "--nodes",
            &format!("fn[1-{NODES}]"),
            "--check",
            "verify,pairs",
            "--launcher",
            "srun",
            "--check-args",
            &check_args,
            "--nccltune",
            &wrap.display().to_string(),
            "--nccl-tests-bin",
            &repo().join("tests/slurm").display().to_string(),
            "--profile",
            "h100x8-ndr400",
            "--gpus-per-node",
            "1",
            "--timeout",
            "8",
            "--seed",
            "7",
        ],
    );
    let mut rounds = 0;
    let mut link = None;
    while dir.join("run.sh").exists() {
        rounds += 1;
        assert!(rounds <= 6, "more rounds than the plan allows");
        let out = sh(&dir, "run.sh", &env);
        assert!(
            dir.join("results").join(format!("r{rounds}")).is_dir(),
            "round {rounds}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if rounds == 1 {
            // A node whose result is lost: merge must call it missing, never healthy.
            for ext in ["json", "rc", "err"] {
                let _ = std::fs::remove_file(dir.join(format!("results/r1/{}.{ext}", p.deleted)));
            }
        }
        let out = nccltune()
            .args(["fleet", "next"])
            .arg(&dir)
            .output()
            .expect("test setup");
        assert!(
            out.status.success(),
            "next: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if rounds == 1 {
            // Plant a bad link on a screening pair of two healthy nodes.
            let planj: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).expect("test setup"))
                    .expect("test setup");
            let tests = planj["rounds"][1]["tests"].as_array().expect("test setup");
            let t = tests
                .iter()
                .find(|t| {
                    let n = t["nodes"].as_array().expect("test setup");
                    n.len() == 2 && n.iter().all(|x| x != slow && x != hang_pair)
                })
                .expect("test setup");
            let (a, b) = (
                t["nodes"][0].as_str().expect("test setup").to_string(),
                t["nodes"][1].as_str().expect("test setup").to_string(),
            );
            let mut c = std::fs::read_to_string(&capacity).expect("test setup");
            c.push_str(&format!("link {a} {b} 100\n"));
            std::fs::write(&capacity, c).expect("test setup");
            link = Some(set(&[&a, &b]));
        }
    }
    assert!(
        rounds >= 3,
        "pairs + confirmation need 3 multi-node rounds after verify, got {rounds}"
    );
    let fleet = merge_json(&dir);
    assert_eq!(
        with_status(&fleet, "bad"),
        set(&[&p.port200, &p.old_driver, &p.broken, &p.hung, slow, hang_pair]),
        "{fleet:#}"
    );
    assert_eq!(with_status(&fleet, "missing"), set(&[&p.deleted]));
    assert_eq!(with_status(&fleet, "ok").len(), NODES - 7);
    let links: Vec<BTreeSet<String>> = fleet["links"]
        .as_array()
        .expect("test setup")
        .iter()
        .map(|l| {
            l["nodes"]
                .as_array()
                .expect("test setup")
                .iter()
                .map(|x| x.as_str().expect("test setup").to_string())
                .collect()
        })
        .collect();
    assert_eq!(
        links,
        vec![link.expect("test setup")],
        "the bad link is a link, not two bad nodes"
    );
    let port = &fleet["nodes"][&p.port200]["reasons"][0];
    assert_eq!(port["code"], "rdma.port-rate");
    assert_eq!(
        fleet["nodes"][&p.old_driver]["reasons"][0]["code"],
        "software.driver"
    );
    assert_eq!(fleet["nodes"][&p.hung]["reasons"][0]["code"], "fleet.timeout");

    // Rails: each pair once per HCA (NCCL_IB_HCA==HCA); a rail slow on one node only is that
    // node's rail, not the node's other rail and not its partners.
    let rcap = work.join("rail-capacity.txt");
    std::fs::write(&rcap, "fn6@mlx5_3 20\n").expect("test setup");
    let rcap_s = rcap.display().to_string();
    let renv = [("SLURM_CONF", conf.as_str()), ("FLEET_CAPACITY", rcap_s.as_str())];
    let rdir = work.join("plan-rails");
    plan(
        &rdir,
        &[
            "--nodes",
            "fn[1-16]",
            "--check",
            "rails",
            "--rails",
            "mlx5_0,mlx5_3",
            "--rail-target",
            "45",
            "--nccl-tests-bin",
            &repo().join("tests/slurm").display().to_string(),
            "--gpus-per-node",
            "1",
            "--timeout",
            "8",
        ],
    );
    let mut rrounds = 0;
    while rdir.join("run.sh").exists() {
        rrounds += 1;
        assert!(rrounds <= 3, "rails: more rounds than the plan allows");
        let out = sh(&rdir, "run.sh", &renv);
        assert!(
            rdir.join(format!("results/r{rrounds}")).is_dir(),
            "rails round {rrounds}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = nccltune()
            .args(["fleet", "next"])
            .arg(&rdir)
            .output()
            .expect("test setup");
        assert!(
            out.status.success(),
            "next: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rfleet = merge_json(&rdir);
    assert_eq!(with_status(&rfleet, "bad"), set(&["fn6"]), "{rfleet:#}");
    assert_eq!(with_status(&rfleet, "ok").len(), 15);
    let r = &rfleet["nodes"]["fn6"]["reasons"][0];
    assert_eq!(
        (r["code"].as_str(), r["subject"].as_str()),
        (Some("fleet.rail"), Some("mlx5_3"))
    );

    // Pairs through sbatch: one job per chunk of two tests with exactly their nodes, at most
    // three at once; a slow node and a hanging one (its test killed by timeout: .rc 124).
    let scap = work.join("sbatch-capacity.txt");
    std::fs::write(&scap, "fn40 150\nfn44 hang\n").expect("test setup");
    let scap_s = scap.display().to_string();
    let senv = [("SLURM_CONF", conf.as_str()), ("FLEET_CAPACITY", scap_s.as_str())];
    let bdir = work.join("plan-sbatch-pairs");
    plan(
        &bdir,
        &[
            "--nodes",
            "fn[33-48]",
            "--check",
            "pairs",
            "--launcher",
            "sbatch",
            "--sbatch-chunk",
            "2",
            "--sbatch-throttle",
            "3",
            "--nccl-tests-bin",
            &repo().join("tests/slurm").display().to_string(),
            "--profile",
            "h100x8-ndr400",
            "--gpus-per-node",
            "1",
            "--timeout",
            "8",
        ],
    );
    let run1 = std::fs::read_to_string(bdir.join("run.sh")).expect("run.sh");
    assert_eq!(
        run1.matches("; submit ").count(),
        4,
        "8 tests in chunks of 2: {run1}"
    );
    let mut brounds = 0;
    while bdir.join("run.sh").exists() {
        brounds += 1;
        assert!(brounds <= 3, "sbatch pairs: more rounds than the plan allows");
        let out = sh(&bdir, "run.sh", &senv);
        assert!(
            bdir.join(format!("results/r{brounds}")).is_dir() && out.status.success(),
            "sbatch round {brounds}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = nccltune()
            .args(["fleet", "next"])
            .arg(&bdir)
            .output()
            .expect("test setup");
        assert!(
            out.status.success(),
            "next: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let logs = std::fs::read_dir(bdir.join("logs")).expect("logs").count();
    assert!(logs >= 4, "one log per job: {logs}");
    let hung = std::fs::read_dir(bdir.join("results/r1"))
        .expect("results")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "rc"))
        .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.trim() == "124"));
    assert!(hung, "the hanging test has its .rc (124)");
    let bfleet = merge_json(&bdir);
    assert_eq!(with_status(&bfleet, "bad"), set(&["fn40", "fn44"]), "{bfleet:#}");
    assert_eq!(with_status(&bfleet, "ok").len(), 14);

    // The same per-node checks through one sbatch allocation (the script runs from Slurm's
    // spool, so it must find its plan folder by argument).
    let sdir2 = work.join("plan-sbatch");
    plan(
        &sdir2,
        &[
            "--nodes",
            &format!("fn[1-{NODES}]"),
            "--launcher",
            "sbatch",
            "--check-args",
            &check_args,
            "--nccltune",
            &wrap.display().to_string(),
            "--timeout",
            "8",
        ],
    );
    let out = sh(&sdir2, "run.sh", &env);
    let fleet2 = merge_json(&sdir2);
    assert_eq!(
        with_status(&fleet2, "bad"),
        set(&[&p.port200, &p.old_driver, &p.broken, &p.hung]),
        "sbatch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(with_status(&fleet2, "ok").len(), NODES - 4);

    // Drain lines, applied with scontrol, drain exactly the bad nodes.
    let out = nccltune()
        .args(["fleet", "merge", "--format", "slurm-drain"])
        .arg(&dir)
        .output()
        .expect("test setup");
    let drain = work.join("drain.sh");
    std::fs::write(&drain, &out.stdout).expect("test setup");
    let st = Command::new("bash")
        .arg(&drain)
        .env("SLURM_CONF", &conf)
        .output()
        .expect("test setup");
    assert!(
        st.status.success(),
        "drain: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let out = Command::new("sinfo")
        .args(["-h", "-N", "-o", "%N %T %E"])
        .env("SLURM_CONF", &conf)
        .output()
        .expect("test setup");
    let text = String::from_utf8_lossy(&out.stdout);
    let drained: BTreeSet<String> = text
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|s| s.starts_with("drain"))
        })
        .map(|l| {
            assert!(l.contains(" nccltune:"), "reason starts with nccltune: {l}");
            l.split_whitespace().next().expect("test setup").to_string()
        })
        .collect();
    assert_eq!(drained, with_status(&fleet, "bad"), "{text}");
    drop(cluster);
}

/// Per-node fan-out through pdsh and clush (`-R exec`, `%h` is the node name).
#[test]
fn pdsh_and_clush_fan_out_find_the_planted_nodes() {
    for tool in ["pdsh", "clush"] {
        if !have(&[tool]) {
            continue;
        }
        let tmp = tempfile::tempdir().expect("test setup");
        let work = tmp.path();
        let (caps, golden, wrap, p) = make_caps(work, 24);
        let dir = work.join("plan");
        let check_args = format!(
            "--replay {}/{{node}} --expect {}",
            caps.display(),
            golden.display()
        );
        plan(
            &dir,
            &[
                "--nodes",
                "fn[1-24]",
                "--launcher",
                tool,
                "--rcmd",
                "exec",
                "--check-args",
                &check_args,
                "--nccltune",
                &wrap.display().to_string(),
                "--timeout",
                "5",
            ],
        );
        let out = sh(&dir, "run.sh", &[]);
        assert!(
            dir.join("results/r1/fn1.rc").exists(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_file(dir.join(format!("results/r1/{}.json", p.deleted))).expect("test setup");
        std::fs::remove_file(dir.join(format!("results/r1/{}.rc", p.deleted))).expect("test setup");
        let fleet = merge_json(&dir);
        assert_eq!(
            with_status(&fleet, "bad"),
            set(&[&p.port200, &p.old_driver, &p.broken, &p.hung]),
            "{tool}"
        );
        assert_eq!(with_status(&fleet, "missing"), set(&[&p.deleted]), "{tool}");
        // Nothing left to do for a verify-only plan: next removes run.sh and exits 0.
        let out = nccltune()
            .args(["fleet", "next"])
            .arg(&dir)
            .output()
            .expect("test setup");
        assert!(out.status.success());
        assert!(!dir.join("run.sh").exists());
        assert!(String::from_utf8_lossy(&out.stderr).contains("nothing left"));
    }
}

fn verify_plan(work: &Path) -> PathBuf {
    let dir = work.join("p");
    plan(
        &dir,
        &["--nodes", "fn[1-3]", "--launcher", "pdsh", "--rcmd", "exec"],
    );
    dir
}

#[test]
fn bad_input_gives_clear_errors() {
    let tmp = tempfile::tempdir().expect("test setup");
    let work = tmp.path();
    // Malformed and hostile node sets.
    for nodes in ["gpu[1-", "gpu;reboot", "fn$(id)", "a\nb"] {
        let out = nccltune()
            .args(["fleet", "plan", "--nodes", nodes, "-o"])
            .arg(work.join("x"))
            .output()
            .expect("test setup");
        assert_eq!(out.status.code(), Some(2), "{nodes:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("node set"),
            "{nodes:?}"
        );
        assert!(!work.join("x/plan.json").exists());
    }
    // Rails need their HCAs, named as NCCL_IB_HCA takes them.
    for (rails, want) in [
        (None, "--rails mlx5_0"),
        (Some("mlx5_0,mlx5;0"), "mlx5;0"),
        (Some("mlx5_0,mlx5_0"), "twice"),
    ] {
        let mut c = nccltune();
        c.args(["fleet", "plan", "--nodes", "fn[1-4]", "--check", "rails"]);
        if let Some(r) = rails {
            c.args(["--rails", r]);
        }
        let out = c.arg("-o").arg(work.join("r")).output().expect("test setup");
        assert_eq!(out.status.code(), Some(2), "{rails:?}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains(want), "{rails:?}: {e}");
        assert!(!work.join("r/plan.json").exists());
    }
    // Shell syntax in --check-args is refused, not passed on.
    let out = nccltune()
        .args([
            "fleet",
            "plan",
            "--nodes",
            "fn1",
            "--check-args",
            "--replay $(reboot)",
            "-o",
        ])
        .arg(work.join("y"))
        .output()
        .expect("test setup");
    assert_eq!(out.status.code(), Some(2));
    let dir = verify_plan(work);
    let run = std::fs::read_to_string(dir.join("run.sh")).expect("test setup");
    assert!(run.contains("pdsh -R exec -f 64 -w 'fn[1-3]'"), "{run}");
    // A result from a node not in the plan.
    std::fs::create_dir_all(dir.join("results/r1")).expect("test setup");
    std::fs::write(dir.join("results/r1/fn9.json"), "{}").expect("test setup");
    let out = nccltune()
        .args(["fleet", "merge"])
        .arg(&dir)
        .output()
        .expect("test setup");
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("fn9.json") && e.contains("not in the plan"), "{e}");
    std::fs::remove_file(dir.join("results/r1/fn9.json")).expect("test setup");
    // Truncated JSON is an error for that node, never a pass; silent nodes are missing.
    let good = Command::new(bin())
        .args(["verify", "--format", "json", "--replay"])
        .arg(repo().join("fixtures/nodes/h100-8gpu-ndr400"))
        .output()
        .expect("test setup")
        .stdout;
    std::fs::write(dir.join("results/r1/fn1.json"), &good).expect("test setup");
    std::fs::write(dir.join("results/r1/fn1.rc"), "0\n").expect("test setup");
    std::fs::write(dir.join("results/r1/fn2.json"), &good[..good.len() / 2]).expect("test setup");
    std::fs::write(dir.join("results/r1/fn2.rc"), "0\n").expect("test setup");
    let fleet = merge_json(&dir);
    assert_eq!(fleet["nodes"]["fn1"]["status"], "ok");
    assert_eq!(fleet["nodes"]["fn2"]["status"], "error");
    assert!(
        fleet["nodes"]["fn2"]["reasons"][0]["message"]
            .as_str()
            .expect("test setup")
            .contains("truncated")
    );
    assert_eq!(fleet["nodes"]["fn3"]["status"], "missing");
    // fleet.json reads back in `report`.
    let fj = work.join("fleet.json");
    std::fs::write(&fj, serde_json::to_vec(&fleet).expect("test setup")).expect("test setup");
    let out = nccltune()
        .args(["fleet", "report", "--only-bad"])
        .arg(&fj)
        .output()
        .expect("test setup");
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(
        t.contains("fn2") && t.contains("fn3") && !t.contains("fn1 "),
        "{t}"
    );
    // A plan from a newer schema.
    let text = std::fs::read_to_string(dir.join("plan.json")).expect("test setup");
    std::fs::write(
        dir.join("plan.json"),
        text.replacen("\"schema\": 1", "\"schema\": 99", 1),
    )
    .expect("test setup");
    let out = nccltune()
        .args(["fleet", "merge"])
        .arg(&dir)
        .output()
        .expect("test setup");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer"));
    // An existing plan with results is not replaced without --force.
    let out = nccltune()
        .args(["fleet", "plan", "--nodes", "fn1", "-o"])
        .arg(&dir)
        .output()
        .expect("test setup");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        std::fs::read_to_string(dir.join("plan.json"))
            .expect("test setup")
            .contains("\"schema\": 99")
    );
}

#[test]
fn hostile_values_are_quoted_in_run_sh() {
    let tmp = tempfile::tempdir().expect("test setup");
    let dir = tmp.path().join("p");
    let marker = tmp.path().join("pwned");
    let args = format!(
        "--replay 'x; touch {m}' --expect \"$(touch {m})\"",
        m = marker.display()
    );
    let out = nccltune()
        .args(["fleet", "plan", "--nodes", "fn1", "--check-args", &args, "-o"])
        .arg(&dir)
        .output()
        .expect("test setup");
    assert_eq!(
        out.status.code(),
        Some(2),
        "\"$(\" inside double quotes is refused"
    );
    let args = format!(
        "--replay 'x; touch {m}' --expect '$(touch {m})' --x '`id`'",
        m = marker.display()
    );
    plan(
        &dir,
        &[
            "--nodes",
            "fn1",
            "--launcher",
            "pdsh",
            "--rcmd",
            "exec",
            "--nccltune",
            "/bin/echo",
            "--check-args",
            &args,
        ],
    );
    // Run the node task directly: the words reach the program as plain arguments.
    let out = Command::new("bash")
        .arg(dir.join("run.sh"))
        .args(["--node-task", "fn1"])
        .output()
        .expect("test setup");
    assert!(out.status.success());
    assert!(!marker.exists(), "a value from the plan ran as code");
    let echoed = std::fs::read_to_string(dir.join("results/r1/fn1.json")).expect("test setup");
    assert!(
        echoed.contains(&format!("x; touch {}", marker.display())) && echoed.contains("`id`"),
        "{echoed}"
    );
    // A node name from the environment only selects from the table.
    let out = Command::new("bash")
        .arg(dir.join("run.sh"))
        .args(["--node-task", "fn1;id"])
        .output()
        .expect("test setup");
    assert_eq!(out.status.code(), Some(2));
}

fn yaml_doc(text: &str) -> yaml_rust2::Yaml {
    let docs = yaml_rust2::YamlLoader::load_from_str(text).expect("valid YAML");
    assert_eq!(docs.len(), 1, "one document");
    docs.into_iter().next().expect("one document")
}

/// The keys a mapping may have: a strict schema for the parts of a Job we write.
fn keys_only(y: &yaml_rust2::Yaml, allowed: &[&str], at: &str) {
    let h = y.as_hash().unwrap_or_else(|| panic!("{at}: expected a mapping"));
    for k in h.keys() {
        let k = k.as_str().unwrap_or_else(|| panic!("{at}: non-string key"));
        assert!(allowed.contains(&k), "{at}: unexpected key {k:?}");
    }
}

#[test]
fn kubernetes_indexed_job_matches_golden_and_schema_and_round_trips() {
    let tmp = tempfile::tempdir().expect("test setup");
    let dir = tmp.path().join("k");
    plan(
        &dir,
        &[
            "--nodes",
            "gpu[01-03]",
            "--launcher",
            "kubernetes",
            "--seed",
            "1",
            "--timeout",
            "120",
            "--image",
            "registry.example/nccltune:0.1",
            "--check-args",
            "--expect '/etc/nccl tune/golden.toml'",
        ],
    );
    let text = std::fs::read_to_string(dir.join("k8s/r1.yaml")).expect("manifest written");
    let golden_path = repo().join("fixtures/fleet/k8s-verify-r1.yaml");
    if std::env::var("NCCLTUNE_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&golden_path, &text).expect("test setup");
    }
    let golden = std::fs::read_to_string(&golden_path).expect("golden file");
    assert_eq!(
        text, golden,
        "k8s/r1.yaml differs from fixtures/fleet/k8s-verify-r1.yaml"
    );

    let y = yaml_doc(&text);
    keys_only(&y, &["apiVersion", "kind", "metadata", "spec"], "Job");
    assert_eq!(y["apiVersion"].as_str(), Some("batch/v1"));
    assert_eq!(y["kind"].as_str(), Some("Job"));
    let spec = &y["spec"];
    keys_only(
        spec,
        &[
            "completionMode",
            "completions",
            "parallelism",
            "backoffLimit",
            "activeDeadlineSeconds",
            "template",
        ],
        "spec",
    );
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    assert_eq!(spec["completions"].as_i64(), Some(3));
    let pod = &spec["template"]["spec"];
    keys_only(pod, &["restartPolicy", "affinity", "containers"], "pod spec");
    let values: Vec<&str> = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"][0]["matchExpressions"][0]["values"]
        .as_vec()
        .expect("node list")
        .iter()
        .map(|v| v.as_str().expect("string"))
        .collect();
    assert_eq!(values, ["gpu01", "gpu02", "gpu03"]);
    let c = &pod["containers"][0];
    keys_only(
        c,
        &["name", "image", "command", "env", "securityContext"],
        "container",
    );
    assert_eq!(c["image"].as_str(), Some("registry.example/nccltune:0.1"));
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("spec.nodeName")
    );
    let cmd: Vec<&str> = c["command"]
        .as_vec()
        .expect("command list")
        .iter()
        .map(|v| v.as_str().expect("string"))
        .collect();
    assert_eq!(&cmd[..2], ["/bin/sh", "-c"]);

    // Run the pod's script as a pod would (NODE_NAME from the downward API), with nccltune
    // replaying a fixture, then unpack the log and merge: the round trip without a cluster.
    let fake = tmp.path().join("bin");
    std::fs::create_dir_all(&fake).expect("test setup");
    std::fs::write(
        fake.join("nccltune"),
        format!(
            "#!/bin/sh\n[ \"$5\" = '/etc/nccl tune/golden.toml' ] || exit 2\nexec {} verify --format json --replay {}/\"$NODE_NAME\"\n",
            bin().display(),
            tmp.path().join("caps").display()
        ),
    )
    .expect("test setup");
    Command::new("chmod")
        .arg("+x")
        .arg(fake.join("nccltune"))
        .status()
        .expect("chmod");
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default());
    for node in ["gpu01", "gpu03"] {
        let c = tmp.path().join("caps").join(node);
        copy_dir(&repo().join("fixtures/nodes/h100-8gpu-ndr400"), &c);
        own_identity(&c, node);
    }
    let mut log = String::new();
    for node in ["gpu01", "gpu03"] {
        let out = Command::new("sh")
            .args(["-c", cmd[2]])
            .env("NODE_NAME", node)
            .env("PATH", &path)
            .output()
            .expect("sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // kubectl logs --prefix puts the pod before each line.
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            log.push_str(&format!("[pod/x-{node}/verify] {l}\n"));
        }
    }
    let out = Command::new("sh")
        .args(["-c", cmd[2]])
        .env("NODE_NAME", "gpu01;id")
        .env("PATH", &path)
        .output()
        .expect("sh");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a hostile node name is refused by the pod"
    );
    let logf = tmp.path().join("pods.log");
    std::fs::write(&logf, &log).expect("test setup");
    let out = nccltune()
        .args(["fleet", "merge", "--format", "json", "--log"])
        .arg(&logf)
        .arg(&dir)
        .output()
        .expect("merge --log");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fleet: Value = serde_json::from_slice(&out.stdout).expect("fleet.json");
    assert_eq!(with_status(&fleet, "ok"), set(&["gpu01", "gpu03"]));
    assert_eq!(
        with_status(&fleet, "missing"),
        set(&["gpu02"]),
        "a pod that never reported is missing"
    );
    // A log line for a node outside the plan is an error naming the line.
    std::fs::write(&logf, "NCCLTUNE-RESULT r1 gpu99 rc 0\n").expect("test setup");
    let out = nccltune()
        .args(["fleet", "unpack"])
        .arg(&dir)
        .arg(&logf)
        .output()
        .expect("unpack");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pods.log:1"));
}

/// Every launcher's run.sh, per-node and multi-node, passes shellcheck at warning level.
#[test]
fn generated_scripts_pass_shellcheck() {
    if !have(&["shellcheck"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("test setup");
    let mut n = 0;
    for (check, launchers) in [
        (
            "verify",
            &["srun", "sbatch", "mpirun", "pdsh", "clush", "kubernetes"][..],
        ),
        ("pairs", &["srun", "sbatch", "mpirun", "kubernetes"][..]),
        ("groups", &["srun"][..]),
        ("rails", &["srun", "mpirun", "kubernetes"][..]),
    ] {
        for l in launchers {
            n += 1;
            let dir = tmp.path().join(format!("p{n}"));
            plan(
                &dir,
                &[
                    "--nodes",
                    "n[1-6]",
                    "--check",
                    check,
                    "--launcher",
                    l,
                    "--check-args",
                    "--expect 'a b.toml'",
                    "--rails",
                    "mlx5_0,mlx5_3:1",
                ],
            );
            let out = Command::new("shellcheck")
                .args(["-S", "warning"])
                .arg(dir.join("run.sh"))
                .output()
                .expect("shellcheck");
            assert!(
                out.status.success(),
                "{check} {l}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    let scripts = ["start.sh", "stop.sh", "all_reduce_perf"].map(|f| repo().join("tests/slurm").join(f));
    let out = Command::new("shellcheck")
        .args(["-S", "warning"])
        .args(&scripts)
        .output()
        .expect("shellcheck");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// `merge --expect`: each node's typed values against the expectations verify writes; a node
/// that passes its own checks but runs an older driver is bad by the golden file (its drain
/// line starts with the check code), drift is still listed, and an expected value no report
/// carries is said to be unjudged rather than held against every node.
#[test]
fn merge_expect_judges_typed_values_against_the_golden_file() {
    let tmp = tempfile::tempdir().expect("test setup");
    let work = tmp.path();
    let good = repo().join("fixtures/nodes/h100-8gpu-ndr400");
    let caps = work.join("caps");
    for n in ["fn1", "fn2", "fn3"] {
        copy_dir(&good, &caps.join(n));
        own_identity(&caps.join(n), n);
    }
    for f in [
        "nvidia-smi-q.txt",
        "nvidia-smi-query-gpu.txt",
        "proc-driver-nvidia-version.txt",
    ] {
        edit(&caps.join("fn2").join(f), "550.90.07", "535.54.03", true);
    }
    let golden = work.join("golden.toml");
    let out = Command::new(bin())
        .args(["verify", "--replay"])
        .arg(&good)
        .arg("--write-expect")
        .arg(&golden)
        .output()
        .expect("test setup");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = work.join("p");
    plan(
        &dir,
        &["--nodes", "fn[1-3]", "--launcher", "pdsh", "--rcmd", "exec"],
    );
    let r1 = dir.join("results/r1");
    std::fs::create_dir_all(&r1).expect("test setup");
    for n in ["fn1", "fn2", "fn3"] {
        // verify without expectations: every node passes its own checks.
        let out = Command::new(bin())
            .args(["verify", "--format", "json", "--replay"])
            .arg(caps.join(n))
            .output()
            .expect("test setup");
        assert_eq!(out.status.code(), Some(0), "{n}");
        std::fs::write(r1.join(format!("{n}.json")), &out.stdout).expect("test setup");
        std::fs::write(r1.join(format!("{n}.rc")), "0\n").expect("test setup");
    }
    let plain = merge_json(&dir);
    assert_eq!(with_status(&plain, "ok").len(), 3, "{plain:#}");
    let out = nccltune()
        .args(["fleet", "merge", "--format", "json", "--expect"])
        .arg(&golden)
        .arg(&dir)
        .output()
        .expect("merge --expect");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fleet: Value = serde_json::from_slice(&out.stdout).expect("fleet.json");
    assert_eq!(with_status(&fleet, "bad"), set(&["fn2"]), "{fleet:#}");
    assert_eq!(with_status(&fleet, "ok"), set(&["fn1", "fn3"]));
    let r = &fleet["nodes"]["fn2"]["reasons"][0];
    assert_eq!(r["code"], "software.driver");
    assert!(
        r["message"]
            .as_str()
            .expect("message")
            .starts_with("535.54.03!=550.90.07"),
        "{r}"
    );
    // Drift is listed as without --expect.
    assert!(
        fleet["drift"]
            .as_array()
            .expect("drift")
            .iter()
            .any(|d| d["code"] == "software.driver" && d["majority"] == "550.90.07"),
        "{fleet:#}"
    );
    // Reports of verify without --expect carry no per-port link layer: not judged, and said.
    let notes = fleet["notes"].to_string();
    assert!(
        notes.contains("rdma.link-layer mlx5_0:1") && notes.contains("not judged"),
        "{notes}"
    );
    // The drain line puts the check code first.
    let out = nccltune()
        .args(["fleet", "merge", "--format", "slurm-drain", "--expect"])
        .arg(&golden)
        .arg(&dir)
        .output()
        .expect("drain");
    let drain = String::from_utf8_lossy(&out.stdout);
    assert!(
        drain.contains("NodeName=fn2 State=DRAIN 'Reason=nccltune:software.driver node 535.54.03!=550.90.07"),
        "{drain}"
    );
    assert_eq!(drain.matches("scontrol update").count(), 1, "{drain}");
    // A bad expectations file is a clear error naming it.
    std::fs::write(work.join("bad.toml"), "[gpus]\ncuont = 8\n").expect("test setup");
    let out = nccltune()
        .args(["fleet", "merge", "--expect"])
        .arg(work.join("bad.toml"))
        .arg(&dir)
        .output()
        .expect("merge");
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("bad.toml") && e.contains("cuont"), "{e}");
}

/// A DNS-1123 name or label value as Kubernetes takes it: at most 63 characters of lower-case
/// letters, digits and `-`, starting and ending alphanumeric.
fn dns_label(v: &str, at: &str) {
    assert!(
        !v.is_empty()
            && v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !v.starts_with('-')
            && !v.ends_with('-'),
        "{at}: {v:?} is not a DNS-1123 label"
    );
}

/// Multi-node tests on Kubernetes: one MPIJob (Kubeflow MPI Operator, kubeflow.org/v2beta1)
/// per test, checked against a golden file and a strict structural schema written from the
/// operator's v2beta1 types (`MPIJobSpec`, `RunPolicy`, `ReplicaSpec`; no published JSON schema
/// is available offline), then the launcher's script run with a stand-in mpirun, its log
/// unpacked and merged: the round trip without a cluster.
#[test]
fn kubernetes_mpijob_per_test_matches_golden_and_schema_and_round_trips() {
    let tmp = tempfile::tempdir().expect("test setup");
    let dir = tmp.path().join("k");
    plan(
        &dir,
        &[
            "--nodes",
            "gpu[01-08]",
            "--check",
            "pairs",
            "--launcher",
            "kubernetes",
            "--seed",
            "1",
            "--timeout",
            "120",
            "--image",
            "registry.example/nccl-tests:0.1",
            "--nccl-tests-bin",
            "/opt/nccl-tests/build",
            "--profile",
            "h100x8-ndr400",
        ],
    );
    let pj: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).expect("plan.json"))
        .expect("json");
    let tests = pj["rounds"][0]["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 4);
    let run = std::fs::read_to_string(dir.join("run.sh")).expect("run.sh");
    assert!(
        run.contains("kubectl apply -f \"$HERE/\"k8s/r1/w0 || exit 2"),
        "{run}"
    );
    assert!(
        run.contains("mpijob -l nccltune-fleet-wave=r1-w0-00000001")
            && run.contains("nccltune fleet unpack \"$HERE\" \"$HERE/\"logs/r1-w0.log"),
        "{run}"
    );
    let text = std::fs::read_to_string(dir.join("k8s/r1/w0/t0001.yaml")).expect("manifest written");
    let golden_path = repo().join("fixtures/fleet/k8s-mpijob-r1-t0001.yaml");
    if std::env::var("NCCLTUNE_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&golden_path, &text).expect("test setup");
    }
    let golden = std::fs::read_to_string(&golden_path).expect("golden file");
    assert_eq!(
        text, golden,
        "k8s/r1/w0/t0001.yaml differs from fixtures/fleet/k8s-mpijob-r1-t0001.yaml"
    );

    let mut launchers = Vec::new();
    for (i, t) in tests.iter().enumerate() {
        let id = t["id"].as_str().expect("id");
        let text = std::fs::read_to_string(dir.join(format!("k8s/r1/w0/{id}.yaml"))).expect("manifest");
        let y = yaml_doc(&text);
        let at = format!("MPIJob {id}");
        keys_only(&y, &["apiVersion", "kind", "metadata", "spec"], &at);
        assert_eq!(y["apiVersion"].as_str(), Some("kubeflow.org/v2beta1"));
        assert_eq!(y["kind"].as_str(), Some("MPIJob"));
        keys_only(&y["metadata"], &["name", "labels"], "metadata");
        let name = y["metadata"]["name"].as_str().expect("name");
        dns_label(name, "metadata.name");
        for (k, v) in y["metadata"]["labels"].as_hash().expect("labels") {
            let (k, v) = (
                k.as_str().expect("key"),
                v.as_str().expect("label values are strings"),
            );
            assert!(v.len() <= 63 && !k.is_empty(), "label {k}={v}");
        }
        let spec = &y["spec"];
        keys_only(spec, &["slotsPerWorker", "runPolicy", "mpiReplicaSpecs"], "spec");
        assert_eq!(spec["slotsPerWorker"].as_i64(), Some(8));
        keys_only(
            &spec["runPolicy"],
            &[
                "cleanPodPolicy",
                "backoffLimit",
                "activeDeadlineSeconds",
                "ttlSecondsAfterFinished",
            ],
            "runPolicy",
        );
        assert!(matches!(
            spec["runPolicy"]["cleanPodPolicy"].as_str(),
            Some("All" | "Running" | "None")
        ));
        assert!(
            spec["runPolicy"]["activeDeadlineSeconds"]
                .as_i64()
                .expect("deadline")
                > 120
        );
        let replicas = &spec["mpiReplicaSpecs"];
        keys_only(replicas, &["Launcher", "Worker"], "mpiReplicaSpecs");
        for (role, n) in [("Launcher", 1), ("Worker", 2)] {
            let r = &replicas[role];
            keys_only(r, &["replicas", "template", "restartPolicy"], role);
            assert_eq!(r["replicas"].as_i64(), Some(n), "{role}");
            keys_only(&r["template"], &["metadata", "spec"], "template");
            keys_only(&r["template"]["metadata"], &["labels"], "template.metadata");
            let pod = &r["template"]["spec"];
            keys_only(pod, &["restartPolicy", "affinity", "containers"], "pod spec");
            let c = &pod["containers"];
            assert_eq!(c.as_vec().expect("containers").len(), 1);
            keys_only(
                &c[0],
                &["name", "image", "command", "resources", "securityContext"],
                "container",
            );
            assert_eq!(c[0]["image"].as_str(), Some("registry.example/nccl-tests:0.1"));
            assert!(
                c[0]["command"]
                    .as_vec()
                    .expect("command")
                    .iter()
                    .all(|w| w.as_str().is_some())
            );
        }
        let worker = &replicas["Worker"]["template"]["spec"];
        let values: Vec<&str> = worker["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchExpressions"][0]["values"]
            .as_vec()
            .expect("node list")
            .iter()
            .map(|v| v.as_str().expect("string"))
            .collect();
        let planned: Vec<&str> = t["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|v| v.as_str().expect("node"))
            .collect();
        assert_eq!(values, planned, "workers pinned to the test's nodes");
        assert_eq!(
            worker["containers"][0]["resources"]["limits"]["nvidia.com/gpu"].as_i64(),
            Some(8)
        );
        let cmd = replicas["Launcher"]["template"]["spec"]["containers"][0]["command"][2]
            .as_str()
            .expect("script")
            .to_string();
        assert!(
            cmd.contains("mpirun --allow-run-as-root -np 16 --map-by ppr:8:node -x NCCL_ALGO=Ring"),
            "{cmd}"
        );
        launchers.push((i, cmd));
    }

    // The launcher's script with a stand-in mpirun that runs the stand-in all_reduce_perf
    // (370 GB/s); the first test's output is then made slow (below the target and far below
    // the fleet).
    let fake = tmp.path().join("bin");
    std::fs::create_dir_all(&fake).expect("test setup");
    std::fs::write(
        fake.join("mpirun"),
        format!(
            "#!/bin/sh\nexec env -u SLURM_STEP_NODELIST -u SLURM_JOB_NODELIST bash {} -b 8589934592\n",
            repo().join("tests/slurm/all_reduce_perf").display()
        ),
    )
    .expect("test setup");
    Command::new("chmod")
        .arg("+x")
        .arg(fake.join("mpirun"))
        .status()
        .expect("chmod");
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default());
    let mut log = String::new();
    for (i, cmd) in &launchers {
        let out = Command::new("sh")
            .args(["-c", cmd])
            .env("PATH", &path)
            .output()
            .expect("sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut text = String::from_utf8_lossy(&out.stdout).to_string();
        if *i == 0 {
            text = text
                .replace("  370.00  ", "  120.00  ")
                .replace("bandwidth    : 370", "bandwidth    : 120");
        }
        for l in text.lines() {
            log.push_str(&format!("[pod/launcher-{i}/launcher] {l}\n"));
        }
    }
    assert!(
        log.contains("NCCLTUNE-RESULT r1 t0001 txt # nccl-tests version"),
        "{log}"
    );
    assert!(log.contains("NCCLTUNE-RESULT r1 t0004 rc 0"), "{log}");
    let logf = tmp.path().join("launchers.log");
    std::fs::write(&logf, &log).expect("test setup");
    let out = nccltune()
        .args(["fleet", "unpack"])
        .arg(&dir)
        .arg(&logf)
        .output()
        .expect("unpack");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.join("results/r1/t0001.txt").exists() && dir.join("results/r1/t0002.rc").exists());
    let fleet = merge_json(&dir);
    let slow: BTreeSet<String> = tests[0]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|v| v.as_str().expect("node").to_string())
        .collect();
    assert_eq!(with_status(&fleet, "suspect"), slow, "{fleet:#}");
    assert_eq!(with_status(&fleet, "ok").len(), 6);
    // A txt line for a verify test (or json for an nccl test) is refused, naming the line.
    std::fs::write(&logf, "NCCLTUNE-RESULT r1 t0001 json {}\n").expect("test setup");
    let out = nccltune()
        .args(["fleet", "unpack"])
        .arg(&dir)
        .arg(&logf)
        .output()
        .expect("unpack");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("launchers.log:1"));
}

/// `--format` and `-o FILE` on the fleet steps: plan/next/unpack report what they wrote as
/// JSON, report re-renders a saved fleet.json in any of merge's formats, simulate writes its
/// figures; `-o` writes the file atomically and leaves stdout empty.
#[test]
fn fleet_steps_speak_format_and_output() {
    let tmp = tempfile::tempdir().expect("test setup");
    let work = tmp.path();
    let dir = work.join("p");
    let out = nccltune()
        .args([
            "fleet", "plan", "--nodes", "fn[1-4]", "--check", "pairs", "--format", "json", "-o",
        ])
        .arg(&dir)
        .output()
        .expect("plan");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("plan json");
    assert_eq!(
        (v["nodes"].as_u64(), v["tests"].as_u64(), v["round"].as_u64()),
        (Some(4), Some(2), Some(1))
    );
    assert!(v["run"].as_str().expect("run").ends_with("run.sh"));
    // Results of round 1 through a log, reported as JSON into a file.
    let out = Command::new("bash")
        .arg(repo().join("tests/slurm/all_reduce_perf"))
        .env_remove("SLURM_STEP_NODELIST")
        .env_remove("SLURM_JOB_NODELIST")
        .output()
        .expect("stand-in");
    let mut log = String::new();
    for t in ["t0001", "t0002"] {
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            log.push_str(&format!("NCCLTUNE-RESULT r1 {t} txt {l}\n"));
        }
        log.push_str(&format!("NCCLTUNE-RESULT r1 {t} rc 0\n"));
    }
    let logf = work.join("r1.log");
    std::fs::write(&logf, log).expect("test setup");
    let rep = work.join("unpack.json");
    let out = nccltune()
        .args(["fleet", "unpack", "--format", "json", "-o"])
        .arg(&rep)
        .arg(&dir)
        .arg(&logf)
        .output()
        .expect("unpack");
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&rep).expect("report")).expect("json");
    assert_eq!(v["written"], 2);
    let out = nccltune()
        .args(["fleet", "next", "--format", "json"])
        .arg(&dir)
        .output()
        .expect("next");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("next json");
    assert_eq!(v["step"], "done", "every pair passed: nothing left ({v})");
    assert_eq!(v["summary"]["ok"], 4);
    // report: a saved fleet.json in another format, into a file.
    let fj = work.join("fleet.json");
    let out = nccltune()
        .args(["fleet", "merge", "--format", "json", "-o"])
        .arg(&fj)
        .arg(&dir)
        .output()
        .expect("merge");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prom = work.join("fleet.prom");
    let out = nccltune()
        .args(["fleet", "report", "--format", "prometheus", "-o"])
        .arg(&prom)
        .arg(&fj)
        .output()
        .expect("report");
    assert!(out.status.success() && out.stdout.is_empty());
    let text = std::fs::read_to_string(&prom).expect("prom");
    assert!(text.contains("status=\"ok\"") && text.contains(" 4"), "{text}");
    // simulate --format json -o FILE.
    let sim = work.join("sim.json");
    let out = nccltune()
        .args([
            "fleet", "simulate", "--nodes", "200", "--bad", "2", "--format", "json", "-o",
        ])
        .arg(&sim)
        .output()
        .expect("simulate");
    assert!(out.status.success() && out.stdout.is_empty());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&sim).expect("sim")).expect("json");
    assert_eq!(v["recall"], 1.0, "{v}");
}
