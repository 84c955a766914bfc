//! The Cassandra adapters against a real Cassandra node.
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use cdrs_tokio::query_values;
use cdrs_tokio::types::blob::Blob;
use chat_domain::testing::MemoryCache;
use chat_domain::{
    Appended, Chat, ChatDirectory, ChatId, ChatService, Limits, MessageStore, NewMessageEvent,
    Outbox, OutboxRelay, PageStart, Ports, Recipient, SendRequest, StoredMessage,
};
use common::{Fixture, unknown_message, user};
use time::OffsetDateTime;

fn chat_of(a: chat_domain::UserId, b: chat_domain::UserId) -> ChatId {
    ChatId::for_pair(a, b)
}

#[tokio::test]
async fn a_message_round_trips_sealed() {
    let f = Fixture::new().await;
    let (alice, bob) = (user(), user());
    let chat = chat_of(alice, bob);
    let (message, event) = f.message(chat, alice, bob, "c-1", "hello over cassandra");
    assert_eq!(
        f.store.append(&message, &event).await.unwrap(),
        Appended::Stored
    );
    let read = f.store.get(chat, message.id).await.unwrap().unwrap();
    assert_eq!(read, message);
    assert_eq!(f.open(&read), "hello over cassandra");
    assert_eq!(f.store.get(chat, unknown_message()).await.unwrap(), None);
    let other_chat = chat_of(alice, user());
    assert_eq!(f.store.get(other_chat, message.id).await.unwrap(), None);
}

#[tokio::test]
async fn only_ciphertext_reaches_the_content_column() {
    let f = Fixture::new().await;
    let (alice, bob) = (user(), user());
    let chat = chat_of(alice, bob);
    let secret = "the launch code is 0000";
    let (message, event) = f.message(chat, alice, bob, "c-1", secret);
    f.store.append(&message, &event).await.unwrap();
    let statement =
        f.db.prepare("SELECT content, digest FROM messages WHERE chat_id = ?")
            .await
            .unwrap();
    let rows =
        f.db.run(&statement, query_values!(*chat.as_uuid()), true)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    use cdrs_tokio::types::IntoRustByName as _;
    for column in ["content", "digest"] {
        let raw: Blob = rows[0].get_r_by_name(column).unwrap();
        let raw = raw.into_vec();
        assert!(!raw.is_empty());
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "plaintext in {column}"
        );
        assert!(
            !raw.windows(6).any(|w| w == b"launch"),
            "plaintext in {column}"
        );
    }
    // The event in the outbox carries the same sealed content, not the text.
    let pending = f.store.pending(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].content, message.content);
}

#[tokio::test]
async fn history_is_newest_first_even_within_one_millisecond() {
    let f = Fixture::new().await;
    let (alice, bob) = (user(), user());
    let chat = chat_of(alice, bob);
    let at = OffsetDateTime::now_utc();
    let mut sent = Vec::new();
    for i in 0..20 {
        // All in one millisecond: the generator's counter orders them.
        let (mut message, event) = f.message(chat, alice, bob, &format!("c-{i}"), &format!("m{i}"));
        let id = f.ids.next(at);
        message.id = id;
        message.timestamp = id.timestamp();
        message.content = chat_domain::Cipher::seal(
            f.cipher.as_ref(),
            format!("m{i}").as_bytes(),
            &chat_domain::SealBinding::of(&message),
        )
        .unwrap();
        f.store.append(&message, &event).await.unwrap();
        sent.push(message.id);
    }
    let page = f.store.page(chat, &PageStart::Newest, 100).await.unwrap();
    let ids: Vec<_> = page.messages.iter().map(|m| m.id).collect();
    sent.reverse();
    assert_eq!(ids, sent);
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn paging_crosses_pages_exactly_once_while_messages_arrive() {
    let f = Fixture::new().await;
    let (alice, bob) = (user(), user());
    let chat = chat_of(alice, bob);
    let mut expected = Vec::new();
    for i in 0..47 {
        let (message, event) = f.message(chat, alice, bob, &format!("c-{i}"), &format!("m{i}"));
        f.store.append(&message, &event).await.unwrap();
        expected.push(message.id);
    }
    expected.reverse();
    let mut seen = Vec::new();
    let mut start = PageStart::Newest;
    let mut pages = 0;
    loop {
        let page = f.store.page(chat, &start, 10).await.unwrap();
        pages += 1;
        seen.extend(page.messages.iter().map(|m| m.id));
        // Newer messages land between pages, from several tasks at once.
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let (message, event) =
                    f.message(chat, bob, alice, &format!("late-{pages}-{w}"), "late");
                let store = f.store.clone();
                tokio::spawn(async move { store.append(&message, &event).await.unwrap() })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        match page.next {
            Some(next) => start = next,
            None => break,
        }
    }
    assert!(pages >= 5, "{pages} pages");
    assert_eq!(seen, expected);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 47);
}

#[tokio::test]
async fn a_page_can_start_before_a_given_message() {
    let f = Fixture::new().await;
    let (alice, bob) = (user(), user());
    let chat = chat_of(alice, bob);
    let mut ids = Vec::new();
    for i in 0..6 {
        let (message, event) = f.message(chat, alice, bob, &format!("c-{i}"), "x");
        f.store.append(&message, &event).await.unwrap();
        ids.push(message.id);
    }
    let page = f
        .store
        .page(chat, &PageStart::Before { message_id: ids[4] }, 2)
        .await
        .unwrap();
    let got: Vec<_> = page.messages.iter().map(|m| m.id).collect();
    assert_eq!(got, [ids[3], ids[2]]);
    let rest = f.store.page(chat, &page.next.unwrap(), 10).await.unwrap();
    let got: Vec<_> = rest.messages.iter().map(|m| m.id).collect();
    assert_eq!(got, [ids[1], ids[0]]);
}

#[tokio::test]
async fn a_tampered_or_foreign_paging_state_is_an_invalid_cursor() {
    let f = Fixture::new().await;
    let (alice, bob) = (user(), user());
    let chat = chat_of(alice, bob);
    for i in 0..5 {
        let (message, event) = f.message(chat, alice, bob, &format!("c-{i}"), "x");
        f.store.append(&message, &event).await.unwrap();
    }
    let page = f.store.page(chat, &PageStart::Newest, 2).await.unwrap();
    let Some(PageStart::Resume { state }) = page.next else {
        panic!("expected a resume state");
    };
    let other_chat = chat_of(alice, user());
    let foreign = f
        .store
        .page(
            other_chat,
            &PageStart::Resume {
                state: state.clone(),
            },
            2,
        )
        .await;
    assert_eq!(foreign.unwrap_err(), chat_domain::Error::InvalidCursor);
    let mut tampered = state.clone();
    let last = tampered.len() - 1;
    tampered.truncate(last - 3);
    tampered.extend_from_slice(&[0xFF, 0x00, 0x13]);
    let result = f
        .store
        .page(chat, &PageStart::Resume { state: tampered }, 2)
        .await;
    // Cassandra either rejects the state (a clear invalid cursor) or reads a page from it;
    // it must never be an internal error or a hang.
    match result {
        Ok(_) | Err(chat_domain::Error::InvalidCursor) => {}
        Err(other) => panic!("tampered state gave {other:?}"),
    }
    let garbage = f
        .store
        .page(
            chat,
            &PageStart::Resume {
                state: vec![1, 2, 3],
            },
            2,
        )
        .await;
    assert_eq!(garbage.unwrap_err(), chat_domain::Error::InvalidCursor);
}

#[tokio::test]
async fn since_returns_newer_messages_oldest_first() {
    let f = Fixture::new().await;
    let (alice, bob) = (user(), user());
    let chat = chat_of(alice, bob);
    let mut ids = Vec::new();
    for i in 0..5 {
        let (message, event) = f.message(chat, alice, bob, &format!("c-{i}"), "x");
        f.store.append(&message, &event).await.unwrap();
        ids.push(message.id);
    }
    let all: Vec<_> = f
        .store
        .since(chat, None, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(all, ids);
    let after: Vec<_> = f
        .store
        .since(chat, Some(ids[1]), 2)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(after, [ids[2], ids[3]]);
}

#[tokio::test]
async fn concurrent_resends_store_one_message_and_one_event() {
    let f = Fixture::new().await;
    let (alice, bob) = (user(), user());
    let chat = chat_of(alice, bob);
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            // Each retry is a fresh attempt: its own id, its own sealing, the same client key.
            let (message, event) = f.message(chat, alice, bob, "the-same-key", "once only");
            let store = f.store.clone();
            tokio::spawn(async move { store.append(&message, &event).await.unwrap() })
        })
        .collect();
    let mut stored = 0;
    let mut duplicates = HashSet::new();
    for task in tasks {
        match task.await.unwrap() {
            Appended::Stored => stored += 1,
            Appended::Duplicate(original) => {
                duplicates.insert(original.id);
            }
        }
    }
    assert_eq!(stored, 1);
    assert_eq!(
        duplicates.len(),
        1,
        "every duplicate names the same message"
    );
    let page = f.store.page(chat, &PageStart::Newest, 100).await.unwrap();
    assert_eq!(page.messages.len(), 1);
    assert!(duplicates.contains(&page.messages[0].id));
    assert_eq!(f.store.pending(100).await.unwrap().len(), 1);
}

/// Writes the claim row of `message` alone (a plain insert), as a first attempt that died
/// right after its claim leaves it.
async fn write_claim_only(f: &Fixture, message: &StoredMessage, event: &NewMessageEvent) {
    let claim = f
        .db
        .prepare(
            "INSERT INTO message_dedup (chat_id, sender_id, client_msg_id, message_id, message, event) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .await
        .unwrap();
    f.db.run(
        &claim,
        query_values!(
            *message.chat_id.as_uuid(),
            *message.sender_id.as_uuid(),
            message.client_msg_id.as_str().to_owned(),
            *message.id.as_uuid(),
            Blob::from(serde_json::to_vec(message).unwrap()),
            Blob::from(serde_json::to_vec(event).unwrap())
        ),
        false,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_resend_finishes_a_write_that_died_after_its_claim() {
    let f = Fixture::new().await;
    let (alice, bob) = (user(), user());
    let chat = chat_of(alice, bob);
    let (message, event) = f.message(chat, alice, bob, "half", "half written");
    // Only the claim of a first attempt, as if it died before its rows.
    write_claim_only(&f, &message, &event).await;
    let (retry, retry_event) = f.message(chat, alice, bob, "half", "half written");
    let outcome = f.store.append(&retry, &retry_event).await.unwrap();
    assert_eq!(outcome, Appended::Duplicate(message.clone()));
    assert_eq!(f.store.get(chat, message.id).await.unwrap(), Some(message));
    let pending = f.store.pending(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        pending[0].event_id, event.event_id,
        "the original event, not a new one"
    );
}

#[tokio::test]
async fn a_resend_publishes_the_event_of_a_write_whose_outbox_row_was_lost() {
    let f = Fixture::new().await;
    let (alice, bob) = (user(), user());
    let chat = chat_of(alice, bob);
    let (message, event) = f.message(chat, alice, bob, "lost-event", "message row only");
    // A first attempt whose claim and message row landed, and whose outbox row did not (the
    // two rows are written in parallel; the attempt failed, so it was never acknowledged).
    write_claim_only(&f, &message, &event).await;
    let row =
        f.db.prepare(
            "INSERT INTO messages (chat_id, timestamp, message_id, sender_id, recipient_id, kind, \
             content, digest, client_msg_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .await
        .unwrap();
    f.db.run(
        &row,
        query_values!(
            *chat.as_uuid(),
            time::PrimitiveDateTime::new(message.timestamp.date(), message.timestamp.time()),
            *message.id.as_uuid(),
            *alice.as_uuid(),
            *bob.as_uuid(),
            message.kind.as_str().to_owned(),
            Blob::from(message.content.0.clone()),
            Blob::from(message.digest.0.clone()),
            "lost-event".to_owned()
        ),
        false,
    )
    .await
    .unwrap();
    assert!(f.store.pending(10).await.unwrap().is_empty());

    let (retry, retry_event) = f.message(chat, alice, bob, "lost-event", "message row only");
    let outcome = f.store.append(&retry, &retry_event).await.unwrap();
    assert_eq!(outcome, Appended::Duplicate(message.clone()));
    let pending = f.store.pending(10).await.unwrap();
    assert_eq!(
        pending.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        vec![event.event_id],
        "the original event, published after the resend"
    );
}

#[tokio::test]
async fn mark_seen_sets_the_exact_row_once() {
    let f = Fixture::new().await;
    let (alice, bob) = (user(), user());
    let chat = chat_of(alice, bob);
    let (first, e1) = f.message(chat, alice, bob, "c-1", "one");
    let (second, e2) = f.message(chat, alice, bob, "c-2", "two");
    f.store.append(&first, &e1).await.unwrap();
    f.store.append(&second, &e2).await.unwrap();
    let at = chat_domain::model::truncate_to_millis(OffsetDateTime::now_utc());
    let seen = f
        .store
        .mark_seen(chat, first.id, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.seen_at, Some(at));
    let later = at + time::Duration::seconds(5);
    let again = f
        .store
        .mark_seen(chat, first.id, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.seen_at, Some(at), "the first time stands");
    assert_eq!(
        f.store.get(chat, second.id).await.unwrap().unwrap().seen_at,
        None
    );
    assert_eq!(
        f.store
            .mark_seen(chat, unknown_message(), at)
            .await
            .unwrap(),
        None
    );
    // A resend of a seen message does not clear seen_at.
    let (resend, resend_event) = f.message(chat, alice, bob, "c-1", "one");
    let Appended::Duplicate(original) = f.store.append(&resend, &resend_event).await.unwrap()
    else {
        panic!("expected a duplicate");
    };
    assert_eq!(original.seen_at, Some(at));
}

#[tokio::test]
async fn chats_open_once_from_both_sides_and_list_per_user() {
    let f = Fixture::new().await;
    let (alice, bob, carol) = (user(), user(), user());
    let now = chat_domain::model::truncate_to_millis(OffsetDateTime::now_utc());
    let ab = Chat::between(alice, bob, now).unwrap();
    let later = Chat::between(bob, alice, now + time::Duration::seconds(3)).unwrap();
    let (one, other) = tokio::join!(f.chats.open(&ab), f.chats.open(&later));
    let (one, other) = (one.unwrap(), other.unwrap());
    assert_eq!(one, other, "both sides agree on one chat");
    let ac = Chat::between(carol, alice, now + time::Duration::seconds(1)).unwrap();
    f.chats.open(&ac).await.unwrap();
    let alices = f.chats.chats_of(alice).await.unwrap();
    assert_eq!(alices.len(), 2);
    assert_eq!(
        alices.iter().map(|c| c.chat_id).collect::<HashSet<_>>(),
        HashSet::from([ab.id, ac.id])
    );
    let bobs = f.chats.chats_of(bob).await.unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].peer_id, alice);
    assert_eq!(bobs[0].created_at, one.created_at);
    assert_eq!(f.chats.get(ab.id).await.unwrap(), Some(one));
    assert_eq!(f.chats.get(chat_of(bob, carol)).await.unwrap(), None);
    assert!(f.chats.chats_of(user()).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_outbox_hands_out_each_event_until_removed() {
    let f = Fixture::new().await;
    let (alice, bob) = (user(), user());
    let chat = chat_of(alice, bob);
    let mut event_ids = HashSet::new();
    for i in 0..12 {
        let (message, event) = f.message(chat, alice, bob, &format!("c-{i}"), "x");
        f.store.append(&message, &event).await.unwrap();
        event_ids.insert(event.event_id);
    }
    assert_eq!(f.store.backlog().await.unwrap(), 12);
    let first = f.store.pending(5).await.unwrap();
    assert_eq!(first.len(), 5);
    f.store
        .remove(&first.iter().map(|e| e.event_id).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(f.store.backlog().await.unwrap(), 7);
    let rest = f.store.pending(100).await.unwrap();
    assert_eq!(rest.len(), 7);
    let all: HashSet<_> = first.iter().chain(&rest).map(|e| e.event_id).collect();
    assert_eq!(all, event_ids);
    f.store
        .remove(&rest.iter().map(|e| e.event_id).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(f.store.backlog().await.unwrap(), 0);
    assert!(f.store.pending(100).await.unwrap().is_empty());
}

#[tokio::test]
async fn relays_lease_the_outbox_shards_so_each_event_goes_to_one_and_hand_over_on_stop() {
    let mut config = common::test_config();
    config.outbox_lease_secs = 2;
    let f = Fixture::with_config(config).await;
    let (alice, bob) = (user(), user());
    let chat = chat_of(alice, bob);
    let mut event_ids = HashSet::new();
    for i in 0..40 {
        let (message, event) = f.message(chat, alice, bob, &format!("l-{i}"), "x");
        f.store.append(&message, &event).await.unwrap();
        event_ids.insert(event.event_id);
    }
    let ids = |events: Vec<chat_domain::NewMessageEvent>| -> HashSet<_> {
        events.into_iter().map(|e| e.event_id).collect()
    };
    // Two instances' relays on one keyspace: the first to ask takes every shard's lease.
    let (second, _) = chat_cassandra::connect_adapters(&f.config).await.unwrap();
    assert_eq!(ids(f.store.pending(1_000).await.unwrap()), event_ids);
    assert!(
        second.pending(1_000).await.unwrap().is_empty(),
        "a shard relayed twice"
    );
    // Still held a moment later: the lease is renewed, not lost.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(ids(f.store.pending(1_000).await.unwrap()), event_ids);
    assert!(second.pending(1_000).await.unwrap().is_empty());

    // A relay that stops hands its shards over: the others take them at their next try (every
    // half lease), not after a whole lease...
    f.store.release().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(ids(second.pending(1_000).await.unwrap()), event_ids);
    // ...and one that dies loses them when the lease runs out.
    let (third, _) = chat_cassandra::connect_adapters(&f.config).await.unwrap();
    drop(second);
    assert!(third.pending(1_000).await.unwrap().is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(ids(third.pending(1_000).await.unwrap()), event_ids);
}

#[tokio::test]
async fn the_chat_service_runs_over_cassandra() {
    let f = Fixture::new().await;
    let cache = Arc::new(MemoryCache::new(10));
    let fan_out = Arc::new(chat_domain::testing::RecordingFanOut::default());
    let publisher = Arc::new(chat_domain::testing::RecordingPublisher::default());
    let ports = Ports {
        store: f.store.clone(),
        chats: f.chats.clone(),
        recent: cache.clone(),
        chat_lists: cache.clone(),
        cursors: cache,
        live: fan_out.clone(),
        presence: fan_out.clone(),
        routes: fan_out,
        cipher: f.cipher.clone(),
        clock: Arc::new(chat_domain::SystemClock),
    };
    let service = ChatService::new(
        ports,
        Limits {
            recent_window: 4,
            ..Limits::default()
        },
    );
    let (alice, bob) = (user(), user());
    let mut chat = None;
    for i in 0..11 {
        let accepted = service
            .accept(
                alice,
                SendRequest {
                    client_msg_id: chat_domain::ClientMessageId::parse(&format!("s-{i}")).unwrap(),
                    to: Recipient::User(bob),
                    kind: chat_domain::MessageKind::Text,
                    content: format!("message {i}"),
                },
            )
            .await
            .unwrap();
        chat = Some(accepted.ack.chat_id);
    }
    let chat = chat.unwrap();
    let mut contents = Vec::new();
    let mut cursor = None;
    loop {
        let page = service
            .history(bob, chat, Some(3), cursor.as_ref())
            .await
            .unwrap();
        contents.extend(page.messages.into_iter().map(|m| m.content));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..11).rev().map(|i| format!("message {i}")).collect();
    assert_eq!(contents, expected);
    let relay = OutboxRelay::new(f.store.clone(), publisher.clone(), 100);
    while relay.relay_once().await.unwrap() > 0 {}
    assert_eq!(publisher.events().len(), 11);
    assert_eq!(service.list_chats(bob, bob).await.unwrap()[0].chat_id, chat);
}
