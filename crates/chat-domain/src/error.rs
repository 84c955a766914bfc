//! The one error type of the domain. Adapters map their own failures into it at the boundary,
//! so the use cases and the server never see a driver's type.

/// What went wrong, in terms a client and an operator can act on. [`Error::code`] is the stable
/// machine-readable code that the server puts in error frames and HTTP bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A field of the request is malformed.
    #[error("{field}: {reason}")]
    InvalidInput {
        /// The request field at fault, as the client named it.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The message has no content.
    #[error("message content is empty")]
    EmptyContent,
    /// The message content is over the configured limit.
    #[error("message content is {size} bytes; the limit is {limit}")]
    ContentTooLarge {
        /// The content's size in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The user asked to chat with themselves.
    #[error("a chat needs two different users")]
    SelfChat,
    /// No such chat, or the user is not one of its members (the two are not told apart, so
    /// nobody learns which chats exist).
    #[error("no such chat")]
    ChatNotFound,
    /// No such message in the chat.
    #[error("no such message in this chat")]
    MessageNotFound,
    /// The user may not do this (e.g. read another user's chat list).
    #[error("{0}")]
    Forbidden(String),
    /// The history cursor is unknown, expired, or was issued to another user or for another chat.
    #[error("the cursor is unknown, expired, or not issued for this chat and user")]
    InvalidCursor,
    /// A backing service did not answer in time or refused the call. Retrying later may work.
    #[error("{0} is unavailable")]
    Unavailable(String),
    /// Stored data failed to decode or decrypt.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A bug or an unexpected state.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// The stable code clients match on. Documented in `docs/protocol.md`; never rename one.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput { .. } => "invalid_field",
            Self::EmptyContent => "empty_content",
            Self::ContentTooLarge { .. } => "content_too_large",
            Self::SelfChat => "invalid_recipient",
            Self::ChatNotFound => "unknown_chat",
            Self::MessageNotFound => "unknown_message",
            Self::Forbidden(_) => "forbidden",
            Self::InvalidCursor => "invalid_cursor",
            Self::Unavailable(_) => "unavailable",
            Self::Corrupt(_) | Self::Internal(_) => "internal",
        }
    }

    /// Whether the client's request was at fault (as opposed to the service).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Self::Unavailable(_) | Self::Corrupt(_) | Self::Internal(_)
        )
    }
}

/// The result type of every port and use case.
pub type Result<T, E = Error> = std::result::Result<T, E>;
