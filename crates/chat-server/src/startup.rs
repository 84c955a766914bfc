//! Builds the application (settings → adapters → service → HTTP server) and runs it until a
//! signal or [`Application::shutdown_token`] stops it. Shutdown: readiness turns 503, new
//! sockets are refused, every socket gets a 1001 close after its in-flight frame, HTTP requests
//! finish (up to the shutdown timeout), and the outbox relay makes a last round.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service as _};
use actix_web::{App, HttpServer, middleware, web};
use chat_domain::{ChatService, OutboxRelay, RelayPacing};
use secrecy::ExposeSecret as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::TokenVerifier;
use crate::connections::{CloseCause, Connections};
use crate::metrics::Metrics;
use crate::rate_limits::RateLimits;
use crate::relay::ShutdownSchedule;
use crate::settings::{DEV_JWT_SECRET, Settings};
use crate::state::AppState;
use crate::wiring::wire;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The listener could not bind.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address asked for.
        address: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An adapter, a key or a migration failed.
    #[error(transparent)]
    Wiring(#[from] crate::wiring::WiringError),
    /// The SIGTERM handler could not be installed.
    #[error("cannot handle SIGTERM")]
    Signal(#[source] std::io::Error),
    /// Metrics could not be registered.
    #[error("metrics")]
    Metrics(#[from] prometheus::Error),
}

/// A built, not yet running, service.
pub struct Application {
    server: Server,
    port: u16,
    state: web::Data<AppState>,
    relay: OutboxRelay,
    /// Registered before the listener opens, so a SIGTERM that arrives as soon as the service
    /// answers is never the default, abrupt one.
    terminate: tokio::signal::unix::Signal,
}

impl Application {
    /// Wires the configured adapters and binds the listener.
    ///
    /// # Errors
    /// [`StartupError`] when an adapter, a key or the listener fails.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(StartupError::Signal)?;
        let metrics = Arc::new(Metrics::new()?);
        let connections = Arc::new(Connections::new(
            metrics.clone(),
            settings.websocket.socket_caps(),
        ));
        let wiring = wire(&settings, connections.clone()).await?;
        for collector in wiring.backends.collectors() {
            metrics.register(collector)?;
        }
        let relay = OutboxRelay::new(wiring.outbox, wiring.publisher, settings.relay.batch);
        let service = Arc::new(ChatService::new(wiring.ports, settings.limits.clone()));
        let verifier = Arc::new(TokenVerifier::new(&settings.auth));
        warn_of_development_secrets(&settings);
        let (listener, port) = bind(&settings)?;
        let instance = settings.instance_name(port);
        let state = web::Data::new(AppState {
            service,
            connections,
            connection_tasks: TaskTracker::new(),
            rate_limits: Arc::new(RateLimits::new(&settings.rate_limits)),
            verifier,
            metrics,
            shutdown: CancellationToken::new(),
            settings,
            instance,
            backends: wiring.backends,
        });
        let server = http_server(&state, listener)?;
        tracing::info!(port, adapters = ?state.settings.adapters, "listening");
        Ok(Self {
            server,
            port,
            state,
            relay,
            terminate,
        })
    }

    /// The port bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cancelling this token shuts the service down gracefully, as SIGTERM does.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Runs until shut down by SIGTERM/SIGINT or [`Application::shutdown_token`].
    ///
    /// # Errors
    /// The server's I/O error, if it fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            server,
            state,
            relay,
            terminate,
            ..
        } = self;
        let shutdown = state.shutdown.clone();
        actix_web::rt::spawn(listen_for_signals(terminate, shutdown.clone()));
        let relay_task = actix_web::rt::spawn(run_relay(relay, state.clone()));
        actix_web::rt::spawn(drain_on_shutdown(state.clone(), server.handle()));
        actix_web::rt::spawn(forget_idle_rate_limits(state.clone()));
        let result = server.await;
        if relay_task.await.is_err() {
            tracing::error!("the outbox relay task failed");
        }
        state.backends.close().await;
        tracing::info!("stopped");
        result
    }
}

fn warn_of_development_secrets(settings: &Settings) {
    if settings.auth.jwt_secret.expose_secret() == DEV_JWT_SECRET {
        tracing::warn!(
            "using the development JWT secret from config/default.toml; \
             set CHAT__AUTH__JWT_SECRET in any real deployment"
        );
    }
}

/// Binds the configured address; returns the listener and the port it got (port 0 picks one).
fn bind(settings: &Settings) -> Result<(TcpListener, u16), StartupError> {
    let address = format!("{}:{}", settings.server.host, settings.server.port);
    let bind_error = |source| StartupError::Bind {
        address: address.clone(),
        source,
    };
    let listener = TcpListener::bind(&address).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    Ok((listener, port))
}

/// The HTTP server over `listener`: every route, the `x-served-by` header and request metrics.
fn http_server(state: &web::Data<AppState>, listener: TcpListener) -> Result<Server, StartupError> {
    let settings = &state.settings;
    let app_state = state.clone();
    let verifier = web::Data::from(state.verifier.clone());
    let mut server = HttpServer::new(move || {
        let metrics = app_state.metrics.clone();
        App::new()
            .app_data(app_state.clone())
            .app_data(verifier.clone())
            .wrap(
                middleware::DefaultHeaders::new().add(("x-served-by", app_state.instance.clone())),
            )
            .wrap_fn(move |request, service| {
                let observed = ObservedRequest::start(&request, metrics.clone());
                let response = service.call(request);
                async move {
                    let response = response.await?;
                    observed.finish(response.status());
                    Ok(response)
                }
            })
            .configure(|config| crate::routes::configure(config, &app_state.settings))
    })
    .disable_signals()
    .shutdown_timeout(settings.server.shutdown_timeout_secs)
    .client_request_timeout(Duration::from_secs(
        settings.server.client_request_timeout_secs,
    ));
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    let address = format!("{}:{}", settings.server.host, settings.server.port);
    Ok(server
        .listen(listener)
        .map_err(|source| StartupError::Bind { address, source })?
        .run())
}

/// One HTTP request on its way: counted by route pattern and status, logged at debug.
struct ObservedRequest {
    route: String,
    started: Instant,
    metrics: Arc<Metrics>,
}

impl ObservedRequest {
    fn start(request: &actix_web::dev::ServiceRequest, metrics: Arc<Metrics>) -> Self {
        Self {
            route: request
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned()),
            started: Instant::now(),
            metrics,
        }
    }

    fn finish(self, status: actix_web::http::StatusCode) {
        let labels = [self.route.as_str(), status.as_str()];
        self.metrics.http_requests.with_label_values(&labels).inc();
        self.metrics
            .http_request_seconds
            .with_label_values(&labels)
            .observe(self.started.elapsed().as_secs_f64());
        tracing::debug!(
            route = self.route,
            status = status.as_u16(),
            elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "request"
        );
    }
}

/// The outbox relay, until shutdown (then one last round and the hand-over of its shard leases).
async fn run_relay(relay: OutboxRelay, state: web::Data<AppState>) {
    let pacing = RelayPacing::from(&state.settings.relay);
    let schedule = ShutdownSchedule::new(state.shutdown.clone());
    relay.run(pacing, &schedule, state.metrics.as_ref()).await;
}

/// How often the rate limiters drop the buckets of users who have been idle long enough.
const RATE_LIMIT_CLEANUP: Duration = Duration::from_secs(60);

/// Keeps the rate limiters' memory to the recently active users, until shutdown.
async fn forget_idle_rate_limits(state: web::Data<AppState>) {
    let mut every = tokio::time::interval(RATE_LIMIT_CLEANUP);
    loop {
        tokio::select! {
            _ = every.tick() => state.rate_limits.forget_idle_users(),
            () = state.shutdown.cancelled() => return,
        }
    }
}

/// Once shutdown begins: closes every socket with 1001, waits (up to the shutdown timeout) for
/// their tasks to flush and end, then stops the HTTP server, which lets requests finish.
async fn drain_on_shutdown(state: web::Data<AppState>, server: actix_web::dev::ServerHandle) {
    state.shutdown.cancelled().await;
    tracing::info!(
        sockets = state.connections.count(),
        "shutting down: closing sockets with 1001"
    );
    state.connections.close_all(CloseCause::ShuttingDown);
    state.connection_tasks.close();
    let patience = Duration::from_secs(state.settings.server.shutdown_timeout_secs);
    if tokio::time::timeout(patience, state.connection_tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            sockets = state.connection_tasks.len(),
            "sockets still open after the shutdown timeout; stopping anyway"
        );
    }
    server.stop(true).await;
}

async fn listen_for_signals(
    mut terminate: tokio::signal::unix::Signal,
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        () = shutdown.cancelled() => return,
    }
    shutdown.cancel();
}
