//! [`EmbeddedConfig`]: where the embedded profile keeps its files, and how its in-process cache
//! is bounded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::cache::CacheConfig;

/// The file name of the redb database inside [`EmbeddedConfig::data_dir`].
pub const DATABASE_FILE: &str = "chat.redb";

/// The file name of the JSON-lines event log inside [`EmbeddedConfig::data_dir`].
pub const EVENT_LOG_FILE: &str = "events.jsonl";

/// Configuration of the embedded profile. Every field has a default, so an empty section
/// deserializes to [`EmbeddedConfig::default`].
///
/// ```toml
/// data_dir = "./data"
///
/// [cache]
/// recent_window = 50
/// recent_ttl_secs = 300
/// max_chats = 10000
/// chat_list_ttl_secs = 300
/// max_chat_lists = 10000
/// cursor_ttl_secs = 900
/// max_cursors = 100000
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct EmbeddedConfig {
    /// The directory holding the database ([`DATABASE_FILE`]) and the event log
    /// ([`EVENT_LOG_FILE`]); created when missing. Default `./data`. One process per
    /// directory.
    pub data_dir: PathBuf,
    /// Bounds of the in-process caches and of the cursor store (not a cache, but served by the
    /// same adapter; the key `cache` stays, as operators' files name it).
    pub cache: CacheConfig,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            cache: CacheConfig::default(),
        }
    }
}

impl EmbeddedConfig {
    /// A configuration keeping its files in `data_dir`, with the default cache bounds.
    pub fn in_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }

    /// The redb database file: `data_dir/chat.redb`.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }

    /// The event log: `data_dir/events.jsonl`.
    pub fn event_log_path(&self) -> PathBuf {
        self.data_dir.join(EVENT_LOG_FILE)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// Deserializes a [`Duration`] from whole seconds (for fields named `..._secs`).
pub(crate) fn duration_from_secs<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_live_in_the_data_dir() {
        let config = EmbeddedConfig::default();
        assert_eq!(config.database_path(), Path::new("./data/chat.redb"));
        assert_eq!(config.event_log_path(), Path::new("./data/events.jsonl"));
    }

    #[test]
    fn an_empty_section_is_the_default_and_durations_are_seconds() {
        let empty: EmbeddedConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, EmbeddedConfig::default());
        let config: EmbeddedConfig = serde_json::from_str(
            r#"{"data_dir": "/var/lib/chat", "cache": {"cursor_ttl_secs": 60, "max_cursors": 5}}"#,
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/chat"));
        assert_eq!(config.cache.cursor_ttl, Duration::from_secs(60));
        assert_eq!(config.cache.max_cursors, 5);
        assert_eq!(
            config.cache.recent_window,
            CacheConfig::default().recent_window
        );
    }
}
