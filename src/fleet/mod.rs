//! `nccltune fleet`: plan node checks and multi-node tests for the user's engine (Slurm,
//! pdsh/clush, mpirun, Kubernetes), merge the results, isolate bad nodes and links, and write
//! the next round. nccltune plans and judges; the engine runs. Every step is a file in and a
//! file out: `plan.json` and `run.sh` in a plan folder, results under `results/r<N>/`.
//!
//! Layout: `nodeset` (names and node-set syntax), `plan` (the plan file), `rounds` (building
//! rounds), `script`/`k8s` (what the engine runs), `results` + `verify_json` (reading what it
//! wrote), `isolate` (the isolation rules), `merge` (the fleet result), `render` (its formats),
//! `simulate` (the isolation model at any size), `quote` and `atomic` (safe output).

pub mod atomic;
pub mod expect;
pub mod isolate;
pub mod k8s;
pub mod merge;
pub mod model;
pub mod nodeset;
pub mod plan;
pub mod quote;
pub mod render;
pub mod results;
pub mod rng;
pub mod rounds;
pub mod script;
pub mod simulate;
pub mod topology;
pub mod verify_json;

use anyhow::{Context, Result, bail};
use std::path::Path;

/// Writes the plan and its current round's script (and extra files) into `dir`, atomically.
pub fn write_plan_dir(dir: &Path, plan: &plan::Plan) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let Some(round) = plan.rounds.last() else {
        bail!("the plan has no round to write");
    };
    let (script, files) = script::render(plan, round);
    for (rel, text) in files {
        let p = dir.join(&rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        atomic::write(&p, text.as_bytes())?;
    }
    // Plan first: a run.sh never exists without the plan that explains it.
    atomic::write(&dir.join("plan.json"), plan.to_json().as_bytes())?;
    atomic::write_mode(&dir.join("run.sh"), script.as_bytes(), Some(0o755))?;
    Ok(())
}

/// Reads a plan folder's plan and results and merges them.
pub fn merge_dir(dir: &Path, opts: &merge::MergeOptions) -> Result<(plan::Plan, merge::Merged)> {
    let plan = plan::load(dir)?;
    let mut interner = verify_json::Interner::default();
    let outcomes = results::collect(dir, &plan, &mut interner)?;
    let merged = merge::merge(&plan, &outcomes, &interner, opts);
    Ok((plan, merged))
}

/// What `fleet next` did.
pub enum NextStep {
    /// A new round was written as run.sh.
    Round { index: u32, tests: usize },
    /// Nothing left: run.sh removed.
    Done,
}

/// Adds the next round to the plan in `dir` and writes its run.sh, or removes run.sh when
/// nothing is left. Refuses while the current round has tests without results, unless
/// `force` (their nodes are then treated as missing). With `expect`, nodes that miss the
/// written expectations are judged as `merge --expect` judges them and left out of the tests.
pub fn next_dir(
    dir: &Path,
    force: bool,
    expect: Option<expect::Golden>,
) -> Result<(NextStep, merge::Merged)> {
    let opts = merge::MergeOptions {
        consensus: false,
        plan_label: dir.display().to_string(),
        expect,
    };
    let (mut plan, merged) = merge_dir(dir, &opts)?;
    if let Some(last) = plan.rounds.last() {
        let rdir = dir.join("results").join(last.dir_name());
        let pending = last
            .tests
            .iter()
            .filter(|t| !rdir.join(format!("{}.rc", t.id)).exists())
            .count();
        if pending == last.tests.len() && !force {
            bail!(
                "round {} has no results yet under {}: run `bash {}` first (or pass --force to count its nodes as missing)",
                last.index,
                rdir.display(),
                dir.join("run.sh").display()
            );
        }
    }
    let step = match rounds::next_round(&plan, &merged) {
        Some(r) => {
            let (index, tests) = (r.index, r.tests.len());
            plan.rounds.push(r);
            plan.state = state_counts(&merged.result);
            plan.validate()?;
            write_plan_dir(dir, &plan)?;
            NextStep::Round { index, tests }
        }
        None => {
            plan.done = true;
            plan.state = state_counts(&merged.result);
            atomic::write(&dir.join("plan.json"), plan.to_json().as_bytes())?;
            match std::fs::remove_file(dir.join("run.sh")) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", dir.join("run.sh").display()));
                }
            }
            NextStep::Done
        }
    };
    Ok((step, merged))
}

fn state_counts(r: &model::FleetResult) -> std::collections::BTreeMap<String, usize> {
    model::Status::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), r.count(*s)))
        .collect()
}

/// Turns `NCCLTUNE-RESULT <round> <test> json|txt|rc <text>` lines (any prefix before the tag,
/// e.g. `kubectl logs --prefix` or `srun --label`) into result files of the plan in `dir`.
/// Returns the number of tests written. Lines for a node or round not in the plan are errors.
pub fn unpack(dir: &Path, log: &str, source: &str) -> Result<usize> {
    use std::collections::BTreeMap;
    let plan = plan::load(dir)?;
    // (round dir, test id) -> (extension, body, rc)
    let mut bodies: BTreeMap<(String, String), (&'static str, String, Option<i32>)> = BTreeMap::new();
    for (i, line) in log.lines().enumerate() {
        let Some(pos) = line.find("NCCLTUNE-RESULT ") else {
            continue;
        };
        let rest = &line[pos + "NCCLTUNE-RESULT ".len()..];
        let mut it = rest.splitn(4, ' ');
        let (Some(round), Some(node), Some(kind)) = (it.next(), it.next(), it.next()) else {
            bail!(
                "{source}:{}: expected NCCLTUNE-RESULT ROUND NODE json|rc TEXT",
                i + 1
            );
        };
        let text = it.next().unwrap_or("");
        let r = round
            .strip_prefix('r')
            .and_then(|x| x.parse::<u32>().ok())
            .and_then(|x| plan.round(x));
        let Some(r) = r else {
            bail!("{source}:{}: round {round:?} is not in the plan", i + 1);
        };
        if !r.tests.iter().any(|t| t.id == node) {
            bail!(
                "{source}:{}: node {node:?} is not in round {} of the plan",
                i + 1,
                r.index
            );
        }
        let Some(test) = r.tests.iter().find(|t| t.id == node) else {
            continue;
        };
        let want = match test.kind {
            plan::TestKind::Verify => "json",
            plan::TestKind::Nccl => "txt",
        };
        let e = bodies
            .entry((r.dir_name(), node.to_string()))
            .or_insert((want, String::new(), None));
        match kind {
            "json" | "txt" if kind == want => {
                e.1.push_str(text);
                e.1.push('\n');
            }
            "json" | "txt" => bail!(
                "{source}:{}: a {kind} result for {node}, whose result is {want}",
                i + 1
            ),
            "rc" => {
                let Ok(v) = text.trim().parse::<i32>() else {
                    bail!("{source}:{}: exit status {text:?} is not a number", i + 1);
                };
                e.2 = Some(v);
            }
            other => bail!(
                "{source}:{}: unknown result kind {other:?} (expected json, txt or rc)",
                i + 1
            ),
        }
    }
    let mut n = 0;
    for ((round, node), (ext, body, rc)) in bodies {
        let rdir = dir.join("results").join(&round);
        std::fs::create_dir_all(&rdir).with_context(|| format!("cannot create {}", rdir.display()))?;
        if !body.is_empty() {
            atomic::write(&rdir.join(format!("{node}.{ext}")), body.as_bytes())?;
        }
        // Without its rc line the pod did not finish: leave no .rc, so the node counts as missing.
        if let Some(rc) = rc {
            atomic::write(&rdir.join(format!("{node}.rc")), format!("{rc}\n").as_bytes())?;
            n += 1;
        }
    }
    Ok(n)
}
