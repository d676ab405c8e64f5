//! Assembling and running the service: data dir, keys, store, router, listener, TLS, shutdown.

use crate::audit::{AuditConfig, AuditError, AuditLog, EventType, SinkError};
use crate::auth::entra::IssuerError;
use crate::auth::{IssuerConfig, ManagementConfig, TrustedIssuers};
use crate::clock::{Clock, Stamps, SystemClock};
use crate::connections;
use crate::console::{Console, ConsoleConfig};
use crate::domain::access::AccessService;
use crate::domain::entra::EntraAccessService;
use crate::domain::{IdentityService, Minutes};
use crate::export::ExportFile;
use crate::http::{router, AppState, HttpConfig};
use crate::keys::{DataDir, KeyError, KeyWatcher, LiveKeys, SigningAlg};
use crate::limits::OpenFiles;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::store::{self, Backend, OpenMode, StorageConfig, StoreError};
use crate::throttling::{Throttle, ThrottleConfig};
use crate::tls::{self, TlsError, TlsFiles};
use crate::webhooks::{self, WebhookConfig, WebhookConfigError, WebhookError, Webhooks};
use callsign_common::AccessKey;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
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

/// Everything `callsign serve` can be told.
#[derive(Clone)]
pub struct ServerConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The data directory: the endpoint file and the development TLS files, and, with
    /// [`StorageConfig::DataDir`], everything else. `None` writes nothing to disk (the
    /// development TLS files, if asked for, go to a temporary directory removed at shutdown).
    pub data_dir: Option<PathBuf>,
    /// Where identities, assignments and keys are kept.
    pub storage: StorageConfig,
    /// HTTPS or not.
    pub tls: TlsMode,
    /// The primary access key for new storage (`CALLSIGN_ACCESS_KEY`).
    pub access_key_seed: Option<AccessKey>,
    /// HTTP limits.
    pub http: HttpConfig,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// The clock (tests inject a manual one).
    pub clock: Arc<dyn Clock>,
    /// Sign new tokens with this algorithm (rotating to a new key if the current one differs);
    /// `None` keeps the current key (RS256 for new storage).
    pub signing_alg: Option<SigningAlg>,
    /// Issuers whose tokens are trusted (`[[trusted_issuers]]`).
    pub trusted_issuers: Vec<IssuerConfig>,
    /// Who may manage identities with a bearer token (`[management]`).
    pub management: ManagementConfig,
    /// Identities, assignments and possibly keys to load at start (`--seed`), idempotently.
    pub seed: Option<ExportFile>,
    /// Each operation group's limit per window (`[limits]`, `--limits`; off by default).
    pub throttling: ThrottleConfig,
    /// The shortest token lifetime accepted (`--min-token-lifetime`; ACS's 60 minutes unless a
    /// development setup asks for less).
    pub min_token_lifetime: Minutes,
    /// Where to serve `GET /metrics` without authentication (`--metrics-addr`); `None`: only
    /// on the main listener, authenticated.
    pub metrics_addr: Option<SocketAddr>,
    /// The audit trail's sinks, retention and whether issued tokens are events (`[audit]`,
    /// `--audit-log`).
    pub audit: AuditConfig,
    /// Where events are POSTed, signed (`[[webhooks]]`, docs/webhooks.md).
    pub webhooks: Vec<WebhookConfig>,
    /// The web console at `/console` (on unless `--no-console`).
    pub console: ConsoleConfig,
}

impl ServerConfig {
    /// Defaults for a server that keeps everything in memory and writes nothing to disk.
    pub fn in_memory(addr: SocketAddr) -> Self {
        Self {
            storage: StorageConfig::Memory(crate::store::MemoryStorage::new()),
            data_dir: None,
            ..Self::new(addr, PathBuf::new())
        }
    }

    /// Defaults for a data dir and address; everything is stored in the data dir.
    pub fn new(addr: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            addr,
            storage: StorageConfig::DataDir(data_dir.clone()),
            data_dir: Some(data_dir),
            tls: TlsMode::Off,
            access_key_seed: None,
            http: HttpConfig::default(),
            shutdown_grace: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            signing_alg: None,
            trusted_issuers: Vec::new(),
            management: ManagementConfig::default(),
            min_token_lifetime: Minutes::MIN,
            seed: None,
            throttling: ThrottleConfig::off(),
            metrics_addr: None,
            audit: AuditConfig::default(),
            webhooks: Vec::new(),
            console: ConsoleConfig::default(),
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Keys could not be created or read.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The storage could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A trusted issuer could not be set up.
    #[error(transparent)]
    Issuers(#[from] IssuerError),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// An audit log file could not be opened.
    #[error(transparent)]
    AuditSink(#[from] SinkError),
    /// An audit event could not be recorded.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A webhook is misconfigured.
    #[error(transparent)]
    WebhookConfig(#[from] WebhookConfigError),
    /// The webhooks could not start.
    #[error(transparent)]
    Webhooks(#[from] WebhookError),
    /// Listening failed.
    #[error("listening on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// A bound, not yet running, server.
pub struct Server {
    listener: std::net::TcpListener,
    app: axum::Router,
    keys: Arc<KeyWatcher>,
    readiness: Arc<Readiness>,
    tls: Option<(Arc<rustls::ServerConfig>, Option<PathBuf>)>,
    endpoint: String,
    connections: connections::Settings,
    /// The metrics listener (`--metrics-addr`), served alongside the main one.
    metrics_listener: Option<std::net::TcpListener>,
    metrics: Arc<Metrics>,
    /// The audit trail, whose sinks are brought up to date at shutdown.
    audit: Arc<AuditLog>,
    /// The webhooks' deliverers, stopped with the server.
    webhooks: Webhooks,
    /// Where the development TLS files of a server without a data dir live, until it stops.
    _tls_temp: Option<tls::TempDir>,
}

impl Server {
    /// Opens the storage (creating what a first start needs), loads the keys, prepares TLS and
    /// binds the listener. `CALLSIGN_ACCESS_KEY` seeds new storage only.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        webhooks::config::check_all(&config.webhooks)?;
        let clock = config.clock.clone();
        let backend = store::open(&config.storage, OpenMode::Serve).await?;
        let metrics = Arc::new(Metrics::new(backend.clone()).with_clock(clock.clone()));
        let backend = metrics.metered(backend, config.http.tracing.is_some());
        if let Some(seed) = &config.seed {
            // Empty storage becomes the seed's resource; another resource is refused.
            backend
                .adopt_keys(seed.resource_id, seed.keys.clone(), clock.now())
                .await?;
        }
        backend
            .init_keys(config.access_key_seed.clone(), clock.now())
            .await?;
        let mut seeded = None;
        if let Some(seed) = &config.seed {
            let imported = backend.import_data(seed.data.clone()).await?;
            tracing::info!(
                identities = imported.identities,
                assignments = imported.assignments,
                "seeded"
            );
            seeded = Some(imported);
        }
        if let Some(alg) = config.signing_alg {
            backend.ensure_signing_alg(alg, clock.now()).await?;
        }
        let keys = Arc::new(KeyWatcher::start(backend.clone(), clock.clone()).await?);
        let readiness = Readiness::start(backend.clone()).await;
        let audit = Arc::new(AuditLog::open(
            config.audit.clone(),
            backend.clone(),
            keys.live().clone(),
            clock.clone(),
        )?);
        // The sinks start here, so that they carry the seed's event.
        audit.spawn_upkeep().await?;
        // A seed already in the store changes nothing, and makes no event.
        if let Some(imported) = seeded.filter(|i| i.identities + i.assignments > 0) {
            let details = serde_json::json!({
                "source": "seed",
                "identities": imported.identities,
                "assignments": imported.assignments,
            });
            audit
                .record_operator(EventType::DataImported, None, details)
                .await?;
        }
        let webhooks = Webhooks::start(
            &config.webhooks,
            audit.clone(),
            backend.clone(),
            clock.clone(),
            metrics.clone(),
        )
        .await?;
        let mut server = Self::assemble(config, backend, keys, readiness, audit, metrics)?;
        server.webhooks = webhooks;
        Ok(server)
    }

    fn assemble(
        config: ServerConfig,
        backend: Arc<dyn Backend>,
        keys: Arc<KeyWatcher>,
        readiness: Arc<Readiness>,
        audit: Arc<AuditLog>,
        metrics: Arc<Metrics>,
    ) -> Result<Server, ServerError> {
        let clock = config.clock.clone();
        let data_dir = config.data_dir.as_ref().map(DataDir::new);
        let issuers = Arc::new(TrustedIssuers::new(&config.trusted_issuers, clock.clone())?);
        let mut tls_temp = None;
        let tls = match &config.tls {
            TlsMode::Off => None,
            TlsMode::Dev => Some(match &data_dir {
                Some(data_dir) => tls::dev_certificates(&data_dir.tls_dir())?,
                None => {
                    let temp = tls::TempDir::new()?;
                    let files = tls::dev_certificates(temp.path())?;
                    tls_temp = Some(temp);
                    files
                }
            }),
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
        let listener = listen(config.addr).map_err(|source| ServerError::Listen {
            addr: config.addr,
            source,
        })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                addr: config.addr,
                source,
            })?;
        let metrics_listener = match config.metrics_addr {
            Some(addr) => {
                Some(listen(addr).map_err(|source| ServerError::Listen { addr, source })?)
            }
            None => None,
        };
        let endpoint = endpoint_for(local, tls.is_some());
        // Remembered for `callsign connection-string` and the client commands, which find the
        // server by it: written whole (a reader never sees half a URL); not essential.
        if let Some(data_dir) = &data_dir {
            let _ =
                crate::keys::files::write_public(&data_dir.endpoint_path(), endpoint.as_bytes());
        }
        let throttle = Throttle::new(config.throttling, backend.clone(), clock.clone());
        let stamps = Arc::new(Stamps::new(clock.clone()));
        let connections = connection_settings(&config);
        let console = config.console.enabled.then(|| {
            Arc::new(Console::new(
                &config.console,
                keys.clone(),
                backend.clone(),
                clock.clone(),
                endpoint.clone(),
                tls.is_some(),
                config.trusted_issuers.clone(),
            ))
        });
        let state = Arc::new(AppState {
            identities: IdentityService::new(backend.clone(), keys.live().clone(), stamps)
                .with_min_lifetime(config.min_token_lifetime),
            config: config.http,
            issuers,
            management: config.management,
            access: AccessService::new(backend.clone()),
            entra: EntraAccessService::new(backend),
            throttle,
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            audit: audit.clone(),
            console,
        });
        Ok(Server {
            listener,
            app: router(state),
            keys,
            readiness,
            tls,
            endpoint,
            connections,
            metrics_listener,
            metrics,
            audit,
            webhooks: Webhooks::default(),
            _tls_temp: tls_temp,
        })
    }

    /// The most connections served at once.
    pub fn max_connections(&self) -> usize {
        self.connections.max_connections
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The address of the metrics listener (`--metrics-addr`), if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// The server's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The keys in force.
    pub fn live_keys(&self) -> Arc<LiveKeys> {
        self.keys.live().clone()
    }

    /// What keeps the keys in force current (tests poll it to reload keys at once instead of
    /// waiting for the next second).
    pub fn key_watcher(&self) -> Arc<KeyWatcher> {
        self.keys.clone()
    }

    /// The endpoint clients use (`http://127.0.0.1:8080/`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The connection string with the primary key. It holds a secret: print it only where asked.
    pub fn connection_string(&self) -> String {
        connection_string(&self.endpoint, &self.keys.live().get().access.primary)
    }

    /// The development CA file clients must trust, when serving with `--tls`.
    pub fn ca_certificate(&self) -> Option<&Path> {
        self.tls.as_ref().and_then(|(_, ca)| ca.as_deref())
    }

    /// Serves until `shutdown` resolves, then closes idle and unfinished connections and lets
    /// requests in flight finish (within the shutdown grace).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let audit = self.audit.clone();
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutting down");
            // Change feed readers waiting for events answer now instead of holding the
            // connections open through the grace period.
            audit.close();
        };
        let refresher = tokio::spawn(self.keys.clone().run());
        let checker = tokio::spawn(self.readiness.clone().run());
        // Up until the main listener has finished (its grace period included); dropped with it.
        let metrics_listener = match self.metrics_listener {
            Some(listener) => Some(tokio::spawn(crate::metrics::serve(
                listener,
                self.metrics.clone(),
            ))),
            None => None,
        };
        let result = connections::serve(
            self.listener,
            self.app,
            self.tls.map(|(config, _)| config),
            self.connections,
            shutdown,
        )
        .await;
        refresher.abort();
        checker.abort();
        if let Some(task) = metrics_listener {
            task.abort();
        }
        // A delivery in flight is tried again by the next start: at least once.
        drop(self.webhooks);
        // Every event stored before the last response reaches the sinks.
        self.audit.drain().await;
        result
    }
}

/// Connections the kernel completes and queues while the server is busy (closing connections
/// to make room at the limit, say); std's 128 fills in a moment under a flood of connections.
const LISTEN_BACKLOG: u32 = 1024;

/// A listening socket with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as std sets).
fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)?.into_std()
}

/// How connections are served: the limits of `config`, with the connection limit derived from
/// the open-file limit unless it is given (and then held to what that limit allows).
fn connection_settings(config: &ServerConfig) -> connections::Settings {
    let http = &config.http;
    let files = OpenFiles::current();
    let max_connections = match http.max_connections {
        Some(n) if n > files.connection_room() => {
            tracing::warn!(
                max_connections = n,
                open_file_limit = files.soft,
                allowed = files.connection_room(),
                "max_connections is more than the open-file limit allows; using what it allows"
            );
            files.connection_room()
        }
        Some(n) => n.max(1),
        None => files.connection_limit(),
    };
    tracing::debug!(
        max_connections,
        open_file_limit = files.soft,
        "connection limit"
    );
    connections::Settings {
        header_read_timeout: http.header_read_timeout,
        keep_alive_timeout: http.keep_alive_timeout,
        body_read_timeout: http.body_read_timeout,
        max_header_bytes: http.max_header_bytes,
        max_connections,
        max_unfinished_request_bytes: http.max_unfinished_request_bytes,
        shutdown_grace: config.shutdown_grace,
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
