//! The one loop that keeps a server's [`LiveKeys`] in step with its backend's stored keys: the
//! CLI or another node may regenerate or rotate them at any time.

use super::{KeyError, LiveKeys};
use crate::clock::Clock;
use crate::store::{KeyStore, KeyVersion};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the key version is checked.
const POLL: Duration = Duration::from_secs(1);
/// Every this many polls the keys are reloaded anyway, to drop retired signing keys past their
/// retention.
const FORCED_EVERY: u64 = 60;
/// How long one check or reload may take: a storage that stopped answering must not stall polling.
const BOUND: Duration = Duration::from_secs(5);

/// Reloads the live keys when the stored ones change.
pub struct KeyWatcher {
    store: Arc<dyn KeyStore>,
    live: Arc<LiveKeys>,
    clock: Arc<dyn Clock>,
    seen: Mutex<Option<KeyVersion>>,
}

impl KeyWatcher {
    /// Loads the stored keys and puts them in force.
    pub async fn start(store: Arc<dyn KeyStore>, clock: Arc<dyn Clock>) -> Result<Self, KeyError> {
        let version = store.key_version().await?;
        let keys = store.load_keys(clock.now()).await?;
        Ok(Self {
            store,
            live: Arc::new(LiveKeys::new(keys)),
            clock,
            seen: Mutex::new(Some(version)),
        })
    }

    /// The keys in force.
    pub fn live(&self) -> &Arc<LiveKeys> {
        &self.live
    }

    /// Reloads if the stored version moved since the last look, or if `force`; true when it
    /// reloaded. A failed reload keeps the keys in force.
    pub async fn poll(&self, force: bool) -> Result<bool, KeyError> {
        let bounded = tokio::time::timeout(BOUND, async {
            // The version is read first: a change racing the load is seen again next time.
            let version = self.store.key_version().await?;
            let seen = *self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if !force && seen == Some(version) {
                return Ok(false);
            }
            let keys = self.store.load_keys(self.clock.now()).await?;
            self.live.replace(keys);
            *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(version);
            Ok(seen != Some(version))
        });
        bounded
            .await
            .unwrap_or_else(|_| Err(KeyError::Database("the key storage timed out".into())))
    }

    /// Polls every second until dropped (the server aborts it at shutdown).
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(POLL);
        let mut ticks: u64 = 0;
        loop {
            tick.tick().await;
            ticks += 1;
            match self.poll(ticks.is_multiple_of(FORCED_EVERY)).await {
                Ok(true) => tracing::info!("reloaded the keys"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "reloading the keys failed; keeping the keys in force")
                }
            }
        }
    }
}
