//! Bad input gets a clear error with a stable code, loses nothing, and leaves the socket open.

use awc::ws::{CloseCode, Message};
use serde_json::{Value, json};
use system_tests::{Ended, TestApp, user};

#[actix_web::test]
async fn every_bad_frame_gets_an_error_and_the_socket_stays_open() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol, dave) = (user(), user(), user(), user());
    let mut socket = app.connect(alice).await;
    let ack = socket.send_to_user(bob, "ok-0", "a real message").await;
    let chat = ack["chat_id"].as_str().unwrap().to_owned();
    // A chat alice is not in.
    let mut carol_socket = app.connect(carol).await;
    let foreign = carol_socket.send_to_user(dave, "x", "not for alice").await;
    let foreign_chat = foreign["chat_id"].as_str().unwrap().to_owned();
    let unknown_chat = uuid::Uuid::new_v4().to_string();
    let limit = app.settings.limits.max_content_bytes;

    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed JSON", "{\"type\": \"send\",".to_owned(), "bad_json"),
        ("not an object", "[\"send\"]".to_owned(), "bad_json"),
        ("no type", json!({"chat_id": chat}).to_string(), "unknown_type"),
        ("unknown type", json!({"type": "shout"}).to_string(), "unknown_type"),
        (
            "invalid chat UUID",
            send(json!("not-a-uuid"), "c-1", "x"),
            "invalid_field",
        ),
        (
            "invalid user UUID",
            json!({"type": "send", "client_msg_id": "c-2", "to_user_id": "42", "content": "x"})
                .to_string(),
            "invalid_field",
        ),
        (
            "both chat and user",
            json!({"type": "send", "client_msg_id": "c-3", "chat_id": chat,
                   "to_user_id": bob.to_string(), "content": "x"})
            .to_string(),
            "invalid_field",
        ),
        ("no client_msg_id", json!({"type": "send", "chat_id": chat, "content": "x"}).to_string(), "invalid_field"),
        ("unknown kind", json!({"type": "send", "client_msg_id": "c-4", "chat_id": chat, "kind": "gif", "content": "x"}).to_string(), "invalid_field"),
        ("empty content", send(json!(chat), "c-5", ""), "empty_content"),
        ("blank content", send(json!(chat), "c-6", " \n\t "), "empty_content"),
        ("oversized content", send(json!(chat), "c-7", &"x".repeat(limit + 1)), "content_too_large"),
        ("unknown chat", send(json!(unknown_chat), "c-8", "x"), "unknown_chat"),
        ("someone else's chat", send(json!(foreign_chat), "c-9", "x"), "unknown_chat"),
        (
            "message to yourself",
            json!({"type": "send", "client_msg_id": "c-10", "to_user_id": alice.to_string(), "content": "x"})
                .to_string(),
            "invalid_recipient",
        ),
        (
            "seen of an unknown message",
            json!({"type": "seen", "chat_id": chat, "message_id": uuid::Uuid::now_v7().to_string()})
                .to_string(),
            "unknown_message",
        ),
        (
            "seen of one's own message",
            json!({"type": "seen", "chat_id": chat, "message_id": ack["message_id"]}).to_string(),
            "invalid_field",
        ),
        ("sync of someone else's chat", json!({"type": "sync", "chat_id": foreign_chat}).to_string(), "unknown_chat"),
        ("typing in an unknown chat", json!({"type": "typing", "chat_id": unknown_chat}).to_string(), "unknown_chat"),
    ];
    for (case, frame, code) in cases {
        socket.send_raw(Message::Text(frame.into())).await;
        let error = socket.expect_error().await;
        assert_eq!(error["code"], code, "{case}: {error}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}"
        );
    }
    socket.send_raw(Message::Binary("bytes".into())).await;
    assert_eq!(socket.expect_error().await["code"], "unsupported_frame");

    // The socket still works, and nothing bad was stored.
    let after = socket.send_to_chat(&chat, "ok-1", "still here").await;
    assert_eq!(after["client_msg_id"], "ok-1");
    let history = app.page_all(bob, &chat, 50, async || {}).await;
    let contents: Vec<&str> = history
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["still here", "a real message"]);
}

fn send(chat: Value, client_msg_id: &str, content: &str) -> String {
    json!({"type": "send", "client_msg_id": client_msg_id, "chat_id": chat, "kind": "text", "content": content})
        .to_string()
}

#[actix_web::test]
async fn an_error_names_the_clients_reference() {
    let app = TestApp::spawn().await;
    let mut socket = app.connect(user()).await;
    socket
        .send(
            &json!({"type": "send", "client_msg_id": "mine-7", "chat_id": "nope", "content": "x"}),
        )
        .await;
    assert_eq!(socket.expect_error().await["ref"], "mine-7");
    socket
        .send(&json!({"type": "typing", "chat_id": "nope", "ref": "r-1"}))
        .await;
    assert_eq!(socket.expect_error().await["ref"], "r-1");
}

#[actix_web::test]
async fn content_at_the_limit_is_accepted() {
    let app = TestApp::spawn().await;
    let mut socket = app.connect(user()).await;
    let content = "é".repeat(app.settings.limits.max_content_bytes / 2);
    let ack = socket.send_to_user(user(), "big", &content).await;
    assert_eq!(ack["type"], "ack");
}

#[actix_web::test]
async fn a_frame_over_the_size_limit_closes_the_socket_with_1009() {
    let app = TestApp::spawn().await;
    let mut socket = app.connect(user()).await;
    let huge = "x".repeat(app.settings.websocket.max_frame_bytes + 1);
    socket.send_raw(Message::Text(huge.into())).await;
    assert_eq!(socket.ended().await, Ended::Closed(Some(CloseCode::Size)));
}

#[actix_web::test]
async fn rest_errors_are_json_with_a_code() {
    let app = TestApp::spawn().await;
    let alice = user();
    let (status, body) = app.get("/users/chat/not-a-uuid", Some(alice)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
    let (status, body) = app.get("/no/such/route", Some(alice)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = app.get("/chats", Some(alice)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let (status, body) = app
        .post("/chats", alice, &json!({"peer_id": "someone"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
    let (status, body) = app.post("/chats", alice, &json!({"peer": 1})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_json"))
    );
    let (status, body) = app
        .post("/chats", alice, &json!({"peer_id": alice.to_string()}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_recipient"))
    );
    let unknown = uuid::Uuid::new_v4();
    let (status, body) = app
        .get(&format!("/users/chat/{unknown}"), Some(alice))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_chat"))
    );
}

#[actix_web::test]
async fn a_fragmented_message_over_the_size_limit_closes_the_socket_with_1009() {
    use actix_http::ws::Item;
    let app = TestApp::spawn().await;
    let mut socket = app.connect(user()).await;
    let half = "x".repeat(app.settings.websocket.max_frame_bytes / 2 + 1);
    socket
        .send_raw(Message::Continuation(Item::FirstText(half.clone().into())))
        .await;
    socket
        .send_raw(Message::Continuation(Item::Last(half.into())))
        .await;
    assert_eq!(socket.ended().await, Ended::Closed(Some(CloseCode::Size)));
}
