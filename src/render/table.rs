//! Plain tables that fit the terminal: every renderer's human output goes through here.
//!
//! Width: `$COLUMNS` when set to a number, else the width of the terminal the stream is, else
//! that of the terminal the other stream (standard error for a table on standard output) is
//! (`nccltune verify | less` still fits the screen), else no limit (a script's file or pipe
//! gets whole cells; machine formats never come here).
//! When the natural widths do not fit, the widest columns give up space first, and cells wrap
//! at spaces (a word longer than its column is cut with a `…`/`~` mark, never spilled past the
//! border), so no line is wider than the limit. Borders are box-drawing characters only when
//! the locale says UTF-8 (`LC_ALL`, then `LC_CTYPE`, then `LANG`, as POSIX orders them);
//! otherwise ASCII, which every terminal and log viewer shows. With colour on, a cell that is
//! exactly a status word is coloured (red for a failure, yellow for a warning, green for a
//! pass), after the widths are measured, so colour never changes the layout.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// How tables are drawn: the width limit and the border characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Maximum line width in terminal columns; `None` = no limit.
    pub width: Option<usize>,
    pub unicode: bool,
    /// Colour status words (`pass`, `FAIL`, `warn`, ...): anstream's choice for the stream,
    /// which honours `--color`, `NO_COLOR` and `CLICOLOR_FORCE`.
    pub color: bool,
}

/// The narrowest a table may be asked to be; below this a column cannot show a word.
const MIN_WIDTH: usize = 20;

/// The stream a table is written to: its terminal's width is the one that counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Layout {
    /// From the environment and standard output (see the module comment).
    pub fn from_env() -> Layout {
        Layout::for_stream(Stream::Stdout)
    }

    /// From the environment and `stream`.
    pub fn for_stream(stream: Stream) -> Layout {
        let get = |k: &str| std::env::var(k).ok();
        let width = get("COLUMNS")
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|w| *w > 0)
            .or_else(|| {
                // The stream's own terminal; else, piped (`| less`, `| tail`) or redirected
                // while the other stream is still the user's terminal, that terminal's width.
                let out = || terminal_size::terminal_size_of(std::io::stdout());
                let err = || terminal_size::terminal_size_of(std::io::stderr());
                match stream {
                    Stream::Stdout => out().or_else(err),
                    Stream::Stderr => err().or_else(out),
                }
                .map(|(w, _)| usize::from(w.0))
            });
        let color = match stream {
            Stream::Stdout => anstream::AutoStream::choice(&std::io::stdout()),
            Stream::Stderr => anstream::AutoStream::choice(&std::io::stderr()),
        } != anstream::ColorChoice::Never;
        Layout {
            width,
            unicode: locale_is_utf8(get("LC_ALL"), get("LC_CTYPE"), get("LANG")),
            color,
        }
    }
}

/// POSIX precedence: the first of `LC_ALL`, `LC_CTYPE`, `LANG` that is set and not empty
/// decides; none set is the C locale, which is not UTF-8.
pub fn locale_is_utf8(lc_all: Option<String>, lc_ctype: Option<String>, lang: Option<String>) -> bool {
    [lc_all, lc_ctype, lang]
        .into_iter()
        .flatten()
        .find(|v| !v.is_empty())
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        })
}

/// A table in the layout of the environment; empty when there are no rows. Same signature as
/// `render::table`, so a renderer converts by calling this one instead.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    render(headers, &rows, Layout::from_env())
}

/// Like `table`, for text written to standard error (notes, `--explain`).
pub fn table_stderr(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    render(headers, &rows, Layout::for_stream(Stream::Stderr))
}

/// `prefix` then `text`, folded to the layout's width: continuation lines are indented by the
/// prefix's width, and long words break as table cells do. One line when there is no limit.
pub fn fold(prefix: &str, text: &str, layout: Layout) -> String {
    let indent = width(prefix);
    let text = clean(text);
    let lines = match layout.width {
        Some(w) => wrap(
            &text,
            w.max(MIN_WIDTH).saturating_sub(indent).max(1),
            layout.unicode,
        ),
        None => vec![text],
    };
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i == 0 {
            out.push_str(prefix);
        } else {
            out.extend(std::iter::repeat_n(' ', indent));
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// Shortens repeated paths: when every non-empty cell of column `col` starts with the same
/// directory (`/a/b/` in `/a/b/x.txt`, `/a/b/y.txt`), that prefix is cut from each cell and
/// returned, for the renderer to print once ("paths relative to /a/b"). `None`, and nothing
/// changed, when there is no common directory or only one row.
pub fn strip_common_dir(rows: &mut [Vec<String>], col: usize) -> Option<String> {
    let cells: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.get(col))
        .map(String::as_str)
        .filter(|c| !c.is_empty())
        .collect();
    if cells.len() < 2 {
        return None;
    }
    let first = cells[0];
    let mut prefix_len = first.rfind('/').map(|i| i + 1)?;
    for c in &cells[1..] {
        let common = first
            .bytes()
            .zip(c.bytes())
            .take(prefix_len)
            .take_while(|(a, b)| a == b)
            .count();
        // Back to the last `/` inside the common part, so only whole directories are cut.
        // (On bytes: two names can part in the middle of a multi-byte character.)
        prefix_len = first.as_bytes()[..common]
            .iter()
            .rposition(|b| *b == b'/')
            .map_or(0, |i| i + 1);
        if prefix_len == 0 {
            return None;
        }
    }
    // Every cell must keep a name after the cut.
    if cells.iter().any(|c| c.len() <= prefix_len) {
        return None;
    }
    let prefix = first[..prefix_len].to_string();
    for r in rows.iter_mut() {
        if let Some(c) = r.get_mut(col)
            && let Some(rest) = c.strip_prefix(&prefix)
        {
            *c = rest.to_string();
        }
    }
    Some(prefix.trim_end_matches('/').to_string())
        .filter(|p| !p.is_empty())
        .or(Some("/".into()))
}

struct Glyphs {
    h: char,
    v: char,
    corners: [[char; 3]; 3], // top, middle, bottom × left, cross, right
}

const UNICODE: Glyphs = Glyphs {
    h: '─',
    v: '│',
    corners: [['┌', '┬', '┐'], ['├', '┼', '┤'], ['└', '┴', '┘']],
};
const ASCII: Glyphs = Glyphs {
    h: '-',
    v: '|',
    corners: [['+', '+', '+'], ['+', '+', '+'], ['+', '+', '+']],
};

/// Display width of a cell line (East Asian wide characters count two).
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// Control characters cannot be shown and could move the cursor: each becomes `?`. Tabs and
/// line feeds become spaces (cells wrap by themselves).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// The table, drawn in `layout`.
pub fn render(headers: &[&str], rows: &[Vec<String>], layout: Layout) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let n = headers.len().max(rows.iter().map(Vec::len).max().unwrap_or(0));
    let cell = |r: &[String], i: usize| r.get(i).map_or(String::new(), |s| clean(s));
    let head: Vec<String> = (0..n)
        .map(|i| headers.get(i).map_or(String::new(), |h| clean(h)))
        .collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| (0..n).map(|i| cell(r, i)).collect())
        .collect();
    let natural: Vec<usize> = (0..n)
        .map(|i| {
            body.iter()
                .map(|r| width(&r[i]))
                .chain([width(&head[i])])
                .max()
                .unwrap_or(0)
                .max(1)
        })
        .collect();
    // A header wraps between its words, not inside one, when that fits.
    let floor: Vec<usize> = head
        .iter()
        .map(|h| h.split(' ').map(width).max().unwrap_or(1))
        .collect();
    let widths = match layout.width {
        Some(limit) => fit(&natural, &floor, limit.max(MIN_WIDTH).saturating_sub(3 * n + 1)),
        None => natural,
    };
    let g = if layout.unicode { &UNICODE } else { &ASCII };
    let rule = |row: usize| {
        let [l, x, r] = g.corners[row];
        let mut s = String::new();
        s.push(l);
        for (i, w) in widths.iter().enumerate() {
            if i > 0 {
                s.push(x);
            }
            s.extend(std::iter::repeat_n(g.h, w + 2));
        }
        s.push(r);
        s.push('\n');
        s
    };
    let wrapped_body: Vec<Vec<Vec<String>>> = body
        .iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(c, w)| wrap(c, *w, layout.unicode))
                .collect()
        })
        .collect();
    let multi_line = wrapped_body.iter().any(|r| r.iter().any(|c| c.len() > 1));
    let mut out = rule(0);
    let head_cells: Vec<Vec<String>> = head
        .iter()
        .zip(&widths)
        .map(|(c, w)| wrap(c, *w, layout.unicode))
        .collect();
    push_row(&mut out, &head_cells, &widths, g.v, false);
    out.push_str(&rule(1));
    for (k, r) in wrapped_body.iter().enumerate() {
        if k > 0 && multi_line {
            out.push_str(&rule(1));
        }
        push_row(&mut out, r, &widths, g.v, layout.color);
    }
    out.push_str(&rule(2));
    out
}

/// The colour of a status word, if `cell` is one.
fn status_style(cell: &str) -> Option<anstyle::Style> {
    use anstyle::AnsiColor::{Cyan, Green, Red, Yellow};
    let color = match cell.to_ascii_lowercase().as_str() {
        "pass" | "ok" => Green,
        "warn" | "warning" | "timeout" | "not-found" => Yellow,
        "fail" | "failed" | "error" | "wrong" | "regression" => Red,
        "skip" | "info" | "unjudged" => Cyan,
        _ => return None,
    };
    let style = anstyle::Style::new().fg_color(Some(color.into()));
    Some(if color == Red { style.bold() } else { style })
}

fn push_row(out: &mut String, cells: &[Vec<String>], widths: &[usize], v: char, color: bool) {
    let height = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
    for line in 0..height {
        out.push(v);
        for (c, w) in cells.iter().zip(widths) {
            let text = c.get(line).map_or("", String::as_str);
            out.push(' ');
            match status_style(text).filter(|_| color && c.len() == 1) {
                Some(st) => out.push_str(&format!("{st}{text}{st:#}")),
                None => out.push_str(text),
            }
            out.extend(std::iter::repeat_n(' ', w.saturating_sub(width(text))));
            out.push(' ');
            out.push(v);
        }
        out.push('\n');
    }
}

/// Column widths within `budget` (the line limit less borders and padding). The widest
/// columns give up space first: every column is capped at one width C, the largest that fits,
/// so short columns (a state, a count) stay whole and only long text wraps. `floor[i]` (the
/// longest word of the header, say) is kept when the floors fit at all. Every column keeps
/// at least 1.
pub fn fit(natural: &[usize], floor: &[usize], budget: usize) -> Vec<usize> {
    let total: usize = natural.iter().sum();
    if total <= budget || natural.is_empty() {
        return natural.to_vec();
    }
    let floors: Vec<usize> = natural
        .iter()
        .enumerate()
        .map(|(i, n)| floor.get(i).copied().unwrap_or(1).clamp(1, *n))
        .collect();
    let floors = if floors.iter().sum::<usize>() <= budget {
        floors
    } else {
        vec![1; natural.len()]
    };
    let at = |cap: usize| -> Vec<usize> {
        natural
            .iter()
            .zip(&floors)
            .map(|(n, f)| (*n).min(cap).max(*f))
            .collect()
    };
    // The largest cap whose widths fit (the sum grows with the cap).
    let (mut lo, mut hi) = (1, natural.iter().copied().max().unwrap_or(1));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if at(mid).iter().sum::<usize>() <= budget {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut widths = at(lo);
    // What is left first makes whole the capped columns it can, the nearest to whole first (a
    // cell one column short would wrap for nothing); then the others share it, one column
    // each, widest first.
    let mut left = budget.saturating_sub(widths.iter().sum());
    let mut near: Vec<usize> = (0..natural.len()).filter(|i| widths[*i] < natural[*i]).collect();
    near.sort_by_key(|i| natural[*i] - widths[*i]);
    for i in near {
        let short = natural[i] - widths[i];
        if short <= left {
            widths[i] = natural[i];
            left -= short;
        }
    }
    let mut order: Vec<usize> = (0..natural.len()).filter(|i| widths[*i] < natural[*i]).collect();
    order.sort_by_key(|i| std::cmp::Reverse(natural[*i]));
    for i in order {
        if left == 0 {
            break;
        }
        widths[i] += 1;
        left -= 1;
    }
    widths
}

/// `text` in lines of at most `w` columns: words wrap at spaces; a word longer than `w` breaks
/// after a `-`, `/`, `_`, `,`, `:` or `=` inside it, and only a piece still too long is cut,
/// with a mark in its last column, so that nothing crosses the border.
fn wrap(text: &str, w: usize, unicode: bool) -> Vec<String> {
    if width(text) <= w {
        return vec![text.to_string()];
    }
    let mark = if unicode { '…' } else { '~' };
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ').filter(|s| !s.is_empty()) {
        let sep = usize::from(!cur.is_empty());
        if width(&cur) + sep + width(word) <= w {
            if sep == 1 {
                cur.push(' ');
            }
            cur.push_str(word);
            continue;
        }
        if !cur.is_empty() {
            lines.push(std::mem::take(&mut cur));
        }
        for seg in word.split_inclusive(['-', '/', '_', ',', ':', '=']) {
            if width(&cur) + width(seg) <= w {
                cur.push_str(seg);
                continue;
            }
            if !cur.is_empty() {
                lines.push(std::mem::take(&mut cur));
            }
            if width(seg) <= w {
                cur.push_str(seg);
                continue;
            }
            // Cut the piece into `w` columns, marking each cut; a character wider than the
            // whole column is shown as `?`.
            let room = if w > 1 { w - 1 } else { 1 };
            for ch in seg.chars() {
                let cw = UnicodeWidthChar::width(ch).unwrap_or(0);
                let (ch, cw) = if cw > w { ('?', 1) } else { (ch, cw) };
                if width(&cur) + cw > room && !cur.is_empty() {
                    if w > 1 {
                        cur.push(mark);
                    }
                    lines.push(std::mem::take(&mut cur));
                }
                cur.push(ch);
            }
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Vec<String>> {
        vec![
            vec![
                "GPU0".into(),
                "NVIDIA H100 80GB HBM3".into(),
                "mlx5_0 (PIX), mlx5_1 (PXB), mlx5_2 (SYS), mlx5_3 (SYS)".into(),
            ],
            vec![
                "GPU1".into(),
                "x".into(),
                "averyveryveryveryveryveryverylongwordwithoutspaces_that_must_be_cut".into(),
            ],
        ]
    }

    #[test]
    fn fits_every_width_and_keeps_every_character() {
        for w in [20, 30, 40, 57, 80, 81, 120] {
            for unicode in [false, true] {
                let t = render(
                    &["GPU", "name", "closest NIC"],
                    &rows(),
                    Layout {
                        width: Some(w),
                        unicode,
                        color: false,
                    },
                );
                for line in t.lines() {
                    assert!(width(line) <= w, "{w}: {line:?} is {}", width(line));
                }
                // Nothing is lost: the letters of every cell are still there, in order.
                let letters: String = t.chars().filter(|c| c.is_alphanumeric()).collect();
                for r in rows() {
                    for c in r {
                        let want: String = c.chars().filter(|c| c.is_alphanumeric()).collect();
                        let mut it = letters.chars();
                        assert!(want.chars().all(|ch| it.any(|x| x == ch)), "{w}: lost {c}");
                    }
                }
            }
        }
    }

    #[test]
    fn long_words_break_at_punctuation_before_being_cut() {
        assert_eq!(
            wrap("nvlink-inactive-links", 16, false),
            vec!["nvlink-inactive-", "links"]
        );
        assert_eq!(wrap("abcdefgh", 4, false), vec!["abc~", "def~", "gh"]);
        assert_eq!(wrap("ab cd", 1, false), vec!["a", "b", "c", "d"]);
    }

    #[test]
    fn folded_lines_keep_their_indent() {
        let l = Layout {
            width: Some(20),
            unicode: false,
            color: false,
        };
        assert_eq!(
            fold("  k = ", "a,b,c,d,e,f,g,h,i,j,k,l", l),
            "  k = a,b,c,d,e,f,g,\n      h,i,j,k,l\n"
        );
        assert_eq!(
            fold(
                "x ",
                "y",
                Layout {
                    width: None,
                    unicode: false,
                    color: false
                }
            ),
            "x y\n"
        );
    }

    #[test]
    fn repeated_directories_are_cut_once() {
        let mut rows = vec![
            vec!["/data/runs/2026/a.txt".to_string(), "1".into()],
            vec!["/data/runs/2026/sub/b.txt".to_string(), "2".into()],
            vec![String::new(), "3".into()],
        ];
        assert_eq!(strip_common_dir(&mut rows, 0).as_deref(), Some("/data/runs/2026"));
        assert_eq!(rows[0][0], "a.txt");
        assert_eq!(rows[1][0], "sub/b.txt");
        // Only whole directories: /data/runs-x/ and /data/runs-y/ share /data.
        let mut rows = vec![
            vec!["/data/runs-x/a".to_string()],
            vec!["/data/runs-y/a".to_string()],
        ];
        assert_eq!(strip_common_dir(&mut rows, 0).as_deref(), Some("/data"));
        assert_eq!(rows[0][0], "runs-x/a");
        // Nothing in common, or one row: unchanged.
        let mut rows = vec![vec!["a/x".to_string()], vec!["b/x".to_string()]];
        assert_eq!(strip_common_dir(&mut rows, 0), None);
        assert_eq!(rows[0][0], "a/x");
        let mut rows = vec![vec!["/a/b".to_string()]];
        assert_eq!(strip_common_dir(&mut rows, 0), None);
        let mut rows = vec![vec!["/d/é".to_string()], vec!["/d/è".to_string()]];
        assert_eq!(
            strip_common_dir(&mut rows, 0).as_deref(),
            Some("/d"),
            "no cut inside a character"
        );
        let mut rows = vec![vec!["/a/b".to_string()], vec!["/a/".to_string()]];
        assert_eq!(strip_common_dir(&mut rows, 0), None, "a cell would be left empty");
    }

    #[test]
    fn unlimited_width_is_one_line_per_row() {
        let t = render(
            &["a", "b", "c"],
            &rows(),
            Layout {
                width: None,
                unicode: false,
                color: false,
            },
        );
        assert_eq!(t.lines().count(), 6);
        assert!(t.starts_with("+------+"));
        assert!(!t.contains('│'));
    }

    #[test]
    fn unicode_borders_only_in_a_utf8_locale() {
        let s = |v: &str| Some(v.to_string());
        assert!(locale_is_utf8(None, None, s("en_US.UTF-8")));
        assert!(!locale_is_utf8(s("C"), None, s("en_US.UTF-8")), "LC_ALL wins");
        assert!(locale_is_utf8(s(""), s("C.utf8"), s("C")), "empty is unset");
        assert!(!locale_is_utf8(None, None, None));
        let t = render(
            &["a"],
            &[vec!["1".into()]],
            Layout {
                width: None,
                unicode: true,
                color: false,
            },
        );
        assert!(t.starts_with('┌'));
    }

    #[test]
    fn status_words_are_coloured_only_with_colour_on() {
        let rows = vec![
            vec!["FAIL".into(), "fail over".into()],
            vec!["pass".into(), "x".into()],
        ];
        let on = render(
            &["status", "what"],
            &rows,
            Layout {
                width: Some(40),
                unicode: false,
                color: true,
            },
        );
        assert!(
            on.contains("\u{1b}[1m\u{1b}[31mFAIL\u{1b}[0m") || on.contains("\u{1b}[31m"),
            "{on:?}"
        );
        assert!(!on.contains("\u{1b}[31mfail over"), "only whole status cells");
        let off = render(
            &["status", "what"],
            &rows,
            Layout {
                width: Some(40),
                unicode: false,
                color: false,
            },
        );
        assert!(!off.contains('\u{1b}'));
        // Colour does not move a border.
        let strip = |s: &str| {
            regex::Regex::new("\u{1b}\\[[0-9;]*m")
                .expect("re")
                .replace_all(s, "")
                .into_owned()
        };
        assert_eq!(strip(&on), off);
    }

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        let t = render(
            &["a"],
            &[vec!["x\u{1b}[31mred\u{7}".into()]],
            Layout {
                width: None,
                unicode: false,
                color: false,
            },
        );
        assert!(!t.contains('\u{1b}') && !t.contains('\u{7}'));
        assert!(t.contains("x?[31mred?"));
    }

    #[test]
    fn fit_caps_the_widest_columns_first() {
        assert_eq!(fit(&[4, 10, 50], &[], 100), vec![4, 10, 50]);
        // The widest column gives up space first; short ones stay whole.
        assert_eq!(fit(&[4, 10, 50], &[], 40), vec![4, 10, 26]);
        assert_eq!(fit(&[4, 30, 50], &[], 40), vec![4, 18, 18]);
        // Floors hold while they fit.
        assert_eq!(fit(&[8, 30, 50], &[7, 1, 1], 20), vec![8, 6, 6]);
        // What is left makes a column one short whole rather than widen a long one.
        assert_eq!(fit(&[5, 14, 40], &[], 50), vec![5, 14, 31]);
        assert_eq!(fit(&[5, 12, 14, 40], &[], 40), vec![5, 12, 11, 12]);
        assert_eq!(fit(&[30, 30], &[20, 20], 3).iter().sum::<usize>(), 3);
    }
}
