//! Teams extension and Entra assignments in memory, kept in key order like the databases' indexes.

use super::MemoryBackend;
use crate::store::{
    AssignmentStore, AuditRecord, EntraAssignment, StoreError, TeamsExtensionAssignment,
};

#[async_trait::async_trait]
impl AssignmentStore for MemoryBackend {
    async fn get_teams_extension_assignment(
        &self,
        tenant_id: String,
        object_id: String,
    ) -> Result<Option<TeamsExtensionAssignment>, StoreError> {
        Ok(self
            .state()
            .teams_extension
            .get(&(tenant_id, object_id))
            .cloned())
    }

    async fn put_teams_extension_assignment_with_events(
        &self,
        a: TeamsExtensionAssignment,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let key = (a.tenant_id.clone(), a.object_id.clone());
        let mut state = self.state();
        let created = state.teams_extension.insert(key, a).is_none();
        state.append(events);
        Ok(created)
    }

    async fn delete_teams_extension_assignment_with_events(
        &self,
        tenant_id: String,
        object_id: String,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let key = (tenant_id, object_id);
        let mut state = self.state();
        let deleted = state.teams_extension.remove(&key).is_some();
        if deleted {
            state.append(events);
        }
        Ok(deleted)
    }

    async fn get_entra_assignment(
        &self,
        object_id: String,
    ) -> Result<Option<EntraAssignment>, StoreError> {
        Ok(self.state().entra.get(&object_id).cloned())
    }

    async fn find_entra_assignments(
        &self,
        object_ids: Vec<String>,
    ) -> Result<Vec<EntraAssignment>, StoreError> {
        let state = self.state();
        let mut found: Vec<EntraAssignment> = object_ids
            .iter()
            .filter_map(|id| state.entra.get(id).cloned())
            .collect();
        found.sort_by(|a, b| a.object_id.cmp(&b.object_id));
        found.dedup();
        Ok(found)
    }

    async fn list_entra_assignments(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<EntraAssignment>, StoreError> {
        let state = self.state();
        let start = match &after {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Unbounded,
        };
        Ok(state
            .entra
            .range((start, std::ops::Bound::Unbounded))
            .take(limit as usize)
            .map(|(_, a)| a.clone())
            .collect())
    }

    async fn put_entra_assignment_with_events(
        &self,
        a: EntraAssignment,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let created = state.entra.insert(a.object_id.clone(), a).is_none();
        state.append(events);
        Ok(created)
    }

    async fn update_entra_assignments_with_events(
        &self,
        put: Vec<EntraAssignment>,
        remove: Vec<String>,
        events: Vec<AuditRecord>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        for a in put {
            state.entra.insert(a.object_id.clone(), a);
        }
        for id in &remove {
            state.entra.remove(id);
        }
        state.append(events);
        Ok(())
    }

    async fn delete_entra_assignment_with_events(
        &self,
        object_id: String,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let deleted = state.entra.remove(&object_id).is_some();
        if deleted {
            state.append(events);
        }
        Ok(deleted)
    }
}
