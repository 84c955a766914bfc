//! The WebSocket connections this instance holds, by user. The fan-out adapter hands live
//! events here ([`LocalDelivery`]); each connection has a bounded queue, and a connection whose
//! queue is full is closed (its client reconnects and catches up with `sync`) rather than
//! stalling delivery to everyone else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use actix_ws::CloseCode;
use chat_domain::{ConnectionId, LiveEvent, LocalDelivery, UserId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::ws::frames::ServerFrame;

/// What a connection's writer sends next.
#[derive(Debug)]
///
/// Both variants are pointers: a queue's slots are allocated in blocks of 32 when the queue is
/// created, so an inline frame (~250 bytes) cost every idle socket ~8 KiB of slots.
pub enum Outbound {
    /// A frame answering this connection's own request.
    Frame(Box<ServerFrame>),
    /// An event from the fan-out, still sealed; one copy shared by every local socket.
    Live(Arc<LiveEvent>),
}

/// Why a connection ends, as a close code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// The server is shutting down (1001).
    ShuttingDown,
    /// No frame from the client within the timeout (4000).
    IdleTimeout,
    /// The access token expired (4001).
    TokenExpired,
    /// The client did not read fast enough (1013).
    TooSlow,
    /// A frame exceeded the size limit (1009).
    FrameTooLarge,
    /// The client broke the protocol (1002).
    ProtocolError,
}

impl CloseCause {
    /// The close frame to send.
    pub fn reason(self) -> actix_ws::CloseReason {
        let (code, description) = match self {
            Self::ShuttingDown => (CloseCode::Away, "server shutting down; reconnect"),
            Self::IdleTimeout => (CloseCode::Other(4000), "idle timeout"),
            Self::TokenExpired => (CloseCode::Other(4001), "access token expired"),
            Self::TooSlow => (CloseCode::Again, "too slow reading; reconnect and sync"),
            Self::FrameTooLarge => (CloseCode::Size, "frame too large"),
            Self::ProtocolError => (CloseCode::Protocol, "protocol error"),
        };
        actix_ws::CloseReason {
            code,
            description: Some(description.to_owned()),
        }
    }
}

/// The handle of one live connection.
#[derive(Clone)]
struct ConnectionHandle {
    id: ConnectionId,
    queue: mpsc::Sender<Outbound>,
    /// Cancelled with a cause to make the connection close itself.
    close: Arc<Mutex<Option<CloseCause>>>,
    closing: CancellationToken,
}

/// What the connection task holds to learn that it must close, and why.
pub struct CloseSignal {
    cause: Arc<Mutex<Option<CloseCause>>>,
    /// Cancelled when the connection must close.
    pub token: CancellationToken,
}

impl CloseSignal {
    /// The reason the connection was told to close.
    pub fn cause(&self) -> Option<CloseCause> {
        *lock(&self.cause)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The registry of local connections.
pub struct Connections {
    by_user: Mutex<HashMap<UserId, Vec<ConnectionHandle>>>,
    metrics: Arc<Metrics>,
}

impl Connections {
    /// An empty registry.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            by_user: Mutex::default(),
            metrics,
        }
    }

    /// Adds a connection; returns its close signal and whether it is the user's first here
    /// (the fan-out must then start routing the user's events to this instance).
    pub fn register(
        &self,
        user: UserId,
        id: ConnectionId,
        queue: mpsc::Sender<Outbound>,
        shutdown: &CancellationToken,
    ) -> (CloseSignal, bool) {
        let cause = Arc::new(Mutex::new(None));
        let closing = shutdown.child_token();
        let handle = ConnectionHandle {
            id,
            queue,
            close: cause.clone(),
            closing: closing.clone(),
        };
        let mut by_user = lock(&self.by_user);
        let handles = by_user.entry(user).or_default();
        handles.push(handle);
        self.metrics.connections.inc();
        (
            CloseSignal {
                cause,
                token: closing,
            },
            handles.len() == 1,
        )
    }

    /// Removes a connection; returns whether it was the user's last here.
    pub fn unregister(&self, user: UserId, id: ConnectionId) -> bool {
        let mut by_user = lock(&self.by_user);
        let Some(handles) = by_user.get_mut(&user) else {
            return false;
        };
        let before = handles.len();
        handles.retain(|handle| handle.id != id);
        if handles.len() < before {
            self.metrics.connections.dec();
        }
        let last = handles.is_empty();
        if last {
            by_user.remove(&user);
        }
        last
    }

    /// How many connections are open.
    pub fn count(&self) -> usize {
        lock(&self.by_user).values().map(Vec::len).sum()
    }

    /// Tells every connection to close with `cause`.
    pub fn close_all(&self, cause: CloseCause) {
        for handle in lock(&self.by_user).values().flatten() {
            close(handle, cause);
        }
    }
}

fn close(handle: &ConnectionHandle, cause: CloseCause) {
    lock(&handle.close).get_or_insert(cause);
    handle.closing.cancel();
}

impl LocalDelivery for Connections {
    fn deliver(&self, user: UserId, event: &LiveEvent) -> bool {
        let by_user = lock(&self.by_user);
        let Some(handles) = by_user.get(&user) else {
            return false;
        };
        let mut delivered = false;
        let shared = Arc::new(event.clone());
        for handle in handles {
            if Some(handle.id) == event.origin() {
                continue;
            }
            match handle.queue.try_send(Outbound::Live(shared.clone())) {
                Ok(()) => {
                    delivered = true;
                    self.metrics.live_events.inc();
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(%user, connection = %handle.id, "socket too slow; closing it");
                    self.metrics.slow_consumers.inc();
                    close(handle, CloseCause::TooSlow);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        delivered
    }

    fn is_connected_here(&self, user: UserId) -> bool {
        lock(&self.by_user).contains_key(&user)
    }
}

#[cfg(test)]
mod tests {
    use super::Outbound;

    #[test]
    fn a_queued_item_is_a_pointer_so_an_idle_queue_stays_small() {
        // Every connection's queue allocates a block of 32 slots up front: at 16 bytes a slot
        // that is 512 bytes per idle socket (it was ~8 KiB with frames inline).
        assert!(
            std::mem::size_of::<Outbound>() <= 16,
            "{} bytes",
            std::mem::size_of::<Outbound>()
        );
    }
}
