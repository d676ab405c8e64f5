//! OpenTelemetry trace export over OTLP/HTTP (protobuf), for `callsign serve --otlp-endpoint`:
//! the `otlp` feature. What is exported, and why these crates, is in docs/tracing.md.
//!
//! The server makes one span per request (`callsign_server::http::trace`); here they become
//! OpenTelemetry spans (`tracing-opentelemetry`), are queued by the SDK's batch processor (its own
//! thread: a full queue drops spans, never slows a request), and are posted to the collector by
//! the workspace's reqwest client on the server's runtime. An export that fails is logged once,
//! until one succeeds again; it never touches a response.

use anyhow::Context as _;
use callsign_server::http::trace::{TraceContext, SPAN_TARGET};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::{Layer, Registry};

/// How long one export may take (the OTLP default).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a shutdown waits for the last spans to be exported.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// A running export: the tracing layer to install, the trace context the server continues
/// callers' traces with, and the provider to flush on shutdown.
pub struct Export {
    /// The spans' provider, for [`flush`].
    pub provider: SdkTracerProvider,
    /// The layer turning the request spans into OpenTelemetry spans (taken for the subscriber).
    pub layer: Option<Box<dyn Layer<Registry> + Send + Sync>>,
    /// For `HttpConfig::tracing`.
    pub context: Arc<dyn TraceContext>,
}

impl Export {
    /// Starts exporting to the collector at `endpoint` (a base URL, as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: spans go to `<endpoint>/v1/traces`; a URL already ending
    /// in `/v1/traces` is used as it is), sending on `runtime`.
    pub fn start(endpoint: &str, runtime: tokio::runtime::Handle) -> anyhow::Result<Self> {
        let url = traces_url(endpoint)?;
        let client = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .context("building the OTLP HTTP client")?;
        let sender = Sender {
            client,
            runtime,
            url: url.clone(),
            failing: AtomicBool::new(false),
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(sender)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .context("configuring the OTLP exporter")?;
        let mut resource = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ));
        // OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) wins over ours.
        if !service_name_from_env() {
            resource = resource.with_service_name("callsign");
        }
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter).build())
            .with_resource(resource.build())
            .build();
        let tracer = provider.tracer("callsign");
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            // The request spans and their store operations' (`callsign_server::request::store`),
            // and the warnings and errors logged while serving a request (as span events: logs
            // never hold keys or tokens).
            .with_filter(
                Targets::new()
                    .with_target(SPAN_TARGET, tracing::Level::INFO)
                    .with_target("callsign_server", tracing::Level::WARN),
            )
            .boxed();
        Ok(Self {
            provider,
            layer: Some(layer),
            context: Arc::new(W3cTraceContext(TraceContextPropagator::new())),
        })
    }
}

/// Exports the spans still queued and stops the export (at most [`SHUTDOWN_TIMEOUT`]); call it
/// after the server stopped, while the runtime the spans are sent on still runs, and not from
/// one of its tasks.
pub fn flush(provider: &SdkTracerProvider) {
    if let Err(e) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
        tracing::warn!(error = %e, "exporting the last spans failed");
    }
}

/// `<endpoint>/v1/traces`, unless it already ends so; http or https only.
fn traces_url(endpoint: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(endpoint)
        .with_context(|| format!("the OTLP endpoint {endpoint:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        anyhow::bail!("the OTLP endpoint {endpoint:?} is not an http or https URL");
    }
    let trimmed = endpoint.trim_end_matches('/');
    Ok(if trimmed.ends_with("/v1/traces") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1/traces")
    })
}

fn service_name_from_env() -> bool {
    let set = |name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    set("OTEL_SERVICE_NAME")
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| {
            v.split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        })
}

/// Continues W3C Trace Context (`traceparent`, `tracestate`).
#[derive(Debug)]
struct W3cTraceContext(TraceContextPropagator);

impl TraceContext for W3cTraceContext {
    fn continue_trace(&self, span: &tracing::Span, traceparent: &str, tracestate: Option<&str>) {
        let parent = self.0.extract(&Carrier {
            traceparent,
            tracestate,
        });
        if parent.span().span_context().is_valid() {
            // Fails only when the span is not exported (filtered out): nothing to continue.
            let _ = span.set_parent(parent);
        }
    }
}

/// The two trace context headers, for the propagator.
struct Carrier<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.traceparent),
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// Posts the exporter's requests with the workspace's reqwest client, on the server's runtime
/// (the batch processor's thread has none), and logs failures once until an export succeeds.
#[derive(Debug)]
struct Sender {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    url: String,
    /// Whether the last export failed (and was logged).
    failing: AtomicBool,
}

impl Sender {
    fn outcome(&self, failure: Option<String>) {
        match failure {
            Some(reason) if !self.failing.swap(true, Ordering::Relaxed) => tracing::warn!(
                url = %self.url,
                reason,
                "exporting spans failed; spans are dropped, and further failures are not logged \
                 until an export succeeds"
            ),
            None if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!(url = %self.url, "exporting spans works again")
            }
            _ => {}
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for Sender {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let request = reqwest::Request::try_from(request)?;
        let sent = self.runtime.spawn(async move {
            let response = client.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        });
        let result = match sent.await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(HttpError::from(e)),
            Err(e) => Err(HttpError::from(e)),
        };
        match &result {
            Ok((status, _, _)) if status.is_success() => self.outcome(None),
            Ok((status, _, _)) => self.outcome(Some(format!("the collector answered {status}"))),
            Err(e) => self.outcome(Some(describe(&**e))),
        }
        let (status, headers, body) = result?;
        let mut response = Response::builder().status(status).body(body)?;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

/// An error and its causes, each message once.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let message = e.to_string();
        if !text.contains(&message) {
            text = format!("{text}: {message}");
        }
        cause = e.source();
    }
    text
}
