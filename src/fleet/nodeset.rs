//! Node names and node sets: Slurm/ClusterShell syntax (`gpu[001-512,600],login1`) expanded
//! to a list, and a list folded back into that syntax for `srun -w` and `pdsh -w`.
//!
//! Names are validated here, once, because every later stage writes them into shell scripts,
//! hostfiles and YAML: a name is 1–63 characters of `A-Z a-z 0-9 . _ -`, starting with a letter
//! or digit (a DNS label, which is what Slurm and Kubernetes node names are in practice).

use anyhow::{Result, bail};

/// Upper bound on one expansion, so a typo like `n[1-999999999]` cannot exhaust memory.
pub const MAX_NODES: usize = 1_000_000;

/// Why a node name is refused, or `None` when it is acceptable.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("empty node name".into());
    }
    if name.len() > 63 {
        return Some(format!("node name of {} characters (at most 63)", name.len()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Some(format!(
            "character {:?} in node name {:?}: only letters, digits, '.', '_' and '-' are allowed",
            c,
            name.escape_debug().to_string()
        ));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Some(format!("node name {name:?} must start with a letter or digit"));
    }
    None
}

/// Checks one node name (see the module header for the rule).
pub fn validate_name(name: &str) -> Result<()> {
    match name_problem(name) {
        Some(p) => bail!("{p}"),
        None => Ok(()),
    }
}

/// Splits at commas that are not inside brackets.
fn split_top(s: &str) -> Result<Vec<&str>> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => {
                if depth > 0 {
                    bail!("nested '[' at byte {i}");
                }
                depth += 1;
            }
            ']' => {
                if depth == 0 {
                    bail!("']' without '[' at byte {i}");
                }
                depth -= 1;
            }
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        bail!("'[' is not closed");
    }
    parts.push(&s[start..]);
    Ok(parts)
}

/// One bracket's contents (`001-512,600`) as (value, width) pairs.
fn expand_range(body: &str, out_limit: usize) -> Result<Vec<String>> {
    let mut v = Vec::new();
    for item in body.split(',') {
        let item = item.trim();
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (a, b),
            None => (item, item),
        };
        let digits = |x: &str| !x.is_empty() && x.len() <= 18 && x.bytes().all(|b| b.is_ascii_digit());
        if !digits(lo) || !digits(hi) {
            bail!("range {item:?}: expected N or N-M with decimal numbers, e.g. [001-512,600]");
        }
        let width = if lo.len() > 1 && lo.starts_with('0') {
            lo.len()
        } else {
            0
        };
        let (a, b): (u64, u64) = match (lo.parse(), hi.parse()) {
            (Ok(a), Ok(b)) => (a, b),
            _ => bail!("range {item:?}: numbers too large"),
        };
        if a > b {
            bail!("range {item:?}: {a} is above {b}");
        }
        if (b - a) as usize >= out_limit.saturating_sub(v.len()) {
            bail!("node set expands to more than {MAX_NODES} names");
        }
        for n in a..=b {
            v.push(format!("{n:0width$}"));
        }
    }
    Ok(v)
}

/// Expands one top-level term (`rack[1-2]-gpu[01-04]`): the cartesian product of its brackets.
fn expand_term(term: &str, limit: usize) -> Result<Vec<String>> {
    let mut acc = vec![String::new()];
    let mut rest = term;
    while !rest.is_empty() {
        match rest.find('[') {
            None => {
                for a in &mut acc {
                    a.push_str(rest);
                }
                rest = "";
            }
            Some(i) => {
                let lit = &rest[..i];
                let close = rest[i..].find(']').map(|j| i + j);
                let Some(close) = close else {
                    bail!("'[' is not closed");
                };
                let values = expand_range(&rest[i + 1..close], limit)?;
                if acc.len().saturating_mul(values.len()) > limit {
                    bail!("node set expands to more than {MAX_NODES} names");
                }
                let mut next = Vec::with_capacity(acc.len() * values.len());
                for a in &acc {
                    for v in &values {
                        next.push(format!("{a}{lit}{v}"));
                    }
                }
                acc = next;
                rest = &rest[close + 1..];
            }
        }
    }
    Ok(acc)
}

/// Expands a node set into names, in order, without duplicates, each name validated.
/// Errors name the term at fault and show the expected syntax.
pub fn expand(set: &str) -> Result<Vec<String>> {
    let set = set.trim();
    if set.is_empty() {
        bail!("empty node set: expected names like gpu[001-512,600],login1");
    }
    let parts = split_top(set).map_err(|e| anyhow::anyhow!("node set {set:?}: {e}"))?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            bail!("node set {set:?}: empty term between commas");
        }
        let names = expand_term(p, MAX_NODES - out.len())
            .map_err(|e| anyhow::anyhow!("node set {set:?}, term {p:?}: {e}"))?;
        for n in names {
            if let Some(prob) = name_problem(&n) {
                bail!("node set {set:?}, term {p:?}: {prob}");
            }
            if seen.insert(n.clone()) {
                out.push(n);
            }
        }
    }
    Ok(out)
}

/// Reads a node list file: one node set per line; `#` starts a comment.
pub fn parse_list(text: &str, source: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let names = expand(line).map_err(|e| anyhow::anyhow!("{source}:{}: {e}", i + 1))?;
        for n in names {
            if seen.insert(n.clone()) {
                out.push(n);
            }
        }
        if out.len() > MAX_NODES {
            bail!("{source}: more than {MAX_NODES} nodes");
        }
    }
    if out.is_empty() {
        bail!("{source}: no node names (expected one node set per line, e.g. gpu[001-512])");
    }
    Ok(out)
}

/// Splits a name into (prefix, number, width) when it ends in digits.
fn split_num(name: &str) -> Option<(&str, u64, usize)> {
    let digits = name.bytes().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 18 {
        return None;
    }
    let (p, d) = name.split_at(name.len() - digits);
    let n: u64 = d.parse().ok()?;
    let width = if d.len() > 1 && d.starts_with('0') {
        d.len()
    } else {
        0
    };
    // `n10` and `n010` must not share a range: keep the written width exactly.
    let width = if width == 0 && d.len() != n.to_string().len() {
        d.len()
    } else {
        width
    };
    Some((p, n, width))
}

/// Folds names into the shortest usual node-set text (`fn[1-4,7],login1`), keeping order of
/// first appearance per prefix. `expand(&fold(x))` gives back the same set.
pub fn fold(names: &[String]) -> String {
    use std::collections::BTreeMap;
    let mut groups: Vec<((String, usize), Vec<u64>)> = Vec::new();
    let mut index: BTreeMap<(String, usize), usize> = BTreeMap::new();
    let mut plain: Vec<String> = Vec::new();
    for n in names {
        match split_num(n) {
            Some((p, v, w)) => {
                let key = (p.to_string(), w);
                let i = *index.entry(key.clone()).or_insert_with(|| {
                    groups.push((key, Vec::new()));
                    groups.len() - 1
                });
                groups[i].1.push(v);
            }
            None => plain.push(n.clone()),
        }
    }
    let mut parts = Vec::new();
    for ((prefix, width), mut nums) in groups {
        nums.sort_unstable();
        nums.dedup();
        let fmt = |v: u64| format!("{v:0width$}");
        if nums.len() == 1 {
            parts.push(format!("{prefix}{}", fmt(nums[0])));
            continue;
        }
        let mut ranges = Vec::new();
        let mut i = 0;
        while i < nums.len() {
            let mut j = i;
            while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
                j += 1;
            }
            if i == j {
                ranges.push(fmt(nums[i]));
            } else {
                ranges.push(format!("{}-{}", fmt(nums[i]), fmt(nums[j])));
            }
            i = j + 1;
        }
        parts.push(format!("{prefix}[{}]", ranges.join(",")));
    }
    parts.extend(plain);
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn expands_ranges_padding_and_lists() {
        assert_eq!(
            expand("gpu[001-003,600],login1").expect("test value"),
            s(&["gpu001", "gpu002", "gpu003", "gpu600", "login1"])
        );
        assert_eq!(
            expand("fn[8-11]").expect("test value"),
            s(&["fn8", "fn9", "fn10", "fn11"])
        );
        assert_eq!(
            expand("r[1-2]-n[01-02]").expect("test value"),
            s(&["r1-n01", "r1-n02", "r2-n01", "r2-n02"])
        );
        assert_eq!(expand("a,b,a").expect("test value"), s(&["a", "b"]));
    }

    #[test]
    fn refuses_malformed_and_hostile_sets() {
        for bad in [
            "",
            "gpu[1-",
            "gpu1-2]",
            "gpu[3-1]",
            "gpu[a-b]",
            "gpu[1-2],,x",
            "n[[1]]",
            "gpu;rm",
            "gpu$(id)",
            "a b",
            "-x",
            "n\nm",
            "n[1-99999999999]",
            "x'y",
        ] {
            assert!(expand(bad).is_err(), "{bad:?} accepted");
        }
        let e = expand("gpu[1-2],bad$x").expect_err("must fail").to_string();
        assert!(e.contains("'$'"), "{e}");
    }

    #[test]
    fn fold_round_trips() {
        for set in [
            "fn[1-64]",
            "gpu[001-003,600],login1",
            "n[1,3,5-7]",
            "a,b",
            "n[09-11]",
            "n9,n[10-11]",
        ] {
            let names = expand(set).expect("test value");
            assert_eq!(
                expand(&fold(&names)).expect("test value"),
                names,
                "{set} -> {}",
                fold(&names)
            );
        }
        assert_eq!(fold(&s(&["fn1", "fn2", "fn3", "fn7"])), "fn[1-3,7]");
        assert_eq!(fold(&s(&["n010", "n10"])).matches('[').count(), 0);
    }

    #[test]
    fn list_files_name_the_line() {
        let e = parse_list("fn[1-2]\n# c\nbad;x\n", "nodes.txt")
            .expect_err("must fail")
            .to_string();
        assert!(e.starts_with("nodes.txt:3:"), "{e}");
        assert_eq!(
            parse_list("fn[1-2] # two\nfn3\n", "f").expect("test value").len(),
            3
        );
    }

    #[test]
    fn junk_never_panics_and_every_accepted_name_is_safe() {
        let alphabet: Vec<char> = "ab09[]-,;$ \n'\"`\u{0}é".chars().collect();
        let mut rng = crate::fleet::rng::Rng::new(42);
        for _ in 0..5000 {
            let len = rng.below(12);
            let s: String = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
            if let Ok(names) = expand(&s) {
                assert!(
                    names.iter().all(|n| name_problem(n).is_none()),
                    "{s:?} -> {names:?}"
                );
            }
        }
    }
}
