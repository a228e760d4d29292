//! The token buckets that limit callers, and how they are told about them:
//! the IETF `RateLimit-Policy` and `RateLimit` response headers
//! (draft-ietf-httpapi-ratelimit-headers), one list item per bucket that
//! charged the request.
//!
//! A bucket holds `burst` tokens and refills at `per_second`, so it is
//! described as a quota of `burst` per the window it takes to refill from
//! empty (`q`, `w`); what it has left is `r`, and `t` is the seconds until
//! it is full again (or, once refused, until it has a token).

use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{NotUntil, Quota, RateLimiter};

pub(crate) const POLICY_HEADER: HeaderName = HeaderName::from_static("ratelimit-policy");
pub(crate) const USAGE_HEADER: HeaderName = HeaderName::from_static("ratelimit");

/// A token bucket's average rate and burst.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// Buckets by key, reporting what they have left.
pub(crate) type Limiter<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// Why a bucket refused: it has no token for this long.
pub(crate) type Refused = NotUntil<<DefaultClock as Clock>::Instant>;

impl Rate {
    pub fn limiter<K: std::hash::Hash + Eq + Clone>(self) -> Limiter<K> {
        let rate = NonZeroU32::new(self.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.burst).unwrap_or(rate);
        RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)).with_middleware()
    }
}

/// One bucket's state after it charged (or refused) a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// The policy's name in the headers: `key`, `tenant`.
    pub policy: &'static str,
    /// Requests per window (`q`): the bucket's burst.
    pub quota: u32,
    /// Seconds the empty bucket takes to fill (`w`).
    pub window_secs: u64,
    /// Requests left now (`r`).
    pub remaining: u32,
    /// Seconds until it is full again, or once refused until it has a token (`t`).
    pub reset_secs: u64,
}

/// Whole seconds, rounded up: a client that waits `t` finds what it was told.
fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

impl Usage {
    fn describe(policy: &'static str, quota: Quota, remaining: u32) -> Self {
        let burst = quota.burst_size().get();
        let interval = quota.replenish_interval();
        Self {
            policy,
            quota: burst,
            window_secs: ceil_secs(interval * burst).max(1),
            remaining,
            reset_secs: ceil_secs(interval * (burst - remaining.min(burst))),
        }
    }

    /// A bucket that let the request through.
    pub fn allowed(policy: &'static str, snapshot: &StateSnapshot) -> Self {
        Self::describe(policy, snapshot.quota(), snapshot.remaining_burst_capacity())
    }

    /// A bucket that refused it: nothing left until `t`.
    pub fn refused(policy: &'static str, refused: &Refused) -> Self {
        let wait = refused.wait_time_from(DefaultClock::default().now());
        Self { reset_secs: ceil_secs(wait).max(1), ..Self::describe(policy, refused.quota(), 0) }
    }
}

/// Adds the two headers for `usages` (nothing when there are none).
pub(crate) fn insert_headers(headers: &mut HeaderMap, usages: &[Usage]) {
    if usages.is_empty() {
        return;
    }
    let list = |item: fn(&Usage) -> String| usages.iter().map(item).collect::<Vec<_>>().join(", ");
    let policy = list(|u| format!("\"{}\";q={};w={}", u.policy, u.quota, u.window_secs));
    let usage = list(|u| format!("\"{}\";r={};t={}", u.policy, u.remaining, u.reset_secs));
    for (name, value) in [(POLICY_HEADER, policy), (USAGE_HEADER, usage)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_reports_its_quota_what_is_left_and_when_it_is_full() {
        let limiter = Rate { per_second: 2, burst: 4 }.limiter::<u8>();
        let first = limiter.check_key(&1).expect("a full bucket admits");
        let usage = Usage::allowed("key", &first);
        // 4 tokens refilling at 2/s: a 2 s window; one spent, back in 0.5 s.
        assert_eq!(usage, Usage { policy: "key", quota: 4, window_secs: 2, remaining: 3, reset_secs: 1 });
    }

    #[test]
    fn a_refused_request_is_told_nothing_is_left_and_when_to_return() {
        let limiter = Rate { per_second: 1, burst: 1 }.limiter::<u8>();
        limiter.check_key(&1).expect("the one token");
        let refused = limiter.check_key(&1).expect_err("the bucket is empty");
        let usage = Usage::refused("tenant", &refused);
        assert_eq!((usage.remaining, usage.reset_secs, usage.quota), (0, 1, 1));
    }

    #[test]
    fn headers_list_every_bucket_as_structured_field_items() {
        let mut headers = HeaderMap::new();
        let key = Usage { policy: "key", quota: 20, window_secs: 2, remaining: 19, reset_secs: 1 };
        let tenant = Usage { policy: "tenant", quota: 100, window_secs: 5, remaining: 0, reset_secs: 3 };
        insert_headers(&mut headers, &[key, tenant]);
        assert_eq!(headers[POLICY_HEADER], "\"key\";q=20;w=2, \"tenant\";q=100;w=5");
        assert_eq!(headers[USAGE_HEADER], "\"key\";r=19;t=1, \"tenant\";r=0;t=3");
    }
}
