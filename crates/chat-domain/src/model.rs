//! The chat model: chats, messages in their two forms (plaintext for users, sealed for storage),
//! and the ordering every store keeps.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Error;
use crate::ids::{ChatId, ClientMessageId, MessageId, UserId};

/// What a message carries. The content of every kind is text: the message itself for `text`,
/// a reference (URL or object key) for media that another service stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Plain text.
    Text,
    /// A reference to an image.
    Image,
    /// A reference to a file.
    File,
    /// A reference to an audio clip.
    Audio,
    /// A reference to a video.
    Video,
}

impl MessageKind {
    /// The name used on the wire and in storage.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::File => "file",
            Self::Audio => "audio",
            Self::Video => "video",
        }
    }
}

impl FromStr for MessageKind {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "text" => Ok(Self::Text),
            "image" => Ok(Self::Image),
            "file" => Ok(Self::File),
            "audio" => Ok(Self::Audio),
            "video" => Ok(Self::Video),
            _ => Err(Error::invalid(
                "kind",
                "must be one of text, image, file, audio, video",
            )),
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A one-to-one chat. `members` is sorted, so equal chats compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    /// Derived from the members; see [`ChatId::for_pair`].
    pub id: ChatId,
    /// The two members, lower id first.
    pub members: [UserId; 2],
    /// When the chat was first opened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Chat {
    /// The chat of two users, created now.
    ///
    /// # Errors
    /// [`Error::SelfChat`] when both are the same user.
    pub fn between(a: UserId, b: UserId, created_at: OffsetDateTime) -> Result<Self, Error> {
        if a == b {
            return Err(Error::SelfChat);
        }
        let members = if a < b { [a, b] } else { [b, a] };
        Ok(Self {
            id: ChatId::for_pair(a, b),
            members,
            created_at,
        })
    }

    /// Whether `user` is one of the two members.
    pub fn has_member(&self, user: UserId) -> bool {
        self.members.contains(&user)
    }

    /// The member who is not `user`, if `user` is a member.
    pub fn peer_of(&self, user: UserId) -> Option<UserId> {
        match self.members {
            [a, b] if a == user => Some(b),
            [a, b] if b == user => Some(a),
            _ => None,
        }
    }
}

/// One entry of a user's chat list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSummary {
    /// The chat.
    pub chat_id: ChatId,
    /// The other member.
    pub peer_id: UserId,
    /// When the chat was first opened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Encrypted message content as the cipher produced it (an envelope with key id, nonce,
/// ciphertext and tag). Serialized as base64 text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(#[serde(with = "base64_text")] pub Vec<u8>);

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

/// A keyed hash of a message's plaintext (HMAC-SHA256 under the digest key, see
/// [`crate::Cipher::digest`]): equal plaintexts give equal digests, and without the key it
/// tells nothing about the plaintext. Not sealed content: nothing opens it. Serialized as
/// base64 text, as [`Sealed`] is, so stored digests keep their bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyedDigest(#[serde(with = "base64_text")] pub Vec<u8>);

impl fmt::Debug for KeyedDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyedDigest({} bytes)", self.0.len())
    }
}

/// Bytes as standard base64 text, for serde (`#[serde(with = "base64_text")]`).
mod base64_text {
    use super::BASE64;
    use base64::Engine as _;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        BASE64
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// A message as it is stored, cached and sent between instances: the content is sealed, plus a
/// keyed digest of the plaintext. Nothing outside the process ever holds the plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The message id (UUIDv7 carrying `timestamp`).
    pub id: MessageId,
    /// The chat it belongs to.
    pub chat_id: ChatId,
    /// Who sent it.
    pub sender_id: UserId,
    /// Who receives it: the other member of the chat.
    pub recipient_id: UserId,
    /// What it carries.
    pub kind: MessageKind,
    /// The sealed content.
    pub content: Sealed,
    /// HMAC-SHA256 of the plaintext under the digest key.
    pub digest: KeyedDigest,
    /// When the service accepted it, to the millisecond.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// When the recipient reported seeing it.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub seen_at: Option<OffsetDateTime>,
    /// The sender's idempotency key.
    pub client_msg_id: ClientMessageId,
}

impl StoredMessage {
    /// Where the message stands in its chat's history.
    pub fn position(&self) -> MessagePosition {
        MessagePosition {
            timestamp_ms: millis(self.timestamp),
            id: self.id,
        }
    }
}

/// A message as its users see it, with the content opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The message id.
    #[serde(rename = "message_id")]
    pub id: MessageId,
    /// The chat.
    pub chat_id: ChatId,
    /// Who sent it.
    pub sender_id: UserId,
    /// Who receives it.
    pub recipient_id: UserId,
    /// What it carries.
    pub kind: MessageKind,
    /// The plaintext content.
    pub content: String,
    /// When the service accepted it.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// When the recipient saw it, if they have.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub seen_at: Option<OffsetDateTime>,
    /// The sender's idempotency key.
    pub client_msg_id: ClientMessageId,
}

/// The place of a message in its chat's history. Its order is the history's order, **newest
/// first**: later timestamps come first; within one millisecond, the higher message id comes
/// first (ids increase as an instance accepts messages, see
/// [`crate::ids::MessageIdGenerator`]). That is Cassandra's
/// `CLUSTERING ORDER BY (timestamp DESC, message_id DESC)`, and every store must keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessagePosition {
    /// Unix milliseconds of the message.
    pub timestamp_ms: i64,
    /// The message id.
    pub id: MessageId,
}

impl MessagePosition {
    /// The position of a message id issued by this service (its timestamp is inside it).
    pub fn of_id(id: MessageId) -> Self {
        Self {
            timestamp_ms: id.unix_millis(),
            id,
        }
    }
}

impl Ord for MessagePosition {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .timestamp_ms
            .cmp(&self.timestamp_ms)
            .then_with(|| other.id.cmp(&self.id))
    }
}

impl PartialOrd for MessagePosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Unix milliseconds of a timestamp.
pub fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX)
}

/// `at` cut to whole milliseconds, the precision every store keeps.
pub fn truncate_to_millis(at: OffsetDateTime) -> OffsetDateTime {
    let nanos = i128::from(millis(at)) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn user() -> UserId {
        UserId::from_uuid(Uuid::new_v4())
    }

    #[test]
    fn chat_between_sorts_members_and_rejects_self() {
        let (a, b) = (user(), user());
        let now = OffsetDateTime::now_utc();
        let one = Chat::between(a, b, now).unwrap();
        let other = Chat::between(b, a, now).unwrap();
        assert_eq!(one, other);
        assert_eq!(one.peer_of(a), Some(b));
        assert_eq!(one.peer_of(user()), None);
        assert_eq!(Chat::between(a, a, now).unwrap_err(), Error::SelfChat);
    }

    #[test]
    fn positions_order_newest_first_then_higher_id() {
        let at = time::macros::datetime!(2026-05-01 12:00:00 UTC);
        let older = MessagePosition::of_id(MessageId::generate(at));
        let newer = MessagePosition::of_id(MessageId::generate(at + time::Duration::SECOND));
        assert!(newer < older);
        let low = MessagePosition {
            timestamp_ms: 5,
            id: MessageId::from_uuid(Uuid::from_u128(1)),
        };
        let high = MessagePosition {
            timestamp_ms: 5,
            id: MessageId::from_uuid(Uuid::from_u128(2)),
        };
        assert!(high < low);
    }

    #[test]
    fn sealed_content_serializes_as_base64() {
        let json = serde_json::to_string(&Sealed(vec![1, 2, 3])).unwrap();
        assert_eq!(json, "\"AQID\"");
        let back: Sealed = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Sealed(vec![1, 2, 3]));
    }

    #[test]
    fn keyed_digest_serializes_as_base64_as_sealed_content_does() {
        let json = serde_json::to_string(&KeyedDigest(vec![1, 2, 3])).unwrap();
        assert_eq!(json, serde_json::to_string(&Sealed(vec![1, 2, 3])).unwrap());
        assert_eq!(json, "\"AQID\"");
        let back: KeyedDigest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, KeyedDigest(vec![1, 2, 3]));
    }

    #[test]
    fn unknown_kind_is_a_clear_error() {
        assert_eq!("image".parse::<MessageKind>().unwrap(), MessageKind::Image);
        assert_eq!(
            "gif".parse::<MessageKind>().unwrap_err().code(),
            "invalid_field"
        );
    }
}
