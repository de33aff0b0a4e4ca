//! Handing a batch of outbox rows to the broker: one `publish` span per traced message, in the
//! trace that staged it, and the published-messages counter.

use crate::broker::{Broker, Outgoing};

/// An outbox row on its way out.
pub(super) struct Row {
    pub(super) seq: i64,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) subject: String,
    pub(super) body: Vec<u8>,
    pub(super) traceparent: Option<String>,
}

/// One span per traced message, in the trace that staged it, open until the broker has it.
pub(super) fn publish_spans(schema: &'static str, rows: &[Row]) -> Vec<tracing::Span> {
    rows.iter()
        .filter_map(|row| {
            let traceparent = row.traceparent.as_deref()?;
            let span = tracing::info_span!(parent: None, "publish", otel.name = format!("publish {}", row.name),
                otel.kind = "producer", module = schema, messaging.destination.name = %row.subject, messaging.message.id = %row.id);
            telemetry::adopt_traceparent(&span, traceparent);
            Some(span)
        })
        .collect()
}

pub(super) fn outgoing(rows: &[Row]) -> Vec<Outgoing<'_>> {
    rows.iter()
        .map(|row| Outgoing {
            subject: &row.subject,
            id: &row.id,
            body: &row.body,
        })
        .collect()
}

pub(super) fn count_published(schema: &'static str, rows: &[Row]) {
    for row in rows {
        metrics::counter!("messages_published_total", "module" => schema, "name" => row.name.clone())
            .increment(1);
    }
}

/// Publishes `rows` in order; how many leading rows are stored, and the error if not all are.
pub(super) async fn publish(
    broker: &dyn Broker,
    schema: &'static str,
    rows: &[Row],
) -> (usize, anyhow::Result<()>) {
    if rows.is_empty() {
        return (0, Ok(()));
    }
    let spans = publish_spans(schema, rows);
    let outgoing = outgoing(rows);
    let (stored, result) = match broker.publish(&outgoing).await {
        Ok(()) => (rows.len(), Ok(())),
        Err(error) => (error.stored, Err(error.into())),
    };
    count_published(schema, &rows[..stored]);
    drop(spans);
    (stored, result)
}
