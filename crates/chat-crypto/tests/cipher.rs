//! The behaviour of [`MessageCipher`] through its public API and the [`Cipher`] port.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chat_crypto::{
    CryptoConfig, CryptoError, ENVELOPE_OVERHEAD, MessageCipher, generate_key_base64, key_id_of,
};
use chat_domain::{ChatId, Cipher, Error, KeyedDigest, MessageId, SealBinding, Sealed, UserId};
use ring::hmac;
use secrecy::SecretString;
use uuid::Uuid;

const DIGEST_KEY: [u8; 32] = [0x42; 32];

fn key(fill: u8) -> [u8; 32] {
    [fill; 32]
}

fn config(active: u16, keys: &[(u16, [u8; 32])]) -> CryptoConfig {
    CryptoConfig {
        active_key_id: active,
        keys: keys
            .iter()
            .map(|(id, bytes)| (id.to_string(), SecretString::from(BASE64.encode(bytes))))
            .collect(),
        digest_key: SecretString::from(BASE64.encode(DIGEST_KEY)),
    }
}

fn cipher(active: u16, keys: &[(u16, [u8; 32])]) -> MessageCipher {
    MessageCipher::from_config(&config(active, keys)).expect("valid config")
}

fn binding() -> SealBinding {
    SealBinding {
        chat_id: ChatId::from_uuid(Uuid::new_v4()),
        message_id: MessageId::from_uuid(Uuid::new_v4()),
        sender_id: UserId::from_uuid(Uuid::new_v4()),
    }
}

fn corrupt_reason(result: chat_domain::Result<Vec<u8>>) -> String {
    match result {
        Err(Error::Corrupt(reason)) => reason.to_string(),
        other => panic!("expected a Corrupt error, got {other:?}"),
    }
}

#[test]
fn sealed_content_opens_to_the_same_bytes() {
    let cipher = cipher(1, &[(1, key(1))]);
    let big = "x".repeat(16 * 1024);
    for text in ["", "hello", "héllo wörld, 你好, 👋🏽", big.as_str()] {
        let binding = binding();
        let sealed = cipher.seal(text.as_bytes(), &binding).expect("seal");
        assert_eq!(sealed.0.len(), text.len() + ENVELOPE_OVERHEAD);
        let opened = cipher.open(&sealed, &binding).expect("open");
        assert_eq!(opened, text.as_bytes());
    }
}

#[test]
fn envelope_starts_with_version_and_active_key_id() {
    let cipher = cipher(258, &[(258, key(1))]);
    let sealed = cipher.seal(b"hi", &binding()).expect("seal");
    assert_eq!(&sealed.0[..3], &[1, 0x01, 0x02]);
    assert_eq!(key_id_of(&sealed), Some(258));
    assert_eq!(cipher.active_key_id(), 258);
}

#[test]
fn sealing_the_same_text_twice_gives_different_envelopes() {
    let cipher = cipher(1, &[(1, key(1))]);
    let binding = binding();
    let one = cipher.seal(b"same text", &binding).expect("seal");
    let two = cipher.seal(b"same text", &binding).expect("seal");
    assert_ne!(one, two);
    assert_ne!(one.0[3..15], two.0[3..15], "nonces must differ");
}

#[test]
fn flipping_any_single_byte_of_the_envelope_fails_to_open() {
    let cipher = cipher(1, &[(1, key(1))]);
    let binding = binding();
    let sealed = cipher.seal(b"do not touch", &binding).expect("seal");
    for index in 0..sealed.0.len() {
        for flip in [0x01, 0x80] {
            let mut tampered = sealed.clone();
            tampered.0[index] ^= flip;
            let result = cipher.open(&tampered, &binding);
            assert!(
                matches!(result, Err(Error::Corrupt(_))),
                "byte {index} flipped with {flip:#x} still opened: {result:?}"
            );
        }
    }
}

#[test]
fn truncated_or_extended_envelopes_fail_to_open() {
    let cipher = cipher(1, &[(1, key(1))]);
    let binding = binding();
    let sealed = cipher.seal(b"content", &binding).expect("seal");
    for length in 0..sealed.0.len() {
        let cut = Sealed(sealed.0[..length].to_vec());
        assert!(matches!(
            cipher.open(&cut, &binding),
            Err(Error::Corrupt(_))
        ));
    }
    assert_eq!(
        corrupt_reason(cipher.open(&Sealed(vec![1, 0, 1]), &binding)),
        "envelope too short"
    );
    let mut longer = sealed;
    longer.0.push(0);
    assert_eq!(
        corrupt_reason(cipher.open(&longer, &binding)),
        "authentication failed"
    );
}

#[test]
fn opening_with_another_chat_message_or_sender_fails() {
    let cipher = cipher(1, &[(1, key(1))]);
    let binding = binding();
    let sealed = cipher.seal(b"bound to its row", &binding).expect("seal");
    let other = self::binding();
    for moved in [
        SealBinding {
            chat_id: other.chat_id,
            ..binding
        },
        SealBinding {
            message_id: other.message_id,
            ..binding
        },
        SealBinding {
            sender_id: other.sender_id,
            ..binding
        },
    ] {
        assert_eq!(
            corrupt_reason(cipher.open(&sealed, &moved)),
            "authentication failed"
        );
    }
}

#[test]
fn opening_under_another_key_with_the_same_id_fails() {
    let binding = binding();
    let sealed = cipher(1, &[(1, key(1))])
        .seal(b"secret", &binding)
        .expect("seal");
    let other = cipher(1, &[(1, key(9))]);
    assert_eq!(
        corrupt_reason(other.open(&sealed, &binding)),
        "authentication failed"
    );
}

#[test]
fn rotation_seals_with_the_new_key_and_opens_old_messages_until_the_key_is_removed() {
    let binding = binding();
    let before = cipher(1, &[(1, key(1))]);
    let old = before.seal(b"old message", &binding).expect("seal");
    assert_eq!(key_id_of(&old), Some(1));

    let rotated = cipher(2, &[(1, key(1)), (2, key(2))]);
    assert_eq!(rotated.open(&old, &binding).expect("open"), b"old message");
    let new = rotated.seal(b"new message", &binding).expect("seal");
    assert_eq!(key_id_of(&new), Some(2));
    assert_eq!(&new.0[1..3], &[0, 2]);
    assert_eq!(rotated.open(&new, &binding).expect("open"), b"new message");

    let retired = cipher(2, &[(2, key(2))]);
    assert_eq!(retired.open(&new, &binding).expect("open"), b"new message");
    let reason = corrupt_reason(retired.open(&old, &binding));
    assert_eq!(reason, "unknown key id 1");
}

#[test]
fn open_errors_name_no_plaintext_and_no_key_material() {
    let binding = binding();
    let sealed = cipher(1, &[(1, key(1))])
        .seal(b"my secret words", &binding)
        .expect("seal");
    let other = cipher(1, &[(1, key(7))]);
    let text = other
        .open(&sealed, &self::binding())
        .expect_err("must fail")
        .to_string();
    assert!(!text.contains("secret"));
    assert!(!text.contains(&BASE64.encode(key(1))));
    assert!(!text.contains(&BASE64.encode(key(7))));
}

#[test]
fn key_of_wrong_length_is_a_config_error() {
    let mut config = config(1, &[(1, key(1))]);
    config
        .keys
        .insert("1".to_owned(), BASE64.encode([1u8; 16]).into());
    assert_eq!(
        MessageCipher::from_config(&config).expect_err("must fail"),
        CryptoError::BadKeyLength {
            key_id: 1,
            length: 16
        }
    );
}

#[test]
fn key_that_is_not_base64_is_a_config_error() {
    let mut config = config(1, &[(1, key(1))]);
    config
        .keys
        .insert("3".to_owned(), "not*base64!".to_owned().into());
    let error = MessageCipher::from_config(&config).expect_err("must fail");
    assert_eq!(error, CryptoError::KeyNotBase64 { key_id: 3 });
    assert!(!error.to_string().contains("not*base64!"));
}

#[test]
fn key_id_that_is_not_a_number_is_a_config_error() {
    let mut config = config(1, &[(1, key(1))]);
    config
        .keys
        .insert("01".to_owned(), BASE64.encode(key(2)).into());
    assert_eq!(
        MessageCipher::from_config(&config).expect_err("must fail"),
        CryptoError::BadKeyId {
            key_id: "01".to_owned()
        }
    );
}

#[test]
fn missing_active_key_is_a_config_error() {
    let config = config(2, &[(1, key(1))]);
    assert_eq!(
        MessageCipher::from_config(&config).expect_err("must fail"),
        CryptoError::ActiveKeyMissing { key_id: 2 }
    );
    let empty = CryptoConfig {
        keys: BTreeMap::new(),
        ..config
    };
    assert_eq!(
        MessageCipher::from_config(&empty).expect_err("must fail"),
        CryptoError::ActiveKeyMissing { key_id: 2 }
    );
}

#[test]
fn short_or_malformed_digest_key_is_a_config_error() {
    let mut config = config(1, &[(1, key(1))]);
    config.digest_key = BASE64.encode([1u8; 31]).into();
    assert_eq!(
        MessageCipher::from_config(&config).expect_err("must fail"),
        CryptoError::DigestKeyTooShort { length: 31 }
    );
    config.digest_key = "%%%".to_owned().into();
    assert_eq!(
        MessageCipher::from_config(&config).expect_err("must fail"),
        CryptoError::DigestKeyNotBase64
    );
    config.digest_key = BASE64.encode([1u8; 64]).into();
    assert!(MessageCipher::from_config(&config).is_ok());
}

#[test]
fn config_errors_become_internal_domain_errors() {
    let error = Error::from(CryptoError::ActiveKeyMissing { key_id: 2 });
    assert!(matches!(error, Error::Internal(_)));
}

#[test]
fn keys_with_surrounding_whitespace_are_accepted() {
    let mut config = config(1, &[(1, key(1))]);
    config.keys.insert(
        "1".to_owned(),
        format!("{}\n", BASE64.encode(key(1))).into(),
    );
    let binding = binding();
    let sealed = cipher(1, &[(1, key(1))])
        .seal(b"x", &binding)
        .expect("seal");
    let cipher = MessageCipher::from_config(&config).expect("valid config");
    assert_eq!(cipher.open(&sealed, &binding).expect("open"), b"x");
}

#[test]
fn debug_output_of_config_and_cipher_shows_key_ids_but_no_key_material() {
    let config = config(2, &[(1, key(1)), (2, key(2))]);
    let cipher = MessageCipher::from_config(&config).expect("valid config");
    let secrets = [
        BASE64.encode(key(1)),
        BASE64.encode(key(2)),
        BASE64.encode(DIGEST_KEY),
    ];
    for debug in [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{cipher:?}"),
        format!("{cipher:#?}"),
    ] {
        for secret in &secrets {
            assert!(!debug.contains(secret.as_str()), "{debug}");
            assert!(!debug.contains(&secret[..8]), "{debug}");
        }
        assert!(!debug.contains("1, 1, 1"), "{debug}");
        assert!(!debug.contains("66, 66"), "{debug}");
        assert!(debug.contains('1') && debug.contains('2'), "{debug}");
    }
}

#[test]
fn digest_is_hmac_sha256_under_the_digest_key() {
    let cipher = cipher(1, &[(1, key(1))]);
    let text = b"digest me";
    let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &DIGEST_KEY), text);
    let digest = cipher.digest(text);
    assert_eq!(digest.0, expected.as_ref());
    assert_eq!(digest.0.len(), 32);
    assert_eq!(cipher.digest(text), digest, "digests are deterministic");
    assert_ne!(cipher.digest(b"digest me!"), digest);
}

#[test]
fn digest_matches_rfc_4231_test_case_6() {
    let mut config = config(1, &[(1, key(1))]);
    config.digest_key = BASE64.encode([0xaa; 131]).into();
    let cipher = MessageCipher::from_config(&config).expect("valid config");
    let digest = cipher.digest(b"Test Using Larger Than Block-Size Key - Hash Key First");
    let hex: String = digest.0.iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(
        hex,
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn digest_is_keyed_so_another_digest_key_gives_another_digest() {
    let one = cipher(1, &[(1, key(1))]);
    let mut config = config(1, &[(1, key(1))]);
    config.digest_key = BASE64.encode([0x43; 32]).into();
    let two = MessageCipher::from_config(&config).expect("valid config");
    assert_ne!(one.digest(b"same text"), two.digest(b"same text"));
}

#[test]
fn digest_does_not_depend_on_the_sealing_keys() {
    let one = cipher(1, &[(1, key(1))]);
    let two = cipher(2, &[(2, key(2))]);
    assert_eq!(one.digest(b"same text"), two.digest(b"same text"));
}

#[test]
fn verify_digest_accepts_the_right_digest_only() {
    let cipher = cipher(1, &[(1, key(1))]);
    let digest = cipher.digest(b"content");
    assert!(cipher.verify_digest(b"content", &digest));
    assert!(!cipher.verify_digest(b"Content", &digest));
    let mut flipped = digest.clone();
    flipped.0[0] ^= 1;
    assert!(!cipher.verify_digest(b"content", &flipped));
    assert!(!cipher.verify_digest(b"content", &KeyedDigest(digest.0[..16].to_vec())));
    assert!(!cipher.verify_digest(b"content", &KeyedDigest(Vec::new())));
}

#[test]
fn generated_keys_configure_a_working_cipher() {
    let config = CryptoConfig {
        active_key_id: 5,
        keys: [(
            "5".to_owned(),
            generate_key_base64().expect("randomness").into(),
        )]
        .into_iter()
        .collect(),
        digest_key: generate_key_base64().expect("randomness").into(),
    };
    let cipher = MessageCipher::from_config(&config).expect("valid config");
    let binding = binding();
    let sealed = cipher.seal(b"fresh", &binding).expect("seal");
    assert_eq!(cipher.open(&sealed, &binding).expect("open"), b"fresh");
}

#[test]
fn cipher_serves_as_a_shared_port() {
    fn assert_deserializable<T: serde::de::DeserializeOwned>() {}
    assert_deserializable::<CryptoConfig>();
    let port: std::sync::Arc<dyn Cipher> = std::sync::Arc::new(cipher(1, &[(1, key(1))]));
    let binding = binding();
    let sealed = port.seal(b"via the port", &binding).expect("seal");
    assert_eq!(port.open(&sealed, &binding).expect("open"), b"via the port");
}
