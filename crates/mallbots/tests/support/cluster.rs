//! The mall as `scripts/microservices --replicas N --nats-cluster 3` starts it, on free ports
//! and a database prefix of its own, for the tests and the benchmark that need replicas on a
//! JetStream cluster.

#![allow(
    dead_code,
    clippy::print_stderr,
    clippy::unwrap_used,
    reason = "the test and the benchmark use different parts; what the script and the faults do is said on stderr; a failed unwrap is a failed run"
)]

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Every module.
pub(crate) fn modules() -> impl Iterator<Item = &'static str> {
    mallbots::MODULES.iter().map(|module| module.name)
}

/// The running cluster: the script (a process group of its own) and what it keeps.
pub(crate) struct Cluster {
    script: Child,
    data: tempfile::TempDir,
    base: u16,
    prefix: String,
    /// NATS nodes this test started again (the script's own ones it stops itself).
    restarted: Vec<Child>,
}

impl Cluster {
    /// `scripts/microservices --replicas <replicas> --nats-cluster 3`, on free ports.
    pub(crate) fn start(replicas: u32) -> Cluster {
        let data = tempfile::tempdir().unwrap();
        let base = free_block();
        let prefix = format!("cluster_{:08x}_", rand::random::<u32>());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/microservices");
        let mut child = Command::new(script)
            .arg("--replicas")
            .arg(replicas.to_string())
            .args(["--nats-cluster", "3", "--base-port"])
            .arg(base.to_string())
            .arg("--data")
            .arg(data.path())
            .args(["--db-prefix", &prefix])
            .env("MALLBOTS_BIN", env!("CARGO_BIN_EXE_mallbots"))
            .env("PG_SERVER", server())
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "info,tower_http=warn")
            .env_remove("NATS_URL")
            .env_remove("MODULES")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("{line}");
                if line.starts_with("microservices: ready") {
                    let _ = ready_tx.send(());
                }
            }
        });
        let cluster = Cluster {
            script: child,
            data,
            base,
            prefix,
            restarted: Vec::new(),
        };
        if ready_rx.recv_timeout(Duration::from_secs(180)).is_err() {
            panic!("the cluster did not start: {}", cluster.logs_tail());
        }
        cluster
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.base)
    }

    pub(crate) fn nats(&self) -> String {
        (1..=3)
            .map(|k| format!("nats://127.0.0.1:{}", u32::from(self.base) + 1500 + k))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub(crate) fn pid(&self, name: &str) -> String {
        std::fs::read_to_string(self.data.path().join(format!("{name}.pid")))
            .unwrap()
            .trim()
            .to_owned()
    }

    pub(crate) fn signal(&self, signal: &str, name: &str) {
        eprintln!("cluster test: kill -{signal} {name}");
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid(name)])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {name}");
    }

    /// Starts NATS node `k` again from the configuration the script wrote.
    pub(crate) fn restart_nats(&mut self, k: u32) {
        eprintln!("cluster test: starting nats-{k} again");
        let conf = self.data.path().join(format!("nats-{k}.conf"));
        let log =
            std::fs::File::create(self.data.path().join(format!("nats-{k}-again.log"))).unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.restarted.push(child);
    }

    pub(crate) fn database(&self, module: &str) -> String {
        format!("{}/{}{module}", server(), self.prefix)
    }

    pub(crate) fn logs_tail(&self) -> String {
        let mut tail = String::new();
        for entry in std::fs::read_dir(self.data.path()).unwrap().flatten() {
            let path: PathBuf = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let last: Vec<&str> = text.lines().rev().take(5).collect();
                tail += &format!("\n== {}\n{}", path.display(), last.join("\n"));
            }
        }
        tail
    }

    /// SIGTERM to the script, which stops every process; it must report a clean stop.
    pub(crate) fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.script.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.script.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the cluster ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            status.success(),
            "the processes did not stop cleanly: {}",
            self.logs_tail()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.restarted {
            let _ = node.kill();
            let _ = node.wait();
        }
        if self.script.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.script.id().to_string()])
                .status();
            let _ = self.script.wait();
        }
        for module in modules() {
            let _ = Command::new("psql")
                .arg(format!("{}/postgres", server()))
                .args([
                    "-qc",
                    &format!(
                        "DROP DATABASE IF EXISTS {}{module} WITH (FORCE)",
                        self.prefix
                    ),
                ])
                .status();
        }
    }
}

/// The test PostgreSQL server, without a database.
fn server() -> String {
    let url = db::testing::postgres_server();
    let url = url
        .split_once('?')
        .map_or(url.as_str(), |(base, _)| base)
        .to_owned();
    url.rsplit_once('/')
        .map_or(url.clone(), |(server, _)| server.to_owned())
}

/// A base port whose block (gateway, replicas, NATS nodes) is free now.
fn free_block() -> u16 {
    let free = |port: u32| {
        u16::try_from(port)
            .ok()
            .is_some_and(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
    };
    for _ in 0..50 {
        let base = 20_000 + rand::random_range(0..400) * 100;
        let ports = (0..=30)
            .chain(920..=950)
            .chain(1500..=1503)
            .chain(1600..=1603)
            .chain(1700..=1703);
        if ports.map(|offset| base + offset).all(free) {
            return u16::try_from(base).unwrap();
        }
    }
    panic!("no free block of ports for the cluster");
}

impl Cluster {
    /// Every process the script started that still runs: the replicas and the gateway.
    pub(crate) fn pids(&self) -> Vec<u32> {
        std::fs::read_dir(self.data.path())
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension().is_some_and(|e| e == "pid")
                    && !path
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("nats-")
            })
            .filter_map(|path| std::fs::read_to_string(path).ok()?.trim().parse().ok())
            .filter(|pid: &u32| Path::new(&format!("/proc/{pid}")).exists())
            .collect()
    }
}
