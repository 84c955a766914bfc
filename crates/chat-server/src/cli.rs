//! The command line: `message-service [serve]`, `token --user <uuid>`, `keygen`, `migrate`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// chat-message-service: one-to-one chat messages over WebSocket and REST.
#[derive(Debug, Parser)]
#[command(name = "message-service", version, about)]
pub struct Cli {
    /// Folder of default.toml and <profile>.toml.
    #[arg(long, env = "CHAT_CONFIG_DIR", default_value = "config", global = true)]
    pub config_dir: PathBuf,
    /// Which adapters to use: embedded (no external server).
    #[arg(long, env = "CHAT_PROFILE", default_value = "embedded", global = true)]
    pub profile: String,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Serve,
    /// Print an access token for a user, signed with the configured secret (development).
    Token {
        /// The user's id (a UUID).
        #[arg(long)]
        user: String,
        /// Lifetime in seconds (default: auth.dev_token_ttl_secs).
        #[arg(long)]
        ttl_secs: Option<u64>,
    },
    /// Print a fresh random 32-byte key, base64, for crypto.keys or crypto.digest_key.
    Keygen,
    /// Create or upgrade the storage schema of the profile, then exit.
    Migrate,
}
