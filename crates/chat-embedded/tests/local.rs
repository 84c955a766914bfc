//! The in-process cache, the in-process fan-out and the JSON-lines event log.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_domain::model::truncate_to_millis;
use chat_domain::{
    Chat, ChatId, ChatListCache, ChatSummary, ClientMessageId, CursorId, CursorOwner, CursorStore,
    Error, EventPublisher, KeyedDigest, LiveEvent, LivePublisher, LiveRoutes, LocalDelivery,
    MessageId, MessageKind, NewMessageEvent, PageStart, Presence, RecentMessages, RecentWindow,
    Sealed, StoredMessage, UserId,
};
use chat_embedded::{
    CacheConfig, InProcessCache, InProcessFanOut, JsonLinesPublisher, read_events,
};
use tempfile::TempDir;
use time::OffsetDateTime;
use uuid::Uuid;

fn user() -> UserId {
    UserId::from_uuid(Uuid::new_v4())
}

fn base_time() -> OffsetDateTime {
    time::macros::datetime!(2026-05-01 12:00:00 UTC)
}

fn chat() -> Chat {
    Chat::between(user(), user(), base_time()).unwrap()
}

fn message(chat: &Chat, offset_ms: i64) -> StoredMessage {
    let timestamp = truncate_to_millis(base_time() + time::Duration::milliseconds(offset_ms));
    StoredMessage {
        id: MessageId::generate(timestamp),
        chat_id: chat.id,
        sender_id: chat.members[0],
        recipient_id: chat.members[1],
        kind: MessageKind::Text,
        content: Sealed(vec![9; 8]),
        digest: KeyedDigest(vec![1, 2, 3]),
        timestamp,
        seen_at: None,
        client_msg_id: ClientMessageId::parse(&Uuid::new_v4().to_string()).unwrap(),
    }
}

/// Newest first, as a window holds them.
fn window_of(messages: &[&StoredMessage], complete: bool) -> RecentWindow {
    let mut messages: Vec<StoredMessage> = messages.iter().map(|m| (*m).clone()).collect();
    messages.sort_by_key(StoredMessage::position);
    RecentWindow { messages, complete }
}

fn ids(window: &RecentWindow) -> Vec<MessageId> {
    window.messages.iter().map(|m| m.id).collect()
}

fn cache_with(config: CacheConfig) -> InProcessCache {
    InProcessCache::new(&config)
}

fn small_window(capacity: usize) -> InProcessCache {
    cache_with(CacheConfig {
        recent_window: capacity,
        ..CacheConfig::default()
    })
}

#[tokio::test]
async fn window_keeps_newest_first_and_at_most_its_capacity() {
    let cache = small_window(3);
    let chat = chat();
    let (m1, m2, m3, m4) = (
        message(&chat, 1),
        message(&chat, 2),
        message(&chat, 3),
        message(&chat, 4),
    );
    cache
        .prime(chat.id, &window_of(&[&m1, &m3], true))
        .await
        .unwrap();
    cache.remember(&m2).await.unwrap();
    let window = cache.window(chat.id).await.unwrap().unwrap();
    assert_eq!(ids(&window), vec![m3.id, m2.id, m1.id]);
    assert!(window.complete);

    cache.remember(&m4).await.unwrap();
    cache.remember(&m4).await.unwrap();
    let window = cache.window(chat.id).await.unwrap().unwrap();
    assert_eq!(ids(&window), vec![m4.id, m3.id, m2.id]);
    assert!(
        !window.complete,
        "trimming the oldest makes the window incomplete"
    );
}

#[tokio::test]
async fn priming_more_than_the_capacity_keeps_the_newest() {
    let cache = small_window(2);
    let chat = chat();
    let (m1, m2, m3) = (message(&chat, 1), message(&chat, 2), message(&chat, 3));
    cache
        .prime(chat.id, &window_of(&[&m1, &m2, &m3], true))
        .await
        .unwrap();
    let window = cache.window(chat.id).await.unwrap().unwrap();
    assert_eq!(ids(&window), vec![m3.id, m2.id]);
    assert!(!window.complete);
}

#[tokio::test]
async fn remember_without_a_window_serves_nothing_until_primed() {
    let cache = small_window(3);
    let chat = chat();
    cache.remember(&message(&chat, 1)).await.unwrap();
    assert_eq!(cache.window(chat.id).await.unwrap(), None);
}

#[tokio::test]
async fn a_message_remembered_before_the_first_prime_is_not_lost() {
    let cache = small_window(10);
    let chat = chat();
    let (m1, m2) = (message(&chat, 1), message(&chat, 2));
    // A first-page read of the store sees only m1; m2 is stored and remembered before that
    // read primes the cache.
    cache.remember(&m2).await.unwrap();
    cache
        .prime(chat.id, &window_of(&[&m1], true))
        .await
        .unwrap();
    let window = cache.window(chat.id).await.unwrap().unwrap();
    assert_eq!(ids(&window), vec![m2.id, m1.id]);
}

#[tokio::test]
async fn prime_merges_messages_remembered_meanwhile() {
    let cache = small_window(10);
    let chat = chat();
    let (m1, m2, m3) = (message(&chat, 1), message(&chat, 2), message(&chat, 3));
    cache
        .prime(chat.id, &window_of(&[&m1], false))
        .await
        .unwrap();
    // A store read started before m3 was stored finishes after it was remembered.
    cache.remember(&m3).await.unwrap();
    cache
        .prime(chat.id, &window_of(&[&m1, &m2], true))
        .await
        .unwrap();
    let window = cache.window(chat.id).await.unwrap().unwrap();
    assert_eq!(ids(&window), vec![m3.id, m2.id, m1.id]);
    assert!(window.complete);
}

#[tokio::test]
async fn refresh_replaces_only_cached_messages() {
    let cache = small_window(10);
    let chat = chat();
    let (m1, m2) = (message(&chat, 1), message(&chat, 2));
    cache
        .prime(chat.id, &window_of(&[&m1], true))
        .await
        .unwrap();
    let mut seen = m1.clone();
    seen.seen_at = Some(base_time());
    cache.refresh(&seen).await.unwrap();
    cache.refresh(&m2).await.unwrap();
    let window = cache.window(chat.id).await.unwrap().unwrap();
    assert_eq!(window.messages, vec![seen]);

    RecentMessages::forget(&cache, chat.id).await.unwrap();
    assert_eq!(cache.window(chat.id).await.unwrap(), None);
}

#[tokio::test]
async fn windows_are_bounded_by_max_chats() {
    let cache = cache_with(CacheConfig {
        max_chats: 2,
        ..CacheConfig::default()
    });
    let chats = [chat(), chat(), chat()];
    for chat in &chats {
        cache
            .prime(chat.id, &window_of(&[&message(chat, 1)], true))
            .await
            .unwrap();
    }
    assert_eq!(
        cache.window(chats[0].id).await.unwrap(),
        None,
        "the oldest is evicted"
    );
    assert!(cache.window(chats[1].id).await.unwrap().is_some());
    assert!(cache.window(chats[2].id).await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn windows_expire_after_their_ttl() {
    let cache = cache_with(CacheConfig {
        recent_ttl: Duration::from_millis(30),
        ..CacheConfig::default()
    });
    let chat = chat();
    cache
        .prime(chat.id, &window_of(&[&message(&chat, 1)], true))
        .await
        .unwrap();
    assert!(cache.window(chat.id).await.unwrap().is_some());
    tokio::time::advance(Duration::from_millis(60)).await;
    assert_eq!(cache.window(chat.id).await.unwrap(), None);
}

fn owner() -> CursorOwner {
    CursorOwner {
        user_id: user(),
        chat_id: ChatId::from_uuid(Uuid::new_v4()),
    }
}

#[tokio::test]
async fn cursor_loads_only_for_its_owner() {
    let cache = InProcessCache::default();
    let (id, owner) = (CursorId::generate(), owner());
    let start = PageStart::Resume {
        state: vec![1, 2, 3],
    };
    cache.save(&id, owner, &start).await.unwrap();
    assert_eq!(cache.load(&id, owner).await.unwrap(), start);
    let other_user = CursorOwner {
        user_id: user(),
        ..owner
    };
    let other_chat = CursorOwner {
        chat_id: ChatId::from_uuid(Uuid::new_v4()),
        ..owner
    };
    assert_eq!(
        cache.load(&id, other_user).await.unwrap_err(),
        Error::InvalidCursor
    );
    assert_eq!(
        cache.load(&id, other_chat).await.unwrap_err(),
        Error::InvalidCursor
    );
    assert_eq!(
        cache.load(&CursorId::generate(), owner).await.unwrap_err(),
        Error::InvalidCursor
    );
    // A foreign attempt does not spend the cursor.
    assert_eq!(cache.load(&id, owner).await.unwrap(), start);
}

#[tokio::test(start_paused = true)]
async fn cursor_expires_after_its_ttl() {
    let cache = cache_with(CacheConfig {
        cursor_ttl: Duration::from_millis(30),
        ..CacheConfig::default()
    });
    let (id, owner) = (CursorId::generate(), owner());
    cache.save(&id, owner, &PageStart::Newest).await.unwrap();
    assert_eq!(cache.load(&id, owner).await.unwrap(), PageStart::Newest);
    tokio::time::advance(Duration::from_millis(60)).await;
    assert_eq!(
        cache.load(&id, owner).await.unwrap_err(),
        Error::InvalidCursor
    );
}

#[tokio::test]
async fn cursors_are_bounded_by_max_cursors() {
    let cache = cache_with(CacheConfig {
        max_cursors: 2,
        ..CacheConfig::default()
    });
    let owner = owner();
    let ids = [
        CursorId::generate(),
        CursorId::generate(),
        CursorId::generate(),
    ];
    for id in &ids {
        cache.save(id, owner, &PageStart::Newest).await.unwrap();
    }
    assert_eq!(
        cache.load(&ids[0], owner).await.unwrap_err(),
        Error::InvalidCursor
    );
    assert_eq!(cache.load(&ids[1], owner).await.unwrap(), PageStart::Newest);
    assert_eq!(cache.load(&ids[2], owner).await.unwrap(), PageStart::Newest);
}

#[tokio::test(start_paused = true)]
async fn chat_list_expires_after_its_ttl() {
    let cache = cache_with(CacheConfig {
        chat_list_ttl: Duration::from_millis(30),
        ..CacheConfig::default()
    });
    let user = user();
    let list = vec![ChatSummary {
        chat_id: ChatId::from_uuid(Uuid::new_v4()),
        peer_id: self::user(),
        created_at: base_time(),
    }];
    cache.put(user, &list).await.unwrap();
    assert_eq!(
        ChatListCache::get(&cache, user).await.unwrap(),
        Some(list.clone())
    );
    tokio::time::advance(Duration::from_millis(60)).await;
    assert_eq!(ChatListCache::get(&cache, user).await.unwrap(), None);

    cache.put(user, &list).await.unwrap();
    ChatListCache::forget(&cache, user).await.unwrap();
    assert_eq!(ChatListCache::get(&cache, user).await.unwrap(), None);
}

#[tokio::test]
async fn chat_lists_are_bounded_by_max_chat_lists() {
    let cache = cache_with(CacheConfig {
        max_chat_lists: 1,
        ..CacheConfig::default()
    });
    let (first, second) = (user(), user());
    cache.put(first, &[]).await.unwrap();
    cache.put(second, &[]).await.unwrap();
    assert_eq!(ChatListCache::get(&cache, first).await.unwrap(), None);
    assert_eq!(
        ChatListCache::get(&cache, second).await.unwrap(),
        Some(vec![])
    );
}

#[derive(Default)]
struct FakeDelivery {
    delivered: Mutex<Vec<(UserId, LiveEvent)>>,
    connected: Mutex<HashSet<UserId>>,
}

impl LocalDelivery for FakeDelivery {
    fn deliver(&self, user: UserId, event: &LiveEvent) -> bool {
        self.delivered.lock().unwrap().push((user, event.clone()));
        self.connected.lock().unwrap().contains(&user)
    }

    fn is_connected_here(&self, user: UserId) -> bool {
        self.connected.lock().unwrap().contains(&user)
    }
}

#[tokio::test]
async fn fan_out_delegates_to_local_delivery() {
    let delivery = Arc::new(FakeDelivery::default());
    let fan_out = InProcessFanOut::new(delivery.clone());
    let (online, offline) = (user(), user());
    delivery.connected.lock().unwrap().insert(online);
    let chat = chat();
    let event = LiveEvent::Typing {
        chat_id: chat.id,
        user_id: chat.members[0],
        origin: None,
    };
    fan_out.publish(online, &event).await.unwrap();
    fan_out.publish(offline, &event).await.unwrap();
    assert_eq!(
        *delivery.delivered.lock().unwrap(),
        vec![(online, event.clone()), (offline, event)]
    );
    assert!(fan_out.is_connected(online).await.unwrap());
    assert!(!fan_out.is_connected(offline).await.unwrap());
    fan_out.watch(offline).await.unwrap();
    fan_out.unwatch(online).await.unwrap();
    assert!(
        fan_out.is_connected(online).await.unwrap(),
        "presence is the connections'"
    );
}

#[tokio::test]
async fn json_lines_publisher_appends_one_line_per_event() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("nested").join("events.jsonl");
    let chat = chat();
    let events: Vec<_> = (0..3)
        .map(|n| NewMessageEvent::for_message(&message(&chat, n), n % 2 == 0))
        .collect();
    {
        let publisher = JsonLinesPublisher::open(&path).unwrap();
        publisher.publish(&events[..2]).await.unwrap();
        publisher.publish(&[]).await.unwrap();
    }
    // Reopening appends rather than truncating.
    let publisher = JsonLinesPublisher::open(&path).unwrap();
    publisher.publish(&events[2..]).await.unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    for (line, event) in lines.iter().zip(&events) {
        let parsed: NewMessageEvent = serde_json::from_str(line).unwrap();
        assert_eq!(&parsed, event);
        let raw: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(raw["event_type"], "message.created");
        assert_eq!(raw["event_id"], event.event_id.to_string());
    }
    assert_eq!(read_events(&path).unwrap(), events);
}

#[tokio::test]
async fn concurrent_publishes_never_interleave_lines() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("events.jsonl");
    let publisher = Arc::new(JsonLinesPublisher::open(&path).unwrap());
    let chat = chat();
    let mut tasks = Vec::new();
    for n in 0..16 {
        let publisher = Arc::clone(&publisher);
        let batch: Vec<_> = (0..4)
            .map(|k| NewMessageEvent::for_message(&message(&chat, n * 10 + k), false))
            .collect();
        tasks.push(tokio::spawn(async move {
            publisher.publish(&batch).await.unwrap();
            batch
        }));
    }
    let mut expected = HashSet::new();
    for task in tasks {
        expected.extend(task.await.unwrap().into_iter().map(|e| e.event_id));
    }
    let read: HashSet<_> = read_events(&path)
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(read, expected);
}
