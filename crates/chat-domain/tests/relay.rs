//! The outbox relay's loop over in-memory adapters, with a scripted schedule: no sleeping.
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::testing::MemoryAdapters;
use chat_domain::{
    ChatService, ClientMessageId, Limits, MessageKind, OutboxRelay, Recipient, RelayMetrics,
    RelayPacing, RelaySchedule, SendRequest, UserId,
};
use uuid::Uuid;

/// Records the pauses asked for; at the `heal_at`-th, heals the publisher and starts shutdown.
struct Scripted<'a> {
    adapters: &'a MemoryAdapters,
    heal_at: usize,
    pauses: Mutex<Vec<Duration>>,
    stopping: AtomicBool,
}

#[async_trait]
impl RelaySchedule for Scripted<'_> {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    async fn pause(&self, pause: Duration) {
        let mut pauses = self.pauses.lock().unwrap();
        pauses.push(pause);
        if pauses.len() == self.heal_at {
            self.adapters.publisher.failing.set(false);
            self.stopping.store(true, Ordering::SeqCst);
        }
    }
}

#[derive(Default)]
struct Counted {
    published: AtomicUsize,
    failed: AtomicUsize,
    backlog: AtomicU64,
}

impl RelayMetrics for Counted {
    fn published(&self, count: usize) {
        self.published.fetch_add(count, Ordering::SeqCst);
    }

    fn failed(&self) {
        self.failed.fetch_add(1, Ordering::SeqCst);
    }

    fn backlog(&self, events: u64) {
        self.backlog.store(events, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn the_relay_backs_off_while_publishing_fails_then_relays_once_more_and_stops_on_shutdown() {
    let adapters = MemoryAdapters::new(10);
    let service = ChatService::new(adapters.ports(), Limits::default());
    let (alice, bob) = (
        UserId::from_uuid(Uuid::new_v4()),
        UserId::from_uuid(Uuid::new_v4()),
    );
    let request = SendRequest {
        client_msg_id: ClientMessageId::parse("relay-1").unwrap(),
        to: Recipient::User(bob),
        kind: MessageKind::Text,
        content: "to relay".to_owned(),
    };
    service.accept(alice, request).await.unwrap();
    adapters.publisher.failing.set(true);

    let relay = OutboxRelay::new(adapters.store.clone(), adapters.publisher.clone(), 10);
    let schedule = Scripted {
        adapters: &adapters,
        heal_at: 3,
        pauses: Mutex::new(Vec::new()),
        stopping: AtomicBool::new(false),
    };
    let metrics = Counted::default();
    let pacing = RelayPacing {
        idle: Duration::from_millis(100),
        max_backoff: Duration::from_secs(10),
        backlog_interval: Duration::ZERO,
    };
    relay.run(pacing, &schedule, &metrics).await;

    // Three failed rounds, each followed by a longer pause: the ceiling doubles from the idle
    // pause, and each pause lies in its upper half.
    let pauses = schedule.pauses.lock().unwrap().clone();
    assert_eq!(pauses.len(), 3, "{pauses:?}");
    for (pause, ceiling_ms) in pauses.iter().zip([100, 200, 400]) {
        let ceiling = Duration::from_millis(ceiling_ms);
        assert!(*pause >= ceiling / 2 && *pause <= ceiling, "{pauses:?}");
    }
    assert_eq!(metrics.failed.load(Ordering::SeqCst), 3);
    // Shutdown began during the third pause: one last round published the event, and the loop
    // ended without pausing again.
    assert_eq!(metrics.published.load(Ordering::SeqCst), 1);
    assert_eq!(adapters.publisher.events().len(), 1);
    assert_eq!(
        metrics.backlog.load(Ordering::SeqCst),
        0,
        "measured after the last round"
    );
}
