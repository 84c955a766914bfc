//! Live messaging: acks, delivery, idempotent resend, seen receipts, typing, sync.

use std::time::Duration;

use serde_json::json;
use system_tests::{TestApp, user};

#[actix_web::test]
async fn two_users_exchange_messages_live() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (user(), user());
    let mut alice_socket = app.connect(alice).await;
    let mut bob_socket = app.connect(bob).await;

    let ack = alice_socket.send_to_user(bob, "a-1", "hello bob").await;
    assert_eq!(ack["client_msg_id"], "a-1");
    let chat = ack["chat_id"].as_str().unwrap().to_owned();
    let delivered = bob_socket.expect("message").await;
    let message = &delivered["message"];
    assert_eq!(message["content"], "hello bob");
    assert_eq!(message["message_id"], ack["message_id"]);
    assert_eq!(message["sender_id"], alice.to_string());
    assert_eq!(message["recipient_id"], bob.to_string());
    assert_eq!(message["chat_id"], chat.as_str());
    assert_eq!(message["timestamp"], ack["timestamp"]);

    let reply = bob_socket.send_to_chat(&chat, "b-1", "hi alice").await;
    let delivered = alice_socket.expect("message").await;
    assert_eq!(delivered["message"]["content"], "hi alice");
    assert_eq!(delivered["message"]["message_id"], reply["message_id"]);
}

#[actix_web::test]
async fn the_senders_other_devices_get_the_message_but_the_sending_socket_only_its_ack() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (user(), user());
    let mut phone = app.connect(alice).await;
    let mut laptop = app.connect(alice).await;
    let ack = phone.send_to_user(bob, "p-1", "from my phone").await;
    let copy = laptop.expect("message").await;
    assert_eq!(copy["message"]["message_id"], ack["message_id"]);
    phone.expect_silence(Duration::from_millis(300)).await;
}

#[actix_web::test]
async fn a_resend_gets_the_same_ack_and_stores_one_message() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (user(), user());
    let mut socket = app.connect(alice).await;
    let first = socket.send_to_user(bob, "same-id", "only once").await;
    let chat = first["chat_id"].as_str().unwrap();
    let again = socket.send_to_chat(chat, "same-id", "only once").await;
    assert_eq!(first, again);
    // Also after reconnecting, as a client does after a lost ack.
    drop(socket);
    let mut socket = app.connect(alice).await;
    let third = socket.send_to_user(bob, "same-id", "only once").await;
    assert_eq!(first, third);
    let history = app.page_all(bob, chat, 50, async || {}).await;
    assert_eq!(history.len(), 1);
}

#[actix_web::test]
async fn the_recipient_marks_seen_and_the_sender_gets_the_receipt() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (user(), user());
    let mut alice_socket = app.connect(alice).await;
    let mut bob_socket = app.connect(bob).await;
    let ack = alice_socket
        .send_to_user(bob, "s-1", "did you read this?")
        .await;
    bob_socket.expect("message").await;
    bob_socket
        .send(&json!({"type": "seen", "chat_id": ack["chat_id"], "message_id": ack["message_id"]}))
        .await;
    let receipt = alice_socket.expect("seen").await;
    assert_eq!(receipt["message_id"], ack["message_id"]);
    assert_eq!(receipt["seen_by"], bob.to_string());
    let echo = bob_socket.expect("seen").await;
    assert_eq!(echo["seen_at"], receipt["seen_at"]);
    let chat = ack["chat_id"].as_str().unwrap();
    let (_, page) = app.get(&format!("/users/chat/{chat}"), Some(alice)).await;
    assert_eq!(page["messages"][0]["seen_at"], receipt["seen_at"]);
}

#[actix_web::test]
async fn typing_reaches_the_peer() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (user(), user());
    let mut alice_socket = app.connect(alice).await;
    let mut bob_socket = app.connect(bob).await;
    let ack = alice_socket.send_to_user(bob, "t-0", "hi").await;
    bob_socket.expect("message").await;
    alice_socket
        .send(&json!({"type": "typing", "chat_id": ack["chat_id"]}))
        .await;
    let typing = bob_socket.expect("typing").await;
    assert_eq!(typing["user_id"], alice.to_string());
    assert_eq!(typing["chat_id"], ack["chat_id"]);
    alice_socket
        .expect_silence(Duration::from_millis(300))
        .await;
}

#[actix_web::test]
async fn a_reconnecting_user_syncs_what_they_missed() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (user(), user());
    let mut alice_socket = app.connect(alice).await;
    let first = alice_socket.send_to_user(bob, "m-0", "before").await;
    let chat = first["chat_id"].as_str().unwrap().to_owned();
    // Bob is offline for these.
    for i in 1..=3 {
        alice_socket
            .send_to_chat(&chat, &format!("m-{i}"), &format!("missed {i}"))
            .await;
    }
    let mut bob_socket = app.connect(bob).await;
    bob_socket
        .send(&json!({"type": "sync", "chat_id": chat, "after_message_id": first["message_id"]}))
        .await;
    let synced = bob_socket.expect("sync_result").await;
    let contents: Vec<&str> = synced["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["missed 1", "missed 2", "missed 3"]);
    assert_eq!(synced["has_more"], false);
    bob_socket
        .send(&json!({"type": "sync", "chat_id": chat}))
        .await;
    let everything = bob_socket.expect("sync_result").await;
    assert_eq!(everything["messages"].as_array().unwrap().len(), 4);
}

#[actix_web::test]
async fn a_chat_opens_to_the_same_id_from_both_sides_and_lists_for_both() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (user(), user());
    let (status, one) = app
        .post("/chats", alice, &json!({"peer_id": bob.to_string()}))
        .await;
    assert_eq!(status, 200, "{one}");
    let (_, again) = app
        .post("/chats", alice, &json!({"peer_id": bob.to_string()}))
        .await;
    let (_, other_side) = app
        .post("/chats", bob, &json!({"peer_id": alice.to_string()}))
        .await;
    assert_eq!(one["chat_id"], again["chat_id"]);
    assert_eq!(one["chat_id"], other_side["chat_id"]);
    for (who, peer) in [(alice, bob), (bob, alice)] {
        let (status, list) = app
            .get(&format!("/users/chat?user_id={who}"), Some(who))
            .await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["chat_ids"], json!([one["chat_id"]]));
        assert_eq!(list["chats"][0]["peer_id"], peer.to_string());
    }
}

#[actix_web::test]
async fn a_recipient_who_stops_reading_is_disconnected_without_stalling_the_sender() {
    // A flood from one sender: the send rate limit is not the subject here.
    let app = TestApp::spawn_with(&[
        ("websocket.outbound_queue", "4"),
        ("rate_limits.enabled", "false"),
    ])
    .await;
    let (alice, bob) = (user(), user());
    let mut alice_socket = app.connect(alice).await;
    let mut bob_socket = app.connect(bob).await;
    // Bob reads nothing while Alice sends far more than his socket buffers hold.
    let content = "z".repeat(15 * 1024);
    let started = std::time::Instant::now();
    for i in 0..300 {
        alice_socket
            .send_to_user(bob, &format!("flood-{i}"), &content)
            .await;
    }
    assert!(
        started.elapsed() < system_tests::PATIENCE,
        "the sender was held up by the slow recipient"
    );
    let ended = bob_socket.ended().await;
    assert!(
        matches!(
            ended,
            system_tests::Ended::Closed(Some(awc::ws::CloseCode::Again))
                | system_tests::Ended::Dropped
        ),
        "{ended:?}"
    );
    // At least one: the writer's timeout and a full queue may both count the same socket.
    let closed = app.metric("chat_slow_consumer_disconnects_total").await;
    assert!(closed.is_some_and(|count| count >= 1.0), "{closed:?}");
    // Nothing was lost: Bob reconnects and syncs all 300.
    let mut bob_socket = app.connect(bob).await;
    let chat = app.get("/users/chat", Some(bob)).await.1["chat_ids"][0].clone();
    let mut after: Option<serde_json::Value> = None;
    let mut received = 0;
    loop {
        bob_socket
            .send(&json!({"type": "sync", "chat_id": chat, "after_message_id": after}))
            .await;
        let batch = bob_socket.expect("sync_result").await;
        let messages = batch["messages"].as_array().unwrap();
        received += messages.len();
        after = messages.last().map(|m| m["message_id"].clone());
        if batch["has_more"] == false {
            break;
        }
    }
    assert_eq!(received, 300);
}

/// The heartbeat and pong writes are bounded too: with a 1 s heartbeat, a client that stops
/// reading while its peer floods it once left its reader waiting forever inside `ping` (the
/// socket's outgoing channel full), deaf to the slow-consumer close and to shutdown: the socket
/// stayed registered (this test failed at "still registered 10 s after the flood").
#[actix_web::test]
async fn a_socket_that_stops_reading_is_closed_in_bounded_time_even_mid_heartbeat_and_shutdown_stays_prompt()
 {
    let app = TestApp::spawn_with(&[
        ("websocket.heartbeat_interval_secs", "1"),
        ("websocket.frame_timeout_secs", "1"),
        // A flood from one sender: the send rate limit is not the subject here.
        ("rate_limits.enabled", "false"),
    ])
    .await;
    let (alice, bob) = (user(), user());
    let mut alice_socket = app.connect(alice).await;
    let bob_socket = app.connect(bob).await;
    assert_eq!(app.metric("chat_ws_connections").await, Some(2.0));
    // Bob reads nothing (his socket is never polled again) while Alice floods him with ~9 MiB,
    // more than the loopback socket buffers hold, so the server's writes to him block; at one
    // heartbeat a second, several pings fall due meanwhile. (Counted, not timed: on a busy
    // machine a timed flood sent too little to fill the buffers.)
    let content = "z".repeat(15 * 1024);
    let sent = 600;
    for i in 0..sent {
        alice_socket
            .send_to_user(bob, &format!("flood-{i}"), &content)
            .await;
    }
    // The server closes Bob's socket on its own — seen from the server's side, since reading
    // on Bob's side would unblock it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if app.metric("chat_ws_connections").await == Some(1.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Bob's socket is still registered 10 s after the flood ({sent} messages)"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let closed = app.metric("chat_slow_consumer_disconnects_total").await;
    assert!(closed.is_some_and(|count| count >= 1.0), "{closed:?}");
    // Shutdown stays within its documented bound (docs/deploy.md: twice
    // `server.shutdown_timeout_secs`, 3 s here: the sockets' drain, then HTTP connections —
    // neither client reads, so actix holds their connections until its own timeout).
    let stopping = std::time::Instant::now();
    app.stop().await;
    assert!(
        stopping.elapsed() < std::time::Duration::from_secs(6),
        "shutdown took {:?}",
        stopping.elapsed()
    );
    drop(bob_socket);
}
