//! [`RedisFanOut`]: live delivery across instances over Redis 7 sharded pub/sub, one channel
//! per user.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::{LiveEvent, LivePublisher, LiveRoutes, LocalDelivery, Presence, Result, UserId};
use fred::prelude::*;
use fred::types::config::Options;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::connection::RedisConnection;
use crate::error::RedisError;
use crate::keys::Keys;

/// How many (re)subscriptions run at once when every channel is subscribed again.
const RESUBSCRIBE_CONCURRENCY: usize = 64;

/// The cluster's live delivery: [`LivePublisher`], [`Presence`] and [`LiveRoutes`].
///
/// - **Channels**: `<prefix>:user:{<user>}`, so users spread over every master's slots. An
///   instance SSUBSCRIBEs a user's channel while it holds one of their sockets
///   ([`LiveRoutes::watch`]) and SUNSUBSCRIBEs when the last closes; one channel per command
///   (a cross-slot SSUBSCRIBE fails in fred 10.1), with retries and redirections allowed.
/// - **Publishing** ([`LivePublisher::publish`]): an event goes straight to this instance's connections, then once to the
///   user's channel (SPUBLISH, under the command timeout) tagged with this instance's id; each
///   other subscribed instance hands it to its connections. The payload carries the message
///   sealed, as stored.
/// - **Presence** ([`Presence::is_connected`]): a local connection, or any subscriber on the
///   user's channel (`PUBSUB SHARDNUMSUB`).
/// - **Keeping subscriptions alive** (fred's built-in resubscription is unreliable,
///   `fred-pubsub.md`): a task re-subscribes every wanted channel on each reconnection, when
///   the cluster's slot map changes (a graceful failover or a reshard drops subscriptions
///   without any disconnect), after a failed subscribe, and every `resubscribe_all_secs`.
/// - **Loss**: pub/sub is at most once. Events published while a subscription is being
///   restored, or beyond the `pubsub_buffer` in a burst, are lost and counted
///   ([`crate::RedisHealth::lost_live_events`]); clients catch up with `sync`.
pub struct RedisFanOut {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

struct Shared {
    connection: RedisConnection,
    keys: Keys,
    local: Arc<dyn LocalDelivery>,
    instance: Uuid,
    /// Users whose channel this instance should be subscribed to.
    wanted: Mutex<HashSet<UserId>>,
    /// Users whose unsubscribe failed; retried while they stay unwanted.
    stale: Mutex<HashSet<UserId>>,
    /// Wakes the keeper to subscribe everything again (a subscribe failed).
    retry: Notify,
}

/// What travels on a user's channel.
#[derive(Serialize, Deserialize)]
struct Envelope {
    /// The publishing instance, which delivered locally already.
    from: Uuid,
    /// The user the event is for.
    to: UserId,
    event: LiveEvent,
}

impl std::fmt::Debug for RedisFanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFanOut")
            .field("instance", &self.shared.instance)
            .field("watched", &self.watched())
            .finish_non_exhaustive()
    }
}

impl Drop for RedisFanOut {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is a single insert or remove: a poisoned set is still consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RedisFanOut {
    /// A fan-out over `connection` delivering to `local`, this instance's connections. Must be
    /// called inside a Tokio runtime: it starts the receiving and re-subscribing tasks.
    pub fn new(connection: RedisConnection, local: Arc<dyn LocalDelivery>) -> Self {
        let shared = Arc::new(Shared {
            keys: Keys::new(&connection.config.key_prefix),
            local,
            instance: Uuid::new_v4(),
            wanted: Mutex::new(HashSet::new()),
            stale: Mutex::new(HashSet::new()),
            retry: Notify::new(),
            connection,
        });
        let receiver = tokio::spawn(receive_forever(
            Arc::downgrade(&shared),
            shared.connection.subscriber.message_rx(),
        ));
        let keeper = tokio::spawn(keep_subscribed(
            Arc::downgrade(&shared),
            shared.connection.subscriber.reconnect_rx(),
        ));
        Self {
            shared,
            tasks: vec![receiver, keeper],
        }
    }

    /// How many users' channels this instance subscribes to.
    pub fn watched(&self) -> usize {
        lock(&self.shared.wanted).len()
    }
}

impl Shared {
    fn subscribe_options(&self) -> Options {
        // A first SSUBSCRIBE to a moved slot fails in fred 10.1 unless redirections and retries
        // are allowed explicitly (`fred-pubsub.md` §3b).
        Options {
            max_attempts: Some(3),
            max_redirections: Some(3),
            timeout: Some(self.connection.config.command_timeout()),
            ..Options::default()
        }
    }

    async fn subscribe(&self, user: UserId) -> Result<(), RedisError> {
        let channel = self.keys.user_channel(user);
        let result = self
            .connection
            .subscriber
            .with_options(&self.subscribe_options())
            .ssubscribe(channel)
            .await;
        self.record(result)
    }

    async fn unsubscribe(&self, user: UserId) -> Result<(), RedisError> {
        let channel = self.keys.user_channel(user);
        let result = self
            .connection
            .subscriber
            .with_options(&self.subscribe_options())
            .sunsubscribe(channel)
            .await;
        self.record(result)
    }

    fn record(&self, result: Result<(), fred::error::Error>) -> Result<(), RedisError> {
        match result {
            Ok(()) => {
                self.connection.health.succeeded();
                Ok(())
            }
            Err(error) => {
                self.connection.health.failed(&error);
                Err(RedisError::Command(error))
            }
        }
    }

    /// Subscribes every wanted channel again (idempotent on the server) and drops stale
    /// subscriptions. Returns whether all succeeded.
    async fn resubscribe_all(&self) -> bool {
        let wanted: Vec<UserId> = lock(&self.wanted).iter().copied().collect();
        let failed = futures_util::stream::iter(wanted)
            .map(|user| async move { self.subscribe(user).await.is_err() })
            .buffer_unordered(RESUBSCRIBE_CONCURRENCY)
            .filter(|failed| std::future::ready(*failed))
            .count()
            .await;
        let stale: Vec<UserId> = lock(&self.stale).iter().copied().collect();
        for user in stale {
            let wanted_again = lock(&self.wanted).contains(&user);
            if wanted_again || self.unsubscribe(user).await.is_ok() {
                lock(&self.stale).remove(&user);
            }
        }
        if failed > 0 {
            tracing::warn!(
                failed,
                "could not re-subscribe some users' channels; retrying"
            );
        }
        failed == 0
    }

    fn deliver(&self, message: &fred::types::Message) {
        let Some(to) = self.keys.user_of_channel(&message.channel) else {
            return;
        };
        let Some(payload) = message.value.as_str() else {
            tracing::warn!(channel = %message.channel, "a live event that is not text; dropped");
            return;
        };
        let envelope: Envelope = match serde_json::from_str(&payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(error = %chat_domain::Report::of(&error), channel = %message.channel, "undecodable live event; dropped");
                return;
            }
        };
        if envelope.from == self.instance || envelope.to != to {
            return;
        }
        let taken = self.local.deliver(to, &envelope.event);
        tracing::trace!(user = %to, taken, "delivered a live event from another instance");
    }
}

/// Hands every message of the subscriber to the local connections; never blocks on them.
async fn receive_forever(
    shared: Weak<Shared>,
    mut messages: tokio::sync::broadcast::Receiver<fred::types::Message>,
) {
    loop {
        let received = messages.recv().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match received {
            Ok(message) => shared.deliver(&message),
            Err(RecvError::Lagged(lost)) => {
                shared.connection.health.count_lost_live_events(lost);
                tracing::warn!(
                    lost,
                    "live events arrived faster than they were handed on and were dropped; \
                     their recipients catch up with sync (raise redis.pubsub_buffer if this \
                     repeats)"
                );
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Re-subscribes whenever subscriptions may have been lost (see [`RedisFanOut`]).
async fn keep_subscribed(
    shared: Weak<Shared>,
    mut reconnects: tokio::sync::broadcast::Receiver<fred::types::config::Server>,
) {
    let (check_every, full_every) = match shared.upgrade() {
        Some(shared) => {
            let config = &shared.connection.config;
            (
                Duration::from_millis(config.topology_check_ms),
                Duration::from_secs(config.resubscribe_all_secs),
            )
        }
        None => return,
    };
    let mut check = tokio::time::interval(check_every);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut full = tokio::time::interval(full_every);
    full.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    full.tick().await;
    let mut last_slots: Option<Vec<(u16, u16, String)>> = None;
    let mut owed = false;
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        // The fan-out aborts this task when dropped, so holding `strong` here keeps nothing
        // alive for long.
        let retry = async { strong.retry.notified().await };
        let reason = tokio::select! {
            event = reconnects.recv() => match event {
                Ok(server) => Some(format!("reconnected to {server}")),
                Err(RecvError::Lagged(_)) => Some("reconnected".to_owned()),
                Err(RecvError::Closed) => return,
            },
            _ = check.tick() => {
                let slots = slot_map(&strong).await;
                let moved = match (&last_slots, &slots) {
                    (Some(before), Some(now)) => before != now,
                    _ => false,
                };
                if slots.is_some() {
                    last_slots = slots;
                }
                if moved {
                    Some("the cluster's slot map changed".to_owned())
                } else if owed {
                    Some("an earlier subscribe failed".to_owned())
                } else {
                    None
                }
            }
            _ = full.tick() => Some("periodic safety net".to_owned()),
            () = retry => {
                owed = true;
                None
            }
        };
        if let Some(reason) = reason {
            tracing::debug!(%reason, "re-subscribing every user channel");
            owed = !strong.resubscribe_all().await;
        }
    }
}

/// The cluster's slot ranges and their primaries, freshly read.
async fn slot_map(shared: &Shared) -> Option<Vec<(u16, u16, String)>> {
    let subscriber = &shared.connection.subscriber;
    let timeout = shared.connection.config.command_timeout();
    match tokio::time::timeout(timeout, subscriber.sync_cluster()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::debug!(error = %chat_domain::Report::of(&error), "could not read the cluster's slot map");
            return None;
        }
        Err(_) => return None,
    }
    let state = subscriber.cached_cluster_state()?;
    let mut slots: Vec<(u16, u16, String)> = state
        .slots()
        .iter()
        .map(|range| (range.start, range.end, range.primary.to_string()))
        .collect();
    slots.sort();
    Some(slots)
}

#[async_trait]
impl LivePublisher for RedisFanOut {
    async fn publish(&self, user: UserId, event: &LiveEvent) -> Result<()> {
        let shared = &self.shared;
        shared.local.deliver(user, event);
        let envelope = Envelope {
            from: shared.instance,
            to: user,
            event: event.clone(),
        };
        let payload = serde_json::to_string(&envelope).map_err(|error| RedisError::Encode {
            what: "live event",
            reason: error.to_string(),
        })?;
        let receivers: i64 = shared
            .connection
            .run(
                shared
                    .connection
                    .data
                    .spublish(shared.keys.user_channel(user), payload),
            )
            .await?;
        tracing::trace!(%user, receivers, "published a live event");
        Ok(())
    }
}

#[async_trait]
impl Presence for RedisFanOut {
    async fn is_connected(&self, user: UserId) -> Result<bool> {
        let shared = &self.shared;
        if shared.local.is_connected_here(user) {
            return Ok(true);
        }
        let counts: Vec<Value> = shared
            .connection
            .run(
                shared
                    .connection
                    .data
                    .pubsub_shardnumsub(shared.keys.user_channel(user)),
            )
            .await?;
        Ok(counts.get(1).and_then(Value::as_i64).unwrap_or(0) > 0)
    }
}

#[async_trait]
impl LiveRoutes for RedisFanOut {
    async fn watch(&self, user: UserId) -> Result<()> {
        let shared = &self.shared;
        lock(&shared.wanted).insert(user);
        lock(&shared.stale).remove(&user);
        if let Err(error) = shared.subscribe(user).await {
            shared.retry.notify_one();
            return Err(error.into());
        }
        Ok(())
    }

    async fn unwatch(&self, user: UserId) -> Result<()> {
        let shared = &self.shared;
        lock(&shared.wanted).remove(&user);
        let result = shared.unsubscribe(user).await;
        // A socket of the user may have opened meanwhile, its subscribe sent before this
        // unsubscribe: subscribe again so the route stays.
        if lock(&shared.wanted).contains(&user) {
            if let Err(error) = shared.subscribe(user).await {
                shared.retry.notify_one();
                return Err(error.into());
            }
            return Ok(());
        }
        if let Err(error) = result {
            lock(&shared.stale).insert(user);
            return Err(error.into());
        }
        Ok(())
    }
}
