//! The `mallbots` binary as an operator meets it: help, bad settings, start, readiness, stop.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn mallbots() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mallbots"));
    // A clean environment: the settings under test come only from each test.
    for (key, _) in std::env::vars() {
        if key.starts_with("PG_")
            || key.starts_with("WEB_")
            || key.starts_with("RPC_")
            || key.starts_with("AUTH")
            || key == "MODULES"
            || key == "DATA_DIR"
        {
            command.env_remove(key);
        }
    }
    command
}

/// Runs to completion; (success, stdout, stderr).
fn run(command: &mut Command) -> (bool, String, String) {
    let output = command.output().expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

fn assert_one_clear_line(stderr: &str, expected: &str) {
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(expected),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn help_lists_every_setting_with_its_environment_variable() {
    let (ok, stdout, _) = run(mallbots().arg("--help"));
    assert!(ok);
    for var in [
        "MODULES",
        "WEB_HOST",
        "WEB_PORT",
        "RPC_HOST",
        "RPC_PORT",
        "RPC_SERVICES",
        "NATS_URL",
        "NATS_STREAM",
        "NATS_STREAM_MAX_AGE",
        "NATS_STREAM_MAX_BYTES",
        "NOTIFICATIONS_WEBHOOK",
        "PG_CONN",
        "DATA_DIR",
        "DB_MAX_CONNECTIONS",
        "DB_ACQUIRE_TIMEOUT",
        "DB_STATEMENT_TIMEOUT",
        "CONSUMER_CONCURRENCY",
        "CONSUMER_BATCH",
        "CONSUMER_ACK_WAIT",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "SHUTDOWN_TIMEOUT",
        "REQUEST_TIMEOUT",
        "REQUEST_BODY_LIMIT",
        "AUTH",
        "AUTH_HS256_SECRET",
        "AUTH_JWKS_URL",
        "AUTH_ISSUER",
        "AUTH_AUDIENCE",
        "AUTH_SERVICE_TOKEN",
        "NATS_CREDS",
        "NATS_NKEY",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_CA",
        "NATS_TLS_CERT",
        "NATS_TLS_KEY",
        "NOTIFICATIONS_WEBHOOK_SECRET",
        "NOTIFICATIONS_WEBHOOK_CA",
        "HTTP_HEADER_TIMEOUT",
        "HTTP_MAX_CONNECTIONS",
    ] {
        assert!(
            stdout.contains(&format!("[env: {var}")),
            "--help does not mention {var}:\n{stdout}"
        );
    }
    assert!(stdout.contains("migrate"), "{stdout}");
}

#[test]
fn help_read_by_a_reader_that_stops_early_is_no_panic() {
    // `mallbots --help | head -1`: the reader is gone before the help is written.
    let mut child = mallbots()
        .arg("--help")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn a_non_numeric_port_is_one_clear_error() {
    let (ok, _, stderr) = run(mallbots().env("WEB_PORT", "abc"));
    assert!(!ok);
    assert_one_clear_line(&stderr, "abc");
}

#[test]
fn an_open_api_beyond_loopback_is_refused_unless_said() {
    let data = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(mallbots()
        .env("DATA_DIR", data.path())
        .env("WEB_HOST", "0.0.0.0")
        .env("WEB_PORT", "0")
        .env("RPC_PORT", "0")
        .env("LOG_LEVEL", "error"));
    assert!(!ok);
    assert_one_clear_line(&stderr, "without authentication on 0.0.0.0");
    let (ok, _, stderr) = run(mallbots().env("AUTH", "on").env("LOG_LEVEL", "error"));
    assert!(!ok);
    assert_one_clear_line(&stderr, "AUTH=on needs AUTH_HS256_SECRET or AUTH_JWKS_URL");
}

#[tokio::test]
async fn a_development_token_is_minted_with_the_secret() {
    let secret = "a secret for the binary's own test!";
    let (ok, stdout, stderr) = run(mallbots().env("AUTH_HS256_SECRET", secret).args([
        "token",
        "--role",
        "customer",
        "--subject",
        "c-1",
        "--ttl",
        "5m",
    ]));
    assert!(ok, "{stderr}");
    let auth = host::auth::Auth::new(&host::auth::AuthConfig {
        auth_hs256_secret: Some(secret.into()),
        ..host::auth::AuthConfig::default()
    })
    .unwrap();
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {}", stdout.trim()).parse().unwrap(),
    );
    let caller = auth.caller(&headers).await.unwrap();
    assert_eq!(
        (caller.subject.as_str(), caller.role),
        ("c-1", host::auth::Role::Customer)
    );

    let (ok, _, stderr) = run(mallbots().args(["token", "--role", "admin", "--subject", "me"]));
    assert!(!ok);
    assert_one_clear_line(&stderr, "needs AUTH_HS256_SECRET");
    let (ok, _, stderr) = run(mallbots().env("AUTH_HS256_SECRET", secret).args([
        "token",
        "--role",
        "king",
        "--subject",
        "me",
    ]));
    assert!(!ok);
    assert!(stderr.contains("king"), "{stderr}");
}

#[test]
fn a_batch_of_nothing_is_one_clear_error() {
    let (ok, _, stderr) = run(mallbots().env("CONSUMER_BATCH", "0"));
    assert!(!ok);
    assert_one_clear_line(&stderr, "from 1 to 1024");
}

#[test]
fn an_unknown_module_is_one_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(mallbots()
        .env("MODULES", "warehouse")
        .env("DATA_DIR", data.path())
        .env("LOG_LEVEL", "error"));
    assert!(!ok);
    assert_one_clear_line(&stderr, "unknown module \"warehouse\"");
}

#[test]
fn an_unreachable_database_is_one_clear_error_without_the_password() {
    let (ok, _, stderr) = run(mallbots()
        .env("PG_CONN", "postgres://mallbots:s3cret@127.0.0.1:1/mallbots")
        .env("DB_ACQUIRE_TIMEOUT", "1s")
        .env("LOG_LEVEL", "error"));
    assert!(!ok);
    assert_one_clear_line(
        &stderr,
        "cannot connect to PostgreSQL at postgres://mallbots:***@127.0.0.1:1/mallbots",
    );
    assert!(!stderr.contains("s3cret"));
}

#[test]
fn migrate_applies_and_exits() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("fresh");
    let (ok, _, stderr) = run(mallbots().arg("migrate").env("DATA_DIR", &dir));
    assert!(ok, "{stderr}");
    assert!(dir.join("main.db").exists());
}

#[test]
fn serve_gets_ready_and_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let mut child = mallbots()
        .env("DATA_DIR", data.path())
        .env("WEB_HOST", "127.0.0.1")
        .env("WEB_PORT", "0")
        .env("RPC_HOST", "127.0.0.1")
        .env("RPC_PORT", "0")
        .env("LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let http = loop {
        let line = lines.next().expect("the server logs its start").unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if entry["fields"]["message"] == "mallbots started" {
            break entry["fields"]["http"].as_str().unwrap().to_owned();
        }
    };
    host::install_crypto_provider();
    let client = reqwest::blocking::Client::new();
    loop {
        match client.get(format!("http://{http}/readiness")).send() {
            Ok(response) if response.status() == 200 => break,
            _ if started.elapsed() > Duration::from_secs(10) => panic!("not ready after 10 s"),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    assert_eq!(
        client
            .get(format!("http://{http}/liveness"))
            .send()
            .unwrap()
            .status(),
        200
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
}

#[test]
fn dead_letters_are_listed_shown_replayed_and_discarded() {
    let data = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(mallbots().arg("migrate").env("DATA_DIR", data.path()));
    assert!(ok, "{stderr}");
    // A dead letter, as the payments-orders consumer records one.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let target = db::Target::Sqlite(data.path().to_owned());
        let db = db::Db::connect(&target, &["payments"], &db::Options::default()).await.unwrap();
        sqlx::query(
            "INSERT INTO payments.dead_letters (consumer, id, name, subject, body, error, attempts, dead_at, replay_requested)
             VALUES ('payments-orders', 'm-1', 'ordersapi.OrderReadied', 'mallbots.ordering.events.Order', $1, 'invoice amount must be positive', 5, 0, 0)",
        )
        .bind(vec![1_u8, 2, 3])
        .execute(db.pool())
        .await
        .unwrap();
        db.close().await;
    });
    let dlq = |args: &[&str]| {
        run(mallbots()
            .arg("dlq")
            .args(args)
            .env("DATA_DIR", data.path())
            .env("LOG_LEVEL", "error"))
    };

    let (ok, listed, _) = dlq(&["list"]);
    assert!(
        ok && listed.contains("m-1") && listed.contains("invoice amount must be positive"),
        "{listed}"
    );
    let (ok, shown, _) = dlq(&["show", "payments", "payments-orders", "m-1"]);
    assert!(ok && shown.contains("\"undecodable\""), "{shown}");
    let (ok, _, _) = dlq(&["replay", "payments", "payments-orders", "m-1"]);
    assert!(ok);
    assert!(dlq(&["list"]).1.contains("(replay requested)"));
    let (ok, _, _) = dlq(&["discard", "payments", "payments-orders", "m-1"]);
    assert!(ok);
    assert!(!dlq(&["list"]).1.contains("m-1"));
    let (ok, _, stderr) = dlq(&["discard", "payments", "payments-orders", "m-1"]);
    assert!(!ok);
    assert_one_clear_line(
        &stderr,
        "no dead letter m-1 of consumer payments-orders in module payments",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sagas_and_outboxes_can_be_inspected() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_owned();
    let app = testkit::spawn_app_with(&["all"], db::Backend::Sqlite, |config| {
        config.data_dir = dir;
    })
    .await;
    let mall = app.mall(100.0).await;
    let order = app.checkout(&mall, 1).await;
    app.eventually(
        &format!("/api/cosec/sagas/{order}"),
        "/saga/status",
        "completed",
    )
    .await;
    let inspect = |args: &[&str]| {
        run(mallbots()
            .args(args)
            .env("DATA_DIR", data.path())
            .env("LOG_LEVEL", "error"))
    };

    let (ok, listed, stderr) = inspect(&["saga", "list"]);
    assert!(ok, "{stderr}");
    let line = listed
        .lines()
        .find(|l| l.starts_with(&order))
        .unwrap_or_default();
    assert!(
        line.contains("completed") && line.contains("forward"),
        "{listed}"
    );
    let (ok, stuck, _) = inspect(&["saga", "list", "--stuck"]);
    assert!(ok && !stuck.contains(&order), "{stuck}");
    let (ok, shown, _) = inspect(&["saga", "show", &order]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert!(ok);
    assert_eq!(shown["status"], "completed");
    assert!(shown["history"].as_array().unwrap().len() >= 10, "{shown}");
    let (ok, _, stderr) = inspect(&["saga", "show", "no-such-order"]);
    assert!(!ok);
    assert_one_clear_line(&stderr, "no create-order saga for order no-such-order");

    let (ok, status, stderr) = inspect(&["outbox", "status"]);
    assert!(ok, "{stderr}");
    let ordering = status
        .lines()
        .find(|l| l.starts_with("ordering"))
        .unwrap_or_default();
    let fields: Vec<&str> = ordering.split_whitespace().collect();
    // Everything ordering staged for this order was published: nothing pending.
    assert_eq!(fields.get(1..3), Some(&["0", "-"][..]), "{status}");
    assert!(fields[3].parse::<u64>().unwrap() >= 2, "{status}");
}

/// A whole order through the release-like binary at INFO: the customer's name and SMS number
/// never reach the log (they are personal data; the SMS text is logged at DEBUG only).
#[tokio::test]
async fn personal_data_stays_out_of_the_log() {
    let data = tempfile::tempdir().unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = mallbots()
        .env("DATA_DIR", data.path())
        .env("WEB_PORT", "0")
        .env("RPC_PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "INFO")
        .stderr(Stdio::from(log.reopen().unwrap()))
        .spawn()
        .unwrap();
    let http = testkit::until(|| async {
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|entry| entry["fields"]["message"] == "mallbots started")
            .and_then(|entry| entry["fields"]["http"].as_str().map(str::to_owned))
            .ok_or_else(|| format!("the binary never said it started:\n{text}"))
    })
    .await;
    let api = testkit::Api::new(&format!("http://{http}"));
    testkit::until(|| async {
        match api.get("/readiness").await.status().as_u16() {
            200 => Ok(()),
            other => Err(format!("readiness {other}")),
        }
    })
    .await;
    let mall = api.mall(100.0).await;
    let order = api.checkout(&mall, 1).await;
    api.pick(&order).await;
    api.pay(&order).await;
    api.order_is(&order, "completed").await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());

    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        text.contains("\"SMS\""),
        "the notification was logged:\n{text}"
    );
    for personal in ["Customer ABC", "555-555-1212"] {
        assert!(
            !text.contains(personal),
            "{personal} is in the log:\n{text}"
        );
    }
}
