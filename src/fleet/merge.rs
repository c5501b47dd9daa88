//! Merge: the plan's test outcomes → the fleet result. Each node's own checks (verify) first,
//! then the multi-node isolation, then consensus across the fleet. A node is `ok` only with
//! evidence: no result at all is `missing`, never healthy.

use super::expect::Judgement;
use super::isolate::{self, TestEval, Verdict};
use super::model::*;
use super::plan::{Plan, Purpose, TestKind};
use super::results::{Output, TestOutcome};
use super::verify_json::{Interner, Level, NodeSummary};
use crate::finding::FleetCode;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// Nodes whose check values differ from the fleet's majority become `suspect`.
    pub consensus: bool,
    /// How the plan is named in the output (its path).
    pub plan_label: String,
    /// `--expect FILE`: every node's typed check values against written expectations.
    pub expect: Option<super::expect::Golden>,
}

/// What the isolation step needs besides the result: used by `next`.
pub struct Merged {
    pub result: FleetResult,
    pub evals: Vec<TestEval>,
    /// The lane (index into `lanes`) of each of `evals`.
    pub eval_lane: Vec<usize>,
    /// Isolation runs per lane: lane 0 for whole-node tests (pairs, groups), one lane per
    /// rail for `rails`, so a node's rail is judged only against tests on that rail.
    pub lanes: Vec<Lane>,
    /// Nodes healthy by their own checks and reporting: may take part in multi-node tests.
    pub eligible: Vec<bool>,
}

pub struct Lane {
    /// `None`: whole-node tests; else the rail.
    pub rail: Option<String>,
    pub isolation: isolate::Isolation,
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// The multi-node pass threshold: below the target (× acceptable fraction) *and* far below the
/// fleet (median − k·MAD). Either alone is not enough: a wrong target would fail everyone,
/// and a fleet-relative rule alone would fail the slowest healthy node.
pub fn threshold(
    busbws: &[f64],
    target: Option<f64>,
    fraction: f64,
    k: f64,
) -> (f64, Option<f64>, Option<f64>) {
    let mut v = busbws.to_vec();
    let med = median(&mut v);
    let mad = med.and_then(|m| {
        let mut d: Vec<f64> = busbws.iter().map(|b| (b - m).abs()).collect();
        median(&mut d)
    });
    let fleet = match (med, mad) {
        (Some(m), Some(d)) => m - k * d,
        _ => f64::INFINITY,
    };
    let t = target.map(|t| t * fraction).unwrap_or(f64::INFINITY);
    (t.min(fleet), med, mad)
}

enum VerifyState {
    NotPlanned,
    Missing,
    Summary(Box<NodeSummary>, i32, Vec<String>),
    TimedOut(i32, Vec<String>),
    Error(String, Vec<String>),
}

pub fn merge(plan: &Plan, outcomes: &[TestOutcome], interner: &Interner, opts: &MergeOptions) -> Merged {
    let n = plan.nodes.len();
    let index: HashMap<&str, u32> = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    let s = &plan.settings;
    let mut notes = Vec::new();
    let mut verify: Vec<VerifyState> = (0..n).map(|_| VerifyState::NotPlanned).collect();
    let mut nccl: Vec<&TestOutcome> = Vec::new();
    for o in outcomes {
        let Some(round) = plan.round(o.round) else {
            continue;
        };
        let Some(t) = round.tests.get(o.test) else {
            continue;
        };
        match t.kind {
            TestKind::Verify => {
                let Some(&i) = t.nodes.first().and_then(|n| index.get(n.as_str())) else {
                    continue;
                };
                let files = o.files.clone();
                verify[i as usize] = match (&o.output, o.rc) {
                    _ if o.timed_out() => VerifyState::TimedOut(o.rc.unwrap_or(124), files),
                    (Output::Missing, _) => VerifyState::Missing,
                    (Output::Verify(sum), Some(rc)) => VerifyState::Summary(sum.clone(), rc, files),
                    (Output::Verify(_), None) => VerifyState::Error(
                        "a report without its .rc: the test did not finish writing".into(),
                        files,
                    ),
                    (Output::Unparsable(e), _) => VerifyState::Error(e.clone(), files),
                    (Output::NoOutput, rc) => {
                        VerifyState::Error(format!("exit status {} and no report", rc.unwrap_or(-1)), files)
                    }
                    (Output::Busbw(_), _) => {
                        VerifyState::Error("an nccl-tests log where a verify report belongs".into(), files)
                    }
                };
            }
            TestKind::Nccl => nccl.push(o),
        }
    }

    // Multi-node verdicts, lane by lane: whole-node tests, then each rail with its own target.
    let lane_names: Vec<Option<String>> = std::iter::once(None)
        .chain(s.rails.iter().cloned().map(Some))
        .collect();
    let lane_of = |t: &super::plan::Test| -> usize {
        t.rail
            .as_ref()
            .and_then(|r| s.rails.iter().position(|x| x == r))
            .map_or(0, |k| k + 1)
    };
    let mut limits = Vec::with_capacity(lane_names.len());
    for (k, rail) in lane_names.iter().enumerate() {
        let busbws: Vec<f64> = nccl
            .iter()
            .filter(|o| o.rc == Some(0))
            .filter(|o| plan.round(o.round).and_then(|r| r.tests.get(o.test)).map(lane_of) == Some(k))
            .filter_map(|o| {
                if let Output::Busbw(b) = o.output {
                    Some(b)
                } else {
                    None
                }
            })
            .collect();
        let target = if rail.is_some() {
            super::rounds::rail_target(s)
        } else {
            s.target_busbw_gbps
        };
        let (limit, med, _mad) = threshold(&busbws, target, s.acceptable_fraction, s.mad_k);
        limits.push(limit);
        if let (Some(m), Some(t)) = (med, target)
            && m < t * s.acceptable_fraction
        {
            let on = rail.as_ref().map(|r| format!(" on rail {r}")).unwrap_or_default();
            notes.push(format!(
                "the fleet's median busbw{on} {m:.1} GB/s is below {:.0}% of the target {t:.1} GB/s ({}): every test looks slow, so only nodes far below the fleet (median − {}·MAD) are failed; check the target, NCCL_ALGO and the fabric",
                s.acceptable_fraction * 100.0,
                s.target_source,
                s.mad_k
            ));
        }
    }
    let mut evals = Vec::with_capacity(nccl.len());
    let mut eval_lane = Vec::with_capacity(nccl.len());
    let mut why: Vec<String> = Vec::with_capacity(nccl.len());
    let mut node_busbw: Vec<Option<f64>> = vec![None; n];
    let mut node_files: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut failed_tests = 0;
    let mut eval_files: Vec<&[String]> = Vec::with_capacity(nccl.len());
    for o in &nccl {
        let Some(t) = plan.round(o.round).and_then(|r| r.tests.get(o.test)) else {
            continue;
        };
        let lane = lane_of(t);
        let limit = limits[lane];
        let mut nodes: Vec<u32> = t
            .nodes
            .iter()
            .filter_map(|x| index.get(x.as_str()).copied())
            .collect();
        nodes.sort_unstable();
        let (verdict, reason) = match (&o.output, o.rc) {
            (Output::Missing, None) => (Verdict::Missing, "no result".to_string()),
            _ if o.timed_out() => (Verdict::Fail, format!("timed out (exit {})", o.rc.unwrap_or(124))),
            (Output::Busbw(b), Some(0)) if *b < limit => (
                Verdict::Fail,
                format!(
                    "busbw {b:.1} GB/s below {limit:.1} (target × {} and fleet median − {}·MAD)",
                    s.acceptable_fraction, s.mad_k
                ),
            ),
            (Output::Busbw(b), Some(0)) => {
                // A node's figure is that of its whole-node tests; a one-rail figure is not.
                if lane == 0 {
                    for &m in &nodes {
                        let e = &mut node_busbw[m as usize];
                        *e = Some(e.map_or(*b, |x: f64| x.max(*b)));
                    }
                }
                (Verdict::Pass, String::new())
            }
            (Output::Busbw(_), None) => (
                Verdict::Missing,
                "output without .rc: still running or cut off".into(),
            ),
            (Output::Busbw(_), Some(rc)) => (Verdict::Fail, format!("exit status {rc}")),
            (Output::Unparsable(e), _) => (Verdict::Fail, e.clone()),
            (Output::NoOutput, rc) => (
                Verdict::Fail,
                format!("exit status {} and no output", rc.unwrap_or(-1)),
            ),
            (Output::Verify(_), _) => (
                Verdict::Fail,
                "a verify report where an nccl-tests log belongs".into(),
            ),
            (Output::Missing, Some(rc)) => (Verdict::Fail, format!("exit status {rc} and no output")),
        };
        if verdict == Verdict::Fail {
            failed_tests += 1;
        }
        for &m in &nodes {
            node_files[m as usize].extend(o.files.iter().cloned());
        }
        evals.push(TestEval {
            round: o.round,
            purpose: t.purpose,
            nodes,
            verdict,
        });
        eval_lane.push(lane);
        eval_files.push(&o.files);
        why.push(reason);
    }
    let lanes: Vec<Lane> = lane_names
        .into_iter()
        .enumerate()
        .map(|(k, rail)| {
            let mine: Vec<TestEval> = evals
                .iter()
                .zip(&eval_lane)
                .filter(|(_, l)| **l == k)
                .map(|(e, _)| e.clone())
                .collect();
            Lane {
                rail,
                isolation: isolate::evaluate(n, &mine),
            }
        })
        .collect();
    let mut judged = judge_expectations(opts.expect.as_ref(), &verify, interner, &mut notes);
    // Each node's tests, so the per-node pass below is O(nodes + tests), not nodes × tests.
    let mut by_node: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, e) in evals.iter().enumerate() {
        for &m in &e.nodes {
            by_node[m as usize].push(k);
        }
    }

    // Node statuses.
    let mut nodes = BTreeMap::new();
    let mut eligible = vec![false; n];
    // Nodes that fail their own checks (before --expect): drift leaves them out.
    let mut own_failed = vec![false; n];
    let multi = plan.multi_node().is_some();
    for (i, name) in plan.nodes.iter().enumerate() {
        let mut reasons = Vec::new();
        let mut evidence = Vec::new();
        let mut identity = None;
        let mut status;
        let mut confidence;
        match std::mem::replace(&mut verify[i], VerifyState::NotPlanned) {
            VerifyState::NotPlanned => {
                status = Status::Ok;
                confidence = 0.0;
            }
            VerifyState::Missing => {
                status = Status::Missing;
                confidence = 1.0;
                reasons.push(Reason {
                    code: FleetCode::NoResult.as_str().into(),
                    subject: String::new(),
                    message: "no verify result reported (expected but silent)".into(),
                });
            }
            VerifyState::TimedOut(rc, f) => {
                status = Status::Bad;
                confidence = 0.9;
                evidence = f;
                reasons.push(Reason {
                    code: FleetCode::Timeout.as_str().into(),
                    subject: String::new(),
                    message: format!("verify did not finish within {} s (exit {rc})", s.timeout_s),
                });
            }
            VerifyState::Error(e, f) => {
                status = Status::Error;
                confidence = 1.0;
                evidence = f;
                reasons.push(Reason {
                    code: FleetCode::Unreadable.as_str().into(),
                    subject: String::new(),
                    message: e,
                });
            }
            VerifyState::Summary(sum, rc, f) => {
                evidence = f;
                identity = Some(sum.identity.clone());
                let fails: Vec<_> = sum.problems.iter().filter(|p| p.level == Level::Fail).collect();
                if !sum.ok || !fails.is_empty() {
                    status = Status::Bad;
                    confidence = 1.0;
                    for p in fails {
                        reasons.push(Reason {
                            code: p.code.clone(),
                            subject: p.subject.clone(),
                            message: p.message.clone(),
                        });
                    }
                    if reasons.is_empty() {
                        reasons.push(Reason {
                            code: FleetCode::VerifyFailed.as_str().into(),
                            subject: String::new(),
                            message: "verify reports not ok".into(),
                        });
                    }
                } else if rc != 0 && rc != 1 {
                    status = Status::Error;
                    confidence = 1.0;
                    reasons.push(Reason {
                        code: FleetCode::ExitStatus.as_str().into(),
                        subject: String::new(),
                        message: format!("verify exited {rc} although its report says ok"),
                    });
                } else {
                    status = Status::Ok;
                    confidence = 0.9;
                }
            }
        }
        own_failed[i] = matches!(status, Status::Bad | Status::Error);
        apply_expectations(
            std::mem::take(&mut judged[i]),
            &mut status,
            &mut confidence,
            &mut reasons,
        );
        if status == Status::Ok {
            eligible[i] = true;
        }
        // Multi-node evidence, judged lane by lane (a rail only against tests on that rail).
        let u = i as u32;
        let mut in_tests = 0;
        let mut missing_tests = 0;
        let mut tested = vec![false; lanes.len()];
        for &k in &by_node[i] {
            let (e, w, l) = (&evals[k], &why[k], eval_lane[k]);
            let iso = &lanes[l].isolation;
            in_tests += 1;
            tested[l] = true;
            if e.verdict == Verdict::Missing {
                missing_tests += 1;
            } else if e.verdict == Verdict::Fail && !iso.good[i] && status == Status::Ok {
                let others: Vec<&str> = e
                    .nodes
                    .iter()
                    .filter(|&&m| m != u)
                    .map(|&m| plan.nodes[m as usize].as_str())
                    .collect();
                let subject = match &lanes[l].rail {
                    Some(r) => format!("{r} {}", others.join(",")),
                    None => others.join(","),
                };
                reasons.push(Reason {
                    code: purpose_code(e.purpose).as_str().into(),
                    subject,
                    message: format!("round {}: {w}", e.round),
                });
            }
        }
        evidence.extend(node_files[i].iter().cloned());
        if status == Status::Ok && in_tests > 0 {
            let lanes_tested = || lanes.iter().zip(&tested).filter(|(_, t)| **t).map(|(l, _)| l);
            let confirmed: Vec<&Lane> = lanes_tested()
                .filter(|l| l.isolation.confirmed_bad(u, s.confirm))
                .collect();
            if !confirmed.is_empty() {
                status = Status::Bad;
                let k = confirmed
                    .iter()
                    .map(|l| l.isolation.confirm_fails[i])
                    .max()
                    .unwrap_or(1);
                confidence = 1.0 - 0.1f64.powi(k as i32);
                let mut first = Vec::new();
                for l in &confirmed {
                    let k = l.isolation.confirm_fails[i];
                    first.push(match &l.rail {
                        None => Reason {
                            code: FleetCode::Confirmed.as_str().into(),
                            subject: String::new(),
                            message: format!(
                                "failed {k} confirmation tests with known-good partners and passed none"
                            ),
                        },
                        Some(r) => Reason {
                            code: FleetCode::Rail.as_str().into(),
                            subject: r.clone(),
                            message: format!(
                                "failed {k} confirmation tests on this rail with partners good on it, passed none"
                            ),
                        },
                    });
                }
                reasons.splice(0..0, first);
            } else if lanes_tested().any(|l| l.isolation.failed_any[i] && !l.isolation.good[i]) {
                status = Status::Suspect;
                confidence = 0.5;
            } else if lanes_tested().all(|l| l.isolation.good[i]) {
                confidence = confidence.max(0.95);
            } else if missing_tests == in_tests && confidence == 0.0 {
                status = Status::Missing;
                confidence = 1.0;
                reasons.push(Reason {
                    code: FleetCode::NoResult.as_str().into(),
                    subject: String::new(),
                    message: "no multi-node test result reported".into(),
                });
            } else if missing_tests == in_tests {
                status = Status::Missing;
                confidence = 0.5;
                reasons.push(Reason {
                    code: FleetCode::NoResult.as_str().into(),
                    subject: String::new(),
                    message: "its own checks pass, but its multi-node test reported nothing".into(),
                });
            }
        }
        if status == Status::Ok && confidence == 0.0 {
            // Neither a verify result nor a multi-node pass: never healthy without evidence.
            status = Status::Missing;
            confidence = 1.0;
            if multi && in_tests == 0 {
                reasons.push(Reason {
                    code: FleetCode::NotTested.as_str().into(),
                    subject: String::new(),
                    message: "not yet in any test (run `fleet next`)".into(),
                });
            } else {
                reasons.push(Reason {
                    code: FleetCode::NoResult.as_str().into(),
                    subject: String::new(),
                    message: "no result reported".into(),
                });
            }
        }
        nodes.insert(
            name.clone(),
            NodeResult {
                status,
                confidence: (confidence * 1000.0).round() / 1000.0,
                reasons,
                evidence,
                identity,
                busbw_gbps: node_busbw[i],
            },
        );
    }

    // Links and infrastructure faults, per lane.
    let mut links = Vec::new();
    let mut infra = Vec::new();
    for (k, lane) in lanes.iter().enumerate() {
        let iso = &lane.isolation;
        for (set, fails) in &iso.faults {
            let names: Vec<String> = set.iter().map(|&m| plan.nodes[m as usize].clone()).collect();
            let mut evidence: Vec<String> = evals
                .iter()
                .zip(&eval_lane)
                .zip(&eval_files)
                .filter(|((e, l), _)| **l == k && e.nodes == *set)
                .flat_map(|(_, f)| f.iter().cloned())
                .collect();
            evidence.dedup();
            let f = LinkFault {
                nodes: names,
                failures: *fails,
                evidence,
                rail: lane.rail.clone(),
                probes: Vec::new(),
            };
            if set.len() == 2 {
                links.push(f)
            } else {
                infra.push(f)
            }
        }
        for (set, failed) in &iso.boundary {
            let name =
                |s: &[u32]| -> Vec<String> { s.iter().map(|&m| plan.nodes[m as usize].clone()).collect() };
            let mut evidence: Vec<String> = evals
                .iter()
                .zip(&eval_lane)
                .zip(&eval_files)
                .filter(|((e, l), _)| **l == k && (e.nodes == *set || failed.contains(&e.nodes)))
                .flat_map(|(_, f)| f.iter().cloned())
                .collect();
            evidence.dedup();
            infra.push(LinkFault {
                nodes: name(set),
                failures: 1 + failed.len() as u32,
                evidence,
                rail: lane.rail.clone(),
                probes: failed.iter().map(|p| name(p)).collect(),
            });
        }
        for set in &iso.transient {
            let names: Vec<&str> = set.iter().map(|&m| plan.nodes[m as usize].as_str()).collect();
            let on = lane
                .rail
                .as_ref()
                .map(|r| format!(" on rail {r}"))
                .unwrap_or_default();
            notes.push(format!(
                "transient: {}{on} failed once and passed on a retest",
                names.join(",")
            ));
        }
    }

    let drift = consensus(plan, outcomes, interner, opts.consensus, &own_failed, &mut nodes);
    identity_duplicates(&mut nodes, &mut notes);

    let mut summary = Summary {
        nodes: n,
        tests: outcomes.len(),
        tests_failed: failed_tests,
        rounds: plan.rounds.len(),
        links: links.len(),
        infra: infra.len(),
        ..Default::default()
    };
    for r in nodes.values() {
        match r.status {
            Status::Ok => summary.ok += 1,
            Status::Bad => summary.bad += 1,
            Status::Suspect => summary.suspect += 1,
            Status::Missing => summary.missing += 1,
            Status::Error => summary.error += 1,
        }
    }
    for o in outcomes {
        if let Some(t) = plan.round(o.round).and_then(|r| r.tests.get(o.test))
            && t.kind == TestKind::Verify
            && let Some(r) = t.nodes.first().and_then(|x| nodes.get(x))
            && matches!(r.status, Status::Bad | Status::Error)
        {
            summary.tests_failed += 1;
        }
    }
    let result = FleetResult {
        schema: FLEET_SCHEMA,
        nccltune_version: env!("CARGO_PKG_VERSION").into(),
        plan: opts.plan_label.clone(),
        nodes,
        links,
        infra,
        drift,
        notes,
        summary,
    };
    Merged {
        result,
        evals,
        eval_lane,
        lanes,
        eligible,
    }
}

/// Each reporting node's judgements against `--expect`; rules no node's report carries a
/// value for are dropped with a note (the reports cannot show them), not held against
/// every node.
fn judge_expectations(
    golden: Option<&super::expect::Golden>,
    verify: &[VerifyState],
    interner: &Interner,
    notes: &mut Vec<String>,
) -> Vec<Vec<Judgement>> {
    let mut out: Vec<Vec<Judgement>> = vec![Vec::new(); verify.len()];
    let Some(g) = golden else { return out };
    let mut cache = HashMap::new();
    let mut unseen = vec![0usize; g.rules()];
    let mut reporting = 0;
    for (i, v) in verify.iter().enumerate() {
        if let VerifyState::Summary(sum, _, _) = v {
            reporting += 1;
            out[i] = g.judge(sum, interner, &mut cache);
            for j in &out[i] {
                if let Judgement::Unseen { rule, .. } = j {
                    unseen[*rule] += 1;
                }
            }
        }
    }
    let blind: Vec<bool> = unseen.iter().map(|&u| reporting > 0 && u == reporting).collect();
    for (r, _) in blind.iter().enumerate().filter(|(_, b)| **b) {
        notes.push(format!(
            "{}: {} is not judged: no node's report carries its value (run verify with --expect {} on the nodes, e.g. --check-args '--expect FILE')",
            g.source,
            g.describe(r),
            g.source
        ));
    }
    for j in &mut out {
        j.retain(|x| !matches!(x, Judgement::Unseen { rule, .. } if blind[*rule]));
    }
    out
}

/// Mismatches make an ok node bad and are added to a bad node's reasons (once per code and
/// subject); unseen expected values make an ok node suspect.
fn apply_expectations(
    j: Vec<Judgement>,
    status: &mut Status,
    confidence: &mut f64,
    reasons: &mut Vec<Reason>,
) {
    let mut mismatched = false;
    let mut unseen = Vec::new();
    for x in j {
        match x {
            Judgement::Mismatch {
                code,
                subject,
                message,
            } => {
                mismatched = true;
                if !reasons.iter().any(|r| r.code == code && r.subject == subject) {
                    reasons.push(Reason {
                        code,
                        subject,
                        message,
                    });
                }
            }
            Judgement::Unseen { code, subject, .. } => unseen.push(format!("{code} {subject}")),
        }
    }
    if mismatched && *status == Status::Ok {
        *status = Status::Bad;
        *confidence = 1.0;
    } else if !unseen.is_empty() && *status == Status::Ok {
        *status = Status::Suspect;
        *confidence = 0.5;
        reasons.push(Reason {
            code: FleetCode::ExpectUnseen.as_str().into(),
            subject: String::new(),
            message: format!("expected but not in its report: {}", unseen.join(", ")),
        });
    }
}

fn purpose_code(p: Purpose) -> FleetCode {
    match p {
        Purpose::Verify | Purpose::Screen => FleetCode::ScreenFailed,
        Purpose::Bisect => FleetCode::BisectFailed,
        Purpose::Confirm => FleetCode::ConfirmFailed,
        Purpose::Retest => FleetCode::RetestFailed,
        Purpose::Probe => FleetCode::ProbeFailed,
    }
}

/// Per (code, subject): the majority value among reporting nodes, and the nodes that differ.
/// Schema 2 compares the typed `observed` value; schema 1 has none, so its level is compared.
fn consensus(
    plan: &Plan,
    outcomes: &[TestOutcome],
    interner: &Interner,
    mark: bool,
    own_failed: &[bool],
    nodes: &mut BTreeMap<String, NodeResult>,
) -> Vec<Drift> {
    // key -> value -> nodes
    let mut table: HashMap<u32, HashMap<(bool, u32), Vec<u32>>> = HashMap::new();
    let mut latest: HashMap<&str, (&TestOutcome, u32)> = HashMap::new();
    for o in outcomes {
        let Some(t) = plan.round(o.round).and_then(|r| r.tests.get(o.test)) else {
            continue;
        };
        if t.kind != TestKind::Verify {
            continue;
        }
        if let Some(name) = t.nodes.first() {
            latest.insert(name.as_str(), (o, o.round));
        }
    }
    let names: Vec<&str> = plan.nodes.iter().map(String::as_str).collect();
    for (i, name) in names.iter().enumerate() {
        let Some((o, _)) = latest.get(name) else { continue };
        let Output::Verify(sum) = &o.output else { continue };
        for c in &sum.cells {
            let v = match c.observed {
                Some(id) => (true, id),
                None => (false, c.level as u32),
            };
            table
                .entry(c.key)
                .or_default()
                .entry(v)
                .or_default()
                .push(i as u32);
        }
    }
    let mut drift = Vec::new();
    let mut keys: Vec<u32> = table.keys().copied().collect();
    keys.sort_by(|a, b| interner.get(*a).cmp(interner.get(*b)));
    let level_name = |x: u32| -> &'static str {
        [Level::Pass, Level::Skip, Level::Info, Level::Warn, Level::Fail]
            .into_iter()
            .find(|l| *l as u32 == x)
            .map(Level::as_str)
            .unwrap_or("?")
    };
    let to_json = |(typed, id): (bool, u32)| -> serde_json::Value {
        if typed {
            serde_json::from_str(interner.get(id)).unwrap_or(serde_json::Value::Null)
        } else {
            serde_json::Value::String(level_name(id).into())
        }
    };
    for k in keys {
        let vals = &table[&k];
        if vals.len() < 2 {
            continue;
        }
        let mut v: Vec<(&(bool, u32), &Vec<u32>)> = vals.iter().collect();
        v.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
        let (maj, maj_nodes) = v[0];
        let key = interner.get(k);
        let (code, subject) = key.split_once('\u{1f}').unwrap_or((key, ""));
        // Nodes that already fail their own checks are reported there; drift is for the rest
        // (a node bad only by --expect stays listed: its value is still drift).
        let others: Vec<DriftValue> = v[1..]
            .iter()
            .map(|(val, ns)| DriftValue {
                value: to_json(**val),
                nodes: ns
                    .iter()
                    .filter(|&&i| !own_failed[i as usize])
                    .map(|&i| names[i as usize].to_string())
                    .collect(),
            })
            .filter(|d| !d.nodes.is_empty())
            .collect();
        if others.is_empty() {
            continue;
        }
        if mark {
            for o in &others {
                for nname in &o.nodes {
                    if let Some(r) = nodes.get_mut(nname) {
                        if r.status == Status::Ok {
                            r.status = Status::Suspect;
                            r.confidence = 0.5;
                        }
                        r.reasons.push(Reason {
                            code: FleetCode::Drift.as_str().into(),
                            subject: format!("{code} {subject}"),
                            message: format!(
                                "{} where {} of the fleet has {}",
                                o.value,
                                maj_nodes.len(),
                                to_json(*maj)
                            ),
                        });
                    }
                }
            }
        }
        drift.push(Drift {
            code: code.into(),
            subject: subject.into(),
            compared: if maj.0 { "observed" } else { "level" }.into(),
            majority: to_json(*maj),
            majority_nodes: maj_nodes.len(),
            others,
        });
    }
    drift
}

/// Two node names reporting one machine (same machine-id or DMI serial): a host name reused or
/// a result filed under the wrong name. Both become suspect.
fn identity_duplicates(nodes: &mut BTreeMap<String, NodeResult>, notes: &mut Vec<String>) {
    let mut seen: HashMap<(u8, String), String> = HashMap::new();
    let mut dups: Vec<(String, String, &'static str)> = Vec::new();
    for (name, r) in nodes.iter() {
        let Some(id) = &r.identity else { continue };
        for (tag, label, v) in [
            (0u8, "machine_id", &id.machine_id),
            (1, "dmi_product_serial", &id.dmi_product_serial),
            (2, "dmi_product_uuid", &id.dmi_product_uuid),
        ] {
            let Some(v) = v else { continue };
            if v.is_empty() {
                continue;
            }
            if let Some(other) = seen.insert((tag, v.clone()), name.clone()) {
                dups.push((other, name.clone(), label));
            }
        }
    }
    for (a, b, label) in dups {
        notes.push(format!("{a} and {b} report the same {label}: one machine under two names, or a result filed under the wrong node"));
        for n in [&a, &b] {
            if let Some(r) = nodes.get_mut(n) {
                if r.status == Status::Ok {
                    r.status = Status::Suspect;
                    r.confidence = 0.5;
                }
                r.reasons.push(Reason {
                    code: FleetCode::Identity.as_str().into(),
                    subject: label.into(),
                    message: format!("same {label} as {}", if n == &a { &b } else { &a }),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::plan::{Check, Launcher, Settings};
    use crate::fleet::results::{Output, TestOutcome};
    use crate::fleet::rounds::{PlanOptions, new_plan};
    use crate::fleet::verify_json;

    fn report(driver: &str, machine: &str) -> String {
        format!(
            r#"{{"schema":2,"identity":{{"hostname":"h","machine_id":"{machine}"}},"checks":[
            {{"code":"software.driver","level":"pass","subject":"node","message":"m","observed":{{"version":"{driver}"}},"expected":null,"evidence":[],"fix":null}}],"ok":true}}"#
        )
    }

    #[test]
    fn consensus_compares_typed_values_and_flags_reused_identities() {
        let plan = new_plan(PlanOptions {
            nodes: crate::fleet::nodeset::expand("n[1-4]").expect("nodes"),
            checks: vec![Check::Verify],
            launcher: Launcher::Srun,
            seed: 1,
            settings: Settings::default(),
            rounds: None,
            topology: Default::default(),
        })
        .expect("plan");
        let mut interner = Interner::default();
        let reports = [
            report("550.90.07", "a"),
            report("550.90.07", "b"),
            report("535.54.03", "c"),
            report("550.90.07", "a"),
        ];
        let mut outcomes: Vec<TestOutcome> = reports
            .iter()
            .enumerate()
            .map(|(i, r)| TestOutcome {
                round: 1,
                test: i,
                rc: Some(0),
                output: Output::Verify(Box::new(
                    verify_json::read(r.as_bytes(), "r", &mut interner).expect("report"),
                )),
                files: vec![],
            })
            .collect();
        let opts = MergeOptions {
            consensus: true,
            plan_label: "p".into(),
            ..Default::default()
        };
        let m = merge(&plan, &outcomes, &interner, &opts);
        let d = &m.result.drift[0];
        assert_eq!(
            (d.code.as_str(), d.compared.as_str(), d.majority_nodes),
            ("software.driver", "observed", 3)
        );
        assert_eq!(d.others[0].nodes, vec!["n3".to_string()]);
        assert_eq!(d.others[0].value["version"], "535.54.03");
        assert_eq!(m.result.nodes["n3"].status, Status::Suspect);
        // n1 and n4 report one machine-id.
        assert_eq!(m.result.nodes["n1"].status, Status::Suspect);
        assert_eq!(m.result.nodes["n2"].status, Status::Ok);
        // Without --consensus drift is listed, not judged; a lost result is missing.
        outcomes.truncate(3);
        let m = merge(&plan, &outcomes, &interner, &MergeOptions::default());
        assert_eq!(m.result.nodes["n3"].status, Status::Ok);
        assert_eq!(m.result.drift.len(), 1);
        assert_eq!(m.result.nodes["n4"].status, Status::Missing);
    }

    /// `rails`: each pair once per rail; a rail slow on one node only is that node's rail
    /// (bad, `fleet.rail` with the rail as subject), not the node's other rails nor its partners.
    #[test]
    fn a_slow_rail_is_that_nodes_rail() {
        let mut plan = new_plan(PlanOptions {
            nodes: crate::fleet::nodeset::expand("n[1-12]").expect("nodes"),
            checks: vec![Check::Rails],
            launcher: Launcher::Srun,
            seed: 4,
            settings: Settings {
                rails: vec!["mlx5_0".into(), "mlx5_3".into()],
                target_busbw_gbps: Some(96.0),
                ..Default::default()
            },
            rounds: None,
            topology: Default::default(),
        })
        .expect("plan");
        assert_eq!(plan.rounds[0].tests.len(), 12, "6 pairs x 2 rails");
        assert!(plan.rounds[0].tests.iter().all(|t| t.env["NCCL_IB_HCA"]
            == format!("={}", t.rail.as_deref().unwrap_or("?"))
            && t.expected_busbw_gbps == Some(48.0)));
        let interner = Interner::default();
        let mut outcomes = Vec::new();
        let opts = MergeOptions::default();
        loop {
            let r = plan.rounds.last().expect("round");
            for (k, t) in r.tests.iter().enumerate() {
                let slow = t.rail.as_deref() == Some("mlx5_3") && t.nodes.iter().any(|x| x == "n7");
                outcomes.push(TestOutcome {
                    round: r.index,
                    test: k,
                    rc: Some(0),
                    output: Output::Busbw(if slow { 20.0 } else { 47.0 }),
                    files: vec![],
                });
            }
            let m = merge(&plan, &outcomes, &interner, &opts);
            match crate::fleet::rounds::next_round(&plan, &m) {
                Some(next) => {
                    // Never one node in two tests of one rail at once.
                    for rail in ["mlx5_0", "mlx5_3"] {
                        let mut seen = std::collections::HashSet::new();
                        for t in next.tests.iter().filter(|t| t.rail.as_deref() == Some(rail)) {
                            assert!(t.nodes.iter().all(|x| seen.insert(x.clone())), "{rail}");
                        }
                    }
                    plan.rounds.push(next)
                }
                None => break,
            }
        }
        let m = merge(&plan, &outcomes, &interner, &opts);
        let bad: Vec<&String> = m
            .result
            .nodes
            .iter()
            .filter(|(_, r)| r.status != Status::Ok)
            .map(|(k, _)| k)
            .collect();
        assert_eq!(bad, ["n7"], "{:#?}", m.result.nodes);
        let r = &m.result.nodes["n7"].reasons[0];
        assert_eq!((r.code.as_str(), r.subject.as_str()), ("fleet.rail", "mlx5_3"));
        assert_eq!(plan.rounds.len(), 3);
        assert!(m.result.links.is_empty());
    }

    /// fleet.json for a boundary fault: the group in `infra` with its failing probes, no
    /// node blamed, no link.
    #[test]
    fn a_failing_cross_boundary_probe_is_an_infrastructure_fault() {
        let mut plan = new_plan(PlanOptions {
            nodes: crate::fleet::nodeset::expand("n[1-24]").expect("nodes"),
            checks: vec![Check::Groups],
            launcher: Launcher::Srun,
            seed: 2,
            settings: Settings {
                group_size: 6,
                target_busbw_gbps: Some(100.0),
                ..Default::default()
            },
            rounds: None,
            topology: Default::default(),
        })
        .expect("plan");
        let g = plan.rounds[0].tests[1].nodes.clone();
        let (lo, hi) = g.split_at(3);
        let (lo, hi) = (lo.to_vec(), hi.to_vec());
        let interner = Interner::default();
        let mut outcomes = Vec::new();
        let opts = MergeOptions::default();
        loop {
            let r = plan.rounds.last().expect("round");
            for (k, t) in r.tests.iter().enumerate() {
                let across = t.nodes.iter().any(|n| lo.contains(n)) && t.nodes.iter().any(|n| hi.contains(n));
                outcomes.push(TestOutcome {
                    round: r.index,
                    test: k,
                    rc: Some(0),
                    output: Output::Busbw(if across { 30.0 } else { 95.0 }),
                    files: vec![format!("results/r{}/{}.txt", r.index, t.id)],
                });
            }
            let m = merge(&plan, &outcomes, &interner, &opts);
            match crate::fleet::rounds::next_round(&plan, &m) {
                Some(next) => plan.rounds.push(next),
                None => break,
            }
        }
        let m = merge(&plan, &outcomes, &interner, &opts);
        assert!(
            m.result.nodes.values().all(|r| r.status == Status::Ok),
            "{:#?}",
            m.result.nodes
        );
        assert_eq!(m.result.infra.len(), 1, "{:#?}", m.result.infra);
        let f = &m.result.infra[0];
        assert_eq!(f.nodes, g);
        assert_eq!(f.probes.len(), 2);
        assert!(
            f.evidence.iter().any(|e| e.starts_with("results/r3/")),
            "{:?}",
            f.evidence
        );
        assert!(m.result.links.is_empty());
        assert_eq!(plan.rounds.len(), 3, "screen, bisect, probe");
        assert!(plan.rounds[2].tests.iter().all(|t| t.purpose == Purpose::Probe));
    }
}
