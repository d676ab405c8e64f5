//! Headers the service puts on every response: the client request id echo, a correlation vector
//! and the processing time.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use std::time::Instant;

const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-client-request-id");
const MS_CV: HeaderName = HeaderName::from_static("ms-cv");
const PROCESSING_TIME: HeaderName = HeaderName::from_static("x-processing-time");

/// Adds `x-ms-client-request-id` (echoed exactly), `MS-CV` and `X-Processing-Time`.
pub async fn service_headers(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let client_request_id = request.headers().get(&CLIENT_REQUEST_ID).cloned();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Some(id) = client_request_id {
        headers.insert(CLIENT_REQUEST_ID, id);
    }
    headers.insert(MS_CV, correlation_vector());
    let elapsed = format!("{}ms", started.elapsed().as_millis());
    headers.insert(
        PROCESSING_TIME,
        HeaderValue::from_str(&elapsed).expect("digits and 'ms' are a valid header"),
    );
    response
}

/// A correlation vector in the service's form: 22 base64 characters and `.0`.
pub(crate) fn correlation_vector() -> HeaderValue {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness is available");
    let cv = format!("{}.0", STANDARD_NO_PAD.encode(bytes));
    HeaderValue::from_str(&cv).expect("base64 is a valid header")
}
