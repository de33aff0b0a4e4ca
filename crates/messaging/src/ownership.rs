//! Owners: which replica handles which share of a consumer, when several share it (ADR 23).
//!
//! A subscription's messages are split into `parts` by their aggregate key; each part is a
//! durable consumer of its own, handled by the one replica that owns it. Ownership is a row per
//! part in the module's schema (`consumer_owners`) with an owner, a lease that its owner renews
//! and an epoch raised at every change of hands. Every transaction that handles a message checks
//! its epoch ([`Fence`]), so a replica that was paused past its lease and wakes up commits
//! nothing once another has taken its part. Replicas announce themselves in `consumer_members`;
//! each takes up to its fair share (parts over live members, rounded up) and lets go of what is
//! above it, so a replica that joins gets work within a lease or two and a dead one's parts are
//! taken when its lease runs out.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use db::{AssertSqlSafe, Backend, Db, Row as _};
use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;

/// How long an owner's lease lasts unless configured; it is renewed every quarter of it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(3);

mod fence;
mod table;

pub use fence::{Fence, part_of_key};
use table::Row;

/// What one replica holds of one consumer, as its owner keeper last knew it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// Part → the epoch it was taken at.
    pub held: BTreeMap<u32, i64>,
    /// Until when the leases are surely still this replica's, by its own clock (a quarter of a
    /// lease before they could run out in the table).
    pub until: Option<Instant>,
}

impl Claims {
    /// The parts held now (none once `until` has passed without a renewal).
    #[must_use]
    pub fn now(&self) -> BTreeMap<u32, i64> {
        if self.valid() {
            self.held.clone()
        } else {
            BTreeMap::new()
        }
    }

    /// Whether the leases are still surely held.
    #[must_use]
    pub fn valid(&self) -> bool {
        self.until.is_some_and(|until| Instant::now() < until)
    }
}

struct Joined {
    parts: u32,
    claims: watch::Sender<Claims>,
    /// Parts this replica is letting go of: still renewed until their runner has stopped.
    releasing: BTreeSet<u32>,
}

/// The owner keeper of one module's consumers in one process.
#[derive(Clone)]
pub struct Owners {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    schema: &'static str,
    member: String,
    lease: Duration,
    joined: Mutex<HashMap<String, Joined>>,
    /// Shutting down: renews, takes nothing new.
    stopping: AtomicBool,
    /// Raised when a consumer joins: it gets its parts at once, not a quarter lease later.
    joining: tokio::sync::Notify,
    /// When the first lease another replica holds on a part this one would take runs out: the
    /// keeper looks then, not up to a quarter lease later.
    next_expiry: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Owners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owners")
            .field("schema", &self.inner.schema)
            .field("member", &self.inner.member)
            .finish_non_exhaustive()
    }
}

impl Owners {
    /// The keeper of `schema`'s consumers for this replica, known to the others as `member`.
    #[must_use]
    pub fn new(db: Db, schema: &'static str, member: impl Into<String>, lease: Duration) -> Owners {
        Owners {
            inner: Arc::new(Inner {
                db,
                schema,
                member: member.into(),
                lease: lease.max(Duration::from_millis(40)),
                joined: Mutex::new(HashMap::new()),
                stopping: AtomicBool::new(false),
                joining: tokio::sync::Notify::new(),
                next_expiry: Mutex::new(None),
            }),
        }
    }

    /// The member name of the process listening on `port` of this host: what no other live
    /// process can be at once (the port is its own), and what the same process restarted in
    /// place (a crashed container, a `kill -9` and start again) is again — so it renews what it
    /// held at once instead of waiting for its own leases to run out.
    #[must_use]
    pub fn member_on(port: u16) -> String {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|host| host.trim().to_owned())
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        format!("{host}:{port}")
    }

    /// This replica's name among the members.
    #[must_use]
    pub fn member(&self) -> &str {
        &self.inner.member
    }

    /// How long a lease lasts.
    #[must_use]
    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    /// Takes part in sharing `consumer`, split in `parts`: what this replica holds of it, kept
    /// current by [`Owners::tick`].
    pub fn join(&self, consumer: &str, parts: u32) -> watch::Receiver<Claims> {
        let mut joined = self.joined();
        let entry = joined.entry(consumer.to_owned()).or_insert_with(|| Joined {
            parts: parts.max(1),
            claims: watch::Sender::new(Claims::default()),
            releasing: BTreeSet::new(),
        });
        self.inner.joining.notify_one();
        entry.claims.subscribe()
    }

    /// The fence of `part` of `consumer` taken at `epoch`, for the transactions handling it.
    #[must_use]
    pub fn fence(&self, consumer: &str, part: u32, epoch: i64) -> Fence {
        let lock = match self.inner.db.backend() {
            Backend::Postgres => " FOR SHARE",
            Backend::Sqlite => "",
        };
        Fence {
            sql: Arc::from(format!(
                "SELECT 1 FROM {}.consumer_owners WHERE consumer = $1 AND part = $2 AND owner = $3 AND epoch = $4{lock}",
                self.inner.schema
            )),
            consumer: consumer.to_owned(),
            part,
            owner: self.inner.member.clone(),
            epoch,
        }
    }

    /// Renews and rebalances every quarter of a lease. Once `stop` is cancelled it takes nothing
    /// more but keeps renewing until every subscription has stopped its parts (and handed them
    /// back), then leaves.
    pub async fn keep(self, stop: CancellationToken) {
        let every = self.inner.lease / 4;
        loop {
            if let Err(error) = self.tick().await {
                tracing::warn!(schema = self.inner.schema, %error, "renewing consumer leases failed; retrying");
            }
            if stop.is_cancelled() {
                self.inner.stopping.store(true, Ordering::Relaxed);
                if self.joined().is_empty() {
                    break;
                }
                tokio::time::sleep(every.min(Duration::from_millis(50))).await;
                continue;
            }
            let next = self
                .inner
                .next_expiry
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .map_or(every, |at| {
                    at.saturating_duration_since(Instant::now()).min(every)
                });
            tokio::select! {
                () = stop.cancelled() => self.inner.stopping.store(true, Ordering::Relaxed),
                () = self.inner.joining.notified() => {}
                () = tokio::time::sleep(next) => {}
            }
        }
        if let Err(error) = self.leave().await {
            tracing::debug!(schema = self.inner.schema, %error, "could not hand back consumer leases");
        }
    }

    /// Stops sharing `consumer` (its runner has stopped every part).
    pub fn forget(&self, consumer: &str) {
        self.joined().remove(consumer);
    }

    /// One round: announces this replica, renews what it holds, takes free parts up to its fair
    /// share and marks what is above it for release. Public so that a test can stand for a
    /// replica whose keeper has stalled, by not calling it.
    ///
    /// # Errors
    /// The database's; nothing held is lost by one failed round (leases last four).
    pub async fn tick(&self) -> Result<(), sqlx::Error> {
        let inner = &self.inner;
        let schema = inner.schema;
        let started = Instant::now();
        let now = db::now_micros();
        let expires = now + micros(inner.lease);
        let mut tx = inner.db.begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {schema}.consumer_members (member, expires_at) VALUES ($1, $2)
             ON CONFLICT (member) DO UPDATE SET expires_at = excluded.expires_at"
        )))
        .bind(&inner.member)
        .bind(expires)
        .execute(&mut *tx)
        .await?;
        let renewed = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {schema}.consumer_owners SET expires_at = $2
             WHERE owner = $1 AND expires_at > $3 RETURNING consumer, part, epoch"
        )))
        .bind(&inner.member)
        .bind(expires)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut mine: HashMap<String, BTreeMap<u32, i64>> = HashMap::new();
        for row in &renewed {
            mine.entry(row.try_get(0)?)
                .or_default()
                .insert(part_of(row.try_get(1)?), row.try_get(2)?);
        }
        let rows = self.rows().await?;
        let members: i64 = sqlx::query(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {schema}.consumer_members WHERE expires_at > $1"
        )))
        .bind(now)
        .fetch_one(inner.db.pool())
        .await?
        .try_get(0)?;
        let members = u32::try_from(members.max(1)).unwrap_or(u32::MAX);
        let until = started + inner.lease * 3 / 4;
        let mut expiring: Option<i64> = None;
        let consumers: Vec<(String, u32)> = self
            .joined()
            .iter()
            .map(|(consumer, joined)| (consumer.clone(), joined.parts))
            .collect();
        for (consumer, parts) in consumers {
            let mut held = mine.remove(&consumer).unwrap_or_default();
            let theirs: Vec<&Row> = rows
                .iter()
                .filter(|r| r.consumer == consumer && r.owner != inner.member && r.expires_at > now)
                .collect();
            if let Some(other) = theirs.iter().find(|r| r.parts != parts) {
                tracing::error!(consumer, parts, theirs = other.parts, owner = %other.owner,
                    "replicas disagree on CONSUMER_PARTITIONS; this one takes nothing until they agree");
            } else if !inner.stopping.load(Ordering::Relaxed) {
                let fair = parts.div_ceil(members) as usize;
                let releasing = self.joined_releasing(&consumer);
                if active(&held, &releasing) < fair {
                    expiring = theirs.iter().map(|r| r.expires_at).chain(expiring).min();
                }
                for part in 0..parts {
                    if active(&held, &releasing) >= fair {
                        break;
                    }
                    if held.contains_key(&part) || theirs.iter().any(|r| r.part == part) {
                        continue;
                    }
                    if let Some(epoch) = self.acquire(&consumer, part, parts, now).await? {
                        tracing::info!(
                            consumer,
                            part,
                            parts,
                            epoch,
                            "took a share of the consumer"
                        );
                        held.insert(part, epoch);
                    }
                }
                self.release_above(&consumer, &held, fair);
            }
            self.publish(&consumer, held, until);
        }
        // Just past the expiry (by this clock), so the take finds the lease over.
        *inner
            .next_expiry
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = expiring.map(|at| {
            let wait = u64::try_from(at.saturating_sub(now).max(0)).unwrap_or(0);
            started + Duration::from_micros(wait) + Duration::from_millis(5)
        });
        Ok(())
    }

    /// Marks what is held above `fair` (the highest parts) for release.
    fn release_above(&self, consumer: &str, held: &BTreeMap<u32, i64>, fair: usize) {
        let mut joined = self.joined();
        let Some(entry) = joined.get_mut(consumer) else {
            return;
        };
        let active: Vec<u32> = held
            .keys()
            .filter(|part| !entry.releasing.contains(part))
            .copied()
            .collect();
        for part in active.iter().skip(fair) {
            entry.releasing.insert(*part);
        }
    }

    fn joined_releasing(&self, consumer: &str) -> BTreeSet<u32> {
        self.joined()
            .get(consumer)
            .map(|joined| joined.releasing.clone())
            .unwrap_or_default()
    }

    /// Tells `consumer`'s runner what it holds now, apart from what it is letting go of.
    fn publish(&self, consumer: &str, held: BTreeMap<u32, i64>, until: Instant) {
        let joined = self.joined();
        let Some(entry) = joined.get(consumer) else {
            return;
        };
        let held = held
            .into_iter()
            .filter(|(part, _)| !entry.releasing.contains(part))
            .collect();
        entry.claims.send_if_modified(|claims| {
            let changed = claims.held != held;
            *claims = Claims {
                held,
                until: Some(until),
            };
            changed
        });
    }

    fn joined(&self) -> std::sync::MutexGuard<'_, HashMap<String, Joined>> {
        self.inner
            .joined
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn active(held: &BTreeMap<u32, i64>, releasing: &BTreeSet<u32>) -> usize {
    held.keys().filter(|part| !releasing.contains(part)).count()
}

fn part_of(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}
