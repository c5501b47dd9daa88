//! NCCL debug output (`NCCL_DEBUG=INFO`): the NCCL version, the transport of every channel, the
//! network and RDMA devices NCCL picked, GPUDirect RDMA notices and WARN lines. Lines are found
//! by their `NCCL INFO` / `NCCL WARN` marker, so any launcher prefix (`[1,0]<stdout>:`, `0: `,
//! `host:pid:tid [dev]`) and interleaved timestamp lines are ignored. Log lines: nccl-env.md §7.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Transport {
    /// `P2P/...` (IPC, CUMEM, direct pointer): GPU to GPU inside a node.
    P2p,
    /// `SHM/...`: through host shared memory.
    Shm,
    /// `NVLS`.
    Nvls,
    /// `NET/IB/<dev>[/GDRDMA]`: NCCL's own InfiniBand/RoCE transport.
    NetIb {
        dev: Option<u32>,
        gdr: bool,
    },
    /// `NET/Socket/<dev>`: TCP sockets.
    NetSocket,
    /// A network plugin, e.g. `NET/IBext_v8/4`, `NET/AWS Libfabric/0`.
    NetPlugin {
        name: String,
        gdr: bool,
    },
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Channel {
    /// 1-based line number in the log.
    pub line: usize,
    /// The text after ` via `.
    pub via: String,
    pub transport: Transport,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NcclLog {
    /// Versions announced (`NCCL version 2.21.5+cuda12.4`), one per distinct value.
    pub versions: Vec<String>,
    pub channels: Vec<Channel>,
    /// `Using network IB|Socket|IBext|...`.
    pub networks: Vec<String>,
    /// RDMA ports from `NET/IB : Using [0]mlx5_0:1/IB [1]...`, in NCCL's device order.
    pub ib_devices: Vec<String>,
    /// `GPU Direct RDMA Disabled for HCA ...` lines.
    pub gdr_disabled: Vec<String>,
    /// (line, text) of every `NCCL WARN`.
    pub warnings: Vec<(usize, String)>,
    /// Lines carrying an NCCL marker.
    pub nccl_lines: usize,
}

fn classify(via: &str) -> Transport {
    let gdr = via.contains("/GDRDMA");
    if via.starts_with("P2P") {
        Transport::P2p
    } else if via.starts_with("SHM") {
        Transport::Shm
    } else if via.starts_with("NVLS") {
        Transport::Nvls
    } else if let Some(rest) = via.strip_prefix("NET/IB/") {
        Transport::NetIb {
            dev: rest.split('/').next().and_then(|d| d.trim().parse().ok()),
            gdr,
        }
    } else if via.starts_with("NET/Socket") {
        Transport::NetSocket
    } else if let Some(rest) = via.strip_prefix("NET/") {
        Transport::NetPlugin {
            name: rest.split('/').next().unwrap_or("").to_string(),
            gdr,
        }
    } else {
        Transport::Other(via.to_string())
    }
}

pub fn parse(text: &str) -> NcclLog {
    let mut log = NcclLog::default();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        if let Some(pos) = raw.find("NCCL version ") {
            let v = raw[pos + "NCCL version ".len()..]
                .split_whitespace()
                .next()
                .unwrap_or("");
            if v.starts_with(|c: char| c.is_ascii_digit()) && !log.versions.iter().any(|x| x == v) {
                log.versions.push(v.to_string());
            }
        }
        if let Some(pos) = raw.find("NCCL WARN") {
            log.nccl_lines += 1;
            log.warnings
                .push((line_no, raw[pos + "NCCL WARN".len()..].trim().to_string()));
            continue;
        }
        let Some(pos) = raw.find("NCCL INFO") else {
            continue;
        };
        log.nccl_lines += 1;
        let msg = raw[pos + "NCCL INFO".len()..].trim();
        if msg.starts_with("Channel ")
            && let Some((_, via)) = msg.split_once(" via ")
        {
            let via = via.trim().to_string();
            log.channels.push(Channel {
                line: line_no,
                transport: classify(&via),
                via,
            });
        } else if let Some(net) = msg.strip_prefix("Using network ") {
            let net = net.trim().to_string();
            if !log.networks.contains(&net) {
                log.networks.push(net);
            }
        } else if let Some(rest) = msg
            .strip_prefix("NET/IB : Using ")
            .or_else(|| msg.strip_prefix("NET/IB: Using "))
        {
            for tok in rest.split_whitespace().take_while(|t| *t != ";") {
                // "[0]mlx5_0:1/IB" or "[1]mlx5_bond_0:1/RoCE"
                if let Some((_, dev)) = tok.split_once(']') {
                    let dev = dev.split('/').next().unwrap_or(dev).to_string();
                    if !dev.is_empty() && !log.ib_devices.contains(&dev) {
                        log.ib_devices.push(dev);
                    }
                }
            }
        } else if msg.contains("GPU Direct RDMA Disabled") {
            log.gdr_disabled.push(msg.to_string());
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
[1,0]<stdout>:node1:4242:4300 [0] NCCL INFO NCCL version 2.21.5+cuda12.4
2026-11-24T10:00:00.000Z
node1:4242:4300 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_3:1/IB ; OOB ibp26s0:10.0.0.1<0>
node1:4242:4300 [0] NCCL INFO Using network IB
node1:4242:4300 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/CUMEM/read
node1:4242:4300 [0] NCCL INFO Channel 00/0 : 8[0] -> 0[0] [receive] via NET/IB/0/GDRDMA
node1:4242:4300 [0] NCCL INFO Channel 01/0 : 8[0] -> 0[0] [receive] via NET/IB/1
0: node1:4242:4300 [0] NCCL INFO Channel 02/0 : 3[3] -> 2[2] via P2P/direct pointer
node1:4242:4301 [0] NCCL WARN NET/IB : Got completion from peer 10.0.0.2<0> with status=12 opcode=0 len=0 vendor err 129
";

    #[test]
    fn channels_devices_versions_and_warnings() {
        let log = parse(LOG);
        assert_eq!(log.versions, ["2.21.5+cuda12.4"]);
        assert_eq!(log.ib_devices, ["mlx5_0:1", "mlx5_3:1"]);
        assert_eq!(log.networks, ["IB"]);
        assert_eq!(log.channels.len(), 4);
        assert_eq!(
            log.channels[1].transport,
            Transport::NetIb {
                dev: Some(0),
                gdr: true
            }
        );
        assert_eq!(
            log.channels[2].transport,
            Transport::NetIb {
                dev: Some(1),
                gdr: false
            }
        );
        assert_eq!(log.channels[3].via, "P2P/direct pointer");
        assert_eq!(log.warnings.len(), 1);
        assert_eq!(log.warnings[0].0, 9);
    }

    #[test]
    fn plugins_sockets_and_junk() {
        assert_eq!(
            classify("NET/IBext_v8/4"),
            Transport::NetPlugin {
                name: "IBext_v8".into(),
                gdr: false
            }
        );
        assert_eq!(
            classify("NET/AWS Libfabric/0/GDRDMA"),
            Transport::NetPlugin {
                name: "AWS Libfabric".into(),
                gdr: true
            }
        );
        assert_eq!(classify("NET/Socket/0"), Transport::NetSocket);
        assert_eq!(
            parse("\u{0}\u{ff}NCCL INFO Channel x via"),
            NcclLog {
                nccl_lines: 1,
                ..NcclLog::default()
            }
        );
    }
}
