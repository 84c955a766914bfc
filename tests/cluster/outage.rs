//! The service on Cassandra while Cassandra hangs: clients get a clear `unavailable` (503 over
//! HTTP, an error frame over the WebSocket) within the configured timeouts, nothing hangs, and
//! service resumes when Cassandra does.
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use system_tests::cassandra::{fresh_keyspace, on_cassandra};
use system_tests::{DataDir, TestApp, user};

fn cassandra(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/cassandra.sh");
    let status = Command::new("bash")
        .arg(script)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "cassandra.sh {args:?} failed");
}

#[actix_web::test]
async fn a_hung_cassandra_is_a_clear_503_and_unavailable_frame_then_service_resumes() {
    let keyspace = fresh_keyspace();
    let mut settings = on_cassandra(&keyspace);
    settings.retain(|(key, _)| *key != "cassandra.request_timeout_ms");
    settings.push(("cassandra.request_timeout_ms", "1500".to_owned()));
    settings.push(("websocket.frame_timeout_secs", "5".to_owned()));
    let overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_in(DataDir::Temp(tempfile::tempdir().unwrap()), &overrides).await;
    let (alice, bob) = (user(), user());
    let mut socket = app.connect(alice).await;
    let ack = socket
        .send_to_user(bob, "before", "before the outage")
        .await;
    let chat = ack["chat_id"].as_str().unwrap().to_owned();

    cassandra(&["pause-node", "1"]);
    let started = Instant::now();
    socket
        .send(&json!({"type": "send", "client_msg_id": "during", "chat_id": chat, "content": "x"}))
        .await;
    let error = socket.expect_error().await;
    let frame_wait = started.elapsed();
    let started = Instant::now();
    let (status, body) = app
        .get(&format!("/users/chat/{chat}?limit=5"), Some(bob))
        .await;
    let http_wait = started.elapsed();
    let (ready_status, _) = app.get("/readyz", None).await;
    cassandra(&["resume-node", "1"]);

    assert_eq!(error["code"], "unavailable", "{error}");
    assert_eq!(error["ref"], "during");
    assert!(frame_wait < Duration::from_secs(5), "{frame_wait:?}");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(http_wait < Duration::from_secs(5), "{http_wait:?}");
    assert_eq!(ready_status, 503, "not ready while storage hangs");

    // Back to normal: the resend of the failed message is stored once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        socket
            .send(&json!({"type": "send", "client_msg_id": "during", "chat_id": chat, "content": "x"}))
            .await;
        let answer = socket.next_json().await;
        if answer["type"] == "ack" {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {answer}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let history = app.page_all(bob, &chat, 10, async || {}).await;
    assert_eq!(history.len(), 2);
}
