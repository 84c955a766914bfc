//! Latency recording: HDR histograms in microseconds, summarized as the percentiles every
//! table of the report shows.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// A latency histogram in microseconds, 3 significant digits, up to an hour (anything slower
/// is clamped: a benchmark must not fail on one outlier).
pub struct Recorder {
    histogram: Histogram<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        let histogram = Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .expect("1 µs to 1 h with 3 significant digits are valid bounds");
        Self { histogram }
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(micros.max(1));
    }

    /// Adds another recorder's values.
    pub fn merge(&mut self, other: &Self) {
        // Both sides have the same bounds and `record` clamps, so `add` finds nothing out of
        // range.
        let _ = self.histogram.add(&other.histogram);
    }

    /// The percentiles, in milliseconds.
    pub fn summary(&self) -> Latency {
        let ms = |quantile: f64| self.histogram.value_at_quantile(quantile) as f64 / 1000.0;
        Latency {
            count: self.histogram.len(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: self.histogram.max() as f64 / 1000.0,
        }
    }
}

/// Percentiles of one latency, milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_out_in_milliseconds() {
        let mut recorder = Recorder::new();
        for millis in 1..=100 {
            recorder.record(Duration::from_millis(millis));
        }
        let summary = recorder.summary();
        assert_eq!(summary.count, 100);
        assert!((summary.p50_ms - 50.0).abs() < 0.1, "{summary:?}");
        assert!((summary.max_ms - 100.0).abs() < 0.1, "{summary:?}");
    }

    #[test]
    fn merging_adds_the_counts() {
        let (mut a, mut b) = (Recorder::new(), Recorder::new());
        a.record(Duration::from_millis(1));
        b.record(Duration::from_secs(7_200));
        a.merge(&b);
        assert_eq!(a.summary().count, 2);
    }
}
