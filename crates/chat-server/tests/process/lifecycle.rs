//! Stopping and starting the service: SIGTERM drains and closes sockets with 1001, data and
//! events survive a restart, and the data directory has one owner at a time.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use actix_web::rt::time::{sleep, timeout};
use awc::ws::CloseCode;
use serde_json::Value;
use uuid::Uuid;

use crate::support::{
    IO_TIMEOUT, Process, RELAY_TIMEOUT, SHUTDOWN_TIMEOUT, Server, command, connect, event_lines,
    free_port, http, mint, readiness, send_message, workspace,
};

#[actix_web::test]
async fn sigterm_closes_sockets_with_1001_and_exits_cleanly() {
    let (work, data) = workspace();
    let mut server = Server::start(work.path(), &data).await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let token = mint(work.path(), &data, alice);

    let mut socket = connect(server.port, &token).await;
    socket.expect_ready(alice).await;
    send_message(&mut socket, "c1", bob, "hi").await;

    let terminated = Instant::now();
    server.process.terminate();
    let code = socket.expect_close().await;
    assert_eq!(code, Some(CloseCode::Away), "the close code after SIGTERM");
    drop(socket);

    server.process.assert_clean_exit_after_sigterm().await;
    assert!(terminated.elapsed() <= SHUTDOWN_TIMEOUT);
    assert_eq!(
        readiness(server.port).await,
        None,
        "/readyz still answers after the process exited"
    );
}

#[actix_web::test]
async fn history_survives_a_restart_of_the_process() {
    let (work, data) = workspace();
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let contents: Vec<String> = (1..=3)
        .map(|n| format!("plaintext number {n} {}", Uuid::new_v4()))
        .collect();

    let mut acks = Vec::new();
    {
        let mut server = Server::start(work.path(), &data).await;
        let token = mint(work.path(), &data, alice);
        let mut socket = connect(server.port, &token).await;
        socket.expect_ready(alice).await;
        for (n, content) in contents.iter().enumerate() {
            acks.push(send_message(&mut socket, &format!("c{n}"), bob, content).await);
            // Distinct milliseconds, so newest-first is exactly the reverse of sending order.
            sleep(Duration::from_millis(5)).await;
        }
        server.process.terminate();
        assert_eq!(socket.expect_close().await, Some(CloseCode::Away));
        drop(socket);
        server.process.assert_clean_exit_after_sigterm().await;
    }

    let chat_id = acks[0]["chat_id"].as_str().unwrap().to_owned();
    assert!(acks.iter().all(|ack| ack["chat_id"] == chat_id.as_str()));
    let sent_ids: Vec<String> = acks
        .iter()
        .map(|ack| ack["message_id"].as_str().unwrap().to_owned())
        .collect();

    let server = Server::start(work.path(), &data).await;
    let token = mint(work.path(), &data, bob);
    let request = http(IO_TIMEOUT)
        .get(format!(
            "http://127.0.0.1:{}/users/chat/{chat_id}",
            server.port
        ))
        .bearer_auth(&token)
        .send();
    let mut response = timeout(IO_TIMEOUT, request)
        .await
        .expect("history timed out")
        .expect("history request failed");
    let body = timeout(IO_TIMEOUT, response.body())
        .await
        .expect("history body timed out")
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "history: {}",
        String::from_utf8_lossy(&body)
    );
    let history: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(history["chat_id"], chat_id.as_str());
    let messages = history["messages"].as_array().unwrap();
    let got: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["message_id"].as_str().unwrap(),
                m["content"].as_str().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(&str, &str)> = sent_ids
        .iter()
        .zip(&contents)
        .rev()
        .map(|(id, content)| (id.as_str(), content.as_str()))
        .collect();
    assert_eq!(got, expected, "history after the restart, newest first");

    // One event per message: the relay publishes each outbox event once, across the restart.
    let deadline = Instant::now() + RELAY_TIMEOUT;
    while event_lines(&data).len() < contents.len() && Instant::now() < deadline {
        sleep(Duration::from_millis(50)).await;
    }
    // A few more relay rounds, to catch an event published twice.
    sleep(Duration::from_secs(1)).await;
    let lines = event_lines(&data);
    assert_eq!(lines.len(), contents.len(), "events.jsonl: {lines:#?}");
    let mut published = HashSet::new();
    for line in &lines {
        let event: Value = serde_json::from_str(line).unwrap();
        published.insert(event["message_id"].as_str().unwrap().to_owned());
        for content in &contents {
            assert!(
                !line.contains(content.as_str()),
                "the event log holds plaintext: {line}"
            );
        }
    }
    let sent: HashSet<String> = sent_ids.into_iter().collect();
    assert_eq!(published, sent, "the events name the messages sent");
    drop(server);
}

#[actix_web::test]
async fn a_second_process_on_the_same_data_dir_fails_clearly() {
    let (work, data) = workspace();
    let first = Server::start(work.path(), &data).await;

    let mut command = command(work.path(), &data, free_port());
    command.arg("serve");
    let mut second = Process::spawn("second message-service serve", command);
    let Some(status) = second.exit_within(Duration::from_secs(5)).await else {
        panic!(
            "a second process on the same data dir still runs; stderr:\n{}",
            second.stderr()
        );
    };
    assert!(!status.success(), "the second process exited with {status}");
    let stderr = second.stderr();
    assert!(
        stderr.contains("already open"),
        "stderr does not say the database is already open:\n{stderr}"
    );
    assert!(
        stderr.contains(&data.display().to_string()),
        "stderr does not name the data dir {}:\n{stderr}",
        data.display()
    );
    assert_eq!(
        readiness(first.port).await,
        Some(200),
        "the first process is still ready"
    );
}
