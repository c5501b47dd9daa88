//! `lint` end to end: the catalogue against NCCL 2.30.7's own list of variables, fixtures in the
//! shapes of public job scripts with the exact findings expected, `configure`'s every output
//! under `--strict`, node-aware checks on captures, unreadable NCCL config files and bounded input.

use super::common::{fixture, location, nccltune, node_fixtures, repo};
use nccltune::lint::{self, envfile};
use std::collections::BTreeSet;
use std::time::Duration;

fn require_samples() -> bool {
    std::env::var("NCCLTUNE_REQUIRE_SAMPLES").is_ok_and(|v| v == "1")
}

/// Lints `NAME=1` for each name and returns the names lint calls unknown.
fn unknown_to_lint(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| {
            let a = envfile::Assignment::new(n, Some("1"), "t", 1, envfile::Syntax::Dotenv);
            lint::lint(&[vec![a]], None, None, false)
                .findings
                .iter()
                .any(|f| f.code == "unknown-variable")
        })
        .cloned()
        .collect()
}

#[test]
fn every_name_nccl_2_30_7_reads_is_known_to_lint() {
    // The list extracted from NCCL's source and kept in the repo.
    let own: Vec<String> = include_str!("../../src/nccl/core-2.30.7.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect();
    assert!(own.len() > 240);
    assert_eq!(unknown_to_lint(&own), Vec::<String>::new());
    // The reference list of every name NCCL 2.30.7 reads (core, plugins, contrib), when present.
    let path = repo().join("../shared/reference/nccl-2.30.7-params.tsv");
    let Ok(tsv) = std::fs::read_to_string(&path) else {
        assert!(
            !require_samples(),
            "{} is required (NCCLTUNE_REQUIRE_SAMPLES=1)",
            path.display()
        );
        eprintln!(
            "note: {} not found; checked the committed list only",
            path.display()
        );
        return;
    };
    let mut core = Vec::new();
    let mut others = Vec::new();
    for line in tsv
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("name\t"))
    {
        let f: Vec<&str> = line.split('\t').collect();
        match f.get(1) {
            Some(&"core") => core.push(f[0].to_string()),
            Some(_) => others.push(f[0].to_string()),
            None => {}
        }
    }
    assert!(core.len() >= 243, "{}", core.len());
    assert_eq!(
        unknown_to_lint(&core),
        Vec::<String>::new(),
        "core names lint does not know"
    );
    assert_eq!(
        unknown_to_lint(&others),
        Vec::<String>::new(),
        "plugin/contrib names"
    );
    for n in &others {
        assert!(
            nccltune::nccl::owner_of(n).is_some(),
            "{n}: read by a plugin, not marked so"
        );
    }
}

/// `file:line code` of every warning and error lint gives on the fixtures.
fn findings_on_fixtures() -> (BTreeSet<String>, usize) {
    let dir = repo().join("fixtures/lint");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/lint")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "expected.txt")
        .collect();
    files.sort();
    let mut got = BTreeSet::new();
    for name in &files {
        let out = nccltune()
            .current_dir(&dir)
            .args(["lint", "--format", "json", name])
            .output()
            .expect("run");
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        for f in r["findings"].as_array().expect("findings") {
            if f["level"] != "info" {
                got.insert(format!("{} {}", &location(f), f["code"].as_str().unwrap_or("")));
            }
        }
    }
    (got, files.len())
}

#[test]
fn fixtures_of_real_script_shapes_give_exactly_the_expected_findings() {
    let expected: BTreeSet<String> = std::fs::read_to_string(repo().join("fixtures/lint/expected.txt"))
        .expect("expected.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect();
    let (got, files) = findings_on_fixtures();
    let wrong: Vec<&String> = got.difference(&expected).collect();
    let missed: Vec<&String> = expected.difference(&got).collect();
    let right = got.len() - wrong.len();
    eprintln!(
        "lint on {files} fixtures: {} warning/error findings, {right} expected ({:.0}% precision), {} of {} expected found",
        got.len(),
        100.0 * right as f64 / got.len().max(1) as f64,
        expected.len() - missed.len(),
        expected.len()
    );
    assert!(
        wrong.is_empty() && missed.is_empty(),
        "unexpected: {wrong:?}\nmissed: {missed:?}"
    );
    // The must-reports are among them.
    for must in [
        "slurm-ib-training.sbatch:14 unknown-token",
        "socket-only.sh:3 ib-settings-dead",
        "slurm-ib-training.sbatch:11 hca-duplicate",
        "pytorch-ddp.sh:10 unknown-variable",
    ] {
        assert!(got.contains(must), "{must}");
    }
    // No plugin's or PyTorch's variable is called unknown.
    assert!(
        !got.iter()
            .any(|g| g.starts_with("gcp-") && g.ends_with("unknown-variable"))
    );
    assert!(
        !got.iter()
            .any(|g| g.starts_with("sharp-") && g.ends_with("unknown-variable"))
    );
}

#[test]
fn the_typo_gets_no_harmful_did_you_mean() {
    let out = nccltune()
        .current_dir(repo().join("fixtures/lint"))
        .args([
            "lint",
            "--format",
            "json",
            "pytorch-ddp.sh",
            "sharp-collnet.sbatch",
        ])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("did you mean NCCL_CHECKS_DISABLE"), "{text}");
    assert!(!text.contains("NCCL_SHM_DISABLE"), "{text}");
    assert!(text.contains("TORCH_NCCL_ASYNC_ERROR_HANDLING"), "{text}");
}

#[test]
fn every_configure_output_lints_clean_under_strict() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut checked = 0;
    for node in node_fixtures() {
        let capture = fixture(&node);
        let capture = capture.to_str().expect("path");
        for mode in ["training", "inference"] {
            for (format, file) in [
                ("shell", "out.sh"),
                ("dotenv", "out.env"),
                ("nccl-conf", "nccl.conf"),
                ("k8s", "out.yaml"),
            ] {
                let out = nccltune()
                    .args([
                        "configure",
                        "--replay",
                        capture,
                        "--mode",
                        mode,
                        "--format",
                        format,
                    ])
                    .output()
                    .expect("configure");
                assert!(
                    out.status.success(),
                    "{node} {mode} {format}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let path = dir.path().join(file);
                std::fs::write(&path, &out.stdout).expect("write");
                let l = nccltune()
                    .args(["lint", "--strict", "--replay", capture])
                    .arg(&path)
                    .output()
                    .expect("lint");
                let table = String::from_utf8_lossy(&l.stdout);
                assert_eq!(l.status.code(), Some(0), "{node} {mode} {format}:\n{table}");
                let settings = String::from_utf8_lossy(&out.stdout).matches("NCCL_").count();
                assert!(
                    settings == 0 || !table.contains("in nothing"),
                    "{node} {format}: {table}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "{checked}");
}

#[test]
fn mpirun_arguments_survive_an_unquoted_command_substitution() {
    let h = fixture("h100-8gpu-ndr400");
    let out = nccltune()
        .args([
            "configure",
            "--replay",
            h.to_str().expect("path"),
            "--mode",
            "inference",
            "--format",
            "mpirun",
        ])
        .output()
        .expect("configure");
    assert!(out.status.success());
    let dir = tempfile::tempdir().expect("tmp");
    let args = dir.path().join("args");
    std::fs::write(&args, &out.stdout).expect("write");
    // What `mpirun $(nccltune configure --format mpirun)` hands mpirun: split, never unquoted.
    let words = std::process::Command::new("sh")
        .arg("-c")
        .arg("for w in $(cat \"$1\"); do printf '%s\\n' \"$w\"; done")
        .arg("sh")
        .arg(&args)
        .output()
        .expect("sh");
    let words: Vec<String> = String::from_utf8_lossy(&words.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!words.is_empty());
    for pair in words.chunks(2) {
        assert_eq!(pair[0], "-x");
        let (name, value) = pair[1].split_once('=').expect("NAME=value");
        assert!(
            name.starts_with("NCCL_")
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "{name}"
        );
        assert!(!value.contains('\''), "{value}");
    }
}

#[test]
fn node_facts_catch_ib_disabled_on_rails_and_missing_interfaces() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("job.sh");
    std::fs::write(
        &path,
        "export NCCL_IB_DISABLE=1\nexport NCCL_SOCKET_IFNAME==eth0\nexport NCCL_IB_HCA=mlx5_1\nsrun ./a\n",
    )
    .expect("write");
    let out = nccltune()
        .args(["lint", "--format", "json", "--replay"])
        .arg(fixture("h100-8gpu-ndr400"))
        .arg(&path)
        .output()
        .expect("lint");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let codes: Vec<(&str, &str)> = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or(""),
                f["level"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(codes.contains(&("ib-disabled-with-rails", "warn")), "{codes:?}");
    assert!(codes.contains(&("iface-missing", "fail")), "{codes:?}");
    // mlx5_1 also selects mlx5_10 and mlx5_11 on this node.
    assert!(codes.contains(&("hca-prefix", "warn")), "{codes:?}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn unreadable_nccl_config_files_are_reported_not_skipped() {
    let etc = tempfile::tempdir().expect("tmp");
    for kind in ["dir", "fifo", "loop"] {
        let home = tempfile::tempdir().expect("tmp");
        let conf = home.path().join(".nccl.conf");
        match kind {
            "dir" => std::fs::create_dir(&conf).expect("dir"),
            "fifo" => {
                let ok = std::process::Command::new("mkfifo")
                    .arg(&conf)
                    .status()
                    .expect("mkfifo");
                assert!(ok.success());
            }
            _ => std::os::unix::fs::symlink(&conf, &conf).expect("symlink"),
        }
        let s = lint::nccl_sources_checked(Vec::new(), Some(home.path()), &etc.path().join("nccl.conf"))
            .expect("sources");
        assert_eq!(s.problems.len(), 1, "{kind}");
        assert_eq!(s.problems[0].code, "unreadable-config");
        let expect = match kind {
            "dir" => "directory",
            "fifo" => "FIFO",
            _ => "loop",
        };
        assert!(
            s.problems[0].message.contains(expect),
            "{kind}: {}",
            s.problems[0].message
        );
        // The CLI says so too, and a FIFO does not hang it.
        let out = nccltune()
            .env_clear()
            .env("HOME", home.path())
            .args(["lint", "--format", "json"])
            .timeout(Duration::from_secs(30))
            .output()
            .expect("lint");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("unreadable-config"),
            "{kind}"
        );
    }
}

#[test]
fn inputs_are_bounded_and_errors_are_short() {
    let out = nccltune()
        .args(["lint", "/dev/zero"])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("lint");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MiB"), "{err}");
    let dir = tempfile::tempdir().expect("tmp");
    let long = dir.path().join("long.env");
    std::fs::write(&long, format!("NCCL_DEBUG={}\n", "x".repeat(1 << 20))).expect("write");
    let out = nccltune().arg("lint").arg(&long).output().expect("lint");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("long.env:1") && err.len() < 1000, "{err}");
}

#[test]
fn the_format_comes_from_the_content_and_as_overrides_it() {
    let dir = repo().join("fixtures/lint");
    let run = |extra: &[&str]| {
        let out = nccltune()
            .current_dir(&dir)
            .args(["lint", "--format", "json"])
            .args(extra)
            .arg("dup.conf")
            .output()
            .expect("lint");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")
    };
    let r = run(&[]);
    assert_eq!(r["sources"][0], "dup.conf");
    assert_eq!(r["read_as"][0]["format"], "nccl.conf");
    let dup = r["findings"]
        .as_array()
        .expect("f")
        .iter()
        .find(|f| f["code"] == "duplicate-variable")
        .cloned();
    assert!(dup.is_some_and(|d| d["message"].as_str().is_some_and(|m| m.contains("line 1 wins"))));
    let r = run(&["--as", "shell"]);
    assert_eq!(r["read_as"][0]["format"], "shell");
    let dup = r["findings"]
        .as_array()
        .expect("f")
        .iter()
        .find(|f| f["code"] == "duplicate-variable")
        .cloned();
    assert!(dup.is_some_and(|d| d["message"].as_str().is_some_and(|m| m.contains("line 3 wins"))));
}

/// `detect` on this machine with a Python environment holding the NCCL wheel, and a folder on
/// `LD_LIBRARY_PATH` holding a library whose only clue is NCCL's embedded version string.
#[test]
fn detect_finds_nccl_in_a_wheel_and_by_its_embedded_version() {
    let root = tempfile::tempdir().expect("tmp");
    let site = root.path().join("venv/lib/python3.11/site-packages");
    std::fs::create_dir_all(site.join("nvidia/nccl/lib")).expect("mkdir");
    std::fs::create_dir_all(site.join("nvidia_nccl_cu12-2.99.2.dist-info")).expect("mkdir");
    std::fs::write(site.join("nvidia/nccl/lib/libnccl.so.2"), b"\x7fELF not really").expect("write");
    let other = root.path().join("opt/lib");
    std::fs::create_dir_all(&other).expect("mkdir");
    let mut lib = vec![0u8; 1 << 21];
    lib.extend_from_slice(b"NCCL version 2.99.7+cuda12.8\0");
    std::fs::write(other.join("libnccl.so.2"), &lib).expect("write");
    let run = |envs: &[(&str, &std::path::Path)]| {
        let capture = root.path().join(format!("cap{}", envs.len()));
        let mut c = nccltune();
        c.env_remove("LD_LIBRARY_PATH")
            .env_remove("VIRTUAL_ENV")
            .env_remove("CONDA_PREFIX");
        for (k, v) in envs {
            c.env(k, v);
        }
        let out = c
            .args(["detect", "--format", "json", "--timeout", "5", "--capture"])
            .arg(&capture)
            .timeout(Duration::from_secs(120))
            .output()
            .expect("detect");
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let listing = std::fs::read_to_string(capture.join("nccl-library.txt")).unwrap_or_default();
        (r["versions"]["nccl"].as_str().unwrap_or("").to_string(), listing)
    };
    let venv = root.path().join("venv");
    let (v, listing) = run(&[("VIRTUAL_ENV", venv.as_path())]);
    assert_eq!(v, "2.99.2", "{listing}");
    assert!(
        listing.contains("nvidia/nccl/lib/libnccl.so.2\t2.99.2\twheel metadata"),
        "{listing}"
    );
    let (v, listing) = run(&[
        ("VIRTUAL_ENV", venv.as_path()),
        ("LD_LIBRARY_PATH", other.as_path()),
    ]);
    assert_eq!(v, "2.99.7", "{listing}");
    assert!(
        listing.contains("libnccl.so.2\t2.99.7\tembedded version string"),
        "{listing}"
    );
    // LD_LIBRARY_PATH comes first: the library a process would load is listed first.
    assert!(listing.starts_with(&other.display().to_string()), "{listing}");
}

#[test]
fn configure_notes_a_rail_that_is_down_beside_the_hca_list() {
    let out = nccltune()
        .args(["configure", "--format", "json", "--replay"])
        .arg(fixture("broken-h100"))
        .output()
        .expect("configure");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let notes = r["notes"].as_array().expect("notes");
    // The down rail is the node's own `rdma.port-state` finding, beside the setting it affects.
    assert!(
        notes.iter().any(|n| n["code"] == "rdma.port-state"
            && n["subject"] == "mlx5_5:1"
            && n["message"].as_str().is_some_and(|m| m.contains("NCCL_IB_HCA"))),
        "{notes:?}"
    );
}

/// `(code, level)` of every finding of `lint --format json --replay NODE` over `script`.
fn codes_on(node: &str, script: &str) -> Vec<(String, String, String)> {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("job.sh");
    std::fs::write(&path, script).expect("write");
    let out = nccltune()
        .args(["lint", "--format", "json", "--replay"])
        .arg(fixture(node))
        .arg(&path)
        .output()
        .expect("lint");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or("").to_string(),
                f["level"].as_str().unwrap_or("").to_string(),
                f["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn has(v: &[(String, String, String)], code: &str, level: &str) -> bool {
    v.iter().any(|(c, l, _)| c == code && l == level)
}

#[test]
fn a_traffic_class_no_lossless_priority_carries_is_flagged() {
    // PFC and ECN on priority 3, DSCP trust, the default dscp2prio table.
    let v = codes_on("roce-h100-qos-p3", "export NCCL_IB_TC=0\n");
    assert!(has(&v, "tc-not-lossless", "warn"), "{v:?}");
    assert!(
        v.iter().any(|(_, _, m)| m.contains("priority 0, PFC on [3]")),
        "{v:?}"
    );
    // DSCP 26 (104) and DSCP 24 (96) both map to priority 3.
    for ok in ["104", "106", "96"] {
        let v = codes_on("roce-h100-qos-p3", &format!("export NCCL_IB_TC={ok}\n"));
        assert!(!has(&v, "tc-not-lossless", "warn"), "{ok}: {v:?}");
    }
    // Without the QoS facts it is not judged, and says so.
    let v = codes_on("roce-h100-8gpu", "export NCCL_IB_TC=0\n");
    assert!(!has(&v, "tc-not-lossless", "warn"), "{v:?}");
    assert!(has(&v, "qos-unseen", "info"), "{v:?}");
    // On InfiniBand the SL's lane is the subnet manager's: said, not judged.
    let v = codes_on("h100-8gpu-ndr400", "export NCCL_IB_SL=1\n");
    assert!(has(&v, "qos-unseen", "info"), "{v:?}");
    assert!(v.iter().any(|(_, _, m)| m.contains("subnet manager")), "{v:?}");
}

#[test]
fn a_gdr_level_below_p2c_on_a_grace_node_is_flagged() {
    let v = codes_on("gb200-4gpu-ndr400", "export NCCL_NET_GDR_LEVEL=PXB\n");
    assert!(has(&v, "gdr-level-c2c", "warn"), "{v:?}");
    let v = codes_on("gb200-4gpu-ndr400", "export NCCL_NET_GDR_C2C=0\n");
    assert!(has(&v, "gdr-level-c2c", "warn"), "{v:?}");
    let v = codes_on("gb200-4gpu-ndr400", "export NCCL_NET_GDR_LEVEL=P2C\n");
    assert!(
        has(&v, "redundant-default", "info") && !has(&v, "gdr-level-c2c", "warn"),
        "{v:?}"
    );
    // On a PCIe node PXB is what the default admits.
    let v = codes_on("h100-8gpu-ndr400", "export NCCL_NET_GDR_LEVEL=PXB\n");
    assert!(!has(&v, "gdr-level-c2c", "warn"), "{v:?}");
}

#[test]
fn ib_settings_on_a_plugin_platform_are_dead() {
    let v = codes_on("aws-p5-efa", "export NCCL_IB_TIMEOUT=22\n");
    assert!(has(&v, "plugin-transport", "warn"), "{v:?}");
    // On InfiniBand the same setting is NCCL's own.
    let v = codes_on("h100-8gpu-ndr400", "export NCCL_IB_TIMEOUT=22\n");
    assert!(!has(&v, "plugin-transport", "warn"), "{v:?}");
}
