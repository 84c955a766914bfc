//! The drain phase (issue #11: the relays must drain at ≥ 2× the highest acknowledged send
//! rate). With Kafka stopped the relays publish nothing, so a closed-loop load sent then
//! leaves exactly its acknowledged messages (plus whatever was pending) in the outboxes. Kafka
//! is started again and a watcher, reading from the offsets noted before the load, times how
//! fast every acknowledged message's event appears.
//!
//! Kafka is stopped and started with the project's own `deploy/local/kafka.sh`, and started
//! again on every path out of the phase, a panic included ([`KafkaDown`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::e2e::{self, Loss};
use crate::error::BenchError;
use crate::kafka::Watcher;
use crate::procs::{self, CpuSnapshot, CpuUse};

/// The longest wait, from Kafka's return, for the last event: a relay slower than this is
/// reported as a timeout.
const DRAIN_PATIENCE: Duration = Duration::from_secs(300);

/// What the drain phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct DrainResult {
    /// Messages the load was to send (`--drain-messages`).
    pub messages: usize,
    /// Sender/receiver pairs of the closed loop.
    pub pairs: usize,
    /// Sends (first attempts).
    pub sent: u64,
    /// Seconds from the first send to the last ack, Kafka down.
    pub send_seconds: f64,
    /// Acknowledged messages per second with Kafka down: the rate the backlog grew at.
    pub send_rate: f64,
    /// Seconds `kafka.sh start` took until the broker answered (not part of the drain time).
    pub kafka_start_seconds: f64,
    /// `chat_outbox_backlog` per instance when Kafka answered again; the gauge is refreshed
    /// every few seconds, so it may lag the real backlog (-1: no answer).
    pub backlog_at_kafka_return: BTreeMap<String, i64>,
    /// Acknowledged messages whose event was seen after Kafka returned.
    pub events_seen: u64,
    /// Seconds from Kafka answering to the last acknowledged message's event.
    pub drain_seconds: f64,
    /// `events_seen / drain_seconds`.
    pub drain_rate: f64,
    /// `drain_rate / send_rate`: the issue asks for at least 2 against the run's best e2e rate
    /// (see `Ratios::drain_e2e`); against this load's own rate it is shown as well.
    pub drain_send: Option<f64>,
    /// Not every event appeared within [`DRAIN_PATIENCE`].
    pub timed_out: bool,
    /// Every acknowledged message delivered or in history, with exactly one event id.
    pub loss: Loss,
    /// CPU seconds per process from Kafka answering to the last event (or the timeout).
    pub cpu: Vec<CpuUse>,
}

/// Runs the phase: note the topic's offsets, stop Kafka, send `messages` over `pairs` pairs,
/// start Kafka, wait for every event.
///
/// # Errors
/// [`BenchError`] when Kafka cannot be stopped or started, or sockets cannot be opened. Kafka
/// is started again before any error returns.
pub async fn run(
    target: &e2e::Target<'_>,
    pairs: usize,
    messages: usize,
    settle: Duration,
) -> Result<DrainResult, BenchError> {
    let topic = target.stack.settings.kafka.topic.clone();
    // Noted while Kafka runs: the watcher started after its return reads from here, so the
    // events of the backlog are all seen, however quickly the relays publish them.
    let offsets = Watcher::offsets(target.brokers.clone(), &topic).await?;
    let down = KafkaDown::stop().await?;
    let burst = e2e::send_burst(target, pairs, messages, settle).await;
    let backlog_while_down = e2e::outbox_backlog().await;
    eprintln!("chat-bench: drain: backlog with Kafka down {backlog_while_down:?}");
    let start_began = Instant::now();
    // Started whatever the load did, so an error below never leaves Kafka stopped.
    down.start().await?;
    let ready = Instant::now();
    let burst = burst?;
    // Kafka has a new pid: CPU is read from the processes running now.
    let parts = procs::stack_parts();
    let cpu_before = CpuSnapshot::take(&parts);
    let backlog_at_kafka_return = e2e::outbox_backlog().await;
    let watcher = Watcher::start_from(target.brokers.clone(), topic, &offsets).await?;

    let ids = burst.message_ids();
    let give_up = ready + DRAIN_PATIENCE;
    let timed_out = loop {
        if watcher.count_seen(ids.iter()) >= ids.len() {
            break false;
        }
        if Instant::now() >= give_up {
            break true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let cpu = CpuSnapshot::take(&parts).since(&cpu_before);
    let last_seen = ids
        .iter()
        .filter_map(|id| watcher.seen(id))
        .map(|seen| seen.first)
        .max();
    let events_seen = watcher.count_seen(ids.iter()) as u64;
    let drain_seconds = last_seen.map_or(0.0, |last| {
        last.saturating_duration_since(ready).as_secs_f64()
    });
    let drain_rate = events_seen as f64 / drain_seconds.max(0.001);
    let send_rate = burst.acked as f64 / burst.seconds.max(0.001);
    let (sent, send_seconds) = (burst.sent, burst.seconds);
    let loss = burst.check(target.stack, &watcher).await;
    watcher.stop();
    Ok(DrainResult {
        messages,
        pairs,
        sent,
        send_seconds,
        send_rate,
        kafka_start_seconds: (ready - start_began).as_secs_f64(),
        backlog_at_kafka_return,
        events_seen,
        drain_seconds,
        drain_rate,
        drain_send: (send_rate > 0.0).then(|| drain_rate / send_rate),
        timed_out,
        loss,
        cpu,
    })
}

/// Kafka stopped by this phase. [`KafkaDown::start`] starts it again; dropped without that
/// (a panic, a cancelled future), it starts Kafka itself, blocking.
struct KafkaDown {
    restarted: bool,
}

impl KafkaDown {
    /// Stops Kafka (`kafka.sh stop`: a controlled shutdown).
    ///
    /// # Errors
    /// [`BenchError::Setup`] when the script fails; Kafka is started again first, since a
    /// failed stop may still have stopped it.
    async fn stop() -> Result<Self, BenchError> {
        let down = Self { restarted: false };
        kafka_script("stop").await?;
        Ok(down)
    }

    /// Starts Kafka and waits until it answers (`kafka.sh start`).
    ///
    /// # Errors
    /// [`BenchError::Setup`] when the script fails.
    async fn start(mut self) -> Result<(), BenchError> {
        self.restarted = true;
        kafka_script("start").await
    }
}

impl Drop for KafkaDown {
    fn drop(&mut self) {
        if !self.restarted {
            eprintln!("chat-bench: drain: starting Kafka again");
            if let Err(error) = run_kafka_script("start") {
                eprintln!("chat-bench: drain: Kafka not restarted: {error}");
            }
        }
    }
}

/// `deploy/local/kafka.sh command` on a blocking thread (a stop waits up to
/// `KAFKA_STOP_TIMEOUT`, a start until the broker answers), with this process's environment
/// (`KAFKA_PORT`, `CHAT_KAFKA_HOME`, …: the stack being measured).
async fn kafka_script(command: &'static str) -> Result<(), BenchError> {
    actix_web::rt::task::spawn_blocking(move || run_kafka_script(command))
        .await
        .map_err(|error| BenchError::Setup(format!("kafka.sh {command}: {error}")))?
}

fn run_kafka_script(command: &str) -> Result<(), BenchError> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/kafka.sh");
    let status = Command::new("bash").arg(&script).arg(command).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(BenchError::Setup(format!("kafka.sh {command}: {status}")))
    }
}
