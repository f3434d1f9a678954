//! Login throttling: at most so many attempts per username and per client address within a
//! sliding window, kept in memory.
//!
//! Each endpoint (prelogin, login, the TOTP step, and the auth key and code checks of
//! logged-in users) has its own counters, so one full login uses one attempt of each. Every attempt that is let
//! through counts, successful ones included; refused attempts do not, so a client that keeps
//! trying is let in again once its oldest counted attempt leaves the window. IPv6 clients
//! are counted per /64, the block one subscriber usually holds.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What is being attempted; each has its own counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /api/prelogin`.
    Prelogin,
    /// `POST /api/login`.
    Login,
    /// `POST /api/login/totp`.
    LoginTotp,
    /// A TOTP or recovery code sent by a logged-in user (enable, disable, re-authentication).
    Code,
    /// A logged-in user re-authenticating with their auth key before a sensitive change.
    Reauthenticate,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Username(String),
    /// An IPv4 address, or the first 64 bits of an IPv6 address.
    Address(u128),
}

type Key = (Endpoint, Subject);

/// The attempt is refused: retry after this many whole seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until the oldest counted attempt leaves the window.
    pub retry_after_s: u64,
}

#[derive(Default)]
struct Attempts {
    by_key: HashMap<Key, VecDeque<Instant>>,
    last_sweep: Option<Instant>,
}

/// The attempt counters. Shared by every request through [`crate::AppState`].
pub struct LoginThrottle {
    per_username: usize,
    per_address: usize,
    window: Duration,
    attempts: Mutex<Attempts>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("per_username", &self.per_username)
            .field("per_address", &self.per_address)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

fn address_subject(ip: IpAddr) -> Subject {
    match ip.to_canonical() {
        IpAddr::V4(v4) => Subject::Address(u128::from(u32::from(v4))),
        IpAddr::V6(v6) => Subject::Address(u128::from(v6) >> 64 << 64),
    }
}

impl LoginThrottle {
    /// Counters allowing `per_username` attempts per username and three times as many per
    /// client address, per endpoint, within `window`.
    pub fn new(per_username: u32, window: Duration) -> Self {
        let per_username = usize::try_from(per_username).unwrap_or(usize::MAX);
        Self {
            per_username,
            per_address: per_username.saturating_mul(3),
            window,
            attempts: Mutex::new(Attempts::default()),
        }
    }

    /// Locks the counters. Every change under the lock is a push or a pop, so a panic while
    /// it was held leaves consistent data, and a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, Attempts> {
        self.attempts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts an attempt on `endpoint` from `ip` for `username` (`None` when the request
    /// names no valid username: then only the address counts).
    ///
    /// # Errors
    /// [`Throttled`] when the username or the address has used its attempts within the
    /// window; the refused attempt is not counted.
    pub fn attempt(
        &self,
        endpoint: Endpoint,
        username: Option<&str>,
        ip: IpAddr,
    ) -> Result<(), Throttled> {
        self.attempt_at(endpoint, username, ip, Instant::now())
    }

    fn attempt_at(
        &self,
        endpoint: Endpoint,
        username: Option<&str>,
        ip: IpAddr,
        now: Instant,
    ) -> Result<(), Throttled> {
        let mut keys = vec![((endpoint, address_subject(ip)), self.per_address)];
        if let Some(username) = username {
            keys.push((
                (endpoint, Subject::Username(username.to_owned())),
                self.per_username,
            ));
        }
        let window = self.window;
        let mut attempts = self.lock();
        attempts.sweep(now, window);
        let mut wait = Duration::ZERO;
        for (key, limit) in &keys {
            let Some(times) = attempts.by_key.get_mut(key) else {
                continue;
            };
            forget_older_than(times, now, window);
            if times.len() >= *limit {
                let oldest = times.front().copied().unwrap_or(now);
                wait = wait.max((oldest + window).saturating_duration_since(now));
            }
        }
        if !wait.is_zero() || keys.iter().any(|(_, limit)| *limit == 0) {
            let whole_seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(Throttled {
                retry_after_s: whole_seconds.max(1),
            });
        }
        for (key, _) in keys {
            attempts.by_key.entry(key).or_default().push_back(now);
        }
        Ok(())
    }
}

fn forget_older_than(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|time| now.saturating_duration_since(*time) >= window)
    {
        times.pop_front();
    }
}

impl Attempts {
    /// Drops the counters of every key without a recent attempt, at most once per window,
    /// so memory stays bounded by the keys seen in the last two windows.
    fn sweep(&mut self, now: Instant, window: Duration) {
        if self
            .last_sweep
            .is_some_and(|last| now.saturating_duration_since(last) < window)
        {
            return;
        }
        self.last_sweep = Some(now);
        self.by_key.retain(|_, times| {
            forget_older_than(times, now, window);
            !times.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const ALICE: Option<&str> = Some("alice");

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_attempt_after_the_limit_is_refused_until_the_window_passes() {
        let throttle = LoginThrottle::new(2, Duration::from_secs(60));
        let start = Instant::now();
        let address = ip("192.0.2.1");
        for _ in 0..2 {
            throttle
                .attempt_at(Endpoint::Login, ALICE, address, start)
                .unwrap();
        }
        let refused = throttle
            .attempt_at(
                Endpoint::Login,
                ALICE,
                address,
                start + Duration::from_secs(10),
            )
            .unwrap_err();
        assert_eq!(refused.retry_after_s, 50);
        // Other endpoints and other users have their own counters.
        throttle
            .attempt_at(Endpoint::Prelogin, ALICE, address, start)
            .unwrap();
        throttle
            .attempt_at(Endpoint::Login, Some("bob"), address, start)
            .unwrap();
        // Refused attempts do not count, so the window ends on time.
        throttle
            .attempt_at(
                Endpoint::Login,
                ALICE,
                address,
                start + Duration::from_secs(60),
            )
            .unwrap();
    }

    #[test]
    fn an_address_gets_three_times_the_attempts_of_a_username() {
        let throttle = LoginThrottle::new(2, Duration::from_secs(60));
        let now = Instant::now();
        for index in 0..6 {
            let username = format!("user{index}");
            throttle
                .attempt_at(Endpoint::Login, Some(&username), ip("2001:db8::1"), now)
                .unwrap();
        }
        // Another address in the same /64 shares the counter; another /64 does not.
        assert!(throttle
            .attempt_at(Endpoint::Login, None, ip("2001:db8::2"), now)
            .is_err());
        throttle
            .attempt_at(Endpoint::Login, None, ip("2001:db8:0:1::1"), now)
            .unwrap();
    }

    #[test]
    fn stale_counters_are_swept() {
        let throttle = LoginThrottle::new(5, Duration::from_secs(1));
        let start = Instant::now();
        throttle
            .attempt_at(Endpoint::Login, ALICE, ip("192.0.2.1"), start)
            .unwrap();
        assert_eq!(throttle.lock().by_key.len(), 2);
        throttle
            .attempt_at(
                Endpoint::Login,
                None,
                ip("192.0.2.2"),
                start + Duration::from_secs(2),
            )
            .unwrap();
        assert_eq!(throttle.lock().by_key.len(), 1);
    }
}
