//! [`RedisCache`]: the recent-window and chat-list caches, and the history cursor store, in the
//! Redis cluster, shared by every instance.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::{
    ChatId, ChatListCache, ChatSummary, CursorId, CursorOwner, CursorStore, Error, PageStart,
    RecentMessages, RecentWindow, Result, StoredMessage, UserId,
};
use fred::prelude::*;
use fred::types::Expiration;
use serde::{Deserialize, Serialize};

use crate::connection::RedisConnection;
use crate::error::RedisError;
use crate::keys::{Keys, window_field};
use crate::scripts::{HELD_LIST, Scripts};

/// The cluster's [`RecentMessages`], [`ChatListCache`] and [`CursorStore`]. The first two are
/// caches of the store; the cursor store is not: Redis holds the only copy of each cursor, and
/// a lost one fails to load ([`Error::InvalidCursor`]).
///
/// - **Windows**: the newest `recent_window` messages of each chat, sealed exactly as stored
///   (Redis never sees plaintext), in one hash per chat (`<prefix>:recent:{<chat>}`), updated by
///   Lua scripts so concurrent sends from many instances keep the order and the bound. A window
///   lives `recent_ttl_secs` from its priming.
/// - **Chat lists**: JSON under `<prefix>:chats:{<user>}` for `chat_list_ttl_secs`; lists
///   longer than `max_cached_chats` are not cached.
/// - **Cursors**: `<prefix>:cursor:{<id>}` → the page start and its (user, chat), for
///   `cursor_ttl_secs`. The only copy of the cursor: evicting it (or losing Redis) ends it.
///
/// When an invalidation cannot be written (Redis unreachable), it is kept in memory (up to
/// `max_pending_invalidations`), the entry is not served by this instance meanwhile, and it is
/// written as soon as Redis answers. A dropped window or list holds its place for
/// `forget_hold_ms`, so a store read that began before the change cannot re-cache stale data.
pub struct RedisCache {
    shared: Arc<Shared>,
    flusher: tokio::task::JoinHandle<()>,
}

struct Shared {
    connection: RedisConnection,
    keys: Keys,
    scripts: Scripts,
    pending: Mutex<HashSet<Invalidation>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Invalidation {
    Window(ChatId),
    ChatList(UserId),
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("connection", &self.shared.connection)
            .field("pending_invalidations", &self.pending_invalidations())
            .finish()
    }
}

impl Drop for RedisCache {
    fn drop(&mut self) {
        self.flusher.abort();
    }
}

impl RedisCache {
    /// A cache over `connection`. Must be called inside a Tokio runtime: it starts the task
    /// that writes pending invalidations once Redis answers again.
    pub fn new(connection: RedisConnection) -> Self {
        let shared = Arc::new(Shared {
            keys: Keys::new(&connection.config.key_prefix),
            scripts: Scripts::new(),
            pending: Mutex::new(HashSet::new()),
            connection,
        });
        let retry = Duration::from_millis(shared.connection.config.retry_after_ms.max(100));
        let flusher = tokio::spawn(flush_pending_forever(Arc::downgrade(&shared), retry));
        Self { shared, flusher }
    }

    /// Invalidations waiting for Redis to answer.
    pub fn pending_invalidations(&self) -> usize {
        self.shared.pending().len()
    }
}

async fn flush_pending_forever(shared: std::sync::Weak<Shared>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.flush_pending().await;
    }
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, HashSet<Invalidation>> {
        // Every update is a single insert or remove: a poisoned set is still consistent.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_pending(&self, invalidation: Invalidation) -> bool {
        let pending = self.pending();
        !pending.is_empty() && pending.contains(&invalidation)
    }

    fn keep_pending(&self, invalidation: Invalidation) {
        let mut pending = self.pending();
        if pending.len() < self.connection.config.max_pending_invalidations {
            pending.insert(invalidation);
        } else if !pending.contains(&invalidation) {
            tracing::error!(
                ?invalidation,
                "too many invalidations wait for redis; this one is lost (the entry expires \
                 with its time to live)"
            );
        }
    }

    async fn flush_pending(&self) {
        let waiting: Vec<Invalidation> = self.pending().iter().copied().collect();
        if waiting.is_empty() || self.connection.health.check().is_err() {
            return;
        }
        let mut written = 0usize;
        for invalidation in waiting {
            let result = match invalidation {
                Invalidation::Window(chat) => self.forget_window(chat).await,
                Invalidation::ChatList(user) => self.forget_list(user).await,
            };
            match result {
                Ok(()) => {
                    self.pending().remove(&invalidation);
                    written += 1;
                }
                Err(error) => {
                    tracing::debug!(error = %chat_domain::Report::of(&error), "pending invalidations still wait for redis");
                    break;
                }
            }
        }
        if written > 0 {
            tracing::info!(written, "wrote invalidations that waited for redis");
        }
    }

    fn hold_ms(&self) -> u64 {
        self.connection.config.forget_hold_ms.max(1)
    }

    async fn forget_window(&self, chat: ChatId) -> Result<(), RedisError> {
        let client = &self.connection.data;
        let key = self.keys.window(chat);
        let hold = self.hold_ms();
        self.connection
            .run(self.scripts.forget_window.evalsha_with_reload::<i64, _, _>(
                client,
                key,
                vec![hold],
            ))
            .await
            .map(drop)
    }

    async fn forget_list(&self, user: UserId) -> Result<(), RedisError> {
        let key = self.keys.chat_list(user);
        let hold = i64::try_from(self.hold_ms()).unwrap_or(i64::MAX);
        self.connection
            .run(self.connection.data.set::<(), _, _>(
                key,
                HELD_LIST,
                Some(Expiration::PX(hold)),
                None,
                false,
            ))
            .await
    }
}

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<String, RedisError> {
    serde_json::to_string(value).map_err(|error| RedisError::Encode {
        what,
        reason: error.to_string(),
    })
}

fn decode<'a, T: Deserialize<'a>>(what: &'static str, text: &'a str) -> Result<T, RedisError> {
    serde_json::from_str(text).map_err(|error| RedisError::Corrupt {
        what,
        reason: error.to_string(),
    })
}

fn millis_of(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Reads a window hash: `None` unless primed; messages newest first.
fn window_of(
    chat: ChatId,
    fields: HashMap<String, String>,
) -> Result<Option<RecentWindow>, RedisError> {
    if fields.get("_primed").map(String::as_str) != Some("1") {
        return Ok(None);
    }
    let complete = fields.get("_complete").map(String::as_str) == Some("1");
    let mut messages = Vec::with_capacity(fields.len());
    for (field, payload) in &fields {
        if field.starts_with('_') {
            continue;
        }
        let message: StoredMessage = decode("cached message", payload)?;
        if message.chat_id != chat || window_field(&message) != *field {
            return Err(RedisError::Corrupt {
                what: "cached message",
                reason: format!("{field} of chat {chat} holds message {}", message.id),
            });
        }
        messages.push(message);
    }
    messages.sort_by_key(StoredMessage::position);
    Ok(Some(RecentWindow { messages, complete }))
}

#[async_trait]
impl RecentMessages for RedisCache {
    async fn window(&self, chat: ChatId) -> Result<Option<RecentWindow>> {
        let shared = &self.shared;
        if shared.is_pending(Invalidation::Window(chat)) {
            return Ok(None);
        }
        let fields: HashMap<String, String> = shared
            .connection
            .run(shared.connection.data.hgetall(shared.keys.window(chat)))
            .await?;
        Ok(window_of(chat, fields)?)
    }

    async fn prime(&self, chat: ChatId, window: &RecentWindow) -> Result<()> {
        let shared = &self.shared;
        if shared.is_pending(Invalidation::Window(chat)) {
            return Ok(());
        }
        let config = &shared.connection.config;
        let mut args = Vec::with_capacity(3 + 2 * window.messages.len());
        args.push(config.recent_window.to_string());
        args.push(millis_of(config.recent_ttl()).to_string());
        args.push(if window.complete { "1" } else { "0" }.to_owned());
        for message in window.messages.iter().take(config.recent_window) {
            args.push(window_field(message));
            args.push(encode("message", message)?);
        }
        let client = &shared.connection.data;
        shared
            .connection
            .run(shared.scripts.prime.evalsha_with_reload::<i64, _, _>(
                client,
                shared.keys.window(chat),
                args,
            ))
            .await?;
        Ok(())
    }

    async fn remember(&self, message: &StoredMessage) -> Result<()> {
        let shared = &self.shared;
        let config = &shared.connection.config;
        let args = vec![
            window_field(message),
            encode("message", message)?,
            config.recent_window.to_string(),
            millis_of(config.recent_ttl()).to_string(),
        ];
        let client = &shared.connection.data;
        shared
            .connection
            .run(shared.scripts.remember.evalsha_with_reload::<i64, _, _>(
                client,
                shared.keys.window(message.chat_id),
                args,
            ))
            .await?;
        Ok(())
    }

    async fn refresh(&self, message: &StoredMessage) -> Result<()> {
        let shared = &self.shared;
        let args = vec![window_field(message), encode("message", message)?];
        let client = &shared.connection.data;
        shared
            .connection
            .run(shared.scripts.refresh.evalsha_with_reload::<i64, _, _>(
                client,
                shared.keys.window(message.chat_id),
                args,
            ))
            .await?;
        Ok(())
    }

    async fn forget(&self, chat: ChatId) -> Result<()> {
        let shared = &self.shared;
        if let Err(error) = shared.forget_window(chat).await {
            shared.keep_pending(Invalidation::Window(chat));
            return Err(error.into());
        }
        Ok(())
    }
}

#[async_trait]
impl ChatListCache for RedisCache {
    async fn get(&self, user: UserId) -> Result<Option<Vec<ChatSummary>>> {
        let shared = &self.shared;
        if shared.is_pending(Invalidation::ChatList(user)) {
            return Ok(None);
        }
        let cached: Option<String> = shared
            .connection
            .run(shared.connection.data.get(shared.keys.chat_list(user)))
            .await?;
        match cached {
            Some(json) if json != HELD_LIST => Ok(Some(decode("chat list", &json)?)),
            _ => Ok(None),
        }
    }

    async fn put(&self, user: UserId, chats: &[ChatSummary]) -> Result<()> {
        let shared = &self.shared;
        let config = &shared.connection.config;
        if chats.len() > config.max_cached_chats || shared.is_pending(Invalidation::ChatList(user))
        {
            return Ok(());
        }
        let ttl = millis_of(Duration::from_secs(config.chat_list_ttl_secs));
        let args = vec![encode("chat list", &chats)?, ttl.to_string()];
        let client = &shared.connection.data;
        shared
            .connection
            .run(shared.scripts.put_list.evalsha_with_reload::<i64, _, _>(
                client,
                shared.keys.chat_list(user),
                args,
            ))
            .await?;
        Ok(())
    }

    async fn forget(&self, user: UserId) -> Result<()> {
        let shared = &self.shared;
        if let Err(error) = shared.forget_list(user).await {
            shared.keep_pending(Invalidation::ChatList(user));
            return Err(error.into());
        }
        Ok(())
    }
}

/// What a cursor maps to.
#[derive(Serialize, Deserialize)]
struct SavedCursor {
    owner: CursorOwner,
    start: PageStart,
}

#[async_trait]
impl CursorStore for RedisCache {
    async fn save(&self, id: &CursorId, owner: CursorOwner, start: &PageStart) -> Result<()> {
        let shared = &self.shared;
        let saved = SavedCursor {
            owner,
            start: start.clone(),
        };
        let ttl = i64::try_from(shared.connection.config.cursor_ttl_secs).unwrap_or(i64::MAX);
        shared
            .connection
            .run(shared.connection.data.set::<(), _, _>(
                shared.keys.cursor(id),
                encode("cursor", &saved)?,
                Some(Expiration::EX(ttl)),
                None,
                false,
            ))
            .await?;
        Ok(())
    }

    async fn load(&self, id: &CursorId, owner: CursorOwner) -> Result<PageStart> {
        let shared = &self.shared;
        let saved: Option<String> = shared
            .connection
            .run(shared.connection.data.get(shared.keys.cursor(id)))
            .await?;
        let saved: SavedCursor = match saved {
            Some(json) => decode("cursor", &json)?,
            None => return Err(Error::InvalidCursor),
        };
        if saved.owner != owner {
            tracing::info!(
                cursor = %id,
                "a cursor was presented by another user or for another chat; refused"
            );
            return Err(Error::InvalidCursor);
        }
        Ok(saved.start)
    }
}
