//! Throttling as ACS documents it: each operation group of a resource takes at most N requests
//! per fixed window (ACS: 1,000 create-identity and issue-token requests per 30 s; 500 delete and
//! revoke requests, and 500 token exchanges), and the rest of the window is answered 429 with
//! `Retry-After`. Off unless configured ([`ThrottleConfig::off`]).
//!
//! Windows are fixed, aligned to multiples of the window length since the Unix epoch, so every
//! server of a cluster agrees on them; their counts live behind the storage seam
//! ([`crate::store::ThrottleStore`]), so the limit holds across a cluster's nodes. A fixed window
//! (not a continuously refilling bucket) is what ACS describes: a burst gets exactly N through,
//! and the window's end is when the next request will.

use crate::clock::Clock;
use crate::store::{StoreError, ThrottleStore};
use std::sync::Arc;

/// Operations that share a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationGroup {
    /// Creating identities (with or without a token) and issuing tokens.
    Issue,
    /// Deleting identities and revoking their tokens.
    Revoke,
    /// Exchanging a Teams or Entra token for an ACS one.
    Exchange,
}

impl OperationGroup {
    /// Every group.
    pub const ALL: [OperationGroup; 3] = [Self::Issue, Self::Revoke, Self::Exchange];

    /// The group's name: its key in `[limits]` and in the stored counts.
    pub fn name(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Revoke => "revoke",
            Self::Exchange => "exchange",
        }
    }
}

/// A named set of limits (`--limits`, `preset` in `[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThrottlePreset {
    /// Nothing is throttled.
    #[default]
    Off,
    /// The limits ACS documents.
    Acs,
}

impl ThrottlePreset {
    /// The preset's limits.
    pub fn config(self) -> ThrottleConfig {
        match self {
            Self::Off => ThrottleConfig::off(),
            Self::Acs => ThrottleConfig::acs(),
        }
    }
}

/// How many requests of each group a window takes (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// The window's length in seconds (at least 1).
    pub window_seconds: u32,
    /// Creating identities and issuing tokens.
    pub issue: Option<u32>,
    /// Deleting identities and revoking tokens.
    pub revoke: Option<u32>,
    /// Token exchanges.
    pub exchange: Option<u32>,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self::off()
    }
}

impl ThrottleConfig {
    /// The window ACS counts in.
    pub const ACS_WINDOW_SECONDS: u32 = 30;

    /// Nothing throttled (the default: a test server should not surprise with 429s).
    pub const fn off() -> Self {
        Self {
            window_seconds: Self::ACS_WINDOW_SECONDS,
            issue: None,
            revoke: None,
            exchange: None,
        }
    }

    /// ACS's documented limits: 1,000 per 30 s for issuing, 500 for revoking and for exchanges.
    pub const fn acs() -> Self {
        Self {
            window_seconds: Self::ACS_WINDOW_SECONDS,
            issue: Some(1000),
            revoke: Some(500),
            exchange: Some(500),
        }
    }

    /// The limit of `group`, if it has one.
    pub fn limit(&self, group: OperationGroup) -> Option<u32> {
        match group {
            OperationGroup::Issue => self.issue,
            OperationGroup::Revoke => self.revoke,
            OperationGroup::Exchange => self.exchange,
        }
    }

    /// Whether no group is limited.
    pub fn is_off(&self) -> bool {
        OperationGroup::ALL
            .iter()
            .all(|group| self.limit(*group).is_none())
    }
}

/// Why a request was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    /// The group's window is full.
    #[error("the {group} limit is reached; the window ends in {retry_after} s")]
    Throttled {
        /// The group's name.
        group: &'static str,
        /// Whole seconds until the window ends (at least 1): when a request will be admitted.
        retry_after: u32,
    },
    /// The counts could not be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Admits requests within their group's limit.
pub struct Throttle {
    config: ThrottleConfig,
    counts: Arc<dyn ThrottleStore>,
    clock: Arc<dyn Clock>,
}

impl Throttle {
    /// Limits `config`, counted in `counts`, windows read from `clock`.
    pub fn new(
        config: ThrottleConfig,
        counts: Arc<dyn ThrottleStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            config,
            counts,
            clock,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Counts a request of `group` and admits it if its window has room; an unlimited group is
    /// neither counted nor waited for.
    pub async fn admit(&self, group: OperationGroup) -> Result<(), ThrottleError> {
        let Some(limit) = self.config.limit(group) else {
            return Ok(());
        };
        let window = Window::at(
            self.clock.now().timestamp_millis(),
            self.config.window_seconds,
        );
        let count = self
            .counts
            .count_request(group.name(), window.start)
            .await?;
        if count <= u64::from(limit) {
            Ok(())
        } else {
            Err(ThrottleError::Throttled {
                group: group.name(),
                retry_after: window.retry_after,
            })
        }
    }
}

/// The window a moment falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    /// Its start, in Unix seconds.
    start: i64,
    /// Whole seconds from the moment to the window's end, rounded up (at least 1), so that a
    /// client waiting that long lands in the next window.
    retry_after: u32,
}

impl Window {
    fn at(now_ms: i64, window_seconds: u32) -> Self {
        let length_ms = i64::from(window_seconds.max(1)) * 1000;
        let start_ms = now_ms.div_euclid(length_ms) * length_ms;
        let left_ms = start_ms + length_ms - now_ms;
        Self {
            start: start_ms / 1000,
            retry_after: u32::try_from((left_ms + 999) / 1000)
                .unwrap_or(u32::MAX)
                .max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::LocalWindows;
    use chrono::DateTime;

    #[test]
    fn windows_are_aligned_and_retry_after_reaches_the_next() {
        assert_eq!(
            Window::at(60_000, 30),
            Window {
                start: 60,
                retry_after: 30
            }
        );
        assert_eq!(
            Window::at(89_999, 30),
            Window {
                start: 60,
                retry_after: 1
            }
        );
        assert_eq!(
            Window::at(75_500, 30),
            Window {
                start: 60,
                retry_after: 15
            }
        );
        assert_eq!(Window::at(-1, 30).start, -30);
        assert_eq!(Window::at(5_000, 0).start, 5, "a zero window is one second");
    }

    struct Counts(LocalWindows);

    #[async_trait::async_trait]
    impl ThrottleStore for Counts {
        async fn count_request(&self, group: &str, start: i64) -> Result<u64, StoreError> {
            Ok(self.0.count(group, start))
        }
    }

    #[tokio::test]
    async fn a_window_admits_its_limit_then_the_next_one_again() {
        let clock = ManualClock::new(DateTime::from_timestamp(1_800_000_010, 0).unwrap());
        let config = ThrottleConfig {
            window_seconds: 30,
            issue: Some(3),
            revoke: None,
            exchange: Some(1),
        };
        let throttle = Throttle::new(
            config,
            Arc::new(Counts(LocalWindows::default())),
            Arc::new(clock.clone()),
        );
        for _ in 0..3 {
            throttle.admit(OperationGroup::Issue).await.unwrap();
        }
        match throttle.admit(OperationGroup::Issue).await {
            Err(ThrottleError::Throttled { group, retry_after }) => {
                assert_eq!((group, retry_after), ("issue", 20));
            }
            other => panic!("{other:?}"),
        }
        for _ in 0..10 {
            throttle.admit(OperationGroup::Revoke).await.unwrap();
        }
        throttle.admit(OperationGroup::Exchange).await.unwrap();
        assert!(throttle.admit(OperationGroup::Exchange).await.is_err());
        clock.advance(chrono::Duration::seconds(20));
        throttle.admit(OperationGroup::Issue).await.unwrap();
        throttle.admit(OperationGroup::Exchange).await.unwrap();
    }
}
