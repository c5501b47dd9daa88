//! run.sh: one round of a plan as a bash script for the chosen engine. The script runs the
//! round and writes `results/r<N>/<test>.{json|txt}` and `<test>.rc` (also on timeout: 124,
//! or 137 after the kill). Outputs are written to dot-files and renamed, and the `.rc` comes
//! last, so a reader never sees half a result; a test whose `.rc` exists is skipped, so a
//! rerun resumes. Every value from the plan is quoted by [`super::quote::sh`].

use super::nodeset;
use super::plan::{Launcher, Plan, Round, TestKind};
use super::quote::{sh, sh_words};
use std::fmt::Write as _;

/// Extra files a round needs beside run.sh (mpirun hostfiles, Kubernetes manifests), as
/// (path relative to the plan folder, contents).
pub type Files = Vec<(String, String)>;

const KILL_AFTER_S: u64 = 10;

fn header(plan: &Plan, round: &Round, out: &mut String) {
    let _ = writeln!(out, "#!/usr/bin/env bash");
    let _ = writeln!(
        out,
        "# nccltune fleet: round {} of at most {} ({} tests, launcher {}). Written by `nccltune fleet plan` or\n# `nccltune fleet next`; do not edit. Results go to results/r{}/; tests that have a .rc are skipped.",
        round.index,
        plan.settings.max_rounds,
        round.tests.len(),
        plan.launcher.as_str(),
        round.index
    );
    out.push_str("set -u\n");
    // sbatch runs a copy of the script from its spool folder: it passes the plan folder along.
    out.push_str("if [ \"${1-}\" = --in-allocation ] && [ -n \"${2-}\" ]; then HERE=$2\nelse HERE=$(cd \"$(dirname \"${BASH_SOURCE[0]}\")\" && pwd) || exit 2; fi\n");
    out.push_str(
        "# shellcheck disable=SC2034 # not every launcher runs the script again\nSELF=\"$HERE/run.sh\"\n",
    );
    let _ = writeln!(out, "OUT=\"$HERE/results/\"{}", sh(&round.dir_name()));
    out.push_str("mkdir -p \"$OUT\" \"$HERE/logs\" || exit 2\n");
    out.push_str(
        "finish() { printf '%s\\n' \"$2\" > \"$OUT/.$1.rc.$$\" && mv -f \"$OUT/.$1.rc.$$\" \"$OUT/$1.rc\"; }\n",
    );
    out.push_str(
        "# run ID EXT TIMEOUT CMD...: the command's stdout becomes ID.EXT, its exit status ID.rc.\n\
run() {\n  local id=$1 ext=$2 t=$3; shift 3\n  [ -e \"$OUT/$id.rc\" ] && return 0\n",
    );
    let _ = writeln!(
        out,
        "  timeout -k {KILL_AFTER_S} \"$t\" \"$@\" > \"$OUT/.$id.$ext.$$\" 2> \"$OUT/$id.err\" < /dev/null\n  local rc=$?\n  mv -f \"$OUT/.$id.$ext.$$\" \"$OUT/$id.$ext\"\n  finish \"$id\" \"$rc\"\n}}"
    );
}

/// The per-node dispatch: which command this node runs, from a table, so a node's name only
/// selects among commands written here and never becomes part of one.
fn node_task(round: &Round, out: &mut String) {
    out.push_str(
        "node_task() {\n  local node=${1:-${SLURMD_NODENAME:-$(hostname -s)}}\n  case \"$node\" in\n",
    );
    for t in &round.tests {
        let _ = writeln!(
            out,
            "    {}) run {} json {} {} ;;",
            sh(&t.nodes[0]),
            sh(&t.id),
            t.timeout_s,
            env_prefix(t) + &sh_words(&t.cmd)
        );
    }
    let _ = writeln!(
        out,
        "    *) printf 'nccltune fleet: node %s is not in round {}; nothing to do\\n' \"$node\" >&2; return 2 ;;\n  esac\n}}",
        round.index
    );
    out.push_str("if [ \"${1-}\" = --node-task ]; then shift; node_task \"$@\"; exit $?; fi\n");
}

fn env_prefix(t: &super::plan::Test) -> String {
    if t.env.is_empty() {
        return String::new();
    }
    let mut s = String::from("env ");
    for (k, v) in &t.env {
        s.push_str(&sh(&format!("{k}={v}")));
        s.push(' ');
    }
    s
}

fn partition(plan: &Plan) -> String {
    match &plan.settings.partition {
        Some(p) => format!(" {}", sh(&format!("--partition={p}"))),
        None => String::new(),
    }
}

/// Writes run.sh for `round`, and the extra files it needs.
pub fn render(plan: &Plan, round: &Round) -> (String, Files) {
    let mut out = String::new();
    let mut files = Files::new();
    header(plan, round, &mut out);
    let verify = round.tests.iter().all(|t| t.kind == TestKind::Verify);
    let nodes: Vec<String> = round.tests.iter().flat_map(|t| t.nodes.iter().cloned()).collect();
    let set = nodeset::fold(&nodes);
    let s = &plan.settings;
    if verify {
        node_task(round, &mut out);
        match plan.launcher {
            Launcher::Srun | Launcher::Sbatch => {
                let srun = format!(
                    "srun --nodes={} --nodelist={} --ntasks-per-node=1 --kill-on-bad-exit=0{} bash \"$SELF\" --node-task",
                    nodes.len(),
                    sh(&set),
                    partition(plan)
                );
                if plan.launcher == Launcher::Srun {
                    let _ = writeln!(out, "{srun}");
                } else {
                    let _ = writeln!(
                        out,
                        "if [ \"${{1-}}\" = --in-allocation ]; then {srun}; exit 0; fi"
                    );
                    let _ = writeln!(
                        out,
                        "sbatch --wait --nodes={} --nodelist={}{} --output=\"$HERE/logs/r{}-%j.out\" \"$SELF\" --in-allocation \"$HERE\"",
                        nodes.len(),
                        sh(&set),
                        partition(plan),
                        round.index
                    );
                }
            }
            Launcher::Pdsh | Launcher::Clush => {
                let tool = if plan.launcher == Launcher::Pdsh {
                    "pdsh"
                } else {
                    "clush"
                };
                if s.rcmd == "exec" {
                    let _ = writeln!(
                        out,
                        "{tool} -R exec -f {} -w {} bash \"$SELF\" --node-task %h",
                        s.parallel,
                        sh(&set)
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "{tool} -R {} -f {} -w {} \"bash $(printf %q \"$SELF\") --node-task\"",
                        sh(&s.rcmd),
                        s.parallel,
                        sh(&set)
                    );
                }
            }
            Launcher::Mpirun => {
                let hf = format!("hostfiles/r{}-all", round.index);
                files.push((
                    hf.clone(),
                    nodes.iter().map(|n| format!("{n} slots=1\n")).collect(),
                ));
                let _ = writeln!(
                    out,
                    "mpirun --hostfile \"$HERE/\"{} --map-by ppr:1:node -np {} bash \"$SELF\" --node-task",
                    sh(&hf),
                    nodes.len()
                );
            }
            Launcher::Kubernetes => {
                let (yaml, name) = super::k8s::verify_job(plan, round);
                let path = format!("k8s/r{}.yaml", round.index);
                files.push((path.clone(), yaml));
                k8s_run(&mut out, &path, &name, round, plan);
            }
        }
    } else if plan.launcher == Launcher::Kubernetes {
        k8s_mpi_round(plan, round, &mut out, &mut files);
    } else {
        out.push_str(
            "limit() { while [ \"$(jobs -rp | wc -l)\" -ge \"$1\" ]; do wait -n 2>/dev/null || sleep 0.2; done; }\n",
        );
        let chunk_of = if plan.launcher == Launcher::Sbatch {
            sbatch_chunks(plan, round, &mut out)
        } else {
            Vec::new()
        };
        let mut rail: Option<&str> = None;
        for (k, t) in round.tests.iter().enumerate() {
            // `rails`: one rail at a time, so a node is never in two tests at once.
            if k > 0 && t.rail.as_deref() != rail {
                let _ = writeln!(out, "wait");
            }
            if t.rail.as_deref() != rail || k == 0 {
                if let Some(r) = &t.rail {
                    let _ = writeln!(out, "# rail {r}");
                }
                rail = t.rail.as_deref();
            }
            let n = t.nodes.len();
            let launch = match plan.launcher {
                Launcher::Mpirun => {
                    let hf = format!("hostfiles/r{}-{}", round.index, t.id);
                    files.push((
                        hf.clone(),
                        t.nodes
                            .iter()
                            .map(|x| format!("{x} slots={}\n", s.gpus_per_node))
                            .collect(),
                    ));
                    let mut words = vec![
                        "mpirun".to_string(),
                        "--hostfile".into(),
                        format!("__HERE__{hf}"),
                        "-np".into(),
                        (n as u64 * u64::from(s.gpus_per_node)).to_string(),
                    ];
                    for (k, v) in &t.env {
                        words.push("-x".into());
                        words.push(format!("{k}={v}"));
                    }
                    words.extend(t.cmd.iter().cloned());
                    sh_words(&words).replace("__HERE__", "\"$HERE\"/")
                }
                _ => {
                    let mut words = vec![
                        "srun".to_string(),
                        format!("--nodes={n}"),
                        format!("--nodelist={}", t.nodes.join(",")),
                        format!("--ntasks-per-node={}", s.gpus_per_node),
                        "--kill-on-bad-exit=1".into(),
                    ];
                    if let Some(p) = &s.partition {
                        words.push(format!("--partition={p}"));
                    }
                    format!(
                        "{}{}",
                        sh_words(&words),
                        " ".to_string() + &env_prefix(t) + &sh_words(&t.cmd)
                    )
                }
            };
            let mine = match chunk_of.get(k) {
                Some(c) => format!("mine {c} && "),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "{mine}{{ limit {}; run {} txt {} {} & }}",
                s.parallel,
                sh(&t.id),
                t.timeout_s,
                launch
            );
        }
        out.push_str("wait\n");
    }
    let _ = writeln!(
        out,
        "echo \"nccltune fleet: round {} done; next: nccltune fleet next $(printf %q \"$HERE\")\" >&2",
        round.index
    );
    (out, files)
}

/// `sbatch` multi-node rounds: the tests cut into chunks (`sbatch_chunk` tests each, default
/// the wave shared by `sbatch_throttle` jobs; a chunk never spans two rails), one `sbatch
/// --wait` job per chunk with exactly its nodes, at most `sbatch_throttle` at once (what `%` is
/// to a job array). A Slurm job array cannot carry this: every task of an array has the same
/// options, `--nodelist` included, so a task cannot be pinned to its own pair. Each job runs
/// run.sh again inside its allocation for its chunk only (`mine`). A test that started but has
/// no `.rc` when its job ends (time limit, cancelled) gets 137, like one killed by `timeout`.
/// Returns the chunk of each test.
fn sbatch_chunks(plan: &Plan, round: &Round, out: &mut String) -> Vec<usize> {
    let s = &plan.settings;
    let throttle = s.sbatch_throttle.max(1) as usize;
    // Waves (rails), then chunks inside each.
    let mut waves: Vec<Vec<usize>> = Vec::new();
    let mut rail: Option<Option<&str>> = None;
    for (k, t) in round.tests.iter().enumerate() {
        if rail != Some(t.rail.as_deref()) {
            waves.push(Vec::new());
            rail = Some(t.rail.as_deref());
        }
        if let Some(w) = waves.last_mut() {
            w.push(k);
        }
    }
    let mut chunk_of = vec![0; round.tests.len()];
    out.push_str("if [ \"${1-}\" != --in-allocation ]; then\n");
    out.push_str(
        "  # reap ID...: a test that started (its .err exists) without a .rc was killed with its job.\n",
    );
    out.push_str("  reap() { local id; for id in \"$@\"; do if [ -e \"$OUT/$id.err\" ] && [ ! -e \"$OUT/$id.rc\" ]; then finish \"$id\" 137; fi; done; }\n");
    let _ = writeln!(
        out,
        "  submit() {{ local c=$1 n=$2 set=$3; shift 3; sbatch --wait --job-name=nccltune-fleet-r{} --nodes=\"$n\" --nodelist=\"$set\"{} --output=\"$HERE/logs/r{}-c$c-%j.out\" \"$SELF\" --in-allocation \"$HERE\" \"$c\" > /dev/null; reap \"$@\"; }}",
        round.index,
        partition(plan),
        round.index
    );
    let mut c = 0;
    for (w, tests) in waves.iter().enumerate() {
        if w > 0 {
            out.push_str("  wait\n");
        }
        let size = if s.sbatch_chunk > 0 {
            s.sbatch_chunk
        } else {
            tests.len().div_ceil(throttle).max(1)
        };
        for part in tests.chunks(size) {
            let mut nodes: Vec<String> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for &k in part {
                chunk_of[k] = c;
                for n in &round.tests[k].nodes {
                    if seen.insert(n.as_str()) {
                        nodes.push(n.clone());
                    }
                }
            }
            let ids: Vec<&str> = part.iter().map(|&k| round.tests[k].id.as_str()).collect();
            let _ = writeln!(
                out,
                "  limit {throttle}; submit {c} {} {} {} &",
                nodes.len(),
                sh(&nodeset::fold(&nodes)),
                sh_words(&ids)
            );
            c += 1;
        }
    }
    let _ = writeln!(
        out,
        "  wait\n  echo \"nccltune fleet: round {} done; next: nccltune fleet next $(printf %q \"$HERE\")\" >&2\n  exit 0\nfi",
        round.index
    );
    out.push_str("CHUNK=${3-}\nmine() { [ -z \"$CHUNK\" ] || [ \"$CHUNK\" = \"$1\" ]; }\n");
    chunk_of
}

/// A multi-node round on Kubernetes: one MPIJob per test under `k8s/r<N>/w<wave>/`, applied
/// wave by wave (one wave per rail for `rails`, else one), each wave waited for and its
/// launchers' logs unpacked into result files.
fn k8s_mpi_round(plan: &Plan, round: &Round, out: &mut String, files: &mut Files) {
    let mut waves: Vec<Vec<&super::plan::Test>> = Vec::new();
    let mut rail: Option<Option<&str>> = None;
    for t in &round.tests {
        if rail != Some(t.rail.as_deref()) {
            waves.push(Vec::new());
            rail = Some(t.rail.as_deref());
        }
        if let Some(w) = waves.last_mut() {
            w.push(t);
        }
    }
    let wait = plan.settings.timeout_s + 660;
    for (w, tests) in waves.iter().enumerate() {
        let folder = format!("k8s/r{}/w{w}", round.index);
        for t in tests {
            let (yaml, _) = super::k8s::mpi_job(plan, round, t, w);
            files.push((format!("{folder}/{}.yaml", t.id), yaml));
        }
        let label = super::k8s::wave_label(plan, round, w);
        let log = format!("logs/r{}-w{w}.log", round.index);
        if let Some(r) = &tests[0].rail {
            let _ = writeln!(out, "# rail {r}");
        }
        let _ = writeln!(out, "kubectl apply -f \"$HERE/\"{} || exit 2", sh(&folder));
        let _ = writeln!(
            out,
            "kubectl wait --for=condition=Succeeded --timeout={wait}s mpijob -l nccltune-fleet-wave={} || echo 'nccltune fleet: not every MPIJob succeeded; tests without a result will be reported' >&2",
            sh(&label)
        );
        let _ = writeln!(
            out,
            "kubectl logs -l nccltune-fleet-wave={},nccltune-fleet-role=launcher --tail=-1 --max-log-requests=64 > \"$HERE/\"{}\nnccltune fleet unpack \"$HERE\" \"$HERE/\"{}",
            sh(&label),
            sh(&log),
            sh(&log)
        );
    }
}

fn k8s_run(out: &mut String, path: &str, name: &str, round: &Round, plan: &Plan) {
    let wait = plan.settings.timeout_s + 120;
    let _ = writeln!(out, "kubectl apply -f \"$HERE/\"{} || exit 2", sh(path));
    let _ = writeln!(
        out,
        "kubectl wait --for=condition=complete --timeout={wait}s job/{} || echo 'nccltune fleet: not every pod completed; missing nodes will be reported' >&2",
        sh(name)
    );
    let _ = writeln!(
        out,
        "kubectl logs -l job-name={} --tail=-1 --max-log-requests=64 > \"$HERE/logs/r{}.log\"\n\
nccltune fleet unpack \"$HERE\" \"$HERE/logs/r{}.log\"",
        sh(name),
        round.index,
        round.index
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::plan::{Check, Settings};
    use crate::fleet::rounds::{PlanOptions, new_plan};

    fn plan(launcher: Launcher, checks: Vec<Check>) -> Plan {
        new_plan(PlanOptions {
            nodes: crate::fleet::nodeset::expand("n[1-5]").expect("nodes"),
            checks,
            launcher,
            seed: 3,
            settings: Settings {
                check_args: vec!["--expect".into(), "it's {node}.toml".into()],
                ..Default::default()
            },
            rounds: None,
            topology: Default::default(),
        })
        .expect("plan")
    }

    fn bash_n(script: &str) {
        let mut child = std::process::Command::new("bash")
            .arg("-n")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("bash runs");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write");
        assert!(
            child.wait().expect("bash exits").success(),
            "syntax error in\n{script}"
        );
    }

    #[test]
    fn every_launcher_writes_a_valid_script() {
        for l in [
            Launcher::Srun,
            Launcher::Sbatch,
            Launcher::Mpirun,
            Launcher::Pdsh,
            Launcher::Clush,
            Launcher::Kubernetes,
        ] {
            let p = plan(l, vec![Check::Verify]);
            let (s, files) = render(&p, &p.rounds[0]);
            bash_n(&s);
            assert!(
                s.contains("n1) run n1 json 600 nccltune verify --format json --expect 'it'\\''s n1.toml'"),
                "{s}"
            );
            if l == Launcher::Mpirun {
                assert_eq!(
                    files[0].1,
                    "n1 slots=1\nn2 slots=1\nn3 slots=1\nn4 slots=1\nn5 slots=1\n"
                );
            }
        }
        for l in [Launcher::Srun, Launcher::Sbatch, Launcher::Mpirun] {
            let p = plan(l, vec![Check::Pairs]);
            let (s, files) = render(&p, &p.rounds[0]);
            bash_n(&s);
            // 5 nodes: two tests, the odd node joins the last one.
            assert_eq!(s.matches("{ limit 64; run ").count(), 2, "{s}");
            assert!(s.contains("NCCL_ALGO=Ring"), "{s}");
            if l == Launcher::Mpirun {
                assert_eq!(files.len(), 2);
                assert!(
                    files
                        .iter()
                        .all(|(_, t)| t.lines().all(|x| x.ends_with(" slots=8")))
                );
            }
        }
    }

    #[test]
    fn rails_run_one_rail_at_a_time_pinned_to_its_hca() {
        let p = new_plan(PlanOptions {
            nodes: crate::fleet::nodeset::expand("n[1-4]").expect("nodes"),
            checks: vec![Check::Rails],
            launcher: Launcher::Srun,
            seed: 3,
            settings: Settings {
                rails: vec!["mlx5_0".into(), "mlx5_1:1".into()],
                ..Default::default()
            },
            rounds: None,
            topology: Default::default(),
        })
        .expect("plan");
        let (s, _) = render(&p, &p.rounds[0]);
        bash_n(&s);
        let body: Vec<&str> = s
            .lines()
            .filter(|l| l.starts_with("{ limit ") || *l == "wait" || l.starts_with("# rail"))
            .collect();
        assert_eq!(body.len(), 8, "{s}");
        assert_eq!(
            (body[0], body[3], body[4], body[7]),
            ("# rail mlx5_0", "wait", "# rail mlx5_1:1", "wait")
        );
        assert!(
            body[1].contains("env NCCL_ALGO=Ring NCCL_IB_HCA==mlx5_0 "),
            "{}",
            body[1]
        );
        assert!(body[5].contains("NCCL_IB_HCA==mlx5_1:1"), "{}", body[5]);
    }

    /// sbatch multi-node rounds: one job per chunk with exactly its nodes, at most the
    /// throttle at once, each test run only by its own chunk's job; a chunk never spans rails.
    #[test]
    fn sbatch_submits_one_job_per_chunk_with_its_nodes() {
        let mut p = plan(Launcher::Sbatch, vec![Check::Pairs]);
        p.settings.sbatch_chunk = 1;
        p.settings.sbatch_throttle = 3;
        let (s, _) = render(&p, &p.rounds[0]);
        bash_n(&s);
        let submits: Vec<&str> = s.lines().filter(|l| l.contains("; submit ")).collect();
        assert_eq!(submits.len(), 2, "{s}");
        for (c, (l, t)) in submits.iter().zip(&p.rounds[0].tests).enumerate() {
            let want = format!(
                "  limit 3; submit {c} {} {} {} &",
                t.nodes.len(),
                sh(&crate::fleet::nodeset::fold(&t.nodes)),
                t.id
            );
            assert_eq!(*l, want);
            assert!(
                s.contains(&format!("mine {c} && {{ limit 64; run {} txt ", t.id)),
                "{s}"
            );
        }
        assert!(
            s.contains("--output=\"$HERE/logs/r1-c$c-%j.out\" \"$SELF\" --in-allocation \"$HERE\" \"$c\""),
            "{s}"
        );
        assert!(s.contains("finish \"$id\" 137"), "{s}");
        // Rails: two rails, chunks of the whole wave: two jobs, one after the other.
        let mut p = new_plan(PlanOptions {
            nodes: crate::fleet::nodeset::expand("n[1-8]").expect("nodes"),
            checks: vec![Check::Rails],
            launcher: Launcher::Sbatch,
            seed: 3,
            settings: Settings {
                rails: vec!["mlx5_0".into(), "mlx5_3".into()],
                ..Default::default()
            },
            rounds: None,
            topology: Default::default(),
        })
        .expect("plan");
        p.settings.sbatch_throttle = 1;
        let (s, _) = render(&p, &p.rounds[0]);
        bash_n(&s);
        let top: Vec<&str> = s
            .lines()
            .filter(|l| l.contains("; submit ") || *l == "  wait")
            .collect();
        assert_eq!(top.len(), 4, "{s}");
        assert!(
            top[0].starts_with("  limit 1; submit 0 8 'n[1-8]' t0001 t0002 t0003 t0004 &"),
            "{s}"
        );
        assert_eq!(top[1], "  wait");
        assert!(top[2].starts_with("  limit 1; submit 1 8 'n[1-8]' t0005"), "{s}");
    }
}
