//! The redb store against a real database file.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashSet;
use std::sync::Arc;

use chat_domain::model::truncate_to_millis;
use chat_domain::testing::{FakeCipher, RecordingFanOut};
use chat_domain::{
    Appended, Chat, ChatDirectory, ChatId, ChatService, ClientMessageId, Error, KeyedDigest,
    Limits, MessageId, MessageKind, MessageStore, NewMessageEvent, Outbox, PageStart, Ports,
    Recipient, Sealed, SendRequest, StoredMessage, UserId,
};
use chat_embedded::{EmbeddedError, EmbeddedStore, InProcessCache};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn user() -> UserId {
    UserId::from_uuid(Uuid::new_v4())
}

fn base_time() -> OffsetDateTime {
    time::macros::datetime!(2026-05-01 12:00:00 UTC)
}

fn message_at(chat: &Chat, sender: UserId, at: OffsetDateTime, client: &str) -> StoredMessage {
    let timestamp = truncate_to_millis(at);
    StoredMessage {
        id: MessageId::generate(timestamp),
        chat_id: chat.id,
        sender_id: sender,
        recipient_id: chat.peer_of(sender).unwrap(),
        kind: MessageKind::Text,
        content: Sealed(client.as_bytes().to_vec()),
        digest: KeyedDigest(vec![1, 2, 3]),
        timestamp,
        seen_at: None,
        client_msg_id: ClientMessageId::parse(client).unwrap(),
    }
}

struct Fixture {
    _dir: TempDir,
    store: EmbeddedStore,
    chat: Chat,
    alice: UserId,
}

impl Fixture {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("chat.redb")).unwrap();
        let (alice, bob) = (user(), user());
        let chat = Chat::between(alice, bob, base_time()).unwrap();
        Self {
            _dir: dir,
            store,
            chat,
            alice,
        }
    }

    fn message(&self, offset_ms: i64, client: &str) -> StoredMessage {
        message_at(
            &self.chat,
            self.alice,
            base_time() + Duration::milliseconds(offset_ms),
            client,
        )
    }

    async fn append(&self, message: &StoredMessage) -> NewMessageEvent {
        let event = NewMessageEvent::for_message(message, false);
        let appended = self.store.append(message, &event).await.unwrap();
        assert_eq!(appended, Appended::Stored);
        event
    }

    /// Appends messages at the given millisecond offsets; returns them in append order.
    async fn append_at(&self, offsets: &[i64]) -> Vec<StoredMessage> {
        let mut messages = Vec::new();
        for offset in offsets {
            let message = self.message(*offset, &format!("c-{}", Uuid::new_v4().simple()));
            self.append(&message).await;
            messages.push(message);
        }
        messages
    }
}

fn ids(messages: &[StoredMessage]) -> Vec<MessageId> {
    messages.iter().map(|m| m.id).collect()
}

fn newest_first(messages: &[StoredMessage]) -> Vec<MessageId> {
    let mut sorted = messages.to_vec();
    sorted.sort_by_key(StoredMessage::position);
    ids(&sorted)
}

#[tokio::test]
async fn append_then_page_returns_newest_first() {
    let fx = Fixture::new();
    // Two pairs share a millisecond: the lower id of each pair comes first.
    let messages = fx.append_at(&[10, 30, 20, 20, 40, 30, 0]).await;
    let page = fx
        .store
        .page(fx.chat.id, &PageStart::Newest, 50)
        .await
        .unwrap();
    assert_eq!(ids(&page.messages), newest_first(&messages));
    assert_eq!(
        page.messages[0].timestamp,
        base_time() + Duration::milliseconds(40)
    );
    assert_eq!(page.next, None);
    assert_eq!(
        page.messages[0], messages[4],
        "a message reads back as it was stored"
    );
}

#[tokio::test]
async fn page_of_an_unknown_chat_is_empty_and_other_chats_do_not_leak() {
    let fx = Fixture::new();
    fx.append_at(&[1, 2]).await;
    let other = Chat::between(user(), user(), base_time()).unwrap();
    let other_message = message_at(&other, other.members[0], base_time(), "x-1");
    fx.store
        .append(
            &other_message,
            &NewMessageEvent::for_message(&other_message, false),
        )
        .await
        .unwrap();
    let page = fx
        .store
        .page(fx.chat.id, &PageStart::Newest, 10)
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 2);
    let unknown = ChatId::from_uuid(Uuid::new_v4());
    let empty = fx
        .store
        .page(unknown, &PageStart::Newest, 10)
        .await
        .unwrap();
    assert!(empty.messages.is_empty());
    assert_eq!(empty.next, None);
}

#[tokio::test]
async fn next_is_set_only_when_more_messages_remain() {
    let fx = Fixture::new();
    fx.append_at(&[1, 2, 3, 4]).await;
    let exact = fx
        .store
        .page(fx.chat.id, &PageStart::Newest, 4)
        .await
        .unwrap();
    assert_eq!(exact.messages.len(), 4);
    assert_eq!(exact.next, None);
    let first = fx
        .store
        .page(fx.chat.id, &PageStart::Newest, 2)
        .await
        .unwrap();
    let next = first.next.unwrap();
    let second = fx.store.page(fx.chat.id, &next, 2).await.unwrap();
    assert_eq!(second.messages.len(), 2);
    assert_eq!(second.next, None);
}

#[tokio::test]
async fn paging_to_the_end_returns_every_message_exactly_once_while_new_ones_arrive() {
    let fx = Fixture::new();
    // Some share a millisecond, so pages also split inside one millisecond.
    let offsets = [0, 5, 5, 5, 10, 15, 15, 20, 25, 30, 30];
    let existing = fx.append_at(&offsets).await;
    let mut seen = Vec::new();
    let mut start = PageStart::Newest;
    let mut pages = 0;
    loop {
        let page = fx.store.page(fx.chat.id, &start, 3).await.unwrap();
        pages += 1;
        seen.extend(ids(&page.messages));
        // Newer messages arrive between pages.
        fx.append_at(&[1_000 + pages, 1_000 + pages]).await;
        match page.next {
            Some(next) => start = next,
            None => break,
        }
    }
    assert!(pages >= 3, "took {pages} pages");
    assert_eq!(seen, newest_first(&existing));
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), existing.len());
}

#[tokio::test]
async fn before_start_skips_to_older_messages() {
    let fx = Fixture::new();
    let messages = fx.append_at(&[1, 2, 3, 4, 5]).await;
    let order = newest_first(&messages);
    let page = fx
        .store
        .page(
            fx.chat.id,
            &PageStart::Before {
                message_id: order[1],
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(ids(&page.messages), order[2..].to_vec());
    let page = fx
        .store
        .page(
            fx.chat.id,
            &PageStart::Before {
                message_id: order[1],
            },
            2,
        )
        .await
        .unwrap();
    assert_eq!(ids(&page.messages), order[2..4].to_vec());
    assert!(page.next.is_some());
}

#[tokio::test]
async fn malformed_resume_state_is_an_invalid_cursor() {
    let fx = Fixture::new();
    fx.append_at(&[1, 2, 3]).await;
    for state in [vec![], vec![1, 2, 3], vec![0xFF; 41], vec![0; 200]] {
        let error = fx
            .store
            .page(fx.chat.id, &PageStart::Resume { state }, 10)
            .await
            .unwrap_err();
        assert_eq!(error, Error::InvalidCursor);
    }
    // A state this store made, but for another chat.
    let next = fx
        .store
        .page(fx.chat.id, &PageStart::Newest, 1)
        .await
        .unwrap()
        .next
        .unwrap();
    let other = ChatId::from_uuid(Uuid::new_v4());
    assert_eq!(
        fx.store.page(other, &next, 10).await.unwrap_err(),
        Error::InvalidCursor
    );
}

#[tokio::test]
async fn concurrent_resends_store_one_message() {
    let fx = Fixture::new();
    let store = Arc::new(fx.store.clone());
    let mut tasks = Vec::new();
    for attempt in 0..32 {
        let store = Arc::clone(&store);
        // Each resend is a fresh message (new id, new timestamp) with the same client id.
        let message = fx.message(attempt, "same-client-id");
        tasks.push(tokio::spawn(async move {
            let event = NewMessageEvent::for_message(&message, false);
            (message.id, store.append(&message, &event).await.unwrap())
        }));
    }
    let mut stored = Vec::new();
    let mut duplicates = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (id, Appended::Stored) => stored.push(id),
            (_, Appended::Duplicate(original)) => duplicates.push(original),
        }
    }
    assert_eq!(stored.len(), 1);
    assert_eq!(duplicates.len(), 31);
    assert!(duplicates.iter().all(|original| original.id == stored[0]));
    let page = fx
        .store
        .page(fx.chat.id, &PageStart::Newest, 100)
        .await
        .unwrap();
    assert_eq!(ids(&page.messages), stored);
    assert_eq!(fx.store.backlog().await.unwrap(), 1);
}

#[tokio::test]
async fn the_same_client_id_is_separate_per_sender_and_chat() {
    let fx = Fixture::new();
    let bob = fx.chat.peer_of(fx.alice).unwrap();
    let from_alice = fx.message(1, "c-1");
    let from_bob = message_at(&fx.chat, bob, base_time(), "c-1");
    fx.append(&from_alice).await;
    fx.append(&from_bob).await;
    let page = fx
        .store
        .page(fx.chat.id, &PageStart::Newest, 10)
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 2);
}

#[tokio::test]
async fn message_and_event_are_stored_together() {
    let fx = Fixture::new();
    let message = fx.message(1, "c-1");
    let event = fx.append(&message).await;
    assert_eq!(fx.store.pending(10).await.unwrap(), vec![event.clone()]);

    let resend = fx.message(2, "c-1");
    let resend_event = NewMessageEvent::for_message(&resend, true);
    let appended = fx.store.append(&resend, &resend_event).await.unwrap();
    assert_eq!(appended, Appended::Duplicate(message.clone()));
    assert_eq!(fx.store.pending(10).await.unwrap(), vec![event]);
    assert_eq!(fx.store.backlog().await.unwrap(), 1);
    assert_eq!(
        MessageStore::get(&fx.store, fx.chat.id, resend.id)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn outbox_remove_then_backlog() {
    let fx = Fixture::new();
    let mut events = Vec::new();
    for offset in 0..3 {
        events.push(fx.append(&fx.message(offset, &format!("c-{offset}"))).await);
    }
    assert_eq!(fx.store.backlog().await.unwrap(), 3);
    assert_eq!(fx.store.pending(2).await.unwrap(), events[..2].to_vec());
    let absent = chat_domain::EventId::generate();
    fx.store
        .remove(&[events[0].event_id, events[1].event_id, absent])
        .await
        .unwrap();
    fx.store.remove(&[]).await.unwrap();
    assert_eq!(fx.store.backlog().await.unwrap(), 1);
    assert_eq!(fx.store.pending(10).await.unwrap(), vec![events[2].clone()]);
    fx.store.remove(&[events[2].event_id]).await.unwrap();
    assert_eq!(fx.store.backlog().await.unwrap(), 0);
    assert!(fx.store.pending(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn since_returns_newer_messages_oldest_first() {
    let fx = Fixture::new();
    let messages = fx.append_at(&[1, 2, 2, 3, 4]).await;
    let mut oldest_first = newest_first(&messages);
    oldest_first.reverse();

    let all = fx.store.since(fx.chat.id, None, 100).await.unwrap();
    assert_eq!(ids(&all), oldest_first);
    let first_two = fx.store.since(fx.chat.id, None, 2).await.unwrap();
    assert_eq!(ids(&first_two), oldest_first[..2].to_vec());
    let after = fx
        .store
        .since(fx.chat.id, Some(oldest_first[1]), 100)
        .await
        .unwrap();
    assert_eq!(ids(&after), oldest_first[2..].to_vec());
    let after_last = fx
        .store
        .since(fx.chat.id, Some(oldest_first[4]), 100)
        .await
        .unwrap();
    assert!(after_last.is_empty());
}

#[tokio::test]
async fn get_finds_a_message_only_in_its_chat() {
    let fx = Fixture::new();
    let message = fx.append_at(&[1]).await.remove(0);
    let found = MessageStore::get(&fx.store, fx.chat.id, message.id)
        .await
        .unwrap();
    assert_eq!(found, Some(message.clone()));
    let other = ChatId::from_uuid(Uuid::new_v4());
    assert_eq!(
        MessageStore::get(&fx.store, other, message.id)
            .await
            .unwrap(),
        None
    );
    let unknown = MessageId::generate(base_time());
    assert_eq!(
        MessageStore::get(&fx.store, fx.chat.id, unknown)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn mark_seen_keeps_the_first_time() {
    let fx = Fixture::new();
    let message = fx.append_at(&[1]).await.remove(0);
    let first = base_time() + Duration::minutes(1);
    let seen = fx
        .store
        .mark_seen(fx.chat.id, message.id, first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.seen_at, Some(first));
    let again = fx
        .store
        .mark_seen(fx.chat.id, message.id, first + Duration::minutes(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.seen_at, Some(first));
    let stored = MessageStore::get(&fx.store, fx.chat.id, message.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.seen_at, Some(first));
    let unknown = MessageId::generate(base_time());
    assert_eq!(
        fx.store
            .mark_seen(fx.chat.id, unknown, first)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn history_survives_reopening_the_database() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("nested").join("chat.redb");
    let (alice, bob) = (user(), user());
    let chat = Chat::between(alice, bob, base_time()).unwrap();
    let message = message_at(&chat, alice, base_time(), "c-1");
    let event = NewMessageEvent::for_message(&message, false);
    {
        let store = EmbeddedStore::open(&path).unwrap();
        store.open(&chat).await.unwrap();
        store.append(&message, &event).await.unwrap();
        store
            .mark_seen(chat.id, message.id, base_time() + Duration::SECOND)
            .await
            .unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    let page = store.page(chat.id, &PageStart::Newest, 10).await.unwrap();
    assert_eq!(ids(&page.messages), vec![message.id]);
    assert_eq!(
        page.messages[0].seen_at,
        Some(base_time() + Duration::SECOND)
    );
    assert_eq!(
        ChatDirectory::get(&store, chat.id).await.unwrap(),
        Some(chat.clone())
    );
    assert_eq!(store.chats_of(bob).await.unwrap().len(), 1);
    assert_eq!(store.pending(10).await.unwrap(), vec![event]);
    // Dedup survives too.
    let resend = message_at(&chat, alice, base_time() + Duration::SECOND, "c-1");
    let appended = store
        .append(&resend, &NewMessageEvent::for_message(&resend, false))
        .await
        .unwrap();
    assert!(matches!(appended, Appended::Duplicate(original) if original.id == message.id));
}

#[tokio::test]
async fn second_open_of_the_same_file_fails_clearly() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("chat.redb");
    let first = EmbeddedStore::open(&path).unwrap();
    let error = EmbeddedStore::open(&path).unwrap_err();
    assert!(
        matches!(error, EmbeddedError::AlreadyOpen { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("already open"), "{text}");
    assert!(text.contains("single instance"), "{text}");
    let domain: Error = error.into();
    assert_eq!(domain.code(), "unavailable");
    drop(first);
    EmbeddedStore::open(&path).unwrap();
}

#[tokio::test]
async fn a_file_that_is_not_a_database_fails_to_open() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("chat.redb");
    std::fs::write(
        &path,
        b"not a redb database, but long enough to look at ............",
    )
    .unwrap();
    let error = EmbeddedStore::open(&path).unwrap_err();
    assert!(matches!(error, EmbeddedError::Open { .. }), "{error:?}");
}

#[tokio::test]
async fn chats_of_lists_both_members() {
    let fx = Fixture::new();
    let (alice, bob, carol) = (user(), user(), user());
    let first = Chat::between(alice, bob, base_time()).unwrap();
    let second = Chat::between(carol, alice, base_time() + Duration::SECOND).unwrap();
    // Opened newest first, listed oldest first.
    fx.store.open(&second).await.unwrap();
    fx.store.open(&first).await.unwrap();

    let of_alice = fx.store.chats_of(alice).await.unwrap();
    assert_eq!(
        of_alice
            .iter()
            .map(|s| (s.chat_id, s.peer_id))
            .collect::<Vec<_>>(),
        vec![(first.id, bob), (second.id, carol)]
    );
    assert_eq!(of_alice[0].created_at, first.created_at);
    let of_bob = fx.store.chats_of(bob).await.unwrap();
    assert_eq!(of_bob.len(), 1);
    assert_eq!((of_bob[0].chat_id, of_bob[0].peer_id), (first.id, alice));
    let of_carol = fx.store.chats_of(carol).await.unwrap();
    assert_eq!(
        (of_carol[0].chat_id, of_carol[0].peer_id),
        (second.id, alice)
    );
    assert!(fx.store.chats_of(user()).await.unwrap().is_empty());
}

#[tokio::test]
async fn open_twice_returns_the_first_chat() {
    let fx = Fixture::new();
    let (alice, bob) = (user(), user());
    let first = Chat::between(alice, bob, base_time()).unwrap();
    let later = Chat::between(bob, alice, base_time() + Duration::HOUR).unwrap();
    assert_eq!(fx.store.open(&first).await.unwrap(), first);
    assert_eq!(fx.store.open(&later).await.unwrap(), first);
    assert_eq!(fx.store.chats_of(alice).await.unwrap().len(), 1);
    assert_eq!(fx.store.chats_of(bob).await.unwrap().len(), 1);
    assert_eq!(
        ChatDirectory::get(&fx.store, first.id).await.unwrap(),
        Some(first)
    );
    let unknown = ChatId::from_uuid(Uuid::new_v4());
    assert_eq!(ChatDirectory::get(&fx.store, unknown).await.unwrap(), None);
}

#[tokio::test]
async fn concurrent_opens_of_one_chat_list_it_once() {
    let fx = Fixture::new();
    let (alice, bob) = (user(), user());
    let mut tasks = Vec::new();
    for second in 0..8 {
        let store = fx.store.clone();
        let chat = Chat::between(alice, bob, base_time() + Duration::seconds(second)).unwrap();
        tasks.push(tokio::spawn(
            async move { store.open(&chat).await.unwrap() },
        ));
    }
    let mut opened = Vec::new();
    for task in tasks {
        opened.push(task.await.unwrap());
    }
    assert!(opened.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(fx.store.chats_of(alice).await.unwrap().len(), 1);
    assert_eq!(fx.store.chats_of(bob).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_chat_service_pages_history_over_the_embedded_adapters() {
    let fx = Fixture::new();
    let store = Arc::new(fx.store.clone());
    let cache = Arc::new(InProcessCache::default());
    let fan_out = Arc::new(RecordingFanOut::default());
    let ports = Ports {
        store: store.clone(),
        chats: store.clone(),
        recent: cache.clone(),
        chat_lists: cache.clone(),
        cursors: cache,
        live: fan_out.clone(),
        presence: fan_out.clone(),
        routes: fan_out,
        cipher: Arc::new(FakeCipher),
        clock: Arc::new(chat_domain::SystemClock),
    };
    let service = ChatService::new(ports, Limits::default());
    let (alice, bob) = (user(), user());
    let mut sent = Vec::new();
    for n in 0..7 {
        let accepted = service
            .accept(
                alice,
                SendRequest {
                    client_msg_id: ClientMessageId::parse(&format!("m-{n}")).unwrap(),
                    to: Recipient::User(bob),
                    kind: MessageKind::Text,
                    content: format!("hello {n}"),
                },
            )
            .await
            .unwrap();
        service.distribute(&accepted, None).await;
        sent.push(accepted.message.id);
    }
    let chat_id = ChatId::for_pair(alice, bob);
    let mut received = Vec::new();
    let mut cursor = None;
    loop {
        let page = service
            .history(bob, chat_id, Some(3), cursor.as_ref())
            .await
            .unwrap();
        assert!(
            page.messages
                .iter()
                .all(|m| m.content.starts_with("hello "))
        );
        received.extend(page.messages.iter().map(|m| m.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    // Newest first; messages sent within one millisecond come lowest id first.
    sent.sort_by_key(|id| chat_domain::MessagePosition::of_id(*id));
    assert_eq!(received, sent);
    assert_eq!(service.list_chats(bob, bob).await.unwrap().len(), 1);
    assert_eq!(store.backlog().await.unwrap(), 7);
}

/// Set by [`a_second_process_cannot_open_an_open_database`] for the child process it starts.
const CHILD_DATABASE_ENV: &str = "CHAT_EMBEDDED_TEST_CHILD_DATABASE";

/// In the child process: tries to open the parent's database and prints what happened. Does
/// nothing in a normal test run.
#[test]
fn child_process_opens_the_database() {
    if let Some(path) = std::env::var_os(CHILD_DATABASE_ENV) {
        match EmbeddedStore::open(std::path::Path::new(&path)) {
            Ok(_) => println!("CHILD-RESULT: opened"),
            Err(error) => println!("CHILD-RESULT: {error}"),
        }
    }
}

#[test]
fn a_second_process_cannot_open_an_open_database() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("chat.redb");
    let run_child = || {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_process_opens_the_database",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DATABASE_ENV, &path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        stdout
            .lines()
            .find_map(|line| {
                line.split_once("CHILD-RESULT: ")
                    .map(|(_, result)| result.to_owned())
            })
            .unwrap_or_else(|| panic!("the child printed no result: {stdout}"))
    };
    let store = EmbeddedStore::open(&path).unwrap();
    let refused = run_child();
    assert!(refused.contains("already open"), "{refused}");
    drop(store);
    assert_eq!(run_child(), "opened");
}
