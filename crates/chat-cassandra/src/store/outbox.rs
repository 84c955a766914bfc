//! The [`Outbox`] port on the `outbox` table and its index `outbox_buckets`: enqueueing a
//! send's event, the relay's reads and deletes, and the backlog. Events are partitioned by
//! `(bucket, shard)`: a minute of time and a slice of event ids, so a relay reads few, bounded
//! partitions and each shard has one relay ([`super::leases`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use cdrs_tokio::query_values;
use cdrs_tokio::types::blob::Blob;
use cdrs_tokio::types::rows::Row;
use chat_domain::{EventId, NewMessageEvent, Outbox};
use time::OffsetDateTime;

use super::{CassandraStore, decode, lock};
use crate::error::CassandraError;
use crate::rows::get;

/// The table of events waiting for the relay.
const OUTBOX: &str = "outbox";

/// The index of the outbox partitions `(shard, bucket)` that may hold events.
const OUTBOX_BUCKETS: &str = "outbox_buckets";

/// Outbox buckets are one minute wide.
const BUCKET_MILLIS: i64 = 60_000;

/// An outbox bucket this much older than now gets no more writes (it is dropped from the index
/// once empty). Instances' clocks must agree to better than this.
const BUCKET_SETTLE_MILLIS: i64 = 10 * 60_000;

/// Relayed events deleted per single-partition batch (one delete is ~50 bytes).
const DELETES_PER_BATCH: usize = 64;

impl CassandraStore {
    /// Writes the outbox row of `event_id` (`event_json`, the claim's bytes) and, once per
    /// bucket, the index row, in parallel.
    pub(super) async fn enqueue(
        &self,
        event_id: EventId,
        event_json: Vec<u8>,
    ) -> Result<(), CassandraError> {
        let bucket = current_bucket();
        let shard = self.shard_of(event_id);
        let outbox = query_values!(bucket, shard, *event_id.as_uuid(), Blob::from(event_json));
        let (outbox_written, indexed) = tokio::join!(
            self.db.run(&self.statements.insert_outbox, outbox, true),
            self.index_bucket(shard, bucket),
        );
        outbox_written?;
        indexed
    }

    /// Writes the outbox index row `(shard, bucket)` unless this store already did.
    async fn index_bucket(&self, shard: i32, bucket: i64) -> Result<(), CassandraError> {
        if lock(&self.indexed_buckets).contains(&(shard, bucket)) {
            return Ok(());
        }
        self.db
            .run(
                &self.statements.insert_outbox_bucket,
                query_values!(shard, bucket),
                true,
            )
            .await?;
        let mut indexed = lock(&self.indexed_buckets);
        // Only the current minute and its neighbours are ever written to.
        indexed.retain(|(_, written)| (bucket - 2..=bucket + 2).contains(written));
        indexed.insert((shard, bucket));
        Ok(())
    }

    fn shard_of(&self, event: EventId) -> i32 {
        let bytes = event.as_bytes();
        let low = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        i32::try_from(low % u32::try_from(self.outbox_shards).unwrap_or(1)).unwrap_or(0)
    }

    /// The index rows of `shard`, one per bucket that may hold events (read with
    /// [`bucket_of_row`] one at a time, so a bad row stops the reader where it is).
    async fn bucket_index_rows(&self, shard: i32) -> Result<Vec<Row>, CassandraError> {
        self.db
            .run(&self.statements.outbox_buckets, query_values!(shard), true)
            .await
    }
}

#[async_trait]
impl Outbox for CassandraStore {
    async fn pending(&self, limit: u32) -> chat_domain::Result<Vec<NewMessageEvent>> {
        let s = &self.statements;
        let settled = current_bucket() - BUCKET_SETTLE_MILLIS / BUCKET_MILLIS;
        let mut events = Vec::new();
        for shard in self.leased_shards().await? {
            for row in &self.bucket_index_rows(shard).await? {
                let bucket = bucket_of_row(row)?;
                let want = i32::try_from(limit as usize - events.len()).unwrap_or(i32::MAX);
                if want == 0 {
                    return Ok(events);
                }
                let rows = self
                    .db
                    .run(&s.outbox_events, query_values!(bucket, shard, want), true)
                    .await?;
                if rows.is_empty() && bucket < settled {
                    self.db
                        .run(&s.delete_bucket, query_values!(shard, bucket), true)
                        .await?;
                    continue;
                }
                for row in &rows {
                    let event = event_of_row(row)?;
                    lock(&self.outbox_locations).insert(event.event_id, (bucket, shard));
                    events.push(event);
                }
            }
        }
        Ok(events)
    }

    async fn remove(&self, ids: &[EventId]) -> chat_domain::Result<()> {
        // One single-partition batch of deletes per outbox partition, the partitions in
        // parallel: a round of `relay.batch` events costs a few requests, not one per event.
        let mut by_partition: BTreeMap<(i64, i32), Vec<EventId>> = BTreeMap::new();
        {
            let locations = lock(&self.outbox_locations);
            for id in ids {
                if let Some(partition) = locations.get(id) {
                    by_partition.entry(*partition).or_default().push(*id);
                }
            }
        }
        // Batches stay far below Cassandra's batch size warning (5 KiB).
        let chunks: Vec<((i64, i32), &[EventId])> = by_partition
            .iter()
            .flat_map(|(partition, events)| {
                events
                    .chunks(DELETES_PER_BATCH)
                    .map(move |chunk| (*partition, chunk))
            })
            .collect();
        let deletes = chunks.iter().map(|((bucket, shard), events)| {
            let statements = events
                .iter()
                .map(|id| {
                    (
                        &self.statements.delete_event,
                        query_values!(*bucket, *shard, *id.as_uuid()),
                    )
                })
                .collect();
            self.db.partition_batch(statements)
        });
        let results = futures_util::future::join_all(deletes).await;
        let mut locations = lock(&self.outbox_locations);
        let mut first_error = None;
        for (result, (_, events)) in results.into_iter().zip(&chunks) {
            match result {
                Ok(()) => events.iter().for_each(|id| {
                    locations.remove(id);
                }),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }

    async fn release(&self) -> chat_domain::Result<()> {
        Ok(self.release_leases().await?)
    }

    async fn backlog(&self) -> chat_domain::Result<u64> {
        let mut total = 0u64;
        for shard in 0..self.outbox_shards {
            for row in &self.bucket_index_rows(shard).await? {
                let bucket = bucket_of_row(row)?;
                let counted = self
                    .db
                    .run(
                        &self.statements.outbox_count,
                        query_values!(bucket, shard),
                        true,
                    )
                    .await?;
                if let Some(row) = counted.first() {
                    total += u64::try_from(get::<i64>(row, "backlog", OUTBOX)?).unwrap_or(0);
                }
            }
        }
        Ok(total)
    }
}

/// The bucket an event written now goes to.
fn current_bucket() -> i64 {
    chat_domain::model::millis(OffsetDateTime::now_utc()).div_euclid(BUCKET_MILLIS)
}

/// The bucket an `outbox_buckets` row names.
fn bucket_of_row(row: &Row) -> Result<i64, CassandraError> {
    get::<i64>(row, "bucket", OUTBOX_BUCKETS)
}

/// The event an `outbox` row holds; a bad one is reported as a bad `outbox` row.
fn event_of_row(row: &Row) -> Result<NewMessageEvent, CassandraError> {
    decode(&get::<Blob>(row, "event", OUTBOX)?.into_vec(), OUTBOX)
}
