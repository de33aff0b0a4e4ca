//! PostgreSQL over TLS (issue 14): a server of the test's own on a free port that accepts only
//! TLS connections, with a certificate from a CA made here. `sslmode=verify-full` with that CA
//! connects; the same with another CA, or without TLS, is refused.

#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test code: a failed unwrap is a failed test; a skipped test says why"
)]

use db::{Backend, Db, Options, Target};

async fn connect(conn: String) -> Result<Db, db::ConnectError> {
    let options = Options {
        max_connections: 2,
        acquire_timeout: std::time::Duration::from_secs(5),
        statement_timeout: None,
    };
    Db::connect(&Target::Postgres(conn), &[], &options).await
}

#[tokio::test]
async fn postgres_over_tls_verifies_the_server() {
    if !db::testing::is_selected(Backend::Postgres) {
        eprintln!("postgres not selected by {}", db::testing::BACKENDS_VAR);
        return;
    }
    let server = db::testing::PrivatePostgres::start(true);
    let dir = server.dir().display().to_string();
    let url = |mode: &str, ca: &str| {
        format!(
            "postgres://postgres@localhost:{}/postgres?sslmode={mode}&sslrootcert={dir}/{ca}",
            server.port()
        )
    };

    let db = connect(url("verify-full", "ca.pem")).await.unwrap();
    db.ping(std::time::Duration::from_secs(2)).await.unwrap();
    let tls: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(tls, "the session is encrypted");

    let wrong_ca = connect(url("verify-full", "other-ca.pem"))
        .await
        .unwrap_err();
    assert!(
        wrong_ca.to_string().contains("cannot connect"),
        "{wrong_ca}"
    );
    let plaintext = connect(format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        server.port()
    ))
    .await
    .unwrap_err();
    assert!(
        plaintext.to_string().contains("cannot connect"),
        "{plaintext}"
    );
    // The book's key=value form carries the same settings.
    let libpq = format!(
        "host=localhost port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={dir}/ca.pem",
        server.port()
    );
    connect(libpq).await.unwrap();
}
