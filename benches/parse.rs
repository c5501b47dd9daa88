//! Benchmark: nccl-tests parsing on one core. (1) a ~100 MB text log made by concatenating a
//! fixture (rows, headers, footers and interleaved NCCL INFO lines); (2) a ~100 MB `-J` JSON file
//! with `-I 1` per-iteration arrays (skipped while parsing, never built); (3) a log of a
//! 65,536-rank job's `# Using devices` block (the device list must stay linear). Run with
//! `cargo bench --bench parse`.

use nccltune::parse::nccl_tests;
use std::io::Cursor;
use std::time::Instant;

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..n {
        let start = Instant::now();
        let v = f();
        best = best.min(start.elapsed().as_secs_f64());
        out = Some(v);
    }
    (best, out.expect("ran"))
}

fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let one = std::fs::read_to_string(format!(
        "{root}/fixtures/nccl-tests/h100-2node-allreduce-ring.txt"
    ))
    .unwrap_or_default();
    let noise =
        "gpu-h100-017:41000:41100 [0] NCCL INFO Channel 00/0 : 8[0] -> 0[0] [receive] via NET/IB/0/GDRDMA\n";
    let unit = format!("{one}{}", noise.repeat(20));
    let copies = (100 << 20) / unit.len().max(1) + 1;
    let log = unit.repeat(copies);
    let mb = log.len() as f64 / 1e6;
    let (best, runs) = best_of(3, || {
        nccl_tests::parse_reader(Cursor::new(log.as_bytes()), "bench").unwrap_or_default()
    });
    let rows = runs.iter().map(|r| r.rows.len()).sum::<usize>();
    println!(
        "nccl-tests text parser: {mb:.1} MB, {copies} runs, {rows} rows: best of 3 {best:.3} s = {:.0} MB/s",
        mb / best
    );
    drop(log);

    // -J JSON with per-iteration timing: 32 sizes x 2 placements x 20,000 iterations.
    let times: Vec<String> = (0..20_000)
        .map(|i| format!("{:.6}", 100.0 + f64::from(i % 97)))
        .collect();
    let times = times.join(",");
    let per_iter = format!(
        "{{\"skipped_iterations\":0,\"min_us\":100.000000,\"max_us\":196.000000,\"avg_us\":148.000000,\"p50_us\":148.000000,\"p95_us\":190.000000,\"p99_us\":195.000000,\"stdev_us\":28.000000,\"cv_pct\":18.900000,\"times_us\":[{times}]}}"
    );
    let mut results = Vec::new();
    for e in 3..35 {
        let size = 1u64 << e;
        results.push(format!(
            "{{\"size\":{size},\"count\":{},\"type\":\"float\",\"redop\":\"sum\",\"root\":\"    -1\",\"out_of_place\":{{\"time\":148.000000,\"alg_bw\":1.000000,\"bus_bw\":1.875000,\"nwrong\":0.000000}},\"out_of_place_per_iter\":{per_iter},\"in_place\":{{\"time\":148.000000,\"alg_bw\":1.000000,\"bus_bw\":1.875000,\"nwrong\":0.000000}},\"in_place_per_iter\":{per_iter},\"actual_iterations\":20000,\"experiment_name\":\"\"}}",
            size / 4
        ));
    }
    let json = format!(
        "{{\"version\":3,\"start_time\":\"2026-11-24 20:31:00\",\"args\":[\".\\/build\\/all_reduce_perf\"],\"env\":[\"NCCL_DEBUG=WARN\"],\"nccl_version\":22703,\"config\":{{\"nthreads\":1,\"ngpus\":8,\"devices\":[{{\"rank\":0,\"group\":0,\"pid\":1,\"hostname\":\"h\",\"device\":0,\"device_hex\":\"0000:18:00\",\"device_info\":\"NVIDIA H100 80GB HBM3\"}}]}},\"results\":[{}],\"out_of_bounds\":{{\"count\":0,\"okay\":\"true\"}},\"average_bus_bandwidth\":{{\"bandwidth\":1.875000,\"okay\":\"unchecked\"}},\"errors\":[\"\"],\"end_time\":\"2026-11-24 20:33:10\"}}",
        results.join(",")
    );
    let jmb = json.len() as f64 / 1e6;
    let (best, run) = best_of(3, || nccl_tests::parse_json(&json, "bench").map(|r| r.rows.len()));
    println!(
        "nccl-tests -J JSON parser (-I 1 arrays): {jmb:.1} MB, {} rows: best of 3 {best:.3} s = {:.0} MB/s",
        run.unwrap_or(0),
        jmb / best
    );
    drop(json);

    // A 65,536-rank job: the device block alone.
    let mut big = String::from(
        "# nThread 1 nGpus 1 minBytes 8 maxBytes 8 step: 2(factor) warmup iters: 1 iters: 1 agg iters: 1 validation: 1 graph: 0\n#\n# Using devices\n",
    );
    for r in 0..65_536u32 {
        big.push_str(&format!(
            "#  Rank {r:5} Group  0 Pid {:6} on node-{:05} device {:2} [0000:18:00] NVIDIA H100 80GB HBM3\n",
            1000 + r,
            r / 8,
            r % 8
        ));
    }
    let (best, runs) = best_of(3, || nccl_tests::parse(&big, "bench"));
    println!(
        "nccl-tests device block, 65,536 ranks ({:.1} MB): {} ranks, {} processes: best of 3 {best:.3} s",
        big.len() as f64 / 1e6,
        runs.first().and_then(|r| r.nranks).unwrap_or(0),
        runs.first().and_then(|r| r.processes).unwrap_or(0)
    );
}
