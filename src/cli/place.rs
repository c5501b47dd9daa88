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
    /// One host name per rank (launch with `mpirun --map-by seq` or `srun --distribution=arbitrary`).
    Hostfile,
    /// OpenMPI rank files (`rank N=host slot=L`).
    Rankfile,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Within {
    /// Inside one node (NVLink / NVSwitch).
    Node,
    /// Inside one multi-node NVLink domain (e.g. across the trays of a GB200 NVL72); a node
    /// where the cluster names no domains.
    Domain,
    /// Inside one rack.
    Rack,
    /// Anywhere.
    Any,
}

impl From<Within> for Scope {
    fn from(w: Within) -> Scope {
        match w {
            Within::Node => Scope::IntraNode,
            Within::Domain => Scope::IntraDomain,
            Within::Rack => Scope::IntraRack,
            Within::Any => Scope::CrossRack,
        }
    }
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").args(["cluster", "nodes", "print_links"]).required(true)))]
pub struct PlaceArgs {
    /// Cluster file: TOML `[[node]]` tables (name, rack, gpus, used = [indices] or a count,
    /// optional pod, nics, nic_gbps, nvlink, nvlink_domain, pcie_gen, pcie_width; optional
    /// `[[nvlink_domain]]` tables with name, gpus, trays), or the same shape in JSON.
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

    /// Shorthand for --tp-within domain --pp-within rack: refuse anything else (TP groups stay
    /// inside a node, or inside an NVLink domain where the cluster names them).
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

    /// Also write one host file and one OpenMPI rank file per replica into DIR
    /// (replica-<n>.hosts, replica-<n>.rankfile); the set appears whole or not at all.
    #[arg(long, value_name = "DIR")]
    pub hostfile_dir: Option<PathBuf>,

    /// Write the placement to FILE atomically instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
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
        (Scope::IntraDomain, Scope::IntraRack)
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
        let mut files = Vec::with_capacity(report.replicas.len() * 2);
        for rep in &report.replicas {
            files.push((
                format!("replica-{}.hosts", rep.replica),
                render::place::replica_hostfile(&report, rep),
            ));
            files.push((
                format!("replica-{}.rankfile", rep.replica),
                render::place::replica_rankfile(&report, rep),
            ));
        }
        write_dir_whole(dir, &files)?;
        eprintln!(
            "nccltune: wrote {} host file(s) and rank file(s) into {}",
            report.replicas.len(),
            dir.display()
        );
    }
    let text = match args.format {
        PlaceFormat::Table => render::place::to_table(&report),
        PlaceFormat::Json => render::json(&report)?,
        PlaceFormat::Hostfile => render::place::to_hostfile(&report),
        PlaceFormat::Rankfile => render::place::to_rankfile(&report),
    };
    match &args.output {
        Some(p) => nccltune::output::write_atomic(p, text.as_bytes())?,
        None => emit(&text)?,
    }
    if !report.feasible {
        for r in &report.reasons {
            super::note("nccltune: place: ", r);
        }
        for a in &report.alternatives {
            super::note("nccltune: place: instead: ", a);
        }
    }
    Ok(Outcome::from_failed(!report.feasible))
}

/// Writes `files` into a new folder beside `dir` and renames it to `dir` in one step, so that
/// an interrupted run leaves either no set or the whole set (never a set that looks complete
/// and is not). `dir` must be absent or an empty folder (rename replaces an empty folder).
/// The temporary folder is created exclusively (`mkdir` fails on anything already there,
/// a planted symlink included) under a name with the process id and the time.
fn write_dir_whole(dir: &std::path::Path, files: &[(String, String)]) -> Result<()> {
    use std::io::Write;
    let shown = dir.display();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = dir.file_name() else {
        bail!("--hostfile-dir {shown}: not a folder name");
    };
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => {
            bail!("--hostfile-dir {shown}: is a symbolic link; give the real folder")
        }
        Ok(m) if !m.is_dir() => bail!("--hostfile-dir {shown}: exists and is not a folder"),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("--hostfile-dir {shown}: {e}"),
    }
    std::fs::create_dir_all(&parent)
        .map_err(|e| anyhow::anyhow!("--hostfile-dir {shown}: cannot create {}: {e}", parent.display()))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = parent.join(format!(
        ".{}.nccltune-{}-{nanos:09}.partial",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::create_dir(&tmp)
        .map_err(|e| anyhow::anyhow!("--hostfile-dir {shown}: cannot create {}: {e}", tmp.display()))?;
    let result = (|| -> std::io::Result<()> {
        for (file, text) in files {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(tmp.join(file))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        let hint = if e.raw_os_error() == Some(39) || e.kind() == std::io::ErrorKind::DirectoryNotEmpty {
            "; the folder is not empty: choose a new or empty folder so that host files of an earlier placement are not mixed with these"
        } else {
            ""
        };
        bail!("--hostfile-dir {shown}: cannot write the host files: {e}{hint}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_dir_whole;

    fn leftovers(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("read")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_host_file_set_appears_whole_or_not_at_all() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("hosts");
        let files = vec![
            ("replica-0.hosts".to_string(), "a\n".to_string()),
            ("replica-0.rankfile".to_string(), "rank 0=a slot=0\n".to_string()),
        ];
        write_dir_whole(&dir, &files).expect("writes");
        let mut got = leftovers(&dir);
        got.sort();
        assert_eq!(got, ["replica-0.hosts", "replica-0.rankfile"]);
        assert_eq!(leftovers(tmp.path()), ["hosts"], "no temporary folder left");

        // A failure part-way (the second file cannot be created) leaves no folder at all.
        let broken = tmp.path().join("broken");
        let bad = vec![
            ("replica-0.hosts".to_string(), "a\n".to_string()),
            ("missing/replica-1.hosts".to_string(), "b\n".to_string()),
        ];
        let e = write_dir_whole(&broken, &bad).expect_err("fails");
        assert!(e.to_string().contains("--hostfile-dir"), "{e}");
        assert!(!broken.exists());
        assert_eq!(leftovers(tmp.path()), ["hosts"]);

        // A folder that is not empty is not mixed into; a symlink or a file is refused.
        let e = write_dir_whole(&dir, &files).expect_err("not empty");
        assert!(e.to_string().contains("not empty"), "{e}");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        assert!(write_dir_whole(&link, &files).is_err());
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").expect("write");
        assert!(write_dir_whole(&file, &files).is_err());
        // An empty folder is replaced whole.
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        write_dir_whole(&empty, &files).expect("replaces an empty folder");
        assert_eq!(leftovers(&empty).len(), 2);
    }
}
