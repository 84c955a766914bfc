//! The [`MessageStore`] port on the `messages` table: a send (claimed first, see
//! [`super::claims`], then written with its outbox row), history pages, catch-up reads, and
//! marking a message seen.

use async_trait::async_trait;
use cdrs_tokio::query::QueryValues;
use cdrs_tokio::query_values;
use cdrs_tokio::types::blob::Blob;
use cdrs_tokio::types::rows::Row;
use chat_domain::{
    Appended, ChatId, ClientMessageId, EventId, KeyedDigest, MessageId, MessageKind, MessageStore,
    NewMessageEvent, PageStart, Sealed, StoredMessage, StoredPage, UserId,
};
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use super::continuation::{Query, decode_resume, encode_resume};
use super::{CassandraStore, claims, cql_time};
use crate::error::CassandraError;
use crate::rows::{get, get_opt};

/// The table of messages.
const TABLE: &str = "messages";

impl CassandraStore {
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
        let (message_written, enqueued) = tokio::join!(
            self.db.run(
                &self.statements.insert_message,
                message_values(message),
                true
            ),
            self.enqueue(event_id, event_json),
        );
        message_written?;
        enqueued
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
}

#[async_trait]
impl MessageStore for CassandraStore {
    async fn append(
        &self,
        message: &StoredMessage,
        event: &NewMessageEvent,
    ) -> chat_domain::Result<Appended> {
        let event_json = claims::event_json(event)?;
        let Some(first) = self.claim(message, &event_json).await? else {
            self.write(message, event.event_id, event_json).await?;
            return Ok(Appended::Stored);
        };
        // The first attempt may have died between its claim and its rows (it was then never
        // acknowledged): rewrite both as they were. Plain upserts; the event keeps its id.
        self.write(&first.message, first.event_id, first.event_json)
            .await?;
        // The stored row may have been seen since; return it as it is now.
        let current = self
            .read_one(first.message.chat_id, first.message.id)
            .await?;
        Ok(Appended::Duplicate(current.unwrap_or(first.message)))
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
        let messages = messages_of_rows(&page.rows)?;
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
        Ok(messages_of_rows(&rows)?)
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

/// The values of [`INSERT_MESSAGE_CQL`](super::INSERT_MESSAGE_CQL) for `message`: public so that benchmarks bind exactly
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

/// The messages of `rows`, in their order; the first bad row is the error.
fn messages_of_rows(rows: &[Row]) -> Result<Vec<StoredMessage>, CassandraError> {
    rows.iter().map(message_of_row).collect()
}

fn message_of_row(row: &Row) -> Result<StoredMessage, CassandraError> {
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
        digest: KeyedDigest(get::<Blob>(row, "digest", TABLE)?.into_vec()),
        timestamp: get::<PrimitiveDateTime>(row, "timestamp", TABLE)?.assume_utc(),
        seen_at: get_opt::<PrimitiveDateTime>(row, "seen_at", TABLE)?
            .map(PrimitiveDateTime::assume_utc),
        client_msg_id: ClientMessageId::parse(&client_msg_id)
            .map_err(|_| bad("client_msg_id".to_owned()))?,
    })
}
