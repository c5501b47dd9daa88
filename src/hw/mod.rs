//! One home for the hardware notions every command relies on, so that `detect`, `configure`,
//! `lint`, `verify`, `bench` and `place` cannot disagree: the typed port state and link layer,
//! the GPUDirect path, the GPU architecture and "Hopper or newer", the rank of a PCI path, which
//! RDMA ports are the rails, and whether the port facts are known at all.

pub mod platform;

use crate::node::{Gpu, Nic, NodeReport};
use crate::parse::topo::Path;
use crate::probe::{ProbeStatus, names};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string-valued enum with a catch-all: serialised as the text the tools print, so the JSON
/// contract keeps its values, and compared as a type everywhere else.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($var:ident = $($text:literal)|+),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($var,)* Other(String) }

        impl $name {
            pub fn parse(s: &str) -> $name {
                let t = s.trim();
                $( if [$($text),+].iter().any(|x| x.eq_ignore_ascii_case(t)) { return $name::$var; } )*
                $name::Other(t.to_string())
            }
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$var => [$($text),+][0], )*
                    $name::Other(s) => s,
                }
            }
        }
        impl From<&str> for $name { fn from(s: &str) -> $name { $name::parse(s) } }
        impl From<String> for $name { fn from(s: String) -> $name { $name::parse(&s) } }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> { s.serialize_str(self.as_str()) }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                Ok($name::parse(&String::deserialize(d)?))
            }
        }
    };
}

text_enum! {
    /// Logical port state, as ibstat prints it (sysfs `4: ACTIVE` is read to the same value).
    PortState {
        Active = "Active" | "ACTIVE",
        Down = "Down" | "DOWN",
        Initializing = "Initializing" | "INIT",
        Armed = "Armed" | "ARMED",
        ActiveDefer = "ActiveDefer" | "ACTIVE_DEFER",
    }
}

text_enum! {
    /// The link layer of an RDMA port.
    LinkLayer {
        InfiniBand = "InfiniBand" | "IB",
        Ethernet = "Ethernet" | "RoCE",
    }
}

text_enum! {
    /// The GPUDirect RDMA path NCCL will find on the node.
    GdrPath {
        PeerMemory = "peer-memory",
        DmaBuf = "dma-buf",
        None = "none",
        Unknown = "unknown",
    }
}

// The enum comes from a macro (or another module), so `#[default]` cannot be used.
#[allow(clippy::derivable_impls)]
impl Default for GdrPath {
    fn default() -> GdrPath {
        GdrPath::Unknown
    }
}

text_enum! {
    /// GPU architecture, as `nvidia-smi -q` prints it under "Product Architecture".
    Arch {
        Volta = "Volta",
        Turing = "Turing",
        Ampere = "Ampere",
        Ada = "Ada Lovelace" | "Ada",
        Hopper = "Hopper",
        Blackwell = "Blackwell",
    }
}

impl Arch {
    /// Product-name words of GPUs of each architecture, for nodes whose driver does not print
    /// the architecture. A word of the name must match exactly, so `H20` does not match `H200`.
    /// Sources: NVIDIA's data-center product pages (V100, A100, H100, H200, H20, H800, GH200,
    /// B200, B300, GB200, GB300) and the CUDA GPUs compute-capability table.
    const BY_NAME: &[(&'static str, Arch)] = &[
        ("V100", Arch::Volta),
        ("T4", Arch::Turing),
        ("A100", Arch::Ampere),
        ("A800", Arch::Ampere),
        ("A40", Arch::Ampere),
        ("A30", Arch::Ampere),
        ("A10", Arch::Ampere),
        ("L40", Arch::Ada),
        ("L40S", Arch::Ada),
        ("L4", Arch::Ada),
        ("H100", Arch::Hopper),
        ("H200", Arch::Hopper),
        ("H800", Arch::Hopper),
        ("H20", Arch::Hopper),
        ("GH200", Arch::Hopper),
        ("B100", Arch::Blackwell),
        ("B200", Arch::Blackwell),
        ("B300", Arch::Blackwell),
        ("GB200", Arch::Blackwell),
        ("GB300", Arch::Blackwell),
    ];

    /// The architecture a product name implies, where one of its words is a known product.
    pub fn from_name(name: &str) -> Option<Arch> {
        name.split(|c: char| !c.is_ascii_alphanumeric()).find_map(|w| {
            Arch::BY_NAME
                .iter()
                .find(|(n, _)| *n == w)
                .map(|(_, a)| a.clone())
        })
    }

    /// Generation order (Volta = 70 ... Blackwell = 100), the major compute capability × 10;
    /// `None` for an architecture we do not know.
    pub fn generation(&self) -> Option<u32> {
        Some(match self {
            Arch::Volta => 70,
            Arch::Turing => 75,
            Arch::Ampere => 80,
            Arch::Ada => 89,
            Arch::Hopper => 90,
            Arch::Blackwell => 100,
            Arch::Other(_) => return None,
        })
    }
}

/// NVLink links and per-link speed of an architecture (embedded `nvlink.toml`, sourced).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct NvlinkSpec {
    pub arch: String,
    pub links: u32,
    pub gbps_per_link: f64,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct ProductLinks {
    name: String,
    links: u32,
    source: String,
}

#[derive(Default, serde::Deserialize)]
struct NvlinkTable {
    arch: Vec<NvlinkSpec>,
    #[serde(default)]
    product: Vec<ProductLinks>,
}

fn nvlink_data() -> &'static NvlinkTable {
    static TABLE: std::sync::OnceLock<NvlinkTable> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| toml::from_str::<NvlinkTable>(include_str!("nvlink.toml")).unwrap_or_default())
}

fn nvlink_table() -> &'static [NvlinkSpec] {
    &nvlink_data().arch
}

/// NVLinks a GPU should have: the product's own count where it differs from its
/// architecture's, else the architecture's; `None` when not known (PCIe cards, unknown GPUs).
pub fn expected_nvlinks(g: &Gpu) -> Option<u32> {
    let spec = nvlink_spec(g)?;
    let words: Vec<&str> = g
        .name
        .as_deref()
        .unwrap_or("")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .collect();
    Some(
        nvlink_data()
            .product
            .iter()
            .find(|p| words.contains(&p.name.as_str()))
            .map_or(spec.links, |p| p.links),
    )
}

/// The NVLink a GPU should have: by architecture, for SXM/mezzanine parts only (a name that
/// says PCIe has bridges or none, which the table cannot know).
pub fn nvlink_spec(g: &Gpu) -> Option<&'static NvlinkSpec> {
    if g.name.as_deref().is_some_and(|n| n.contains("PCIe")) {
        return None;
    }
    let arch = gpu_arch(g)?;
    nvlink_table().iter().find(|s| s.arch == arch.as_str())
}

/// A GPU's architecture: what the driver printed, else what its product name implies.
pub fn gpu_arch(g: &Gpu) -> Option<Arch> {
    match &g.architecture {
        Some(a) if !matches!(a, Arch::Other(_)) => Some(a.clone()),
        _ => g
            .name
            .as_deref()
            .and_then(Arch::from_name)
            .or_else(|| g.architecture.clone()),
    }
}

/// Hopper or newer (compute capability 9.0+): NCCL builds NVLS graphs only for these
/// (NCCL 2.30.7 `src/graph/search.cc`, `ccMin < 90`; NCCL docs, Environment Variables,
/// `NCCL_NVLS_ENABLE`).
pub fn is_hopper_or_newer(g: &Gpu) -> bool {
    gpu_arch(g).and_then(|a| a.generation()).is_some_and(|g| g >= 90)
}

/// Whether NCCL can build NVLS graphs on the node: an NVSwitch fabric and every GPU Hopper or
/// newer (NCCL docs, Environment Variables, `NCCL_NVLS_ENABLE`; NCCL 2.30.7 `src/graph/search.cc`).
/// Multicast support in the driver is not visible from the probes.
pub fn nvls_capable(node: &NodeReport) -> bool {
    node.nvswitch.present == Some(true) && !node.gpus.is_empty() && node.gpus.iter().all(is_hopper_or_newer)
}

/// Grace superchips, whose GPUs reach their CPU over NVLink-C2C: GH200, GB200, GB300, GB10.
const C2C_PRODUCTS: [&str; 4] = ["GH200", "GB200", "GB300", "GB10"];

/// The GPUs of the node that sit on a Grace CPU over NVLink-C2C (by product name), as
/// evidence ("NVIDIA GB200 (4 GPUs)"); `None` when none does or no GPU is known. On such nodes
/// NCCL classes a NIC on the GPU's own CPU as `P2C` (C2C + PCIe; NCCL 2.30.7
/// `src/graph/paths.cc`, `ncclTopoComputePaths`), which `nvidia-smi topo -m` shows as `NODE`
/// or `PHB`.
pub fn c2c_gpus(node: &NodeReport) -> Option<String> {
    let c2c: Vec<&str> = node
        .gpus
        .iter()
        .filter_map(|g| g.name.as_deref())
        .filter(|n| {
            n.split(|c: char| !c.is_ascii_alphanumeric())
                .any(|w| C2C_PRODUCTS.contains(&w))
        })
        .collect();
    let first = c2c.first()?;
    Some(format!(
        "{first} ({} GPU{} on NVLink-C2C)",
        c2c.len(),
        if c2c.len() == 1 { "" } else { "s" }
    ))
}

/// Rank of a GPU-NIC PCI path, nearest first (`PIX` 1 ... `SYS` 5); `None` for an NVLink or
/// a term that is not a PCIe distance. NCCL's own order (NCCL 2.30.7 `src/graph/topo.h`,
/// `PATH_PIX` < `PATH_PXB` < `PATH_PHB` < `PATH_SYS`; `nvidia-smi topo -m` adds `NODE`).
pub fn path_rank(p: &Path) -> Option<u8> {
    match p {
        Path::Pix => Some(1),
        Path::Pxb => Some(2),
        Path::Phb => Some(3),
        Path::Node => Some(4),
        Path::Sys => Some(5),
        _ => None,
    }
}

/// Rank of a path given as its label (expectation files, NCCL levels).
pub fn label_rank(label: &str) -> Option<u8> {
    Path::parse(label).as_ref().and_then(path_rank)
}

/// Whether the node's RDMA port facts are known: some source of port information worked, or
/// `/sys/class/infiniband` is absent (no RDMA device at all, which is known too). Without
/// this, "no ports" would be a guess.
pub fn port_facts_known(node: &NodeReport) -> bool {
    no_rdma_devices(node)
        || node.probe_ok(names::IBSTAT)
        || node.probe_ok(names::RDMA_PORTS)
        || !node.nics.is_empty()
}

/// `/sys/class/infiniband` is absent: the node has no RDMA device.
pub fn no_rdma_devices(node: &NodeReport) -> bool {
    node.probe_status(names::RDMA_PORTS) == Some(&ProbeStatus::NotFound)
}

/// The rail ports: the ports NCCL should carry GPU traffic on. Where the topology matrix is
/// known, the candidates are the devices that are some GPU's nearest NIC (NCCL picks the
/// nearest NIC per GPU, NCCL docs "NCCL_IB_HCA" and `src/graph/search.cc`); without it, every
/// port. Of the candidates, the rails are those of one link layer (InfiniBand when any IB
/// candidate is active, else RoCE) at the highest active rate. `configure`'s `NCCL_IB_HCA`
/// list is `ports`; `verify` treats every candidate (`ports`, `slower`, `inactive`) as a rail.
#[derive(Debug, Clone, PartialEq)]
pub struct Rails<'a> {
    pub layer: Option<LinkLayer>,
    /// Active rail ports at the highest rate.
    pub ports: Vec<&'a Nic>,
    /// Active candidates of the rails' layer left out because they are slower.
    pub slower: Vec<&'a Nic>,
    /// Candidates that are not active (a rail down).
    pub inactive: Vec<&'a Nic>,
    /// Whether the candidates came from the GPU-NIC topology (else: every port).
    pub from_topology: bool,
}

impl Rails<'_> {
    /// Whether `nic` is a rail (active or not): a GPU's nearest NIC, or a rail port.
    pub fn contains(&self, nic: &Nic) -> bool {
        let id = nic.id();
        self.ports
            .iter()
            .chain(&self.slower)
            .chain(&self.inactive)
            .any(|n| n.id() == id)
    }
}

pub fn rails(node: &NodeReport) -> Rails<'_> {
    let nearest: std::collections::BTreeSet<&str> =
        node.gpu_nic_affinity.iter().map(|a| a.nic.as_str()).collect();
    let from_topology = !nearest.is_empty() && node.nics.iter().any(|n| nearest.contains(n.device.as_str()));
    let candidates: Vec<&Nic> = node
        .nics
        .iter()
        .filter(|n| !from_topology || nearest.contains(n.device.as_str()))
        .collect();
    // An Active port whose link layer no probe printed is InfiniBand (ibstat before RoCE
    // support printed IB ports only), never a reason to leave RDMA out.
    let layer_of = |n: &Nic| n.link_layer.clone().unwrap_or(LinkLayer::InfiniBand);
    let active_of = |layer: &LinkLayer| -> Vec<&Nic> {
        candidates
            .iter()
            .copied()
            .filter(|n| n.is_active() && &layer_of(n) == layer)
            .collect()
    };
    let layer = [LinkLayer::InfiniBand, LinkLayer::Ethernet]
        .into_iter()
        .find(|l| !active_of(l).is_empty());
    let active = layer.as_ref().map(active_of).unwrap_or_default();
    let best = active.iter().filter_map(|n| n.rate_gbps).fold(0.0_f64, f64::max);
    let (ports, slower): (Vec<&Nic>, Vec<&Nic>) = active
        .into_iter()
        .partition(|n| n.rate_gbps.unwrap_or(0.0) >= best);
    // A down port has no reliable rate or, on some drivers, link layer: with the topology, every
    // inactive nearest NIC is a rail down; without it, inactive ports of the rails' layer.
    let inactive = candidates
        .iter()
        .copied()
        .filter(|n| !n.is_active() && (from_topology || (layer.is_some() && n.link_layer == layer)))
        .collect();
    Rails {
        layer,
        ports,
        slower,
        inactive,
        from_topology,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_enums_keep_their_strings() {
        assert_eq!(PortState::parse("ACTIVE"), PortState::Active);
        assert_eq!(PortState::parse("Active").as_str(), "Active");
        assert_eq!(PortState::parse("Sleeping"), PortState::Other("Sleeping".into()));
        assert_eq!(
            serde_json::to_string(&LinkLayer::Ethernet).ok().as_deref(),
            Some("\"Ethernet\"")
        );
        assert_eq!(GdrPath::parse("dma-buf"), GdrPath::DmaBuf);
    }

    #[test]
    fn architecture_by_name_matches_whole_words() {
        assert_eq!(Arch::from_name("NVIDIA H20"), Some(Arch::Hopper));
        assert_eq!(Arch::from_name("NVIDIA H200 141GB HBM3e"), Some(Arch::Hopper));
        assert_eq!(Arch::from_name("NVIDIA A100-SXM4-80GB"), Some(Arch::Ampere));
        assert_eq!(Arch::from_name("NVIDIA GeForce RTX 4090"), None);
        let g = Gpu {
            name: Some("NVIDIA Graphics Device".into()),
            architecture: Some(Arch::Blackwell),
            ..Gpu::default()
        };
        assert!(is_hopper_or_newer(&g));
    }

    #[test]
    fn nvlink_table_parses_and_knows_v100_and_b200() {
        assert_eq!(nvlink_table().len(), 4);
        let g = |n: &str| Gpu {
            name: Some(n.into()),
            ..Gpu::default()
        };
        assert_eq!(nvlink_spec(&g("Tesla V100-SXM3-32GB")).map(|s| s.links), Some(6));
        assert_eq!(
            nvlink_spec(&g("NVIDIA B200")).map(|s| s.gbps_per_link),
            Some(50.0)
        );
        assert_eq!(nvlink_spec(&g("NVIDIA H100 PCIe")), None);
        assert_eq!(expected_nvlinks(&g("NVIDIA H800")), Some(8));
        assert_eq!(expected_nvlinks(&g("NVIDIA H100 80GB HBM3")), Some(18));
        assert!(nvlink_data().product.iter().all(|p| !p.source.is_empty()));
    }

    #[test]
    fn path_ranks_follow_ncclss_order() {
        assert!(label_rank("PIX") < label_rank("PXB"));
        assert!(label_rank("PHB") < label_rank("SYS"));
        assert_eq!(label_rank("NV18"), None);
    }
}
