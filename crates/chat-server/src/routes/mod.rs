//! HTTP routes, one file each, and the JSON error handlers for actix's own extractors.

pub mod chats;
pub mod health;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, web};

use crate::error::ApiError;

/// Registers every route.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .app_data(
            web::JsonConfig::default()
                .limit(16 * 1024)
                .error_handler(json_error),
        )
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .route("/healthz", web::get().to(health::live))
        .route("/readyz", web::get().to(health::ready))
        .route("/metrics", web::get().to(health::metrics))
        .route("/ws", web::get().to(crate::ws::upgrade))
        .route("/chats", web::post().to(chats::open))
        .route("/users/chat", web::get().to(chats::list))
        .route("/users/chat/{chat_id}", web::get().to(chats::history))
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such route",
    ))
}

fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("bad_json", format!("request body: {error}")).into()
}

fn query_error(error: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_field", format!("query string: {error}")).into()
}

fn path_error(error: PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_field", format!("path: {error}")).into()
}
