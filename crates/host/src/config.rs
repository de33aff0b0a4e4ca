//! Settings, from flags or the book's environment variables (`--help` lists them all).

mod parse;

use std::{collections::BTreeMap, net::IpAddr, path::PathBuf, time::Duration};

pub use parse::parse_duration;
use parse::{
    parse_ack_wait, parse_count, parse_lease, parse_log_level, parse_port, parse_rpc_services,
    parse_stream,
};

/// How the process is configured. Every field has a flag and an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address the HTTP server listens on (default: all interfaces with auth on, loopback
    /// with auth off).
    #[arg(long, env = "WEB_HOST")]
    pub web_host: Option<IpAddr>,
    /// Port of the HTTP server (REST, health, docs); `8080` or the book's `:8080`.
    #[arg(long, env = "WEB_PORT", default_value = "8080", value_parser = parse_port)]
    pub web_port: u16,
    /// Address the gRPC server listens on (default as `WEB_HOST`).
    #[arg(long, env = "RPC_HOST")]
    pub rpc_host: Option<IpAddr>,
    /// Port of the gRPC server; `9000` or the book's `:9000`.
    #[arg(long, env = "RPC_PORT", default_value = "9000", value_parser = parse_port)]
    pub rpc_port: u16,
    /// Where other modules' gRPC services are: `STORES=stores:9000,CUSTOMERS=customers:9000`.
    /// A service not listed is this process's own gRPC address (the monolith). Replicas
    /// without a load balancer in front: their addresses joined by `|`.
    #[arg(long, env = "RPC_SERVICES", default_value = "", value_parser = parse_rpc_services)]
    pub rpc_services: RpcServices,
    /// PostgreSQL connection (URL or libpq `key=value` string). Unset: embedded SQLite in DATA_DIR.
    #[arg(long, env = "PG_CONN", hide_env_values = true)]
    pub pg_conn: Option<String>,
    /// Directory of the embedded SQLite files (used when PG_CONN is unset).
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// NATS server with JetStream (`nats://host:4222`). Unset: the embedded broker, a durable
    /// log in the database.
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,
    /// A NATS credentials file (user JWT and nkey seed), as `nsc` writes it.
    #[arg(long, env = "NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// A NATS nkey seed (`SU…`).
    #[arg(long, env = "NATS_NKEY", hide_env_values = true)]
    pub nats_nkey: Option<String>,
    /// NATS user (with NATS_PASSWORD).
    #[arg(long, env = "NATS_USER")]
    pub nats_user: Option<String>,
    /// NATS password (with NATS_USER).
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// CA that signed the NATS server's certificate; TLS is then required.
    #[arg(long, env = "NATS_CA")]
    pub nats_ca: Option<PathBuf>,
    /// Client certificate and key for a NATS server that verifies clients.
    #[arg(long, env = "NATS_TLS_CERT", requires = "nats_tls_key")]
    pub nats_tls_cert: Option<PathBuf>,
    /// Key of NATS_TLS_CERT.
    #[arg(long, env = "NATS_TLS_KEY", requires = "nats_tls_cert")]
    pub nats_tls_key: Option<PathBuf>,
    /// JetStream stream holding every subject (`<stream>.>`).
    #[arg(long, env = "NATS_STREAM", default_value = "mallbots", value_parser = parse_stream)]
    pub nats_stream: String,
    /// Oldest message the stream keeps (`0s`: no limit, as in the book); the embedded log
    /// keeps the same (consumed messages older than this are deleted). Read models can be
    /// rebuilt (`mallbots replay`) only from what is kept.
    #[arg(long, env = "NATS_STREAM_MAX_AGE", default_value = "0s", value_parser = parse_duration)]
    pub nats_stream_max_age: Duration,
    /// Most bytes the stream keeps (`0`: no limit, as in the book).
    #[arg(long, env = "NATS_STREAM_MAX_BYTES", default_value = "0")]
    pub nats_stream_max_bytes: i64,
    /// Copies of the stream a JetStream cluster keeps (3 survives the loss of a node; 1 on a
    /// single server). Applied to an existing stream when it differs.
    #[arg(long, env = "NATS_STREAM_REPLICAS", default_value_t = 1,
        value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_stream_replicas: u8,
    /// URL notifications are also POSTed to as JSON (retried until delivered); unset: the log only.
    #[arg(long, env = "NOTIFICATIONS_WEBHOOK")]
    pub notifications_webhook: Option<String>,
    /// Secret the webhook's deliveries are signed with (`X-Mallbots-Signature`, HMAC-SHA256
    /// of `<X-Mallbots-Timestamp>.<body>`); unset: unsigned, with a warning at start.
    #[arg(long, env = "NOTIFICATIONS_WEBHOOK_SECRET", hide_env_values = true)]
    pub notifications_webhook_secret: Option<String>,
    /// A CA (PEM) the webhook's HTTPS certificate may also be signed by, beside the system's.
    #[arg(long, env = "NOTIFICATIONS_WEBHOOK_CA")]
    pub notifications_webhook_ca: Option<PathBuf>,
    /// Most database connections this process opens (default: 16 on PostgreSQL; 4 on SQLite,
    /// where writers take turns anyway and each connection attaches every module's file).
    #[arg(long, env = "DB_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_max_connections: Option<u32>,
    /// How long to wait for a database connection (and for the server at start-up).
    #[arg(long, env = "DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub db_acquire_timeout: Duration,
    /// Longest a single SQL statement may run on PostgreSQL (`0s`: no limit).
    #[arg(long, env = "DB_STATEMENT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub db_statement_timeout: Duration,
    /// Aggregates each subscription handles at once (its lanes); one aggregate's messages are
    /// always handled in order, one at a time (default 1: a busy lane's messages gather into
    /// batches; more lanes split them, and pay only when the database is far away).
    #[arg(long, env = "CONSUMER_CONCURRENCY", value_parser = parse_count)]
    pub consumer_concurrency: Option<usize>,
    /// Most messages a subscription handles in one transaction.
    #[arg(long, env = "CONSUMER_BATCH", default_value_t = messaging::subscription::DEFAULT_BATCH,
        value_parser = parse_count)]
    pub consumer_batch: usize,
    /// How soon a message taken but neither settled nor renewed (its process crashed) is
    /// delivered again; a live process renews what it holds every third of it.
    #[arg(long, env = "CONSUMER_ACK_WAIT", default_value = "3s", value_parser = parse_ack_wait)]
    pub consumer_ack_wait: Duration,
    /// Parts each subscription is split into by aggregate key on PostgreSQL, where replicas of
    /// a module may share its consumers: each part is handled by one replica at a time, in
    /// stream order, and replicas take their fair share of the parts (default 1: one replica
    /// handles a subscription, the others stand by). Every replica of a module must agree.
    /// 0: this process is the module's only one — no leases, no fence (two such processes on
    /// one database would handle an aggregate's messages side by side).
    #[arg(long, env = "CONSUMER_PARTITIONS", default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(0..=64))]
    pub consumer_partitions: u32,
    /// How long a replica's hold on a part lasts without renewal (renewed every quarter of
    /// it): a dead replica's parts are taken over this soon.
    #[arg(long, env = "CONSUMER_LEASE", default_value = "3s", value_parser = parse_lease)]
    pub consumer_lease: Duration,
    /// Log filter: TRACE, DEBUG, INFO, WARN, ERROR, or `tracing` directives (`info,sqlx=warn`).
    #[arg(long, env = "LOG_LEVEL", default_value = "INFO", value_parser = parse_log_level)]
    pub log_level: String,
    /// Log output: human-readable lines or one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
    /// How long in-flight work may take to finish after SIGINT/SIGTERM.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Longest an HTTP request may take before it is answered 504.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Longest a client may take to send a request's headers (and an idle keep-alive connection
    /// may wait for the next request) before the connection is closed.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub http_header_timeout: Duration,
    /// Most HTTP connections open at once; more wait to be accepted.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 1024,
        value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub http_max_connections: u32,
    /// Who may call (bearer JWTs).
    #[command(flatten)]
    pub auth: crate::auth::AuthConfig,
    /// Largest HTTP request body accepted, in bytes.
    #[arg(long, env = "REQUEST_BODY_LIMIT", default_value = "1048576")]
    pub request_body_limit: usize,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Logical gRPC service names (upper case) mapped to `host:port`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RpcServices(pub BTreeMap<String, String>);

impl Config {
    /// The database the settings point at.
    pub fn database(&self) -> db::Target {
        match &self.pg_conn {
            Some(conn) if !conn.trim().is_empty() => db::Target::Postgres(conn.clone()),
            _ => db::Target::Sqlite(self.data_dir.clone()),
        }
    }

    /// What each HTTP server tolerates.
    pub fn http_limits(&self) -> crate::serve::Limits {
        crate::serve::Limits {
            header_read_timeout: self.http_header_timeout,
            max_connections: usize::try_from(self.http_max_connections).unwrap_or(usize::MAX),
        }
    }

    /// Who this process is to NATS.
    ///
    /// # Errors
    /// A user without a password or the other way round.
    pub fn nats_auth(&self) -> anyhow::Result<messaging::NatsAuth> {
        let user = match (&self.nats_user, &self.nats_password) {
            (Some(user), Some(password)) => Some((user.clone(), password.clone())),
            (None, None) => None,
            _ => anyhow::bail!("NATS_USER and NATS_PASSWORD go together"),
        };
        Ok(messaging::NatsAuth {
            creds: self.nats_creds.clone(),
            nkey: self.nats_nkey.clone(),
            user,
            ca: self.nats_ca.clone(),
            client_certificate: self.nats_tls_cert.clone().zip(self.nats_tls_key.clone()),
        })
    }

    /// Pool settings.
    pub fn database_options(&self) -> db::Options {
        let default = match self.database() {
            db::Target::Postgres(_) => 16,
            db::Target::Sqlite(_) => 4,
        };
        db::Options {
            max_connections: self.db_max_connections.unwrap_or(default),
            acquire_timeout: self.db_acquire_timeout,
            statement_timeout: (!self.db_statement_timeout.is_zero())
                .then_some(self.db_statement_timeout),
        }
    }

    /// A configuration for tests: loopback, ports chosen by the OS, `target` as the database.
    pub fn for_tests(target: db::Target) -> Config {
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let (pg_conn, data_dir) = match target {
            db::Target::Postgres(conn) => (Some(conn), PathBuf::from("./data")),
            db::Target::Sqlite(dir) => (None, dir),
        };
        Config {
            web_host: Some(loopback),
            web_port: 0,
            rpc_host: Some(loopback),
            rpc_port: 0,
            rpc_services: RpcServices::default(),
            nats_url: None,
            nats_creds: None,
            nats_nkey: None,
            nats_user: None,
            nats_password: None,
            nats_ca: None,
            nats_tls_cert: None,
            nats_tls_key: None,
            nats_stream: "mallbots".into(),
            nats_stream_max_age: Duration::ZERO,
            nats_stream_max_bytes: 0,
            nats_stream_replicas: 1,
            notifications_webhook: None,
            notifications_webhook_secret: None,
            notifications_webhook_ca: None,
            pg_conn,
            data_dir,
            db_max_connections: Some(8),
            db_acquire_timeout: Duration::from_secs(5),
            db_statement_timeout: Duration::from_secs(30),
            consumer_concurrency: None,
            consumer_batch: messaging::subscription::DEFAULT_BATCH,
            consumer_ack_wait: messaging::subscription::DEFAULT_ACK_WAIT,
            consumer_partitions: 1,
            consumer_lease: messaging::ownership::DEFAULT_LEASE,
            log_level: "INFO".into(),
            log_format: LogFormat::Pretty,
            shutdown_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            request_body_limit: 1 << 20,
            http_header_timeout: Duration::from_secs(10),
            http_max_connections: 1024,
            auth: crate::auth::AuthConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_take_the_books_leading_colon() {
        assert_eq!(parse_port(":8080"), Ok(8080));
        assert_eq!(parse_port("9000"), Ok(9000));
        assert!(parse_port("abc").is_err());
        assert!(parse_port("70000").is_err());
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10 parsecs").is_err());
    }

    #[test]
    fn counts_are_whole_numbers_from_one() {
        assert_eq!(parse_count("16"), Ok(16));
        for bad in ["0", "-1", "many", "1025", ""] {
            assert!(parse_count(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_pool_size_defaults_by_backend_and_a_setting_wins() {
        let mut config = Config::for_tests(db::Target::Sqlite(PathBuf::from("data")));
        config.db_max_connections = None;
        assert_eq!(config.database_options().max_connections, 4);
        config.pg_conn = Some("postgres://localhost/mallbots".into());
        assert_eq!(config.database_options().max_connections, 16);
        config.db_max_connections = Some(7);
        assert_eq!(config.database_options().max_connections, 7);
    }

    #[test]
    fn stream_names_cannot_break_subjects() {
        assert_eq!(parse_stream("mallbots").as_deref(), Ok("mallbots"));
        assert!(parse_stream("a.b").is_err());
        assert!(parse_stream("a>").is_err());
        assert!(parse_stream("").is_err());
    }

    #[test]
    fn rpc_services_are_upper_cased_and_checked() {
        let services = parse_rpc_services("stores=stores:9000, CUSTOMERS=customers:9000").unwrap();
        assert_eq!(services.0["STORES"], "stores:9000");
        assert_eq!(services.0["CUSTOMERS"], "customers:9000");
        assert_eq!(parse_rpc_services(""), Ok(RpcServices::default()));
        assert!(parse_rpc_services("STORES").is_err());
        assert!(parse_rpc_services("STORES=nowhere").is_err());
    }

    #[test]
    fn log_levels_accept_the_books_names_and_directives() {
        assert_eq!(parse_log_level("DEBUG").as_deref(), Ok("debug"));
        assert_eq!(parse_log_level("PANIC").as_deref(), Ok("error"));
        assert_eq!(
            parse_log_level("info,sqlx=warn").as_deref(),
            Ok("info,sqlx=warn")
        );
        assert!(parse_log_level("info,sqlx=loud").is_err());
    }
}
