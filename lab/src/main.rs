//! `vitrine-lab`: the demo, benchmarks and accuracy evaluation, beside the daemon (`vitrine`).

use std::process::ExitCode;

use clap::Parser;

mod cli;

/// Vitrine's laboratory: the demo, benchmarks and accuracy evaluation on real media. The
/// daemon and the field commands are `vitrine`.
#[derive(Parser)]
#[command(name = "vitrine-lab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: cli::ToolCommand,
}

/// Human-readable log lines on stderr (the demo runs the agent in this process).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VITRINE_LOG")
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    init_logging();
    match cli::run(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
