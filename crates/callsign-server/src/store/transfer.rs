//! Moving a deployment's data between stores: `callsign export` / `import` (a data dir to a
//! cluster, say) and `serve --seed` (fixtures for CI). Keys move through
//! [`super::KeyStore::adopt_keys`]; this is everything else.

use super::{EntraAssignment, IdentityRecord, StoreError, TeamsExtensionAssignment};

/// Everything a store holds besides its keys. Deleted identities are included: their ids stay
/// retired and their tokens invalid wherever they go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every identity, live or deleted.
    pub identities: Vec<IdentityRecord>,
    /// Every Teams extension assignment.
    pub teams_extension: Vec<TeamsExtensionAssignment>,
    /// Every Entra assignment.
    pub entra: Vec<EntraAssignment>,
}

impl Snapshot {
    /// Whether it holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty() && self.teams_extension.is_empty() && self.entra.is_empty()
    }
}

/// What an import added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// Identities the store did not have yet.
    pub identities: usize,
    /// Assignments created or replaced.
    pub assignments: usize,
}

/// Bulk reading and writing of a store's data, in one transaction where the backend has them.
#[async_trait::async_trait]
pub trait TransferStore: Send + Sync + 'static {
    /// Everything but the keys.
    async fn export_data(&self) -> Result<Snapshot, StoreError>;

    /// Adds the identities the store does not have yet (by id: importing the same file twice
    /// changes nothing) and creates or replaces the assignments. A live identity of the store
    /// holding a custom id that the snapshot gives another identity is an error, and then
    /// nothing is imported.
    async fn import_data(&self, snapshot: Snapshot) -> Result<Imported, StoreError>;
}
