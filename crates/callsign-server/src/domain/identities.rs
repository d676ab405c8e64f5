//! Identity operations: create, read, issue tokens, revoke, delete, and introspect tokens.

use super::ids::IdentityId;
use super::scope::{Minutes, Scopes};
use super::tokens::{self, IssuedToken};
use super::DomainError;
use crate::audit::PendingEvents;
use crate::clock::{Clock, Stamps};
use crate::keys::LiveKeys;
use crate::store::identities::after_revocation;
use crate::store::{IdentityRecord, IdentityStore, TokenState};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// What callers see of an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityView {
    /// The raw id.
    pub id: String,
    /// The caller's own id for it.
    pub custom_id: Option<String>,
    /// When a token was last issued for it.
    pub last_token_issued_at: Option<DateTime<Utc>>,
}

impl From<IdentityRecord> for IdentityView {
    fn from(r: IdentityRecord) -> Self {
        Self {
            id: r.id,
            custom_id: r.custom_id,
            last_token_issued_at: r
                .last_token_issued_at_us
                .and_then(DateTime::from_timestamp_micros),
        }
    }
}

/// A caller-chosen identity tag: 1 to 256 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomId(String);

impl CustomId {
    /// The longest custom id, in characters.
    pub const MAX_CHARS: usize = 256;

    /// The custom id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The custom id, if its length is within bounds.
    pub fn new(value: &str) -> Option<Self> {
        let chars = value.chars().count();
        (1..=Self::MAX_CHARS)
            .contains(&chars)
            .then(|| Self(value.to_owned()))
    }
}

/// The result of introspecting a token (RFC 7662 style).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    /// The token is valid now.
    Active {
        /// Raw id of the identity.
        sub: String,
        /// Its scopes.
        scopes: Vec<String>,
        /// Issued at (seconds).
        iat: i64,
        /// Expires at (seconds).
        exp: i64,
        /// Token id.
        jti: Option<String>,
    },
    /// Not valid now, and why.
    Inactive(InactiveReason),
}

/// Why introspection finds a token inactive (the `reason` of docs/protocol.md §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InactiveReason {
    /// It does not verify, or has expired.
    Rejected(tokens::Rejection),
    /// Issued before its identity's last revocation.
    Revoked,
    /// Its identity was deleted, or never existed here.
    IdentityNotFound,
}

impl InactiveReason {
    /// The wire name (`expired`, `revoked`, `unknownKey`, …).
    pub fn as_str(self) -> &'static str {
        use tokens::Rejection;
        match self {
            InactiveReason::Rejected(Rejection::Malformed) => "malformed",
            InactiveReason::Rejected(Rejection::UnknownKey) => "unknownKey",
            InactiveReason::Rejected(Rejection::BadSignature) => "badSignature",
            InactiveReason::Rejected(Rejection::OtherResource) => "otherResource",
            InactiveReason::Rejected(Rejection::Expired) => "expired",
            InactiveReason::Revoked => "revoked",
            InactiveReason::IdentityNotFound => "identityNotFound",
        }
    }
}

/// The identity operations over a store.
pub struct IdentityService {
    store: Arc<dyn IdentityStore>,
    keys: Arc<LiveKeys>,
    stamps: Arc<Stamps>,
    min_lifetime: Minutes,
}

impl IdentityService {
    /// The service over `store`, signing with `keys`, stamping with `stamps`.
    pub fn new(store: Arc<dyn IdentityStore>, keys: Arc<LiveKeys>, stamps: Arc<Stamps>) -> Self {
        Self {
            store,
            keys,
            stamps,
            min_lifetime: Minutes::MIN,
        }
    }

    /// Accepts token lifetimes down to `min` instead of ACS's 60 minutes (a development aid for
    /// testing refresh logic).
    pub fn with_min_lifetime(mut self, min: Minutes) -> Self {
        self.min_lifetime = min;
        self
    }

    /// The shortest token lifetime this service issues.
    pub fn min_lifetime(&self) -> Minutes {
        self.min_lifetime
    }

    /// The live keys.
    pub fn keys(&self) -> &Arc<LiveKeys> {
        &self.keys
    }

    /// The clock the service reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.stamps.clock()
    }

    /// The issue-time stamps (unique, increasing) tokens carry.
    pub(crate) fn stamps(&self) -> &Stamps {
        &self.stamps
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock().now()
    }

    /// Creates an identity (or finds the live one with `custom_id`) and optionally issues a token;
    /// `events` are stored with a created identity, about it.
    pub async fn create(
        &self,
        custom_id: Option<CustomId>,
        token: Option<(Scopes, Minutes)>,
        events: &PendingEvents,
    ) -> Result<(IdentityView, Option<IssuedToken>), DomainError> {
        let resource = self.keys.get().resource_id;
        let record = IdentityRecord::new(
            IdentityId::generate(resource).as_str().to_owned(),
            custom_id.map(|c| c.0),
            self.stamps.next(),
        );
        let events = events.records(&record.id, token.is_some());
        let mut record = self
            .store
            .create_identity_with_events(record, events)
            .await?;
        let issued = match token {
            Some((scopes, lifetime)) => {
                let id = IdentityId::parse(&record.id, resource)?;
                let (issued, stamp) = self
                    .mint_and_record(&id, &scopes, lifetime, record.revoked_before_us)
                    .await?;
                record.last_token_issued_at_us = Some(stamp);
                Some(issued)
            }
            None => None,
        };
        Ok((record.into(), issued))
    }

    /// The live identity with this raw id.
    pub async fn get(&self, raw_id: &str) -> Result<IdentityView, DomainError> {
        let (_, record) = self.live(raw_id).await?;
        Ok(record.into())
    }

    /// At most `limit` live identities ordered by id, after the id `after`, only the one with
    /// `custom_id` when given (beyond ACS: `GET /callsign/identities`).
    pub async fn list(
        &self,
        after: Option<String>,
        limit: u32,
        custom_id: Option<CustomId>,
    ) -> Result<Vec<IdentityRecord>, DomainError> {
        Ok(self
            .store
            .list_identities(after, limit, custom_id.map(|c| c.0))
            .await?)
    }

    /// At most `limit` revoked or deleted identities ordered by id, after the id `after`: the
    /// stamps a follower of the change feed starts from (`GET /callsign/revocations`).
    pub async fn revocations(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<IdentityRecord>, DomainError> {
        Ok(self.store.list_revocations(after, limit).await?)
    }

    /// Removes every identity and assignment, storing `events` with that; keys stay (beyond
    /// ACS: `POST /callsign/:reset`).
    pub async fn reset(&self, events: &PendingEvents) -> Result<(), DomainError> {
        Ok(self.store.reset_with_events(events.as_drafted()).await?)
    }

    /// Issues a token for a live identity.
    pub async fn issue_token(
        &self,
        raw_id: &str,
        scopes: &Scopes,
        lifetime: Minutes,
    ) -> Result<IssuedToken, DomainError> {
        let id = self.parse(raw_id)?;
        let stamp = self
            .store
            .stamp_token(id.as_str(), self.stamps.next())
            .await?
            .ok_or(DomainError::NotFound)?;
        // Signed on the runtime deliberately: moving the ~0.3 ms RS256 signature to the blocking
        // pool cost 35-40 % of issue-token throughput on one core (BENCHMARKS.md).
        Ok(tokens::mint(&self.keys.get(), &id, scopes, lifetime, stamp))
    }

    /// Revokes every token issued for the identity so far, storing `events` with that; durable
    /// before it returns.
    pub async fn revoke(&self, raw_id: &str, events: &PendingEvents) -> Result<(), DomainError> {
        let id = self.parse(raw_id)?;
        let cutoff = self.stamps.next();
        let events = events.records(id.as_str(), false);
        match self
            .store
            .revoke_tokens_with_events(id.as_str().to_owned(), cutoff, events)
            .await?
        {
            true => Ok(()),
            false => Err(DomainError::NotFound),
        }
    }

    /// Deletes the identity, storing `events` with that; its tokens stop being valid at once.
    pub async fn delete(&self, raw_id: &str, events: &PendingEvents) -> Result<(), DomainError> {
        let id = self.parse(raw_id)?;
        let at = self.stamps.next();
        let events = events.records(id.as_str(), false);
        match self
            .store
            .delete_identity_with_events(id.as_str().to_owned(), at, events)
            .await?
        {
            true => Ok(()),
            false => Err(DomainError::NotFound),
        }
    }

    /// Whether `token` is valid now: signature, issuer, expiry, revocation and identity.
    pub async fn introspect(&self, token: &str) -> Result<Introspection, DomainError> {
        let keys = self.keys.get();
        let claims = match tokens::verify(&keys, token, self.now()) {
            Ok(claims) => claims,
            Err(rejection) => {
                return Ok(Introspection::Inactive(InactiveReason::Rejected(rejection)))
            }
        };
        // Tokens exchanged for Teams users, Teams extension users and Entra users (`_wf_`) name
        // no identity of the store: signature and expiry are all there is to check.
        if super::ids::is_exchanged_user(&claims.raw_id(), keys.resource_id) {
            return Ok(Introspection::Active {
                sub: claims.raw_id().to_string(),
                scopes: claims.scopes().into_iter().map(str::to_owned).collect(),
                iat: claims.iat,
                exp: claims.exp,
                jti: claims.jti,
            });
        }
        let not_found = Introspection::Inactive(InactiveReason::IdentityNotFound);
        let Ok(id) = IdentityId::parse(&claims.raw_id(), keys.resource_id) else {
            return Ok(not_found);
        };
        let Some(TokenState::Live { revoked_before_us }) =
            self.store.token_state(id.as_str()).await?
        else {
            return Ok(not_found);
        };
        let issued_us = claims
            .iat_micros
            .unwrap_or(claims.iat.saturating_mul(1_000_000));
        if revoked_before_us.is_some_and(|cut| issued_us <= cut) {
            return Ok(Introspection::Inactive(InactiveReason::Revoked));
        }
        Ok(Introspection::Active {
            sub: id.as_str().to_owned(),
            scopes: claims.scopes().into_iter().map(str::to_owned).collect(),
            iat: claims.iat,
            exp: claims.exp,
            jti: claims.jti,
        })
    }

    /// The live identity with this raw id as stored: creation and revocation times included
    /// (the console's identity page shows them; the wire's GET has neither).
    pub async fn record(&self, raw_id: &str) -> Result<IdentityRecord, DomainError> {
        Ok(self.live(raw_id).await?.1)
    }

    /// The id `raw_id` names, checked to be one of this resource's and in its canonical form.
    pub fn parse(&self, raw_id: &str) -> Result<IdentityId, DomainError> {
        Ok(IdentityId::parse(raw_id, self.keys.get().resource_id)?)
    }

    async fn live(&self, raw_id: &str) -> Result<(IdentityId, IdentityRecord), DomainError> {
        let id = self.parse(raw_id)?;
        match self.store.get_identity(id.as_str().to_owned()).await? {
            Some(record) if record.is_live() => Ok((id, record)),
            _ => Err(DomainError::NotFound),
        }
    }

    async fn mint_and_record(
        &self,
        id: &IdentityId,
        scopes: &Scopes,
        lifetime: Minutes,
        revoked_before_us: Option<i64>,
    ) -> Result<(IssuedToken, i64), DomainError> {
        // Signed on the runtime deliberately: moving the ~0.3 ms RS256 signature to the blocking
        // pool cost 35-40 % of issue-token throughput on one core (BENCHMARKS.md).
        // Later than the last revocation even when the node that revoked has a clock ahead of
        // ours (several nodes): a token issued after a revoke returned is valid.
        let stamp = after_revocation(self.stamps.next(), revoked_before_us);
        let issued = tokens::mint(&self.keys.get(), id, scopes, lifetime, stamp);
        self.store
            .record_token_issued(id.as_str().to_owned(), stamp)
            .await?;
        Ok((issued, stamp))
    }
}
