//! `nccltune configure` and `nccltune lint` end to end: golden outputs per mode for every node
//! fixture, the article's env sets drawing a finding for every problem the fact-check lists,
//! values from user rules surviving `source` byte for byte, atomic `-o`.

use super::common::{fixture, location, nccltune, node_fixtures, repo};
use super::robustness::Rng;
use serde_json::Value;

fn configure(args: &[&str]) -> (Option<i32>, String, String) {
    let out = nccltune().arg("configure").args(args).output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn golden_outputs_per_mode_for_every_node() {
    let dir = repo().join("tests/golden/configure");
    let bless = std::env::var_os("NCCLTUNE_BLESS").is_some();
    for node in node_fixtures() {
        for mode in ["inference", "training"] {
            let (code, out, err) =
                configure(&["--mode", mode, "--replay", fixture(&node).to_str().expect("utf8")]);
            assert_eq!(code, Some(0), "{node} {mode}: {err}");
            let golden = dir.join(format!("{node}.{mode}.sh"));
            if bless {
                std::fs::create_dir_all(&dir).expect("mkdir");
                std::fs::write(&golden, &out).expect("bless");
            }
            let want = std::fs::read_to_string(&golden).unwrap_or_else(|_| {
                panic!(
                    "missing {}: run with NCCLTUNE_BLESS=1 and review",
                    golden.display()
                )
            });
            assert_eq!(out, want, "{node} {mode}");
        }
    }
}

#[test]
fn what_the_built_in_rules_get_right() {
    let h100 = fixture("h100-8gpu-ndr400");
    let (_, out, _) = configure(&["--mode", "training", "--replay", h100.to_str().expect("utf8")]);
    assert!(
        out.contains(
            "export NCCL_IB_HCA='=mlx5_0:1,mlx5_3:1,mlx5_4:1,mlx5_5:1,mlx5_6:1,mlx5_9:1,mlx5_10:1,mlx5_11:1'"
        ),
        "IB rails only, exact: {out}"
    );
    assert!(
        !out.contains("mlx5_1:1") && !out.contains("mlx5_2:1"),
        "Ethernet front-end ports stay out"
    );
    for forbidden in [
        "NCCL_ALGO",
        "NCCL_PROTO",
        "NCCL_CROSS_NIC",
        "=auto",
        "NCCL_IB_GID_INDEX",
        "NCCL_MAX_CTAS",
    ] {
        assert!(!out.contains(forbidden), "training on IB sets no {forbidden}");
    }
    // GID index: RoCE with NCCL < 2.21 only, and the index read from the GID table.
    let roce = fixture("roce-h100-8gpu");
    let (_, out, _) = configure(&["--replay", roce.to_str().expect("utf8")]);
    assert!(out.contains("export NCCL_IB_GID_INDEX='3'"), "{out}");
    let (_, out, _) = configure(&[
        "--replay",
        roce.to_str().expect("utf8"),
        "--nccl-version",
        "2.21.5",
    ]);
    assert!(!out.contains("NCCL_IB_GID_INDEX"), "2.21+ picks the GID itself");
    // Version-correct names for the inference CTA cap.
    let a100 = fixture("a100-8gpu-hdr200");
    let (_, out, _) = configure(&["--mode", "inference", "--replay", a100.to_str().expect("utf8")]);
    assert!(
        out.contains("NCCL_MAX_NCHANNELS='16'") && !out.contains("export NCCL_MAX_CTAS"),
        "NCCL 2.11: {out}"
    );
    // No RDMA: sockets on the physical interface; single node: no network settings.
    let ws = fixture("workstation-2x4090-pcie");
    let (_, out, _) = configure(&["--replay", ws.to_str().expect("utf8")]);
    assert!(
        out.contains("NCCL_IB_DISABLE='1'") && out.contains("NCCL_SOCKET_IFNAME='=enp6s0'"),
        "{out}"
    );
    let (_, out, _) = configure(&["--nodes", "1", "--replay", h100.to_str().expect("utf8")]);
    assert!(!out.contains("NCCL_IB_HCA"), "single node: {out}");
}

#[test]
fn every_format_and_explain() {
    let h100 = fixture("h100-8gpu-ndr400");
    let h = h100.to_str().expect("utf8");
    let (_, out, _) = configure(&["--mode", "inference", "--replay", h, "--format", "json"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    let s = &v["settings"][0];
    assert_eq!(
        (s["name"].as_str(), s["rule"].as_str()),
        (Some("NCCL_IB_HCA"), Some("ib-hca-exact"))
    );
    assert!(
        s["source"]
            .as_str()
            .is_some_and(|x| x.contains("NCCL docs") && !x.contains("nccl-env.md"))
    );
    assert!(
        v["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .any(|r| r["id"] == "roce-gid-index" && r["applied"] == false)
    );
    let (_, out, _) = configure(&["--replay", h, "--format", "nccl-conf"]);
    assert!(out.lines().any(
        |l| l == "NCCL_IB_HCA==mlx5_0:1,mlx5_3:1,mlx5_4:1,mlx5_5:1,mlx5_6:1,mlx5_9:1,mlx5_10:1,mlx5_11:1"
    ));
    let (_, out, _) = configure(&["--replay", h, "--format", "mpirun"]);
    assert!(out.starts_with("-x NCCL_IB_HCA==mlx5_0:1,"), "{out}");
    let (_, out, _) = configure(&["--replay", h, "--format", "k8s"]);
    assert!(
        out.starts_with("env:\n  - name: NCCL_IB_HCA\n    value: \"=mlx5_0:1,"),
        "{out}"
    );
    let (code, out, err) = configure(&["--replay", h, "--explain"]);
    assert_eq!(code, Some(0));
    assert!(
        err.contains("rdma_link_layer = InfiniBand") && err.contains("inference-max-ctas"),
        "{err}"
    );
    assert!(
        out.starts_with("# nccltune configure") && !out.contains("rdma_link_layer"),
        "stdout carries only the file"
    );
}

#[test]
fn user_rules_override_add_and_disable() {
    let dir = tempfile::tempdir().expect("tmp");
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"inference-max-ctas\"\nenabled = false\n\n[[rule]]\nid = \"site-debug\"\nwhy = \"keep warnings\"\nsource = \"our runbook\"\n[rule.set]\nNCCL_DEBUG = \"WARN\"\n",
    )
    .expect("write");
    let (code, out, err) = configure(&[
        "--mode",
        "inference",
        "--rules",
        rules.to_str().expect("utf8"),
        "--replay",
        fixture("h100-8gpu-ndr400").to_str().expect("utf8"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !out.contains("NCCL_MAX_CTAS")
            && out.contains("# site-debug: keep warnings\nexport NCCL_DEBUG='WARN'"),
        "{out}"
    );
}

#[test]
fn an_invalid_rules_file_leaves_the_old_output_intact() {
    let dir = tempfile::tempdir().expect("tmp");
    let out_file = dir.path().join("nccl.env");
    std::fs::write(&out_file, "export KEEP='me'\n").expect("write");
    let rules = dir.path().join("bad.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"broken\"\n[rule.set]\nNCCL_BUFFSIZE = \"4MB\"\n",
    )
    .expect("write");
    let (code, _, err) = configure(&[
        "--rules",
        rules.to_str().expect("utf8"),
        "-o",
        out_file.to_str().expect("utf8"),
        "--replay",
        fixture("h100-8gpu-ndr400").to_str().expect("utf8"),
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("bad.toml:2: rule `broken`") && err.contains("reads 4"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&out_file).expect("read"),
        "export KEEP='me'\n"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("ls").count(),
        2,
        "no temporary file left"
    );
}

/// Any value a user rule sets is either refused with a clear error or survives
/// `bash -c 'source FILE; printenv NAME'` byte for byte.
#[test]
fn values_survive_sourcing_or_are_refused() {
    if std::process::Command::new("bash")
        .arg("-c")
        .arg("true")
        .status()
        .is_err()
    {
        eprintln!("note: bash not found; skipping the sourcing property test");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let node = fixture("workstation-2x4090-pcie");
    const CHARS: &[char] = &[
        'a', 'Z', '0', ' ', '\'', '"', '$', '`', '\\', ';', '&', '|', '(', ')', '#', '*', '!', '\t', '\n',
        '=', '~', '{', '}', 'é', '\u{1}',
    ];
    let mut rng = Rng::new(7);
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..120 {
        let len = 1 + rng.below(12);
        let value: String = (0..len).map(|_| CHARS[rng.below(CHARS.len())]).collect();
        let rules = dir.path().join(format!("r{case}.toml"));
        let toml_value = serde_json::to_string(&value)
            .expect("json string")
            .replace("\\/", "/");
        std::fs::write(
            &rules,
            format!(
                "[[rule]]\nid = \"p{case}\"\nwhy = \"property\"\n[rule.set]\nNCCL_DEBUG_FILE = {toml_value}\n"
            ),
        )
        .expect("write");
        let out = dir.path().join(format!("o{case}.env"));
        let (code, _, err) = configure(&[
            "--rules",
            rules.to_str().expect("utf8"),
            "-o",
            out.to_str().expect("utf8"),
            "--replay",
            node.to_str().expect("utf8"),
        ]);
        match code {
            Some(0) => {
                accepted += 1;
                let back = std::process::Command::new("bash")
                    .arg("-c")
                    .arg("source \"$1\"; printenv NCCL_DEBUG_FILE")
                    .arg("bash")
                    .arg(&out)
                    .env_clear()
                    .output()
                    .expect("bash");
                let mut got = back.stdout;
                assert_eq!(
                    got.pop(),
                    Some(b'\n'),
                    "case {case}: {value:?} {}",
                    std::fs::read_to_string(&out).unwrap_or_default()
                );
                assert_eq!(String::from_utf8_lossy(&got), value, "case {case}: {value:?}");
            }
            Some(2) => {
                refused += 1;
                assert!(
                    err.contains(&format!("rule `p{case}`")) && err.contains(&format!("r{case}.toml")),
                    "case {case}: unclear error {err}"
                );
            }
            other => panic!("case {case}: exit {other:?}: {err}"),
        }
    }
    assert!(
        accepted > 20 && refused > 5,
        "accepted {accepted}, refused {refused}"
    );
}

fn lint_codes(file: &str, extra: &[&str]) -> (Option<i32>, Vec<String>) {
    let path = repo().join("fixtures/env").join(file);
    let out = nccltune()
        .arg("lint")
        .arg(&path)
        .args(extra)
        .args(["--format", "json"])
        .output()
        .expect("run");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let codes = v["findings"]
        .as_array()
        .expect("f")
        .iter()
        .filter_map(|f| f["code"].as_str().map(str::to_string))
        .collect();
    (out.status.code(), codes)
}

/// Every problem article-factcheck.md (n) and (a)-(i) lists for the article's sets draws a finding.
#[test]
fn the_articles_env_sets_draw_every_fact_checked_problem() {
    let (code, codes) = lint_codes(
        "article-inference.env",
        &["--replay", fixture("h100-8gpu-ndr400").to_str().expect("utf8")],
    );
    assert_eq!(code, Some(0), "warnings only, unless --strict");
    for want in [
        "forced-algorithm",    // (a), (b), (n) 2: NCCL_ALGO=Ring
        "forced-protocol",     // (c): NCCL_PROTO=Simple
        "nthreads-not-sms",    // (e): NCCL_NTHREADS=256 does not free SMs
        "deprecated-variable", // (n) 3: MIN/MAX_NCHANNELS
        "hca-prefix",          // (n) 4: NCCL_IB_HCA=mlx5
        "legacy-int-level",    // (g): NCCL_NET_GDR_LEVEL=5
        "cross-nic-1",         // (h): NCCL_CROSS_NIC=1
        "gid-index-on-ib",     // (f): GID index on an InfiniBand node
        "nvls-enable-1",       // (i): NCCL_NVLS_ENABLE=1
        "debug-variable",      // (n) 6: Debugging-group variables
    ] {
        assert!(codes.iter().any(|c| c == want), "{want} missing from {codes:?}");
    }
    let (code, codes) = lint_codes("article-training.env", &[]);
    assert_eq!(code, Some(1), "`auto` is an error");
    for want in [
        "auto-value",
        "redundant-default",
        "deprecated-variable",
        "hca-prefix",
        "legacy-int-level",
        "cross-nic-1",
    ] {
        assert!(codes.iter().any(|c| c == want), "{want} missing from {codes:?}");
    }
    assert_eq!(
        codes.iter().filter(|c| *c == "auto-value").count(),
        2,
        "NCCL_ALGO=auto and NCCL_PROTO=auto"
    );
    let (code, _) = lint_codes("article-inference.env", &["--strict"]);
    assert_eq!(code, Some(1));
}

#[test]
fn lint_checks_against_the_node_and_reads_job_scripts() {
    let dir = tempfile::tempdir().expect("tmp");
    let script = dir.path().join("job.sh");
    std::fs::write(&script, "#!/bin/bash\nmpirun -np 16 -x NCCL_IB_HCA==mlx5_0:1,mlx5_5:1,mlx5_7:1 -x NCCL_SOCKET_IFNAME ./train\n").expect("write");
    let out = nccltune()
        .arg("lint")
        .arg(&script)
        .args(["--format", "json", "--replay"])
        .arg(fixture("broken-h100"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let f: Vec<(String, String)> = v["findings"]
        .as_array()
        .expect("f")
        .iter()
        .map(|x| (x["code"].as_str().unwrap_or("").into(), location(x)))
        .collect();
    assert!(
        f.iter()
            .any(|(c, l)| c == "hca-down-port" && l.ends_with("job.sh:2")),
        "{f:?}"
    );
    assert!(
        f.iter().any(|(c, _)| c == "hca-no-match"),
        "mlx5_7 does not exist: {f:?}"
    );
    let bin = dir.path().join("junk.env");
    std::fs::write(&bin, b"\x00\x01\x02").expect("write");
    let out = nccltune().arg("lint").arg(&bin).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.env"));
}

#[test]
fn lint_without_files_reads_the_environment_and_nccl_conf_in_precedence_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = dir.path().join("my.conf");
    std::fs::write(&conf, "NCCL_DEBUG=INFO\nNCCL_SOCKET_IFNAME=\"=eth0\"\n").expect("write");
    let out = nccltune()
        .args(["lint", "--format", "json"])
        .env("NCCL_CONF_FILE", &conf)
        .env("NCCL_DEBUG", "WARN")
        .env("HOME", dir.path())
        .output()
        .expect("run");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let eff = v["effective"].as_array().expect("effective");
    let debug = eff.iter().find(|e| e["name"] == "NCCL_DEBUG").expect("debug");
    assert_eq!(
        (debug["value"].as_str(), debug["from"].as_str()),
        (Some("WARN"), Some("environment"))
    );
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .expect("f")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"shadowed") && codes.contains(&"conf-quoted"),
        "{codes:?}"
    );
    assert_eq!(out.status.code(), Some(1), "the quoted value is an error");
}

#[test]
fn live_verify_includes_the_lint_findings_of_the_environment() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = nccltune()
        .args(["verify", "--format", "json", "--timeout", "5"])
        .env("NCCL_ALGO", "auto")
        .env("HOME", dir.path())
        .output()
        .expect("run");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let lint: Vec<&Value> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["code"] == "software.nccl-env")
        .collect();
    assert!(
        lint.iter().any(
            |c| c["level"] == "fail" && c["subject"].as_str().is_some_and(|s| s.starts_with("NCCL_ALGO"))
        ),
        "{lint:?}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn platform_rules_apply_only_where_the_platform_is_detected() {
    let run = |node: &str| {
        let f = fixture(node);
        configure(&["--mode", "training", "--replay", f.to_str().expect("utf8")])
    };
    // Azure ND H100 v5: Azure's topology file and relaxed ordering, as its HPC image sets them.
    let (code, out, err) = run("azure-nd-h100-v5");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("export NCCL_TOPO_FILE='/opt/microsoft/ndv5/topo.xml'"),
        "{out}"
    );
    assert!(out.contains("export NCCL_IB_PCI_RELAXED_ORDERING='1'"), "{out}");
    assert!(
        err.contains("platform Azure ND H100 v5") && err.contains("8 active InfiniBand ports"),
        "{err}"
    );
    assert!(
        err.contains("SHARP plugin") && err.contains("not on the loader's search path"),
        "{err}"
    );
    // AWS p5 with EFA: the plugin carries the traffic; no NCCL_IB_* and no socket settings.
    let (code, out, err) = run("aws-p5-efa");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !out.contains("NCCL_IB_") && !out.contains("NCCL_SOCKET_IFNAME"),
        "{out}"
    );
    assert!(
        err.contains("aws-ofi-nccl") && err.contains("p5.48xlarge"),
        "{err}"
    );
    // GCP A3 Mega with TCPXO: the plugin's interfaces from the gVNIC interfaces.
    let (code, out, err) = run("gcp-a3-mega-tcpxo");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("export NCCL_FASTRAK_CTRL_DEV='enp0s12'"), "{out}");
    assert!(
        out.contains(
            "export NCCL_FASTRAK_IFNAME='enp6s0,enp7s0,enp13s0,enp14s0,enp134s0,enp135s0,enp141s0,enp142s0'"
        ),
        "{out}"
    );
    assert!(
        out.contains("export NCCL_SOCKET_IFNAME='=enp0s12'") && !out.contains("NCCL_IB_DISABLE"),
        "{out}"
    );
    assert!(err.contains("nccl-env-profile.sh"), "{err}");
    // A bare-metal node gets none of them.
    let (_, out, err) = run("h100-8gpu-ndr400");
    assert!(
        !out.contains("NCCL_TOPO_FILE") && !err.contains("configure.platform"),
        "{out}{err}"
    );
    // DMI alone does not decide: a Microsoft VM whose devices are not an ND H100 v5 is no
    // ND H100 v5 (here: only four InfiniBand ports listed).
    let dir = tempfile::tempdir().expect("tmp");
    super::common::copy_fixture("azure-nd-h100-v5", dir.path());
    let ib = std::fs::read_to_string(dir.path().join("ibstat.txt")).expect("read");
    let cut = ib.find("CA 'mlx5_ib4'").expect("ib4");
    std::fs::write(dir.path().join("ibstat.txt"), &ib[..cut]).expect("write");
    std::fs::remove_file(dir.path().join("sysfs-rdma-ports.txt")).expect("rm");
    std::fs::write(dir.path().join("sysfs-rdma-ports.status"), "not-found\n").expect("write");
    let (_, out, _) = configure(&["--replay", dir.path().to_str().expect("utf8")]);
    assert!(!out.contains("NCCL_TOPO_FILE"), "{out}");
}

#[test]
fn several_nccls_are_said_with_the_one_the_rules_used() {
    let f = fixture("gb200-4gpu-ndr400");
    let (code, _, err) = configure(&["--replay", f.to_str().expect("utf8")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("program loads 2.27.3")
            && err.contains("loads 2.26.2")
            && err.contains("configure.nccl-versions"),
        "{err}"
    );
    let (_, _, err) = configure(&["--replay", f.to_str().expect("utf8"), "--nccl-version", "2.26.2"]);
    assert!(!err.contains("configure.nccl-versions"), "{err}");
}
