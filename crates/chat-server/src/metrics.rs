//! Prometheus metrics, served at `/metrics` in the text format.

use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};

/// Every metric of an instance.
pub struct Metrics {
    registry: Registry,
    /// The names of the metrics registered here (docs/metrics.md must list each).
    names: Vec<String>,
    /// Open WebSocket connections.
    pub connections: IntGauge,
    /// Messages accepted, by outcome (`stored` or `duplicate`).
    pub messages_accepted: IntCounterVec,
    /// Time from a `send` frame to its ack.
    pub send_seconds: Histogram,
    /// Error answers, by code and transport.
    pub errors: IntCounterVec,
    /// Live events queued to local sockets.
    pub live_events: IntCounter,
    /// Sockets closed for not reading fast enough.
    pub slow_consumers: IntCounter,
    /// HTTP requests, by route pattern and status.
    pub http_requests: IntCounterVec,
    /// HTTP request latency, by route pattern and status.
    pub http_request_seconds: HistogramVec,
    /// Events waiting in the outbox.
    pub outbox_backlog: IntGauge,
    /// Events the relay published.
    pub events_published: IntCounter,
    /// Relay rounds that failed.
    pub relay_failures: IntCounter,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    ///
    /// # Errors
    /// A [`prometheus::Error`] if a metric is malformed (a bug).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let names = std::cell::RefCell::new(Vec::new());
        let into = (&registry, &names);
        Ok(Self {
            connections: registered(
                into,
                IntGauge::new("chat_ws_connections", "Open WebSocket connections")?,
            )?,
            messages_accepted: registered(
                into,
                IntCounterVec::new(
                    Opts::new(
                        "chat_messages_accepted_total",
                        "Messages accepted, by outcome",
                    ),
                    &["outcome"],
                )?,
            )?,
            send_seconds: registered(
                into,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "chat_send_duration_seconds",
                        "Time from a send frame to its ack",
                    )
                    .buckets(latency_buckets()),
                )?,
            )?,
            errors: registered(
                into,
                IntCounterVec::new(
                    Opts::new("chat_errors_total", "Error answers, by code and transport"),
                    &["code", "transport"],
                )?,
            )?,
            live_events: registered(
                into,
                IntCounter::new(
                    "chat_live_events_total",
                    "Live events queued to local sockets",
                )?,
            )?,
            slow_consumers: registered(
                into,
                IntCounter::new(
                    "chat_slow_consumer_disconnects_total",
                    "Sockets closed because their queue was full",
                )?,
            )?,
            http_requests: registered(
                into,
                IntCounterVec::new(
                    Opts::new(
                        "chat_http_requests_total",
                        "HTTP requests, by route and status",
                    ),
                    &["route", "status"],
                )?,
            )?,
            http_request_seconds: registered(
                into,
                HistogramVec::new(
                    HistogramOpts::new(
                        "chat_http_request_duration_seconds",
                        "HTTP request latency, by route and status",
                    )
                    .buckets(latency_buckets()),
                    &["route", "status"],
                )?,
            )?,
            outbox_backlog: registered(
                into,
                IntGauge::new("chat_outbox_backlog", "Events waiting in the outbox")?,
            )?,
            events_published: registered(
                into,
                IntCounter::new(
                    "chat_events_published_total",
                    "Events the outbox relay published",
                )?,
            )?,
            relay_failures: registered(
                into,
                IntCounter::new(
                    "chat_relay_failures_total",
                    "Outbox relay rounds that failed",
                )?,
            )?,
            registry,
            names: names.into_inner(),
        })
    }

    /// The names of the metrics registered at construction (adapters' collectors aside).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Adds an adapter's own metrics (read from the adapter at each scrape).
    ///
    /// # Errors
    /// A [`prometheus::Error`] when a metric of that name is registered already.
    pub fn register(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    /// Counts an error answer.
    pub fn error(&self, code: &str, transport: &str) {
        self.errors.with_label_values(&[code, transport]).inc();
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %chat_domain::Report::of(&error), "could not encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Buckets for request latencies: 1 ms to 5 s.
fn latency_buckets() -> Vec<f64> {
    vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ]
}

/// Registers `metric` in `registry` and hands it back (metrics are handles on shared values).
fn registered<M>(
    (registry, names): (&Registry, &std::cell::RefCell<Vec<String>>),
    metric: M,
) -> Result<M, prometheus::Error>
where
    M: prometheus::core::Collector + Clone + 'static,
{
    names
        .borrow_mut()
        .extend(metric.desc().into_iter().map(|desc| desc.fq_name.clone()));
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// The outbox relay's counts.
impl chat_domain::RelayMetrics for Metrics {
    fn published(&self, count: usize) {
        self.events_published
            .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
    }

    fn failed(&self) {
        self.relay_failures.inc();
    }

    fn backlog(&self, events: u64) {
        self.outbox_backlog
            .set(i64::try_from(events).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_documented_in_docs_metrics_md() {
        let doc = include_str!("../../../docs/metrics.md");
        let metrics = Metrics::new().unwrap();
        let mut names: Vec<&str> = metrics.names().iter().map(String::as_str).collect();
        names.extend(crate::wiring::redis_metrics::NAMES);
        assert!(names.len() >= 14, "{names:?}");
        let missing: Vec<_> = names
            .iter()
            .filter(|name| !doc.contains(&format!("| `{name}` |")))
            .collect();
        assert!(missing.is_empty(), "not in docs/metrics.md: {missing:?}");
    }
}
