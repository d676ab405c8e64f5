//! The cluster backend: PostgreSQL through one connection pool (deadpool-postgres) for
//! identities, assignments and keys, with prepared statements, versioned migrations under an
//! advisory lock, and short timeouts everywhere so that a database outage turns into fast
//! `Unavailable` errors instead of hung requests.

mod assignments;
mod audit;
mod health;
mod identities;
mod keys;
mod throttle;
mod transfer;
mod webhooks;

/// The query that lists a page of identities, for tests that look at its plan.
pub const LIST_SQL: &str = identities::LIST;

use super::{AuditRecord, PostgresConfig, StoreError};
use crate::keys::MasterKey;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// How long any one database operation (getting a connection included) may take before the
/// request fails with 503. Long enough for a loaded database, short enough that clients retry.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

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
    // Throttling counts: UNLOGGED, since a count is worth no WAL write and fsync per request (a
    // crash of the database forgets the current windows, which only lets one window through
    // more).
    r#"
    CREATE UNLOGGED TABLE throttle_windows (
        operation_group TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        requests BIGINT NOT NULL,
        PRIMARY KEY (operation_group, window_start)
    );
"#,
    // The audit trail of the whole cluster: one query answers "who revoked user X".
    r#"
    CREATE TABLE audit_events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        time TIMESTAMPTZ NOT NULL,
        type TEXT NOT NULL,
        subject TEXT,
        event JSONB NOT NULL
    );
    CREATE INDEX audit_events_time ON audit_events (time);
    CREATE INDEX audit_events_subject ON audit_events (subject, type);
"#,
    // Commit order for the change feed: nodes take ids in one order and commit in another, so
    // readers order by the appending transaction (xid8) and read only what every older
    // transaction has finished writing; and the newest event the retention deleted.
    r#"
    ALTER TABLE audit_events ADD COLUMN commit_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
    CREATE INDEX audit_events_commit ON audit_events (commit_xid, id);
    CREATE TABLE audit_forgotten (
        one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
        commit_xid xid8 NOT NULL,
        id BIGINT NOT NULL
    );
    INSERT INTO audit_forgotten (commit_xid, id) VALUES ('0', 0);
"#,
    // The revoked and deleted identities, for the change feed's snapshot.
    r#"
    CREATE INDEX identities_stamped ON identities (id)
        WHERE revoked_before_us IS NOT NULL OR deleted_at_us IS NOT NULL;
"#,
    // How far each webhook is delivered (a position in the change feed's order), and which node
    // delivers it until when.
    r#"
    CREATE TABLE webhook_deliveries (
        webhook TEXT PRIMARY KEY NOT NULL,
        delivered_commit_xid xid8,
        delivered_id BIGINT,
        holder TEXT NOT NULL,
        leased_until_us BIGINT NOT NULL
    );
"#,
];

/// A cluster's storage in PostgreSQL; clones share the pool.
#[derive(Clone)]
pub struct PostgresBackend {
    pool: Pool,
    master: Arc<MasterKey>,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresBackend")
    }
}

/// The pool for `url` (`postgres://user:pass@host:port/db`), with connect and statement timeouts.
fn pool(url: &str) -> Result<Pool, StoreError> {
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
async fn bounded<T>(op: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    bounded_for(1, op).await
}

/// Runs `op`, worth `operations` ordinary operations, within as many [`OPERATION_TIMEOUT`]s.
async fn bounded_for<T>(
    operations: u32,
    op: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(OPERATION_TIMEOUT * operations, op)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the database did not answer in time".into(),
            ))
        })
}

/// A database error as a store error, with its causes ("db error: the database system is
/// starting up"). Statements never carry secrets as parameters, so neither do their errors.
fn unavailable(e: impl std::error::Error) -> StoreError {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    StoreError::Unavailable(message)
}

/// The parameters of one statement.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl PostgresBackend {
    /// Connects to the database and brings the schema up to date.
    pub async fn connect(config: &PostgresConfig) -> Result<Self, StoreError> {
        let backend = Self {
            pool: pool(&config.url)?,
            master: config.master_key.clone(),
        };
        bounded(backend.migrate()).await?;
        Ok(backend)
    }

    async fn client(&self) -> Result<Object, StoreError> {
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
        let known = MIGRATIONS.len() as i32;
        if current > known {
            return Err(StoreError::TooNew {
                what: "the database".into(),
                found: current.into(),
                known: known.into(),
            });
        }
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

    /// Runs one prepared query, bounded, and returns its first row if any (callers select by key).
    async fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// Runs one prepared query, bounded, and returns its rows.
    async fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
            client.query(&statement, params).await.map_err(unavailable)
        })
        .await
    }

    /// Runs one prepared query that changes a row and returns it (`RETURNING`: an upsert's
    /// created flag, a delete's `1`) and, when it returned one, appends `events`, in one
    /// transaction, bounded.
    async fn query_opt_with_events(
        &self,
        sql: &str,
        params: Params<'_>,
        events: &[AuditRecord],
    ) -> Result<Option<Row>, StoreError> {
        if events.is_empty() {
            return self.query_opt(sql, params).await;
        }
        self.query_opt_with_events_from(sql, params, |_| events.to_vec())
            .await
    }

    /// [`Self::query_opt_with_events`] with events made from the returned row (facts only the
    /// change knows, such as the stamp it stored).
    async fn query_opt_with_events_from(
        &self,
        sql: &str,
        params: Params<'_>,
        events: impl FnOnce(&Row) -> Vec<AuditRecord> + Send,
    ) -> Result<Option<Row>, StoreError> {
        bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(unavailable)?;
            let statement = tx.prepare_cached(sql).await.map_err(unavailable)?;
            let row = tx
                .query_opt(&statement, params)
                .await
                .map_err(unavailable)?;
            if let Some(row) = &row {
                audit::append_in(&tx, &events(row)).await?;
            }
            tx.commit().await.map_err(unavailable)?;
            Ok(row)
        })
        .await
    }

    /// Runs one prepared statement that changes rows, bounded, and returns how many it changed.
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
            client
                .execute(&statement, params)
                .await
                .map_err(unavailable)
        })
        .await
    }
}

#[async_trait::async_trait]
impl super::StoreStats for PostgresBackend {
    fn backend_name(&self) -> &'static str {
        "postgres"
    }

    /// A scan of the table (callers cache it).
    async fn count_identities(&self) -> Result<u64, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT count(*) FROM identities WHERE deleted_at_us IS NULL",
                    &[],
                )
                .await
                .map_err(unavailable)?;
            Ok(row.get::<_, i64>(0).max(0) as u64)
        })
        .await
    }

    fn pool_status(&self) -> Option<super::PoolStatus> {
        let status = self.pool.status();
        Some(super::PoolStatus {
            size: status.size,
            available: status.available,
            waiting: status.waiting,
            max_size: status.max_size,
        })
    }
}
