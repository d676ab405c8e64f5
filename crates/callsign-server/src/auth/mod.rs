//! Authentication (docs/protocol.md §3): HMAC-SHA256 with either access key, and bearer tokens of
//! trusted issuers (Entra ID) verified against their JWKS.

pub mod bearer;
pub mod entra;
pub mod hmac;
pub mod jwks;

pub use self::bearer::{authenticate_bearer, BearerCaller, ManagementConfig};
pub use self::entra::{EntraClaims, IssuerConfig, TokenError, TrustedIssuers};
pub use self::hmac::{authenticate_hmac, HmacRequest};

/// Why a request was not authenticated. The client always sees the same `Denied` body; the reason
/// is for logs and tests, and never holds secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("no Authorization header")]
    Missing,
    /// An `Authorization` header of an unknown or malformed scheme.
    #[error("malformed Authorization header")]
    Malformed,
    /// A signed header is missing.
    #[error("a signed header is missing")]
    MissingSignedHeader,
    /// The date is unreadable or outside the allowed clock skew.
    #[error("the request date is invalid or outside the allowed clock skew")]
    Date,
    /// The body does not match `x-ms-content-sha256`.
    #[error("the content hash does not match the body")]
    ContentHash,
    /// The signature matches neither key.
    #[error("the signature does not match")]
    Signature,
    /// A bearer token that does not verify.
    #[error("bearer token rejected: {0}")]
    Bearer(entra::TokenError),
    /// A valid bearer token of a caller neither allow-listed nor holding the required role.
    #[error("the bearer token's caller is not allowed to manage identities")]
    NotAllowed,
}

impl AuthError {
    /// Every [`AuthError::reason`], so that the metrics show each at zero before it happens.
    pub const REASONS: [&'static str; 14] = [
        "missing",
        "malformed",
        "missing_signed_header",
        "date",
        "content_hash",
        "signature",
        "bearer_malformed",
        "bearer_algorithm",
        "bearer_issuer",
        "bearer_unknown_key",
        "bearer_signature",
        "bearer_expired",
        "bearer_audience",
        "not_allowed",
    ];

    /// A fixed word for the reason, for metric labels (`callsign_auth_failures_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::MissingSignedHeader => "missing_signed_header",
            Self::Date => "date",
            Self::ContentHash => "content_hash",
            Self::Signature => "signature",
            Self::Bearer(e) => match e {
                TokenError::Malformed => "bearer_malformed",
                TokenError::Algorithm => "bearer_algorithm",
                TokenError::Issuer => "bearer_issuer",
                TokenError::UnknownKey => "bearer_unknown_key",
                TokenError::Signature => "bearer_signature",
                TokenError::Expired => "bearer_expired",
                TokenError::Audience => "bearer_audience",
            },
            Self::NotAllowed => "not_allowed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed() {
        let bearer = [
            TokenError::Malformed,
            TokenError::Algorithm,
            TokenError::Issuer,
            TokenError::UnknownKey,
            TokenError::Signature,
            TokenError::Expired,
            TokenError::Audience,
        ]
        .map(AuthError::Bearer);
        let all = [
            AuthError::Missing,
            AuthError::Malformed,
            AuthError::MissingSignedHeader,
            AuthError::Date,
            AuthError::ContentHash,
            AuthError::Signature,
            AuthError::NotAllowed,
        ];
        let reasons: Vec<&str> = all.iter().chain(&bearer).map(AuthError::reason).collect();
        assert_eq!(reasons.len(), AuthError::REASONS.len());
        assert!(reasons.iter().all(|r| AuthError::REASONS.contains(r)));
    }
}
