//! `nccltune bench` end to end: parsing every nccl-tests sample, verdicts against targets,
//! comparisons, plan and tune, exit codes, the JSON contract.

use super::common::{fixture, nccltune, repo, sample, samples};
use nccltune::parse::nccl_tests::{self, Run};
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;

fn nt(name: &str) -> PathBuf {
    repo().join("fixtures/nccl-tests").join(name)
}

fn bench(args: &[&str]) -> (Option<i32>, String, String) {
    let out = nccltune().arg("bench").args(args).output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> (Option<i32>, Value) {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    let (code, out, err) = bench(&a);
    (
        code,
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}")),
    )
}

fn p(path: &std::path::Path) -> &str {
    path.to_str().expect("utf8")
}

#[test]
fn a_healthy_two_node_run_passes_its_profile_and_the_json_contract_holds() {
    let f = nt("h100-2node-allreduce-ring.txt");
    let (code, v) = json(&["--parse", p(&f), "--profile", "h100x8-ndr400"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["schema"], 1);
    assert_eq!(v["verdict"], "pass");
    let run = &v["runs"][0];
    for key in [
        "source",
        "collective",
        "collective_inferred",
        "nranks",
        "nccl_version",
        "devices",
        "rows",
        "avg_busbw_gbps",
        "out_of_bounds",
        "errors",
    ] {
        assert!(run.get(key).is_some(), "missing {key}");
    }
    assert_eq!(
        (run["collective"].as_str(), run["collective_inferred"].as_bool()),
        (Some("all_reduce"), Some(false))
    );
    assert_eq!(
        (run["nranks"].as_u64(), run["nccl_version"].as_str()),
        (Some(16), Some("2.21.5"))
    );
    let row = &run["rows"][0];
    assert_eq!(
        (
            row["size_bytes"].as_u64(),
            row["count"].as_u64(),
            row["type"].as_str(),
            row["redop"].as_str(),
            row["root"].as_i64()
        ),
        (Some(8), Some(2), Some("float"), Some("sum"), Some(-1))
    );
    assert_eq!(row["out_of_place"]["wrong"], 0);
    assert!(row["out_of_place"]["max_error"].is_null());
    let big = run["sizes"]
        .as_array()
        .expect("sizes")
        .iter()
        .filter(|s| s["status"] == "pass")
        .count();
    assert_eq!(big, 4, "1, 2, 4 and 8 GiB are judged");
    assert!(
        v["findings"]
            .as_array()
            .expect("f")
            .iter()
            .any(|f| f["code"] == "two-node-tree")
    );
}

#[test]
fn a_slow_run_fails_with_causes_and_a_baseline_shows_the_regression() {
    let slow = nt("h100-2node-allreduce-slow.txt");
    let (code, out, _) = bench(&["--parse", p(&slow), "--profile", "h100x8-ndr400"]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("Usual causes of a shortfall") && out.contains("GPUDirect RDMA"),
        "{out}"
    );
    assert!(out.contains("verdict: fail"));
    let ring = nt("h100-2node-allreduce-ring.txt");
    let (code, v) = json(&["--parse", p(&slow), "--compare", p(&ring)]);
    assert_eq!(code, Some(1));
    let cmp = v["runs"][0]["comparison"].as_array().expect("comparison");
    let gib = cmp
        .iter()
        .find(|c| c["size_bytes"] == 1_073_741_824u64)
        .expect("1 GiB");
    assert_eq!(gib["metric"], "busbw");
    assert!(
        gib["change_pct"].as_f64().is_some_and(|c| c < -20.0) && gib["regression"] == true,
        "{gib}"
    );
    let (code, _) = json(&["--parse", p(&ring), "--compare", p(&ring)]);
    assert_eq!(code, Some(0));
    let (code, _) = json(&["--parse", p(&slow), "--compare", p(&ring), "--tolerance", "50"]);
    assert_eq!(code, Some(0), "within a 50 % tolerance");
}

#[test]
fn targets_derived_from_the_node_report() {
    let ring = nt("h100-2node-allreduce-ring.txt");
    let node = fixture("h100-8gpu-ndr400");
    let (code, v) = json(&["--parse", p(&ring), "--from-node", "--replay", p(&node)]);
    assert_eq!(code, Some(0), "{v}");
    let size = v["runs"][0]["sizes"]
        .as_array()
        .expect("s")
        .iter()
        .find(|s| s["size_bytes"] == 8_589_934_592u64)
        .expect("8G")
        .clone();
    assert_eq!(size["expected_gbps"], 384.0, "8 rails x 400 Gb/s / 8 x 0.96");
    assert!(
        v["runs"][0]["targets_from"]
            .as_str()
            .is_some_and(|t| t.contains("derived"))
    );
    let slow = nt("h100-2node-allreduce-slow.txt");
    let (code, _) = json(&["--parse", p(&slow), "--from-node", "--replay", p(&node)]);
    assert_eq!(code, Some(1));
    let json_run = nt("json/h100-1node-g8-allreduce.json");
    let (code, v) = json(&["--parse", p(&json_run), "--from-node", "--replay", p(&node)]);
    assert_eq!(code, Some(0), "{v}");
    assert!(
        v["runs"][0]["targets_from"]
            .as_str()
            .is_some_and(|t| t.contains("h100x8-nvswitch"))
    );
    assert!(
        v["findings"]
            .as_array()
            .expect("f")
            .iter()
            .any(|f| f["code"] == "in-switch-reduction")
    );
}

#[test]
fn wrong_data_and_failed_or_cut_runs_exit_1() {
    let (code, v) = json(&["--parse", p(&nt("h100-2node-allreduce-wrong.txt"))]);
    assert_eq!(code, Some(1));
    let wrong: Vec<&Value> = v["runs"][0]["sizes"]
        .as_array()
        .expect("s")
        .iter()
        .filter(|s| s["status"] == "wrong")
        .collect();
    assert_eq!(wrong.len(), 1);
    assert_eq!(wrong[0]["size_bytes"], 1_048_576);
    let (code, v) = json(&["--parse", p(&nt("h100-2node-allreduce-cut.txt"))]);
    assert_eq!(code, Some(1));
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .expect("f")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"run-failed") && codes.contains(&"run-truncated"),
        "{codes:?}"
    );
    assert_eq!(v["runs"][0]["errors"].as_array().map(Vec::len), Some(1));
}

#[test]
fn json_output_of_nccl_tests_is_read_as_the_writer_writes_it() {
    // A clean file version 3 run, one process with -g 8: 8 ranks, errors [""] is no error.
    let (code, v) = json(&[
        "--parse",
        p(&nt("json/h100-1node-g8-allreduce.json")),
        "--profile",
        "h100x8-nvswitch",
    ]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["verdict"], "pass");
    let run = &v["runs"][0];
    assert_eq!(
        (
            run["collective"].as_str(),
            run["nranks"].as_u64(),
            run["format"].as_str(),
            run["nccl_version"].as_str(),
            run["json_version"].as_u64()
        ),
        (Some("all_reduce"), Some(8), Some("json"), Some("2.27.3"), Some(3))
    );
    assert_eq!(run["errors"].as_array().map(Vec::len), Some(0));
    assert_eq!(run["rows"][0]["root"], -1);
    assert_eq!(run["rows"][0]["out_of_place"]["wrong"], 0);
    let out = serde_json::to_string(&v).expect("json");
    assert!(
        !out.contains("do-not-print-me"),
        "only NCCL_* variables of the env are kept"
    );

    // -np 2 -g 8 over two hosts (file version 2): 16 ranks; the recorded NCCL_ALGO=Ring
    // silences the two-node Tree note.
    let (code, v) = json(&["--parse", p(&nt("json/h100-2node-np2-g8-allreduce-ring.json"))]);
    assert_eq!(code, Some(0), "{v}");
    let run = &v["runs"][0];
    assert_eq!(
        (run["nranks"].as_u64(), run["processes"].as_u64()),
        (Some(16), Some(2))
    );
    assert_eq!(run["nccl_env"]["NCCL_ALGO"], "Ring");
    assert_eq!(run["nccl_env"]["NCCL_DEBUG_SUBSYS"], "INIT,NET");
    assert!(
        !v["findings"]
            .as_array()
            .expect("f")
            .iter()
            .any(|f| f["code"] == "two-node-tree"),
        "{v}"
    );

    // -c 0 (file version 1, nccl-tests 2.17.5 spelling of the average): nwrong null, "nan".
    let (code, v) = json(&["--parse", p(&nt("json/h100-1node-c0-allgather.json"))]);
    assert_eq!(code, Some(0), "{v}");
    let run = &v["runs"][0];
    assert!(run["rows"][3]["out_of_place"]["wrong"].is_null());
    assert_eq!(run["rows"][0]["out_of_place"]["busbw_not_finite"], true);
    assert!(
        run["avg_busbw_gbps"].as_f64().is_some_and(|a| a > 10.0),
        "{}",
        run["avg_busbw_gbps"]
    );
    assert_eq!(run["nccl_version"], "2.21.5");

    // Three wrong elements in the out-of-place 1 MiB row: that row, exit 1.
    let (code, v) = json(&["--parse", p(&nt("json/h100-1node-g8-allreduce-wrong.json"))]);
    assert_eq!(code, Some(1), "{v}");
    let rows = v["runs"][0]["rows"].as_array().expect("rows");
    let bad: Vec<&Value> = rows
        .iter()
        .filter(|r| r["out_of_place"]["wrong"].as_u64().is_some_and(|w| w > 0))
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(
        (
            bad[0]["size_bytes"].as_u64(),
            bad[0]["out_of_place"]["wrong"].as_u64()
        ),
        (Some(1 << 20), Some(3))
    );
    let sizes = v["runs"][0]["sizes"].as_array().expect("sizes");
    let wrong: Vec<u64> = sizes
        .iter()
        .filter(|s| s["status"] == "wrong")
        .filter_map(|s| s["size_bytes"].as_u64())
        .collect();
    assert_eq!(wrong, [1 << 20]);
}

#[test]
fn a_cut_json_file_is_an_error_for_that_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let whole = std::fs::read_to_string(nt("json/h100-1node-g8-allreduce.json")).expect("read");
    let cut = dir.path().join("cut.json");
    std::fs::write(&cut, &whole[..whole.len() / 2]).expect("write");
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").expect("write");
    let good = nt("h100-2node-allreduce-ring.txt");
    // Each file its own result: the good one judged and printed, the bad ones errors, exit 1.
    let (code, v) = json(&[
        "--parse",
        p(&good),
        p(&cut),
        p(&empty),
        "--profile",
        "h100x8-ndr400",
    ]);
    assert_eq!(code, Some(1), "{v}");
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3);
    assert!(
        runs[0]["sizes"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x["status"] == "pass"))
    );
    assert!(
        runs[1]["input_error"]
            .as_str()
            .is_some_and(|e| e.contains("cut-off JSON")),
        "{}",
        runs[1]
    );
    assert!(
        runs[2]["input_error"]
            .as_str()
            .is_some_and(|e| e.contains("empty")),
        "{}",
        runs[2]
    );
    let (code, out, _) = bench(&["--parse", p(&good), p(&empty)]);
    assert_eq!(code, Some(1));
    assert!(out.contains("input-error") && out.contains("8 GiB"), "{out}");
    // Only bad files: nothing could be judged, exit 2.
    let (code, _, err) = bench(&["--parse", p(&cut)]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cut.json"), "{err}");
}

#[test]
fn input_that_is_not_nccl_tests_output_exits_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, b"\x00\x01hello\xff\nnot a benchmark\n").expect("write");
    let (code, _, err) = bench(&["--parse", p(&junk)]);
    assert_eq!(code, Some(2));
    assert!(err.contains("junk.txt"), "{err}");
    let (code, _, _) = bench(&["--parse", "/nonexistent.txt"]);
    assert_eq!(code, Some(2));
    let (code, _, err) = bench(&[
        "--parse",
        p(&nt("h100-2node-allreduce-ring.txt")),
        "--profile",
        "b300x72",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("h100x8-ndr400"), "lists the profiles: {err}");
}

#[test]
fn standard_input_and_several_files() {
    let text = std::fs::read(nt("h100-2node-allreduce-ring.txt")).expect("read");
    let out = nccltune()
        .args(["bench", "--parse", "-", "--format", "json"])
        .write_stdin(text)
        .output()
        .expect("run");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["runs"][0]["source"], "-");
    let (_, v) = json(&[
        "--parse",
        p(&nt("h100-2node-allreduce-ring.txt")),
        p(&nt("h100-2node-allreduce-slow.txt")),
    ]);
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(2));
}

#[test]
fn plan_writes_a_script_and_tune_a_tuner_file() {
    let (code, out, _) = bench(&["plan", "--nodes", "2", "--launcher", "mpirun", "--sweep"]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("#!/usr/bin/env bash")
            && out.contains("NCCL_ALGO=Ring")
            && out.contains("all_reduce.Tree.LL.txt")
    );
    let (code, _, err) = bench(&["plan", "--nodes", "2"]);
    assert_eq!(code, Some(2), "local launcher on two nodes: {err}");
    // NVLS in the sweep where the node has NVSwitch and Hopper GPUs, not on an A100 node.
    let h100 = fixture("h100-8gpu-ndr400");
    let (code, out, err) = bench(&["plan", "--sweep", "--from-node", "--replay", p(&h100)]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("all_reduce.NVLS.Simple.txt"), "{err}");
    let a100 = fixture("a100-8gpu-hdr200");
    let (_, out, err) = bench(&["plan", "--sweep", "--from-node", "--replay", p(&a100)]);
    assert!(!out.contains("NVLS") && err.contains("not in the sweep"), "{err}");
    let (code, _, err) = bench(&[
        "plan",
        "--nodes",
        "65536",
        "--gpus-per-node",
        "65536",
        "--launcher",
        "srun",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--gpus-per-node 65536"), "{err}");
    let (code, _, err) = bench(&[
        "plan",
        "--nodes",
        "4096",
        "--gpus-per-node",
        "512",
        "--launcher",
        "srun",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("ranks"), "{err}");

    let (conf, out) = tune_sweep(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = conf.lines().filter(|l| !l.starts_with('#')).collect();
    // NCCL's own Tree/LL below 32 KiB (its TUNING lines), the measured Tree/LL128 in the middle,
    // NCCL's own NVLSTree/Simple above 8 MiB up to the largest size_t.
    assert_eq!(
        rows,
        [
            "allreduce,0,32767,tree,ll,0,2,16",
            "allreduce,32768,8388607,tree,ll128,0,2,16",
            "allreduce,8388608,18446744073709551615,nvls_tree,simple,0,2,16"
        ]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("against the default (noise"));
    let (conf, _) = tune_sweep(&["--any-shape"]);
    assert!(
        conf.contains("allreduce,32768,8388607,tree,ll128,0,-1,-1\n"),
        "{conf}"
    );
    // Without the default run's TUNING lines the default-winning ranges are uncovered: loud, exit 1.
    let files: Vec<String> = sweep_files()
        .into_iter()
        .filter(|f| f.ends_with(".json"))
        .collect();
    let mut fake_default = std::fs::read_to_string(nt("sweep/all_reduce.default.txt")).expect("read");
    fake_default = fake_default
        .lines()
        .filter(|l| !l.contains("Bytes -> Algo"))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().join("all_reduce.default.txt");
    std::fs::write(&d, fake_default).expect("write");
    let out = nccltune()
        .args(["bench", "tune"])
        .args(&files)
        .arg(&d)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ONE channel") && err.contains("allreduce 0..32767"),
        "{err}"
    );
}

fn sweep_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(nt("sweep"))
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.path().display().to_string())
        .collect();
    files.sort();
    files
}

/// `bench tune` over the sweep fixtures (JSON forced runs, the default run as text with NCCL's
/// TUNING lines): the conf text and the process output.
fn tune_sweep(extra: &[&str]) -> (String, std::process::Output) {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = dir.path().join("nccl_tuner.conf");
    let out = nccltune()
        .args(["bench", "tune"])
        .args(sweep_files())
        .args(extra)
        .arg("-o")
        .arg(&conf)
        .output()
        .expect("run");
    (std::fs::read_to_string(&conf).unwrap_or_default(), out)
}

/// Mean of out-of-place and in-place times at `size` over `runs`.
fn mean_time(runs: &[&Run], size: u64) -> Option<f64> {
    let v: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.rows.iter().filter(|row| row.size_bytes == size))
        .flat_map(|row| {
            [
                row.out_of_place.time_us,
                row.in_place.as_ref().and_then(|m| m.time_us),
            ]
        })
        .flatten()
        .collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

#[test]
fn nccls_example_tuner_plugin_obeys_the_tuner_file() {
    let client = repo().join("../shared/clients/nccl-tuner-example");
    if !client.join("plugin.c").exists() {
        assert!(
            std::env::var("NCCLTUNE_REQUIRE_SAMPLES").as_deref() != Ok("1"),
            "{} is missing and NCCLTUNE_REQUIRE_SAMPLES=1",
            client.display()
        );
        eprintln!(
            "note: {} not found; skipping the tuner plugin test",
            client.display()
        );
        return;
    }
    let Ok(cc) = which::which("cc") else {
        eprintln!("note: no C compiler (cc); skipping the tuner plugin test");
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let so = dir.path().join("libnccl-tuner-example.so");
    let harness = dir.path().join("harness");
    let inc = client.join("nccl");
    let build = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(&cc).args(args).output().expect("cc");
        assert!(
            out.status.success(),
            "cc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    build(&[
        "-O2".as_ref(),
        "-I".as_ref(),
        inc.as_os_str(),
        "-fPIC".as_ref(),
        "-shared".as_ref(),
        "-o".as_ref(),
        so.as_os_str(),
        client.join("plugin.c").as_os_str(),
    ]);
    build(&[
        "-O2".as_ref(),
        "-I".as_ref(),
        inc.as_os_str(),
        "-o".as_ref(),
        harness.as_os_str(),
        client.join("harness.c").as_os_str(),
        "-ldl".as_ref(),
    ]);
    let (conf_text, out) = tune_sweep(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = dir.path().join("nccl_tuner.conf");
    std::fs::write(&conf, &conf_text).expect("write");

    // What was measured, read independently of `bench tune`.
    let mut runs: Vec<(Option<(String, String)>, Run)> = Vec::new();
    for f in sweep_files() {
        let text = std::fs::read_to_string(&f).expect("read");
        if f.ends_with(".json") {
            let run = nccl_tests::parse_json(&text, &f).expect("json");
            let a = run.nccl_env.get("NCCL_ALGO").expect("algo").to_lowercase();
            let p = run.nccl_env.get("NCCL_PROTO").expect("proto").to_lowercase();
            let a = if a == "nvlstree" {
                "nvls_tree".to_string()
            } else {
                a
            };
            runs.push((Some((a, p)), run));
        } else {
            runs.extend(nccl_tests::parse(&text, &f).into_iter().map(|r| (None, r)));
        }
    }
    let default: Vec<&Run> = runs.iter().filter(|(c, _)| c.is_none()).map(|(_, r)| r).collect();
    let nccl_own = |size: u64| {
        default[0]
            .nccl_choices
            .iter()
            .find(|c| c.bytes == size)
            .map(|c| (c.algo.clone(), c.proto.clone()))
    };
    let nranks = default[0].nranks.expect("ranks");
    let sizes: Vec<u64> = (3..=34).map(|e| 1u64 << e).collect();
    let mut args: Vec<String> = vec![so.display().to_string(), nranks.to_string(), "2".into()];
    for s in &sizes {
        args.extend(["allreduce".to_string(), s.to_string()]);
    }
    let out = std::process::Command::new(&harness)
        .args(&args)
        .env("NCCL_TUNER_CONFIG_FILE", &conf)
        .output()
        .expect("harness");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let results: Vec<&str> = text.lines().filter(|l| l.starts_with("RESULT")).collect();
    assert_eq!(results.len(), sizes.len(), "{text}");
    let mut measured_wins = 0;
    for (line, &size) in results.iter().zip(&sizes) {
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|t| t.strip_prefix(k))
                .unwrap_or_else(|| panic!("{k} in {line}"))
                .to_string()
        };
        assert_eq!(field("rc="), "0", "{line}");
        assert_eq!(
            field("nChannels="),
            "0",
            "NCCL must keep its own channel count: {line}"
        );
        let got = (field("algo="), field("proto="));
        let def = mean_time(&default, size).expect("default measured");
        let forced: Vec<(&(String, String), f64)> = runs
            .iter()
            .filter_map(|(c, r)| Some((c.as_ref()?, mean_time(&[r], size)?)))
            .collect();
        let fastest = forced
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("forced runs");
        if let Some((_, t)) = forced.iter().find(|(c, _)| **c == got) {
            assert!(
                *t <= def * 1.01,
                "{size} B: {got:?} measured {t:.2} us, slower than the default {def:.2} us"
            );
        }
        if got == *fastest.0 && fastest.1 < def * 0.99 {
            measured_wins += 1;
        } else {
            assert_eq!(
                Some(got.clone()),
                nccl_own(size),
                "{size} B: neither the measured winner {fastest:?} nor NCCL's own choice"
            );
        }
    }
    assert!(
        measured_wins >= 5,
        "the Tree/LL128 range is applied ({measured_wins} sizes)"
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    // A large input whose table does not fit a pipe buffer.
    let dir = tempfile::tempdir().expect("tmp");
    let big = dir.path().join("big.txt");
    let one = std::fs::read_to_string(nt("h100-2node-allreduce-ring.txt")).expect("read");
    std::fs::write(&big, one.repeat(300)).expect("write");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("nccltune"))
        .args(["bench", "--profile", "h100x8-ndr400", "--parse"])
        .arg(&big)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 64];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("read");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn parse(files: &[(String, String)], prefix: &str) -> Vec<Run> {
    nccl_tests::parse(sample(files, prefix), prefix)
}

#[test]
fn nccl_tests_samples() {
    let Some(files) = samples("nccl-tests") else {
        return;
    };
    for (name, text) in &files {
        let _ = nccl_tests::parse(text, name);
    }
    let ar = &parse(&files, "superbench-a100x8-allreduce")[0];
    assert_eq!(
        (ar.rows.len(), ar.nranks, ar.format.as_str()),
        (34, Some(8), "old")
    );
    assert_eq!((ar.rows[0].size_bytes, ar.rows[1].size_bytes), (0, 0));
    assert!(
        ar.rows
            .iter()
            .all(|r| r.out_of_place.max_error.is_none() && r.out_of_place.wrong.is_none()),
        "N/A"
    );
    assert_eq!((ar.avg_busbw_gbps, ar.out_of_bounds), (Some(68.4048), Some(0)));
    let ag = &parse(&files, "superbench-a100x8-allgather")[0];
    assert!(ag.rows.iter().all(|r| r.redop.is_empty()));
    let a2a = &parse(&files, "superbench-a100x8-alltoall")[0];
    assert_eq!(a2a.rows.len(), 34);
    let rs = &parse(&files, "superbench-a100x8-reducescatter")[0];
    assert!(rs.rows.iter().all(|r| r.root == -1 && r.redop == "sum"));
    let deepops = &parse(&files, "deepops")[0];
    assert!(
        deepops
            .rows
            .iter()
            .any(|r| r.out_of_place.max_error == Some(2e-7))
    );
    let gb200 = &parse(&files, "coreweave")[0];
    assert_eq!(gb200.rows.last().map(|r| r.size_bytes), Some(17_179_869_184));
    assert_eq!(gb200.avg_busbw_gbps, Some(688.487));
    let srun = &parse(&files, "awsome-p4de")[0];
    assert_eq!(srun.rows.len(), 29);
    let efa = &parse(&files, "awsdoeks")[0];
    assert_eq!(
        (efa.nranks, efa.nccl_version.as_deref(), efa.out_of_bounds),
        (Some(2), Some("2.12.7+cuda11.4"), Some(0))
    );
    let dup = &parse(&files, "issue-nccltests107")[0];
    assert!(dup.truncated && dup.rows.is_empty());
    let fp = &parse(&files, "issue-npkit19")[0];
    assert!(fp.rows.iter().any(|r| r.out_of_place.max_error == Some(1e-7)));
    let zero = &parse(&files, "issue-nccltests128")[0];
    assert_eq!(zero.rows.iter().filter(|r| r.size_bytes == 0).count(), 5);
    let sr = &parse(&files, "issue-nccltests214")[0];
    assert!(
        sr.rows
            .iter()
            .all(|r| r.in_place.as_ref().is_some_and(|m| m.wrong.is_none())),
        "in-place #wrong is N/A"
    );
    let a2a_none = &parse(&files, "issue-deepep303")[0];
    assert!(a2a_none.rows.iter().all(|r| r.redop == "none"));
    let tagged = &parse(&files, "issue-awsk8stester503")[0];
    assert_eq!(tagged.rows.len(), 3);
    let rccl = &parse(&files, "issue-hpcaienvs30")[0];
    assert_eq!(rccl.rows.len(), 1);
    let ag_old = &parse(&files, "issue-nccl340")[0];
    assert_eq!(ag_old.rows.len(), 12);
    assert!(ag_old.rows.iter().all(|r| r.out_of_place.max_error == Some(0.0)));
    let abort = parse(&files, "issue-nccltests322");
    assert!(abort[0].errors.iter().all(|e| e.contains("Test NCCL failure")) && !abort[0].errors.is_empty());
    let shm = parse(&files, "issue-nccltests166");
    assert_eq!(shm[0].errors.len(), 1);
    let old = parse(&files, "issue-nccl257");
    assert_eq!(old[0].nccl_version.as_deref(), Some("2.4.8+cuda10.0"));
    let v1 = parse(&files, "issue-nccltests7");
    assert!(
        v1[0].truncated,
        "the 2018 header without `#` starts a run that the excerpt cuts off"
    );
}

#[test]
fn plot_draws_one_line_per_run_with_the_target_band() {
    let dir = tempfile::tempdir().expect("tmp");
    let svg = dir.path().join("busbw.svg");
    let (code, _, err) = bench(&[
        "--parse",
        p(&nt("h100-2node-allreduce-ring.txt")),
        p(&nt("h100-2node-allreduce-slow.txt")),
        "--profile",
        "h100x8-ndr400",
        "--plot",
        p(&svg),
    ]);
    assert_eq!(code, Some(1), "{err}");
    let text = std::fs::read_to_string(&svg).expect("svg");
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
    assert_eq!(text.matches("<polyline").count(), 2);
    assert!(text.contains("target 346-384 GB/s"), "the band: 0.9 x 384 to 384");
    // --compare draws the baseline too (dashed), and the legend names both.
    let (code, _, err) = bench(&[
        "--parse",
        p(&nt("h100-2node-allreduce-slow.txt")),
        "--compare",
        p(&nt("h100-2node-allreduce-ring.txt")),
        "--plot",
        p(&svg),
    ]);
    assert_eq!(code, Some(1), "{err}");
    let text = std::fs::read_to_string(&svg).expect("svg");
    assert_eq!(text.matches("<polyline").count(), 2, "{text}");
    assert_eq!(
        text.matches("stroke-dasharray").count(),
        2,
        "baseline curve and its legend entry"
    );
    assert!(text.contains("baseline h100-2node-allreduce-ring.txt"));
    // Even y ticks: the labels are multiples of one step.
    let ticks: Vec<f64> = text
        .lines()
        .filter(|l| l.contains("text-anchor=\"end\""))
        .filter_map(|l| l.split('>').nth(1)?.split('<').next()?.parse().ok())
        .collect();
    assert!(ticks.len() >= 4, "{ticks:?}");
    let step = ticks[1] - ticks[0];
    assert!(
        ticks.windows(2).all(|w| (w[1] - w[0] - step).abs() < 1e-9),
        "{ticks:?}"
    );
    // The legend box lies inside the picture.
    let rect = text
        .lines()
        .find(|l| l.contains("fill-opacity=\"0.9\""))
        .expect("legend box");
    let num = |k: &str| -> f64 {
        rect.split(&format!("{k}=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|v| v.parse().ok())
            .expect(k)
    };
    assert!(num("x") + num("width") <= 860.0 && num("y") + num("height") <= 500.0);
}

#[test]
fn run_streams_saves_the_raw_log_and_judges() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("ok.log");
    let fixture = nt("h100-2node-allreduce-ring.txt");
    let (code, out, err) = bench(&[
        "run",
        "--log",
        p(&log),
        "--profile",
        "h100x8-ndr400",
        "--",
        "cat",
        p(&fixture),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("verdict: pass"));
    assert!(err.contains("size   8589934592 B"), "progress per size: {err}");
    assert_eq!(
        std::fs::read(&log).expect("log"),
        std::fs::read(&fixture).expect("fixture"),
        "the raw output, byte for byte"
    );
    // A stand-in that fails part way: the log is kept and the exit code says no.
    let bad = dir.path().join("bad.log");
    let script = format!(
        "head -n 30 '{}'; echo 'node1: Test NCCL failure common.cu:1279 unhandled system error'; exit 3",
        p(&fixture)
    );
    let (code, out, _) = bench(&["run", "--log", p(&bad), "--", "sh", "-c", &script]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("run-failed") || out.contains("run-truncated"),
        "{out}"
    );
    assert!(
        std::fs::read_to_string(&bad)
            .expect("kept")
            .contains("Test NCCL failure")
    );
}

fn codes(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["code"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_verdict_out_of_the_box_from_what_the_log_shows() {
    // 2 x 8 H100 with NCCL's NET/IB lines (names and speed=): judged against 8 x 400 Gb/s.
    let (code, v) = json(&["--parse", p(&nt("h100-2node-allreduce-netib.txt"))]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["verdict"], "pass");
    let run = &v["runs"][0];
    assert_eq!(
        (
            run["hardware"]["nics"].as_u64(),
            run["hardware"]["nic_gbps"].as_f64()
        ),
        (Some(8), Some(400.0))
    );
    assert_eq!(run["hardware"]["network"], "IB");
    let big = run["sizes"]
        .as_array()
        .expect("s")
        .iter()
        .find(|s| s["size_bytes"] == 8_589_934_592u64)
        .expect("8G")
        .clone();
    assert_eq!(big["expected_gbps"], 384.0);
    let assumed = run["hardware"]["assumptions"].as_array().expect("a");
    assert!(
        assumed
            .iter()
            .any(|a| a.as_str().is_some_and(|a| a.contains("NVIDIA H100 80GB HBM3")))
    );
    assert!(
        !codes(&v).contains(&"two-node-tree".to_string()),
        "NCCL_ALGO=Ring was recorded"
    );

    // The same run without NET lines: no verdict, the peak beside the usual figure, the flag named.
    let (code, v) = json(&["--parse", p(&nt("h100-2node-allreduce-ring.txt"))]);
    assert_eq!((code, v["verdict"].as_str()), (Some(0), Some("unknown")));
    let nf = &v["runs"][0]["no_figure"];
    assert!(nf["flag"].as_str().is_some_and(|f| f.contains("--nics")), "{nf}");
    assert!(nf["usual"].as_str().is_some_and(|u| u.contains("400")), "{nf}");
    assert!(
        v["runs"][0]["peak_busbw_gbps"]
            .as_f64()
            .is_some_and(|p| p > 300.0)
    );
    let ring = nt("h100-2node-allreduce-ring.txt");
    let (code, v) = json(&["--parse", p(&ring), "--nics", "8", "--nic-gbps", "400"]);
    assert_eq!((code, v["verdict"].as_str()), (Some(0), Some("pass")), "{v}");
    let (code, _) = json(&["--parse", p(&ring), "--nics", "8", "--nic-gbps", "800"]);
    assert_eq!(code, Some(1), "8 x 800 Gb/s is not reached");
    let (code, _, err) = bench(&["--parse", p(&ring), "--nics", "8"]);
    assert_eq!(code, Some(2), "{err}");

    // One node: the NVSwitch figure for its GPU model.
    let (code, v) = json(&["--parse", p(&nt("json/h100-1node-g8-allreduce.json"))]);
    assert_eq!((code, v["verdict"].as_str()), (Some(0), Some("pass")), "{v}");
    assert!(
        v["runs"][0]["targets_from"]
            .as_str()
            .is_some_and(|t| t.contains("NVSwitch") && t.contains("nvidia.com"))
    );
    assert!(
        v["rule"]
            .as_str()
            .is_some_and(|r| r.contains("NCCL_TESTS_MIN_BW") && r.contains("average"))
    );
}

#[test]
fn targets_that_do_not_fit_the_run_are_errors_never_passes() {
    let one = nt("json/h100-1node-g8-allreduce.json");
    let (code, v) = json(&["--parse", p(&one), "--profile", "h100x8-ndr400"]);
    assert_eq!((code, v["verdict"].as_str()), (Some(1), Some("fail")), "{v}");
    assert!(codes(&v).contains(&"targets-mismatch".to_string()));
    assert!(
        v["runs"][0]["sizes"]
            .as_array()
            .expect("s")
            .iter()
            .all(|s| s["status"] != "pass")
    );
    let two = nt("h100-2node-allreduce-netib.txt");
    let (code, v) = json(&["--parse", p(&two), "--profile", "h100x8-nvswitch"]);
    assert_eq!(code, Some(1));
    let msg = v["findings"].to_string();
    assert!(msg.contains("spans 2 hosts"), "{msg}");
    let (code, v) = json(&["--parse", p(&two), "--profile", "a100x8-hdr200"]);
    assert_eq!(code, Some(1));
    assert!(
        v["findings"]
            .to_string()
            .contains("for A100 GPUs but the run used NVIDIA H100"),
        "{v}"
    );
    // A log without its device block: the shape is unknown, so node-derived targets do not apply
    // until --nodes says how many nodes ran.
    let text = std::fs::read_to_string(nt("h100-2node-allreduce-ring.txt")).expect("read");
    let bare: String = text
        .lines()
        .filter(|l| !l.contains("Rank ") && !l.contains("Using devices"))
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("bare.txt");
    std::fs::write(&f, bare).expect("write");
    let node = fixture("h100-8gpu-ndr400");
    let (code, v) = json(&["--parse", p(&f), "--from-node", "--replay", p(&node)]);
    assert_eq!(code, Some(1), "{v}");
    assert!(v["findings"].to_string().contains("pass --nodes"), "{v}");
    let (code, v) = json(&[
        "--parse",
        p(&f),
        "--from-node",
        "--replay",
        p(&node),
        "--nodes",
        "2",
        "--ranks-per-node",
        "8",
    ]);
    assert_eq!((code, v["verdict"].as_str()), (Some(0), Some("pass")), "{v}");
}

#[test]
fn a_single_node_a100_sample_is_judged_by_its_model_not_by_a_network_profile() {
    let Some(files) = samples("nccl-tests") else {
        assert!(
            std::env::var("NCCLTUNE_REQUIRE_SAMPLES").as_deref() != Ok("1"),
            "samples missing"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("a100.txt");
    std::fs::write(&f, sample(&files, "superbench-a100x8-allreduce")).expect("write");
    let (code, v) = json(&["--parse", p(&f), "--profile", "a100x8-hdr200"]);
    assert_eq!(code, Some(1));
    assert!(codes(&v).contains(&"targets-mismatch".to_string()), "{v}");
    let (_, v) = json(&["--parse", p(&f)]);
    assert!(
        v["runs"][0]["targets_from"]
            .as_str()
            .is_some_and(|t| t.contains("A100")),
        "{}",
        v["runs"][0]
    );
    assert_ne!(v["verdict"], "unknown");
}

/// A stand-in for an nccl-tests binary: records the settings it was started with, then prints a
/// real run's output (so the result can be parsed), and for -J writes nothing (not needed here).
fn stand_in(dir: &std::path::Path, name: &str, records: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let fixture = nt("h100-2node-allreduce-ring.txt");
    // Each rank records what it received in a file of its own (ranks writing to one stream
    // would interleave); rank 0 prints the output.
    let script = format!(
        "#!/usr/bin/env bash\n\
         printf 'stand-in %s NCCL_DEBUG_SUBSYS=%s NCCL_ALGO=%s NCCL_DEBUG_FILE=%s args=%s\\n' \"$0\" \"${{NCCL_DEBUG_SUBSYS-unset}}\" \"${{NCCL_ALGO-unset}}\" \"${{NCCL_DEBUG_FILE-unset}}\" \"$*\" >> {}/rank.$$.txt\n\
         if [ \"${{OMPI_COMM_WORLD_RANK:-0}}\" = 0 ] && [ \"${{SLURM_PROCID:-0}}\" = 0 ]; then cat {}; fi\n",
        nccltune::bench::shell::quote(records.to_str().expect("utf8")),
        nccltune::bench::shell::quote(fixture.to_str().expect("utf8"))
    );
    let path = dir.join(name);
    std::fs::write(&path, script).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn run_plan(args: &[&str], envs: &[(&str, &str)]) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().expect("tmp");
    // A folder name with a space and a quote: the script must still find the binaries.
    let bin = dir.path().join("nccl tests 'build'");
    std::fs::create_dir(&bin).expect("mkdir");
    let records = dir.path().join("records");
    std::fs::create_dir(&records).expect("mkdir");
    stand_in(&bin, "all_reduce_perf", &records);
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("mkdir");
    let script = dir.path().join("plan.sh");
    // A relative --bin-dir, resolved against the directory nccltune runs in.
    let out = nccltune()
        .current_dir(dir.path())
        .args(["bench", "plan", "--bin-dir", "nccl tests 'build'", "-o"])
        .arg(&script)
        .args(args)
        .output()
        .expect("plan");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Ok(sc) = which::which("shellcheck") {
        let out = std::process::Command::new(sc)
            .arg("-s")
            .arg("bash")
            .arg(&script)
            .output()
            .expect("shellcheck");
        assert!(
            out.status.success(),
            "shellcheck: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    } else {
        eprintln!("note: shellcheck not installed; the plan script is not linted");
    }
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(&script).current_dir(&work);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("bash");
    (dir, out)
}

fn check_plan_run(dir: &tempfile::TempDir, out: &std::process::Output, launcher: &str) {
    let mut err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{launcher}: {err}");
    let mut ranks = 0;
    for e in std::fs::read_dir(dir.path().join("records"))
        .expect("records")
        .flatten()
    {
        err.push_str(&std::fs::read_to_string(e.path()).expect("record"));
        ranks += 1;
    }
    assert!(ranks >= 1, "{launcher}: no rank ran");
    let results = dir.path().join("work/nccltune-bench");
    let main = std::fs::read_to_string(results.join("all_reduce.txt")).expect("all_reduce.txt");
    assert!(
        main.contains("Avg bus bandwidth"),
        "{launcher}: the test's output is kept"
    );
    assert!(
        err.contains("NCCL_DEBUG_SUBSYS=INIT,NET NCCL_ALGO=unset")
            || err.contains("NCCL_DEBUG_SUBSYS=INIT,NET NCCL_ALGO=Ring"),
        "{launcher}: the value with a comma arrives whole: {err}"
    );
    assert!(
        err.contains(&format!(
            "NCCL_DEBUG_FILE={}/nccl-debug.%h.%p.log",
            results.display()
        )),
        "{launcher}: {err}"
    );
    assert!(
        err.contains("NCCL_DEBUG_SUBSYS=INIT,NET,ENV,TUNING"),
        "{launcher}: sweep runs: {err}"
    );
    let (code, v) = json(&["--parse", results.join("all_reduce.txt").to_str().expect("utf8")]);
    assert_eq!(code, Some(0), "{v}");
}

#[test]
fn plan_scripts_run_as_written_with_stand_in_binaries() {
    let (dir, out) = run_plan(&["--gpus-per-node", "2", "--sweep"], &[]);
    check_plan_run(&dir, &out, "local");
    if which::which("mpirun").is_ok() {
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "localhost slots=4\n").expect("hostfile");
        let (dir, out) = run_plan(
            &["--gpus-per-node", "2", "--launcher", "mpirun", "--sweep"],
            &[
                ("HOSTFILE", hosts.to_str().expect("utf8")),
                ("OMPI_ALLOW_RUN_AS_ROOT", "1"),
                ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
                ("OMPI_MCA_plm", "isolated"),
                ("OMPI_MCA_btl_vader_single_copy_mechanism", "none"),
            ],
        );
        check_plan_run(&dir, &out, "mpirun");
    } else {
        eprintln!("note: mpirun not installed; the mpirun plan is not run");
    }
    let slurm = std::process::Command::new("sinfo")
        .arg("-h")
        .output()
        .is_ok_and(|o| o.status.success());
    if slurm {
        // The test Slurm's fake nodes have no GPUs (no GRES): a shim drops --gpus-per-node and
        // hands everything else to the real srun.
        use std::os::unix::fs::PermissionsExt;
        let shim = tempfile::tempdir().expect("tmp");
        let real = which::which("srun").expect("srun");
        let script = format!(
            "#!/usr/bin/env bash\nargs=()\nfor a in \"$@\"; do case $a in --gpus-per-node=*) ;; *) args+=(\"$a\");; esac; done\nexec {} \"${{args[@]}}\"\n",
            nccltune::bench::shell::quote(real.to_str().expect("utf8"))
        );
        std::fs::write(shim.path().join("srun"), script).expect("shim");
        std::fs::set_permissions(shim.path().join("srun"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let path = format!(
            "{}:{}",
            shim.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let (dir, out) = run_plan(
            &[
                "--nodes",
                "2",
                "--gpus-per-node",
                "1",
                "--launcher",
                "srun",
                "--sweep",
            ],
            &[("PATH", &path)],
        );
        check_plan_run(&dir, &out, "srun");
    } else {
        eprintln!("note: no running Slurm (sinfo fails); the srun plan is not run");
    }
}

#[test]
fn nan_or_inf_busbw_on_a_judged_size_fails_that_size() {
    let text = std::fs::read_to_string(nt("h100-2node-allreduce-ring.txt")).expect("read");
    let broken = text.replace(
        "43324.04  198.27  371.76      0",
        "   0.00     inf     nan      0",
    );
    assert_ne!(broken, text);
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("nan.txt");
    std::fs::write(&f, broken).expect("write");
    let (code, v) = json(&["--parse", p(&f), "--nics", "8", "--nic-gbps", "400"]);
    assert_eq!(code, Some(1), "{v}");
    let s = v["runs"][0]["sizes"]
        .as_array()
        .expect("s")
        .iter()
        .find(|s| s["size_bytes"] == 8_589_934_592u64)
        .expect("8G")
        .clone();
    assert_eq!(s["status"], "fail", "{s}");
}

#[test]
fn nccl_tests_own_min_bw_verdict_is_reported_beside_ours() {
    let text = std::fs::read_to_string(nt("json/h100-1node-g8-allreduce.json")).expect("read");
    let failed = text.replace("\"okay\":\"unchecked\"", "\"okay\":\"false\"");
    assert_ne!(failed, text);
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("minbw.json");
    std::fs::write(&f, failed).expect("write");
    let (code, v) = json(&["--parse", p(&f)]);
    assert_eq!(code, Some(0), "every size of at least 1 GiB passes: {v}");
    assert_eq!(v["runs"][0]["min_bw_ok"], false);
    assert!(codes(&v).contains(&"min-bw-failed".to_string()), "{v}");
    let ring = std::fs::read_to_string(nt("h100-2node-allreduce-ring.txt")).expect("read");
    let footer = ring
        .lines()
        .find(|l| l.starts_with("# Avg bus bandwidth"))
        .expect("footer");
    let t = dir.path().join("minbw.txt");
    std::fs::write(&t, ring.replace(footer, &format!("{footer} FAILED"))).expect("write");
    let (_, v) = json(&["--parse", p(&t)]);
    assert_eq!(v["runs"][0]["min_bw_ok"], false, "{}", v["runs"][0]);
}

/// A log of 20 two-node all_reduce runs: the default table summarises them, says the 2-node
/// Tree note once with its count, `--runs` prints every run, and jsonl is one line a run plus a
/// summary line.
#[test]
fn many_runs_are_summarised_and_jsonl_streams_one_line_a_run() {
    let one = std::fs::read_to_string(nt("h100-2node-allreduce-ring.txt")).expect("read");
    // The ring fixture records NCCL_ALGO=Ring; the default-algorithm run draws the note.
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("many.txt");
    std::fs::write(&f, one.repeat(20)).expect("write");
    let (_, v) = json(&["--parse", p(&f)]);
    let runs = v["runs"].as_array().map(Vec::len).expect("runs");
    assert_eq!(runs, 20);
    let (_, table, _) = bench(&["--parse", p(&f)]);
    let (_, every, _) = bench(&["--parse", p(&f), "--runs"]);
    assert!(
        table.lines().count() * 5 < every.lines().count(),
        "summary {} vs --runs {}",
        table.lines().count(),
        every.lines().count()
    );
    assert!(table.contains("#1-#20"), "{table}");
    // At 80 columns the summary of many runs fits a screen or two, with the repeated
    // two-node note once and its count.
    let out = nccltune()
        .env("COLUMNS", "80")
        .args(["bench", "--parse", p(&f)])
        .output()
        .expect("run");
    let narrow = String::from_utf8_lossy(&out.stdout);
    assert!(
        narrow.lines().count() < 120,
        "{} lines:\n{narrow}",
        narrow.lines().count()
    );
    let row = narrow
        .lines()
        .find(|l| l.contains("two-node-tree"))
        .unwrap_or_else(|| panic!("{narrow}"));
    assert_eq!(narrow.matches("two-node-tree").count(), 1, "{narrow}");
    assert!(row.contains(" 20 ") && row.contains("#1-#20"), "{row}");
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    for code in codes.iter().collect::<std::collections::BTreeSet<_>>() {
        assert_eq!(
            table.matches(*code).count(),
            1,
            "{code} once in the summary: {table}"
        );
    }
    let (_, jsonl, _) = bench(&["--parse", p(&f), "--format", "jsonl"]);
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON document"))
        .collect();
    assert_eq!(lines.len(), 21);
    assert_eq!(lines[20]["summary"], true);
    assert_eq!(lines[20]["verdict"], v["verdict"]);
}

/// The bench golden files: `<path under fixtures/nccl-tests, / as -->.<format>`, written by the
/// binary before the report was streamed (`NCCLTUNE_BLESS=1` rewrites them).
fn bench_goldens() -> Vec<(PathBuf, String, PathBuf)> {
    let dir = repo().join("tests/golden/bench");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("tests/golden/bench") {
        let path = e.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string();
        let (input, format) = name.rsplit_once('.').expect("<input>.<format>");
        out.push((
            PathBuf::from("fixtures/nccl-tests").join(input.replace("--", "/")),
            format.to_string(),
            path,
        ));
    }
    out.sort();
    assert!(out.len() >= 18, "{} goldens", out.len());
    out
}

#[test]
fn single_run_json_and_csv_are_byte_identical_to_the_goldens() {
    let bless = std::env::var_os("NCCLTUNE_BLESS").is_some_and(|v| v == "1");
    for (input, format, golden) in bench_goldens() {
        let out = nccltune()
            .current_dir(repo())
            .args(["bench", "--parse"])
            .arg(&input)
            .args(["--format", &format])
            .output()
            .expect("run");
        if bless {
            std::fs::write(&golden, &out.stdout).expect("bless");
            continue;
        }
        let want = std::fs::read(&golden).expect("golden");
        assert!(
            out.stdout == want,
            "{} --format {format} differs from {}:\n{}",
            input.display(),
            golden.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// `--format csv` read back by the `csv` crate's reader (RFC 4180): hostile text in the file
/// name, collective and reduction lands in its own field, whole, and a spreadsheet would not
/// run it as a formula.
#[test]
fn csv_reads_back_field_for_field_with_a_reference_reader() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("a,\"b\"\nc.txt");
    let text = std::fs::read_to_string(nt("h100-2node-allreduce-ring.txt")).expect("read");
    let text = text
        .replace("starting: all_reduce_perf", "starting: =HYPERLINK(\"x\")")
        .replacen("     float     sum  ", "     float  a,\"b\"  ", 1);
    std::fs::write(&log, &text).expect("write");
    let out = nccltune()
        .args(["bench", "--format", "csv", "--parse"])
        .arg(&log)
        .output()
        .expect("run");
    assert!(
        out.status.code().is_some_and(|c| c < 2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rd = csv::Reader::from_reader(&out.stdout[..]);
    let header: Vec<String> = rd.headers().expect("header").iter().map(str::to_string).collect();
    assert_eq!(header.len(), 13, "{header:?}");
    let col = |name: &str| header.iter().position(|h| h == name).expect("column");
    let records: Vec<csv::StringRecord> = rd.records().map(|r| r.expect("record")).collect();
    let rows = text
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert_eq!(records.len(), rows);
    for r in &records {
        assert_eq!(r.len(), 13);
        assert_eq!(&r[col("source")], log.display().to_string());
        assert_eq!(&r[col("collective")], "'=HYPERLINK(\"x\")");
    }
    assert_eq!(&records[0][col("redop")], "a,\"b\"");
    assert_eq!(&records[1][col("redop")], "sum");
    assert_eq!(&records[0][col("size_bytes")], "8");
}

/// What the whole-report renderers write for `paths` (the reference for the stream).
fn whole_report(paths: &[PathBuf], format: &str) -> Option<Vec<u8>> {
    let mut runs = Vec::new();
    for p in paths {
        let text = std::fs::read(p).expect("read");
        let name = p.display().to_string();
        if text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            let text = String::from_utf8(text).expect("utf8");
            runs.push(nccl_tests::parse_json(&text, &name).expect("json"));
        } else {
            runs.extend(nccl_tests::parse_reader(&text[..], &name).expect("text"));
        }
    }
    if runs.is_empty() {
        return None;
    }
    let report = nccltune::bench::judge(runs, &nccltune::bench::Options::default());
    Some(match format {
        "json" => nccltune::render::json(&report).expect("json").into_bytes(),
        "csv" => nccltune::render::bench::to_csv(&report).into_bytes(),
        _ => {
            let mut v = Vec::new();
            nccltune::render::bench::write_jsonl(&report, &mut v).expect("jsonl");
            v
        }
    })
}

#[test]
fn the_streamed_report_is_the_whole_report_byte_for_byte() {
    let mut inputs: Vec<Vec<PathBuf>> = Vec::new();
    for sub in ["", "json", "sweep"] {
        let dir = repo().join("fixtures/nccl-tests").join(sub);
        for e in std::fs::read_dir(&dir).expect("fixtures") {
            let p = e.expect("entry").path();
            if p.is_file() {
                inputs.push(vec![p]);
            }
        }
    }
    let shared = repo().join("../shared/samples/nccl-tests");
    if samples("nccl-tests").is_some() {
        for e in std::fs::read_dir(&shared).expect("samples") {
            inputs.push(vec![e.expect("entry").path()]);
        }
    }
    // Many runs in one file, and several files at once.
    let dir = tempfile::tempdir().expect("tmp");
    let many = dir.path().join("many.txt");
    let one = std::fs::read_to_string(nt("h100-2node-allreduce-ring.txt")).expect("read");
    let cut = std::fs::read_to_string(nt("h100-2node-allreduce-cut.txt")).expect("read");
    std::fs::write(&many, format!("{}{cut}", one.repeat(30))).expect("write");
    inputs.push(vec![many.clone(), nt("h100-2node-allreduce-wrong.txt")]);
    assert!(inputs.len() >= 18, "{}", inputs.len());
    for paths in &inputs {
        for format in ["json", "csv", "jsonl"] {
            let out = nccltune()
                .args(["bench", "--format", format, "--parse"])
                .args(paths)
                .output()
                .expect("run");
            let Some(want) = whole_report(paths, format) else {
                // No run at all: an error, and nothing written.
                assert_eq!(out.status.code(), Some(2), "{paths:?}");
                assert!(out.stdout.is_empty(), "{paths:?}");
                continue;
            };
            assert!(
                out.stdout == want,
                "{paths:?} --format {format}: the stream differs from the whole report\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn output_files_are_written_whole_and_nothing_is_left_when_no_input_reads() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = nt("h100-2node-allreduce-ring.txt");
    for format in ["table", "json", "csv", "jsonl", "prometheus", "junit"] {
        let target = dir.path().join(format!("report.{format}"));
        let out = nccltune()
            .args(["bench", "--parse", p(&f), "--format", format, "-o"])
            .arg(&target)
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "-o leaves standard output empty");
        let (_, stdout, _) = bench(&["--parse", p(&f), "--format", format]);
        let written = std::fs::read_to_string(&target).expect("written");
        if format == "junit" {
            // The suite's timestamp differs between the two runs.
            assert_eq!(written.lines().count(), stdout.lines().count());
        } else {
            assert_eq!(written, stdout, "{format}");
        }
    }
    let target = dir.path().join("none.json");
    let out = nccltune()
        .args(["bench", "--parse", "/nonexistent/x.txt", "--format", "json", "-o"])
        .arg(&target)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(!target.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert_eq!(left.len(), 6, "no temporary file is left behind");
}

#[test]
fn every_bench_table_fits_80_columns() {
    let dir = tempfile::tempdir().expect("tmp");
    let many = dir.path().join("many.txt");
    let one = std::fs::read_to_string(nt("h100-2node-allreduce-slow.txt")).expect("read");
    std::fs::write(&many, one.repeat(10)).expect("write");
    let mut files = vec![many];
    for sub in ["", "json"] {
        for e in std::fs::read_dir(repo().join("fixtures/nccl-tests").join(sub)).expect("fixtures") {
            let p = e.expect("entry").path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    for f in &files {
        for extra in [&[][..], &["--runs"], &["--profile", "h100x8-ndr400"]] {
            let out = nccltune()
                .env("COLUMNS", "80")
                .args(["bench", "--parse"])
                .arg(f)
                .args(extra)
                .args(["--compare", p(&nt("h100-2node-allreduce-ring.txt"))])
                .output()
                .expect("run");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.lines().count() > 5, "{f:?} {extra:?}: {text}");
            for l in text.lines() {
                assert!(
                    unicode_width::UnicodeWidthStr::width(l) <= 80,
                    "{f:?} {extra:?}: {} columns: {l}",
                    unicode_width::UnicodeWidthStr::width(l)
                );
            }
        }
    }
}

#[test]
fn run_and_tune_speak_format_and_output() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("ok.log");
    let report = dir.path().join("report.json");
    let fixture = nt("h100-2node-allreduce-ring.txt");
    let out = nccltune()
        .args([
            "bench",
            "run",
            "--log",
            p(&log),
            "--format",
            "json",
            "-o",
            p(&report),
        ])
        .args(["--profile", "h100x8-ndr400", "--", "cat", p(&fixture)])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "the report went to -o");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&report).expect("written")).expect("json");
    assert_eq!(v["verdict"], "pass");
    // `bench tune --format json` is the old `--json`, which still works.
    let (a, _) = tune_sweep(&["--format", "json"]);
    let (b, _) = tune_sweep(&["--json"]);
    let doc: Value = serde_json::from_str(&a).unwrap_or_else(|e| panic!("{e}: {a}"));
    assert!(doc.is_object());
    assert_eq!(a, b);
    let (conf, _) = tune_sweep(&["--format", "conf"]);
    assert!(serde_json::from_str::<Value>(&conf).is_err() && !conf.is_empty());
}

/// `bench_profile` of the configuration (here `NCCLTUNE_BENCH_PROFILE`) is `--profile` when no
/// flag picks the targets; a flag beats it; a bad name is exit 2 naming where it was set.
#[test]
fn the_configured_profile_judges_unless_a_flag_picks_the_targets() {
    let f = nt("h100-2node-allreduce-ring.txt");
    let run = |env: Option<&str>, extra: &[&str]| {
        let mut c = nccltune();
        if let Some(v) = env {
            c.env("NCCLTUNE_BENCH_PROFILE", v);
        }
        let o = c
            .args(["bench", "--parse", p(&f)])
            .args(extra)
            .output()
            .expect("run");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(None, &[]);
    assert_eq!(code, Some(0));
    assert!(out.contains("verdict: unknown"), "{out}");
    let (code, out, err) = run(Some("h100x8-ndr400"), &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("targets: profile h100x8-ndr400") && out.contains("verdict: pass"),
        "{out}"
    );
    let (_, out, _) = run(Some("h100x8-ndr400"), &["--nics", "8", "--nic-gbps", "400"]);
    assert!(
        !out.contains("profile h100x8-ndr400"),
        "--nics beats the configuration: {out}"
    );
    let (code, _, err) = run(Some("nope"), &[]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("NCCLTUNE_BENCH_PROFILE") && err.contains("built-in profiles"),
        "{err}"
    );
}
