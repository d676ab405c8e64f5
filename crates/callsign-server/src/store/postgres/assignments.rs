//! Teams extension and Entra assignments in PostgreSQL, so every node of a cluster sees the same ones.

use super::{audit, bounded, unavailable, PostgresBackend};
use crate::store::assignments::PrincipalType;
use crate::store::{
    AssignmentStore, AuditRecord, EntraAssignment, StoreError, TeamsExtensionAssignment,
};
use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

pub(super) const ENTRA_SELECT: &str =
    "SELECT object_id, tenant_id, principal_type, client_ids FROM entra_assignments";

/// Creates or replaces a Teams extension assignment; answers whether it was created (`xmax = 0`
/// only for a freshly inserted row: a create tells itself from a replace in one statement,
/// without a race between two nodes).
pub(super) const TEAMS_UPSERT: &str = "INSERT INTO teams_extension_assignments \
     (tenant_id, object_id, principal_type, client_ids) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (tenant_id, object_id) DO UPDATE \
     SET principal_type = EXCLUDED.principal_type, client_ids = EXCLUDED.client_ids \
     RETURNING (xmax = 0)";

pub(super) const ENTRA_UPSERT: &str = "INSERT INTO entra_assignments \
     (object_id, tenant_id, principal_type, client_ids) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (object_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, \
     principal_type = EXCLUDED.principal_type, client_ids = EXCLUDED.client_ids \
     RETURNING (xmax = 0)";

/// A principal type is stored as its wire name (unknown ones as they came).
impl ToSql for PrincipalType {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.as_str().to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// The parameters of [`TEAMS_UPSERT`] for `a`.
pub(super) fn teams_params(a: &TeamsExtensionAssignment) -> [&(dyn ToSql + Sync); 4] {
    [&a.tenant_id, &a.object_id, &a.principal_type, &a.client_ids]
}

/// The parameters of [`ENTRA_UPSERT`] for `a`.
pub(super) fn entra_params(a: &EntraAssignment) -> [&(dyn ToSql + Sync); 4] {
    [&a.object_id, &a.tenant_id, &a.principal_type, &a.client_ids]
}

pub(super) fn entra_row(row: &tokio_postgres::Row) -> EntraAssignment {
    EntraAssignment {
        object_id: row.get(0),
        tenant_id: row.get(1),
        principal_type: PrincipalType::parse(row.get(2)),
        client_ids: row.get(3),
    }
}

#[async_trait::async_trait]
impl AssignmentStore for PostgresBackend {
    async fn get_teams_extension_assignment(
        &self,
        tenant_id: String,
        object_id: String,
    ) -> Result<Option<TeamsExtensionAssignment>, StoreError> {
        let row = self
            .query_opt(
                "SELECT principal_type, client_ids FROM teams_extension_assignments \
                 WHERE tenant_id = $1 AND object_id = $2",
                &[&tenant_id, &object_id],
            )
            .await?;
        Ok(row.map(|row| TeamsExtensionAssignment {
            tenant_id,
            object_id,
            principal_type: PrincipalType::parse(row.get(0)),
            client_ids: row.get(1),
        }))
    }

    async fn put_teams_extension_assignment_with_events(
        &self,
        a: TeamsExtensionAssignment,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let row = self
            .query_opt_with_events(TEAMS_UPSERT, &teams_params(&a), &events)
            .await?;
        Ok(row.is_some_and(|row| row.get(0)))
    }

    async fn delete_teams_extension_assignment_with_events(
        &self,
        tenant_id: String,
        object_id: String,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let deleted = self
            .query_opt_with_events(
                "DELETE FROM teams_extension_assignments WHERE tenant_id = $1 AND object_id = $2 \
                 RETURNING 1",
                &[&tenant_id, &object_id],
                &events,
            )
            .await?;
        Ok(deleted.is_some())
    }

    async fn get_entra_assignment(
        &self,
        object_id: String,
    ) -> Result<Option<EntraAssignment>, StoreError> {
        let row = self
            .query_opt(
                &format!("{ENTRA_SELECT} WHERE object_id = $1"),
                &[&object_id],
            )
            .await?;
        Ok(row.as_ref().map(entra_row))
    }

    async fn find_entra_assignments(
        &self,
        object_ids: Vec<String>,
    ) -> Result<Vec<EntraAssignment>, StoreError> {
        let rows = self
            .query(
                &format!("{ENTRA_SELECT} WHERE object_id = ANY($1) ORDER BY object_id"),
                &[&object_ids],
            )
            .await?;
        Ok(rows.iter().map(entra_row).collect())
    }

    async fn list_entra_assignments(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<EntraAssignment>, StoreError> {
        let rows = self
            .query(
                &format!(
                    "{ENTRA_SELECT} WHERE $1::TEXT IS NULL OR object_id > $1 \
                     ORDER BY object_id LIMIT $2"
                ),
                &[&after, &i64::from(limit)],
            )
            .await?;
        Ok(rows.iter().map(entra_row).collect())
    }

    async fn put_entra_assignment_with_events(
        &self,
        a: EntraAssignment,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let row = self
            .query_opt_with_events(ENTRA_UPSERT, &entra_params(&a), &events)
            .await?;
        Ok(row.is_some_and(|row| row.get(0)))
    }

    async fn update_entra_assignments_with_events(
        &self,
        put: Vec<EntraAssignment>,
        remove: Vec<String>,
        events: Vec<AuditRecord>,
    ) -> Result<(), StoreError> {
        bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(unavailable)?;
            let upsert = tx.prepare_cached(ENTRA_UPSERT).await.map_err(unavailable)?;
            for a in &put {
                tx.query_one(&upsert, &entra_params(a))
                    .await
                    .map_err(unavailable)?;
            }
            tx.execute(
                "DELETE FROM entra_assignments WHERE object_id = ANY($1)",
                &[&remove],
            )
            .await
            .map_err(unavailable)?;
            audit::append_in(&tx, &events).await?;
            tx.commit().await.map_err(unavailable)
        })
        .await
    }

    async fn delete_entra_assignment_with_events(
        &self,
        object_id: String,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let deleted = self
            .query_opt_with_events(
                "DELETE FROM entra_assignments WHERE object_id = $1 RETURNING 1",
                &[&object_id],
                &events,
            )
            .await?;
        Ok(deleted.is_some())
    }
}
