//! End-to-end tests through nginx, against the production topology `deploy/local/stack.sh`
//! runs (started by `deploy/local/test.sh`): several instances of `message-service` on the
//! `cluster` profile, a real Cassandra, Kafka and Redis cluster. Clients only ever talk to nginx.
//! Tests that stop or kill instances take turns (and restore the stack when they end).
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

mod cassandra_crash;
mod query_token;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use chat_domain::{Cipher, MessageId, MessageStore, SealBinding};
use serde_json::json;
use system_tests::stack::{Chatter, Stack, stack_script};
use system_tests::{Ended, one_at_a_time, user};

/// Runs `stack.sh <command> <instance>` off the runtime, so clients keep reading while it
/// waits.
async fn stack_in_background(command: &'static str, instance: usize) {
    actix_web::rt::task::spawn_blocking(move || {
        stack_script(&[command, &instance.to_string()]);
    })
    .await
    .unwrap();
}

async fn close_all(pairs: Vec<(Chatter, Chatter)>) {
    for (a, b) in pairs {
        a.close().await;
        b.close().await;
    }
}

#[actix_web::test]
async fn users_on_different_instances_chat_live_and_every_copy_is_ciphertext() {
    // One test at a time: instances go down in some of them, and the first counts instances.
    let _turn = one_at_a_time().await;
    let stack = Stack::from_env();
    stack.restore();
    let (alice, bob) = (user(), user());
    let (mut alice_socket, alice_instance) = stack.connect(alice).await;
    // nginx balances on open connections: the next socket usually lands elsewhere; insist.
    let mut bob_on_other = None;
    for _ in 0..20 {
        let (socket, instance) = stack.connect(bob).await;
        if instance != alice_instance {
            bob_on_other = Some((socket, instance));
            break;
        }
        socket.close().await;
    }
    let (mut bob_socket, bob_instance) =
        bob_on_other.expect("bob never landed on another instance");
    assert_ne!(alice_instance, bob_instance);

    let secret = "meet me by the old oak at nine";
    let ack = alice_socket.send_to_user(bob, "e2e-1", secret).await;
    let chat = ack["chat_id"].as_str().unwrap().to_owned();
    let message_id = ack["message_id"].as_str().unwrap().to_owned();
    let pushed = bob_socket.expect("message").await;
    assert_eq!(pushed["message"]["content"], secret);
    assert_eq!(pushed["message"]["message_id"], message_id.as_str());

    bob_socket
        .send(&json!({"type": "typing", "chat_id": chat}))
        .await;
    let typing = alice_socket.expect("typing").await;
    assert_eq!(typing["user_id"], bob.to_string());
    bob_socket
        .send(&json!({"type": "seen", "chat_id": chat, "message_id": message_id}))
        .await;
    let seen = alice_socket.expect("seen").await;
    assert_eq!(seen["message_id"], message_id.as_str());
    assert_eq!(seen["seen_by"], bob.to_string());
    bob_socket.send_to_chat(&chat, "e2e-2", "on my way").await;
    assert_eq!(
        alice_socket.expect("message").await["message"]["content"],
        "on my way"
    );

    // Cassandra holds ciphertext that opens, with the stack's key, to what was sent.
    let chat_id = chat_domain::ChatId::parse(&chat, "chat").unwrap();
    let id = MessageId::parse(&message_id, "message").unwrap();
    let (store, _) = chat_cassandra::connect_adapters(&stack.settings.cassandra)
        .await
        .unwrap();
    let stored = store.get(chat_id, id).await.unwrap().unwrap();
    assert!(
        !contains(&stored.content.0, secret.as_bytes()),
        "plaintext in Cassandra"
    );
    let cipher = chat_crypto::MessageCipher::from_config(&stack.settings.crypto).unwrap();
    assert_eq!(
        cipher
            .open(&stored.content, &SealBinding::of(&stored))
            .unwrap(),
        secret.as_bytes()
    );

    // The Redis recent window holds the message, sealed.
    let key = format!("{}:recent:{{{chat}}}", stack.settings.redis.key_prefix);
    let node = &stack.settings.redis.nodes[0];
    let (host, port) = node.rsplit_once(':').unwrap();
    let window = Command::new("redis-cli")
        .args(["-c", "-h", host, "-p", port, "hgetall", &key])
        .output()
        .unwrap();
    let window = String::from_utf8_lossy(&window.stdout).into_owned();
    assert!(
        window.contains(&id.as_uuid().simple().to_string()),
        "not cached: {window}"
    );
    assert!(!window.contains(secret), "plaintext in Redis");

    // Its event reached Kafka, content sealed, keyed by the recipient.
    let events = chat_kafka::wait_for_events(
        &stack.settings.kafka,
        &[id.to_string()],
        Duration::from_secs(30),
    )
    .await
    .unwrap_or_else(|error| panic!("no event for {id} in Kafka: {error}"));
    let event = events
        .into_iter()
        .find(|e| e.event.message_id == id)
        .unwrap();
    assert_eq!(event.key, bob.to_string());
    assert_eq!(event.event.content, stored.content);
    assert!(
        !serde_json::to_string(&event.event)
            .unwrap()
            .contains(secret)
    );

    // History through nginx pages every message exactly once, newest first.
    let mut expected = vec!["on my way".to_owned(), secret.to_owned()];
    for i in 0..7 {
        let content = format!("page filler {i}");
        alice_socket
            .send_to_chat(&chat, &format!("f-{i}"), &content)
            .await;
        expected.insert(0, content);
    }
    let history = stack.history(bob, chat_id, 3).await;
    let contents: Vec<&str> = history
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, expected);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Pairs of chatters, spread over the instances by nginx.
async fn pairs(stack: &Stack, count: usize) -> Vec<(Chatter, Chatter)> {
    let mut pairs = Vec::new();
    for _ in 0..count {
        let (a, b) = (user(), user());
        pairs.push((
            Chatter::connect(stack, a, b).await,
            Chatter::connect(stack, b, a).await,
        ));
    }
    pairs
}

/// Each pair exchanges messages (both ways, one at a time): `rounds` rounds, and more until
/// `lasting` has passed.
async fn converse(
    stack: &'static Stack,
    pairs: Vec<(Chatter, Chatter)>,
    rounds: usize,
    lasting: Duration,
) -> Vec<(Chatter, Chatter)> {
    let until = tokio::time::Instant::now() + lasting;
    let tasks: Vec<_> = pairs
        .into_iter()
        .map(|(mut a, mut b)| {
            actix_web::rt::spawn(async move {
                let mut round = 0;
                while round < rounds || tokio::time::Instant::now() < until {
                    round += 1;
                    a.send_next(stack).await;
                    b.send_next(stack).await;
                    actix_web::rt::time::sleep(Duration::from_millis(10)).await;
                }
                a.catch_up(stack, Duration::from_millis(300)).await;
                b.catch_up(stack, Duration::from_millis(300)).await;
                (a, b)
            })
        })
        .collect();
    let mut done = Vec::new();
    for task in tasks {
        done.push(task.await.unwrap());
    }
    done
}

/// Every acknowledged message is held by both members (live or by sync), and stored exactly
/// once: the history has one message per acknowledged `client_msg_id`, no more.
async fn assert_exactly_once(stack: &Stack, pairs: &[(Chatter, Chatter)]) {
    for (a, b) in pairs {
        let acked: BTreeSet<&String> = a.acked.values().chain(b.acked.values()).collect();
        assert_eq!(
            acked.len(),
            a.acked.len() + b.acked.len(),
            "two sends got one id"
        );
        for chatter in [a, b] {
            let have: BTreeSet<&String> = chatter.have.keys().collect();
            let missing: Vec<_> = acked.difference(&have).collect();
            assert!(
                missing.is_empty(),
                "{} lacks acknowledged messages {missing:?}",
                chatter.user
            );
        }
        let history = stack.history(a.user, a.chat, 50).await;
        let ids: Vec<&str> = history
            .iter()
            .map(|m| m["message_id"].as_str().unwrap())
            .collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "a message is stored twice");
        let stored: BTreeSet<&String> = acked.iter().copied().collect();
        let history_ids: BTreeSet<String> = unique.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(
            history_ids.iter().collect::<BTreeSet<_>>(),
            stored,
            "history != acknowledged"
        );
    }
}

/// The stack for the rest of the test process: spawned client tasks borrow it.
fn leak(stack: Stack) -> &'static Stack {
    Box::leak(Box::new(stack))
}

#[actix_web::test]
async fn an_instance_killed_while_traffic_flows_loses_no_acknowledged_message() {
    let _turn = one_at_a_time().await;
    let stack = leak(Stack::from_env());
    stack.restore();
    let pairs = pairs(stack, 8).await;
    let victim = Stack::instance_number(&pairs[0].0.served_by);
    let traffic = actix_web::rt::spawn(converse(stack, pairs, 0, Duration::from_secs(4)));
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    stack_in_background("kill-instance", victim).await;
    let pairs = traffic.await.unwrap();
    let reconnects: usize = pairs.iter().map(|(a, b)| a.reconnects + b.reconnects).sum();
    assert!(reconnects > 0, "nobody noticed the kill");
    for (a, b) in &pairs {
        for chatter in [a, b] {
            assert_ne!(
                Stack::instance_number(&chatter.served_by),
                victim,
                "still on the dead instance"
            );
        }
    }
    assert_exactly_once(stack, &pairs).await;
    eprintln!(
        "kill: {reconnects} reconnects, {} duplicates dropped by clients",
        pairs
            .iter()
            .map(|(a, b)| a.duplicates_dropped + b.duplicates_dropped)
            .sum::<usize>()
    );
    close_all(pairs).await;
    stack.restore();
}

#[actix_web::test]
async fn an_instance_terminated_closes_with_1001_and_clients_move_over_without_loss() {
    let _turn = one_at_a_time().await;
    let stack = leak(Stack::from_env());
    stack.restore();
    // A watcher on the instance that will stop sees the 1001 close.
    let watcher_user = user();
    let (mut watcher, watched) = stack.connect(watcher_user).await;
    let victim = Stack::instance_number(&watched);
    let pairs = pairs(stack, 8).await;
    let traffic = actix_web::rt::spawn(converse(stack, pairs, 0, Duration::from_secs(4)));
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let stopping = actix_web::rt::spawn(stack_in_background("stop-instance", victim));
    assert_eq!(
        watcher.ended().await,
        Ended::Closed(Some(awc::ws::CloseCode::Away))
    );
    // New sockets go to the survivors while it drains and after.
    let (socket, instance) = stack.connect(user()).await;
    assert_ne!(Stack::instance_number(&instance), victim);
    socket.close().await;
    stopping.await.unwrap();
    let pairs = traffic.await.unwrap();
    for (a, b) in &pairs {
        for chatter in [a, b] {
            assert_ne!(Stack::instance_number(&chatter.served_by), victim);
        }
    }
    assert_exactly_once(stack, &pairs).await;
    close_all(pairs).await;
    stack.restore();
}

#[actix_web::test]
async fn two_hundred_users_exchange_messages_each_delivered_exactly_once() {
    let _turn = one_at_a_time().await;
    let stack = leak(Stack::from_env());
    stack.restore();
    let pairs = pairs(stack, 100).await;
    let instances: BTreeSet<String> = pairs
        .iter()
        .flat_map(|(a, b)| [a.served_by.clone(), b.served_by.clone()])
        .collect();
    assert!(
        instances.len() > 1,
        "200 sockets all on one instance: {instances:?}"
    );
    let pairs = converse(stack, pairs, 5, Duration::ZERO).await;
    let live_or_synced: usize = pairs.iter().map(|(a, b)| a.have.len() + b.have.len()).sum();
    assert_eq!(
        live_or_synced,
        200 * 10,
        "each of 1000 messages held by both members"
    );
    assert_exactly_once(stack, &pairs).await;
    close_all(pairs).await;
}

#[actix_web::test]
async fn the_demo_page_is_served_through_nginx_without_the_dev_token_endpoint() {
    let stack = Stack::from_env();
    let client = awc::Client::default();
    let mut page = client.get(format!("{}/", stack.base)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let content_type = page
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let body = page.body().await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("<html"));
    // The production profile refuses development tokens: the endpoint does not exist there.
    let refused = client
        .post(format!("{}/dev/token", stack.base))
        .send_json(&json!({"user_id": user().to_string()}))
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 404);
}
