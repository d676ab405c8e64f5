//! The policy signs what goes on the wire: checked here the way the server checks it, by rebuilding
//! the string to sign from the request and verifying with the key.

use super::*;
use crate::clock::TokioClock;
use crate::hmac::{
    authorization_header, content_hash, parse_authorization, rfc1123, string_to_sign,
    EMPTY_CONTENT_HASH,
};
use azure_core::http::headers::Headers;
use azure_core::http::{
    AsyncRawResponse, ClientOptions, FixedRetryOptions, HttpClient, Method, Pipeline, RetryOptions,
    StatusCode, Transport, Url,
};
use chrono::{DateTime, Utc};
use std::sync::Mutex;

/// The published vectors' date, `Wed, 13 Apr 2022 18:09:12 GMT`.
const VECTOR_TIME: i64 = 1_649_873_352;

#[derive(Debug)]
struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

fn vector_policy() -> HmacAuthenticationPolicy {
    HmacAuthenticationPolicy::with_clock(
        AccessKey::from_base64("pw==").unwrap(),
        Arc::new(FixedClock(
            DateTime::from_timestamp(VECTOR_TIME, 0).unwrap(),
        )),
    )
}

/// The last policy of a test pipeline: records each request as it would be sent, answers 200.
#[derive(Debug, Default)]
struct Capture(Mutex<Vec<Request>>);

#[async_trait::async_trait]
impl Policy for Capture {
    async fn send(
        &self,
        _ctx: &Context,
        request: &mut Request,
        _next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        self.0.lock().unwrap().push(request.clone());
        Ok(AsyncRawResponse::from_bytes(
            StatusCode::Ok,
            Headers::new(),
            Vec::new(),
        ))
    }
}

/// Runs `request` through `policy` followed by a capturing terminal policy.
async fn send_through(policy: HmacAuthenticationPolicy, mut request: Request) -> Request {
    let capture = Arc::new(Capture::default());
    let next: Vec<Arc<dyn Policy>> = vec![capture.clone()];
    policy
        .send(&Context::new(), &mut request, &next)
        .await
        .unwrap();
    let sent = capture.0.lock().unwrap().pop().unwrap();
    sent
}

fn header(request: &Request, name: &'static str) -> String {
    request
        .headers()
        .get_optional_str(&HeaderName::from_static(name))
        .unwrap_or_else(|| panic!("missing {name}"))
        .to_owned()
}

/// What the server does with a received request: the signed-header list must be the ACS one, the
/// body hash must match the body, and the signature must verify over the request as sent, with
/// `host` as the Host header carries it.
fn server_accepts(key: &AccessKey, request: &Request, host: &str) -> bool {
    let authorization = header(request, "authorization");
    let (signed, signature) = parse_authorization(&authorization).unwrap();
    assert_eq!(signed, ["x-ms-date", "host", "x-ms-content-sha256"]);
    let Body::Bytes(body) = request.body() else {
        panic!("byte body expected")
    };
    let hash = header(request, "x-ms-content-sha256");
    assert_eq!(hash, content_hash(body));
    key.verify(
        &string_to_sign(
            request.method().as_ref(),
            &request.path_and_query(),
            &header(request, "x-ms-date"),
            host,
            &hash,
        ),
        signature,
    )
}

#[tokio::test]
async fn signs_the_published_vectors() {
    for (url, signature) in [
        (
            "https://example.com/testPath?testQuery=test",
            "DGdgwggJWnQyc6EHjR/Vbqg1ES64KpD6U2XwTDDj3tU=",
        ),
        (
            "https://example.com/testPath",
            "+6tWkg3lNKVjQHHmxkdGQcJjUgzclsWTMebnuCz1ngU=",
        ),
    ] {
        let request = Request::new(Url::parse(url).unwrap(), Method::Get);
        let sent = send_through(vector_policy(), request).await;
        assert_eq!(header(&sent, "x-ms-date"), "Wed, 13 Apr 2022 18:09:12 GMT");
        assert_eq!(header(&sent, "x-ms-content-sha256"), EMPTY_CONTENT_HASH);
        assert_eq!(
            header(&sent, "authorization"),
            authorization_header(signature)
        );
    }
}

#[tokio::test]
async fn signs_body_port_and_encoded_path_as_sent() {
    let key = AccessKey::from_base64("c2VjcmV0LWtleS1ieXRlcw==").unwrap();
    let policy = HmacAuthenticationPolicy::new(key.clone());
    let mut request = Request::new(
        Url::parse(
            "https://example.com:8443/identities/8%3Aacs%3Ar_u/:issueAccessToken?api-version=2023-10-01",
        )
        .unwrap(),
        Method::Post,
    );
    request.set_body(r#"{"scopes":["chat"]}"#);
    let before = Utc::now();
    let sent = send_through(policy, request).await;
    let after = Utc::now();

    assert_eq!(
        sent.path_and_query(),
        "/identities/8%3Aacs%3Ar_u/:issueAccessToken?api-version=2023-10-01",
        "still percent-encoded"
    );
    assert_ne!(header(&sent, "x-ms-content-sha256"), EMPTY_CONTENT_HASH);
    assert!(server_accepts(&key, &sent, "example.com:8443"));
    assert!(
        !server_accepts(&key, &sent, "example.com"),
        "the port is signed"
    );
    let other = AccessKey::from_base64("b3RoZXIta2V5").unwrap();
    assert!(!server_accepts(&other, &sent, "example.com:8443"));
    // Dated by the system clock at signing time.
    let date = header(&sent, "x-ms-date");
    assert!(date == rfc1123(before) || date == rfc1123(after), "{date}");
}

#[tokio::test]
async fn default_ports_are_not_part_of_the_host() {
    let key = AccessKey::from_base64("pw==").unwrap();
    for (url, host) in [
        ("https://example.com:443/x", "example.com"),
        ("http://example.com:80/x", "example.com"),
        ("http://127.0.0.1:8080/x", "127.0.0.1:8080"),
        ("https://[::1]:8443/x", "[::1]:8443"),
    ] {
        let request = Request::new(Url::parse(url).unwrap(), Method::Get);
        let sent = send_through(HmacAuthenticationPolicy::new(key.clone()), request).await;
        assert!(server_accepts(&key, &sent, host), "{url}");
    }
}

/// A transport that fails the first try with 503 and accepts the second, recording both.
#[derive(Debug, Default)]
struct FlakyTransport(Mutex<Vec<Request>>);

#[async_trait::async_trait]
impl HttpClient for FlakyTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let mut seen = self.0.lock().unwrap();
        seen.push(request.clone());
        let status = if seen.len() == 1 {
            StatusCode::ServiceUnavailable
        } else {
            StatusCode::Ok
        };
        Ok(AsyncRawResponse::from_bytes(
            status,
            Headers::new(),
            Vec::new(),
        ))
    }
}

/// In a real `azure_core` pipeline, as a per-try policy, a retried request is signed again with
/// the date of the retry.
#[tokio::test(start_paused = true)]
async fn every_try_of_a_pipeline_is_signed_anew() {
    let key = AccessKey::from_base64("pw==").unwrap();
    let clock = Arc::new(TokioClock::starting_at(
        DateTime::from_timestamp(VECTOR_TIME, 0).unwrap(),
    ));
    let transport = Arc::new(FlakyTransport::default());
    let options = ClientOptions {
        transport: Some(Transport::new(transport.clone())),
        retry: RetryOptions::fixed(FixedRetryOptions {
            delay: azure_core::time::Duration::seconds(5),
            max_retries: 3,
            ..Default::default()
        }),
        ..Default::default()
    };
    let pipeline = Pipeline::new(
        Some("callsign-common"),
        Some("0.1.0"),
        options,
        Vec::new(),
        vec![Arc::new(HmacAuthenticationPolicy::with_clock(
            key.clone(),
            clock,
        ))],
        None,
    );
    let mut request = Request::new(
        Url::parse("https://example.com/identities?api-version=2023-10-01").unwrap(),
        Method::Post,
    );
    request.set_body("{}");
    let response = pipeline
        .send(&Context::new(), &mut request, None)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::Ok);

    let tries = transport.0.lock().unwrap();
    assert_eq!(tries.len(), 2);
    assert_eq!(
        header(&tries[0], "x-ms-date"),
        "Wed, 13 Apr 2022 18:09:12 GMT"
    );
    assert_ne!(
        header(&tries[1], "x-ms-date"),
        header(&tries[0], "x-ms-date"),
        "the retry carries its own date"
    );
    assert!(tries.iter().all(|t| server_accepts(&key, t, "example.com")));
}

#[tokio::test]
async fn streaming_bodies_and_a_missing_transport_are_errors() {
    let mut request = Request::new(Url::parse("https://example.com/").unwrap(), Method::Post);
    request.set_body(Body::SeekableStream(Box::new(
        azure_core::stream::BytesStream::new(b"{}".to_vec()),
    )));
    assert!(vector_policy().sign(&mut request).is_err());

    let mut request = Request::new(Url::parse("https://example.com/").unwrap(), Method::Get);
    assert!(vector_policy()
        .send(&Context::new(), &mut request, &[])
        .await
        .is_err());
}

#[test]
fn debug_shows_no_key() {
    let policy = HmacAuthenticationPolicy::new(AccessKey::from_base64("c2VjcmV0LWtleQ==").unwrap());
    let shown = format!("{policy:?}");
    assert!(
        !shown.contains("c2VjcmV0") && !shown.contains("secret"),
        "{shown}"
    );
}
