//! The claim of a send in `message_dedup`: the lightweight transaction that makes one message
//! of a client's key, and the first attempt's message and event read back from a claim that
//! was already there. Errors about these rows name `message_dedup`.

use cdrs_tokio::query_values;
use cdrs_tokio::types::blob::Blob;
use cdrs_tokio::types::rows::Row;
use chat_domain::{EventId, NewMessageEvent, StoredMessage};

use super::{CassandraStore, decode, encode};
use crate::error::CassandraError;
use crate::rows::get;

/// The table of claims.
const TABLE: &str = "message_dedup";

/// The first attempt of a send, as its claim keeps it.
pub(super) struct FirstAttempt {
    pub(super) message: StoredMessage,
    pub(super) event_id: EventId,
    /// The event as the first attempt encoded it: written back as it is, never re-encoded.
    pub(super) event_json: Vec<u8>,
}

/// The event as the claim stores it. Encoded once per send: the outbox row is written with the
/// same bytes, so an error names the claim's table, the first they are written to.
pub(super) fn event_json(event: &NewMessageEvent) -> Result<Vec<u8>, CassandraError> {
    encode(event, TABLE)
}

impl CassandraStore {
    /// Claims `(chat, sender, client_msg_id)` for `message`, keeping a copy of it and of its
    /// event (`event_json`) for resends. `None` when this send's claim applied; otherwise the
    /// first attempt, read from the claim the server sent back.
    pub(super) async fn claim(
        &self,
        message: &StoredMessage,
        event_json: &[u8],
    ) -> Result<Option<FirstAttempt>, CassandraError> {
        let claim = query_values!(
            *message.chat_id.as_uuid(),
            *message.sender_id.as_uuid(),
            message.client_msg_id.as_str().to_owned(),
            *message.id.as_uuid(),
            Blob::from(encode(message, TABLE)?),
            Blob::from(event_json.to_vec()),
            self.dedup_ttl_secs
        );
        let (claimed, existing) = self
            .db
            .run_conditional(&self.statements.claim, claim)
            .await?;
        if claimed {
            return Ok(None);
        }
        first_attempt_of_row(existing).map(Some)
    }
}

/// The first attempt in the existing claim a lightweight transaction sent back.
fn first_attempt_of_row(existing: Option<Row>) -> Result<FirstAttempt, CassandraError> {
    let existing = existing.ok_or_else(|| CassandraError::BadRow {
        table: TABLE,
        reason: "no existing row".to_owned(),
    })?;
    let message: StoredMessage =
        decode(&get::<Blob>(&existing, "message", TABLE)?.into_vec(), TABLE)?;
    let event_json = get::<Blob>(&existing, "event", TABLE)?.into_vec();
    let event_id = decode::<NewMessageEvent>(&event_json, TABLE)?.event_id;
    Ok(FirstAttempt {
        message,
        event_id,
        event_json,
    })
}
