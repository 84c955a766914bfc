//! The one error type of the domain. Adapters map their own failures into it at the boundary,
//! so the use cases and the server never see a driver's type — but the failure itself travels
//! along as the error's [`source`](std::error::Error::source), so that the boundary that logs it
//! ([`Error::report`]) logs the whole chain, down to the driver's own cause.

use std::fmt;
use std::sync::Arc;

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
    #[error("a backing service is unavailable")]
    Unavailable(#[source] Cause),
    /// Stored data failed to decode or decrypt.
    #[error("stored data is corrupt")]
    Corrupt(#[source] Cause),
    /// A bug or an unexpected state.
    #[error("internal error")]
    Internal(#[source] Cause),
}

/// The failure under an [`Error::Unavailable`], [`Error::Corrupt`] or [`Error::Internal`]: an
/// adapter's own error (which keeps its driver's error as its source in turn), or a plain
/// description where the domain itself found the fault.
///
/// It is transparent: it reads as the error it holds and hands out that error's source, so a
/// chain printed by [`Error::report`] names each failure once. Shared (`Arc`), so that
/// [`Error`] stays `Clone`; two causes are equal when they read the same (tests compare errors).
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    /// Keeps `error`, with its own chain of sources.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }

    /// `error`, under a description of what was being done (`message 42 is not UTF-8`).
    pub fn in_context(
        context: impl Into<String>,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(InContext {
            context: context.into(),
            source: Box::new(error),
        }))
    }

    /// A cause that is only a description (no error underneath).
    pub fn described(description: impl Into<String>) -> Self {
        Self(Arc::new(Described(description.into())))
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, formatter)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, formatter)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl Eq for Cause {}

impl From<&str> for Cause {
    fn from(description: &str) -> Self {
        Self::described(description)
    }
}

impl From<String> for Cause {
    fn from(description: String) -> Self {
        Self::described(description)
    }
}

/// A description used as an error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Described(String);

/// An error under a description of what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
struct InContext {
    context: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// An error and every cause under it, as one line: `what failed: why: why that failed`.
pub struct Report<'a>(&'a (dyn std::error::Error + 'static));

impl<'a> Report<'a> {
    /// The chain of `error`.
    pub fn of(error: &'a (dyn std::error::Error + 'static)) -> Self {
        Self(error)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(formatter, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// An [`Error::Unavailable`] caused by `error`.
    pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Cause::new(error))
    }

    /// An [`Error::Corrupt`] caused by `error` (or a description: `Error::Corrupt("…".into())`).
    pub fn corrupt(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Corrupt(Cause::new(error))
    }

    /// An [`Error::Internal`] caused by `error` (or a description: `Error::Internal("…".into())`).
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Cause::new(error))
    }

    /// This error and every cause under it, for the one log line at the boundary.
    pub fn report(&self) -> Report<'_> {
        Report::of(self)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cassandra: no answer")]
    struct Adapter(#[source] std::io::Error);

    #[test]
    fn a_report_names_every_cause_once_down_to_the_driver() {
        let driver = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        let error = Error::unavailable(Adapter(driver));
        assert_eq!(
            error.report().to_string(),
            "a backing service is unavailable: cassandra: no answer: connection reset"
        );
        // The client-facing text stays free of internals.
        assert_eq!(error.to_string(), "a backing service is unavailable");
    }

    #[test]
    fn a_described_cause_reads_as_its_description_and_compares_by_it() {
        let error = Error::Corrupt("envelope too short".into());
        assert_eq!(
            error.report().to_string(),
            "stored data is corrupt: envelope too short"
        );
        assert_eq!(
            error,
            Error::Corrupt(Cause::described("envelope too short"))
        );
        assert_ne!(error, Error::Corrupt("bad nonce".into()));
        let in_context = Error::Corrupt(Cause::in_context(
            "message 7 is not UTF-8",
            std::io::Error::other("invalid byte"),
        ));
        assert_eq!(
            in_context.report().to_string(),
            "stored data is corrupt: message 7 is not UTF-8: invalid byte"
        );
        let cloned = error.clone();
        assert_eq!(cloned, error);
    }
}
