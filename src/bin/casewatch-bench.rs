//! The `casewatch-bench` binary: the whole-process measurements that
//! `scripts/bench.sh` drives (the library's [`casewatch::bench`] module),
//! kept out of the production `casewatch` binary so that what is installed
//! on a probe host carries no benchmark servers or load generators.

use std::process::ExitCode;

use casewatch::bench::BenchCommand;
use casewatch::commands::EXIT_FAILED;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "casewatch-bench",
    version,
    about = "casewatch's benchmark tools (see scripts/bench.sh and benches/): a fixed-delay server, drivers, and the figures read from their logs."
)]
struct BenchCli {
    /// Log filter, as for `casewatch --log`.
    #[arg(long, env = "CASEWATCH_LOG", default_value = casewatch::logging::DEFAULT_FILTER)]
    log: String,
    #[command(subcommand)]
    command: BenchCommand,
}

fn main() -> ExitCode {
    let cli = BenchCli::parse();
    casewatch::logging::init(&cli.log, casewatch::logging::LogFormat::Text);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("casewatch-bench: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILED as u8);
        }
    };
    match runtime.block_on(casewatch::bench::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("casewatch-bench: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
