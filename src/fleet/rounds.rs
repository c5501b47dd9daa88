//! Building plans and rounds: the first round from the node list (`fleet plan`), the next
//! from the merged results (`fleet next`). Tests carry argv and env, never shell text.

use super::isolate;
use super::merge::Merged;
use super::plan::*;
use anyhow::{Result, bail};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub nodes: Vec<String>,
    pub checks: Vec<Check>,
    pub launcher: Launcher,
    pub seed: u64,
    pub settings: Settings,
    /// `--rounds`: overrides the default round budget.
    pub rounds: Option<u32>,
    /// Node → leaf/rack; empty: none.
    pub topology: BTreeMap<String, String>,
}

/// Multi-node rounds in the default budget: pairs need screening + 2 confirmations; groups
/// need screening, about log2(√N) bisections and 2 confirmations.
fn default_rounds(check: Check, n: usize) -> u32 {
    match check {
        Check::Verify => 0,
        Check::Pairs | Check::Rails => 3,
        Check::Groups => {
            let g = isolate::group_size(n) as f64;
            3 + g.log2().ceil() as u32
        }
    }
}

pub fn new_plan(o: PlanOptions) -> Result<Plan> {
    if o.nodes.is_empty() {
        bail!("no nodes to plan for");
    }
    if o.checks.is_empty() {
        bail!("no check chosen: expected --check verify, pairs or groups");
    }
    let multi: Vec<Check> = o.checks.iter().copied().filter(|c| *c != Check::Verify).collect();
    if multi.len() > 1 {
        bail!("--check: choose one of pairs or groups (with or without verify)");
    }
    if !multi.is_empty() && o.nodes.len() < 2 {
        bail!("--check {:?} needs at least 2 nodes", multi[0]);
    }
    if matches!(o.launcher, Launcher::Pdsh | Launcher::Clush) && !multi.is_empty() {
        bail!(
            "--launcher {}: pdsh and clush run per-node checks only; use srun, sbatch or mpirun for pairs and groups",
            o.launcher.as_str()
        );
    }
    if multi.first() == Some(&Check::Rails) {
        if o.settings.rails.is_empty() {
            bail!("--check rails needs the rails: --rails mlx5_0,mlx5_3,... (the HCAs NCCL_IB_HCA names)");
        }
        let mut seen = std::collections::HashSet::new();
        for r in &o.settings.rails {
            validate_rail(r)?;
            if !seen.insert(r.as_str()) {
                bail!("--rails: {r} is listed twice");
            }
        }
    }
    let mut settings = o.settings;
    let has_verify = o.checks.contains(&Check::Verify);
    settings.max_rounds = o.rounds.unwrap_or_else(|| {
        u32::from(has_verify)
            + multi
                .first()
                .map(|c| default_rounds(*c, o.nodes.len()))
                .unwrap_or(0)
    });
    if settings.max_rounds == 0 {
        bail!("--rounds 0: at least one round is needed");
    }
    let mut plan = Plan {
        schema: PLAN_SCHEMA,
        nccltune_version: env!("CARGO_PKG_VERSION").into(),
        created_at: crate::output::utc_now_rfc3339(),
        seed: o.seed,
        checks: o.checks,
        launcher: o.launcher,
        nodes: o.nodes,
        settings,
        rounds: Vec::new(),
        state: BTreeMap::new(),
        topology: o.topology,
        done: false,
    };
    let first = if has_verify {
        verify_round(&plan)
    } else {
        let all: Vec<bool> = vec![true; plan.nodes.len()];
        screen_round(&plan, &all)
    };
    plan.rounds.push(first);
    plan.validate()?;
    Ok(plan)
}

fn verify_round(plan: &Plan) -> Round {
    let s = &plan.settings;
    let tests = plan
        .nodes
        .iter()
        .map(|n| {
            let mut cmd = vec![
                s.nccltune.clone(),
                "verify".into(),
                "--format".into(),
                "json".into(),
            ];
            cmd.extend(s.check_args.iter().map(|a| a.replace("{node}", n)));
            Test {
                id: n.clone(),
                kind: TestKind::Verify,
                purpose: Purpose::Verify,
                nodes: vec![n.clone()],
                cmd,
                env: BTreeMap::new(),
                timeout_s: s.timeout_s,
                expected_busbw_gbps: None,
                rail: None,
            }
        })
        .collect();
    Round {
        index: plan.rounds.len() as u32 + 1,
        tests,
    }
}

/// The target of a one-rail test: `rail_target_busbw_gbps`, else the pair target divided by
/// the number of rails (one HCA carries its share of the node's network bandwidth).
pub fn rail_target(s: &Settings) -> Option<f64> {
    s.rail_target_busbw_gbps.or_else(|| {
        s.target_busbw_gbps
            .filter(|_| !s.rails.is_empty())
            .map(|t| t / s.rails.len() as f64)
    })
}

fn nccl_test(plan: &Plan, id: usize, purpose: Purpose, nodes: Vec<String>, rail: Option<&str>) -> Test {
    let s = &plan.settings;
    let bin = format!("{}/all_reduce_perf", s.nccl_tests_bin.trim_end_matches('/'));
    let size = s.size_bytes.to_string();
    let mut env = BTreeMap::new();
    // One algorithm for every test so busbw is comparable across the fleet and with the
    // 2-node target; Ring's busbw is bounded by each node's network bandwidth.
    env.insert("NCCL_ALGO".to_string(), "Ring".to_string());
    if let Some(r) = rail {
        // `=` makes NCCL match the name exactly (not as a prefix: mlx5_1 would match mlx5_10).
        env.insert("NCCL_IB_HCA".to_string(), format!("={r}"));
    }
    Test {
        id: format!("t{:04}", id + 1),
        kind: TestKind::Nccl,
        purpose,
        nodes,
        cmd: vec![
            bin,
            "-b".into(),
            size.clone(),
            "-e".into(),
            size,
            "-f".into(),
            "2".into(),
            "-g".into(),
            "1".into(),
        ],
        env,
        timeout_s: s.timeout_s,
        expected_busbw_gbps: if rail.is_some() {
            rail_target(s)
        } else {
            s.target_busbw_gbps
        },
        rail: rail.map(str::to_string),
    }
}

fn screen_round(plan: &Plan, eligible: &[bool]) -> Round {
    let idx: Vec<u32> = (0..plan.nodes.len() as u32)
        .filter(|&i| eligible[i as usize])
        .collect();
    let size = match plan.multi_node() {
        Some(Check::Groups) => {
            if plan.settings.group_size >= 2 {
                plan.settings.group_size
            } else {
                isolate::group_size(idx.len())
            }
        }
        _ => 2,
    };
    let sets = if plan.topology.is_empty() {
        isolate::screen(&idx, size, plan.seed)
    } else {
        // Screen inside each leaf (nodes the topology does not name form one more group).
        let mut by: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for &i in &idx {
            let g = plan
                .topology
                .get(&plan.nodes[i as usize])
                .map(String::as_str)
                .unwrap_or("");
            by.entry(g).or_default().push(i);
        }
        let mut sets = Vec::new();
        let mut leftovers = Vec::new();
        for members in by.values() {
            let s = isolate::screen(members, size, plan.seed);
            let covered: usize = s.iter().map(Vec::len).sum();
            if covered < members.len() {
                leftovers.extend(
                    members
                        .iter()
                        .copied()
                        .filter(|m| !s.iter().any(|x| x.contains(m))),
                );
            }
            sets.extend(s);
        }
        // A leaf with a single node cannot test alone: such nodes are screened together.
        sets.extend(isolate::screen(&leftovers, size, plan.seed));
        sets
    };
    let mut tests = Vec::new();
    // `rails`: every pair once per rail, rail by rail (run.sh runs one rail at a time, so a
    // node is never in two tests at once).
    let rails: Vec<Option<&str>> = if plan.multi_node() == Some(Check::Rails) {
        plan.settings.rails.iter().map(|r| Some(r.as_str())).collect()
    } else {
        vec![None]
    };
    for rail in rails {
        for set in &sets {
            let names = set.iter().map(|&m| plan.nodes[m as usize].clone()).collect();
            tests.push(nccl_test(plan, tests.len(), Purpose::Screen, names, rail));
        }
    }
    Round {
        index: plan.rounds.len() as u32 + 1,
        tests,
    }
}

/// The next round, or `None` when nothing is left to test (or the round budget is spent).
pub fn next_round(plan: &Plan, merged: &Merged) -> Option<Round> {
    if plan.rounds.len() as u32 >= plan.settings.max_rounds {
        return None;
    }
    plan.multi_node()?;
    let screened = plan
        .rounds
        .iter()
        .any(|r| r.tests.iter().any(|t| t.kind == TestKind::Nccl));
    if !screened {
        let r = screen_round(plan, &merged.eligible);
        return if r.tests.is_empty() { None } else { Some(r) };
    }
    let next = plan.rounds.len() as u32 + 1;
    let mut tests = Vec::new();
    for (k, lane) in merged.lanes.iter().enumerate() {
        let evals: Vec<isolate::TestEval> = merged
            .evals
            .iter()
            .zip(&merged.eval_lane)
            .filter(|(_, l)| **l == k)
            .map(|(e, _)| e.clone())
            .collect();
        let sets = isolate::next_tests(
            &merged.eligible,
            &evals,
            &lane.isolation,
            plan.settings.confirm,
            plan.seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            next,
        );
        for (p, set) in sets {
            let names = set.iter().map(|&m| plan.nodes[m as usize].clone()).collect();
            tests.push(nccl_test(plan, tests.len(), p, names, lane.rail.as_deref()));
        }
    }
    if tests.is_empty() {
        return None;
    }
    Some(Round { index: next, tests })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screening_groups_stay_inside_a_leaf() {
        let nodes = crate::fleet::nodeset::expand("n[1-12]").expect("nodes");
        let topology: BTreeMap<String, String> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), if i < 6 { "leaf1" } else { "leaf2" }.to_string()))
            .collect();
        let plan = new_plan(PlanOptions {
            nodes,
            checks: vec![Check::Groups],
            launcher: Launcher::Srun,
            seed: 9,
            settings: Settings {
                group_size: 3,
                ..Default::default()
            },
            rounds: None,
            topology: topology.clone(),
        })
        .expect("plan");
        let tests = &plan.rounds[0].tests;
        assert_eq!(tests.len(), 4);
        for t in tests {
            let leaves: std::collections::BTreeSet<&String> = t.nodes.iter().map(|n| &topology[n]).collect();
            assert_eq!(leaves.len(), 1, "{:?} spans leaves", t.nodes);
        }
    }
}
