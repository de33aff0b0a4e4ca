//! The operator's commands: `saga`, `replay`, `outbox` and `dlq`, each against the database
//! of the modules it names.

use std::time::Instant;

use super::{DeadLetterRef, DlqAction, OutboxAction, SagaAction, ServeArgs};

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
pub(super) async fn saga(action: SagaAction, mut args: ServeArgs) -> anyhow::Result<()> {
    // Sagas live in their module's schema, whatever MODULES says.
    let (module, sagas) = crate::MODULES
        .iter()
        .find_map(|m| Some((m.name, m.operations.sagas?)))
        .ok_or_else(|| anyhow::anyhow!("no module of this build runs sagas"))?;
    module.clone_into(&mut args.modules);
    let (_, db) = open(&args).await?;
    match action {
        SagaAction::List { stuck, waiting } => {
            println!(
                "{:<38} {:<20} {:>4} {:<12} {:<25} last event",
                "id (order)", "status", "step", "direction", "last at"
            );
            for saga in (sagas.list)(&db, stuck.then_some(waiting)).await? {
                let last = saga.history.last();
                let at = last
                    .and_then(|entry| chrono::DateTime::from_timestamp_micros(entry.at))
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default();
                let direction = if saga.instance.compensating {
                    "compensating"
                } else {
                    "forward"
                };
                let (event, message) = last.map_or(("", ""), |e| (&*e.event, &*e.message));
                println!(
                    "{:<38} {:<20} {:>4} {direction:<12} {at:<25} {event} {message}",
                    saga.id,
                    saga.instance.status.as_str(),
                    saga.instance.step,
                );
            }
        }
        SagaAction::Show { id } => {
            let saga = (sagas.find)(&db, &id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no {} saga for order {id}", sagas.name))?;
            println!("{}", serde_json::to_string_pretty(&saga)?);
        }
    }
    db.close().await;
    Ok(())
}

pub(super) async fn replay(
    projection: String,
    no_wait: bool,
    timeout: std::time::Duration,
    mut args: ServeArgs,
) -> anyhow::Result<()> {
    let holders = crate::read_models()
        .into_iter()
        .find(|(name, _)| *name == projection)
        .map(|(_, holders)| holders)
        .unwrap_or_default();
    let modules: Vec<&str> = holders.iter().map(|(module, _)| module.name).collect();
    args.modules = modules.join(",");
    let (_, db) = open(&args).await?;
    let result = rebuild(&db, &projection, &holders, no_wait, timeout).await;
    db.close().await;
    result
}

/// Rebuilds `projection` in each module holding it, stopping at the first failure.
#[allow(clippy::print_stdout, reason = "a command-line answer goes to stdout")]
async fn rebuild(
    db: &db::Db,
    projection: &str,
    holders: &[(&'static crate::Module, &'static host::ReadModel)],
    no_wait: bool,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let mut rewinds: Vec<(&str, &[&str])> = Vec::new();
    for (module, model) in holders {
        // The tables a rewind is recorded in may be newer than the module's last start.
        (module.migrate)(db).await?;
        match model.rebuild {
            host::Rebuild::Rewind(consumers) => rewinds.push((module.name, consumers)),
            host::Rebuild::Project(project) => {
                let rebuilt = project(db).await?;
                println!(
                    "{projection} rebuilt from {} {} events",
                    rebuilt.events, rebuilt.aggregate
                );
            }
        }
    }
    if rewinds.is_empty() {
        return Ok(());
    }
    rewind(db, &rewinds, no_wait, timeout).await
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
pub(super) async fn outbox(action: OutboxAction, args: ServeArgs) -> anyhow::Result<()> {
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
pub(super) async fn dlq(action: DlqAction, args: ServeArgs) -> anyhow::Result<()> {
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
