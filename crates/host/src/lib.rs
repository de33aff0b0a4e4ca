//! The process shell every module runs in.
//!
//! [`Host`] opens the database, binds the HTTP and gRPC listeners, collects what modules
//! mount (REST routers, gRPC services, background tasks, readiness checks) and runs it all
//! until a shutdown signal, then drains within `SHUTDOWN_TIMEOUT`. Modules receive a
//! `&mut Host` in their `mount` function and never see listeners, signals or the runtime.

pub mod asyncapi;
pub mod auth;
mod config;
mod error;
mod http;
pub mod input;
mod observe;
mod openapi;
pub mod operations;
mod queues;
mod rpc;
mod run;
pub mod serve;
mod subscribe;
pub mod telemetry;

use std::{
    convert::Infallible,
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Makes ring the process's TLS provider, once; later calls change nothing. `main` calls it;
/// so does [`Host::new`], for processes (tests) that build a host without `main`.
///
/// HTTP clients (webhooks here; Pact's tooling in tests) may be built with reqwest's
/// `rustls-no-provider`, which panics at client creation unless a provider was installed.
/// Which reqwest features a build ends up with depends on the whole workspace, so the process
/// states its choice instead of relying on it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub use config::{Config, LogFormat, RpcServices, parse_duration};
pub use error::{ApiError, Empty, ErrorBody, IdReply, Json, http_status};
pub use observe::Channel;
pub use operations::{Operations, ReadModel, Rebuild, Rebuilt, SagaRecord, Sagas};
pub use queues::{ConsumerLag, OutboxDepth, QueueReport, QueueWatch};
pub use run::shutdown_signal;
pub use traced::traced;

/// What a readiness check answers: `Err` with the reason when not ready.
pub type CheckResult = Result<(), String>;
/// A readiness check.
pub type Check = Arc<dyn Fn() -> BoxFuture<'static, CheckResult> + Send + Sync>;
type Task = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// A process being assembled: database open, listeners bound, modules mounting.
pub struct Host {
    config: Config,
    db: db::Db,
    broker: Arc<dyn messaging::Broker>,
    auth: auth::Auth,
    http_listener: TcpListener,
    grpc_listener: TcpListener,
    rest: axum::Router,
    openapi: utoipa::openapi::OpenApi,
    grpc: tonic::service::RoutesBuilder,
    grpc_names: Vec<&'static str>,
    tasks: Vec<(&'static str, Task)>,
    checks: Vec<(&'static str, Check)>,
    receivers: Vec<asyncapi::Receiver>,
    /// The modules whose outbox this process relays (their depth is a gauge).
    outboxes: Vec<&'static str>,
    /// Filled when the process runs, for operators' views mounted before the last module.
    queues: QueueWatch,
    /// (module, durable consumer) of every part of every subscription: their lag is watched.
    durables: Vec<(&'static str, String)>,
    /// Per module, who handles which part of its consumers (on PostgreSQL, where replicas
    /// may share them).
    owners: std::collections::HashMap<&'static str, messaging::Owners>,
    /// This process among the replicas.
    member: String,
}

impl Host {
    /// Opens the database with `schemas` available and binds both listeners, so their
    /// addresses are known before anything is mounted.
    ///
    /// # Errors
    /// The database cannot be opened or a port cannot be bound; the message says which.
    pub async fn new(config: Config, schemas: &[&str]) -> anyhow::Result<Host> {
        install_crypto_provider();
        let auth = auth::Auth::new(&config.auth)?;
        let web_host = config
            .auth
            .bind_address(config.web_host, "HTTP (WEB_HOST)")?;
        let rpc_host = config
            .auth
            .bind_address(config.rpc_host, "gRPC (RPC_HOST)")?;
        // Before modules mount: what they count while mounting (series started at zero) counts.
        observe::recorder();
        let embedded = config.nats_url.is_none();
        let mut schemas = schemas.to_vec();
        if embedded {
            schemas.push(messaging::embedded::SCHEMA);
        }
        let db = db::Db::connect(&config.database(), &schemas, &config.database_options()).await?;
        let broker: Arc<dyn messaging::Broker> = match &config.nats_url {
            Some(url) => {
                let limits = messaging::StreamLimits {
                    max_age: config.nats_stream_max_age,
                    max_bytes: config.nats_stream_max_bytes,
                    replicas: usize::from(config.nats_stream_replicas),
                };
                let auth = config.nats_auth()?;
                Arc::new(
                    messaging::JetStream::connect_as(url, &config.nats_stream, limits, &auth)
                        .await?,
                )
            }
            None => {
                db.migrate(
                    messaging::embedded::SCHEMA,
                    &messaging::embedded::MIGRATIONS,
                )
                .await?;
                Arc::new(messaging::Embedded::new(db.clone(), &config.nats_stream))
            }
        };
        let http_listener = bind(web_host, config.web_port, "HTTP (WEB_HOST/WEB_PORT)").await?;
        let http_port = http_listener.local_addr()?.port();
        let grpc_listener = bind(rpc_host, config.rpc_port, "gRPC (RPC_HOST/RPC_PORT)").await?;
        auth::announce(&config.auth, &auth);
        let mut host = Host {
            config,
            db,
            broker,
            auth,
            http_listener,
            grpc_listener,
            rest: axum::Router::new(),
            receivers: Vec::new(),
            outboxes: Vec::new(),
            queues: QueueWatch::default(),
            durables: Vec::new(),
            owners: std::collections::HashMap::new(),
            member: messaging::Owners::member_on(http_port),
            openapi: http::openapi(),
            grpc: tonic::service::RoutesBuilder::default(),
            grpc_names: Vec::new(),
            tasks: Vec::new(),
            checks: Vec::new(),
        };
        let db = host.db.clone();
        host.readiness_check("database", move || {
            let db = db.clone();
            Box::pin(async move { db.ping(Duration::from_secs(2)).await })
        });
        let broker = host.broker.clone();
        host.readiness_check("broker", move || {
            let broker = broker.clone();
            Box::pin(async move { broker.check().await })
        });
        // The embedded log keeps what a JetStream stream would (NATS_STREAM_MAX_AGE; 0: all),
        // so read models can be rebuilt from it (`mallbots replay`) on either broker.
        let max_age = host.config.nats_stream_max_age;
        if embedded && !max_age.is_zero() {
            let log = messaging::Embedded::new(host.db.clone(), &host.config.nats_stream);
            host.spawn("embedded broker purge", move |stop| {
                run::purge_embedded(log, max_age, stop)
            });
        }
        Ok(host)
    }

    /// The queues of this process (every module's, however late it mounts), read on demand:
    /// for an operator's view.
    pub fn queues(&self) -> QueueWatch {
        self.queues.clone()
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The shared database pool.
    pub fn db(&self) -> &db::Db {
        &self.db
    }

    /// Where the HTTP server listens.
    ///
    /// # Panics
    /// Never in practice: the listener is bound.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where the gRPC server listens.
    ///
    /// # Panics
    /// Never in practice: the listener is bound.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The message broker: JetStream when `NATS_URL` is set, else the embedded log.
    pub fn broker(&self) -> Arc<dyn messaging::Broker> {
        self.broker.clone()
    }

    /// Publishes `outbox` (after each commit) until shutdown.
    pub fn relay(&mut self, outbox: messaging::Outbox) {
        self.outboxes.push(outbox.schema());
        let (db, broker) = (self.db.clone(), self.broker.clone());
        self.spawn("outbox relay", move |stop| async move {
            messaging::outbox::relay(db, outbox, broker, messaging::RelayConfig::default(), stop)
                .await;
            Ok(())
        });
    }

    /// Adds REST routes (absolute paths, e.g. `/api/stores`) and their OpenAPI description,
    /// served at `/openapi.json` and browsable in Swagger UI at `/`.
    ///
    /// # Panics
    /// Two modules name different schemas, or two operations, alike: the document would
    /// describe one with the other's (a programming error, found by any test that runs both).
    pub fn rest(&mut self, router: axum::Router, openapi: utoipa::openapi::OpenApi) {
        if let (Some(ours), Some(theirs)) = (&self.openapi.components, &openapi.components) {
            for (name, schema) in &theirs.schemas {
                let same = ours.schemas.get(name).is_none_or(|known| {
                    serde_json::to_value(known).ok() == serde_json::to_value(schema).ok()
                });
                assert!(same, "two modules describe different schemas named {name}");
            }
        }
        let ids = |doc: &utoipa::openapi::OpenApi| -> Vec<String> {
            doc.paths
                .paths
                .values()
                .flat_map(|item| {
                    [&item.get, &item.put, &item.post, &item.delete, &item.patch]
                        .into_iter()
                        .flatten()
                        .filter_map(|operation| operation.operation_id.clone())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let known = ids(&self.openapi);
        if let Some(twice) = ids(&openapi).into_iter().find(|id| known.contains(id)) {
            panic!("two modules name an operation {twice}");
        }
        self.rest = std::mem::take(&mut self.rest).merge(router);
        self.openapi.merge(openapi);
    }

    /// Adds a gRPC service.
    pub fn grpc<S>(&mut self, service: S)
    where
        S: tower::Service<axum::http::Request<tonic::body::Body>, Error = Infallible>
            + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.grpc_names.push(S::NAME);
        self.grpc.add_service(service);
    }

    /// Runs `task` from [`Host::run`] until it returns or shutdown is requested (the token is
    /// cancelled; the task then has `SHUTDOWN_TIMEOUT` to return). A task that ends with an
    /// error stops the process.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tasks
            .push((name, Box::new(move |token| Box::pin(task(token)))));
    }

    /// What the mounted modules receive (for `/asyncapi.json`).
    pub fn receivers(&self) -> &[asyncapi::Receiver] {
        &self.receivers
    }

    /// Adds a check to `/readiness`.
    pub fn readiness_check<F>(&mut self, name: &'static str, check: F)
    where
        F: Fn() -> BoxFuture<'static, CheckResult> + Send + Sync + 'static,
    {
        self.checks.push((name, Arc::new(check)));
    }
}

async fn bind(ip: IpAddr, port: u16, what: &str) -> anyhow::Result<TcpListener> {
    let address = SocketAddr::new(ip, port);
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen for {what} on {address}"))
}

/// The HTTP edge every process serves — `/liveness`, `/readiness` running `checks`, Swagger UI
/// for `openapi`, the JSON 404/405, the body limit and request timeout — around `rest`. For a
/// process without a database (the gateway); a [`Host`] builds its own.
///
/// # Errors
/// The auth settings are contradictory.
pub fn http_edge(
    rest: axum::Router,
    openapi: utoipa::openapi::OpenApi,
    checks: Vec<(&'static str, Check)>,
    config: &Config,
) -> anyhow::Result<axum::Router> {
    let auth = auth::Auth::new(&config.auth)?;
    Ok(http::router(rest, openapi, checks, None, config, auth))
}
