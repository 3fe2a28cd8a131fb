//! Adaptive concurrency (halve on 429, creep back up on success) and requests/tokens per
//! minute limits. Both are per model and shared by its requests.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Additive-increase, multiplicative-decrease limit on requests in flight.
pub(crate) struct AdaptiveLimit {
    state: Mutex<LimitState>,
    notify: Notify,
    max: usize,
    adaptive: bool,
}

struct LimitState {
    limit: usize,
    in_flight: usize,
    /// Successes since the limit last changed.
    streak: usize,
    last_cut: Option<Instant>,
    /// Lowest limit reached, for the facts.
    lowest: usize,
}

/// A slot; released on drop.
pub(crate) struct Permit<'a> {
    owner: &'a AdaptiveLimit,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut s = self.owner.state.lock().unwrap();
        s.in_flight -= 1;
        drop(s);
        self.owner.notify.notify_waiters();
    }
}

impl AdaptiveLimit {
    pub fn new(max: usize, adaptive: bool) -> Self {
        let max = max.max(1);
        AdaptiveLimit {
            state: Mutex::new(LimitState {
                limit: max,
                in_flight: 0,
                streak: 0,
                last_cut: None,
                lowest: max,
            }),
            notify: Notify::new(),
            max,
            adaptive,
        }
    }

    /// Waits for a slot, at most until `deadline`.
    pub async fn acquire(&self, deadline: Instant) -> Option<Permit<'_>> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.state.lock().unwrap();
                if s.in_flight < s.limit {
                    s.in_flight += 1;
                    return Some(Permit { owner: self });
                }
            }
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    /// A request succeeded: after `limit` successes in a row the limit grows by one.
    pub fn on_success(&self) {
        if !self.adaptive {
            return;
        }
        let mut s = self.state.lock().unwrap();
        s.streak += 1;
        if s.streak >= s.limit && s.limit < self.max {
            s.limit += 1;
            s.streak = 0;
            drop(s);
            self.notify.notify_waiters();
        }
    }

    /// The server said 429: halve the limit. Cuts closer together than `window` count as one
    /// (the requests that were already in flight when the server got busy all see 429).
    pub fn on_rate_limited(&self, window: Duration) {
        if !self.adaptive {
            return;
        }
        let mut s = self.state.lock().unwrap();
        let now = Instant::now();
        if s.last_cut.is_some_and(|t| now.duration_since(t) < window) {
            return;
        }
        s.last_cut = Some(now);
        s.limit = (s.limit / 2).max(1);
        s.lowest = s.lowest.min(s.limit);
        s.streak = 0;
    }

    pub fn current(&self) -> usize {
        self.state.lock().unwrap().limit
    }

    pub fn lowest(&self) -> usize {
        self.state.lock().unwrap().lowest
    }
}

/// Sliding one-minute windows of request starts and of tokens used.
pub(crate) struct RateLimit {
    rpm: Option<u32>,
    tpm: Option<u64>,
    window: Duration,
    state: Mutex<RateState>,
}

#[derive(Default)]
struct RateState {
    starts: VecDeque<Instant>,
    tokens: VecDeque<(Instant, u64)>,
}

impl RateLimit {
    pub fn new(rpm: Option<u32>, tpm: Option<u64>) -> Self {
        Self::with_window(rpm, tpm, Duration::from_secs(60))
    }

    pub fn with_window(rpm: Option<u32>, tpm: Option<u64>, window: Duration) -> Self {
        RateLimit {
            rpm,
            tpm,
            window,
            state: Mutex::new(RateState::default()),
        }
    }

    pub fn active(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some()
    }

    /// How long to wait before a request may start now; `Duration::ZERO` records the start.
    fn wait_needed(&self, now: Instant) -> Duration {
        let mut s = self.state.lock().unwrap();
        while s
            .starts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            s.starts.pop_front();
        }
        while s
            .tokens
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= self.window)
        {
            s.tokens.pop_front();
        }
        let mut wait = Duration::ZERO;
        if let Some(rpm) = self.rpm
            && s.starts.len() >= rpm as usize
        {
            let oldest = s.starts[s.starts.len() - rpm as usize];
            wait = wait.max(self.window.saturating_sub(now.duration_since(oldest)));
        }
        if let Some(tpm) = self.tpm {
            let mut used: u64 = s.tokens.iter().map(|(_, n)| n).sum();
            // Wait until enough of the window has expired to bring usage under the limit.
            for (t, n) in s.tokens.iter() {
                if used < tpm {
                    break;
                }
                used -= n;
                wait = wait.max(self.window.saturating_sub(now.duration_since(*t)));
            }
        }
        if wait.is_zero() {
            s.starts.push_back(now);
        }
        wait
    }

    /// Waits until a request may start (and counts it), at most until `deadline`.
    pub async fn admit(&self, deadline: Instant) -> Result<(), Duration> {
        if !self.active() {
            return Ok(());
        }
        // Each pass either admits or sleeps until a window entry expires, so the loop ends.
        for _ in 0..10_000 {
            let now = Instant::now();
            let wait = self.wait_needed(now);
            if wait.is_zero() {
                return Ok(());
            }
            if now + wait > deadline {
                return Err(wait);
            }
            tokio::time::sleep(wait + Duration::from_millis(1)).await;
        }
        Err(self.window)
    }

    /// Records the tokens a finished request used.
    pub fn record_tokens(&self, tokens: u64) {
        if self.tpm.is_some() && tokens > 0 {
            self.state
                .lock()
                .unwrap()
                .tokens
                .push_back((Instant::now(), tokens));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn limit_halves_on_429_and_recovers() {
        let l = AdaptiveLimit::new(8, true);
        l.on_rate_limited(Duration::from_secs(1));
        assert_eq!(l.current(), 4);
        // A second 429 from the same burst is not a second cut.
        l.on_rate_limited(Duration::from_secs(1));
        assert_eq!(l.current(), 4);
        for _ in 0..4 {
            l.on_success();
        }
        assert_eq!(l.current(), 5);
        for _ in 0..100 {
            l.on_success();
        }
        assert_eq!(l.current(), 8, "never above the configured maximum");
        assert_eq!(l.lowest(), 4);
    }

    #[tokio::test]
    async fn acquire_blocks_at_the_limit_and_times_out() {
        let l = Arc::new(AdaptiveLimit::new(2, true));
        let far = Instant::now() + Duration::from_secs(5);
        let a = l.acquire(far).await.unwrap();
        let _b = l.acquire(far).await.unwrap();
        assert!(
            l.acquire(Instant::now() + Duration::from_millis(30))
                .await
                .is_none()
        );
        let l2 = l.clone();
        let waiter = tokio::spawn(async move {
            l2.acquire(Instant::now() + Duration::from_secs(5))
                .await
                .is_some()
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        assert!(waiter.await.unwrap());
    }

    #[test]
    fn rpm_window_admits_at_most_rpm_starts() {
        let r = RateLimit::with_window(Some(2), None, Duration::from_millis(1000));
        let t = Instant::now();
        assert!(r.wait_needed(t).is_zero());
        assert!(r.wait_needed(t + Duration::from_millis(100)).is_zero());
        let w = r.wait_needed(t + Duration::from_millis(200));
        assert_eq!(w, Duration::from_millis(800));
        assert!(r.wait_needed(t + Duration::from_millis(1000)).is_zero());
    }

    #[test]
    fn tpm_window_waits_for_usage_to_expire() {
        let r = RateLimit::with_window(None, Some(100), Duration::from_secs(60));
        assert!(r.wait_needed(Instant::now()).is_zero());
        r.record_tokens(70);
        assert!(r.wait_needed(Instant::now()).is_zero());
        r.record_tokens(40);
        let w = r.wait_needed(Instant::now());
        assert!(w > Duration::from_secs(59), "{w:?}");
    }
}
