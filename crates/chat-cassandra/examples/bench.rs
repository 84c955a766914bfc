//! A micro-benchmark of the Cassandra store (not a test: it asserts nothing, it prints figures).
//!
//! ```sh
//! deploy/local/cassandra.sh start
//! cargo run --release -p chat-cassandra --example bench
//! ```
//! Environment: `CHAT_TEST_CASSANDRA` (contact points, default 127.0.0.1:9042),
//! `BENCH_MESSAGES` (5000), `BENCH_CONCURRENCY` (32), `BENCH_CHATS` (50), `BENCH_PAGE` (50),
//! `BENCH_READS` (2000). It works in a fresh keyspace and drops it at the end.
#![allow(clippy::unwrap_used)] // A benchmark fails loudly.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_domain::{ChatId, MessageStore, PageStart, UserId};
use hdrhistogram::Histogram;

fn micros(histogram: &Histogram<u64>, quantile: f64) -> String {
    format!(
        "{:.2} ms",
        histogram.value_at_quantile(quantile) as f64 / 1000.0
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let messages = common::setting("BENCH_MESSAGES", 5_000);
    let concurrency = common::setting("BENCH_CONCURRENCY", 32);
    let chats = common::setting("BENCH_CHATS", 50);
    let page = common::setting("BENCH_PAGE", 50);
    let reads = common::setting("BENCH_READS", 2_000);
    let fixture = Arc::new(common::Fixture::new().await);
    let pairs: Arc<Vec<(UserId, UserId, ChatId)>> = Arc::new(
        (0..chats)
            .map(|_| {
                let (a, b) = (common::user(), common::user());
                (a, b, ChatId::for_pair(a, b))
            })
            .collect(),
    );

    // Inserts: `concurrency` writers, each appending its share.
    let started = Instant::now();
    let writers: Vec<_> = (0..concurrency)
        .map(|writer| {
            let (fixture, pairs) = (fixture.clone(), pairs.clone());
            tokio::spawn(async move {
                let mut latencies = Histogram::<u64>::new(3).unwrap();
                for i in (writer..messages).step_by(concurrency) {
                    let (a, b, chat) = pairs[i % pairs.len()];
                    let (message, event) =
                        fixture.message(chat, a, b, &format!("b-{i}"), "benchmark message body");
                    let sent = Instant::now();
                    fixture.store.append(&message, &event).await.unwrap();
                    latencies.record(sent.elapsed().as_micros() as u64).unwrap();
                }
                latencies
            })
        })
        .collect();
    let mut inserts = Histogram::<u64>::new(3).unwrap();
    for writer in writers {
        inserts.add(writer.await.unwrap()).unwrap();
    }
    let elapsed = started.elapsed();

    // First pages, then a second page through the paging state.
    let mut first_pages = Histogram::<u64>::new(3).unwrap();
    let mut next_pages = Histogram::<u64>::new(3).unwrap();
    for i in 0..reads {
        let chat = pairs[i % pairs.len()].2;
        let sent = Instant::now();
        let first = fixture
            .store
            .page(chat, &PageStart::Newest, page as u32)
            .await
            .unwrap();
        first_pages
            .record(sent.elapsed().as_micros() as u64)
            .unwrap();
        if let Some(next) = first.next {
            let sent = Instant::now();
            fixture.store.page(chat, &next, page as u32).await.unwrap();
            next_pages
                .record(sent.elapsed().as_micros() as u64)
                .unwrap();
        }
    }

    println!(
        "chat-cassandra store benchmark (one local node, {} contact point(s))",
        fixture.config.contact_points.len()
    );
    println!("  appends: {messages} messages over {chats} chats, {concurrency} concurrent writers");
    println!(
        "    throughput {:.0} appends/s ({:.1} s), latency p50 {} p99 {} max {}",
        messages as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        micros(&inserts, 0.50),
        micros(&inserts, 0.99),
        micros(&inserts, 1.0),
    );
    println!(
        "  first page ({page} messages, {reads} reads): p50 {} p99 {}",
        micros(&first_pages, 0.50),
        micros(&first_pages, 0.99),
    );
    println!(
        "  next page via paging state ({} reads): p50 {} p99 {}",
        next_pages.len(),
        micros(&next_pages, 0.50),
        micros(&next_pages, 0.99),
    );
    let drop_keyspace = format!("DROP KEYSPACE IF EXISTS {}", fixture.config.keyspace);
    let _ = fixture.db.query(&drop_keyspace, 60_000).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}
