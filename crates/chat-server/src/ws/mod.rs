//! `GET /ws`: one task reads a socket's frames and answers them in order; another writes the
//! socket's queue (answers and live events) to it. See `docs/protocol.md`.
//!
//! Per connection: a ping every heartbeat interval, a close (4000) after the client timeout with
//! no frame, a close (4001) when the token expires, (1009) for an oversized frame, (1013) when
//! the client reads too slowly, and (1001) when the server shuts down. A frame's work is bounded
//! by the frame timeout, after which the client gets an `unavailable` error.

pub mod frames;

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseReason, ProtocolError, Session};
use chat_domain::{ChatService, ConnectionId, LiveEvent, UserId};
use tokio::sync::mpsc;

use crate::auth::{Caller, PROTOCOL};
use crate::connections::{CloseCause, CloseSignal, Outbound, Refused};
use crate::error::ApiError;
use crate::rate_limits::Action;
use crate::state::AppState;
use frames::{ClientFrame, ServerFrame};

/// How long a closing connection may take to flush its queue and close frame.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

/// Upgrades the request to a WebSocket for the token's user.
///
/// # Errors
/// 401 without a valid token, 503 while shutting down or when the instance holds its most
/// sockets, 429 when the user does, 400 for a bad upgrade request.
pub async fn upgrade(
    request: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "this instance is shutting down; reconnect",
        ));
    }
    let caller = state.verifier.caller_of_upgrade(&request)?;
    let (response, session, stream) = actix_ws::handle_with_protocols(&request, body, &[PROTOCOL])
        .map_err(|error| ApiError::bad_request("bad_upgrade", error.to_string()))?;
    let max_frame = state.settings.websocket.max_frame_bytes;
    let stream = stream
        .max_frame_size(max_frame)
        .aggregate_continuations()
        .max_continuation_size(max_frame);
    // Registered before the 101 goes out, so the caps hold however many upgrades race.
    let opened = Opened::register(&state, caller).map_err(|refused| {
        state.metrics.error(refusal_code(refused), "http");
        refusal(refused)
    })?;
    let connection = state.connection_tasks.track_future(run_connection(
        state.clone().into_inner(),
        caller,
        opened,
        session,
        stream,
    ));
    actix_web::rt::spawn(connection);
    Ok(response)
}

fn refusal_code(refused: Refused) -> &'static str {
    match refused {
        Refused::UserFull(_) => "too_many_sockets",
        Refused::InstanceFull(_) => "instance_full",
    }
}

/// A user over their cap gets 429 (close one of their sockets first); a full instance gets 503
/// with `Retry-After`, which nginx retries on another instance.
fn refusal(refused: Refused) -> ApiError {
    let status = match refused {
        Refused::UserFull(_) => actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        Refused::InstanceFull(_) => actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError::new(status, refusal_code(refused), refused.to_string())
}

/// A connection registered at the upgrade: its id, its queue and close signal, and whether it
/// is the user's first socket here.
struct Opened {
    connection: ConnectionId,
    queue: mpsc::Sender<Outbound>,
    queued: mpsc::Receiver<Outbound>,
    signal: CloseSignal,
    first_here: bool,
}

impl Opened {
    fn register(state: &AppState, caller: Caller) -> Result<Self, Refused> {
        let user = caller.user_id;
        let connection = ConnectionId::generate();
        let (queue, queued) = mpsc::channel(state.settings.websocket.outbound_queue);
        // Queued before the connection is registered, so `ready` is always the first frame.
        let ready = ServerFrame::Ready {
            user_id: user,
            connection_id: connection.to_string(),
            heartbeat_interval_secs: state.settings.websocket.heartbeat_interval_secs,
            max_frame_bytes: state.settings.websocket.max_frame_bytes,
            max_content_bytes: state.settings.limits.max_content_bytes,
        };
        // A fresh queue has room for one frame (outbound_queue is at least 1).
        let _ = queue.try_send(Outbound::Frame(Box::new(ready)));
        let (signal, first_here) =
            state
                .connections
                .register(user, connection, queue.clone(), &state.shutdown)?;
        Ok(Self {
            connection,
            queue,
            queued,
            signal,
            first_here,
        })
    }
}

/// How the reading side ended.
enum Ending {
    /// The server closes, with this cause.
    Close(CloseCause),
    /// The client sent a close frame.
    ClientClosed(Option<CloseReason>),
    /// The socket is gone.
    Gone,
}

async fn run_connection(
    state: Arc<AppState>,
    caller: Caller,
    opened: Opened,
    session: Session,
    mut stream: AggregatedMessageStream,
) {
    let user = caller.user_id;
    let Opened {
        connection,
        queue,
        queued,
        signal,
        first_here,
    } = opened;
    tracing::debug!(%user, %connection, "socket open");
    if first_here && let Err(error) = state.service.connected(user).await {
        tracing::warn!(error = %error.report(), %user, "could not route the user's events here");
    }
    let mut writer = actix_web::rt::spawn(write_frames(
        state.service.clone(),
        session.clone(),
        queued,
        signal.token.clone(),
        state.settings.websocket.frame_timeout(),
        state.metrics.clone(),
    ));
    let mut reader = Reader {
        state: &state,
        user,
        connection,
        queue: &queue,
        session: session.clone(),
        too_slow: Cell::new(false),
    };
    let ending = reader.read(&mut stream, &signal, &caller).await;

    if state.connections.unregister(user, connection)
        && let Err(error) = state.service.disconnected(user).await
    {
        tracing::warn!(error = %error.report(), %user, "could not stop routing the user's events here");
    }
    drop(queue);
    // Let the writer flush what is queued (the last ack included) before the close frame; a
    // client that does not read gets no more time than that.
    if tokio::time::timeout(CLOSE_FLUSH, &mut writer)
        .await
        .is_err()
    {
        tracing::debug!(%connection, "queue not flushed in time");
        writer.abort();
    }
    let reason = match ending {
        Ending::Close(cause) => Some(Some(cause.reason())),
        Ending::ClientClosed(reason) => Some(reason),
        Ending::Gone => None,
    };
    if let Some(reason) = reason {
        let _ = tokio::time::timeout(CLOSE_FLUSH, session.close(reason)).await;
    }
    tracing::debug!(%user, %connection, "socket closed");
}

struct Reader<'a> {
    state: &'a AppState,
    user: UserId,
    connection: ConnectionId,
    queue: &'a mpsc::Sender<Outbound>,
    session: Session,
    /// Set when an answer could not be queued in time: the client does not read.
    too_slow: Cell<bool>,
}

impl Reader<'_> {
    async fn read(
        &mut self,
        stream: &mut AggregatedMessageStream,
        signal: &CloseSignal,
        caller: &Caller,
    ) -> Ending {
        let settings = &self.state.settings.websocket;
        let mut heartbeat = tokio::time::interval(settings.heartbeat_interval());
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        // The same leeway as at the upgrade, so a token accepted there is not dropped at once.
        let leeway = time::Duration::seconds(
            i64::try_from(self.state.settings.auth.leeway_secs).unwrap_or(i64::MAX),
        );
        let token_left = (caller.expires_at + leeway - time::OffsetDateTime::now_utc())
            .try_into()
            .unwrap_or(Duration::ZERO);
        let expiry = tokio::time::sleep(token_left);
        tokio::pin!(expiry);
        loop {
            tokio::select! {
                biased;
                () = signal.token.cancelled() => {
                    return match signal.cause() {
                        Some(cause) => Ending::Close(cause),
                        None if self.state.shutdown.is_cancelled() => {
                            Ending::Close(CloseCause::ShuttingDown)
                        }
                        None => Ending::Gone,
                    };
                }
                () = &mut expiry => return Ending::Close(CloseCause::TokenExpired),
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > settings.client_timeout() {
                        return Ending::Close(CloseCause::IdleTimeout);
                    }
                    if let Some(ending) = self.control(self.session.clone().ping(b"")).await {
                        return ending;
                    }
                }
                message = stream.recv() => {
                    last_heard = Instant::now();
                    match message {
                        None => return Ending::Gone,
                        Some(Err(error)) if is_message_too_large(&error) => {
                            return Ending::Close(CloseCause::FrameTooLarge);
                        }
                        Some(Err(error)) => {
                            tracing::debug!(error = %chat_domain::Report::of(&error), "websocket protocol error");
                            return Ending::Close(CloseCause::ProtocolError);
                        }
                        Some(Ok(AggregatedMessage::Text(text))) => self.answer(&text).await,
                        Some(Ok(AggregatedMessage::Binary(_))) => {
                            self.reply_error(ServerFrame::error(
                                "unsupported_frame",
                                "binary frames are not supported; send JSON text frames",
                                None,
                            ))
                            .await;
                        }
                        Some(Ok(AggregatedMessage::Ping(bytes))) => {
                            let mut session = self.session.clone();
                            if let Some(ending) = self.control(async move { session.pong(&bytes).await }).await {
                                return ending;
                            }
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => {}
                        Some(Ok(AggregatedMessage::Close(reason))) => {
                            return Ending::ClientClosed(reason);
                        }
                    }
                    if self.too_slow.get() {
                        return Ending::Close(CloseCause::TooSlow);
                    }
                }
            }
        }
    }

    /// Writes a control frame (ping, pong) within the frame timeout. A client that does not
    /// read leaves the socket's outgoing channel full: waiting without a deadline once froze
    /// this reader, deaf to the slow-consumer close, token expiry and shutdown.
    async fn control(
        &self,
        write: impl std::future::Future<Output = Result<(), actix_ws::Closed>>,
    ) -> Option<Ending> {
        match tokio::time::timeout(self.state.settings.websocket.frame_timeout(), write).await {
            Ok(Ok(())) => None,
            Ok(Err(_closed)) => Some(Ending::Gone),
            Err(_elapsed) => {
                self.state.metrics.slow_consumers.inc();
                Some(Ending::Close(CloseCause::TooSlow))
            }
        }
    }

    async fn reply(&self, frame: ServerFrame) {
        // Waiting here slows this client's reading down to its own writing speed, but only so
        // long: a client that stops reading is closed rather than held forever.
        let wait = self.state.settings.websocket.frame_timeout();
        if let Err(error) = self
            .queue
            .send_timeout(Outbound::Frame(Box::new(frame)), wait)
            .await
        {
            if matches!(error, mpsc::error::SendTimeoutError::Timeout(_)) {
                self.state.metrics.slow_consumers.inc();
            }
            self.too_slow.set(true);
        }
    }

    async fn reply_error(&self, frame: ServerFrame) {
        if let ServerFrame::Error { code, .. } = &frame {
            self.state.metrics.error(code, "ws");
        }
        self.reply(frame).await;
    }

    async fn answer(&self, text: &str) {
        let parsed = match frames::parse(text) {
            Ok(parsed) => parsed,
            Err(error) => {
                let frame = ServerFrame::error(error.code, error.message, error.reference);
                return self.reply_error(frame).await;
            }
        };
        let reference = parsed.reference;
        let action = match &parsed.frame {
            ClientFrame::Send(_) => Action::Send,
            ClientFrame::Seen { .. } => Action::Seen,
            ClientFrame::Sync { .. } => Action::Sync,
            ClientFrame::Typing { .. } => Action::Typing,
        };
        if let Err(wait) = self.state.rate_limits.check(action, self.user) {
            // Typing is a hint: the excess is dropped without a word.
            if action != Action::Typing {
                self.reply_error(ServerFrame::rate_limited(wait, reference))
                    .await;
            }
            return;
        }
        if let Err(error) = self.handle(parsed.frame).await {
            self.reply_error(ServerFrame::domain_error(&error, reference))
                .await;
        }
    }

    /// Runs `work` within the frame timeout.
    async fn bounded<T>(
        &self,
        work: impl Future<Output = chat_domain::Result<T>>,
    ) -> chat_domain::Result<T> {
        let timeout = self.state.settings.websocket.frame_timeout();
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(chat_domain::Error::Unavailable(
                    "storage (timed out)".into(),
                ))
            })
    }

    async fn handle(&self, frame: ClientFrame) -> chat_domain::Result<()> {
        let service = &self.state.service;
        match frame {
            ClientFrame::Send(request) => {
                let started = Instant::now();
                // A timed-out send may still be stored: the client resends with the same
                // client_msg_id and gets the original ack.
                let accepted = self.bounded(service.accept(self.user, request)).await?;
                let outcome = if accepted.duplicate {
                    "duplicate"
                } else {
                    "stored"
                };
                self.state
                    .metrics
                    .messages_accepted
                    .with_label_values(&[outcome])
                    .inc();
                self.reply(ServerFrame::ack(&accepted.ack)).await;
                self.state
                    .metrics
                    .send_seconds
                    .observe(started.elapsed().as_secs_f64());
                // After the ack nothing may turn into an error for this frame.
                let timeout = self.state.settings.websocket.frame_timeout();
                let delivery = service.distribute(&accepted, Some(self.connection));
                if tokio::time::timeout(timeout, delivery).await.is_err() {
                    tracing::warn!(message = %accepted.ack.message_id, "live delivery timed out");
                }
            }
            ClientFrame::Seen {
                chat_id,
                message_id,
            } => {
                self.bounded(service.mark_seen(self.user, chat_id, message_id))
                    .await?;
            }
            ClientFrame::Sync {
                chat_id,
                after_message_id,
            } => {
                let batch = self
                    .bounded(service.sync(self.user, chat_id, after_message_id))
                    .await?;
                self.reply(ServerFrame::sync(batch)).await;
            }
            ClientFrame::Typing { chat_id } => {
                self.bounded(service.typing(self.user, chat_id, Some(self.connection)))
                    .await?;
            }
        }
        Ok(())
    }
}

/// Writes the connection's queue to the socket until the queue closes or the socket fails.
async fn write_frames(
    service: Arc<ChatService>,
    mut session: Session,
    mut queued: mpsc::Receiver<Outbound>,
    closing: tokio_util::sync::CancellationToken,
    frame_timeout: Duration,
    metrics: Arc<crate::metrics::Metrics>,
) {
    while let Some(outbound) = queued.recv().await {
        let frame = match outbound {
            Outbound::Frame(frame) => *frame,
            Outbound::Live(event) => match live_frame(&service, &event) {
                Some(frame) => frame,
                None => continue,
            },
        };
        match tokio::time::timeout(frame_timeout, session.text(frame.to_json())).await {
            Ok(Ok(())) => {}
            Ok(Err(_closed)) => {
                closing.cancel();
                break;
            }
            // The client stopped reading: end the socket (it syncs after reconnecting).
            Err(_elapsed) => {
                metrics.slow_consumers.inc();
                closing.cancel();
                break;
            }
        }
    }
}

fn live_frame(service: &ChatService, event: &LiveEvent) -> Option<ServerFrame> {
    match *event {
        LiveEvent::Message { ref message, .. } => match service.open_message(message) {
            Ok(message) => Some(ServerFrame::Message { message }),
            Err(error) => {
                tracing::error!(error = %error.report(), message = %message.id, "cannot open a live message");
                None
            }
        },
        LiveEvent::Seen {
            chat_id,
            message_id,
            seen_by,
            seen_at,
        } => Some(ServerFrame::Seen {
            chat_id,
            message_id,
            seen_by,
            seen_at,
        }),
        LiveEvent::Typing {
            chat_id, user_id, ..
        } => Some(ServerFrame::Typing { chat_id, user_id }),
    }
}

/// Whether actix-ws refused a message for its size: one frame over the limit is
/// [`ProtocolError::Overflow`], but a message whose fragments add up to more than the limit is
/// reported as an I/O error worded "Exceeded maximum continuation size" (actix-ws 0.4,
/// `aggregated.rs`) — this is the one place that knows the wording.
fn is_message_too_large(error: &ProtocolError) -> bool {
    match error {
        ProtocolError::Overflow => true,
        ProtocolError::Io(error) => error.to_string().contains("continuation size"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_or_a_fragmented_message_over_the_limit_is_too_large_and_nothing_else_is() {
        assert!(is_message_too_large(&ProtocolError::Overflow));
        let fragments = std::io::Error::other("Exceeded maximum continuation size");
        assert!(is_message_too_large(&ProtocolError::Io(fragments)));
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        assert!(!is_message_too_large(&ProtocolError::Io(reset)));
        assert!(!is_message_too_large(&ProtocolError::UnmaskedFrame));
    }
}
