//! What the console pushes to open pages, as Server-Sent Events: orders moving on the board,
//! steps of the order being looked at, the counts each second, the queues every two seconds
//! to the pages that show them. A page that falls behind is told to read the board again.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    extract::{Query, State},
    response::sse::{Event, KeepAlive, Sse},
};
use futures::{Stream, StreamExt as _};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::operations::Operations;

/// An order as the board shows it. Times are µs since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderRow {
    pub(crate) id: String,
    pub(crate) customer_id: String,
    /// `pending`, `approved`, `ready`, `completed`, `rejected` or `cancelled`.
    pub(crate) status: &'static str,
    /// Items ordered (sum of quantities).
    pub(crate) items: i64,
    pub(crate) total: f64,
    /// When the first message about it was sent.
    pub(crate) created_at: i64,
    /// When the message that put it in its status was sent.
    pub(crate) updated_at: i64,
}

/// One message about an order, as it crossed the broker.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Step {
    pub(crate) order_id: String,
    /// The message id.
    pub(crate) id: String,
    /// The message name, e.g. `depotapi.CreateShoppingListCommand`.
    pub(crate) name: String,
    /// `event`, `command` or `reply`.
    pub(crate) kind: &'static str,
    /// The module that sent it.
    pub(crate) producer: String,
    pub(crate) subject: String,
    /// A reply's outcome: `success` or `failure`.
    pub(crate) outcome: Option<String>,
    /// When its sender staged it (µs since the epoch).
    pub(crate) sent_at: i64,
}

/// Orders per status and the rate they complete at.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Summary {
    /// Orders in each status.
    pub(crate) counts: BTreeMap<String, i64>,
    /// Orders completed per second over the last 10 seconds.
    pub(crate) completed_per_second: f64,
}

/// One thing to tell the open pages. Shared, not copied, by every page's receiver; small
/// itself, so the channel's slots cost little while nobody watches.
#[derive(Debug, Clone)]
pub(crate) enum Live {
    Order(Arc<OrderRow>),
    Step(Arc<Step>),
    Summary(Arc<Summary>),
    Operations(Arc<Operations>),
}

/// What the live stream and its ticker share.
#[derive(Clone)]
pub(crate) struct Hub {
    pub(crate) db: db::Db,
    pub(crate) queues: host::QueueWatch,
    pub(crate) live: broadcast::Sender<Live>,
    /// Pages that show the queues: only while there are any are they read.
    watching_queues: Arc<AtomicUsize>,
    /// Cancelled at shutdown: open streams end, so the server can drain.
    stop: CancellationToken,
}

impl Hub {
    pub(crate) fn new(db: db::Db, queues: host::QueueWatch) -> Hub {
        Hub {
            db,
            queues,
            // Room for a few seconds of a busy mall; a page further behind reads the board again.
            live: broadcast::channel(2048).0,
            watching_queues: Arc::new(AtomicUsize::new(0)),
            stop: CancellationToken::new(),
        }
    }

    /// Tells the pages the counts each second and the queues every two, while any page is
    /// open; ends their streams when `stop` is cancelled.
    pub(crate) async fn tick(self, stop: CancellationToken) {
        let mut last = None;
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for second in 0_u64.. {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = interval.tick() => {}
            }
            if self.live.receiver_count() == 0 {
                last = None;
                continue;
            }
            match crate::board::summary(&self.db).await {
                Ok(summary) if last.as_ref() != Some(&summary) => {
                    last = Some(summary.clone());
                    let _ = self.live.send(Live::Summary(Arc::new(summary)));
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "console: reading the counts failed"),
            }
            if second % 2 == 0 && self.watching_queues.load(Ordering::Relaxed) > 0 {
                match crate::operations::read(&self).await {
                    Ok(operations) => {
                        let _ = self.live.send(Live::Operations(Arc::new(operations)));
                    }
                    Err(error) => tracing::warn!(%error, "console: reading the queues failed"),
                }
            }
        }
        self.stop.cancel();
    }
}

/// One event of the live stream, as a client reads it.
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "documents the stream's events; they are written by `event`"
)]
pub(crate) struct LiveEvent {
    event: LiveEventName,
    /// JSON: a `Summary`, an `OrderRow`, a `Step`, an `Operations`, or `{}` for `resync`.
    data: String,
}

/// What an event says.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code, reason = "documents the stream's events")]
pub(crate) enum LiveEventName {
    Summary,
    Order,
    Step,
    Operations,
    Resync,
}

/// What a page asks of the live stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Watch {
    /// Also send the steps of this order as they happen.
    #[param(max_length = 200)]
    order: Option<String>,
    /// Also send the queues every two seconds.
    #[serde(default)]
    queues: bool,
}

/// Counts a page that shows the queues for as long as its stream lives.
struct Watching(Arc<AtomicUsize>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `GET /api/console/live`.
#[utoipa::path(
    get,
    path = "/api/console/live",
    operation_id = "consoleLive",
    params(Watch),
    responses(
        (status = 200, description = "Server-Sent Events: `summary`, `order`, `step` (of the watched order), `operations` (when asked), `resync` (read the board again)", content_type = "text/event-stream", body = LiveEvent),
        (status = 400, description = "A parameter is not what it should be", body = host::ErrorBody),
    ),
    tag = "Console"
)]
pub(crate) async fn stream(
    State(hub): State<Hub>,
    watch: Result<Query<Watch>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, host::ApiError> {
    let Ok(Query(watch)) = watch else {
        return Err(host::ApiError::invalid_argument(
            "order is an order id and queues true or false",
        ));
    };
    let receiver = hub.live.subscribe();
    let watching = watch.queues.then(|| {
        hub.watching_queues.fetch_add(1, Ordering::Relaxed);
        Watching(hub.watching_queues.clone())
    });
    // The first event: the counts now, so a page that (re)connects is right at once.
    let first = match crate::board::summary(&hub.db).await {
        Ok(summary) => Some(Live::Summary(Arc::new(summary))),
        Err(error) => {
            tracing::warn!(%error, "console: reading the counts failed");
            None
        }
    };
    // The guard lives in the stream's state: the page counts as watching until it is gone.
    let state = (receiver, watch, watching, hub.stop.clone());
    let rest = futures::stream::unfold(state, |mut state| async move {
        let (receiver, watch, _, stop) = &mut state;
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return None,
                next = receiver.recv() => next,
            };
            let live = match next {
                Ok(live) => live,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some((Ok(Event::default().event("resync").data("{}")), state));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            let wanted = match &live {
                Live::Step(step) => watch.order.as_deref() == Some(step.order_id.as_str()),
                Live::Operations(_) => watch.queues,
                Live::Order(_) | Live::Summary(_) => true,
            };
            if wanted {
                let event = event(&live);
                return Some((Ok(event), state));
            }
        }
    });
    let events = futures::stream::iter(first.map(|live| Ok(event(&live)))).chain(rest);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn event(live: &Live) -> Event {
    let (name, data) = match live {
        Live::Order(order) => ("order", serde_json::to_string(&**order)),
        Live::Step(step) => ("step", serde_json::to_string(&**step)),
        Live::Summary(summary) => ("summary", serde_json::to_string(&**summary)),
        Live::Operations(operations) => ("operations", serde_json::to_string(&**operations)),
    };
    // Plain data types: serialising them cannot fail.
    Event::default()
        .event(name)
        .data(data.unwrap_or_else(|_| "{}".to_owned()))
}
