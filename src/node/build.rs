//! Builds a `NodeReport` from probe outputs: runs the parsers, merges what several probes say
//! about the same thing (ibstat and sysfs about a port, query-gpu and topo about a GPU), and
//! turns every probe failure into a finding instead of an error.

use super::*;
use crate::finding::{Finding, Severity};
use crate::parse::{self, topo::Path};
use crate::probe::{self, ProbeOutput, ProbeStatus, Runner, Source, names};

/// Runs every core probe with `runner`, concurrently.
pub fn collect(runner: &dyn Runner) -> Vec<ProbeOutput> {
    probe::run_all(runner, &probe::core_probes())
}

struct Outputs<'a> {
    all: &'a [ProbeOutput],
}

impl<'a> Outputs<'a> {
    fn get(&self, name: &str) -> Option<&'a ProbeOutput> {
        self.all.iter().find(|o| o.name == name)
    }
    fn ok_text(&self, name: &str) -> Option<String> {
        self.get(name).and_then(ProbeOutput::ok_text)
    }
    fn status(&self, name: &str) -> Option<&'a ProbeStatus> {
        self.get(name).map(|o| &o.status)
    }
}

/// Builds the node report. `source` is `live` or the replay directory; `fallback_hostname`
/// comes from a capture's manifest.
pub fn build(outputs: &[ProbeOutput], source: &str, fallback_hostname: Option<String>) -> NodeReport {
    let out = Outputs { all: outputs };
    let mut findings = Vec::new();
    // Without any RDMA device, missing InfiniBand tools are expected, not a gap in the facts.
    let no_rdma_devices = out.status(names::RDMA_PORTS) == Some(&ProbeStatus::NotFound);
    probe_findings(outputs, no_rdma_devices, &mut findings);

    let topo = out
        .ok_text(names::TOPO)
        .and_then(|t| match parse::topo::parse(&t) {
            Ok(topo) => Some(topo),
            Err(e) => {
                findings.push(unparseable(names::TOPO, &e));
                None
            }
        });
    let query_rows = out
        .ok_text(names::QUERY_GPU)
        .and_then(|t| match parse::query_gpu::parse(&t) {
            Ok(rows) => Some(rows),
            Err(e) => {
                findings.push(unparseable(names::QUERY_GPU, &e));
                None
            }
        });
    let nvlink = out
        .ok_text(names::NVLINK)
        .map(|t| parse::nvlink::parse(&t))
        .unwrap_or_default();

    let mut report = NodeReport {
        schema: SCHEMA,
        hostname: out
            .ok_text(names::HOSTNAME)
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or(fallback_hostname),
        source: source.to_string(),
        ..NodeReport::default()
    };
    report.gpus = gpus(query_rows.as_deref(), topo.as_ref(), &nvlink);
    if let Some(text) = out.ok_text(names::SMI_Q) {
        for q in parse::nvidia_smi_q::parse(&text) {
            let same = |id: &Option<String>| {
                id.as_deref()
                    .is_some_and(|id| id.eq_ignore_ascii_case(&q.pci_bus_id))
            };
            if let Some(g) = report.gpus.iter_mut().find(|g| same(&g.pci_bus_id)) {
                g.architecture = q.architecture;
                g.fabric_state = q.fabric_state;
                g.fabric_status = q.fabric_status;
            }
        }
    }
    report.nvlink = nvlink_summary(&nvlink, &mut findings);
    if let Some(t) = &topo {
        report.gpu_links = gpu_links(t);
        report.gpu_nic_affinity = affinity(t);
        if let Some((found, shown)) = t.nics_found {
            findings.push(Finding::new(
                "topo-nics-truncated",
                Severity::Info,
                format!("nvidia-smi topo -m found {found} NICs but shows only {shown}; GPU-NIC affinity covers the shown ones"),
            ));
        }
    }
    report.nvswitch = nvswitch(&report);
    report.nics = nics(&out, &mut findings);
    report.versions = versions(&out, query_rows.as_deref());
    report.gpudirect = gpudirect(&out, &report.versions);
    report.interfaces = out
        .ok_text(names::NET_INTERFACES)
        .map(|t| parse::net_sysfs::parse(&t))
        .unwrap_or_default();
    report.iommu_params = out
        .ok_text(names::KERNEL_CMDLINE)
        .map(|c| {
            c.split_whitespace()
                .filter(|t| t.contains("iommu"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    report.pcie_acs = pcie_acs(&out);
    report.probes = outputs
        .iter()
        .map(|o| ProbeSummary {
            name: o.name.clone(),
            command: o.command.clone(),
            status: o.status.to_string(),
            duration_ms: o.duration.as_millis() as u64,
        })
        .collect();
    fact_findings(&report, &mut findings);
    report.findings = findings;
    report
}

fn unparseable(probe: &str, err: &anyhow::Error) -> Finding {
    Finding::new(
        "probe-unparseable",
        Severity::Warn,
        format!("{probe}: output not understood: {err:#}"),
    )
    .subject(probe)
    .fix("send the capture (`nccltune detect --capture DIR`) with a bug report")
}

fn is_command(name: &str) -> bool {
    probe::find(name).is_some_and(|p| matches!(p.source, Source::Command { .. }))
}

/// Probes whose absence only matters on a node with RDMA devices.
const RDMA_TOOLS: [&str; 2] = [names::IBSTAT, names::OFED_INFO];

fn probe_findings(outputs: &[ProbeOutput], no_rdma_devices: bool, findings: &mut Vec<Finding>) {
    for o in outputs {
        let first_err = o
            .stderr_text()
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        match &o.status {
            ProbeStatus::Ok => {}
            // A missing file is a fact (no peer-memory client, no NVIDIA driver), not a failure.
            ProbeStatus::NotFound if !is_command(&o.name) => {}
            ProbeStatus::NotFound if no_rdma_devices && RDMA_TOOLS.contains(&o.name.as_str()) => findings.push(
                Finding::new(
                    "probe-not-found",
                    Severity::Info,
                    format!("{}: not installed, and the node has no RDMA devices (/sys/class/infiniband is absent)", o.name),
                )
                .subject(&o.name),
            ),
            ProbeStatus::NotFound => findings.push(
                Finding::new(
                    "probe-not-found",
                    Severity::Warn,
                    format!("{}: program not installed; its facts are unknown", o.name),
                )
                .subject(&o.name)
                .fix(format!(
                    "install the tool that provides `{}` or run where it is available",
                    o.command
                )),
            ),
            ProbeStatus::Timeout => findings.push(
                Finding::new(
                    "probe-timeout",
                    Severity::Warn,
                    format!("{}: no answer before the deadline; killed", o.name),
                )
                .subject(&o.name)
                .fix(
                    "a hung driver or fabric query often means a sick node; check dmesg, or raise --timeout",
                ),
            ),
            ProbeStatus::Exit(code) => findings.push(
                Finding::new(
                    "probe-failed",
                    Severity::Warn,
                    format!(
                        "{}: exited with status {code}{}",
                        o.name,
                        if first_err.is_empty() {
                            String::new()
                        } else {
                            format!(": {first_err}")
                        }
                    ),
                )
                .subject(&o.name),
            ),
            ProbeStatus::NotCaptured => findings.push(
                Finding::new(
                    "probe-not-captured",
                    Severity::Info,
                    format!("{}: not in the capture; its facts are unknown", o.name),
                )
                .subject(&o.name),
            ),
        }
        if o.truncated {
            findings.push(
                Finding::new(
                    "probe-output-truncated",
                    Severity::Warn,
                    format!("{}: output beyond the size cap was dropped", o.name),
                )
                .subject(&o.name),
            );
        }
    }
}

fn gpus(
    rows: Option<&[parse::query_gpu::GpuRow]>,
    topo: Option<&parse::topo::Topology>,
    nvlink: &[parse::nvlink::GpuLinks],
) -> Vec<Gpu> {
    let mut gpus: Vec<Gpu> = Vec::new();
    for (pos, row) in rows.unwrap_or_default().iter().enumerate() {
        let num = |f: &str| row.get(f).and_then(parse::leading_number);
        gpus.push(Gpu {
            index: row
                .get("index")
                .and_then(|i| i.parse().ok())
                .unwrap_or(pos as u32),
            name: row.get("name").map(str::to_string),
            pci_bus_id: row.get("pci.bus_id").map(str::to_string),
            uuid: row.get("uuid").map(str::to_string),
            memory_total_mib: num("memory.total").map(|v| v as u64),
            mig_mode: row.get("mig.mode.current").map(str::to_string),
            pcie_gen: num("pcie.link.gen.current").map(|v| v as u32),
            pcie_width: num("pcie.link.width.current").map(|v| v as u32),
            source: names::QUERY_GPU.to_string(),
            ..Gpu::default()
        });
    }
    if let Some(t) = topo {
        for idx in t.gpu_indices() {
            if !gpus.iter().any(|g| g.index == idx) {
                gpus.push(Gpu {
                    index: idx,
                    source: names::TOPO.to_string(),
                    ..Gpu::default()
                });
            }
            let row = t.row(&format!("GPU{idx}"));
            if let Some(g) = gpus.iter_mut().find(|g| g.index == idx) {
                g.cpu_affinity = row.and_then(|r| r.cpu_affinity.clone());
                g.numa_affinity = row.and_then(|r| r.numa_affinity.clone());
            }
        }
    }
    for l in nvlink {
        if let Some(g) = gpus.iter_mut().find(|g| g.index == l.gpu)
            && g.name.is_none()
            && !l.name.is_empty()
        {
            g.name = Some(l.name.clone());
        }
    }
    gpus.sort_by_key(|g| g.index);
    gpus
}

fn nvlink_summary(links: &[parse::nvlink::GpuLinks], findings: &mut Vec<Finding>) -> Vec<GpuNvlink> {
    links
        .iter()
        .map(|g| {
            let speeds: Vec<f64> = g.links.iter().filter_map(|(_, s)| *s).collect();
            let min = speeds
                .iter()
                .copied()
                .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.min(s))));
            let mixed = speeds.iter().any(|s| Some(*s) != min);
            let inactive = g.links.len() - speeds.len();
            if inactive > 0 && !speeds.is_empty() {
                findings.push(
                    Finding::new(
                        "nvlink-inactive-links",
                        Severity::Warn,
                        format!("GPU {}: {inactive} of {} NVLinks inactive", g.gpu, g.links.len()),
                    )
                    .subject(format!("GPU{}", g.gpu))
                    .fix("reset the GPU or check the NVLink/NVSwitch hardware (nvidia-smi nvlink -e)"),
                );
            }
            GpuNvlink {
                gpu: g.gpu,
                active_links: speeds.len() as u32,
                inactive_links: inactive as u32,
                link_gbps: min,
                total_gbps: (speeds.iter().sum::<f64>() * 1000.0).round() / 1000.0,
                mixed_speeds: mixed,
                message: g.message.clone(),
            }
        })
        .collect()
}

fn gpu_links(t: &parse::topo::Topology) -> Vec<GpuLink> {
    let idx = t.gpu_indices();
    let mut links = Vec::new();
    for (i, &a) in idx.iter().enumerate() {
        for &b in &idx[i + 1..] {
            if let Some(p) = t.path(&format!("GPU{a}"), &format!("GPU{b}")) {
                let nvlinks = if let Path::NvLink(n) = p { n } else { 0 };
                links.push(GpuLink {
                    a,
                    b,
                    path: p.label(),
                    nvlinks,
                });
            }
        }
    }
    links
}

fn affinity(t: &parse::topo::Topology) -> Vec<Affinity> {
    let nics = t.nic_columns();
    let mut out = Vec::new();
    for gpu in t.gpu_indices() {
        let label = format!("GPU{gpu}");
        let paths: Vec<(Path, &str)> = nics
            .iter()
            .filter_map(|n| Some((t.path(&label, n)?, *n)))
            .collect();
        let Some(best) = paths.iter().map(|(p, _)| p.clone()).min() else {
            continue;
        };
        for (p, n) in paths.iter().filter(|(p, _)| *p == best) {
            out.push(Affinity {
                gpu,
                nic: t.nic_name(n).to_string(),
                path: p.label(),
            });
        }
    }
    out
}

/// Largest number of NVLinks any GPU generation has had (H100/B200: 18). A GPU pair count of
/// `k * (n - 1)` above this cannot be point-to-point links, so a switch must be in between.
const MAX_NVLINKS_PER_GPU: u32 = 18;

fn nvswitch(r: &NodeReport) -> NvSwitch {
    let n = r.gpus.len() as u32;
    if r.gpu_links.is_empty() || n < 2 {
        return NvSwitch {
            present: None,
            evidence: "no GPU-to-GPU topology".into(),
        };
    }
    let counts: Vec<u32> = r.gpu_links.iter().map(|l| l.nvlinks).collect();
    if counts.contains(&0) {
        return NvSwitch {
            present: Some(false),
            evidence: "some GPU pairs are joined over PCIe only".into(),
        };
    }
    let k = counts.iter().copied().min().unwrap_or(0);
    let all_same = counts.iter().all(|&c| c == k);
    let per_gpu = r
        .nvlink
        .iter()
        .map(|l| l.active_links)
        .max()
        .unwrap_or(MAX_NVLINKS_PER_GPU);
    if n > 2 && all_same && k * (n - 1) > per_gpu {
        NvSwitch {
            present: Some(true),
            evidence: format!(
                "all {n} GPUs reach every peer over NV{k}; {} links each would exceed the {per_gpu} a GPU has, so they go through NVSwitch",
                k * (n - 1)
            ),
        }
    } else if n == 2 {
        NvSwitch {
            present: None,
            evidence: format!("two GPUs joined by NV{k}: direct links and a switch look the same"),
        }
    } else {
        NvSwitch {
            present: Some(false),
            evidence: "NVLink counts differ between GPU pairs: direct links (no NVSwitch)".into(),
        }
    }
}

fn nics(out: &Outputs, findings: &mut Vec<Finding>) -> Vec<Nic> {
    let mut nics: Vec<Nic> = Vec::new();
    if let Some(text) = out.ok_text(names::IBSTAT).or_else(|| {
        // ibstat exits non-zero after an `ibpanic:`; what it printed before is still good.
        out.get(names::IBSTAT)
            .filter(|o| matches!(o.status, ProbeStatus::Exit(_)))
            .map(ProbeOutput::text)
    }) {
        let s = parse::ibstat::parse(&text);
        if let Some(p) = &s.panic {
            findings.push(
                Finding::new(
                    "ibstat-panic",
                    Severity::Warn,
                    format!("ibstat stopped early: {p}"),
                )
                .subject(names::IBSTAT),
            );
        }
        for w in &s.warnings {
            findings.push(
                Finding::new("ibstat-warning", Severity::Info, format!("ibstat: {w}")).subject(names::IBSTAT),
            );
        }
        for ca in s.cas {
            for p in ca.ports {
                nics.push(Nic {
                    device: ca.name.clone(),
                    port: p.number,
                    state: p.state,
                    physical_state: p.physical_state,
                    rate_gbps: p.rate_gbps,
                    link_layer: p.link_layer,
                    ca_type: ca.ca_type.clone(),
                    firmware: ca.firmware.clone(),
                    netdevs: Vec::new(),
                    roce_v2_ipv4_gid_index: None,
                    source: "ibstat".into(),
                });
            }
        }
    }
    if let Some(text) = out.ok_text(names::RDMA_PORTS) {
        let s = parse::rdma_sysfs::parse(&text);
        for p in s.ports {
            match nics.iter_mut().find(|n| n.device == p.device && n.port == p.port) {
                Some(n) => {
                    n.source = "ibstat+sysfs".into();
                    n.roce_v2_ipv4_gid_index = p.roce_v2_ipv4_gid_index();
                    n.state = n.state.take().or(p.state);
                    n.physical_state = n.physical_state.take().or(p.physical_state);
                    n.rate_gbps = n.rate_gbps.or(p.rate_gbps);
                    n.link_layer = n.link_layer.take().or(p.link_layer);
                }
                None => nics.push(Nic {
                    roce_v2_ipv4_gid_index: p.roce_v2_ipv4_gid_index(),
                    device: p.device,
                    port: p.port,
                    state: p.state,
                    physical_state: p.physical_state,
                    rate_gbps: p.rate_gbps,
                    link_layer: p.link_layer,
                    source: "sysfs".into(),
                    ..Nic::default()
                }),
            }
        }
        for (dev, netdev) in s.netdevs {
            for n in nics.iter_mut().filter(|n| n.device == dev) {
                n.netdevs.push(netdev.clone());
            }
        }
    }
    nics
}

fn versions(out: &Outputs, rows: Option<&[parse::query_gpu::GpuRow]>) -> Versions {
    let ofed = out
        .ok_text(names::OFED_INFO)
        .and_then(|t| parse::ofed_info::parse(&t));
    let driver_file = out
        .ok_text(names::DRIVER_VERSION)
        .and_then(|t| parse::driver::parse(&t));
    Versions {
        driver: rows
            .and_then(|r| r.iter().find_map(|g| g.get("driver_version").map(str::to_string)))
            .or_else(|| driver_file.map(|d| d.version)),
        ofed: ofed.as_ref().map(|o| o.version.clone()),
        ofed_flavor: ofed.map(|o| o.flavor),
        nccl: out
            .ok_text(names::NCCL_LIBRARY)
            .and_then(|t| parse::nccl_library::parse(&t)),
        kernel: out
            .ok_text(names::KERNEL_RELEASE)
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty()),
    }
}

/// Linux release from which RDMA can import dma-buf memory (`ibv_reg_dmabuf_mr`). Source:
/// NVIDIA GPU Operator, "GPUDirect RDMA and GPUDirect Storage" (DMA-BUF prerequisites).
const DMABUF_MIN_KERNEL: [u64; 2] = [5, 12];

fn gpudirect(out: &Outputs, versions: &Versions) -> GpuDirect {
    let mut g = GpuDirect::default();
    for (probe, client) in [(names::NV_MEM, "nv_mem"), (names::NV_MEM_NC, "nv_mem_nc")] {
        if out.status(probe) == Some(&ProbeStatus::Ok) {
            g.peer_memory_clients.push(client.to_string());
        }
    }
    g.nvidia_peermem_module = match out.status(names::PEERMEM_MODULE) {
        Some(ProbeStatus::Ok) => Some(true),
        Some(ProbeStatus::NotFound) => Some(false),
        _ => None,
    };
    let modules = out.ok_text(names::LSMOD).map(|t| parse::lsmod::parse(&t));
    if let Some(m) = &modules {
        for name in ["nvidia_peermem", "nv_peer_mem"] {
            if parse::lsmod::has(m, name) {
                g.peer_memory_modules_loaded.push(name.to_string());
            }
        }
    }
    let driver = out
        .ok_text(names::DRIVER_VERSION)
        .and_then(|t| parse::driver::parse(&t));
    g.open_kernel_module = driver.map(|d| d.open_kernel_module);
    g.kernel_release = versions.kernel.clone();
    g.kernel_supports_dmabuf = versions.kernel.as_deref().map(|k| {
        let v = parse::version_key(k);
        v.len() >= 2 && v[..2] >= DMABUF_MIN_KERNEL[..]
    });
    let legacy = !g.peer_memory_clients.is_empty() || g.nvidia_peermem_module == Some(true);
    let (path, evidence) = if legacy {
        let mut found: Vec<String> = g
            .peer_memory_clients
            .iter()
            .map(|c| format!("/sys/kernel/mm/memory_peers/{c}/version"))
            .collect();
        if g.nvidia_peermem_module == Some(true) {
            found.push("/sys/module/nvidia_peermem/version".into());
        }
        ("peer-memory", format!("found {}", found.join(", ")))
    } else if g.open_kernel_module == Some(true) && g.kernel_supports_dmabuf == Some(true) {
        ("dma-buf", "no peer-memory client, but the open NVIDIA kernel module and a 5.12+ kernel: NCCL uses DMA-BUF if the GPU and rdma-core support it (checked at NCCL init, not here)".to_string())
    } else if g.open_kernel_module.is_none() || g.kernel_supports_dmabuf.is_none() {
        (
            "unknown",
            "no peer-memory client found, and the driver flavour or kernel release is unknown".to_string(),
        )
    } else {
        (
            "none",
            "no peer-memory client, and DMA-BUF needs the open NVIDIA kernel module and a 5.12+ kernel"
                .to_string(),
        )
    };
    g.path = path.to_string();
    g.evidence = evidence;
    g
}

/// ACS redirection that matters to GPUDirect RDMA: on the bridges a GPU-to-NIC transfer
/// crosses below the pair's nearest common bridge (a PCIe switch). A redirecting port there
/// sends the transfer up to the root complex instead of across the switch. Pairs under
/// different root ports cross the root complex anyway and are not considered.
fn pcie_acs(out: &Outputs) -> PcieAcs {
    let Some(text) = out.ok_text(names::LSPCI) else {
        return PcieAcs {
            status: out
                .status(names::LSPCI)
                .map_or("not-captured".to_string(), ToString::to_string),
            ..PcieAcs::default()
        };
    };
    let l = parse::lspci::parse(&text);
    let bus_of = |pred: fn(&parse::lspci::PciDevice) -> bool, kind: &str| -> Vec<(u32, String)> {
        l.devices
            .iter()
            .filter(|d| pred(d))
            .filter_map(|d| Some((d.bus()?, format!("{kind} {}", d.address))))
            .collect()
    };
    let gpus = bus_of(parse::lspci::PciDevice::is_nvidia_gpu, "GPU");
    let nics = bus_of(parse::lspci::PciDevice::is_rdma_nic, "NIC");
    let bridges: Vec<&parse::lspci::PciDevice> = l
        .devices
        .iter()
        .filter(|d| d.is_bridge() && d.secondary.is_some() && d.subordinate.is_some())
        .collect();
    let span = |b: &parse::lspci::PciDevice| {
        b.subordinate
            .unwrap_or(0)
            .saturating_sub(b.secondary.unwrap_or(0))
    };
    // Bridge index -> the devices behind it that a GPU-NIC transfer would carry past it.
    let mut relevant: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for (gbus, gname) in &gpus {
        for (nbus, nname) in &nics {
            let Some(ancestor) = bridges
                .iter()
                .filter(|b| b.covers(*gbus) && b.covers(*nbus))
                .min_by_key(|b| span(b))
            else {
                continue;
            };
            // Root ports do not forward peer traffic between their own children upward, so
            // only a common bridge that is itself below another bridge (a switch port) counts.
            if !bridges
                .iter()
                .any(|b| b.address != ancestor.address && ancestor.bus().is_some_and(|bus| b.covers(bus)))
            {
                continue;
            }
            for (i, b) in bridges.iter().enumerate() {
                let below = ancestor.covers(b.secondary.unwrap_or(0)) && b.address != ancestor.address;
                if below && (b.covers(*gbus) != b.covers(*nbus)) {
                    let e = relevant.entry(i).or_default();
                    let who = if b.covers(*gbus) { gname } else { nname };
                    if !e.contains(who) {
                        e.push(who.clone());
                    }
                }
            }
        }
    }
    let mut acs = PcieAcs {
        status: "read".into(),
        ..PcieAcs::default()
    };
    let mut denied = false;
    for (i, above) in relevant {
        let b = bridges[i];
        match &b.acs_ctl_on {
            Some(flags) => {
                acs.bridges_checked += 1;
                if b.acs_redirects() {
                    acs.redirecting.push(AcsBridge {
                        address: b.address.clone(),
                        flags: flags.clone(),
                        above,
                    });
                }
            }
            None => denied |= l.access_denied,
        }
    }
    if l.access_denied && acs.bridges_checked == 0 && (denied || gpus.is_empty() || nics.is_empty()) {
        acs.status = "access-denied".into();
    }
    acs
}

fn fact_findings(r: &NodeReport, findings: &mut Vec<Finding>) {
    for n in &r.nics {
        if !n.is_active() {
            let state = n.state.as_deref().unwrap_or("unknown");
            let fix = match state {
                "Initializing" => {
                    "the port is up but no subnet manager has configured it: check opensm / the fabric manager"
                }
                "Down" | "Polling" | "Disabled" => {
                    "check the cable, the switch port, and `ibstat`/`ip link` for the device"
                }
                _ => "check the port with ibstat",
            };
            findings.push(
                Finding::new(
                    "rdma-port-not-active",
                    Severity::Warn,
                    format!("{} is {state}", n.id()),
                )
                .subject(n.id())
                .fix(fix),
            );
        }
    }
    let has_rdma = r.nics.iter().any(Nic::is_active);
    if has_rdma && !r.gpus.is_empty() && r.gpudirect.path == "none" {
        findings.push(
            Finding::new("gpudirect-rdma-unavailable", Severity::Warn, "RDMA ports and GPUs present, but neither a peer-memory client nor DMA-BUF is available: NCCL will stage network traffic through host memory")
                .fix("load nvidia_peermem (`modprobe nvidia-peermem`) or use the open NVIDIA kernel module on a 5.12+ kernel"),
        );
    }
}
