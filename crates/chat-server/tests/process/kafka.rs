//! The outbox relay to Kafka: what was acknowledged reaches the topic, even after a kill.

use std::time::Duration;

use uuid::Uuid;

use crate::support::{Server, connect, mint, send_message, test_kafka, workspace};

#[actix_web::test]
async fn events_of_acknowledged_messages_reach_kafka_after_a_kill_before_the_relay_ran() {
    let (work, data) = workspace();
    let topic = format!("test-events-{}", Uuid::new_v4().simple());
    let brokers = test_kafka();
    let kafka = [
        ("CHAT__ADAPTERS__EVENTS", "kafka"),
        ("CHAT__KAFKA__BROKERS", brokers.as_str()),
        ("CHAT__KAFKA__TOPIC", topic.as_str()),
        ("CHAT__KAFKA__PARTITIONS", "2"),
    ];
    // The relay runs once at start-up (nothing to do), then sleeps for ten minutes: what is
    // sent meanwhile stays in the outbox, as if the process died right after the acks.
    let mut sleepy = kafka.to_vec();
    sleepy.push(("CHAT__RELAY__INTERVAL_MS", "600000"));
    let mut server = Server::start_with(work.path(), &data, &sleepy).await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let token = mint(work.path(), &data, alice);
    let mut socket = connect(server.port, &token).await;
    socket.expect_ready(alice).await;
    let mut acked = Vec::new();
    for i in 0..5 {
        let ack = send_message(&mut socket, &format!("k-{i}"), bob, &format!("m{i}")).await;
        acked.push(ack["message_id"].as_str().unwrap().to_owned());
    }
    server.process.kill();
    drop(socket);

    let config = chat_kafka::KafkaConfig {
        brokers: vec![brokers.clone()],
        topic: topic.clone(),
        ..chat_kafka::KafkaConfig::default()
    };
    let before = chat_kafka::read_all_events(&config).await.unwrap();
    assert!(before.is_empty(), "nothing was relayed before the kill");

    let _server = Server::start_with(work.path(), &data, &kafka).await;
    let events = chat_kafka::wait_for_events(&config, &acked, Duration::from_secs(30))
        .await
        .unwrap_or_else(|error| panic!("the events of {acked:?} never all arrived: {error}"));
    assert!(events.iter().all(|e| e.key == bob.to_string()));
}
