//! The use cases over in-memory adapters: no network, no disk.
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

use chat_domain::testing::{ManualClock, MemoryAdapters};
use chat_domain::{
    ChatId, ChatService, ClientMessageId, ConnectionId, Error, Limits, LiveEvent, MessageKind,
    OutboxRelay, Recipient, SendRequest, UserId,
};
use uuid::Uuid;

fn user() -> UserId {
    UserId::from_uuid(Uuid::new_v4())
}

fn limits(window: u32) -> Limits {
    Limits {
        recent_window: window,
        max_page_size: 100,
        max_sync_batch: 10,
        ..Limits::default()
    }
}

fn service(window: u32) -> (ChatService, MemoryAdapters) {
    let adapters = MemoryAdapters::new(window as usize);
    (ChatService::new(adapters.ports(), limits(window)), adapters)
}

fn text(client_msg_id: &str, to: Recipient, content: &str) -> SendRequest {
    SendRequest {
        client_msg_id: ClientMessageId::parse(client_msg_id).unwrap(),
        to,
        kind: MessageKind::Text,
        content: content.to_owned(),
    }
}

/// Sends `count` messages alternating between the two users, moving `clock` on between
/// them; returns the chat.
async fn converse(
    service: &ChatService,
    clock: &ManualClock,
    a: UserId,
    b: UserId,
    count: usize,
) -> ChatId {
    let chat = service.open_chat(a, b).await.unwrap().id;
    for i in 0..count {
        let (from, _) = if i % 2 == 0 { (a, b) } else { (b, a) };
        let accepted = service
            .accept(
                from,
                text(
                    &format!("m{i}"),
                    Recipient::Chat(chat),
                    &format!("hello {i}"),
                ),
            )
            .await
            .unwrap();
        service.distribute(&accepted, None).await;
        // Distinct milliseconds keep the expected order obvious in assertions.
        clock.advance(time::Duration::milliseconds(2));
    }
    chat
}

#[tokio::test]
async fn a_sent_message_is_stored_sealed_and_read_back_opened() {
    let (service, adapters) = service(50);
    let (alice, bob) = (user(), user());
    let accepted = service
        .accept(alice, text("c1", Recipient::User(bob), "hi bob"))
        .await
        .unwrap();
    let stored = adapters.store.messages_of(accepted.ack.chat_id);
    assert_eq!(stored.len(), 1);
    assert!(!String::from_utf8_lossy(&stored[0].content.0).contains("hi bob"));

    let page = service
        .history(bob, accepted.ack.chat_id, None, None)
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].content, "hi bob");
    assert_eq!(page.messages[0].sender_id, alice);
    assert_eq!(page.messages[0].recipient_id, bob);
    assert_eq!(page.next_cursor, None);
}

#[tokio::test]
async fn a_resend_with_the_same_client_id_returns_the_same_ack_and_stores_once() {
    let (service, adapters) = service(50);
    let (alice, bob) = (user(), user());
    let first = service
        .accept(alice, text("same", Recipient::User(bob), "once"))
        .await
        .unwrap();
    let again = service
        .accept(
            alice,
            text("same", Recipient::Chat(first.ack.chat_id), "once"),
        )
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(first.ack, again.ack);
    assert_eq!(adapters.store.messages_of(first.ack.chat_id).len(), 1);
    assert_eq!(adapters.publisher.events().len(), 0, "nothing relayed yet");
    let relay = OutboxRelay::new(adapters.store.clone(), adapters.publisher.clone(), 10);
    assert_eq!(
        relay.relay_once().await.unwrap(),
        1,
        "one event for one message"
    );
}

#[tokio::test]
async fn both_sides_open_the_same_chat() {
    let (service, _) = service(50);
    let (alice, bob) = (user(), user());
    let one = service.open_chat(alice, bob).await.unwrap();
    let other = service.open_chat(bob, alice).await.unwrap();
    assert_eq!(one, other);
    assert_eq!(service.list_chats(alice, alice).await.unwrap().len(), 1);
    let bobs = service.list_chats(bob, bob).await.unwrap();
    assert_eq!(bobs[0].peer_id, alice);
}

#[tokio::test]
async fn a_chat_with_yourself_is_refused() {
    let (service, _) = service(50);
    let alice = user();
    let err = service
        .accept(alice, text("c", Recipient::User(alice), "me"))
        .await
        .unwrap_err();
    assert_eq!(err, Error::SelfChat);
}

#[tokio::test]
async fn empty_or_oversized_content_is_refused_and_nothing_is_stored() {
    let (service, adapters) = service(50);
    let (alice, bob) = (user(), user());
    let chat = service.open_chat(alice, bob).await.unwrap().id;
    let empty = service
        .accept(alice, text("e", Recipient::Chat(chat), "  \n"))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), "empty_content");
    let big = "x".repeat(service.limits().max_content_bytes + 1);
    let too_big = service
        .accept(alice, text("b", Recipient::Chat(chat), &big))
        .await
        .unwrap_err();
    assert_eq!(too_big.code(), "content_too_large");
    let exact = "y".repeat(service.limits().max_content_bytes);
    service
        .accept(alice, text("ok", Recipient::Chat(chat), &exact))
        .await
        .unwrap();
    assert_eq!(adapters.store.messages_of(chat).len(), 1);
}

#[tokio::test]
async fn outsiders_cannot_send_read_sync_type_or_mark_seen() {
    let (service, _) = service(50);
    let (alice, bob, eve) = (user(), user(), user());
    let accepted = service
        .accept(alice, text("c", Recipient::User(bob), "private"))
        .await
        .unwrap();
    let chat = accepted.ack.chat_id;
    let send = service
        .accept(eve, text("x", Recipient::Chat(chat), "hi"))
        .await;
    assert_eq!(send.unwrap_err(), Error::ChatNotFound);
    assert_eq!(
        service.history(eve, chat, None, None).await.unwrap_err(),
        Error::ChatNotFound
    );
    assert_eq!(
        service.sync(eve, chat, None).await.unwrap_err(),
        Error::ChatNotFound
    );
    assert_eq!(
        service.typing(eve, chat, None).await.unwrap_err(),
        Error::ChatNotFound
    );
    assert_eq!(
        service
            .mark_seen(eve, chat, accepted.ack.message_id)
            .await
            .unwrap_err(),
        Error::ChatNotFound
    );
    let unknown = ChatId::from_uuid(Uuid::new_v4());
    assert_eq!(
        service
            .history(alice, unknown, None, None)
            .await
            .unwrap_err(),
        Error::ChatNotFound
    );
}

async fn page_all(
    service: &ChatService,
    user: UserId,
    chat: ChatId,
    limit: u32,
    during: impl AsyncFn(usize),
) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = service
            .history(user, chat, Some(limit), cursor.as_ref())
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.messages.iter().map(|m| m.content.clone()));
        during(pages).await;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return (seen, pages),
        }
    }
}

async fn history_pages_reach_the_oldest_message_exactly_once(window: u32) {
    let (service, adapters) = service(window);
    let (alice, bob) = (user(), user());
    let chat = converse(&service, &adapters.clock, alice, bob, 23).await;
    let (seen, pages) = page_all(&service, alice, chat, 5, async |page| {
        // New messages keep arriving while the user pages back.
        let accepted = service
            .accept(
                bob,
                text(&format!("late{page}"), Recipient::Chat(chat), "late"),
            )
            .await
            .unwrap();
        service.distribute(&accepted, None).await;
    })
    .await;
    let expected: Vec<String> = (0..23).rev().map(|i| format!("hello {i}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 5);
}

#[tokio::test]
async fn history_pages_reach_the_oldest_message_exactly_once_with_the_cache() {
    history_pages_reach_the_oldest_message_exactly_once(8).await;
}

#[tokio::test]
async fn history_pages_reach_the_oldest_message_exactly_once_without_the_cache() {
    history_pages_reach_the_oldest_message_exactly_once(0).await;
}

#[tokio::test]
async fn the_first_page_comes_from_the_recent_cache_once_primed() {
    let (service, adapters) = service(10);
    let (alice, bob) = (user(), user());
    let chat = converse(&service, &adapters.clock, alice, bob, 4).await;
    let first = service.history(alice, chat, Some(3), None).await.unwrap();
    let window = adapters
        .cache
        .cached_window(chat)
        .expect("primed by the first read");
    assert_eq!(window.messages.len(), 4);
    assert!(window.complete);
    // A message sent after priming joins the window, so the cache stays exact.
    let accepted = service
        .accept(bob, text("new", Recipient::Chat(chat), "newest"))
        .await
        .unwrap();
    service.distribute(&accepted, None).await;

    adapters.store.failing.set(true);
    let cached = service.history(alice, chat, Some(3), None).await.unwrap();
    assert_eq!(cached.messages[0].content, "newest");
    assert_eq!(cached.messages[1..], first.messages[..2]);
    assert!(cached.next_cursor.is_some());
}

#[tokio::test]
async fn a_broken_cache_or_fan_out_does_not_fail_sends_or_reads() {
    let (service, adapters) = service(10);
    let (alice, bob) = (user(), user());
    adapters.cache.failing.set(true);
    adapters.fan_out.failing.set(true);
    let chat = converse(&service, &adapters.clock, alice, bob, 3).await;
    let page = service.history(bob, chat, None, None).await.unwrap();
    assert_eq!(page.messages.len(), 3);
    assert!(!page.has_more);
    assert_eq!(service.list_chats(bob, bob).await.unwrap().len(), 1);

    // A page with more behind it is still served when its cursor cannot be kept; it says more
    // remain, and once the cursor store is back the first page comes with a cursor again.
    let page = service.history(bob, chat, Some(2), None).await.unwrap();
    assert_eq!(page.messages.len(), 2);
    assert!(page.has_more);
    assert_eq!(page.next_cursor, None);
    adapters.cache.failing.set(false);
    let page = service.history(bob, chat, Some(2), None).await.unwrap();
    assert!(page.has_more);
    let cursor = page.next_cursor.unwrap();
    let rest = service
        .history(bob, chat, Some(2), Some(&cursor))
        .await
        .unwrap();
    assert_eq!(rest.messages.len(), 1);
    assert!(!rest.has_more);
}

#[tokio::test]
async fn a_store_outage_is_unavailable_and_nothing_is_acknowledged() {
    let (service, adapters) = service(10);
    let (alice, bob) = (user(), user());
    let chat = service.open_chat(alice, bob).await.unwrap().id;
    adapters.store.failing.set(true);
    let err = service
        .accept(alice, text("c", Recipient::Chat(chat), "lost?"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unavailable");
    adapters.store.failing.set(false);
    assert!(adapters.store.messages_of(chat).is_empty());
}

#[tokio::test]
async fn a_cursor_works_only_for_its_user_and_chat_and_until_it_expires() {
    let (service, adapters) = service(0);
    let (alice, bob, carol) = (user(), user(), user());
    let chat = converse(&service, &adapters.clock, alice, bob, 6).await;
    let other_chat = converse(&service, &adapters.clock, alice, carol, 6).await;
    let cursor = service
        .history(alice, chat, Some(2), None)
        .await
        .unwrap()
        .next_cursor
        .unwrap();
    assert_eq!(
        service
            .history(bob, chat, Some(2), Some(&cursor))
            .await
            .unwrap_err(),
        Error::InvalidCursor
    );
    assert_eq!(
        service
            .history(alice, other_chat, Some(2), Some(&cursor))
            .await
            .unwrap_err(),
        Error::InvalidCursor
    );
    assert!(
        service
            .history(alice, chat, Some(2), Some(&cursor))
            .await
            .is_ok()
    );
    adapters.cache.expire_cursors();
    assert_eq!(
        service
            .history(alice, chat, Some(2), Some(&cursor))
            .await
            .unwrap_err(),
        Error::InvalidCursor
    );
}

#[tokio::test]
async fn a_page_limit_out_of_range_is_a_clear_error() {
    let (service, adapters) = service(0);
    let (alice, bob) = (user(), user());
    let chat = converse(&service, &adapters.clock, alice, bob, 1).await;
    for limit in [0, 101] {
        let err = service
            .history(alice, chat, Some(limit), None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_field");
        assert!(err.to_string().contains("limit"));
    }
}

#[tokio::test]
async fn only_a_user_lists_their_own_chats() {
    let (service, _) = service(0);
    let (alice, bob) = (user(), user());
    service.open_chat(alice, bob).await.unwrap();
    assert_eq!(
        service.list_chats(alice, bob).await.unwrap_err().code(),
        "forbidden"
    );
}

#[tokio::test]
async fn the_recipient_marks_seen_once_and_both_members_hear_of_it() {
    let (service, adapters) = service(10);
    let (alice, bob) = (user(), user());
    let accepted = service
        .accept(alice, text("c", Recipient::User(bob), "read me"))
        .await
        .unwrap();
    let (chat, id) = (accepted.ack.chat_id, accepted.ack.message_id);
    assert_eq!(
        service.mark_seen(alice, chat, id).await.unwrap_err().code(),
        "invalid_field",
        "the sender cannot mark their own message seen"
    );
    let first = service.mark_seen(bob, chat, id).await.unwrap();
    let second = service.mark_seen(bob, chat, id).await.unwrap();
    assert_eq!(first.seen_at, second.seen_at);
    let seen_events: Vec<UserId> = adapters
        .fan_out
        .published()
        .into_iter()
        .filter(|(_, event)| matches!(event, LiveEvent::Seen { .. }))
        .map(|(to, _)| to)
        .collect();
    assert!(seen_events.contains(&alice) && seen_events.contains(&bob));
    let page = service.history(alice, chat, None, None).await.unwrap();
    assert_eq!(page.messages[0].seen_at, Some(first.seen_at));
    let missing = chat_domain::MessageId::generate(time::OffsetDateTime::now_utc());
    assert_eq!(
        service.mark_seen(bob, chat, missing).await.unwrap_err(),
        Error::MessageNotFound
    );
}

#[tokio::test]
async fn sync_returns_what_was_missed_oldest_first_in_bounded_batches() {
    let (service, adapters) = service(10);
    let (alice, bob) = (user(), user());
    let chat = converse(&service, &adapters.clock, alice, bob, 15).await;
    let all = service.sync(bob, chat, None).await.unwrap();
    assert_eq!(all.messages.len(), 10);
    assert!(all.has_more);
    assert_eq!(all.messages[0].content, "hello 0");
    let rest = service
        .sync(bob, chat, Some(all.messages[9].id))
        .await
        .unwrap();
    let contents: Vec<_> = rest.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        contents,
        ["hello 10", "hello 11", "hello 12", "hello 13", "hello 14"]
    );
    assert!(!rest.has_more);
}

#[tokio::test]
async fn a_message_is_pushed_to_the_recipient_and_the_senders_other_connections() {
    let (service, adapters) = service(10);
    let (alice, bob) = (user(), user());
    let origin = ConnectionId::generate();
    let accepted = service
        .accept(alice, text("c", Recipient::User(bob), "live"))
        .await
        .unwrap();
    service.distribute(&accepted, Some(origin)).await;
    let published = adapters.fan_out.published();
    let targets: Vec<UserId> = published.iter().map(|(to, _)| *to).collect();
    assert_eq!(targets, [bob, alice]);
    assert!(
        published
            .iter()
            .all(|(_, event)| event.origin() == Some(origin))
    );
}

#[tokio::test]
async fn typing_reaches_only_the_peer() {
    let (service, adapters) = service(10);
    let (alice, bob) = (user(), user());
    let chat = service.open_chat(alice, bob).await.unwrap().id;
    service.typing(alice, chat, None).await.unwrap();
    let published = adapters.fan_out.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].0, bob);
}

#[tokio::test]
async fn every_acknowledged_message_gets_one_sealed_event_even_after_a_publisher_outage() {
    let (service, adapters) = service(10);
    let (alice, bob) = (user(), user());
    adapters.fan_out.connect(bob);
    let accepted = service
        .accept(alice, text("c", Recipient::User(bob), "notify"))
        .await
        .unwrap();
    let relay = OutboxRelay::new(adapters.store.clone(), adapters.publisher.clone(), 10);
    adapters.publisher.failing.set(true);
    assert!(relay.relay_once().await.is_err());
    assert_eq!(relay.backlog().await.unwrap(), 1, "kept for the next round");
    adapters.publisher.failing.set(false);
    assert_eq!(relay.relay_once().await.unwrap(), 1);
    assert_eq!(relay.backlog().await.unwrap(), 0);
    let events = adapters.publisher.events();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.message_id, accepted.ack.message_id);
    assert_eq!((event.sender_id, event.recipient_id), (alice, bob));
    assert!(event.recipient_online);
    assert_eq!(event.content, accepted.message.content, "sealed, as stored");
}

#[tokio::test]
async fn a_message_sent_while_the_first_page_is_read_still_shows_on_it() {
    use chat_domain::{RecentMessages, RecentWindow};
    let (service, adapters) = service(10);
    let (alice, bob) = (user(), user());
    let chat = converse(&service, &adapters.clock, alice, bob, 2).await;
    // The first-page read of the store saw the two messages; a third is sent before the read
    // primes the cache.
    let read = adapters.store.messages_of(chat);
    let accepted = service
        .accept(bob, text("mid", Recipient::Chat(chat), "sent meanwhile"))
        .await
        .unwrap();
    service.distribute(&accepted, None).await;
    adapters
        .cache
        .prime(
            chat,
            &RecentWindow {
                messages: read,
                complete: true,
            },
        )
        .await
        .unwrap();
    let page = service.history(alice, chat, None, None).await.unwrap();
    assert_eq!(page.messages.len(), 3);
    assert_eq!(page.messages[0].content, "sent meanwhile");
}
