//! Builds a `NodeReport` from probe outputs: runs the parsers, merges what several probes say
//! about the same thing (ibstat and sysfs about a port, query-gpu and topo about a GPU), and
//! records in each probe's record what went wrong with it (status, output not understood,
//! stopped part-way). It builds facts only; `node::findings` judges them.
//!
//! One file per concern: `gpus`, `nics`, `gpudirect`, `pcie`, `qos`, `versions`.

mod gpudirect;
mod gpus;
mod nccl;
mod nics;
mod pcie;
mod qos;
mod versions;

use super::*;
use crate::parse;
use crate::probe::{self, ProbeOutput, ProbeStatus, Runner, names};

/// Runs every core probe with `runner`, concurrently.
pub fn collect(runner: &dyn Runner) -> Vec<ProbeOutput> {
    probe::run_all(runner, &probe::core_probes())
}

/// The probe outputs, by name.
pub(crate) struct Outputs<'a> {
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
    /// A one-line file probe's value (machine id, boot id), trimmed; `None` when empty.
    fn line(&self, name: &str) -> Option<String> {
        self.ok_text(name)
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    }
}

/// Builds the node report. `source` is `live` or the replay directory; `fallback_hostname`
/// comes from a capture's manifest.
pub fn build(outputs: &[ProbeOutput], source: &str, fallback_hostname: Option<String>) -> NodeReport {
    let out = Outputs { all: outputs };
    let mut probes: Vec<ProbeSummary> = outputs
        .iter()
        .map(|o| ProbeSummary {
            name: o.name.clone(),
            command: o.command.clone(),
            status: o.status.clone(),
            duration_ms: o.duration.as_millis() as u64,
            truncated: o.truncated,
            stderr: o
                .stderr_text()
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_string),
            ..ProbeSummary::default()
        })
        .collect();
    let mut problem = |name: &str, err: &anyhow::Error| {
        if let Some(p) = probes.iter_mut().find(|p| p.name == name) {
            p.problem = Some(format!("{err:#}"));
        }
    };

    let topo = out
        .ok_text(names::TOPO)
        .and_then(|t| match parse::topo::parse(&t) {
            Ok(topo) => Some(topo),
            Err(e) => {
                problem(names::TOPO, &e);
                None
            }
        });
    let query_rows = out
        .ok_text(names::QUERY_GPU)
        .and_then(|t| match parse::query_gpu::parse(&t) {
            Ok(rows) => Some(rows),
            Err(e) => {
                problem(names::QUERY_GPU, &e);
                None
            }
        });
    let nvlink = out
        .ok_text(names::NVLINK)
        .map(|t| parse::nvlink::parse(&t))
        .unwrap_or_default();

    // A host name becomes an identifier (reports, host files, drain lines): one that is not a
    // host name is kept out and said as the probe's problem, never passed on.
    let hostname = match out.line(names::HOSTNAME) {
        Some(h) => match crate::render::text::check_hostname(&h, names::HOSTNAME) {
            Ok(()) => Some(h),
            Err(e) => {
                if let Some(p) = probes.iter_mut().find(|p| p.name == names::HOSTNAME) {
                    p.problem = Some(e);
                }
                None
            }
        },
        None => fallback_hostname.filter(|h| crate::render::text::valid_hostname(h)),
    };
    let mut report = NodeReport {
        schema: SCHEMA,
        meta: crate::render::meta::Meta::now(),
        hostname: hostname.clone(),
        identity: Identity {
            hostname,
            machine_id: out.line(names::MACHINE_ID),
            dmi_product_serial: out.line(names::DMI_SERIAL),
            dmi_product_uuid: out.line(names::DMI_UUID),
            boot_id: out.line(names::BOOT_ID),
        },
        source: source.to_string(),
        ..NodeReport::default()
    };
    let smi_q = out
        .ok_text(names::SMI_Q)
        .map(|t| parse::nvidia_smi_q::parse(&t))
        .unwrap_or_default();
    report.gpus = gpus::gpus(query_rows.as_deref(), topo.as_ref(), &nvlink, &smi_q);
    report.nvlink = gpus::nvlink_summary(&nvlink, &report.gpus);
    if let Some(t) = &topo {
        report.gpu_links = gpus::gpu_links(t);
        report.gpu_nic_affinity = gpus::affinity(t);
        report.topo_nics_truncated = t.nics_found;
    }
    report.nvswitch = gpus::nvswitch(&report);
    report.nics = nics::nics(&out, &mut probes);
    // Device names become `NCCL_IB_HCA` entries and table cells: a name no driver gives is not
    // a port.
    let bad: Vec<String> = report
        .nics
        .iter()
        .filter(|n| !crate::render::text::valid_device_name(&n.device))
        .map(|n| crate::render::text::sanitize(&n.device).into_owned())
        .collect();
    if !bad.is_empty() {
        report
            .nics
            .retain(|n| crate::render::text::valid_device_name(&n.device));
        for p in probes
            .iter_mut()
            .filter(|p| p.name == names::IBSTAT || p.name == names::RDMA_PORTS)
        {
            p.problem = Some(format!(
                "device name(s) that are not RDMA device names were left out: {}",
                bad.join(", ")
            ));
        }
    }
    report.versions = versions::versions(&out, query_rows.as_deref());
    report.nccl_libraries = nccl::libraries(&out);
    report.nccl_loads = nccl::loads(&report.nccl_libraries, &out);
    report.gpudirect = gpudirect::gpudirect(&out, &report.versions);
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
    report.pcie_acs = pcie::pcie_acs(&out);
    report.dmi = Dmi {
        sys_vendor: out.line(names::DMI_SYS_VENDOR),
        product_name: out.line(names::DMI_PRODUCT_NAME),
        board_vendor: out.line(names::DMI_BOARD_VENDOR),
    };
    report.nccl_plugins = out
        .ok_text(names::NCCL_PLUGINS)
        .map(|t| crate::hw::platform::plugins(&t, out.ok_text(names::LDCONFIG).as_deref()))
        .unwrap_or_default();
    report.platform = crate::hw::platform::detect(&report);
    report.qos = qos::ports(&out, &report.nics);
    report.probes = probes;
    report.observed = observed(&report);
    report.findings = super::findings::node(&report);
    report
}

/// Which groups of facts were observed, and from which probes. A group counts as observed when
/// one of its probes answered and was understood; for RDMA, an absent `/sys/class/infiniband`
/// is an observation too (the node has no RDMA device).
fn observed(r: &NodeReport) -> Observed {
    let seen = |probes: &[&str]| {
        let ok: Vec<String> = probes
            .iter()
            .filter(|p| r.probe_ok(p))
            .map(|p| p.to_string())
            .collect();
        Seen {
            observed: !ok.is_empty(),
            probes: ok,
        }
    };
    let mut rdma = seen(&[names::IBSTAT, names::RDMA_PORTS]);
    if !rdma.observed && crate::hw::no_rdma_devices(r) {
        rdma = Seen {
            observed: true,
            probes: vec![names::RDMA_PORTS.to_string()],
        };
    }
    // GPUDirect facts are files whose absence is itself the fact (no peer-memory client), so
    // they count as observed when the driver file or lsmod answered.
    let mut gpudirect = seen(&[
        names::NV_MEM,
        names::NV_MEM_NC,
        names::PEERMEM_MODULE,
        names::LSMOD,
    ]);
    gpudirect.observed = r.probe_ok(names::DRIVER_VERSION) || r.probe_ok(names::LSMOD) || gpudirect.observed;
    Observed {
        gpus: seen(&[names::QUERY_GPU, names::TOPO]),
        nvlink: seen(&[names::NVLINK]),
        topology: seen(&[names::TOPO]),
        rdma,
        gpudirect,
        pcie: seen(&[names::TOPO, names::LSPCI, names::KERNEL_CMDLINE]),
        qos: seen(&names::QOS),
        software: seen(&[
            names::QUERY_GPU,
            names::DRIVER_VERSION,
            names::OFED_INFO,
            names::NCCL_LIBRARY,
        ]),
    }
}
