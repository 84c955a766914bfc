//! Live delivery between two separate clients ("instances") over sharded pub/sub on the real
//! 3-master cluster.
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chat_domain::{ChatId, LiveEvent, LivePublisher, LiveRoutes, Presence, UserId};
use chat_redis::{RedisConfig, RedisFanOut};
use common::{Recorder, connect, eventually, test_config, user};
use time::OffsetDateTime;

struct Instance {
    fan_out: RedisFanOut,
    local: Arc<Recorder>,
    health: Arc<chat_redis::RedisHealth>,
}

async fn instance(config: RedisConfig) -> Instance {
    instance_delivering_to(config, Recorder::default()).await
}

async fn instance_delivering_to(config: RedisConfig, local: Recorder) -> Instance {
    let connection = connect(config).await;
    let local = Arc::new(local);
    Instance {
        health: connection.health(),
        fan_out: RedisFanOut::new(connection, local.clone()),
        local,
    }
}

/// Two instances on one key prefix, as two service processes would be.
async fn two_instances() -> (Instance, Instance) {
    two_instances_with(test_config()).await
}

async fn two_instances_with(config: RedisConfig) -> (Instance, Instance) {
    (instance(config.clone()).await, instance(config).await)
}

fn typing(user: UserId) -> LiveEvent {
    LiveEvent::Typing {
        chat_id: ChatId::for_pair(user, user_of_typing()),
        user_id: user,
        origin: None,
    }
}

fn user_of_typing() -> UserId {
    UserId::from_uuid(uuid::Uuid::nil())
}

fn seen(user: UserId, n: u32) -> LiveEvent {
    LiveEvent::Seen {
        chat_id: ChatId::for_pair(user, user_of_typing()),
        message_id: chat_domain::MessageId::generate(OffsetDateTime::now_utc()),
        seen_by: user,
        seen_at: OffsetDateTime::from_unix_timestamp(1_700_000_000 + i64::from(n)).unwrap(),
    }
}

#[tokio::test]
async fn an_event_reaches_the_instance_holding_the_users_socket() {
    let (a, b) = two_instances().await;
    let bob = user();
    b.local.connect(bob);
    b.fan_out.watch(bob).await.unwrap();

    assert!(
        a.fan_out.is_connected(bob).await.unwrap(),
        "bob is online on b"
    );
    assert!(!a.fan_out.is_connected(user()).await.unwrap());

    let event = typing(bob);
    a.fan_out.publish(bob, &event).await.unwrap();
    eventually("b delivers the event", Duration::from_secs(5), async || {
        b.local.count_for(bob) == 1
    })
    .await;
    assert_eq!(b.local.delivered(), [(bob, event.clone())]);
    // a handed it to its own connections directly, once; its own echo is not delivered twice.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(a.local.delivered(), [(bob, event)]);

    // Published from b itself: delivered locally once, not again from the channel.
    b.fan_out.publish(bob, &typing(bob)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.local.count_for(bob), 2);

    // The last socket closes: no more routing to b.
    b.fan_out.unwatch(bob).await.unwrap();
    eventually(
        "b's subscription is gone",
        Duration::from_secs(5),
        async || !a.fan_out.is_connected(bob).await.unwrap(),
    )
    .await;
    a.fan_out.publish(bob, &typing(bob)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.local.count_for(bob), 2);
}

#[tokio::test]
async fn users_on_every_slot_get_their_events() {
    let (a, b) = two_instances().await;
    let users: Vec<UserId> = (0..200).map(|_| user()).collect();
    for user in &users {
        b.fan_out.watch(*user).await.unwrap();
    }
    assert_eq!(b.fan_out.watched(), 200);
    for user in &users {
        a.fan_out.publish(*user, &typing(*user)).await.unwrap();
    }
    eventually(
        "every user got one event",
        Duration::from_secs(10),
        async || users.iter().all(|user| b.local.count_for(*user) == 1),
    )
    .await;
    assert_eq!(b.local.delivered().len(), 200);
}

#[tokio::test]
async fn a_socket_reopening_while_the_last_one_closes_keeps_the_route() {
    let (a, b) = two_instances().await;
    let bob = user();
    for _ in 0..20 {
        b.fan_out.watch(bob).await.unwrap();
        let (closed, reopened) = tokio::join!(b.fan_out.unwatch(bob), b.fan_out.watch(bob));
        closed.unwrap();
        reopened.unwrap();
    }
    eventually("bob is routed to b", Duration::from_secs(5), async || {
        a.fan_out.is_connected(bob).await.unwrap()
    })
    .await;
    a.fan_out.publish(bob, &typing(bob)).await.unwrap();
    eventually("b delivers", Duration::from_secs(5), async || {
        b.local.count_for(bob) == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_buffer_is_counted_as_lost_not_silently_dropped() {
    let config = RedisConfig {
        pubsub_buffer: 32,
        ..test_config()
    };
    let a = instance(config.clone()).await;
    // b hands events on slowly (1 ms each), so a burst overflows its buffer of 32.
    let b = instance_delivering_to(config, Recorder::slow(Duration::from_millis(1))).await;
    let bob = user();
    b.fan_out.watch(bob).await.unwrap();
    let sent: u32 = 5_000;
    let publisher = Arc::new(a);
    let mut tasks = Vec::new();
    for chunk in 0..10 {
        let publisher = publisher.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..sent / 10 {
                publisher
                    .fan_out
                    .publish(bob, &seen(bob, chunk * 1_000 + n))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    eventually(
        "every event is either delivered or counted lost",
        Duration::from_secs(15),
        async || b.local.count_for(bob) as u64 + b.health.lost_live_events() == u64::from(sent),
    )
    .await;
    let lost = b.health.lost_live_events();
    eprintln!("lost {lost} of {sent} with a buffer of 32");
    assert!(
        lost > 0,
        "a burst of {sent} into a slow receiver overflows 32"
    );
}
