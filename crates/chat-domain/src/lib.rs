//! # chat-domain
//!
//! The heart of chat-message-service: the one-to-one chat model, the **ports** through which
//! it reaches storage, caches, events, encryption and live delivery, and the **use cases** over
//! them. It does no I/O and names no driver: adapters (`chat-cassandra`, `chat-redis`,
//! `chat-kafka`, `chat-crypto`, `chat-embedded`) implement the ports, and `chat-server` wires
//! one adapter per port.
//!
//! ## Layout
//! - [`ids`]: `UserId`, `ChatId` (derived from the sorted pair of users), `MessageId` (UUIDv7
//!   carrying the message's timestamp), `ClientMessageId`, `EventId`, `ConnectionId`.
//! - [`model`]: `Chat`, `Message` (plaintext, for users), `StoredMessage` (sealed, for
//!   everything else), `Sealed` (encrypted content) and `KeyedDigest` (the keyed hash of the
//!   plaintext, which nothing opens), `MessageKind`, and `MessagePosition`, the newest-first
//!   order every store keeps.
//! - [`paging`]: where a history page starts, the cursors clients see (kept by the
//!   `CursorStore`, their only copy), the cached recent window.
//! - [`events`]: the durable `NewMessageEvent` for notification-service and the `LiveEvent`s
//!   pushed to connected users.
//! - [`ports`]: the traits adapters implement, each with its error contract: the store and
//!   chat directory; the caches (`RecentMessages`, `ChatListCache`); the `CursorStore` (not a
//!   cache); live delivery as three ports with one job each, `LivePublisher` (publish a live
//!   event), `Presence` (is a user online) and `LiveRoutes` (route a user's events to this
//!   instance: watch/unwatch), which one fan-out adapter usually implements together; the
//!   outbox and event publisher; the `Cipher`; and the `Clock` (`SystemClock` outside tests).
//! - [`service`]: `ChatService`, the use cases (the server's only way in: it never holds a port).
//! - [`relay`]: `OutboxRelay`, from outbox to event publisher: one round, or the whole loop with
//!   its jittered backoff and shutdown over the host's `RelaySchedule` and `RelayMetrics`.
//! - [`error`]: the one error type, with stable codes for clients; the adapter's failure rides
//!   along as its `source` (`Cause`), and `Report` prints the whole chain once.
//! - `testing` (feature `testing`): in-memory adapters for unit tests, and `ManualClock`, which
//!   tests move instead of sleeping.
//!
//! ## Invariants
//! - Plaintext content exists only inside `ChatService` and in the `Message` it returns; every
//!   port except the cipher sees sealed content.
//! - Only a stored message is acknowledged; caches, fan-out and events come after and may be
//!   retried or lost without losing the message.
#![forbid(unsafe_code)]

pub mod error;
pub mod events;
pub mod ids;
pub mod model;
pub mod paging;
pub mod ports;
pub mod relay;
pub mod service;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Cause, Error, Report, Result};
pub use events::{LiveEvent, NewMessageEvent};
pub use ids::{
    ChatId, ClientMessageId, ConnectionId, EventId, MessageId, MessageIdGenerator, UserId,
};
pub use model::{
    Chat, ChatSummary, KeyedDigest, Message, MessageKind, MessagePosition, Sealed, StoredMessage,
};
pub use paging::{CursorId, CursorOwner, PageStart, RecentWindow, StoredPage};
pub use ports::{
    Appended, ChatDirectory, ChatListCache, Cipher, Clock, CursorStore, EventPublisher,
    LivePublisher, LiveRoutes, LocalDelivery, MessageStore, Outbox, Ports, Presence,
    RecentMessages, SealBinding, SystemClock,
};
pub use relay::{OutboxRelay, RelayMetrics, RelayPacing, RelaySchedule};
pub use service::{
    Accepted, Ack, ChatService, HistoryPage, Limits, Recipient, SeenReceipt, SendRequest, SyncBatch,
};
