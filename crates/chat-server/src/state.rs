//! What every handler shares.

use std::sync::Arc;

use chat_domain::ChatService;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::TokenVerifier;
use crate::connections::Connections;
use crate::metrics::Metrics;
use crate::settings::Settings;

/// The state shared by handlers and connection tasks.
pub struct AppState {
    /// The use cases.
    pub service: Arc<ChatService>,
    /// This instance's sockets.
    pub connections: Arc<Connections>,
    /// The sockets' tasks, which shutdown waits for.
    pub connection_tasks: TaskTracker,
    /// Per-user rate limits.
    pub rate_limits: Arc<crate::rate_limits::RateLimits>,
    /// Token checks.
    pub verifier: Arc<TokenVerifier>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Cancelled when shutdown begins.
    pub shutdown: CancellationToken,
    /// The settings in force.
    pub settings: Settings,
    /// This instance's name.
    pub instance: String,
    /// The adapters' health, counters and shutdown.
    pub backends: Arc<dyn crate::wiring::Backends>,
}
