//! `/proc/driver/nvidia/version`: the kernel driver's version and flavour. The open kernel
//! modules say `NVIDIA UNIX Open Kernel Module`; the proprietary ones `NVIDIA UNIX x86_64
//! Kernel Module` (or `aarch64`). The flavour matters for GPUDirect RDMA over DMA-BUF.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriverInfo {
    pub version: String,
    pub open_kernel_module: bool,
}

pub fn parse(text: &str) -> Option<DriverInfo> {
    let line = text.lines().find(|l| l.starts_with("NVRM version:"))?;
    let rest = line.trim_start_matches("NVRM version:");
    let after = rest.split("Kernel Module").nth(1)?;
    let version = after
        .split_whitespace()
        .find(|t| t.chars().next().is_some_and(|c| c.is_ascii_digit()) && t.contains('.'))?
        .to_string();
    Some(DriverInfo {
        version,
        open_kernel_module: rest.contains("Open Kernel Module"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_and_proprietary_modules() {
        let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build  (dvs-builder@U16)  Tue Mar  5 22:15:33 UTC 2024\nGCC version:  gcc version 12.2.0\n";
        assert_eq!(
            parse(open),
            Some(DriverInfo {
                version: "550.54.15".into(),
                open_kernel_module: true
            })
        );
        let prop =
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.161.08  Tue Mar  5 22:42:00 UTC 2024\n";
        assert_eq!(
            parse(prop),
            Some(DriverInfo {
                version: "535.161.08".into(),
                open_kernel_module: false
            })
        );
        assert_eq!(parse("garbage"), None);
    }
}
