//! The orchestrator on a real database, on both backends: persistence, headers, row-locked
//! replies, timeouts, parking; and once through a real broker with real command handlers.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use db::{Backend, Row as _};
use messaging::{
    CommandError, CommandHandler, Envelope, HandlerError, Incoming, Outbox, Reply as CommandReply,
    RetryPolicy, Subscription,
};
use tokio_util::sync::CancellationToken;

use crate::{
    Orchestrator, Status, Timing,
    tests::{Order, create_order},
};

db::backend_tests!(
    starting_stages_the_first_command_with_the_saga_headers,
    replies_drive_the_saga_to_completion,
    a_repeated_reply_is_ignored,
    a_step_that_times_out_compensates,
    a_failing_compensation_is_parked_where_operators_see_it,
    a_reply_for_an_unknown_saga_is_refused,
    the_saga_runs_end_to_end_over_the_broker,
);

const SCHEMA: &str = "cosec";

async fn setup(backend: Backend, timing: Timing) -> (db::testing::TestDb, Orchestrator<Order>) {
    let test = db::testing::fresh(backend, &[SCHEMA, messaging::embedded::SCHEMA]).await;
    test.db
        .migrate(SCHEMA, &messaging::MIGRATIONS)
        .await
        .unwrap();
    test.db.migrate(SCHEMA, &crate::MIGRATIONS).await.unwrap();
    let orchestrator = Orchestrator::new(
        create_order(),
        test.db.clone(),
        SCHEMA,
        Outbox::new(SCHEMA),
        timing,
    );
    (test, orchestrator)
}

fn fast() -> Timing {
    Timing {
        step_timeout: Duration::from_secs(60),
        retry_backoff: Duration::from_millis(10),
        sweep_every: Duration::from_millis(50),
    }
}

async fn start(test: &db::testing::TestDb, orchestrator: &Orchestrator<Order>, id: &str) -> bool {
    let mut tx = test.db.begin().await.unwrap();
    let started = orchestrator
        .start(
            &mut tx,
            id,
            Order {
                id: id.into(),
                list: String::new(),
            },
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    started
}

/// Every command staged so far, oldest first.
async fn sent(test: &db::testing::TestDb) -> Vec<Envelope> {
    sqlx::query("SELECT body FROM cosec.outbox ORDER BY seq")
        .fetch_all(test.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| Envelope::decode(&row.get::<Vec<u8>, _>(0)).unwrap())
        .collect()
}

async fn names(test: &db::testing::TestDb) -> Vec<String> {
    sent(test).await.into_iter().map(|e| e.name).collect()
}

/// The reply a contract-following handler would send to `command`.
fn reply_to(command: &Envelope, success: bool, name: &str, payload: Vec<u8>) -> Incoming {
    let mut metadata = messaging::Metadata::new();
    for (key, value) in &command.metadata {
        if let Some(rest) = key.strip_prefix("COMMAND_") {
            metadata.insert(format!("REPLY_{rest}"), value.clone());
        }
    }
    metadata.insert(
        "REPLY_OUTCOME".into(),
        if success { "SUCCESS" } else { "FAILURE" }.into(),
    );
    let now = chrono::Utc::now();
    let envelope = Envelope {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.into(),
        payload,
        occurred_at: now,
        metadata,
        sent_at: now,
    };
    Incoming {
        subject: "mallbots.test.replies".into(),
        envelope,
        attempt: 1,
    }
}

async fn answer_last(
    test: &db::testing::TestDb,
    orchestrator: &Orchestrator<Order>,
    success: bool,
) -> Result<(), HandlerError> {
    let last = sent(test).await.pop().unwrap();
    let (name, payload) = if last.name == "reserve" {
        (
            "reserved",
            prost::Message::encode_to_vec(&proto::depot::CreatedShoppingList {
                id: "list-9".into(),
            }),
        )
    } else {
        (
            if success { "am.Success" } else { "am.Failure" },
            Vec::new(),
        )
    };
    let mut tx = test.db.begin().await.unwrap();
    orchestrator
        .on_reply(&mut tx, &reply_to(&last, success, name, payload))
        .await?;
    tx.commit().await.unwrap();
    Ok(())
}

async fn starting_stages_the_first_command_with_the_saga_headers(backend: Backend) {
    let (test, orchestrator) = setup(backend, fast()).await;
    assert!(start(&test, &orchestrator, "o1").await);
    assert!(
        !start(&test, &orchestrator, "o1").await,
        "a saga starts once"
    );
    let commands = sent(&test).await;
    assert_eq!(commands.len(), 1);
    let metadata = &commands[0].metadata;
    assert_eq!(commands[0].name, "authorize");
    assert_eq!(metadata["COMMAND_REPLY_CHANNEL"], "mallbots.test.replies");
    assert_eq!(metadata["COMMAND_SAGA_ID"], "o1");
    assert_eq!(metadata["COMMAND_SAGA_NAME"], "test.CreateOrder");
    assert_eq!(metadata["COMMAND_SAGA_STEP"], "1");
    let record = orchestrator.find("o1").await.unwrap().unwrap();
    assert_eq!(
        (record.instance.step, record.instance.status),
        (1, Status::Running)
    );
    assert!(record.deadline.is_some());
}

async fn replies_drive_the_saga_to_completion(backend: Backend) {
    let (test, orchestrator) = setup(backend, fast()).await;
    start(&test, &orchestrator, "o1").await;
    for _ in 0..4 {
        answer_last(&test, &orchestrator, true).await.unwrap();
    }
    assert_eq!(
        names(&test).await,
        ["authorize", "reserve", "charge", "approve"]
    );
    let record = orchestrator.find("o1").await.unwrap().unwrap();
    assert_eq!(record.instance.status, Status::Completed);
    assert_eq!(
        record.instance.data.list, "list-9",
        "the reservation's reply was kept"
    );
    assert_eq!(record.deadline, None);
    let events: Vec<_> = record.history.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "sent", "reply", "sent", "reply", "sent", "reply", "sent", "reply", "finished"
        ]
    );
}

async fn a_repeated_reply_is_ignored(backend: Backend) {
    let (test, orchestrator) = setup(backend, fast()).await;
    start(&test, &orchestrator, "o1").await;
    let first = sent(&test).await.pop().unwrap();
    for _ in 0..2 {
        let mut tx = test.db.begin().await.unwrap();
        orchestrator
            .on_reply(&mut tx, &reply_to(&first, true, "am.Success", Vec::new()))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(
        names(&test).await,
        ["authorize", "reserve"],
        "the second reply sent nothing"
    );
    let record = orchestrator.find("o1").await.unwrap().unwrap();
    assert_eq!(record.history.last().unwrap().event, "ignored");
}

async fn a_step_that_times_out_compensates(backend: Backend) {
    let timing = Timing {
        step_timeout: Duration::from_millis(100),
        ..fast()
    };
    let (test, orchestrator) = setup(backend, timing).await;
    start(&test, &orchestrator, "o1").await;
    answer_last(&test, &orchestrator, true).await.unwrap();
    answer_last(&test, &orchestrator, true).await.unwrap();
    assert_eq!(
        orchestrator.sweep().await.unwrap(),
        0,
        "nothing is overdue yet"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(orchestrator.sweep().await.unwrap(), 1);
    assert_eq!(
        names(&test).await,
        ["authorize", "reserve", "charge", "release"]
    );
    let record = orchestrator.find("o1").await.unwrap().unwrap();
    assert!(record.instance.compensating);
    assert!(record.history.iter().any(|e| e.event == "timeout"));
}

async fn a_failing_compensation_is_parked_where_operators_see_it(backend: Backend) {
    let (test, orchestrator) = setup(backend, fast()).await;
    start(&test, &orchestrator, "o1").await;
    start(&test, &orchestrator, "healthy").await;
    // authorize fails → reject, which fails three times (retried after a back-off).
    for _ in 0..4 {
        let last = sent(&test)
            .await
            .into_iter()
            .rev()
            .find(|e| e.metadata["COMMAND_SAGA_ID"] == "o1")
            .unwrap();
        let mut tx = test.db.begin().await.unwrap();
        orchestrator
            .on_reply(&mut tx, &reply_to(&last, false, "am.Failure", Vec::new()))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        orchestrator.sweep().await.unwrap();
    }
    let record = orchestrator.find("o1").await.unwrap().unwrap();
    assert_eq!(
        record.instance.status,
        Status::CompensationFailed,
        "{:#?}",
        record.history
    );
    let rejects = sent(&test)
        .await
        .iter()
        .filter(|e| e.name == "reject" && e.metadata["COMMAND_SAGA_ID"] == "o1")
        .count();
    assert_eq!(rejects, 3, "tried three times");
    let stuck: Vec<_> = orchestrator
        .list(Some(Duration::from_secs(3600)))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(stuck, ["o1"]);
    assert_eq!(orchestrator.list(None).await.unwrap().len(), 2);
    // The other one waits for a reply: stuck once it has waited longer than asked.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let waiting = orchestrator
        .list(Some(Duration::from_millis(10)))
        .await
        .unwrap();
    assert_eq!(waiting.len(), 2, "a step waiting longer than 10 ms");
}

async fn a_reply_for_an_unknown_saga_is_refused(backend: Backend) {
    let (test, orchestrator) = setup(backend, fast()).await;
    start(&test, &orchestrator, "o1").await;
    let mut command = sent(&test).await.pop().unwrap();
    command
        .metadata
        .insert("COMMAND_SAGA_ID".into(), "nobody".into());
    let mut tx = test.db.begin().await.unwrap();
    let result = orchestrator
        .on_reply(&mut tx, &reply_to(&command, true, "am.Success", Vec::new()))
        .await;
    assert!(
        matches!(result, Err(HandlerError::Permanent(_))),
        "{result:?}"
    );
    // A reply for another saga is none of its business.
    command
        .metadata
        .insert("COMMAND_SAGA_NAME".into(), "other.Saga".into());
    orchestrator
        .on_reply(&mut tx, &reply_to(&command, true, "am.Success", Vec::new()))
        .await
        .unwrap();
}

/// Answers every test command; "charge" fails when told to.
struct Depot {
    refuse_charge: bool,
}

#[async_trait]
impl CommandHandler for Depot {
    async fn handle(
        &self,
        _tx: &mut db::Conn,
        command: &Incoming,
    ) -> Result<CommandReply, CommandError> {
        match command.name() {
            "reserve" => Ok(CommandReply::new(
                "reserved",
                &proto::depot::CreatedShoppingList {
                    id: "list-1".into(),
                },
            )),
            "charge" if self.refuse_charge => Err(CommandError::failed("card declined")),
            _ => Ok(CommandReply::success()),
        }
    }
}

async fn the_saga_runs_end_to_end_over_the_broker(backend: Backend) {
    for (refuse_charge, expected, status) in [
        (
            false,
            vec!["authorize", "reserve", "charge", "approve"],
            Status::Completed,
        ),
        (
            true,
            vec!["authorize", "reserve", "charge", "release", "reject"],
            Status::Compensated,
        ),
    ] {
        let (test, orchestrator) = setup(backend, fast()).await;
        let broker = messaging::testing::broker(backend, &test.db).await;
        let stop = CancellationToken::new();
        let outbox = Outbox::new(SCHEMA);
        let retry = RetryPolicy {
            min_backoff: Duration::from_millis(50),
            ..RetryPolicy::default()
        };
        tokio::spawn(messaging::outbox::relay(
            test.db.clone(),
            outbox.clone(),
            broker.broker.clone(),
            messaging::RelayConfig::default(),
            stop.clone(),
        ));
        let commands = Subscription::new(SCHEMA, "test-commands", "mallbots.test.commands")
            .retry(retry.clone());
        let handler = Arc::new(messaging::replying(outbox.clone(), Depot { refuse_charge }));
        tokio::spawn(messaging::subscription::run(
            test.db.clone(),
            broker.broker.clone(),
            commands,
            handler,
            stop.clone(),
        ));
        let replies =
            Subscription::new(SCHEMA, "test-replies", "mallbots.test.replies").retry(retry);
        tokio::spawn(messaging::subscription::run(
            test.db.clone(),
            broker.broker.clone(),
            replies,
            Arc::new(orchestrator.replies()),
            stop.clone(),
        ));
        tokio::spawn(orchestrator.clone().run_sweeper(stop.clone()));

        start(&test, &orchestrator, "o1").await;
        let started = std::time::Instant::now();
        while orchestrator
            .find("o1")
            .await
            .unwrap()
            .unwrap()
            .instance
            .status
            == Status::Running
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the saga did not finish"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let record = orchestrator.find("o1").await.unwrap().unwrap();
        assert_eq!(record.instance.status, status);
        let commands: Vec<String> = sent(&test)
            .await
            .into_iter()
            .filter(|e| !e.name.starts_with("am.") && e.name != "reserved")
            .map(|e| e.name)
            .collect();
        assert_eq!(commands, expected);
        stop.cancel();
    }
}

#[test]
fn the_reply_saga_key_is_the_command_key_echoed() {
    assert_eq!(super::REPLY_SAGA_ID_HDR, super::echoed(super::SAGA_ID_HDR));
}
