//! Shared by the Redis adapter's tests: the test cluster's address, per-test key prefixes,
//! sealed messages, a recording `LocalDelivery`, and `redis-cli` / `redis-cluster.sh` helpers.
#![allow(dead_code)] // Each test binary uses a different part.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chat_domain::testing::sealed_message;
use chat_domain::{LiveEvent, LocalDelivery, MessageIdGenerator, StoredMessage, UserId};
pub use chat_redis::RedisConfig;
use chat_redis::RedisConnection;
use uuid::Uuid;

/// The seed nodes of the test cluster (`CHAT_TEST_REDIS`, set by `deploy/local/test.sh`).
pub fn seed_nodes() -> Vec<String> {
    std::env::var("CHAT_TEST_REDIS")
        .unwrap_or_else(|_| "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003".to_owned())
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// A configuration with a key prefix of its own, so tests never see each other's keys.
pub fn test_config() -> RedisConfig {
    RedisConfig {
        nodes: seed_nodes(),
        key_prefix: format!("t{}", &Uuid::new_v4().simple().to_string()[..12]),
        command_timeout_ms: 1_000,
        recent_window: 5,
        ..RedisConfig::default()
    }
}

/// A connection that answered, or a failed test: a missing cluster is an error, never a skip.
pub async fn connect(config: RedisConfig) -> RedisConnection {
    let connection = RedisConnection::start(config).unwrap();
    connection
        .wait_connected(Duration::from_secs(10))
        .await
        .unwrap_or_else(|error| {
            panic!(
                "the test Redis cluster does not answer at {:?} (start it with \
                 deploy/local/redis-cluster.sh start --replicas): {error}",
                seed_nodes()
            )
        });
    connection
}

/// A cipher with fixed test keys: what the cache holds is real AES-GCM ciphertext.
pub fn test_cipher() -> chat_crypto::MessageCipher {
    let config = chat_crypto::CryptoConfig {
        active_key_id: 1,
        keys: [(
            "1".to_owned(),
            secrecy::SecretString::from("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
        )]
        .into(),
        digest_key: secrecy::SecretString::from("ZGlnZXN0LWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OWFi"),
    };
    chat_crypto::MessageCipher::from_config(&config).unwrap()
}

/// Builds sealed messages between users.
pub struct Messages {
    cipher: chat_crypto::MessageCipher,
    ids: MessageIdGenerator,
    count: Mutex<u64>,
}

impl Default for Messages {
    fn default() -> Self {
        Self {
            cipher: test_cipher(),
            ids: MessageIdGenerator::new(),
            count: Mutex::new(0),
        }
    }
}

impl Messages {
    /// The next message from `sender` to `recipient` carrying `text`.
    pub fn next(&self, sender: UserId, recipient: UserId, text: &str) -> StoredMessage {
        let mut count = self.count.lock().unwrap();
        *count += 1;
        let key = format!("m{count}");
        sealed_message(&self.cipher, &self.ids, sender, recipient, &key, text)
    }
}

/// A fresh user.
pub fn user() -> UserId {
    UserId::from_uuid(Uuid::new_v4())
}

/// A `LocalDelivery` that records what it was handed, for users marked connected.
#[derive(Default)]
pub struct Recorder {
    delivered: Mutex<Vec<(UserId, LiveEvent)>>,
    here: Mutex<HashSet<UserId>>,
    /// How long each delivery blocks: a connection registry under heavy load.
    pause: Duration,
}

impl Recorder {
    /// A recorder whose every delivery takes `pause`.
    pub fn slow(pause: Duration) -> Self {
        Self {
            pause,
            ..Self::default()
        }
    }

    pub fn connect(&self, user: UserId) {
        self.here.lock().unwrap().insert(user);
    }

    pub fn delivered(&self) -> Vec<(UserId, LiveEvent)> {
        self.delivered.lock().unwrap().clone()
    }

    pub fn count_for(&self, user: UserId) -> usize {
        self.delivered
            .lock()
            .unwrap()
            .iter()
            .filter(|(to, _)| *to == user)
            .count()
    }
}

impl LocalDelivery for Recorder {
    fn deliver(&self, user: UserId, event: &LiveEvent) -> bool {
        if !self.pause.is_zero() {
            std::thread::sleep(self.pause);
        }
        self.delivered.lock().unwrap().push((user, event.clone()));
        self.here.lock().unwrap().contains(&user)
    }

    fn is_connected_here(&self, user: UserId) -> bool {
        self.here.lock().unwrap().contains(&user)
    }
}

/// Waits until `check` holds, polling; panics with `what` after `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The port of each seed node.
pub fn ports() -> Vec<u16> {
    seed_nodes()
        .iter()
        .map(|node| node.rsplit_once(':').unwrap().1.parse().unwrap())
        .collect()
}

/// Runs `redis-cli -p port args…` and returns its output.
pub fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "redis-cli {args:?} failed");
    String::from_utf8(output.stdout).unwrap()
}

/// The ports of the nodes that are masters now (asked from any seed node that answers).
pub fn master_ports() -> Vec<u16> {
    slot_owners()
        .iter()
        .map(|(port, _)| *port)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The ports of the nodes that are replicas now.
pub fn replica_ports() -> Vec<u16> {
    cluster_nodes()
        .lines()
        .filter(|line| line.contains("slave") && !line.contains("fail"))
        .filter_map(node_port_of)
        .collect()
}

/// Each master's port with the slot ranges it serves.
pub fn slot_owners() -> Vec<(u16, Vec<(u16, u16)>)> {
    cluster_nodes()
        .lines()
        .filter(|line| line.contains("master") && !line.contains("fail"))
        .filter_map(|line| {
            let port = node_port_of(line)?;
            let ranges = line
                .split_whitespace()
                .skip(8)
                .filter(|field| !field.starts_with('['))
                .filter_map(|field| {
                    let (start, end) = field.split_once('-').unwrap_or((field, field));
                    Some((start.parse().ok()?, end.parse().ok()?))
                })
                .collect();
            Some((port, ranges))
        })
        .collect()
}

/// The port of the master serving `slot`.
pub fn owner_of(slot: u16) -> Option<u16> {
    slot_owners()
        .into_iter()
        .find(|(_, ranges)| {
            ranges
                .iter()
                .any(|(start, end)| (*start..=*end).contains(&slot))
        })
        .map(|(port, _)| port)
}

/// The hash slot of a key or channel.
pub fn keyslot(name: &str) -> u16 {
    for port in ports() {
        if let Ok(output) = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "cluster", "keyslot", name])
            .output()
            && let Ok(slot) = String::from_utf8_lossy(&output.stdout).trim().parse()
        {
            return slot;
        }
    }
    panic!("no node of the test cluster answers CLUSTER KEYSLOT");
}

fn node_port_of(line: &str) -> Option<u16> {
    let address = line.split_whitespace().nth(1)?;
    address.split(['@', ':']).nth(1)?.parse().ok()
}

/// CLUSTER NODES, asked from any seed node that answers.
fn cluster_nodes() -> String {
    for port in ports() {
        let Ok(output) = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "cluster", "nodes"])
            .output()
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if text.contains("master") {
            return text;
        }
    }
    panic!("no node of the test cluster answers CLUSTER NODES");
}

/// Runs `deploy/local/redis-cluster.sh args…` (on the cluster `deploy/local/test.sh` started:
/// it passes REDIS_CLUSTER_PORT and CHAT_REDIS_HOME down).
pub fn cluster_script(args: &[&str]) {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/redis-cluster.sh");
    let status = Command::new("bash")
        .arg(script)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "redis-cluster.sh {args:?} failed");
}

/// One test at a time in this test binary: the guard of a lock every caller shares, for tests
/// that stop, kill or pause the test Redis cluster.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}
