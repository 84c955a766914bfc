//! [`InProcessFanOut`]: live delivery when one process holds every connection.

use std::sync::Arc;

use async_trait::async_trait;
use chat_domain::{LiveEvent, LivePublisher, LiveRoutes, LocalDelivery, Presence, Result, UserId};

/// The embedded profile's live delivery ([`LivePublisher`], [`Presence`] and [`LiveRoutes`]):
/// hands every event straight to this process's connections. Single process: there is no other
/// instance to route to, so [`LiveRoutes::watch`] and [`LiveRoutes::unwatch`] do nothing and
/// presence is local presence.
#[derive(Clone)]
pub struct InProcessFanOut {
    delivery: Arc<dyn LocalDelivery>,
}

impl std::fmt::Debug for InProcessFanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessFanOut").finish_non_exhaustive()
    }
}

impl InProcessFanOut {
    /// A fan-out delivering to `delivery`, the server's registry of local connections.
    pub fn new(delivery: Arc<dyn LocalDelivery>) -> Self {
        Self { delivery }
    }
}

#[async_trait]
impl LivePublisher for InProcessFanOut {
    async fn publish(&self, user: UserId, event: &LiveEvent) -> Result<()> {
        // Whether anyone took it does not matter: an offline user catches up with `sync`.
        let taken = self.delivery.deliver(user, event);
        tracing::trace!(%user, taken, "delivered a live event locally");
        Ok(())
    }
}

#[async_trait]
impl Presence for InProcessFanOut {
    async fn is_connected(&self, user: UserId) -> Result<bool> {
        Ok(self.delivery.is_connected_here(user))
    }
}

#[async_trait]
impl LiveRoutes for InProcessFanOut {
    async fn watch(&self, _user: UserId) -> Result<()> {
        Ok(())
    }

    async fn unwatch(&self, _user: UserId) -> Result<()> {
        Ok(())
    }
}
