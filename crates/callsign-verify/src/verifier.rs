//! Checking a token: its header names a key and an algorithm, the key must be the issuer's and
//! sign with that algorithm, the signature must verify, and the token must be the expected
//! resource's and not expired.

use crate::claims::Claims;
use crate::claims::VerifiedToken;
use crate::jwks::{JwksError, KeySet};
use crate::revocations::{Follower, Refusal, Revocations};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callsign_common::clock::{Clock, SystemClock};
use callsign_common::AccessKey;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use std::sync::Arc;
use std::sync::RwLock as StdRwLock;
use std::time::Duration;
use tokio::sync::{watch, RwLock};

/// Why a token is refused, or could not be checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a JWT, or its header or claims do not parse.
    #[error("the token is malformed")]
    Malformed,
    /// Its header names an algorithm other than RS256, ES256 and EdDSA.
    #[error("the token's algorithm {0:?} is not accepted")]
    UnsupportedAlgorithm(String),
    /// Signed with a key the issuer does not publish (after fetching its keys again).
    #[error("the token is signed with an unknown key")]
    UnknownKey,
    /// The signature does not verify, or the header's algorithm is not its key's.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// Issued by another resource than the one expected.
    #[error("the token is another resource's")]
    OtherResource,
    /// Expired (beyond the leeway).
    #[error("the token expired at {0}")]
    Expired(DateTime<Utc>),
    /// Issued in the future (beyond the leeway).
    #[error("the token is not valid before {0}")]
    NotYetValid(DateTime<Utc>),
    /// The issuer's keys could not be fetched or read.
    #[error("the issuer's keys are unavailable: {0}")]
    KeysUnavailable(String),
    /// Issued at or before its user's last revocation (revocation-aware verifiers).
    #[error("the token was revoked")]
    Revoked,
    /// Its user was deleted (revocation-aware verifiers).
    #[error("the token's identity was deleted")]
    IdentityDeleted,
    /// A revocation-aware verifier has not read the issuer's revocations yet, or lost contact
    /// for longer than [`VerifierOptions::max_staleness`]: it refuses rather than guess.
    #[error("the issuer's revocations are not known to be current")]
    RevocationsUnavailable,
}

impl From<JwksError> for VerifyError {
    fn from(e: JwksError) -> Self {
        VerifyError::KeysUnavailable(e.to_string())
    }
}

/// How tokens are checked. Start from [`VerifierOptions::for_resource`] (or the default) and
/// change what differs: `VerifierOptions { leeway, ..VerifierOptions::for_resource(id) }`.
#[derive(Debug, Clone)]
pub struct VerifierOptions {
    /// The resource whose tokens are accepted; `None` accepts any resource signing with the
    /// keys (the keys are the resource's own, so this is a second check).
    pub resource_id: Option<String>,
    /// How far `exp` and the issue time may be off the verifier's clock.
    pub leeway: Duration,
    /// The shortest time between two fetches of the keys for an unknown key id: a flood of
    /// tokens naming made-up keys does not become a flood of requests to the issuer.
    pub refetch_interval: Duration,
    /// Where "now" comes from (tests move it).
    pub clock: Arc<dyn Clock>,
    /// Revocation-aware verifiers: how long the revocations may go unconfirmed by the issuer
    /// (the feed answers at least every 30 s) before tokens are refused.
    pub max_staleness: Duration,
}

impl Default for VerifierOptions {
    fn default() -> Self {
        Self {
            resource_id: None,
            leeway: Duration::from_secs(60),
            refetch_interval: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            max_staleness: Duration::from_secs(90),
        }
    }
}

impl VerifierOptions {
    /// The defaults, accepting only `resource_id`'s tokens.
    pub fn for_resource(resource_id: impl Into<String>) -> Self {
        Self {
            resource_id: Some(resource_id.into()),
            ..Self::default()
        }
    }
}

/// Where the keys come from.
enum KeySource {
    /// A JWKS document given once.
    Fixed,
    /// The issuer's JWKS URL, fetched again for an unknown key id.
    Endpoint {
        base: reqwest::Url,
        url: String,
        client: reqwest::Client,
    },
}

/// A revocation-aware verifier's state and the task that keeps it current.
struct Following {
    state: Arc<StdRwLock<Revocations>>,
    progress: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

/// The keys in use and when they were last fetched.
struct Keys {
    set: KeySet,
    fetched_at: Option<tokio::time::Instant>,
}

/// Verifies callsign access tokens with the issuer's published keys.
pub struct TokenVerifier {
    source: KeySource,
    keys: RwLock<Keys>,
    options: VerifierOptions,
    following: Option<Following>,
}

impl Drop for TokenVerifier {
    fn drop(&mut self) {
        if let Some(following) = &self.following {
            following.task.abort();
        }
    }
}

/// The longest signature of the accepted algorithms: RSA keys up to 8192 bits.
const MAX_SIGNATURE_BYTES: usize = 1024;

/// Decodes one base64url part of a token into `buffer`; a part too long for it is malformed.
fn decode<'b>(part: &str, buffer: &'b mut [u8]) -> Result<&'b [u8], VerifyError> {
    let written = URL_SAFE_NO_PAD
        .decode_slice(part.trim_end_matches('='), buffer)
        .map_err(|_| VerifyError::Malformed)?;
    Ok(&buffer[..written])
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: &'a str,
    #[serde(borrow)]
    kid: Option<&'a str>,
}

impl TokenVerifier {
    /// A verifier with the keys of a JWKS document, never fetched again.
    pub fn from_jwks(document: &[u8], options: VerifierOptions) -> Result<Self, VerifyError> {
        Ok(Self {
            source: KeySource::Fixed,
            keys: RwLock::new(Keys {
                set: KeySet::from_jwks(document)?,
                fetched_at: None,
            }),
            options,
            following: None,
        })
    }

    /// A verifier of the tokens of the callsign server at `endpoint` (`https://host/`): its keys
    /// are fetched from `/.well-known/jwks.json` on first use, and again for a key id it does
    /// not know.
    pub fn from_endpoint(endpoint: &str, options: VerifierOptions) -> Result<Self, VerifyError> {
        Self::from_endpoint_with_client(endpoint, reqwest::Client::new(), options)
    }

    /// [`Self::from_endpoint`] with the HTTP client to fetch with (its TLS roots, proxy,
    /// timeouts).
    pub fn from_endpoint_with_client(
        endpoint: &str,
        client: reqwest::Client,
        options: VerifierOptions,
    ) -> Result<Self, VerifyError> {
        let base = reqwest::Url::parse(endpoint)
            .map_err(|e| VerifyError::KeysUnavailable(format!("{endpoint:?}: {e}")))?;
        let url = base
            .join(".well-known/jwks.json")
            .map_err(|e| VerifyError::KeysUnavailable(e.to_string()))?;
        Ok(Self {
            source: KeySource::Endpoint {
                base,
                url: url.to_string(),
                client,
            },
            keys: RwLock::new(Keys {
                set: KeySet::default(),
                fetched_at: None,
            }),
            options,
            following: None,
        })
    }

    /// Makes the verifier revocation-aware: a task (on the current Tokio runtime) reads the
    /// issuer's revocation snapshot and follows its change feed, signing with `access_key`, and
    /// [`Self::verify`] refuses tokens issued at or before their user's revocation, and every
    /// token of a deleted user. Until the first snapshot is read (see [`Self::synchronised`]),
    /// and while the issuer is out of reach for longer than the allowed staleness, tokens are
    /// refused ([`VerifyError::RevocationsUnavailable`]). Only for verifiers made
    /// [`Self::from_endpoint`].
    pub fn follow_revocations(mut self, access_key: AccessKey) -> Result<Self, VerifyError> {
        let KeySource::Endpoint { base, client, .. } = &self.source else {
            return Err(VerifyError::KeysUnavailable(
                "a verifier made from a JWKS document has no issuer to follow".into(),
            ));
        };
        let state = Arc::new(StdRwLock::new(Revocations::default()));
        let (progress, watched) = watch::channel(0);
        let follower = Follower::new(
            base.clone(),
            access_key,
            client.clone(),
            state.clone(),
            progress,
        )
        .ok_or_else(|| VerifyError::KeysUnavailable(format!("{base}: no host")))?;
        self.following = Some(Following {
            state,
            progress: watched,
            task: tokio::spawn(follower.run()),
        });
        Ok(self)
    }

    /// Waits until a revocation-aware verifier has read the issuer's revocations once (at once
    /// for other verifiers).
    pub async fn synchronised(&self) {
        if let Some(following) = &self.following {
            let mut progress = following.progress.clone();
            let _ = progress.wait_for(|n| *n > 0).await;
        }
    }

    /// Checks `token` now, by the options' clock.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
        let (header, payload) = signing_input
            .split_once('.')
            .ok_or(VerifyError::Malformed)?;
        // Decoded on the stack: a token's parts are small, and the allocations would be a
        // measurable share of an RS256 check.
        let mut header_bytes = [0u8; 512];
        let header: Header<'_> = serde_json::from_slice(decode(header, &mut header_bytes)?)
            .map_err(|_| VerifyError::Malformed)?;
        if !matches!(header.alg, "RS256" | "ES256" | "EdDSA") {
            return Err(VerifyError::UnsupportedAlgorithm(header.alg.to_owned()));
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let mut signature_bytes = [0u8; MAX_SIGNATURE_BYTES];
        let signature = decode(signature, &mut signature_bytes)?;
        let verified = self
            .with_key(kid, |keys| {
                keys.verify(kid, header.alg, signing_input.as_bytes(), signature)
            })
            .await?;
        if !verified {
            return Err(VerifyError::BadSignature);
        }
        // Read only once the signature holds: nothing unsigned is trusted.
        let mut payload_bytes = [0u8; 2048];
        let claims: Claims<'_> = serde_json::from_slice(decode(payload, &mut payload_bytes)?)
            .map_err(|_| VerifyError::Malformed)?;
        let verified = VerifiedToken::from_claims(claims).ok_or(VerifyError::Malformed)?;
        self.check(&verified)?;
        self.check_revocation(&verified)?;
        Ok(verified)
    }

    /// The resource and the times of a token whose signature verified.
    fn check(&self, token: &VerifiedToken) -> Result<(), VerifyError> {
        if let Some(resource) = &self.options.resource_id {
            if !token.resource_id.eq_ignore_ascii_case(resource) {
                return Err(VerifyError::OtherResource);
            }
        }
        let now = self.options.clock.now();
        let leeway = TimeDelta::from_std(self.options.leeway).unwrap_or(TimeDelta::MAX);
        if token.expires_on + leeway <= now {
            return Err(VerifyError::Expired(token.expires_on));
        }
        if token.issued_at - leeway > now {
            return Err(VerifyError::NotYetValid(token.issued_at));
        }
        Ok(())
    }

    /// A revocation-aware verifier's verdict on a token whose signature and times hold.
    fn check_revocation(&self, token: &VerifiedToken) -> Result<(), VerifyError> {
        let Some(following) = &self.following else {
            return Ok(());
        };
        let state = following.state.read().unwrap_or_else(|p| p.into_inner());
        state
            .check(
                token.user.id(),
                token.issued_at.timestamp_micros(),
                self.options.max_staleness,
            )
            .map_err(|refusal| match refusal {
                Refusal::Revoked => VerifyError::Revoked,
                Refusal::Deleted => VerifyError::IdentityDeleted,
                Refusal::Unsynchronised => VerifyError::RevocationsUnavailable,
            })
    }

    /// Runs `check` with the keys, fetching them first when `kid` is unknown and the source is
    /// an endpoint not asked within the refetch interval.
    async fn with_key(
        &self,
        kid: &str,
        check: impl Fn(&KeySet) -> Option<bool>,
    ) -> Result<bool, VerifyError> {
        // The common case: a known key, checked under a shared lock (one look-up).
        if let Some(verdict) = check(&self.keys.read().await.set) {
            return Ok(verdict);
        }
        let mut keys = self.keys.write().await;
        if !keys.set.contains(kid) {
            if let KeySource::Endpoint { url, client, .. } = &self.source {
                let due = keys
                    .fetched_at
                    .is_none_or(|at| at.elapsed() >= self.options.refetch_interval);
                if due {
                    keys.fetched_at = Some(tokio::time::Instant::now());
                    keys.set = fetch(client, url).await?;
                }
            }
        }
        check(&keys.set).ok_or(VerifyError::UnknownKey)
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<KeySet, VerifyError> {
    let unavailable = |e: reqwest::Error| VerifyError::KeysUnavailable(format!("{url}: {e}"));
    let response = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(unavailable)?;
    let body = response.bytes().await.map_err(unavailable)?;
    Ok(KeySet::from_jwks(&body)?)
}
