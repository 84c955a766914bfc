//! The outbox relay: moves events from the outbox to the publisher, and removes them only once
//! the publisher confirmed them. Several relays may run at once (one per instance): an event
//! may then be published twice, never lost, and both copies carry the same event id.

use std::sync::Arc;

use crate::error::Result;
use crate::ports::{EventPublisher, Outbox};

/// Relays outbox events to an [`EventPublisher`].
pub struct OutboxRelay {
    outbox: Arc<dyn Outbox>,
    publisher: Arc<dyn EventPublisher>,
    batch: u32,
}

impl OutboxRelay {
    /// A relay moving up to `batch` events per round.
    pub fn new(outbox: Arc<dyn Outbox>, publisher: Arc<dyn EventPublisher>, batch: u32) -> Self {
        Self {
            outbox,
            publisher,
            batch: batch.max(1),
        }
    }

    /// Publishes one batch of pending events; returns how many were published and removed.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] from the outbox or the publisher; nothing is removed that
    /// was not confirmed, so the next round retries.
    pub async fn relay_once(&self) -> Result<usize> {
        let events = self.outbox.pending(self.batch).await?;
        if events.is_empty() {
            return Ok(0);
        }
        self.publisher.publish(&events).await?;
        let ids: Vec<_> = events.iter().map(|event| event.event_id).collect();
        self.outbox.remove(&ids).await?;
        Ok(events.len())
    }

    /// Gives up this relay's share of the outbox (on shutdown, after the last round).
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] on an outbox outage.
    pub async fn release(&self) -> Result<()> {
        self.outbox.release().await
    }

    /// How many events wait in the outbox.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] on an outbox outage.
    pub async fn backlog(&self) -> Result<u64> {
        self.outbox.backlog().await
    }
}
