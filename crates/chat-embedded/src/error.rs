//! [`EmbeddedError`], the one error type of this crate, and its mapping into
//! [`chat_domain::Error`] at the port boundary.

use std::path::PathBuf;

/// What went wrong in an embedded adapter.
///
/// Constructors ([`crate::EmbeddedStore::open`], [`crate::JsonLinesPublisher::open`]) return it
/// directly; the port implementations map it into [`chat_domain::Error`]: storage and I/O
/// failures become [`chat_domain::Error::Unavailable`], undecodable rows
/// [`chat_domain::Error::Corrupt`], a failed background task [`chat_domain::Error::Internal`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedError {
    /// The database file is held by another process (or another handle in this process).
    /// The embedded profile is single-instance: run one process per data directory.
    #[error(
        "the database {} is already open in another process or handle; the embedded profile \
         runs a single instance per data directory",
        path.display()
    )]
    AlreadyOpen {
        /// The database file.
        path: PathBuf,
    },
    /// The database file could not be opened or created.
    #[error("could not open the database {}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What redb reported.
        #[source]
        source: redb::Error,
    },
    /// A read or write of the database failed.
    #[error("embedded store")]
    Database(#[from] redb::Error),
    /// A file operation outside the database failed (directories, the event log).
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done, e.g. "could not append to the event log".
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A stored row does not decode.
    #[error("undecodable {what}: {reason}")]
    Corrupt {
        /// Which kind of row, e.g. "message".
        what: &'static str,
        /// Why it does not decode.
        reason: String,
    },
    /// A value could not be encoded for storage.
    #[error("could not encode {what}: {reason}")]
    Encode {
        /// Which kind of value.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A blocking task on tokio's blocking pool panicked or was cancelled.
    #[error("a background task failed: {0}")]
    Task(String),
}

impl EmbeddedError {
    pub(crate) fn corrupt(what: &'static str, reason: impl ToString) -> Self {
        Self::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

macro_rules! from_redb {
    ($($error:ty),* $(,)?) => {
        $(
            impl From<$error> for EmbeddedError {
                fn from(error: $error) -> Self {
                    Self::Database(redb::Error::from(error))
                }
            }
        )*
    };
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
);

impl From<tokio::task::JoinError> for EmbeddedError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::Task(error.to_string())
    }
}

impl From<EmbeddedError> for chat_domain::Error {
    fn from(error: EmbeddedError) -> Self {
        match error {
            EmbeddedError::Corrupt { .. } => Self::Corrupt(chat_domain::Cause::new(error)),
            EmbeddedError::Database(redb::Error::Corrupted(_)) => {
                Self::Corrupt(chat_domain::Cause::new(error))
            }
            EmbeddedError::Encode { .. } | EmbeddedError::Task(_) => {
                Self::Internal(chat_domain::Cause::new(error))
            }
            EmbeddedError::Database(_)
            | EmbeddedError::AlreadyOpen { .. }
            | EmbeddedError::Open { .. }
            | EmbeddedError::Io { .. } => Self::Unavailable(chat_domain::Cause::new(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_are_unavailable_and_bad_rows_corrupt() {
        let storage: chat_domain::Error =
            EmbeddedError::Database(redb::Error::DatabaseClosed).into();
        assert!(
            matches!(storage, chat_domain::Error::Unavailable(_))
                && storage
                    .report()
                    .to_string()
                    .starts_with("a backing service is unavailable: embedded store: ")
        );
        let row: chat_domain::Error = EmbeddedError::corrupt("message", "bad json").into();
        assert!(matches!(row, chat_domain::Error::Corrupt(_)));
        let task: chat_domain::Error = EmbeddedError::Task("panicked".to_owned()).into();
        assert!(matches!(task, chat_domain::Error::Internal(_)));
    }
}
