//! [`InProcessCache`]: the recent-window and chat-list caches, and the history cursor store,
//! in this process's memory, each bounded in count and age.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

// Tokio's `Instant` is the standard one, except that a test on a paused runtime moves it by hand
// (`tokio::time::advance`) instead of sleeping for a time to live to pass.
use tokio::time::Instant;

use async_trait::async_trait;
use chat_domain::{
    ChatId, ChatListCache, ChatSummary, CursorId, CursorOwner, CursorStore, Error, PageStart,
    RecentMessages, RecentWindow, Result, StoredMessage, UserId,
};
use serde::Deserialize;

use crate::config::duration_from_secs;

/// The longest time to live honoured; longer settings are cut to it (about 100 years).
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Bounds of the [`InProcessCache`]. In a config file, durations are whole seconds in the
/// `..._secs` fields; every field has a default. The cursor fields bound the cursor store,
/// which is not a cache (the only copy of each cursor); they sit here, in `[embedded.cache]`,
/// because the same adapter serves it, and the keys keep that name for operators.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    /// Messages kept per chat window. Keep it equal to the service's
    /// `Limits::recent_window`. Default 50.
    pub recent_window: usize,
    /// How long a window lives after it was primed from the store (`recent_ttl_secs`); it is
    /// then read from the store again. Default 300 s.
    #[serde(rename = "recent_ttl_secs", deserialize_with = "duration_from_secs")]
    pub recent_ttl: Duration,
    /// How many chats' windows are kept; the oldest goes first. Default 10 000.
    pub max_chats: usize,
    /// How long a cached chat list lives (`chat_list_ttl_secs`). Default 300 s.
    #[serde(rename = "chat_list_ttl_secs", deserialize_with = "duration_from_secs")]
    pub chat_list_ttl: Duration,
    /// How many users' chat lists are kept; the oldest goes first. Default 10 000.
    pub max_chat_lists: usize,
    /// How long a history cursor stays valid (`cursor_ttl_secs`). Default 900 s.
    #[serde(rename = "cursor_ttl_secs", deserialize_with = "duration_from_secs")]
    pub cursor_ttl: Duration,
    /// How many cursors are kept; the oldest goes first (and then fails to load as
    /// [`Error::InvalidCursor`]). Default 100 000.
    pub max_cursors: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            recent_window: 50,
            recent_ttl: Duration::from_secs(300),
            max_chats: 10_000,
            chat_list_ttl: Duration::from_secs(300),
            max_chat_lists: 10_000,
            cursor_ttl: Duration::from_secs(900),
            max_cursors: 100_000,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent maps behind (every update is a single
    // insert or remove), so a poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A map whose entries expire `ttl` after they were inserted and of which at most `capacity`
/// are kept, the oldest evicted first.
struct Expiring<K, V> {
    entries: HashMap<K, Slot<V>>,
    /// Every entry's key by (expiry, insertion number): the first is the oldest.
    by_age: BTreeMap<(Instant, u64), K>,
    inserted: u64,
    capacity: usize,
    ttl: Duration,
}

struct Slot<V> {
    value: V,
    stamp: (Instant, u64),
}

impl<K: Eq + Hash + Clone, V> Expiring<K, V> {
    fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            by_age: BTreeMap::new(),
            inserted: 0,
            capacity,
            ttl: ttl.min(MAX_TTL),
        }
    }

    /// Drops every entry that expired by `now`.
    fn purge(&mut self, now: Instant) {
        while let Some(entry) = self.by_age.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.entries.remove(&key);
        }
    }

    /// The live entry of `key`; an expired one is dropped.
    fn get_mut(&mut self, key: &K, now: Instant) -> Option<&mut V> {
        let expired = self.entries.get(key)?.stamp.0 <= now;
        if expired {
            self.remove(key);
            return None;
        }
        self.entries.get_mut(key).map(|slot| &mut slot.value)
    }

    /// Inserts or replaces `key`, which then lives for the time to live from `now`. Makes room
    /// by dropping expired entries, then the oldest. Keeps nothing when the capacity is 0.
    fn insert(&mut self, key: K, value: V, now: Instant) -> Option<&mut V> {
        self.remove(&key);
        if self.capacity == 0 {
            return None;
        }
        if self.entries.len() >= self.capacity {
            self.purge(now);
        }
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.inserted += 1;
        let stamp = (now.checked_add(self.ttl).unwrap_or(now), self.inserted);
        self.by_age.insert(stamp, key.clone());
        let slot = self.entries.entry(key).or_insert(Slot { value, stamp });
        Some(&mut slot.value)
    }

    fn remove(&mut self, key: &K) {
        if let Some(slot) = self.entries.remove(key) {
            self.by_age.remove(&slot.stamp);
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Recent windows, chat lists and history cursors in memory: the embedded profile's
/// [`RecentMessages`] and [`ChatListCache`] caches and its [`CursorStore`] (not a cache: the
/// only copy of each cursor; one evicted or expired fails to load as [`Error::InvalidCursor`]).
///
/// Windows keep the newest `recent_window` messages of a chat, newest first, and live
/// `recent_ttl` from when they were primed; chat lists live `chat_list_ttl`; cursors
/// `cursor_ttl`. Each kind is bounded in count, the oldest entry evicted first. Single process:
/// another instance would not see these entries (cursors issued here fail to load there).
pub struct InProcessCache {
    window_capacity: usize,
    windows: Mutex<Expiring<ChatId, CachedWindow>>,
    lists: Mutex<Expiring<UserId, Vec<ChatSummary>>>,
    cursors: Mutex<Expiring<CursorId, (CursorOwner, PageStart)>>,
}

impl std::fmt::Debug for InProcessCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessCache")
            .field("window_capacity", &self.window_capacity)
            .field("windows", &lock(&self.windows).len())
            .field("lists", &lock(&self.lists).len())
            .field("cursors", &lock(&self.cursors).len())
            .finish()
    }
}

impl Default for InProcessCache {
    fn default() -> Self {
        Self::new(&CacheConfig::default())
    }
}

impl InProcessCache {
    /// An empty cache with the bounds of `config`.
    pub fn new(config: &CacheConfig) -> Self {
        Self {
            window_capacity: config.recent_window,
            windows: Mutex::new(Expiring::new(config.max_chats, config.recent_ttl)),
            lists: Mutex::new(Expiring::new(config.max_chat_lists, config.chat_list_ttl)),
            cursors: Mutex::new(Expiring::new(config.max_cursors, config.cursor_ttl)),
        }
    }
}

/// A chat's window, and whether it was primed from the store: a window started by
/// `remember` alone is not served, since it may lack older messages.
#[derive(Default)]
struct CachedWindow {
    window: RecentWindow,
    primed: bool,
}

#[async_trait]
impl RecentMessages for InProcessCache {
    async fn window(&self, chat: ChatId) -> Result<Option<RecentWindow>> {
        Ok(lock(&self.windows)
            .get_mut(&chat, Instant::now())
            .filter(|cached| cached.primed)
            .map(|cached| cached.window.clone()))
    }

    async fn prime(&self, chat: ChatId, window: &RecentWindow) -> Result<()> {
        let now = Instant::now();
        let mut windows = lock(&self.windows);
        let mut merged = windows
            .get_mut(&chat, now)
            .map(std::mem::take)
            .unwrap_or_default();
        merged.primed = true;
        merged.window.complete = window.complete;
        for message in &window.messages {
            merged.window.insert(message, self.window_capacity);
        }
        windows.insert(chat, merged, now);
        Ok(())
    }

    async fn remember(&self, message: &StoredMessage) -> Result<()> {
        let now = Instant::now();
        let mut windows = lock(&self.windows);
        match windows.get_mut(&message.chat_id, now) {
            Some(cached) => cached.window.insert(message, self.window_capacity),
            None => {
                let mut started = CachedWindow::default();
                started.window.insert(message, self.window_capacity);
                windows.insert(message.chat_id, started, now);
            }
        }
        Ok(())
    }

    async fn refresh(&self, message: &StoredMessage) -> Result<()> {
        if let Some(cached) = lock(&self.windows).get_mut(&message.chat_id, Instant::now())
            && let Some(cached) = cached
                .window
                .messages
                .iter_mut()
                .find(|m| m.id == message.id)
        {
            *cached = message.clone();
        }
        Ok(())
    }

    async fn forget(&self, chat: ChatId) -> Result<()> {
        lock(&self.windows).remove(&chat);
        Ok(())
    }
}

#[async_trait]
impl ChatListCache for InProcessCache {
    async fn get(&self, user: UserId) -> Result<Option<Vec<ChatSummary>>> {
        Ok(lock(&self.lists)
            .get_mut(&user, Instant::now())
            .map(|chats| chats.clone()))
    }

    async fn put(&self, user: UserId, chats: &[ChatSummary]) -> Result<()> {
        lock(&self.lists).insert(user, chats.to_vec(), Instant::now());
        Ok(())
    }

    async fn forget(&self, user: UserId) -> Result<()> {
        lock(&self.lists).remove(&user);
        Ok(())
    }
}

#[async_trait]
impl CursorStore for InProcessCache {
    async fn save(&self, id: &CursorId, owner: CursorOwner, start: &PageStart) -> Result<()> {
        let kept = lock(&self.cursors)
            .insert(id.clone(), (owner, start.clone()), Instant::now())
            .is_some();
        if kept {
            Ok(())
        } else {
            Err(Error::Unavailable(
                "in-process cursor store (max_cursors is 0)".into(),
            ))
        }
    }

    async fn load(&self, id: &CursorId, owner: CursorOwner) -> Result<PageStart> {
        match lock(&self.cursors).get_mut(id, Instant::now()) {
            Some((saved_owner, start)) if *saved_owner == owner => Ok(start.clone()),
            _ => Err(Error::InvalidCursor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiring_map_evicts_the_oldest_when_full() {
        let now = Instant::now();
        let mut map = Expiring::new(2, Duration::from_secs(60));
        map.insert(1, "a", now);
        map.insert(2, "b", now);
        map.insert(3, "c", now);
        assert_eq!(map.len(), 2);
        assert!(map.get_mut(&1, now).is_none());
        assert_eq!(map.get_mut(&3, now).copied(), Some("c"));
        // Replacing an entry makes it the newest.
        map.insert(2, "b2", now);
        map.insert(4, "d", now);
        assert!(map.get_mut(&3, now).is_none());
        assert_eq!(map.get_mut(&2, now).copied(), Some("b2"));
    }

    #[test]
    fn expiring_map_drops_expired_entries_first() {
        let start = Instant::now();
        let mut map = Expiring::new(2, Duration::from_secs(10));
        map.insert(1, "a", start);
        map.insert(2, "b", start + Duration::from_secs(5));
        let later = start + Duration::from_secs(11);
        assert!(map.get_mut(&1, later).is_none());
        map.insert(3, "c", later);
        assert_eq!(map.get_mut(&2, later).copied(), Some("b"));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let now = Instant::now();
        let mut map = Expiring::new(0, Duration::from_secs(10));
        assert!(map.insert(1, "a", now).is_none());
        assert_eq!(map.len(), 0);
    }
}
