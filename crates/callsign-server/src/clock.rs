//! Time as the service sees it, injectable so that expiry, skew and revocation are testable without
//! sleeping.

use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub use callsign_common::clock::{Clock, SystemClock};

/// A clock that stands still until a test moves it.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `t`.
    pub fn new(t: DateTime<Utc>) -> Self {
        Self(Arc::new(AtomicI64::new(t.timestamp_micros())))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: chrono::Duration) {
        let micros = by.num_microseconds().expect("duration in range");
        self.0.fetch_add(micros, Ordering::SeqCst);
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: DateTime<Utc>) {
        self.0.store(t.timestamp_micros(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0.load(Ordering::SeqCst)).expect("time in range")
    }
}

/// Hands out strictly increasing microsecond timestamps close to the clock's time.
///
/// Token issue times and revocation cut-offs both come from here, so a token issued after a
/// revocation returned always has a later stamp than the cut-off, even within one microsecond.
pub struct Stamps {
    clock: Arc<dyn Clock>,
    last: AtomicI64,
}

impl Stamps {
    /// Stamps from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            last: AtomicI64::new(i64::MIN),
        }
    }

    /// The clock behind the stamps.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The next stamp: the clock's microseconds, or one more than the last stamp if the clock has
    /// not moved on.
    pub fn next(&self) -> i64 {
        let now = self.clock.now().timestamp_micros();
        let mut last = self.last.load(Ordering::SeqCst);
        loop {
            let candidate = now.max(last.saturating_add(1));
            match self
                .last
                .compare_exchange(last, candidate, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return candidate,
                Err(seen) => last = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_increase_on_a_stopped_clock() {
        let clock = ManualClock::new(DateTime::from_timestamp(1_000, 0).unwrap());
        let stamps = Stamps::new(Arc::new(clock.clone()));
        let a = stamps.next();
        let b = stamps.next();
        assert_eq!(a, 1_000_000_000);
        assert_eq!(b, a + 1);
        clock.advance(chrono::Duration::seconds(1));
        assert_eq!(stamps.next(), 1_001_000_000);
    }

    #[test]
    fn stamps_never_go_back_with_the_clock() {
        let clock = ManualClock::new(DateTime::from_timestamp(1_000, 0).unwrap());
        let stamps = Stamps::new(Arc::new(clock.clone()));
        let a = stamps.next();
        clock.advance(chrono::Duration::seconds(-10));
        assert!(stamps.next() > a);
    }
}
