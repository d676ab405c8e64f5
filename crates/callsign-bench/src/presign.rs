//! Requests signed once and sent many times.
//!
//! The server accepts an HMAC-signed request whose `x-ms-date` is within its clock skew of its own
//! clock (5 minutes, `http::Config::max_clock_skew`) and does not track replays, so a signature
//! stays valid for that long. The harness signs each distinct request once and re-signs it after
//! [`RESIGN_AFTER`], so that an HMAC (and a date format, a hash and a few allocations) per request
//! is not what it measures; `callsign-bench presign` prints the same for `wrk`.

use bytes::Bytes;
use callsign_common::hmac::{host_header, sign_request};
use callsign_common::AccessKey;
use chrono::{DateTime, Utc};
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, Method, Request};
use http_body_util::Full;

/// The api-version every signed request names.
pub const API_VERSION: &str = "2023-10-01";

/// How long a signature is reused: well inside the server's 5-minute skew window, so that a
/// request signed just before a run is still accepted at the end of the longest run.
pub const RESIGN_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The server's accepted clock skew, which bounds how long a printed signature stays valid.
pub const SKEW_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// One request before signing: method, path (without the api-version) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The method.
    pub method: Method,
    /// The path and query, as sent; `?api-version=...` is appended when signed.
    pub path: String,
    /// The JSON body, or `None` for a bodiless request.
    pub body: Option<Bytes>,
    /// Whether the request is signed (`GET /healthz` is not, as probes call it).
    pub signed: bool,
}

/// A request ready to send: its headers, including the signature, are fixed.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// The method.
    pub method: Method,
    /// The request target (origin form).
    pub path_and_query: http::Uri,
    /// Host, content type and, when signed, the three HMAC headers.
    pub headers: HeaderMap,
    /// The body (empty for a bodiless request).
    pub body: Bytes,
    /// When it was signed; it is valid until this plus the server's skew.
    pub signed_at: DateTime<Utc>,
}

/// Signs templates for one endpoint with one key.
#[derive(Clone)]
pub struct Signer {
    key: AccessKey,
    host: String,
}

impl Signer {
    /// A signer for requests to `endpoint`, signing the Host header a client of it sends.
    pub fn new(endpoint: &url::Url, key: AccessKey) -> anyhow::Result<Self> {
        let host = host_header(endpoint)
            .ok_or_else(|| anyhow::anyhow!("the endpoint {endpoint} has no host"))?;
        Ok(Self { key, host })
    }

    /// Signs `template` as of `now` (a signed template gets `?api-version=`).
    pub fn sign(&self, template: &Template, now: DateTime<Utc>) -> SignedRequest {
        let path = match template.signed {
            true => format!("{}?api-version={API_VERSION}", template.path),
            false => template.path.clone(),
        };
        let body = template.body.clone().unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert(HOST, header_value(&self.host));
        if template.body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if template.signed {
            let signed = sign_request(
                &self.key,
                template.method.as_str(),
                &path,
                &self.host,
                &body,
                now,
            );
            let names = [
                (HeaderName::from_static("x-ms-date"), signed.date),
                (
                    HeaderName::from_static("x-ms-content-sha256"),
                    signed.content_hash,
                ),
                (AUTHORIZATION, signed.authorization),
            ];
            for (name, value) in names {
                headers.insert(name, header_value(&value));
            }
        }
        SignedRequest {
            method: template.method.clone(),
            path_and_query: path.parse().expect("a path and query is a valid URI"),
            headers,
            body,
            signed_at: now,
        }
    }
}

/// Header values the signer makes are base64, dates and host names: always valid.
fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("signed header values are visible ASCII")
}

impl SignedRequest {
    /// A fresh `http::Request` with these parts (cheap: the parts are reference-counted).
    pub fn to_request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.path_and_query.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }

    /// Whether it should be signed again before sending it at `now`.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        now - self.signed_at >= RESIGN_AFTER || now < self.signed_at
    }

    /// One line for the wrk script (`wrk/presigned.lua`): method, path, `x-ms-date`,
    /// `x-ms-content-sha256`, `Authorization` and body, tab-separated (none of them can hold a
    /// tab or a newline: header values are visible ASCII and bodies compact JSON).
    pub fn wrk_line(&self) -> String {
        let header = |name: &str| {
            self.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        [
            self.method.as_str(),
            &self.path_and_query.to_string(),
            header("x-ms-date"),
            header("x-ms-content-sha256"),
            header("authorization"),
            &String::from_utf8_lossy(&self.body),
        ]
        .join("\t")
    }
}

/// The same templates, signed, re-signed when their signatures get old.
pub struct Presigned {
    signer: Signer,
    templates: Vec<Template>,
    signed: Vec<SignedRequest>,
}

impl Presigned {
    /// Signs every template now.
    pub fn new(signer: Signer, templates: Vec<Template>) -> Self {
        let now = Utc::now();
        let signed = templates.iter().map(|t| signer.sign(t, now)).collect();
        Self {
            signer,
            templates,
            signed,
        }
    }

    /// Request `index` (modulo the count), signed again first if it is older than
    /// [`RESIGN_AFTER`] at `now`.
    pub fn get(&mut self, index: usize, now: DateTime<Utc>) -> &SignedRequest {
        let index = index % self.signed.len();
        if self.signed[index].is_stale(now) {
            self.signed[index] = self.signer.sign(&self.templates[index], now);
        }
        &self.signed[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callsign_common::hmac::{parse_authorization, string_to_sign};

    fn signer() -> Signer {
        let url = url::Url::parse("http://127.0.0.1:8080/").unwrap();
        Signer::new(&url, AccessKey::from_base64("pw==").unwrap()).unwrap()
    }

    fn issue() -> Template {
        Template {
            method: Method::POST,
            path: "/identities/8:acs:x/:issueAccessToken".into(),
            body: Some(Bytes::from_static(br#"{"scopes":["chat"]}"#)),
            signed: true,
        }
    }

    fn header<'a>(request: &'a SignedRequest, name: &str) -> &'a str {
        request.headers[name].to_str().unwrap()
    }

    /// The check the server makes (`auth/hmac.rs`): the signature over method, target, date,
    /// host and content hash, with the key.
    fn verifies(request: &SignedRequest, key: &AccessKey) -> bool {
        let (_, signature) = parse_authorization(header(request, "authorization")).unwrap();
        let sts = string_to_sign(
            request.method.as_str(),
            &request.path_and_query.to_string(),
            header(request, "x-ms-date"),
            header(request, "host"),
            header(request, "x-ms-content-sha256"),
        );
        key.verify(&sts, signature)
    }

    #[test]
    fn a_presigned_request_verifies_as_the_server_checks_it() {
        let now = Utc::now();
        let request = signer().sign(&issue(), now);
        assert!(verifies(&request, &AccessKey::from_base64("pw==").unwrap()));
        assert!(!verifies(
            &request,
            &AccessKey::from_base64("cXE=").unwrap()
        ));
        assert_eq!(header(&request, "host"), "127.0.0.1:8080");
        assert_eq!(
            request.path_and_query,
            "/identities/8:acs:x/:issueAccessToken?api-version=2023-10-01"
        );
        let date = DateTime::parse_from_rfc2822(header(&request, "x-ms-date")).unwrap();
        assert!((now - date.with_timezone(&Utc)).abs() < chrono::TimeDelta::seconds(1));
    }

    #[test]
    fn signatures_are_reused_within_the_window_and_renewed_after_it() {
        let mut set = Presigned::new(signer(), vec![issue()]);
        let first = set.get(0, Utc::now()).clone();
        let soon = first.signed_at + chrono::TimeDelta::seconds(59);
        assert_eq!(set.get(0, soon).signed_at, first.signed_at);
        let later = first.signed_at + RESIGN_AFTER;
        let renewed = set.get(0, later).clone();
        assert_eq!(renewed.signed_at, later);
        assert_ne!(
            renewed.headers["authorization"],
            first.headers["authorization"]
        );
        // A reused signature is still inside the server's window when it is renewed.
        assert!(RESIGN_AFTER < SKEW_WINDOW);
    }

    #[test]
    fn an_unsigned_template_carries_no_signature() {
        let healthz = Template {
            method: Method::GET,
            path: "/healthz".into(),
            body: None,
            signed: false,
        };
        let request = signer().sign(&healthz, Utc::now());
        assert_eq!(request.path_and_query, "/healthz");
        assert!(request.headers.get("authorization").is_none());
        assert!(request.body.is_empty());
    }

    #[test]
    fn wrk_lines_hold_six_tab_separated_fields() {
        let request = signer().sign(&issue(), Utc::now());
        let line = request.wrk_line();
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 6);
        assert_eq!(fields[0], "POST");
        assert_eq!(fields[2], header(&request, "x-ms-date"));
        assert_eq!(fields[5], r#"{"scopes":["chat"]}"#);
        assert!(!line.contains('\n'));
    }
}
