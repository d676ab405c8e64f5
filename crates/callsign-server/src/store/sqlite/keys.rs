//! The keys of a data dir: files beside the database ([`DataDir`]), read and written on the
//! blocking pool. The version is a digest of the key files' modification times, so changes made
//! by `callsign keys` and `callsign signing-key` in another process are noticed.

use super::SqliteBackend;
use crate::domain::ids::ResourceId;
use crate::keys::{DataDir, KeyError, KeyKind, ResourceKeys, SigningAlg, TransferredKeys};
use crate::store::{KeyStore, KeyVersion};
use callsign_common::AccessKey;
use chrono::{DateTime, Utc};

impl SqliteBackend {
    /// Whether the database holds any identity or assignment: a data dir whose key files are all
    /// gone is then not new but broken.
    async fn holds_data(&self) -> Result<bool, KeyError> {
        self.read(|conn| {
            conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM identities) \
                 OR EXISTS (SELECT 1 FROM teams_extension_assignments) \
                 OR EXISTS (SELECT 1 FROM entra_assignments)",
                [],
                |row| row.get(0),
            )
        })
        .await
        .map_err(|e| KeyError::Database(e.to_string()))
    }

    /// Runs a file operation of the data dir on the blocking pool.
    async fn with_files<T: Send + 'static>(
        &self,
        f: impl FnOnce(&DataDir) -> Result<T, KeyError> + Send + 'static,
    ) -> Result<T, KeyError> {
        let data_dir = self.data_dir.clone();
        tokio::task::spawn_blocking(move || f(&data_dir))
            .await
            .map_err(|e| KeyError::Database(format!("the key task failed: {e}")))?
    }
}

#[async_trait::async_trait]
impl KeyStore for SqliteBackend {
    async fn init_keys(&self, seed: Option<AccessKey>, now: DateTime<Utc>) -> Result<(), KeyError> {
        let holds_data = self.holds_data().await?;
        self.with_files(move |dir| dir.init(seed, now, holds_data).map(drop))
            .await
    }

    async fn load_keys(&self, now: DateTime<Utc>) -> Result<ResourceKeys, KeyError> {
        self.with_files(move |dir| dir.load(now)).await
    }

    async fn key_version(&self) -> Result<KeyVersion, KeyError> {
        self.with_files(|dir| Ok(KeyVersion(dir.fingerprint())))
            .await
    }

    async fn regenerate_access_key(&self, which: KeyKind) -> Result<(), KeyError> {
        self.with_files(move |dir| dir.regenerate_access_key(which).map(drop))
            .await
    }

    async fn rotate_signing_key(&self, now: DateTime<Utc>) -> Result<String, KeyError> {
        self.with_files(move |dir| {
            let ring = dir.rotate_signing_key(now)?;
            Ok(ring.current.kid().to_owned())
        })
        .await
    }

    async fn adopt_keys(
        &self,
        resource_id: ResourceId,
        keys: Option<TransferredKeys>,
        now: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        self.with_files(move |dir| dir.adopt(resource_id, keys, now))
            .await
    }

    async fn ensure_signing_alg(
        &self,
        alg: SigningAlg,
        now: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        self.with_files(move |dir| dir.ensure_signing_alg(alg, now).map(drop))
            .await
    }
}
