//! Identities in memory.

use super::MemoryBackend;
use crate::store::{AuditRecord, IdentityRecord, IdentityStore, StoreError};
use std::ops::Bound;

impl MemoryBackend {
    /// At most `limit` identities that `keep`, by id, after `after` (keyset paging).
    fn page(
        &self,
        after: Option<String>,
        limit: u32,
        keep: impl Fn(&IdentityRecord) -> bool,
    ) -> Vec<IdentityRecord> {
        let start = match after {
            Some(after) => Bound::Excluded(after),
            None => Bound::Unbounded,
        };
        self.state()
            .identities
            .range((start, Bound::Unbounded))
            .map(|(_, record)| record)
            .filter(|r| keep(r))
            .take(limit as usize)
            .cloned()
            .collect()
    }
}

#[async_trait::async_trait]
impl IdentityStore for MemoryBackend {
    async fn create_identity_with_events(
        &self,
        record: IdentityRecord,
        events: Vec<AuditRecord>,
    ) -> Result<IdentityRecord, StoreError> {
        let mut state = self.state();
        if let Some(custom_id) = &record.custom_id {
            if let Some(existing) = state.custom_ids.get(custom_id) {
                return Ok(state.identities[existing].clone());
            }
            state
                .custom_ids
                .insert(custom_id.clone(), record.id.clone());
        }
        state.identities.insert(record.id.clone(), record.clone());
        state.append(events);
        Ok(record)
    }

    async fn get_identity(&self, id: String) -> Result<Option<IdentityRecord>, StoreError> {
        Ok(self.state().identities.get(&id).cloned())
    }

    async fn record_token_issued(&self, id: String, at_us: i64) -> Result<(), StoreError> {
        if let Some(record) = self.state().identities.get_mut(&id) {
            let last = record.last_token_issued_at_us.unwrap_or(i64::MIN);
            record.last_token_issued_at_us = Some(last.max(at_us));
        }
        Ok(())
    }

    async fn revoke_tokens_with_events(
        &self,
        id: String,
        before_us: i64,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(record) = state.identities.get_mut(&id).filter(|r| r.is_live()) else {
            return Ok(false);
        };
        let cut = [
            record.revoked_before_us.unwrap_or(0),
            before_us,
            record.last_token_issued_at_us.unwrap_or(0),
        ];
        record.revoked_before_us = cut.into_iter().max();
        let stamp = record.revoked_before_us.unwrap_or(before_us);
        state.append(
            events
                .into_iter()
                .map(|e| e.with_detail("revokedBeforeMicros", stamp))
                .collect(),
        );
        Ok(true)
    }

    async fn list_identities(
        &self,
        after: Option<String>,
        limit: u32,
        custom_id: Option<String>,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        Ok(self.page(after, limit, |r| {
            r.is_live() && (custom_id.is_none() || r.custom_id == custom_id)
        }))
    }

    async fn list_revocations(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        Ok(self.page(after, limit, |r| {
            r.revoked_before_us.is_some() || !r.is_live()
        }))
    }

    async fn reset_with_events(&self, events: Vec<AuditRecord>) -> Result<(), StoreError> {
        let mut state = self.state();
        state.identities.clear();
        state.custom_ids.clear();
        state.teams_extension.clear();
        state.entra.clear();
        state.append(events);
        self.storage.windows.clear();
        Ok(())
    }

    async fn delete_identity_with_events(
        &self,
        id: String,
        at_us: i64,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(record) = state.identities.get_mut(&id).filter(|r| r.is_live()) else {
            return Ok(false);
        };
        record.deleted_at_us = Some(at_us);
        if let Some(custom_id) = record.custom_id.clone() {
            state.custom_ids.remove(&custom_id);
        }
        state.append(
            events
                .into_iter()
                .map(|e| e.with_detail("deletedAtMicros", at_us))
                .collect(),
        );
        Ok(true)
    }
}
