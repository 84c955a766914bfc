//! Every statement the store runs, as CQL and prepared once per store: the one place to read
//! what the store asks of each table.

use cdrs_tokio::query::PreparedQuery;

use crate::error::CassandraError;
use crate::session::Db;

/// The columns of a message, as `messages::message_of_row` reads them.
const MESSAGE_COLUMNS: &str = "chat_id, timestamp, message_id, sender_id, recipient_id, kind, \
                               content, digest, client_msg_id, seen_at";

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

/// The store's prepared statements, named by what they do.
pub(super) struct Statements {
    pub(super) claim: PreparedQuery,
    pub(super) insert_message: PreparedQuery,
    pub(super) insert_outbox: PreparedQuery,
    pub(super) insert_outbox_bucket: PreparedQuery,
    pub(super) newest: PreparedQuery,
    pub(super) before: PreparedQuery,
    pub(super) after: PreparedQuery,
    pub(super) oldest: PreparedQuery,
    pub(super) one: PreparedQuery,
    pub(super) mark_seen: PreparedQuery,
    pub(super) outbox_buckets: PreparedQuery,
    pub(super) outbox_events: PreparedQuery,
    pub(super) outbox_count: PreparedQuery,
    pub(super) delete_event: PreparedQuery,
    pub(super) delete_bucket: PreparedQuery,
    pub(super) take_lease: PreparedQuery,
    pub(super) renew_lease: PreparedQuery,
    pub(super) release_lease: PreparedQuery,
}

impl Statements {
    /// Prepares every statement on `db`, one after the other.
    ///
    /// # Errors
    /// [`CassandraError`] when a statement does not prepare (e.g. migrations not applied).
    pub(super) async fn prepare(db: &Db) -> Result<Self, CassandraError> {
        Ok(Self {
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
        })
    }
}
