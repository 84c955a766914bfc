//! [`EmbeddedStore`]: messages, chats and the outbox in one redb database file.
//!
//! # Tables
//! Keys and values are byte slices; values are the JSON of the domain types.
//!
//! | table        | key                                                     | value              |
//! |--------------|---------------------------------------------------------|--------------------|
//! | `messages`   | chat id (16) · descending millis (8) · message id (16)  | `StoredMessage`    |
//! | `dedup`      | chat id (16) · sender id (16) · client message id       | `messages` key     |
//! | `chats`      | chat id (16)                                            | `Chat`             |
//! | `user_chats` | user id (16) · created-at millis (8) · chat id (16)     | `ChatSummary`      |
//! | `outbox`     | event id (16, UUIDv7: oldest first)                     | `NewMessageEvent`  |
//!
//! Millis are stored big-endian with the sign bit flipped, so byte order is numeric order; in
//! `messages` they are inverted, and so are the message id's bytes, so a forward scan of a
//! chat's keys is newest first with ties broken by descending message id: exactly
//! [`MessagePosition`]'s order.
//!
//! Every redb call blocks (a commit fsyncs), so each port method runs on tokio's blocking pool.
//! redb runs one write transaction at a time, which is what makes the dedup check of
//! [`MessageStore::append`] and the insert-if-absent of [`ChatDirectory::open`] race-free.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chat_domain::model::millis;
use chat_domain::{
    Appended, Chat, ChatDirectory, ChatId, ChatSummary, EventId, MessageId, MessagePosition,
    MessageStore, NewMessageEvent, Outbox, PageStart, StoredMessage, StoredPage, UserId,
};
use redb::{
    ConcurrencyMode, Database, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::config::EmbeddedConfig;
use crate::error::EmbeddedError;

type Bytes = &'static [u8];

const MESSAGES: TableDefinition<Bytes, Bytes> = TableDefinition::new("messages");
const DEDUP: TableDefinition<Bytes, Bytes> = TableDefinition::new("dedup");
const CHATS: TableDefinition<Bytes, Bytes> = TableDefinition::new("chats");
const USER_CHATS: TableDefinition<Bytes, Bytes> = TableDefinition::new("user_chats");
const OUTBOX: TableDefinition<Bytes, Bytes> = TableDefinition::new("outbox");

/// The length of a `messages` key.
const MESSAGE_KEY_LEN: usize = 40;

/// The first byte of every resume state this store hands out.
const RESUME_STATE_VERSION: u8 = 1;

/// The length of a resume state: version, chat id, millis, message id.
const RESUME_STATE_LEN: usize = 1 + 16 + 8 + 16;

/// Messages, chats and the outbox in a redb database file. Implements [`MessageStore`],
/// [`ChatDirectory`] and [`Outbox`].
///
/// Single process: redb locks the file, so a second [`EmbeddedStore::open`] of the same file,
/// from another process or from this one, fails with [`EmbeddedError::AlreadyOpen`] until
/// this store is dropped. Clone it freely: clones share one database handle.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens the database at `path`, creating it (and its parent directories) when missing,
    /// and its tables when new. Blocks while the file is opened (and, after a crash,
    /// recovered): call it at startup, or from a blocking task.
    ///
    /// # Errors
    /// [`EmbeddedError::AlreadyOpen`] when another process or handle holds the file;
    /// [`EmbeddedError::Io`] when the directory cannot be created; [`EmbeddedError::Open`]
    /// when the file is not a redb database or cannot be read.
    pub fn open(path: &Path) -> Result<Self, EmbeddedError> {
        if let Some(parent) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| {
                EmbeddedError::io("could not create the data directory", parent, source)
            })?;
        }
        let db = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::ExclusiveWriter)
            .create(path)
            .map_err(|error| match error {
                redb::DatabaseError::DatabaseAlreadyOpen => EmbeddedError::AlreadyOpen {
                    path: path.to_owned(),
                },
                other => EmbeddedError::Open {
                    path: path.to_owned(),
                    source: other.into(),
                },
            })?;
        let txn = db.begin_write()?;
        for table in [MESSAGES, DEDUP, CHATS, USER_CHATS, OUTBOX] {
            txn.open_table(table)?;
        }
        txn.commit()?;
        tracing::debug!(path = %path.display(), "opened the embedded store");
        Ok(Self {
            db: Arc::new(db),
            path: path.to_owned(),
        })
    }

    /// Opens the database of `config` ([`EmbeddedConfig::database_path`]).
    ///
    /// # Errors
    /// As [`EmbeddedStore::open`].
    pub fn open_config(config: &EmbeddedConfig) -> Result<Self, EmbeddedError> {
        Self::open(&config.database_path())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `task` on tokio's blocking pool.
    async fn run<T, F>(&self, task: F) -> Result<T, EmbeddedError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, EmbeddedError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || task(&db)).await?
    }
}

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, EmbeddedError> {
    serde_json::to_vec(value).map_err(|error| EmbeddedError::Encode {
        what,
        reason: error.to_string(),
    })
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, EmbeddedError> {
    serde_json::from_slice(bytes).map_err(|error| EmbeddedError::corrupt(what, error))
}

/// Unix millis as 8 bytes whose byte order is numeric order (sign bit flipped, big-endian).
fn ascending_millis(ms: i64) -> [u8; 8] {
    (ms.cast_unsigned() ^ (1 << 63)).to_be_bytes()
}

/// Unix millis as 8 bytes whose byte order is reverse numeric order: later sorts first.
fn descending_millis(ms: i64) -> [u8; 8] {
    (!(ms.cast_unsigned() ^ (1 << 63))).to_be_bytes()
}

/// The `messages` key of a message at `position` in `chat`. Byte order of these keys is
/// [`MessagePosition`] order within a chat.
fn message_key(chat: ChatId, position: MessagePosition) -> [u8; MESSAGE_KEY_LEN] {
    let mut key = [0u8; MESSAGE_KEY_LEN];
    key[..16].copy_from_slice(chat.as_bytes());
    key[16..24].copy_from_slice(&descending_millis(position.timestamp_ms));
    // Inverted so that, within a millisecond, the higher id (the later message) comes first.
    for (byte, id_byte) in key[24..].iter_mut().zip(position.id.as_bytes()) {
        *byte = !id_byte;
    }
    key
}

/// The smallest and largest possible 40-byte keys starting with `prefix` (16 bytes).
fn prefix_bounds(prefix: &[u8; 16]) -> ([u8; 16], [u8; 40]) {
    let mut last = [0xFF; 40];
    last[..16].copy_from_slice(prefix);
    (*prefix, last)
}

fn dedup_key(message: &StoredMessage) -> Vec<u8> {
    let client = message.client_msg_id.as_str().as_bytes();
    let mut key = Vec::with_capacity(32 + client.len());
    key.extend_from_slice(message.chat_id.as_bytes());
    key.extend_from_slice(message.sender_id.as_bytes());
    key.extend_from_slice(client);
    key
}

fn user_chat_key(user: UserId, created_at: OffsetDateTime, chat: ChatId) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..16].copy_from_slice(user.as_bytes());
    key[16..24].copy_from_slice(&ascending_millis(millis(created_at)));
    key[24..].copy_from_slice(chat.as_bytes());
    key
}

/// The continuation handed out as [`PageStart::Resume`]: the last returned message's
/// position, bound to its chat.
fn resume_state(chat: ChatId, position: MessagePosition) -> Vec<u8> {
    let mut state = Vec::with_capacity(RESUME_STATE_LEN);
    state.push(RESUME_STATE_VERSION);
    state.extend_from_slice(chat.as_bytes());
    state.extend_from_slice(&position.timestamp_ms.to_be_bytes());
    state.extend_from_slice(position.id.as_bytes());
    state
}

/// The position in a resume state made by [`resume_state`] for `chat`.
fn resume_position(chat: ChatId, state: &[u8]) -> chat_domain::Result<MessagePosition> {
    let invalid = || chat_domain::Error::InvalidCursor;
    let (&version, rest) = state.split_first().ok_or_else(invalid)?;
    if version != RESUME_STATE_VERSION || state.len() != RESUME_STATE_LEN {
        return Err(invalid());
    }
    let (state_chat, rest) = rest.split_first_chunk::<16>().ok_or_else(invalid)?;
    let (ms, id) = rest.split_first_chunk::<8>().ok_or_else(invalid)?;
    let id: [u8; 16] = id.try_into().map_err(|_| invalid())?;
    if state_chat != chat.as_bytes() {
        return Err(invalid());
    }
    Ok(MessagePosition {
        timestamp_ms: i64::from_be_bytes(*ms),
        id: MessageId::from_uuid(uuid::Uuid::from_bytes(id)),
    })
}

#[async_trait]
impl MessageStore for EmbeddedStore {
    async fn append(
        &self,
        message: &StoredMessage,
        event: &NewMessageEvent,
    ) -> chat_domain::Result<Appended> {
        let key = message_key(message.chat_id, message.position());
        let dedup = dedup_key(message);
        let message_json = encode("message", message)?;
        let event_key = *event.event_id.as_bytes();
        let event_json = encode("event", event)?;
        let appended = self
            .run(move |db| {
                let txn = db.begin_write()?;
                {
                    let mut dedup_table = txn.open_table(DEDUP)?;
                    let mut messages = txn.open_table(MESSAGES)?;
                    let original_key = dedup_table
                        .get(dedup.as_slice())?
                        .map(|g| g.value().to_vec());
                    if let Some(original_key) = original_key {
                        let original = messages
                            .get(original_key.as_slice())?
                            .ok_or_else(|| {
                                EmbeddedError::corrupt("dedup entry", "its message is missing")
                            })
                            .and_then(|row| decode::<StoredMessage>("message", row.value()))?;
                        // Nothing was written; dropping the transaction aborts it.
                        return Ok(Appended::Duplicate(original));
                    }
                    dedup_table.insert(dedup.as_slice(), key.as_slice())?;
                    messages.insert(key.as_slice(), message_json.as_slice())?;
                    let mut outbox = txn.open_table(OUTBOX)?;
                    outbox.insert(event_key.as_slice(), event_json.as_slice())?;
                }
                txn.commit()?;
                Ok(Appended::Stored)
            })
            .await?;
        Ok(appended)
    }

    async fn page(
        &self,
        chat: ChatId,
        start: &PageStart,
        limit: u32,
    ) -> chat_domain::Result<StoredPage> {
        let (first, last) = prefix_bounds(chat.as_bytes());
        let lower = match start {
            PageStart::Newest => Bound::Included(first.to_vec()),
            PageStart::Before { message_id } => {
                Bound::Excluded(message_key(chat, MessagePosition::of_id(*message_id)).to_vec())
            }
            PageStart::Resume { state } => {
                Bound::Excluded(message_key(chat, resume_position(chat, state)?).to_vec())
            }
        };
        let limit = limit as usize;
        let (messages, more) = self
            .run(move |db| {
                let txn = db.begin_read()?;
                let table = txn.open_table(MESSAGES)?;
                let lower = match &lower {
                    Bound::Included(key) => Bound::Included(key.as_slice()),
                    Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
                    Bound::Unbounded => Bound::Unbounded,
                };
                let mut rows = table.range::<&[u8]>((lower, Bound::Included(last.as_slice())))?;
                let mut messages = Vec::with_capacity(limit.min(1024));
                for row in rows.by_ref().take(limit) {
                    let (_, value) = row?;
                    messages.push(decode::<StoredMessage>("message", value.value())?);
                }
                let more = rows.next().transpose()?.is_some();
                Ok((messages, more))
            })
            .await?;
        let next = match messages.last() {
            Some(last) if more => Some(PageStart::Resume {
                state: resume_state(chat, last.position()),
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
        let (first, last) = prefix_bounds(chat.as_bytes());
        let upper = after.map(|id| message_key(chat, MessagePosition::of_id(id)));
        let limit = limit as usize;
        let messages = self
            .run(move |db| {
                let txn = db.begin_read()?;
                let table = txn.open_table(MESSAGES)?;
                let upper = match &upper {
                    Some(key) => Bound::Excluded(key.as_slice()),
                    None => Bound::Included(last.as_slice()),
                };
                let rows = table.range::<&[u8]>((Bound::Included(first.as_slice()), upper))?;
                let mut messages = Vec::with_capacity(limit.min(1024));
                for row in rows.rev().take(limit) {
                    let (_, value) = row?;
                    messages.push(decode::<StoredMessage>("message", value.value())?);
                }
                Ok(messages)
            })
            .await?;
        Ok(messages)
    }

    async fn get(&self, chat: ChatId, id: MessageId) -> chat_domain::Result<Option<StoredMessage>> {
        let key = message_key(chat, MessagePosition::of_id(id));
        let message = self
            .run(move |db| {
                let txn = db.begin_read()?;
                let table = txn.open_table(MESSAGES)?;
                table
                    .get(key.as_slice())?
                    .map(|row| decode::<StoredMessage>("message", row.value()))
                    .transpose()
            })
            .await?;
        Ok(message)
    }

    async fn mark_seen(
        &self,
        chat: ChatId,
        id: MessageId,
        at: OffsetDateTime,
    ) -> chat_domain::Result<Option<StoredMessage>> {
        let key = message_key(chat, MessagePosition::of_id(id));
        let message = self
            .run(move |db| {
                let txn = db.begin_write()?;
                let seen = {
                    let mut table = txn.open_table(MESSAGES)?;
                    let stored = table
                        .get(key.as_slice())?
                        .map(|row| decode::<StoredMessage>("message", row.value()))
                        .transpose()?;
                    let Some(mut message) = stored else {
                        return Ok(None);
                    };
                    if message.seen_at.is_some() {
                        return Ok(Some(message));
                    }
                    message.seen_at = Some(at);
                    table.insert(key.as_slice(), encode("message", &message)?.as_slice())?;
                    message
                };
                txn.commit()?;
                Ok(Some(seen))
            })
            .await?;
        Ok(message)
    }
}

#[async_trait]
impl ChatDirectory for EmbeddedStore {
    async fn open(&self, chat: &Chat) -> chat_domain::Result<Chat> {
        let chat = chat.clone();
        let stored = self
            .run(move |db| {
                let txn = db.begin_write()?;
                {
                    let mut chats = txn.open_table(CHATS)?;
                    let existing = chats
                        .get(chat.id.as_bytes().as_slice())?
                        .map(|row| decode::<Chat>("chat", row.value()))
                        .transpose()?;
                    if let Some(existing) = existing {
                        return Ok(existing);
                    }
                    chats.insert(
                        chat.id.as_bytes().as_slice(),
                        encode("chat", &chat)?.as_slice(),
                    )?;
                    let mut user_chats = txn.open_table(USER_CHATS)?;
                    let [a, b] = chat.members;
                    for (member, peer) in [(a, b), (b, a)] {
                        let summary = ChatSummary {
                            chat_id: chat.id,
                            peer_id: peer,
                            created_at: chat.created_at,
                        };
                        user_chats.insert(
                            user_chat_key(member, chat.created_at, chat.id).as_slice(),
                            encode("chat summary", &summary)?.as_slice(),
                        )?;
                    }
                }
                txn.commit()?;
                Ok(chat)
            })
            .await?;
        Ok(stored)
    }

    async fn get(&self, chat: ChatId) -> chat_domain::Result<Option<Chat>> {
        let stored = self
            .run(move |db| {
                let txn = db.begin_read()?;
                let table = txn.open_table(CHATS)?;
                table
                    .get(chat.as_bytes().as_slice())?
                    .map(|row| decode::<Chat>("chat", row.value()))
                    .transpose()
            })
            .await?;
        Ok(stored)
    }

    async fn chats_of(&self, user: UserId) -> chat_domain::Result<Vec<ChatSummary>> {
        let (first, last) = prefix_bounds(user.as_bytes());
        let chats = self
            .run(move |db| {
                let txn = db.begin_read()?;
                let table = txn.open_table(USER_CHATS)?;
                let rows = table.range::<&[u8]>(first.as_slice()..=last.as_slice())?;
                rows.map(|row| {
                    let (_, value) = row?;
                    decode::<ChatSummary>("chat summary", value.value())
                })
                .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(chats)
    }
}

#[async_trait]
impl Outbox for EmbeddedStore {
    async fn pending(&self, limit: u32) -> chat_domain::Result<Vec<NewMessageEvent>> {
        let limit = limit as usize;
        let events = self
            .run(move |db| {
                let txn = db.begin_read()?;
                let table = txn.open_table(OUTBOX)?;
                let mut events = Vec::with_capacity(limit.min(1024));
                for row in table.iter()?.take(limit) {
                    let (_, value) = row?;
                    events.push(decode::<NewMessageEvent>("event", value.value())?);
                }
                Ok(events)
            })
            .await?;
        Ok(events)
    }

    async fn remove(&self, ids: &[EventId]) -> chat_domain::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let keys: Vec<[u8; 16]> = ids.iter().map(|id| *id.as_bytes()).collect();
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(OUTBOX)?;
                for key in &keys {
                    table.remove(key.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn backlog(&self) -> chat_domain::Result<u64> {
        let count = self
            .run(|db| {
                let txn = db.begin_read()?;
                let table = txn.open_table(OUTBOX)?;
                Ok(table.len()?)
            })
            .await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn position(timestamp_ms: i64, id: u128) -> MessagePosition {
        MessagePosition {
            timestamp_ms,
            id: MessageId::from_uuid(Uuid::from_u128(id)),
        }
    }

    #[test]
    fn message_keys_sort_in_message_position_order() {
        let chat = ChatId::from_uuid(Uuid::from_u128(7));
        let mut positions = vec![
            position(1_700_000_000_000, 5),
            position(1_700_000_000_000, 3),
            position(1_700_000_000_001, 9),
            position(0, 1),
            position(-1, 1),
            position(i64::MIN, 2),
            position(i64::MAX, 4),
            position(1, u128::MAX),
            position(1, 0),
            position(256, 1),
            position(255, 1),
        ];
        positions.sort();
        let mut keys: Vec<_> = positions.iter().map(|p| message_key(chat, *p)).collect();
        let in_position_order = keys.clone();
        keys.sort();
        assert_eq!(keys, in_position_order);
        assert_eq!(positions[0].timestamp_ms, i64::MAX);
        assert_eq!(positions.last().map(|p| p.timestamp_ms), Some(i64::MIN));
    }

    #[test]
    fn ascending_millis_keep_numeric_order() {
        let values = [
            i64::MIN,
            -1_000,
            -1,
            0,
            1,
            255,
            256,
            1_700_000_000_000,
            i64::MAX,
        ];
        let encoded: Vec<_> = values.iter().map(|v| ascending_millis(*v)).collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(sorted, encoded);
    }

    #[test]
    fn message_keys_stay_inside_their_chat_bounds() {
        let chat = ChatId::from_uuid(Uuid::from_u128(7));
        let (first, last) = prefix_bounds(chat.as_bytes());
        for p in [position(i64::MAX, 0), position(i64::MIN, u128::MAX)] {
            let key = message_key(chat, p);
            assert!(first.as_slice() <= key.as_slice() && key.as_slice() <= last.as_slice());
        }
        let other = ChatId::from_uuid(Uuid::from_u128(8));
        let outside = message_key(other, position(i64::MAX, 0));
        assert!(outside.as_slice() > last.as_slice());
    }

    #[test]
    fn resume_state_round_trips_and_is_bound_to_its_chat() {
        let chat = ChatId::from_uuid(Uuid::from_u128(7));
        let at = position(1_700_000_000_000, 42);
        let state = resume_state(chat, at);
        assert_eq!(resume_position(chat, &state), Ok(at));
        let other = ChatId::from_uuid(Uuid::from_u128(8));
        assert_eq!(
            resume_position(other, &state),
            Err(chat_domain::Error::InvalidCursor)
        );
        for bad in [
            &[][..],
            &state[..RESUME_STATE_LEN - 1],
            &[9; RESUME_STATE_LEN][..],
        ] {
            assert_eq!(
                resume_position(chat, bad),
                Err(chat_domain::Error::InvalidCursor)
            );
        }
    }
}
