//! The messaging contract, on SQLite + the embedded broker and on PostgreSQL + JetStream:
//! nothing lost, nothing applied twice, failures retried or dead-lettered, order kept.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use db::{AssertSqlSafe, Backend, Db, Row as _};
use messaging::{
    Broker, CommandError, CommandHandler, Handler, HandlerError, Incoming, Message, Outbox,
    Outgoing, RelayConfig, Reply, RetryPolicy, Subscription, dlq, testing::TestBroker,
};
use proto::stores::{
    STORE_AGGREGATE_CHANNEL, STORE_CREATED_EVENT, STORE_REBRANDED_EVENT, StoreCreated,
};
use tokio_util::sync::CancellationToken;

#[path = "conformance/batches.rs"]
mod batches;
#[path = "conformance/leases.rs"]
mod leases;
#[path = "conformance/replicas.rs"]
mod replicas;

use batches::{
    a_crash_between_commit_and_ack_loses_and_duplicates_nothing,
    a_poisoned_message_sinks_only_itself_in_its_batch,
    aggregates_are_handled_side_by_side_each_in_order,
    an_idempotent_consumer_is_handed_its_batch_whole,
    an_idempotent_consumer_keeps_no_inbox_and_still_sets_a_poison_apart,
};

use leases::{
    a_consumer_made_by_an_older_version_takes_the_new_ack_wait,
    a_delivery_held_past_its_ack_wait_stays_until_its_holder_dies,
    a_restarted_process_takes_back_its_deliveries_at_once,
};

use replicas::{
    a_replica_paused_past_its_lease_commits_nothing_it_no_longer_owns,
    a_replica_restarted_in_place_holds_its_parts_at_once,
    replicas_share_a_consumer_each_aggregate_in_order_one_at_a_time,
};

db::backend_tests!(
    a_replica_restarted_in_place_holds_its_parts_at_once,
    replicas_share_a_consumer_each_aggregate_in_order_one_at_a_time,
    a_replica_paused_past_its_lease_commits_nothing_it_no_longer_owns,
    a_delivery_held_past_its_ack_wait_stays_until_its_holder_dies,
    a_restarted_process_takes_back_its_deliveries_at_once,
    a_consumer_made_by_an_older_version_takes_the_new_ack_wait,
    a_poisoned_message_sinks_only_itself_in_its_batch,
    aggregates_are_handled_side_by_side_each_in_order,
    an_idempotent_consumer_keeps_no_inbox_and_still_sets_a_poison_apart,
    an_idempotent_consumer_is_handed_its_batch_whole,
    a_crash_between_commit_and_ack_loses_and_duplicates_nothing,
    published_messages_reach_the_handler,
    delivery_survives_a_consumer_restart,
    a_message_delivered_twice_has_one_effect,
    a_relay_stopped_between_publish_and_mark_loses_nothing,
    a_transient_failure_is_retried_after_the_backoff,
    a_panicking_handler_is_retried_and_the_others_flow,
    a_poison_message_is_dead_lettered_while_others_flow,
    messages_of_one_aggregate_stay_in_order,
    a_permanent_failure_is_dead_lettered_at_once,
    undecodable_bytes_are_dead_lettered,
    names_the_subscription_does_not_handle_are_skipped,
    a_replayed_dead_letter_takes_effect_once,
    a_command_is_answered_with_the_books_headers,
    a_failed_command_replies_failure_and_rolls_back_its_writes,
    an_infrastructure_error_in_a_command_is_retried_not_failed,
    a_command_without_a_reply_channel_is_dead_lettered,
    rows_wait_while_the_broker_is_down,
    a_consumers_lag_counts_what_it_has_not_acknowledged,
    a_rewound_consumer_rebuilds_its_model_from_the_stream,
    a_consumer_with_side_effects_refuses_a_rewind,
);

const SCHEMA: &str = "shop";

const EFFECTS: db::Migrations = db::Migrations {
    component: "test-effects",
    steps: &[db::Migration {
        version: 1,
        description: "effects",
        sql: "CREATE TABLE {schema}.effects (position {serial}, msg_id TEXT NOT NULL, store_id TEXT NOT NULL, label TEXT NOT NULL)",
    }],
};

struct Rig {
    test: db::testing::TestDb,
    broker: Arc<dyn Broker>,
    _stream: Option<TestBroker>,
    outbox: Outbox,
    stop: CancellationToken,
}

async fn fresh_db(backend: Backend) -> db::testing::TestDb {
    let test = db::testing::fresh(backend, &[SCHEMA, messaging::embedded::SCHEMA]).await;
    test.db
        .migrate(SCHEMA, &messaging::MIGRATIONS)
        .await
        .unwrap();
    test.db.migrate(SCHEMA, &EFFECTS).await.unwrap();
    test
}

impl Rig {
    async fn new(backend: Backend) -> Rig {
        let test = fresh_db(backend).await;
        let stream = messaging::testing::broker(backend, &test.db).await;
        let broker = stream.broker.clone();
        Rig {
            test,
            broker,
            _stream: Some(stream),
            outbox: Outbox::new(SCHEMA),
            stop: CancellationToken::new(),
        }
    }

    fn with_broker(test: db::testing::TestDb, broker: Arc<dyn Broker>) -> Rig {
        Rig {
            test,
            broker,
            _stream: None,
            outbox: Outbox::new(SCHEMA),
            stop: CancellationToken::new(),
        }
    }

    fn db(&self) -> &Db {
        &self.test.db
    }

    fn broker(&self) -> Arc<dyn Broker> {
        self.broker.clone()
    }

    async fn stage(&self, messages: Vec<Message>) {
        let mut tx = self.db().begin().await.unwrap();
        self.outbox.stage(&mut tx, messages).await.unwrap();
        tx.commit().await.unwrap();
    }

    fn relay(&self) {
        self.relay_to(self.broker());
    }

    fn relay_to(&self, broker: Arc<dyn Broker>) {
        let config = RelayConfig {
            poll: Duration::from_millis(200),
            ..RelayConfig::default()
        };
        tokio::spawn(messaging::outbox::relay(
            self.db().clone(),
            self.outbox.clone(),
            broker,
            config,
            self.stop.clone(),
        ));
    }

    /// Runs a subscription until the returned token is cancelled (or the rig stops).
    fn subscribe(
        &self,
        subscription: Subscription,
        handler: impl Handler,
    ) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let stop = self.stop.child_token();
        let task = tokio::spawn(messaging::subscription::run(
            self.db().clone(),
            self.broker(),
            subscription,
            Arc::new(handler),
            stop.clone(),
        ));
        (stop, task)
    }

    async fn effects(&self) -> Vec<(String, String, String)> {
        sqlx::query("SELECT msg_id, store_id, label FROM shop.effects ORDER BY position")
            .fetch_all(self.db().pool())
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect()
    }

    async fn labels(&self) -> Vec<String> {
        self.effects()
            .await
            .into_iter()
            .map(|(_, _, label)| label)
            .collect()
    }

    /// The labels handled, sorted: messages about different aggregates are handled
    /// concurrently, in no particular order between them.
    async fn sorted_labels(&self) -> Vec<String> {
        let mut labels = self.labels().await;
        labels.sort();
        labels
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query(AssertSqlSafe(sql.to_owned()))
            .fetch_one(self.db().pool())
            .await
            .unwrap()
            .get(0)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Publishes `stream` straight to the broker, each message under the broker id beside it, in
/// chunks of 100.
async fn publish_raw(rig: &Rig, stream: &[(String, Message)]) {
    let bodies: Vec<(&str, Vec<u8>)> = stream
        .iter()
        .map(|(id, m)| (id.as_str(), m.envelope.encode()))
        .collect();
    for chunk in bodies.chunks(100) {
        let outgoing: Vec<Outgoing<'_>> = chunk
            .iter()
            .map(|(id, body)| Outgoing {
                subject: STORE_AGGREGATE_CHANNEL,
                id,
                body,
            })
            .collect();
        rig.broker().publish(&outgoing).await.unwrap();
    }
}

fn store_event(key: &str, label: &str) -> Message {
    let event = StoreCreated {
        id: key.into(),
        name: label.into(),
        location: String::new(),
    };
    Message::new(STORE_AGGREGATE_CHANNEL, STORE_CREATED_EVENT, &event).about(key)
}

fn subscription(consumer: &str) -> Subscription {
    Subscription::new(SCHEMA, consumer, STORE_AGGREGATE_CHANNEL)
        .accept(&[STORE_CREATED_EVENT])
        .retry(RetryPolicy {
            max_attempts: 4,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            handler_timeout: Duration::from_secs(10),
        })
}

/// Polls `check` until it holds, for at most 20 s.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Records each StoreCreated in `shop.effects`; fails as told.
#[derive(Clone, Default)]
struct Recorder {
    /// Labels that fail transiently this many more times.
    flaky: Arc<Mutex<HashMap<String, u32>>>,
    /// Labels that always fail transiently.
    poisoned: Arc<Mutex<HashSet<String>>>,
    /// Labels whose handler panics this many more times.
    panicking: Arc<Mutex<HashMap<String, u32>>>,
    /// Labels that fail permanently.
    rejected: Arc<Mutex<HashSet<String>>>,
    /// Every attempt: label and when.
    attempts: Arc<Mutex<Vec<(String, Instant)>>>,
    /// Pause per message, to stop a consumer mid-stream.
    pause: Duration,
    /// Whether its effects can be emptied for a rewind.
    rebuildable: bool,
    /// The size of each batch handed over whole ([`Handler::handle_batch`]).
    batches: Arc<Mutex<Vec<usize>>>,
    /// Handlers running now, and the most that ever ran at once.
    running: Arc<(
        std::sync::atomic::AtomicUsize,
        std::sync::atomic::AtomicUsize,
    )>,
}

impl Recorder {
    fn attempts_of(&self, label: &str) -> Vec<Instant> {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|(l, _)| l == label)
            .map(|(_, at)| *at)
            .collect()
    }
}

#[async_trait]
impl Handler for Recorder {
    async fn reset(&self, tx: &mut db::Conn, _consumer: &str) -> Result<bool, HandlerError> {
        if self.rebuildable {
            sqlx::query("DELETE FROM shop.effects")
                .execute(&mut *tx)
                .await?;
        }
        Ok(self.rebuildable)
    }

    async fn handle_batch(
        &self,
        tx: &mut db::Conn,
        messages: &[&Incoming],
    ) -> Result<(), HandlerError> {
        self.batches.lock().unwrap().push(messages.len());
        for message in messages {
            self.handle(tx, message).await?;
        }
        Ok(())
    }

    async fn handle(&self, tx: &mut db::Conn, message: &Incoming) -> Result<(), HandlerError> {
        let event: StoreCreated = message.decode()?;
        self.attempts
            .lock()
            .unwrap()
            .push((event.name.clone(), Instant::now()));
        let (running, most) = &*self.running;
        let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(self.pause).await;
        running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        let panics = self
            .panicking
            .lock()
            .unwrap()
            .get_mut(&event.name)
            .is_some_and(|left| {
                let panics = *left > 0;
                *left = left.saturating_sub(1);
                panics
            });
        assert!(!panics, "{} makes the handler panic", event.name);
        if self.poisoned.lock().unwrap().contains(&event.name) {
            return Err(HandlerError::Transient(anyhow::anyhow!(
                "{} is poisoned",
                event.name
            )));
        }
        if self.rejected.lock().unwrap().contains(&event.name) {
            return Err(HandlerError::Permanent(anyhow::anyhow!(
                "{} can never work",
                event.name
            )));
        }
        if let Some(left) = self.flaky.lock().unwrap().get_mut(&event.name)
            && *left > 0
        {
            *left -= 1;
            return Err(HandlerError::Transient(anyhow::anyhow!(
                "{} is flaky",
                event.name
            )));
        }
        sqlx::query("INSERT INTO shop.effects (msg_id, store_id, label) VALUES ($1, $2, $3)")
            .bind(message.id())
            .bind(&event.id)
            .bind(&event.name)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

async fn published_messages_reach_the_handler(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.relay();
    rig.subscribe(subscription("shop-stores"), Recorder::default());
    let message = store_event("s1", "first");
    let id = message.id().to_owned();
    rig.stage(vec![message]).await;
    eventually("the message is handled", || async {
        !rig.effects().await.is_empty()
    })
    .await;
    assert_eq!(
        rig.effects().await,
        [(id, "s1".to_owned(), "first".to_owned())]
    );
    eventually("the outbox row is marked", || async {
        rig.count("SELECT COUNT(*) FROM shop.outbox WHERE published_at IS NULL")
            .await
            == 0
    })
    .await;
}

async fn delivery_survives_a_consumer_restart(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.relay();
    let labels: Vec<String> = (0..20).map(|i| format!("m{i:02}")).collect();
    rig.stage(
        labels
            .iter()
            .map(|l| store_event(&format!("key-{l}"), l))
            .collect(),
    )
    .await;
    let slow = Recorder {
        pause: Duration::from_millis(30),
        ..Recorder::default()
    };
    // Small batches, one lane: a stop lands mid-stream.
    let (stop, task) = rig.subscribe(subscription("shop-stores").parallel(1, 2), slow);
    eventually("some are handled", || async {
        rig.effects().await.len() >= 5
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    let handled_before = rig.effects().await.len();
    assert!(
        handled_before < 20,
        "the consumer was meant to stop mid-stream"
    );

    rig.subscribe(subscription("shop-stores"), Recorder::default());
    eventually("all are handled", || async {
        rig.effects().await.len() >= 20
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rig.sorted_labels().await,
        labels,
        "every message once, none twice"
    );
}

async fn a_message_delivered_twice_has_one_effect(backend: Backend) {
    let rig = Rig::new(backend).await;
    let recorder = Recorder::default();
    rig.subscribe(subscription("shop-stores"), recorder.clone());
    let twice = store_event("s1", "twice");
    let body = twice.envelope.encode();
    // Two broker messages (different de-duplication ids) carrying the same MallBots message.
    for broker_id in ["copy-1", "copy-2"] {
        let outgoing = Outgoing {
            subject: STORE_AGGREGATE_CHANNEL,
            id: broker_id,
            body: &body,
        };
        rig.broker().publish(&[outgoing]).await.unwrap();
    }
    rig.broker()
        .publish(&[Outgoing {
            subject: STORE_AGGREGATE_CHANNEL,
            id: "after",
            body: &store_event("s1", "after").envelope.encode(),
        }])
        .await
        .unwrap();
    eventually("the later message is handled", || async {
        rig.labels().await.contains(&"after".to_owned())
    })
    .await;
    assert_eq!(rig.labels().await, ["twice", "after"]);
    assert_eq!(
        recorder.attempts_of("twice").len(),
        1,
        "the duplicate never reached the handler"
    );
}

async fn a_relay_stopped_between_publish_and_mark_loses_nothing(backend: Backend) {
    let rig = Rig::new(backend).await;
    let messages: Vec<Message> = (0..3)
        .map(|i| store_event(&format!("s{i}"), &format!("m{i}")))
        .collect();
    rig.stage(messages.clone()).await;
    // What a relay that died after publishing, before marking, leaves behind.
    let bodies: Vec<Vec<u8>> = messages.iter().map(|m| m.envelope.encode()).collect();
    let outgoing: Vec<Outgoing<'_>> = messages
        .iter()
        .zip(&bodies)
        .map(|(m, body)| Outgoing {
            subject: &m.subject,
            id: m.id(),
            body,
        })
        .collect();
    rig.broker().publish(&outgoing).await.unwrap();
    assert_eq!(
        rig.count("SELECT COUNT(*) FROM shop.outbox WHERE published_at IS NULL")
            .await,
        3
    );

    rig.subscribe(subscription("shop-stores"), Recorder::default());
    rig.relay();
    eventually("the relay marks the rows", || async {
        rig.count("SELECT COUNT(*) FROM shop.outbox WHERE published_at IS NULL")
            .await
            == 0
    })
    .await;
    eventually("all are handled", || async {
        rig.effects().await.len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.sorted_labels().await, ["m0", "m1", "m2"]);
}

async fn a_transient_failure_is_retried_after_the_backoff(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.relay();
    let recorder = Recorder::default();
    recorder.flaky.lock().unwrap().insert("flaky".into(), 1);
    let policy = RetryPolicy {
        min_backoff: Duration::from_millis(300),
        ..subscription("x").retry
    };
    rig.subscribe(subscription("shop-stores").retry(policy), recorder.clone());
    rig.stage(vec![store_event("s1", "flaky")]).await;
    eventually("the retry succeeds", || async {
        !rig.effects().await.is_empty()
    })
    .await;
    let attempts = recorder.attempts_of("flaky");
    assert_eq!(attempts.len(), 2);
    let waited = attempts[1] - attempts[0];
    assert!(
        waited >= Duration::from_millis(300),
        "retried after {waited:?}, before the 300 ms back-off"
    );
    assert_eq!(rig.labels().await, ["flaky"]);
}

async fn a_panicking_handler_is_retried_and_the_others_flow(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.relay();
    let recorder = Recorder::default();
    recorder.panicking.lock().unwrap().insert("boom".into(), 2);
    rig.subscribe(subscription("shop-stores"), recorder.clone());
    let mut messages = vec![store_event("b", "boom")];
    messages.extend((0..3).map(|i| store_event(&format!("k{i}"), &format!("ok{i}"))));
    rig.stage(messages).await;
    eventually(
        "every message is handled, the panicking one on its third try",
        || async { rig.effects().await.len() == 4 },
    )
    .await;
    assert_eq!(recorder.attempts_of("boom").len(), 3);
}

async fn a_poison_message_is_dead_lettered_while_others_flow(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.relay();
    let recorder = Recorder::default();
    recorder.poisoned.lock().unwrap().insert("poison".into());
    rig.subscribe(subscription("shop-stores"), recorder.clone());
    let mut messages = vec![store_event("p", "poison")];
    messages.extend((0..5).map(|i| store_event(&format!("k{i}"), &format!("ok{i}"))));
    rig.stage(messages).await;

    eventually("the others are handled", || async {
        rig.effects().await.len() == 5
    })
    .await;
    assert!(
        recorder.attempts_of("poison").len() < 4,
        "the others did not wait for the poison's retries"
    );
    eventually("the poison is dead-lettered", || async {
        rig.count("SELECT COUNT(*) FROM shop.dead_letters").await == 1
    })
    .await;
    let dead = dlq::list(rig.db(), SCHEMA).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (
            dead[0].consumer.as_str(),
            dead[0].name.as_str(),
            dead[0].attempts
        ),
        ("shop-stores", STORE_CREATED_EVENT, 4)
    );
    assert!(
        dead[0].error.contains("poison is poisoned"),
        "{}",
        dead[0].error
    );
    assert_eq!(recorder.attempts_of("poison").len(), 4);
    assert!(!rig.labels().await.contains(&"poison".to_owned()));
}

async fn messages_of_one_aggregate_stay_in_order(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.relay();
    let recorder = Recorder::default();
    recorder.flaky.lock().unwrap().insert("a2".into(), 2);
    rig.subscribe(subscription("shop-stores"), recorder);
    let mut messages: Vec<Message> = (1..=5)
        .map(|i| store_event("a", &format!("a{i}")))
        .collect();
    messages.extend((1..=3).map(|i| store_event("b", &format!("b{i}"))));
    rig.stage(messages).await;
    eventually("all are handled", || async {
        rig.effects().await.len() == 8
    })
    .await;
    let labels = rig.labels().await;
    let of = |prefix: &str| {
        labels
            .iter()
            .filter(|l| l.starts_with(prefix))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(of("a"), ["a1", "a2", "a3", "a4", "a5"]);
    assert_eq!(of("b"), ["b1", "b2", "b3"]);
    // b did not wait for a2's retries.
    let b3 = labels.iter().position(|l| l == "b3").unwrap();
    let a2 = labels.iter().position(|l| l == "a2").unwrap();
    assert!(b3 < a2, "{labels:?}");
}

async fn a_permanent_failure_is_dead_lettered_at_once(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.relay();
    let recorder = Recorder::default();
    recorder.rejected.lock().unwrap().insert("never".into());
    rig.subscribe(subscription("shop-stores"), recorder.clone());
    rig.stage(vec![store_event("s1", "never"), store_event("s2", "fine")])
        .await;
    eventually("the next one is handled", || async {
        rig.labels().await == ["fine"]
    })
    .await;
    eventually("it is dead-lettered", || async {
        rig.count("SELECT COUNT(*) FROM shop.dead_letters").await == 1
    })
    .await;
    assert_eq!(dlq::list(rig.db(), SCHEMA).await.unwrap()[0].attempts, 1);
    assert_eq!(recorder.attempts_of("never").len(), 1);
}

async fn undecodable_bytes_are_dead_lettered(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.subscribe(subscription("shop-stores"), Recorder::default());
    let garbage = Outgoing {
        subject: STORE_AGGREGATE_CHANNEL,
        id: "garbage",
        body: b"\xff\xff not protobuf",
    };
    rig.broker().publish(&[garbage]).await.unwrap();
    let after = store_event("s1", "after").envelope.encode();
    rig.broker()
        .publish(&[Outgoing {
            subject: STORE_AGGREGATE_CHANNEL,
            id: "after",
            body: &after,
        }])
        .await
        .unwrap();
    eventually("the next one is handled", || async {
        rig.labels().await == ["after"]
    })
    .await;
    eventually("the garbage is dead-lettered", || async {
        rig.count("SELECT COUNT(*) FROM shop.dead_letters").await == 1
    })
    .await;
    let dead = &dlq::list(rig.db(), SCHEMA).await.unwrap()[0];
    assert!(dead.error.contains("StreamMessage"), "{}", dead.error);
    assert_eq!(dead.body, b"\xff\xff not protobuf");
}

async fn names_the_subscription_does_not_handle_are_skipped(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.relay();
    let recorder = Recorder::default();
    rig.subscribe(subscription("shop-stores"), recorder.clone());
    let rebranded = proto::stores::StoreRebranded {
        id: "s1".into(),
        name: "other".into(),
    };
    let unknown = Message::new(
        STORE_AGGREGATE_CHANNEL,
        "storesapi.SomethingNew",
        &rebranded,
    );
    rig.stage(vec![
        Message::new(STORE_AGGREGATE_CHANNEL, STORE_REBRANDED_EVENT, &rebranded),
        unknown,
        store_event("s1", "handled"),
    ])
    .await;
    eventually("the accepted one is handled", || async {
        rig.labels().await == ["handled"]
    })
    .await;
    assert_eq!(recorder.attempts.lock().unwrap().len(), 1);
    assert_eq!(rig.count("SELECT COUNT(*) FROM shop.dead_letters").await, 0);
    // The skipped ones are acknowledged too (together, on the embedded log), not redelivered.
    eventually("nothing is left unacknowledged", || async {
        rig.broker().lag("shop-stores").await.unwrap() == Some(0)
    })
    .await;
}

async fn a_replayed_dead_letter_takes_effect_once(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.relay();
    let recorder = Recorder::default();
    recorder.rejected.lock().unwrap().insert("bug".into());
    recorder.rejected.lock().unwrap().insert("junk".into());
    rig.subscribe(subscription("shop-stores"), recorder.clone());
    let message = store_event("s1", "bug");
    let id = message.id().to_owned();
    let junk = store_event("s2", "junk");
    let junk_id = junk.id().to_owned();
    rig.stage(vec![message, junk]).await;
    eventually("both are dead-lettered", || async {
        rig.count("SELECT COUNT(*) FROM shop.dead_letters").await == 2
    })
    .await;
    // The junk is thrown away for good.
    assert!(
        dlq::discard(rig.db(), SCHEMA, "shop-stores", &junk_id)
            .await
            .unwrap()
    );
    assert!(
        !dlq::discard(rig.db(), SCHEMA, "shop-stores", &junk_id)
            .await
            .unwrap()
    );
    assert!(
        dlq::show(rig.db(), SCHEMA, "shop-stores", &junk_id)
            .await
            .unwrap()
            .is_none()
    );

    // The bug is fixed; the operator replays.
    recorder.rejected.lock().unwrap().remove("bug");
    assert!(
        dlq::show(rig.db(), SCHEMA, "shop-stores", &id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        dlq::replay(rig.db(), SCHEMA, "shop-stores", &id)
            .await
            .unwrap()
    );
    eventually("the replay takes effect", || async {
        rig.labels().await.contains(&"bug".to_owned())
    })
    .await;
    eventually("the dead letter is gone", || async {
        rig.count("SELECT COUNT(*) FROM shop.dead_letters").await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        rig.labels().await,
        ["bug"],
        "once, and the discarded one never"
    );
    assert!(
        !dlq::replay(rig.db(), SCHEMA, "shop-stores", &id)
            .await
            .unwrap(),
        "nothing left to replay"
    );
}

/// A command handler that writes a row, then answers as the label of the command says.
#[derive(Clone, Default)]
struct Clerk {
    transient_left: Arc<Mutex<u32>>,
}

#[async_trait]
impl CommandHandler for Clerk {
    async fn handle(&self, tx: &mut db::Conn, command: &Incoming) -> Result<Reply, CommandError> {
        let request: StoreCreated = command.decode()?;
        sqlx::query("INSERT INTO shop.effects (msg_id, store_id, label) VALUES ($1, $2, $3)")
            .bind(command.id())
            .bind(&request.id)
            .bind(&request.name)
            .execute(&mut *tx)
            .await?;
        match request.name.as_str() {
            "refuse" => Err(CommandError::failed("not today")),
            "shaky" if *self.transient_left.lock().unwrap() > 0 => {
                *self.transient_left.lock().unwrap() -= 1;
                Err(CommandError::Handler(HandlerError::Transient(
                    anyhow::anyhow!("database hiccup"),
                )))
            }
            "created" => Ok(Reply::new(
                proto::depot::CREATED_SHOPPING_LIST_REPLY,
                &proto::depot::CreatedShoppingList {
                    id: "list-1".into(),
                },
            )),
            _ => Ok(Reply::success()),
        }
    }
}

const COMMANDS: &str = "mallbots.shop.commands";

fn command(label: &str) -> Message {
    let request = StoreCreated {
        id: "s1".into(),
        name: label.into(),
        location: String::new(),
    };
    Message::new(COMMANDS, "shopapi.DoSomething", &request)
        .with_metadata(
            "COMMAND_REPLY_CHANNEL",
            proto::cosec::CREATE_ORDER_REPLY_CHANNEL,
        )
        .with_metadata("COMMAND_SAGA_ID", "saga-1")
        .with_metadata("COMMAND_SAGA_NAME", "cosec.CreateOrder")
        .with_metadata(
            "traceparent",
            "00-8473db0e2ce57e2b6c0db384f465261b-ced5c806f273b772-01",
        )
}

fn command_subscription() -> Subscription {
    Subscription::new(SCHEMA, "shop-commands", COMMANDS).retry(RetryPolicy {
        max_attempts: 4,
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        handler_timeout: Duration::from_secs(10),
    })
}

/// The replies staged in the outbox, decoded.
async fn replies(rig: &Rig) -> Vec<messaging::Envelope> {
    sqlx::query("SELECT body FROM shop.outbox WHERE subject = $1 ORDER BY seq")
        .bind(proto::cosec::CREATE_ORDER_REPLY_CHANNEL)
        .fetch_all(rig.db().pool())
        .await
        .unwrap()
        .iter()
        .map(|row| messaging::Envelope::decode(&row.get::<Vec<u8>, _>(0)).unwrap())
        .collect()
}

async fn send_command(rig: &Rig, message: Message) {
    let body = message.envelope.encode();
    rig.broker()
        .publish(&[Outgoing {
            subject: COMMANDS,
            id: message.id(),
            body: &body,
        }])
        .await
        .unwrap();
}

async fn a_command_is_answered_with_the_books_headers(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.subscribe(
        command_subscription(),
        messaging::replying(rig.outbox.clone(), Clerk::default()),
    );
    send_command(&rig, command("created")).await;
    eventually("a reply is staged", || async {
        replies(&rig).await.len() == 1
    })
    .await;
    let reply = &replies(&rig).await[0];
    assert_eq!(reply.name, proto::depot::CREATED_SHOPPING_LIST_REPLY);
    let expected: messaging::Metadata = [
        ("REPLY_OUTCOME", "SUCCESS"),
        (
            "REPLY_REPLY_CHANNEL",
            proto::cosec::CREATE_ORDER_REPLY_CHANNEL,
        ),
        ("REPLY_SAGA_ID", "saga-1"),
        ("REPLY_SAGA_NAME", "cosec.CreateOrder"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(reply.metadata, expected);
    let payload =
        <proto::depot::CreatedShoppingList as prost::Message>::decode(reply.payload.as_slice())
            .unwrap();
    assert_eq!(payload.id, "list-1");
    assert_eq!(rig.labels().await, ["created"]);
}

async fn a_failed_command_replies_failure_and_rolls_back_its_writes(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.subscribe(
        command_subscription(),
        messaging::replying(rig.outbox.clone(), Clerk::default()),
    );
    send_command(&rig, command("refuse")).await;
    eventually("a reply is staged", || async {
        replies(&rig).await.len() == 1
    })
    .await;
    let reply = &replies(&rig).await[0];
    assert_eq!(
        (
            reply.name.as_str(),
            reply.metadata["REPLY_OUTCOME"].as_str()
        ),
        ("am.Failure", "FAILURE")
    );
    assert!(reply.payload.is_empty());
    assert!(
        rig.labels().await.is_empty(),
        "the handler's own write was rolled back"
    );
    assert_eq!(
        rig.count("SELECT COUNT(*) FROM shop.inbox").await,
        1,
        "the command itself is consumed"
    );
}

async fn an_infrastructure_error_in_a_command_is_retried_not_failed(backend: Backend) {
    let rig = Rig::new(backend).await;
    let clerk = Clerk {
        transient_left: Arc::new(Mutex::new(2)),
    };
    rig.subscribe(
        command_subscription(),
        messaging::replying(rig.outbox.clone(), clerk),
    );
    send_command(&rig, command("shaky")).await;
    eventually("a reply is staged", || async {
        replies(&rig).await.len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let replies = replies(&rig).await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].metadata["REPLY_OUTCOME"], "SUCCESS");
    assert_eq!(rig.labels().await, ["shaky"]);
}

async fn a_command_without_a_reply_channel_is_dead_lettered(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.subscribe(
        command_subscription(),
        messaging::replying(rig.outbox.clone(), Clerk::default()),
    );
    let mut orphan = command("orphan");
    orphan.envelope.metadata.remove("COMMAND_REPLY_CHANNEL");
    send_command(&rig, orphan).await;
    send_command(&rig, command("next")).await;
    eventually("the next command is answered", || async {
        replies(&rig).await.len() == 1
    })
    .await;
    eventually("the orphan is dead-lettered", || async {
        rig.count("SELECT COUNT(*) FROM shop.dead_letters").await == 1
    })
    .await;
    let dead = &dlq::list(rig.db(), SCHEMA).await.unwrap()[0];
    assert!(
        dead.error.contains("COMMAND_REPLY_CHANNEL"),
        "{}",
        dead.error
    );
    assert_eq!(rig.labels().await, ["next"]);
}

/// The embedded broker with an off switch: the port's double for "the broker is down".
struct Switchable {
    inner: messaging::Embedded,
    down: std::sync::atomic::AtomicBool,
}

impl Switchable {
    fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl Broker for Switchable {
    async fn publish(&self, messages: &[Outgoing<'_>]) -> Result<(), messaging::PublishError> {
        if self.is_down() {
            return Err(messaging::PublishError {
                stored: 0,
                source: messaging::BrokerError::Nats("connection refused".into()),
            });
        }
        self.inner.publish(messages).await
    }

    async fn consumer(
        &self,
        spec: &messaging::ConsumerSpec,
    ) -> Result<Box<dyn messaging::Consumer>, messaging::BrokerError> {
        self.inner.consumer(spec).await
    }

    async fn check(&self) -> Result<(), String> {
        if self.is_down() {
            Err("down".into())
        } else {
            self.inner.check().await
        }
    }

    async fn lag(&self, durable: &str) -> Result<Option<u64>, messaging::BrokerError> {
        self.inner.lag(durable).await
    }

    async fn rewind(&self, durable: &str) -> Result<(), messaging::BrokerError> {
        self.inner.rewind(durable).await
    }

    async fn take_over(
        &self,
        spec: &messaging::ConsumerSpec,
    ) -> Result<(), messaging::BrokerError> {
        self.inner.take_over(spec).await
    }
}

async fn rows_wait_while_the_broker_is_down(backend: Backend) {
    let test = fresh_db(backend).await;
    let mut nats = None;
    let (broker, switch): (Arc<dyn Broker>, Arc<Switchable>) = match backend {
        Backend::Sqlite => {
            test.db
                .migrate(
                    messaging::embedded::SCHEMA,
                    &messaging::embedded::MIGRATIONS,
                )
                .await
                .unwrap();
            let switch = Arc::new(Switchable {
                inner: messaging::Embedded::new(test.db.clone(), "mallbots"),
                down: false.into(),
            });
            (switch.clone(), switch)
        }
        Backend::Postgres => {
            let server = messaging::testing::NatsServer::start();
            let jetstream = messaging::testing::jetstream(&server.url()).await;
            nats = Some(server);
            let unused = Arc::new(Switchable {
                inner: messaging::Embedded::new(test.db.clone(), "unused"),
                down: false.into(),
            });
            (Arc::new(jetstream), unused)
        }
    };
    let set_down = |down: bool| {
        switch.down.store(down, std::sync::atomic::Ordering::SeqCst);
    };
    let rig = Rig::with_broker(test, broker.clone());
    rig.relay();
    rig.subscribe(subscription("shop-stores"), Recorder::default());
    rig.stage(vec![store_event("s1", "before")]).await;
    eventually("the first is handled", || async {
        rig.labels().await == ["before"]
    })
    .await;

    set_down(true);
    if let Some(server) = nats.as_mut() {
        server.stop();
    }
    eventually("the broker reports not ready", || async {
        broker.check().await.is_err()
    })
    .await;
    let during = vec![store_event("s2", "during-1"), store_event("s3", "during-2")];
    let waiting = format!(
        "SELECT COUNT(*) FROM shop.outbox WHERE published_at IS NULL AND id IN ('{}', '{}')",
        during[0].id(),
        during[1].id()
    );
    rig.stage(during).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rig.count(&waiting).await, 2, "rows wait in the outbox");
    assert_eq!(rig.labels().await, ["before"]);

    set_down(false);
    if let Some(server) = nats.as_mut() {
        server.resume();
    }
    eventually("the waiting rows go out", || async {
        rig.count("SELECT COUNT(*) FROM shop.outbox WHERE published_at IS NULL")
            .await
            == 0
    })
    .await;
    eventually("they are handled", || async {
        rig.effects().await.len() == 3
    })
    .await;
    assert_eq!(
        rig.sorted_labels().await,
        ["before", "during-1", "during-2"]
    );
    assert!(broker.check().await.is_ok());
}

/// Counts how often each message id is handed to the broker.
struct Counting {
    inner: Arc<dyn Broker>,
    published: Mutex<HashMap<String, u32>>,
}

#[async_trait]
impl Broker for Counting {
    async fn publish(&self, messages: &[Outgoing<'_>]) -> Result<(), messaging::PublishError> {
        for message in messages {
            *self
                .published
                .lock()
                .unwrap()
                .entry(message.id.to_owned())
                .or_default() += 1;
        }
        self.inner.publish(messages).await
    }

    async fn consumer(
        &self,
        spec: &messaging::ConsumerSpec,
    ) -> Result<Box<dyn messaging::Consumer>, messaging::BrokerError> {
        self.inner.consumer(spec).await
    }

    async fn check(&self) -> Result<(), String> {
        self.inner.check().await
    }

    async fn lag(&self, durable: &str) -> Result<Option<u64>, messaging::BrokerError> {
        self.inner.lag(durable).await
    }

    async fn rewind(&self, durable: &str) -> Result<(), messaging::BrokerError> {
        self.inner.rewind(durable).await
    }

    async fn take_over(
        &self,
        spec: &messaging::ConsumerSpec,
    ) -> Result<(), messaging::BrokerError> {
        self.inner.take_over(spec).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_relaying_one_postgres_outbox_publish_each_message_once() {
    if !db::testing::is_selected(Backend::Postgres) {
        return;
    }
    let rig = Rig::new(Backend::Postgres).await;
    let counting = Arc::new(Counting {
        inner: rig.broker(),
        published: Mutex::new(HashMap::new()),
    });
    // Three replicas of the same module, each with its own relay.
    for _ in 0..3 {
        rig.relay_to(counting.clone());
    }
    for batch in 0..10 {
        rig.stage(
            (0..20)
                .map(|i| store_event(&format!("s{batch}-{i}"), "x"))
                .collect(),
        )
        .await;
    }
    eventually("everything is published", || async {
        rig.count("SELECT COUNT(*) FROM shop.outbox WHERE published_at IS NULL")
            .await
            == 0
    })
    .await;
    let published = counting.published.lock().unwrap();
    assert_eq!(published.len(), 200);
    assert!(
        published.values().all(|times| *times == 1),
        "a message went out twice"
    );
}

#[tokio::test]
async fn configured_stream_limits_are_applied_to_an_existing_stream() {
    if !db::testing::is_selected(Backend::Postgres) {
        return;
    }
    let url = messaging::testing::nats_url();
    let stream = messaging::testing::unique_stream();
    let _guard = messaging::testing::StreamGuard::new(&url, &stream);
    let publish = |broker: messaging::JetStream| async move {
        let body = store_event("s1", "x").envelope.encode();
        broker
            .publish(&[Outgoing {
                subject: STORE_AGGREGATE_CHANNEL,
                id: &uuid(),
                body: &body,
            }])
            .await
            .unwrap();
    };
    let unlimited =
        messaging::JetStream::connect(&url, &stream, messaging::StreamLimits::default())
            .await
            .unwrap();
    publish(unlimited).await;
    let limits = messaging::StreamLimits {
        max_age: Duration::from_secs(3600),
        max_bytes: 1 << 30,
        ..messaging::StreamLimits::default()
    };
    let limited = messaging::JetStream::connect(&url, &stream, limits)
        .await
        .unwrap();
    publish(limited).await;

    let client = async_nats::connect(&url).await.unwrap();
    let mut info = async_nats::jetstream::new(client)
        .get_stream(&stream)
        .await
        .unwrap();
    let config = &info.info().await.unwrap().config;
    assert_eq!(
        (config.max_age, config.max_bytes),
        (Duration::from_secs(3600), 1 << 30)
    );
    assert_eq!(config.subjects, [format!("{stream}.>")]);
}

fn uuid() -> String {
    format!("{:x}", rand::random::<u128>())
}

async fn a_consumers_lag_counts_what_it_has_not_acknowledged(backend: Backend) {
    let rig = Rig::new(backend).await;
    assert_eq!(rig.broker().lag("lagging").await.unwrap(), None);
    let spec = messaging::ConsumerSpec {
        durable: "lagging".into(),
        subject: STORE_AGGREGATE_CHANNEL.into(),
        ack_wait: Duration::from_secs(30),
    };
    let mut consumer = rig.broker().consumer(&spec).await.unwrap();
    rig.stage((0..3).map(|n| store_event(&format!("s{n}"), "x")).collect())
        .await;
    rig.relay();
    eventually("three are behind", || async {
        rig.broker().lag("lagging").await.unwrap() == Some(3)
    })
    .await;
    let first = consumer.next().await.unwrap();
    // Delivered but not acknowledged: still behind.
    assert_eq!(rig.broker().lag("lagging").await.unwrap(), Some(3));
    first.ack().await.unwrap();
    eventually("two are behind", || async {
        rig.broker().lag("lagging").await.unwrap() == Some(2)
    })
    .await;
}

async fn a_rewound_consumer_rebuilds_its_model_from_the_stream(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.relay();
    let recorder = Recorder {
        rebuildable: true,
        ..Recorder::default()
    };
    rig.subscribe(subscription("shop-model"), recorder);
    rig.stage(
        (0..5)
            .map(|n| store_event(&format!("s{n}"), &format!("m{n}")))
            .collect(),
    )
    .await;
    eventually("all five are handled", || async {
        rig.effects().await.len() == 5
    })
    .await;
    let model = rig.effects().await;
    // Damage the model: one row lost, one wrong.
    sqlx::query("DELETE FROM shop.effects WHERE label = 'm1'")
        .execute(rig.db().pool())
        .await
        .unwrap();
    sqlx::query("UPDATE shop.effects SET store_id = 'wrong' WHERE label = 'm3'")
        .execute(rig.db().pool())
        .await
        .unwrap();

    messaging::rewind::request(rig.db(), SCHEMA, "shop-model")
        .await
        .unwrap();
    eventually("the rewind is done", || async {
        messaging::rewind::status(rig.db(), SCHEMA, "shop-model")
            .await
            .unwrap()
            .and_then(|status| status.outcome)
            .is_some()
    })
    .await;
    let status = messaging::rewind::status(rig.db(), SCHEMA, "shop-model")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.outcome.as_deref(), Some("rebuilt"));
    assert!(status.started_at.unwrap() <= status.done_at.unwrap());
    let (mut rebuilt, mut model) = (rig.effects().await, model);
    rebuilt.sort();
    model.sort();
    assert_eq!(rebuilt, model, "rebuilt, each once");

    // Live consumption goes on from where the rebuild ended.
    rig.stage(vec![store_event("s9", "m9")]).await;
    eventually("the next one is handled", || async {
        rig.effects().await.len() == 6
    })
    .await;
}

async fn a_consumer_with_side_effects_refuses_a_rewind(backend: Backend) {
    let rig = Rig::new(backend).await;
    rig.relay();
    rig.subscribe(subscription("shop-mailer"), Recorder::default());
    rig.stage(vec![store_event("s1", "once")]).await;
    eventually("it is handled", || async { rig.effects().await.len() == 1 }).await;

    messaging::rewind::request(rig.db(), SCHEMA, "shop-mailer")
        .await
        .unwrap();
    eventually("the rewind is answered", || async {
        messaging::rewind::status(rig.db(), SCHEMA, "shop-mailer")
            .await
            .unwrap()
            .and_then(|status| status.outcome)
            .is_some_and(|outcome| outcome.starts_with("refused"))
    })
    .await;
    // Nothing was handled again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.labels().await, ["once"]);
}
