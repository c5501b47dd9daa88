//! The lint report as a table that fits the terminal (`render::table`): findings in rows (level,
//! code, where, message; every message names its variable, so the variable needs no column of
//! its own in 80 columns), their fixes folded below the table, the folder the files share
//! printed once. JSON goes through `render::json`.

use super::table::{self, Layout};
use crate::lint::LintReport;

pub fn to_table(r: &LintReport) -> String {
    to_table_in(r, Layout::from_env())
}

/// The table in `layout` (tests pass one; the command reads it from the environment).
pub fn to_table_in(r: &LintReport, layout: Layout) -> String {
    // Values from the files are escaped on the way in (`\x1b` shown, not obeyed), before the
    // table adds its own colour escapes.
    let safe = |t: &str| super::text::sanitize(t).into_owned();
    let mut rows: Vec<Vec<String>> = r
        .findings
        .iter()
        .map(|f| {
            vec![
                f.level.to_string(),
                f.code.to_string(),
                safe(&f.location()),
                safe(&f.message),
            ]
        })
        .collect();
    // Files given with a long folder (a job directory, a CI checkout) would repeat it in every
    // row: it is cut from the `where` cells and named once above the table.
    let base = table::strip_common_dir(&mut rows, 2);
    let relative = |p: &str| -> String {
        match &base {
            Some(b) => p
                .strip_prefix(b.as_str())
                .and_then(|rest| {
                    rest.strip_prefix('/')
                        .or(if b == "/" { Some(rest) } else { None })
                })
                .filter(|rest| !rest.is_empty())
                .unwrap_or(p)
                .to_string(),
            None => p.to_string(),
        }
    };
    let mut s = String::new();
    if let Some(b) = &base {
        s.push_str(&table::fold("Files in ", &safe(&format!("{b}:")), layout));
    }
    s.push_str(&table::render(
        &["level", "code", "where", "message"],
        &rows,
        layout,
    ));
    let fixes: Vec<(usize, &str)> = r
        .findings
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.fix.is_empty())
        .map(|(i, f)| (i, f.fix.as_str()))
        .collect();
    if !fixes.is_empty() {
        s.push_str("Fixes:\n");
        for (i, fix) in fixes {
            let f = &r.findings[i];
            let at = &rows[i][2];
            let head = if at.is_empty() {
                format!("{} {}: ", f.code, f.subject)
            } else {
                format!("{} {} ({at}): ", f.code, f.subject)
            };
            s.push_str(&table::fold("  - ", &safe(&format!("{head}{fix}")), layout));
        }
    }
    if !r.effective.is_empty() {
        s.push_str(&table::render(
            &["variable", "value NCCL will see", "from"],
            &r.effective
                .iter()
                .map(|e| {
                    vec![
                        safe(&e.name),
                        e.value
                            .as_deref()
                            .map_or_else(|| "(from the launcher's environment)".into(), safe),
                        safe(&e.from),
                    ]
                })
                .collect::<Vec<_>>(),
            layout,
        ));
    }
    if r.not_listed > 0 {
        s.push_str(&table::fold(
            "",
            &format!(
                "... and {} more finding(s), counted below but not listed",
                r.not_listed
            ),
            layout,
        ));
    }
    s.push_str(&table::fold("", &safe(&summary_with(r, &relative)), layout));
    s
}

/// The last line of the table, with every source's full name: `2 error(s), 1 warning(s),
/// 0 note(s) in job.sh (shell)`. `lint --quiet` writes it on standard error.
pub fn summary(r: &LintReport) -> String {
    summary_with(r, &|p: &str| p.to_string())
}

fn summary_with(r: &LintReport, name: &dyn Fn(&str) -> String) -> String {
    let sources = if r.sources.is_empty() {
        "nothing".into()
    } else if !r.read_as.is_empty() {
        r.read_as
            .iter()
            .map(|x| format!("{} ({})", name(&x.source), x.format))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        r.sources.iter().map(|x| name(x)).collect::<Vec<_>>().join(", ")
    };
    format!(
        "{} error(s), {} warning(s), {} note(s) in {sources}",
        r.summary.error, r.summary.warn, r.summary.info,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::{self, envfile};

    fn report(files: &[(&str, &str)]) -> LintReport {
        let sets: Vec<_> = files
            .iter()
            .map(|(name, text)| envfile::parse(text, name, envfile::Syntax::Shell).expect("parses"))
            .collect();
        let mut r = lint::lint(&sets, None, None, false);
        r.sources = files.iter().map(|(n, _)| n.to_string()).collect();
        r
    }

    #[test]
    fn the_shared_folder_is_named_once_and_every_line_fits() {
        let dir = "/very/long/ci/checkout/path/that/by/itself/is/wider/than/a/terminal/of/eighty";
        let a = format!("{dir}/jobs/a.sh");
        let b = format!("{dir}/jobs/b.sh");
        let r = report(&[
            (&a, "export NCCL_ALGO=ring\nexport NCCL_DEBUG=info\n"),
            (&b, "export NCCL_IB_HCA=mlx5\nexport NCCL_SOCKET_IFNAME=eth*\n"),
        ]);
        assert!(r.findings.len() >= 3, "{:?}", r.findings);
        for unicode in [false, true] {
            let t = to_table_in(
                &r,
                Layout {
                    width: Some(80),
                    unicode,
                    color: false,
                },
            );
            for line in t.lines() {
                assert!(unicode_width::UnicodeWidthStr::width(line) <= 80, "{line}\n{t}");
            }
            // The folder is named once, above the table; cells and the summary say a.sh:1.
            assert_eq!(t.matches("checkout").count(), 1, "{t}");
            assert!(t.contains("a.sh:1") && t.contains("Fixes:"), "{t}");
            assert!(t.trim_end().ends_with("in a.sh, b.sh"), "{t}");
        }
        // The stderr summary names the files in full.
        assert!(summary(&r).ends_with(&format!("in {a}, {b}")));
    }

    #[test]
    fn escapes_in_values_are_shown_not_obeyed() {
        let r = report(&[("job.sh", "export NCCL_DEBUG=\"\u{1b}]0;owned\u{7}INFO\"\n")]);
        let t = to_table_in(
            &r,
            Layout {
                width: None,
                unicode: false,
                color: true,
            },
        );
        assert!(t.contains("\\x1b]0;owned\\x07"), "{t}");
        assert!(!t.contains("\u{1b}]"), "{t}");
    }
}
