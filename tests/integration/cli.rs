//! The command line itself: help, version, completions, man page, usage errors.

use super::common::nccltune;

#[test]
fn version_and_help_exit_0() {
    let v = nccltune().arg("--version").output().expect("run");
    assert_eq!(v.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("nccltune "));
    let h = nccltune().arg("--help").output().expect("run");
    assert!(String::from_utf8_lossy(&h.stdout).contains("Exit codes"));
}

#[test]
fn completions_for_each_shell_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let out = nccltune().args(["completions", shell]).output().expect("run");
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        for sub in ["detect", "place", "completions", "man"] {
            assert!(text.contains(sub), "{shell} completions lack {sub}");
        }
    }
}

#[test]
fn man_page_documents_subcommands() {
    let out = nccltune().arg("man").output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(".ie") || text.contains(".TH nccltune"),
        "{}",
        &text[..text.len().min(200)]
    );
    assert!(text.contains(".TH NCCLTUNE-DETECT"));
    assert!(text.contains("replay"));
}

#[test]
fn a_wrong_flag_is_a_usage_error_with_exit_2() {
    let out = nccltune()
        .args(["detect", "--no-such-flag"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
    let out = nccltune()
        .args(["completions", "powershell"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
