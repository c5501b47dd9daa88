//! The catalogue of probes. A probe's `name` is also its file name in a capture directory
//! (`<name>.txt`, `<name>.status`, ...), so this list is a file-format contract: renaming a
//! probe breaks every capture and fixture that exists.

use std::path::PathBuf;

/// Fields asked of `nvidia-smi --query-gpu`. Every one exists in drivers from R450 on (checked
/// against the 590 and 610 field lists in the samples); an unknown field makes nvidia-smi fail
/// the whole query, which is why `compute_cap` (R510+) is not asked for.
pub const QUERY_GPU_FIELDS: &str = "index,name,pci.bus_id,uuid,driver_version,memory.total,\
mig.mode.current,pcie.link.gen.current,pcie.link.width.current";

/// Where a probe reads from. Commands never go through a shell.
#[derive(Debug, Clone)]
pub enum Source {
    /// A program (looked up on PATH) with its arguments.
    Command { program: String, args: Vec<String> },
    /// One file, read whole (e.g. a sysfs or procfs attribute).
    File(PathBuf),
    /// The RDMA ports under `root` (normally `/sys/class/infiniband`), printed in the form of
    /// `grep -H . <root>/*/ports/*/{state,phys_state,rate,link_layer}` plus one
    /// `<root>/<dev>/device/net:<netdev>` line per network interface of the device, so that a
    /// node without infiniband-diags still reports its ports.
    RdmaPorts(PathBuf),
    /// Network interfaces under `root` (normally `/sys/class/net`), as `grep -H .` lines over
    /// `<root>/<if>/{operstate,speed,type}` plus `<root>/<if>/device:present` for interfaces
    /// backed by a device (not virtual), for choosing `NCCL_SOCKET_IFNAME`.
    NetInterfaces(PathBuf),
    /// Files whose name starts with `prefix` in `dirs` (and in the directories of
    /// `LD_LIBRARY_PATH`), one path per line: how the installed NCCL library is found.
    LibrarySearch { prefix: String, dirs: Vec<PathBuf> },
    /// ECN enable bits per priority under `root` (normally `/sys/class/net`), as `grep -H .`
    /// lines over `<root>/<if>/ecn/roce_{np,rp}/enable/<0-7>` for the interfaces that have them
    /// (mlx5 RoCE netdevs).
    NetEcn(PathBuf),
    /// `program args... <netdev>` run once per network interface of the RDMA devices under
    /// `rdma_root` (`<rdma_root>/*/device/net/*`), without a shell, the outputs concatenated
    /// each after a `==> <netdev> <==` line; one deadline for all runs together.
    PerRdmaNetdev {
        program: String,
        args: Vec<String>,
        rdma_root: PathBuf,
    },
}

/// One named probe.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    pub name: &'static str,
    pub source: Source,
    /// What the probe is for, shown in `--help`-style listings and the README.
    pub purpose: &'static str,
}

impl ProbeSpec {
    pub fn command(name: &'static str, program: &str, args: &[&str], purpose: &'static str) -> Self {
        ProbeSpec {
            name,
            source: Source::Command {
                program: program.to_string(),
                args: args.iter().map(|a| a.to_string()).collect(),
            },
            purpose,
        }
    }

    pub fn file(name: &'static str, path: &str, purpose: &'static str) -> Self {
        ProbeSpec {
            name,
            source: Source::File(PathBuf::from(path)),
            purpose,
        }
    }

    /// A one-line description of what runs: the command line, or the path read.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Command { program, args } => {
                let mut s = program.clone();
                for a in args {
                    s.push(' ');
                    s.push_str(a);
                }
                s
            }
            Source::File(path) => format!("read {}", path.display()),
            Source::RdmaPorts(root) => format!("read {}/*/ports/*", root.display()),
            Source::NetInterfaces(root) => {
                format!("read {}/*/{{operstate,speed,type,device}}", root.display())
            }
            Source::LibrarySearch { prefix, dirs } => {
                let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
                format!("list {prefix}* in {} and LD_LIBRARY_PATH", dirs.join(":"))
            }
            Source::NetEcn(root) => format!("read {}/*/ecn/roce_{{np,rp}}/enable/*", root.display()),
            Source::PerRdmaNetdev {
                program,
                args,
                rdma_root,
            } => format!(
                "{program} {} <netdev> for each netdev in {}/*/device/net",
                args.join(" "),
                rdma_root.display()
            ),
        }
    }
}

/// Names of the probes, as constants so that parsers and commands refer to them without typos.
pub mod names {
    pub const QUERY_GPU: &str = "nvidia-smi-query-gpu";
    pub const TOPO: &str = "nvidia-smi-topo";
    pub const NVLINK: &str = "nvidia-smi-nvlink";
    pub const IBSTAT: &str = "ibstat";
    pub const LSMOD: &str = "lsmod";
    pub const OFED_INFO: &str = "ofed_info";
    pub const RDMA_PORTS: &str = "sysfs-rdma-ports";
    pub const NV_MEM: &str = "sysfs-memory-peers-nv_mem";
    pub const NV_MEM_NC: &str = "sysfs-memory-peers-nv_mem_nc";
    pub const PEERMEM_MODULE: &str = "sysfs-nvidia_peermem-version";
    pub const DRIVER_VERSION: &str = "proc-driver-nvidia-version";
    pub const KERNEL_RELEASE: &str = "proc-kernel-osrelease";
    pub const KERNEL_CMDLINE: &str = "proc-cmdline";
    pub const HOSTNAME: &str = "proc-hostname";
    pub const NCCL_LIBRARY: &str = "nccl-library";
    pub const NET_INTERFACES: &str = "sysfs-net-interfaces";
    pub const LSPCI: &str = "lspci-vvv";
    pub const SMI_Q: &str = "nvidia-smi-q";
    pub const MACHINE_ID: &str = "etc-machine-id";
    pub const DMI_SERIAL: &str = "dmi-product-serial";
    pub const DMI_UUID: &str = "dmi-product-uuid";
    pub const BOOT_ID: &str = "proc-boot-id";
    pub const NET_ECN: &str = "sysfs-net-ecn";
    pub const MLNX_QOS: &str = "mlnx_qos";
    /// `ldconfig -p`: the loader's cache, which decides the NCCL a program loads when
    /// `LD_LIBRARY_PATH` has none.
    pub const LDCONFIG: &str = "ldconfig-p";
    /// NCCL net and tuner plugins (`libnccl-net*.so`, `libnccl-tuner*.so`).
    pub const NCCL_PLUGINS: &str = "nccl-plugins";
    pub const DMI_SYS_VENDOR: &str = "dmi-sys-vendor";
    pub const DMI_PRODUCT_NAME: &str = "dmi-product-name";
    pub const DMI_BOARD_VENDOR: &str = "dmi-board-vendor";
    /// Probes that refine an answer (which NCCL loads, which platform this is) and whose
    /// absence is said by that answer itself ("not captured"), never as a gap in the node's
    /// facts: older captures lack them, and a missing file is itself the fact.
    pub const SUPPORTING: [&str; 5] = [
        LDCONFIG,
        NCCL_PLUGINS,
        DMI_SYS_VENDOR,
        DMI_PRODUCT_NAME,
        DMI_BOARD_VENDOR,
    ];
    /// The fabric QoS probes: they matter on nodes with RoCE ports only, and what they miss
    /// is said as info (the `rdma.lossless` check then skips), since many RoCE nodes run
    /// without MLNX_OFED's mlnx_qos.
    pub const QOS: [&str; 2] = [NET_ECN, MLNX_QOS];
    /// The identity probes: what they miss is reported once, as `node.identity`, never as a
    /// gap in the node's facts (the DMI files are readable by root only).
    pub const IDENTITY: [&str; 4] = [MACHINE_ID, DMI_SERIAL, DMI_UUID, BOOT_ID];
}

/// Every probe `detect` runs, in report order.
pub fn core_probes() -> Vec<ProbeSpec> {
    use names::*;
    let query = format!("--query-gpu={QUERY_GPU_FIELDS}");
    vec![
        ProbeSpec::command(
            QUERY_GPU,
            "nvidia-smi",
            &[&query, "--format=csv"],
            "GPUs: name, PCI bus id, memory, MIG mode, driver",
        ),
        ProbeSpec::command(
            TOPO,
            "nvidia-smi",
            &["topo", "-m"],
            "GPU-GPU and GPU-NIC connection matrix, CPU/NUMA affinity",
        ),
        ProbeSpec::command(
            NVLINK,
            "nvidia-smi",
            &["nvlink", "--status"],
            "NVLink links per GPU and their speed",
        ),
        ProbeSpec::command(
            IBSTAT,
            "ibstat",
            &[],
            "RDMA adapters and ports: state, rate, link layer",
        ),
        ProbeSpec::command(
            LSMOD,
            "lsmod",
            &[],
            "loaded kernel modules (nvidia_peermem, mlx5_ib, ...)",
        ),
        ProbeSpec::command(OFED_INFO, "ofed_info", &["-s"], "MLNX_OFED / DOCA-OFED version"),
        ProbeSpec {
            name: RDMA_PORTS,
            source: Source::RdmaPorts(PathBuf::from("/sys/class/infiniband")),
            purpose: "RDMA ports from sysfs (works without infiniband-diags)",
        },
        ProbeSpec {
            name: NET_INTERFACES,
            source: Source::NetInterfaces(PathBuf::from("/sys/class/net")),
            purpose: "IP interfaces: state, speed, physical or virtual (for NCCL_SOCKET_IFNAME)",
        },
        ProbeSpec::file(
            NV_MEM,
            "/sys/kernel/mm/memory_peers/nv_mem/version",
            "GPUDirect peer-memory client registered (legacy nv_peer_mem / nvidia_peermem)",
        ),
        ProbeSpec::file(
            NV_MEM_NC,
            "/sys/kernel/mm/memory_peers/nv_mem_nc/version",
            "GPUDirect peer-memory client, non-coherent variant",
        ),
        ProbeSpec::file(
            PEERMEM_MODULE,
            "/sys/module/nvidia_peermem/version",
            "nvidia_peermem module version",
        ),
        ProbeSpec::file(
            DRIVER_VERSION,
            "/proc/driver/nvidia/version",
            "NVIDIA kernel driver version and flavour (open or proprietary)",
        ),
        ProbeSpec::file(
            KERNEL_RELEASE,
            "/proc/sys/kernel/osrelease",
            "kernel release (DMA-BUF needs 5.12+)",
        ),
        ProbeSpec::file(
            KERNEL_CMDLINE,
            "/proc/cmdline",
            "kernel command line (IOMMU mode)",
        ),
        ProbeSpec::file(HOSTNAME, "/proc/sys/kernel/hostname", "host name"),
        ProbeSpec::file(
            MACHINE_ID,
            "/etc/machine-id",
            "machine id (host names are reused)",
        ),
        ProbeSpec::file(
            DMI_SERIAL,
            "/sys/class/dmi/id/product_serial",
            "DMI product serial (root only)",
        ),
        ProbeSpec::file(
            DMI_UUID,
            "/sys/class/dmi/id/product_uuid",
            "DMI product UUID (root only)",
        ),
        ProbeSpec::file(
            BOOT_ID,
            "/proc/sys/kernel/random/boot_id",
            "boot id (changes at every boot)",
        ),
        ProbeSpec {
            name: NCCL_LIBRARY,
            source: Source::LibrarySearch {
                prefix: "libnccl.so".to_string(),
                dirs: [
                    "/usr/lib/x86_64-linux-gnu",
                    "/usr/lib/aarch64-linux-gnu",
                    "/usr/lib64",
                    "/usr/lib",
                    "/usr/local/lib",
                    "/usr/local/cuda/lib64",
                    "/usr/local/nccl/lib",
                    "/opt/nccl/lib",
                    // Containers: GKE's driver mount, GPUDirect-TCPX images, conda base.
                    "/usr/local/nvidia/lib64",
                    "/usr/local/tcpx/lib64",
                    "/opt/conda/lib",
                ]
                .iter()
                .map(PathBuf::from)
                .collect(),
            },
            purpose: "installed NCCL library files, Python wheels' and PyTorch's included (version from the file name, the wheel metadata or the library's embedded version string)",
        },
        ProbeSpec::command(
            LDCONFIG,
            "ldconfig",
            &["-p"],
            "the loader's cache (/etc/ld.so.cache): the libnccl.so.2 a program loads when LD_LIBRARY_PATH has none",
        ),
        ProbeSpec {
            name: NCCL_PLUGINS,
            source: Source::LibrarySearch {
                prefix: "libnccl-".to_string(),
                dirs: [
                    "/usr/lib/x86_64-linux-gnu",
                    "/usr/lib/aarch64-linux-gnu",
                    "/usr/lib64",
                    "/usr/lib",
                    "/usr/local/lib",
                    "/usr/local/nvidia/lib64",
                    // GPUDirect-TCPX/TCPXO (GKE's and the A3 images' mounts).
                    "/usr/local/tcpx/lib64",
                    "/var/lib/tcpx/lib64",
                    "/var/lib/tcpxo/lib64",
                    // aws-ofi-nccl (AWS DLAMI and EFA installer).
                    "/opt/amazon/ofi-nccl/lib",
                    "/opt/amazon/ofi-nccl/lib64",
                    "/opt/aws-ofi-nccl/lib",
                    // NVIDIA HPC-X's SHARP plugin (Azure HPC images, DGX).
                    "/opt/hpcx/nccl_rdma_sharp_plugin/lib",
                    "/usr/local/nccl-rdma-sharp-plugins/lib",
                ]
                .iter()
                .map(PathBuf::from)
                .collect(),
            },
            purpose: "NCCL net and tuner plugins (libnccl-net*.so, libnccl-tuner*.so) in the library search and the plugins' usual folders",
        },
        ProbeSpec::file(
            DMI_SYS_VENDOR,
            "/sys/class/dmi/id/sys_vendor",
            "system vendor (cloud platform: Microsoft Corporation, Amazon EC2, Google)",
        ),
        ProbeSpec::file(
            DMI_PRODUCT_NAME,
            "/sys/class/dmi/id/product_name",
            "product name (cloud machine family where the provider sets it)",
        ),
        ProbeSpec::file(DMI_BOARD_VENDOR, "/sys/class/dmi/id/board_vendor", "board vendor"),
        ProbeSpec::command(
            SMI_Q,
            "nvidia-smi",
            &["-q"],
            "GPU architecture and NVLink fabric registration (Fabric Manager on NVSwitch systems)",
        ),
        ProbeSpec {
            name: NET_ECN,
            source: Source::NetEcn(PathBuf::from("/sys/class/net")),
            purpose: "RoCE ECN (DCQCN) notification and reaction points enabled per priority",
        },
        ProbeSpec {
            name: MLNX_QOS,
            source: Source::PerRdmaNetdev {
                program: "mlnx_qos".to_string(),
                args: vec!["-i".to_string()],
                rdma_root: PathBuf::from("/sys/class/infiniband"),
            },
            purpose: "RoCE lossless setup per RDMA netdev: PFC priorities, trust mode, DSCP and TC mapping",
        },
        ProbeSpec::command(
            LSPCI,
            "lspci",
            &["-vvv"],
            "PCI bridges and their ACS control (readable as root only)",
        ),
    ]
}

/// Looks a probe up by name.
pub fn find(name: &str) -> Option<ProbeSpec> {
    core_probes().into_iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_are_unique_and_file_safe() {
        let probes = core_probes();
        let mut names: Vec<&str> = probes.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), probes.len());
        for n in names {
            assert!(
                n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "{n}"
            );
        }
    }

    #[test]
    fn the_six_contract_probes_keep_their_names() {
        for n in [
            "nvidia-smi-query-gpu",
            "nvidia-smi-topo",
            "nvidia-smi-nvlink",
            "ibstat",
            "lsmod",
            "ofed_info",
        ] {
            assert!(find(n).is_some(), "{n}");
        }
    }
}
