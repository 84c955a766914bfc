//! A benchmark of the Redis adapters (not a test: it asserts nothing, it prints figures): first
//! history pages served from the recent cache against the same pages read from Cassandra, and
//! live-event latency between two instances over sharded pub/sub.
//!
//! ```sh
//! deploy/local/redis-cluster.sh start && deploy/local/cassandra.sh start
//! cargo run --release -p chat-redis --example bench
//! ```
//! Environment: `CHAT_TEST_REDIS` (seed nodes, default 127.0.0.1:7001..7003),
//! `CHAT_TEST_CASSANDRA` (default 127.0.0.1:9042), `BENCH_CHATS` (200), `BENCH_MESSAGES` (60 per
//! chat), `BENCH_PAGE` (50), `BENCH_READS` (4000), `BENCH_CONCURRENCY` (16), `BENCH_EVENTS`
//! (2000). It works in a fresh keyspace and key prefix, and leaves both behind (named in the
//! output) for inspection.
#![allow(clippy::unwrap_used)] // A benchmark fails loudly.

#[path = "../tests/common/mod.rs"]
mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_cassandra::CassandraConfig;
use chat_domain::testing::RecordingFanOut;
use chat_domain::{
    ChatId, ChatService, Limits, LiveEvent, LivePublisher, LiveRoutes, MessageStore, PageStart,
    Ports, RecentMessages, Recipient, SendRequest, UserId,
};
use chat_redis::{RedisCache, RedisFanOut};
use hdrhistogram::Histogram;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> String {
    format!(
        "{:.3}",
        histogram.value_at_quantile(quantile) as f64 / 1000.0
    )
}

/// Runs `reads` calls of `call` (given the call number) from `concurrency` tasks; prints the
/// latency quantiles (ms) and the rate.
async fn measure<F, Fut>(label: &str, reads: usize, concurrency: usize, call: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Histogram::<u64>::new(3).unwrap();
                for i in (task..reads).step_by(concurrency) {
                    let begun = Instant::now();
                    call(i).await;
                    latencies
                        .record(begun.elapsed().as_micros() as u64)
                        .unwrap();
                }
                latencies
            })
        })
        .collect();
    let mut all = Histogram::<u64>::new(3).unwrap();
    for task in tasks {
        all.add(task.await.unwrap()).unwrap();
    }
    let rate = reads as f64 / started.elapsed().as_secs_f64();
    println!(
        "| {label} | {concurrency} | {} | {} | {} | {} | {rate:.0}/s |",
        ms(&all, 0.5),
        ms(&all, 0.9),
        ms(&all, 0.99),
        ms(&all, 1.0),
    );
}

/// A `LocalDelivery` that wakes the benchmark as soon as an event arrives.
#[derive(Default)]
struct Arrivals {
    arrived: tokio::sync::Notify,
}

impl chat_domain::LocalDelivery for Arrivals {
    fn deliver(&self, _user: UserId, _event: &LiveEvent) -> bool {
        self.arrived.notify_one();
        true
    }

    fn is_connected_here(&self, _user: UserId) -> bool {
        true
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let chats = setting("BENCH_CHATS", 200);
    let per_chat = setting("BENCH_MESSAGES", 60);
    let page = setting("BENCH_PAGE", 50) as u32;
    let reads = setting("BENCH_READS", 4_000);
    let concurrency = setting("BENCH_CONCURRENCY", 16);
    let events = setting("BENCH_EVENTS", 2_000);

    let cassandra = CassandraConfig {
        contact_points: std::env::var("CHAT_TEST_CASSANDRA")
            .unwrap_or_else(|_| "127.0.0.1:9042".to_owned())
            .split(',')
            .map(str::to_owned)
            .collect(),
        keyspace: format!("bench_{}", uuid::Uuid::new_v4().simple()),
        consistency: "quorum".to_owned(),
        serial_consistency: "serial".to_owned(),
        request_timeout_ms: 10_000,
        connect_timeout_ms: 10_000,
        ..CassandraConfig::default()
    };
    chat_cassandra::migrate(&cassandra).await.unwrap();
    let (store, directory) = chat_cassandra::connect_adapters(&cassandra).await.unwrap();
    let (store, directory) = (Arc::new(store), Arc::new(directory));
    let redis = common::RedisConfig {
        recent_window: page as usize,
        ..common::test_config()
    };
    let cache = Arc::new(RedisCache::new(common::connect(redis.clone()).await));
    let ports = |recent_window: u32| {
        let fan_out = Arc::new(RecordingFanOut::default());
        let ports = Ports {
            store: store.clone(),
            chats: directory.clone(),
            recent: cache.clone(),
            chat_lists: cache.clone(),
            cursors: cache.clone(),
            live: fan_out.clone(),
            presence: fan_out.clone(),
            routes: fan_out,
            cipher: Arc::new(common::test_cipher()),
            clock: Arc::new(chat_domain::SystemClock),
        };
        let limits = Limits {
            recent_window,
            ..Limits::default()
        };
        Arc::new(ChatService::new(ports, limits))
    };
    let cached = ports(page);
    let uncached = ports(0);

    println!(
        "setting up: {chats} chats x {per_chat} messages in Cassandra keyspace {}",
        cassandra.keyspace
    );
    let pairs: Arc<Vec<(UserId, UserId, ChatId)>> = Arc::new(
        (0..chats)
            .map(|_| {
                let (a, b) = (common::user(), common::user());
                (a, b, ChatId::for_pair(a, b))
            })
            .collect(),
    );
    let writers: Vec<_> = (0..concurrency)
        .map(|writer| {
            let (service, pairs) = (cached.clone(), pairs.clone());
            tokio::spawn(async move {
                for (index, (a, b, _)) in pairs.iter().enumerate().skip(writer).step_by(concurrency)
                {
                    for i in 0..per_chat {
                        let request = SendRequest {
                            client_msg_id: chat_domain::ClientMessageId::parse(&format!(
                                "bench-{index}-{i}"
                            ))
                            .unwrap(),
                            to: Recipient::User(*b),
                            kind: chat_domain::MessageKind::Text,
                            content: format!("benchmark message {i} with a realistic length"),
                        };
                        service.accept(*a, request).await.unwrap();
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    // Prime every chat's window (the first read after a send misses, then the cache serves).
    for (a, _, chat) in pairs.iter() {
        cached.history(*a, *chat, Some(page), None).await.unwrap();
        assert!(cache.window(*chat).await.unwrap().is_some());
    }

    println!(
        "\n| first page of {page} | tasks | p50 ms | p90 ms | p99 ms | max ms | rate |\n|---|---|---|---|---|---|---|"
    );
    for tasks in [1, concurrency] {
        let c = cache.clone();
        let p = pairs.clone();
        measure("Redis window read (adapter)", reads, tasks, move |i| {
            let (c, chat) = (c.clone(), p[i % p.len()].2);
            async move {
                c.window(chat).await.unwrap().unwrap();
            }
        })
        .await;
        let s = store.clone();
        let p = pairs.clone();
        measure("Cassandra first page (adapter)", reads, tasks, move |i| {
            let (s, chat) = (s.clone(), p[i % p.len()].2);
            async move {
                s.page(chat, &PageStart::Newest, page).await.unwrap();
            }
        })
        .await;
        let service = cached.clone();
        let p = pairs.clone();
        measure("history, cache hit (service)", reads, tasks, move |i| {
            let (service, (a, _, chat)) = (service.clone(), p[i % p.len()]);
            async move {
                service.history(a, chat, Some(page), None).await.unwrap();
            }
        })
        .await;
        let service = uncached.clone();
        let p = pairs.clone();
        measure(
            "history, from Cassandra (service)",
            reads,
            tasks,
            move |i| {
                let (service, (a, _, chat)) = (service.clone(), p[i % p.len()]);
                async move {
                    service.history(a, chat, Some(page), None).await.unwrap();
                }
            },
        )
        .await;
    }

    // Live events between two instances: publish on one, delivered on the other.
    let receiver_local = Arc::new(Arrivals::default());
    let sender = RedisFanOut::new(
        common::connect(redis.clone()).await,
        Arc::new(common::Recorder::default()),
    );
    let receiver = RedisFanOut::new(common::connect(redis).await, receiver_local.clone());
    let user = common::user();
    receiver.watch(user).await.unwrap();
    let mut latencies = Histogram::<u64>::new(3).unwrap();
    for _ in 0..events {
        let begun = Instant::now();
        let event = LiveEvent::Typing {
            chat_id: ChatId::for_pair(user, user),
            user_id: user,
            origin: None,
        };
        sender.publish(user, &event).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), receiver_local.arrived.notified())
            .await
            .unwrap();
        latencies
            .record(begun.elapsed().as_micros() as u64)
            .unwrap();
    }
    println!(
        "\nlive event, publish on one instance -> delivered on another ({events} sequential): \
         p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        ms(&latencies, 0.5),
        ms(&latencies, 0.9),
        ms(&latencies, 0.99),
        ms(&latencies, 1.0)
    );
    println!(
        "\n(keyspace {} left for inspection; drop it when done)",
        cassandra.keyspace
    );
}
