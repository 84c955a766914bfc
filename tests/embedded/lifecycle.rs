//! Health, metrics, heartbeats, graceful shutdown, restart, and what lands on disk.

use awc::ws::CloseCode;
use serde_json::json;
use system_tests::{Ended, TestApp, user};

#[actix_web::test]
async fn health_readiness_and_metrics_answer() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/healthz", None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));

    let (alice, bob) = (user(), user());
    let mut socket = app.connect(alice).await;
    socket.send_to_user(bob, "m-1", "counted").await;
    let mut response = app
        .http()
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-served-by"));
    let text = String::from_utf8(response.body().await.unwrap().to_vec()).unwrap();
    assert!(text.contains("chat_ws_connections 1"), "{text}");
    assert!(
        text.contains("chat_messages_accepted_total{outcome=\"stored\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("chat_send_duration_seconds_count 1"),
        "{text}"
    );
}

#[actix_web::test]
async fn an_idle_socket_that_ignores_pings_is_closed_with_4000() {
    let app = TestApp::spawn_with(&[
        ("websocket.heartbeat_interval_secs", "1"),
        ("websocket.client_timeout_secs", "2"),
    ])
    .await;
    let token = app.token(user());
    // A raw socket that never reads, so never answers a ping.
    let (_, mut framed) = app.ws_request().bearer_auth(token).connect().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let mut close = None;
    while let Some(Ok(frame)) = futures_util::StreamExt::next(&mut framed).await {
        if let awc::ws::Frame::Close(reason) = frame {
            close = reason.map(|reason| reason.code);
            break;
        }
    }
    assert_eq!(close, Some(CloseCode::Other(4000)));
}

#[actix_web::test]
async fn a_socket_that_answers_pings_stays_open() {
    let app = TestApp::spawn_with(&[
        ("websocket.heartbeat_interval_secs", "1"),
        ("websocket.client_timeout_secs", "2"),
    ])
    .await;
    let (alice, bob) = (user(), user());
    let mut socket = app.connect(alice).await;
    // Twice the client timeout, answering the server's pings.
    assert_eq!(
        socket.idle_for(std::time::Duration::from_secs(4)).await,
        None
    );
    let ack = socket.send_to_user(bob, "alive", "still open").await;
    assert_eq!(ack["type"], "ack");
}

#[actix_web::test]
async fn shutdown_closes_sockets_with_1001_and_refuses_new_ones() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (user(), user());
    let mut socket = app.connect(alice).await;
    socket
        .send_to_user(bob, "before", "sent before shutdown")
        .await;
    app.begin_shutdown();
    assert_eq!(socket.ended().await, Ended::Closed(Some(CloseCode::Away)));
    let data = app.stop().await;
    // What was acknowledged is there after a restart.
    let app = TestApp::spawn_in(data, &[]).await;
    let (_, list) = app.get("/users/chat", Some(bob)).await;
    let chat = list["chat_ids"][0].as_str().unwrap().to_owned();
    let history = app.page_all(bob, &chat, 10, async || {}).await;
    assert_eq!(history[0]["content"], "sent before shutdown");
}

#[actix_web::test]
async fn history_and_events_survive_a_restart_and_nothing_on_disk_is_plaintext() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (user(), user());
    let mut socket = app.connect(alice).await;
    let secret = "the password is swordfish";
    let mut acks = Vec::new();
    for i in 0..5 {
        acks.push(
            socket
                .send_to_user(bob, &format!("r-{i}"), &format!("{secret} #{i}"))
                .await,
        );
    }
    let chat = acks[0]["chat_id"].as_str().unwrap().to_owned();
    drop(socket);
    let data = app.stop().await;

    let app = TestApp::spawn_in(data, &[]).await;
    let history = app.page_all(bob, &chat, 2, async || {}).await;
    let contents: Vec<&str> = history
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..5).rev().map(|i| format!("{secret} #{i}")).collect();
    assert_eq!(contents, expected);

    // Every acknowledged message has its event, sealed.
    let events_path = app.data_dir().join("events.jsonl");
    let deadline = std::time::Instant::now() + system_tests::PATIENCE;
    let events = loop {
        let text = std::fs::read_to_string(&events_path).unwrap_or_default();
        let events: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        if events.len() >= 5 || std::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let event_ids: Vec<&serde_json::Value> = events.iter().map(|e| &e["message_id"]).collect();
    for ack in &acks {
        assert!(
            event_ids.contains(&&ack["message_id"]),
            "no event for {ack}"
        );
    }
    assert!(events.iter().all(
        |e| e["event_type"] == "message.created" && e["recipient_id"] == json!(bob.to_string())
    ));
    for file in ["events.jsonl", "chat.redb"] {
        let bytes = std::fs::read(app.data_dir().join(file)).unwrap();
        let needle = b"swordfish";
        assert!(
            !bytes.windows(needle.len()).any(|window| window == needle),
            "plaintext found in {file}"
        );
    }
}
