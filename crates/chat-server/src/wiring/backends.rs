//! What the rest of the server needs from the adapters besides the ports: the shared Redis
//! connection's state for readiness, the adapters' own counters for `/metrics`, and closing
//! connections at shutdown — behind [`Backends`], so that no other module names an adapter.

use async_trait::async_trait;
use chat_redis::RedisConnection;
use prometheus::core::Collector;

use super::redis_metrics::RedisHealthCollector;

/// The state of the Redis connection that the cache and fan-out adapters share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisState {
    /// The last command succeeded.
    Ok,
    /// The last attempt failed: reads use the store, live delivery stays on this instance.
    Degraded,
}

impl RedisState {
    /// The word `/readyz` reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
        }
    }
}

/// The wired adapters, as the server's health checks, metrics and shutdown see them.
#[async_trait]
pub trait Backends: Send + Sync {
    /// The shared Redis connection's state; `None` when no adapter uses Redis.
    fn redis(&self) -> Option<RedisState>;

    /// Collectors of the adapters' own counters, to register once in the metrics registry.
    fn collectors(&self) -> Vec<Box<dyn Collector>>;

    /// Closes the adapters' connections (after the last request).
    async fn close(&self);
}

/// The [`Backends`] of [`super::wire`].
pub(super) struct WiredBackends {
    pub(super) redis: Option<RedisConnection>,
}

#[async_trait]
impl Backends for WiredBackends {
    fn redis(&self) -> Option<RedisState> {
        self.redis.as_ref().map(|redis| {
            if redis.health().is_degraded() {
                RedisState::Degraded
            } else {
                RedisState::Ok
            }
        })
    }

    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        self.redis
            .iter()
            .filter_map(|redis| match RedisHealthCollector::new(redis.health()) {
                Ok(collector) => Some(Box::new(collector) as Box<dyn Collector>),
                Err(error) => {
                    tracing::error!(
                        error = %chat_domain::Report::of(&error),
                        "the redis metrics are malformed (a bug); serving without them"
                    );
                    None
                }
            })
            .collect()
    }

    async fn close(&self) {
        if let Some(redis) = &self.redis {
            redis.close().await;
        }
    }
}
