//! A token in the URL: refused on the cluster profile, and never written to nginx's access log.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use system_tests::stack::Stack;
use system_tests::{Socket, one_at_a_time, user};

fn access_log() -> PathBuf {
    let home = std::env::var("CHAT_STACK_HOME")
        .expect("CHAT_STACK_HOME names the stack's folder (deploy/local/test.sh sets it)");
    PathBuf::from(home).join("nginx/logs/access.log")
}

fn refused_handshakes_logged() -> usize {
    std::fs::read_to_string(access_log())
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("\"GET /ws ") && line.contains(" 401 "))
        .count()
}

#[actix_web::test]
async fn a_query_string_token_is_refused_on_the_cluster_profile_and_kept_out_of_nginx_logs() {
    let _turn = one_at_a_time().await;
    let stack = Stack::from_env();
    assert!(
        !stack.settings.auth.allow_query_token,
        "the cluster profile's default"
    );
    let token = stack.token(user());
    let before = refused_handshakes_logged();
    let request =
        awc::Client::new().ws(format!("ws://{}/ws?access_token={token}", stack.authority));
    Socket::assert_refused(request, 401).await;
    // nginx writes the line once the request ends; wait for it so that the check below reads it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while refused_handshakes_logged() == before {
        assert!(
            Instant::now() < deadline,
            "nginx never logged the refused handshake"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(access_log()).unwrap();
    assert!(
        !log.contains(&token),
        "the token is in {}",
        access_log().display()
    );
    assert!(
        !log.contains("access_token"),
        "a query string is in {}",
        access_log().display()
    );
}
