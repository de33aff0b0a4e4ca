//! What an operator sees, on each backend: one checkout is one trace through every module it
//! reaches; `/metrics` counts what a whole order lifecycle did; the Grafana dashboard under
//! `deploy/` queries only metrics the mall really exports.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    sync::OnceLock,
};

use opentelemetry::trace::TraceId;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use testkit::{Backend, TestApp, spawn_app, spawn_app_counted, until};
use tracing_subscriber::prelude::*;

db::backend_tests!(
    a_checkout_is_one_trace_through_every_module,
    the_lifecycle_is_counted,
    the_dashboard_queries_only_exported_metrics,
);

/// The spans every test in this process records (one global subscriber per process).
fn spans() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        // The same layer `main` installs when OTEL_EXPORTER_OTLP_ENDPOINT is set.
        tracing_subscriber::registry()
            .with(telemetry::layer(&provider))
            .try_init()
            .unwrap();
        exporter
    })
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

async fn a_checkout_is_one_trace_through_every_module(backend: Backend) {
    let exporter = spans();
    let app = spawn_app(&["all"], backend).await;
    let mall = app.mall(100.0).await;
    let order = app.checkout(&mall, 1).await;
    app.order_is(&order, "approved").await;

    let checkout = |spans: &[SpanData]| -> Option<TraceId> {
        spans
            .iter()
            .find(|span| {
                attribute(span, "http.route").as_deref() == Some("/api/baskets/{id}/checkout")
            })
            .map(|span| span.span_context.trace_id())
    };
    let expected = BTreeSet::from(testkit::CHECKOUT_REACHES);
    // Spans are exported as they end; the last handlers may still be finishing.
    let trace = until(|| async {
        let spans = exporter.get_finished_spans().unwrap();
        let trace = checkout(&spans).ok_or("no checkout span")?;
        let in_trace: Vec<&SpanData> = spans
            .iter()
            .filter(|span| span.span_context.trace_id() == trace)
            .collect();
        let modules: BTreeSet<String> = in_trace
            .iter()
            .filter_map(|span| attribute(span, "module"))
            .collect();
        let reached: BTreeSet<&str> = modules.iter().map(String::as_str).collect();
        // One root: every other span's parent is in the trace (a parent ends after its children).
        let ids: HashSet<_> = in_trace
            .iter()
            .map(|span| span.span_context.span_id())
            .collect();
        let roots: Vec<_> = in_trace
            .iter()
            .filter(|span| !ids.contains(&span.parent_span_id))
            .map(|span| span.name.to_string())
            .collect();
        if expected.is_subset(&reached) && roots == ["PUT /api/baskets/{id}/checkout"] {
            Ok(in_trace.into_iter().cloned().collect::<Vec<_>>())
        } else {
            Err(format!(
                "the checkout's trace reached {reached:?}, not yet {:?}; its roots: {roots:?}",
                expected.difference(&reached).collect::<Vec<_>>()
            ))
        }
    })
    .await;

    let names: BTreeSet<String> = trace.iter().map(|span| span.name.to_string()).collect();
    for expected in [
        "PUT /api/baskets/{id}/checkout",
        "baskets.checkout",
        "paymentspb.PaymentsService/GetPayment",
        "payments.payment",
        "ordering.execute_in",
        "append",
        "stage",
        "publish basketsapi.BasketCheckedOut",
        "handle basketsapi.BasketCheckedOut",
        "saga start",
        "handle customersapi.AuthorizeCustomer",
        "handle depotapi.CreateShoppingListCommand",
        "handle paymentsapi.ConfirmPayment",
        "handle ordersapi.ApproveOrder",
        "saga reply",
    ] {
        assert!(
            names.contains(expected),
            "no {expected:?} span in the trace: {names:?}"
        );
    }
}

/// A whole order: the sample mall, a checkout, the bot's shopping, the invoice paid.
async fn lifecycle(app: &TestApp) -> String {
    let mall = app.mall(100.0).await;
    let order = app.checkout(&mall, 2).await;
    app.pick(&order).await;
    app.pay(&order).await;
    app.order_is(&order, "completed").await;
    order
}

/// One scrape: each sample's value by metric name and labels (sorted, as written).
#[derive(Debug, Default)]
struct Scrape(BTreeMap<String, BTreeMap<String, f64>>);

impl Scrape {
    async fn of(app: &TestApp) -> Scrape {
        let answer = app.get("/metrics").await;
        assert_eq!(answer.status(), 200);
        let content_type = answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        Scrape::parse(&answer.text().await.unwrap())
    }

    fn parse(text: &str) -> Scrape {
        let mut samples: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => {
                    let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                    labels.sort_unstable();
                    (name, labels.join(","))
                }
                None => (series, String::new()),
            };
            samples
                .entry(name.to_owned())
                .or_default()
                .insert(labels, value.parse().unwrap());
        }
        Scrape(samples)
    }

    /// The sum over the series of `name` whose labels include every one of `with`.
    fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.0.get(name).map_or(0.0, |series| {
            series
                .iter()
                .filter(|(labels, _)| {
                    with.iter().all(|(key, value)| {
                        labels
                            .split(',')
                            .any(|label| label == format!("{key}=\"{value}\""))
                    })
                })
                .map(|(_, value)| value)
                .sum()
        })
    }

    fn names(&self) -> BTreeSet<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

async fn the_lifecycle_is_counted(backend: Backend) {
    let app = spawn_app_counted(&["all"], backend, |_| {}).await;
    let before = Scrape::of(&app).await;
    lifecycle(&app).await;
    // Handlers after "completed" (notifications, search) may still be running.
    let after = until(|| async {
        let after = Scrape::of(&app).await;
        let handled = |scrape: &Scrape| {
            scrape.sum(
                "messages_handled_total",
                &[("name", "ordersapi.OrderCompleted")],
            )
        };
        // Search records the order as completed.
        if handled(&after) - handled(&before) >= 1.0 {
            Ok(after)
        } else {
            Err("OrderCompleted not yet handled by search".to_owned())
        }
    })
    .await;
    let delta = |name: &str, with: &[(&str, &str)]| after.sum(name, with) - before.sum(name, with);

    // Business counters.
    assert_eq!(delta("stores_created_total", &[]), 1.0);
    assert_eq!(delta("baskets_checked_out_total", &[]), 1.0);
    assert_eq!(
        delta("orders_finished_total", &[("status", "completed")]),
        1.0
    );
    assert_eq!(
        delta("orders_finished_total", &[("status", "rejected")]),
        0.0
    );
    assert_eq!(delta("sagas_started_total", &[]), 1.0);
    assert_eq!(
        delta("saga_outcomes_total", &[("outcome", "completed")]),
        1.0
    );
    assert_eq!(
        delta("saga_outcomes_total", &[("outcome", "compensated")]),
        0.0
    );

    // Messages: one checkout event published by baskets and handled once by ordering; the
    // saga's five commands (authorize, create list, confirm payment, initiate shopping, approve).
    let checked_out = [("name", "basketsapi.BasketCheckedOut")];
    assert_eq!(
        delta(
            "messages_published_total",
            &[("module", "baskets"), checked_out[0]]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "messages_handled_total",
            &[("module", "ordering"), checked_out[0]]
        ),
        1.0
    );
    assert_eq!(
        delta("messages_published_total", &[("module", "cosec")]),
        5.0
    );
    assert_eq!(
        delta(
            "messages_handled_total",
            &[("module", "cosec"), ("name", "ordersapi.OrderCreated")]
        ),
        1.0
    );
    assert_eq!(delta("messages_failed_total", &[]), 0.0);
    assert_eq!(delta("messages_dead_lettered_total", &[]), 0.0);
    assert!(
        delta(
            "message_handler_duration_seconds_count",
            &[("module", "ordering")]
        ) >= 1.0
    );
    assert!(
        delta(
            "saga_step_duration_seconds_count",
            &[("outcome", "SUCCESS")]
        ) >= 4.0
    );
    assert!(delta("events_appended_total", &[("aggregate", "ordering.Order")]) >= 4.0);

    // HTTP, by route template and status.
    assert_eq!(
        delta(
            "http_requests_total",
            &[("route", "/api/baskets/{id}/checkout"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "http_requests_total",
            &[("route", "/api/stores"), ("method", "POST")]
        ),
        1.0
    );

    // Queues: every relayed outbox and every consumer has a depth, drained to zero once idle.
    let drained = until(|| async {
        let scrape = Scrape::of(&app).await;
        let busy =
            scrape.sum("outbox_pending_messages", &[]) + scrape.sum("consumer_lag_messages", &[]);
        if busy == 0.0 {
            Ok(scrape)
        } else {
            Err(format!("{busy} messages still queued"))
        }
    })
    .await;
    for module in [
        "baskets",
        "ordering",
        "cosec",
        "customers",
        "depot",
        "payments",
        "stores",
    ] {
        assert!(
            drained.0["outbox_pending_messages"].contains_key(&format!("module=\"{module}\"")),
            "no outbox depth for {module}"
        );
    }
    assert!(
        drained.0["consumer_lag_messages"].len() >= 10,
        "{:?}",
        drained.0["consumer_lag_messages"]
    );
}

/// The metric names a PromQL expression reads.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const OPERATORS: [&str; 5] = ["and", "or", "unless", "bool", "offset"];
    // Label matchers, range selectors and string literals name no metric.
    let mut plain = String::new();
    let (mut braces, mut brackets, mut quoted) = (0, 0, false);
    for c in expr.chars() {
        match c {
            '"' => quoted = !quoted,
            _ if quoted => {}
            '{' => braces += 1,
            '}' => braces -= 1,
            '[' => brackets += 1,
            ']' => brackets -= 1,
            _ if braces == 0 && brackets == 0 => plain.push(c),
            _ => {}
        }
    }
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == ':' || c == '.';
    let mut tokens = Vec::new();
    let mut rest = plain.as_str();
    while let Some(c) = rest.chars().next() {
        if word(c) {
            let end = rest.find(|c| !word(c)).unwrap_or(rest.len());
            tokens.push(&rest[..end]);
            rest = &rest[end..];
        } else {
            if !c.is_whitespace() {
                tokens.push(&rest[..c.len_utf8()]);
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < tokens.len() {
        let (token, next) = (tokens[i], tokens.get(i + 1).copied());
        if GROUPING.contains(&token) && next == Some("(") {
            // `by (label, …)`: label names.
            i += tokens[i..]
                .iter()
                .position(|t| *t == ")")
                .unwrap_or(tokens.len() - i);
        } else if token.starts_with(|c: char| c.is_alphabetic() || c == '_' || c == ':')
            // A function or aggregation: `rate(`, `sum by (…) (`.
            && !next.is_some_and(|next| next == "(" || GROUPING.contains(&next))
            && !OPERATORS.contains(&token)
        {
            names.insert(token.to_owned());
        }
        i += 1;
    }
    names
}

async fn the_dashboard_queries_only_exported_metrics(backend: Backend) {
    let app = spawn_app(&["all"], backend).await;
    lifecycle(&app).await;
    let scrape = Scrape::of(&app).await;
    let exported = scrape.names();

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/grafana/mallbots.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut queried = BTreeSet::new();
    let mut missing = Vec::new();
    for panel in panels {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap();
        let targets = panel["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("{title}: no queries"));
        assert!(!targets.is_empty(), "{title}: no queries");
        for target in targets {
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{title}: a target without expr"));
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{title}: {expr} reads no metric");
            for name in names {
                if !exported.contains(name.as_str()) {
                    missing.push(format!("{title}: {name} (in {expr})"));
                }
                queried.insert(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "panels query metrics /metrics does not export:\n{}",
        missing.join("\n")
    );
    // And the other way: every family the mall exports is on some panel.
    let family = |name: &str| {
        ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| exported.contains(format!("{base}_bucket").as_str()))
            })
            .unwrap_or(name)
            .to_owned()
    };
    let on_panels: BTreeSet<String> = queried.iter().map(|name| family(name)).collect();
    let unshown: Vec<String> = exported
        .iter()
        .map(|name| family(name))
        .filter(|name| !on_panels.contains(name))
        .collect();
    assert!(unshown.is_empty(), "exported but on no panel: {unshown:?}");
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let names = |expr| metric_names(expr).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(r#"sum by (route, status) (rate(http_requests_total{route=~"/api/.*"}[5m]))"#),
        ["http_requests_total"]
    );
    assert_eq!(
        names(
            "histogram_quantile(0.99, sum by (le, consumer) (rate(message_handler_duration_seconds_bucket[5m])))"
        ),
        ["message_handler_duration_seconds_bucket"]
    );
    assert_eq!(
        names("sum(outbox_pending_messages) + sum without (consumer) (consumer_lag_messages)"),
        ["consumer_lag_messages", "outbox_pending_messages"]
    );
}
