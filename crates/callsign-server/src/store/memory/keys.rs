//! The keys of an in-memory resource: generated at the first start (or the access key taken from
//! the seed), gone with the process.

use super::MemoryBackend;
use crate::domain::ids::ResourceId;
use crate::keys::signing::{KeyRing, RetiredKey, SigningKey, RETIRED_KEY_RETENTION};
use crate::keys::{AccessKeys, KeyError, KeyKind, ResourceKeys, SigningAlg, TransferredKeys};
use crate::store::{KeyStore, KeyVersion};
use callsign_common::AccessKey;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// A resource's keys as held in memory.
pub(super) struct StoredKeys {
    resource_id: ResourceId,
    access: AccessKeys,
    current: Arc<SigningKey>,
    retired: Vec<RetiredKey>,
    version: u64,
}

impl StoredKeys {
    fn generate(seed: Option<AccessKey>) -> Result<Self, KeyError> {
        Ok(Self {
            resource_id: ResourceId::random(),
            access: AccessKeys::generate(seed),
            current: Arc::new(SigningKey::generate()?.0),
            retired: Vec::new(),
            version: 1,
        })
    }

    fn from_transfer(keys: TransferredKeys) -> Result<Self, KeyError> {
        let retired = keys
            .retired
            .iter()
            .map(|(pem, retired_at)| {
                Ok(RetiredKey {
                    key: Arc::new(SigningKey::from_pem(pem)?),
                    retired_at: *retired_at,
                })
            })
            .collect::<Result<_, KeyError>>()?;
        Ok(Self {
            resource_id: ResourceId::random(),
            access: keys.access,
            current: Arc::new(SigningKey::from_pem(&keys.current)?),
            retired,
            version: 1,
        })
    }

    /// Retires the current key for `key`, dropping retired keys past their retention.
    fn rotate_to(&mut self, key: SigningKey, now: DateTime<Utc>) {
        let old = std::mem::replace(&mut self.current, Arc::new(key));
        self.retired
            .retain(|r| now - r.retired_at < RETIRED_KEY_RETENTION);
        self.retired.insert(
            0,
            RetiredKey {
                key: old,
                retired_at: now,
            },
        );
        self.version += 1;
    }

    fn view(&self, now: DateTime<Utc>) -> ResourceKeys {
        ResourceKeys {
            resource_id: self.resource_id,
            access: self.access.clone(),
            ring: KeyRing {
                current: self.current.clone(),
                retired: self
                    .retired
                    .iter()
                    .filter(|r| now - r.retired_at < RETIRED_KEY_RETENTION)
                    .cloned()
                    .collect(),
            },
        }
    }
}

fn no_resource() -> KeyError {
    KeyError::Database("the in-memory store holds no resource yet".into())
}

impl MemoryBackend {
    /// Runs `f` on the stored keys.
    fn with_keys<T>(
        &self,
        f: impl FnOnce(&mut StoredKeys) -> Result<T, KeyError>,
    ) -> Result<T, KeyError> {
        let mut state = self.state();
        f(state.keys.as_mut().ok_or_else(no_resource)?)
    }
}

#[async_trait::async_trait]
impl KeyStore for MemoryBackend {
    async fn init_keys(
        &self,
        seed: Option<AccessKey>,
        _now: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        if self.state().keys.is_none() {
            // Generated outside the lock: an RSA key takes a while.
            let fresh = StoredKeys::generate(seed.clone())?;
            self.state().keys.get_or_insert(fresh);
        }
        self.with_keys(|keys| match seed {
            Some(seed) if seed != keys.access.primary => Err(KeyError::SeedMismatchDatabase),
            _ => Ok(()),
        })
    }

    async fn load_keys(&self, now: DateTime<Utc>) -> Result<ResourceKeys, KeyError> {
        self.with_keys(|keys| Ok(keys.view(now)))
    }

    async fn key_version(&self) -> Result<KeyVersion, KeyError> {
        self.with_keys(|keys| Ok(KeyVersion(keys.version)))
    }

    async fn regenerate_access_key(&self, which: KeyKind) -> Result<(), KeyError> {
        self.with_keys(|keys| {
            keys.access.regenerate(which);
            keys.version += 1;
            Ok(())
        })
    }

    async fn rotate_signing_key(&self, now: DateTime<Utc>) -> Result<String, KeyError> {
        let alg = self.with_keys(|keys| Ok(keys.current.alg()))?;
        let (key, _) = SigningKey::generate_with(alg)?;
        let kid = key.kid().to_owned();
        self.with_keys(|keys| {
            keys.rotate_to(key, now);
            Ok(kid)
        })
    }

    async fn adopt_keys(
        &self,
        resource_id: ResourceId,
        keys: Option<TransferredKeys>,
        _now: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        if let Some(stored) = self.state().keys.as_ref().map(|k| k.resource_id) {
            return match stored == resource_id {
                true => Ok(()),
                false => Err(KeyError::OtherResource {
                    stored: stored.to_string(),
                    given: resource_id.to_string(),
                }),
            };
        }
        let mut adopted = match keys {
            Some(keys) => StoredKeys::from_transfer(keys)?,
            None => StoredKeys::generate(None)?,
        };
        adopted.resource_id = resource_id;
        self.state().keys.get_or_insert(adopted);
        Ok(())
    }

    async fn ensure_signing_alg(
        &self,
        alg: SigningAlg,
        now: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        if self.with_keys(|keys| Ok(keys.current.alg()))? == alg {
            return Ok(());
        }
        let (key, _) = SigningKey::generate_with(alg)?;
        self.with_keys(|keys| {
            keys.rotate_to(key, now);
            Ok(())
        })
    }
}
