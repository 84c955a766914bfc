//! # chat-embedded
//!
//! The "embedded" profile's adapters: every chat port, so the service runs on a fresh machine
//! with no external server. History lives in an on-disk embedded database
//! ([redb](https://docs.rs/redb)) under a data directory and survives a restart; the caches, the
//! cursor store and the fan-out live in the process; new-message events are appended to a local
//! JSON-lines file.
//!
//! **Single instance only.** One process owns a data directory: redb locks its database file,
//! and a second process (or a second [`EmbeddedStore`] in the same process) fails to open it
//! with [`EmbeddedError::AlreadyOpen`], whose message says so. Cache entries, cursors and live
//! connections are this process's alone, so the profile cannot be scaled out; use the
//! Cassandra/Redis/Kafka adapters for that.
//!
//! The store is also the outbox: [`MessageStore::append`](chat_domain::MessageStore::append)
//! writes each message and its `NewMessageEvent` in one redb write transaction, and the
//! server's `OutboxRelay` later moves the events to a [`JsonLinesPublisher`].
//!
//! ## Layout
//! - [`store`]: [`EmbeddedStore`], over `data_dir/chat.redb`: messages (with client-id dedup),
//!   chats and chat lists, and the outbox. Implements `MessageStore`, `ChatDirectory` and
//!   `Outbox`. Every call runs on tokio's blocking pool, and every write is fsynced before it
//!   returns.
//! - [`cache`]: [`InProcessCache`] and its [`CacheConfig`]: recent windows, chat lists and
//!   history cursors in memory, bounded in count and age. Implements the caches
//!   `RecentMessages` and `ChatListCache`, and `CursorStore` (the only copy of each cursor, not
//!   a cache).
//! - [`fan_out`]: [`InProcessFanOut`], handing live events to the server's local connections
//!   (`LocalDelivery`). Implements the live-delivery ports `LivePublisher`, `Presence` and
//!   `LiveRoutes`.
//! - [`event_log`]: [`JsonLinesPublisher`], appending events to `data_dir/events.jsonl`, one
//!   JSON object per line, synced to disk before it confirms. Implements `EventPublisher`.
//! - [`config`]: [`EmbeddedConfig`], the data directory and cache bounds (serde, with
//!   defaults).
//! - [`error`]: [`EmbeddedError`], this crate's one error type, mapped into
//!   [`chat_domain::Error`] at every port.
//!
//! ## Wiring
//! ```no_run
//! # fn wire(delivery: std::sync::Arc<dyn chat_domain::LocalDelivery>) -> Result<(), chat_embedded::EmbeddedError> {
//! use std::sync::Arc;
//! use chat_embedded::{EmbeddedConfig, EmbeddedStore, InProcessCache, InProcessFanOut, JsonLinesPublisher};
//!
//! let config = EmbeddedConfig::default();
//! let store = Arc::new(EmbeddedStore::open(&config.database_path())?);
//! let cache = Arc::new(InProcessCache::new(&config.cache));
//! let fan_out = Arc::new(InProcessFanOut::new(delivery));
//! let publisher = Arc::new(JsonLinesPublisher::open(&config.event_log_path())?);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod cache;
pub mod config;
pub mod error;
pub mod event_log;
pub mod fan_out;
pub mod store;

pub use cache::{CacheConfig, InProcessCache};
pub use config::{DATABASE_FILE, EVENT_LOG_FILE, EmbeddedConfig};
pub use error::EmbeddedError;
pub use event_log::{JsonLinesPublisher, read_events};
pub use fan_out::InProcessFanOut;
pub use store::EmbeddedStore;
