//! `nvidia-smi -q`: per GPU, the architecture and the NVLink fabric registration (`Fabric`
//! section: `State`, `Status`). On NVSwitch systems the state reaches `Completed` once
//! nvidia-fabricmanager has registered the GPU with the fabric; GPUs without a fabric print
//! `N/A`, and drivers before the section existed print nothing (NVML `nvmlGpuFabricInfo_t`:
//! state of the GPU registration, status valid once the state is complete).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuQuery {
    /// `00000000:19:00.0`, as in the `GPU ...` header line.
    pub pci_bus_id: String,
    pub product_name: Option<String>,
    /// `Hopper`, `Ampere`, ... (drivers from R510 on print it).
    pub architecture: Option<String>,
    pub fabric_state: Option<String>,
    pub fabric_status: Option<String>,
}

/// Parses `nvidia-smi -q`. Never fails; what is not understood is skipped.
pub fn parse(text: &str) -> Vec<GpuQuery> {
    let mut gpus: Vec<GpuQuery> = Vec::new();
    let mut section = String::new();
    for line in text.lines() {
        let l = line.trim_end();
        if let Some(id) = l.strip_prefix("GPU ")
            && id.contains(':')
            && !id.contains(' ')
        {
            gpus.push(GpuQuery {
                pci_bus_id: id.to_string(),
                ..GpuQuery::default()
            });
            section.clear();
            continue;
        }
        let Some(gpu) = gpus.last_mut() else { continue };
        let indent = l.len() - l.trim_start().len();
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        match t.split_once(':') {
            None => {
                if indent <= 4 {
                    section = t.to_string();
                }
            }
            Some((k, v)) => {
                let (k, v) = (k.trim(), v.trim().to_string());
                if indent <= 4 {
                    section.clear();
                    match k {
                        "Product Name" => gpu.product_name = Some(v),
                        "Product Architecture" => gpu.architecture = Some(v),
                        _ => {}
                    }
                } else if section == "Fabric" && indent <= 8 {
                    match k {
                        "State" => gpu.fabric_state = Some(v),
                        "Status" => gpu.fabric_status = Some(v),
                        _ => {}
                    }
                }
            }
        }
    }
    gpus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fabric_and_architecture_per_gpu() {
        let text = "\n==============NVSMI LOG==============\n\nDriver Version                            : 550.90.07\n\
Attached GPUs                             : 2\n\
GPU 00000000:18:00.0\n    Product Name                          : NVIDIA H100 80GB HBM3\n\
    Product Architecture                  : Hopper\n    Voltage\n        Graphics                          : 670.000 mV\n\
    Fabric\n        State                             : In Progress\n        Status                            : N/A\n\
    Processes                             : None\n\n\
GPU 00000000:2A:00.0\n    Product Name                          : NVIDIA H100 80GB HBM3\n\
    Fabric\n        State                             : Completed\n        Status                            : Success\n";
        let g = parse(text);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].architecture.as_deref(), Some("Hopper"));
        assert_eq!(g[0].fabric_state.as_deref(), Some("In Progress"));
        assert_eq!(g[1].pci_bus_id, "00000000:2A:00.0");
        assert_eq!(g[1].fabric_status.as_deref(), Some("Success"));
        assert!(parse("GPU\n\u{0}\n").is_empty());
    }
}
