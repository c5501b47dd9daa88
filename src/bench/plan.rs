//! `bench plan`: the nccl-tests runs that answer a question, as a bash script, with the
//! maintainers' advice built in: `NCCL_ALGO=Ring` when exactly two nodes test the network (the
//! default Tree/NVLSTree busbw is not wire bandwidth there; NVIDIA/nccl-tests #196, NVIDIA/nccl #812), one large
//! size for pass/fail, validation on (`-c 1`), a timeout (`-T`), JSON output (`-J`, nccl-tests
//! 2.17.3+), `NCCL_DEBUG=INFO` into a file for `verify --nccl-log`, and a rails run with
//! `NCCL_TESTS_SPLIT_MASK` (nccl-tests README, "Running multiple operations in parallel").

use crate::render::shell_quote;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    Local,
    Mpirun,
    Srun,
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub nodes: u32,
    pub gpus_per_node: u32,
    pub launcher: Launcher,
    pub collectives: Vec<String>,
    /// Folder holding the nccl-tests binaries.
    pub bin_dir: String,
    /// One run per NCCL_ALGO x NCCL_PROTO, for `bench tune`.
    pub sweep: bool,
    pub timeout_s: u32,
}

const SWEEP_ALGOS: [&str; 2] = ["Ring", "Tree"];
const SWEEP_PROTOS: [&str; 3] = ["LL", "LL128", "Simple"];

fn command(o: &PlanOptions, coll: &str, env: &[(&str, String)], args: &str, out: &str) -> String {
    let bin = format!("{}/{coll}_perf", o.bin_dir.trim_end_matches('/'));
    let ranks = o.nodes * o.gpus_per_node;
    let envs_inline: String = env
        .iter()
        .map(|(k, v)| format!("{k}={} ", shell_quote(v)))
        .collect();
    let line = match o.launcher {
        Launcher::Local => format!("{envs_inline}{} {args} -g {}", shell_quote(&bin), o.gpus_per_node),
        Launcher::Mpirun => {
            let xs: String = env
                .iter()
                .map(|(k, v)| format!("-x {k}={} ", shell_quote(v)))
                .collect();
            format!(
                "mpirun -np {ranks} -N {} --hostfile \"$HOSTFILE\" --bind-to none {xs}{} {args} -g 1",
                o.gpus_per_node,
                shell_quote(&bin)
            )
        }
        Launcher::Srun => {
            let exports: String = env.iter().map(|(k, v)| format!(",{k}={v}")).collect();
            format!(
                "srun -N {} --ntasks-per-node={} --gpus-per-node={} --export={} {} {args} -g 1",
                o.nodes,
                o.gpus_per_node,
                o.gpus_per_node,
                shell_quote(&format!("ALL{exports}")),
                shell_quote(&bin)
            )
        }
    };
    format!("{line} 2>&1 | tee {}\n", shell_quote(out))
}

pub fn script(o: &PlanOptions) -> String {
    let mut s = String::from("#!/usr/bin/env bash\n# nccl-tests plan written by nccltune bench plan.\n");
    let _ = writeln!(
        s,
        "# {} node(s) x {} GPU(s), launcher {:?}.",
        o.nodes, o.gpus_per_node, o.launcher
    );
    s.push_str("set -euo pipefail\n");
    if o.launcher == Launcher::Mpirun {
        s.push_str(": \"${HOSTFILE:?set HOSTFILE to an MPI hostfile with one line per node}\"\n");
    }
    s.push_str("mkdir -p nccltune-bench && cd nccltune-bench\n\n");
    let mut base_env: Vec<(&str, String)> = vec![
        ("NCCL_DEBUG", "INFO".into()),
        ("NCCL_DEBUG_SUBSYS", "INIT,NET".into()),
        ("NCCL_DEBUG_FILE", "nccl-debug.%h.%p.log".into()),
    ];
    if o.nodes == 2 {
        s.push_str("# Two nodes: NCCL_ALGO=Ring, since the default Tree/NVLSTree busbw is not wire bandwidth here.\n");
        base_env.push(("NCCL_ALGO", "Ring".into()));
    }
    let sweep = "-b 8 -e 8G -f 2 -c 1 -n 20 -w 5";
    let large = "-b 8G -e 8G -c 1 -n 50 -w 10";
    for coll in &o.collectives {
        let _ = writeln!(
            s,
            "# {coll}: a sweep of sizes (read it with `nccltune bench --parse {coll}.txt`)"
        );
        s.push_str(&command(
            o,
            coll,
            &base_env,
            &format!("{sweep} -T {} -J {coll}.json", o.timeout_s),
            &format!("{coll}.txt"),
        ));
        let _ = writeln!(s, "# {coll}: one large size for pass/fail");
        s.push_str(&command(
            o,
            coll,
            &base_env,
            &format!("{large} -T {}", o.timeout_s),
            &format!("{coll}.8G.txt"),
        ));
        if o.nodes > 1 && o.gpus_per_node.is_power_of_two() && o.gpus_per_node > 1 {
            let _ = writeln!(
                s,
                "# {coll}: each rail on its own (ranks with the same local GPU index, one per node)"
            );
            let mut env = base_env.clone();
            env.push(("NCCL_TESTS_SPLIT_MASK", format!("{:#x}", o.gpus_per_node - 1)));
            s.push_str(&command(
                o,
                coll,
                &env,
                &format!("{large} -T {}", o.timeout_s),
                &format!("{coll}.rails.txt"),
            ));
        }
        if o.sweep {
            let _ = writeln!(
                s,
                "# {coll}: NCCL_ALGO x NCCL_PROTO sweep for `nccltune bench tune` (the file name records the choice)"
            );
            let plain: Vec<(&str, String)> = base_env
                .iter()
                .filter(|(k, _)| *k != "NCCL_ALGO")
                .cloned()
                .collect();
            s.push_str(&command(o, coll, &plain, sweep, &format!("{coll}.default.txt")));
            for a in SWEEP_ALGOS {
                for p in SWEEP_PROTOS {
                    let mut env = plain.clone();
                    env.push(("NCCL_ALGO", a.into()));
                    env.push(("NCCL_PROTO", p.into()));
                    s.push_str(&command(o, coll, &env, sweep, &format!("{coll}.{a}.{p}.txt")));
                }
            }
        }
        s.push('\n');
    }
    s.push_str("echo \"done: nccltune bench --parse nccltune-bench/*.txt\"\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(nodes: u32, launcher: Launcher) -> PlanOptions {
        PlanOptions {
            nodes,
            gpus_per_node: 8,
            launcher,
            collectives: vec!["all_reduce".into()],
            bin_dir: "./build".into(),
            sweep: false,
            timeout_s: 600,
        }
    }

    #[test]
    fn two_nodes_force_ring_and_test_rails() {
        let s = script(&opts(2, Launcher::Mpirun));
        assert!(s.contains("-x NCCL_ALGO='Ring'"));
        assert!(s.contains("mpirun -np 16 -N 8"));
        assert!(s.contains("NCCL_TESTS_SPLIT_MASK='0x7'"));
        assert!(s.contains("-J all_reduce.json"));
        let one = script(&opts(1, Launcher::Local));
        assert!(!one.contains("NCCL_ALGO") && one.contains("-g 8"));
    }

    #[test]
    fn the_sweep_names_files_after_the_choice() {
        let mut o = opts(4, Launcher::Srun);
        o.sweep = true;
        let s = script(&o);
        assert!(s.contains("all_reduce.Ring.LL128.txt") && s.contains("all_reduce.default.txt"));
        assert!(s.contains("--export='ALL,NCCL_DEBUG=INFO"));
    }
}
