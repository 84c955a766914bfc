//! Cassandra going away and coming back, against the node `deploy/local/cassandra.sh` runs.
//! This binary stops and pauses that node, so its tests take turns (cargo runs test binaries
//! one after another, so no other test sees the outage).
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

mod common;

use std::time::{Duration, Instant};

use chat_domain::{MessageStore, PageStart};
use common::{Fixture, cassandra, one_at_a_time, test_config, user};

#[tokio::test]
async fn the_adapter_recovers_after_cassandra_restarts() {
    let _turn = one_at_a_time().await;
    let mut config = test_config();
    config.request_timeout_ms = 2_000;
    let f = Fixture::with_config(config).await;
    let (alice, bob) = (user(), user());
    let chat = chat_domain::ChatId::for_pair(alice, bob);
    let (before, event) = f.message(chat, alice, bob, "before", "before the crash");
    f.store.append(&before, &event).await.unwrap();

    cassandra(&["kill-node", "1"]);
    let (during, event) = f.message(chat, alice, bob, "during", "while it is down");
    let started = Instant::now();
    let error = f.store.append(&during, &event).await.unwrap_err();
    assert_eq!(error.code(), "unavailable", "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    cassandra(&["start-node", "1"]);
    // The same adapter, never rebuilt: it reconnects by itself.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match f.store.append(&during, &event).await {
            Ok(_) => break,
            Err(error) if Instant::now() < deadline => {
                eprintln!("not back yet: {error}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => panic!("the adapter did not recover: {error}"),
        }
    }
    let page = f.store.page(chat, &PageStart::Newest, 10).await.unwrap();
    let ids: Vec<_> = page.messages.iter().map(|m| m.id).collect();
    assert_eq!(ids, [during.id, before.id]);
}

#[tokio::test]
async fn a_hung_cassandra_times_out_instead_of_hanging_the_caller() {
    let _turn = one_at_a_time().await;
    let mut config = test_config();
    config.request_timeout_ms = 1_500;
    let f = Fixture::with_config(config).await;
    let (alice, bob) = (user(), user());
    let chat = chat_domain::ChatId::for_pair(alice, bob);
    let (message, event) = f.message(chat, alice, bob, "frozen", "into the void");

    cassandra(&["pause-node", "1"]);
    let started = Instant::now();
    let outcome = f.store.append(&message, &event).await;
    let read = f.store.get(chat, message.id).await;
    let elapsed = started.elapsed();
    cassandra(&["resume-node", "1"]);

    assert_eq!(outcome.unwrap_err().code(), "unavailable");
    assert_eq!(read.unwrap_err().code(), "unavailable");
    assert!(
        elapsed < Duration::from_millis(2 * 1_500 + 1_000),
        "{elapsed:?}"
    );
    // And it answers again once the node does.
    let deadline = Instant::now() + Duration::from_secs(60);
    while f.store.append(&message, &event).await.is_err() {
        assert!(Instant::now() < deadline, "no answer after resuming");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
