//! `nccltune place` end to end: the real binary on small cluster files written here.

use super::common::nccltune;
use serde_json::Value;
use std::path::{Path, PathBuf};

const CLUSTER: &str = r#"
[defaults]
gpus = 8

[[node]]
name = "n0"
rack = "r0"
used = [6, 7]

[[node]]
name = "n1"
rack = "r0"
used = 6

[[node]]
name = "n2"
rack = "r1"
used = [0, 1, 2, 3]

[[node]]
name = "n3"
rack = "r1"
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = nccltune().arg("place").args(args).output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn json_follows_the_contract_and_parses_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let c = write(dir.path(), "c.toml", CLUSTER);
    let (code, out, err) = run(&[
        "--cluster",
        c.to_str().expect("utf8"),
        "--tp",
        "4",
        "--pp",
        "2",
        "--replicas",
        "2",
        "--format",
        "json",
        "--message-size",
        "1MiB",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["schema"], 1);
    assert_eq!(v["unplaced_replicas"], 0);
    assert!(v["warnings"].is_array());
    let reps = v["replicas"].as_array().expect("replicas");
    assert_eq!(reps.len(), 2);
    assert_eq!(reps[0]["replica"], 0);
    assert_eq!(reps[0]["pp_scope"], "intra_node");
    assert_eq!(reps[1]["pp_scope"], "cross_rack");
    let st = &reps[1]["stages"][0];
    assert_eq!(st["stage"], 0);
    assert_eq!(st["tp_scope"], "intra_node");
    assert!(st["allreduce_us"].as_f64().expect("number") > 0.0);
    assert_eq!(st["gpus"][0], serde_json::json!({"node": "n0", "gpu": 0}));
    assert_eq!(reps[1]["hosts"][1]["cuda_visible_devices"], "4,5,6,7");
    assert_eq!(v["message_bytes"], 1 << 20);
    assert!(
        v["cost_model"]["note"]
            .as_str()
            .expect("note")
            .contains("do not predict NVLS")
    );
}

#[test]
fn hostfile_lists_ranks_in_order_and_writes_one_file_per_replica() {
    let dir = tempfile::tempdir().expect("tmp");
    let c = write(dir.path(), "c.toml", CLUSTER);
    let hosts = dir.path().join("hosts");
    let (code, out, err) = run(&[
        "--cluster",
        c.to_str().expect("utf8"),
        "--tp",
        "4",
        "--pp",
        "2",
        "--replicas",
        "2",
        "--format",
        "hostfile",
        "--hostfile-dir",
        hosts.to_str().expect("utf8"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
    // Replica 0: 8 ranks on n3; replica 1: TP ranks 0-3 on n0, 4-7 on n2.
    let expect: Vec<&str> = std::iter::repeat_n("n3", 8)
        .chain(std::iter::repeat_n("n0", 4))
        .chain(std::iter::repeat_n("n2", 4))
        .collect();
    assert_eq!(lines, expect);
    assert!(out.contains("# n2 ranks 4-7: CUDA_VISIBLE_DEVICES=4,5,6,7"));
    assert!(out.contains("# nodes in first-rank order: n0,n2"));
    let r1 = std::fs::read_to_string(hosts.join("replica-1.hosts")).expect("replica-1.hosts");
    assert_eq!(
        r1.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>(),
        &expect[8..]
    );
    assert!(hosts.join("replica-0.hosts").exists());
    // A second run into the same directory is refused rather than mixed with these files.
    let (code, _, err) = run(&[
        "--cluster",
        c.to_str().expect("utf8"),
        "--tp",
        "8",
        "--hostfile-dir",
        hosts.to_str().expect("utf8"),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("directory is not empty"), "{err}");
}

#[test]
fn impossible_requests_exit_1_and_say_why() {
    let dir = tempfile::tempdir().expect("tmp");
    let c = write(dir.path(), "c.toml", CLUSTER);
    let c = c.to_str().expect("utf8");
    let (code, out, err) = run(&["--cluster", c, "--tp", "8", "--pp", "4"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("need 32 GPUs; 20 are free: 12 missing"), "{err}");
    assert!(out.contains("The request cannot be met"), "{out}");

    let (code, _, err) = run(&["--cluster", c, "--tp", "16", "--strict"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("tp 16 exceeds every node"), "{err}");

    let (code, _, err) = run(&[
        "--cluster",
        c,
        "--tp",
        "4",
        "--pp",
        "2",
        "--replicas",
        "2",
        "--strict",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no rack can hold another replica"), "{err}");
    assert!(
        err.contains("instead: 2 replica(s) fit with --tp-within any"),
        "{err}"
    );
}

#[test]
fn bad_input_exits_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = write(
        dir.path(),
        "bad.toml",
        "[[node]]\nname = \"n0\"\nrack = \"r0\"\ngpus = 8\nused = [8]\n",
    );
    let (code, out, err) = run(&["--cluster", bad.to_str().expect("utf8"), "--tp", "8"]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty());
    assert!(
        err.contains("bad.toml: line 1: node 'n0': used contains 8"),
        "{err}"
    );

    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, b"\x00\x01{garbage").expect("write");
    let (code, _, err) = run(&["--cluster", junk.to_str().expect("utf8"), "--tp", "8"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("junk.json"), "{err}");

    let (code, _, err) = run(&["--nodes", "4", "--tp", "8", "--message-size", "16 parsecs"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown unit"), "{err}");
    let (code, _, _) = run(&["--nodes", "4", "--tp", "0"]);
    assert_eq!(code, Some(2));
    let (code, _, _) = run(&["--tp", "8"]);
    assert_eq!(code, Some(2), "a cluster is required");
}

#[test]
fn synthetic_cluster_max_replicas_and_budget() {
    let (code, out, err) = run(&[
        "--nodes",
        "64",
        "--gpus-per-node",
        "8",
        "--nodes-per-rack",
        "16",
        "--tp",
        "8",
        "--pp",
        "2",
        "--max-replicas",
        "--hidden-size",
        "8192",
        "--tokens",
        "64",
        "--tokens-per-s",
        "30",
        "--layers",
        "80",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["replicas"].as_array().map(Vec::len), Some(32));
    assert_eq!(v["summary"]["replicas_cross_rack"], 0);
    assert_eq!(v["message_bytes"], 8192 * 64 * 2);
    assert!(v["replicas"][0]["budget_share"].as_f64().expect("share") > 0.0);
    assert_eq!(
        v["budget"]["step_budget_us"].as_f64().map(|x| x.round()),
        Some(33333.0)
    );
}

#[test]
fn link_constants_print_and_override() {
    let (code, out, _) = run(&["--print-links"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("[nvlink]") && out.contains("source ="));
    let dir = tempfile::tempdir().expect("tmp");
    let slow = write(
        dir.path(),
        "links.toml",
        &out.replace("per_link_gbytes_per_s = 20.6", "per_link_gbytes_per_s = 2.06"),
    );
    let cost = |extra: &[&str]| {
        let mut a = vec![
            "--nodes",
            "1",
            "--tp",
            "8",
            "--message-size",
            "256MiB",
            "--format",
            "json",
        ];
        a.extend_from_slice(extra);
        let (code, out, err) = run(&a);
        assert_eq!(code, Some(0), "{err}");
        let v: Value = serde_json::from_str(&out).expect("json");
        v["replicas"][0]["stages"][0]["allreduce_us"]
            .as_f64()
            .expect("us")
    };
    let fast = cost(&[]);
    let slowed = cost(&["--links", slow.to_str().expect("utf8")]);
    assert!(slowed > 5.0 * fast, "{fast} {slowed}");
    let bad = write(dir.path(), "bad-links.toml", "[nvlink]\n");
    let (code, _, err) = run(&[
        "--nodes",
        "1",
        "--tp",
        "8",
        "--links",
        bad.to_str().expect("utf8"),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("bad-links.toml"), "{err}");
}

#[test]
fn the_bundled_example_cluster_fills_with_the_fewest_split_groups() {
    let c = super::common::repo().join("fixtures/clusters/example.toml");
    let (code, out, err) = run(&[
        "--cluster",
        c.to_str().expect("utf8"),
        "--tp",
        "4",
        "--pp",
        "2",
        "--max-replicas",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    // 48 free GPUs make 6 replicas; the nodes hold 11 whole groups of 4, so exactly one
    // of the 12 groups has to span nodes.
    assert_eq!(v["summary"]["placed_replicas"], 6);
    assert_eq!(v["summary"]["tp_groups_intra_node"], 11);
    assert_eq!(v["summary"]["tp_groups_spanning_nodes"], 1);
    assert_eq!(v["cluster"]["free_gpus_after"], 0);
    assert_eq!(v["replicas"][4]["pods"], serde_json::json!(["p0"]));
}

#[test]
fn the_table_shows_groups_hosts_budget_and_the_model_caveat() {
    let (code, out, err) = run(&[
        "--nodes",
        "4",
        "--nodes-per-rack",
        "2",
        "--tp",
        "4",
        "--pp",
        "2",
        "--replicas",
        "3",
        "--tokens-per-s",
        "30",
        "--layers",
        "80",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("n0:0-3"), "{out}");
    assert!(out.contains("CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7"), "{out}");
    assert!(
        out.contains("Latency budget at 30 tokens/s: 33333 us per decode step"),
        "{out}"
    );
    assert!(out.contains("do not predict NVLS"), "{out}");
    assert!(err.is_empty(), "{err}");
}

/// The JSON report's rank -> host map of replica 0.
fn printed_ranks(json: &str) -> std::collections::BTreeMap<u64, String> {
    let v: Value = serde_json::from_str(json).expect("json");
    let mut m = std::collections::BTreeMap::new();
    for h in v["replicas"][0]["hosts"].as_array().expect("hosts") {
        for r in h["ranks"].as_array().expect("ranks") {
            m.insert(
                r.as_u64().expect("rank"),
                h["node"].as_str().expect("node").to_string(),
            );
        }
    }
    m
}

/// Runs `mpirun --display-map` with `args` (a host file or a rank file) and returns the rank
/// -> host map of its first JOB MAP. Daemons for the fake hosts start on this machine through
/// a stand-in for ssh that runs the command locally (each with its own session folder).
fn mpirun_map(dir: &Path, np: usize, args: &[&str]) -> std::collections::BTreeMap<u64, String> {
    use std::os::unix::fs::PermissionsExt;
    let agent = dir.join("fake-ssh");
    std::fs::write(
        &agent,
        "#!/bin/sh\nwhile [ \"${1#-}\" != \"$1\" ]; do shift; done\nhost=$1\nshift\nd=\"$FAKE_SSH_DIR/sess-$host\"\nmkdir -p \"$d\"\nexport OMPI_MCA_orte_tmpdir_base=\"$d\"\nexec /bin/sh -c \"$*\"\n",
    )
    .expect("agent");
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut cmd = std::process::Command::new("mpirun");
    cmd.args(["--allow-run-as-root", "--oversubscribe", "--display-map"])
        .args(["--mca", "plm_rsh_agent", agent.to_str().expect("utf8")])
        .args(args)
        .args(["-np", &np.to_string(), "true"])
        .env("FAKE_SSH_DIR", dir)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("mpirun starts");
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("mpirun did not finish in 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mpirun failed: {text}");
    let mut m = std::collections::BTreeMap::new();
    let mut host = None;
    let mut maps = 0;
    for line in text.lines() {
        let l = line.trim();
        if l.contains("JOB MAP") {
            maps += 1;
            if maps > 1 {
                break;
            }
        } else if let Some(rest) = l.strip_prefix("Data for node: ") {
            host = rest.split_whitespace().next().map(str::to_string);
        } else if let Some(i) = l.find("Process rank: ") {
            let r: u64 = l[i + 14..]
                .split_whitespace()
                .next()
                .and_then(|x| x.parse().ok())
                .expect("rank number");
            m.insert(r, host.clone().expect("a node before its ranks"));
        }
    }
    assert_eq!(m.len(), np, "{text}");
    m
}

#[test]
fn mpirun_places_ranks_exactly_as_printed() {
    if which::which("mpirun").is_err() {
        eprintln!("note: mpirun (OpenMPI, Debian package openmpi-bin) not found; skipping the launch check");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    // hb is listed first: replica 0's stage 1 spans hb and ha, so ha holds ranks 0-3 and 6-7
    // and hb 4-5, the interleaving that repeated host lines lose under slot mapping.
    let c = write(
        dir.path(),
        "c.toml",
        "[[node]]\nname = \"hb\"\nrack = \"r0\"\ngpus = 8\nused = 6\n\n[[node]]\nname = \"ha\"\nrack = \"r0\"\ngpus = 8\nused = 2\n",
    );
    let hosts = dir.path().join("hosts");
    let args = [
        "--cluster",
        c.to_str().expect("utf8"),
        "--tp",
        "4",
        "--pp",
        "2",
        "--format",
        "json",
        "--hostfile-dir",
        hosts.to_str().expect("utf8"),
    ];
    let (code, out, err) = run(&args);
    assert_eq!(code, Some(0), "{err}");
    let printed = printed_ranks(&out);
    let on_ha: Vec<u64> = printed
        .iter()
        .filter(|(_, h)| *h == "ha")
        .map(|(r, _)| *r)
        .collect();
    assert_eq!(on_ha, [0, 1, 2, 3, 6, 7], "{printed:?}");
    let hostfile = std::fs::read_to_string(hosts.join("replica-0.hosts")).expect("hosts");
    assert!(hostfile.contains("--map-by seq"), "{hostfile}");
    let seq = mpirun_map(
        &hosts,
        8,
        &[
            "--bind-to",
            "none",
            "--hostfile",
            "replica-0.hosts",
            "--map-by",
            "seq",
        ],
    );
    assert_eq!(seq, printed, "mpirun --map-by seq with the host file");
    // Without the flag OpenMPI merges the repeated lines into slots and maps by slot: the
    // check above would catch a file or a flag that loses the order.
    let by_slot = mpirun_map(&hosts, 8, &["--bind-to", "none", "--hostfile", "replica-0.hosts"]);
    assert_ne!(by_slot, printed, "slot mapping should lose the interleaving");

    // The rank file binds each rank to the logical CPU of its local index: keep to two ranks
    // per host so that it runs on a 2-core machine.
    let c = write(
        dir.path(),
        "c2.toml",
        "[[node]]\nname = \"hb\"\nrack = \"r0\"\ngpus = 2\nused = 1\n\n[[node]]\nname = \"hc\"\nrack = \"r0\"\ngpus = 2\n\n[[node]]\nname = \"ha\"\nrack = \"r0\"\ngpus = 2\nused = 1\n",
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("note: {cpus} CPU: skipping the rank file launch check (it binds 2 ranks per host)");
        return;
    }
    let hosts2 = dir.path().join("hosts2");
    let (code, out, err) = run(&[
        "--cluster",
        c.to_str().expect("utf8"),
        "--tp",
        "2",
        "--pp",
        "2",
        "--format",
        "json",
        "--hostfile-dir",
        hosts2.to_str().expect("utf8"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let printed = printed_ranks(&out);
    let ranked = mpirun_map(&hosts2, 4, &["--rankfile", "replica-0.rankfile"]);
    assert_eq!(ranked, printed, "mpirun --rankfile");
}

#[test]
fn nvl72_keeps_tp16_inside_a_domain_and_h100_nodes_say_they_split() {
    let nvl = super::common::repo().join("fixtures/clusters/gb200-nvl72.toml");
    let (code, out, err) = run(&[
        "--cluster",
        nvl.to_str().expect("utf8"),
        "--tp",
        "16",
        "--pp",
        "2",
        "--replicas",
        "4",
        "--strict",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["request"]["tp_within"], "intra_domain");
    assert_eq!(v["summary"]["tp_groups_intra_domain"], 8);
    for rep in v["replicas"].as_array().expect("replicas") {
        for st in rep["stages"].as_array().expect("stages") {
            assert_eq!(st["tp_scope"], "intra_domain");
            assert_eq!(st["link"], "nvlink-gb200");
            assert!(st["allreduce_us"].as_f64().expect("us") > 0.0);
        }
        assert!(
            rep["hosts"][0]["nvlink_domain"]
                .as_str()
                .expect("domain")
                .starts_with("nvl72-")
        );
    }
    let (code, out, _) = run(&["--cluster", nvl.to_str().expect("utf8"), "--tp", "16"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("1 across trays of one NVLink domain, 0 spanning nodes"),
        "{out}"
    );
    assert!(out.contains("tp-group-in-nvlink-domain"), "{out}");

    let h100 = super::common::repo().join("fixtures/clusters/h100.toml");
    let (code, out, _) = run(&[
        "--cluster",
        h100.to_str().expect("utf8"),
        "--tp",
        "16",
        "--pp",
        "2",
    ]);
    assert_eq!(code, Some(0));
    assert!(out.contains("2 TP group(s) are split across nodes"), "{out}");
    let (code, _, err) = run(&[
        "--cluster",
        h100.to_str().expect("utf8"),
        "--tp",
        "16",
        "--strict",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("tp 16 exceeds every node"), "{err}");
}

#[test]
fn a_hostile_node_name_is_refused_before_any_host_file_is_written() {
    let dir = tempfile::tempdir().expect("tmp");
    let c = write(
        dir.path(),
        "c.toml",
        "[[node]]\nname = \"evil\\nhost slots=999\"\nrack = \"r0\"\ngpus = 8\n[[node]]\nname = \"#c\"\nrack = \"r0\"\ngpus = 8\n",
    );
    let hosts = dir.path().join("hosts");
    let (code, out, err) = run(&[
        "--cluster",
        c.to_str().expect("utf8"),
        "--tp",
        "8",
        "--format",
        "hostfile",
        "--hostfile-dir",
        hosts.to_str().expect("utf8"),
    ]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("c.toml: line 1: node #1: name 'evil\\nhost slots=999' contains a line break"),
        "{err}"
    );
    assert!(!hosts.exists());
}
