//! The use cases: open a chat, send, list chats, page history, mark seen, sync after a gap, and
//! typing. Plain code over the [`Ports`]; the transport (WebSocket, REST) lives in the server.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::error::{Cause, Error, Result};
use crate::events::{LiveEvent, NewMessageEvent};
use crate::ids::{ChatId, ClientMessageId, ConnectionId, MessageId, MessageIdGenerator, UserId};
use crate::model::{Chat, ChatSummary, Message, MessageKind, StoredMessage, truncate_to_millis};
use crate::paging::{CursorId, CursorOwner, PageStart, RecentWindow, StoredPage};
use crate::ports::{Appended, Ports, SealBinding};

/// The bounds the use cases enforce (the `[limits]` settings). Defaults match
/// `config/default.toml`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct Limits {
    /// The largest message content, in bytes of UTF-8.
    pub max_content_bytes: usize,
    /// The history page size when the client names none.
    pub default_page_size: u32,
    /// The largest history page a client may ask for.
    pub max_page_size: u32,
    /// The most messages one `sync` answer carries.
    pub max_sync_batch: u32,
    /// How many newest messages per chat the recent cache is primed with (0: no cache reads).
    pub recent_window: u32,
    /// How many chats' memberships this instance remembers (a chat's members never change).
    pub known_chats: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_content_bytes: 16 * 1024,
            default_page_size: 50,
            max_page_size: 200,
            max_sync_batch: 500,
            recent_window: 50,
            known_chats: 100_000,
        }
    }
}

/// Who a message goes to: an existing chat, or a user (whose chat is opened if need be).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    /// A chat the sender is a member of.
    Chat(ChatId),
    /// The other user.
    User(UserId),
}

/// A message a user wants to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest {
    /// The sender's idempotency key.
    pub client_msg_id: ClientMessageId,
    /// Where it goes.
    pub to: Recipient,
    /// What it carries.
    pub kind: MessageKind,
    /// The plaintext content.
    pub content: String,
}

/// The promise made to the sender: the message is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The sender's key, echoed.
    pub client_msg_id: ClientMessageId,
    /// The stored message's id.
    pub message_id: MessageId,
    /// Its chat.
    pub chat_id: ChatId,
    /// When it was accepted.
    pub timestamp: OffsetDateTime,
}

/// A stored message, ready to acknowledge and then to distribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// What to tell the sender.
    pub ack: Ack,
    /// The message as stored.
    pub message: StoredMessage,
    /// Whether this was a resend of a message stored before.
    pub duplicate: bool,
}

/// One page of history for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The chat.
    pub chat_id: ChatId,
    /// Messages, newest first.
    pub messages: Vec<Message>,
    /// The cursor of the next (older) page, when more remain and it could be kept.
    pub next_cursor: Option<CursorId>,
    /// Whether older messages remain. True with no cursor when the cursor store failed: the
    /// page is still served, and asking for the first page again later gives a cursor.
    pub has_more: bool,
}

/// What a reconnecting client missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncBatch {
    /// The chat.
    pub chat_id: ChatId,
    /// Messages after the client's last one, oldest first.
    pub messages: Vec<Message>,
    /// Whether more follow the last one here (sync again from it).
    pub has_more: bool,
}

/// A seen receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenReceipt {
    /// The chat.
    pub chat_id: ChatId,
    /// The message seen.
    pub message_id: MessageId,
    /// Who saw it.
    pub seen_by: UserId,
    /// When it was first seen.
    pub seen_at: OffsetDateTime,
}

/// The chat service: every use case, over one adapter per port.
pub struct ChatService {
    ports: Ports,
    limits: Limits,
    known_chats: Mutex<HashMap<ChatId, Chat>>,
    message_ids: MessageIdGenerator,
}

impl ChatService {
    /// A service over `ports`, enforcing `limits`.
    pub fn new(ports: Ports, limits: Limits) -> Self {
        Self {
            ports,
            limits,
            known_chats: Mutex::new(HashMap::new()),
            message_ids: MessageIdGenerator::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A user's first socket on this instance opened: route their live events here.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the fan-out cannot route them (the socket still works; the
    /// client syncs after a gap).
    pub async fn connected(&self, user: UserId) -> Result<()> {
        self.ports.routes.watch(user).await
    }

    /// A user's last socket on this instance closed: stop routing their live events here.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the fan-out cannot be told.
    pub async fn disconnected(&self, user: UserId) -> Result<()> {
        self.ports.routes.unwatch(user).await
    }

    /// Whether the store answers, for readiness: one cheap read (a chat that never exists).
    ///
    /// # Errors
    /// The store's error.
    pub async fn probe(&self) -> Result<()> {
        self.ports
            .chats
            .get(ChatId::from_uuid(uuid::Uuid::nil()))
            .await
            .map(drop)
    }

    /// Opens (or finds) the chat of `user` and `peer`.
    ///
    /// # Errors
    /// [`Error::SelfChat`] when `peer` is `user`; [`Error::Unavailable`] on a store outage.
    pub async fn open_chat(&self, user: UserId, peer: UserId) -> Result<Chat> {
        let wanted = Chat::between(user, peer, truncate_to_millis(self.ports.clock.now()))?;
        if let Some(known) = self.known_chat(wanted.id) {
            return Ok(known);
        }
        let chat = self.ports.chats.open(&wanted).await?;
        for member in chat.members {
            if let Err(error) = self.ports.chat_lists.forget(member).await {
                tracing::warn!(error = %error.report(), user = %member, "could not drop a cached chat list");
            }
        }
        self.remember_chat(&chat);
        Ok(chat)
    }

    /// The chats of `user`. `of` is whose list the client asked for: only their own.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `of` is someone else; [`Error::Unavailable`] on an outage.
    pub async fn list_chats(&self, user: UserId, of: UserId) -> Result<Vec<ChatSummary>> {
        if of != user {
            return Err(Error::Forbidden(
                "a user can list only their own chats".to_owned(),
            ));
        }
        match self.ports.chat_lists.get(user).await {
            Ok(Some(chats)) => return Ok(chats),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(error = %error.report(), "chat list cache failed; reading the store")
            }
        }
        let chats = self.ports.chats.chats_of(user).await?;
        if let Err(error) = self.ports.chat_lists.put(user, &chats).await {
            tracing::warn!(error = %error.report(), "could not cache a chat list");
        }
        Ok(chats)
    }

    /// Validates, seals and stores a message, and adds it to the recent cache. Once this
    /// returns, the message is durable and may be acknowledged; then call
    /// [`ChatService::distribute`].
    ///
    /// # Errors
    /// Input errors ([`Error::EmptyContent`], [`Error::ContentTooLarge`],
    /// [`Error::SelfChat`]), [`Error::ChatNotFound`] for a chat the sender is not in,
    /// [`Error::Unavailable`] when the store cannot confirm the write.
    pub async fn accept(&self, sender: UserId, request: SendRequest) -> Result<Accepted> {
        self.check_content(&request.content)?;
        let chat = match request.to {
            Recipient::Chat(chat_id) => self.member_chat(sender, chat_id).await?,
            Recipient::User(peer) => self.open_chat(sender, peer).await?,
        };
        let recipient = chat.peer_of(sender).ok_or(Error::ChatNotFound)?;
        let id = self.message_ids.next(self.ports.clock.now());
        let timestamp = id.timestamp();
        let binding = SealBinding {
            chat_id: chat.id,
            message_id: id,
            sender_id: sender,
        };
        let plaintext = request.content.as_bytes();
        let message = StoredMessage {
            id,
            chat_id: chat.id,
            sender_id: sender,
            recipient_id: recipient,
            kind: request.kind,
            content: self.ports.cipher.seal(plaintext, &binding)?,
            digest: self.ports.cipher.digest(plaintext),
            timestamp,
            seen_at: None,
            client_msg_id: request.client_msg_id,
        };
        let recipient_online = match self.ports.presence.is_connected(recipient).await {
            Ok(online) => online,
            Err(error) => {
                tracing::warn!(error = %error.report(), "presence unknown; the event says offline");
                false
            }
        };
        let event = NewMessageEvent::for_message(&message, recipient_online);
        let (message, duplicate) = match self.ports.store.append(&message, &event).await? {
            Appended::Stored => (message, false),
            Appended::Duplicate(original) => (original, true),
        };
        // Before the ack, so a first page served from the cache after the ack has the message
        // (or the window is gone). The adapter bounds this with a short timeout.
        if let Err(error) = self.ports.recent.remember(&message).await {
            tracing::warn!(error = %error.report(), chat = %message.chat_id, "recent cache write failed");
            self.forget_recent(message.chat_id).await;
        }
        Ok(Accepted {
            ack: Ack {
                client_msg_id: message.client_msg_id.clone(),
                message_id: message.id,
                chat_id: message.chat_id,
                timestamp: message.timestamp,
            },
            message,
            duplicate,
        })
    }

    /// After the ack: pushes the message to the recipient and to the sender's other
    /// connections. Never fails: a client that misses a push catches up with `sync`.
    /// A resend is pushed again, since the first attempt may have died before this step;
    /// clients drop what they already have by message id.
    pub async fn distribute(&self, accepted: &Accepted, origin: Option<ConnectionId>) {
        let message = &accepted.message;
        let event = LiveEvent::Message {
            message: message.clone(),
            origin,
        };
        self.publish_to(&[message.recipient_id, message.sender_id], &event)
            .await;
    }

    /// A page of `chat`'s history for `user`, newest first: the first page when `cursor` is
    /// `None`, else the page the cursor points to.
    ///
    /// # Errors
    /// [`Error::ChatNotFound`] for a chat the user is not in, [`Error::InvalidInput`] for a
    /// limit out of range, [`Error::InvalidCursor`], [`Error::Unavailable`].
    pub async fn history(
        &self,
        user: UserId,
        chat_id: ChatId,
        limit: Option<u32>,
        cursor: Option<&CursorId>,
    ) -> Result<HistoryPage> {
        self.member_chat(user, chat_id).await?;
        let limit = self.page_limit(limit)?;
        let owner = CursorOwner {
            user_id: user,
            chat_id,
        };
        let page = match cursor {
            Some(cursor) => {
                let start = self.ports.cursors.load(cursor, owner).await?;
                self.ports.store.page(chat_id, &start, limit).await?
            }
            None => self.first_page(chat_id, limit).await?,
        };
        let has_more = page.next.is_some();
        let next_cursor = match page.next {
            Some(start) => {
                let cursor = CursorId::generate();
                match self.ports.cursors.save(&cursor, owner, &start).await {
                    Ok(()) => Some(cursor),
                    Err(error) => {
                        // The page itself is good: serve it, without a way to the next one.
                        tracing::warn!(error = %error.report(), chat = %chat_id, "could not keep a history cursor");
                        None
                    }
                }
            }
            None => None,
        };
        Ok(HistoryPage {
            chat_id,
            messages: self.open_all(&page.messages)?,
            next_cursor,
            has_more,
        })
    }

    /// The messages of `chat` after `after` (from the oldest when `None`), oldest first.
    ///
    /// # Errors
    /// [`Error::ChatNotFound`], [`Error::Unavailable`].
    pub async fn sync(
        &self,
        user: UserId,
        chat_id: ChatId,
        after: Option<MessageId>,
    ) -> Result<SyncBatch> {
        self.member_chat(user, chat_id).await?;
        let batch = self.limits.max_sync_batch;
        let mut stored = self
            .ports
            .store
            .since(chat_id, after, batch.saturating_add(1))
            .await?;
        let has_more = stored.len() > batch as usize;
        stored.truncate(batch as usize);
        Ok(SyncBatch {
            chat_id,
            messages: self.open_all(&stored)?,
            has_more,
        })
    }

    /// Records that `user` saw a message sent to them, and tells both members.
    ///
    /// # Errors
    /// [`Error::ChatNotFound`], [`Error::MessageNotFound`], [`Error::InvalidInput`] when the
    /// user is the message's sender, [`Error::Unavailable`].
    pub async fn mark_seen(
        &self,
        user: UserId,
        chat_id: ChatId,
        message_id: MessageId,
    ) -> Result<SeenReceipt> {
        self.member_chat(user, chat_id).await?;
        let message = self
            .ports
            .store
            .get(chat_id, message_id)
            .await?
            .ok_or(Error::MessageNotFound)?;
        if message.recipient_id != user {
            return Err(Error::invalid(
                "message_id",
                "only the recipient of a message can mark it seen",
            ));
        }
        let message = match message.seen_at {
            Some(_) => message,
            None => {
                let now = truncate_to_millis(self.ports.clock.now());
                let seen = self
                    .ports
                    .store
                    .mark_seen(chat_id, message_id, now)
                    .await?
                    .ok_or(Error::MessageNotFound)?;
                if let Err(error) = self.ports.recent.refresh(&seen).await {
                    tracing::warn!(error = %error.report(), chat = %chat_id, "recent cache refresh failed");
                    self.forget_recent(chat_id).await;
                }
                seen
            }
        };
        let seen_at = message
            .seen_at
            .ok_or_else(|| Error::Internal("the store did not record seen_at".into()))?;
        let receipt = SeenReceipt {
            chat_id,
            message_id,
            seen_by: user,
            seen_at,
        };
        let event = LiveEvent::Seen {
            chat_id,
            message_id,
            seen_by: user,
            seen_at,
        };
        self.publish_to(&[message.sender_id, user], &event).await;
        Ok(receipt)
    }

    /// Tells the other member that `user` is typing.
    ///
    /// # Errors
    /// [`Error::ChatNotFound`], [`Error::Unavailable`] when membership cannot be checked.
    pub async fn typing(
        &self,
        user: UserId,
        chat_id: ChatId,
        origin: Option<ConnectionId>,
    ) -> Result<()> {
        let chat = self.member_chat(user, chat_id).await?;
        let peer = chat.peer_of(user).ok_or(Error::ChatNotFound)?;
        let event = LiveEvent::Typing {
            chat_id,
            user_id: user,
            origin,
        };
        self.publish_to(&[peer], &event).await;
        Ok(())
    }

    /// Opens a stored message for its members.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when it does not open or is not UTF-8.
    pub fn open_message(&self, stored: &StoredMessage) -> Result<Message> {
        let plaintext = self
            .ports
            .cipher
            .open(&stored.content, &SealBinding::of(stored))?;
        let content = String::from_utf8(plaintext).map_err(|error| {
            Error::Corrupt(Cause::in_context(
                format!("message {} is not UTF-8", stored.id),
                error,
            ))
        })?;
        Ok(Message {
            id: stored.id,
            chat_id: stored.chat_id,
            sender_id: stored.sender_id,
            recipient_id: stored.recipient_id,
            kind: stored.kind,
            content,
            timestamp: stored.timestamp,
            seen_at: stored.seen_at,
            client_msg_id: stored.client_msg_id.clone(),
        })
    }

    /// The chat, if `user` is a member; [`Error::ChatNotFound`] otherwise.
    ///
    /// # Errors
    /// [`Error::ChatNotFound`], [`Error::Unavailable`].
    pub async fn member_chat(&self, user: UserId, chat_id: ChatId) -> Result<Chat> {
        let chat = match self.known_chat(chat_id) {
            Some(chat) => chat,
            None => {
                let chat = self
                    .ports
                    .chats
                    .get(chat_id)
                    .await?
                    .ok_or(Error::ChatNotFound)?;
                self.remember_chat(&chat);
                chat
            }
        };
        if chat.has_member(user) {
            Ok(chat)
        } else {
            Err(Error::ChatNotFound)
        }
    }

    fn check_content(&self, content: &str) -> Result<()> {
        if content.trim().is_empty() {
            return Err(Error::EmptyContent);
        }
        if content.len() > self.limits.max_content_bytes {
            return Err(Error::ContentTooLarge {
                size: content.len(),
                limit: self.limits.max_content_bytes,
            });
        }
        Ok(())
    }

    fn page_limit(&self, limit: Option<u32>) -> Result<u32> {
        let limit = limit.unwrap_or(self.limits.default_page_size);
        if limit == 0 || limit > self.limits.max_page_size {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {}", self.limits.max_page_size),
            ));
        }
        Ok(limit)
    }

    /// The newest page: from the recent cache when it holds enough, else from the store (and
    /// the cache is primed with what was read).
    async fn first_page(&self, chat_id: ChatId, limit: u32) -> Result<StoredPage> {
        if self.limits.recent_window > 0 {
            match self.ports.recent.window(chat_id).await {
                Ok(Some(window)) => {
                    if let Some(page) = page_of_window(window, limit) {
                        return Ok(page);
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(error = %error.report(), chat = %chat_id, "recent cache read failed");
                }
            }
        }
        let fetch = limit.max(self.limits.recent_window);
        let mut read = self
            .ports
            .store
            .page(chat_id, &PageStart::Newest, fetch)
            .await?;
        if self.limits.recent_window > 0 {
            let capacity = self.limits.recent_window as usize;
            let window = RecentWindow {
                complete: read.next.is_none() && read.messages.len() <= capacity,
                messages: read.messages.iter().take(capacity).cloned().collect(),
            };
            if let Err(error) = self.ports.recent.prime(chat_id, &window).await {
                tracing::warn!(error = %error.report(), chat = %chat_id, "could not prime the recent cache");
            }
        }
        if read.messages.len() > limit as usize {
            read.messages.truncate(limit as usize);
            read.next = read.messages.last().map(|last| PageStart::Before {
                message_id: last.id,
            });
        }
        Ok(read)
    }

    fn open_all(&self, stored: &[StoredMessage]) -> Result<Vec<Message>> {
        stored.iter().map(|m| self.open_message(m)).collect()
    }

    async fn publish_to(&self, users: &[UserId], event: &LiveEvent) {
        for user in users {
            if let Err(error) = self.ports.live.publish(*user, event).await {
                tracing::warn!(error = %error.report(), %user, "live delivery failed; the client will sync");
            }
        }
    }

    async fn forget_recent(&self, chat_id: ChatId) {
        if let Err(error) = self.ports.recent.forget(chat_id).await {
            tracing::error!(error = %error.report(), chat = %chat_id, "could not drop a stale recent window");
        }
    }

    fn known_chat(&self, chat_id: ChatId) -> Option<Chat> {
        self.known_chats
            .lock()
            .ok()
            .and_then(|known| known.get(&chat_id).cloned())
    }

    fn remember_chat(&self, chat: &Chat) {
        if let Ok(mut known) = self.known_chats.lock() {
            if known.len() >= self.limits.known_chats {
                // Crude but bounded: memberships are cheap to read again.
                known.clear();
            }
            known.insert(chat.id, chat.clone());
        }
    }
}

/// The first page from a cached window, when the window can answer it alone.
fn page_of_window(window: RecentWindow, limit: u32) -> Option<StoredPage> {
    let limit = limit as usize;
    let RecentWindow {
        mut messages,
        complete,
    } = window;
    if messages.len() < limit && !complete {
        return None;
    }
    let more = messages.len() > limit || !complete;
    messages.truncate(limit);
    let next = if more {
        messages.last().map(|last| PageStart::Before {
            message_id: last.id,
        })
    } else {
        None
    };
    Some(StoredPage { messages, next })
}
