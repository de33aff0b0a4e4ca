//! Short leases on deliveries, renewed while they are worked on (ADR 20).
//!
//! A broker redelivers a message whose delivery is neither settled nor renewed within its
//! `ack_wait`. A short `ack_wait` makes a crashed process's messages come back within seconds;
//! the cost is that a live process must renew what it still holds. Each consumer keeps its
//! unsettled deliveries in a [`Leases`] table and one task renews, every third of the wait, those
//! held longer than that: nothing is written while every message is settled within a second.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use futures::future::BoxFuture;
use tokio::time::Instant;

/// The unsettled deliveries of one consumer, each with what its broker needs to renew it.
pub(crate) struct Leases<T> {
    held: Mutex<Held<T>>,
}

struct Held<T> {
    next: u64,
    /// Lease id → when it was taken or last renewed, and its renewal handle.
    entries: HashMap<u64, (Instant, T)>,
}

/// One delivery's place in its consumer's [`Leases`]: renewed until released or dropped.
pub(crate) struct Lease<T> {
    leases: Arc<Leases<T>>,
    id: u64,
}

impl<T: Clone + Send + 'static> Leases<T> {
    /// An empty table whose leases `renew` renews every `ack_wait / 3` while any is held
    /// that long; the renewing task ends when the table and every lease are gone.
    pub(crate) fn start<F>(ack_wait: Duration, renew: F) -> Arc<Leases<T>>
    where
        F: Fn(Vec<T>) -> BoxFuture<'static, ()> + Send + 'static,
    {
        let leases = Arc::new(Leases {
            held: Mutex::new(Held {
                next: 0,
                entries: HashMap::new(),
            }),
        });
        let every = (ack_wait / 3).max(Duration::from_millis(10));
        tokio::spawn(keep_alive(Arc::downgrade(&leases), every, renew));
        leases
    }

    /// Holds `handle`'s delivery from now on.
    pub(crate) fn take(self: &Arc<Self>, handle: T) -> Lease<T> {
        let mut held = self.lock();
        held.next += 1;
        let id = held.next;
        held.entries.insert(id, (Instant::now(), handle));
        Lease {
            leases: Arc::clone(self),
            id,
        }
    }

    /// The handles held for at least `every` since taken or last renewed, marked renewed now.
    fn due(&self, every: Duration) -> Vec<T> {
        let now = Instant::now();
        let mut held = self.lock();
        held.entries
            .values_mut()
            .filter(|(since, _)| now.duration_since(*since) >= every)
            .map(|(since, handle)| {
                *since = now;
                handle.clone()
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held<T>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> Lease<T> {
    /// Stops renewing: the delivery is settled (or given up).
    pub(crate) fn release(&self) {
        self.leases
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .remove(&self.id);
    }
}

impl<T> Drop for Lease<T> {
    fn drop(&mut self) {
        self.release();
    }
}

async fn keep_alive<T, F>(leases: Weak<Leases<T>>, every: Duration, renew: F)
where
    T: Clone + Send + 'static,
    F: Fn(Vec<T>) -> BoxFuture<'static, ()>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(leases) = leases.upgrade() else {
            return;
        };
        let due = leases.due(every);
        drop(leases);
        if !due.is_empty() {
            renew(due).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn only_what_is_held_past_a_third_of_the_wait_is_renewed_until_released() {
        let renewed = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&renewed);
        let leases = Leases::start(Duration::from_secs(3), move |due: Vec<u32>| {
            seen.lock().unwrap().push(due);
            Box::pin(async {})
        });
        let slow = leases.take(1);
        tokio::time::sleep(Duration::from_millis(900)).await;
        let quick = leases.take(2);
        tokio::time::sleep(Duration::from_millis(150)).await;
        drop(quick);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(*renewed.lock().unwrap(), [vec![1], vec![1]]);
        slow.release();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            renewed.lock().unwrap().len(),
            2,
            "nothing after the release"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_renewing_task_ends_with_the_table() {
        let leases = Leases::start(Duration::from_secs(3), |_: Vec<u32>| Box::pin(async {}));
        let weak = Arc::downgrade(&leases);
        let lease = leases.take(7);
        drop(leases);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(weak.upgrade().is_some(), "a lease keeps the table");
        drop(lease);
        assert!(weak.upgrade().is_none());
    }
}
