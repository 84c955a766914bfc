//! The ports: what the use cases need from the outside world, as small traits. Every adapter
//! keeps the contract written in each method's `# Errors` section, and maps its own failures
//! into [`Error`] (a timeout or refused connection is [`Error::Unavailable`], undecodable data
//! is [`Error::Corrupt`]).

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::Result;
use crate::events::{LiveEvent, NewMessageEvent};
use crate::ids::{ChatId, EventId, MessageId, UserId};
use crate::model::{Chat, ChatSummary, KeyedDigest, Sealed, StoredMessage};
use crate::paging::{CursorId, CursorOwner, PageStart, RecentWindow, StoredPage};

/// What [`MessageStore::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// The message and its event were stored.
    Stored,
    /// The sender already sent this `client_msg_id` in this chat; this is the message stored
    /// then, and nothing new was written.
    Duplicate(StoredMessage),
}

/// The source of truth for messages, and the outbox written with them.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores `message` and `event` together (both or neither), unless `message.sender_id`
    /// already stored `message.client_msg_id` in `message.chat_id`. Concurrent calls with the
    /// same key, from any instance, store one message.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the store cannot confirm durability; the caller must
    /// then not acknowledge the message.
    async fn append(&self, message: &StoredMessage, event: &NewMessageEvent) -> Result<Appended>;

    /// Up to `limit` messages of `chat`, newest first, from `start` on. `next` is set when more
    /// remain. Paging to the end returns every message that existed when paging began exactly
    /// once, even while new messages arrive.
    ///
    /// # Errors
    /// [`crate::Error::InvalidCursor`] when a [`PageStart::Resume`] state is not one this store
    /// made for this chat; [`crate::Error::Unavailable`] on an outage.
    async fn page(&self, chat: ChatId, start: &PageStart, limit: u32) -> Result<StoredPage>;

    /// Up to `limit` messages of `chat` newer than `after` (all, from the oldest, when `None`),
    /// **oldest first**: what a reconnecting client missed.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] on an outage.
    async fn since(
        &self,
        chat: ChatId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>>;

    /// One message, or `None` when the chat has no such message.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] on an outage.
    async fn get(&self, chat: ChatId, id: MessageId) -> Result<Option<StoredMessage>>;

    /// Records that the message was seen at `at`, unless it was seen before (the first time
    /// stands). Returns the message as it now is, or `None` when there is no such message.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] on an outage.
    async fn mark_seen(
        &self,
        chat: ChatId,
        id: MessageId,
        at: OffsetDateTime,
    ) -> Result<Option<StoredMessage>>;
}

/// Chats and their members.
#[async_trait]
pub trait ChatDirectory: Send + Sync + 'static {
    /// Records `chat` and lists it for both members, unless it exists; returns the stored chat
    /// (the first `created_at` stands). Safe to call concurrently from both sides.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] on an outage.
    async fn open(&self, chat: &Chat) -> Result<Chat>;

    /// The chat, or `None` when it was never opened.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] on an outage.
    async fn get(&self, chat: ChatId) -> Result<Option<Chat>>;

    /// Every chat of `user`, oldest first.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] on an outage.
    async fn chats_of(&self, user: UserId) -> Result<Vec<ChatSummary>>;
}

/// The newest messages of each chat, kept for fast first pages. A cache: losing it loses
/// nothing, and the use cases carry on without it when it fails.
#[async_trait]
pub trait RecentMessages: Send + Sync + 'static {
    /// The cached window of `chat`, or `None` when it is not cached or not yet primed.
    ///
    /// # Errors
    /// Any; the caller falls back to the store.
    async fn window(&self, chat: ChatId) -> Result<Option<RecentWindow>>;

    /// Caches `window` (read from the store) for `chat`, merging with messages
    /// [`RecentMessages::remember`]ed meanwhile.
    ///
    /// # Errors
    /// Any; the caller carries on.
    async fn prime(&self, chat: ChatId, window: &RecentWindow) -> Result<()>;

    /// Adds a new message to its chat's window (inserting in order, dropping the oldest beyond
    /// the capacity). Idempotent by message id. When the chat has no window yet, starts one
    /// that [`RecentMessages::window`] does not serve until it is primed: a prime of a store
    /// read that began before this message was stored then still includes it.
    ///
    /// # Errors
    /// Any; the caller then calls [`RecentMessages::forget`] so a window never has a gap.
    async fn remember(&self, message: &StoredMessage) -> Result<()>;

    /// Replaces a message already in its chat's window (e.g. now seen); does nothing otherwise.
    ///
    /// # Errors
    /// Any; the caller then calls [`RecentMessages::forget`].
    async fn refresh(&self, message: &StoredMessage) -> Result<()>;

    /// Drops the window of `chat`.
    ///
    /// # Errors
    /// Any; logged by the caller.
    async fn forget(&self, chat: ChatId) -> Result<()>;
}

/// Users' chat lists, cached.
#[async_trait]
pub trait ChatListCache: Send + Sync + 'static {
    /// The cached list of `user`, or `None`.
    ///
    /// # Errors
    /// Any; the caller falls back to the directory.
    async fn get(&self, user: UserId) -> Result<Option<Vec<ChatSummary>>>;

    /// Caches the list of `user`.
    ///
    /// # Errors
    /// Any; the caller carries on.
    async fn put(&self, user: UserId, chats: &[ChatSummary]) -> Result<()>;

    /// Drops the list of `user` (a chat was opened).
    ///
    /// # Errors
    /// Any; logged by the caller.
    async fn forget(&self, user: UserId) -> Result<()>;
}

/// Maps the cursors clients see to where their next page starts. Not a cache: it holds the
/// only copy of each cursor (nothing can rebuild one), so a lost cursor fails to load as
/// [`crate::Error::InvalidCursor`] and the client pages again from the first page.
#[async_trait]
pub trait CursorStore: Send + Sync + 'static {
    /// Keeps `start` under `id` for `owner`, for the configured time to live.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when it cannot be kept.
    async fn save(&self, id: &CursorId, owner: CursorOwner, start: &PageStart) -> Result<()>;

    /// Where the page of cursor `id` starts.
    ///
    /// # Errors
    /// [`crate::Error::InvalidCursor`] when `id` is unknown, expired, or was saved for another
    /// owner; [`crate::Error::Unavailable`] on an outage.
    async fn load(&self, id: &CursorId, owner: CursorOwner) -> Result<PageStart>;
}

/// Publishes live events to the connections of a user, on whichever instance they are.
/// Best effort: a client that missed something catches up with `sync`. (Live delivery is three
/// ports, [`LivePublisher`], [`Presence`] and [`LiveRoutes`]; one fan-out adapter usually
/// implements all three.)
#[async_trait]
pub trait LivePublisher: Send + Sync + 'static {
    /// Sends `event` to every live connection of `user`.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the event could not be handed on.
    async fn publish(&self, user: UserId, event: &LiveEvent) -> Result<()>;
}

/// Tells whether a user is online, on any instance.
#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// Whether `user` has a live connection anywhere.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when that cannot be told.
    async fn is_connected(&self, user: UserId) -> Result<bool>;
}

/// Routes a user's live events to the instance that holds their connections.
#[async_trait]
pub trait LiveRoutes: Send + Sync + 'static {
    /// This instance now holds a connection of `user`: route their events here.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the route could not be set up.
    async fn watch(&self, user: UserId) -> Result<()>;

    /// This instance holds no more connections of `user`.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`]; the route then lapses on its own.
    async fn unwatch(&self, user: UserId) -> Result<()>;
}

/// The connections this instance holds, which a [`LivePublisher`] adapter hands events to (and
/// a [`Presence`] adapter asks first). Implemented by the server.
pub trait LocalDelivery: Send + Sync + 'static {
    /// Queues `event` for every local connection of `user` (but its origin). Returns whether
    /// any local connection took it.
    fn deliver(&self, user: UserId, event: &LiveEvent) -> bool;

    /// Whether `user` has a connection on this instance.
    fn is_connected_here(&self, user: UserId) -> bool;
}

/// The events waiting to be published, written by [`MessageStore::append`].
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Up to `limit` events not yet removed, oldest first.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] on an outage.
    async fn pending(&self, limit: u32) -> Result<Vec<NewMessageEvent>>;

    /// Removes events that the publisher confirmed. Removing an absent event is not an error.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] on an outage; the events are then published again later.
    async fn remove(&self, ids: &[EventId]) -> Result<()>;

    /// How many events wait, for the backlog metric.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] on an outage.
    async fn backlog(&self) -> Result<u64>;

    /// This instance's relay stops: give up any share of the outbox it holds, so other
    /// instances take it at once. Does nothing by default.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`]; the share is then freed when its lease runs out.
    async fn release(&self) -> Result<()> {
        Ok(())
    }
}

/// Publishes new-message events to notification-service.
#[async_trait]
pub trait EventPublisher: Send + Sync + 'static {
    /// Publishes `events` durably; returns only once the destination confirmed all of them.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when not all were confirmed (some may have been
    /// published: consumers dedup on event id).
    async fn publish(&self, events: &[NewMessageEvent]) -> Result<()>;
}

/// What a sealed message is bound to: a ciphertext moved to another row, chat or sender fails
/// to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealBinding {
    /// The message's chat.
    pub chat_id: ChatId,
    /// The message.
    pub message_id: MessageId,
    /// The message's sender.
    pub sender_id: UserId,
}

impl SealBinding {
    /// The binding of a stored message.
    pub fn of(message: &StoredMessage) -> Self {
        Self {
            chat_id: message.chat_id,
            message_id: message.id,
            sender_id: message.sender_id,
        }
    }

    /// The associated data to authenticate: chat id, message id and sender id, 16 bytes each.
    pub fn associated_data(&self) -> [u8; 48] {
        let mut aad = [0u8; 48];
        aad[..16].copy_from_slice(self.chat_id.as_bytes());
        aad[16..32].copy_from_slice(self.message_id.as_bytes());
        aad[32..].copy_from_slice(self.sender_id.as_bytes());
        aad
    }
}

/// Encrypts message content for storage and computes keyed digests. CPU-bound, so not async.
pub trait Cipher: Send + Sync + 'static {
    /// Seals `plaintext` under the active key, bound to `binding`.
    ///
    /// # Errors
    /// [`crate::Error::Internal`] when sealing fails (no randomness).
    fn seal(&self, plaintext: &[u8], binding: &SealBinding) -> Result<Sealed>;

    /// Opens content sealed by [`Cipher::seal`] under any configured key.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] when the envelope is malformed, its key unknown, or it was
    /// tampered with or bound to something else.
    fn open(&self, sealed: &Sealed, binding: &SealBinding) -> Result<Vec<u8>>;

    /// A keyed digest (HMAC-SHA256) of `plaintext`: a hash, not sealed content.
    fn digest(&self, plaintext: &[u8]) -> KeyedDigest;
}

/// What time it is, for the use cases (message timestamps, when a chat was opened, when a
/// message was seen). A port so tests move time by hand instead of sleeping.
pub trait Clock: Send + Sync + 'static {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The [`Clock`] of the machine: [`OffsetDateTime::now_utc`]. Reads the time and nothing
/// else, so it lives in the domain rather than in an adapter crate.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// One adapter per port, as the server wires them for a profile.
#[derive(Clone)]
pub struct Ports {
    /// Messages and outbox.
    pub store: Arc<dyn MessageStore>,
    /// Chats.
    pub chats: Arc<dyn ChatDirectory>,
    /// Recent messages cache.
    pub recent: Arc<dyn RecentMessages>,
    /// Chat list cache.
    pub chat_lists: Arc<dyn ChatListCache>,
    /// History cursors.
    pub cursors: Arc<dyn CursorStore>,
    /// Publishing live events.
    pub live: Arc<dyn LivePublisher>,
    /// Who is online.
    pub presence: Arc<dyn Presence>,
    /// Routing users' live events to this instance.
    pub routes: Arc<dyn LiveRoutes>,
    /// Content encryption.
    pub cipher: Arc<dyn Cipher>,
    /// The time ([`SystemClock`] outside tests).
    pub clock: Arc<dyn Clock>,
}
