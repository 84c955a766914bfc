//! Two instances on the production (`cluster`) profile, over the test Cassandra, Kafka and
//! Redis cluster.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Server, cluster_env, connect, get_json, mint_with, send_message, workspace};

#[actix_web::test]
async fn two_instances_on_the_production_profile_deliver_live_across_instances() {
    let (work, data_one) = workspace();
    let data_two = work.path().join("data-two");
    let keyspace = format!("t_{}", Uuid::new_v4().simple());
    let topic = format!("test-events-{}", Uuid::new_v4().simple());
    let prefix = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
    let owned = cluster_env(&keyspace, &topic, &prefix);
    let env: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let one = Server::start_with(work.path(), &data_one, &env).await;
    let two = Server::start_with(work.path(), &data_two, &env).await;
    let (_, ready) = get_json(one.port, "/readyz", "").await;
    assert_eq!(ready["redis"], "ok", "{ready}");

    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let alice_token = mint_with(work.path(), &data_one, &env, alice);
    let bob_token = mint_with(work.path(), &data_one, &env, bob);
    let mut alice_on_one = connect(one.port, &alice_token).await;
    alice_on_one.expect_ready(alice).await;
    let mut bob_on_two = connect(two.port, &bob_token).await;
    bob_on_two.expect_ready(bob).await;

    // Alice on instance one writes to Bob on instance two, live.
    let ack = send_message(&mut alice_on_one, "x-1", bob, "across instances").await;
    let pushed = bob_on_two.next_json().await;
    assert_eq!(pushed["type"], "message", "{pushed}");
    assert_eq!(pushed["message"]["content"], "across instances");
    assert_eq!(pushed["message"]["message_id"], ack["message_id"]);

    // And back, with a seen receipt crossing the other way.
    let chat = ack["chat_id"].as_str().unwrap().to_owned();
    bob_on_two
        .send(&json!({"type": "seen", "chat_id": chat, "message_id": ack["message_id"]}))
        .await;
    let seen = alice_on_one.next_json().await;
    assert_eq!(seen["type"], "seen", "{seen}");
    assert_eq!(seen["message_id"], ack["message_id"]);
    let reply = json!({
        "type": "send", "client_msg_id": "y-1", "chat_id": chat, "kind": "text",
        "content": "got it",
    });
    bob_on_two.send(&reply).await;
    let mut frames = Vec::new();
    while frames.iter().all(|f: &Value| f["type"] != "ack") {
        frames.push(bob_on_two.next_json().await);
    }
    let pushed = alice_on_one.next_json().await;
    assert_eq!(pushed["type"], "message", "{pushed}");
    assert_eq!(pushed["message"]["content"], "got it");

    // A history cursor issued by one instance loads on the other (shared in Redis).
    for i in 0..4 {
        send_message(
            &mut alice_on_one,
            &format!("p-{i}"),
            bob,
            &format!("page {i}"),
        )
        .await;
    }
    let (status, first) =
        get_json(one.port, &format!("/users/chat/{chat}?limit=3"), &bob_token).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["has_more"], true);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (status, second) = get_json(
        two.port,
        &format!("/users/chat/{chat}?limit=3&cursor={cursor}"),
        &bob_token,
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let contents: Vec<&str> = first["messages"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["messages"].as_array().unwrap())
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        [
            "page 3",
            "page 2",
            "page 1",
            "page 0",
            "got it",
            "across instances"
        ]
    );
    // ...but not for another user.
    let (status, refused) = get_json(
        two.port,
        &format!("/users/chat/{chat}?limit=3&cursor={cursor}"),
        &alice_token,
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
}
