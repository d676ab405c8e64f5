//! Verifying Entra ID (or any OIDC issuer's) access tokens against the configured trusted issuers:
//! RS256 signature by a key of the issuer's JWKS, issuer, audience, expiry and not-before.
//!
//! What a route then requires of the claims (scopes, roles, app and user ids) is the caller's
//! business (docs/protocol.md §3): this module only answers "is this a genuine, current token of a
//! trusted issuer for this audience, and what does it say".

use super::jwks::{JwksError, JwksSource, KeySet};
use crate::clock::Clock;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// Audience of management calls (`https://communication.azure.com//.default` in clients).
pub const MANAGEMENT_AUDIENCE: &str = "https://communication.azure.com";
/// Audience of Teams user tokens exchanged at `/teamsUser/:exchangeAccessToken`.
pub const TEAMS_AUDIENCE: &str = "https://auth.msft.communication.azure.com";
/// Audience of Entra user tokens exchanged at `/access/entra/:exchangeAccessToken` (preview).
pub const ENTRA_CLIENTS_AUDIENCE: &str = "https://communication.azure.com/clients";

/// How far a token's `nbf` may lie in the future, for clock differences with the issuer.
const NOT_BEFORE_SKEW_SECONDS: i64 = 300;

/// One `[[trusted_issuers]]` entry of the configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The exact `iss` of its tokens, e.g. `https://login.microsoftonline.com/<tenant>/v2.0`.
    pub issuer: String,
    /// Where its signing keys are published.
    pub jwks_uri: Option<String>,
    /// A file holding its signing keys (instead of `jwks_uri`).
    pub jwks_file: Option<PathBuf>,
    /// The tenant; when set, tokens must carry this `tid`.
    pub tenant_id: Option<String>,
}

/// Why the trusted issuers could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// Neither or both of `jwks_uri` and `jwks_file`.
    #[error("trusted issuer {0}: give exactly one of jwks_uri and jwks_file")]
    KeySource(String),
    /// The key set could not be read.
    #[error("trusted issuer {issuer}")]
    Jwks {
        /// The issuer.
        issuer: String,
        /// The cause.
        source: JwksError,
    },
}

/// Why a token was rejected. Clients see one fixed error body; this is for logs and tests and
/// never holds the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a three-part JWS with a readable header and payload.
    #[error("malformed token")]
    Malformed,
    /// An algorithm other than RS256.
    #[error("unsupported algorithm")]
    Algorithm,
    /// The issuer is not trusted (or its tenant differs).
    #[error("untrusted issuer")]
    Issuer,
    /// No key of the issuer has the token's `kid`.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// Expired, or not yet valid.
    #[error("expired or not yet valid")]
    Expired,
    /// Issued for another audience.
    #[error("wrong audience")]
    Audience,
}

/// The claims callsign reads from an Entra access token.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct EntraClaims {
    /// Issuer.
    pub iss: String,
    /// Audience (a string; Entra access tokens carry one audience).
    #[serde(default)]
    pub aud: Audience,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not before.
    pub nbf: Option<i64>,
    /// The user's (or app's) object id.
    pub oid: Option<String>,
    /// The tenant.
    pub tid: Option<String>,
    /// The client application (v1 tokens).
    pub appid: Option<String>,
    /// The client application (v2 tokens).
    pub azp: Option<String>,
    /// Delegated scopes, space separated.
    pub scp: Option<String>,
    /// App roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Group object ids.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `aud`: one string, or an array of them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    /// No audience.
    #[default]
    None,
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl EntraClaims {
    /// The client application id: `appid` (v1) or `azp` (v2).
    pub fn client_id(&self) -> Option<&str> {
        self.appid.as_deref().or(self.azp.as_deref())
    }

    /// Whether `scp` holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scp
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|s| s == scope))
    }

    fn has_audience(&self, wanted: &str) -> bool {
        let matches = |aud: &str| aud.trim_end_matches('/') == wanted.trim_end_matches('/');
        match &self.aud {
            Audience::None => false,
            Audience::One(aud) => matches(aud),
            Audience::Many(auds) => auds.iter().any(|a| matches(a)),
        }
    }
}

struct Issuer {
    config: IssuerConfig,
    keys: KeySet,
}

/// The configured trusted issuers.
pub struct TrustedIssuers {
    issuers: Vec<Issuer>,
    clock: Arc<dyn Clock>,
}

impl TrustedIssuers {
    /// Sets up the issuers, reading JWKS files now.
    pub fn new(configs: &[IssuerConfig], clock: Arc<dyn Clock>) -> Result<Self, IssuerError> {
        let mut issuers = Vec::new();
        for config in configs {
            let source = match (&config.jwks_uri, &config.jwks_file) {
                (Some(uri), None) => JwksSource::Url(uri.clone()),
                (None, Some(file)) => JwksSource::File(file.clone()),
                _ => return Err(IssuerError::KeySource(config.issuer.clone())),
            };
            let keys = KeySet::new(source, clock.clone()).map_err(|source| IssuerError::Jwks {
                issuer: config.issuer.clone(),
                source,
            })?;
            issuers.push(Issuer {
                config: config.clone(),
                keys,
            });
        }
        Ok(Self { issuers, clock })
    }

    /// No issuers: every bearer token is rejected.
    pub fn none(clock: Arc<dyn Clock>) -> Self {
        Self {
            issuers: Vec::new(),
            clock,
        }
    }

    /// Whether any issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Verifies `token` for `audience` and returns its claims.
    pub async fn verify(&self, token: &str, audience: &str) -> Result<EntraClaims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        #[derive(Deserialize)]
        struct Header {
            alg: String,
            kid: Option<String>,
        }
        let header: Header = decode_segment(header)?;
        if header.alg != "RS256" {
            return Err(TokenError::Algorithm);
        }
        let claims: EntraClaims = decode_segment(payload)?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config.issuer == claims.iss)
            .ok_or(TokenError::Issuer)?;
        if let Some(tenant) = &issuer.config.tenant_id {
            if claims.tid.as_deref() != Some(tenant.as_str()) {
                return Err(TokenError::Issuer);
            }
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = issuer.keys.key(&kid).await.ok_or(TokenError::UnknownKey)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let signing_input = &token[..header_and_payload_len(token)];
        if !key.verify_rs256(signing_input.as_bytes(), &signature) {
            return Err(TokenError::Signature);
        }
        check_times(&claims, self.clock.now())?;
        if !claims.has_audience(audience) {
            return Err(TokenError::Audience);
        }
        Ok(claims)
    }
}

fn check_times(claims: &EntraClaims, now: DateTime<Utc>) -> Result<(), TokenError> {
    let now = now.timestamp();
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now + NOT_BEFORE_SKEW_SECONDS)
    {
        return Err(TokenError::Expired);
    }
    Ok(())
}

fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn decode_segment<T: serde::de::DeserializeOwned>(segment: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}
