//! `nccltune place`: read a cluster file (or build a synthetic cluster), place tensor- and
//! pipeline-parallel groups, print the placement with its estimated all-reduce costs.

use super::emit;
use anyhow::{Result, bail};
use clap::{ArgGroup, Args, ValueEnum};
use nccltune::outcome::Outcome;
use nccltune::place::{self, BudgetOptions, Options, Replicas, Scope, cluster, cost};
use nccltune::render;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PlaceFormat {
    Table,
    Json,
    Hostfile,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Within {
    /// Inside one node (NVLink / NVSwitch).
    Node,
    /// Inside one rack.
    Rack,
    /// Anywhere.
    Any,
}

impl From<Within> for Scope {
    fn from(w: Within) -> Scope {
        match w {
            Within::Node => Scope::IntraNode,
            Within::Rack => Scope::IntraRack,
            Within::Any => Scope::CrossRack,
        }
    }
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").args(["cluster", "nodes", "print_links"]).required(true)))]
pub struct PlaceArgs {
    /// Cluster file: TOML `[[node]]` tables (name, rack, gpus, used = [indices] or a count,
    /// optional pod, nics, nic_gbps), or the same shape in JSON.
    #[arg(long, value_name = "FILE")]
    pub cluster: Option<PathBuf>,

    /// Synthetic cluster instead of a file: this many nodes, all GPUs free.
    #[arg(long, value_name = "N", conflicts_with = "cluster")]
    pub nodes: Option<usize>,

    /// Synthetic cluster: GPUs per node.
    #[arg(long, value_name = "G", default_value_t = 8, requires = "nodes")]
    pub gpus_per_node: u32,

    /// Synthetic cluster: nodes per rack.
    #[arg(long, value_name = "K", default_value_t = 32, requires = "nodes")]
    pub nodes_per_rack: usize,

    /// Synthetic cluster: racks per pod (optional higher level).
    #[arg(long, value_name = "K", requires = "nodes")]
    pub racks_per_pod: Option<usize>,

    /// Tensor-parallel degree: GPUs per TP group.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536), required_unless_present = "print_links")]
    pub tp: Option<u32>,

    /// Pipeline-parallel degree: TP groups (stages) per replica.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub pp: u32,

    /// Replicas to place (default 1); the answer is no (exit 1) when fewer fit.
    #[arg(long, value_name = "N", conflicts_with = "max_replicas", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub replicas: Option<u64>,

    /// Place as many replicas as fit.
    #[arg(long)]
    pub max_replicas: bool,

    /// The widest a TP group may reach.
    #[arg(long, value_enum, value_name = "SCOPE", default_value_t = Within::Any)]
    pub tp_within: Within,

    /// The widest a replica's pipeline may reach.
    #[arg(long, value_enum, value_name = "SCOPE", default_value_t = Within::Any)]
    pub pp_within: Within,

    /// Shorthand for --tp-within node --pp-within rack: refuse anything else.
    #[arg(long, conflicts_with_all = ["tp_within", "pp_within"])]
    pub strict: bool,

    /// All-reduce message size for the cost estimate, e.g. 16MiB, 4MB, 65536.
    #[arg(long, value_name = "SIZE", conflicts_with = "hidden_size")]
    pub message_size: Option<String>,

    /// Model hidden size: the message is hidden size x --tokens x --dtype-bytes.
    #[arg(long, value_name = "H", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub hidden_size: Option<u64>,

    /// Tokens per all-reduce (the batch of one decode step), with --hidden-size.
    #[arg(long, value_name = "T", default_value_t = 1, requires = "hidden_size", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub tokens: u64,

    /// Bytes per element (2 for bf16/fp16), with --hidden-size.
    #[arg(long, value_name = "B", default_value_t = 2, requires = "hidden_size", value_parser = clap::value_parser!(u64).range(1..=16))]
    pub dtype_bytes: u64,

    /// Latency-budget view: target decode tokens per second per replica.
    #[arg(long, value_name = "N", requires = "layers")]
    pub tokens_per_s: Option<f64>,

    /// Transformer layers of the model (for the latency budget).
    #[arg(long, value_name = "L", requires = "tokens_per_s", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub layers: Option<u32>,

    /// Link constants file replacing the built-in one (see --print-links for the format).
    #[arg(long, value_name = "FILE")]
    pub links: Option<PathBuf>,

    /// Print the built-in link constants (TOML, with sources) and exit.
    #[arg(long)]
    pub print_links: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = PlaceFormat::Table)]
    pub format: PlaceFormat,

    /// Also write one host file per replica into DIR (replica-<n>.hosts).
    #[arg(long, value_name = "DIR")]
    pub hostfile_dir: Option<PathBuf>,
}

pub fn run(args: PlaceArgs) -> Result<Outcome> {
    if args.print_links {
        emit(cost::DEFAULT_LINKS)?;
        return Ok(Outcome::Ok);
    }
    let Some(tp) = args.tp else {
        bail!("--tp is required, e.g. --tp 8");
    };
    let links = match &args.links {
        Some(p) => cost::Links::load(p)?,
        None => cost::Links::builtin()?,
    };
    let (message_bytes, message_source) = if let Some(s) = &args.message_size {
        let b = cost::parse_size(s).map_err(|e| anyhow::anyhow!("--message-size: {e}"))?;
        (b, format!("--message-size {s}"))
    } else if let Some(h) = args.hidden_size {
        let b = h.saturating_mul(args.tokens).saturating_mul(args.dtype_bytes);
        (
            b,
            format!(
                "hidden size {h} x {} token(s) x {} bytes",
                args.tokens, args.dtype_bytes
            ),
        )
    } else {
        (
            16 << 20,
            "default: 16 MiB, the article's smaller size; give --message-size or --hidden-size".into(),
        )
    };
    let budget = match (args.tokens_per_s, args.layers) {
        (Some(t), Some(layers)) => {
            if !(t.is_finite() && t > 0.0 && t <= 1e9) {
                bail!("--tokens-per-s {t}: expected a positive rate, e.g. 30");
            }
            Some(BudgetOptions {
                tokens_per_s: t,
                layers,
            })
        }
        _ => None,
    };
    let cluster = match (&args.cluster, args.nodes) {
        (Some(p), _) => cluster::load(p)?,
        (None, Some(n)) => {
            cluster::synthetic(n, args.gpus_per_node, args.nodes_per_rack, args.racks_per_pod)?
        }
        (None, None) => bail!("give --cluster FILE or --nodes N"),
    };
    let (tp_within, pp_within) = if args.strict {
        (Scope::IntraNode, Scope::IntraRack)
    } else {
        (args.tp_within.into(), args.pp_within.into())
    };
    let replicas = if args.max_replicas {
        Replicas::Max
    } else {
        Replicas::Exactly(usize::try_from(args.replicas.unwrap_or(1)).unwrap_or(usize::MAX))
    };
    let opts = Options {
        tp,
        pp: args.pp,
        replicas,
        tp_within,
        pp_within,
        message_bytes,
        message_source,
        links,
        budget,
    };
    if let Some(dir) = &args.hostfile_dir {
        // Refuse a used directory before placing: files of an earlier placement with more
        // replicas would otherwise sit beside these and look current.
        if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
            bail!(
                "--hostfile-dir {}: directory is not empty; choose a new or empty directory so that host files of an earlier placement are not mixed with these",
                dir.display()
            );
        }
    }
    let report = place::place(&cluster, &opts);
    if let Some(dir) = &args.hostfile_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("--hostfile-dir {}: cannot create: {e}", dir.display()))?;
        for rep in &report.replicas {
            let path = dir.join(format!("replica-{}.hosts", rep.replica));
            nccltune::output::write_atomic(&path, render::place::replica_hostfile(&report, rep).as_bytes())?;
        }
        eprintln!(
            "nccltune: wrote {} host file(s) into {}",
            report.replicas.len(),
            dir.display()
        );
    }
    let text = match args.format {
        PlaceFormat::Table => render::place::to_table(&report),
        PlaceFormat::Json => render::json(&report)?,
        PlaceFormat::Hostfile => render::place::to_hostfile(&report),
    };
    emit(&text)?;
    if !report.feasible {
        for r in &report.reasons {
            eprintln!("nccltune: place: {r}");
        }
        for a in &report.alternatives {
            eprintln!("nccltune: place: instead: {a}");
        }
    }
    Ok(Outcome::from_failed(!report.feasible))
}
