//! `mallbots`: parse the command line, set up logging, run, and report failure as one line.

use std::{io::Write as _, process::ExitCode};

use clap::Parser as _;

#[allow(
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "the process's own last words, before or after logging"
)]
fn main() -> ExitCode {
    let cli = match mallbots::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version; a reader that stopped early (`| head`) is not an error.
            let _ = write!(std::io::stdout(), "{}", error.render());
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let rendered = error.render().to_string();
            eprintln!(
                "{}",
                rendered
                    .lines()
                    .next()
                    .unwrap_or("error: invalid arguments")
            );
            return ExitCode::from(2);
        }
    };
    // Every command may build HTTP clients (gateway, busywork, webhooks): one TLS choice.
    host::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (level, format) = cli.logging();
    let telemetry = match runtime.block_on(async { host::telemetry::init(level, format) }) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: setting up logging: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(cli.run());
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", format!("{error:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
