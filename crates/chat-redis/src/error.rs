//! [`RedisError`], the one error type of this crate, and its mapping into
//! [`chat_domain::Error`] at the port boundary.

/// What went wrong in the Redis adapter.
///
/// The constructors return it directly; the port implementations map it into
/// [`chat_domain::Error`]: anything about reaching Redis becomes
/// [`chat_domain::Error::Unavailable`], an undecodable entry [`chat_domain::Error::Corrupt`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// A setting is wrong.
    #[error("redis config: {0}")]
    Config(String),
    /// A command failed: refused connection, timeout, cluster down, or a server error.
    #[error("redis")]
    Command(#[from] fred::error::Error),
    /// Redis was failing a moment ago; calls fail at once until `retry_after_ms` has passed.
    #[error("redis is degraded (retrying shortly)")]
    Degraded,
    /// An entry read from Redis does not decode.
    #[error("undecodable {what} in redis: {reason}")]
    Corrupt {
        /// Which kind of entry.
        what: &'static str,
        /// Why it does not decode.
        reason: String,
    },
    /// A value could not be encoded.
    #[error("could not encode {what}: {reason}")]
    Encode {
        /// Which kind of value.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl From<RedisError> for chat_domain::Error {
    fn from(error: RedisError) -> Self {
        match error {
            RedisError::Corrupt { .. } => Self::Corrupt(chat_domain::Cause::new(error)),
            RedisError::Config(_) | RedisError::Encode { .. } => {
                Self::Internal(chat_domain::Cause::new(error))
            }
            RedisError::Command(_) | RedisError::Degraded => {
                Self::Unavailable(chat_domain::Cause::new(error))
            }
        }
    }
}
