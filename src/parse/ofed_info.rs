//! `ofed_info -s`: one line such as `MLNX_OFED_LINUX-24.10-1.1.4.0:` (MLNX_OFED) or
//! `OFED-internal-24.10-1.1.4:` (DOCA-OFED), usually with a trailing colon.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfedVersion {
    /// `MLNX_OFED`, `DOCA-OFED` or `other`.
    pub flavor: String,
    pub version: String,
    pub raw: String,
}

pub fn parse(text: &str) -> Option<OfedVersion> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let raw = line.trim_end_matches(':').to_string();
    let (flavor, version) = if let Some(v) = raw.strip_prefix("MLNX_OFED_LINUX-") {
        ("MLNX_OFED", v)
    } else if let Some(v) = raw.strip_prefix("OFED-internal-") {
        ("DOCA-OFED", v)
    } else if let Some(v) = raw
        .strip_prefix("DOCA-OFED-")
        .or_else(|| raw.strip_prefix("doca-ofed-"))
    {
        ("DOCA-OFED", v)
    } else {
        ("other", raw.as_str())
    };
    if !version.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some(OfedVersion {
        flavor: flavor.to_string(),
        version: version.to_string(),
        raw: raw.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlnx_and_doca_styles() {
        let m = parse("MLNX_OFED_LINUX-23.10-2.1.3.1:\n").expect("mlnx");
        assert_eq!(
            (m.flavor.as_str(), m.version.as_str()),
            ("MLNX_OFED", "23.10-2.1.3.1")
        );
        let d = parse("OFED-internal-24.10-1.1.4:").expect("doca");
        assert_eq!(
            (d.flavor.as_str(), d.version.as_str()),
            ("DOCA-OFED", "24.10-1.1.4")
        );
        assert_eq!(parse(""), None);
        assert_eq!(parse("command not found"), None);
    }
}
