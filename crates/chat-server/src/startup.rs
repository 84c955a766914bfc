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

use crate::auth::TokenVerifier;
use crate::connections::{CloseCause, Connections};
use crate::metrics::Metrics;
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
        let connections = Arc::new(Connections::new(metrics.clone()));
        let wiring = wire(&settings, connections.clone()).await?;
        for collector in wiring.backends.collectors() {
            metrics.register(collector)?;
        }
        let backends = wiring.backends.clone();
        let relay = OutboxRelay::new(wiring.outbox, wiring.publisher, settings.relay.batch);
        let service = Arc::new(ChatService::new(wiring.ports, settings.limits.clone()));
        let verifier = Arc::new(TokenVerifier::new(&settings.auth));
        if settings.auth.jwt_secret.expose_secret() == DEV_JWT_SECRET {
            tracing::warn!(
                "using the development JWT secret from config/default.toml; \
                 set CHAT__AUTH__JWT_SECRET in any real deployment"
            );
        }

        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?
            .port();
        let instance = settings.instance_name(port);
        let state = web::Data::new(AppState {
            service,
            connections,
            verifier: verifier.clone(),
            metrics,
            shutdown: CancellationToken::new(),
            settings: settings.clone(),
            instance: instance.clone(),
            backends,
        });

        let app_state = state.clone();
        let verifier_data = web::Data::from(verifier);
        let mut server = HttpServer::new(move || {
            let metrics = app_state.metrics.clone();
            App::new()
                .app_data(app_state.clone())
                .app_data(verifier_data.clone())
                .wrap(middleware::DefaultHeaders::new().add(("x-served-by", instance.clone())))
                .wrap_fn(move |request, service| {
                    let route = request
                        .match_pattern()
                        .unwrap_or_else(|| "unmatched".to_owned());
                    let metrics = metrics.clone();
                    let started = Instant::now();
                    let response = service.call(request);
                    async move {
                        let response = response.await?;
                        let status = response.status();
                        metrics
                            .http_requests
                            .with_label_values(&[route.as_str(), status.as_str()])
                            .inc();
                        tracing::debug!(
                            route,
                            status = status.as_u16(),
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "request"
                        );
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
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind { address, source })?
            .run();
        tracing::info!(port, adapters = ?settings.adapters, "listening");
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
        let relay_metrics = state.metrics.clone();
        let pacing = RelayPacing::from(&state.settings.relay);
        let schedule = ShutdownSchedule::new(shutdown.clone());
        let relay_task = actix_web::rt::spawn(async move {
            relay.run(pacing, &schedule, relay_metrics.as_ref()).await;
        });
        let handle = server.handle();
        let drain_state = state.clone();
        actix_web::rt::spawn(async move {
            shutdown.cancelled().await;
            tracing::info!(
                sockets = drain_state.connections.count(),
                "shutting down: closing sockets with 1001"
            );
            drain_state.connections.close_all(CloseCause::ShuttingDown);
            let deadline = Instant::now()
                + Duration::from_secs(drain_state.settings.server.shutdown_timeout_secs);
            while drain_state.connections.count() > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            handle.stop(true).await;
        });
        let result = server.await;
        if relay_task.await.is_err() {
            tracing::error!("the outbox relay task failed");
        }
        state.backends.close().await;
        tracing::info!("stopped");
        result
    }
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
