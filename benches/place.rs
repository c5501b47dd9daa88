//! `cargo bench --bench place`: wall time and peak memory of `nccltune place` at cluster
//! scale, NVL72 domains included, and the table renderer at 65,536 nodes (`render::table` against the
//! plain writer, in the same run). No benchmark framework: each scenario runs a few times and
//! reports the fastest and the median run; peak resident memory comes from
//! `/proc/self/status` (VmHWM) where present.

use nccltune::place::{self, Options, Replicas, Scope, cluster, cost};
use nccltune::render;
use std::time::{Duration, Instant};

fn opts(tp: u32, pp: u32, replicas: Replicas) -> Options {
    Options {
        tp,
        pp,
        replicas,
        tp_within: Scope::CrossRack,
        pp_within: Scope::CrossRack,
        message_bytes: 16 << 20,
        message_source: "bench".into(),
        links: cost::Links::builtin().expect("built-in links"),
        budget: None,
    }
}

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn run(name: &str, c: &cluster::Cluster, o: &Options, runs: usize) -> place::PlaceReport {
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = place::place(c, o);
        times.push(t.elapsed());
        last = Some(std::hint::black_box(r));
    }
    times.sort();
    let r = last.expect("at least one run");
    println!(
        "{name}: {} replicas placed ({}, {} split TP groups); fastest {:.1} ms, median {:.1} ms over {runs} runs",
        r.summary.placed_replicas,
        r.summary.strategy,
        r.summary.goals.split_tp_groups,
        times[0].as_secs_f64() * 1e3,
        times[runs / 2].as_secs_f64() * 1e3
    );
    r
}

/// The fastest of `runs` renderings of `r`'s table with `table`, in ms, and the bytes.
fn render_ms(r: &place::PlaceReport, table: render::place::Writer, runs: usize) -> (f64, usize) {
    render_ms_at(r, table, None, runs)
}

/// Like `render_ms`, at a terminal width (`None`: no limit, as in a file or a pipe).
fn render_ms_at(
    r: &place::PlaceReport,
    table: render::place::Writer,
    width: Option<usize>,
    runs: usize,
) -> (f64, usize) {
    let mut best = f64::INFINITY;
    let mut len = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let s = render::place::to_table_with(
            r,
            table,
            render::table::Layout {
                width,
                unicode: true,
                color: false,
            },
        );
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        len = std::hint::black_box(s).len();
    }
    (best, len)
}

fn main() {
    let c = cluster::synthetic(16_384, 8, 32, None).expect("synthetic cluster");
    println!(
        "cluster: {} nodes x 8 GPUs in {} racks ({} GPUs)",
        c.nodes.len(),
        c.racks.len(),
        c.total_gpus()
    );
    run(
        "full cluster, 4096 replicas of tp 8 x pp 4",
        &c,
        &opts(8, 4, Replicas::Exactly(4096)),
        5,
    );
    run("tp 4 x pp 3, --max-replicas", &c, &opts(4, 3, Replicas::Max), 5);
    run(
        "tp 16 x pp 2 (groups span nodes), 4096 replicas",
        &c,
        &opts(16, 2, Replicas::Exactly(4096)),
        3,
    );

    // A flat cluster (every node in one rack) where groups must span nodes: the worst case
    // of the spanning search, one linear pass over the rack per node taken.
    let flat = cluster::synthetic(16_384, 8, 16_384, None).expect("flat cluster");
    run(
        "flat (one rack), tp 16 x pp 2, 4096 replicas",
        &flat,
        &opts(16, 2, Replicas::Exactly(4096)),
        1,
    );

    // A partly used cluster: a deterministic pseudo-random share of GPUs already taken.
    let mut used = c.clone();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for n in &mut used.nodes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // 0..=3 used GPUs on about half the nodes.
        if x & 1 == 0 {
            let k = ((x >> 1) % 4) as u32;
            n.free &= !((1u128 << k) - 1);
        }
    }
    println!("partly used copy: {} free GPUs", used.free_gpus());
    run(
        "partly used, tp 4 x pp 4, --max-replicas",
        &used,
        &opts(4, 4, Replicas::Max),
        3,
    );

    // 64 GB200 NVL72 domains (18 trays x 4 GPUs each, one domain per rack): TP groups of 16
    // and 72 inside a domain, pipelines across domains.
    let nvl = cluster::synthetic_domains(64, 18, 4, cluster::NvlinkGen::Gb200).expect("nvl72 cluster");
    println!(
        "cluster: {} NVL72 domains, {} trays, {} GPUs",
        nvl.domains.len(),
        nvl.nodes.len(),
        nvl.total_gpus()
    );
    run(
        "nvl72, tp 16 x pp 2, --max-replicas",
        &nvl,
        &opts(16, 2, Replicas::Max),
        5,
    );
    run(
        "nvl72, tp 72 x pp 4 (pipelines across domains), --max-replicas",
        &nvl,
        &opts(72, 4, Replicas::Max),
        5,
    );
    run(
        "nvl72, tp 4 x pp 4, --max-replicas",
        &nvl,
        &opts(4, 4, Replicas::Max),
        5,
    );

    // 65,536 nodes, tp 8 x pp 4: the table renderer, the general writer against the plain one.
    let big = cluster::synthetic(65_536, 8, 32, None).expect("big cluster");
    let r = run(
        "65,536 nodes, tp 8 x pp 4, --max-replicas",
        &big,
        &opts(8, 4, Replicas::Max),
        3,
    );
    // "table renderer" is `render::table`: a grid of strings laid out by the general writer.
    let (slow, a) = render_ms(&r, render::place::Writer::Table, 3);
    let (fast, b) = render_ms(&r, render::place::Writer::Plain, 3);
    assert_eq!(a, b, "both writers give the same bytes");
    println!(
        "65,536 nodes table ({:.1} MB): table renderer {slow:.1} ms, plain writer {fast:.1} ms ({:.2}x the time, {:.1}x faster)",
        b as f64 / 1e6,
        fast / slow,
        slow / fast
    );
    // At 80 columns the cells no longer fit whole: the plain writer hands over to
    // `render::table`, which wraps them.
    let (narrow, c) = render_ms_at(&r, render::place::Writer::Plain, Some(80), 3);
    println!(
        "65,536 nodes table at 80 columns ({:.1} MB): {narrow:.1} ms",
        c as f64 / 1e6
    );

    match vm_hwm_kib() {
        Some(k) => println!("peak RSS (VmHWM): {:.1} MiB", k as f64 / 1024.0),
        None => println!("peak RSS: /proc/self/status not available"),
    }
}
