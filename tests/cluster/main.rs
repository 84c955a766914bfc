//! The service with its storage in a real Apache Cassandra (the node `deploy/local/test.sh`
//! starts; `CHAT_TEST_CASSANDRA` names it), driven by real WebSocket and HTTP clients. Each
//! test uses a keyspace of its own, created by the service's own migrations at start-up.
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

use serde_json::json;
use system_tests::cassandra::{fresh_keyspace, spawn};
use system_tests::user;

#[actix_web::test]
async fn users_chat_live_and_page_history_stored_in_cassandra() {
    let app = spawn(&fresh_keyspace()).await;
    let (alice, bob) = (user(), user());
    let mut alice_socket = app.connect(alice).await;
    let mut bob_socket = app.connect(bob).await;
    let first = alice_socket
        .send_to_user(bob, "c-0", "stored in cassandra")
        .await;
    let chat = first["chat_id"].as_str().unwrap().to_owned();
    assert_eq!(
        bob_socket.expect("message").await["message"]["content"],
        "stored in cassandra"
    );
    for i in 1..25 {
        bob_socket
            .send_to_chat(&chat, &format!("b-{i}"), &format!("reply {i}"))
            .await;
    }
    let history = app.page_all(alice, &chat, 7, async || {}).await;
    let contents: Vec<&str> = history
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    let mut expected: Vec<String> = (1..25).rev().map(|i| format!("reply {i}")).collect();
    expected.push("stored in cassandra".to_owned());
    assert_eq!(contents, expected);
    bob_socket
        .send(&json!({"type": "seen", "chat_id": chat, "message_id": first["message_id"]}))
        .await;
    assert_eq!(
        alice_socket.expect("seen").await["message_id"],
        first["message_id"]
    );
    let (status, list) = app.get("/users/chat", Some(alice)).await;
    assert_eq!(status, 200);
    assert_eq!(list["chat_ids"], json!([chat]));
}

#[actix_web::test]
async fn a_resend_through_another_instance_gets_the_same_ack() {
    let keyspace = fresh_keyspace();
    let one = spawn(&keyspace).await;
    let two = spawn(&keyspace).await;
    let (alice, bob) = (user(), user());
    let mut on_one = one.connect(alice).await;
    let mut on_two = two.connect(alice).await;
    let first = on_one.send_to_user(bob, "retry-me", "sent once").await;
    // The ack was lost; the client reconnects elsewhere and sends again.
    let again = on_two.send_to_user(bob, "retry-me", "sent once").await;
    assert_eq!(first, again);
    let chat = first["chat_id"].as_str().unwrap();
    let history = two.page_all(bob, chat, 10, async || {}).await;
    assert_eq!(history.len(), 1);
}

#[actix_web::test]
async fn history_survives_a_restart_of_the_service() {
    let keyspace = fresh_keyspace();
    let app = spawn(&keyspace).await;
    let (alice, bob) = (user(), user());
    let mut socket = app.connect(alice).await;
    let ack = socket
        .send_to_user(bob, "r-1", "still here after a restart")
        .await;
    let chat = ack["chat_id"].as_str().unwrap().to_owned();
    drop(socket);
    app.stop().await;
    let app = spawn(&keyspace).await;
    let (status, page) = app.get(&format!("/users/chat/{chat}"), Some(bob)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["messages"][0]["content"], "still here after a restart");
    let (_, ready) = app.get("/readyz", None).await;
    assert_eq!(ready["status"], "ready");
}

#[actix_web::test]
async fn two_instances_relaying_one_outbox_lose_no_event() {
    let keyspace = fresh_keyspace();
    let brokers = std::env::var("CHAT_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let topic = format!("test-events-{}", uuid::Uuid::new_v4().simple());
    let mut settings = system_tests::cassandra::on_cassandra(&keyspace);
    settings.extend([
        ("adapters.events", "kafka".to_owned()),
        ("kafka.brokers", brokers.clone()),
        ("kafka.topic", topic.clone()),
        ("relay.interval_ms", "50".to_owned()),
    ]);
    let overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let temp = || system_tests::DataDir::Temp(tempfile::tempdir().unwrap());
    let one = system_tests::TestApp::spawn_in(temp(), &overrides).await;
    let _two = system_tests::TestApp::spawn_in(temp(), &overrides).await;
    let (alice, bob) = (user(), user());
    let mut socket = one.connect(alice).await;
    let mut acked = Vec::new();
    for i in 0..10 {
        let ack = socket.send_to_user(bob, &format!("o-{i}"), "relayed").await;
        acked.push(ack["message_id"].as_str().unwrap().to_owned());
    }
    let config = chat_kafka::KafkaConfig {
        brokers: vec![brokers],
        topic,
        ..chat_kafka::KafkaConfig::default()
    };
    let events = chat_kafka::wait_for_events(&config, &acked, std::time::Duration::from_secs(60))
        .await
        .unwrap_or_else(|error| panic!("events missing: {error}"));
    // Any duplicate is the same event: one event id per message.
    let mut ids = std::collections::HashMap::new();
    for consumed in &events {
        let first = ids
            .entry(consumed.event.message_id)
            .or_insert(consumed.event.event_id);
        assert_eq!(*first, consumed.event.event_id);
    }
    assert_eq!(ids.len(), 10);
}

#[actix_web::test]
async fn with_redis_down_messages_are_still_acknowledged_delivered_and_read() {
    let keyspace = fresh_keyspace();
    let mut settings = system_tests::cassandra::on_cassandra(&keyspace);
    // Nothing listens there: the Redis cluster is "down" for the whole test.
    settings.extend([
        ("adapters.cache", "redis".to_owned()),
        ("adapters.fan_out", "redis".to_owned()),
        ("redis.nodes", "127.0.0.1:1".to_owned()),
        ("redis.connect_timeout_ms", "300".to_owned()),
        ("redis.command_timeout_ms", "300".to_owned()),
    ]);
    let overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = system_tests::TestApp::spawn_in(
        system_tests::DataDir::Temp(tempfile::tempdir().unwrap()),
        &overrides,
    )
    .await;
    let (status, ready) = app.get("/readyz", None).await;
    assert_eq!((status, ready["redis"].as_str()), (200, Some("degraded")));

    let (alice, bob) = (user(), user());
    let mut alice_socket = app.connect(alice).await;
    let mut bob_socket = app.connect(bob).await;
    let mut acks = Vec::new();
    for i in 0..5 {
        acks.push(
            alice_socket
                .send_to_user(bob, &format!("d-{i}"), &format!("m{i}"))
                .await,
        );
        // Live delivery on this instance does not need Redis.
        assert_eq!(
            bob_socket.expect("message").await["message"]["content"],
            format!("m{i}")
        );
    }
    let chat = acks[0]["chat_id"].as_str().unwrap();
    let (status, page) = app
        .get(&format!("/users/chat/{chat}?limit=10"), Some(bob))
        .await;
    assert_eq!(status, 200);
    let contents: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        ["m4", "m3", "m2", "m1", "m0"],
        "read from Cassandra"
    );
    let (status, page) = app
        .get(&format!("/users/chat/{chat}?limit=2"), Some(bob))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (page["has_more"].as_bool(), page["next_cursor"].as_str()),
        (Some(true), None)
    );
    let (status, list) = app.get("/users/chat", Some(alice)).await;
    assert_eq!(
        (status, list["chat_ids"].clone()),
        (200, serde_json::json!([chat]))
    );
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(metrics.contains("chat_redis_degraded 1"), "{metrics}");
    // The adapter's own failure counter reaches /metrics too (read from it at scrape time).
    let failures = app.metric("chat_redis_failures_total").await;
    assert!(
        failures.is_some_and(|failures| failures >= 1.0),
        "{failures:?}"
    );
}
