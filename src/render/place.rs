//! Renderers of the placement report: a readable table, and per-replica host files (one line
//! per rank, TP ranks adjacent) with the `CUDA_VISIBLE_DEVICES` each node needs. JSON is the
//! shared `render::json` of the same model.

use super::findings;
use crate::place::{PlaceReport, ReplicaOut, Replicas, StageOut};
use std::fmt::Write;

/// `n0:0-3,6` for a group's GPUs, nodes in rank order, `+` between nodes.
pub fn gpu_list(stage: &StageOut) -> String {
    let mut parts: Vec<(String, Vec<u32>)> = Vec::new();
    for g in &stage.gpus {
        match parts.last_mut() {
            Some((n, v)) if *n == g.node => v.push(g.gpu),
            _ => parts.push((g.node.clone(), vec![g.gpu])),
        }
    }
    parts
        .iter()
        .map(|(n, v)| format!("{n}:{}", ranges(v)))
        .collect::<Vec<_>>()
        .join("+")
}

/// `0-3,6` from `[0,1,2,3,6]` (runs of consecutive numbers).
fn ranges(v: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if j > i {
            format!("{}-{}", v[i], v[j])
        } else {
            v[i].to_string()
        });
        i = j + 1;
    }
    out.join(",")
}

fn us(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn size(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    const KIB: u64 = 1 << 10;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// The box-drawn table of `render::table` (tabled's "sharp" style: one space of padding,
/// left aligned), written directly: at cluster scale (65,536 nodes give 16,384 replicas and
/// 130k rows) building tabled's grid is most of `place`'s time. Cells here are ASCII (names
/// are validated host names, the rest is ours), so characters are columns; a test checks the
/// bytes against `render::table`.
pub fn plain_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.chars().count());
            }
        }
    }
    let line_len: usize = w.iter().map(|x| (x + 3) * 3).sum::<usize>() + 4;
    let mut s = String::with_capacity(line_len * (rows.len() + 4));
    let rule = |s: &mut String, l: char, m: char, r: char| {
        s.push(l);
        for (i, x) in w.iter().enumerate() {
            if i > 0 {
                s.push(m);
            }
            for _ in 0..x + 2 {
                s.push('─');
            }
        }
        s.push(r);
        s.push('\n');
    };
    let row = |s: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        s.push('│');
        for (i, x) in w.iter().enumerate() {
            let c = cells.next().unwrap_or("");
            s.push(' ');
            s.push_str(c);
            for _ in c.chars().count()..*x + 1 {
                s.push(' ');
            }
            if i + 1 < w.len() {
                s.push('│');
            }
        }
        s.push('│');
        s.push('\n');
    };
    rule(&mut s, '┌', '┬', '┐');
    row(&mut s, &mut headers.iter().copied());
    rule(&mut s, '├', '┼', '┤');
    for r in rows {
        row(&mut s, &mut r.iter().map(String::as_str));
    }
    rule(&mut s, '└', '┴', '┘');
    s
}

pub fn to_table(r: &PlaceReport) -> String {
    to_table_with(r, plain_table)
}

/// The table with the given table writer (the benchmark compares writers).
pub fn to_table_with(r: &PlaceReport, table: fn(&[&str], &[Vec<String>]) -> String) -> String {
    let mut s = String::new();
    let req = match r.request.replicas {
        Replicas::Exactly(n) => format!("{n} replica(s)"),
        Replicas::Max => "as many replicas as fit".into(),
    };
    let _ = writeln!(
        s,
        "Request: tp {} x pp {}, {req} (--tp-within {} --pp-within {})",
        r.request.tp,
        r.request.pp,
        r.request.tp_within.flag(),
        r.request.pp_within.flag()
    );
    let c = &r.cluster;
    let _ = writeln!(
        s,
        "Cluster: {} ({} nodes, {} racks, {} GPUs, {} free)",
        c.source, c.nodes, c.racks, c.gpus, c.free_gpus_before
    );
    let _ = writeln!(
        s,
        "All-reduce message: {} ({})",
        size(r.message_bytes),
        r.message_source
    );
    let m = &r.summary;
    let c = &r.cluster;
    let _ = writeln!(
        s,
        "Placed {} replica(s): {} TP group(s) inside a node, {}{} spanning nodes; {} pipeline(s) inside a rack, {} across racks; {} unplaced",
        m.placed_replicas,
        m.tp_groups_intra_node,
        if c.nvlink_domains > 0 {
            format!("{} across trays of one NVLink domain, ", m.tp_groups_intra_domain)
        } else {
            String::new()
        },
        m.tp_groups_spanning_nodes,
        m.replicas_intra_rack,
        m.replicas_cross_rack,
        r.unplaced_replicas
    );
    let _ = writeln!(
        s,
        "Free after: {} GPUs, {} whole nodes (before {}), {} whole racks (before {})\n",
        c.free_gpus_after,
        c.whole_free_nodes_after,
        c.whole_free_nodes_before,
        c.whole_free_racks_after,
        c.whole_free_racks_before
    );
    let mut rows = Vec::new();
    for rep in &r.replicas {
        for st in &rep.stages {
            let first = st.stage == 0;
            rows.push(vec![
                if first {
                    rep.replica.to_string()
                } else {
                    String::new()
                },
                if first {
                    rep.pp_scope.as_str().to_string()
                } else {
                    String::new()
                },
                if first { rep.racks.join(",") } else { String::new() },
                st.stage.to_string(),
                st.tp_scope.as_str().to_string(),
                us(st.allreduce_us),
                st.protocol.clone(),
                gpu_list(st),
            ]);
        }
    }
    s += &table(
        &[
            "replica",
            "pp_scope",
            "racks",
            "stage",
            "tp_scope",
            "allreduce_us",
            "protocol",
            "gpus",
        ],
        &rows,
    );
    let mut hosts = Vec::new();
    for rep in &r.replicas {
        for h in &rep.hosts {
            hosts.push(vec![
                rep.replica.to_string(),
                h.node.clone(),
                ranges(&h.ranks),
                format!("CUDA_VISIBLE_DEVICES={}", h.cuda_visible_devices),
            ]);
        }
    }
    if !hosts.is_empty() {
        s += "\nPer node, in rank order (local rank i uses the i-th listed GPU):\n";
        s += &table(&["replica", "node", "ranks", "environment"], &hosts);
    }
    if let Some(b) = &r.budget {
        let _ = writeln!(
            s,
            "\nLatency budget at {} tokens/s: {:.0} us per decode step; {} layers, {} all-reduces per layer ({})",
            b.tokens_per_s, b.step_budget_us, b.layers, b.allreduces_per_layer, b.source
        );
        let rows: Vec<Vec<String>> = r
            .replicas
            .iter()
            .map(|rep| {
                vec![
                    rep.replica.to_string(),
                    us(rep.allreduce_us_per_token),
                    rep.budget_share
                        .map_or_else(|| "-".into(), |x| format!("{:.1}%", x * 100.0)),
                ]
            })
            .collect();
        s += &table(&["replica", "allreduce_us_per_token", "share_of_step"], &rows);
    }
    if !r.reasons.is_empty() {
        s += "\nThe request cannot be met:\n";
        for x in &r.reasons {
            let _ = writeln!(s, "  - {x}");
        }
    }
    if !r.alternatives.is_empty() {
        s += "Instead:\n";
        for x in &r.alternatives {
            let _ = writeln!(s, "  - {x}");
        }
    }
    let f = findings(&r.warnings);
    if !f.is_empty() {
        s += "\n";
        s += &f;
    }
    let _ = writeln!(s, "\nNote: {}", r.cost_model.note);
    s
}

/// One host file per replica: comment lines, then one host name per rank in rank order
/// (stage-major, the TP ranks of a stage adjacent). A host listed k times is *not* k slots
/// filled in order unless the launcher is told so: OpenMPI merges repeated lines into slot
/// counts and maps by slot, so the file says how to launch it: `mpirun --map-by seq` (rank i
/// on line i) or Slurm's `srun --distribution=arbitrary` with `SLURM_HOSTFILE`. Names were
/// validated as host names when the cluster was read, so no line can carry another.
pub fn replica_hostfile(r: &PlaceReport, rep: &ReplicaOut) -> String {
    let mut s = String::new();
    let ranks: usize = rep.stages.iter().map(|st| st.gpus.len()).sum();
    let _ = writeln!(
        s,
        "# replica {}: tp {} x pp {}, {ranks} ranks, {} ({})",
        rep.replica,
        r.request.tp,
        r.request.pp,
        rep.pp_scope.as_str(),
        rep.racks.join(",")
    );
    let _ = writeln!(
        s,
        "# launch: mpirun --hostfile replica-{}.hosts --map-by seq -np {ranks} ...   (OpenMPI: rank i runs on line i)",
        rep.replica
    );
    let _ = writeln!(
        s,
        "#     or: SLURM_HOSTFILE=replica-{}.hosts srun --distribution=arbitrary -n {ranks} ...",
        rep.replica
    );
    let nodes: Vec<&str> = rep.hosts.iter().map(|h| h.node.as_str()).collect();
    let _ = writeln!(s, "# nodes in first-rank order: {}", nodes.join(","));
    for h in &rep.hosts {
        let _ = writeln!(
            s,
            "# {} ranks {}: CUDA_VISIBLE_DEVICES={}",
            h.node,
            ranges(&h.ranks),
            h.cuda_visible_devices
        );
    }
    for st in &rep.stages {
        for g in &st.gpus {
            let _ = writeln!(s, "{}", g.node);
        }
    }
    s
}

/// One OpenMPI rank file per replica: `rank N=host slot=L`, L the rank's local index on its
/// host (OpenMPI binds the rank to that logical CPU; edit the slots for your NUMA layout).
/// `mpirun --rankfile FILE` places every rank on exactly the host written, whatever the order.
pub fn replica_rankfile(r: &PlaceReport, rep: &ReplicaOut) -> String {
    let mut s = String::new();
    let ranks: usize = rep.stages.iter().map(|st| st.gpus.len()).sum();
    let _ = writeln!(
        s,
        "# replica {}: tp {} x pp {}, {ranks} ranks; launch: mpirun --rankfile replica-{}.rankfile -np {ranks} ...",
        rep.replica, r.request.tp, r.request.pp, rep.replica
    );
    let _ = writeln!(
        s,
        "# slot = the rank's local index on its host (a logical CPU for OpenMPI's binding); local rank i uses the i-th GPU of CUDA_VISIBLE_DEVICES:"
    );
    for h in &rep.hosts {
        let _ = writeln!(s, "# {}: CUDA_VISIBLE_DEVICES={}", h.node, h.cuda_visible_devices);
    }
    for h in &rep.hosts {
        for (local, rank) in h.ranks.iter().enumerate() {
            let _ = writeln!(s, "rank {rank}={} slot={local}", h.node);
        }
    }
    s
}

/// Every replica's host file, one after another.
pub fn to_hostfile(r: &PlaceReport) -> String {
    let mut s = String::from(
        "# nccltune place: one line per rank, TP ranks adjacent; one block per replica.\n\
         # Launch a block with mpirun --map-by seq (OpenMPI) or as SLURM_HOSTFILE with srun\n\
         # --distribution=arbitrary; without them OpenMPI merges repeated lines into slots.\n\
         # --hostfile-dir DIR writes one file per replica (and an OpenMPI rank file each).\n",
    );
    for rep in &r.replicas {
        s += &replica_hostfile(r, rep);
    }
    s
}

/// Every replica's rank file, one after another (each numbers its ranks from 0).
pub fn to_rankfile(r: &PlaceReport) -> String {
    let mut s = String::from(
        "# nccltune place: OpenMPI rank files, one block per replica (each its own mpirun);\n\
         # --hostfile-dir DIR writes them as replica-<n>.rankfile.\n",
    );
    for rep in &r.replicas {
        s += &replica_rankfile(r, rep);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_compress_runs() {
        assert_eq!(ranges(&[0, 1, 2, 3, 6]), "0-3,6");
        assert_eq!(ranges(&[5]), "5");
        assert_eq!(ranges(&[]), "");
    }

    /// The plain writer gives tabled's bytes, on every bundled cluster and a few requests.
    #[test]
    fn the_plain_table_is_byte_identical_to_tabled() {
        fn tabled(h: &[&str], rows: &[Vec<String>]) -> String {
            super::super::table(h, rows.to_vec())
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/clusters");
        let mut n = 0;
        for e in std::fs::read_dir(dir).expect("fixtures") {
            let path = e.expect("entry").path();
            let c = crate::place::cluster::load(&path).expect("fixture parses");
            for (tp, pp) in [(1, 1), (2, 2), (4, 2), (8, 2), (16, 1), (3, 5)] {
                let o = crate::place::Options {
                    tp,
                    pp,
                    replicas: Replicas::Max,
                    tp_within: crate::place::Scope::CrossRack,
                    pp_within: crate::place::Scope::CrossRack,
                    message_bytes: 1 << 20,
                    message_source: "test".into(),
                    links: crate::place::cost::Links::builtin().expect("links"),
                    budget: Some(crate::place::BudgetOptions {
                        tokens_per_s: 30.0,
                        layers: 80,
                    }),
                };
                let r = crate::place::place(&c, &o);
                let (a, b) = (to_table(&r), to_table_with(&r, tabled));
                let diff = a.lines().zip(b.lines()).position(|(x, y)| x != y);
                assert!(
                    a == b,
                    "{} tp {tp} pp {pp}: first different line {diff:?}: {:?} vs {:?}",
                    path.display(),
                    diff.and_then(|i| a.lines().nth(i)),
                    diff.and_then(|i| b.lines().nth(i))
                );
                n += 1;
            }
        }
        assert!(n >= 18);
        assert_eq!(plain_table(&["a"], &[]), "");
    }

    #[test]
    fn sizes_are_readable() {
        assert_eq!(size(16 << 20), "16 MiB");
        assert_eq!(size(3 << 10), "3 KiB");
        assert_eq!(size(1000), "1000 B");
    }
}
