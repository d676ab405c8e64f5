//! One keep-alive HTTP/1.1 connection per worker, over TCP or TLS, driven with hyper's
//! connection-level client.
//!
//! A pooled client (reqwest) costs a pool look-up, URL parsing and header building per request:
//! measured on one core it was the bottleneck (≈ 11,000 `GET /healthz`/s where `wrk` reached
//! ≈ 88,000/s against the same server). A worker here owns its connection and sends pre-built
//! requests on it, so the client's cost per request is hyper's framing and two syscalls.

use crate::presign::SignedRequest;
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{handshake, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Where to connect: host, port and, for `https`, the TLS settings.
#[derive(Clone)]
pub struct Target {
    host: String,
    port: u16,
    tls: Option<TlsConnector>,
}

impl Target {
    /// The target of an `http` or `https` endpoint; https trusts what the OS trusts (so a
    /// development CA is named with `SSL_CERT_FILE`).
    pub fn new(endpoint: &url::Url) -> Result<Self> {
        let host = endpoint.host_str().context("the endpoint has no host")?;
        // `Url::host_str` keeps an IPv6 address's brackets; connecting needs the bare address.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = endpoint
            .port_or_known_default()
            .context("the endpoint has no port")?;
        let tls = match endpoint.scheme() {
            "http" => None,
            "https" => Some(TlsConnector::from(Arc::new(tls_config()?))),
            other => bail!("unsupported scheme {other}: use http or https"),
        };
        Ok(Self { host, port, tls })
    }

    /// Opens one connection.
    pub async fn connect(&self) -> Result<Conn> {
        let (sender, connection) = self.open().await?;
        Ok(Conn {
            sender,
            connection: Some(connection),
            target: self.clone(),
        })
    }

    async fn open(&self) -> Result<(SendRequest<Full<Bytes>>, Driver)> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("connecting to {}:{}", self.host, self.port))?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => start(tcp).await,
            Some(tls) => {
                let name = ServerName::try_from(self.host.clone())?;
                start(tls.connect(name, tcp).await.context("TLS handshake")?).await
            }
        }
    }
}

fn tls_config() -> Result<rustls::ClientConfig> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The future that reads and writes a connection (hyper's `Connection`).
type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// Hands the stream to hyper.
async fn start<S>(stream: S) -> Result<(SendRequest<Full<Bytes>>, Driver)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = handshake(TokioIo::new(stream)).await?;
    Ok((sender, Box::pin(connection)))
}

/// Awaits `future` while driving the connection in the same task, so that reading an answer and
/// writing the next request happen in one poll, as in an event loop (a spawned connection task
/// would run only after every other ready task, delaying each next request).
async fn beside<F: Future>(connection: &mut Option<Driver>, future: F) -> F::Output {
    let Some(driver) = connection.as_mut() else {
        return future.await;
    };
    tokio::pin!(future);
    let ended = tokio::select! {
        biased;
        output = &mut future => return output,
        _ = driver.as_mut() => true,
    };
    // The connection closed (its error, if any, fails the request): never poll it again.
    if ended {
        *connection = None;
    }
    future.await
}

/// One open connection; requests on it are sent one after another.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    connection: Option<Driver>,
    target: Target,
}

/// A response's status and whole body.
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
}

impl Conn {
    /// Sends `request` and reads the whole answer, on a new connection if the server closed this
    /// one (a keep-alive limit or idle timeout of a server or proxy), as a pooled client would.
    pub async fn send(&mut self, request: &SignedRequest) -> Result<Answer> {
        let connection = &mut self.connection;
        if connection.is_none() || beside(connection, self.sender.ready()).await.is_err() {
            (self.sender, self.connection) = {
                let (sender, driver) = self.target.open().await?;
                (sender, Some(driver))
            };
        }
        let connection = &mut self.connection;
        let response = beside(connection, self.sender.send_request(request.to_request())).await?;
        let status = response.status();
        let body = beside(connection, response.into_body().collect()).await?;
        Ok(Answer {
            status,
            body: body.to_bytes(),
        })
    }
}

impl Answer {
    /// The body, or an error naming the status and the body when the status is not 2xx.
    pub fn success(self) -> Result<Bytes> {
        if !self.status.is_success() {
            bail!("{}: {}", self.status, String::from_utf8_lossy(&self.body));
        }
        Ok(self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presign::{Signer, Template};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers one request per connection, then closes it.
    async fn one_request_per_connection() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer).await;
                let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_closed_connection_is_reopened() {
        let addr = one_request_per_connection().await;
        let endpoint = url::Url::parse(&format!("http://{addr}/")).unwrap();
        let mut conn = Target::new(&endpoint).unwrap().connect().await.unwrap();
        let key = callsign_common::AccessKey::from_base64("pw==").unwrap();
        let healthz = Template {
            method: http::Method::GET,
            path: "/healthz".into(),
            body: None,
            signed: false,
        };
        let request = Signer::new(&endpoint, key)
            .unwrap()
            .sign(&healthz, chrono::Utc::now());
        for _ in 0..3 {
            let answer = conn.send(&request).await.unwrap();
            assert_eq!(answer.success().unwrap(), "ok");
        }
    }

    #[test]
    fn targets_of_http_and_https_endpoints() {
        let http = Target::new(&url::Url::parse("http://127.0.0.1:8080/").unwrap()).unwrap();
        assert_eq!(
            (http.host.as_str(), http.port, http.tls.is_none()),
            ("127.0.0.1", 8080, true)
        );
        let https = Target::new(&url::Url::parse("https://acs.example.com").unwrap()).unwrap();
        assert_eq!((https.host.as_str(), https.port), ("acs.example.com", 443));
        assert!(https.tls.is_some());
        let v6 = Target::new(&url::Url::parse("http://[::1]:9/").unwrap()).unwrap();
        assert_eq!(v6.host, "::1");
        assert!(Target::new(&url::Url::parse("ftp://example.com/").unwrap()).is_err());
    }
}
