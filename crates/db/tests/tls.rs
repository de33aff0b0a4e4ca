//! PostgreSQL over TLS (issue 14): a server of the test's own on a free port that accepts only
//! TLS connections, with a certificate from a CA made here. `sslmode=verify-full` with that CA
//! connects; the same with another CA, or without TLS, is refused.

#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test code: a failed unwrap is a failed test; a skipped test says why"
)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use db::{Backend, Db, Options, Target};

/// A PostgreSQL server in a temporary directory, stopped when dropped.
struct Server {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(&format!(
            "'{}' -D '{}' -m immediate stop",
            self.bin.join("pg_ctl").display(),
            data.display()
        ));
    }
}

/// Runs `script` as the `postgres` user when this is root (PostgreSQL refuses root).
fn as_postgres(script: &str) -> std::process::Output {
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut command = if root {
        let mut su = Command::new("su");
        su.args(["postgres", "-s", "/bin/sh", "-c", script]);
        su
    } else {
        let mut sh = Command::new("sh");
        sh.args(["-c", script]);
        sh
    };
    command.output().unwrap()
}

fn run(script: &str, dir: &Path) {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The newest PostgreSQL's binaries on this machine.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start() -> Server {
    let bin = postgres_bin().expect("PostgreSQL is installed (scripts/services)");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    db::testing::certificates(path);
    let data = path.join("data");
    run(
        "chmod 755 . && chmod 600 server.key && (chown postgres server.key server.pem . 2>/dev/null || true)",
        path,
    );
    let init = as_postgres(&format!(
        "'{}' -D '{}' -U postgres --auth=trust -E UTF8 >/dev/null",
        bin.join("initdb").display(),
        data.display()
    ));
    assert!(
        init.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    // TLS or nothing, from 127.0.0.1.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
    )
    .unwrap();
    let port = free_port();
    let started = as_postgres(&format!(
        "'{}' -D '{}' -l '{}' -w -o \"-p {port} -k '{}' -c listen_addresses=127.0.0.1 -c ssl=on \
         -c ssl_cert_file='{}' -c ssl_key_file='{}'\" start",
        bin.join("pg_ctl").display(),
        data.display(),
        path.join("server.log").display(),
        path.display(),
        path.join("server.pem").display(),
        path.join("server.key").display(),
    ));
    let server = Server { bin, dir, port };
    assert!(
        started.status.success(),
        "pg_ctl start: {}{}",
        String::from_utf8_lossy(&started.stderr),
        std::fs::read_to_string(server.dir.path().join("server.log")).unwrap_or_default()
    );
    server
}

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
    let server = start();
    let dir = server.dir.path().display().to_string();
    let url = |mode: &str, ca: &str| {
        format!(
            "postgres://postgres@localhost:{}/postgres?sslmode={mode}&sslrootcert={dir}/{ca}",
            server.port
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
        server.port
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
        server.port
    );
    connect(libpq).await.unwrap();
}
