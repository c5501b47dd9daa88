//! `lsmod`, with or without its `Module Size Used by` header, and `grep` subsets of it,
//! including lines prefixed with a line number by a report tool (`   160: nvidia_uvm ...`).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Module {
    pub name: String,
    pub size: u64,
    pub used_by_count: u64,
    pub used_by: Vec<String>,
}

pub fn parse(text: &str) -> Vec<Module> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Module> {
    let mut toks: Vec<&str> = line.split_whitespace().collect();
    // A `NNN:` line-number prefix.
    if toks
        .first()
        .is_some_and(|t| t.ends_with(':') && t[..t.len() - 1].chars().all(|c| c.is_ascii_digit()))
    {
        toks.remove(0);
    }
    let name = *toks.first()?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return None;
    }
    let size = toks.get(1)?.parse().ok()?;
    let used_by_count = toks.get(2)?.parse().ok()?;
    let used_by = toks
        .get(3)
        .map(|l| {
            l.split(',')
                .filter(|s| !s.is_empty() && *s != "[permanent]")
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Some(Module {
        name: name.to_string(),
        size,
        used_by_count,
        used_by,
    })
}

/// Whether a module of this name is loaded (`-` and `_` are the same to the kernel).
pub fn has(modules: &[Module], name: &str) -> bool {
    let norm = |s: &str| s.replace('-', "_");
    modules.iter().any(|m| norm(&m.name) == norm(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_grep_subsets_and_numbered_lines() {
        let text = "Module                  Size  Used by\nnvidia_peermem         16384  0\n\
   163: nvidia              18214912  584 nvidia_uvm,nvidia_modeset\nmlx5_ib 405504 0\n";
        let m = parse(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].name, "nvidia");
        assert_eq!(m[1].used_by, ["nvidia_uvm", "nvidia_modeset"]);
        assert!(has(&m, "nvidia-peermem"));
        assert!(!has(&m, "nv_peer_mem"));
        assert!(parse("").is_empty());
    }
}
