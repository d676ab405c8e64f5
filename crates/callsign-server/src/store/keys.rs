//! The keys of a resource — its id, the two access keys and the signing-key ring — and the
//! contract every backend keeps for them. The server keeps a live copy ([`crate::keys::LiveKeys`])
//! and reloads it whenever [`KeyStore::key_version`] moves.

use crate::domain::ids::ResourceId;
use crate::keys::{KeyError, KeyKind, ResourceKeys, SigningAlg, TransferredKeys};
use callsign_common::AccessKey;
use chrono::{DateTime, Utc};

/// Changes whenever the stored keys change (a regeneration, a rotation, from any process).
/// Only equality means anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyVersion(pub(crate) u64);

/// Where a resource's keys live. Changes are serialised with every other process using the same
/// storage (other nodes, the CLI).
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Creates the resource if the storage holds none (a first start). `seed` becomes the primary
    /// access key of a new resource; for an existing one it must equal the stored primary key.
    async fn init_keys(&self, seed: Option<AccessKey>, now: DateTime<Utc>) -> Result<(), KeyError>;

    /// The keys in force: retired signing keys past their retention are left out.
    async fn load_keys(&self, now: DateTime<Utc>) -> Result<ResourceKeys, KeyError>;

    /// The current version of the keys; cheap enough to poll every second.
    async fn key_version(&self) -> Result<KeyVersion, KeyError>;

    /// Replaces one access key; the other keeps working.
    async fn regenerate_access_key(&self, which: KeyKind) -> Result<(), KeyError>;

    /// Makes a new signing key (of the current key's algorithm) current; the old one stays
    /// published for [`crate::keys::signing::RETIRED_KEY_RETENTION`]. Returns the new `kid`.
    async fn rotate_signing_key(&self, now: DateTime<Utc>) -> Result<String, KeyError>;

    /// Makes storage that holds no resource yet that of `resource_id`, with `keys` when given
    /// (fresh ones otherwise), so that imported identities are its own and, with keys, their
    /// tokens stay valid. Storage that already holds `resource_id` is left as it is; storage
    /// holding another resource is an error ([`KeyError::OtherResource`]).
    async fn adopt_keys(
        &self,
        resource_id: ResourceId,
        keys: Option<TransferredKeys>,
        now: DateTime<Utc>,
    ) -> Result<(), KeyError>;

    /// Makes a new `alg` key current unless the current key already uses `alg`.
    async fn ensure_signing_alg(&self, alg: SigningAlg, now: DateTime<Utc>)
        -> Result<(), KeyError>;
}
