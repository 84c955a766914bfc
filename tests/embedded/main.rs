//! The service on the embedded profile, on a real port, driven by real WebSocket and HTTP
//! clients: no infrastructure needed.
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

mod auth;
mod bad_input;
mod history;
mod lifecycle;
mod limits;
mod messaging;
mod web_client;
