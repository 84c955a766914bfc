//! A watcher of the events topic while an end-to-end load runs: one task per partition reads
//! from the offset the partition had when the load began (or from the start of a topic that
//! did not exist yet) and notes, per message id, each distinct `event_id` and when the first
//! record for it was seen. The lag of an event is then that instant minus the ack's.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::time::Duration;

use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use serde::Deserialize;
use tokio::time::Instant;

use crate::error::BenchError;

/// What the topic showed for one message.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When its first record was read.
    pub first: Instant,
    /// Its distinct event ids (one, unless an event was produced anew instead of repeated).
    pub event_ids: BTreeSet<String>,
    /// Records read for it (more than one when the relay published it again).
    pub records: u64,
}

/// The fields of an event the watcher needs (`docs/events.md`).
#[derive(Deserialize)]
struct EventIds {
    event_id: String,
    message_id: String,
}

/// Where each partition of the topic ended when noted (`None`: the topic did not exist yet).
#[derive(Debug, Clone)]
pub struct Offsets(Option<Vec<(i32, i64)>>);

/// The end offset of every partition of `topic`, or `None` when there is no such topic.
async fn end_offsets(client: &Client, topic: &str) -> Result<Option<Vec<(i32, i64)>>, BenchError> {
    let partitions = client
        .list_topics()
        .await?
        .into_iter()
        .find(|candidate| candidate.name == topic)
        .map(|found| found.partitions);
    let Some(partitions) = partitions else {
        return Ok(None);
    };
    let mut offsets = Vec::new();
    for partition in partitions {
        let reader = client
            .partition_client(topic.to_owned(), partition, UnknownTopicHandling::Retry)
            .await?;
        offsets.push((partition, reader.get_offset(OffsetAt::Latest).await?));
    }
    Ok(Some(offsets))
}

/// A running watcher; [`Watcher::stop`] ends it.
pub struct Watcher {
    seen: Rc<RefCell<HashMap<String, Seen>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching `topic` on `brokers` from where each partition ends now.
    ///
    /// # Errors
    /// [`BenchError::Kafka`] when the broker does not answer.
    pub async fn start(brokers: Vec<String>, topic: String) -> Result<Self, BenchError> {
        let client = Rc::new(ClientBuilder::new(brokers).build().await?);
        let from = end_offsets(&client, &topic).await?;
        Self::spawn(client, topic, from).await
    }

    /// Starts watching `topic` from `offsets`, noted earlier. The drain phase needs it: a
    /// client kept across a broker restart backs off for up to minutes before reconnecting,
    /// so the watcher is started on a fresh client once the broker is back, yet still reads
    /// every record published since the offsets were noted.
    ///
    /// # Errors
    /// [`BenchError::Kafka`] when the broker does not answer.
    pub async fn start_from(
        brokers: Vec<String>,
        topic: String,
        offsets: &Offsets,
    ) -> Result<Self, BenchError> {
        let client = Rc::new(ClientBuilder::new(brokers).build().await?);
        Self::spawn(client, topic, offsets.0.clone()).await
    }

    /// Where each partition of `topic` ends now, for a later [`Watcher::start_from`].
    ///
    /// # Errors
    /// [`BenchError::Kafka`] when the broker does not answer.
    pub async fn offsets(brokers: Vec<String>, topic: &str) -> Result<Offsets, BenchError> {
        let client = ClientBuilder::new(brokers).build().await?;
        Ok(Offsets(end_offsets(&client, topic).await?))
    }

    /// One reader per partition from `from`; with no offsets (no topic yet), a task that waits
    /// for the topic and reads every partition from the start.
    async fn spawn(
        client: Rc<Client>,
        topic: String,
        from: Option<Vec<(i32, i64)>>,
    ) -> Result<Self, BenchError> {
        let seen: Rc<RefCell<HashMap<String, Seen>>> = Rc::default();
        let mut tasks = Vec::new();
        match from {
            Some(offsets) => {
                for (partition, offset) in offsets {
                    let reader = client
                        .partition_client(topic.clone(), partition, UnknownTopicHandling::Retry)
                        .await?;
                    tasks.push(actix_web::rt::spawn(read(reader, offset, seen.clone())));
                }
            }
            None => {
                // The service creates the topic on its first publish: wait for it, then read
                // every partition from the start.
                let seen = seen.clone();
                tasks.push(actix_web::rt::spawn(async move {
                    let partitions = loop {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        let Ok(topics) = client.list_topics().await else {
                            continue;
                        };
                        if let Some(found) = topics.into_iter().find(|t| t.name == topic) {
                            break found.partitions;
                        }
                    };
                    let mut readers = Vec::new();
                    for partition in partitions {
                        if let Ok(reader) = client
                            .partition_client(topic.clone(), partition, UnknownTopicHandling::Retry)
                            .await
                        {
                            readers.push(actix_web::rt::spawn(read(reader, 0, seen.clone())));
                        }
                    }
                    for reader in readers {
                        let _ = reader.await;
                    }
                }));
            }
        }
        Ok(Self { seen, tasks })
    }

    /// What was seen for `message_id` so far.
    pub fn seen(&self, message_id: &str) -> Option<Seen> {
        self.seen.borrow().get(message_id).cloned()
    }

    /// How many of `message_ids` have been seen.
    pub fn count_seen<'a>(&self, message_ids: impl Iterator<Item = &'a String>) -> usize {
        let seen = self.seen.borrow();
        message_ids.filter(|id| seen.contains_key(*id)).count()
    }

    /// Stops reading.
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Reads one partition from `offset` on, forever (the watcher aborts it).
async fn read(
    reader: rskafka::client::partition::PartitionClient,
    mut offset: i64,
    seen: Rc<RefCell<HashMap<String, Seen>>>,
) {
    loop {
        // A long poll: the broker answers as soon as a record arrives, or after 100 ms.
        let Ok((records, _)) = reader.fetch_records(offset, 1..8_000_000, 100).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let now = Instant::now();
        for record in records {
            offset = record.offset + 1;
            let Some(value) = record.record.value else {
                continue;
            };
            let Ok(ids) = serde_json::from_slice::<EventIds>(&value) else {
                continue;
            };
            let mut seen = seen.borrow_mut();
            let entry = seen.entry(ids.message_id).or_insert_with(|| Seen {
                first: now,
                event_ids: BTreeSet::new(),
                records: 0,
            });
            entry.event_ids.insert(ids.event_id);
            entry.records += 1;
        }
    }
}
