//! The metrics of one subscription, by message name.

use std::time::Duration;

use super::Subscription;

/// The labels of one subscription's metrics for one message name.
pub(super) struct Counted([(&'static str, String); 3]);

impl Counted {
    /// The families every subscription reports, started at zero for the names it accepts so
    /// a dashboard shows "no dead letters" rather than "no data".
    const COUNTERS: [&'static str; 5] = [
        "messages_received_total",
        "messages_handled_total",
        "messages_duplicates_total",
        "messages_failed_total",
        "messages_dead_lettered_total",
    ];

    pub(super) fn new(sub: &Subscription, name: &str) -> Counted {
        Counted([
            ("module", sub.schema.to_owned()),
            ("consumer", sub.consumer.clone()),
            ("name", name.to_owned()),
        ])
    }

    pub(super) fn count(&self, family: &'static str) {
        metrics::counter!(family, &self.0).increment(1);
    }

    pub(super) fn record(&self, family: &'static str, elapsed: Duration) {
        metrics::histogram!(family, &self.0).record(elapsed.as_secs_f64());
    }

    pub(super) fn start(sub: &Subscription) {
        for name in &sub.names {
            let labels = Counted::new(sub, name);
            for family in Counted::COUNTERS {
                metrics::counter!(family, &labels.0).increment(0);
            }
        }
    }
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Handled,
    Duplicate,
}

impl Outcome {
    /// The counter this outcome adds to.
    pub(super) fn counter(self) -> &'static str {
        match self {
            Outcome::Handled => "messages_handled_total",
            Outcome::Duplicate => "messages_duplicates_total",
        }
    }
}
