//! Benchmark: `lint` on one core over a 1,000,000-line job script (exports, `;` lists, `if`/`fi`
//! branches, continuation lines, `${X:-d}` defaults, `mpirun -x` and `srun --export=` lines,
//! repeated names so the duplicate and dead-setting checks have work), read and checked as the
//! CLI does. Target: under 10 s. Also times 10,000 and 100,000 lines to show the growth is
//! linear. Run with `cargo bench --bench lint`.

use nccltune::lint::{self, envfile};
use std::time::Instant;

fn script(lines: usize) -> String {
    let unit = [
        "export NCCL_IB_HCA==mlx5_0:1,mlx5_3:1",
        "if [ -d /dev/infiniband ]; then export NCCL_IB_DISABLE=0; else export NCCL_IB_DISABLE=1;fi",
        "export NCCL_DEBUG=${NCCL_DEBUG:-WARN} NCCL_DEBUG_SUBSYS=INIT,NET",
        "# a comment with NCCL_ALGO=Ring in it",
        "export NCCL_SOCKET_IFNAME==eno1 \\",
        "    NCCL_IB_TIMEOUT=22",
        "NCCL_NSOCKS_PERTHREAD=4 srun --export=ALL,NCCL_ALGO=Ring,NCCL_PROTO=Simple ./app",
        "mpirun -np 16 -x NCCL_BUFFSIZE=8388608 -x NCCL_IB_HCA ./app",
        "export VAR_UNRELATED=1",
        "export NCCL_UNKNOWN_THING=1",
    ];
    let mut s = String::with_capacity(lines * 48);
    for i in 0..lines {
        s.push_str(unit[i % unit.len()]);
        s.push('\n');
    }
    s
}

fn time(lines: usize) -> (f64, usize, usize) {
    let text = script(lines);
    let start = Instant::now();
    let syntax = envfile::detect(&text, "job.sh");
    let set = envfile::parse(&text, "job.sh", syntax).unwrap_or_default();
    let n = set.len();
    let report = lint::lint(&[set], None, None, false);
    (start.elapsed().as_secs_f64(), n, report.findings.len())
}

fn main() {
    for lines in [10_000, 100_000, 1_000_000] {
        let mut best = f64::INFINITY;
        let mut counts = (0, 0);
        for _ in 0..3 {
            let (t, n, f) = time(lines);
            best = best.min(t);
            counts = (n, f);
        }
        println!(
            "lint: {lines} lines, {} settings, {} findings: best of 3 {best:.3} s ({:.2} µs/line)",
            counts.0,
            counts.1,
            best * 1e6 / lines as f64
        );
    }
}
