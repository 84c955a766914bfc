//! The envelope and the [`MessageCipher`].

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chat_domain::{Cipher, Error, KeyedDigest, Result, SealBinding, Sealed};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::config::{CryptoConfig, MIN_DIGEST_KEY_LEN};
use crate::error::CryptoError;

/// The envelope version this crate writes (and the only one it opens).
pub const ENVELOPE_VERSION: u8 = 1;

/// The length of an AES-256 key in bytes.
pub const KEY_LEN: usize = 32;

/// Bytes an envelope adds to its plaintext: version, key id, nonce and tag.
pub const ENVELOPE_OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// Version and key id: the part of the envelope authenticated as associated data.
const HEADER_LEN: usize = 3;
/// The GCM tag's length.
const TAG_LEN: usize = 16;
/// Where the ciphertext starts.
const BODY_START: usize = HEADER_LEN + NONCE_LEN;
/// The associated data: header then binding.
const AAD_LEN: usize = HEADER_LEN + 48;

/// Mints a fresh random 32-byte AES-256 key as base64, ready for a [`CryptoConfig`] (also fits
/// as a digest key). For operators rotating keys.
///
/// # Errors
/// [`CryptoError::Random`] when the system's random number generator fails.
pub fn generate_key_base64() -> Result<String, CryptoError> {
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| CryptoError::Random)?;
    let text = BASE64.encode(key);
    key.fill(0);
    Ok(text)
}

/// The key id a version-1 envelope names, or `None` when it is not one. Lets operators find the
/// messages still sealed under a retired key before removing it. Says nothing about whether the
/// envelope is authentic.
pub fn key_id_of(sealed: &Sealed) -> Option<u16> {
    match sealed.0.as_slice() {
        [ENVELOPE_VERSION, high, low, ..] if sealed.0.len() >= ENVELOPE_OVERHEAD => {
            Some(u16::from_be_bytes([*high, *low]))
        }
        _ => None,
    }
}

/// The [`Cipher`] port: AES-256-GCM envelopes under rotating keys, and HMAC-SHA256 digests.
/// See the crate documentation for the envelope layout and rotation. Cheap to share: wrap it in
/// an `Arc`.
pub struct MessageCipher {
    active_key_id: u16,
    keys: BTreeMap<u16, LessSafeKey>,
    digest_key: hmac::Key,
    random: SystemRandom,
}

impl MessageCipher {
    /// Decodes and checks every key of `config`. Surrounding whitespace in the base64 text
    /// (e.g. a trailing newline from a secrets file) is ignored.
    ///
    /// # Errors
    /// [`CryptoError::BadKeyId`], [`CryptoError::KeyNotBase64`] or
    /// [`CryptoError::BadKeyLength`] for a malformed key, [`CryptoError::ActiveKeyMissing`] when
    /// the active key is not configured, [`CryptoError::DigestKeyNotBase64`] or
    /// [`CryptoError::DigestKeyTooShort`] for a malformed digest key.
    pub fn from_config(config: &CryptoConfig) -> Result<Self, CryptoError> {
        let mut keys = BTreeMap::new();
        for (id_text, secret) in &config.keys {
            let key_id = parse_key_id(id_text)?;
            let bytes = decode(secret).ok_or(CryptoError::KeyNotBase64 { key_id })?;
            let length = bytes.expose_secret().len();
            if length != KEY_LEN {
                return Err(CryptoError::BadKeyLength { key_id, length });
            }
            let unbound = UnboundKey::new(&AES_256_GCM, bytes.expose_secret())
                .map_err(|_| CryptoError::BadKeyLength { key_id, length })?;
            keys.insert(key_id, LessSafeKey::new(unbound));
        }
        if !keys.contains_key(&config.active_key_id) {
            return Err(CryptoError::ActiveKeyMissing {
                key_id: config.active_key_id,
            });
        }
        let digest_bytes = decode(&config.digest_key).ok_or(CryptoError::DigestKeyNotBase64)?;
        let length = digest_bytes.expose_secret().len();
        if length < MIN_DIGEST_KEY_LEN {
            return Err(CryptoError::DigestKeyTooShort { length });
        }
        Ok(Self {
            active_key_id: config.active_key_id,
            keys,
            digest_key: hmac::Key::new(hmac::HMAC_SHA256, digest_bytes.expose_secret()),
            random: SystemRandom::new(),
        })
    }

    /// The id of the key new messages are sealed under.
    pub fn active_key_id(&self) -> u16 {
        self.active_key_id
    }

    /// Whether `digest` is the digest of `plaintext` under this cipher's digest key. Compares in
    /// constant time, so timing tells nothing about how much of a guess was right.
    pub fn verify_digest(&self, plaintext: &[u8], digest: &KeyedDigest) -> bool {
        hmac::verify(&self.digest_key, plaintext, &digest.0).is_ok()
    }
}

/// Shows key ids only, never key material.
impl fmt::Debug for MessageCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageCipher")
            .field("active_key_id", &self.active_key_id)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Cipher for MessageCipher {
    fn seal(&self, plaintext: &[u8], binding: &SealBinding) -> Result<Sealed> {
        let key = self
            .keys
            .get(&self.active_key_id)
            .ok_or_else(|| Error::Internal(format!("no key {}", self.active_key_id).into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| Error::from(CryptoError::Random))?;

        let mut envelope = Vec::with_capacity(ENVELOPE_OVERHEAD + plaintext.len());
        envelope.push(ENVELOPE_VERSION);
        envelope.extend_from_slice(&self.active_key_id.to_be_bytes());
        envelope.extend_from_slice(&nonce);
        envelope.extend_from_slice(plaintext);

        let aad = associated_data(&envelope[..HEADER_LEN], binding);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut envelope[BODY_START..],
            )
            .map_err(|_| Error::Internal("sealing failed".into()))?;
        envelope.extend_from_slice(tag.as_ref());
        Ok(Sealed(envelope))
    }

    fn open(&self, sealed: &Sealed, binding: &SealBinding) -> Result<Vec<u8>> {
        let envelope = sealed.0.as_slice();
        if envelope.len() < ENVELOPE_OVERHEAD {
            return Err(Error::Corrupt("envelope too short".into()));
        }
        let (header, rest) = envelope.split_at(HEADER_LEN);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let version = header[0];
        if version != ENVELOPE_VERSION {
            return Err(Error::Corrupt(
                format!("unsupported envelope version {version}").into(),
            ));
        }
        let key_id = u16::from_be_bytes([header[1], header[2]]);
        let key = self
            .keys
            .get(&key_id)
            .ok_or_else(|| Error::Corrupt(format!("unknown key id {key_id}").into()))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Error::Corrupt("bad nonce".into()))?;

        let mut in_out = body.to_vec();
        let length = key
            .open_in_place(
                nonce,
                Aad::from(associated_data(header, binding)),
                &mut in_out,
            )
            .map_err(|_| Error::Corrupt("authentication failed".into()))?
            .len();
        in_out.truncate(length);
        Ok(in_out)
    }

    fn digest(&self, plaintext: &[u8]) -> KeyedDigest {
        KeyedDigest(hmac::sign(&self.digest_key, plaintext).as_ref().to_vec())
    }
}

/// The header followed by the binding: what the tag authenticates besides the ciphertext.
fn associated_data(header: &[u8], binding: &SealBinding) -> [u8; AAD_LEN] {
    let mut aad = [0u8; AAD_LEN];
    aad[..HEADER_LEN].copy_from_slice(header);
    aad[HEADER_LEN..].copy_from_slice(&binding.associated_data());
    aad
}

/// Parses a configured key id, accepting only the plain decimal form so that `"1"` and `"01"`
/// cannot both name key 1.
fn parse_key_id(text: &str) -> Result<u16, CryptoError> {
    text.parse::<u16>()
        .ok()
        .filter(|id| id.to_string() == text)
        .ok_or_else(|| CryptoError::BadKeyId {
            key_id: text.to_owned(),
        })
}

/// Decodes base64 key text into bytes that are zeroed on drop; `None` when it is not base64.
fn decode(secret: &SecretString) -> Option<SecretSlice<u8>> {
    BASE64
        .decode(secret.expose_secret().trim())
        .ok()
        .map(SecretSlice::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_must_be_plain_decimal() {
        assert_eq!(parse_key_id("0"), Ok(0));
        assert_eq!(parse_key_id("65535"), Ok(65535));
        for bad in ["", "01", "+1", "-1", "65536", "one", " 1"] {
            assert_eq!(
                parse_key_id(bad),
                Err(CryptoError::BadKeyId {
                    key_id: bad.to_owned()
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn overhead_is_header_nonce_and_tag() {
        assert_eq!(ENVELOPE_OVERHEAD, 1 + 2 + 12 + 16);
    }

    #[test]
    fn key_id_of_reads_only_version_one_envelopes() {
        let mut envelope = vec![0u8; ENVELOPE_OVERHEAD];
        envelope[0] = ENVELOPE_VERSION;
        envelope[1] = 0x01;
        envelope[2] = 0x02;
        assert_eq!(key_id_of(&Sealed(envelope.clone())), Some(0x0102));
        envelope[0] = 2;
        assert_eq!(key_id_of(&Sealed(envelope)), None);
        assert_eq!(key_id_of(&Sealed(vec![1, 0, 1])), None);
    }

    #[test]
    fn generated_keys_are_32_random_bytes() {
        let one = generate_key_base64().expect("randomness");
        let two = generate_key_base64().expect("randomness");
        assert_eq!(BASE64.decode(&one).expect("base64").len(), KEY_LEN);
        assert_ne!(one, two);
    }

    #[test]
    fn crypto_errors_become_internal_domain_errors() {
        let error = chat_domain::Error::from(CryptoError::Random);
        assert!(matches!(error, chat_domain::Error::Internal(_)));
        assert_eq!(error.code(), "internal");
    }
}
