//! Renderers of the placement report: a readable table, and per-replica host files (one line
//! per rank, TP ranks adjacent) with the `CUDA_VISIBLE_DEVICES` each node needs. JSON is the
//! shared `render::json` of the same model.

use super::table::{self, Layout};
use crate::place::{PlaceReport, ReplicaOut, Replicas, StageOut};
use std::fmt::Write;

/// `n0:0-3,6` for a group's GPUs, nodes in rank order, `+` between nodes.
pub fn gpu_list(stage: &StageOut) -> String {
    let mut s = String::new();
    gpu_list_into(&mut s, stage);
    s
}

/// [`gpu_list`] appended to `out`, without a string per node.
fn gpu_list_into(out: &mut String, stage: &StageOut) {
    let g = &stage.gpus;
    let mut i = 0;
    while i < g.len() {
        let mut j = i;
        while j + 1 < g.len() && g[j + 1].node == g[i].node {
            j += 1;
        }
        if i > 0 {
            out.push('+');
        }
        out.push_str(&g[i].node);
        out.push(':');
        let gpus: Vec<u32> = g[i..=j].iter().map(|x| x.gpu).collect();
        ranges_into(out, &gpus);
        i = j + 1;
    }
}

/// `0-3,6` from `[0,1,2,3,6]` (runs of consecutive numbers).
fn ranges(v: &[u32]) -> String {
    let mut s = String::new();
    ranges_into(&mut s, v);
    s
}

fn ranges_into(out: &mut String, v: &[u32]) {
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        if i > 0 {
            out.push(',');
        }
        let _ = if j > i {
            write!(out, "{}-{}", v[i], v[j])
        } else {
            write!(out, "{}", v[i])
        };
        i = j + 1;
    }
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

/// A table's cells written one after another into one buffer (no `String` per cell): at
/// cluster scale (65,536 nodes give 16,384 replicas, 130k rows) allocating and laying out a
/// grid of strings is most of `place`'s time.
pub struct Grid {
    cols: usize,
    text: String,
    ends: Vec<usize>,
}

impl Grid {
    fn new(cols: usize, rows: usize) -> Self {
        Grid {
            cols,
            text: String::with_capacity(rows * cols * 8),
            ends: Vec::with_capacity(rows * cols),
        }
    }
    /// Ends the cell written into `text` since the last one.
    fn end(&mut self) {
        self.ends.push(self.text.len());
    }
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.end();
    }
    fn rows(&self) -> usize {
        self.ends.len() / self.cols.max(1)
    }
    fn cell(&self, r: usize, c: usize) -> &str {
        let i = r * self.cols + c;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

/// Which writer lays the tables out: both give the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// `render::table::render`, from a grid of strings.
    Table,
    /// The direct writer below.
    Plain,
}

fn grid_table(headers: &[&str], g: &Grid, w: Writer, layout: Layout) -> String {
    let rows = || -> Vec<Vec<String>> {
        (0..g.rows())
            .map(|r| (0..g.cols).map(|c| g.cell(r, c).to_string()).collect())
            .collect()
    };
    match w {
        Writer::Table => table::render(headers, &rows(), layout),
        Writer::Plain => {
            plain_grid(headers, g, layout).unwrap_or_else(|| table::render(headers, &rows(), layout))
        }
    }
}

/// The table of `render::table` (one space of padding, left aligned, box-drawing borders in
/// UTF-8 locales, ASCII otherwise), written directly, when its cells fit the layout's width
/// whole; `None` when they do not (the caller then lets `render::table` wrap them). Cells here
/// are ASCII (names are validated host names, the rest is ours), so characters are columns; a
/// test checks the bytes against `render::table`.
fn plain_grid(headers: &[&str], g: &Grid, layout: Layout) -> Option<String> {
    let rows = g.rows();
    if rows == 0 {
        return Some(String::new());
    }
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count().max(1)).collect();
    for r in 0..rows {
        for (c, x) in w.iter_mut().enumerate() {
            *x = (*x).max(g.cell(r, c).chars().count());
        }
    }
    let line_len: usize = w.iter().map(|x| x + 3).sum::<usize>() + 1;
    if layout.width.is_some_and(|limit| line_len > limit) {
        return None;
    }
    let (h, v, corners) = if layout.unicode {
        ('─', '│', [['┌', '┬', '┐'], ['├', '┼', '┤'], ['└', '┴', '┘']])
    } else {
        ('-', '|', [['+'; 3]; 3])
    };
    let rule = |[l, m, r]: [char; 3]| {
        let mut s = String::new();
        s.push(l);
        for (i, x) in w.iter().enumerate() {
            if i > 0 {
                s.push(m);
            }
            for _ in 0..x + 2 {
                s.push(h);
            }
        }
        s.push(r);
        s.push('\n');
        s
    };
    let widest = w.iter().copied().max().unwrap_or(0) + 1;
    let spaces = " ".repeat(widest);
    let mut s = String::with_capacity((line_len + 8) * (rows + 4));
    fn row<'a>(s: &mut String, w: &[usize], v: char, spaces: &str, cell: impl Fn(usize) -> &'a str) {
        s.push(v);
        for (i, x) in w.iter().enumerate() {
            let c = cell(i);
            s.push(' ');
            s.push_str(c);
            s.push_str(&spaces[..(x + 1).saturating_sub(c.chars().count())]);
            s.push(v);
        }
        s.push('\n');
    }
    s += &rule(corners[0]);
    row(&mut s, &w, v, &spaces, |i| headers.get(i).copied().unwrap_or(""));
    s += &rule(corners[1]);
    for r in 0..rows {
        row(&mut s, &w, v, &spaces, |c| g.cell(r, c));
    }
    s += &rule(corners[2]);
    Some(s)
}

pub fn to_table(r: &PlaceReport) -> String {
    to_table_with(r, Writer::Plain, Layout::from_env())
}

/// The table with the given table writer (the benchmark compares writers) in `layout`. No
/// status words here: colour is off, so that both writers give the same bytes.
pub fn to_table_with(r: &PlaceReport, writer: Writer, layout: Layout) -> String {
    let layout = Layout {
        color: false,
        ..layout
    };
    // The headline sentences fold to the width like the tables (a cluster path can be longer
    // than the terminal on its own).
    let line = |s: &mut String, head: &str, text: String| s.push_str(&table::fold(head, &text, layout));
    let mut s = String::new();
    let req = match r.request.replicas {
        Replicas::Exactly(n) => format!("{n} replica(s)"),
        Replicas::Max => "as many replicas as fit".into(),
    };
    line(
        &mut s,
        "Request: ",
        format!(
            "tp {} x pp {}, {req} (--tp-within {} --pp-within {})",
            r.request.tp,
            r.request.pp,
            r.request.tp_within.flag(),
            r.request.pp_within.flag()
        ),
    );
    let c = &r.cluster;
    line(
        &mut s,
        "Cluster: ",
        format!(
            "{} ({} nodes, {} racks, {} GPUs, {} free)",
            // The path as given: control bytes in a file name must not reach the terminal.
            c.source
                .chars()
                .flat_map(|ch| {
                    let esc: Vec<char> = if ch.is_control() {
                        ch.escape_default().collect()
                    } else {
                        vec![ch]
                    };
                    esc
                })
                .collect::<String>(),
            c.nodes,
            c.racks,
            c.gpus,
            c.free_gpus_before
        ),
    );
    line(
        &mut s,
        "All-reduce message: ",
        format!("{} ({})", size(r.message_bytes), r.message_source),
    );
    let m = &r.summary;
    let c = &r.cluster;
    line(
        &mut s,
        "Placed ",
        format!(
            "{} replica(s): {} TP group(s) inside a node, {}{} spanning nodes; {} pipeline(s) inside a rack, {} across racks; {} unplaced",
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
        ),
    );
    line(
        &mut s,
        "Free after: ",
        format!(
            "{} GPUs, {} whole nodes (before {}), {} whole racks (before {})",
            c.free_gpus_after,
            c.whole_free_nodes_after,
            c.whole_free_nodes_before,
            c.whole_free_racks_after,
            c.whole_free_racks_before
        ),
    );
    s.push('\n');
    let stages: usize = r.replicas.iter().map(|x| x.stages.len()).sum();
    // Six columns, so that 80 columns leave each a word: a replica's pipeline scope and its
    // racks share a cell, as do a group's all-reduce estimate and its protocol.
    let mut g = Grid::new(6, stages);
    for rep in &r.replicas {
        for st in &rep.stages {
            if st.stage == 0 {
                let _ = write!(g.text, "{}", rep.replica);
                g.end();
                g.text.push_str(rep.pp_scope.as_str());
                g.text.push(' ');
                for (i, rack) in rep.racks.iter().enumerate() {
                    if i > 0 {
                        g.text.push(',');
                    }
                    g.text.push_str(rack);
                }
                g.end();
            } else {
                g.push("");
                g.push("");
            }
            let _ = write!(g.text, "{}", st.stage);
            g.end();
            g.push(st.tp_scope.as_str());
            match st.allreduce_us {
                Some(v) => {
                    let _ = write!(g.text, "{v:.1} us {}", st.protocol);
                }
                None => g.text.push('-'),
            }
            g.end();
            gpu_list_into(&mut g.text, st);
            g.end();
        }
    }
    s += &grid_table(
        &["replica", "pipeline", "stage", "tp group", "all-reduce", "gpus"],
        &g,
        writer,
        layout,
    );
    let nhosts: usize = r.replicas.iter().map(|x| x.hosts.len()).sum();
    let mut g = Grid::new(4, nhosts);
    for rep in &r.replicas {
        for h in &rep.hosts {
            let _ = write!(g.text, "{}", rep.replica);
            g.end();
            g.push(&h.node);
            ranges_into(&mut g.text, &h.ranks);
            g.end();
            g.text.push_str("CUDA_VISIBLE_DEVICES=");
            g.push(&h.cuda_visible_devices);
        }
    }
    if nhosts > 0 {
        s.push('\n');
        line(
            &mut s,
            "",
            "Per node, in rank order (local rank i uses the i-th listed GPU):".into(),
        );
        s += &grid_table(&["replica", "node", "ranks", "environment"], &g, writer, layout);
    }
    if let Some(b) = &r.budget {
        s.push('\n');
        line(
            &mut s,
            "Latency budget at ",
            format!(
                "{} tokens/s: {:.0} us per decode step; {} layers, {} all-reduces per layer ({})",
                b.tokens_per_s, b.step_budget_us, b.layers, b.allreduces_per_layer, b.source
            ),
        );
        let mut g = Grid::new(3, r.replicas.len());
        for rep in &r.replicas {
            let _ = write!(g.text, "{}", rep.replica);
            g.end();
            g.push(&us(rep.allreduce_us_per_token));
            match rep.budget_share {
                Some(x) => {
                    let _ = write!(g.text, "{:.1}%", x * 100.0);
                    g.end();
                }
                None => g.push("-"),
            }
        }
        s += &grid_table(
            &["replica", "all-reduce us per token", "share of step"],
            &g,
            writer,
            layout,
        );
    }
    if !r.reasons.is_empty() {
        s += "\nThe request cannot be met:\n";
        for x in &r.reasons {
            line(&mut s, "  - ", x.clone());
        }
    }
    if !r.alternatives.is_empty() {
        s += "Instead:\n";
        for x in &r.alternatives {
            line(&mut s, "  - ", x.clone());
        }
    }
    let f = table::render(&super::FINDING_COLUMNS, &super::finding_rows(&r.warnings), layout);
    if !f.is_empty() {
        s += "\n";
        s += &f;
    }
    s.push('\n');
    line(&mut s, "Note: ", r.cost_model.note.clone());
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

    /// The plain writer gives `render::table`'s bytes, on every bundled cluster and a few
    /// requests, in both border styles, unlimited and at widths that make it fall back.
    #[test]
    fn the_plain_table_is_byte_identical_to_the_table_renderer() {
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
                for width in [None, Some(80), Some(400)] {
                    for unicode in [false, true] {
                        let layout = Layout {
                            width,
                            unicode,
                            color: true,
                        };
                        let a = to_table_with(&r, Writer::Plain, layout);
                        let b = to_table_with(&r, Writer::Table, layout);
                        let diff = a.lines().zip(b.lines()).position(|(x, y)| x != y);
                        assert!(
                            a == b,
                            "{} tp {tp} pp {pp} {width:?}: first different line {diff:?}: {:?} vs {:?}",
                            path.display(),
                            diff.and_then(|i| a.lines().nth(i)),
                            diff.and_then(|i| b.lines().nth(i))
                        );
                        assert_eq!(a.contains('│'), unicode);
                        if let Some(w) = width {
                            for l in a.lines() {
                                assert!(l.chars().count() <= w, "{w}: {l}");
                            }
                        }
                    }
                }
                n += 1;
            }
        }
        assert!(n >= 18);
        let none = Layout {
            width: None,
            unicode: true,
            color: false,
        };
        assert_eq!(plain_grid(&["a"], &Grid::new(1, 0), none).as_deref(), Some(""));
    }

    #[test]
    fn sizes_are_readable() {
        assert_eq!(size(16 << 20), "16 MiB");
        assert_eq!(size(3 << 10), "3 KiB");
        assert_eq!(size(1000), "1000 B");
    }
}
