//! Reading a store: one aggregate (its snapshot and the events after it, in one round trip)
//! and every aggregate's events in append order (rebuilding a projection).

use db::{AssertSqlSafe, Row as _};

use super::{EventStore, Loaded};
use crate::{Aggregate, Envelope, Error, EventHandler, upcast};

impl<A: Aggregate, H: EventHandler<A>> EventStore<A, H> {
    /// Up to `limit` events of every `A` appended after `position`, in append order, each with
    /// its position: how a read model is rebuilt from the store, a page at a time (pass the
    /// last position back). Upcast like every load.
    ///
    /// # Errors
    /// A database error, or an event that does not decode.
    pub async fn read_all_in(
        &self,
        conn: &mut db::Conn,
        position: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Envelope<A::Event>)>, Error<A::Error>> {
        let rows = sqlx::query(AssertSqlSafe(self.sql.read_all.as_str()))
            .bind(A::TYPE)
            .bind(position)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let aggregate_id: String = row.try_get(1)?;
            let version: i64 = row.try_get(2)?;
            let name: String = row.try_get(4)?;
            let event = self
                .decode_event(&name, row.try_get(5)?, &row.try_get::<String, _>(6)?)
                .map_err(|reason| Error::Corrupt {
                    stream: A::TYPE,
                    id: aggregate_id.clone(),
                    name,
                    version,
                    reason,
                })?;
            let metadata: String = row.try_get(7)?;
            let metadata = serde_json::from_str(&metadata)
                .map_err(|e| self.corrupt(&aggregate_id, "metadata", version, e))?;
            let occurred_at =
                chrono::DateTime::from_timestamp_micros(row.try_get(8)?).unwrap_or_default();
            events.push((
                row.try_get(0)?,
                Envelope {
                    event_id: row.try_get(3)?,
                    aggregate_id,
                    version,
                    event,
                    occurred_at,
                    metadata,
                },
            ));
        }
        Ok(events)
    }

    pub(super) async fn load_in(
        &self,
        conn: &mut db::Conn,
        id: &str,
    ) -> Result<Option<Loaded<A>>, Error<A::Error>> {
        let rows = sqlx::query(AssertSqlSafe(self.sql.load_stream.as_str()))
            .bind(id)
            .bind(A::TYPE)
            .bind(A::SNAPSHOT_VERSION)
            .fetch_all(&mut *conn)
            .await?;
        let mut rows = rows.into_iter().peekable();
        let mut start = (A::default(), None);
        if let Some(first) = rows.peek()
            && first.try_get::<String, _>(1)?.is_empty()
        {
            let version: i64 = first.try_get(0)?;
            let data: String = first.try_get(3)?;
            match serde_json::from_str(&data) {
                Ok(aggregate) => {
                    start = (aggregate, Some(version));
                    rows.next();
                }
                Err(error) => {
                    tracing::warn!(aggregate = A::TYPE, id, %error, "ignoring an unreadable snapshot");
                    // The events after it are not enough: all of them, then.
                    let all = sqlx::query(AssertSqlSafe(self.sql.load_events.as_str()))
                        .bind(id)
                        .bind(A::TYPE)
                        .bind(0_i64)
                        .fetch_all(&mut *conn)
                        .await?;
                    return self.replay(id, A::default(), None, all);
                }
            }
        }
        self.replay(id, start.0, start.1, rows)
    }

    /// Applies `rows` (version, name, stored version, data) to `aggregate`, which stands at
    /// `snapshot_version`.
    fn replay(
        &self,
        id: &str,
        mut aggregate: A,
        snapshot_version: Option<i64>,
        rows: impl IntoIterator<Item = db::AnyRow>,
    ) -> Result<Option<Loaded<A>>, Error<A::Error>> {
        let mut version = snapshot_version.unwrap_or(0);
        let mut events_replayed = 0;
        for row in rows {
            let stream_version: i64 = row.try_get(0)?;
            let name: String = row.try_get(1)?;
            let stored_version: i32 = row.try_get(2)?;
            let data: String = row.try_get(3)?;
            let event = self
                .decode_event(&name, stored_version, &data)
                .map_err(|reason| Error::Corrupt {
                    stream: A::TYPE,
                    id: id.to_owned(),
                    name,
                    version: stream_version,
                    reason,
                })?;
            aggregate.apply(&event);
            version = stream_version;
            events_replayed += 1;
        }
        if version == 0 {
            return Ok(None);
        }
        Ok(Some(Loaded {
            aggregate,
            version,
            snapshot_version,
            events_replayed,
        }))
    }

    fn decode_event(
        &self,
        name: &str,
        stored_version: i32,
        data: &str,
    ) -> Result<A::Event, String> {
        let value: serde_json::Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
        let value = upcast::upcast(A::UPCASTERS, name, stored_version, value)?;
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
}
