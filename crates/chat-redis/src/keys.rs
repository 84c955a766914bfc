//! Key and channel names. Each carries its id as the hash tag (`{…}`), so every key of one chat
//! (or one user) lives in one slot — a script may touch them together — while different chats
//! spread over every master.

use chat_domain::{ChatId, CursorId, StoredMessage, UserId};

/// Names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The hash holding a chat's recent window: `_primed`, `_complete` and one field per
    /// message (see [`window_field`]).
    pub(crate) fn window(&self, chat: ChatId) -> String {
        format!("{}:recent:{{{chat}}}", self.prefix)
    }

    /// The JSON chat list of a user.
    pub(crate) fn chat_list(&self, user: UserId) -> String {
        format!("{}:chats:{{{user}}}", self.prefix)
    }

    /// A history cursor.
    pub(crate) fn cursor(&self, cursor: &CursorId) -> String {
        format!("{}:cursor:{{{cursor}}}", self.prefix)
    }

    /// The sharded pub/sub channel of a user's live events.
    pub(crate) fn user_channel(&self, user: UserId) -> String {
        format!("{}:user:{{{user}}}", self.prefix)
    }

    /// The user of a channel named by [`Keys::user_channel`].
    pub(crate) fn user_of_channel(&self, channel: &str) -> Option<UserId> {
        let rest = channel
            .strip_prefix(&self.prefix)?
            .strip_prefix(":user:{")?;
        let id = rest.strip_suffix('}')?;
        UserId::parse(id, "channel").ok()
    }
}

/// The field of a message in its window: zero-padded Unix milliseconds, then the id, so the
/// fields sort as messages do (oldest first) and the window script can trim the oldest without
/// decoding anything.
pub(crate) fn window_field(message: &StoredMessage) -> String {
    let millis = message
        .timestamp
        .unix_timestamp_nanos()
        .div_euclid(1_000_000)
        .max(0);
    format!("{millis:015}:{}", message.id.as_uuid().simple())
}

#[cfg(test)]
mod tests {
    use chat_domain::MessageIdGenerator;
    use chat_domain::testing::{FakeCipher, sealed_message};

    use super::*;

    #[test]
    fn keys_carry_their_id_as_the_hash_tag() {
        let keys = Keys::new("chat");
        let chat = ChatId::from_uuid(uuid::Uuid::nil());
        assert_eq!(
            keys.window(chat),
            "chat:recent:{00000000-0000-0000-0000-000000000000}"
        );
        let user = UserId::from_uuid(uuid::Uuid::max());
        let channel = keys.user_channel(user);
        assert_eq!(channel, "chat:user:{ffffffff-ffff-ffff-ffff-ffffffffffff}");
        assert_eq!(keys.user_of_channel(&channel), Some(user));
        assert_eq!(keys.user_of_channel("other:user:{x}"), None);
    }

    #[test]
    fn window_fields_sort_as_messages_do() {
        let ids = MessageIdGenerator::new();
        let (alice, bob) = (
            UserId::from_uuid(uuid::Uuid::new_v4()),
            UserId::from_uuid(uuid::Uuid::new_v4()),
        );
        let older = sealed_message(&FakeCipher, &ids, alice, bob, "m1", "hi");
        let newer = sealed_message(&FakeCipher, &ids, bob, alice, "m2", "hello");
        assert!(
            older.position() > newer.position(),
            "positions sort newest first"
        );
        assert!(window_field(&older) < window_field(&newer));
    }
}
