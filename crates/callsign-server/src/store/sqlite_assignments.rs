//! Assignments in the SQLite database file, on a connection of their own (WAL lets it share the
//! file with the identity store) and a table created on open.

use super::assignments::{AssignmentStore, EntraAssignment, TeamsExtensionAssignment};
use super::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Assignments in a SQLite database file.
#[derive(Clone)]
pub struct SqliteAssignmentStore {
    conn: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = r#"
    CREATE TABLE IF NOT EXISTS teams_extension_assignments (
        tenant_id TEXT NOT NULL,
        object_id TEXT NOT NULL,
        principal_type TEXT NOT NULL,
        client_ids TEXT,
        PRIMARY KEY (tenant_id, object_id)
    ) STRICT;
    CREATE TABLE IF NOT EXISTS entra_assignments (
        object_id TEXT PRIMARY KEY NOT NULL,
        tenant_id TEXT NOT NULL,
        principal_type TEXT NOT NULL,
        client_ids TEXT NOT NULL
    ) STRICT;
"#;

impl SqliteAssignmentStore {
    /// Opens the database at `path` and creates the assignment tables if needed.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(unavailable)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
        )
        .map_err(unavailable)?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
        .map_err(unavailable)
    }
}

const ENTRA_COLUMNS: &str = "object_id, tenant_id, principal_type, client_ids";

fn entra_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EntraAssignment> {
    let client_ids: String = row.get(3)?;
    Ok(EntraAssignment {
        object_id: row.get(0)?,
        tenant_id: row.get(1)?,
        principal_type: row.get(2)?,
        // Written by this module as a JSON array; unreadable counts as empty.
        client_ids: serde_json::from_str(&client_ids).unwrap_or_default(),
    })
}

fn put_entra(tx: &rusqlite::Transaction<'_>, a: &EntraAssignment) -> rusqlite::Result<bool> {
    let existed = tx
        .query_row(
            "SELECT 1 FROM entra_assignments WHERE object_id = ?1",
            params![a.object_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    let client_ids = serde_json::Value::from(a.client_ids.clone()).to_string();
    tx.execute(
        "INSERT OR REPLACE INTO entra_assignments \
         (object_id, tenant_id, principal_type, client_ids) VALUES (?1, ?2, ?3, ?4)",
        params![a.object_id, a.tenant_id, a.principal_type, client_ids],
    )?;
    Ok(!existed)
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

#[async_trait::async_trait]
impl AssignmentStore for SqliteAssignmentStore {
    async fn get_teams_extension_assignment(
        &self,
        tenant_id: String,
        object_id: String,
    ) -> Result<Option<TeamsExtensionAssignment>, StoreError> {
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT principal_type, client_ids FROM teams_extension_assignments \
                 WHERE tenant_id = ?1 AND object_id = ?2",
                params![tenant_id, object_id],
                |row| {
                    let client_ids: Option<String> = row.get(1)?;
                    Ok(TeamsExtensionAssignment {
                        tenant_id: tenant_id.clone(),
                        object_id: object_id.clone(),
                        principal_type: row.get(0)?,
                        // Written by this module as a JSON array; unreadable counts as absent.
                        client_ids: client_ids.and_then(|c| serde_json::from_str(&c).ok()),
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn put_teams_extension_assignment(
        &self,
        a: TeamsExtensionAssignment,
    ) -> Result<bool, StoreError> {
        let client_ids = a
            .client_ids
            .as_ref()
            .map(|c| serde_json::to_string(c).expect("strings serialize"));
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let existed = tx
                .query_row(
                    "SELECT 1 FROM teams_extension_assignments \
                     WHERE tenant_id = ?1 AND object_id = ?2",
                    params![a.tenant_id, a.object_id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            tx.execute(
                "INSERT OR REPLACE INTO teams_extension_assignments \
                 (tenant_id, object_id, principal_type, client_ids) VALUES (?1, ?2, ?3, ?4)",
                params![a.tenant_id, a.object_id, a.principal_type, client_ids],
            )?;
            tx.commit()?;
            Ok(!existed)
        })
        .await
    }

    async fn delete_teams_extension_assignment(
        &self,
        tenant_id: String,
        object_id: String,
    ) -> Result<bool, StoreError> {
        self.with_conn(move |conn| {
            let n = conn.execute(
                "DELETE FROM teams_extension_assignments WHERE tenant_id = ?1 AND object_id = ?2",
                params![tenant_id, object_id],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn get_entra_assignment(
        &self,
        object_id: String,
    ) -> Result<Option<EntraAssignment>, StoreError> {
        self.with_conn(move |conn| {
            conn.query_row(
                &format!("SELECT {ENTRA_COLUMNS} FROM entra_assignments WHERE object_id = ?1"),
                params![object_id],
                entra_row,
            )
            .optional()
        })
        .await
    }

    async fn find_entra_assignments(
        &self,
        object_ids: Vec<String>,
    ) -> Result<Vec<EntraAssignment>, StoreError> {
        self.with_conn(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {ENTRA_COLUMNS} FROM entra_assignments WHERE object_id = ?1"
            ))?;
            let mut found = Vec::new();
            for id in &object_ids {
                if let Some(a) = statement.query_row(params![id], entra_row).optional()? {
                    found.push(a);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn list_entra_assignments(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<EntraAssignment>, StoreError> {
        self.with_conn(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {ENTRA_COLUMNS} FROM entra_assignments \
                 WHERE ?1 IS NULL OR object_id > ?1 ORDER BY object_id LIMIT ?2"
            ))?;
            let rows = statement.query_map(params![after, limit], entra_row)?;
            rows.collect()
        })
        .await
    }

    async fn put_entra_assignment(&self, a: EntraAssignment) -> Result<bool, StoreError> {
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let created = put_entra(&tx, &a)?;
            tx.commit()?;
            Ok(created)
        })
        .await
    }

    async fn update_entra_assignments(
        &self,
        put: Vec<EntraAssignment>,
        remove: Vec<String>,
    ) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for a in &put {
                put_entra(&tx, a)?;
            }
            for id in &remove {
                tx.execute(
                    "DELETE FROM entra_assignments WHERE object_id = ?1",
                    params![id],
                )?;
            }
            tx.commit()
        })
        .await
    }

    async fn delete_entra_assignment(&self, object_id: String) -> Result<bool, StoreError> {
        self.with_conn(move |conn| {
            let n = conn.execute(
                "DELETE FROM entra_assignments WHERE object_id = ?1",
                params![object_id],
            )?;
            Ok(n > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn assignments_are_created_replaced_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteAssignmentStore::open(&dir.path().join("db")).unwrap();
        let a = TeamsExtensionAssignment {
            tenant_id: "t".into(),
            object_id: "o".into(),
            principal_type: "user".into(),
            client_ids: None,
        };
        assert!(store
            .put_teams_extension_assignment(a.clone())
            .await
            .unwrap());
        let mut b = a.clone();
        b.client_ids = Some(vec!["c".into()]);
        assert!(!store
            .put_teams_extension_assignment(b.clone())
            .await
            .unwrap());
        let got = store
            .get_teams_extension_assignment("t".into(), "o".into())
            .await
            .unwrap();
        assert_eq!(got, Some(b));
        // Reopening finds it: the write is durable.
        drop(store);
        let store = SqliteAssignmentStore::open(&dir.path().join("db")).unwrap();
        assert!(store
            .delete_teams_extension_assignment("t".into(), "o".into())
            .await
            .unwrap());
        assert!(!store
            .delete_teams_extension_assignment("t".into(), "o".into())
            .await
            .unwrap());
        assert_eq!(
            store
                .get_teams_extension_assignment("t".into(), "o".into())
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn entra_assignments_are_paged_updated_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteAssignmentStore::open(&dir.path().join("db")).unwrap();
        let a = |o: &str| EntraAssignment {
            object_id: o.into(),
            tenant_id: "t".into(),
            principal_type: "user".into(),
            client_ids: vec!["c".into()],
        };
        assert!(store.put_entra_assignment(a("b")).await.unwrap());
        assert!(!store.put_entra_assignment(a("b")).await.unwrap());
        store
            .update_entra_assignments(vec![a("a"), a("c")], vec!["b".into()])
            .await
            .unwrap();
        let page = store.list_entra_assignments(None, 1).await.unwrap();
        assert_eq!(page, vec![a("a")]);
        let page = store
            .list_entra_assignments(Some("a".into()), 5)
            .await
            .unwrap();
        assert_eq!(page, vec![a("c")]);
        let found = store
            .find_entra_assignments(vec!["x".into(), "c".into()])
            .await
            .unwrap();
        assert_eq!(found, vec![a("c")]);
        assert_eq!(
            store.get_entra_assignment("a".into()).await.unwrap(),
            Some(a("a"))
        );
        assert!(store.delete_entra_assignment("a".into()).await.unwrap());
        assert!(!store.delete_entra_assignment("a".into()).await.unwrap());
    }
}
