//! The `casewatch` binary: parse flags, set up logging and the runtime, run a
//! command, and print any error with its whole cause chain.

use std::process::ExitCode;

use casewatch::cli::{Cli, Command};
use casewatch::commands::{self, DemoCommand, SimCommand, EXIT_FAILED};
use casewatch::logging::LogFormat;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli.log_format;
    casewatch::logging::init(&cli.log, log_format);

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("casewatch: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILED as u8);
        }
    };
    let result = runtime.block_on(dispatch(cli.command));
    // Everything the command waits for has ended; a thread of the blocking
    // pool stuck in a system call must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    exit_code(result, log_format)
}

/// Runs the command: whether it succeeded, or why it could not run.
async fn dispatch(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Run {
            config,
            listen,
            journal,
            stop_deadline,
            web_config,
        } => commands::run(
            &config,
            listen,
            journal,
            stop_deadline,
            web_config.as_deref(),
        )
        .await
        .map(|_| true),
        Command::Once { config, journey } => commands::once(&config, journey.as_deref()).await,
        Command::CheckConfig { file, offline } => commands::check_config(&file, offline),
        Command::Sim {
            profile,
            ics_listen,
            css_listen,
            control,
            password_env,
        } => commands::sim(SimCommand {
            profile: profile.as_deref(),
            ics_listen,
            css_listen,
            control,
            password_env: &password_env,
        })
        .await
        .map(|_| true),
        Command::Report {
            journal,
            central,
            from,
            to,
            out,
            format,
            rule_age,
            period,
        } => {
            let cmd = casewatch::report::command::ReportCommand {
                journals: journal,
                from,
                to,
                out,
                format,
                period,
                rule_age,
            };
            match central.prometheus.is_some() {
                true => casewatch::report::command::report_central(cmd, *central).await,
                false => casewatch::report::command::report(cmd),
            }
            .map(|_| true)
        }
        Command::Export {
            journal,
            format,
            from,
            to,
            out,
        } => casewatch::report::command::export(&journal, format, from, to, out).map(|_| true),
        Command::Journal { command } => casewatch::report::command::journal(command).map(|_| true),
        Command::Demo {
            duration,
            listen,
            ics_listen,
            css_listen,
            profile,
            config,
            journal,
            history,
            web_config,
        } => commands::demo(DemoCommand {
            duration,
            listen,
            ics_listen,
            css_listen,
            profile: profile.as_deref(),
            config: config.as_deref(),
            journal,
            history: history.as_deref(),
            web_config: web_config.as_deref(),
        })
        .await
        .map(|_| true),
    }
}

/// The process's exit code, after printing any error in the log's format.
fn exit_code(result: anyhow::Result<bool>, log_format: LogFormat) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_FAILED as u8),
        Err(error) => {
            match log_format {
                LogFormat::Text => eprintln!("casewatch: error: {error:#}"),
                // A log stack reads standard error: the error is one of its
                // lines, with the whole cause chain in one field.
                LogFormat::Json => {
                    tracing::error!(error = format!("{error:#}"), "casewatch stopped")
                }
            }
            // A usage or configuration problem, as clap reports its own.
            ExitCode::from(2)
        }
    }
}
