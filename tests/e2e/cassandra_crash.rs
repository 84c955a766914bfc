//! The only Cassandra node is SIGKILLed while reliable clients send through nginx, then started
//! again: every message acknowledged before, during or after the crash is in Cassandra and in
//! every member's history. An acknowledgement is only as good as the node's commit log: with
//! `commitlog_sync: periodic` the node acknowledges writes that its replay then skips (the
//! last ~100 ms before a kill), and this test fails (see docs/deploy.md, "Durability").

use std::time::Duration;

use chat_domain::{ChatId, MessageId, MessageStore};
use system_tests::one_at_a_time;
use system_tests::stack::{Chatter, Stack, deploy_script};

use super::{assert_exactly_once, close_all, converse, leak, pairs};

/// Where the kill lands decides what a crash can lose, so it lands at several moments.
const KILL_AFTER_MS: [u64; 3] = [1_000, 1_700, 2_400];

/// How long clients keep sending after the kill is asked for: the script needs a few seconds
/// to kill on a busy machine, and sends then wait (resending) until the node is back.
const TRAFFIC_AFTER_KILL: Duration = Duration::from_secs(8);

/// Kills Cassandra node 1 and starts it again, off the runtime, so clients keep running.
async fn crash_and_restart_cassandra() {
    actix_web::rt::task::spawn_blocking(|| {
        deploy_script("cassandra.sh", &["kill-node", "1"]);
        deploy_script("cassandra.sh", &["start-node", "1"]);
    })
    .await
    .unwrap();
}

/// Every acknowledged message of every pair, read from Cassandra itself (not through the
/// service, whose Redis window could still hold a message the store lost).
async fn assert_every_ack_is_in_cassandra(stack: &Stack, pairs: &[(Chatter, Chatter)]) -> usize {
    let (store, _) = chat_cassandra::connect_adapters(&stack.settings.cassandra)
        .await
        .unwrap();
    let mut checked = 0;
    let mut missing = Vec::new();
    for (a, b) in pairs {
        for id in a.acked.values().chain(b.acked.values()) {
            let message = MessageId::parse(id, "message").unwrap();
            let chat: ChatId = a.chat;
            if store.get(chat, message).await.unwrap().is_none() {
                missing.push(id.clone());
            }
            checked += 1;
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {checked} acknowledged messages are not in Cassandra after its crash: {missing:?}",
        missing.len()
    );
    checked
}

#[actix_web::test]
async fn the_only_cassandra_node_killed_under_load_loses_no_acknowledged_message() {
    let _turn = one_at_a_time().await;
    let stack = leak(Stack::from_env());
    stack.restore();
    for kill_after in KILL_AFTER_MS {
        // One exchange first, so that every chat exists before the crash (a client that
        // syncs a chat it never managed to open is told `unknown_chat`).
        let pairs = converse(stack, pairs(stack, 6).await, 1, Duration::ZERO).await;
        let traffic = actix_web::rt::spawn(converse(
            stack,
            pairs,
            0,
            Duration::from_millis(kill_after) + TRAFFIC_AFTER_KILL,
        ));
        actix_web::rt::time::sleep(Duration::from_millis(kill_after)).await;
        crash_and_restart_cassandra().await;
        let pairs = traffic.await.unwrap();
        let reconnects: usize = pairs.iter().map(|(a, b)| a.reconnects + b.reconnects).sum();
        assert!(
            reconnects > 0,
            "no client noticed the crash: it hit no traffic"
        );
        let checked = assert_every_ack_is_in_cassandra(stack, &pairs).await;
        assert_exactly_once(stack, &pairs).await;
        eprintln!(
            "cassandra killed after {kill_after} ms of traffic: {checked} acknowledged messages \
             all stored, {reconnects} reconnects"
        );
        close_all(pairs).await;
    }
    stack.restore();
}
