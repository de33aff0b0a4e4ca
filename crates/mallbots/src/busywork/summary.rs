//! What a run of busywork did: counts, rates and latency percentiles, as JSON or a table.

use std::{collections::BTreeMap, time::Duration};

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// How many were measured.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The slowest.
    pub max: f64,
}

impl Percentiles {
    pub(super) fn of(mut samples: Vec<Duration>) -> Percentiles {
        samples.sort_unstable();
        let at = |q: f64| {
            let last = samples.len().saturating_sub(1);
            // Nearest rank, as Prometheus and HdrHistogram report.
            let rank = ((q * samples.len() as f64).ceil() as usize).saturating_sub(1);
            samples
                .get(rank.min(last))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        Percentiles {
            count: samples.len(),
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Wall time from the first order to the last one finishing, seconds.
    pub seconds: f64,
    /// Simulated customers.
    pub clients: u32,
    /// HTTP requests sent (set-up excluded).
    pub requests: u64,
    /// Requests per second.
    pub requests_per_second: f64,
    /// Orders checked out.
    pub orders_started: u64,
    /// Orders that reached `completed`.
    pub orders_completed: u64,
    /// Completed orders per second.
    pub orders_completed_per_second: f64,
    /// Orders checked out that never completed: refused on the way, or not seen within 30 s.
    pub orders_lost: u64,
    /// Checkout answered → order `approved`.
    pub checkout_to_approved_ms: Percentiles,
    /// Checkout answered → order `completed` (bot and invoice included).
    pub checkout_to_completed_ms: Percentiles,
    /// Failures by kind (`checkout 500`, `approved: timed out`, …).
    pub errors: BTreeMap<String, u64>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let row = |f: &mut std::fmt::Formatter<'_>, name: &str, value: String| {
            writeln!(f, "{name:<28} {value}")
        };
        row(
            f,
            "duration",
            format!("{:.1} s, {} clients", self.seconds, self.clients),
        )?;
        row(
            f,
            "requests",
            format!("{} ({:.1}/s)", self.requests, self.requests_per_second),
        )?;
        row(f, "orders checked out", self.orders_started.to_string())?;
        row(
            f,
            "orders completed",
            format!(
                "{} ({:.1}/s)",
                self.orders_completed, self.orders_completed_per_second
            ),
        )?;
        row(f, "orders lost", self.orders_lost.to_string())?;
        for (name, p) in [
            ("checkout → approved (ms)", &self.checkout_to_approved_ms),
            ("checkout → completed (ms)", &self.checkout_to_completed_ms),
        ] {
            row(
                f,
                name,
                format!(
                    "p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}  (n = {})",
                    p.p50, p.p95, p.p99, p.max, p.count
                ),
            )?;
        }
        if self.errors.is_empty() {
            row(f, "errors", "none".to_owned())?;
        }
        for (kind, count) in &self.errors {
            row(f, "error", format!("{count} × {kind}"))?;
        }
        Ok(())
    }
}
