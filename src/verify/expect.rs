//! Expectations (`--expect FILE`): what a known-good node of this kind looks like, so a fleet
//! can be judged against it. TOML; `--write-expect FILE` writes one from the node it runs on.
//! Every field is optional: a check without an expectation compares the node with itself.

use crate::node::NodeReport;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<GpuExpect>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortExpect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<VersionExpect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Thresholds>,
    /// Evidence groups that must be seen (`gpu`, `nvlink`, `rdma`, `gpudirect`, `pcie`,
    /// `software`): a skipped check in one of them fails. Written as `[require] groups = [...]`
    /// or the top-level `require = [...]`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "require_list"
    )]
    pub require: Vec<String>,
}

/// `require = ["gpu"]` or `[require]\ngroups = ["gpu"]`.
fn require_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum R {
        List(Vec<String>),
        Table { groups: Vec<String> },
    }
    Ok(match R::deserialize(d)? {
        R::List(v) | R::Table { groups: v } => v,
    })
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuExpect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Active NVLinks per GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink_links: Option<u32>,
    /// Per-link NVLink speed, GB/s, as `nvidia-smi nvlink --status` prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink_gbps: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortExpect {
    /// `mlx5_0:1`.
    pub port: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_gbps: Option<f64>,
    /// `InfiniBand` or `Ethernet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_layer: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionExpect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ofed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ofed_min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nccl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nccl_min: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Farthest acceptable GPU-to-nearest-NIC path (`PIX`, `PXB`, `PHB`, `NODE`, `SYS`);
    /// default `PXB`, NCCL's default GDR level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gpu_nic_path: Option<String>,
}

/// Rank of a GPU-NIC path label, nearest first; `None` for labels that are not PCIe paths.
pub fn path_rank(label: &str) -> Option<u8> {
    crate::hw::label_rank(label)
}

impl Expectations {
    /// Parses an expectations file; `name` (the path) prefixes every error.
    pub fn parse(text: &str, name: &str) -> Result<Expectations> {
        let e: Expectations = toml::from_str(text).map_err(|err| {
            anyhow::anyhow!(
                "{name}: {}\nfix: correct the file, or write a fresh one with `nccltune verify --write-expect FILE` on a known-good node",
                crate::input::toml_error(text, &err)
            )
        })?;
        e.validate(name)?;
        Ok(e)
    }

    fn validate(&self, name: &str) -> Result<()> {
        for (i, p) in self.ports.iter().enumerate() {
            let ok = p
                .port
                .rsplit_once(':')
                .is_some_and(|(d, n)| !d.is_empty() && n.parse::<u32>().is_ok());
            if !ok {
                bail!(
                    "{name}: ports[{i}].port = {:?}: expected DEVICE:PORT, e.g. \"mlx5_0:1\"",
                    p.port
                );
            }
            if let Some(ll) = &p.link_layer
                && ll != "InfiniBand"
                && ll != "Ethernet"
            {
                bail!(
                    "{name}: ports[{i}].link_layer = {ll:?}: expected \"InfiniBand\" or \"Ethernet\" (RoCE)"
                );
            }
            if let Some(r) = p.rate_gbps
                && !(r.is_finite() && r > 0.0)
            {
                bail!("{name}: ports[{i}].rate_gbps = {r}: expected a positive rate in Gb/s, e.g. 400");
            }
        }
        for (i, g) in self.require.iter().enumerate() {
            if super::Group::parse(g).is_none() {
                bail!(
                    "{name}: require[{i}] = {g:?}: expected one of gpu, nvlink, rdma, gpudirect, pcie, software"
                );
            }
        }
        if let Some(t) = &self.thresholds
            && let Some(p) = &t.max_gpu_nic_path
            && path_rank(p).is_none()
        {
            bail!("{name}: thresholds.max_gpu_nic_path = {p:?}: expected one of PIX, PXB, PHB, NODE, SYS");
        }
        if let Some(v) = &self.versions {
            for (field, val) in [
                ("driver_min", &v.driver_min),
                ("ofed_min", &v.ofed_min),
                ("nccl_min", &v.nccl_min),
            ] {
                if let Some(val) = val
                    && crate::parse::version_key(val).is_empty()
                {
                    bail!("{name}: versions.{field} = {val:?}: expected a dotted version, e.g. \"2.21.5\"");
                }
            }
        }
        Ok(())
    }

    /// The expectations a known-good `node` sets: its GPU count and NVLink, its active RDMA
    /// ports with rate and link layer, its versions.
    pub fn from_node(node: &NodeReport) -> Expectations {
        let links: Vec<u32> = node.nvlink.iter().map(|l| l.active_links).collect();
        let speeds: Vec<f64> = node.nvlink.iter().filter_map(|l| l.link_gbps).collect();
        let gpus = GpuExpect {
            count: (!node.gpus.is_empty()).then_some(node.gpus.len() as u32),
            nvlink_links: links
                .first()
                .copied()
                .filter(|&f| f > 0 && links.iter().all(|&l| l == f)),
            nvlink_gbps: speeds
                .first()
                .copied()
                .filter(|&f| speeds.iter().all(|&s| s == f)),
        };
        let ports = node
            .active_nics()
            .map(|n| PortExpect {
                port: n.id(),
                rate_gbps: n.rate_gbps,
                link_layer: n.link_layer.as_ref().map(|l| l.to_string()),
            })
            .collect();
        let v = &node.versions;
        let versions = VersionExpect {
            driver: v.driver.clone(),
            ofed: v.ofed.clone(),
            nccl: v.nccl.clone(),
            ..VersionExpect::default()
        };
        Expectations {
            require: Vec::new(),
            gpus: Some(gpus),
            ports,
            versions: (versions != VersionExpect::default()).then_some(versions),
            thresholds: None,
        }
    }

    /// TOML text with a header saying where it came from.
    pub fn to_toml(&self, origin: &str) -> Result<String> {
        let body = toml::to_string(self)?;
        // The origin goes into a comment line: a line break in it would start TOML content.
        let origin: String = origin
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        Ok(format!(
            "# nccltune verify expectations, written from {origin}.\n\
# Check other nodes against it: nccltune verify --expect THIS_FILE\n\
# Optional: [versions] driver_min/ofed_min/nccl_min, [thresholds] max_gpu_nic_path = \"PXB\".\n\n{body}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_line_and_field() {
        let err = Expectations::parse("[gpus]\ncount = \"eight\"\n", "site.toml")
            .expect_err("bad type")
            .to_string();
        assert!(err.contains("site.toml") && err.contains("line 2"), "{err}");
        let err = Expectations::parse("[gpus]\ncuont = 8\n", "site.toml")
            .expect_err("unknown field")
            .to_string();
        assert!(err.contains("cuont") && err.contains("line 2"), "{err}");
        let err = Expectations::parse("[[ports]]\nport = \"mlx5_0\"\n", "x.toml")
            .expect_err("port syntax")
            .to_string();
        assert!(err.contains("ports[0].port"), "{err}");
        let err = Expectations::parse("[[ports]]\nport = \"mlx5_0:1\"\nlink_layer = \"IB\"\n", "x.toml")
            .expect_err("link layer")
            .to_string();
        assert!(err.contains("ports[0].link_layer"), "{err}");
        let err = Expectations::parse("[thresholds]\nmax_gpu_nic_path = \"FAR\"\n", "x.toml")
            .expect_err("path")
            .to_string();
        assert!(err.contains("max_gpu_nic_path"), "{err}");
    }

    #[test]
    fn written_expectations_read_back() {
        let e = Expectations {
            require: vec!["rdma".into()],
            gpus: Some(GpuExpect {
                count: Some(8),
                nvlink_links: Some(18),
                nvlink_gbps: Some(26.562),
            }),
            ports: vec![PortExpect {
                port: "mlx5_0:1".into(),
                rate_gbps: Some(400.0),
                link_layer: Some("InfiniBand".into()),
            }],
            versions: Some(VersionExpect {
                nccl: Some("2.21.5".into()),
                ..VersionExpect::default()
            }),
            thresholds: None,
        };
        let text = e.to_toml("test\n[gpus]").expect("toml");
        assert_eq!(Expectations::parse(&text, "t").expect("parse"), e);
    }
}
