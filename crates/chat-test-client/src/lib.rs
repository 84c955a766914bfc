//! The tests' WebSocket client of the service: [`Socket`] reads and writes one connection
//! through one handle, answers pings on the way, and bounds every wait by [`PATIENCE`]. The
//! service's own tests (`crates/chat-server/tests`) and the system tests (`tests/`, re-exported
//! by `system_tests`) share it. `chat-bench` has a client of its own, split in a reader and a
//! writer task for a fixed send rate.
#![allow(clippy::unwrap_used)] // Test helpers panic with a message when the service misbehaves.

use std::fmt::Display;
use std::time::Duration;

use awc::ws::{CloseCode, Frame, Message};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};

/// How long any single expectation may wait before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A WebSocket handshake request to `url` (`ws://host:port/path?query`), to be completed by the
/// test: HTTP/1.1, [`PATIENCE`] to answer, frames up to 64 MiB.
pub fn ws_request(url: &str) -> awc::ws::WebsocketsRequest {
    awc::Client::builder()
        .max_http_version(awc::http::Version::HTTP_11)
        .timeout(PATIENCE)
        .finish()
        .ws(url)
        .max_frame_size(64 << 20)
}

/// The `send` frame of a text message `content` to user `to`.
pub fn text_to_user(to: impl Display, client_msg_id: &str, content: &str) -> Value {
    json!({
        "type": "send", "client_msg_id": client_msg_id, "to_user_id": to.to_string(),
        "kind": "text", "content": content,
    })
}

/// A WebSocket client connection.
pub struct Socket {
    framed: actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>,
}

/// What the server ended a socket with.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// A close frame with this code.
    Closed(Option<CloseCode>),
    /// The stream ended without a close frame.
    Dropped,
}

impl Socket {
    /// Completes a handshake.
    ///
    /// # Errors
    /// The handshake's error (e.g. 401).
    pub async fn open(
        request: awc::ws::WebsocketsRequest,
    ) -> Result<Self, awc::error::WsClientError> {
        let (_, socket) = Self::handshake(request).await?;
        Ok(socket)
    }

    /// Completes a handshake; returns the server's response (its status and headers) too.
    ///
    /// # Errors
    /// The handshake's error (e.g. 401).
    pub async fn handshake(
        request: awc::ws::WebsocketsRequest,
    ) -> Result<(awc::ClientResponse, Self), awc::error::WsClientError> {
        let (response, framed) = request.connect().await?;
        Ok((response, Self { framed }))
    }

    /// Asserts that opening `request` was refused with HTTP `status` (not any other failure).
    pub async fn assert_refused(request: awc::ws::WebsocketsRequest, status: u16) {
        match Self::open(request).await {
            Ok(_) => panic!("the handshake was accepted; expected {status}"),
            Err(awc::error::WsClientError::InvalidResponseStatus(got)) => {
                assert_eq!(got.as_u16(), status, "the handshake's status");
            }
            Err(other) => panic!("the handshake failed otherwise than with {status}: {other}"),
        }
    }

    /// Sends a JSON text frame.
    pub async fn send(&mut self, frame: &Value) {
        self.send_raw(Message::Text(frame.to_string().into())).await;
    }

    /// Sends any frame.
    pub async fn send_raw(&mut self, message: Message) {
        self.framed.send(message).await.unwrap();
    }

    /// Sends a text message `content` to user `to`; returns the ack.
    pub async fn send_to_user(
        &mut self,
        to: impl Display,
        client_msg_id: &str,
        content: &str,
    ) -> Value {
        self.send(&text_to_user(to, client_msg_id, content)).await;
        self.expect("ack").await
    }

    /// Sends a text message `content` into chat `chat`; returns the ack.
    pub async fn send_to_chat(&mut self, chat: &str, client_msg_id: &str, content: &str) -> Value {
        self.send(&json!({
            "type": "send", "client_msg_id": client_msg_id, "chat_id": chat,
            "kind": "text", "content": content,
        }))
        .await;
        self.expect("ack").await
    }

    /// The next frame; answers pings on the way. Panics on close or after [`PATIENCE`].
    pub async fn next_json(&mut self) -> Value {
        match self.next_frame(PATIENCE).await {
            Ok(value) => value,
            Err(ended) => panic!("socket ended while a frame was expected: {ended:?}"),
        }
    }

    /// The next text frame as JSON, or how the socket ended. Panics after `patience`.
    pub async fn next_frame(&mut self, patience: Duration) -> Result<Value, Ended> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.framed.next())
                .await
                .expect("no frame in time");
            match frame {
                Some(Ok(Frame::Text(bytes))) => return Ok(serde_json::from_slice(&bytes).unwrap()),
                Some(Ok(Frame::Ping(payload))) => {
                    self.framed.send(Message::Pong(payload)).await.unwrap();
                }
                Some(Ok(Frame::Close(reason))) => {
                    return Err(Ended::Closed(reason.map(|reason| reason.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(Ended::Dropped),
            }
        }
    }

    /// Sends a JSON text frame; `Err` when the socket is gone.
    ///
    /// # Errors
    /// [`Ended::Dropped`] when the frame could not be written.
    pub async fn try_send(&mut self, frame: &Value) -> Result<(), Ended> {
        self.framed
            .send(Message::Text(frame.to_string().into()))
            .await
            .map_err(|_| Ended::Dropped)
    }

    /// The next text frame as JSON, `None` when none came within `patience`, or how the socket
    /// ended; answers pings on the way.
    ///
    /// # Errors
    /// How the socket ended.
    pub async fn try_next_frame(&mut self, patience: Duration) -> Result<Option<Value>, Ended> {
        match tokio::time::timeout(patience, self.next_frame(patience + Duration::from_secs(1)))
            .await
        {
            Ok(result) => result.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Reads frames until one of type `kind` (others, e.g. typing, are skipped).
    pub async fn expect(&mut self, kind: &str) -> Value {
        for _ in 0..1000 {
            let frame = self.next_json().await;
            if frame["type"] == kind {
                return frame;
            }
            assert_ne!(frame["type"], "error", "expected {kind}, got {frame}");
        }
        panic!("no {kind} frame");
    }

    /// Reads frames until an `error` frame; returns it.
    pub async fn expect_error(&mut self) -> Value {
        for _ in 0..1000 {
            let frame = self.next_json().await;
            if frame["type"] == "error" {
                return frame;
            }
        }
        panic!("no error frame");
    }

    /// Waits `duration` answering pings as a live client does; returns how the socket ended if
    /// it did, `None` if it is still open. Text frames on the way are dropped.
    pub async fn idle_for(&mut self, duration: Duration) -> Option<Ended> {
        let deadline = tokio::time::Instant::now() + duration;
        loop {
            match tokio::time::timeout_at(deadline, self.framed.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Frame::Ping(payload)))) => {
                    self.framed.send(Message::Pong(payload)).await.unwrap();
                }
                Ok(Some(Ok(Frame::Close(reason)))) => {
                    return Some(Ended::Closed(reason.map(|reason| reason.code)));
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => return Some(Ended::Dropped),
            }
        }
    }

    /// Asserts no text frame arrives within `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Ok(Some(Ok(Frame::Text(bytes)))) =
            tokio::time::timeout(quiet, self.framed.next()).await
        {
            panic!("unexpected frame: {}", String::from_utf8_lossy(&bytes));
        }
    }

    /// How the socket ends, reading past any text frames.
    pub async fn ended(&mut self) -> Ended {
        loop {
            if let Err(ended) = self.next_frame(PATIENCE).await {
                return ended;
            }
        }
    }

    /// Reads past any text frames until the server's close frame, answers it with a close
    /// frame, and returns its code; panics when the socket ends without one.
    pub async fn expect_close(&mut self) -> Option<CloseCode> {
        match self.ended().await {
            Ended::Closed(code) => {
                let reply = self
                    .framed
                    .send(Message::Close(Some(CloseCode::Normal.into())));
                let _ = tokio::time::timeout(PATIENCE, reply).await;
                code
            }
            Ended::Dropped => panic!("the socket ended without a close frame"),
        }
    }

    /// Reads the `ready` frame a fresh connection of `user` starts with.
    pub async fn expect_ready(&mut self, user: impl Display) {
        let ready = self.next_json().await;
        assert_eq!(ready["type"], "ready", "expected ready, got {ready}");
        assert_eq!(ready["user_id"], user.to_string());
    }

    /// Closes normally.
    pub async fn close(mut self) {
        let _ = self.framed.send(Message::Close(None)).await;
    }
}
