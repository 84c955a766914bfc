//! [`BenchError`]: what stops a phase. The phases keep the cause; `main` prints the chain.

/// Why a phase could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Cassandra refused or timed out (the store phases, the fixture keyspace).
    #[error("cassandra: {0}")]
    Cassandra(#[from] chat_cassandra::CassandraError),
    /// The store refused an append (mapped by the adapter into the domain's error).
    #[error("store: {0}")]
    Store(#[from] chat_domain::Error),
    /// The stack's content keys do not build a cipher.
    #[error("crypto: {0}")]
    Crypto(#[from] chat_crypto::CryptoError),
    /// The Kafka watcher could not read the topic.
    #[error("kafka: {0}")]
    Kafka(#[from] rskafka::client::error::Error),
    /// A WebSocket handshake failed or a socket ended early.
    #[error("websocket: {0}")]
    Socket(String),
    /// An HTTP request (metrics) failed.
    #[error("http: {0}")]
    Http(String),
    /// Reading `/proc`, running a stack script or writing the results.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Encoding results or decoding a frame.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The stack is not as the benchmark needs it (no instance, too few files, …).
    #[error("{0}")]
    Setup(String),
}
