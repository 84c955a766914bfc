//! A producer benchmark (not a test: it prints figures, asserts nothing).
//!
//! ```sh
//! deploy/local/kafka.sh start
//! cargo run --release -p chat-kafka --example bench
//! ```
//! Environment: `CHAT_TEST_KAFKA` (default 127.0.0.1:9092), `BENCH_EVENTS` (20000),
//! `BENCH_BATCHES` (comma-separated batch sizes, default 1,10,100,500), `BENCH_COMPRESSION`
//! (lz4). Each batch size gets a fresh topic of 6 partitions.
#![allow(clippy::unwrap_used)] // A benchmark fails loudly.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use chat_domain::{EventPublisher, MessageIdGenerator};
use chat_kafka::KafkaPublisher;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let events: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let batches: Vec<usize> = std::env::var("BENCH_BATCHES")
        .unwrap_or_else(|_| "1,10,100,500".to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let compression = std::env::var("BENCH_COMPRESSION").unwrap_or_else(|_| "lz4".to_owned());
    let ids = MessageIdGenerator::new();
    let recipients: Vec<_> = (0..200).map(|_| common::user()).collect();
    let all: Vec<_> = (0..events)
        .map(|i| {
            common::event(
                &ids,
                common::user(),
                recipients[i % recipients.len()],
                "a benchmark message of typical length, sealed",
            )
        })
        .collect();
    println!(
        "chat-kafka producer benchmark: {events} events, compression {compression}, 6 partitions, one broker"
    );
    for batch in batches {
        let mut config = common::config(6);
        config.compression = compression.clone();
        let publisher = KafkaPublisher::new(config).unwrap();
        publisher.connect().await.unwrap();
        let started = Instant::now();
        for chunk in all.chunks(batch.max(1)) {
            publisher.publish(chunk).await.unwrap();
        }
        let elapsed = started.elapsed();
        println!(
            "  batch {batch:>4}: {:>8.0} events/s ({:.2} s, {:.2} ms per publish call)",
            events as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1000.0 / all.chunks(batch.max(1)).count() as f64,
        );
    }
}
