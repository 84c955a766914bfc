//! Typed settings. Sources, later ones winning: the copies of `config/default.toml` and
//! `config/<profile>.toml` compiled into the binary, the same files in the config folder (when
//! present), then environment variables `CHAT__SECTION__KEY` (e.g. `CHAT__SERVER__PORT=9000`).
//! A profile is a preset of adapters (`[adapters]`) and their settings.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

/// The defaults every deployment starts from; `config/default.toml` in the repository.
const DEFAULTS: &str = include_str!("../../../config/default.toml");

/// The development JWT secret in `config/default.toml`.
pub const DEV_JWT_SECRET: &str = "dev-only-jwt-secret-change-me-in-every-deployment-0123456789";
/// The development content key (id 1) in `config/default.toml`.
pub const DEV_CONTENT_KEY: &str = "hRkUjjkmH4J2+2388b5cT/tRAXURdD01Su7Bq1p1jPA=";
/// The development digest key in `config/default.toml`.
pub const DEV_DIGEST_KEY: &str = "XGsoFIAg+L22DsB55PxhBLJv+1nT4s1mCaqPyiKEFCU=";

/// A preset of adapters, named after its config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// One process, no external server: redb on disk, in-process cache and fan-out, a local
    /// event log.
    Embedded,
    /// Production: Cassandra storage (see `config/cluster.toml` for the other ports).
    Cluster,
}

impl Profile {
    /// The profile's name, which is also the name of its config file.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Cluster => "cluster",
        }
    }

    /// The profile file compiled into the binary.
    fn compiled_file(&self) -> &'static str {
        match self {
            Self::Embedded => include_str!("../../../config/embedded.toml"),
            Self::Cluster => include_str!("../../../config/cluster.toml"),
        }
    }
}

impl FromStr for Profile {
    type Err = SettingsError;

    fn from_str(name: &str) -> Result<Self, SettingsError> {
        match name {
            "embedded" => Ok(Self::Embedded),
            "cluster" => Ok(Self::Cluster),
            other => Err(SettingsError::UnknownProfile(other.to_owned())),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The profile named is not one this build knows.
    #[error("unknown profile {0:?}; the profiles are: embedded, cluster")]
    UnknownProfile(String),
    /// A source could not be read or a value has the wrong type.
    #[error("configuration")]
    Config(#[from] config::ConfigError),
    /// A value is out of range.
    #[error("configuration: {0}")]
    Invalid(String),
}

/// Every setting of the service.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Which adapter serves each port.
    pub adapters: AdapterSettings,
    /// Whether the development secrets of `config/default.toml` may be used (never in
    /// production: the `cluster` profile refuses them).
    pub allow_development_secrets: bool,
    /// Whether start-up applies the store's migrations.
    pub migrate_on_start: bool,
    /// HTTP listener.
    pub server: ServerSettings,
    /// Access tokens.
    pub auth: AuthSettings,
    /// What clients may send and ask for.
    pub limits: chat_domain::Limits,
    /// WebSocket connections.
    pub websocket: WebSocketSettings,
    /// Content encryption keys.
    pub crypto: crate::wiring::config::CryptoConfig,
    /// Local files (the embedded store, the local event log) and the in-process cache.
    pub embedded: crate::wiring::config::EmbeddedConfig,
    /// The Cassandra cluster, when `adapters.store = "cassandra"`.
    #[serde(default)]
    pub cassandra: crate::wiring::config::CassandraConfig,
    /// The Kafka brokers and topic, when `adapters.events = "kafka"`.
    #[serde(default)]
    pub kafka: crate::wiring::config::KafkaConfig,
    /// The Redis cluster, when `adapters.cache` or `adapters.fan_out` is `"redis"`.
    #[serde(default)]
    pub redis: crate::wiring::config::RedisConfig,
    /// Per-user rate limits.
    pub rate_limits: crate::rate_limits::RateLimitSettings,
    /// The outbox relay.
    pub relay: RelaySettings,
    /// Logging.
    pub log: LogSettings,
}

/// Which adapter serves each port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct AdapterSettings {
    /// Messages, chats and the outbox.
    pub store: StoreAdapter,
    /// The caches (recent messages, chat lists) and the cursor store, which is not a cache (it
    /// holds the only copy of each history cursor); the key keeps its name for compatibility.
    pub cache: CacheAdapter,
    /// Live delivery between connections.
    pub fan_out: FanOutAdapter,
    /// Where the outbox relay publishes new-message events.
    pub events: EventsAdapter,
}

/// Storage adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreAdapter {
    /// redb in `embedded.data_dir` (single process).
    Embedded,
    /// Apache Cassandra (`[cassandra]`).
    Cassandra,
}

/// Adapters for the caches and the cursor store (`adapters.cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheAdapter {
    /// In this process (`[embedded.cache]`); cursors only work on the instance that made them.
    Memory,
    /// The Redis cluster (`[redis]`), shared by every instance.
    Redis,
}

/// Fan-out adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FanOutAdapter {
    /// Only this process's sockets.
    Local,
    /// Sharded pub/sub on the Redis cluster (`[redis]`): reaches sockets on every instance.
    Redis,
}

/// Event publishers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventsAdapter {
    /// A JSON-lines file in `embedded.data_dir`.
    Log,
    /// Apache Kafka (`[kafka]`).
    Kafka,
}

/// HTTP listener.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Address to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// How long a graceful shutdown may take before connections are dropped.
    pub shutdown_timeout_secs: u64,
    /// How long a client may take to send a request's head (headers) before it gets a 408;
    /// stops slow-loris connections from holding workers.
    pub client_request_timeout_secs: u64,
    /// Largest JSON request body (e.g. `POST /chats`).
    pub max_json_body_bytes: usize,
    /// An instance name for logs and the `x-served-by` response header; empty means
    /// `host:port`.
    pub instance_name: String,
}

/// Access tokens (JWT, HS256).
#[derive(Clone, Deserialize)]
pub struct AuthSettings {
    /// The shared HS256 secret (user-service signs with it). At least 32 bytes.
    pub jwt_secret: SecretString,
    /// Required `iss` claim; empty means not checked.
    pub issuer: String,
    /// Required `aud` claim; empty means not checked.
    pub audience: String,
    /// Clock skew tolerated on `exp`/`nbf`.
    pub leeway_secs: u64,
    /// Whether `/ws?access_token=…` is accepted (browsers cannot set headers on a WebSocket;
    /// the subprotocol is the other way). Query strings end up in access logs: prefer the
    /// subprotocol where clients can.
    pub allow_query_token: bool,
    /// Lifetime of tokens minted by `message-service token`.
    pub dev_token_ttl_secs: u64,
}

impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSettings")
            .field("jwt_secret", &"[REDACTED]")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .field("allow_query_token", &self.allow_query_token)
            .finish()
    }
}

/// WebSocket connections.
#[derive(Debug, Clone, Deserialize)]
pub struct WebSocketSettings {
    /// Largest frame (after joining continuations); a larger one closes the socket with 1009.
    pub max_frame_bytes: usize,
    /// How often the server pings.
    pub heartbeat_interval_secs: u64,
    /// A socket with no frame (pong included) for this long is closed with 4000.
    pub client_timeout_secs: u64,
    /// Frames queued for one socket before it counts as too slow and is closed with 1013.
    pub outbound_queue: usize,
    /// How long one frame's work (e.g. storing a message) may take before an `unavailable`
    /// error frame answers it.
    pub frame_timeout_secs: u64,
    /// Sockets one user may hold on one instance; one more is refused with 429
    /// `too_many_sockets`.
    pub max_sockets_per_user: usize,
    /// Sockets one instance holds in all; one more is refused with 503 `instance_full` (nginx
    /// tries another instance). Keep it below the process's file limit.
    pub max_sockets: usize,
}

impl WebSocketSettings {
    /// The socket caps.
    pub fn socket_caps(&self) -> crate::connections::SocketCaps {
        crate::connections::SocketCaps {
            per_user: self.max_sockets_per_user,
            per_instance: self.max_sockets,
        }
    }
}

/// The outbox relay.
#[derive(Debug, Clone, Deserialize)]
pub struct RelaySettings {
    /// Events per publish.
    pub batch: u32,
    /// Pause between rounds when the outbox is empty.
    pub interval_ms: u64,
    /// Longest pause after failures (the backoff doubles up to it).
    pub max_backoff_ms: u64,
    /// How often the relay measures the outbox backlog for `chat_outbox_backlog`. Measuring
    /// reads the whole outbox index (and counts rows on Cassandra), so it runs on its own
    /// clock, never once per round.
    pub backlog_interval_ms: u64,
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
    /// A `tracing` filter such as `info,chat_server=debug`; `RUST_LOG` overrides it.
    pub filter: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Settings {
    /// Loads the settings of `profile` from `config_dir` and the environment.
    ///
    /// # Errors
    /// [`SettingsError`] when a source is unreadable or a value invalid.
    pub fn load(config_dir: &Path, profile: Profile) -> Result<Self, SettingsError> {
        Self::load_with(config_dir, profile, Environment::default())
    }

    /// As [`Settings::load`], with the environment given (tests pass a map).
    ///
    /// # Errors
    /// [`SettingsError`] when a source is unreadable or a value invalid.
    pub fn load_with(
        config_dir: &Path,
        profile: Profile,
        environment: Environment,
    ) -> Result<Self, SettingsError> {
        let settings: Settings = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .add_source(File::from_str(profile.compiled_file(), FileFormat::Toml))
            .add_source(File::from(config_dir.join("default.toml")).required(false))
            .add_source(File::from(config_dir.join(format!("{profile}.toml"))).required(false))
            .add_source(
                environment
                    .prefix("CHAT")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("cassandra.contact_points")
                    .with_list_parse_key("kafka.brokers")
                    .with_list_parse_key("redis.nodes"),
            )
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Whether `POST /dev/token` (a token for any user, for the demo page) is served: only where
    /// development secrets are allowed, the development JWT secret is the one in use (tokens
    /// it signs are worthless elsewhere), and the listener is on loopback (nobody else can
    /// reach it).
    pub fn serves_development_tokens(&self) -> bool {
        let loopback = self.server.host == "localhost"
            || self
                .server
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|address| address.is_loopback());
        self.allow_development_secrets
            && self.auth.jwt_secret.expose_secret() == DEV_JWT_SECRET
            && loopback
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |what: &str| Err(SettingsError::Invalid(what.to_owned()));
        if self.auth.jwt_secret.expose_secret().len() < 32 {
            return invalid("auth.jwt_secret must be at least 32 bytes");
        }
        if self.limits.max_page_size == 0
            || self.limits.default_page_size == 0
            || self.limits.default_page_size > self.limits.max_page_size
        {
            return invalid("limits: need 0 < default_page_size <= max_page_size");
        }
        if self.websocket.max_frame_bytes < self.limits.max_content_bytes {
            return invalid("websocket.max_frame_bytes must be at least limits.max_content_bytes");
        }
        if self.websocket.client_timeout_secs <= self.websocket.heartbeat_interval_secs {
            return invalid("websocket.client_timeout_secs must exceed heartbeat_interval_secs");
        }
        if self.websocket.outbound_queue == 0 || self.relay.batch == 0 {
            return invalid("websocket.outbound_queue and relay.batch must be positive");
        }
        let limits = &self.rate_limits;
        if [
            limits.send,
            limits.typing,
            limits.seen,
            limits.sync,
            limits.open_chat,
            limits.reads,
        ]
        .iter()
        .any(|allowance| allowance.per_second == 0 || allowance.burst == 0)
        {
            return invalid("every rate_limits allowance needs a positive per_second and burst");
        }
        if self.websocket.max_sockets_per_user == 0 || self.websocket.max_sockets == 0 {
            return invalid(
                "websocket.max_sockets_per_user and websocket.max_sockets must be positive",
            );
        }
        if !self.allow_development_secrets {
            let dev_key = |id: &str, dev: &str| {
                self.crypto
                    .keys
                    .get(id)
                    .is_some_and(|key| key.expose_secret().trim() == dev)
            };
            if self.auth.jwt_secret.expose_secret() == DEV_JWT_SECRET
                || dev_key("1", DEV_CONTENT_KEY)
                || self.crypto.digest_key.expose_secret().trim() == DEV_DIGEST_KEY
            {
                return invalid(
                    "this profile refuses the development secrets of config/default.toml: set \
                     CHAT__AUTH__JWT_SECRET, CHAT__CRYPTO__KEYS__<id> with \
                     CHAT__CRYPTO__ACTIVE_KEY_ID, and CHAT__CRYPTO__DIGEST_KEY (message-service \
                     keygen makes keys); or set CHAT__ALLOW_DEVELOPMENT_SECRETS=true for local tests",
                );
            }
        }
        Ok(())
    }

    /// The instance name for logs and the `x-served-by` header.
    pub fn instance_name(&self, port: u16) -> String {
        if self.server.instance_name.is_empty() {
            format!("{}:{port}", self.server.host)
        } else {
            self.server.instance_name.clone()
        }
    }
}

impl WebSocketSettings {
    /// [`WebSocketSettings::heartbeat_interval_secs`] as a duration.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(self.heartbeat_interval_secs)
    }

    /// [`WebSocketSettings::client_timeout_secs`] as a duration.
    pub fn client_timeout(&self) -> Duration {
        Duration::from_secs(self.client_timeout_secs)
    }

    /// [`WebSocketSettings::frame_timeout_secs`] as a duration.
    pub fn frame_timeout(&self) -> Duration {
        Duration::from_secs(self.frame_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Environment::default().source(Some(map))
    }

    #[test]
    fn compiled_defaults_load_on_their_own() {
        let settings =
            Settings::load_with(Path::new("/nonexistent"), Profile::Embedded, env(&[])).unwrap();
        assert_eq!(settings.limits.max_content_bytes, 16 * 1024);
        assert_eq!(settings.websocket.max_frame_bytes, 64 * 1024);
    }

    #[test]
    fn development_tokens_need_dev_secrets_the_dev_jwt_secret_and_a_loopback_listener() {
        let load = |pairs: &[(&str, &str)]| {
            Settings::load_with(Path::new("/nonexistent"), Profile::Embedded, env(pairs)).unwrap()
        };
        assert!(
            load(&[]).serves_development_tokens(),
            "the embedded default"
        );
        assert!(load(&[("CHAT__SERVER__HOST", "::1")]).serves_development_tokens());
        assert!(!load(&[("CHAT__SERVER__HOST", "0.0.0.0")]).serves_development_tokens());
        assert!(!load(&[("CHAT__SERVER__HOST", "10.1.2.3")]).serves_development_tokens());
        let own_secret = load(&[(
            "CHAT__AUTH__JWT_SECRET",
            "an-operator-chosen-secret-long-enough-to-use",
        )]);
        assert!(!own_secret.serves_development_tokens());
        // allow_development_secrets = false with the development secret does not even load
        // (`validate`); with the operator's own secrets the endpoint is off on both counts.
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let settings = Settings::load_with(
            Path::new("/nonexistent"),
            Profile::Embedded,
            env(&[
                ("CHAT__SERVER__PORT", "9123"),
                ("CHAT__LIMITS__MAX_CONTENT_BYTES", "100"),
                ("CHAT__CRYPTO__ACTIVE_KEY_ID", "2"),
                (
                    "CHAT__CRYPTO__KEYS__2",
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(settings.server.port, 9123);
        assert_eq!(settings.limits.max_content_bytes, 100);
        assert_eq!(settings.crypto.active_key_id, 2);
        assert!(settings.crypto.keys.contains_key("2"));
        assert!(settings.crypto.keys.contains_key("1"));
    }

    #[test]
    fn a_short_jwt_secret_is_refused() {
        let err = Settings::load_with(
            Path::new("/nonexistent"),
            Profile::Embedded,
            env(&[("CHAT__AUTH__JWT_SECRET", "short")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("jwt_secret"));
    }

    #[test]
    fn the_development_secrets_match_config_default_toml() {
        assert!(DEFAULTS.contains(DEV_JWT_SECRET));
        assert!(DEFAULTS.contains(DEV_CONTENT_KEY));
        assert!(DEFAULTS.contains(DEV_DIGEST_KEY));
    }

    #[test]
    fn the_cluster_profile_refuses_development_secrets() {
        let err =
            Settings::load_with(Path::new("/nonexistent"), Profile::Cluster, env(&[])).unwrap_err();
        assert!(err.to_string().contains("CHAT__AUTH__JWT_SECRET"), "{err}");
        let settings = Settings::load_with(
            Path::new("/nonexistent"),
            Profile::Cluster,
            env(&[
                ("CHAT__ALLOW_DEVELOPMENT_SECRETS", "true"),
                ("CHAT__REDIS__NODES", "10.0.0.1:7000,10.0.0.2:7000"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.adapters.store, StoreAdapter::Cassandra);
        assert_eq!(settings.adapters.cache, CacheAdapter::Redis);
        assert_eq!(settings.adapters.fan_out, FanOutAdapter::Redis);
        assert_eq!(settings.adapters.events, EventsAdapter::Kafka);
        assert_eq!(settings.redis.nodes, ["10.0.0.1:7000", "10.0.0.2:7000"]);
        settings.redis.validate().unwrap();
    }

    #[test]
    fn the_embedded_profile_needs_no_server() {
        let settings =
            Settings::load_with(Path::new("/nonexistent"), Profile::Embedded, env(&[])).unwrap();
        assert_eq!(settings.adapters.store, StoreAdapter::Embedded);
        assert_eq!(settings.adapters.cache, CacheAdapter::Memory);
        assert_eq!(settings.adapters.fan_out, FanOutAdapter::Local);
        assert_eq!(settings.adapters.events, EventsAdapter::Log);
    }

    #[test]
    fn unknown_profiles_are_named_in_the_error() {
        let err = "clustr".parse::<Profile>().unwrap_err();
        assert!(err.to_string().contains("clustr"));
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let settings =
            Settings::load_with(Path::new("/nonexistent"), Profile::Embedded, env(&[])).unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains(DEV_JWT_SECRET));
        for key in settings.crypto.keys.values() {
            use secrecy::ExposeSecret as _;
            assert!(!debug.contains(key.expose_secret()));
        }
    }
}
