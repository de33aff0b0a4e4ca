//! `mallbots gateway`: one HTTP port for a mall run as one process per module, as the book's
//! nginx gave its microservices. `/api/<module>…` goes to that module's HTTP server, and
//! `/console…` to the console module's; the gateway answers `/liveness` itself and
//! `/readiness` for every upstream. Answers are streamed through (the console's live events
//! among them): the request timeout bounds the wait for an answer's head, not its body.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::any,
};
use host::ApiError;

/// Module name → base URLs of its HTTP servers (one per replica).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upstreams(pub BTreeMap<&'static str, Vec<String>>);

/// Parses `stores=http://stores:8080,baskets=http://baskets-1:8080|http://baskets-2:8080`.
///
/// # Errors
/// An unknown module, a module listed twice, or a URL that is not `http://host:port`.
pub fn parse_upstreams(value: &str) -> Result<Upstreams, String> {
    let mut upstreams = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, url) = entry
            .split_once('=')
            .ok_or_else(|| format!("{entry:?} is not module=url"))?;
        let module = crate::MODULES
            .iter()
            .find(|m| m.name == name.trim())
            .ok_or_else(|| format!("unknown module {name:?} in GATEWAY_UPSTREAMS"))?;
        let mut urls = Vec::new();
        for url in url.split('|') {
            let url = url.trim().trim_end_matches('/');
            if !url.starts_with("http://") || url.len() <= "http://".len() {
                return Err(format!("{name}: {url:?} is not an http:// URL"));
            }
            urls.push(url.to_owned());
        }
        if upstreams.insert(module.name, urls).is_some() {
            return Err(format!(
                "module {name:?} is listed twice in GATEWAY_UPSTREAMS"
            ));
        }
    }
    if upstreams.is_empty() {
        return Err("GATEWAY_UPSTREAMS names no module".to_owned());
    }
    Ok(Upstreams(upstreams))
}

/// Settings of `mallbots gateway`.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// Where each module's HTTP server is: `stores=http://stores:8080,baskets=http://baskets:8080`;
    /// a module's replicas joined by `|`. A request to `/api/<module>…` is passed to that
    /// module (its replicas in turn; one that refuses the connection is skipped).
    #[arg(long, env = "GATEWAY_UPSTREAMS", value_parser = parse_upstreams)]
    pub upstreams: Upstreams,
    /// Process settings (WEB_HOST/WEB_PORT, timeouts, logging; the database ones are unused).
    #[command(flatten)]
    pub host: host::Config,
}

struct Gateway {
    upstreams: Upstreams,
    client: reqwest::Client,
    timeout: std::time::Duration,
    /// Turns through each module's replicas.
    turn: std::sync::atomic::AtomicUsize,
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), and the length
/// the client library recomputes.
const HOP_BY_HOP: &[header::HeaderName] = &[
    header::CONNECTION,
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

/// Serves until SIGINT/SIGTERM.
///
/// # Errors
/// The port cannot be bound or the server fails.
pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().build()?;
    let gateway = Arc::new(Gateway {
        upstreams: args.upstreams.clone(),
        client,
        timeout: args.host.request_timeout,
        turn: std::sync::atomic::AtomicUsize::new(0),
    });
    let checks = args
        .upstreams
        .0
        .iter()
        .map(|(name, urls)| {
            let client = gateway.client.clone();
            let urls: Vec<String> = urls.iter().map(|url| format!("{url}/readiness")).collect();
            // Ready when any replica is.
            let check: host::Check = Arc::new(move || {
                let (client, urls) = (client.clone(), urls.clone());
                Box::pin(async move {
                    let mut why = Vec::new();
                    for url in &urls {
                        let asked = client.get(url).timeout(Duration::from_secs(5)).send();
                        match asked.await {
                            Ok(answer) if answer.status().is_success() => return Ok(()),
                            Ok(answer) => why.push(format!("{url}: {}", answer.status())),
                            Err(error) => why.push(format!("{url}: {error}")),
                        }
                    }
                    Err(why.join("; "))
                })
            });
            (*name, check)
        })
        .collect();
    let rest = axum::Router::new()
        .route("/api/{*path}", any(proxy))
        .route("/console", any(proxy))
        .route("/console/{*path}", any(proxy))
        .with_state(gateway);
    let app = host::http_edge(
        rest,
        utoipa::openapi::OpenApi::default(),
        checks,
        &args.host,
    )?;
    let ip = args
        .host
        .auth
        .bind_address(args.host.web_host, "the gateway (WEB_HOST)")?;
    let listener = tokio::net::TcpListener::bind((ip, args.host.web_port)).await?;
    tracing::info!(
        http = %listener.local_addr()?,
        upstreams = args.upstreams.0.len(),
        "gateway started"
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(async move {
        host::shutdown_signal().await;
        stopping.cancel();
    });
    host::serve::serve(listener, app, args.host.http_limits(), stop).await?;
    Ok(())
}

/// The module a path is for, when it stays under `/api/<module>`: no `.` or `..` segment,
/// written plainly or percent-encoded (an upstream's URL parser would resolve either, and
/// `/api/stores/../../metrics` would reach the module's `/metrics`), and no encoded or
/// backward slash that some server could read as a separator.
fn module_of(path: &str) -> Option<&str> {
    if path == "/console" || path.starts_with("/console/") {
        // The console's page and assets: no dots, as under /api.
        return module_of(&format!("/api{path}")).map(|_| "console");
    }
    let rest = path.strip_prefix("/api/")?;
    let lowered = rest.to_ascii_lowercase();
    if lowered.contains("%2f") || lowered.contains("%5c") || lowered.contains('\\') {
        return None;
    }
    let dots = lowered
        .split('/')
        .map(|segment| segment.replace("%2e", "."))
        .any(|segment| segment == "." || segment == "..");
    let module = rest.split('/').next()?;
    (!dots && !module.is_empty()).then_some(module)
}

async fn proxy(
    State(gateway): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(module) = module_of(uri.path()) else {
        return ApiError::invalid_argument("the path must stay under /api/<module> or /console")
            .into_response();
    };
    let Some(bases) = gateway.upstreams.0.get(module) else {
        return ApiError::not_found("Not Found").into_response();
    };
    let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let mut forwarded = headers;
    for name in HOP_BY_HOP {
        forwarded.remove(name);
    }
    // The module's span is a child of the gateway's, not of the caller's.
    telemetry::inject(&mut telemetry::Headers(&mut forwarded));
    let first = gateway
        .turn
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut answer = None;
    // A replica that refuses the connection never saw the request: the next one is asked.
    for base in bases
        .iter()
        .cycle()
        .skip(first % bases.len())
        .take(bases.len())
    {
        let sent = gateway
            .client
            .request(method.clone(), format!("{base}{target}"))
            .headers(forwarded.clone())
            .body(body.clone())
            .send();
        match tokio::time::timeout(gateway.timeout, sent).await {
            Ok(Ok(received)) => {
                answer = Some(received);
                break;
            }
            Err(_) => {
                return ApiError::new(
                    tonic::Code::DeadlineExceeded,
                    format!("{module} did not answer in time"),
                )
                .into_response();
            }
            Ok(Err(error)) if error.is_connect() => {
                tracing::warn!(module, %base, %error, "upstream replica unreachable; trying another");
            }
            Ok(Err(error)) => {
                tracing::warn!(module, %error, "upstream failed");
                break;
            }
        }
    }
    let Some(answer) = answer else {
        return ApiError::new(tonic::Code::Unavailable, format!("{module} is unavailable"))
            .into_response();
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = answer.headers().clone();
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    let body = axum::body::Body::from_stream(answer.bytes_stream());
    (status, headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::module_of;

    #[test]
    fn paths_stay_under_their_module() {
        assert_eq!(module_of("/api/stores"), Some("stores"));
        assert_eq!(module_of("/api/stores/s-1/products"), Some("stores"));
        assert_eq!(module_of("/api/baskets/b.1/addItem"), Some("baskets"));
        assert_eq!(module_of("/console"), Some("console"));
        assert_eq!(module_of("/console/console.js"), Some("console"));
        assert_eq!(module_of("/console/../metrics"), None);
        for escape in [
            "/api/stores/../../metrics",
            "/api/stores/%2e%2e/%2e%2e/metrics",
            "/api/stores/%2E%2e/x",
            "/api/stores/.%2E/x",
            "/api/stores/./x",
            "/api/../metrics",
            "/api/stores/a%2fb",
            "/api/stores/a%5Cb",
            "/api/stores/a\\b",
            "/api/",
            "/metrics",
            "/consoles",
        ] {
            assert_eq!(module_of(escape), None, "{escape}");
        }
    }
}
