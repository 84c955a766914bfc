//! The production topology `deploy/local/stack.sh` runs (nginx in front of several instances on
//! the `cluster` profile, Cassandra, Kafka, Redis), seen from outside as its clients see it:
//! [`Stack`] knows the public address and the stack's secrets; [`Chatter`] is a client that
//! does what `docs/protocol.md` §8 asks of a reliable client (reconnect, resend unacknowledged
//! messages with the same `client_msg_id`, `sync` the gap, dedup by message id).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use chat_domain::{ChatId, UserId};
use chat_server::auth::TokenVerifier;
use chat_server::settings::{Profile, Settings};
use serde_json::{Value, json};

use crate::{Ended, PATIENCE, Socket};

/// `fail_timeout` of `deploy/nginx/nginx.conf.template`: how long nginx avoids an instance
/// after it failed.
const NGINX_FAIL_TIMEOUT: Duration = Duration::from_secs(2);

/// The running stack.
pub struct Stack {
    /// `http://host:port` of nginx.
    pub base: String,
    /// `host:port` of nginx.
    pub authority: String,
    /// The instances' environment (`stack.sh env`).
    pub env: HashMap<String, String>,
    /// The instances' settings.
    pub settings: Settings,
    verifier: TokenVerifier,
}

/// The instance that answered (`x-served-by`, set by the service; nginx passes it on).
fn served_by(headers: &awc::http::header::HeaderMap) -> String {
    headers
        .get("x-served-by")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Runs `deploy/local/stack.sh args…` with this process's environment (which `deploy/local/
/// test.sh` fills with the stack's ports and folders) and returns its standard output.
pub fn stack_script(args: &[&str]) -> String {
    deploy_script("stack.sh", args)
}

/// Runs `deploy/local/<script> args…` (e.g. `cassandra.sh kill-node 1`) as [`stack_script`]
/// does, and returns its standard output.
pub fn deploy_script(script: &str, args: &[&str]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/local")
        .join(script);
    let output = Command::new("bash")
        .arg(path)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success(), "{script} {args:?} failed");
    String::from_utf8(output.stdout).unwrap()
}

impl Stack {
    /// The stack `deploy/local/test.sh` started (`CHAT_TEST_NGINX`: nginx's `host:port`). A
    /// stack that does not answer fails the test.
    pub fn from_env() -> Self {
        let authority =
            std::env::var("CHAT_TEST_NGINX").unwrap_or_else(|_| "127.0.0.1:8088".to_owned());
        let env: HashMap<String, String> = stack_script(&["env"])
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let environment = config::Environment::default().source(Some(env.clone()));
        let config_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
        let settings = Settings::load_with(&config_dir, Profile::Cluster, environment).unwrap();
        Self {
            base: format!("http://{authority}"),
            authority,
            verifier: TokenVerifier::new(&settings.auth),
            settings,
            env,
        }
    }

    /// An access token for `user`, signed with the stack's secret.
    pub fn token(&self, user: UserId) -> String {
        self.verifier.mint(user, None).unwrap()
    }

    /// Opens a socket through nginx; returns it (its `ready` frame read) and the instance
    /// that took it (`x-served-by`).
    ///
    /// # Errors
    /// Any handshake failure, or a socket that ends before `ready`.
    pub async fn try_connect(&self, user: UserId) -> Result<(Socket, String), String> {
        let request = chat_test_client::ws_request(&format!("ws://{}/ws", self.authority))
            .bearer_auth(self.token(user));
        let (response, mut socket) = Socket::handshake(request)
            .await
            .map_err(|e| e.to_string())?;
        let served_by = served_by(response.headers());
        match socket.try_next_frame(PATIENCE).await {
            Ok(Some(ready)) if ready["type"] == "ready" => Ok((socket, served_by)),
            other => Err(format!("no ready frame: {other:?}")),
        }
    }

    /// As [`Stack::try_connect`], retrying for up to 20 s as a client would (an instance may
    /// be restarting, or nginx still avoiding one that failed); panics after that.
    pub async fn connect(&self, user: UserId) -> (Socket, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match self.try_connect(user).await {
                Ok(connected) => return connected,
                Err(error) if tokio::time::Instant::now() < deadline => {
                    eprintln!("connect through nginx failed ({error}); retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("could not connect through nginx: {error}"),
            }
        }
    }

    /// `GET path` through nginx as `user`: status, JSON body, and the instance that answered.
    pub async fn get(&self, path: &str, user: UserId) -> (u16, Value, String) {
        let mut response = awc::Client::builder()
            .timeout(PATIENCE)
            .finish()
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.token(user))
            .send()
            .await
            .unwrap();
        let served_by = served_by(response.headers());
        let status = response.status().as_u16();
        let body = response.json().limit(64 << 20).await.unwrap_or(Value::Null);
        (status, body, served_by)
    }

    /// Every message of `chat` as `user` sees it, paging the history through nginx with `limit`
    /// per page; newest first.
    pub async fn history(&self, user: UserId, chat: ChatId, limit: u32) -> Vec<Value> {
        let mut messages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/users/chat/{chat}?limit={limit}&cursor={cursor}"),
                None => format!("/users/chat/{chat}?limit={limit}"),
            };
            let (status, page, _) = self.get(&path, user).await;
            assert_eq!(status, 200, "{path}: {page}");
            messages.extend(page["messages"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => {
                    assert_eq!(page["has_more"], false, "{page}");
                    return messages;
                }
            }
        }
    }

    /// The instances: (number, port, running).
    pub fn instances(&self) -> Vec<(usize, u16, bool)> {
        stack_script(&["instances"])
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (
                    fields[0].parse().unwrap(),
                    fields[1].parse().unwrap(),
                    fields[2] != "-",
                )
            })
            .collect()
    }

    /// The number of the instance named `served_by` (`instance-<n>`).
    pub fn instance_number(served_by: &str) -> usize {
        served_by
            .strip_prefix("instance-")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not an instance name: {served_by:?}"))
    }

    /// Starts every instance that is not running (after a test killed or stopped one), and
    /// gives nginx time to send traffic to it again.
    pub fn restore(&self) {
        let mut restarted = false;
        for (number, _, running) in self.instances() {
            if !running {
                stack_script(&["start-instance", &number.to_string()]);
                restarted = true;
            }
        }
        if restarted {
            // nginx retries an instance that failed after `fail_timeout` (2 s).
            std::thread::sleep(NGINX_FAIL_TIMEOUT + Duration::from_millis(500));
        }
    }
}

/// A reliable client of one user talking to one peer: it keeps one socket through nginx, and on
/// any failure reconnects (with backoff), `sync`s the chat from the last message it has, and
/// resends what was not acknowledged, with the same `client_msg_id`.
pub struct Chatter {
    /// The user.
    pub user: UserId,
    /// The peer.
    pub peer: UserId,
    /// Their chat.
    pub chat: ChatId,
    socket: Option<Socket>,
    /// The instance of the current socket.
    pub served_by: String,
    /// Acknowledged sends: client_msg_id → message_id.
    pub acked: BTreeMap<String, String>,
    /// Messages this client has (live or synced), by id → content; duplicates are dropped.
    pub have: BTreeMap<String, String>,
    /// How many live `message` frames carried a message this client already had (a resend
    /// pushed again, or a push racing a sync): dropped by id, as clients must.
    pub duplicates_dropped: usize,
    /// How many times it reconnected.
    pub reconnects: usize,
    sent: usize,
}

impl Chatter {
    /// A client of `user` talking to `peer`, connected.
    pub async fn connect(stack: &Stack, user: UserId, peer: UserId) -> Self {
        let (socket, served_by) = stack.connect(user).await;
        Self {
            user,
            peer,
            chat: ChatId::for_pair(user, peer),
            socket: Some(socket),
            served_by,
            acked: BTreeMap::new(),
            have: BTreeMap::new(),
            duplicates_dropped: 0,
            reconnects: 0,
            sent: 0,
        }
    }

    /// Keeps `message` unless this client has it already; returns whether it was new.
    fn record(&mut self, message: &Value) -> bool {
        let id = message["message_id"].as_str().unwrap().to_owned();
        let content = message["content"].as_str().unwrap_or_default().to_owned();
        self.have.insert(id, content).is_none()
    }

    /// The newest message id this client has (ids order messages, `docs/decisions.md`).
    fn last_id(&self) -> Option<String> {
        self.have.keys().next_back().cloned()
    }

    /// Handles one frame that is not an answer being waited for.
    fn absorb(&mut self, frame: &Value) {
        if frame["type"] == "message" && frame["message"]["chat_id"] == self.chat.to_string() {
            let message = frame["message"].clone();
            if !self.record(&message) {
                self.duplicates_dropped += 1;
            }
        }
    }

    /// Reconnects through nginx (retrying for up to 60 s) and syncs the chat.
    pub async fn reconnect(&mut self, stack: &Stack) {
        self.socket = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut pause = Duration::from_millis(50);
        loop {
            match stack.try_connect(self.user).await {
                Ok((socket, served_by)) => {
                    self.socket = Some(socket);
                    self.served_by = served_by;
                    self.reconnects += 1;
                    // A client that holds no message of the chat may not have opened it yet
                    // (its first send failed): syncing would be `unknown_chat`, so it only
                    // resends; `catch_up` syncs the whole chat at the end.
                    let after = self.last_id();
                    if self.have.is_empty() || self.sync(after).await.is_ok() {
                        return;
                    }
                }
                Err(error) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "could not reconnect within 60 s: {error}"
                    );
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Asks for every message after `after` (from the oldest when `None`), page by page.
    async fn sync(&mut self, mut after: Option<String>) -> Result<(), Ended> {
        loop {
            let frame = json!({"type": "sync", "chat_id": self.chat.to_string(), "after_message_id": after});
            self.send_frame(&frame).await?;
            let result = self.wait_for("sync_result").await?;
            for message in result["messages"].as_array().cloned().unwrap_or_default() {
                after = message["message_id"].as_str().map(str::to_owned);
                self.record(&message);
            }
            if result["has_more"] != true {
                return Ok(());
            }
        }
    }

    async fn send_frame(&mut self, frame: &Value) -> Result<(), Ended> {
        match &mut self.socket {
            Some(socket) => socket.try_send(frame).await,
            None => Err(Ended::Dropped),
        }
    }

    /// Reads frames (absorbing live ones) until one of `kind`; an `unavailable` error or the
    /// socket ending is an `Err` (the caller reconnects and retries).
    async fn wait_for(&mut self, kind: &str) -> Result<Value, Ended> {
        loop {
            let Some(socket) = &mut self.socket else {
                return Err(Ended::Dropped);
            };
            match socket.try_next_frame(PATIENCE).await? {
                None => return Err(Ended::Dropped),
                Some(frame) if frame["type"] == kind => return Ok(frame),
                Some(frame) if frame["type"] == "error" && frame["code"] == "rate_limited" => {
                    // Over the send rate: wait as told, then resend as after any failure.
                    let wait = frame["retry_after_ms"].as_u64().unwrap_or(100);
                    actix_web::rt::time::sleep(Duration::from_millis(wait)).await;
                    return Err(Ended::Dropped);
                }
                Some(frame) if frame["type"] == "error" => {
                    assert_eq!(frame["code"], "unavailable", "{frame}");
                    return Err(Ended::Dropped);
                }
                Some(frame) => self.absorb(&frame),
            }
        }
    }

    /// Sends the next text message to the peer and waits for its ack, reconnecting and
    /// resending (same `client_msg_id`) until it is acknowledged.
    pub async fn send_next(&mut self, stack: &Stack) {
        self.sent += 1;
        let client_msg_id = format!("{}-{}", self.user, self.sent);
        let content = format!("message {} from {}", self.sent, self.user);
        let frame = json!({
            "type": "send", "client_msg_id": client_msg_id, "to_user_id": self.peer.to_string(),
            "kind": "text", "content": content,
        });
        loop {
            let answer = match self.send_frame(&frame).await {
                Ok(()) => self.wait_for("ack").await,
                Err(ended) => Err(ended),
            };
            match answer {
                Ok(ack) => {
                    assert_eq!(ack["client_msg_id"], client_msg_id.as_str());
                    let id = ack["message_id"].as_str().unwrap().to_owned();
                    if let Some(before) = self.acked.insert(client_msg_id.clone(), id.clone()) {
                        assert_eq!(before, id, "a resend was acknowledged as another message");
                    }
                    self.have.insert(id, content);
                    return;
                }
                Err(_) => self.reconnect(stack).await,
            }
        }
    }

    /// Reads live frames for `quiet` (reconnecting if the socket ends), then syncs the whole
    /// chat: what a client that was away would fetch.
    pub async fn catch_up(&mut self, stack: &Stack, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        while tokio::time::Instant::now() < deadline {
            let Some(socket) = &mut self.socket else {
                self.reconnect(stack).await;
                continue;
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match socket.try_next_frame(left).await {
                Ok(Some(frame)) => self.absorb(&frame),
                Ok(None) => break,
                Err(_) => self.reconnect(stack).await,
            }
        }
        while self.sync(None).await.is_err() {
            self.reconnect(stack).await;
        }
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        if let Some(socket) = self.socket.take() {
            socket.close().await;
        }
    }
}
