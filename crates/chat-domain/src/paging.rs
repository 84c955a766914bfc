//! History paging. Stores hand out their own opaque continuation; the client only ever sees a
//! random [`CursorId`] that the cursor store maps back to it, bound to one user and one chat.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;
use crate::ids::{ChatId, MessageId, UserId};
use crate::model::StoredMessage;

/// Where a history page starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum PageStart {
    /// At the newest message.
    Newest,
    /// Just after (older than) this message; used when the first page came from the cache.
    Before {
        /// The last message the previous page returned.
        message_id: MessageId,
    },
    /// Where the store's previous page left off, in the store's own opaque form (Cassandra's
    /// paging state). Never shown to clients.
    Resume {
        /// The store's continuation bytes.
        #[serde(with = "continuation_bytes")]
        state: Vec<u8>,
    },
}

mod continuation_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        BASE64
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// One page of a chat's history, newest first, as a store returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPage {
    /// The messages, newest first.
    pub messages: Vec<StoredMessage>,
    /// Where the next (older) page starts, when more remain.
    pub next: Option<PageStart>,
}

/// The id a client sends back to load the next page. 128 random bits as 32 hex digits: it says
/// nothing about the chat and cannot be guessed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CursorId(String);

impl CursorId {
    /// A fresh random cursor id.
    pub fn generate() -> Self {
        Self(Uuid::new_v4().simple().to_string())
    }

    /// Checks the form of a client-supplied cursor (its existence is the cursor store's job).
    ///
    /// # Errors
    /// [`Error::InvalidCursor`] when it cannot be a cursor this service issued.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(text.to_ascii_lowercase()))
        } else {
            Err(Error::InvalidCursor)
        }
    }

    /// The cursor as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CursorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whom a cursor was issued to: loading it as anyone else, or for another chat, fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CursorOwner {
    /// The user who asked for the page.
    pub user_id: UserId,
    /// The chat being paged.
    pub chat_id: ChatId,
}

/// What the recent-messages cache holds for one chat: its newest messages, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecentWindow {
    /// The newest messages of the chat, newest first, without gaps.
    pub messages: Vec<StoredMessage>,
    /// Whether these are all the chat's messages (the chat is shorter than the window).
    pub complete: bool,
}

impl RecentWindow {
    /// Inserts `message` at its place (newest first), replacing an entry with the same id, and
    /// keeps at most `capacity` messages; dropping one makes the window incomplete. Cache
    /// adapters share this so every one keeps the same order.
    pub fn insert(&mut self, message: &StoredMessage, capacity: usize) {
        self.messages.retain(|m| m.id != message.id);
        let at = self
            .messages
            .partition_point(|m| m.position() < message.position());
        self.messages.insert(at, message.clone());
        if self.messages.len() > capacity {
            self.messages.truncate(capacity);
            self.complete = false;
        }
    }
}
