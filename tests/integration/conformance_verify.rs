//! What `verify` reads, over the real captures in `../shared/samples`: the NCCL debug-log
//! parser on every log in `nccl-debug/` and the nccl-tests captures that carry NCCL INFO lines,
//! `nvidia-smi -q` (fabric state), and the port checks on real `ibstat` output; each asserts
//! what `samples/INDEX.md` states. Skipped with a note when the samples are absent.

use super::common::{fixture, nccltune, repo, sample, samples};
use nccltune::parse::nccl_log::{NcclLog, parse};

fn transports(log: &NcclLog) -> Vec<String> {
    log.transport_counts().into_iter().map(|(t, _)| t).collect()
}

#[test]
fn nccl_debug_samples() {
    let Some(files) = samples("nccl-debug") else {
        return;
    };
    assert!(files.len() >= 6);

    let log = parse(sample(&files, "issue-nccl1814-ibext-v8"));
    assert!(transports(&log).contains(&"NET/IBext_v8/4".to_string()));
    let net = log.channels.iter().find_map(|c| c.net()).expect("net channel");
    assert_eq!((net.net.as_str(), net.device, net.gdr), ("IBext_v8", 4, false));
    assert!(transports(&log).contains(&"P2P/CUMEM".to_string()));

    let log = parse(sample(&files, "issue-awsofinccl715-cloudwatch"));
    assert_eq!(transports(&log), vec!["P2P/CUMEM/read".to_string()]);
    assert!(log.channels.iter().all(|c| c.host.as_deref() == Some("algo-1")));
    assert_eq!(log.channels.len(), 12);

    let log = parse(sample(&files, "issue-aksrdma30"));
    let t = transports(&log);
    assert!(
        t.contains(&"NET/IB/9/GDRDMA".to_string()) && t.contains(&"P2P/CUMEM/read".to_string()),
        "{t:?}"
    );
    let gdr = log.channels.iter().filter_map(|c| c.net()).next().expect("net");
    assert_eq!((gdr.net.as_str(), gdr.device, gdr.gdr), ("IB", 9, true));

    let log = parse(sample(&files, "issue-tinygrad22"));
    assert_eq!(transports(&log), vec!["P2P/direct pointer".to_string()]);

    let log = parse(sample(&files, "issue-nvpeermem56"));
    assert_eq!(log.version.as_deref(), Some("2.4.7+cuda10.0"));
    assert_eq!(log.ib_devices.len(), 1);
    assert_eq!(
        (
            log.ib_devices[0].name.as_str(),
            log.ib_devices[0].port,
            log.ib_devices[0].kind.as_str()
        ),
        ("mlx5_0", 1, "IB")
    );

    let log = parse(sample(&files, "issue-nccl988"));
    assert_eq!(log.version.as_deref(), Some("2.12.9+cuda11.6"));
    assert_eq!(log.networks, vec!["IBext".to_string()]);
    assert_eq!(log.ib_devices.len(), 8);
    assert!(log.ib_devices.iter().all(|d| d.kind == "IB/SHARP"));
    assert_eq!(log.ib_device_name(7), Some("mlx5_7"));
}

#[test]
fn nccl_tests_samples_with_info_lines() {
    let Some(files) = samples("nccl-tests") else {
        return;
    };

    let log = parse(sample(&files, "awsdoeks-2node-2rank-efa"));
    assert_eq!(log.version.as_deref(), Some("2.12.7+cuda11.4"));
    assert_eq!(log.networks, vec!["AWS Libfabric".to_string()]);
    assert_eq!(transports(&log), vec!["NET/AWS Libfabric/0".to_string()]);
    assert_eq!(log.channels.len(), 8);
    assert!(log.channels.iter().all(|c| c.direction.is_some()));

    let log = parse(sample(&files, "issue-nccltests131-gtx1050ti"));
    assert_eq!(log.version.as_deref(), Some("2.16.5+cuda11.8"));
    assert_eq!(log.networks, vec!["Socket".to_string()]);
    assert_eq!(log.warnings.len(), 1);
    assert!(
        log.warnings[0]
            .text
            .starts_with("Could not find a path for pattern 4")
    );

    let log = parse(sample(&files, "issue-tinygrad45-2x4090"));
    assert_eq!(log.version.as_deref(), Some("2.26.5+cuda12.9"));
    assert_eq!(log.networks, vec!["IB".to_string()]);
    assert_eq!(log.ib_devices[0].name, "mlx5_bond_0");
    assert_eq!(log.ib_devices[0].kind, "RoCE");

    let log = parse(sample(&files, "issue-nccltests166-shm-warn"));
    assert!(
        log.warnings[0]
            .text
            .starts_with("Error while creating shared memory segment")
    );
    assert_eq!(log.failures.len(), 1);
    assert_eq!(transports(&log), vec!["SHM/direct/direct".to_string()]);

    let log = parse(sample(&files, "issue-nccl257-4x1080ti"));
    assert_eq!(log.version.as_deref(), Some("2.4.8+cuda10.0"));
    assert!(
        log.warnings
            .iter()
            .any(|w| w.text.starts_with("Failed to open libibverbs.so"))
    );

    // INFO lines interleaved in the middle of table rows: counted, no channels invented.
    let log = parse(sample(&files, "issue-nccl1453"));
    assert!(log.nccl_lines >= 10);
    assert!(log.channels.is_empty());

    let log = parse(sample(&files, "superbench-a100x8-allreduce"));
    assert_eq!(log.nccl_lines, 1);
}

/// Every sample through the binary: the run evidence group appears and nothing crashes.
#[test]
fn verify_runs_on_every_sample_log() {
    for tool in ["nccl-debug", "nccl-tests"] {
        let Some(files) = samples(tool) else { return };
        for (name, _) in files {
            let path = repo().join("../shared/samples").join(tool).join(&name);
            let out = nccltune()
                .args(["verify", "--format", "json", "--replay"])
                .arg(fixture("h100-8gpu-ndr400"))
                .arg("--nccl-log")
                .arg(&path)
                .output()
                .expect("run");
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{name}: {:?}",
                out.status
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            assert!(
                v["checks"]
                    .as_array()
                    .expect("checks")
                    .iter()
                    .any(|c| c["group"] == "nccl"),
                "{name}"
            );
        }
    }
}

/// `verify`'s port checks on ports parsed from real `ibstat` captures: a port stuck in
/// `Initializing` (no subnet manager) and a Down port beside an Active one.
#[test]
fn port_checks_on_real_ibstat_captures() {
    use nccltune::node::{Nic, NodeReport};
    use nccltune::verify::{Status, VerifyOptions, run};
    let Some(files) = samples("ibstat") else { return };
    let node_from = |prefix: &str| {
        let s = nccltune::parse::ibstat::parse(sample(&files, prefix));
        let mut node = NodeReport::default();
        for ca in s.cas {
            for p in ca.ports {
                node.nics.push(Nic {
                    device: ca.name.clone(),
                    port: p.number,
                    state: p.state.map(Into::into),
                    physical_state: p.physical_state,
                    rate_gbps: p.rate_gbps,
                    link_layer: p.link_layer.map(Into::into),
                    source: "ibstat".into(),
                    ..Nic::default()
                });
            }
        }
        node
    };
    let r = run(
        &node_from("issue-azhpcdiag59-azure-mlx5_ib0-initializing"),
        &VerifyOptions::default(),
    )
    .expect("run");
    let c = r
        .checks
        .iter()
        .find(|c| c.code == "rdma.port-state")
        .expect("state");
    assert_eq!(c.level, Status::Fail, "{c:?}");
    assert!(c.message.contains("no subnet manager"), "{}", c.message);

    let r = run(&node_from("issue-nccltests128"), &VerifyOptions::default()).expect("run");
    let states: Vec<Status> = r
        .checks
        .iter()
        .filter(|c| c.code == "rdma.port-state")
        .map(|c| c.level)
        .collect();
    assert!(
        states.contains(&Status::Pass) && states.contains(&Status::Warn),
        "{states:?}"
    );
    assert!(
        !states.contains(&Status::Fail),
        "a spare Down port beside Active ones is not a failure"
    );
}

/// `nvidia-smi -q` captures: architecture and the NVLink fabric state per GPU.
#[test]
fn nvidia_smi_q_samples() {
    use nccltune::parse::nvidia_smi_q::parse as parse_q;
    let Some(files) = samples("nvidia-smi-q") else {
        return;
    };
    let h100 = parse_q(sample(&files, "gpud-8xh100"));
    assert_eq!(h100.len(), 8);
    assert!(h100.iter().all(|g| g.architecture.as_deref() == Some("Hopper")));
    assert!(
        h100.iter().all(|g| g.fabric_state.as_deref() == Some("Completed")
            && g.fabric_status.as_deref() == Some("Success"))
    );
    let rtx = parse_q(sample(&files, "gpud-8xrtx4090"));
    assert_eq!(rtx.len(), 8);
    assert!(rtx.iter().all(|g| g.fabric_state.as_deref() == Some("N/A")));
    let h200 = parse_q(sample(&files, "exporter-h200-mig"));
    assert_eq!(h200.len(), 1);
    assert_eq!(h200[0].fabric_state.as_deref(), Some("Completed"));
    for (name, text) in &files {
        assert!(!parse_q(text).is_empty(), "{name}");
    }
}
