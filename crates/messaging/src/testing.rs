//! Test support: a broker per test on the backend under test, and a private NATS server for
//! fault tests.
//!
//! SQLite pairs with the [`Embedded`] broker, PostgreSQL with [`JetStream`] on the server named
//! by `MALLBOTS_TEST_NATS` (default `nats://127.0.0.1:4222`), each test with its own stream.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use db::{Backend, Db};

use crate::{Broker, Embedded, JetStream, StreamLimits, embedded};

/// Environment variable with the NATS server tests use.
pub const NATS_VAR: &str = "MALLBOTS_TEST_NATS";

/// The NATS server tests use.
pub fn nats_url() -> String {
    std::env::var(NATS_VAR).unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A broker for one test; a JetStream stream is deleted when this is dropped.
pub struct TestBroker {
    /// The broker.
    pub broker: Arc<dyn Broker>,
    jetstream: Option<JetStream>,
}

impl std::fmt::Debug for TestBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBroker")
            .field("jetstream", &self.jetstream)
            .finish_non_exhaustive()
    }
}

/// Whether the test PostgreSQL server and NATS both answer now (benchmarks measure the
/// PostgreSQL + JetStream pair only when they do).
pub async fn postgres_and_nats_answer() -> bool {
    db::testing::postgres_answers().await && async_nats::connect(nats_url()).await.is_ok()
}

/// A unique stream name for a test.
pub fn unique_stream() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

/// The broker paired with `backend`: embedded in `db` (whose `broker` schema must be attached
/// on SQLite) or a fresh JetStream stream.
///
/// # Panics
/// When the broker cannot be set up: the test cannot run.
pub async fn broker(backend: Backend, db: &Db) -> TestBroker {
    match backend {
        Backend::Sqlite => {
            db.migrate(embedded::SCHEMA, &embedded::MIGRATIONS)
                .await
                .expect("embedded broker tables");
            TestBroker {
                broker: Arc::new(Embedded::new(db.clone(), "mallbots")),
                jetstream: None,
            }
        }
        Backend::Postgres => {
            let jetstream = jetstream(&nats_url()).await;
            TestBroker {
                broker: Arc::new(jetstream.clone()),
                jetstream: Some(jetstream),
            }
        }
    }
}

/// A JetStream broker on `url` with a fresh stream.
///
/// # Panics
/// When the server cannot be reached.
pub async fn jetstream(url: &str) -> JetStream {
    let jetstream = JetStream::connect(url, &unique_stream(), StreamLimits::default())
        .await
        .expect("NATS connects");
    let started = Instant::now();
    while jetstream.check().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "NATS at {url} not reachable ({NATS_VAR})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    jetstream
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(jetstream) = self.jetstream.take() {
            // Drop runs inside the test's runtime, which cannot be blocked on: use a thread.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    jetstream
                        .delete_stream()
                        .await
                        .map_err(std::io::Error::other)
                })
            })
            .join();
        }
    }
}

/// Deletes JetStream stream `stream` on `url` when dropped: for tests that let the code under
/// test create its own stream (e.g. an app started with `NATS_STREAM`).
#[derive(Debug)]
pub struct StreamGuard {
    url: String,
    stream: String,
}

impl StreamGuard {
    /// Guards `stream` on `url`.
    pub fn new(url: impl Into<String>, stream: impl Into<String>) -> StreamGuard {
        StreamGuard {
            url: url.into(),
            stream: stream.into(),
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let (url, stream) = (self.url.clone(), self.stream.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let client = async_nats::connect(&url)
                    .await
                    .map_err(std::io::Error::other)?;
                let _ = async_nats::jetstream::new(client)
                    .delete_stream(&stream)
                    .await;
                Ok::<(), std::io::Error>(())
            })
        })
        .join();
    }
}

/// A `nats-server -js` of the test's own, on a free port, for tests that stop the broker.
#[derive(Debug)]
pub struct NatsServer {
    port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts one.
    ///
    /// # Panics
    /// When `nats-server` is missing or does not start.
    pub fn start() -> NatsServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let store =
            std::env::temp_dir().join(format!("mallbots-nats-{}", uuid::Uuid::new_v4().simple()));
        let mut server = NatsServer {
            port,
            store,
            child: None,
        };
        server.resume();
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its JetStream store is kept).
    ///
    /// # Panics
    /// When it cannot be killed.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("nats-server stops");
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store.
    ///
    /// # Panics
    /// When it does not start within 10 s.
    pub fn resume(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed (scripts/services installs it)");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// `message` as a handler receives it: through the envelope's wire encoding, first delivery.
///
/// # Panics
/// When the envelope does not survive its own encoding (a bug in the codec).
pub fn delivered(message: crate::Message) -> crate::Incoming {
    crate::Incoming {
        subject: message.subject,
        envelope: crate::Envelope::decode(&message.envelope.encode())
            .expect("an envelope decodes what it encoded"),
        attempt: 1,
    }
}
