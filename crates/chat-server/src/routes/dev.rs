//! `POST /dev/token`: a token for any user id, so the demo web client can sign in without a
//! user service. Registered only when `allow_development_secrets` is true (the embedded
//! profile); the production `cluster` profile refuses development settings, so there the path
//! does not exist and answers 404 like any unknown path.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chat_domain::UserId;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// Body of `POST /dev/token`.
#[derive(Deserialize)]
pub struct TokenRequest {
    user_id: String,
}

#[derive(Serialize)]
struct TokenBody {
    token: String,
    user_id: UserId,
    expires_in_secs: u64,
}

/// Mints a token for `user_id`, exactly as `message-service token --user` does: the
/// configured secret and `auth.dev_token_ttl_secs`.
///
/// # Errors
/// 400 when `user_id` is not a UUID (or the body is not the expected JSON).
pub async fn token(
    body: web::Json<TokenRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user = UserId::parse(&body.user_id, "user_id")?;
    let token = state
        .verifier
        .mint(user, None)
        .map_err(|error| ApiError::internal(&error.to_string()))?;
    tracing::info!(%user, "development token issued");
    Ok(HttpResponse::Ok()
        // A credential: never kept by a browser or proxy cache.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(TokenBody {
            token,
            user_id: user,
            expires_in_secs: state.settings.auth.dev_token_ttl_secs,
        }))
}
