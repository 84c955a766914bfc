//! [`RedisConnection`]: the fred clients of one instance, set up to cover fred's known gaps, and
//! [`RedisHealth`], which turns failures into fast "degraded" answers, one log line per change
//! and numbers for metrics.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fred::prelude::*;
use fred::types::config::UnresponsiveConfig;

use crate::config::RedisConfig;
use crate::error::RedisError;

/// The two fred cluster clients an instance needs. Cheap to clone (they are handles).
///
/// - `data`: every command but (un)subscribing: scripts, reads, writes, SPUBLISH.
/// - `subscriber`: only SSUBSCRIBE / SUNSUBSCRIBE, so no other command's reply can be matched to
///   a subscription's extra reply frames (a fred 10.1 pitfall, `fred-pubsub.md` §5).
///
/// Both reconnect forever with backoff (fred never reconnects without a policy), start without
/// waiting for Redis (`fail_fast` off: the service runs while Redis is down), bound every command
/// by `command_timeout_ms`, declare a connection dead when it stops answering, and cap the queue
/// of commands waiting for a connection.
#[derive(Clone)]
pub struct RedisConnection {
    pub(crate) data: Client,
    pub(crate) subscriber: Client,
    pub(crate) health: Arc<RedisHealth>,
    pub(crate) config: Arc<RedisConfig>,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("nodes", &self.config.nodes)
            .field("degraded", &self.health.is_degraded())
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// Builds both clients and starts connecting in the background; returns at once, whether or
    /// not Redis answers yet (use [`RedisConnection::wait_connected`] to wait).
    ///
    /// # Errors
    /// [`RedisError::Config`] for invalid settings.
    pub fn start(config: RedisConfig) -> Result<Self, RedisError> {
        config.validate()?;
        let data = build_client(&config, 32)?;
        let subscriber = build_client(&config, config.pubsub_buffer)?;
        // The handles finish only when the clients quit; dropping them does not stop anything.
        drop(data.connect());
        drop(subscriber.connect());
        Ok(Self {
            data,
            subscriber,
            health: Arc::new(RedisHealth::new(Duration::from_millis(
                config.retry_after_ms,
            ))),
            config: Arc::new(config),
        })
    }

    /// Waits until both clients are connected, or `timeout` passes (then the adapters start
    /// degraded, and the clients keep trying).
    ///
    /// # Errors
    /// [`RedisError::Command`] with a timeout when Redis did not answer in time.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), RedisError> {
        let both = async {
            self.data.wait_for_connect().await?;
            self.subscriber.wait_for_connect().await
        };
        let error = match tokio::time::timeout(timeout, both).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error,
            Err(_) => fred::error::Error::new(
                fred::error::ErrorKind::Timeout,
                format!(
                    "no connection to {:?} within {timeout:?}",
                    self.config.nodes
                ),
            ),
        };
        self.health.failed(&error);
        Err(RedisError::Command(error))
    }

    /// The health shared by every adapter on this connection.
    pub fn health(&self) -> Arc<RedisHealth> {
        self.health.clone()
    }

    /// The settings in force.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Closes both clients (pending commands finish first).
    pub async fn close(&self) {
        for client in [&self.data, &self.subscriber] {
            if let Err(error) = client.quit().await {
                tracing::debug!(error = %chat_domain::Report::of(&error), "redis quit");
            }
        }
    }

    /// Runs one data command under the health gate: fails at once while degraded, and records
    /// the outcome.
    pub(crate) async fn run<T, F>(&self, command: F) -> Result<T, RedisError>
    where
        F: Future<Output = Result<T, fred::error::Error>>,
    {
        self.health.check()?;
        match command.await {
            Ok(value) => {
                self.health.succeeded();
                Ok(value)
            }
            Err(error) => {
                if is_outage(&error) {
                    self.health.failed(&error);
                }
                Err(RedisError::Command(error))
            }
        }
    }
}

fn build_client(config: &RedisConfig, broadcast_capacity: usize) -> Result<Client, RedisError> {
    let fred_config = Config {
        server: ServerConfig::new_clustered(config.seeds()?),
        username: config.username.clone(),
        password: config.password.clone(),
        // Queue commands while reconnecting instead of failing them at once; the command
        // timeout bounds the wait, and the first connection is retried like any other.
        fail_fast: false,
        ..Config::default()
    };
    let command_timeout = config.command_timeout();
    let mut builder = Builder::from_config(fred_config);
    let max_delay = u32::try_from(config.reconnect_max_delay_ms.max(100)).unwrap_or(u32::MAX);
    // max_attempts 0 = forever: a finite count leaves a client dead after a long outage.
    builder.set_policy(ReconnectPolicy::new_exponential(0, 100, max_delay, 2));
    builder.with_connection_config(|connection| {
        connection.connection_timeout = Duration::from_millis(config.connect_timeout_ms);
        connection.internal_command_timeout = Duration::from_millis(config.connect_timeout_ms);
        connection.max_command_buffer_len = config.max_queued_commands;
        connection.max_redirections = 3;
        connection.max_command_attempts = 3;
        // A stopped (not closed) node would otherwise hold its connection until the OS gives
        // up; this drops it and reconnects.
        connection.unresponsive = UnresponsiveConfig {
            max_timeout: Some(command_timeout.max(Duration::from_secs(2))),
            interval: Duration::from_millis(500),
        };
        connection.tcp.nodelay = Some(true);
    });
    builder.with_performance_config(|performance| {
        performance.default_command_timeout = command_timeout;
        // fred's default of 32 drops most pub/sub messages of a burst (`fred-pubsub.md` §2).
        performance.broadcast_channel_capacity = broadcast_capacity.max(32);
    });
    Ok(builder.build()?)
}

/// Whether `error` says Redis could not be reached in time (rather than a bad command).
fn is_outage(error: &fred::error::Error) -> bool {
    use fred::error::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::IO
            | ErrorKind::Timeout
            | ErrorKind::Canceled
            | ErrorKind::Cluster
            | ErrorKind::Routing
            | ErrorKind::Backpressure
    ) || error.details().starts_with("CLUSTERDOWN")
        || error.details().starts_with("TRYAGAIN")
        || error.details().starts_with("LOADING")
        || error.details().starts_with("MASTERDOWN")
}

/// Whether Redis is usable, shared by every adapter of one [`RedisConnection`].
///
/// After a command fails for want of Redis, the adapter is **degraded**: for `retry_after_ms`
/// every call fails at once (so a send is not held for a timeout on each cache write), then the
/// next call tries Redis again. Entering and leaving the degraded state are each logged once
/// (warn / info); [`RedisHealth::is_degraded`] and the counters feed the server's metrics.
#[derive(Debug)]
pub struct RedisHealth {
    degraded: AtomicBool,
    retry_at: Mutex<Option<Instant>>,
    retry_after: Duration,
    failures: AtomicU64,
    lost_live_events: AtomicU64,
}

impl RedisHealth {
    fn new(retry_after: Duration) -> Self {
        Self {
            degraded: AtomicBool::new(false),
            retry_at: Mutex::new(None),
            retry_after,
            failures: AtomicU64::new(0),
            lost_live_events: AtomicU64::new(0),
        }
    }

    /// Whether the last attempt to use Redis failed.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// Commands that failed for want of Redis, since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Live events dropped before reaching this instance's connections (a pub/sub buffer
    /// overflow), since start; their recipients catch up with `sync`.
    pub fn lost_live_events(&self) -> u64 {
        self.lost_live_events.load(Ordering::Relaxed)
    }

    pub(crate) fn count_lost_live_events(&self, count: u64) {
        self.lost_live_events.fetch_add(count, Ordering::Relaxed);
    }

    fn retry_at(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // The guarded value is a plain Option: a panic elsewhere cannot leave it half-written.
        self.retry_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn check(&self) -> Result<(), RedisError> {
        match *self.retry_at() {
            Some(at) if Instant::now() < at => Err(RedisError::Degraded),
            _ => Ok(()),
        }
    }

    pub(crate) fn succeeded(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            *self.retry_at() = None;
            tracing::info!("redis answers again: cache and cross-instance delivery resumed");
        }
    }

    pub(crate) fn failed(&self, error: &(dyn std::error::Error + 'static)) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self.retry_at() = Some(Instant::now() + self.retry_after);
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = %chat_domain::Report::of(error),
                "redis is degraded: messages are still stored, acknowledged and published; \
                 history is read from the store and live delivery stays on this instance until \
                 it returns"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_degrades_until_the_retry_time_and_a_success_restores() {
        let health = RedisHealth::new(Duration::from_millis(50));
        assert!(health.check().is_ok());
        health.failed(&std::io::Error::other("boom"));
        assert!(health.is_degraded());
        assert_eq!(health.failures(), 1);
        assert!(matches!(health.check(), Err(RedisError::Degraded)));
        std::thread::sleep(Duration::from_millis(60));
        assert!(health.check().is_ok(), "the next call may try Redis again");
        health.succeeded();
        assert!(!health.is_degraded());
        assert!(health.check().is_ok());
    }

    #[test]
    fn outages_are_told_from_bad_commands() {
        use fred::error::{Error, ErrorKind};
        assert!(is_outage(&Error::new(ErrorKind::Timeout, "slow")));
        assert!(is_outage(&Error::new(ErrorKind::IO, "refused")));
        assert!(is_outage(&Error::new(
            ErrorKind::Unknown,
            "CLUSTERDOWN The cluster is down"
        )));
        assert!(!is_outage(&Error::new(ErrorKind::InvalidArgument, "bad")));
        assert!(!is_outage(&Error::new(ErrorKind::Parse, "bad")));
        assert!(!is_outage(&Error::new(
            ErrorKind::Unknown,
            "ERR script error"
        )));
    }
}
