//! One adapter per port, as `[adapters]` says. The only place that names adapter crates.

use std::sync::Arc;

use chat_crypto::MessageCipher;
use chat_domain::{
    ChatDirectory, ChatListCache, CursorStore, EventPublisher, LivePublisher, LiveRoutes,
    LocalDelivery, MessageStore, Outbox, Ports, Presence, RecentMessages,
};
use chat_embedded::{EmbeddedStore, InProcessCache, InProcessFanOut, JsonLinesPublisher};
use chat_redis::{RedisCache, RedisConnection, RedisFanOut};

use crate::settings::{CacheAdapter, EventsAdapter, FanOutAdapter, Settings, StoreAdapter};
use crate::startup::StartupError;

/// The wired adapters: the service's ports, and the outbox relay's two ends.
pub struct Wiring {
    /// The service's ports.
    pub ports: Ports,
    /// Where the relay reads events.
    pub outbox: Arc<dyn Outbox>,
    /// Where the relay publishes them.
    pub publisher: Arc<dyn EventPublisher>,
    /// The Redis clients, when an adapter uses Redis (for health, metrics and shutdown).
    pub redis: Option<RedisConnection>,
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
/// [`StartupError`] when a key or an adapter cannot be set up.
pub async fn wire(
    settings: &Settings,
    local: Arc<dyn LocalDelivery>,
) -> Result<Wiring, StartupError> {
    let adapters = settings.adapters;
    let cipher = Arc::new(MessageCipher::from_config(&settings.crypto)?);
    if settings.migrate_on_start {
        migrate(settings).await?;
    }
    let (store, chats, outbox): (
        Arc<dyn MessageStore>,
        Arc<dyn ChatDirectory>,
        Arc<dyn Outbox>,
    ) = match adapters.store {
        StoreAdapter::Embedded => {
            let store = Arc::new(EmbeddedStore::open_config(&settings.embedded)?);
            tracing::info!(database = %store.path().display(), "store: embedded (single instance)");
            (store.clone(), store.clone(), store)
        }
        StoreAdapter::Cassandra => {
            let (store, chats) = chat_cassandra::connect_adapters(&settings.cassandra).await?;
            tracing::info!(
                contact_points = ?settings.cassandra.contact_points,
                keyspace = settings.cassandra.keyspace,
                "store: cassandra"
            );
            let store = Arc::new(store);
            (store.clone(), Arc::new(chats), store)
        }
    };
    let uses_redis =
        adapters.cache == CacheAdapter::Redis || adapters.fan_out == FanOutAdapter::Redis;
    let redis = if uses_redis {
        let mut config = settings.redis.clone();
        config.recent_window = settings.limits.recent_window as usize;
        let redis = RedisConnection::start(config)?;
        // Redis is a cache: the service starts without it and the clients keep reconnecting.
        let wait = std::time::Duration::from_millis(settings.redis.connect_timeout_ms);
        match redis.wait_connected(wait).await {
            Ok(()) => tracing::info!(nodes = ?settings.redis.nodes, "redis: connected"),
            Err(error) => tracing::warn!(
                error = %chat_domain::Report::of(&error),
                "redis does not answer yet; starting without it (reads use the store, live \
                 delivery stays on this instance) and reconnecting in the background"
            ),
        }
        Some(redis)
    } else {
        None
    };
    let cache = match (adapters.cache, &redis) {
        (CacheAdapter::Redis, Some(redis)) => {
            CacheAndCursorPorts::of(RedisCache::new(redis.clone()))
        }
        _ => {
            let mut config = settings.embedded.cache.clone();
            config.recent_window = settings.limits.recent_window as usize;
            CacheAndCursorPorts::of(InProcessCache::new(&config))
        }
    };
    let live = match (adapters.fan_out, &redis) {
        (FanOutAdapter::Redis, Some(redis)) => {
            LivePorts::of(RedisFanOut::new(redis.clone(), local))
        }
        _ => LivePorts::of(InProcessFanOut::new(local)),
    };
    let publisher: Arc<dyn EventPublisher> = match adapters.events {
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
    };
    if adapters.store != StoreAdapter::Embedded
        && (adapters.cache == CacheAdapter::Memory || adapters.fan_out == FanOutAdapter::Local)
    {
        tracing::warn!(
            "cache and fan-out are in-process: live delivery and history cursors stay on this \
             instance, so run a single instance with these adapters"
        );
    }
    Ok(Wiring {
        ports: Ports {
            store,
            chats,
            recent: cache.recent,
            chat_lists: cache.chat_lists,
            cursors: cache.cursors,
            live: live.publisher,
            presence: live.presence,
            routes: live.routes,
            cipher,
            clock: Arc::new(chat_domain::SystemClock),
        },
        outbox,
        publisher,
        redis,
    })
}

/// Creates or upgrades the configured store's schema.
///
/// # Errors
/// [`StartupError`] when the storage cannot be reached or a migration fails.
pub async fn migrate(settings: &Settings) -> Result<(), StartupError> {
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
