//! `nccltune verify` end to end: exact statuses per node fixture, every output format parsed
//! back or checked against its grammar, exit codes, `--strict`, expectations, NCCL logs.

use super::common::{fixture, nccltune, node_fixtures, repo};
use nccltune::verify::{Status, VerifyReport};
use std::collections::BTreeSet;

fn log(name: &str) -> std::path::PathBuf {
    repo().join("fixtures/logs").join(name)
}

fn verify(args: &[&str]) -> (Option<i32>, String, String) {
    let out = nccltune().arg("verify").args(args).output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn report(node: &str, extra: &[&str]) -> (Option<i32>, VerifyReport) {
    let dir = fixture(node);
    let mut args = vec!["--format", "json", "--replay", dir.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    let (code, out, err) = verify(&args);
    let r: VerifyReport = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{node}: {e}\n{err}"));
    (code, r)
}

/// The checks that did not pass, as `status id subject`.
fn non_pass(r: &VerifyReport) -> BTreeSet<String> {
    r.checks
        .iter()
        .filter(|c| c.level != Status::Pass)
        .map(|c| format!("{} {} {}", c.level, c.code, c.subject))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn healthy_h100_has_no_fail_or_warn() {
    let (code, r) = report("h100-8gpu-ndr400", &["--expect-gpus", "8"]);
    assert_eq!(code, Some(0));
    assert_eq!(non_pass(&r), set(&[]));
    assert!(r.ok);
    // The checks that matter all ran and passed.
    for id in [
        "gpu.count",
        "gpu.nvlink-links",
        "gpu.nvlink-speed",
        "gpu.fabric",
        "gpu.nvls",
        "rdma.port-state",
        "rdma.port-rate",
        "rdma.link-layer",
        "gpudirect.path",
        "pcie.gpu-nic-distance",
        "pcie.acs",
        "pcie.iommu",
        "software.driver",
        "software.ofed",
        "software.nccl",
    ] {
        assert!(
            r.checks.iter().any(|c| c.code == id && c.level == Status::Pass),
            "{id}"
        );
    }
    let gdr = r.checks.iter().find(|c| c.code == "gpudirect.path").expect("gdr");
    assert!(gdr.message.contains("peer-memory"), "{}", gdr.message);
    // 10 ports (8 rail IB + 2 Ethernet): one state check each.
    assert_eq!(
        r.checks.iter().filter(|c| c.code == "rdma.port-state").count(),
        10
    );
}

#[test]
fn broken_h100_fails_the_right_checks() {
    let (code, r) = report("broken-h100", &["--expect-gpus", "8"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        non_pass(&r),
        set(&[
            // One finding per probe now, naming it (before: one `node` check naming ibstat only).
            "warn node.probes ibstat",
            "warn node.probes ofed_info",
            "fail gpu.nvlink-links GPU5",
            "fail rdma.port-state mlx5_5:1",
            "fail gpudirect.path node",
            "warn pcie.gpu-nic-distance GPU3",
            "warn pcie.acs 5a:00.0",
            "warn pcie.acs 5a:01.0",
            "skip software.ofed node",
        ])
    );
    assert_eq!((r.summary.fail, r.summary.warn, r.summary.skip), (3, 5, 1));
    let acs = r.checks.iter().find(|c| c.subject == "5a:00.0").expect("acs");
    assert!(
        acs.message.contains("GPU 5d:00.0") && acs.evidence_text().contains("ReqRedir"),
        "{acs:?}"
    );
    // The root port above the switch also redirects (the kernel enables ACS with an IOMMU),
    // but transfers inside the switch never reach it: not reported.
    assert!(!r.checks.iter().any(|c| c.subject == "58:01.0"));
    let down = r.checks.iter().find(|c| c.subject == "mlx5_5:1").expect("port");
    assert!(down.message.starts_with("Down"), "{}", down.message);
    assert!(!down.fix.is_empty() && !down.evidence.is_empty());
}

#[test]
fn other_fixtures_have_exact_statuses() {
    let (code, r) = report("a100-8gpu-hdr200", &[]);
    assert_eq!(code, Some(0));
    assert_eq!(
        non_pass(&r),
        // This capture has no lspci-vvv or nvidia-smi-q: said as absent from the capture.
        set(&[
            "skip gpu.fabric node",
            "skip gpu.nvls node",
            "skip pcie.acs node",
            "warn node.probes lspci-vvv",
            "warn node.probes nvidia-smi-q",
        ])
    );
    let absent = r.checks.iter().find(|c| c.subject == "lspci-vvv").expect("lspci");
    assert!(
        absent.message.contains("absent from the replayed capture"),
        "{}",
        absent.message
    );
    // The 100 Gb/s Ethernet port is not a GPU rail, so it is not compared with the 200s.
    let eth = r
        .checks
        .iter()
        .find(|c| c.code == "rdma.port-rate" && c.subject == "mlx5_4:1")
        .expect("eth");
    assert_eq!(eth.level, Status::Pass);

    let (code, r) = report("roce-h100-8gpu", &[]);
    assert_eq!(code, Some(0));
    assert_eq!(
        non_pass(&r),
        set(&[
            "skip gpu.fabric node",
            "skip pcie.acs node",
            // Captured before the QoS probes existed: PFC/ECN cannot be judged.
            "skip rdma.lossless node",
            "warn node.probes lspci-vvv",
            "warn node.probes nvidia-smi-q",
        ])
    );
    let gdr = r.checks.iter().find(|c| c.code == "gpudirect.path").expect("gdr");
    assert!(
        gdr.message.contains("DMA-BUF") && gdr.message.contains("not needed"),
        "{}",
        gdr.message
    );
    let ll = r.checks.iter().find(|c| c.code == "rdma.link-layer").expect("ll");
    assert!(ll.message.contains("RoCE"), "{}", ll.message);

    // Grace (C2C): the NICs on each GPU's own Grace CPU are NODE away in `topo -m`, P2C to
    // NCCL, within NCCL 2.30's default level P2C; the other Grace's are not nearest.
    let (code, r) = report("gb200-4gpu-ndr400", &[]);
    assert_eq!(code, Some(0));
    let dist: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.code == "pcie.gpu-nic-distance")
        .collect();
    assert_eq!(dist.len(), 4);
    for c in &dist {
        assert_eq!(c.level, Status::Pass, "{}", c.message);
        assert!(c.message.contains("within P2C"), "{}", c.message);
        assert_eq!(c.expected, Some(serde_json::json!("P2C")));
    }
    // With an NCCL older than the C2C default, the same node is judged against PXB.
    let dir = tempfile::tempdir().expect("tmp");
    super::common::copy_fixture("gb200-4gpu-ndr400", dir.path());
    std::fs::write(
        dir.path().join("nccl-library.txt"),
        "/usr/lib/aarch64-linux-gnu/libnccl.so.2.25.1\t\t\tsystem\n",
    )
    .expect("write");
    let (_, out, _) = verify(&["--format", "json", "--replay", dir.path().to_str().expect("utf8")]);
    let old: VerifyReport = serde_json::from_str(&out).expect("json");
    let c = old
        .checks
        .iter()
        .find(|c| c.code == "pcie.gpu-nic-distance")
        .expect("distance");
    assert_eq!(c.level, Status::Warn, "{}", c.message);
    assert_eq!(c.expected, Some(serde_json::json!("PXB")));

    let (code, r) = report("workstation-2x4090-pcie", &[]);
    assert_eq!(code, Some(0));
    assert_eq!(
        non_pass(&r),
        set(&[
            "skip gpu.nvlink-links node",
            "skip gpu.nvlink-speed node",
            "skip gpu.fabric node",
            "skip gpu.nvls node",
            "skip rdma.port-state node",
            "skip gpudirect.path node",
            "skip pcie.gpu-nic-distance node",
            "skip pcie.acs node",
            "skip pcie.iommu node",
            "skip software.ofed node",
            "skip software.nccl node",
        ])
    );
}

#[test]
fn every_check_has_a_unique_id_subject_and_a_fix_when_not_passing() {
    for node in node_fixtures() {
        let (_, r) = report(
            &node,
            &["--nccl-log", log("no-gdr-mlx5_3.log").to_str().expect("p")],
        );
        let mut seen = BTreeSet::new();
        for c in &r.checks {
            assert!(
                seen.insert((c.code, c.subject.clone())),
                "{node}: duplicate {} {}",
                c.code,
                c.subject
            );
            assert_eq!(c.code.as_str().split('.').next(), Some(c.group.as_str()));
            if matches!(c.level, Status::Fail | Status::Warn) {
                assert!(!c.fix.is_empty(), "{node}: {} {} has no fix", c.code, c.subject);
            }
        }
    }
}

#[test]
fn gpu_count_against_expectation() {
    let (code, r) = report("h100-8gpu-ndr400", &["--expect-gpus", "16"]);
    assert_eq!(code, Some(1));
    let c = r.checks.iter().find(|c| c.code == "gpu.count").expect("count");
    assert_eq!(c.level, Status::Fail);
    assert!(c.message.contains("16 expected"));
}

#[test]
fn json_contract_and_summary() {
    let (_, out, err) = verify(&[
        "--format",
        "json",
        "--replay",
        fixture("broken-h100").to_str().expect("p"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["schema"], 2);
    for key in ["nccltune_version", "generated_at", "identity", "evidence"] {
        assert!(v.get(key).is_some(), "{key}");
    }
    for key in [
        "machine_id",
        "dmi_product_serial",
        "dmi_product_uuid",
        "boot_id",
        "hostname",
    ] {
        assert!(v["identity"].get(key).is_some(), "identity.{key}");
    }
    for key in [
        "code", "group", "level", "subject", "message", "observed", "expected", "evidence", "fix",
    ] {
        assert!(v["checks"][0].get(key).is_some(), "{key}");
    }
    for key in ["pass", "warn", "fail", "skip"] {
        assert!(v["summary"][key].is_u64(), "{key}");
    }
    // One summary line on stderr, nothing else.
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("nccltune verify: FAIL on gpu-h100-042: "),
        "{err}"
    );
}

#[test]
fn prometheus_output_follows_the_exposition_grammar() {
    let (code, out, _) = verify(&[
        "--format",
        "prometheus",
        "--replay",
        fixture("broken-h100").to_str().expect("p"),
    ]);
    assert_eq!(code, Some(1));
    let sample = regex::Regex::new(
        r#"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\["\\n])*",?)*\})? -?[0-9]+(\.[0-9]+)?$"#,
    )
    .expect("re");
    let meta =
        regex::Regex::new(r"^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* gauge)$")
            .expect("re");
    let mut series = BTreeSet::new();
    for line in out.lines() {
        assert!(sample.is_match(line) || meta.is_match(line), "bad line: {line}");
        if !line.starts_with('#') {
            let labels = line.rsplit_once(' ').expect("value").0;
            assert!(series.insert(labels.to_string()), "duplicate series {labels}");
        }
    }
    assert!(out.contains(r#"nccltune_check{check="rdma.port-state",subject="mlx5_5:1",status="fail"} 1"#));
    assert!(out.contains(r#"nccltune_check{check="rdma.port-state",subject="mlx5_5:1",status="pass"} 0"#));
    assert!(out.contains(r#"nccltune_verify_checks{status="fail"} 3"#));
    assert!(out.contains("nccltune_verify_ok 0"));
    // TYPE precedes the samples of each metric, once.
    assert_eq!(out.matches("# TYPE nccltune_check gauge").count(), 1);
}

/// A minimal well-formedness check: tags balance, attributes are quoted, entities are known.
fn assert_well_formed_xml(xml: &str) {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .expect("declaration");
    let tag = regex::Regex::new(r#"<(/?)([A-Za-z][\w.-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(/?)>"#).expect("re");
    let mut stack: Vec<String> = Vec::new();
    let mut last = 0;
    for m in tag.captures_iter(body) {
        let whole = m.get(0).expect("m");
        let text = &body[last..whole.start()];
        assert!(!text.contains('<') && !text.contains('>'), "stray markup: {text}");
        for amp in text.match_indices('&') {
            let rest = &text[amp.0..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| rest.starts_with(e)),
                "bad entity in {rest}"
            );
        }
        last = whole.end();
        let name = m[2].to_string();
        if &m[1] == "/" {
            assert_eq!(stack.pop().as_deref(), Some(name.as_str()));
        } else if &m[4] != "/" {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed {stack:?}");
    assert!(body[last..].trim().is_empty());
}

#[test]
fn junit_output_is_well_formed_with_counts() {
    let (code, out, _) = verify(&[
        "--format",
        "junit",
        "--replay",
        fixture("broken-h100").to_str().expect("p"),
    ]);
    assert_eq!(code, Some(1));
    assert_well_formed_xml(&out);
    let (_, r) = report("broken-h100", &[]);
    assert_eq!(out.matches("<testcase ").count(), r.checks.len());
    assert_eq!(out.matches("<failure ").count(), 3);
    assert_eq!(out.matches("<skipped ").count(), 1);
    assert!(out.contains(&format!(
        r#"tests="{}" failures="3" errors="0" skipped="1""#,
        r.checks.len()
    )));
    // --strict turns the five warnings into failures.
    let (_, strict, _) = verify(&[
        "--strict",
        "--format",
        "junit",
        "--replay",
        fixture("broken-h100").to_str().expect("p"),
    ]);
    assert_well_formed_xml(&strict);
    assert_eq!(strict.matches("<failure ").count(), 8);
    // Log text with markup characters is escaped.
    let (_, with_log, _) = verify(&[
        "--format",
        "junit",
        "--replay",
        fixture("h100-8gpu-ndr400").to_str().expect("p"),
        "--nccl-log",
        log("ib-completion-error.log").to_str().expect("p"),
    ]);
    assert_well_formed_xml(&with_log);
    assert!(with_log.contains("10.10.1.18&lt;49152&gt;"));
}

#[test]
fn table_is_the_default() {
    let (code, out, err) = verify(&["--replay", fixture("broken-h100").to_str().expect("p")]);
    assert_eq!(code, Some(1));
    assert!(out.contains("rdma.port-state") && out.contains("Fixes:") && out.contains("FAIL: "));
    assert!(err.contains("rdma.port-state mlx5_5:1"));
}

#[test]
fn strict_makes_warnings_fail() {
    let h100 = fixture("h100-8gpu-ndr400");
    let warn_log = log("cloudwatch-warn.log");
    let base = [
        "--replay",
        h100.to_str().expect("p"),
        "--nccl-log",
        warn_log.to_str().expect("p"),
    ];
    let (code, _, err) = verify(&base);
    assert_eq!(code, Some(0), "{err}");
    let mut strict = base.to_vec();
    strict.push("--strict");
    let (code, _, err) = verify(&strict);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("nccl.warnings log"), "{err}");
}

#[test]
fn could_not_run_is_exit_2_with_a_named_cause() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[gpus]\ncount = 8\nnvlink = 18\n").expect("write");
    let h100 = fixture("h100-8gpu-ndr400");
    let h100 = h100.to_str().expect("p");
    let (code, out, err) = verify(&["--replay", h100, "--expect", bad.to_str().expect("p")]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty());
    assert!(
        err.contains("bad.toml") && err.contains("line 3") && err.contains("nvlink"),
        "{err}"
    );

    std::fs::write(&bad, b"\x00\xff\xfe binary").expect("write");
    let (code, _, err) = verify(&["--replay", h100, "--expect", bad.to_str().expect("p")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("bad.toml"), "{err}");

    let (code, _, err) = verify(&["--replay", h100, "--nccl-log", "/nonexistent/nccl.log"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("/nonexistent/nccl.log"), "{err}");

    let (code, _, _) = verify(&["--replay", "/nonexistent/capture"]);
    assert_eq!(code, Some(2));
    let (code, _, _) = verify(&["--replay", h100, "--format", "yaml"]);
    assert_eq!(code, Some(2));

    // Binary junk as a log is not fatal: it has no NCCL lines, which is a warning.
    let junk = dir.path().join("junk.log");
    std::fs::write(&junk, b"\x00\x01\x02\xff\xfe\n\x7f").expect("write");
    let (code, out, _) = verify(&[
        "--replay",
        h100,
        "--format",
        "json",
        "--nccl-log",
        junk.to_str().expect("p"),
    ]);
    assert_eq!(code, Some(0));
    assert!(out.contains("no NCCL debug lines"));
}

#[test]
fn help_documents_exit_codes() {
    let (code, out, _) = verify(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("Exit codes") && out.contains("2  verify could not run"));
}

#[test]
fn written_expectations_judge_other_nodes() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("h100.toml");
    let f = file.to_str().expect("p");
    let (code, _, err) = verify(&[
        "--replay",
        fixture("h100-8gpu-ndr400").to_str().expect("p"),
        "--write-expect",
        f,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(
        text.contains("count = 8") && text.contains("mlx5_11:1") && text.contains("23.10-2.1.3.1"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("ls").count(),
        1,
        "no temp file left"
    );

    // The same node passes; the broken one additionally misses OFED (expected but not seen: a
    // fail under the evidence policy); the RoCE node differs.
    let (code, r) = report("h100-8gpu-ndr400", &["--expect", f]);
    assert_eq!(code, Some(0));
    assert_eq!(non_pass(&r), set(&[]));
    let (_, r) = report("broken-h100", &["--expect", f]);
    let np = non_pass(&r);
    assert!(np.contains("fail software.ofed node"), "{np:?}");
    assert!(np.contains("fail rdma.port-state mlx5_5:1"), "{np:?}");
    let (code, r) = report("roce-h100-8gpu", &["--expect", f]);
    assert_eq!(code, Some(1));
    let np = non_pass(&r);
    assert!(np.contains("fail rdma.link-layer mlx5_0:1"), "{np:?}");
    assert!(np.contains("fail rdma.port-state mlx5_11:1"), "{np:?}");
    assert!(np.contains("fail software.driver node"), "{np:?}");
}

#[test]
fn port_rate_against_expectations_and_peers() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("e.toml");
    std::fs::write(
        &file,
        "[[ports]]\nport = \"mlx5_0:1\"\nrate_gbps = 800\nlink_layer = \"InfiniBand\"\n",
    )
    .expect("w");
    let (code, r) = report("h100-8gpu-ndr400", &["--expect", file.to_str().expect("p")]);
    assert_eq!(code, Some(1));
    let c = r
        .checks
        .iter()
        .find(|c| c.code == "rdma.port-rate" && c.subject == "mlx5_0:1")
        .expect("rate");
    assert_eq!(c.level, Status::Fail);
    assert!(c.message.contains("800"));
}

#[test]
fn nccl_log_checks_on_own_fixtures() {
    let cases: [(&str, i32, &[&str]); 5] = [
        ("two-node-ib-gdr.log", 0, &[]),
        (
            "socket-fallback.log",
            1,
            &["fail nccl.net-socket log", "skip nccl.nics log"],
        ),
        (
            "no-gdr-mlx5_3.log",
            1,
            &["fail nccl.gdr NET/IB/3 (mlx5_3)", "fail nccl.gdr-hca mlx5_3"],
        ),
        (
            "ib-completion-error.log",
            1,
            &["fail nccl.ib-completion log", "fail nccl.failures log"],
        ),
        (
            "cloudwatch-warn.log",
            0,
            &[
                "skip nccl.net-socket log",
                "skip nccl.nics log",
                "warn nccl.warnings log",
            ],
        ),
    ];
    for (file, want_code, want) in cases {
        let (code, r) = report(
            "h100-8gpu-ndr400",
            &["--nccl-log", log(file).to_str().expect("p")],
        );
        assert_eq!(code, Some(want_code), "{file}");
        let got: BTreeSet<String> = non_pass(&r)
            .into_iter()
            .filter(|s| s.contains(" nccl."))
            .collect();
        assert_eq!(got, set(want), "{file}");
    }
    let (_, r) = report(
        "h100-8gpu-ndr400",
        &["--nccl-log", log("no-gdr-mlx5_3.log").to_str().expect("p")],
    );
    let v = r
        .checks
        .iter()
        .find(|c| c.code == "nccl.version")
        .expect("version");
    assert!(
        v.message.contains("2.19.3") && v.message.contains("2.21.5"),
        "{}",
        v.message
    );
    // On a node without RDMA, a socket run is only a warning.
    let (_, r) = report(
        "workstation-2x4090-pcie",
        &["--nccl-log", log("socket-fallback.log").to_str().expect("p")],
    );
    let c = r
        .checks
        .iter()
        .find(|c| c.code == "nccl.net-socket")
        .expect("socket");
    assert_eq!(c.level, Status::Warn);
}

#[test]
fn output_file_is_written_atomically() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("nccltune.prom");
    let (code, out, _) = verify(&[
        "--replay",
        fixture("h100-8gpu-ndr400").to_str().expect("p"),
        "--format",
        "prometheus",
        "--output",
        file.to_str().expect("p"),
    ]);
    assert_eq!(code, Some(0));
    assert!(out.is_empty());
    assert!(
        std::fs::read_to_string(&file)
            .expect("read")
            .contains("nccltune_verify_ok 1")
    );
}

#[test]
fn a_failing_nvidia_smi_fails_an_expected_gpu_count() {
    // A copy of the healthy capture where the driver stopped answering.
    let dir = tempfile::tempdir().expect("tmp");
    for e in std::fs::read_dir(fixture("h100-8gpu-ndr400")).expect("ls") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy");
    }
    for probe in ["nvidia-smi-query-gpu", "nvidia-smi-topo", "nvidia-smi-nvlink"] {
        std::fs::remove_file(dir.path().join(format!("{probe}.txt"))).expect("rm");
        std::fs::write(dir.path().join(format!("{probe}.status")), "exit 9\n").expect("w");
        std::fs::write(
            dir.path().join(format!("{probe}.stderr")),
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n",
        )
        .expect("w");
    }
    let d = dir.path().to_str().expect("p");
    let (code, out, _) = verify(&["--format", "json", "--replay", d, "--expect-gpus", "8"]);
    assert_eq!(code, Some(1));
    let r: VerifyReport = serde_json::from_str(&out).expect("json");
    let c = r.checks.iter().find(|c| c.code == "gpu.count").expect("count");
    assert_eq!(c.level, Status::Fail);
    assert!(c.message.contains("exit 9"), "{}", c.message);
    // Without an expected count: the loaded kernel module says this is a GPU node, so it
    // still fails; without the module it only warns.
    let (code, _, _) = verify(&["--replay", d]);
    assert_eq!(code, Some(1));
    std::fs::remove_file(dir.path().join("proc-driver-nvidia-version.txt")).expect("rm");
    std::fs::write(
        dir.path().join("proc-driver-nvidia-version.status"),
        "not-found\n",
    )
    .expect("w");
    let (code, out, _) = verify(&["--format", "json", "--replay", d]);
    assert_eq!(code, Some(0));
    let r: VerifyReport = serde_json::from_str(&out).expect("json");
    let c = r.checks.iter().find(|c| c.code == "gpu.count").expect("count");
    assert_eq!(c.level, Status::Warn);
}

#[test]
fn cloud_fixtures_are_judged_for_what_their_platform_shows() {
    // Azure's VM hides the GPU-NIC PCIe switches: the distance is not judged from it.
    let (code, r) = report("azure-nd-h100-v5", &[]);
    assert_eq!(code, Some(0));
    let d: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.code == "pcie.gpu-nic-distance")
        .collect();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].level, Status::Info, "{}", d[0].message);
    assert!(d[0].message.contains("topology file"), "{}", d[0].message);
    // AWS p5: EFA from sysfs, no infiniband-diags: nothing warns or fails.
    let (code, r) = report("aws-p5-efa", &[]);
    assert_eq!(code, Some(0));
    let bad: Vec<String> = r
        .checks
        .iter()
        .filter(|c| matches!(c.level, Status::Warn | Status::Fail))
        .map(|c| format!("{} {} {}", c.code, c.subject, c.message))
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
}
