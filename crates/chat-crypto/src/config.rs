//! Key configuration, as read from config files and environment variables.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::SecretString;
use serde::Deserialize;

/// The fewest bytes the decoded digest key may have (HMAC-SHA256's output size; a shorter key
/// would be the weak point).
pub const MIN_DIGEST_KEY_LEN: usize = 32;

/// The keys of a [`crate::MessageCipher`]. Deserializable from any serde source (e.g. a
/// `[crypto]` table read with the `config` crate):
///
/// ```toml
/// [crypto]
/// active_key_id = 2
/// digest_key = "…base64, at least 32 bytes…"
///
/// [crypto.keys]
/// "1" = "…base64, 32 bytes…"   # retired: still opens old messages
/// "2" = "…base64, 32 bytes…"   # active: seals new ones
/// ```
///
/// Key ids are strings in the map because config-file tables and environment variables (e.g.
/// `CHAT__CRYPTO__KEYS__2`) only give string keys; [`crate::MessageCipher::from_config`] parses
/// them. Secrets stay inside [`SecretString`] (zeroed on drop, redacted in `Debug`).
#[derive(Clone, Deserialize)]
pub struct CryptoConfig {
    /// The id of the key that seals new messages; must be one of `keys`.
    pub active_key_id: u16,
    /// Every key that may open stored messages (the active one and retired ones): key id as a
    /// decimal string, to a base64 (standard alphabet) 32-byte AES-256 key.
    pub keys: BTreeMap<String, SecretString>,
    /// The HMAC-SHA256 key for content digests, base64 (standard alphabet), at least
    /// [`MIN_DIGEST_KEY_LEN`] bytes once decoded.
    pub digest_key: SecretString,
}

/// Shows key ids only: this is what ends up in logs when a config is printed.
impl fmt::Debug for CryptoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoConfig")
            .field("active_key_id", &self.active_key_id)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("digest_key", &"[REDACTED]")
            .finish()
    }
}
