//! ACS error bodies (docs/protocol.md §2): every non-2xx response is one of these.

use crate::domain::DomainError;
use crate::throttling::ThrottleError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// ACS error code.
    pub code: &'static str,
    /// Human-readable message (never holds secrets).
    pub message: String,
    /// The offending field, where there is one.
    pub target: Option<String>,
    /// Whether the response carries `api-supported-versions` (the service leaves it off
    /// model-binding "required" errors and invalid-token errors).
    pub supported_versions_header: bool,
    /// `Retry-After` seconds, for 429 and 503.
    pub retry_after: Option<u32>,
    /// Whether the response carries the error body; only the 2021-03-31-preview1 Teams exchange
    /// answers a bad token with an empty 401 (docs/protocol.md §1.5).
    pub has_body: bool,
    /// Whether the response closes an HTTP/1 connection (`Connection: close`): the rest of the
    /// request cannot be told from a next one.
    pub close_connection: bool,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            target: None,
            supported_versions_header: true,
            retry_after: None,
            has_body: true,
            close_connection: false,
        }
    }

    /// A refusal of a request that could not be read as one (answered below the router: no
    /// `api-supported-versions`, and the connection closes).
    fn unreadable(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        let mut e = Self::new(status, code, message);
        e.supported_versions_header = false;
        e.close_connection = true;
        e
    }

    /// The request line and headers are over the size limit (over HTTP/2: the header list).
    pub fn header_too_large() -> Self {
        Self::unreadable(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "RequestHeaderFieldsTooLarge",
            "The request headers are too large.",
        )
    }

    /// The request target is longer than HTTP/1 allows.
    pub fn uri_too_long() -> Self {
        Self::unreadable(
            StatusCode::URI_TOO_LONG,
            "UriTooLong",
            "The request URI is too long.",
        )
    }

    /// A request that is not well-formed HTTP (bad request line, header line, Content-Length,
    /// Transfer-Encoding or Host).
    pub fn bad_request(message: &'static str) -> Self {
        Self::unreadable(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// The request line and headers, or the body, did not arrive in time.
    pub fn request_timeout() -> Self {
        Self::unreadable(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeout",
            "The request was not received in time.",
        )
    }

    /// The compact JSON body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                target: self.target.as_deref(),
            },
        })
        .expect("error bodies serialize")
    }

    /// The same error answered with its status alone: no body, no content type, no
    /// `api-supported-versions` (the 2021-03-31-preview1 Teams exchange's 401, X53, X54).
    pub fn without_body(mut self) -> Self {
        self.has_body = false;
        self.supported_versions_header = false;
        self
    }

    fn with_target(mut self, target: &str) -> Self {
        self.target = Some(target.to_owned());
        self
    }

    /// Unknown route, or an operation the api-version lacks.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The requested resource was not found.",
        )
    }

    /// A change feed cursor older than the retained events (docs/protocol.md §7.10): the reader
    /// has missed events and must resynchronise.
    pub fn cursor_expired() -> Self {
        Self::new(
            StatusCode::GONE,
            "CursorExpired",
            "The cursor is older than the retained events; read the current state again and \
             continue the feed from there.",
        )
    }

    /// Known route, wrong method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The requested method is not allowed.",
        )
    }

    /// No `api-version`.
    pub fn missing_api_version() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    }

    /// An `api-version` callsign does not speak.
    pub fn unsupported_api_version(version: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "UnsupportedApiVersion",
            format!(
                "The HTTP resource that matches the request URI does not support the API version '{version}'."
            ),
        )
    }

    /// Authentication failed.
    pub fn denied() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Denied",
            "Denied by the resource provider.",
        )
    }

    /// Body over the limit.
    pub fn body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestBodyTooLarge",
            "The request body is too large.",
        )
    }

    /// A business-validation failure of one field.
    pub fn validation(message: impl Into<String>, target: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationError", message).with_target(target)
    }

    /// A validation failure of the body as a whole.
    pub fn invalid_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }

    /// A model-binding "required" failure: `<Prop>: The <Prop> field is required.`
    pub fn required(property: &str) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            format!("{property}: The {property} field is required."),
        )
        .with_target(property);
        e.supported_versions_header = false;
        e
    }

    /// A Teams extension or Entra assignment that does not exist.
    pub fn assignment_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "AssignmentNotFound",
            "Assignment not found.",
        )
    }

    /// An exchange that no assignment allows (Teams extension and Entra exchanges).
    pub fn not_assigned() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "No assignment allows this user and client application.",
        )
    }

    /// Teams exchange: a bad, expired or empty Entra token (no `api-supported-versions`, X55–X72).
    pub fn invalid_access_token() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAccessToken",
            "Provided access token is not valid.",
        );
        e.supported_versions_header = false;
        e
    }

    /// Teams exchange: no `token` in the body (X63, X64).
    pub fn missing_token() -> Self {
        let mut e = Self::invalid_body("The body is either missing or doesn't contain any token.");
        e.supported_versions_header = false;
        e
    }

    /// An id of another resource.
    pub fn identity_not_owned() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "IdentityNotOwned",
            "Provided identity doesn't belong to the resource.",
        )
    }

    /// A well-formed id of this resource that does not exist.
    pub fn identity_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "IdentityNotFound",
            "Identity not found.",
        )
    }

    /// An id that is not a communication user id.
    pub fn malformed_identity() -> Self {
        Self::validation("Provided identity has invalid format.", "id")
    }

    /// The operation group's limit is reached until its window ends, `retry_after` seconds
    /// from now (docs/protocol.md §2.6).
    pub fn too_many_requests(retry_after: u32) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests.",
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// `/readyz` while the storage cannot take writes: why, so that an operator reading the probe
    /// knows what to fix.
    pub fn not_ready(reason: &str) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            format!("Not ready: {reason}."),
        );
        e.retry_after = Some(1);
        e
    }

    /// The store is down.
    pub fn unavailable() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
        );
        e.retry_after = Some(1);
        e
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::MalformedId => ApiError::malformed_identity(),
            DomainError::NotOwned => ApiError::identity_not_owned(),
            DomainError::NotFound => ApiError::identity_not_found(),
            DomainError::Store(e) => {
                tracing::error!(error = %crate::error_chain::error_chain(&e), "store failure");
                ApiError::unavailable()
            }
        }
    }
}

impl From<ThrottleError> for ApiError {
    fn from(e: ThrottleError) -> Self {
        match e {
            ThrottleError::Throttled { group, retry_after } => {
                tracing::debug!(group, retry_after, "throttled");
                ApiError::too_many_requests(retry_after)
            }
            ThrottleError::Store(e) => DomainError::Store(e).into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if !self.has_body {
            let mut response = self.status.into_response();
            response.extensions_mut().insert(NoSupportedVersions);
            return response;
        }
        let mut response = (self.status, self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.close_connection {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if !self.supported_versions_header {
            response.extensions_mut().insert(NoSupportedVersions);
        }
        response
    }
}

/// Marks a response that must not carry `api-supported-versions`.
#[derive(Debug, Clone, Copy)]
pub struct NoSupportedVersions;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_are_compact_and_ordered() {
        let response = ApiError::validation("m", "scopes").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let bytes = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(
            bytes,
            r#"{"error":{"code":"ValidationError","message":"m","target":"scopes"}}"#
        );
    }

    #[tokio::test]
    async fn an_error_without_body_is_its_status_alone() {
        let response = ApiError::invalid_access_token()
            .without_body()
            .into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().get(header::CONTENT_TYPE).is_none());
        assert!(response.extensions().get::<NoSupportedVersions>().is_some());
        let bytes = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert!(bytes.is_empty());
    }

    #[tokio::test]
    async fn throttled_is_429_with_retry_after() {
        let response = ApiError::too_many_requests(0).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let bytes = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(
            bytes,
            r#"{"error":{"code":"TooManyRequests","message":"Too many requests."}}"#
        );
    }

    #[test]
    fn required_errors_match_the_service() {
        let e = ApiError::required("Scopes");
        assert_eq!(e.message, "Scopes: The Scopes field is required.");
        assert_eq!(e.target.as_deref(), Some("Scopes"));
        assert!(!e.supported_versions_header);
    }
}
