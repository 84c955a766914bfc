//! The host's side of the outbox relay ([`chat_domain::OutboxRelay::run`]): tokio's timer and
//! the service's shutdown token. The relay's counts go to [`crate::metrics::Metrics`].

use std::time::Duration;

use async_trait::async_trait;
use chat_domain::RelaySchedule;
use tokio_util::sync::CancellationToken;

/// Pauses on tokio's timer, cut short when the shutdown token is cancelled.
pub struct ShutdownSchedule {
    shutdown: CancellationToken,
}

impl ShutdownSchedule {
    /// A schedule that stops when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self { shutdown }
    }
}

#[async_trait]
impl RelaySchedule for ShutdownSchedule {
    fn stopping(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    async fn pause(&self, pause: Duration) {
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = self.shutdown.cancelled() => {}
        }
    }
}

impl From<&crate::settings::RelaySettings> for chat_domain::RelayPacing {
    fn from(settings: &crate::settings::RelaySettings) -> Self {
        Self {
            idle: Duration::from_millis(settings.interval_ms),
            max_backoff: Duration::from_millis(settings.max_backoff_ms),
            backlog_interval: Duration::from_millis(settings.backlog_interval_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_pause_ends_at_once_when_shutdown_begins() {
        let shutdown = CancellationToken::new();
        let schedule = ShutdownSchedule::new(shutdown.clone());
        assert!(!schedule.stopping());
        let started = tokio::time::Instant::now();
        let pause = tokio::spawn(async move {
            schedule.pause(Duration::from_secs(3600)).await;
            schedule.stopping()
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
        assert!(pause.await.unwrap(), "stopping once cancelled");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
