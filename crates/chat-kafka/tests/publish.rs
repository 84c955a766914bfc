//! The publisher against a real Kafka broker, read back with a real consumer.
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

mod common;

use std::collections::{HashMap, HashSet};

use chat_domain::{EventPublisher, MessageIdGenerator};
use chat_kafka::KafkaPublisher;
use common::{config, consume_all, event, user};

#[tokio::test]
async fn a_missing_topic_is_created_with_the_configured_partitions() {
    let config = config(3);
    let publisher = KafkaPublisher::new(config.clone()).unwrap();
    assert_eq!(publisher.connect().await.unwrap(), 3);
    // A second publisher finds the topic and keeps it.
    let again = KafkaPublisher::new(chat_kafka::KafkaConfig {
        partitions: 7,
        ..config
    })
    .unwrap();
    assert_eq!(again.connect().await.unwrap(), 3);
}

#[tokio::test]
async fn every_event_arrives_whole_keyed_by_recipient_and_in_order_per_recipient() {
    let config = config(3);
    let publisher = KafkaPublisher::new(config.clone()).unwrap();
    let ids = MessageIdGenerator::new();
    let recipients: Vec<_> = (0..6).map(|_| user()).collect();
    let mut sent = Vec::new();
    for round in 0..5 {
        let batch: Vec<_> = recipients
            .iter()
            .map(|recipient| event(&ids, user(), *recipient, &format!("round {round}")))
            .collect();
        publisher.publish(&batch).await.unwrap();
        sent.extend(batch);
    }
    let consumed = consume_all(&config.topic).await;
    assert_eq!(consumed.len(), sent.len());
    let by_id: HashMap<_, _> = consumed.iter().map(|c| (c.event.event_id, c)).collect();
    for event in &sent {
        let got = by_id[&event.event_id];
        assert_eq!(&got.event, event, "every field survives");
        assert_eq!(got.key, event.recipient_id.to_string());
        assert_eq!(got.headers["event_type"], b"message.created");
        assert_eq!(
            got.headers["event_id"],
            event.event_id.to_string().as_bytes()
        );
        assert_eq!(got.headers["version"], b"1");
        assert_eq!(
            got.timestamp_ms,
            chat_domain::model::millis(event.timestamp)
        );
    }
    for recipient in &recipients {
        let theirs: Vec<_> = consumed
            .iter()
            .filter(|c| c.event.recipient_id == *recipient)
            .collect();
        let partitions: HashSet<_> = theirs.iter().map(|c| c.partition).collect();
        assert_eq!(partitions.len(), 1, "one recipient, one partition");
        let order: Vec<_> = theirs.iter().map(|c| c.event.message_id).collect();
        let mut expected: Vec<_> = sent
            .iter()
            .filter(|e| e.recipient_id == *recipient)
            .map(|e| e.message_id)
            .collect();
        expected.sort();
        assert_eq!(order, expected, "in send order");
    }
    let used: HashSet<_> = consumed.iter().map(|c| c.partition).collect();
    assert!(used.len() > 1, "recipients spread over partitions");
}

#[tokio::test]
async fn an_empty_batch_publishes_nothing_and_needs_no_broker() {
    let publisher = KafkaPublisher::new(chat_kafka::KafkaConfig {
        brokers: vec!["127.0.0.1:1".to_owned()],
        ..config(1)
    })
    .unwrap();
    publisher.publish(&[]).await.unwrap();
}
