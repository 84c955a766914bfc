//! Kafka down while users chat: every send is still acknowledged, the backlog shows in the
//! metrics, and once the broker is back every acknowledged message has its event in the topic.
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

use std::time::{Duration, Instant};

use system_tests::stack::deploy_script;
use system_tests::{TestApp, user};

fn kafka(args: &[&str]) {
    deploy_script("kafka.sh", args);
}

#[actix_web::test]
async fn sends_are_acknowledged_while_kafka_is_down_and_every_event_arrives_after() {
    let brokers = std::env::var("CHAT_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let topic = format!("test-events-{}", uuid::Uuid::new_v4().simple());
    let app = TestApp::spawn_with(&[
        ("adapters.events", "kafka"),
        ("kafka.brokers", &brokers),
        ("kafka.topic", &topic),
        ("kafka.request_timeout_ms", "2000"),
        ("relay.interval_ms", "50"),
        ("relay.max_backoff_ms", "1000"),
        ("relay.backlog_interval_ms", "100"),
    ])
    .await;
    let (alice, bob) = (user(), user());
    let mut socket = app.connect(alice).await;

    kafka(&["kill"]);
    let mut acked = Vec::new();
    for i in 0..5 {
        let ack = socket
            .send_to_user(bob, &format!("down-{i}"), "sent while Kafka is down")
            .await;
        acked.push(ack["message_id"].as_str().unwrap().to_owned());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.metric("chat_outbox_backlog").await != Some(5.0) {
        assert!(
            Instant::now() < deadline,
            "the backlog metric never showed 5"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(app.metric("chat_relay_failures_total").await.unwrap_or(0.0) >= 1.0);
    kafka(&["start"]);

    let config = chat_kafka::KafkaConfig {
        brokers: vec![brokers.clone()],
        topic: topic.clone(),
        ..chat_kafka::KafkaConfig::default()
    };
    if let Err(error) = chat_kafka::wait_for_events(&config, &acked, Duration::from_secs(60)).await
    {
        panic!("missing events after the broker came back: {error}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.metric("chat_outbox_backlog").await != Some(0.0) {
        assert!(Instant::now() < deadline, "the backlog did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
