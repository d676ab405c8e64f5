//! Where "now" comes from, for everything that compares wall-clock times.
//!
//! Token expiry (`exp`) and the HMAC `x-ms-date` are wall-clock times, but timers run on Tokio's
//! monotonic clock. Injecting the wall clock lets tests pause Tokio's time and have expiry move with
//! it, so timing behaviour is tested exactly and without real sleeps.

use chrono::{DateTime, Utc};

/// A source of the current wall-clock time.
///
/// Production code uses [`SystemClock`]; tests use [`TokioClock`] so that token expiry follows
/// Tokio's paused time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's clock ([`Utc::now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A wall clock that advances with Tokio's clock, starting from a chosen time.
///
/// Meant for tests: under `#[tokio::test(start_paused = true)]` (Tokio's `test-util` feature),
/// `tokio::time::advance` and auto-advancing sleeps move this clock by exactly the same amount, so
/// a token that expires "in 20 minutes" expires after 20 minutes of paused time. It is anchored at
/// creation, so unlike [`SystemClock`] it does not follow wall-clock changes (NTP, suspend).
///
/// ```
/// use callsign_common::clock::{Clock, TokioClock};
/// use chrono::TimeDelta;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let start = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
/// let clock = TokioClock::starting_at(start);
/// tokio::time::sleep(std::time::Duration::from_secs(90)).await; // instant under paused time
/// assert_eq!(clock.now(), start + TimeDelta::seconds(90));
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start_wall: DateTime<Utc>,
    start_instant: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `start` now and advances with [`tokio::time::Instant`].
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            start_wall: start,
            start_instant: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now() - self.start_instant;
        // An elapsed time too large for chrono (hundreds of thousands of years) cannot happen in a
        // test; saturating keeps `now` total rather than panicking.
        chrono::TimeDelta::from_std(elapsed)
            .ok()
            .and_then(|elapsed| self.start_wall.checked_add_signed(elapsed))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}
