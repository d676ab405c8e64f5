//! The HTTP transport of the client commands: fails at once, with the reason and a fix, when the
//! server cannot be reached (refused, unknown host, untrusted certificate), and trusts a CA file.
//!
//! azure_core's retry policy retries every transport error for up to a minute, which is right for
//! a service that blips and wrong for a command typed at a prompt: a server that is not running
//! or a certificate that is not trusted will not change in a minute. Its retries of 408, 429 and
//! 5xx answers stay, with a short budget ([`retry_options`]).

use azure_core::error::ErrorKind;
use azure_core::http::{AsyncRawResponse, ClientOptions, HttpClient, Request, Transport};
use std::path::Path;
use std::sync::Arc;

/// How long to wait for a TCP connection (and TLS handshake) before giving up.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long to wait for an answer once connected.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Why the server could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum Unreachable {
    /// Nothing listens on the endpoint's port.
    #[error("connection refused at {endpoint}")]
    Refused {
        /// The endpoint asked for.
        endpoint: String,
    },
    /// The server's certificate is not trusted (or not for this host).
    #[error("the certificate of {endpoint} is not trusted: {reason}")]
    Certificate {
        /// The endpoint asked for.
        endpoint: String,
        /// What TLS said.
        reason: String,
    },
    /// Any other failure to connect: an unknown host, a timeout, no route.
    #[error("could not connect to {endpoint}: {reason}")]
    Connect {
        /// The endpoint asked for.
        endpoint: String,
        /// What the connection attempt said.
        reason: String,
    },
}

/// Client options whose transport fails fast (see the module docs), trusting `ca_file` besides
/// the system's roots.
pub fn client_options(ca_file: Option<&Path>) -> anyhow::Result<ClientOptions> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca_file {
        builder = builder.tls_certs_merge(read_certificates(path)?);
    }
    let client = builder.build()?;
    Ok(ClientOptions {
        transport: Some(Transport::new(Arc::new(FailFast(client)))),
        retry: retry_options(),
        ..Default::default()
    })
}

/// The CA certificates of a PEM file (`--ca-file`).
fn read_certificates(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    use anyhow::Context;
    let pem =
        std::fs::read(path).with_context(|| format!("reading the CA file {}", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("reading the CA file {}", path.display()))?;
    if certificates.is_empty() {
        anyhow::bail!("the CA file {} holds no PEM certificate", path.display());
    }
    Ok(certificates)
}

/// Retries of 408, 429 and 5xx answers (honouring `Retry-After`): three, within about ten
/// seconds, instead of azure_core's eight within a minute.
fn retry_options() -> azure_core::http::RetryOptions {
    use azure_core::time::Duration;
    azure_core::http::RetryOptions::exponential(azure_core::http::ExponentialRetryOptions {
        initial_delay: Duration::milliseconds(500),
        max_retries: 3,
        max_total_elapsed: Duration::seconds(10),
        max_delay: Duration::seconds(4),
    })
}

/// reqwest, with failures to connect turned into errors the retry policy does not retry.
#[derive(Debug)]
struct FailFast(reqwest::Client);

#[async_trait::async_trait]
impl HttpClient for FailFast {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        match self.0.execute_request(request).await {
            Ok(response) => Ok(response),
            Err(error) => {
                let endpoint = endpoint_of(request);
                match classify(&error, endpoint) {
                    Some(unreachable) => Err(azure_core::Error::new(ErrorKind::Other, unreachable)),
                    None => Err(error),
                }
            }
        }
    }
}

/// `scheme://host:port/` of the request, as the user wrote it in the connection string.
fn endpoint_of(request: &Request) -> String {
    let url = request.url();
    let mut endpoint = url.clone();
    endpoint.set_path("/");
    endpoint.set_query(None);
    endpoint.to_string()
}

/// What a transport error means when it is a failure to connect, from its causes.
fn classify(error: &(dyn std::error::Error + 'static), endpoint: String) -> Option<Unreachable> {
    if let Some(e) = find::<rustls::Error>(error) {
        return Some(certificate(endpoint, e));
    }
    let refused = find::<std::io::Error>(error)
        .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
    if refused {
        return Some(Unreachable::Refused { endpoint });
    }
    find::<reqwest::Error>(error)
        .is_some_and(reqwest::Error::is_connect)
        .then(|| Unreachable::Connect {
            reason: innermost(error),
            endpoint,
        })
}

/// The first `T` among `error` and its causes, looking inside `io::Error`s too: their
/// `source()` skips the error they wrap (TLS errors arrive as an io::Error in an io::Error).
fn find<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(found) = current.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if let Some(found) = find::<T>(inner) {
                return Some(found);
            }
        }
        cause = current.source();
    }
    None
}

fn certificate(endpoint: String, error: &rustls::Error) -> Unreachable {
    Unreachable::Certificate {
        endpoint,
        reason: error.to_string(),
    }
}

/// The message of the deepest cause (`Name or service not known`, `connection timed out`).
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = error;
    while let Some(next) = deepest.source() {
        deepest = next;
    }
    deepest.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connections_are_recognised_through_their_wrappers() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let wrapped = azure_core::Error::with_error(ErrorKind::Connection, io, "failed to execute");
        let found = classify(&wrapped, "http://127.0.0.1:1/".into());
        assert!(
            matches!(&found, Some(Unreachable::Refused { endpoint }) if endpoint == "http://127.0.0.1:1/"),
            "{found:?}"
        );
    }

    #[test]
    fn certificate_errors_inside_io_errors_are_recognised() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        // As hyper-util hands it over: an io::Error in an io::Error.
        let io = std::io::Error::other(io);
        let wrapped = azure_core::Error::with_error(ErrorKind::Io, io, "failed to execute");
        let found = classify(&wrapped, "https://localhost:1/".into()).unwrap();
        assert!(
            found
                .to_string()
                .starts_with("the certificate of https://localhost:1/ is not trusted"),
            "{found}"
        );
    }

    #[test]
    fn other_transport_errors_are_left_to_the_retry_policy() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let wrapped = azure_core::Error::with_error(ErrorKind::Io, io, "failed to execute");
        assert!(classify(&wrapped, "http://h/".into()).is_none());
    }
}
