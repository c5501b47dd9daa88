//! `nccltune detect` end to end, on the bundled node fixtures.

use super::common::{fixture, nccltune, node_fixtures};
use serde_json::Value;

fn detect_json(node: &str) -> Value {
    let out = nccltune()
        .args(["detect", "--format", "json", "--replay"])
        .arg(fixture(node))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn every_fixture_replays_in_both_formats() {
    for node in node_fixtures() {
        let v = detect_json(&node);
        assert_eq!(v["schema"], 2, "{node}");
        assert!(v["identity"]["machine_id"].is_string(), "{node}: identity block");
        assert!(!v["gpus"].as_array().expect("gpus").is_empty(), "{node}");
        let table = nccltune()
            .args(["detect", "--replay"])
            .arg(fixture(&node))
            .output()
            .expect("run");
        assert_eq!(table.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&table.stdout).contains("GPUDirect RDMA"));
    }
}

#[test]
fn h100_ndr_node_facts() {
    let v = detect_json("h100-8gpu-ndr400");
    assert_eq!(v["gpus"].as_array().map(Vec::len), Some(8));
    assert_eq!(v["gpus"][0]["name"], "NVIDIA H100 80GB HBM3");
    assert_eq!(v["nvlink"][7]["active_links"], 18);
    assert_eq!(v["nvlink"][7]["link_gbps"], 26.562);
    assert_eq!(v["nvswitch"]["present"], true);
    let nics = v["nics"].as_array().expect("nics");
    let ib: Vec<&Value> = nics.iter().filter(|n| n["link_layer"] == "InfiniBand").collect();
    assert_eq!(ib.len(), 8);
    assert!(
        ib.iter()
            .all(|n| n["rate_gbps"] == 400.0 && n["state"] == "Active")
    );
    // GPU 1's PIX neighbour is NIC1 in the matrix, which the legend names mlx5_3.
    let aff: Vec<&Value> = v["gpu_nic_affinity"]
        .as_array()
        .expect("aff")
        .iter()
        .filter(|a| a["gpu"] == 1)
        .collect();
    assert_eq!(aff.len(), 1);
    assert_eq!(
        (aff[0]["nic"].as_str(), aff[0]["path"].as_str()),
        (Some("mlx5_3"), Some("PIX"))
    );
    assert_eq!(v["gpudirect"]["path"], "peer-memory");
    assert_eq!(v["versions"]["nccl"], "2.21.5");
    assert_eq!(v["versions"]["ofed"], "23.10-2.1.3.1");
    // A healthy full capture has no finding above info.
    let above_info: Vec<&Value> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["level"] != "info")
        .collect();
    assert!(above_info.is_empty(), "{above_info:?}");
}

#[test]
fn broken_node_reports_each_failure() {
    let v = detect_json("broken-h100");
    // The same codes verify uses for the same faults, with the probe or port as subject.
    let codes: Vec<(String, String, String)> = v["findings"]
        .as_array()
        .expect("f")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("code"), s("subject"), s("observed"))
        })
        .collect();
    let has = |code: &str, subject: &str, observed: &str| {
        codes
            .iter()
            .any(|(c, s, o)| c == code && s == subject && (observed.is_empty() || o == observed))
    };
    for (code, subject, observed) in [
        ("node.probes", "ibstat", "timeout"),
        ("node.probes", "ofed_info", "not-found"),
        ("rdma.port-state", "mlx5_5:1", "Down"),
        ("gpu.nvlink-links", "GPU5", ""),
        ("gpudirect.path", "node", "none"),
    ] {
        assert!(
            has(code, subject, observed),
            "{code} {subject} {observed} missing from {codes:?}"
        );
    }
    let down = v["nics"]
        .as_array()
        .expect("nics")
        .iter()
        .find(|n| n["device"] == "mlx5_5")
        .expect("mlx5_5");
    assert_eq!(down["state"], "Down");
    assert_eq!(
        down["source"], "sysfs",
        "ibstat timed out, so the port comes from sysfs"
    );
    let ibstat = v["probes"]
        .as_array()
        .expect("p")
        .iter()
        .find(|p| p["name"] == "ibstat")
        .expect("ibstat");
    assert_eq!(ibstat["status"], "timeout");
}

#[test]
fn roce_node_uses_dma_buf_and_old_drivers_name_nics_directly() {
    let roce = detect_json("roce-h100-8gpu");
    assert_eq!(roce["gpudirect"]["path"], "dma-buf");
    assert_eq!(roce["versions"]["ofed_flavor"], "DOCA-OFED");
    assert!(
        roce["nics"]
            .as_array()
            .expect("nics")
            .iter()
            .all(|n| n["link_layer"] == "Ethernet")
    );
    let a100 = detect_json("a100-8gpu-hdr200");
    let aff: Vec<&str> = a100["gpu_nic_affinity"]
        .as_array()
        .expect("a")
        .iter()
        .filter(|a| a["gpu"] == 6)
        .filter_map(|a| a["nic"].as_str())
        .collect();
    assert_eq!(aff, ["mlx5_8", "mlx5_9"]);
    assert_eq!(a100["nvswitch"]["present"], true);
}

#[test]
fn workstation_without_nics_is_still_a_valid_report() {
    let v = detect_json("workstation-2x4090-pcie");
    assert!(v["nics"].as_array().expect("nics").is_empty());
    assert_eq!(v["gpu_links"][0]["path"], "PHB");
    assert_eq!(v["nvswitch"]["present"], false);
    assert_eq!(v["gpus"][1]["mig_mode"], Value::Null);
}

#[test]
fn an_unreadable_replay_directory_exits_2_with_the_path() {
    let out = nccltune()
        .args(["detect", "--replay", "/nonexistent/capture"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/capture"));
    let bad = nccltune()
        .args(["detect", "--timeout", "-1"])
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_live_capture_replays_to_the_same_report() {
    // Live probing on a machine without GPUs: every probe fails or is missing, and detect
    // still exits 0 and writes a capture that replays to the same facts.
    let dir = tempfile::tempdir().expect("tempdir");
    let cap = dir.path().join("cap");
    let live = nccltune()
        .args(["detect", "--format", "json", "--timeout", "5", "--capture"])
        .arg(&cap)
        .output()
        .expect("run");
    assert_eq!(
        live.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );
    assert!(cap.join("manifest.json").is_file());
    let replay = nccltune()
        .args(["detect", "--format", "json", "--replay"])
        .arg(&cap)
        .output()
        .expect("run");
    assert_eq!(replay.status.code(), Some(0));
    let a: Value = serde_json::from_slice(&live.stdout).expect("json");
    let b: Value = serde_json::from_slice(&replay.stdout).expect("json");
    for key in ["gpus", "nics", "gpudirect", "versions", "findings"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    // A second capture into the same directory is refused and the first one survives.
    let again = nccltune()
        .args(["detect", "--capture"])
        .arg(&cap)
        .output()
        .expect("run");
    assert_eq!(again.status.code(), Some(2));
    assert!(cap.join("manifest.json").is_file());
}

#[test]
fn the_json_report_reads_back_into_the_model() {
    for node in node_fixtures() {
        let v = detect_json(&node);
        let report: nccltune::node::NodeReport = serde_json::from_value(v.clone()).expect("deserialises");
        assert_eq!(serde_json::to_value(&report).expect("serialises"), v, "{node}");
    }
}

#[test]
fn every_nccl_found_and_which_one_each_kind_of_process_loads() {
    // The GB200 capture holds three NCCLs: one in LD_LIBRARY_PATH, a wheel in a virtualenv,
    // the system package (the loader's cache points at it).
    let v = detect_json("gb200-4gpu-ndr400");
    let libs = v["nccl_libraries"].as_array().expect("nccl_libraries");
    assert_eq!(libs.len(), 5);
    let how: Vec<(&str, &str)> = libs
        .iter()
        .map(|l| {
            (
                l["version"].as_str().unwrap_or("-"),
                l["how"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(how.contains(&("2.26.2", "wheel metadata")), "{how:?}");
    assert!(how.contains(&("2.25.1", "link target")), "{how:?}");
    let loads = v["nccl_loads"].as_array().expect("nccl_loads");
    assert_eq!(loads[0]["process"], "program");
    assert_eq!(loads[0]["path"], "/opt/nccl-2.27.3/lib/libnccl.so.2");
    assert_eq!(loads[0]["version"], "2.27.3");
    assert!(loads[0]["rule"].as_str().expect("rule").contains("ld.so(8)"));
    assert_eq!(
        loads[1]["process"],
        "pytorch /home/train/.venv/lib/python3.12/site-packages"
    );
    assert_eq!(loads[1]["version"], "2.26.2");
    assert!(
        loads[1]["rule"]
            .as_str()
            .expect("rule")
            .contains("before LD_LIBRARY_PATH"),
        "the wheel's RPATH wins over LD_LIBRARY_PATH"
    );
    // Without LD_LIBRARY_PATH the loader's cache decides.
    let dir = tempfile::tempdir().expect("tmp");
    super::common::copy_fixture("gb200-4gpu-ndr400", dir.path());
    let libs = std::fs::read_to_string(dir.path().join("nccl-library.txt")).expect("read");
    let libs: String = libs
        .lines()
        .filter(|l| !l.contains("LD_LIBRARY_PATH"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("nccl-library.txt"), libs).expect("write");
    let out = nccltune()
        .args(["detect", "--format", "json", "--replay"])
        .arg(dir.path())
        .output()
        .expect("run");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        v["nccl_loads"][0]["path"],
        "/usr/lib/aarch64-linux-gnu/libnccl.so.2"
    );
    assert!(
        v["nccl_loads"][0]["rule"]
            .as_str()
            .expect("rule")
            .contains("ld.so.cache")
    );
    let table = nccltune()
        .args(["detect", "--replay"])
        .arg(fixture("gb200-4gpu-ndr400"))
        .output()
        .expect("run");
    let t = String::from_utf8_lossy(&table.stdout);
    assert!(
        t.contains("NCCL library") && t.contains("wheel metadata") && t.contains("ld.so(8)"),
        "{t}"
    );
}

#[test]
fn platforms_are_told_from_dmi_and_devices_and_say_what_was_used() {
    let v = detect_json("aws-p5-efa");
    assert_eq!(v["platform"]["id"], "aws-efa");
    assert_eq!(v["platform"]["machine"], "p5.48xlarge");
    assert_eq!(v["platform"]["net_plugin"], "aws-ofi-nccl");
    assert_eq!(v["dmi"]["sys_vendor"], "Amazon EC2");
    let efa = v["nics"]
        .as_array()
        .expect("nics")
        .iter()
        .filter(|n| n["driver"] == "efa")
        .count();
    assert_eq!(efa, 32);
    // EFA nodes carry no infiniband-diags or MLNX_OFED: said, not warned.
    let probes: Vec<(&str, &str)> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == "node.probes")
        .map(|f| {
            (
                f["subject"].as_str().unwrap_or(""),
                f["level"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(probes.contains(&("ibstat", "info")), "{probes:?}");
    let v = detect_json("gcp-a3-mega-tcpxo");
    assert_eq!(v["platform"]["id"], "gcp-a3-mega");
    let used = v["platform"]["used"].to_string();
    assert!(
        used.contains("9 gVNIC (gve) interfaces") && used.contains("H100"),
        "{used}"
    );
    // A3 High is told from A3 Mega by its gVNIC count (DMI names both alike).
    let v = detect_json("gcp-a3-high-tcpx");
    assert_eq!(v["platform"]["id"], "gcp-a3-high");
    assert_eq!(v["platform"]["net_plugin"], "gpudirect-tcpx");
    let v = detect_json("azure-nd-h100-v5");
    assert_eq!(v["platform"]["id"], "azure-nd-h100-v5");
    assert_eq!(v["nccl_plugins"][0]["owner"], "sharp");
    assert_eq!(v["nccl_plugins"][0]["on_loader_path"], false);
    // Captures without the DMI probes have no platform.
    assert!(detect_json("h100-8gpu-ndr400").get("platform").is_none());
}
