//! Kafka down while users chat: every send is still acknowledged, the backlog shows in the
//! metrics, and once the broker is back every acknowledged message has its event in the topic.
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use system_tests::{TestApp, user};

fn kafka(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/kafka.sh");
    let status = Command::new("bash")
        .arg(script)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "kafka.sh {args:?} failed");
}

async fn metric(app: &TestApp, name: &str) -> Option<f64> {
    let (_, text) = app.get_text("/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
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
    while metric(&app, "chat_outbox_backlog").await != Some(5.0) {
        assert!(
            Instant::now() < deadline,
            "the backlog metric never showed 5"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metric(&app, "chat_relay_failures_total")
            .await
            .unwrap_or(0.0)
            >= 1.0
    );
    kafka(&["start"]);

    let config = chat_kafka::KafkaConfig {
        brokers: vec![brokers.clone()],
        topic: topic.clone(),
        ..chat_kafka::KafkaConfig::default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = chat_kafka::read_all_events(&config)
            .await
            .unwrap_or_default();
        let relayed: Vec<String> = events
            .iter()
            .map(|e| e.event.message_id.to_string())
            .collect();
        if acked.iter().all(|id| relayed.contains(id)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing events after the broker came back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&app, "chat_outbox_backlog").await != Some(0.0) {
        assert!(Instant::now() < deadline, "the backlog did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
