//! The [`PageStart::Resume`](chat_domain::PageStart::Resume) state of a history page: the
//! driver's paging state, bound to the chat and the query it was made for, so a client's cursor
//! cannot be replayed against another chat or query.

use chat_domain::{ChatId, MessageId};
use uuid::Uuid;

/// The format of this adapter's resume state.
const RESUME_VERSION: u8 = 1;

/// Which query a paging state belongs to: Cassandra only accepts a state with the query and
/// values that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Query {
    Newest,
    Before(MessageId),
}

/// The resume state for `paging_state`, the driver's state after a page of `query` in `chat`.
pub(super) fn encode_resume(chat: ChatId, query: Query, paging_state: &[u8]) -> Vec<u8> {
    let mut state = Vec::with_capacity(34 + paging_state.len());
    state.push(RESUME_VERSION);
    state.extend_from_slice(chat.as_bytes());
    match query {
        Query::Newest => state.push(0),
        Query::Before(id) => {
            state.push(1);
            state.extend_from_slice(id.as_bytes());
        }
    }
    state.extend_from_slice(paging_state);
    state
}

/// The query and the driver's paging state in a client's resume `state` for `chat`.
///
/// # Errors
/// [`chat_domain::Error::InvalidCursor`] when the state is not one [`encode_resume`] made for
/// `chat` (another version, another chat, truncated, or without a paging state).
pub(super) fn decode_resume(chat: ChatId, state: &[u8]) -> chat_domain::Result<(Query, Vec<u8>)> {
    let invalid = || chat_domain::Error::InvalidCursor;
    let (&version, rest) = state.split_first().ok_or_else(invalid)?;
    let (state_chat, rest) = rest.split_first_chunk::<16>().ok_or_else(invalid)?;
    if version != RESUME_VERSION || state_chat != chat.as_bytes() {
        return Err(invalid());
    }
    let (&kind, rest) = rest.split_first().ok_or_else(invalid)?;
    let (query, paging_state) = match kind {
        0 => (Query::Newest, rest),
        1 => {
            let (id, rest) = rest.split_first_chunk::<16>().ok_or_else(invalid)?;
            (
                Query::Before(MessageId::from_uuid(Uuid::from_bytes(*id))),
                rest,
            )
        }
        _ => return Err(invalid()),
    };
    if paging_state.is_empty() {
        return Err(invalid());
    }
    Ok((query, paging_state.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    #[test]
    fn resume_state_round_trips_and_is_bound_to_its_chat_and_query() {
        let chat = ChatId::from_uuid(Uuid::new_v4());
        let id = MessageId::generate(OffsetDateTime::now_utc());
        for query in [Query::Newest, Query::Before(id)] {
            let state = encode_resume(chat, query, b"driver-state");
            assert_eq!(
                decode_resume(chat, &state).unwrap(),
                (query, b"driver-state".to_vec())
            );
            let other = ChatId::from_uuid(Uuid::new_v4());
            assert!(decode_resume(other, &state).is_err());
        }
        assert!(decode_resume(chat, &[]).is_err());
        assert!(decode_resume(chat, &[9; 40]).is_err());
        assert!(decode_resume(chat, &encode_resume(chat, Query::Newest, b"")).is_err());
    }
}
