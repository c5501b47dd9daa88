//! `bench tune`: from sweep runs (one run per NCCL_ALGO x NCCL_PROTO plus one with NCCL's
//! defaults), `nccl_tuner.conf` for NCCL's example tuner plugin, written the way that plugin reads
//! it (NCCL 2.30.7 `plugins/tuner/example/plugin.c`, formerly `ext-tuner/example`):
//!
//! - `collective,min_bytes,max_bytes,algorithm,protocol,channels,nNodes,nRanks`, ranges closed
//!   (`nBytes >= min && nBytes <= max`), the first matching line wins;
//! - `getCollInfo` sets `*nChannels = 1` on entry and keeps it for a matched line whose channels
//!   field is -1 and for every call no line matches; NCCL keeps its own channel count only when
//!   the plugin leaves 0 (NCCL `src/enqueue.cc`). So every line says channels 0 (no sweep here
//!   measures channel counts), and every size range the sweep covered gets a line: the measured
//!   winner where it is faster than the default beyond the noise, else NCCL's own choice as its
//!   TUNING lines recorded it. Ranges with neither are reported loudly as uncovered;
//! - names as the plugin's `parseAlgorithm`/`parseProtocol` accept them (an unknown name silently
//!   becomes ring/simple there); lines are kept under its 256-byte `fgets` buffer, since a longer
//!   line is read as two.
//!
//! Sizes are nccl-tests' `size` column (the larger of one rank's send and receive bytes), which
//! is the `nBytes` NCCL passes the plugin (`ncclFuncMaxSendRecvCount` in NCCL `src/enqueue.cc`).

use crate::parse::nccl_tests::{Run, plugin_algo_name, plugin_proto_name};
use serde::Serialize;
use std::collections::BTreeMap;

/// The largest `size_t` the plugin's `strtoull` can hold (64-bit hosts).
pub const MAX_BYTES: u64 = u64::MAX;

/// The plugin reads lines with `fgets(line, 256, file)`.
const PLUGIN_LINE_MAX: usize = 255;

/// Below this relative spread, differences are still treated as noise: a floor for runs whose
/// repeated measurements happen to agree closely.
pub const NOISE_FLOOR: f64 = 0.01;

/// One sweep run and the choice it was made with (`None`, `None`: NCCL's defaults).
#[derive(Debug, Clone)]
pub struct SweepRun {
    pub run: Run,
    pub algo: Option<&'static str>,
    pub proto: Option<&'static str>,
}

/// Where a line's choice comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// Measured faster than the default run beyond the noise.
    Measured,
    /// NCCL's own choice (its TUNING lines in the default run): the line only keeps NCCL's
    /// channel count, which an unmatched call would lose.
    NcclDefault,
}

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub collective: String,
    pub min_bytes: u64,
    pub max_bytes: u64,
    pub algorithm: String,
    pub protocol: String,
    pub channels: i32,
    pub nnodes: i64,
    pub nranks: i64,
    pub basis: Basis,
    /// The measured sizes inside the range.
    pub sizes: Vec<u64>,
    /// Mean time of the choice over those sizes, and of the default run, microseconds.
    pub time_us: Option<f64>,
    pub default_time_us: Option<f64>,
    /// Speed-up against the default, percent (mean over the sizes).
    pub gain_pct: Option<f64>,
    /// The noise margin a gain had to beat, percent (largest over the sizes).
    pub noise_pct: f64,
}

/// A size range of a swept collective that gets no line.
#[derive(Debug, Clone, Serialize)]
pub struct Uncovered {
    pub collective: String,
    pub min_bytes: u64,
    pub max_bytes: u64,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TuneResult {
    pub lines: Vec<Line>,
    pub uncovered: Vec<Uncovered>,
    /// Collectives swept that the plugin cannot tune, and other notes.
    pub warnings: Vec<String>,
    pub noise_method: String,
}

/// Options of `bench tune`.
#[derive(Debug, Clone, Default)]
pub struct TuneOptions {
    /// Write -1 for nNodes and nRanks: the lines then match any communicator shape.
    pub any_shape: bool,
}

/// Algorithm and protocol of a run: the recorded `NCCL_ALGO`/`NCCL_PROTO` (JSON `env`, NCCL's
/// `set by environment` lines), else the file name (`all_reduce.Ring.LL128.txt`). Returns an
/// error text for a value the plugin cannot express (a list such as `Ring,Tree`, or `^LL`).
pub fn choice_of(run: &Run) -> Result<(Option<&'static str>, Option<&'static str>), String> {
    let from_env = |key: &str, f: fn(&str) -> Option<&'static str>| -> Result<Option<&'static str>, String> {
        match run.nccl_env.get(key) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => f(v.trim())
                .map(Some)
                .ok_or_else(|| format!("{key}={v} is not one algorithm/protocol the tuner plugin can name")),
        }
    };
    let mut algo = from_env("NCCL_ALGO", plugin_algo_name)?;
    let mut proto = from_env("NCCL_PROTO", plugin_proto_name)?;
    if algo.is_none() || proto.is_none() {
        let name = run
            .source
            .rsplit('/')
            .next()
            .unwrap_or(&run.source)
            .to_lowercase();
        for tok in name.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
            if algo.is_none() && !run.nccl_env.contains_key("NCCL_ALGO") {
                algo = plugin_algo_name(tok).filter(|_| !tok.chars().all(|c| c.is_ascii_digit()));
            }
            if proto.is_none() && !run.nccl_env.contains_key("NCCL_PROTO") {
                proto = plugin_proto_name(tok).filter(|_| !tok.chars().all(|c| c.is_ascii_digit()));
            }
        }
    }
    Ok((algo, proto))
}

/// The collective name the tuner file uses (`allreduce`, not `all_reduce`).
pub fn tuner_name(collective: &str) -> Option<&'static str> {
    Some(match collective {
        "all_reduce" => "allreduce",
        "all_gather" => "allgather",
        "reduce_scatter" => "reducescatter",
        "broadcast" => "broadcast",
        "reduce" => "reduce",
        _ => return None,
    })
}

/// Every time measured at `size` in these runs (out-of-place and in-place, every repeat).
fn times(runs: &[&SweepRun], size: u64) -> Vec<f64> {
    runs.iter()
        .flat_map(|r| r.run.rows.iter().filter(move |row| row.size_bytes == size))
        .flat_map(|row| {
            [
                row.out_of_place.time_us,
                row.in_place.as_ref().and_then(|m| m.time_us),
            ]
        })
        .flatten()
        .filter(|t| t.is_finite() && *t > 0.0)
        .collect()
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Relative spread (max - min) / mean of repeated measurements, `None` with fewer than two.
fn spread(v: &[f64]) -> Option<f64> {
    if v.len() < 2 {
        return None;
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0_f64, f64::max);
    mean(v).map(|m| (hi - lo) / m)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

const NOISE_METHOD: &str = "noise per size = the larger of the default run's spread and the median spread over all choices, where spread = (max - min) / mean of the repeated measurements of one choice at that size (out-of-place and in-place of each run, and repeated runs); at least 1 %. A choice is written only when its mean time is below the default's by more than that.";

#[derive(Debug, Clone, PartialEq)]
enum Decision {
    Choice {
        algo: String,
        proto: String,
        basis: Basis,
    },
    Uncovered(String),
}

struct SizeDecision {
    size: u64,
    decision: Decision,
    time: Option<f64>,
    default_time: Option<f64>,
    noise: f64,
}

fn shape(run: &Run) -> (usize, Option<u32>) {
    let mut h: Vec<&str> = run.devices.iter().map(|d| &*d.host).collect();
    h.sort_unstable();
    h.dedup();
    (h.len(), run.nranks)
}

/// NCCL's own choice at `size` from the default runs' TUNING lines.
fn nccl_choice(defaults: &[&SweepRun], func: &str, collective: &str, size: u64) -> Option<(String, String)> {
    for d in defaults {
        let n = u64::from(d.run.nranks.unwrap_or(1).max(1));
        // TUNING prints count x type size: per rank for allgather and reducescatter.
        let per_rank = matches!(collective, "all_gather" | "reduce_scatter");
        let found = d.run.nccl_choices.iter().find(|c| {
            c.func.as_deref().is_none_or(|f| f == func)
                && (if per_rank {
                    c.bytes.checked_mul(n) == Some(size)
                } else {
                    c.bytes == size
                })
        });
        if let Some(c) = found {
            return Some((c.algo.clone(), c.proto.clone()));
        }
    }
    None
}

/// Per collective and size: the fastest measured choice when it beats the default beyond the
/// noise, else NCCL's own; merged into contiguous closed ranges from 0 to [`MAX_BYTES`].
pub fn tune(runs: &[SweepRun], opts: &TuneOptions) -> Result<TuneResult, String> {
    let mut result = TuneResult {
        lines: Vec::new(),
        uncovered: Vec::new(),
        warnings: Vec::new(),
        noise_method: NOISE_METHOD.into(),
    };
    let mut collectives: Vec<String> = runs.iter().filter_map(|r| r.run.collective.clone()).collect();
    collectives.sort();
    collectives.dedup();
    // One communicator shape per tuning: lines pinned to it must describe the runs measured.
    let shapes: Vec<(usize, Option<u32>)> = {
        let mut s: Vec<_> = runs.iter().map(|r| shape(&r.run)).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    if shapes.len() > 1 {
        return Err(format!(
            "the runs come from different shapes ({}): tune one node count and rank count at a time",
            shapes
                .iter()
                .map(|(h, r)| format!("{h} host(s) x {} ranks", r.map_or("?".into(), |r| r.to_string())))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let (hosts, nranks) = shapes.first().copied().unwrap_or((0, None));
    let (nnodes, nranks) = if opts.any_shape {
        (-1, -1)
    } else {
        let (Some(r), true) = (nranks, hosts > 0) else {
            return Err("the runs do not say how many hosts and ranks they used (no `# Using devices` block / config.devices): pass --any-shape to write -1 for nNodes and nRanks".into());
        };
        (hosts as i64, i64::from(r))
    };
    for coll in collectives {
        let Some(func) = tuner_name(&coll) else {
            result.warnings.push(format!(
                "{coll}: NCCL's example tuner plugin tunes broadcast, reduce, allgather, reducescatter and allreduce only; {coll} gets no line"
            ));
            continue;
        };
        let of_coll: Vec<&SweepRun> = runs
            .iter()
            .filter(|r| r.run.collective.as_deref() == Some(coll.as_str()))
            .collect();
        let defaults: Vec<&SweepRun> = of_coll
            .iter()
            .copied()
            .filter(|r| r.algo.is_none() && r.proto.is_none())
            .collect();
        if defaults.is_empty() {
            result.uncovered.push(Uncovered {
                collective: func.into(),
                min_bytes: 0,
                max_bytes: MAX_BYTES,
                why: "no run with NCCL's defaults (no NCCL_ALGO/NCCL_PROTO) to compare against: nothing can be shown to be faster".into(),
            });
            continue;
        }
        // A run that forces only one of the two still lets NCCL pick the other: the plugin line
        // needs both, so such runs are not candidates.
        let mut choices: BTreeMap<(&str, &str), Vec<&SweepRun>> = BTreeMap::new();
        for r in &of_coll {
            match (r.algo, r.proto) {
                (Some(a), Some(p)) => choices.entry((a, p)).or_default().push(r),
                (None, None) => {}
                _ => result.warnings.push(format!(
                    "{}: sets only one of NCCL_ALGO/NCCL_PROTO; a tuner line needs both, so it is not a candidate",
                    r.run.source
                )),
            }
        }
        let mut sizes: Vec<u64> = defaults
            .iter()
            .flat_map(|d| d.run.rows.iter().map(|r| r.size_bytes))
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        if sizes.is_empty() {
            result.uncovered.push(Uncovered {
                collective: func.into(),
                min_bytes: 0,
                max_bytes: MAX_BYTES,
                why: "the default run has no rows".into(),
            });
            continue;
        }
        let mut decisions = Vec::new();
        for &size in &sizes {
            let def_times = times(&defaults, size);
            let default_time = mean(&def_times);
            let spreads: Vec<f64> = choices
                .values()
                .filter_map(|rs| spread(&times(rs, size)))
                .collect();
            let noise = spread(&def_times)
                .unwrap_or(0.0)
                .max(median(spreads).unwrap_or(0.0))
                .max(NOISE_FLOOR);
            let best = choices
                .iter()
                .filter_map(|((a, p), rs)| Some((mean(&times(rs, size))?, *a, *p)))
                .min_by(|x, y| x.0.total_cmp(&y.0));
            let (decision, time) = match (best, default_time) {
                (Some((t, a, p)), Some(d)) if t < d * (1.0 - noise) => (
                    Decision::Choice {
                        algo: a.into(),
                        proto: p.into(),
                        basis: Basis::Measured,
                    },
                    Some(t),
                ),
                (_, d) => match nccl_choice(&defaults, func, &coll, size) {
                    Some((a, p)) => (
                        Decision::Choice {
                            algo: a,
                            proto: p,
                            basis: Basis::NcclDefault,
                        },
                        d,
                    ),
                    None => (
                        Decision::Uncovered(if best.is_none() {
                            "no forced run measured this size".into()
                        } else {
                            "no choice is faster than the default beyond the noise, and the default run has no NCCL TUNING line saying what NCCL picked (run it with NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=TUNING)".into()
                        }),
                        d,
                    ),
                },
            };
            decisions.push(SizeDecision {
                size,
                decision,
                time,
                default_time,
                noise,
            });
        }
        // Contiguous closed ranges: size s_i owns [s_i, s_{i+1} - 1]; the first range starts at
        // 0 and the last ends at MAX_BYTES (the nearest measured size speaks for the rest).
        let mut i = 0;
        while i < decisions.len() {
            let mut j = i;
            while j + 1 < decisions.len() && decisions[j + 1].decision == decisions[i].decision {
                j += 1;
            }
            let lo = if i == 0 { 0 } else { decisions[i].size };
            let hi = decisions
                .get(j + 1)
                .map_or(MAX_BYTES, |next| next.size.saturating_sub(1));
            let group = &decisions[i..=j];
            match &decisions[i].decision {
                Decision::Choice { algo, proto, basis } => {
                    let t = mean(&group.iter().filter_map(|d| d.time).collect::<Vec<_>>());
                    let dt = mean(&group.iter().filter_map(|d| d.default_time).collect::<Vec<_>>());
                    result.lines.push(Line {
                        collective: func.into(),
                        min_bytes: lo,
                        max_bytes: hi,
                        algorithm: algo.clone(),
                        protocol: proto.clone(),
                        channels: 0,
                        nnodes,
                        nranks,
                        basis: *basis,
                        sizes: group.iter().map(|d| d.size).collect(),
                        time_us: t.map(round2),
                        default_time_us: dt.map(round2),
                        gain_pct: match (t, dt, basis) {
                            (Some(t), Some(d), Basis::Measured) if d > 0.0 => {
                                Some(((d - t) / d * 1000.0).round() / 10.0)
                            }
                            _ => None,
                        },
                        noise_pct: (group.iter().map(|d| d.noise).fold(0.0, f64::max) * 1000.0).round()
                            / 10.0,
                    });
                }
                Decision::Uncovered(why) => result.uncovered.push(Uncovered {
                    collective: func.into(),
                    min_bytes: lo,
                    max_bytes: hi,
                    why: why.clone(),
                }),
            }
            i = j + 1;
        }
    }
    Ok(result)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The `nccl_tuner.conf` text.
pub fn to_conf(r: &TuneResult) -> String {
    let mut s = String::from(
        "# nccl_tuner.conf for NCCL's example tuner plugin, written by nccltune bench tune.\n\
         # collective_type,min_bytes,max_bytes,algorithm,protocol,channels,nNodes,nRanks\n\
         # Ranges are closed and contiguous from 0 to 2^64-1; sizes beyond the sweep take the\n\
         # choice of the nearest measured size. channels 0 keeps NCCL's channel count (the plugin\n\
         # sets 1 for -1 and for any call no line matches).\n\
         # Lines marked nccl-default repeat NCCL's own choice so that NCCL keeps its channels.\n\
         # Load: NCCL_TUNER_PLUGIN=<example plugin .so> NCCL_TUNER_CONFIG_FILE=<this file>\n",
    );
    for u in &r.uncovered {
        let line = format!(
            "# UNCOVERED {} {}-{}: NCCL runs these sizes on ONE channel with this plugin\n",
            u.collective, u.min_bytes, u.max_bytes
        );
        s.push_str(&line);
    }
    for l in &r.lines {
        let gain = match l.basis {
            Basis::Measured => format!(
                "# measured: {:+.1}% against the default (noise {:.1}%)",
                l.gain_pct.unwrap_or(0.0),
                l.noise_pct
            ),
            Basis::NcclDefault => "# nccl-default: NCCL's own choice, kept for its channel count".into(),
        };
        s.push_str(&gain[..gain.len().min(PLUGIN_LINE_MAX - 1)]);
        s.push('\n');
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            l.collective, l.min_bytes, l.max_bytes, l.algorithm, l.protocol, l.channels, l.nnodes, l.nranks
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::nccl_tests::{Metrics, Row};

    fn run(source: &str, env: &[(&str, &str)], times: &[(u64, f64)]) -> Run {
        Run {
            source: source.into(),
            collective: Some("all_reduce".into()),
            nranks: Some(16),
            devices: ["a", "b"]
                .iter()
                .map(|h| crate::parse::nccl_tests::Device {
                    host: (*h).into(),
                    ..Default::default()
                })
                .collect(),
            nccl_env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            rows: times
                .iter()
                .map(|(s, t)| Row {
                    size_bytes: *s,
                    out_of_place: Metrics {
                        time_us: Some(*t),
                        ..Default::default()
                    },
                    in_place: Some(Metrics {
                        time_us: Some(*t * 1.004),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn sweep(r: Run) -> SweepRun {
        let (algo, proto) = choice_of(&r).expect("choice");
        SweepRun { run: r, algo, proto }
    }

    #[test]
    fn choices_come_from_the_environment_or_the_file_name() {
        let r = run("sweep/all_reduce.Ring.LL128.txt", &[], &[]);
        assert_eq!(choice_of(&r), Ok((Some("ring"), Some("ll128"))));
        let r = run(
            "x.json",
            &[("NCCL_ALGO", "NVLSTree"), ("NCCL_PROTO", "Simple")],
            &[],
        );
        assert_eq!(choice_of(&r), Ok((Some("nvls_tree"), Some("simple"))));
        assert_eq!(choice_of(&run("default.txt", &[], &[])), Ok((None, None)));
        assert!(choice_of(&run("x.json", &[("NCCL_ALGO", "Ring,Tree")], &[])).is_err());
    }

    #[test]
    fn ranges_are_closed_contiguous_and_only_beat_the_default_beyond_noise() {
        let default = run("d.txt", &[], &[(1024, 20.0), (2048, 20.0), (4096, 30.0)]);
        // 10 % faster at 2048 only; 0.5 % faster at 4096 (noise).
        let ring = run(
            "all_reduce.Ring.LL.txt",
            &[],
            &[(1024, 25.0), (2048, 18.0), (4096, 29.85)],
        );
        let r = tune(&[sweep(default), sweep(ring)], &TuneOptions::default()).expect("tune");
        assert_eq!(r.lines.len(), 1, "{:?}", r.lines);
        let l = &r.lines[0];
        assert_eq!((l.min_bytes, l.max_bytes, l.channels), (2048, 4095, 0));
        assert_eq!((l.nnodes, l.nranks), (2, 16));
        assert_eq!(
            r.uncovered.len(),
            2,
            "no TUNING lines: 0..2047 and 4096.. are uncovered"
        );
        assert_eq!(
            (r.uncovered[0].min_bytes, r.uncovered[1].max_bytes),
            (0, u64::MAX)
        );
        let conf = to_conf(&r);
        assert!(conf.contains("allreduce,2048,4095,ring,ll,0,2,16\n"), "{conf}");
        assert!(conf.lines().all(|l| l.len() < 256));
        let any = tune(
            &[
                sweep(run("d.txt", &[], &[(1024, 20.0)])),
                sweep(run("all_reduce.Tree.LL.txt", &[], &[(1024, 10.0)])),
            ],
            &TuneOptions { any_shape: true },
        )
        .expect("tune");
        assert_eq!((any.lines[0].nnodes, any.lines[0].nranks), (-1, -1));
        assert_eq!((any.lines[0].min_bytes, any.lines[0].max_bytes), (0, u64::MAX));
    }
}
