//! Measures how large one chat's `messages` partition grows on disk (not a test: it asserts
//! nothing, it prints figures). The design asks this of the seed's model, where a chat is one
//! partition without bound.
//!
//! ```sh
//! deploy/local/cassandra.sh start
//! cargo run --release -p chat-cassandra --example partition_size
//! ```
//! It appends `BENCH_MESSAGES` (50 000) messages of `BENCH_TEXT_BYTES` (80) bytes of text to one
//! chat through the store adapter, flushes and compacts the table with nodetool, and reads the
//! partition's size from `nodetool tablestats`. Environment: `CHAT_TEST_CASSANDRA` (contact
//! points, default 127.0.0.1:9042), `BENCH_CONCURRENCY` (32), `NODETOOL` (the command that runs
//! nodetool against that node; default `bash deploy/local/cassandra.sh nodetool`, run from the
//! repository root with the same `CHAT_CASSANDRA_HOME` as the server). It works in a fresh
//! keyspace and drops it at the end.
#![allow(clippy::unwrap_used)] // A benchmark fails loudly.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use chat_domain::{ChatId, MessageStore};

/// Runs nodetool with `args` and returns what it printed.
fn nodetool(args: &[&str]) -> String {
    let command = std::env::var("NODETOOL")
        .unwrap_or_else(|_| "bash deploy/local/cassandra.sh nodetool".to_owned());
    let mut words = command.split_whitespace();
    let program = words.next().unwrap();
    let output = Command::new(program)
        .args(words)
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "nodetool {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The number after `label:` in nodetool's output.
fn figure(report: &str, label: &str) -> f64 {
    report
        .lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no `{label}` in nodetool's report:\n{report}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let messages = common::setting("BENCH_MESSAGES", 50_000);
    let text_bytes = common::setting("BENCH_TEXT_BYTES", 80);
    let concurrency = common::setting("BENCH_CONCURRENCY", 32);
    let fixture = Arc::new(common::Fixture::new().await);
    let (alice, bob) = (common::user(), common::user());
    let chat = ChatId::for_pair(alice, bob);
    let text: String = "abcdefghij".repeat(text_bytes.div_ceil(10))[..text_bytes].to_owned();

    let started = Instant::now();
    let writers: Vec<_> = (0..concurrency)
        .map(|writer| {
            let (fixture, text) = (fixture.clone(), text.clone());
            tokio::spawn(async move {
                for i in (writer..messages).step_by(concurrency) {
                    let (sender, recipient) = if i % 2 == 0 {
                        (alice, bob)
                    } else {
                        (bob, alice)
                    };
                    let (message, event) =
                        fixture.message(chat, sender, recipient, &format!("p-{i}"), &text);
                    fixture.store.append(&message, &event).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let written = started.elapsed();

    let keyspace = fixture.config.keyspace.clone();
    nodetool(&["flush", &keyspace, "messages"]);
    nodetool(&["compact", &keyspace, "messages"]);
    let report = nodetool(&["tablestats", &format!("{keyspace}.messages")]);
    let partition_max = figure(&report, "Compacted partition maximum bytes");
    let space_live = figure(&report, "Space used (live)");
    let compression = figure(&report, "SSTable Compression Ratio");

    let per_message_uncompressed = partition_max / messages as f64;
    let per_message_on_disk = space_live / messages as f64;
    let hundred_mb = 100.0 * 1024.0 * 1024.0;
    println!("one chat's `messages` partition (one local node, LZ4 as the table's default)");
    println!(
        "  {messages} messages of {text_bytes} bytes of text, appended in {:.1} s",
        written.as_secs_f64()
    );
    println!(
        "  partition (uncompressed, nodetool's histogram bucket): {:.1} MiB = {:.0} bytes/message",
        partition_max / 1024.0 / 1024.0,
        per_message_uncompressed
    );
    println!(
        "  on disk after compaction: {:.1} MiB = {:.0} bytes/message (compression ratio {:.2})",
        space_live / 1024.0 / 1024.0,
        per_message_on_disk,
        compression
    );
    println!(
        "  a partition reaches 100 MiB (the usual guideline) at about {:.0} messages",
        hundred_mb / per_message_uncompressed
    );

    let drop_keyspace = format!("DROP KEYSPACE IF EXISTS {keyspace}");
    let _ = fixture.db.query(&drop_keyspace, 60_000).await;
}
