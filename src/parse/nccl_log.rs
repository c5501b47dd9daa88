//! NCCL debug output (`NCCL_DEBUG=INFO`/`WARN`): the NCCL version, the transport of every
//! channel, the networks and NICs NCCL chose, GPUDirect RDMA per HCA, and WARN lines.
//!
//! Launcher prefixes (`[1,0]<stdout>:`, `0: `, `[0] `), `host:pid:tid [dev]` headers, timestamp
//! lines (including CloudWatch exports where the timestamp sits on its own line) and other
//! programs' output between NCCL lines are all tolerated: each line is searched for the NCCL
//! markers rather than parsed from its start. Line formats as NCCL 2.30.7 prints them (src/transport/net_ib.cc, src/transport/nvls.cc, src/init.cc).

use regex::Regex;
use serde::Serialize;
use std::sync::LazyLock;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NcclLog {
    /// Lines that carry an NCCL marker (`NCCL INFO`, `NCCL WARN`, `NCCL version`).
    pub nccl_lines: usize,
    /// `2.21.5+cuda12.4` (the first one seen).
    pub version: Option<String>,
    /// `Using network IB` / `Socket` / `IBext` / `AWS Libfabric`, each once.
    pub networks: Vec<String>,
    /// Devices from `NET/IB : Using [0]mlx5_0:1/IB ...`.
    pub ib_devices: Vec<IbDevice>,
    /// `GPU Direct RDMA Enabled|Disabled for HCA <n> '<name>'`.
    pub gdr_hcas: Vec<(String, bool)>,
    pub channels: Vec<Channel>,
    pub warnings: Vec<LogLine>,
    /// Lines saying a test or call failed (`Test NCCL failure ...`).
    pub failures: Vec<LogLine>,
    /// `NVLS multicast support is available` (true) / `is not available` (false), NCCL 2.30.7 src/transport/nvls.cc.
    pub nvls_multicast: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IbDevice {
    pub index: u32,
    pub name: String,
    pub port: u32,
    /// `IB` or `RoCE`, plus any suffix such as `SHARP`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    /// 1-based line number in the file.
    pub line: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Channel {
    pub line: usize,
    pub host: Option<String>,
    pub channel: u32,
    pub from_rank: u32,
    pub to_rank: u32,
    /// `send` / `receive` for network channels.
    pub direction: Option<String>,
    /// What follows `via`, verbatim: `P2P/CUMEM/read`, `NET/IB/9/GDRDMA`, `SHM/direct/direct`.
    pub transport: String,
}

/// A network transport, split: `NET/IB/9/GDRDMA` → net `IB`, device 9, GDR.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetTransport {
    pub net: String,
    pub device: u32,
    pub gdr: bool,
}

impl Channel {
    /// The family: `P2P`, `SHM`, `NET`, `NVLS`, `CollNet`, ... (the first path segment).
    pub fn family(&self) -> &str {
        self.transport.split('/').next().unwrap_or("")
    }

    pub fn net(&self) -> Option<NetTransport> {
        let rest = self.transport.strip_prefix("NET/")?;
        let parts: Vec<&str> = rest.split('/').collect();
        let pos = parts
            .iter()
            .position(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))?;
        if pos == 0 {
            return None;
        }
        Some(NetTransport {
            net: parts[..pos].join("/"),
            device: parts[pos].parse().ok()?,
            gdr: parts[pos + 1..].contains(&"GDRDMA"),
        })
    }
}

static VERSION: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"NCCL version (\d+\.\d+\.\d+(?:\+cuda[0-9.]+)?)").ok());
static HOST: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"([A-Za-z0-9_.\-]+):\d+:\d+ \[\d+\]").ok());
static CHANNEL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"Channel\s+(\d+)(?:/\d+)?\s*:\s*(\d+)\[[0-9a-fA-Fx]+\]\s*->\s*(\d+)\[[0-9a-fA-Fx]+\](?:\s*\[(send|receive)\])?\s+via\s+(.+?)\s*$",
    )
    .ok()
});
static IB_DEV: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\[(\d+)\]([A-Za-z0-9_.\-]+):(\d+)/([A-Za-z0-9_/]+)").ok());
static GDR_HCA: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"GPU Direct RDMA (Enabled|Disabled) for HCA \d+ '([^']+)'").ok());

/// Parses NCCL debug output. Never fails: lines that are not NCCL's are skipped.
pub fn parse(text: &str) -> NcclLog {
    let mut log = NcclLog::default();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end();
        let info = line.find("NCCL INFO ").map(|p| &line[p + "NCCL INFO ".len()..]);
        let warn = line.find("NCCL WARN ").map(|p| &line[p + "NCCL WARN ".len()..]);
        // Cheap substring tests first: a run's log can hold millions of lines.
        let version = VERSION
            .as_ref()
            .filter(|_| line.contains("NCCL version"))
            .and_then(|r| r.captures(line))
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_string());
        if line.contains("NCCL failure") {
            log.failures.push(LogLine {
                line: line_no,
                text: line.trim().to_string(),
            });
        }
        if info.is_none() && warn.is_none() && version.is_none() {
            continue;
        }
        log.nccl_lines += 1;
        if log.version.is_none() {
            log.version = version;
        }
        if let Some(w) = warn {
            log.warnings.push(LogLine {
                line: line_no,
                text: w.trim().to_string(),
            });
            continue;
        }
        let Some(msg) = info else { continue };
        if msg.starts_with("NVLS multicast support is") {
            let available = !msg.contains("not available");
            // Any rank without multicast makes NVLS unusable for the communicator.
            log.nvls_multicast = Some(log.nvls_multicast.unwrap_or(true) && available);
        } else if let Some(net) = msg.strip_prefix("Using network ") {
            let net = net.trim().to_string();
            if !net.is_empty() && !log.networks.contains(&net) {
                log.networks.push(net);
            }
        } else if let Some(rest) = msg
            .strip_prefix("NET/IB : Using ")
            .or_else(|| msg.strip_prefix("NET/IB: Using "))
        {
            let devs = rest.split(';').next().unwrap_or("");
            for c in IB_DEV
                .as_ref()
                .map(|r| r.captures_iter(devs).collect::<Vec<_>>())
                .unwrap_or_default()
            {
                let (Some(idx), Some(name), Some(port), Some(kind)) =
                    (c.get(1), c.get(2), c.get(3), c.get(4))
                else {
                    continue;
                };
                let (Ok(index), Ok(port)) = (idx.as_str().parse(), port.as_str().parse()) else {
                    continue;
                };
                let dev = IbDevice {
                    index,
                    name: name.as_str().to_string(),
                    port,
                    kind: kind.as_str().to_string(),
                };
                if !log.ib_devices.contains(&dev) {
                    log.ib_devices.push(dev);
                }
            }
        } else if let Some(c) = GDR_HCA
            .as_ref()
            .filter(|_| msg.contains("GPU Direct RDMA"))
            .and_then(|r| r.captures(msg))
        {
            if let (Some(state), Some(name)) = (c.get(1), c.get(2)) {
                let entry = (name.as_str().to_string(), state.as_str() == "Enabled");
                if !log.gdr_hcas.contains(&entry) {
                    log.gdr_hcas.push(entry);
                }
            }
        } else if let Some(c) = CHANNEL
            .as_ref()
            .filter(|_| msg.starts_with("Channel"))
            .and_then(|r| r.captures(msg))
        {
            let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
            if let (Some(channel), Some(from_rank), Some(to_rank), Some(t)) =
                (num(1), num(2), num(3), c.get(5))
            {
                log.channels.push(Channel {
                    line: line_no,
                    host: HOST
                        .as_ref()
                        .and_then(|r| r.captures(line))
                        .and_then(|h| h.get(1))
                        .map(|h| h.as_str().to_string()),
                    channel,
                    from_rank,
                    to_rank,
                    direction: c.get(4).map(|d| d.as_str().to_string()),
                    transport: t.as_str().to_string(),
                });
            }
        }
    }
    log
}

impl NcclLog {
    /// Each distinct transport with the number of channel lines that used it, in first-seen order.
    pub fn transport_counts(&self) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = Vec::new();
        for c in &self.channels {
            match v.iter_mut().find(|(t, _)| *t == c.transport) {
                Some((_, n)) => *n += 1,
                None => v.push((c.transport.clone(), 1)),
            }
        }
        v
    }

    /// The device name NCCL's IB transport gave index `dev`.
    pub fn ib_device_name(&self, dev: u32) -> Option<&str> {
        self.ib_devices
            .iter()
            .find(|d| d.index == dev)
            .map(|d| d.name.as_str())
    }
}

/// Whether a WARN line reports an IB work completion with an error status (NCCL's net_ib
/// prints `NET/IB : Got completion from peer ... with status=N` or, in older versions,
/// `... with error N`).
pub fn is_ib_completion_error(warn: &str) -> bool {
    let w = warn.to_ascii_lowercase();
    w.contains("got completion") && (w.contains("error") || w.contains("status="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_timestamps_are_tolerated() {
        let text = "2024-12-04T05:27:45.082Z\n\
algo-1:18059:18136 [2] NCCL INFO Channel 01/0 : 6[6] -> 7[7] via P2P/CUMEM/read\n\
[1,0]<stdout>:node-a:21:27 [0] NCCL INFO Channel 00/0 : 0[35000] -> 1[f5000] [send] via NET/AWS Libfabric/0\n\
0: node-b:5:6 [3] NCCL INFO Channel 02/1 : 3[3] -> 11[3] [receive] via NET/IB/3/GDRDMA\n\
[0] node-c:7:8 [1] NCCL INFO Channel 18 : 7[7] -> 6[6] via SHM/direct/direct\n\
myles:1:2 [3] NCCL INFO Channel 00/0 : 3[3] -> 2[2] via P2P/direct pointer\n\
NCCL version 2.4.7+cuda10.0\n";
        let log = parse(text);
        assert_eq!(log.version.as_deref(), Some("2.4.7+cuda10.0"));
        let t: Vec<&str> = log.channels.iter().map(|c| c.transport.as_str()).collect();
        assert_eq!(
            t,
            [
                "P2P/CUMEM/read",
                "NET/AWS Libfabric/0",
                "NET/IB/3/GDRDMA",
                "SHM/direct/direct",
                "P2P/direct pointer"
            ]
        );
        assert_eq!(log.channels[1].host.as_deref(), Some("node-a"));
        assert_eq!(log.channels[2].direction.as_deref(), Some("receive"));
        let net = log.channels[2].net().expect("net");
        assert_eq!((net.net.as_str(), net.device, net.gdr), ("IB", 3, true));
        let aws = log.channels[1].net().expect("aws");
        assert_eq!(
            (aws.net.as_str(), aws.device, aws.gdr),
            ("AWS Libfabric", 0, false)
        );
        assert_eq!(log.channels[4].family(), "P2P");
        assert!(log.channels[0].net().is_none());
    }

    #[test]
    fn ib_devices_gdr_lines_and_warnings() {
        let text = "h:1:1 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB/SHARP [1]mlx5_bond_0:1/RoCE [RO]; OOB eth0:10.0.0.1<0>\n\
h:1:1 [0] NCCL INFO NET/IB : GPU Direct RDMA Disabled for HCA 1 'mlx5_bond_0'\n\
h:1:1 [0] NCCL INFO Using network IB\n\
h:1:1 [0] NCCL INFO Using network IB\n\
h:1:9 [0] transport/net_ib.cc:1295 NCCL WARN NET/IB : Got completion from peer 10.0.0.2<4242> with status=12 opcode=0 len=0 vendor err 129 (Send)\n\
h: Test NCCL failure common.cu:958 'remote process exited or there was a network error / '\n";
        let log = parse(text);
        assert_eq!(log.ib_devices.len(), 2);
        assert_eq!(log.ib_devices[0].kind, "IB/SHARP");
        assert_eq!(log.ib_device_name(1), Some("mlx5_bond_0"));
        assert_eq!(log.gdr_hcas, vec![("mlx5_bond_0".to_string(), false)]);
        assert_eq!(log.networks, vec!["IB".to_string()]);
        assert_eq!(log.warnings.len(), 1);
        assert_eq!(log.warnings[0].line, 5);
        assert!(is_ib_completion_error(&log.warnings[0].text));
        assert_eq!(log.failures.len(), 1);
        assert_eq!(log.nvls_multicast, None);
        let nvls = parse(
            "h:1:1 [0] NCCL INFO NVLS multicast support is available on dev 0\nh:1:2 [1] NCCL INFO NVLS multicast support is not available on dev 1\n",
        );
        assert_eq!(nvls.nvls_multicast, Some(false));
    }

    #[test]
    fn junk_gives_an_empty_log() {
        assert_eq!(parse("\u{0}\u{1}binary\n\n"), NcclLog::default());
        assert_eq!(parse("Channel 00/02 :    0   1\n").channels.len(), 0);
    }
}
