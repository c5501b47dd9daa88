//! `nccltune completions SHELL` and `nccltune man`: generated from the same clap definition as
//! the parser, so they cannot drift from the real flags.

use super::{Cli, emit};
use anyhow::Result;
use clap::{CommandFactory, ValueEnum};
use nccltune::outcome::Outcome;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub fn completions(shell: Shell) -> Result<Outcome> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "nccltune", &mut buf);
    emit(&String::from_utf8_lossy(&buf))?;
    Ok(Outcome::Ok)
}

pub fn man() -> Result<Outcome> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut buf)?;
    // Subcommands get their own sections so `man nccltune` documents every flag.
    for sub in Cli::command().get_subcommands() {
        let title = format!("nccltune-{}", sub.get_name());
        clap_mangen::Man::new(sub.clone()).title(title).render(&mut buf)?;
    }
    emit(&String::from_utf8_lossy(&buf))?;
    Ok(Outcome::Ok)
}
