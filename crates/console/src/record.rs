//! The console's record of the stream: one row per order (its board status) and one per
//! message about an order (its timeline), written by a subscription to every subject of the
//! mall — the console learns only what crosses the broker, as any other module would.

use async_trait::async_trait;
use messaging::{Handler, HandlerError, Incoming, Messages as _};
use proto::{baskets, depot, ordering, payments};
use tokio::sync::broadcast;

use crate::{
    board::Move,
    live::{Live, Step},
};

/// An order's place on the board; a later message never moves it back (`rank`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Pending,
    Approved,
    Ready,
    Completed,
    Rejected,
    Cancelled,
}

impl Status {
    pub(crate) const ALL: [Status; 6] = [
        Status::Pending,
        Status::Approved,
        Status::Ready,
        Status::Completed,
        Status::Rejected,
        Status::Cancelled,
    ];

    /// Ordering's own names for them.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Ready => "ready",
            Status::Completed => "completed",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
        }
    }

    /// Its place in an order's life: a move to a lower rank never happens.
    pub(crate) fn rank(self) -> i32 {
        match self {
            Status::Pending => 1,
            Status::Approved => 2,
            Status::Ready => 3,
            Status::Completed | Status::Rejected | Status::Cancelled => 4,
        }
    }
}

/// The messages the console records: every command and reply of the saga, and the events that
/// move an order. The others (stores, customers, baskets started) are acknowledged unread.
pub(crate) fn recorded() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = proto::CATALOG
        .iter()
        .filter(|spec| spec.kind != proto::Kind::Event)
        .map(|spec| spec.name)
        .chain(Watched::names())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

messaging::messages! {
    /// The events that place or move an order.
    enum Watched {
        CheckedOut(baskets::BasketCheckedOut),
        Created(ordering::OrderCreated),
        Approved(ordering::OrderApproved),
        Readied(ordering::OrderReadied),
        Completed(ordering::OrderCompleted),
        Rejected(ordering::OrderRejected),
        Canceled(ordering::OrderCanceled),
        ListCompleted(depot::ShoppingListCompleted),
        ListCanceled(depot::ShoppingListCanceled),
        InvoicePaid(payments::InvoicePaid),
    }
}

/// What a message says about an order, when it is about one.
#[derive(Debug, Default, PartialEq)]
struct About {
    order: String,
    /// The status it puts the order in, with the customer, item count and total it names.
    status: Option<(Status, Placed)>,
}

#[derive(Debug, Default, PartialEq)]
struct Placed {
    customer: String,
    items: i64,
    total: money::Cents,
}

/// A new order, pending, as the checkout or its creation names it.
fn placed(order: String, customer: String, lines: impl IntoIterator<Item = (f64, i32)>) -> About {
    let lines: Vec<(f64, i64)> = lines
        .into_iter()
        .map(|(price, quantity)| (price, i64::from(quantity)))
        .collect();
    let items = lines.iter().map(|(_, quantity)| quantity).sum();
    let placed = Placed {
        customer,
        items,
        // An order the mall could not count is still shown; its total as 0.
        total: money::total(lines).unwrap_or_default(),
    };
    About {
        order,
        status: Some((Status::Pending, placed)),
    }
}

/// The order a message is about: the saga's id on its commands and their replies (= the order
/// id), the order's id on ordering's events and on the checkout (order id = basket id), the
/// order the depot's and payments' events name.
fn about(message: &Incoming) -> Result<Option<About>, HandlerError> {
    if let Some(saga) = saga::saga_of(message) {
        return Ok(Some(About {
            order: saga.to_owned(),
            status: None,
        }));
    }
    let simple = |order: String, status: Status| About {
        order,
        status: Some((status, Placed::default())),
    };
    if !Watched::takes(message.name()) {
        return Ok(None);
    }
    let about = match Watched::decode(message)? {
        Watched::CheckedOut(event) => {
            let lines = event.items.iter().map(|i| (i.price, i.quantity));
            placed(event.id, event.customer_id, lines)
        }
        Watched::Created(event) => {
            let lines = event.items.iter().map(|i| (i.price, i.quantity));
            placed(event.id, event.customer_id, lines)
        }
        Watched::Approved(event) => simple(event.id, Status::Approved),
        Watched::Readied(event) => simple(event.id, Status::Ready),
        Watched::Completed(event) => simple(event.id, Status::Completed),
        Watched::Rejected(event) => simple(event.id, Status::Rejected),
        Watched::Canceled(event) => simple(event.id, Status::Cancelled),
        Watched::ListCompleted(event) => About {
            order: event.order_id,
            status: None,
        },
        Watched::ListCanceled(event) => About {
            order: event.order_id,
            status: None,
        },
        Watched::InvoicePaid(event) => About {
            order: event.order_id,
            status: None,
        },
    };
    Ok(Some(about).filter(|about| !about.order.is_empty()))
}

/// What one message adds to the record: its step on the order's timeline, and the order's
/// move when it names a status.
fn entry(message: &Incoming) -> Result<Option<(Step, Option<Move>)>, HandlerError> {
    let Some(about) = about(message)? else {
        return Ok(None);
    };
    let spec = proto::spec(message.name());
    let kind = match spec.map(|spec| spec.kind) {
        Some(proto::Kind::Command) => "command",
        Some(proto::Kind::Reply) => "reply",
        Some(proto::Kind::Event) | None => "event",
    };
    // The catalog's sender (cosec for commands); the subject's module for what it does not
    // know. A reply says only "a command handler": the page names it from the command.
    let producer = spec
        .map(|spec| spec.producer)
        .or_else(|| message.subject.split('.').nth(1))
        .unwrap_or("?")
        .to_owned();
    let sent_at = message.envelope.sent_at.timestamp_micros();
    let step = Step {
        order_id: about.order.clone(),
        id: message.id().to_owned(),
        name: message.name().to_owned(),
        kind,
        producer,
        subject: message.subject.clone(),
        outcome: message
            .metadata(proto::am::REPLY_OUTCOME_HDR)
            .map(str::to_owned),
        sent_at,
    };
    let change = about.status.map(|(status, placed)| Move {
        id: about.order,
        customer_id: placed.customer,
        status,
        items: placed.items,
        total: placed.total,
        created_at: sent_at,
        updated_at: sent_at,
    });
    Ok(Some((step, change)))
}

/// Folds `change` into a batch's moves, one per order, as if the batch's messages were applied
/// one after another: a new order is inserted with what the first of them says, and the first
/// to reach the highest rank puts it in its status.
fn merge(moves: &mut Vec<Move>, change: Move) {
    match moves.iter_mut().find(|known| known.id == change.id) {
        None => moves.push(change),
        Some(known) if change.status.rank() > known.status.rank() => {
            known.status = change.status;
            known.updated_at = change.updated_at;
        }
        Some(_) => {}
    }
}

/// Records each message about an order and tells the open consoles.
pub(crate) struct Recorder {
    pub(crate) live: broadcast::Sender<Live>,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, tx: &mut db::Conn, message: &Incoming) -> Result<(), HandlerError> {
        self.handle_batch(tx, &[message]).await
    }

    /// A batch in two statements, however many messages: its steps, and its orders' moves.
    async fn handle_batch(
        &self,
        tx: &mut db::Conn,
        messages: &[&Incoming],
    ) -> Result<(), HandlerError> {
        let (mut steps, mut moves) = (Vec::new(), Vec::new());
        for message in messages {
            let Some((step, change)) = entry(message)? else {
                continue;
            };
            steps.push(step);
            if let Some(change) = change {
                merge(&mut moves, change);
            }
        }
        crate::board::record_steps(tx, &steps).await?;
        let moved = crate::board::move_orders(tx, &moves).await?;
        // Told before the commit: a batch rolled back is handled again and tells again, and
        // what it says (this order is in this status) is the same each time.
        for step in steps {
            let _ = self.live.send(Live::Step(std::sync::Arc::new(step)));
        }
        for row in moved {
            let _ = self.live.send(Live::Order(std::sync::Arc::new(row)));
        }
        Ok(())
    }

    /// The console is a read model of the stream: `mallbots replay` may rebuild it.
    async fn reset(&self, tx: &mut db::Conn, _consumer: &str) -> Result<bool, HandlerError> {
        crate::board::reset(tx).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
