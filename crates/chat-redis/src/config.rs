//! [`RedisConfig`]: how to reach the cluster, and the bounds of what is kept there.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::error::RedisError;

/// How to reach the Redis cluster and what to keep there. Every field has a default; in a config
/// file durations are whole milliseconds (`..._ms`) or seconds (`..._secs`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RedisConfig {
    /// Seed nodes, `host:port`; the rest of the cluster is discovered from them. Default
    /// `127.0.0.1:7001..7003` (`deploy/local/redis-cluster.sh`).
    pub nodes: Vec<String>,
    /// ACL user name, when the cluster requires one.
    pub username: Option<String>,
    /// Password (`requirepass` or the ACL user's), when the cluster requires one.
    pub password: Option<String>,
    /// Prefix of every key and channel, so several services can share a cluster. No `{` or `}`
    /// (those delimit the hash tag that follows it). Default `chat`.
    pub key_prefix: String,
    /// The longest a command may take, retries and redirections included; then the call fails
    /// and the service carries on without Redis. Default 500 ms.
    pub command_timeout_ms: u64,
    /// The longest one connection attempt may take, and how long start-up waits for Redis
    /// before going on without it. Default 2000 ms.
    pub connect_timeout_ms: u64,
    /// Reconnection backoff starts at 100 ms and doubles up to this. Attempts never stop.
    /// Default 2000 ms.
    pub reconnect_max_delay_ms: u64,
    /// After a failed command, how long further commands fail at once instead of each waiting
    /// for the timeout; the next call after that tries Redis again. Default 1000 ms.
    pub retry_after_ms: u64,
    /// Commands queued while disconnected before new ones are refused. Default 10 000.
    pub max_queued_commands: usize,
    /// Messages kept per chat window. Keep it equal to the service's `limits.recent_window`
    /// (the server sets it so). Default 50.
    pub recent_window: usize,
    /// How long a window lives after it was primed from the store. Default 300 s.
    pub recent_ttl_secs: u64,
    /// After a window is dropped because an update could not be written, how long it may not
    /// be primed again, so a store read that began before the lost update cannot bring the gap
    /// back. Keep it above the store's request timeout. Default 10 000 ms.
    pub forget_hold_ms: u64,
    /// How long a cached chat list lives. Default 300 s.
    pub chat_list_ttl_secs: u64,
    /// Chat lists longer than this are not cached (read from the store each time). Default 1000.
    pub max_cached_chats: usize,
    /// How long a history cursor stays valid. Default 900 s.
    pub cursor_ttl_secs: u64,
    /// Invalidations remembered while Redis is unreachable, written when it returns. Beyond
    /// this, stale entries live until their time to live. Default 100 000.
    pub max_pending_invalidations: usize,
    /// Pub/sub messages buffered between fred's reader and this adapter; a burst beyond it is
    /// dropped (clients catch up with `sync`) and counted. Default 8192 (~6 MiB).
    pub pubsub_buffer: usize,
    /// How often the subscriber compares the cluster's slot map with the last one, to
    /// re-subscribe after a failover or reshard that fred does not report. Default 1000 ms.
    pub topology_check_ms: u64,
    /// How often every channel is re-subscribed regardless, as a safety net. Default 60 s.
    pub resubscribe_all_secs: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            nodes: vec![
                "127.0.0.1:7001".to_owned(),
                "127.0.0.1:7002".to_owned(),
                "127.0.0.1:7003".to_owned(),
            ],
            username: None,
            password: None,
            key_prefix: "chat".to_owned(),
            command_timeout_ms: 500,
            connect_timeout_ms: 2_000,
            reconnect_max_delay_ms: 2_000,
            retry_after_ms: 1_000,
            max_queued_commands: 10_000,
            recent_window: 50,
            recent_ttl_secs: 300,
            forget_hold_ms: 10_000,
            chat_list_ttl_secs: 300,
            max_cached_chats: 1_000,
            cursor_ttl_secs: 900,
            max_pending_invalidations: 100_000,
            pubsub_buffer: 8_192,
            topology_check_ms: 1_000,
            resubscribe_all_secs: 60,
        }
    }
}

// Hand-written so the password never reaches a log.
impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("nodes", &self.nodes)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout_ms", &self.command_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("reconnect_max_delay_ms", &self.reconnect_max_delay_ms)
            .field("retry_after_ms", &self.retry_after_ms)
            .field("max_queued_commands", &self.max_queued_commands)
            .field("recent_window", &self.recent_window)
            .field("recent_ttl_secs", &self.recent_ttl_secs)
            .field("forget_hold_ms", &self.forget_hold_ms)
            .field("chat_list_ttl_secs", &self.chat_list_ttl_secs)
            .field("max_cached_chats", &self.max_cached_chats)
            .field("cursor_ttl_secs", &self.cursor_ttl_secs)
            .field("max_pending_invalidations", &self.max_pending_invalidations)
            .field("pubsub_buffer", &self.pubsub_buffer)
            .field("topology_check_ms", &self.topology_check_ms)
            .field("resubscribe_all_secs", &self.resubscribe_all_secs)
            .finish()
    }
}

impl RedisConfig {
    /// Checks the settings that would otherwise fail later, or silently.
    ///
    /// # Errors
    /// [`RedisError::Config`] naming the bad field.
    pub fn validate(&self) -> Result<(), RedisError> {
        let bad = |field: &str, reason: &str| Err(RedisError::Config(format!("{field}: {reason}")));
        if self.nodes.is_empty() {
            return bad("nodes", "name at least one host:port");
        }
        for node in &self.nodes {
            parse_node(node)?;
        }
        if self.key_prefix.contains(['{', '}']) {
            return bad("key_prefix", "must not contain { or }");
        }
        if self.command_timeout_ms == 0 {
            return bad("command_timeout_ms", "must be above 0");
        }
        if self.connect_timeout_ms == 0 {
            return bad("connect_timeout_ms", "must be above 0");
        }
        if self.recent_ttl_secs == 0 || self.chat_list_ttl_secs == 0 || self.cursor_ttl_secs == 0 {
            return bad("..._ttl_secs", "a time to live must be above 0");
        }
        if self.pubsub_buffer == 0 {
            return bad("pubsub_buffer", "must be above 0");
        }
        if self.topology_check_ms == 0 || self.resubscribe_all_secs == 0 {
            return bad(
                "topology_check_ms / resubscribe_all_secs",
                "must be above 0",
            );
        }
        Ok(())
    }

    /// The seed nodes as (host, port).
    ///
    /// # Errors
    /// [`RedisError::Config`] for a node that is not `host:port`.
    pub fn seeds(&self) -> Result<Vec<(String, u16)>, RedisError> {
        self.nodes.iter().map(|node| parse_node(node)).collect()
    }

    pub(crate) fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }

    pub(crate) fn recent_ttl(&self) -> Duration {
        Duration::from_secs(self.recent_ttl_secs)
    }
}

fn parse_node(node: &str) -> Result<(String, u16), RedisError> {
    let invalid = || RedisError::Config(format!("nodes: {node:?} is not host:port"));
    let (host, port) = node.rsplit_once(':').ok_or_else(invalid)?;
    let port = port.parse::<u16>().map_err(|_| invalid())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(invalid());
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        RedisConfig::default().validate().unwrap();
    }

    #[test]
    fn seeds_parse_hosts_and_ports() {
        let config = RedisConfig {
            nodes: vec!["10.0.0.1:7000".into(), "[::1]:7001".into()],
            ..RedisConfig::default()
        };
        assert_eq!(
            config.seeds().unwrap(),
            vec![("10.0.0.1".to_owned(), 7000), ("::1".to_owned(), 7001)]
        );
    }

    #[test]
    fn bad_settings_name_their_field() {
        let cases = [
            RedisConfig {
                nodes: vec![],
                ..RedisConfig::default()
            },
            RedisConfig {
                nodes: vec!["localhost".into()],
                ..RedisConfig::default()
            },
            RedisConfig {
                key_prefix: "a{b}".into(),
                ..RedisConfig::default()
            },
            RedisConfig {
                command_timeout_ms: 0,
                ..RedisConfig::default()
            },
            RedisConfig {
                cursor_ttl_secs: 0,
                ..RedisConfig::default()
            },
        ];
        let fields = ["nodes", "nodes", "key_prefix", "command_timeout_ms", "ttl"];
        for (config, field) in cases.iter().zip(fields) {
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains(field), "{error} should name {field}");
        }
    }

    #[test]
    fn the_password_is_not_printed() {
        let config = RedisConfig {
            password: Some("hunter2".into()),
            ..RedisConfig::default()
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"));
        assert!(printed.contains("<redacted>"));
    }
}
