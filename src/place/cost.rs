//! The all-reduce cost model: link constants (embedded `links.toml`, or `--links FILE`) and an
//! alpha-beta estimate of one ring all-reduce for a tensor-parallel group. The shape follows
//! NCCL's ring model (`src/graph/tuning.cc` at NCCL v2.30.7): a base latency, a per-step
//! latency that depends on whether the step crosses NVLink, PCIe or the network, and
//! `2(p-1)/p · bytes` over the bus bandwidth, minimised over protocols. It is an estimate for
//! comparing placements, not a prediction of what NCCL picks: NVLS, SHARP/CollNet and Tree are
//! not modelled.

use super::cluster::{NvlinkGen, Pcie};
use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The built-in link constants.
pub const DEFAULT_LINKS: &str = include_str!("links.toml");

/// The NCCL release the built-in constants are read from; a test fails when a source names an
/// older one.
pub const NCCL_VERSION: &str = "2.30.7";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Links {
    pub nvlink: NvLink,
    pub nvlink_generation: Vec<Generation>,
    pub pcie: PcieLinks,
    pub network: Network,
    pub cross_rack: CrossRack,
    pub protocol: Vec<Protocol>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NvLink {
    pub default: NvlinkGen,
    pub source: String,
}

/// One NVLink generation: links per GPU, NCCL's bandwidth per link, NCCL's one-node LL cap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generation {
    pub name: NvlinkGen,
    pub links: u32,
    pub per_link_gbytes_per_s: f64,
    pub ll_max_bus_gbytes_per_s: f64,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcieLinks {
    /// Per-lane rate of PCIe generations 1..=6 in units of 100 Mb/s.
    pub per_lane_100mbps: Vec<f64>,
    pub ll_max_bus_gbytes_per_s: f64,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub nics_per_node: u32,
    pub nic_gbps: f64,
    pub efficiency: f64,
    pub net_overhead_us: f64,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossRack {
    pub extra_hop_us: f64,
    pub source: String,
}

/// NCCL's protocols, by the name NCCL gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProtoKind {
    #[serde(rename = "LL")]
    Ll,
    #[serde(rename = "LL128")]
    Ll128,
    Simple,
}

impl ProtoKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtoKind::Ll => "LL",
            ProtoKind::Ll128 => "LL128",
            ProtoKind::Simple => "Simple",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    pub name: ProtoKind,
    pub base_us: f64,
    pub nvlink_step_us: f64,
    pub pci_step_us: f64,
    pub net_step_us: f64,
    /// The network step when the ring has one GPU per node: NCCL then uses Tree's NET latency.
    pub net_step_us_one_gpu_per_node: f64,
    pub bandwidth_factor: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bus_gbytes_per_s_two_nodes: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bus_gbytes_per_s_multi_node: Option<f64>,
    pub source: String,
}

/// What carries a group's traffic inside one node (or NVLink domain).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Intra {
    /// NVLink of this generation.
    Nvlink(NvlinkGen),
    /// PCIe only, at this generation and width.
    Pcie(Pcie),
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
        for g in NvlinkGen::ALL.into_iter().filter(|&g| g != NvlinkGen::None) {
            match self.nvlink_generation.iter().filter(|x| x.name == g).count() {
                1 => {}
                0 => bail!(
                    "{source}: no [[nvlink_generation]] named \"{}\"; keep one per generation",
                    g.as_str()
                ),
                _ => bail!("{source}: [[nvlink_generation]] \"{}\" appears twice", g.as_str()),
            }
        }
        for g in &self.nvlink_generation {
            if g.name == NvlinkGen::None {
                bail!("{source}: [[nvlink_generation]] \"none\": PCIe-only nodes are described by [pcie]");
            }
            if g.links == 0 || !pos(g.per_link_gbytes_per_s) || !pos(g.ll_max_bus_gbytes_per_s) {
                bail!(
                    "{source}: nvlink_generation {}: links, per_link_gbytes_per_s and ll_max_bus_gbytes_per_s must be positive",
                    g.name.as_str()
                );
            }
        }
        if self.nvlink.default == NvlinkGen::None {
            // Allowed: a PCIe-only cluster; nodes then need pcie_gen.
        }
        if self.pcie.per_lane_100mbps.len() != 6 || !self.pcie.per_lane_100mbps.iter().all(|&v| pos(v)) {
            bail!("{source}: pcie.per_lane_100mbps must list 6 positive rates, PCIe generations 1 to 6");
        }
        if !pos(self.pcie.ll_max_bus_gbytes_per_s) {
            bail!("{source}: pcie.ll_max_bus_gbytes_per_s must be positive");
        }
        if !pos(self.network.nic_gbps) || self.network.nics_per_node == 0 {
            bail!("{source}: network.nic_gbps and network.nics_per_node must be positive");
        }
        if !(pos(self.network.efficiency) && self.network.efficiency <= 1.0) {
            bail!("{source}: network.efficiency must be in (0, 1], e.g. 0.96");
        }
        if !nonneg(self.network.net_overhead_us) {
            bail!("{source}: network.net_overhead_us must be 0 or more microseconds");
        }
        if !nonneg(self.cross_rack.extra_hop_us) {
            bail!("{source}: cross_rack.extra_hop_us must be 0 or more microseconds");
        }
        if self.protocol.is_empty() {
            bail!("{source}: no [[protocol]] entries; keep at least Simple");
        }
        for p in &self.protocol {
            let caps = [
                p.max_bus_gbytes_per_s_two_nodes,
                p.max_bus_gbytes_per_s_multi_node,
            ];
            if !(nonneg(p.base_us)
                && nonneg(p.nvlink_step_us)
                && nonneg(p.pci_step_us)
                && nonneg(p.net_step_us)
                && nonneg(p.net_step_us_one_gpu_per_node)
                && pos(p.bandwidth_factor)
                && caps.iter().flatten().all(|&c| pos(c)))
            {
                bail!(
                    "{source}: protocol {}: latencies must be >= 0 and bandwidth_factor and caps > 0",
                    p.name.as_str()
                );
            }
        }
        Ok(())
    }

    /// The entry of one NVLink generation (validated to exist for every generation but `None`).
    pub fn generation(&self, g: NvlinkGen) -> Option<&Generation> {
        self.nvlink_generation.iter().find(|x| x.name == g)
    }

    /// Ring bus bandwidth inside one NVLink system or PCIe node, GB/s.
    pub fn intra_bus(&self, intra: Intra) -> f64 {
        match intra {
            Intra::Nvlink(g) => self
                .generation(g)
                .map_or(0.0, |x| f64::from(x.links) * x.per_link_gbytes_per_s),
            Intra::Pcie(p) => {
                let i = (p.gen_.clamp(1, 6) - 1) as usize;
                let rate = self.pcie.per_lane_100mbps.get(i).copied().unwrap_or(0.0);
                f64::from(p.width) * rate / 80.0
            }
        }
    }

    fn ll_cap_one_node(&self, intra: Intra) -> f64 {
        match intra {
            Intra::Nvlink(g) => self
                .generation(g)
                .map_or(f64::INFINITY, |x| x.ll_max_bus_gbytes_per_s),
            Intra::Pcie(_) => self.pcie.ll_max_bus_gbytes_per_s,
        }
    }
}

/// What the model needs to know about one tensor-parallel group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupShape {
    pub ranks: u32,
    /// NVLink systems the ring crosses between over the network: nodes, or NVLink domains
    /// (NCCL fuses an MNNVL clique's topology into one system).
    pub nodes: u32,
    pub racks: u32,
    /// What carries the steps inside a node (the slowest kind in the group).
    pub intra: Intra,
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
    // NCCL: nInterSteps = 2 * (nNodes - 1) for an all-reduce ring (tuning.cc line 411); a ring
    // that leaves its rack pays the extra hop on the network steps that cross racks, 2 per
    // rack boundary, at most every network step.
    let net_steps = if g.nodes > 1 {
        (2 * (g.nodes - 1)).min(steps)
    } else {
        0
    };
    let rack_steps = if g.racks > 1 {
        (2 * (g.racks - 1)).min(net_steps)
    } else {
        0
    };
    let intra_steps = steps - net_steps;
    let wire = 2.0 * (p - 1.0) / p * bytes as f64;
    let mut best: Option<Estimate> = None;
    for proto in &links.protocol {
        let mut bw = g.bus_gbytes_per_s * proto.bandwidth_factor;
        let cap = match g.nodes {
            0 | 1 => (proto.name == ProtoKind::Ll).then(|| links.ll_cap_one_node(g.intra)),
            2 => proto.max_bus_gbytes_per_s_two_nodes,
            _ => proto.max_bus_gbytes_per_s_multi_node,
        };
        if let Some(c) = cap {
            bw = bw.min(c);
        }
        let mut intra_lat = match g.intra {
            Intra::Nvlink(_) => proto.nvlink_step_us,
            Intra::Pcie(_) => proto.pci_step_us,
        };
        if g.nodes > 1 {
            // tuning.cc lines 405-410: intraLat = max(intraLat, netOverhead), x3 for Simple.
            let over =
                links.network.net_overhead_us * if proto.name == ProtoKind::Simple { 3.0 } else { 1.0 };
            intra_lat = intra_lat.max(over);
        }
        // tuning.cc lines 387-388: with one rank per node the latency is Tree's.
        let net_step = if g.ranks == g.nodes {
            proto.net_step_us_one_gpu_per_node
        } else {
            proto.net_step_us
        };
        let lat = proto.base_us
            + f64::from(intra_steps) * intra_lat
            + f64::from(net_steps) * net_step
            + f64::from(rack_steps) * links.cross_rack.extra_hop_us;
        // bytes / (GB/s · 1000) = µs
        let us = lat + wire / (bw * 1000.0);
        if best.as_ref().is_none_or(|b| us < b.us) {
            best = Some(Estimate {
                us,
                protocol: proto.name.as_str().into(),
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

    fn shape(ranks: u32, nodes: u32, racks: u32, bus: f64) -> GroupShape {
        GroupShape {
            ranks,
            nodes,
            racks,
            intra: Intra::Nvlink(NvlinkGen::H100),
            bus_gbytes_per_s: bus,
        }
    }

    #[test]
    fn builtin_links_parse_and_every_entry_has_a_source() {
        let l = links();
        assert!(!l.nvlink.source.is_empty() && !l.network.source.is_empty());
        assert!(l.cross_rack.source.contains("no published source"));
        assert!(l.protocol.iter().all(|p| p.source.contains("tuning.cc")));
        assert!(l.nvlink_generation.iter().all(|g| g.source.contains("topo.h")));
        assert!(l.pcie.source.contains("topo.cc"));
    }

    /// Every `x.y.z` version named in a source must be NCCL_VERSION or newer, and every source
    /// that cites an NCCL file names the version it was read at.
    #[test]
    fn no_source_names_an_nccl_older_than_the_catalogue() {
        fn parse(v: &str) -> Option<(u32, u32, u32)> {
            let mut it = v.split('.').map(|x| x.parse::<u32>().ok());
            Some((it.next()??, it.next()??, it.next()??))
        }
        let want = parse(NCCL_VERSION).expect("version");
        let mut checked = 0;
        for line in DEFAULT_LINKS
            .lines()
            .filter(|l| l.trim_start().starts_with("source"))
        {
            let cites_nccl = ["tuning.cc", "topo.h", "topo.cc", "net_ib"]
                .iter()
                .any(|f| line.contains(f));
            let mut versions = Vec::new();
            for word in line.split(|c: char| !(c.is_ascii_digit() || c == '.')) {
                let w = word.trim_matches('.');
                if w.matches('.').count() == 2
                    && let Some(v) = parse(w)
                {
                    versions.push(v);
                }
            }
            if cites_nccl {
                assert!(
                    !versions.is_empty(),
                    "source cites NCCL source without a version: {line}"
                );
            }
            for v in versions {
                assert!(
                    v >= want,
                    "source names NCCL {v:?}, older than {NCCL_VERSION}: {line}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 8, "only {checked} versions seen");
        // The check itself catches an old version.
        assert!(parse("2.20.3").expect("v") < want);
    }

    #[test]
    fn constants_match_nccl_2_30_7() {
        let l = links();
        let ll = l.protocol.iter().find(|p| p.name == ProtoKind::Ll).expect("LL");
        assert_eq!(ll.bandwidth_factor, 0.5);
        let h = l.generation(NvlinkGen::H100).expect("h100");
        assert_eq!(h.ll_max_bus_gbytes_per_s, 141.0);
        // 18 links x 20.6 GB/s: NCCL's H100 NVLink bandwidth, and the ~370 GB/s measured.
        assert!((l.intra_bus(Intra::Nvlink(NvlinkGen::H100)) - 370.8).abs() < 1e-9);
        assert!((l.intra_bus(Intra::Nvlink(NvlinkGen::Gb200)) - 721.8).abs() < 1e-9);
        assert!((l.intra_bus(Intra::Nvlink(NvlinkGen::V100)) - 120.0).abs() < 1e-9);
        // PCIe Gen4 x16 = 16 * 120 / 80 = 24 GB/s; Gen5 x16 = 48.
        assert_eq!(l.intra_bus(Intra::Pcie(Pcie { gen_: 4, width: 16 })), 24.0);
        assert_eq!(l.intra_bus(Intra::Pcie(Pcie { gen_: 5, width: 16 })), 48.0);
        assert_eq!(l.intra_bus(Intra::Pcie(Pcie { gen_: 3, width: 8 })), 6.0);
    }

    #[test]
    fn single_rank_costs_nothing_and_more_nodes_cost_more() {
        let l = links();
        assert_eq!(allreduce(&l, shape(1, 1, 1, 370.0), 1 << 20).us, 0.0);
        let node = allreduce(&l, shape(8, 1, 1, 370.0), 16 << 20);
        let rack = allreduce(&l, shape(8, 2, 1, 192.0), 16 << 20);
        let cross = allreduce(&l, shape(8, 2, 2, 192.0), 16 << 20);
        assert!(
            node.us < rack.us && rack.us < cross.us,
            "{node:?} {rack:?} {cross:?}"
        );
    }

    #[test]
    fn large_messages_follow_the_bandwidth_term() {
        // 8 ranks in one node, 256 MiB: Simple wins; 2·7/8·256 MiB / 370 GB/s plus
        // 8.4 + 14·3.4 µs of latency.
        let l = links();
        let e = allreduce(&l, shape(8, 1, 1, 370.0), 256 << 20);
        assert_eq!(e.protocol, "Simple");
        let expect = 8.4 + 14.0 * 3.4 + 1.75 * (256u64 << 20) as f64 / 370_000.0;
        assert!((e.us - expect).abs() < 1e-6, "{}", e.us);
        // Small messages: LL (lowest latency) wins; 6.6 + 14 x 0.6 + 1.75 x 4096 / (185 GB/s).
        let s = allreduce(&l, shape(8, 1, 1, 370.0), 4096);
        assert_eq!(s.protocol, "LL");
        let expect = 6.6 + 14.0 * 0.6 + 1.75 * 4096.0 / (141.0f64.min(370.0 * 0.5) * 1000.0);
        assert!((s.us - expect).abs() < 1e-9, "{}", s.us);
    }

    #[test]
    fn two_nodes_have_two_network_steps_and_the_two_node_cap() {
        // 16 ranks on 2 nodes: 30 steps, 2 on the network (2 x (2 - 1)); LL is capped at
        // 22.5 GB/s and its NVLink steps cost at least the 2 us net overhead.
        let l = links();
        let e = allreduce(&l, shape(16, 2, 1, 192.0), 1024);
        assert_eq!(e.protocol, "LL");
        let expect = 6.6 + 28.0 * 2.0 + 2.0 * 2.7 + 2.0 * 15.0 / 16.0 * 1024.0 / (22.5 * 1000.0);
        assert!((e.us - expect).abs() < 1e-9, "{} vs {expect}", e.us);
    }

    #[test]
    fn pcie_steps_cost_more_than_nvlink_steps() {
        let l = links();
        let pcie = GroupShape {
            intra: Intra::Pcie(Pcie { gen_: 4, width: 16 }),
            bus_gbytes_per_s: 24.0,
            ..shape(4, 1, 1, 0.0)
        };
        let nv = allreduce(&l, shape(4, 1, 1, 370.0), 4096);
        let pc = allreduce(&l, pcie, 4096);
        assert!(pc.us > nv.us, "{pc:?} {nv:?}");
        // 6.6 + 6 x 1.0 (PCI LL step) + 1.5 x 4096 / 12 GB/s.
        let expect = 6.6 + 6.0 + 1.5 * 4096.0 / 12_000.0;
        assert!((pc.us - expect).abs() < 1e-9, "{}", pc.us);
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
        let bad = DEFAULT_LINKS.replace("name = \"b200\"", "name = \"h100\"");
        let e = Links::parse(&bad, "dup.toml").expect_err("must fail");
        assert!(e.to_string().contains("appears twice"), "{e}");
    }
}
