//! `bench plan`: the nccl-tests runs that answer a question, as a bash script that runs as
//! written, with the maintainers' advice built in: `NCCL_ALGO=Ring` when exactly two nodes test
//! the network (the default Tree/NVLSTree busbw is not wire bandwidth there; NVIDIA/nccl-tests
//! #196, NVIDIA/nccl #812), one large size for pass/fail, validation on (`-c 1`), a timeout
//! (`-T`), JSON output (`-J`, nccl-tests 2.17.3+), `NCCL_DEBUG=INFO` into files for
//! `verify --nccl-log`, and a rails run with `NCCL_TESTS_SPLIT_MASK` (nccl-tests README).
//!
//! Settings reach the ranks intact: each command runs under `env NAME=value ...`; mpirun forwards
//! them by name (`-x NAME`), srun with `--export=ALL` (a value inside `--export=NAME=value,...`
//! is cut at its first comma by Slurm, so `NCCL_DEBUG_SUBSYS=INIT,NET` would arrive as `INIT`).
//! Every value goes through [`super::shell::quote`].

use super::shell::{assignment, check_value, quote, valid_name};
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
    /// Folder holding the nccl-tests binaries: absolute (the CLI resolves it), since the script
    /// changes into its output folder and remote ranks start elsewhere.
    pub bin_dir: String,
    /// One run per NCCL_ALGO x NCCL_PROTO, for `bench tune`.
    pub sweep: bool,
    /// The node has NVSwitch and Hopper or newer GPUs: sweep NVLS (and NVLSTree across nodes).
    pub nvls: bool,
    /// The fabric has in-network reduction (SHARP) with NCCL's CollNet plugin: sweep CollNet.
    pub collnet: bool,
    pub timeout_s: u32,
}

/// The most ranks a plan is written for (far beyond any cluster nccl-tests has been run on).
pub const MAX_RANKS: u64 = 1 << 20;
pub const MAX_GPUS_PER_NODE: u32 = 1024;

/// Refuses shapes and values no run could have.
pub fn validate(o: &PlanOptions) -> Result<(), String> {
    if o.nodes == 0 || o.gpus_per_node == 0 {
        return Err("--nodes and --gpus-per-node must be at least 1".into());
    }
    if o.gpus_per_node > MAX_GPUS_PER_NODE {
        return Err(format!(
            "--gpus-per-node {}: more than {MAX_GPUS_PER_NODE} GPUs in one node is not a real node",
            o.gpus_per_node
        ));
    }
    let ranks = u64::from(o.nodes) * u64::from(o.gpus_per_node);
    if ranks > MAX_RANKS {
        return Err(format!(
            "--nodes {} x --gpus-per-node {} = {ranks} ranks: more than {MAX_RANKS}; check the numbers",
            o.nodes, o.gpus_per_node
        ));
    }
    if o.timeout_s == 0 {
        return Err("--test-timeout must be at least 1 second (0 would disable nccl-tests' -T)".into());
    }
    if !o.bin_dir.starts_with('/') {
        return Err(format!("bin dir {:?} must be an absolute path", o.bin_dir));
    }
    check_value("--bin-dir", &o.bin_dir)?;
    for c in &o.collectives {
        if c.is_empty() || !c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(format!("--collectives {c:?}: expected names such as all_reduce"));
        }
    }
    Ok(())
}

/// The algorithms NCCL can use for a collective (NCCL `src/graph/tuning.cc`: broadcast and
/// reduce Ring only; allgather/reducescatter Ring, PAT, NVLS, CollNetDirect; allreduce Tree,
/// Ring, CollNetDirect/Chain, NVLS, NVLSTree), limited to what this node and shape support,
/// with the protocols each allows (NVLS, NVLSTree and PAT: Simple only).
fn sweep_choices(o: &PlanOptions, coll: &str) -> Vec<(&'static str, &'static str)> {
    const ALL: [&str; 3] = ["LL", "LL128", "Simple"];
    let multi = o.nodes > 1;
    let mut algos: Vec<(&str, &[&str])> = vec![("Ring", &ALL)];
    match coll {
        "all_reduce" => {
            algos.push(("Tree", &ALL));
            if o.nvls {
                algos.push(("NVLS", &["Simple"]));
                if multi {
                    algos.push(("NVLSTree", &["Simple"]));
                }
            }
            if o.collnet && multi {
                algos.push(("CollnetDirect", &ALL));
                algos.push(("CollnetChain", &ALL));
            }
        }
        "all_gather" | "reduce_scatter" => {
            // PAT: NCCL_PAT_ENABLE's default allows it only with one GPU per node.
            if multi && o.gpus_per_node == 1 {
                algos.push(("PAT", &["Simple"]));
            }
            if o.nvls {
                algos.push(("NVLS", &["Simple"]));
            }
            if o.collnet && multi {
                algos.push(("CollnetDirect", &ALL));
            }
        }
        _ => {}
    }
    algos
        .into_iter()
        .flat_map(|(a, ps)| ps.iter().map(move |p| (a, *p)))
        .collect()
}

/// One `run` line: the output file, the settings, the launcher and the binary with its arguments.
/// `debug_file`: send NCCL's INFO lines to `$DEBUG_FILE` (per host and pid) instead of stdout.
fn command(
    o: &PlanOptions,
    coll: &str,
    env: &[(&str, String)],
    args: &str,
    out: &str,
    debug_file: bool,
) -> String {
    let bin = format!("\"$BIN_DIR\"/{}", quote(&format!("{coll}_perf")));
    let ranks = u64::from(o.nodes) * u64::from(o.gpus_per_node);
    let mut assignments: Vec<String> = env.iter().map(|(k, v)| assignment(k, v)).collect();
    let mut names: Vec<&str> = env.iter().map(|(k, _)| *k).collect();
    if debug_file {
        // Expanded by the script's shell, so each run writes into the output folder.
        assignments.push("NCCL_DEBUG_FILE=\"$DEBUG_FILE\"".into());
        names.push("NCCL_DEBUG_FILE");
    }
    let launch = match o.launcher {
        Launcher::Local => format!("{bin} {args} -g {}", o.gpus_per_node),
        Launcher::Mpirun => {
            let xs: String = names.iter().map(|k| format!("-x {k} ")).collect();
            format!(
                "mpirun -np {ranks} -N {} --hostfile \"$HOSTFILE\" --bind-to none {xs}{bin} {args} -g 1",
                o.gpus_per_node
            )
        }
        Launcher::Srun => format!(
            "srun -N {} --ntasks-per-node={} --gpus-per-node={} --export=ALL {bin} {args} -g 1",
            o.nodes, o.gpus_per_node, o.gpus_per_node
        ),
    };
    format!("run {} env {} {launch}\n", quote(out), assignments.join(" "))
}

pub fn script(o: &PlanOptions) -> String {
    debug_assert!(validate(o).is_ok());
    let mut s = String::from("#!/usr/bin/env bash\n# nccl-tests plan written by nccltune bench plan.\n");
    let _ = writeln!(
        s,
        "# {} node(s) x {} GPU(s), launcher {:?}.",
        o.nodes, o.gpus_per_node, o.launcher
    );
    s.push_str("set -euo pipefail\n");
    let _ = writeln!(s, "BIN_DIR={}", quote(&o.bin_dir));
    for coll in &o.collectives {
        let _ = writeln!(
            s,
            "[ -x \"$BIN_DIR\"/{bin} ] || {{ echo \"nccltune plan: $BIN_DIR/{coll}_perf not found or not executable (build nccl-tests{mpi}, or pass --bin-dir)\" >&2; exit 2; }}",
            bin = quote(&format!("{coll}_perf")),
            mpi = if o.launcher == Launcher::Local {
                ""
            } else {
                " with MPI=1"
            },
        );
    }
    if o.launcher == Launcher::Mpirun {
        s.push_str(": \"${HOSTFILE:?set HOSTFILE to an MPI hostfile with one line per node}\"\n");
    }
    s.push_str("mkdir -p nccltune-bench && cd nccltune-bench\nOUT_DIR=$PWD\nfailed=0\n");
    s.push_str(
        "# run FILE COMMAND...: runs one test into FILE; a failed test is counted, the others still run.\n\
         run() {\n  local out=$1; shift\n  echo \"nccltune plan: $out\" >&2\n  \
         if ! \"$@\" 2>&1 | tee \"$out\"; then\n    echo \"nccltune plan: $out failed\" >&2\n    failed=$((failed + 1))\n  fi\n}\n",
    );
    // NCCL expands %h (host) and %p (pid) in NCCL_DEBUG_FILE; the folder is absolute so remote
    // ranks write beside the results.
    s.push_str("DEBUG_FILE=$OUT_DIR/nccl-debug.%h.%p.log\n\n");
    let mut base_env: Vec<(&str, String)> = vec![
        ("NCCL_DEBUG", "INFO".into()),
        ("NCCL_DEBUG_SUBSYS", "INIT,NET".into()),
    ];
    if o.nodes == 2 {
        s.push_str("# Two nodes: NCCL_ALGO=Ring, since the default Tree/NVLSTree busbw is not wire bandwidth here.\n");
        base_env.push(("NCCL_ALGO", "Ring".into()));
    }
    let sweep = "-b 8 -e 16G -f 2 -c 1 -n 20 -w 5";
    let large = "-b 8G -e 8G -c 1 -n 50 -w 10";
    for coll in &o.collectives {
        let _ = writeln!(
            s,
            "# {coll}: a sweep of sizes (read it with `nccltune bench --parse {coll}.txt`)"
        );
        let main =
            |env: &[(&str, String)], args: String, out: String| command(o, coll, env, &args, &out, true);
        s.push_str(&main(
            &base_env,
            format!(
                "-b 8 -e 8G -f 2 -c 1 -n 20 -w 5 -T {} -J {coll}.json",
                o.timeout_s
            ),
            format!("{coll}.txt"),
        ));
        let _ = writeln!(s, "# {coll}: one large size for pass/fail");
        s.push_str(&main(
            &base_env,
            format!("{large} -T {}", o.timeout_s),
            format!("{coll}.8G.txt"),
        ));
        if o.nodes > 1 && o.gpus_per_node.is_power_of_two() && o.gpus_per_node > 1 {
            let _ = writeln!(
                s,
                "# {coll}: each rail on its own (ranks with the same local GPU index, one per node)"
            );
            let mut env = base_env.clone();
            env.push(("NCCL_TESTS_SPLIT_MASK", format!("{:#x}", o.gpus_per_node - 1)));
            s.push_str(&main(
                &env,
                format!("{large} -T {}", o.timeout_s),
                format!("{coll}.rails.txt"),
            ));
        }
        if o.sweep {
            let _ = writeln!(
                s,
                "# {coll}: NCCL_ALGO x NCCL_PROTO sweep for `nccltune bench tune` (the file name records the choice;\n\
                 # NCCL's own choices go to stdout through NCCL_DEBUG_SUBSYS=TUNING, which bench tune reads)"
            );
            let plain: Vec<(&str, String)> = vec![
                ("NCCL_DEBUG", "INFO".into()),
                ("NCCL_DEBUG_SUBSYS", "INIT,NET,ENV,TUNING".into()),
            ];
            s.push_str(&command(
                o,
                coll,
                &plain,
                &format!("{sweep} -T {}", o.timeout_s),
                &format!("{coll}.default.txt"),
                false,
            ));
            for (a, p) in sweep_choices(o, coll) {
                let mut env = plain.clone();
                env.push(("NCCL_ALGO", a.into()));
                env.push(("NCCL_PROTO", p.into()));
                s.push_str(&command(
                    o,
                    coll,
                    &env,
                    &format!("{sweep} -T {}", o.timeout_s),
                    &format!("{coll}.{a}.{p}.txt"),
                    false,
                ));
            }
        }
        s.push('\n');
    }
    s.push_str(
        "echo \"done: nccltune bench --parse $OUT_DIR/*.txt ($failed failed)\" >&2\n[ \"$failed\" -eq 0 ]\n",
    );
    debug_assert!(base_env.iter().all(|(k, _)| valid_name(k)));
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
            bin_dir: "/opt/nccl-tests/build".into(),
            sweep: false,
            nvls: false,
            collnet: false,
            timeout_s: 600,
        }
    }

    #[test]
    fn two_nodes_force_ring_and_test_rails() {
        let s = script(&opts(2, Launcher::Mpirun));
        assert!(s.contains("NCCL_ALGO=Ring") && s.contains("-x NCCL_ALGO"));
        assert!(s.contains("mpirun -np 16 -N 8"));
        assert!(s.contains("NCCL_TESTS_SPLIT_MASK=0x7"));
        assert!(s.contains("-J all_reduce.json"));
        assert!(s.contains("BIN_DIR=/opt/nccl-tests/build"));
        let one = script(&opts(1, Launcher::Local));
        assert!(!one.contains("NCCL_ALGO") && one.contains("-g 8"));
    }

    #[test]
    fn srun_exports_all_and_keeps_commas() {
        let mut o = opts(4, Launcher::Srun);
        o.sweep = true;
        o.nvls = true;
        o.collnet = true;
        let s = script(&o);
        assert!(s.contains("all_reduce.Ring.LL128.txt") && s.contains("all_reduce.default.txt"));
        assert!(s.contains("--export=ALL ") && !s.contains("--export=ALL,"));
        assert!(s.contains("NCCL_DEBUG_SUBSYS=INIT,NET "));
        for f in [
            "NVLS.Simple",
            "NVLSTree.Simple",
            "CollnetDirect.LL",
            "CollnetChain.Simple",
        ] {
            assert!(s.contains(&format!("all_reduce.{f}.txt")), "{f}");
        }
        assert!(!s.contains("NVLS.LL.txt"), "NVLS is Simple only");
    }

    #[test]
    fn impossible_shapes_are_refused() {
        let mut o = opts(65536, Launcher::Srun);
        o.gpus_per_node = 65536;
        assert!(validate(&o).is_err());
        o.gpus_per_node = 8;
        o.nodes = 1 << 20;
        assert!(validate(&o).expect_err("too many ranks").contains("ranks"));
        let mut o = opts(1, Launcher::Local);
        o.bin_dir = "./build".into();
        assert!(validate(&o).is_err());
    }

    #[test]
    fn pat_only_with_one_gpu_per_node() {
        let mut o = opts(4, Launcher::Srun);
        o.sweep = true;
        o.collectives = vec!["all_gather".into()];
        assert!(!script(&o).contains("PAT"));
        o.gpus_per_node = 1;
        assert!(script(&o).contains("all_gather.PAT.Simple.txt"));
    }
}
