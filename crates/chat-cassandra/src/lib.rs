//! # chat-cassandra
//!
//! The Apache Cassandra adapters of chat-message-service: the message store (with the outbox
//! row written alongside each message, after the send's claim) and the chat directory, plus
//! the schema's versioned migrations. Built on `cdrs-tokio`; reusable by sibling services through
//! [`CassandraConfig`], [`connect_adapters`] and the domain's ports. The data model and the
//! query each table serves: `docs/data-model.md`.
//!
//! ## Layout
//! - [`config`]: [`CassandraConfig`], a plain struct (contact points, keyspace, datacenter,
//!   consistency, timeouts, pool size, replication).
//! - [`session`]: the driver session and [`session::Db`], which every request goes through.
//! - [`health`]: node probes, and the load-balancing strategy that avoids silent nodes.
//! - [`migrations`]: `migrations/*.cql`, applied once each by [`migrations::migrate`].
//! - [`store`]: [`CassandraStore`], the `MessageStore` and `Outbox` ports, one file per job:
//!   - `store/statements.rs`: every statement's CQL, prepared once per store;
//!   - `store/messages.rs`: the `MessageStore` port on `messages` (send, history, seen);
//!   - `store/claims.rs`: a send's claim in `message_dedup`, and the first attempt read back;
//!   - `store/continuation.rs`: the resume state of a history page (the driver's paging
//!     state, bound to its chat and query);
//!   - `store/outbox.rs`: the `Outbox` port on `outbox` and its index `outbox_buckets`;
//!   - `store/leases.rs`: which outbox shards this instance relays (`outbox_leases`).
//! - [`chats`]: [`CassandraChats`], the `ChatDirectory` port.
//! - `rows`: typed column reads; a bad row's error names its table and column.
//! - [`error`]: [`CassandraError`], its mapping into `chat_domain::Error`, and the error kinds
//!   recognised by the driver's or the server's wording (lost connection, bad paging state,
//!   schema not yet on the coordinator).
//!
//! ## How cdrs-tokio's gaps are covered
//! - **No request timeout**: every request runs under `tokio::time::timeout`
//!   (`request_timeout_ms`); a timeout is `Unavailable`, never a hang.
//! - **Paging by hand**: the built-in pager drops bound values, so pages are fetched with
//!   `page_size` and the driver's `paging_state` on `exec_with_params`.
//! - **One connection per node by default**: the pool size comes from `pool_size`.
//! - **Blobs must be wrapped**: a bare `Vec<u8>` would be sent as a CQL list; every blob goes
//!   through `Blob`.
//! - **Token-aware routing** needs positional values: every statement binds with
//!   `query_values!(a, b, …)`, never named values.
//! - **Reconnection**: the driver's exponential reconnection policy (the default) is kept;
//!   a session that lost every node is replaced ([`session::Db`]), bootstrapping from the
//!   configured contact points and every node the old session had discovered.
//! - **Prepared on one node only**: each statement is prepared on every node the session
//!   knows, since the driver's re-prepare-on-UNPREPARED gives up after five tries.
//! - **A hung node stays "up"** (open sockets, a heartbeat without deadline): each session
//!   probes every node and sends requests to silent ones last ([`health`]).
//! - **No node targeting**: schema changes and the schema-agreement check go through a session
//!   pinned to one node, so `system.local` and `system.peers` are read from the same one.
//!
//! A send writes no logged batch: on a ring a logged batch stalls while a crashed node is not
//! yet convicted (it is chosen for the batchlog), and the claim already makes the write
//! resumable (see [`store`]).
//! `tests/ring.rs` proves these on a 3-node ring (`--features ring-tests`).
#![forbid(unsafe_code)]

pub mod chats;
pub mod config;
pub mod error;
pub mod health;
pub mod migrations;
mod rows;
pub mod session;
pub mod store;

pub use chats::CassandraChats;
pub use config::{CassandraConfig, Replication};
pub use error::CassandraError;
pub use migrations::migrate;
pub use store::CassandraStore;

/// Connects to the service's keyspace and prepares both adapters (migrations must have run).
///
/// # Errors
/// [`CassandraError`] when the cluster is unreachable or the schema is missing.
pub async fn connect_adapters(
    config: &CassandraConfig,
) -> Result<(CassandraStore, CassandraChats), CassandraError> {
    let keyspace = config.checked_keyspace()?;
    let session = session::connect(config, Some(keyspace)).await?;
    let db = session::Db::new(session, config, Some(keyspace))?;
    Ok((
        CassandraStore::new(db.clone(), config).await?,
        CassandraChats::new(db).await?,
    ))
}
