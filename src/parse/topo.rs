//! `nvidia-smi topo -m`: the connection matrix between GPUs and NICs, the CPU/NUMA affinity
//! columns and the `NIC Legend`. Handles space- and tab-separated layouts, ANSI escapes in the
//! header, NIC columns named `NICn` (resolved through the legend) or `mlx5_n` (older drivers),
//! empty or `N/A` affinity cells, NIC rows shorter than GPU rows, excerpts, and the
//! `N NICs found in the topology, only displaying M` banner.

use anyhow::{Result, bail};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Topology {
    /// Device column labels in order (`GPU0`, ..., `NIC0` or `mlx5_0`, ...).
    pub columns: Vec<String>,
    pub rows: Vec<TopoRow>,
    /// `NIC0` → `mlx5_0`.
    pub nic_legend: BTreeMap<String, String>,
    /// From the banner: (NICs found, NICs displayed).
    pub nics_found: Option<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopoRow {
    pub label: String,
    /// One cell per column (`X`, `NV18`, `PIX`, ...); `None` where the row is shorter or empty.
    pub cells: Vec<Option<String>>,
    pub cpu_affinity: Option<String>,
    pub numa_affinity: Option<String>,
    pub gpu_numa_id: Option<String>,
}

/// How two devices are connected, closest first. `nvidia-smi topo -m` legend terms.
/// Serialised as the matrix cell (`NV18`, `PIX`, ...), so the JSON contract keeps its values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Path {
    /// A bonded set of N NVLinks.
    NvLink(u32),
    Pix,
    Pxb,
    Phb,
    Node,
    Sys,
    /// A term we do not rank (e.g. a newer driver's), kept verbatim.
    Other(String),
}

impl Path {
    pub fn parse(cell: &str) -> Option<Path> {
        let c = cell.trim();
        Some(match c {
            "" | "X" | "N/A" => return None,
            "PIX" => Path::Pix,
            "PXB" => Path::Pxb,
            "PHB" => Path::Phb,
            "NODE" => Path::Node,
            "SYS" => Path::Sys,
            _ => match c.strip_prefix("NV").and_then(|n| n.parse().ok()) {
                Some(n) => Path::NvLink(n),
                None => Path::Other(c.to_string()),
            },
        })
    }

    /// A path read back from its label (a JSON report, an expectations file).
    pub fn from_label(label: &str) -> Path {
        Path::parse(label).unwrap_or_else(|| Path::Other(label.trim().to_string()))
    }

    pub fn label(&self) -> String {
        match self {
            Path::NvLink(n) => format!("NV{n}"),
            Path::Pix => "PIX".into(),
            Path::Pxb => "PXB".into(),
            Path::Phb => "PHB".into(),
            Path::Node => "NODE".into(),
            Path::Sys => "SYS".into(),
            Path::Other(s) => s.clone(),
        }
    }
}

impl Default for Path {
    fn default() -> Path {
        Path::Other(String::new())
    }
}

impl From<&str> for Path {
    fn from(label: &str) -> Path {
        Path::from_label(label)
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

impl Serialize for Path {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

impl<'de> serde::Deserialize<'de> for Path {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Path, D::Error> {
        Ok(Path::from_label(&String::deserialize(d)?))
    }
}

fn is_device_label(tok: &str) -> bool {
    let tok = tok.trim();
    let numbered = |prefix: &str| {
        tok.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    if numbered("GPU") || numbered("NIC") {
        return true;
    }
    // Older drivers name NIC columns after the RDMA device: mlx5_0, mlx5_bond_0, hfi1_0.
    let mut chars = tok.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && tok.contains('_')
        && tok.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn fields(line: &str, tabbed: bool) -> Vec<String> {
    if tabbed {
        line.split('\t').map(|f| f.trim().to_string()).collect()
    } else {
        line.split_whitespace().map(str::to_string).collect()
    }
}

fn non_empty(s: Option<&String>) -> Option<String> {
    s.filter(|v| !v.is_empty() && v.as_str() != "N/A").cloned()
}

/// Parses the output. Empty input gives an empty topology; non-empty input without a matrix
/// header is an error.
pub fn parse(text: &str) -> Result<Topology> {
    let text = super::strip_ansi(text);
    let mut topo = Topology::default();
    let mut tabbed = false;
    let mut in_legend = false;
    let mut has_gpu_numa_id = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some((found, shown)) = banner(trimmed) {
            topo.nics_found = Some((found, shown));
            continue;
        }
        if trimmed.starts_with("Legend:") || trimmed.starts_with("NIC Legend:") {
            in_legend = true;
            continue;
        }
        if in_legend {
            if let Some((k, v)) = trimmed.split_once(':')
                && k.starts_with("NIC")
                && is_device_label(k)
            {
                topo.nic_legend.insert(k.to_string(), v.trim().to_string());
            }
            continue;
        }
        let toks: Vec<&str> = trimmed.split_whitespace().collect();
        if topo.columns.is_empty() {
            let second_ok = toks
                .get(1)
                .is_none_or(|t| is_device_label(t) || *t == "CPU" || *t == "NUMA");
            if toks.first().is_some_and(|t| is_device_label(t)) && second_ok {
                tabbed = line.contains('\t');
                let fs = fields(line, tabbed);
                topo.columns = fs
                    .iter()
                    .skip_while(|f| f.is_empty())
                    .take_while(|f| is_device_label(f))
                    .cloned()
                    .collect();
                has_gpu_numa_id = trimmed.contains("GPU NUMA ID");
            }
            continue;
        }
        let Some(label) = toks.first().filter(|t| is_device_label(t)) else {
            continue;
        };
        let fs = fields(line, tabbed);
        let start = fs.iter().position(|f| f == label).unwrap_or(0) + 1;
        let n = topo.columns.len();
        let cells: Vec<Option<String>> = (0..n)
            .map(|i| fs.get(start + i).filter(|c| !c.is_empty()).cloned())
            .collect();
        let extra: Vec<String> = fs.iter().skip(start + n).cloned().collect();
        topo.rows.push(TopoRow {
            label: label.to_string(),
            cells,
            cpu_affinity: non_empty(extra.first()),
            numa_affinity: non_empty(extra.get(1)),
            gpu_numa_id: if has_gpu_numa_id {
                non_empty(extra.last().filter(|_| extra.len() >= 3))
            } else {
                None
            },
        });
    }
    if topo.columns.is_empty() && !text.trim().is_empty() {
        bail!(
            "no matrix header (a line such as `GPU0 GPU1 ... CPU Affinity`) found: is this `nvidia-smi topo -m` output?"
        );
    }
    Ok(topo)
}

fn banner(line: &str) -> Option<(u32, u32)> {
    // "76 NICs found in the topology, only displaying 56 in the matrix."
    let (found, rest) = line.split_once(" NICs found in the topology")?;
    let shown = rest.split("only displaying ").nth(1)?.split_whitespace().next()?;
    Some((found.trim().parse().ok()?, shown.parse().ok()?))
}

impl Topology {
    /// GPU indices, from the columns and the rows.
    pub fn gpu_indices(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .columns
            .iter()
            .chain(self.rows.iter().map(|r| &r.label))
            .filter_map(|l| l.strip_prefix("GPU").and_then(|n| n.parse().ok()))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// NIC column labels (everything that is not a GPU).
    pub fn nic_columns(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|c| !c.starts_with("GPU"))
            .map(String::as_str)
            .collect()
    }

    /// A NIC label resolved through the legend (`NIC0` → `mlx5_0`).
    pub fn nic_name<'a>(&'a self, label: &'a str) -> &'a str {
        self.nic_legend.get(label).map_or(label, String::as_str)
    }

    pub fn row(&self, label: &str) -> Option<&TopoRow> {
        self.rows.iter().find(|r| r.label == label)
    }

    /// The cell at row `from`, column `to`, falling back to the transposed cell (NIC rows may be
    /// missing in excerpts).
    pub fn path(&self, from: &str, to: &str) -> Option<Path> {
        let lookup = |r: &str, c: &str| {
            let col = self.columns.iter().position(|x| x == c)?;
            self.row(r)?.cells.get(col)?.as_deref().and_then(Path::parse)
        };
        lookup(from, to).or_else(|| lookup(to, from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPACED: &str = "        GPU0    GPU1    NIC0    CPU Affinity    NUMA Affinity
GPU0     X      NV4     PXB     0-15            0
GPU1    NV4      X      SYS     16-31           1
NIC0    PXB     SYS      X

Legend:

  X    = Self
  NV#  = Connection traversing a bonded set of # NVLinks

NIC Legend:

  NIC0: mlx5_2
";

    #[test]
    fn a_spaced_matrix_with_legend() {
        let t = parse(SPACED).expect("parse");
        assert_eq!(t.columns, ["GPU0", "GPU1", "NIC0"]);
        assert_eq!(t.gpu_indices(), [0, 1]);
        assert_eq!(t.path("GPU0", "GPU1"), Some(Path::NvLink(4)));
        assert_eq!(t.path("GPU1", "NIC0"), Some(Path::Sys));
        assert_eq!(t.nic_name("NIC0"), "mlx5_2");
        assert_eq!(t.rows[1].cpu_affinity.as_deref(), Some("16-31"));
        assert_eq!(t.rows[2].cpu_affinity, None);
    }

    #[test]
    fn tabs_ansi_and_empty_affinity_cells() {
        let text = "\t\u{1b}[4mGPU0\tmlx5_0\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\u{1b}[0m\n\
GPU0\t X \tPIX\t\t\t\tN/A\nmlx5_0\tPIX\t X \n";
        let t = parse(text).expect("parse");
        assert_eq!(t.columns, ["GPU0", "mlx5_0"]);
        assert_eq!(t.path("GPU0", "mlx5_0"), Some(Path::Pix));
        assert_eq!(t.nic_name("mlx5_0"), "mlx5_0");
        assert_eq!(t.rows[0].cpu_affinity, None);
    }

    #[test]
    fn the_truncation_banner_is_read() {
        let t =
            parse("76 NICs found in the topology, only displaying 56 in the matrix.\n\tGPU0\nGPU0\t X \n")
                .expect("parse");
        assert_eq!(t.nics_found, Some((76, 56)));
    }

    #[test]
    fn junk_is_an_error_and_empty_is_empty() {
        assert!(parse("NVML: Unknown Error\n").is_err());
        assert_eq!(parse("").expect("empty"), Topology::default());
    }
}
