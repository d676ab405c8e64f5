//! Checking an HMAC-SHA256 signed request.

use super::AuthError;
use crate::keys::{AccessKeys, KeyKind};
use callsign_common::hmac::{content_hash, parse_authorization, string_to_sign};
use chrono::{DateTime, Utc};
use http::HeaderMap;

/// The parts of a request the signature covers.
pub struct HmacRequest<'a> {
    /// The method.
    pub method: &'a str,
    /// The request target exactly as sent (path and query, still percent-encoded).
    pub path_and_query: &'a str,
    /// The host the client addressed (Host header or HTTP/2 authority).
    pub host: Option<&'a str>,
    /// All headers.
    pub headers: &'a HeaderMap,
    /// The body bytes.
    pub body: &'a [u8],
}

/// Accepts the request if it is signed with either access key, its date is within `max_skew` of
/// `now`, and its content hash matches its body, and says which key signed it (for the audit
/// trail's actor).
pub fn authenticate_hmac(
    keys: &AccessKeys,
    request: &HmacRequest<'_>,
    now: DateTime<Utc>,
    max_skew: chrono::Duration,
) -> Result<KeyKind, AuthError> {
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = header("authorization").ok_or(AuthError::Missing)?;
    let (signed, signature) = parse_authorization(authorization).ok_or(AuthError::Malformed)?;
    let date_header = match signed.first().map(|h| h.to_ascii_lowercase()) {
        Some(h) if h == "x-ms-date" || h == "date" => h,
        _ => return Err(AuthError::Malformed),
    };
    if signed.len() != 3
        || !signed[1].eq_ignore_ascii_case("host")
        || !signed[2].eq_ignore_ascii_case("x-ms-content-sha256")
    {
        return Err(AuthError::Malformed);
    }
    let date = header(&date_header).ok_or(AuthError::MissingSignedHeader)?;
    let host = request.host.ok_or(AuthError::MissingSignedHeader)?;
    let hash = header("x-ms-content-sha256").ok_or(AuthError::MissingSignedHeader)?;

    let sent_at = DateTime::parse_from_rfc2822(date).map_err(|_| AuthError::Date)?;
    if (now - sent_at.with_timezone(&Utc)).abs() > max_skew {
        return Err(AuthError::Date);
    }
    if hash != content_hash(request.body) {
        return Err(AuthError::ContentHash);
    }
    // Most clients sign the Host header as sent; the Java SDK signs the host without its port, and
    // the Python SDK built from an endpoint with a trailing `/` signs `host/`.
    let with_slash = format!("{host}/");
    let hosts = [
        Some(host),
        host_without_port(host),
        Some(with_slash.as_str()),
    ];
    for host in hosts.into_iter().flatten() {
        let sts = string_to_sign(request.method, request.path_and_query, date, host, hash);
        if keys.primary.verify(&sts, signature) {
            return Ok(KeyKind::Primary);
        }
        if keys.secondary.verify(&sts, signature) {
            return Ok(KeyKind::Secondary);
        }
    }
    Err(AuthError::Signature)
}

fn host_without_port(host: &str) -> Option<&str> {
    let (name, port) = host.rsplit_once(':')?;
    (port.chars().all(|c| c.is_ascii_digit()) && !name.is_empty() && !name.ends_with(':'))
        .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use callsign_common::hmac::sign_request;
    use callsign_common::AccessKey;
    use http::HeaderValue;

    fn keys() -> AccessKeys {
        AccessKeys {
            primary: AccessKey::from_bytes(vec![1; 32]),
            secondary: AccessKey::from_bytes(vec![2; 32]),
        }
    }

    fn signed_headers(key: &AccessKey, host: &str, body: &[u8], at: DateTime<Utc>) -> HeaderMap {
        let signed = sign_request(
            key,
            "POST",
            "/identities?api-version=2023-10-01",
            host,
            body,
            at,
        );
        let mut h = HeaderMap::new();
        h.insert("x-ms-date", HeaderValue::from_str(&signed.date).unwrap());
        h.insert(
            "x-ms-content-sha256",
            HeaderValue::from_str(&signed.content_hash).unwrap(),
        );
        h.insert(
            "authorization",
            HeaderValue::from_str(&signed.authorization).unwrap(),
        );
        h
    }

    fn check(
        headers: &HeaderMap,
        host: &str,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<KeyKind, AuthError> {
        let req = HmacRequest {
            method: "POST",
            path_and_query: "/identities?api-version=2023-10-01",
            host: Some(host),
            headers,
            body,
        };
        authenticate_hmac(&keys(), &req, now, chrono::Duration::minutes(5))
    }

    #[test]
    fn both_keys_are_accepted_and_others_are_not() {
        let now = Utc::now();
        let k = keys();
        for (key, kind) in [
            (&k.primary, KeyKind::Primary),
            (&k.secondary, KeyKind::Secondary),
        ] {
            let h = signed_headers(key, "localhost:8080", b"{}", now);
            assert_eq!(check(&h, "localhost:8080", b"{}", now), Ok(kind));
        }
        let stranger = AccessKey::from_bytes(vec![3; 32]);
        let h = signed_headers(&stranger, "localhost:8080", b"{}", now);
        assert_eq!(
            check(&h, "localhost:8080", b"{}", now),
            Err(AuthError::Signature)
        );
    }

    #[test]
    fn host_signed_without_port_is_accepted() {
        let now = Utc::now();
        let h = signed_headers(&keys().primary, "localhost", b"", now);
        assert_eq!(check(&h, "localhost:8080", b"", now), Ok(KeyKind::Primary));
        assert_eq!(
            check(&h, "otherhost:8080", b"", now),
            Err(AuthError::Signature)
        );
    }

    #[test]
    fn tampered_body_and_stale_dates_are_rejected() {
        let now = Utc::now();
        let h = signed_headers(&keys().primary, "h", b"{}", now);
        assert_eq!(check(&h, "h", b"{ }", now), Err(AuthError::ContentHash));
        let late = now + chrono::Duration::minutes(6);
        assert_eq!(check(&h, "h", b"{}", late), Err(AuthError::Date));
        let early = now - chrono::Duration::minutes(6);
        assert_eq!(check(&h, "h", b"{}", early), Err(AuthError::Date));
        assert_eq!(
            check(&h, "h", b"{}", now + chrono::Duration::minutes(4)),
            Ok(KeyKind::Primary)
        );
    }

    #[test]
    fn date_header_may_replace_x_ms_date() {
        let now = Utc::now();
        let mut h = signed_headers(&keys().primary, "h", b"", now);
        let date = h.remove("x-ms-date").unwrap();
        h.insert("date", date);
        let auth = h
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .replace("x-ms-date", "date");
        h.insert("authorization", HeaderValue::from_str(&auth).unwrap());
        assert_eq!(check(&h, "h", b"", now), Ok(KeyKind::Primary));
    }

    #[test]
    fn missing_and_malformed_headers_are_rejected() {
        let now = Utc::now();
        assert_eq!(
            check(&HeaderMap::new(), "h", b"", now),
            Err(AuthError::Missing)
        );
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert_eq!(check(&h, "h", b"", now), Err(AuthError::Malformed));
        let mut h = signed_headers(&keys().primary, "h", b"", now);
        h.remove("x-ms-content-sha256");
        assert_eq!(
            check(&h, "h", b"", now),
            Err(AuthError::MissingSignedHeader)
        );
    }
}
