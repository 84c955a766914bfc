//! Identifiers. Each is a newtype so a user id can never be passed where a chat id is expected,
//! and each parses from text with a clear error naming the field.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::Error;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// The 16 bytes of the UUID, for adapters that key rows by bytes.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// Parses a client-supplied UUID; `field` names it in the error.
            ///
            /// # Errors
            /// [`Error::InvalidInput`] when `text` is not a UUID.
            pub fn parse(text: &str, field: &'static str) -> Result<Self, Error> {
                Uuid::parse_str(text)
                    .map(Self)
                    .map_err(|_| Error::invalid(field, "must be a UUID"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}

uuid_id!(
    /// A user, as named by the subject of the access token user-service issues.
    UserId
);
uuid_id!(
    /// A one-to-one chat. Derived from its two members (see [`ChatId::for_pair`]).
    ChatId
);
uuid_id!(
    /// A message. A UUIDv7 whose embedded Unix milliseconds are the message's timestamp, so any
    /// store can find a row keyed by `(chat_id, timestamp, message_id)` from the id alone.
    MessageId
);
uuid_id!(
    /// One outbox event, unique so that consumers can drop the duplicates that at-least-once
    /// delivery produces.
    EventId
);
uuid_id!(
    /// One live WebSocket connection, so an event can skip the connection it came from.
    ConnectionId
);

/// The namespace of derived chat ids. Changing it would orphan every stored chat.
const CHAT_NAMESPACE: Uuid = Uuid::from_u128(0x5c1f_0b3e_8e0a_4d6b_9a57_1e2f_c4d8_a901);

impl ChatId {
    /// The one chat of two users: a UUIDv5 of the sorted pair, so both sides (and any instance)
    /// compute the same id without reading anything first.
    pub fn for_pair(a: UserId, b: UserId) -> Self {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let mut name = [0u8; 32];
        name[..16].copy_from_slice(low.as_bytes());
        name[16..].copy_from_slice(high.as_bytes());
        Self(Uuid::new_v5(&CHAT_NAMESPACE, &name))
    }
}

impl MessageId {
    /// A fresh id carrying `at` (to the millisecond) and 74 random bits. Ids made this way in
    /// one millisecond order at random: the service issues ids with [`MessageIdGenerator`].
    pub fn generate(at: OffsetDateTime) -> Self {
        let nanos = at.unix_timestamp_nanos();
        let millis = u64::try_from(nanos.div_euclid(1_000_000)).unwrap_or(0);
        let timestamp = uuid::Timestamp::from_unix(
            uuid::NoContext,
            millis / 1000,
            u32::try_from(millis % 1000).unwrap_or(0) * 1_000_000,
        );
        Self(Uuid::new_v7(timestamp))
    }

    /// The Unix milliseconds stored in the id's first 48 bits (meaningful for UUIDv7 ids).
    pub fn unix_millis(&self) -> i64 {
        let bytes = self.0.as_bytes();
        let mut millis = [0u8; 8];
        millis[2..].copy_from_slice(&bytes[..6]);
        i64::from_be_bytes(millis)
    }

    /// The message's timestamp, from the id.
    pub fn timestamp(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.unix_millis()) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Whether this id is a UUIDv7, as every id this service issues is.
    pub fn is_time_ordered(&self) -> bool {
        self.0.get_version_num() == 7
    }
}

/// Issues message ids in strictly increasing order within this process, even within one
/// millisecond: the UUIDv7's 12-bit `rand_a` field is a counter, seeded at random in the lower
/// half each millisecond. The history order (newest first, then higher id first within a
/// millisecond) therefore shows one instance's messages in the order they were accepted.
/// Should 4096 ids be wanted in one millisecond, or the clock step back, the millisecond moves
/// forward instead, so ids never repeat or go back; the message's timestamp is always the one
/// in its id.
#[derive(Debug, Default)]
pub struct MessageIdGenerator {
    last: std::sync::Mutex<(u64, u16)>,
}

impl MessageIdGenerator {
    const COUNTER_MAX: u16 = 0x0FFF;

    /// A generator.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next id, at `now` (or just after the previous id, if that is later).
    pub fn next(&self, now: OffsetDateTime) -> MessageId {
        let random = *Uuid::new_v4().as_bytes();
        let now_ms = u64::try_from(crate::model::millis(now)).unwrap_or(0);
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let seed = u16::from_be_bytes([random[0], random[1]]) & 0x07FF;
        let (millis, counter) = match *last {
            (last_ms, counter) if now_ms <= last_ms && counter < Self::COUNTER_MAX => {
                (last_ms, counter + 1)
            }
            (last_ms, _) if now_ms <= last_ms => (last_ms + 1, seed),
            _ => (now_ms, seed),
        };
        *last = (millis, counter);
        drop(last);
        let mut counter_random = [0u8; 10];
        counter_random[..2].copy_from_slice(&counter.to_be_bytes());
        counter_random[2..].copy_from_slice(&random[2..10]);
        MessageId(uuid::Builder::from_unix_timestamp_millis(millis, &counter_random).into_uuid())
    }
}

impl EventId {
    /// A fresh, time-ordered event id, so outboxes drain oldest first.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl ConnectionId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }
}

/// The id a client gives each message it sends, so a retry after a lost ack stores nothing new.
/// 1 to 64 visible ASCII characters (a UUID fits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientMessageId(String);

impl ClientMessageId {
    /// The longest id accepted, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Validates a client's id.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when empty, longer than [`Self::MAX_LEN`], or not visible ASCII.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.is_empty() || text.len() > Self::MAX_LEN {
            return Err(Error::invalid(
                "client_msg_id",
                "must be 1 to 64 characters long",
            ));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "client_msg_id",
                "must be visible ASCII characters without spaces",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientMessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_id_is_the_same_from_both_sides() {
        let a = UserId::from_uuid(Uuid::new_v4());
        let b = UserId::from_uuid(Uuid::new_v4());
        assert_eq!(ChatId::for_pair(a, b), ChatId::for_pair(b, a));
        let c = UserId::from_uuid(Uuid::new_v4());
        assert_ne!(ChatId::for_pair(a, b), ChatId::for_pair(a, c));
    }

    #[test]
    fn message_id_carries_its_timestamp_to_the_millisecond() {
        let at = time::macros::datetime!(2026-11-25 09:30:15.123_456 UTC);
        let id = MessageId::generate(at);
        assert!(id.is_time_ordered());
        assert_eq!(
            id.timestamp(),
            time::macros::datetime!(2026-11-25 09:30:15.123 UTC)
        );
    }

    #[test]
    fn later_message_ids_sort_after_earlier_ones() {
        let first = MessageId::generate(time::macros::datetime!(2026-01-01 00:00:00.001 UTC));
        let second = MessageId::generate(time::macros::datetime!(2026-01-01 00:00:00.002 UTC));
        assert!(first < second);
    }

    #[test]
    fn generated_ids_increase_within_a_millisecond_and_keep_their_timestamp() {
        let generator = MessageIdGenerator::new();
        let at = time::macros::datetime!(2026-11-25 10:00:00.007 UTC);
        let ids: Vec<MessageId> = (0..10_000).map(|_| generator.next(at)).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(ids.iter().all(MessageId::is_time_ordered));
        assert_eq!(ids[0].timestamp(), at);
        // 10 000 ids overflow the 12-bit counter: the millisecond moves on, never back.
        assert!(ids[9_999].timestamp() > at);
        assert!(ids[9_999].timestamp() < at + time::Duration::milliseconds(10));
    }

    #[test]
    fn a_clock_stepping_back_does_not_reorder_ids() {
        let generator = MessageIdGenerator::new();
        let later = generator.next(time::macros::datetime!(2026-11-25 10:00:01 UTC));
        let earlier = generator.next(time::macros::datetime!(2026-11-25 10:00:00 UTC));
        assert!(earlier > later);
        assert_eq!(earlier.timestamp(), later.timestamp());
    }

    #[test]
    fn invalid_uuid_names_the_field() {
        let err = UserId::parse("not-a-uuid", "peer_id").unwrap_err();
        assert_eq!(err.code(), "invalid_field");
        assert!(err.to_string().contains("peer_id"));
    }

    #[test]
    fn client_message_id_rules() {
        assert!(ClientMessageId::parse("c-1").is_ok());
        assert!(ClientMessageId::parse("").is_err());
        assert!(ClientMessageId::parse("has space").is_err());
        assert!(ClientMessageId::parse(&"x".repeat(65)).is_err());
        assert!(ClientMessageId::parse(&"x".repeat(64)).is_ok());
    }
}
