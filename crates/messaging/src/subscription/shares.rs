//! A subscription shared by replicas (ADR 23): this replica runs the parts its owner keeper
//! holds, each through a consumer of its own readied for it, and stops a part the moment it is
//! no longer surely held.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use db::Db;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    Handler, Subscription,
    runner::{Runner, Share},
    sleep_or_stop,
};
use crate::{broker::Broker, ownership::Owners};

/// A part running here: the epoch it was taken at, its stop and its task.
struct Running {
    epoch: i64,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Consumes `subscription`'s parts that `owners` holds for this replica, until `stop` is
/// cancelled; parts come and go as replicas join and leave. Messages of one aggregate belong to
/// one part, so they are handled by one replica at a time, in stream order.
pub async fn run_shared(
    db: Db,
    broker: Arc<dyn Broker>,
    subscription: Subscription,
    handler: Arc<dyn Handler>,
    owners: Owners,
    stop: CancellationToken,
) {
    let consumer = subscription.consumer.clone();
    let mut claims = owners.join(&consumer, subscription.parts);
    let mut running: BTreeMap<u32, Running> = BTreeMap::new();
    // Parts whose runner ended by itself at this epoch (taken over): not restarted until the
    // keeper says what holds now.
    let mut ended: BTreeMap<u32, i64> = BTreeMap::new();
    while !stop.is_cancelled() {
        let held = claims.borrow_and_update().now();
        let gone: Vec<u32> = running
            .iter()
            .filter(|(part, run)| held.get(part) != Some(&run.epoch) || run.task.is_finished())
            .map(|(part, _)| *part)
            .collect();
        for part in gone {
            if let Some(run) = running.remove(&part) {
                if run.task.is_finished() && held.get(&part) == Some(&run.epoch) {
                    ended.insert(part, run.epoch);
                }
                stop_part(&owners, &consumer, part, run).await;
            }
        }
        ended.retain(|part, epoch| held.get(part) == Some(epoch));
        for (&part, &epoch) in &held {
            if running.contains_key(&part) || ended.get(&part) == Some(&epoch) {
                continue;
            }
            let part_stop = stop.child_token();
            let share = Share {
                part,
                epoch,
                fence: owners.fence(&consumer, part, epoch),
                claims: claims.clone(),
                lost: part_stop.clone(),
            };
            let task = tokio::spawn(run_part(
                db.clone(),
                broker.clone(),
                subscription.clone(),
                handler.clone(),
                share,
                part_stop.clone(),
            ));
            running.insert(
                part,
                Running {
                    epoch,
                    stop: part_stop,
                    task,
                },
            );
        }
        // Woken by the keeper, by the claims running out unrenewed, or to notice a part whose
        // runner stopped by itself.
        let until = claims.borrow().until;
        let wake = match until {
            Some(until) if !running.is_empty() => {
                until.min(tokio::time::Instant::now() + Duration::from_millis(250))
            }
            _ => tokio::time::Instant::now() + Duration::from_millis(250),
        };
        tokio::select! {
            () = stop.cancelled() => break,
            changed = claims.changed() => if changed.is_err() { break },
            () = tokio::time::sleep_until(wake) => {}
        }
    }
    for (part, run) in std::mem::take(&mut running) {
        stop_part(&owners, &consumer, part, run).await;
    }
    owners.forget(&consumer);
}

/// Stops a part's runner, waits for what it was handling to settle, and hands the part back.
async fn stop_part(owners: &Owners, consumer: &str, part: u32, run: Running) {
    run.stop.cancel();
    let _ = run.task.await;
    if let Err(error) = owners.release(consumer, part, run.epoch).await {
        tracing::warn!(consumer, part, %error, "could not hand a part back; its lease runs out instead");
    }
}

/// Readies the part's consumer for this replica, then consumes it until `stop` (or until a
/// transaction finds the part taken over, which cancels `stop`).
async fn run_part(
    db: Db,
    broker: Arc<dyn Broker>,
    subscription: Subscription,
    handler: Arc<dyn Handler>,
    share: Share,
    stop: CancellationToken,
) {
    let spec = subscription.spec(share.part);
    let mut backoff = Duration::from_millis(100);
    while let Err(error) = broker.take_over(&spec).await {
        tracing::warn!(consumer = %spec.durable, %error, retry_in = ?backoff, "cannot ready the consumer for this replica");
        if sleep_or_stop(backoff, &stop).await || !share.held() {
            return;
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    tracing::info!(consumer = %spec.durable, part = share.part, epoch = share.epoch, "handling a share of the consumer");
    // One part keeps the subscription's upkeep (replays, rewinds, the inbox's purge).
    let upkeep = share.part == 0;
    let runner = Arc::new(Runner::new(
        db,
        broker.as_ref(),
        subscription,
        handler,
        Some(share),
    ));
    let maintain =
        upkeep.then(|| tokio::spawn(runner.clone().maintain(broker.clone(), stop.clone())));
    runner.consume(broker, stop.clone()).await;
    stop.cancel();
    if let Some(maintain) = maintain {
        let _ = maintain.await;
    }
}
