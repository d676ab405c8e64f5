//! The one loop that keeps a server's [`LiveKeys`] in step with its backend's stored keys: the
//! CLI or another node may regenerate or rotate them at any time.

use super::{KeyError, LiveKeys, ResourceKeys};
use crate::clock::Clock;
use crate::error_chain::error_chain;
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

    /// Reloads if the stored version moved since the last look, or if `force`, and says what
    /// changed (nothing: an empty list). A failed reload keeps the keys in force.
    pub async fn poll(&self, force: bool) -> Result<Vec<String>, KeyError> {
        let bounded = tokio::time::timeout(BOUND, async {
            // The version is read first: a change racing the load is seen again next time.
            let version = self.store.key_version().await?;
            let seen = *self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if !force && seen == Some(version) {
                return Ok(Vec::new());
            }
            let keys = self.store.load_keys(self.clock.now()).await?;
            let changes = changes(&self.live.get(), &keys);
            self.live.replace(keys);
            *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(version);
            Ok(changes)
        });
        bounded
            .await
            .unwrap_or_else(|_| Err(KeyError::Database("the key storage timed out".into())))
    }

    /// Polls every second until dropped (the server aborts it at shutdown). A failure is logged
    /// as a warning once, then quietly until the storage answers again.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(POLL);
        let mut ticks: u64 = 0;
        let mut failing = false;
        loop {
            tick.tick().await;
            ticks += 1;
            match self.poll(ticks.is_multiple_of(FORCED_EVERY)).await {
                Ok(changes) => {
                    if !changes.is_empty() {
                        tracing::info!(changes = %changes.join("; "), "reloaded the keys");
                    } else if failing {
                        tracing::info!("the key storage answers again");
                    }
                    failing = false;
                }
                Err(e) if failing => {
                    tracing::debug!(error = %error_chain(&e), "reloading the keys failed")
                }
                Err(e) => {
                    failing = true;
                    tracing::warn!(
                        error = %error_chain(&e),
                        "reloading the keys failed; keeping the keys in force"
                    );
                }
            }
        }
    }
}

/// What differs between the keys in force and newly loaded ones, in words (never key material).
fn changes(old: &ResourceKeys, new: &ResourceKeys) -> Vec<String> {
    let mut changes = Vec::new();
    if old.resource_id != new.resource_id {
        changes.push(format!("resource id is now {}", new.resource_id));
    }
    if old.access.primary != new.access.primary {
        changes.push("primary access key regenerated".to_owned());
    }
    if old.access.secondary != new.access.secondary {
        changes.push("secondary access key regenerated".to_owned());
    }
    if old.ring.current.kid() != new.ring.current.kid() {
        changes.push(format!(
            "signing key {} ({}) is current",
            new.ring.current.kid(),
            new.ring.current.alg().jws_name()
        ));
    }
    let dropped = old
        .ring
        .retired
        .iter()
        .map(|r| r.key.kid())
        .filter(|kid| new.ring.find(kid).is_none());
    changes.extend(dropped.map(|kid| format!("retired signing key {kid} is no longer published")));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::keys::KeyKind;
    use crate::store::{self, OpenMode, StorageConfig};

    #[tokio::test]
    async fn reloads_when_the_stored_keys_change_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let storage = StorageConfig::DataDir(dir.path().to_owned());
        let backend = store::open(&storage, OpenMode::Create).await.unwrap();
        backend.init_keys(None, chrono::Utc::now()).await.unwrap();
        let watcher = KeyWatcher::start(backend.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        let before = watcher.live().get();
        assert!(
            watcher.poll(false).await.unwrap().is_empty(),
            "nothing changed"
        );

        // Another process (the CLI) regenerates a key in the same storage.
        let cli = store::open(&storage, OpenMode::Existing).await.unwrap();
        cli.regenerate_access_key(KeyKind::Secondary).await.unwrap();
        assert_eq!(
            watcher.poll(false).await.unwrap(),
            ["secondary access key regenerated"]
        );
        let after = watcher.live().get();
        assert_eq!(after.access.primary, before.access.primary);
        assert_ne!(after.access.secondary, before.access.secondary);
        assert!(watcher.poll(false).await.unwrap().is_empty(), "seen once");
        assert!(
            watcher.poll(true).await.unwrap().is_empty(),
            "forced, but unchanged"
        );

        let kid = cli.rotate_signing_key(chrono::Utc::now()).await.unwrap();
        assert_eq!(
            watcher.poll(false).await.unwrap(),
            [format!("signing key {kid} (RS256) is current")]
        );
    }
}
