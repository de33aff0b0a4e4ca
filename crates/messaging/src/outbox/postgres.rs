//! PostgreSQL's part of the relay: the wake-up (`LISTEN`) and the leader, one replica at a
//! time holding the outbox's advisory lock on a connection of its own.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, LazyLock, Mutex, MutexGuard},
    time::Duration,
};

use db::Row as _;
use sqlx::Connection as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The connection that holds an outbox's relay lock for as long as it lives: reads and marks
/// go through it, so a replica that lost it (the connection died, and PostgreSQL released the
/// lock) finds out at its next statement, before it publishes anything else.
pub(super) struct Leader {
    url: String,
    key: i64,
    conn: Option<(db::Conn, bool)>,
}

impl Leader {
    pub(super) fn new(url: &str, schema: &str) -> Leader {
        Leader {
            url: url.to_owned(),
            key: db::advisory_key(&format!("mallbots.outbox.{schema}")),
            conn: None,
        }
    }

    /// The connection holding the lock, taking the lock if it is free; `None` while another
    /// replica relays this outbox.
    ///
    /// # Errors
    /// The server cannot be reached: call [`Leader::lost`].
    pub(super) async fn conn(&mut self) -> Result<Option<&mut db::Conn>, sqlx::Error> {
        if self.conn.is_none() {
            let conn = sqlx::AnyConnection::connect(&self.url).await?;
            self.conn = Some((conn, false));
        }
        let Some((conn, locked)) = self.conn.as_mut() else {
            return Ok(None);
        };
        if !*locked {
            *locked = sqlx::query("SELECT pg_try_advisory_lock($1)")
                .bind(self.key)
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
        }
        Ok(locked.then_some(conn))
    }

    /// Forgets the connection (and with it, once the server notices, the lock).
    pub(super) fn lost(&mut self) {
        self.conn = None;
    }
}

/// The wake-ups of one database's outboxes in this process: one `LISTEN` connection for all
/// of them. PostgreSQL signals every listening connection of a database at each notifying
/// commit, whatever its channels: one listener per outbox would wake them all, every time.
#[derive(Default)]
struct Hub {
    channels: Mutex<HashMap<String, Arc<Notify>>>,
    changed: Notify,
}

fn hubs() -> MutexGuard<'static, HashMap<String, Arc<Hub>>> {
    static HUBS: LazyLock<Mutex<HashMap<String, Arc<Hub>>>> = LazyLock::new(Mutex::default);
    HUBS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Hub {
    fn channels(&self) -> MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Wakes `staged` at each notification on `channel` of the database at `url`, until `stop`.
pub(super) fn listen(url: &str, channel: &str, staged: Arc<Notify>, stop: CancellationToken) {
    let hub = {
        let mut hubs = hubs();
        // A hub leaves the map (under this lock) only when its task ends: a new one needs one.
        let fresh = !hubs.contains_key(url);
        let hub = hubs.entry(url.to_owned()).or_default().clone();
        hub.channels().insert(channel.to_owned(), staged);
        if fresh {
            tokio::spawn(run(url.to_owned(), hub.clone()));
        }
        hub
    };
    hub.changed.notify_one();
    let channel = channel.to_owned();
    tokio::spawn(async move {
        stop.cancelled().await;
        hub.channels().remove(&channel);
        hub.changed.notify_one();
    });
}

/// Listens for `hub`'s channels, reconnecting on failure, until none is left.
async fn run(url: String, hub: Arc<Hub>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match serve(&url, &hub).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "outbox listener lost; polling until it reconnects");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn serve(url: &str, hub: &Hub) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    let mut listening: HashSet<String> = HashSet::new();
    loop {
        let wanted: HashMap<String, Arc<Notify>> = {
            let mut hubs = hubs();
            let wanted = hub.channels().clone();
            if wanted.is_empty() {
                hubs.remove(url);
                return Ok(());
            }
            wanted
        };
        for (channel, staged) in &wanted {
            if listening.insert(channel.clone()) {
                listener.listen(channel).await?;
                // A notification may have been missed before listening.
                staged.notify_one();
            }
        }
        let gone: Vec<String> = listening
            .iter()
            .filter(|c| !wanted.contains_key(*c))
            .cloned()
            .collect();
        for channel in gone {
            listener.unlisten(&channel).await?;
            listening.remove(&channel);
        }
        tokio::select! {
            () = hub.changed.notified() => {}
            notification = listener.recv() => {
                let notification = notification?;
                if let Some(staged) = hub.channels().get(notification.channel()) {
                    staged.notify_one();
                }
            }
        }
    }
}
