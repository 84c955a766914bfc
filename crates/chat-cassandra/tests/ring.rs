//! The adapter on a 3-node ring with replication factor 3 and QUORUM, as production runs it:
//! migrations leave every node on one schema, and one node crashing or hanging under traffic
//! neither stops writes nor loses an acknowledged message.
//!
//! It needs a ring of its own, named by `CHAT_TEST_CASSANDRA_RING` (the three contact points)
//! and started by `deploy/local/cassandra.sh start --nodes 3` with the same environment (the
//! test kills and restarts node 1 through that script). `deploy/local/test.sh` runs it in a
//! phase of its own, after the single-node suite: `cargo test -p chat-cassandra --features
//! ring-tests --test ring`. Without the ring it fails; it never skips.
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chat_cassandra::{CassandraConfig, Replication};
use chat_domain::{ChatId, MessageId, MessageStore, PageStart};
use common::{Fixture, cassandra, cassandra_script, one_at_a_time, test_config, user};
use time::OffsetDateTime;

fn ring_config() -> CassandraConfig {
    let ring = std::env::var("CHAT_TEST_CASSANDRA_RING").expect(
        "CHAT_TEST_CASSANDRA_RING names the 3-node ring's contact points \
         (deploy/local/cassandra.sh start --nodes 3; deploy/local/test.sh does it)",
    );
    let contact_points: Vec<String> = ring.split(',').map(str::to_owned).collect();
    assert_eq!(contact_points.len(), 3, "three nodes: {ring}");
    CassandraConfig {
        contact_points,
        replication: Replication {
            class: "SimpleStrategy".to_owned(),
            replication_factor: 3,
            ..Replication::default()
        },
        // Two of three replicas, as LOCAL_QUORUM in one datacenter.
        consistency: "quorum".to_owned(),
        request_timeout_ms: 2_000,
        ..test_config()
    }
}

#[tokio::test]
async fn migrations_leave_every_node_on_one_schema_version() {
    let _turn = one_at_a_time().await;
    let config = ring_config();
    chat_cassandra::migrate(&config).await.unwrap();

    // Asked right away, each node reports the schema versions of all three (nodetool gathers
    // them from the nodes themselves): one version, held by three nodes.
    for node in ["1", "2", "3"] {
        let output = cassandra_script()
            .args(["nodetool", "--node", node, "describecluster"])
            .output()
            .unwrap();
        assert!(output.status.success(), "nodetool on node {node} failed");
        let report = String::from_utf8_lossy(&output.stdout);
        let versions: Vec<&str> = report
            .lines()
            .skip_while(|line| !line.contains("Schema versions:"))
            .skip(1)
            .take_while(|line| !line.trim().is_empty())
            .collect();
        assert_eq!(versions.len(), 1, "node {node} sees:\n{report}");
        assert_eq!(
            versions[0].matches("127.0.0.").count(),
            3,
            "node {node} sees:\n{report}"
        );
    }

    // And every node serves the new tables at once.
    let fixture = Fixture::with_config(config).await;
    let (alice, bob) = (user(), user());
    let chat = ChatId::for_pair(alice, bob);
    let (message, event) = fixture.message(chat, alice, bob, "first", "hello, ring");
    fixture.store.append(&message, &event).await.unwrap();
    let page = fixture
        .store
        .page(chat, &PageStart::Newest, 10)
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 1);
}

/// What one writer got acknowledged.
struct Acked {
    chat: ChatId,
    ids: Vec<MessageId>,
    errors: usize,
    /// The longest a message waited from its first failed attempt to its ack.
    longest_stall: Duration,
}

/// How node 1 fails, and how it comes back.
#[derive(Clone, Copy)]
enum Fault {
    /// SIGKILL, then a restart.
    Crash,
    /// SIGSTOP (a long GC pause, a partition): its sockets stay open but nothing answers.
    Hang,
}

impl Fault {
    fn start(self) {
        match self {
            Self::Crash => cassandra(&["kill-node", "1"]),
            Self::Hang => cassandra(&["pause-node", "1"]),
        }
    }

    fn end(self) {
        match self {
            // The script waits until the node serves CQL and sees its peers.
            Self::Crash => cassandra(&["start-node", "1"]),
            Self::Hang => cassandra(&["resume-node", "1"]),
        }
    }
}

#[tokio::test]
async fn a_node_crashing_under_traffic_loses_no_acknowledged_message() {
    let _turn = one_at_a_time().await;
    // The worst case: the node that dies is the only contact point (one seed, one host name),
    // so the session that replaces a broken one must bootstrap from the nodes it discovered.
    let mut config = ring_config();
    config.contact_points.truncate(1);
    writes_survive(Fault::Crash, config).await;
}

#[tokio::test]
async fn a_node_hanging_under_traffic_loses_no_acknowledged_message() {
    let _turn = one_at_a_time().await;
    writes_survive(Fault::Hang, ring_config()).await;
}

/// Ends a fault when dropped, so that a failed assertion does not leave node 1 down for the
/// tests that follow.
struct Ongoing(Option<Fault>);

impl Ongoing {
    fn end(mut self) {
        if let Some(fault) = self.0.take() {
            fault.end();
        }
    }
}

impl Drop for Ongoing {
    fn drop(&mut self) {
        if let Some(fault) = self.0.take() {
            fault.end();
        }
    }
}

/// Four writers send while node 1 fails; checks that writes go on, and that every
/// acknowledged message is stored once, while node 1 is down and after it is back.
async fn writes_survive(fault: Fault, config: CassandraConfig) {
    let fixture = Arc::new(Fixture::with_config(config).await);
    let stop = Arc::new(AtomicBool::new(false));
    let node_down = Arc::new(AtomicBool::new(false));
    let acked_while_down = Arc::new(std::sync::atomic::AtomicUsize::new(0));

    // Four writers, each in its own chat. A failed append is sent again with the same
    // client_msg_id until it is acknowledged, as a client does: dedup keeps it to one message.
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (fixture, stop) = (fixture.clone(), stop.clone());
            let (node_down, acked_while_down) = (node_down.clone(), acked_while_down.clone());
            tokio::spawn(async move {
                let (alice, bob) = (user(), user());
                let chat = ChatId::for_pair(alice, bob);
                let mut acked = Acked {
                    chat,
                    ids: Vec::new(),
                    errors: 0,
                    longest_stall: Duration::ZERO,
                };
                let mut sequence = 0;
                while !stop.load(Ordering::Relaxed) {
                    sequence += 1;
                    let (message, event) = fixture.message(
                        chat,
                        alice,
                        bob,
                        &format!("w{writer}-{sequence}"),
                        &format!("message {sequence} of writer {writer}"),
                    );
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let mut first_failure = None;
                    loop {
                        match fixture.store.append(&message, &event).await {
                            Ok(appended) => {
                                let stored = match appended {
                                    chat_domain::Appended::Stored => message.id,
                                    chat_domain::Appended::Duplicate(first) => first.id,
                                };
                                acked.ids.push(stored);
                                if let Some(failed_at) = first_failure {
                                    let stall = Instant::elapsed(&failed_at);
                                    acked.longest_stall = acked.longest_stall.max(stall);
                                }
                                if node_down.load(Ordering::Relaxed) {
                                    acked_while_down.fetch_add(1, Ordering::Relaxed);
                                }
                                break;
                            }
                            Err(error) => {
                                acked.errors += 1;
                                first_failure.get_or_insert_with(Instant::now);
                                assert!(
                                    Instant::now() < deadline,
                                    "writer {writer}: no append for 60 s with two of three \
                                     nodes up: {error}"
                                );
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                }
                acked
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    // Node 1 is the first contact point, which holds the driver's control connection.
    fault.start();
    let ongoing = Ongoing(Some(fault));
    node_down.store(true, Ordering::Relaxed);

    // Writes go on with two nodes: at least 200 acknowledged while node 1 is down.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_while_down.load(Ordering::Relaxed) < 200 {
        assert!(
            Instant::now() < deadline,
            "only {} appends acknowledged in 60 s with node 1 down",
            acked_while_down.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for writer in writers {
        all.push(writer.await.unwrap());
    }

    // With node 1 still down, every acknowledged message is there, once, in order; the first
    // reader to mark one seen wins (a lightweight transaction needs a quorum too).
    assert_every_acked_message_is_stored_once(&fixture, &all).await;
    let first = &all[0];
    let seen_at = OffsetDateTime::now_utc();
    let seen = as_a_client("mark_seen", || {
        fixture.store.mark_seen(first.chat, first.ids[0], seen_at)
    })
    .await
    .unwrap();
    assert!(seen.seen_at.is_some());

    // Node 1 comes back: writes go on, and nothing it missed is lost or doubled.
    ongoing.end();
    let (alice, bob) = (user(), user());
    let chat = ChatId::for_pair(alice, bob);
    let (message, event) = fixture.message(chat, alice, bob, "after", "node 1 is back");
    let stored = match as_a_client("append", || fixture.store.append(&message, &event)).await {
        chat_domain::Appended::Stored => message.id,
        chat_domain::Appended::Duplicate(first) => first.id,
    };
    all.push(Acked {
        chat,
        ids: vec![stored],
        errors: 0,
        longest_stall: Duration::ZERO,
    });
    assert_every_acked_message_is_stored_once(&fixture, &all).await;
    let errors: usize = all.iter().map(|acked| acked.errors).sum();
    let total: usize = all.iter().map(|acked| acked.ids.len()).sum();
    let stall = all.iter().map(|acked| acked.longest_stall).max().unwrap();
    eprintln!(
        "{total} messages acknowledged, {errors} failed attempts sent again; the longest a \
         message waited for its ack: {stall:?}"
    );
}

async fn assert_every_acked_message_is_stored_once(fixture: &Fixture, all: &[Acked]) {
    for acked in all {
        let mut stored = Vec::new();
        let mut start = PageStart::Newest;
        loop {
            let page = as_a_client("history read", || {
                fixture.store.page(acked.chat, &start, 500)
            })
            .await;
            stored.extend(page.messages.iter().map(|message| message.id));
            match page.next {
                Some(next) => start = next,
                None => break,
            }
        }
        let unique: BTreeSet<_> = stored.iter().collect();
        assert_eq!(unique.len(), stored.len(), "a message was stored twice");
        let mut expected = acked.ids.clone();
        expected.reverse(); // Pages are newest first; a writer sends one at a time.
        assert_eq!(
            stored, expected,
            "the chat holds exactly what was acknowledged"
        );
    }
}

/// Runs `attempt` again after a failure, as a client asks again after a 503: with a node just
/// crashed or paused and three nodes sharing two cores, a QUORUM read or a lightweight
/// transaction can miss the ring's 2-second request timeout. What the answer holds is then
/// checked in full; only a request that keeps failing for 60 s (the writers' patience) fails the
/// test.
async fn as_a_client<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = chat_domain::Result<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut failures = 0;
    loop {
        match attempt().await {
            Ok(answer) => {
                if failures > 0 {
                    eprintln!("{what} succeeded after {failures} failed attempts");
                }
                return answer;
            }
            Err(error) => {
                failures += 1;
                assert!(
                    Instant::now() < deadline,
                    "no {what} for 60 s with two of three nodes up: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
