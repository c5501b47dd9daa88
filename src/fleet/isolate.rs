//! Isolation: from multi-node test outcomes to bad nodes, link faults and infrastructure
//! faults, and the next round of tests. Pure functions over node indices, shared by `merge`,
//! `next` and `simulate`.
//!
//! The rules (after the screening → bisection → confirmation design of NVIDIA's cluster
//! readiness checks and Google's re-pairing with good nodes, see the README):
//! - a node in any passing multi-node test is *good*;
//! - the *culprits* of a failed test are its members that are not good;
//! - a node is *confirmed bad* when it never passed and failed `confirm` confirmation tests
//!   whose other members are all good;
//! - a failed node set with no culprit is retested; failing twice (never passing) makes it a
//!   link fault (two nodes) or an infrastructure fault (more);
//! - a failed test's culprits not tested again since are followed up: bisected when four or
//!   more, else each paired with a known-good partner it has not been paired with before.

use super::plan::Purpose;
use super::rng::Rng;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// No result: neither a pass nor a failure.
    Missing,
}

#[derive(Debug, Clone)]
pub struct TestEval {
    pub round: u32,
    pub purpose: Purpose,
    /// Node indices, sorted.
    pub nodes: Vec<u32>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Default)]
pub struct Isolation {
    pub good: Vec<bool>,
    /// Failed confirmation tests whose other members were all good.
    pub confirm_fails: Vec<u32>,
    /// Nodes in at least one failed test.
    pub failed_any: Vec<bool>,
    /// Node sets that failed twice or more, never passed, all members good.
    pub faults: Vec<(Vec<u32>, u32)>,
    /// Node sets that failed once with all members good: retest pending or done.
    pub unexplained_once: Vec<Vec<u32>>,
    /// Node sets that failed and later passed.
    pub transient: Vec<Vec<u32>>,
    /// Failed groups (more than two nodes, every member good) not yet probed across their
    /// boundary: the set and its two halves.
    pub needs_probe: Vec<(Vec<u32>, [Vec<u32>; 2])>,
    /// Failed groups whose cross-boundary probes failed: the set and the failing probe pairs.
    /// An infrastructure fault between the halves, found without retesting the whole group.
    pub boundary: Vec<(Vec<u32>, Vec<Vec<u32>>)>,
}

impl Isolation {
    pub fn confirmed_bad(&self, n: u32, confirm: u32) -> bool {
        let i = n as usize;
        !self.good[i] && self.confirm_fails[i] >= confirm
    }
}

pub fn evaluate(n_nodes: usize, tests: &[TestEval]) -> Isolation {
    let mut iso = Isolation {
        good: vec![false; n_nodes],
        confirm_fails: vec![0; n_nodes],
        failed_any: vec![false; n_nodes],
        ..Default::default()
    };
    for t in tests {
        if t.verdict == Verdict::Pass {
            for &n in &t.nodes {
                iso.good[n as usize] = true;
            }
        }
    }
    let mut sets: HashMap<&[u32], (u32, u32)> = HashMap::new();
    for t in tests {
        if t.purpose == Purpose::Probe {
            // A probe answers for its group (below), not for itself as a pair.
            if t.verdict == Verdict::Fail {
                for &n in &t.nodes {
                    iso.failed_any[n as usize] = true;
                }
            }
            continue;
        }
        let e = sets.entry(&t.nodes).or_default();
        match t.verdict {
            Verdict::Pass => e.1 += 1,
            Verdict::Fail => e.0 += 1,
            Verdict::Missing => {}
        }
        if t.verdict != Verdict::Fail {
            continue;
        }
        for &n in &t.nodes {
            iso.failed_any[n as usize] = true;
        }
        if t.purpose == Purpose::Confirm {
            let bad: Vec<u32> = t
                .nodes
                .iter()
                .copied()
                .filter(|&n| !iso.good[n as usize])
                .collect();
            if bad.len() == 1 {
                iso.confirm_fails[bad[0] as usize] += 1;
            }
        }
    }
    let mut keys: Vec<(&[u32], (u32, u32))> = sets.into_iter().collect();
    keys.sort();
    for (set, (fails, passes)) in keys {
        if fails == 0 || set.iter().any(|&n| !iso.good[n as usize]) {
            continue;
        }
        if passes > 0 {
            iso.transient.push(set.to_vec());
        } else if fails >= 2 {
            iso.faults.push((set.to_vec(), fails));
        } else if set.len() > 2 {
            // A group that failed once while every member passed elsewhere: probe across its
            // boundary first; a failing probe is the fault, passing probes leave the retest.
            let failed_in = last_failure(tests, set);
            let probes: Vec<&TestEval> = tests
                .iter()
                .filter(|t| {
                    t.purpose == Purpose::Probe
                        && t.verdict != Verdict::Missing
                        && t.round > failed_in
                        && t.nodes.iter().all(|n| set.binary_search(n).is_ok())
                })
                .collect();
            let failed: Vec<Vec<u32>> = probes
                .iter()
                .filter(|t| t.verdict == Verdict::Fail)
                .map(|t| t.nodes.clone())
                .collect();
            if probes.is_empty() {
                iso.needs_probe
                    .push((set.to_vec(), halves(tests, set, failed_in)));
            } else if !failed.is_empty() {
                iso.boundary.push((set.to_vec(), failed));
            } else {
                iso.unexplained_once.push(set.to_vec());
            }
        } else {
            iso.unexplained_once.push(set.to_vec());
        }
    }
    iso
}

fn last_failure(tests: &[TestEval], set: &[u32]) -> u32 {
    tests
        .iter()
        .filter(|t| t.verdict == Verdict::Fail && t.nodes == set)
        .map(|t| t.round)
        .max()
        .unwrap_or(0)
}

/// The two halves of a failed group: the two passing bisection tests after its failure that
/// partition it, else the sorted set cut in the middle.
fn halves(tests: &[TestEval], set: &[u32], failed_in: u32) -> [Vec<u32>; 2] {
    let parts: Vec<&TestEval> = tests
        .iter()
        .filter(|t| {
            t.purpose == Purpose::Bisect
                && t.verdict == Verdict::Pass
                && t.round > failed_in
                && t.nodes.iter().all(|n| set.binary_search(n).is_ok())
        })
        .collect();
    for (i, a) in parts.iter().enumerate() {
        for b in &parts[i + 1..] {
            if a.nodes.len() + b.nodes.len() == set.len()
                && a.nodes.iter().all(|n| b.nodes.binary_search(n).is_err())
            {
                return [a.nodes.clone(), b.nodes.clone()];
            }
        }
    }
    let mid = set.len() / 2;
    [set[..mid].to_vec(), set[mid..].to_vec()]
}

/// The multi-node tests of the next round: (purpose, sorted node indices).
/// `eligible` are nodes that may be tested (healthy by their own checks, not missing).
pub fn next_tests(
    eligible: &[bool],
    tests: &[TestEval],
    iso: &Isolation,
    confirm: u32,
    seed: u64,
    round: u32,
) -> Vec<(Purpose, Vec<u32>)> {
    let n_nodes = eligible.len();
    let mut busy = vec![false; n_nodes];
    let mut out: Vec<(Purpose, Vec<u32>)> = Vec::new();
    // Latest round in which each node was in a multi-node test.
    let mut last_round = vec![0u32; n_nodes];
    let mut partners: HashMap<u32, HashSet<u32>> = HashMap::new();
    for t in tests {
        for &n in &t.nodes {
            last_round[n as usize] = last_round[n as usize].max(t.round);
            let p = partners.entry(n).or_default();
            p.extend(t.nodes.iter().copied().filter(|&m| m != n));
        }
    }
    let take = |nodes: &[u32], busy: &mut Vec<bool>| -> bool {
        if nodes.iter().any(|&n| busy[n as usize] || !eligible[n as usize]) {
            return false;
        }
        for &n in nodes {
            busy[n as usize] = true;
        }
        true
    };
    // 1. Retests of unexplained node sets not tested again since they failed.
    let last_fail: HashMap<&[u32], u32> =
        tests
            .iter()
            .filter(|t| t.verdict == Verdict::Fail)
            .fold(HashMap::new(), |mut m, t| {
                let e = m.entry(t.nodes.as_slice()).or_insert(0);
                *e = (*e).max(t.round);
                m
            });
    for set in &iso.unexplained_once {
        let failed_in = last_fail.get(set.as_slice()).copied().unwrap_or(0);
        let retested = tests.iter().any(|t| t.round > failed_in && t.nodes == *set);
        if !retested && take(set, &mut busy) {
            out.push((Purpose::Retest, set.clone()));
        }
    }
    // 1b. Cross-boundary probes of failed groups whose halves passed: up to two disjoint
    // pairs, one node from each half.
    for (_, [a, b]) in &iso.needs_probe {
        for k in 0..a.len().min(b.len()).min(2) {
            let mut pair = vec![a[k], b[k]];
            pair.sort_unstable();
            if take(&pair, &mut busy) {
                out.push((Purpose::Probe, pair));
            }
        }
    }
    // 2. Follow-ups of failed tests: culprits not tested since.
    let mut singles: Vec<u32> = Vec::new();
    let mut seen_single = vec![false; n_nodes];
    for t in tests.iter().filter(|t| t.verdict == Verdict::Fail) {
        let pending: Vec<u32> = t
            .nodes
            .iter()
            .copied()
            .filter(|&n| {
                let i = n as usize;
                !iso.good[i] && !iso.confirmed_bad(n, confirm) && last_round[i] <= t.round && eligible[i]
            })
            .collect();
        if pending.len() >= 4 {
            let half = pending.len() / 2;
            for part in [&pending[..half], &pending[half..]] {
                if take(part, &mut busy) {
                    out.push((Purpose::Bisect, part.to_vec()));
                }
            }
        } else {
            for n in pending {
                if !seen_single[n as usize] {
                    seen_single[n as usize] = true;
                    singles.push(n);
                }
            }
        }
    }
    // 3. Nodes never in a multi-node test (the odd one out, a partner pool that ran dry).
    for (i, &e) in eligible.iter().enumerate() {
        let n = i as u32;
        if e && last_round[i] == 0 && !seen_single[i] && !tests.is_empty() {
            seen_single[i] = true;
            singles.push(n);
        }
    }
    // 4. Each single with a known-good partner it has not been tested with.
    let mut rng = Rng::new(seed ^ (u64::from(round) << 32));
    let mut pool: Vec<u32> = (0..n_nodes as u32)
        .filter(|&n| iso.good[n as usize] && eligible[n as usize] && !busy[n as usize])
        .collect();
    rng.shuffle(&mut pool);
    let mut used = vec![false; pool.len()];
    // Every pool entry before `first` is used: the scan stays linear in the pool when many
    // nodes need partners at once.
    let mut first = 0;
    for x in singles {
        if busy[x as usize] {
            continue;
        }
        while first < pool.len() && (used[first] || busy[pool[first] as usize]) {
            first += 1;
        }
        let tried = partners.get(&x);
        let pick = (first..pool.len()).find(|&j| {
            let p = pool[j];
            !used[j] && !busy[p as usize] && p != x && tried.is_none_or(|s| !s.contains(&p))
        });
        if let Some(j) = pick {
            used[j] = true;
            let mut set = vec![x, pool[j]];
            set.sort_unstable();
            if take(&set, &mut busy) {
                out.push((Purpose::Confirm, set));
            }
        }
    }
    out
}

/// The screening round: a seeded shuffle of the eligible nodes cut into sets of `size`
/// (2 for pairs); a remainder of one joins the last set.
pub fn screen(eligible: &[u32], size: usize, seed: u64) -> Vec<Vec<u32>> {
    let size = size.max(2);
    let mut v = eligible.to_vec();
    Rng::new(seed).shuffle(&mut v);
    let mut sets: Vec<Vec<u32>> = v.chunks(size).map(|c| c.to_vec()).collect();
    if sets.len() >= 2 && sets.last().is_some_and(|l| l.len() < 2) {
        let last = sets.pop().unwrap_or_default();
        if let Some(prev) = sets.last_mut() {
            prev.extend(last);
        }
    }
    if sets.last().is_some_and(|l| l.len() < 2) {
        sets.pop();
    }
    for s in &mut sets {
        s.sort_unstable();
    }
    sets
}

/// Default group size for `groups`: about √N, at least 2.
pub fn group_size(n: usize) -> usize {
    ((n as f64).sqrt().ceil() as usize).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs rounds until nothing is left, with `fails(set)` as the oracle; returns the state.
    fn drive(n: usize, size: usize, max_rounds: u32, fails: impl Fn(&[u32]) -> bool) -> (Isolation, u32) {
        let eligible = vec![true; n];
        let all: Vec<u32> = (0..n as u32).collect();
        let mut sets: Vec<(Purpose, Vec<u32>)> = screen(&all, size, 5)
            .into_iter()
            .map(|s| (Purpose::Screen, s))
            .collect();
        let mut tests = Vec::new();
        let mut round = 0;
        loop {
            round += 1;
            for (p, s) in sets {
                let verdict = if fails(&s) { Verdict::Fail } else { Verdict::Pass };
                tests.push(TestEval {
                    round,
                    purpose: p,
                    nodes: s,
                    verdict,
                });
            }
            let iso = evaluate(n, &tests);
            sets = next_tests(&eligible, &tests, &iso, 2, 5, round + 1);
            if sets.is_empty() || round >= max_rounds {
                return (iso, round);
            }
        }
    }

    #[test]
    fn a_bad_link_is_a_link_not_two_bad_nodes() {
        // Find the pair the seeded screening makes, and make exactly that link bad.
        let all: Vec<u32> = (0..20).collect();
        let link = screen(&all, 2, 5)[3].clone();
        let (iso, rounds) = drive(20, 2, 3, |s| s == link.as_slice());
        assert_eq!(iso.faults, vec![(link.clone(), 2)]);
        assert!(
            link.iter()
                .all(|&m| iso.good[m as usize] && !iso.confirmed_bad(m, 2))
        );
        assert_eq!(rounds, 3);
    }

    #[test]
    fn a_slow_node_is_confirmed_with_distinct_good_partners() {
        let (iso, rounds) = drive(20, 2, 3, |s| s.contains(&7));
        assert!(iso.confirmed_bad(7, 2));
        assert_eq!(iso.confirm_fails[7], 2);
        assert!((0..20u32).filter(|&m| m != 7).all(|m| iso.good[m as usize]));
        assert!(iso.faults.is_empty());
        assert_eq!(rounds, 3);
    }

    #[test]
    fn groups_bisect_to_the_bad_node_and_report_infrastructure_faults() {
        let (iso, _) = drive(100, 10, 12, |s| s.contains(&42));
        assert!(iso.confirmed_bad(42, 2));
        assert!((0..100u32).filter(|&m| m != 42).all(|m| iso.good[m as usize]));
        // A group failing only as a whole (a switch), its halves passing: an infrastructure fault.
        let all: Vec<u32> = (0..36).collect();
        let g = screen(&all, 6, 5)[2].clone();
        let (iso, _) = drive(36, 6, 12, |s| s == g.as_slice());
        assert_eq!(iso.faults, vec![(g.clone(), 2)]);
        assert!(g.iter().all(|&m| !iso.confirmed_bad(m, 2)));
    }

    /// A group failing only across its two halves (a leaf-to-leaf path): bisection passes
    /// both halves, then two pairs across the boundary fail: an infrastructure fault found by
    /// probes, without retesting the whole group, and no node blamed.
    #[test]
    fn cross_boundary_probes_find_the_path_between_the_halves() {
        let all: Vec<u32> = (0..36).collect();
        let g = screen(&all, 6, 5)[2].clone();
        let (lo, hi) = g.split_at(g.len() / 2);
        let (lo, hi) = (lo.to_vec(), hi.to_vec());
        let (iso, rounds) = drive(36, 6, 12, |s| {
            s.iter().any(|n| lo.contains(n)) && s.iter().any(|n| hi.contains(n))
        });
        assert_eq!(iso.boundary.len(), 1, "{:?}", iso.boundary);
        let (set, probes) = &iso.boundary[0];
        assert_eq!(set, &g);
        assert_eq!(probes.len(), 2);
        for p in probes {
            assert!(
                p.iter().any(|n| lo.contains(n)) && p.iter().any(|n| hi.contains(n)),
                "{p:?}"
            );
        }
        assert!(iso.faults.is_empty(), "no retest of the whole group was needed");
        assert!(
            g.iter()
                .all(|&m| iso.good[m as usize] && !iso.confirmed_bad(m, 2))
        );
        // screen, bisect, probe.
        assert_eq!(rounds, 3);
    }

    #[test]
    fn a_transient_failure_is_neither_fault_nor_bad_node() {
        let all: Vec<u32> = (0..10).collect();
        let first = screen(&all, 2, 5)[0].clone();
        let seen = std::cell::Cell::new(false);
        let (iso, _) = drive(10, 2, 3, |s| {
            let f = s == first.as_slice() && !seen.get();
            if f {
                seen.set(true);
            }
            f
        });
        assert!(iso.faults.is_empty());
        assert_eq!(iso.transient, vec![first]);
        assert!(iso.good.iter().all(|&g| g));
    }
}
