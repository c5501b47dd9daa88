#![no_main]
//! Fuzz target: the capture reader and everything a capture feeds. Input: file name and
//! content pairs separated by 0x1E, written into a fresh capture folder; a name starting with
//! `@` becomes a symlink to the content. `ReplayRunner::open` must refuse every symlink it
//! would read and never panic; a capture it accepts must build a node report whose table
//! carries no control character to the terminal and whose configure shell file reads back as
//! exactly its settings.
use libfuzzer_sys::fuzz_target;
use nccltune::probe::ReplayRunner;
use nccltune::render;

#[path = "common/reread.rs"]
mod reread;

fuzz_target!(|data: &[u8]| {
    let Ok(tmp) = tempfile::tempdir() else { return };
    let dir = tmp.path();
    let text = String::from_utf8_lossy(data);
    let mut f = text.split('\u{1e}');
    let mut links = Vec::new();
    while let (Some(name), Some(content)) = (f.next(), f.next()) {
        let (link, name) = match name.strip_prefix('@') {
            Some(n) => (true, n),
            None => (false, name),
        };
        // One plain file name: no folders, nothing outside the capture.
        if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.contains('\0') {
            continue;
        }
        let path = dir.join(name);
        if path.exists() || std::fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        if link {
            if std::os::unix::fs::symlink(content.trim(), &path).is_ok() {
                links.push(name.to_string());
            }
        } else {
            let _ = std::fs::write(&path, content.as_bytes());
        }
    }
    let read_by_replay = |n: &str| {
        n == "manifest.json"
            || n.rsplit_once('.').is_some_and(|(p, ext)| {
                matches!(ext, "txt" | "stderr" | "status") && nccltune::probe::find(p).is_some()
            })
    };
    let Ok(replay) = ReplayRunner::open(dir) else { return };
    assert!(
        !links.iter().any(|l| read_by_replay(l)),
        "replay accepted a capture with a symlink it reads: {links:?}"
    );
    let outputs = nccltune::node::collect(&replay);
    let host = replay.manifest().and_then(|m| m.hostname.clone());
    let node = nccltune::node::build(&outputs, "fuzz", host);
    let table = render::node::to_table(&node);
    assert!(
        !table.chars().any(|c| render::text::is_unsafe(c) && c != '\n' && c != '\t'),
        "a control character reaches the terminal: {table:?}"
    );
    let opts = nccltune::configure::Options {
        mode: "training".into(),
        nodes: Some(2),
        nccl_version: None,
        user_rules: vec![],
    };
    if let Ok(report) = nccltune::configure::run(&node, &opts) {
        if let Ok(sh) = render::configure::shell(&report) {
            let want: Vec<(String, String)> =
                report.settings.iter().map(|s| (s.name.clone(), s.value.clone())).collect();
            assert_eq!(reread::shell_file(&sh).as_ref(), Some(&want), "shell:\n{sh}");
        }
        if let Ok(k) = render::configure::k8s(&report) {
            if !report.settings.is_empty() {
                let want: Vec<(String, String)> =
                    report.settings.iter().map(|s| (s.name.clone(), s.value.clone())).collect();
                assert_eq!(reread::k8s_env(&k).as_ref(), Some(&want), "k8s:\n{k}");
            }
        }
    }
});
