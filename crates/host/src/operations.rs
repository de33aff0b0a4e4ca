//! What an operator may ask of a module beside serving it. `mallbots replay` and `mallbots saga`
//! run these against the module's database, whether or not a process serves it now; each
//! module states its own in `OPERATIONS`, so the binary reaches nothing else inside it.

use std::time::Duration;

use futures::future::BoxFuture;

/// A saga instance as an operator sees it: its data as JSON, the rest typed.
pub type SagaRecord = saga::Record<serde_json::Value>;

/// A module's operations.
#[derive(Debug, Clone, Copy)]
pub struct Operations {
    /// The read models `mallbots replay <name>` rebuilds.
    pub read_models: &'static [ReadModel],
    /// The sagas `mallbots saga` lists and shows.
    pub sagas: Option<Sagas>,
}

impl Operations {
    /// Nothing beyond serving.
    pub const NONE: Operations = Operations {
        read_models: &[],
        sagas: None,
    };
}

/// A read model an operator may rebuild.
#[derive(Debug, Clone, Copy)]
pub struct ReadModel {
    /// Its name on the command line (`search`, `caches`, …): modules may share one.
    pub name: &'static str,
    /// What it is, for `--help`.
    pub about: &'static str,
    /// How.
    pub rebuild: Rebuild,
}

/// How a read model is rebuilt.
#[derive(Debug, Clone, Copy)]
pub enum Rebuild {
    /// Its consumers, rewound: the running module empties the model and reads the stream again.
    Rewind(&'static [&'static str]),
    /// Projected again here, from the module's event store.
    Project(for<'a> fn(&'a db::Db) -> BoxFuture<'a, anyhow::Result<Rebuilt>>),
}

/// What a projection read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    /// How many events.
    pub events: u64,
    /// Of which aggregate type (`stores.Store`).
    pub aggregate: &'static str,
}

/// Reads a module's sagas: see [`Sagas::list`].
pub type ListSagas =
    for<'a> fn(&'a db::Db, Option<Duration>) -> BoxFuture<'a, anyhow::Result<Vec<SagaRecord>>>;
/// Reads one of a module's sagas: see [`Sagas::find`].
pub type FindSaga =
    for<'a> fn(&'a db::Db, &'a str) -> BoxFuture<'a, anyhow::Result<Option<SagaRecord>>>;

/// A module's sagas, read.
#[derive(Debug, Clone, Copy)]
pub struct Sagas {
    /// Their name (`create-order`), for messages.
    pub name: &'static str,
    /// Every instance, oldest first; with `Some(waited)`, only those parked after failed
    /// compensations, past their deadline, or waiting on a step longer than `waited`.
    pub list: ListSagas,
    /// The instance with this id.
    pub find: FindSaga,
}
