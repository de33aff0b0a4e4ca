//! What an event-store operation can fail with.

/// Why a command did not produce stored events.
#[derive(Debug, thiserror::Error)]
pub enum Error<E> {
    /// The aggregate refused the command (a domain error: 4xx, a FAILURE reply).
    #[error(transparent)]
    Rejected(E),
    /// Another writer appended to the same stream first; retrying may succeed.
    #[error("concurrent update of {stream} {id}")]
    Conflict {
        /// The aggregate type.
        stream: &'static str,
        /// The aggregate id.
        id: String,
    },
    /// The database failed.
    #[error("event store: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored event could not be read back.
    #[error("stored event {name} (version {version}) of {stream} {id} is unreadable: {reason}")]
    Corrupt {
        /// The aggregate type.
        stream: &'static str,
        /// The aggregate id.
        id: String,
        /// The event's name.
        name: String,
        /// Its position in the stream.
        version: i64,
        /// What failed.
        reason: String,
    },
    /// The event handler failed; the append was rolled back. Its cause stays the source, so a
    /// database out of reach underneath is still told from a refusal (503, not 500).
    #[error("handling appended events")]
    Handler(#[source] anyhow::Error),
}

/// An aggregate whose definition cannot work, found when its store is built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The upcasters of one event do not form the chain 1 → 2 → … .
    #[error(
        "upcasters of {event} in {aggregate} must start at version 1 and have no gaps or repeats; found {found:?}"
    )]
    BrokenUpcasterChain {
        /// The aggregate type.
        aggregate: &'static str,
        /// The event name.
        event: &'static str,
        /// The `from_version`s declared.
        found: Vec<i32>,
    },
    /// The schema name is not a plain identifier.
    #[error("invalid schema name {0:?}")]
    InvalidSchema(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handlers_database_failure_stays_visible_underneath() {
        let error: Error<std::fmt::Error> =
            Error::Handler(anyhow::Error::new(sqlx::Error::PoolTimedOut));
        assert!(db::unavailable(&error), "a 503, not a 500");
    }
}
