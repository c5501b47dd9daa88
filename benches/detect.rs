//! Benchmark: probes run concurrently, and a hung probe costs at most the deadline.
//!
//! Six probes that each take one second should take about one second together, not six; a
//! probe that never ends is killed at the deadline. Run with `cargo bench --bench detect`.

use nccltune::probe::{ProbeSpec, SystemRunner, run_all};
use std::time::{Duration, Instant};

fn sleeper(name: &'static str, secs: &str) -> ProbeSpec {
    ProbeSpec::command(name, "sleep", &[secs], "benchmark")
}

fn main() {
    let six: Vec<ProbeSpec> = ["a", "b", "c", "d", "e", "f"]
        .into_iter()
        .map(|n| sleeper(n, "1"))
        .collect();
    let runner = SystemRunner::new(Duration::from_secs(10));
    let start = Instant::now();
    let outs = run_all(&runner, &six);
    let wall = start.elapsed();
    let slowest = outs.iter().map(|o| o.duration).max().unwrap_or_default();
    println!(
        "six 1 s probes: wall {:.3} s, slowest probe {:.3} s, sum of probes {:.3} s",
        wall.as_secs_f64(),
        slowest.as_secs_f64(),
        outs.iter().map(|o| o.duration.as_secs_f64()).sum::<f64>()
    );

    let mut with_hung = six.clone();
    with_hung.push(sleeper("hung", "600"));
    let runner = SystemRunner::new(Duration::from_secs(2));
    let start = Instant::now();
    let outs = run_all(&runner, &with_hung);
    let wall = start.elapsed();
    let hung = outs
        .iter()
        .find(|o| o.name == "hung")
        .map(|o| o.status.to_string())
        .unwrap_or_default();
    println!(
        "six 1 s probes + one hung probe, 2 s deadline: wall {:.3} s, hung probe status {hung}",
        wall.as_secs_f64()
    );
}
