//! Software versions: driver (query-gpu, else /proc/driver/nvidia/version), OFED, NCCL, kernel.

use super::Outputs;
use crate::node::*;
use crate::parse;
use crate::probe::names;

pub(super) fn versions(out: &Outputs, rows: Option<&[parse::query_gpu::GpuRow]>) -> Versions {
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
