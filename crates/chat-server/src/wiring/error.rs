//! Why the adapters could not be set up: each adapter crate's own error, kept whole.

/// An adapter, a key or a schema migration failed at startup.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// Encryption keys are unusable.
    #[error("crypto keys")]
    Crypto(#[from] chat_crypto::CryptoError),
    /// The embedded store or event log could not be opened.
    #[error("embedded storage")]
    Embedded(#[from] chat_embedded::EmbeddedError),
    /// The Kafka publisher is misconfigured.
    #[error(transparent)]
    Kafka(#[from] chat_kafka::KafkaError),
    /// Cassandra could not be reached or migrated.
    #[error(transparent)]
    Cassandra(#[from] chat_cassandra::CassandraError),
    /// The Redis adapter is misconfigured.
    #[error(transparent)]
    Redis(#[from] chat_redis::RedisError),
}
