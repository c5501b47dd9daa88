//! `nvidia-smi --query-gpu=... --format=csv`: parsed by its header, so any subset and order of
//! fields works. Header names may carry a unit (`memory.total [MiB]`); values that the driver
//! cannot give (`[N/A]`, `[Not Supported]`, `[Requested functionality has been deprecated]`)
//! become `None`.

use anyhow::{Result, bail};
use serde::Serialize;
use std::collections::BTreeMap;

/// One GPU row: field name (unit stripped) → value, `None` where the driver had none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuRow {
    pub fields: BTreeMap<String, Option<String>>,
}

impl GpuRow {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(|v| v.as_deref())
    }
}

fn is_missing(value: &str) -> bool {
    let v = value.trim();
    v.is_empty() || v == "N/A" || (v.starts_with('[') && v.ends_with(']'))
}

/// Parses the CSV. Empty input gives no rows; a first line that is not a field header, or a row
/// with a different number of fields than the header, is an error naming the line.
pub fn parse(text: &str) -> Result<Vec<GpuRow>> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = header
        .split(',')
        .map(|h| {
            let h = h.trim();
            h.split_once(" [").map_or(h, |(name, _)| name).trim().to_string()
        })
        .collect();
    let looks_like_header = names
        .iter()
        .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "._".contains(c)));
    if !looks_like_header {
        bail!(
            "line 1: expected the CSV header of `nvidia-smi --query-gpu=... --format=csv`, found {:?}",
            truncate(header)
        );
    }
    let mut rows = Vec::new();
    for (i, line) in lines {
        let values: Vec<&str> = line.split(',').collect();
        if values.len() != names.len() {
            bail!(
                "line {}: {} fields where the header has {} (a value with a comma, or a cut line)",
                i + 1,
                values.len(),
                names.len()
            );
        }
        let fields = names
            .iter()
            .zip(values)
            .map(|(n, v)| (n.clone(), (!is_missing(v)).then(|| v.trim().to_string())))
            .collect();
        rows.push(GpuRow { fields });
    }
    Ok(rows)
}

pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_GPUS: &str = "index, name, pci.bus_id, memory.total [MiB], mig.mode.current\n\
0, NVIDIA H100 80GB HBM3, 00000000:18:00.0, 81559 MiB, [N/A]\n\
1, NVIDIA H100 80GB HBM3, 00000000:2A:00.0, 81559 MiB, Disabled";

    #[test]
    fn fields_are_found_by_header_with_units_stripped() {
        let rows = parse(TWO_GPUS).expect("parse");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].get("pci.bus_id"), Some("00000000:2A:00.0"));
        assert_eq!(rows[0].get("memory.total"), Some("81559 MiB"));
        assert_eq!(rows[0].get("mig.mode.current"), None);
        assert_eq!(rows[1].get("mig.mode.current"), Some("Disabled"));
    }

    #[test]
    fn empty_output_is_no_gpus_and_junk_is_an_error() {
        assert!(parse("").expect("empty").is_empty());
        let err = parse("No devices were found\n").expect_err("junk");
        assert!(err.to_string().contains("line 1"));
        let err = parse("index, name\n0, a, b\n").expect_err("ragged");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
