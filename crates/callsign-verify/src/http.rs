//! Requiring a valid token in an axum (tower) service: a middleware that verifies the request's
//! `Authorization: Bearer` token, demands scopes, and hands the claims to the handler through
//! the [`Verified`] extractor.
//!
//! ```no_run
//! use axum::{middleware, routing::get, Router};
//! use callsign_verify::http::{require_token, RequireToken, Verified};
//! use callsign_verify::{Scope, TokenVerifier};
//! use std::sync::Arc;
//!
//! async fn me(Verified(token): Verified) -> String {
//!     token.user.id().to_owned()
//! }
//!
//! # fn app(verifier: TokenVerifier) -> Router {
//! let guard = RequireToken::new(Arc::new(verifier)).with_scope(Scope::Chat);
//! Router::new()
//!     .route("/me", get(me))
//!     .layer(middleware::from_fn_with_state(guard, require_token))
//! # }
//! ```

use crate::{Scope, TokenVerifier, VerifiedToken, VerifyError};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// What a guarded route requires: a token the verifier accepts, with every one of `scopes`.
#[derive(Clone)]
pub struct RequireToken {
    verifier: Arc<TokenVerifier>,
    scopes: Vec<Scope>,
}

impl RequireToken {
    /// Requires a token `verifier` accepts.
    pub fn new(verifier: Arc<TokenVerifier>) -> Self {
        Self {
            verifier,
            scopes: Vec::new(),
        }
    }

    /// Also requires `scope`.
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scopes.push(scope);
        self
    }
}

/// The middleware: 401 without a valid token (`WWW-Authenticate: Bearer error="invalid_token"`),
/// 403 when a scope is missing (`insufficient_scope`), 503 while the verifier cannot decide
/// (keys or revocations unavailable); otherwise the handler runs with the claims in the
/// request's extensions.
pub async fn require_token(
    State(guard): State<RequireToken>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(token) = token else {
        return challenge(StatusCode::UNAUTHORIZED, "invalid_token", "no bearer token");
    };
    let verified = match guard.verifier.verify(token).await {
        Ok(verified) => verified,
        Err(e @ (VerifyError::KeysUnavailable(_) | VerifyError::RevocationsUnavailable)) => {
            return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
        Err(e) => return challenge(StatusCode::UNAUTHORIZED, "invalid_token", &e.to_string()),
    };
    if let Some(missing) = guard.scopes.iter().find(|s| !verified.scopes.contains(s)) {
        let message = format!("the token lacks the scope {missing:?}");
        return challenge(StatusCode::FORBIDDEN, "insufficient_scope", &message);
    }
    request.extensions_mut().insert(verified);
    next.run(request).await
}

/// A refusal with its RFC 6750 challenge; `message` never holds the token.
fn challenge(status: StatusCode, error: &str, message: &str) -> Response {
    let mut response = (status, message.to_owned()).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer error=\"{error}\"")) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The claims of the request's token, for handlers behind [`require_token`]; a handler without
/// the middleware in front gets 401.
#[derive(Debug, Clone)]
pub struct Verified(pub VerifiedToken);

impl<S: Send + Sync> FromRequestParts<S> for Verified {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<VerifiedToken>()
            .cloned()
            .map(Verified)
            .ok_or_else(|| {
                challenge(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "no verified token",
                )
            })
    }
}
