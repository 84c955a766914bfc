//! Per-user rate limits: one token bucket per user and action, on this instance (a user whose
//! sockets sit on two instances gets each instance's allowance; documented in
//! `docs/protocol.md`). Over the limit, a WebSocket frame is answered with a `rate_limited`
//! error carrying `retry_after_ms` (the socket stays open; excess `typing` is dropped
//! silently), an HTTP request with 429 and `Retry-After`.

use std::num::NonZeroU32;
use std::time::Duration;

use chat_domain::UserId;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

/// One action's allowance: a sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Allowance {
    /// Requests per second, sustained.
    pub per_second: u32,
    /// Requests allowed at once after a quiet spell.
    pub burst: u32,
}

/// The `[rate_limits]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct RateLimitSettings {
    /// Off: nothing is limited (for benchmarks of the store; never in production).
    pub enabled: bool,
    /// `send` frames.
    pub send: Allowance,
    /// `typing` frames (the excess is dropped silently).
    pub typing: Allowance,
    /// `seen` frames.
    pub seen: Allowance,
    /// `sync` frames.
    pub sync: Allowance,
    /// `POST /chats` (opening chats).
    pub open_chat: Allowance,
    /// REST reads: `GET /users/chat` and history pages.
    pub reads: Allowance,
}

/// What a user does, each with its own bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A `send` frame.
    Send,
    /// A `typing` frame.
    Typing,
    /// A `seen` frame.
    Seen,
    /// A `sync` frame.
    Sync,
    /// `POST /chats`.
    OpenChat,
    /// A REST read.
    Read,
}

/// Every action's keyed limiter.
pub struct RateLimits {
    enabled: bool,
    send: DefaultKeyedRateLimiter<UserId>,
    typing: DefaultKeyedRateLimiter<UserId>,
    seen: DefaultKeyedRateLimiter<UserId>,
    sync: DefaultKeyedRateLimiter<UserId>,
    open_chat: DefaultKeyedRateLimiter<UserId>,
    reads: DefaultKeyedRateLimiter<UserId>,
}

fn limiter(allowance: Allowance) -> DefaultKeyedRateLimiter<UserId> {
    // Zeroes are refused by `Settings::validate`; 1 keeps this total anyway.
    let rate = NonZeroU32::new(allowance.per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(allowance.burst).unwrap_or(NonZeroU32::MIN);
    RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
}

impl RateLimits {
    /// The limiters `settings` describe.
    pub fn new(settings: &RateLimitSettings) -> Self {
        Self {
            enabled: settings.enabled,
            send: limiter(settings.send),
            typing: limiter(settings.typing),
            seen: limiter(settings.seen),
            sync: limiter(settings.sync),
            open_chat: limiter(settings.open_chat),
            reads: limiter(settings.reads),
        }
    }

    fn of(&self, action: Action) -> &DefaultKeyedRateLimiter<UserId> {
        match action {
            Action::Send => &self.send,
            Action::Typing => &self.typing,
            Action::Seen => &self.seen,
            Action::Sync => &self.sync,
            Action::OpenChat => &self.open_chat,
            Action::Read => &self.reads,
        }
    }

    /// Takes one token of `user`'s `action` bucket.
    ///
    /// # Errors
    /// How long until the next token, when the bucket is empty.
    pub fn check(&self, action: Action, user: UserId) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        self.of(action)
            .check_key(&user)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets the buckets of users idle long enough to be full again (bounds the memory the
    /// limiters hold to the recently active users).
    pub fn forget_idle_users(&self) {
        for action in [
            Action::Send,
            Action::Typing,
            Action::Seen,
            Action::Sync,
            Action::OpenChat,
            Action::Read,
        ] {
            let limiter = self.of(action);
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(send: Allowance) -> RateLimitSettings {
        let plenty = Allowance {
            per_second: 100,
            burst: 100,
        };
        RateLimitSettings {
            enabled: true,
            send,
            typing: plenty,
            seen: plenty,
            sync: plenty,
            open_chat: plenty,
            reads: plenty,
        }
    }

    #[test]
    fn a_burst_passes_then_the_next_waits_about_one_interval_and_users_do_not_share() {
        let limits = RateLimits::new(&settings(Allowance {
            per_second: 2,
            burst: 3,
        }));
        let (alice, bob) = (
            UserId::from_uuid(uuid::Uuid::new_v4()),
            UserId::from_uuid(uuid::Uuid::new_v4()),
        );
        for _ in 0..3 {
            assert_eq!(limits.check(Action::Send, alice), Ok(()));
        }
        let wait = limits.check(Action::Send, alice).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert_eq!(
            limits.check(Action::Send, bob),
            Ok(()),
            "Bob has his own bucket"
        );
        assert_eq!(
            limits.check(Action::Typing, alice),
            Ok(()),
            "and so has each action"
        );
    }

    #[test]
    fn disabled_limits_let_everything_through() {
        let mut off = settings(Allowance {
            per_second: 1,
            burst: 1,
        });
        off.enabled = false;
        let limits = RateLimits::new(&off);
        let alice = UserId::from_uuid(uuid::Uuid::new_v4());
        for _ in 0..100 {
            assert_eq!(limits.check(Action::Send, alice), Ok(()));
        }
    }
}
