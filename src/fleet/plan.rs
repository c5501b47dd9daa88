//! The plan: what `fleet plan` decided and every round `fleet next` added, as `plan.json`
//! (schema-versioned). The plan is the only state: results live in files beside it, and the
//! isolation state is recomputed from plan + results, so any step can be rerun or resumed.

use super::nodeset;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Version of `plan.json`. Bump when a field changes meaning; readers refuse newer plans.
pub const PLAN_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    /// `nccltune verify` on every node.
    Verify,
    /// Two-node all-reduce tests: a seeded perfect matching, then confirmation with distinct
    /// known-good partners.
    Pairs,
    /// Group screening (about √N nodes per group), then bisection inside failed groups.
    Groups,
    /// Pairs, once per rail: each test pins NCCL to one HCA (`NCCL_IB_HCA==<rail>`), so each
    /// rail is measured alone; isolation runs per rail, so a rail failing on one node only is
    /// that node's rail. (nccl-tests' `NCCL_TESTS_SPLIT_MASK` runs the groups at once but
    /// prints one figure: the time averaged over every rank of every group, see the README.)
    Rails,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Launcher {
    Srun,
    Sbatch,
    Mpirun,
    Pdsh,
    Clush,
    Kubernetes,
}

impl Launcher {
    pub fn as_str(self) -> &'static str {
        match self {
            Launcher::Srun => "srun",
            Launcher::Sbatch => "sbatch",
            Launcher::Mpirun => "mpirun",
            Launcher::Pdsh => "pdsh",
            Launcher::Clush => "clush",
            Launcher::Kubernetes => "kubernetes",
        }
    }
}

/// What a test's output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    /// One node's `verify --format json` → `<test>.json`.
    Verify,
    /// nccl-tests output → `<test>.txt`.
    Nccl,
}

/// Why a test is in its round; the isolation logic reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Verify,
    /// First multi-node round: pairs or groups over every healthy node.
    Screen,
    /// Half of the unexplained members of a failed group.
    Bisect,
    /// One suspect with known-good partners.
    Confirm,
    /// The same node set again: its members all passed elsewhere (a link or fabric fault, or
    /// a transient failure).
    Retest,
    /// A pair across the boundary of a failed group whose two halves both passed: a failing
    /// probe points at the path between the halves (an infrastructure fault), a passing one
    /// leaves a retest of the whole group.
    Probe,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Test {
    /// File stem of its results: the node name for verify, `t0001`… for nccl-tests.
    pub id: String,
    pub kind: TestKind,
    pub purpose: Purpose,
    pub nodes: Vec<String>,
    /// Program and arguments, not a shell line: run.sh quotes every word.
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub timeout_s: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_busbw_gbps: Option<f64>,
    /// `rails`: the one HCA (or HCA:port) this test runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    /// 1-based; results go to `results/r<index>/`.
    pub index: u32,
    pub tests: Vec<Test>,
}

impl Round {
    pub fn dir_name(&self) -> String {
        format!("r{}", self.index)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The nccltune binary as the nodes see it.
    pub nccltune: String,
    /// Words appended to each verify command; `{node}` becomes the node's name.
    pub check_args: Vec<String>,
    /// Folder with `all_reduce_perf` on the nodes.
    pub nccl_tests_bin: String,
    /// Processes (GPUs) per node for the multi-node tests.
    pub gpus_per_node: u32,
    /// Message size of the multi-node tests, bytes.
    pub size_bytes: u64,
    pub target_busbw_gbps: Option<f64>,
    /// Where the target came from (profile or file), for the report.
    pub target_source: String,
    /// A test passes at `acceptable_fraction × target` or more.
    pub acceptable_fraction: f64,
    pub timeout_s: u64,
    /// Failed confirmation tests with known-good partners that make a node bad.
    pub confirm: u32,
    /// Rounds in all, the verify round included.
    pub max_rounds: u32,
    /// Nodes per screening group (`groups`); 0: about √N.
    pub group_size: usize,
    /// Outlier rule: below median − k·MAD of the fleet.
    pub mad_k: f64,
    pub partition: Option<String>,
    /// pdsh/clush remote command: `exec` (run locally with %h, for tests) or `ssh`.
    pub rcmd: String,
    /// Tests run at once by run.sh (pairs) and fan-out of pdsh/clush.
    pub parallel: u32,
    /// Container image with nccltune, for Kubernetes manifests.
    #[serde(default)]
    pub image: String,
    /// `sbatch` multi-node rounds: tests per job (0: the wave shared by `sbatch_throttle` jobs).
    #[serde(default)]
    pub sbatch_chunk: usize,
    /// `sbatch` multi-node rounds: jobs at once.
    #[serde(default = "default_throttle")]
    pub sbatch_throttle: u32,
    /// `rails`: the HCAs (or HCA:port), one test per rail and pair.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rails: Vec<String>,
    /// `rails`: the target of a one-rail test; default the pair target ÷ the number of rails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rail_target_busbw_gbps: Option<f64>,
}

fn default_throttle() -> u32 {
    16
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            nccltune: "nccltune".into(),
            check_args: Vec::new(),
            nccl_tests_bin: "/usr/local/bin".into(),
            gpus_per_node: 8,
            size_bytes: 8 << 30,
            target_busbw_gbps: None,
            target_source: String::new(),
            acceptable_fraction: 0.9,
            timeout_s: 600,
            confirm: 2,
            max_rounds: 3,
            group_size: 0,
            mad_k: 4.0,
            partition: None,
            rcmd: "ssh".into(),
            parallel: 64,
            image: "nccltune:latest".into(),
            rails: Vec::new(),
            rail_target_busbw_gbps: None,
            sbatch_chunk: 0,
            sbatch_throttle: default_throttle(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub schema: u32,
    pub nccltune_version: String,
    pub created_at: String,
    pub seed: u64,
    pub checks: Vec<Check>,
    pub launcher: Launcher,
    pub nodes: Vec<String>,
    pub settings: Settings,
    pub rounds: Vec<Round>,
    /// Isolation state after the last `fleet next`: counts by status, for a reader of the
    /// plan alone. Recomputed from the results on every step.
    #[serde(default)]
    pub state: BTreeMap<String, usize>,
    /// Node → leaf switch / rack (from `--topology`): screening groups stay inside one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub topology: BTreeMap<String, String>,
    /// True once `fleet next` found nothing left to test.
    #[serde(default)]
    pub done: bool,
}

impl Plan {
    pub fn multi_node(&self) -> Option<Check> {
        self.checks.iter().copied().find(|c| *c != Check::Verify)
    }

    pub fn round(&self, index: u32) -> Option<&Round> {
        self.rounds.iter().find(|r| r.index == index)
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Reads and checks a plan. Errors name the file and say what to do.
    pub fn parse(text: &str, source: &str) -> Result<Plan> {
        #[derive(Deserialize)]
        struct Head {
            schema: Option<u64>,
        }
        let head: Head = serde_json::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{source}: not a plan ({e}); expected the plan.json written by `nccltune fleet plan -o DIR`"
            )
        })?;
        match head.schema {
            Some(s) if s == PLAN_SCHEMA as u64 => {}
            Some(s) if s > PLAN_SCHEMA as u64 => bail!(
                "{source}: plan schema {s} is newer than this nccltune reads ({PLAN_SCHEMA}); use the nccltune that wrote it, or upgrade"
            ),
            Some(s) => bail!("{source}: plan schema {s} is not known (expected {PLAN_SCHEMA})"),
            None => bail!("{source}: no \"schema\" field: not a plan written by `nccltune fleet plan`"),
        }
        let plan: Plan = serde_json::from_str(text).map_err(|e| {
            anyhow::anyhow!("{source}: malformed plan ({e}); re-create it with `nccltune fleet plan`")
        })?;
        plan.validate().map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
        Ok(plan)
    }

    /// Everything run.sh will write must be safe: node names and test ids are checked again
    /// here, because a plan file may have been edited by hand.
    pub fn validate(&self) -> Result<()> {
        let st = &self.settings;
        if !(1..=100_000).contains(&st.parallel) {
            bail!("settings.parallel {} out of range (1..=100000)", st.parallel);
        }
        if !(1..=100_000).contains(&st.sbatch_throttle) {
            bail!(
                "settings.sbatch_throttle {} out of range (1..=100000)",
                st.sbatch_throttle
            );
        }
        if !(1..=1024).contains(&st.gpus_per_node) {
            bail!(
                "settings.gpus_per_node {} out of range (1..=1024)",
                st.gpus_per_node
            );
        }
        if st.confirm == 0 {
            bail!("settings.confirm must be at least 1");
        }
        if !(st.acceptable_fraction > 0.0 && st.acceptable_fraction <= 1.0) {
            bail!(
                "settings.acceptable_fraction {} must be in (0, 1]",
                st.acceptable_fraction
            );
        }
        if !(st.mad_k.is_finite() && st.mad_k >= 0.0) {
            bail!("settings.mad_k {} must be a number >= 0", st.mad_k);
        }
        if let Some(t) = st.target_busbw_gbps
            && !(t.is_finite() && t > 0.0)
        {
            bail!("settings.target_busbw_gbps {t} must be a positive number");
        }
        if let Some(t) = st.rail_target_busbw_gbps
            && !(t.is_finite() && t > 0.0)
        {
            bail!("settings.rail_target_busbw_gbps {t} must be a positive number");
        }
        for r in &st.rails {
            validate_rail(r)?;
        }
        let mut known = std::collections::HashSet::new();
        for n in &self.nodes {
            nodeset::validate_name(n).with_context(|| "in \"nodes\"".to_string())?;
            if !known.insert(n.as_str()) {
                bail!("node {n} is listed twice in \"nodes\"");
            }
        }
        for (i, r) in self.rounds.iter().enumerate() {
            if r.index as usize != i + 1 {
                bail!("round {} is out of order (expected {})", r.index, i + 1);
            }
            let mut ids = std::collections::HashSet::new();
            for t in &r.tests {
                nodeset::validate_name(&t.id)
                    .with_context(|| format!("round {}: test id {:?}", r.index, t.id))?;
                if !ids.insert(t.id.as_str()) {
                    bail!("round {}: test id {} twice", r.index, t.id);
                }
                if t.nodes.is_empty() || t.cmd.is_empty() {
                    bail!("round {}: test {} has no nodes or no command", r.index, t.id);
                }
                for n in &t.nodes {
                    if !known.contains(n.as_str()) {
                        bail!(
                            "round {}: test {} names node {n}, which is not in \"nodes\"",
                            r.index,
                            t.id
                        );
                    }
                }
                for k in t.env.keys() {
                    if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        bail!(
                            "round {}: test {}: environment name {k:?} is not a plain name",
                            r.index,
                            t.id
                        );
                    }
                }
                if let Some(rail) = &t.rail
                    && !st.rails.contains(rail)
                {
                    bail!(
                        "round {}: test {} runs on rail {rail:?}, which is not in settings.rails",
                        r.index,
                        t.id
                    );
                }
                if t.timeout_s == 0 || t.timeout_s > 7 * 86_400 {
                    bail!(
                        "round {}: test {}: timeout_s {} out of range (1..=604800)",
                        r.index,
                        t.id,
                        t.timeout_s
                    );
                }
            }
        }
        Ok(())
    }
}

/// A rail name: an HCA as NCCL names it (`mlx5_0`), optionally with its port (`mlx5_0:1`).
pub fn validate_rail(r: &str) -> Result<()> {
    let ok = !r.is_empty()
        && r.len() <= 63
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-:".contains(&b))
        && !r.starts_with(['-', ':']);
    if !ok {
        bail!("rail {r:?}: expected an HCA name as NCCL_IB_HCA takes it, e.g. mlx5_0 or mlx5_0:1");
    }
    Ok(())
}

/// Reads `DIR/plan.json`.
pub fn load(dir: &Path) -> Result<Plan> {
    let path = dir.join("plan.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}; expected a folder written by `nccltune fleet plan -o DIR`",
            path.display()
        )
    })?;
    Plan::parse(&text, &path.display().to_string())
}
