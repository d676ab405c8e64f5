//! Bulk export and import of the data dir's database.

use super::assignments::{entra_row, put_entra, put_teams, ENTRA_COLUMNS};
use super::identities::{read_record, with_pending_stamp, COLUMNS};
use super::token_cache::TokenCache;
use super::SqliteBackend;
use crate::store::assignments::PrincipalType;
use crate::store::{Imported, Snapshot, StoreError, TeamsExtensionAssignment, TransferStore};
use rusqlite::{params, Connection, OptionalExtension};

/// Why an import stopped before writing anything.
enum Refusal {
    CustomIdTaken(String),
}

/// The first custom id of `snapshot` that a live identity of the store holds under another id.
fn taken_custom_id(conn: &Connection, snapshot: &Snapshot) -> rusqlite::Result<Option<String>> {
    let mut holder = conn.prepare_cached(
        "SELECT id FROM identities WHERE custom_id = ?1 AND deleted_at_us IS NULL",
    )?;
    for record in snapshot.identities.iter().filter(|r| r.is_live()) {
        let Some(custom_id) = &record.custom_id else {
            continue;
        };
        let id: Option<String> = holder.query_row([custom_id], |r| r.get(0)).optional()?;
        if id.is_some_and(|id| id != record.id) {
            return Ok(Some(custom_id.clone()));
        }
    }
    Ok(None)
}

fn import(conn: &Connection, snapshot: &Snapshot) -> rusqlite::Result<Result<Imported, Refusal>> {
    if let Some(custom_id) = taken_custom_id(conn, snapshot)? {
        return Ok(Err(Refusal::CustomIdTaken(custom_id)));
    }
    let mut imported = Imported::default();
    let mut insert = conn.prepare_cached(
        "INSERT INTO identities (id, custom_id, created_at_us, last_token_issued_at_us, \
         revoked_before_us, deleted_at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (id) DO NOTHING",
    )?;
    for r in &snapshot.identities {
        imported.identities += insert.execute(params![
            r.id,
            r.custom_id,
            r.created_at_us,
            r.last_token_issued_at_us,
            r.revoked_before_us,
            r.deleted_at_us
        ])?;
    }
    for a in &snapshot.teams_extension {
        put_teams(conn, a)?;
    }
    for a in &snapshot.entra {
        put_entra(conn, a)?;
    }
    imported.assignments = snapshot.teams_extension.len() + snapshot.entra.len();
    Ok(Ok(imported))
}

#[async_trait::async_trait]
impl TransferStore for SqliteBackend {
    async fn export_data(&self) -> Result<Snapshot, StoreError> {
        let stamps = self.inner.stamps.clone();
        self.read(move |conn| {
            let identities = conn
                .prepare(&format!("SELECT {COLUMNS} FROM identities ORDER BY id"))?
                .query_map([], read_record)?
                .map(|r| r.map(|r| with_pending_stamp(&stamps, r)))
                .collect::<rusqlite::Result<_>>()?;
            let teams_extension = conn
                .prepare(
                    "SELECT tenant_id, object_id, principal_type, client_ids \
                     FROM teams_extension_assignments ORDER BY tenant_id, object_id",
                )?
                .query_map([], |row| {
                    let client_ids: Option<String> = row.get(3)?;
                    Ok(TeamsExtensionAssignment {
                        tenant_id: row.get(0)?,
                        object_id: row.get(1)?,
                        principal_type: PrincipalType::parse(&row.get::<_, String>(2)?),
                        client_ids: client_ids.and_then(|c| serde_json::from_str(&c).ok()),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let entra = conn
                .prepare(&format!(
                    "SELECT {ENTRA_COLUMNS} FROM entra_assignments ORDER BY object_id"
                ))?
                .query_map([], entra_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Snapshot {
                identities,
                teams_extension,
                entra,
            })
        })
        .await
    }

    async fn import_data(&self, snapshot: Snapshot) -> Result<Imported, StoreError> {
        // Import only adds rows (nobody caches an identity that does not exist), but it is rare
        // enough to forget every cached state rather than reason about each.
        let imported = self.write_then(move |conn| import(conn, &snapshot), TokenCache::clear);
        match imported.await? {
            Ok(imported) => Ok(imported),
            Err(Refusal::CustomIdTaken(custom_id)) => Err(StoreError::CustomIdTaken(custom_id)),
        }
    }
}
