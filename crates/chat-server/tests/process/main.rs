//! Process-level tests of the real `message-service` binary: each test starts it as a child
//! process (compiled-in defaults, a fresh data directory, a free port), drives it over
//! WebSocket and HTTP, and stops it with SIGTERM or SIGKILL. Every wait is bounded, and a guard
//! kills any child still running when a test ends; a failing test prints the child's stderr.
//!
//! One module a subject; the harness is in `support`. `kafka` and `cluster` need the test
//! servers of `deploy/local/test.sh`.

#![allow(clippy::unwrap_used)]

mod cluster;
mod commands;
mod kafka;
mod lifecycle;
mod support;
