//! HMAC request signing as an `azure_core` pipeline policy (docs/protocol.md §3).
//!
//! Add [`HmacAuthenticationPolicy`] to a pipeline's *per-try* policies so that every try, retries
//! included, is signed with a current `x-ms-date`: a retry that reused the first try's date could
//! fall outside the server's allowed clock skew. The signing itself is [`crate::hmac::sign_request`];
//! this module only extracts what it signs from an `azure_core` request.

use std::sync::Arc;

use azure_core::error::ErrorKind;
use azure_core::http::headers::{HeaderName, AUTHORIZATION, MS_DATE};
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Body, Context, Request};

use crate::clock::{Clock, SystemClock};
use crate::hmac::{sign_request, AccessKey, SignedHeaders};

/// The `x-ms-content-sha256` header: Base64(SHA-256(body)).
pub const CONTENT_SHA256: HeaderName = HeaderName::from_static("x-ms-content-sha256");

/// Signs every request with an ACS access key (`Authorization: HMAC-SHA256 ...`).
///
/// Debug shows no key material.
///
/// ```
/// use std::sync::Arc;
/// use azure_core::http::{policies::Policy, Method, Request, Url};
/// use callsign_common::hmac::AccessKey;
/// use callsign_common::hmac_policy::HmacAuthenticationPolicy;
///
/// let policy = HmacAuthenticationPolicy::new(AccessKey::from_base64("pw==").unwrap());
/// let mut request = Request::new(
///     Url::parse("https://example.com:8443/identities?api-version=2023-10-01").unwrap(),
///     Method::Post,
/// );
/// request.set_body("{}");
/// policy.sign(&mut request).unwrap();
/// let auth = request.headers().get_optional_str(&"authorization".into()).unwrap();
/// assert!(auth.starts_with("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature="));
///
/// // In a pipeline, as a per-try policy:
/// let per_try: Vec<Arc<dyn Policy>> = vec![Arc::new(policy)];
/// # let _ = per_try;
/// ```
#[derive(Debug, Clone)]
pub struct HmacAuthenticationPolicy {
    key: AccessKey,
    clock: Arc<dyn Clock>,
}

impl HmacAuthenticationPolicy {
    /// A policy that signs with `key`, dating requests by the system clock.
    pub fn new(key: AccessKey) -> Self {
        Self::with_clock(key, Arc::new(SystemClock))
    }

    /// A policy with an injected clock (tests, or a clock corrected for server skew).
    pub fn with_clock(key: AccessKey, clock: Arc<dyn Clock>) -> Self {
        Self { key, clock }
    }

    /// Signs `request` in place: sets `x-ms-date`, `x-ms-content-sha256` and `Authorization`.
    ///
    /// Signs the method, the path and query exactly as they will be sent (percent-encoded), the
    /// host with its port when the port is not the scheme's default, and the body bytes. Fails for
    /// a streaming body, whose bytes cannot be hashed without consuming it.
    pub fn sign(&self, request: &mut Request) -> azure_core::Result<()> {
        let host = host_header(request)?;
        let body = match request.body() {
            Body::Bytes(bytes) => bytes.clone(),
            Body::SeekableStream(_) => {
                return Err(azure_core::Error::with_message(
                    ErrorKind::Other,
                    "HMAC signing needs the body bytes; a streaming body cannot be signed",
                ))
            }
        };
        let SignedHeaders {
            date,
            content_hash,
            authorization,
        } = sign_request(
            &self.key,
            request.method().as_ref(),
            &request.path_and_query(),
            &host,
            &body,
            self.clock.now(),
        );
        request.insert_header(MS_DATE, date);
        request.insert_header(CONTENT_SHA256, content_hash);
        request.insert_header(AUTHORIZATION, authorization);
        Ok(())
    }
}

/// The Host header the transport will send ([`crate::hmac::host_header`]).
fn host_header(request: &Request) -> azure_core::Result<String> {
    crate::hmac::host_header(request.url()).ok_or_else(|| {
        azure_core::Error::with_message(
            ErrorKind::Other,
            "cannot sign a request URL without a host",
        )
    })
}

#[async_trait::async_trait]
impl Policy for HmacAuthenticationPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        self.sign(request)?;
        let Some((following, rest)) = next.split_first() else {
            return Err(azure_core::Error::with_message(
                ErrorKind::Other,
                "the HMAC policy must be followed by a transport policy",
            ));
        };
        following.send(ctx, request, rest).await
    }
}

#[cfg(test)]
mod tests;
