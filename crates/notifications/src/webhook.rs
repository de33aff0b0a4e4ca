//! The webhook sink: notifications not yet delivered are POSTed, oldest first, until the
//! receiver answers 2xx — the outbox pattern, with an HTTP endpoint in place of the broker.
//! Failures back off and retry; nothing is dropped. Deliveries are signed (HMAC-SHA256 over the
//! timestamp and the body) when a secret is configured, redirects are not followed (a
//! receiver that moved must be configured anew, not followed blindly with customers' numbers),
//! and only the receiver's origin is logged (its path or query may carry a token).

use std::{sync::Arc, time::Duration};

use db::{Db, Row as _};
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Where notifications go and how they are signed.
pub(crate) struct Sink {
    url: String,
    /// `scheme://host:port` only, for logs.
    origin: String,
    secret: Option<Vec<u8>>,
    client: reqwest::Client,
}

impl Sink {
    pub(crate) fn new(
        url: &str,
        secret: Option<&str>,
        ca: Option<&std::path::Path>,
    ) -> anyhow::Result<Sink> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| anyhow::anyhow!("NOTIFICATIONS_WEBHOOK is not a URL: {e}"))?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "http" | "https"),
            "NOTIFICATIONS_WEBHOOK must be an http:// or https:// URL"
        );
        let origin = parsed.origin().ascii_serialization();
        if secret.is_none() {
            tracing::warn!(webhook = %origin, "NOTIFICATIONS_WEBHOOK_SECRET is unset: deliveries are not signed");
        }
        host::install_crypto_provider();
        let mut client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(|e| {
                anyhow::anyhow!("reading NOTIFICATIONS_WEBHOOK_CA {}: {e}", ca.display())
            })?;
            client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        let client = client.build()?;
        Ok(Sink {
            url: url.to_owned(),
            origin,
            secret: secret.map(|s| s.as_bytes().to_vec()),
            client,
        })
    }

    /// POSTs `body`, signed when there is a secret; an error unless answered 2xx.
    async fn post(&self, body: &serde_json::Value) -> anyhow::Result<()> {
        let body = serde_json::to_vec(body)?;
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            let timestamp = (db::now_micros() / 1_000_000).to_string();
            request = request.header("X-Mallbots-Timestamp", &timestamp).header(
                "X-Mallbots-Signature",
                signature(secret, &timestamp, &body)?,
            );
        }
        let response = request.body(body).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "the receiver answered {}",
            response.status()
        );
        Ok(())
    }
}

/// `v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>` with `secret`: what a receiver
/// computes to know the delivery is ours and recent.
pub(crate) fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> anyhow::Result<String> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret)
        .map_err(|_| anyhow::anyhow!("NOTIFICATIONS_WEBHOOK_SECRET cannot key an HMAC"))?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!("v1={hex}"))
}

/// Delivers to `sink` until `stop`.
pub(crate) async fn deliver(db: Db, sink: Sink, wake: Arc<Notify>, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let wait = match deliver_batch(&db, &sink).await {
            Ok(0) => {
                backoff = Duration::from_millis(100);
                Duration::from_secs(1)
            }
            Ok(_) => continue,
            Err(error) => {
                tracing::warn!(webhook = %sink.origin, error = format!("{error:#}"), retry_in = ?backoff, "notification webhook failed");
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
async fn deliver_batch(db: &Db, sink: &Sink) -> anyhow::Result<usize> {
    // A write transaction: on SQLite it waits for a notification still being committed.
    let rows = db
        .transaction(|tx| {
            Box::pin(async move {
                sqlx::query(
                    "SELECT id, customer_id, order_id, kind, sms_number, text, created_at FROM notifications.notifications
                     WHERE delivered_at IS NULL ORDER BY created_at, id LIMIT 50",
                )
                .fetch_all(tx)
                .await
            })
        })
        .await?;
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
        sink.post(&body).await?;
        db.write(
            sqlx::query("UPDATE notifications.notifications SET delivered_at = $2 WHERE id = $1")
                .bind(&id)
                .bind(db::now_micros()),
        )
        .await?;
    }
    Ok(rows.len())
}
