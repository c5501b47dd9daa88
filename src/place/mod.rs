//! `place`: assigns GPUs to tensor-parallel (TP) groups and pipeline-parallel (PP) stages of
//! model replicas on a cluster of nodes in racks (and, on GB200 NVL72-style systems, trays in
//! multi-node NVLink domains), and estimates what each choice costs.
//!
//! Plain values in ([`Cluster`], [`Options`]), one [`PlaceReport`] out; renderers live in
//! `render::place`. Goals, in order (compared lexicographically, see `search::Score`):
//! 1. no TP group split across nodes — or, where the cluster names NVLink domains, across
//!    domains (a group may span trays inside one) — while a placement without the split exists;
//! 2. then every replica's pipeline inside one rack when possible;
//! 3. then fragment least: break no whole free rack, then no whole free node, when partly used
//!    ones fit the group.
//!
//! The search works on "slots" (an island — node or domain — with `f` free GPUs holds `f / tp`
//! whole TP groups): phase 1 places replicas whose stages all sit in slots of one rack, partly
//! used racks and islands before whole ones; phase 2 (when pipelines may cross racks) combines
//! the slots left in several racks, inside one pod first; only then, when slots run out,
//! phase 3 builds TP groups that span islands (a replica in one rack, then groups inside racks,
//! then groups across racks), from islands too small for a slot first. Each step is a bucket
//! pop or a B-tree update, so the cost grows about linearly with nodes plus replicas.
//!
//! Greedy choices are not always best on a partly used cluster, so `place` runs a few
//! candidates — this search with two tie-break policies and the article's first-fit — scores
//! each by the goals above and keeps the best (the first on a tie). The result is therefore
//! never worse than first-fit on goals 1-3, and the report names the candidate it kept.

pub mod cluster;
pub mod cost;
mod search;

use crate::finding::PlaceCode;
use crate::finding::{Finding, Severity};
pub use cluster::Cluster;
use cluster::NvlinkGen;
use cost::{GroupShape, Intra, Links};
use search::{Engine, Placed, Policy, Score};
use serde::Serialize;
use std::cmp::Reverse;

/// How far a group may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    IntraNode,
    /// Across trays of one multi-node NVLink domain.
    IntraDomain,
    IntraRack,
    CrossRack,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::IntraNode => "intra_node",
            Scope::IntraDomain => "intra_domain",
            Scope::IntraRack => "intra_rack",
            Scope::CrossRack => "cross_rack",
        }
    }
    /// The value of `--tp-within` / `--pp-within` that names this scope.
    pub fn flag(self) -> &'static str {
        match self {
            Scope::IntraNode => "node",
            Scope::IntraDomain => "domain",
            Scope::IntraRack => "rack",
            Scope::CrossRack => "any",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Replicas {
    Exactly(usize),
    Max,
}

/// The latency-budget view: at `tokens_per_s` per replica, what share of each decode step the
/// TP all-reduces take.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BudgetOptions {
    pub tokens_per_s: f64,
    /// Transformer layers of the model (split evenly over the pipeline stages).
    pub layers: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub tp: u32,
    pub pp: u32,
    pub replicas: Replicas,
    /// The widest scope a TP group may have (`IntraNode` = refuse to split a group).
    pub tp_within: Scope,
    /// The widest scope a replica's pipeline may have.
    pub pp_within: Scope,
    pub message_bytes: u64,
    /// How the message size was chosen, for the report.
    pub message_source: String,
    pub links: Links,
    pub budget: Option<BudgetOptions>,
}

// ---------------------------------------------------------------------------------------------
// Report model

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaceReport {
    pub schema: u32,
    /// `nccltune_version` and `generated_at`.
    #[serde(flatten)]
    pub meta: crate::render::meta::Meta,
    pub request: RequestEcho,
    pub cluster: ClusterSummary,
    pub message_bytes: u64,
    pub message_source: String,
    pub replicas: Vec<ReplicaOut>,
    /// Requested replicas that could not be placed (0 with `--max-replicas`).
    pub unplaced_replicas: usize,
    /// True when every requested replica was placed (with `--max-replicas`: at least one).
    pub feasible: bool,
    /// Why the request could not be met, one sentence each.
    pub reasons: Vec<String>,
    /// What could be placed instead.
    pub alternatives: Vec<String>,
    pub warnings: Vec<Finding>,
    pub summary: Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetOut>,
    pub cost_model: CostModel,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestEcho {
    pub tp: u32,
    pub pp: u32,
    pub replicas: Replicas,
    pub tp_within: Scope,
    pub pp_within: Scope,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterSummary {
    pub source: String,
    pub nodes: usize,
    pub racks: usize,
    /// Multi-node NVLink domains the cluster file names (0 when none).
    pub nvlink_domains: usize,
    pub gpus: u64,
    pub free_gpus_before: u64,
    pub free_gpus_after: u64,
    pub whole_free_nodes_before: usize,
    pub whole_free_nodes_after: usize,
    pub whole_free_racks_before: usize,
    pub whole_free_racks_after: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub placed_replicas: usize,
    pub tp_groups_intra_node: usize,
    /// Groups across trays of one NVLink domain: still all NVLink.
    pub tp_groups_intra_domain: usize,
    /// Groups whose all-reduce crosses the network (split across nodes or domains).
    pub tp_groups_spanning_nodes: usize,
    pub replicas_intra_rack: usize,
    pub replicas_cross_rack: usize,
    pub max_allreduce_us: Option<f64>,
    /// The candidate kept: `search`, `search-compact` or `first-fit` (see the module notes).
    pub strategy: String,
    /// The goals as numbers, for the kept placement: TP groups split, pipelines across racks,
    /// whole racks and whole nodes broken.
    pub goals: Goals,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goals {
    pub split_tp_groups: usize,
    pub cross_rack_pipelines: usize,
    pub whole_racks_broken: usize,
    pub whole_nodes_broken: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaOut {
    pub replica: usize,
    pub pp_scope: Scope,
    pub racks: Vec<String>,
    /// The pods (or spine groups) of those racks, when the cluster file names them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<String>,
    pub stages: Vec<StageOut>,
    /// Per node, in order of first rank: the ranks it runs and the `CUDA_VISIBLE_DEVICES`
    /// to start them with (local rank i uses the i-th listed GPU).
    pub hosts: Vec<HostOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allreduce_us_per_token: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageOut {
    pub stage: usize,
    pub tp_scope: Scope,
    /// Estimated time of one all-reduce of the message size over this group (`null` when a
    /// node in it has no NIC).
    pub allreduce_us: Option<f64>,
    pub protocol: String,
    pub bus_gbytes_per_s: f64,
    /// What carries the group inside a node or domain: `nvlink-<generation>` or `pcie-gen<g>x<w>`.
    pub link: String,
    pub gpus: Vec<GpuRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuRef {
    pub node: String,
    pub gpu: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostOut {
    pub node: String,
    pub rack: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvlink_domain: Option<String>,
    pub ranks: Vec<u32>,
    pub cuda_visible_devices: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetOut {
    pub tokens_per_s: f64,
    pub layers: u32,
    pub step_budget_us: f64,
    pub allreduces_per_layer: u32,
    pub source: String,
    pub worst_share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostModel {
    pub note: String,
    pub links: Links,
}

const MODEL_NOTE: &str = "Estimates are an alpha-beta ring all-reduce model shaped like NCCL's \
own (src/graph/tuning.cc at NCCL 2.30.7), for comparing placements. They do not predict NVLS (NVLink SHARP, \
NCCL's default all-reduce on NVSwitch H100 nodes), IB SHARP/CollNet, Tree or NVLSTree results; \
measure with nccl-tests.";

const BUDGET_SOURCE: &str = "two all-reduces per transformer layer in the forward pass with \
Megatron-style tensor parallelism (Shoeybi et al., Megatron-LM, 2019, section 3; cited from \
memory); pipeline point-to-point sends and compute are not counted";

// ---------------------------------------------------------------------------------------------
// Entry point

/// Places the request on the cluster and builds the report.
pub fn place(c: &Cluster, o: &Options) -> PlaceReport {
    let t = o.tp.max(1);
    let p = o.pp.max(1);
    let per_replica = u64::from(t) * u64::from(p);
    let free_before = c.free_gpus();
    let target = match o.replicas {
        Replicas::Exactly(n) => n,
        Replicas::Max => usize::try_from(free_before / per_replica).unwrap_or(usize::MAX),
    };
    let (mut placed, free_after, best, strategy) = best_candidate(c, o, t, p, target);
    // Ranks of a group in node order (file order), GPUs ascending: a group over several trays
    // or nodes then reads as consecutive blocks per host.
    for g in placed.iter_mut().flatten() {
        g.sort_unstable();
    }

    let mut warnings = Vec::new();
    let max_gpus = c.nodes.iter().map(|n| n.gpus).max().unwrap_or(0);
    let max_island = max_island_gpus(c);

    let replicas: Vec<ReplicaOut> = placed
        .iter()
        .enumerate()
        .map(|(i, stages)| replica_out(c, o, i, stages))
        .collect();

    let unplaced = match o.replicas {
        Replicas::Exactly(n) => n.saturating_sub(replicas.len()),
        Replicas::Max => 0,
    };
    let feasible = unplaced == 0 && !replicas.is_empty();

    // Why not, and what instead.
    let (reasons, alternatives) = if feasible {
        (Vec::new(), Vec::new())
    } else {
        let mut after = c.clone();
        for (n, f) in after.nodes.iter_mut().zip(&free_after) {
            n.free = *f;
        }
        let domains =
            !c.domains.is_empty() && o.tp_within >= Scope::IntraDomain && o.pp_within != Scope::IntraNode;
        let eng = Engine::new(&after, t, p, domains, Policy::KeepWhole);
        explain(c, o, &eng, replicas.len(), target)
    };

    // Warnings.
    if t > max_island && o.tp_within > Scope::IntraDomain {
        let what = if c.domains.is_empty() {
            format!("every node (the largest has {max_gpus} GPUs)")
        } else {
            format!("every node and NVLink domain (the largest holds {max_island} GPUs)")
        };
        warnings.push(
            Finding::new(
                PlaceCode::TpExceedsNode,
                Severity::Warn,
                format!("tp {t} exceeds {what}: every TP all-reduce crosses the network"),
            )
            .fix("use a tp that divides the GPUs per node and raise pp instead"),
        );
    }
    let spanning: usize = replicas
        .iter()
        .flat_map(|r| &r.stages)
        .filter(|s| s.tp_scope > Scope::IntraDomain)
        .count();
    let in_domain: usize = replicas
        .iter()
        .flat_map(|r| &r.stages)
        .filter(|s| s.tp_scope == Scope::IntraDomain)
        .count();
    let intra: usize = replicas.iter().map(|r| r.stages.len()).sum::<usize>() - spanning - in_domain;
    if spanning > 0 {
        let unit = if c.domains.is_empty() {
            "nodes"
        } else {
            "nodes and NVLink domains"
        };
        warnings.push(
            Finding::new(
                PlaceCode::TpGroupSpansNodes,
                Severity::Warn,
                format!(
                    "{spanning} TP group(s) are split across {unit}: their all-reduces run over the network instead of NVLink"
                ),
            )
            .fix("free whole nodes, or lower tp"),
        );
    }
    if in_domain > 0 {
        let bus = replicas
            .iter()
            .flat_map(|r| &r.stages)
            .find(|s| s.tp_scope == Scope::IntraDomain)
            .map(|s| (s.bus_gbytes_per_s, s.link.clone()));
        if let Some((bus, link)) = bus {
            warnings.push(Finding::new(
                PlaceCode::TpGroupInNvlinkDomain,
                Severity::Info,
                format!(
                    "{in_domain} TP group(s) span trays inside one NVLink domain: their all-reduces stay on NVLink ({link}, {bus} GB/s ring bus bandwidth by NCCL's model); estimated as one NVLink system, as NCCL fuses an MNNVL clique's topology (src/graph/topo.cc at NCCL v2.30.7); NVLS/NVLink SHARP is not modelled"
                ),
            ));
        }
    }
    let cross: usize = replicas.iter().filter(|r| r.pp_scope == Scope::CrossRack).count();
    if cross > 0 {
        warnings.push(
            Finding::new(
                PlaceCode::PipelineCrossesRacks,
                Severity::Warn,
                format!("{cross} replica(s) have pipeline stages in more than one rack"),
            )
            .fix("free GPUs inside one rack, or --pp-within rack to refuse this"),
        );
    }
    let cross_pod = replicas.iter().filter(|r| r.pods.len() > 1).count();
    if cross_pod > 0 {
        warnings.push(Finding::new(
            PlaceCode::PipelineCrossesPods,
            Severity::Warn,
            format!("{cross_pod} replica(s) have pipeline stages in more than one pod"),
        ));
    }
    if replicas
        .iter()
        .flat_map(|r| &r.stages)
        .any(|s| s.tp_scope == Scope::CrossRack)
    {
        warnings.push(Finding::new(
            PlaceCode::CrossRackLatencyAssumed,
            Severity::Info,
            format!(
                "cross-rack all-reduce estimates add {} us per rack-crossing step: {}",
                o.links.cross_rack.extra_hop_us, o.links.cross_rack.source
            ),
        ));
    }
    if replicas
        .iter()
        .flat_map(|r| &r.stages)
        .any(|s| s.allreduce_us.is_none())
    {
        warnings.push(Finding::new(
            PlaceCode::NoNic,
            Severity::Warn,
            "a TP group spans a node whose cluster entry says nics = 0: it cannot communicate across nodes",
        ));
    }

    let whole_nodes = |free: &[u128]| {
        c.nodes
            .iter()
            .zip(free)
            .filter(|(n, f)| f.count_ones() == n.gpus)
            .count()
    };
    let whole_racks = |free: &[u128]| {
        let mut whole = vec![true; c.racks.len()];
        for (i, n) in c.nodes.iter().enumerate() {
            whole[n.rack] &= free[i].count_ones() == n.gpus;
        }
        whole.iter().filter(|&&w| w).count()
    };
    let before: Vec<u128> = c.nodes.iter().map(|n| n.free).collect();
    let budget = o.budget.map(|b| BudgetOut {
        tokens_per_s: b.tokens_per_s,
        layers: b.layers,
        step_budget_us: 1e6 / b.tokens_per_s,
        allreduces_per_layer: 2,
        source: BUDGET_SOURCE.into(),
        worst_share: replicas
            .iter()
            .filter_map(|r| r.budget_share)
            .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x)))),
    });
    let max_allreduce_us = replicas
        .iter()
        .flat_map(|r| &r.stages)
        .filter_map(|s| s.allreduce_us)
        .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))));
    let summary = Summary {
        placed_replicas: replicas.len(),
        tp_groups_intra_node: intra,
        tp_groups_intra_domain: in_domain,
        tp_groups_spanning_nodes: spanning,
        replicas_intra_rack: replicas.len() - cross,
        replicas_cross_rack: cross,
        max_allreduce_us,
        strategy: strategy.into(),
        goals: Goals {
            split_tp_groups: best.split_groups,
            cross_rack_pipelines: best.cross_rack,
            whole_racks_broken: best.racks_broken,
            whole_nodes_broken: best.nodes_broken,
        },
    };
    PlaceReport {
        schema: 1,
        meta: crate::render::meta::Meta::now(),
        request: RequestEcho {
            tp: t,
            pp: p,
            replicas: o.replicas,
            tp_within: o.tp_within,
            pp_within: o.pp_within,
        },
        cluster: ClusterSummary {
            source: c.source.clone(),
            nodes: c.nodes.len(),
            racks: c.racks.len(),
            nvlink_domains: c.domains.len(),
            gpus: c.total_gpus(),
            free_gpus_before: free_before,
            free_gpus_after: free_after.iter().map(|f| u64::from(f.count_ones())).sum(),
            whole_free_nodes_before: whole_nodes(&before),
            whole_free_nodes_after: whole_nodes(&free_after),
            whole_free_racks_before: whole_racks(&before),
            whole_free_racks_after: whole_racks(&free_after),
        },
        message_bytes: o.message_bytes,
        message_source: o.message_source.clone(),
        replicas,
        unplaced_replicas: unplaced,
        feasible,
        reasons,
        alternatives,
        warnings,
        summary,
        budget,
        cost_model: CostModel {
            note: MODEL_NOTE.into(),
            links: o.links.clone(),
        },
    }
}

/// The largest NVLink island: a node, or a domain's trays together.
fn max_island_gpus(c: &Cluster) -> u32 {
    let mut dom = vec![0u32; c.domains.len()];
    let mut max = 0;
    for n in &c.nodes {
        max = max.max(n.gpus);
        if let Some(d) = n.domain {
            dom[d] += n.gpus;
        }
    }
    dom.into_iter().fold(max, u32::max)
}

/// The scope of a set of GPUs: one node, one NVLink domain, one rack, or more.
fn scope_of_gpus(c: &Cluster, g: &[(usize, u32)]) -> Scope {
    let Some(&(first, _)) = g.first() else {
        return Scope::IntraNode;
    };
    let n0 = &c.nodes[first];
    if g.iter().all(|&(n, _)| n == first) {
        Scope::IntraNode
    } else if n0.domain.is_some() && g.iter().all(|&(n, _)| c.nodes[n].domain == n0.domain) {
        Scope::IntraDomain
    } else if g.iter().all(|&(n, _)| c.nodes[n].rack == n0.rack) {
        Scope::IntraRack
    } else {
        Scope::CrossRack
    }
}

/// Runs the candidates and keeps the best by [`Score`] among those within the limits.
fn best_candidate(
    c: &Cluster,
    o: &Options,
    t: u32,
    p: u32,
    target: usize,
) -> (Vec<Placed>, Vec<u128>, Score, &'static str) {
    // Groups may span a domain's trays unless they are held to one node; a replica held to
    // one node needs node islands.
    let domains =
        !c.domains.is_empty() && o.tp_within >= Scope::IntraDomain && o.pp_within != Scope::IntraNode;
    let within = |placed: &[Placed]| {
        placed.iter().all(|rep| {
            rep.iter().all(|g| scope_of_gpus(c, g) <= o.tp_within)
                && scope_of_gpus(c, &rep.iter().flatten().copied().collect::<Vec<_>>()) <= o.pp_within
        })
    };
    let mut best: Option<(Score, Vec<Placed>, Vec<u128>, &'static str)> = None;
    let mut consider = |sc: Score, placed: Vec<Placed>, free: Vec<u128>, name: &'static str| {
        if best.as_ref().is_none_or(|b| sc < b.0) {
            best = Some((sc, placed, free, name));
        }
    };
    for (name, policy) in [("search", Policy::KeepWhole), ("search-compact", Policy::Compact)] {
        let mut eng = Engine::new(c, t, p, domains, policy);
        let placed = eng.run(target, o.tp_within, o.pp_within);
        let sc = search::score(c, &placed, target, &eng.free);
        consider(sc, placed, eng.free, name);
    }
    let (ff, ff_free) = search::first_fit(c, t, p, target);
    if within(&ff) {
        let sc = search::score(c, &ff, target, &ff_free);
        consider(sc, ff, ff_free, "first-fit");
    }
    match best {
        Some((sc, placed, free, name)) => (placed, free, sc, name),
        None => (
            Vec::new(),
            c.nodes.iter().map(|n| n.free).collect(),
            Score::default(),
            "search",
        ),
    }
}

/// Why a request was not met (one sentence each) and what could be placed instead, from the
/// engine's state after placing `placed` replicas.
fn explain(
    c: &Cluster,
    o: &Options,
    eng: &Engine,
    placed: usize,
    target: usize,
) -> (Vec<String>, Vec<String>) {
    let t = o.tp.max(1);
    let p = o.pp.max(1);
    let per_replica = u64::from(t) * u64::from(p);
    let free_before = c.free_gpus();
    let free_after = &eng.free;
    let max_gpus = c.nodes.iter().map(|n| n.gpus).max().unwrap_or(0);
    let mut reasons = Vec::new();
    let mut alternatives = Vec::new();
    let wanted = match o.replicas {
        Replicas::Exactly(n) => n,
        Replicas::Max => 1,
    };
    let need = per_replica.saturating_mul(wanted as u64);
    if free_before < need {
        reasons.push(format!(
            "{wanted} replica(s) of tp {t} x pp {p} need {need} GPUs; {free_before} are free: {} missing",
            need - free_before
        ));
    }
    let max_island = max_island_gpus(c);
    let held = if o.tp_within == Scope::IntraNode {
        max_gpus
    } else {
        max_island
    };
    if o.tp_within <= Scope::IntraDomain && t > held {
        let what = if o.tp_within == Scope::IntraNode || c.domains.is_empty() {
            format!("every node (the largest has {max_gpus} GPUs), so no TP group can stay inside one node")
        } else {
            format!(
                "every node and NVLink domain (the largest holds {max_island} GPUs), so no TP group can stay on NVLink"
            )
        };
        reasons.push(format!("tp {t} exceeds {what}"));
    } else if o.tp_within == Scope::IntraNode || (o.tp_within == Scope::IntraDomain && c.domains.is_empty()) {
        let most = c.nodes.iter().zip(free_after).max_by_key(|(_, f)| f.count_ones());
        if let Some((n, f)) = most
            && f.count_ones() < t
        {
            reasons.push(format!(
                "no node has {t} free GPUs left for a TP group (most free: {} on {})",
                f.count_ones(),
                n.name
            ));
        }
    }
    if o.pp_within == Scope::IntraNode && free_before >= need {
        reasons.push(format!(
            "no node can hold {} replica: one needs {p} TP groups of {t} in a single node",
            if placed == 0 { "a" } else { "another" }
        ));
    } else if o.pp_within == Scope::IntraRack && free_before >= need {
        // The roomiest rack by what the limits let it hold: node-local groups when groups
        // may not span nodes, else free GPUs.
        let best = (0..c.racks.len()).max_by_key(|&r| {
            let local = if o.tp_within <= Scope::IntraDomain {
                eng.rack_slots(r)
            } else {
                0
            };
            (local, eng.rack_free[r], Reverse(r))
        });
        if let Some(r) = best {
            let local = eng.rack_slots(r);
            // Stages the rack could still hold: node-local groups only, when groups may not
            // span nodes.
            let stages = if o.tp_within <= Scope::IntraDomain {
                local
            } else {
                eng.rack_free[r] / u64::from(t)
            };
            reasons.push(format!(
                "no rack can hold {} replica: one needs {per_replica} GPUs in a single rack ({p} TP groups of {t}); the roomiest rack, {}, has {} free GPUs ({local} TP groups inside one {})",
                if placed == 0 { "a" } else { "another" },
                c.racks[r].name,
                eng.rack_free[r],
                if c.domains.is_empty() { "node" } else { "node or NVLink domain" }
            ));
            if stages >= 1 && stages < u64::from(p) {
                alternatives.push(format!(
                    "pp {} or less with tp {t} fits in rack {}",
                    stages, c.racks[r].name
                ));
            }
        }
    }
    if reasons.is_empty() {
        reasons.push(format!(
            "only {} of {wanted} replica(s) fit with --tp-within {} --pp-within {}",
            placed,
            o.tp_within.flag(),
            o.pp_within.flag()
        ));
    }
    if (o.tp_within, o.pp_within) != (Scope::CrossRack, Scope::CrossRack) {
        let mut relaxed = Engine::new(c, t, p, !c.domains.is_empty(), Policy::KeepWhole);
        let k = relaxed
            .run(target.max(1), Scope::CrossRack, Scope::CrossRack)
            .len();
        if k > placed {
            alternatives.push(format!(
                "{k} replica(s) fit with --tp-within any --pp-within any (groups or pipelines then cross nodes or racks)"
            ));
        }
    }
    if placed > 0 && matches!(o.replicas, Replicas::Exactly(_)) {
        alternatives.push(format!(
            "{} replica(s) fit as requested; --max-replicas places as many as fit",
            placed
        ));
    }
    (reasons, alternatives)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn replica_out(c: &Cluster, o: &Options, index: usize, stages: &Placed) -> ReplicaOut {
    let mut racks: Vec<usize> = Vec::new();
    let mut hosts: Vec<(usize, Vec<u32>, Vec<u32>)> = Vec::new(); // node, ranks, gpus
    let mut stage_outs = Vec::with_capacity(stages.len());
    let mut rank = 0u32;
    for (si, g) in stages.iter().enumerate() {
        // Per node of this group: how many of its GPUs.
        let mut per_node: Vec<(usize, u32)> = Vec::new();
        let mut group_racks: Vec<usize> = Vec::new();
        for &(n, gpu) in g {
            match per_node.iter_mut().find(|(x, _)| *x == n) {
                Some(e) => e.1 += 1,
                None => per_node.push((n, 1)),
            }
            let r = c.nodes[n].rack;
            if !group_racks.contains(&r) {
                group_racks.push(r);
            }
            if !racks.contains(&r) {
                racks.push(r);
            }
            match hosts.iter_mut().find(|h| h.0 == n) {
                Some(h) => {
                    h.1.push(rank);
                    h.2.push(gpu);
                }
                None => hosts.push((n, vec![rank], vec![gpu])),
            }
            rank += 1;
        }
        let tp_scope = scope_of_gpus(c, g);
        let (intra, link) = group_intra(c, o, &per_node);
        let intra_bus = o.links.intra_bus(intra);
        // Network islands: nodes, or NVLink domains (their trays talk over NVLink).
        let mut islands: Vec<(usize, f64)> = Vec::new();
        for &(n, k) in &per_node {
            let node = &c.nodes[n];
            let key = search::island_of(c, n, true);
            let nics = node.nics.unwrap_or(o.links.network.nics_per_node);
            let rate = node.nic_gbps.unwrap_or(o.links.network.nic_gbps);
            // Each GPU drives its own (rail-local) NIC; a node contributes at most as many
            // NICs as it has GPUs in the group.
            let bw = f64::from(nics.min(k)) * rate / 8.0 * o.links.network.efficiency;
            match islands.iter_mut().find(|x| x.0 == key) {
                Some(x) => x.1 += bw,
                None => islands.push((key, bw)),
            }
        }
        let bus = if islands.len() <= 1 {
            intra_bus
        } else {
            islands.iter().map(|x| x.1).fold(intra_bus, f64::min)
        };
        let (allreduce_us, protocol) = if bus > 0.0 {
            let e = cost::allreduce(
                &o.links,
                GroupShape {
                    ranks: g.len() as u32,
                    nodes: islands.len() as u32,
                    racks: group_racks.len() as u32,
                    intra,
                    bus_gbytes_per_s: bus,
                },
                o.message_bytes,
            );
            (Some(round2(e.us)), e.protocol)
        } else {
            (None, "none".to_string())
        };
        stage_outs.push(StageOut {
            stage: si,
            tp_scope,
            allreduce_us,
            protocol,
            bus_gbytes_per_s: round2(bus),
            link,
            gpus: g
                .iter()
                .map(|&(n, gpu)| GpuRef {
                    node: c.nodes[n].name.clone(),
                    gpu,
                })
                .collect(),
        });
    }
    let (per_token, share) = match o.budget {
        Some(b) => {
            let per_stage_layers = f64::from(b.layers) / f64::from(o.pp.max(1));
            let total: Option<f64> = stage_outs
                .iter()
                .map(|s| s.allreduce_us.map(|us| 2.0 * per_stage_layers * us))
                .sum();
            let share = total.map(|t| t / (1e6 / b.tokens_per_s));
            (
                total.map(round2),
                share.map(|s| (s * 10_000.0).round() / 10_000.0),
            )
        }
        None => (None, None),
    };
    ReplicaOut {
        replica: index,
        pp_scope: scope_of_gpus(c, &stages.iter().flatten().copied().collect::<Vec<_>>()),
        racks: racks.iter().map(|&r| c.racks[r].name.clone()).collect(),
        pods: {
            let mut pods: Vec<String> = Vec::new();
            for &r in &racks {
                if let Some(p) = &c.racks[r].pod
                    && !pods.contains(p)
                {
                    pods.push(p.clone());
                }
            }
            pods
        },
        stages: stage_outs,
        hosts: hosts
            .into_iter()
            .map(|(n, ranks, gpus)| HostOut {
                node: c.nodes[n].name.clone(),
                rack: c.racks[c.nodes[n].rack].name.clone(),
                nvlink_domain: c.nodes[n].domain.map(|d| c.domains[d].name.clone()),
                ranks,
                cuda_visible_devices: gpus.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(","),
            })
            .collect(),
        allreduce_us_per_token: per_token,
        budget_share: share,
    }
}

/// The slowest intra-node link of a group's nodes, and its name for the report.
fn group_intra(c: &Cluster, o: &Options, per_node: &[(usize, u32)]) -> (Intra, String) {
    let mut best: Option<(f64, Intra)> = None;
    for &(n, _) in per_node {
        let node = &c.nodes[n];
        let intra = match node.nvlink.unwrap_or(o.links.nvlink.default) {
            NvlinkGen::None => Intra::Pcie(node.pcie.unwrap_or(cluster::Pcie { gen_: 4, width: 16 })),
            g => Intra::Nvlink(g),
        };
        let bw = o.links.intra_bus(intra);
        if best.is_none_or(|b| bw < b.0) {
            best = Some((bw, intra));
        }
    }
    let intra = best.map_or(Intra::Nvlink(o.links.nvlink.default), |b| b.1);
    let name = match intra {
        Intra::Nvlink(g) => format!("nvlink-{}", g.as_str()),
        Intra::Pcie(p) => format!("pcie-gen{}x{}", p.gen_, p.width),
    };
    (intra, name)
}

#[cfg(test)]
mod tests;
