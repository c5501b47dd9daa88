//! The fleet result (`fleet.json`): every planned node with a status and the evidence for it,
//! link and infrastructure faults, drift, and a summary. Renderers read only this.

use super::verify_json::Identity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of `fleet.json`.
pub const FLEET_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Suspect,
    Bad,
    Missing,
    Error,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Ok,
        Status::Bad,
        Status::Suspect,
        Status::Missing,
        Status::Error,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Suspect => "suspect",
            Status::Bad => "bad",
            Status::Missing => "missing",
            Status::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// A verify check code (`rdma.port-rate`) or a fleet code (`fleet.pair-confirmed`).
    pub code: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeResult {
    pub status: Status,
    /// How sure the status is, 0..1: 1 for a node's own failed check, rising with the number
    /// of independent confirmations for a multi-node failure.
    pub confidence: f64,
    pub reasons: Vec<Reason>,
    /// Result files, relative to the plan folder.
    pub evidence: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busbw_gbps: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkFault {
    pub nodes: Vec<String>,
    /// Failed runs of this exact node set; each member passed with other partners.
    pub failures: u32,
    pub evidence: Vec<String>,
    /// `rails`: the rail the set fails on (it passes on the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rail: Option<String>,
    /// Cross-boundary probes that failed (pairs of good nodes, one from each half of the
    /// group): the fault is the path between the halves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftValue {
    pub value: serde_json::Value,
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub code: String,
    pub subject: String,
    /// `observed` (typed, schema 2) or `level` (schema 1 reports carry no typed value).
    pub compared: String,
    pub majority: serde_json::Value,
    pub majority_nodes: usize,
    pub others: Vec<DriftValue>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub nodes: usize,
    pub ok: usize,
    pub bad: usize,
    pub suspect: usize,
    pub missing: usize,
    pub error: usize,
    pub tests: usize,
    pub tests_failed: usize,
    pub rounds: usize,
    pub links: usize,
    pub infra: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetResult {
    pub schema: u32,
    pub nccltune_version: String,
    pub plan: String,
    pub nodes: BTreeMap<String, NodeResult>,
    /// Two-node sets that fail while both nodes pass with others.
    pub links: Vec<LinkFault>,
    /// Larger sets that fail while every member passes elsewhere (switch, fabric).
    pub infra: Vec<LinkFault>,
    pub drift: Vec<Drift>,
    pub notes: Vec<String>,
    pub summary: Summary,
}

impl FleetResult {
    pub fn count(&self, s: Status) -> usize {
        self.nodes.values().filter(|n| n.status == s).count()
    }
}
