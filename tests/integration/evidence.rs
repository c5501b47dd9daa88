//! The evidence model end to end: every command says the same thing about the same fault with
//! the same code, a check that could not see is never a pass, and no output cites a file users
//! do not have.

use super::common::*;
use serde_json::Value;
use std::collections::BTreeSet;

fn json(args: &[&str]) -> (Option<i32>, Value) {
    let out = nccltune().args(args).output().expect("run");
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), v)
}

/// (code, subject) of the findings or checks at or above `min` in a document.
fn codes(items: &Value, min: &[&str]) -> BTreeSet<(String, String)> {
    items
        .as_array()
        .expect("array")
        .iter()
        .filter(|f| min.contains(&f["level"].as_str().unwrap_or_default()))
        .map(|f| {
            (
                f["code"].as_str().unwrap_or_default().to_string(),
                f["subject"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_garbage_probe_gets_one_answer_from_every_command() {
    let dir = tempfile::tempdir().expect("tmp");
    copy_fixture("h100-8gpu-ndr400", dir.path());
    std::fs::write(
        dir.path().join("nvidia-smi-query-gpu.txt"),
        "\u{1}\u{2}garbage ### not csv\n\u{7f}",
    )
    .expect("write");
    let d = dir.path().to_str().expect("utf8");
    let want = ("node.probes".to_string(), "nvidia-smi-query-gpu".to_string());

    let (code, detect) = json(&["detect", "--replay", d, "--format", "json"]);
    assert_eq!(code, Some(0));
    assert!(
        codes(&detect["findings"], &["warn"]).contains(&want),
        "{}",
        detect["findings"]
    );

    let (code, verify) = json(&["verify", "--replay", d, "--format", "json"]);
    assert_eq!(code, Some(0), "a warning, not a failure, without --strict");
    let probe = verify["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["code"] == "node.probes" && c["subject"] == "nvidia-smi-query-gpu")
        .expect("verify names the probe");
    assert_eq!(probe["level"], "warn");
    assert!(
        probe["message"].as_str().is_some_and(|m| m.contains("line 1")),
        "{probe}"
    );
    assert!(
        !verify["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .any(|c| c["code"] == "node.probes" && c["level"] == "pass")
    );

    let (code, conf) = json(&[
        "configure",
        "--replay",
        d,
        "--mode",
        "inference",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0));
    assert!(
        codes(&conf["notes"], &["warn"]).contains(&want),
        "{}",
        conf["notes"]
    );
}

#[test]
fn detect_and_verify_use_the_same_codes_for_the_same_faults() {
    let d = fixture("broken-h100");
    let d = d.to_str().expect("utf8");
    let (_, detect) = json(&["detect", "--replay", d, "--format", "json"]);
    let (code, verify) = json(&["verify", "--replay", d, "--format", "json"]);
    assert_eq!(code, Some(1));
    let seen = codes(&detect["findings"], &["warn", "fail"]);
    let judged = codes(&verify["checks"], &["warn", "fail"]);
    assert!(!seen.is_empty());
    for f in &seen {
        assert!(
            judged.contains(f),
            "detect says {f:?}, verify does not: {judged:?}"
        );
    }
    for f in [
        ("rdma.port-state", "mlx5_5:1"),
        ("gpu.nvlink-links", "GPU5"),
        ("gpudirect.path", "node"),
    ] {
        assert!(seen.contains(&(f.0.to_string(), f.1.to_string())), "{f:?}");
    }
}

#[test]
fn expected_gpus_that_cannot_be_seen_fail() {
    let dir = tempfile::tempdir().expect("tmp");
    copy_fixture("h100-8gpu-ndr400", dir.path());
    // A node without the NVIDIA tools: every nvidia-smi probe answered "not installed".
    for p in [
        "nvidia-smi-query-gpu",
        "nvidia-smi-topo",
        "nvidia-smi-nvlink",
        "nvidia-smi-q",
    ] {
        let _ = std::fs::remove_file(dir.path().join(format!("{p}.txt")));
        std::fs::write(dir.path().join(format!("{p}.status")), "not-found\n").expect("w");
    }
    let d = dir.path().to_str().expect("utf8");
    let (code, v) = json(&["verify", "--replay", d, "--expect-gpus", "8", "--format", "json"]);
    assert_eq!(code, Some(1), "{}", v["checks"]);
    let count = v["checks"]
        .as_array()
        .expect("c")
        .iter()
        .find(|c| c["code"] == "gpu.count")
        .expect("count");
    assert_eq!(count["level"], "fail");
    assert_eq!(count["expected"], 8);
    // Without the expectation the same node is not failed, but the summary says what was unseen.
    let out = nccltune().args(["verify", "--replay", d]).output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("saw nothing for gpu") && err.contains("could not see"),
        "{err}"
    );
}

#[test]
fn required_groups_without_evidence_fail_and_a_full_capture_passes() {
    let dir = tempfile::tempdir().expect("tmp");
    copy_fixture("h100-8gpu-ndr400", dir.path());
    for p in ["ibstat", "sysfs-rdma-ports", "ofed_info"] {
        let _ = std::fs::remove_file(dir.path().join(format!("{p}.txt")));
    }
    let d = dir.path().to_str().expect("utf8");
    let (code, v) = json(&["verify", "--replay", d, "--require", "rdma", "--format", "json"]);
    assert_eq!(code, Some(1), "{}", v["checks"]);
    assert!(
        v["evidence"]["unseen"]
            .as_array()
            .expect("u")
            .iter()
            .any(|g| g == "rdma")
    );
    assert_eq!(v["evidence"]["required"], serde_json::json!(["rdma"]));
    let (code, _) = json(&["verify", "--replay", d, "--format", "json"]);
    assert_eq!(
        code,
        Some(0),
        "without --require the missing RDMA probes are warnings"
    );

    let full = fixture("h100-8gpu-ndr400");
    let (code, v) = json(&[
        "verify",
        "--replay",
        full.to_str().expect("utf8"),
        "--require",
        "gpu,nvlink,rdma,gpudirect,pcie,software",
        "--expect-gpus",
        "8",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{}", v["checks"]);
    assert_eq!(v["evidence"]["unseen"], serde_json::json!([]));
    // An unknown group is a usage error.
    let out = nccltune()
        .args([
            "verify",
            "--replay",
            full.to_str().expect("utf8"),
            "--require",
            "disks",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_partial_capture_says_what_is_absent_from_it() {
    let dir = tempfile::tempdir().expect("tmp");
    for p in ["proc-hostname", "nvidia-smi-query-gpu"] {
        std::fs::copy(
            fixture("h100-8gpu-ndr400").join(format!("{p}.txt")),
            dir.path().join(format!("{p}.txt")),
        )
        .expect("copy");
    }
    let d = dir.path().to_str().expect("utf8");
    let (_, v) = json(&["verify", "--replay", d, "--format", "json"]);
    let checks = v["checks"].as_array().expect("c");
    assert!(
        !checks
            .iter()
            .any(|c| c["code"] == "node.probes" && c["level"] == "pass")
    );
    let absent: Vec<&Value> = checks
        .iter()
        .filter(|c| c["code"] == "node.probes" && c["observed"] == "not-captured")
        .collect();
    assert!(absent.len() >= 10, "{absent:?}");
    assert!(absent.iter().all(|c| {
        c["message"]
            .as_str()
            .is_some_and(|m| m.contains("absent from the replayed capture"))
    }));
    // OFED was not captured: that is not "not installed".
    let ofed = checks
        .iter()
        .find(|c| c["code"] == "software.ofed")
        .expect("ofed");
    let m = ofed["message"].as_str().unwrap_or_default();
    assert!(
        !m.contains("not found") && m.contains("absent from the capture"),
        "{m}"
    );
}

#[test]
fn checks_carry_typed_observed_and_expected_values() {
    let f = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(f.path(), "[[ports]]\nport = \"mlx5_0:1\"\nrate_gbps = 800\n").expect("w");
    let d = fixture("h100-8gpu-ndr400");
    let (code, v) = json(&[
        "verify",
        "--replay",
        d.to_str().expect("utf8"),
        "--expect",
        f.path().to_str().expect("utf8"),
        "--expect-gpus",
        "8",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(1));
    let checks = v["checks"].as_array().expect("c");
    let count = checks.iter().find(|c| c["code"] == "gpu.count").expect("count");
    assert_eq!(
        (count["observed"].as_u64(), count["expected"].as_u64()),
        (Some(8), Some(8))
    );
    let rate = checks
        .iter()
        .find(|c| c["code"] == "rdma.port-rate" && c["subject"] == "mlx5_0:1")
        .expect("rate");
    assert_eq!(
        (rate["observed"].as_f64(), rate["expected"].as_f64()),
        (Some(400.0), Some(800.0))
    );
    assert_eq!(v["identity"]["machine_id"].as_str().map(str::len), Some(32));
}

/// The names of the project's reference files, which users do not have.
const PRIVATE: [&str; 6] = [
    "nccl-env.md",
    "nccl-tests-format.md",
    "article-factcheck.md",
    "landscape.md",
    "params.tsv",
    "../shared",
];

fn assert_public(what: &str, text: &str) {
    for p in PRIVATE {
        assert!(!text.contains(p), "{what} cites {p}");
    }
}

#[test]
fn no_output_cites_a_file_users_do_not_have() {
    for node in node_fixtures() {
        let d = fixture(&node);
        let d = d.to_str().expect("utf8");
        let mut runs: Vec<Vec<&str>> = vec![
            vec!["detect", "--replay", d, "--format", "json"],
            vec!["detect", "--replay", d],
            vec!["verify", "--replay", d, "--format", "json"],
            vec!["verify", "--replay", d],
        ];
        for mode in ["inference", "training"] {
            for fmt in ["shell", "json"] {
                runs.push(vec![
                    "configure",
                    "--replay",
                    d,
                    "--mode",
                    mode,
                    "--format",
                    fmt,
                    "--explain",
                ]);
            }
        }
        for args in runs {
            let out = nccltune().args(&args).output().expect("run");
            assert_public(&format!("{args:?} stdout"), &String::from_utf8_lossy(&out.stdout));
            assert_public(&format!("{args:?} stderr"), &String::from_utf8_lossy(&out.stderr));
        }
    }
    for env in ["article-inference.env", "article-training.env"] {
        let p = repo().join("fixtures/env").join(env);
        let out = nccltune()
            .args(["lint", "--format", "json"])
            .arg(&p)
            .output()
            .expect("run");
        assert_public(env, &String::from_utf8_lossy(&out.stdout));
    }
    for e in std::fs::read_dir(repo().join("fixtures/nccl-tests"))
        .expect("ls")
        .flatten()
    {
        if e.path().is_file() {
            for fmt in ["json", "table"] {
                let out = nccltune()
                    .args(["bench", "--parse", "--format", fmt])
                    .arg(e.path())
                    .output()
                    .expect("run");
                assert_public(
                    &format!("bench {}", e.path().display()),
                    &String::from_utf8_lossy(&out.stdout),
                );
            }
        }
    }
}
