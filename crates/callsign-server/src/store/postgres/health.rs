//! Whether the cluster's database takes writes now.

use super::{bounded, unavailable, PostgresBackend};
use crate::store::{HealthStore, StoreError};

/// Ready when a pooled connection answers within the operation bound and the server is a primary
/// (a standby in recovery refuses writes).
#[async_trait::async_trait]
impl HealthStore for PostgresBackend {
    async fn check_writable(&self) -> Result<(), StoreError> {
        let in_recovery: bool = bounded(async {
            let client = self.client().await?;
            let row = client
                .query_one("SELECT pg_is_in_recovery()", &[])
                .await
                .map_err(unavailable)?;
            Ok(row.get(0))
        })
        .await?;
        if in_recovery {
            return Err(StoreError::Unavailable(
                "PostgreSQL is a read-only standby".into(),
            ));
        }
        Ok(())
    }
}
