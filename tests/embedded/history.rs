//! REST history: newest first, "load more" cursors to the oldest message exactly once.

use std::collections::HashSet;

use serde_json::Value;
use system_tests::{TestApp, user};

#[actix_web::test]
async fn history_pages_to_the_oldest_message_exactly_once_while_new_ones_arrive() {
    // 120 sends as fast as the store acks them: the send rate limit is not the subject here.
    let app = TestApp::spawn_with(&[("rate_limits.enabled", "false")]).await;
    let (alice, bob) = (user(), user());
    let mut socket = app.connect(alice).await;
    let first = socket.send_to_user(bob, "h-0", "message 0").await;
    let chat = first["chat_id"].as_str().unwrap().to_owned();
    for i in 1..120 {
        socket
            .send_to_chat(&chat, &format!("h-{i}"), &format!("message {i}"))
            .await;
    }
    let mut late = 0;
    let messages = app
        .page_all(bob, &chat, 25, async || {
            late += 1;
            socket
                .send_to_chat(&chat, &format!("late-{late}"), "arrived while paging")
                .await;
        })
        .await;
    let contents: Vec<&str> = messages
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..120).rev().map(|i| format!("message {i}")).collect();
    assert_eq!(contents, expected);
    let ids: HashSet<&str> = messages
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 120, "no duplicates");
    assert_newest_first(&messages);
}

fn assert_newest_first(messages: &[Value]) {
    for pair in messages.windows(2) {
        let newer = pair[0]["timestamp"].as_str().unwrap();
        let older = pair[1]["timestamp"].as_str().unwrap();
        let parse = |text: &str| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        assert!(parse(newer) >= parse(older), "{newer} before {older}");
    }
}

#[actix_web::test]
async fn the_default_page_and_the_limit_bounds() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (user(), user());
    let mut socket = app.connect(alice).await;
    let first = socket.send_to_user(bob, "d-0", "first").await;
    let chat = first["chat_id"].as_str().unwrap();
    let (status, page) = app.get(&format!("/users/chat/{chat}"), Some(bob)).await;
    assert_eq!(status, 200);
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_cursor"], Value::Null);
    for bad in ["0", "201", "ten", "-1"] {
        let (status, body) = app
            .get(&format!("/users/chat/{chat}?limit={bad}"), Some(bob))
            .await;
        assert_eq!(status, 400, "limit={bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_field");
    }
}

#[actix_web::test]
async fn a_cursor_serves_only_its_user_and_chat_and_made_up_ones_are_refused() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol) = (user(), user(), user());
    let mut socket = app.connect(alice).await;
    let first = socket.send_to_user(bob, "c-0", "m0").await;
    let chat = first["chat_id"].as_str().unwrap().to_owned();
    socket.send_to_chat(&chat, "c-1", "m1").await;
    socket.send_to_chat(&chat, "c-2", "m2").await;
    let other = socket.send_to_user(carol, "c-3", "to carol").await;
    let other_chat = other["chat_id"].as_str().unwrap();

    let (_, page) = app
        .get(&format!("/users/chat/{chat}?limit=1"), Some(alice))
        .await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let cases = [
        (
            format!("/users/chat/{chat}?limit=1&cursor={cursor}"),
            bob,
            400,
        ),
        (
            format!("/users/chat/{other_chat}?limit=1&cursor={cursor}"),
            alice,
            400,
        ),
        (
            format!("/users/chat/{chat}?limit=1&cursor=0123456789abcdef0123456789abcdef"),
            alice,
            400,
        ),
        (
            format!("/users/chat/{chat}?limit=1&cursor=not-a-cursor"),
            alice,
            400,
        ),
    ];
    for (path, who, status) in cases {
        let (got, body) = app.get(&path, Some(who)).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_cursor", "{path}");
    }
    let (status, next) = app
        .get(
            &format!("/users/chat/{chat}?limit=1&cursor={cursor}"),
            Some(alice),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(next["messages"][0]["content"], "m1");
}

#[actix_web::test]
async fn an_expired_cursor_is_refused() {
    let app = TestApp::spawn_with(&[("embedded.cache.cursor_ttl_secs", "1")]).await;
    let (alice, bob) = (user(), user());
    let mut socket = app.connect(alice).await;
    let first = socket.send_to_user(bob, "e-0", "m0").await;
    let chat = first["chat_id"].as_str().unwrap().to_owned();
    socket.send_to_chat(&chat, "e-1", "m1").await;
    let (_, page) = app
        .get(&format!("/users/chat/{chat}?limit=1"), Some(alice))
        .await;
    let cursor = page["next_cursor"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, body) = app
        .get(
            &format!("/users/chat/{chat}?limit=1&cursor={cursor}"),
            Some(alice),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_cursor");
}
