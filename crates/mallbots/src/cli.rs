//! The `mallbots` command line: `serve` (the default), `migrate`, `gateway`, `busywork`,
//! `token`, and the operator's commands (`cli/operate.rs`).

mod operate;

use std::time::Instant;

use operate::{dlq, outbox, replay, saga};

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
    /// Inspect create-order sagas (the cosec module's database).
    Saga {
        /// What to do.
        #[command(subcommand)]
        action: SagaAction,
        /// Process settings (the database to look in).
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Inspect the outboxes: what each module has staged and not yet published.
    Outbox {
        /// What to do.
        #[command(subcommand)]
        action: OutboxAction,
        /// Process settings (the database to look in).
        #[command(flatten)]
        args: ServeArgs,
    },
    /// One HTTP port for modules run as separate processes: `/api/<module>…` is passed on to
    /// the module's server (GATEWAY_UPSTREAMS).
    Gateway(crate::gateway::GatewayArgs),
    /// Simulate store owners, customers and bots against a running mall and report throughput,
    /// latencies and lost orders (exit 1 when an order was lost or a request failed).
    Busywork(crate::busywork::BusyworkArgs),
    /// Print a development bearer token signed with AUTH_HS256_SECRET.
    Token(crate::token::TokenArgs),
    /// Rebuild a read model without re-firing side effects: `search` and `caches` are read
    /// again from the start of the stream by the running modules; `mall` and `catalog` are
    /// projected again from the stores event store, here.
    Replay {
        /// The read model.
        #[arg(value_parser = read_models())]
        projection: String,
        /// Only ask for it (search): do not wait for the running module to finish.
        #[arg(long)]
        no_wait: bool,
        /// Longest to wait for the search module to finish the rebuild.
        #[arg(long, default_value = "2m", value_parser = host::parse_duration)]
        timeout: std::time::Duration,
        /// Process settings (the database to look in).
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Inspect and handle dead letters: messages a consumer gave up on.
    Dlq {
        /// What to do.
        #[command(subcommand)]
        action: DlqAction,
        /// Process settings (the database to look in).
        #[command(flatten)]
        args: ServeArgs,
    },
}

/// Dead-letter operations.
#[derive(Debug, clap::Subcommand)]
pub enum DlqAction {
    /// Every dead letter of the selected modules, oldest first.
    List,
    /// One dead letter, with its message decoded.
    Show(DeadLetterRef),
    /// Have the consumer handle the message again (through its inbox: at most once).
    Replay(DeadLetterRef),
    /// Delete the dead letter for good.
    Discard(DeadLetterRef),
}

/// Saga operations.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SagaAction {
    /// Every instance, oldest first.
    List {
        /// Only those parked after failed compensations, past their step's deadline, or
        /// waiting on a step longer than --waiting.
        #[arg(long)]
        stuck: bool,
        /// With --stuck: how long a step may wait for its reply before it counts.
        #[arg(long, default_value = "5s", value_parser = host::parse_duration)]
        waiting: std::time::Duration,
    },
    /// One instance (its id is the order id) with its whole history, as JSON.
    Show {
        /// The order id.
        id: String,
    },
}

/// Outbox operations.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum OutboxAction {
    /// Per module: messages waiting to be published, the oldest one's age, messages kept.
    Status,
}

/// Which dead letter: as `dlq list` prints them.
#[derive(Debug, Clone, clap::Args)]
pub struct DeadLetterRef {
    /// The module (schema) it belongs to, e.g. `payments`.
    pub module: String,
    /// The consumer that gave up, e.g. `payments-orders`.
    pub consumer: String,
    /// The message id.
    pub id: String,
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

/// The read models the modules of this build rebuild, each with what it is.
fn read_models() -> clap::builder::PossibleValuesParser {
    let models = crate::read_models().into_iter().map(|(name, holders)| {
        let about = holders
            .first()
            .map(|(_, model)| model.about)
            .unwrap_or_default();
        clap::builder::PossibleValue::new(name).help(about)
    });
    clap::builder::PossibleValuesParser::new(models)
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
            Some(Command::Dlq { action, args }) => dlq(action, args).await,
            Some(Command::Saga { action, args }) => saga(action, args).await,
            Some(Command::Outbox { action, args }) => outbox(action, args).await,
            Some(Command::Replay {
                projection,
                no_wait,
                timeout,
                args,
            }) => replay(projection, no_wait, timeout, args).await,
            Some(Command::Gateway(args)) => crate::gateway::run(args).await,
            Some(Command::Busywork(args)) => busywork(&args).await,
            Some(Command::Token(args)) => crate::token::run(&args),
        }
    }

    /// The log filter and format the command runs with.
    pub fn logging(&self) -> (&str, host::LogFormat) {
        let config = match &self.command {
            None => &self.serve.host,
            Some(
                Command::Serve(args)
                | Command::Migrate(args)
                | Command::Dlq { args, .. }
                | Command::Saga { args, .. }
                | Command::Outbox { args, .. }
                | Command::Replay { args, .. },
            ) => &args.host,
            Some(Command::Gateway(args)) => &args.host,
            // The summary is the output; only trouble is logged beside the progress bar.
            Some(Command::Busywork(_) | Command::Token(_)) => {
                return ("warn", host::LogFormat::Pretty);
            }
        };
        (&config.log_level, config.log_format)
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

#[allow(clippy::print_stdout, reason = "the summary is the command's answer")]
async fn busywork(args: &crate::busywork::BusyworkArgs) -> anyhow::Result<()> {
    let summary = crate::busywork::run(args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{summary}");
    }
    let errors: u64 = summary.errors.values().sum();
    if summary.orders_lost > 0 || errors > 0 {
        anyhow::bail!(
            "{} orders lost, {errors} failed requests",
            summary.orders_lost
        );
    }
    Ok(())
}
