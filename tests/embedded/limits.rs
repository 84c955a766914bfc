//! What one client, and all of them together, may hold of an instance.

use std::time::{Duration, Instant};

use system_tests::{Socket, TestApp, user};

/// Waits until the instance counts `sockets` open sockets (a dropped client socket is
/// unregistered once the server reads its end).
async fn until_open_sockets(app: &TestApp, sockets: f64) {
    let deadline = Instant::now() + system_tests::PATIENCE;
    while app.metric("chat_ws_connections").await != Some(sockets) {
        assert!(Instant::now() < deadline, "never {sockets} open sockets");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_user_holds_at_most_max_sockets_per_user_and_the_instance_at_most_max_sockets() {
    let app = TestApp::spawn_with(&[
        ("websocket.max_sockets_per_user", "2"),
        ("websocket.max_sockets", "3"),
    ])
    .await;
    let (alice, bob, carol) = (user(), user(), user());
    let alice_first = app.connect(alice).await;
    let _alice_second = app.connect(alice).await;
    // A third socket for Alice: 429, hers to fix (close one).
    Socket::assert_refused(app.ws_request().bearer_auth(app.token(alice)), 429).await;
    // Bob fills the instance; Carol then gets 503 (with Retry-After: nginx tries another).
    let bob_socket = app.connect(bob).await;
    Socket::assert_refused(app.ws_request().bearer_auth(app.token(carol)), 503).await;
    assert_eq!(app.metric("chat_ws_connections").await, Some(3.0));

    // A closed socket frees its place at once: Alice may open one again, and once Bob leaves,
    // Carol gets in.
    drop(alice_first);
    until_open_sockets(&app, 2.0).await;
    let _alice_again = app.connect(alice).await;
    Socket::assert_refused(app.ws_request().bearer_auth(app.token(carol)), 503).await;
    drop(bob_socket);
    until_open_sockets(&app, 2.0).await;
    let _carol_socket = app.connect(carol).await;
    until_open_sockets(&app, 3.0).await;

    let (_, metrics) = app.get_text("/metrics").await;
    for code in ["too_many_sockets", "instance_full"] {
        assert!(
            metrics.contains(&format!(
                "chat_errors_total{{code=\"{code}\",transport=\"http\"}}"
            )),
            "{code} is not counted:\n{metrics}"
        );
    }
}
