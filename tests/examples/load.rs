//! A load benchmark of the whole stack through nginx (not a test: it asserts nothing but that the
//! traffic flows, and prints figures): `BENCH_PAIRS` pairs of users, each pair's sender sending
//! to its receiver in a closed loop (next message once the previous is acknowledged) for
//! `BENCH_SECONDS`; it reports the rate of acknowledged messages, send→ack latency, and
//! send→delivery latency, split by whether sender and receiver sit on the same instance.
//!
//! ```sh
//! deploy/local/up.sh
//! CHAT_TEST_NGINX=127.0.0.1:8088 cargo run --release -p system-tests --example load
//! ```
//! Environment: `CHAT_TEST_NGINX` (nginx's host:port, default 127.0.0.1:8088), the stack's own
//! variables (`CHAT_STACK_HOME`, …, as for `deploy/local/stack.sh`), `BENCH_PAIRS` (100),
//! `BENCH_SECONDS` (20).
#![allow(clippy::unwrap_used)] // A benchmark fails loudly.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;
use system_tests::stack::Stack;
use system_tests::user;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> String {
    format!(
        "{:.2}",
        histogram.value_at_quantile(quantile) as f64 / 1000.0
    )
}

fn row(label: &str, histogram: &Histogram<u64>) {
    println!(
        "| {label} | {} | {} | {} | {} | {} |",
        histogram.len(),
        ms(histogram, 0.5),
        ms(histogram, 0.9),
        ms(histogram, 0.99),
        ms(histogram, 1.0)
    );
}

/// Latencies in microseconds, by kind and by whether the pair shares an instance.
#[derive(Default)]
struct Figures {
    ack_same: Option<Histogram<u64>>,
    ack_cross: Option<Histogram<u64>>,
    delivery_same: Option<Histogram<u64>>,
    delivery_cross: Option<Histogram<u64>>,
    /// Sends answered with an error frame and sent again (same `client_msg_id`), as a client
    /// does when, say, a Cassandra node has just died.
    resends: u64,
}

fn record(slot: &mut Option<Histogram<u64>>, since: Instant) {
    slot.get_or_insert_with(|| Histogram::new(3).unwrap())
        .record(since.elapsed().as_micros() as u64)
        .unwrap();
}

#[actix_web::main]
async fn main() {
    let pairs = setting("BENCH_PAIRS", 100) as usize;
    let seconds = setting("BENCH_SECONDS", 20);
    let stack: &'static Stack = Box::leak(Box::new(Stack::from_env()));
    let figures = Rc::new(RefCell::new(Figures::default()));
    // Send instants by message content (unique per message), shared by the pair's two tasks.
    let sent_at: Rc<RefCell<HashMap<String, Instant>>> = Rc::default();

    println!("connecting {} users through {}", pairs * 2, stack.base);
    let mut tasks = Vec::new();
    let mut cross_pairs = 0;
    // Senders connect first, then receivers in the order 0, 2, 4, …, 1, 3, …: nginx alternates
    // new sockets between two idle instances, so about half the pairs share an instance.
    let mut senders = Vec::new();
    for _ in 0..pairs {
        let (sender, receiver) = (user(), user());
        let (socket, instance) = stack.connect(sender).await;
        senders.push((receiver, socket, instance));
    }
    let mut receivers: Vec<_> = (0..pairs).map(|_| None).collect();
    for pair in (0..pairs).step_by(2).chain((1..pairs).step_by(2)) {
        receivers[pair] = Some(stack.connect(senders[pair].0).await);
    }
    let until = Instant::now() + Duration::from_secs(seconds);
    for (pair, ((receiver, mut sending, sender_instance), connected)) in
        senders.into_iter().zip(receivers).enumerate()
    {
        let (mut receiving, receiver_instance) = connected.unwrap();
        let cross = sender_instance != receiver_instance;
        cross_pairs += usize::from(cross);
        let (figures_out, sent_out) = (figures.clone(), sent_at.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let mut count = 0u64;
            while Instant::now() < until {
                count += 1;
                let content = format!("load {pair} {count}");
                let began = Instant::now();
                sent_out.borrow_mut().insert(content.clone(), began);
                let send = json!({
                    "type": "send", "client_msg_id": format!("l-{count}"),
                    "to_user_id": receiver.to_string(), "kind": "text", "content": content,
                });
                sending.send(&send).await;
                loop {
                    let frame = sending
                        .try_next_frame(Duration::from_secs(10))
                        .await
                        .unwrap();
                    let frame = frame.expect("no ack within 10 s");
                    if frame["type"] == "ack" {
                        break;
                    }
                    if frame["type"] == "error" {
                        figures_out.borrow_mut().resends += 1;
                        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
                        sending.send(&send).await;
                    }
                }
                let mut figures = figures_out.borrow_mut();
                record(
                    if cross {
                        &mut figures.ack_cross
                    } else {
                        &mut figures.ack_same
                    },
                    began,
                );
            }
            sending.close().await;
            count
        }));
        let (figures_in, sent_in) = (figures.clone(), sent_at.clone());
        actix_web::rt::spawn(async move {
            while let Ok(Some(frame)) = receiving.try_next_frame(Duration::from_secs(5)).await {
                if frame["type"] != "message" {
                    continue;
                }
                let content = frame["message"]["content"].as_str().unwrap_or_default();
                if let Some(began) = sent_in.borrow_mut().remove(content) {
                    let mut figures = figures_in.borrow_mut();
                    let slot = if cross {
                        &mut figures.delivery_cross
                    } else {
                        &mut figures.delivery_same
                    };
                    record(slot, began);
                }
            }
        });
    }
    let started = Instant::now();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let undelivered = sent_at.borrow().len();

    println!(
        "\n{pairs} pairs ({cross_pairs} across instances), {seconds} s: {total} messages \
         acknowledged, {:.0}/s; {undelivered} not delivered live within 1 s of the end; \
         {} sends answered with an error and sent again",
        total as f64 / elapsed,
        figures.borrow().resends
    );
    println!(
        "\n| latency | count | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|"
    );
    let figures = figures.borrow();
    for (label, histogram) in [
        ("send → ack, same instance", &figures.ack_same),
        ("send → ack, across instances", &figures.ack_cross),
        ("send → delivery, same instance", &figures.delivery_same),
        ("send → delivery, across instances", &figures.delivery_cross),
    ] {
        if let Some(histogram) = histogram {
            row(label, histogram);
        }
    }
}
