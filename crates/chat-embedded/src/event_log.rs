//! [`JsonLinesPublisher`]: new-message events appended to a local JSON-lines file.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chat_domain::{EventPublisher, NewMessageEvent, Result};

use crate::config::EmbeddedConfig;
use crate::error::EmbeddedError;

/// The embedded profile's [`EventPublisher`]: appends each event as one line of JSON (the
/// `NewMessageEvent` layout notification-service consumes) to a file.
///
/// [`EventPublisher::publish`] returns only after the lines are written, flushed and
/// `fsync`ed (`sync_data`), so a confirmed event is on disk. A failed write is cut off again
/// where possible, so the file holds whole lines only. Appends are serialized within this
/// process; one process per file (nothing stops a second process from appending, but the
/// embedded profile never does). The file grows without bound: rotate or truncate it while
/// the service is stopped.
#[derive(Clone)]
pub struct JsonLinesPublisher {
    file: Arc<Mutex<File>>,
    path: PathBuf,
}

impl std::fmt::Debug for JsonLinesPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesPublisher")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl JsonLinesPublisher {
    /// Opens `path` for appending, creating it and its parent directories when missing.
    ///
    /// # Errors
    /// [`EmbeddedError::Io`] when the directory or file cannot be created or opened.
    pub fn open(path: &Path) -> std::result::Result<Self, EmbeddedError> {
        if let Some(parent) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| {
                EmbeddedError::io("could not create the event log directory", parent, source)
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| EmbeddedError::io("could not open the event log", path, source))?;
        Ok(Self {
            file: Arc::new(Mutex::new(file)),
            path: path.to_owned(),
        })
    }

    /// Opens the event log of `config` ([`EmbeddedConfig::event_log_path`]).
    ///
    /// # Errors
    /// As [`JsonLinesPublisher::open`].
    pub fn open_config(config: &EmbeddedConfig) -> std::result::Result<Self, EmbeddedError> {
        Self::open(&config.event_log_path())
    }

    /// The event log file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes `lines` at the end of `file` and syncs; on failure, cuts the file back to where it
/// ended, so no partial line stays behind.
fn append_synced(
    file: &mut File,
    path: &Path,
    lines: &[u8],
) -> std::result::Result<(), EmbeddedError> {
    let end = file
        .metadata()
        .map_err(|source| EmbeddedError::io("could not read the event log's length", path, source))?
        .len();
    let written = file
        .write_all(lines)
        .and_then(|()| file.flush())
        .and_then(|()| file.sync_data());
    if let Err(source) = written {
        if let Err(error) = file.set_len(end) {
            tracing::error!(error = %chat_domain::Report::of(&error), path = %path.display(), "could not cut a failed append off the event log");
        }
        return Err(EmbeddedError::io(
            "could not append to the event log",
            path,
            source,
        ));
    }
    Ok(())
}

#[async_trait]
impl EventPublisher for JsonLinesPublisher {
    async fn publish(&self, events: &[NewMessageEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::with_capacity(events.len() * 512);
        for event in events {
            serde_json::to_writer(&mut lines, event).map_err(|error| EmbeddedError::Encode {
                what: "event",
                reason: error.to_string(),
            })?;
            lines.push(b'\n');
        }
        let file = Arc::clone(&self.file);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            append_synced(&mut file, &path, &lines)
        })
        .await
        .map_err(EmbeddedError::from)??;
        Ok(())
    }
}

/// Reads every event of a JSON-lines event log, in order (for tests and local tools).
///
/// # Errors
/// [`EmbeddedError::Io`] when the file cannot be read; [`EmbeddedError::Corrupt`] when a line
/// is not an event.
pub fn read_events(path: &Path) -> std::result::Result<Vec<NewMessageEvent>, EmbeddedError> {
    let file = File::open(path)
        .map_err(|source| EmbeddedError::io("could not open the event log", path, source))?;
    let mut events = Vec::new();
    for line in BufReader::new(file).lines() {
        let line =
            line.map_err(|source| EmbeddedError::io("could not read the event log", path, source))?;
        if line.trim().is_empty() {
            continue;
        }
        events.push(
            serde_json::from_str(&line).map_err(|error| EmbeddedError::corrupt("event", error))?,
        );
    }
    Ok(events)
}
