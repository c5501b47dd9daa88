//! What every machine-readable document says about itself besides its `schema`: the tool
//! version that wrote it and when (RFC 3339, UTC). Owned here so that JSON, JUnit, SARIF and
//! Prometheus outputs all carry the same two values from one clock reading.
//!
//! The time comes from `std::time::SystemTime` and a days-to-civil conversion, so no date
//! crate is needed. `SOURCE_DATE_EPOCH` (the reproducible-builds convention, seconds since the
//! epoch) replaces the clock when it is set, so generated files can be compared byte for byte.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The tool version and time of a run, to embed beside `schema` with `#[serde(flatten)]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub nccltune_version: String,
    /// RFC 3339 in UTC, whole seconds: `2026-12-02T06:31:26Z`.
    #[serde(default)]
    pub generated_at: String,
}

impl Meta {
    /// This build's version and the current time (or `SOURCE_DATE_EPOCH`).
    pub fn now() -> Meta {
        Meta::at(now())
    }

    /// This build's version and the time `t`.
    pub fn at(t: SystemTime) -> Meta {
        Meta {
            nccltune_version: env!("CARGO_PKG_VERSION").to_string(),
            generated_at: rfc3339(t),
        }
    }
}

/// The clock, or `SOURCE_DATE_EPOCH` when it holds a whole number of seconds.
pub fn now() -> SystemTime {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or_else(SystemTime::now, |secs| UNIX_EPOCH + Duration::from_secs(secs))
}

/// `t` as RFC 3339 UTC with whole seconds. Times before 1970 are written as the epoch: no run
/// of this tool happens then, and a clock that says so is wrong in a way we cannot repair.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().min(253_402_300_799)); // 9999-12-31T23:59:59Z
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `t` as the `YYYY-MM-DD` date a man page footer carries.
pub fn date(t: SystemTime) -> String {
    rfc3339(t)[..10].to_string()
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`, "chrono-Compatible Low-Level Date Algorithms").
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> String {
        rfc3339(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z"); // leap day of a /400 year
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(at(1_735_689_600), "2025-01-01T00:00:00Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z"); // 2100 is not a leap year
        assert_eq!(at(300_000_000_000), "9999-12-31T23:59:59Z"); // clamped
        assert_eq!(
            date(UNIX_EPOCH + Duration::from_secs(1_735_689_600)),
            "2025-01-01"
        );
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // Count forwards day by day and compare with the conversion: catches any month or
        // leap-year slip without trusting a second implementation.
        let mut ymd = (1970i64, 1u32, 1u32);
        let dim = |y: i64, m: u32| match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        for z in 0..146_097 {
            assert_eq!(civil_from_days(z), ymd, "day {z}");
            ymd.2 += 1;
            if ymd.2 > dim(ymd.0, ymd.1) {
                ymd.2 = 1;
                ymd.1 += 1;
                if ymd.1 > 12 {
                    ymd.1 = 1;
                    ymd.0 += 1;
                }
            }
        }
    }

    #[test]
    fn meta_serialises_both_fields() {
        let m = Meta::at(UNIX_EPOCH);
        let v = serde_json::to_value(&m).expect("json");
        assert_eq!(v["generated_at"], "1970-01-01T00:00:00Z");
        assert_eq!(v["nccltune_version"], env!("CARGO_PKG_VERSION"));
    }
}
