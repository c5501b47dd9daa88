//! The `nccltune` binary: parse the command line, run, map the outcome to an exit code.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::parse_args();
    match cli::run(cli) {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(err) => {
            // A closed stdout is not worth an error message.
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            anstream::eprintln!(
                "{} {}",
                cli::error_prefix(),
                nccltune::render::text::sanitize(&format!("{err:#}"))
            );
            ExitCode::from(2)
        }
    }
}
