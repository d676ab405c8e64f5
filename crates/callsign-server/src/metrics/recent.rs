//! Requests and tokens of the last minute, one count a second: what the console's Activity page
//! shows as live rates. Prometheus counters only grow; a scraper computes rates from them, the
//! console has no scraper, so it keeps these sixty buckets beside them.

use crate::clock::{Clock, SystemClock};
use std::sync::{Arc, Mutex};

/// How many one-second buckets are kept: the last minute.
pub const WINDOW_SECONDS: usize = 60;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// The Unix second the counts are of; a bucket of an older second counts as empty.
    second: i64,
    requests: u64,
    tokens: u64,
}

/// Per-second counts of the last [`WINDOW_SECONDS`] seconds, by the server's clock.
pub struct Recent {
    clock: Arc<dyn Clock>,
    buckets: Mutex<[Bucket; WINDOW_SECONDS]>,
}

/// The counts of the last minute, oldest second first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentCounts {
    /// Requests answered in each second (index 0: 59 seconds ago; the last: the current second).
    pub requests: Vec<u64>,
    /// Tokens minted in each second.
    pub tokens: Vec<u64>,
}

impl RecentCounts {
    /// Requests answered in the whole minute.
    pub fn total_requests(&self) -> u64 {
        self.requests.iter().sum()
    }

    /// Tokens minted in the whole minute.
    pub fn total_tokens(&self) -> u64 {
        self.tokens.iter().sum()
    }
}

impl Default for Recent {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

impl Recent {
    /// Counts by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            buckets: Mutex::new([Bucket::default(); WINDOW_SECONDS]),
        }
    }

    fn add(&self, requests: u64, tokens: u64) {
        let second = self.clock.now().timestamp();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = &mut buckets[second.rem_euclid(WINDOW_SECONDS as i64) as usize];
        if bucket.second != second {
            *bucket = Bucket {
                second,
                ..Bucket::default()
            };
        }
        bucket.requests += requests;
        bucket.tokens += tokens;
    }

    /// Counts one answered request.
    pub fn request(&self) {
        self.add(1, 0);
    }

    /// Counts one minted token.
    pub fn token(&self) {
        self.add(0, 1);
    }

    /// The last minute's counts, as of now.
    pub fn counts(&self) -> RecentCounts {
        let now = self.clock.now().timestamp();
        let buckets = *self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut counts = RecentCounts {
            requests: Vec::with_capacity(WINDOW_SECONDS),
            tokens: Vec::with_capacity(WINDOW_SECONDS),
        };
        for ago in (0..WINDOW_SECONDS as i64).rev() {
            let second = now - ago;
            let bucket = buckets[second.rem_euclid(WINDOW_SECONDS as i64) as usize];
            let live = bucket.second == second;
            counts.requests.push(if live { bucket.requests } else { 0 });
            counts.tokens.push(if live { bucket.tokens } else { 0 });
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn counts_fall_out_of_the_window_after_a_minute() {
        let clock = ManualClock::new(chrono::DateTime::from_timestamp(1_000, 0).unwrap());
        let recent = Recent::new(Arc::new(clock.clone()));
        recent.request();
        recent.request();
        recent.token();
        let counts = recent.counts();
        assert_eq!((counts.total_requests(), counts.total_tokens()), (2, 1));
        assert_eq!(counts.requests[WINDOW_SECONDS - 1], 2);
        clock.advance(chrono::Duration::seconds(30));
        recent.request();
        let counts = recent.counts();
        assert_eq!(counts.total_requests(), 3);
        assert_eq!(counts.requests[WINDOW_SECONDS - 31], 2);
        clock.advance(chrono::Duration::seconds(30));
        // The first second is now 60 s old: out of the window; its bucket is reused.
        recent.token();
        let counts = recent.counts();
        assert_eq!((counts.total_requests(), counts.total_tokens()), (1, 1));
    }
}
