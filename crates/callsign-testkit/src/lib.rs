//! What callsign's tests share: a server started in-process on a loopback port over either
//! backend ([`TestServer`], [`TestStorage`]), a client that signs its requests with HMAC like the
//! official SDKs do ([`Client`]), a stand-in for Entra ID ([`issuer`]) and throwaway PostgreSQL
//! clusters ([`pg_cluster`]).

pub mod issuer;
pub mod pg_cluster;
pub mod process;

use callsign_common::hmac::sign_request;
use callsign_common::AccessKey;
use callsign_server::clock::{Clock, ManualClock, SystemClock};
use callsign_server::keys::{KeyWatcher, LiveKeys, MasterKey};
use callsign_server::store::{self, Backend, MemoryStorage, OpenMode};
use callsign_server::{PostgresConfig, Server, ServerConfig, StorageConfig};
use pg_cluster::PgCluster;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Storage for a test, on a real SQLite file, a real PostgreSQL cluster or in memory; removed
/// when dropped.
pub enum TestStorage {
    /// A data dir in a temp dir.
    Sqlite(tempfile::TempDir),
    /// A database on a throwaway cluster, with a fixed test master key.
    Postgres(PgCluster),
    /// This process's memory.
    Memory(MemoryStorage),
}

impl TestStorage {
    /// A fresh data dir.
    pub fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A fresh PostgreSQL cluster.
    pub fn postgres() -> Self {
        Self::Postgres(PgCluster::start())
    }

    /// A fresh in-memory store.
    pub fn memory() -> Self {
        Self::Memory(MemoryStorage::new())
    }

    /// How a server is told to use it.
    pub fn config(&self) -> StorageConfig {
        match self {
            Self::Sqlite(dir) => StorageConfig::DataDir(dir.path().join("data")),
            Self::Postgres(cluster) => StorageConfig::Postgres(PostgresConfig {
                url: cluster.url(),
                master_key: Arc::new(test_master_key()),
            }),
            Self::Memory(memory) => StorageConfig::Memory(memory.clone()),
        }
    }

    /// Opens it as a server would (another open is what a restart or another node does).
    pub async fn open(&self) -> Arc<dyn Backend> {
        store::open(&self.config(), OpenMode::Create).await.unwrap()
    }
}

/// The master key of [`TestStorage::postgres`].
pub fn test_master_key() -> MasterKey {
    MasterKey::from_bytes(&[0x5e; 32]).unwrap()
}

/// A running server with its own data dir (which, unless the test chose other storage, holds
/// everything).
pub struct TestServer {
    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub base: String,
    /// `127.0.0.1:<port>`, the Host header.
    pub host: String,
    /// The primary access key.
    pub key: AccessKey,
    /// The secondary access key.
    pub secondary: AccessKey,
    /// The data dir.
    pub data: tempfile::TempDir,
    /// The keys in force.
    pub keys: Arc<LiveKeys>,
    /// Reloads the keys at once after a test changed the stored ones.
    pub key_watcher: Arc<KeyWatcher>,
    /// The resource id.
    pub resource_id: String,
    /// The clock the server reads (and the client signs with).
    pub clock: Arc<dyn Clock>,
    /// The metrics listener's address, when the test configured `metrics_addr`.
    pub metrics_addr: Option<std::net::SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server on the system clock.
    pub async fn start() -> Self {
        Self::start_with(Arc::new(SystemClock), |_| {}).await
    }

    /// A server on a manual clock.
    pub async fn start_manual(clock: ManualClock) -> Self {
        Self::start_with(Arc::new(clock), |_| {}).await
    }

    /// A server with a custom clock and configuration.
    pub async fn start_with(
        clock: Arc<dyn Clock>,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config =
            ServerConfig::new("127.0.0.1:0".parse().unwrap(), data.path().join("data"));
        config.clock = clock.clone();
        config.shutdown_grace = std::time::Duration::from_secs(5);
        configure(&mut config);
        let server = Server::bind(config).await.unwrap();
        let keys = server.live_keys();
        let key_watcher = server.key_watcher();
        let addr = server.local_addr();
        let metrics_addr = server.metrics_addr();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        let current = keys.get();
        Self {
            base: format!("http://{addr}"),
            host: addr.to_string(),
            key: current.access.primary.clone(),
            secondary: current.access.secondary.clone(),
            resource_id: current.resource_id.to_string(),
            data,
            keys,
            key_watcher,
            clock,
            metrics_addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// A server over `storage` on `clock`.
    pub async fn start_on(storage: &TestStorage, clock: Arc<dyn Clock>) -> Self {
        let storage = storage.config();
        Self::start_with(clock, move |config| config.storage = storage).await
    }

    /// Reloads the stored keys now instead of at the next poll.
    pub async fn reload_keys(&self) {
        self.key_watcher.poll(true).await.unwrap();
    }

    /// `endpoint=<base>/;accesskey=<primary key>`, as clients are given it.
    pub fn connection_string(&self) -> String {
        format!("endpoint={}/;accesskey={}", self.base, self.key.to_base64())
    }

    /// A client signing with the primary key.
    pub fn client(&self) -> Client {
        self.client_with(self.key.clone())
    }

    /// A client signing with `key`.
    pub fn client_with(&self, key: AccessKey) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: self.base.clone(),
            host: self.host.clone(),
            key,
            clock: self.clock.clone(),
        }
    }

    /// Stops the server, letting in-flight requests finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an ACS error body exactly.
    pub fn assert_error(&self, status: u16, code: &str, message: &str, target: Option<&str>) {
        assert_eq!(self.status, status, "status; body: {}", self.text());
        let mut expected = serde_json::json!({"error": {"code": code, "message": message}});
        if let Some(target) = target {
            expected["error"]["target"] = target.into();
        }
        assert_eq!(self.json(), expected);
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

/// Sends HMAC-signed requests.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    host: String,
    key: AccessKey,
    clock: Arc<dyn Clock>,
}

impl Client {
    /// A client for any server: `base` is `http://host:port`, signed with `key` on the system clock.
    pub fn new(base: &str, key: AccessKey) -> Self {
        let host = base
            .split("://")
            .nth(1)
            .unwrap_or(base)
            .trim_end_matches('/')
            .to_owned();
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            host,
            key,
            clock: Arc::new(SystemClock),
        }
    }

    /// Sends a signed request; `path_and_query` is signed exactly as given.
    pub async fn send(&self, method: &str, path_and_query: &str, body: Option<&[u8]>) -> Reply {
        self.send_with(method, path_and_query, body, &[]).await
    }

    /// Sends a signed request with extra headers.
    pub async fn send_with(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&[u8]>,
        extra: &[(&str, &str)],
    ) -> Reply {
        raw(self.signed(method, path_and_query, body, extra)).await
    }

    /// POST with a JSON body; a connection failure is an error instead of a panic (for servers
    /// that a test kills while requests are in flight).
    pub async fn try_post(&self, path_and_query: &str, body: &Value) -> reqwest::Result<Reply> {
        let body = body.to_string();
        try_raw(self.signed("POST", path_and_query, Some(body.as_bytes()), &[])).await
    }

    fn signed(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&[u8]>,
        extra: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let bytes = body.unwrap_or_default();
        let signed = sign_request(
            &self.key,
            method,
            path_and_query,
            &self.host,
            bytes,
            self.clock.now(),
        );
        let mut request = self
            .http
            .request(
                method.parse().unwrap(),
                format!("{}{}", self.base, path_and_query),
            )
            .header("x-ms-date", signed.date)
            .header("x-ms-content-sha256", signed.content_hash)
            .header("authorization", signed.authorization);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_vec());
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request
    }

    /// POST with a JSON body.
    pub async fn post(&self, path_and_query: &str, body: &Value) -> Reply {
        self.send("POST", path_and_query, Some(body.to_string().as_bytes()))
            .await
    }

    /// Creates a user (2023-10-01) and returns its id.
    pub async fn create_user(&self) -> String {
        let reply = self
            .post("/identities?api-version=2023-10-01", &serde_json::json!({}))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text());
        reply.json()["identity"]["id"].as_str().unwrap().to_owned()
    }

    /// Issues a token (2023-10-01) and returns it.
    pub async fn issue_token(&self, id: &str, scopes: &[&str]) -> String {
        let reply = self
            .post(
                &format!(
                    "/identities/{}/:issueAccessToken?api-version=2023-10-01",
                    encode(id)
                ),
                &serde_json::json!({ "scopes": scopes }),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["token"].as_str().unwrap().to_owned()
    }

    /// Revokes a user's tokens.
    pub async fn revoke(&self, id: &str) -> Reply {
        self.send(
            "POST",
            &format!(
                "/identities/{}/:revokeAccessTokens?api-version=2023-10-01",
                encode(id)
            ),
            None,
        )
        .await
    }

    /// Deletes a user.
    pub async fn delete(&self, id: &str) -> Reply {
        self.send(
            "DELETE",
            &format!("/identities/{}?api-version=2023-10-01", encode(id)),
            None,
        )
        .await
    }

    /// Introspects a token and returns the JSON answer.
    pub async fn introspect(&self, token: &str) -> Value {
        let reply = self
            .post(
                "/callsign/tokens/:introspect",
                &serde_json::json!({ "token": token }),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }
}

/// Sends any request and reads the reply.
pub async fn raw(request: reqwest::RequestBuilder) -> Reply {
    try_raw(request).await.unwrap()
}

/// Sends any request and reads the reply, or says why it could not.
pub async fn try_raw(request: reqwest::RequestBuilder) -> reqwest::Result<Reply> {
    let response = request.send().await?;
    Ok(Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await?.to_vec(),
    })
}

/// Percent-encodes an id for a path, as the official clients do (`8%3Aacs%3A...`).
pub fn encode(id: &str) -> String {
    id.replace(':', "%3A")
}

/// The JWT payload of a token as JSON.
pub fn payload(token: &str) -> Value {
    let bytes = callsign_common::claims::decode_payload(token).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The JOSE header of a JWT (`alg`, `kid`, `x5t`), decoded but not verified.
pub fn header(token: &str) -> Value {
    use base64::Engine;
    let encoded = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
