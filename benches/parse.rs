//! Benchmark: nccl-tests parsing speed on one core, over a ~100 MB log made by concatenating
//! a fixture (rows, headers, footers and interleaved NCCL INFO lines). Run with
//! `cargo bench --bench parse`.

use nccltune::parse::nccl_tests;
use std::io::Cursor;
use std::time::Instant;

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
    let mut best = f64::INFINITY;
    let mut rows = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let runs = nccl_tests::parse_reader(Cursor::new(log.as_bytes()), "bench").unwrap_or_default();
        best = best.min(start.elapsed().as_secs_f64());
        rows = runs.iter().map(|r| r.rows.len()).sum::<usize>();
    }
    println!(
        "nccl-tests parser: {mb:.1} MB, {copies} runs, {rows} rows: best of 3 {best:.3} s = {:.0} MB/s",
        mb / best
    );
}
