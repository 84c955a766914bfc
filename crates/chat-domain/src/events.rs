//! What leaves the service: the durable new-message event for notification-service (through the
//! outbox) and the live events pushed to connected users (through the fan-out).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{ChatId, ConnectionId, EventId, MessageId, UserId};
use crate::model::{MessageKind, Sealed, StoredMessage};

/// The version of [`NewMessageEvent`]'s layout. Consumers reject versions they do not know.
pub const NEW_MESSAGE_EVENT_VERSION: u32 = 1;

/// The event type name of [`NewMessageEvent`].
pub const NEW_MESSAGE_EVENT_TYPE: &str = "message.created";

/// Announces one new message to notification-service. Written to the outbox together with the
/// message, so an acknowledged message always gets its event (at least once: consumers dedup on
/// `event_id`). The content stays sealed; notification-service opens it with `chat-crypto`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessageEvent {
    /// Layout version, [`NEW_MESSAGE_EVENT_VERSION`].
    pub version: u32,
    /// Unique per event, stable across redeliveries.
    pub event_id: EventId,
    /// [`NEW_MESSAGE_EVENT_TYPE`].
    pub event_type: String,
    /// The new message.
    pub message_id: MessageId,
    /// Its chat.
    pub chat_id: ChatId,
    /// Its sender.
    pub sender_id: UserId,
    /// Its recipient, whose devices get the push.
    pub recipient_id: UserId,
    /// What it carries.
    pub kind: MessageKind,
    /// When it was accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// Whether the recipient had a live connection at send time (a push may then be skipped).
    pub recipient_online: bool,
    /// The sealed content, as stored.
    pub content: Sealed,
}

impl NewMessageEvent {
    /// The event announcing `message`.
    pub fn for_message(message: &StoredMessage, recipient_online: bool) -> Self {
        Self {
            version: NEW_MESSAGE_EVENT_VERSION,
            event_id: EventId::generate(),
            event_type: NEW_MESSAGE_EVENT_TYPE.to_owned(),
            message_id: message.id,
            chat_id: message.chat_id,
            sender_id: message.sender_id,
            recipient_id: message.recipient_id,
            kind: message.kind,
            timestamp: message.timestamp,
            recipient_online,
            content: message.content.clone(),
        }
    }
}

/// Something to push to a user's live connections, on whichever instance they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A new message, still sealed; the instance holding the socket opens it.
    Message {
        /// The message.
        message: StoredMessage,
        /// The connection it came from, which already has its ack.
        origin: Option<ConnectionId>,
    },
    /// A message was seen by its recipient.
    Seen {
        /// The chat.
        chat_id: ChatId,
        /// The message seen.
        message_id: MessageId,
        /// Who saw it.
        seen_by: UserId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        seen_at: OffsetDateTime,
    },
    /// A member is typing.
    Typing {
        /// The chat.
        chat_id: ChatId,
        /// Who is typing.
        user_id: UserId,
        /// The connection it came from.
        origin: Option<ConnectionId>,
    },
}

impl LiveEvent {
    /// The connection that caused the event, which should not get it back.
    pub fn origin(&self) -> Option<ConnectionId> {
        match self {
            Self::Message { origin, .. } | Self::Typing { origin, .. } => *origin,
            Self::Seen { .. } => None,
        }
    }
}
