//! Teams extension and Entra assignments in the data dir's SQLite file, read on the reader pool
//! and written through the group-commit writer like identities. Client id lists are stored as
//! JSON arrays.

use super::audit::append;
use super::SqliteBackend;
use crate::store::assignments::PrincipalType;
use crate::store::{
    AssignmentStore, AuditRecord, EntraAssignment, StoreError, TeamsExtensionAssignment,
};
use rusqlite::{params, Connection, OptionalExtension};

pub(super) const ENTRA_COLUMNS: &str = "object_id, tenant_id, principal_type, client_ids";

pub(super) fn entra_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EntraAssignment> {
    let client_ids: String = row.get(3)?;
    Ok(EntraAssignment {
        object_id: row.get(0)?,
        tenant_id: row.get(1)?,
        principal_type: PrincipalType::parse(&row.get::<_, String>(2)?),
        // Written by this module as a JSON array; unreadable counts as empty.
        client_ids: serde_json::from_str(&client_ids).unwrap_or_default(),
    })
}

pub(super) fn json_list(ids: &[String]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

/// Upserts `a`; true when it was created.
pub(super) fn put_teams(conn: &Connection, a: &TeamsExtensionAssignment) -> rusqlite::Result<bool> {
    let existed = conn
        .prepare_cached(
            "SELECT 1 FROM teams_extension_assignments WHERE tenant_id = ?1 AND object_id = ?2",
        )?
        .query_row(params![a.tenant_id, a.object_id], |_| Ok(()))
        .optional()?
        .is_some();
    conn.prepare_cached(
        "INSERT OR REPLACE INTO teams_extension_assignments \
         (tenant_id, object_id, principal_type, client_ids) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        a.tenant_id,
        a.object_id,
        a.principal_type.as_str(),
        a.client_ids.as_deref().map(json_list)
    ])?;
    Ok(!existed)
}

/// Upserts `a`; true when it was created.
pub(super) fn put_entra(conn: &Connection, a: &EntraAssignment) -> rusqlite::Result<bool> {
    let existed = conn
        .prepare_cached("SELECT 1 FROM entra_assignments WHERE object_id = ?1")?
        .query_row(params![a.object_id], |_| Ok(()))
        .optional()?
        .is_some();
    conn.prepare_cached(
        "INSERT OR REPLACE INTO entra_assignments \
         (object_id, tenant_id, principal_type, client_ids) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        a.object_id,
        a.tenant_id,
        a.principal_type.as_str(),
        json_list(&a.client_ids)
    ])?;
    Ok(!existed)
}

fn delete_entra(conn: &Connection, object_id: &str) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM entra_assignments WHERE object_id = ?1")?
        .execute(params![object_id])?;
    Ok(n > 0)
}

#[async_trait::async_trait]
impl AssignmentStore for SqliteBackend {
    async fn get_teams_extension_assignment(
        &self,
        tenant_id: String,
        object_id: String,
    ) -> Result<Option<TeamsExtensionAssignment>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT principal_type, client_ids FROM teams_extension_assignments \
                 WHERE tenant_id = ?1 AND object_id = ?2",
            )?
            .query_row(params![tenant_id, object_id], |row| {
                let client_ids: Option<String> = row.get(1)?;
                Ok(TeamsExtensionAssignment {
                    tenant_id: tenant_id.clone(),
                    object_id: object_id.clone(),
                    principal_type: PrincipalType::parse(&row.get::<_, String>(0)?),
                    // Written by this module as a JSON array; unreadable counts as absent.
                    client_ids: client_ids.and_then(|c| serde_json::from_str(&c).ok()),
                })
            })
            .optional()
        })
        .await
    }

    async fn put_teams_extension_assignment_with_events(
        &self,
        a: TeamsExtensionAssignment,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let created = put_teams(conn, &a)?;
            append(conn, &events)?;
            Ok(created)
        })
        .await
    }

    async fn delete_teams_extension_assignment_with_events(
        &self,
        tenant_id: String,
        object_id: String,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "DELETE FROM teams_extension_assignments \
                     WHERE tenant_id = ?1 AND object_id = ?2",
                )?
                .execute(params![tenant_id, object_id])?;
            if n > 0 {
                append(conn, &events)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn get_entra_assignment(
        &self,
        object_id: String,
    ) -> Result<Option<EntraAssignment>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {ENTRA_COLUMNS} FROM entra_assignments WHERE object_id = ?1"
            ))?
            .query_row(params![object_id], entra_row)
            .optional()
        })
        .await
    }

    async fn find_entra_assignments(
        &self,
        object_ids: Vec<String>,
    ) -> Result<Vec<EntraAssignment>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {ENTRA_COLUMNS} FROM entra_assignments WHERE object_id = ?1"
            ))?;
            let mut found = Vec::new();
            for id in &object_ids {
                if let Some(a) = statement.query_row(params![id], entra_row).optional()? {
                    found.push(a);
                }
            }
            found.sort_by(|a, b| a.object_id.cmp(&b.object_id));
            Ok(found)
        })
        .await
    }

    async fn list_entra_assignments(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<EntraAssignment>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {ENTRA_COLUMNS} FROM entra_assignments \
                 WHERE ?1 IS NULL OR object_id > ?1 ORDER BY object_id LIMIT ?2"
            ))?;
            let rows = statement.query_map(params![after, limit], entra_row)?;
            rows.collect()
        })
        .await
    }

    async fn put_entra_assignment_with_events(
        &self,
        a: EntraAssignment,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let created = put_entra(conn, &a)?;
            append(conn, &events)?;
            Ok(created)
        })
        .await
    }

    async fn update_entra_assignments_with_events(
        &self,
        put: Vec<EntraAssignment>,
        remove: Vec<String>,
        events: Vec<AuditRecord>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            for a in &put {
                put_entra(conn, a)?;
            }
            for id in &remove {
                delete_entra(conn, id)?;
            }
            append(conn, &events).map(drop)
        })
        .await
    }

    async fn delete_entra_assignment_with_events(
        &self,
        object_id: String,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let deleted = delete_entra(conn, &object_id)?;
            if deleted {
                append(conn, &events)?;
            }
            Ok(deleted)
        })
        .await
    }
}
