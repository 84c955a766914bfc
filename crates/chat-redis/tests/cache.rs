//! The cache ports against the real 3-master Redis cluster of `deploy/local/redis-cluster.sh`.
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chat_domain::{
    ChatId, ChatListCache, ChatSummary, CursorId, CursorOwner, CursorStore, Error, MessageId,
    PageStart, RecentMessages, RecentWindow, StoredMessage,
};
use chat_redis::{RedisCache, RedisConfig};
use common::{Messages, cli, connect, master_ports, test_config, user};
use time::OffsetDateTime;

async fn cache_with(config: RedisConfig) -> RedisCache {
    RedisCache::new(connect(config).await)
}

fn ids(messages: &[StoredMessage]) -> Vec<MessageId> {
    messages.iter().map(|m| m.id).collect()
}

fn window_of(messages: &[&StoredMessage], complete: bool) -> RecentWindow {
    let mut sorted: Vec<StoredMessage> = messages.iter().map(|m| (*m).clone()).collect();
    sorted.sort_by_key(StoredMessage::position);
    RecentWindow {
        messages: sorted,
        complete,
    }
}

#[tokio::test]
async fn keys_of_many_chats_land_on_every_master_and_a_chat_keeps_one_slot() {
    let config = test_config();
    let prefix = config.key_prefix.clone();
    let cache = cache_with(config).await;
    let messages = Messages::default();
    let mut chats = Vec::new();
    for _ in 0..60 {
        let (alice, bob) = (user(), user());
        let message = messages.next(alice, bob, "hello");
        cache.remember(&message).await.unwrap();
        ChatListCache::put(&cache, alice, &[]).await.unwrap();
        chats.push((message.chat_id, alice));
    }
    let masters = master_ports();
    assert_eq!(masters.len(), 3, "the test cluster has three masters");
    let mut total = 0;
    for port in &masters {
        let keys = cli(*port, &["--scan", "--pattern", &format!("{prefix}:*")]);
        let here = keys.lines().count();
        assert!(here > 0, "no key of 60 chats on the master at {port}");
        total += here;
    }
    assert_eq!(
        total, 120,
        "every window and chat list is on exactly one master"
    );
    for (chat, _) in &chats {
        let window_slot = cli(
            masters[0],
            &["cluster", "keyslot", &format!("{prefix}:recent:{{{chat}}}")],
        );
        let tag_slot = cli(masters[0], &["cluster", "keyslot", &chat.to_string()]);
        assert_eq!(window_slot, tag_slot, "a chat's key is placed by its id");
    }
}

#[tokio::test]
async fn a_window_is_written_through_and_read_newest_first_without_plaintext() {
    let config = test_config();
    let prefix = config.key_prefix.clone();
    let cache = cache_with(config).await;
    let messages = Messages::default();
    let (alice, bob) = (user(), user());
    let first = messages.next(alice, bob, "a secret plaintext");
    let second = messages.next(bob, alice, "another secret");
    let chat = first.chat_id;

    // Sent before anyone read the chat: kept, but not served until primed from the store.
    cache.remember(&second).await.unwrap();
    assert_eq!(cache.window(chat).await.unwrap(), None);

    // The store read (which began before `second` was stored) primes it; both are served.
    cache
        .prime(chat, &window_of(&[&first], true))
        .await
        .unwrap();
    let window = cache.window(chat).await.unwrap().unwrap();
    assert_eq!(ids(&window.messages), [second.id, first.id]);
    assert!(window.complete);
    assert_eq!(
        window.messages[1], first,
        "the message round-trips unchanged"
    );

    let third = messages.next(alice, bob, "third");
    cache.remember(&third).await.unwrap();
    cache.remember(&third).await.unwrap(); // idempotent
    let window = cache.window(chat).await.unwrap().unwrap();
    assert_eq!(ids(&window.messages), [third.id, second.id, first.id]);

    let raw = cli(
        master_ports()[0],
        &["-c", "hgetall", &format!("{prefix}:recent:{{{chat}}}")],
    );
    assert!(!raw.contains("secret"), "Redis holds plaintext: {raw}");
    assert!(raw.contains(&third.id.as_uuid().simple().to_string()));
}

#[tokio::test]
async fn a_window_keeps_the_newest_messages_under_concurrent_sends() {
    let cache = Arc::new(cache_with(test_config()).await); // window of 5
    let messages = Arc::new(Messages::default());
    let (alice, bob) = (user(), user());
    let chat = ChatId::for_pair(alice, bob);
    cache
        .prime(
            chat,
            &RecentWindow {
                messages: vec![],
                complete: true,
            },
        )
        .await
        .unwrap();
    let all: Vec<StoredMessage> = (0..40)
        .map(|i| messages.next(alice, bob, &format!("m{i}")))
        .collect();
    let mut tasks = Vec::new();
    for chunk in all.chunks(10) {
        let (cache, chunk) = (cache.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for message in chunk.iter().rev() {
                cache.remember(message).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let window = cache.window(chat).await.unwrap().unwrap();
    let newest: Vec<MessageId> = all.iter().rev().take(5).map(|m| m.id).collect();
    assert_eq!(ids(&window.messages), newest);
    assert!(!window.complete, "older messages were dropped");
}

#[tokio::test]
async fn refresh_replaces_a_cached_message_and_forget_holds_the_place() {
    let config = RedisConfig {
        forget_hold_ms: 1_500,
        ..test_config()
    };
    let cache = cache_with(config).await;
    let messages = Messages::default();
    let (alice, bob) = (user(), user());
    let message = messages.next(alice, bob, "see me");
    let chat = message.chat_id;
    cache
        .prime(chat, &window_of(&[&message], true))
        .await
        .unwrap();

    let mut seen = message.clone();
    seen.seen_at = Some(message.timestamp + Duration::from_secs(1));
    cache.refresh(&seen).await.unwrap();
    let window = cache.window(chat).await.unwrap().unwrap();
    assert_eq!(window.messages, [seen.clone()]);

    // A message not in any window: refresh changes nothing.
    let stranger = messages.next(user(), user(), "elsewhere");
    cache.refresh(&stranger).await.unwrap();
    assert_eq!(cache.window(stranger.chat_id).await.unwrap(), None);

    RecentMessages::forget(&cache, chat).await.unwrap();
    assert_eq!(cache.window(chat).await.unwrap(), None);
    // A store read that began before the lost update must not bring the old window back...
    cache
        .prime(chat, &window_of(&[&message], true))
        .await
        .unwrap();
    assert_eq!(cache.window(chat).await.unwrap(), None);
    let later = messages.next(bob, alice, "during the hold");
    cache.remember(&later).await.unwrap();
    assert_eq!(cache.window(chat).await.unwrap(), None);
    // ...but once the hold is over, priming works again.
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    cache
        .prime(chat, &window_of(&[&later, &seen], true))
        .await
        .unwrap();
    let window = cache.window(chat).await.unwrap().unwrap();
    assert_eq!(ids(&window.messages), [later.id, seen.id]);
}

#[tokio::test]
async fn windows_expire_with_their_time_to_live() {
    let config = RedisConfig {
        recent_ttl_secs: 1,
        ..test_config()
    };
    let cache = cache_with(config).await;
    let messages = Messages::default();
    let message = messages.next(user(), user(), "short-lived");
    cache
        .prime(message.chat_id, &window_of(&[&message], true))
        .await
        .unwrap();
    assert!(cache.window(message.chat_id).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(cache.window(message.chat_id).await.unwrap(), None);
}

fn summary(chat: ChatId, peer: chat_domain::UserId) -> ChatSummary {
    ChatSummary {
        chat_id: chat,
        peer_id: peer,
        created_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
    }
}

#[tokio::test]
async fn chat_lists_are_cached_dropped_held_and_bounded() {
    let config = RedisConfig {
        forget_hold_ms: 1_000,
        max_cached_chats: 3,
        chat_list_ttl_secs: 1,
        ..test_config()
    };
    let cache = cache_with(config).await;
    let (alice, bob, carol) = (user(), user(), user());
    let list = vec![summary(ChatId::for_pair(alice, bob), bob)];
    assert_eq!(ChatListCache::get(&cache, alice).await.unwrap(), None);
    ChatListCache::put(&cache, alice, &list).await.unwrap();
    assert_eq!(
        ChatListCache::get(&cache, alice).await.unwrap(),
        Some(list.clone())
    );

    ChatListCache::forget(&cache, alice).await.unwrap();
    assert_eq!(ChatListCache::get(&cache, alice).await.unwrap(), None);
    // A list read before the chat was opened is not cached during the hold.
    ChatListCache::put(&cache, alice, &list).await.unwrap();
    assert_eq!(ChatListCache::get(&cache, alice).await.unwrap(), None);

    // Too long to cache: read from the store each time.
    let long: Vec<ChatSummary> = (0..4)
        .map(|_| {
            let peer = user();
            summary(ChatId::for_pair(carol, peer), peer)
        })
        .collect();
    ChatListCache::put(&cache, carol, &long).await.unwrap();
    assert_eq!(ChatListCache::get(&cache, carol).await.unwrap(), None);

    // And lists expire.
    ChatListCache::put(&cache, bob, &list).await.unwrap();
    assert!(ChatListCache::get(&cache, bob).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(ChatListCache::get(&cache, bob).await.unwrap(), None);
}

#[tokio::test]
async fn a_cursor_loads_only_for_its_user_and_chat_until_it_expires() {
    let config = RedisConfig {
        cursor_ttl_secs: 1,
        ..test_config()
    };
    let cache = cache_with(config).await;
    let (alice, bob, mallory) = (user(), user(), user());
    let chat = ChatId::for_pair(alice, bob);
    let owner = CursorOwner {
        user_id: alice,
        chat_id: chat,
    };
    let resume = PageStart::Resume {
        state: vec![0, 1, 2, 255],
    };
    let cursor = CursorId::generate();
    cache.save(&cursor, owner, &resume).await.unwrap();
    assert_eq!(cache.load(&cursor, owner).await.unwrap(), resume);
    assert_eq!(
        cache.load(&cursor, owner).await.unwrap(),
        resume,
        "reusable"
    );

    let rejected: HashMap<&str, (CursorId, CursorOwner)> = HashMap::from([
        (
            "another user",
            (
                cursor.clone(),
                CursorOwner {
                    user_id: mallory,
                    ..owner
                },
            ),
        ),
        (
            "another chat",
            (
                cursor.clone(),
                CursorOwner {
                    chat_id: ChatId::for_pair(alice, mallory),
                    ..owner
                },
            ),
        ),
        ("made up", (CursorId::generate(), owner)),
        (
            "the other member",
            (
                cursor.clone(),
                CursorOwner {
                    user_id: bob,
                    ..owner
                },
            ),
        ),
    ]);
    for (case, (id, who)) in rejected {
        let error = cache.load(&id, who).await.unwrap_err();
        assert!(matches!(error, Error::InvalidCursor), "{case}: {error}");
    }

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let error = cache.load(&cursor, owner).await.unwrap_err();
    assert!(matches!(error, Error::InvalidCursor), "expired: {error}");
}

#[tokio::test]
async fn without_redis_calls_fail_fast_as_unavailable_and_invalidations_wait() {
    // Nothing listens on this port: Redis is "down" for this adapter.
    let config = RedisConfig {
        nodes: vec!["127.0.0.1:1".to_owned()],
        command_timeout_ms: 300,
        retry_after_ms: 60_000,
        ..test_config()
    };
    let connection = chat_redis::RedisConnection::start(config).unwrap();
    let health = connection.health();
    let cache = RedisCache::new(connection);
    let chat = ChatId::for_pair(user(), user());

    let error = cache.window(chat).await.unwrap_err();
    assert!(matches!(error, Error::Unavailable(_)), "{error}");
    assert!(health.is_degraded());
    // Degraded: the next calls do not wait for a timeout again.
    let started = std::time::Instant::now();
    let error = RecentMessages::forget(&cache, chat).await.unwrap_err();
    assert!(matches!(error, Error::Unavailable(_)), "{error}");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(cache.pending_invalidations(), 1);
    let error = cache
        .load(
            &CursorId::generate(),
            CursorOwner {
                user_id: user(),
                chat_id: chat,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Unavailable(_)),
        "an outage is not an invalid cursor: {error}"
    );
}
