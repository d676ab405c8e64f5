//! Bulk export and import of the in-memory store: all or nothing under its one lock.

use super::MemoryBackend;
use crate::store::{Imported, Snapshot, StoreError, TransferStore};

#[async_trait::async_trait]
impl TransferStore for MemoryBackend {
    async fn export_data(&self) -> Result<Snapshot, StoreError> {
        let state = self.state();
        Ok(Snapshot {
            identities: state.identities.values().cloned().collect(),
            teams_extension: state.teams_extension.values().cloned().collect(),
            entra: state.entra.values().cloned().collect(),
        })
    }

    async fn import_data(&self, snapshot: Snapshot) -> Result<Imported, StoreError> {
        let mut state = self.state();
        for record in snapshot.identities.iter().filter(|r| r.is_live()) {
            let Some(custom_id) = &record.custom_id else {
                continue;
            };
            if state
                .custom_ids
                .get(custom_id)
                .is_some_and(|holder| *holder != record.id)
            {
                return Err(StoreError::CustomIdTaken(custom_id.clone()));
            }
        }
        let mut imported = Imported::default();
        for record in snapshot.identities {
            if state.identities.contains_key(&record.id) {
                continue;
            }
            if let (Some(custom_id), true) = (&record.custom_id, record.is_live()) {
                state
                    .custom_ids
                    .insert(custom_id.clone(), record.id.clone());
            }
            state.identities.insert(record.id.clone(), record);
            imported.identities += 1;
        }
        imported.assignments = snapshot.teams_extension.len() + snapshot.entra.len();
        for a in snapshot.teams_extension {
            let key = (a.tenant_id.clone(), a.object_id.clone());
            state.teams_extension.insert(key, a);
        }
        for a in snapshot.entra {
            state.entra.insert(a.object_id.clone(), a);
        }
        Ok(imported)
    }
}
