//! One adapter per port, chosen by the profile. The only place that names adapter crates.

use std::sync::Arc;

use chat_crypto::MessageCipher;
use chat_domain::{EventPublisher, LocalDelivery, Outbox, Ports};
use chat_embedded::{EmbeddedStore, InProcessCache, InProcessFanOut, JsonLinesPublisher};

use crate::settings::{Profile, Settings};
use crate::startup::StartupError;

/// The wired adapters: the service's ports, and the outbox relay's two ends.
pub struct Wiring {
    /// The service's ports.
    pub ports: Ports,
    /// Where the relay reads events.
    pub outbox: Arc<dyn Outbox>,
    /// Where the relay publishes them.
    pub publisher: Arc<dyn EventPublisher>,
}

/// Builds the adapters of `profile`. `local` is this instance's socket registry.
///
/// # Errors
/// [`StartupError`] when a key or an adapter cannot be set up.
pub fn wire(
    settings: &Settings,
    profile: Profile,
    local: Arc<dyn LocalDelivery>,
) -> Result<Wiring, StartupError> {
    let cipher = Arc::new(MessageCipher::from_config(&settings.crypto)?);
    match profile {
        Profile::Embedded => {
            let mut embedded = settings.embedded.clone();
            embedded.cache.recent_window = settings.limits.recent_window as usize;
            let store = Arc::new(EmbeddedStore::open_config(&embedded)?);
            let cache = Arc::new(InProcessCache::new(&embedded.cache));
            let publisher = Arc::new(JsonLinesPublisher::open_config(&embedded)?);
            tracing::info!(
                database = %store.path().display(),
                events = %publisher.path().display(),
                "embedded profile: single instance, data on local disk"
            );
            Ok(Wiring {
                ports: Ports {
                    store: store.clone(),
                    chats: store.clone(),
                    recent: cache.clone(),
                    chat_lists: cache.clone(),
                    cursors: cache,
                    fan_out: Arc::new(InProcessFanOut::new(local)),
                    cipher,
                },
                outbox: store,
                publisher,
            })
        }
    }
}

/// Creates or upgrades the storage schema of `profile`.
///
/// # Errors
/// [`StartupError`] when the storage cannot be opened.
pub fn migrate(settings: &Settings, profile: Profile) -> Result<(), StartupError> {
    match profile {
        Profile::Embedded => {
            // Opening the database creates every table it lacks.
            let store = EmbeddedStore::open_config(&settings.embedded)?;
            tracing::info!(database = %store.path().display(), "embedded schema is up to date");
        }
    }
    Ok(())
}
