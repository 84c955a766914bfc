//! HTTP routes, one file each, and the JSON error handlers for actix's own extractors.

pub mod chats;
pub mod dev;
pub mod health;
pub mod web_client;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, web};

use crate::error::ApiError;
use crate::settings::Settings;

/// Registers every route. A known path with another method is a 405, any other path a 404,
/// both as JSON errors. `POST /dev/token` exists only on a development setup
/// ([`Settings::serves_development_tokens`]).
pub fn configure(config: &mut web::ServiceConfig, settings: &Settings) {
    config
        .app_data(
            web::JsonConfig::default()
                .limit(settings.server.max_json_body_bytes)
                .error_handler(json_error),
        )
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .service(resource("/healthz").route(web::get().to(health::live)))
        .service(resource("/readyz").route(web::get().to(health::ready)))
        .service(resource("/metrics").route(web::get().to(health::metrics)))
        .service(resource("/ws").route(web::get().to(crate::ws::upgrade)))
        .service(resource("/chats").route(web::post().to(chats::open)))
        .service(resource("/users/chat").route(web::get().to(chats::list)))
        .service(resource("/users/chat/{chat_id}").route(web::get().to(chats::history)));
    web_client::configure(config);
    if settings.serves_development_tokens() {
        config.service(resource("/dev/token").route(web::post().to(dev::token)));
    }
    config.default_service(web::to(not_found));
}

fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not take that method",
    ))
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
