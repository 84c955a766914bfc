//! One adapter per port, as `[adapters]` says. The only module that names adapter crates (a
//! test below holds that line): the rest of the server gets the use cases' ports from
//! [`wire`], the adapters' health, counters and shutdown through [`Backends`], and their
//! settings types and startup errors re-exported from here.
//!
//! Layout: `mod.rs` (wiring and migrations), `backends.rs` ([`Backends`]), `redis_metrics.rs`
//! (the Redis adapter's counters as a Prometheus collector), `error.rs` ([`WiringError`]).

mod backends;
mod error;
pub mod redis_metrics;

use std::sync::Arc;

use chat_crypto::MessageCipher;
use chat_domain::{
    ChatDirectory, ChatListCache, CursorStore, EventPublisher, LivePublisher, LiveRoutes,
    LocalDelivery, MessageStore, Outbox, Ports, Presence, RecentMessages,
};
use chat_embedded::{EmbeddedStore, InProcessCache, InProcessFanOut, JsonLinesPublisher};
use chat_redis::{RedisCache, RedisConnection, RedisFanOut};

pub use backends::{Backends, RedisState};
pub use error::WiringError;

use crate::settings::{CacheAdapter, EventsAdapter, FanOutAdapter, Settings, StoreAdapter};

/// The adapters' settings types, for [`crate::settings::Settings`].
pub mod config {
    pub use chat_cassandra::CassandraConfig;
    pub use chat_crypto::CryptoConfig;
    pub use chat_embedded::EmbeddedConfig;
    pub use chat_kafka::KafkaConfig;
    pub use chat_redis::RedisConfig;
}

/// A fresh random content key, base64 (`message-service keygen`).
///
/// # Errors
/// [`WiringError::Crypto`] when the system's random number generator fails.
pub fn generate_content_key() -> Result<String, WiringError> {
    Ok(chat_crypto::generate_key_base64()?)
}

/// The wired adapters: the service's ports, and the outbox relay's two ends.
pub struct Wiring {
    /// The service's ports.
    pub ports: Ports,
    /// Where the relay reads events.
    pub outbox: Arc<dyn Outbox>,
    /// Where the relay publishes them.
    pub publisher: Arc<dyn EventPublisher>,
    /// Health, counters and shutdown of the adapters.
    pub backends: Arc<dyn Backends>,
}

/// The two cache ports and the cursor store (not a cache: it holds the only copy of each
/// cursor), served by one adapter (`adapters.cache`, a key named for the caches).
struct CacheAndCursorPorts {
    recent: Arc<dyn RecentMessages>,
    chat_lists: Arc<dyn ChatListCache>,
    cursors: Arc<dyn CursorStore>,
}

impl CacheAndCursorPorts {
    fn of<C: RecentMessages + ChatListCache + CursorStore>(cache: C) -> Self {
        let cache = Arc::new(cache);
        Self {
            recent: cache.clone(),
            chat_lists: cache.clone(),
            cursors: cache,
        }
    }
}

/// The three live-delivery ports, served by one fan-out adapter.
struct LivePorts {
    publisher: Arc<dyn LivePublisher>,
    presence: Arc<dyn Presence>,
    routes: Arc<dyn LiveRoutes>,
}

impl LivePorts {
    fn of<F: LivePublisher + Presence + LiveRoutes>(fan_out: F) -> Self {
        let fan_out = Arc::new(fan_out);
        Self {
            publisher: fan_out.clone(),
            presence: fan_out.clone(),
            routes: fan_out,
        }
    }
}

/// Builds the configured adapters. `local` is this instance's socket registry.
///
/// # Errors
/// [`WiringError`] when a key or an adapter cannot be set up.
pub async fn wire(
    settings: &Settings,
    local: Arc<dyn LocalDelivery>,
) -> Result<Wiring, WiringError> {
    let cipher = Arc::new(MessageCipher::from_config(&settings.crypto)?);
    if settings.migrate_on_start {
        migrate(settings).await?;
    }
    let stores = open_stores(settings).await?;
    let redis = connect_redis(settings).await?;
    let cache = cache_ports(settings, redis.as_ref());
    let live = match (settings.adapters.fan_out, &redis) {
        (FanOutAdapter::Redis, Some(redis)) => {
            LivePorts::of(RedisFanOut::new(redis.clone(), local))
        }
        _ => LivePorts::of(InProcessFanOut::new(local)),
    };
    let publisher = event_publisher(settings)?;
    warn_if_instance_local(settings);
    Ok(Wiring {
        ports: Ports {
            store: stores.messages,
            chats: stores.chats,
            recent: cache.recent,
            chat_lists: cache.chat_lists,
            cursors: cache.cursors,
            live: live.publisher,
            presence: live.presence,
            routes: live.routes,
            cipher,
            clock: Arc::new(chat_domain::SystemClock),
        },
        outbox: stores.outbox,
        publisher,
        backends: Arc::new(backends::WiredBackends { redis }),
    })
}

/// The three ports the store adapter serves.
struct Stores {
    messages: Arc<dyn MessageStore>,
    chats: Arc<dyn ChatDirectory>,
    outbox: Arc<dyn Outbox>,
}

async fn open_stores(settings: &Settings) -> Result<Stores, WiringError> {
    Ok(match settings.adapters.store {
        StoreAdapter::Embedded => {
            let store = Arc::new(EmbeddedStore::open_config(&settings.embedded)?);
            tracing::info!(database = %store.path().display(), "store: embedded (single instance)");
            Stores {
                messages: store.clone(),
                chats: store.clone(),
                outbox: store,
            }
        }
        StoreAdapter::Cassandra => {
            let (store, chats) = chat_cassandra::connect_adapters(&settings.cassandra).await?;
            tracing::info!(
                contact_points = ?settings.cassandra.contact_points,
                keyspace = settings.cassandra.keyspace,
                "store: cassandra"
            );
            let store = Arc::new(store);
            Stores {
                messages: store.clone(),
                chats: Arc::new(chats),
                outbox: store,
            }
        }
    })
}

/// The Redis connection, when the cache or the fan-out uses Redis. Redis is a cache: the
/// service starts without it, and the clients keep reconnecting in the background.
async fn connect_redis(settings: &Settings) -> Result<Option<RedisConnection>, WiringError> {
    let adapters = settings.adapters;
    if adapters.cache != CacheAdapter::Redis && adapters.fan_out != FanOutAdapter::Redis {
        return Ok(None);
    }
    let mut config = settings.redis.clone();
    config.recent_window = settings.limits.recent_window as usize;
    let redis = RedisConnection::start(config)?;
    let wait = std::time::Duration::from_millis(settings.redis.connect_timeout_ms);
    match redis.wait_connected(wait).await {
        Ok(()) => tracing::info!(nodes = ?settings.redis.nodes, "redis: connected"),
        Err(error) => tracing::warn!(
            error = %chat_domain::Report::of(&error),
            "redis does not answer yet; starting without it (reads use the store, live \
             delivery stays on this instance) and reconnecting in the background"
        ),
    }
    Ok(Some(redis))
}

fn cache_ports(settings: &Settings, redis: Option<&RedisConnection>) -> CacheAndCursorPorts {
    match (settings.adapters.cache, redis) {
        (CacheAdapter::Redis, Some(redis)) => {
            CacheAndCursorPorts::of(RedisCache::new(redis.clone()))
        }
        _ => {
            let mut config = settings.embedded.cache.clone();
            config.recent_window = settings.limits.recent_window as usize;
            CacheAndCursorPorts::of(InProcessCache::new(&config))
        }
    }
}

fn event_publisher(settings: &Settings) -> Result<Arc<dyn EventPublisher>, WiringError> {
    Ok(match settings.adapters.events {
        EventsAdapter::Log => {
            let publisher = JsonLinesPublisher::open_config(&settings.embedded)?;
            tracing::info!(events = %publisher.path().display(), "events: local JSON-lines log");
            Arc::new(publisher)
        }
        EventsAdapter::Kafka => {
            // Connects on first use: sends are accepted (into the outbox) while Kafka is down.
            let publisher = chat_kafka::KafkaPublisher::new(settings.kafka.clone())?;
            tracing::info!(
                brokers = ?settings.kafka.brokers,
                topic = settings.kafka.topic,
                "events: kafka"
            );
            Arc::new(publisher)
        }
    })
}

/// A shared store with an in-process cache or fan-out works for one instance only: say so.
fn warn_if_instance_local(settings: &Settings) {
    let adapters = settings.adapters;
    if adapters.store != StoreAdapter::Embedded
        && (adapters.cache == CacheAdapter::Memory || adapters.fan_out == FanOutAdapter::Local)
    {
        tracing::warn!(
            "cache and fan-out are in-process: live delivery and history cursors stay on this \
             instance, so run a single instance with these adapters"
        );
    }
}

/// Creates or upgrades the configured store's schema.
///
/// # Errors
/// [`WiringError`] when the storage cannot be reached or a migration fails.
pub async fn migrate(settings: &Settings) -> Result<(), WiringError> {
    match settings.adapters.store {
        StoreAdapter::Embedded => {
            // Opening the database creates every table it lacks.
            let store = EmbeddedStore::open_config(&settings.embedded)?;
            tracing::info!(database = %store.path().display(), "embedded schema is up to date");
        }
        StoreAdapter::Cassandra => {
            let applied = chat_cassandra::migrate(&settings.cassandra).await?;
            tracing::info!(
                keyspace = settings.cassandra.keyspace,
                ?applied,
                "cassandra schema is up to date"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// The adapter crates, as Rust code names them.
    const ADAPTER_CRATES: [&str; 5] = [
        "chat_cassandra",
        "chat_crypto",
        "chat_embedded",
        "chat_kafka",
        "chat_redis",
    ];

    fn rust_files(folder: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, found);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                found.push(path);
            }
        }
    }

    #[test]
    fn no_module_but_wiring_names_an_adapter_crate() {
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
        let wiring = source.join("wiring");
        let mut files = Vec::new();
        rust_files(&source, &mut files);
        assert!(files.len() > 10, "found only {files:?}");
        let mut offenders = Vec::new();
        for file in files.iter().filter(|file| !file.starts_with(&wiring)) {
            let text = std::fs::read_to_string(file).unwrap();
            for adapter in ADAPTER_CRATES {
                // A path (`chat_redis::…`) or an import (`use chat_redis`); metric names such as
                // "chat_redis_degraded" are neither.
                if text.contains(&format!("{adapter}::"))
                    || text.contains(&format!("use {adapter}"))
                {
                    offenders.push(format!("{} names {adapter}", file.display()));
                }
            }
        }
        assert!(offenders.is_empty(), "{offenders:#?}");
    }
}
