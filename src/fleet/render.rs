//! Renderers of the fleet result: table (and `report`), JSON (`fleet.json`), Prometheus text,
//! JUnit XML, Slurm drain lines and Kubernetes taint lines. Lines meant for a shell are built
//! with [`super::quote::sh`]; text for XML and Prometheus is escaped for those formats.

use super::model::*;
use super::quote::sh;
use std::fmt::Write as _;

pub fn json(r: &FleetResult) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_default();
    s.push('\n');
    s
}

/// Printable ASCII only, at most `max` characters: a reason field must not carry control
/// characters or escapes into `sinfo` output or a terminal.
fn clean(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .collect();
    if out.len() > max {
        out.truncate(max);
    }
    out
}

fn first_reason(n: &NodeResult) -> String {
    match n.reasons.first() {
        Some(r) => {
            let mut s = r.code.clone();
            if !r.subject.is_empty() {
                s.push(' ');
                s.push_str(&r.subject);
            }
            s.push(' ');
            s.push_str(&r.message);
            s
        }
        None => String::new(),
    }
}

pub fn summary_line(r: &FleetResult) -> String {
    let s = &r.summary;
    format!(
        "{} nodes: {} ok, {} bad, {} suspect, {} missing, {} error; {} links, {} infrastructure faults; {} tests ({} failed) in {} rounds",
        s.nodes,
        s.ok,
        s.bad,
        s.suspect,
        s.missing,
        s.error,
        s.links,
        s.infra,
        s.tests,
        s.tests_failed,
        s.rounds
    )
}

/// A readable table: every node that is not ok (all nodes unless `only_bad`), then faults,
/// drift and notes.
pub fn table(r: &FleetResult, only_bad: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<20} {:<8} {:>5}  REASON", "NODE", "STATUS", "CONF");
    for (name, n) in &r.nodes {
        if only_bad && n.status == Status::Ok {
            continue;
        }
        let _ = writeln!(
            out,
            "{:<20} {:<8} {:>5.2}  {}",
            name,
            n.status.as_str(),
            n.confidence,
            clean(&first_reason(n), 160)
        );
        for extra in n.reasons.iter().skip(1).take(4) {
            let _ = writeln!(
                out,
                "{:<36}{} {} {}",
                "",
                extra.code,
                extra.subject,
                clean(&extra.message, 120)
            );
        }
    }
    for l in &r.links {
        let on = l
            .rail
            .as_ref()
            .map(|x| format!(" on rail {x}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "link fault: {}{on} (failed {} times; both nodes pass with other partners)",
            l.nodes.join(" <-> "),
            l.failures
        );
    }
    for l in &r.infra {
        let on = l
            .rail
            .as_ref()
            .map(|x| format!(" on rail {x}"))
            .unwrap_or_default();
        if l.probes.is_empty() {
            let _ = writeln!(
                out,
                "infrastructure fault: {}{on} (failed {} times; every member passes elsewhere)",
                l.nodes.join(","),
                l.failures
            );
        } else {
            let probes: Vec<String> = l.probes.iter().map(|p| p.join(" <-> ")).collect();
            let _ = writeln!(
                out,
                "infrastructure fault between the halves of {}{on}: both halves pass, the probes across fail ({})",
                l.nodes.join(","),
                probes.join(", ")
            );
        }
    }
    if !only_bad {
        for d in &r.drift {
            for o in &d.others {
                let _ = writeln!(
                    out,
                    "drift: {} {}: {} on {} node(s) ({}), {} on {}",
                    d.code,
                    d.subject,
                    clean(&o.value.to_string(), 60),
                    o.nodes.len(),
                    clean(&o.nodes.iter().take(5).cloned().collect::<Vec<_>>().join(","), 80),
                    clean(&d.majority.to_string(), 60),
                    d.majority_nodes
                );
            }
        }
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {}", clean(n, 400));
    }
    let _ = writeln!(out, "{}", summary_line(r));
    out
}

fn prom_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Small at any fleet size: totals by status, then one series per bad, missing or error node.
pub fn prometheus(r: &FleetResult) -> String {
    let mut out = String::new();
    out.push_str(
        "# HELP nccltune_fleet_nodes Nodes of the fleet by status.\n# TYPE nccltune_fleet_nodes gauge\n",
    );
    for s in Status::ALL {
        let _ = writeln!(
            out,
            "nccltune_fleet_nodes{{status=\"{}\"}} {}",
            s.as_str(),
            r.count(s)
        );
    }
    out.push_str("# HELP nccltune_fleet_node_problem A node that is bad, missing or in error (1), with the first reason's code.\n# TYPE nccltune_fleet_node_problem gauge\n");
    for (name, n) in &r.nodes {
        if matches!(n.status, Status::Bad | Status::Missing | Status::Error) {
            let code = n.reasons.first().map(|x| x.code.as_str()).unwrap_or("");
            let _ = writeln!(
                out,
                "nccltune_fleet_node_problem{{node=\"{}\",status=\"{}\",code=\"{}\"}} 1",
                prom_label(name),
                n.status.as_str(),
                prom_label(code)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP nccltune_fleet_link_faults Node pairs that fail while both nodes pass with others.\n# TYPE nccltune_fleet_link_faults gauge\nnccltune_fleet_link_faults {}",
        r.links.len()
    );
    out
}

/// Every reason of a node, a line each, for a JUnit failure's body.
fn all_reasons(n: &NodeResult) -> String {
    n.reasons
        .iter()
        .map(|r| {
            [r.code.as_str(), r.subject.as_str(), r.message.as_str()]
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One test case per node, through the shared JUnit writer (`render::junit`), so the document
/// passes both strict schemas (Surefire's wants `time` on each case and `skipped` on the suite).
/// Bad and missing nodes are failures, error nodes errors; a suspect node passes with its reason
/// beside it, because it is not confirmed.
pub fn junit(r: &FleetResult) -> String {
    use crate::render::junit::{Case, Outcome, Suite};
    let cases = r
        .nodes
        .iter()
        .map(|(name, n)| {
            let msg = first_reason(n);
            let (outcome, system_out) = match n.status {
                Status::Ok => (Outcome::Pass, None),
                Status::Bad | Status::Missing => (
                    Outcome::Failure {
                        kind: n.status.as_str().to_string(),
                        message: format!("{} {msg}", n.status.as_str()),
                        detail: all_reasons(n),
                    },
                    None,
                ),
                Status::Error => (
                    Outcome::Error {
                        kind: "error".to_string(),
                        message: msg,
                        detail: all_reasons(n),
                    },
                    None,
                ),
                Status::Suspect => (Outcome::Pass, Some(format!("suspect: {msg}"))),
            };
            Case {
                classname: "nccltune.fleet".to_string(),
                name: name.clone(),
                time_s: 0.0,
                outcome,
                system_out,
            }
        })
        .collect();
    crate::render::junit::render(&Suite {
        name: "nccltune-fleet".to_string(),
        timestamp: crate::render::meta::rfc3339(crate::render::meta::now()),
        time_s: 0.0,
        properties: vec![
            ("nccltune_version".to_string(), r.nccltune_version.clone()),
            ("plan".to_string(), r.plan.clone()),
        ],
        cases,
    })
}

/// `scontrol` lines for confirmed bad nodes only. The code leads the reason because
/// `sinfo -R` shows its first 20 characters.
pub fn slurm_drain(r: &FleetResult) -> String {
    let mut out =
        String::from("# nccltune fleet: drain the confirmed bad nodes (review, then run with bash)\n");
    for (name, n) in &r.nodes {
        if n.status != Status::Bad {
            continue;
        }
        let reason = format!("nccltune:{}", clean(&first_reason(n), 100));
        let _ = writeln!(
            out,
            "scontrol update {} State=DRAIN {}",
            sh(&format!("NodeName={name}")),
            sh(&format!("Reason={reason}"))
        );
    }
    out
}

/// `kubectl taint` lines for confirmed bad nodes: the taint value is the reason's code,
/// reduced to what a label value may hold.
pub fn k8s_taint(r: &FleetResult) -> String {
    let mut out =
        String::from("# nccltune fleet: taint the confirmed bad nodes (review, then run with bash)\n");
    for (name, n) in &r.nodes {
        if n.status != Status::Bad {
            continue;
        }
        let code: String = n
            .reasons
            .first()
            .map(|x| x.code.as_str())
            .unwrap_or("bad")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(63)
            .collect();
        let _ = writeln!(
            out,
            "kubectl taint nodes {} {} --overwrite",
            sh(name),
            sh(&format!("nccltune.io/unhealthy={code}:NoSchedule"))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn node(status: Status, code: &str, msg: &str) -> NodeResult {
        NodeResult {
            status,
            confidence: 1.0,
            reasons: if code.is_empty() {
                vec![]
            } else {
                vec![Reason {
                    code: code.into(),
                    subject: "mlx5_0:1".into(),
                    message: msg.into(),
                }]
            },
            evidence: vec![],
            identity: None,
            busbw_gbps: None,
        }
    }

    fn fleet(n_ok: usize) -> FleetResult {
        let mut nodes = BTreeMap::new();
        for i in 0..n_ok {
            nodes.insert(format!("ok{i:05}"), node(Status::Ok, "", ""));
        }
        nodes.insert(
            "gpu017".into(),
            node(
                Status::Bad,
                "rdma.port-rate",
                "200 Gb/s, 400 Gb/s expected\n$(id) <x>",
            ),
        );
        nodes.insert(
            "gpu018".into(),
            node(Status::Suspect, "fleet.screen-failed", "slow"),
        );
        nodes.insert(
            "gpu019".into(),
            node(Status::Missing, "fleet.no-result", "silent"),
        );
        FleetResult {
            schema: FLEET_SCHEMA,
            nccltune_version: "0".into(),
            plan: "p".into(),
            nodes,
            links: vec![],
            infra: vec![],
            drift: vec![],
            notes: vec![],
            summary: Summary::default(),
        }
    }

    #[test]
    fn prometheus_stays_small_at_ten_thousand_nodes() {
        let text = prometheus(&fleet(10_000));
        let series = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(series, 5 + 2 + 1, "{text}");
        assert!(text.contains("nccltune_fleet_nodes{status=\"ok\"} 10000"));
        assert!(text.contains("node=\"gpu019\",status=\"missing\",code=\"fleet.no-result\""));
    }

    #[test]
    fn drain_lines_are_for_bad_nodes_only_and_quoted() {
        let text = slurm_drain(&fleet(3));
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("scontrol update NodeName=gpu017 State=DRAIN 'Reason=nccltune:rdma.port-rate mlx5_0:1 200 Gb/s"),
            "{}",
            lines[0]
        );
        // The newline became '?', and `$(id)` sits inside single quotes.
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(lines[0].replace("scontrol update", "printf '%s|'"))
            .output()
            .expect("bash");
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(printed.contains("?$(id) <x>|"), "{printed}");
        assert_eq!(
            k8s_taint(&fleet(1))
                .lines()
                .filter(|l| !l.starts_with('#'))
                .count(),
            1
        );
    }

    #[test]
    fn junit_escapes_markup() {
        let x = junit(&fleet(1));
        assert!(x.contains("&lt;x&gt;") && !x.contains("<x>"), "{x}");
        assert!(x.contains("tests=\"4\" failures=\"2\""), "{x}");
    }
}
