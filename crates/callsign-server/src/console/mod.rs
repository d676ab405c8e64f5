//! The web console at `/console` (README, "Console"): identities, tokens, keys and activity in a
//! browser, rendered on the server as plain HTML forms (POST, then a redirect or a result page),
//! with one small stylesheet and one small script embedded in the binary. Nothing is loaded from
//! another origin and every response carries a strict `Content-Security-Policy` (no inline
//! script or style), so the console works offline and an injected value cannot run.
//!
//! Signing in takes an access key; the session cookie is `HttpOnly`, `SameSite=Strict`, limited
//! to `/console`, `Secure` over TLS, and ends after [`session::LIFETIME`]. Every form carries
//! the session's CSRF token. Changes go through [`crate::http::perform`], the code the API runs
//! once a request authenticated (throttling, validation, the domain, the audit trail), with the
//! console as the actor (docs/protocol.md §9): the console has no rules of its own.
//!
//! Access keys appear on the Keys page only (masked until revealed), never in a log, an error
//! or an audit event.

mod activity;
mod html;
mod identities;
mod inspect;
mod keys;
pub mod session;
mod settings;
mod signin;

use crate::audit::{Actor, KeySlot, RequestOrigin};
use crate::auth::IssuerConfig;
use crate::clock::Clock;
use crate::http::api_version::ApiVersion;
use crate::http::routes::AcsOperation;
use crate::http::AppState;
use crate::keys::KeyWatcher;
use crate::store::Backend;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use callsign_common::hmac::host_header;
use session::{Session, Sessions, SignInLimiter};
use std::sync::Arc;

/// The policy on every console response: only this origin's files, no inline code, no framing,
/// forms posting only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// Whether and how the console is served (`--no-console`, `--dev`).
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Serve `/console` (on unless `--no-console`).
    pub enabled: bool,
    /// Pre-fill the sign-in form with the well-known development key, when it is the primary
    /// key in force (`--dev`): it is published, so showing it gives nothing away.
    pub prefill_dev_key: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            prefill_dev_key: false,
        }
    }
}

/// What the console keeps beside the API's [`AppState`]: sessions, the sign-in limit, and what
/// the Keys and Settings pages read and change.
pub struct Console {
    sessions: Sessions,
    limiter: SignInLimiter,
    keys: Arc<KeyWatcher>,
    backend: Arc<dyn Backend>,
    clock: Arc<dyn Clock>,
    secure_cookies: bool,
    prefill_dev_key: bool,
    endpoint: String,
    issuers: Vec<IssuerConfig>,
}

impl Console {
    /// The console of a server storing in `backend`, its keys kept current by `keys`, serving
    /// `endpoint` (HTTPS when `tls`), trusting `issuers`.
    pub fn new(
        config: &ConsoleConfig,
        keys: Arc<KeyWatcher>,
        backend: Arc<dyn Backend>,
        clock: Arc<dyn Clock>,
        endpoint: String,
        tls: bool,
        issuers: Vec<IssuerConfig>,
    ) -> Self {
        Self {
            sessions: Sessions::default(),
            limiter: SignInLimiter::default(),
            keys,
            backend,
            clock,
            secure_cookies: tls,
            prefill_dev_key: config.prefill_dev_key,
            endpoint,
            issuers,
        }
    }
}

/// The console's routes, for [`crate::http::router`] to merge when the console is on.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/console",
            get(|| async { redirect("/console/identities") }),
        )
        .route(
            "/console/",
            get(|| async { redirect("/console/identities") }),
        )
        .route("/console/assets/console.css", get(assets::css))
        .route("/console/assets/console.js", get(assets::js))
        .route("/console/sign-in", get(signin::form).post(signin::sign_in))
        .route("/console/sign-out", post(signin::sign_out))
        .route(
            "/console/identities",
            get(identities::list).post(identities::create),
        )
        .route("/console/identities/new", get(identities::new_form))
        .route("/console/identity", get(identities::show))
        .route("/console/identity/token", post(identities::issue))
        .route("/console/identity/revoke", post(identities::revoke))
        .route(
            "/console/identity/delete",
            get(identities::confirm_delete).post(identities::delete),
        )
        .route(
            "/console/inspect",
            get(inspect::form).post(inspect::inspect),
        )
        .route("/console/keys", get(keys::show))
        .route(
            "/console/keys/regenerate",
            get(keys::confirm_regenerate).post(keys::regenerate),
        )
        .route(
            "/console/keys/rotate",
            get(keys::confirm_rotate).post(keys::rotate),
        )
        .route("/console/activity", get(activity::show))
        .route("/console/settings", get(settings::show))
        .layer(axum::middleware::from_fn(security_headers))
}

/// The headers of every console response, whatever answered it.
async fn security_headers(request: Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        // Not `no-referrer`: with it a browser sends `Origin: null` on form posts, and the
        // origin check could not tell this site from another.
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The embedded stylesheet and script.
mod assets {
    use axum::http::{header, HeaderValue};
    use axum::response::{IntoResponse, Response};

    const CSS: &str = include_str!("assets/console.css");
    const JS: &str = include_str!("assets/console.js");

    fn asset(body: &'static str, content_type: &'static str) -> Response {
        let mut response = body.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        // Embedded in the binary: they change only with it.
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=300"),
        );
        response
    }

    pub async fn css() -> Response {
        asset(CSS, "text/css; charset=utf-8")
    }

    pub async fn js() -> Response {
        asset(JS, "text/javascript; charset=utf-8")
    }
}

/// A `303 See Other` to `location` (after a POST: the browser GETs it).
pub(crate) fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// An HTML page response.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A page saying what went wrong, with the navigation when signed in.
pub(crate) fn error_page(status: StatusCode, csrf: Option<&str>, message: &str) -> Response {
    let main = format!(
        "<h1>{}</h1>{}",
        html::esc(status.canonical_reason().unwrap_or("Error")),
        html::notice("error", &html::esc(message))
    );
    html(
        status,
        html::page("Error", html::Section::None, csrf, &main),
    )
}

/// The console of the state: the routes exist only when it is on.
fn console_of(state: &AppState) -> Result<&Console, Box<Response>> {
    state
        .console
        .as_deref()
        .ok_or_else(|| Box::new(crate::http::error::ApiError::not_found().into_response()))
}

/// A request from a signed-in browser: the session, and its id (sign-out ends it).
pub(crate) struct Signed<'a> {
    pub console: &'a Console,
    pub session: Session,
    pub id: String,
}

impl Signed<'_> {
    /// The session's CSRF token, for the forms of a page.
    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }

    /// Who the audit trail records for this session's changes.
    pub fn actor(&self) -> Actor {
        Actor::Console {
            which: self.session.slot,
        }
    }

    /// Where a change came from: the console's actor, the browser's address.
    pub fn origin(&self, parts: &Parts) -> RequestOrigin {
        crate::http::origin(parts, self.actor())
    }
}

/// The session cookie's value, if the request has one.
fn session_cookie(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == session::COOKIE)
        .map(|(_, value)| value)
}

/// The request's session, if it has a live one whose key is still the one in its slot.
fn session_of<'a>(state: &'a AppState, parts: &Parts) -> Option<Signed<'a>> {
    let console = state.console.as_deref()?;
    let id = session_cookie(parts)?;
    let now = console.clock.now();
    let session = console.sessions.get(id, now)?;
    let keys = console.keys.live().get();
    let key = match session.slot {
        KeySlot::Primary => &keys.access.primary,
        KeySlot::Secondary => &keys.access.secondary,
    };
    if !session.key_matches(key.as_bytes()) {
        // The key it signed in with was regenerated: whoever held only that key is out.
        console.sessions.end(id);
        return None;
    }
    Some(Signed {
        console,
        session,
        id: id.to_owned(),
    })
}

/// The session of a page request, or a redirect to the sign-in page.
pub(crate) fn signed_page<'a>(
    state: &'a AppState,
    parts: &Parts,
) -> Result<Signed<'a>, Box<Response>> {
    console_of(state)?;
    session_of(state, parts).ok_or_else(|| Box::new(redirect("/console/sign-in")))
}

/// A submitted form's fields.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    fn parse(bytes: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(bytes).into_owned().collect())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (checkboxes).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether a POST came from a page of this origin, where the browser says (`Origin`): forms
/// of another site are refused even before the CSRF token is looked at.
fn same_origin(parts: &Parts) -> bool {
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        return true;
    };
    // HTTP/2 has no Host header: the authority is the URI's.
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .and_then(|u| host_header(&u));
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(&o))
}

/// A change from a signed-in browser: its session, its form, checked for the session's CSRF
/// token. Refused with 401 without a session, 403 without the right token or from another
/// origin.
pub(crate) async fn signed_form<'a>(
    state: &'a AppState,
    parts: &Parts,
    body: Body,
) -> Result<(Signed<'a>, Form), Response> {
    console_of(state).map_err(|response| *response)?;
    let Some(signed) = session_of(state, parts) else {
        return Err(error_page(
            StatusCode::UNAUTHORIZED,
            None,
            "Sign in first: this action needs a console session.",
        ));
    };
    let bytes = crate::http::read_body(body, parts, &state.config)
        .await
        .map_err(IntoResponse::into_response)?;
    let form = Form::parse(&bytes);
    let token_ok = form
        .get("csrf")
        .is_some_and(|t| signed.session.csrf_matches(t));
    if !token_ok || !same_origin(parts) {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            Some(signed.csrf()),
            "This form is stale or came from another site; nothing was changed. Reload the page and try again.",
        ));
    }
    Ok((signed, form))
}

/// What an API operation answered the console.
pub(crate) struct Answer {
    /// The response's JSON body (`Null` for a 204).
    pub body: serde_json::Value,
    /// The token marker the metrics count, carried over to the console's response.
    pub token: Option<crate::metrics::TokenIssued>,
}

/// Why an API operation refused the console: the API's status and message (never a secret).
pub(crate) struct Refusal {
    /// The API's status (400, 404, 429, …).
    pub status: StatusCode,
    /// The API's error message.
    pub message: String,
}

/// Performs `op` with `body` as the signed-in session, through the API's own code path.
pub(crate) async fn call(
    state: &AppState,
    signed: &Signed<'_>,
    parts: &Parts,
    op: AcsOperation,
    body: serde_json::Value,
) -> Result<Answer, Refusal> {
    let bytes = Bytes::from(body.to_string());
    let response = crate::http::perform(
        state,
        op,
        ApiVersion::V2025_03_02Preview,
        parts,
        bytes,
        signed.origin(parts),
    )
    .await
    .unwrap_or_else(IntoResponse::into_response);
    let status = response.status();
    let token = response
        .extensions()
        .get::<crate::metrics::TokenIssued>()
        .copied();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .map_err(|_| Refusal {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "The answer could not be read.".to_owned(),
        })?;
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if status.is_success() {
        return Ok(Answer { body, token });
    }
    let message = body["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("The operation failed ({status})."));
    Err(Refusal { status, message })
}

/// `response` with the token marker of `answer`, so that the metrics count a console-minted
/// token as they count the API's.
pub(crate) fn with_token(
    answer_token: Option<crate::metrics::TokenIssued>,
    response: Response,
) -> Response {
    match answer_token {
        Some(crate::metrics::TokenIssued(alg)) => crate::metrics::TokenIssued::mark(alg, response),
        None => response,
    }
}
