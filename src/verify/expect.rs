//! Expectations: what a known-good node looks like (GPU count, RDMA ports with rate and link
//! layer, versions), as TOML. `from_node` writes one from the node verify runs on, so a fleet
//! can be checked against a golden node.

use crate::node::NodeReport;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Number of GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Versions::is_empty")]
    pub versions: Versions,
    /// RDMA ports that must be present.
    #[serde(default, rename = "port", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortExpectation>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Versions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ofed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nccl: Option<String>,
}

impl Versions {
    fn is_empty(&self) -> bool {
        self.driver.is_none() && self.ofed.is_none() && self.nccl.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortExpectation {
    /// RDMA device, e.g. `mlx5_0`.
    pub device: String,
    /// Port number (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_gbps: Option<f64>,
    /// `InfiniBand` or `Ethernet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_layer: Option<String>,
}

/// Parses expectations; `source` names the file in errors.
pub fn parse(text: &str, source: &str) -> Result<Expectations> {
    let e: Expectations = toml::from_str(text).map_err(|err| {
        anyhow::anyhow!(
            "{source}: {}\nexpected keys: gpus, [versions] driver/ofed/nccl, [[port]] device/port/rate_gbps/link_layer \
             (write a template with `nccltune verify --write-expect FILE` on a good node)",
            err.to_string().trim_end()
        )
    })?;
    for (i, p) in e.ports.iter().enumerate() {
        if let Some(ll) = &p.link_layer
            && ll != "InfiniBand"
            && ll != "Ethernet"
        {
            anyhow::bail!(
                "{source}: port #{} ({}): link_layer {ll:?}: expected \"InfiniBand\" or \"Ethernet\"",
                i + 1,
                p.device
            );
        }
        if p.rate_gbps.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            anyhow::bail!(
                "{source}: port #{} ({}): rate_gbps must be a positive number of Gb/s, e.g. 400",
                i + 1,
                p.device
            );
        }
    }
    Ok(e)
}

pub fn load(path: &Path) -> Result<Expectations> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read --expect {}", path.display()))?;
    parse(&text, &path.display().to_string())
}

/// Expectations that the given node meets: its GPU count, its active RDMA ports, its versions.
pub fn from_node(node: &NodeReport) -> Expectations {
    Expectations {
        gpus: Some(node.gpus.len() as u32),
        versions: Versions {
            driver: node.versions.driver.clone(),
            ofed: node.versions.ofed.clone(),
            nccl: node.versions.nccl.clone(),
        },
        ports: node
            .active_nics()
            .map(|n| PortExpectation {
                device: n.device.clone(),
                port: Some(n.port),
                rate_gbps: n.rate_gbps,
                link_layer: n.link_layer.clone(),
            })
            .collect(),
    }
}

pub fn to_toml(e: &Expectations) -> Result<String> {
    let body = toml::to_string(e).context("serialising expectations")?;
    Ok(format!(
        "# nccltune verify expectations, written from a known-good node.\n# Check other nodes with: nccltune verify --expect THIS_FILE\n\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_parses_back() {
        let e = Expectations {
            gpus: Some(8),
            versions: Versions {
                driver: Some("550.90.07".into()),
                ofed: None,
                nccl: Some("2.21.5".into()),
            },
            ports: vec![PortExpectation {
                device: "mlx5_0".into(),
                port: Some(1),
                rate_gbps: Some(400.0),
                link_layer: Some("InfiniBand".into()),
            }],
        };
        let text = to_toml(&e).expect("toml");
        assert_eq!(parse(&text, "x.toml").expect("parse"), e);
    }

    #[test]
    fn typos_and_bad_values_name_the_file_and_field() {
        let err = parse("gpu = 8\n", "golden.toml").expect_err("typo");
        let msg = format!("{err:#}");
        assert!(msg.contains("golden.toml") && msg.contains("gpu"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
        let err =
            parse("[[port]]\ndevice = \"mlx5_0\"\nlink_layer = \"IB\"\n", "g.toml").expect_err("bad ll");
        assert!(format!("{err:#}").contains("link_layer"));
        assert!(parse("[[port]]\ndevice = \"mlx5_0\"\nrate_gbps = -4\n", "g.toml").is_err());
    }
}
