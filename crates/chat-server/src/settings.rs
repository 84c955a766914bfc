//! Typed settings. Sources, later ones winning: the defaults compiled into the binary (a copy of
//! `config/default.toml`), `<config dir>/default.toml`, `<config dir>/<profile>.toml`, then
//! environment variables `CHAT__SECTION__KEY` (e.g. `CHAT__SERVER__PORT=9000`).

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;

/// The defaults every deployment starts from; `config/default.toml` in the repository.
const DEFAULTS: &str = include_str!("../../../config/default.toml");

/// The development JWT secret in `config/default.toml`; the server warns while it is in use.
pub const DEV_JWT_SECRET: &str = "dev-only-jwt-secret-change-me-in-every-deployment-0123456789";

/// Which adapters serve the ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// One process, no external server: redb on disk, in-process cache and fan-out, a local
    /// event log.
    Embedded,
}

impl Profile {
    /// The profile's name, which is also the name of its config file.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
        }
    }
}

impl FromStr for Profile {
    type Err = SettingsError;

    fn from_str(name: &str) -> Result<Self, SettingsError> {
        match name {
            "embedded" => Ok(Self::Embedded),
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
    #[error("unknown profile {0:?}; the profiles are: embedded")]
    UnknownProfile(String),
    /// A source could not be read or a value has the wrong type.
    #[error("configuration: {0}")]
    Config(#[from] config::ConfigError),
    /// A value is out of range.
    #[error("configuration: {0}")]
    Invalid(String),
}

/// Every setting of the service.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// HTTP listener.
    pub server: ServerSettings,
    /// Access tokens.
    pub auth: AuthSettings,
    /// What clients may send and ask for.
    pub limits: chat_domain::Limits,
    /// WebSocket connections.
    pub websocket: WebSocketSettings,
    /// Content encryption keys.
    pub crypto: chat_crypto::CryptoConfig,
    /// The embedded profile's storage and in-process cache.
    pub embedded: chat_embedded::EmbeddedConfig,
    /// The outbox relay.
    pub relay: RelaySettings,
    /// Logging.
    pub log: LogSettings,
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
            .add_source(File::from(config_dir.join("default.toml")).required(false))
            .add_source(File::from(config_dir.join(format!("{profile}.toml"))).required(false))
            .add_source(
                environment
                    .prefix("CHAT")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        use secrecy::ExposeSecret as _;
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
