//! Topology input for group screening: which leaf switch (or rack, or NVLink domain) each node
//! hangs off, from Slurm's `topology.conf` (`SwitchName=leaf1 Nodes=gpu[001-032]`; switches
//! listing `Switches=` are upper levels and ignored) or a CSV of `node,group` (a header line
//! and further columns are allowed; the second column is the group). Screening groups then stay
//! inside one leaf, so a group that fails while its halves pass points at that leaf.

use super::nodeset;
use anyhow::{Result, bail};
use std::collections::BTreeMap;

pub type Topology = BTreeMap<String, String>;

/// Parses `topology.conf` or CSV (chosen by content). Errors name the file and line.
pub fn parse(text: &str, source: &str) -> Result<Topology> {
    let mut map = Topology::new();
    let is_slurm = text
        .lines()
        .any(|l| l.trim_start().to_ascii_lowercase().starts_with("switchname="));
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("{source}:{}", i + 1);
        if is_slurm {
            let mut name = None;
            let mut nodes = None;
            for kv in line.split_whitespace() {
                let Some((k, v)) = kv.split_once('=') else {
                    bail!(
                        "{}: {kv:?}: expected Key=Value (SwitchName=, Nodes=, Switches=)",
                        at()
                    );
                };
                match k.to_ascii_lowercase().as_str() {
                    "switchname" => name = Some(v.to_string()),
                    "nodes" => nodes = Some(v.to_string()),
                    _ => {}
                }
            }
            let Some(name) = name else {
                bail!("{}: no SwitchName=", at());
            };
            if let Some(set) = nodes {
                for n in nodeset::expand(&set).map_err(|e| anyhow::anyhow!("{}: {e}", at()))? {
                    map.insert(n, name.clone());
                }
            }
        } else {
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            if cols.len() < 2 {
                bail!("{}: expected node,group (e.g. gpu001,leaf1)", at());
            }
            if i == 0 && nodeset::name_problem(cols[0]).is_some() || cols[0].eq_ignore_ascii_case("node") {
                continue; // header
            }
            nodeset::validate_name(cols[0]).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
            if cols[1].is_empty() {
                bail!("{}: empty group for {}", at(), cols[0]);
            }
            map.insert(cols[0].to_string(), cols[1].to_string());
        }
    }
    if map.is_empty() {
        bail!("{source}: no nodes (expected topology.conf SwitchName=… Nodes=… lines, or node,group CSV)");
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_slurm_topology_and_csv() {
        let t = parse(
            "SwitchName=s1 Nodes=gpu[1-2]\nSwitchName=s2 Nodes=gpu3\nSwitchName=spine Switches=s[1-2]\n",
            "topology.conf",
        )
        .expect("topology");
        assert_eq!(t["gpu1"], "s1");
        assert_eq!(t["gpu3"], "s2");
        let t = parse("node,rack\ngpu1,r1\ngpu2,r2\n", "t.csv").expect("csv");
        assert_eq!(t.len(), 2);
        let e = parse("gpu1,r1\nbad;x,r2\n", "t.csv")
            .expect_err("bad name")
            .to_string();
        assert!(e.starts_with("t.csv:2:"), "{e}");
        assert!(parse("SwitchName=s1 Nodes=gpu[1-\n", "x").is_err());
    }
}
