//! The queues of a process — each outbox's depth, each consumer's lag — read when someone
//! looks: `/metrics` turns them into gauges, an operator's view ([`Host::queues`]) shows them.
//!
//! [`Host::queues`]: crate::Host::queues

use std::sync::{Arc, OnceLock};

/// Where a process's queues are, known once every module has mounted.
pub(crate) struct Queues {
    pub(crate) db: db::Db,
    pub(crate) broker: Arc<dyn messaging::Broker>,
    /// The modules whose outbox this process relays.
    pub(crate) outboxes: Vec<&'static str>,
    /// (module, durable consumer) of every subscription.
    pub(crate) consumers: Vec<(&'static str, String)>,
}

/// The queues of a process at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueReport {
    /// One per outbox the process relays.
    pub outboxes: Vec<OutboxDepth>,
    /// One per subscription the process consumes.
    pub consumers: Vec<ConsumerLag>,
}

/// What an outbox holds that is not yet published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxDepth {
    /// The module (schema) of the outbox.
    pub module: &'static str,
    /// Messages staged and not yet published; `None` when it could not be read.
    pub pending: Option<i64>,
    /// When the oldest of them was staged (µs since the epoch).
    pub oldest_pending_at: Option<i64>,
}

/// How far a durable consumer is behind the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerLag {
    /// The module that consumes.
    pub module: &'static str,
    /// The durable consumer's name.
    pub consumer: String,
    /// Messages not yet acknowledged; `None` when it could not be read or does not exist yet.
    pub lag: Option<u64>,
}

impl Queues {
    pub(crate) async fn report(&self) -> QueueReport {
        let depths = self.outboxes.iter().map(|&module| async move {
            let depth = messaging::outbox::depth(&self.db, module).await;
            if let Err(error) = &depth {
                tracing::warn!(module, %error, "reading the outbox depth failed");
            }
            let (pending, oldest_pending_at) = match depth {
                Ok(depth) => (Some(depth.pending), depth.oldest_pending_at),
                Err(_) => (None, None),
            };
            OutboxDepth {
                module,
                pending,
                oldest_pending_at,
            }
        });
        let lags = self.consumers.iter().map(|(module, consumer)| async move {
            let lag = match self.broker.lag(consumer).await {
                Ok(lag) => lag,
                Err(error) => {
                    tracing::warn!(consumer, %error, "reading a consumer's lag failed");
                    None
                }
            };
            ConsumerLag {
                module,
                consumer: consumer.clone(),
                lag,
            }
        });
        let (outboxes, consumers) = futures::future::join(
            futures::future::join_all(depths),
            futures::future::join_all(lags),
        )
        .await;
        QueueReport {
            outboxes,
            consumers,
        }
    }
}

/// A process's queues as an operator's view reads them: empty until the host runs, then what
/// every mounted module relays and consumes.
#[derive(Clone, Default)]
pub struct QueueWatch(pub(crate) Arc<OnceLock<Arc<Queues>>>);

impl std::fmt::Debug for QueueWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueWatch")
            .field("running", &self.0.get().is_some())
            .finish()
    }
}

impl QueueWatch {
    /// The queues now.
    pub async fn report(&self) -> QueueReport {
        match self.0.get() {
            Some(queues) => queues.report().await,
            None => QueueReport::default(),
        }
    }

    /// The modules of the process with messaging tables (an outbox or a subscription), in
    /// the order they mounted.
    pub fn modules(&self) -> Vec<&'static str> {
        let Some(queues) = self.0.get() else {
            return Vec::new();
        };
        let mut modules: Vec<&'static str> = Vec::new();
        let named = queues
            .outboxes
            .iter()
            .copied()
            .chain(queues.consumers.iter().map(|(module, _)| *module));
        for module in named {
            if !modules.contains(&module) {
                modules.push(module);
            }
        }
        modules
    }

    /// The durable consumers of `module` in this process.
    pub fn consumers_of(&self, module: &str) -> Vec<String> {
        self.0.get().map_or_else(Vec::new, |queues| {
            queues
                .consumers
                .iter()
                .filter(|(of, _)| *of == module)
                .map(|(_, consumer)| consumer.clone())
                .collect()
        })
    }
}
