//! The one error type of the identity client.

/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The service answered with an error status.
    #[error("the service answered {status} {}: {message}", code.as_deref().unwrap_or("(no code)"))]
    Service {
        /// The HTTP status.
        status: u16,
        /// The service's error code (`IdentityNotOwned`, `ValidationError`, …).
        code: Option<String>,
        /// The service's message.
        message: String,
    },
    /// An argument was refused before anything was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The operation needs another api-version (for example `get_user` needs the preview).
    #[error("{operation} needs api-version {needed}; the client uses {configured}")]
    UnsupportedByApiVersion {
        /// The operation.
        operation: &'static str,
        /// The version that has it.
        needed: &'static str,
        /// The configured version.
        configured: &'static str,
    },
    /// The request could not be sent or the answer not read (connection, TLS, credential, JSON).
    #[error(transparent)]
    Transport(azure_core::Error),
}

impl IdentityError {
    /// The HTTP status, for service errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            IdentityError::Service { status, .. } => Some(*status),
            IdentityError::Transport(e) => e.http_status().map(u16::from),
            _ => None,
        }
    }

    /// The service error code, for service errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            IdentityError::Service { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The service's error message, for service errors (`Identity not found.`, …).
    pub fn message(&self) -> Option<&str> {
        match self {
            IdentityError::Service { message, .. } => Some(message),
            _ => None,
        }
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(serde::Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    message: Option<String>,
}

impl From<azure_core::Error> for IdentityError {
    fn from(e: azure_core::Error) -> Self {
        let azure_core::error::ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } = e.kind()
        else {
            return IdentityError::Transport(e);
        };
        let body = raw_response
            .as_ref()
            .and_then(|r| serde_json::from_slice::<ErrorBody>(r.body()).ok());
        let (code, message) = match body {
            Some(b) => (b.error.code.or(error_code.clone()), b.error.message),
            None => (error_code.clone(), None),
        };
        IdentityError::Service {
            status: u16::from(*status),
            code,
            message: message.unwrap_or_else(|| e.to_string()),
        }
    }
}

/// The result of an identity operation.
pub type Result<T> = std::result::Result<T, IdentityError>;
