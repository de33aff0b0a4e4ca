//! Telling a database that cannot be reached now (503, retry) from one that refused (500).

/// Whether `error`, or one of its causes, says the database cannot be reached right now: no
/// connection within the acquire timeout, a connection that broke, a server shutting down or
/// starting up. Such a request may succeed if sent again shortly (503, not 500).
pub fn unavailable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(cause) = next {
        if cause
            .downcast_ref::<sqlx::Error>()
            .is_some_and(is_unavailable)
        {
            return true;
        }
        next = cause.source();
    }
    false
}

pub(crate) fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // Connection exceptions (08…) and operator intervention (57P01 admin shutdown, 57P02
        // crash shutdown, 57P03 cannot connect now).
        sqlx::Error::Database(error) => error
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// Whether `error` says the connection it happened on is gone (not that no connection could
/// be had, nor that the statement was wrong).
pub(crate) fn broken(error: &sqlx::Error) -> bool {
    !matches!(error, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) && is_unavailable(error)
}
