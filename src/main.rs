//! The `retail-ingest` binary: parse the command line, start telemetry, dispatch.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = retail_ingest::cli::Cli::parse();
    retail_ingest::cli::main(cli)
}
