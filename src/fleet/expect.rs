//! `fleet merge --expect FILE`: every node judged against written expectations, the same TOML
//! `nccltune verify --expect` reads and `verify --write-expect` writes from a known-good node
//! (see `crate::verify::expect`). Each expectation becomes a rule on one check code (and
//! subject), compared with the typed `observed` value of the node's schema-2 report, not with
//! message text:
//!
//! | expectation | check code | subject | fails when observed is |
//! | --- | --- | --- | --- |
//! | `[gpus] count` | `gpu.count` | `node` | different |
//! | `[gpus] nvlink_links` | `gpu.nvlink-links` | every `GPU<n>` | fewer |
//! | `[gpus] nvlink_gbps` | `gpu.nvlink-speed` | every subject | slower |
//! | `[[ports]] rate_gbps` | `rdma.port-rate` | the port | slower |
//! | `[[ports]] link_layer` | `rdma.link-layer` | the port | different |
//! | `[versions] driver`, `ofed`, `nccl` | `software.*` | `node` | different |
//! | `[versions] *_min` | `software.*` | `node` | older |
//! | `[thresholds] max_gpu_nic_path` | `pcie.gpu-nic-distance` | every `GPU<n>` | farther |
//!
//! A value the report does not carry is *unseen*, never a pass: the node becomes `suspect`
//! (`fleet.expect-unseen`). When no node of the fleet carries it (the reports come from a verify
//! that does not write that value, or schema 1 reports without typed values), the rule is not
//! judged and a note says so, rather than making every node suspect. `[require]` is verify's
//! own (it needs the probes): pass the file to verify too (`--check-args '--expect FILE'`).

use super::verify_json::{Interner, NodeSummary};
use crate::verify::Expectations;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
enum Want {
    /// Equal (numbers compare with a small relative tolerance).
    Eq(Value),
    /// A number at least this.
    AtLeast(f64),
    /// A dotted version at least this.
    VersionAtLeast(String),
    /// A GPU-NIC path label no farther than this (rank).
    PathAtMost(String, u8),
}

#[derive(Debug, Clone)]
struct Rule {
    code: &'static str,
    /// `None`: every subject the node reports for this code.
    subject: Option<String>,
    want: Want,
    /// Where it came from, for messages: `ports[2].rate_gbps`.
    field: String,
}

/// One node's outcome against one rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    Mismatch {
        code: String,
        subject: String,
        /// Compact, for drain lines: `200<400`.
        message: String,
    },
    Unseen {
        rule: usize,
        code: String,
        subject: String,
    },
}

/// The rules of one expectations file.
#[derive(Debug, Clone)]
pub struct Golden {
    rules: Vec<Rule>,
    /// The file's name, in messages.
    pub source: String,
}

impl Golden {
    pub fn parse(text: &str, source: &str) -> anyhow::Result<Golden> {
        let e = Expectations::parse(text, source)?;
        let g = Golden::from_expectations(&e, source);
        if g.rules.is_empty() {
            anyhow::bail!(
                "{source}: no expectation the fleet can judge ([gpus], [[ports]], [versions] or [thresholds]); write one with `nccltune verify --write-expect FILE` on a known-good node"
            );
        }
        Ok(g)
    }

    pub fn from_expectations(e: &Expectations, source: &str) -> Golden {
        let mut rules = Vec::new();
        let mut push = |code, subject: Option<String>, want, field: String| {
            rules.push(Rule {
                code,
                subject,
                want,
                field,
            })
        };
        if let Some(g) = &e.gpus {
            if let Some(c) = g.count {
                push(
                    "gpu.count",
                    Some("node".into()),
                    Want::Eq(Value::from(c)),
                    "gpus.count".into(),
                );
            }
            if let Some(l) = g.nvlink_links {
                push(
                    "gpu.nvlink-links",
                    None,
                    Want::AtLeast(f64::from(l)),
                    "gpus.nvlink_links".into(),
                );
            }
            if let Some(s) = g.nvlink_gbps {
                push(
                    "gpu.nvlink-speed",
                    None,
                    Want::AtLeast(s),
                    "gpus.nvlink_gbps".into(),
                );
            }
        }
        for (i, p) in e.ports.iter().enumerate() {
            if let Some(r) = p.rate_gbps {
                push(
                    "rdma.port-rate",
                    Some(p.port.clone()),
                    Want::AtLeast(r),
                    format!("ports[{i}].rate_gbps"),
                );
            }
            if let Some(l) = &p.link_layer {
                push(
                    "rdma.link-layer",
                    Some(p.port.clone()),
                    Want::Eq(Value::String(l.clone())),
                    format!("ports[{i}].link_layer"),
                );
            }
        }
        if let Some(v) = &e.versions {
            for (code, exact, min, name) in [
                ("software.driver", &v.driver, &v.driver_min, "driver"),
                ("software.ofed", &v.ofed, &v.ofed_min, "ofed"),
                ("software.nccl", &v.nccl, &v.nccl_min, "nccl"),
            ] {
                if let Some(x) = exact {
                    push(
                        code,
                        Some("node".into()),
                        Want::Eq(Value::String(x.clone())),
                        format!("versions.{name}"),
                    );
                }
                if let Some(m) = min {
                    push(
                        code,
                        Some("node".into()),
                        Want::VersionAtLeast(m.clone()),
                        format!("versions.{name}_min"),
                    );
                }
            }
        }
        if let Some(t) = &e.thresholds
            && let Some(p) = &t.max_gpu_nic_path
            && let Some(rank) = crate::hw::label_rank(p)
        {
            push(
                "pcie.gpu-nic-distance",
                None,
                Want::PathAtMost(p.clone(), rank),
                "thresholds.max_gpu_nic_path".into(),
            );
        }
        Golden {
            rules,
            source: source.to_string(),
        }
    }

    pub fn rules(&self) -> usize {
        self.rules.len()
    }

    /// What the rule `i` expects, for notes: `rdma.port-rate mlx5_0:1 (ports[0].rate_gbps)`.
    pub fn describe(&self, i: usize) -> String {
        let r = &self.rules[i];
        match &r.subject {
            Some(s) => format!("{} {s} ({})", r.code, r.field),
            None => format!("{} ({})", r.code, r.field),
        }
    }

    /// Judges one node's report. `cache` maps interned check keys to (code, subject) splits
    /// and is shared across nodes, so 10,000 nodes split each distinct key once.
    pub fn judge(
        &self,
        sum: &NodeSummary,
        interner: &Interner,
        cache: &mut HashMap<u32, (String, String)>,
    ) -> Vec<Judgement> {
        let mut out = Vec::new();
        let mut seen = vec![false; self.rules.len()];
        for c in &sum.cells {
            let (code, subject) = cache.entry(c.key).or_insert_with(|| {
                let k = interner.get(c.key);
                let (a, b) = k.split_once('\u{1f}').unwrap_or((k, ""));
                (a.to_string(), b.to_string())
            });
            for (i, r) in self.rules.iter().enumerate() {
                if r.code != code.as_str() || r.subject.as_ref().is_some_and(|s| s != subject) {
                    continue;
                }
                let Some(obs) = c
                    .observed
                    .and_then(|id| serde_json::from_str::<Value>(interner.get(id)).ok())
                else {
                    // A check of this code without a value: a node-level summary line (e.g. the
                    // `node` line beside per-port lines) or a probe that could not see.
                    continue;
                };
                seen[i] = true;
                if let Some(m) = compare(&obs, &r.want) {
                    out.push(Judgement::Mismatch {
                        code: r.code.to_string(),
                        subject: subject.clone(),
                        message: format!("{m} ({} {})", self.source, r.field),
                    });
                }
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            if !seen[i] {
                out.push(Judgement::Unseen {
                    rule: i,
                    code: r.code.to_string(),
                    subject: r.subject.clone().unwrap_or_default(),
                });
            }
        }
        out
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", f as i64)
            } else {
                n.to_string()
            }
        }
        other => other.to_string(),
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// `None` when `obs` meets `want`, else the compact mismatch (`200<400`, `535.54.03!=550.90.07`).
fn compare(obs: &Value, want: &Want) -> Option<String> {
    match want {
        Want::Eq(w) => {
            let same = match (num(obs), num(w)) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                _ => obs == w,
            };
            (!same).then(|| format!("{}!={}", show(obs), show(w)))
        }
        Want::AtLeast(w) => match num(obs) {
            Some(a) if a + 1e-6 * w.abs().max(1.0) >= *w => None,
            Some(a) => Some(format!("{}<{}", show(&Value::from(a)), show(&Value::from(*w)))),
            None => Some(format!(
                "{} is not a number, >={} expected",
                show(obs),
                show(&Value::from(*w))
            )),
        },
        Want::VersionAtLeast(m) => {
            let o = obs.as_str().unwrap_or("");
            let (a, b) = (crate::parse::version_key(o), crate::parse::version_key(m));
            (a.is_empty() || a < b).then(|| format!("{}<{m}", show(obs)))
        }
        Want::PathAtMost(label, rank) => {
            let o = obs.as_str().unwrap_or("");
            match crate::hw::label_rank(o) {
                Some(r) if r <= *rank => None,
                _ => Some(format!("{}>{label}", show(obs))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::verify_json;

    fn report(rate: f64, driver: &str, with_layer: bool) -> String {
        let layer = if with_layer {
            r#",{"code":"rdma.link-layer","level":"pass","subject":"mlx5_0:1","message":"m","observed":"InfiniBand","expected":null,"evidence":[],"fix":null}"#
        } else {
            ""
        };
        format!(
            r#"{{"schema":2,"checks":[
            {{"code":"gpu.count","level":"pass","subject":"node","message":"m","observed":8,"expected":null,"evidence":[],"fix":null}},
            {{"code":"rdma.port-rate","level":"pass","subject":"mlx5_0:1","message":"m","observed":{rate},"expected":null,"evidence":[],"fix":null}},
            {{"code":"rdma.link-layer","level":"pass","subject":"node","message":"m","observed":null,"expected":null,"evidence":[],"fix":null}},
            {{"code":"pcie.gpu-nic-distance","level":"pass","subject":"GPU0","message":"m","observed":"PIX","expected":"PXB","evidence":[],"fix":null}},
            {{"code":"software.driver","level":"pass","subject":"node","message":"m","observed":"{driver}","expected":null,"evidence":[],"fix":null}}{layer}],"ok":true}}"#
        )
    }

    const GOLDEN: &str = "[gpus]\ncount = 8\n\n[[ports]]\nport = \"mlx5_0:1\"\nrate_gbps = 400.0\nlink_layer = \"InfiniBand\"\n\n[versions]\ndriver_min = \"550\"\n\n[thresholds]\nmax_gpu_nic_path = \"PXB\"\n";

    fn judge(g: &Golden, r: &str) -> Vec<Judgement> {
        let mut i = Interner::default();
        let s = verify_json::read(r.as_bytes(), "r", &mut i).expect("report");
        g.judge(&s, &i, &mut HashMap::new())
    }

    #[test]
    fn typed_values_are_judged_and_unseen_values_are_not_passes() {
        let g = Golden::parse(GOLDEN, "golden.toml").expect("golden");
        assert_eq!(g.rules(), 5);
        assert_eq!(judge(&g, &report(400.0, "550.90.07", true)), vec![]);
        let j = judge(&g, &report(200.0, "535.54.03", true));
        assert_eq!(
            j,
            vec![
                Judgement::Mismatch {
                    code: "rdma.port-rate".into(),
                    subject: "mlx5_0:1".into(),
                    message: "200<400 (golden.toml ports[0].rate_gbps)".into()
                },
                Judgement::Mismatch {
                    code: "software.driver".into(),
                    subject: "node".into(),
                    message: "535.54.03<550 (golden.toml versions.driver_min)".into()
                },
            ]
        );
        // No per-port link layer in the report: unseen, not passed.
        let j = judge(&g, &report(400.0, "550.90.07", false));
        assert_eq!(
            j,
            vec![Judgement::Unseen {
                rule: 2,
                code: "rdma.link-layer".into(),
                subject: "mlx5_0:1".into()
            }]
        );
    }

    #[test]
    fn errors_name_the_file() {
        let e = Golden::parse("[gpus]\ncuont = 8\n", "g.toml")
            .expect_err("bad")
            .to_string();
        assert!(e.contains("g.toml") && e.contains("cuont"), "{e}");
        let e = Golden::parse("require = [\"gpu\"]\n", "g.toml")
            .expect_err("nothing to judge")
            .to_string();
        assert!(e.contains("no expectation the fleet can judge"), "{e}");
    }
}
