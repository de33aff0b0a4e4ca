//! NATS with the mall's server configuration (`deploy/nats/mallbots.conf`, ADR 18), on a
//! server of the test's own: each module's identity publishes only what it owns, so a forged
//! event from another identity is refused by the server; the monolith runs a whole order as
//! its own identity.

#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test code: a failed unwrap is a failed test; a skipped test says why"
)]

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use messaging::{Broker as _, JetStream, NatsAuth, Outgoing, StreamLimits};
use testkit::Backend;

/// The identities of deploy/nats/mallbots.conf: the monolith's and every module's.
fn identities() -> impl Iterator<Item = &'static str> {
    std::iter::once("mallbots").chain(mallbots::MODULES.iter().map(|m| m.name))
}

fn password(identity: &str) -> String {
    format!("{identity}-secret-for-the-test")
}

/// `nats-server` with the deployment's configuration, on a free port; killed when dropped.
struct Server {
    child: Child,
    url: String,
    _store: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start() -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = tempfile::tempdir().unwrap();
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/nats/mallbots.conf"
    );
    let mut command = Command::new("nats-server");
    command
        .args([
            "-c",
            config,
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-sd",
        ])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for identity in identities() {
        command.env(
            format!("NATS_{}_PASSWORD", identity.to_uppercase()),
            password(identity),
        );
    }
    let server = Server {
        child: command
            .spawn()
            .expect("nats-server is installed (scripts/services)"),
        url: format!("nats://127.0.0.1:{port}"),
        _store: store,
    };
    testkit::until(|| async {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .map(drop)
            .map_err(|e| format!("nats-server never listened: {e}"))
    })
    .await;
    server
}

fn identity(name: &str) -> NatsAuth {
    NatsAuth {
        user: Some((name.to_owned(), password(name))),
        ..NatsAuth::default()
    }
}

async fn connect(server: &Server, name: &str) -> JetStream {
    JetStream::connect_as(
        &server.url,
        "mallbots",
        StreamLimits::default(),
        &identity(name),
    )
    .await
    .unwrap()
}

/// Publishes one message to `subject` as `name`; whether the stream stored it.
async fn publishes(server: &Server, name: &str, subject: &str) -> bool {
    let broker = connect(server, name).await;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let id = format!(
        "{name}-{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let message = Outgoing {
        subject,
        id: &id,
        body: b"not a real envelope: the server judges the subject, not the bytes",
    };
    tokio::time::timeout(Duration::from_secs(10), broker.publish(&[message]))
        .await
        .is_ok_and(|published| published.is_ok())
}

#[tokio::test]
async fn each_identity_publishes_only_what_it_owns() {
    if !db::testing::is_selected(Backend::Postgres) {
        eprintln!("postgres not selected by {}", db::testing::BACKENDS_VAR);
        return;
    }
    let server = start().await;
    let (customers, commands, replies) = (
        proto::customers::CUSTOMER_AGGREGATE_CHANNEL,
        proto::depot::COMMAND_CHANNEL,
        proto::cosec::CREATE_ORDER_REPLY_CHANNEL,
    );
    let cases = [
        // Its own events.
        ("customers", customers, true),
        // A forged CustomerSmsChanged from anyone else.
        ("notifications", customers, false),
        ("search", customers, false),
        ("stores", customers, false),
        ("cosec", customers, false),
        // The saga commands; nobody else does.
        ("cosec", commands, true),
        ("baskets", commands, false),
        // Participants reply to the saga; nobody else does.
        ("depot", replies, true),
        ("search", replies, false),
    ];
    // The stream first, made once by the monolith's identity; then the cases side by side (a
    // refused publish is only known when its acknowledgement times out).
    assert!(
        publishes(&server, "mallbots", customers).await,
        "the stream is made"
    );
    let answers = futures::future::join_all(
        cases
            .iter()
            .map(|(name, subject, _)| publishes(&server, name, subject)),
    )
    .await;
    for ((name, subject, allowed), stored) in cases.iter().zip(answers) {
        assert_eq!(stored, *allowed, "{name} publishing to {subject}");
    }
}

#[tokio::test]
async fn the_monolith_runs_an_order_as_its_own_identity() {
    if !db::testing::is_selected(Backend::Postgres) {
        eprintln!("postgres not selected by {}", db::testing::BACKENDS_VAR);
        return;
    }
    let server = start().await;
    let url = server.url.clone();
    let app = testkit::spawn_app_with(&["all"], Backend::Postgres, move |c| {
        c.nats_url = Some(url);
        c.nats_stream = "mallbots".into();
        c.nats_user = Some("mallbots".into());
        c.nats_password = Some(password("mallbots"));
    })
    .await;
    let mall = app.mall(100.0).await;
    let order = app.checkout(&mall, 1).await;
    app.pick(&order).await;
    app.pay(&order).await;
    app.order_is(&order, "completed").await;
}

#[tokio::test]
async fn nats_over_tls_trusts_only_the_configured_ca() {
    if !db::testing::is_selected(Backend::Postgres) {
        eprintln!("postgres not selected by {}", db::testing::BACKENDS_VAR);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    db::testing::certificates(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("tls.conf");
    std::fs::write(
        &config,
        format!(
            "port: {port}\nnet: 127.0.0.1\njetstream: enabled\ntls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n",
            dir.path().join("server.pem").display(),
            dir.path().join("server.key").display()
        ),
    )
    .unwrap();
    let mut child = Command::new("nats-server")
        .arg("-c")
        .arg(&config)
        .arg("-sd")
        .arg(dir.path().join("js"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    testkit::until(|| async {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .map(drop)
            .map_err(|e| format!("nats-server never listened: {e}"))
    })
    .await;
    let url = format!("nats://localhost:{port}");
    let trusting = |ca: &str| NatsAuth {
        ca: Some(dir.path().join(ca)),
        ..NatsAuth::default()
    };
    let broker = JetStream::connect_as(
        &url,
        "mallbots",
        StreamLimits::default(),
        &trusting("ca.pem"),
    )
    .await
    .unwrap();
    let message = Outgoing {
        subject: proto::stores::STORE_AGGREGATE_CHANNEL,
        id: "over-tls-1",
        body: b"stored over TLS",
    };
    tokio::time::timeout(Duration::from_secs(10), broker.publish(&[message]))
        .await
        .unwrap()
        .unwrap();
    // A server whose certificate another CA signed is never talked to.
    let stranger = JetStream::connect_as(
        &url,
        "mallbots",
        StreamLimits::default(),
        &trusting("other-ca.pem"),
    )
    .await
    .unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(5), stranger.publish(&[message])).await;
    assert!(
        !refused.is_ok_and(|published| published.is_ok()),
        "published past an unknown CA"
    );
    let _ = child.kill();
    let _ = child.wait();
}
