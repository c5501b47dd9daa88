//! The all-reduce cost model: link constants (embedded `links.toml`, or `--links FILE`) and an
//! alpha-beta estimate of one ring all-reduce for a tensor-parallel group. The shape follows
//! NCCL's ring model (`src/graph/tuning.cc`): a base latency, a per-step latency that depends
//! on whether the step crosses NVLink or the network, and `2(p-1)/p · bytes` over the bus
//! bandwidth, minimised over protocols. It is an estimate for comparing placements, not a
//! prediction of what NCCL picks: NVLS, SHARP/CollNet and Tree are not modelled.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The built-in link constants.
pub const DEFAULT_LINKS: &str = include_str!("links.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Links {
    pub nvlink: NvLink,
    pub network: Network,
    pub cross_rack: CrossRack,
    pub protocol: Vec<Protocol>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NvLink {
    pub bus_gbytes_per_s: f64,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub nics_per_node: u32,
    pub nic_gbps: f64,
    pub efficiency: f64,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossRack {
    pub extra_hop_us: f64,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    pub name: String,
    pub base_us: f64,
    pub nvlink_step_us: f64,
    pub net_step_us: f64,
    pub bandwidth_factor: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bus_gbytes_per_s_intra_node: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bus_gbytes_per_s_multi_node: Option<f64>,
    pub source: String,
}

impl Links {
    /// The embedded constants.
    pub fn builtin() -> Result<Links> {
        Links::parse(DEFAULT_LINKS, "built-in links.toml")
    }

    pub fn load(path: &Path) -> Result<Links> {
        let text = crate::input::read_text(path, &crate::input::TOML).context("links file")?;
        Links::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, source: &str) -> Result<Links> {
        let links: Links = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| {
                    format!(
                        " line {}:",
                        text.as_bytes()
                            .iter()
                            .take(s.start)
                            .filter(|&&b| b == b'\n')
                            .count()
                            + 1
                    )
                })
                .unwrap_or_default();
            anyhow::anyhow!(
                "{source}:{line} {}; start from the built-in file (`nccltune place --print-links`)",
                e.message().trim_end()
            )
        })?;
        links.validate(source)?;
        Ok(links)
    }

    fn validate(&self, source: &str) -> Result<()> {
        let pos = |v: f64| v.is_finite() && v > 0.0;
        let nonneg = |v: f64| v.is_finite() && v >= 0.0;
        if !pos(self.nvlink.bus_gbytes_per_s) {
            bail!("{source}: nvlink.bus_gbytes_per_s must be a positive number of GB/s");
        }
        if !pos(self.network.nic_gbps) || self.network.nics_per_node == 0 {
            bail!("{source}: network.nic_gbps and network.nics_per_node must be positive");
        }
        if !(pos(self.network.efficiency) && self.network.efficiency <= 1.0) {
            bail!("{source}: network.efficiency must be in (0, 1], e.g. 0.96");
        }
        if !nonneg(self.cross_rack.extra_hop_us) {
            bail!("{source}: cross_rack.extra_hop_us must be 0 or more microseconds");
        }
        if self.protocol.is_empty() {
            bail!("{source}: no [[protocol]] entries; keep at least Simple");
        }
        for p in &self.protocol {
            let caps = [
                p.max_bus_gbytes_per_s_intra_node,
                p.max_bus_gbytes_per_s_multi_node,
            ];
            if !(nonneg(p.base_us)
                && nonneg(p.nvlink_step_us)
                && nonneg(p.net_step_us)
                && pos(p.bandwidth_factor)
                && caps.iter().flatten().all(|&c| pos(c)))
            {
                bail!(
                    "{source}: protocol {}: latencies must be >= 0 and bandwidth_factor and caps > 0",
                    p.name
                );
            }
        }
        Ok(())
    }
}

/// What the model needs to know about one tensor-parallel group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupShape {
    pub ranks: u32,
    pub nodes: u32,
    pub racks: u32,
    /// The bus bandwidth of the slowest link the ring uses, GB/s (before protocol factors).
    pub bus_gbytes_per_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub us: f64,
    pub protocol: String,
}

/// Estimated time of one ring all-reduce of `bytes` over the group, in microseconds.
pub fn allreduce(links: &Links, g: GroupShape, bytes: u64) -> Estimate {
    if g.ranks <= 1 {
        return Estimate {
            us: 0.0,
            protocol: "none".into(),
        };
    }
    let p = f64::from(g.ranks);
    let steps = 2 * (g.ranks - 1);
    // NCCL counts 2·nNodes network steps for a multi-node ring all-reduce (tuning.cc
    // `nInterSteps`); a ring that leaves its rack pays the extra hop on the steps that cross
    // racks, 2 per rack boundary pair, at most every network step.
    let net_steps = if g.nodes > 1 { (2 * g.nodes).min(steps) } else { 0 };
    let rack_steps = if g.racks > 1 {
        (2 * g.racks).min(net_steps)
    } else {
        0
    };
    let nv_steps = steps - net_steps;
    let wire = 2.0 * (p - 1.0) / p * bytes as f64;
    let mut best: Option<Estimate> = None;
    for proto in &links.protocol {
        let mut bw = g.bus_gbytes_per_s * proto.bandwidth_factor;
        let cap = if g.nodes > 1 {
            proto.max_bus_gbytes_per_s_multi_node
        } else {
            proto.max_bus_gbytes_per_s_intra_node
        };
        if let Some(c) = cap {
            bw = bw.min(c);
        }
        let lat = proto.base_us
            + f64::from(nv_steps) * proto.nvlink_step_us
            + f64::from(net_steps) * proto.net_step_us
            + f64::from(rack_steps) * links.cross_rack.extra_hop_us;
        // bytes / (GB/s · 1000) = µs
        let us = lat + wire / (bw * 1000.0);
        if best.as_ref().is_none_or(|b| us < b.us) {
            best = Some(Estimate {
                us,
                protocol: proto.name.clone(),
            });
        }
    }
    best.unwrap_or(Estimate {
        us: f64::NAN,
        protocol: "none".into(),
    })
}

/// Parses a size such as `16MiB`, `4 MB`, `65536`, `1.5GiB` into bytes.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("size '{s}': expected a number with an optional unit, e.g. 16MiB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => bail!("size '{s}': unknown unit '{other}'; use B, KB, KiB, MB, MiB, GB or GiB"),
    };
    let bytes = n * mult;
    if !(1.0..=1e15).contains(&bytes) {
        bail!("size '{s}': expected 1 byte to 1 PB");
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Links {
        Links::builtin().expect("built-in links parse")
    }

    #[test]
    fn builtin_links_parse_and_every_entry_has_a_source() {
        let l = links();
        assert!(!l.nvlink.source.is_empty() && !l.network.source.is_empty());
        assert!(l.cross_rack.source.contains("no published source"));
        assert!(l.protocol.iter().all(|p| p.source.contains("tuning.cc")));
    }

    #[test]
    fn single_rank_costs_nothing_and_more_nodes_cost_more() {
        let l = links();
        let one = GroupShape {
            ranks: 1,
            nodes: 1,
            racks: 1,
            bus_gbytes_per_s: 370.0,
        };
        assert_eq!(allreduce(&l, one, 1 << 20).us, 0.0);
        let node = allreduce(
            &l,
            GroupShape {
                ranks: 8,
                nodes: 1,
                racks: 1,
                bus_gbytes_per_s: 370.0,
            },
            16 << 20,
        );
        let rack = allreduce(
            &l,
            GroupShape {
                ranks: 8,
                nodes: 2,
                racks: 1,
                bus_gbytes_per_s: 192.0,
            },
            16 << 20,
        );
        let cross = allreduce(
            &l,
            GroupShape {
                ranks: 8,
                nodes: 2,
                racks: 2,
                bus_gbytes_per_s: 192.0,
            },
            16 << 20,
        );
        assert!(
            node.us < rack.us && rack.us < cross.us,
            "{node:?} {rack:?} {cross:?}"
        );
    }

    #[test]
    fn large_messages_follow_the_bandwidth_term() {
        // 8 ranks in one node, 256 MiB: Simple wins; 2·7/8·256 MiB / 370 GB/s ≈ 1270 µs plus
        // 8.4 + 14·3.4 µs of latency.
        let l = links();
        let e = allreduce(
            &l,
            GroupShape {
                ranks: 8,
                nodes: 1,
                racks: 1,
                bus_gbytes_per_s: 370.0,
            },
            256 << 20,
        );
        assert_eq!(e.protocol, "Simple");
        let expect = 8.4 + 14.0 * 3.4 + 1.75 * (256u64 << 20) as f64 / 370_000.0;
        assert!((e.us - expect).abs() < 1e-6, "{}", e.us);
        // Small messages: LL (lowest latency) wins.
        let s = allreduce(
            &l,
            GroupShape {
                ranks: 8,
                nodes: 1,
                racks: 1,
                bus_gbytes_per_s: 370.0,
            },
            4096,
        );
        assert_eq!(s.protocol, "LL");
    }

    #[test]
    fn sizes_parse_with_units_and_reject_junk() {
        assert_eq!(parse_size("16MiB").expect("ok"), 16 << 20);
        assert_eq!(parse_size("4 MB").expect("ok"), 4_000_000);
        assert_eq!(parse_size("65536").expect("ok"), 65536);
        assert!(parse_size("-5").is_err());
        assert!(parse_size("16 parsecs").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn a_links_file_with_bad_values_is_refused_with_its_name() {
        let bad = DEFAULT_LINKS.replace("efficiency = 0.96", "efficiency = 1.5");
        let e = Links::parse(&bad, "my-links.toml").expect_err("must fail");
        assert!(e.to_string().contains("my-links.toml") && e.to_string().contains("efficiency"));
        let e = Links::parse("[nvlink]\nbus_gbytes_per_s = \"fast\"\n", "x.toml").expect_err("must fail");
        assert!(e.to_string().contains("x.toml: line 2"), "{e}");
    }
}
