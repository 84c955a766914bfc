//! Process-level tests of the real `message-service` binary: each test starts it as a child
//! process (compiled-in defaults, a fresh data directory, a free port), drives it over
//! WebSocket and HTTP, and stops it with SIGTERM or SIGKILL. Every wait is bounded, and a guard
//! kills any child still running when a test ends; a failing test prints the child's stderr.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::rt::time::{sleep, timeout};
use awc::error::WsProtocolError;
use awc::ws::{CloseCode, Frame, Message};
use base64::Engine as _;
use futures_util::{Sink, SinkExt as _, Stream, StreamExt as _};
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_message-service");
/// How long a server may take to answer `/readyz` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one WebSocket frame or HTTP answer may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// `server.shutdown_timeout_secs` of the compiled-in defaults.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a subcommand (token, keygen, migrate, a failing start) may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the outbox relay may take to publish (it polls every 200 ms).
const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The binary with the test environment: no config folder, `data` as the data dir, `port`.
fn command(work: &Path, data: &Path, port: u16) -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CHAT") {
            command.env_remove(name);
        }
    }
    command
        .current_dir(work)
        .env("CHAT_CONFIG_DIR", "/nonexistent")
        .env("CHAT__EMBEDDED__DATA_DIR", data)
        .env("CHAT__SERVER__PORT", port.to_string())
        .env("CHAT__SERVER__WORKERS", "1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    command
}

/// Collects everything a pipe yields, on a thread of its own.
fn collect(mut pipe: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = buffer.clone();
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(read) => sink.lock().unwrap().extend_from_slice(&chunk[..read]),
            }
        }
    });
    (buffer, reader)
}

/// A child process whose stdout and stderr are kept. Dropping it kills the child if it still
/// runs, and prints its stderr when the test is failing.
struct Process {
    name: &'static str,
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Process {
    fn spawn(name: &'static str, mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (stdout, out_reader) = collect(child.stdout.take().unwrap());
        let (stderr, err_reader) = collect(child.stderr.take().unwrap());
        Self {
            name,
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
            status: None,
        }
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The exit status, if the child has exited; then its output is complete.
    fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().unwrap();
            if self.status.is_some() {
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
            }
        }
        self.status
    }

    /// Waits (without blocking the runtime) up to `within` for the child to exit.
    async fn exit_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (blocking the thread) up to `within` for the child to exit.
    fn exit_within_blocking(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once (SIGKILL), like a crash.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM, with the `kill` command (this crate forbids unsafe code).
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed: {status}");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- stderr of {} (pid {}) -----\n{}\n----- end of stderr of {} -----",
                self.name,
                self.child.id(),
                self.stderr(),
                self.name
            );
        }
    }
}

/// A finished subcommand.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `command` to its end, failing the test when it takes longer than `COMMAND_TIMEOUT`.
fn run(name: &'static str, command: Command) -> Finished {
    let mut process = Process::spawn(name, command);
    let Some(status) = process.exit_within_blocking(COMMAND_TIMEOUT) else {
        panic!("`{name}` did not exit within {COMMAND_TIMEOUT:?}");
    };
    Finished {
        status,
        stdout: process.stdout(),
        stderr: process.stderr(),
    }
}

/// A JWT for `user`, minted by `message-service token`.
fn mint(work: &Path, data: &Path, user: Uuid) -> String {
    let mut command = command(work, data, 0);
    command.args(["token", "--user", &user.to_string()]);
    let finished = run("message-service token", command);
    assert!(
        finished.status.success(),
        "token failed ({}): {}",
        finished.status,
        finished.stderr
    );
    let token = finished.stdout.trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "not a JWT: {token:?}");
    token
}

/// An HTTP client whose requests give up after `timeout`.
fn http(timeout: Duration) -> awc::Client {
    awc::Client::builder().timeout(timeout).finish()
}

/// The status of `GET /readyz`, or `None` when nothing answers.
async fn readiness(port: u16) -> Option<u16> {
    let request = http(Duration::from_secs(2))
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send();
    match timeout(Duration::from_secs(3), request).await {
        Ok(Ok(response)) => Some(response.status().as_u16()),
        _ => None,
    }
}

/// A running `message-service serve`.
struct Server {
    process: Process,
    port: u16,
}

impl Server {
    /// Starts the service on a free port and waits until `/readyz` answers 200.
    async fn start(work: &Path, data: &Path) -> Self {
        Self::start_with(work, data, &[]).await
    }

    /// As [`Server::start`], with extra environment variables.
    async fn start_with(work: &Path, data: &Path, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = command(work, data, port);
        command.envs(env.iter().copied());
        command.arg("serve");
        let mut process = Process::spawn("message-service serve", command);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = process.exited() {
                panic!(
                    "the server exited ({status}) before it was ready; stderr:\n{}",
                    process.stderr()
                );
            }
            if readiness(port).await == Some(200) {
                return Self { process, port };
            }
            if Instant::now() >= deadline {
                panic!(
                    "the server was not ready within {READY_TIMEOUT:?}; stderr:\n{}",
                    process.stderr()
                );
            }
            sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Opens a WebSocket as the owner of `token`.
async fn connect(
    port: u16,
    token: &str,
) -> impl Stream<Item = Result<Frame, WsProtocolError>>
+ Sink<Message, Error = WsProtocolError>
+ Unpin
+ use<> {
    let connecting = awc::Client::builder()
        .max_http_version(awc::http::Version::HTTP_11)
        .finish()
        .ws(format!("ws://127.0.0.1:{port}/ws"))
        .bearer_auth(token)
        .max_frame_size(16 << 20)
        .connect();
    let (response, socket) = timeout(IO_TIMEOUT, connecting)
        .await
        .expect("the WebSocket upgrade timed out")
        .expect("the WebSocket upgrade failed");
    assert_eq!(response.status().as_u16(), 101);
    socket
}

/// The next frame other than ping and pong.
async fn next_frame<S>(socket: &mut S) -> Frame
where
    S: Stream<Item = Result<Frame, WsProtocolError>> + Unpin,
{
    loop {
        let frame = timeout(IO_TIMEOUT, socket.next())
            .await
            .expect("no frame within the timeout")
            .expect("the socket ended without a close frame")
            .expect("a WebSocket protocol error");
        match frame {
            Frame::Ping(_) | Frame::Pong(_) => {}
            other => return other,
        }
    }
}

/// The next frame, which must be a JSON text frame.
async fn next_json<S>(socket: &mut S) -> Value
where
    S: Stream<Item = Result<Frame, WsProtocolError>> + Unpin,
{
    match next_frame(socket).await {
        Frame::Text(bytes) => serde_json::from_slice(&bytes).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Sends `value` as a text frame.
async fn send_json<S>(socket: &mut S, value: &Value)
where
    S: Sink<Message, Error = WsProtocolError> + Unpin,
{
    timeout(
        IO_TIMEOUT,
        socket.send(Message::Text(value.to_string().into())),
    )
    .await
    .expect("sending timed out")
    .expect("sending failed");
}

/// Sends a text message to `to` and returns its ack.
async fn send_message<S>(socket: &mut S, client_msg_id: &str, to: Uuid, content: &str) -> Value
where
    S: Stream<Item = Result<Frame, WsProtocolError>>
        + Sink<Message, Error = WsProtocolError>
        + Unpin,
{
    let frame = json!({
        "type": "send",
        "client_msg_id": client_msg_id,
        "to_user_id": to,
        "kind": "text",
        "content": content,
    });
    send_json(socket, &frame).await;
    let ack = next_json(socket).await;
    assert_eq!(ack["type"], "ack", "expected an ack, got {ack}");
    assert_eq!(ack["client_msg_id"], client_msg_id);
    ack
}

/// Reads the `ready` frame of a fresh connection of `user`.
async fn expect_ready<S>(socket: &mut S, user: Uuid)
where
    S: Stream<Item = Result<Frame, WsProtocolError>> + Unpin,
{
    let ready = next_json(socket).await;
    assert_eq!(ready["type"], "ready", "expected ready, got {ready}");
    assert_eq!(ready["user_id"], user.to_string());
}

/// Reads frames until the close frame and returns its code; answers it with a close frame.
async fn expect_close<S>(socket: &mut S) -> Option<CloseCode>
where
    S: Stream<Item = Result<Frame, WsProtocolError>>
        + Sink<Message, Error = WsProtocolError>
        + Unpin,
{
    loop {
        match next_frame(socket).await {
            Frame::Close(reason) => {
                let _ = timeout(
                    IO_TIMEOUT,
                    socket.send(Message::Close(Some(CloseCode::Normal.into()))),
                )
                .await;
                return reason.map(|reason| reason.code);
            }
            Frame::Text(text) => {
                eprintln!("(a frame before the close: {text:?})");
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// The lines of the event log, or none while it does not exist.
fn event_lines(data: &Path) -> Vec<String> {
    match std::fs::read_to_string(data.join("events.jsonl")) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    }
}

/// A fresh working directory with `data` below it.
fn workspace() -> (TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    (work, data)
}

#[actix_web::test]
async fn sigterm_closes_sockets_with_1001_and_exits_cleanly() {
    let (work, data) = workspace();
    let mut server = Server::start(work.path(), &data).await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let token = mint(work.path(), &data, alice);

    let mut socket = connect(server.port, &token).await;
    expect_ready(&mut socket, alice).await;
    send_message(&mut socket, "c1", bob, "hi").await;

    let terminated = Instant::now();
    server.process.terminate();
    let code = expect_close(&mut socket).await;
    assert_eq!(code, Some(CloseCode::Away), "the close code after SIGTERM");
    drop(socket);

    let status = server.process.exit_within(SHUTDOWN_TIMEOUT).await;
    let Some(status) = status else {
        panic!("the server did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM");
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
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
        expect_ready(&mut socket, alice).await;
        for (n, content) in contents.iter().enumerate() {
            acks.push(send_message(&mut socket, &format!("c{n}"), bob, content).await);
            // Distinct milliseconds, so newest-first is exactly the reverse of sending order.
            sleep(Duration::from_millis(5)).await;
        }
        server.process.terminate();
        assert_eq!(expect_close(&mut socket).await, Some(CloseCode::Away));
        drop(socket);
        let status = server.process.exit_within(SHUTDOWN_TIMEOUT).await;
        let Some(status) = status else {
            panic!("the server did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM");
        };
        assert!(status.success(), "exit status after SIGTERM: {status}");
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

#[test]
fn keygen_prints_a_32_byte_base64_key() {
    let (work, data) = workspace();
    let mut command = command(work.path(), &data, 0);
    command.arg("keygen");
    let finished = run("message-service keygen", command);
    assert!(finished.status.success(), "keygen: {}", finished.stderr);
    let key = base64::engine::general_purpose::STANDARD
        .decode(finished.stdout.trim())
        .unwrap();
    assert_eq!(key.len(), 32);
}

#[test]
fn token_rejects_a_user_that_is_not_a_uuid() {
    let (work, data) = workspace();
    let mut command = command(work.path(), &data, 0);
    command.args(["token", "--user", "alice"]);
    let finished = run("message-service token", command);
    assert!(!finished.status.success(), "token accepted a non-UUID user");
    assert!(
        finished.stderr.contains("--user"),
        "stderr does not name --user:\n{}",
        finished.stderr
    );
    assert!(
        finished.stdout.trim().is_empty(),
        "stdout: {}",
        finished.stdout
    );
}

#[test]
fn migrate_creates_the_database() {
    let (work, data) = workspace();
    let mut command = command(work.path(), &data, 0);
    command.arg("migrate");
    let finished = run("message-service migrate", command);
    assert!(
        finished.status.success(),
        "migrate failed ({}): {}",
        finished.status,
        finished.stderr
    );
    assert!(data.join("chat.redb").is_file(), "no chat.redb in {data:?}");
}

#[test]
fn an_unknown_profile_is_a_clear_error() {
    let (work, data) = workspace();
    let mut command = command(work.path(), &data, free_port());
    command.env("CHAT_PROFILE", "nope");
    let finished = run("message-service with CHAT_PROFILE=nope", command);
    assert!(
        !finished.status.success(),
        "an unknown profile was accepted"
    );
    assert!(
        finished.stderr.contains("nope") && finished.stderr.contains("profile"),
        "stderr does not name the profile:\n{}",
        finished.stderr
    );
}

/// The test Kafka (`CHAT_TEST_KAFKA`, started by `deploy/local/test.sh`).
fn test_kafka() -> String {
    std::env::var("CHAT_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

#[actix_web::test]
async fn events_of_acknowledged_messages_reach_kafka_after_a_kill_before_the_relay_ran() {
    let (work, data) = workspace();
    let topic = format!("test-events-{}", Uuid::new_v4().simple());
    let brokers = test_kafka();
    let kafka = [
        ("CHAT__ADAPTERS__EVENTS", "kafka"),
        ("CHAT__KAFKA__BROKERS", brokers.as_str()),
        ("CHAT__KAFKA__TOPIC", topic.as_str()),
        ("CHAT__KAFKA__PARTITIONS", "2"),
    ];
    // The relay runs once at start-up (nothing to do), then sleeps for ten minutes: what is
    // sent meanwhile stays in the outbox, as if the process died right after the acks.
    let mut sleepy = kafka.to_vec();
    sleepy.push(("CHAT__RELAY__INTERVAL_MS", "600000"));
    let mut server = Server::start_with(work.path(), &data, &sleepy).await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let token = mint(work.path(), &data, alice);
    let mut socket = connect(server.port, &token).await;
    expect_ready(&mut socket, alice).await;
    let mut acked = Vec::new();
    for i in 0..5 {
        let ack = send_message(&mut socket, &format!("k-{i}"), bob, &format!("m{i}")).await;
        acked.push(ack["message_id"].as_str().unwrap().to_owned());
    }
    server.process.kill();
    drop(socket);

    let config = chat_kafka::KafkaConfig {
        brokers: vec![brokers.clone()],
        topic: topic.clone(),
        ..chat_kafka::KafkaConfig::default()
    };
    let before = chat_kafka::read_all_events(&config).await.unwrap();
    assert!(before.is_empty(), "nothing was relayed before the kill");

    let _server = Server::start_with(work.path(), &data, &kafka).await;
    let events = chat_kafka::wait_for_events(&config, &acked, Duration::from_secs(30))
        .await
        .unwrap_or_else(|error| panic!("the events of {acked:?} never all arrived: {error}"));
    assert!(events.iter().all(|e| e.key == bob.to_string()));
}

/// The environment of an instance of the production (`cluster`) profile on the test servers of
/// `deploy/local/test.sh`: Cassandra keyspace, Kafka topic and Redis key prefix given, its own
/// (non-development) secrets.
fn cluster_env(keyspace: &str, topic: &str, redis_prefix: &str) -> Vec<(&'static str, String)> {
    let cassandra =
        std::env::var("CHAT_TEST_CASSANDRA").unwrap_or_else(|_| "127.0.0.1:9042".to_owned());
    let redis = std::env::var("CHAT_TEST_REDIS")
        .unwrap_or_else(|_| "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003".to_owned());
    vec![
        ("CHAT_PROFILE", "cluster".to_owned()),
        (
            "CHAT__AUTH__JWT_SECRET",
            "cluster-test-jwt-secret-not-the-development-one-0123456789".to_owned(),
        ),
        ("CHAT__CRYPTO__ACTIVE_KEY_ID", "1".to_owned()),
        (
            "CHAT__CRYPTO__KEYS__1",
            "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=".to_owned(),
        ),
        (
            "CHAT__CRYPTO__DIGEST_KEY",
            "ZGlnZXN0LWtleS1mb3ItY2x1c3Rlci10ZXN0cy0wMTI=".to_owned(),
        ),
        ("CHAT__MIGRATE_ON_START", "true".to_owned()),
        ("CHAT__CASSANDRA__CONTACT_POINTS", cassandra),
        ("CHAT__CASSANDRA__KEYSPACE", keyspace.to_owned()),
        // One test node: a quorum of one.
        ("CHAT__CASSANDRA__CONSISTENCY", "quorum".to_owned()),
        ("CHAT__CASSANDRA__SERIAL_CONSISTENCY", "serial".to_owned()),
        ("CHAT__CASSANDRA__REQUEST_TIMEOUT_MS", "10000".to_owned()),
        ("CHAT__KAFKA__BROKERS", test_kafka()),
        ("CHAT__KAFKA__TOPIC", topic.to_owned()),
        ("CHAT__KAFKA__PARTITIONS", "2".to_owned()),
        ("CHAT__REDIS__NODES", redis),
        ("CHAT__REDIS__KEY_PREFIX", redis_prefix.to_owned()),
        ("CHAT__RELAY__INTERVAL_MS", "100".to_owned()),
    ]
}

/// A JWT for `user` minted by `message-service token` with `env` (so with its secret).
fn mint_with(work: &Path, data: &Path, env: &[(&str, &str)], user: Uuid) -> String {
    let mut command = command(work, data, 0);
    command.envs(env.iter().copied());
    command.args(["token", "--user", &user.to_string()]);
    let finished = run("message-service token", command);
    assert!(
        finished.status.success(),
        "token failed: {}",
        finished.stderr
    );
    finished.stdout.trim().to_owned()
}

/// `GET path` on `port` as the owner of `token`.
async fn get_json(port: u16, path: &str, token: &str) -> (u16, Value) {
    let mut response = http(IO_TIMEOUT)
        .get(format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().limit(16 << 20).await.unwrap())
}

#[actix_web::test]
async fn two_instances_on_the_production_profile_deliver_live_across_instances() {
    let (work, data_one) = workspace();
    let data_two = work.path().join("data-two");
    let keyspace = format!("t_{}", Uuid::new_v4().simple());
    let topic = format!("test-events-{}", Uuid::new_v4().simple());
    let prefix = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
    let owned = cluster_env(&keyspace, &topic, &prefix);
    let env: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let one = Server::start_with(work.path(), &data_one, &env).await;
    let two = Server::start_with(work.path(), &data_two, &env).await;
    let (_, ready) = get_json(one.port, "/readyz", "").await;
    assert_eq!(ready["redis"], "ok", "{ready}");

    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let alice_token = mint_with(work.path(), &data_one, &env, alice);
    let bob_token = mint_with(work.path(), &data_one, &env, bob);
    let mut alice_on_one = connect(one.port, &alice_token).await;
    expect_ready(&mut alice_on_one, alice).await;
    let mut bob_on_two = connect(two.port, &bob_token).await;
    expect_ready(&mut bob_on_two, bob).await;

    // Alice on instance one writes to Bob on instance two, live.
    let ack = send_message(&mut alice_on_one, "x-1", bob, "across instances").await;
    let pushed = next_json(&mut bob_on_two).await;
    assert_eq!(pushed["type"], "message", "{pushed}");
    assert_eq!(pushed["message"]["content"], "across instances");
    assert_eq!(pushed["message"]["message_id"], ack["message_id"]);

    // And back, with a seen receipt crossing the other way.
    let chat = ack["chat_id"].as_str().unwrap().to_owned();
    send_json(
        &mut bob_on_two,
        &json!({"type": "seen", "chat_id": chat, "message_id": ack["message_id"]}),
    )
    .await;
    let seen = next_json(&mut alice_on_one).await;
    assert_eq!(seen["type"], "seen", "{seen}");
    assert_eq!(seen["message_id"], ack["message_id"]);
    let reply = json!({
        "type": "send", "client_msg_id": "y-1", "chat_id": chat, "kind": "text",
        "content": "got it",
    });
    send_json(&mut bob_on_two, &reply).await;
    let mut frames = Vec::new();
    while frames.iter().all(|f: &Value| f["type"] != "ack") {
        frames.push(next_json(&mut bob_on_two).await);
    }
    let pushed = next_json(&mut alice_on_one).await;
    assert_eq!(pushed["type"], "message", "{pushed}");
    assert_eq!(pushed["message"]["content"], "got it");

    // A history cursor issued by one instance loads on the other (shared in Redis).
    for i in 0..4 {
        send_message(
            &mut alice_on_one,
            &format!("p-{i}"),
            bob,
            &format!("page {i}"),
        )
        .await;
    }
    let (status, first) =
        get_json(one.port, &format!("/users/chat/{chat}?limit=3"), &bob_token).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["has_more"], true);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (status, second) = get_json(
        two.port,
        &format!("/users/chat/{chat}?limit=3&cursor={cursor}"),
        &bob_token,
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let contents: Vec<&str> = first["messages"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["messages"].as_array().unwrap())
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        [
            "page 3",
            "page 2",
            "page 1",
            "page 0",
            "got it",
            "across instances"
        ]
    );
    // ...but not for another user.
    let (status, refused) = get_json(
        two.port,
        &format!("/users/chat/{chat}?limit=3&cursor={cursor}"),
        &alice_token,
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
}
