//! The demo web client's routes, on an in-process service (a real listener on a free port): the
//! page and its assets with their headers and validators, and `POST /dev/token`, which exists
//! only where development secrets are allowed. The page itself is driven in a real browser by
//! `tests/web/run.sh`.

use std::collections::HashMap;
use std::path::Path;

use actix_web::http::StatusCode;
use chat_server::auth::TokenVerifier;
use chat_server::settings::{Profile, Settings};
use serde_json::{Value, json};
use system_tests::{TestApp, env_name};

/// Secrets other than the published development ones, for a service that refuses those.
const PRODUCTION_LIKE: [(&str, &str); 4] = [
    ("allow_development_secrets", "false"),
    (
        "auth.jwt_secret",
        "a-test-secret-that-is-not-the-development-one",
    ),
    (
        "crypto.keys.1",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ),
    (
        "crypto.digest_key",
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
    ),
];

/// A response's status, headers (lowercase names, first value) and body as text.
struct Answer {
    status: StatusCode,
    headers: HashMap<String, String>,
    body: String,
}

impl Answer {
    async fn of<S>(response: Result<awc::ClientResponse<S>, awc::error::SendRequestError>) -> Self
    where
        S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
            + Unpin,
    {
        let mut response = response.unwrap();
        let mut headers = HashMap::new();
        for (name, value) in response.headers() {
            headers
                .entry(name.as_str().to_owned())
                .or_insert_with(|| value.to_str().unwrap().to_owned());
        }
        let body = response.body().limit(1 << 20).await.unwrap();
        Self {
            status: response.status(),
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[actix_web::test]
async fn the_page_is_served_at_the_root_with_its_policy() {
    let service = TestApp::spawn().await;
    let page = Answer::of(service.http().get(service.url("/")).send().await).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert!(page.body.contains("<title>Chat demo"), "{}", page.body);
    assert!(page.body.contains("<script src=\"app.js\" defer>"));
    assert!(page.body.contains("id=\"chat-view\""));
    let policy = page.header("content-security-policy");
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(policy.contains("connect-src 'self' ws: wss:"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(page.header("cache-control"), "no-cache");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert!(page.header("etag").starts_with('"'), "{:?}", page.headers);
    service.stop().await;
}

#[actix_web::test]
async fn the_assets_are_served_with_their_types() {
    let service = TestApp::spawn().await;
    for (path, content_type, sample) in [
        ("/app.js", "text/javascript; charset=utf-8", "'chat.v1'"),
        ("/style.css", "text/css; charset=utf-8", ".message"),
        ("/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let asset = Answer::of(service.http().get(service.url(path)).send().await).await;
        assert_eq!(asset.status, StatusCode::OK, "{path}");
        assert_eq!(asset.header("content-type"), content_type, "{path}");
        assert!(asset.body.contains(sample), "{path} lacks {sample}");
        assert_eq!(asset.header("cache-control"), "no-cache", "{path}");
    }
    let other = Answer::of(service.http().get(service.url("/app.css")).send().await).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.json()["error"]["code"], "not_found");
    let posted = Answer::of(service.http().post(service.url("/app.js")).send().await).await;
    assert_eq!(posted.status, StatusCode::METHOD_NOT_ALLOWED);
    service.stop().await;
}

#[actix_web::test]
async fn an_unchanged_asset_is_answered_with_304_and_head_has_no_body() {
    let service = TestApp::spawn().await;
    let first = Answer::of(service.http().get(service.url("/app.js")).send().await).await;
    let etag = first.header("etag").to_owned();
    let again = Answer::of(
        service
            .http()
            .get(service.url("/app.js"))
            .insert_header(("if-none-match", etag.as_str()))
            .send()
            .await,
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.header("etag"), etag);
    assert!(again.body.is_empty());
    let stale = Answer::of(
        service
            .http()
            .get(service.url("/app.js"))
            .insert_header(("if-none-match", "\"0000000000000000\""))
            .send()
            .await,
    )
    .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.body, first.body);
    let head = Answer::of(service.http().head(service.url("/")).send().await).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-type"), "text/html; charset=utf-8");
    assert!(head.body.is_empty());
    service.stop().await;
}

#[actix_web::test]
async fn the_embedded_profile_mints_development_tokens_the_service_accepts() {
    let service = TestApp::spawn().await;
    assert!(service.settings.allow_development_secrets);
    let user = uuid::Uuid::new_v4().to_string();
    let minted = Answer::of(
        service
            .http()
            .post(service.url("/dev/token"))
            .send_json(&json!({ "user_id": user }))
            .await,
    )
    .await;
    assert_eq!(minted.status, StatusCode::OK, "{}", minted.body);
    assert_eq!(minted.header("cache-control"), "no-store");
    let body = minted.json();
    assert_eq!(body["user_id"], user);
    assert_eq!(
        body["expires_in_secs"],
        service.settings.auth.dev_token_ttl_secs
    );
    let token = body["token"].as_str().unwrap();
    let caller = TokenVerifier::new(&service.settings.auth)
        .verify(token)
        .unwrap();
    assert_eq!(caller.user_id.to_string(), user);

    // The token works like one from `message-service token`.
    let chats = Answer::of(
        service
            .http()
            .get(service.url(&format!("/users/chat?user_id={user}")))
            .bearer_auth(token)
            .send()
            .await,
    )
    .await;
    assert_eq!(chats.status, StatusCode::OK, "{}", chats.body);

    let bad_id = Answer::of(
        service
            .http()
            .post(service.url("/dev/token"))
            .send_json(&json!({ "user_id": "not-a-uuid" }))
            .await,
    )
    .await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_id.json()["error"]["code"], "invalid_field");
    let no_json = Answer::of(
        service
            .http()
            .post(service.url("/dev/token"))
            .insert_header(("content-type", "text/plain"))
            .send_body("hello")
            .await,
    )
    .await;
    assert_eq!(no_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_json.json()["error"]["code"], "bad_json");
    let get = Answer::of(service.http().get(service.url("/dev/token")).send().await).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    service.stop().await;
}

#[actix_web::test]
async fn without_development_secrets_there_is_no_token_endpoint() {
    let service = TestApp::spawn_with(&PRODUCTION_LIKE).await;
    assert!(!service.settings.allow_development_secrets);
    let minted = Answer::of(
        service
            .http()
            .post(service.url("/dev/token"))
            .send_json(&json!({ "user_id": uuid::Uuid::new_v4().to_string() }))
            .await,
    )
    .await;
    assert_eq!(minted.status, StatusCode::NOT_FOUND, "{}", minted.body);
    assert_eq!(minted.json()["error"]["code"], "not_found");
    // The page is still there: behind a proxy it signs in with a pasted access token.
    let page = Answer::of(service.http().get(service.url("/")).send().await).await;
    assert_eq!(page.status, StatusCode::OK);
    service.stop().await;
}

#[test]
fn the_cluster_profile_does_not_allow_development_secrets() {
    let variables: HashMap<String, String> = PRODUCTION_LIKE
        .iter()
        .filter(|(setting, _)| *setting != "allow_development_secrets")
        .map(|(setting, value)| (env_name(setting), (*value).to_owned()))
        .collect();
    let settings = Settings::load_with(
        Path::new("/nonexistent"),
        Profile::Cluster,
        config::Environment::default().source(Some(variables)),
    )
    .unwrap();
    assert!(!settings.allow_development_secrets);
}
