//! The shared store for a cluster: PostgreSQL through a connection pool (deadpool-postgres), with
//! prepared statements, versioned migrations under an advisory lock, and short timeouts everywhere
//! so that a database outage turns into fast `Unavailable` errors instead of hung requests.

use super::{IdentityRecord, Store, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::future::Future;
use std::time::Duration;
use tokio_postgres::{NoTls, Row};

/// How long any one database operation (getting a connection included) may take before the
/// request fails with 503. Long enough for a loaded database, short enough that clients retry.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Advisory lock held while migrating, so that nodes starting together apply each step once.
const MIGRATION_LOCK: i64 = 0x6361_6c6c_7369_676e; // "callsign"

/// Schema steps, applied in order, each once; the index + 1 is the version.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE identities (
        id TEXT PRIMARY KEY NOT NULL,
        custom_id TEXT,
        created_at_us BIGINT NOT NULL,
        last_token_issued_at_us BIGINT,
        revoked_before_us BIGINT,
        deleted_at_us BIGINT
    );
    CREATE UNIQUE INDEX identities_live_custom_id
        ON identities (custom_id) WHERE custom_id IS NOT NULL AND deleted_at_us IS NULL;
    CREATE TABLE resource (
        singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
        resource_id TEXT NOT NULL,
        primary_key BYTEA NOT NULL,
        secondary_key BYTEA NOT NULL,
        keys_version BIGINT NOT NULL
    );
    CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY NOT NULL,
        private_key BYTEA NOT NULL,
        certificate TEXT NOT NULL,
        created_at_us BIGINT NOT NULL,
        retired_at_us BIGINT
    );
"#,
    r#"
    CREATE TABLE teams_extension_assignments (
        tenant_id TEXT NOT NULL,
        object_id TEXT NOT NULL,
        principal_type TEXT NOT NULL,
        client_ids TEXT[],
        PRIMARY KEY (tenant_id, object_id)
    );
"#,
    r#"
    CREATE TABLE entra_assignments (
        object_id TEXT PRIMARY KEY NOT NULL,
        tenant_id TEXT NOT NULL,
        principal_type TEXT NOT NULL,
        client_ids TEXT[] NOT NULL
    );
"#,
];

/// Identities in PostgreSQL; clones share the pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresStore")
    }
}

/// The pool for `url` (`postgres://user:pass@host:port/db`), with connect and statement timeouts.
pub fn pool(url: &str) -> Result<Pool, StoreError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|_| StoreError::Unavailable("the database URL is malformed".into()))?;
    config.connect_timeout(Duration::from_secs(3));
    config.application_name("callsign");
    // The server gives up on a statement (or a lock wait) before the client does.
    config.options("-c statement_timeout=4000 -c lock_timeout=4000");
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(16)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(OPERATION_TIMEOUT))
        .create_timeout(Some(Duration::from_secs(3)))
        .recycle_timeout(Some(Duration::from_secs(3)))
        .build()
        .map_err(unavailable)
}

/// Runs `op` with the [`OPERATION_TIMEOUT`]; a timeout is an `Unavailable` error.
pub async fn bounded<T>(op: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(OPERATION_TIMEOUT, op)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the database did not answer in time".into(),
            ))
        })
}

/// A database error as a store error, with its causes ("db error: the database system is
/// starting up"). Statements never carry secrets as parameters, so neither do their errors.
pub fn unavailable(e: impl std::error::Error) -> StoreError {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    StoreError::Unavailable(message)
}

impl PostgresStore {
    /// Connects to `url` and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = Self { pool: pool(url)? };
        bounded(store.migrate()).await?;
        Ok(store)
    }

    /// The pool, shared with the key storage.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(unavailable)
    }

    /// Applies the migrations this database lacks, one transaction, under an advisory lock.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(unavailable)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(unavailable)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS callsign_migrations (
                 version INTEGER PRIMARY KEY NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(unavailable)?;
        let row = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM callsign_migrations",
                &[],
            )
            .await
            .map_err(unavailable)?;
        let current: i32 = row.get(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.batch_execute(sql).await.map_err(unavailable)?;
            let version = i as i32 + 1;
            tx.execute(
                "INSERT INTO callsign_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn create(&self, record: IdentityRecord) -> Result<IdentityRecord, StoreError> {
        let client = self.client().await?;
        let insert = client
            .prepare_cached(&format!(
                "INSERT INTO identities (id, custom_id, created_at_us) VALUES ($1, $2, $3) \
                 ON CONFLICT (custom_id) WHERE custom_id IS NOT NULL AND deleted_at_us IS NULL \
                 DO NOTHING RETURNING {COLUMNS}"
            ))
            .await
            .map_err(unavailable)?;
        let find = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM identities WHERE custom_id = $1 AND deleted_at_us IS NULL"
            ))
            .await
            .map_err(unavailable)?;
        // A conflicting identity can be deleted between the insert and the look-up; try again then.
        for _ in 0..3 {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                [&record.id, &record.custom_id, &record.created_at_us];
            if let Some(row) = client
                .query_opt(&insert, &params)
                .await
                .map_err(unavailable)?
            {
                return Ok(read_record(&row));
            }
            if let Some(row) = client
                .query_opt(&find, &[&record.custom_id])
                .await
                .map_err(unavailable)?
            {
                return Ok(read_record(&row));
            }
        }
        Err(StoreError::Unavailable(
            "the identity with this custom id kept changing".into(),
        ))
    }

    /// Runs one prepared statement that changes rows and returns how many it changed.
    async fn update(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
        client
            .execute(&statement, params)
            .await
            .map_err(unavailable)
    }
}

const COLUMNS: &str =
    "id, custom_id, created_at_us, last_token_issued_at_us, revoked_before_us, deleted_at_us";

fn read_record(row: &Row) -> IdentityRecord {
    IdentityRecord {
        id: row.get(0),
        custom_id: row.get(1),
        created_at_us: row.get(2),
        last_token_issued_at_us: row.get(3),
        revoked_before_us: row.get(4),
        deleted_at_us: row.get(5),
    }
}

impl Store for PostgresStore {
    async fn create_identity(&self, record: IdentityRecord) -> Result<IdentityRecord, StoreError> {
        bounded(self.create(record)).await
    }

    async fn get_identity(&self, id: String) -> Result<Option<IdentityRecord>, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(&format!("SELECT {COLUMNS} FROM identities WHERE id = $1"))
                .await
                .map_err(unavailable)?;
            let row = client
                .query_opt(&statement, &[&id])
                .await
                .map_err(unavailable)?;
            Ok(row.as_ref().map(read_record))
        })
        .await
    }

    async fn record_token_issued(&self, id: String, at_us: i64) -> Result<(), StoreError> {
        bounded(self.update(
            "UPDATE identities SET last_token_issued_at_us = \
             greatest(coalesce(last_token_issued_at_us, 0), $2) WHERE id = $1",
            &[&id, &at_us],
        ))
        .await
        .map(|_| ())
    }

    async fn revoke_tokens(&self, id: String, before_us: i64) -> Result<bool, StoreError> {
        bounded(self.update(
            "UPDATE identities SET revoked_before_us = greatest(\
             coalesce(revoked_before_us, 0), $2, coalesce(last_token_issued_at_us, 0)) \
             WHERE id = $1 AND deleted_at_us IS NULL",
            &[&id, &before_us],
        ))
        .await
        .map(|n| n == 1)
    }

    async fn delete_identity(&self, id: String, at_us: i64) -> Result<bool, StoreError> {
        bounded(self.update(
            "UPDATE identities SET deleted_at_us = $2 WHERE id = $1 AND deleted_at_us IS NULL",
            &[&id, &at_us],
        ))
        .await
        .map(|n| n == 1)
    }
}
