//! In-memory adapters for unit tests (feature `testing`). They keep every port's contract but
//! none of an adapter's durability, and each can be told to fail so tests can prove that the
//! use cases survive a broken cache, fan-out or publisher. **Not for production**: the cipher
//! here only stands in for encryption.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::events::{LiveEvent, NewMessageEvent};
use crate::ids::{ChatId, EventId, MessageId, UserId};
use crate::model::{Chat, ChatSummary, KeyedDigest, MessagePosition, Sealed, StoredMessage};
use crate::paging::{CursorId, CursorOwner, PageStart, RecentWindow, StoredPage};
use crate::ports::{
    Appended, ChatDirectory, ChatListCache, Cipher, Clock, CursorStore, EventPublisher,
    LivePublisher, LiveRoutes, MessageStore, Outbox, Ports, Presence, RecentMessages, SealBinding,
};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A switch that makes an adapter fail with [`Error::Unavailable`].
#[derive(Debug, Default)]
pub struct FailSwitch(AtomicBool);

impl FailSwitch {
    /// Makes calls fail (`true`) or succeed (`false`).
    pub fn set(&self, failing: bool) {
        self.0.store(failing, Ordering::SeqCst);
    }

    fn check(&self, what: &str) -> Result<()> {
        if self.0.load(Ordering::SeqCst) {
            Err(Error::Unavailable(format!("{what} is unavailable").into()))
        } else {
            Ok(())
        }
    }
}

#[derive(Default)]
struct StoreState {
    messages: BTreeMap<(ChatId, MessagePosition), StoredMessage>,
    dedup: HashMap<(ChatId, UserId, String), MessagePosition>,
    outbox: BTreeMap<EventId, NewMessageEvent>,
    chats: HashMap<ChatId, Chat>,
    user_chats: BTreeMap<(UserId, OffsetDateTime, ChatId), UserId>,
}

/// Messages, outbox and chats in memory.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<StoreState>,
    /// Fails every call while set.
    pub failing: FailSwitch,
}

impl MemoryStore {
    /// Every stored message of `chat`, newest first.
    pub fn messages_of(&self, chat: ChatId) -> Vec<StoredMessage> {
        lock(&self.state)
            .messages
            .iter()
            .filter(|((id, _), _)| *id == chat)
            .map(|(_, message)| message.clone())
            .collect()
    }
}

/// The first position of any chat's history.
const NEWEST_POSSIBLE: MessagePosition = MessagePosition {
    timestamp_ms: i64::MAX,
    id: MessageId::from_uuid(uuid::Uuid::max()),
};

fn position_state(position: MessagePosition) -> Vec<u8> {
    let mut state = position.timestamp_ms.to_be_bytes().to_vec();
    state.extend_from_slice(position.id.as_bytes());
    state
}

fn state_position(state: &[u8]) -> Result<MessagePosition> {
    let (millis, id) = state.split_first_chunk::<8>().ok_or(Error::InvalidCursor)?;
    let id = uuid::Uuid::from_slice(id).map_err(|_| Error::InvalidCursor)?;
    Ok(MessagePosition {
        timestamp_ms: i64::from_be_bytes(*millis),
        id: MessageId::from_uuid(id),
    })
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn append(&self, message: &StoredMessage, event: &NewMessageEvent) -> Result<Appended> {
        self.failing.check("memory store")?;
        let mut state = lock(&self.state);
        let key = (
            message.chat_id,
            message.sender_id,
            message.client_msg_id.as_str().to_owned(),
        );
        if let Some(position) = state.dedup.get(&key) {
            let original = state
                .messages
                .get(&(message.chat_id, *position))
                .cloned()
                .ok_or_else(|| Error::Internal("dedup entry without message".into()))?;
            return Ok(Appended::Duplicate(original));
        }
        state.dedup.insert(key, message.position());
        state
            .messages
            .insert((message.chat_id, message.position()), message.clone());
        state.outbox.insert(event.event_id, event.clone());
        Ok(Appended::Stored)
    }

    async fn page(&self, chat: ChatId, start: &PageStart, limit: u32) -> Result<StoredPage> {
        self.failing.check("memory store")?;
        let after = match start {
            PageStart::Newest => None,
            PageStart::Before { message_id } => Some(MessagePosition::of_id(*message_id)),
            PageStart::Resume { state } => Some(state_position(state)?),
        };
        let state = lock(&self.state);
        let mut rows = state
            .messages
            .range((chat, NEWEST_POSSIBLE)..)
            .take_while(|((id, _), _)| *id == chat)
            .filter(|((_, position), _)| after.is_none_or(|after| *position > after))
            .map(|(_, message)| message.clone());
        let messages: Vec<_> = rows.by_ref().take(limit as usize).collect();
        let more = rows.next().is_some();
        let next = match messages.last() {
            Some(last) if more => Some(PageStart::Resume {
                state: position_state(last.position()),
            }),
            _ => None,
        };
        Ok(StoredPage { messages, next })
    }

    async fn since(
        &self,
        chat: ChatId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        self.failing.check("memory store")?;
        let after = after.map(MessagePosition::of_id);
        let mut newer: Vec<_> = self
            .messages_of(chat)
            .into_iter()
            .filter(|message| after.is_none_or(|after| message.position() < after))
            .collect();
        newer.reverse();
        newer.truncate(limit as usize);
        Ok(newer)
    }

    async fn get(&self, chat: ChatId, id: MessageId) -> Result<Option<StoredMessage>> {
        self.failing.check("memory store")?;
        Ok(lock(&self.state)
            .messages
            .get(&(chat, MessagePosition::of_id(id)))
            .cloned())
    }

    async fn mark_seen(
        &self,
        chat: ChatId,
        id: MessageId,
        at: OffsetDateTime,
    ) -> Result<Option<StoredMessage>> {
        self.failing.check("memory store")?;
        let mut state = lock(&self.state);
        Ok(state
            .messages
            .get_mut(&(chat, MessagePosition::of_id(id)))
            .map(|message| {
                message.seen_at.get_or_insert(at);
                message.clone()
            }))
    }
}

#[async_trait]
impl ChatDirectory for MemoryStore {
    async fn open(&self, chat: &Chat) -> Result<Chat> {
        self.failing.check("memory store")?;
        let mut state = lock(&self.state);
        if let Some(existing) = state.chats.get(&chat.id) {
            return Ok(existing.clone());
        }
        state.chats.insert(chat.id, chat.clone());
        let [a, b] = chat.members;
        state.user_chats.insert((a, chat.created_at, chat.id), b);
        state.user_chats.insert((b, chat.created_at, chat.id), a);
        Ok(chat.clone())
    }

    async fn get(&self, chat: ChatId) -> Result<Option<Chat>> {
        self.failing.check("memory store")?;
        Ok(lock(&self.state).chats.get(&chat).cloned())
    }

    async fn chats_of(&self, user: UserId) -> Result<Vec<ChatSummary>> {
        self.failing.check("memory store")?;
        Ok(lock(&self.state)
            .user_chats
            .iter()
            .filter(|((member, _, _), _)| *member == user)
            .map(|((_, created_at, chat_id), peer)| ChatSummary {
                chat_id: *chat_id,
                peer_id: *peer,
                created_at: *created_at,
            })
            .collect())
    }
}

#[async_trait]
impl Outbox for MemoryStore {
    async fn pending(&self, limit: u32) -> Result<Vec<NewMessageEvent>> {
        self.failing.check("memory store")?;
        Ok(lock(&self.state)
            .outbox
            .values()
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn remove(&self, ids: &[EventId]) -> Result<()> {
        self.failing.check("memory store")?;
        let mut state = lock(&self.state);
        for id in ids {
            state.outbox.remove(id);
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<u64> {
        self.failing.check("memory store")?;
        Ok(lock(&self.state).outbox.len() as u64)
    }
}

/// Recent windows and chat lists (caches) and cursors (a cursor store, not a cache) in memory
/// (no expiry).
pub struct MemoryCache {
    capacity: usize,
    /// Each chat's window, and whether it was primed (only primed windows are served).
    windows: Mutex<HashMap<ChatId, (RecentWindow, bool)>>,
    lists: Mutex<HashMap<UserId, Vec<ChatSummary>>>,
    cursors: Mutex<HashMap<CursorId, (CursorOwner, PageStart)>>,
    /// Fails every call while set.
    pub failing: FailSwitch,
}

impl MemoryCache {
    /// A cache keeping up to `capacity` messages per chat.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            windows: Mutex::default(),
            lists: Mutex::default(),
            cursors: Mutex::default(),
            failing: FailSwitch::default(),
        }
    }

    /// The window of `chat`, if cached and primed.
    pub fn cached_window(&self, chat: ChatId) -> Option<RecentWindow> {
        lock(&self.windows)
            .get(&chat)
            .filter(|(_, primed)| *primed)
            .map(|(window, _)| window.clone())
    }

    /// Drops every cursor, as an expiry would.
    pub fn expire_cursors(&self) {
        lock(&self.cursors).clear();
    }
}

#[async_trait]
impl RecentMessages for MemoryCache {
    async fn window(&self, chat: ChatId) -> Result<Option<RecentWindow>> {
        self.failing.check("memory cache")?;
        Ok(self.cached_window(chat))
    }

    async fn prime(&self, chat: ChatId, window: &RecentWindow) -> Result<()> {
        self.failing.check("memory cache")?;
        let mut windows = lock(&self.windows);
        let (merged, primed) = windows.entry(chat).or_default();
        merged.complete = window.complete;
        *primed = true;
        for message in &window.messages {
            merged.insert(message, self.capacity);
        }
        Ok(())
    }

    async fn remember(&self, message: &StoredMessage) -> Result<()> {
        self.failing.check("memory cache")?;
        let mut windows = lock(&self.windows);
        let (window, _) = windows.entry(message.chat_id).or_default();
        window.insert(message, self.capacity);
        Ok(())
    }

    async fn refresh(&self, message: &StoredMessage) -> Result<()> {
        self.failing.check("memory cache")?;
        if let Some((window, _)) = lock(&self.windows).get_mut(&message.chat_id)
            && let Some(cached) = window.messages.iter_mut().find(|m| m.id == message.id)
        {
            *cached = message.clone();
        }
        Ok(())
    }

    async fn forget(&self, chat: ChatId) -> Result<()> {
        self.failing.check("memory cache")?;
        lock(&self.windows).remove(&chat);
        Ok(())
    }
}

#[async_trait]
impl ChatListCache for MemoryCache {
    async fn get(&self, user: UserId) -> Result<Option<Vec<ChatSummary>>> {
        self.failing.check("memory cache")?;
        Ok(lock(&self.lists).get(&user).cloned())
    }

    async fn put(&self, user: UserId, chats: &[ChatSummary]) -> Result<()> {
        self.failing.check("memory cache")?;
        lock(&self.lists).insert(user, chats.to_vec());
        Ok(())
    }

    async fn forget(&self, user: UserId) -> Result<()> {
        self.failing.check("memory cache")?;
        lock(&self.lists).remove(&user);
        Ok(())
    }
}

#[async_trait]
impl CursorStore for MemoryCache {
    async fn save(&self, id: &CursorId, owner: CursorOwner, start: &PageStart) -> Result<()> {
        self.failing.check("memory cache")?;
        lock(&self.cursors).insert(id.clone(), (owner, start.clone()));
        Ok(())
    }

    async fn load(&self, id: &CursorId, owner: CursorOwner) -> Result<PageStart> {
        self.failing.check("memory cache")?;
        match lock(&self.cursors).get(id) {
            Some((saved_owner, start)) if *saved_owner == owner => Ok(start.clone()),
            _ => Err(Error::InvalidCursor),
        }
    }
}

/// Records what was published to whom, and which users count as connected: the
/// [`LivePublisher`], [`Presence`] and [`LiveRoutes`] ports in one.
#[derive(Default)]
pub struct RecordingFanOut {
    published: Mutex<Vec<(UserId, LiveEvent)>>,
    connected: Mutex<HashSet<UserId>>,
    /// Fails every call while set.
    pub failing: FailSwitch,
}

impl RecordingFanOut {
    /// Everything published so far, in order.
    pub fn published(&self) -> Vec<(UserId, LiveEvent)> {
        lock(&self.published).clone()
    }

    /// Marks `user` connected.
    pub fn connect(&self, user: UserId) {
        lock(&self.connected).insert(user);
    }
}

#[async_trait]
impl LivePublisher for RecordingFanOut {
    async fn publish(&self, user: UserId, event: &LiveEvent) -> Result<()> {
        self.failing.check("fan-out")?;
        lock(&self.published).push((user, event.clone()));
        Ok(())
    }
}

#[async_trait]
impl Presence for RecordingFanOut {
    async fn is_connected(&self, user: UserId) -> Result<bool> {
        self.failing.check("fan-out")?;
        Ok(lock(&self.connected).contains(&user))
    }
}

#[async_trait]
impl LiveRoutes for RecordingFanOut {
    async fn watch(&self, user: UserId) -> Result<()> {
        self.failing.check("fan-out")?;
        self.connect(user);
        Ok(())
    }

    async fn unwatch(&self, user: UserId) -> Result<()> {
        self.failing.check("fan-out")?;
        lock(&self.connected).remove(&user);
        Ok(())
    }
}

/// Records published events.
#[derive(Default)]
pub struct RecordingPublisher {
    events: Mutex<Vec<NewMessageEvent>>,
    /// Fails every call while set.
    pub failing: FailSwitch,
}

impl RecordingPublisher {
    /// Every event published so far.
    pub fn events(&self) -> Vec<NewMessageEvent> {
        lock(&self.events).clone()
    }
}

#[async_trait]
impl EventPublisher for RecordingPublisher {
    async fn publish(&self, events: &[NewMessageEvent]) -> Result<()> {
        self.failing.check("publisher")?;
        lock(&self.events).extend_from_slice(events);
        Ok(())
    }
}

/// Stands in for encryption: the envelope is the binding followed by the plaintext with every
/// byte inverted. It keeps the port's contract (a wrong binding or a flipped byte of the
/// binding fails to open) and nothing else. **Not encryption.**
#[derive(Debug, Default)]
pub struct FakeCipher;

impl Cipher for FakeCipher {
    fn seal(&self, plaintext: &[u8], binding: &SealBinding) -> Result<Sealed> {
        let mut envelope = binding.associated_data().to_vec();
        envelope.extend(plaintext.iter().map(|byte| !byte));
        Ok(Sealed(envelope))
    }

    fn open(&self, sealed: &Sealed, binding: &SealBinding) -> Result<Vec<u8>> {
        let aad = binding.associated_data();
        match sealed.0.strip_prefix(aad.as_slice()) {
            Some(body) => Ok(body.iter().map(|byte| !byte).collect()),
            None => Err(Error::Corrupt(
                "the envelope is bound to another row".into(),
            )),
        }
    }

    fn digest(&self, plaintext: &[u8]) -> KeyedDigest {
        let hash = plaintext
            .iter()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
            });
        KeyedDigest(hash.to_be_bytes().to_vec())
    }
}

/// A [`Clock`] that stands still until a test moves it: [`ManualClock::advance`] replaces
/// sleeping to let time pass.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    /// A clock showing `start` until moved.
    pub fn at(start: OffsetDateTime) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward by `by` (backward when negative).
    pub fn advance(&self, by: time::Duration) {
        let mut now = lock(&self.now);
        *now += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: OffsetDateTime) {
        *lock(&self.now) = to;
    }
}

impl Default for ManualClock {
    /// A clock starting at the real current time, so what it stamps looks like any other
    /// recent message.
    fn default() -> Self {
        Self::at(OffsetDateTime::now_utc())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *lock(&self.now)
    }
}

/// Every in-memory adapter, with handles to inspect and break them.
pub struct MemoryAdapters {
    /// Messages, outbox, chats.
    pub store: Arc<MemoryStore>,
    /// Recent windows, chat lists, cursors.
    pub cache: Arc<MemoryCache>,
    /// Live delivery.
    pub fan_out: Arc<RecordingFanOut>,
    /// Event publisher for the relay.
    pub publisher: Arc<RecordingPublisher>,
    /// The service's time, moved by hand.
    pub clock: Arc<ManualClock>,
}

impl MemoryAdapters {
    /// Fresh adapters with a recent window of `window` messages.
    pub fn new(window: usize) -> Self {
        Self {
            store: Arc::new(MemoryStore::default()),
            cache: Arc::new(MemoryCache::new(window)),
            fan_out: Arc::new(RecordingFanOut::default()),
            publisher: Arc::new(RecordingPublisher::default()),
            clock: Arc::new(ManualClock::default()),
        }
    }

    /// The ports, wired to these adapters, the [`FakeCipher`] and the [`ManualClock`].
    pub fn ports(&self) -> Ports {
        Ports {
            store: self.store.clone(),
            chats: self.store.clone(),
            recent: self.cache.clone(),
            chat_lists: self.cache.clone(),
            cursors: self.cache.clone(),
            live: self.fan_out.clone(),
            presence: self.fan_out.clone(),
            routes: self.fan_out.clone(),
            cipher: Arc::new(FakeCipher),
            clock: self.clock.clone(),
        }
    }
}

/// A text message from `sender` to `recipient` in their chat, sealed with `cipher` and given the
/// next id of `ids`, as [`crate::ChatService::accept`] would build it: for adapter tests that
/// store or cache messages without the service.
///
/// # Panics
/// When `client_msg_id` is not a valid idempotency key or `cipher` cannot seal.
pub fn sealed_message(
    cipher: &dyn Cipher,
    ids: &crate::ids::MessageIdGenerator,
    sender: UserId,
    recipient: UserId,
    client_msg_id: &str,
    text: &str,
) -> StoredMessage {
    let id = ids.next(OffsetDateTime::now_utc());
    let chat_id = ChatId::for_pair(sender, recipient);
    let binding = SealBinding {
        chat_id,
        message_id: id,
        sender_id: sender,
    };
    StoredMessage {
        id,
        chat_id,
        sender_id: sender,
        recipient_id: recipient,
        kind: crate::model::MessageKind::Text,
        content: cipher
            .seal(text.as_bytes(), &binding)
            .expect("the test cipher seals"),
        digest: cipher.digest(text.as_bytes()),
        timestamp: id.timestamp(),
        seen_at: None,
        client_msg_id: crate::ids::ClientMessageId::parse(client_msg_id)
            .expect("a valid client_msg_id"),
    }
}
