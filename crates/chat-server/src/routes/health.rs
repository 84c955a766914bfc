//! `/healthz` (the process is alive), `/readyz` (it should get traffic: not shutting down and
//! its store answers; it also says whether Redis is degraded), `/metrics` (Prometheus text).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

/// How long the readiness probe waits for the store.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: answers while the process serves HTTP.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: 503 while shutting down or while the store does not answer.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.shutdown.is_cancelled() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(crate::error::retry_after())
            .json(json!({"status": "shutting_down"}));
    }
    match tokio::time::timeout(PROBE_TIMEOUT, state.service.probe()).await {
        // Redis is a cache: degraded, the instance still serves (reads use the store), so it
        // stays ready and says so.
        Ok(Ok(_)) => HttpResponse::Ok().json(json!({
            "status": "ready",
            "redis": state.backends.redis().map(crate::wiring::RedisState::as_str),
        })),
        Ok(Err(error)) => {
            tracing::warn!(error = %error.report(), "not ready: the store failed");
            HttpResponse::ServiceUnavailable()
                .insert_header(crate::error::retry_after())
                .json(json!({"status": "store_unavailable"}))
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .insert_header(crate::error::retry_after())
            .json(json!({"status": "store_timeout"})),
    }
}

/// Prometheus metrics.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
