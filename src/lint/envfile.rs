//! Reading NCCL settings out of the files people keep them in: shell env files (`export A=b`,
//! quoted or not, several per line), job scripts with `mpirun -x A=b` / `-x A`, dotenv files,
//! and NCCL's own config files (`/etc/nccl.conf`, `~/.nccl.conf`), which NCCL reads verbatim:
//! split at the first `=`, no trimming, no quoting (NCCL 2.30.7 src/misc/param.cc:27-50).

use anyhow::{Result, bail};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Syntax {
    /// Shell, dotenv, job scripts: quotes are removed as a shell would.
    Shell,
    /// NCCL config file: the value is everything after the first `=`.
    NcclConf,
    /// The process environment.
    Environment,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    pub name: String,
    /// `None` for `mpirun -x NAME` (the value comes from the launching environment).
    pub value: Option<String>,
    /// File name, or `environment`.
    pub source: String,
    /// 1-based line; 0 for the environment.
    pub line: usize,
    pub syntax: Syntax,
}

impl Assignment {
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.source.clone()
        } else {
            format!("{}:{}", self.source, self.line)
        }
    }
}

/// The syntax a file is read with, from its name.
pub fn syntax_for(path: &str) -> Syntax {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.ends_with("nccl.conf") || name.ends_with(".nccl.conf") {
        Syntax::NcclConf
    } else {
        Syntax::Shell
    }
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Splits a line into shell words: quotes and backslashes handled, `#` at a word start ends
/// the line. Unbalanced quotes are an error.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unclosed single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err("unclosed double quote".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unclosed double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Parses one file. Binary content is an error naming the file.
pub fn parse(text: &str, source: &str, syntax: Syntax) -> Result<Vec<Assignment>> {
    if text.contains('\0') {
        bail!("{source}: binary data (NUL bytes): not an env file, job script or nccl.conf");
    }
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        if syntax == Syntax::NcclConf {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            out.push(Assignment {
                name: name.to_string(),
                value: Some(value.to_string()),
                source: source.into(),
                line: line_no,
                syntax,
            });
            continue;
        }
        let w = match words(raw) {
            Ok(w) => w,
            Err(e) => bail!("{source}:{line_no}: {e}: fix the quoting on this line"),
        };
        let mut it = w.iter().peekable();
        while let Some(word) = it.next() {
            let (is_x, target) = if word == "-x" || word == "--x" {
                match it.next() {
                    Some(t) => (true, t.as_str()),
                    None => break,
                }
            } else {
                (false, word.as_str())
            };
            match target.split_once('=') {
                Some((name, value)) if is_name(name) => out.push(Assignment {
                    name: name.to_string(),
                    value: Some(value.to_string()),
                    source: source.into(),
                    line: line_no,
                    syntax,
                }),
                None if is_x && is_name(target) => out.push(Assignment {
                    name: target.to_string(),
                    value: None,
                    source: source.into(),
                    line: line_no,
                    syntax,
                }),
                _ => {}
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(text: &str, syntax: Syntax) -> Vec<(String, Option<String>, usize)> {
        parse(text, "f", syntax)
            .expect("parse")
            .into_iter()
            .map(|a| (a.name, a.value, a.line))
            .collect()
    }

    #[test]
    fn shell_forms() {
        let text = "# comment\nexport NCCL_IB_HCA='=mlx5_0:1'\nNCCL_DEBUG=\"INFO\" # trailing\nexport A=1 B=2\n\
mpirun -np 16 -x NCCL_ALGO=Ring -x NCCL_SOCKET_IFNAME ./app\n";
        let v = vals(text, Syntax::Shell);
        assert_eq!(v[0], ("NCCL_IB_HCA".into(), Some("=mlx5_0:1".into()), 2));
        assert_eq!(v[1], ("NCCL_DEBUG".into(), Some("INFO".into()), 3));
        assert_eq!(v.len(), 6);
        assert_eq!(v[4], ("NCCL_ALGO".into(), Some("Ring".into()), 5));
        assert_eq!(v[5], ("NCCL_SOCKET_IFNAME".into(), None, 5));
    }

    #[test]
    fn nccl_conf_is_verbatim() {
        let v = vals(
            "# c\nNCCL_IB_HCA=\"=mlx5_0\"\nNCCL_DEBUG=INFO \nno equals\n",
            Syntax::NcclConf,
        );
        assert_eq!(v[0].1.as_deref(), Some("\"=mlx5_0\""));
        assert_eq!(v[1].1.as_deref(), Some("INFO "));
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn bad_quoting_and_binary_name_the_line() {
        let err = parse("A=1\nexport B='open\n", "job.sh", Syntax::Shell).expect_err("quote");
        assert!(err.to_string().contains("job.sh:2"));
        assert!(parse("\0\0", "x.bin", Syntax::Shell).is_err());
    }
}
