//! Kubernetes: the verify round as an Indexed Job for the user to `kubectl apply`. Each pod is
//! pinned to one planned node by affinity (one pod per node by anti-affinity), runs verify,
//! and prints its result as `NCCLTUNE-RESULT` lines on stdout, because pods share no storage;
//! `nccltune fleet unpack` turns the collected logs back into result files. Every scalar is
//! quoted by [`super::quote::yaml`], every shell word by [`super::quote::sh`].

use super::plan::{Plan, Round};
use super::quote::{sh, yaml};
use std::fmt::Write as _;

/// One word of a command whose `{node}` is filled in by the pod at run time.
fn word_with_node(w: &str) -> String {
    let parts: Vec<&str> = w.split("{node}").collect();
    if parts.len() == 1 {
        return sh(w);
    }
    parts
        .iter()
        .map(|p| if p.is_empty() { String::new() } else { sh(p) })
        .collect::<Vec<_>>()
        .join("\"$NODE_NAME\"")
}

/// The pod's script: validate the node name the downward API gave, run verify, print result lines.
fn pod_script(plan: &Plan, round: &Round) -> String {
    let s = &plan.settings;
    let mut cmd = vec![sh(&s.nccltune), "verify".into(), "--format".into(), "json".into()];
    cmd.extend(s.check_args.iter().map(|a| word_with_node(a)));
    let tag = format!("NCCLTUNE-RESULT {}", round.dir_name());
    format!(
        "case \"$NODE_NAME\" in ''|*[!A-Za-z0-9._-]*) echo 'nccltune fleet: unusable node name' >&2; exit 2 ;; esac\n\
out=$(timeout -k 10 {t} {cmd}); rc=$?\n\
printf '%s\\n' \"$out\" | while IFS= read -r l; do printf '%s %s json %s\\n' {tag} \"$NODE_NAME\" \"$l\"; done\n\
printf '%s %s rc %s\\n' {tag} \"$NODE_NAME\" \"$rc\"\n",
        t = s.timeout_s,
        cmd = cmd.join(" "),
        tag = sh(&tag),
    )
}

/// The Job manifest and its name.
pub fn verify_job(plan: &Plan, round: &Round) -> (String, String) {
    let name = format!("nccltune-fleet-r{}-{:08x}", round.index, plan.seed as u32);
    let n = round.tests.len();
    let s = &plan.settings;
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# nccltune fleet: round {} (verify on {n} nodes) as an Indexed Job. Apply with kubectl apply -f.",
        round.index
    );
    y.push_str("apiVersion: batch/v1\nkind: Job\nmetadata:\n");
    let _ = writeln!(y, "  name: {}", yaml(&name));
    y.push_str("  labels:\n    app.kubernetes.io/name: \"nccltune-fleet\"\n");
    y.push_str("spec:\n  completionMode: Indexed\n");
    let _ = writeln!(y, "  completions: {n}\n  parallelism: {n}\n  backoffLimit: 0");
    let _ = writeln!(y, "  activeDeadlineSeconds: {}", s.timeout_s + 600);
    y.push_str("  template:\n    metadata:\n      labels:\n");
    let _ = writeln!(y, "        nccltune-fleet-job: {}", yaml(&name));
    y.push_str("    spec:\n      restartPolicy: Never\n      affinity:\n");
    y.push_str("        nodeAffinity:\n          requiredDuringSchedulingIgnoredDuringExecution:\n            nodeSelectorTerms:\n            - matchExpressions:\n              - key: \"kubernetes.io/hostname\"\n                operator: In\n                values:\n");
    for t in &round.tests {
        let _ = writeln!(y, "                - {}", yaml(&t.nodes[0]));
    }
    y.push_str("        podAntiAffinity:\n          requiredDuringSchedulingIgnoredDuringExecution:\n          - topologyKey: \"kubernetes.io/hostname\"\n            labelSelector:\n              matchLabels:\n");
    let _ = writeln!(y, "                nccltune-fleet-job: {}", yaml(&name));
    y.push_str("      containers:\n      - name: \"verify\"\n");
    let _ = writeln!(y, "        image: {}", yaml(&s.image));
    y.push_str("        command:\n        - \"/bin/sh\"\n        - \"-c\"\n");
    let _ = writeln!(y, "        - {}", yaml(&pod_script(plan, round)));
    y.push_str("        env:\n        - name: \"NODE_NAME\"\n          valueFrom:\n            fieldRef:\n              fieldPath: \"spec.nodeName\"\n");
    y.push_str("        securityContext:\n          privileged: true\n");
    (y, name)
}

/// The label every MPIJob of one wave carries (a round, or one rail of a `rails` round), so
/// run.sh waits for and collects the wave by selector, not by thousands of names.
pub fn wave_label(plan: &Plan, round: &Round, wave: usize) -> String {
    format!("r{}-w{wave}-{:08x}", round.index, plan.seed as u32)
}

/// The launcher's script: mpirun over the hostfile the MPI Operator mounts (it sets
/// `OMPI_MCA_orte_default_hostfile`), its output and exit status printed as `NCCLTUNE-RESULT`
/// lines (`txt`, then `rc`), always exiting 0 so the result, not the Job's state, tells.
fn launcher_script(plan: &Plan, round: &Round, t: &super::plan::Test) -> String {
    let s = &plan.settings;
    let np = t.nodes.len() as u64 * u64::from(s.gpus_per_node);
    let mut words: Vec<String> = vec![
        "mpirun".into(),
        "--allow-run-as-root".into(),
        "-np".into(),
        np.to_string(),
        "--map-by".into(),
        format!("ppr:{}:node", s.gpus_per_node),
    ];
    for (k, v) in &t.env {
        words.push("-x".into());
        words.push(format!("{k}={v}"));
    }
    words.extend(t.cmd.iter().cloned());
    let tag = format!("NCCLTUNE-RESULT {}", round.dir_name());
    format!(
        "out=$(timeout -k 10 {to} {cmd} 2>&1); rc=$?\n\
printf '%s\\n' \"$out\" | while IFS= read -r l; do printf '%s %s txt %s\\n' {tag} {id} \"$l\"; done\n\
printf '%s %s rc %s\\n' {tag} {id} \"$rc\"\n",
        to = t.timeout_s,
        cmd = super::quote::sh_words(&words),
        tag = sh(&tag),
        id = sh(&t.id),
    )
}

/// One multi-node test as an MPIJob (Kubeflow MPI Operator, `kubeflow.org/v2beta1`): a
/// launcher that runs the test with mpirun and prints its result, and one worker pod per planned
/// node (node affinity on `kubernetes.io/hostname`, one per node by anti-affinity), each with
/// `gpus_per_node` GPUs. The image needs mpirun, nccl-tests at `nccl_tests_bin` and sshd (the
/// operator's OpenMPI launcher reaches the workers over ssh, with keys it mounts).
pub fn mpi_job(plan: &Plan, round: &Round, t: &super::plan::Test, wave: usize) -> (String, String) {
    let s = &plan.settings;
    let name = format!(
        "nccltune-fleet-r{}-{}-{:08x}",
        round.index, t.id, plan.seed as u32
    );
    let wl = wave_label(plan, round, wave);
    let mut y = String::new();
    let rail = t.rail.as_ref().map(|r| format!(", rail {r}")).unwrap_or_default();
    let _ = writeln!(
        y,
        "# nccltune fleet: round {}, test {} ({} nodes{rail}) as an MPIJob (Kubeflow MPI Operator v2beta1). run.sh applies it.",
        round.index,
        t.id,
        t.nodes.len()
    );
    y.push_str("apiVersion: kubeflow.org/v2beta1\nkind: MPIJob\nmetadata:\n");
    let _ = writeln!(y, "  name: {}", yaml(&name));
    y.push_str("  labels:\n    app.kubernetes.io/name: \"nccltune-fleet\"\n");
    let _ = writeln!(y, "    nccltune-fleet-wave: {}", yaml(&wl));
    y.push_str("spec:\n");
    let _ = writeln!(y, "  slotsPerWorker: {}", s.gpus_per_node);
    y.push_str("  runPolicy:\n    cleanPodPolicy: Running\n    backoffLimit: 0\n");
    let _ = writeln!(y, "    activeDeadlineSeconds: {}", t.timeout_s + 600);
    y.push_str("  mpiReplicaSpecs:\n    Launcher:\n      replicas: 1\n      template:\n        metadata:\n          labels:\n");
    let _ = writeln!(y, "            nccltune-fleet-test: {}", yaml(&name));
    y.push_str("            nccltune-fleet-role: \"launcher\"\n");
    let _ = writeln!(y, "            nccltune-fleet-wave: {}", yaml(&wl));
    y.push_str("        spec:\n          restartPolicy: Never\n          containers:\n          - name: \"launcher\"\n");
    let _ = writeln!(y, "            image: {}", yaml(&s.image));
    y.push_str("            command:\n            - \"/bin/sh\"\n            - \"-c\"\n");
    let _ = writeln!(y, "            - {}", yaml(&launcher_script(plan, round, t)));
    y.push_str("    Worker:\n");
    let _ = writeln!(y, "      replicas: {}", t.nodes.len());
    y.push_str("      template:\n        metadata:\n          labels:\n");
    let _ = writeln!(y, "            nccltune-fleet-test: {}", yaml(&name));
    y.push_str("            nccltune-fleet-role: \"worker\"\n");
    y.push_str("        spec:\n          affinity:\n            nodeAffinity:\n              requiredDuringSchedulingIgnoredDuringExecution:\n                nodeSelectorTerms:\n                - matchExpressions:\n                  - key: \"kubernetes.io/hostname\"\n                    operator: In\n                    values:\n");
    for n in &t.nodes {
        let _ = writeln!(y, "                    - {}", yaml(n));
    }
    y.push_str("            podAntiAffinity:\n              requiredDuringSchedulingIgnoredDuringExecution:\n              - topologyKey: \"kubernetes.io/hostname\"\n                labelSelector:\n                  matchLabels:\n");
    let _ = writeln!(y, "                    nccltune-fleet-test: {}", yaml(&name));
    y.push_str("                    nccltune-fleet-role: \"worker\"\n");
    y.push_str("          containers:\n          - name: \"worker\"\n");
    let _ = writeln!(y, "            image: {}", yaml(&s.image));
    y.push_str("            command:\n            - \"/usr/sbin/sshd\"\n            - \"-De\"\n");
    y.push_str("            resources:\n              limits:\n");
    let _ = writeln!(y, "                nvidia.com/gpu: {}", s.gpus_per_node);
    y.push_str("            securityContext:\n              capabilities:\n                add:\n                - \"IPC_LOCK\"\n");
    (y, name)
}
