//! Assembling and running the service: data dir, keys, store, router, listener, TLS, shutdown.

use crate::auth::entra::IssuerError;
use crate::auth::{IssuerConfig, ManagementConfig, TrustedIssuers};
use crate::clock::{Clock, Stamps, SystemClock};
use crate::domain::access::AccessService;
use crate::domain::entra::EntraAccessService;
use crate::domain::IdentityService;
use crate::http::{router, AppState, HttpConfig};
use crate::keys::{DataDir, KeyError, LiveKeys, MasterKey, PgKeys, SigningAlg};
use crate::store::postgres::OPERATION_TIMEOUT;
use crate::store::{
    AssignmentStore, PostgresStore, SqliteAssignmentStore, SqliteStore, Store, StoreError,
};
use crate::tls::{self, TlsError, TlsFiles};
use callsign_common::AccessKey;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// How to serve HTTPS.
#[derive(Debug, Clone, Default)]
pub enum TlsMode {
    /// Plain HTTP.
    #[default]
    Off,
    /// A development CA and server certificate generated into the data dir.
    Dev,
    /// Certificate and key files given by the operator.
    Files {
        /// Certificate chain PEM.
        cert: PathBuf,
        /// Private key PEM.
        key: PathBuf,
    },
}

/// Where a cluster keeps its state: PostgreSQL, with secrets sealed by the master key.
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Seals the private keys stored in the database (`CALLSIGN_MASTER_KEY`).
    pub master_key: MasterKey,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.write_str("PostgresConfig(<redacted>)")
    }
}

/// Everything `callsign serve` can be told.
#[derive(Clone)]
pub struct ServerConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The data directory.
    pub data_dir: PathBuf,
    /// HTTPS or not.
    pub tls: TlsMode,
    /// The primary access key for a new data dir (`CALLSIGN_ACCESS_KEY`).
    pub access_key_seed: Option<AccessKey>,
    /// HTTP limits.
    pub http: HttpConfig,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// The clock (tests inject a manual one).
    pub clock: Arc<dyn Clock>,
    /// Sign new tokens with this algorithm (rotating to a new key if the current one differs);
    /// `None` keeps the data dir's current key (RS256 for a new data dir).
    pub signing_alg: Option<SigningAlg>,
    /// Issuers whose tokens are trusted (`[[trusted_issuers]]`).
    pub trusted_issuers: Vec<IssuerConfig>,
    /// Who may manage identities with a bearer token (`[management]`).
    pub management: ManagementConfig,
}

impl ServerConfig {
    /// Defaults for a data dir and address.
    pub fn new(addr: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            addr,
            data_dir: data_dir.into(),
            tls: TlsMode::Off,
            access_key_seed: None,
            http: HttpConfig::default(),
            shutdown_grace: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            signing_alg: None,
            trusted_issuers: Vec::new(),
            management: ManagementConfig::default(),
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Keys could not be created or read.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The database could not be opened.
    #[error("opening the database: {0}")]
    Store(#[from] StoreError),
    /// A trusted issuer could not be set up.
    #[error(transparent)]
    Issuers(#[from] IssuerError),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A combination of options that is not supported.
    #[error("{0}")]
    Unsupported(&'static str),
    /// Listening failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Keeps the live keys current while the server runs.
type Refresher = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A bound, not yet running, server.
pub struct Server {
    listener: std::net::TcpListener,
    app: axum::Router,
    refresher: Refresher,
    keys: Arc<LiveKeys>,
    tls: Option<(Arc<rustls::ServerConfig>, Option<PathBuf>)>,
    endpoint: String,
    shutdown_grace: Duration,
}

impl Server {
    /// Prepares the data dir, keys, SQLite store and TLS, and binds the listener.
    pub fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        let clock = config.clock.clone();
        let data_dir = DataDir::new(&config.data_dir);
        let mut keys = data_dir.init(config.access_key_seed.clone(), clock.now())?;
        if let Some(alg) = config.signing_alg {
            keys = data_dir.ensure_signing_alg(alg, clock.now())?;
        }
        let keys = Arc::new(LiveKeys::new(data_dir.clone(), keys));
        let store = SqliteStore::open(&data_dir.database_path())?;
        let assignments = Arc::new(SqliteAssignmentStore::open(&data_dir.database_path())?);
        let refresher = Box::pin(refresh_keys(keys.clone(), clock));
        Self::assemble(config, store, assignments, keys, refresher)
    }

    /// Like [`Server::bind`], with identities and keys in PostgreSQL: one node of a cluster. The
    /// data dir only holds TLS files. `CALLSIGN_ACCESS_KEY` seeds an empty database only.
    pub async fn bind_postgres(
        config: ServerConfig,
        postgres: PostgresConfig,
    ) -> Result<Server, ServerError> {
        if config
            .signing_alg
            .is_some_and(|alg| alg != SigningAlg::Rs256)
        {
            // Cluster keys are generated as RS256; other algorithms are a data-dir feature so far.
            return Err(ServerError::Unsupported(
                "--signing-alg es256/eddsa is not supported with --database-url yet",
            ));
        }
        let clock = config.clock.clone();
        let store = PostgresStore::connect(&postgres.url).await?;
        let db_keys = PgKeys::new(store.pool().clone(), Arc::new(postgres.master_key));
        let initial = db_keys
            .init(config.access_key_seed.clone(), clock.now())
            .await?;
        let keys = Arc::new(LiveKeys::detached(initial));
        let refresher = Box::pin(poll_database_keys(db_keys, keys.clone(), clock));
        let assignments = Arc::new(store.clone());
        Self::assemble(config, store, assignments, keys, refresher)
    }

    fn assemble<S: Store>(
        config: ServerConfig,
        store: S,
        assignments: Arc<dyn AssignmentStore>,
        keys: Arc<LiveKeys>,
        refresher: Refresher,
    ) -> Result<Server, ServerError> {
        let clock = config.clock.clone();
        let data_dir = DataDir::new(&config.data_dir);
        let issuers = Arc::new(TrustedIssuers::new(&config.trusted_issuers, clock.clone())?);
        let tls = match &config.tls {
            TlsMode::Off => None,
            TlsMode::Dev => Some(tls::dev_certificates(&data_dir.tls_dir())?),
            TlsMode::Files { cert, key } => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: None,
            }),
        };
        let tls = match tls {
            Some(files) => Some((tls::server_config(&files)?, files.ca)),
            None => None,
        };
        let listener =
            std::net::TcpListener::bind(config.addr).map_err(|source| ServerError::Listen {
                addr: config.addr,
                source,
            })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                addr: config.addr,
                source,
            })?;
        let endpoint = endpoint_for(local, tls.is_some());
        // Remembered so that `callsign connection-string` can print it later; not essential.
        let _ = std::fs::write(data_dir.endpoint_path(), &endpoint);
        let stamps = Arc::new(Stamps::new(clock));
        let state = Arc::new(AppState {
            identities: IdentityService::new(store, keys.clone(), stamps),
            config: config.http,
            issuers,
            management: config.management,
            access: AccessService::new(assignments.clone()),
            entra: EntraAccessService::new(assignments),
        });
        Ok(Server {
            listener,
            app: router(state),
            refresher,
            keys,
            tls,
            endpoint,
            shutdown_grace: config.shutdown_grace,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The keys in force (tests use it to reload keys at once instead of waiting for the poll).
    pub fn live_keys(&self) -> Arc<LiveKeys> {
        self.keys.clone()
    }

    /// The endpoint clients use (`http://127.0.0.1:8080/`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The connection string with the primary key. It holds a secret: print it only where asked.
    pub fn connection_string(&self) -> String {
        connection_string(&self.endpoint, &self.keys.get().access.primary)
    }

    /// The development CA file clients must trust, when serving with `--tls`.
    pub fn ca_certificate(&self) -> Option<&Path> {
        self.tls.as_ref().and_then(|(_, ca)| ca.as_deref())
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let handle = axum_server::Handle::new();
        let grace = self.shutdown_grace;
        let signal = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down; letting in-flight requests finish");
            signal.graceful_shutdown(Some(grace));
        });
        let refresher = tokio::spawn(self.refresher);
        let app = self.app.into_make_service();
        let result = match self.tls {
            None => {
                axum_server::from_tcp(self.listener)?
                    .handle(handle)
                    .serve(app)
                    .await
            }
            Some((config, _)) => {
                let config = axum_server::tls_rustls::RustlsConfig::from_config(config);
                axum_server::tls_rustls::from_tcp_rustls(self.listener, config)?
                    .handle(handle)
                    .serve(app)
                    .await
            }
        };
        refresher.abort();
        result
    }
}

/// Picks up keys that `callsign keys regenerate` or `callsign signing-key rotate` wrote, and drops
/// retired signing keys past their retention.
async fn refresh_keys(keys: Arc<LiveKeys>, clock: Arc<dyn Clock>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        let force = ticks.is_multiple_of(60);
        let keys = keys.clone();
        let now = clock.now();
        let result = tokio::task::spawn_blocking(move || keys.refresh(now, force)).await;
        match result {
            Ok(Ok(true)) => tracing::info!("reloaded keys from the data dir"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reloading keys failed; keeping the keys in force")
            }
            Err(e) => tracing::warn!(error = %e, "key reload task failed"),
        }
    }
}

/// Reloads the keys whenever the database's key version moves (another node or the CLI changed
/// them), and every minute anyway to drop retired signing keys past their retention. An
/// unreachable database keeps the keys in force.
async fn poll_database_keys(db_keys: PgKeys, live: Arc<LiveKeys>, clock: Arc<dyn Clock>) {
    // Unknown at first: the first tick reloads, closing the gap between start-up and polling.
    let mut seen = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        let version = match db_keys.version().await {
            Ok(version) => version,
            Err(e) => {
                tracing::debug!(error = %e, "checking the key version failed");
                continue;
            }
        };
        if Some(version) == seen && !ticks.is_multiple_of(60) {
            continue;
        }
        // Bounded: a database that stopped answering mid-load must not stall the polling.
        let loaded = tokio::time::timeout(OPERATION_TIMEOUT, db_keys.load(clock.now())).await;
        match loaded.unwrap_or_else(|_| Err(KeyError::Database("timed out".into()))) {
            Ok(keys) => {
                live.replace(keys);
                if Some(version) != seen {
                    tracing::info!(version, "reloaded keys from the database");
                }
                seen = Some(version);
            }
            Err(e) => {
                tracing::warn!(error = %e, "reloading keys failed; keeping the keys in force")
            }
        }
    }
}

/// The endpoint URL for a listening address.
fn endpoint_for(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("{scheme}://{host}:{}/", addr.port())
}

/// `endpoint=...;accesskey=...`
pub fn connection_string(endpoint: &str, key: &AccessKey) -> String {
    format!("endpoint={endpoint};accesskey={}", key.to_base64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint_for("127.0.0.1:80".parse().unwrap(), false),
            "http://127.0.0.1:80/"
        );
        assert_eq!(
            endpoint_for("0.0.0.0:443".parse().unwrap(), true),
            "https://localhost:443/"
        );
        assert_eq!(
            endpoint_for("[::1]:8080".parse().unwrap(), false),
            "http://[::1]:8080/"
        );
    }
}
