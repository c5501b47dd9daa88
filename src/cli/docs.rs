//! `nccltune completions SHELL` and `nccltune man [--dir DIR]`: generated from the same clap
//! definition as the parser, so they cannot drift from the real flags.
//!
//! Man pages follow git's layout: one page per command and subcommand, found by walking the
//! clap tree (so a new subcommand gets its page without an edit here), named `nccltune-bench-
//! plan(1)` with the synopsis `nccltune bench plan`, and each with the sections man-pages(7)
//! lists for section 1 beyond what clap_mangen writes: EXIT STATUS, ENVIRONMENT, FILES,
//! SEE ALSO, and a date (`SOURCE_DATE_EPOCH` when set, for reproducible pages).

use super::{Cli, emit};
use anyhow::{Context, Result};
use clap::{CommandFactory, ValueEnum};
use clap_mangen::roff::{Roff, bold, italic, roman};
use nccltune::outcome::Outcome;
use std::path::Path;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub fn completions(shell: Shell) -> Result<Outcome> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "nccltune", &mut buf);
    emit(&String::from_utf8_lossy(&buf))?;
    Ok(Outcome::Ok)
}

/// One rendered page: its file name (`nccltune-bench-plan.1`) and roff text.
pub struct Page {
    pub file: String,
    /// The command as typed: `nccltune bench plan`.
    pub command: String,
    pub roff: String,
}

/// Every page, the top-level one first, then depth first in definition order.
pub fn pages() -> Result<Vec<Page>> {
    let mut top = Cli::command().disable_help_subcommand(true);
    top.build();
    let date = nccltune::render::meta::date(nccltune::render::meta::now());
    let mut out = Vec::new();
    walk(&top, &date, &mut out)?;
    Ok(out)
}

fn walk(cmd: &clap::Command, date: &str, out: &mut Vec<Page>) -> Result<()> {
    let display = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string();
    let command = cmd.get_bin_name().unwrap_or(&display).to_string();
    let man = clap_mangen::Man::new(cmd.clone())
        .title(display.to_uppercase())
        .date(date)
        .source(format!("nccltune {}", env!("CARGO_PKG_VERSION")))
        .manual("nccltune manual");
    let mut buf = Vec::new();
    man.render(&mut buf)?;
    let mut roff = String::from_utf8_lossy(&buf).into_owned();
    roff.push_str(&extra_sections(cmd, &command, &display));
    let roff = tidy(&roff);
    out.push(Page {
        file: format!("{display}.1"),
        command,
        roff,
    });
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        walk(sub, date, out)?;
    }
    Ok(())
}

/// Environment variables nccltune itself reads, with what they do.
const ENVIRONMENT: [(&str, &str); 10] = [
    (
        "NCCLTUNE_EXPECT, NCCLTUNE_BENCH_PROFILE, NCCLTUNE_TIMEOUT, NCCLTUNE_FORMAT",
        "Defaults for verify --expect, bench --profile, --timeout and --format; they override the configuration files and are overridden by flags (see nccltune-config(1), which also says which commands read them yet).",
    ),
    (
        "NCCLTUNE_CONFIG",
        "Read this one configuration file instead of /etc/nccltune/config.toml and the user's (/dev/null: none).",
    ),
    (
        "XDG_CONFIG_HOME",
        "Where the user's configuration file is looked for (default ~/.config).",
    ),
    (
        "NO_COLOR",
        "When set and not empty, no colour is written (--color auto).",
    ),
    (
        "CLICOLOR_FORCE",
        "When set and not 0, colour is written even when standard output is not a terminal (--color auto).",
    ),
    (
        "COLUMNS",
        "Width that tables are fitted to; otherwise the terminal's width, and no limit when standard output is not a terminal.",
    ),
    (
        "LC_ALL, LC_CTYPE, LANG",
        "The first one set decides the table borders: box-drawing characters for a UTF-8 locale, ASCII otherwise.",
    ),
    (
        "SOURCE_DATE_EPOCH",
        "Seconds since the epoch to use instead of the clock for generated_at, JUnit timestamps and man page dates.",
    ),
    (
        "NCCL_CONF_FILE",
        "Read by lint (with no FILE) as NCCL reads it: the user's NCCL configuration file instead of ~/.nccl.conf.",
    ),
    ("HOME", "For ~/.config/nccltune/config.toml and ~/.nccl.conf."),
];

const FILES: [(&str, &str); 4] = [
    (
        "/etc/nccltune/config.toml",
        "System-wide defaults (expectations file, bench profile, timeout, format).",
    ),
    (
        "$XDG_CONFIG_HOME/nccltune/config.toml",
        "The user's defaults, over the system-wide ones (default ~/.config/nccltune/config.toml).",
    ),
    (
        "~/.nccl.conf, /etc/nccl.conf",
        "NCCL's own configuration files, which lint reads with no FILE, in NCCL's order.",
    ),
    (
        "/var/lib/node_exporter/textfile/*.prom",
        "Where node_exporter's textfile collector usually reads verify --format prometheus -o FILE.",
    ),
];

fn extra_sections(cmd: &clap::Command, command: &str, display: &str) -> String {
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "The work was done and the answer is yes (nothing failed)."),
        (
            "1",
            "The answer is no: a check failed, a size was slow, an env file has an error, no placement exists.",
        ),
        (
            "2",
            "The work could not be done: a bad flag, an unreadable or malformed input, a capture that cannot be replayed.",
        ),
    ] {
        r.control("TP", []).text([bold(code)]).text([roman(meaning)]);
    }
    r.text([roman(
        "A check that could not see what it checks is never reported as a pass.",
    )]);
    r.control("SH", ["ENVIRONMENT"]);
    for (name, what) in ENVIRONMENT {
        r.control("TP", []).text([bold(name)]).text([roman(what)]);
    }
    r.control("SH", ["FILES"]);
    for (name, what) in FILES {
        r.control("TP", []).text([italic(name)]).text([roman(what)]);
    }
    r.control("SH", ["SEE ALSO"]);
    let mut see: Vec<String> = Vec::new();
    if command != "nccltune" {
        see.push("nccltune(1)".into());
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        see.push(format!("{display}-{}(1)", sub.get_name()));
    }
    see.push("mpirun(1)".into());
    r.text([roman(see.join(", "))]);
    r.to_roff()
}

/// Makes clap_mangen's roff pass `mandoc -Tlint` and `groff -ww`: drops blank lines (an empty
/// help text leaves one, which roff reads as `.sp` next to the `.br` that follows) and repeated
/// `.br`, removes
/// trailing blanks, and breaks filled text lines longer than 80 bytes at spaces (the same
/// output, since roff fills them again). Tag lines after `.TP` and no-fill blocks are kept as
/// they are, because there a line break means something.
fn tidy(roff: &str) -> String {
    let mut out = String::with_capacity(roff.len());
    let mut after_tp = false;
    let mut nofill = false;
    for line in roff.lines() {
        let line = trim_end_unescaped(line);
        // Blank lines, and a `.br` right after another (clap_mangen writes one after help text
        // that ends its own line).
        if line.is_empty() || (line == ".br" && out.ends_with(".br\n")) {
            continue;
        }
        let control = line.starts_with('.') || line.starts_with('\'');
        if control {
            match line.split_whitespace().next() {
                Some(".nf" | ".EX") => nofill = true,
                Some(".fi" | ".EE") => nofill = false,
                _ => {}
            }
        }
        if control || after_tp || nofill || line.len() <= 80 {
            out.push_str(line);
            out.push('\n');
        } else {
            wrap_text_line(line, &mut out);
        }
        after_tp = control && line.split_whitespace().next() == Some(".TP");
    }
    out
}

/// `line` without trailing spaces and tabs, keeping an escaped final space (`\ `).
fn trim_end_unescaped(line: &str) -> &str {
    let mut s = line;
    while let Some(rest) = s.strip_suffix([' ', '\t']) {
        if rest.ends_with('\\') && !rest.ends_with("\\\\") {
            break;
        }
        s = rest;
    }
    s
}

fn wrap_text_line(line: &str, out: &mut String) {
    let mut cur = String::new();
    let mut rest = line;
    while !rest.is_empty() {
        // The next word ends at a space that is not escaped.
        let mut end = rest.len();
        let b = rest.as_bytes();
        for i in 0..b.len() {
            if b[i] == b' ' && (i == 0 || b[i - 1] != b'\\') {
                end = i;
                break;
            }
        }
        let word = &rest[..end];
        rest = rest[end..].trim_start_matches(' ');
        if !cur.is_empty() && cur.len() + 1 + word.len() > 80 {
            out.push_str(&cur);
            out.push('\n');
            cur.clear();
        }
        if cur.is_empty() {
            // A text line must not start like a control line.
            if word.starts_with('.') || word.starts_with('\'') {
                cur.push_str("\\&");
            }
        } else {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        out.push_str(&cur);
        out.push('\n');
    }
}

/// `nccltune man`: every page to standard output, or with `--dir DIR` one file per page.
pub fn man(dir: Option<&Path>) -> Result<Outcome> {
    let pages = pages()?;
    match dir {
        None => {
            let all: String = pages.iter().map(|p| p.roff.as_str()).collect();
            emit(&all)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("--dir {}: cannot create the directory", dir.display()))?;
            for p in &pages {
                let path = dir.join(&p.file);
                nccltune::output::write_atomic(&path, p.roff.as_bytes()).with_context(|| {
                    format!(
                        "--dir {}: cannot write {} (the page of {})",
                        dir.display(),
                        p.file,
                        p.command
                    )
                })?;
            }
            eprintln!("nccltune: wrote {} man pages into {}", pages.len(), dir.display());
        }
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command path of the clap tree, walked independently of `pages`.
    fn paths(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        let me = if prefix.is_empty() {
            cmd.get_name().to_string()
        } else {
            format!("{prefix} {}", cmd.get_name())
        };
        for s in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            paths(s, &me, out);
        }
        out.push(me);
    }

    #[test]
    fn one_page_per_command_with_the_full_name_and_required_sections() {
        let pages = pages().expect("pages");
        let mut want = Vec::new();
        paths(&Cli::command(), "", &mut want);
        let mut got: Vec<String> = pages.iter().map(|p| p.command.clone()).collect();
        want.sort();
        got.sort();
        assert_eq!(got, want);
        for must in ["nccltune bench plan", "nccltune bench tune", "nccltune bench run"] {
            assert!(got.iter().any(|g| g == must), "{must}");
        }
        let dated = regex::Regex::new(r"\d{4}-\d{2}-\d{2}").expect("re");
        for p in &pages {
            assert_eq!(p.file, format!("{}.1", p.command.replace(' ', "-")));
            for section in [
                ".SH NAME",
                ".SH SYNOPSIS",
                ".SH \"EXIT STATUS\"",
                ".SH ENVIRONMENT",
                ".SH FILES",
            ] {
                assert!(p.roff.contains(section), "{}: no {section}", p.file);
            }
            // The synopsis names the command as typed.
            let synopsis = p.roff.split(".SH SYNOPSIS").nth(1).expect("synopsis");
            let first = synopsis.lines().nth(1).expect("line");
            assert!(
                first.starts_with(&format!("\\fB{}\\fR", p.command)),
                "{}: {first}",
                p.file
            );
            // The .TH line carries a date.
            let th = p.roff.lines().find(|l| l.starts_with(".TH")).expect("TH");
            assert!(dated.is_match(th), "{th}");
        }
    }
}
