//! The MallBots process: which modules run, and the commands of the `mallbots` binary.
//!
//! One binary serves both deployments: `MODULES=all` (the default) is the monolith,
//! `MODULES=stores` a microservice. Each module contributes a [`Module`] entry; this crate
//! is the only place that knows them all, and the only one `main` and the test kit call.

pub mod busywork;
mod cli;
pub mod gateway;
pub mod token;

use futures::future::BoxFuture;

pub use cli::{Cli, Command, ServeArgs};

/// A module of the mall as the process sees it.
#[derive(Debug)]
pub struct Module {
    /// Its name in `MODULES`, which is also its database schema.
    pub name: &'static str,
    /// Applies its migrations (framework tables and its own) to its schema.
    pub migrate: for<'a> fn(&'a db::Db) -> BoxFuture<'a, anyhow::Result<()>>,
    /// Adds its routes, services, subscriptions and tasks to the host.
    pub mount: for<'a> fn(&'a mut host::Host) -> BoxFuture<'a, anyhow::Result<()>>,
    /// What an operator may ask of it beside serving it (`mallbots replay`, `mallbots saga`).
    pub operations: host::Operations,
}

/// The [`Module`] entry of a module crate: every one exports `SCHEMA`, `migrate` and `mount`,
/// and those with operations `OPERATIONS`.
macro_rules! module {
    ($krate:ident $(, $operations:ident)?) => {
        Module {
            name: $krate::SCHEMA,
            migrate: |db| Box::pin($krate::migrate(db)),
            mount: |host| Box::pin($krate::mount(host)),
            operations: module!(@operations $krate $($operations)?),
        }
    };
    (@operations $krate:ident) => { host::Operations::NONE };
    (@operations $krate:ident OPERATIONS) => { $krate::OPERATIONS };
}

/// Every module this build contains, in start-up order.
pub const MODULES: &[Module] = &[
    module!(stores, OPERATIONS),
    module!(customers),
    module!(payments),
    module!(baskets, OPERATIONS),
    module!(ordering),
    module!(depot, OPERATIONS),
    module!(cosec, OPERATIONS),
    module!(search, OPERATIONS),
    module!(notifications),
    module!(mallbots_console),
];

/// Every read model of this build's modules: its name, and each module rebuilding it with how.
pub fn read_models() -> Vec<(
    &'static str,
    Vec<(&'static Module, &'static host::ReadModel)>,
)> {
    let mut models: Vec<(&str, Vec<_>)> = Vec::new();
    for module in MODULES {
        for model in module.operations.read_models {
            match models.iter_mut().find(|(name, _)| *name == model.name) {
                Some((_, holders)) => holders.push((module, model)),
                None => models.push((model.name, vec![(module, model)])),
            }
        }
    }
    models
}

/// Parses `MODULES`: `all`, or module names separated by commas.
///
/// # Errors
/// An unknown or repeated name, or an empty list.
pub fn select(spec: &str) -> Result<Vec<&'static Module>, String> {
    let spec = spec.trim();
    if spec.eq_ignore_ascii_case("all") {
        return Ok(MODULES.iter().collect());
    }
    let mut selected: Vec<&'static Module> = Vec::new();
    for name in spec.split(',').map(str::trim) {
        let module = MODULES
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let known: Vec<_> = MODULES.iter().map(|m| m.name).collect();
                let known = if known.is_empty() {
                    "none in this build".to_owned()
                } else {
                    known.join(", ")
                };
                format!("unknown module {name:?} in MODULES (known: {known}; or \"all\")")
            })?;
        if selected.iter().any(|m| m.name == module.name) {
            return Err(format!("module {name:?} is listed twice in MODULES"));
        }
        selected.push(module);
    }
    Ok(selected)
}

/// The process with `modules` migrated and mounted, listeners bound, not yet serving.
///
/// # Errors
/// The database or a listener cannot be opened, or a module fails to migrate or mount.
pub async fn start(
    config: host::Config,
    modules: &[&'static Module],
) -> anyhow::Result<host::Host> {
    let schemas: Vec<&str> = modules.iter().map(|m| m.name).collect();
    let mut host = host::Host::new(config, &schemas).await?;
    for module in modules {
        (module.migrate)(host.db()).await?;
        (module.mount)(&mut host).await?;
        tracing::info!(module = module.name, "mounted");
    }
    Ok(host)
}

/// Applies the migrations of `modules` and returns.
///
/// # Errors
/// The database cannot be opened or a migration fails.
pub async fn migrate(config: &host::Config, modules: &[&'static Module]) -> anyhow::Result<()> {
    let schemas: Vec<&str> = modules.iter().map(|m| m.name).collect();
    let db = db::Db::connect(&config.database(), &schemas, &config.database_options()).await?;
    for module in modules {
        (module.migrate)(&db).await?;
        tracing::info!(module = module.name, "migrated");
    }
    db.close().await;
    Ok(())
}
