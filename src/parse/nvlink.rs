//! `nvidia-smi nvlink --status` (`-s`): per GPU, its links with their speed in GB/s or
//! `<inactive>`, or one of the driver's messages (no NVLink, all links inactive, MIG mode).
//! Empty output (GPUs without NVLink on some drivers) is a valid, empty result.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuLinks {
    pub gpu: u32,
    pub name: String,
    /// (link number, GB/s per direction), `None` for `<inactive>`.
    pub links: Vec<(u32, Option<f64>)>,
    /// A driver message printed instead of links, e.g. `Device does not have or support Nvlink`.
    pub message: Option<String>,
}

impl GpuLinks {
    pub fn active(&self) -> usize {
        self.links.iter().filter(|(_, s)| s.is_some()).count()
    }
}

pub fn parse(text: &str) -> Vec<GpuLinks> {
    let mut gpus: Vec<GpuLinks> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("GPU ")
            && let Some((idx, tail)) = rest.split_once(':')
            && let Ok(gpu) = idx.trim().parse::<u32>()
        {
            let name = tail.split(" (UUID").next().unwrap_or("").trim().to_string();
            gpus.push(GpuLinks {
                gpu,
                name,
                links: Vec::new(),
                message: None,
            });
            continue;
        }
        if let Some(rest) = t.strip_prefix("Link ")
            && let Some((n, speed)) = rest.split_once(':')
            && let Ok(n) = n.trim().parse::<u32>()
            && let Some(g) = gpus.last_mut()
        {
            let speed = speed.trim();
            let gbps = if speed.contains("inactive") {
                None
            } else {
                super::leading_number(speed)
            };
            g.links.push((n, gbps));
            continue;
        }
        if !t.is_empty()
            && !t.chars().all(|c| c == '.')
            && let Some(g) = gpus.last_mut()
        {
            g.message = Some(t.to_string());
        }
    }
    gpus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_with_speeds_and_inactive_links() {
        let text =
            "GPU 3: Tesla V100-SXM2-32GB (UUID: GPU-x)\n\t Link 0: 25.781 GB/s\n\t Link 1: <inactive>\n";
        let g = parse(text);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].gpu, 3);
        assert_eq!(g[0].name, "Tesla V100-SXM2-32GB");
        assert_eq!(g[0].links, vec![(0, Some(25.781)), (1, None)]);
        assert_eq!(g[0].active(), 1);
    }

    #[test]
    fn driver_messages_are_kept() {
        let g = parse("GPU 0: NVIDIA L40S (UUID: GPU-0)\nDevice does not have or support Nvlink\n");
        assert_eq!(
            g[0].message.as_deref(),
            Some("Device does not have or support Nvlink")
        );
        assert!(g[0].links.is_empty());
        assert!(parse("").is_empty());
    }
}
