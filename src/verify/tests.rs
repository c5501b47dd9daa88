//! Check functions on hand-built node reports: the cases no fixture shows (a subnet manager
//! missing, one slow port among fast ones, DMA-BUF without nvidia_peermem, a far NIC).

use super::*;
use crate::node::{Affinity, Gpu, GpuDirect, Nic, NodeReport, ProbeSummary, Versions};

fn nic(dev: &str, state: &str, rate: f64, layer: &str) -> Nic {
    Nic {
        device: dev.into(),
        port: 1,
        state: Some(state.into()),
        physical_state: Some(if state == "Down" { "Disabled" } else { "LinkUp" }.into()),
        rate_gbps: Some(rate),
        link_layer: Some(layer.into()),
        source: "sysfs".into(),
        ..Nic::default()
    }
}

/// Four H100s, each with a PIX NIC mlx5_0..3 at 400 Gb/s InfiniBand, GDR via peer memory.
fn node() -> NodeReport {
    NodeReport {
        hostname: Some("n1".into()),
        source: "test".into(),
        gpus: (0..4)
            .map(|i| Gpu {
                index: i,
                name: Some("NVIDIA H100 80GB HBM3".into()),
                ..Gpu::default()
            })
            .collect(),
        nics: (0..4)
            .map(|i| nic(&format!("mlx5_{i}"), "Active", 400.0, "InfiniBand"))
            .collect(),
        gpu_nic_affinity: (0..4)
            .map(|i| Affinity {
                gpu: i,
                nic: format!("mlx5_{i}"),
                path: "PIX".into(),
            })
            .collect(),
        gpudirect: GpuDirect {
            peer_memory_clients: vec!["nv_mem".into()],
            nvidia_peermem_module: Some(true),
            path: "peer-memory".into(),
            ..GpuDirect::default()
        },
        versions: Versions {
            driver: Some("550.90.07".into()),
            nccl: Some("2.21.5".into()),
            ..Versions::default()
        },
        iommu_params: vec!["iommu=pt".into()],
        probes: ["nvidia-smi-query-gpu", "sysfs-rdma-ports", "proc-cmdline"]
            .iter()
            .map(|n| ProbeSummary {
                name: n.to_string(),
                status: crate::probe::ProbeStatus::Ok,
                ..ProbeSummary::default()
            })
            .collect(),
        ..NodeReport::default()
    }
}

fn run_on(n: &NodeReport) -> VerifyReport {
    run(n, &VerifyOptions::default()).expect("run")
}

fn status(r: &VerifyReport, id: &str, subject: &str) -> Status {
    r.checks
        .iter()
        .find(|c| c.code == id && c.subject == subject)
        .unwrap_or_else(|| panic!("no {id} {subject}: {:#?}", r.checks))
        .level
}

#[test]
fn the_hand_built_node_is_healthy() {
    let r = run_on(&node());
    assert!(r.ok);
    assert_eq!(r.summary.fail + r.summary.warn, 0, "{:#?}", r.checks);
}

#[test]
fn initializing_is_told_apart_from_down() {
    let mut n = node();
    n.nics[1] = nic("mlx5_1", "Initializing", 400.0, "InfiniBand");
    n.nics[2] = nic("mlx5_2", "Down", 10.0, "InfiniBand");
    let r = run_on(&n);
    let init = r.checks.iter().find(|c| c.subject == "mlx5_1:1").expect("init");
    assert_eq!(init.level, Status::Fail);
    assert!(init.message.contains("no subnet manager") && init.fix.contains("subnet manager"));
    let down = r.checks.iter().find(|c| c.subject == "mlx5_2:1").expect("down");
    assert_eq!(down.level, Status::Fail);
    assert!(down.message.starts_with("Down") && down.fix.contains("cable"));
    // A port that is not Active gets no rate check: its rate means nothing.
    assert!(
        !r.checks
            .iter()
            .any(|c| c.code == "rdma.port-rate" && c.subject == "mlx5_2:1")
    );
}

#[test]
fn one_slow_rail_port_fails_but_a_slow_management_port_does_not() {
    let mut n = node();
    n.nics[3].rate_gbps = Some(200.0);
    n.nics.push(nic("mlx5_4", "Active", 100.0, "Ethernet"));
    n.nics.push(nic("mlx5_5", "Down", 100.0, "Ethernet"));
    let r = run_on(&n);
    assert_eq!(status(&r, "rdma.port-rate", "mlx5_3:1"), Status::Fail);
    assert_eq!(status(&r, "rdma.port-rate", "mlx5_0:1"), Status::Pass);
    assert_eq!(status(&r, "rdma.port-rate", "mlx5_4:1"), Status::Pass);
    assert_eq!(status(&r, "rdma.port-state", "mlx5_5:1"), Status::Warn);
    // Without topology, rail and management ports cannot be told apart: warn, not fail.
    n.gpu_nic_affinity.clear();
    let r = run_on(&n);
    assert_eq!(status(&r, "rdma.port-rate", "mlx5_3:1"), Status::Warn);
}

#[test]
fn dma_buf_without_peermem_passes_unless_nccl_is_too_old() {
    let mut n = node();
    n.gpudirect = GpuDirect {
        nvidia_peermem_module: Some(false),
        open_kernel_module: Some(true),
        kernel_supports_dmabuf: Some(true),
        path: "dma-buf".into(),
        ..GpuDirect::default()
    };
    let r = run_on(&n);
    assert_eq!(status(&r, "gpudirect.path", "node"), Status::Pass);
    n.versions.nccl = Some("2.12.12".into());
    let r = run_on(&n);
    assert_eq!(status(&r, "gpudirect.path", "node"), Status::Fail);
    n.gpudirect.path = "none".into();
    n.versions.nccl = Some("2.21.5".into());
    assert_eq!(status(&run_on(&n), "gpudirect.path", "node"), Status::Fail);
    n.gpudirect.path = "unknown".into();
    assert_eq!(status(&run_on(&n), "gpudirect.path", "node"), Status::Warn);
}

#[test]
fn far_nics_warn_against_the_gdr_level() {
    let mut n = node();
    n.gpu_nic_affinity[0].path = "PXB".into();
    n.gpu_nic_affinity[1].path = "PHB".into();
    n.gpu_nic_affinity[2].path = "NODE".into();
    n.gpu_nic_affinity[3].path = "SYS".into();
    let r = run_on(&n);
    assert_eq!(status(&r, "pcie.gpu-nic-distance", "GPU0"), Status::Pass);
    for g in ["GPU1", "GPU2", "GPU3"] {
        assert_eq!(status(&r, "pcie.gpu-nic-distance", g), Status::Warn, "{g}");
    }
    let c = r
        .checks
        .iter()
        .find(|c| c.subject == "GPU3" && c.code == "pcie.gpu-nic-distance")
        .expect("c");
    assert!(
        c.evidence_text().contains("NCCL_NET_GDR_LEVEL"),
        "{}",
        c.evidence_text()
    );
    // A site threshold of SYS accepts them all.
    let opts = VerifyOptions {
        expectations: Some(
            Expectations::parse("[thresholds]\nmax_gpu_nic_path = \"SYS\"\n", "t").expect("e"),
        ),
        ..VerifyOptions::default()
    };
    let r = run(&n, &opts).expect("run");
    assert_eq!(r.summary.warn, 0, "{:#?}", r.checks);
}

#[test]
fn iommu_modes() {
    let mut n = node();
    n.iommu_params = vec!["intel_iommu=on".into()];
    assert_eq!(status(&run_on(&n), "pcie.iommu", "node"), Status::Warn);
    n.iommu_params = vec!["intel_iommu=on".into(), "iommu=pt".into()];
    assert_eq!(status(&run_on(&n), "pcie.iommu", "node"), Status::Pass);
    n.iommu_params.clear();
    assert_eq!(status(&run_on(&n), "pcie.iommu", "node"), Status::Skip);
}

#[test]
fn versions_against_a_golden_set() {
    let n = node();
    let opts = |toml: &str| VerifyOptions {
        expectations: Some(Expectations::parse(toml, "golden.toml").expect("e")),
        ..VerifyOptions::default()
    };
    let r = run(
        &n,
        &opts("[versions]\ndriver = \"550.90.07\"\nnccl_min = \"2.23\"\nofed = \"24.10-1.1.4\"\n"),
    )
    .expect("run");
    assert_eq!(status(&r, "software.driver", "node"), Status::Pass);
    assert_eq!(status(&r, "software.nccl", "node"), Status::Fail);
    // OFED unknown with a golden version: the evidence policy makes an expected but unseen
    // version a failure (it was a warning before the policy).
    assert_eq!(status(&r, "software.ofed", "node"), Status::Fail);
}

#[test]
fn strict_turns_warnings_into_a_no() {
    let mut n = node();
    n.iommu_params = vec!["intel_iommu=on".into()];
    let lax = run_on(&n);
    assert!(lax.ok);
    let strict = run(
        &n,
        &VerifyOptions {
            strict: true,
            ..VerifyOptions::default()
        },
    )
    .expect("run");
    assert!(!strict.ok);
    assert!(strict.summary_line().contains("pcie.iommu node"));
}

#[test]
fn fabric_registration_on_nvswitch() {
    let mut n = node();
    n.nvswitch.present = Some(true);
    for g in &mut n.gpus {
        g.architecture = Some("Hopper".into());
        g.fabric_state = Some("Completed".into());
        g.fabric_status = Some("Success".into());
    }
    assert_eq!(status(&run_on(&n), "gpu.fabric", "node"), Status::Pass);
    n.gpus[2].fabric_state = Some("In Progress".into());
    n.gpus[3].fabric_status = Some("Failure".into());
    let r = run_on(&n);
    let c = r.checks.iter().find(|c| c.code == "gpu.fabric").expect("fabric");
    assert_eq!(c.level, Status::Fail);
    assert!(
        c.message.contains("GPU2 (In Progress)") && c.message.contains("GPU3 (Completed, Failure)"),
        "{}",
        c.message
    );
    assert!(c.fix.contains("nvidia-fabricmanager"));
    // The architecture decides NVLS eligibility over the product name.
    for g in &mut n.gpus {
        g.architecture = Some("Ampere".into());
    }
    assert_eq!(status(&run_on(&n), "gpu.nvls", "node"), Status::Skip);
}
