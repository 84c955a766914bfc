//! # chat-crypto
//!
//! The [`chat_domain::Cipher`] port implemented with `ring`: message content is sealed at rest
//! with AES-256-GCM, bound to the row it belongs to, under rotating keys; and a keyed digest
//! (HMAC-SHA256) of the plaintext is computed alongside. chat-message-service seals with it and
//! notification-service opens the sealed content inside events with it, so everything public
//! here is a stable contract: an envelope written today must open with any later version.
//!
//! ## Layout
//! A sealed message ([`chat_domain::Sealed`]) is one envelope:
//!
//! ```text
//! version (1 byte, = 1) | key_id (2 bytes, big-endian) | nonce (12 bytes) | ciphertext | tag (16 bytes)
//! ```
//!
//! - `version` lets the format change later without guessing: an unknown version fails to open.
//! - `key_id` names the key the message was sealed under, so keys can rotate (below).
//! - `nonce` is fresh and random for every message (96 bits from the system's generator).
//! - `ciphertext` is as long as the plaintext; `tag` is the GCM authentication tag.
//!
//! The associated data authenticated with the ciphertext is the 3 header bytes (`version`,
//! `key_id`) followed by [`chat_domain::SealBinding::associated_data`] (chat id, message id,
//! sender id: 48 bytes). So a changed header, a flipped byte anywhere, or a ciphertext copied
//! into another row (another chat, message or sender) all fail to open with
//! [`chat_domain::Error::Corrupt`]. An envelope is [`ENVELOPE_OVERHEAD`] bytes longer than its
//! plaintext.
//!
//! ## Keys and rotation
//! Keys come from configuration ([`CryptoConfig`]) as base64 text: a map from key id (a decimal
//! string such as `"1"`) to a 32-byte AES key, plus the id of the **active** key. New messages
//! are always sealed under the active key; opening uses whichever configured key the envelope
//! names. To rotate:
//!
//! 1. mint a key ([`generate_key_base64`]) and add it under a new id;
//! 2. make that id active (every instance, and notification-service, must know the new key
//!    before any instance seals with it: add it everywhere first, then switch `active_key_id`);
//! 3. keep the old ids as retired keys until no stored message (and no pending event) uses them
//!    ([`key_id_of`] tells which key an envelope names); only then remove them.
//!
//! **Nonce bound:** random 96-bit nonces are safe for about 2^32 messages per key (beyond that
//! the chance of a repeated nonce, which breaks GCM, stops being negligible). Rotate to a new
//! key well before any key has sealed that many messages.
//!
//! Key material is never logged and never put in an error: the `Debug` output of
//! [`CryptoConfig`] and [`MessageCipher`] shows key ids only, and [`CryptoError`] names key ids
//! and lengths, never bytes.
//!
//! ## Digest
//! [`MessageCipher`]'s [`chat_domain::Cipher::digest`] is HMAC-SHA256 of the plaintext under a
//! separate digest key, returned as a [`chat_domain::KeyedDigest`] (a hash, not sealed
//! content: nothing opens it). It lets the service compare contents (deduplication, integrity
//! checks after opening) without storing or exposing them. It is keyed on purpose: a plain hash of a
//! short message could be reversed by hashing guesses. The digest key does not rotate with the
//! sealing keys; changing it changes every digest.
#![forbid(unsafe_code)]

mod cipher;
mod config;
mod error;

pub use cipher::{
    ENVELOPE_OVERHEAD, ENVELOPE_VERSION, KEY_LEN, MessageCipher, generate_key_base64, key_id_of,
};
pub use config::{CryptoConfig, MIN_DIGEST_KEY_LEN};
pub use error::CryptoError;
