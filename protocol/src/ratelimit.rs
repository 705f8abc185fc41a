//! Rate limiting for log lines a guest can trigger.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Allows `burst` events per `window`; counts the rest.
pub struct RateLimiter {
    burst: u32,
    window: Duration,
    state: Mutex<State>,
}

struct State {
    window_start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl RateLimiter {
    pub const fn new(burst: u32, window: Duration) -> Self {
        RateLimiter {
            burst,
            window,
            state: Mutex::new(State {
                window_start: None,
                used: 0,
                suppressed: 0,
            }),
        }
    }

    /// `Some(n)` if this event may be logged, with `n` events suppressed
    /// since the last one that was; `None` if it must be dropped.
    pub fn check(&self) -> Option<u64> {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let expired = s
            .window_start
            .is_none_or(|start| now.duration_since(start) >= self.window);
        if expired {
            s.window_start = Some(now);
            s.used = 0;
        }
        if s.used < self.burst {
            s.used += 1;
            Some(std::mem::take(&mut s.suppressed))
        } else {
            s.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_per_window_and_counts_the_rest() {
        let limiter = RateLimiter::new(2, Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(limiter.check_at(t0), Some(0));
        assert_eq!(limiter.check_at(t0), Some(0));
        assert_eq!(limiter.check_at(t0), None);
        assert_eq!(limiter.check_at(t0), None);
        assert_eq!(limiter.check_at(t0 + Duration::from_secs(1)), Some(2));
    }
}
