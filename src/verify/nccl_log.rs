//! The "NCCL run evidence" group: what an `NCCL_DEBUG=INFO` log says NCCL actually did (which
//! transports, whether GPUDirect RDMA was used, warnings), judged against the node.

use super::{Check, Status};
use crate::node::NodeReport;
use crate::parse::nccl_log::{NcclLog, Transport};

/// WARN texts that mean the fabric itself failed, not a configuration choice.
const FABRIC_ERRORS: [&str; 4] = [
    "Got completion",
    "completion with error",
    "IB error",
    "ibv_poll_cq",
];

pub fn checks(file: &str, log: &NcclLog, node: &NodeReport) -> Vec<Check> {
    let mut out = Vec::new();
    if log.nccl_lines == 0 {
        out.push(
            Check::new(
                "nccl-log.present",
                Status::Fail,
                file,
                "no `NCCL INFO` or `NCCL WARN` line in the log",
            )
            .fix("rerun the job with NCCL_DEBUG=INFO (and NCCL_DEBUG_SUBSYS=INIT,NET) and pass its output"),
        );
        return out;
    }
    out.push(match (log.versions.as_slice(), node.versions.nccl.as_deref()) {
        ([], _) => Check::new(
            "nccl-log.version",
            Status::Skip,
            file,
            "the log does not announce the NCCL version",
        ),
        ([v], Some(lib)) if !v.starts_with(lib) => Check::new(
            "nccl-log.version",
            Status::Warn,
            file,
            format!("the run used NCCL {v}; the node's library is {lib}"),
        )
        .fix("the job bundles its own NCCL (e.g. a Python wheel): tune for the version the log shows"),
        (vs, _) if vs.len() > 1 => Check::new(
            "nccl-log.version",
            Status::Warn,
            file,
            format!("several NCCL versions in one run: {}", vs.join(", ")),
        )
        .fix("ranks loaded different NCCL libraries: align the containers or environments"),
        ([v, ..], _) => Check::new("nccl-log.version", Status::Pass, file, format!("NCCL {v}")),
    });

    let sockets = log
        .channels
        .iter()
        .filter(|c| c.transport == Transport::NetSocket)
        .count();
    let socket_net = log.networks.iter().any(|n| n == "Socket");
    let rdma_here = node.active_nics().next().is_some();
    out.push(if sockets > 0 || socket_net {
        let first = log.channels.iter().find(|c| c.transport == Transport::NetSocket).map_or(0, |c| c.line);
        Check::new("nccl-log.network", if rdma_here { Status::Fail } else { Status::Warn }, file, format!("inter-node traffic went over sockets ({sockets} channels)"))
            .evidence(format!("first socket channel at line {first}; networks: {}", log.networks.join(", ")))
            .fix("NCCL did not find a usable RDMA device: check NCCL_IB_DISABLE, NCCL_IB_HCA and that libibverbs loads in the container")
    } else if log.networks.is_empty() && !log.channels.iter().any(|c| matches!(c.transport, Transport::NetIb { .. } | Transport::NetPlugin { .. })) {
        Check::new("nccl-log.network", Status::Skip, file, "no network channel in the log (single-node run, or NET lines not logged)")
    } else {
        Check::new("nccl-log.network", Status::Pass, file, format!("network: {}", if log.networks.is_empty() { "IB".into() } else { log.networks.join(", ") }))
    });

    // GPUDirect RDMA per network device: every NET channel should carry /GDRDMA.
    let mut devs: Vec<(String, usize, usize, bool)> = Vec::new(); // (name, with gdr, without, native IB)
    for c in &log.channels {
        let (key, gdr, native) = match &c.transport {
            Transport::NetIb { dev, gdr } => {
                let name = dev
                    .and_then(|d| log.ib_devices.get(d as usize).cloned())
                    .unwrap_or_else(|| format!("NET/IB/{}", dev.map_or("?".into(), |d| d.to_string())));
                (name, *gdr, true)
            }
            Transport::NetPlugin { name, gdr } => (format!("NET/{name}"), *gdr, false),
            _ => continue,
        };
        match devs.iter_mut().find(|d| d.0 == key) {
            Some(d) => {
                if gdr {
                    d.1 += 1
                } else {
                    d.2 += 1
                }
            }
            None => devs.push((key, usize::from(gdr), usize::from(!gdr), native)),
        }
    }
    if devs.is_empty() {
        out.push(Check::new(
            "nccl-log.gdrdma",
            Status::Skip,
            file,
            "no RDMA network channel in the log",
        ));
    }
    for (name, with, without, native) in devs {
        out.push(if without == 0 {
            Check::new("nccl-log.gdrdma", Status::Pass, &name, format!("GPUDirect RDMA used on all {with} channels"))
        } else {
            Check::new("nccl-log.gdrdma", if native { Status::Fail } else { Status::Warn }, &name, format!("GPUDirect RDMA not used on {without} of {} channels", with + without))
                .evidence(log.gdr_disabled.first().cloned().unwrap_or_else(|| "channels lack the /GDRDMA tag".into()))
                .fix("check `nccltune verify` gpudirect.path and pcie.gpu-nic-distance for this NIC; NCCL_NET_GDR_LEVEL limits GDR by PCIe distance")
        });
    }

    let fabric: Vec<&(usize, String)> = log
        .warnings
        .iter()
        .filter(|(_, w)| FABRIC_ERRORS.iter().any(|e| w.contains(e)))
        .collect();
    out.push(if let Some((line, w)) = fabric.first() {
        Check::new("nccl-log.fabric-errors", Status::Fail, file, format!("{} RDMA completion error(s), first at line {line}", fabric.len()))
            .evidence(w.clone())
            .fix("a link or switch error: check the port's error counters (`perfquery -x`, `mlxlink`), cables and the peer node")
    } else {
        Check::new("nccl-log.fabric-errors", Status::Pass, file, "no RDMA completion error")
    });
    out.push(
        match log
            .warnings
            .iter()
            .find(|(_, w)| !FABRIC_ERRORS.iter().any(|e| w.contains(e)))
        {
            Some((line, w)) => Check::new(
                "nccl-log.warnings",
                Status::Warn,
                file,
                format!("{} NCCL WARN line(s), first at line {line}", log.warnings.len()),
            )
            .evidence(w.clone())
            .fix("read the WARN lines: each names what NCCL could not do"),
            None => Check::new("nccl-log.warnings", Status::Pass, file, "no other NCCL WARN line"),
        },
    );
    out
}
