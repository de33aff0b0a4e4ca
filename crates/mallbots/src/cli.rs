//! The `mallbots` command line: `serve` (the default), `migrate`, `gateway`, `dlq`.

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
        #[arg(value_enum)]
        projection: Projection,
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

/// The read models `mallbots replay` rebuilds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Projection {
    /// Search's orders (and its customer, store and product caches), from the stream.
    Search,
    /// The stores as shoppers list them, from the Store events.
    Mall,
    /// The products of every store, from the Product events.
    Catalog,
    /// Baskets' and depot's copies of the stores and products, from the stream.
    Caches,
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

/// The selected modules' schemas and a handle on their database, for the inspection commands.
async fn open(args: &ServeArgs) -> anyhow::Result<(Vec<&'static str>, db::Db)> {
    let modules = crate::select(&args.modules).map_err(anyhow::Error::msg)?;
    let schemas: Vec<&'static str> = modules.iter().map(|m| m.name).collect();
    let db = db::Db::connect(
        &args.host.database(),
        &schemas,
        &args.host.database_options(),
    )
    .await?;
    Ok((schemas, db))
}

#[allow(clippy::print_stdout, reason = "a command-line answer goes to stdout")]
async fn saga(action: SagaAction, mut args: ServeArgs) -> anyhow::Result<()> {
    // Sagas live in the cosec module's schema, whatever MODULES says.
    args.modules = cosec::SCHEMA.to_owned();
    let (_, db) = open(&args).await?;
    match action {
        SagaAction::List { stuck, waiting } => {
            println!(
                "{:<38} {:<20} {:>4} {:<12} {:<25} last event",
                "id (order)", "status", "step", "direction", "last at"
            );
            for saga in cosec::sagas(&db, stuck.then_some(waiting)).await? {
                let last = saga["history"].as_array().and_then(|h| h.last()).cloned();
                let last = last.unwrap_or_default();
                let at = last["at"]
                    .as_i64()
                    .and_then(chrono::DateTime::from_timestamp_micros)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default();
                let direction = if saga["compensating"] == true {
                    "compensating"
                } else {
                    "forward"
                };
                println!(
                    "{:<38} {:<20} {:>4} {:<12} {:<25} {} {}",
                    saga["id"].as_str().unwrap_or_default(),
                    saga["status"].as_str().unwrap_or_default(),
                    saga["step"],
                    direction,
                    at,
                    last["event"].as_str().unwrap_or_default(),
                    last["message"].as_str().unwrap_or_default(),
                );
            }
        }
        SagaAction::Show { id } => {
            let saga = cosec::saga(&db, &id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no create-order saga for order {id}"))?;
            println!("{}", serde_json::to_string_pretty(&saga)?);
        }
    }
    db.close().await;
    Ok(())
}

#[allow(clippy::print_stdout, reason = "a command-line answer goes to stdout")]
async fn replay(
    projection: Projection,
    no_wait: bool,
    timeout: std::time::Duration,
    mut args: ServeArgs,
) -> anyhow::Result<()> {
    let rewinds: &[(&str, &[&str])] = match projection {
        Projection::Search => &[(search::SCHEMA, &search::REBUILDABLE)],
        Projection::Caches => &[
            (baskets::SCHEMA, &baskets::REBUILDABLE),
            (depot::SCHEMA, &depot::REBUILDABLE),
        ],
        Projection::Mall | Projection::Catalog => &[(stores::SCHEMA, &[])],
    };
    let modules: Vec<&str> = rewinds.iter().map(|(module, _)| *module).collect();
    args.modules = modules.join(",");
    let (_, db) = open(&args).await?;
    // The tables a rewind is recorded in may be newer than the modules' last start.
    for module in crate::select(&args.modules).map_err(anyhow::Error::msg)? {
        (module.migrate)(&db).await?;
    }
    let result = match projection {
        Projection::Mall => stores::rebuild_mall(&db)
            .await
            .map(|events| println!("mall rebuilt from {events} Store events")),
        Projection::Catalog => stores::rebuild_catalog(&db)
            .await
            .map(|events| println!("catalog rebuilt from {events} Product events")),
        Projection::Search | Projection::Caches => rewind(&db, rewinds, no_wait, timeout).await,
    };
    db.close().await;
    result
}

/// Asks for each module's `consumers` to be rewound and, unless `no_wait`, waits until each
/// is rebuilt.
#[allow(clippy::print_stdout, reason = "a command-line answer goes to stdout")]
async fn rewind(
    db: &db::Db,
    rewinds: &[(&str, &[&str])],
    no_wait: bool,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    use messaging::rewind;
    let mut pending: Vec<(&str, &str)> = Vec::new();
    for (module, consumers) in rewinds {
        for consumer in *consumers {
            rewind::request(db, module, consumer).await?;
            pending.push((module, consumer));
        }
    }
    if no_wait {
        let names: Vec<&str> = pending.iter().map(|(_, consumer)| *consumer).collect();
        println!(
            "rebuild of {} requested; the running modules do it",
            names.join(", ")
        );
        return Ok(());
    }
    let started = Instant::now();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (module, consumer) in pending {
            let status = rewind::status(db, module, consumer).await?;
            match status.and_then(|s| s.outcome) {
                Some(outcome) if outcome == "rebuilt" => println!("{consumer}: rebuilt"),
                Some(refused) => anyhow::bail!("{consumer}: {refused}"),
                None => still.push((module, consumer)),
            }
        }
        pending = still;
        if let Some((module, _)) = pending.first()
            && started.elapsed() > timeout
        {
            let names: Vec<&str> = pending.iter().map(|(_, consumer)| *consumer).collect();
            anyhow::bail!(
                "{} not rebuilt after {timeout:?}: is a process running the {module} module? (the request stays; it rebuilds when one starts)",
                names.join(", ")
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}

#[allow(clippy::print_stdout, reason = "a command-line answer goes to stdout")]
async fn outbox(action: OutboxAction, args: ServeArgs) -> anyhow::Result<()> {
    let OutboxAction::Status = action;
    let (schemas, db) = open(&args).await?;
    println!(
        "{:<14} {:>8} {:>14} {:>10}",
        "module", "pending", "oldest (ms)", "published"
    );
    let now = db::now_micros();
    for schema in schemas {
        let status = messaging::outbox::status(&db, schema).await?;
        let oldest = status
            .oldest_pending_at
            .map_or("-".to_owned(), |at| ((now - at) / 1000).to_string());
        println!(
            "{schema:<14} {:>8} {oldest:>14} {:>10}",
            status.pending, status.published
        );
    }
    db.close().await;
    Ok(())
}

#[allow(clippy::print_stdout, reason = "a command-line answer goes to stdout")]
async fn dlq(action: DlqAction, args: ServeArgs) -> anyhow::Result<()> {
    use messaging::dlq;
    let (schemas, db) = open(&args).await?;
    let known = |module: &str| {
        schemas
            .iter()
            .copied()
            .find(|s| *s == module)
            .ok_or_else(|| {
                anyhow::anyhow!("unknown module {module:?} (known: {})", schemas.join(", "))
            })
    };
    match action {
        DlqAction::List => {
            println!(
                "{:<14} {:<24} {:<38} {:<34} {:>8}  {:<25} error",
                "module", "consumer", "id", "name", "attempts", "dead at"
            );
            for schema in &schemas {
                for dead in dlq::list(&db, schema).await? {
                    let replay = if dead.replay_requested {
                        " (replay requested)"
                    } else {
                        ""
                    };
                    println!(
                        "{schema:<14} {:<24} {:<38} {:<34} {:>8}  {:<25} {}{replay}",
                        dead.consumer,
                        dead.id,
                        dead.name,
                        dead.attempts,
                        dead.dead_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        dead.error.lines().next().unwrap_or_default()
                    );
                }
            }
        }
        DlqAction::Show(which) => {
            let schema = known(&which.module)?;
            let dead = dlq::show(&db, schema, &which.consumer, &which.id)
                .await?
                .ok_or_else(|| missing(&which))?;
            let message = match messaging::Envelope::decode(&dead.body) {
                Ok(envelope) => serde_json::json!({
                    "id": envelope.id,
                    "name": envelope.name,
                    "metadata": envelope.metadata,
                    "occurredAt": envelope.occurred_at.to_rfc3339(),
                    "sentAt": envelope.sent_at.to_rfc3339(),
                    "payloadBytes": envelope.payload.len(),
                }),
                Err(error) => {
                    serde_json::json!({ "undecodable": error.to_string(), "bytes": dead.body.len() })
                }
            };
            let shown = serde_json::json!({
                "module": schema,
                "consumer": dead.consumer,
                "id": dead.id,
                "subject": dead.subject,
                "attempts": dead.attempts,
                "deadAt": dead.dead_at.to_rfc3339(),
                "replayRequested": dead.replay_requested,
                "error": dead.error,
                "message": message,
            });
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
        DlqAction::Replay(which) => {
            if !dlq::replay(&db, known(&which.module)?, &which.consumer, &which.id).await? {
                return Err(missing(&which));
            }
            println!(
                "replay requested: the consumer {} handles {} again within a second",
                which.consumer, which.id
            );
        }
        DlqAction::Discard(which) => {
            if !dlq::discard(&db, known(&which.module)?, &which.consumer, &which.id).await? {
                return Err(missing(&which));
            }
            println!("discarded {}", which.id);
        }
    }
    db.close().await;
    Ok(())
}

fn missing(which: &DeadLetterRef) -> anyhow::Error {
    anyhow::anyhow!(
        "no dead letter {} of consumer {} in module {}",
        which.id,
        which.consumer,
        which.module
    )
}
