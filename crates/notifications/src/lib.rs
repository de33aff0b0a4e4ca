//! Notifications: tells customers what happens to their orders.
//!
//! Owns the `notifications` schema. Keeps a copy of customers (from their events, with a gRPC
//! fallback) and records one notification per order created, ready or canceled and per SMS
//! number change, handing each to the sink (the log) in the same transaction, and to the
//! webhook of `NOTIFICATIONS_WEBHOOK` when set (retried until delivered). Serves
//! `GET /api/notifications?customerId=` and `notificationspb.NotificationsService`.

mod grpc;
mod notify;
mod rest;
mod webhook;

/// The schema this module owns.
pub const SCHEMA: &str = "notifications";

const MIGRATIONS: db::Migrations = db::Migrations {
    component: "notifications",
    steps: &[
        db::Migration {
            version: 1,
            description: "customers cache and notifications",
            sql: notify::TABLES,
        },
        db::Migration {
            version: 2,
            description: "webhook delivery",
            sql: notify::DELIVERY,
        },
    ],
};

/// Creates or updates the `notifications` schema.
///
/// # Errors
/// A migration failed.
pub async fn migrate(db: &db::Db) -> anyhow::Result<()> {
    db.migrate(SCHEMA, &messaging::MIGRATIONS).await?;
    db.migrate(SCHEMA, &MIGRATIONS).await?;
    Ok(())
}

/// Adds the notifications module to `host`.
///
/// # Errors
/// The customers service address is not usable.
pub async fn mount(host: &mut host::Host) -> anyhow::Result<()> {
    use proto::customers;
    let webhook = host
        .config()
        .notifications_webhook
        .clone()
        .filter(|url| !url.is_empty());
    let wake = webhook
        .as_ref()
        .map(|_| std::sync::Arc::new(tokio::sync::Notify::new()));
    let notifier = notify::Notifier {
        customers: customers::customers_service_client::CustomersServiceClient::new(
            host.channel("CUSTOMERS")?,
        ),
        webhook: wake.clone(),
    };
    if let (Some(url), Some(wake)) = (webhook, wake) {
        let config = host.config();
        let sink = webhook::Sink::new(
            &url,
            config.notifications_webhook_secret.as_deref(),
            config.notifications_webhook_ca.as_deref(),
        )?;
        let db = host.db().clone();
        host.spawn("notification webhook", move |stop| async move {
            webhook::deliver(db, sink, wake, stop).await;
            Ok(())
        });
    }
    host.rest(rest::router(host.db().clone()), rest::openapi());
    host.grpc(grpc::server(host.db().clone(), notifier.clone()));
    use messaging::events;
    let customers =
        events::<notify::CustomerEvent, _>(SCHEMA, "notifications-customers", notifier.clone());
    host.route(customers)?;
    host.route(events::<notify::OrderEvent, _>(
        SCHEMA,
        "notifications-orders",
        notifier,
    ))?;
    Ok(())
}
