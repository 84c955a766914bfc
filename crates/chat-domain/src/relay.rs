//! The outbox relay: moves events from the outbox to the publisher, and removes them only once
//! the publisher confirmed them. Several relays may run at once (one per instance): an event
//! may then be published twice, never lost, and both copies carry the same event id.
//!
//! [`OutboxRelay::run`] is the whole use case: rounds back to back while there is work, a pause
//! when the outbox is empty, a jittered exponential backoff after failures, the backlog measured
//! on its own clock, and on shutdown one last round and the hand-over of this instance's share
//! of the outbox (its shard leases, [`Outbox::release`]). The host supplies time and the
//! shutdown signal ([`RelaySchedule`]) and takes the counts ([`RelayMetrics`]), so this crate
//! stays free of any runtime.

use std::hash::BuildHasher as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::Result;
use crate::ports::{EventPublisher, Outbox};

/// How the relay paces itself (the `[relay]` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayPacing {
    /// The pause between rounds while the outbox is empty.
    pub idle: Duration,
    /// The longest pause after failures (the backoff doubles up to it).
    pub max_backoff: Duration,
    /// How often the backlog is measured: measuring reads the whole outbox index, so it runs on
    /// its own clock (once per round made a 45 000-event backlog drain at ~250 events/s).
    pub backlog_interval: Duration,
}

/// The host's side of the relay's loop: time passing and the shutdown signal.
#[async_trait]
pub trait RelaySchedule: Send + Sync {
    /// Whether shutdown has begun.
    fn stopping(&self) -> bool;

    /// Waits `pause`, or less when shutdown begins meanwhile.
    async fn pause(&self, pause: Duration);
}

/// What the relay reports as it goes (the host turns it into metrics).
pub trait RelayMetrics: Send + Sync {
    /// A round published and removed `count` events.
    fn published(&self, count: usize);

    /// A round failed (the relay logs it; the next round retries).
    fn failed(&self);

    /// The outbox holds `events` events.
    fn backlog(&self, events: u64);
}

/// Relays outbox events to an [`EventPublisher`].
pub struct OutboxRelay {
    outbox: Arc<dyn Outbox>,
    publisher: Arc<dyn EventPublisher>,
    batch: u32,
}

impl OutboxRelay {
    /// A relay moving up to `batch` events per round.
    pub fn new(outbox: Arc<dyn Outbox>, publisher: Arc<dyn EventPublisher>, batch: u32) -> Self {
        Self {
            outbox,
            publisher,
            batch: batch.max(1),
        }
    }

    /// Publishes one batch of pending events; returns how many were published and removed.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] from the outbox or the publisher; nothing is removed that
    /// was not confirmed, so the next round retries.
    pub async fn relay_once(&self) -> Result<usize> {
        let events = self.outbox.pending(self.batch).await?;
        if events.is_empty() {
            return Ok(0);
        }
        self.publisher.publish(&events).await?;
        let ids: Vec<_> = events.iter().map(|event| event.event_id).collect();
        self.outbox.remove(&ids).await?;
        Ok(events.len())
    }

    /// Gives up this relay's share of the outbox (on shutdown, after the last round).
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] on an outbox outage.
    pub async fn release(&self) -> Result<()> {
        self.outbox.release().await
    }

    /// How many events wait in the outbox.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] on an outbox outage.
    pub async fn backlog(&self) -> Result<u64> {
        self.outbox.backlog().await
    }

    /// Relays until `schedule` says shutdown has begun, then makes one last round and hands
    /// over this instance's share of the outbox. Failures are logged, counted and retried after
    /// a backoff that doubles from `pacing.idle` up to `pacing.max_backoff`, each pause drawn
    /// at random from its upper half so that instances that failed together do not retry in
    /// step.
    pub async fn run(
        &self,
        pacing: RelayPacing,
        schedule: &dyn RelaySchedule,
        metrics: &dyn RelayMetrics,
    ) {
        let mut backoff = Backoff::new(pacing.idle, pacing.max_backoff);
        let mut backlog_measured: Option<Instant> = None;
        loop {
            let stopping = schedule.stopping();
            let pause = match self.relay_once().await {
                Ok(0) => {
                    backoff.reset();
                    pacing.idle
                }
                Ok(published) => {
                    backoff.reset();
                    metrics.published(published);
                    Duration::ZERO
                }
                Err(error) => {
                    metrics.failed();
                    let pause = backoff.next_pause();
                    tracing::warn!(
                        error = %error.report(),
                        retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                        "outbox relay failed"
                    );
                    pause
                }
            };
            if backlog_measured.is_none_or(|at| at.elapsed() >= pacing.backlog_interval) {
                backlog_measured = Some(Instant::now());
                match self.backlog().await {
                    Ok(events) => metrics.backlog(events),
                    Err(error) => {
                        tracing::debug!(error = %error.report(), "could not measure the outbox backlog");
                    }
                }
            }
            if stopping {
                if let Err(error) = self.release().await {
                    tracing::warn!(
                        error = %error.report(),
                        "could not hand over the outbox; other instances take it when the \
                         lease runs out"
                    );
                }
                return;
            }
            if !pause.is_zero() {
                schedule.pause(pause).await;
            }
        }
    }
}

/// An exponential backoff with jitter: the ceiling doubles after each failure (from `floor` up
/// to `cap`), and each pause is drawn from the ceiling's upper half.
#[derive(Debug)]
struct Backoff {
    floor: Duration,
    cap: Duration,
    ceiling: Duration,
    draws: u64,
    random: std::collections::hash_map::RandomState,
}

impl Backoff {
    fn new(floor: Duration, cap: Duration) -> Self {
        Self {
            floor,
            cap: cap.max(floor),
            ceiling: Duration::ZERO,
            draws: 0,
            // Randomly keyed per process: hashing a counter with it gives independent draws
            // without a random-number crate.
            random: std::collections::hash_map::RandomState::new(),
        }
    }

    fn reset(&mut self) {
        self.ceiling = Duration::ZERO;
    }

    fn next_pause(&mut self) -> Duration {
        self.ceiling = (self.ceiling * 2).clamp(self.floor, self.cap);
        self.draws += 1;
        let thousandths = self.random.hash_one(self.draws) % 1_000;
        let half = self.ceiling / 2;
        half + half.mul_f64(thousandths as f64 / 1_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap_each_pause_in_the_upper_half_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        for ceiling in [100, 200, 400, 800, 800, 800] {
            let pause = backoff.next_pause();
            let ceiling = Duration::from_millis(ceiling);
            assert!(
                pause >= ceiling / 2 && pause <= ceiling,
                "{pause:?} not within [{:?}, {ceiling:?}]",
                ceiling / 2
            );
        }
        // Jitter: twenty draws at the cap, each one of a thousand values, are not all equal
        // (the chance that they are is 1e-57).
        let at_cap: Vec<_> = (0..20).map(|_| backoff.next_pause()).collect();
        assert!(at_cap.iter().any(|pause| *pause != at_cap[0]), "{at_cap:?}");
        backoff.reset();
        assert!(backoff.next_pause() <= Duration::from_millis(100));
    }
}
