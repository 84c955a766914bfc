//! # chat-kafka
//!
//! The Kafka adapter of chat-message-service: an [`EventPublisher`] that produces each
//! [`NewMessageEvent`] to a topic for notification-service, with `rskafka`. The outbox relay
//! calls it; nothing on the send path waits for Kafka. The event's layout and a sample:
//! `docs/events.md`.
//!
//! ## Layout
//! - [`KafkaConfig`]: brokers, topic, partitions, replication, compression, timeouts.
//! - [`KafkaPublisher`]: connects lazily (the service starts and accepts messages while Kafka
//!   is down), creates the topic when missing, and produces one batch per partition.
//! - [`KafkaError`]: its errors, mapped into `chat_domain::Error::Unavailable`.
//!
//! ## Records
//! - key: the recipient's user id (text), so one user's events stay in order on one partition;
//!   partition = FNV-1a(key) mod the topic's partition count.
//! - value: the event as JSON (`version` 1); headers `event_type`, `event_id`, `version`.
//! - timestamp: the message's timestamp.
//!
//! ## How rskafka's gaps are covered
//! - **No idempotent producer**: a retried produce may write a record twice; every record
//!   carries a unique `event_id` for consumers to dedup on (and the outbox may publish twice
//!   anyway).
//! - **Backoff with no deadline by default**: every client gets `deadline = request_timeout`,
//!   and each call also runs under `tokio::time::timeout`.
//! - **chrono timestamps**: converted from the event's `time` value in one place.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::{EventPublisher, NewMessageEvent};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use serde::Deserialize;
use tokio::sync::Mutex;

/// How to reach Kafka and where events go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// The topic of new-message events.
    pub topic: String,
    /// Partitions when the topic is created (an existing topic keeps its own).
    pub partitions: i32,
    /// Replication factor when the topic is created.
    pub replication_factor: i16,
    /// Whether to create the topic when it is missing.
    pub create_topic: bool,
    /// `none`, `gzip`, `lz4` or `snappy`.
    pub compression: String,
    /// The longest one produce (with its retries) may take.
    pub request_timeout_ms: u64,
    /// The client id brokers see.
    pub client_id: String,
    /// How long to wait, after creating the topic, for the broker's metadata to list it with
    /// its partitions (a busy broker answers the creation before its metadata shows the topic).
    pub topic_ready_timeout_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: vec!["127.0.0.1:9092".to_owned()],
            topic: "chat.message-events".to_owned(),
            partitions: 6,
            replication_factor: 1,
            create_topic: true,
            compression: "lz4".to_owned(),
            request_timeout_ms: 5_000,
            client_id: "chat-message-service".to_owned(),
            topic_ready_timeout_ms: 30_000,
        }
    }
}

impl KafkaConfig {
    fn compression_codec(&self) -> Result<Compression, KafkaError> {
        match self.compression.as_str() {
            "none" => Ok(Compression::NoCompression),
            "gzip" => Ok(Compression::Gzip),
            "lz4" => Ok(Compression::Lz4),
            "snappy" => Ok(Compression::Snappy),
            other => Err(KafkaError::Config(format!(
                "compression {other:?}: use none, gzip, lz4 or snappy"
            ))),
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// What went wrong with Kafka.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    /// A setting is unusable.
    #[error("kafka config: {0}")]
    Config(String),
    /// The client failed (connection, protocol, or a broker error).
    #[error("kafka client")]
    Client(#[from] rskafka::client::error::Error),
    /// No answer in time.
    #[error("kafka: no answer within {0} ms")]
    Timeout(u64),
    /// The topic was created (or found being created) but the broker's metadata did not list it
    /// with partitions in time.
    #[error(
        "kafka: topic {topic} was created but the broker did not list it with partitions \
         within {waited_ms} ms (last metadata: {last_seen})"
    )]
    TopicNotReady {
        /// The topic.
        topic: String,
        /// How long the publisher waited.
        waited_ms: u64,
        /// What the last metadata read said about it.
        last_seen: String,
    },
    /// An event could not be encoded.
    #[error("kafka: encoding an event")]
    Encode(#[from] serde_json::Error),
}

impl From<KafkaError> for chat_domain::Error {
    fn from(error: KafkaError) -> Self {
        match error {
            KafkaError::Config(_) | KafkaError::Encode(_) => {
                Self::Internal(chat_domain::Cause::new(error))
            }
            KafkaError::Client(_) | KafkaError::Timeout(_) | KafkaError::TopicNotReady { .. } => {
                Self::Unavailable(chat_domain::Cause::new(error))
            }
        }
    }
}

/// The connected state: the client and one partition client per partition.
struct Connected {
    partitions: Vec<Arc<PartitionClient>>,
}

/// Publishes new-message events to Kafka.
pub struct KafkaPublisher {
    config: KafkaConfig,
    compression: Compression,
    connected: Mutex<Option<Arc<Connected>>>,
}

impl KafkaPublisher {
    /// A publisher that connects on first use.
    ///
    /// # Errors
    /// [`KafkaError::Config`] for an unknown compression or an empty broker list.
    pub fn new(config: KafkaConfig) -> Result<Self, KafkaError> {
        if config.brokers.is_empty() || config.partitions < 1 {
            return Err(KafkaError::Config(
                "brokers must not be empty and partitions must be positive".to_owned(),
            ));
        }
        Ok(Self {
            compression: config.compression_codec()?,
            config,
            connected: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Connects (if not yet), creating the topic when configured; returns the partitions.
    ///
    /// # Errors
    /// [`KafkaError`] when the brokers do not answer in time.
    pub async fn connect(&self) -> Result<usize, KafkaError> {
        Ok(self.connected().await?.partitions.len())
    }

    async fn connected(&self) -> Result<Arc<Connected>, KafkaError> {
        let mut slot = self.connected.lock().await;
        if let Some(connected) = slot.as_ref() {
            return Ok(connected.clone());
        }
        // The creation's own wait is bounded by `topic_ready_timeout_ms` inside `open`.
        let timeout_ms = self
            .config
            .request_timeout_ms
            .saturating_add(self.config.topic_ready_timeout_ms);
        let connected = tokio::time::timeout(Duration::from_millis(timeout_ms), self.open())
            .await
            .map_err(|_| KafkaError::Timeout(timeout_ms))??;
        let connected = Arc::new(connected);
        *slot = Some(connected.clone());
        Ok(connected)
    }

    async fn open(&self) -> Result<Connected, KafkaError> {
        let backoff = rskafka::BackoffConfig {
            deadline: Some(self.config.timeout()),
            max_backoff: Duration::from_secs(1),
            ..rskafka::BackoffConfig::default()
        };
        let client: Client = ClientBuilder::new(self.config.brokers.clone())
            .client_id(self.config.client_id.clone())
            .backoff_config(backoff)
            .build()
            .await?;
        let topic = &self.config.topic;
        let mut partitions = existing_partitions(&client, topic).await?;
        if partitions.is_none() && self.config.create_topic {
            let created = client
                .controller_client()?
                .create_topic(
                    topic.clone(),
                    self.config.partitions,
                    self.config.replication_factor,
                    i32::try_from(self.config.request_timeout_ms).unwrap_or(i32::MAX),
                )
                .await;
            match created {
                Ok(()) => {
                    tracing::info!(topic, partitions = self.config.partitions, "topic created")
                }
                Err(rskafka::client::error::Error::ServerError {
                    protocol_error: rskafka::client::error::ProtocolError::TopicAlreadyExists,
                    ..
                }) => {}
                Err(error) => return Err(error.into()),
            }
            let wait = Duration::from_millis(self.config.topic_ready_timeout_ms);
            partitions =
                Some(wait_until_listed(topic, wait, || existing_partitions(&client, topic)).await?);
        }
        let count = partitions.ok_or_else(|| {
            KafkaError::Config(format!(
                "topic {topic} does not exist and create_topic is off"
            ))
        })?;
        let mut clients = Vec::with_capacity(count);
        for partition in 0..count {
            let partition = i32::try_from(partition).unwrap_or(i32::MAX);
            clients.push(Arc::new(
                client
                    .partition_client(topic.clone(), partition, UnknownTopicHandling::Retry)
                    .await?,
            ));
        }
        Ok(Connected {
            partitions: clients,
        })
    }

    /// Forgets the connection after a failure, so the next call reconnects (brokers may have
    /// moved or restarted).
    async fn forget(&self) {
        *self.connected.lock().await = None;
    }
}

async fn existing_partitions(client: &Client, topic: &str) -> Result<Option<usize>, KafkaError> {
    Ok(client
        .list_topics()
        .await?
        .into_iter()
        .find(|listed| listed.name == topic)
        .map(|listed| listed.partitions.len())
        .filter(|count| *count > 0))
}

/// Reads the topic's metadata until it lists the topic with partitions, for at most `wait`:
/// right after a creation the broker may not list it yet, or list it without partitions.
async fn wait_until_listed<F, Fut>(
    topic: &str,
    wait: Duration,
    mut list: F,
) -> Result<usize, KafkaError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<usize>, KafkaError>>,
{
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let last_seen = match list().await {
            Ok(Some(count)) => return Ok(count),
            Ok(None) => "not listed, or listed without partitions".to_owned(),
            // A broker still settling the new topic may fail the metadata call itself.
            Err(error) => error.to_string(),
        };
        let waited = started.elapsed();
        if waited >= wait {
            return Err(KafkaError::TopicNotReady {
                topic: topic.to_owned(),
                waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                last_seen,
            });
        }
        tokio::time::sleep(pause.min(wait - waited)).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// The partition of a key: FNV-1a (32 bits) modulo the partition count.
pub fn partition_of(key: &[u8], partitions: usize) -> usize {
    let hash = key.iter().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    });
    hash as usize % partitions.max(1)
}

/// The record of an event.
///
/// # Errors
/// [`KafkaError::Encode`] if the event does not serialize.
pub fn record_of(event: &NewMessageEvent) -> Result<Record, KafkaError> {
    let millis = chat_domain::model::millis(event.timestamp);
    let timestamp = rskafka::chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default();
    Ok(Record {
        key: Some(event.recipient_id.to_string().into_bytes()),
        value: Some(serde_json::to_vec(event)?),
        headers: BTreeMap::from([
            (
                "event_type".to_owned(),
                event.event_type.clone().into_bytes(),
            ),
            (
                "event_id".to_owned(),
                event.event_id.to_string().into_bytes(),
            ),
            ("version".to_owned(), event.version.to_string().into_bytes()),
        ]),
        timestamp,
    })
}

#[async_trait]
impl EventPublisher for KafkaPublisher {
    async fn publish(&self, events: &[NewMessageEvent]) -> chat_domain::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let connected = self.connected().await?;
        let mut batches: BTreeMap<usize, Vec<Record>> = BTreeMap::new();
        for event in events {
            let record = record_of(event)?;
            let key = record.key.as_deref().unwrap_or_default();
            let partition = partition_of(key, connected.partitions.len());
            batches.entry(partition).or_default().push(record);
        }
        let timeout_ms = self.config.request_timeout_ms;
        let produces = batches.into_iter().map(|(partition, records)| {
            let client = connected.partitions[partition].clone();
            let compression = self.compression;
            async move { client.produce(records, compression).await }
        });
        let results = tokio::time::timeout(
            self.config.timeout(),
            futures_util::future::join_all(produces),
        )
        .await;
        let outcome = match results {
            Err(_) => Err(KafkaError::Timeout(timeout_ms)),
            Ok(results) => results
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map(|_| ())
                .map_err(KafkaError::from),
        };
        if outcome.is_err() {
            self.forget().await;
        }
        Ok(outcome?)
    }
}

/// One event read back from the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedEvent {
    /// The partition it was on.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// The record key (the recipient's id).
    pub key: String,
    /// The record headers.
    pub headers: BTreeMap<String, Vec<u8>>,
    /// The record timestamp, Unix milliseconds.
    pub timestamp_ms: i64,
    /// The decoded event.
    pub event: NewMessageEvent,
}

/// Reads every record of the configured topic from the start, partition by partition: for
/// tests, tools and replays (notification-service consumes with its own consumer group).
///
/// # Errors
/// [`KafkaError`] when the broker does not answer or a record does not decode.
pub async fn read_all_events(config: &KafkaConfig) -> Result<Vec<ConsumedEvent>, KafkaError> {
    let client = ClientBuilder::new(config.brokers.clone()).build().await?;
    let partitions = existing_partitions(&client, &config.topic)
        .await?
        .unwrap_or(0);
    let mut consumed = Vec::new();
    for partition in 0..partitions {
        let partition = i32::try_from(partition).unwrap_or(i32::MAX);
        let reader = client
            .partition_client(config.topic.clone(), partition, UnknownTopicHandling::Retry)
            .await?;
        let mut offset = 0;
        loop {
            let (records, high_watermark) =
                reader.fetch_records(offset, 1..16_000_000, 500).await?;
            for record in records {
                offset = record.offset + 1;
                let value = record.record.value.unwrap_or_default();
                consumed.push(ConsumedEvent {
                    partition,
                    offset: record.offset,
                    key: String::from_utf8_lossy(&record.record.key.unwrap_or_default())
                        .into_owned(),
                    headers: record.record.headers,
                    timestamp_ms: record.record.timestamp.timestamp_millis(),
                    event: serde_json::from_slice(&value)?,
                });
            }
            if offset >= high_watermark {
                break;
            }
        }
    }
    Ok(consumed)
}

/// Reads the topic (as [`read_all_events`]) until it holds an event for every one of
/// `message_ids`, for at most `patience`; returns everything read then. A read that fails is
/// retried (a broker that is starting refuses for a while), but never taken for an empty topic.
///
/// # Errors
/// [`KafkaError::Timeout`] when `patience` runs out first; the last read's own error, if the
/// last read failed.
pub async fn wait_for_events(
    config: &KafkaConfig,
    message_ids: &[String],
    patience: Duration,
) -> Result<Vec<ConsumedEvent>, KafkaError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let read = read_all_events(config).await;
        if let Ok(events) = &read {
            let relayed: std::collections::HashSet<String> = events
                .iter()
                .map(|consumed| consumed.event.message_id.to_string())
                .collect();
            if message_ids.iter().all(|id| relayed.contains(id)) {
                return read;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            read?;
            return Err(KafkaError::Timeout(
                u64::try_from(patience.as_millis()).unwrap_or(u64::MAX),
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_always_maps_to_one_partition_and_keys_spread() {
        let key = b"5f0c3a1e-0000-4000-8000-000000000001";
        assert_eq!(partition_of(key, 6), partition_of(key, 6));
        let used: std::collections::HashSet<usize> = (0..200)
            .map(|i| partition_of(format!("user-{i}").as_bytes(), 6))
            .collect();
        assert_eq!(used.len(), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_created_topic_is_awaited_until_the_broker_lists_it() {
        let reads = std::sync::atomic::AtomicUsize::new(0);
        let listed = wait_until_listed("t", Duration::from_secs(5), || {
            let read = reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                match read {
                    0 => Ok(None),
                    1 => Err(KafkaError::Timeout(1)),
                    _ => Ok(Some(3)),
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(listed, 3);
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_topic_never_listed_names_the_real_cause_after_the_wait() {
        let error = wait_until_listed("events", Duration::from_secs(2), || async { Ok(None) })
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, KafkaError::TopicNotReady { .. }), "{text}");
        assert!(text.contains("events was created"), "{text}");
        assert!(!text.contains("create_topic is off"), "{text}");
    }

    #[test]
    fn unknown_compression_is_a_config_error() {
        let config = KafkaConfig {
            compression: "zstd".to_owned(),
            ..KafkaConfig::default()
        };
        assert!(KafkaPublisher::new(config).is_err());
    }
}
