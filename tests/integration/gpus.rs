//! GPUs seen right: from every probe that sees them, MIG recognised, NVLink judged against
//! the links each architecture has.

use super::common::*;
use serde_json::Value;

fn detect(node: &str) -> Value {
    let out = nccltune()
        .args(["detect", "--format", "json", "--replay"])
        .arg(fixture(node))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn gpus_seen_only_by_nvlink_are_gpus() {
    // --query-gpu and topo failed (exit 15), ibstat crashed after two ports.
    let v = detect("a100-nvlink-only");
    let gpus = v["gpus"].as_array().expect("gpus");
    assert_eq!(gpus.len(), 8);
    assert!(gpus.iter().all(|g| g["name"] == "NVIDIA A100-SXM4-80GB"));
    assert!(
        gpus.iter()
            .all(|g| g["seen_by"] == serde_json::json!(["nvidia-smi-nvlink"]))
    );
    let nics = v["nics"].as_array().expect("nics");
    assert_eq!(
        nics.len(),
        2,
        "the ports ibstat printed before it crashed are kept"
    );
    let partial = v["findings"]
        .as_array()
        .expect("f")
        .iter()
        .filter(|f| f["code"] == "node.probes" && f["subject"] == "ibstat")
        .collect::<Vec<_>>();
    assert_eq!(partial.len(), 1, "{partial:?}");
    assert_eq!(partial[0]["observed"], "partial");
    // The table lists them too.
    let out = nccltune()
        .args(["detect", "--replay"])
        .arg(fixture("a100-nvlink-only"))
        .output()
        .expect("run");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .matches("A100-SXM4-80GB")
            .count()
            >= 8
    );
}

#[test]
fn mig_mode_is_recognised_with_its_instances() {
    let v = detect("h100-mig");
    let gpus = v["gpus"].as_array().expect("gpus");
    assert_eq!(gpus[0]["mig_mode"], "Enabled");
    assert_eq!(gpus[0]["mig_devices"].as_array().map(Vec::len), Some(3));
    assert_eq!(gpus[2]["mig_mode"], "Disabled");
    let nv = v["nvlink"].as_array().expect("nvlink");
    assert_eq!(nv[0]["mig"], true);
    assert!(v["findings"].as_array().expect("f").iter().any(|f| {
        f["code"] == "gpu.mig"
            && f["message"]
                .as_str()
                .is_some_and(|m| m.contains("GPU0 (3 MIG devices)"))
    }));
    // No "inactive links" for MIG GPUs, and verify does not fail them.
    assert!(
        !v["findings"]
            .as_array()
            .expect("f")
            .iter()
            .any(|f| f["code"] == "gpu.nvlink-links")
    );
    let out = nccltune()
        .args(["verify", "--format", "json", "--replay"])
        .arg(fixture("h100-mig"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn v100_links_are_judged_against_six() {
    let v = detect("dgx2-v100");
    assert_eq!(v["gpus"].as_array().map(Vec::len), Some(16));
    let ev = v["nvswitch"]["evidence"].as_str().unwrap_or_default();
    assert_eq!(v["nvswitch"]["present"], true);
    assert!(ev.contains("exceed the 6 a GPU has"), "{ev}");
    assert!(
        v["nvlink"]
            .as_array()
            .expect("nv")
            .iter()
            .all(|l| l["expected_links"] == 6)
    );
    let out = nccltune()
        .args(["verify", "--format", "json", "--replay"])
        .arg(fixture("dgx2-v100"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    let bad: Vec<&Value> = r["checks"]
        .as_array()
        .expect("c")
        .iter()
        .filter(|c| c["code"] == "gpu.nvlink-links" && c["level"] != "pass")
        .collect();
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(
        (
            bad[0]["subject"].as_str(),
            bad[0]["observed"].as_u64(),
            bad[0]["expected"].as_u64()
        ),
        (Some("GPU9"), Some(5), Some(6))
    );
}

#[test]
fn an_nvl72_tray_is_checked_for_one_nvlink_domain() {
    let dir = tempfile::tempdir().expect("tmp");
    for e in std::fs::read_dir(fixture("h100-8gpu-ndr400"))
        .expect("ls")
        .flatten()
    {
        std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy");
    }
    let q = std::fs::read_to_string(dir.path().join("nvidia-smi-q.txt")).expect("q");
    // Register every GPU in clique 3 of one cluster, except the last in clique 4.
    let mut out = String::new();
    let mut gpu = 0;
    for line in q.lines() {
        out.push_str(line);
        out.push('\n');
        if line.trim_start().starts_with("Status") && line.starts_with("        ") {
            let clique = if gpu == 7 { 4 } else { 3 };
            out.push_str(&format!(
                "        CliqueId                          : {clique}\n        ClusterUUID                       : 5e1f0c2a-7b3d-4e8f-9a10-b2c3d4e5f601\n"
            ));
            gpu += 1;
        }
    }
    std::fs::write(dir.path().join("nvidia-smi-q.txt"), out).expect("w");
    let o = nccltune()
        .args(["verify", "--format", "json", "--replay"])
        .arg(dir.path())
        .output()
        .expect("run");
    let r: Value = serde_json::from_slice(&o.stdout).expect("json");
    let c = r["checks"]
        .as_array()
        .expect("c")
        .iter()
        .find(|c| c["code"] == "gpu.nvlink-domain")
        .expect("domain check");
    assert_eq!(c["level"], "fail", "{c}");
    assert_eq!(c["observed"], 2);
    assert_eq!(o.status.code(), Some(1));
}
