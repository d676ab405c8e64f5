//! HMAC-SHA256 request signing as ACS defines it (docs/protocol.md §3).
//!
//! One implementation serves both sides: clients call [`sign_request`] to produce the headers, and the
//! server calls [`string_to_sign`] and [`AccessKey::verify`] to check them.

use aws_lc_rs::{digest, hmac};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The headers a signed request carries, in the order they are signed.
pub const SIGNED_HEADERS: &str = "x-ms-date;host;x-ms-content-sha256";

/// Base64(SHA-256) of an empty body; clients send it for bodiless requests.
pub const EMPTY_CONTENT_HASH: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

/// A resource access key: the secret behind HMAC signing.
///
/// Debug never prints the key material, so keys can live in structs that are logged.
#[derive(Clone)]
pub struct AccessKey(Vec<u8>);

/// The access key was not valid base64 (the key itself is never part of the message).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the access key is not valid base64")]
pub struct InvalidAccessKey;

impl AccessKey {
    /// Decodes a key as ACS shows it (standard base64, with padding).
    pub fn from_base64(key: &str) -> Result<Self, InvalidAccessKey> {
        let bytes = STANDARD.decode(key.trim()).map_err(|_| InvalidAccessKey)?;
        if bytes.is_empty() {
            return Err(InvalidAccessKey);
        }
        Ok(Self(bytes))
    }

    /// Wraps raw key bytes (for example freshly generated random bytes).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The key as base64, for connection strings; callers must keep it out of logs.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.0)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Signs `string_to_sign` and returns the base64 signature.
    pub fn sign(&self, string_to_sign: &str) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        STANDARD.encode(hmac::sign(&key, string_to_sign.as_bytes()).as_ref())
    }

    /// Checks a base64 signature in constant time.
    pub fn verify(&self, string_to_sign: &str, signature_b64: &str) -> bool {
        let Ok(signature) = STANDARD.decode(signature_b64) else {
            return false;
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        hmac::verify(&key, string_to_sign.as_bytes(), &signature).is_ok()
    }
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessKey(<redacted>)")
    }
}

/// Two keys are equal when their bytes are; compared in constant time.
impl PartialEq for AccessKey {
    fn eq(&self, other: &Self) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.0, &other.0).is_ok()
    }
}
impl Eq for AccessKey {}

/// Base64(SHA-256(body)), the value of `x-ms-content-sha256`.
pub fn content_hash(body: &[u8]) -> String {
    STANDARD.encode(digest::digest(&digest::SHA256, body).as_ref())
}

/// The string ACS signs: `VERB\npath_and_query\ndate;host;content_hash`.
///
/// `path_and_query` is the request target exactly as sent (still percent-encoded).
pub fn string_to_sign(
    method: &str,
    path_and_query: &str,
    date: &str,
    host: &str,
    content_hash: &str,
) -> String {
    format!(
        "{}\n{}\n{};{};{}",
        method.to_ascii_uppercase(),
        path_and_query,
        date,
        host,
        content_hash
    )
}

/// The `Authorization` header value for a signature.
pub fn authorization_header(signature: &str) -> String {
    format!("HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={signature}")
}

/// Parses an `Authorization: HMAC-SHA256 SignedHeaders=...&Signature=...` value.
///
/// Returns the signed header names and the signature, or `None` when the value is not of that form.
pub fn parse_authorization(value: &str) -> Option<(Vec<&str>, &str)> {
    let rest = value.strip_prefix("HMAC-SHA256")?.trim_start();
    let mut headers = None;
    let mut signature = None;
    for part in rest.split('&') {
        let (name, val) = part.split_once('=')?;
        match name.trim() {
            n if n.eq_ignore_ascii_case("SignedHeaders") => {
                headers = Some(val.split(';').map(str::trim).collect::<Vec<_>>())
            }
            n if n.eq_ignore_ascii_case("Signature") => signature = Some(val.trim()),
            _ => return None,
        }
    }
    Some((headers?, signature?))
}

/// The headers a client adds to sign one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `x-ms-date`, RFC 1123.
    pub date: String,
    /// `x-ms-content-sha256`.
    pub content_hash: String,
    /// `Authorization`.
    pub authorization: String,
}

/// The Host header a request to `url` sends, as it is signed: the host, with the port unless it
/// is the scheme's default (which `Url::port` already omits); `None` for a URL without a host.
pub fn host_header(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// Signs one request: what an HMAC pipeline policy calls on every try.
///
/// `host` is the authority as sent in the Host header (with a non-default port).
///
/// ```
/// use callsign_common::hmac::{sign_request, AccessKey};
/// use chrono::TimeZone;
///
/// // The published test vector: key `pw==`, GET /testPath?testQuery=test on example.com.
/// let key = AccessKey::from_base64("pw==").unwrap();
/// let date = chrono::Utc.with_ymd_and_hms(2022, 4, 13, 18, 9, 12).unwrap();
/// let signed = sign_request(&key, "GET", "/testPath?testQuery=test", "example.com", b"", date);
/// assert_eq!(signed.date, "Wed, 13 Apr 2022 18:09:12 GMT");
/// assert_eq!(signed.content_hash, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
/// assert_eq!(
///     signed.authorization,
///     "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256\
///      &Signature=DGdgwggJWnQyc6EHjR/Vbqg1ES64KpD6U2XwTDDj3tU="
/// );
/// ```
pub fn sign_request(
    key: &AccessKey,
    method: &str,
    path_and_query: &str,
    host: &str,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> SignedHeaders {
    let date = rfc1123(now);
    let content_hash = content_hash(body);
    let signature = key.sign(&string_to_sign(
        method,
        path_and_query,
        &date,
        host,
        &content_hash,
    ));
    SignedHeaders {
        date,
        content_hash,
        authorization: authorization_header(&signature),
    }
}

/// Formats a time as the RFC 1123 date HTTP and ACS use (`Wed, 13 Apr 2022 18:09:12 GMT`).
pub fn rfc1123(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(path: &str) -> String {
        let key = AccessKey::from_base64("pw==").unwrap();
        key.sign(&string_to_sign(
            "GET",
            path,
            "Wed, 13 Apr 2022 18:09:12 GMT",
            "example.com",
            EMPTY_CONTENT_HASH,
        ))
    }

    #[test]
    fn published_vector_with_query() {
        assert_eq!(
            vector("/testPath?testQuery=test"),
            "DGdgwggJWnQyc6EHjR/Vbqg1ES64KpD6U2XwTDDj3tU="
        );
    }

    #[test]
    fn published_vector_without_query() {
        assert_eq!(
            vector("/testPath"),
            "+6tWkg3lNKVjQHHmxkdGQcJjUgzclsWTMebnuCz1ngU="
        );
    }

    #[test]
    fn content_hashes_match_recordings() {
        assert_eq!(content_hash(b""), EMPTY_CONTENT_HASH);
        assert_eq!(
            content_hash(b"{}"),
            "RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="
        );
    }

    #[test]
    fn verify_accepts_own_signature_and_rejects_others() {
        let key = AccessKey::from_base64("pw==").unwrap();
        let sts = string_to_sign("GET", "/testPath", "d", "h", EMPTY_CONTENT_HASH);
        assert!(key.verify(&sts, &key.sign(&sts)));
        assert!(!key.verify(&sts, "+6tWkg3lNKVjQHHmxkdGQcJjUgzclsWTMebnuCz1ngX="));
        assert!(!key.verify(&sts, "not base64!"));
        let other = AccessKey::from_bytes(vec![1, 2, 3]);
        assert!(!other.verify(&sts, &key.sign(&sts)));
    }

    #[test]
    fn debug_hides_key() {
        let key = AccessKey::from_base64("c2VjcmV0LWtleQ==").unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("c2VjcmV0"));
        assert!(!shown.contains("secret"));
    }

    #[test]
    fn invalid_keys_are_rejected() {
        assert_eq!(AccessKey::from_base64("***"), Err(InvalidAccessKey));
        assert_eq!(AccessKey::from_base64(""), Err(InvalidAccessKey));
    }

    #[test]
    fn authorization_round_trips() {
        let header = authorization_header("abc+/=");
        let (headers, sig) = parse_authorization(&header).unwrap();
        assert_eq!(headers, vec!["x-ms-date", "host", "x-ms-content-sha256"]);
        assert_eq!(sig, "abc+/=");
        assert!(parse_authorization("Bearer x").is_none());
        assert!(parse_authorization("HMAC-SHA256 Signature=x").is_none());
    }

    #[test]
    fn sign_request_produces_verifiable_headers() {
        let key = AccessKey::from_base64("pw==").unwrap();
        let now = chrono::DateTime::from_timestamp(1_649_873_352, 0).unwrap();
        let signed = sign_request(&key, "get", "/testPath", "example.com", b"", now);
        assert_eq!(signed.date, "Wed, 13 Apr 2022 18:09:12 GMT");
        assert_eq!(
            signed.authorization,
            authorization_header("+6tWkg3lNKVjQHHmxkdGQcJjUgzclsWTMebnuCz1ngU=")
        );
    }
}
