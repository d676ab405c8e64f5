//! The HTTP layer: routing, api-versions, authentication of each request, error bodies and
//! response headers. Handlers call the domain; nothing here touches the store directly.

pub mod access;
pub mod admin;
pub mod api_version;
pub mod assignment_fields;
mod audit;
pub mod body;
pub mod entra;
pub mod error;
pub mod events;
pub mod exchange;
pub mod headers;
pub mod identities;
pub mod introspect;
pub mod paging;
pub mod revocations;
pub mod routes;
pub mod trace;
pub mod wellformed;

use crate::audit::{Actor, AuditLog, EventType, PendingEvents, RequestOrigin};
use crate::auth::{
    authenticate_bearer, authenticate_hmac, HmacRequest, ManagementConfig, TrustedIssuers,
};
use crate::domain::access::AccessService;
use crate::domain::entra::EntraAccessService;
use crate::domain::IdentityService;
use crate::metrics::Metrics;
use crate::throttling::Throttle;
use api_version::{ApiVersion, VersionPolicy};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, request::Parts, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use body::JsonBody;
use error::{ApiError, NoSupportedVersions};
use routes::{AcsOperation, Route};
use std::sync::Arc;
use std::time::Duration;

/// Limits and tolerances of the HTTP layer, and of the connections it is served on.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest accepted difference between a request's date and the server's clock.
    pub max_clock_skew: chrono::Duration,
    /// How api-versions callsign does not know are treated (`--api-versions`).
    pub api_versions: VersionPolicy,
    /// Whether `POST /callsign/:reset` may wipe every identity and assignment (`--dev`,
    /// `--allow-reset`); otherwise the route does not exist.
    pub allow_reset: bool,
    /// How long a client has to send a request's line and headers: counted from the accept for
    /// a connection's first request, from the first byte for later ones. A connection that sent
    /// part of a head is answered 408; one that sent nothing is closed.
    pub header_read_timeout: Duration,
    /// How long a connection may wait for its next request after a response before it is closed.
    pub keep_alive_timeout: Duration,
    /// How long a request's body may take to arrive once its head has (408 after it).
    pub body_read_timeout: Duration,
    /// Largest request line and headers, in bytes (over HTTP/2: the header list as
    /// SETTINGS_MAX_HEADER_LIST_SIZE counts it); over it: 431.
    pub max_header_bytes: usize,
    /// Most connections served at once; `None`: derived from the open-file limit
    /// ([`crate::limits::OpenFiles::connection_limit`]).
    pub max_connections: Option<usize>,
    /// Most bytes held, across all connections, for requests not yet fully received (heads
    /// being read and bodies being read); over it, the connections that have waited longest
    /// are closed.
    pub max_unfinished_request_bytes: usize,
    /// Serve each request in a span for distributed tracing, continuing the caller's W3C trace
    /// through this ([`trace`], docs/tracing.md); `None` (the default): no spans.
    pub tracing: Option<Arc<dyn trace::TraceContext>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            max_clock_skew: chrono::Duration::minutes(5),
            allow_reset: false,
            api_versions: VersionPolicy::Strict,
            header_read_timeout: Duration::from_secs(20),
            keep_alive_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            max_header_bytes: 32 * 1024,
            max_connections: None,
            max_unfinished_request_bytes: 32 * 1024 * 1024,
            tracing: None,
        }
    }
}

/// What every handler shares.
pub struct AppState {
    /// The identity operations.
    pub identities: IdentityService,
    /// HTTP limits.
    pub config: HttpConfig,
    /// Issuers whose tokens are trusted (bearer auth, Teams exchange).
    pub issuers: Arc<TrustedIssuers>,
    /// Who may manage identities with a bearer token.
    pub management: ManagementConfig,
    /// Teams extension assignments and exchange.
    pub access: AccessService,
    /// Entra assignments and exchange (preview).
    pub entra: EntraAccessService,
    /// Each operation group's limit per window (`[limits]`).
    pub throttle: Throttle,
    /// Prometheus metrics (`GET /metrics`).
    pub metrics: Arc<Metrics>,
    /// Whether the storage takes writes (`/readyz`).
    pub readiness: Arc<crate::readiness::Readiness>,
    /// The audit trail every state change is recorded in before its response.
    pub audit: Arc<AuditLog>,
    /// The web console's sessions and keys (`/console`); `None` when it is off (`--no-console`):
    /// its routes then do not exist.
    pub console: Option<Arc<crate::console::Console>>,
}

/// `GET /readyz`: 200 `ready` while the storage takes writes, else 503 `ServiceUnavailable`
/// saying why (docs/protocol.md §7.6). No authentication, like `/healthz`: it holds no secret.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.readiness.status() {
        Ok(()) => "ready".into_response(),
        Err(reason) => ApiError::not_ready(&reason).into_response(),
    }
}

/// The service's router.
pub fn router(state: Arc<AppState>) -> Router {
    let metrics = state.metrics.clone();
    let tracing = state.config.tracing.clone();
    let console = match state.console {
        Some(_) => crate::console::router(),
        None => Router::new(),
    };
    let router = Router::new()
        .merge(console)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/.well-known/jwks.json", get(jwks))
        .fallback(dispatch)
        // A wrong method on /healthz or the JWKS gets the ACS body too, not axum's empty 405.
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state,
            wellformed::refuse_malformed,
        ))
        .layer(axum::middleware::from_fn(headers::service_headers))
        .layer(axum::middleware::from_fn(log_request))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::record_requests,
        ));
    match tracing {
        Some(context) => router.layer(axum::middleware::from_fn_with_state(
            context,
            trace::request_span,
        )),
        None => router,
    }
}

/// One INFO line per request: method, route template (never ids or query values), status,
/// milliseconds and the client's request id.
async fn log_request(request: Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let route = routes::template_of(&method, request.uri().path());
    let client_request_id = request
        .headers()
        .get("x-ms-client-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let response = next.run(request).await;
    tracing::info!(
        method = %method,
        route,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        client_request_id = %client_request_id,
        "request"
    );
    response
}

async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    let jwks = state.identities.keys().get().ring.jwks();
    let mut response = identities::json(StatusCode::OK, &jwks);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// Every ACS and callsign API request: route, api-version, authentication, body, operation —
/// in that order, as the service checks them.
async fn dispatch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let route = match routes::resolve(&parts.method, parts.uri.path()) {
        Ok(route) => route,
        Err(e) => return e.into_response(),
    };
    // Named where the route is known, so that the metrics need not resolve the path again.
    let operation = crate::metrics::Operation(route.operation_name());
    let mut response = match route {
        Route::Acs(op) => {
            let supported = api_version::supported_by(&op);
            let mut response = acs(&state, op, &parts, body)
                .await
                .unwrap_or_else(IntoResponse::into_response);
            if response.extensions().get::<NoSupportedVersions>().is_none() {
                response.headers_mut().insert(
                    HeaderName::from_static("api-supported-versions"),
                    HeaderValue::from_str(&supported).expect("valid header"),
                );
            }
            response
        }
        Route::Introspect => introspect(&state, &parts, body)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Route::ListIdentities => callsign_admin(&state, &parts, body, false)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Route::Reset => callsign_admin(&state, &parts, body, true)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Route::Revocations => match authenticated_body(&state, &parts, body).await {
            Ok(_) => revocations::list(&state.identities, &state.audit, parts.uri.query())
                .await
                .unwrap_or_else(IntoResponse::into_response),
            Err(e) => e.into_response(),
        },
        Route::Events => match authenticated_body(&state, &parts, body).await {
            Ok(_) => events::feed(&state.audit, parts.uri.query())
                .await
                .unwrap_or_else(IntoResponse::into_response),
            Err(e) => e.into_response(),
        },
        // On this listener as management calls are authenticated; `--metrics-addr` has no auth.
        Route::Metrics => match authenticated_body(&state, &parts, body).await {
            Ok(_) => state.metrics.response().await,
            Err(e) => e.into_response(),
        },
    };
    response.extensions_mut().insert(operation);
    response
}

/// The management routes of callsign's own: listing identities, and a reset where the server
/// allows one (elsewhere the route does not exist: 404, as before it did).
async fn callsign_admin(
    state: &AppState,
    parts: &Parts,
    body: Body,
    reset: bool,
) -> Result<Response, ApiError> {
    if reset && !state.config.allow_reset {
        return Err(ApiError::not_found());
    }
    let (_, origin) = authenticated_body(state, parts, body).await?;
    if reset {
        let event = state.audit.event(EventType::DataReset, None, &origin);
        let response = admin::reset(&state.identities, &PendingEvents::new(vec![event])).await?;
        state.audit.appended();
        Ok(response)
    } else {
        admin::list(&state.identities, parts.uri.query()).await
    }
}

async fn acs(
    state: &AppState,
    op: AcsOperation,
    parts: &Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let served = api_version::resolve(parts.uri.query(), &op, state.config.api_versions)?;
    let mut response = acs_operation(state, op, served.version, parts, body)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    if let Some(warning) = served.warning() {
        response.headers_mut().insert(header::WARNING, warning);
    }
    Ok(response)
}

async fn acs_operation(
    state: &AppState,
    op: AcsOperation,
    version: ApiVersion,
    parts: &Parts,
    body: Body,
) -> Result<Response, ApiError> {
    if !op.available_in(version) {
        return Err(ApiError::not_found());
    }
    // The Teams extension exchange is authorised by the user's own bearer token, checked there.
    let (bytes, origin) = if matches!(
        op,
        AcsOperation::TeamsExtensionExchange | AcsOperation::EntraExchange
    ) {
        let bytes = read_body(body, parts, &state.config).await?;
        (bytes, origin(parts, Actor::Unauthenticated))
    } else {
        authenticated_body(state, parts, body).await?
    };
    perform(state, op, version, parts, bytes, origin).await
}

/// An authenticated ACS operation: throttled, performed by the domain and recorded in the audit
/// trail as `origin`'s. The API calls it once a request's signature or bearer token verified,
/// the console ([`crate::console`]) once its session did: neither path has rules of its own.
pub(crate) async fn perform(
    state: &AppState,
    op: AcsOperation,
    version: ApiVersion,
    parts: &Parts,
    bytes: Bytes,
    origin: RequestOrigin,
) -> Result<Response, ApiError> {
    // Counted once the request is known to be the resource's own (an HMAC request without the
    // key cannot use up its budget), before its body is parsed: a throttled request is refused
    // whatever it asks.
    if let Some(group) = op.throttling_group() {
        state.throttle.admit(group).await?;
    }
    let planned = audit::plan(state, &op, &bytes);
    let events = audit::pending(state, planned.as_ref(), &origin);
    let service = &state.identities;
    let outcome = match op {
        AcsOperation::CreateIdentity => {
            identities::create(service, version, &JsonBody::parse(&bytes)?, &events).await
        }
        AcsOperation::GetIdentity(id) => identities::get(service, version, &id).await,
        AcsOperation::DeleteIdentity(id) => identities::delete(service, &id, &events).await,
        AcsOperation::RevokeTokens(id) => identities::revoke(service, &id, &events).await,
        AcsOperation::IssueToken(id) => {
            identities::issue_token(service, version, &id, &JsonBody::parse(&bytes)?).await
        }
        AcsOperation::IssueTokenLegacy(id) => {
            identities::issue_token_legacy(service, version, &id, &JsonBody::parse(&bytes)?).await
        }
        AcsOperation::TeamsUserExchange => {
            exchange::teams_user(service, &state.issuers, version, &JsonBody::parse(&bytes)?).await
        }
        AcsOperation::TeamsExtensionExchange => {
            JsonBody::parse(&bytes)?;
            access::exchange(&state.access, service, &state.issuers, &parts.headers).await
        }
        AcsOperation::GetTeamsExtensionAssignment(tenant, object) => {
            access::get(&state.access, &tenant, &object).await
        }
        AcsOperation::PutTeamsExtensionAssignment(tenant, object) => {
            let body = JsonBody::parse(&bytes)?;
            access::put(&state.access, &tenant, &object, &body, &events).await
        }
        AcsOperation::DeleteTeamsExtensionAssignment(tenant, object) => {
            access::delete(&state.access, &tenant, &object, &events).await
        }
        AcsOperation::EntraExchange => {
            JsonBody::parse(&bytes)?;
            entra::exchange(&state.entra, service, &state.issuers, &parts.headers).await
        }
        AcsOperation::ListEntraAssignments => {
            entra::list(&state.entra, version, parts.uri.query()).await
        }
        AcsOperation::UpdateEntraAssignments => {
            entra::update(&state.entra, &JsonBody::parse(&bytes)?, &events).await
        }
        AcsOperation::GetEntraAssignment(object) => entra::get(&state.entra, &object).await,
        AcsOperation::PutEntraAssignment(object) => {
            entra::put(&state.entra, &object, &JsonBody::parse(&bytes)?, &events).await
        }
        AcsOperation::DeleteEntraAssignment(object) => {
            entra::delete(&state.entra, &object, &events).await
        }
    };
    audit::record(state, planned, origin, outcome).await
}

async fn introspect(state: &AppState, parts: &Parts, body: Body) -> Result<Response, ApiError> {
    let (bytes, _) = authenticated_body(state, parts, body).await?;
    introspect::introspect(&state.identities, &JsonBody::parse(&bytes)?).await
}

/// Who sent a request, with what request id and from where, for the audit trail.
pub(crate) fn origin(parts: &Parts, actor: Actor) -> RequestOrigin {
    RequestOrigin {
        actor,
        client_request_id: parts
            .headers
            .get("x-ms-client-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        remote_address: parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0),
    }
}

/// Reads the body (within the limit) and authenticates the request: a bearer token of a trusted
/// issuer, or an HMAC signature over the body. Returns the body and who sent it.
async fn authenticated_body(
    state: &AppState,
    parts: &Parts,
    body: Body,
) -> Result<(Bytes, RequestOrigin), ApiError> {
    let bytes = read_body(body, parts, &state.config).await?;
    if let Some(token) = bearer_token(&parts.headers) {
        let caller = authenticate_bearer(&state.issuers, &state.management, token)
            .await
            .map_err(|e| refused(state, parts, e))?;
        let actor = Actor::Bearer {
            oid: caller.oid,
            appid: caller.appid,
        };
        return Ok((bytes, origin(parts, actor)));
    }
    let keys = state.identities.keys().get();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let request = HmacRequest {
        method: parts.method.as_str(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
        host,
        headers: &parts.headers,
        body: &bytes,
    };
    let now = state.identities.clock().now();
    let which = authenticate_hmac(&keys.access, &request, now, state.config.max_clock_skew)
        .map_err(|e| refused(state, parts, e))?;
    let actor = Actor::AccessKey {
        which: which.into(),
    };
    Ok((bytes, origin(parts, actor)))
}

/// A refused authentication: counted, logged at INFO with its reason (never the key or the
/// signature), and answered `401 Denied`.
fn refused(state: &AppState, parts: &Parts, e: crate::auth::AuthError) -> ApiError {
    state.metrics.auth_failure(e.reason());
    tracing::info!(
        reason = %e,
        route = routes::template_of(&parts.method, parts.uri.path()),
        "authentication refused"
    );
    ApiError::denied()
}

/// The token of an `Authorization: Bearer <token>` header, if the request has one.
fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Reads the body: 413 over the limit, 408 when it does not arrive within the body-read timeout.
pub(crate) async fn read_body(
    body: Body,
    parts: &Parts,
    config: &HttpConfig,
) -> Result<Bytes, ApiError> {
    let limit = config.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::body_too_large());
    }
    let read = tokio::time::timeout(config.body_read_timeout, collect_body(body, limit)).await;
    let result = read.unwrap_or_else(|_| Err(ApiError::request_timeout()));
    // Over HTTP/2 the stream ends, not the connection; `Connection` is not even allowed there.
    result.map_err(|mut e| {
        e.close_connection &= parts.version < axum::http::Version::HTTP_2;
        e
    })
}

async fn collect_body(mut body: Body, limit: usize) -> Result<Bytes, ApiError> {
    use http_body::Body as _;
    let mut bytes = Vec::new();
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame =
            frame.map_err(|_| ApiError::bad_request("The request body could not be read."))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(ApiError::body_too_large());
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(bytes))
}
