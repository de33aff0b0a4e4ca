//! Replicas sharing one consumer (ADR 23): each aggregate's messages handled by one replica at
//! a time, in stream order, while parts move between replicas; a replica paused past its lease
//! commits nothing once another has taken its part.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use messaging::Owners;

use super::*;

const LEASE: Duration = Duration::from_millis(1200);

/// Records each message in `shop.effects` (label `<replica>:<event name>`), checking that no
/// two messages of one aggregate are ever in flight at once, across every replica.
#[derive(Clone)]
struct Sharer {
    replica: &'static str,
    /// Aggregate → messages of it being handled now, by any replica.
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    /// Times a message was started while another of its aggregate was in flight.
    overlaps: Arc<AtomicUsize>,
    /// Messages handled per replica (attempts, committed or not).
    handled: Arc<AtomicUsize>,
    /// When set, the handler of the message named so waits for `resume` (a paused replica).
    pause_on: Option<&'static str>,
    paused: Arc<tokio::sync::Notify>,
    resume: Arc<tokio::sync::Notify>,
}

impl Sharer {
    fn new(
        replica: &'static str,
        in_flight: &Arc<Mutex<HashMap<String, usize>>>,
        overlaps: &Arc<AtomicUsize>,
    ) -> Sharer {
        Sharer {
            replica,
            in_flight: in_flight.clone(),
            overlaps: overlaps.clone(),
            handled: Arc::default(),
            pause_on: None,
            paused: Arc::default(),
            resume: Arc::default(),
        }
    }
}

#[async_trait]
impl Handler for Sharer {
    async fn handle(&self, tx: &mut db::Conn, message: &Incoming) -> Result<(), HandlerError> {
        let event: StoreCreated = message.decode()?;
        let pausing = self.pause_on == Some(event.name.as_str());
        if !pausing {
            let mut in_flight = self.in_flight.lock().unwrap();
            let now = in_flight.entry(event.id.clone()).or_default();
            if *now > 0 {
                self.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            *now += 1;
        }
        self.handled.fetch_add(1, Ordering::SeqCst);
        if pausing {
            self.paused.notify_one();
            self.resume.notified().await;
        } else {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        sqlx::query("INSERT INTO shop.effects (msg_id, store_id, label) VALUES ($1, $2, $3)")
            .bind(message.id())
            .bind(&event.id)
            .bind(format!("{}:{}", self.replica, event.name))
            .execute(&mut *tx)
            .await?;
        if !pausing {
            *self.in_flight.lock().unwrap().get_mut(&event.id).unwrap() -= 1;
        }
        Ok(())
    }
}

/// A replica: its owner keeper (ticking by itself unless `manual`) and its share of the
/// subscription.
struct Replica {
    owners: Owners,
    stop: CancellationToken,
}

impl Replica {
    fn start(rig: &Rig, name: &str, sub: Subscription, handler: Sharer, manual: bool) -> Replica {
        let owners = Owners::new(rig.db().clone(), SCHEMA, name, LEASE);
        let stop = rig.stop.child_token();
        if !manual {
            tokio::spawn(owners.clone().keep(stop.clone()));
        }
        tokio::spawn(messaging::subscription::run_shared(
            rig.db().clone(),
            rig.broker(),
            sub,
            Arc::new(handler),
            owners.clone(),
            stop.clone(),
        ));
        Replica { owners, stop }
    }
}

fn shared(parts: u32) -> Subscription {
    let mut sub = subscription("shop-shared");
    sub.parts = parts;
    sub
}

/// Stream order of `aggregates` × `each` messages, interleaved at random across aggregates
/// (each aggregate's own in order), as labels `a<g>-<n>`.
async fn publish_shuffled(rig: &Rig, aggregates: usize, each: usize) {
    let mut rng = rand::rng();
    let mut next = vec![1_usize; aggregates];
    let mut messages = Vec::new();
    while next.iter().any(|n| *n <= each) {
        let g = rand::Rng::random_range(&mut rng, 0..aggregates);
        if next[g] > each {
            continue;
        }
        messages.push(store_event(&format!("a{g}"), &format!("a{g}-{}", next[g])));
        next[g] += 1;
    }
    let stream: Vec<(String, Message)> = messages
        .into_iter()
        .map(|m| (m.id().to_owned(), m))
        .collect();
    publish_raw(rig, &stream).await;
}

/// (replica, event name) of every committed effect, in commit order.
async fn committed(rig: &Rig) -> Vec<(String, String)> {
    rig.labels()
        .await
        .into_iter()
        .map(|label| {
            let (replica, name) = label.split_once(':').unwrap();
            (replica.to_owned(), name.to_owned())
        })
        .collect()
}

pub(super) async fn replicas_share_a_consumer_each_aggregate_in_order_one_at_a_time(
    backend: Backend,
) {
    const AGGREGATES: usize = 100;
    const EACH: usize = 5;
    let rig = Rig::new(backend).await;
    publish_shuffled(&rig, AGGREGATES, EACH).await;
    let (in_flight, overlaps) = (Arc::default(), Arc::new(AtomicUsize::new(0)));
    let first = Sharer::new("a", &in_flight, &overlaps);
    let second = Sharer::new("b", &in_flight, &overlaps);
    let sub = shared(4).parallel(2, 4);
    let _a = Replica::start(&rig, "a", sub.clone(), first.clone(), false);
    // The second joins while the first is at work: two of its four parts move over.
    eventually("the first replica is at work", || async {
        rig.effects().await.len() >= 50
    })
    .await;
    let _b = Replica::start(&rig, "b", sub, second.clone(), false);
    eventually("every message takes effect", || async {
        rig.effects().await.len() >= AGGREGATES * EACH
    })
    .await;
    tokio::time::sleep(LEASE).await;
    let effects = committed(&rig).await;
    assert_eq!(effects.len(), AGGREGATES * EACH, "each message once");
    for g in 0..AGGREGATES {
        let of: Vec<&str> = effects
            .iter()
            .filter(|(_, name)| name.starts_with(&format!("a{g}-")))
            .map(|(_, name)| name.as_str())
            .collect();
        let expected: Vec<String> = (1..=EACH).map(|n| format!("a{g}-{n}")).collect();
        assert_eq!(of, expected, "aggregate a{g} in stream order");
    }
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two messages of one aggregate in flight at once"
    );
    let by = |replica: &str| effects.iter().filter(|(r, _)| r == replica).count();
    assert!(
        by("a") > 0 && by("b") > 0,
        "both replicas handled a share: a {}, b {}",
        by("a"),
        by("b")
    );
    assert_eq!(
        first.handled.load(Ordering::SeqCst) + second.handled.load(Ordering::SeqCst),
        AGGREGATES * EACH,
        "no handling was rolled back and done again"
    );
}

pub(super) async fn a_replica_paused_past_its_lease_commits_nothing_it_no_longer_owns(
    backend: Backend,
) {
    let rig = Rig::new(backend).await;
    rig.relay();
    let (in_flight, overlaps) = (Arc::default(), Arc::new(AtomicUsize::new(0)));
    let mut paused = Sharer::new("a", &in_flight, &overlaps);
    paused.pause_on = Some("x-2");
    let (pausing, resume) = (paused.paused.clone(), paused.resume.clone());
    let sub = shared(1);
    let a = Replica::start(&rig, "a", sub.clone(), paused, true);
    // The first replica's keeper ticks until the replica is paused, mid-message.
    let ticking = Arc::new(AtomicBool::new(true));
    let keeper = {
        let (owners, ticking) = (a.owners.clone(), ticking.clone());
        tokio::spawn(async move {
            while ticking.load(Ordering::SeqCst) {
                owners.tick().await.unwrap();
                tokio::time::sleep(LEASE / 4).await;
            }
        })
    };
    rig.stage(vec![store_event("x", "x-1")]).await;
    eventually("the first replica handles x-1", || async {
        !committed(&rig).await.is_empty()
    })
    .await;
    rig.stage(vec![store_event("x", "x-2"), store_event("x", "x-3")])
        .await;
    pausing.notified().await;
    ticking.store(false, Ordering::SeqCst);
    keeper.await.unwrap();

    // Past the first's lease, the second replica takes the part over — on PostgreSQL while the
    // first is still paused. On SQLite, one writer at a time: the paused transaction holds
    // every write, the second's take-over included, until it ends.
    let second = Sharer::new("b", &in_flight, &overlaps);
    let b = Replica::start(&rig, "b", sub, second.clone(), false);
    let owned_by_b = || async {
        rig.count("SELECT COUNT(*) FROM shop.consumer_owners WHERE owner = 'b'")
            .await
            == 1
    };
    tokio::time::sleep(LEASE * 2).await;
    if backend == Backend::Postgres {
        eventually("the second replica owns the part", owned_by_b).await;
    }
    // The first wakes up. On PostgreSQL its transaction finds the part taken and rolls back,
    // and the second handles what the first held; on SQLite the part was still the first's.
    resume.notify_one();
    eventually("the rest is handled", || async {
        committed(&rig).await.iter().any(|(_, name)| name == "x-3")
    })
    .await;
    eventually("the second replica owns the part", owned_by_b).await;
    a.owners.tick().await.unwrap();
    // What comes next is the second's alone.
    rig.stage(vec![store_event("x", "x-4")]).await;
    eventually("x-4 is handled", || async {
        committed(&rig).await.iter().any(|(_, name)| name == "x-4")
    })
    .await;
    tokio::time::sleep(LEASE / 2).await;
    let effects = committed(&rig).await;
    let names: Vec<&str> = effects.iter().map(|(_, name)| name.as_str()).collect();
    assert_eq!(
        names,
        ["x-1", "x-2", "x-3", "x-4"],
        "each once, in order: {effects:?}"
    );
    assert_eq!(
        effects[0].0, "a",
        "the first handled x-1 while it owned the part"
    );
    let handed_over = effects.iter().position(|(replica, _)| replica == "b");
    assert!(
        handed_over.is_some_and(|first| effects[first..].iter().all(|(r, _)| r == "b")),
        "nothing committed by the first replica after the second took over: {effects:?}"
    );
    if backend == Backend::Postgres {
        assert_eq!(
            effects[1].0, "b",
            "the paused replica's x-2 rolled back: it had lost the part"
        );
    }
    assert!(owned_by_b().await, "the part stays with the second replica");
    b.stop.cancel();
    a.stop.cancel();
}

pub(super) async fn a_replica_restarted_in_place_holds_its_parts_at_once(backend: Backend) {
    let rig = Rig::new(backend).await;
    let member = Owners::member_on(8080);
    assert_eq!(
        member,
        Owners::member_on(8080),
        "one host and port, one member"
    );
    assert_ne!(member, Owners::member_on(8081));
    let before = Owners::new(rig.db().clone(), SCHEMA, member.clone(), LEASE);
    let claims = before.join("shop-restarted", 2);
    before.tick().await.unwrap();
    let held = claims.borrow().held.clone();
    assert_eq!(held.len(), 2, "alone, it holds every part");
    // It crashes (its keeper stops) and starts again on the same host and port.
    drop(before);
    let again = Owners::new(rig.db().clone(), SCHEMA, member, LEASE);
    let claims = again.join("shop-restarted", 2);
    again.tick().await.unwrap();
    assert_eq!(
        claims.borrow().held,
        held,
        "its parts at once, at the same epochs"
    );
    // Anyone else waits for the lease, which the restarted process keeps renewing.
    let other = Owners::new(rig.db().clone(), SCHEMA, "elsewhere:8080", LEASE);
    let theirs = other.join("shop-restarted", 2);
    other.tick().await.unwrap();
    assert!(
        theirs.borrow().held.is_empty(),
        "another replica takes nothing held"
    );
}
