//! A WebSocket client connection split in two tasks, so that an open-loop sender never waits
//! for a reader: a writer owns the sink and sends whatever is queued (frames, pongs), a reader
//! answers pings and hands every text frame on as JSON. The tests' `chat_test_client::Socket`
//! reads and writes through one handle, which suits tests but not a fixed send rate.

use std::net::IpAddr;
use std::time::Duration;

use awc::ws::{Frame, Message};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::BenchError;

/// How long a handshake and the `ready` frame may take.
const HANDSHAKE_PATIENCE: Duration = Duration::from_secs(20);

/// Opens connections from one local address (the kernel picks the source port), so a caller
/// that needs more sockets than one address has ephemeral ports uses several dialers.
pub struct Dialer {
    client: awc::Client,
}

impl Dialer {
    /// A dialer binding its sockets to `local` (any address when `None`).
    pub fn new(local: Option<IpAddr>) -> Self {
        // The connector caps simultaneous connections at 100 by default; a run holds thousands
        // of sockets, so no cap.
        let mut connector = awc::Connector::new().timeout(HANDSHAKE_PATIENCE).limit(0);
        if let Some(address) = local {
            connector = connector.local_address(address);
        }
        let client = awc::Client::builder()
            .connector(connector)
            .max_http_version(awc::http::Version::HTTP_11)
            .timeout(HANDSHAKE_PATIENCE)
            .finish();
        Self { client }
    }

    /// Connects to `url` (`ws://host:port/ws`) with `token`, waits for `ready`.
    ///
    /// # Errors
    /// [`BenchError::Socket`] when the handshake fails or no `ready` frame comes.
    pub async fn connect(&self, url: &str, token: &str) -> Result<Connection, BenchError> {
        let (response, framed) = self
            .client
            .ws(url)
            .max_frame_size(1 << 20)
            .bearer_auth(token)
            .connect()
            .await
            .map_err(|error| BenchError::Socket(format!("{url}: {error}")))?;
        let served_by = response
            .headers()
            .get("x-served-by")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let (mut sink, mut stream) = framed.split();
        let (outgoing, mut queue) = mpsc::unbounded_channel::<Message>();
        let (deliver, mut incoming) = mpsc::unbounded_channel::<Value>();
        actix_web::rt::spawn(async move {
            while let Some(message) = queue.recv().await {
                let closing = matches!(message, Message::Close(_));
                if sink.send(message).await.is_err() || closing {
                    break;
                }
            }
        });
        let pong = outgoing.clone();
        actix_web::rt::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                match frame {
                    Frame::Text(bytes) => {
                        let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
                            continue;
                        };
                        if deliver.send(value).is_err() {
                            break;
                        }
                    }
                    Frame::Ping(payload) => {
                        let _ = pong.send(Message::Pong(payload));
                    }
                    Frame::Close(_) => break,
                    _ => {}
                }
            }
        });
        let ready = tokio::time::timeout(HANDSHAKE_PATIENCE, incoming.recv())
            .await
            .ok()
            .flatten();
        match ready {
            Some(frame) if frame["type"] == "ready" => Ok(Connection {
                outgoing,
                incoming,
                served_by,
            }),
            other => Err(BenchError::Socket(format!(
                "{url}: no ready frame ({other:?})"
            ))),
        }
    }
}

/// An open connection.
pub struct Connection {
    /// Frames to send, in order.
    pub outgoing: mpsc::UnboundedSender<Message>,
    /// Text frames received, as JSON; ends when the socket does.
    pub incoming: mpsc::UnboundedReceiver<Value>,
    /// The instance that took it (`x-served-by`).
    pub served_by: String,
}

impl Connection {
    /// Queues a normal close; the writer ends after sending it.
    pub fn close(&self) {
        let _ = self.outgoing.send(Message::Close(None));
    }
}
