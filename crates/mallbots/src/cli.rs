//! The `mallbots` command line: `serve` (the default) and `migrate`.

use std::time::Instant;

/// MallBots: robots fetch what customers order from the mall's stores.
///
/// Without PG_CONN everything runs embedded (SQLite files in DATA_DIR); every setting can be
/// given as a flag or as the environment variable shown.
#[derive(Debug, clap::Parser)]
#[command(name = "mallbots", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings of the default `serve` command.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the selected modules (the default).
    Serve(ServeArgs),
    /// Apply the selected modules' migrations and exit.
    Migrate(ServeArgs),
}

/// Settings shared by the commands that open the database.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Modules to run, comma-separated, or `all` (the monolith).
    #[arg(long, env = "MODULES", default_value = "all")]
    pub modules: String,
    /// Process settings.
    #[command(flatten)]
    pub host: host::Config,
}

impl Cli {
    /// Runs the chosen command to completion.
    ///
    /// # Errors
    /// Whatever stopped it; `main` prints it as one line and exits non-zero.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            None => serve(self.serve).await,
            Some(Command::Serve(args)) => serve(args).await,
            Some(Command::Migrate(args)) => {
                let modules = crate::select(&args.modules).map_err(anyhow::Error::msg)?;
                crate::migrate(&args.host, &modules).await
            }
        }
    }

    /// The settings the command runs with (for logging set-up).
    pub fn host_config(&self) -> &host::Config {
        match &self.command {
            None => &self.serve.host,
            Some(Command::Serve(args) | Command::Migrate(args)) => &args.host,
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let modules = crate::select(&args.modules).map_err(anyhow::Error::msg)?;
    let host = crate::start(args.host, &modules).await?;
    tracing::info!(
        http = %host.http_addr(),
        grpc = %host.grpc_addr(),
        backend = %host.db().backend(),
        modules = modules.len(),
        ready_in_ms = started.elapsed().as_millis(),
        "mallbots started"
    );
    host.run(host::shutdown_signal()).await
}
