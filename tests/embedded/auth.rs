//! Identity: a bearer JWT on every request; a user acts only as themselves.

use awc::http::StatusCode;
use awc::ws::CloseCode;
use serde_json::json;
use system_tests::{Ended, Socket, TestApp, user};

#[actix_web::test]
async fn http_requests_without_a_valid_token_are_401() {
    let app = TestApp::spawn().await;
    let alice = user();
    let (status, body) = app.get(&format!("/users/chat?user_id={alice}"), None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    for token in ["garbage", "a.b.c", &foreign_token(alice)] {
        let mut response = app
            .http()
            .get(format!("{}/users/chat", app.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(
            response.headers().get("www-authenticate").unwrap(),
            "Bearer"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}

/// A token signed with another secret.
fn foreign_token(user: chat_domain::UserId) -> String {
    let mut settings = chat_server::settings::Settings::load_with(
        std::path::Path::new("/nonexistent"),
        chat_server::settings::Profile::Embedded,
        config::Environment::default().source(Some(
            [(
                "CHAT__AUTH__JWT_SECRET".to_owned(),
                "some-other-secret-that-is-long-enough-1234".to_owned(),
            )]
            .into(),
        )),
    )
    .unwrap();
    settings.auth.dev_token_ttl_secs = 3600;
    chat_server::auth::TokenVerifier::new(&settings.auth)
        .mint(user, None)
        .unwrap()
}

#[actix_web::test]
async fn an_expired_token_is_refused() {
    let app = TestApp::spawn_with(&[("auth.leeway_secs", "0")]).await;
    let token = chat_server::auth::TokenVerifier::new(&app.settings.auth)
        .mint(user(), Some(0))
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let response = app
        .http()
        .get(format!("{}/users/chat", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    Socket::assert_refused(app.ws_request().bearer_auth(&token), 401).await;
}

#[actix_web::test]
async fn a_user_cannot_read_another_users_chats_or_a_chat_they_are_not_in() {
    let app = TestApp::spawn().await;
    let (alice, bob, eve) = (user(), user(), user());
    let mut socket = app.connect(alice).await;
    let ack = socket.send_to_user(bob, "p-1", "private").await;
    let chat = ack["chat_id"].as_str().unwrap();
    let (status, body) = app
        .get(&format!("/users/chat?user_id={alice}"), Some(eve))
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = app.get(&format!("/users/chat/{chat}"), Some(eve)).await;
    assert_eq!(status, 404, "not even whether the chat exists: {body}");
    let mut eve_socket = app.connect(eve).await;
    eve_socket
        .send(&json!({"type": "send", "client_msg_id": "e-1", "chat_id": chat, "content": "hi"}))
        .await;
    assert_eq!(eve_socket.expect_error().await["code"], "unknown_chat");
}

#[actix_web::test]
async fn a_websocket_needs_a_token_but_takes_it_three_ways() {
    let app = TestApp::spawn().await;
    let alice = user();
    let token = app.token(alice);

    Socket::assert_refused(app.ws_request(), 401).await; // no token
    Socket::assert_refused(app.ws_request().bearer_auth("garbage"), 401).await;

    // Browsers: the token as a subprotocol, next to the protocol the server speaks.
    let request = app
        .ws_request()
        .protocols(["chat.v1", &format!("bearer.{token}")]);
    let (response, _framed) = request.connect().await.unwrap();
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "chat.v1"
    );

    // Or the query string.
    let mut socket = Socket::open(app.ws_request_to(&format!("/ws?access_token={token}")))
        .await
        .unwrap();
    let ready = socket.next_json().await;
    assert_eq!(ready["user_id"], alice.to_string());
}

#[actix_web::test]
async fn query_tokens_can_be_turned_off() {
    let app = TestApp::spawn_with(&[("auth.allow_query_token", "false")]).await;
    let token = app.token(user());
    Socket::assert_refused(app.ws_request_to(&format!("/ws?access_token={token}")), 401).await;
}

#[actix_web::test]
async fn a_socket_closes_with_4001_when_its_token_expires() {
    let app = TestApp::spawn_with(&[("auth.leeway_secs", "0")]).await;
    let alice = user();
    let token = chat_server::auth::TokenVerifier::new(&app.settings.auth)
        .mint(alice, Some(2))
        .unwrap();
    let mut socket = Socket::open(app.ws_request().bearer_auth(token))
        .await
        .unwrap();
    assert_eq!(socket.next_json().await["type"], "ready");
    assert_eq!(
        socket.ended().await,
        Ended::Closed(Some(CloseCode::Other(4001)))
    );
}
