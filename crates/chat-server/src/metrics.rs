//! Prometheus metrics, served at `/metrics` in the text format.

use prometheus::{
    Encoder as _, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Every metric of an instance.
pub struct Metrics {
    registry: Registry,
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
        let send_buckets = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        Ok(Self {
            connections: registered(
                &registry,
                IntGauge::new("chat_ws_connections", "Open WebSocket connections")?,
            )?,
            messages_accepted: registered(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "chat_messages_accepted_total",
                        "Messages accepted, by outcome",
                    ),
                    &["outcome"],
                )?,
            )?,
            send_seconds: registered(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new("chat_send_seconds", "Time from a send frame to its ack")
                        .buckets(send_buckets),
                )?,
            )?,
            errors: registered(
                &registry,
                IntCounterVec::new(
                    Opts::new("chat_errors_total", "Error answers, by code and transport"),
                    &["code", "transport"],
                )?,
            )?,
            live_events: registered(
                &registry,
                IntCounter::new(
                    "chat_live_events_total",
                    "Live events queued to local sockets",
                )?,
            )?,
            slow_consumers: registered(
                &registry,
                IntCounter::new(
                    "chat_slow_consumer_disconnects_total",
                    "Sockets closed because their queue was full",
                )?,
            )?,
            http_requests: registered(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "chat_http_requests_total",
                        "HTTP requests, by route and status",
                    ),
                    &["route", "status"],
                )?,
            )?,
            outbox_backlog: registered(
                &registry,
                IntGauge::new("chat_outbox_backlog", "Events waiting in the outbox")?,
            )?,
            events_published: registered(
                &registry,
                IntCounter::new(
                    "chat_events_published_total",
                    "Events the outbox relay published",
                )?,
            )?,
            relay_failures: registered(
                &registry,
                IntCounter::new(
                    "chat_relay_failures_total",
                    "Outbox relay rounds that failed",
                )?,
            )?,
            registry,
        })
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

/// Registers `metric` in `registry` and hands it back (metrics are handles on shared values).
fn registered<M>(registry: &Registry, metric: M) -> Result<M, prometheus::Error>
where
    M: prometheus::core::Collector + Clone + 'static,
{
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
