//! # chat-server
//!
//! The `message-service` binary's library: the actix-web front end of chat-message-service.
//! It owns transport only: HTTP routes, the WebSocket protocol, authentication, settings,
//! metrics, and wiring one adapter per port by profile. Every chat rule lives in
//! `chat-domain`; every storage detail in an adapter crate.
//!
//! ## Layout
//! - [`cli`]: command line. [`settings`]: typed configuration (files + `CHAT__…` variables).
//! - [`startup`]: builds and runs the [`startup::Application`] from small named steps; graceful
//!   shutdown (sockets closed with 1001, their tasks awaited, then HTTP).
//! - [`wiring`]: the profile's adapters — the only module that names an adapter crate (a test
//!   holds the line). It hands back the ports, the relay's two ends and [`wiring::Backends`]
//!   (Redis state, the adapters' metric collectors, closing at shutdown).
//! - [`relay`]: the host side of the domain's outbox relay (tokio timer, shutdown token).
//! - [`state`]: what handlers share. Handlers call use cases (`ChatService`), never ports.
//! - [`auth`]: JWT verification (header, WebSocket subprotocol, query) and dev tokens.
//! - [`routes`]: REST endpoints, health/metrics, the demo web client and its development
//!   token endpoint. [`error`]: HTTP error bodies.
//! - [`ws`]: the WebSocket endpoint; [`ws::frames`]: the protocol's frames.
//! - [`connections`]: this instance's sockets, the target of live delivery.
//! - [`rate_limits`]: per-user token buckets per action.
//! - [`metrics`]: Prometheus metrics. [`telemetry`]: logging.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod connections;
pub mod error;
pub mod metrics;
pub mod rate_limits;
pub mod relay;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod wiring;
pub mod ws;
