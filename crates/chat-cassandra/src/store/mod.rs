//! [`MessageStore`](chat_domain::MessageStore) and [`Outbox`](chat_domain::Outbox) over
//! Cassandra: [`CassandraStore`], the state its parts share, and the helpers more than one part
//! uses.
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
//!   the [`PageStart::Resume`](chat_domain::PageStart::Resume) continuation.
//!
//! ## Layout
//! - `statements`: every statement's CQL, prepared once by `Statements::prepare`.
//! - `messages`: the `MessageStore` port on the `messages` table (send, history, seen).
//! - `claims`: the claim of a send in `message_dedup`, and the first attempt read back from it.
//! - `continuation`: the `PageStart::Resume` state a history page hands the client.
//! - `outbox`: the `Outbox` port on the `outbox` and `outbox_buckets` tables (enqueue, relay
//!   reads and deletes, backlog).
//! - `leases`: which outbox shards this instance relays (`outbox_leases`).

mod claims;
mod continuation;
mod leases;
mod messages;
mod outbox;
mod statements;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chat_domain::EventId;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};
use uuid::Uuid;

use crate::config::CassandraConfig;
use crate::error::CassandraError;
use crate::session::Db;

pub use messages::message_values;
pub use statements::{CLAIM_CQL, INSERT_MESSAGE_CQL, INSERT_OUTBOX_BUCKET_CQL, INSERT_OUTBOX_CQL};

use leases::Lease;
use statements::Statements;

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
        let statements = Statements::prepare(&db).await?;
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
}

/// Locks one of the store's bookkeeping maps. Each sees only single inserts, removes and
/// retains, so a map poisoned by a panicking holder is still consistent and stays in use.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A timestamp as the driver binds it (UTC, no offset).
pub(crate) fn cql_time(at: OffsetDateTime) -> PrimitiveDateTime {
    let utc = at.to_offset(UtcOffset::UTC);
    PrimitiveDateTime::new(utc.date(), utc.time())
}

/// A value as the JSON blob stored in `table` (the table it is written to, named in the error).
fn encode<T: serde::Serialize>(value: &T, table: &'static str) -> Result<Vec<u8>, CassandraError> {
    serde_json::to_vec(value).map_err(|error| CassandraError::BadRow {
        table,
        reason: format!("encoding: {error}"),
    })
}

/// A JSON blob read from `table` (the table it was read from, named in the error).
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
    use chat_domain::{MessageId, MessagePosition};

    #[test]
    fn positions_and_cql_times_agree() {
        let at = time::macros::datetime!(2026-11-25 10:00:00.123 UTC);
        let id = MessageId::generate(at);
        assert_eq!(
            MessagePosition::of_id(id).timestamp_ms,
            chat_domain::model::millis(at)
        );
        assert_eq!(cql_time(at).assume_utc(), at);
    }
}
