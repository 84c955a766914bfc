//! What one client, and all of them together, may hold of an instance.

use std::time::{Duration, Instant};

use system_tests::{Socket, TestApp, user};

/// Waits until the instance counts `sockets` open sockets (a dropped client socket is
/// unregistered once the server reads its end).
async fn until_open_sockets(app: &TestApp, sockets: f64) {
    let deadline = Instant::now() + system_tests::PATIENCE;
    while app.metric("chat_ws_connections").await != Some(sockets) {
        assert!(Instant::now() < deadline, "never {sockets} open sockets");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_user_holds_at_most_max_sockets_per_user_and_the_instance_at_most_max_sockets() {
    let app = TestApp::spawn_with(&[
        ("websocket.max_sockets_per_user", "2"),
        ("websocket.max_sockets", "3"),
    ])
    .await;
    let (alice, bob, carol) = (user(), user(), user());
    let alice_first = app.connect(alice).await;
    let _alice_second = app.connect(alice).await;
    // A third socket for Alice: 429, hers to fix (close one).
    Socket::assert_refused(app.ws_request().bearer_auth(app.token(alice)), 429).await;
    // Bob fills the instance; Carol then gets 503 (with Retry-After: nginx tries another).
    let bob_socket = app.connect(bob).await;
    Socket::assert_refused(app.ws_request().bearer_auth(app.token(carol)), 503).await;
    assert_eq!(app.metric("chat_ws_connections").await, Some(3.0));

    // A closed socket frees its place at once: Alice may open one again, and once Bob leaves,
    // Carol gets in.
    drop(alice_first);
    until_open_sockets(&app, 2.0).await;
    let _alice_again = app.connect(alice).await;
    Socket::assert_refused(app.ws_request().bearer_auth(app.token(carol)), 503).await;
    drop(bob_socket);
    until_open_sockets(&app, 2.0).await;
    let _carol_socket = app.connect(carol).await;
    until_open_sockets(&app, 3.0).await;

    let (_, metrics) = app.get_text("/metrics").await;
    for code in ["too_many_sockets", "instance_full"] {
        assert!(
            metrics.contains(&format!(
                "chat_errors_total{{code=\"{code}\",transport=\"http\"}}"
            )),
            "{code} is not counted:\n{metrics}"
        );
    }
}

#[actix_web::test]
async fn over_its_rate_a_user_gets_rate_limited_with_when_to_retry_and_the_socket_stays_open() {
    let app = TestApp::spawn_with(&[
        ("rate_limits.send.per_second", "1"),
        ("rate_limits.send.burst", "2"),
        ("rate_limits.typing.per_second", "1"),
        ("rate_limits.typing.burst", "1"),
        ("rate_limits.reads.per_second", "1"),
        ("rate_limits.reads.burst", "1"),
    ])
    .await;
    let (alice, bob) = (user(), user());
    let mut socket = app.connect(alice).await;
    let chat = socket.send_to_user(bob, "first", "one").await["chat_id"].clone();
    socket.send_to_user(bob, "second", "two").await;

    // The burst is spent: the third send is refused with when to retry, and not stored.
    let third = chat_test_client::text_to_user(bob, "third", "three");
    let mut with_ref = third.clone();
    with_ref["ref"] = serde_json::json!("r3");
    socket.send(&with_ref).await;
    let refused = socket.expect_error().await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert_eq!(refused["ref"], "r3");
    let wait = refused["retry_after_ms"].as_u64().unwrap();
    assert!(wait > 0 && wait <= 1_000, "{refused}");

    // Typing over its limit is dropped silently: no error frame, the socket answers on.
    for _ in 0..3 {
        socket
            .send(&serde_json::json!({"type": "typing", "chat_id": chat}))
            .await;
    }
    // After the wait the same message goes through, on the same socket.
    actix_web::rt::time::sleep(Duration::from_millis(wait)).await;
    socket.send(&third).await;
    let ack = socket.expect("ack").await;
    assert_eq!(ack["client_msg_id"], "third", "{ack}");
    let history = app
        .get(
            &format!("/users/chat/{}", chat.as_str().unwrap()),
            Some(bob),
        )
        .await;
    assert_eq!(history.0, 200, "{}", history.1);
    assert_eq!(
        history.1["messages"].as_array().unwrap().len(),
        3,
        "stored once each"
    );

    // REST reads: one token; the next read at once is a 429 with Retry-After.
    let (status, _) = app.get("/users/chat", Some(alice)).await;
    assert_eq!(status, 200);
    let response = app
        .http()
        .get(app.url("/users/chat"))
        .bearer_auth(app.token(alice))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        retry_after, 1,
        "a second, rounded up from the bucket's wait"
    );
    let limited = app
        .metric("chat_errors_total{code=\"rate_limited\",transport=\"ws\"}")
        .await;
    assert_eq!(limited, Some(1.0), "typing is not counted, the send is");
}
