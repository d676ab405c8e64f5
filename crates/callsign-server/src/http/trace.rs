//! One `tracing` span per request, for distributed tracing (docs/tracing.md).
//!
//! The server depends on no tracing backend: it makes the span, with the ACS operation name, the
//! method, the route template, the status and the caller's correlation headers, and leaves
//! exporting it to whatever subscriber the process installed (the `callsign` binary's OpenTelemetry
//! layer, built with its `otlp` feature). Continuing a caller's W3C trace needs that backend, so
//! it is asked of a [`TraceContext`] the binary supplies. Without one ([`HttpConfig::tracing`]
//! unset) no span is made at all: requests cost nothing more and logs look as before.
//!
//! Spans never hold the `Authorization` header, keys, tokens, signatures, ids or query values.
//!
//! [`HttpConfig::tracing`]: super::HttpConfig::tracing

use super::routes;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use tracing::field::Empty;
use tracing::Instrument;

/// The target of the request spans, so that a subscriber can route them to its exporter and keep
/// them out of the log lines.
pub const SPAN_TARGET: &str = "callsign_server::request";

/// Continues a caller's trace: the W3C Trace Context (`traceparent`, `tracestate`) a request
/// carries becomes the parent of its span. Implemented by the process's tracing backend.
pub trait TraceContext: std::fmt::Debug + Send + Sync {
    /// Makes `span`, not yet entered, a child of the trace that `traceparent` (and `tracestate`)
    /// name; a malformed `traceparent` is ignored, leaving the span the root of a new trace.
    fn continue_trace(&self, span: &tracing::Span, traceparent: &str, tracestate: Option<&str>);
}

/// Middleware serving each request inside its span (outermost, so that the span covers the whole
/// request, metrics and logs included).
pub async fn request_span(
    State(context): State<Arc<dyn TraceContext>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method();
    let path = request.uri().path();
    let headers = request.headers();
    // Computed up front: an OpenTelemetry span's name cannot change once it has started.
    let operation = routes::operation_of(method, path);
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        "request",
        otel.name = operation,
        otel.kind = "server",
        otel.status_code = Empty,
        callsign.operation = operation,
        http.request.method = method.as_str(),
        http.route = routes::template_of(method, path),
        http.response.status_code = Empty,
        az.client_request_id = header(headers, "x-ms-client-request-id"),
        ms_cv = Empty,
        ms_cv.request = header(headers, "ms-cv"),
    );
    if let Some(traceparent) = header(headers, "traceparent") {
        context.continue_trace(&span, traceparent, header(headers, "tracestate"));
    }
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    // As an i64: the OpenTelemetry bridge records unsigned integers as text.
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if let Some(cv) = header(response.headers(), "ms-cv") {
        span.record("ms_cv", cv);
    }
    // OpenTelemetry's HTTP conventions: a server span is an error on 5xx only; a 4xx is the
    // client's.
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
    response
}

/// A header's value, when it is text.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
