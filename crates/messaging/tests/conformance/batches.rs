//! Batches and lanes: many messages in one transaction, many aggregates at once, and the
//! guarantees kept through both — one failure sinks only itself, one aggregate's messages
//! stay in order and take effect once, and nothing is lost or doubled by a crash after a
//! batch's commit.

use std::sync::atomic::Ordering;

use super::*;

/// Waits until the relay has handed every staged row to the broker.
async fn published(rig: &Rig) {
    eventually("the outbox is published", || async {
        rig.count("SELECT COUNT(*) FROM shop.outbox WHERE published_at IS NULL")
            .await
            == 0
    })
    .await;
}

/// A stream of four good messages with a poisoned one among them, then `after`, all published
/// before anyone consumes, and the recorder that refuses the poison.
async fn poisoned(backend: Backend, after: &[Message]) -> (Rig, Recorder) {
    let rig = Rig::new(backend).await;
    let recorder = Recorder::default();
    recorder.poisoned.lock().unwrap().insert("poison".into());
    let mut messages: Vec<Message> = (0..4)
        .map(|i| store_event(&format!("k{i}"), &format!("ok{i}")))
        .collect();
    messages.insert(2, store_event("p", "poison"));
    messages.extend_from_slice(after);
    rig.stage(messages).await;
    rig.relay();
    published(&rig).await;
    (rig, recorder)
}

pub(super) async fn a_poisoned_message_sinks_only_itself_in_its_batch(backend: Backend) {
    // Its aggregate's next message waits behind it, and is handled once it is dead.
    let (rig, recorder) = poisoned(backend, &[store_event("p", "after-poison")]).await;
    // Everything is in the stream before the consumer starts: one lane takes it as one batch.
    rig.subscribe(subscription("shop-batch").parallel(1, 32), recorder.clone());

    eventually("the others are handled", || async {
        rig.effects().await.len() == 4
    })
    .await;
    for i in 0..4 {
        assert_eq!(
            recorder.attempts_of(&format!("ok{i}")).len(),
            1,
            "ok{i} committed with its batch the first time, and ran once"
        );
    }
    eventually(
        "the poison is dead-lettered and its successor handled",
        || async {
            rig.count("SELECT COUNT(*) FROM shop.dead_letters").await == 1
                && rig.effects().await.len() == 5
        },
    )
    .await;
    let dead = dlq::list(rig.db(), SCHEMA).await.unwrap();
    assert_eq!(
        (dead[0].name.as_str(), dead[0].attempts),
        (STORE_CREATED_EVENT, 4)
    );
    assert_eq!(
        recorder.attempts_of("poison").len(),
        4,
        "the poison's handler ran once per delivery"
    );
    let poisoned_last = *recorder.attempts_of("poison").last().unwrap();
    let successor = recorder.attempts_of("after-poison");
    assert_eq!(successor.len(), 1);
    assert!(
        successor[0] > poisoned_last,
        "an aggregate's message waited behind its failing predecessor"
    );
    assert!(!rig.labels().await.contains(&"poison".to_owned()));
}

/// A consumer whose handler is idempotent writes no inbox rows and no savepoints: a poisoned
/// message fails its batch as a whole, which is then handled one message at a time, so the
/// others still commit (once each) and only the poison is dead-lettered.
pub(super) async fn an_idempotent_consumer_keeps_no_inbox_and_still_sets_a_poison_apart(
    backend: Backend,
) {
    let (rig, recorder) = poisoned(backend, &[]).await;
    let idempotent = subscription("shop-idempotent").parallel(1, 32).idempotent();
    rig.subscribe(idempotent, recorder.clone());
    eventually(
        "the others are handled and the poison dead-lettered",
        || async {
            rig.effects().await.len() == 4
                && rig.count("SELECT COUNT(*) FROM shop.dead_letters").await == 1
        },
    )
    .await;
    let mut labels = rig.labels().await;
    labels.sort();
    assert_eq!(labels, ["ok0", "ok1", "ok2", "ok3"], "each once");
    assert_eq!(rig.count("SELECT COUNT(*) FROM shop.inbox").await, 0);
}

/// An idempotent handler that writes a batch at once ([`Handler::handle_batch`]) is handed
/// what is ready as one call, in stream order, and each message takes effect once.
pub(super) async fn an_idempotent_consumer_is_handed_its_batch_whole(backend: Backend) {
    let rig = Rig::new(backend).await;
    let recorder = Recorder::default();
    let messages: Vec<Message> = (0..6)
        .map(|i| store_event(&format!("k{}", i % 2), &format!("m{i}")))
        .collect();
    rig.stage(messages).await;
    rig.relay();
    published(&rig).await;
    // Everything is in the stream before the consumer starts: one read.
    rig.subscribe(
        subscription("shop-whole").idempotent().batch(32),
        recorder.clone(),
    );
    eventually("all are handled", || async {
        rig.effects().await.len() == 6
    })
    .await;
    // The lane may wake before the read is all queued: then a first message goes alone.
    let batches = recorder.batches.lock().unwrap().clone();
    assert!(
        batches.iter().sum::<usize>() >= 5 && batches.iter().all(|size| *size > 1),
        "handed over in batches, not message by message: {batches:?}"
    );
    let order: Vec<String> = recorder
        .attempts
        .lock()
        .unwrap()
        .iter()
        .map(|(label, _)| label.clone())
        .collect();
    assert_eq!(
        order,
        ["m0", "m1", "m2", "m3", "m4", "m5"],
        "in stream order, once each"
    );
    assert_eq!(rig.count("SELECT COUNT(*) FROM shop.inbox").await, 0);
}

pub(super) async fn aggregates_are_handled_side_by_side_each_in_order(backend: Backend) {
    let rig = Rig::new(backend).await;
    const AGGREGATES: usize = 8;
    const EACH: usize = 4;
    // Interleaved across aggregates (each aggregate's own messages in their order), and some
    // delivered twice: the same message under another broker id, after its successor.
    let mut rng = rand::rng();
    let mut next = [1_usize; AGGREGATES];
    let mut stream: Vec<(String, Message)> = Vec::new();
    let mut copies: Vec<(String, Message)> = Vec::new();
    while next.iter().any(|n| *n <= EACH) {
        let g = rand::Rng::random_range(&mut rng, 0..AGGREGATES);
        if next[g] > EACH {
            continue;
        }
        let message = store_event(&format!("g{g}"), &format!("g{g}-{}", next[g]));
        stream.extend(
            copies
                .drain(..)
                .filter(|_| rand::Rng::random_bool(&mut rng, 0.5)),
        );
        if next[g] % 2 == 1 {
            copies.push((format!("copy-of-{}", message.id()), message.clone()));
        }
        stream.push((message.id().to_owned(), message));
        next[g] += 1;
    }
    stream.append(&mut copies);
    publish_raw(&rig, &stream).await;

    let recorder = Recorder {
        pause: Duration::from_millis(20),
        ..Recorder::default()
    };
    rig.subscribe(subscription("shop-lanes").parallel(4, 3), recorder.clone());
    eventually("every message takes effect", || async {
        rig.effects().await.len() >= AGGREGATES * EACH
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let labels = rig.labels().await;
    assert_eq!(labels.len(), AGGREGATES * EACH, "each once: {labels:?}");
    for g in 0..AGGREGATES {
        let of: Vec<&str> = labels
            .iter()
            .filter(|l| l.starts_with(&format!("g{g}-")))
            .map(String::as_str)
            .collect();
        let expected: Vec<String> = (1..=EACH).map(|n| format!("g{g}-{n}")).collect();
        assert_eq!(of, expected, "aggregate g{g} in order");
    }
    let most = recorder.running.1.load(Ordering::SeqCst);
    match backend {
        // Writers to one SQLite database take turns: lanes overlap only outside transactions.
        Backend::Sqlite => assert!(most >= 1),
        Backend::Postgres => assert!(most >= 2, "aggregates were handled one at a time"),
    }
}

/// The broker as seen by a process that dies between a batch's commit and its acks: no ack
/// ever reaches the broker (nor the embedded log, inside the transaction).
struct AcksLost(Arc<dyn Broker>);

struct LossyConsumer(Box<dyn messaging::Consumer>);

struct LossyDelivery(Box<dyn messaging::Delivery>);

#[async_trait]
impl Broker for AcksLost {
    async fn publish(&self, messages: &[Outgoing<'_>]) -> Result<(), messaging::PublishError> {
        self.0.publish(messages).await
    }

    async fn consumer(
        &self,
        spec: &messaging::ConsumerSpec,
    ) -> Result<Box<dyn messaging::Consumer>, messaging::BrokerError> {
        Ok(Box::new(LossyConsumer(self.0.consumer(spec).await?)))
    }

    async fn check(&self) -> Result<(), String> {
        self.0.check().await
    }

    async fn lag(&self, durable: &str) -> Result<Option<u64>, messaging::BrokerError> {
        self.0.lag(durable).await
    }

    async fn rewind(&self, durable: &str) -> Result<(), messaging::BrokerError> {
        self.0.rewind(durable).await
    }

    async fn take_over(
        &self,
        spec: &messaging::ConsumerSpec,
    ) -> Result<(), messaging::BrokerError> {
        self.0.take_over(spec).await
    }
}

#[async_trait]
impl messaging::Consumer for LossyConsumer {
    async fn next(&mut self) -> Result<Box<dyn messaging::Delivery>, messaging::BrokerError> {
        Ok(Box::new(LossyDelivery(self.0.next().await?)))
    }

    async fn next_batch(
        &mut self,
        max: usize,
    ) -> Result<Vec<Box<dyn messaging::Delivery>>, messaging::BrokerError> {
        Ok(self
            .0
            .next_batch(max)
            .await?
            .into_iter()
            .map(|d| Box::new(LossyDelivery(d)) as Box<dyn messaging::Delivery>)
            .collect())
    }
}

#[async_trait]
impl messaging::Delivery for LossyDelivery {
    fn subject(&self) -> &str {
        self.0.subject()
    }

    fn body(&self) -> &[u8] {
        self.0.body()
    }

    fn attempt(&self) -> u32 {
        self.0.attempt()
    }

    async fn ack(&self) -> Result<(), messaging::BrokerError> {
        Err(messaging::BrokerError::Nats(
            "the process died before the ack".into(),
        ))
    }

    async fn nak(&self, delay: Duration) -> Result<(), messaging::BrokerError> {
        self.0.nak(delay).await
    }

    async fn in_progress(&self) -> Result<(), messaging::BrokerError> {
        self.0.in_progress().await
    }
}

pub(super) async fn a_crash_between_commit_and_ack_loses_and_duplicates_nothing(backend: Backend) {
    let rig = Rig::new(backend).await;
    let labels: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    rig.stage(
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| store_event(&format!("k{}", i % 3), l))
            .collect(),
    )
    .await;
    rig.relay();
    published(&rig).await;
    // Redelivered soon after the crash: unacknowledged for the handler timeout plus 5 s.
    let quick = || {
        subscription("shop-crash").retry(RetryPolicy {
            handler_timeout: Duration::from_millis(200),
            ..RetryPolicy::default()
        })
    };
    let first = Recorder::default();
    let stop = rig.stop.child_token();
    let dying = tokio::spawn(messaging::subscription::run(
        rig.db().clone(),
        Arc::new(AcksLost(rig.broker())),
        quick(),
        Arc::new(first.clone()),
        stop.clone(),
    ));
    eventually("the batches commit", || async {
        rig.effects().await.len() == labels.len()
    })
    .await;
    stop.cancel();
    dying.await.unwrap();
    assert_eq!(
        rig.broker().lag("shop-crash").await.unwrap(),
        Some(labels.len() as u64),
        "committed, and never acknowledged"
    );

    let second = Recorder::default();
    rig.subscribe(quick(), second.clone());
    eventually("the redeliveries are acknowledged", || async {
        rig.broker().lag("shop-crash").await.unwrap() == Some(0)
    })
    .await;
    assert_eq!(
        rig.sorted_labels().await,
        labels,
        "nothing lost, nothing doubled"
    );
    assert!(
        second.attempts.lock().unwrap().is_empty(),
        "the redeliveries found their inbox rows and never reached the handler"
    );
}
