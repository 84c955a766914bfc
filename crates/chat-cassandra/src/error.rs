//! The adapter's errors, and how they map into the domain's.

use chat_domain::Error;

/// What went wrong talking to Cassandra.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CassandraError {
    /// A setting is unusable.
    #[error("cassandra config: {0}")]
    Config(String),
    /// The driver failed (connection, protocol, or a server error). Boxed: the driver's error
    /// is large, and every result of this crate carries this type.
    #[error("cassandra: {0}")]
    Driver(Box<cdrs_tokio::error::Error>),
    /// The session could not be set up.
    #[error("cassandra session: {0}")]
    Session(String),
    /// No answer within the request timeout.
    #[error("cassandra: no answer within {0} ms")]
    Timeout(u64),
    /// A row did not have the expected shape.
    #[error("cassandra: bad row in {table}: {reason}")]
    BadRow {
        /// The table read.
        table: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A migration failed.
    #[error("cassandra migration {version} ({name}): {reason}")]
    Migration {
        /// The migration's version.
        version: u32,
        /// Its file name.
        name: &'static str,
        /// The cause.
        reason: String,
    },
}

impl From<cdrs_tokio::error::Error> for CassandraError {
    fn from(error: cdrs_tokio::error::Error) -> Self {
        Self::Driver(Box::new(error))
    }
}

impl CassandraError {
    /// Whether the driver lost its connections (as opposed to a server's answer or a
    /// timeout): the session then needs replacing, see [`crate::session::Db`].
    pub(crate) fn is_lost_connection(&self) -> bool {
        match self {
            Self::Driver(error) => match error.as_ref() {
                cdrs_tokio::error::Error::Io(_) => true,
                cdrs_tokio::error::Error::General(message) => {
                    message.contains("No nodes available") || message.contains("channel")
                }
                _ => false,
            },
            Self::Session(_) => true,
            _ => false,
        }
    }

    /// Whether a server error says the paging state is not one it made for this query.
    pub(crate) fn is_bad_paging_state(&self) -> bool {
        match self {
            Self::Driver(error) => {
                let cdrs_tokio::error::Error::Server { body, .. } = error.as_ref() else {
                    return false;
                };
                let message = body.message.to_ascii_lowercase();
                matches!(
                    body.ty,
                    cdrs_tokio::frame::message_error::ErrorType::Protocol
                        | cdrs_tokio::frame::message_error::ErrorType::Invalid
                        | cdrs_tokio::frame::message_error::ErrorType::Server
                ) && message.contains("pag")
            }
            _ => false,
        }
    }
}

impl From<CassandraError> for Error {
    fn from(error: CassandraError) -> Self {
        match error {
            CassandraError::BadRow { .. } => Error::Corrupt(error.to_string()),
            CassandraError::Config(_) | CassandraError::Migration { .. } => {
                Error::Internal(error.to_string())
            }
            CassandraError::Driver(_) | CassandraError::Session(_) | CassandraError::Timeout(_) => {
                Error::Unavailable(error.to_string())
            }
        }
    }
}
