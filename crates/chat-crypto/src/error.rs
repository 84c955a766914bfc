//! The crate's one error type.

/// Why a [`crate::MessageCipher`] could not be built or a key minted. Messages name key ids and
/// lengths only, never key material (not even the offending base64 character, which is why no
/// variant carries the decoder's own error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A key in `keys` is not valid base64 (standard alphabet, with padding).
    #[error("crypto key {key_id} is not valid base64")]
    KeyNotBase64 {
        /// The id of the key at fault.
        key_id: u16,
    },
    /// A key in `keys` does not decode to 32 bytes (AES-256 needs exactly 32).
    #[error("crypto key {key_id} is {length} bytes once decoded; AES-256 keys are 32 bytes")]
    BadKeyLength {
        /// The id of the key at fault.
        key_id: u16,
        /// How many bytes it decoded to.
        length: usize,
    },
    /// A key id in `keys` is not a decimal number from 0 to 65535 written plainly (no sign,
    /// no leading zeros), so it could not be told apart from another id.
    #[error("crypto key id {key_id:?} is not a decimal number from 0 to 65535")]
    BadKeyId {
        /// The key id as configured.
        key_id: String,
    },
    /// `active_key_id` names no key in `keys`.
    #[error("the active crypto key {key_id} is not among the configured keys")]
    ActiveKeyMissing {
        /// The configured active key id.
        key_id: u16,
    },
    /// The digest key is not valid base64 (standard alphabet, with padding).
    #[error("the digest key is not valid base64")]
    DigestKeyNotBase64,
    /// The digest key decodes to fewer than [`crate::MIN_DIGEST_KEY_LEN`] bytes.
    #[error("the digest key is {length} bytes once decoded; at least 32 are needed")]
    DigestKeyTooShort {
        /// How many bytes it decoded to.
        length: usize,
    },
    /// The system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// Every crypto error is the service's fault (bad configuration or a broken system), never the
/// client's: it becomes [`chat_domain::Error::Internal`].
impl From<CryptoError> for chat_domain::Error {
    fn from(error: CryptoError) -> Self {
        Self::Internal(chat_domain::Cause::new(error))
    }
}
