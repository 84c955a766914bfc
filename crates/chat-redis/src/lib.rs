//! # chat-redis
//!
//! The Redis cluster adapter of chat-message-service, with `fred` in cluster mode: the recent
//! messages cache, users' cached chat lists, the history cursor store ([`RedisCache`]), and
//! live delivery between instances over Redis 7 sharded pub/sub ([`RedisFanOut`]). Redis holds
//! caches, the cursors (their only copy: a lost cursor fails to load and the client pages again
//! from the first page) and a notification path, never a message: when it is down, messages are
//! still stored, acknowledged and published, history is read from the store (without a cursor
//! to the next page), and both adapters reconnect on their own.
//!
//! ## Layout
//! - [`RedisConfig`]: seed nodes, credentials, key prefix, timeouts, TTLs and bounds.
//! - [`RedisConnection`]: the instance's two fred clients (data, subscriber), configured to
//!   cover fred 10.1's gaps; [`RedisHealth`]: the degraded state, its log lines and counters.
//! - [`RedisCache`]: the `RecentMessages` and `ChatListCache` caches and the `CursorStore` (the
//!   only copy of each cursor, not a cache).
//! - [`RedisFanOut`]: the live-delivery ports `LivePublisher`, `Presence` and `LiveRoutes`.
//! - [`RedisError`]: this crate's errors, mapped into `chat_domain::Error`.
//!
//! ## How fred's known gaps are covered
//! - **No reconnection without a policy**: both clients reconnect forever with exponential
//!   backoff, start without waiting for Redis, and drop connections that stop answering.
//! - **Commands without a deadline**: every command runs under `command_timeout_ms`; after an
//!   outage-like failure calls fail at once for `retry_after_ms` (the whole cluster client
//!   stalls for a failover's 6–9 s when any master dies), so a send never waits on Redis for
//!   long.
//! - **Pub/sub buffer of 32**: raised to `pubsub_buffer`; overflow (`Lagged`) is counted and
//!   logged, and clients catch up with `sync`.
//! - **Cross-slot SSUBSCRIBE, SSUBSCRIBE not following MOVED, unreliable
//!   `manage_subscriptions`, subscriptions silently dropped by a failover or reshard**: one
//!   channel per command with explicit retries, on a client that sends nothing else, and a
//!   keeper task that re-subscribes on reconnection, slot-map change, failure and a timer.
//!
//! Key layout, TTLs and the degraded mode: `docs/data-model.md` and `docs/architecture.md`.
#![forbid(unsafe_code)]

mod cache;
mod config;
mod connection;
mod error;
mod fan_out;
mod keys;
mod scripts;

pub use cache::RedisCache;
pub use config::RedisConfig;
pub use connection::{RedisConnection, RedisHealth};
pub use error::RedisError;
pub use fan_out::RedisFanOut;
