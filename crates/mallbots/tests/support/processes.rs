//! `mallbots` processes started the way an operator would, for the tests and benchmarks that
//! need real processes (microservices, the deployment benchmark).

#![allow(dead_code, reason = "each test or bench uses part of it")]

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// One running process, its addresses, and the last lines it logged (for a failure message).
pub(crate) struct Process {
    pub(crate) name: String,
    pub(crate) child: Child,
    pub(crate) http: String,
    pub(crate) grpc: String,
    log: Arc<Mutex<Vec<String>>>,
}

/// Starts `mallbots args…` with `env` and waits (30 s at most) for its start line.
pub(crate) fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mallbots"));
    for (key, _) in std::env::vars() {
        if ["PG_", "WEB_", "RPC_", "NATS_", "GATEWAY_"]
            .iter()
            .any(|prefix| key.starts_with(prefix))
            || key == "MODULES"
        {
            command.env_remove(key);
        }
    }
    let mut child = command
        .args(args)
        .env("WEB_HOST", "127.0.0.1")
        .env("WEB_PORT", "0")
        .env("RPC_HOST", "127.0.0.1")
        .env("RPC_PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "info,tower_http=warn")
        // The caller's settings win over these defaults (a fixed port for a restart, say).
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let kept = Arc::clone(&log);
    // Drains the pipe for the process's whole life, so logging never blocks it.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let message = &entry["fields"]["message"];
            if message == "mallbots started" || message == "gateway started" {
                let field =
                    |key: &str| entry["fields"][key].as_str().unwrap_or_default().to_owned();
                let _ = started_tx.send((field("http"), field("grpc")));
            }
            let mut kept = kept.lock().unwrap();
            kept.push(line);
            // The last 50 lines, and every error before them.
            if kept.len() > 50 {
                let oldest = kept.len() - 51;
                if !kept[oldest].contains("\"level\":\"ERROR\"") {
                    kept.remove(oldest);
                }
            }
        }
    });
    let Ok((http, grpc)) = started_rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        panic!("{name} did not start: {:#?}", log.lock().unwrap());
    };
    Process {
        name: name.to_owned(),
        child,
        http,
        grpc,
        log,
    }
}

impl Process {
    /// Resident memory now and at its peak, in KiB.
    pub(crate) fn memory(&self) -> (u64, u64) {
        memory_of(self.child.id())
    }

    /// The lines it logged at ERROR (for a failure message).
    pub(crate) fn errors(&self) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|line| line.contains("\"level\":\"ERROR\""))
            .cloned()
            .collect()
    }

    /// SIGTERM, then waits (30 s at most) for the exit.
    pub(crate) fn stop(mut self) -> (String, ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = self.log.lock().unwrap().clone();
                return (self.name.clone(), status, log);
            }
            assert!(Instant::now() < deadline, "{} ignored SIGTERM", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A failed test must not leave processes behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of process `pid` now and at its peak, in KiB (`/proc/<pid>/status`).
pub(crate) fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The mall as nine processes (each with its own fresh PostgreSQL database, a fresh JetStream
/// stream between them) and the gateway in front, started in the order an operator would:
/// the gRPC providers first, so the others can be told where they are. Each also gets `env`,
/// and `OTEL_SERVICE_NAME=mallbots-<module>` (used only when spans are exported).
pub(crate) struct Microservices {
    /// The nine modules, then the gateway (last).
    pub(crate) processes: Vec<Process>,
    /// `http://<gateway>`.
    pub(crate) url: String,
    /// Keep until the processes have stopped: their databases and stream.
    pub(crate) guards: Guards,
}

/// The databases and the stream of a [`Microservices`], removed when dropped.
pub(crate) struct Guards {
    _databases: Vec<db::testing::Guard>,
    _stream: messaging::testing::StreamGuard,
}

pub(crate) async fn microservices(env: &[(&str, &str)]) -> Microservices {
    let nats = messaging::testing::nats_url();
    let stream = messaging::testing::unique_stream();
    let guard = messaging::testing::StreamGuard::new(nats.clone(), stream.clone());
    let (providers, consumers): (Vec<_>, Vec<_>) = mallbots::MODULES
        .iter()
        .partition(|m| ["stores", "customers", "payments"].contains(&m.name));
    let (mut databases, mut processes) = (Vec::new(), Vec::new());
    let mut rpc_services: Vec<String> = Vec::new();
    for module in providers.iter().chain(&consumers) {
        let (target, database) = db::testing::fresh_target(db::Backend::Postgres).await;
        databases.push(database);
        let db::Target::Postgres(url) = target else {
            unreachable!("a PostgreSQL target")
        };
        let rpc = rpc_services.join(",");
        let service = format!("mallbots-{}", module.name);
        let own = [
            ("OTEL_SERVICE_NAME", service.as_str()),
            ("MODULES", module.name),
            ("PG_CONN", url.as_str()),
            ("NATS_URL", nats.as_str()),
            ("NATS_STREAM", stream.as_str()),
            ("RPC_SERVICES", rpc.as_str()),
            ("DB_MAX_CONNECTIONS", "4"),
        ];
        let process = start(module.name, &[], &[&own[..], env].concat());
        if providers.iter().any(|p| p.name == module.name) {
            rpc_services.push(format!("{}={}", module.name.to_uppercase(), process.grpc));
        }
        processes.push(process);
    }
    let upstreams: Vec<String> = processes
        .iter()
        .map(|p| format!("{}=http://{}", p.name, p.http))
        .collect();
    let upstreams = upstreams.join(",");
    let own = [
        ("GATEWAY_UPSTREAMS", upstreams.as_str()),
        ("OTEL_SERVICE_NAME", "mallbots-gateway"),
    ];
    let gateway = start("gateway", &["gateway"], &[&own[..], env].concat());
    let url = format!("http://{}", gateway.http);
    processes.push(gateway);
    Microservices {
        processes,
        url,
        guards: Guards {
            _databases: databases,
            _stream: guard,
        },
    }
}
