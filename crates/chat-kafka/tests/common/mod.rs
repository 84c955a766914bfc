//! Shared helpers: the real broker named by `CHAT_TEST_KAFKA` (default `127.0.0.1:9092`,
//! started by `deploy/local/kafka.sh`), a topic of each test's own, and a plain consumer.
#![allow(dead_code)]

use chat_domain::testing::FakeCipher;
use chat_domain::{
    ChatId, Cipher, ClientMessageId, MessageIdGenerator, MessageKind, NewMessageEvent, SealBinding,
    StoredMessage, UserId,
};
use chat_kafka::KafkaConfig;
use time::OffsetDateTime;
use uuid::Uuid;

/// The test broker.
pub fn brokers() -> Vec<String> {
    std::env::var("CHAT_TEST_KAFKA")
        .unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// A configuration with a fresh topic of `partitions` partitions.
pub fn config(partitions: i32) -> KafkaConfig {
    KafkaConfig {
        brokers: brokers(),
        topic: format!("test-events-{}", Uuid::new_v4().simple()),
        partitions,
        request_timeout_ms: 10_000,
        ..KafkaConfig::default()
    }
}

/// An event for a new message from `sender` to `recipient`.
pub fn event(
    ids: &MessageIdGenerator,
    sender: UserId,
    recipient: UserId,
    text: &str,
) -> NewMessageEvent {
    let id = ids.next(OffsetDateTime::now_utc());
    let chat = ChatId::for_pair(sender, recipient);
    let binding = SealBinding {
        chat_id: chat,
        message_id: id,
        sender_id: sender,
    };
    let message = StoredMessage {
        id,
        chat_id: chat,
        sender_id: sender,
        recipient_id: recipient,
        kind: MessageKind::Text,
        content: FakeCipher.seal(text.as_bytes(), &binding).unwrap(),
        digest: FakeCipher.digest(text.as_bytes()),
        timestamp: id.timestamp(),
        seen_at: None,
        client_msg_id: ClientMessageId::parse(&Uuid::new_v4().to_string()).unwrap(),
    };
    NewMessageEvent::for_message(&message, true)
}

/// A fresh user.
pub fn user() -> UserId {
    UserId::from_uuid(Uuid::new_v4())
}

/// Every record of `topic`, partition by partition, from the start.
pub async fn consume_all(topic: &str) -> Vec<chat_kafka::ConsumedEvent> {
    let config = KafkaConfig {
        brokers: brokers(),
        topic: topic.to_owned(),
        ..KafkaConfig::default()
    };
    chat_kafka::read_all_events(&config).await.unwrap()
}
