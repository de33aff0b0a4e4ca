//! The webhook sink: notifications not yet delivered are POSTed, oldest first, until the
//! receiver answers 2xx — the outbox pattern, with an HTTP endpoint in place of the broker.
//! Failures back off and retry; nothing is dropped.

use std::{sync::Arc, time::Duration};

use db::{Db, Row as _};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Delivers to `url` until `stop`.
pub(crate) async fn deliver(db: Db, url: String, wake: Arc<Notify>, stop: CancellationToken) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut backoff = Duration::from_millis(100);
    loop {
        let wait = match deliver_batch(&db, &client, &url).await {
            Ok(0) => {
                backoff = Duration::from_millis(100);
                Duration::from_secs(1)
            }
            Ok(_) => continue,
            Err(error) => {
                tracing::warn!(%url, %error, retry_in = ?backoff, "notification webhook failed");
                let wait = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                wait
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Delivers up to 50 notifications in order; how many.
async fn deliver_batch(db: &Db, client: &reqwest::Client, url: &str) -> anyhow::Result<usize> {
    // A write transaction: on SQLite it waits for a notification still being committed.
    let mut tx = db.begin().await?;
    let rows = sqlx::query(
        "SELECT id, customer_id, order_id, kind, sms_number, text, created_at FROM notifications.notifications
         WHERE delivered_at IS NULL ORDER BY created_at, id LIMIT 50",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    for row in &rows {
        let id: String = row.try_get(0)?;
        let body = json!({
            "id": id,
            "customerId": row.try_get::<String, _>(1)?,
            "orderId": row.try_get::<String, _>(2)?,
            "kind": row.try_get::<String, _>(3)?,
            "smsNumber": row.try_get::<String, _>(4)?,
            "text": row.try_get::<String, _>(5)?,
            "createdAt": row.try_get::<i64, _>(6)?,
        });
        let response = client.post(url).json(&body).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "the receiver answered {}",
            response.status()
        );
        db.write(
            sqlx::query("UPDATE notifications.notifications SET delivered_at = $2 WHERE id = $1")
                .bind(&id)
                .bind(db::now_micros()),
        )
        .await?;
    }
    Ok(rows.len())
}
