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
