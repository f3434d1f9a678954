//! Login throttling: at most so many attempts per username and per client address within a
//! sliding window, counted in the database (`store::login_attempts`), so that every instance
//! of a deployment counts the same attempts.
//!
//! Each endpoint (prelogin, login, the TOTP step, and the auth key and code checks of
//! logged-in users) has its own counters, so one full login uses one attempt of each. Every
//! attempt that is let through counts, successful ones included; refused attempts do not, so
//! a client that keeps trying is let in again once its oldest counted attempt leaves the
//! window. IPv6 clients are counted per /64, the block one subscriber usually holds.

use std::net::IpAddr;
use std::time::Duration;

use sqlx::AnyPool;

use crate::error::ApiResult;
use crate::store::login_attempts::{self, Counter};

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
    /// `POST /api/register`, counted per address only, against its own limit.
    Register,
}

impl Endpoint {
    /// The name its counters are stored under.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prelogin => "prelogin",
            Self::Login => "login",
            Self::LoginTotp => "login_totp",
            Self::Code => "code",
            Self::Reauthenticate => "reauthenticate",
            Self::Register => "register",
        }
    }
}

/// The attempt is refused: retry after this many whole seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until the oldest counted attempt leaves the window.
    pub retry_after_s: u64,
}

/// The limits. Shared by every request through [`crate::AppState`].
#[derive(Debug)]
pub struct LoginThrottle {
    per_username: u32,
    per_address: u32,
    registrations_per_address: u32,
    window: Duration,
}

/// The subject counting the attempts of one address: an IPv4 address, or the /64 of an
/// IPv6 address, as `ip:` and 32 hex digits.
fn address_subject(ip: IpAddr) -> String {
    let bits = match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6) >> 64 << 64,
    };
    format!("ip:{bits:032x}")
}

impl LoginThrottle {
    /// Counters allowing `per_username` attempts per username and three times as many per
    /// client address, per endpoint, within `window`; registrations are allowed as often as
    /// logins until [`LoginThrottle::with_registrations`] says otherwise.
    pub fn new(per_username: u32, window: Duration) -> Self {
        Self {
            per_username,
            per_address: per_username.saturating_mul(3),
            registrations_per_address: per_username,
            window,
        }
    }

    /// The same limits, with `per_address` registrations per client address within the
    /// window.
    pub fn with_registrations(self, per_address: u32) -> Self {
        Self {
            registrations_per_address: per_address,
            ..self
        }
    }

    /// Counts an attempt on `endpoint` from `ip` for `username` (`None` when the request
    /// names no valid username: then only the address counts).
    ///
    /// # Errors
    /// [`ApiError::TooManyAttempts`] when the username or the address has used its attempts
    /// within the window (the refused attempt is not counted); a database error.
    pub async fn attempt(
        &self,
        pool: &AnyPool,
        endpoint: Endpoint,
        username: Option<&str>,
        ip: IpAddr,
    ) -> ApiResult<()> {
        self.attempt_at(pool, endpoint, username, ip, crate::store::now_ms())
            .await
    }

    async fn attempt_at(
        &self,
        pool: &AnyPool,
        endpoint: Endpoint,
        username: Option<&str>,
        ip: IpAddr,
        now_ms: i64,
    ) -> ApiResult<()> {
        let per_address = match endpoint {
            Endpoint::Register => self.registrations_per_address,
            _ => self.per_address,
        };
        let mut counters = vec![Counter {
            endpoint: endpoint.as_str(),
            subject: address_subject(ip),
            limit: per_address,
        }];
        if let Some(username) = username {
            counters.push(Counter {
                endpoint: endpoint.as_str(),
                subject: format!("user:{username}"),
                limit: self.per_username,
            });
        }
        let window_ms = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        match login_attempts::count_or_wait(pool, &counters, now_ms, window_ms).await? {
            None => Ok(()),
            Some(wait_ms) => {
                let wait_ms = u64::try_from(wait_ms).unwrap_or(1);
                Err(Throttled {
                    retry_after_s: wait_ms.div_ceil(1000).max(1),
                }
                .into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::error::ApiError;

    const ALICE: Option<&str> = Some("alice");

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn retry_after(result: ApiResult<()>) -> u64 {
        match result {
            Err(ApiError::TooManyAttempts { retry_after_s }) => retry_after_s,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    async fn database() -> AnyPool {
        crate::store::connect("sqlite::memory:").await.unwrap()
    }

    #[tokio::test]
    async fn the_attempt_after_the_limit_is_refused_until_the_window_passes() {
        let pool = database().await;
        let throttle = LoginThrottle::new(2, Duration::from_secs(60));
        let start = 1_000_000;
        let address = ip("192.0.2.1");
        for _ in 0..2 {
            throttle
                .attempt_at(&pool, Endpoint::Login, ALICE, address, start)
                .await
                .unwrap();
        }
        let refused = throttle
            .attempt_at(&pool, Endpoint::Login, ALICE, address, start + 10_000)
            .await;
        assert_eq!(retry_after(refused), 50);
        // Other endpoints and other users have their own counters.
        throttle
            .attempt_at(&pool, Endpoint::Prelogin, ALICE, address, start)
            .await
            .unwrap();
        throttle
            .attempt_at(&pool, Endpoint::Login, Some("bob"), address, start)
            .await
            .unwrap();
        // Refused attempts do not count, so the window ends on time.
        throttle
            .attempt_at(&pool, Endpoint::Login, ALICE, address, start + 60_000)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_address_gets_three_times_the_attempts_of_a_username() {
        let pool = database().await;
        let throttle = LoginThrottle::new(2, Duration::from_secs(60));
        let now = 1_000_000;
        for index in 0..6 {
            let username = format!("user{index}");
            throttle
                .attempt_at(
                    &pool,
                    Endpoint::Login,
                    Some(&username),
                    ip("2001:db8::1"),
                    now,
                )
                .await
                .unwrap();
        }
        // Another address in the same /64 shares the counter; another /64 does not.
        let refused = throttle
            .attempt_at(&pool, Endpoint::Login, None, ip("2001:db8::2"), now)
            .await;
        assert_eq!(retry_after(refused), 60);
        throttle
            .attempt_at(&pool, Endpoint::Login, None, ip("2001:db8:0:1::1"), now)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn registrations_count_per_address_against_their_own_limit() {
        let pool = database().await;
        let throttle = LoginThrottle::new(2, Duration::from_secs(60)).with_registrations(1);
        let now = 1_000_000;
        throttle
            .attempt_at(&pool, Endpoint::Register, None, ip("192.0.2.1"), now)
            .await
            .unwrap();
        let refused = throttle
            .attempt_at(&pool, Endpoint::Register, None, ip("192.0.2.1"), now)
            .await;
        assert_eq!(retry_after(refused), 60);
        throttle
            .attempt_at(&pool, Endpoint::Register, None, ip("192.0.2.2"), now)
            .await
            .unwrap();
        // Logins from the refused address keep their own counters.
        throttle
            .attempt_at(&pool, Endpoint::Login, ALICE, ip("192.0.2.1"), now)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn counters_older_than_the_window_are_deleted() {
        let pool = database().await;
        let throttle = LoginThrottle::new(5, Duration::from_secs(1));
        let start = 1_000_000;
        throttle
            .attempt_at(&pool, Endpoint::Login, ALICE, ip("192.0.2.1"), start)
            .await
            .unwrap();
        let rows = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM login_attempts")
                .fetch_one(&pool)
                .await
                .unwrap()
        };
        assert_eq!(rows().await, 2);
        throttle
            .attempt_at(&pool, Endpoint::Login, None, ip("192.0.2.2"), start + 2_000)
            .await
            .unwrap();
        assert_eq!(rows().await, 1);
    }

    #[tokio::test]
    async fn a_limit_of_zero_refuses_everything() {
        let pool = database().await;
        let throttle = LoginThrottle::new(0, Duration::from_secs(60));
        let refused = throttle
            .attempt_at(&pool, Endpoint::Login, ALICE, ip("192.0.2.1"), 1_000)
            .await;
        assert_eq!(retry_after(refused), 1);
    }
}
