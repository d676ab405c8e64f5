//! What a verified token says, typed.

use callsign_common::claims::TokenClaims;
use callsign_common::identifier::CommunicationUserIdentifier;
use chrono::{DateTime, Utc};

/// A scope a token grants (ACS's names); one this crate does not know is kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// `chat`
    Chat,
    /// `chat.join`
    ChatJoin,
    /// `chat.join.limited`
    ChatJoinLimited,
    /// `voip`
    Voip,
    /// `voip.join`
    VoipJoin,
    /// A scope of a newer service.
    UnknownValue(String),
}

impl Scope {
    /// The scope of its wire name.
    pub fn parse(name: &str) -> Self {
        match name {
            "chat" => Scope::Chat,
            "chat.join" => Scope::ChatJoin,
            "chat.join.limited" => Scope::ChatJoinLimited,
            "voip" => Scope::Voip,
            "voip.join" => Scope::VoipJoin,
            other => Scope::UnknownValue(other.to_owned()),
        }
    }
}

/// A token whose signature, issuer resource and expiry checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedToken {
    /// The user it was issued for.
    pub user: CommunicationUserIdentifier,
    /// What it allows.
    pub scopes: Vec<Scope>,
    /// When it was issued, to the microsecond where the token says (`iatMicros`), else the second.
    pub issued_at: DateTime<Utc>,
    /// When it stops being valid.
    pub expires_on: DateTime<Utc>,
    /// The resource that issued it.
    pub resource_id: String,
    /// Its id (`jti`), when it has one.
    pub token_id: Option<String>,
}

impl VerifiedToken {
    /// The claims, typed; `None` when a time is out of range.
    pub(crate) fn from_claims(claims: TokenClaims) -> Option<Self> {
        let issued_at = match claims.iat_micros {
            Some(micros) => DateTime::from_timestamp_micros(micros)?,
            None => DateTime::from_timestamp(claims.iat, 0)?,
        };
        Some(Self {
            user: CommunicationUserIdentifier::new(claims.raw_id()),
            scopes: claims.scopes().into_iter().map(Scope::parse).collect(),
            issued_at,
            expires_on: DateTime::from_timestamp(claims.exp, 0)?,
            resource_id: claims.resource_id,
            token_id: claims.jti,
        })
    }
}
