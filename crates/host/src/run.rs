//! Running a host: the servers and background tasks until shutdown, then the drain.

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context as _;
use futures::FutureExt as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{Host, asyncapi, http, observe};

impl Host {
    /// Serves HTTP and gRPC and runs the background tasks until `shutdown` resolves, then
    /// stops accepting work and waits up to `SHUTDOWN_TIMEOUT` for everything to finish.
    ///
    /// # Errors
    /// A server or task failed, or draining took longer than the timeout.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let token = CancellationToken::new();
        let mut running = JoinSet::new();
        let queues = Arc::new(crate::queues::Queues {
            db: self.db.clone(),
            broker: self.broker.clone(),
            outboxes: self.outboxes,
            consumers: self.durables,
        });
        // Set once, here: a second run of one host is impossible (`run` takes it by value).
        let _ = self.queues.0.set(queues.clone());

        // Built on the first request, not at start-up: few processes are ever asked.
        let receivers = Arc::new(self.receivers);
        let messages = Arc::new(std::sync::OnceLock::new());
        let rest = self.rest.route(
            "/asyncapi.json",
            axum::routing::get(move || async move {
                axum::Json(
                    messages
                        .get_or_init(|| asyncapi::document(&receivers))
                        .clone(),
                )
            }),
        );
        let app = http::router(
            rest,
            self.openapi,
            self.checks,
            Some(queues),
            &self.config,
            self.auth.clone(),
        );
        let http_stop = token.clone();
        let http_addr = self.http_listener.local_addr()?;
        let limits = self.config.http_limits();
        running.spawn(async move {
            crate::serve::serve(self.http_listener, app, limits, http_stop)
                .await
                .context("HTTP server")
        });

        let mut grpc = self.grpc;
        // v1 for current clients, v1alpha for older grpcurl builds. Only the services this
        // process mounted are listed, though the descriptors know every module's.
        let names = self.grpc_names;
        let reflection = || {
            let builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
                .with_service_name("grpc.reflection.v1.ServerReflection");
            names
                .iter()
                .fold(builder, |builder, name| builder.with_service_name(*name))
        };
        grpc.add_service(
            reflection()
                .build_v1()
                .context("building gRPC reflection")?,
        );
        grpc.add_service(
            reflection()
                .build_v1alpha()
                .context("building gRPC reflection")?,
        );
        // Every method but reflection's is checked before any module code runs.
        let routes = tonic::service::Routes::from(grpc.routes().into_axum_router().layer(
            axum::middleware::from_fn_with_state(self.auth.clone(), crate::auth::grpc),
        ));
        let grpc_stop = token.clone();
        let request_timeout = self.config.request_timeout;
        running.spawn(async move {
            tonic::transport::Server::builder()
                // A call cannot outlast the HTTP request timeout, nor one connection multiplex
                // more calls than the pool could serve.
                .timeout(request_timeout)
                .concurrency_limit_per_connection(GRPC_CALLS_PER_CONNECTION)
                .layer(
                    tower_http::trace::TraceLayer::new_for_grpc().make_span_with(observe::GrpcSpan),
                )
                .add_routes(routes)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(self.grpc_listener),
                    grpc_stop.cancelled_owned(),
                )
                .await
                .context("gRPC server")
        });

        running.spawn(observe::upkeep(token.clone()).map(Ok));
        for (name, task) in self.tasks {
            let future = task(token.clone());
            running.spawn(async move {
                future
                    .await
                    .with_context(|| format!("background task {name}"))
            });
        }

        tracing::info!(http = %http_addr, "serving");
        let early = tokio::select! {
            () = shutdown => None,
            ended = running.join_next() => ended,
        };
        token.cancel();
        if let Some(ended) = early {
            // Something stopped on its own: that is a failure even if it returned Ok.
            let outcome = flatten(ended)
                .and_then(|()| anyhow::bail!("a server or task stopped unexpectedly"));
            drain(&mut running, self.config.shutdown_timeout).await?;
            return outcome;
        }
        tracing::info!(timeout = ?self.config.shutdown_timeout, "shutting down");
        drain(&mut running, self.config.shutdown_timeout).await
    }
}

/// Deletes embedded-log messages older than `max_age` that every consumer is done with.
pub(crate) async fn purge_embedded(
    log: messaging::Embedded,
    max_age: Duration,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        if let Err(error) = log.purge(max_age).await {
            tracing::warn!(%error, "purging the embedded broker failed");
        }
    }
}

fn flatten(joined: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    joined.unwrap_or_else(|e| Err(anyhow::anyhow!("a task panicked: {e}")))
}

async fn drain(running: &mut JoinSet<anyhow::Result<()>>, timeout: Duration) -> anyhow::Result<()> {
    let mut first_error = None;
    let all = async {
        while let Some(joined) = running.join_next().await {
            if let Err(error) = flatten(joined) {
                tracing::error!(error = format!("{error:#}"), "stopped with an error");
                first_error.get_or_insert(error);
            }
        }
    };
    if tokio::time::timeout(timeout, all).await.is_err() {
        let left = running.len();
        running.abort_all();
        anyhow::bail!(
            "shutdown took longer than SHUTDOWN_TIMEOUT ({timeout:?}); {left} task(s) aborted"
        );
    }
    first_error.map_or(Ok(()), Err)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
///
/// The handlers are installed when this is called, not when the future is first polled, so a
/// signal arriving while the process is still starting is not lost (nor fatal). Call it from
/// inside the runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind| {
            signal(kind)
                .map_err(|error| tracing::warn!(%error, "cannot listen for a shutdown signal"))
                .ok()
        };
        let (mut interrupt, mut terminate) = (
            install(SignalKind::interrupt()),
            install(SignalKind::terminate()),
        );
        async move {
            tokio::select! {
                () = wait_for(interrupt.as_mut()) => {}
                () = wait_for(terminate.as_mut()) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(unix)]
async fn wait_for(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Most gRPC calls one connection has in flight at once.
const GRPC_CALLS_PER_CONNECTION: usize = 256;
