//! Every node parser over the real captures in `../shared/samples`: no panic on any of them, and
//! the facts that `samples/INDEX.md` describes.

use super::common::{sample, samples};
use nccltune::parse::{ibstat, lsmod, nvlink, ofed_info, query_gpu, topo};

#[test]
fn ibstat_samples() {
    let Some(files) = samples("ibstat") else { return };
    for (_, text) in &files {
        let _ = ibstat::parse(text);
    }
    let h100 = ibstat::parse(sample(&files, "gpud-h100"));
    assert_eq!(h100.cas.len(), 9);
    let ib400 = h100
        .cas
        .iter()
        .filter(|c| c.ca_type.as_deref() == Some("MT4129"))
        .filter(|c| {
            c.ports[0].rate_gbps == Some(400.0) && c.ports[0].link_layer.as_deref() == Some("InfiniBand")
        })
        .count();
    assert_eq!(ib400, 8);
    let bf3 = h100
        .cas
        .iter()
        .find(|c| c.ca_type.as_deref() == Some("MT41692"))
        .expect("BlueField-3");
    assert_eq!(bf3.ports[0].link_layer.as_deref(), Some("Ethernet"));
    // CA numbering has gaps: mlx5_0, mlx5_1, mlx5_4, ...
    assert_eq!(h100.cas[2].name, "mlx5_4");

    let a100 = ibstat::parse(sample(&files, "gpud-a100"));
    let layers: Vec<_> = a100
        .cas
        .iter()
        .filter_map(|c| c.ports[0].link_layer.clone())
        .collect();
    assert_eq!(layers.iter().filter(|l| *l == "InfiniBand").count(), 8);
    assert_eq!(layers.iter().filter(|l| *l == "Ethernet").count(), 1);

    let roce = ibstat::parse(sample(&files, "issue-mooncake1999"));
    assert_eq!(roce.cas[0].ports[0].link_layer.as_deref(), Some("Ethernet"));
    assert_eq!(roce.cas[0].ports[0].rate_gbps, Some(200.0));
    assert!(
        roce.cas
            .iter()
            .any(|c| c.ca_type.as_deref() == Some("MT4125") && c.ports[0].state.as_deref() == Some("Down"))
    );

    let panic = ibstat::parse(sample(&files, "issue-azhpcdiag59-azure-accelnet"));
    assert!(panic.cas.is_empty());
    assert!(panic.panic.as_deref().is_some_and(|p| p.contains("mlx5_an0")));

    let flat = ibstat::parse(sample(&files, "issue-azhpcdiag59-azure-mlx5_ib0"));
    let p = &flat.cas[0].ports[0];
    assert_eq!(
        (p.state.as_deref(), p.physical_state.as_deref(), p.base_lid),
        (Some("Initializing"), Some("LinkUp"), Some(65535))
    );

    let mixed = ibstat::parse(sample(&files, "issue-nccltests128"));
    assert_eq!(mixed.cas[1].ports[0].state.as_deref(), Some("Down"));
    assert_eq!(mixed.cas[1].ports[0].rate_gbps, Some(10.0));

    let bond = ibstat::parse(sample(&files, "issue-pplxgarden2"));
    assert_eq!(bond.cas[0].name, "mlx5_bond_0");
}

#[test]
fn topo_samples() {
    let Some(files) = samples("nvidia-smi-topo") else {
        return;
    };
    for (name, text) in &files {
        assert!(topo::parse(text).is_ok(), "{name}");
    }
    let l40s = topo::parse(sample(&files, "vllm-collectenv-2xl40s")).expect("parse");
    assert_eq!(l40s.gpu_indices(), [0, 1]);
    assert_eq!(l40s.nic_name("NIC1"), "mlx5_1");
    assert_eq!(l40s.rows[0].cpu_affinity.as_deref(), Some("0,2,4,6,8,10"));
    assert_eq!(l40s.path("GPU0", "NIC0"), Some(topo::Path::Sys));
    assert_eq!(l40s.path("NIC0", "NIC1"), Some(topo::Path::Pix));

    let win = topo::parse(sample(&files, "exporter-windows")).expect("parse");
    assert_eq!(win.gpu_indices(), [0]);
    assert_eq!(win.rows[0].cpu_affinity, None);

    let h100 = topo::parse(sample(&files, "mlengineering-8xh100")).expect("parse");
    assert_eq!(h100.gpu_indices().len(), 8);
    assert_eq!(h100.path("GPU3", "GPU7"), Some(topo::Path::NvLink(18)));
    assert_eq!(h100.rows[4].cpu_affinity.as_deref(), Some("52-103,156-207"));

    let many = topo::parse(sample(&files, "issue-vllm14537")).expect("parse");
    assert_eq!(many.nics_found, Some((76, 56)));
    assert_eq!(many.nic_columns().len(), 56);
    assert_eq!(many.path("GPU0", "NIC0"), Some(topo::Path::Pxb));

    let pcie = topo::parse(sample(&files, "issue-pytorch47885")).expect("parse");
    assert_eq!(pcie.gpu_indices().len(), 6);
    assert_eq!(pcie.path("GPU3", "GPU4"), Some(topo::Path::Pix));
    assert_eq!(pcie.rows[5].numa_affinity.as_deref(), Some("1"));

    let nv2 = topo::parse(sample(&files, "mlengineering-2gpu-nv2")).expect("parse");
    assert_eq!(nv2.path("GPU0", "GPU1"), Some(topo::Path::NvLink(2)));
    assert_eq!(nv2.rows[0].numa_affinity, None);
}

#[test]
fn nvlink_samples() {
    let Some(files) = samples("nvidia-smi-nvlink") else {
        return;
    };
    let h100 = nvlink::parse(sample(&files, "exporter-h100"));
    assert_eq!(h100[0].active(), 18);
    assert!(h100[0].links.iter().all(|(_, s)| *s == Some(26.562)));
    assert!(nvlink::parse(sample(&files, "gpud-a10")).is_empty());
    let l40s = nvlink::parse(sample(&files, "exporter-l40s"));
    assert!(
        l40s[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("does not have or support Nvlink"))
    );
    let inactive = nvlink::parse(sample(&files, "exporter-rtx2080s"));
    assert!(
        inactive[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("all links are inActive"))
    );
    let v100 = nvlink::parse(sample(&files, "issue-azhpcdiag73"));
    assert_eq!((v100[0].gpu, v100[0].active(), v100[0].links.len()), (3, 4, 6));
    let gb200 = nvlink::parse(sample(&files, "issue-k8stestinfra371"));
    assert_eq!(gb200[0].links[17], (17, Some(53.125)));
    assert_eq!(gb200.len(), 2);
}

#[test]
fn query_gpu_samples() {
    let Some(files) = samples("nvidia-smi-query-gpu") else {
        return;
    };
    let h100 = query_gpu::parse(sample(&files, "exporter-h100")).expect("parse");
    assert_eq!(h100.len(), 1);
    assert_eq!(h100[0].get("name"), Some("NVIDIA H100 80GB HBM3"));
    assert!(h100[0].get("memory.total").is_some_and(|m| m.ends_with("MiB")));
    let h200 = query_gpu::parse(sample(&files, "exporter-h200-mig")).expect("parse");
    assert_eq!(h200[0].get("mig.mode.current"), Some("Enabled"));
    let win = query_gpu::parse(sample(&files, "exporter-windows")).expect("parse");
    assert_eq!(win[0].fields.len(), 239);
    assert_eq!(win[0].get("mig.mode.current"), None, "[N/A] is no value");
}

#[test]
fn lsmod_and_ofed_samples() {
    if let Some(files) = samples("lsmod") {
        let inbox = lsmod::parse(sample(&files, "skyao-debian12-cx5-inbox"));
        assert_eq!(inbox.len(), 7);
        assert!(lsmod::has(&inbox, "mlx5_core"));
        let ofed = lsmod::parse(sample(&files, "skyao-debian12-cx5-mlnx-ofed"));
        let compat = ofed.iter().find(|m| m.name == "mlx_compat").expect("mlx_compat");
        assert_eq!((compat.used_by_count, compat.used_by.len()), (6, 6));
        let broken = lsmod::parse(sample(&files, "skyao-pve81"));
        assert!(!lsmod::has(&broken, "mlx5_core"));
        let numbered = lsmod::parse(sample(&files, "issue-bazzite5398"));
        assert_eq!(numbered[0].name, "nvidia_uvm");
        assert!(lsmod::has(&numbered, "nvidia"));
        assert!(lsmod::parse(sample(&files, "issue-nccl988")).is_empty());
    }
    if let Some(files) = samples("ofed_info") {
        let v = ofed_info::parse(sample(&files, "issue-nvpeermem63")).expect("version");
        assert_eq!(
            (v.flavor.as_str(), v.version.as_str()),
            ("MLNX_OFED", "4.7-1.0.0.1")
        );
    }
}

#[test]
fn no_node_parser_panics_on_any_sample() {
    for tool in [
        "ibstat",
        "nvidia-smi-topo",
        "nvidia-smi-nvlink",
        "nvidia-smi-query-gpu",
        "lsmod",
        "ofed_info",
        "nvidia-smi-q",
        "ibv_devinfo",
        "ibdev2netdev",
        "nccl-tests",
        "nccl-debug",
    ] {
        let Some(files) = samples(tool) else { continue };
        for (_, text) in files {
            let _ = ibstat::parse(&text);
            let _ = topo::parse(&text);
            let _ = nvlink::parse(&text);
            let _ = query_gpu::parse(&text);
            let _ = lsmod::parse(&text);
            let _ = ofed_info::parse(&text);
        }
    }
}
