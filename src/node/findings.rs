//! Judges the node report's facts once, for every command: probes that did not answer cleanly,
//! NVLinks that are down, RDMA ports that are not active, no GPUDirect RDMA path. The codes are
//! the ones `verify` uses for the same faults (`node.probes`, `gpu.nvlink-links`,
//! `rdma.port-state`, `gpudirect.path`), so `detect`, `configure` and `verify` say the same
//! thing; `verify` adds the judgements that need expectations.

use super::*;
use crate::finding::{Finding, GpuCode, GpudirectCode, Level, NodeCode, RdmaCode};
use crate::probe::{self, Source, names};

fn is_command(name: &str) -> bool {
    probe::find(name).is_some_and(|p| matches!(p.source, Source::Command { .. }))
}

/// Probes whose absence only matters on a node with RDMA devices.
const RDMA_TOOLS: [&str; 2] = [names::IBSTAT, names::OFED_INFO];

/// Every finding about the node's facts.
pub fn node(r: &NodeReport) -> Vec<Finding> {
    let mut v = probes(r);
    v.extend(identity(r));
    if let Some((found, shown)) = r.topo_nics_truncated {
        v.push(
            Finding::new(
                NodeCode::TopoNicsTruncated,
                Level::Info,
                format!("nvidia-smi topo -m found {found} NICs but shows only {shown}; GPU-NIC affinity covers the shown ones"),
            )
            .subject(names::TOPO)
            .observed(shown)
            .expected(found)
            .probe(names::TOPO),
        );
    }
    v.extend(nvlink(r));
    v.extend(mig(r));
    v.extend(ports(r));
    v.extend(gpudirect(r));
    v
}

/// One finding per probe that did not answer cleanly, naming the probe and what happened.
pub fn probes(r: &NodeReport) -> Vec<Finding> {
    let no_rdma = crate::hw::no_rdma_devices(r);
    // EFA devices have no use for infiniband-diags or MLNX_OFED: their facts come from sysfs.
    let efa = crate::hw::platform::efa_devices(r);
    let efa_only = !r.nics.is_empty() && efa.len() == r.nics.len() && r.probe_ok(names::RDMA_PORTS);
    let roce = r.nics.iter().any(Nic::is_roce);
    let mut v = Vec::new();
    for p in r
        .probes
        .iter()
        .filter(|p| !names::IDENTITY.contains(&p.name.as_str()))
        // The QoS probes say something about RoCE ports only.
        .filter(|p| roce || !names::QOS.contains(&p.name.as_str()))
    {
        let at = |level: Level, what: String| {
            Finding::at(NodeCode::Probes, level, &p.name, format!("{}: {what}", p.name))
                .observed(p.status.to_string())
                .probe(&p.name)
        };
        let first_err = p.stderr.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
        match &p.status {
            ProbeStatus::Ok => {}
            ProbeStatus::NotFound | ProbeStatus::NotCaptured if names::SUPPORTING.contains(&p.name.as_str()) => {}
            // A missing file is a fact (no peer-memory client, no NVIDIA driver), not a failure.
            ProbeStatus::NotFound if !is_command(&p.name) => {}
            ProbeStatus::NotFound if efa_only && RDMA_TOOLS.contains(&p.name.as_str()) => v.push(at(
                Level::Info,
                format!("not installed; the node's RDMA devices are EFA ({} of them), read from sysfs, which needs neither infiniband-diags nor MLNX_OFED", efa.len()),
            )),
            ProbeStatus::NotFound if no_rdma && RDMA_TOOLS.contains(&p.name.as_str()) => v.push(at(
                Level::Info,
                "not installed, and the node has no RDMA devices (/sys/class/infiniband is absent)".into(),
            )),
            // Lossless RoCE is often set up by the fabric team without MLNX_OFED on the
            // host, and older captures lack the probes: unknown QoS is said, not warned.
            ProbeStatus::NotFound | ProbeStatus::NotCaptured if names::QOS.contains(&p.name.as_str()) => v.push(
                at(
                    Level::Info,
                    format!("{}; the RoCE ports' PFC/ECN setup is unknown and `rdma.lossless` is skipped", if p.status == ProbeStatus::NotFound { "not available on this node" } else { "absent from the replayed capture" }),
                )
                .fix("install MLNX_OFED's mlnx_qos (or capture again with a current `nccltune detect --capture DIR`) to have PFC and ECN checked"),
            ),
            ProbeStatus::NotFound => v.push(
                at(Level::Warn, "program not installed; its facts are unknown".into())
                    .fix(format!("install the tool that provides `{}` or run where it is available", p.command)),
            ),
            ProbeStatus::Timeout => v.push(
                at(Level::Warn, "no answer before the deadline; killed".into())
                    .fix("a hung driver or fabric query often means a sick node: check `dmesg`; raise --timeout only if the node is just slow"),
            ),
            // A tool that crashed part-way is said once, below, with what was kept.
            ProbeStatus::Exit(_) if p.partial.is_some() => {}
            ProbeStatus::Exit(code) => v.push(
                at(Level::Warn, format!("exited with status {code}{first_err}"))
                    .fix("run the command by hand on the node to see why it fails"),
            ),
            ProbeStatus::NotCaptured => v.push(
                at(
                    Level::Warn,
                    "absent from the replayed capture (neither .txt nor .status): its facts are unknown; this says nothing about the node's tools".into(),
                )
                .fix("capture again with a current `nccltune detect --capture DIR`"),
            ),
        }
        if let Some(problem) = &p.problem {
            v.push(
                at(Level::Warn, format!("output not understood: {problem}"))
                    .observed("unparseable")
                    .fix("its facts are unknown: send the capture (`nccltune detect --capture DIR`) with a bug report"),
            );
        }
        if let Some(partial) = &p.partial {
            v.push(
                at(
                    Level::Warn,
                    format!("{partial}; the facts printed before were kept, the rest are unknown"),
                )
                .observed("partial")
                .fix(
                    "run the tool by hand; a tool that crashes part-way often means a sick adapter or driver",
                ),
            );
        }
        if p.truncated {
            v.push(
                at(
                    Level::Warn,
                    "output beyond the size cap was dropped; facts past it are unknown".into(),
                )
                .observed("truncated"),
            );
        }
        for w in &p.warnings {
            v.push(
                Finding::at(
                    RdmaCode::IbstatWarning,
                    Level::Info,
                    &p.name,
                    format!("{}: {w}", p.name),
                )
                .probe(&p.name),
            );
        }
    }
    v
}

/// One info finding when part of the identity block could not be read (live: the DMI files are
/// root-only; replay: an older capture).
fn identity(r: &NodeReport) -> Option<Finding> {
    let missing: Vec<&str> = names::IDENTITY
        .iter()
        .copied()
        .filter(|n| !r.probe_ok(n))
        .collect();
    if missing.is_empty() {
        return None;
    }
    Some(
        Finding::new(
            NodeCode::Identity,
            Level::Info,
            format!("identity incomplete: {} not read", missing.join(", ")),
        )
        .observed(&missing)
        .fix("run as root to read the DMI serial and UUID; host names alone are reused across machines"),
    )
}

fn nvlink(r: &NodeReport) -> Vec<Finding> {
    r.nvlink
        .iter()
        .filter(|g| {
            !g.mig
                && g.active_links > 0
                && (g.inactive_links > 0 || g.expected_links.is_some_and(|e| g.active_links < e))
        })
        .map(|g| {
            let total = g
                .expected_links
                .unwrap_or(0)
                .max(g.active_links + g.inactive_links);
            Finding::at(
                GpuCode::NvlinkLinks,
                Level::Warn,
                format!("GPU{}", g.gpu),
                format!(
                    "GPU {}: {} of {total} NVLinks inactive",
                    g.gpu,
                    total - g.active_links
                ),
            )
            .observed(g.active_links)
            .expected(total)
            .probe(names::NVLINK)
            .fix("reset the GPU or check the NVLink/NVSwitch hardware (nvidia-smi nvlink -e)")
        })
        .collect()
}

/// What an inactive port state most likely means, as a fix.
pub fn port_fix(state: Option<&PortState>) -> &'static str {
    match state {
        Some(PortState::Initializing) => {
            "the port is up but no subnet manager has configured it: check opensm / the fabric manager"
        }
        Some(PortState::Down) => "check the cable, the switch port, and `ibstat`/`ip link` for the device",
        _ => "check the port with ibstat",
    }
}

fn ports(r: &NodeReport) -> Vec<Finding> {
    let inferred = r
        .nics
        .iter()
        .filter(|n| n.link_layer_inferred || (n.is_active() && n.link_layer.is_none()))
        .map(|n| {
        Finding::at(
            RdmaCode::LinkLayer,
            Level::Info,
            n.id(),
            format!("{}: link layer inferred as InfiniBand: ibstat printed no `Link layer` line and sysfs did not say (older ibstat, from before RoCE, lists InfiniBand ports only)", n.id()),
        )
        .observed("InfiniBand")
        .probe(names::IBSTAT)
    });
    inferred
        .chain(r.nics.iter().filter(|n| !n.is_active()).map(|n| {
            let state = n.state.as_ref().map_or("unknown", |s| s.as_str());
            Finding::at(
                RdmaCode::PortState,
                Level::Warn,
                n.id(),
                format!("{} is {state}", n.id()),
            )
            .observed(state)
            .expected("Active")
            .probe(if n.source.contains("ibstat") {
                names::IBSTAT
            } else {
                names::RDMA_PORTS
            })
            .fix(port_fix(n.state.as_ref()))
        }))
        .collect()
}

fn gpudirect(r: &NodeReport) -> Option<Finding> {
    let has_rdma = r.nics.iter().any(Nic::is_active);
    (has_rdma && !r.gpus.is_empty() && r.gpudirect.path == GdrPath::None).then(|| {
        Finding::new(
            GpudirectCode::Path,
            Level::Warn,
            "RDMA ports and GPUs present, but neither a peer-memory client nor DMA-BUF is available: NCCL will stage network traffic through host memory",
        )
        .observed(r.gpudirect.path.as_str())
        .evidence(r.gpudirect.evidence.clone())
        .fix("load nvidia_peermem (`modprobe nvidia-peermem`) or use the open NVIDIA kernel module on a 5.12+ kernel")
    })
}

/// GPUs in MIG mode: said once, because it changes what NCCL can do on the node.
fn mig(r: &NodeReport) -> Option<Finding> {
    let on: Vec<String> = r
        .gpus
        .iter()
        .filter(|g| g.mig_mode.as_deref() == Some("Enabled"))
        .map(|g| format!("GPU{} ({} MIG devices)", g.index, g.mig_devices.len()))
        .collect();
    (!on.is_empty()).then(|| {
        Finding::new(
            GpuCode::Mig,
            Level::Info,
            format!(
                "MIG mode on {}: MIG devices are not NVLink peers (no CUDA IPC between MIG instances), so NCCL between them goes through host memory; one NCCL rank per MIG device",
                on.join(", ")
            ),
        )
        .observed(on.len())
        .probe(names::SMI_Q)
        .evidence("NVIDIA MIG User Guide, Application Considerations; NCCL docs, Using NCCL, Creating a Communicator, Using MIG instances")
    })
}
