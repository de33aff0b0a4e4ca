//! Turning events into notifications: recorded in `notifications.notifications` (once per
//! event: the event's message id is the notification id) and handed to the sink in the same
//! transaction. The sink is the log; a webhook sink would be driven from the same table.

use async_trait::async_trait;
use db::Row as _;
use host::Channel;
use messaging::{Handled, HandlerError, Incoming, On};
use proto::{
    customers::{self, customers_service_client::CustomersServiceClient},
    ordering,
};

/// Migration step (see `crate::MIGRATIONS`).
pub(crate) const TABLES: &str = "
    CREATE TABLE notifications.customers_cache (id TEXT PRIMARY KEY, name TEXT NOT NULL, sms_number TEXT NOT NULL);
    CREATE TABLE notifications.notifications (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        order_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        sms_number TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE INDEX {index}notifications_customer ON {on}notifications (customer_id, created_at);";

/// Migration step 2: when each notification reached the webhook (NULL: not yet).
pub(crate) const DELIVERY: &str = "
    ALTER TABLE notifications.notifications ADD COLUMN delivered_at BIGINT;
    CREATE INDEX {index}notifications_undelivered ON {on}notifications (created_at) WHERE delivered_at IS NULL;";

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    OrderCreated,
    OrderReady,
    OrderCanceled,
    SmsChanged,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::OrderCreated => "order_created",
            Kind::OrderReady => "order_ready",
            Kind::OrderCanceled => "order_canceled",
            Kind::SmsChanged => "sms_changed",
        }
    }

    fn text(self, name: &str, order_id: &str) -> String {
        match self {
            Kind::OrderCreated => format!("Hi {name}, we received your order {order_id}."),
            Kind::OrderReady => format!("Hi {name}, your order {order_id} is ready for pickup."),
            Kind::OrderCanceled => format!("Hi {name}, your order {order_id} was canceled."),
            Kind::SmsChanged => {
                format!("Hi {name}, this is your new number for MallBots messages.")
            }
        }
    }
}

#[derive(Clone)]
pub(crate) struct Notifier {
    pub(crate) customers: CustomersServiceClient<Channel>,
    /// Set when a webhook delivers notifications; woken at each new one.
    pub(crate) webhook: Option<std::sync::Arc<tokio::sync::Notify>>,
}

impl Notifier {
    /// Records and sends notification `id` (nothing if it was already sent, or if the customer
    /// does not exist).
    pub(crate) async fn notify(
        &self,
        tx: &mut db::Conn,
        id: &str,
        kind: Kind,
        customer_id: &str,
        order_id: &str,
    ) -> Result<(), HandlerError> {
        let Some((name, sms_number)) = self.customer(tx, customer_id).await? else {
            tracing::warn!(
                customer = customer_id,
                kind = kind.as_str(),
                "no such customer; nobody to notify"
            );
            return Ok(());
        };
        let text = kind.text(&name, order_id);
        // Without a webhook the log is the sink, and it is written below: delivered now.
        let delivered_at = self.webhook.is_none().then(db::now_micros);
        let inserted = sqlx::query(
            "INSERT INTO notifications.notifications (id, customer_id, order_id, kind, sms_number, text, created_at, delivered_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(customer_id)
        .bind(order_id)
        .bind(kind.as_str())
        .bind(&sms_number)
        .bind(&text)
        .bind(db::now_micros())
        .bind(delivered_at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            // Numbers and names are personal data: the text itself only at DEBUG.
            tracing::info!(
                notification = id,
                customer = customer_id,
                kind = kind.as_str(),
                "SMS"
            );
            tracing::debug!(notification = id, to = %sms_number, %text, "SMS text");
            if let Some(webhook) = &self.webhook {
                // Its next read waits for this transaction (SQLite) or polls shortly after.
                webhook.notify_one();
            }
        }
        Ok(())
    }

    async fn customer(
        &self,
        tx: &mut db::Conn,
        id: &str,
    ) -> Result<Option<(String, String)>, HandlerError> {
        let row =
            sqlx::query("SELECT name, sms_number FROM notifications.customers_cache WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(row) = row {
            return Ok(Some((row.try_get(0)?, row.try_get(1)?)));
        }
        let answer = self
            .customers
            .clone()
            .get_customer(customers::GetCustomerRequest { id: id.to_owned() })
            .await;
        let customer = match answer {
            Ok(found) => found.into_inner().customer.unwrap_or_default(),
            Err(status) if status.code() == tonic::Code::NotFound => return Ok(None),
            Err(status) => {
                return Err(HandlerError::Transient(anyhow::anyhow!(
                    "customer fallback failed: {}",
                    status.message()
                )));
            }
        };
        cache(tx, id, &customer.name, &customer.sms_number).await?;
        Ok(Some((customer.name, customer.sms_number)))
    }
}

async fn cache(
    tx: &mut db::Conn,
    id: &str,
    name: &str,
    sms_number: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notifications.customers_cache (id, name, sms_number) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, sms_number = excluded.sms_number",
    )
    .bind(id)
    .bind(name)
    .bind(sms_number)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

messaging::messages! {
    /// What notifications hears of customers.
    pub(crate) enum CustomerEvent {
        Registered(customers::CustomerRegistered),
        SmsChanged(customers::CustomerSmsChanged),
        Erased(customers::CustomerErased),
    }
}

messaging::messages! {
    /// The orders a customer hears about.
    pub(crate) enum OrderEvent {
        Created(ordering::OrderCreated),
        Readied(ordering::OrderReadied),
        Canceled(ordering::OrderCanceled),
    }
}

#[async_trait]
impl On<CustomerEvent> for Notifier {
    async fn on(&self, tx: &mut db::Conn, event: CustomerEvent, message: &Incoming) -> Handled {
        match event {
            CustomerEvent::Registered(e) => cache(tx, &e.id, &e.name, &e.sms_number).await?,
            CustomerEvent::SmsChanged(e) => {
                sqlx::query(
                    "UPDATE notifications.customers_cache SET sms_number = $2 WHERE id = $1",
                )
                .bind(&e.id)
                .bind(&e.sms_number)
                .execute(&mut *tx)
                .await?;
                self.notify(tx, message.id(), Kind::SmsChanged, &e.id, "")
                    .await?;
            }
            CustomerEvent::Erased(e) => erase(tx, &e.id).await?,
        }
        Ok(())
    }
}

#[async_trait]
impl On<OrderEvent> for Notifier {
    async fn on(&self, tx: &mut db::Conn, event: OrderEvent, message: &Incoming) -> Handled {
        let (kind, customer_id, order_id) = match event {
            OrderEvent::Created(e) => (Kind::OrderCreated, e.customer_id, e.id),
            OrderEvent::Readied(e) => (Kind::OrderReady, e.customer_id, e.id),
            OrderEvent::Canceled(e) => (Kind::OrderCanceled, e.customer_id, e.id),
        };
        self.notify(tx, message.id(), kind, &customer_id, &order_id)
            .await
    }
}

/// Forgets customer `id`'s name and number: its cached copy, and the number and text (which
/// names it) of every notification it was sent. The notifications stay, as a record that
/// something was sent.
async fn erase(tx: &mut db::Conn, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM notifications.customers_cache WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE notifications.notifications SET sms_number = '', text = '' WHERE customer_id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
