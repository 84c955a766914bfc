//! The harness: the binary as a child process whose output is kept (and printed when a test
//! fails), a server started on a free port and awaited until ready, its subcommands, its
//! WebSocket (the shared test client) and HTTP, and the test servers' environment.

use std::io::Read;
use std::net::TcpListener;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::rt::time::{sleep, timeout};
pub use chat_test_client::Socket;
use chat_test_client::text_to_user;
use serde_json::Value;
use tempfile::TempDir;
use uuid::Uuid;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_message-service");
/// How long a server may take to answer `/readyz` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one WebSocket frame or HTTP answer may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// `server.shutdown_timeout_secs` of the compiled-in defaults.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a subcommand (token, keygen, migrate, a failing start) may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a wait for a child's exit looks again.
const POLL_EXIT: Duration = Duration::from_millis(20);
/// How long the outbox relay may take to publish (it polls every 200 ms).
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The binary with the test environment: no config folder, `data` as the data dir, `port`.
pub fn command(work: &Path, data: &Path, port: u16) -> Command {
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
pub struct Process {
    name: String,
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Process {
    pub fn spawn(name: impl Into<String>, mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (stdout, out_reader) = collect(child.stdout.take().unwrap());
        let (stderr, err_reader) = collect(child.stderr.take().unwrap());
        Self {
            name: name.into(),
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
            status: None,
        }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The exit status, if the child has exited; then its output is complete.
    pub fn exited(&mut self) -> Option<ExitStatus> {
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

    /// `Break` with the exit status once the child has exited, or with `None` when it still
    /// runs at `deadline`; `Continue` meanwhile.
    fn exit_by(&mut self, deadline: Instant) -> ControlFlow<Option<ExitStatus>> {
        match self.exited() {
            Some(status) => ControlFlow::Break(Some(status)),
            None if Instant::now() >= deadline => ControlFlow::Break(None),
            None => ControlFlow::Continue(()),
        }
    }

    /// Waits (without blocking the runtime) up to `within` for the child to exit.
    pub async fn exit_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let ControlFlow::Break(exit) = self.exit_by(deadline) {
                return exit;
            }
            sleep(POLL_EXIT).await;
        }
    }

    /// Waits (blocking the thread) up to `within` for the child to exit.
    fn exit_within_blocking(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let ControlFlow::Break(exit) = self.exit_by(deadline) {
                return exit;
            }
            std::thread::sleep(POLL_EXIT);
        }
    }

    /// Waits up to `SHUTDOWN_TIMEOUT` for the child to exit after SIGTERM, and asserts it
    /// exited successfully.
    pub async fn assert_clean_exit_after_sigterm(&mut self) {
        let Some(status) = self.exit_within(SHUTDOWN_TIMEOUT).await else {
            panic!("the server did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM");
        };
        assert!(status.success(), "exit status after SIGTERM: {status}");
    }

    /// Kills the process at once (SIGKILL), like a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM, with the `kill` command (this crate forbids unsafe code).
    pub fn terminate(&self) {
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
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Asserts that the command succeeded; the message shows its status and stderr.
    pub fn assert_success(&self, name: &str) {
        assert!(
            self.status.success(),
            "{name} failed ({}): {}",
            self.status,
            self.stderr
        );
    }
}

/// Runs `command` to its end, failing the test when it takes longer than `COMMAND_TIMEOUT`.
pub fn run(name: &str, command: Command) -> Finished {
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

/// Runs the subcommand `message-service args…` with `env` to its end (on no port: subcommands
/// do not listen).
pub fn subcommand(work: &Path, data: &Path, env: &[(&str, &str)], args: &[&str]) -> Finished {
    let mut command = command(work, data, 0);
    command.envs(env.iter().copied()).args(args);
    run(&format!("message-service {}", args.join(" ")), command)
}

/// A JWT for `user`, minted by `message-service token`.
pub fn mint(work: &Path, data: &Path, user: Uuid) -> String {
    let token = mint_with(work, data, &[], user);
    assert_eq!(token.split('.').count(), 3, "not a JWT: {token:?}");
    token
}

/// An HTTP client whose requests give up after `timeout`.
pub fn http(timeout: Duration) -> awc::Client {
    awc::Client::builder().timeout(timeout).finish()
}

/// The status of `GET /readyz`, or `None` when nothing answers.
pub async fn readiness(port: u16) -> Option<u16> {
    let request = http(Duration::from_secs(2))
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send();
    match timeout(Duration::from_secs(3), request).await {
        Ok(Ok(response)) => Some(response.status().as_u16()),
        _ => None,
    }
}

/// A running `message-service serve`.
pub struct Server {
    pub process: Process,
    pub port: u16,
}

impl Server {
    /// Starts the service on a free port and waits until `/readyz` answers 200.
    pub async fn start(work: &Path, data: &Path) -> Self {
        Self::start_with(work, data, &[]).await
    }

    /// As [`Server::start`], with extra environment variables.
    pub async fn start_with(work: &Path, data: &Path, env: &[(&str, &str)]) -> Self {
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
pub async fn connect(port: u16, token: &str) -> Socket {
    let request =
        chat_test_client::ws_request(&format!("ws://127.0.0.1:{port}/ws")).bearer_auth(token);
    let (response, socket) = timeout(IO_TIMEOUT, Socket::handshake(request))
        .await
        .expect("the WebSocket upgrade timed out")
        .expect("the WebSocket upgrade failed");
    assert_eq!(response.status().as_u16(), 101);
    socket
}

/// Sends a text message to `to` and returns its ack, which must be the next frame.
pub async fn send_message(
    socket: &mut Socket,
    client_msg_id: &str,
    to: Uuid,
    content: &str,
) -> Value {
    socket.send(&text_to_user(to, client_msg_id, content)).await;
    let ack = socket.next_json().await;
    assert_eq!(ack["type"], "ack", "expected an ack, got {ack}");
    assert_eq!(ack["client_msg_id"], client_msg_id);
    ack
}

/// The lines of the event log, or none while it does not exist.
pub fn event_lines(data: &Path) -> Vec<String> {
    match std::fs::read_to_string(data.join("events.jsonl")) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    }
}

/// A fresh working directory with `data` below it.
pub fn workspace() -> (TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    (work, data)
}

/// The test Kafka (`CHAT_TEST_KAFKA`, started by `deploy/local/test.sh`).
pub fn test_kafka() -> String {
    std::env::var("CHAT_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// The environment of an instance of the production (`cluster`) profile on the test servers of
/// `deploy/local/test.sh`: Cassandra keyspace, Kafka topic and Redis key prefix given, its own
/// (non-development) secrets.
pub fn cluster_env(keyspace: &str, topic: &str, redis_prefix: &str) -> Vec<(&'static str, String)> {
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
pub fn mint_with(work: &Path, data: &Path, env: &[(&str, &str)], user: Uuid) -> String {
    let finished = subcommand(work, data, env, &["token", "--user", &user.to_string()]);
    finished.assert_success("token");
    finished.stdout.trim().to_owned()
}

/// `GET path` on `port` as the owner of `token`.
pub async fn get_json(port: u16, path: &str, token: &str) -> (u16, Value) {
    let mut response = http(IO_TIMEOUT)
        .get(format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().limit(16 << 20).await.unwrap())
}
