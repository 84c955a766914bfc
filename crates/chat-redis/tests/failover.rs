//! Redis going away under the adapters: a master killed (its replica takes over), and the whole
//! cluster stopped and started again. Runs against the cluster `deploy/local/test.sh` starts
//! (3 masters, 3 replicas) through `deploy/local/redis-cluster.sh`; the tests of this binary
//! take turns, and cargo runs test binaries one after another, so no other test sees the outage.
#![allow(clippy::unwrap_used)] // Tests panic on purpose when an expectation fails.

mod common;

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use chat_domain::{
    ChatId, LiveEvent, LivePublisher, LiveRoutes, RecentMessages, RecentWindow, UserId,
};
use chat_redis::{RedisCache, RedisConfig, RedisFanOut};
use common::{
    Messages, Recorder, cli, cluster_script, connect, eventually, keyslot, master_ports,
    one_at_a_time, owner_of, ports, replica_ports, slot_owners, test_config, user,
};

fn config() -> RedisConfig {
    RedisConfig {
        command_timeout_ms: 1_000,
        retry_after_ms: 500,
        topology_check_ms: 500,
        ..test_config()
    }
}

fn typing(user: UserId) -> LiveEvent {
    LiveEvent::Typing {
        chat_id: ChatId::for_pair(user, user),
        user_id: user,
        origin: None,
    }
}

/// The node number (1-6) `redis-cluster.sh` gives the node listening on `port`.
fn node_number(port: u16) -> String {
    (port - ports()[0] + 1).to_string()
}

/// A call that returns within `bound`, whatever it returns: the adapter never hangs its caller.
async fn bounded<T>(bound: Duration, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(bound, call)
        .await
        .unwrap_or_else(|_| panic!("a call hung for more than {bound:?}"))
}

struct Setup {
    prefix: String,
    cache: RedisCache,
    publisher: RedisFanOut,
    subscriber: RedisFanOut,
    delivered: Arc<Recorder>,
    users: Vec<UserId>,
    messages: Messages,
}

async fn setup(config: RedisConfig) -> Setup {
    let prefix = config.key_prefix.clone();
    let cache = RedisCache::new(connect(config.clone()).await);
    let publisher = RedisFanOut::new(connect(config.clone()).await, Arc::new(Recorder::default()));
    let delivered = Arc::new(Recorder::default());
    let subscriber = RedisFanOut::new(connect(config).await, delivered.clone());
    let users: Vec<UserId> = (0..60).map(|_| user()).collect();
    for user in &users {
        subscriber.watch(*user).await.unwrap();
    }
    Setup {
        prefix,
        cache,
        publisher,
        subscriber,
        delivered,
        users,
        messages: Messages::default(),
    }
}

impl Setup {
    /// Whether a round of cache writes and reads, and one event per user, all go through.
    async fn all_work(&self) -> bool {
        let bound = Duration::from_secs(3);
        for user in &self.users {
            let message = self.messages.next(*user, *user_peer(), "hi");
            let empty = RecentWindow {
                messages: vec![],
                complete: true,
            };
            let ok = bounded(bound, self.cache.prime(message.chat_id, &empty))
                .await
                .is_ok()
                && bounded(bound, self.cache.remember(&message)).await.is_ok()
                && bounded(bound, self.cache.window(message.chat_id))
                    .await
                    .is_ok_and(|window| window.is_some_and(|w| w.messages.contains(&message)));
            if !ok {
                return false;
            }
        }
        let before: Vec<usize> = self
            .users
            .iter()
            .map(|u| self.delivered.count_for(*u))
            .collect();
        for user in &self.users {
            if bounded(bound, self.publisher.publish(*user, &typing(*user)))
                .await
                .is_err()
            {
                return false;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.users
            .iter()
            .zip(before)
            .all(|(user, before)| self.delivered.count_for(*user) > before)
    }
}

fn user_peer() -> &'static UserId {
    static PEER: LazyLock<UserId> = LazyLock::new(user);
    &PEER
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapters_keep_working_when_a_master_is_killed() {
    let _turn = one_at_a_time().await;
    let s = setup(config()).await;
    assert!(s.all_work().await, "everything works before the kill");

    let masters = master_ports();
    assert_eq!(masters.len(), 3);
    let victim = node_number(masters[0]);
    cluster_script(&["kill-node", &victim]);
    let killed = Instant::now();

    // Every call returns within its bound during the failover (errors are fine), and once a
    // replica has taken over, every chat and every user's channel works again: the
    // subscriptions on the dead master's slots were restored without any help.
    eventually(
        "cache and delivery work on every slot after the failover",
        Duration::from_secs(60),
        async || s.all_work().await,
    )
    .await;
    eprintln!("recovered {:?} after the kill", killed.elapsed());
    assert_eq!(master_ports().len(), 3, "a replica was promoted");
    assert!(!master_ports().contains(&masters[0]));

    cluster_script(&["start-node", &victim]);
    assert!(
        s.all_work().await,
        "the old master rejoined as a replica without disruption"
    );
    assert_eq!(s.subscriber.watched(), s.users.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapters_reconnect_after_the_whole_cluster_restarts() {
    let _turn = one_at_a_time().await;
    let config = RedisConfig {
        forget_hold_ms: 120_000,
        ..config()
    };
    let prefix = config.key_prefix.clone();
    let s = setup(config).await;
    assert!(s.all_work().await);
    let message = s.messages.next(user(), user(), "cached before the outage");
    let chat = message.chat_id;
    s.cache
        .prime(
            chat,
            &RecentWindow {
                messages: vec![message],
                complete: true,
            },
        )
        .await
        .unwrap();

    cluster_script(&["stop"]);
    // Down: calls fail (fast once degraded), and an invalidation waits in memory.
    assert!(
        bounded(Duration::from_secs(3), s.cache.window(chat))
            .await
            .is_err()
    );
    assert!(
        bounded(
            Duration::from_secs(3),
            RecentMessages::forget(&s.cache, chat)
        )
        .await
        .is_err()
    );
    assert_eq!(s.cache.pending_invalidations(), 1);
    assert_eq!(
        bounded(Duration::from_secs(3), s.cache.window(chat))
            .await
            .ok()
            .flatten(),
        None,
        "a window with a pending invalidation is never served"
    );

    cluster_script(&["start", "--replicas"]);
    eventually(
        "everything works again",
        Duration::from_secs(60),
        async || s.all_work().await,
    )
    .await;
    // The invalidation that waited was written: the stale window is gone and its place held.
    eventually(
        "the pending invalidation is written",
        Duration::from_secs(10),
        async || s.cache.pending_invalidations() == 0,
    )
    .await;
    let key = format!("{prefix}:recent:{{{chat}}}");
    let state = cli(master_ports()[0], &["-c", "hget", &key, "_primed"]);
    assert_eq!(state.trim(), "held");
    assert_eq!(s.cache.window(chat).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_a_graceful_failover_and_a_reshard() {
    let _turn = one_at_a_time().await;
    // No periodic safety net: only the slot-map check can restore what these two drop silently
    // (no connection closes, and fred drops Redis's sunsubscribe notices).
    let config = RedisConfig {
        resubscribe_all_secs: 3_600,
        ..config()
    };
    let s = setup(config).await;
    assert!(s.all_work().await, "everything works before");
    let channel_slots: Vec<u16> = s
        .users
        .iter()
        .map(|user| keyslot(&format!("{}:user:{{{user}}}", s.prefix)))
        .collect();
    let owners =
        |slots: &[u16]| -> Vec<Option<u16>> { slots.iter().map(|slot| owner_of(*slot)).collect() };

    // A replica takes over from its master, gracefully.
    let before = owners(&channel_slots);
    let replica = replica_ports()[0];
    cluster_script(&["failover", &node_number(replica)]);
    let after = owners(&channel_slots);
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    assert!(moved > 0, "no watched channel changed master");
    eventually(
        "every channel delivers after a graceful failover",
        Duration::from_secs(30),
        async || s.all_work().await,
    )
    .await;

    // Slots move between masters, with the users' channels in them.
    let (from, _) = slot_owners()
        .into_iter()
        .max_by_key(|(_, ranges)| ranges.iter().map(|(a, b)| b - a + 1).sum::<u16>())
        .unwrap();
    let to = master_ports()
        .into_iter()
        .find(|port| *port != from)
        .unwrap();
    let before = owners(&channel_slots);
    cluster_script(&["move-slots", &node_number(from), &node_number(to), "3000"]);
    let after = owners(&channel_slots);
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    assert!(moved > 0, "no watched channel moved with the slots");
    eprintln!(
        "{moved} of {} watched channels moved in the reshard",
        s.users.len()
    );
    eventually(
        "every channel delivers after a reshard",
        Duration::from_secs(30),
        async || s.all_work().await,
    )
    .await;
}
