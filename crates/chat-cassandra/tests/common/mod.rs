//! Shared helpers: a fresh keyspace on the real Cassandra named by `CHAT_TEST_CASSANDRA`
//! (default `127.0.0.1:9042`, started by `deploy/local/cassandra.sh`), migrated, with both
//! adapters. A missing server fails the test; it never skips.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use chat_cassandra::session::{Db, connect};
use chat_cassandra::{CassandraChats, CassandraConfig, CassandraStore};
use chat_domain::{
    ChatId, Cipher, MessageId, MessageIdGenerator, NewMessageEvent, SealBinding, StoredMessage,
    UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// A keyspace of its own, migrated, and the adapters over it.
pub struct Fixture {
    pub config: CassandraConfig,
    pub store: Arc<CassandraStore>,
    pub chats: Arc<CassandraChats>,
    pub db: Db,
    pub cipher: Arc<chat_crypto::MessageCipher>,
    pub ids: MessageIdGenerator,
}

/// The contact points of the test server.
pub fn contact_points() -> Vec<String> {
    std::env::var("CHAT_TEST_CASSANDRA")
        .unwrap_or_else(|_| "127.0.0.1:9042".to_owned())
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// A configuration for a fresh keyspace on the test server.
pub fn test_config() -> CassandraConfig {
    CassandraConfig {
        contact_points: contact_points(),
        keyspace: format!("t_{}", Uuid::new_v4().simple()),
        // One test node: quorum of one.
        consistency: "quorum".to_owned(),
        serial_consistency: "serial".to_owned(),
        request_timeout_ms: 10_000,
        connect_timeout_ms: 10_000,
        ..CassandraConfig::default()
    }
}

impl Fixture {
    /// Migrates a fresh keyspace and connects the adapters.
    pub async fn new() -> Self {
        Self::with_config(test_config()).await
    }

    /// As [`Fixture::new`] with `config`.
    pub async fn with_config(config: CassandraConfig) -> Self {
        chat_cassandra::migrate(&config)
            .await
            .unwrap_or_else(|error| panic!("is Cassandra running? {error}"));
        let (store, chats) = chat_cassandra::connect_adapters(&config).await.unwrap();
        let session = connect(&config, Some(&config.keyspace)).await.unwrap();
        let db = Db::new(session, &config, Some(&config.keyspace)).unwrap();
        Self {
            config,
            store: Arc::new(store),
            chats: Arc::new(chats),
            db,
            cipher: Arc::new(test_cipher()),
            ids: MessageIdGenerator::new(),
        }
    }

    /// A sealed message from `sender` to `recipient` in `chat`, and its event.
    pub fn message(
        &self,
        chat: ChatId,
        sender: UserId,
        recipient: UserId,
        client_msg_id: &str,
        text: &str,
    ) -> (StoredMessage, NewMessageEvent) {
        let message = chat_domain::testing::sealed_message(
            self.cipher.as_ref(),
            &self.ids,
            sender,
            recipient,
            client_msg_id,
            text,
        );
        assert_eq!(
            message.chat_id, chat,
            "a 1:1 chat's id is its members' pair"
        );
        let event = NewMessageEvent::for_message(&message, false);
        (message, event)
    }

    /// The plaintext of a stored message.
    pub fn open(&self, message: &StoredMessage) -> String {
        String::from_utf8(
            self.cipher
                .open(&message.content, &SealBinding::of(message))
                .unwrap(),
        )
        .unwrap()
    }
}

/// A cipher with fixed test keys.
pub fn test_cipher() -> chat_crypto::MessageCipher {
    let config = chat_crypto::CryptoConfig {
        active_key_id: 1,
        keys: [(
            "1".to_owned(),
            secrecy::SecretString::from("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
        )]
        .into(),
        digest_key: secrecy::SecretString::from("ZGlnZXN0LWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OWFi"),
    };
    chat_crypto::MessageCipher::from_config(&config).unwrap()
}

/// A fresh user.
pub fn user() -> UserId {
    UserId::from_uuid(Uuid::new_v4())
}

/// A fresh message id far from any stored one.
pub fn unknown_message() -> MessageId {
    MessageId::generate(OffsetDateTime::now_utc())
}

/// A number from the environment variable `name`, or `default` (the benchmarks' settings).
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// One test at a time in this test binary: the guard of a lock every caller shares, for tests
/// that stop, kill or pause the test Cassandra.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// `deploy/local/cassandra.sh`, to be given its arguments (`kill-node 1`, `status`, …).
pub fn cassandra_script() -> Command {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/cassandra.sh");
    let mut command = Command::new("bash");
    command.arg(script);
    command
}

/// Runs `deploy/local/cassandra.sh args…`, failing the test if it fails.
pub fn cassandra(args: &[&str]) {
    let status = cassandra_script().args(args).status().unwrap();
    assert!(status.success(), "cassandra.sh {args:?} failed");
}
