//! GPU checks: count, NVLink links and speed, NVLS prerequisites on NVSwitch systems.

use super::{Check, Context, Status};
use crate::finding::GpuCode;
use crate::parse::version_key;
use crate::probe::names;

pub fn checks(cx: &Context) -> Vec<Check> {
    let mut v = vec![count(cx)];
    v.extend(nvlink_links(cx));
    v.push(nvlink_speed(cx));
    v.push(fabric(cx));
    v.extend(nvlink_domain(cx));
    v.push(nvls(cx));
    v
}

/// Multi-node NVLink (GB200 NVL72 and the like): every GPU of a tray must be registered in the
/// same NVLink domain (`nvidia-smi -q` Fabric `ClusterUUID` and `CliqueId`), or NCCL's
/// multi-node NVLink (`NCCL_MNNVL_ENABLE`, NCCL docs, Environment Variables) cannot span them.
fn nvlink_domain(cx: &Context) -> Option<Check> {
    let id = GpuCode::NvlinkDomain;
    let node = cx.node;
    let with: Vec<&crate::node::Gpu> = node.gpus.iter().filter(|g| g.nvlink_domain.is_some()).collect();
    // Only nodes in a multi-node NVLink domain get this check; elsewhere it would only add a
    // skip to every report.
    if with.is_empty() {
        return None;
    }
    let mut domains: Vec<&crate::node::NvlinkDomain> =
        with.iter().filter_map(|g| g.nvlink_domain.as_ref()).collect();
    domains.sort();
    domains.dedup();
    let ev = node
        .gpus
        .iter()
        .map(|g| match &g.nvlink_domain {
            Some(d) => format!(
                "GPU{}: {} clique {}",
                g.index,
                d.cluster_uuid,
                d.clique_id.map_or("?".into(), |c| c.to_string())
            ),
            None => format!("GPU{}: none", g.index),
        })
        .collect::<Vec<_>>()
        .join(", ");
    Some(if domains.len() == 1 && with.len() == node.gpus.len() {
        let d = domains[0];
        Check::at(
            id,
            Status::Pass,
            "node",
            format!(
                "all {} GPUs in NVLink domain {} (clique {})",
                with.len(),
                d.cluster_uuid,
                d.clique_id.map_or("?".into(), |c| c.to_string())
            ),
        )
        .observed(domains.len())
        .expected(1)
        .evidence(ev)
        .probe(names::SMI_Q)
    } else {
        Check::at(
            id,
            Status::Fail,
            "node",
            format!(
                "the GPUs of this tray are not in one NVLink domain: {} domain(s), {} of {} GPUs registered",
                domains.len(),
                with.len(),
                node.gpus.len()
            ),
        )
        .observed(domains.len())
        .expected(1)
        .evidence(ev)
        .probe(names::SMI_Q)
        .fix("check the IMEX and Fabric Manager services and the NVLink switch trays; every GPU of a tray must register in the same clique")
    })
}

/// NVSwitch systems: every GPU registered with the NVLink fabric by Fabric Manager.
fn fabric(cx: &Context) -> Check {
    let id = GpuCode::Fabric;
    let node = cx.node;
    let src = format!("source: {}", cx.rules.fabric.source);
    if node.nvswitch.present != Some(true) {
        return Check::at(id, Status::Skip, "node", "not applicable: no NVSwitch fabric").evidence(src);
    }
    let reported: Vec<&crate::node::Gpu> = node
        .gpus
        .iter()
        .filter(|g| g.fabric_state.as_deref().is_some_and(|s| s != "N/A"))
        .collect();
    if reported.is_empty() {
        let why = if node.probe_ok(names::SMI_Q) {
            "the driver reports no NVLink fabric state (N/A or absent: older driver or NVSwitch generation)"
        } else {
            "fabric state unknown: `nvidia-smi -q` was not captured or did not run"
        };
        return Check::at(id, Status::Skip, "node", why)
            .evidence(src)
            .fix("check `systemctl status nvidia-fabricmanager` by hand");
    }
    let ev = format!(
        "{}; {src}",
        reported
            .iter()
            .map(|g| format!(
                "GPU{}: {}/{}",
                g.index,
                g.fabric_state.as_deref().unwrap_or("?"),
                g.fabric_status.as_deref().unwrap_or("?")
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let bad: Vec<String> = reported
        .iter()
        .filter(|g| {
            g.fabric_state.as_deref() != Some("Completed") || g.fabric_status.as_deref() != Some("Success")
        })
        .map(|g| {
            format!(
                "GPU{} ({}{})",
                g.index,
                g.fabric_state.as_deref().unwrap_or("?"),
                match g.fabric_status.as_deref() {
                    Some(s) if g.fabric_state.as_deref() == Some("Completed") => format!(", {s}"),
                    _ => String::new(),
                }
            )
        })
        .collect();
    if bad.is_empty() {
        Check::at(
            id,
            Status::Pass,
            "node",
            format!("all {} GPUs registered with the NVLink fabric", reported.len()),
        )
        .evidence(ev)
    } else {
        Check::at(id, Status::Fail, "node", format!("not registered with the NVLink fabric: {}; NVLink through the NVSwitches is not set up for them", bad.join(", ")))
            .evidence(ev)
            .fix("start nvidia-fabricmanager (`systemctl enable --now nvidia-fabricmanager`; its version must equal the driver's) and check its log")
    }
}

fn count(cx: &Context) -> Check {
    let n = cx.node.gpus.len() as u32;
    let expected = cx
        .opts
        .expect_gpus
        .or_else(|| cx.expect().and_then(|e| e.gpus.as_ref()).and_then(|g| g.count));
    let seen = cx.node.probe_ok(names::QUERY_GPU) || cx.node.probe_ok(names::TOPO);
    let evidence = format!(
        "nvidia-smi lists {n} GPU(s): {}",
        cx.node
            .gpus
            .iter()
            .map(|g| format!("{}={}", g.index, g.name.as_deref().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let id = GpuCode::Count;
    if !seen {
        // nvidia-smi that runs and fails (driver not loaded, GPU fallen off the bus) or hangs
        // is evidence of a sick node; nvidia-smi that is not installed is only missing evidence.
        let status_of = |name: &str| {
            cx.node
                .probes
                .iter()
                .find(|p| p.name == name)
                .map_or("not-captured".to_string(), |p| p.status.to_string())
        };
        let st = status_of(names::QUERY_GPU);
        let ran_and_failed = st == "timeout" || st.starts_with("exit");
        let ev = format!(
            "nvidia-smi-query-gpu: {st}; nvidia-smi-topo: {}",
            status_of(names::TOPO)
        );
        let fix = "check the driver: `dmesg | grep -i -e nvrm -e xid`, `systemctl status nvidia-persistenced`; reload the driver or reboot";
        // The kernel module is loaded (/proc/driver/nvidia/version): this is a GPU node.
        let driver_loaded = cx.node.versions.driver.as_deref();
        return match (ran_and_failed, expected) {
            (true, Some(e)) => Check::at(id, Status::Fail, "node", format!("nvidia-smi failed ({st}) where {e} GPUs are expected: the driver is not answering"))
                .evidence(ev)
                .fix(fix),
            (true, None) if driver_loaded.is_some() => Check::at(
                id,
                Status::Fail,
                "node",
                format!("nvidia-smi failed ({st}) although the NVIDIA kernel module {} is loaded: the driver is not answering", driver_loaded.unwrap_or_default()),
            )
            .evidence(ev)
            .fix(fix),
            (true, None) => Check::at(id, Status::Warn, "node", format!("nvidia-smi failed ({st}): the GPUs cannot be listed"))
                .evidence(ev)
                .fix(fix),
            (false, Some(e)) => Check::at(id, Status::Fail, "node", format!("nvidia-smi is not available, so the {e} expected GPUs were not seen: a check that could not see is not a pass"))
                .evidence(ev)
                .fix("install the NVIDIA driver utilities (nvidia-smi) or run where they are on PATH"),
            (false, None) => Check::at(id, Status::Skip, "node", "nvidia-smi is not available, so the GPUs are unknown")
                .evidence(ev)
                .fix("install the NVIDIA driver (nvidia-smi) or run where it is on PATH"),
        };
    }
    match expected {
        Some(e) if e == n => Check::at(id, Status::Pass, "node", format!("{n} GPUs, as expected")).evidence(evidence),
        Some(e) => Check::at(id, Status::Fail, "node", format!("{n} GPUs visible, {e} expected"))
            .evidence(evidence)
            .fix("a missing GPU has usually fallen off the bus: check `dmesg | grep -i xid`, reseat or RMA; check CUDA_VISIBLE_DEVICES and MIG"),
        None if n == 0 => Check::at(id, Status::Fail, "node", "nvidia-smi ran but lists no GPU")
            .evidence(evidence)
            .fix("check the driver (`dmesg | grep -i nvrm`) and that the GPUs are visible on PCIe"),
        None => Check::at(id, Status::Pass, "node", format!("{n} GPUs (no expected count: give --expect-gpus N)"))
            .evidence(evidence),
    }
}

/// Active links per GPU: every GPU should have as many as the best one (and, on an NVSwitch
/// system, every link active), or as many as expected.
fn nvlink_links(cx: &Context) -> Vec<Check> {
    let id = GpuCode::NvlinkLinks;
    let links = &cx.node.nvlink;
    let max_active = links.iter().map(|l| l.active_links).max().unwrap_or(0);
    if max_active == 0 {
        return vec![skip_no_nvlink(id, cx)];
    }
    let expected = cx
        .expect()
        .and_then(|e| e.gpus.as_ref())
        .and_then(|g| g.nvlink_links);
    let switch = cx.node.nvswitch.present == Some(true);
    links
        .iter()
        .map(|l| {
            let subject = format!("GPU{}", l.gpu);
            if l.mig {
                return Check::at(id, Status::Skip, subject, "not applicable: the GPU is in MIG mode, where NVLink cannot be queried and MIG devices are not NVLink peers (NVIDIA MIG User Guide)")
                    .evidence(l.message.clone().unwrap_or_default());
            }
            // An expectations file decides; else the architecture's link count (a V100 has 6,
            // an H100 18, `hw/nvlink.toml`); else the best GPU on the node.
            let expected = expected.or(l.expected_links);
            let total = l.active_links + l.inactive_links;
            let evidence = format!(
                "nvidia-smi nvlink --status: {} of {total} links active{}",
                l.active_links,
                l.link_gbps.map(|s| format!(" at {s} GB/s")).unwrap_or_default()
            );
            let fix = "check `nvidia-smi nvlink -e` (error counters) and `dmesg | grep -i xid`; reset the GPU or have the baseboard serviced";
            let short = expected.map_or(l.active_links < max_active, |e| l.active_links < e);
            if short {
                let want = expected.unwrap_or(max_active);
                let why = match (cx.expect().and_then(|e| e.gpus.as_ref()).and_then(|g| g.nvlink_links), l.expected_links) {
                    (Some(_), _) => "the expectations file",
                    (None, Some(_)) => "this GPU model's link count, hw/nvlink.toml",
                    (None, None) => "the best GPU on this node",
                };
                Check::at(id, Status::Fail, subject, format!("{} NVLinks active, {want} expected ({why})", l.active_links))
                    .evidence(evidence)
                    .fix(fix)
            } else if l.inactive_links > 0 && switch {
                Check::at(id, Status::Fail, subject, format!("{} of {total} NVLinks inactive on an NVSwitch system, where every link is cabled", l.inactive_links))
                    .evidence(evidence)
                    .fix(fix)
            } else if l.inactive_links > 0 {
                Check::at(id, Status::Warn, subject, format!("{} of {total} NVLinks inactive; without NVSwitch some boards leave links unused by design", l.inactive_links))
                    .evidence(evidence)
                    .fix("compare with a known-good node of the same model (--expect FILE with gpus.nvlink_links)")
            } else {
                Check::at(id, Status::Pass, subject, format!("{} NVLinks active", l.active_links)).evidence(evidence)
            }
        })
        .collect()
}

fn skip_no_nvlink(id: GpuCode, cx: &Context) -> Check {
    let reason = if !cx.node.probe_ok(names::NVLINK) {
        "`nvidia-smi nvlink --status` did not run"
    } else {
        "no GPU reports an active NVLink (PCIe-only GPUs)"
    };
    Check::at(id, Status::Skip, "node", format!("not applicable: {reason}")).evidence(
        cx.node
            .nvlink
            .iter()
            .find_map(|l| l.message.clone())
            .unwrap_or_else(|| "no NVLink links listed".into()),
    )
}

/// All active links on all GPUs at one speed (or the expected one).
fn nvlink_speed(cx: &Context) -> Check {
    let id = GpuCode::NvlinkSpeed;
    let links = &cx.node.nvlink;
    if links.iter().all(|l| l.active_links == 0) {
        return skip_no_nvlink(id, cx);
    }
    let mut speeds: Vec<f64> = links.iter().filter_map(|l| l.link_gbps).collect();
    speeds.sort_by(f64::total_cmp);
    speeds.dedup();
    let mixed: Vec<String> = links
        .iter()
        .filter(|l| l.mixed_speeds)
        .map(|l| format!("GPU{}", l.gpu))
        .collect();
    let evidence = links
        .iter()
        .filter(|l| l.active_links > 0)
        .map(|l| {
            format!(
                "GPU{}: {}",
                l.gpu,
                l.link_gbps.map_or("?".into(), |s| format!("{s} GB/s"))
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let expected = cx
        .expect()
        .and_then(|e| e.gpus.as_ref())
        .and_then(|g| g.nvlink_gbps);
    let fix = "links trained at a lower speed point at a cable/baseboard fault: check `nvidia-smi nvlink -e` and `nvidia-smi -q -d NVLINK`";
    if !mixed.is_empty() || speeds.len() > 1 {
        let what = if mixed.is_empty() {
            format!("GPUs' links run at different speeds: {speeds:?} GB/s")
        } else {
            format!("links of {} run at different speeds", mixed.join(", "))
        };
        return Check::at(id, Status::Fail, "node", what)
            .evidence(evidence)
            .fix(fix);
    }
    match (speeds.first(), expected) {
        (Some(s), Some(e)) if (s - e).abs() > 0.001 => Check::at(
            id,
            Status::Fail,
            "node",
            format!("NVLinks run at {s} GB/s, {e} GB/s expected"),
        )
        .evidence(evidence)
        .fix(fix),
        (Some(s), _) => Check::at(
            id,
            Status::Pass,
            "node",
            format!("every active NVLink runs at {s} GB/s"),
        )
        .evidence(evidence),
        (None, _) => Check::at(id, Status::Skip, "node", "NVLink speeds not reported").evidence(evidence),
    }
}

/// What NVLS (NVLink SHARP) needs, as far as the node's probes can tell.
fn nvls(cx: &Context) -> Check {
    let id = GpuCode::Nvls;
    let r = &cx.rules.nvls;
    let node = cx.node;
    let src = format!("source: {}", r.source);
    if node.nvswitch.present != Some(true) {
        return Check::at(
            id,
            Status::Skip,
            "node",
            "not applicable: NVLS needs an NVSwitch system",
        )
        .evidence(format!("NVSwitch: {}; {src}", node.nvswitch.evidence));
    }
    let names: Vec<&str> = node.gpus.iter().filter_map(|g| g.name.as_deref()).collect();
    let hopper = |g: &crate::node::Gpu| crate::hw::is_hopper_or_newer(g);
    if names.is_empty() {
        return Check::at(
            id,
            Status::Skip,
            "node",
            "GPU model unknown, so NVLS support cannot be told",
        )
        .evidence(src);
    }
    if !node.gpus.iter().all(hopper) {
        return Check::at(id, Status::Skip, "node", format!("not applicable: {} is older than Hopper; NCCL builds NVLS graphs only for compute capability 9.0+", names[0]))
            .evidence(format!("NVSwitch present; {src}"));
    }
    let cannot = "Fabric Manager: see gpu.fabric; not checkable from this node's probes: the driver's multicast support (NCCL logs `NVLS multicast support is available` at init; use --nccl-log)";
    let driver = node.versions.driver.as_deref();
    match driver {
        Some(d) if version_key(d) < version_key(&r.min_driver) => Check::at(
            id,
            Status::Warn,
            "node",
            format!("driver {d} predates the CUDA 12.1 driver ({}) that reports multicast support: NCCL will not use NVLS", r.min_driver),
        )
        .evidence(format!("{} GPUs on NVSwitch; {src}", names[0]))
        .fix("upgrade the NVIDIA driver (and Fabric Manager to the same version)"),
        Some(d) => Check::at(
            id,
            Status::Pass,
            "node",
            format!("{} on NVSwitch with driver {d}: NVLS prerequisites met as far as visible; {cannot}", names[0]),
        )
        .evidence(format!("{}; {src}", node.nvswitch.evidence)),
        None => Check::at(id, Status::Skip, "node", format!("driver version unknown; {cannot}")).evidence(src),
    }
}
