//! Fabric QoS end to end: the `sysfs-net-ecn` and `mlnx_qos` probes replayed from captures,
//! `configure`'s `NCCL_IB_TC` for a RoCE fabric with PFC and ECN on one priority, and
//! `verify`'s `rdma.lossless` on RoCE rail ports without them.

use super::common::{fixture, nccltune};
use nccltune::verify::{Status, VerifyReport};

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = nccltune().args(args).output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn configure(dir: &std::path::Path) -> (String, String) {
    let (code, out, err) = run(&["configure", "--replay", dir.to_str().expect("utf8")]);
    assert_eq!(code, Some(0), "{err}");
    (out, err)
}

fn verify(dir: &std::path::Path) -> VerifyReport {
    let (_, out, err) = run(&[
        "verify",
        "--format",
        "json",
        "--replay",
        dir.to_str().expect("utf8"),
    ]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{err}"))
}

/// A copy of a fixture with one probe file rewritten.
fn variant(node: &str, file: &str, edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(fixture(node)).expect("ls").flatten() {
        std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy");
    }
    let p = dir.path().join(file);
    let text = std::fs::read_to_string(&p).expect("read");
    std::fs::write(&p, edit(&text)).expect("write");
    dir
}

const RAILS: [&str; 8] = [
    "mlx5_0:1", "mlx5_1:1", "mlx5_2:1", "mlx5_3:1", "mlx5_4:1", "mlx5_5:1", "mlx5_6:1", "mlx5_7:1",
];

#[test]
fn pfc_and_ecn_on_priority_3_give_the_matching_traffic_class() {
    let (out, err) = configure(&fixture("roce-h100-qos-p3"));
    // DSCP 26 maps to priority 3 under DSCP trust: traffic class 26 << 2.
    assert!(out.contains("export NCCL_IB_TC='104'"), "{out}");
    assert!(!out.contains("export NCCL_IB_SL"), "{out}");
    assert!(!err.contains("configure.traffic-class"), "{err}");
    // The facts behind it, as `--explain` prints them.
    let (_, _, err) = run(&[
        "configure",
        "--explain",
        "--replay",
        fixture("roce-h100-qos-p3").to_str().expect("utf8"),
    ]);
    assert!(err.contains("roce_lossless_priority = 3"), "{err}");
    assert!(err.contains("roce_traffic_class = 104"), "{err}");
}

#[test]
fn the_class_follows_the_nics_dscp_table() {
    // Only DSCP 24 (CS3) maps to priority 3: 24 << 2.
    let d = variant("roce-h100-qos-p3", "mlnx_qos.txt", |t| {
        t.replace("prio:3 dscp:31,30,29,28,27,26,25,24,", "prio:3 dscp:24,")
    });
    let (out, _) = configure(d.path());
    assert!(out.contains("export NCCL_IB_TC='96'"), "{out}");
}

#[test]
fn pcp_trust_or_no_common_priority_sets_no_class_and_says_why() {
    let d = variant("roce-h100-qos-p3", "mlnx_qos.txt", |t| {
        t.replace("trust state: dscp", "trust state: pcp")
    });
    let (out, err) = configure(d.path());
    assert!(!out.contains("NCCL_IB_TC"), "{out}");
    assert!(
        err.contains("configure.traffic-class") && err.contains("trust mode pcp"),
        "{err}"
    );
    // PFC moved to priority 4 while ECN stays on 3: no priority is lossless.
    let d = variant("roce-h100-qos-p3", "mlnx_qos.txt", |t| {
        t.replace("enabled     0   0   0   1   0", "enabled     0   0   0   0   1")
    });
    let (out, err) = configure(d.path());
    assert!(!out.contains("NCCL_IB_TC"), "{out}");
    assert!(err.contains("no priority has PFC and ECN"), "{err}");
    let r = verify(d.path());
    let warned = r
        .checks
        .iter()
        .filter(|c| c.code == "rdma.lossless" && c.level == Status::Warn)
        .count();
    assert_eq!(warned, 8);
}

#[test]
fn verify_warns_on_each_rail_port_without_pfc_and_ecn() {
    let r = verify(&fixture("roce-h100-qos-none"));
    let mut warned: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| c.code == "rdma.lossless")
        .inspect(|c| assert_eq!(c.level, Status::Warn, "{c:?}"))
        .map(|c| c.subject.as_str())
        .collect();
    warned.sort_unstable();
    // The rail ports, not the bond front-end port.
    assert_eq!(warned, RAILS);
    let one = r
        .checks
        .iter()
        .find(|c| c.subject == "mlx5_3:1" && c.code == "rdma.lossless")
        .expect("check");
    assert!(one.fix.contains("mlnx_qos -i ens4np0"), "{}", one.fix);
    assert!(
        one.evidence_text().contains("trust pcp"),
        "{}",
        one.evidence_text()
    );

    let r = verify(&fixture("roce-h100-qos-p3"));
    let passed: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| c.code == "rdma.lossless" && c.level == Status::Pass)
        .map(|c| c.subject.as_str())
        .collect();
    assert_eq!(passed.len(), RAILS.len(), "{passed:?}");
    assert!(r.ok);
}

#[test]
fn a_capture_without_the_qos_probes_skips_once() {
    let r = verify(&fixture("roce-h100-8gpu"));
    let l: Vec<_> = r.checks.iter().filter(|c| c.code == "rdma.lossless").collect();
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!((l[0].level, l[0].subject.as_str()), (Status::Skip, "node"));
    // An InfiniBand node has no QoS probe findings and no lossless check.
    let r = verify(&fixture("h100-8gpu-ndr400"));
    assert!(!r.checks.iter().any(|c| c.code == "rdma.lossless"));
    assert!(
        !r.checks
            .iter()
            .any(|c| c.subject == "mlnx_qos" || c.subject == "sysfs-net-ecn")
    );
    let ll = r
        .checks
        .iter()
        .find(|c| c.code == "rdma.link-layer" && c.subject == "node")
        .expect("link layer");
    assert!(ll.evidence_text().contains("adaptive routing") && ll.evidence_text().contains("smpquery sl2vl"));
}

#[test]
fn detect_reports_the_qos_facts_with_their_probes() {
    let (_, out, err) = run(&[
        "detect",
        "--format",
        "json",
        "--replay",
        fixture("roce-h100-qos-p3").to_str().expect("utf8"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{err}"));
    let q = v["qos"].as_array().expect("qos");
    // Every RoCE port, the bond front-end too.
    assert_eq!(q.len(), 9);
    let p0 = &q[0];
    assert_eq!(p0["port"], "mlx5_0:1");
    assert_eq!(p0["netdev"], "ens1np0");
    assert_eq!(p0["pfc_priorities"], serde_json::json!([3]));
    assert_eq!(p0["ecn_np"], serde_json::json!([3]));
    assert_eq!(p0["trust"], "dscp");
    assert_eq!(p0["seen_by"], serde_json::json!(["sysfs-net-ecn", "mlnx_qos"]));
    assert_eq!(v["observed"]["qos"]["observed"], true);
}
