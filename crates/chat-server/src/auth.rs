//! Identity: every request carries a JWT (HS256) whose subject is the user's id. HTTP clients
//! send `Authorization: Bearer <token>`. Browsers cannot set headers on a WebSocket, so `/ws`
//! also takes the token as a subprotocol `bearer.<token>` (next to `chat.v1`) or, when allowed,
//! an `access_token` query parameter.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use chat_domain::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::settings::AuthSettings;

/// The WebSocket subprotocol of this service's frames.
pub const PROTOCOL: &str = "chat.v1";

/// The subprotocol prefix that carries a token.
const TOKEN_PROTOCOL_PREFIX: &str = "bearer.";

/// The claims this service reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    #[serde(default)]
    pub iat: i64,
    /// Issuer, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// A verified caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// Who they are.
    pub user_id: UserId,
    /// When their token expires; a WebSocket is closed then.
    pub expires_at: OffsetDateTime,
}

/// Why a request is not authenticated. Clients see one message; the log sees the reason.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// No token anywhere it may be.
    #[error("missing access token")]
    Missing,
    /// The token did not verify (signature, expiry, issuer, audience, form).
    #[error("invalid access token: {0}")]
    Invalid(String),
}

/// Verifies and mints tokens.
pub struct TokenVerifier {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
    settings: AuthSettings,
}

impl TokenVerifier {
    /// A verifier for the configured secret, issuer and audience.
    pub fn new(settings: &AuthSettings) -> Self {
        let secret = settings.jwt_secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = settings.leeway_secs;
        // jsonwebtoken leaves `nbf` unchecked by default; `auth.leeway_secs` promises it is.
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if settings.issuer.is_empty() {
            validation.iss = None;
        } else {
            validation.set_issuer(&[&settings.issuer]);
            required.push("iss");
        }
        if settings.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&[&settings.audience]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        Self {
            decoding: DecodingKey::from_secret(secret),
            encoding: EncodingKey::from_secret(secret),
            validation,
            settings: settings.clone(),
        }
    }

    /// The caller a token names.
    ///
    /// # Errors
    /// [`AuthError::Invalid`] when it does not verify or its subject is not a UUID.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| AuthError::Invalid(error.to_string()))?;
        let user_id = UserId::parse(&data.claims.sub, "sub")
            .map_err(|_| AuthError::Invalid("subject is not a user id".to_owned()))?;
        let expires_at = OffsetDateTime::from_unix_timestamp(data.claims.exp)
            .map_err(|_| AuthError::Invalid("expiry out of range".to_owned()))?;
        Ok(Caller {
            user_id,
            expires_at,
        })
    }

    /// A token for `user`, valid for the configured development lifetime (or `ttl_secs`).
    ///
    /// # Errors
    /// [`AuthError::Invalid`] when signing fails.
    pub fn mint(&self, user: UserId, ttl_secs: Option<u64>) -> Result<String, AuthError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let ttl = ttl_secs.unwrap_or(self.settings.dev_token_ttl_secs);
        let claims = Claims {
            sub: user.to_string(),
            exp: now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            iat: now,
            iss: (!self.settings.issuer.is_empty()).then(|| self.settings.issuer.clone()),
            aud: (!self.settings.audience.is_empty()).then(|| self.settings.audience.clone()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|error| AuthError::Invalid(error.to_string()))
    }

    /// The caller of an HTTP request, from its `Authorization` header.
    ///
    /// # Errors
    /// [`AuthError`] when the header is missing or the token invalid.
    pub fn caller_of_request(&self, request: &HttpRequest) -> Result<Caller, AuthError> {
        let token = bearer_token(request).ok_or(AuthError::Missing)?;
        self.verify(token)
    }

    /// The caller of a WebSocket upgrade: the header, then the `bearer.<token>` subprotocol,
    /// then (when allowed) the `access_token` query parameter.
    ///
    /// # Errors
    /// [`AuthError`] when no token is found or it is invalid.
    pub fn caller_of_upgrade(&self, request: &HttpRequest) -> Result<Caller, AuthError> {
        if let Some(token) = bearer_token(request).or_else(|| protocol_token(request)) {
            return self.verify(token);
        }
        if self.settings.allow_query_token
            && let Ok(query) = web::Query::<TokenQuery>::from_query(request.query_string())
            && let Some(token) = &query.access_token
        {
            return self.verify(token);
        }
        Err(AuthError::Missing)
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

fn bearer_token(request: &HttpRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn protocol_token(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .find_map(|protocol| protocol.strip_prefix(TOKEN_PROTOCOL_PREFIX))
}

/// The authenticated caller of an HTTP request, as a handler argument.
pub struct Authenticated(pub Caller);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match request.app_data::<web::Data<TokenVerifier>>() {
            Some(verifier) => verifier
                .caller_of_request(request)
                .map(Authenticated)
                .map_err(ApiError::from),
            None => Err(ApiError::internal("token verifier not configured")),
        };
        ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn settings(issuer: &str) -> AuthSettings {
        AuthSettings {
            jwt_secret: SecretString::from("a-test-secret-that-is-long-enough-to-use"),
            issuer: issuer.to_owned(),
            audience: String::new(),
            leeway_secs: 0,
            allow_query_token: true,
            dev_token_ttl_secs: 60,
        }
    }

    #[test]
    fn a_minted_token_verifies_to_its_user() {
        let verifier = TokenVerifier::new(&settings(""));
        let user = UserId::from_uuid(uuid::Uuid::new_v4());
        let token = verifier.mint(user, None).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().user_id, user);
    }

    #[test]
    fn expired_foreign_and_garbage_tokens_are_refused() {
        let verifier = TokenVerifier::new(&settings(""));
        let user = UserId::from_uuid(uuid::Uuid::new_v4());
        // Expired a second ago, signed with the right secret: no sleeping to move time.
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let expired = WithNotBefore {
            sub: user.to_string(),
            exp: now - 1,
            nbf: now - 60,
        };
        let error = verifier
            .verify(&signed(&expired, Algorithm::HS256))
            .unwrap_err();
        assert!(error.to_string().contains("ExpiredSignature"), "{error}");
        let mut other = settings("");
        other.jwt_secret = SecretString::from("another-secret-that-is-long-enough-to-use");
        let foreign = TokenVerifier::new(&other).mint(user, None).unwrap();
        assert!(verifier.verify(&foreign).is_err());
        assert!(verifier.verify("not.a.token").is_err());
    }

    #[test]
    fn a_configured_issuer_is_required() {
        let strict = TokenVerifier::new(&settings("user-service"));
        let user = UserId::from_uuid(uuid::Uuid::new_v4());
        let without = TokenVerifier::new(&settings("")).mint(user, None).unwrap();
        assert!(strict.verify(&without).is_err());
        let with = strict.mint(user, None).unwrap();
        assert!(strict.verify(&with).is_ok());
    }

    /// Claims as another issuer might sign them, with a not-before time.
    #[derive(serde::Serialize)]
    struct WithNotBefore {
        sub: String,
        exp: i64,
        nbf: i64,
    }

    fn signed(claims: &WithNotBefore, algorithm: Algorithm) -> String {
        let key = EncodingKey::from_secret(b"a-test-secret-that-is-long-enough-to-use");
        jsonwebtoken::encode(&Header::new(algorithm), claims, &key).unwrap()
    }

    #[test]
    fn a_token_not_yet_valid_is_refused_beyond_the_leeway() {
        let user = UserId::from_uuid(uuid::Uuid::new_v4());
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = |nbf| WithNotBefore {
            sub: user.to_string(),
            exp: now + 600,
            nbf,
        };
        let strict = TokenVerifier::new(&settings(""));
        let error = strict
            .verify(&signed(&claims(now + 120), Algorithm::HS256))
            .unwrap_err();
        assert!(error.to_string().contains("Immature"), "{error}");
        assert_eq!(
            strict
                .verify(&signed(&claims(now - 5), Algorithm::HS256))
                .unwrap()
                .user_id,
            user
        );
        let mut lenient = settings("");
        lenient.leeway_secs = 300;
        assert!(
            TokenVerifier::new(&lenient)
                .verify(&signed(&claims(now + 120), Algorithm::HS256))
                .is_ok(),
            "within the leeway"
        );
    }

    #[test]
    fn only_hs256_verifies_and_an_unsigned_token_never_does() {
        let user = UserId::from_uuid(uuid::Uuid::new_v4());
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = WithNotBefore {
            sub: user.to_string(),
            exp: now + 600,
            nbf: now - 5,
        };
        let verifier = TokenVerifier::new(&settings(""));
        assert!(verifier.verify(&signed(&claims, Algorithm::HS512)).is_err());
        // `alg: none`: a header and claims with an empty signature.
        use base64::Engine as _;
        let encode = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        let unsigned = format!(
            "{}.{}.",
            encode(r#"{"alg":"none","typ":"JWT"}"#),
            encode(&format!(r#"{{"sub":"{user}","exp":{}}}"#, now + 600))
        );
        assert!(verifier.verify(&unsigned).is_err());
    }
}
