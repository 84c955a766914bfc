//! The whole path through nginx over WebSocket, at one offered load per call: `pairs` senders
//! each sending to their own receiver, either in a closed loop (the next message once the
//! previous one is acknowledged) or at a fixed total rate whatever the answers (open loop,
//! latency measured from the scheduled send time, so a slow server cannot hide its queue).
//!
//! Measured: send→ack, send→delivery (split by whether the pair's sockets sit on one instance
//! or two), and after the load the loss check: every acknowledged message was delivered live
//! or is in the receiver's history (REST through nginx), and has exactly one distinct event id
//! in Kafka; plus the ack→event lag and each instance's outbox backlog at the end.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use chat_domain::{ChatId, UserId};
use futures_util::FutureExt as _;
use serde::Serialize;
use serde_json::{Value, json};
use system_tests::stack::Stack;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::BenchError;
use crate::kafka::Watcher;
use crate::latency::{Latency, Recorder};
use crate::procs::{CpuSnapshot, CpuUse, Part};
use crate::ws::{Connection, Dialer};

/// A send answered with an error frame is sent again after this pause, with the same
/// `client_msg_id`, as a client does (`docs/protocol.md`).
const RESEND_PAUSE: Duration = Duration::from_millis(200);

/// The longest wait for a load's events to reach Kafka, however steadily they come.
const EVENTS_PATIENCE: Duration = Duration::from_secs(300);

/// How long a closed-loop sender waits for one ack before giving up on its pair.
const ACK_PATIENCE: Duration = Duration::from_secs(10);

/// The longest a [`send_burst`] runs, however many messages remain.
const BURST_LIMIT: Duration = Duration::from_secs(600);

/// One offered load.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Load {
    /// `pairs` senders, each waiting for its ack before the next send.
    Closed {
        /// Sender/receiver pairs.
        pairs: usize,
    },
    /// `rate` messages per second in total, spread evenly over `pairs` senders.
    Open {
        /// Sender/receiver pairs.
        pairs: usize,
        /// Messages per second offered.
        rate: u32,
    },
}

impl Load {
    /// `closed 10 pairs`, `open 500/s`.
    pub fn label(&self) -> String {
        match self {
            Self::Closed { pairs } => format!("closed {pairs} pairs"),
            Self::Open { rate, pairs } => format!("open {rate}/s ({pairs} pairs)"),
        }
    }

    fn pairs(&self) -> usize {
        match self {
            Self::Closed { pairs } | Self::Open { pairs, .. } => (*pairs).max(1),
        }
    }
}

/// Whether acknowledged messages arrived, and their events.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Loss {
    /// Acknowledged messages.
    pub acked: u64,
    /// Of those, delivered live to the receiver's socket.
    pub delivered_live: u64,
    /// Not delivered live but in the receiver's history.
    pub from_history: u64,
    /// Neither: lost.
    pub lost: u64,
    /// Acknowledged messages with exactly one distinct event id in Kafka.
    pub kafka_ok: u64,
    /// With no event in Kafka by the end of the settle time.
    pub kafka_missing: u64,
    /// With two or more distinct event ids (one message announced as two).
    pub kafka_conflicting: u64,
    /// Extra records repeating an event id (allowed: consumers dedup on it).
    pub kafka_repeats: u64,
}

impl Loss {
    /// No acknowledged message lost, and exactly one event id each.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.kafka_missing == 0 && self.kafka_conflicting == 0
    }
}

/// What one load did.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// The offered load.
    pub load: Load,
    /// Sends (first attempts).
    pub sent: u64,
    /// Sends never acknowledged by the end of the settle time.
    pub unacknowledged: u64,
    /// Sends answered with an error and sent again.
    pub resent: u64,
    /// Pairs whose sockets sit on two instances (delivery crosses Redis).
    pub cross_pairs: usize,
    /// Seconds the load ran (first send to last send).
    pub seconds: f64,
    /// Seconds from the first send to the last ack (past the load's end when a queue built up).
    pub ack_seconds: f64,
    /// Acknowledged messages per second, over `ack_seconds`: what the stack absorbed, which
    /// for an open loop beyond capacity is less than the offered rate.
    pub acked_per_second: f64,
    /// Send → ack.
    pub ack: Latency,
    /// Send → delivery, pair on one instance.
    pub delivery_same: Latency,
    /// Send → delivery, pair on two instances.
    pub delivery_cross: Latency,
    /// Ack → first record in Kafka.
    pub event_lag: Latency,
    /// The loss check.
    pub loss: Loss,
    /// `chat_outbox_backlog` of each instance when the load stopped sending.
    pub backlog_at_load_end: BTreeMap<String, i64>,
    /// The same once the last event was seen in Kafka (or the settle time ran out).
    pub backlog_after_settle: BTreeMap<String, i64>,
    /// CPU seconds per process from the first send to the last ack.
    pub cpu: Vec<CpuUse>,
}

/// One acknowledged message.
struct Acked {
    message_id: String,
    at: Instant,
    receiver: UserId,
    chat: ChatId,
}

/// The step's shared book, written by every socket task (all on one thread).
#[derive(Default)]
struct Book {
    /// client_msg_id → (scheduled send instant, the frame, for a resend).
    sent: HashMap<String, (Instant, Value)>,
    /// client_msg_id → acknowledged message.
    acked: HashMap<String, Acked>,
    /// Message ids delivered live to their receiver.
    delivered: HashSet<String>,
    resent: u64,
    /// When the last ack arrived.
    last_ack: Option<Instant>,
    ack: Recorder,
    delivery_same: Recorder,
    delivery_cross: Recorder,
}

/// The stack as the end-to-end loads use it.
pub struct Target<'a> {
    /// Tokens, history, settings.
    pub stack: &'a Stack,
    /// Kafka brokers (`CHAT_TEST_KAFKA`, else the stack's settings).
    pub brokers: Vec<String>,
    /// Processes whose CPU is read.
    pub parts: &'a [Part],
    /// Bytes of text per message.
    pub text_bytes: usize,
}

/// Runs `load` for `seconds`, then waits up to `settle` for acks, deliveries and events.
///
/// # Errors
/// [`BenchError`] when sockets cannot be opened or Kafka does not answer.
pub async fn run_step(
    target: &Target<'_>,
    load: Load,
    seconds: Duration,
    settle: Duration,
    step: usize,
) -> Result<StepResult, BenchError> {
    let stack = target.stack;
    let pairs = connect_pairs(stack, load.pairs()).await?;
    let watcher =
        Watcher::start(target.brokers.clone(), stack.settings.kafka.topic.clone()).await?;
    let cpu_before = CpuSnapshot::take(target.parts);
    let Driven {
        book,
        closers,
        cross_pairs,
        started,
        load_seconds,
    } = drive(target, pairs, load, seconds, None, &format!("s{step}")).await;
    let backlog_at_load_end = outbox_backlog().await;

    // Settle: the last acks, then live deliveries (a few seconds at most), then Kafka.
    let settle_until = Instant::now() + settle;
    wait_for_acks(&book, settle_until).await;
    let cpu = CpuSnapshot::take(target.parts).since(&cpu_before);
    wait_for_deliveries(&book, settle_until).await;
    wait_for_events(&book, &watcher, settle).await;
    // Two relay rounds after the last event, so a batch being deleted is not counted; the gauge
    // itself is refreshed every `relay.backlog_interval_ms`, so it may be that old.
    tokio::time::sleep(Duration::from_millis(2 * stack.settings.relay.interval_ms)).await;
    let backlog_after_settle = outbox_backlog().await;
    for closer in closers {
        let _ = closer.send(awc::ws::Message::Close(None));
    }

    // Taken out of the cell: socket tasks still running write into a fresh book, never into
    // the one being checked across the history requests' awaits.
    let book = std::mem::take(&mut *book.borrow_mut());
    let (loss, event_lag) = check(stack, &book, &watcher).await;
    watcher.stop();
    let acked = book.acked.len() as f64;
    let ack_seconds = book
        .last_ack
        .map_or(load_seconds, |last| (last - started).as_secs_f64())
        .max(load_seconds);
    Ok(StepResult {
        load,
        sent: book.sent.len() as u64,
        unacknowledged: (book.sent.len() - book.acked.len().min(book.sent.len())) as u64,
        resent: book.resent,
        cross_pairs,
        seconds: load_seconds,
        ack_seconds,
        acked_per_second: acked / ack_seconds.max(0.001),
        ack: book.ack.summary(),
        delivery_same: book.delivery_same.summary(),
        delivery_cross: book.delivery_cross.summary(),
        event_lag: event_lag.summary(),
        loss,
        backlog_at_load_end,
        backlog_after_settle,
        cpu,
    })
}

/// One pair's sockets: the sender's, its receiver and the receiver's.
type Pair = (Connection, UserId, Connection);

/// Opens `pairs` pairs of fresh users' sockets through nginx. Senders first, then receivers in
/// the order 0, 2, 4, …, 1, 3, …: nginx balances new sockets by open connections, so about half
/// the pairs land on two instances.
async fn connect_pairs(stack: &Stack, pairs: usize) -> Result<Vec<Pair>, BenchError> {
    let url = format!("ws://{}/ws", stack.authority);
    let dialer = Dialer::new(None);
    let mut senders = Vec::with_capacity(pairs);
    for _ in 0..pairs {
        let (sender, receiver) = (system_tests::user(), system_tests::user());
        let connection = connect(&dialer, &url, &stack.token(sender)).await?;
        senders.push((sender, receiver, connection));
    }
    let mut receivers: Vec<Option<Connection>> = (0..pairs).map(|_| None).collect();
    for pair in (0..pairs).step_by(2).chain((1..pairs).step_by(2)) {
        let receiver = senders[pair].1;
        receivers[pair] = Some(connect(&dialer, &url, &stack.token(receiver)).await?);
    }
    Ok(senders
        .into_iter()
        .zip(receivers)
        .filter_map(|((_, receiver, sending), receiving)| Some((sending, receiver, receiving?)))
        .collect())
}

/// A load once its senders stopped; acks and deliveries may still be arriving.
struct Driven {
    book: Rc<RefCell<Book>>,
    /// Every socket's outgoing side, to close them once the step is checked.
    closers: Vec<mpsc::UnboundedSender<awc::ws::Message>>,
    cross_pairs: usize,
    started: Instant,
    /// First send to the senders' stop.
    load_seconds: f64,
}

/// Drives `load` over `pairs` for `seconds`, or until `budget` messages were sent in all.
async fn drive(
    target: &Target<'_>,
    pairs: Vec<Pair>,
    load: Load,
    seconds: Duration,
    budget: Option<usize>,
    tag: &str,
) -> Driven {
    let book: Rc<RefCell<Book>> = Rc::default();
    let padding = "x".repeat(target.text_bytes.saturating_sub(24).max(1));
    let started = Instant::now();
    let deadline = started + seconds;
    let mut drivers = Vec::new();
    let mut closers = Vec::new();
    let mut cross_pairs = 0;
    for (pair, (sending, receiver, receiving)) in pairs.into_iter().enumerate() {
        let cross = sending.served_by != receiving.served_by;
        cross_pairs += usize::from(cross);
        let Connection {
            outgoing, incoming, ..
        } = sending;
        let (acks, acked) = mpsc::unbounded_channel();
        actix_web::rt::spawn(read_acks(incoming, outgoing.clone(), book.clone(), acks));
        let Connection {
            outgoing: receiver_out,
            incoming: receiver_in,
            ..
        } = receiving;
        actix_web::rt::spawn(read_deliveries(receiver_in, book.clone(), cross));
        closers.push(outgoing.clone());
        closers.push(receiver_out);
        let sender = PairSender {
            outgoing,
            book: book.clone(),
            receiver,
            chat_tag: format!("{tag}-{pair}"),
            padding: padding.clone(),
            budget,
        };
        drivers.push(actix_web::rt::spawn(match load {
            Load::Closed { .. } => sender.closed_loop(acked, deadline).boxed_local(),
            Load::Open { pairs, rate } => {
                let period = Duration::from_secs_f64(pairs as f64 / f64::from(rate.max(1)));
                let offset = period.mul_f64(pair as f64 / pairs as f64);
                sender
                    .open_loop(started + offset, period, deadline)
                    .boxed_local()
            }
        }));
    }
    for driver in drivers {
        let _ = driver.await;
    }
    Driven {
        book,
        closers,
        cross_pairs,
        started,
        load_seconds: started.elapsed().as_secs_f64(),
    }
}

/// A closed loop that stopped after a fixed number of sends (the drain phase's load, sent
/// while Kafka is down), its acks in.
pub struct Burst {
    book: Rc<RefCell<Book>>,
    closers: Vec<mpsc::UnboundedSender<awc::ws::Message>>,
    /// Sends (first attempts).
    pub sent: u64,
    /// Of those, acknowledged.
    pub acked: u64,
    /// First send to the last ack.
    pub seconds: f64,
}

impl Burst {
    /// The acknowledged messages' ids.
    pub fn message_ids(&self) -> Vec<String> {
        let book = self.book.borrow();
        book.acked
            .values()
            .map(|acked| acked.message_id.clone())
            .collect()
    }

    /// Closes the sockets, then the loss check against what `watcher` saw.
    pub async fn check(self, stack: &Stack, watcher: &Watcher) -> Loss {
        for closer in self.closers {
            let _ = closer.send(awc::ws::Message::Close(None));
        }
        let book = std::mem::take(&mut *self.book.borrow_mut());
        check(stack, &book, watcher).await.0
    }
}

/// Sends `messages` in a closed loop over `pairs` pairs, then waits up to `settle` for their
/// acks and (a few seconds) their live deliveries.
///
/// # Errors
/// [`BenchError`] when sockets cannot be opened.
pub async fn send_burst(
    target: &Target<'_>,
    pairs: usize,
    messages: usize,
    settle: Duration,
) -> Result<Burst, BenchError> {
    let load = Load::Closed { pairs };
    let connected = connect_pairs(target.stack, load.pairs()).await?;
    // The budget ends the load; the duration only bounds a stack that stopped answering
    // (each pair also gives up after ACK_PATIENCE without an ack).
    let Driven {
        book,
        closers,
        started,
        load_seconds,
        ..
    } = drive(
        target,
        connected,
        load,
        BURST_LIMIT,
        Some(messages),
        "drain",
    )
    .await;
    let settle_until = Instant::now() + settle;
    wait_for_acks(&book, settle_until).await;
    wait_for_deliveries(&book, settle_until).await;
    let (sent, acked, seconds) = {
        let book = book.borrow();
        let seconds = book
            .last_ack
            .map_or(load_seconds, |last| (last - started).as_secs_f64());
        (book.sent.len() as u64, book.acked.len() as u64, seconds)
    };
    Ok(Burst {
        book,
        closers,
        sent,
        acked,
        seconds,
    })
}

/// Connects, retrying for a while as a client would (nginx may be avoiding an instance).
async fn connect(dialer: &Dialer, url: &str, token: &str) -> Result<Connection, BenchError> {
    let mut tries = 0;
    loop {
        match dialer.connect(url, token).await {
            Ok(connection) => return Ok(connection),
            Err(error) if tries >= 20 => return Err(error),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Waits until every acknowledged message's event is in Kafka, for as long as events keep
/// arriving: a relay that lags (its backlog draining at its own pace) is waited for, one that
/// made no progress for `stall` is not. [`EVENTS_PATIENCE`] bounds the whole wait.
async fn wait_for_events(book: &RefCell<Book>, watcher: &Watcher, stall: Duration) {
    let give_up = Instant::now() + EVENTS_PATIENCE;
    let mut seen = 0;
    let mut stalled_at = Instant::now() + stall;
    loop {
        let (now_seen, wanted) = {
            let book = book.borrow();
            let ids = book.acked.values().map(|acked| &acked.message_id);
            (watcher.count_seen(ids), book.acked.len())
        };
        let now = Instant::now();
        if now_seen >= wanted || now >= stalled_at || now >= give_up {
            return;
        }
        if now_seen > seen {
            seen = now_seen;
            stalled_at = now + stall;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every sent message is acknowledged, or `until`.
async fn wait_for_acks(book: &RefCell<Book>, until: Instant) {
    wait_until(until, || {
        let book = book.borrow();
        book.acked.len() >= book.sent.len()
    })
    .await;
}

/// Waits a few seconds at most (and never past `until`) for every acknowledged message to be
/// delivered live.
async fn wait_for_deliveries(book: &RefCell<Book>, until: Instant) {
    let live_until = (Instant::now() + Duration::from_secs(5)).min(until);
    wait_until(live_until, || {
        let book = book.borrow();
        book.acked
            .values()
            .all(|acked| book.delivered.contains(&acked.message_id))
    })
    .await;
}

async fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) {
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One pair's sending side.
struct PairSender {
    outgoing: mpsc::UnboundedSender<awc::ws::Message>,
    book: Rc<RefCell<Book>>,
    receiver: UserId,
    chat_tag: String,
    padding: String,
    /// Sends allowed to all pairs together (`None`: until the deadline).
    budget: Option<usize>,
}

impl PairSender {
    /// Queues message `n`, noting `at` as its send time; false once the socket is gone or the
    /// budget is spent.
    fn send(&self, n: u64, at: Instant) -> bool {
        if self
            .budget
            .is_some_and(|budget| self.book.borrow().sent.len() >= budget)
        {
            return false;
        }
        let client_msg_id = format!("{}-{n}", self.chat_tag);
        let frame = json!({
            "type": "send", "client_msg_id": client_msg_id,
            "to_user_id": self.receiver.to_string(), "kind": "text",
            "content": format!("{client_msg_id} {}", self.padding),
        });
        let queued = self
            .outgoing
            .send(awc::ws::Message::Text(frame.to_string().into()))
            .is_ok();
        self.book
            .borrow_mut()
            .sent
            .insert(client_msg_id, (at, frame));
        queued
    }

    async fn closed_loop(self, mut acked: mpsc::UnboundedReceiver<()>, deadline: Instant) {
        let mut n = 0;
        while Instant::now() < deadline {
            n += 1;
            if !self.send(n, Instant::now()) {
                return;
            }
            match tokio::time::timeout(ACK_PATIENCE, acked.recv()).await {
                Ok(Some(())) => {}
                // No ack in time, or the socket ended: this pair stops; the book shows it.
                Ok(None) | Err(_) => return,
            }
        }
    }

    async fn open_loop(self, first: Instant, period: Duration, deadline: Instant) {
        let mut ticks = tokio::time::interval_at(first, period);
        // Late ticks are sent at once and keep their scheduled time: the queue shows up as
        // latency instead of as a lower offered rate.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut n = 0;
        loop {
            let at = ticks.tick().await;
            if at >= deadline {
                return;
            }
            n += 1;
            if !self.send(n, at) {
                return;
            }
        }
    }
}

/// Reads a sender's socket: records acks, resends what was answered with an error.
async fn read_acks(
    mut incoming: mpsc::UnboundedReceiver<Value>,
    outgoing: mpsc::UnboundedSender<awc::ws::Message>,
    book: Rc<RefCell<Book>>,
    acks: mpsc::UnboundedSender<()>,
) {
    while let Some(frame) = incoming.recv().await {
        let now = Instant::now();
        match frame["type"].as_str() {
            Some("ack") => {
                let client_msg_id = frame["client_msg_id"].as_str().unwrap_or_default();
                let mut book = book.borrow_mut();
                let Some((sent_at, sent)) = book.sent.get(client_msg_id) else {
                    continue;
                };
                if book.acked.contains_key(client_msg_id) {
                    continue;
                }
                let (sent_at, receiver) = (*sent_at, sent["to_user_id"].clone());
                let (Some(message_id), Some(chat), Some(receiver)) = (
                    frame["message_id"].as_str(),
                    frame["chat_id"].as_str().and_then(|id| id.parse().ok()),
                    receiver.as_str().and_then(|id| id.parse().ok()),
                ) else {
                    continue;
                };
                book.ack.record(now - sent_at);
                book.last_ack = Some(now);
                let acked = Acked {
                    message_id: message_id.to_owned(),
                    at: now,
                    receiver: UserId::from_uuid(receiver),
                    chat: ChatId::from_uuid(chat),
                };
                book.acked.insert(client_msg_id.to_owned(), acked);
                let _ = acks.send(());
            }
            Some("error") => {
                let reference = frame["ref"].as_str().unwrap_or_default();
                let resend = {
                    let mut book = book.borrow_mut();
                    let frame = book.sent.get(reference).map(|(_, frame)| frame.to_string());
                    book.resent += u64::from(frame.is_some());
                    frame
                };
                if let Some(frame) = resend {
                    let outgoing = outgoing.clone();
                    actix_web::rt::spawn(async move {
                        tokio::time::sleep(RESEND_PAUSE).await;
                        let _ = outgoing.send(awc::ws::Message::Text(frame.into()));
                    });
                }
            }
            _ => {}
        }
    }
}

/// Reads a receiver's socket: records each message's delivery.
async fn read_deliveries(
    mut incoming: mpsc::UnboundedReceiver<Value>,
    book: Rc<RefCell<Book>>,
    cross: bool,
) {
    while let Some(frame) = incoming.recv().await {
        if frame["type"] != "message" {
            continue;
        }
        let now = Instant::now();
        let message = &frame["message"];
        let (Some(client_msg_id), Some(message_id)) = (
            message["client_msg_id"].as_str(),
            message["message_id"].as_str(),
        ) else {
            continue;
        };
        let mut book = book.borrow_mut();
        if !book.delivered.insert(message_id.to_owned()) {
            continue;
        }
        if let Some((sent_at, _)) = book.sent.get(client_msg_id) {
            let latency = now - *sent_at;
            if cross {
                book.delivery_cross.record(latency);
            } else {
                book.delivery_same.record(latency);
            }
        }
    }
}

/// The loss check and the ack→event lag.
async fn check(stack: &Stack, book: &Book, watcher: &Watcher) -> (Loss, Recorder) {
    let mut loss = Loss {
        acked: book.acked.len() as u64,
        ..Loss::default()
    };
    let mut lag = Recorder::new();
    // History is read only for chats with a message that was not delivered live.
    let mut missing: BTreeMap<(UserId, ChatId), Vec<&str>> = BTreeMap::new();
    for acked in book.acked.values() {
        if book.delivered.contains(&acked.message_id) {
            loss.delivered_live += 1;
        } else {
            missing
                .entry((acked.receiver, acked.chat))
                .or_default()
                .push(&acked.message_id);
        }
        match watcher.seen(&acked.message_id) {
            None => loss.kafka_missing += 1,
            Some(seen) => {
                if seen.event_ids.len() == 1 {
                    loss.kafka_ok += 1;
                } else {
                    loss.kafka_conflicting += 1;
                }
                loss.kafka_repeats += seen.records.saturating_sub(seen.event_ids.len() as u64);
                lag.record(seen.first.saturating_duration_since(acked.at));
            }
        }
    }
    for ((receiver, chat), ids) in missing {
        let history: HashSet<String> = stack
            .history(receiver, chat, 100)
            .await
            .iter()
            .filter_map(|message| message["message_id"].as_str().map(str::to_owned))
            .collect();
        for id in ids {
            if history.contains(id) {
                loss.from_history += 1;
            } else {
                loss.lost += 1;
            }
        }
    }
    (loss, lag)
}

/// `chat_outbox_backlog` of every running instance, from its own `/metrics`.
pub async fn outbox_backlog() -> BTreeMap<String, i64> {
    let mut backlog = BTreeMap::new();
    for instance in crate::procs::instances() {
        let url = format!("http://127.0.0.1:{}/metrics", instance.port);
        let value = match metric(&url, "chat_outbox_backlog").await {
            Ok(value) => value,
            Err(error) => {
                eprintln!("chat-bench: {error}");
                -1
            }
        };
        backlog.insert(format!("instance-{}", instance.number), value);
    }
    backlog
}

/// One gauge from a Prometheus text page.
async fn metric(url: &str, name: &str) -> Result<i64, BenchError> {
    let mut response = awc::Client::default()
        .get(url)
        .send()
        .await
        .map_err(|error| BenchError::Http(format!("{url}: {error}")))?;
    let body = response
        .body()
        .limit(8 << 20)
        .await
        .map_err(|error| BenchError::Http(format!("{url}: {error}")))?;
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(' ')?;
            value.trim().parse::<f64>().ok()
        })
        .map(|value| value as i64)
        .ok_or_else(|| BenchError::Http(format!("{url}: no {name}")))
}
