//! GPUDirect RDMA facts: peer-memory clients and modules, the driver flavour and kernel release
//! DMA-BUF needs, and the path NCCL will find.

use super::Outputs;
use crate::node::*;
use crate::parse;
use crate::probe::{ProbeStatus, names};

/// Linux release from which RDMA can import dma-buf memory (`ibv_reg_dmabuf_mr`). Source:
/// NVIDIA GPU Operator, "GPUDirect RDMA and GPUDirect Storage" (DMA-BUF prerequisites).
const DMABUF_MIN_KERNEL: [u64; 2] = [5, 12];

pub(super) fn gpudirect(out: &Outputs, versions: &Versions) -> GpuDirect {
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
        (GdrPath::PeerMemory, format!("found {}", found.join(", ")))
    } else if g.open_kernel_module == Some(true) && g.kernel_supports_dmabuf == Some(true) {
        (GdrPath::DmaBuf, "no peer-memory client, but the open NVIDIA kernel module and a 5.12+ kernel: NCCL uses DMA-BUF if the GPU and rdma-core support it (checked at NCCL init, not here)".to_string())
    } else if g.open_kernel_module.is_none() || g.kernel_supports_dmabuf.is_none() {
        (
            GdrPath::Unknown,
            "no peer-memory client found, and the driver flavour or kernel release is unknown".to_string(),
        )
    } else {
        (
            GdrPath::None,
            "no peer-memory client, and DMA-BUF needs the open NVIDIA kernel module and a 5.12+ kernel"
                .to_string(),
        )
    };
    g.path = path;
    g.evidence = evidence;
    g
}
