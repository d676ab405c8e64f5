//! Teams extension assignments in PostgreSQL, so every node of a cluster sees the same ones.

use super::assignments::{AssignmentStore, TeamsExtensionAssignment};
use super::postgres::{bounded, unavailable, PostgresStore};
use super::StoreError;

#[async_trait::async_trait]
impl AssignmentStore for PostgresStore {
    async fn get_teams_extension_assignment(
        &self,
        tenant_id: String,
        object_id: String,
    ) -> Result<Option<TeamsExtensionAssignment>, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(
                    "SELECT principal_type, client_ids FROM teams_extension_assignments \
                     WHERE tenant_id = $1 AND object_id = $2",
                )
                .await
                .map_err(unavailable)?;
            let row = client
                .query_opt(&statement, &[&tenant_id, &object_id])
                .await
                .map_err(unavailable)?;
            Ok(row.map(|row| TeamsExtensionAssignment {
                tenant_id: tenant_id.clone(),
                object_id: object_id.clone(),
                principal_type: row.get(0),
                client_ids: row.get(1),
            }))
        })
        .await
    }

    async fn put_teams_extension_assignment(
        &self,
        a: TeamsExtensionAssignment,
    ) -> Result<bool, StoreError> {
        bounded(async {
            let client = self.client().await?;
            // `xmax = 0` only for a freshly inserted row: tells a create from a replace in one
            // statement, without a race between two nodes.
            let statement = client
                .prepare_cached(
                    "INSERT INTO teams_extension_assignments \
                     (tenant_id, object_id, principal_type, client_ids) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (tenant_id, object_id) DO UPDATE \
                     SET principal_type = EXCLUDED.principal_type, client_ids = EXCLUDED.client_ids \
                     RETURNING (xmax = 0)",
                )
                .await
                .map_err(unavailable)?;
            let row = client
                .query_one(
                    &statement,
                    &[&a.tenant_id, &a.object_id, &a.principal_type, &a.client_ids],
                )
                .await
                .map_err(unavailable)?;
            Ok(row.get(0))
        })
        .await
    }

    async fn delete_teams_extension_assignment(
        &self,
        tenant_id: String,
        object_id: String,
    ) -> Result<bool, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(
                    "DELETE FROM teams_extension_assignments WHERE tenant_id = $1 AND object_id = $2",
                )
                .await
                .map_err(unavailable)?;
            let n = client
                .execute(&statement, &[&tenant_id, &object_id])
                .await
                .map_err(unavailable)?;
            Ok(n > 0)
        })
        .await
    }
}
