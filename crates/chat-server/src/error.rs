//! HTTP errors: every failure is JSON `{"error":{"code","message"}}` with the status that fits,
//! mapped here in one place. Clients see a stable code and a plain message; the log sees the
//! cause.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::auth::AuthError;

/// An HTTP error answer.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// For a 429: when the client may ask again.
    retry_after: Option<std::time::Duration>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A 429 `rate_limited`: the client may ask again after `wait`.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        Self {
            retry_after: Some(wait),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests; retry after the Retry-After header's seconds",
            )
        }
    }

    /// A 400 naming the field at fault.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A 500 whose cause is logged, not shown.
    pub fn internal(cause: &str) -> Self {
        tracing::error!(cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<chat_domain::Error> for ApiError {
    fn from(error: chat_domain::Error) -> Self {
        use chat_domain::Error as E;
        let status = match &error {
            E::InvalidInput { .. } | E::EmptyContent | E::SelfChat | E::InvalidCursor => {
                StatusCode::BAD_REQUEST
            }
            E::ContentTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            E::ChatNotFound | E::MessageNotFound => StatusCode::NOT_FOUND,
            E::Forbidden(_) => StatusCode::FORBIDDEN,
            E::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::Corrupt(_) | E::Internal(_) => {
                return Self::internal(&error.report().to_string());
            }
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %error.report(), "request failed: a backing service is unavailable");
            return Self::new(
                status,
                error.code(),
                "the service is temporarily unavailable",
            );
        }
        Self::new(status, error.code(), error.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        tracing::debug!(error = %chat_domain::Report::of(&error), "unauthenticated request");
        let message = match error {
            AuthError::Missing => "an access token is required",
            AuthError::Invalid(_) => "the access token is invalid or expired",
        };
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

/// How long a client should wait before retrying a 503 (a backing service is out, or this
/// instance is shutting down: another instance usually answers at once).
pub const RETRY_AFTER_SECS: u32 = 1;

/// The `Retry-After` header every 503 carries.
pub fn retry_after() -> (header::HeaderName, HeaderValue) {
    (header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS))
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(retry_after());
        }
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: Retry-After has no finer unit.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds.max(1))));
        }
        response.json(Body {
            error: Detail {
                code: self.code,
                message: &self.message,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_503_says_when_to_retry_and_other_errors_do_not() {
        let unavailable = ApiError::from(chat_domain::Error::Unavailable("cassandra".into()));
        let response = unavailable.error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from(RETRY_AFTER_SECS))
        );
        let shutting_down = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "this instance is shutting down; reconnect",
        );
        assert!(
            shutting_down
                .error_response()
                .headers()
                .contains_key(header::RETRY_AFTER)
        );
        let not_found = ApiError::from(chat_domain::Error::ChatNotFound).error_response();
        assert!(!not_found.headers().contains_key(header::RETRY_AFTER));
    }
}
