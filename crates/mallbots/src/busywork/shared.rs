//! What the simulated customers share: the HTTP client and its calls (tried again when asked),
//! polling for an order's state, and the tallies the summary is made of.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use reqwest::Method;
use serde_json::Value;

/// How long an order may take to reach a state before it counts as lost.
const PATIENCE: Duration = Duration::from_secs(30);
/// How often an order's state is looked at: first after 2 ms, then half as often again each
/// time up to every 25 ms — fine resolution for fast stages without the polling itself
/// loading the mall (latencies are over-stated by at most a third of the last interval).
const FIRST_POLL: Duration = Duration::from_millis(2);
const LAST_POLL: Duration = Duration::from_millis(25);

pub(super) struct Shared {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) requests: AtomicU64,
    pub(super) started: AtomicU64,
    pub(super) completed: AtomicU64,
    pub(super) lost: AtomicU64,
    pub(super) approved_after: Mutex<Vec<Duration>>,
    pub(super) completed_after: Mutex<Vec<Duration>>,
    pub(super) errors: Mutex<BTreeMap<String, u64>>,
    pub(super) products: Vec<String>,
    pub(super) retry: bool,
}

/// A failed step: its kind, for the summary.
pub(super) struct Failure(pub(super) String);

impl Shared {
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Value,
        what: &str,
    ) -> Result<Value, Failure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.requests.fetch_add(1, Relaxed);
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base));
            if !body.is_null() {
                request = request.json(&body);
            }
            let answer = request.send().await;
            let unanswered = match &answer {
                Err(error) => !error.is_timeout(),
                Ok(answer) => [502, 503, 504].contains(&answer.status().as_u16()),
            };
            if self.retry && unanswered && attempt < 6 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let answer = answer.map_err(|e| {
                Failure(format!(
                    "{what}: {}",
                    if e.is_timeout() {
                        "timed out"
                    } else {
                        "unreachable"
                    }
                ))
            })?;
            let status = answer.status();
            let reply: Value = answer.json().await.unwrap_or(Value::Null);
            return if status.is_success() || (attempt > 1 && status.is_client_error()) {
                Ok(reply)
            } else {
                Err(Failure(format!("{what} {}", status.as_u16())))
            };
        }
    }

    pub(super) async fn id(&self, path: &str, body: Value, what: &str) -> Result<String, Failure> {
        let reply = self.call(Method::POST, path, body, what).await?;
        reply["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Failure(format!("{what}: no id")))
    }

    /// Polls `path` until `pointer` reads `wanted`; a state in `dead_ends` or the patience
    /// running out is a failure.
    pub(super) async fn until(
        &self,
        path: &str,
        pointer: &str,
        wanted: &str,
        dead_ends: &[&str],
    ) -> Result<Value, Failure> {
        let deadline = Instant::now() + PATIENCE;
        let mut pause = FIRST_POLL;
        loop {
            let body = self.call(Method::GET, path, Value::Null, wanted).await;
            if let Ok(body) = body {
                match body.pointer(pointer).and_then(Value::as_str) {
                    Some(state) if state == wanted => return Ok(body),
                    Some(state) if dead_ends.contains(&state) => {
                        return Err(Failure(format!("{wanted}: became {state}")));
                    }
                    _ => {}
                }
            }
            if Instant::now() > deadline {
                return Err(Failure(format!("{wanted}: timed out")));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 3 / 2).min(LAST_POLL);
        }
    }

    pub(super) fn failed(&self, failure: Failure) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(failure.0)
            .or_default() += 1;
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
