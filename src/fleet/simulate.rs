//! The isolation model at any size, without a cluster: N nodes of which B are slow (half
//! bandwidth), test noise (relative standard deviation of busbw) and transient failures
//! (a test that fails outright, independent of its nodes). Runs the same screening, bisection
//! and confirmation rules as `fleet next` and the same pass threshold as `fleet merge`, and
//! counts tests and rounds, bad nodes found and healthy nodes wrongly called bad.

use super::isolate::{self, TestEval, Verdict};
use super::merge::threshold;
use super::plan::{Check, Purpose};
use super::rng::Rng;
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub nodes: usize,
    pub bad: usize,
    pub noise: f64,
    pub transient: f64,
    pub strategy: Check,
    pub seed: u64,
    pub confirm: u32,
    /// Multi-node rounds at most.
    pub max_rounds: u32,
    pub group_size: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimResult {
    pub nodes: usize,
    pub bad: usize,
    pub strategy: String,
    pub rounds: u32,
    pub tests: usize,
    pub node_tests: usize,
    pub found: usize,
    pub missed: usize,
    pub false_positives: usize,
    pub suspects: usize,
    pub recall: f64,
}

fn gauss(rng: &mut Rng) -> f64 {
    // Box–Muller.
    let u1 = rng.unit().max(1e-12);
    let u2 = rng.unit();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

pub fn run(o: &SimOptions) -> SimResult {
    let n = o.nodes.max(2);
    let mut rng = Rng::new(o.seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let mut slow = vec![false; n];
    for &i in order.iter().take(o.bad.min(n)) {
        slow[i] = true;
    }
    let eligible = vec![true; n];
    let all: Vec<u32> = (0..n as u32).collect();
    let size = match o.strategy {
        Check::Groups => {
            if o.group_size >= 2 {
                o.group_size
            } else {
                isolate::group_size(n)
            }
        }
        _ => 2,
    };
    let mut tests: Vec<TestEval> = Vec::new();
    let mut busbw: Vec<Option<f64>> = Vec::new();
    let mut round_sets: Vec<(Purpose, Vec<u32>)> = isolate::screen(&all, size, o.seed)
        .into_iter()
        .map(|s| (Purpose::Screen, s))
        .collect();
    let mut rounds = 0;
    let mut iso;
    loop {
        rounds += 1;
        for (p, set) in round_sets {
            let cap = if set.iter().any(|&m| slow[m as usize]) {
                0.5
            } else {
                1.0
            };
            let b = if rng.unit() < o.transient {
                None
            } else {
                Some(cap * (1.0 + o.noise * gauss(&mut rng)))
            };
            tests.push(TestEval {
                round: rounds,
                purpose: p,
                nodes: set,
                verdict: Verdict::Missing,
            });
            busbw.push(b);
        }
        let ok: Vec<f64> = busbw.iter().flatten().copied().collect();
        let (limit, _, _) = threshold(&ok, Some(1.0), 0.9, 4.0);
        for (t, b) in tests.iter_mut().zip(&busbw) {
            t.verdict = match b {
                Some(x) if *x >= limit => Verdict::Pass,
                _ => Verdict::Fail,
            };
        }
        iso = isolate::evaluate(n, &tests);
        if rounds >= o.max_rounds {
            break;
        }
        round_sets = isolate::next_tests(&eligible, &tests, &iso, o.confirm, o.seed, rounds + 1);
        if round_sets.is_empty() {
            break;
        }
    }
    let mut found = 0;
    let mut fp = 0;
    let mut suspects = 0;
    for (i, &is_slow) in slow.iter().enumerate() {
        let bad = iso.confirmed_bad(i as u32, o.confirm);
        if bad && is_slow {
            found += 1;
        } else if bad {
            fp += 1;
        } else if iso.failed_any[i] && !iso.good[i] {
            suspects += 1;
        }
    }
    let planted = slow.iter().filter(|&&s| s).count();
    SimResult {
        nodes: n,
        bad: planted,
        strategy: match o.strategy {
            Check::Groups => "groups",
            _ => "pairs",
        }
        .into(),
        rounds,
        tests: tests.len(),
        node_tests: tests.iter().map(|t| t.nodes.len()).sum(),
        found,
        missed: planted - found,
        false_positives: fp,
        suspects,
        recall: if planted == 0 {
            1.0
        } else {
            found as f64 / planted as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(strategy: Check, seed: u64) -> SimOptions {
        SimOptions {
            nodes: 400,
            bad: 5,
            noise: 0.03,
            transient: 0.01,
            strategy,
            seed,
            confirm: 2,
            max_rounds: if strategy == Check::Pairs { 3 } else { 12 },
            group_size: 0,
        }
    }

    /// Property: over many seeds with noise and transient failures, every planted slow node
    /// is found, and wrongly accused healthy nodes stay rare.
    #[test]
    fn recall_one_and_few_false_positives_over_seeds() {
        for strategy in [Check::Pairs, Check::Groups] {
            let mut fp = 0;
            let mut healthy = 0;
            for seed in 0..60 {
                let r = run(&opts(strategy, seed));
                assert_eq!(r.recall, 1.0, "{strategy:?} seed {seed}: {r:?}");
                fp += r.false_positives;
                healthy += r.nodes - r.bad;
            }
            let rate = fp as f64 / healthy as f64;
            assert!(rate <= 0.001, "{strategy:?}: false-positive rate {rate}");
        }
    }

    #[test]
    fn no_noise_no_bad_nodes_is_one_clean_round() {
        let mut o = opts(Check::Pairs, 1);
        o.bad = 0;
        o.noise = 0.0;
        o.transient = 0.0;
        let r = run(&o);
        assert_eq!((r.rounds, r.tests, r.false_positives, r.suspects), (1, 200, 0, 0));
    }

    #[test]
    fn pairs_at_scale_need_three_rounds() {
        let mut o = opts(Check::Pairs, 3);
        o.nodes = 2000;
        o.bad = 4;
        let r = run(&o);
        assert_eq!(r.recall, 1.0);
        assert!(r.rounds <= 3 && r.tests < 1100, "{r:?}");
    }
}
