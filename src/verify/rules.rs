//! The embedded `rules.toml`: constants the checks judge by, each with its source.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub gdr: Gdr,
    pub nvls: Nvls,
    pub fabric: Fabric,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fabric {
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gdr {
    pub default_level: String,
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nvls {
    pub hopper_or_newer_architectures: Vec<String>,
    pub hopper_or_newer_names: Vec<String>,
    pub min_driver: String,
    pub source: String,
}

impl Nvls {
    /// Hopper or newer: the architecture `nvidia-smi -q` prints decides; the product name (a word
    /// of it, so `H20` does not match `H200` and vice versa) is the fallback.
    pub fn is_hopper_or_newer(&self, g: &crate::node::Gpu) -> bool {
        match &g.architecture {
            Some(a) => self
                .hopper_or_newer_architectures
                .iter()
                .any(|h| a.starts_with(h.as_str())),
            None => g.name.as_deref().is_some_and(|n| {
                n.split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|w| self.hopper_or_newer_names.iter().any(|h| h == w))
            }),
        }
    }
}

const RULES: &str = include_str!("rules.toml");

impl Rules {
    pub fn load() -> anyhow::Result<Rules> {
        toml::from_str(RULES).map_err(|e| anyhow::anyhow!("built-in src/verify/rules.toml: {e}"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_rules_parse() {
        let r = super::Rules::load().expect("rules");
        assert_eq!(r.gdr.default_level, "PXB");
        assert!(r.nvls.hopper_or_newer_names.iter().any(|n| n == "H100"));
    }
}
