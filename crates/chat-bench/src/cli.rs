//! The command line: which phases, how long, how hard. Defaults make a full run take about
//! four minutes on the development machine; `--smoke` shrinks every phase to seconds.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// One benchmark phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// Plain `INSERT` of one `messages` row: the store's ceiling.
    Raw,
    /// The dedup claim alone (a lightweight transaction).
    Claim,
    /// `CassandraStore::append`: the claim, then the message and outbox rows in parallel.
    Append,
    /// The send path until 2026-11-30 (the claim, then one logged batch of the message, outbox
    /// and index rows), to compare old and new in one run. Not in the default list.
    Batched,
    /// Through nginx over WebSocket, closed loop and fixed rate.
    E2e,
    /// Idle authenticated sockets on one instance: memory per socket.
    Idle,
    /// Kafka stopped, a backlog sent, Kafka started: how fast the relays drain it. Never in
    /// the default list (it stops a part of the stack).
    Drain,
}

/// Benchmarks the running local stack (`deploy/local/up.sh`) and writes `results.json`,
/// `results.md` and `latency.svg`.
#[derive(Debug, Clone, Parser)]
#[command(name = "chat-bench", version)]
pub struct Args {
    /// The phases to run, in this order. Idle comes before e2e by default: memory the e2e
    /// loads leave freed in the instance would be reused by the idle sockets and hide their
    /// cost.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "raw,claim,append,idle,e2e"
    )]
    pub phases: Vec<Phase>,
    /// Seconds: tiny phases, a few users; exits non-zero when an acknowledged message is lost.
    /// Never judges speed.
    #[arg(long)]
    pub smoke: bool,
    /// Where the results go (default `target/chat-bench/<UTC timestamp>`).
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Concurrent writers of the store phases (raw, claim, append).
    #[arg(long, default_value_t = 32)]
    pub writers: usize,
    /// Seconds each store phase runs.
    #[arg(long, default_value_t = 10)]
    pub store_seconds: u64,
    /// Operations per store phase instead of a duration.
    #[arg(long)]
    pub store_count: Option<u64>,
    /// Chats the store phases spread their rows over.
    #[arg(long, default_value_t = 50)]
    pub chats: usize,
    /// Bytes of message text (every phase; the service seals it as it would a user's).
    #[arg(long, default_value_t = 64)]
    pub text_bytes: usize,

    /// Closed-loop loads: pairs of users, each sender sending its next message once the
    /// previous one is acknowledged.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
    pub pairs: Vec<usize>,
    /// Open-loop loads, messages per second offered whatever the answers.
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000")]
    pub rates: Vec<u32>,
    /// Pairs that share an open-loop load.
    #[arg(long, default_value_t = 50)]
    pub rate_pairs: usize,
    /// Seconds each end-to-end load runs.
    #[arg(long, default_value_t = 10)]
    pub e2e_seconds: u64,
    /// Seconds to wait, after a load, for the last acks and deliveries; for its Kafka events,
    /// the longest pause between two new ones (a lagging relay is waited for while it drains,
    /// up to 5 minutes).
    #[arg(long, default_value_t = 30)]
    pub settle_seconds: u64,

    /// Messages the drain phase sends while Kafka is down.
    #[arg(long, default_value_t = 5_000)]
    pub drain_messages: usize,
    /// Closed-loop pairs sending the drain phase's messages.
    #[arg(long, default_value_t = 50)]
    pub drain_pairs: usize,

    /// Idle sockets to open on one instance.
    #[arg(long, default_value_t = 5_000)]
    pub idle_sockets: usize,
    /// Seconds the idle sockets stay open before the instance's memory is read again.
    #[arg(long, default_value_t = 10)]
    pub idle_seconds: u64,
    /// Idle sockets per loopback source address (default: 90 % of the kernel's ephemeral
    /// port range); more sockets than this spread over 127.0.0.2, .3, …
    #[arg(long)]
    pub idle_per_address: Option<usize>,
    /// Concurrent handshakes while opening idle sockets.
    #[arg(long, default_value_t = 64)]
    pub idle_handshakes: usize,
}

impl Args {
    /// The settings `--smoke` stands for: every phase tiny, every phase still exercised.
    pub fn smoke_sized(mut self) -> Self {
        if self.smoke {
            self.writers = 4;
            self.store_seconds = 1;
            self.store_count = Some(200);
            self.chats = 5;
            self.pairs = vec![3];
            self.rates = vec![20];
            self.rate_pairs = 3;
            self.e2e_seconds = 2;
            self.settle_seconds = 30;
            self.idle_sockets = 40;
            self.idle_seconds = 1;
        }
        self
    }

    /// How long each store phase runs (ignored when a count is given).
    pub fn store_duration(&self) -> Duration {
        Duration::from_secs(self.store_seconds)
    }
}
