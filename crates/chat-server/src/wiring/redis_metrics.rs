//! The Redis adapter's own counters as Prometheus metrics, read at scrape time from its
//! [`RedisHealth`] (a collector: nothing is copied between scrapes).

use std::sync::Arc;

use chat_redis::RedisHealth;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily};
use prometheus::{IntCounter, IntGauge};

/// The metrics this collector reports (docs/metrics.md lists each).
pub const NAMES: [&str; 3] = [
    "chat_redis_degraded",
    "chat_redis_failures_total",
    "chat_redis_lost_live_events_total",
];

/// Reports `chat_redis_degraded`, `chat_redis_failures_total` and
/// `chat_redis_lost_live_events_total` from a [`RedisHealth`].
pub(super) struct RedisHealthCollector {
    health: Arc<RedisHealth>,
    // Never changed: they carry each metric's name, help and type; values come from `health`.
    degraded: IntGauge,
    failures: IntCounter,
    lost_live_events: IntCounter,
}

impl RedisHealthCollector {
    pub(super) fn new(health: Arc<RedisHealth>) -> Result<Self, prometheus::Error> {
        Ok(Self {
            health,
            degraded: IntGauge::new(
                NAMES[0],
                "1 while Redis is degraded: reads use the store, live delivery stays local",
            )?,
            failures: IntCounter::new(NAMES[1], "Redis commands that failed for want of Redis")?,
            lost_live_events: IntCounter::new(
                NAMES[2],
                "Live events from other instances dropped (pub/sub buffer overflow)",
            )?,
        })
    }
}

/// `families` (of one unlabelled metric) with the value replaced by `value`.
fn with_value(mut families: Vec<MetricFamily>, value: f64, counter: bool) -> Vec<MetricFamily> {
    for family in &mut families {
        for metric in family.mut_metric() {
            if counter {
                let mut sample = proto::Counter::default();
                sample.set_value(value);
                metric.set_counter(sample);
            } else {
                let mut sample = proto::Gauge::default();
                sample.set_value(value);
                metric.set_gauge(sample);
            }
        }
    }
    families
}

impl Collector for RedisHealthCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.degraded.desc();
        descs.extend(self.failures.desc());
        descs.extend(self.lost_live_events.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let degraded = f64::from(u8::from(self.health.is_degraded()));
        let mut families = with_value(self.degraded.collect(), degraded, false);
        families.extend(with_value(
            self.failures.collect(),
            self.health.failures() as f64,
            true,
        ));
        families.extend(with_value(
            self.lost_live_events.collect(),
            self.health.lost_live_events() as f64,
            true,
        ));
        families
    }
}
