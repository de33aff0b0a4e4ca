//! A PostgreSQL server of a test's own, on a free port, for what must not be done to the
//! shared one: stopping it, requiring TLS.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// A PostgreSQL server in a directory of its own; stopped and removed when dropped.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    options: String,
}

/// Runs `script` as the `postgres` user when this is root (PostgreSQL refuses root).
fn as_postgres(script: &str) -> Output {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout == b"0\n");
    let mut command = if root {
        let mut su = Command::new("su");
        su.args(["postgres", "-s", "/bin/sh", "-c", script]);
        su
    } else {
        let mut sh = Command::new("sh");
        sh.args(["-c", script]);
        sh
    };
    command.output().expect("sh runs")
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

impl PrivatePostgres {
    /// Initialises and starts a server; with `tls`, one that takes only TLS connections, with
    /// the certificate [`super::certificates`] makes (`ca.pem` in [`PrivatePostgres::dir`]).
    ///
    /// # Panics
    /// PostgreSQL is not installed, or does not start: the test cannot run.
    pub fn start(tls: bool) -> PrivatePostgres {
        let bin = postgres_bin().expect("PostgreSQL is installed (scripts/services)");
        let dir = std::env::temp_dir().join(format!("mallbots-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        if tls {
            super::certificates(&dir);
        }
        let quiet = |script: &str| {
            let _ = Command::new("sh")
                .args(["-c", script])
                .current_dir(&dir)
                .output();
        };
        quiet(
            "chmod 755 . && (chmod 600 server.key 2>/dev/null; chown -R postgres . 2>/dev/null; true)",
        );
        let data = dir.join("data");
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
        let hba = if tls {
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n"
        } else {
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        };
        std::fs::write(data.join("pg_hba.conf"), hba).expect("a writable data directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut options = format!(
            "-p {port} -k '{}' -c listen_addresses=127.0.0.1",
            dir.display()
        );
        if tls {
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file='{}' -c ssl_key_file='{}'",
                dir.join("server.pem").display(),
                dir.join("server.key").display()
            ));
        }
        let server = PrivatePostgres {
            bin,
            dir,
            port,
            options,
        };
        server.start_again();
        server
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its directory (certificates, log, data).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops it (fast shutdown: sessions are terminated, as in a restart).
    pub fn stop(&self) {
        let _ = as_postgres(&format!(
            "'{}' -D '{}' -m fast -w stop",
            self.bin.join("pg_ctl").display(),
            self.dir.join("data").display()
        ));
    }

    /// Starts it (again).
    ///
    /// # Panics
    /// It does not start.
    pub fn start_again(&self) {
        let started = as_postgres(&format!(
            "'{}' -D '{}' -l '{}' -w -o \"{}\" start",
            self.bin.join("pg_ctl").display(),
            self.dir.join("data").display(),
            self.dir.join("server.log").display(),
            self.options
        ));
        assert!(
            started.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&format!(
            "'{}' -D '{}' -m immediate stop",
            self.bin.join("pg_ctl").display(),
            self.dir.join("data").display()
        ));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
