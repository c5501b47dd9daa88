//! Helpers shared by the integration tests.
#![allow(dead_code)]

use assert_cmd::Command;
use std::path::PathBuf;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(node: &str) -> PathBuf {
    repo().join("fixtures/nodes").join(node)
}

/// Every bundled node fixture.
pub fn node_fixtures() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo().join("fixtures/nodes"))
        .expect("fixtures/nodes")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A copy of a node fixture's files in `to` (created).
pub fn copy_fixture(node: &str, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(fixture(node)).expect("ls").flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

pub fn nccltune() -> Command {
    let mut c = Command::cargo_bin("nccltune").expect("binary");
    c.env_remove("NCCL_CONF_FILE").env("NO_COLOR", "1");
    // Tables are as wide as their cells unless a test asks for a width: a COLUMNS exported by
    // the shell that runs the tests must not fold what the tests read.
    c.env_remove("COLUMNS");
    // No machine configuration (/etc/nccltune, ~/.config) leaks into a test.
    c.env("NCCLTUNE_CONFIG", "/dev/null");
    for (k, _) in nccltune::config::ENV {
        c.env_remove(k);
    }
    c
}

/// `../shared/samples/<tool>`, or `None` (with a printed note) when the samples are absent.
pub fn samples(tool: &str) -> Option<Vec<(String, String)>> {
    let dir = repo().join("../shared/samples").join(tool);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        // Under CI the samples must be there: a conformance test that skips there proves nothing.
        assert!(
            std::env::var_os("NCCLTUNE_REQUIRE_SAMPLES").is_none_or(|v| v.is_empty() || v == "0"),
            "{} not found, and NCCLTUNE_REQUIRE_SAMPLES is set: the conformance tests need the real samples",
            dir.display()
        );
        eprintln!(
            "note: {} not found; skipping the conformance test for {tool}",
            dir.display()
        );
        return None;
    };
    let mut files: Vec<(String, String)> = entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(e.path()).expect("read sample");
            (name, String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect();
    files.sort();
    Some(files)
}

/// The sample whose file name starts with `prefix`.
pub fn sample<'a>(files: &'a [(String, String)], prefix: &str) -> &'a str {
    &files
        .iter()
        .find(|(n, _)| n.starts_with(prefix))
        .unwrap_or_else(|| panic!("no sample starting with {prefix}"))
        .1
}

/// A finding's `file:line` in JSON (its first `file` evidence), as `Finding::location` gives it.
pub fn location(f: &serde_json::Value) -> String {
    f["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|e| {
            let file = e.get("file")?;
            let path = file["path"].as_str()?;
            Some(match file["line"].as_u64() {
                Some(l) => format!("{path}:{l}"),
                None => path.to_string(),
            })
        })
        .unwrap_or_default()
}
