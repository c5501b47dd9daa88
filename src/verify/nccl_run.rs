//! "NCCL run evidence": what an `NCCL_DEBUG=INFO` log says NCCL actually did: version,
//! transports per channel, networks and NICs, GPUDirect RDMA use, WARN lines, IB errors.

use super::{Check, Context, Status};
use crate::finding::NcclRunCode;
use crate::parse::nccl_log::{NcclLog, is_ib_completion_error};
use crate::parse::version_key;

pub fn checks(cx: &Context) -> Vec<Check> {
    let Some((name, log)) = &cx.opts.nccl_log else {
        return Vec::new();
    };
    if log.nccl_lines == 0 {
        return vec![
            Check::at(
                NcclRunCode::Log,
                Status::Warn,
                name.clone(),
                "no NCCL debug lines in the log",
            )
            .evidence(format!(
                "{name}: no `NCCL INFO`, `NCCL WARN` or `NCCL version` line"
            ))
            .fix("rerun with NCCL_DEBUG=INFO (NCCL docs, Environment Variables, NCCL_DEBUG) and pass that output"),
        ];
    }
    let mut v = vec![version(cx, name, log), transports(name, log)];
    v.push(sockets(cx, name, log));
    v.extend(gdr(name, log));
    v.push(nics(name, log));
    v.extend(nvls(cx, name, log));
    v.push(completion_errors(name, log));
    v.push(warnings(name, log));
    v.push(failures(name, log));
    v
}

fn version(cx: &Context, name: &str, log: &NcclLog) -> Check {
    let id = NcclRunCode::Version;
    let Some(ver) = &log.version else {
        return Check::at(
            id,
            Status::Skip,
            "log",
            "no `NCCL version` line in the log (rank 0 prints it at init)",
        )
        .evidence(format!("{name}: {} NCCL lines", log.nccl_lines));
    };
    let run = version_key(ver);
    match cx.node.versions.nccl.as_deref() {
        // Jobs often bring their own NCCL (containers, framework wheels): worth saying, not a fault.
        Some(node) if version_key(node) != run => Check::at(
            id,
            Status::Pass,
            "log",
            format!("NCCL {ver} (this node's libnccl is {node}: the job brought its own)"),
        )
        .evidence(format!("{name}: NCCL version {ver}; node libnccl {node}")),
        _ => Check::at(id, Status::Pass, "log", format!("NCCL {ver}"))
            .evidence(format!("{name}: NCCL version {ver}")),
    }
}

fn transports(name: &str, log: &NcclLog) -> Check {
    let id = NcclRunCode::Transports;
    let counts = log.transport_counts();
    if counts.is_empty() {
        return Check::at(
            id,
            Status::Skip,
            "log",
            "no `Channel ... via ...` lines: NCCL prints them at communicator setup (INIT subsystem, on by default); an excerpt may have cut them",
        )
        .evidence(format!("{name}: {} NCCL lines", log.nccl_lines));
    }
    let list = counts
        .iter()
        .map(|(t, n)| format!("{t} x{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    Check::at(id, Status::Pass, "log", format!("channels use {list}"))
        .evidence(format!("{name}: {} channel lines", log.channels.len()))
}

fn sockets(cx: &Context, name: &str, log: &NcclLog) -> Check {
    let id = NcclRunCode::NetSocket;
    let socket: Vec<usize> = log
        .channels
        .iter()
        .filter(|c| c.net().is_some_and(|n| n.net == "Socket"))
        .map(|c| c.line)
        .collect();
    let rdma_here = cx.node.active_nics().next().is_some();
    let nets: Vec<String> =
        log.channels
            .iter()
            .filter_map(|c| c.net().map(|n| n.net))
            .fold(Vec::new(), |mut v, n| {
                if !v.contains(&n) {
                    v.push(n);
                }
                v
            });
    let fix = "NCCL fell back to TCP: check that NCCL_IB_DISABLE/NCCL_NET are unset, that libibverbs is installed in the job's image, and that the RDMA devices are visible to the job (`NCCL_DEBUG_SUBSYS=INIT,NET` shows why)";
    if !socket.is_empty() {
        let status = if rdma_here { Status::Fail } else { Status::Warn };
        return Check::at(
            id,
            status,
            "log",
            format!(
                "inter-node traffic went over sockets on {} channel lines",
                socket.len()
            ),
        )
        .evidence(format!("{name}: lines {}", first_lines(&socket)))
        .fix(fix);
    }
    if !nets.is_empty() {
        return Check::at(
            id,
            Status::Pass,
            "log",
            format!("inter-node traffic used {}", nets.join(", ")),
        )
        .evidence(format!("{name}: network channels"));
    }
    if log.networks.iter().any(|n| n == "Socket") {
        let status = if rdma_here { Status::Warn } else { Status::Pass };
        return Check::at(
            id,
            status,
            "log",
            "NCCL selected the Socket network; no inter-node channel in the log",
        )
        .evidence(format!("{name}: `Using network Socket`"))
        .fix(fix);
    }
    Check::at(
        id,
        Status::Skip,
        "log",
        "no network channel in the log (a single-node run, or the channel lines were filtered out)",
    )
    .evidence(format!("{name}: networks [{}]", log.networks.join(", ")))
}

fn first_lines(lines: &[usize]) -> String {
    let mut s: Vec<String> = lines.iter().take(5).map(usize::to_string).collect();
    if lines.len() > 5 {
        s.push(format!("... ({} in all)", lines.len()));
    }
    s.join(", ")
}

/// GPUDirect RDMA use per network device, from the channel tags (`NET/IB/<dev>/GDRDMA`,
/// NCCL 2.30.7 src/transport/net_ib.cc) and from the `GPU Direct RDMA Enabled|Disabled for HCA` lines.
fn gdr(name: &str, log: &NcclLog) -> Vec<Check> {
    let id = NcclRunCode::Gdr;
    let mut devices: Vec<(String, u32, usize, usize, Vec<usize>)> = Vec::new();
    for c in &log.channels {
        let Some(n) = c.net() else { continue };
        if n.net == "Socket" {
            continue; // sockets never use GPUDirect RDMA; reported by nccl.net-socket
        }
        let pos = match devices.iter().position(|d| d.0 == n.net && d.1 == n.device) {
            Some(p) => p,
            None => {
                devices.push((n.net.clone(), n.device, 0, 0, Vec::new()));
                devices.len() - 1
            }
        };
        let d = &mut devices[pos];
        d.2 += 1;
        if n.gdr {
            d.3 += 1;
        } else {
            d.4.push(c.line);
        }
    }
    let mut v = Vec::new();
    for (net, dev, total, with_gdr, without) in devices {
        let hca = if net == "IB" || net.starts_with("IBext") {
            log.ib_device_name(dev).map(str::to_string)
        } else {
            None
        };
        let subject = match &hca {
            Some(h) => format!("NET/{net}/{dev} ({h})"),
            None => format!("NET/{net}/{dev}"),
        };
        let what = hca.clone().unwrap_or_else(|| format!("NET/{net}/{dev}"));
        let ev = format!("{name}: {with_gdr} of {total} channel lines tagged GDRDMA");
        v.push(if with_gdr == total {
            Check::at(id, Status::Pass, subject, format!("GPUDirect RDMA used on {what}")).evidence(ev)
        } else {
            // The internal IB transport is where GDR is expected; a plugin may not offer it.
            let status = if net == "IB" { Status::Fail } else { Status::Warn };
            Check::at(id, status, subject, format!("GPUDirect RDMA not used on {what} ({} of {total} channels without GDRDMA)", total - with_gdr))
                .evidence(format!("{ev}; lines {}", first_lines(&without)))
                .fix("see gpudirect.path and pcie.gpu-nic-distance: NCCL needs a peer-memory client or DMA-BUF, and the NIC within NCCL_NET_GDR_LEVEL of the GPU (default P2C in NCCL 2.30: PXB, plus the GPU's own CPU on Grace nodes)")
        });
    }
    // Every rank prints its own line; one check per HCA, failing if any rank had GDR off.
    let mut hcas: Vec<(&str, bool)> = Vec::new();
    for (hca, enabled) in &log.gdr_hcas {
        match hcas.iter_mut().find(|(h, _)| h == hca) {
            Some(e) => e.1 &= *enabled,
            None => hcas.push((hca, *enabled)),
        }
    }
    for (hca, enabled) in hcas {
        v.push(if enabled {
            Check::at(
                NcclRunCode::GdrHca,
                Status::Pass,
                hca,
                "NCCL reports GPU Direct RDMA Enabled",
            )
            .evidence(name.to_string())
        } else {
            Check::at(
                NcclRunCode::GdrHca,
                Status::Fail,
                hca,
                "NCCL reports GPU Direct RDMA Disabled for this HCA",
            )
            .evidence(format!("{name}: `GPU Direct RDMA Disabled for HCA ... '{hca}'`"))
            .fix("load nvidia_peermem or use the DMA-BUF path (NCCL docs, Environment Variables, NCCL_DMABUF_ENABLE)")
        });
    }
    v
}

fn nics(name: &str, log: &NcclLog) -> Check {
    let id = NcclRunCode::Nics;
    if log.ib_devices.is_empty() {
        return Check::at(
            id,
            Status::Skip,
            "log",
            "no `NET/IB : Using ...` line (IB transport not loaded, or a plugin network)",
        )
        .evidence(format!("{name}: networks [{}]", log.networks.join(", ")));
    }
    let list = log
        .ib_devices
        .iter()
        .map(|d| format!("[{}]{}:{}/{}", d.index, d.name, d.port, d.kind))
        .collect::<Vec<_>>()
        .join(" ");
    Check::at(
        id,
        Status::Pass,
        "log",
        format!(
            "NCCL's IB transport found {} port(s): {list}",
            log.ib_devices.len()
        ),
    )
    .evidence(format!("{name}: NET/IB : Using ..."))
}

/// `NVLS multicast support is (not) available` (NCCL docs, Environment Variables, NCCL_DEBUG) on an NVSwitch node.
fn nvls(cx: &Context, name: &str, log: &NcclLog) -> Option<Check> {
    let id = NcclRunCode::Nvls;
    let available = log.nvls_multicast?;
    let ev = format!(
        "{name}: `NVLS multicast support is {}available`",
        if available { "" } else { "not " }
    );
    Some(if available {
        Check::at(
            id,
            Status::Pass,
            "log",
            "NVLS multicast available: NCCL can use NVLink SHARP",
        )
        .evidence(ev)
    } else if cx.node.nvswitch.present == Some(true) {
        Check::at(id, Status::Warn, "log", "NCCL reports NVLS multicast not available on an NVSwitch node: no NVLink SHARP")
            .evidence(ev)
            .fix("check that nvidia-fabricmanager runs and matches the driver version, and that the driver is CUDA 12.1+ (NCCL 2.30.7 src/transport/nvls.cc needs multicast support, CUDA 12.1+)")
    } else {
        Check::at(
            id,
            Status::Pass,
            "log",
            "NVLS multicast not available (expected without NVSwitch)",
        )
        .evidence(ev)
    })
}

fn completion_errors(name: &str, log: &NcclLog) -> Check {
    let id = NcclRunCode::IbCompletion;
    let errs: Vec<&crate::parse::nccl_log::LogLine> = log
        .warnings
        .iter()
        .filter(|w| is_ib_completion_error(&w.text))
        .collect();
    match errs.first() {
        None => Check::at(id, Status::Pass, "log", "no IB completion error").evidence(format!("{name}: {} WARN lines", log.warnings.len())),
        Some(first) => Check::at(id, Status::Fail, "log", format!("{} IB completion error(s): {}", errs.len(), first.text))
            .evidence(format!("{name}: lines {}", first_lines(&errs.iter().map(|e| e.line).collect::<Vec<_>>())))
            .fix("a work completion with an error status means the fabric dropped the connection: check the port counters (`perfquery -x`), cables, the peer node, and NCCL_IB_TIMEOUT/RETRY_CNT only after that"),
    }
}

fn warnings(name: &str, log: &NcclLog) -> Check {
    let id = NcclRunCode::Warnings;
    let other: Vec<&crate::parse::nccl_log::LogLine> = log
        .warnings
        .iter()
        .filter(|w| !is_ib_completion_error(&w.text))
        .collect();
    match other.first() {
        None => Check::at(id, Status::Pass, "log", "no NCCL WARN line").evidence(name.to_string()),
        Some(first) => Check::at(
            id,
            Status::Warn,
            "log",
            format!("{} NCCL WARN line(s), first: {}", other.len(), first.text),
        )
        .evidence(format!(
            "{name}: lines {}",
            first_lines(&other.iter().map(|e| e.line).collect::<Vec<_>>())
        ))
        .fix("read the WARN lines: each names the failing call (shared memory, libibverbs, topology)"),
    }
}

fn failures(name: &str, log: &NcclLog) -> Check {
    let id = NcclRunCode::Failures;
    match log.failures.first() {
        None => Check::at(id, Status::Pass, "log", "no `NCCL failure` line").evidence(name.to_string()),
        Some(first) => Check::at(
            id,
            Status::Fail,
            "log",
            format!(
                "the run reported {} NCCL failure(s): {}",
                log.failures.len(),
                first.text
            ),
        )
        .evidence(format!(
            "{name}: lines {}",
            first_lines(&log.failures.iter().map(|e| e.line).collect::<Vec<_>>())
        ))
        .fix("the WARN lines before the failure name its cause"),
    }
}
