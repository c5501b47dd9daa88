//! NCCL settings in YAML: Kubernetes `env:` lists (`- name: NCCL_X` / `value: "..."`) wherever
//! they sit (Pod, Deployment, Job, MPIJob, the output of `configure --format k8s`), and Compose
//! `environment:` maps or `NAME=value` lists. Read with a maintained YAML parser's event stream
//! (yaml-rust2), so every setting keeps its line, and with an explicit stack, so deep nesting
//! cannot exhaust ours.

use super::envfile::{Assignment, Syntax};
use anyhow::{Result, bail};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// What a container on the stack is, as far as env lists go.
#[derive(Debug, PartialEq)]
enum Role {
    Other,
    /// The sequence under `env:`.
    EnvList,
    /// One `{name, value}` map of an env list.
    EnvEntry,
    /// A Compose `environment:` map.
    ComposeMap,
    /// A Compose `environment:` list of `NAME=value`.
    ComposeList,
}

struct Frame {
    role: Role,
    is_map: bool,
    /// In a map: the key just read, waiting for its value.
    key: Option<(String, usize)>,
    name: Option<(String, usize)>,
    value: Option<String>,
    value_from: bool,
}

impl Frame {
    fn new(role: Role, is_map: bool) -> Self {
        Frame {
            role,
            is_map,
            key: None,
            name: None,
            value: None,
            value_from: false,
        }
    }
}

struct Reader<'a> {
    source: &'a str,
    stack: Vec<Frame>,
    out: Vec<Assignment>,
}

impl Reader<'_> {
    /// The role of a container that starts as the value in the current position.
    fn child_role(&self, is_map: bool) -> Role {
        let Some(top) = self.stack.last() else {
            return Role::Other;
        };
        match (&top.role, top.key.as_ref().map(|k| k.0.as_str()), is_map) {
            (Role::EnvList, _, true) => Role::EnvEntry,
            (_, Some("env"), false) if top.is_map => Role::EnvList,
            (_, Some("environment"), true) if top.is_map => Role::ComposeMap,
            (_, Some("environment"), false) if top.is_map => Role::ComposeList,
            _ => Role::Other,
        }
    }

    fn scalar(&mut self, text: String, line: usize) {
        let source = self.source;
        let Some(top) = self.stack.last_mut() else { return };
        if !top.is_map {
            if top.role == Role::ComposeList
                && let Some((n, v)) = text.split_once('=')
            {
                let mut a = Assignment::new(n, Some(v), source, line, Syntax::Yaml);
                a.exported = true;
                self.out.push(a);
            }
            return;
        }
        match top.key.take() {
            None => top.key = Some((text, line)),
            Some((k, kline)) => match top.role {
                Role::EnvEntry if k == "name" => top.name = Some((text, kline)),
                Role::EnvEntry if k == "value" => top.value = Some(text),
                Role::ComposeMap => {
                    self.out
                        .push(Assignment::new(&k, Some(&text), source, kline, Syntax::Yaml));
                }
                _ => {}
            },
        }
    }

    /// A container (or alias) took the place of a value: the pending key is used up.
    fn value_is_container(&mut self) {
        if let Some(top) = self.stack.last_mut()
            && top.is_map
        {
            if top.role == Role::EnvEntry && top.key.as_ref().is_some_and(|k| k.0 == "valueFrom") {
                top.value_from = true;
            }
            top.key = None;
        }
    }

    fn end(&mut self) {
        let Some(f) = self.stack.pop() else { return };
        if f.role == Role::EnvEntry
            && let Some((name, line)) = f.name
        {
            let mut a = Assignment::new(&name, f.value.as_deref(), self.source, line, Syntax::Yaml);
            // `valueFrom` (a Secret, a ConfigMap, a field): known only in the cluster.
            a.dynamic = f.value_from;
            if f.value.is_none() && !f.value_from {
                a.value = Some(String::new());
            }
            self.out.push(a);
        }
        self.value_is_container();
    }
}

impl MarkedEventReceiver for Reader<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) => self.scalar(text, mark.line()),
            Event::MappingStart(..) => {
                let role = self.child_role(true);
                self.stack.push(Frame::new(role, true));
            }
            Event::SequenceStart(..) => {
                let role = self.child_role(false);
                self.stack.push(Frame::new(role, false));
            }
            Event::MappingEnd | Event::SequenceEnd => self.end(),
            Event::Alias(_) => {
                // An alias in key position is a key we cannot name; as a value it ends the pair.
                if let Some(top) = self.stack.last_mut()
                    && top.is_map
                {
                    if top.key.is_some() {
                        top.key = None;
                    } else {
                        top.key = Some(("*alias".into(), mark.line()));
                    }
                }
            }
            Event::DocumentStart | Event::DocumentEnd => self.stack.clear(),
            _ => {}
        }
    }
}

/// Reads every `env:` entry (and Compose `environment:`) of a YAML stream.
pub fn parse(text: &str, source: &str) -> Result<Vec<Assignment>> {
    let mut r = Reader {
        source,
        stack: Vec::new(),
        out: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut r, true) {
        let m = e.marker();
        bail!(
            "{source}:{}: not valid YAML ({}): fix the manifest",
            m.line(),
            e.info()
        );
    }
    Ok(r.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lists_in_pods_jobs_and_mpijobs_with_lines() {
        let text = "apiVersion: kubeflow.org/v2beta1\nkind: MPIJob\nspec:\n  mpiReplicaSpecs:\n    Worker:\n      template:\n        spec:\n          containers:\n          - name: worker\n            env:\n            - name: NCCL_DEBUG\n              value: \"WARN\"\n            - value: '=mlx5_0:1'\n              name: NCCL_IB_HCA\n            - name: NCCL_SOCKET_IFNAME\n              valueFrom:\n                configMapKeyRef: {name: net, key: ifname}\n---\napiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - env: [{name: NCCL_ALGO, value: Ring}]\n";
        let a = parse(text, "job.yaml").expect("yaml");
        let got: Vec<(&str, Option<&str>, usize, bool)> = a
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_deref(), a.line, a.dynamic))
            .collect();
        assert_eq!(
            got,
            [
                ("NCCL_DEBUG", Some("WARN"), 11, false),
                ("NCCL_IB_HCA", Some("=mlx5_0:1"), 14, false),
                ("NCCL_SOCKET_IFNAME", None, 15, true),
                ("NCCL_ALGO", Some("Ring"), 23, false),
            ]
        );
    }

    #[test]
    fn compose_environment_and_bad_yaml() {
        let a = parse(
            "services:\n  t:\n    environment:\n      NCCL_DEBUG: INFO\n  u:\n    environment:\n      - NCCL_ALGO=Ring\n",
            "compose.yaml",
        )
        .expect("yaml");
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].name.as_str(), a[0].line), ("NCCL_DEBUG", 4));
        assert_eq!(
            (a[1].name.as_str(), a[1].value.as_deref()),
            ("NCCL_ALGO", Some("Ring"))
        );
        let e = parse("env:\n  - name: [unclosed\n", "bad.yaml").expect_err("bad");
        assert!(e.to_string().starts_with("bad.yaml:"), "{e}");
        // Deep nesting is no stack overflow.
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        let _ = parse(&deep, "deep.yaml");
    }
}
