//! The broker going away and coming back (this binary kills and restarts the broker that
//! `deploy/local/kafka.sh` runs, so it runs alone).
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use chat_domain::{EventPublisher, MessageIdGenerator};
use chat_kafka::KafkaPublisher;
use common::{config, consume_all, event, user};

fn kafka(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/kafka.sh");
    let status = Command::new("bash")
        .arg(script)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "kafka.sh {args:?} failed");
}

#[tokio::test]
async fn a_dead_broker_is_unavailable_within_the_timeout_and_publishing_resumes_after() {
    let mut config = config(2);
    config.request_timeout_ms = 3_000;
    let publisher = KafkaPublisher::new(config.clone()).unwrap();
    let ids = MessageIdGenerator::new();
    let first = event(&ids, user(), user(), "before");
    publisher
        .publish(std::slice::from_ref(&first))
        .await
        .unwrap();

    kafka(&["kill"]);
    let during = event(&ids, user(), user(), "during");
    let started = Instant::now();
    let error = publisher
        .publish(std::slice::from_ref(&during))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    kafka(&["start"]);

    assert_eq!(error.code(), "unavailable", "{error}");
    assert!(waited < Duration::from_millis(3_000 + 2_000), "{waited:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(error) = publisher.publish(std::slice::from_ref(&during)).await {
        assert!(
            Instant::now() < deadline,
            "publishing did not resume: {error}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let consumed = consume_all(&config.topic).await;
    let ids: Vec<_> = consumed.iter().map(|c| c.event.event_id).collect();
    assert!(ids.contains(&first.event_id) && ids.contains(&during.event_id));
}
