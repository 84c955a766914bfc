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

/// How many sockets this instance holds at most: per user, and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketCaps {
    /// Sockets one user may hold on this instance.
    pub per_user: usize,
    /// Sockets this instance holds in all (keep it below the process's file limit: each socket
    /// is one file descriptor, two in nginx).
    pub per_instance: usize,
}

/// Why a socket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The user holds as many sockets here as allowed.
    #[error("this user already holds {0} sockets, the most allowed")]
    UserFull(usize),
    /// The instance holds as many sockets as allowed.
    #[error("this instance holds {0} sockets, the most allowed")]
    InstanceFull(usize),
}

/// The registry of local connections.
pub struct Connections {
    by_user: Mutex<HashMap<UserId, Vec<ConnectionHandle>>>,
    metrics: Arc<Metrics>,
    caps: SocketCaps,
}

impl Connections {
    /// An empty registry that admits at most `caps` sockets.
    pub fn new(metrics: Arc<Metrics>, caps: SocketCaps) -> Self {
        Self {
            by_user: Mutex::default(),
            metrics,
            caps,
        }
    }

    /// Adds a connection unless it would exceed a cap; returns its close signal and whether it
    /// is the user's first here (the fan-out must then start routing the user's events to this
    /// instance). Checking and adding under one lock keeps the caps exact under concurrent
    /// upgrades.
    ///
    /// # Errors
    /// [`Refused`] when the user or the instance holds as many sockets as allowed.
    pub fn register(
        &self,
        user: UserId,
        id: ConnectionId,
        queue: mpsc::Sender<Outbound>,
        shutdown: &CancellationToken,
    ) -> Result<(CloseSignal, bool), Refused> {
        let mut by_user = lock(&self.by_user);
        if by_user.values().map(Vec::len).sum::<usize>() >= self.caps.per_instance {
            return Err(Refused::InstanceFull(self.caps.per_instance));
        }
        if by_user.get(&user).map_or(0, Vec::len) >= self.caps.per_user {
            return Err(Refused::UserFull(self.caps.per_user));
        }
        let cause = Arc::new(Mutex::new(None));
        let closing = shutdown.child_token();
        let handle = ConnectionHandle {
            id,
            queue,
            close: cause.clone(),
            closing: closing.clone(),
        };
        let handles = by_user.entry(user).or_default();
        handles.push(handle);
        self.metrics.connections.inc();
        Ok((
            CloseSignal {
                cause,
                token: closing,
            },
            handles.len() == 1,
        ))
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
