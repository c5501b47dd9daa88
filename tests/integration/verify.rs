//! `nccltune verify` end to end: every node fixture with its exact failing checks, each output
//! format checked structurally, expectations, NCCL logs, exit codes.

use super::common::{fixture, nccltune, node_fixtures, repo, sample, samples};
use nccltune::parse::nccl_log::{self, Transport};
use serde_json::Value;
use std::path::Path;

fn verify(args: &[&str], node: &Path) -> (Option<i32>, Value, String) {
    let out = nccltune()
        .arg("verify")
        .args(args)
        .arg("--format")
        .arg("json")
        .arg("--replay")
        .arg(node)
        .output()
        .expect("run");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// (status, id, subject) of every check that is not `pass`/`skip`.
fn problems(v: &Value) -> Vec<(String, String, String)> {
    v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == "fail" || c["status"] == "warn")
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("").into(),
                c["id"].as_str().unwrap_or("").into(),
                c["subject"].as_str().unwrap_or("").into(),
            )
        })
        .collect()
}

fn p(s: &str, id: &str, subject: &str) -> (String, String, String) {
    (s.into(), id.into(), subject.into())
}

#[test]
fn healthy_fixtures_pass_with_no_warning() {
    for node in [
        "h100-8gpu-ndr400",
        "a100-8gpu-hdr200",
        "roce-h100-8gpu",
        "workstation-2x4090-pcie",
    ] {
        let (code, v, stderr) = verify(&[], &fixture(node));
        assert_eq!(code, Some(0), "{node}: {stderr}");
        assert_eq!(problems(&v), [], "{node}");
        assert_eq!(v["schema"], 1);
        assert!(stderr.starts_with("nccltune verify: OK"), "{stderr}");
    }
}

#[test]
fn the_broken_node_fails_exactly_what_is_broken() {
    let (code, v, stderr) = verify(&[], &fixture("broken-h100"));
    assert_eq!(code, Some(1));
    assert_eq!(
        problems(&v),
        [
            p("fail", "gpu.nvlink-active", "GPU5"),
            p("fail", "rdma.port-state", "mlx5_5:1"),
            p("fail", "gpudirect.path", ""),
            p("warn", "software.probes-responsive", ""),
        ]
    );
    assert_eq!(v["summary"]["fail"], 3);
    assert!(stderr.contains("FAIL") && stderr.contains("mlx5_5:1"), "{stderr}");
}

#[test]
fn a_slow_port_among_fast_peers_fails_and_initializing_is_told_apart() {
    let dir = tempfile::tempdir().expect("tmp");
    let copy = dir.path().join("node");
    std::fs::create_dir(&copy).expect("mkdir");
    for e in std::fs::read_dir(fixture("h100-8gpu-ndr400"))
        .expect("ls")
        .filter_map(|e| e.ok())
    {
        std::fs::copy(e.path(), copy.join(e.file_name())).expect("cp");
    }
    let ibstat = std::fs::read_to_string(copy.join("ibstat.txt")).expect("read");
    let at = ibstat.find("CA 'mlx5_4'").expect("mlx5_4");
    let (head, tail) = ibstat.split_at(at);
    let tail = tail.replacen("Rate: 400", "Rate: 200", 1);
    let at = tail.find("CA 'mlx5_6'").expect("mlx5_6");
    let (mid, rest) = tail.split_at(at);
    let rest = rest.replacen("State: Active", "State: Initializing", 1);
    std::fs::write(copy.join("ibstat.txt"), format!("{head}{mid}{rest}")).expect("write");
    let (code, v, _) = verify(&[], &copy);
    assert_eq!(code, Some(1));
    assert_eq!(
        problems(&v),
        [
            p("fail", "rdma.port-rate", "mlx5_4:1"),
            p("fail", "rdma.port-state", "mlx5_6:1")
        ]
    );
    let init = v["checks"]
        .as_array()
        .expect("c")
        .iter()
        .find(|c| c["subject"] == "mlx5_6:1")
        .expect("mlx5_6");
    assert!(
        init["message"]
            .as_str()
            .is_some_and(|m| m.contains("subnet manager"))
    );
}

#[test]
fn strict_turns_warnings_into_failures() {
    let dir = tempfile::tempdir().expect("tmp");
    let copy = dir.path().join("node");
    std::fs::create_dir(&copy).expect("mkdir");
    for e in std::fs::read_dir(fixture("h100-8gpu-ndr400"))
        .expect("ls")
        .filter_map(|e| e.ok())
    {
        std::fs::copy(e.path(), copy.join(e.file_name())).expect("cp");
    }
    std::fs::write(
        copy.join("proc-cmdline.txt"),
        "BOOT_IMAGE=/vmlinuz ro intel_iommu=on\n",
    )
    .expect("write");
    let (code, v, _) = verify(&[], &copy);
    assert_eq!((code, problems(&v)), (Some(0), vec![p("warn", "pcie.iommu", "")]));
    let (code, _, stderr) = verify(&["--strict"], &copy);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("pcie.iommu"));
}

#[test]
fn expectations_round_trip_and_catch_a_different_node() {
    let dir = tempfile::tempdir().expect("tmp");
    let golden = dir.path().join("golden.toml");
    let (code, _, _) = verify(
        &["--write-expect", golden.to_str().expect("utf8")],
        &fixture("h100-8gpu-ndr400"),
    );
    assert_eq!(code, Some(0));
    let text = std::fs::read_to_string(&golden).expect("golden");
    assert!(
        text.contains("gpus = 8") && text.contains("rate_gbps = 400.0"),
        "{text}"
    );
    let (code, v, _) = verify(
        &["--expect", golden.to_str().expect("utf8")],
        &fixture("h100-8gpu-ndr400"),
    );
    assert_eq!((code, problems(&v)), (Some(0), vec![]));
    let (code, v, _) = verify(
        &["--expect", golden.to_str().expect("utf8")],
        &fixture("a100-8gpu-hdr200"),
    );
    assert_eq!(code, Some(1));
    let ids: Vec<String> = problems(&v)
        .into_iter()
        .map(|(_, id, subject)| format!("{id} {subject}"))
        .collect();
    for want in [
        "rdma.port-present mlx5_11:1",
        "rdma.port-rate mlx5_0:1",
        "rdma.link-layer mlx5_1:1",
        "software.driver ",
        "software.nccl ",
    ] {
        assert!(ids.iter().any(|i| i == want), "{want} missing from {ids:?}");
    }
    let (code, _, _) = verify(&["--expect-gpus", "4"], &fixture("h100-8gpu-ndr400"));
    assert_eq!(code, Some(1));
}

#[test]
fn bad_inputs_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "gpus = \"eight\"\n").expect("write");
    let (code, _, stderr) = verify(
        &["--expect", bad.to_str().expect("utf8")],
        &fixture("h100-8gpu-ndr400"),
    );
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("bad.toml") && stderr.contains("line 1"),
        "{stderr}"
    );
    let (code, _, stderr) = verify(&["--nccl-log", "/nonexistent.log"], &fixture("h100-8gpu-ndr400"));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("/nonexistent.log"));
}

#[test]
fn nccl_logs_show_what_nccl_did() {
    let logs = repo().join("fixtures/logs");
    let good = logs.join("h100-2node-ib-gdr.log");
    let (code, v, _) = verify(
        &["--nccl-log", good.to_str().expect("utf8")],
        &fixture("h100-8gpu-ndr400"),
    );
    assert_eq!((code, problems(&v)), (Some(0), vec![]));
    let gdr: Vec<&Value> = v["checks"]
        .as_array()
        .expect("c")
        .iter()
        .filter(|c| c["id"] == "nccl-log.gdrdma")
        .collect();
    assert_eq!(gdr.len(), 4);
    assert_eq!(gdr[0]["subject"], "mlx5_0:1");

    let bad = logs.join("h100-broken-socket-nogdr-ibfail.log");
    let (code, v, _) = verify(
        &["--nccl-log", bad.to_str().expect("utf8")],
        &fixture("h100-8gpu-ndr400"),
    );
    assert_eq!(code, Some(1));
    let probs: Vec<(String, String, String)> = problems(&v)
        .into_iter()
        .map(|(s, id, subj)| (s, id, subj.replace(&*bad.to_string_lossy(), "LOG")))
        .collect();
    assert_eq!(
        probs,
        [
            p("fail", "nccl-log.network", "LOG"),
            p("fail", "nccl-log.gdrdma", "mlx5_5:1"),
            p("fail", "nccl-log.fabric-errors", "LOG"),
            p("warn", "nccl-log.warnings", "LOG"),
        ]
    );
}

#[test]
fn every_format_is_well_formed() {
    for node in node_fixtures() {
        for format in ["table", "prometheus", "junit"] {
            let out = nccltune()
                .args(["verify", "--format", format, "--replay"])
                .arg(fixture(&node))
                .output()
                .expect("run");
            let text = String::from_utf8_lossy(&out.stdout);
            match format {
                "prometheus" => {
                    for line in text.lines() {
                        let ok = line.starts_with("# HELP ") || line.starts_with("# TYPE ") || {
                            let (series, value) = line.rsplit_once(' ').unwrap_or(("", ""));
                            value.parse::<f64>().is_ok()
                                && series.starts_with("nccltune_verify_check")
                                && series.ends_with('}')
                        };
                        assert!(ok, "{node}: {line}");
                    }
                }
                "junit" => {
                    assert!(text.starts_with("<?xml"));
                    assert_eq!(
                        text.matches("<testcase").count(),
                        text.matches("classname=").count()
                    );
                    assert_eq!(text.matches("<testsuite ").count(), 1);
                    assert!(text.trim_end().ends_with("</testsuites>"));
                }
                _ => assert!(text.contains("pass,"), "{node}"),
            }
        }
    }
}

#[test]
fn nccl_debug_samples() {
    let Some(files) = samples("nccl-debug") else {
        return;
    };
    let aks = nccl_log::parse(sample(&files, "issue-aksrdma30"));
    assert!(aks.channels.iter().any(|c| c.transport
        == Transport::NetIb {
            dev: Some(9),
            gdr: true
        }));
    assert!(aks.channels.iter().any(|c| c.via == "P2P/CUMEM/read"));
    let cw = nccl_log::parse(sample(&files, "issue-awsofinccl715"));
    assert!(!cw.channels.is_empty() && cw.channels.iter().all(|c| c.transport == Transport::P2p));
    let ext = nccl_log::parse(sample(&files, "issue-nccl1814"));
    assert!(ext.channels.iter().any(|c| c.transport
        == Transport::NetPlugin {
            name: "IBext_v8".into(),
            gdr: false
        }));
    let direct = nccl_log::parse(sample(&files, "issue-tinygrad22"));
    assert!(direct.channels.iter().any(|c| c.via == "P2P/direct pointer"));
    let old = nccl_log::parse(sample(&files, "issue-nvpeermem56"));
    assert_eq!(old.versions, ["2.4.7+cuda10.0"]);
    assert_eq!(old.ib_devices, ["mlx5_0:1"]);
    let sharp = nccl_log::parse(sample(&files, "issue-nccl988"));
    assert_eq!(sharp.networks, ["IBext"]);
    assert_eq!(sharp.ib_devices.len(), 8);
    assert_eq!(sharp.versions, ["2.12.9+cuda11.6"]);
    if let Some(tests) = samples("nccl-tests") {
        let efa = nccl_log::parse(sample(&tests, "awsdoeks"));
        assert_eq!(efa.networks, ["AWS Libfabric"]);
        assert_eq!(efa.versions, ["2.12.7+cuda11.4"]);
        let socket = nccl_log::parse(sample(&tests, "issue-nccltests131"));
        assert_eq!(socket.networks, ["Socket"]);
        assert!(
            socket
                .warnings
                .iter()
                .any(|(_, w)| w.contains("Could not find a path for pattern 4"))
        );
    }
}
