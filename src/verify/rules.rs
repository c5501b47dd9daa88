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
    /// The default on C2C nodes (Grace), from `c2c_since` on.
    pub c2c_level: String,
    pub c2c_since: String,
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nvls {
    pub min_driver: String,
    pub source: String,
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
        assert!(r.nvls.source.contains("search.cc"));
    }
}
