//! The event store's contract, run on SQLite and on PostgreSQL.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use db::{AssertSqlSafe, Backend, Row as _, testing::TestDb};
use es::{Aggregate, DomainEvent, Envelope, Error, EventHandler, EventStore, Metadata, Upcaster};
use serde::{Deserialize, Serialize};

db::backend_tests!(
    appended_events_load_back_in_order,
    an_unknown_id_loads_as_none,
    a_refused_command_stores_nothing,
    two_writers_at_one_version_get_exactly_one_conflict,
    concurrent_commands_are_retried_until_all_apply,
    a_multi_event_append_stores_consecutive_versions,
    a_snapshot_is_written_every_n_versions_and_used_on_load,
    a_snapshot_of_another_schema_version_is_ignored,
    an_unreadable_snapshot_is_ignored,
    upcasters_bring_old_events_to_the_current_shape,
    the_handler_commits_with_the_append,
    a_failing_handler_rolls_the_append_back,
    the_handler_write_of_a_losing_writer_is_rolled_back,
    metadata_is_stored_with_each_event,
    every_event_is_read_back_a_page_at_a_time_in_append_order,
);

const SCHEMA: &str = "bank";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Account {
    open: bool,
    balance: i64,
}

#[derive(Debug, Clone)]
enum Command {
    Open,
    Deposit(i64),
    Withdraw(i64),
    /// Two events in one decision.
    OpenWithBonus(i64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum Event {
    Opened,
    Deposited { cents: i64 },
    Withdrawn { cents: i64 },
}

impl DomainEvent for Event {
    fn name(&self) -> &'static str {
        match self {
            Event::Opened => "bank.Opened",
            Event::Deposited { .. } => "bank.Deposited",
            Event::Withdrawn { .. } => "bank.Withdrawn",
        }
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum AccountError {
    #[error("the account is not open")]
    NotOpen,
    #[error("insufficient funds")]
    InsufficientFunds,
}

/// Version 1 of `bank.Deposited` stored `{"type": "Deposited", "amount": <euros>}`.
fn deposited_v1_to_v2(mut value: serde_json::Value) -> Result<serde_json::Value, String> {
    let euros = value["amount"].as_i64().ok_or("amount missing")?;
    let object = value.as_object_mut().ok_or("not an object")?;
    object.remove("amount");
    object.insert("cents".into(), (euros * 100).into());
    Ok(value)
}

impl Aggregate for Account {
    const TYPE: &'static str = "bank.Account";
    const UPCASTERS: &'static [Upcaster] = &[Upcaster {
        event: "bank.Deposited",
        from_version: 1,
        upcast: deposited_v1_to_v2,
    }];
    type Command = Command;
    type Event = Event;
    type Error = AccountError;

    fn handle(&self, command: Command) -> Result<Vec<Event>, AccountError> {
        match command {
            Command::Open => Ok(vec![Event::Opened]),
            Command::OpenWithBonus(cents) => Ok(vec![Event::Opened, Event::Deposited { cents }]),
            Command::Deposit(_) | Command::Withdraw(_) if !self.open => Err(AccountError::NotOpen),
            Command::Deposit(cents) => Ok(vec![Event::Deposited { cents }]),
            Command::Withdraw(cents) if cents > self.balance => {
                Err(AccountError::InsufficientFunds)
            }
            Command::Withdraw(cents) => Ok(vec![Event::Withdrawn { cents }]),
        }
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::Opened => self.open = true,
            Event::Deposited { cents } => self.balance += cents,
            Event::Withdrawn { cents } => self.balance -= cents,
        }
    }
}

/// Records each event in `bank.ledger`; refuses a deposit of 13 cents.
#[derive(Clone)]
struct Ledger;

impl EventHandler<Account> for Ledger {
    async fn handle(&self, tx: &mut db::Conn, events: &[Envelope<Event>]) -> anyhow::Result<()> {
        for envelope in events {
            sqlx::query(
                "INSERT INTO bank.ledger (event_id, account_id, version) VALUES ($1, $2, $3)",
            )
            .bind(&envelope.event_id)
            .bind(&envelope.aggregate_id)
            .bind(envelope.version)
            .execute(&mut *tx)
            .await?;
            if envelope.event == (Event::Deposited { cents: 13 }) {
                anyhow::bail!("13 is unlucky");
            }
        }
        Ok(())
    }
}

const LEDGER: db::Migrations = db::Migrations {
    component: "test-ledger",
    steps: &[db::Migration {
        version: 1,
        description: "ledger",
        sql: "CREATE TABLE {schema}.ledger (event_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, version BIGINT NOT NULL)",
    }],
};

async fn bank(backend: Backend) -> TestDb {
    let test = db::testing::fresh(backend, &[SCHEMA]).await;
    test.db.migrate(SCHEMA, &es::MIGRATIONS).await.unwrap();
    test.db.migrate(SCHEMA, &LEDGER).await.unwrap();
    test
}

fn store(test: &TestDb) -> EventStore<Account, Ledger> {
    EventStore::new(test.db.clone(), SCHEMA, Ledger).unwrap()
}

async fn ledger_rows(test: &TestDb, id: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM bank.ledger WHERE account_id = $1")
        .bind(id)
        .fetch_one(test.db.pool())
        .await
        .unwrap()
        .get(0)
}

async fn stored_events(test: &TestDb, id: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM bank.events WHERE stream_id = $1")
        .bind(id)
        .fetch_one(test.db.pool())
        .await
        .unwrap()
        .get(0)
}

async fn appended_events_load_back_in_order(backend: Backend) {
    let test = bank(backend).await;
    let accounts = store(&test);
    accounts.execute("a1", Command::Open).await.unwrap();
    accounts.execute("a1", Command::Deposit(500)).await.unwrap();
    let withdrawn = accounts
        .execute("a1", Command::Withdraw(200))
        .await
        .unwrap();
    assert_eq!(withdrawn.len(), 1);
    assert_eq!(withdrawn[0].version, 3);
    assert_eq!(withdrawn[0].event, Event::Withdrawn { cents: 200 });

    let loaded = accounts.load("a1").await.unwrap().expect("a1 exists");
    assert_eq!(loaded.version, 3);
    assert!(loaded.aggregate.open);
    assert_eq!(loaded.aggregate.balance, 300);
}

async fn an_unknown_id_loads_as_none(backend: Backend) {
    let test = bank(backend).await;
    assert!(store(&test).load("nobody").await.unwrap().is_none());
}

async fn a_refused_command_stores_nothing(backend: Backend) {
    let test = bank(backend).await;
    let accounts = store(&test);
    let error = accounts
        .execute("a1", Command::Deposit(5))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Rejected(AccountError::NotOpen)),
        "{error:?}"
    );
    accounts.execute("a1", Command::Open).await.unwrap();
    let error = accounts
        .execute("a1", Command::Withdraw(5))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Rejected(AccountError::InsufficientFunds)),
        "{error:?}"
    );
    assert_eq!(stored_events(&test, "a1").await, 1);
}

async fn two_writers_at_one_version_get_exactly_one_conflict(backend: Backend) {
    let test = bank(backend).await;
    let accounts = store(&test);
    accounts.execute("a1", Command::Open).await.unwrap();
    let meta = Metadata::new();
    let (first, second) = tokio::join!(
        accounts.append("a1", 1, vec![Event::Deposited { cents: 1 }], &meta),
        accounts.append("a1", 1, vec![Event::Deposited { cents: 2 }], &meta),
    );
    let conflicts = [&first, &second]
        .iter()
        .filter(|r| matches!(r, Err(Error::Conflict { .. })))
        .count();
    let successes = [&first, &second].iter().filter(|r| r.is_ok()).count();
    assert_eq!((successes, conflicts), (1, 1), "{first:?} / {second:?}");
    assert_eq!(accounts.load("a1").await.unwrap().unwrap().version, 2);
}

async fn concurrent_commands_are_retried_until_all_apply(backend: Backend) {
    let test = bank(backend).await;
    let accounts = store(&test);
    accounts.execute("a1", Command::Open).await.unwrap();
    let deposits = (1..=4).map(|cents| {
        let accounts = accounts.clone();
        tokio::spawn(async move { accounts.execute("a1", Command::Deposit(cents)).await })
    });
    for deposit in futures::future::join_all(deposits).await {
        deposit.unwrap().unwrap();
    }
    let loaded = accounts.load("a1").await.unwrap().unwrap();
    assert_eq!((loaded.version, loaded.aggregate.balance), (5, 10));
}

async fn a_multi_event_append_stores_consecutive_versions(backend: Backend) {
    let test = bank(backend).await;
    let accounts = store(&test).snapshot_every(0);
    let events = accounts
        .execute("a1", Command::OpenWithBonus(700))
        .await
        .unwrap();
    let versions: Vec<_> = events.iter().map(|e| e.version).collect();
    assert_eq!(versions, [1, 2]);
    assert_ne!(events[0].event_id, events[1].event_id);
    let loaded = accounts.load("a1").await.unwrap().unwrap();
    assert_eq!(
        (
            loaded.version,
            loaded.aggregate.balance,
            loaded.events_replayed
        ),
        (2, 700, 2)
    );
    assert_eq!(ledger_rows(&test, "a1").await, 2);
}

async fn a_snapshot_is_written_every_n_versions_and_used_on_load(backend: Backend) {
    let test = bank(backend).await;
    let n = 4;
    let accounts = store(&test).snapshot_every(n);
    accounts.execute("a1", Command::Open).await.unwrap();
    for version in 2..=11 {
        accounts.execute("a1", Command::Deposit(10)).await.unwrap();
        let loaded = accounts.load("a1").await.unwrap().unwrap();
        assert_eq!(loaded.version, version);
        assert_eq!(loaded.aggregate.balance, 10 * (version - 1));
        let expected_snapshot = (version >= 4).then_some(version / 4 * 4);
        assert_eq!(
            loaded.snapshot_version, expected_snapshot,
            "at version {version}"
        );
        assert!(
            loaded.events_replayed < n as usize,
            "replayed {} events at version {version}",
            loaded.events_replayed
        );
    }
    // A multi-event append that crosses a multiple snapshots at its last version.
    let two = vec![Event::Deposited { cents: 1 }, Event::Deposited { cents: 1 }];
    accounts
        .append("a1", 11, two, &Metadata::new())
        .await
        .unwrap();
    let loaded = accounts.load("a1").await.unwrap().unwrap();
    assert_eq!(
        (
            loaded.snapshot_version,
            loaded.events_replayed,
            loaded.aggregate.balance
        ),
        (Some(13), 0, 102)
    );
}

async fn set_snapshot_column(test: &TestDb, assignment: &str) {
    let sql = format!("UPDATE bank.snapshots SET {assignment} WHERE stream_id = 'a1'");
    let updated = sqlx::query(AssertSqlSafe(sql))
        .execute(test.db.pool())
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 1);
}

async fn a_snapshot_of_another_schema_version_is_ignored(backend: Backend) {
    let test = bank(backend).await;
    let accounts = store(&test);
    accounts.execute("a1", Command::Open).await.unwrap();
    for _ in 0..3 {
        accounts.execute("a1", Command::Deposit(10)).await.unwrap();
    }
    // A snapshot claiming a fortune, written by "another shape" of the aggregate.
    set_snapshot_column(
        &test,
        "snapshot_version = 99, snapshot_data = '{\"open\":true,\"balance\":999999}'",
    )
    .await;
    let loaded = accounts.load("a1").await.unwrap().unwrap();
    assert_eq!(
        (
            loaded.snapshot_version,
            loaded.events_replayed,
            loaded.aggregate.balance
        ),
        (None, 4, 30)
    );
}

async fn an_unreadable_snapshot_is_ignored(backend: Backend) {
    let test = bank(backend).await;
    let accounts = store(&test);
    accounts
        .execute("a1", Command::OpenWithBonus(5))
        .await
        .unwrap();
    accounts.execute("a1", Command::Deposit(5)).await.unwrap();
    set_snapshot_column(&test, "snapshot_data = 'not json'").await;
    let loaded = accounts.load("a1").await.unwrap().unwrap();
    assert_eq!(
        (loaded.snapshot_version, loaded.aggregate.balance),
        (None, 10)
    );
}

async fn upcasters_bring_old_events_to_the_current_shape(backend: Backend) {
    let test = bank(backend).await;
    let accounts = store(&test);
    accounts.execute("a1", Command::Open).await.unwrap();
    // An event as version 1 of the code wrote it: euros under "amount".
    sqlx::query(
        "INSERT INTO bank.events (stream_id, stream_name, stream_version, event_id, event_name, event_version, event_data, metadata, occurred_at)
         VALUES ('a1', 'bank.Account', 2, 'old-event', 'bank.Deposited', 1, '{\"type\":\"Deposited\",\"amount\":3}', '{}', 0)",
    )
    .execute(test.db.pool())
    .await
    .unwrap();
    let loaded = accounts.load("a1").await.unwrap().unwrap();
    assert_eq!(loaded.aggregate.balance, 300);

    // New events are written at the current version, 2, and need no upcasting.
    accounts.execute("a1", Command::Deposit(1)).await.unwrap();
    let version: i32 = sqlx::query(
        "SELECT event_version FROM bank.events WHERE stream_id = 'a1' AND stream_version = 3",
    )
    .fetch_one(test.db.pool())
    .await
    .unwrap()
    .get(0);
    assert_eq!(version, 2);
    assert_eq!(
        accounts
            .load("a1")
            .await
            .unwrap()
            .unwrap()
            .aggregate
            .balance,
        301
    );
}

async fn the_handler_commits_with_the_append(backend: Backend) {
    let test = bank(backend).await;
    let accounts = store(&test);
    accounts
        .execute("a1", Command::OpenWithBonus(1))
        .await
        .unwrap();
    accounts.execute("a1", Command::Deposit(2)).await.unwrap();
    assert_eq!(ledger_rows(&test, "a1").await, 3);
}

async fn a_failing_handler_rolls_the_append_back(backend: Backend) {
    let test = bank(backend).await;
    let accounts = store(&test);
    accounts.execute("a1", Command::Open).await.unwrap();
    let error = accounts
        .execute("a1", Command::Deposit(13))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Handler(e) if e.to_string() == "13 is unlucky"),
        "{error:?}"
    );
    // Neither the event nor the handler's own row of it survived.
    assert_eq!(stored_events(&test, "a1").await, 1);
    assert_eq!(ledger_rows(&test, "a1").await, 1);
    assert_eq!(accounts.load("a1").await.unwrap().unwrap().version, 1);
}

async fn the_handler_write_of_a_losing_writer_is_rolled_back(backend: Backend) {
    let test = bank(backend).await;
    let accounts = store(&test);
    accounts.execute("a1", Command::Open).await.unwrap();
    let mut tx = test.db.begin().await.unwrap();
    let meta = Metadata::new();
    accounts
        .execute_in(&mut tx, "a1", Command::Deposit(1), &meta)
        .await
        .unwrap();
    // Before `tx` commits nothing is visible, and rolling it back leaves nothing behind.
    tx.rollback().await.unwrap();
    assert_eq!(
        (
            stored_events(&test, "a1").await,
            ledger_rows(&test, "a1").await
        ),
        (1, 1)
    );

    // A writer whose version was taken fails before its handler row can persist.
    accounts.execute("a1", Command::Deposit(1)).await.unwrap();
    let lost = accounts
        .append("a1", 1, vec![Event::Deposited { cents: 7 }], &meta)
        .await;
    assert!(matches!(lost, Err(Error::Conflict { .. })), "{lost:?}");
    assert_eq!(
        (
            stored_events(&test, "a1").await,
            ledger_rows(&test, "a1").await
        ),
        (2, 2)
    );
}

async fn metadata_is_stored_with_each_event(backend: Backend) {
    let test = bank(backend).await;
    let accounts = store(&test);
    let meta = Metadata::from([("causation_id".to_owned(), "msg-1".to_owned())]);
    accounts
        .execute_with("a1", Command::OpenWithBonus(1), &meta)
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT metadata FROM bank.events WHERE stream_id = 'a1' ORDER BY stream_version",
    )
    .fetch_all(test.db.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        let stored: Metadata = serde_json::from_str(&row.get::<String, _>(0)).unwrap();
        assert_eq!(stored, meta);
    }
}

mod given_when_then {
    use es::testing::given;

    use super::*;

    #[test]
    fn a_deposit_into_an_open_account_is_recorded() {
        given::<Account>([Event::Opened])
            .when(Command::Deposit(5))
            .then([Event::Deposited { cents: 5 }]);
    }

    #[test]
    fn a_withdrawal_beyond_the_balance_is_refused() {
        given::<Account>([Event::Opened, Event::Deposited { cents: 5 }])
            .when(Command::Withdraw(6))
            .then_err(AccountError::InsufficientFunds);
    }

    #[test]
    fn the_given_events_are_applied_in_order() {
        let given = given::<Account>([
            Event::Opened,
            Event::Deposited { cents: 5 },
            Event::Withdrawn { cents: 2 },
        ]);
        assert_eq!(given.state().balance, 3);
    }
}

async fn every_event_is_read_back_a_page_at_a_time_in_append_order(backend: Backend) {
    let test = bank(backend).await;
    let accounts = store(&test);
    accounts.execute("a1", Command::Open).await.unwrap();
    accounts.execute("a2", Command::Open).await.unwrap();
    accounts.execute("a1", Command::Deposit(5)).await.unwrap();
    accounts.execute("a2", Command::Deposit(7)).await.unwrap();
    let mut conn = test.db.pool().acquire().await.unwrap();
    let (mut position, mut read) = (0, Vec::new());
    loop {
        let page = accounts.read_all_in(&mut conn, position, 3).await.unwrap();
        let Some((last, _)) = page.last() else { break };
        position = *last;
        read.extend(
            page.into_iter()
                .map(|(_, e)| (e.aggregate_id, e.version, e.event)),
        );
    }
    assert_eq!(
        read,
        [
            ("a1".to_owned(), 1, Event::Opened),
            ("a2".to_owned(), 1, Event::Opened),
            ("a1".to_owned(), 2, Event::Deposited { cents: 5 }),
            ("a2".to_owned(), 2, Event::Deposited { cents: 7 }),
        ]
    );
}
