//! The conventions strict consumers hold us to: JUnit that validates against the Jenkins xUnit
//! `junit-10.xsd` and Maven Surefire's schema (xmllint), Prometheus text that `promtool check
//! metrics` accepts, SARIF with the properties its schema requires, man pages that `mandoc
//! -Tlint` and `groff -ww` pass, tables that fit 80 columns, one flag vocabulary.
//!
//! A test that needs an external tool skips with a note when the tool is absent, and fails
//! instead when `CI` is set: `.ci/run` installs every one of them.

use super::common::{copy_fixture, fixture, nccltune, node_fixtures, repo};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The tool's path, or `None` with a note (a panic under CI, which installs it).
fn tool(name: &str) -> Option<PathBuf> {
    match which::which(name) {
        Ok(p) => Some(p),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("{name} is not installed; .ci/run installs it")
        }
        Err(_) => {
            eprintln!("note: {name} not installed; skipping");
            None
        }
    }
}

fn out(args: &[&str]) -> (Option<i32>, String) {
    let o = nccltune().args(args).output().expect("run");
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned())
}

fn schema(name: &str) -> PathBuf {
    repo().join("fixtures/schemas").join(name)
}

/// Every nccl-tests fixture judged against a built-in profile, through the library (the
/// `bench` command's machine formats are wired by the CLI on top of the same functions).
fn bench_reports() -> Vec<(String, nccltune::bench::BenchReport)> {
    let dir = repo().join("fixtures/nccl-tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/nccl-tests")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("read");
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            let runs = if name.ends_with(".json") {
                vec![nccltune::parse::nccl_tests::parse_json(&text, &name).expect("json run")]
            } else {
                nccltune::parse::nccl_tests::parse(&text, &name)
            };
            let opts = nccltune::bench::Options {
                targets: Some(nccltune::bench::targets::profile("h100x8-ndr400").expect("profile")),
                ..Default::default()
            };
            (name, nccltune::bench::judge(runs, &opts))
        })
        .collect()
}

/// Every JUnit document we can produce from the fixtures, named.
fn junit_documents() -> Vec<(String, String)> {
    let mut docs = Vec::new();
    for node in node_fixtures() {
        let dir = fixture(&node);
        for strict in [false, true] {
            let mut args = vec![
                "verify",
                "--format",
                "junit",
                "--replay",
                dir.to_str().expect("p"),
            ];
            if strict {
                args.push("--strict");
            }
            docs.push((format!("verify {node} strict={strict}"), out(&args).1));
        }
    }
    for env in ["article-training.env", "article-inference.env"] {
        let p = repo().join("fixtures/env").join(env);
        for strict in [false, true] {
            let mut args = vec!["lint", "--format", "junit", p.to_str().expect("p")];
            if strict {
                args.push("--strict");
            }
            docs.push((format!("lint {env} strict={strict}"), out(&args).1));
        }
    }
    let meta = nccltune::render::meta::Meta::now();
    for (name, r) in bench_reports() {
        docs.push((
            format!("bench {name}"),
            nccltune::render::bench_machine::to_junit(&r, &meta),
        ));
    }
    for (name, args) in bench_cli_cases() {
        let mut a = args.clone();
        a.extend(["--format".to_string(), "junit".to_string()]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        docs.push((format!("bench CLI {name}"), out(&a).1));
    }
    docs
}

/// `bench --parse` through the CLI: every nccl-tests fixture, with and without a profile, and
/// a log of many runs.
fn bench_cli_cases() -> Vec<(String, Vec<String>)> {
    let dir = repo().join("fixtures/nccl-tests");
    let mut cases = Vec::new();
    for sub in ["", "json"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
            .expect("fixtures/nccl-tests")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            let f = f.to_string_lossy().into_owned();
            cases.push((f.clone(), vec!["bench".into(), "--parse".into(), f.clone()]));
            cases.push((
                format!("{f} profile"),
                vec![
                    "bench".into(),
                    "--parse".into(),
                    f,
                    "--profile".into(),
                    "h100x8-ndr400".into(),
                ],
            ));
        }
    }
    cases.push((
        "several files".into(),
        ["bench", "--parse"]
            .iter()
            .map(|s| s.to_string())
            .chain(["ring", "slow", "wrong", "cut"].iter().map(|n| {
                dir.join(format!("h100-2node-allreduce-{n}.txt"))
                    .to_string_lossy()
                    .into_owned()
            }))
            .collect(),
    ));
    cases
}

fn xmllint(xml: &str, xsd: &Path, dir: &Path) -> (bool, String) {
    let file = dir.join("doc.xml");
    std::fs::write(&file, xml).expect("write");
    let o = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(xsd)
        .arg(&file)
        .output()
        .expect("xmllint");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn junit_validates_against_jenkins_and_surefire_schemas() {
    if tool("xmllint").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let docs = junit_documents();
    assert!(docs.len() >= 10);
    for (name, xml) in &docs {
        assert!(xml.contains("<testcase "), "{name}: no test case\n{xml}");
        for xsd in ["junit-10.xsd", "surefire-test-report.xsd"] {
            let (ok, err) = xmllint(xml, &schema(xsd), tmp.path());
            assert!(ok, "{name} fails {xsd}:\n{err}\n{xml}");
        }
    }
    // The schemas are strict enough to catch what consumers rejected before: `skipped` on
    // `<testsuites>` (junit-10.xsd) and a test case without `time` (Surefire).
    let old = "<?xml version=\"1.0\"?>\n<testsuites name=\"x\" tests=\"0\" skipped=\"0\"></testsuites>\n";
    assert!(!xmllint(old, &schema("junit-10.xsd"), tmp.path()).0);
    let untimed = "<testsuite name=\"x\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\"><testcase name=\"a\"/></testsuite>\n";
    assert!(!xmllint(untimed, &schema("surefire-test-report.xsd"), tmp.path()).0);
}

#[test]
fn hostile_names_stay_inside_junit_attributes() {
    use nccltune::render::junit::{Case, Outcome, Suite, render};
    let evil = "\"/><testcase name=\"injected\"/><x a=\"\u{1}\n&";
    let xml = render(&Suite {
        name: evil.into(),
        timestamp: "2026-01-01T00:00:00Z".into(),
        time_s: 0.0,
        properties: vec![(evil.into(), evil.into())],
        cases: vec![Case {
            classname: evil.into(),
            name: evil.into(),
            time_s: f64::NAN,
            outcome: Outcome::Failure {
                kind: evil.into(),
                message: evil.into(),
                detail: format!("{evil}]]>"),
            },
            system_out: Some(evil.into()),
        }],
    });
    assert_eq!(xml.matches("<testcase ").count(), 1, "{xml}");
    if tool("xmllint").is_some() {
        let tmp = tempfile::tempdir().expect("tmp");
        for xsd in ["junit-10.xsd", "surefire-test-report.xsd"] {
            let (ok, err) = xmllint(&xml, &schema(xsd), tmp.path());
            assert!(ok, "{xsd}: {err}\n{xml}");
        }
    }
}

fn promtool(text: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn promtool_accepts_every_prometheus_output() {
    if tool("promtool").is_none() {
        return;
    }
    let mut docs = Vec::new();
    for node in node_fixtures() {
        let dir = fixture(&node);
        let (_, text) = out(&[
            "verify",
            "--format",
            "prometheus",
            "--replay",
            dir.to_str().expect("p"),
        ]);
        assert!(text.contains("nccltune_build_info{version=\""), "{node}");
        docs.push((format!("verify {node}"), text));
    }
    for (name, r) in bench_reports() {
        let text = nccltune::render::bench_machine::to_prometheus(&r);
        assert!(text.contains("nccltune_bench_verdict{status=\""), "{name}");
        docs.push((format!("bench {name}"), text));
    }
    for (name, mut args) in bench_cli_cases() {
        args.extend(["--format".to_string(), "prometheus".to_string()]);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let text = out(&a).1;
        assert!(
            text.contains("nccltune_bench_verdict{status=\""),
            "CLI {name}: {text}"
        );
        docs.push((format!("bench CLI {name}"), text));
    }
    // Hostile names and values: escaped or rewritten, never a second line or a bad name.
    let mut f = nccltune::render::prometheus::Family::gauge("nccltune check-9", "help with \\ and \n");
    let evil = "mlx5_0\"} 1\nnccltune_fake{a=\"b\\";
    f.push_state(&[("check", evil), ("sub ject", evil)], &["pass", "fail"], "fail");
    f.push_state(&[("check", evil), ("sub ject", evil)], &["pass", "fail"], "pass");
    let hostile = nccltune::render::prometheus::render(&[f]);
    assert_eq!(hostile.lines().count(), 2 + 4, "{hostile}");
    docs.push(("hostile labels".into(), hostile));
    for (name, text) in &docs {
        let (ok, msg) = promtool(text);
        assert!(ok, "{name}: promtool check metrics:\n{msg}\n{text}");
    }
    // promtool does reject what it should: a malformed sample and a counter without _total.
    assert!(!promtool("# TYPE x gauge\nx{a=\"b} 1\n").0);
    assert!(!promtool("# HELP x_bytes h\n# TYPE x_bytes counter\nx_bytes 1\n").0);
}

#[test]
fn verify_prometheus_has_one_series_per_check_state() {
    let (_, text) = out(&[
        "verify",
        "--format",
        "prometheus",
        "--replay",
        fixture("broken-h100").to_str().expect("p"),
    ]);
    let json = out(&[
        "verify",
        "--format",
        "json",
        "--replay",
        fixture("broken-h100").to_str().expect("p"),
    ])
    .1;
    let r: nccltune::verify::VerifyReport = serde_json::from_str(&json).expect("json");
    let ones = text
        .lines()
        .filter(|l| l.starts_with("nccltune_check{") && l.ends_with("} 1"))
        .count();
    let all = text.lines().filter(|l| l.starts_with("nccltune_check{")).count();
    assert_eq!(ones, r.checks.len(), "exactly one current state per check");
    assert_eq!(all, 5 * r.checks.len(), "pass, info, warn, fail, skip per check");
    for c in r
        .checks
        .iter()
        .filter(|c| c.level == nccltune::verify::Status::Fail)
    {
        assert!(
            text.contains(&format!(
                "nccltune_check{{check=\"{}\",subject=\"{}\",status=\"fail\"}} 1",
                c.code, c.subject
            )),
            "{} {}",
            c.code,
            c.subject
        );
    }
}

#[test]
fn bench_prometheus_uses_base_units() {
    let reports = bench_reports();
    let (_, r) = reports
        .iter()
        .find(|(n, _)| n == "h100-2node-allreduce-slow.txt")
        .expect("fixture");
    let text = nccltune::render::bench_machine::to_prometheus(r);
    let run = &r.runs[0];
    let v = run
        .sizes
        .iter()
        .rev()
        .find(|v| v.busbw_gbps.is_some())
        .expect("a size");
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("nccltune_bench_busbw_bytes_per_second{")
                && l.contains(&format!("size_bytes=\"{}\"", v.size_bytes))
        })
        .expect("busbw series");
    let value: f64 = line.rsplit_once(' ').expect("value").1.parse().expect("number");
    assert!((value - v.busbw_gbps.expect("busbw") * 1e9).abs() < 1.0, "{line}");
    assert!(text.contains(&format!("nccltune_bench_verdict{{status=\"{}\"}} 1", r.verdict)));
}

#[test]
fn lint_sarif_has_what_the_schema_requires() {
    // A relative path, as a checkout-relative SARIF consumer expects it.
    let p = "fixtures/env/article-training.env";
    let o = nccltune()
        .current_dir(repo())
        .args(["lint", "--format", "sarif", p])
        .output()
        .expect("run");
    let (code, text) = (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned());
    assert_eq!(code, Some(1), "the fixture has error findings");
    let v: serde_json::Value = serde_json::from_str(&text).expect("SARIF is JSON");
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "nccltune");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    let results = run["results"].as_array().expect("results");
    let lint_json = out(&["lint", "--format", "json", repo().join(p).to_str().expect("p")]).1;
    let lint: serde_json::Value = serde_json::from_str(&lint_json).expect("json");
    assert_eq!(results.len(), lint["findings"].as_array().expect("f").len());
    for r in results {
        let idx = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"], "ruleIndex points at its rule");
        assert!(["none", "note", "warning", "error"].contains(&r["level"].as_str().expect("level")));
        assert!(!r["message"]["text"].as_str().expect("text").is_empty());
        let phys = &r["locations"][0]["physicalLocation"];
        assert_eq!(phys["artifactLocation"]["uri"], p);
        assert!(phys["region"]["startLine"].as_u64().expect("line") >= 1);
    }
    // With the published schema at hand (NCCLTUNE_SARIF_SCHEMA=path) and Python's jsonschema,
    // validate against the schema itself.
    if let Some(schema) = std::env::var_os("NCCLTUNE_SARIF_SCHEMA") {
        let tmp = tempfile::tempdir().expect("tmp");
        let doc = tmp.path().join("lint.sarif");
        std::fs::write(&doc, &text).expect("write");
        let o = Command::new("python3")
            .args([
                "-c",
                "import json,sys,jsonschema; jsonschema.Draft4Validator(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))",
            ])
            .arg(&schema)
            .arg(&doc)
            .output()
            .expect("python3");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn junit_and_sarif_carry_version_and_time() {
    let p = repo().join("fixtures/env/article-inference.env");
    let (_, sarif) = out(&["lint", "--format", "sarif", p.to_str().expect("p")]);
    let v: serde_json::Value = serde_json::from_str(&sarif).expect("json");
    assert_eq!(
        v["runs"][0]["tool"]["driver"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    let time = v["runs"][0]["invocations"][0]["endTimeUtc"]
        .as_str()
        .expect("time");
    let re = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$").expect("re");
    assert!(re.is_match(time), "{time}");
    let o = nccltune()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["lint", "--format", "junit", p.to_str().expect("p")])
        .output()
        .expect("run");
    let xml = String::from_utf8_lossy(&o.stdout);
    assert!(xml.contains("timestamp=\"2023-11-14T22:13:20Z\""), "{xml}");
}

#[test]
fn man_pages_one_per_command_pass_mandoc_and_groff() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("man1");
    let o = nccltune()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["man", "--dir", dir.to_str().expect("p")])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    files.sort();
    for want in [
        "nccltune.1",
        "nccltune-detect.1",
        "nccltune-configure.1",
        "nccltune-lint.1",
        "nccltune-place.1",
        "nccltune-verify.1",
        "nccltune-bench.1",
        "nccltune-bench-plan.1",
        "nccltune-bench-tune.1",
        "nccltune-bench-run.1",
    ] {
        assert!(files.iter().any(|f| f == want), "{want} missing from {files:?}");
    }
    for f in &files {
        let text = std::fs::read_to_string(dir.join(f)).expect("read");
        let cmd = f.trim_end_matches(".1").replace('-', " ");
        assert!(text.contains(&format!("\\fB{cmd}\\fR")), "{f} names {cmd}");
        assert!(text.contains(".TH ") && text.contains("2023-11-14"), "{f}: dated");
        for s in ["EXIT STATUS", "ENVIRONMENT", "FILES"] {
            assert!(
                text.contains(&format!(".SH {s}")) || text.contains(&format!(".SH \"{s}\"")),
                "{f}: {s}"
            );
        }
    }
    if tool("mandoc").is_some() {
        let o = Command::new("mandoc")
            .arg("-Tlint")
            .args(files.iter().map(|f| dir.join(f)))
            .output()
            .expect("mandoc");
        let msg = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success() && msg.is_empty(), "mandoc -Tlint:\n{msg}");
    }
    if tool("groff").is_some() {
        for f in &files {
            let o = Command::new("groff")
                .args(["-ww", "-z", "-man"])
                .arg(dir.join(f))
                .output()
                .expect("groff");
            let msg = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success() && msg.is_empty(), "groff -ww {f}:\n{msg}");
        }
    }
}

/// Display width of a line (box-drawing characters are one column each).
fn columns(line: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(line)
}

#[test]
fn detect_tables_fit_80_columns_on_every_fixture() {
    // Run from a folder deep enough that the capture's path alone passes 80 columns: the
    // width must not depend on where the checkout lives.
    let tmp = tempfile::tempdir().expect("tmp");
    let deep = tmp
        .path()
        .join("a-folder-name-long-enough-that-the-capture-path-alone-is-wider-than-a-terminal");
    for node in node_fixtures() {
        let copy = deep.join(&node);
        copy_fixture(&node, &copy);
        for (cmd, lang) in [
            ("detect", "C"),
            ("detect", "C.UTF-8"),
            ("verify", "C"),
            ("verify", "C.UTF-8"),
        ] {
            let o = nccltune()
                .env("COLUMNS", "80")
                .env("LANG", lang)
                .env_remove("LC_ALL")
                .env_remove("LC_CTYPE")
                .args([cmd, "--replay", copy.to_str().expect("p")])
                .output()
                .expect("run");
            assert!(matches!(o.status.code(), Some(0 | 1)), "{node}");
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(text.lines().count() > 10, "{node}: {text}");
            for line in text.lines() {
                assert!(
                    columns(line) <= 80,
                    "{node} LANG={lang}: {} columns: {line}",
                    columns(line)
                );
            }
            let boxy = text.contains('│');
            assert_eq!(
                boxy,
                lang == "C.UTF-8",
                "{node} LANG={lang}: borders follow the locale"
            );
        }
    }
    // Without COLUMNS and not on a terminal, cells are whole: the longest line is longer.
    let o = nccltune()
        .env_remove("COLUMNS")
        .args(["detect", "--replay", fixture("broken-h100").to_str().expect("p")])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.lines().map(columns).max().unwrap_or(0) > 80);
}

#[test]
fn configure_explain_fits_80_columns_on_every_fixture() {
    for node in node_fixtures() {
        let o = nccltune()
            .env("COLUMNS", "80")
            .env("LANG", "C.UTF-8")
            .args([
                "configure",
                "--explain",
                "--replay",
                fixture(&node).to_str().expect("p"),
            ])
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(0), "{node}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("facts:") && err.contains('┌'), "{node}: {err}");
        // Tables and facts; the `nccltune: note:` messages are sentences, not tables.
        for line in err.lines().filter(|l| !l.starts_with("nccltune: ")) {
            assert!(columns(line) <= 80, "{node}: {} columns: {line}", columns(line));
        }
    }
}

fn strip_ansi(s: &str) -> String {
    regex::Regex::new("\u{1b}\\[[0-9;]*m")
        .expect("re")
        .replace_all(s, "")
        .into_owned()
}

#[test]
fn color_follows_the_flag_no_color_and_clicolor_force() {
    let node = fixture("broken-h100");
    let run = |env: &[(&str, &str)], flags: &[&str]| {
        let mut c = nccltune();
        c.env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env("COLUMNS", "80");
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c
            .args(flags)
            .args(["detect", "--replay", node.to_str().expect("p")])
            .output()
            .expect("run");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let esc = |s: &str| s.contains('\u{1b}');
    assert!(!esc(&run(&[], &[])), "auto, not a terminal: plain");
    assert!(esc(&run(&[], &["--color", "always"])));
    assert!(esc(&run(&[("CLICOLOR_FORCE", "1")], &[])));
    assert!(!esc(&run(&[("NO_COLOR", "1")], &[])));
    assert!(!esc(&run(&[("CLICOLOR_FORCE", "1")], &["--color", "never"])));
    // Colour changes no width: the text without escapes is the plain output.
    let coloured = run(&[], &["--color", "always"]);
    assert_eq!(strip_ansi(&coloured), run(&[], &["--color", "never"]));
    assert!(
        coloured.contains("\u{1b}[33mtimeout"),
        "a timed-out probe is yellow"
    );
}

#[test]
fn quiet_leaves_the_exit_code_and_the_summary() {
    let o = nccltune()
        .args([
            "--quiet",
            "verify",
            "--replay",
            fixture("broken-h100").to_str().expect("p"),
        ])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty(), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nccltune verify: FAIL"));
    // -q after the subcommand too, and -o still writes its file.
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("v.json");
    let o = nccltune()
        .args([
            "verify",
            "-q",
            "--format",
            "json",
            "-o",
            file.to_str().expect("p"),
        ])
        .args(["--replay", fixture("h100-8gpu-ndr400").to_str().expect("p")])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    assert!(
        std::fs::read_to_string(&file)
            .expect("file")
            .contains("\"checks\"")
    );
}

#[test]
fn one_error_style_for_usage_and_runtime_errors() {
    for args in [
        vec!["detect", "--no-such-flag"],
        vec!["verify", "--expect", "/nonexistent/golden.toml"],
        vec!["--color", "sometimes", "detect"],
    ] {
        let o = nccltune().args(&args).output().expect("run");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("nccltune: error: "), "{args:?}: {err}");
        assert!(!err.contains("error: error:"), "{err}");
    }
    // Help is not an error; no subcommand is usage help on stderr, exit 2.
    let o = nccltune().args(["verify", "--help"]).output().expect("run");
    assert_eq!(o.status.code(), Some(0));
    let o = nccltune().output().expect("run");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Usage: nccltune") && !err.contains("error:"),
        "{err}"
    );
}

fn config_json(c: &mut assert_cmd::Command) -> serde_json::Value {
    let o = c.args(["config", "--format", "json"]).output().expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("json")
}

#[test]
fn config_layers_files_then_variables_and_says_where_each_value_came_from() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("config.toml");
    std::fs::write(
        &cfg,
        "expect = \"golden.toml\"\ntimeout = 30\nformat = \"json\"\n",
    )
    .expect("write");
    let v = config_json(
        nccltune()
            .env("NCCLTUNE_CONFIG", &cfg)
            .env("NCCLTUNE_TIMEOUT", "5"),
    );
    assert_eq!(v["schema"], 1);
    assert_eq!(v["nccltune_version"], env!("CARGO_PKG_VERSION"));
    assert!(v["generated_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(
        v["expect"]["value"],
        tmp.path().join("golden.toml").to_str().expect("p"),
        "relative to the file that names it"
    );
    assert_eq!(v["expect"]["from"]["name"], cfg.to_str().expect("p"));
    assert_eq!(v["timeout"]["value"], 5.0);
    assert_eq!(v["timeout"]["from"]["name"], "NCCLTUNE_TIMEOUT");
    assert_eq!(v["format"]["value"], "json");
    assert_eq!(v["bench_profile"]["from"]["kind"], "default");

    // The user's file under XDG_CONFIG_HOME is read when no override is given.
    let xdg = tmp.path().join("xdg");
    std::fs::create_dir_all(xdg.join("nccltune")).expect("mkdir");
    std::fs::write(
        xdg.join("nccltune/config.toml"),
        "bench_profile = \"h100x8-ndr400\"\n",
    )
    .expect("write");
    let v = config_json(
        nccltune()
            .env_remove("NCCLTUNE_CONFIG")
            .env("XDG_CONFIG_HOME", &xdg)
            .env("HOME", tmp.path()),
    );
    assert_eq!(v["bench_profile"]["value"], "h100x8-ndr400");
    let files = v["files"].as_array().expect("files");
    assert_eq!(files[0][0], "/etc/nccltune/config.toml");
    assert_eq!(files[1][0], xdg.join("nccltune/config.toml").to_str().expect("p"));
    assert_eq!(files[1][1], true);

    // A malformed file is exit 2 naming the file, the line and the key.
    std::fs::write(&cfg, "expect = \"a\"\ntimout = 3\n").expect("write");
    let o = nccltune()
        .env("NCCLTUNE_CONFIG", &cfg)
        .arg("config")
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(cfg.to_str().expect("p")) && err.contains("line 2") && err.contains("timout"),
        "{err}"
    );
}

#[test]
fn verify_takes_its_expectations_from_the_configuration_unless_a_flag_says_otherwise() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("sixteen.toml"), "[gpus]\ncount = 16\n").expect("write");
    std::fs::write(tmp.path().join("eight.toml"), "[gpus]\ncount = 8\n").expect("write");
    let cfg = tmp.path().join("config.toml");
    std::fs::write(&cfg, "expect = \"sixteen.toml\"\n").expect("write");
    let node = fixture("h100-8gpu-ndr400");
    let verify = |extra: &[&str]| {
        let o = nccltune()
            .env("NCCLTUNE_CONFIG", &cfg)
            .args([
                "verify",
                "--format",
                "json",
                "--replay",
                node.to_str().expect("p"),
            ])
            .args(extra)
            .output()
            .expect("run");
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
        (o.status.code(), r)
    };
    let gpu_count = |r: &serde_json::Value| {
        r["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["code"] == "gpu.count"))
            .map(|c| c["level"].as_str().unwrap_or("").to_string())
    };
    let (code, r) = verify(&[]);
    assert_eq!(
        (code, gpu_count(&r).as_deref()),
        (Some(1), Some("fail")),
        "config's 16 GPUs"
    );
    let eight = tmp.path().join("eight.toml");
    let (code, r) = verify(&["--expect", eight.to_str().expect("p")]);
    assert_eq!(
        (code, gpu_count(&r).as_deref()),
        (Some(0), Some("pass")),
        "the flag wins"
    );
    // A configured file that is gone is exit 2 naming where it was configured.
    std::fs::write(&cfg, "expect = \"gone.toml\"\n").expect("write");
    let o = nccltune()
        .env("NCCLTUNE_CONFIG", &cfg)
        .args(["verify", "--replay", node.to_str().expect("p")])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("gone.toml") && err.contains(&format!("from {}", cfg.display())),
        "{err}"
    );
}
