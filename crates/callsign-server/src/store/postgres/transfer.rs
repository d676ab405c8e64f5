//! Bulk export and import of a cluster's database, the import in one transaction.

use super::assignments::{
    entra_params, entra_row, teams_params, ENTRA_SELECT, ENTRA_UPSERT, TEAMS_UPSERT,
};
use super::identities::{read_record, COLUMNS};
use super::{bounded_for, unavailable, PostgresBackend};
use crate::store::assignments::PrincipalType;
use crate::store::{Imported, Snapshot, StoreError, TeamsExtensionAssignment, TransferStore};
use deadpool_postgres::Transaction;

/// The first custom id of `snapshot` that a live identity of the database holds under another id.
async fn taken_custom_id(
    tx: &Transaction<'_>,
    snapshot: &Snapshot,
) -> Result<Option<String>, StoreError> {
    let holder = tx
        .prepare_cached("SELECT id FROM identities WHERE custom_id = $1 AND deleted_at_us IS NULL")
        .await
        .map_err(unavailable)?;
    for record in snapshot.identities.iter().filter(|r| r.is_live()) {
        let Some(custom_id) = &record.custom_id else {
            continue;
        };
        let row = tx
            .query_opt(&holder, &[custom_id])
            .await
            .map_err(unavailable)?;
        if row.is_some_and(|row| row.get::<_, String>(0) != record.id) {
            return Ok(Some(custom_id.clone()));
        }
    }
    Ok(None)
}

async fn import(tx: &Transaction<'_>, snapshot: &Snapshot) -> Result<Imported, StoreError> {
    if let Some(custom_id) = taken_custom_id(tx, snapshot).await? {
        return Err(StoreError::CustomIdTaken(custom_id));
    }
    let mut imported = Imported::default();
    let insert = tx
        .prepare_cached(
            "INSERT INTO identities (id, custom_id, created_at_us, last_token_issued_at_us, \
             revoked_before_us, deleted_at_us) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO NOTHING",
        )
        .await
        .map_err(unavailable)?;
    for r in &snapshot.identities {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &r.id,
            &r.custom_id,
            &r.created_at_us,
            &r.last_token_issued_at_us,
            &r.revoked_before_us,
            &r.deleted_at_us,
        ];
        imported.identities += tx.execute(&insert, &params).await.map_err(unavailable)? as usize;
    }
    let teams = tx.prepare_cached(TEAMS_UPSERT).await.map_err(unavailable)?;
    for a in &snapshot.teams_extension {
        tx.query_one(&teams, &teams_params(a))
            .await
            .map_err(unavailable)?;
    }
    let entra = tx.prepare_cached(ENTRA_UPSERT).await.map_err(unavailable)?;
    for a in &snapshot.entra {
        tx.query_one(&entra, &entra_params(a))
            .await
            .map_err(unavailable)?;
    }
    imported.assignments = snapshot.teams_extension.len() + snapshot.entra.len();
    Ok(imported)
}

#[async_trait::async_trait]
impl TransferStore for PostgresBackend {
    async fn export_data(&self) -> Result<Snapshot, StoreError> {
        let identities = self
            .query(
                &format!("SELECT {COLUMNS} FROM identities ORDER BY id"),
                &[],
            )
            .await?;
        let teams = self
            .query(
                "SELECT tenant_id, object_id, principal_type, client_ids \
                 FROM teams_extension_assignments ORDER BY tenant_id, object_id",
                &[],
            )
            .await?;
        let entra = self
            .query(&format!("{ENTRA_SELECT} ORDER BY object_id"), &[])
            .await?;
        Ok(Snapshot {
            identities: identities.iter().map(read_record).collect(),
            teams_extension: teams
                .iter()
                .map(|row| TeamsExtensionAssignment {
                    tenant_id: row.get(0),
                    object_id: row.get(1),
                    principal_type: PrincipalType::parse(row.get(2)),
                    client_ids: row.get(3),
                })
                .collect(),
            entra: entra.iter().map(entra_row).collect(),
        })
    }

    async fn import_data(&self, snapshot: Snapshot) -> Result<Imported, StoreError> {
        // A large import takes longer than one operation may: one bound per thousand identities.
        let operations = 1 + snapshot.identities.len() as u32 / 1000;
        bounded_for(operations, async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(unavailable)?;
            let imported = import(&tx, &snapshot).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok(imported)
        })
        .await
    }
}
