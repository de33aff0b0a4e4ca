//! Short leases (ADR 20): what a live consumer works on stays with it past the ack wait, and
//! what a crashed one held comes back within the ack wait — at once, on SQLite, to the
//! process that restarts.

use super::*;

fn spec(ack_wait: Duration) -> messaging::ConsumerSpec {
    messaging::ConsumerSpec {
        durable: "leased".into(),
        subject: STORE_AGGREGATE_CHANNEL.into(),
        ack_wait,
    }
}

/// The next delivery of `consumer` within `wait`, if any.
async fn within(
    consumer: &mut Box<dyn messaging::Consumer>,
    wait: Duration,
) -> Option<Box<dyn messaging::Delivery>> {
    tokio::time::timeout(wait, consumer.next())
        .await
        .ok()
        .map(Result::unwrap)
}

/// A consumer with `ack_wait`, and the delivery of a message published after it opened.
async fn first_delivery(
    rig: &Rig,
    ack_wait: Duration,
) -> (Box<dyn messaging::Delivery>, Box<dyn messaging::Consumer>) {
    let mut consumer = rig.broker().consumer(&spec(ack_wait)).await.unwrap();
    rig.stage(vec![store_event("s1", "in flight")]).await;
    rig.relay();
    let delivery = within(&mut consumer, Duration::from_secs(10))
        .await
        .expect("delivered");
    (delivery, consumer)
}

pub(super) async fn a_delivery_held_past_its_ack_wait_stays_until_its_holder_dies(
    backend: Backend,
) {
    let rig = Rig::new(backend).await;
    let ack_wait = Duration::from_secs(1);
    let (held, mut holder) = first_delivery(&rig, ack_wait).await;
    let mut peer = rig.broker().consumer(&spec(ack_wait)).await.unwrap();

    // Three ack waits while its holder is alive and working: renewed, not delivered again.
    assert!(
        within(&mut peer, ack_wait * 3).await.is_none(),
        "a delivery being worked on was taken from its holder"
    );
    assert!(
        within(&mut holder, Duration::from_millis(10))
            .await
            .is_none()
    );

    // Its holder dies without settling it: the peer has it within an ack wait or so.
    let died = std::time::Instant::now();
    drop((held, holder));
    let again = within(&mut peer, ack_wait * 4)
        .await
        .expect("a dead holder's delivery comes back");
    assert_eq!(again.attempt(), 2);
    assert!(died.elapsed() < ack_wait * 3, "took {:?}", died.elapsed());
    again.ack().await.unwrap();
}

pub(super) async fn a_restarted_process_takes_back_its_deliveries_at_once(backend: Backend) {
    let rig = Rig::new(backend).await;
    // Long enough that only taking back, not the lease running out, can explain a redelivery.
    let ack_wait = match backend {
        Backend::Sqlite => Duration::from_secs(60),
        Backend::Postgres => Duration::from_secs(1),
    };
    drop(first_delivery(&rig, ack_wait).await);

    let restarted = std::time::Instant::now();
    let broker: Arc<dyn Broker> = match backend {
        // A new process: a broker of its own over the same database.
        Backend::Sqlite => Arc::new(messaging::Embedded::new(rig.db().clone(), "mallbots")),
        Backend::Postgres => rig.broker(),
    };
    let mut after = broker.consumer(&spec(ack_wait)).await.unwrap();
    let again = within(&mut after, Duration::from_secs(5))
        .await
        .expect("the restarted process has it again");
    assert_eq!(again.attempt(), 2);
    assert!(
        restarted.elapsed() < Duration::from_secs(3),
        "took {:?}",
        restarted.elapsed()
    );
    again.ack().await.unwrap();
}

pub(super) async fn a_consumer_made_by_an_older_version_takes_the_new_ack_wait(backend: Backend) {
    let rig = Rig::new(backend).await;
    let ack_wait = Duration::from_secs(1);
    // Made with the 35 s of earlier versions, then opened as this version opens it.
    drop(
        rig.broker()
            .consumer(&spec(Duration::from_secs(35)))
            .await
            .unwrap(),
    );
    let (delivery, mut first) = first_delivery(&rig, ack_wait).await;
    drop(delivery);
    let again = within(&mut first, ack_wait * 4).await;
    assert!(
        again.is_some(),
        "redelivered after the new ack wait, not 35 s"
    );
}
