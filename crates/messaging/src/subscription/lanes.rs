//! Lanes: a subscription's bounded concurrency. A message's lane is chosen by its aggregate
//! key, so two aggregates may be handled at once while one aggregate's messages pass through
//! one lane, in order, one batch at a time — retries and deferrals included, since the
//! ordering state of a key lives in its lane alone.

use std::{
    collections::HashMap,
    hash::{Hash as _, Hasher as _},
    sync::Arc,
};

use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::runner::Runner;
use crate::{Incoming, broker::Delivery};

/// A decoded delivery on its way to a handler.
pub(super) struct Item {
    pub(super) delivery: Box<dyn Delivery>,
    pub(super) incoming: Incoming,
    /// The `handle` span, a child of the trace that sent the message.
    pub(super) span: tracing::Span,
    /// Its metrics' labels, made once for every counter it touches.
    pub(super) counted: super::counted::Counted,
}

impl Item {
    pub(super) fn id(&self) -> &str {
        self.incoming.id()
    }

    pub(super) fn key(&self) -> Option<&str> {
        self.incoming.key()
    }
}

/// The ordering state of one lane.
#[derive(Default)]
pub(super) struct Order {
    /// Aggregate key → id of its message waiting for a retry.
    pub(super) blocked: HashMap<String, String>,
    /// Message id → deliveries spent waiting behind another message (not failures).
    pub(super) deferred: HashMap<String, u32>,
}

pub(super) struct Lanes {
    senders: Vec<mpsc::Sender<Item>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Lanes {
    pub(super) fn start(runner: &Arc<Runner>, stop: &CancellationToken) -> Lanes {
        let sub = &runner.subscription;
        let (senders, tasks) = (0..sub.lanes())
            .map(|_| {
                // Room for two batches: the lane reads the next while one is handled.
                let (sender, receiver) = mpsc::channel(sub.most() * 2);
                let task = tokio::spawn(lane(runner.clone(), receiver, stop.clone()));
                (sender, task)
            })
            .unzip();
        Lanes { senders, tasks }
    }

    /// Queues `item` on its lane, waiting while that lane is full. Messages about no aggregate
    /// share the first lane, keeping the order they came in.
    pub(super) async fn send(&self, item: Item) {
        let lane = item.key().map_or(0, |key| {
            let mut hasher = std::hash::DefaultHasher::new();
            key.hash(&mut hasher);
            usize::try_from(hasher.finish() % self.senders.len() as u64).unwrap_or(0)
        });
        // A lane only closes at shutdown: the unsettled item is then delivered again.
        let _ = self.senders[lane].send(item).await;
    }

    /// Lets every lane finish what it was given (or stop, if stopping) and waits for them.
    pub(super) async fn finish(self) {
        drop(self.senders);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Handles a lane's items until its queue closes or `stop` is cancelled: whatever is queued
/// when it wakes, up to a batch, in one go.
async fn lane(runner: Arc<Runner>, mut queue: mpsc::Receiver<Item>, stop: CancellationToken) {
    let mut order = Order::default();
    let most = runner.subscription.most();
    loop {
        let first = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            item = queue.recv() => match item {
                Some(item) => item,
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < most {
            match queue.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        runner.deliver(batch, &mut order).await;
    }
}
