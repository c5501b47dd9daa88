//! Placement tests on small hand-built clusters: exact assignments, partly used clusters
//! where the article's first-fit does worse, and requests that cannot be met.

use super::cluster::{self, Cluster};
use super::*;

fn cl(toml: &str) -> Cluster {
    cluster::parse(toml, "test.toml").expect("test cluster parses")
}

fn opts(tp: u32, pp: u32, replicas: Replicas) -> Options {
    Options {
        tp,
        pp,
        replicas,
        tp_within: Scope::CrossRack,
        pp_within: Scope::CrossRack,
        message_bytes: 16 << 20,
        message_source: "test".into(),
        links: cost::Links::builtin().expect("links"),
        budget: None,
    }
}

/// `node:gpu,gpu` per stage, e.g. `["n0:0,1,2,3", "n1:0,1,2,3"]`; a spanning stage joins its
/// nodes with `+`.
fn stages(r: &ReplicaOut) -> Vec<String> {
    r.stages
        .iter()
        .map(|s| {
            let mut parts: Vec<(String, Vec<String>)> = Vec::new();
            for g in &s.gpus {
                match parts.iter_mut().find(|(n, _)| *n == g.node) {
                    Some(p) => p.1.push(g.gpu.to_string()),
                    None => parts.push((g.node.clone(), vec![g.gpu.to_string()])),
                }
            }
            parts
                .iter()
                .map(|(n, g)| format!("{n}:{}", g.join(",")))
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect()
}

/// The article's `TopologyAwarePlacement`, as the baseline to beat: for each replica, stage
/// by stage, the first node (file order) with `tp` free GPUs, else the first rack with `tp`
/// free GPUs spread over its nodes. It ignores which GPUs are in use, so we only count.
/// Returns, per replica, the (node, count) pieces of each stage.
/// Per replica, per stage, the `(node, GPU count)` pieces.
type FirstFit = Vec<Vec<Vec<(usize, u32)>>>;

fn first_fit(c: &Cluster, tp: u32, pp: u32, n: usize) -> Option<FirstFit> {
    let mut free: Vec<u32> = c.nodes.iter().map(|n| n.free_count()).collect();
    let mut out = Vec::new();
    for _ in 0..n {
        let mut rep = Vec::new();
        for _ in 0..pp {
            if let Some(i) = (0..free.len()).find(|&i| free[i] >= tp) {
                free[i] -= tp;
                rep.push(vec![(i, tp)]);
                continue;
            }
            let mut placed = None;
            for r in 0..c.racks.len() {
                let nodes: Vec<usize> = (0..free.len()).filter(|&i| c.nodes[i].rack == r).collect();
                if nodes.iter().map(|&i| free[i]).sum::<u32>() >= tp {
                    let mut need = tp;
                    let mut g = Vec::new();
                    for i in nodes {
                        let k = free[i].min(need);
                        if k > 0 {
                            free[i] -= k;
                            need -= k;
                            g.push((i, k));
                        }
                    }
                    placed = Some(g);
                    break;
                }
            }
            rep.push(placed?);
        }
        out.push(rep);
    }
    Some(out)
}

fn ff_racks(c: &Cluster, rep: &[Vec<(usize, u32)>]) -> usize {
    let mut r: Vec<usize> = rep.iter().flatten().map(|&(i, _)| c.nodes[i].rack).collect();
    r.sort();
    r.dedup();
    r.len()
}

fn whole_nodes_after_ff(c: &Cluster, ff: &[Vec<Vec<(usize, u32)>>]) -> usize {
    let mut free: Vec<u32> = c.nodes.iter().map(|n| n.free_count()).collect();
    for &(i, k) in ff.iter().flatten().flatten() {
        free[i] -= k;
    }
    c.nodes.iter().zip(free).filter(|(n, f)| *f == n.gpus).count()
}

#[test]
fn one_replica_fits_in_one_node_with_exact_gpus() {
    let c = cl(r#"
[[node]]
name = "n0"
rack = "r0"
gpus = 8
[[node]]
name = "n1"
rack = "r0"
gpus = 8
"#);
    let r = place(&c, &opts(4, 2, Replicas::Exactly(1)));
    assert!(r.feasible);
    assert_eq!(stages(&r.replicas[0]), ["n0:0,1,2,3", "n0:4,5,6,7"]);
    assert_eq!(r.replicas[0].pp_scope, Scope::IntraNode);
    assert_eq!(r.replicas[0].stages[0].tp_scope, Scope::IntraNode);
    assert_eq!(r.cluster.whole_free_nodes_after, 1);
}

#[test]
fn used_gpus_are_never_assigned() {
    let c = cl(r#"
[[node]]
name = "n0"
rack = "r0"
gpus = 8
used = [0, 3]
"#);
    let r = place(&c, &opts(2, 3, Replicas::Exactly(1)));
    assert_eq!(stages(&r.replicas[0]), ["n0:1,2", "n0:4,5", "n0:6,7"]);
    // The article's algorithm would hand out GPUs 0..5 here (it counts, it does not look).
}

#[test]
fn partly_used_rack_first_fit_crosses_racks_we_do_not() {
    // r0 holds one partly used node (4 free); r1 two whole nodes. tp 4, pp 2.
    let c = cl(r#"
[[node]]
name = "n0"
rack = "r0"
gpus = 8
used = 4
[[node]]
name = "n1"
rack = "r1"
gpus = 8
[[node]]
name = "n2"
rack = "r1"
gpus = 8
"#);
    let ff = first_fit(&c, 4, 2, 1).expect("first fit places");
    assert_eq!(
        ff_racks(&c, &ff[0]),
        2,
        "the baseline splits the pipeline over r0 and r1"
    );
    let r = place(&c, &opts(4, 2, Replicas::Exactly(1)));
    assert_eq!(stages(&r.replicas[0]), ["n1:0,1,2,3", "n1:4,5,6,7"]);
    assert_eq!(r.replicas[0].pp_scope, Scope::IntraNode);
    assert_eq!(r.summary.replicas_cross_rack, 0);
    assert!(r.warnings.iter().all(|w| w.code != "pipeline-crosses-racks"));
}

#[test]
fn fragmented_racks_keep_more_pipelines_rack_local_than_first_fit() {
    // Whole 8-GPU nodes, tp 8, pp 2, 4 replicas: r0 has 3 nodes, r1 4, r2 1.
    // First fit: r0,r0 | r0,r1 | r1,r1 | r1,r2 -> 2 pipelines cross racks.
    // Best: 3 rack-local pipelines, and the leftover r0 + r2 nodes make the fourth.
    let mut t = String::new();
    for (i, rack) in ["r0", "r0", "r0", "r1", "r1", "r1", "r1", "r2"]
        .iter()
        .enumerate()
    {
        t += &format!("[[node]]\nname = \"n{i}\"\nrack = \"{rack}\"\ngpus = 8\n");
    }
    let c = cl(&t);
    let ff = first_fit(&c, 8, 2, 4).expect("first fit places");
    assert_eq!(ff.iter().filter(|rep| ff_racks(&c, rep) > 1).count(), 2);
    let r = place(&c, &opts(8, 2, Replicas::Exactly(4)));
    assert!(r.feasible);
    assert_eq!(r.summary.replicas_cross_rack, 1);
    assert_eq!(r.summary.replicas_intra_rack, 3);
    let all: Vec<Vec<String>> = r.replicas.iter().map(stages).collect();
    assert_eq!(
        all,
        [
            vec!["n0:0,1,2,3,4,5,6,7", "n1:0,1,2,3,4,5,6,7"],
            vec!["n3:0,1,2,3,4,5,6,7", "n4:0,1,2,3,4,5,6,7"],
            vec!["n5:0,1,2,3,4,5,6,7", "n6:0,1,2,3,4,5,6,7"],
            vec!["n2:0,1,2,3,4,5,6,7", "n7:0,1,2,3,4,5,6,7"],
        ]
    );
    assert_eq!(r.replicas[3].racks, ["r0", "r2"]);
}

#[test]
fn partly_used_nodes_are_filled_before_whole_ones() {
    // First fit takes the whole n0; best fit takes the half-used n1 and keeps n0 whole.
    let c = cl(r#"
[[node]]
name = "n0"
rack = "r0"
gpus = 8
[[node]]
name = "n1"
rack = "r0"
gpus = 8
used = [4, 5, 6, 7]
"#);
    let ff = first_fit(&c, 4, 1, 1).expect("ff");
    assert_eq!(whole_nodes_after_ff(&c, &ff), 1 - 1);
    let r = place(&c, &opts(4, 1, Replicas::Exactly(1)));
    assert_eq!(stages(&r.replicas[0]), ["n1:0,1,2,3"]);
    assert_eq!(r.cluster.whole_free_nodes_after, 1);
}

#[test]
fn partly_used_racks_are_filled_before_whole_racks() {
    // r0 is whole, r1 partly used but roomy enough: the replica goes to r1, r0 stays whole.
    let c = cl(r#"
[[node]]
name = "a0"
rack = "r0"
gpus = 8
[[node]]
name = "a1"
rack = "r0"
gpus = 8
[[node]]
name = "b0"
rack = "r1"
gpus = 8
used = 8
[[node]]
name = "b1"
rack = "r1"
gpus = 8
"#);
    let r = place(&c, &opts(4, 2, Replicas::Exactly(1)));
    assert_eq!(stages(&r.replicas[0]), ["b1:0,1,2,3", "b1:4,5,6,7"]);
    assert_eq!(r.cluster.whole_free_racks_after, 1);
    let ff = first_fit(&c, 4, 2, 1).expect("ff");
    assert_eq!(ff[0][0][0].0, 0, "first fit breaks the whole rack r0");
}

#[test]
fn intra_node_tp_comes_before_rack_local_pipelines() {
    // tp 4, pp 2. r0: n0 has 6 free (one node-local group), n1 2 free; r1: n2 has 4 free.
    // Keeping both TP groups on NVLink needs n0 + n2 (pipeline across racks); keeping the
    // pipeline in r0 would split a TP group over n0 and n1.
    let toml = r#"
[[node]]
name = "n0"
rack = "r0"
gpus = 8
used = [6, 7]
[[node]]
name = "n1"
rack = "r0"
gpus = 8
used = 6
[[node]]
name = "n2"
rack = "r1"
gpus = 8
used = [0, 1, 2, 3]
"#;
    let c = cl(toml);
    let r = place(&c, &opts(4, 2, Replicas::Exactly(1)));
    assert_eq!(stages(&r.replicas[0]), ["n0:0,1,2,3", "n2:4,5,6,7"]);
    assert_eq!(r.replicas[0].pp_scope, Scope::CrossRack);
    assert!(
        r.replicas[0]
            .stages
            .iter()
            .all(|s| s.tp_scope == Scope::IntraNode)
    );
    // Refusing pipelines across racks: the second group has to span n0 and n1.
    let mut o = opts(4, 2, Replicas::Exactly(1));
    o.pp_within = Scope::IntraRack;
    let r = place(&c, &o);
    assert!(r.feasible);
    assert_eq!(stages(&r.replicas[0]), ["n0:0,1,2,3", "n0:4,5+n1:0,1"]);
    assert_eq!(r.replicas[0].stages[1].tp_scope, Scope::IntraRack);
    assert!(r.warnings.iter().any(|w| w.code == "tp-group-spans-nodes"));
    // And refusing split groups too: nothing fits, and the report says what would.
    o.tp_within = Scope::IntraNode;
    let r = place(&c, &o);
    assert!(!r.feasible);
    assert_eq!(r.unplaced_replicas, 1);
    assert!(
        r.reasons.iter().any(|m| m.contains("no rack can hold a replica")),
        "{:?}",
        r.reasons
    );
    assert!(
        r.alternatives
            .iter()
            .any(|m| m.contains("1 replica(s) fit with --tp-within any")),
        "{:?}",
        r.alternatives
    );
}

#[test]
fn tp_larger_than_a_node_spans_whole_nodes_in_one_rack() {
    let c = cluster::synthetic(8, 8, 4, None).expect("synthetic");
    let r = place(&c, &opts(16, 2, Replicas::Exactly(1)));
    assert!(r.feasible);
    assert_eq!(
        stages(&r.replicas[0]),
        [
            "n0:0,1,2,3,4,5,6,7+n1:0,1,2,3,4,5,6,7",
            "n2:0,1,2,3,4,5,6,7+n3:0,1,2,3,4,5,6,7"
        ]
    );
    assert_eq!(r.replicas[0].pp_scope, Scope::IntraRack);
    assert!(r.warnings.iter().any(|w| w.code == "tp-exceeds-node"));
    let mut o = opts(16, 2, Replicas::Exactly(1));
    o.tp_within = Scope::IntraNode;
    let r = place(&c, &o);
    assert!(!r.feasible);
    assert!(
        r.reasons
            .iter()
            .any(|m| m.contains("tp 16 exceeds every node (the largest has 8 GPUs)")),
        "{:?}",
        r.reasons
    );
}

#[test]
fn missing_gpus_are_counted() {
    let c = cluster::synthetic(2, 8, 2, None).expect("synthetic");
    let r = place(&c, &opts(8, 4, Replicas::Exactly(1)));
    assert!(!r.feasible);
    assert!(r.replicas.is_empty());
    assert_eq!(
        r.reasons[0],
        "1 replica(s) of tp 8 x pp 4 need 32 GPUs; 16 are free: 16 missing"
    );
}

#[test]
fn no_rack_holds_a_replica_and_the_report_says_what_fits() {
    let c = cluster::synthetic(4, 8, 2, None).expect("synthetic");
    let mut o = opts(8, 3, Replicas::Exactly(1));
    o.pp_within = Scope::IntraRack;
    let r = place(&c, &o);
    assert!(!r.feasible);
    assert_eq!(
        r.reasons,
        [
            "no rack can hold a replica: one needs 24 GPUs in a single rack (3 TP groups of 8); the roomiest rack, r0, has 16 free GPUs (2 TP groups inside one node)"
        ]
    );
    assert!(
        r.alternatives
            .contains(&"pp 2 or less with tp 8 fits in rack r0".to_string())
    );
    assert!(
        r.alternatives
            .iter()
            .any(|a| a.starts_with("1 replica(s) fit with --tp-within any"))
    );
    // Allowed to cross racks, the same request fits.
    let r = place(&c, &opts(8, 3, Replicas::Exactly(1)));
    assert!(r.feasible);
    assert_eq!(r.replicas[0].pp_scope, Scope::CrossRack);
}

#[test]
fn max_replicas_places_as_many_as_fit_and_partial_requests_report_the_rest() {
    let c = cluster::synthetic(4, 8, 2, None).expect("synthetic");
    let r = place(&c, &opts(4, 2, Replicas::Max));
    assert!(r.feasible);
    assert_eq!(r.replicas.len(), 4);
    assert_eq!(r.summary.tp_groups_intra_node, 8);
    assert_eq!(r.cluster.free_gpus_after, 0);
    let r = place(&c, &opts(4, 2, Replicas::Exactly(5)));
    assert!(!r.feasible);
    assert_eq!(r.replicas.len(), 4);
    assert_eq!(r.unplaced_replicas, 1);
    assert!(
        r.alternatives
            .iter()
            .any(|a| a.contains("4 replica(s) fit as requested"))
    );
}

#[test]
fn hosts_list_ranks_and_cuda_visible_devices_in_rank_order() {
    let c = cl(r#"
[[node]]
name = "n0"
rack = "r0"
gpus = 4
used = [0]
[[node]]
name = "n1"
rack = "r0"
gpus = 4
used = [0, 1]
"#);
    // tp 2, pp 2: n0 holds one group (GPUs 1,2), n1 one (2,3).
    let r = place(&c, &opts(2, 2, Replicas::Exactly(1)));
    let rep = &r.replicas[0];
    assert_eq!(stages(rep), ["n0:1,2", "n1:2,3"]);
    assert_eq!(rep.hosts.len(), 2);
    assert_eq!(
        (rep.hosts[0].node.as_str(), rep.hosts[0].ranks.clone()),
        ("n0", vec![0, 1])
    );
    assert_eq!(rep.hosts[0].cuda_visible_devices, "1,2");
    assert_eq!(rep.hosts[1].cuda_visible_devices, "2,3");
    assert_eq!(rep.hosts[1].ranks, [2, 3]);
}

#[test]
fn cost_grows_from_nvlink_to_rack_to_cross_rack() {
    let c = cluster::synthetic(4, 4, 2, None).expect("synthetic");
    // tp 8 over 4-GPU nodes: rack-local spanning group; tp 16: spans racks.
    let a = place(&c, &opts(4, 1, Replicas::Exactly(1)));
    let b = place(&c, &opts(8, 1, Replicas::Exactly(1)));
    let d = place(&c, &opts(16, 1, Replicas::Exactly(1)));
    let us = |r: &PlaceReport| r.replicas[0].stages[0].allreduce_us.expect("cost");
    assert_eq!(b.replicas[0].stages[0].tp_scope, Scope::IntraRack);
    assert_eq!(d.replicas[0].stages[0].tp_scope, Scope::CrossRack);
    assert!(
        us(&a) < us(&b) && us(&b) < us(&d),
        "{} {} {}",
        us(&a),
        us(&b),
        us(&d)
    );
    // Four GPUs per node over 4 of 8 NICs: 4 × 400/8 × 0.96 = 192 GB/s.
    assert_eq!(b.replicas[0].stages[0].bus_gbytes_per_s, 192.0);
    assert!(d.warnings.iter().any(|w| w.code == "cross-rack-latency-assumed"));
}

#[test]
fn latency_budget_share_per_replica() {
    let c = cluster::synthetic(1, 8, 1, None).expect("synthetic");
    let mut o = opts(8, 1, Replicas::Exactly(1));
    o.budget = Some(BudgetOptions {
        tokens_per_s: 30.0,
        layers: 80,
    });
    let r = place(&c, &o);
    let us = r.replicas[0].stages[0].allreduce_us.expect("cost");
    let per_token = r.replicas[0].allreduce_us_per_token.expect("budget");
    assert!((per_token - 160.0 * us).abs() < 0.5, "{per_token} vs {us}");
    let share = r.replicas[0].budget_share.expect("share");
    assert!((share - per_token / 33_333.333).abs() < 1e-3);
    assert_eq!(r.budget.as_ref().map(|b| b.allreduces_per_layer), Some(2));
}

#[test]
fn a_full_synthetic_cluster_is_filled_with_every_group_intra_node() {
    let c = cluster::synthetic(256, 8, 32, None).expect("synthetic");
    let r = place(&c, &opts(8, 4, Replicas::Exactly(64)));
    assert!(r.feasible);
    assert_eq!(r.summary.tp_groups_spanning_nodes, 0);
    assert_eq!(r.summary.replicas_cross_rack, 0);
    assert_eq!(r.cluster.free_gpus_after, 0);
}

#[test]
fn pipelines_that_must_cross_racks_stay_inside_a_pod() {
    // One node-local group per rack; r0 and r2 share pod p0, r1 is in p1.
    let c = cl(r#"
[[node]]
name = "a"
rack = "r0"
pod = "p0"
gpus = 8
used = 4
[[node]]
name = "b"
rack = "r1"
pod = "p1"
gpus = 8
used = 4
[[node]]
name = "c"
rack = "r2"
pod = "p0"
gpus = 8
used = 4
"#);
    let r = place(&c, &opts(4, 2, Replicas::Exactly(1)));
    assert_eq!(stages(&r.replicas[0]), ["a:0,1,2,3", "c:0,1,2,3"]);
    assert_eq!(r.replicas[0].pods, ["p0"]);
    assert!(r.warnings.iter().all(|w| w.code != "pipeline-crosses-pods"));
    let r = place(&c, &opts(4, 3, Replicas::Exactly(1)));
    assert_eq!(r.replicas[0].pods, ["p0", "p1"]);
    assert!(r.warnings.iter().any(|w| w.code == "pipeline-crosses-pods"));
}

#[test]
fn pipelines_inside_one_node_when_asked() {
    let c = cl(r#"
[[node]]
name = "n0"
rack = "r0"
gpus = 8
used = 4
[[node]]
name = "n1"
rack = "r0"
gpus = 8
used = 4
"#);
    let mut o = opts(4, 2, Replicas::Exactly(1));
    o.pp_within = Scope::IntraNode;
    let r = place(&c, &o);
    assert!(!r.feasible);
    assert_eq!(
        r.reasons,
        ["no node can hold a replica: one needs 2 TP groups of 4 in a single node"]
    );
    o.pp_within = Scope::IntraRack;
    let r = place(&c, &o);
    assert_eq!(stages(&r.replicas[0]), ["n0:0,1,2,3", "n1:0,1,2,3"]);
}

/// A partly used cluster from a fixed pseudo-random sequence: `nodes` nodes of 8 GPUs,
/// `per_rack` to a rack, 0 to 7 GPUs used on about two nodes in three.
fn random_cluster(nodes: usize, per_rack: usize, seed: u64) -> Cluster {
    let mut c = cluster::synthetic(nodes, 8, per_rack, None).expect("synthetic");
    let mut x = seed | 1;
    for n in &mut c.nodes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if !x.is_multiple_of(3) {
            // Used GPUs anywhere in the node, not only the low indices.
            let used = u128::from((x >> 8) as u8);
            n.free &= !used;
        }
    }
    c
}

#[test]
fn every_assignment_is_a_free_gpu_used_once_and_max_replicas_fills_the_cluster() {
    for seed in [1u64, 7, 42] {
        let c = random_cluster(48, 6, seed);
        let free = c.free_gpus();
        for (tp, pp) in [(1, 1), (2, 3), (4, 2), (8, 1), (8, 2), (16, 2), (3, 5)] {
            let r = place(&c, &opts(tp, pp, Replicas::Max));
            let per = u64::from(tp * pp);
            // With no limits every free GPU may be used: exactly floor(free / per) replicas.
            assert_eq!(r.replicas.len() as u64, free / per, "seed {seed} tp {tp} pp {pp}");
            let mut seen = std::collections::HashSet::new();
            for rep in &r.replicas {
                assert_eq!(rep.stages.len(), pp as usize);
                for st in &rep.stages {
                    assert_eq!(st.gpus.len(), tp as usize);
                    for g in &st.gpus {
                        let n = c.nodes.iter().find(|n| n.name == g.node).expect("node");
                        assert!(n.free & (1u128 << g.gpu) != 0, "{}:{} was in use", g.node, g.gpu);
                        assert!(seen.insert((g.node.clone(), g.gpu)), "{}:{} twice", g.node, g.gpu);
                    }
                }
            }
            assert_eq!(r.cluster.free_gpus_after, free - per * r.replicas.len() as u64);
            // Goal 1: no more TP groups split than node-local slots force.
            let slots: u64 = c.nodes.iter().map(|n| u64::from(n.free_count() / tp)).sum();
            let groups = r.replicas.len() as u64 * u64::from(pp);
            assert_eq!(
                r.summary.tp_groups_intra_node as u64,
                groups.min(slots),
                "seed {seed} tp {tp} pp {pp}"
            );
        }
    }
}

#[test]
fn spanning_groups_stay_inside_racks_before_straddling_them() {
    // Racks of two 8-GPU nodes; tp 16 fills a rack, so a pp 2 pipeline needs two racks but
    // each group stays in one.
    let c = cluster::synthetic(6, 8, 2, None).expect("synthetic");
    let r = place(&c, &opts(16, 2, Replicas::Exactly(1)));
    assert_eq!(
        stages(&r.replicas[0]),
        [
            "n0:0,1,2,3,4,5,6,7+n1:0,1,2,3,4,5,6,7",
            "n2:0,1,2,3,4,5,6,7+n3:0,1,2,3,4,5,6,7"
        ]
    );
    assert_eq!(r.replicas[0].pp_scope, Scope::CrossRack);
    assert!(
        r.replicas[0]
            .stages
            .iter()
            .all(|s| s.tp_scope == Scope::IntraRack)
    );
    // One node per rack and tp 12: the group has to straddle two racks, unless refused.
    let c = cluster::synthetic(3, 8, 1, None).expect("synthetic");
    let r = place(&c, &opts(12, 1, Replicas::Exactly(1)));
    assert_eq!(stages(&r.replicas[0]), ["n0:0,1,2,3,4,5,6,7+n1:0,1,2,3"]);
    assert_eq!(r.replicas[0].stages[0].tp_scope, Scope::CrossRack);
    let mut o = opts(12, 1, Replicas::Exactly(1));
    o.tp_within = Scope::IntraRack;
    let r = place(&c, &o);
    assert!(!r.feasible);
    assert!(
        r.alternatives
            .iter()
            .any(|a| a.starts_with("1 replica(s) fit with --tp-within any")),
        "{:?}",
        r.alternatives
    );
}

#[test]
fn limits_are_never_exceeded() {
    let scopes = [Scope::IntraNode, Scope::IntraRack, Scope::CrossRack];
    for seed in [3u64, 11] {
        let c = random_cluster(40, 5, seed);
        for (tp, pp) in [(2, 3), (4, 2), (8, 2), (16, 1), (3, 3)] {
            let mut last = 0;
            for &tw in &scopes {
                for &pw in &scopes {
                    let mut o = opts(tp, pp, Replicas::Max);
                    o.tp_within = tw;
                    o.pp_within = pw;
                    let r = place(&c, &o);
                    for rep in &r.replicas {
                        assert!(rep.pp_scope <= pw, "seed {seed} tp {tp} pp {pp} {tw:?}/{pw:?}");
                        assert!(
                            rep.stages
                                .iter()
                                .all(|s| s.tp_scope <= tw && s.gpus.len() == tp as usize)
                        );
                    }
                    let mut seen = std::collections::HashSet::new();
                    assert!(
                        r.replicas
                            .iter()
                            .flat_map(|x| &x.stages)
                            .flat_map(|s| &s.gpus)
                            .all(|g| seen.insert((g.node.clone(), g.gpu)))
                    );
                    if (tw, pw) == (Scope::CrossRack, Scope::CrossRack) {
                        // The loosest limits place the most.
                        assert!(r.replicas.len() >= last);
                    }
                    last = last.max(r.replicas.len());
                }
            }
        }
    }
}

/// A deterministic xorshift sequence for the property tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A random partly used cluster: 2 to 48 nodes of 4 or 8 GPUs, 1 to 8 to a rack; per node
/// free, full, or some GPUs used anywhere.
fn random_partly_used(rng: &mut Rng) -> Cluster {
    let nodes = 2 + rng.below(47) as usize;
    let per_rack = 1 + rng.below(8) as usize;
    let gpus = if rng.below(5) == 0 { 4 } else { 8 };
    let mut c = cluster::synthetic(nodes, gpus, per_rack, None).expect("synthetic");
    for n in &mut c.nodes {
        match rng.below(4) {
            0 => {}                               // whole
            1 => n.free = 0,                      // full
            _ => n.free &= !(rng.next() as u128), // some used, anywhere
        }
        n.free &= (1u128 << n.gpus) - 1;
    }
    c
}

/// The goals (1)-(3) of a placement given as `(node, count)` pieces per stage, lower is
/// better: split TP groups, pipelines across racks, whole racks broken, whole nodes broken.
fn goals_of(c: &Cluster, reps: &[Vec<Vec<(usize, u32)>>]) -> (usize, usize, usize, usize) {
    let mut used = vec![0u32; c.nodes.len()];
    let (mut split, mut cross) = (0, 0);
    for rep in reps {
        for g in rep {
            // Islands: the NVLink domain of a tray, else the node.
            let mut islands: Vec<usize> = g
                .iter()
                .map(|&(i, _)| c.nodes[i].domain.map_or(i, |d| c.nodes.len() + d))
                .collect();
            islands.sort();
            islands.dedup();
            split += usize::from(islands.len() > 1);
            for &(i, k) in g {
                used[i] += k;
            }
        }
        cross += usize::from(ff_racks(c, rep) > 1);
    }
    let mut rack_before = vec![true; c.racks.len()];
    let mut rack_after = vec![true; c.racks.len()];
    let mut nodes_broken = 0;
    for (i, n) in c.nodes.iter().enumerate() {
        let whole = n.free_count() == n.gpus;
        rack_before[n.rack] &= whole;
        rack_after[n.rack] &= whole && used[i] == 0;
        nodes_broken += usize::from(whole && used[i] > 0);
    }
    let racks_broken = rack_before
        .iter()
        .zip(&rack_after)
        .filter(|(b, a)| **b && !**a)
        .count();
    (split, cross, racks_broken, nodes_broken)
}

/// The report's replicas as `(node, count)` pieces per stage, checking on the way that every
/// GPU was free and is used once.
fn pieces_of(c: &Cluster, r: &PlaceReport) -> Vec<Vec<Vec<(usize, u32)>>> {
    let index: std::collections::HashMap<&str, usize> = c
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut seen = std::collections::HashSet::new();
    r.replicas
        .iter()
        .map(|rep| {
            rep.stages
                .iter()
                .map(|st| {
                    let mut v: Vec<(usize, u32)> = Vec::new();
                    for g in &st.gpus {
                        let i = index[g.node.as_str()];
                        assert!(
                            c.nodes[i].free & (1u128 << g.gpu) != 0,
                            "{}:{} in use",
                            g.node,
                            g.gpu
                        );
                        assert!(seen.insert((i, g.gpu)), "{}:{} twice", g.node, g.gpu);
                        match v.iter_mut().find(|x| x.0 == i) {
                            Some(x) => x.1 += 1,
                            None => v.push((i, 1)),
                        }
                    }
                    v
                })
                .collect()
        })
        .collect()
}

#[test]
fn on_1000_random_partly_used_clusters_place_never_loses_to_first_fit() {
    let mut rng = Rng(0x5EED_CAFE_F00D_1234);
    let (mut wins, mut ties, mut compared) = (0, 0, 0);
    let mut wins_by_goal = [0usize; 5];
    let mut search_alone_lost = 0;
    let mut kept = std::collections::BTreeMap::new();
    for case in 0..1000 {
        let c = random_partly_used(&mut rng);
        let tp = [1u32, 2, 4, 8, 16][rng.below(5) as usize];
        let pp = 1 + rng.below(4) as u32;
        let per = u64::from(tp * pp);
        let fit = c.free_gpus() / per;
        if fit == 0 {
            continue;
        }
        let n = 1 + rng.below(fit) as usize;
        let r = place(&c, &opts(tp, pp, Replicas::Exactly(n)));
        let ours = pieces_of(&c, &r);
        let Some(ff) = first_fit(&c, tp, pp, n) else {
            // First-fit could not place them all; we must at least place as many.
            assert!(r.feasible, "case {case}: first-fit failed and so did we");
            wins += 1;
            wins_by_goal[0] += 1;
            continue;
        };
        compared += 1;
        assert!(
            r.feasible,
            "case {case}: first-fit placed {n}, we did not: {:?}",
            r.reasons
        );
        let a = goals_of(&c, &ours);
        let b = goals_of(&c, &ff);
        assert!(
            a <= b,
            "case {case}: tp {tp} pp {pp} x{n} on {} nodes: ours {a:?} loses to first-fit {b:?}",
            c.nodes.len()
        );
        // The report's own account agrees with ours.
        let g = &r.summary.goals;
        assert_eq!(
            (
                g.split_tp_groups,
                g.cross_rack_pipelines,
                g.whole_racks_broken,
                g.whole_nodes_broken
            ),
            a,
            "case {case}"
        );
        *kept.entry(r.summary.strategy.clone()).or_insert(0) += 1;
        if a < b {
            wins += 1;
            let k = if a.0 < b.0 {
                1
            } else if a.1 < b.1 {
                2
            } else if a.2 < b.2 {
                3
            } else {
                4
            };
            wins_by_goal[k] += 1;
        } else {
            ties += 1;
        }
        // How the search alone would have fared (for the record, not a pass condition).
        let mut eng = search::Engine::new(&c, tp, pp, false, search::Policy::KeepWhole);
        let placed = eng.run(n, Scope::CrossRack, Scope::CrossRack);
        let s = search::score(&c, &placed, n, &eng.free);
        if (
            s.unplaced,
            s.split_groups,
            s.cross_rack,
            s.racks_broken,
            s.nodes_broken,
        ) > (0, b.0, b.1, b.2, b.3)
        {
            search_alone_lost += 1;
            if std::env::var_os("PLACE_DEBUG").is_some() {
                eprintln!("case {case}: tp {tp} pp {pp} x{n}: search {s:?} first-fit {b:?}");
            }
        }
    }
    println!(
        "place vs first-fit on 1000 random partly used clusters: first-fit could not place the \
         request on {} where place could; of {compared} compared, place wins {} (fewer split TP \
         groups {}, fewer cross-rack pipelines {}, fewer whole racks broken {}, fewer whole nodes \
         broken {}), ties {ties}, loses 0; candidate kept: {kept:?}; the search alone would have \
         lost {search_alone_lost}",
        wins_by_goal[0],
        wins - wins_by_goal[0],
        wins_by_goal[1],
        wins_by_goal[2],
        wins_by_goal[3],
        wins_by_goal[4]
    );
    assert!(compared >= 500, "only {compared} cases compared");
    assert!(wins > 0);
}

const EXAMPLE: &str = include_str!("../../fixtures/clusters/example.toml");
const NVL72: &str = include_str!("../../fixtures/clusters/gb200-nvl72.toml");
const H100: &str = include_str!("../../fixtures/clusters/h100.toml");

#[test]
fn the_example_cluster_keeps_whole_nodes_and_racks_where_a_partly_used_node_fits() {
    let c = cluster::parse(EXAMPLE, "example.toml").expect("example parses");
    // tp 2 x pp 2 = 4 GPUs: gpu-b01 has exactly 4 free; gpu-d01 (a whole node, alone in a
    // whole rack) must stay whole.
    let r = place(&c, &opts(2, 2, Replicas::Exactly(1)));
    assert!(r.feasible);
    assert_eq!(
        (r.cluster.whole_free_nodes_after, r.cluster.whole_free_racks_after),
        (
            r.cluster.whole_free_nodes_before,
            r.cluster.whole_free_racks_before
        ),
        "{:?}",
        stages(&r.replicas[0])
    );
    assert!(
        r.replicas[0]
            .stages
            .iter()
            .all(|s| s.tp_scope == Scope::IntraNode)
    );
    assert_eq!(r.summary.goals.whole_nodes_broken, 0);
    // tp 4 x pp 2: no partly used node holds two groups and no rack holds two partly used
    // ones, so one whole node breaks (goal 2 before goal 3), but not rack d.
    let r = place(&c, &opts(4, 2, Replicas::Exactly(1)));
    assert!(r.feasible);
    assert!(r.replicas[0].pp_scope <= Scope::IntraRack);
    assert_eq!(r.cluster.whole_free_racks_after, 1);
    assert!(
        !r.replicas[0].racks.contains(&"d".to_string()),
        "{:?}",
        r.replicas[0].racks
    );
    assert_eq!(r.summary.goals.whole_nodes_broken, 1);
}

#[test]
fn tp8_pp2_14_replicas_on_a_partly_used_cluster_split_no_more_groups_than_slots_force() {
    for seed in [1u64, 7, 42, 99, 123] {
        let c = random_cluster(24, 4, seed);
        let slots: usize = c.nodes.iter().map(|n| (n.free_count() / 8) as usize).sum();
        if c.free_gpus() < 14 * 16 {
            continue;
        }
        let r = place(&c, &opts(8, 2, Replicas::Exactly(14)));
        assert!(r.feasible, "seed {seed}");
        // The fewest possible: every node-local slot used before any group spans nodes.
        assert_eq!(
            r.summary.tp_groups_spanning_nodes,
            28usize.saturating_sub(slots),
            "seed {seed}"
        );
        let ff = first_fit(&c, 8, 2, 14).expect("first fit");
        let ff_split = ff.iter().flatten().filter(|g| g.len() > 1).count();
        assert!(r.summary.tp_groups_spanning_nodes <= ff_split, "seed {seed}");
    }
}

#[test]
fn nvl72_tp16_groups_stay_inside_one_nvlink_domain_with_the_nvlink_cost() {
    let c = cluster::parse(NVL72, "gb200-nvl72.toml").expect("nvl72 parses");
    assert_eq!(c.domains.len(), 3);
    assert_eq!(c.nodes.len(), 54);
    // 4 replicas of 32 GPUs: nvl72-a (65 free) and nvl72-b (68) hold two each.
    let r = place(&c, &opts(16, 2, Replicas::Exactly(4)));
    assert!(r.feasible, "{:?}", r.reasons);
    for rep in &r.replicas {
        for st in &rep.stages {
            assert_eq!(
                st.tp_scope,
                Scope::IntraDomain,
                "{}",
                crate::render::place::gpu_list(st)
            );
            assert_eq!(st.link, "nvlink-gb200");
            // 18 links x 40.1 GB/s (NCCL's SM100 per-link bandwidth), no network in the ring.
            assert_eq!(st.bus_gbytes_per_s, 721.8);
            let domains: std::collections::HashSet<_> = st
                .gpus
                .iter()
                .map(|g| c.nodes.iter().find(|n| n.name == g.node).and_then(|n| n.domain))
                .collect();
            assert_eq!(domains.len(), 1);
        }
        // Pipelines stay in one domain here.
        assert!(rep.pp_scope <= Scope::IntraDomain);
        // Hosts carry their domain and CUDA_VISIBLE_DEVICES for the tray.
        assert!(
            rep.hosts
                .iter()
                .all(|h| h.nvlink_domain.is_some() && !h.cuda_visible_devices.is_empty())
        );
    }
    assert_eq!(r.summary.tp_groups_spanning_nodes, 0);
    assert_eq!(r.summary.tp_groups_intra_domain, 8);
    assert!(r.warnings.iter().any(|w| w.code == "tp-group-in-nvlink-domain"));
    assert!(!r.warnings.iter().any(|w| w.code == "tp-group-spans-nodes"));
    // Partly used trays of nvl72-a are taken first; nvl72-c (a whole rack) stays whole.
    assert_eq!(r.summary.goals.whole_racks_broken, 0, "{:?}", r.summary.goals);

    // The same request on 8-GPU H100 nodes must split groups across nodes, and says so.
    let h = cluster::parse(H100, "h100.toml").expect("h100 parses");
    let r = place(&h, &opts(16, 2, Replicas::Exactly(2)));
    assert!(r.feasible);
    assert_eq!(r.summary.tp_groups_spanning_nodes, 4);
    assert!(
        r.replicas
            .iter()
            .flat_map(|x| &x.stages)
            .all(|s| s.tp_scope >= Scope::IntraRack)
    );
    let w = r
        .warnings
        .iter()
        .find(|w| w.code == "tp-group-spans-nodes")
        .expect("a warning");
    assert!(w.message.contains("split across nodes"), "{}", w.message);
    // And the NVLink domain's all-reduce is cheaper than the network's.
    let nvl = place(&c, &opts(16, 1, Replicas::Exactly(1)));
    let net = place(&h, &opts(16, 1, Replicas::Exactly(1)));
    let us = |r: &PlaceReport| r.replicas[0].stages[0].allreduce_us.expect("us");
    assert!(us(&nvl) < us(&net), "{} vs {}", us(&nvl), us(&net));
}

#[test]
fn tp_within_node_keeps_groups_on_one_tray_and_domain_allows_the_domain() {
    let c = cluster::parse(NVL72, "gb200-nvl72.toml").expect("nvl72 parses");
    let mut o = opts(16, 1, Replicas::Exactly(1));
    o.tp_within = Scope::IntraNode;
    let r = place(&c, &o);
    assert!(!r.feasible);
    o.tp_within = Scope::IntraDomain;
    assert!(place(&c, &o).feasible);
    // tp 4 fits a tray: node-local groups, no domain span needed.
    let r = place(&c, &opts(4, 2, Replicas::Exactly(3)));
    assert!(
        r.replicas
            .iter()
            .flat_map(|x| &x.stages)
            .all(|s| s.tp_scope == Scope::IntraNode)
    );
    // A group larger than a domain must leave it.
    let r = place(&c, &opts(96, 1, Replicas::Exactly(1)));
    assert!(r.feasible);
    assert_eq!(r.replicas[0].stages[0].tp_scope, Scope::CrossRack);
    assert!(r.warnings.iter().any(|w| w.code == "tp-exceeds-node"));
}

#[test]
fn pcie_only_nodes_cost_by_pcie_generation_and_width() {
    let c = cl(r#"
[defaults]
gpus = 4
nvlink = "none"
pcie_gen = 4
pcie_width = 16
[[node]]
name = "l40s-0"
rack = "r0"
"#);
    let r = place(&c, &opts(4, 1, Replicas::Exactly(1)));
    let st = &r.replicas[0].stages[0];
    assert_eq!(st.link, "pcie-gen4x16");
    assert_eq!(st.bus_gbytes_per_s, 24.0);
    let nv = place(
        &cl("[[node]]\nname = \"h\"\nrack = \"r\"\ngpus = 4\n"),
        &opts(4, 1, Replicas::Exactly(1)),
    );
    assert!(st.allreduce_us > nv.replicas[0].stages[0].allreduce_us);
}

/// A random partly used cluster of NVLink domains: 1 to 6 domains of 2 to 18 trays of 4 GPUs,
/// one domain per rack, trays free, full or partly used.
fn random_domains(rng: &mut Rng) -> Cluster {
    let domains = 1 + rng.below(6) as usize;
    let trays = 2 + rng.below(17) as u32;
    let mut c = cluster::synthetic_domains(domains, trays, 4, cluster::NvlinkGen::Gb200).expect("domains");
    for n in &mut c.nodes {
        match rng.below(3) {
            0 => {}
            1 => n.free = 0,
            _ => n.free &= !(rng.next() as u128) & 0xf,
        }
    }
    c
}

#[test]
fn on_300_random_nvlink_domain_clusters_place_never_loses_to_first_fit() {
    let mut rng = Rng(0x0D03_A172);
    let (mut compared, mut wins) = (0, 0);
    for case in 0..300 {
        let c = random_domains(&mut rng);
        let tp = [2u32, 4, 8, 16, 32, 72][rng.below(6) as usize];
        let pp = 1 + rng.below(3) as u32;
        let fit = c.free_gpus() / u64::from(tp * pp);
        if fit == 0 {
            continue;
        }
        let n = 1 + rng.below(fit) as usize;
        let r = place(&c, &opts(tp, pp, Replicas::Exactly(n)));
        assert!(r.feasible, "case {case}: {:?}", r.reasons);
        let ours = pieces_of(&c, &r);
        for rep in &r.replicas {
            for st in &rep.stages {
                assert_eq!(st.gpus.len(), tp as usize);
                // Groups inside a domain are costed as its NVLink.
                if st.tp_scope == Scope::IntraDomain {
                    assert_eq!(st.link, "nvlink-gb200");
                }
            }
        }
        if let Some(ff) = first_fit(&c, tp, pp, n) {
            compared += 1;
            let (a, b) = (goals_of(&c, &ours), goals_of(&c, &ff));
            assert!(
                a <= b,
                "case {case}: tp {tp} pp {pp} x{n}: ours {a:?} first-fit {b:?}"
            );
            wins += usize::from(a < b);
        }
    }
    println!("NVLink domains: {compared} compared with first-fit, {wins} wins, 0 losses");
    assert!(compared >= 100, "{compared}");
}
