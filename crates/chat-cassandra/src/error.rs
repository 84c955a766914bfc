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
    #[error("cassandra")]
    Driver(#[source] Box<cdrs_tokio::error::Error>),
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
    // The three kinds below are recognised by the driver's or the server's wording, because
    // cdrs-tokio gives them no type of their own. Each function is the one place that knows its
    // wording; the tests at the end of this file pin it down.

    /// Whether the driver lost its connections (as opposed to a server's answer or a
    /// timeout): the session then needs replacing, see [`crate::session::Db`].
    ///
    /// Matches an I/O error, a session that could not be built, and two `General` errors of
    /// cdrs-tokio 9: "No nodes available in query plan!" (every node is marked down, which the
    /// driver never undoes once the last one went) and "Write channel failure!" (a connection's
    /// writer task died with its socket). Anything else is left to the caller's retry.
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
    ///
    /// Cassandra answers a paging state it cannot use with a message that names it (e.g.
    /// "Invalid value for the paging state"), as a Protocol, Invalid or Server error depending
    /// on where its parsing fails; all three count. Matched case-blind on "pag" so that
    /// "paging state" and "PagingState" (a Java exception's text) both count. Why it matters:
    /// a client's tampered or foreign cursor must become `InvalidCursor`, not `Unavailable`.
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

    /// Whether the error says the coordinator does not know a table or keyspace yet: right
    /// after a migration on a multi-node cluster, schema changes reach the other nodes by
    /// gossip, so preparing retries these for a while ([`crate::session::Db::prepare`]).
    ///
    /// Matches the server's Invalid answers "unconfigured table <name>" (an unknown table)
    /// and "Keyspace <name> does not exist" (and the "table <name> does not exist" of newer
    /// servers), anywhere in the error's text: the driver prints the server's message inside
    /// its own.
    pub(crate) fn is_schema_lag(&self) -> bool {
        let text = chat_domain::Report::of(self).to_string();
        text.contains("does not exist") || text.contains("unconfigured table")
    }
}

impl From<CassandraError> for Error {
    fn from(error: CassandraError) -> Self {
        match error {
            CassandraError::BadRow { .. } => Error::Corrupt(chat_domain::Cause::new(error)),
            CassandraError::Config(_) | CassandraError::Migration { .. } => {
                Error::Internal(chat_domain::Cause::new(error))
            }
            CassandraError::Driver(_) | CassandraError::Session(_) | CassandraError::Timeout(_) => {
                Error::Unavailable(chat_domain::Cause::new(error))
            }
        }
    }
}

/// The wording each error kind above is recognised by, with the driver's errors and the
/// server's error bodies built by hand as they arrive. Only driver errors are built here (no
/// other variant of [`CassandraError`]), so that the variants can change without these tests.
#[cfg(test)]
mod error_kind_tests {
    use std::net::SocketAddr;

    use cdrs_tokio::error::Error as DriverError;
    use cdrs_tokio::frame::message_error::{ErrorBody, ErrorType};

    use super::CassandraError;

    fn general(message: &str) -> CassandraError {
        DriverError::General(message.to_owned()).into()
    }

    fn server(ty: ErrorType, message: &str) -> CassandraError {
        DriverError::Server {
            body: ErrorBody {
                message: message.to_owned(),
                ty,
            },
            addr: SocketAddr::from(([127, 0, 0, 1], 9042)),
        }
        .into()
    }

    #[test]
    fn a_lost_node_or_connection_is_a_lost_connection() {
        assert!(general("No nodes available in query plan!").is_lost_connection());
        assert!(general("Write channel failure!").is_lost_connection());
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(CassandraError::from(DriverError::Io(reset)).is_lost_connection());
    }

    #[test]
    fn a_server_answer_or_another_driver_error_is_not_a_lost_connection() {
        assert!(!general("Unmatched stream id: 7").is_lost_connection());
        assert!(!server(ErrorType::Overloaded, "No nodes available").is_lost_connection());
        assert!(
            !CassandraError::from(DriverError::Timeout("no answer".to_owned()))
                .is_lost_connection()
        );
    }

    #[test]
    fn a_rejected_paging_state_is_a_bad_paging_state() {
        for ty in [ErrorType::Protocol, ErrorType::Invalid, ErrorType::Server] {
            assert!(server(ty, "Invalid value for the paging state").is_bad_paging_state());
        }
        let java = "java.lang.IllegalStateException: bad PagingState";
        assert!(server(ErrorType::Server, java).is_bad_paging_state());
    }

    #[test]
    fn other_errors_are_not_a_bad_paging_state() {
        assert!(!server(ErrorType::Invalid, "unconfigured table messages").is_bad_paging_state());
        assert!(!server(ErrorType::Overloaded, "paging state").is_bad_paging_state());
        assert!(!general("Invalid value for the paging state").is_bad_paging_state());
    }

    #[test]
    fn an_unknown_table_or_keyspace_is_schema_lag() {
        assert!(server(ErrorType::Invalid, "unconfigured table outbox_leases").is_schema_lag());
        assert!(server(ErrorType::Invalid, "Keyspace chat does not exist").is_schema_lag());
        assert!(server(ErrorType::Invalid, "table chat.outbox does not exist").is_schema_lag());
    }

    #[test]
    fn other_errors_are_not_schema_lag() {
        assert!(!server(ErrorType::Syntax, "line 1:7 no viable alternative").is_schema_lag());
        assert!(!general("No nodes available in query plan!").is_schema_lag());
    }
}
