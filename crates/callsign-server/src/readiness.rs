//! Readiness (`GET /readyz`): whether this server can do its job now. `/healthz` says the
//! process answers; `/readyz` says its storage takes writes, so that a load balancer or an
//! orchestrator sends requests elsewhere while it cannot (PostgreSQL down or a standby, the data
//! dir's disk full).
//!
//! One loop checks the storage every [`INTERVAL`], each check bounded by [`CHECK_BOUND`], and
//! keeps the verdict; a request only reads it, so a storage that hangs never hangs `/readyz`,
//! and a change shows within [`INTERVAL`] + [`CHECK_BOUND`] (3 s). The keys need no check: a
//! server listens only once they are loaded, and a failed reload keeps the loaded ones serving.

use crate::error_chain::error_chain;
use crate::store::HealthStore;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often the storage is checked.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// How long one check may take before it counts as a failure.
pub const CHECK_BOUND: Duration = Duration::from_secs(2);

/// The latest verdict, shared by the checking loop and the requests that read it.
pub struct Readiness {
    store: Arc<dyn HealthStore>,
    /// `None` when ready, else why not.
    not_ready: RwLock<Option<String>>,
}

impl Readiness {
    /// Checks `store` once and keeps the verdict; [`Readiness::run`] keeps checking.
    pub async fn start(store: Arc<dyn HealthStore>) -> Arc<Self> {
        let readiness = Arc::new(Self {
            store,
            not_ready: RwLock::new(None),
        });
        readiness.check().await;
        readiness
    }

    /// `Ok` when ready, else why not.
    pub fn status(&self) -> Result<(), String> {
        match &*self.not_ready.read().unwrap_or_else(|p| p.into_inner()) {
            None => Ok(()),
            Some(reason) => Err(reason.clone()),
        }
    }

    /// Checks every [`INTERVAL`] until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.check().await;
        }
    }

    /// One check; a change of verdict is logged once.
    async fn check(&self) {
        let verdict = match tokio::time::timeout(CHECK_BOUND, self.store.check_writable()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(error_chain(&e)),
            Err(_) => Some(format!(
                "the storage did not answer within {} s",
                CHECK_BOUND.as_secs()
            )),
        };
        let mut current = self.not_ready.write().unwrap_or_else(|p| p.into_inner());
        if *current != verdict {
            match &verdict {
                None => tracing::info!("ready: the storage takes writes again"),
                Some(reason) => tracing::warn!(reason = %reason, "not ready"),
            }
            *current = verdict;
        }
    }
}
