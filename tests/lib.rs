//! Helpers for whole-system tests: [`TestApp`] runs the real service (real listener, real
//! adapters of the profile) on a free port, and [`Socket`] is a real WebSocket client.
#![allow(clippy::unwrap_used)] // Test helpers panic with a message when the service misbehaves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chat_domain::UserId;
use chat_server::auth::TokenVerifier;
use chat_server::settings::{Profile, Settings};
use chat_server::startup::Application;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use chat_test_client::{Ended, PATIENCE, Socket};

/// The environment variable that sets the dotted setting `setting` (`crypto.keys.1` →
/// `CHAT__CRYPTO__KEYS__1`).
pub fn env_name(setting: &str) -> String {
    format!("CHAT__{}", setting.replace('.', "__").to_uppercase())
}

/// A running service.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The port.
    pub port: u16,
    /// The settings it runs with.
    pub settings: Settings,
    shutdown: CancellationToken,
    stopped: Option<tokio::sync::oneshot::Receiver<()>>,
    data: DataDir,
}

/// Where a test service keeps its data: a fresh temporary folder, or one carried over from a
/// previous run of the service.
pub enum DataDir {
    /// Deleted when the last owner drops it.
    Temp(tempfile::TempDir),
    /// Kept.
    Path(PathBuf),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            Self::Temp(dir) => dir.path(),
            Self::Path(path) => path,
        }
    }
}

impl TestApp {
    /// Starts the embedded profile on a fresh data folder.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts it with extra settings (`("websocket.heartbeat_interval_secs", "1")`, …).
    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        let data = DataDir::Temp(tempfile::tempdir().unwrap());
        Self::spawn_in(data, overrides).await
    }

    /// Starts it on `data`, retrying briefly while a previous run still holds the database.
    pub async fn spawn_in(data: DataDir, overrides: &[(&str, &str)]) -> Self {
        let mut variables: HashMap<String, String> = HashMap::from([
            ("CHAT__SERVER__PORT".to_owned(), "0".to_owned()),
            ("CHAT__SERVER__WORKERS".to_owned(), "1".to_owned()),
            (
                "CHAT__SERVER__SHUTDOWN_TIMEOUT_SECS".to_owned(),
                "3".to_owned(),
            ),
            ("CHAT__RELAY__INTERVAL_MS".to_owned(), "20".to_owned()),
            (
                "CHAT__EMBEDDED__DATA_DIR".to_owned(),
                data.path().display().to_string(),
            ),
        ]);
        for (key, value) in overrides {
            variables.insert(env_name(key), (*value).to_owned());
        }
        let environment = config::Environment::default().source(Some(variables));
        let settings =
            Settings::load_with(Path::new("/nonexistent"), Profile::Embedded, environment).unwrap();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let app = loop {
            match Application::build(settings.clone()).await {
                Ok(app) => break app,
                Err(error) if tokio::time::Instant::now() < deadline => {
                    eprintln!("service not built yet ({error}); retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("the service did not start: {error}"),
            }
        };
        let port = app.port();
        let shutdown = app.shutdown_token();
        let (stopped_tx, stopped) = tokio::sync::oneshot::channel();
        actix_web::rt::spawn(async move {
            app.run_until_stopped().await.unwrap();
            let _ = stopped_tx.send(());
        });
        Self {
            address: format!("http://127.0.0.1:{port}"),
            port,
            settings,
            shutdown,
            stopped: Some(stopped),
            data,
        }
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Shuts down gracefully, waits until it has stopped, and hands back its data folder.
    pub async fn stop(mut self) -> DataDir {
        self.shutdown.cancel();
        if let Some(stopped) = self.stopped.take() {
            tokio::time::timeout(PATIENCE, stopped)
                .await
                .expect("the service did not stop in time")
                .unwrap();
        }
        std::mem::replace(&mut self.data, DataDir::Path(PathBuf::new()))
    }

    /// Starts graceful shutdown without waiting.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// A token for `user` signed with the service's secret.
    pub fn token(&self, user: UserId) -> String {
        TokenVerifier::new(&self.settings.auth)
            .mint(user, None)
            .unwrap()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// An HTTP client.
    pub fn http(&self) -> awc::Client {
        awc::Client::builder().timeout(PATIENCE).finish()
    }

    /// `GET path` as `user` (or anonymously); returns status and JSON body.
    pub async fn get(&self, path: &str, user: Option<UserId>) -> (u16, Value) {
        let mut request = self.http().get(self.url(path));
        if let Some(user) = user {
            request = request.bearer_auth(self.token(user));
        }
        let mut response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.body().limit(64 << 20).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// `GET path` anonymously; returns status and the body as text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let mut response = self.http().get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.body().limit(64 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The value of the unlabelled metric `name` on `/metrics`, if it is there.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let (_, text) = self.get_text("/metrics").await;
        text.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(' ')?;
            value.trim().parse().ok()
        })
    }

    /// `POST path` with a JSON body as `user`.
    pub async fn post(&self, path: &str, user: UserId, body: &Value) -> (u16, Value) {
        let mut response = self
            .http()
            .post(self.url(path))
            .bearer_auth(self.token(user))
            .send_json(body)
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.body().await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Every page of a chat's history as `user`, `limit` per page; calls `between` after each
    /// page. Returns the messages in the order served.
    pub async fn page_all(
        &self,
        user: UserId,
        chat: &str,
        limit: u32,
        mut between: impl AsyncFnMut(),
    ) -> Vec<Value> {
        let mut messages = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10_000 {
            let path = match &cursor {
                Some(cursor) => format!("/users/chat/{chat}?limit={limit}&cursor={cursor}"),
                None => format!("/users/chat/{chat}?limit={limit}"),
            };
            let (status, page) = self.get(&path, Some(user)).await;
            assert_eq!(status, 200, "{page}");
            messages.extend(page["messages"].as_array().unwrap().iter().cloned());
            between().await;
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return messages,
            }
        }
        panic!("paging never ended");
    }

    /// A WebSocket connection as `user`, token in the `Authorization` header; the `ready`
    /// frame is already read.
    pub async fn connect(&self, user: UserId) -> Socket {
        let request = self.ws_request().bearer_auth(self.token(user));
        let mut socket = Socket::open(request).await.unwrap();
        socket.expect_ready(user).await;
        socket
    }

    /// A WebSocket handshake request to `/ws`, to be completed by the test.
    pub fn ws_request(&self) -> awc::ws::WebsocketsRequest {
        self.ws_request_to("/ws")
    }

    /// A WebSocket handshake request to `path_and_query`.
    pub fn ws_request_to(&self, path_and_query: &str) -> awc::ws::WebsocketsRequest {
        chat_test_client::ws_request(&format!("ws://127.0.0.1:{}{path_and_query}", self.port))
    }
}

/// One test at a time in this test binary: the guard of a lock every caller shares, for tests
/// that stop, kill or count the shared servers.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// A fresh user id.
pub fn user() -> UserId {
    UserId::from_uuid(uuid::Uuid::new_v4())
}

pub mod stack;

/// Running the service with its store in the test Cassandra (`CHAT_TEST_CASSANDRA`, started by
/// `deploy/local/test.sh`).
pub mod cassandra {
    use super::{DataDir, TestApp};

    /// Settings that put the store in Cassandra, in keyspace `keyspace`, migrated at start-up.
    pub fn on_cassandra(keyspace: &str) -> Vec<(&'static str, String)> {
        let contact_points =
            std::env::var("CHAT_TEST_CASSANDRA").unwrap_or_else(|_| "127.0.0.1:9042".to_owned());
        vec![
            ("adapters.store", "cassandra".to_owned()),
            ("cassandra.contact_points", contact_points),
            ("cassandra.keyspace", keyspace.to_owned()),
            // One test node: a quorum of one.
            ("cassandra.consistency", "quorum".to_owned()),
            ("cassandra.serial_consistency", "serial".to_owned()),
            ("cassandra.request_timeout_ms", "10000".to_owned()),
            ("cassandra.connect_timeout_ms", "10000".to_owned()),
            ("migrate_on_start", "true".to_owned()),
        ]
    }

    /// A keyspace name no other test uses.
    pub fn fresh_keyspace() -> String {
        format!("t_{}", uuid::Uuid::new_v4().simple())
    }

    /// The service on Cassandra keyspace `keyspace`, with a fresh local data folder.
    pub async fn spawn(keyspace: &str) -> TestApp {
        let settings = on_cassandra(keyspace);
        let overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        TestApp::spawn_in(DataDir::Temp(tempfile::tempdir().unwrap()), &overrides).await
    }
}
