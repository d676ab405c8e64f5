//! Checks of a request as a whole that HTTP itself demands, before any route: exactly one valid
//! `Host` on HTTP/1.1 (RFC 9112 §3.2), and, over HTTP/2, the header-size limit the connection
//! layer applies to HTTP/1 heads. Malformed HTTP/1 heads never get this far: the connection layer
//! answers them (`crate::connections`).

use super::error::ApiError;
use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, request::Parts, uri::Authority, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Per RFC 9113 §6.5.2, each field counts its name, its value and 32 octets.
const FIELD_OVERHEAD: usize = 32;

/// Refuses a request with no, several or an invalid `Host` (400), or, over HTTP/2, a header
/// list over the limit (431); all in the ACS shape.
pub async fn refuse_malformed(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(e) = check(&parts, state.config.max_header_bytes) {
        let mut response = e.into_response();
        if parts.version >= Version::HTTP_2 {
            // Connection-specific headers are not allowed in HTTP/2.
            response.headers_mut().remove(header::CONNECTION);
        }
        return response;
    }
    let http2 = parts.version >= Version::HTTP_2;
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if http2 {
        response.headers_mut().remove(header::CONNECTION);
    }
    response
}

fn check(parts: &Parts, max_header_bytes: usize) -> Result<(), ApiError> {
    let hosts = parts.headers.get_all(header::HOST);
    let mut values = hosts.iter();
    match (values.next(), values.next()) {
        (_, Some(_)) => return Err(bad_host()),
        (Some(host), None) if !valid_host(host.as_bytes()) => return Err(bad_host()),
        (None, _) if parts.version == Version::HTTP_11 => return Err(bad_host()),
        _ => {}
    }
    if parts.version >= Version::HTTP_2 && header_list_size(parts) > max_header_bytes {
        return Err(ApiError::header_too_large());
    }
    Ok(())
}

fn bad_host() -> ApiError {
    ApiError::bad_request("The request must have exactly one valid Host header.")
}

/// `uri-host [ ":" port ]`, or empty (RFC 9110 §7.2).
fn valid_host(value: &[u8]) -> bool {
    value.is_empty() || (!value.contains(&b'@') && Authority::try_from(value).is_ok())
}

/// The header list size as HTTP/2 counts it, pseudo-header fields included.
fn header_list_size(parts: &Parts) -> usize {
    let field = |name: usize, value: usize| name + value + FIELD_OVERHEAD;
    let uri = &parts.uri;
    let mut size = field(":method".len(), parts.method.as_str().len())
        + field(
            ":path".len(),
            uri.path_and_query().map_or(1, |p| p.as_str().len()),
        );
    if let Some(scheme) = uri.scheme_str() {
        size += field(":scheme".len(), scheme.len());
    }
    if let Some(authority) = uri.authority() {
        size += field(":authority".len(), authority.as_str().len());
    }
    size + parts
        .headers
        .iter()
        .map(|(name, value)| field(name.as_str().len(), value.len()))
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(version: Version, hosts: &[&str]) -> Parts {
        let mut builder = Request::get("/healthz").version(version);
        for host in hosts {
            builder = builder.header(header::HOST, *host);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn exactly_one_valid_host() {
        let ok = |v, h: &[&str]| check(&parts(v, h), 1 << 20).is_ok();
        assert!(ok(Version::HTTP_11, &["localhost:8080"]));
        assert!(ok(Version::HTTP_11, &["[::1]:443"]));
        assert!(ok(Version::HTTP_11, &[""]));
        assert!(ok(Version::HTTP_10, &[]));
        assert!(ok(Version::HTTP_2, &[]));
        assert!(!ok(Version::HTTP_11, &[]));
        assert!(!ok(Version::HTTP_11, &["a", "a"]));
        assert!(!ok(Version::HTTP_2, &["a", "b"]));
        assert!(!ok(Version::HTTP_11, &["user@host"]));
        assert!(!ok(Version::HTTP_11, &["a b"]));
    }

    #[test]
    fn http2_header_lists_over_the_limit_are_refused() {
        let mut p = parts(Version::HTTP_2, &[]);
        p.headers.insert("x-big", "v".repeat(1000).parse().unwrap());
        let size = header_list_size(&p);
        assert!(size > 1000 + 32 * 3);
        assert!(check(&p, size).is_ok());
        let e = check(&p, size - 1).unwrap_err();
        assert_eq!(e.status, 431);
        // HTTP/1 heads are measured, and refused, by the connection layer.
        p.version = Version::HTTP_11;
        p.headers.insert(header::HOST, "h".parse().unwrap());
        assert!(check(&p, 10).is_ok());
    }
}
