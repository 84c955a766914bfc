//! [`MessageStore`] and [`Outbox`] over Cassandra.
//!
//! - `append`: a lightweight transaction claims `(chat, sender, client_msg_id)` in
//!   `message_dedup` (with a copy of the message and its event), then the message row and its
//!   outbox row are written in parallel, as plain single-partition inserts (no logged batch:
//!   the claim is already the durable record of the whole write). Concurrent resends on any
//!   instance agree through the transaction on one message; a resend that finds the claim
//!   rewrites both rows from the claim's copy (idempotent upserts), so a write cut short by a
//!   crash or an error is finished by the sender's resend. A resend may therefore publish the
//!   event again, always with its original `event_id`.
//! - The outbox index row `(shard, bucket)` is written once per bucket by each store, not once
//!   per message; relayed events are deleted with one single-partition batch per outbox
//!   partition.
//! - History pages use Cassandra's own paging: page size = the requested limit, and the
//!   driver's paging state (prefixed with a version, the chat and the query it belongs to) is
//!   the [`PageStart::Resume`] continuation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cdrs_tokio::query::{PreparedQuery, QueryValues};
use cdrs_tokio::query_values;
use cdrs_tokio::types::blob::Blob;
use cdrs_tokio::types::rows::Row;
use chat_domain::{
    Appended, ChatId, ClientMessageId, EventId, MessageId, MessageKind, MessageStore,
    NewMessageEvent, Outbox, PageStart, Sealed, StoredMessage, StoredPage, UserId,
};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};
use uuid::Uuid;

use crate::config::CassandraConfig;
use crate::error::CassandraError;
use crate::rows::{get, get_opt};
use crate::session::Db;

const MESSAGE_COLUMNS: &str = "chat_id, timestamp, message_id, sender_id, recipient_id, kind, \
                               content, digest, client_msg_id, seen_at";

/// Outbox buckets are one minute wide.
const BUCKET_MILLIS: i64 = 60_000;

/// An outbox bucket this much older than now gets no more writes (it is dropped from the index
/// once empty). Instances' clocks must agree to better than this.
const BUCKET_SETTLE_MILLIS: i64 = 10 * 60_000;

/// Relayed events deleted per single-partition batch (one delete is ~50 bytes).
const DELETES_PER_BATCH: usize = 64;

/// The format of this adapter's [`PageStart::Resume`] state.
const RESUME_VERSION: u8 = 1;

/// The claim of a send (a lightweight transaction), as `append` runs it: public so that
/// benchmarks measure exactly this statement (`chat-bench`'s `claim` phase).
pub const CLAIM_CQL: &str = "INSERT INTO message_dedup \
                             (chat_id, sender_id, client_msg_id, message_id, message, event) \
                             VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS USING TTL ?";

/// The message row, as `append` writes it: public so that benchmarks measure exactly this
/// statement (`chat-bench`'s `raw` phase, the ceiling the send path is compared with).
pub const INSERT_MESSAGE_CQL: &str = "INSERT INTO messages (chat_id, timestamp, message_id, \
                                      sender_id, recipient_id, kind, content, digest, \
                                      client_msg_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// The outbox event row, as `append` writes it (public for `chat-bench`, like the two above).
pub const INSERT_OUTBOX_CQL: &str =
    "INSERT INTO outbox (bucket, shard, event_id, event) VALUES (?, ?, ?, ?)";

/// The outbox index row, as `append` writes it once per bucket (public for `chat-bench`).
pub const INSERT_OUTBOX_BUCKET_CQL: &str =
    "INSERT INTO outbox_buckets (shard, bucket) VALUES (?, ?)";

struct Statements {
    claim: PreparedQuery,
    insert_message: PreparedQuery,
    insert_outbox: PreparedQuery,
    insert_outbox_bucket: PreparedQuery,
    newest: PreparedQuery,
    before: PreparedQuery,
    after: PreparedQuery,
    oldest: PreparedQuery,
    one: PreparedQuery,
    mark_seen: PreparedQuery,
    outbox_buckets: PreparedQuery,
    outbox_events: PreparedQuery,
    outbox_count: PreparedQuery,
    delete_event: PreparedQuery,
    delete_bucket: PreparedQuery,
    take_lease: PreparedQuery,
    renew_lease: PreparedQuery,
    release_lease: PreparedQuery,
}

/// This instance's view of an outbox shard's lease.
#[derive(Debug, Clone, Copy)]
enum Lease {
    /// Ours until then (measured from before the request, so never later than the server's).
    Held(Instant),
    /// Another instance's: try again then.
    Foreign(Instant),
}

/// Messages and their outbox in Cassandra.
pub struct CassandraStore {
    db: Db,
    statements: Arc<Statements>,
    dedup_ttl_secs: i32,
    outbox_shards: i32,
    /// Where each event handed out by `pending` lives, so `remove` can delete it.
    outbox_locations: Mutex<HashMap<EventId, (i64, i32)>>,
    /// This store's identity as an outbox lease owner.
    relay_id: Uuid,
    lease_time: Duration,
    leases: Mutex<HashMap<i32, Lease>>,
    /// The outbox index rows `(shard, bucket)` this store has written: each is written once,
    /// not with every message (the relay drops an index row only once its bucket has settled,
    /// long after any write to it). Pruned to the recent buckets.
    indexed_buckets: Mutex<HashSet<(i32, i64)>>,
}

impl CassandraStore {
    /// Prepares every statement on `db` (whose session uses the service's keyspace).
    ///
    /// # Errors
    /// [`CassandraError`] when a statement does not prepare (e.g. migrations not applied).
    pub async fn new(db: Db, config: &CassandraConfig) -> Result<Self, CassandraError> {
        let statements = Statements {
            claim: db.prepare(CLAIM_CQL).await?,
            insert_message: db.prepare(INSERT_MESSAGE_CQL).await?,
            insert_outbox: db.prepare(INSERT_OUTBOX_CQL).await?,
            insert_outbox_bucket: db.prepare(INSERT_OUTBOX_BUCKET_CQL).await?,
            newest: db
                .prepare(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = ?"
                ))
                .await?,
            before: db
                .prepare(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages \
                     WHERE chat_id = ? AND (timestamp, message_id) < (?, ?)"
                ))
                .await?,
            after: db
                .prepare(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages \
                     WHERE chat_id = ? AND (timestamp, message_id) > (?, ?) \
                     ORDER BY timestamp ASC, message_id ASC LIMIT ?"
                ))
                .await?,
            oldest: db
                .prepare(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = ? \
                     ORDER BY timestamp ASC, message_id ASC LIMIT ?"
                ))
                .await?,
            one: db
                .prepare(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages \
                     WHERE chat_id = ? AND timestamp = ? AND message_id = ?"
                ))
                .await?,
            mark_seen: db
                .prepare(
                    "UPDATE messages SET seen_at = ? \
                     WHERE chat_id = ? AND timestamp = ? AND message_id = ? IF seen_at = null",
                )
                .await?,
            outbox_buckets: db
                .prepare("SELECT bucket FROM outbox_buckets WHERE shard = ?")
                .await?,
            outbox_events: db
                .prepare(
                    "SELECT event_id, event FROM outbox WHERE bucket = ? AND shard = ? LIMIT ?",
                )
                .await?,
            outbox_count: db
                .prepare("SELECT COUNT(*) AS backlog FROM outbox WHERE bucket = ? AND shard = ?")
                .await?,
            delete_event: db
                .prepare("DELETE FROM outbox WHERE bucket = ? AND shard = ? AND event_id = ?")
                .await?,
            take_lease: db
                .prepare(
                    "INSERT INTO outbox_leases (shard, owner) VALUES (?, ?) \
                     IF NOT EXISTS USING TTL ?",
                )
                .await?,
            renew_lease: db
                .prepare(
                    "UPDATE outbox_leases USING TTL ? SET owner = ? WHERE shard = ? IF owner = ?",
                )
                .await?,
            release_lease: db
                .prepare("DELETE FROM outbox_leases WHERE shard = ? IF owner = ?")
                .await?,
            delete_bucket: db
                .prepare("DELETE FROM outbox_buckets WHERE shard = ? AND bucket = ?")
                .await?,
        };
        Ok(Self {
            db,
            statements: Arc::new(statements),
            dedup_ttl_secs: i32::try_from(config.dedup_ttl_secs).unwrap_or(i32::MAX),
            outbox_shards: i32::from(config.outbox_shards.max(1)),
            outbox_locations: Mutex::new(HashMap::new()),
            relay_id: Uuid::new_v4(),
            lease_time: Duration::from_secs(u64::from(config.outbox_lease_secs.max(2))),
            leases: Mutex::new(HashMap::new()),
            indexed_buckets: Mutex::new(HashSet::new()),
        })
    }

    /// Writes the message row and its outbox row (and the outbox index row, once per bucket)
    /// in parallel, as plain inserts. Idempotent: `seen_at` is not among the columns written, so
    /// a rewrite never clears it, and a rewritten outbox row carries the same `event_id`.
    ///
    /// Not atomic across the rows: when this fails half-way the caller gets the error (no ack),
    /// and the claim in `message_dedup` holds a copy of both rows for the resend to rewrite.
    /// A logged batch would make the pair atomic at the price of a batchlog write and delete
    /// per message (and stalled for ~20 s on a ring whenever a node died): docs/decisions.md.
    ///
    /// `event_json` is the event as the claim stored it: encoded once per send.
    async fn write(
        &self,
        message: &StoredMessage,
        event_id: EventId,
        event_json: Vec<u8>,
    ) -> Result<(), CassandraError> {
        let s = &self.statements;
        let bucket = millis(OffsetDateTime::now_utc()).div_euclid(BUCKET_MILLIS);
        let shard = self.shard_of(event_id);
        let outbox = query_values!(bucket, shard, *event_id.as_uuid(), Blob::from(event_json));
        let (message_written, outbox_written, indexed) = tokio::join!(
            self.db
                .run(&s.insert_message, message_values(message), true),
            self.db.run(&s.insert_outbox, outbox, true),
            self.index_bucket(shard, bucket),
        );
        message_written?;
        outbox_written?;
        indexed
    }

    /// Writes the outbox index row `(shard, bucket)` unless this store already did.
    async fn index_bucket(&self, shard: i32, bucket: i64) -> Result<(), CassandraError> {
        if self.indexed().contains(&(shard, bucket)) {
            return Ok(());
        }
        self.db
            .run(
                &self.statements.insert_outbox_bucket,
                query_values!(shard, bucket),
                true,
            )
            .await?;
        let mut indexed = self.indexed();
        // Only the current minute and its neighbours are ever written to.
        indexed.retain(|(_, written)| (bucket - 2..=bucket + 2).contains(written));
        indexed.insert((shard, bucket));
        Ok(())
    }

    fn indexed(&self) -> std::sync::MutexGuard<'_, HashSet<(i32, i64)>> {
        // Single inserts and retains: a poisoned set is still consistent.
        self.indexed_buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn shard_of(&self, event: EventId) -> i32 {
        let bytes = event.as_bytes();
        let low = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        i32::try_from(low % u32::try_from(self.outbox_shards).unwrap_or(1)).unwrap_or(0)
    }

    async fn read_one(
        &self,
        chat: ChatId,
        id: MessageId,
    ) -> Result<Option<StoredMessage>, CassandraError> {
        let rows = self
            .db
            .run(
                &self.statements.one,
                query_values!(*chat.as_uuid(), cql_time(id.timestamp()), *id.as_uuid()),
                true,
            )
            .await?;
        rows.first().map(message_of_row).transpose()
    }

    fn locations(&self) -> std::sync::MutexGuard<'_, HashMap<EventId, (i64, i32)>> {
        self.outbox_locations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lease_book(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Lease>> {
        // Single inserts and removes: a poisoned map is still consistent.
        self.leases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The outbox shards this store may relay now: those whose lease it holds, taking or
    /// renewing leases as they come due (at half-time; another instance's lease is tried again
    /// every half lease time, so idle relays cost a few lightweight transactions per lease).
    async fn leased_shards(&self) -> Result<Vec<i32>, CassandraError> {
        let s = &self.statements;
        let ttl = i32::try_from(self.lease_time.as_secs()).unwrap_or(i32::MAX);
        let owner = self.relay_id;
        let mut held = Vec::new();
        for shard in 0..self.outbox_shards {
            let asked = Instant::now();
            let lease = self.lease_book().get(&shard).copied();
            let renew = match lease {
                Some(Lease::Held(until)) if until > asked + self.lease_time / 2 => {
                    held.push(shard);
                    continue;
                }
                Some(Lease::Foreign(retry)) if retry > asked => continue,
                Some(Lease::Held(_)) => true,
                Some(Lease::Foreign(_)) | None => false,
            };
            let mut ours = false;
            if renew {
                (ours, _) = self
                    .db
                    .run_conditional(&s.renew_lease, query_values!(ttl, owner, shard, owner))
                    .await?;
            }
            if !ours {
                (ours, _) = self
                    .db
                    .run_conditional(&s.take_lease, query_values!(shard, owner, ttl))
                    .await?;
            }
            let now = if ours {
                held.push(shard);
                Lease::Held(asked + self.lease_time)
            } else {
                Lease::Foreign(asked + self.lease_time / 2)
            };
            if ours != matches!(lease, Some(Lease::Held(_))) {
                tracing::info!(shard, relay = %owner, held = ours, "outbox shard lease changed hands");
            }
            self.lease_book().insert(shard, now);
        }
        Ok(held)
    }
}

#[async_trait]
impl MessageStore for CassandraStore {
    async fn append(
        &self,
        message: &StoredMessage,
        event: &NewMessageEvent,
    ) -> chat_domain::Result<Appended> {
        let event_json = encode(event, DEDUP)?;
        let claim = query_values!(
            *message.chat_id.as_uuid(),
            *message.sender_id.as_uuid(),
            message.client_msg_id.as_str().to_owned(),
            *message.id.as_uuid(),
            Blob::from(encode(message, DEDUP)?),
            Blob::from(event_json.clone()),
            self.dedup_ttl_secs
        );
        let (claimed, existing) = self
            .db
            .run_conditional(&self.statements.claim, claim)
            .await?;
        if claimed {
            self.write(message, event.event_id, event_json).await?;
            return Ok(Appended::Stored);
        }
        let existing = existing.ok_or_else(|| CassandraError::BadRow {
            table: DEDUP,
            reason: "no existing row".to_owned(),
        })?;
        let original: StoredMessage =
            decode(&get::<Blob>(&existing, "message", DEDUP)?.into_vec(), DEDUP)?;
        let original_event = get::<Blob>(&existing, "event", DEDUP)?.into_vec();
        let original_event_id = decode::<NewMessageEvent>(&original_event, DEDUP)?.event_id;
        // The first attempt may have died between its claim and its rows (it was then never
        // acknowledged): rewrite both as they were. Plain upserts; the event keeps its id.
        self.write(&original, original_event_id, original_event)
            .await?;
        // The stored row may have been seen since; return it as it is now.
        let current = self.read_one(original.chat_id, original.id).await?;
        Ok(Appended::Duplicate(current.unwrap_or(original)))
    }

    async fn page(
        &self,
        chat: ChatId,
        start: &PageStart,
        limit: u32,
    ) -> chat_domain::Result<StoredPage> {
        let page_size = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
        let (query, paging_state) = match start {
            PageStart::Newest => (Query::Newest, None),
            PageStart::Before { message_id } => (Query::Before(*message_id), None),
            PageStart::Resume { state } => {
                let (query, paging_state) = decode_resume(chat, state)?;
                (query, Some(paging_state))
            }
        };
        let (statement, values) = match query {
            Query::Newest => (&self.statements.newest, query_values!(*chat.as_uuid())),
            Query::Before(id) => (
                &self.statements.before,
                query_values!(*chat.as_uuid(), cql_time(id.timestamp()), *id.as_uuid()),
            ),
        };
        let page = self
            .db
            .page(statement, values, page_size, paging_state)
            .await
            .map_err(|error| {
                if error.is_bad_paging_state() {
                    chat_domain::Error::InvalidCursor
                } else {
                    error.into()
                }
            })?;
        let messages = page
            .rows
            .iter()
            .map(message_of_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Cassandra may say "more pages" when the next page turns out empty; a client then
        // gets one empty last page, which is harmless.
        let next = match page.paging_state {
            Some(state) if !messages.is_empty() => Some(PageStart::Resume {
                state: encode_resume(chat, query, &state),
            }),
            _ => None,
        };
        Ok(StoredPage { messages, next })
    }

    async fn since(
        &self,
        chat: ChatId,
        after: Option<MessageId>,
        limit: u32,
    ) -> chat_domain::Result<Vec<StoredMessage>> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let rows = match after {
            Some(id) => {
                self.db
                    .run(
                        &self.statements.after,
                        query_values!(
                            *chat.as_uuid(),
                            cql_time(id.timestamp()),
                            *id.as_uuid(),
                            limit
                        ),
                        true,
                    )
                    .await?
            }
            None => {
                self.db
                    .run(
                        &self.statements.oldest,
                        query_values!(*chat.as_uuid(), limit),
                        true,
                    )
                    .await?
            }
        };
        Ok(rows
            .iter()
            .map(message_of_row)
            .collect::<Result<Vec<_>, _>>()?)
    }

    async fn get(&self, chat: ChatId, id: MessageId) -> chat_domain::Result<Option<StoredMessage>> {
        Ok(self.read_one(chat, id).await?)
    }

    async fn mark_seen(
        &self,
        chat: ChatId,
        id: MessageId,
        at: OffsetDateTime,
    ) -> chat_domain::Result<Option<StoredMessage>> {
        // Only an existing row is updated: a conditional update of a missing row would create it.
        if self.read_one(chat, id).await?.is_none() {
            return Ok(None);
        }
        self.db
            .run_conditional(
                &self.statements.mark_seen,
                query_values!(
                    cql_time(at),
                    *chat.as_uuid(),
                    cql_time(id.timestamp()),
                    *id.as_uuid()
                ),
            )
            .await?;
        Ok(self.read_one(chat, id).await?)
    }
}

#[async_trait]
impl Outbox for CassandraStore {
    async fn pending(&self, limit: u32) -> chat_domain::Result<Vec<NewMessageEvent>> {
        let s = &self.statements;
        let settled = millis(OffsetDateTime::now_utc()).div_euclid(BUCKET_MILLIS)
            - BUCKET_SETTLE_MILLIS / BUCKET_MILLIS;
        let mut events = Vec::new();
        for shard in self.leased_shards().await? {
            let buckets = self
                .db
                .run(&s.outbox_buckets, query_values!(shard), true)
                .await?;
            for row in &buckets {
                let bucket = get::<i64>(row, "bucket", "outbox_buckets")?;
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
                    let event: NewMessageEvent =
                        decode(&get::<Blob>(row, "event", "outbox")?.into_vec(), "outbox")?;
                    self.locations().insert(event.event_id, (bucket, shard));
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
            let locations = self.locations();
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
        let mut locations = self.locations();
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
        let held: Vec<i32> = self
            .lease_book()
            .drain()
            .filter_map(|(shard, lease)| matches!(lease, Lease::Held(_)).then_some(shard))
            .collect();
        for shard in held {
            self.db
                .run_conditional(
                    &self.statements.release_lease,
                    query_values!(shard, self.relay_id),
                )
                .await?;
        }
        Ok(())
    }

    async fn backlog(&self) -> chat_domain::Result<u64> {
        let s = &self.statements;
        let mut total = 0u64;
        for shard in 0..self.outbox_shards {
            for row in &self
                .db
                .run(&s.outbox_buckets, query_values!(shard), true)
                .await?
            {
                let bucket = get::<i64>(row, "bucket", "outbox_buckets")?;
                let counted = self
                    .db
                    .run(&s.outbox_count, query_values!(bucket, shard), true)
                    .await?;
                if let Some(row) = counted.first() {
                    total += u64::try_from(get::<i64>(row, "backlog", "outbox")?).unwrap_or(0);
                }
            }
        }
        Ok(total)
    }
}

/// Which query a paging state belongs to: Cassandra only accepts a state with the query and
/// values that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Query {
    Newest,
    Before(MessageId),
}

fn encode_resume(chat: ChatId, query: Query, paging_state: &[u8]) -> Vec<u8> {
    let mut state = Vec::with_capacity(34 + paging_state.len());
    state.push(RESUME_VERSION);
    state.extend_from_slice(chat.as_bytes());
    match query {
        Query::Newest => state.push(0),
        Query::Before(id) => {
            state.push(1);
            state.extend_from_slice(id.as_bytes());
        }
    }
    state.extend_from_slice(paging_state);
    state
}

fn decode_resume(chat: ChatId, state: &[u8]) -> chat_domain::Result<(Query, Vec<u8>)> {
    let invalid = || chat_domain::Error::InvalidCursor;
    let (&version, rest) = state.split_first().ok_or_else(invalid)?;
    let (state_chat, rest) = rest.split_first_chunk::<16>().ok_or_else(invalid)?;
    if version != RESUME_VERSION || state_chat != chat.as_bytes() {
        return Err(invalid());
    }
    let (&kind, rest) = rest.split_first().ok_or_else(invalid)?;
    let (query, paging_state) = match kind {
        0 => (Query::Newest, rest),
        1 => {
            let (id, rest) = rest.split_first_chunk::<16>().ok_or_else(invalid)?;
            (
                Query::Before(MessageId::from_uuid(Uuid::from_bytes(*id))),
                rest,
            )
        }
        _ => return Err(invalid()),
    };
    if paging_state.is_empty() {
        return Err(invalid());
    }
    Ok((query, paging_state.to_vec()))
}

/// The values of [`INSERT_MESSAGE_CQL`] for `message`: public so that benchmarks bind exactly
/// what the store binds.
pub fn message_values(message: &StoredMessage) -> QueryValues {
    query_values!(
        *message.chat_id.as_uuid(),
        cql_time(message.timestamp),
        *message.id.as_uuid(),
        *message.sender_id.as_uuid(),
        *message.recipient_id.as_uuid(),
        message.kind.as_str().to_owned(),
        Blob::from(message.content.0.clone()),
        Blob::from(message.digest.0.clone()),
        message.client_msg_id.as_str().to_owned()
    )
}

fn message_of_row(row: &Row) -> Result<StoredMessage, CassandraError> {
    const TABLE: &str = "messages";
    let bad = |reason: String| CassandraError::BadRow {
        table: TABLE,
        reason,
    };
    let kind: String = get(row, "kind", TABLE)?;
    let client_msg_id: String = get(row, "client_msg_id", TABLE)?;
    Ok(StoredMessage {
        id: MessageId::from_uuid(get::<Uuid>(row, "message_id", TABLE)?),
        chat_id: ChatId::from_uuid(get::<Uuid>(row, "chat_id", TABLE)?),
        sender_id: UserId::from_uuid(get::<Uuid>(row, "sender_id", TABLE)?),
        recipient_id: UserId::from_uuid(get::<Uuid>(row, "recipient_id", TABLE)?),
        kind: kind
            .parse::<MessageKind>()
            .map_err(|_| bad(format!("kind {kind:?}")))?,
        content: Sealed(get::<Blob>(row, "content", TABLE)?.into_vec()),
        digest: Sealed(get::<Blob>(row, "digest", TABLE)?.into_vec()),
        timestamp: get::<PrimitiveDateTime>(row, "timestamp", TABLE)?.assume_utc(),
        seen_at: get_opt::<PrimitiveDateTime>(row, "seen_at", TABLE)?
            .map(PrimitiveDateTime::assume_utc),
        client_msg_id: ClientMessageId::parse(&client_msg_id)
            .map_err(|_| bad("client_msg_id".to_owned()))?,
    })
}

/// A timestamp as the driver binds it (UTC, no offset).
pub(crate) fn cql_time(at: OffsetDateTime) -> PrimitiveDateTime {
    let utc = at.to_offset(UtcOffset::UTC);
    PrimitiveDateTime::new(utc.date(), utc.time())
}

fn millis(at: OffsetDateTime) -> i64 {
    chat_domain::model::millis(at)
}

/// The table of claims.
const DEDUP: &str = "message_dedup";

/// A value as the JSON blob stored in `table`.
fn encode<T: serde::Serialize>(value: &T, table: &'static str) -> Result<Vec<u8>, CassandraError> {
    serde_json::to_vec(value).map_err(|error| CassandraError::BadRow {
        table,
        reason: format!("encoding: {error}"),
    })
}

/// A JSON blob read from `table`.
fn decode<T: serde::de::DeserializeOwned>(
    json: &[u8],
    table: &'static str,
) -> Result<T, CassandraError> {
    serde_json::from_slice(json).map_err(|error| CassandraError::BadRow {
        table,
        reason: format!("decoding: {error}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_domain::MessagePosition;

    #[test]
    fn resume_state_round_trips_and_is_bound_to_its_chat_and_query() {
        let chat = ChatId::from_uuid(Uuid::new_v4());
        let id = MessageId::generate(OffsetDateTime::now_utc());
        for query in [Query::Newest, Query::Before(id)] {
            let state = encode_resume(chat, query, b"driver-state");
            assert_eq!(
                decode_resume(chat, &state).unwrap(),
                (query, b"driver-state".to_vec())
            );
            let other = ChatId::from_uuid(Uuid::new_v4());
            assert!(decode_resume(other, &state).is_err());
        }
        assert!(decode_resume(chat, &[]).is_err());
        assert!(decode_resume(chat, &[9; 40]).is_err());
        assert!(decode_resume(chat, &encode_resume(chat, Query::Newest, b"")).is_err());
    }

    #[test]
    fn positions_and_cql_times_agree() {
        let at = time::macros::datetime!(2026-11-25 10:00:00.123 UTC);
        let id = MessageId::generate(at);
        assert_eq!(MessagePosition::of_id(id).timestamp_ms, millis(at));
        assert_eq!(cql_time(at).assume_utc(), at);
    }
}
