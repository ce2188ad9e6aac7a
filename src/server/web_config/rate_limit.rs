//! `rate_limit`: token buckets, one per authenticated user (or one over all requests).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::schema::{set, RateLimitFile};
use crate::units::parse_go_duration;

/// The limiter of a `rate_limit` section, or `None` when its interval is zero or unset.
pub(super) fn rate_limiter(r: &RateLimitFile) -> Result<Option<RateLimiter>, String> {
    let interval = match set(&r.interval) {
        Some(s) => parse_go_duration(s).map_err(|e| format!("rate_limit.interval: {e}"))?,
        None => Duration::ZERO,
    };
    if interval.is_zero() {
        return Ok(None);
    }
    let burst = r.burst.unwrap_or(0);
    if burst == 0 {
        return Err("rate_limit.burst: must be at least 1 when rate_limit.interval is set".into());
    }
    Ok(Some(RateLimiter::new(interval, burst)))
}

/// Token buckets: one token every `interval`, at most `burst` saved up. With basic auth, each
/// authenticated user has a bucket of its own and requests that fail authentication take no
/// token (so a flood without credentials cannot use up Prometheus' requests); without basic
/// auth, one bucket counts every request, as in the exporter toolkit. The buckets are at most
/// one per configured user, plus the shared one.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    burst: f64,
    /// Per user (`None`: every request, without basic auth): tokens available and when they
    /// were counted.
    buckets: Mutex<HashMap<Option<String>, (f64, Instant)>>,
}

impl RateLimiter {
    fn new(interval: Duration, burst: u32) -> Self {
        Self {
            interval,
            burst: f64::from(burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token from `user`'s bucket (`None`: the shared one) if one is available.
    pub fn allow(&self, user: Option<&str>) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let s = buckets
            .entry(user.map(str::to_owned))
            .or_insert((self.burst, now));
        let refill = now.duration_since(s.1).as_secs_f64() / self.interval.as_secs_f64();
        s.0 = (s.0 + refill).min(self.burst);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}
