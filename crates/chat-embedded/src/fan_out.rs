//! [`InProcessFanOut`]: live delivery when one process holds every connection.

use std::sync::Arc;

use async_trait::async_trait;
use chat_domain::{FanOut, LiveEvent, LocalDelivery, Result, UserId};

/// The embedded profile's [`FanOut`]: hands every event straight to this process's
/// connections. Single process: there is no other instance to route to, so
/// [`FanOut::watch`] and [`FanOut::unwatch`] do nothing and presence is local presence.
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
impl FanOut for InProcessFanOut {
    async fn publish(&self, user: UserId, event: &LiveEvent) -> Result<()> {
        // Whether anyone took it does not matter: an offline user catches up with `sync`.
        let taken = self.delivery.deliver(user, event);
        tracing::trace!(%user, taken, "delivered a live event locally");
        Ok(())
    }

    async fn is_connected(&self, user: UserId) -> Result<bool> {
        Ok(self.delivery.is_connected_here(user))
    }

    async fn watch(&self, _user: UserId) -> Result<()> {
        Ok(())
    }

    async fn unwatch(&self, _user: UserId) -> Result<()> {
        Ok(())
    }
}
