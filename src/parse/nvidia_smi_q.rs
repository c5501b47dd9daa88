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
    /// `Fabric` → `ClusterUUID` and `CliqueId` (drivers from R550 on): GPUs with the same
    /// cluster UUID and clique id share one NVLink domain (a multi-node NVLink rack such as
    /// GB200 NVL72); an all-zero UUID means no multi-node domain.
    #[serde(default)]
    pub fabric_cluster_uuid: Option<String>,
    #[serde(default)]
    pub fabric_clique_id: Option<u32>,
    /// `MIG Mode` → `Current` (`Enabled`, `Disabled`, `N/A`).
    #[serde(default)]
    pub mig_mode: Option<String>,
    /// One `MIG Device` block per instance: (GPU instance id, compute instance id).
    #[serde(default)]
    pub mig_devices: Vec<(Option<u32>, Option<u32>)>,
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
                    if t == "MIG Device" {
                        gpu.mig_devices.push((None, None));
                    }
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
                        "ClusterUUID" | "Cluster UUID" => gpu.fabric_cluster_uuid = Some(v),
                        "CliqueId" | "Clique ID" => gpu.fabric_clique_id = v.parse().ok(),
                        _ => {}
                    }
                } else if section == "MIG Mode" && indent <= 8 && k == "Current" {
                    gpu.mig_mode = Some(v);
                } else if section == "MIG Device"
                    && indent <= 8
                    && let Some(last) = gpu.mig_devices.last_mut()
                {
                    match k {
                        "GPU Instance ID" => last.0 = v.parse().ok(),
                        "Compute Instance ID" => last.1 = v.parse().ok(),
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

    #[test]
    fn mig_devices_and_the_nvlink_clique() {
        let text = [
            "GPU 00000000:19:00.0",
            "    Product Name                          : NVIDIA H200",
            "    MIG Mode",
            "        Current                           : Enabled",
            "        Pending                           : Enabled",
            "    MIG Device",
            "        Index                             : 0",
            "        GPU Instance ID                   : 2",
            "        Compute Instance ID               : 0",
            "        Device Attributes",
            "            Shared",
            "                Multiprocessor count      : 16",
            "    MIG Device",
            "        Index                             : 1",
            "        GPU Instance ID                   : 3",
            "        Compute Instance ID               : 1",
            "    Fabric",
            "        State                             : Completed",
            "        Status                            : Success",
            "        CliqueId                          : 7",
            "        ClusterUUID                       : 3f1e2d4c-0000-4a5b-8c9d-0123456789ab",
        ]
        .join("\n");
        let g = parse(&text);
        assert_eq!(g[0].mig_mode.as_deref(), Some("Enabled"));
        assert_eq!(g[0].mig_devices, vec![(Some(2), Some(0)), (Some(3), Some(1))]);
        assert_eq!(g[0].fabric_clique_id, Some(7));
        assert_eq!(
            g[0].fabric_cluster_uuid.as_deref(),
            Some("3f1e2d4c-0000-4a5b-8c9d-0123456789ab")
        );
    }
}
