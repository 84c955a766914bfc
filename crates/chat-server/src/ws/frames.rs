//! The WebSocket protocol's frames (`docs/protocol.md`): JSON text frames with a `type` field.
//! Client frames are parsed in two steps, JSON then fields, so every mistake gets an `error`
//! frame naming the field, and the connection stays open.

use std::time::Duration;

use chat_domain::{
    Ack, ChatId, ClientMessageId, Error, Message, MessageId, MessageKind, Recipient, SeenReceipt,
    SendRequest, SyncBatch, UserId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// A parsed client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// Send a message.
    Send(SendRequest),
    /// Mark a message seen.
    Seen {
        /// The chat.
        chat_id: ChatId,
        /// The message.
        message_id: MessageId,
    },
    /// Ask for what was missed.
    Sync {
        /// The chat.
        chat_id: ChatId,
        /// The last message the client has; `None` for all from the oldest.
        after_message_id: Option<MessageId>,
    },
    /// The user is typing.
    Typing {
        /// The chat.
        chat_id: ChatId,
    },
}

/// A client frame that could not be parsed, with what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// The stable error code.
    pub code: &'static str,
    /// A plain explanation.
    pub message: String,
    /// The client's reference, when one could be read.
    pub reference: Option<String>,
}

impl FrameError {
    fn new(code: &'static str, message: impl Into<String>, reference: Option<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reference,
        }
    }
}

/// A parsed frame and the client's reference for answers about it (`ref`, or the
/// `client_msg_id` of a send).
pub struct ParsedFrame {
    /// The frame.
    pub frame: ClientFrame,
    /// Echoed in an `error` frame about it.
    pub reference: Option<String>,
}

/// Parses one text frame.
///
/// # Errors
/// [`FrameError`] with code `bad_json`, `unknown_type` or a field error's code.
pub fn parse(text: &str) -> Result<ParsedFrame, FrameError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|error| FrameError::new("bad_json", format!("not valid JSON: {error}"), None))?;
    let Value::Object(fields) = value else {
        return Err(FrameError::new(
            "bad_json",
            "a frame must be a JSON object",
            None,
        ));
    };
    // Read leniently: the reference only labels the error about this frame.
    let explicit_ref = fields.get("ref").and_then(Value::as_str).map(str::to_owned);
    let client_msg_id = fields
        .get("client_msg_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let reference = explicit_ref.or(client_msg_id);
    let fail = |error: Error| FrameError::new(error.code(), error.to_string(), reference.clone());
    let kind = fields.get("type").and_then(Value::as_str).ok_or_else(|| {
        FrameError::new(
            "unknown_type",
            "a frame needs a \"type\" string",
            reference.clone(),
        )
    })?;
    let read = Fields(&fields);
    let frame = match kind {
        "send" => {
            let to = match (
                read.opt_str("chat_id").map_err(fail)?,
                read.opt_str("to_user_id").map_err(fail)?,
            ) {
                (Some(chat), None) => {
                    Recipient::Chat(ChatId::parse(chat, "chat_id").map_err(fail)?)
                }
                (None, Some(user)) => {
                    Recipient::User(UserId::parse(user, "to_user_id").map_err(fail)?)
                }
                _ => {
                    return Err(fail(Error::invalid(
                        "chat_id",
                        "give exactly one of chat_id and to_user_id",
                    )));
                }
            };
            let kind = match read.opt_str("kind").map_err(fail)? {
                Some(kind) => kind.parse::<MessageKind>().map_err(fail)?,
                None => MessageKind::Text,
            };
            ClientFrame::Send(SendRequest {
                client_msg_id: ClientMessageId::parse(read.str("client_msg_id").map_err(fail)?)
                    .map_err(fail)?,
                to,
                kind,
                content: read.str("content").map_err(fail)?.to_owned(),
            })
        }
        "seen" => ClientFrame::Seen {
            chat_id: read.chat_id().map_err(fail)?,
            message_id: MessageId::parse(read.str("message_id").map_err(fail)?, "message_id")
                .map_err(fail)?,
        },
        "sync" => ClientFrame::Sync {
            chat_id: read.chat_id().map_err(fail)?,
            after_message_id: read
                .opt_str("after_message_id")
                .map_err(fail)?
                .map(|id| MessageId::parse(id, "after_message_id"))
                .transpose()
                .map_err(fail)?,
        },
        "typing" => ClientFrame::Typing {
            chat_id: read.chat_id().map_err(fail)?,
        },
        other => {
            return Err(FrameError::new(
                "unknown_type",
                format!("unknown frame type {other:?}; expected send, seen, sync or typing"),
                reference,
            ));
        }
    };
    Ok(ParsedFrame { frame, reference })
}

struct Fields<'a>(&'a serde_json::Map<String, Value>);

impl Fields<'_> {
    /// An optional string field: absent or `null` is `None`; any other type is an error.
    fn opt_str(&self, name: &'static str) -> Result<Option<&str>, Error> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(Error::invalid(name, "must be a string")),
        }
    }

    fn str(&self, name: &'static str) -> Result<&str, Error> {
        match self.0.get(name) {
            Some(Value::String(text)) => Ok(text),
            Some(_) => Err(Error::invalid(name, "must be a string")),
            None => Err(Error::invalid(name, "is required")),
        }
    }

    fn chat_id(&self) -> Result<ChatId, Error> {
        ChatId::parse(self.str("chat_id")?, "chat_id")
    }
}

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Sent once, when the connection is ready.
    Ready {
        /// Who the server thinks the client is.
        user_id: UserId,
        /// This connection's id (in logs, for support).
        connection_id: String,
        /// How often the server pings.
        heartbeat_interval_secs: u64,
        /// Largest frame accepted.
        max_frame_bytes: usize,
        /// Largest content accepted.
        max_content_bytes: usize,
    },
    /// The message is stored.
    Ack {
        /// The client's id, echoed.
        client_msg_id: String,
        /// The stored message's id.
        message_id: MessageId,
        /// Its chat.
        chat_id: ChatId,
        /// When it was accepted.
        #[serde(with = "time::serde::rfc3339")]
        timestamp: OffsetDateTime,
    },
    /// A new message in one of the user's chats.
    Message {
        /// The message.
        message: Message,
    },
    /// A message was seen.
    Seen {
        /// The chat.
        chat_id: ChatId,
        /// The message.
        message_id: MessageId,
        /// Who saw it.
        seen_by: UserId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        seen_at: OffsetDateTime,
    },
    /// The other member is typing.
    Typing {
        /// The chat.
        chat_id: ChatId,
        /// Who is typing.
        user_id: UserId,
    },
    /// The answer to `sync`.
    SyncResult {
        /// The chat.
        chat_id: ChatId,
        /// Messages after the client's last one, oldest first.
        messages: Vec<Message>,
        /// Whether to sync again from the last message here.
        has_more: bool,
    },
    /// A request failed; the connection stays open.
    Error {
        /// Stable code.
        code: String,
        /// Plain explanation.
        message: String,
        /// The client's reference of the frame at fault.
        #[serde(rename = "ref")]
        reference: Option<String>,
        /// For `rate_limited`: when the client may send that kind of frame again.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl ServerFrame {
    /// The ack frame.
    pub fn ack(ack: &Ack) -> Self {
        Self::Ack {
            client_msg_id: ack.client_msg_id.as_str().to_owned(),
            message_id: ack.message_id,
            chat_id: ack.chat_id,
            timestamp: ack.timestamp,
        }
    }

    /// The seen frame.
    pub fn seen(receipt: &SeenReceipt) -> Self {
        Self::Seen {
            chat_id: receipt.chat_id,
            message_id: receipt.message_id,
            seen_by: receipt.seen_by,
            seen_at: receipt.seen_at,
        }
    }

    /// The sync answer.
    pub fn sync(batch: SyncBatch) -> Self {
        Self::SyncResult {
            chat_id: batch.chat_id,
            messages: batch.messages,
            has_more: batch.has_more,
        }
    }

    /// An error frame.
    pub fn error(code: &str, message: impl Into<String>, reference: Option<String>) -> Self {
        Self::Error {
            code: code.to_owned(),
            message: message.into(),
            reference,
            retry_after_ms: None,
        }
    }

    /// A `rate_limited` error frame: that kind of frame may be sent again after `wait`.
    pub fn rate_limited(wait: Duration, reference: Option<String>) -> Self {
        Self::Error {
            code: "rate_limited".to_owned(),
            message: "too many frames of this kind; retry after retry_after_ms".to_owned(),
            reference,
            // Rounded up, so that a client waiting exactly this long finds a token.
            retry_after_ms: Some(
                u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
                    + u64::from(!wait.subsec_nanos().is_multiple_of(1_000_000)),
            ),
        }
    }

    /// An error frame for a domain error; internal causes are logged, not shown.
    pub fn domain_error(error: &Error, reference: Option<String>) -> Self {
        let message = if error.is_client_error() {
            error.to_string()
        } else if matches!(error, Error::Unavailable(_)) {
            tracing::warn!(error = %error.report(), "frame failed: a backing service is unavailable");
            "the service is temporarily unavailable; retry".to_owned()
        } else {
            tracing::error!(error = %error.report(), "frame failed");
            "internal error".to_owned()
        };
        Self::error(error.code(), message, reference)
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|error| {
            format!(r#"{{"type":"error","code":"internal","message":"{error}","ref":null}}"#)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(text: &str) -> &'static str {
        match parse(text) {
            Ok(_) => "ok",
            Err(error) => error.code,
        }
    }

    #[test]
    fn every_bad_frame_gets_its_code() {
        let chat = uuid::Uuid::new_v4();
        assert_eq!(code_of("{not json"), "bad_json");
        assert_eq!(code_of("[1,2]"), "bad_json");
        assert_eq!(code_of(r#"{"no":"type"}"#), "unknown_type");
        assert_eq!(code_of(r#"{"type":"dance"}"#), "unknown_type");
        assert_eq!(
            code_of(r#"{"type":"typing","chat_id":"nope"}"#),
            "invalid_field"
        );
        assert_eq!(code_of(r#"{"type":"typing"}"#), "invalid_field");
        assert_eq!(
            code_of(&format!(
                r#"{{"type":"send","client_msg_id":"c","chat_id":"{chat}","kind":"gif","content":"x"}}"#
            )),
            "invalid_field"
        );
        assert_eq!(
            code_of(&format!(
                r#"{{"type":"send","client_msg_id":"c","chat_id":"{chat}","to_user_id":"{chat}","content":"x"}}"#
            )),
            "invalid_field"
        );
        assert_eq!(
            code_of(&format!(
                r#"{{"type":"send","chat_id":"{chat}","content":"x"}}"#
            )),
            "invalid_field"
        );
        for wrong_type in [
            format!(
                r#"{{"type":"send","client_msg_id":"c","chat_id":"{chat}","kind":1,"content":"x"}}"#
            ),
            r#"{"type":"send","client_msg_id":"c","chat_id":5,"content":"x"}"#.to_owned(),
            format!(r#"{{"type":"sync","chat_id":"{chat}","after_message_id":5}}"#),
            format!(r#"{{"type":"send","client_msg_id":"c","chat_id":"{chat}","content":7}}"#),
        ] {
            assert_eq!(code_of(&wrong_type), "invalid_field", "{wrong_type}");
        }
        assert_eq!(
            code_of(&format!(
                r#"{{"type":"sync","chat_id":"{chat}","after_message_id":null}}"#
            )),
            "ok"
        );
        assert_eq!(
            code_of(&format!(
                r#"{{"type":"send","client_msg_id":"c","chat_id":"{chat}","content":"hi"}}"#
            )),
            "ok"
        );
    }

    #[test]
    fn errors_echo_the_clients_reference() {
        let error = parse(r#"{"type":"send","client_msg_id":"c-9","chat_id":"bad","content":"x"}"#)
            .err()
            .unwrap();
        assert_eq!(error.reference.as_deref(), Some("c-9"));
        assert!(error.message.contains("chat_id"));
        let error = parse(r#"{"type":"typing","chat_id":"bad","ref":"r1"}"#)
            .err()
            .unwrap();
        assert_eq!(error.reference.as_deref(), Some("r1"));
    }

    #[test]
    fn server_frames_carry_their_type() {
        let json = ServerFrame::error("bad_json", "x", None).to_json();
        assert!(json.starts_with(r#"{"type":"error""#));
    }
}
